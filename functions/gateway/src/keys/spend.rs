//! [`SpendWriter`]: charges and spend-log rows, batched into the key store.
//!
//! - Charges are summed per entity in process and written by one background flush every
//!   `ROUTEIQ_SPEND_FLUSH_MS` ([`DEFAULT_FLUSH`]; `0` writes each request's charge at once,
//!   as in AWS Lambda where a frozen instance would hold them): one atomic add per entity and
//!   flush, not per request. The new totals the store returns go back to the control plane's
//!   cached records, so an instance sees the others' spend at every flush.
//! - A flush moves each entity's pending amount into one [`Charge`], next in this writer's
//!   [`ChargeSequence`]. A write
//!   that fails (or whose answer is lost: a timeout after the store applied it) keeps that
//!   charge and sends it again, unchanged, at the next flush, before any newer amount for the
//!   entity; the store applies an id once, so spend is never dropped nor doubled. Charges
//!   made meanwhile wait in the pending sum. Spend-log rows are retried likewise (idempotent
//!   on `request_id`), up to [`MAX_PENDING_LOGS`] rows (then the oldest are dropped, with a
//!   warning).
//! - [`SpendWriter::flush`] writes everything now (the admin spend endpoints call it, and
//!   shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;

use super::model::{Charge, ChargeSequence, Entity, SpendLog};
use super::store::KeyStore;

/// Default `ROUTEIQ_SPEND_FLUSH_MS`.
pub const DEFAULT_FLUSH: Duration = Duration::from_millis(200);
/// Entities charged at once by a flush.
const FLUSH_CONCURRENCY: usize = 8;
/// Most spend-log rows kept for a store that does not answer.
pub const MAX_PENDING_LOGS: usize = 100_000;

/// Called with `(entity, new total, amount flushed)` after each successful flush.
pub type TotalsHook = Box<dyn Fn(&[(Entity, f64, f64)]) + Send + Sync>;

#[derive(Default)]
struct Pending {
    /// Charged here and not yet given an id.
    charges: HashMap<Entity, f64>,
    /// Sent, and not known to be applied: sent again as they are.
    unsettled: HashMap<Entity, Charge>,
    logs: Vec<SpendLog>,
}

/// See the module docs.
pub struct SpendWriter {
    store: Arc<dyn KeyStore>,
    pending: Mutex<Pending>,
    interval: Duration,
    flusher_started: AtomicBool,
    /// Serialises flushes.
    flushing: tokio::sync::Mutex<()>,
    hook: OnceLock<TotalsHook>,
    /// This writer's charge numbers.
    sequence: ChargeSequence,
}

impl SpendWriter {
    pub fn new(store: Arc<dyn KeyStore>, interval: Duration) -> Arc<SpendWriter> {
        Arc::new(SpendWriter {
            store,
            pending: Mutex::new(Pending::default()),
            interval,
            flusher_started: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
            hook: OnceLock::new(),
            sequence: ChargeSequence::new(),
        })
    }

    /// Sets the hook that receives the totals of each flush (once).
    pub fn on_totals(&self, hook: TotalsHook) {
        let _ = self.hook.set(hook);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is charged to `entity` here and not yet known to be written.
    pub fn pending(&self, entity: &Entity) -> f64 {
        let p = self.lock();
        p.charges.get(entity).copied().unwrap_or(0.0)
            + p.unsettled.get(entity).map_or(0.0, |c| c.amount)
    }

    /// Adds charges for the next flush.
    pub fn charge(self: &Arc<Self>, charges: &[(Entity, f64)]) {
        {
            let mut p = self.lock();
            for (e, amount) in charges {
                *p.charges.entry(e.clone()).or_insert(0.0) += amount;
            }
        }
        self.kick();
    }

    /// Adds a spend-log row for the next flush.
    pub fn log(self: &Arc<Self>, row: SpendLog) {
        {
            let mut p = self.lock();
            p.logs.push(row);
            if p.logs.len() > MAX_PENDING_LOGS {
                let over = p.logs.len() - MAX_PENDING_LOGS;
                p.logs.drain(..over);
                tracing::warn!(
                    dropped = over,
                    "spend log: the key store is not taking rows; dropped the oldest"
                );
            }
        }
        self.kick();
    }

    fn kick(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.interval.is_zero() {
            let me = self.clone();
            handle.spawn(async move { me.flush().await });
            return;
        }
        if !self.flusher_started.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(self);
            let interval = self.interval;
            handle.spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(me) = weak.upgrade() else { return };
                    me.flush().await;
                }
            });
        }
    }

    /// Writes every pending charge and row now (see the module docs).
    pub async fn flush(&self) {
        let _serial = self.flushing.lock().await;
        let (charges, logs) = {
            let mut p = self.lock();
            let fresh: Vec<(Entity, f64)> = p.charges.drain().collect();
            for (entity, amount) in fresh {
                match p.unsettled.get(&entity) {
                    // Its earlier charge goes first, alone; this amount waits.
                    Some(_) => {
                        p.charges.insert(entity, amount);
                    }
                    None => {
                        let charge = self.sequence.next(entity.clone(), amount);
                        p.unsettled.insert(entity, charge);
                    }
                }
            }
            let charges: Vec<Charge> = p.unsettled.values().cloned().collect();
            // Taken, not copied: requests ending meanwhile only wait for a swap.
            (charges, std::mem::take(&mut p.logs))
        };
        if !charges.is_empty() {
            // One store call per entity: a failure leaves only that entity's charge unsettled.
            let now = Utc::now();
            let results = futures::stream::iter(charges)
                .map(|c| async move {
                    let r = self.store.add_spend(std::slice::from_ref(&c), now).await;
                    (c, r)
                })
                .buffer_unordered(FLUSH_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            let mut applied = Vec::new();
            let mut failed = 0usize;
            {
                let mut p = self.lock();
                for (c, r) in results {
                    match r {
                        Ok(totals) => {
                            p.unsettled.remove(&c.entity);
                            if let Some(Some(total)) = totals.first() {
                                applied.push((c.entity, *total, c.amount));
                            }
                        }
                        Err(err) => {
                            failed += 1;
                            tracing::warn!(error = %err, kind = c.entity.kind(), charge = %c.id(), "spend not written; sent again at the next flush");
                        }
                    }
                }
            }
            if failed > 0 {
                tracing::warn!(entities = failed, "spend flush incomplete");
            }
            if let Some(hook) = self.hook.get() {
                hook(&applied);
            }
        }
        if !logs.is_empty() {
            if let Err(e) = self.store.write_spend_logs(&logs).await {
                tracing::warn!(error = %e, rows = logs.len(), "spend log not written; kept for the next flush");
                // Back in front of the rows logged since (writes are idempotent on the
                // request id), within the cap.
                let mut p = self.lock();
                let newer = std::mem::replace(&mut p.logs, logs);
                p.logs.extend(newer);
                if p.logs.len() > MAX_PENDING_LOGS {
                    let over = p.logs.len() - MAX_PENDING_LOGS;
                    p.logs.drain(..over);
                    tracing::warn!(
                        dropped = over,
                        "spend log: the key store is not taking rows; dropped the oldest"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::memory::MemoryKeyStore;
    use crate::keys::model::KeyRecord;

    #[tokio::test]
    async fn charges_are_summed_and_written_with_totals() {
        let store = Arc::new(MemoryKeyStore::new());
        store
            .insert_key(&KeyRecord {
                token: "k".into(),
                ..KeyRecord::default()
            })
            .await
            .unwrap();
        let w = SpendWriter::new(store.clone(), Duration::from_secs(3600));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        w.on_totals(Box::new(move |t| s2.lock().unwrap().extend_from_slice(t)));
        let k = Entity::Key("k".into());
        w.charge(&[(k.clone(), 0.5)]);
        w.charge(&[(k.clone(), 0.25), (Entity::Team("gone".into()), 1.0)]);
        assert_eq!(w.pending(&k), 0.75);
        w.flush().await;
        assert_eq!(w.pending(&k), 0.0);
        assert_eq!(
            store.get_key("k").await.unwrap().unwrap().limits.spend,
            0.75
        );
        assert_eq!(*seen.lock().unwrap(), vec![(k.clone(), 0.75, 0.75)]);
    }

    #[tokio::test]
    async fn a_write_whose_answer_was_lost_is_retried_without_doubling() {
        let store = Arc::new(MemoryKeyStore::new());
        store
            .insert_key(&KeyRecord {
                token: "k".into(),
                ..KeyRecord::default()
            })
            .await
            .unwrap();
        let w = SpendWriter::new(store.clone(), Duration::from_secs(3600));
        let k = Entity::Key("k".into());
        let spend = || async { store.get_key("k").await.unwrap().unwrap().limits.spend };
        w.charge(&[(k.clone(), 1.0)]);
        store.lose_spend_answers(2);
        w.flush().await;
        // Applied, but not known to be: still pending here.
        assert_eq!(spend().await, 1.0);
        assert_eq!(w.pending(&k), 1.0);
        // A new charge waits behind the unsettled one.
        w.charge(&[(k.clone(), 0.5)]);
        assert_eq!(w.pending(&k), 1.5);
        w.flush().await;
        assert_eq!(spend().await, 1.0, "the retry was not applied twice");
        assert_eq!(w.pending(&k), 1.5);
        w.flush().await;
        assert_eq!(w.pending(&k), 0.5);
        w.flush().await;
        assert_eq!(w.pending(&k), 0.0);
        assert_eq!(spend().await, 1.5);
    }

    #[tokio::test]
    async fn spend_log_rows_a_store_refused_are_written_with_the_next_flush() {
        let store = Arc::new(MemoryKeyStore::new());
        let w = SpendWriter::new(store.clone(), Duration::from_secs(3600));
        let row = |id: &str| SpendLog {
            request_id: id.into(),
            ..SpendLog::default()
        };
        let all = || async {
            let mut ids: Vec<String> = store
                .spend_logs(&crate::keys::store::SpendLogQuery::default())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.request_id)
                .collect();
            ids.sort();
            ids
        };
        w.log(row("a"));
        store.refuse_spend_logs(1);
        w.flush().await;
        assert!(all().await.is_empty());
        w.log(row("b"));
        w.flush().await;
        assert_eq!(all().await, ["a", "b"]);
        // Nothing left to write twice.
        w.flush().await;
        assert_eq!(all().await, ["a", "b"]);
    }
}
