//! LiteLLM's routing models (`model: auto_router/...`) as RouteIQ auto routers, seen from
//! outside: which group answers, the decision headers, `/router/explain`, fallbacks.

use serde_json::{Value, json};

use crate::{chat_body, error_of, get, header, post, start_with_env};

/// Three groups priced and rated like LiteLLM's adaptive-router example, and one auto
/// router of each kind over them.
const CONFIG: &str = r#"
model_list:
  - model_name: fast
    litellm_params: {model: openai/small-model, api_base: "{MOCK}", api_key: k, input_cost_per_token: 0.00000015, output_cost_per_token: 0.0000006}
    model_info:
      adaptive_router_preferences: {quality_tier: 2, strengths: [factual_lookup]}
  - model_name: smart
    litellm_params: {model: openai/big-model, api_base: "{MOCK}", api_key: k, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
    model_info:
      adaptive_router_preferences: {quality_tier: 3, strengths: [code_generation, technical_design]}
  - model_name: thinker
    litellm_params: {model: openai/reasoning-model, api_base: "{MOCK}", api_key: k}
  - model_name: smart-cheap-router
    litellm_params:
      model: auto_router/adaptive_router
      adaptive_router_config:
        available_models: [fast, smart]
        weights: {quality: 0.7, cost: 0.3}
  - model_name: smart-router
    litellm_params:
      model: auto_router/complexity_router
      complexity_router_config:
        tiers: {SIMPLE: fast, MEDIUM: fast, COMPLEX: [smart, fast], REASONING: thinker}
        tier_boundaries: {simple_medium: 0.2}
      complexity_router_default_model: smart
  - model_name: topic-router
    litellm_params:
      model: auto_router/topics
      auto_router_config_path: "{ROUTES}"
      auto_router_default_model: fast
router_settings:
  fallbacks: [{smart-router: [thinker]}]
"#;

const ROUTES: &str = r#"{
  "encoder_type": "openai",
  "encoder_name": "text-embedding-3-large",
  "routes": [
    {"name": "smart", "utterances": ["write a python function", "implement a class in java", "fix the bug in my code"], "description": "coding", "score_threshold": 0.3},
    {"name": "thinker", "utterances": ["prove this theorem", "solve the equation step by step"], "score_threshold": 0.35}
  ]
}"#;

async fn start_auto() -> (
    routeiq_testkit::MockUpstream,
    routeiq_testkit::GatewayProcess,
    routeiq_testkit::TempDir,
) {
    let dir = routeiq_testkit::TempDir::new("auto-router");
    let routes = dir.path().join("router.json");
    std::fs::write(&routes, ROUTES).unwrap();
    let config = CONFIG.replace("{ROUTES}", &routes.display().to_string());
    let (mock, gw) = start_with_env(&config, &[("ADMIN_API_KEYS", "sk-admin")]).await;
    (mock, gw, dir)
}

/// Posts a chat request to an auto router; returns the answering group, the auto route and
/// the body.
async fn ask(
    gw: &routeiq_testkit::GatewayProcess,
    model: &str,
    text: &str,
) -> (String, String, Value) {
    let resp = post(gw, "/v1/chat/completions", &chat_body(model, text)).await;
    assert_eq!(resp.status(), 200, "{model}: {text}");
    assert_eq!(header(&resp, "x-routeiq-auto-router"), model);
    let group = header(&resp, "x-routeiq-model-group").to_string();
    let route = header(&resp, "x-routeiq-auto-route").to_string();
    let body: Value = resp.json().await.unwrap();
    (group, route, body)
}

#[tokio::test]
async fn complexity_router_sends_each_tier_to_its_groups() {
    let (mock, gw, _dir) = start_auto().await;
    let (group, route, body) = ask(&gw, "smart-router", "What is the capital of France?").await;
    assert_eq!((group.as_str(), route.as_str()), ("fast", "SIMPLE"));
    assert_eq!(body["model"], "small-model");
    let (group, route, _) = ask(
        &gw,
        "smart-router",
        "Design a distributed, multi-region architecture for a payments ledger with \
         consistency guarantees, failure modes and a migration plan.",
    )
    .await;
    assert_eq!((group.as_str(), route.as_str()), ("smart", "COMPLEX"));
    assert_eq!(mock.hits("big-model"), 1);
    assert_eq!(mock.hits("small-model"), 1);
    // The auto routers are models clients can list.
    let models: Value = get(&gw, "/v1/models").await.json().await.unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for name in ["smart-cheap-router", "smart-router", "topic-router", "fast"] {
        assert!(ids.contains(&name), "{ids:?}");
    }
}

#[tokio::test]
async fn adaptive_router_weighs_quality_against_cost() {
    let (mock, gw, _dir) = start_auto().await;
    let (group, route, _) = ask(&gw, "smart-cheap-router", "Who painted the Mona Lisa?").await;
    assert_eq!((group.as_str(), route.as_str()), ("fast", "factual_lookup"));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body(
            "smart-cheap-router",
            "Write a Rust function that parses a semver string and returns its parts.",
        ),
    )
    .await;
    assert_eq!(header(&resp, "x-litellm-adaptive-router-model"), "smart");
    assert_eq!(header(&resp, "x-routeiq-auto-route"), "code_generation");
    assert_eq!(mock.hits("big-model"), 1);
    // LiteLLM's minimum-tier header: only tier 3 may answer.
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("x-litellm-min-quality-tier", "3")
        .json(&chat_body(
            "smart-cheap-router",
            "Who painted the Mona Lisa?",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-routeiq-model-group"), "smart");
    // A tier nothing has, or no tier at all, is the caller's error.
    for (value, expect) in [("4", 400), ("high", 400)] {
        let resp = routeiq_testkit::client()
            .post(format!("{}/v1/chat/completions", gw.base_url()))
            .header("x-litellm-min-quality-tier", value)
            .json(&chat_body("smart-cheap-router", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expect, "{value}");
        let err = error_of(resp).await;
        assert!(
            err["message"].as_str().unwrap().contains("quality tier"),
            "{err}"
        );
    }
    let body = json!({"model": "smart-cheap-router", "metadata": {"min_quality_tier": 3},
        "messages": [{"role": "user", "content": "Who painted the Mona Lisa?"}]});
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(header(&resp, "x-routeiq-model-group"), "smart");
}

#[tokio::test]
async fn semantic_router_reads_its_routes_file_and_falls_back_to_the_default() {
    let (_mock, gw, _dir) = start_auto().await;
    let (group, route, _) = ask(
        &gw,
        "topic-router",
        "Please write a python function that reverses a linked list",
    )
    .await;
    assert_eq!((group.as_str(), route.as_str()), ("smart", "smart"));
    let (group, route, _) = ask(
        &gw,
        "topic-router",
        "What's the weather like in Lisbon in May?",
    )
    .await;
    assert_eq!((group.as_str(), route.as_str()), ("fast", "default"));
    // The routes file names an encoder RouteIQ does not use: said once, at start.
    let warnings: Value = routeiq_testkit::client()
        .get(format!("{}/config/warnings", gw.base_url()))
        .bearer_auth("sk-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = warnings.to_string();
    assert!(
        text.contains("auto_router_config_path[") && text.contains("router.json].encoder_name"),
        "{text}"
    );
    assert!(text.contains("built-in embedder"), "{text}");
}

#[tokio::test]
async fn auto_router_targets_fall_back_in_order_and_explain_shows_the_decision() {
    let (mock, gw, _dir) = start_auto().await;
    // COMPLEX goes to smart, then fast: smart failing hands the request to fast.
    mock.fail_times("big-model", 10, routeiq_testkit::Behavior::server_error());
    let prompt = "Design a distributed, multi-region architecture for a payments ledger with \
                  consistency guarantees, failure modes and a migration plan.";
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("smart-router", prompt),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model-group"), "fast");
    assert_eq!(header(&resp, "x-routeiq-fallback"), "true");
    // SIMPLE's only group failing: the auto router's configured fallback (thinker) answers.
    mock.fail_times("small-model", 10, routeiq_testkit::Behavior::server_error());
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("smart-router", "What is the capital of France?"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model-group"), "thinker");
    // /router/explain: the auto router's decision and the target group's ranking.
    let explained: Value = post(&gw, "/router/explain", &chat_body("smart-router", prompt))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(explained["model_group"], "smart", "{explained}");
    assert_eq!(explained["auto_router"]["kind"], "complexity");
    assert_eq!(explained["auto_router"]["label"], "COMPLEX");
    assert_eq!(
        explained["auto_router"]["targets"],
        json!(["smart", "fast"])
    );
    assert!(explained["auto_router"]["tier"]["confidence"].is_number());
    // Only chat and completions are routed by the prompt.
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "smart-router", "input": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(
        err["message"].as_str().unwrap().contains("auto router"),
        "{err}"
    );
}
