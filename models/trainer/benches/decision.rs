//! Decision latency of the ML strategies: embed a 64-token prompt and rank 9 candidates,
//! single-threaded, as the gateway does per request; plus the time to load each router
//! (artifact verification and decoding, embedder, centroids).
//!
//! `cargo bench -p routeiq-trainer --bench decision [-- DIR...]` (default: the committed
//! routers under models/routers and models/routers-static). Static-embedder routers need
//! the distilled table (`bash models/fetch_models.sh --static`; `ROUTEIQ_MODEL_DIR`);
//! transformer routers (`routeiq train --embedder transformer`) need `--features onnx`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::time::Instant;

use routeiq::ml::MlStrategyName;
use routeiq::ml::choice::CandidateModel;
use routeiq::ml::routing::{MlContext, MlEnv, MlRouting, MlSettings, PromptFeatures};

const WORDS: [&str; 24] = [
    "explain",
    "how",
    "the",
    "function",
    "returns",
    "a",
    "sorted",
    "list",
    "of",
    "integers",
    "when",
    "given",
    "input",
    "data",
    "from",
    "users",
    "and",
    "why",
    "complexity",
    "matters",
    "in",
    "python",
    "code",
    "reviews",
];

/// Prompts of about 64 tokens (≈ 50 words, ~260 characters).
fn prompts(n: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(3);
    (0..n)
        .map(|_| {
            (0..50)
                .map(|_| WORDS[rng.usize(..WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The built-in embedders, and the transformer with `--features onnx`.
fn embedder_for(
    spec: &routeiq::ml::artifact::EmbedderSpec,
    dir: Option<&str>,
) -> Result<std::sync::Arc<dyn routeiq::ml::Embedder>, String> {
    #[cfg(feature = "onnx")]
    if spec.id.starts_with("minilm") {
        let dir = dir
            .and_then(|d| Path::new(d).parent())
            .map(|p| p.join("minilm-l6-v2"))
            .ok_or("no model directory")?;
        return routeiq::ml::TransformerEmbedder::load(&dir)
            .map(|e| std::sync::Arc::new(e) as std::sync::Arc<dyn routeiq::ml::Embedder>)
            .map_err(|e| e.to_string());
    }
    routeiq::ml::routing::builtin_embedder(spec, dir)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn bench_dir(dir: &Path, env: &MlEnv) {
    let Ok(files) = routeiq_trainer::cli::artifact_files(dir) else {
        eprintln!("{}: not found, skipped", dir.display());
        return;
    };
    let texts = prompts(500);
    for f in files {
        let Some(strategy) = f
            .file_stem()
            .and_then(|s| MlStrategyName::parse(&s.to_string_lossy()).ok())
        else {
            continue;
        };
        let mut args = serde_json::Map::new();
        args.insert("model_path".into(), f.display().to_string().into());
        let Ok(settings) = MlSettings::from_args(strategy, &args) else {
            continue;
        };
        let ctx = MlContext {
            env: MlEnv {
                centroid_routing: false,
                ..env.clone()
            },
            embedders: std::sync::Arc::new(embedder_for),
            ..MlContext::default()
        };
        let started = Instant::now();
        let ml = match MlRouting::build(settings, &ctx) {
            Ok(ml) => ml,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                continue;
            }
        };
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let Some(router) = ml.slot().and_then(|s| s.current()) else {
            continue;
        };
        let cands: Vec<CandidateModel> = router
            .models
            .iter()
            .map(CandidateModel::from_spec)
            .collect();
        let decide = |t: &str| {
            ml.decide(
                &cands,
                &PromptFeatures {
                    text: t.to_string(),
                    estimated_tokens: routeiq::openai::estimate_tokens(t),
                    ..PromptFeatures::default()
                },
            )
        };
        for t in texts.iter().take(50) {
            std::hint::black_box(decide(t));
        }
        let mut times = Vec::with_capacity(3000);
        for i in 0..3000 {
            let t = &texts[i % texts.len()];
            let s = Instant::now();
            std::hint::black_box(decide(t));
            times.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<20} {:<24} load {:>7.1} ms | decision p50 {:.4} ms  p99 {:.4} ms  max {:.4} ms",
            strategy.as_str(),
            router.embedder.id,
            load_ms,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(0.0)
        );
    }
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = if dirs.is_empty() {
        vec![root.join("routers"), root.join("routers-static")]
    } else {
        dirs
    };
    let env = MlEnv::from_env(&|k| std::env::var(k).ok()).unwrap_or_default();
    println!("decision = embed one ~64-token prompt + predict + rank 9 candidates, one thread");
    for d in dirs {
        bench_dir(&d, &env);
    }
}
