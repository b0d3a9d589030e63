//! The control plane's records, in LiteLLM's shapes: virtual keys
//! (`LiteLLM_VerificationToken`), teams (`LiteLLM_TeamTable`), users (`LiteLLM_UserTable`)
//! and spend logs (`LiteLLM_SpendLogs`).
//!
//! - Field names are LiteLLM's, so the admin API's JSON, the DynamoDB items and the Postgres
//!   rows are the same records.
//! - A key is stored only as its hash ([`hash_key`]: SHA-256 hex of the whole key, LiteLLM's
//!   `hash_token`), so keys LiteLLM created authenticate here and the reverse.
//! - Budgets and limits sit on keys, teams and users alike ([`Limits`]); a request must pass
//!   every one that applies to it.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// SHA-256 hex of a key, as LiteLLM stores it (`hash_token`). A value that is already a
/// 64-hex-digit hash (LiteLLM's admin API takes either) is returned as is.
pub fn hash_key(key: &str) -> String {
    if is_key_hash(key) {
        return key.to_ascii_lowercase();
    }
    routeiq::ml::artifact::sha256_hex(key.as_bytes())
}

/// Whether `s` is a stored key hash (64 hex digits) rather than a key.
pub fn is_key_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new key: `sk-` and 22 URL-safe base64 characters of 16 random bytes (LiteLLM's
/// `"sk-" + secrets.token_urlsafe(16)`), from the operating system's CSPRNG.
pub fn generate_key() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The abbreviation LiteLLM keeps as `key_name`: `sk-...` and the key's last four characters.
pub fn abbreviate_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// A budget period (`budget_duration`, a key's `duration`): `30s`, `30m`, `12h`, `30d`, `2w`,
/// `1mo` (calendar months), as LiteLLM writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Seconds(i64),
    Months(u32),
}

impl Period {
    /// Parses LiteLLM's duration strings.
    pub fn parse(s: &str) -> Result<Period, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("'{s}' has no unit: write e.g. 30s, 30m, 12h, 30d, 2w, 1mo"))?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("'{s}' does not start with a whole number"))?;
        if n <= 0 {
            return Err(format!("'{s}' must be longer than 0"));
        }
        let secs = |per: i64| {
            n.checked_mul(per)
                .filter(|v| *v <= 100 * 365 * 86_400)
                .map(Period::Seconds)
                .ok_or_else(|| format!("'{s}' is longer than 100 years"))
        };
        match unit {
            "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            "w" => secs(7 * 86_400),
            "mo" => u32::try_from(n)
                .ok()
                .filter(|m| *m <= 1200)
                .map(Period::Months)
                .ok_or_else(|| format!("'{s}' is longer than 100 years")),
            _ => Err(format!(
                "'{s}' has an unknown unit '{unit}': use s, m, h, d, w or mo"
            )),
        }
    }

    /// When a budget of this period that starts a new period at `now` next resets: aligned
    /// like LiteLLM's `get_next_standardized_reset_time` (UTC): `1d` the next midnight, `7d`
    /// and `1w` the next Monday, `30d` and `1mo` the 1st of the next month, `Nmo` the 1st
    /// N months on, other whole days today's midnight plus N days, and periods under a day
    /// the next multiple of the period on the clock (`30m` at 10:07 is 10:30).
    pub fn next_reset(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let midnight = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(now, |d| d.and_utc());
        const DAY: i64 = 86_400;
        match self {
            Period::Seconds(DAY) => midnight + ChronoDuration::days(1),
            Period::Seconds(s) if s == 7 * DAY => {
                let to_monday = 7 - i64::from(now.weekday().num_days_from_monday());
                midnight + ChronoDuration::days(to_monday)
            }
            Period::Seconds(s) if s == 30 * DAY => first_of_month(midnight, 1),
            Period::Months(m) => first_of_month(midnight, m),
            Period::Seconds(s) if s < DAY => {
                let since = (now - midnight).num_seconds();
                let next = (since / s + 1) * s;
                midnight + ChronoDuration::seconds(next.min(DAY))
            }
            Period::Seconds(s) if s % DAY == 0 => midnight + ChronoDuration::seconds(s),
            Period::Seconds(s) => now + ChronoDuration::seconds(s),
        }
    }

    /// `from` plus this period.
    pub fn after(self, from: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Seconds(s) => from + ChronoDuration::seconds(s),
            Period::Months(m) => add_months(from, m),
        }
    }
}

/// 00:00 on the 1st of the month `months` after `midnight`'s.
fn first_of_month(midnight: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    let total = midnight.month0() + months;
    let year = midnight.year() + i32::try_from(total / 12).unwrap_or(0);
    Utc.with_ymd_and_hms(year, total % 12 + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(midnight)
}

fn add_months(from: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    let total = from.month0() + months;
    let year = from.year() + i32::try_from(total / 12).unwrap_or(0);
    let month = total % 12 + 1;
    // The same day of the month, or the month's last day.
    let mut day = from.day();
    loop {
        if let chrono::LocalResult::Single(d) =
            Utc.with_ymd_and_hms(year, month, day, from.hour(), from.minute(), from.second())
        {
            return d;
        }
        if day <= 28 {
            return from;
        }
        day -= 1;
    }
}

/// Budget and limits: the same fields on keys, teams and users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// USD spent in the current budget period (all time without `budget_duration`).
    #[serde(default)]
    pub spend: f64,
    /// USD; `None`: no budget.
    #[serde(default)]
    pub max_budget: Option<f64>,
    /// How often `spend` resets (`30d`...); `None`: never.
    #[serde(default)]
    pub budget_duration: Option<String>,
    /// When `spend` next resets.
    #[serde(default)]
    pub budget_reset_at: Option<DateTime<Utc>>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm_limit: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[serde(default)]
    pub tpm_limit: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_parallel_requests: Option<u64>,
    /// Requests per clock hour (ModelMuxer's `requests_per_hour`; not in LiteLLM).
    #[serde(default)]
    pub rph_limit: Option<u64>,
    /// Requests per UTC day (ModelMuxer's `requests_per_day`; not in LiteLLM).
    #[serde(default)]
    pub rpd_limit: Option<u64>,
    /// Requests in any one clock second: how much of the other windows may come at once
    /// (ModelMuxer's burst limit; not in LiteLLM).
    #[serde(default)]
    pub burst_limit: Option<u64>,
}

impl Limits {
    /// The spend that counts now: 0 once the budget period has ended (the stored figure is
    /// reset lazily, by the first charge after the reset time).
    pub fn current_spend(&self, now: DateTime<Utc>) -> f64 {
        match self.budget_reset_at {
            Some(at) if now >= at => 0.0,
            _ => self.spend,
        }
    }

    /// Whether the budget is spent: `spend >= max_budget` (LiteLLM blocks at equality too).
    pub fn over_budget(&self, now: DateTime<Utc>) -> Option<(f64, f64)> {
        let max = self.max_budget?;
        let spend = self.current_spend(now);
        (spend >= max).then_some((spend, max))
    }

    /// Sets `budget_reset_at` from `budget_duration` (from `now`), as a new or updated
    /// record does ([`Period::next_reset`]).
    pub fn schedule_reset(&mut self, now: DateTime<Utc>) -> Result<(), String> {
        self.budget_reset_at = match &self.budget_duration {
            Some(d) => Some(Period::parse(d)?.next_reset(now)),
            None => None,
        };
        Ok(())
    }

    /// Checks the values (admin API input).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(b) = self.max_budget
            && !(b.is_finite() && b >= 0.0)
        {
            return Err("max_budget must be a number >= 0".into());
        }
        if !(self.spend.is_finite() && self.spend >= 0.0) {
            return Err("spend must be a number >= 0".into());
        }
        if let Some(d) = &self.budget_duration {
            Period::parse(d).map_err(|e| format!("budget_duration: {e}"))?;
        }
        Ok(())
    }
}

/// A virtual key (`LiteLLM_VerificationToken`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key's hash ([`hash_key`]); the key itself is never stored.
    pub token: String,
    /// `sk-...abcd` ([`abbreviate_key`]).
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub key_alias: Option<String>,
    #[serde(flatten)]
    pub limits: Limits,
    /// When the key stops working; `None`: never.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
    /// Model groups (or aliases, deployment ids, `*`, `all-proxy-models`) the key may call;
    /// empty: all (or the team's).
    #[serde(default)]
    pub models: Vec<String>,
    /// Per-key model aliases: a requested name → the model group it calls.
    #[serde(default)]
    pub aliases: Map<String, Value>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub permissions: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub blocked: Option<bool>,
    /// Routes the key may call (paths, or LiteLLM's `llm_api_routes`/`openai_routes`);
    /// empty: every LLM route.
    #[serde(default)]
    pub allowed_routes: Vec<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_by: Option<String>,
}

impl KeyRecord {
    pub fn is_blocked(&self) -> bool {
        self.blocked == Some(true)
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// A team (`LiteLLM_TeamTable`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub team_id: String,
    #[serde(default)]
    pub team_alias: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub admins: Vec<String>,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub members_with_roles: Vec<Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(flatten)]
    pub limits: Limits,
    /// Models the team's keys may call; empty: all.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A user (`LiteLLM_UserTable`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    #[serde(default)]
    pub user_alias: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub user_role: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(flatten)]
    pub limits: Limits,
    /// Models the user's keys may call; empty: all.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// What spend is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// A key, by its hash.
    Key(String),
    Team(String),
    User(String),
}

impl Entity {
    pub fn kind(&self) -> &'static str {
        match self {
            Entity::Key(_) => "key",
            Entity::Team(_) => "team",
            Entity::User(_) => "user",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Entity::Key(id) | Entity::Team(id) | Entity::User(id) => id,
        }
    }
}

/// An amount of USD charged to one entity by one writer, numbered in the writer's sequence,
/// so applying it is idempotent: a store does not apply a charge it has applied (see
/// [`super::store::KeyStore::add_spend`]), and a write whose answer was lost can be retried.
///
/// A writer sends its charges to one entity in sequence order, each only once the one
/// before is applied ([`ChargeSequence`]); a store may take a number at or below the last it
/// applied from that writer and entity as applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The writer: 16 lowercase hex digits, random.
    pub writer: Arc<str>,
    /// Microseconds since the epoch when it was made, and above the writer's previous one.
    pub seq: u64,
    pub entity: Entity,
    pub amount: f64,
}

impl Charge {
    /// A charge that is its own writer's only one.
    pub fn new(entity: Entity, amount: f64) -> Charge {
        ChargeSequence::new().next(entity, amount)
    }

    /// One fresh charge per `(entity, amount)`, each its own writer's.
    pub fn each(charges: &[(Entity, f64)]) -> Vec<Charge> {
        charges
            .iter()
            .map(|(e, a)| Charge::new(e.clone(), *a))
            .collect()
    }

    /// `{writer}:{seq}`: unique to this charge.
    pub fn id(&self) -> String {
        format!("{}:{}", self.writer, self.seq)
    }
}

/// One writer's charges, numbered: microseconds since the epoch, strictly increasing.
#[derive(Debug)]
pub struct ChargeSequence {
    writer: Arc<str>,
    last: std::sync::atomic::AtomicU64,
}

impl Default for ChargeSequence {
    fn default() -> Self {
        ChargeSequence::new()
    }
}

impl ChargeSequence {
    /// A writer with a fresh random id.
    pub fn new() -> ChargeSequence {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            bytes = uuid::Uuid::new_v4().as_u64_pair().0.to_be_bytes();
        }
        let writer: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ChargeSequence {
            writer: writer.into(),
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next charge: numbered now, or one above the last number when the clock is behind.
    pub fn next(&self, entity: Entity, amount: f64) -> Charge {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        let prev = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        Charge {
            writer: self.writer.clone(),
            seq: now.max(prev + 1),
            entity,
            amount,
        }
    }
}

/// One request's row in the spend log (`LiteLLM_SpendLogs`; never message content).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendLog {
    pub request_id: String,
    /// `acompletion`, `aembedding`, `atext_completion`, `anthropic_messages`, `aresponses`.
    pub call_type: String,
    /// The key's hash (`""` for the master key).
    pub api_key: String,
    pub spend: f64,
    pub total_tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(rename = "startTime")]
    pub start_time: DateTime<Utc>,
    #[serde(rename = "endTime")]
    pub end_time: DateTime<Utc>,
    /// The upstream model the deployment called.
    pub model: String,
    /// The deployment's id.
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub custom_llm_provider: Option<String>,
    /// The `user` the request named.
    pub user: Option<String>,
    pub team_id: Option<String>,
    /// The end user (`user` in the body), as LiteLLM records it.
    pub end_user: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// `success` or `failure`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_like_litellm() {
        // hashlib.sha256(b"sk-1234").hexdigest()
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        let h = hash_key("sk-abc");
        assert!(is_key_hash(&h));
        assert_eq!(hash_key(&h), h);
        assert_eq!(hash_key(&h.to_ascii_uppercase()), h);
    }

    #[test]
    fn generated_keys_look_like_litellms() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-"));
        assert_eq!(a.len(), 25);
        assert!(
            a[3..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(abbreviate_key("sk-abcdefgh"), "sk-...efgh");
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse("30s"), Ok(Period::Seconds(30)));
        assert_eq!(Period::parse("30m"), Ok(Period::Seconds(1800)));
        assert_eq!(Period::parse("1h"), Ok(Period::Seconds(3600)));
        assert_eq!(Period::parse("30d"), Ok(Period::Seconds(30 * 86_400)));
        assert_eq!(Period::parse("2w"), Ok(Period::Seconds(14 * 86_400)));
        assert_eq!(Period::parse("1mo"), Ok(Period::Months(1)));
        for bad in ["", "30", "d", "0d", "-1d", "1y", "1.5h", "99999999999999d"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
        assert_eq!(
            Period::Months(1).after(jan31),
            Utc.with_ymd_and_hms(2026, 2, 28, 10, 0, 0).unwrap()
        );
        assert_eq!(
            Period::Months(12).after(jan31),
            Utc.with_ymd_and_hms(2027, 1, 31, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn resets_are_aligned_like_litellms() {
        // Thursday 2026-01-15 10:07:30.
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 7, 30).unwrap();
        let at = |d: &str| Period::parse(d).unwrap().next_reset(now);
        let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        assert_eq!(at("1d"), utc(2026, 1, 16, 0, 0));
        assert_eq!(at("7d"), utc(2026, 1, 19, 0, 0));
        assert_eq!(at("1w"), utc(2026, 1, 19, 0, 0));
        assert_eq!(at("30d"), utc(2026, 2, 1, 0, 0));
        assert_eq!(at("1mo"), utc(2026, 2, 1, 0, 0));
        assert_eq!(at("12mo"), utc(2027, 1, 1, 0, 0));
        assert_eq!(at("30m"), utc(2026, 1, 15, 10, 30));
        assert_eq!(at("1h"), utc(2026, 1, 15, 11, 0));
        assert_eq!(
            at("30s"),
            Utc.with_ymd_and_hms(2026, 1, 15, 10, 8, 0).unwrap()
        );
        assert_eq!(at("2d"), utc(2026, 1, 17, 0, 0));
        // Monday: the next Monday, a week on.
        let monday = Utc.with_ymd_and_hms(2026, 1, 19, 9, 0, 0).unwrap();
        assert_eq!(
            Period::Seconds(7 * 86_400).next_reset(monday),
            utc(2026, 1, 26, 0, 0)
        );
    }

    #[test]
    fn budgets_reset_when_their_period_ends() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut l = Limits {
            spend: 5.0,
            max_budget: Some(5.0),
            budget_duration: Some("1d".into()),
            ..Limits::default()
        };
        l.schedule_reset(now).unwrap();
        assert_eq!(l.over_budget(now), Some((5.0, 5.0)));
        let later = now + ChronoDuration::days(1);
        assert_eq!(l.current_spend(later), 0.0);
        assert_eq!(l.over_budget(later), None);
        l.max_budget = Some(-1.0);
        assert!(l.validate().is_err());
    }

    #[test]
    fn records_read_litellms_json() {
        let k: KeyRecord = serde_json::from_value(serde_json::json!({
            "token": "ab", "key_alias": "app", "spend": 1.5, "max_budget": 10.0,
            "models": ["gpt-4o"], "rpm_limit": 5, "team_id": "t1",
            "expires": "2030-01-01T00:00:00Z", "unknown_future_field": 1
        }))
        .unwrap();
        assert_eq!(k.limits.spend, 1.5);
        assert_eq!(k.limits.rpm_limit, Some(5));
        assert_eq!(k.team_id.as_deref(), Some("t1"));
        let v = serde_json::to_value(&k).unwrap();
        assert_eq!(v["max_budget"], 10.0);
        assert_eq!(v["token"], "ab");
    }
}
