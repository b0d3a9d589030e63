//! Security end to end: the SSRF guard, request limits, header injection through model names.

use serde_json::{Value, json};

use crate::{chat_body, error_of, metric_value, metrics_text, post, start, start_with_env};

#[tokio::test]
async fn metadata_endpoints_are_refused_with_a_clear_error_and_a_metric() {
    // Nothing is contacted: the guard refuses the IP literal before any connection.
    let (_mock, gw) = start(
        r#"
model_list:
  - model_name: meta
    litellm_params:
      model: openai/x
      api_base: "http://169.254.169.254/latest"
      api_key: sk-x
    model_info:
      id: meta-1
  - model_name: meta6
    litellm_params:
      model: openai/x
      api_base: "http://[fd00:ec2::254]/v1"
      api_key: sk-x
router_settings:
  num_retries: 2
"#,
    )
    .await;
    for model in ["meta", "meta6"] {
        let resp = post(&gw, "/v1/chat/completions", &chat_body(model, "hi")).await;
        assert_eq!(resp.status(), 403);
        let err = error_of(resp).await;
        assert_eq!(err["type"], "permission_error");
        assert_eq!(err["code"], "ssrf_blocked");
        assert!(
            err["message"].as_str().unwrap().contains("SSRF guard"),
            "{err}"
        );
    }
    let text = metrics_text(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            r#"routeiq_outbound_blocked_total{reason="link_local"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        gw.logs().contains("refused by the SSRF guard"),
        "{}",
        gw.logs()
    );
}

#[tokio::test]
async fn operator_deployments_on_loopback_keep_working() {
    // The test suite's own mock upstream is on 127.0.0.1: operator-configured deployments may
    // use loopback and private hosts (ollama, vLLM), with or without allow-lists set.
    let (mock, gw) = start_with_env(
        r#"
model_list:
  - model_name: local
    litellm_params:
      model: openai/local-model
      api_base: "{MOCK}"
      api_key: sk-x
"#,
        &[("LLMROUTER_SSRF_CIDR_ALLOWLIST", "169.254.169.254/32")],
    )
    .await;
    let resp = post(&gw, "/v1/chat/completions", &chat_body("local", "hi")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.hits("local-model"), 1);
}

#[tokio::test]
async fn client_supplied_api_base_is_refused() {
    let (mock, gw) = start(crate::BASIC).await;
    for key in ["api_base", "base_url"] {
        let mut body = chat_body("gpt", "hi");
        body[key] = json!("http://169.254.169.254/latest/meta-data");
        let resp = post(&gw, "/v1/chat/completions", &body).await;
        assert_eq!(resp.status(), 400);
        let err = error_of(resp).await;
        assert_eq!(err["param"], key);
        assert!(
            err["message"].as_str().unwrap().contains("SSRF guard"),
            "{err}"
        );
    }
    let resp = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "embed", "input": "x", "api_base": "http://10.0.0.1"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(mock.requests().len(), 0, "nothing reached any upstream");
}

#[tokio::test]
async fn message_count_and_nesting_depth_are_bounded() {
    let (_mock, gw) = start_with_env(crate::BASIC, &[("ROUTEIQ_MAX_MESSAGES", "3")]).await;
    let messages: Vec<Value> = (0..4)
        .map(|i| json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gpt", "messages": messages}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = error_of(resp).await;
    assert_eq!(err["param"], "messages");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("ROUTEIQ_MAX_MESSAGES")
    );

    for depth in [65usize, 100_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(
            r#"{{"model":"gpt","messages":[{{"role":"user","content":"hi"}}],"x":{nested}}}"#
        );
        let resp = routeiq_testkit::client()
            .post(format!("{}/v1/chat/completions", gw.base_url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "depth {depth}");
        let err = error_of(resp).await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("ROUTEIQ_MAX_JSON_DEPTH"),
            "{err}"
        );
    }
    // Within the limits: fine.
    let resp = post(&gw, "/v1/chat/completions", &chat_body("gpt", "hi")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn model_names_cannot_inject_headers() {
    let (_mock, gw) = start(
        r#"
model_list:
  - model_name: "evil\r\nx-injected: yes"
    litellm_params:
      model: openai/evil-model
      mock_response: hi
  - model_name: fine
    litellm_params:
      model: openai/fine-model
      mock_response: hi
"#,
    )
    .await;
    // A configured group name with CR/LF: served, but never written into a header.
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("evil\r\nx-injected: yes", "hi"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("x-injected").is_none(),
        "{:?}",
        resp.headers()
    );
    assert!(resp.headers().get("x-routeiq-model-group").is_none());
    for (name, value) in resp.headers() {
        let v = value.as_bytes();
        assert!(
            !v.contains(&b'\r') && !v.contains(&b'\n'),
            "{name}: {value:?}"
        );
    }
    // A requested name with CR/LF: an ordinary 404.
    let resp = post(
        &gw,
        "/v1/chat/completions",
        &chat_body("fine\r\nx-injected: yes", "hi"),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("x-injected").is_none());
    // And the request id header cannot carry one either.
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .header("x-request-id", "abc%0d%0ax-injected:%20yes")
        .json(&chat_body("fine", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-injected").is_none());
    assert_ne!(
        crate::header(&resp, "x-request-id"),
        "abc%0d%0ax-injected:%20yes"
    );
}
