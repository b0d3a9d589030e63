//! `llmrouter-custom` (feature `onnx`): the ONNX scorer against the numpy outputs written by
//! `models/make_tiny_onnx.py`, the models it refuses, and a router artifact predicting
//! through it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use routeiq::ml::artifact::{
    EmbedderSpec, FORMAT, FORMAT_VERSION, ModelSpec, RouterArtifact, RouterParams, VerifyPolicy,
    sha256_hex,
};
use routeiq::ml::custom_onnx::{OnnxScorer, ScorerError};
use routeiq::ml::predictor::{
    ExternalScorer, LoadedRouter, MAX_CUSTOM_MODEL_BYTES, default_scorer_loader,
};
use routeiq::ml::{Embedder, HashedNgramEmbedder, MlStrategyName};
use serde_json::Value;

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tiny")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(tiny(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Expected {
    dim: usize,
    models: usize,
    first: usize,
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
    cases: Vec<(Vec<f32>, Vec<f64>)>,
}

fn expected() -> Expected {
    let v: Value = serde_json::from_slice(&read("scorer_expected.json")).unwrap();
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Expected {
        dim: v["dim"].as_u64().unwrap() as usize,
        models: v["models"].as_u64().unwrap() as usize,
        first: v["first"].as_u64().unwrap() as usize,
        w: v["w"].as_array().unwrap().iter().map(floats).collect(),
        b: floats(&v["b"]),
        cases: v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let input = floats(&c["input"]).into_iter().map(|x| x as f32).collect();
                (input, floats(&c["scores"]))
            })
            .collect(),
    }
}

/// `x·W + b` in f64.
fn linear(e: &Expected, x: &[f32]) -> Vec<f64> {
    (0..e.models)
        .map(|j| {
            e.b[j]
                + x.iter()
                    .zip(&e.w)
                    .map(|(xi, row)| f64::from(*xi) * row[j])
                    .sum::<f64>()
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() < 1e-5,
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn scorer_matches_numpy() {
    let e = expected();
    for file in ["scorer.onnx", "scorer_batch.onnx"] {
        let bytes = read(file);
        let started = Instant::now();
        let scorer = OnnxScorer::from_bytes(file, &bytes, e.dim, e.models).unwrap();
        let load = started.elapsed();
        assert_eq!((scorer.dim(), scorer.models()), (e.dim, e.models));
        for (i, (input, want)) in e.cases.iter().enumerate() {
            let got = scorer.scores(input).unwrap();
            assert_close(&got, want, &format!("{file} case {i}"));
            assert_close(&got, &linear(&e, input), &format!("{file} case {i} (W, b)"));
        }
        let n = 2000;
        let started = Instant::now();
        for i in 0..n {
            std::hint::black_box(scorer.scores(&e.cases[i % e.cases.len()].0).unwrap());
        }
        eprintln!(
            "{file}: load {:.2} ms, {:.1} µs per call",
            load.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

#[test]
fn scorer_ranks_the_biased_model_first_for_unit_inputs() {
    let e = expected();
    let scorer =
        OnnxScorer::from_bytes("scorer.onnx", &read("scorer.onnx"), e.dim, e.models).unwrap();
    let embedder = HashedNgramEmbedder::new(e.dim).unwrap();
    for text in [
        "hello",
        "Write a Python function",
        "Tell me a story",
        "ünïcode ✓",
    ] {
        let emb = embedder.embed(text).unwrap();
        let s = scorer.scores(&emb).unwrap();
        let best = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
        assert_eq!(best, e.first, "{text}: {s:?}");
        assert_close(&s, &linear(&e, &emb), text);
    }
    // A wrong-length embedding is an error, not a panic.
    let err = scorer.scores(&[0.0; 4]).unwrap_err();
    assert!(
        err.contains("scorer.onnx") && err.contains("4 dimensions"),
        "{err}"
    );
}

#[test]
fn scorer_is_shared_across_threads() {
    let e = Arc::new(expected());
    let scorer: Arc<dyn ExternalScorer> = Arc::new(
        OnnxScorer::from_bytes("scorer.onnx", &read("scorer.onnx"), e.dim, e.models).unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (scorer, e) = (scorer.clone(), e.clone());
            std::thread::spawn(move || {
                for i in 0..200 {
                    let (input, want) = &e.cases[(t + i) % e.cases.len()];
                    assert_close(&scorer.scores(input).unwrap(), want, "threaded");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn load_err(file: &str, bytes: &[u8], dim: usize, models: usize) -> String {
    let err = OnnxScorer::from_bytes(file, bytes, dim, models).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(file), "the error names the file: {text}");
    text
}

#[test]
fn bad_models_are_refused_clearly() {
    let good = read("scorer.onnx");
    let e = load_err("scorer.onnx", &good, 4, 3);
    assert!(e.contains("8-dimensional") && e.contains("has 4"), "{e}");
    let e = load_err("scorer.onnx", &good, 8, 2);
    assert!(e.contains("lists 2 models") && e.contains("[1, 3]"), "{e}");
    let e = load_err("scorer_batch.onnx", &read("scorer_batch.onnx"), 8, 5);
    assert!(e.contains("5"), "{e}");
    let e = load_err("two.onnx", &read("scorer_two_outputs.onnx"), 8, 3);
    assert!(e.contains("one output") && e.contains("has 2"), "{e}");
    let e = load_err("int.onnx", &read("scorer_int_input.onnx"), 8, 3);
    assert!(e.contains("must be float"), "{e}");
    let e = load_err("op.onnx", &read("scorer_unknown_op.onnx"), 8, 3);
    assert!(e.contains("Frobnicate"), "{e}");
    let e = load_err("junk.onnx", b"\x08\x07not a protobuf at all \xff\xff", 8, 3);
    assert!(e.contains("not an ONNX model"), "{e}");
    load_err("empty.onnx", b"", 8, 3);
    load_err("truncated.onnx", &good[..good.len() / 2], 8, 3);

    let big = vec![0u8; MAX_CUSTOM_MODEL_BYTES as usize + 1];
    let err = OnnxScorer::from_bytes("big.onnx", &big, 8, 3).unwrap_err();
    assert!(matches!(err, ScorerError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("big.onnx"), "{err}");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "routeiq-custom-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `llmrouter-custom` artifact over `hashed-ngram-v1-8` naming `file` with `sha256`.
fn artifact(file: &str, sha256: &str, models: usize) -> Vec<u8> {
    RouterArtifact {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        strategy: "llmrouter-custom".into(),
        version: "custom-test-1".into(),
        embedder: EmbedderSpec {
            id: "hashed-ngram-v1-8".into(),
            dim: 8,
            probe: Vec::new(),
        },
        models: (0..models)
            .map(|i| ModelSpec {
                name: format!("model-{i}"),
                size_b: None,
                input_price: None,
                output_price: None,
                mean_quality: None,
            })
            .collect(),
        params: RouterParams::CustomOnnx {
            file: file.into(),
            sha256: sha256.into(),
        },
        training: Value::Null,
    }
    .to_bytes()
}

fn load(dir: &TempDir, art: &[u8]) -> Result<LoadedRouter, String> {
    let source = dir.0.join("custom.json").display().to_string();
    let loader = default_scorer_loader().expect("the onnx build has a loader");
    LoadedRouter::from_bytes(
        &source,
        "custom.json",
        art,
        None,
        &VerifyPolicy::default(),
        Some(MlStrategyName::Custom),
        Some(loader.as_ref()),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn custom_artifact_predicts_through_the_scorer() {
    let e = expected();
    let dir = TempDir::new("predict");
    let onnx = read("scorer.onnx");
    std::fs::write(dir.0.join("scorer.onnx"), &onnx).unwrap();
    let sum = sha256_hex(&onnx);
    let router = load(&dir, &artifact("scorer.onnx", &sum, 3)).unwrap();
    assert_eq!(router.strategy, MlStrategyName::Custom);
    let embedder = HashedNgramEmbedder::new(8).unwrap();
    for text in ["Write a Python function that sorts a list", "hi"] {
        let emb = embedder.embed(text).unwrap();
        let q = router.predict(&emb, None).unwrap().quality;
        let want = linear(&e, &emb);
        for (got, want) in q.iter().zip(&want) {
            let got = got.expect("every model has a quality");
            assert!((got - want).abs() < 1e-5, "{q:?} vs {want:?}");
        }
    }
    // The router checks the dimension before the scorer sees the vector.
    assert!(router.predict(&[0.0; 3], None).is_err());

    // Upper-case sums are accepted like the manifest's.
    load(&dir, &artifact("scorer.onnx", &sum.to_ascii_uppercase(), 3)).unwrap();

    // The file is not the one the artifact names: refused before it is parsed.
    let wrong = sha256_hex(b"something else");
    let err = load(&dir, &artifact("scorer.onnx", &wrong, 3)).unwrap_err();
    assert!(
        err.contains("sha256") && err.contains(&sum) && err.contains("scorer.onnx"),
        "{err}"
    );
    let err = load(&dir, &artifact("scorer.onnx", "", 3)).unwrap_err();
    assert!(err.contains("sha256"), "{err}");

    // The artifact lists more models than the graph scores.
    let err = load(&dir, &artifact("scorer.onnx", &sum, 4)).unwrap_err();
    assert!(
        err.contains("[1, 4]") && err.contains("scorer.onnx"),
        "{err}"
    );

    // A bad graph with a matching sum is still refused, naming the file.
    let two = read("scorer_two_outputs.onnx");
    std::fs::write(dir.0.join("two.onnx"), &two).unwrap();
    let err = load(&dir, &artifact("two.onnx", &sha256_hex(&two), 3)).unwrap_err();
    assert!(
        err.contains("two.onnx") && err.contains("one output"),
        "{err}"
    );

    // A missing file.
    let err = load(&dir, &artifact("absent.onnx", &sum, 3)).unwrap_err();
    assert!(err.contains("absent.onnx"), "{err}");
}

#[test]
fn without_a_loader_the_error_says_onnx_is_needed() {
    let dir = TempDir::new("noloader");
    let onnx = read("scorer.onnx");
    std::fs::write(dir.0.join("scorer.onnx"), &onnx).unwrap();
    let err = LoadedRouter::from_bytes(
        &dir.0.join("custom.json").display().to_string(),
        "custom.json",
        &artifact("scorer.onnx", &sha256_hex(&onnx), 3),
        None,
        &VerifyPolicy::default(),
        None,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("ONNX support"), "{err}");
}
