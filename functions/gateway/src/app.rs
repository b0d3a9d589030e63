//! The running application: the current [`Gateway`] behind an atomic pointer (so a config
//! reload swaps the whole routing state at once while requests in flight finish on the old
//! one), where its config came from, backpressure and drain state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use routeiq::config::{Config, ConfigError, ConfigProblem};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cli::ConfigSource;
use crate::gateway::{BuildError, Gateway};
use crate::startup::{self, LoadError};
use crate::telemetry::metrics::Metrics;

/// The application state axum serves from.
pub struct App {
    current: ArcSwap<Gateway>,
    source: ConfigSource,
    limiter: Option<(Arc<Semaphore>, usize)>,
    draining: AtomicBool,
    /// Serialises reloads (each one reads, builds and swaps).
    reloading: tokio::sync::Mutex<()>,
    exporting_traces: bool,
}

/// The axum router's state: the app. Handlers take `State<Arc<Gateway>>` (the gateway current
/// when the request arrived, so a reload never changes it mid-request) or `State<Arc<App>>`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl FromRef<AppState> for Arc<Gateway> {
    fn from_ref(state: &AppState) -> Arc<Gateway> {
        state.0.gateway()
    }
}

impl FromRef<AppState> for Arc<App> {
    fn from_ref(state: &AppState) -> Arc<App> {
        state.0.clone()
    }
}

/// A reload that did not happen; the running gateway keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("config rejected: {0}")]
    Load(#[from] LoadError),
    #[error("config rejected: {0}")]
    Build(#[from] BuildError),
}

impl ReloadError {
    /// Every problem, with its path.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            ReloadError::Load(LoadError::Invalid {
                source: ConfigError::Invalid { problems, .. },
                ..
            }) => problems.clone(),
            ReloadError::Load(LoadError::Invalid {
                path,
                source: ConfigError::Yaml(message),
            }) => vec![ConfigProblem {
                path: path.clone(),
                message: message.clone(),
            }],
            ReloadError::Load(e @ LoadError::Read { path, .. }) => vec![ConfigProblem {
                path: path.clone(),
                message: e.to_string(),
            }],
            ReloadError::Load(LoadError::Env(message)) => {
                vec![ConfigProblem::new("ROUTEIQ_STRICT_CONFIG", message.clone())]
            }
            ReloadError::Load(LoadError::S3(e)) => vec![ConfigProblem {
                path: format!("s3://{}/{}", e.bucket, e.key),
                message: e.message.clone(),
            }],
            ReloadError::Build(e) => {
                let (path, message) = e.problem();
                vec![ConfigProblem { path, message }]
            }
        }
    }
}

/// The warning for a reload that changes `router_settings.redis_*`: routing state stays on
/// the store chosen at start-up (its connections, and the state in it, belong to the running
/// process), so a new address takes effect at the next restart.
fn redis_change(running: &Config, new: &Config) -> Option<String> {
    let (old, new) = (&running.router_settings.redis, &new.router_settings.redis);
    if old == new {
        return None;
    }
    let show = |r: &Option<routeiq::config::RedisSettings>| {
        r.as_ref().map_or("none".to_string(), |r| r.endpoint())
    };
    Some(format!(
        "router_settings.redis_*: changed (from {} to {}); routing state stays where it was at \
         start-up until the gateway restarts",
        show(old),
        show(new)
    ))
}

/// What a successful reload installed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadSummary {
    pub model_groups: usize,
    pub deployments: usize,
    pub routing_strategy: &'static str,
    /// `path: message` of each config warning (also at `GET /config/warnings`).
    pub warnings: Vec<String>,
}

fn summary(gw: &Gateway, warnings: Vec<String>) -> ReloadSummary {
    ReloadSummary {
        model_groups: gw.router.model_names().len(),
        deployments: gw.router.deployments().count(),
        routing_strategy: gw.router.strategy().name(),
        warnings,
    }
}

impl App {
    /// The app serving `gateway`, whose config came from `source`.
    pub fn new(gateway: Gateway, source: ConfigSource, exporting_traces: bool) -> Arc<App> {
        let limiter = gateway
            .settings()
            .max_concurrent_requests
            .map(|n| (Arc::new(Semaphore::new(n)), n));
        Arc::new(App {
            current: ArcSwap::from_pointee(gateway),
            source,
            limiter,
            draining: AtomicBool::new(false),
            reloading: tokio::sync::Mutex::new(()),
            exporting_traces,
        })
    }

    /// The gateway serving new requests.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// The metrics registry (shared by every gateway this app swaps in).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.current.load().metrics().clone()
    }

    /// Whether spans are exported over OTLP.
    pub fn exporting_traces(&self) -> bool {
        self.exporting_traces
    }

    /// Admits a request under `ROUTEIQ_MAX_CONCURRENT_REQUESTS`: the permit to hold while it
    /// is served (`None` when unbounded), or the limit when it must be shed.
    pub fn try_admit(&self) -> Result<Option<OwnedSemaphorePermit>, usize> {
        match &self.limiter {
            None => Ok(None),
            Some((sem, limit)) => sem
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| *limit),
        }
    }

    /// Marks the app as draining (readiness answers 503 from now on).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a shutdown is draining in-flight requests.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Re-reads the config from its source and swaps in a gateway built from it; a config
    /// that does not load or build is rejected and the running gateway keeps serving.
    /// Operational settings (environment) and routing state carry over.
    pub async fn reload_config(
        &self,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<ReloadSummary, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = startup::load_config(&self.source, env)
            .await
            .map_err(ReloadError::from)
            .and_then(|loaded| {
                let current = self.current.load();
                let services = current.services.clone();
                let gw = Gateway::build(&loaded.config, env, services)?
                    .with_config_warnings(loaded.warnings.clone());
                let redis_changed = redis_change(&current.config, &loaded.config);
                Ok((gw, loaded.warnings, redis_changed))
            });
        let metrics = self.metrics();
        match result {
            Ok((gw, warnings, redis_changed)) => {
                crate::startup::log_config_warnings(&warnings);
                let mut warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
                if let Some(w) = redis_changed {
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
                let s = summary(&gw, warnings);
                self.current.store(Arc::new(gw));
                metrics.observe_reload("config", "ok");
                tracing::info!(
                    model_groups = s.model_groups,
                    deployments = s.deployments,
                    routing_strategy = s.routing_strategy,
                    "config reloaded"
                );
                Ok(s)
            }
            Err(e) => {
                metrics.observe_reload("config", "rejected");
                tracing::warn!(problems = e.problems().len(), error = %e, "config reload rejected; the running config keeps serving");
                Err(e)
            }
        }
    }

    /// Re-creates the router (strategies and, for ML strategies, their models) from the
    /// current config and swaps it in (see [`Gateway::reload_router`]).
    pub async fn reload_router(&self) -> Result<ReloadSummary, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.gateway();
        let metrics = self.metrics();
        match current.reload_router() {
            Ok(gw) => {
                let s = summary(&gw, Vec::new());
                self.current.store(Arc::new(gw));
                metrics.observe_reload("router", "ok");
                tracing::info!(routing_strategy = s.routing_strategy, "router reloaded");
                Ok(s)
            }
            Err(e) => {
                metrics.observe_reload("router", "rejected");
                tracing::warn!(error = %e, "router reload failed; the running router keeps serving");
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        routeiq::config::load_str_with_env(yaml, &|_| None)
            .unwrap()
            .config
    }

    #[test]
    fn a_reload_that_moves_redis_is_warned_about() {
        let a = config("router_settings:\n  redis_host: cache-a\n  redis_password: pw-a\n");
        let b = config("router_settings:\n  redis_host: cache-b\n  redis_password: pw-b\n");
        assert_eq!(redis_change(&a, &a), None);
        let w = redis_change(&a, &b).unwrap();
        assert!(w.contains("redis://cache-a:6379/0") && w.contains("redis://cache-b:6379/0"));
        assert!(!w.contains("pw-"), "{w}");
        assert!(redis_change(&config("{}\n"), &a).is_some());
    }
}
