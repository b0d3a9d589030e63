//! Observability end to end: one JSON log line per request (no message content), trace ids,
//! Prometheus metrics, and OpenTelemetry traces over OTLP/HTTP to a collector on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use routeiq_testkit::{Behavior, read_sse};
use serde_json::{Value, json};

use crate::{BASIC, chat_body, metric_value, metrics_text, start_with_env};

/// The JSON log lines whose message is `request`.
fn request_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request" && v["target"] == "routeiq::request")
        .collect()
}

async fn wait_for_request_line(gw: &routeiq_testkit::GatewayProcess, trace_id: &str) -> Value {
    let needle = format!("\"trace_id\":\"{trace_id}\"");
    assert!(
        gw.wait_for_log(&needle, Duration::from_secs(5)).await,
        "no request line for {trace_id}:\n{}",
        gw.logs()
    );
    request_lines(&gw.logs())
        .into_iter()
        .find(|v| v["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("request line for {trace_id} is not JSON:\n{}", gw.logs()))
}

#[tokio::test]
async fn one_json_line_per_request_with_decision_and_no_content() {
    let (_mock, gw) = start_with_env(BASIC, &[("JSON_LOGS", "true")]).await;
    let client = routeiq_testkit::client();
    let secret = "my-private-prompt-text-7731";
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("x-request-id", "req-abc-123")
        .json(&chat_body("gpt", secret))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(crate::header(&resp, "x-request-id"), "req-abc-123");
    let line = wait_for_request_line(&gw, "req-abc-123").await;
    assert_eq!(line["model_group"], "gpt");
    assert!(
        line["deployment"] == "gpt-a" || line["deployment"] == "gpt-b",
        "{line}"
    );
    assert_eq!(line["strategy"], "simple-shuffle");
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "chat");
    assert!(line["decision_ms"].as_f64().is_some(), "{line}");
    assert!(line["upstream_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert!(line["total_tokens"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(line["attempts"], 1);

    // A W3C traceparent names the trace; the id comes back as x-request-id.
    let resp = client
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .json(&json!({"model": "gpt", "stream": true,
            "messages": [{"role": "user", "content": secret}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::header(&resp, "x-request-id"),
        "0af7651916cd43dd8448eb211c80319c"
    );
    let outcome = read_sse(resp).await;
    assert!(outcome.ends_with_done(), "{:?}", outcome.data());
    let line = wait_for_request_line(&gw, "0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!(line["stream"], true);
    assert!(line["completion_tokens"].as_u64().is_some(), "{line}");

    // Errors get a line too, and a generated id.
    let resp = crate::post(&gw, "/v1/chat/completions", &chat_body("nope", secret)).await;
    assert_eq!(resp.status(), 404);
    let id = crate::header(&resp, "x-request-id").to_string();
    assert_eq!(id.len(), 32, "{id}");
    let line = wait_for_request_line(&gw, &id).await;
    assert_eq!(line["status"], 404);
    assert!(line.get("model_group").is_none_or(Value::is_null), "{line}");

    let logs = gw.logs();
    assert!(
        !logs.contains(secret),
        "message content reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains("mock answer from"),
        "answer content reached the logs"
    );
    assert!(
        !logs.contains("sk-upstream"),
        "an upstream key reached the logs"
    );
    assert!(
        !logs.contains("exporting OpenTelemetry"),
        "OTLP must stay off without an endpoint"
    );
}

#[tokio::test]
async fn metrics_cover_requests_decisions_tokens_errors_and_circuits() {
    let (mock, gw) = start_with_env(BASIC, &[]).await;
    for _ in 0..3 {
        let resp = crate::post(&gw, "/v1/chat/completions", &chat_body("gpt", "hi")).await;
        assert_eq!(resp.status(), 200);
    }
    mock.script("embed-model", vec![Behavior::server_error()]);
    let resp = crate::post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "embed", "input": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 500);
    let resp = crate::post(
        &gw,
        "/v1/chat/completions",
        &chat_body("model-from-the-client", "hi"),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_requests_total{model="gpt",route="chat",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_requests_total{model="embed",route="embeddings",status="500"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_requests_total{model="none",route="chat",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("model-from-the-client"),
        "request data must never become a label"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_routing_decision_duration_seconds_count{model="gpt",strategy="simple-shuffle"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        metric_value(&text, r#"routeiq_tokens_total{kind="prompt",model="gpt"}"#)
            .is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_upstream_errors_total{class="server_error",deployment="embed-1"}"#
        ),
        Some(1.0),
        "{text}"
    );
    for d in ["gpt-a", "gpt-b", "claude-1", "embed-1"] {
        assert!(
            text.contains(&format!(
                "routeiq_circuit_breaker_state{{deployment=\"{d}\""
            )),
            "{text}"
        );
    }
    assert!(text.contains("routeiq_request_duration_seconds_bucket"));
}

/// One POST the collector received: path, content type, body.
type Post = (String, String, Vec<u8>);

/// What the in-test collector received.
#[derive(Default, Clone)]
struct Received(Arc<Mutex<Vec<Post>>>);

async fn collector() -> (String, Received) {
    let received = Received::default();
    let r = received.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let r = r.clone();
        async move {
            let path = req.uri().path().to_string();
            let ct = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = axum::body::to_bytes(req.into_body(), 16 << 20)
                .await
                .unwrap_or_default();
            r.0.lock().unwrap().push((path, ct, body.to_vec()));
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), received)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn otlp_traces_reach_the_collector_with_request_routing_and_upstream_spans() {
    let (endpoint, received) = collector().await;
    let (_mock, gw) = start_with_env(
        BASIC,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "routeiq-e2e"),
        ],
    )
    .await;
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("traceparent", format!("00-{trace_hex}-00f067aa0ba902b7-01"))
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let posts = received.0.lock().unwrap().clone();
        let all: Vec<u8> = posts.iter().flat_map(|(_, _, b)| b.clone()).collect();
        let complete = ["request", "routing_decision", "upstream_call"]
            .iter()
            .all(|n| contains(&all, n.as_bytes()));
        if complete {
            for (path, ct, _) in &posts {
                assert_eq!(path, "/v1/traces");
                assert_eq!(ct, "application/x-protobuf");
            }
            assert!(contains(&all, &trace_id), "spans joined the caller's trace");
            assert!(
                contains(&all, b"routeiq-e2e"),
                "service name from OTEL_SERVICE_NAME"
            );
            assert!(contains(&all, b"candidates_count"));
            assert!(contains(&all, b"model_selected"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spans did not arrive; got {} post(s): {:?}; logs:\n{}",
            posts.len(),
            posts
                .iter()
                .map(|(p, c, b)| (p, c, String::from_utf8_lossy(b).to_string()))
                .collect::<Vec<_>>(),
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
