//! `RedisStateStore` against a real `redis-server`: the one `tests/run.sh` starts
//! (`ROUTEIQ_TEST_REDIS_URL`), and dedicated ones a test kills, restarts or protects with a
//! password. Expiry is Redis's own clock, so the TTL cases wait real (short) time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use routeiq::config::{RedisSettings, RedisTarget, SecretString};
use routeiq::state::{
    Clock, FailoverStateStore, PutCondition, RedisStateStore, StateStore, StoreHealth, SystemClock,
    Versioned,
};
use routeiq_testkit::{RedisServer, shared_redis_url};

fn url_settings(url: &str) -> RedisSettings {
    RedisSettings {
        target: RedisTarget::Url(SecretString::new(url)),
        password: None,
        db: None,
    }
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}:",
        std::process::id(),
        SystemClock.now_ms() % 100_000_000
    )
}

/// A store on the run's Redis with a prefix of its own, so tests do not see each other's keys.
async fn store(prefix: &str) -> RedisStateStore {
    RedisStateStore::new(&url_settings(&shared_redis_url()), prefix)
        .await
        .expect("store")
}

/// A raw connection to the run's Redis, to look behind the store.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn counters_add_expire_and_restart() {
    let s = store(&unique("counters")).await;
    let ttl = Duration::from_millis(400);
    assert_eq!(s.incr("a", 2, ttl).await.unwrap(), 2);
    assert_eq!(s.incr("a", 3, ttl).await.unwrap(), 5);
    assert_eq!(s.incr("a", -1, ttl).await.unwrap(), 4);
    assert_eq!(
        s.get_counters(&keys(&["a", "missing"])).await.unwrap(),
        vec![4, 0]
    );
    // Every write pushes the expiry back by `ttl`.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.incr("a", 1, ttl).await.unwrap(), 5);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.get_counters(&keys(&["a"])).await.unwrap(), vec![5]);
    // Past its expiry the counter reads as 0, and the next increment restarts it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get_counters(&keys(&["a"])).await.unwrap(), vec![0]);
    assert_eq!(s.get_many(&keys(&["a"])).await.unwrap(), vec![None]);
    assert_eq!(s.incr("a", 7, Duration::from_secs(60)).await.unwrap(), 7);
    // A counter reads through get_many too, with its version (one per write).
    assert_eq!(
        s.get_many(&keys(&["a"])).await.unwrap(),
        vec![Some(Versioned {
            value: "7".into(),
            version: 1
        })]
    );
}

#[tokio::test]
async fn concurrent_writers_on_two_clients_lose_nothing() {
    let prefix = unique("concurrent");
    common::concurrent_writers_lose_nothing(
        Arc::new(store(&prefix).await),
        Arc::new(store(&prefix).await),
    )
    .await;
}

#[tokio::test]
async fn conditional_puts_and_versions() {
    let prefix = unique("puts");
    let s = store(&prefix).await;
    let ttl = Some(Duration::from_millis(300));
    let k = keys(&["k"]);
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
    let v = s.get_many(&k).await.unwrap()[0].clone().unwrap();
    assert_eq!((v.value.as_str(), v.version), ("v1", 1));
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
    let v3 = s.get_many(&k).await.unwrap()[0].clone().unwrap();
    assert_eq!((v3.value.as_str(), v3.version), ("v3", 2));
    assert!(
        s.put("k", "v4".into(), ttl, PutCondition::Always)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_many(&k).await.unwrap()[0].as_ref().unwrap().version,
        3
    );
    // Expired: absent for reads, IfVersion fails, IfAbsent writes (version from 1 again).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.get_many(&k).await.unwrap(), vec![None]);
    assert!(
        !s.put("k", "late".into(), ttl, PutCondition::IfVersion(3))
            .await
            .unwrap()
    );
    assert!(
        s.put("k", "v5".into(), None, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
    // No TTL: never expires (also after a write with a TTL made it expire before).
    let mut con = raw(&shared_redis_url()).await;
    let full = format!("{prefix}k");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&full)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(pttl, -1, "a put without TTL must not expire");
    assert_eq!(
        s.get_many(&k).await.unwrap(),
        vec![Some(Versioned {
            value: "v5".into(),
            version: 1
        })]
    );
    s.delete("k").await.unwrap();
    assert_eq!(s.get_many(&k).await.unwrap(), vec![None]);
    s.delete("never-written").await.unwrap();
}

#[tokio::test]
async fn counters_and_values_do_not_mix() {
    let s = store(&unique("mix")).await;
    s.put("text", "42".into(), None, PutCondition::Always)
        .await
        .unwrap();
    // Even a value that reads as a number is not a counter.
    let e = s.incr("text", 1, Duration::from_secs(5)).await.unwrap_err();
    assert!(e.to_string().contains("holds a value"), "{e}");
    assert_eq!(s.get_counters(&keys(&["text"])).await.unwrap(), vec![0]);
    // A put over a counter replaces it with a value and carries the version on.
    s.incr("c", 5, Duration::from_secs(5)).await.unwrap();
    s.incr("c", 5, Duration::from_secs(5)).await.unwrap();
    assert!(
        s.put("c", "now text".into(), None, PutCondition::IfVersion(2))
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_many(&keys(&["c"])).await.unwrap(),
        vec![Some(Versioned {
            value: "now text".into(),
            version: 3
        })]
    );
    assert!(s.incr("c", 1, Duration::from_secs(5)).await.is_err());
}

#[tokio::test]
async fn incr_many_batches_and_fails_as_a_whole_on_a_value() {
    let s = store(&unique("many")).await;
    // More counters than one script call takes.
    let deltas: Vec<(String, i64)> = (0..1200).map(|i| (format!("c{i}"), i as i64)).collect();
    s.incr_many(&deltas, Duration::from_secs(60)).await.unwrap();
    s.incr_many(&deltas[..3], Duration::from_secs(60))
        .await
        .unwrap();
    let names: Vec<String> = deltas.iter().map(|(k, _)| k.clone()).collect();
    let got = s.get_counters(&names).await.unwrap();
    for (i, v) in got.iter().enumerate() {
        let want = if i < 3 { 2 * i as i64 } else { i as i64 };
        assert_eq!(*v, want, "c{i}");
    }
    assert!(s.incr_many(&[], Duration::from_secs(1)).await.is_ok());
    // A batch with a stored value in it changes none of its counters.
    s.put("v", "text".into(), None, PutCondition::Always)
        .await
        .unwrap();
    let bad = vec![("c1".to_string(), 100), ("v".to_string(), 1)];
    assert!(s.incr_many(&bad, Duration::from_secs(60)).await.is_err());
    assert_eq!(s.get_counters(&keys(&["c1"])).await.unwrap(), vec![2]);
    // The batch's TTL applies to each counter.
    s.incr_many(&[("short".to_string(), 1)], Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get_counters(&keys(&["short"])).await.unwrap(), vec![0]);
}

#[tokio::test]
async fn get_many_keeps_order_and_duplicates() {
    let s = store(&unique("get")).await;
    s.incr("n", 3, Duration::from_secs(60)).await.unwrap();
    s.put("s", "text".into(), None, PutCondition::Always)
        .await
        .unwrap();
    let got = s
        .get_many(&keys(&["s", "missing", "n", "s"]))
        .await
        .unwrap();
    let values: Vec<Option<&str>> = got
        .iter()
        .map(|v| v.as_ref().map(|v| v.value.as_str()))
        .collect();
    assert_eq!(values, [Some("text"), None, Some("3"), Some("text")]);
    assert_eq!(s.get_many(&[]).await.unwrap(), vec![]);
    assert_eq!(s.get_counters(&[]).await.unwrap(), Vec::<i64>::new());
    assert_eq!(
        s.get_counters(&keys(&["n", "n", "s"])).await.unwrap(),
        vec![3, 3, 0]
    );
}

#[tokio::test]
async fn prefixes_isolate_stores_sharing_a_server() {
    let pa = unique("iso-a");
    let pb = unique("iso-b");
    let a = store(&pa).await;
    let b = store(&pb).await;
    a.incr("x", 1, Duration::from_secs(60)).await.unwrap();
    b.incr("x", 10, Duration::from_secs(60)).await.unwrap();
    a.put("v", "a".into(), None, PutCondition::Always)
        .await
        .unwrap();
    assert!(
        b.put("v", "b".into(), None, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
    assert_eq!(a.get_counters(&keys(&["x"])).await.unwrap(), vec![1]);
    assert_eq!(b.get_counters(&keys(&["x"])).await.unwrap(), vec![10]);
    b.delete("v").await.unwrap();
    assert_eq!(
        a.get_many(&keys(&["v"])).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .value,
        "a"
    );
    // The keys in Redis are exactly prefix + key.
    let mut con = raw(&shared_redis_url()).await;
    let found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{pa}*"))
        .query_async(&mut con)
        .await
        .unwrap();
    let mut found = found;
    found.sort();
    assert_eq!(found, vec![format!("{pa}v"), format!("{pa}x")]);
}

#[tokio::test]
async fn password_and_database_from_settings_reach_the_server() {
    let server = RedisServer::start(&["--requirepass", "s3cr3t-pw"]);
    let host = RedisSettings {
        target: RedisTarget::Host {
            host: "127.0.0.1".into(),
            port: server.port(),
            tls: false,
        },
        password: Some(SecretString::new("s3cr3t-pw")),
        db: Some(3),
    };
    let s = RedisStateStore::new(&host, "p:").await.unwrap();
    assert_eq!(
        s.endpoint(),
        format!("redis://127.0.0.1:{}/3", server.port())
    );
    s.incr("k", 1, Duration::from_secs(60)).await.unwrap();
    // The key is in database 3.
    let mut con = raw(&format!("redis://:s3cr3t-pw@127.0.0.1:{}/3", server.port())).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg("p:k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    // A URL without a password takes redis_password; one with a password keeps its own.
    let url = RedisSettings {
        password: Some(SecretString::new("s3cr3t-pw")),
        ..url_settings(&format!("redis://127.0.0.1:{}/3", server.port()))
    };
    let s = RedisStateStore::new(&url, "p:").await.unwrap();
    assert_eq!(s.get_counters(&keys(&["k"])).await.unwrap(), vec![1]);
    // A wrong password: an error that does not show either password.
    let wrong = RedisSettings {
        password: Some(SecretString::new("wrong-pw")),
        ..host.clone()
    };
    let s = RedisStateStore::new(&wrong, "p:").await.unwrap();
    let e = s.incr("k", 1, Duration::from_secs(1)).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("wrong-pw") && !text.contains("s3cr3t-pw"),
        "{text}"
    );
    let url_pw = url_settings(&format!("redis://:wrong-pw@127.0.0.1:{}", server.port()));
    let s = RedisStateStore::new(&url_pw, "p:").await.unwrap();
    let e = s.get_counters(&keys(&["k"])).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("wrong-pw"), "{e}");
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_the_store_recovers_when_it_returns() {
    let mut server = RedisServer::start(&[]);
    // Created while Redis is down: no connection is needed to build the store.
    server.kill();
    let s = RedisStateStore::new(&url_settings(&server.url()), "p:")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(s.incr("k", 1, Duration::from_secs(60)).await.is_err());
    assert!(s.get_counters(&keys(&["k"])).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Up: the store connects. Then killed under an open connection, then back again.
    server.restart();
    let ok_within = |limit: Duration| {
        let s = &s;
        async move {
            let deadline = Instant::now() + limit;
            loop {
                match s.incr("k", 1, Duration::from_secs(60)).await {
                    Ok(v) => return v,
                    Err(e) if Instant::now() > deadline => panic!("still failing: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    };
    assert_eq!(ok_within(Duration::from_secs(10)).await, 1);
    server.kill();
    let started = Instant::now();
    assert!(s.incr("k", 1, Duration::from_secs(60)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
    server.restart();
    // A fresh server: the counter starts again (and the scripts are loaded again).
    assert_eq!(ok_within(Duration::from_secs(10)).await, 1);
    assert!(
        s.put("v", "x".into(), None, PutCondition::IfAbsent)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_unanswering_redis_times_out() {
    // A listener that accepts and never answers (a hung server).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let s = RedisStateStore::new(&url_settings(&format!("redis://127.0.0.1:{port}")), "p:")
        .await
        .unwrap();
    let started = Instant::now();
    let e = s.incr("k", 1, Duration::from_secs(1)).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}: {e}");
}

#[tokio::test]
async fn failover_degrades_to_memory_and_recovers_with_redis() {
    let mut server = RedisServer::start(&[]);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let redis = Arc::new(
        RedisStateStore::new(&url_settings(&server.url()), "f:")
            .await
            .unwrap(),
    );
    let store = FailoverStateStore::new(redis, clock, Duration::from_millis(300));
    let ttl = Duration::from_secs(60);
    assert_eq!(store.incr("k", 1, ttl).await.unwrap(), 1);
    assert_eq!(store.backend(), "redis");
    assert_eq!(store.health(), StoreHealth::Healthy);
    server.kill();
    // Answers from memory meanwhile.
    assert_eq!(store.incr("k", 5, ttl).await.unwrap(), 5);
    assert!(matches!(store.health(), StoreHealth::Degraded { .. }));
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.health() != StoreHealth::Healthy {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = store.get_counters(&keys(&["k"])).await;
    }
    assert_eq!(store.incr("k", 2, ttl).await.unwrap(), 2);
}

#[tokio::test]
async fn cooldowns_are_shared_between_router_instances() {
    let prefix = unique("router");
    common::cooldowns_are_shared(
        Arc::new(store(&prefix).await),
        Arc::new(store(&prefix).await),
    )
    .await;
}
