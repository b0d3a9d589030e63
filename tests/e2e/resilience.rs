//! Resilience end to end: load shedding, graceful drain on SIGTERM, circuit breakers.

use std::time::{Duration, Instant};

use futures::StreamExt;
use routeiq_testkit::{Behavior, GatewayProcess};
use serde_json::json;

use crate::{chat_body, error_of, get, header, metric_value, metrics_text, post, start_with_env};

const ONE: &str = r#"
model_list:
  - model_name: one
    litellm_params:
      model: openai/one-model
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: one-1
router_settings:
  num_retries: 0
"#;

#[tokio::test]
async fn over_the_concurrency_limit_requests_are_shed_with_503() {
    let (mock, gw) = start_with_env(ONE, &[("ROUTEIQ_MAX_CONCURRENT_REQUESTS", "2")]).await;
    mock.script("one-model", vec![Behavior::Delay(1500)]);
    let base = gw.base_url();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            routeiq_testkit::client()
                .post(format!("{base}/v1/chat/completions"))
                .json(&chat_body("one", "hi"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    // Wait until both are at the upstream, then overflow.
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.hits("one-model") < 2 {
        assert!(
            Instant::now() < deadline,
            "requests never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..4 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("one", "hi")).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(header(&resp, "retry-after"), "1");
        assert!(!header(&resp, "x-request-id").is_empty());
        let err = error_of(resp).await;
        assert_eq!(err["code"], "server_overloaded");
    }
    // Probes and metrics are never shed.
    assert_eq!(get(&gw, "/health/liveliness").await.status(), 200);
    assert_eq!(get(&gw, "/health/readiness").await.status(), 200);
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(&text, "routeiq_load_shed_total"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "routeiq_in_flight_requests"),
        Some(2.0),
        "{text}"
    );
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // Capacity is back.
    mock.script("one-model", vec![Behavior::Ok]);
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat_body("one", "hi"))
            .await
            .status(),
        200
    );
}

fn sigterm(gw: &GatewayProcess) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_exit(gw: &mut GatewayProcess, limit: Duration) -> Duration {
    let started = Instant::now();
    while gw.is_running() {
        assert!(
            started.elapsed() < limit,
            "gateway still running {limit:?} after SIGTERM:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn sigterm_drains_in_flight_streams_then_exits() {
    let (mock, mut gw) = start_with_env(ONE, &[("ROUTEIQ_DRAIN_TIMEOUT_SECONDS", "10")]).await;
    mock.script(
        "one-model",
        vec![Behavior::Trickle {
            chunk_delay_ms: 250,
        }],
    );
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .json(&json!({"model": "one", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    sigterm(&gw);
    assert!(
        gw.wait_for_log("draining", Duration::from_secs(5)).await,
        "{}",
        gw.logs()
    );
    // New connections are refused while the stream goes on.
    let refused = routeiq_testkit::client()
        .get(format!("{}/health/liveliness", gw.base_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    let mut rest = first.to_vec();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.expect("the stream finished cleanly"));
    }
    let text = String::from_utf8(rest).unwrap();
    assert!(routeiq_testkit::ChunkStream::parse(&text).done, "{text}");
    let took = wait_exit(&mut gw, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5));
    assert!(gw.logs().contains("drained"), "{}", gw.logs());
}

#[tokio::test]
async fn drain_gives_up_after_its_timeout() {
    let template = ONE.replace("api_key: sk-x", "api_key: sk-x\n      timeout: 60");
    let (mock, mut gw) = start_with_env(&template, &[("ROUTEIQ_DRAIN_TIMEOUT_SECONDS", "1")]).await;
    mock.script("one-model", vec![Behavior::Hang]);
    let base = gw.base_url();
    let hung = tokio::spawn(async move {
        routeiq_testkit::client()
            .post(format!("{base}/v1/chat/completions"))
            .json(&chat_body("one", "hi"))
            .send()
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.hits("one-model") < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signalled = Instant::now();
    sigterm(&gw);
    wait_exit(&mut gw, Duration::from_secs(6)).await;
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(gw.logs().contains("drain timeout reached"), "{}", gw.logs());
    assert!(
        hung.await.unwrap().is_err(),
        "the hung request was cut at exit"
    );
}

#[tokio::test]
async fn circuit_opens_skips_the_deployment_then_recovers() {
    let (mock, gw) = start_with_env(
        ONE,
        &[
            ("ROUTEIQ_CB_FAILURE_THRESHOLD", "2"),
            ("ROUTEIQ_CB_SUCCESS_THRESHOLD", "1"),
            ("ROUTEIQ_CB_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    mock.script("one-model", vec![Behavior::server_error()]);
    for _ in 0..2 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("one", "hi")).await;
        assert_eq!(resp.status(), 500);
    }
    // Open: the deployment is not called at all.
    let resp = post(&gw, "/v1/chat/completions", &chat_body("one", "hi")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "retry-after"), "1");
    let err = error_of(resp).await;
    assert_eq!(err["code"], "circuit_open");
    assert!(
        err["message"].as_str().unwrap().contains("circuit breaker"),
        "{err}"
    );
    assert_eq!(mock.hits("one-model"), 2);
    let ready: serde_json::Value = get(&gw, "/health/readiness").await.json().await.unwrap();
    assert_eq!(
        ready["circuit_breakers"]["open"],
        json!(["one-1"]),
        "{ready}"
    );
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_circuit_breaker_state{deployment="one-1",model="one"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // After the timeout a trial goes through; its success closes the circuit.
    mock.script("one-model", vec![Behavior::Ok]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_circuit_breaker_state{deployment="one-1",model="one"}"#
        ),
        Some(2.0),
        "half-open after the timeout: {text}"
    );
    let resp = post(&gw, "/v1/chat/completions", &chat_body("one", "hi")).await;
    assert_eq!(resp.status(), 200);
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_circuit_breaker_state{deployment="one-1",model="one"}"#
        ),
        Some(0.0),
        "{text}"
    );
    let ready: serde_json::Value = get(&gw, "/health/readiness").await.json().await.unwrap();
    assert_eq!(ready["circuit_breakers"]["open"], json!([]), "{ready}");
}
