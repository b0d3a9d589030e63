//! Black-box tests: the real `routeiq-gateway` binary on a random port, in front of the mock
//! upstream LLM server from `routeiq-testkit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod affinity;
mod api;
mod auto_router;
mod bedrock;
mod config;
mod control_plane;
mod custom_router;
mod edge_hint;
mod errors;
mod faults;
mod gemini;
mod hardening;
mod jwt;
mod keys;
mod keys_shared;
mod lambda;
mod load;
mod messages;
mod ml_routing;
mod observability;
mod reliability;
mod resilience;
mod responses;
mod s3_config;
mod s3_models;
mod sdk;
mod security;
mod shared_state;
mod strategies;
mod streaming;

use std::path::Path;

use routeiq_testkit::{GatewayProcess, MockUpstream};
use serde_json::{Value, json};

/// The gateway binary cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_routeiq-gateway"))
}

/// The `routeiq` tool binary (`serve`, `check`).
pub fn routeiq_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_routeiq"))
}

/// `GET {path}` on the gateway.
pub async fn get(gw: &GatewayProcess, path: &str) -> reqwest::Response {
    routeiq_testkit::client()
        .get(format!("{}{path}", gw.base_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(gw: &GatewayProcess) -> String {
    let resp = get(gw, "/metrics").await;
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("metrics body")
}

/// The value of one Prometheus sample line (`name{labels} value`), if present.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Replaces `{MOCK}` (the mock's OpenAI base, `http://127.0.0.1:P/v1`) and `{MOCK_ROOT}`
/// (`http://127.0.0.1:P`) in a config template.
pub fn render(template: &str, mock: &MockUpstream) -> String {
    template
        .replace("{MOCK}", &mock.openai_base())
        .replace("{MOCK_ROOT}", &mock.base_url())
}

/// Starts a mock upstream and a gateway on `template`.
pub async fn start(template: &str) -> (MockUpstream, GatewayProcess) {
    start_with_env(template, &[]).await
}

pub async fn start_with_env(
    template: &str,
    env: &[(&str, &str)],
) -> (MockUpstream, GatewayProcess) {
    let mock = MockUpstream::start().await;
    let gw = GatewayProcess::start(bin(), &render(template, &mock), env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    (mock, gw)
}

pub fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

pub async fn post(gw: &GatewayProcess, path: &str, body: &Value) -> reqwest::Response {
    routeiq_testkit::client()
        .post(format!("{}{path}", gw.base_url()))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Checks OpenAI's error shape and returns `error`.
pub async fn error_of(resp: reqwest::Response) -> Value {
    let body: Value = resp.json().await.expect("error body is JSON");
    let err = body.get("error").cloned().expect("body has 'error'");
    assert!(err["message"].is_string(), "{body}");
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "{body}"
    );
    err
}

pub fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}: {:?}", resp.headers()))
}

/// Two OpenAI deployments in group `gpt` (ids `gpt-a`, `gpt-b` → upstream models `model-a`,
/// `model-b`), one Anthropic deployment in group `claude`, and an embedding group.
pub const BASIC: &str = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/model-a
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      id: gpt-a
  - model_name: gpt
    litellm_params:
      model: openai/model-b
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      id: gpt-b
  - model_name: claude
    litellm_params:
      model: anthropic/claude-test
      api_base: "{MOCK_ROOT}"
      api_key: sk-ant-upstream
    model_info:
      id: claude-1
  - model_name: embed
    litellm_params:
      model: openai/embed-model
      api_base: "{MOCK}"
      api_key: sk-upstream
    model_info:
      id: embed-1
      mode: embedding
router_settings:
  num_retries: 0
"#;
