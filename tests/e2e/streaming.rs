//! Streaming: chunks arrive as SSE, `[DONE]` closes a complete stream, failures before the
//! first byte are retried, failures after it end with an error event — never an empty 200,
//! never a hang.

use std::time::{Duration, Instant};

use routeiq_testkit::{Behavior, read_sse};
use serde_json::{Value, json};

use crate::{BASIC, header, post, start};

fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "tell me a story"}]})
}

fn content_of(events: &[String]) -> String {
    events
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn openai_stream_relays_chunks_and_done() {
    let (mock, gw) = start(BASIC).await;
    let resp = post(&gw, "/v1/chat/completions", &stream_body("gpt")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert!(resp.headers().contains_key("x-routeiq-model"));
    let out = read_sse(resp).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.ends_with_done());
    let data = out.data();
    let text = content_of(&data);
    assert!(text.starts_with("mock answer from model-"), "{text}");
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert!(mock.last_request().unwrap().is_stream());
    // The client did not ask for usage: no usage-only chunk.
    assert!(data.iter().filter(|d| *d != "[DONE]").all(|d| {
        let v: Value = serde_json::from_str(d).unwrap();
        !v["choices"].as_array().unwrap().is_empty()
    }));
}

#[tokio::test]
async fn anthropic_stream_becomes_openai_chunks_with_usage() {
    let (_mock, gw) = start(BASIC).await;
    let mut body = stream_body("claude");
    body["stream_options"] = json!({"include_usage": true});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out = read_sse(resp).await;
    assert!(out.ends_with_done());
    let data = out.data();
    assert_eq!(content_of(&data), "mock answer from claude-test");
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .expect("usage chunk");
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn stream_failing_before_first_byte_is_retried() {
    let (mock, gw) = start(&BASIC.replace("num_retries: 0", "num_retries: 2")).await;
    mock.fail_times("model-a", 1, Behavior::CutStream { after_chunks: 0 });
    mock.fail_times("model-b", 1, Behavior::CutStream { after_chunks: 0 });
    let resp = post(&gw, "/v1/chat/completions", &stream_body("gpt")).await;
    assert_eq!(resp.status(), 200);
    let attempts: u32 = header(&resp, "x-routeiq-attempts").parse().unwrap();
    assert!(attempts >= 2, "{attempts}");
    let out = read_sse(resp).await;
    assert!(out.ends_with_done());
    assert!(content_of(&out.data()).starts_with("mock answer"));
}

#[tokio::test]
async fn stream_cut_after_first_chunk_ends_with_error_event() {
    let (mock, gw) = start(BASIC).await;
    mock.script("model-a", vec![Behavior::CutStream { after_chunks: 2 }]);
    mock.script("model-b", vec![Behavior::CutStream { after_chunks: 2 }]);
    let resp = post(&gw, "/v1/chat/completions", &stream_body("gpt")).await;
    assert_eq!(resp.status(), 200);
    let out = read_sse(resp).await;
    assert!(!out.ends_with_done(), "a cut stream must not look complete");
    let last: Value = serde_json::from_str(out.data().last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{last}");
}

#[tokio::test]
async fn upstream_error_event_mid_stream_is_relayed_as_error() {
    let (mock, gw) = start(BASIC).await;
    mock.script(
        "claude-test",
        vec![Behavior::ErrorMidStream { after_chunks: 3 }],
    );
    let resp = post(&gw, "/v1/chat/completions", &stream_body("claude")).await;
    assert_eq!(resp.status(), 200);
    let out = read_sse(resp).await;
    assert!(!out.ends_with_done());
    let last: Value = serde_json::from_str(out.data().last().unwrap()).unwrap();
    assert!(last["error"].is_object(), "{last}");
}

#[tokio::test]
async fn stalled_stream_times_out_instead_of_hanging() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: slow
    litellm_params:
      model: openai/slow-model
      api_base: "{MOCK}"
      api_key: sk-x
      stream_timeout: 0.5
router_settings:
  num_retries: 0
"#,
    )
    .await;
    mock.script(
        "slow-model",
        vec![Behavior::Trickle {
            chunk_delay_ms: 2_000,
        }],
    );
    let started = Instant::now();
    let resp = post(&gw, "/v1/chat/completions", &stream_body("slow")).await;
    // The first chunk never arrives within stream_timeout: a 504 before any byte.
    assert_eq!(resp.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn completions_stream() {
    let (_mock, gw) = start(BASIC).await;
    let resp = post(
        &gw,
        "/v1/completions",
        &json!({"model": "gpt", "prompt": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out = read_sse(resp).await;
    assert!(out.ends_with_done());
    let text: String = out
        .data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert!(text.contains("mock answer"), "{text}");
}
