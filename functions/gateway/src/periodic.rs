//! Background work tied to an object's lifetime: a task that runs every interval while the
//! object it serves is alive (hot-reload polls, counter flushes), holding it only weakly so
//! a config reload that drops the object also ends the task.

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::runtime::Handle;

static BACKGROUND: OnceLock<Handle> = OnceLock::new();

/// Makes `handle` the runtime that background work runs on: the process's main runtime. The
/// serving threads' event loops ([`crate::http::server::serve`]) run requests; polls, flushes and
/// reloads (which may block on S3 or load models) go here.
pub fn set_background(handle: Handle) {
    let _ = BACKGROUND.set(handle);
}

/// The runtime for background work: the one set at start-up, else the caller's (tests, the
/// Lambda runtime), else none.
pub fn background() -> Option<Handle> {
    BACKGROUND
        .get()
        .cloned()
        .or_else(|| Handle::try_current().ok())
}

/// Runs `fut` on the background runtime and waits for it (it runs where it would have if the
/// caller is already there).
pub async fn in_background<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match BACKGROUND.get() {
        Some(handle) => handle.spawn(fut).await,
        None => Ok(fut.await),
    }
}

/// Spawns on `handle` a task that calls `tick(target)` every `every` (first after one
/// interval; late ticks are delayed, not bunched) until `target` is dropped or `tick`
/// answers `false`.
pub fn spawn_while_alive<T, F, Fut>(
    handle: &tokio::runtime::Handle,
    target: Weak<T>,
    every: Duration,
    tick: F,
) where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    handle.spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            let Some(target) = target.upgrade() else {
                break;
            };
            if !tick(target).await {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Waits (at most 10 s) until `f` holds.
    async fn eventually(f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "condition never held");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn runs_while_the_target_lives_and_never_keeps_it_alive() {
        let target = Arc::new(AtomicUsize::new(0));
        spawn_while_alive(
            &tokio::runtime::Handle::current(),
            Arc::downgrade(&target),
            Duration::from_millis(5),
            |t: Arc<AtomicUsize>| async move {
                t.fetch_add(1, Ordering::SeqCst);
                true
            },
        );
        eventually(|| target.load(Ordering::SeqCst) >= 3).await;
        let weak = Arc::downgrade(&target);
        drop(target);
        // Between ticks the task holds only the weak reference.
        eventually(|| weak.upgrade().is_none()).await;
    }

    #[tokio::test]
    async fn stops_when_the_tick_says_so() {
        let target = Arc::new(AtomicUsize::new(0));
        spawn_while_alive(
            &tokio::runtime::Handle::current(),
            Arc::downgrade(&target),
            Duration::from_millis(5),
            |t: Arc<AtomicUsize>| async move { t.fetch_add(1, Ordering::SeqCst) < 1 },
        );
        eventually(|| target.load(Ordering::SeqCst) == 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(target.load(Ordering::SeqCst), 2);
    }
}
