//! Property tests of request parsing: arbitrary bytes and arbitrary JSON never make the typed
//! request structs panic, and the gateway (in process, over `tower::ServiceExt::oneshot`, on a
//! `mock_response` config) answers garbage with a 4xx and an OpenAI-shaped error, never a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use routeiq::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use routeiq_gateway::Gateway;
use routeiq_gateway::app::App;
use routeiq_gateway::cli::ConfigSource;
use routeiq_gateway::http::server;
use serde_json::{Value, json};
use tower::ServiceExt;

const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "hello"
  - model_name: embed
    litellm_params:
      model: openai/text-embedding-3-small
      mock_response: "x"
    model_info:
      mode: embedding
"#;

fn router() -> axum::Router {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = routeiq::config::load_str_with_env(CONFIG, &|_| None).expect("test config loads");
    let gw = Gateway::new(&loaded.config, &|_| None).expect("gateway builds");
    server::app(App::new(gw, ConfigSource::Embedded, false))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

thread_local! {
    /// One runtime and one app per test thread (building a gateway per case would dominate).
    static APP: (tokio::runtime::Runtime, axum::Router) = (runtime(), router());
}

/// Sends `body` to `path` on this thread's app and returns the status and the JSON body.
fn send(path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    APP.with(|(rt, app)| call(rt, app, path, body))
}

/// Sends `body` to `path` and returns the status and the JSON body.
fn call(
    rt: &tokio::runtime::Runtime,
    app: &axum::Router,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    rt.block_on(async {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z ]{0,12}".prop_map(Value::String),
        Just(json!("user")),
        Just(json!("gpt")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("model".to_string()),
                    Just("messages".to_string()),
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("stream".to_string()),
                    Just("prompt".to_string()),
                    Just("input".to_string()),
                    Just("tools".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    Just("stop".to_string()),
                    Just("max_tokens".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_client_error(status: StatusCode, body: &Value, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{what}: {status} {body}");
    if !status.is_success() {
        prop_assert!(status.is_client_error(), "{what}: {status}");
        prop_assert!(body["error"]["message"].is_string(), "{what}: {body}");
        prop_assert!(body["error"]["type"].is_string(), "{what}: {body}");
    }
    Ok(())
}

const PATHS: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn typed_requests_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ChatCompletionRequest>(&bytes);
        let _ = serde_json::from_slice::<CompletionRequest>(&bytes);
        let _ = serde_json::from_slice::<EmbeddingRequest>(&bytes);
    }

    #[test]
    fn typed_requests_never_panic_on_json(v in json_value()) {
        let _ = serde_json::from_value::<ChatCompletionRequest>(v.clone());
        let _ = serde_json::from_value::<CompletionRequest>(v.clone());
        let _ = serde_json::from_value::<EmbeddingRequest>(v);
    }

    #[test]
    fn garbage_bytes_get_4xx(bytes in proptest::collection::vec(any::<u8>(), 0..256), which in 0usize..3) {
        let (status, body) = send(PATHS[which], bytes);
        assert_client_error(status, &body, PATHS[which])?;
        prop_assert!(!status.is_success());
    }

    #[test]
    fn arbitrary_json_gets_2xx_or_4xx(v in json_value(), which in 0usize..3) {
        let bytes = serde_json::to_vec(&v).expect("serializes");
        let (status, body) = send(PATHS[which], bytes);
        assert_client_error(status, &body, PATHS[which])?;
    }

    #[test]
    fn near_valid_chat_requests_get_2xx_or_4xx(
        model in prop_oneof![Just(json!("gpt")), Just(json!("embed")), json_value()],
        messages in proptest::collection::vec(
            (prop_oneof![Just(json!("user")), Just(json!("system")), json_value()], json_value()),
            0..4,
        ),
        stream in prop_oneof![Just(json!(true)), Just(json!(false)), json_value()],
    ) {
        let messages: Vec<Value> = messages
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let body = json!({"model": model, "messages": messages, "stream": stream});
        let (status, resp) = send(PATHS[0], serde_json::to_vec(&body).expect("serializes"));
        assert_client_error(status, &resp, "near-valid chat")?;
    }
}

#[test]
fn valid_request_succeeds_in_process() {
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    let (status, resp) = send(PATHS[0], serde_json::to_vec(&body).expect("json"));
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["choices"][0]["message"]["content"], "hello");
}

#[test]
fn readiness_reports_draining() {
    let rt = runtime();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = routeiq::config::load_str_with_env(CONFIG, &|_| None).expect("config");
    let gw = Gateway::new(&loaded.config, &|_| None).expect("gateway");
    let app: Arc<App> = App::new(gw, ConfigSource::Embedded, false);
    let router = server::app(app.clone());
    let get = |router: axum::Router| {
        rt.block_on(async move {
            let req = Request::get("/health/readiness")
                .body(Body::empty())
                .expect("req");
            router.oneshot(req).await.expect("infallible").status()
        })
    };
    assert_eq!(get(router.clone()), StatusCode::OK);
    app.start_draining();
    assert_eq!(get(router), StatusCode::SERVICE_UNAVAILABLE);
}
