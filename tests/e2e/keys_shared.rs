//! Virtual keys on the shared stores the tests start, across two gateway processes:
//! PostgreSQL with LiteLLM's tables (rate-limit counters in Redis) and DynamoDB (the AWS
//! emulator). Keys made on one instance work on the other, rpm limits and budgets are shared,
//! a budget crossed under concurrency stops within the documented bound, revocation reaches
//! the other instance within the cache TTL, a key LiteLLM wrote into its own table works, and a
//! key store that goes away keeps cached keys working while unknown ones are refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

async fn admin_get(gw: &GatewayProcess, path: &str) -> Value {
    let resp = send(gw, reqwest::Method::GET, path, MASTER, None).await;
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

/// 200 clients (100 per instance), each sending requests one after another until refused
/// (at most 30): the budget stops them within the bound the README states, and the key's
/// spend equals the spend log's sum exactly.
async fn a_budget_holds_under_concurrency(store: Store) {
    const CLIENTS: usize = 200;
    const PER_CLIENT: usize = 30;
    const LATENCY_MS: u64 = 50;
    let mock = MockUpstream::start().await;
    mock.set_latency_ms(LATENCY_MS);
    let env = env_of(store, &unique("keys-budget"), None);
    let a = gateway(&mock, &env).await;
    let b = gateway(&mock, &env).await;
    // What one request costs.
    let probe = admin(&a, "/key/generate", &json!({})).await;
    assert_eq!(chat(&a, probe["key"].as_str().unwrap()).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(4 * FLUSH_MS)).await;
    let cost = admin_get(
        &a,
        &format!("/key/info?key={}", probe["token"].as_str().unwrap()),
    )
    .await["info"]["spend"]
        .as_f64()
        .unwrap();
    assert!(cost > 0.0);
    let budget = 40.0 * cost;
    let k = admin(&a, "/key/generate", &json!({"max_budget": budget})).await;
    let key = Arc::new(k["key"].as_str().unwrap().to_string());
    let hash = k["token"].as_str().unwrap().to_string();
    let admitted = Arc::new(AtomicU64::new(0));
    let urls = [a.base_url(), b.base_url()];
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let url = format!("{}/v1/chat/completions", urls[i % 2]);
        let key = key.clone();
        let admitted = admitted.clone();
        tasks.push(tokio::spawn(async move {
            let client = routeiq_testkit::client();
            for _ in 0..PER_CLIENT {
                let resp = match client
                    .post(&url)
                    .bearer_auth(key.as_str())
                    .json(&chat_body("gpt", "Hello there"))
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Err(format!("{url}: {e:?}")),
                };
                match resp.status().as_u16() {
                    200 => {
                        let _ = resp.bytes().await;
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => {
                        let body: Value = resp.json().await.unwrap();
                        assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
                        return Ok(());
                    }
                    other => panic!("unexpected {other}: {}", resp.text().await.unwrap()),
                }
            }
            Ok(())
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{store:?}: {} requests failed, e.g. {}\n--- A ---\n{}\n--- B ---\n{}",
        failures.len(),
        failures[0],
        a.logs(),
        b.logs()
    );
    tokio::time::sleep(Duration::from_millis(6 * FLUSH_MS)).await;
    let admitted = admitted.load(Ordering::Relaxed) as f64;
    let spend = admin_get(&a, &format!("/key/info?key={hash}")).await["info"]["spend"]
        .as_f64()
        .unwrap();
    let logs = admin_get(&b, &format!("/spend/logs?api_key={hash}")).await;
    let rows = logs.as_array().unwrap();
    let logged: f64 = rows.iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    // Spend accuracy: every admitted request charged once, in the key and in the log.
    assert_eq!(
        rows.len() as f64,
        admitted,
        "{store:?}: one log row per request"
    );
    assert_eq!(
        spend,
        admitted * cost,
        "{store:?}: key spend vs requests × cost"
    );
    assert_eq!(logged, spend, "{store:?}: spend log vs key spend");
    // Stopped: the budget was crossed, and far fewer than all the attempts got through.
    assert!(spend >= budget, "{store:?}: {spend} < {budget}");
    // The bound: the requests in flight when it was crossed (at most one per client), plus
    // what the other instance admits before its next spend flush brings the total back
    // (each of its clients finishes a request per LATENCY_MS; doubled for scheduling).
    let flushes = FLUSH_MS.div_ceil(LATENCY_MS) as f64;
    let bound = (CLIENTS as f64 + 2.0 * (CLIENTS / 2) as f64 * flushes) * cost;
    let over = spend - budget;
    println!(
        "{store:?}: budget ${budget} crossed by ${over} ({} requests over, bound {} requests); {admitted} admitted of at most {} attempts; spend ${spend} = log ${logged}",
        over / cost,
        bound / cost,
        CLIENTS * PER_CLIENT
    );
    assert!(over <= bound, "{store:?}: overshoot {over} > bound {bound}");
    // Both instances refuse it now.
    assert_eq!(chat(&a, &key).await.status(), 429);
    assert_eq!(chat(&b, &key).await.status(), 429);
}

#[tokio::test]
async fn postgres_budget_holds_under_concurrency() {
    a_budget_holds_under_concurrency(Store::Postgres).await;
}

#[tokio::test]
async fn dynamodb_budget_holds_under_concurrency() {
    a_budget_holds_under_concurrency(Store::DynamoDb).await;
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
