//! Virtual keys on the shared stores the tests start, across two gateway processes:
//! PostgreSQL with LiteLLM's tables (rate-limit counters in Redis) and DynamoDB (the AWS
//! emulator). Keys made on one instance work on the other, rpm limits are shared, revocation
//! reaches the other instance within the cache TTL, a key LiteLLM wrote into its own table
//! works (its models and budget apply, its spend lands in LiteLLM's row and log), and a key
//! store that goes away keeps cached keys working while unknown ones are refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use routeiq_testkit::{
    GatewayProcess, MockUpstream, TcpRelay, dynamodb_state_env, redis_state_env,
    shared_postgres_url, shared_redis_url,
};
use serde_json::{Value, json};

use crate::{bin, chat_body, render};

const MASTER: &str = "sk-master-key-1234";

/// One group priced at $0.25 per prompt token (costs are exact in binary).
const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params: {model: openai/gpt-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: gpt-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
  - model_name: other
    litellm_params: {model: openai/other-up, api_base: "{MOCK}", api_key: sk-upstream}
    model_info: {id: other-1, input_cost_per_token: 0.25, output_cost_per_token: 0.0}
router_settings:
  num_retries: 0
general_settings:
  master_key: sk-master-key-1234
"#;

/// Cache TTL of key records in these tests (revocation reaches the other instance within it).
const CACHE_TTL_SECS: u64 = 1;
/// Spend flush interval in these tests.
const FLUSH_MS: u64 = 50;

#[derive(Debug, Clone, Copy)]
enum Store {
    /// LiteLLM's PostgreSQL; rate-limit counters in Redis.
    Postgres,
    /// DynamoDB for keys and state.
    DynamoDb,
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn env_of(store: Store, prefix: &str, database_url: Option<&str>) -> Vec<(String, String)> {
    let mut env = match store {
        Store::Postgres => {
            let mut e = redis_state_env(&shared_redis_url(), prefix);
            e.push((
                "DATABASE_URL".into(),
                database_url.map_or_else(shared_postgres_url, str::to_string),
            ));
            e
        }
        Store::DynamoDb => dynamodb_state_env(prefix),
    };
    env.push((
        "ROUTEIQ_KEY_CACHE_TTL_SECONDS".into(),
        CACHE_TTL_SECS.to_string(),
    ));
    env.push(("ROUTEIQ_SPEND_FLUSH_MS".into(), FLUSH_MS.to_string()));
    env
}

async fn gateway(mock: &MockUpstream, env: &[(String, String)]) -> GatewayProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    GatewayProcess::start(bin(), &render(CONFIG, mock), &env)
        .await
        .unwrap_or_else(|e| panic!("gateway did not start: {e:#}"))
}

async fn send(
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

async fn admin(gw: &GatewayProcess, path: &str, body: &Value) -> Value {
    let resp = send(gw, reqwest::Method::POST, path, MASTER, Some(body)).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn chat(gw: &GatewayProcess, key: &str) -> reqwest::Response {
    send(
        gw,
        reqwest::Method::POST,
        "/v1/chat/completions",
        key,
        Some(&chat_body("gpt", "Hello there")),
    )
    .await
}

/// Waits, if needed, so that the next few seconds stay within one clock minute (rate-limit
/// windows are clock minutes).
async fn clear_of_a_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if secs % 60 > 50 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
}

async fn keys_rpm_and_revocation_are_shared(store: Store) {
    let mock = MockUpstream::start().await;
    let env = env_of(store, &unique("keys-shared"), None);
    let a = gateway(&mock, &env).await;
    let b = gateway(&mock, &env).await;
    let ready: Value = crate::get(&a, "/health/readiness")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["keys"]["backend"],
        match store {
            Store::Postgres => "postgres",
            Store::DynamoDb => "dynamodb",
        },
        "{ready}"
    );

    // Made on A, known on B; the rpm budget is one for both.
    clear_of_a_minute_boundary().await;
    let k = admin(&a, "/key/generate", &json!({"rpm_limit": 4})).await;
    let key = k["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let gw = if i % 2 == 0 { &a } else { &b };
        statuses.push(chat(gw, &key).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{store:?}");

    // Revocation: deleted through A, refused by B (which had it cached) within the TTL.
    let k = admin(&a, "/key/generate", &json!({})).await;
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&b, &key).await.status(), 200);
    admin(&a, "/key/delete", &json!({"keys": [key]})).await;
    assert_eq!(
        chat(&a, &key).await.status(),
        401,
        "at once where it was deleted"
    );
    let deleted = Instant::now();
    loop {
        let status = chat(&b, &key).await.status().as_u16();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            deleted.elapsed() < Duration::from_secs(CACHE_TTL_SECS + 2),
            "{store:?}: a deleted key still worked on the other instance after {:?}",
            deleted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{store:?}: revocation reached the other instance after {:?} (cache TTL {CACHE_TTL_SECS}s)",
        deleted.elapsed()
    );
}

#[tokio::test]
async fn postgres_keys_rpm_and_revocation_are_shared() {
    keys_rpm_and_revocation_are_shared(Store::Postgres).await;
}

#[tokio::test]
async fn dynamodb_keys_rpm_and_revocation_are_shared() {
    keys_rpm_and_revocation_are_shared(Store::DynamoDb).await;
}

/// A key LiteLLM wrote into its own table (its SHA-256 hash, a models array, a budget)
/// authenticates, and its models and budget apply.
#[tokio::test]
async fn a_key_litellm_made_in_postgres_works() {
    let url = shared_postgres_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let raw = format!("sk-{}", unique("litellm").replace('-', ""));
    let hash = routeiq_gateway::keys::model::hash_key(&raw);
    client
        .execute(
            r#"INSERT INTO "LiteLLM_VerificationToken"
               (token, key_name, key_alias, spend, models, max_budget, metadata, created_at, updated_at)
               VALUES ($1, $2, $3, 0.0, ARRAY['gpt'], 0.25, '{"team": "legacy"}', now(), now())"#,
            &[&hash, &format!("sk-...{}", &raw[raw.len() - 4..]), &unique("alias")],
        )
        .await
        .unwrap();
    let mock = MockUpstream::start().await;
    let gw = gateway(
        &mock,
        &env_of(Store::Postgres, &unique("litellm-made"), None),
    )
    .await;
    assert_eq!(chat(&gw, &raw).await.status(), 200);
    let resp = send(
        &gw,
        reqwest::Method::POST,
        "/v1/chat/completions",
        &raw,
        Some(&chat_body("other", "hi")),
    )
    .await;
    assert_eq!(resp.status(), 403);
    // Its spend went to LiteLLM's row: the budget now stops it.
    tokio::time::sleep(Duration::from_millis(6 * FLUSH_MS)).await;
    let row = client
        .query_one(
            r#"SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = $1"#,
            &[&hash],
        )
        .await
        .unwrap();
    let spend: f64 = row.get(0);
    assert!(spend >= 0.25, "{spend}");
    assert_eq!(chat(&gw, &raw).await.status(), 429);
    let logged = client
        .query_one(
            r#"SELECT count(*) FROM "LiteLLM_SpendLogs" WHERE api_key = $1"#,
            &[&hash],
        )
        .await
        .unwrap();
    let n: i64 = logged.get(0);
    assert_eq!(n, 1);
}

/// The database goes away: keys already cached keep working (past the cache TTL, with their
/// last known record), unknown keys get a 503, readiness says degraded; it comes back and
/// all is as before.
#[tokio::test]
async fn a_lost_key_store_keeps_cached_keys_and_refuses_unknown_ones() {
    let url = shared_postgres_url();
    let target: SocketAddr = {
        let cfg: tokio_postgres::Config = url.parse().unwrap();
        ([127, 0, 0, 1], cfg.get_ports()[0]).into()
    };
    let relay = TcpRelay::start(target).await;
    let relayed = url.replacen(
        &format!(":{}/", target.port()),
        &format!(":{}/", relay.port()),
        1,
    );
    let mock = MockUpstream::start().await;
    let gw = gateway(
        &mock,
        &env_of(Store::Postgres, &unique("keys-lost"), Some(&relayed)),
    )
    .await;
    let k = admin(&gw, "/key/generate", &json!({})).await;
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&gw, &key).await.status(), 200);
    relay.cut().await;
    tokio::time::sleep(Duration::from_secs(CACHE_TTL_SECS) + Duration::from_millis(300)).await;
    // Past the TTL: the last known record serves.
    assert_eq!(chat(&gw, &key).await.status(), 200);
    let resp = chat(&gw, "sk-never-seen-key-0000001").await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let ready: Value = crate::get(&gw, "/health/readiness")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["keys"]["status"], "degraded", "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    // The admin API says the store is unavailable.
    let resp = send(
        &gw,
        reqwest::Method::POST,
        "/key/generate",
        MASTER,
        Some(&json!({})),
    )
    .await;
    assert_eq!(resp.status(), 503);
    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = chat(&gw, "sk-never-seen-key-0000001")
            .await
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not come back: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready: Value = crate::get(&gw, "/health/readiness")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["keys"]["status"], "healthy", "{ready}");
    assert_eq!(chat(&gw, &key).await.status(), 200);
}
