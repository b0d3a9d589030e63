//! Edge hints seen from outside: signed hints are followed as `edge_hint` says, forged,
//! stale or unsigned ones are ignored and counted, and the response says which.
//!
//! The hints here are signed with the same `routeiq::edge` code the Worker runs (compiled
//! to wasm there); the Worker itself is tested in front of this gateway by
//! `edge/test/e2e.test.mjs`.

use std::time::{SystemTime, UNIX_EPOCH};

use routeiq::edge::{HINT_HEADER, SIGNATURE_HEADER, sign};
use routeiq_testkit::GatewayProcess;
use serde_json::{Value, json};

use crate::{metric_value, metrics_text, start_with_env};

const SECRET: &str = "edge-e2e-secret-0123456789abcdef";

/// A cheap and an expensive deployment; cost-based routing prefers the cheap one.
const TWO_TIERS: &str = r#"
model_list:
  - model_name: smart
    litellm_params: {model: openai/small-model, api_base: "{MOCK}", api_key: k}
    model_info: {id: small, input_cost_per_token: 0.0000001, output_cost_per_token: 0.0000004}
  - model_name: smart
    litellm_params: {model: openai/big-model, api_base: "{MOCK}", api_key: k}
    model_info: {id: big, input_cost_per_token: 0.000005, output_cost_per_token: 0.000015}
router_settings:
  routing_strategy: cost-based-routing
  num_retries: 0
"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn send(
    gw: &GatewayProcess,
    body: &Value,
    hint: Option<&str>,
    signature: Option<String>,
) -> reqwest::Response {
    let raw = body.to_string();
    let mut req = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("content-type", "application/json")
        .body(raw);
    if let Some(h) = hint {
        req = req.header(HINT_HEADER, h);
    }
    if let Some(s) = signature {
        req = req.header(SIGNATURE_HEADER, s);
    }
    req.send().await.expect("request")
}

/// `hint`'s signature over `body` (as [`send`] serialises it), signed now with the secret.
fn signed(hint: &str, body: &Value) -> String {
    sign::sign(SECRET.as_bytes(), hint, now(), body.to_string().as_bytes())
}

/// Sends `body` with `hint` and its valid signature.
async fn send_signed(gw: &GatewayProcess, body: &Value, hint: &str) -> reqwest::Response {
    send(gw, body, Some(hint), Some(signed(hint, body))).await
}

fn h<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn body(text: &str, stream: bool) -> Value {
    json!({"model": "smart", "stream": stream, "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn trust_follows_a_signed_hint_and_ignores_forged_ones() {
    let (_mock, gw) = start_with_env(
        TWO_TIERS,
        &[
            ("ROUTEIQ_EDGE_HINT", "trust"),
            ("ROUTEIQ_EDGE_HINT_SECRET", SECRET),
        ],
    )
    .await;
    let b = body("Prove that there are infinitely many primes.", false);
    let raw = b.to_string();

    // No hint: cost-based picks the cheap deployment; no status header.
    let resp = send(&gw, &b, None, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h(&resp, "x-routeiq-model"), Some("small"));
    assert_eq!(h(&resp, "x-routeiq-hint-status"), None);

    // A signed hint naming the big deployment decides.
    let hint = "v1;tier=complex;conf=0.91;model=big";
    let sig = signed(hint, &b);
    let resp = send(&gw, &b, Some(hint), Some(sig.clone())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("used"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("big"));

    // A signed tier alone (no model): ranked for the tier, the strong model first.
    let tier_only = "v1;tier=reasoning;conf=0.7";
    let resp = send_signed(&gw, &b, tier_only).await;
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("used"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("big"));
    let simple = "v1;tier=simple;conf=0.7";
    let resp = send_signed(&gw, &b, simple).await;
    assert_eq!(h(&resp, "x-routeiq-model"), Some("small"));

    // Forged: signed with another key, replayed onto another body, unsigned, stale, or
    // signed but unreadable. Each is ignored (cost-based routing as if no hint) and counted.
    let forged = sign::sign(
        b"not the shared secret at all!!!",
        hint,
        now(),
        raw.as_bytes(),
    );
    let other_body = body("hello", false);
    let stale = sign::sign(SECRET.as_bytes(), hint, now() - 3_600, raw.as_bytes());
    let garbage = "v1;tier=galaxy-brain;conf=2";
    let garbage_sig = signed(garbage, &b);
    let cases: [(&Value, &str, Option<String>, &str); 5] = [
        (&b, hint, Some(forged), "ignored:bad-signature"),
        (&other_body, hint, Some(sig), "ignored:bad-signature"),
        (&b, hint, None, "ignored:missing-signature"),
        (&b, hint, Some(stale), "ignored:expired"),
        (&b, garbage, Some(garbage_sig), "ignored:malformed"),
    ];
    for (body, hint, sig, status) in cases {
        let resp = send(&gw, body, Some(hint), sig).await;
        assert_eq!(resp.status(), 200, "{status}");
        assert_eq!(h(&resp, "x-routeiq-hint-status"), Some(status));
        assert_eq!(h(&resp, "x-routeiq-model"), Some("small"), "{status}");
    }
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric_value(&m, r#"routeiq_edge_hints_total{outcome="bad-signature"}"#),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric_value(&m, r#"routeiq_edge_hints_total{outcome="valid"}"#),
        Some(3.0)
    );
    for outcome in ["missing-signature", "expired", "malformed"] {
        assert_eq!(
            metric_value(
                &m,
                &format!(r#"routeiq_edge_hints_total{{outcome="{outcome}"}}"#)
            ),
            Some(1.0),
            "{outcome}"
        );
    }
}

#[tokio::test]
async fn a_hint_cannot_reach_outside_the_requested_group_and_streams_keep_it() {
    let config = TWO_TIERS.replace(
        "router_settings:",
        "  - model_name: other\n    litellm_params: {model: openai/other-model, api_base: \"{MOCK}\", api_key: k}\n    model_info: {id: other}\nrouter_settings:",
    );
    let (_mock, gw) = start_with_env(
        &config,
        &[
            ("ROUTEIQ_EDGE_HINT", "trust"),
            ("ROUTEIQ_EDGE_HINT_SECRET", SECRET),
        ],
    )
    .await;
    let b = body("hi", true);
    // The hint names a deployment of another group: the tier still applies within `smart`.
    let hint = "v1;tier=simple;conf=0.9;model=other";
    let resp = send_signed(&gw, &b, hint).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("used"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("small"));
    assert_eq!(
        h(&resp, "content-type"),
        Some("text/event-stream"),
        "a streamed answer"
    );
    let stream = routeiq_testkit::ChunkStream::read(resp).await;
    assert!(stream.error.is_none(), "{:?}", stream.error);
    assert!(stream.done, "{:?}", stream.data);
}

#[tokio::test]
async fn ignore_mode_reads_no_hint_and_advisory_lets_features_decide() {
    let (_mock, gw) = start_with_env(TWO_TIERS, &[("ROUTEIQ_EDGE_HINT", "ignore")]).await;
    let b = body("hi", false);
    let hint = "v1;tier=complex;conf=0.99;model=big";
    let sig = signed(hint, &b);
    let resp = send(&gw, &b, Some(hint), Some(sig.clone())).await;
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("ignored:mode"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("small"));

    // Advisory with a strategy that reads no features: verified, not acted on.
    let (_mock, gw) = start_with_env(
        TWO_TIERS,
        &[
            ("ROUTEIQ_EDGE_HINT", "advisory"),
            ("ROUTEIQ_EDGE_HINT_SECRET", SECRET),
        ],
    )
    .await;
    let resp = send(&gw, &b, Some(hint), Some(sig)).await;
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("advisory"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("small"));
}

/// Centroid routing (an ML strategy with no trained router): an advisory hint with high
/// confidence replaces the embedding; a low-confidence one does not.
#[tokio::test]
async fn advisory_hint_skips_the_embedding_when_confident() {
    let config = r#"
model_list:
  - model_name: smart
    litellm_params: {model: openai/small-model, api_base: "{MOCK}", api_key: k}
    model_info: {id: small, input_cost_per_token: 0.0000001, output_cost_per_token: 0.0000004}
  - model_name: smart
    litellm_params: {model: openai/big-model, api_base: "{MOCK}", api_key: k}
    model_info: {id: big, input_cost_per_token: 0.000005, output_cost_per_token: 0.000015}
router_settings:
  routing_strategy: llmrouter-knn
  # No trained router: centroid routing decides (and the hint may replace its embedding).
  routing_strategy_args:
    model_path: /nonexistent/routeiq/knn.json
    edge_hint: advisory
    edge_hint_min_confidence: 0.8
  num_retries: 0
"#;
    let (_mock, gw) = start_with_env(config, &[("ROUTEIQ_EDGE_HINT_SECRET", SECRET)]).await;
    let b = body("What is the capital of France?", false);
    let confident = "v1;tier=complex;conf=0.95";
    let resp = send_signed(&gw, &b, confident).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("used"));
    assert_eq!(h(&resp, "x-routeiq-decision-method"), Some("edge-hint"));
    assert_eq!(h(&resp, "x-routeiq-tier"), Some("complex"));
    assert_eq!(h(&resp, "x-routeiq-model"), Some("big"));

    let unsure = "v1;tier=complex;conf=0.5";
    let resp = send_signed(&gw, &b, unsure).await;
    assert_eq!(h(&resp, "x-routeiq-hint-status"), Some("advisory"));
    assert_ne!(h(&resp, "x-routeiq-decision-method"), Some("edge-hint"));
}

#[tokio::test]
async fn a_mode_that_cannot_verify_refuses_to_start() {
    let mock = routeiq_testkit::MockUpstream::start().await;
    let err = GatewayProcess::start(
        crate::bin(),
        &crate::render(TWO_TIERS, &mock),
        &[("ROUTEIQ_EDGE_HINT", "trust")],
    )
    .await
    .err()
    .expect("trust without a secret must not start");
    let text = format!("{err:#}");
    assert!(text.contains("ROUTEIQ_EDGE_HINT_SECRET"), "{text}");
}
