//! The fault table: every upstream fault mode × (stream, non-stream) × (with, without a
//! fallback). Each request must end in a fallback success or a correct OpenAI-shaped error
//! (or, for a stream that already started, a final error event and no `[DONE]`), within the
//! configured timeout, never as a 200 with an empty body.

use std::time::{Duration, Instant};

use routeiq_testkit::{Behavior, ChunkStream, GatewayProcess, MockUpstream, closed_port_url};
use serde_json::{Value, json};

use crate::{metric_value, metrics_text};

fn template(fallback: bool) -> String {
    let fallbacks = if fallback {
        "  fallbacks:\n    - primary: [\"backup\"]\n    - dead: [\"backup\"]\n"
    } else {
        ""
    };
    format!(
        r#"
model_list:
  - model_name: primary
    litellm_params:
      model: openai/primary-model
      api_base: "{{MOCK}}"
      api_key: sk-x
      timeout: 1
      stream_timeout: 1
    model_info:
      id: primary-1
  - model_name: dead
    litellm_params:
      model: openai/dead-model
      api_base: "{dead}/v1"
      api_key: sk-x
      timeout: 1
    model_info:
      id: dead-1
  - model_name: backup
    litellm_params:
      model: openai/backup-model
      api_base: "{{MOCK}}"
      api_key: sk-x
    model_info:
      id: backup-1
router_settings:
  num_retries: 0
{fallbacks}"#,
        dead = closed_port_url()
    )
}

/// What a case must end in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 200 from the primary, complete.
    Ok,
    /// 200 from the fallback group, complete.
    Fallback,
    /// This status, with this OpenAI `error.type`.
    Error(u16, &'static str),
    /// A stream that started: 200, then a final error event and no `[DONE]`.
    StreamError,
}

struct Case {
    name: &'static str,
    group: &'static str,
    behavior: Behavior,
    /// Without a fallback, before the first byte.
    error: (u16, &'static str),
    /// Streams fail after their first chunk (no fallback possible any more).
    stream_breaks_after_start: bool,
    /// The call succeeds anyway (slow but within the timeout).
    succeeds: bool,
}

fn cases() -> Vec<Case> {
    let fail = |name, behavior, error| Case {
        name,
        group: "primary",
        behavior,
        error,
        stream_breaks_after_start: false,
        succeeds: false,
    };
    vec![
        fail(
            "429 with Retry-After",
            Behavior::rate_limited(Some(1)),
            (429, "rate_limit_error"),
        ),
        fail("500", Behavior::server_error(), (500, "api_error")),
        fail("503", Behavior::unavailable(), (503, "api_error")),
        Case {
            group: "dead",
            ..fail("connect refused", Behavior::Ok, (502, "api_error"))
        },
        fail("timeout (hang)", Behavior::Hang, (504, "timeout")),
        fail("reset mid-body", Behavior::ResetMidBody, (502, "api_error")),
        Case {
            stream_breaks_after_start: true,
            ..fail(
                "mid-stream cut",
                Behavior::CutStream { after_chunks: 1 },
                (502, "api_error"),
            )
        },
        Case {
            stream_breaks_after_start: true,
            ..fail(
                "stream ends without [DONE]",
                Behavior::EndStreamEarly { after_chunks: 1 },
                (502, "api_error"),
            )
        },
        Case {
            stream_breaks_after_start: true,
            ..fail(
                "error mid-stream",
                Behavior::ErrorMidStream { after_chunks: 1 },
                (500, "api_error"),
            )
        },
        Case {
            succeeds: true,
            ..fail(
                "slow trickle within the timeout",
                Behavior::Trickle { chunk_delay_ms: 50 },
                (0, ""),
            )
        },
    ]
}

fn expected(case: &Case, stream: bool, fallback: bool) -> Expect {
    if case.succeeds {
        Expect::Ok
    } else if stream && case.stream_breaks_after_start {
        Expect::StreamError
    } else if fallback {
        Expect::Fallback
    } else {
        Expect::Error(case.error.0, case.error.1)
    }
}

async fn run_case(
    gw: &GatewayProcess,
    mock: &MockUpstream,
    case: &Case,
    stream: bool,
    fallback: bool,
) {
    let label = format!("{} / stream={stream} / fallback={fallback}", case.name);
    mock.script("primary-model", vec![case.behavior.clone()]);
    let want = expected(case, stream, fallback);
    let started = Instant::now();
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .timeout(Duration::from_secs(10))
        .json(&json!({"model": case.group, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: no response: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    match want {
        Expect::Ok | Expect::Fallback => {
            assert_eq!(status, 200, "{label}");
            let group = if want == Expect::Fallback {
                "backup"
            } else {
                case.group
            };
            assert_eq!(headers["x-routeiq-model-group"], group, "{label}");
            if want == Expect::Fallback {
                assert_eq!(headers["x-routeiq-fallback"], "true", "{label}");
            }
            let content = if stream {
                let out = ChunkStream::read(resp).await;
                assert!(out.done, "{label}: {:?}", out.data);
                out.content()
            } else {
                let body: Value = resp.json().await.unwrap_or_else(|e| panic!("{label}: {e}"));
                body["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            assert!(!content.is_empty(), "{label}: a 200 with no content");
        }
        Expect::Error(code, kind) => {
            assert_eq!(status, code, "{label}");
            let body: Value = resp.json().await.unwrap_or_else(|e| panic!("{label}: {e}"));
            let err = &body["error"];
            assert_eq!(err["type"], kind, "{label}: {body}");
            assert!(
                err["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{label}"
            );
            assert!(
                err.get("param").is_some() && err.get("code").is_some(),
                "{label}"
            );
            if code == 429 {
                assert!(headers.contains_key("retry-after"), "{label}");
            }
        }
        Expect::StreamError => {
            assert_eq!(status, 200, "{label}");
            let out = ChunkStream::read(resp).await;
            let data = &out.data;
            assert!(
                !out.done,
                "{label}: a broken stream must not end with [DONE]"
            );
            assert!(data.len() >= 2, "{label}: {data:?}");
            let last = out.last().unwrap();
            assert!(last["error"]["message"].is_string(), "{label}: {last}");
            assert!(last["error"]["type"].is_string(), "{label}: {last}");
        }
    }
    // One attempt under a 1 s timeout, plus the fallback: never a hang.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "{label}: took {took:?}");
}

async fn run_table(fallback: bool) {
    let mock = MockUpstream::start().await;
    let gw = GatewayProcess::start(
        crate::bin(),
        &crate::render(&template(fallback), &mock),
        // Single-deployment groups cool down only for an upstream's own Retry-After (waited
        // out below); keep circuits closed so every case reaches the upstream (circuits have
        // their own test).
        &[("ROUTEIQ_CB_FAILURE_THRESHOLD", "1000")],
    )
    .await
    .unwrap();
    for case in cases() {
        for stream in [false, true] {
            run_case(&gw, &mock, &case, stream, fallback).await;
            // The upstream asked for a pause: the deployment honours it across requests, so
            // the next case starts once it is over.
            if let Behavior::Status {
                retry_after: Some(secs),
                ..
            } = &case.behavior
            {
                tokio::time::sleep(Duration::from_secs(*secs) + Duration::from_millis(100)).await;
            }
        }
    }
    let text = metrics_text(&gw).await;
    for class in [
        "rate_limit",
        "server_error",
        "unavailable",
        "timeout",
        "connection",
    ] {
        let primary = metric_value(
            &text,
            &format!(r#"routeiq_upstream_errors_total{{class="{class}",deployment="primary-1"}}"#),
        );
        let dead = metric_value(
            &text,
            &format!(r#"routeiq_upstream_errors_total{{class="{class}",deployment="dead-1"}}"#),
        );
        assert!(
            primary.unwrap_or(0.0) + dead.unwrap_or(0.0) > 0.0,
            "no {class} errors counted:\n{text}"
        );
    }
    for d in ["primary-1", "dead-1", "backup-1"] {
        let state = metric_value(
            &text,
            &format!(
                r#"routeiq_circuit_breaker_state{{deployment="{d}",model="{}"}}"#,
                d.trim_end_matches("-1")
            ),
        );
        assert_eq!(
            state,
            Some(0.0),
            "{d} circuit as configured (closed):\n{text}"
        );
    }
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_requests_total{model="backup",route="chat",status="200"}"#
        )
        .is_some(),
        fallback,
        "{text}"
    );
}

#[tokio::test]
async fn every_fault_mode_without_fallback_ends_in_a_correct_error() {
    run_table(false).await;
}

#[tokio::test]
async fn every_fault_mode_with_fallback_ends_in_a_fallback_success() {
    run_table(true).await;
}
