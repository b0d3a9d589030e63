//! [`KeyStore`]: where keys, teams, users, their spend and the spend log live.
//!
//! - Implementations: [`super::memory::MemoryKeyStore`] (one process; tests, benchmarks,
//!   `ROUTEIQ_KEYS_BACKEND=memory`), DynamoDB and PostgreSQL (LiteLLM's own tables).
//! - Spend only moves through [`KeyStore::add_spend`] (atomic per entity, resets an ended
//!   budget period first) and [`KeyStore::reset_spend`]; record updates never overwrite it,
//!   so a charge landing during an admin update is never lost.
//! - Errors say whether the store could be reached ([`KeyStoreError::Unavailable`]: the
//!   request path fails closed on it) or what was wrong with the call.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::{Charge, Entity, KeyRecord, SpendLog, TeamRecord, UserRecord};

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The store did not answer, or answered with an error (network, throttling, auth).
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// A record with that id (or alias) exists.
    #[error("{0}")]
    Conflict(String),
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// A stored record could not be read (corrupt or from an incompatible schema).
    #[error("key store record unreadable: {0}")]
    Corrupt(String),
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Every matching record, across pages.
    pub total: usize,
}

/// Which keys `/key/list` wants (LiteLLM's query parameters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyQuery {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    /// 1-based.
    pub page: usize,
    pub size: usize,
}

impl KeyQuery {
    pub fn matches(&self, k: &KeyRecord) -> bool {
        (self.user_id.is_none() || k.user_id == self.user_id)
            && (self.team_id.is_none() || k.team_id == self.team_id)
            && (self.key_alias.is_none() || k.key_alias == self.key_alias)
    }
}

/// Which spend-log rows `/spend/logs` and the reports want.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendLogQuery {
    /// A key's hash.
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub request_id: Option<String>,
    /// `startTime >= start`.
    pub start: Option<DateTime<Utc>>,
    /// `startTime < end`.
    pub end: Option<DateTime<Utc>>,
    /// At most this many rows, newest first (0: no limit).
    pub limit: usize,
}

impl SpendLogQuery {
    pub fn matches(&self, r: &SpendLog) -> bool {
        (self.api_key.is_none() || Some(&r.api_key) == self.api_key.as_ref())
            && (self.user_id.is_none() || r.user == self.user_id)
            && (self.team_id.is_none() || r.team_id == self.team_id)
            && (self.request_id.is_none() || Some(&r.request_id) == self.request_id.as_ref())
            && self.start.is_none_or(|s| r.start_time >= s)
            && self.end.is_none_or(|e| r.start_time < e)
    }
}

/// The control plane's storage (see the module docs).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// `memory`, `dynamodb`, `postgres` (logs, readiness).
    fn backend(&self) -> &'static str;

    /// A key by its hash.
    async fn get_key(&self, token: &str) -> Result<Option<KeyRecord>, KeyStoreError>;
    /// A key by its `key_alias`.
    async fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>, KeyStoreError>;
    /// Adds a key; [`KeyStoreError::Conflict`] when its hash or alias is taken.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError>;
    /// Replaces a key's fields but `spend`; [`KeyStoreError::NotFound`] when absent,
    /// [`KeyStoreError::Conflict`] when its new alias is another key's.
    async fn update_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError>;
    /// Removes a key; whether it existed.
    async fn delete_key(&self, token: &str) -> Result<bool, KeyStoreError>;
    /// Keys matching `q`, newest first, one page.
    async fn list_keys(&self, q: &KeyQuery) -> Result<Page<KeyRecord>, KeyStoreError>;

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, KeyStoreError>;
    async fn insert_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError>;
    /// Replaces a team's fields but `spend`.
    async fn update_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError>;
    async fn delete_team(&self, team_id: &str) -> Result<bool, KeyStoreError>;
    /// Every team (LiteLLM's `/team/list` is not paginated).
    async fn list_teams(&self) -> Result<Vec<TeamRecord>, KeyStoreError>;

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, KeyStoreError>;
    async fn insert_user(&self, user: &UserRecord) -> Result<(), KeyStoreError>;
    /// Replaces a user's fields but `spend`.
    async fn update_user(&self, user: &UserRecord) -> Result<(), KeyStoreError>;
    async fn delete_user(&self, user_id: &str) -> Result<bool, KeyStoreError>;

    /// Adds each charge's amount to its entity's spend, atomically per entity. An entity
    /// whose `budget_reset_at` is at or before `now` starts a new period first (`spend =
    /// amount`, `budget_reset_at` moved past `now` by its `budget_duration`), exactly once
    /// however many instances charge it. Idempotent on [`Charge::id`] for at least
    /// [`CHARGE_ID_RETENTION`]: a charge applied before (a retry of a write whose answer was
    /// lost) is not applied again. Returns, in order, each charge's entity's spend once that
    /// charge is applied or found applied (`None`: the entity no longer exists, and was
    /// skipped).
    async fn add_spend(
        &self,
        charges: &[Charge],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<f64>>, KeyStoreError>;
    /// Sets an entity's spend and next reset (admin updates, `/key/regenerate`...).
    async fn reset_spend(
        &self,
        entity: &Entity,
        spend: f64,
        budget_reset_at: Option<DateTime<Utc>>,
    ) -> Result<(), KeyStoreError>;

    /// Appends spend-log rows (idempotent on `request_id`).
    async fn write_spend_logs(&self, rows: &[SpendLog]) -> Result<(), KeyStoreError>;
    /// Spend-log rows matching `q`, newest first.
    async fn spend_logs(&self, q: &SpendLogQuery) -> Result<Vec<SpendLog>, KeyStoreError>;
}

/// How long a store remembers the ids of the charges it applied.
pub const CHARGE_ID_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The next reset of a budget whose period was due at `due` and is restarted at `now`
/// ([`super::model::Period::next_reset`] from `now`); `None` without a valid duration.
pub fn next_reset(
    duration: Option<&str>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let period = super::model::Period::parse(duration?).ok()?;
    Some(period.next_reset(now.max(due)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn next_reset_steps_past_now() {
        let due = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 3, 12, 0, 0).unwrap();
        assert_eq!(
            next_reset(Some("1d"), due, now),
            Some(Utc.with_ymd_and_hms(2026, 1, 4, 0, 0, 0).unwrap())
        );
        assert_eq!(next_reset(None, due, now), None);
        assert_eq!(next_reset(Some("bad"), due, now), None);
        let long_ago = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        let n = next_reset(Some("30s"), long_ago, now).unwrap();
        assert!(n > now && n <= now + chrono::Duration::seconds(30));
    }
}
