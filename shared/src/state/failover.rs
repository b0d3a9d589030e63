//! A shared [`StateStore`] that keeps routing when its backend fails.
//!
//! Every call goes to the primary (e.g. DynamoDB). When it fails, the call is answered from
//! a process-local in-memory store instead, the store reports itself degraded, and the primary
//! is left alone for `retry_after`; the next call after that tries it again, and the first
//! success makes the store healthy again. Requests never fail because shared state is down:
//! routing degrades to per-instance cooldowns and counters until it comes back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Clock, InMemoryStateStore, PutCondition, StateStore, StoreHealth, Versioned};
use crate::Error;

type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Primary store with an in-memory fallback (see the module docs).
pub struct FailoverStateStore {
    primary: Arc<dyn StateStore>,
    local: InMemoryStateStore,
    clock: Arc<dyn Clock>,
    retry_after: Duration,
    /// Epoch ms before which the primary is not tried (0: try it).
    skip_until_ms: AtomicU64,
    /// Epoch ms the primary started failing (0: healthy).
    degraded_since_ms: AtomicU64,
    /// Primary failures since start, for metrics.
    failures: AtomicU64,
}

impl FailoverStateStore {
    pub fn new(primary: Arc<dyn StateStore>, clock: Arc<dyn Clock>, retry_after: Duration) -> Self {
        FailoverStateStore {
            primary,
            local: InMemoryStateStore::new(clock.clone()),
            clock,
            retry_after,
            skip_until_ms: AtomicU64::new(0),
            degraded_since_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Primary failures since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    async fn with<'a, T>(
        &'a self,
        op: impl Fn(&'a dyn StateStore) -> OpFuture<'a, T> + Send + Sync,
    ) -> Result<T, Error> {
        let now = self.clock.now_ms();
        if now < self.skip_until_ms.load(Ordering::Relaxed) {
            return op(&self.local).await;
        }
        match op(self.primary.as_ref()).await {
            Ok(v) => {
                let since = self.degraded_since_ms.swap(0, Ordering::Relaxed);
                if since != 0 {
                    tracing::info!(
                        backend = self.primary.backend(),
                        degraded_ms = now.saturating_sub(since),
                        "state backend recovered"
                    );
                }
                Ok(v)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.skip_until_ms.store(
                    now.saturating_add(self.retry_after.as_millis() as u64),
                    Ordering::Relaxed,
                );
                if self
                    .degraded_since_ms
                    .compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    tracing::warn!(
                        backend = self.primary.backend(),
                        error = %e,
                        retry_after_secs = self.retry_after.as_secs_f64(),
                        "state backend failing: routing on in-memory state"
                    );
                }
                op(&self.local).await
            }
        }
    }
}

#[async_trait]
impl StateStore for FailoverStateStore {
    fn backend(&self) -> &'static str {
        self.primary.backend()
    }

    fn health(&self) -> StoreHealth {
        match self.degraded_since_ms.load(Ordering::Relaxed) {
            0 => StoreHealth::Healthy,
            since => StoreHealth::Degraded { since_ms: since },
        }
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error> {
        self.with(|s| s.incr(key, delta, ttl)).await
    }

    async fn incr_many(&self, deltas: &[(String, i64)], ttl: Duration) -> Result<(), Error> {
        self.with(|s| s.incr_many(deltas, ttl)).await
    }

    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        self.with(|s| s.get_counters(keys)).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error> {
        self.with(|s| s.get_many(keys)).await
    }

    async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
        cond: PutCondition,
    ) -> Result<bool, Error> {
        self.with(|s| s.put(key, value.clone(), ttl, cond)).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.with(|s| s.delete(key)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use futures::executor::block_on;

    use super::*;
    use crate::state::ManualClock;
    use crate::state::probe::ProbeStore;

    #[test]
    fn fails_over_to_memory_and_recovers() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        // A backend that can be switched off.
        let down = Arc::new(AtomicBool::new(false));
        let switch = down.clone();
        let backend = Arc::new(ProbeStore {
            inner: InMemoryStateStore::new(clock.clone()),
            before: move |_| match switch.load(Ordering::SeqCst) {
                true => Err(Error::State("connection refused".into())),
                false => Ok(()),
            },
        });
        let store = FailoverStateStore::new(backend.clone(), clock.clone(), Duration::from_secs(5));
        let ttl = Duration::from_secs(60);
        let key = || vec!["k".to_string()];
        assert_eq!(block_on(store.incr("k", 1, ttl)).unwrap(), 1);
        assert_eq!(store.health(), StoreHealth::Healthy);

        // Backend down: calls still succeed (on local state) and the store is degraded.
        down.store(true, Ordering::SeqCst);
        assert_eq!(block_on(store.incr("k", 10, ttl)).unwrap(), 10);
        assert_eq!(
            store.health(),
            StoreHealth::Degraded {
                since_ms: 1_000_000
            }
        );
        // Within retry_after the backend is not even tried.
        assert_eq!(block_on(store.get_counters(&key())).unwrap(), vec![10]);
        assert_eq!(store.failures(), 1);

        // Backend back, but retry_after has not passed: still local.
        down.store(false, Ordering::SeqCst);
        assert_eq!(block_on(store.get_counters(&key())).unwrap(), vec![10]);
        // After retry_after: the backend answers again and the store is healthy.
        clock.advance(Duration::from_secs(6));
        assert_eq!(block_on(store.get_counters(&key())).unwrap(), vec![1]);
        assert_eq!(store.health(), StoreHealth::Healthy);
    }
}
