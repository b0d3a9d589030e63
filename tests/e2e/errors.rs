//! Bad input gets a clear OpenAI-shaped error with the right status, and the gateway keeps
//! serving.

use serde_json::{Value, json};

use crate::{BASIC, chat_body, error_of, post, start};

async fn raw_post(
    gw: &routeiq_testkit::GatewayProcess,
    path: &str,
    body: &'static str,
) -> reqwest::Response {
    routeiq_testkit::client()
        .post(format!("{}{path}", gw.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_and_names_the_problem() {
    let (mock, gw) = start(BASIC).await;
    let resp = raw_post(
        &gw,
        "/v1/chat/completions",
        "{\"model\": \"gpt\", \"messages\": [",
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert_eq!(err["type"], "invalid_request_error");
    assert!(
        err["message"].as_str().unwrap().contains("not valid JSON"),
        "{err}"
    );

    // A wrong type names its path.
    let resp = raw_post(
        &gw,
        "/v1/chat/completions",
        r#"{"model": "gpt", "messages": [{"role": "user", "content": "x"}], "max_tokens": "lots"}"#,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert_eq!(err["param"], "max_tokens", "{err}");

    let resp = raw_post(
        &gw,
        "/v1/chat/completions",
        r#"{"model": "gpt", "messages": [{"role": "wizard", "content": "x"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(
        err["param"].as_str().unwrap().starts_with("messages[0]"),
        "{err}"
    );

    let resp = raw_post(
        &gw,
        "/v1/chat/completions",
        r#"{"messages": [{"role": "user", "content": "x"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert!(err["message"].as_str().unwrap().contains("model"), "{err}");

    let resp = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gpt", "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_of(resp).await["param"], "messages");

    assert!(
        mock.requests().is_empty(),
        "bad requests must not reach the upstream"
    );
    // Still serving.
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat_body("gpt", "ok"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_model_is_404_listing_valid_names() {
    let (_mock, gw) = start(BASIC).await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("gpt-9", "hi")).await;
    assert_eq!(resp.status(), 404);
    let err = error_of(resp).await;
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(err["param"], "model");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("gpt-9") && msg.contains("gpt") && msg.contains("claude"),
        "{msg}"
    );
}

#[tokio::test]
async fn oversize_body_is_413() {
    let template = format!("{BASIC}general_settings:\n  max_request_size_mb: 0.01\n");
    let (mock, gw) = start(&template).await;
    let big = "x".repeat(20_000);
    let resp = post(&gw, "/v1/chat/completions", &chat_body("gpt", &big)).await;
    assert_eq!(resp.status(), 413);
    let err = error_of(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("max_request_size_mb"),
        "{err}"
    );
    // Chunked (no content-length) is limited too.
    let body = serde_json::to_vec(&chat_body("gpt", &big)).unwrap();
    let stream = futures::stream::iter(
        body.chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(mock.requests().is_empty());
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat_body("gpt", "small"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn master_key_is_required_when_configured() {
    let template = format!("{BASIC}general_settings:\n  master_key: sk-master\n");
    let (_mock, gw) = start(&template).await;
    let c = routeiq_testkit::client();
    let url = format!("{}/v1/chat/completions", gw.base_url());
    let resp = c
        .post(&url)
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_of(resp).await["type"], "authentication_error");
    let resp = c
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .post(&url)
        .bearer_auth("sk-master")
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .post(&url)
        .header("x-api-key", "sk-master")
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .get(format!("{}/v1/models", gw.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn master_key_from_environment() {
    let (_mock, gw) = crate::start_with_env(BASIC, &[("LITELLM_MASTER_KEY", "sk-env-key")]).await;
    let c = routeiq_testkit::client();
    let url = format!("{}/v1/models", gw.base_url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .bearer_auth("sk-env-key")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_endpoint_is_openai_shaped_404() {
    let (_mock, gw) = start(BASIC).await;
    let resp = routeiq_testkit::client()
        .get(format!("{}/v1/nothing-here", gw.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let err = error_of(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("/v1/nothing-here")
    );
}

#[tokio::test]
async fn upstream_errors_map_to_openai_errors() {
    let (mock, gw) = start(BASIC).await;
    mock.script(
        "claude-test",
        vec![routeiq_testkit::Behavior::unauthorized()],
    );
    let resp = post(&gw, "/v1/chat/completions", &chat_body("claude", "hi")).await;
    assert_eq!(resp.status(), 401);
    let err: Value = error_of(resp).await;
    assert_eq!(err["type"], "authentication_error");
}
