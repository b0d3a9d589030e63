//! The config from S3 (`CONFIG_S3_BUCKET`/`CONFIG_S3_KEY`) at start-up, and hot reload when
//! the object's ETag changes, against moto's S3 (started by `tests/run.sh`).

use std::time::{Duration, Instant};

use routeiq_testkit::{GatewayProcess, MockUpstream};
use serde_json::Value;

use crate::{bin, chat_body, get, post, render};

async fn put_object(bucket: &str, key: &str, body: &str) {
    routeiq_testkit::s3_put(bucket, key, "application/x-yaml", body.as_bytes().to_vec()).await;
}

fn config(group: &str) -> String {
    format!(
        "model_list:\n  - model_name: {group}\n    litellm_params:\n      model: openai/m\n      api_base: \"{{MOCK}}\"\n      api_key: k\n"
    )
}

async fn model_ids(gw: &GatewayProcess) -> Vec<String> {
    let v: Value = get(gw, "/v1/models").await.json().await.unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn config_loads_from_s3_and_reloads_when_the_object_changes() {
    let mock = MockUpstream::start().await;
    let bucket = format!("routeiq-config-{}", std::process::id());
    put_object(&bucket, "config.yaml", &render(&config("from-s3"), &mock)).await;
    let env = [
        ("CONFIG_S3_BUCKET", bucket.as_str()),
        ("CONFIG_S3_KEY", "config.yaml"),
        ("CONFIG_HOT_RELOAD", "true"),
        ("CONFIG_SYNC_INTERVAL", "0.3"),
    ];
    // The harness also passes a --config file: the S3 variables take precedence.
    let gw = GatewayProcess::start(bin(), "model_list: []\n", &env)
        .await
        .unwrap();
    assert!(gw.logs().contains("config loaded from S3"), "{}", gw.logs());
    assert_eq!(model_ids(&gw).await, vec!["from-s3"]);
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat_body("from-s3", "hi"))
            .await
            .status(),
        200
    );

    // A new object version: picked up within a few sync intervals.
    put_object(&bucket, "config.yaml", &render(&config("updated"), &mock)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while model_ids(&gw).await != vec!["updated"] {
        assert!(Instant::now() < deadline, "no reload:\n{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken upload is rejected and the running config keeps serving.
    put_object(&bucket, "config.yaml", "model_list:\n  - model_nme: x\n").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.logs().contains("config reload rejected") {
        assert!(Instant::now() < deadline, "no rejection:\n{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(model_ids(&gw).await, vec!["updated"]);
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat_body("updated", "hi"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn missing_s3_object_fails_start_clearly() {
    let env = [
        ("CONFIG_S3_BUCKET", "routeiq-no-such-bucket"),
        ("CONFIG_S3_KEY", "config.yaml"),
    ];
    let (code, stderr) = GatewayProcess::start_expect_failure(bin(), "model_list: []\n", &env)
        .await
        .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("s3://routeiq-no-such-bucket/config.yaml"),
        "{stderr}"
    );
}
