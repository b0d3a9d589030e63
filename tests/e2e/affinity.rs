//! Conversation affinity (`router_settings.deployment_affinity_ttl_seconds`) and A/B
//! experiments (`routing_strategy_args.experiment`) through two gateway processes sharing
//! their state in DynamoDB (moto's server, started by `tests/run.sh`).

use std::collections::{BTreeMap, BTreeSet};

use routeiq_testkit::{Behavior, GatewayProcess, MockUpstream};
use serde_json::{Value, json};

use crate::{bin, chat_body, header, metric_value, metrics_text, render};

/// Three deployments of `gpt` (simple-shuffle spreads new conversations) and a `small` group.
const AFFINITY: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/m-a, api_base: "{MOCK}", api_key: k}
    model_info: {id: dep-a}
  - model_name: gpt
    litellm_params: {model: openai/m-b, api_base: "{MOCK}", api_key: k}
    model_info: {id: dep-b}
  - model_name: gpt
    litellm_params: {model: openai/m-c, api_base: "{MOCK}", api_key: k}
    model_info: {id: dep-c}
router_settings:
  num_retries: 0
  cooldown_time: 300
  deployment_affinity_ttl_seconds: 600
"#;

/// Shared DynamoDB state under a prefix unique to this run, and an admin key.
fn state_env(prefix: &str) -> Vec<(String, String)> {
    let mut env = routeiq_testkit::dynamodb_state_env(&format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    ));
    env.push(("ADMIN_API_KEYS".into(), "admin-key".into()));
    env
}

async fn pair(
    template: &str,
    mock: &MockUpstream,
    prefix: &str,
) -> (GatewayProcess, GatewayProcess) {
    let env = state_env(prefix);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cfg = render(template, mock);
    let a = GatewayProcess::start(bin(), &cfg, &env)
        .await
        .unwrap_or_else(|e| panic!("gateway A did not start: {e:#}"));
    let b = GatewayProcess::start(bin(), &cfg, &env)
        .await
        .unwrap_or_else(|e| panic!("gateway B did not start: {e:#}"));
    (a, b)
}

async fn chat(gw: &GatewayProcess, body: &Value, conversation: Option<&str>) -> reqwest::Response {
    let mut req = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .json(body);
    if let Some(c) = conversation {
        req = req.header("x-routeiq-conversation-id", c);
    }
    req.send().await.expect("chat request")
}

fn affinity_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-routeiq-affinity")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn a_conversation_sticks_to_its_deployment_across_two_processes() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(AFFINITY, &mock, "affinity").await;

    // Several conversations, each started on A and continued alternately on A and B.
    let mut pinned: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..8 {
        let conv = format!("conversation-{i}");
        let first = chat(&a, &chat_body("gpt", "hello"), Some(&conv)).await;
        assert_eq!(first.status(), 200);
        assert_eq!(affinity_of(&first).as_deref(), Some("set"));
        let dep = header(&first, "x-routeiq-model").to_string();
        for gw in [&b, &a, &b, &b, &a] {
            let resp = chat(gw, &chat_body("gpt", "and then?"), Some(&conv)).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(header(&resp, "x-routeiq-model"), dep, "{conv}");
            assert_eq!(affinity_of(&resp).as_deref(), Some("hit"));
        }
        pinned.insert(conv, dep);
    }
    // New conversations still spread over the group (the shuffle is not defeated).
    let used: BTreeSet<&String> = pinned.values().collect();
    assert!(used.len() > 1, "{pinned:?}");

    // The OpenAI `user` field keys affinity too (affinity is on), and metadata.conversation_id.
    let mut by_user = chat_body("gpt", "hi");
    by_user["user"] = json!("user-42");
    let first = chat(&b, &by_user, None).await;
    let dep = header(&first, "x-routeiq-model").to_string();
    for _ in 0..4 {
        let resp = chat(&a, &by_user, None).await;
        assert_eq!(header(&resp, "x-routeiq-model"), dep);
        assert_eq!(affinity_of(&resp).as_deref(), Some("hit"));
    }
    let mut by_meta = chat_body("gpt", "hi");
    by_meta["metadata"] = json!({"conversation_id": "meta-conv"});
    let dep = header(&chat(&a, &by_meta, None).await, "x-routeiq-model").to_string();
    assert_eq!(
        header(&chat(&b, &by_meta, None).await, "x-routeiq-model"),
        dep
    );
    // No key: no affinity.
    let resp = chat(&a, &chat_body("gpt", "hi"), None).await;
    assert_eq!(affinity_of(&resp), None);

    // An explicit deployment wins over the conversation's pin, and leaves the pin alone.
    let (conv, dep) = pinned
        .iter()
        .next()
        .map(|(c, d)| (c.clone(), d.clone()))
        .unwrap();
    let other = ["dep-a", "dep-b", "dep-c"]
        .into_iter()
        .find(|d| *d != dep)
        .unwrap();
    let resp = chat(&b, &chat_body(other, "to that one please"), Some(&conv)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-routeiq-model"), other);
    assert_eq!(header(&resp, "x-routeiq-model-group"), "gpt");
    assert_eq!(affinity_of(&resp), None);
    let resp = chat(&a, &chat_body("gpt", "back to the group"), Some(&conv)).await;
    assert_eq!(header(&resp, "x-routeiq-model"), dep);
}

#[tokio::test]
async fn a_cooling_deployment_loses_its_conversations_to_the_next_in_order() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(AFFINITY, &mock, "affinity-cool").await;
    let conv = "cooling-conversation";
    let first = chat(&a, &chat_body("gpt", "hello"), Some(conv)).await;
    let dep = header(&first, "x-routeiq-model").to_string();
    let upstream = format!("m-{}", dep.trim_start_matches("dep-"));
    // The pinned deployment starts rate limiting: the call fails over (num_retries: 0, so the
    // request fails), the deployment cools down on both processes (shared state).
    mock.script(&upstream, vec![Behavior::rate_limited(None)]);
    let failed = chat(&b, &chat_body("gpt", "more"), Some(conv)).await;
    assert_eq!(failed.status(), 429);
    // Next request: normal routing among the others, and the pin moves.
    let moved = chat(&a, &chat_body("gpt", "more"), Some(conv)).await;
    assert_eq!(moved.status(), 200);
    let new_dep = header(&moved, "x-routeiq-model").to_string();
    assert_ne!(new_dep, dep);
    assert_eq!(affinity_of(&moved).as_deref(), Some("miss"));
    for gw in [&b, &a, &b] {
        let resp = chat(gw, &chat_body("gpt", "again"), Some(conv)).await;
        assert_eq!(header(&resp, "x-routeiq-model"), new_dep);
        assert_eq!(affinity_of(&resp).as_deref(), Some("hit"));
    }
}

/// Group `auto` in an experiment: `control` stays, `cheap` goes to group `small`.
const EXPERIMENT: &str = r#"
model_list:
  - model_name: auto
    litellm_params: {model: openai/big, api_base: "{MOCK}", api_key: k}
    model_info: {id: dep-big, input_cost_per_token: 0.00001, output_cost_per_token: 0.00002}
  - model_name: small
    litellm_params: {model: openai/small, api_base: "{MOCK}", api_key: k}
    model_info: {id: dep-small, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
router_settings:
  num_retries: 0
  routing_strategy_args:
    experiment:
      name: cheap-test
      model_group: auto
      arms:
        control: {weight: 1}
        cheap: {weight: 1, model: small}
"#;

#[derive(Debug, Default, Clone, PartialEq)]
struct Totals {
    requests: i64,
    errors: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_micro_usd: i64,
}

async fn experiment_totals(gw: &GatewayProcess) -> BTreeMap<String, Totals> {
    let resp = routeiq_testkit::client()
        .get(format!("{}/router/experiments", gw.base_url()))
        .header("authorization", "Bearer admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let exp = &v["experiments"][0];
    assert_eq!(exp["name"], "cheap-test", "{v}");
    exp["arms"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(arm, t)| {
            let n = |k: &str| t[k].as_i64().unwrap_or_else(|| panic!("{k} in {t}"));
            (
                arm.clone(),
                Totals {
                    requests: n("requests"),
                    errors: n("errors"),
                    prompt_tokens: n("prompt_tokens"),
                    completion_tokens: n("completion_tokens"),
                    cost_micro_usd: n("cost_micro_usd"),
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn experiment_arms_are_sticky_applied_and_counted_across_two_processes() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(EXPERIMENT, &mock, "experiment").await;

    // Admin-only endpoint.
    let anon = routeiq_testkit::client()
        .get(format!("{}/router/experiments", a.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    let mut expected: BTreeMap<String, Totals> = BTreeMap::new();
    let mut arm_of_user: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..24 {
        let user = format!("user-{i}");
        for gw in [&a, &b, &a] {
            let mut body = chat_body("auto", "Which one answers me?");
            body["user"] = json!(user);
            let resp = chat(gw, &body, None).await;
            assert_eq!(resp.status(), 200);
            let arm_header = header(&resp, "x-routeiq-experiment").to_string();
            let arm = arm_header
                .strip_prefix("cheap-test/")
                .unwrap_or_else(|| panic!("{arm_header}"))
                .to_string();
            // Deterministic per user, on either process.
            let seen = arm_of_user.entry(user.clone()).or_insert(arm.clone());
            assert_eq!(*seen, arm, "{user}");
            // The arm is applied.
            let group = header(&resp, "x-routeiq-model-group").to_string();
            assert_eq!(group, if arm == "cheap" { "small" } else { "auto" });
            let cost: f64 = header(&resp, "x-routeiq-response-cost").parse().unwrap();
            let v: Value = resp.json().await.unwrap();
            let t = expected.entry(arm).or_default();
            t.requests += 1;
            t.prompt_tokens += v["usage"]["prompt_tokens"].as_i64().unwrap();
            t.completion_tokens += v["usage"]["completion_tokens"].as_i64().unwrap();
            t.cost_micro_usd += (cost * 1e6).round() as i64;
        }
    }
    // Both arms got users.
    assert_eq!(expected.len(), 2, "{expected:?}");

    // An error in the cheap arm counts as a request and an error.
    let cheap_user = arm_of_user
        .iter()
        .find(|(_, arm)| arm.as_str() == "cheap")
        .map(|(u, _)| u.clone())
        .unwrap();
    mock.script("small", vec![Behavior::status(500), Behavior::Ok]);
    let mut body = chat_body("auto", "fail once");
    body["user"] = json!(cheap_user);
    assert_eq!(chat(&b, &body, None).await.status(), 500);
    let t = expected.entry("cheap".into()).or_default();
    t.requests += 1;
    t.errors += 1;

    // B's counts reach the table when it flushes (GET flushes first); then A's view sums both
    // processes' counts over the hourly buckets.
    experiment_totals(&b).await;
    let totals = experiment_totals(&a).await;
    assert_eq!(totals, expected);

    // Prometheus, per process: A served two thirds of the successful requests.
    let text = metrics_text(&a).await;
    let served_by_a: f64 = ["control", "cheap"]
        .iter()
        .map(|arm| {
            metric_value(
                &text,
                &format!(
                    "routeiq_experiment_requests_total{{arm=\"{arm}\",experiment=\"cheap-test\"}}"
                ),
            )
            .unwrap_or(0.0)
        })
        .sum();
    assert_eq!(served_by_a, 48.0, "{text}");
    let text_b = metrics_text(&b).await;
    assert_eq!(
        metric_value(
            &text_b,
            "routeiq_experiment_errors_total{arm=\"cheap\",experiment=\"cheap-test\"}"
        ),
        Some(1.0),
        "{text_b}"
    );
}
