//! The OpenAI-compatible endpoints, through the real binary, against the mock upstream.

use serde_json::{Value, json};

use crate::{BASIC, chat_body, header, post, start};

#[tokio::test]
async fn chat_completion_is_routed_and_reports_its_decision() {
    let (mock, gw) = start(BASIC).await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("gpt", "hello")).await;
    assert_eq!(resp.status(), 200);
    let deployment = header(&resp, "x-routeiq-model").to_string();
    assert!(
        deployment == "gpt-a" || deployment == "gpt-b",
        "{deployment}"
    );
    assert_eq!(header(&resp, "x-routeiq-strategy"), "simple-shuffle");
    assert_eq!(header(&resp, "x-routeiq-model-group"), "gpt");
    let overhead: f64 = header(&resp, "x-routeiq-overhead-ms").parse().unwrap();
    assert!(overhead >= 0.0);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    let upstream_model = if deployment == "gpt-a" {
        "model-a"
    } else {
        "model-b"
    };
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("mock answer from {upstream_model}")
    );
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // What reached the upstream: its own model name, the deployment's key, the messages.
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], upstream_model);
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"));
    assert_eq!(sent.body["messages"][0]["content"], "hello");
}

#[tokio::test]
async fn both_chat_paths_and_unknown_params_pass_through() {
    let (mock, gw) = start(BASIC).await;
    let mut body = chat_body("gpt", "hi");
    body["seed"] = json!(42);
    body["response_format"] = json!({"type": "json_object"});
    body["metadata"] = json!({"routing_profile": "eco"});
    let resp = post(&gw, "/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["seed"], 42);
    assert_eq!(sent.body["response_format"]["type"], "json_object");
    assert!(
        sent.body.get("metadata").is_none(),
        "metadata must not reach the upstream"
    );
}

#[tokio::test]
async fn anthropic_deployment_translates_both_ways() {
    let (mock, gw) = start(BASIC).await;
    let body = json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"}
        ],
        "max_tokens": 50
    });
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "claude-1");
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "mock answer from claude-test"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-upstream"));
    assert!(sent.header("anthropic-version").is_some());
    assert_eq!(sent.body["system"], "be brief");
    assert_eq!(sent.body["messages"][0]["role"], "user");
    assert_eq!(sent.body["max_tokens"], 50);
}

#[tokio::test]
async fn anthropic_tool_calls_come_back_as_openai_tool_calls() {
    let (_mock, gw) = start(BASIC).await;
    let body = json!({
        "model": "claude",
        "messages": [{"role": "user", "content": "please use the tool"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}]
    });
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let call = &out["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args.is_object());
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn azure_deployment_uses_deployment_urls_and_api_version() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: azure-gpt
    litellm_params:
      model: azure/my-deployment
      api_base: "{MOCK_ROOT}"
      api_key: azure-key
      api_version: "2024-06-01"
"#,
    )
    .await;
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &crate::chat_body("azure-gpt", "hi"),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/openai/deployments/my-deployment/chat/completions"
    );
    assert_eq!(sent.query_param("api-version"), Some("2024-06-01"));
    assert_eq!(sent.header("api-key"), Some("azure-key"));
}

#[tokio::test]
async fn completions_and_embeddings() {
    let (mock, gw) = start(BASIC).await;
    let resp = post(
        &gw,
        "/v1/completions",
        &json!({"model": "gpt", "prompt": "Say hi"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "text_completion");
    assert!(
        out["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mock answer")
    );
    assert_eq!(mock.last_request().unwrap().path, "/v1/completions");

    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "embed", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "embed-1");
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "list");
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    assert!(!out["data"][0]["embedding"].as_array().unwrap().is_empty());
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["model"], "embed-model");
}

#[tokio::test]
async fn models_lists_groups_and_visible_aliases() {
    let template = format!(
        "{BASIC}  model_group_alias:\n    fast: gpt\n    hidden-one:\n      model: claude\n      hidden: true\n"
    );
    let (_mock, gw) = start(&template).await;
    let resp = routeiq_testkit::client()
        .get(format!("{}/v1/models", gw.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let ids: Vec<&str> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt", "claude", "embed", "fast"]);
    // The alias routes, hidden or not.
    let resp = post(&gw, "/v1/chat/completions", &chat_body("hidden-one", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model-group"), "claude");
}

#[tokio::test]
async fn health_endpoints_answer_without_auth() {
    let template = format!("{BASIC}general_settings:\n  master_key: sk-master\n");
    let (_mock, gw) = start(&template).await;
    let c = routeiq_testkit::client();
    for path in [
        "/health/liveliness",
        "/health/readiness",
        "/_health/live",
        "/_health/ready",
    ] {
        let resp = c
            .get(format!("{}{path}", gw.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let ready: Value = c
        .get(format!("{}/health/readiness", gw.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "healthy");
    assert_eq!(ready["deployments"], 4);
}

#[tokio::test]
async fn mock_response_deployments_need_no_upstream() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: canned
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "canned reply"
"#,
    )
    .await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("canned", "hi")).await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "canned reply");
    assert!(mock.requests().is_empty());
}

/// LiteLLM's `litellm_params.extra_body` is merged into the upstream body and
/// `extra_headers` are sent as headers (never forwarded as literal fields), and
/// `model_info.max_tokens` (a context window in LiteLLM) is not sent as an output length.
#[tokio::test]
async fn deployment_extra_body_and_headers_reach_the_upstream() {
    let config = r#"
model_list:
  - model_name: tuned
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{MOCK}"
      api_key: sk-upstream
      extra_body: {top_k: 5, guided_choice: [yes, no]}
      extra_headers: {X-Tenant: acme, X-Route-Tier: "2"}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
      extra_headers: {anthropic-beta: tools-2024}
    model_info:
      max_tokens: 200000
"#;
    let (mock, gw) = start(config).await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("tuned", "hi")).await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["top_k"], 5);
    assert_eq!(sent.body["guided_choice"], json!(["yes", "no"]));
    assert!(sent.body.get("extra_body").is_none(), "{}", sent.body);
    assert!(sent.body.get("extra_headers").is_none(), "{}", sent.body);
    assert_eq!(sent.header("x-tenant"), Some("acme"));
    assert_eq!(sent.header("x-route-tier"), Some("2"));

    let resp = post(&gw, "/v1/chat/completions", &chat_body("claude", "hi")).await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.header("anthropic-beta"), Some("tools-2024"));
    // Anthropic needs max_tokens: the provider default, not the 200k context window.
    assert_eq!(sent.body["max_tokens"], 4096);
}

/// `litellm_settings.drop_params`: OpenAI parameters Anthropic has no counterpart for are
/// dropped; without it the request is a 400 naming them (LiteLLM's UnsupportedParamsError),
/// never silently ignored. A deployment's own `drop_params` wins.
#[tokio::test]
async fn drop_params_drops_unsupported_parameters_and_without_it_they_are_refused() {
    let config = r#"
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
  - model_name: claude-strict
    litellm_params:
      model: anthropic/claude-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
      drop_params: false
litellm_settings:
  drop_params: true
"#;
    let (mock, gw) = start(config).await;
    let mut body = chat_body("claude", "hi");
    body["seed"] = json!(7);
    body["logit_bias"] = json!({"50256": -100});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    assert!(sent.body.get("seed").is_none(), "{}", sent.body);
    assert!(sent.body.get("logit_bias").is_none(), "{}", sent.body);

    body["model"] = json!("claude-strict");
    let before = mock.requests().len();
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 400);
    let err = crate::error_of(resp).await;
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("anthropic does not support parameters"),
        "{err}"
    );
    assert!(
        message.contains("seed") && message.contains("logit_bias"),
        "{err}"
    );
    assert_eq!(
        mock.requests().len(),
        before,
        "nothing reached the upstream"
    );
}

/// `litellm_settings.forward_traceparent_to_llm_provider`: the client's W3C trace context
/// reaches the provider; without it, it does not.
#[tokio::test]
async fn traceparent_is_forwarded_only_when_configured() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let config = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{MOCK}"
      api_key: sk-upstream
litellm_settings:
  forward_traceparent_to_llm_provider: FORWARD
"#;
    for (forward, expected) in [("true", Some(TRACEPARENT)), ("false", None)] {
        let (mock, gw) = start(&config.replace("FORWARD", forward)).await;
        let resp = routeiq_testkit::client()
            .post(format!("{}/v1/chat/completions", gw.base_url()))
            .header("traceparent", TRACEPARENT)
            .header("tracestate", "vendor=1")
            .json(&chat_body("gpt", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.header("traceparent"), expected, "forward: {forward}");
        assert_eq!(
            sent.header("tracestate"),
            expected.map(|_| "vendor=1"),
            "forward: {forward}"
        );
    }
}
