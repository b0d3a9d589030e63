//! Circuit breakers, one per deployment, kept in the [`StateStore`] so that every process
//! sharing a backend sees the same circuits.
//!
//! - **closed**: traffic flows; failures are counted in fixed windows of `window` length.
//!   `failure_threshold` failures within one window open the circuit.
//! - **open**: the deployment is not a routing candidate until `open_timeout` has passed.
//! - **half-open**: after the timeout, trial requests go through. `success_threshold`
//!   successes close the circuit; one failure opens it again.
//!
//! Cooldowns (LiteLLM's `allowed_fails`/`cooldown_time`) stay as they are; a circuit breaker
//! is the operator-level guard on top: it also protects single-deployment groups, reopens on
//! the first failed trial, and is visible in metrics and readiness.
//!
//! Storage: `cb:{id}` holds `open:{opened_at_ms}`, `half_open` or `closed` (absent = closed);
//! every transition is a conditional put on the version read, so concurrent reporters (or
//! processes) make each transition once. Failures count in `cb_fail:{id}:{window_index}`,
//! half-open successes in `cb_succ:{id}:{version}` (keyed by the half-open entry's version,
//! so each half-open period starts from zero).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::{Clock, PutCondition, StateStore, Versioned};

/// Circuit breaker tuning (`ROUTEIQ_CB_*` in the gateway).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerSettings {
    /// Failures within one window that open the circuit; 0 disables circuit breakers.
    pub failure_threshold: u32,
    /// Successful trials in half-open state that close the circuit.
    pub success_threshold: u32,
    /// How long a circuit stays open before trial requests are let through.
    pub open_timeout: Duration,
    /// Length of the window failures are counted in.
    pub window: Duration,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        CircuitBreakerSettings {
            failure_threshold: 5,
            success_threshold: 2,
            open_timeout: Duration::from_secs(30),
            window: Duration::from_secs(60),
        }
    }
}

impl CircuitBreakerSettings {
    /// Whether circuit breakers are on (`failure_threshold > 0`).
    pub fn enabled(&self) -> bool {
        self.failure_threshold > 0
    }
}

/// The state of one circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The value of the `routeiq_circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

/// A circuit as read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Closed,
    Open { opened_at_ms: u64 },
    HalfOpen,
}

fn parse(v: Option<&Versioned>) -> (Stored, Option<u64>) {
    let Some(v) = v else {
        return (Stored::Closed, None);
    };
    let stored = if v.value == "half_open" {
        Stored::HalfOpen
    } else if let Some(ms) = v.value.strip_prefix("open:") {
        Stored::Open {
            opened_at_ms: ms.parse().unwrap_or(0),
        }
    } else {
        Stored::Closed
    };
    (stored, Some(v.version))
}

/// Whether a deployment may be routed to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed or half-open: route to it.
    Allowed,
    /// Open: skip it; it lets trial requests through after this many milliseconds.
    Rejected { retry_after_ms: u64 },
}

/// A change of state made by a report, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: CircuitState,
    pub to: CircuitState,
}

/// The circuit breakers of every deployment.
pub struct CircuitBreakers {
    settings: CircuitBreakerSettings,
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    /// Deployments whose circuit this process last found open or half-open when admitting a
    /// request (or opened itself). Every call is admitted before it is made, so only these
    /// can have a success close a circuit: [`CircuitBreakers::on_success`] reads the store
    /// for them alone, and costs nothing for calls to healthy deployments.
    watched: Mutex<HashSet<String>>,
    /// Whether `watched` is non-empty (read without the lock on every call).
    watching: AtomicBool,
}

fn state_key(id: &str) -> String {
    format!("cb:{id}")
}

impl CircuitBreakers {
    /// Circuit breakers over `state`, with time from `clock`.
    pub fn new(
        settings: CircuitBreakerSettings,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        CircuitBreakers {
            settings,
            state,
            clock,
            watched: Mutex::new(HashSet::new()),
            watching: AtomicBool::new(false),
        }
    }

    fn watch(&self, id: &str, on: bool) {
        if !on && !self.watching.load(Ordering::Acquire) {
            return;
        }
        let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            if !w.contains(id) {
                w.insert(id.to_string());
            }
        } else {
            w.remove(id);
        }
        self.watching.store(!w.is_empty(), Ordering::Release);
    }

    fn watched(&self, id: &str) -> bool {
        self.watching.load(Ordering::Acquire)
            && self
                .watched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(id)
    }

    /// The store keys of the circuits of `ids`, for [`CircuitBreakers::admit_stored`] (so a
    /// caller can read them in the same batch as other routing state).
    pub fn keys(&self, ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| state_key(id)).collect()
    }

    /// The settings in force.
    pub fn settings(&self) -> &CircuitBreakerSettings {
        &self.settings
    }

    fn open_timeout_ms(&self) -> u64 {
        self.settings.open_timeout.as_millis() as u64
    }

    /// Whether each deployment in `ids` may be routed to. Open circuits whose timeout has
    /// passed move to half-open here (the first request after the timeout is the trial).
    /// A failing state store admits everything: routing goes on without circuit information.
    pub async fn admit(&self, ids: &[&str]) -> Vec<Admission> {
        if !self.settings.enabled() {
            return vec![Admission::Allowed; ids.len()];
        }
        let keys = self.keys(ids);
        match self.state.get_many(&keys).await {
            Ok(stored) => self.admit_stored(ids, &stored).await,
            Err(e) => {
                tracing::warn!(backend = self.state.backend(), error = %e, "circuit breaker lookup failed");
                vec![Admission::Allowed; ids.len()]
            }
        }
    }

    /// [`CircuitBreakers::admit`] on circuits already read: `stored[i]` is the store's entry
    /// at `keys(ids)[i]`.
    pub async fn admit_stored(&self, ids: &[&str], stored: &[Option<Versioned>]) -> Vec<Admission> {
        if !self.settings.enabled() {
            return vec![Admission::Allowed; ids.len()];
        }
        let now = self.clock.now_ms();
        let mut out = Vec::with_capacity(ids.len());
        for (id, v) in ids.iter().zip(stored) {
            let (s, version) = parse(v.as_ref());
            self.watch(id, s != Stored::Closed);
            let admission = match s {
                Stored::Closed | Stored::HalfOpen => Admission::Allowed,
                Stored::Open { opened_at_ms } => {
                    let reopen_at = opened_at_ms.saturating_add(self.open_timeout_ms());
                    if now < reopen_at {
                        Admission::Rejected {
                            retry_after_ms: (reopen_at - now).max(1),
                        }
                    } else {
                        let cond = version.map_or(PutCondition::IfAbsent, PutCondition::IfVersion);
                        match self
                            .state
                            .put(&state_key(id), "half_open".into(), None, cond)
                            .await
                        {
                            Ok(true) => {
                                tracing::info!(deployment = %id, "circuit half-open: letting trial requests through");
                            }
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(deployment = %id, error = %e, "circuit breaker write failed")
                            }
                        }
                        Admission::Allowed
                    }
                }
            };
            out.push(admission);
        }
        out
    }

    /// The effective state of each circuit (an open circuit past its timeout reads as
    /// half-open), without changing anything: for metrics and readiness.
    pub async fn states(&self, ids: &[&str]) -> Vec<CircuitState> {
        if !self.settings.enabled() {
            return vec![CircuitState::Closed; ids.len()];
        }
        let keys: Vec<String> = ids.iter().map(|id| state_key(id)).collect();
        let Ok(stored) = self.state.get_many(&keys).await else {
            return vec![CircuitState::Closed; ids.len()];
        };
        let now = self.clock.now_ms();
        stored
            .iter()
            .map(|v| match parse(v.as_ref()).0 {
                Stored::Closed => CircuitState::Closed,
                Stored::HalfOpen => CircuitState::HalfOpen,
                Stored::Open { opened_at_ms } => {
                    if now < opened_at_ms.saturating_add(self.open_timeout_ms()) {
                        CircuitState::Open
                    } else {
                        CircuitState::HalfOpen
                    }
                }
            })
            .collect()
    }

    async fn read(&self, id: &str) -> Option<(Stored, Option<u64>)> {
        match self.state.get_many(&[state_key(id)]).await {
            Ok(v) => Some(parse(v.first().and_then(Option::as_ref))),
            Err(e) => {
                tracing::warn!(deployment = %id, error = %e, "circuit breaker lookup failed");
                None
            }
        }
    }

    async fn write(&self, id: &str, value: String, version: Option<u64>) -> bool {
        let cond = version.map_or(PutCondition::IfAbsent, PutCondition::IfVersion);
        match self.state.put(&state_key(id), value, None, cond).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(deployment = %id, error = %e, "circuit breaker write failed");
                false
            }
        }
    }

    /// Reports a successful call to deployment `id` (admitted by this process). Returns the
    /// transition it caused. Only a circuit this process last admitted as half-open (or
    /// saw open) can close, so for every other deployment this reads nothing.
    pub async fn on_success(&self, id: &str) -> Option<Transition> {
        if !self.settings.enabled() || !self.watched(id) {
            return None;
        }
        let (stored, version) = self.read(id).await?;
        if stored != Stored::HalfOpen {
            return None;
        }
        let version = version?;
        let key = format!("cb_succ:{id}:{version}");
        let ttl = self.settings.window.max(self.settings.open_timeout);
        let n = match self.state.incr(&key, 1, ttl).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(deployment = %id, error = %e, "circuit breaker counter update failed");
                return None;
            }
        };
        if n < i64::from(self.settings.success_threshold.max(1)) {
            return None;
        }
        if !self.write(id, "closed".into(), Some(version)).await {
            return None;
        }
        self.watch(id, false);
        tracing::info!(deployment = %id, successes = n, "circuit closed");
        Some(Transition {
            from: CircuitState::HalfOpen,
            to: CircuitState::Closed,
        })
    }

    /// Reports a failed call to deployment `id` (one that says something about the
    /// deployment's health, not the request's own fault). Returns the transition it caused.
    pub async fn on_failure(&self, id: &str) -> Option<Transition> {
        if !self.settings.enabled() {
            return None;
        }
        let (stored, version) = self.read(id).await?;
        let now = self.clock.now_ms();
        match stored {
            Stored::Open { .. } => None,
            Stored::HalfOpen => {
                if !self.write(id, format!("open:{now}"), version).await {
                    return None;
                }
                self.watch(id, true);
                tracing::warn!(deployment = %id, "circuit re-opened: trial request failed");
                Some(Transition {
                    from: CircuitState::HalfOpen,
                    to: CircuitState::Open,
                })
            }
            Stored::Closed => {
                let window_ms = (self.settings.window.as_millis() as u64).max(1);
                let key = format!("cb_fail:{id}:{}", now / window_ms);
                let n = match self.state.incr(&key, 1, self.settings.window).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(deployment = %id, error = %e, "circuit breaker counter update failed");
                        return None;
                    }
                };
                if n < i64::from(self.settings.failure_threshold) {
                    return None;
                }
                if !self.write(id, format!("open:{now}"), version).await {
                    return None;
                }
                self.watch(id, true);
                tracing::warn!(
                    deployment = %id,
                    failures = n,
                    open_secs = self.settings.open_timeout.as_secs_f64(),
                    "circuit opened"
                );
                Some(Transition {
                    from: CircuitState::Closed,
                    to: CircuitState::Open,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::state::probe::{Call, ProbeStore};
    use crate::state::{InMemoryStateStore, ManualClock};

    fn breakers(settings: CircuitBreakerSettings) -> (Arc<ManualClock>, CircuitBreakers) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let state = Arc::new(InMemoryStateStore::new(clock.clone()));
        (clock.clone(), CircuitBreakers::new(settings, state, clock))
    }

    fn settings() -> CircuitBreakerSettings {
        CircuitBreakerSettings {
            failure_threshold: 3,
            success_threshold: 2,
            open_timeout: Duration::from_secs(30),
            window: Duration::from_secs(60),
        }
    }

    fn state(cb: &CircuitBreakers, id: &str) -> CircuitState {
        block_on(cb.states(&[id]))[0]
    }

    fn admitted(cb: &CircuitBreakers, id: &str) -> bool {
        block_on(cb.admit(&[id]))[0] == Admission::Allowed
    }

    #[test]
    fn closed_opens_after_threshold_failures_in_the_window() {
        let (_, cb) = breakers(settings());
        assert_eq!(block_on(cb.on_failure("a")), None);
        assert_eq!(block_on(cb.on_failure("a")), None);
        assert_eq!(state(&cb, "a"), CircuitState::Closed);
        assert_eq!(
            block_on(cb.on_failure("a")),
            Some(Transition {
                from: CircuitState::Closed,
                to: CircuitState::Open
            })
        );
        assert_eq!(state(&cb, "a"), CircuitState::Open);
        assert_eq!(state(&cb, "b"), CircuitState::Closed);
        match block_on(cb.admit(&["a", "b"])).as_slice() {
            [Admission::Rejected { retry_after_ms }, Admission::Allowed] => {
                assert_eq!(*retry_after_ms, 30_000);
            }
            other => panic!("{other:?}"),
        }
        // Further failures while open change nothing.
        assert_eq!(block_on(cb.on_failure("a")), None);
    }

    #[test]
    fn failures_in_different_windows_do_not_add_up() {
        let (clock, cb) = breakers(settings());
        block_on(cb.on_failure("a"));
        block_on(cb.on_failure("a"));
        clock.advance(Duration::from_secs(61));
        block_on(cb.on_failure("a"));
        block_on(cb.on_failure("a"));
        assert_eq!(state(&cb, "a"), CircuitState::Closed);
    }

    #[test]
    fn open_goes_half_open_after_timeout_then_closes_after_successes() {
        let (clock, cb) = breakers(settings());
        for _ in 0..3 {
            block_on(cb.on_failure("a"));
        }
        clock.advance(Duration::from_secs(29));
        assert!(!admitted(&cb, "a"));
        // Successes reported while open (calls admitted before it opened) change nothing.
        assert_eq!(block_on(cb.on_success("a")), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(state(&cb, "a"), CircuitState::HalfOpen);
        assert!(admitted(&cb, "a"));
        assert!(admitted(&cb, "a"), "half-open keeps letting trials through");
        assert_eq!(block_on(cb.on_success("a")), None);
        assert_eq!(state(&cb, "a"), CircuitState::HalfOpen);
        assert_eq!(
            block_on(cb.on_success("a")),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Closed
            })
        );
        assert_eq!(state(&cb, "a"), CircuitState::Closed);
        // Closed again: it takes the full threshold to reopen.
        block_on(cb.on_failure("a"));
        assert_eq!(state(&cb, "a"), CircuitState::Closed);
    }

    #[test]
    fn a_failed_trial_reopens_and_restarts_the_timeout() {
        let (clock, cb) = breakers(settings());
        for _ in 0..3 {
            block_on(cb.on_failure("a"));
        }
        clock.advance(Duration::from_secs(30));
        assert!(admitted(&cb, "a"));
        block_on(cb.on_success("a"));
        assert_eq!(
            block_on(cb.on_failure("a")),
            Some(Transition {
                from: CircuitState::HalfOpen,
                to: CircuitState::Open
            })
        );
        assert!(!admitted(&cb, "a"));
        clock.advance(Duration::from_secs(30));
        assert!(admitted(&cb, "a"));
        // The success counted in the previous half-open period does not carry over.
        assert_eq!(block_on(cb.on_success("a")), None);
        assert!(block_on(cb.on_success("a")).is_some());
    }

    #[test]
    fn disabled_breakers_admit_everything() {
        let (_, cb) = breakers(CircuitBreakerSettings {
            failure_threshold: 0,
            ..settings()
        });
        for _ in 0..10 {
            assert_eq!(block_on(cb.on_failure("a")), None);
        }
        assert!(admitted(&cb, "a"));
        assert_eq!(state(&cb, "a"), CircuitState::Closed);
    }

    #[test]
    fn two_breakers_over_one_store_share_state() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new(clock.clone()));
        let one = CircuitBreakers::new(settings(), store.clone(), clock.clone());
        let two = CircuitBreakers::new(settings(), store, clock.clone());
        block_on(one.on_failure("a"));
        block_on(two.on_failure("a"));
        block_on(one.on_failure("a"));
        assert_eq!(state(&two, "a"), CircuitState::Open);
        clock.advance(Duration::from_secs(30));
        assert!(admitted(&one, "a"));
        block_on(one.on_success("a"));
        // Each process reports successes of calls it admitted itself.
        assert!(admitted(&two, "a"));
        assert!(block_on(two.on_success("a")).is_some());
        assert_eq!(state(&one, "a"), CircuitState::Closed);
    }

    #[test]
    fn successes_of_healthy_deployments_read_nothing() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        // A store that counts reads.
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = count.clone();
        let store = Arc::new(ProbeStore {
            inner: InMemoryStateStore::new(clock.clone()),
            before: move |call| {
                if call == Call::Read {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            },
        });
        let cb = CircuitBreakers::new(settings(), store, clock.clone());
        let reads = || count.load(Ordering::SeqCst);
        assert!(admitted(&cb, "a"));
        let before = reads();
        for _ in 0..10 {
            assert_eq!(block_on(cb.on_success("a")), None);
        }
        assert_eq!(reads(), before, "a closed circuit's successes need no read");
        // Once this process has seen the circuit open, its successes are read and counted.
        for _ in 0..3 {
            block_on(cb.on_failure("a"));
        }
        clock.advance(Duration::from_secs(30));
        assert!(admitted(&cb, "a"));
        let before = reads();
        assert_eq!(block_on(cb.on_success("a")), None);
        assert!(reads() > before);
        assert!(block_on(cb.on_success("a")).is_some());
        // Closed again: back to no reads.
        assert!(admitted(&cb, "a"));
        let before = reads();
        block_on(cb.on_success("a"));
        assert_eq!(reads(), before);
    }
}
