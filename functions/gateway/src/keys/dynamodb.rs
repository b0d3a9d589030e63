//! [`DynamoDbKeyStore`]: the control plane in a DynamoDB table shared by every instance (the
//! serverless default for keys, teams, users, spend and the spend log).
//!
//! ## Table
//! - Its own table (`ROUTEIQ_KEYS_TABLE`, else `{ROUTEIQ_STATE_TABLE}-keys`:
//!   [`DynamoDbKeysConfig`]), not the state table: that one has only a partition key (`pk`),
//!   and the spend log needs range queries, so this table has `pk` (S) and a sort key `sk`
//!   (S), on-demand billing, TTL on `ttl` (epoch seconds, as the state table). Every `pk` starts
//!   with the store's prefix (`ROUTEIQ_STATE_PREFIX`: environments sharing a table).
//! - Records: `key#{hash}`, `team#{team_id}`, `user#{user_id}`, `sk` = `#`. `doc` is the record's
//!   JSON (LiteLLM's field names) without `spend` and `budget_reset_at`, which are attributes of
//!   their own: `spend` (N: `ADD` is exact decimal arithmetic, 0.1 + 0.2 is 0.3) and
//!   `budget_reset_at` (N, epoch milliseconds), with a copy of `budget_duration` (S) for the
//!   period reset and, on keys, of `key_alias` (S) for the alias conditions.
//! - Aliases: `keyalias#{alias}` (`token`: the owner's hash) is written in the same
//!   `TransactWriteItems` as its key, with `attribute_not_exists` (or "is mine") conditions,
//!   so two keys never get one alias, whichever instances write them.
//! - Listings: directory items `keys` / `teams` (`sk` = the hash or team id; for keys, `doc`
//!   holds what `/key/list` filters and sorts on), written in the key's or team's transaction.
//!   A listing is one `Query` of the directory (a few hundred bytes per key; never touched by
//!   charges, so it is not a hot partition) and a `BatchGetItem` of one page, rather than a
//!   `Scan` that would read every spend-log row.
//! - Spend log: each row at `spendday#{YYYY-MM-DD}#{shard}` (its `startTime`'s UTC day, one of
//!   [`SPEND_LOG_SHARDS`] shards by a hash of the request id, so writes spread over that many
//!   partitions), `sk` = `{startTime in ns, 19 digits}#{request_id}`, with `doc` and the
//!   filter attributes `api_key`, `user`, `team_id`. A pointer `spendlog#{request_id}`
//!   (`row_pk`, `row_sk`) makes rows idempotent on the request id (a rewrite with another
//!   `startTime` deletes the old row) and serves `request_id` lookups. Both expire through `ttl`
//!   (`startTime` + `ROUTEIQ_SPEND_LOG_TTL_DAYS`, default 90).
//!
//! ## Calls and consistency
//! | call | DynamoDB requests |
//! | --- | --- |
//! | `get_*`, `key_by_alias` | `GetItem` (alias: two), strongly consistent |
//! | `insert_key`, `update_key`, `delete_key` | `TransactWriteItems` of the key, its alias claims and its directory entry (updates and deletes read the key first, and retry when it changed in between) |
//! | `update_*` | `SET` of everything but `spend`: a charge landing meanwhile is kept |
//! | `add_spend` | per charge, [`CONCURRENCY`] at a time: `UpdateItem ADD spend, SET chg_{writer} = seq` if the entity exists, its period has not ended and the writer's mark is below the charge's number; else (the old item comes back with the failed condition) nothing when the mark says it was applied, or a conditional `SET spend = amount, budget_reset_at = next, chg_{writer} = seq` on the old `budget_reset_at`, so one instance restarts the period and the others add to it |
//! | `list_keys`, `list_teams` | `Query` of the directory + `BatchGetItem` |
//! | `write_spend_logs` | per row: `PutItem` of the row and of the pointer (old pointer returned) |
//! | `spend_logs` | per day of the range, newest first, one `Query` per shard (`sk` range, filter expression for key, user and team); with a `limit` day by day until it has enough, else [`DAYS_AT_ONCE`] days at once; `request_id`: two `GetItem`s |
//!
//! Costs: a spend-log query filtered by key, user or team reads (and pays for) every row of its
//! time range, before the filter; a range without `start` covers the retention period (about
//! 90 × 4 `Query`s, most of them on empty partitions).
//!
//! Idempotent charges: each entity item holds one number attribute per writer that charged it
//! (`chg_{writer}`, the last [`Charge::seq`] applied, microseconds since the epoch), set in the
//! charge's own `UpdateItem`, so a retried charge finds its mark and is not applied again;
//! one condition, no transaction, no extra item. Marks older than [`CHARGE_ID_RETENTION`] are
//! removed by the next charge that sees them (a few dozen bytes per writer of the last day).
//!
//! Errors: no answer, throttling and service errors are [`KeyStoreError::Unavailable`];
//! unreadable items [`KeyStoreError::Corrupt`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::model::{Charge, Entity, KeyRecord, Limits, SpendLog, TeamRecord, UserRecord};
use super::store::{
    CHARGE_ID_RETENTION, KeyQuery, KeyStore, KeyStoreError, Page, SpendLogQuery, next_reset,
};
use crate::settings::EnvProblem;

/// Default `ROUTEIQ_SPEND_LOG_TTL_DAYS`.
pub const DEFAULT_SPEND_LOG_TTL_DAYS: u32 = 90;
/// Longest `ROUTEIQ_SPEND_LOG_TTL_DAYS` (ten years).
pub const MAX_SPEND_LOG_TTL_DAYS: u32 = 3650;
/// Partitions each day's spend-log rows are spread over (a partition takes about 1000 writes
/// a second, and rows of one day all go to its tail).
pub const SPEND_LOG_SHARDS: u32 = 4;
/// Requests one call keeps in flight (charges, spend-log rows).
pub const CONCURRENCY: usize = 8;
/// Days a spend-log query without a limit reads at once (each one `Query` per shard).
pub const DAYS_AT_ONCE: usize = 4;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_ATTEMPTS: u32 = 3;
/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_LIMIT: usize = 100;
/// Times a read-then-write retries when the item changed in between (or a transaction
/// collided with another).
const RETRIES: usize = 8;

/// The sort key of records, alias claims and pointers (one item per partition).
const RECORD_SK: &str = "#";
const PK: &str = "pk";
const SK: &str = "sk";
const DOC: &str = "doc";
const SPEND: &str = "spend";
const RESET: &str = "budget_reset_at";
const DURATION: &str = "budget_duration";
const ALIAS: &str = "key_alias";
const TOKEN: &str = "token";
const TTL: &str = "ttl";
/// Prefix of the attributes of an entity that hold, per writer, the last charge applied
/// (`chg_{writer}` = its [`Charge::seq`]).
const CHARGE_MARK: &str = "chg_";
/// Most old charge marks removed at once.
const MAX_MARKS_FORGOTTEN: usize = 50;
const ROW_PK: &str = "row_pk";
const ROW_SK: &str = "row_sk";
const KEYS_DIR: &str = "keys";
const TEAMS_DIR: &str = "teams";

type Item = HashMap<String, AttributeValue>;

/// Where [`DynamoDbKeyStore`] lives, from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamoDbKeysConfig {
    /// `ROUTEIQ_KEYS_TABLE`, else `{ROUTEIQ_STATE_TABLE}-keys`.
    pub table: String,
    /// `ROUTEIQ_STATE_PREFIX` (default none).
    pub prefix: String,
    /// `ROUTEIQ_SPEND_LOG_TTL_DAYS` (default [`DEFAULT_SPEND_LOG_TTL_DAYS`]).
    pub spend_log_ttl_days: u32,
    /// `ROUTEIQ_STATE_CREATE_TABLE=true`: [`DynamoDbKeyStore::create_table_if_missing`].
    pub create_table: bool,
}

impl DynamoDbKeysConfig {
    /// The table's settings, or `None` when neither `ROUTEIQ_KEYS_TABLE` nor
    /// `ROUTEIQ_STATE_TABLE` is set.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, EnvProblem> {
        let set = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let table = match (set("ROUTEIQ_KEYS_TABLE"), set("ROUTEIQ_STATE_TABLE")) {
            (Some(t), _) => t,
            (None, Some(state)) => format!("{state}-keys"),
            (None, None) => return Ok(None),
        };
        let spend_log_ttl_days = match set("ROUTEIQ_SPEND_LOG_TTL_DAYS") {
            None => DEFAULT_SPEND_LOG_TTL_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_SPEND_LOG_TTL_DAYS).contains(d))
                .ok_or_else(|| EnvProblem {
                    var: "ROUTEIQ_SPEND_LOG_TTL_DAYS".into(),
                    message: format!(
                        "'{v}' is not a whole number of days from 1 to {MAX_SPEND_LOG_TTL_DAYS}"
                    ),
                })?,
        };
        Ok(Some(DynamoDbKeysConfig {
            table,
            prefix: env("ROUTEIQ_STATE_PREFIX").unwrap_or_default(),
            spend_log_ttl_days,
            create_table: set("ROUTEIQ_STATE_CREATE_TABLE")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }))
    }
}

/// See the module docs.
pub struct DynamoDbKeyStore {
    client: Client,
    table: String,
    prefix: String,
    spend_log_ttl: ChronoDuration,
}

fn unavailable<E: std::fmt::Debug + ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: &SdkError<E>,
) -> KeyStoreError {
    let detail = match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or_default()
        ),
        None => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(e)
        ),
    };
    KeyStoreError::Unavailable(format!("dynamodb {op}: {detail}"))
}

fn is_condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn build_err(e: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Unavailable(format!("dynamodb request: {e}"))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A USD amount as a DynamoDB number: Rust prints the shortest decimal that reads back as the
/// same `f64`, never in exponent form.
fn usd(v: f64) -> AttributeValue {
    if v == 0.0 || !v.is_finite() {
        n(0)
    } else {
        n(v)
    }
}

fn str_attr<'a>(item: &'a Item, attr: &str) -> Option<&'a str> {
    item.get(attr)?.as_s().ok().map(String::as_str)
}

/// A number attribute: `Ok(None)` when absent, `Err` when not a number.
fn num_attr<T: std::str::FromStr>(item: &Item, attr: &str) -> Result<Option<T>, String> {
    match item.get(attr) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{attr} '{v}' is not a number")),
        Some(_) => Err(format!("{attr} is not a number")),
    }
}

fn corrupt(item: &Item, why: impl std::fmt::Display) -> KeyStoreError {
    KeyStoreError::Corrupt(format!(
        "{}: {why}",
        str_attr(item, PK).unwrap_or("(no pk)")
    ))
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `t` as a sort-key prefix that orders like time: nanoseconds since the epoch, 19 digits.
fn time_key(t: DateTime<Utc>) -> String {
    let ns = t
        .timestamp_nanos_opt()
        .unwrap_or(if t.timestamp() < 0 { 0 } else { i64::MAX });
    format!("{:019}", ns.max(0))
}

/// FNV-1a: a hash that stays the same across Rust releases (rows must keep their shard).
fn shard_of(request_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in request_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SPEND_LOG_SHARDS
}

/// A record stored as `doc` + `spend` + `budget_reset_at`.
trait Stored: Serialize + DeserializeOwned {
    fn limits(&self) -> &Limits;
    fn limits_mut(&mut self) -> &mut Limits;
}

impl Stored for KeyRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }
}

impl Stored for TeamRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }
}

impl Stored for UserRecord {
    fn limits(&self) -> &Limits {
        &self.limits
    }
    fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }
}

/// The record's JSON without the fields that live in attributes of their own.
fn doc_of<R: Stored>(r: &R) -> Result<String, KeyStoreError> {
    let mut v = serde_json::to_value(r)
        .map_err(|e| KeyStoreError::Corrupt(format!("record not serializable: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove(SPEND);
        o.remove(RESET);
    }
    serde_json::to_string(&v)
        .map_err(|e| KeyStoreError::Corrupt(format!("record not serializable: {e}")))
}

fn decode<R: Stored>(item: &Item) -> Result<R, KeyStoreError> {
    let doc = str_attr(item, DOC).ok_or_else(|| corrupt(item, "no doc attribute"))?;
    let mut r: R = serde_json::from_str(doc).map_err(|e| corrupt(item, e))?;
    let spend: Option<f64> = num_attr(item, SPEND).map_err(|e| corrupt(item, e))?;
    let reset: Option<i64> = num_attr(item, RESET).map_err(|e| corrupt(item, e))?;
    let l = r.limits_mut();
    l.spend = spend.unwrap_or(0.0);
    l.budget_reset_at = match reset {
        None => None,
        Some(ms) => Some(
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| corrupt(item, format!("{RESET} {ms} is out of range")))?,
        ),
    };
    Ok(r)
}

/// An update, condition or key-condition expression with its placeholders (DynamoDB refuses
/// unused ones, so only what is used is registered).
#[derive(Default)]
struct Expr {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// `#attr` (attribute names here are plain identifiers).
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    /// `:key`.
    fn value(&mut self, key: &str, v: AttributeValue) -> String {
        let placeholder = format!(":{key}");
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        let value = self.value(&format!("set_{attr}"), v);
        self.set.push(format!("{name} = {value}"));
        self
    }

    fn set_or_remove(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, v),
            None => {
                let name = self.name(attr);
                self.remove.push(name);
                self
            }
        }
    }

    fn add(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        let value = self.value(&format!("add_{attr}"), v);
        self.add.push(format!("{name} {value}"));
        self
    }

    fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }

    /// `attribute_exists(pk)`.
    fn exists(&mut self) -> String {
        format!("attribute_exists({})", self.name(PK))
    }

    /// `attribute_not_exists(pk)`.
    fn absent(&mut self) -> String {
        format!("attribute_not_exists({})", self.name(PK))
    }

    /// The attribute is `v`, or absent for `None`.
    fn is(&mut self, attr: &str, key: &str, v: Option<AttributeValue>) -> String {
        let name = self.name(attr);
        match v {
            Some(v) => format!("{name} = {}", self.value(key, v)),
            None => format!("attribute_not_exists({name})"),
        }
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// How a transaction ended when DynamoDB cancelled it for a condition: each item's
/// cancellation code (`None`, `ConditionalCheckFailed`...), empty when the service did not say.
struct Cancelled(Vec<String>);

impl Cancelled {
    /// Whether item `i`'s condition failed (`None` when the reasons are unknown).
    fn failed(&self, i: usize) -> Option<bool> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.0.get(i).is_some_and(|c| c == "ConditionalCheckFailed"))
    }
}

/// What `/key/list` filters and sorts on, in the `keys` directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyDirEntry {
    #[serde(default)]
    key_alias: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

impl KeyDirEntry {
    fn of(k: &KeyRecord) -> KeyDirEntry {
        KeyDirEntry {
            key_alias: k.key_alias.clone(),
            user_id: k.user_id.clone(),
            team_id: k.team_id.clone(),
            created_at: k.created_at,
        }
    }

    fn as_record(&self, token: &str) -> KeyRecord {
        KeyRecord {
            token: token.to_string(),
            key_alias: self.key_alias.clone(),
            user_id: self.user_id.clone(),
            team_id: self.team_id.clone(),
            created_at: self.created_at,
            ..KeyRecord::default()
        }
    }
}

fn alias_taken(alias: Option<&str>) -> KeyStoreError {
    KeyStoreError::Conflict(format!(
        "key_alias '{}' is taken by another key",
        alias.unwrap_or_default()
    ))
}

async fn backoff(attempt: usize) {
    let base = 10u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(base + fastrand::u64(0..=base))).await;
}

impl DynamoDbKeyStore {
    /// A store on `table` with a client from the standard AWS configuration chain (env,
    /// profile, the Lambda role; `AWS_ENDPOINT_URL_DYNAMODB` for emulators), over rustls
    /// with ring. `prefix` separates environments sharing a table (may be empty).
    pub async fn from_env(table: impl Into<String>, prefix: impl Into<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::s3::aws_http_client())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
            )
            .load()
            .await;
        Self::new(Client::new(&config), table, prefix)
    }

    /// The store [`DynamoDbKeysConfig`] describes (the table is not contacted).
    pub async fn from_config(config: &DynamoDbKeysConfig) -> Self {
        Self::from_env(config.table.clone(), config.prefix.clone())
            .await
            .with_spend_log_ttl_days(config.spend_log_ttl_days)
    }

    pub fn new(client: Client, table: impl Into<String>, prefix: impl Into<String>) -> Self {
        DynamoDbKeyStore {
            client,
            table: table.into(),
            prefix: prefix.into(),
            spend_log_ttl: ChronoDuration::days(i64::from(DEFAULT_SPEND_LOG_TTL_DAYS)),
        }
    }

    /// How long spend-log rows are kept (from their `startTime`).
    pub fn with_spend_log_ttl_days(mut self, days: u32) -> Self {
        self.spend_log_ttl = ChronoDuration::days(i64::from(days.max(1)));
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (`pk` + `sk`, on-demand billing, TTL on `ttl`) if it does not
    /// exist, and checks the key schema of one that does. For local development and tests;
    /// deployed tables: `infra/dynamodb/README.md`.
    pub async fn create_table_if_missing(&self) -> Result<(), KeyStoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => {
                // A table with another key schema (the state table's `pk` alone) would
                // refuse every request: say so now.
                let schema: Vec<(&str, &KeyType)> = out
                    .table()
                    .map(|t| t.key_schema())
                    .unwrap_or_default()
                    .iter()
                    .map(|k| (k.attribute_name(), k.key_type()))
                    .collect();
                if schema.len() != 2
                    || !schema.contains(&(PK, &KeyType::Hash))
                    || !schema.contains(&(SK, &KeyType::Range))
                {
                    return Err(KeyStoreError::Unavailable(format!(
                        "dynamodb table '{}' has key schema {schema:?}: the keys table needs \
                         partition key 'pk' (S) and sort key 'sk' (S) (set ROUTEIQ_KEYS_TABLE \
                         to a table of its own)",
                        self.table
                    )));
                }
                return Ok(());
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(unavailable("DescribeTable", &e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build_err)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another instance is creating it (and will turn TTL on).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(unavailable("CreateTable", &e)),
        }
        // TTL can only be turned on once the table is active (at once in emulators, seconds
        // in DynamoDB).
        for attempt in 0..40 {
            let status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| unavailable("DescribeTable", &e))?;
            if status
                .table()
                .and_then(|t| t.table_status())
                .is_none_or(|s| *s == TableStatus::Active)
            {
                break;
            }
            if attempt == 39 {
                return Err(KeyStoreError::Unavailable(format!(
                    "dynamodb: table '{}' did not become active",
                    self.table
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(TTL)
            .enabled(true)
            .build()
            .map_err(build_err)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| unavailable("UpdateTimeToLive", &e))?;
        Ok(())
    }

    fn pk(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn key_of(&self, pk: &str, sk: &str) -> Item {
        HashMap::from([(PK.to_string(), s(self.pk(pk))), (SK.to_string(), s(sk))])
    }

    fn record_key(&self, pk: &str) -> Item {
        self.key_of(pk, RECORD_SK)
    }

    fn entity_pk(entity: &Entity) -> String {
        format!("{}#{}", entity.kind(), entity.id())
    }

    /// A record item's attributes (`spend` from the record: inserts).
    fn record_item<R: Stored>(&self, pk: &str, r: &R) -> Result<Item, KeyStoreError> {
        let mut item = self.record_key(pk);
        item.insert(DOC.into(), s(doc_of(r)?));
        let l = r.limits();
        item.insert(SPEND.into(), usd(l.spend));
        if let Some(at) = l.budget_reset_at {
            item.insert(RESET.into(), n(millis(at)));
        }
        if let Some(d) = &l.budget_duration {
            item.insert(DURATION.into(), s(d.clone()));
        }
        Ok(item)
    }

    /// `SET` of everything in a record but `spend` (updates).
    fn record_update<R: Stored>(r: &R, e: &mut Expr) -> Result<(), KeyStoreError> {
        let l = r.limits();
        e.set(DOC, s(doc_of(r)?))
            .set_or_remove(RESET, l.budget_reset_at.map(|t| n(millis(t))))
            .set_or_remove(DURATION, l.budget_duration.clone().map(s));
        Ok(())
    }

    async fn get_item(&self, key: Item, op: &str) -> Result<Option<Item>, KeyStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        Ok(out.item)
    }

    async fn get_record<R: Stored>(&self, pk: &str) -> Result<Option<R>, KeyStoreError> {
        self.get_item(self.record_key(pk), "GetItem")
            .await?
            .map(|item| decode(&item))
            .transpose()
    }

    /// Records by partition key, in `pks`' order; missing ones are left out.
    async fn batch_get_records<R: Stored>(&self, pks: &[String]) -> Result<Vec<R>, KeyStoreError> {
        let mut found: HashMap<String, Item> = HashMap::new();
        for chunk in pks.chunks(BATCH_LIMIT) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for pk in chunk {
                request = request.keys(self.record_key(pk));
            }
            let mut pending = Some(request.build().map_err(build_err)?);
            // BatchGetItem may leave keys unprocessed under throttling: ask again for those.
            for attempt in 0..RETRIES {
                let Some(req) = pending.take() else { break };
                if attempt > 0 {
                    backoff(attempt).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchGetItem", &e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Some(pk) = str_attr(item, PK) {
                        found.insert(pk.to_string(), item.clone());
                    }
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
            if pending.is_some() {
                return Err(KeyStoreError::Unavailable(
                    "dynamodb BatchGetItem: keys left unprocessed after retries".into(),
                ));
            }
        }
        pks.iter()
            .filter_map(|pk| found.get(&self.pk(pk)))
            .map(decode)
            .collect()
    }

    /// Every item of a partition (directories).
    async fn query_partition(&self, pk: &str) -> Result<Vec<Item>, KeyStoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::default();
            let cond = format!("{} = {}", e.name(PK), e.value("pk", s(self.pk(pk))));
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", &e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Runs a transaction; `Ok(Err(_))` when a condition failed. Collisions with other
    /// transactions are retried.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, KeyStoreError> {
        for attempt in 0..RETRIES {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<String> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    let conflict = codes
                        .iter()
                        .any(|c| c == "TransactionConflict" || c == "ThrottlingError");
                    if codes.iter().any(|c| c == "ConditionalCheckFailed")
                        || (codes.is_empty()
                            && c.message()
                                .is_some_and(|m| m.contains("ConditionalCheckFailed")))
                    {
                        return Ok(Err(Cancelled(codes)));
                    }
                    if !conflict {
                        return Err(unavailable("TransactWriteItems", &err));
                    }
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => {}
                _ => return Err(unavailable("TransactWriteItems", &err)),
            }
        }
        Err(KeyStoreError::Unavailable(
            "dynamodb TransactWriteItems: kept colliding with other transactions".into(),
        ))
    }

    fn put(
        &self,
        item: Item,
        cond: Option<(String, Expr)>,
    ) -> Result<TransactWriteItem, KeyStoreError> {
        let mut p = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((c, e)) = cond {
            p = p
                .condition_expression(c)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values());
        }
        Ok(TransactWriteItem::builder()
            .put(p.build().map_err(build_err)?)
            .build())
    }

    fn delete(
        &self,
        key: Item,
        cond: Option<(String, Expr)>,
    ) -> Result<TransactWriteItem, KeyStoreError> {
        let mut d = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some((c, e)) = cond {
            d = d
                .condition_expression(c)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values());
        }
        Ok(TransactWriteItem::builder()
            .delete(d.build().map_err(build_err)?)
            .build())
    }

    fn update(&self, key: Item, e: Expr, cond: String) -> Result<TransactWriteItem, KeyStoreError> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(e.update_expression())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// The alias claim for `alias`, owned by `token` (or free).
    fn claim_alias(&self, alias: &str, token: &str) -> Result<TransactWriteItem, KeyStoreError> {
        let mut item = self.record_key(&format!("keyalias#{alias}"));
        item.insert(TOKEN.into(), s(token));
        let mut e = Expr::default();
        let cond = format!("{} OR {}", e.absent(), e.is(TOKEN, "token", Some(s(token))));
        self.put(item, Some((cond, e)))
    }

    /// Removes `token`'s claim on `alias` (a claim that is gone, or another key's, is left).
    fn release_alias(&self, alias: &str, token: &str) -> Result<TransactWriteItem, KeyStoreError> {
        let mut e = Expr::default();
        let cond = format!("{} OR {}", e.absent(), e.is(TOKEN, "token", Some(s(token))));
        self.delete(
            self.record_key(&format!("keyalias#{alias}")),
            Some((cond, e)),
        )
    }

    fn key_dir_put(&self, k: &KeyRecord) -> Result<TransactWriteItem, KeyStoreError> {
        let mut item = self.key_of(KEYS_DIR, &k.token);
        let doc = serde_json::to_string(&KeyDirEntry::of(k))
            .map_err(|e| KeyStoreError::Corrupt(format!("key not serializable: {e}")))?;
        item.insert(DOC.into(), s(doc));
        self.put(item, None)
    }

    /// A key's item as stored, with its alias.
    async fn key_item(&self, token: &str) -> Result<Option<(Item, Option<String>)>, KeyStoreError> {
        Ok(self
            .get_item(self.record_key(&format!("key#{token}")), "GetItem")
            .await?
            .map(|item| {
                let alias = str_attr(&item, ALIAS).map(str::to_string);
                (item, alias)
            }))
    }

    /// Inserts a team or user (and the team's directory entry) unless it exists.
    async fn insert_record<R: Stored>(
        &self,
        pk: &str,
        r: &R,
        dir: Option<(&str, &str)>,
        what: String,
    ) -> Result<(), KeyStoreError> {
        let mut e = Expr::default();
        let cond = e.absent();
        let mut items = vec![self.put(self.record_item(pk, r)?, Some((cond, e)))?];
        if let Some((dir, id)) = dir {
            items.push(self.put(self.key_of(dir, id), None)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(KeyStoreError::Conflict(format!("{what} already exists"))),
        }
    }

    /// Replaces a team's or user's fields but `spend`.
    async fn update_record<R: Stored>(
        &self,
        pk: &str,
        r: &R,
        what: String,
    ) -> Result<(), KeyStoreError> {
        let mut e = Expr::default();
        Self::record_update(r, &mut e)?;
        let cond = e.exists();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.record_key(pk)))
            .update_expression(e.update_expression())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => {
                Err(KeyStoreError::NotFound(format!("{what} not found")))
            }
            Err(err) => Err(unavailable("UpdateItem", &err)),
        }
    }

    /// Applies one charge (see the module docs): the entity's spend with the charge, or as
    /// it is when the charge was applied before; `None` when the entity is gone.
    async fn charge(&self, c: &Charge, now: DateTime<Utc>) -> Result<Option<f64>, KeyStoreError> {
        let amount = if c.amount.is_finite() {
            c.amount
        } else {
            tracing::warn!(entity = %Self::entity_pk(&c.entity), "spend: a charge that is not a number was ignored");
            0.0
        };
        let key = self.record_key(&Self::entity_pk(&c.entity));
        let mark = format!("{CHARGE_MARK}{}", c.writer);
        let now_ms = millis(now);
        // Whether `item` has this charge (its writer's mark at or past its number).
        let applied = |item: &Item| -> Result<bool, KeyStoreError> {
            let last: Option<u64> = num_attr(item, &mark).map_err(|e| corrupt(item, e))?;
            Ok(last.is_some_and(|l| l >= c.seq))
        };
        let spend_of = |item: &Item| -> Result<Option<f64>, KeyStoreError> {
            let spend: Option<f64> = num_attr(item, SPEND).map_err(|e| corrupt(item, e))?;
            Ok(Some(spend.unwrap_or(0.0)))
        };
        for _ in 0..RETRIES {
            // The entity exists, its period has not ended, and the charge is new: add.
            let mut e = Expr::default();
            e.add(SPEND, usd(amount)).set(&mark, n(c.seq));
            let cond = format!(
                "{} AND (attribute_not_exists({reset}) OR {reset} > {now}) AND \
                 (attribute_not_exists({m}) OR {m} < {seq})",
                e.exists(),
                reset = e.name(RESET),
                now = e.value("now", n(now_ms)),
                m = e.name(&mark),
                seq = e.value("seq", n(c.seq)),
            );
            let item = match self.update_returning(&key, &e, cond).await? {
                Ok(new) => {
                    self.forget_old_marks(&key, &new, &mark, now).await;
                    return spend_of(&new);
                }
                Err(None) => return Ok(None),
                Err(Some(old)) => old,
            };
            if applied(&item)? {
                return spend_of(&item);
            }
            let due: Option<i64> = num_attr(&item, RESET).map_err(|e| corrupt(&item, e))?;
            let Some(due_ms) = due.filter(|d| *d <= now_ms) else {
                // Another instance restarted the period since: add to the new one.
                continue;
            };
            let due_at = DateTime::from_timestamp_millis(due_ms)
                .ok_or_else(|| corrupt(&item, format!("{RESET} {due_ms} is out of range")))?;
            let next = next_reset(str_attr(&item, DURATION), due_at, now);
            // The period ended: restart it, unless another instance just did.
            let mut e = Expr::default();
            e.set(SPEND, usd(amount))
                .set_or_remove(RESET, next.map(|t| n(millis(t))))
                .set(&mark, n(c.seq));
            let cond = format!(
                "{} = {} AND (attribute_not_exists({m}) OR {m} < {seq})",
                e.name(RESET),
                e.value("due", n(due_ms)),
                m = e.name(&mark),
                seq = e.value("seq", n(c.seq)),
            );
            match self.update_returning(&key, &e, cond).await? {
                Ok(new) => return spend_of(&new),
                Err(None) => return Ok(None),
                Err(Some(old)) if applied(&old)? => return spend_of(&old),
                Err(Some(_)) => continue,
            }
        }
        Err(KeyStoreError::Unavailable(format!(
            "dynamodb: {} kept changing under concurrent charges",
            Self::entity_pk(&c.entity)
        )))
    }

    /// A conditional `UpdateItem`: `Ok(item after)`, or when the condition failed,
    /// `Err(item before)` (`None`: there is no item).
    async fn update_returning(
        &self,
        key: &Item,
        e: &Expr,
        cond: String,
    ) -> Result<Result<Item, Option<Item>>, KeyStoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression(e.update_expression())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(item) if !item.is_empty() => Ok(Err(Some(item.clone()))),
                    // Emulators that do not return the item: read it.
                    _ => Ok(Err(self.get_item(key.clone(), "GetItem").await?)),
                },
                _ => Err(unavailable("UpdateItem", &err)),
            },
        }
    }

    /// Removes the charge marks on `item` older than [`CHARGE_ID_RETENTION`] (each only if
    /// unchanged; `keep`, the one just written, stays), so an entity keeps one mark per writer
    /// of the last day. Best effort.
    async fn forget_old_marks(&self, key: &Item, item: &Item, keep: &str, now: DateTime<Utc>) {
        let oldest = u64::try_from((now - CHARGE_ID_RETENTION).timestamp_micros()).unwrap_or(0);
        let old: Vec<(&String, &AttributeValue)> = item
            .iter()
            .filter(|(name, v)| {
                name.starts_with(CHARGE_MARK)
                    && name.as_str() != keep
                    && v.as_n()
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|seq| seq < oldest)
            })
            .take(MAX_MARKS_FORGOTTEN)
            .collect();
        if old.is_empty() {
            return;
        }
        let mut e = Expr::default();
        let mut conds = Vec::new();
        for (i, (name, v)) in old.iter().enumerate() {
            let placeholder = e.name(name);
            e.remove.push(placeholder.clone());
            conds.push(format!(
                "{placeholder} = {}",
                e.value(&format!("old{i}"), (*v).clone())
            ));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression(e.update_expression())
            .condition_expression(conds.join(" AND "))
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await;
        match out {
            Ok(_) => tracing::debug!(marks = old.len(), "spend: old charge marks removed"),
            Err(err) if is_condition_failed(&err) => {}
            Err(err) => {
                tracing::warn!(error = %unavailable("UpdateItem", &err), "spend: old charge marks not removed")
            }
        }
    }

    /// Writes one spend-log row and its pointer (see the module docs).
    async fn write_spend_log(&self, row: &SpendLog) -> Result<(), KeyStoreError> {
        let day = row.start_time.format("%Y-%m-%d");
        let row_pk = self.pk(&format!("spendday#{day}#{}", shard_of(&row.request_id)));
        let row_sk = format!("{}#{}", time_key(row.start_time), row.request_id);
        let ttl = n((row.start_time + self.spend_log_ttl).timestamp().max(0));
        let doc = serde_json::to_string(row)
            .map_err(|e| KeyStoreError::Corrupt(format!("spend log not serializable: {e}")))?;
        let mut item: Item = HashMap::from([
            (PK.to_string(), s(row_pk.clone())),
            (SK.to_string(), s(row_sk.clone())),
            (DOC.to_string(), s(doc)),
            ("api_key".to_string(), s(row.api_key.clone())),
            (TTL.to_string(), ttl.clone()),
        ]);
        if let Some(u) = &row.user {
            item.insert("user".into(), s(u.clone()));
        }
        if let Some(t) = &row.team_id {
            item.insert("team_id".into(), s(t.clone()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", &e))?;
        let mut pointer = self.record_key(&format!("spendlog#{}", row.request_id));
        pointer.insert(ROW_PK.into(), s(row_pk.clone()));
        pointer.insert(ROW_SK.into(), s(row_sk.clone()));
        pointer.insert(TTL.into(), ttl);
        let old = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(pointer))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("PutItem", &e))?;
        // The request was logged before under another start time: drop that row.
        if let Some(old) = old.attributes()
            && let (Some(old_pk), Some(old_sk)) = (str_attr(old, ROW_PK), str_attr(old, ROW_SK))
            && (old_pk != row_pk || old_sk != row_sk)
        {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s(old_pk))
                .key(SK, s(old_sk))
                .send()
                .await
                .map_err(|e| unavailable("DeleteItem", &e))?;
        }
        Ok(())
    }

    /// The rows of one shard of one day in `[lo, hi)` matching the filters, newest first:
    /// all of them, or (`limit` > 0) at least the newest `limit` and every row tied with the
    /// last of those.
    async fn query_spend_shard(
        &self,
        partition: String,
        lo: &str,
        hi: &str,
        q: &SpendLogQuery,
    ) -> Result<Vec<SpendLog>, KeyStoreError> {
        let mut rows: Vec<SpendLog> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::default();
            let key_cond = format!(
                "{} = {} AND {} BETWEEN {} AND {}",
                e.name(PK),
                e.value("pk", s(partition.clone())),
                e.name(SK),
                e.value("lo", s(lo)),
                e.value("hi", s(hi)),
            );
            let mut filters = Vec::new();
            for (attr, v) in [
                ("api_key", &q.api_key),
                ("user", &q.user_id),
                ("team_id", &q.team_id),
            ] {
                if let Some(v) = v {
                    filters.push(format!(
                        "{} = {}",
                        e.name(attr),
                        e.value(attr, s(v.clone()))
                    ));
                }
            }
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_cond)
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take());
            if !filters.is_empty() {
                req = req.filter_expression(filters.join(" AND "));
            }
            if q.limit > 0 {
                // One more than asked, to see whether the next row ties with the last.
                req = req.limit(i32::try_from(q.limit.saturating_add(1).min(1000)).unwrap_or(1000));
            }
            let out = req
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .send()
                .await
                .map_err(|e| unavailable("Query", &e))?;
            for item in out.items() {
                let doc = str_attr(item, DOC).ok_or_else(|| corrupt(item, "no doc attribute"))?;
                let row: SpendLog = serde_json::from_str(doc).map_err(|e| corrupt(item, e))?;
                rows.push(row);
            }
            let more = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            let enough = q.limit > 0
                && rows.len() > q.limit
                && rows.last().map(|r| r.start_time) < rows.get(q.limit - 1).map(|r| r.start_time);
            match more {
                Some(k) if !enough => start = Some(k),
                _ => return Ok(rows),
            }
        }
    }
}

fn sort_keys_newest_first(entries: &mut [(String, KeyDirEntry)]) {
    entries.sort_by(|(ta, a), (tb, b)| b.created_at.cmp(&a.created_at).then_with(|| ta.cmp(tb)));
}

fn sort_logs_newest_first(rows: &mut [SpendLog]) {
    rows.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
}

#[async_trait]
impl KeyStore for DynamoDbKeyStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    async fn get_key(&self, token: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        self.get_record(&format!("key#{token}")).await
    }

    async fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        let Some(claim) = self
            .get_item(self.record_key(&format!("keyalias#{alias}")), "GetItem")
            .await?
        else {
            return Ok(None);
        };
        let token = str_attr(&claim, TOKEN).ok_or_else(|| corrupt(&claim, "no token"))?;
        // The claim and the key are written together; a key whose alias moved on (a claim
        // seen before the transaction that released it) does not answer for it.
        Ok(self
            .get_key(token)
            .await?
            .filter(|k| k.key_alias.as_deref() == Some(alias)))
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let mut item = self.record_item(&format!("key#{}", key.token), key)?;
        if let Some(a) = &key.key_alias {
            item.insert(ALIAS.into(), s(a.clone()));
        }
        let mut e = Expr::default();
        let cond = e.absent();
        let mut items = vec![self.put(item, Some((cond, e)))?];
        if let Some(a) = &key.key_alias {
            let mut claim = self.record_key(&format!("keyalias#{a}"));
            claim.insert(TOKEN.into(), s(key.token.clone()));
            let mut e = Expr::default();
            let cond = e.absent();
            items.push(self.put(claim, Some((cond, e)))?);
        }
        items.push(self.key_dir_put(key)?);
        let Err(cancelled) = self.transact(items).await? else {
            return Ok(());
        };
        let key_exists = match cancelled.failed(0) {
            Some(failed) => failed,
            None => self.key_item(&key.token).await?.is_some(),
        };
        if key_exists {
            Err(KeyStoreError::Conflict("this key already exists".into()))
        } else {
            Err(alias_taken(key.key_alias.as_deref()))
        }
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let pk = format!("key#{}", key.token);
        for _ in 0..RETRIES {
            let Some((_, old_alias)) = self.key_item(&key.token).await? else {
                return Err(KeyStoreError::NotFound("key not found".into()));
            };
            let new_alias = key.key_alias.as_deref();
            let mut e = Expr::default();
            Self::record_update(key, &mut e)?;
            e.set_or_remove(ALIAS, new_alias.map(s));
            // Unchanged since it was read (its alias claims below are still right).
            let cond = format!(
                "{} AND {}",
                e.exists(),
                e.is(ALIAS, "old_alias", old_alias.clone().map(s))
            );
            let mut items = vec![self.update(self.record_key(&pk), e, cond)?];
            let claim_at = new_alias.map(|_| items.len());
            if let Some(a) = new_alias {
                items.push(self.claim_alias(a, &key.token)?);
            }
            if let Some(old) = old_alias.as_deref()
                && Some(old) != new_alias
            {
                items.push(self.release_alias(old, &key.token)?);
            }
            items.push(self.key_dir_put(key)?);
            let Err(cancelled) = self.transact(items).await? else {
                return Ok(());
            };
            match (
                cancelled.failed(0),
                claim_at.and_then(|i| cancelled.failed(i)),
            ) {
                // The key changed (or went) since it was read: read it again.
                (Some(true), _) => continue,
                (_, Some(true)) => return Err(alias_taken(new_alias)),
                _ => {
                    // Reasons unknown: an alias another key holds is a conflict, else retry.
                    if let Some(a) = new_alias
                        && let Some(claim) = self
                            .get_item(self.record_key(&format!("keyalias#{a}")), "GetItem")
                            .await?
                        && str_attr(&claim, TOKEN) != Some(key.token.as_str())
                    {
                        return Err(alias_taken(new_alias));
                    }
                }
            }
        }
        Err(KeyStoreError::Unavailable(
            "dynamodb: the key kept changing under concurrent updates".into(),
        ))
    }

    async fn delete_key(&self, token: &str) -> Result<bool, KeyStoreError> {
        for _ in 0..RETRIES {
            let Some((_, alias)) = self.key_item(token).await? else {
                return Ok(false);
            };
            let mut e = Expr::default();
            let cond = format!(
                "{} AND {}",
                e.exists(),
                e.is(ALIAS, "alias", alias.clone().map(s))
            );
            let mut items =
                vec![self.delete(self.record_key(&format!("key#{token}")), Some((cond, e)))?];
            if let Some(a) = alias.as_deref() {
                items.push(self.release_alias(a, token)?);
            }
            items.push(self.delete(self.key_of(KEYS_DIR, token), None)?);
            if self.transact(items).await?.is_ok() {
                return Ok(true);
            }
        }
        Err(KeyStoreError::Unavailable(
            "dynamodb: the key kept changing while being deleted".into(),
        ))
    }

    async fn list_keys(&self, q: &KeyQuery) -> Result<Page<KeyRecord>, KeyStoreError> {
        let mut entries: Vec<(String, KeyDirEntry)> = Vec::new();
        for item in self.query_partition(KEYS_DIR).await? {
            let token = str_attr(&item, SK).ok_or_else(|| corrupt(&item, "no sk"))?;
            let entry: KeyDirEntry = match str_attr(&item, DOC) {
                Some(doc) => serde_json::from_str(doc).map_err(|e| corrupt(&item, e))?,
                None => KeyDirEntry::default(),
            };
            if q.matches(&entry.as_record(token)) {
                entries.push((token.to_string(), entry));
            }
        }
        sort_keys_newest_first(&mut entries);
        let size = q.size.max(1);
        let pks: Vec<String> = entries
            .iter()
            .skip(q.page.saturating_sub(1).saturating_mul(size))
            .take(size)
            .map(|(token, _)| format!("key#{token}"))
            .collect();
        Ok(Page {
            items: self.batch_get_records(&pks).await?,
            total: entries.len(),
        })
    }

    async fn get_team(&self, team_id: &str) -> Result<Option<TeamRecord>, KeyStoreError> {
        self.get_record(&format!("team#{team_id}")).await
    }

    async fn insert_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        self.insert_record(
            &format!("team#{}", team.team_id),
            team,
            Some((TEAMS_DIR, &team.team_id)),
            format!("team_id '{}'", team.team_id),
        )
        .await
    }

    async fn update_team(&self, team: &TeamRecord) -> Result<(), KeyStoreError> {
        self.update_record(
            &format!("team#{}", team.team_id),
            team,
            format!("team_id '{}'", team.team_id),
        )
        .await
    }

    async fn delete_team(&self, team_id: &str) -> Result<bool, KeyStoreError> {
        let mut e = Expr::default();
        let cond = e.exists();
        let items = vec![
            self.delete(self.record_key(&format!("team#{team_id}")), Some((cond, e)))?,
            self.delete(self.key_of(TEAMS_DIR, team_id), None)?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>, KeyStoreError> {
        let mut ids: Vec<String> = self
            .query_partition(TEAMS_DIR)
            .await?
            .iter()
            .filter_map(|item| str_attr(item, SK).map(|id| format!("team#{id}")))
            .collect();
        ids.sort();
        let mut teams: Vec<TeamRecord> = self.batch_get_records(&ids).await?;
        teams.sort_by(|a, b| a.team_id.cmp(&b.team_id));
        Ok(teams)
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, KeyStoreError> {
        self.get_record(&format!("user#{user_id}")).await
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        let mut e = Expr::default();
        let cond = e.absent();
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(
                self.record_item(&format!("user#{}", user.user_id), user)?,
            ))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(KeyStoreError::Conflict(format!(
                "user_id '{}' already exists",
                user.user_id
            ))),
            Err(err) => Err(unavailable("PutItem", &err)),
        }
    }

    async fn update_user(&self, user: &UserRecord) -> Result<(), KeyStoreError> {
        self.update_record(
            &format!("user#{}", user.user_id),
            user,
            format!("user_id '{}'", user.user_id),
        )
        .await
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool, KeyStoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.record_key(&format!("user#{user_id}"))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", &e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn add_spend(
        &self,
        charges: &[Charge],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<f64>>, KeyStoreError> {
        // Collected first: a lazy `map` here makes the future not `Send` to the compiler.
        let calls: Vec<_> = charges.iter().map(|c| self.charge(c, now)).collect();
        futures::stream::iter(calls)
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn reset_spend(
        &self,
        entity: &Entity,
        spend: f64,
        budget_reset_at: Option<DateTime<Utc>>,
    ) -> Result<(), KeyStoreError> {
        let mut e = Expr::default();
        e.set(SPEND, usd(spend))
            .set_or_remove(RESET, budget_reset_at.map(|t| n(millis(t))));
        let cond = e.exists();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.record_key(&Self::entity_pk(entity))))
            .update_expression(e.update_expression())
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(KeyStoreError::NotFound(format!(
                "{} '{}' not found",
                entity.kind(),
                entity.id()
            ))),
            Err(err) => Err(unavailable("UpdateItem", &err)),
        }
    }

    async fn write_spend_logs(&self, rows: &[SpendLog]) -> Result<(), KeyStoreError> {
        // One write per request id: the last row given wins, as a rewrite does.
        let mut latest: HashMap<&str, &SpendLog> = HashMap::new();
        for r in rows {
            latest.insert(r.request_id.as_str(), r);
        }
        let calls: Vec<_> = latest
            .into_values()
            .map(|r| self.write_spend_log(r))
            .collect();
        let results: Vec<Result<(), KeyStoreError>> = futures::stream::iter(calls)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn spend_logs(&self, q: &SpendLogQuery) -> Result<Vec<SpendLog>, KeyStoreError> {
        if let Some(id) = &q.request_id {
            let Some(pointer) = self
                .get_item(self.record_key(&format!("spendlog#{id}")), "GetItem")
                .await?
            else {
                return Ok(Vec::new());
            };
            let (Some(row_pk), Some(row_sk)) =
                (str_attr(&pointer, ROW_PK), str_attr(&pointer, ROW_SK))
            else {
                return Err(corrupt(&pointer, "no row_pk/row_sk"));
            };
            let key = HashMap::from([(PK.to_string(), s(row_pk)), (SK.to_string(), s(row_sk))]);
            let Some(item) = self.get_item(key, "GetItem").await? else {
                return Ok(Vec::new());
            };
            let doc = str_attr(&item, DOC).ok_or_else(|| corrupt(&item, "no doc attribute"))?;
            let row: SpendLog = serde_json::from_str(doc).map_err(|e| corrupt(&item, e))?;
            return Ok(if q.matches(&row) {
                vec![row]
            } else {
                Vec::new()
            });
        }
        // Rows older than the retention period are expired (DynamoDB deletes them within
        // days); rows more than a day ahead of this clock are not looked for.
        let now = Utc::now();
        let oldest = now - self.spend_log_ttl - ChronoDuration::days(1);
        let lo = q.start.map_or(oldest, |s| s.max(oldest));
        let hi = q.end.map_or(now + ChronoDuration::days(1), |e| {
            e.min(now + ChronoDuration::days(1))
        });
        if lo >= hi {
            return Ok(Vec::new());
        }
        let (lo_key, hi_key) = (time_key(lo), time_key(hi));
        // Days newest first; with a limit one day at a time (older days hold only older
        // rows, so the walk stops once it has enough), else several at once.
        let mut days: Vec<NaiveDate> = Vec::new();
        let (first_day, mut day) = (lo.date_naive(), hi.date_naive());
        while day >= first_day {
            days.push(day);
            let Some(previous) = day.pred_opt() else {
                break;
            };
            day = previous;
        }
        let per_round = if q.limit > 0 { 1 } else { DAYS_AT_ONCE };
        let mut rows: Vec<SpendLog> = Vec::new();
        for round in days.chunks(per_round) {
            let queries = round.iter().flat_map(|day| {
                (0..SPEND_LOG_SHARDS).map(move |shard| {
                    self.pk(&format!("spendday#{}#{shard}", day.format("%Y-%m-%d")))
                })
            });
            let found: Vec<Result<Vec<SpendLog>, KeyStoreError>> = futures::future::join_all(
                queries.map(|partition| self.query_spend_shard(partition, &lo_key, &hi_key, q)),
            )
            .await;
            for f in found {
                rows.extend(f?);
            }
            if q.limit > 0 && rows.len() >= q.limit {
                break;
            }
        }
        sort_logs_newest_first(&mut rows);
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

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn config_from_env() {
        assert_eq!(DynamoDbKeysConfig::from_env(&env(&[])).unwrap(), None);
        let c = DynamoDbKeysConfig::from_env(&env(&[("ROUTEIQ_STATE_TABLE", "state")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.table, "state-keys");
        assert_eq!(c.spend_log_ttl_days, DEFAULT_SPEND_LOG_TTL_DAYS);
        assert!(!c.create_table);
        let c = DynamoDbKeysConfig::from_env(&env(&[
            ("ROUTEIQ_STATE_TABLE", "state"),
            ("ROUTEIQ_KEYS_TABLE", "keys"),
            ("ROUTEIQ_STATE_PREFIX", "prod#"),
            ("ROUTEIQ_SPEND_LOG_TTL_DAYS", "7"),
            ("ROUTEIQ_STATE_CREATE_TABLE", "TRUE"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            c,
            DynamoDbKeysConfig {
                table: "keys".into(),
                prefix: "prod#".into(),
                spend_log_ttl_days: 7,
                create_table: true,
            }
        );
        for bad in ["0", "-1", "x", "99999"] {
            let vars = [
                ("ROUTEIQ_KEYS_TABLE", "k"),
                ("ROUTEIQ_SPEND_LOG_TTL_DAYS", bad),
            ];
            let e = DynamoDbKeysConfig::from_env(&env(&vars)).unwrap_err();
            assert_eq!(e.var, "ROUTEIQ_SPEND_LOG_TTL_DAYS", "{bad}");
        }
    }

    #[test]
    fn records_round_trip_through_items() {
        let mut k = KeyRecord {
            token: "abc".into(),
            key_alias: Some("app".into()),
            ..KeyRecord::default()
        };
        k.limits.spend = 1.25;
        k.limits.budget_duration = Some("1d".into());
        k.limits.budget_reset_at = Some(Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap());
        let doc = doc_of(&k).unwrap();
        assert!(
            !doc.contains("spend") && !doc.contains("budget_reset_at"),
            "{doc}"
        );
        let item: Item = HashMap::from([
            (DOC.to_string(), s(doc)),
            (SPEND.to_string(), usd(1.25)),
            (
                RESET.to_string(),
                n(millis(k.limits.budget_reset_at.unwrap())),
            ),
        ]);
        assert_eq!(decode::<KeyRecord>(&item).unwrap(), k);
        let mut bad = item.clone();
        bad.insert(SPEND.into(), s("x"));
        assert!(matches!(
            decode::<KeyRecord>(&bad),
            Err(KeyStoreError::Corrupt(_))
        ));
        bad.insert(DOC.into(), s("{"));
        assert!(matches!(
            decode::<KeyRecord>(&bad),
            Err(KeyStoreError::Corrupt(_))
        ));
    }

    #[test]
    fn amounts_and_times_encode_in_order() {
        assert_eq!(usd(0.1), n("0.1"));
        assert_eq!(usd(1e-9), n("0.000000001"));
        assert_eq!(usd(-0.0), n("0"));
        assert_eq!(usd(f64::NAN), n("0"));
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let b = a + ChronoDuration::nanoseconds(1);
        let c = Utc.with_ymd_and_hms(2262, 1, 1, 0, 0, 0).unwrap();
        assert!(time_key(a) < time_key(b) && time_key(b) < time_key(c));
        assert_eq!(time_key(a).len(), 19);
        assert!(shard_of("req-1") < SPEND_LOG_SHARDS);
        assert_eq!(shard_of("req-1"), shard_of("req-1"));
    }

    #[test]
    fn expressions_register_only_what_they_use() {
        let mut e = Expr::default();
        e.set(DOC, s("{}"))
            .set_or_remove(RESET, None)
            .add(SPEND, n(1));
        assert_eq!(
            e.update_expression(),
            "SET #doc = :set_doc REMOVE #budget_reset_at ADD #spend :add_spend"
        );
        assert_eq!(e.values().map(|v| v.len()), Some(2));
        assert_eq!(e.names().map(|v| v.len()), Some(3));
        assert_eq!(Expr::default().values(), None);
    }
}
