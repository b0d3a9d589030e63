//! LiteLLM's reliability semantics end to end: retries, Retry-After, cooldowns, fallbacks,
//! timeouts.

use std::time::{Duration, Instant};

use routeiq_testkit::{Behavior, closed_port_url};
use serde_json::Value;

use crate::{chat_body, error_of, header, post, start};

/// One deployment per group, so the order of attempts is known.
const CHAIN: &str = r#"
model_list:
  - model_name: primary
    litellm_params:
      model: openai/primary-model
      api_base: "{MOCK}"
      api_key: sk-x
      timeout: 1
    model_info:
      id: primary-1
  - model_name: secondary
    litellm_params:
      model: openai/secondary-model
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: secondary-1
  - model_name: big-context
    litellm_params:
      model: openai/big-model
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: big-1
router_settings:
  num_retries: 2
  retry_policy:
    BadRequestErrorRetries: 0
  fallbacks:
    - primary: ["secondary"]
  context_window_fallbacks:
    - primary: ["big-context"]
  content_policy_fallbacks:
    - primary: ["secondary"]
"#;

#[tokio::test]
async fn server_errors_are_retried_on_the_same_deployment() {
    let (mock, gw) = start(CHAIN).await;
    mock.fail_times("primary-model", 2, Behavior::server_error());
    let resp = post(&gw, "/v1/chat/completions", &chat_body("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "primary-1");
    assert_eq!(header(&resp, "x-routeiq-attempts"), "3");
    assert_eq!(mock.hits("primary-model"), 3);
    assert_eq!(mock.hits("secondary-model"), 0);
}

#[tokio::test]
async fn exhausted_retries_fall_back_to_the_next_group() {
    let (mock, gw) = start(CHAIN).await;
    mock.script("primary-model", vec![Behavior::unavailable()]);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "secondary-1");
    assert_eq!(header(&resp, "x-routeiq-model-group"), "secondary");
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
    assert_eq!(mock.hits("primary-model"), 3);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock answer from secondary-model"
    );
}

#[tokio::test]
async fn context_window_errors_use_their_own_fallbacks_without_retrying() {
    let (mock, gw) = start(CHAIN).await;
    mock.script("primary-model", vec![Behavior::context_length_exceeded()]);
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("primary", "a very long prompt"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "big-1");
    assert_eq!(mock.hits("primary-model"), 1);
    assert_eq!(mock.hits("secondary-model"), 0);
}

#[tokio::test]
async fn content_policy_errors_use_their_own_fallbacks_without_retrying() {
    let (mock, gw) = start(CHAIN).await;
    mock.script("primary-model", vec![Behavior::content_policy()]);
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("primary", "something spicy"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "secondary-1");
    assert_eq!(mock.hits("primary-model"), 1);
    assert_eq!(mock.hits("big-model"), 0);
}

#[tokio::test]
async fn default_fallbacks_apply_to_groups_without_a_rule() {
    let template = CHAIN.replace(
        "  fallbacks:\n    - primary: [\"secondary\"]\n",
        "  default_fallbacks: [\"secondary\"]\n",
    );
    assert_ne!(template, CHAIN, "template edit did not apply");
    let (mock, gw) = start(&template).await;
    mock.script("big-model", vec![Behavior::unavailable()]);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("big-context", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "secondary-1");
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
}

#[tokio::test]
async fn bad_requests_are_neither_retried_nor_fallen_back() {
    let (mock, gw) = start(CHAIN).await;
    mock.script("primary-model", vec![Behavior::status(400)]);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("primary", "hi")).await;
    assert_eq!(resp.status(), 400);
    error_of(resp).await;
    assert_eq!(mock.hits("primary-model"), 1);
    assert_eq!(mock.hits("secondary-model"), 0);
}

#[tokio::test]
async fn a_rate_limited_deployment_is_left_at_once_for_the_fallback() {
    let (mock, gw) = start(CHAIN).await;
    mock.fail_times("primary-model", 1, Behavior::rate_limited(Some(1)));
    let started = Instant::now();
    let resp = post(&gw, "/v1/chat/completions", &chat_body("primary", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "secondary-1");
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
    // No wait for the Retry-After: the fallback could serve.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(header(&resp, "x-routeiq-attempts"), "2");
    assert_eq!(mock.hits("primary-model"), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_when_nothing_else_can_serve() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: only
    litellm_params:
      model: openai/only-model
      api_base: "{MOCK}"
      api_key: sk-x
"#,
    )
    .await;
    mock.fail_times("only-model", 1, Behavior::rate_limited(Some(1)));
    let started = Instant::now();
    let resp = post(&gw, "/v1/chat/completions", &chat_body("only", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(header(&resp, "x-routeiq-attempts"), "2");
}

#[tokio::test]
async fn timeouts_end_in_time_and_fall_back() {
    let (mock, gw) = start(CHAIN).await;
    mock.script("primary-model", vec![Behavior::Hang]);
    let started = Instant::now();
    let resp = post(&gw, "/v1/chat/completions", &chat_body("primary", "hi")).await;
    // 3 attempts of 1 s each (plus backoff), then the fallback answers.
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "secondary-1");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn timeout_without_fallback_is_504() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: slow
    litellm_params:
      model: openai/slow-model
      api_base: "{MOCK}"
      api_key: sk-x
      timeout: 0.5
router_settings:
  num_retries: 0
"#,
    )
    .await;
    mock.script("slow-model", vec![Behavior::Hang]);
    let started = Instant::now();
    let resp = post(&gw, "/v1/chat/completions", &chat_body("slow", "hi")).await;
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(error_of(resp).await["type"], "timeout");
}

#[tokio::test]
async fn failing_deployment_cools_down_and_traffic_moves() {
    let template = r#"
model_list:
  - model_name: pool
    litellm_params:
      model: openai/bad-model
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: bad
  - model_name: pool
    litellm_params:
      model: openai/good-model
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: good
router_settings:
  num_retries: 1
  allowed_fails: 1
  cooldown_time: 30
"#;
    let (mock, gw) = start(template).await;
    mock.script("bad-model", vec![Behavior::server_error()]);
    for _ in 0..20 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("pool", "hi")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-routeiq-model"), "good");
    }
    // allowed_fails = 1: the second failure in a minute cools `bad` down, then no more calls.
    assert_eq!(
        mock.hits("bad-model"),
        2,
        "cooled-down deployment kept receiving traffic"
    );
}

#[tokio::test]
async fn connection_refused_moves_to_the_next_deployment() {
    let template = format!(
        r#"
model_list:
  - model_name: pool
    litellm_params:
      model: openai/dead-model
      api_base: "{}/v1"
      api_key: sk-x
    model_info:
      id: dead
      input_cost_per_token: 0.0000001
      output_cost_per_token: 0.0000001
  - model_name: pool
    litellm_params:
      model: openai/live-model
      api_base: "{{MOCK}}"
      api_key: sk-x
    model_info:
      id: live
      input_cost_per_token: 0.00001
      output_cost_per_token: 0.00001
router_settings:
  routing_strategy: cost-based-routing
  num_retries: 1
"#,
        closed_port_url()
    );
    let (_mock, gw) = start(&template).await;
    // Cost-based: the dead deployment is cheaper, so it is always tried first.
    let resp = post(&gw, "/v1/chat/completions", &chat_body("pool", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), "live");
    assert_eq!(header(&resp, "x-routeiq-attempts"), "2");
}

#[tokio::test]
async fn all_failing_returns_the_upstream_error() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: only
    litellm_params:
      model: openai/only-model
      api_base: "{MOCK}"
      api_key: sk-x
router_settings:
  num_retries: 1
"#,
    )
    .await;
    mock.script("only-model", vec![Behavior::rate_limited(Some(0))]);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("only", "hi")).await;
    assert_eq!(resp.status(), 429);
    let err = error_of(resp).await;
    assert_eq!(err["type"], "rate_limit_error");
    assert_eq!(mock.hits("only-model"), 2);
}
