//! [`StateStore`] on Redis: the state LiteLLM replicas share through `router_settings.redis_*`.
//!
//! - One Redis hash per state key, named `{prefix}{key}` (the prefix defaults to `routeiq:`,
//!   see the gateway's start-up), with fields `n` (a counter), or `s` (a stored value), and
//!   `ver` (the version, incremented on every write). A key holds either `n` or `s`, so an
//!   `incr` on a stored value is an error, as in the other stores.
//! - Expiry is Redis's own (`PEXPIRE`, on the server's clock): an expired key is gone, so it
//!   reads as absent and a counter restarts from zero. The store's callers pass TTLs, never
//!   times, so instances with skewed clocks still agree on what is live.
//! - Writes are Lua scripts (atomic on the server); reads are one pipeline.
//! - Connection: redis-rs's [`ConnectionManager`] (one multiplexed connection, reconnected in
//!   the background after a failure), created lazily so the gateway starts while Redis is
//!   down; connecting and every call are bounded (see the constants), so a dead Redis fails
//!   fast and [`super::FailoverStateStore`] answers from memory meanwhile.
//!
//! ## Round trips
//! | call | Redis | consistency |
//! | --- | --- | --- |
//! | `incr` | one `EVALSHA` (`HINCRBY n`, `HINCRBY ver`, `PEXPIRE`) | atomic across instances |
//! | `incr_many` | one `EVALSHA` per 512 counters, all keys checked before any is written | each script atomic |
//! | `get_counters`, `get_many` | one pipeline of `HGET`/`HMGET`, whatever the number of keys | each key read at one instant |
//! | `put` | one `EVALSHA` (conditions on `EXISTS`/`ver`, then `HSET`, `PEXPIRE`/`PERSIST`) | conditional, atomic |
//! | `delete` | one `DEL` | — |
//!
//! A script's first call on a connection to a Redis that does not have it yet (a fresh or
//! restarted server) costs a `SCRIPT LOAD` and a retry.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, Script};

use super::{PutCondition, StateStore, Versioned};
use crate::Error;
use crate::config::{RedisSettings, RedisTarget};

/// Opening a connection (TCP, TLS, AUTH, SELECT).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One command's answer on an open connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// A whole call, including waiting for a reconnection in progress.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
/// Reconnection attempts after a connection fails (then the next call starts another round).
const RECONNECT_RETRIES: usize = 2;
/// Counters per `incr_many` script call (bounds how long one script holds the server).
const INCR_BATCH: usize = 512;
/// Longest TTL sent to Redis (`PEXPIRE` refuses values that overflow its clock): ~285 years.
const MAX_TTL_MS: u128 = 1 << 53;

/// KEYS: counters; ARGV[1]: TTL in ms; ARGV[1 + i]: the delta of KEYS[i]. Checks every key
/// before writing any, so a batch with a stored value in it changes nothing.
const INCR_LUA: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('HEXISTS', key, 's') == 1 then
    return redis.error_reply('ERR key ' .. key .. ' holds a value, not a counter')
  end
end
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HINCRBY', key, 'n', ARGV[i + 1])
  redis.call('HINCRBY', key, 'ver', 1)
  redis.call('PEXPIRE', key, ARGV[1])
end
return out
";

/// KEYS[1]: the key; ARGV: value, TTL in ms ('' = none), condition (`always`, `absent`,
/// `version`), the expected version. Returns 1 if it wrote.
const PUT_LUA: &str = r"
local key = KEYS[1]
local cond = ARGV[3]
if cond == 'absent' and redis.call('EXISTS', key) == 1 then
  return 0
end
if cond == 'version' and redis.call('HGET', key, 'ver') ~= ARGV[4] then
  return 0
end
redis.call('HDEL', key, 'n')
redis.call('HSET', key, 's', ARGV[1])
redis.call('HINCRBY', key, 'ver', 1)
if ARGV[2] == '' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
";

/// Routing state in Redis (see the module docs).
pub struct RedisStateStore {
    manager: ConnectionManager,
    prefix: String,
    endpoint: String,
    incr: Script,
    put: Script,
}

fn state_err(op: &str, e: &redis::RedisError) -> Error {
    Error::State(format!("redis {op}: {e}"))
}

fn ttl_ms(ttl: Duration) -> u64 {
    ttl.as_millis().min(MAX_TTL_MS) as u64
}

/// Where and how to connect. The password goes from the [`crate::config::SecretString`]
/// into redis-rs's connection info (which redacts it in `Debug`) and from there to the socket.
fn connection_info(settings: &RedisSettings) -> Result<redis::ConnectionInfo, Error> {
    let info = match &settings.target {
        // redis-rs's parse errors are not passed on: they could quote the URL.
        RedisTarget::Url(url) => url.expose().into_connection_info().map_err(|_| {
            Error::State("redis: redis_url is not a valid redis:// or rediss:// URL".into())
        })?,
        RedisTarget::Host { host, port, tls } => {
            let addr = if *tls {
                ConnectionAddr::TcpTls {
                    host: host.clone(),
                    port: *port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(host.clone(), *port)
            };
            addr.into_connection_info()
                .map_err(|e| state_err("address", &e))?
        }
    };
    let mut redis = info
        .redis_settings()
        .clone()
        .set_db(i64::from(settings.effective_db()));
    if let Some(password) = settings.extra_password() {
        redis = redis.set_password(password.expose());
    }
    Ok(info.set_redis_settings(redis))
}

impl RedisStateStore {
    /// A store on the Redis of `settings`, keys prefixed with `prefix`. Does not connect: the
    /// first call does (so start-up does not wait for, or fail on, a Redis that is down).
    /// Fails only on settings redis-rs cannot use. Call it within a Tokio runtime (the
    /// connection manager spawns its tasks there).
    pub async fn new(settings: &RedisSettings, prefix: impl Into<String>) -> Result<Self, Error> {
        let client =
            redis::Client::open(connection_info(settings)?).map_err(|e| state_err("client", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(400));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| state_err("connection manager", &e))?;
        Ok(RedisStateStore {
            manager,
            prefix: prefix.into(),
            endpoint: settings.endpoint(),
            incr: Script::new(INCR_LUA),
            put: Script::new(PUT_LUA),
        })
    }

    /// `scheme://host:port/db`, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `PING` (connecting first if needed).
    pub async fn ping(&self) -> Result<(), Error> {
        let mut con = self.manager.clone();
        self.bounded("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut con).await
        })
        .await
        .map(|_| ())
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `call`, failing after [`OPERATION_TIMEOUT`] (a reconnection in progress counts).
    async fn bounded<T>(
        &self,
        op: &str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(state_err(op, &e)),
            Err(_) => Err(Error::State(format!(
                "redis {op}: no answer from {} within {} ms",
                self.endpoint,
                OPERATION_TIMEOUT.as_millis()
            ))),
        }
    }

    /// Runs the counter script on `deltas`; the new values, in order.
    async fn incr_script(&self, deltas: &[(&str, i64)], ttl: Duration) -> Result<Vec<i64>, Error> {
        let mut call = self.incr.prepare_invoke();
        call.arg(ttl_ms(ttl));
        for (key, delta) in deltas {
            call.key(self.key(key)).arg(*delta);
        }
        let mut con = self.manager.clone();
        self.bounded("incr", async move { call.invoke_async(&mut con).await })
            .await
    }
}

#[async_trait]
impl StateStore for RedisStateStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, Error> {
        self.incr_script(&[(key, delta)], ttl)
            .await?
            .first()
            .copied()
            .ok_or_else(|| Error::State(format!("redis incr: no value for '{key}'")))
    }

    async fn incr_many(&self, deltas: &[(String, i64)], ttl: Duration) -> Result<(), Error> {
        for chunk in deltas.chunks(INCR_BATCH) {
            let batch: Vec<(&str, i64)> = chunk.iter().map(|(k, d)| (k.as_str(), *d)).collect();
            self.incr_script(&batch, ttl).await?;
        }
        Ok(())
    }

    async fn get_counters(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.hget(self.key(k), "n");
        }
        let mut con = self.manager.clone();
        let values: Vec<Option<i64>> = self
            .bounded(
                "get_counters",
                async move { pipe.query_async(&mut con).await },
            )
            .await?;
        Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.hmget(self.key(k), &["s", "n", "ver"]);
        }
        let mut con = self.manager.clone();
        type Fields = (Option<String>, Option<String>, Option<u64>);
        let rows: Vec<Fields> = self
            .bounded("get_many", async move { pipe.query_async(&mut con).await })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(s, n, ver)| {
                Some(Versioned {
                    value: s.or(n)?,
                    version: ver.unwrap_or(0),
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
        let (cond, version) = match cond {
            PutCondition::Always => ("always", String::new()),
            PutCondition::IfAbsent => ("absent", String::new()),
            PutCondition::IfVersion(v) => ("version", v.to_string()),
        };
        let mut call = self.put.key(self.key(key));
        call.arg(value)
            .arg(ttl.map(|t| ttl_ms(t).to_string()).unwrap_or_default())
            .arg(cond)
            .arg(version);
        let mut con = self.manager.clone();
        let wrote: i64 = self
            .bounded("put", async move { call.invoke_async(&mut con).await })
            .await?;
        Ok(wrote == 1)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        let mut con = self.manager.clone();
        self.bounded(
            "delete",
            async move { cmd.query_async::<i64>(&mut con).await },
        )
        .await
        .map(|_| ())
    }
}
