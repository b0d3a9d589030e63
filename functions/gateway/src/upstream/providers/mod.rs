//! Upstream providers: one enum of concrete types behind one trait (tensorzero's
//! `ProviderConfig` pattern). Each provider translates OpenAI-shaped requests into its API and
//! its answers (and stream events) back into OpenAI shapes.
//!
//! Providers do not time out, retry or fall back: the dispatcher (`crate::upstream::dispatch`) wraps every
//! call in the deployment's timeout and owns retries, cooldowns and fallbacks.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use routeiq::openai::{
    ChatCompletionChunk, ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Usage,
};
use routeiq::provider::ProviderKind;
use routeiq::router::Deployment;
use serde_json::Value;

use crate::error::GatewayError;

mod anthropic;
pub mod azure;
mod bedrock;
mod gemini;
mod google_auth;
mod http;
mod mock;
mod openai;

pub use anthropic::{ANTHROPIC_BETA, AnthropicProvider, RawEvent, RawEventStream};
pub use bedrock::BedrockProvider;
pub use gemini::GeminiProvider;
pub use mock::MockProvider;
pub use openai::{OpenAiProvider, ResponsesEvent, ResponsesEventStream};

/// A stream of OpenAI `chat.completion.chunk`s.
pub type ChunkStream = BoxStream<'static, Result<ChatCompletionChunk, GatewayError>>;
/// A stream of OpenAI-shaped JSON events (legacy completions).
pub type JsonStream = BoxStream<'static, Result<Value, GatewayError>>;

/// A non-streamed answer in OpenAI's JSON shape, as the client gets it: the upstream's body
/// unchanged (OpenAI-compatible APIs, after a check of its shape) or RouteIQ's translation
/// (Anthropic, Bedrock, mock), with the token usage it reports.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    pub usage: Option<Usage>,
}

impl Answer {
    /// A translated answer, serialized.
    pub fn json(
        value: &impl serde::Serialize,
        usage: Option<Usage>,
    ) -> Result<Answer, GatewayError> {
        Ok(Answer {
            body: http::json_bytes(value)?,
            usage,
        })
    }

    /// The body parsed as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// What a provider call needs besides the request.
pub struct CallContext<'a> {
    pub deployment: &'a Deployment,
    pub http: &'a crate::upstream::client::HttpClient,
    /// The client's `extra_headers` for the upstream (checked by [`crate::http::client_params`]).
    pub extra_headers: Option<&'a ::http::HeaderMap>,
}

impl CallContext<'_> {
    /// Refuses a call with client `extra_headers` on a provider that cannot send them. The
    /// forwarded trace headers (`forward_traceparent_to_llm_provider`) are not refused: such a
    /// provider's SDK sets its own.
    pub fn refuse_extra_headers(&self) -> Result<(), GatewayError> {
        let is_trace = |k: &::http::HeaderName| {
            crate::http::client_params::TRACE_HEADERS.contains(&k.as_str())
        };
        match self.extra_headers {
            Some(h) if h.keys().any(|k| !is_trace(k)) => Err(GatewayError::NotSupported(format!(
                "'extra_headers' cannot be sent to {} deployments",
                self.deployment.provider.name()
            ))),
            _ => Ok(()),
        }
    }
}

/// One upstream API.
#[async_trait]
pub trait InferenceProvider: Send + Sync {
    /// Non-streaming chat completion, as OpenAI's `chat.completion` JSON.
    async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError>;

    /// Streaming chat completion. Returns once the upstream has accepted the request
    /// (2xx status); errors before that are `Err`, errors mid-stream are stream items.
    async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError>;

    /// Legacy text completion (`/v1/completions`), as OpenAI's `text_completion` JSON. By
    /// default the prompt is one user message to [`InferenceProvider::chat`] and the answer is
    /// reshaped; providers with a completions endpoint override it.
    async fn completion(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<Answer, GatewayError> {
        let chat = http::completion_as_chat(req)?;
        let answer = self.chat(ctx, &chat).await?;
        let resp: routeiq::openai::ChatCompletionResponse = answer
            .parse()
            .map_err(|e| GatewayError::Internal(format!("reading a chat answer: {e}")))?;
        Answer::json(&http::text_completion_from_chat(&resp), resp.usage)
    }

    /// Streaming legacy text completion; by default [`InferenceProvider::chat_stream`]'s
    /// chunks reshaped, like [`InferenceProvider::completion`].
    async fn completion_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<JsonStream, GatewayError> {
        let chat = http::completion_as_chat(req)?;
        Ok(http::text_completion_stream(
            self.chat_stream(ctx, &chat).await?,
        ))
    }

    /// Embeddings, as OpenAI's `list` of `embedding` objects.
    async fn embeddings(
        &self,
        ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError>;

    /// The provider as OpenAI's Responses API, which `POST /v1/responses` passes requests
    /// through to (`None`: the request is translated to a chat call).
    fn as_openai_responses(&self) -> Option<&OpenAiProvider> {
        None
    }

    /// The URL the provider calls, for the SSRF guard's start-up check (`None`: no fixed
    /// endpoint — mock deployments, Bedrock's regional endpoint).
    fn endpoint(&self) -> Option<&::http::Uri>;

    /// The provider as Anthropic's Messages API, which `POST /v1/messages` passes requests
    /// through to unchanged (`None`: the request is translated to a chat call).
    fn as_anthropic(&self) -> Option<&AnthropicProvider> {
        None
    }
}

/// A deployment's provider (one dispatch style: a trait object).
pub type Provider = dyn InferenceProvider;

/// Builds the provider for a deployment: resolves its base URL and API key (from
/// `litellm_params`, else the provider's variables via `env`). `mock_response` deployments
/// get the mock provider whatever their prefix.
pub fn for_deployment(
    d: &Deployment,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<Provider>, GatewayError> {
    if let Some(text) = &d.params.mock_response {
        return Ok(Arc::new(MockProvider::new(text.clone())));
    }
    Ok(match &d.provider {
        ProviderKind::OpenAi | ProviderKind::Compatible(_) => {
            Arc::new(OpenAiProvider::new(d, env)?)
        }
        ProviderKind::Azure => Arc::new(azure::provider(d, env)?),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(d, env)?),
        ProviderKind::Bedrock => Arc::new(BedrockProvider::new(d)?),
        ProviderKind::VertexAi
            if ProviderKind::vertex_publisher(&d.upstream_model) == Some("anthropic") =>
        {
            Arc::new(AnthropicProvider::new_vertex(d, env)?)
        }
        ProviderKind::Gemini | ProviderKind::VertexAi => Arc::new(GeminiProvider::new(d, env)?),
        ProviderKind::Unsupported(name) => {
            return Err(GatewayError::NotSupported(format!(
                "provider '{name}' (deployment '{}') is not supported by RouteIQ yet",
                d.id
            )));
        }
    })
}
