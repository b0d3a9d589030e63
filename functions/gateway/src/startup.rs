//! Start-up: find and load the config, set up logging and tracing, build the gateway, serve.
//!
//! - [`load_config`]: the config from a file, S3 or the embedded quickstart.
//! - [`state_backend`] and [`services_from_env`]: where routing state lives (DynamoDB,
//!   Redis, or process memory), chosen once at start-up.
//! - [`run`]: the whole start, then serving (a listener, or the Lambda runtime).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use routeiq::config::{Config, ConfigError, LoadedConfig, RedisSettings, SecretString};
use routeiq::state::{
    Clock, DynamoDbStateStore, FailoverStateStore, RedisStateStore, StateStore, SystemClock,
};

use crate::app::App;
use crate::cli::{Args, ConfigSource};
use crate::gateway::{BuildError, Gateway, Services};
use crate::http::server;
use crate::settings::{EnvError, EnvProblem, RuntimeSettings};

/// The config served when none is given: deployments answering with `mock_response`, so the
/// gateway runs with no API key and no network.
pub const EMBEDDED_CONFIG: &str = include_str!("../../../examples/quickstart.yaml");

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Invalid { path: String, source: ConfigError },
    #[error("cannot read config from S3: {0}")]
    S3(#[from] crate::s3::S3Error),
    #[error("{0}")]
    Env(String),
}

/// Reads and validates the config from `source`, resolving `os.environ/` through `env`.
pub async fn load_config(
    source: &ConfigSource,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<LoadedConfig, LoadError> {
    let (path, text) = match source {
        ConfigSource::S3 { bucket, key } => {
            let object = crate::s3::S3Object::new(bucket.clone(), key.clone(), env).await;
            let fetched = object.get().await?;
            let text = String::from_utf8(fetched.body).map_err(|_| {
                LoadError::S3(crate::s3::S3Error {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    message: "the object is not UTF-8 text".into(),
                })
            })?;
            (format!("s3://{bucket}/{key}"), text)
        }
        ConfigSource::File(p) => (
            p.display().to_string(),
            read(p).map_err(|source| LoadError::Read {
                path: p.display().to_string(),
                source,
            })?,
        ),
        ConfigSource::Embedded => (
            "<embedded quickstart>".to_string(),
            EMBEDDED_CONFIG.to_string(),
        ),
    };
    // `include:` files are read beside a config file (LiteLLM's behaviour); a config from S3
    // or the embedded one has no directory, so there `include` is a warning.
    let read_include = match source {
        ConfigSource::File(p) => Some(move |name: &str| read_beside(p, name)),
        ConfigSource::S3 { .. } | ConfigSource::Embedded => None,
    };
    let include = read_include
        .as_ref()
        .map(|r| r as routeiq::config::IncludeReader<'_>);
    let loaded = routeiq::config::load_str_with(&text, env, include);
    let loaded = if strict_config(env).map_err(LoadError::Env)? {
        loaded.and_then(LoadedConfig::strict)
    } else {
        loaded
    };
    loaded.map_err(|source| LoadError::Invalid { path, source })
}

/// One log line per config warning (at start and after each reload), fields first.
pub fn log_config_warnings(warnings: &[routeiq::config::ConfigWarning]) {
    for w in warnings {
        tracing::warn!(path = %w.path, kind = w.kind.as_str(), "config: {}", w.message);
    }
    if !warnings.is_empty() {
        tracing::warn!(
            count = warnings.len(),
            "config loaded with warnings: listed above and at GET /config/warnings; ROUTEIQ_STRICT_CONFIG=true refuses them"
        );
    }
}

/// `ROUTEIQ_STRICT_CONFIG`: every config warning is an error (at start and on reload).
fn strict_config(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    match env("ROUTEIQ_STRICT_CONFIG").filter(|v| !v.trim().is_empty()) {
        None => Ok(false),
        Some(v) => crate::settings::parse_flag(&v)
            .ok_or_else(|| format!("ROUTEIQ_STRICT_CONFIG: '{v}' is not true or false")),
    }
}

/// Reads `name` (an `include:` of the config at `config`) from the config's directory.
pub fn read_beside(config: &Path, name: &str) -> Result<String, String> {
    let path = config.parent().unwrap_or_else(|| Path::new("")).join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p)
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("loading config: {0}")]
    Config(#[from] LoadError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("building the gateway: {0}")]
    Build(#[from] BuildError),
    #[error("--host '{0}' is not an IP address")]
    Host(String),
    #[error("a TLS crypto provider was already installed")]
    Tls,
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("serving on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("lambda runtime: {0}")]
    Lambda(String),
    #[error("routing state: {0}")]
    State(String),
}

/// Runs the gateway: loads the config, sets up logging and tracing, builds the gateway and
/// serves until SIGTERM/Ctrl-C (then drains). What `routeiq-gateway` and `routeiq serve` do.
pub fn run(args: &Args) -> Result<(), StartupError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartupError::Runtime)?;
    crate::periodic::set_background(runtime.handle().clone());
    let env = |name: &str| std::env::var(name).ok();
    runtime.block_on(serve(args, &env))
}

async fn serve(
    args: &Args,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(), StartupError> {
    // Before any HTTP client is built (the OTLP exporter's too). Another installed provider is
    // fine (e.g. a test harness): any provider serves TLS.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
        && rustls::crypto::CryptoProvider::get_default().is_none()
    {
        return Err(StartupError::Tls);
    }
    let json_env = env("JSON_LOGS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let source = args.config_source_with(env);
    let loaded = load_config(&source, env).await;
    let telemetry = crate::telemetry::init(
        json_env
            || loaded
                .as_ref()
                .is_ok_and(|l| l.config.litellm_settings.json_logs),
        env,
    );
    let loaded = loaded?;
    match &source {
        ConfigSource::File(p) => tracing::info!(path = %p.display(), "config loaded"),
        ConfigSource::S3 { bucket, key } => {
            tracing::info!(bucket = %bucket, key = %key, "config loaded from S3")
        }
        ConfigSource::Embedded => tracing::info!(
            "no config given (--config, LITELLM_CONFIG_PATH, /app/config/config.yaml): serving the embedded quickstart config"
        ),
    }
    log_config_warnings(&loaded.warnings);
    let mut settings = RuntimeSettings::from_env(env)?;
    if !settings.lambda {
        settings.server_threads = args.server_threads();
    }
    let services = services_from_env(settings, &loaded.config, env).await?;
    let gateway =
        Gateway::build(&loaded.config, env, services)?.with_config_warnings(loaded.warnings);
    if gateway.master_key.is_none() {
        tracing::warn!(
            "no master_key configured (general_settings.master_key or LITELLM_MASTER_KEY): the gateway accepts requests without authentication"
        );
    }
    tracing::info!(
        model_groups = gateway.router.model_names().len(),
        deployments = gateway.router.deployments().count(),
        routing_strategy = gateway.router.strategy().name(),
        max_concurrent_requests = gateway.settings().max_concurrent_requests,
        circuit_breaker_failure_threshold = gateway.settings().circuit_breakers.failure_threshold,
        "router ready"
    );
    if gateway.settings().lambda {
        // Inside AWS Lambda: the same app behind lambda_http instead of a listener. Config,
        // clients and models were built above, once per cold start.
        let streaming = crate::lambda::streaming(env);
        tracing::info!(streaming, "running under the AWS Lambda runtime");
        let app = App::new(gateway, source.clone(), telemetry.exporting());
        spawn_config_sync(&app, &source, env).await;
        let result = crate::lambda::run(server::app(app), streaming)
            .await
            .map_err(|e| StartupError::Lambda(e.to_string()));
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        return result;
    }
    let ip: IpAddr = args
        .host
        .parse()
        .map_err(|_| StartupError::Host(args.host.clone()))?;
    let addr = SocketAddr::new(ip, args.port);
    let drain_timeout = gateway.settings().drain_timeout;
    let app = App::new(gateway, source.clone(), telemetry.exporting());
    spawn_config_sync(&app, &source, env).await;
    let router = server::app(app.clone());
    let threads = app.gateway().settings().server_threads;
    let result = server::serve(router, app, addr, drain_timeout, threads)
        .await
        .map_err(|source| StartupError::Serve { addr, source });
    // Flush buffered spans; the exporter sends through this runtime, so block elsewhere.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    result
}

/// Where routing state lives.
#[derive(Debug, Clone, PartialEq)]
pub enum StateBackend {
    /// Process memory: each instance has its own.
    Memory,
    /// `ROUTEIQ_STATE_TABLE`; `ROUTEIQ_STATE_CREATE_TABLE=true` creates it if missing.
    DynamoDb { table: String, create_table: bool },
    /// LiteLLM's Redis: `router_settings.redis_*`, else `REDIS_URL`/`REDIS_HOST`.
    Redis {
        settings: RedisSettings,
        /// `router_settings` or `environment`, for the log.
        source: &'static str,
    },
}

/// The state backend for `config` and `env`, and a warning when settings were ignored.
///
/// Precedence: `ROUTEIQ_STATE_TABLE` (DynamoDB: RouteIQ's own, deliberate setting), then the
/// config's `router_settings.redis_url`/`redis_host`, then `REDIS_URL`/`REDIS_HOST` (read
/// only when the config names no Redis, as LiteLLM falls back to them), then memory. Bad
/// `REDIS_*` values that would be used are errors naming the variable.
pub fn state_backend(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(StateBackend, Option<String>), EnvError> {
    let redis = match &config.router_settings.redis {
        Some(settings) => Some((settings.clone(), "router_settings")),
        None => RedisSettings::from_env(env)
            .map_err(|problems| {
                EnvError(
                    problems
                        .into_iter()
                        .map(|p| EnvProblem {
                            var: p.path,
                            message: p.message,
                        })
                        .collect(),
                )
            })?
            .map(|s| (s, "environment")),
    };
    let table = env("ROUTEIQ_STATE_TABLE").filter(|t| !t.trim().is_empty());
    Ok(match (table, redis) {
        (Some(table), redis) => {
            let ignored = redis.map(|(s, source)| {
                let keys = match source {
                    "router_settings" => "router_settings.redis_*",
                    _ => "REDIS_URL/REDIS_HOST",
                };
                format!(
                    "both ROUTEIQ_STATE_TABLE and Redis ({keys}: {}) are set: routing state \
                     goes to DynamoDB table '{table}' and Redis is not used; unset \
                     ROUTEIQ_STATE_TABLE to share state through Redis",
                    s.endpoint()
                )
            });
            let create_table = env("ROUTEIQ_STATE_CREATE_TABLE")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            (
                StateBackend::DynamoDb {
                    table,
                    create_table,
                },
                ignored,
            )
        }
        (None, Some((settings, source))) => (StateBackend::Redis { settings, source }, None),
        (None, None) => (StateBackend::Memory, None),
    })
}

/// Routing state as [`state_backend`] chooses it, keys prefixed with `ROUTEIQ_STATE_PREFIX`
/// (default: none for DynamoDB, `routeiq:` for Redis, which other applications may share).
/// A shared backend is wrapped so that when it fails routing degrades to in-memory state
/// instead of failing requests, and goes back to it by itself. Neither backend is contacted
/// here (DynamoDB only to create its table when asked), so the gateway starts while it is
/// down.
pub async fn services_from_env(
    settings: RuntimeSettings,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Services, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (backend, ignored) = state_backend(config, env)?;
    if let Some(warning) = ignored {
        tracing::warn!("{warning}");
    }
    let prefix = env("ROUTEIQ_STATE_PREFIX");
    let keys = keys_backend(config, &settings, env)?;
    let services = state_services(settings, backend, prefix, clock).await?;
    let Some(store) = key_store(keys).await? else {
        return Ok(services);
    };
    let status = config
        .litellm_settings
        .budget_exceeded_status_code
        .unwrap_or(crate::keys::access::DEFAULT_BUDGET_STATUS);
    Ok(services.with_keys(store, status))
}

/// Where virtual keys live.
#[derive(Debug)]
pub enum KeysBackend {
    /// No key store: the master key only.
    Off,
    /// Process memory (`ROUTEIQ_KEYS_BACKEND=memory`).
    Memory,
    /// DynamoDB (`ROUTEIQ_KEYS_TABLE`, else `{ROUTEIQ_STATE_TABLE}-keys`).
    DynamoDb(crate::keys::dynamodb::DynamoDbKeysConfig),
    /// PostgreSQL with LiteLLM's tables (`general_settings.database_url`, `DATABASE_URL`).
    Postgres(SecretString),
}

/// The key store for `config` and `env`: `ROUTEIQ_KEYS_BACKEND` when set (`memory`,
/// `dynamodb`, `postgres`, `off`), else PostgreSQL when `general_settings.database_url` or
/// `DATABASE_URL` is set (LiteLLM's), else DynamoDB when `ROUTEIQ_KEYS_TABLE` is set, or
/// `ROUTEIQ_STATE_TABLE` with a master key (a gateway without one that keeps its routing state
/// in DynamoDB stays open, as before), else off. A backend named but not configured is an
/// error.
pub fn keys_backend(
    config: &Config,
    settings: &RuntimeSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeysBackend, StartupError> {
    let database_url = config.general_settings.database_url.clone().or_else(|| {
        env("DATABASE_URL")
            .filter(|v| !v.trim().is_empty())
            .map(SecretString::new)
    });
    let dynamo = crate::keys::dynamodb::DynamoDbKeysConfig::from_env(env)
        .map_err(|p| StartupError::Env(EnvError(vec![p])))?;
    let missing = |what: &str| {
        StartupError::Env(EnvError(vec![EnvProblem {
            var: "ROUTEIQ_KEYS_BACKEND".into(),
            message: what.to_string(),
        }]))
    };
    Ok(match settings.keys_backend.as_deref() {
        Some("off") => KeysBackend::Off,
        Some("memory") => KeysBackend::Memory,
        Some("dynamodb") => KeysBackend::DynamoDb(dynamo.ok_or_else(|| {
            missing("'dynamodb' needs ROUTEIQ_KEYS_TABLE or ROUTEIQ_STATE_TABLE")
        })?),
        Some("postgres") => KeysBackend::Postgres(database_url.ok_or_else(|| {
            missing("'postgres' needs general_settings.database_url or DATABASE_URL")
        })?),
        _ => {
            let master_key = config.general_settings.master_key.is_some()
                || env("LITELLM_MASTER_KEY").is_some_and(|k| !k.trim().is_empty());
            let keys_table = env("ROUTEIQ_KEYS_TABLE").is_some_and(|t| !t.trim().is_empty());
            match (database_url, dynamo) {
                (Some(url), _) => KeysBackend::Postgres(url),
                (None, Some(d)) if keys_table || master_key => KeysBackend::DynamoDb(d),
                (None, Some(_)) => {
                    tracing::info!(
                        "virtual keys off: no master key (ROUTEIQ_STATE_TABLE alone turns them on only with one)"
                    );
                    KeysBackend::Off
                }
                (None, None) => KeysBackend::Off,
            }
        }
    })
}

/// Opens the key store (without contacting it, but to create a DynamoDB table when asked).
async fn key_store(
    backend: KeysBackend,
) -> Result<Option<Arc<dyn crate::keys::KeyStore>>, StartupError> {
    Ok(Some(match backend {
        KeysBackend::Off => return Ok(None),
        KeysBackend::Memory => {
            tracing::warn!(
                "virtual keys in process memory (ROUTEIQ_KEYS_BACKEND=memory): keys, teams and spend are lost when this process stops and are not shared with other instances"
            );
            Arc::new(crate::keys::memory::MemoryKeyStore::new())
        }
        KeysBackend::DynamoDb(config) => {
            let store = crate::keys::dynamodb::DynamoDbKeyStore::from_config(&config).await;
            if config.create_table
                && let Err(e) = store.create_table_if_missing().await
            {
                tracing::warn!(table = %config.table, error = %e, "could not create the keys table");
            }
            tracing::info!(table = %config.table, "virtual keys in DynamoDB");
            Arc::new(store)
        }
        KeysBackend::Postgres(url) => {
            let store = crate::keys::postgres::PostgresKeyStore::connect(
                &url,
                crate::keys::postgres::PostgresOptions::default(),
            )
            .await
            .map_err(|e| StartupError::State(e.to_string()))?;
            tracing::info!("virtual keys in PostgreSQL (LiteLLM's tables)");
            Arc::new(store)
        }
    }))
}

/// The services over the state backend `backend`.
async fn state_services(
    settings: RuntimeSettings,
    backend: StateBackend,
    prefix: Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<Services, StartupError> {
    let primary: Arc<dyn StateStore> = match backend {
        StateBackend::Memory => return Ok(Services::new(settings)),
        StateBackend::DynamoDb {
            table,
            create_table,
        } => {
            let dynamo = DynamoDbStateStore::from_env(
                table.clone(),
                prefix.unwrap_or_default(),
                clock.clone(),
            )
            .await;
            // For local development and tests; deployed tables come from the SAM template.
            if create_table && let Err(e) = dynamo.create_table_if_missing().await {
                tracing::warn!(table = %table, error = %e, "could not create the state table");
            }
            tracing::info!(table = %table, "routing state in DynamoDB");
            Arc::new(dynamo)
        }
        StateBackend::Redis {
            settings: redis,
            source,
        } => {
            let prefix = prefix.unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_string());
            let store = RedisStateStore::new(&redis, prefix.clone())
                .await
                .map_err(|e| StartupError::State(e.to_string()))?;
            tracing::info!(
                endpoint = %store.endpoint(),
                from = source,
                prefix = %prefix,
                "routing state in Redis"
            );
            Arc::new(store)
        }
    };
    let state: Arc<dyn StateStore> = Arc::new(FailoverStateStore::new(
        primary,
        clock.clone(),
        STATE_RETRY_AFTER,
    ));
    Ok(Services::with_state(settings, state, clock))
}

/// The key prefix in Redis when `ROUTEIQ_STATE_PREFIX` is not set.
pub const DEFAULT_REDIS_PREFIX: &str = "routeiq:";

/// How long a failing state backend is left alone before it is tried again.
const STATE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// `CONFIG_HOT_RELOAD=true`: checks the config's source every `CONFIG_SYNC_INTERVAL` (default
/// 60 s) and reloads when it changed — an S3 object by its ETag, a file by its size and
/// modification time. A bad new config is rejected and the running one keeps serving (see
/// [`App::reload_config`]); it is not retried until the source changes again.
async fn spawn_config_sync(
    app: &Arc<App>,
    source: &ConfigSource,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) {
    let settings = app.gateway().settings().clone();
    if !settings.config_hot_reload {
        return;
    }
    let every = settings.config_sync_interval;
    let app = app.clone();
    match source {
        ConfigSource::S3 { bucket, key } => {
            let object = Arc::new(crate::s3::S3Object::new(bucket.clone(), key.clone(), env).await);
            let last = object.etag().await.ok();
            tracing::info!(bucket = %bucket, key = %key, interval_ms = every.as_millis() as u64, "watching the config object");
            tokio::spawn(watch(app, every, last, move || {
                let object = object.clone();
                async move { object.etag().await.map_err(|e| e.to_string()) }
            }));
        }
        ConfigSource::File(path) => {
            let path = path.clone();
            let last = file_fingerprint(&path).ok();
            tracing::info!(path = %path.display(), interval_ms = every.as_millis() as u64, "watching the config file");
            tokio::spawn(watch(app, every, last, move || {
                let path = path.clone();
                async move { file_fingerprint(&path).map_err(|e| e.to_string()) }
            }));
        }
        ConfigSource::Embedded => tracing::warn!(
            "CONFIG_HOT_RELOAD is set but the config is the embedded quickstart: nothing to watch"
        ),
    }
}

/// What a config file is watched by: its size and modification time.
fn file_fingerprint(path: &Path) -> std::io::Result<(u64, Option<std::time::SystemTime>)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.len(), meta.modified().ok()))
}

/// Polls `read` (the source's fingerprint) every `every`; reloads when it differs from the
/// last one seen.
async fn watch<T, F, Fut>(app: Arc<App>, every: Duration, mut last: Option<T>, read: F)
where
    T: PartialEq + std::fmt::Debug + Send,
    F: Fn() -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, String>> + Send,
{
    let process_env = |name: &str| std::env::var(name).ok();
    loop {
        tokio::time::sleep(every).await;
        let now = match read().await {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, "config sync: cannot read the config's source");
                continue;
            }
        };
        if last.as_ref() == Some(&now) {
            continue;
        }
        tracing::info!(fingerprint = ?now, "config source changed: reloading");
        // A rejected config is logged by reload_config; remember its fingerprint so it is not
        // retried every interval.
        let _ = app.reload_config(&process_env).await;
        last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use routeiq::config::load_str_with_env;

    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    fn config(yaml: &str) -> Config {
        load_str_with_env(yaml, &|_| None).unwrap().config
    }

    #[test]
    fn keys_backend_precedence() {
        let plain = config("model_list: []\n");
        let keyed = config("general_settings:\n  master_key: sk-1234\n");
        let with_db = config(
            "general_settings:\n  master_key: sk-1234\n  database_url: postgresql://u:p@db:5432/litellm\n",
        );
        let s = RuntimeSettings::default();
        let pick = |c: &Config, e| keys_backend(c, &s, &e).map(|b| format!("{b:?}"));
        assert_eq!(pick(&plain, env(&[])).unwrap(), "Off");
        // The config's database first, then DATABASE_URL.
        assert!(
            pick(&with_db, env(&[("ROUTEIQ_STATE_TABLE", "t")]))
                .unwrap()
                .starts_with("Postgres")
        );
        assert!(
            pick(&keyed, env(&[("DATABASE_URL", "postgresql://x@h/db")]))
                .unwrap()
                .starts_with("Postgres")
        );
        // The state table turns keys on only with a master key; the keys table always does.
        assert!(
            pick(&keyed, env(&[("ROUTEIQ_STATE_TABLE", "t")]))
                .unwrap()
                .starts_with("DynamoDb")
        );
        assert_eq!(
            pick(&plain, env(&[("ROUTEIQ_STATE_TABLE", "t")])).unwrap(),
            "Off"
        );
        assert!(
            pick(
                &plain,
                env(&[("LITELLM_MASTER_KEY", "sk-x"), ("ROUTEIQ_STATE_TABLE", "t")])
            )
            .unwrap()
            .starts_with("DynamoDb")
        );
        assert!(
            pick(&plain, env(&[("ROUTEIQ_KEYS_TABLE", "k")]))
                .unwrap()
                .starts_with("DynamoDb")
        );
        // Named explicitly.
        let mem = RuntimeSettings {
            keys_backend: Some("memory".into()),
            ..RuntimeSettings::default()
        };
        assert_eq!(
            format!("{:?}", keys_backend(&with_db, &mem, &env(&[])).unwrap()),
            "Memory"
        );
        let pg = RuntimeSettings {
            keys_backend: Some("postgres".into()),
            ..RuntimeSettings::default()
        };
        assert!(keys_backend(&plain, &pg, &env(&[])).is_err());
    }

    #[test]
    fn state_backend_precedence() {
        let plain = config("model_list: []\n");
        let with_redis = config("router_settings:\n  redis_url: redis://:pw@cache:6380/1\n");
        let backend = |c: &Config, e| state_backend(c, &e).unwrap();

        assert_eq!(backend(&plain, env(&[])), (StateBackend::Memory, None));
        // The config's Redis, before the environment's.
        let (b, ignored) = backend(&with_redis, env(&[("REDIS_HOST", "other")]));
        assert!(ignored.is_none());
        let StateBackend::Redis { settings, source } = b else {
            panic!("{b:?}")
        };
        assert_eq!(
            (settings.endpoint().as_str(), source),
            ("redis://cache:6380/1", "router_settings")
        );
        let (b, _) = backend(&plain, env(&[("REDIS_HOST", "other")]));
        assert!(
            matches!(
                b,
                StateBackend::Redis {
                    source: "environment",
                    ..
                }
            ),
            "{b:?}"
        );
        // DynamoDB wins over Redis, with a warning that never shows the password.
        let (b, ignored) = backend(&with_redis, env(&[("ROUTEIQ_STATE_TABLE", "t")]));
        assert_eq!(
            b,
            StateBackend::DynamoDb {
                table: "t".into(),
                create_table: false
            }
        );
        let ignored = ignored.unwrap();
        assert!(
            ignored.contains("redis://cache:6380/1") && !ignored.contains("pw"),
            "{ignored}"
        );
        // Bad variables are errors only when they would be used.
        let e = state_backend(&plain, &env(&[("REDIS_URL", "http://x")])).unwrap_err();
        assert_eq!(e.0[0].var, "REDIS_URL");
        assert!(state_backend(&with_redis, &env(&[("REDIS_URL", "http://x")])).is_ok());
    }
}
