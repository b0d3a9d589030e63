//! Virtual keys, teams, users, budgets, rate limits and spend through LiteLLM's admin API,
//! with the in-memory key store (`ROUTEIQ_KEYS_BACKEND=memory`): the key lifecycle, every
//! refusal in LiteLLM's shape, spend that adds up, and what the admin API refuses.

use std::time::Duration;

use routeiq_testkit::{GatewayProcess, MockUpstream};
use serde_json::{Value, json};

use crate::{bin, chat_body, render};

const MASTER: &str = "sk-master-key-1234";

/// `gpt`: an OpenAI deployment priced at $0.25 per prompt token and nothing per completion
/// token (every cost is a multiple of 0.25: exact in binary, so sums compare exactly);
/// `other`: another group; `emb`: embeddings.
const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/gpt-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: gpt-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
  - model_name: other
    litellm_params: {model: openai/other-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: other-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
  - model_name: emb
    litellm_params: {model: openai/emb-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: emb-1, mode: embedding}
router_settings:
  num_retries: 0
general_settings:
  master_key: sk-master-key-1234
"#;

async fn start_keys(extra_env: &[(&str, &str)]) -> (MockUpstream, GatewayProcess) {
    let mock = MockUpstream::start().await;
    let mut env = vec![
        ("ROUTEIQ_KEYS_BACKEND", "memory"),
        ("ROUTEIQ_SPEND_FLUSH_MS", "50"),
    ];
    env.extend_from_slice(extra_env);
    let gw = GatewayProcess::start(bin(), &render(CONFIG, &mock), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"));
    (mock, gw)
}

async fn call(
    gw: &GatewayProcess,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = routeiq_testkit::client()
        .request(method, format!("{}{path}", gw.base_url()))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn admin_post(gw: &GatewayProcess, path: &str, body: &Value) -> reqwest::Response {
    call(gw, reqwest::Method::POST, path, MASTER, Some(body)).await
}

async fn admin_ok(gw: &GatewayProcess, path: &str, body: &Value) -> Value {
    let resp = admin_post(gw, path, body).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn admin_get(gw: &GatewayProcess, path: &str) -> Value {
    let resp = call(gw, reqwest::Method::GET, path, MASTER, None).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn chat(gw: &GatewayProcess, key: &str, model: &str) -> reqwest::Response {
    call(
        gw,
        reqwest::Method::POST,
        "/v1/chat/completions",
        key,
        Some(&chat_body(model, "Hello there")),
    )
    .await
}

/// The error of a refusal, checked to be in LiteLLM's envelope (`code` a string).
async fn litellm_error(resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    let err = body["error"].clone();
    assert!(err["message"].is_string(), "{body}");
    assert_eq!(err["code"], status.to_string(), "{body}");
    err
}

/// A key's spend as `/key/info` reports it.
async fn key_spend(gw: &GatewayProcess, key: &str) -> f64 {
    admin_get(gw, &format!("/key/info?key={key}")).await["info"]["spend"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn key_lifecycle_through_the_admin_api() {
    let (_mock, gw) = start_keys(&[]).await;
    let created = admin_ok(
        &gw,
        "/key/generate",
        &json!({"key_alias": "app-1", "models": ["gpt"], "metadata": {"owner": "ops"}}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-") && key.len() == 25, "{created}");
    let hash = created["token"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(created["token_id"], hash);
    assert_eq!(
        created["key_name"],
        format!("sk-...{}", &key[key.len() - 4..])
    );
    assert_eq!(created["key_alias"], "app-1");

    // The key works for its model, with the decision headers as for the master key.
    let resp = chat(&gw, &key, "gpt").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-routeiq-model").is_some());
    // ...and not for another: 403 naming the allowed models.
    let err = litellm_error(chat(&gw, &key, "other").await).await;
    assert_eq!(err["type"], "key_model_access_denied");
    assert_eq!(err["param"], "model");
    assert!(
        err["message"].as_str().unwrap().contains("[\"gpt\"]"),
        "{err}"
    );
    // /v1/models lists only what the key may call.
    let models = call(&gw, reqwest::Method::GET, "/v1/models", &key, None).await;
    let models: Value = models.json().await.unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt"]);

    // Info by key or by hash; list; the key itself is never shown again.
    let info = admin_get(&gw, &format!("/key/info?key={key}")).await;
    assert_eq!(info["info"]["key_alias"], "app-1");
    assert_eq!(info["info"]["status"], "active");
    assert!(info["info"].get("token").is_none());
    assert!(!info["info"].to_string().contains(&key[3..]));
    let by_hash = admin_get(&gw, &format!("/key/info?key={hash}")).await;
    assert_eq!(by_hash["info"]["key_alias"], "app-1");
    let list = admin_get(&gw, "/key/list").await;
    assert_eq!(list["keys"], json!([hash]));
    assert_eq!(list["total_count"], 1);

    // Update: takes effect at once on this instance.
    admin_ok(
        &gw,
        "/key/update",
        &json!({"key": key, "models": ["other"]}),
    )
    .await;
    assert_eq!(chat(&gw, &key, "gpt").await.status(), 403);
    assert_eq!(chat(&gw, &key, "other").await.status(), 200);

    // Block and unblock.
    admin_ok(&gw, "/key/block", &json!({"key": key})).await;
    let err = litellm_error(chat(&gw, &key, "other").await).await;
    assert_eq!(err["type"], "auth_error");
    assert!(err["message"].as_str().unwrap().contains("Key is blocked"));
    admin_ok(&gw, "/key/unblock", &json!({"key": key})).await;
    assert_eq!(chat(&gw, &key, "other").await.status(), 200);

    // Regenerate: a new key for the same record, spend kept; the old key stops at once.
    let spend_before = key_spend(&gw, &key).await;
    assert!(spend_before > 0.0);
    let regen = admin_ok(&gw, &format!("/key/{key}/regenerate"), &json!({})).await;
    let new_key = regen["key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    let err = litellm_error(chat(&gw, &key, "other").await).await;
    assert_eq!(err["type"], "token_not_found_in_db");
    assert_eq!(chat(&gw, &new_key, "other").await.status(), 200);
    assert!(key_spend(&gw, &new_key).await > spend_before);
    assert_eq!(
        admin_get(&gw, &format!("/key/info?key={new_key}")).await["info"]["key_alias"],
        "app-1"
    );

    // Delete by alias.
    let deleted = admin_ok(&gw, "/key/delete", &json!({"key_aliases": ["app-1"]})).await;
    assert_eq!(deleted["deleted_keys"], json!(["app-1"]));
    assert_eq!(chat(&gw, &new_key, "other").await.status(), 401);
    let gone = call(
        &gw,
        reqwest::Method::GET,
        &format!("/key/info?key={new_key}"),
        MASTER,
        None,
    )
    .await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn refusals_are_litellms() {
    let (_mock, gw) = start_keys(&[]).await;
    // No key, a wrong key.
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/chat/completions", gw.base_url()))
        .json(&chat_body("gpt", "hi"))
        .send()
        .await
        .unwrap();
    let err = litellm_error(resp).await;
    assert_eq!(err["type"], "auth_error");
    assert_eq!(
        err["message"],
        "Authentication Error, No api key passed in."
    );
    let err = litellm_error(chat(&gw, "sk-not-a-real-key-000", "gpt").await).await;
    assert_eq!(err["type"], "token_not_found_in_db");
    assert_eq!(err["param"], "key");

    // An expired key.
    let k = admin_ok(&gw, "/key/generate", &json!({"duration": "1s"})).await;
    let key = k["key"].as_str().unwrap();
    assert!(k["expires"].is_string());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = litellm_error(chat(&gw, key, "gpt").await).await;
    assert_eq!(err["type"], "expired_key");
    assert!(err["message"].as_str().unwrap().contains("Expired Key"));

    // Routes: only chat.
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"allowed_routes": ["/chat/completions"]}),
    )
    .await;
    let key = k["key"].as_str().unwrap();
    assert_eq!(chat(&gw, key, "gpt").await.status(), 200);
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/v1/embeddings",
        key,
        Some(&json!({"model": "emb", "input": "x"})),
    )
    .await;
    let err = litellm_error(resp).await;
    assert_eq!(err["code"], "403");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Tried to call route: /v1/embeddings"),
        "{err}"
    );

    // On /v1/messages the refusal is in Anthropic's shape.
    let resp = routeiq_testkit::client()
        .post(format!("{}/v1/messages", gw.base_url()))
        .header("x-api-key", "sk-not-a-real-key-000")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    // The admin API is for admins only.
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/key/generate",
        key,
        Some(&json!({})),
    )
    .await;
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn budgets_stop_keys_teams_and_users() {
    let (_mock, gw) = start_keys(&[]).await;
    // A key with a budget of $0.25: any request costs at least that (a prompt token at
    // $0.25), so the first passes and the next is refused.
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"key_alias": "small", "max_budget": 0.25}),
    )
    .await;
    let key = k["key"].as_str().unwrap();
    assert_eq!(chat(&gw, key, "gpt").await.status(), 200);
    let resp = chat(&gw, key, "gpt").await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    let err = litellm_error(resp).await;
    assert_eq!(err["type"], "budget_exceeded");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Budget has been exceeded! Key=small (sk-..."),
        "{msg}"
    );
    assert!(msg.contains("Max budget: 0.25"), "{msg}");
    // Raising the budget lets it through again at once.
    admin_ok(
        &gw,
        "/key/update",
        &json!({"key": key, "max_budget": 1000.0}),
    )
    .await;
    assert_eq!(chat(&gw, key, "gpt").await.status(), 200);

    // A team budget covers all its keys; a team's models apply to keys without their own.
    let team = admin_ok(
        &gw,
        "/team/new",
        &json!({"team_alias": "research", "max_budget": 0.25, "models": ["gpt"]}),
    )
    .await;
    let team_id = team["team_id"].as_str().unwrap();
    let a = admin_ok(&gw, "/key/generate", &json!({"team_id": team_id})).await;
    let b = admin_ok(&gw, "/key/generate", &json!({"team_id": team_id})).await;
    let (a, b) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let err = litellm_error(chat(&gw, a, "other").await).await;
    assert_eq!(err["type"], "team_model_access_denied");
    assert_eq!(chat(&gw, a, "gpt").await.status(), 200);
    let err = litellm_error(chat(&gw, b, "gpt").await).await;
    assert_eq!(err["type"], "budget_exceeded");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Budget has been exceeded! Team={team_id}")),
        "{err}"
    );
    let info = admin_get(&gw, &format!("/team/info?team_id={team_id}")).await;
    assert!(info["team_info"]["spend"].as_f64().unwrap() > 0.25);
    assert_eq!(info["keys"].as_array().unwrap().len(), 2);

    // A user's budget covers its personal keys; /user/new makes a key for it.
    let user = admin_ok(
        &gw,
        "/user/new",
        &json!({"user_id": "ada", "max_budget": 0.25}),
    )
    .await;
    let ukey = user["key"].as_str().unwrap();
    assert_eq!(user["user_id"], "ada");
    assert_eq!(chat(&gw, ukey, "gpt").await.status(), 200);
    let err = litellm_error(chat(&gw, ukey, "gpt").await).await;
    assert_eq!(err["type"], "budget_exceeded");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("ExceededBudget: User=ada over budget."),
        "{err}"
    );
    let info = admin_get(&gw, "/user/info?user_id=ada").await;
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);

    // Deleting the team deletes its keys.
    admin_ok(&gw, "/team/delete", &json!({"team_ids": [team_id]})).await;
    assert_eq!(chat(&gw, a, "gpt").await.status(), 401);
}

#[tokio::test]
async fn rate_limits_answer_429_with_litellms_headers() {
    let (mock, gw) = start_keys(&[]).await;
    let k = admin_ok(&gw, "/key/generate", &json!({"rpm_limit": 3})).await;
    let key = k["key"].as_str().unwrap();
    let hash = k["token"].as_str().unwrap();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = chat(&gw, key, "gpt").await;
        // A window boundary can reset the count: then this test would see 4 successes.
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ratelimit-api_key-limit-requests"], "3");
        remaining.push(
            resp.headers()["x-ratelimit-api_key-remaining-requests"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    let resp = chat(&gw, key, "gpt").await;
    if resp.status() == 200 {
        // The minute turned between requests: the fourth was the first of a new window.
        return;
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(resp.headers()["rate_limit_type"], "requests");
    assert!(resp.headers().get("reset_at").is_some());
    let err = litellm_error(resp).await;
    assert_eq!(err["type"], "throttling_error");
    assert!(
        err["message"].as_str().unwrap().starts_with(&format!(
            "Rate limit exceeded for api_key: {hash}. Limit type: requests. Current limit: 3"
        )),
        "{err}"
    );
    // Refused requests never reached the upstream.
    assert_eq!(mock.hits("/v1/chat/completions"), 3);

    // max_parallel_requests: with a slow upstream, the second of two at once is refused.
    let k = admin_ok(&gw, "/key/generate", &json!({"max_parallel_requests": 1})).await;
    let key = k["key"].as_str().unwrap().to_string();
    mock.set_latency_ms(400);
    let (a, b) = tokio::join!(chat(&gw, &key, "gpt"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        chat(&gw, &key, "gpt").await
    });
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 429);
    assert_eq!(b.headers()["rate_limit_type"], "max_parallel_requests");
    mock.set_latency_ms(0);
    // The slot is free again once the first ended.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(chat(&gw, &key, "gpt").await.status(), 200);
}

/// ModelMuxer's windows: requests per day (and hour) on keys and teams, a burst limit per
/// second; a refused request gives back the windows it took.
#[tokio::test]
async fn daily_hourly_and_burst_windows() {
    let (mock, gw) = start_keys(&[]).await;
    admin_ok(
        &gw,
        "/team/new",
        &json!({"team_id": "t-daily", "rpd_limit": 2}),
    )
    .await;
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"team_id": "t-daily", "rpd_limit": 100, "rph_limit": 50}),
    )
    .await;
    assert_eq!(k["rpd_limit"], 100);
    assert_eq!(k["rph_limit"], 50);
    let key = k["key"].as_str().unwrap().to_string();
    let hash = k["token"].as_str().unwrap().to_string();
    for remaining in ["1", "0"] {
        let resp = chat(&gw, &key, "gpt").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-ratelimit-team-limit-requests_per_day"],
            "2"
        );
        assert_eq!(
            resp.headers()["x-ratelimit-team-remaining-requests_per_day"],
            remaining
        );
        assert_eq!(
            resp.headers()["x-ratelimit-api_key-limit-requests_per_hour"],
            "50"
        );
    }
    let resp = chat(&gw, &key, "gpt").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["rate_limit_type"], "requests_per_day");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let err = litellm_error(resp).await;
    assert_eq!(err["type"], "throttling_error");
    assert!(
        err["message"].as_str().unwrap().starts_with(
            "Rate limit exceeded for team: t-daily. Limit type: requests_per_day. Current limit: 2"
        ),
        "{err}"
    );
    assert_eq!(mock.hits("/v1/chat/completions"), 2);
    // The refused request took none of the key's day: with the team's limit raised, the
    // key has used 3 of its 100.
    admin_ok(
        &gw,
        "/team/update",
        &json!({"team_id": "t-daily", "rpd_limit": 10}),
    )
    .await;
    let resp = chat(&gw, &key, "gpt").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-ratelimit-api_key-remaining-requests_per_day"],
        "97"
    );
    let info = admin_get(&gw, &format!("/key/info?key={hash}")).await;
    assert_eq!(info["info"]["rph_limit"], 50);

    // Burst: 2 a second. Five at once get at most two per second they span.
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"burst_limit": 2, "rpm_limit": 100}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let statuses = futures::future::join_all((0..5).map(|_| {
        let (gw, key) = (&gw, key.clone());
        async move {
            let resp = chat(gw, &key, "gpt").await;
            let kind = resp
                .headers()
                .get("rate_limit_type")
                .map(|v| v.to_str().unwrap().to_string());
            (resp.status().as_u16(), kind)
        }
    }))
    .await;
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert!((2..=4).contains(&ok), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, kind)| *s == 429 && kind.as_deref() == Some("burst")),
        "{statuses:?}"
    );
    // Bad values are refused with the field named.
    let resp = admin_post(&gw, "/key/generate", &json!({"rph_limit": "lots"})).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("rph_limit"));
}

#[tokio::test]
async fn spend_adds_up_exactly_and_is_reported() {
    let (_mock, gw) = start_keys(&[]).await;
    let team = admin_ok(&gw, "/team/new", &json!({"team_id": "t-spend"})).await;
    assert_eq!(team["team_id"], "t-spend");
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"team_id": "t-spend", "key_alias": "spender"}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let hash = k["token"].as_str().unwrap().to_string();
    // 40 requests, 8 at a time, chat and streamed chat and embeddings.
    let mut costs = 0.0;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let gw_url = gw.base_url();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let client = routeiq_testkit::client();
            let (path, body) = match i % 3 {
                0 => ("/v1/chat/completions", chat_body("gpt", "count my tokens please")),
                1 => (
                    "/v1/chat/completions",
                    json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
                        "messages": [{"role": "user", "content": "stream please"}]}),
                ),
                _ => ("/v1/embeddings", json!({"model": "emb", "input": "embed me"})),
            };
            let resp = client
                .post(format!("{gw_url}{path}"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let cost: f64 = resp
                .headers()
                .get("x-routeiq-response-cost")
                .map_or(0.0, |v| v.to_str().unwrap().parse().unwrap());
            let _ = resp.bytes().await.unwrap();
            cost
        }));
        if tasks.len() == 8 {
            for t in tasks.drain(..) {
                costs += t.await.unwrap();
            }
        }
    }
    for t in tasks {
        costs += t.await.unwrap();
    }
    // Streams are charged when they end; the log rows land with the next flush.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = admin_get(&gw, &format!("/spend/logs?api_key={hash}")).await;
    let rows = logs.as_array().unwrap();
    assert_eq!(rows.len(), 40, "{logs}");
    let logged: f64 = rows.iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    let key_spend = key_spend(&gw, &key).await;
    let team_spend = admin_get(&gw, "/team/info?team_id=t-spend").await["team_info"]["spend"]
        .as_f64()
        .unwrap();
    assert!(logged > 0.0);
    // Every cost is a multiple of 0.25: the sums are exact.
    assert_eq!(key_spend, logged, "key spend vs the spend log");
    assert_eq!(team_spend, logged, "team spend vs the spend log");
    assert!(
        rows.iter()
            .all(|r| r["team_id"] == "t-spend" && r["status"] == "success")
    );
    assert!(rows.iter().any(|r| r["call_type"] == "aembedding"));
    assert!(rows.iter().any(|r| r["call_type"] == "acompletion"));
    // Non-streamed answers carry their cost; streamed ones are in the log only.
    assert!(costs <= logged);

    // The global report by key and by team sums the same.
    let today = chrono::Utc::now().date_naive().to_string();
    let report = admin_get(
        &gw,
        &format!("/global/spend/report?start_date={today}&end_date={today}&group_by=api_key"),
    )
    .await;
    assert_eq!(report[0]["api_key"], hash);
    assert_eq!(report[0]["total_cost"].as_f64().unwrap(), logged);
    let report = admin_get(
        &gw,
        &format!("/global/spend/report?start_date={today}&end_date={today}"),
    )
    .await;
    assert_eq!(report[0]["teams"][0]["team_name"], "t-spend");
    assert_eq!(
        report[0]["teams"][0]["total_spend"].as_f64().unwrap(),
        logged
    );
}

#[tokio::test]
async fn the_admin_api_refuses_what_it_would_not_enforce() {
    let (_mock, gw) = start_keys(&[]).await;
    let resp = admin_post(
        &gw,
        "/key/generate",
        &json!({"model_max_budget": {"gpt": {"budget_limit": 1, "time_period": "1d"}}}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err = litellm_error(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("model_max_budget")
    );
    let resp = admin_post(
        &gw,
        "/key/generate",
        &json!({"budget_duration": "sometimes"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let resp = admin_post(&gw, "/key/generate", &json!({"team_id": "no-such-team"})).await;
    assert_eq!(resp.status(), 400);
    let resp = admin_post(&gw, "/key/generate", &json!({"key": "not-sk-prefixed-key"})).await;
    assert_eq!(resp.status(), 400);
    // A custom key works, and its alias is unique.
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"key": "sk-my-custom-key-0001", "key_alias": "custom"}),
    )
    .await;
    assert_eq!(k["key"], "sk-my-custom-key-0001");
    assert_eq!(
        chat(&gw, "sk-my-custom-key-0001", "gpt").await.status(),
        200
    );
    let resp = admin_post(&gw, "/key/generate", &json!({"key_alias": "custom"})).await;
    assert_eq!(resp.status(), 400);
    // Aliases per key rename models.
    let k = admin_ok(
        &gw,
        "/key/generate",
        &json!({"aliases": {"my-model": "other"}}),
    )
    .await;
    let resp = chat(&gw, k["key"].as_str().unwrap(), "my-model").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-routeiq-model-group"], "other");
}

#[tokio::test]
async fn without_a_key_store_the_admin_api_says_so() {
    let mock = MockUpstream::start().await;
    let gw = GatewayProcess::start(bin(), &render(CONFIG, &mock), &[])
        .await
        .unwrap();
    let resp = admin_post(&gw, "/key/generate", &json!({})).await;
    assert_eq!(resp.status(), 500);
    let err = litellm_error(resp).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("DB not connected")
    );
    // The master key works as before.
    assert_eq!(chat(&gw, MASTER, "gpt").await.status(), 200);
}

#[tokio::test]
async fn virtual_keys_without_a_master_key_do_not_start() {
    let mock = MockUpstream::start().await;
    let config =
        render(CONFIG, &mock).replace("general_settings:\n  master_key: sk-master-key-1234\n", "");
    let (code, stderr) =
        GatewayProcess::start_expect_failure(bin(), &config, &[("ROUTEIQ_KEYS_BACKEND", "memory")])
            .await
            .unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("no master key is set"), "{stderr}");
}
