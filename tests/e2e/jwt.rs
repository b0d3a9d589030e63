//! JWT authentication (`general_settings.enable_jwt_auth`): tokens verified against the mock's
//! JWKS (RS256, ES256; rotation, stale copies) or ModelMuxer's shared secret (HS256), every
//! refusal in LiteLLM's shape, a JWT's team's models, budget and rate limits, and admin-scope
//! JWTs on the admin API.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::Algorithm;
use routeiq_testkit::mock::TEST_SERVICE_ACCOUNT_PUBLIC_KEY;
use routeiq_testkit::{
    GatewayProcess, MockUpstream, TEST_JWT_EC_PEM, TEST_JWT_RSA_2_PEM, TEST_SERVICE_ACCOUNT_PEM,
    sign_jwt, test_jwk, unix_now,
};
use serde_json::{Value, json};

use crate::{bin, chat_body, render};

const MASTER: &str = "sk-master-key-1234";
const AUDIENCE: &str = "routeiq-gateway";
const ISSUER: &str = "https://idp.test";
/// ModelMuxer's shared secret (32 bytes: HS256's least).
const SECRET: &str = "a-test-secret-of-32-bytes-length";

/// `gpt` and `other`, priced at $0.25 per prompt token (several per request).
const MODELS: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/gpt-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: gpt-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
  - model_name: other
    litellm_params: {model: openai/other-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: other-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
router_settings:
  num_retries: 0
"#;

/// JWT auth on, no teams or users (no control plane needed).
const PLAIN: &str = r#"
general_settings:
  master_key: sk-master-key-1234
  enable_jwt_auth: true
"#;

/// Tokens name a team (`tenant.team`) and a user (`sub`); the control plane applies theirs.
const MAPPED: &str = r#"
general_settings:
  master_key: sk-master-key-1234
  enable_jwt_auth: true
  litellm_jwtauth:
    team_id_jwt_field: tenant.team
    user_id_jwt_field: sub
    user_id_upsert: false
"#;

fn config(settings: &str, mock: &MockUpstream) -> String {
    render(&format!("{MODELS}{settings}"), mock)
}

async fn start(mock: &MockUpstream, settings: &str, env: &[(&str, &str)]) -> GatewayProcess {
    GatewayProcess::start(bin(), &config(settings, mock), env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"))
}

/// The mock's JWKS: the service-account RSA key as `rsa-1` and the EC key as `ec-1`.
fn serve_keys(mock: &MockUpstream) {
    mock.set_jwks(json!({"keys": [
        test_jwk("service_account", "rsa-1"),
        test_jwk("ec_p256", "ec-1"),
    ]}));
}

/// Claims valid for a minute, with the audience and issuer the gateway expects, plus `extra`.
fn claims(extra: Value) -> Value {
    let mut c = json!({
        "sub": "someone",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": unix_now(),
        "exp": unix_now() + 60,
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn rs256(kid: &str, claims: &Value) -> String {
    sign_jwt(
        Algorithm::RS256,
        Some(kid),
        TEST_SERVICE_ACCOUNT_PEM.as_bytes(),
        claims,
    )
}

async fn call(
    gw: &GatewayProcess,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = routeiq_testkit::client()
        .request(method, format!("{}{path}", gw.base_url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn chat(gw: &GatewayProcess, token: &str, model: &str) -> reqwest::Response {
    call(
        gw,
        reqwest::Method::POST,
        "/v1/chat/completions",
        token,
        Some(&chat_body(model, "Hello there")),
    )
    .await
}

async fn admin_ok(gw: &GatewayProcess, path: &str, body: &Value) -> Value {
    let resp = call(gw, reqwest::Method::POST, path, MASTER, Some(body)).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A refusal's error, checked to be in LiteLLM's envelope (`code` the status, as a string).
async fn litellm_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.unwrap();
    let err = body["error"].clone();
    assert!(err["message"].is_string(), "{body}");
    assert_eq!(err["code"], status.to_string(), "{body}");
    err
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn jwts_from_the_key_set_authenticate_and_bad_ones_are_refused() {
    let mock = MockUpstream::start().await;
    serve_keys(&mock);
    // An OpenID discovery URL: followed to its jwks_uri.
    let discovery = format!("{}/.well-known/openid-configuration", mock.base_url());
    let gw = start(
        &mock,
        PLAIN,
        &[
            ("JWT_PUBLIC_KEY_URL", discovery.as_str()),
            ("JWT_AUDIENCE", AUDIENCE),
            ("JWT_ISSUER", ISSUER),
        ],
    )
    .await;

    // RS256 and ES256 signed by keys in the set.
    let rsa = rs256("rsa-1", &claims(json!({})));
    assert_eq!(chat(&gw, &rsa, "gpt").await.status(), 200);
    let ec = sign_jwt(
        Algorithm::ES256,
        Some("ec-1"),
        TEST_JWT_EC_PEM.as_bytes(),
        &claims(json!({})),
    );
    assert_eq!(chat(&gw, &ec, "gpt").await.status(), 200);
    let resp = call(&gw, reqwest::Method::GET, "/v1/models", &ec, None).await;
    assert_eq!(resp.status(), 200);
    // The master key still works; a key that is not a JWT is not one.
    assert_eq!(chat(&gw, MASTER, "gpt").await.status(), 200);
    assert_eq!(chat(&gw, "sk-not-a-key", "gpt").await.status(), 401);
    assert!(mock.hits("/.well-known/openid-configuration") >= 1);

    // Expired: LiteLLM's expired_key.
    let expired = rs256(
        "rsa-1",
        &claims(json!({"iat": unix_now() - 120, "exp": unix_now() - 60})),
    );
    let err = litellm_error(chat(&gw, &expired, "gpt").await, 401).await;
    assert_eq!(err["type"], "expired_key");
    assert_eq!(err["message"], "Token Expired");

    // Every other failure: auth_error, "Validation fails: <reason>".
    let fails = |reason: &'static str| {
        move |err: &Value| {
            assert_eq!(err["type"], "auth_error", "{err}");
            let msg = err["message"].as_str().unwrap();
            assert!(
                msg.starts_with("Authentication Error, Validation fails: ") && msg.contains(reason),
                "{msg}"
            );
        }
    };
    let wrong_aud = rs256("rsa-1", &claims(json!({"aud": "another-app"})));
    fails("Audience doesn't match")(&litellm_error(chat(&gw, &wrong_aud, "gpt").await, 401).await);
    let wrong_iss = rs256("rsa-1", &claims(json!({"iss": "https://evil.test"})));
    fails("Invalid issuer")(&litellm_error(chat(&gw, &wrong_iss, "gpt").await, 401).await);
    let not_yet = rs256("rsa-1", &claims(json!({"nbf": unix_now() + 60})));
    fails("not yet valid")(&litellm_error(chat(&gw, &not_yet, "gpt").await, 401).await);
    let tampered = {
        let mut parts: Vec<String> = rsa.split('.').map(str::to_string).collect();
        parts[1] = b64(&claims(
            json!({"sub": "admin", "scope": "litellm_proxy_admin"}),
        ));
        parts.join(".")
    };
    fails("Signature verification failed")(
        &litellm_error(chat(&gw, &tampered, "gpt").await, 401).await,
    );
    // alg none: unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(json!({})))
    );
    fails("The specified alg value is not allowed")(
        &litellm_error(chat(&gw, &none, "gpt").await, 401).await,
    );
    // Key confusion: HS256 "signed" with the RSA public key's PEM, naming the RSA key.
    let confused = sign_jwt(
        Algorithm::HS256,
        Some("rsa-1"),
        TEST_SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes(),
        &claims(json!({})),
    );
    fails("The specified alg value is not allowed")(
        &litellm_error(chat(&gw, &confused, "gpt").await, 401).await,
    );
    // An RS256 token naming the EC key: the key verifies only ES256.
    let cross = rs256("ec-1", &claims(json!({})));
    fails("The specified alg value is not allowed")(
        &litellm_error(chat(&gw, &cross, "gpt").await, 401).await,
    );
    // Signed by a key the set does not hold.
    let stranger = sign_jwt(
        Algorithm::RS256,
        Some("rsa-1"),
        TEST_JWT_RSA_2_PEM.as_bytes(),
        &claims(json!({})),
    );
    fails("Signature verification failed")(
        &litellm_error(chat(&gw, &stranger, "gpt").await, 401).await,
    );

    // Anthropic's route answers in Anthropic's shape.
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/v1/messages",
        &expired,
        Some(&json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");

    // Tokens never reach the logs.
    let logs = gw.logs();
    for t in [&rsa, &ec, &expired, &confused] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token is in the logs");
    }
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_rotated_key_set() {
    let mock = MockUpstream::start().await;
    serve_keys(&mock);
    let jwks = format!("{}/.well-known/jwks.json", mock.base_url());
    let gw = start(&mock, PLAIN, &[("JWT_PUBLIC_KEY_URL", jwks.as_str())]).await;
    let old = rs256("rsa-1", &claims(json!({})));
    assert_eq!(chat(&gw, &old, "gpt").await.status(), 200);
    let fetched = mock.hits("/.well-known/jwks.json");
    assert!(fetched >= 1);
    // The cache serves the next ones.
    assert_eq!(chat(&gw, &old, "gpt").await.status(), 200);
    assert_eq!(mock.hits("/.well-known/jwks.json"), fetched);

    // The provider rotates: rsa-2 replaces rsa-1. A token with the new kid fetches the set
    // again, at once (not after public_key_ttl).
    mock.set_jwks(json!({"keys": [test_jwk("rsa_2", "rsa-2")]}));
    let new = sign_jwt(
        Algorithm::RS256,
        Some("rsa-2"),
        TEST_JWT_RSA_2_PEM.as_bytes(),
        &claims(json!({})),
    );
    assert_eq!(chat(&gw, &new, "gpt").await.status(), 200);
    assert_eq!(mock.hits("/.well-known/jwks.json"), fetched + 1);
    // The old key is gone from the set; unknown kids fetch again at most every 10 s.
    let err = litellm_error(chat(&gw, &old, "gpt").await, 401).await;
    assert_eq!(err["type"], "auth_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("No matching public key found"),
        "{err}"
    );
    let random = rs256("no-such-kid", &claims(json!({})));
    assert_eq!(chat(&gw, &random, "gpt").await.status(), 401);
    assert_eq!(mock.hits("/.well-known/jwks.json"), fetched + 1);
    assert_eq!(chat(&gw, &new, "gpt").await.status(), 200);
}

#[tokio::test]
async fn key_sets_are_served_stale_while_unreachable() {
    let mock = MockUpstream::start().await;
    serve_keys(&mock);
    let jwks = format!("{}/.well-known/jwks.json", mock.base_url());
    let short = |stale: u32| {
        format!(
            "general_settings:\n  master_key: {MASTER}\n  enable_jwt_auth: true\n  \
             litellm_jwtauth:\n    public_key_ttl: 1\n    public_key_stale_ttl: {stale}\n"
        )
    };
    let gw = start(
        &mock,
        &short(3600),
        &[("JWT_PUBLIC_KEY_URL", jwks.as_str())],
    )
    .await;
    let strict = start(&mock, &short(0), &[("JWT_PUBLIC_KEY_URL", jwks.as_str())]).await;
    let token = rs256("rsa-1", &claims(json!({})));
    assert_eq!(chat(&gw, &token, "gpt").await.status(), 200);
    assert_eq!(chat(&strict, &token, "gpt").await.status(), 200);
    mock.set_jwks_down(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Past the TTL, the identity provider down: the last set serves...
    assert_eq!(chat(&gw, &token, "gpt").await.status(), 200);
    // ...unless public_key_stale_ttl is 0: 503, retry shortly.
    let resp = chat(&strict, &token, "gpt").await;
    assert!(resp.headers().get("retry-after").is_some());
    let err = litellm_error(resp, 503).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("JWKS endpoint is temporarily unreachable"),
        "{err}"
    );
    mock.set_jwks_down(false);
}

#[tokio::test]
async fn hs256_tokens_with_modelmuxers_shared_secret() {
    let mock = MockUpstream::start().await;
    let gw = start(&mock, PLAIN, &[("JWT_SECRET_KEY", SECRET)]).await;
    let good = sign_jwt(
        Algorithm::HS256,
        None,
        SECRET.as_bytes(),
        &claims(json!({})),
    );
    assert_eq!(chat(&gw, &good, "gpt").await.status(), 200);
    let wrong = sign_jwt(
        Algorithm::HS256,
        None,
        b"another-secret-of-32-bytes-len!!",
        &claims(json!({})),
    );
    let err = litellm_error(chat(&gw, &wrong, "gpt").await, 401).await;
    assert_eq!(
        err["message"],
        "Authentication Error, Validation fails: Signature verification failed"
    );
    // Only JWT_ALGORITHM (HS256): no key set, so no RS256.
    let rsa = rs256("rsa-1", &claims(json!({})));
    assert_eq!(chat(&gw, &rsa, "gpt").await.status(), 401);
    let hs512 = sign_jwt(
        Algorithm::HS512,
        None,
        SECRET.as_bytes(),
        &claims(json!({})),
    );
    assert_eq!(chat(&gw, &hs512, "gpt").await.status(), 401);
}

#[tokio::test]
async fn a_jwts_team_and_user_models_budgets_and_limits_apply() {
    let mock = MockUpstream::start().await;
    serve_keys(&mock);
    let jwks = format!("{}/.well-known/jwks.json", mock.base_url());
    let gw = start(
        &mock,
        MAPPED,
        &[
            ("JWT_PUBLIC_KEY_URL", jwks.as_str()),
            ("ROUTEIQ_KEYS_BACKEND", "memory"),
            ("ROUTEIQ_SPEND_FLUSH_MS", "50"),
        ],
    )
    .await;
    admin_ok(
        &gw,
        "/team/new",
        &json!({"team_id": "t-budget", "models": ["gpt"], "max_budget": 0.1}),
    )
    .await;
    admin_ok(
        &gw,
        "/team/new",
        &json!({"team_id": "t-rpm", "rpm_limit": 2}),
    )
    .await;
    admin_ok(&gw, "/user/new", &json!({"user_id": "ada"})).await;
    let token = |team: &str| {
        rs256(
            "rsa-1",
            &claims(json!({"sub": "ada", "tenant": {"team": team}})),
        )
    };

    // The team's models: 403 in LiteLLM's shape.
    let budget = token("t-budget");
    let err = litellm_error(chat(&gw, &budget, "other").await, 403).await;
    assert_eq!(err["type"], "team_model_access_denied");
    assert_eq!(err["param"], "model");
    // The team's budget: the first request passes (spend 0), then it is spent.
    assert_eq!(chat(&gw, &budget, "gpt").await.status(), 200);
    let resp = chat(&gw, &budget, "gpt").await;
    assert!(resp.headers().get("retry-after").is_none());
    let err = litellm_error(resp, 429).await;
    assert_eq!(err["type"], "budget_exceeded");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget has been exceeded! Team=t-budget"),
        "{err}"
    );
    // Charged to the team and the user, with no key (api_key "").
    let resp = call(
        &gw,
        reqwest::Method::GET,
        "/spend/logs?team_id=t-budget",
        MASTER,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let rows: Value = resp.json().await.unwrap();
    let rows = rows.as_array().unwrap();
    // The model refusal (a failure, $0) and the answer.
    let ok: Vec<&Value> = rows.iter().filter(|r| r["status"] == "success").collect();
    assert_eq!(ok.len(), 1, "{rows:?}");
    assert!(ok[0]["spend"].as_f64().unwrap() > 0.1);
    for row in rows {
        assert_eq!(row["api_key"], "", "{row}");
        assert_eq!(row["team_id"], "t-budget", "{row}");
        assert_eq!(row["user"], "ada", "{row}");
    }
    let info: Value = call(
        &gw,
        reqwest::Method::GET,
        "/team/info?team_id=t-budget",
        MASTER,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(info["team_info"]["spend"].as_f64().unwrap() > 0.1, "{info}");

    // The team's rpm limit: the team descriptor in LiteLLM's words.
    let rpm = token("t-rpm");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = chat(&gw, &rpm, "gpt").await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let err = litellm_error(resp, 429).await;
            assert_eq!(err["type"], "throttling_error");
            assert!(
                err["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Rate limit exceeded for team: t-rpm. Limit type: requests."),
                "{err}"
            );
        }
    }
    // A minute boundary between requests can reset the window.
    assert!(
        statuses == [200, 200, 429] || statuses[2] == 200,
        "{statuses:?}"
    );

    // A team or user the key store does not hold, no team claim: 401.
    let err = litellm_error(chat(&gw, &token("t-unknown"), "gpt").await, 401).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Team doesn't exist in db. Team=t-unknown"),
        "{err}"
    );
    let stranger = rs256(
        "rsa-1",
        &claims(json!({"sub": "bob", "tenant": {"team": "t-rpm"}})),
    );
    let err = litellm_error(chat(&gw, &stranger, "gpt").await, 401).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("User doesn't exist in db. 'user_id'=bob"),
        "{err}"
    );
    let teamless = rs256("rsa-1", &claims(json!({"sub": "ada"})));
    let err = litellm_error(chat(&gw, &teamless, "gpt").await, 401).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("No team id found in token. Checked team_id field 'tenant.team'"),
        "{err}"
    );
}

#[tokio::test]
async fn admin_scope_jwts_use_the_admin_api() {
    let mock = MockUpstream::start().await;
    serve_keys(&mock);
    let jwks = format!("{}/.well-known/jwks.json", mock.base_url());
    let gw = start(
        &mock,
        MAPPED,
        &[
            ("JWT_PUBLIC_KEY_URL", jwks.as_str()),
            ("ROUTEIQ_KEYS_BACKEND", "memory"),
        ],
    )
    .await;
    admin_ok(&gw, "/team/new", &json!({"team_id": "t1"})).await;
    admin_ok(&gw, "/user/new", &json!({"user_id": "ada"})).await;
    let admin = rs256(
        "rsa-1",
        &claims(json!({"sub": "ops", "scope": "openid litellm_proxy_admin"})),
    );
    let member = rs256(
        "rsa-1",
        &claims(json!({"sub": "ada", "tenant": {"team": "t1"}, "scope": "openid"})),
    );

    // An admin JWT creates keys, and the key works.
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/key/generate",
        &admin,
        Some(&json!({"key_alias": "from-jwt"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert_eq!(chat(&gw, key, "gpt").await.status(), 200);
    // RouteIQ's own admin routes too.
    let resp = call(&gw, reqwest::Method::GET, "/config/warnings", &admin, None).await;
    assert_eq!(resp.status(), 200);
    // A scope list works as a string does.
    let listed = rs256("rsa-1", &claims(json!({"scope": ["litellm_proxy_admin"]})));
    let resp = call(&gw, reqwest::Method::GET, "/team/list", &listed, None).await;
    assert_eq!(resp.status(), 200);

    // A member's JWT: valid, but not an admin's.
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/key/generate",
        &member,
        Some(&json!({})),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an admin's"),
        "{body}"
    );
    assert_eq!(chat(&gw, &member, "gpt").await.status(), 200);
    // An expired admin JWT: 401.
    let expired = rs256(
        "rsa-1",
        &claims(json!({"scope": "litellm_proxy_admin", "exp": unix_now() - 5})),
    );
    let resp = call(
        &gw,
        reqwest::Method::POST,
        "/key/generate",
        &expired,
        Some(&json!({})),
    )
    .await;
    assert_eq!(litellm_error(resp, 401).await["type"], "expired_key");
    // Admins call the admin API, not models (LiteLLM's admin_allowed_routes).
    let err = litellm_error(chat(&gw, &admin, "gpt").await, 403).await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Admin not allowed to access this route. Route=/v1/chat/completions"),
        "{err}"
    );
    let resp = call(&gw, reqwest::Method::GET, "/v1/models", &admin, None).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn jwt_auth_refuses_to_start_when_it_could_not_enforce() {
    let mock = MockUpstream::start().await;
    let jwks = format!("{}/.well-known/jwks.json", mock.base_url());
    // Teams and users named by tokens, but no key store to hold their limits.
    let (code, stderr) = GatewayProcess::start_expect_failure(
        bin(),
        &config(MAPPED, &mock),
        &[("JWT_PUBLIC_KEY_URL", jwks.as_str())],
    )
    .await
    .unwrap();
    assert_ne!(code, 0);
    assert!(
        stderr.contains("general_settings.litellm_jwtauth"),
        "{stderr}"
    );
    // No key source at all.
    let (code, stderr) = GatewayProcess::start_expect_failure(bin(), &config(PLAIN, &mock), &[])
        .await
        .unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("JWT_PUBLIC_KEY_URL"), "{stderr}");
    // Settings RouteIQ does not enforce, and upserts.
    let rbac = PLAIN.replace(
        "enable_jwt_auth: true",
        "enable_jwt_auth: true\n  litellm_jwtauth:\n    enforce_rbac: true\n    user_id_upsert: true",
    );
    let (code, stderr) = GatewayProcess::start_expect_failure(
        bin(),
        &config(&rbac, &mock),
        &[("JWT_PUBLIC_KEY_URL", jwks.as_str())],
    )
    .await
    .unwrap();
    assert_ne!(code, 0);
    assert!(stderr.contains("litellm_jwtauth.enforce_rbac"), "{stderr}");
    assert!(
        stderr.contains("litellm_jwtauth.user_id_upsert"),
        "{stderr}"
    );
}
