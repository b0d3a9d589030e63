//! The routers committed under models/ load: each matches its manifest (size and sha256),
//! decodes, and the quickstart example config routes with them.

use std::path::{Path, PathBuf};

use routeiq::ml::artifact::VerifyPolicy;
use routeiq::ml::predictor::LoadedRouter;
use routeiq::ml::routing::{DecisionMethod, MlContext, MlRouting, PromptFeatures};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n != "manifest.json" && n != "eval.json")
        })
        .collect();
    files.sort();
    files
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
            let r = LoadedRouter::from_bytes(
                &f.display().to_string(),
                &name,
                &bytes,
                Some(&manifest),
                &VerifyPolicy::default(),
                None,
                None,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(r.verification.manifest_checked);
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
