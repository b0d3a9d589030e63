//! LiteLLM's key-management API over the control plane (`crate::keys`), in LiteLLM's request
//! and response shapes, so its clients, its Terraform provider and scripts keep working:
//!
//! - keys: `POST /key/generate`, `/key/update`, `/key/delete`, `/key/regenerate` (and
//!   `/key/{key}/regenerate`), `/key/block`, `/key/unblock`; `GET /key/info`, `/key/list`;
//! - teams: `POST /team/new`, `/team/update`, `/team/delete`, `/team/block`,
//!   `/team/unblock`; `GET /team/info`, `/team/list`;
//! - users: `POST /user/new`, `/user/update`, `/user/delete`; `GET /user/info`;
//! - spend: `GET /spend/logs`, `/global/spend/report`.
//!
//! Admin only (the master key, `ADMIN_API_KEYS`, or a JWT with the admin scope). Every change is logged
//! (`target: routeiq::audit`) with ids, aliases and key abbreviations, never a key. Fields
//! LiteLLM has that RouteIQ does not enforce (per-model budgets and limits, guardrails,
//! cache controls...) are refused with a 400 naming them, never stored and ignored. Without a
//! key store every route answers LiteLLM's 500 "DB not connected".

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::http::auth::authorize_admin;
use crate::keys::model::{
    Entity, KeyRecord, Limits, Period, SpendLog, TeamRecord, UserRecord, abbreviate_key,
    generate_key, hash_key,
};
use crate::keys::store::{KeyQuery, KeyStoreError, SpendLogQuery};
use crate::keys::{ControlPlane, KeyStore};

/// Rows `/spend/logs` returns at most (LiteLLM's cap).
const MAX_SPEND_LOG_ROWS: usize = 10_000;

/// An admin API failure, answered in LiteLLM's envelope (`code` a string).
#[derive(Debug)]
pub enum MgmtError {
    BadRequest(String),
    NotFound(String),
    /// No key store: virtual keys are off.
    Off,
    Store(KeyStoreError),
    Auth(crate::error::GatewayError),
}

impl From<KeyStoreError> for MgmtError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Conflict(m) => MgmtError::BadRequest(m),
            KeyStoreError::NotFound(m) => MgmtError::NotFound(m),
            e @ (KeyStoreError::Unavailable(_) | KeyStoreError::Corrupt(_)) => MgmtError::Store(e),
        }
    }
}

impl IntoResponse for MgmtError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            MgmtError::Auth(e) => return e.into_response(),
            MgmtError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request_error", m),
            MgmtError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found_error", m),
            MgmtError::Off => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "DB not connected. Virtual keys need a key store: set general_settings.database_url or DATABASE_URL (PostgreSQL with LiteLLM's tables), ROUTEIQ_STATE_TABLE (DynamoDB), or ROUTEIQ_KEYS_BACKEND=memory (one process)".to_string(),
            ),
            MgmtError::Store(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_server_error",
                e.to_string(),
            ),
        };
        let body = json!({"error": {
            "message": message, "type": kind, "param": null, "code": status.as_u16().to_string()
        }});
        (status, Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, MgmtError>;

/// The control plane, after checking the request is an admin's.
async fn admin(app: &App, headers: &HeaderMap) -> Result<Arc<ControlPlane>> {
    let gw = app.gateway();
    authorize_admin(&gw, headers)
        .await
        .map_err(MgmtError::Auth)?;
    gw.services.control.clone().ok_or(MgmtError::Off)
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A JSON body, as an object.
fn object(body: Option<Json<Value>>) -> Result<Map<String, Value>> {
    match body.map(|Json(v)| v) {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(MgmtError::BadRequest(
            "the body must be a JSON object".into(),
        )),
    }
}

/// Fields LiteLLM takes that RouteIQ does not enforce: refused when set, never ignored.
const UNENFORCED: &[(&str, &str)] = &[
    ("model_max_budget", "per-model budgets"),
    ("model_rpm_limit", "per-model rpm limits"),
    ("model_tpm_limit", "per-model tpm limits"),
    ("budget_limits", "several budget windows"),
    ("soft_budget", "soft-budget alerts"),
    ("allowed_cache_controls", "cache controls"),
    ("guardrails", "guardrails"),
    ("enforced_params", "enforced parameters"),
    ("object_permission", "MCP and vector-store permissions"),
    ("tpd_limit", "tokens-per-day limits"),
    ("rpm_limit_type", "rate-limit types"),
    ("tpm_limit_type", "rate-limit types"),
    ("budget_id", "shared budget rows"),
    ("router_settings", "per-key router settings"),
    ("access_group_ids", "access groups"),
    ("policies", "policies"),
    ("prompts", "prompt permissions"),
    ("auto_rotate", "key rotation"),
    ("rotation_interval", "key rotation"),
    ("temp_budget_increase", "temporary budget increases"),
    ("temp_budget_expiry", "temporary budget increases"),
    ("team_member_budget", "team-member budgets"),
    ("team_member_rpm_limit", "team-member limits"),
    ("team_member_tpm_limit", "team-member limits"),
    ("team_member_key_duration", "team-member key durations"),
    ("team_member_budget_duration", "team-member budgets"),
    ("model_aliases", "team model aliases"),
    ("organization_id", "organizations"),
    ("project_id", "projects"),
    ("grace_period", "key rotation grace periods"),
];

/// Fields accepted without effect on access (descriptive, or about e-mail and the UI).
const DESCRIPTIVE: &[&str] = &["send_invite_email", "key_type", "tags", "user_email_domain"];

/// Checks `m` has only `allowed` fields (or descriptive ones); unenforced controls that are
/// set (not null, not empty) are a 400 naming them.
fn check_fields(m: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    let mut unknown = Vec::new();
    for (k, v) in m {
        if allowed.contains(&k.as_str()) || DESCRIPTIVE.contains(&k.as_str()) {
            continue;
        }
        if let Some((_, what)) = UNENFORCED.iter().find(|(f, _)| f == k) {
            let empty = match v {
                Value::Null => true,
                Value::Object(o) => o.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Number(_) => false,
            };
            if empty {
                continue;
            }
            return Err(MgmtError::BadRequest(format!(
                "'{k}' ({what}) is not supported by RouteIQ: it would not be enforced, so it is refused"
            )));
        }
        unknown.push(k.clone());
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(MgmtError::BadRequest(format!(
            "unknown field(s): {}; accepted: {}",
            unknown.join(", "),
            allowed.join(", ")
        )))
    }
}

/// A field read from a request body: absent, explicitly null, or a value.
enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Field<T> {
    /// Applies to `slot`: absent leaves it, null clears it.
    fn apply(self, slot: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = None,
            Field::Set(v) => *slot = Some(v),
        }
    }
}

fn field<T: serde::de::DeserializeOwned>(m: &Map<String, Value>, name: &str) -> Result<Field<T>> {
    match m.get(name) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        // LiteLLM treats "" as null for budgets and ids.
        Some(Value::String(s)) if s.is_empty() => Ok(Field::Null),
        Some(v) => serde_json::from_value(v.clone())
            .map(Field::Set)
            .map_err(|e| MgmtError::BadRequest(format!("'{name}': {e}"))),
    }
}

fn string_list(m: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>> {
    match field::<Vec<String>>(m, name)? {
        Field::Absent => Ok(None),
        Field::Null => Ok(Some(Vec::new())),
        Field::Set(v) => Ok(Some(v)),
    }
}

fn json_object(m: &Map<String, Value>, name: &str) -> Result<Option<Map<String, Value>>> {
    match field::<Map<String, Value>>(m, name)? {
        Field::Absent => Ok(None),
        Field::Null => Ok(Some(Map::new())),
        Field::Set(v) => Ok(Some(v)),
    }
}

/// Applies the limit fields of `m` to `limits`; whether `budget_duration` or `spend` changed
/// (the period restarts).
fn apply_limits(m: &Map<String, Value>, limits: &mut Limits, now: DateTime<Utc>) -> Result<bool> {
    field::<f64>(m, "max_budget")?.apply(&mut limits.max_budget);
    field::<u64>(m, "rpm_limit")?.apply(&mut limits.rpm_limit);
    field::<u64>(m, "tpm_limit")?.apply(&mut limits.tpm_limit);
    field::<u64>(m, "max_parallel_requests")?.apply(&mut limits.max_parallel_requests);
    field::<u64>(m, "rph_limit")?.apply(&mut limits.rph_limit);
    field::<u64>(m, "rpd_limit")?.apply(&mut limits.rpd_limit);
    field::<u64>(m, "burst_limit")?.apply(&mut limits.burst_limit);
    let mut restart = false;
    match field::<f64>(m, "spend")? {
        Field::Absent => {}
        Field::Null => {
            limits.spend = 0.0;
            restart = true;
        }
        Field::Set(v) => {
            limits.spend = v;
            restart = true;
        }
    }
    let duration = field::<String>(m, "budget_duration")?;
    if !matches!(duration, Field::Absent) {
        duration.apply(&mut limits.budget_duration);
        limits
            .schedule_reset(now)
            .map_err(|e| MgmtError::BadRequest(format!("budget_duration: {e}")))?;
        restart = true;
    }
    limits.validate().map_err(MgmtError::BadRequest)?;
    Ok(restart)
}

/// `expires` from a key's `duration` (`null` or `"-1"`: never).
fn expiry(m: &Map<String, Value>, now: DateTime<Utc>) -> Result<Field<DateTime<Utc>>> {
    Ok(match field::<String>(m, "duration")? {
        Field::Absent => Field::Absent,
        Field::Null => Field::Null,
        Field::Set(d) if d.trim() == "-1" => Field::Null,
        Field::Set(d) => Field::Set(
            Period::parse(&d)
                .map_err(|e| MgmtError::BadRequest(format!("duration: {e}")))?
                .after(now),
        ),
    })
}

fn check_routes(routes: &[String]) -> Result<()> {
    for r in routes {
        if !(r.starts_with('/') || crate::http::access::ROUTE_GROUPS.contains(&r.as_str())) {
            return Err(MgmtError::BadRequest(format!(
                "allowed_routes: '{r}' is neither a path (/chat/completions) nor one of {}",
                crate::http::access::ROUTE_GROUPS.join(", ")
            )));
        }
    }
    Ok(())
}

const KEY_FIELDS: &[&str] = &[
    "key",
    "key_alias",
    "duration",
    "models",
    "aliases",
    "config",
    "permissions",
    "metadata",
    "user_id",
    "team_id",
    "blocked",
    "allowed_routes",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "rph_limit",
    "rpd_limit",
    "burst_limit",
    "spend",
];

/// Applies a key request's fields to `k`.
async fn apply_key_fields(
    store: &dyn KeyStore,
    m: &Map<String, Value>,
    k: &mut KeyRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    field::<String>(m, "key_alias")?.apply(&mut k.key_alias);
    expiry(m, now)?.apply(&mut k.expires);
    if let Some(v) = string_list(m, "models")? {
        k.models = v;
    }
    if let Some(v) = json_object(m, "aliases")? {
        if let Some((name, _)) = v.iter().find(|(_, t)| !t.is_string()) {
            return Err(MgmtError::BadRequest(format!(
                "aliases.{name}: must be the name of a model group"
            )));
        }
        k.aliases = v;
    }
    if let Some(v) = json_object(m, "config")? {
        k.config = v;
    }
    if let Some(v) = json_object(m, "permissions")? {
        k.permissions = v;
    }
    if let Some(v) = json_object(m, "metadata")? {
        k.metadata = v;
    }
    if let Some(tags) = m.get("tags").filter(|t| !t.is_null()) {
        k.metadata.insert("tags".into(), tags.clone());
    }
    field::<String>(m, "user_id")?.apply(&mut k.user_id);
    field::<String>(m, "team_id")?.apply(&mut k.team_id);
    field::<bool>(m, "blocked")?.apply(&mut k.blocked);
    if let Some(v) = string_list(m, "allowed_routes")? {
        check_routes(&v)?;
        k.allowed_routes = v;
    }
    if let Some(team) = &k.team_id
        && store.get_team(team).await?.is_none()
    {
        return Err(MgmtError::BadRequest(format!(
            "team_id '{team}' does not exist: create it with /team/new first"
        )));
    }
    apply_limits(m, &mut k.limits, now)
}

/// A key's JSON for answers: the record, `expires`, and its hash as `token`.
fn key_json(k: &KeyRecord) -> Map<String, Value> {
    match serde_json::to_value(k) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The answer to a new (or regenerated) key: the record plus the key, shown this once.
fn generated(k: &KeyRecord, raw: &str) -> Value {
    let mut m = key_json(k);
    m.insert("key".into(), json!(raw));
    m.insert("token_id".into(), json!(k.token));
    Value::Object(m)
}

fn audit(action: &str, entity: &Entity, alias: Option<&str>) {
    let id = match entity {
        // A key's hash prefix is enough to find it; its abbreviation is logged elsewhere.
        Entity::Key(h) => h.get(..12).unwrap_or(h).to_string(),
        Entity::Team(id) | Entity::User(id) => id.clone(),
    };
    tracing::info!(
        target: "routeiq::audit",
        action,
        kind = entity.kind(),
        id = %id,
        alias,
        "control plane change"
    );
}

/// A new key record from a generate request (`key` custom or generated).
async fn new_key(
    store: &dyn KeyStore,
    m: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(KeyRecord, String)> {
    let raw = match field::<String>(m, "key")? {
        Field::Set(k) => {
            if !k.starts_with("sk-") {
                return Err(MgmtError::BadRequest(
                    "Invalid key format. LiteLLM Virtual Key must start with 'sk-'.".into(),
                ));
            }
            if k.len() < 16 {
                return Err(MgmtError::BadRequest(
                    "Invalid key format. LiteLLM Virtual Key must be at least 16 characters long."
                        .into(),
                ));
            }
            k
        }
        Field::Absent | Field::Null => generate_key()
            .map_err(|e| MgmtError::Store(KeyStoreError::Unavailable(format!("random: {e}"))))?,
    };
    let mut k = KeyRecord {
        token: hash_key(&raw),
        key_name: Some(abbreviate_key(&raw)),
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some("admin".into()),
        updated_by: Some("admin".into()),
        ..KeyRecord::default()
    };
    apply_key_fields(store, m, &mut k, now).await?;
    Ok((k, raw))
}

/// `POST /key/generate`.
pub async fn key_generate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, KEY_FIELDS)?;
    let (k, raw) = new_key(cp.store().as_ref(), &m, now()).await?;
    cp.store().insert_key(&k).await?;
    audit(
        "key.generate",
        &Entity::Key(k.token.clone()),
        k.key_alias.as_deref(),
    );
    Ok(Json(generated(&k, &raw)))
}

/// The key a request names: `key` (a key or its hash), else `key_alias`.
async fn named_key(cp: &ControlPlane, m: &Map<String, Value>) -> Result<KeyRecord> {
    if let Some(key) = m.get("key").and_then(Value::as_str) {
        return cp
            .store()
            .get_key(&hash_key(key))
            .await?
            .ok_or_else(|| MgmtError::NotFound(format!("Key not found: {}", abbreviate_key(key))));
    }
    if let Some(alias) = m.get("key_alias").and_then(Value::as_str) {
        return cp
            .store()
            .key_by_alias(alias)
            .await?
            .ok_or_else(|| MgmtError::NotFound(format!("Key not found: key_alias={alias}")));
    }
    Err(MgmtError::BadRequest(
        "either key or key_alias must be provided".into(),
    ))
}

/// `POST /key/update`.
pub async fn key_update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let mut m = object(body)?;
    check_fields(&m, KEY_FIELDS)?;
    let mut k = named_key(&cp, &m).await?;
    // `key` names the key here; `key_alias` may rename it when `key` is given.
    let passed = m.remove("key");
    if passed.is_none() {
        m.remove("key_alias");
    }
    let now = now();
    let restart = apply_key_fields(cp.store().as_ref(), &m, &mut k, now).await?;
    k.updated_at = Some(now);
    k.updated_by = Some("admin".into());
    cp.store().update_key(&k).await?;
    let entity = Entity::Key(k.token.clone());
    if restart {
        cp.store()
            .reset_spend(&entity, k.limits.spend, k.limits.budget_reset_at)
            .await?;
    }
    cp.invalidate(&entity).await;
    audit("key.update", &entity, k.key_alias.as_deref());
    let fresh = cp.store().get_key(&k.token).await?.unwrap_or(k);
    let mut out = key_json(&fresh);
    out.insert("key".into(), passed.unwrap_or(Value::String(fresh.token)));
    Ok(Json(Value::Object(out)))
}

/// `POST /key/delete`: `{"keys": [...]}` and/or `{"key_aliases": [...]}`.
pub async fn key_delete(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, &["keys", "key_aliases"])?;
    let keys = string_list(&m, "keys")?.unwrap_or_default();
    let aliases = string_list(&m, "key_aliases")?.unwrap_or_default();
    if keys.is_empty() && aliases.is_empty() {
        return Err(MgmtError::BadRequest(
            "At least one of 'keys' or 'key_aliases' must be provided.".into(),
        ));
    }
    let mut tokens: Vec<(String, Value)> = keys.iter().map(|k| (hash_key(k), json!(k))).collect();
    for a in &aliases {
        match cp.store().key_by_alias(a).await? {
            Some(k) => tokens.push((k.token, json!(a))),
            None => {
                return Err(MgmtError::NotFound(format!(
                    "Not all keys passed in were deleted: key_alias={a} not found"
                )));
            }
        }
    }
    for (token, passed) in &tokens {
        if cp.store().get_key(token).await?.is_none() {
            return Err(MgmtError::NotFound(format!(
                "Not all keys passed in were deleted: {} not found",
                passed.as_str().map_or_else(String::new, abbreviate_key)
            )));
        }
    }
    let mut deleted = Vec::new();
    for (token, passed) in tokens {
        cp.store().delete_key(&token).await?;
        let entity = Entity::Key(token);
        cp.invalidate(&entity).await;
        audit("key.delete", &entity, None);
        deleted.push(passed);
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// `POST /key/regenerate` and `/key/{key}/regenerate`: a new key for the same record (limits,
/// spend, team kept); the old key stops working at once here, within the cache TTL elsewhere.
pub async fn key_regenerate(
    State(app): State<Arc<App>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let mut m = object(body)?;
    let mut fields = KEY_FIELDS.to_vec();
    fields.push("new_key");
    check_fields(&m, &fields)?;
    if let Some(Path(key)) = path {
        m.insert("key".into(), json!(key));
    }
    let old = named_key(&cp, &m).await?;
    m.remove("key");
    m.remove("key_alias");
    let raw = match field::<String>(&m, "new_key")? {
        Field::Set(k) if k.starts_with("sk-") && k.len() >= 16 => k,
        Field::Set(_) => {
            return Err(MgmtError::BadRequest(
                "New key must start with 'sk-' and be at least 16 characters long.".into(),
            ));
        }
        Field::Absent | Field::Null => generate_key()
            .map_err(|e| MgmtError::Store(KeyStoreError::Unavailable(format!("random: {e}"))))?,
    };
    m.remove("new_key");
    let now = now();
    let mut k = old.clone();
    k.token = hash_key(&raw);
    k.key_name = Some(abbreviate_key(&raw));
    k.updated_at = Some(now);
    apply_key_fields(cp.store().as_ref(), &m, &mut k, now).await?;
    // The old record goes first (its alias would conflict), then the new one with the old
    // spend; a failure in between leaves neither key working, never both.
    cp.store().delete_key(&old.token).await?;
    cp.invalidate(&Entity::Key(old.token.clone())).await;
    cp.store().insert_key(&k).await?;
    let entity = Entity::Key(k.token.clone());
    cp.store()
        .reset_spend(&entity, k.limits.spend, k.limits.budget_reset_at)
        .await?;
    audit("key.regenerate", &entity, k.key_alias.as_deref());
    Ok(Json(generated(&k, &raw)))
}

async fn set_key_blocked(
    app: &App,
    headers: &HeaderMap,
    body: Option<Json<Value>>,
    blocked: bool,
) -> Result<Json<Value>> {
    let cp = admin(app, headers).await?;
    let m = object(body)?;
    check_fields(&m, &["key"])?;
    let mut k = named_key(&cp, &m).await?;
    k.blocked = Some(blocked);
    k.updated_at = Some(now());
    cp.store().update_key(&k).await?;
    let entity = Entity::Key(k.token.clone());
    cp.invalidate(&entity).await;
    audit(
        if blocked { "key.block" } else { "key.unblock" },
        &entity,
        k.key_alias.as_deref(),
    );
    Ok(Json(Value::Object(key_json(&k))))
}

/// `POST /key/block`.
pub async fn key_block(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    set_key_blocked(&app, &headers, body, true).await
}

/// `POST /key/unblock`.
pub async fn key_unblock(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    set_key_blocked(&app, &headers, body, false).await
}

/// A key's `status` in `/key/info`.
fn key_status(k: &KeyRecord, now: DateTime<Utc>) -> &'static str {
    if k.is_expired(now) {
        "expired"
    } else if k.is_blocked() {
        "blocked"
    } else {
        "active"
    }
}

/// `GET /key/info?key=`.
pub async fn key_info(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let key = q
        .get("key")
        .ok_or_else(|| MgmtError::BadRequest("the 'key' query parameter is required".into()))?;
    cp.spend.flush().await;
    let k =
        cp.store().get_key(&hash_key(key)).await?.ok_or_else(|| {
            MgmtError::NotFound(format!("Key not found: {}", abbreviate_key(key)))
        })?;
    let mut info = key_json(&k);
    info.remove("token");
    info.insert("status".into(), json!(key_status(&k, now())));
    Ok(Json(json!({"key": key, "info": info})))
}

fn query_usize(q: &BTreeMap<String, String>, name: &str, default: usize) -> Result<usize> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| MgmtError::BadRequest(format!("'{name}' must be a whole number"))),
    }
}

/// `GET /key/list`.
pub async fn key_list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let page = query_usize(&q, "page", 1)?.max(1);
    let size = query_usize(&q, "size", 10)?;
    if !(1..=100).contains(&size) {
        return Err(MgmtError::BadRequest(
            "'size' must be between 1 and 100".into(),
        ));
    }
    let full = q.get("return_full_object").is_some_and(|v| v == "true");
    let query = KeyQuery {
        user_id: q.get("user_id").cloned(),
        team_id: q.get("team_id").cloned(),
        key_alias: q.get("key_alias").cloned(),
        page,
        size,
    };
    let p = cp.store().list_keys(&query).await?;
    let keys: Vec<Value> = p
        .items
        .iter()
        .map(|k| {
            if full {
                Value::Object(key_json(k))
            } else {
                json!(k.token)
            }
        })
        .collect();
    Ok(Json(json!({
        "keys": keys,
        "total_count": p.total,
        "current_page": page,
        "total_pages": p.total.div_ceil(size),
    })))
}

const TEAM_FIELDS: &[&str] = &[
    "team_id",
    "team_alias",
    "models",
    "metadata",
    "blocked",
    "admins",
    "members",
    "members_with_roles",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "rph_limit",
    "rpd_limit",
    "burst_limit",
    "spend",
];

fn apply_team_fields(
    m: &Map<String, Value>,
    t: &mut TeamRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    field::<String>(m, "team_alias")?.apply(&mut t.team_alias);
    if let Some(v) = string_list(m, "models")? {
        t.models = v;
    }
    if let Some(v) = json_object(m, "metadata")? {
        t.metadata = v;
    }
    if let Some(v) = string_list(m, "admins")? {
        t.admins = v;
    }
    if let Some(v) = string_list(m, "members")? {
        t.members = v;
    }
    match field::<Vec<Value>>(m, "members_with_roles")? {
        Field::Absent => {}
        Field::Null => t.members_with_roles.clear(),
        Field::Set(v) => t.members_with_roles = v,
    }
    match field::<bool>(m, "blocked")? {
        Field::Absent => {}
        Field::Null => t.blocked = false,
        Field::Set(b) => t.blocked = b,
    }
    apply_limits(m, &mut t.limits, now)
}

fn team_json(t: &TeamRecord) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// `POST /team/new`.
pub async fn team_new(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, TEAM_FIELDS)?;
    let now = now();
    let team_id = match field::<String>(&m, "team_id")? {
        Field::Set(id) => id,
        Field::Absent | Field::Null => uuid::Uuid::new_v4().to_string(),
    };
    let mut t = TeamRecord {
        team_id,
        created_at: Some(now),
        updated_at: Some(now),
        ..TeamRecord::default()
    };
    apply_team_fields(&m, &mut t, now)?;
    cp.store().insert_team(&t).await?;
    audit(
        "team.new",
        &Entity::Team(t.team_id.clone()),
        t.team_alias.as_deref(),
    );
    Ok(Json(team_json(&t)))
}

async fn named_team(cp: &ControlPlane, m: &Map<String, Value>) -> Result<TeamRecord> {
    let id = m
        .get("team_id")
        .and_then(Value::as_str)
        .ok_or_else(|| MgmtError::BadRequest("team_id is required".into()))?;
    cp.store()
        .get_team(id)
        .await?
        .ok_or_else(|| MgmtError::NotFound(format!("Team not found, passed team_id={id}")))
}

/// `POST /team/update`: `{"team_id", "data": <team>}`.
pub async fn team_update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, TEAM_FIELDS)?;
    let mut t = named_team(&cp, &m).await?;
    let now = now();
    let restart = apply_team_fields(&m, &mut t, now)?;
    t.updated_at = Some(now);
    cp.store().update_team(&t).await?;
    let entity = Entity::Team(t.team_id.clone());
    if restart {
        cp.store()
            .reset_spend(&entity, t.limits.spend, t.limits.budget_reset_at)
            .await?;
    }
    cp.invalidate(&entity).await;
    audit("team.update", &entity, t.team_alias.as_deref());
    let fresh = cp.store().get_team(&t.team_id).await?.unwrap_or(t);
    Ok(Json(
        json!({"team_id": fresh.team_id, "data": team_json(&fresh)}),
    ))
}

/// Every key of a team (all pages).
async fn team_keys(store: &dyn KeyStore, team_id: &str) -> Result<Vec<KeyRecord>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let p = store
            .list_keys(&KeyQuery {
                team_id: Some(team_id.to_string()),
                page,
                size: 100,
                ..KeyQuery::default()
            })
            .await?;
        let n = p.items.len();
        out.extend(p.items);
        if n < 100 || out.len() >= p.total {
            return Ok(out);
        }
        page += 1;
    }
}

/// `POST /team/delete`: `{"team_ids": [...]}`; the teams' keys go too (LiteLLM's behaviour).
pub async fn team_delete(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, &["team_ids"])?;
    let mut ids = string_list(&m, "team_ids")?.unwrap_or_default();
    ids.dedup();
    if ids.is_empty() {
        return Err(MgmtError::BadRequest("team_ids is required".into()));
    }
    for id in &ids {
        if cp.store().get_team(id).await?.is_none() {
            return Err(MgmtError::NotFound(format!(
                "Team not found, passed team_id={id}"
            )));
        }
    }
    for id in &ids {
        for k in team_keys(cp.store().as_ref(), id).await? {
            cp.store().delete_key(&k.token).await?;
            cp.invalidate(&Entity::Key(k.token.clone())).await;
            audit("key.delete", &Entity::Key(k.token), k.key_alias.as_deref());
        }
        cp.store().delete_team(id).await?;
        let entity = Entity::Team(id.clone());
        cp.invalidate(&entity).await;
        audit("team.delete", &entity, None);
    }
    Ok(Json(json!({"deleted_teams": ids})))
}

async fn set_team_blocked(
    app: &App,
    headers: &HeaderMap,
    body: Option<Json<Value>>,
    blocked: bool,
) -> Result<Json<Value>> {
    let cp = admin(app, headers).await?;
    let m = object(body)?;
    check_fields(&m, &["team_id"])?;
    let mut t = named_team(&cp, &m).await?;
    t.blocked = blocked;
    t.updated_at = Some(now());
    cp.store().update_team(&t).await?;
    let entity = Entity::Team(t.team_id.clone());
    cp.invalidate(&entity).await;
    audit(
        if blocked {
            "team.block"
        } else {
            "team.unblock"
        },
        &entity,
        t.team_alias.as_deref(),
    );
    Ok(Json(team_json(&t)))
}

/// `POST /team/block`.
pub async fn team_block(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    set_team_blocked(&app, &headers, body, true).await
}

/// `POST /team/unblock`.
pub async fn team_unblock(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    set_team_blocked(&app, &headers, body, false).await
}

/// `GET /team/info?team_id=`: `{"team_id", "team_info", "keys"}`.
pub async fn team_info(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let id = q
        .get("team_id")
        .ok_or_else(|| MgmtError::BadRequest("the 'team_id' query parameter is required".into()))?;
    cp.spend.flush().await;
    let t = cp
        .store()
        .get_team(id)
        .await?
        .ok_or_else(|| MgmtError::NotFound(format!("Team not found, passed team_id={id}")))?;
    let keys: Vec<Value> = team_keys(cp.store().as_ref(), id)
        .await?
        .iter()
        .map(|k| Value::Object(key_json(k)))
        .collect();
    Ok(Json(
        json!({"team_id": id, "team_info": team_json(&t), "keys": keys}),
    ))
}

/// `GET /team/list`: every team, by alias.
pub async fn team_list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    cp.spend.flush().await;
    let mut teams = cp.store().list_teams().await?;
    teams.sort_by(|a, b| {
        a.team_alias
            .cmp(&b.team_alias)
            .then(a.team_id.cmp(&b.team_id))
    });
    Ok(Json(Value::Array(teams.iter().map(team_json).collect())))
}

const USER_FIELDS: &[&str] = &[
    "user_id",
    "user_alias",
    "user_email",
    "user_role",
    "team_id",
    "teams",
    "models",
    "metadata",
    "auto_create_key",
    "key_alias",
    "duration",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "rph_limit",
    "rpd_limit",
    "burst_limit",
    "spend",
];

const USER_ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];

fn apply_user_fields(
    m: &Map<String, Value>,
    u: &mut UserRecord,
    now: DateTime<Utc>,
) -> Result<bool> {
    field::<String>(m, "user_alias")?.apply(&mut u.user_alias);
    field::<String>(m, "user_email")?.apply(&mut u.user_email);
    match field::<String>(m, "user_role")? {
        Field::Set(r) if !USER_ROLES.contains(&r.as_str()) => {
            return Err(MgmtError::BadRequest(format!(
                "user_role '{r}' is not one of {}",
                USER_ROLES.join(", ")
            )));
        }
        Field::Set(r) if r.starts_with("proxy_admin") => {
            // RouteIQ's admins are the master key and ADMIN_API_KEYS: a role that would make a
            // user's keys admins is not enforced, so it is refused.
            return Err(MgmtError::BadRequest(format!(
                "user_role '{r}' is not supported by RouteIQ (admin access is the master key and ADMIN_API_KEYS)"
            )));
        }
        f => f.apply(&mut u.user_role),
    }
    field::<String>(m, "team_id")?.apply(&mut u.team_id);
    if let Some(v) = string_list(m, "teams")? {
        u.teams = v;
    }
    if let Some(v) = string_list(m, "models")? {
        u.models = v;
    }
    if let Some(v) = json_object(m, "metadata")? {
        u.metadata = v;
    }
    apply_limits(m, &mut u.limits, now)
}

fn user_json(u: &UserRecord) -> Map<String, Value> {
    match serde_json::to_value(u) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// `POST /user/new`: the user and, unless `auto_create_key: false`, a key for it (with the
/// user's models and limits, no budget of its own: the user's applies).
pub async fn user_new(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, USER_FIELDS)?;
    let now = now();
    let user_id = match field::<String>(&m, "user_id")? {
        Field::Set(id) => id,
        Field::Absent | Field::Null => uuid::Uuid::new_v4().to_string(),
    };
    let mut u = UserRecord {
        user_id: user_id.clone(),
        user_role: Some("internal_user".into()),
        created_at: Some(now),
        updated_at: Some(now),
        ..UserRecord::default()
    };
    apply_user_fields(&m, &mut u, now)?;
    cp.store().insert_user(&u).await?;
    audit(
        "user.new",
        &Entity::User(u.user_id.clone()),
        u.user_alias.as_deref(),
    );
    let mut out = user_json(&u);
    let auto_key = !matches!(m.get("auto_create_key"), Some(Value::Bool(false)));
    if auto_key {
        let mut km = Map::new();
        km.insert("user_id".into(), json!(user_id));
        for f in [
            "models",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "rph_limit",
            "rpd_limit",
            "burst_limit",
            "key_alias",
            "duration",
            "team_id",
        ] {
            if let Some(v) = m.get(f) {
                km.insert(f.into(), v.clone());
            }
        }
        let (k, raw) = new_key(cp.store().as_ref(), &km, now).await?;
        cp.store().insert_key(&k).await?;
        audit(
            "key.generate",
            &Entity::Key(k.token.clone()),
            k.key_alias.as_deref(),
        );
        for (name, v) in key_json(&k) {
            out.entry(name).or_insert(v);
        }
        out.insert("key".into(), json!(raw));
        out.insert("token_id".into(), json!(k.token));
        out.insert("key_name".into(), json!(k.key_name));
        out.insert("expires".into(), json!(k.expires));
    }
    Ok(Json(Value::Object(out)))
}

async fn named_user(cp: &ControlPlane, m: &Map<String, Value>) -> Result<UserRecord> {
    let id = m
        .get("user_id")
        .and_then(Value::as_str)
        .ok_or_else(|| MgmtError::BadRequest("user_id is required".into()))?;
    cp.store()
        .get_user(id)
        .await?
        .ok_or_else(|| MgmtError::NotFound(format!("User not found, passed user_id={id}")))
}

/// `POST /user/update`.
pub async fn user_update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, USER_FIELDS)?;
    let mut u = named_user(&cp, &m).await?;
    let now = now();
    let restart = apply_user_fields(&m, &mut u, now)?;
    u.updated_at = Some(now);
    cp.store().update_user(&u).await?;
    let entity = Entity::User(u.user_id.clone());
    if restart {
        cp.store()
            .reset_spend(&entity, u.limits.spend, u.limits.budget_reset_at)
            .await?;
    }
    cp.invalidate(&entity).await;
    audit("user.update", &entity, u.user_alias.as_deref());
    let fresh = cp.store().get_user(&u.user_id).await?.unwrap_or(u);
    Ok(Json(Value::Object(user_json(&fresh))))
}

/// `POST /user/delete`: `{"user_ids": [...]}` (their keys stay, as LiteLLM keeps them).
pub async fn user_delete(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let m = object(body)?;
    check_fields(&m, &["user_ids"])?;
    let ids = string_list(&m, "user_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(MgmtError::BadRequest("user_ids is required".into()));
    }
    let mut deleted = Vec::new();
    for id in ids {
        if cp.store().delete_user(&id).await? {
            let entity = Entity::User(id.clone());
            cp.invalidate(&entity).await;
            audit("user.delete", &entity, None);
            deleted.push(id);
        }
    }
    Ok(Json(json!({"deleted_users": deleted})))
}

/// `GET /user/info?user_id=`: `{"user_id", "user_info", "keys", "teams"}`.
pub async fn user_info(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let id = q
        .get("user_id")
        .ok_or_else(|| MgmtError::BadRequest("the 'user_id' query parameter is required".into()))?;
    cp.spend.flush().await;
    let u = cp
        .store()
        .get_user(id)
        .await?
        .ok_or_else(|| MgmtError::NotFound(format!("User not found, passed user_id={id}")))?;
    let keys = cp
        .store()
        .list_keys(&KeyQuery {
            user_id: Some(id.clone()),
            page: 1,
            size: 100,
            ..KeyQuery::default()
        })
        .await?;
    let mut teams = Vec::new();
    for t in u.teams.iter().chain(u.team_id.iter()) {
        if let Some(team) = cp.store().get_team(t).await? {
            teams.push(team_json(&team));
        }
    }
    Ok(Json(json!({
        "user_id": id,
        "user_info": user_json(&u),
        "keys": keys.items.iter().map(|k| Value::Object(key_json(k))).collect::<Vec<_>>(),
        "teams": teams,
    })))
}

/// A `YYYY-MM-DD` query date, as UTC midnight.
fn date(q: &BTreeMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        MgmtError::BadRequest(format!("'{name}' must be a date as YYYY-MM-DD, got '{v}'"))
    })?;
    Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

/// `GET /spend/logs`: rows newest first (`api_key` a key or its hash, `user_id`, `team_id`,
/// `request_id`, `start_date`/`end_date` as `YYYY-MM-DD`); with both dates and `summarize`
/// (the default), one object per day as LiteLLM answers. `page`/`page_size` page the rows.
pub async fn spend_logs(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response> {
    let cp = admin(&app, &headers).await?;
    cp.spend.flush().await;
    let start = date(&q, "start_date")?;
    let end = date(&q, "end_date")?;
    let query = SpendLogQuery {
        api_key: q.get("api_key").map(|k| hash_key(k)),
        user_id: q.get("user_id").cloned(),
        team_id: q.get("team_id").cloned(),
        request_id: q.get("request_id").cloned(),
        start,
        end,
        limit: MAX_SPEND_LOG_ROWS + 1,
    };
    let mut rows = cp.store().spend_logs(&query).await?;
    let truncated = rows.len() > MAX_SPEND_LOG_ROWS;
    rows.truncate(MAX_SPEND_LOG_ROWS);
    let summarize = q.get("summarize").is_none_or(|v| v != "false");
    let body = if let (Some(start), Some(end), true) = (start, end, summarize) {
        summarize_by_day(&rows, start, end)
    } else {
        let size = query_usize(&q, "page_size", rows.len().max(1))?.max(1);
        let page = query_usize(&q, "page", 1)?.max(1);
        let rows: Vec<&SpendLog> = rows.iter().skip((page - 1) * size).take(size).collect();
        json!(rows)
    };
    let mut resp = Json(body).into_response();
    if truncated {
        resp.headers_mut().insert(
            "x-litellm-spend-logs-truncated",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

/// LiteLLM's per-day summary: `{"startTime": day, "spend", "<key hash>": spend, "users": {},
/// "models": {}}`, every day from `start` to before `end`.
fn summarize_by_day(rows: &[SpendLog], start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    let mut days: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut day = start.date_naive();
    while day < end.date_naive() {
        days.insert(day.to_string(), Map::new());
        day = day.succ_opt().unwrap_or(day);
        if days.len() > 3660 {
            break;
        }
    }
    for r in rows {
        let d = days
            .entry(r.start_time.date_naive().to_string())
            .or_default();
        let add = |m: &mut Map<String, Value>, k: &str, v: f64| {
            let cur = m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            m.insert(k.to_string(), json!(cur + v));
        };
        add(d, "spend", r.spend);
        add(d, &r.api_key, r.spend);
        for (name, k) in [("users", r.user.clone()), ("models", Some(r.model.clone()))] {
            let entry = d.entry(name).or_insert_with(|| json!({}));
            if let (Value::Object(m), Some(k)) = (entry, k) {
                add(m, &k, r.spend);
            }
        }
    }
    Value::Array(
        days.into_iter()
            .map(|(day, mut m)| {
                m.insert("startTime".into(), json!(day));
                m.entry("spend").or_insert(json!(0.0));
                m.entry("users").or_insert(json!({}));
                m.entry("models").or_insert(json!({}));
                Value::Object(m)
            })
            .collect(),
    )
}

/// `GET /global/spend/report?start_date&end_date&group_by=team|customer|api_key`: sums by
/// day and team (or customer) with a model and key breakdown, or by key with a model
/// breakdown, in LiteLLM's shapes.
pub async fn global_spend_report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>> {
    let cp = admin(&app, &headers).await?;
    let (Some(start), Some(end)) = (date(&q, "start_date")?, date(&q, "end_date")?) else {
        return Err(MgmtError::BadRequest(
            "Please provide start_date and end_date".into(),
        ));
    };
    cp.spend.flush().await;
    let rows = cp
        .store()
        .spend_logs(&SpendLogQuery {
            api_key: q.get("api_key").map(|k| hash_key(k)),
            user_id: q.get("internal_user_id").cloned(),
            team_id: q.get("team_id").cloned(),
            start: Some(start),
            end: Some(end + chrono::Duration::days(1)),
            ..SpendLogQuery::default()
        })
        .await?;
    let group_by = q.get("group_by").map_or("team", String::as_str);
    let by_key =
        group_by == "api_key" || q.contains_key("api_key") || q.contains_key("internal_user_id");
    if by_key {
        return Ok(Json(report_by_key(&rows)));
    }
    let teams: BTreeMap<String, Option<String>> = cp
        .store()
        .list_teams()
        .await?
        .into_iter()
        .map(|t| (t.team_id, t.team_alias))
        .collect();
    let (list_name, name_field) = match group_by {
        "team" => ("teams", "team_name"),
        "customer" => ("customers", "customer"),
        other => {
            return Err(MgmtError::BadRequest(format!(
                "group_by '{other}' is not one of team, customer, api_key"
            )));
        }
    };
    // day → group → (total, (model, key) → (spend, tokens))
    type Breakdown = BTreeMap<(String, String), (f64, u64)>;
    let mut days: BTreeMap<String, BTreeMap<String, (f64, Breakdown)>> = BTreeMap::new();
    for r in &rows {
        let group = if list_name == "teams" {
            r.team_id
                .as_ref()
                .map(|t| teams.get(t).cloned().flatten().unwrap_or_else(|| t.clone()))
                .unwrap_or_else(|| "Unassigned Team".into())
        } else {
            r.end_user.clone().unwrap_or_default()
        };
        let g = days
            .entry(r.start_time.date_naive().to_string())
            .or_default()
            .entry(group)
            .or_default();
        g.0 += r.spend;
        let e = g.1.entry((r.model.clone(), r.api_key.clone())).or_default();
        e.0 += r.spend;
        e.1 += r.total_tokens;
    }
    let out: Vec<Value> = days
        .into_iter()
        .map(|(day, groups)| {
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(name, (total, breakdown))| {
                    let metadata: Vec<Value> = breakdown
                        .into_iter()
                        .map(|((model, api_key), (spend, tokens))| {
                            json!({"model": model, "api_key": api_key, "spend": spend, "total_tokens": tokens})
                        })
                        .collect();
                    json!({name_field: name, "total_spend": total, "metadata": metadata})
                })
                .collect();
            json!({"group_by_day": day, list_name: groups})
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

fn report_by_key(rows: &[SpendLog]) -> Value {
    type Totals = (f64, u64, u64);
    let mut keys: BTreeMap<String, (Totals, BTreeMap<String, Totals>)> = BTreeMap::new();
    for r in rows {
        let k = keys.entry(r.api_key.clone()).or_default();
        k.0.0 += r.spend;
        k.0.1 += r.prompt_tokens;
        k.0.2 += r.completion_tokens;
        let m = k.1.entry(r.model.clone()).or_default();
        m.0 += r.spend;
        m.1 += r.prompt_tokens;
        m.2 += r.completion_tokens;
    }
    let mut out: Vec<(f64, Value)> = keys
        .into_iter()
        .map(|(key, ((cost, input, output), models))| {
            let details: Vec<Value> = models
                .into_iter()
                .map(|(model, (c, i, o))| {
                    json!({"model": model, "total_cost": c, "total_input_tokens": i, "total_output_tokens": o})
                })
                .collect();
            (
                cost,
                json!({"api_key": key, "total_cost": cost, "total_input_tokens": input,
                    "total_output_tokens": output, "model_details": details}),
            )
        })
        .collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unenforced_fields_are_refused_unless_empty() {
        let m: Map<String, Value> =
            serde_json::from_value(json!({"models": [], "model_max_budget": {}})).unwrap();
        assert!(check_fields(&m, KEY_FIELDS).is_ok());
        let m: Map<String, Value> =
            serde_json::from_value(json!({"model_max_budget": {"gpt-4": {"budget_limit": 1}}}))
                .unwrap();
        let e = check_fields(&m, KEY_FIELDS).unwrap_err();
        assert!(matches!(e, MgmtError::BadRequest(m) if m.contains("model_max_budget")));
        let m: Map<String, Value> = serde_json::from_value(json!({"nonsense": 1})).unwrap();
        assert!(matches!(
            check_fields(&m, KEY_FIELDS),
            Err(MgmtError::BadRequest(m)) if m.contains("unknown field(s): nonsense")
        ));
    }

    #[test]
    fn limits_apply_null_and_values() {
        let now = Utc::now();
        let mut l = Limits {
            max_budget: Some(5.0),
            ..Limits::default()
        };
        let m: Map<String, Value> = serde_json::from_value(
            json!({"max_budget": null, "rpm_limit": 10, "budget_duration": "1d"}),
        )
        .unwrap();
        assert!(apply_limits(&m, &mut l, now).unwrap());
        assert_eq!(l.max_budget, None);
        assert_eq!(l.rpm_limit, Some(10));
        assert!(l.budget_reset_at.is_some_and(|t| t > now));
        let bad: Map<String, Value> = serde_json::from_value(json!({"max_budget": -1})).unwrap();
        assert!(apply_limits(&bad, &mut l, now).is_err());
        let bad: Map<String, Value> =
            serde_json::from_value(json!({"budget_duration": "soon"})).unwrap();
        assert!(apply_limits(&bad, &mut l, now).is_err());
    }

    #[test]
    fn day_summaries_cover_every_day() {
        let t = |d: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-01-{d:02}T10:00:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        let rows = vec![SpendLog {
            request_id: "r".into(),
            api_key: "h".into(),
            spend: 0.5,
            model: "m".into(),
            user: Some("u".into()),
            start_time: t(2),
            end_time: t(2),
            ..SpendLog::default()
        }];
        let v = summarize_by_day(&rows, t(1), t(4));
        let days = v.as_array().unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!(days[1]["startTime"], "2026-01-02");
        assert_eq!(days[1]["spend"], 0.5);
        assert_eq!(days[1]["h"], 0.5);
        assert_eq!(days[1]["users"]["u"], 0.5);
        assert_eq!(days[0]["spend"], 0.0);
    }
}
