//! The routers committed under models/ load: each matches its manifest (size and sha256),
//! decodes, and the quickstart example config routes with them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};

use routeiq::ml::artifact::VerifyPolicy;
use routeiq::ml::predictor::LoadedRouter;
use routeiq::ml::routing::{DecisionMethod, MlContext, MlRouting, PromptFeatures};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Signatures enforced, trusting only the project's public key (`models/signing-key.pub`).
fn project_policy() -> VerifyPolicy {
    let hex = std::fs::read_to_string(models_dir().join("signing-key.pub")).expect("public key");
    VerifyPolicy {
        enforce_signed: true,
        trusted_keys: vec![routeiq::ml::artifact::parse_public_key(hex.trim()).expect("key")],
    }
}

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    routeiq_trainer::cli::artifact_files(dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn committed_routers_match_their_manifests() {
    for dir in ["routers", "routers-static"] {
        let dir = models_dir().join(dir);
        let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
        let files = artifacts(&dir);
        assert_eq!(files.len(), 8, "{}", dir.display());
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            // Signed by the project key: they load with signatures enforced.
            let r = LoadedRouter::from_bytes(
                &f.display().to_string(),
                &name,
                &bytes,
                Some(&manifest),
                &project_policy(),
                None,
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.verification.manifest_checked);
            assert_eq!(
                r.verification.signed_by.as_deref(),
                Some(
                    std::fs::read_to_string(models_dir().join("signing-key.pub"))
                        .unwrap()
                        .trim()
                )
            );
            assert_eq!(r.models.len(), 9);
            assert_eq!(format!("{}.json", r.strategy.short()), name);
        }
    }
}

#[test]
fn example_config_routes_with_the_committed_knn() {
    let root = models_dir().join("..");
    let yaml = std::fs::read_to_string(root.join("examples/ml-routing.yaml")).unwrap();
    let knn = models_dir().join("routers/knn.json");
    let yaml = yaml.replace("models/routers/knn.json", &knn.display().to_string());
    let cfg = routeiq::config::load_str(&yaml).unwrap().config;
    let settings = cfg
        .router_settings
        .routing_strategy_args
        .ml
        .clone()
        .unwrap();
    let ml = MlRouting::build(settings, &MlContext::default()).unwrap();
    let router = routeiq::router::Router::with_ml_routing(
        &cfg,
        std::sync::Arc::new(routeiq::state::InMemoryStateStore::new(
            std::sync::Arc::new(routeiq::state::SystemClock),
        )),
        std::sync::Arc::new(routeiq::state::SystemClock),
        std::sync::Arc::new(ml),
    );
    let cands: Vec<_> = router
        .deployments()
        .map(|d| router.strategy().ml().unwrap().candidate(d))
        .collect();
    assert_eq!(cands.len(), 9);
    assert!(
        cands
            .iter()
            .all(|c| c.input_cost_per_token.is_some() && c.size_b.is_some())
    );
    let d = router.strategy().ml().unwrap().decide(
        &cands,
        &PromptFeatures {
            text: "Janet has 3 apples and buys 5 more. How many apples does she have?".into(),
            estimated_tokens: 20,
            ..PromptFeatures::default()
        },
    );
    assert_eq!(d.method, DecisionMethod::Router);
    assert_eq!(d.ranking.len(), 9);
    assert!(
        d.ranking[0].predicted_quality.unwrap() > 0.5,
        "{:?}",
        d.ranking[0]
    );
}

/// The committed edge model is the one its manifest names, loads (its own checksum), and
/// still classifies the held-out split as its report says.
#[test]
fn committed_edge_model_matches_its_manifest_and_report() {
    use routeiq::edge::{ClientGeo, EdgeClassifier, EdgeConfig, EdgeModel};
    let dir = models_dir().join("edge");
    let bytes = std::fs::read(dir.join("edge-tier-v1.bin")).expect("edge model");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let model = EdgeModel::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest["sha256"].as_str(), Some(model.sha256()));
    assert_eq!(manifest["bytes"].as_u64(), Some(bytes.len() as u64));

    let data = routeiq_trainer::cli::load_data(&models_dir().join("../../shared/data/llmrouter"))
        .expect("routing data");
    let fraction = manifest["val_fraction"].as_f64().unwrap();
    let salt = manifest["salt"].as_str().unwrap();
    let (_, val) = data.split(fraction, salt);
    let margin = manifest["margin"].as_f64().unwrap() as f32;
    let labels = routeiq_trainer::edge::labels(&val, margin);
    let c = EdgeClassifier::new(model, EdgeConfig::default());
    let right = val
        .prompts
        .iter()
        .zip(&labels)
        .filter(|(p, want)| {
            let body =
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": p}]});
            c.classify(body.to_string().as_bytes(), &ClientGeo::default())
                .is_some_and(|h| h.tier == **want)
        })
        .count();
    let accuracy = right as f64 / val.len() as f64;
    let reported = manifest["report"]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - reported).abs() < 1e-9,
        "{accuracy} vs {reported}"
    );
    // Routing by the predicted tier beats mixing the two tiers blindly at the same cost.
    let row = |name: &str| {
        let p = manifest["report"]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["policy"].as_str().is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("no policy {name}"));
        (
            p["quality"].as_f64().unwrap(),
            p["cost_per_1k"].as_f64().unwrap(),
        )
    };
    let (qe, ce) = row("edge tier");
    let (qs, cs) = row("always simple");
    let (qm, cm) = row("always medium");
    let blind = qs + (ce - cs) * (qm - qs) / (cm - cs);
    assert!(
        ce > cs && ce < cm && qe > blind,
        "edge {qe} at {ce}; blind mix {blind}"
    );
}
