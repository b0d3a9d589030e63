//! Gemini upstreams: Google AI Studio (`gemini/`, an API key) and Vertex AI (`vertex_ai/`,
//! OAuth tokens from a service-account key or the metadata server), translated from and to
//! the OpenAI shape, against the mock's Gemini wire format.

use routeiq_testkit::{Behavior, ChunkStream, MOCK_ACCESS_TOKEN};
use serde_json::{Value, json};

use crate::{chat_body, error_of, post, start};

const STUDIO: &str = r#"
model_list:
  - model_name: flash
    litellm_params: {model: gemini/gemini-2.5-flash, api_base: "{MOCK_ROOT}", api_key: g-key}
  - model_name: gemini-embed
    litellm_params: {model: gemini/gemini-embedding-001, api_base: "{MOCK_ROOT}", api_key: g-key}
    model_info: {mode: embedding}
"#;

fn tools_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "additionalProperties": false,
                "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]})
}

#[tokio::test]
async fn ai_studio_chat_tools_and_results_translate_both_ways() {
    let (mock, gw) = start(STUDIO).await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("flash", "hello")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock answer from gemini-2.5-flash"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some("g-key"));
    assert_eq!(
        sent.body["contents"][0],
        json!({"role": "user", "parts": [{"text": "hello"}]})
    );

    // A tool call comes back with an id; its result goes back as a functionResponse.
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &tools_body("flash", "please use the tool"),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    let call = body["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(
        sent.body["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    let mut follow = tools_body("flash", "please use the tool");
    let messages = follow["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call.clone()]}));
    messages
        .push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"temp_c\": 19}"}));
    let resp = post(&gw, "/v1/chat/completions", &follow).await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    let contents = sent.body["contents"].as_array().unwrap();
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0]["functionCall"]["name"],
        "get_weather"
    );
    assert_eq!(
        contents[2]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"temp_c": 19}}})
    );
}

#[tokio::test]
async fn ai_studio_streams_and_embeds() {
    let (mock, gw) = start(STUDIO).await;
    let mut body = chat_body("flash", "tell me a story");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out = ChunkStream::read(resp).await;
    assert!(out.done, "{:?}", out.chunks);
    assert_eq!(out.content(), "mock answer from gemini-2.5-flash");
    assert!(out.finished_with("stop"));
    assert!(out.usage().unwrap()["total_tokens"].as_u64().unwrap() > 0);
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));

    // A stream cut before Gemini's finish reason is not a complete answer.
    mock.script(
        "gemini-2.5-flash",
        vec![Behavior::CutStream { after_chunks: 2 }],
    );
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    let out = ChunkStream::read(resp).await;
    assert!(!out.done);
    assert!(out.last().unwrap()["error"]["message"].is_string());

    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "gemini-embed", "input": ["a", "bb"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["data"].as_array().unwrap().len(), 2);
    assert_eq!(e["data"][1]["index"], 1);
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(
        mock.last_request().unwrap().path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
}

#[tokio::test]
async fn gemini_errors_keep_their_status_and_message() {
    let (mock, gw) = start(&format!("{STUDIO}router_settings: {{num_retries: 0}}\n")).await;
    mock.fail_times("gemini-2.5-flash", 1, Behavior::rate_limited(Some(1)));
    let resp = post(&gw, "/v1/chat/completions", &chat_body("flash", "hi")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let err = error_of(resp).await;
    assert!(err["message"].as_str().unwrap().contains("gemini"), "{err}");
    // A wrong key: Google's 400 "API key not valid" is the caller's 400 (never a retry loop).
    let (mock, gw) = start(STUDIO).await;
    mock.expect_api_key(Some("other"));
    let resp = post(&gw, "/v1/chat/completions", &chat_body("flash", "hi")).await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("API key not valid"),
        "{err}"
    );
    assert_eq!(mock.hits("gemini-2.5-flash"), 1);
}

#[tokio::test]
async fn vertex_ai_signs_a_service_account_assertion_and_caches_the_token() {
    let mock = routeiq_testkit::MockUpstream::start().await;
    let key = routeiq_testkit::test_service_account_json(&format!("{}/token", mock.base_url()));
    let config = crate::render(
        r#"
model_list:
  - model_name: pro
    litellm_params:
      model: vertex_ai/gemini-2.5-pro
      vertex_project: my-project
      vertex_location: europe-west4
      vertex_credentials: os.environ/VERTEX_KEY
      api_base: "{MOCK_ROOT}"
  - model_name: vertex-embed
    litellm_params:
      model: vertex_ai/text-embedding-005
      vertex_project: my-project
      vertex_credentials: os.environ/VERTEX_KEY
      api_base: "{MOCK_ROOT}"
    model_info: {mode: embedding}
"#,
        &mock,
    );
    let gw = routeiq_testkit::GatewayProcess::start(crate::bin(), &config, &[("VERTEX_KEY", &key)])
        .await
        .unwrap();
    for _ in 0..3 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("pro", "hello")).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "mock answer from gemini-2.5-pro"
        );
    }
    // One token for three calls; the mock checked the assertion's RS256 signature and scope.
    assert_eq!(mock.hits("/token"), 1);
    let sent = mock.requests_to("gemini-2.5-pro").pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {MOCK_ACCESS_TOKEN}").as_str())
    );
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "vertex-embed", "input": "hi there"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(e["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(
        mock.last_request()
            .unwrap()
            .path
            .ends_with("/models/text-embedding-005:predict"),
        "{:?}",
        mock.last_request().unwrap().path
    );
}

#[tokio::test]
async fn vertex_ai_without_a_key_uses_the_metadata_server_and_bad_keys_are_clear() {
    let mock = routeiq_testkit::MockUpstream::start().await;
    let host = mock.base_url().trim_start_matches("http://").to_string();
    let config = crate::render(
        r#"
model_list:
  - model_name: pro
    litellm_params: {model: vertex_ai/gemini-2.5-pro, vertex_project: p, api_base: "{MOCK_ROOT}"}
  - model_name: broken
    litellm_params: {model: vertex_ai/gemini-2.5-pro, vertex_project: p, api_base: "{MOCK_ROOT}", vertex_credentials: '{"type": "service_account", "client_email": "x@y", "private_key": "not a key"}'}
"#,
        &mock,
    );
    let gw = routeiq_testkit::GatewayProcess::start(
        crate::bin(),
        &config,
        &[("GCE_METADATA_HOST", &host)],
    )
    .await
    .unwrap();
    let resp = post(&gw, "/v1/chat/completions", &chat_body("pro", "hello")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.hits("/computeMetadata/v1/instance/service-accounts/default/token"),
        1
    );
    let sent = mock.last_request().unwrap();
    assert!(
        sent.path.contains("/locations/us-central1/"),
        "{}",
        sent.path
    );
    // A key that cannot sign loads with a warning; its requests say why, and never show it.
    let resp = post(&gw, "/v1/chat/completions", &chat_body("broken", "hello")).await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("not an RSA key"), "{message}");
    assert!(!message.contains("not a key"), "{message}");
}

#[tokio::test]
async fn claude_on_vertex_ai_is_called_through_raw_predict_with_a_token() {
    let mock = routeiq_testkit::MockUpstream::start().await;
    let key = routeiq_testkit::test_service_account_json(&format!("{}/token", mock.base_url()));
    let config = crate::render(
        r#"
model_list:
  - model_name: claude-vertex
    litellm_params:
      model: vertex_ai/claude-sonnet-4-5@20250929
      vertex_project: my-project
      vertex_location: global
      vertex_credentials: os.environ/VERTEX_KEY
      api_base: "{MOCK_ROOT}"
"#,
        &mock,
    );
    let gw = routeiq_testkit::GatewayProcess::start(crate::bin(), &config, &[("VERTEX_KEY", &key)])
        .await
        .unwrap();
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("claude-vertex", "hello"),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock answer from claude-sonnet-4-5@20250929"
    );
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {MOCK_ACCESS_TOKEN}").as_str())
    );
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");
    assert!(sent.body.get("model").is_none(), "{}", sent.body);
    // Streams go to streamRawPredict and come back as OpenAI chunks.
    let mut stream = chat_body("claude-vertex", "tell me a story");
    stream["stream"] = json!(true);
    let resp = post(&gw, "/v1/chat/completions", &stream).await;
    let out = ChunkStream::read(resp).await;
    assert!(out.done);
    assert_eq!(out.content(), "mock answer from claude-sonnet-4-5@20250929");
    assert!(
        mock.last_request()
            .unwrap()
            .path
            .ends_with(":streamRawPredict")
    );
    // Anthropic clients reach it too (translated: Vertex takes another body).
    let resp = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-vertex", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(
        msg["content"][0]["text"],
        "mock answer from claude-sonnet-4-5@20250929"
    );
    assert_eq!(mock.hits("/token"), 1);
}
