//! Experiment counters, batched ([`CounterBatcher`]).
//!
//! - counter deltas are summed in process and written by one background flush
//!   ([`StateStore::incr_many`], every [`FLUSH_INTERVAL`]), off the response path: the state
//!   store sees one `incr` per counter and interval, not per request;
//! - a flush also runs before `GET /router/experiments` answers;
//! - in AWS Lambda the flush runs while the instance is thawed; deltas not yet flushed when an
//!   instance is reclaimed are lost (at most one interval's worth).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use routeiq::state::StateStore;

/// How often summed counter deltas are written to the state store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Counter deltas summed in process and written to the state store in batches (see the
/// module docs).
pub struct CounterBatcher {
    state: Arc<dyn StateStore>,
    /// key → (delta, ttl).
    pending: Mutex<HashMap<String, (i64, Duration)>>,
    interval: Duration,
    flusher_started: AtomicBool,
    /// Serialises flushes so `flush().await` returns after earlier deltas are written.
    flushing: tokio::sync::Mutex<()>,
}

impl CounterBatcher {
    pub fn new(state: Arc<dyn StateStore>, interval: Duration) -> Arc<CounterBatcher> {
        Arc::new(CounterBatcher {
            state,
            pending: Mutex::new(HashMap::new()),
            interval,
            flusher_started: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Duration)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `delta` to `key` (written at the next flush; the counter expires `ttl` after it).
    /// Starts the background flusher on first use.
    pub fn add(self: &Arc<Self>, key: String, delta: i64, ttl: Duration) {
        {
            let mut pending = self.lock();
            let e = pending.entry(key).or_insert((0, ttl));
            e.0 = e.0.saturating_add(delta);
            e.1 = e.1.max(ttl);
        }
        if !self.flusher_started.swap(true, Ordering::AcqRel) {
            self.start_flusher();
        }
    }

    /// Deltas not yet written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn start_flusher(self: &Arc<Self>) {
        let Some(handle) = crate::periodic::background() else {
            // No runtime (a unit test): deltas wait for an explicit flush.
            self.flusher_started.store(false, Ordering::Release);
            return;
        };
        crate::periodic::spawn_while_alive(
            &handle,
            Arc::downgrade(self),
            self.interval,
            |batcher: Arc<Self>| async move {
                batcher.flush().await;
                true
            },
        );
    }

    /// Writes every pending delta now ([`StateStore::incr_many`], grouped by TTL). A failed
    /// write is logged and its deltas dropped (a retry could count twice what was applied).
    pub async fn flush(&self) {
        let _one = self.flushing.lock().await;
        let taken = std::mem::take(&mut *self.lock());
        if taken.is_empty() {
            return;
        }
        let mut by_ttl: HashMap<Duration, Vec<(String, i64)>> = HashMap::new();
        for (key, (delta, ttl)) in taken {
            if delta != 0 {
                by_ttl.entry(ttl).or_default().push((key, delta));
            }
        }
        for (ttl, deltas) in by_ttl {
            let n = deltas.len();
            match self.state.incr_many(&deltas, ttl).await {
                Ok(()) => tracing::debug!(counters = n, "experiment counters flushed"),
                Err(e) => tracing::warn!(
                    counters = n,
                    backend = self.state.backend(),
                    error = %e,
                    "experiment counter flush failed; these deltas are lost"
                ),
            }
        }
    }
}
