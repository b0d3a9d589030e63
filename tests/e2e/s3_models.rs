//! Router artifacts from S3 (`routing_strategy_args.model_path: s3://bucket/key`), against
//! moto's S3 (started by `tests/run.sh`): the committed kNN router on the static embedder
//! (built by `models/fetch_models.sh --static`) loads from S3, is verified against its
//! manifest and cached on local disk, a new object version is picked up by hot reload, and a
//! tampered upload is refused while the old router keeps serving.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use routeiq_testkit::GatewayProcess;
use serde_json::Value;

use crate::{bin, chat_body, header, post};

async fn put_object(bucket: &str, key: &str, body: Vec<u8>) {
    routeiq_testkit::s3_put(bucket, key, "application/octet-stream", body).await;
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> String {
    let dir = std::env::var("ROUTEIQ_MODEL_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/routeiq/models",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    assert!(
        Path::new(&dir)
            .join("static-minilm-pca128/table.riqs")
            .exists(),
        "no static embedder in {dir}: run `bash models/fetch_models.sh --static` (tests/run.sh does)"
    );
    dir
}

/// The committed quickstart deployments (`examples/ml-routing.yaml`, `mock_response`) with
/// an S3 router.
fn config(model_path: &str) -> String {
    let example = std::fs::read_to_string(repo().join("examples/ml-routing.yaml"))
        .expect("examples/ml-routing.yaml");
    let deployments = example
        .split("router_settings:")
        .next()
        .expect("the example has deployments");
    format!(
        "{deployments}router_settings:\n  routing_strategy: llmrouter-knn\n  routing_strategy_args:\n    \
         model_path: \"{model_path}\"\n    hot_reload: true\n    reload_interval: 0.3\n"
    )
}

/// (decision method, router version) of one routed request.
async fn decision(gw: &GatewayProcess) -> (String, String) {
    let resp = post(
        gw,
        "/v1/chat/completions",
        &chat_body("auto", "Solve 12*(3+4) and explain each step"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    (
        header(&resp, "x-routeiq-decision-method").to_string(),
        header(&resp, "x-routeiq-router-version").to_string(),
    )
}

/// `artifact` with another version string, and the manifest updated for it.
fn new_version(artifact: &[u8], manifest: &[u8], version: &str) -> (Vec<u8>, Vec<u8>) {
    let mut v: Value = serde_json::from_slice(artifact).expect("artifact JSON");
    v["version"] = Value::String(version.to_string());
    let bytes = serde_json::to_vec(&v).expect("JSON");
    let info = serde_json::json!({
        "embedder": v["embedder"]["id"], "strategy": v["strategy"], "version": version
    });
    let manifest =
        routeiq::ml::artifact::update_manifest(Some(manifest), "knn.json", &bytes, info, None)
            .expect("manifest");
    (bytes, manifest)
}

#[tokio::test]
async fn router_from_s3_loads_hot_reloads_and_survives_a_tampered_upload() {
    let models = model_dir();
    let dir = repo().join("models/routers-static");
    let artifact = std::fs::read(dir.join("knn.json")).expect("knn.json");
    let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
    let v1: Value = serde_json::from_slice(&artifact).expect("artifact JSON");
    let v1 = v1["version"].as_str().expect("version").to_string();

    let bucket = format!("routeiq-models-{}", std::process::id());
    put_object(&bucket, "routers/knn.json", artifact.clone()).await;
    put_object(&bucket, "routers/manifest.json", manifest.clone()).await;
    let cache =
        std::env::temp_dir().join(format!("routeiq-e2e-model-cache-{}", std::process::id()));
    let cache_str = cache.display().to_string();
    let env = [
        ("ROUTEIQ_MODEL_DIR", models.as_str()),
        ("ROUTEIQ_MODEL_CACHE_DIR", cache_str.as_str()),
    ];
    let gw = GatewayProcess::start(
        bin(),
        &config(&format!("s3://{bucket}/routers/knn.json")),
        &env,
    )
    .await
    .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    assert!(gw.logs().contains("S3 model store ready"), "{}", gw.logs());

    // The router from S3 decides (not the centroid fallback), at its version.
    assert_eq!(decision(&gw).await, ("router".to_string(), v1.clone()));
    // The object was downloaded into the cache directory once, under its ETag.
    let cached: Vec<_> = walk(&cache);
    assert!(
        cached
            .iter()
            .any(|p| p.to_string_lossy().ends_with("-knn.json")),
        "{cached:?}"
    );

    // A new version: artifact, then manifest (a deploy pipeline's order). Hot reload picks it up.
    let v2 = format!("{v1}-s3-v2");
    let (artifact2, manifest2) = new_version(&artifact, &manifest, &v2);
    put_object(&bucket, "routers/knn.json", artifact2.clone()).await;
    put_object(&bucket, "routers/manifest.json", manifest2.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (method, version) = decision(&gw).await;
        assert_eq!(method, "router");
        if version == v2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reload to {v2}:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A tampered artifact (its manifest not updated): refused, v2 keeps serving.
    let (tampered, _) = new_version(&artifact, &manifest, "tampered");
    put_object(&bucket, "routers/knn.json", tampered).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.logs().contains("does not match its manifest") {
        assert!(
            Instant::now() < deadline,
            "tampered file not refused:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        assert_eq!(decision(&gw).await, ("router".to_string(), v2.clone()));
    }
    let _ = std::fs::remove_dir_all(&cache);
}

/// The embedding model from S3 too (`embedder_path: s3://…`): the static table is fetched,
/// checked against its directory's manifest and used; a tampered table is refused and the
/// router falls back to centroid routing, saying why.
#[tokio::test]
async fn embedding_model_from_s3_is_verified_and_used() {
    let local = Path::new(&model_dir()).join("static-minilm-pca128");
    let table = std::fs::read(local.join("table.riqs")).expect("table.riqs");
    let table_manifest = std::fs::read(local.join("manifest.json")).expect("manifest.json");
    let dir = repo().join("models/routers-static");
    let bucket = format!("routeiq-embedder-{}", std::process::id());
    put_object(
        &bucket,
        "routers/knn.json",
        std::fs::read(dir.join("knn.json")).unwrap(),
    )
    .await;
    put_object(
        &bucket,
        "routers/manifest.json",
        std::fs::read(dir.join("manifest.json")).unwrap(),
    )
    .await;
    put_object(&bucket, "emb/good/table.riqs", table.clone()).await;
    put_object(&bucket, "emb/good/manifest.json", table_manifest.clone()).await;
    let mut tampered = table.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    put_object(&bucket, "emb/bad/table.riqs", tampered).await;
    put_object(&bucket, "emb/bad/manifest.json", table_manifest).await;

    let cache =
        std::env::temp_dir().join(format!("routeiq-e2e-embedder-cache-{}", std::process::id()));
    let cache_str = cache.display().to_string();
    // No local model directory: the table can only come from S3.
    let env = [
        ("ROUTEIQ_MODEL_DIR", "/nonexistent/routeiq-models"),
        ("ROUTEIQ_MODEL_CACHE_DIR", cache_str.as_str()),
    ];
    let with_embedder = |prefix: &str| {
        config(&format!("s3://{bucket}/routers/knn.json"))
            + &format!("    embedder_path: \"s3://{bucket}/emb/{prefix}\"\n")
    };
    let gw = GatewayProcess::start(bin(), &with_embedder("good"), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    assert_eq!(decision(&gw).await.0, "router", "{}", gw.logs());
    assert!(
        walk(&cache)
            .iter()
            .any(|p| p.to_string_lossy().ends_with("table.riqs")),
        "table not cached under {cache_str}"
    );
    drop(gw);

    let gw = GatewayProcess::start(bin(), &with_embedder("bad"), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("auto", "Solve 12*(3+4) and explain each step"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-decision-method"), "centroid");
    assert!(gw.logs().contains("table.riqs"), "{}", gw.logs());
    let _ = std::fs::remove_dir_all(&cache);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
