//! `DynamoDbStateStore` against a real DynamoDB API (moto's server, started by
//! `tests/run.sh`, reached through `AWS_ENDPOINT_URL_DYNAMODB`), with the real AWS SDK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::Arc;
use std::time::Duration;

use routeiq::state::{
    Clock, DynamoDbStateStore, ManualClock, PutCondition, StateStore, SystemClock,
};

const TABLE: &str = "routeiq-state-test";

fn require_emulator() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "no DynamoDB endpoint: run the tests with `bash tests/run.sh`, which starts the emulator \
         and sets AWS_ENDPOINT_URL_DYNAMODB"
    );
}

/// A store on the shared test table with a prefix of its own, so tests do not see each
/// other's keys.
async fn store(prefix: &str, clock: Arc<dyn Clock>) -> DynamoDbStateStore {
    require_emulator();
    let s = DynamoDbStateStore::from_env(TABLE, format!("{prefix}#"), clock).await;
    s.create_table_if_missing().await.expect("create table");
    s
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), now_ms())
}

#[tokio::test]
async fn counters_add_expire_and_restart() {
    let clock = Arc::new(ManualClock::new(now_ms()));
    let s = store(&unique("counters"), clock.clone()).await;
    let ttl = Duration::from_secs(60);
    assert_eq!(s.incr("a", 2, ttl).await.unwrap(), 2);
    assert_eq!(s.incr("a", 3, ttl).await.unwrap(), 5);
    assert_eq!(s.incr("a", -1, ttl).await.unwrap(), 4);
    let keys = vec!["a".to_string(), "missing".to_string()];
    assert_eq!(s.get_counters(&keys).await.unwrap(), vec![4, 0]);
    // Past its expiry the counter reads as 0 even though the item is still in the table,
    // and the next increment restarts it.
    clock.advance(Duration::from_secs(61));
    assert_eq!(s.get_counters(&keys).await.unwrap(), vec![0, 0]);
    assert_eq!(s.incr("a", 7, ttl).await.unwrap(), 7);
    assert_eq!(s.incr("a", 1, ttl).await.unwrap(), 8);
}

#[tokio::test]
async fn concurrent_writers_on_two_clients_lose_nothing() {
    let prefix = unique("concurrent");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    common::concurrent_writers_lose_nothing(
        Arc::new(store(&prefix, clock.clone()).await),
        Arc::new(store(&prefix, clock).await),
    )
    .await;
}

#[tokio::test]
async fn conditional_puts_and_versions() {
    let clock = Arc::new(ManualClock::new(now_ms()));
    let s = store(&unique("puts"), clock.clone()).await;
    let ttl = Some(Duration::from_secs(5));
    assert!(
        s.put("k", "v1".into(), ttl, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
    assert!(
        !s.put("k", "v2".into(), ttl, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
    let v = s.get_many(&["k".to_string()]).await.unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(v.value, "v1");
    assert!(
        !s.put("k", "x".into(), ttl, PutCondition::IfVersion(v.version + 5))
            .await
            .unwrap()
    );
    assert!(
        s.put("k", "v3".into(), ttl, PutCondition::IfVersion(v.version))
            .await
            .unwrap()
    );
    let v3 = s.get_many(&["k".to_string()]).await.unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(v3.value, "v3");
    assert_eq!(v3.version, v.version + 1);
    // Expired: absent for reads and for IfAbsent.
    clock.advance(Duration::from_secs(6));
    assert_eq!(s.get_many(&["k".to_string()]).await.unwrap(), vec![None]);
    assert!(
        !s.put("k", "late".into(), ttl, PutCondition::IfVersion(v3.version))
            .await
            .unwrap()
    );
    assert!(
        s.put("k", "v4".into(), None, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
    // No TTL: never expires.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        s.get_many(&["k".to_string()]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .value,
        "v4"
    );
    s.delete("k").await.unwrap();
    assert_eq!(s.get_many(&["k".to_string()]).await.unwrap(), vec![None]);
    // A counter cannot be overwritten by incr on a text value.
    s.put("text", "abc".into(), None, PutCondition::Always)
        .await
        .unwrap();
    assert!(s.incr("text", 1, Duration::from_secs(1)).await.is_err());
}

#[tokio::test]
async fn reads_batch_past_the_100_key_limit() {
    let s = store(&unique("batch"), Arc::new(SystemClock)).await;
    let keys: Vec<String> = (0..150).map(|i| format!("c{i}")).collect();
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        s.incr(k, i as i64, Duration::from_secs(300)).await.unwrap();
    }
    let mut with_dupes = keys.clone();
    with_dupes.push("c10".into());
    let got = s.get_counters(&with_dupes).await.unwrap();
    assert_eq!(got.len(), 151);
    for (i, v) in got.iter().take(150).enumerate() {
        assert_eq!(*v, if i % 10 == 0 { i as i64 } else { 0 }, "key c{i}");
    }
    assert_eq!(got[150], 10);
}

#[tokio::test]
async fn cooldowns_are_shared_between_router_instances() {
    let prefix = unique("router");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    common::cooldowns_are_shared(
        Arc::new(store(&prefix, clock.clone()).await),
        Arc::new(store(&prefix, clock).await),
    )
    .await;
}
