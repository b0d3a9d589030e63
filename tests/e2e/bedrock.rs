//! Bedrock deployments through the real binary: the AWS SDK signs and sends Converse /
//! ConverseStream requests to the mock upstream (JSON and binary event-stream frames).

use routeiq_testkit::{Behavior, ChunkStream};
use serde_json::{Value, json};

use crate::{chat_body, error_of, header, post, start};

const BEDROCK: &str = r#"
model_list:
  - model_name: nova
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      aws_region_name: us-west-2
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
    model_info:
      id: nova-1
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/converse/anthropic.claude-3-5-haiku-20241022-v1:0
      aws_region_name: us-east-1
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
    model_info:
      id: claude-bedrock-1
  - model_name: big
    litellm_params:
      model: openai/big-model
      api_base: "{MOCK}"
      api_key: sk-x
router_settings:
  num_retries: 0
  context_window_fallbacks:
    - nova: ["big"]
"#;

#[tokio::test]
async fn converse_is_signed_translated_and_answered() {
    let (mock, gw) = start(BEDROCK).await;
    let body = json!({
        "model": "nova",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"}
        ],
        "max_tokens": 64,
        "temperature": 0.3
    });
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    assert_eq!(header(&resp, "x-routeiq-model"), "nova-1");
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "mock answer from amazon.nova-lite-v1:0"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert!(out["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/model/amazon.nova-lite-v1%3A0/converse");
    let auth = sent.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDROUTEIQTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/us-west-2/bedrock/aws4_request"), "{auth}");
    assert_eq!(sent.body["system"][0]["text"], "be brief");
    assert_eq!(sent.body["messages"][0]["content"][0]["text"], "hello");
    assert_eq!(sent.body["inferenceConfig"]["maxTokens"], 64);
}

#[tokio::test]
async fn converse_stream_event_frames_become_sse_chunks() {
    let (_mock, gw) = start(BEDROCK).await;
    let body = json!({
        "model": "claude-bedrock",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "tell me a story"}]
    });
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out = ChunkStream::read(resp).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.done);
    assert_eq!(
        out.content(),
        "mock answer from anthropic.claude-3-5-haiku-20241022-v1:0"
    );
    assert_eq!(out.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(out.finished_with("stop"));
    let usage = out.usage().expect("usage chunk");
    assert!(usage["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn tool_use_round_trips_as_openai_tool_calls() {
    let (_mock, gw) = start(BEDROCK).await;
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}]);
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "nova", "tools": tools, "messages": [{"role": "user", "content": "please use the tool"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let call = &out["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");

    // Streaming: the tool call arrives as an id/name chunk, then argument fragments.
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "nova", "stream": true, "tools": tools, "messages": [{"role": "user", "content": "please use the tool"}]}),
    )
    .await;
    let out = ChunkStream::read(resp).await;
    assert!(out.done);
    let mut name = None;
    let mut arguments = String::new();
    for v in &out.chunks {
        if let Some(call) = v["choices"][0]["delta"]["tool_calls"].get(0) {
            if let Some(n) = call["function"]["name"].as_str() {
                name = Some(n.to_string());
            }
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    let args: Value = serde_json::from_str(&arguments).unwrap();
    assert!(args["city"].is_string(), "{arguments}");
}

#[tokio::test]
async fn throttling_maps_to_429_and_long_input_falls_back() {
    let (mock, gw) = start(BEDROCK).await;
    mock.script("amazon.nova-lite-v1:0", vec![Behavior::status(429)]);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("nova", "hi")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(error_of(resp).await["type"], "rate_limit_error");
    // The SDK's own retries are off: the dispatcher's policy (num_retries: 0) decides.
    assert_eq!(mock.hits("amazon.nova-lite-v1:0"), 1);

    mock.script("amazon.nova-lite-v1:0", vec![Behavior::status(400)]);
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("nova", "a very long prompt"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model-group"), "big");
}

#[tokio::test]
async fn stream_exception_after_first_chunk_ends_with_error_event() {
    let (mock, gw) = start(BEDROCK).await;
    mock.script(
        "amazon.nova-lite-v1:0",
        vec![Behavior::ErrorMidStream { after_chunks: 2 }],
    );
    let body =
        json!({"model": "nova", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out = ChunkStream::read(resp).await;
    assert!(!out.done);
    let last = out.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream failed"),
        "{last}"
    );
}

const EMBED: &str = r#"
model_list:
  - model_name: titan
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      aws_region_name: us-east-1
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
    model_info: {mode: embedding}
  - model_name: cohere
    litellm_params:
      model: bedrock/cohere.embed-english-v3
      aws_region_name: us-east-1
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
    model_info: {mode: embedding}
  - model_name: nova
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      aws_region_name: us-east-1
      aws_access_key_id: AKIDROUTEIQTEST
      aws_secret_access_key: test-secret
      aws_bedrock_runtime_endpoint: "{MOCK_ROOT}"
"#;

#[tokio::test]
async fn titan_and_cohere_embeddings_are_invoked_and_reshaped() {
    let (mock, gw) = start(EMBED).await;
    // Titan embeds one text per call; `dimensions` goes along.
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "titan", "input": ["first text", "second"], "dimensions": 256}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "list");
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    assert_eq!(out["data"][1]["index"], 1);
    assert!(out["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let calls = mock.requests_to("amazon.titan-embed-text-v2:0");
    assert_eq!(calls.len(), 2);
    // The SDK percent-encodes the model id in the path, as it does for the real service.
    assert_eq!(
        calls[0].path,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    assert_eq!(
        calls[0].body,
        json!({"inputText": "first text", "dimensions": 256})
    );
    // Cohere embeds the list in one call, with its input_type.
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "cohere", "input": ["a", "b", "c"], "input_type": "search_query"}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["data"].as_array().unwrap().len(), 3);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["input_type"], "search_query");
    assert_eq!(sent.body["texts"], json!(["a", "b", "c"]));
    // A chat model is not an embedding model: a clear error, no call.
    let before = mock.requests().len();
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "nova", "input": "x"}),
    )
    .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let err = error_of(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not an embedding model"),
        "{err}"
    );
    assert_eq!(mock.requests().len(), before);
    // The upstream's validation error (a bad dimension) is the caller's 400.
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "titan", "input": "x", "dimensions": 300}),
    )
    .await;
    assert_eq!(resp.status(), 400);
}
