//! Routing state shared between gateway processes through DynamoDB (moto's server, started by
//! `tests/run.sh`), and what happens when the table cannot be reached.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use routeiq_testkit::{GatewayProcess, MockUpstream, closed_port_url};
use serde_json::Value;

use crate::{bin, chat_body, get, header, post, render};

const USAGE: &str = r#"
model_list:
  - model_name: u
    litellm_params: {model: openai/one, api_base: "{MOCK}", api_key: k, rpm: 2}
    model_info: {id: one}
  - model_name: u
    litellm_params: {model: openai/two, api_base: "{MOCK}", api_key: k, rpm: 2}
    model_info: {id: two}
router_settings:
  routing_strategy: usage-based-routing-v2
"#;

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

fn state_env(prefix: &str) -> Vec<(String, String)> {
    routeiq_testkit::dynamodb_state_env(prefix)
}

async fn gateway(mock: &MockUpstream, env: &[(String, String)]) -> GatewayProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    GatewayProcess::start(bin(), &render(USAGE, mock), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"))
}

#[tokio::test]
async fn rpm_limits_hold_across_two_gateway_processes() {
    let mock = MockUpstream::start().await;
    // A run that straddles a minute boundary sees fresh counters halfway: try again then.
    for _attempt in 0..3 {
        let prefix = format!("rpm-{}-{}", std::process::id(), minute());
        let env = state_env(&prefix);
        let a = gateway(&mock, &env).await;
        let b = gateway(&mock, &env).await;
        let start = minute();
        let mut used: HashMap<String, usize> = HashMap::new();
        // Four requests alternating between the two processes fill both deployments' rpm.
        for gw in [&a, &b, &a, &b] {
            let resp = post(gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
            assert_eq!(resp.status(), 200);
            *used
                .entry(header(&resp, "x-routeiq-model").to_string())
                .or_default() += 1;
        }
        // A fifth request, to either process, finds both limits used up by the other too.
        let fifth_a = post(&a, "/v1/chat/completions", &chat_body("u", "hi")).await;
        let fifth_b = post(&b, "/v1/chat/completions", &chat_body("u", "hi")).await;
        if minute() != start {
            continue;
        }
        assert_eq!(used.get("one"), Some(&2), "{used:?}");
        assert_eq!(used.get("two"), Some(&2), "{used:?}");
        assert_eq!(fifth_a.status(), 429);
        assert_eq!(fifth_b.status(), 429);
        let ready: Value = get(&a, "/health/readiness").await.json().await.unwrap();
        assert_eq!(ready["state_backend"], "dynamodb");
        assert_eq!(ready["state"]["status"], "healthy");
        return;
    }
    panic!("three attempts straddled a minute boundary");
}

#[tokio::test]
async fn unreachable_table_degrades_but_keeps_routing() {
    let mock = MockUpstream::start().await;
    let mut env = state_env("unreachable");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), closed_port_url()));
    let gw = gateway(&mock, &env).await;
    for _ in 0..3 {
        let resp = post(&gw, "/v1/chat/completions", &chat_body("u", "hi")).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = get(&gw, "/health/readiness").await;
    assert_eq!(resp.status(), 200);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["state"]["status"], "degraded");
    assert!(gw.logs().contains("state backend failing"), "{}", gw.logs());
}
