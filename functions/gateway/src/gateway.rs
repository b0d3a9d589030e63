//! The gateway core: the router, one provider per deployment, the HTTP client, and the
//! operations the dispatcher runs. Handlers parse requests and call into this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use routeiq::config::{Config, ConfigWarning, SecretString, WarningKind};
use routeiq::openai::{
    ChatCompletionChunk, ChatCompletionRequest, CompletionRequest, EmbeddingRequest,
};
use routeiq::router::Router;
use routeiq::state::{Clock, InMemoryStateStore, StateStore, SystemClock};
use serde_json::Value;

use crate::error::GatewayError;
use crate::settings::RuntimeSettings;
use crate::telemetry::emf::EmfEmitter;
use crate::telemetry::metrics::Metrics;
use crate::upstream::dispatch::{Operation, StreamStart, open_stream, with_timeout};
use crate::upstream::guard::{BlockObserver, OutboundBlocked, Trust};
use crate::upstream::providers::{Answer, CallContext, Provider};

/// What outlives a config reload: metrics, the operational settings (read from the
/// environment at start-up), the routing state (cooldowns, circuits, statistics), the
/// batched counter writer (experiment counters) and the model store (local files and S3).
#[derive(Clone)]
pub struct Services {
    pub metrics: Arc<Metrics>,
    pub settings: Arc<RuntimeSettings>,
    pub state: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    /// Counter deltas summed in process and flushed to `state` in batches.
    pub counters: Arc<crate::experiment::CounterBatcher>,
    /// Where ML router artifacts come from: paths, `file://`, `s3://` (cached on local disk).
    pub models: Arc<dyn routeiq::ml::ModelStore>,
    /// Virtual keys, budgets and spend (`crate::keys`); `None`: only the master key.
    pub control: Option<Arc<crate::keys::ControlPlane>>,
}

impl Services {
    /// In-memory state, the system clock, fresh metrics (also written as CloudWatch EMF lines
    /// when `settings.lambda`).
    pub fn new(settings: RuntimeSettings) -> Services {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let state: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new(clock.clone()));
        Self::with_state(settings, state, clock)
    }

    /// Services over a given state store and clock.
    pub fn with_state(
        settings: RuntimeSettings,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Services {
        let emf = settings.lambda.then(EmfEmitter::stdout);
        let env = |name: &str| std::env::var(name).ok();
        Services {
            metrics: Arc::new(Metrics::new(emf)),
            settings: Arc::new(settings),
            counters: crate::experiment::CounterBatcher::new(
                state.clone(),
                crate::experiment::FLUSH_INTERVAL,
            ),
            models: Arc::new(crate::s3::UriModelStore::new(crate::s3::model_cache_dir(
                &env,
            ))),
            state,
            clock,
            control: None,
        }
    }

    /// These services with the control plane over `store` (virtual keys on).
    /// `budget_status`: the status of a budget refusal.
    pub fn with_keys(
        mut self,
        store: Arc<dyn crate::keys::KeyStore>,
        budget_status: u16,
    ) -> Services {
        self.control = Some(crate::keys::ControlPlane::new(
            store,
            self.state.clone(),
            self.clock.clone(),
            crate::keys::ControlSettings {
                cache_ttl: self.settings.key_cache_ttl,
                spend_flush: self.settings.spend_flush,
                budget_status,
            },
        ));
        self
    }
}

/// Everything a request needs, built from one config (at start-up and on every
/// `/config/reload`).
pub struct Gateway {
    pub router: Router,
    providers: HashMap<String, Arc<Provider>>,
    pub(crate) http: crate::upstream::client::HttpClient,
    /// Clients must present this key; `None` runs open.
    pub master_key: Option<SecretString>,
    /// JWTs as client credentials (`general_settings.enable_jwt_auth`).
    pub jwt: Option<Arc<crate::keys::JwtAuth>>,
    pub max_request_bytes: usize,
    /// The config this gateway was built from.
    pub config: Arc<Config>,
    pub services: Services,
    /// How edge hints are verified and followed (`edge_hint`).
    pub edge_hint: crate::edge_hint::EdgeHintSettings,
    /// The A/B experiment of `routing_strategy_args.experiment`, when configured.
    pub experiment: Option<Arc<crate::experiment::ExperimentRecorder>>,
    /// Deployments whose endpoint is an IP literal the SSRF guard refuses (IP literals never
    /// reach the guarded resolver): every call to them is refused.
    blocked_endpoints: HashMap<String, OutboundBlocked>,
    /// Deployments no client could be built for, with the reason (the router skips them).
    unbuildable: Arc<HashMap<String, String>>,
    /// What loading the config warned about, then what building it did
    /// (`GET /config/warnings`).
    pub config_warnings: Arc<Vec<ConfigWarning>>,
}

/// The recorder of the config's experiment, if it has one.
fn experiment_recorder(
    config: &Config,
    services: &Services,
) -> Option<Arc<crate::experiment::ExperimentRecorder>> {
    let settings = config
        .router_settings
        .routing_strategy_args
        .experiment
        .clone()?;
    tracing::info!(
        experiment = %settings.name,
        model_group = %settings.model_group,
        arms = settings.arms.len(),
        "A/B experiment configured"
    );
    Some(Arc::new(crate::experiment::ExperimentRecorder::new(
        settings,
        services.counters.clone(),
        services.metrics.clone(),
        services.clock.clone(),
    )))
}

/// Why the gateway could not be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("HTTP client: {0}")]
    Http(String),
    /// The ML routing strategy could not be set up (or its artifact reloaded).
    #[error("router: {0}")]
    Router(String),
    /// The `edge_hint` settings are invalid.
    #[error("{path}: {message}")]
    EdgeHint { path: String, message: String },
    /// JWT authentication cannot be set up as configured (`crate::keys::jwt`).
    #[error("{path}: {message}")]
    Jwt { path: String, message: String },
    /// Virtual keys are on but no master key is set: keys would not be checked at all.
    #[error(
        "virtual keys are on (ROUTEIQ_KEYS_BACKEND or a key store) but no master key is set (general_settings.master_key or LITELLM_MASTER_KEY): requests would not be authenticated"
    )]
    KeysWithoutMasterKey,
}

/// Why building a gateway from a config failed, with every problem's path, for API answers.
impl BuildError {
    /// `(path, message)` of the problem.
    pub fn problem(&self) -> (String, String) {
        match self {
            BuildError::Http(m) => ("<http client>".to_string(), m.clone()),
            BuildError::Router(m) => ("router_settings.routing_strategy".to_string(), m.clone()),
            BuildError::EdgeHint { path, message } | BuildError::Jwt { path, message } => {
                (path.clone(), message.clone())
            }
            BuildError::KeysWithoutMasterKey => {
                ("general_settings.master_key".to_string(), self.to_string())
            }
        }
    }
}

impl Gateway {
    /// Builds the gateway with in-memory state, the system clock and default operational
    /// settings.
    pub fn new(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Gateway, BuildError> {
        Self::build(config, env, Services::new(RuntimeSettings::default()))
    }

    /// Builds the gateway over a given state store and clock, with default operational
    /// settings.
    pub fn with_state(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, BuildError> {
        Self::build(
            config,
            env,
            Services::with_state(RuntimeSettings::default(), state, clock),
        )
    }

    /// Builds the gateway for `config` on `services` (a reload passes the running ones, so
    /// metrics, settings and routing state carry over).
    pub fn build(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        services: Services,
    ) -> Result<Gateway, BuildError> {
        // Provider keys named in `environment_variables` come before the process environment,
        // as LiteLLM sets them into os.environ.
        let env_with_config = |name: &str| {
            config
                .environment_variables
                .get(name)
                .map(|s| s.expose().to_string())
                .or_else(|| env(name))
        };
        let router = crate::ml::build_router(config, &services)
            .map_err(BuildError::Router)?
            .with_circuit_breakers(services.settings.circuit_breakers);
        let mut providers = HashMap::new();
        let mut unbuildable = HashMap::new();
        let mut build_warnings = Vec::new();
        for (index, d) in router.deployments().enumerate() {
            // The router never routes to these (it answers with the reason instead).
            if d.unusable().is_some() {
                continue;
            }
            match crate::upstream::providers::for_deployment(d, &env_with_config) {
                Ok(p) => {
                    providers.insert(d.id.clone(), p);
                }
                // LiteLLM starts without a deployment it cannot call (e.g. Azure without an
                // endpoint) and fails its requests: so does RouteIQ, saying why.
                Err(e) => {
                    tracing::warn!(deployment = %d.id, index, error = %e, "deployment cannot be called; requests routed only to it will fail");
                    build_warnings.push(ConfigWarning::new(
                        format!("model_list[{index}]"),
                        WarningKind::Unusable,
                        format!("{e}: requests routed only to this deployment will fail"),
                    ));
                    unbuildable.insert(d.id.clone(), e.to_string());
                }
            }
        }
        let router = router.with_unusable(&unbuildable);
        let policy = Arc::new(services.settings.outbound.clone());
        let mut blocked_endpoints = HashMap::new();
        for (id, p) in &providers {
            if let Some(Err(blocked)) = p.endpoint().map(|u| policy.check_url(u, Trust::Operator)) {
                tracing::warn!(deployment = %id, error = %blocked, "deployment endpoint refused by the SSRF guard");
                blocked_endpoints.insert(id.clone(), blocked);
            }
        }
        let metrics = services.metrics.clone();
        let observer: BlockObserver = Arc::new(move |b: &OutboundBlocked| {
            metrics.observe_outbound_blocked(b.reason.as_str())
        });
        let http = crate::upstream::client::HttpClient::new(
            policy,
            Trust::Operator,
            Some(observer),
            services.settings.server_threads,
        )
        .map_err(|e| BuildError::Http(e.to_string()))?
        .with_limits(crate::upstream::client::ResponseLimits {
            max_body_bytes: crate::upstream::client::mb_to_bytes(
                config.general_settings.max_response_size_mb,
            ),
            max_sse_line_bytes: services.settings.max_sse_line_bytes,
        });
        let master_key = config
            .general_settings
            .master_key
            .clone()
            .or_else(|| env_with_config("LITELLM_MASTER_KEY").map(SecretString::new))
            .filter(|k| !k.is_empty());
        if services.control.is_some() && master_key.is_none() {
            return Err(BuildError::KeysWithoutMasterKey);
        }
        let jwt = crate::keys::JwtAuth::from_config(
            &config.general_settings,
            &env_with_config,
            services.control.is_some(),
            master_key.is_some(),
        )
        .map_err(|e| BuildError::Jwt {
            path: e.path,
            message: e.message,
        })?;
        if let Some(jwt) = &jwt {
            jwt.prefetch();
        }
        let max_request_bytes =
            crate::upstream::client::mb_to_bytes(config.general_settings.max_request_size_mb);
        let edge_hint = crate::edge_hint::EdgeHintSettings::resolve(config, &env_with_config)
            .map_err(|p| BuildError::EdgeHint {
                path: p.path,
                message: p.message,
            })?;
        let experiment = experiment_recorder(config, &services);
        Ok(Gateway {
            router,
            providers,
            http,
            master_key,
            jwt,
            max_request_bytes,
            config: Arc::new(config.clone()),
            services,
            edge_hint,
            experiment,
            blocked_endpoints,
            unbuildable: Arc::new(unbuildable),
            config_warnings: Arc::new(build_warnings),
        })
    }

    /// Re-creates the router (its strategies, from this gateway's config) over the same
    /// providers, HTTP client and routing state: what `POST /router/reload` swaps in.
    ///
    /// This is the extension point for ML routing: strategies that load models (re)load them
    /// here, and report the time with [`Metrics::record_model_load`].
    pub fn reload_router(&self) -> Result<Gateway, BuildError> {
        let router = match self.router.strategy().ml() {
            // An ML strategy reloads its artifact in place: a broken file is an error and
            // the running router keeps serving; a good one is swapped in atomically.
            Some(ml) => {
                crate::ml::force_reload(ml, self.metrics()).map_err(BuildError::Router)?;
                Router::with_ml_routing(
                    &self.config,
                    self.services.state.clone(),
                    self.services.clock.clone(),
                    ml.clone(),
                )
            }
            None => Router::new(
                &self.config,
                self.services.state.clone(),
                self.services.clock.clone(),
            ),
        }
        .with_circuit_breakers(self.services.settings.circuit_breakers)
        .with_unusable(&self.unbuildable);
        Ok(Gateway {
            router,
            providers: self.providers.clone(),
            http: self.http.clone(),
            master_key: self.master_key.clone(),
            jwt: self.jwt.clone(),
            max_request_bytes: self.max_request_bytes,
            config: self.config.clone(),
            services: self.services.clone(),
            edge_hint: self.edge_hint.clone(),
            experiment: self.experiment.clone(),
            blocked_endpoints: self.blocked_endpoints.clone(),
            unbuildable: self.unbuildable.clone(),
            config_warnings: self.config_warnings.clone(),
        })
    }

    /// The gateway with the warnings its config loaded with, before those of building it
    /// (`GET /config/warnings`).
    pub fn with_config_warnings(mut self, mut warnings: Vec<ConfigWarning>) -> Gateway {
        warnings.extend(self.config_warnings.iter().cloned());
        self.config_warnings = Arc::new(warnings);
        self
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.services.metrics
    }

    /// The operational settings.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.services.settings
    }

    pub(crate) fn provider(&self, deployment_id: &str) -> Option<&Provider> {
        self.providers.get(deployment_id).map(Arc::as_ref)
    }

    /// The SSRF guard's refusal of a deployment's IP-literal endpoint, if any.
    pub(crate) fn blocked_endpoint(&self, deployment_id: &str) -> Option<&OutboundBlocked> {
        self.blocked_endpoints.get(deployment_id)
    }
}

/// Non-streaming chat completion (and the client's `extra_headers`).
pub struct ChatOp<'r>(pub &'r ChatCompletionRequest, pub Option<&'r HeaderMap>);
/// Streaming chat completion.
pub struct ChatStreamOp<'r>(pub &'r ChatCompletionRequest, pub Option<&'r HeaderMap>);
/// Non-streaming legacy completion.
pub struct CompletionOp<'r>(pub &'r CompletionRequest, pub Option<&'r HeaderMap>);
/// Streaming legacy completion.
pub struct CompletionStreamOp<'r>(pub &'r CompletionRequest, pub Option<&'r HeaderMap>);
/// Embeddings.
pub struct EmbeddingsOp<'r>(pub &'r EmbeddingRequest, pub Option<&'r HeaderMap>);

fn usage_total(a: &Answer) -> u64 {
    a.usage.map_or(0, |u| u.total_tokens)
}

/// An [`Operation`] answered in one JSON body: the provider's `$method`, under the timeout.
macro_rules! answer_operation {
    ($op:ident, $method:ident) => {
        impl Operation for $op<'_> {
            type Output = Answer;

            fn is_stream(&self) -> bool {
                false
            }

            async fn call<'a>(
                &'a self,
                provider: &'a Provider,
                ctx: &'a CallContext<'a>,
                timeout: Duration,
            ) -> Result<Self::Output, GatewayError> {
                with_timeout(ctx.deployment, timeout, provider.$method(ctx, self.0)).await
            }

            fn total_tokens(output: &Self::Output) -> u64 {
                usage_total(output)
            }

            fn extra_headers(&self) -> Option<&HeaderMap> {
                self.1
            }
        }
    };
}

/// A streamed [`Operation`]: the provider's `$method`, its first chunk under the timeout
/// (tokens are counted when the stream ends).
macro_rules! stream_operation {
    ($op:ident, $chunk:ty, $method:ident) => {
        impl Operation for $op<'_> {
            type Output = StreamStart<$chunk>;

            fn is_stream(&self) -> bool {
                true
            }

            async fn call<'a>(
                &'a self,
                provider: &'a Provider,
                ctx: &'a CallContext<'a>,
                timeout: Duration,
            ) -> Result<Self::Output, GatewayError> {
                open_stream(ctx.deployment, timeout, provider.$method(ctx, self.0)).await
            }

            fn total_tokens(_: &Self::Output) -> u64 {
                0
            }

            fn extra_headers(&self) -> Option<&HeaderMap> {
                self.1
            }
        }
    };
}

answer_operation!(ChatOp, chat);
answer_operation!(CompletionOp, completion);
answer_operation!(EmbeddingsOp, embeddings);
stream_operation!(ChatStreamOp, ChatCompletionChunk, chat_stream);
stream_operation!(CompletionStreamOp, Value, completion_stream);
