//! Property test over every numeric config key: whatever number a key gets (huge, tiny,
//! negative, not finite, out of its type's range), the config either is refused with a problem
//! at that key's path, or the gateway built from it serves requests without panicking, with
//! every duration it loaded within [`routeiq::config::MAX_DURATION`].
//!
//! The config makes the numbers matter: group `gpt` has two deployments whose endpoint refuses
//! connections (so timeouts, retries, cooldowns and circuit breakers run), with a `mock_response`
//! fallback group; requests go through the real app in process (`tower::ServiceExt::oneshot`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use routeiq::config::{Config, MAX_DURATION};
use routeiq_gateway::Gateway;
use routeiq_gateway::app::App;
use routeiq_gateway::cli::ConfigSource;
use routeiq_gateway::http::server;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Every numeric key RouteIQ implements: (path, where `{V}` goes in the config).
const KEYS: &[(&str, Slot)] = &[
    ("model_list[0].litellm_params.rpm", Slot::Params("rpm")),
    ("model_list[0].litellm_params.tpm", Slot::Params("tpm")),
    (
        "model_list[0].litellm_params.weight",
        Slot::Params("weight"),
    ),
    (
        "model_list[0].litellm_params.timeout",
        Slot::Params("timeout"),
    ),
    (
        "model_list[0].litellm_params.stream_timeout",
        Slot::Params("stream_timeout"),
    ),
    (
        "model_list[0].litellm_params.max_retries",
        Slot::Params("max_retries"),
    ),
    (
        "model_list[0].litellm_params.input_cost_per_token",
        Slot::Params("input_cost_per_token"),
    ),
    (
        "model_list[0].litellm_params.output_cost_per_token",
        Slot::Params("output_cost_per_token"),
    ),
    (
        "model_list[0].model_info.input_cost_per_token",
        Slot::Info("input_cost_per_token"),
    ),
    (
        "model_list[0].model_info.output_cost_per_token",
        Slot::Info("output_cost_per_token"),
    ),
    (
        "model_list[0].model_info.max_tokens",
        Slot::Info("max_tokens"),
    ),
    (
        "model_list[0].model_info.max_input_tokens",
        Slot::Info("max_input_tokens"),
    ),
    (
        "model_list[0].model_info.max_output_tokens",
        Slot::Info("max_output_tokens"),
    ),
    ("router_settings.num_retries", Slot::Router("num_retries")),
    ("router_settings.retry_after", Slot::Router("retry_after")),
    (
        "router_settings.allowed_fails",
        Slot::Router("allowed_fails"),
    ),
    (
        "router_settings.cooldown_time",
        Slot::Router("cooldown_time"),
    ),
    ("router_settings.timeout", Slot::Router("timeout")),
    (
        "router_settings.stream_timeout",
        Slot::Router("stream_timeout"),
    ),
    (
        "router_settings.max_fallbacks",
        Slot::Router("max_fallbacks"),
    ),
    (
        "router_settings.deployment_affinity_ttl_seconds",
        Slot::Router("deployment_affinity_ttl_seconds"),
    ),
    ("router_settings.redis_port", Slot::Router("redis_port")),
    ("router_settings.redis_db", Slot::Router("redis_db")),
    (
        "router_settings.routing_strategy_args.ttl",
        Slot::StrategyArgs("ttl"),
    ),
    (
        "router_settings.routing_strategy_args.lowest_latency_buffer",
        Slot::StrategyArgs("lowest_latency_buffer"),
    ),
    (
        "router_settings.retry_policy.TimeoutErrorRetries",
        Slot::RetryPolicy("TimeoutErrorRetries"),
    ),
    (
        "router_settings.retry_policy.InternalServerErrorRetries",
        Slot::RetryPolicy("InternalServerErrorRetries"),
    ),
    (
        "router_settings.retry_policy.RateLimitErrorRetries",
        Slot::RetryPolicy("RateLimitErrorRetries"),
    ),
    ("litellm_settings.num_retries", Slot::Litellm("num_retries")),
    (
        "litellm_settings.request_timeout",
        Slot::Litellm("request_timeout"),
    ),
    (
        "litellm_settings.allowed_fails",
        Slot::Litellm("allowed_fails"),
    ),
    (
        "litellm_settings.cooldown_time",
        Slot::Litellm("cooldown_time"),
    ),
    (
        "general_settings.max_request_size_mb",
        Slot::General("max_request_size_mb"),
    ),
    (
        "general_settings.max_response_size_mb",
        Slot::General("max_response_size_mb"),
    ),
];

/// Where a key sits in [`config`].
#[derive(Debug, Clone, Copy)]
enum Slot {
    Params(&'static str),
    Info(&'static str),
    Router(&'static str),
    StrategyArgs(&'static str),
    RetryPolicy(&'static str),
    Litellm(&'static str),
    General(&'static str),
}

/// The config with `value` (YAML text) at `slot`.
fn config(slot: Slot, value: &str) -> String {
    let at = |s: Slot| -> String {
        match (s, slot) {
            (Slot::Params(_), Slot::Params(k))
            | (Slot::Info(_), Slot::Info(k))
            | (Slot::Router(_), Slot::Router(k))
            | (Slot::StrategyArgs(_), Slot::StrategyArgs(k))
            | (Slot::RetryPolicy(_), Slot::RetryPolicy(k))
            | (Slot::Litellm(_), Slot::Litellm(k))
            | (Slot::General(_), Slot::General(k)) => format!("{k}: {value}, "),
            _ => String::new(),
        }
    };
    format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{{params}model: openai/a, api_base: "http://127.0.0.1:9/v1", api_key: k}}
    model_info: {{{info}id: dead-a}}
  - model_name: gpt
    litellm_params: {{model: openai/b, api_base: "http://127.0.0.1:9/v1", api_key: k}}
    model_info: {{id: dead-b}}
  - model_name: backup
    litellm_params: {{model: openai/c, mock_response: "ok"}}
router_settings:
  {router}routing_strategy: latency-based-routing
  routing_strategy_args: {{{args}}}
  retry_policy: {{{policy}}}
  fallbacks: [{{gpt: [backup]}}]
litellm_settings: {{{litellm}}}
general_settings: {{{general}}}
"#,
        params = at(Slot::Params("")),
        info = at(Slot::Info("")),
        router = at(Slot::Router("")).replace(", ", "\n  "),
        args = at(Slot::StrategyArgs("")).trim_end_matches(", "),
        policy = at(Slot::RetryPolicy("")).trim_end_matches(", "),
        litellm = at(Slot::Litellm("")).trim_end_matches(", "),
        general = at(Slot::General("")).trim_end_matches(", "),
    )
}

/// A number as YAML writes it (`.nan`, `.inf`, `-.inf` for the non-finite ones).
fn yaml_number(v: f64) -> String {
    if v.is_nan() {
        ".nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }
    } else {
        format!("{v:?}")
    }
}

/// Numbers that break naive code: huge, tiny, negative, non-finite, integer edges.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1e20),
        Just(-1.0),
        Just(0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e-12),
        Just(u64::MAX as f64),
        Just(4_294_967_296.0),
        Just(31_536_000.0),
        -1e30..1e30f64,
        0.0..5.0f64,
    ]
}

/// Every duration the loaded config carries.
fn durations(c: &Config) -> Vec<std::time::Duration> {
    let rs = &c.router_settings;
    let mut all = vec![
        rs.retry_after,
        rs.cooldown_time,
        rs.routing_strategy_args.ttl,
    ];
    all.extend(rs.timeout);
    all.extend(rs.stream_timeout);
    all.extend(rs.deployment_affinity_ttl);
    all.extend(c.litellm_settings.request_timeout);
    for d in &c.model_list {
        all.extend(d.litellm_params.timeout);
        all.extend(d.litellm_params.stream_timeout);
    }
    all
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One chat request to `model` on a gateway over `config`; the status.
fn serve_one(rt: &tokio::runtime::Runtime, config: &Config, model: &str, stream: bool) -> u16 {
    let gw = Gateway::new(config, &|_| None).expect("a loaded config builds a gateway");
    let app = server::app(App::new(gw, ConfigSource::Embedded, false));
    rt.block_on(async {
        let body = json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        });
        let req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let resp = app.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        if status != StatusCode::OK {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert!(
                v["error"]["message"].is_string(),
                "{status} without an OpenAI-shaped error: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        status.as_u16()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_numeric_key_is_refused_at_its_path_or_served(
        key in 0..KEYS.len(),
        v in number(),
    ) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (path, slot) = KEYS[key];
        let yaml = config(slot, &yaml_number(v));
        match routeiq::config::load_str_with_env(&yaml, &|_| None) {
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains(path), "{path} = {v}: the error does not name the key: {text}");
            }
            Ok(loaded) => {
                for d in durations(&loaded.config) {
                    prop_assert!(d <= MAX_DURATION, "{path} = {v}: loaded {d:?}");
                }
                let rt = runtime();
                for stream in [false, true] {
                    let status = serve_one(&rt, &loaded.config, "gpt", stream);
                    prop_assert!(status != 500, "{path} = {v}: status {status}");
                }
            }
        }
    }
}

#[test]
fn the_reported_panics_are_config_errors() {
    for (slot, path) in [
        (
            Slot::Params("timeout"),
            "model_list[0].litellm_params.timeout",
        ),
        (
            Slot::Params("stream_timeout"),
            "model_list[0].litellm_params.stream_timeout",
        ),
        (
            Slot::Router("cooldown_time"),
            "router_settings.cooldown_time",
        ),
        (Slot::Router("retry_after"), "router_settings.retry_after"),
    ] {
        let yaml = config(slot, "1e20");
        let err = routeiq::config::load_str_with_env(&yaml, &|_| None)
            .expect_err("1e20 seconds is refused");
        let text = err.to_string();
        assert!(text.contains(path), "{text}");
        assert!(text.contains("one year"), "{text}");
    }
    // The top of the range loads and serves.
    let yaml = config(Slot::Params("timeout"), "31536000");
    let loaded = routeiq::config::load_str_with_env(&yaml, &|_| None).expect("one year loads");
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert_eq!(serve_one(&runtime(), &loaded.config, "gpt", false), 200);
}
