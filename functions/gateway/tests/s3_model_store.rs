//! `S3ModelStore` against moto's S3 (started by `tests/run.sh`): a model directory uploaded
//! with the real AWS SDK is fetched into the local cache and verified against its manifest;
//! a new upload changes the version; a file that no longer matches the manifest is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use routeiq::ml::ModelStore;
use routeiq::ml::store::{Manifest, StoreError, fetch_verified};
use routeiq_gateway::s3::{S3ModelStore, UriModelStore};

async fn s3_client() -> aws_sdk_s3::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
        "no S3 endpoint: run the tests with `bash tests/run.sh`"
    );
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(routeiq_gateway::s3::aws_http_client())
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_verifies_caches_and_refuses_tampered_files() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = s3_client().await;
    let bucket = format!("routeiq-models-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();

    // A model directory: the file and a manifest with its sha256.
    let local = std::env::temp_dir().join(format!("routeiq-s3-model-{}", std::process::id()));
    std::fs::create_dir_all(&local).unwrap();
    let weights = b"router weights v1".to_vec();
    std::fs::write(local.join("router.json"), &weights).unwrap();
    let manifest = Manifest::for_files(
        "test-router",
        [("router.json", local.join("router.json").as_path())],
        serde_json::Map::new(),
    )
    .unwrap();
    put(&client, &bucket, "routers/r1/router.json", weights.clone()).await;
    put(
        &client,
        &bucket,
        "routers/r1/manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await;

    let env = |name: &str| std::env::var(name).ok();
    let cache = local.join("cache");
    let store = Arc::new(UriModelStore::with_s3(
        S3ModelStore::new(&cache, &env).await,
    ));
    let dir = format!("s3://{bucket}/routers/r1");

    let s = store.clone();
    let d = dir.clone();
    let model =
        tokio::task::spawn_blocking(move || fetch_verified(s.as_ref(), &d, &["router.json"]))
            .await
            .unwrap()
            .unwrap();
    let (name, path) = &model.files[0];
    assert_eq!(name, "router.json");
    assert!(path.starts_with(&cache), "{path:?}");
    assert_eq!(std::fs::read(path).unwrap(), weights);

    // The version is the object's ETag; a new upload changes it and lands in a new cache file.
    let s = store.clone();
    let uri = format!("{dir}/router.json");
    let u = uri.clone();
    let v1 = tokio::task::spawn_blocking(move || s.version(&u))
        .await
        .unwrap()
        .unwrap();
    assert!(!v1.is_empty());
    put(
        &client,
        &bucket,
        "routers/r1/router.json",
        b"tampered weights!".to_vec(),
    )
    .await;
    let s = store.clone();
    let u = uri.clone();
    let v2 = tokio::task::spawn_blocking(move || s.version(&u))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(v1, v2);

    // The manifest still describes v1: the tampered file is refused.
    let s = store.clone();
    let d = dir.clone();
    let err = tokio::task::spawn_blocking(move || fetch_verified(s.as_ref(), &d, &["router.json"]))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");

    // Local paths still go to the filesystem store.
    let s = store.clone();
    let p = local.join("router.json").display().to_string();
    let file = tokio::task::spawn_blocking(move || s.fetch(&p))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.path, local.join("router.json"));
    let _ = std::fs::remove_dir_all(&local);
}
