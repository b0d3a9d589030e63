//! [`StateStore`] on DynamoDB: one table shared by every gateway instance.
//!
//! ## Table and keys
//! One item per state key, partition key `pk` (string) = `{prefix}{key}`, e.g.
//! `prod#cooldown:gpt-a`, `prod#rpm:gpt-a:29421337` (see `router` for the key patterns). No sort
//! key, no indexes. Attributes:
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `v` | N or S | counter value (N) or stored value (S) |
//! | `ver` | N | version, incremented on every write (conditional writes compare it) |
//! | `exp` | N | expiry, epoch milliseconds (absent: never expires) |
//! | `ttl` | N | expiry, epoch seconds: the table's TTL attribute, so DynamoDB deletes expired items |
//!
//! Kinds of state and their keys (full table with consistency: `infra/dynamodb/README.md`):
//! `cooldown:`, `cb:`/`cb_succ:`/`cb_fail:` (circuit breakers), `rpm:`/`tpm:`/`fail:` (per
//! minute), `inflight:`, `latency:`/`ttft:`, `affinity:{group}:{hash}` (conversation pins,
//! [`crate::router::affinity`]: read in the decision's batch, written when created or moved)
//! and `exp:{experiment}:{arm}:{hour}:{counter}` (experiment counters,
//! [`crate::router::experiment`]: written by `incr_many` in batches).
//!
//! DynamoDB deletes expired items lazily (within hours), so every read and conditional write
//! also checks `exp` itself: an expired item reads as absent, and a counter past its expiry
//! restarts from zero.
//!
//! ## Round trips and consistency
//! | call | DynamoDB request | consistency |
//! | --- | --- | --- |
//! | `incr` | one `UpdateItem` (`ADD`, returns the new value); a second `PutItem` only when the item had expired | atomic across instances |
//! | `incr_many` | one `UpdateItem` per counter as `incr`, 8 in flight at a time | each counter atomic; the batch is not |
//! | `get_counters`, `get_many` | one `BatchGetItem` per 100 keys, `ConsistentRead` | strongly consistent |
//! | `put` | one `UpdateItem` with a condition expression | conditional, atomic |
//! | `delete` | one `DeleteItem` | — |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{Clock, PutCondition, StateStore, Versioned};
use crate::Error;

/// A state call is on the request path: bound it (connect, then the whole operation with
/// retries) so a slow backend turns into a failover, not a slow request.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const MAX_ATTEMPTS: u32 = 2;

/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_LIMIT: usize = 100;
/// `UpdateItem`s an `incr_many` keeps in flight.
const INCR_MANY_CONCURRENCY: usize = 8;
/// Times an `incr` retries when it races with another writer resetting an expired counter.
const RESET_RETRIES: usize = 3;

/// Routing state in a DynamoDB table (see the module docs for the key design).
pub struct DynamoDbStateStore {
    client: Client,
    table: String,
    prefix: String,
    clock: Arc<dyn Clock>,
}

fn state_err<E: std::fmt::Debug + ProvideErrorMetadata>(op: &str, e: &SdkError<E>) -> Error {
    let detail = e
        .as_service_error()
        .and_then(|s| s.message().map(str::to_string))
        .unwrap_or_else(|| format!("{e}"));
    Error::State(format!("dynamodb {op}: {detail}"))
}

fn is_condition_failed<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn num(item: &HashMap<String, AttributeValue>, attr: &str) -> Option<i64> {
    item.get(attr)?.as_n().ok()?.parse().ok()
}

impl DynamoDbStateStore {
    /// A store on `table` with a client from the standard AWS configuration chain (env,
    /// profile, the Lambda role; `AWS_ENDPOINT_URL_DYNAMODB` for emulators), using rustls with
    /// ring. `prefix` separates environments sharing a table (may be empty).
    pub async fn from_env(
        table: impl Into<String>,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
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
        Self::new(Client::new(&config), table, prefix, clock)
    }

    pub fn new(
        client: Client,
        table: impl Into<String>,
        prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        DynamoDbStateStore {
            client,
            table: table.into(),
            prefix: prefix.into(),
            clock,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, TTL on `ttl`) if it does not exist. For local
    /// development and tests; production tables come from the SAM template.
    pub async fn create_table_if_missing(&self) -> Result<(), Error> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match exists {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(state_err("DescribeTable", &e)),
        }
        let attr = AttributeDefinition::builder()
            .attribute_name("pk")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::State(e.to_string()))?;
        let key = KeySchemaElement::builder()
            .attribute_name("pk")
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| Error::State(e.to_string()))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created
            && !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception())
        {
            return Err(state_err("CreateTable", &e));
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("ttl")
            .enabled(true)
            .build()
            .map_err(|e| Error::State(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| state_err("UpdateTimeToLive", &e))?;
        Ok(())
    }

    fn pk(&self, key: &str) -> AttributeValue {
        AttributeValue::S(format!("{}{key}", self.prefix))
    }

    fn expiry(&self, now: u64, ttl: Duration) -> (u64, u64) {
        let exp_ms = now.saturating_add(ttl.as_millis() as u64);
        (exp_ms, exp_ms.div_ceil(1000))
    }

    /// Live items for `keys` (expired ones dropped), by key.
    async fn batch_get(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, Error> {
        let now = self.clock.now_ms() as i64;
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found = HashMap::new();
        for chunk in unique.chunks(BATCH_LIMIT) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for k in chunk {
                request = request.keys(HashMap::from([("pk".to_string(), self.pk(k))]));
            }
            let mut pending = Some(request.build().map_err(|e| Error::State(e.to_string()))?);
            // BatchGetItem may leave keys unprocessed under throttling: ask again for those.
            for attempt in 0..5 {
                let Some(req) = pending.take() else { break };
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
                }
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| state_err("BatchGetItem", &e))?;
                for item in resp
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) else {
                        continue;
                    };
                    let live = num(item, "exp").is_none_or(|exp| exp > now);
                    if live && let Some(key) = pk.strip_prefix(&self.prefix) {
                        found.insert(key.to_string(), item.clone());
                    }
                }
                pending = resp
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
            if pending.is_some() {
                return Err(Error::State(
                    "dynamodb BatchGetItem: keys left unprocessed after retries".into(),
                ));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl StateStore for DynamoDbStateStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error> {
        for _ in 0..RESET_RETRIES {
            let now = self.clock.now_ms();
            let (exp_ms, ttl_s) = self.expiry(now, ttl);
            // Add to a live counter (or create it).
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", self.pk(key))
                .update_expression("SET #exp = :exp, #ttl = :ttl ADD #v :d, #ver :one")
                .condition_expression("attribute_not_exists(#pk) OR #exp > :now")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#v", "v")
                .expression_attribute_names("#ver", "ver")
                .expression_attribute_names("#exp", "exp")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":d", n(delta))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":exp", n(exp_ms))
                .expression_attribute_values(":ttl", n(ttl_s))
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match updated {
                Ok(out) => {
                    return out.attributes().and_then(|a| num(a, "v")).ok_or_else(|| {
                        Error::State(format!("dynamodb: no counter value for '{key}'"))
                    });
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(state_err("UpdateItem", &e)),
            }
            // The item exists but has expired (DynamoDB has not deleted it yet): restart the
            // counter at `delta`, unless another writer restarted it first.
            let reset = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", self.pk(key))
                .item("v", n(delta))
                .item("ver", n(1))
                .item("exp", n(exp_ms))
                .item("ttl", n(ttl_s))
                .condition_expression("#exp <= :now")
                .expression_attribute_names("#exp", "exp")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match reset {
                Ok(_) => return Ok(delta),
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(state_err("PutItem", &e)),
            }
        }
        Err(Error::State(format!(
            "dynamodb: counter '{key}' kept changing under concurrent resets"
        )))
    }

    /// One `UpdateItem` per counter (DynamoDB has no batched update; `TransactWriteItems`
    /// would cost twice the write units and fail as a whole), sent concurrently, at most
    /// [`INCR_MANY_CONCURRENCY`] at a time: a flush of n counters takes about
    /// n / [`INCR_MANY_CONCURRENCY`] round trips instead of n.
    async fn incr_many(&self, deltas: &[(String, i64)], ttl: Duration) -> Result<(), Error> {
        use futures::StreamExt;
        let calls: Vec<_> = deltas
            .iter()
            .map(|(key, delta)| self.incr(key, *delta, ttl))
            .collect();
        let results: Vec<Result<i64, Error>> = futures::stream::iter(calls)
            .buffer_unordered(INCR_MANY_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(|_| ()))
    }

    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        let found = self.batch_get(keys).await?;
        Ok(keys
            .iter()
            .map(|k| found.get(k).and_then(|item| num(item, "v")).unwrap_or(0))
            .collect())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error> {
        let found = self.batch_get(keys).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let item = found.get(k)?;
                let value = match item.get("v")? {
                    AttributeValue::S(s) => s.clone(),
                    AttributeValue::N(n) => n.clone(),
                    _ => return None,
                };
                Some(Versioned {
                    value,
                    version: num(item, "ver").unwrap_or(0).max(0) as u64,
                })
            })
            .collect())
    }

    async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
        cond: PutCondition,
    ) -> Result<bool, Error> {
        let now = self.clock.now_ms();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(key))
            .expression_attribute_names("#v", "v")
            .expression_attribute_names("#ver", "ver")
            .expression_attribute_names("#exp", "exp")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":v", AttributeValue::S(value))
            .expression_attribute_values(":one", n(1));
        req = match ttl {
            Some(ttl) => {
                let (exp_ms, ttl_s) = self.expiry(now, ttl);
                req.update_expression("SET #v = :v, #exp = :exp, #ttl = :ttl ADD #ver :one")
                    .expression_attribute_values(":exp", n(exp_ms))
                    .expression_attribute_values(":ttl", n(ttl_s))
            }
            None => req.update_expression("SET #v = :v REMOVE #exp, #ttl ADD #ver :one"),
        };
        req = match cond {
            PutCondition::Always => req,
            PutCondition::IfAbsent => req
                .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":now", n(now)),
            PutCondition::IfVersion(v) => req
                .condition_expression("#ver = :ver AND (attribute_not_exists(#exp) OR #exp > :now)")
                .expression_attribute_values(":ver", n(v))
                .expression_attribute_values(":now", n(now)),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(state_err("UpdateItem", &e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", self.pk(key))
            .send()
            .await
            .map_err(|e| state_err("DeleteItem", &e))?;
        Ok(())
    }
}
