//! The gateway harness, exercised with the `mock-upstream` binary standing in for the gateway
//! (it accepts `--config/--host/--port` and answers `/health/liveliness`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::Duration;

use routeiq_testkit::{GatewayProcess, client, sse_events};
use serde_json::{Value, json};

const STAND_IN: &str = env!("CARGO_BIN_EXE_mock-upstream");

#[tokio::test]
async fn starts_waits_for_health_and_kills() {
    let mut gw = GatewayProcess::start(
        Path::new(STAND_IN),
        "model_list: []\n",
        &[("RUST_LOG", "info")],
    )
    .await
    .expect("stand-in should start");
    assert!(gw.base_url().starts_with("http://127.0.0.1:"));
    assert!(gw.pid() > 0);
    assert!(gw.config_path().exists());
    assert!(
        gw.wait_for_log("listening on", Duration::from_secs(5))
            .await,
        "{}",
        gw.logs()
    );
    assert!(gw.stdout().contains(&gw.base_url()));

    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .json(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["model"], "m");

    let config = gw.config_path().to_path_buf();
    assert!(gw.is_running());
    gw.kill();
    assert!(!gw.is_running());
    drop(gw);
    assert!(!config.exists(), "config file removed on drop");
}

#[tokio::test]
async fn start_fails_when_the_process_exits() {
    let err = GatewayProcess::start(Path::new("/bin/false"), "x: 1\n", &[])
        .await
        .err()
        .expect("must fail");
    assert!(
        err.to_string().contains("exited before getting healthy"),
        "{err:#}"
    );
    let err = GatewayProcess::start(Path::new("/nonexistent/gw"), "x: 1\n", &[])
        .await
        .err()
        .expect("must fail");
    assert!(format!("{err:#}").contains("spawning"), "{err:#}");
}

#[tokio::test]
async fn start_expect_failure_reports_code_and_stderr() {
    let (code, stderr) =
        GatewayProcess::start_expect_failure(Path::new("/bin/false"), "x: 1\n", &[])
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.is_empty());
    // The stand-in rejects an unknown flag: exit 2 with usage on stderr.
    let (code, stderr) = GatewayProcess::start_expect_failure(Path::new("/bin/sh"), "x: 1\n", &[])
        .await
        .unwrap();
    assert_ne!(code, 0);
    assert!(!stderr.is_empty());
}
