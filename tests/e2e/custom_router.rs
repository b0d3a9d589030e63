//! `llmrouter-custom` through the real binary: a router artifact naming a user's ONNX scorer
//! (the tiny one of `models/make_tiny_onnx.py`: `scores = embedding·W + b`, model 1 first
//! for every unit-norm embedding) routes each prompt, and `/router/explain` reports the
//! scorer's outputs as the predicted qualities. A build without ONNX refuses the strategy
//! with a clear message instead.

use std::path::{Path, PathBuf};

use routeiq::ml::{Embedder, HashedNgramEmbedder};
use routeiq_testkit::GatewayProcess;
use routeiq_testkit::TempDir;
use serde_json::{Value, json};

use crate::{bin, chat_body, header, post, start_with_env};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/tests/data/tiny")
        .join(name)
}

/// The models in the scorer's output order; the deployments below serve them.
const MODELS: [&str; 3] = ["coder", "talker", "big"];

/// Writes `scorer.onnx` and `custom.json` (the artifact naming it, with its sha256) into
/// `dir`; returns the artifact's path.
fn write_router(dir: &Path) -> String {
    let onnx = std::fs::read(tiny("scorer.onnx")).expect("scorer.onnx");
    std::fs::write(dir.join("scorer.onnx"), &onnx).expect("copy scorer");
    let artifact = json!({
        "format": "routeiq-router",
        "format_version": 1,
        "strategy": "llmrouter-custom",
        "version": "custom-e2e-1",
        "embedder": {"id": "hashed-ngram-v1-8", "dim": 8},
        "models": MODELS.iter().map(|m| json!({"name": m})).collect::<Vec<_>>(),
        "params": {
            "kind": "custom_onnx",
            "file": "scorer.onnx",
            "sha256": routeiq::ml::artifact::sha256_hex(&onnx),
        },
    });
    let path = dir.join("custom.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&artifact).expect("json")).expect("artifact");
    path.display().to_string()
}

fn config(model_path: &str) -> String {
    crate::ml_routing::config(model_path, "llmrouter-custom", "")
}

/// The scorer's outputs for `prompt`, from the W and b the model was built with.
fn expected_scores(prompt: &str) -> Vec<f64> {
    let v: Value = serde_json::from_slice(
        &std::fs::read(tiny("scorer_expected.json")).expect("scorer_expected.json"),
    )
    .expect("json");
    let emb = HashedNgramEmbedder::new(8)
        .expect("embedder")
        .embed(prompt)
        .expect("embedding");
    let w = v["w"].as_array().expect("w");
    v["b"]
        .as_array()
        .expect("b")
        .iter()
        .enumerate()
        .map(|(j, b)| {
            b.as_f64().expect("b[j]")
                + emb
                    .iter()
                    .zip(w)
                    .map(|(x, row)| f64::from(*x) * row[j].as_f64().expect("w[i][j]"))
                    .sum::<f64>()
        })
        .collect()
}

const PROMPT: &str = "Write a Python function that sorts a list of integers";

#[tokio::test]
async fn custom_onnx_router_routes_and_explains() {
    let work = TempDir::new("route");
    let model_path = write_router(&work.0);
    // Centroid routing off: a router that does not load stops the start instead of
    // silently routing by tiers.
    let env = [("ROUTEIQ_CENTROID_ROUTING", "false")];
    if routeiq::ml::predictor::default_scorer_loader().is_none() {
        // Built without ONNX (the gateway and this test share the `routeiq` features).
        let yaml = config(&model_path).replace("{MOCK}", "http://127.0.0.1:9/v1");
        let (code, stderr) = GatewayProcess::start_expect_failure(bin(), &yaml, &env)
            .await
            .expect("gateway run");
        assert_ne!(code, 0);
        assert!(stderr.contains("needs ONNX support"), "{stderr}");
        return;
    }
    let (mock, gw) = start_with_env(&config(&model_path), &env).await;

    let want = expected_scores(PROMPT);
    let first = (0..want.len())
        .max_by(|&a, &b| want[a].total_cmp(&want[b]))
        .expect("scores");
    assert_eq!(
        MODELS[first], "talker",
        "the tiny scorer ranks model 1 first"
    );

    let resp = post(&gw, "/v1/chat/completions", &chat_body("auto", PROMPT)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-strategy"), "llmrouter-custom");
    assert_eq!(header(&resp, "x-routeiq-decision-method"), "router");
    assert_eq!(header(&resp, "x-routeiq-router-version"), "custom-e2e-1");
    assert_eq!(header(&resp, "x-routeiq-model"), "dep-talker");
    let q: f64 = header(&resp, "x-routeiq-predicted-quality")
        .parse()
        .expect("quality header");
    assert!((q - want[first]).abs() < 1e-4, "{q} vs {want:?}");

    // Explain: the scorer's output per model, first choice first; no upstream call.
    let before = mock.requests().len();
    let resp = post(&gw, "/router/explain", &chat_body("auto", PROMPT)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("explain body");
    assert_eq!(mock.requests().len(), before);
    assert_eq!(body["strategy"], "llmrouter-custom");
    assert_eq!(body["decision"]["method"], "router", "{body}");
    let ranking = body["decision"]["ranking"].as_array().expect("ranking");
    assert_eq!(ranking.len(), 3, "{body}");
    assert_eq!(ranking[0]["deployment"], "dep-talker", "{body}");
    for r in ranking {
        let model = r["model"].as_str().expect("model");
        let j = MODELS
            .iter()
            .position(|m| *m == model)
            .unwrap_or_else(|| panic!("unknown model {model}"));
        let got = r["predicted_quality"].as_f64().expect("predicted_quality");
        assert!(
            (got - want[j]).abs() < 1e-5,
            "{model}: {got} vs {}",
            want[j]
        );
    }
}

#[tokio::test]
async fn custom_router_with_a_wrong_sha256_is_refused() {
    let work = TempDir::new("sha");
    let model_path = write_router(&work.0);
    // The model file changes after the artifact named it.
    std::fs::write(
        work.0.join("scorer.onnx"),
        std::fs::read(tiny("scorer_batch.onnx")).expect("scorer_batch.onnx"),
    )
    .expect("replace scorer");
    let yaml = config(&model_path).replace("{MOCK}", "http://127.0.0.1:9/v1");
    let (code, stderr) = GatewayProcess::start_expect_failure(
        bin(),
        &yaml,
        &[("ROUTEIQ_CENTROID_ROUTING", "false")],
    )
    .await
    .expect("gateway run");
    assert_ne!(code, 0);
    if routeiq::ml::predictor::default_scorer_loader().is_some() {
        assert!(
            stderr.contains("sha256") && stderr.contains("scorer.onnx"),
            "{stderr}"
        );
    } else {
        assert!(stderr.contains("needs ONNX support"), "{stderr}");
    }
}
