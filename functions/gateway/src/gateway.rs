//! The gateway core: the router, one provider per deployment, the HTTP client, and the
//! operations the dispatcher runs. Handlers parse requests and call into this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use routeiq::config::{Config, SecretString};
use routeiq::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest,
    EmbeddingRequest,
};
use routeiq::router::Router;
use routeiq::state::{Clock, InMemoryStateStore, StateStore, SystemClock};
use serde_json::Value;

use crate::dispatch::{Operation, StreamStart, open_stream, with_timeout};
use crate::error::GatewayError;
use crate::providers::{CallContext, InferenceProvider, Provider};

/// Everything a request needs, built once at start-up.
pub struct Gateway {
    pub router: Router,
    providers: HashMap<String, Arc<Provider>>,
    pub(crate) http: reqwest::Client,
    /// Clients must present this key; `None` runs open.
    pub master_key: Option<SecretString>,
    pub max_request_bytes: usize,
}

/// Why the gateway could not be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("deployment '{deployment}' (model_list[{index}]): {source}")]
    Provider {
        deployment: String,
        index: usize,
        source: GatewayError,
    },
    #[error("HTTP client: {0}")]
    Http(String),
}

impl Gateway {
    /// Builds the gateway with in-memory state and the system clock.
    pub fn new(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Gateway, BuildError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let state: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new(clock.clone()));
        Self::with_state(config, env, state, clock)
    }

    pub fn with_state(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
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
        let router = Router::new(config, state, clock);
        let mut providers = HashMap::new();
        for (index, d) in router.deployments().enumerate() {
            if !d.provider.is_supported() && d.params.mock_response.is_none() {
                continue;
            }
            let p = Provider::for_deployment(d, &env_with_config).map_err(|source| {
                BuildError::Provider {
                    deployment: d.id.clone(),
                    index,
                    source,
                }
            })?;
            providers.insert(d.id.clone(), p);
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BuildError::Http(e.to_string()))?;
        let master_key = config
            .general_settings
            .master_key
            .clone()
            .or_else(|| env_with_config("LITELLM_MASTER_KEY").map(SecretString::new))
            .filter(|k| !k.is_empty());
        let max_request_bytes =
            (config.general_settings.max_request_size_mb * 1024.0 * 1024.0) as usize;
        Ok(Gateway {
            router,
            providers,
            http,
            master_key,
            max_request_bytes,
        })
    }

    pub(crate) fn provider(&self, deployment_id: &str) -> Option<&Provider> {
        self.providers.get(deployment_id).map(Arc::as_ref)
    }
}

/// Non-streaming chat completion.
pub struct ChatOp<'r>(pub &'r ChatCompletionRequest);
/// Streaming chat completion.
pub struct ChatStreamOp<'r>(pub &'r ChatCompletionRequest);
/// Non-streaming legacy completion.
pub struct CompletionOp<'r>(pub &'r CompletionRequest);
/// Streaming legacy completion.
pub struct CompletionStreamOp<'r>(pub &'r CompletionRequest);
/// Embeddings.
pub struct EmbeddingsOp<'r>(pub &'r EmbeddingRequest);

fn usage_total(v: &Value) -> u64 {
    v.get("usage")
        .and_then(|u| u.get("total_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl Operation for ChatOp<'_> {
    type Output = ChatCompletionResponse;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        with_timeout(ctx.deployment, timeout, provider.chat(ctx, self.0)).await
    }

    fn total_tokens(output: &Self::Output) -> u64 {
        output.usage.map_or(0, |u| u.total_tokens)
    }
}

impl Operation for ChatStreamOp<'_> {
    type Output = StreamStart<ChatCompletionChunk>;

    fn is_stream(&self) -> bool {
        true
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        open_stream(ctx.deployment, timeout, provider.chat_stream(ctx, self.0)).await
    }

    fn total_tokens(_: &Self::Output) -> u64 {
        0
    }
}

impl Operation for CompletionOp<'_> {
    type Output = Value;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        with_timeout(ctx.deployment, timeout, provider.completion(ctx, self.0)).await
    }

    fn total_tokens(output: &Self::Output) -> u64 {
        usage_total(output)
    }
}

impl Operation for CompletionStreamOp<'_> {
    type Output = StreamStart<Value>;

    fn is_stream(&self) -> bool {
        true
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        open_stream(
            ctx.deployment,
            timeout,
            provider.completion_stream(ctx, self.0),
        )
        .await
    }

    fn total_tokens(_: &Self::Output) -> u64 {
        0
    }
}

impl Operation for EmbeddingsOp<'_> {
    type Output = Value;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        with_timeout(ctx.deployment, timeout, provider.embeddings(ctx, self.0)).await
    }

    fn total_tokens(output: &Self::Output) -> u64 {
        usage_total(output)
    }
}
