//! [`MemoryKeyStore`]: the control plane in one process's memory (tests, benchmarks, and
//! `ROUTEIQ_KEYS_BACKEND=memory` for a single instance that may lose its keys on restart).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::{Charge, Entity, KeyRecord, Limits, SpendLog, TeamRecord, UserRecord};
use super::store::{
    CHARGE_ID_RETENTION, KeyQuery, KeyStore, KeyStoreError, Page, SpendLogQuery, next_reset,
};

#[derive(Default)]
struct Tables {
    keys: HashMap<String, KeyRecord>,
    teams: HashMap<String, TeamRecord>,
    users: HashMap<String, UserRecord>,
    /// Request id → row.
    spend_logs: HashMap<String, SpendLog>,
    /// Applied charge id → when (forgotten after [`CHARGE_ID_RETENTION`]).
    charge_ids: HashMap<String, DateTime<Utc>>,
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryKeyStore {
    tables: Mutex<Tables>,
    /// `add_spend` calls left that apply their charges and then fail, as a write whose
    /// answer is lost does ([`MemoryKeyStore::lose_spend_answers`]).
    lost_answers: std::sync::atomic::AtomicUsize,
    /// `write_spend_logs` calls left that fail without writing
    /// ([`MemoryKeyStore::refuse_spend_logs`]).
    refused_logs: std::sync::atomic::AtomicUsize,
}

impl MemoryKeyStore {
    pub fn new() -> MemoryKeyStore {
        MemoryKeyStore::default()
    }

    /// Makes the next `n` `add_spend` calls apply their charges and then answer
    /// `Unavailable` (a timeout after the write), for tests of what callers retry.
    pub fn lose_spend_answers(&self, n: usize) {
        self.lost_answers
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the next `n` `write_spend_logs` calls answer `Unavailable` without writing.
    pub fn refuse_spend_logs(&self, n: usize) {
        self.refused_logs
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Charges `amount` to `limits`, starting a new period first when the old one has ended.
pub(crate) fn charge(limits: &mut Limits, amount: f64, now: DateTime<Utc>) {
    match limits.budget_reset_at {
        Some(due) if due <= now => {
            limits.spend = amount;
            limits.budget_reset_at = next_reset(limits.budget_duration.as_deref(), due, now);
        }
        _ => limits.spend += amount,
    }
}

fn alias_taken(t: &Tables, alias: Option<&str>, token: &str) -> bool {
    alias.is_some_and(|a| {
        t.keys
            .values()
            .any(|k| k.key_alias.as_deref() == Some(a) && k.token != token)
    })
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get_key(&self, token: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        Ok(self.lock().keys.get(token).cloned())
    }

    async fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        Ok(self
            .lock()
            .keys
            .values()
            .find(|k| k.key_alias.as_deref() == Some(alias))
            .cloned())
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        if t.keys.contains_key(&key.token) {
            return Err(KeyStoreError::Conflict("this key already exists".into()));
        }
        if alias_taken(&t, key.key_alias.as_deref(), &key.token) {
            return Err(KeyStoreError::Conflict(format!(
                "key_alias '{}' is taken by another key",
                key.key_alias.as_deref().unwrap_or_default()
            )));
        }
        t.keys.insert(key.token.clone(), key.clone());
        Ok(())
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        if alias_taken(&t, key.key_alias.as_deref(), &key.token) {
            return Err(KeyStoreError::Conflict(format!(
                "key_alias '{}' is taken by another key",
                key.key_alias.as_deref().unwrap_or_default()
            )));
        }
        let Some(old) = t.keys.get_mut(&key.token) else {
            return Err(KeyStoreError::NotFound("key not found".into()));
        };
        let spend = old.limits.spend;
        *old = key.clone();
        old.limits.spend = spend;
        Ok(())
    }

    async fn delete_key(&self, token: &str) -> Result<bool, KeyStoreError> {
        Ok(self.lock().keys.remove(token).is_some())
    }

    async fn list_keys(&self, q: &KeyQuery) -> Result<Page<KeyRecord>, KeyStoreError> {
        let t = self.lock();
        let mut all: Vec<&KeyRecord> = t.keys.values().filter(|k| q.matches(k)).collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.token.cmp(&b.token))
        });
        let size = q.size.max(1);
        let items = all
            .iter()
            .skip(q.page.saturating_sub(1).saturating_mul(size))
            .take(size)
            .map(|k| (*k).clone())
            .collect();
        Ok(Page {
            items,
            total: all.len(),
        })
    }

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, KeyStoreError> {
        Ok(self.lock().teams.get(team_id).cloned())
    }

    async fn insert_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        if t.teams.contains_key(&team.team_id) {
            return Err(KeyStoreError::Conflict(format!(
                "team_id '{}' already exists",
                team.team_id
            )));
        }
        t.teams.insert(team.team_id.clone(), team.clone());
        Ok(())
    }

    async fn update_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        let Some(old) = t.teams.get_mut(&team.team_id) else {
            return Err(KeyStoreError::NotFound(format!(
                "team_id '{}' not found",
                team.team_id
            )));
        };
        let spend = old.limits.spend;
        *old = team.clone();
        old.limits.spend = spend;
        Ok(())
    }

    async fn delete_team(&self, team_id: &str) -> Result<bool, KeyStoreError> {
        Ok(self.lock().teams.remove(team_id).is_some())
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>, KeyStoreError> {
        let mut all: Vec<TeamRecord> = self.lock().teams.values().cloned().collect();
        all.sort_by(|a, b| a.team_id.cmp(&b.team_id));
        Ok(all)
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, KeyStoreError> {
        Ok(self.lock().users.get(user_id).cloned())
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        if t.users.contains_key(&user.user_id) {
            return Err(KeyStoreError::Conflict(format!(
                "user_id '{}' already exists",
                user.user_id
            )));
        }
        t.users.insert(user.user_id.clone(), user.clone());
        Ok(())
    }

    async fn update_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        let Some(old) = t.users.get_mut(&user.user_id) else {
            return Err(KeyStoreError::NotFound(format!(
                "user_id '{}' not found",
                user.user_id
            )));
        };
        let spend = old.limits.spend;
        *old = user.clone();
        old.limits.spend = spend;
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool, KeyStoreError> {
        Ok(self.lock().users.remove(user_id).is_some())
    }

    async fn add_spend(
        &self,
        charges: &[Charge],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<f64>>, KeyStoreError> {
        let mut t = self.lock();
        if t.charge_ids.len() > 4096 {
            t.charge_ids.retain(|_, at| *at > now - CHARGE_ID_RETENTION);
        }
        let mut totals = Vec::with_capacity(charges.len());
        for c in charges {
            let id = c.id();
            let new = !t.charge_ids.contains_key(&id);
            let limits = match &c.entity {
                Entity::Key(id) => t.keys.get_mut(id).map(|r| &mut r.limits),
                Entity::Team(id) => t.teams.get_mut(id).map(|r| &mut r.limits),
                Entity::User(id) => t.users.get_mut(id).map(|r| &mut r.limits),
            };
            let total = limits.map(|l| {
                if new {
                    charge(l, c.amount, now);
                }
                l.spend
            });
            if new && total.is_some() {
                t.charge_ids.insert(id, now);
            }
            totals.push(total);
        }
        let lost = self.lost_answers.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if lost.is_ok() {
            return Err(KeyStoreError::Unavailable(
                "memory: the answer was lost (lose_spend_answers)".into(),
            ));
        }
        Ok(totals)
    }

    async fn reset_spend(
        &self,
        entity: &Entity,
        spend: f64,
        budget_reset_at: Option<DateTime<Utc>>,
    ) -> Result<(), KeyStoreError> {
        let mut t = self.lock();
        let limits = match entity {
            Entity::Key(id) => t.keys.get_mut(id).map(|r| &mut r.limits),
            Entity::Team(id) => t.teams.get_mut(id).map(|r| &mut r.limits),
            Entity::User(id) => t.users.get_mut(id).map(|r| &mut r.limits),
        };
        let Some(l) = limits else {
            return Err(KeyStoreError::NotFound(format!(
                "{} '{}' not found",
                entity.kind(),
                entity.id()
            )));
        };
        l.spend = spend;
        l.budget_reset_at = budget_reset_at;
        Ok(())
    }

    async fn write_spend_logs(&self, rows: &[SpendLog]) -> Result<(), KeyStoreError> {
        let refused = self.refused_logs.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if refused.is_ok() {
            return Err(KeyStoreError::Unavailable(
                "memory: refused (refuse_spend_logs)".into(),
            ));
        }
        let mut t = self.lock();
        for r in rows {
            t.spend_logs.insert(r.request_id.clone(), r.clone());
        }
        Ok(())
    }

    async fn spend_logs(&self, q: &SpendLogQuery) -> Result<Vec<SpendLog>, KeyStoreError> {
        let t = self.lock();
        let mut rows: Vec<SpendLog> = t
            .spend_logs
            .values()
            .filter(|r| q.matches(r))
            .cloned()
            .collect();
        rows.sort_by(|a, b| {
            b.start_time
                .cmp(&a.start_time)
                .then_with(|| a.request_id.cmp(&b.request_id))
        });
        if q.limit > 0 {
            rows.truncate(q.limit);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(token: &str, alias: Option<&str>) -> KeyRecord {
        KeyRecord {
            token: token.into(),
            key_alias: alias.map(str::to_string),
            ..KeyRecord::default()
        }
    }

    #[tokio::test]
    async fn keys_aliases_and_spend() {
        let s = MemoryKeyStore::new();
        s.insert_key(&key("a", Some("app"))).await.unwrap();
        assert!(matches!(
            s.insert_key(&key("a", None)).await,
            Err(KeyStoreError::Conflict(_))
        ));
        assert!(matches!(
            s.insert_key(&key("b", Some("app"))).await,
            Err(KeyStoreError::Conflict(_))
        ));
        assert_eq!(s.key_by_alias("app").await.unwrap().unwrap().token, "a");
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        s.add_spend(
            &Charge::each(&[
                (Entity::Key("a".into()), 0.25),
                (Entity::Team("x".into()), 1.0),
            ]),
            now,
        )
        .await
        .unwrap();
        // An update never overwrites spend.
        let mut k = key("a", Some("renamed"));
        k.limits.spend = 99.0;
        s.update_key(&k).await.unwrap();
        let got = s.get_key("a").await.unwrap().unwrap();
        assert_eq!(got.limits.spend, 0.25);
        assert_eq!(got.key_alias.as_deref(), Some("renamed"));
        assert!(matches!(
            s.update_key(&key("zz", None)).await,
            Err(KeyStoreError::NotFound(_))
        ));
        assert!(s.delete_key("a").await.unwrap());
        assert!(!s.delete_key("a").await.unwrap());
    }

    #[tokio::test]
    async fn a_charge_applies_once() {
        let s = MemoryKeyStore::new();
        s.insert_key(&key("a", None)).await.unwrap();
        let c = Charge::new(Entity::Key("a".into()), 0.5);
        let now = Utc::now();
        assert_eq!(
            s.add_spend(std::slice::from_ref(&c), now).await.unwrap(),
            vec![Some(0.5)]
        );
        // A retry of the same charge: the total, unchanged.
        assert_eq!(
            s.add_spend(std::slice::from_ref(&c), now).await.unwrap(),
            vec![Some(0.5)]
        );
        let other = Charge::new(Entity::Key("a".into()), 0.25);
        assert_eq!(
            s.add_spend(&[c, other], now).await.unwrap(),
            vec![Some(0.5), Some(0.75)]
        );
    }

    #[tokio::test]
    async fn an_ended_period_resets_once() {
        let s = MemoryKeyStore::new();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut k = key("a", None);
        k.limits.budget_duration = Some("1h".into());
        k.limits.budget_reset_at = Some(start + chrono::Duration::hours(1));
        k.limits.spend = 3.0;
        s.insert_key(&k).await.unwrap();
        let later = start + chrono::Duration::minutes(90);
        s.add_spend(&Charge::each(&[(Entity::Key("a".into()), 0.5)]), later)
            .await
            .unwrap();
        s.add_spend(&Charge::each(&[(Entity::Key("a".into()), 0.5)]), later)
            .await
            .unwrap();
        let got = s.get_key("a").await.unwrap().unwrap();
        assert_eq!(got.limits.spend, 1.0);
        // Aligned: the next whole hour after the restart.
        assert_eq!(
            got.limits.budget_reset_at,
            Some(start + chrono::Duration::hours(2))
        );
    }

    #[tokio::test]
    async fn listing_pages_and_filters() {
        let s = MemoryKeyStore::new();
        for i in 0..5 {
            let mut k = key(&format!("k{i}"), None);
            k.team_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
            k.created_at = Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, i).unwrap());
            s.insert_key(&k).await.unwrap();
        }
        let q = KeyQuery {
            team_id: Some("even".into()),
            page: 1,
            size: 2,
            ..KeyQuery::default()
        };
        let p = s.list_keys(&q).await.unwrap();
        assert_eq!(p.total, 3);
        let tokens: Vec<_> = p.items.iter().map(|k| k.token.as_str()).collect();
        assert_eq!(tokens, ["k4", "k2"]);
        let p2 = s.list_keys(&KeyQuery { page: 2, ..q }).await.unwrap();
        assert_eq!(p2.items.len(), 1);
        assert_eq!(p2.items[0].token, "k0");
    }
}
