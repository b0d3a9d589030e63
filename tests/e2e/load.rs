//! A bounded load run: 10,000 requests at concurrency 256 with 10% injected upstream faults
//! and a fallback configured. Every request is accounted for (a 200 with content, or an
//! OpenAI-shaped error), none is lost, and the gateway's memory stays flat over a second batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use routeiq_testkit::{Behavior, GatewayProcess, MockOptions, MockUpstream};
use serde_json::Value;

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 256;
/// Allowed RSS growth over the second batch.
const MAX_RSS_GROWTH_KB: u64 = 32 * 1024;

const CONFIG: &str = r#"
model_list:
  - model_name: primary
    litellm_params:
      model: openai/p1
      api_base: "{MOCK}"
      api_key: sk-x
      timeout: 10
    model_info:
      id: p1
  - model_name: primary
    litellm_params:
      model: openai/p2
      api_base: "{MOCK}"
      api_key: sk-x
      timeout: 10
    model_info:
      id: p2
  - model_name: backup
    litellm_params:
      model: openai/b1
      api_base: "{MOCK}"
      api_key: sk-x
    model_info:
      id: b1
router_settings:
  num_retries: 1
  disable_cooldowns: true
  fallbacks:
    - primary: ["backup"]
"#;

/// Every 10th upstream answer of the primary deployments is a fault, cycling through the
/// modes that fail before the first byte.
fn fault_script(len: usize) -> Vec<Behavior> {
    let faults = [
        Behavior::server_error(),
        Behavior::unavailable(),
        Behavior::rate_limited(None),
        Behavior::ResetMidBody,
    ];
    let mut script: Vec<Behavior> = (0..len)
        .map(|i| {
            if i % 10 == 9 {
                faults[(i / 10) % faults.len()].clone()
            } else {
                Behavior::Ok
            }
        })
        .collect();
    script.push(Behavior::Ok);
    script
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
}

async fn batch(gw: &GatewayProcess, n: usize) -> (Arc<Tally>, Duration) {
    let client = routeiq_testkit::client();
    let url = format!("{}/v1/chat/completions", gw.base_url());
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| {
            let client = client.clone();
            let url = url.clone();
            let tally = tally.clone();
            async move {
                let body = crate::chat_body("primary", &format!("load request {i}"));
                let resp = client
                    .post(&url)
                    .timeout(Duration::from_secs(30))
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = resp else {
                    tally.lost.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let status = resp.status().as_u16();
                let Ok(body) = resp.json::<Value>().await else {
                    tally.lost.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let content = body["choices"][0]["message"]["content"].as_str();
                if status == 200 && content.is_some_and(|c| !c.is_empty()) {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                } else if status >= 400 && body["error"]["message"].is_string() {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    (tally, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_with_faults_are_all_accounted_for_and_memory_stays_flat() {
    let mock = MockUpstream::start_with(MockOptions {
        record: false,
        ..MockOptions::default()
    })
    .await
    .unwrap();
    // Enough script for both batches and the retries.
    mock.script("p1", fault_script(2 * REQUESTS));
    mock.script("p2", fault_script(2 * REQUESTS));
    let gw = GatewayProcess::start(
        crate::bin(),
        &crate::render(CONFIG, &mock),
        // Circuits off: faults stay spread over the primaries instead of moving all traffic
        // to the backup after the first few.
        &[("ROUTEIQ_CB_FAILURE_THRESHOLD", "0"), ("RUST_LOG", "warn")],
    )
    .await
    .unwrap();

    let (first, took) = batch(&gw, REQUESTS).await;
    let ok = first.ok.load(Ordering::Relaxed);
    let errors = first.errors.load(Ordering::Relaxed);
    let lost = first.lost.load(Ordering::Relaxed);
    let primary_calls = mock.hits("p1") + mock.hits("p2");
    let faults = primary_calls / 10;
    eprintln!(
        "load: {REQUESTS} requests at concurrency {CONCURRENCY} in {:.1}s ({:.0} req/s): {ok} ok, {errors} errors, {lost} lost; {primary_calls} primary calls (~{faults} faults), {} fallback calls",
        took.as_secs_f64(),
        REQUESTS as f64 / took.as_secs_f64(),
        mock.hits("b1")
    );
    assert_eq!(ok + errors + lost, REQUESTS as u64);
    assert_eq!(lost, 0, "requests lost");
    assert_eq!(errors, 0, "with a fallback every fault is absorbed");
    assert!(
        faults >= (REQUESTS / 10) as u64 - 50,
        "faults injected: {faults}"
    );
    assert!(mock.hits("b1") > 0, "some faults reached the fallback");

    let before = rss_kb(gw.pid());
    let (second, took2) = batch(&gw, REQUESTS).await;
    let after = rss_kb(gw.pid());
    eprintln!(
        "load: second batch {REQUESTS} in {:.1}s; gateway RSS before {before} kB, after {after} kB (growth {} kB)",
        took2.as_secs_f64(),
        after as i64 - before as i64
    );
    assert_eq!(second.lost.load(Ordering::Relaxed), 0);
    assert_eq!(second.ok.load(Ordering::Relaxed), REQUESTS as u64);
    assert!(before > 0, "cannot read /proc/{}/status", gw.pid());
    assert!(
        after <= before + MAX_RSS_GROWTH_KB,
        "gateway memory grew from {before} kB to {after} kB"
    );
}
