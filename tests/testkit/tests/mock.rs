//! The mock upstream behaves like the real services.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use routeiq_testkit::mock::{Behavior, MockUpstream};
use routeiq_testkit::{client, read_sse, sse_events};
use serde_json::{Value, json};

fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request failed")
}

fn anthropic(url: &str) -> reqwest::RequestBuilder {
    client()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
}

#[tokio::test]
async fn openai_chat_non_stream_answers_with_model_and_usage() {
    let mock = MockUpstream::start().await;
    let resp = post(
        &format!("{}/chat/completions", mock.openai_base()),
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock answer from gpt-4o"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 3); // "hello there": 11 chars
    assert_eq!(v["usage"]["completion_tokens"], 6); // 23 chars
    assert_eq!(v["usage"]["total_tokens"], 9);
}

#[tokio::test]
async fn scripted_429_then_ok_is_observed() {
    let mock = MockUpstream::start().await;
    mock.script(
        "gpt-4o",
        vec![Behavior::rate_limited(Some(2)), Behavior::Ok],
    );
    let url = format!("{}/v1/chat/completions", mock.base_url());

    let first = post(&url, &chat_body("gpt-4o", false)).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "2");
    let err: Value = first.json().await.unwrap();
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");

    let second = post(&url, &chat_body("gpt-4o", false)).await;
    assert_eq!(second.status(), 200);
    // Ok is sticky.
    let third = post(&url, &chat_body("gpt-4o", false)).await;
    assert_eq!(third.status(), 200);

    // Other models are unaffected.
    let other = post(&url, &chat_body("gpt-4o-mini", false)).await;
    assert_eq!(other.status(), 200);

    assert_eq!(mock.hits("gpt-4o"), 3);
    assert_eq!(mock.hits("gpt-4o-mini"), 1);
    assert_eq!(mock.hits("/v1/chat/completions"), 4);
}

#[tokio::test]
async fn fail_times_and_sticky_last_behavior() {
    let mock = MockUpstream::start().await;
    mock.fail_times("m", 2, Behavior::unavailable());
    mock.script("always-500", vec![Behavior::server_error()]);
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(post(&url, &chat_body("m", false)).await.status().as_u16());
    }
    assert_eq!(codes, [503, 503, 200, 200]);
    for _ in 0..3 {
        let r = post(&url, &chat_body("always-500", false)).await;
        assert_eq!(r.status(), 500);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "server_error");
    }
}

#[tokio::test]
async fn status_bodies_context_length_and_content_policy() {
    let mock = MockUpstream::start().await;
    mock.script("small", vec![Behavior::context_length_exceeded()]);
    mock.script("prude", vec![Behavior::content_policy()]);
    mock.script("locked", vec![Behavior::unauthorized()]);
    let url = format!("{}/v1/chat/completions", mock.base_url());

    let r = post(&url, &chat_body("small", false)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This model's maximum context length is 8192 tokens")
    );

    let r = post(&url, &chat_body("prude", false)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "content_policy_violation");

    let r = post(&url, &chat_body("locked", false)).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn openai_stream_ends_with_done_and_honours_include_usage() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());

    let resp = post(&url, &chat_body("gpt-4o", true)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "mock answer from gpt-4o");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));

    let mut body = chat_body("gpt-4o", true);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_events(post(&url, &body).await).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 6);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["usage"], Value::Null);
}

#[tokio::test]
async fn cut_stream_ends_without_done() {
    let mock = MockUpstream::start().await;
    mock.script("flaky", vec![Behavior::CutStream { after_chunks: 2 }]);
    let resp = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        &chat_body("flaky", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out = read_sse(resp).await;
    assert_eq!(out.events.len(), 2);
    assert!(!out.ends_with_done());
    assert!(out.error.is_some(), "the connection should be dropped");
}

#[tokio::test]
async fn end_stream_early_ends_cleanly_without_done() {
    let mock = MockUpstream::start().await;
    mock.script("short", vec![Behavior::EndStreamEarly { after_chunks: 3 }]);
    let resp = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        &chat_body("short", true),
    )
    .await;
    let out = read_sse(resp).await;
    assert_eq!(out.events.len(), 3);
    assert!(!out.ends_with_done());
    assert!(out.error.is_none());
}

#[tokio::test]
async fn error_mid_stream_sends_error_event() {
    let mock = MockUpstream::start().await;
    mock.script("broken", vec![Behavior::ErrorMidStream { after_chunks: 1 }]);
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let events = sse_events(post(&url, &chat_body("broken", true)).await).await;
    assert_eq!(events.len(), 2);
    let last: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(last["error"]["type"], "server_error");

    // Non-streaming requests get a 500.
    let r = post(&url, &chat_body("broken", false)).await;
    assert_eq!(r.status(), 500);
}

#[tokio::test]
async fn reset_mid_body_breaks_the_json() {
    let mock = MockUpstream::start().await;
    mock.script("reset", vec![Behavior::ResetMidBody]);
    let resp = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        &chat_body("reset", false),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn delay_hang_and_trickle_take_time() {
    let mock = MockUpstream::start().await;
    mock.script("slow", vec![Behavior::Delay(200)]);
    mock.script("stuck", vec![Behavior::Hang]);
    mock.script("drip", vec![Behavior::Trickle { chunk_delay_ms: 40 }]);
    let url = format!("{}/v1/chat/completions", mock.base_url());

    let t = Instant::now();
    let r = post(&url, &chat_body("slow", false)).await;
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));

    let t = Instant::now();
    let r = client()
        .post(&url)
        .json(&chat_body("stuck", false))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    assert!(t.elapsed() >= Duration::from_millis(300));

    let t = Instant::now();
    let events = sse_events(post(&url, &chat_body("drip", true)).await).await;
    // role chunk + 4 words + finish + [DONE] = 7 events, 40 ms apart.
    assert_eq!(events.len(), 7);
    assert!(t.elapsed() >= Duration::from_millis(7 * 40));
}

#[tokio::test]
async fn behavior_header_overrides_script() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let r = client()
        .post(&url)
        .header("x-mock-behavior", "status:503:7")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = client()
        .post(&url)
        .header("x-mock-behavior", "text:custom words")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "custom words");
}

#[tokio::test]
async fn requests_are_recorded_and_reset_clears() {
    let mock = MockUpstream::start().await;
    let r = client()
        .post(format!("{}/v1/chat/completions?x=1", mock.base_url()))
        .bearer_auth("sk-test")
        .header("x-extra", "yes")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.query.as_deref(), Some("x=1"));
    assert_eq!(req.query_param("x"), Some("1"));
    assert_eq!(req.header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(req.header("x-extra"), Some("yes"));
    assert_eq!(req.body["messages"][0]["content"], "hello there");
    assert_eq!(req.model.as_deref(), Some("gpt-4o"));
    assert!(!req.is_stream());
    assert_eq!(mock.requests_to("gpt-4o").len(), 1);
    assert_eq!(mock.requests_to("/v1/chat/completions").len(), 1);
    assert!(mock.last_request().is_some());

    mock.script("gpt-4o", vec![Behavior::server_error()]);
    mock.reset();
    assert!(mock.requests().is_empty());
    assert_eq!(mock.hits("gpt-4o"), 0);
    let r = post(
        &format!("{}/v1/chat/completions", mock.base_url()),
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(r.status(), 200, "reset forgets scripts");
}

#[tokio::test]
async fn openai_validation_and_expected_key() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let r = post(
        &url,
        &json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(&url, &json!({"model": "m", "messages": []})).await;
    assert_eq!(r.status(), 400);
    let r = post(
        &url,
        &json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    // A tool message must answer a preceding tool call.
    let r = post(
        &url,
        &json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"}
        ]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = client()
        .post(&url)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    mock.expect_api_key(Some("sk-right"));
    let r = post(&url, &chat_body("m", false)).await;
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&url)
        .bearer_auth("sk-right")
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn openai_tool_calls_stream_and_not() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let mut body = json!({"model": "gpt-4o", "tools": weather_tool_openai(),
        "messages": [{"role": "user", "content": "Please use the tool"}]});
    let v: Value = post(&url, &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "mock"}));

    body["stream"] = json!(true);
    let events = sse_events(post(&url, &body).await).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let args: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(args, r#"{"city":"mock"}"#);

    // After the tool result the model answers with text.
    let follow = json!({"model": "gpt-4o", "tools": weather_tool_openai(), "messages": [
        {"role": "user", "content": "Please use the tool"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"x\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    ]});
    let v: Value = post(&url, &follow).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn text_completions_stream_and_not() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/completions", mock.base_url());
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"});
    let v: Value = post(&url, &body).await.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"][0]["text"],
        "mock answer from gpt-3.5-turbo-instruct"
    );
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "stream": true,
        "stream_options": {"include_usage": true}});
    let events = sse_events(post(&url, &body).await).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "mock answer from gpt-3.5-turbo-instruct");
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn embeddings_are_deterministic() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/embeddings", mock.base_url());
    let one: Value = post(
        &url,
        &json!({"model": "text-embedding-3-small", "input": "hello"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let many: Value = post(
        &url,
        &json!({"model": "text-embedding-3-small", "input": ["hello", "world"], "dimensions": 4}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["object"], "list");
    assert_eq!(one["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(many["data"].as_array().unwrap().len(), 2);
    assert_eq!(many["data"][1]["index"], 1);
    assert_eq!(many["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_ne!(many["data"][0]["embedding"], many["data"][1]["embedding"]);
    let again: Value = post(
        &url,
        &json!({"model": "text-embedding-3-small", "input": "hello"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["data"], again["data"]);
    let b64: Value = post(
        &url,
        &json!({"model": "e", "input": "hello", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 44); // 32 bytes
    let r = post(&url, &json!({"model": "e"})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn models_list_and_health() {
    let mock = MockUpstream::start().await;
    mock.script("custom-model", vec![Behavior::Ok]);
    let v: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"gpt-4o") && ids.contains(&"custom-model"));
    let r = client()
        .get(format!("{}/health/liveliness", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(format!("{}/v1/nope", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn azure_needs_api_key_and_api_version() {
    let mock = MockUpstream::start().await;
    let base = format!(
        "{}/openai/deployments/my-gpt4/chat/completions",
        mock.base_url()
    );
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});

    let r = client()
        .post(format!("{base}?api-version=2024-06-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&base)
        .header("api-key", "az-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client()
        .post(format!("{base}?api-version=2024-06-01"))
        .header("api-key", "az-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock answer from my-gpt4"
    );
    assert!(v["prompt_filter_results"].is_array());

    let req = mock.last_request().unwrap();
    assert_eq!(req.model.as_deref(), Some("my-gpt4"));
    assert_eq!(req.query_param("api-version"), Some("2024-06-01"));
    assert_eq!(req.header("api-key"), Some("az-key"));
    assert_eq!(mock.hits("my-gpt4"), 3);

    // Streaming: Azure's first chunk has no choices.
    let mut body = body;
    body["stream"] = json!(true);
    let events = sse_events(
        client()
            .post(format!("{base}?api-version=2024-06-01"))
            .header("api-key", "az-key")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["choices"], json!([]));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // Scripts apply to the deployment name.
    mock.script("my-gpt4", vec![Behavior::rate_limited(Some(1))]);
    let r = client()
        .post(format!(
            "{}/openai/deployments/my-gpt4/embeddings?api-version=2024-06-01",
            mock.base_url()
        ))
        .header("api-key", "az-key")
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn anthropic_headers_are_required() {
    let mock = MockUpstream::start().await;
    let body = json!({"model": "claude-3-5-sonnet", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let r = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("x-api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    mock.expect_api_key(Some("right"));
    let r = anthropic(&mock.base_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn anthropic_validator_rejects_bad_bodies() {
    let mock = MockUpstream::start().await;
    let cases = [
        (
            "non-alternating",
            json!({"model": "c", "max_tokens": 10, "messages": [
                {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
            "roles must alternate",
        ),
        (
            "assistant first",
            json!({"model": "c", "max_tokens": 10, "messages": [
                {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}),
            "first message must use the \"user\" role",
        ),
        (
            "system role",
            json!({"model": "c", "max_tokens": 10, "messages": [
                {"role": "system", "content": "be nice"}, {"role": "user", "content": "b"}]}),
            "Unexpected role \"system\"",
        ),
        (
            "no max_tokens",
            json!({"model": "c", "messages": [{"role": "user", "content": "a"}]}),
            "max_tokens: Field required",
        ),
        (
            "openai field",
            json!({"model": "c", "max_tokens": 10, "stop": ["x"],
                "messages": [{"role": "user", "content": "a"}]}),
            "stop: Extra inputs are not permitted",
        ),
        (
            "temperature",
            json!({"model": "c", "max_tokens": 10, "temperature": 1.5,
                "messages": [{"role": "user", "content": "a"}]}),
            "temperature",
        ),
        (
            "openai image part",
            json!({"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "http://x"}}]}]}),
            "image_url",
        ),
        (
            "dangling tool_use",
            json!({"model": "c", "max_tokens": 10, "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
                {"role": "user", "content": "no result"}]}),
            "without `tool_result`",
        ),
    ];
    for (name, body, needle) in cases {
        let r = anthropic(&mock.base_url())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error", "{name}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{name}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{name}: {msg}");
    }

    // A valid tool round trip passes.
    let ok = json!({"model": "c", "max_tokens": 10, "system": "be brief", "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"x": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}]});
    let r = anthropic(&mock.base_url()).json(&ok).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn anthropic_message_and_tool_use() {
    let mock = MockUpstream::start().await;
    let body = json!({"model": "claude-3-5-sonnet", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello there"}]});
    let r = anthropic(&mock.base_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-3-5-sonnet");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "mock answer from claude-3-5-sonnet"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 9);

    let tools = json!([{"name": "get_weather", "description": "w",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": "claude-3-5-sonnet", "max_tokens": 100, "tools": tools,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Use the tool please"}]}]});
    let v: Value = anthropic(&mock.base_url())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][1];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "mock"}));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
}

#[tokio::test]
async fn anthropic_stream_event_sequence() {
    let mock = MockUpstream::start().await;
    let body = json!({"model": "claude", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let out = read_sse(
        anthropic(&mock.base_url())
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(out.error.is_none());
    let names: Vec<&str> = out
        .events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let datas: Vec<Value> = out
        .events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (e, d) in out.events.iter().zip(&datas) {
        assert_eq!(e.event.as_deref(), d["type"].as_str());
    }
    let text: String = datas
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "mock answer from claude");
    assert_eq!(datas[8]["delta"]["stop_reason"], "end_turn");
    assert_eq!(datas[8]["usage"]["output_tokens"], 6);

    // Tool use streams input_json_delta pieces.
    let body = json!({"model": "claude", "max_tokens": 100, "stream": true,
        "tools": [{"name": "t", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "use the tool"}]});
    let out = read_sse(
        anthropic(&mock.base_url())
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let datas: Vec<Value> = out
        .events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let json_text: String = datas
        .iter()
        .filter_map(|d| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(json_text, r#"{"q":"mock"}"#);
    assert!(
        datas
            .iter()
            .any(|d| d["content_block"]["type"] == "tool_use" && d["index"] == 1)
    );
    assert!(
        datas
            .iter()
            .any(|d| d["delta"]["stop_reason"] == "tool_use")
    );
    assert_eq!(
        out.events.last().unwrap().event.as_deref(),
        Some("message_stop")
    );
}

#[tokio::test]
async fn anthropic_faults_use_anthropic_shapes() {
    let mock = MockUpstream::start().await;
    let body = |model: &str, stream: bool| {
        json!({"model": model, "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    mock.script("limited", vec![Behavior::rate_limited(Some(3))]);
    mock.script("long", vec![Behavior::context_length_exceeded()]);
    mock.script("cut", vec![Behavior::CutStream { after_chunks: 3 }]);
    mock.script("err", vec![Behavior::ErrorMidStream { after_chunks: 2 }]);

    let r = anthropic(&mock.base_url())
        .json(&body("limited", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let v: Value = anthropic(&mock.base_url())
        .json(&body("long", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt is too long")
    );

    let out = read_sse(
        anthropic(&mock.base_url())
            .json(&body("cut", true))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.events.len(), 3);
    assert!(out.error.is_some());
    assert!(
        out.events
            .iter()
            .all(|e| e.event.as_deref() != Some("message_stop"))
    );

    let out = read_sse(
        anthropic(&mock.base_url())
            .json(&body("err", true))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.events.len(), 3);
    assert_eq!(out.events[2].event.as_deref(), Some("error"));
}

#[tokio::test]
async fn closed_port_refuses_connections() {
    let url = MockUpstream::closed_port_url();
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_body("m", false))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let e = r.expect_err("nothing listens there");
    assert!(e.is_connect(), "{e:?}");
}
