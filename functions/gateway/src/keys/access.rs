//! [`ControlPlane`]: virtual keys on the request path.
//!
//! - **Who**: [`ControlPlane::authenticate`] turns the presented key into a [`Principal`]:
//!   the master key, or a virtual key with its team and user; [`ControlPlane::jwt_principal`]
//!   turns a verified JWT's identity (`super::jwt`) into one: its team and user, whose models,
//!   budgets and limits apply as to a key of theirs. Records are cached in process
//!   for `ROUTEIQ_KEY_CACHE_TTL_SECONDS` (changes made through this instance apply at once:
//!   the admin API invalidates them). With the store down, a cached key keeps working (its
//!   last known record, up to [`STALE_FOR`]); an unknown key gets 503, never a way in.
//! - **May it**: the key's `allowed_routes`, and the models of the key, its team and its
//!   user ([`ControlPlane::check_model`]; per-key `aliases` rename the model first).
//! - **Can it now**: [`ControlPlane::admit`] checks the budgets (key, team, user) against
//!   the spend known here (the store's figure when fetched, plus every charge this instance
//!   made since, plus the totals each spend flush brings back), then the parallel, tpm and
//!   request-window limits (burst per second, rpm, rph, rpd: fixed windows aligned to the
//!   clock) in the state store (shared with Redis or DynamoDB), and returns an
//!   [`Admission`]. A refused request gives back the windows it took.
//! - **What it cost**: [`Admission::finish`] charges the request's cost to key (none for a
//!   JWT), team and user
//!   (a stream when it ends), counts its tokens toward tpm and frees its parallel slot; spend
//!   and the spend log are written by [`super::spend::SpendWriter`] in batches.
//!
//! Overshoot bound: a budget is checked when a request starts and charged when it ends, so
//! spend can pass `max_budget` by the cost of the requests in flight when it was crossed, plus,
//! with several instances, what the others admit before their next spend flush
//! (`ROUTEIQ_SPEND_FLUSH_MS`) brings the new total back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use routeiq::config::SecretString;
use routeiq::state::{Clock, StateStore};
use subtle::ConstantTimeEq;

use super::error::{AccessError, LimitKind};
use super::model::{Entity, KeyRecord, Limits, SpendLog, TeamRecord, UserRecord, hash_key};
use super::spend::SpendWriter;
use super::store::{KeyStore, KeyStoreError};

/// How long a key's last known record serves while the store cannot be reached.
pub const STALE_FOR: Duration = Duration::from_secs(3600);
/// Default `ROUTEIQ_KEY_CACHE_TTL_SECONDS`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most records cached per kind.
const CACHE_CAPACITY: u64 = 100_000;
/// How long rate-limit counters outlive their window.
const WINDOW_TTL: Duration = Duration::from_secs(120);
/// How long the burst (one second), rpm, rph and rpd counters outlive their windows' start.
const REQUEST_WINDOW_TTL: [Duration; 4] = [
    Duration::from_secs(5),
    WINDOW_TTL,
    Duration::from_secs(2 * 3600),
    Duration::from_secs(2 * 86_400),
];
/// The longest a request holds a parallel slot if its end is never seen (a crash).
const PARALLEL_TTL: Duration = Duration::from_secs(600);

/// A cached record and the spend charged to it here since it was fetched.
#[derive(Debug)]
pub struct Cached<T> {
    pub record: T,
    /// USD charged by this instance since `record` was read (or the flushed totals since).
    local: Mutex<LocalSpend>,
}

#[derive(Debug, Default)]
struct LocalSpend {
    /// Charged here, not yet in `record`.
    delta: f64,
    /// A newer total the store returned (a spend flush), replacing `record`'s figure.
    total: Option<f64>,
}

impl<T> Cached<T> {
    fn new(record: T, pending: f64) -> Arc<Cached<T>> {
        Arc::new(Cached {
            record,
            local: Mutex::new(LocalSpend {
                delta: pending,
                total: None,
            }),
        })
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalSpend> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A record with limits.
pub trait HasLimits {
    fn limits(&self) -> &Limits;
}

impl HasLimits for KeyRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
}
impl HasLimits for TeamRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
}
impl HasLimits for UserRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl<T: HasLimits> Cached<T> {
    /// The spend known here now.
    pub fn spend(&self, now: DateTime<Utc>) -> f64 {
        let l = self.record.limits();
        if l.budget_reset_at.is_some_and(|at| now >= at) {
            // The period ended: only what was charged since counts (approximately: the
            // charges of this instance since the fetch).
            return self.local().delta;
        }
        let local = self.local();
        local.total.unwrap_or(l.spend) + local.delta
    }
}

/// A virtual key, its team and its user, as cached.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key: Arc<Cached<KeyRecord>>,
    pub team: Option<Arc<Cached<TeamRecord>>>,
    pub user: Option<Arc<Cached<UserRecord>>>,
}

/// A verified JWT: an admin, or the team and user it names (as cached), if any.
#[derive(Debug, Clone, Default)]
pub struct JwtGrant {
    /// Its `scope` claim holds `admin_jwt_scope`: the admin API, not the model routes.
    pub admin: bool,
    pub team: Option<Arc<Cached<TeamRecord>>>,
    pub user: Option<Arc<Cached<UserRecord>>>,
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No master key configured: the gateway runs open.
    Open,
    /// The master key.
    Master,
    /// A virtual key.
    Key(Arc<KeyGrant>),
    /// A JWT (`general_settings.enable_jwt_auth`).
    Jwt(Arc<JwtGrant>),
}

impl Principal {
    /// The key's hash, for logs and the spend log (`""` for the master key and JWTs, as
    /// LiteLLM).
    pub fn key_hash(&self) -> &str {
        match self {
            Principal::Key(g) => &g.key.record.token,
            Principal::Open | Principal::Master | Principal::Jwt(_) => "",
        }
    }

    pub fn team_id(&self) -> Option<&str> {
        match self {
            Principal::Key(g) => g.key.record.team_id.as_deref(),
            Principal::Jwt(g) => g.team.as_ref().map(|t| t.record.team_id.as_str()),
            Principal::Open | Principal::Master => None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::Key(g) => g.key.record.user_id.as_deref(),
            Principal::Jwt(g) => g.user.as_ref().map(|u| u.record.user_id.as_str()),
            Principal::Open | Principal::Master => None,
        }
    }

    /// The virtual key's record, if the request presented one.
    pub fn key(&self) -> Option<&Arc<Cached<KeyRecord>>> {
        match self {
            Principal::Key(g) => Some(&g.key),
            Principal::Open | Principal::Master | Principal::Jwt(_) => None,
        }
    }

    /// The team whose models, budget and limits apply.
    pub fn team(&self) -> Option<&Arc<Cached<TeamRecord>>> {
        match self {
            Principal::Key(g) => g.team.as_ref(),
            Principal::Jwt(g) => g.team.as_ref(),
            Principal::Open | Principal::Master => None,
        }
    }

    /// The user whose models, budget and limits apply.
    pub fn user(&self) -> Option<&Arc<Cached<UserRecord>>> {
        match self {
            Principal::Key(g) => g.user.as_ref(),
            Principal::Jwt(g) => g.user.as_ref(),
            Principal::Open | Principal::Master => None,
        }
    }

    /// The entities a request is charged to, and their limits: key, team, user.
    fn entities(&self) -> Vec<(Entity, &Limits, &'static str)> {
        let mut v = Vec::new();
        if let Some(k) = self.key() {
            v.push((Entity::Key(k.record.token.clone()), &k.record.limits, "Key"));
        }
        if let Some(t) = self.team() {
            v.push((
                Entity::Team(t.record.team_id.clone()),
                &t.record.limits,
                "Team",
            ));
        }
        if let Some(u) = self.user() {
            v.push((
                Entity::User(u.record.user_id.clone()),
                &u.record.limits,
                "User",
            ));
        }
        v
    }

    /// Whether requests are checked against and charged to records (a key, or a JWT that is
    /// not an admin's).
    fn is_charged(&self) -> bool {
        match self {
            Principal::Key(_) => true,
            Principal::Jwt(g) => !g.admin,
            Principal::Open | Principal::Master => false,
        }
    }
}

/// The presented key: `Authorization: Bearer <key>`, `x-api-key`, `api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(key.trim());
    }
    headers
        .get("x-api-key")
        .or_else(|| headers.get("api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    pub cache_ttl: Duration,
    pub spend_flush: Duration,
    /// The status of a budget refusal (`litellm_settings.budget_exceeded_status_code`,
    /// default 429).
    pub budget_status: u16,
}

/// Default status of a budget refusal.
pub const DEFAULT_BUDGET_STATUS: u16 = 429;

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            cache_ttl: DEFAULT_CACHE_TTL,
            spend_flush: super::spend::DEFAULT_FLUSH,
            budget_status: DEFAULT_BUDGET_STATUS,
        }
    }
}

/// See the module docs.
pub struct ControlPlane {
    store: Arc<dyn KeyStore>,
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    keys: moka::future::Cache<String, Arc<Cached<KeyRecord>>>,
    teams: moka::future::Cache<String, Arc<Cached<TeamRecord>>>,
    users: moka::future::Cache<String, Arc<Cached<UserRecord>>>,
    /// Last known records, served while the store is down.
    stale_keys: moka::sync::Cache<String, Arc<Cached<KeyRecord>>>,
    stale_teams: moka::sync::Cache<String, Arc<Cached<TeamRecord>>>,
    stale_users: moka::sync::Cache<String, Arc<Cached<UserRecord>>>,
    pub(crate) spend: Arc<SpendWriter>,
    settings: ControlSettings,
    /// When a store call last failed, and whether one succeeded since (readiness).
    health: Mutex<StoreState>,
}

/// The key store's health as the request path saw it.
#[derive(Debug, Default, Clone, Copy)]
struct StoreState {
    /// Milliseconds since the epoch of the first failure of the current outage.
    failing_since_ms: Option<u64>,
}

fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> moka::future::Cache<String, V> {
    moka::future::Cache::builder()
        .max_capacity(CACHE_CAPACITY)
        .time_to_live(ttl.max(Duration::from_millis(1)))
        .build()
}

fn stale<V: Clone + Send + Sync + 'static>() -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder()
        .max_capacity(CACHE_CAPACITY)
        .time_to_live(STALE_FOR)
        .build()
}

impl ControlPlane {
    pub fn new(
        store: Arc<dyn KeyStore>,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        settings: ControlSettings,
    ) -> Arc<ControlPlane> {
        let spend = SpendWriter::new(store.clone(), settings.spend_flush);
        let cp = Arc::new(ControlPlane {
            store,
            state,
            clock,
            keys: cache(settings.cache_ttl),
            teams: cache(settings.cache_ttl),
            users: cache(settings.cache_ttl),
            stale_keys: stale(),
            stale_teams: stale(),
            stale_users: stale(),
            spend,
            settings,
            health: Mutex::new(StoreState::default()),
        });
        let weak = Arc::downgrade(&cp);
        cp.spend.on_totals(Box::new(move |totals| {
            if let Some(cp) = weak.upgrade() {
                cp.apply_totals(totals);
            }
        }));
        cp
    }

    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// `Some(since_ms)` while key-store calls on the request path fail (readiness reports the
    /// control plane degraded: cached keys work, unknown ones are refused with 503).
    pub fn failing_since_ms(&self) -> Option<u64> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failing_since_ms
    }

    fn store_result<T>(&self, r: &Result<T, KeyStoreError>) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(_) => h.failing_since_ms = None,
            Err(KeyStoreError::Unavailable(_)) => {
                h.failing_since_ms.get_or_insert(self.clock.now_ms());
            }
            Err(
                KeyStoreError::Conflict(_) | KeyStoreError::NotFound(_) | KeyStoreError::Corrupt(_),
            ) => {}
        }
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    pub fn cache_ttl(&self) -> Duration {
        self.settings.cache_ttl
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.clock.now_ms() as i64).unwrap_or_default()
    }

    /// Forgets the cached records of a key, team or user (the admin API changed them).
    pub async fn invalidate(&self, entity: &Entity) {
        match entity {
            Entity::Key(id) => {
                self.keys.invalidate(id).await;
                self.stale_keys.invalidate(id);
            }
            Entity::Team(id) => {
                self.teams.invalidate(id).await;
                self.stale_teams.invalidate(id);
            }
            Entity::User(id) => {
                self.users.invalidate(id).await;
                self.stale_users.invalidate(id);
            }
        }
    }

    /// Fresh totals from a spend flush, into the cached records.
    fn apply_totals(&self, totals: &[(Entity, f64, f64)]) {
        for (entity, total, flushed) in totals {
            let apply = |local: &mut LocalSpend| {
                local.total = Some(*total);
                local.delta = (local.delta - flushed).max(0.0);
            };
            match entity {
                Entity::Key(id) => {
                    if let Some(c) = self.stale_keys.get(id) {
                        apply(&mut c.local());
                    }
                }
                Entity::Team(id) => {
                    if let Some(c) = self.stale_teams.get(id) {
                        apply(&mut c.local());
                    }
                }
                Entity::User(id) => {
                    if let Some(c) = self.stale_users.get(id) {
                        apply(&mut c.local());
                    }
                }
            }
        }
    }

    /// Who the request acts as (see the module docs). `master_key: None` runs open.
    pub async fn authenticate(
        &self,
        master_key: Option<&SecretString>,
        headers: &HeaderMap,
    ) -> Result<Principal, AccessError> {
        let Some(master) = master_key else {
            return Ok(Principal::Open);
        };
        let Some(key) = presented_key(headers).filter(|k| !k.is_empty()) else {
            return Err(AccessError::NoKey);
        };
        if bool::from(key.as_bytes().ct_eq(master.expose().as_bytes())) {
            return Ok(Principal::Master);
        }
        let token = hash_key(key);
        let now = self.now();
        let key = self.key(&token).await?.ok_or(AccessError::InvalidKey)?;
        if key.record.is_blocked() {
            return Err(AccessError::Blocked(
                "Key is blocked. Update via `/key/unblock` if you're an admin.".into(),
            ));
        }
        if let Some(expires) = key.record.expires
            && now >= expires
        {
            return Err(AccessError::ExpiredKey {
                expires: expires.to_rfc3339(),
                now: now.to_rfc3339(),
            });
        }
        let team = match &key.record.team_id {
            Some(id) => Some(
                self.team(id)
                    .await?
                    .ok_or_else(|| AccessError::TeamNotFound(id.clone()))?,
            ),
            None => None,
        };
        if let Some(t) = &team
            && t.record.blocked
        {
            return Err(AccessError::Blocked(format!(
                "Team={} is blocked. Update via `/team/unblock` if you're an admin.",
                t.record.team_id
            )));
        }
        // A key naming a user LiteLLM never created is allowed (LiteLLM's behaviour): the
        // user then has no limits of its own.
        let user = match &key.record.user_id {
            Some(id) => self.user(id).await?,
            None => None,
        };
        Ok(Principal::Key(Arc::new(KeyGrant { key, team, user })))
    }

    /// The principal of a verified JWT (see the module docs): an admin as such; else the team
    /// it names, which must exist and not be blocked, and the user it names, which must exist
    /// (LiteLLM's `team_id_upsert` / `user_id_upsert: false`).
    pub async fn jwt_principal(
        &self,
        identity: super::jwt::JwtIdentity,
    ) -> Result<Principal, AccessError> {
        if identity.admin {
            return Ok(Principal::Jwt(Arc::new(JwtGrant {
                admin: true,
                ..JwtGrant::default()
            })));
        }
        let team = match &identity.team_id {
            Some(id) => Some(
                self.team(id)
                    .await?
                    .ok_or_else(|| AccessError::TeamNotFound(id.clone()))?,
            ),
            None => None,
        };
        if let Some(t) = &team
            && t.record.blocked
        {
            return Err(AccessError::Blocked(format!(
                "Team={} is blocked. Update via `/team/unblock` if you're an admin.",
                t.record.team_id
            )));
        }
        let user = match &identity.user_id {
            Some(id) => Some(
                self.user(id)
                    .await?
                    .ok_or_else(|| AccessError::UserNotFound(id.clone()))?,
            ),
            None => None,
        };
        Ok(Principal::Jwt(Arc::new(JwtGrant {
            admin: false,
            team,
            user,
        })))
    }

    async fn key(&self, token: &str) -> Result<Option<Arc<Cached<KeyRecord>>>, AccessError> {
        let fetch = self.store.get_key(token);
        self.cached(
            &self.keys,
            &self.stale_keys,
            Entity::Key(token.to_string()),
            fetch,
        )
        .await
    }

    async fn team(&self, id: &str) -> Result<Option<Arc<Cached<TeamRecord>>>, AccessError> {
        let fetch = self.store.get_team(id);
        self.cached(
            &self.teams,
            &self.stale_teams,
            Entity::Team(id.to_string()),
            fetch,
        )
        .await
    }

    async fn user(&self, id: &str) -> Result<Option<Arc<Cached<UserRecord>>>, AccessError> {
        let fetch = self.store.get_user(id);
        self.cached(
            &self.users,
            &self.stale_users,
            Entity::User(id.to_string()),
            fetch,
        )
        .await
    }

    /// A record from `fresh` (the TTL cache), else `fetch`ed from the store (then cached, with
    /// this instance's unwritten charges), else, while the store does not answer, its last
    /// known copy from `stale`; with neither, the store's failure (fail closed).
    async fn cached<T: Send + Sync + 'static>(
        &self,
        fresh: &moka::future::Cache<String, Arc<Cached<T>>>,
        stale: &moka::sync::Cache<String, Arc<Cached<T>>>,
        entity: Entity,
        fetch: impl std::future::Future<Output = Result<Option<T>, KeyStoreError>>,
    ) -> Result<Option<Arc<Cached<T>>>, AccessError> {
        let id = entity.id().to_string();
        if let Some(c) = fresh.get(&id).await {
            return Ok(Some(c));
        }
        let fetched = fetch.await;
        self.store_result(&fetched);
        match fetched {
            Ok(Some(r)) => {
                let c = Cached::new(r, self.spend.pending(&entity));
                fresh.insert(id.clone(), c.clone()).await;
                stale.insert(id, c.clone());
                Ok(Some(c))
            }
            Ok(None) => Ok(None),
            Err(e) => stale.get(&id).map(Some).ok_or_else(|| unavailable(&e)),
        }
    }

    /// Checks budgets, then rate limits (see the module docs). The returned admission must
    /// be [finished](Admission::finish) when the request ends.
    pub async fn admit(
        self: &Arc<Self>,
        principal: &Principal,
    ) -> Result<Option<Admission>, AccessError> {
        if !principal.is_charged() {
            return Ok(None);
        }
        let now = self.now();
        // Budgets, as LiteLLM checks them: the key's (spend >= max), its team's (spend >
        // max), its user's (spend >= max; not for team keys). A JWT's team and user are
        // checked as a key's would be.
        let status = self.settings.budget_status;
        if let Some(key) = principal.key()
            && let Some(max) = key.record.limits.max_budget
        {
            let k = &key.record;
            let spend = key.spend(now);
            if spend >= max {
                return Err(AccessError::BudgetExceeded {
                    message: format!(
                        "Budget has been exceeded! Key={} ({}) Current cost: {spend}, Max budget: {max}",
                        k.key_alias.as_deref().unwrap_or("key"),
                        k.key_name.as_deref().unwrap_or("sk-...")
                    ),
                    status,
                });
            }
        }
        if let Some(t) = principal.team()
            && let Some(max) = t.record.limits.max_budget
        {
            let spend = t.spend(now);
            if spend > max {
                return Err(AccessError::BudgetExceeded {
                    message: format!(
                        "Budget has been exceeded! Team={} Current cost: {spend}, Max budget: {max}",
                        t.record.team_id
                    ),
                    status,
                });
            }
        }
        if principal.team().is_none()
            && let Some(u) = principal.user()
            && let Some(max) = u.record.limits.max_budget
        {
            let spend = u.spend(now);
            if spend >= max {
                return Err(AccessError::BudgetExceeded {
                    message: format!(
                        "ExceededBudget: User={} over budget. Spend={spend}, Budget={max}",
                        u.record.user_id
                    ),
                    status,
                });
            }
        }
        let mut admission = Admission {
            cp: self.clone(),
            principal: principal.clone(),
            parallel: Vec::new(),
            headers: Vec::new(),
            finished: false,
        };
        let now_ms = self.clock.now_ms();
        let minute = now_ms / 60_000;
        let reset_at = |window_ms: u64| {
            let end = (now_ms / window_ms + 1) * window_ms;
            DateTime::<Utc>::from_timestamp_millis(end as i64)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        // Request windows taken so far, given back when a later check refuses the request.
        let mut taken: Vec<(String, Duration)> = Vec::new();
        let result = async {
            for (entity, limits, _) in principal.entities() {
                let descriptor = descriptor(&entity);
                let refuse = |kind, limit, window_ms: u64| AccessError::RateLimited {
                    descriptor,
                    id: entity.id().to_string(),
                    kind,
                    limit,
                    reset_at: reset_at(window_ms),
                    retry_after: Duration::from_millis(window_ms - now_ms % window_ms)
                        .max(Duration::from_secs(1)),
                };
                if let Some(limit) = limits.max_parallel_requests {
                    let key = counter_key("par", &entity, None);
                    let n = self
                        .state
                        .incr(&key, 1, PARALLEL_TTL)
                        .await
                        .map_err(state_err)?;
                    admission.parallel.push(key.clone());
                    if n > limit as i64 {
                        return Err(refuse(LimitKind::Parallel, limit, 1_000));
                    }
                }
                if let Some(limit) = limits.tpm_limit {
                    let key = counter_key("tpm", &entity, Some(minute));
                    let used = self
                        .state
                        .get_counters(std::slice::from_ref(&key))
                        .await
                        .map_err(state_err)?
                        .first()
                        .copied()
                        .unwrap_or(0)
                        .max(0) as u64;
                    if used >= limit {
                        return Err(refuse(LimitKind::Tpm, limit, 60_000));
                    }
                    admission
                        .headers
                        .push((format!("x-ratelimit-{descriptor}-limit-tokens"), limit));
                    admission.headers.push((
                        format!("x-ratelimit-{descriptor}-remaining-tokens"),
                        limit - used,
                    ));
                }
                // Request windows, shortest first: a burst refusal leaves the longer ones
                // untouched.
                let windows = [
                    (
                        limits.burst_limit,
                        LimitKind::Burst,
                        "rps",
                        1_000,
                        REQUEST_WINDOW_TTL[0],
                    ),
                    (
                        limits.rpm_limit,
                        LimitKind::Rpm,
                        "rpm",
                        60_000,
                        REQUEST_WINDOW_TTL[1],
                    ),
                    (
                        limits.rph_limit,
                        LimitKind::Rph,
                        "rph",
                        3_600_000,
                        REQUEST_WINDOW_TTL[2],
                    ),
                    (
                        limits.rpd_limit,
                        LimitKind::Rpd,
                        "rpd",
                        86_400_000,
                        REQUEST_WINDOW_TTL[3],
                    ),
                ];
                for (limit, kind, name, window_ms, ttl) in windows {
                    let Some(limit) = limit else { continue };
                    let key = counter_key(name, &entity, Some(now_ms / window_ms));
                    let n = self.state.incr(&key, 1, ttl).await.map_err(state_err)?;
                    taken.push((key, ttl));
                    if n > limit as i64 {
                        return Err(refuse(kind, limit, window_ms));
                    }
                    // LiteLLM's headers are the minute's; the others are RouteIQ's own.
                    let (limit_header, remaining_header) = match kind {
                        LimitKind::Rpm => (
                            format!("x-ratelimit-{descriptor}-limit-requests"),
                            format!("x-ratelimit-{descriptor}-remaining-requests"),
                        ),
                        _ => (
                            format!("x-ratelimit-{descriptor}-limit-{}", kind.as_str()),
                            format!("x-ratelimit-{descriptor}-remaining-{}", kind.as_str()),
                        ),
                    };
                    admission.headers.push((limit_header, limit));
                    admission
                        .headers
                        .push((remaining_header, limit.saturating_sub(n as u64)));
                }
            }
            Ok(())
        }
        .await;
        if let Err(refused) = result {
            // A refused request does not use its windows up.
            for (key, ttl) in taken {
                if let Err(e) = self.state.incr(&key, -1, ttl).await {
                    tracing::debug!(error = %e, "could not return a refused request's window slot");
                }
            }
            return Err(refused);
        }
        Ok(Some(admission))
    }
}

/// LiteLLM's rate-limit descriptor of an entity (`api_key`, `team`, `user`).
fn descriptor(entity: &Entity) -> &'static str {
    match entity {
        Entity::Key(_) => "api_key",
        Entity::Team(_) => "team",
        Entity::User(_) => "user",
    }
}

fn counter_key(kind: &str, entity: &Entity, minute: Option<u64>) -> String {
    match minute {
        Some(m) => format!("ak:{kind}:{}:{}:{m}", entity.kind(), entity.id()),
        None => format!("ak:{kind}:{}:{}", entity.kind(), entity.id()),
    }
}

fn unavailable(e: &KeyStoreError) -> AccessError {
    tracing::warn!(error = %e, "key store unavailable: refusing a key that is not cached");
    AccessError::StoreUnavailable(e.to_string())
}

fn state_err(e: routeiq::Error) -> AccessError {
    AccessError::StoreUnavailable(format!("rate-limit counters: {e}"))
}

/// What a request ends with, for its charge.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub request_id: String,
    pub call_type: &'static str,
    pub cost: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub started: DateTime<Utc>,
    pub model: String,
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub provider: Option<String>,
    pub end_user: Option<String>,
    pub success: bool,
}

/// An admitted key request: its parallel slots and rate-limit headers, charged and freed by
/// [`Admission::finish`] (or freed when dropped unfinished).
pub struct Admission {
    cp: Arc<ControlPlane>,
    /// A key, or a JWT's team and user.
    principal: Principal,
    /// Parallel-slot counters taken.
    parallel: Vec<String>,
    /// `x-ratelimit-*` headers for the response.
    pub headers: Vec<(String, u64)>,
    finished: bool,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field(
                "key",
                &self.principal.key().map(|k| k.record.key_name.clone()),
            )
            .field("team", &self.principal.team_id())
            .field("user", &self.principal.user_id())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Charges the request (see the module docs) and frees its parallel slots. Runs the
    /// store writes in the background.
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        let now = self.cp.now();
        let charges: Vec<(Entity, f64)> = self
            .principal
            .entities()
            .into_iter()
            .map(|(e, _, _)| (e, outcome.cost))
            .collect();
        if outcome.cost > 0.0 {
            // Into this instance's view at once (the next request sees it)...
            if let Some(k) = self.principal.key() {
                k.local().delta += outcome.cost;
            }
            if let Some(t) = self.principal.team() {
                t.local().delta += outcome.cost;
            }
            if let Some(u) = self.principal.user() {
                u.local().delta += outcome.cost;
            }
            // ...and into the next flush.
            self.cp.spend.charge(&charges);
        }
        self.cp.spend.log(SpendLog {
            request_id: outcome.request_id,
            call_type: outcome.call_type.to_string(),
            api_key: self.principal.key_hash().to_string(),
            spend: outcome.cost,
            total_tokens: outcome.prompt_tokens + outcome.completion_tokens,
            prompt_tokens: outcome.prompt_tokens,
            completion_tokens: outcome.completion_tokens,
            start_time: outcome.started,
            end_time: now,
            model: outcome.model,
            model_id: outcome.model_id,
            model_group: outcome.model_group,
            custom_llm_provider: outcome.provider,
            user: self.principal.user_id().map(str::to_string),
            team_id: self.principal.team_id().map(str::to_string),
            end_user: outcome.end_user,
            metadata: serde_json::Map::new(),
            status: if outcome.success {
                "success"
            } else {
                "failure"
            }
            .into(),
        });
        let tokens = (outcome.prompt_tokens + outcome.completion_tokens) as i64;
        let tpm: Vec<String> = if tokens > 0 {
            let minute = self.cp.clock.now_ms() / 60_000;
            self.principal
                .entities()
                .into_iter()
                .filter(|(_, l, _)| l.tpm_limit.is_some())
                .map(|(e, _, _)| counter_key("tpm", &e, Some(minute)))
                .collect()
        } else {
            Vec::new()
        };
        let parallel = std::mem::take(&mut self.parallel);
        release(self.cp.state.clone(), parallel, tpm, tokens);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if !self.finished {
            let parallel = std::mem::take(&mut self.parallel);
            release(self.cp.state.clone(), parallel, Vec::new(), 0);
        }
    }
}

/// Frees parallel slots and counts tokens, in the background (never on the response path).
fn release(state: Arc<dyn StateStore>, parallel: Vec<String>, tpm: Vec<String>, tokens: i64) {
    if parallel.is_empty() && tpm.is_empty() {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        for key in parallel {
            if let Err(e) = state.incr(&key, -1, PARALLEL_TTL).await {
                tracing::warn!(error = %e, "could not free a parallel-request slot");
            }
        }
        let deltas: Vec<(String, i64)> = tpm.into_iter().map(|k| (k, tokens)).collect();
        if !deltas.is_empty()
            && let Err(e) = state.incr_many(&deltas, WINDOW_TTL).await
        {
            tracing::warn!(error = %e, "could not count tokens toward tpm limits");
        }
    });
}

/// Spend of several entities (for tests and `/key/info`): what this instance knows.
pub fn known_spend(grant: &KeyGrant, now: DateTime<Utc>) -> HashMap<&'static str, f64> {
    let mut m = HashMap::new();
    m.insert("key", grant.key.spend(now));
    if let Some(t) = &grant.team {
        m.insert("team", t.spend(now));
    }
    if let Some(u) = &grant.user {
        m.insert("user", u.spend(now));
    }
    m
}
