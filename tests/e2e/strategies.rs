//! Routing strategies observed from outside: which deployment answers.

use std::collections::HashMap;

use crate::{chat_body, error_of, header, post, start};

async fn tally(
    gw: &routeiq_testkit::GatewayProcess,
    model: &str,
    n: usize,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let resp = post(gw, "/v1/chat/completions", &chat_body(model, "hi")).await;
        assert_eq!(resp.status(), 200);
        *counts
            .entry(header(&resp, "x-routeiq-model").to_string())
            .or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn simple_shuffle_follows_weights() {
    let (_mock, gw) = start(
        r#"
model_list:
  - model_name: w
    litellm_params: {model: openai/heavy, api_base: "{MOCK}", api_key: k, weight: 9}
    model_info: {id: heavy}
  - model_name: w
    litellm_params: {model: openai/light, api_base: "{MOCK}", api_key: k, weight: 1}
    model_info: {id: light}
"#,
    )
    .await;
    let counts = tally(&gw, "w", 200).await;
    let heavy = counts.get("heavy").copied().unwrap_or(0);
    // Expected 180 of 200; binomial sd ≈ 4.2, so 160 is > 4 sd away.
    assert!((160..200).contains(&heavy), "{counts:?}");
}

#[tokio::test]
async fn cost_based_picks_the_cheapest() {
    let (_mock, gw) = start(
        r#"
model_list:
  - model_name: c
    litellm_params: {model: openai/gpt-4o, api_base: "{MOCK}", api_key: k}
    model_info: {id: expensive}
  - model_name: c
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{MOCK}", api_key: k}
    model_info: {id: cheap}
router_settings:
  routing_strategy: cost-based-routing
"#,
    )
    .await;
    let counts = tally(&gw, "c", 10).await;
    assert_eq!(counts.get("cheap"), Some(&10), "{counts:?}");
    let resp = post(&gw, "/v1/chat/completions", &chat_body("c", "hi")).await;
    assert_eq!(header(&resp, "x-routeiq-strategy"), "cost-based-routing");
    let cost: f64 = header(&resp, "x-routeiq-response-cost").parse().unwrap();
    assert!(cost > 0.0);
}

#[tokio::test]
async fn latency_based_prefers_the_faster_deployment() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: l
    litellm_params: {model: openai/slow, api_base: "{MOCK}", api_key: k}
    model_info: {id: slow}
  - model_name: l
    litellm_params: {model: openai/fast, api_base: "{MOCK}", api_key: k}
    model_info: {id: fast}
router_settings:
  routing_strategy: latency-based-routing
"#,
    )
    .await;
    mock.script("slow", vec![routeiq_testkit::Behavior::Delay(150)]);
    // Both get tried while unmeasured; after that the fast one wins.
    tally(&gw, "l", 4).await;
    let counts = tally(&gw, "l", 10).await;
    assert_eq!(counts.get("fast"), Some(&10), "{counts:?}");
}

#[tokio::test]
async fn usage_based_respects_rpm_limits() {
    let (_mock, gw) = start(
        r#"
model_list:
  - model_name: u
    litellm_params: {model: openai/one, api_base: "{MOCK}", api_key: k, rpm: 2}
    model_info: {id: one}
  - model_name: u
    litellm_params: {model: openai/two, api_base: "{MOCK}", api_key: k, rpm: 3}
    model_info: {id: two}
router_settings:
  routing_strategy: usage-based-routing-v2
"#,
    )
    .await;
    let counts = tally(&gw, "u", 5).await;
    assert_eq!(counts.get("one"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("two"), Some(&3), "{counts:?}");
    // Both at their limit for this minute (unless the minute just turned over).
    let resp = post(&gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
    if resp.status() == 429 {
        assert!(resp.headers().contains_key("retry-after"));
        assert_eq!(error_of(resp).await["code"], "no_deployments_available");
    } else {
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn least_busy_spreads_concurrent_requests() {
    let (mock, gw) = start(
        r#"
model_list:
  - model_name: b
    litellm_params: {model: openai/m1, api_base: "{MOCK}", api_key: k}
    model_info: {id: m1}
  - model_name: b
    litellm_params: {model: openai/m2, api_base: "{MOCK}", api_key: k}
    model_info: {id: m2}
router_settings:
  routing_strategy: least-busy
"#,
    )
    .await;
    mock.set_latency_ms(300);
    let body = chat_body("b", "hi");
    let reqs = (0..6).map(|_| post(&gw, "/v1/chat/completions", &body));
    let resps = futures::future::join_all(reqs).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &resps {
        assert_eq!(r.status(), 200);
        *counts
            .entry(header(r, "x-routeiq-model").to_string())
            .or_default() += 1;
    }
    // With 6 overlapping requests the in-flight counts keep the two within one of each other
    // (arrival races allow a little slack).
    let m1 = counts.get("m1").copied().unwrap_or(0);
    assert!((2..=4).contains(&m1), "{counts:?}");
}
