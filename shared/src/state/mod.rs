//! Routing state behind a [`StateStore`]: atomic counters with TTL, versioned values with
//! conditional writes. In-memory here; shared backends behind cargo features:
//! - `aws`: [`DynamoDbStateStore`] maps each call onto one `UpdateItem` (`ADD` + TTL
//!   attribute), `BatchGetItem`, or conditional `PutItem`;
//! - `redis`: [`RedisStateStore`] maps each call onto one Lua script or one pipeline;
//! - [`FailoverStateStore`] wraps either, answering from memory while it is down.
//!
//! Time comes from a [`Clock`] so the crate needs no system clock on wasm and tests can move
//! time by hand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::Error;

mod failover;
#[cfg(test)]
pub(crate) mod probe;
pub use failover::FailoverStateStore;

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub use dynamodb::DynamoDbStateStore;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
pub use redis::RedisStateStore;

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock (`SystemTime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock moved by hand, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        ManualClock(AtomicU64::new(start_ms))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A stored value with its version (incremented on every write), for conditional writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: String,
    pub version: u64,
}

/// Whether a store's backend is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreHealth {
    Healthy,
    /// The backend has been failing since this time (epoch ms); calls are answered from
    /// process-local state meanwhile.
    Degraded {
        since_ms: u64,
    },
}

/// When a [`StateStore::put`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    Always,
    /// Only if no live (unexpired) value exists.
    IfAbsent,
    /// Only if the live value has this version.
    IfVersion(u64),
}

/// Shared routing state. Implementations must make `incr` atomic across every process that
/// shares the backend; expired entries read as absent (counters as 0).
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Backend name for logs and readiness (`memory`, `dynamodb`, `redis`).
    fn backend(&self) -> &'static str;

    /// Whether the backend is answering (readiness reports a degraded store).
    fn health(&self) -> StoreHealth {
        StoreHealth::Healthy
    }

    /// Adds `delta` to the counter at `key` (absent = 0) and returns the new value. The entry
    /// expires `ttl` after this write.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error>;

    /// Adds each `(key, delta)` like [`StateStore::incr`], all with expiry `ttl`: the batched
    /// write path for counters that are aggregated in process and flushed together
    /// (experiment counters). Not atomic as a whole: each counter is, and a failure may leave
    /// some applied. The default calls `incr` once per key; backends override it to save
    /// round trips.
    async fn incr_many(&self, deltas: &[(String, i64)], ttl: Duration) -> Result<(), Error> {
        for (key, delta) in deltas {
            self.incr(key, *delta, ttl).await?;
        }
        Ok(())
    }

    /// Current values of counters (absent or expired = 0), in the order of `keys`.
    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error>;

    /// Values at `keys` (absent or expired = `None`), in order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error>;

    /// Writes `value` if `cond` holds; returns whether it wrote. `ttl: None` never expires.
    async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
        cond: PutCondition,
    ) -> Result<bool, Error>;

    async fn delete(&self, key: &str) -> Result<(), Error>;
}

#[derive(Debug, Clone)]
enum Slot {
    Counter(i64),
    Value(String),
}

#[derive(Debug, Clone)]
struct Entry {
    slot: Slot,
    version: u64,
    expires_at_ms: Option<u64>,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.expires_at_ms.is_none_or(|t| t > now)
    }
}

/// Process-local state: the default when no shared backend is configured.
pub struct InMemoryStateStore {
    entries: Mutex<HashMap<String, Entry>>,
    clock: std::sync::Arc<dyn Clock>,
    writes: AtomicU64,
}

/// Writes between sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

impl InMemoryStateStore {
    pub fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        InMemoryStateStore {
            entries: Mutex::new(HashMap::new()),
            clock,
            writes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a map half-written in a way that
        // matters for counters, so recover from poisoning instead of failing every request.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn after_write(&self, map: &mut HashMap<String, Entry>, now: u64) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, e| e.live(now));
        }
    }

    /// Number of live entries (for tests and metrics).
    pub fn len(&self) -> usize {
        let now = self.clock.now_ms();
        self.lock().values().filter(|e| e.live(now)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn expiry(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(ttl.as_millis() as u64)
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error> {
        let now = self.clock.now_ms();
        let mut map = self.lock();
        let value = match map.get_mut(key) {
            Some(e) if e.live(now) => {
                let v = match e.slot {
                    Slot::Counter(c) => c.saturating_add(delta),
                    Slot::Value(_) => {
                        return Err(Error::State(format!(
                            "key '{key}' holds a value, not a counter"
                        )));
                    }
                };
                e.slot = Slot::Counter(v);
                e.version += 1;
                e.expires_at_ms = Some(expiry(now, ttl));
                v
            }
            _ => {
                map.insert(
                    key.to_string(),
                    Entry {
                        slot: Slot::Counter(delta),
                        version: 1,
                        expires_at_ms: Some(expiry(now, ttl)),
                    },
                );
                delta
            }
        };
        self.after_write(&mut map, now);
        Ok(value)
    }

    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        let now = self.clock.now_ms();
        let map = self.lock();
        Ok(keys
            .iter()
            .map(|k| match map.get(k).filter(|e| e.live(now)) {
                Some(Entry {
                    slot: Slot::Counter(c),
                    ..
                }) => *c,
                _ => 0,
            })
            .collect())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error> {
        let now = self.clock.now_ms();
        let map = self.lock();
        Ok(keys
            .iter()
            .map(|k| {
                map.get(k).filter(|e| e.live(now)).map(|e| Versioned {
                    value: match &e.slot {
                        Slot::Counter(c) => c.to_string(),
                        Slot::Value(v) => v.clone(),
                    },
                    version: e.version,
                })
            })
            .collect())
    }

    async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
        cond: PutCondition,
    ) -> Result<bool, Error> {
        let now = self.clock.now_ms();
        let mut map = self.lock();
        let current = map.get(key).filter(|e| e.live(now));
        let allowed = match cond {
            PutCondition::Always => true,
            PutCondition::IfAbsent => current.is_none(),
            PutCondition::IfVersion(v) => current.is_some_and(|e| e.version == v),
        };
        if !allowed {
            return Ok(false);
        }
        let version = current.map_or(1, |e| e.version + 1);
        map.insert(
            key.to_string(),
            Entry {
                slot: Slot::Value(value),
                version,
                expires_at_ms: ttl.map(|t| expiry(now, t)),
            },
        );
        self.after_write(&mut map, now);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::executor::block_on;

    use super::*;

    fn store() -> (Arc<ManualClock>, InMemoryStateStore) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        (clock.clone(), InMemoryStateStore::new(clock))
    }

    #[test]
    fn counters_add_and_expire() {
        let (clock, s) = store();
        let ttl = Duration::from_secs(60);
        assert_eq!(block_on(s.incr("a", 2, ttl)).unwrap(), 2);
        assert_eq!(block_on(s.incr("a", 3, ttl)).unwrap(), 5);
        assert_eq!(block_on(s.incr("a", -1, ttl)).unwrap(), 4);
        let keys = vec!["a".to_string(), "missing".to_string()];
        assert_eq!(block_on(s.get_counters(&keys)).unwrap(), vec![4, 0]);
        clock.advance(Duration::from_secs(61));
        assert_eq!(block_on(s.get_counters(&keys)).unwrap(), vec![0, 0]);
        // An expired counter restarts from zero.
        assert_eq!(block_on(s.incr("a", 1, ttl)).unwrap(), 1);
    }

    #[test]
    fn conditional_puts() {
        let (clock, s) = store();
        let ttl = Some(Duration::from_secs(5));
        assert!(block_on(s.put("k", "v1".into(), ttl, PutCondition::IfAbsent)).unwrap());
        assert!(!block_on(s.put("k", "v2".into(), ttl, PutCondition::IfAbsent)).unwrap());
        let got = block_on(s.get_many(&["k".to_string()])).unwrap();
        let v = got[0].clone().unwrap();
        assert_eq!(v.value, "v1");
        assert!(
            !block_on(s.put(
                "k",
                "v3".into(),
                ttl,
                PutCondition::IfVersion(v.version + 7)
            ))
            .unwrap()
        );
        assert!(
            block_on(s.put("k", "v3".into(), ttl, PutCondition::IfVersion(v.version))).unwrap()
        );
        clock.advance(Duration::from_secs(6));
        assert_eq!(
            block_on(s.get_many(&["k".to_string()])).unwrap(),
            vec![None]
        );
        assert!(block_on(s.put("k", "v4".into(), None, PutCondition::IfAbsent)).unwrap());
        block_on(s.delete("k")).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn counter_and_value_do_not_mix() {
        let (_, s) = store();
        block_on(s.put("k", "text".into(), None, PutCondition::Always)).unwrap();
        assert!(block_on(s.incr("k", 1, Duration::from_secs(1))).is_err());
    }

    #[test]
    fn expired_entries_are_swept() {
        let (clock, s) = store();
        for i in 0..10 {
            block_on(s.incr(&format!("old{i}"), 1, Duration::from_secs(1))).unwrap();
        }
        clock.advance(Duration::from_secs(2));
        for i in 0..SWEEP_EVERY {
            block_on(s.incr(&format!("new{}", i % 3), 1, Duration::from_secs(100))).unwrap();
        }
        assert_eq!(s.lock().len(), 3);
    }
}
