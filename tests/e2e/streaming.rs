//! Streaming: chunks arrive as SSE, `[DONE]` closes a complete stream, failures before the
//! first byte are retried, failures after it end with an error event — never an empty 200,
//! never a hang.

use std::time::{Duration, Instant};

use routeiq_testkit::{Behavior, ChunkStream};
use serde_json::{Value, json};

use crate::{BASIC, header, post, start};

fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "tell me a story"}]})
}

#[tokio::test]
async fn openai_stream_relays_chunks_and_done() {
    let (mock, gw) = start(BASIC).await;
    let resp = post(&gw, "/v1/chat/completions", &stream_body("gpt")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert!(resp.headers().contains_key("x-routeiq-model"));
    let out = ChunkStream::read(resp).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.done);
    let text = out.content();
    assert!(text.starts_with("mock answer from model-"), "{text}");
    assert_eq!(out.chunks[0]["object"], "chat.completion.chunk");
    assert!(mock.last_request().unwrap().is_stream());
    // The client did not ask for usage: no usage-only chunk.
    assert!(
        out.chunks
            .iter()
            .all(|v| !v["choices"].as_array().unwrap().is_empty())
    );
}

#[tokio::test]
async fn anthropic_stream_becomes_openai_chunks_with_usage() {
    let (_mock, gw) = start(BASIC).await;
    let mut body = stream_body("claude");
    body["stream_options"] = json!({"include_usage": true});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out = ChunkStream::read(resp).await;
    assert!(out.done);
    assert_eq!(out.content(), "mock answer from claude-test");
    assert_eq!(out.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(out.finished_with("stop"));
    let usage = out.usage().expect("usage chunk");
    assert!(usage["total_tokens"].as_u64().unwrap() > 0);
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
    let out = ChunkStream::read(resp).await;
    assert!(out.done);
    assert!(out.content().starts_with("mock answer"));
}

#[tokio::test]
async fn stream_cut_after_first_chunk_ends_with_error_event() {
    let (mock, gw) = start(BASIC).await;
    mock.script("model-a", vec![Behavior::CutStream { after_chunks: 2 }]);
    mock.script("model-b", vec![Behavior::CutStream { after_chunks: 2 }]);
    let resp = post(&gw, "/v1/chat/completions", &stream_body("gpt")).await;
    assert_eq!(resp.status(), 200);
    let out = ChunkStream::read(resp).await;
    assert!(!out.done, "a cut stream must not look complete");
    let last = out.last().unwrap();
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
    let out = ChunkStream::read(resp).await;
    assert!(!out.done);
    let last = out.last().unwrap();
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
    let out = ChunkStream::read(resp).await;
    assert!(out.done);
    let text = out.text();
    assert!(text.contains("mock answer"), "{text}");
}
