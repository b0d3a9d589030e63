//! OpenAI's API and every OpenAI-compatible one (groq, together_ai, mistral, deepseek,
//! fireworks_ai, openrouter, ollama, hosted_vllm), plus the client Azure reuses.

use futures::StreamExt;
use futures::stream::BoxStream;
use http::Uri;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use routeiq::openai::{
    ChatCompletionChunk, ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Usage,
};
use routeiq::provider::{CompatibleProvider, ProviderKind};
use routeiq::router::Deployment;
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::http::{
    StreamEnd, Upstream, add_deployment_headers, is_litellm_only, json_bytes, merge_defaults,
    non_empty, parse_endpoint, resolve_api_base, resolve_key, secret_header, to_object,
    translate_events, wants_stream_usage,
};
use super::{Answer, ChunkStream, InferenceProvider, JsonStream};
use crate::error::GatewayError;
use crate::upstream::providers::CallContext;

/// An OpenAI endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Chat,
    Completions,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// How a deployment's endpoint URLs are formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UrlScheme {
    /// `{base}/chat/completions`, `{base}/embeddings`...; `base` includes the version segment.
    OpenAi { base: String },
    /// `{base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}`.
    Azure {
        base: String,
        deployment: String,
        api_version: String,
    },
}

impl UrlScheme {
    pub(super) fn url(&self, op: Endpoint) -> String {
        match self {
            UrlScheme::OpenAi { base } => format!("{base}/{}", op.path()),
            UrlScheme::Azure {
                base,
                deployment,
                api_version,
            } => format!(
                "{base}/openai/deployments/{deployment}/{}?api-version={api_version}",
                op.path()
            ),
        }
    }
}

/// Normalises a user-given OpenAI-style `api_base`: no trailing `/`, and `/v1` appended when
/// the URL has no path at all (LiteLLM configs use both `http://host:8000` and
/// `http://host:8000/v1`).
pub(super) fn normalize_api_base(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    if after_scheme.contains('/') {
        base.to_string()
    } else {
        format!("{base}/v1")
    }
}

/// The request plumbing of an OpenAI-shaped API: URLs, auth headers, body building (upstream
/// model name, deployment extras) and response handling. Used by [`OpenAiProvider`] and
/// [`super::azure::provider`].
#[derive(Debug, Clone)]
pub(super) struct OpenAiCompatibleClient {
    upstream: Upstream,
    /// The endpoint URLs parsed once at start-up (chat, completions, embeddings), so a
    /// request clones a parsed URL instead of parsing a string.
    parsed: [Uri; 3],
    headers: HeaderMap,
    model: String,
    defaults: Map<String, Value>,
    /// Whether streamed chats ask for `stream_options.include_usage` (not every API accepts it).
    stream_usage: bool,
}

impl OpenAiCompatibleClient {
    /// The chat endpoint URL (its host is the deployment's endpoint host).
    pub(super) fn endpoint(&self) -> &Uri {
        &self.parsed[0]
    }

    /// `headers` carries the auth header (already marked sensitive) and any fixed extras.
    /// Fails when the base URL does not parse.
    pub(super) fn new(
        d: &Deployment,
        urls: UrlScheme,
        mut headers: HeaderMap,
        stream_usage: bool,
    ) -> Result<Self, GatewayError> {
        add_deployment_headers(d, &mut headers)?;
        let parse = |op: Endpoint| parse_endpoint(d, &urls.url(op));
        let parsed = [
            parse(Endpoint::Chat)?,
            parse(Endpoint::Completions)?,
            parse(Endpoint::Embeddings)?,
        ];
        Ok(OpenAiCompatibleClient {
            upstream: Upstream::new(d.provider.name()),
            parsed,
            headers,
            model: d.upstream_model.clone(),
            defaults: d
                .params
                .extra
                .iter()
                .filter(|(k, _)| !is_litellm_only(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stream_usage,
        })
    }

    fn parsed_url(&self, op: Endpoint) -> &Uri {
        let i = match op {
            Endpoint::Chat => 0,
            Endpoint::Completions => 1,
            Endpoint::Embeddings => 2,
        };
        &self.parsed[i]
    }

    #[cfg(test)]
    pub(super) fn url(&self, op: Endpoint) -> String {
        self.parsed_url(op).to_string()
    }

    #[cfg(test)]
    pub(super) fn stream_usage(&self) -> bool {
        self.stream_usage
    }

    /// The request as the upstream body: upstream model name, deployment extras merged in.
    fn body<T: Serialize>(&self, req: &T) -> Result<Map<String, Value>, GatewayError> {
        let mut body = to_object(req)?;
        body.insert("model".into(), Value::String(self.model.clone()));
        merge_defaults(&mut body, &self.defaults);
        Ok(body)
    }

    /// `POST`s `body` to the operation's endpoint; the 2xx response's body streams.
    async fn post(
        &self,
        ctx: &CallContext<'_>,
        op: Endpoint,
        body: &impl Serialize,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        self.upstream
            .send(
                ctx.http,
                self.parsed_url(op),
                (&self.headers, ctx.extra_headers),
                json_bytes(body)?,
            )
            .await
    }

    /// `POST`s `body` and passes the 2xx answer through as it came, once it is checked to
    /// be JSON of the operation's shape ([`ChatShape`], [`UsageShape`]); its usage is read
    /// on the way.
    async fn post_answer(
        &self,
        ctx: &CallContext<'_>,
        op: Endpoint,
        body: &impl Serialize,
    ) -> Result<Answer, GatewayError> {
        let resp = self.post(ctx, op, body).await?;
        let body = self.upstream.read_body(ctx.http.limits(), resp).await?;
        let usage = match op {
            Endpoint::Chat => {
                serde_json::from_slice::<ChatShape>(&body).map(|a| read_usage(a.usage))
            }
            Endpoint::Completions | Endpoint::Embeddings => {
                serde_json::from_slice::<UsageShape>(&body).map(|a| read_usage(a.usage))
            }
        }
        .map_err(|e| self.upstream.unreadable_answer(&body, &e))?;
        Ok(Answer { body, usage })
    }

    pub(super) async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        let body = UpstreamChat {
            req,
            model: &self.model,
            defaults: &self.defaults,
        };
        self.post_answer(ctx, Endpoint::Chat, &body).await
    }

    /// Streams a chat. Usage is requested upstream (`stream_options.include_usage`) so it can
    /// be counted; the usage-only final chunk (empty `choices`) is forwarded only when the
    /// client asked for it itself.
    pub(super) async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        let client_wants_usage = wants_stream_usage(req);
        let mut body = self.body(req)?;
        body.insert("stream".into(), Value::Bool(true));
        if self.stream_usage && !client_wants_usage {
            let options = body
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if !options.is_object() {
                *options = Value::Object(Map::new());
            }
            if let Some(o) = options.as_object_mut() {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        let resp = self.post(ctx, Endpoint::Chat, &body).await?;
        Ok(openai_chunks(
            self.upstream.clone(),
            self.upstream.sse(ctx.http.limits(), resp, StreamEnd::Done),
            client_wants_usage,
        ))
    }

    pub(super) async fn completion(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<Answer, GatewayError> {
        let mut body = self.body(req)?;
        body.remove("stream");
        body.remove("stream_options");
        self.post_answer(ctx, Endpoint::Completions, &body).await
    }

    pub(super) async fn completion_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<JsonStream, GatewayError> {
        let mut body = self.body(req)?;
        body.insert("stream".into(), Value::Bool(true));
        let resp = self.post(ctx, Endpoint::Completions, &body).await?;
        let upstream = self.upstream.clone();
        Ok(translate_events(
            self.upstream.sse(ctx.http.limits(), resp, StreamEnd::Done),
            (),
            move |_, ev| {
                serde_json::from_str::<Value>(&ev.data)
                    .map(Some)
                    .map_err(|e| upstream.bad_response(format!("invalid completion event: {e}")))
            },
        ))
    }

    pub(super) async fn embeddings(
        &self,
        ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        let body = self.body(req)?;
        self.post_answer(ctx, Endpoint::Embeddings, &body).await
    }
}

/// A non-streamed chat request as its upstream body, written straight from the parsed
/// request: the upstream model name, no `stream`/`stream_options`, no `metadata`, and the
/// deployment's extra params where the request does not set them (what [`merge_defaults`]
/// does to the map form, without building the map).
struct UpstreamChat<'a> {
    req: &'a ChatCompletionRequest,
    model: &'a str,
    /// Deployment params forwarded upstream (LiteLLM-only keys already removed).
    defaults: &'a Map<String, Value>,
}

impl Serialize for UpstreamChat<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Destructured without `..`: a field added to the request type must be placed here.
        let ChatCompletionRequest {
            model: _,
            messages,
            stream: _,
            stream_options: _,
            max_tokens,
            max_completion_tokens,
            temperature,
            top_p,
            stop,
            tools,
            tool_choice,
            user,
            metadata: _,
            extra,
        } = self.req;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        m.serialize_entry("messages", messages)?;
        // The optional members the request sets, written and remembered, so that no
        // deployment default repeats them.
        macro_rules! opt {
            ($($key:ident),*) => {{
                let mut set = [""; [$(stringify!($key)),*].len()];
                let mut n = 0;
                $(
                    if let Some(v) = $key {
                        m.serialize_entry(stringify!($key), v)?;
                        set[n] = stringify!($key);
                        n += 1;
                    }
                )*
                (set, n)
            }};
        }
        let (set, n) = opt!(
            max_tokens,
            max_completion_tokens,
            temperature,
            top_p,
            stop,
            tools,
            tool_choice,
            user
        );
        for (k, v) in extra {
            m.serialize_entry(k, v)?;
        }
        // Never from the defaults: the model and messages are the request's, and a
        // non-streamed call sends no `stream*`.
        const OWN: [&str; 4] = ["model", "messages", "stream", "stream_options"];
        for (k, v) in self.defaults {
            let k = k.as_str();
            if !OWN.contains(&k) && !set[..n].contains(&k) && !extra.contains_key(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// What is checked of an OpenAI-compatible `chat.completion` before it passes through
/// unchanged: a JSON object with the members OpenAI's SDKs require, and its `usage`. serde
/// skips every other member without building it, so the check costs one scan of the bytes.
#[derive(serde::Deserialize)]
struct ChatShape<'a> {
    #[serde(rename = "id")]
    _id: IgnoredAny,
    #[serde(rename = "created")]
    _created: IgnoredAny,
    #[serde(rename = "model")]
    _model: IgnoredAny,
    #[serde(rename = "choices")]
    _choices: Vec<IgnoredAny>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

/// The same for legacy completions and embeddings: any JSON object, and its `usage`.
#[derive(serde::Deserialize)]
struct UsageShape<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

/// The token counts of a `usage` member, when they read as such: an unreadable `usage` only
/// loses this answer's cost accounting, never the answer.
fn read_usage(raw: Option<&RawValue>) -> Option<Usage> {
    raw.and_then(|u| serde_json::from_str(u.get()).ok())
}

/// Parses OpenAI chunk events, swallowing the usage-only chunk unless `forward_usage`.
fn openai_chunks(
    upstream: Upstream,
    events: super::http::SseStream,
    forward_usage: bool,
) -> ChunkStream {
    translate_events(events, (), move |_, ev| {
        let chunk: ChatCompletionChunk = serde_json::from_str(&ev.data)
            .map_err(|e| upstream.bad_response(format!("invalid chat chunk: {e}")))?;
        if !forward_usage && chunk.choices.is_empty() && chunk.usage.is_some() {
            return Ok(None);
        }
        Ok(Some(chunk))
    })
}

/// OpenAI's API, or any OpenAI-compatible server (`ProviderKind::Compatible`, or `openai/`
/// with an `api_base`). Requests are forwarded as they came, with the deployment's upstream
/// model name and `litellm_params` extras; answers are passed back unchanged, except that
/// streamed chats always ask for usage (see [`OpenAiCompatibleClient::chat_stream`]).
/// Without an API key no `Authorization` header is sent (ollama, vLLM).
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    pub(super) client: OpenAiCompatibleClient,
    /// `{base}/responses`: OpenAI deployments only (`openai/`), which get `POST /v1/responses`
    /// passed through; Azure and the OpenAI-compatible providers have none (their requests
    /// are translated to chat).
    responses_url: Option<Uri>,
}

impl OpenAiProvider {
    /// Resolves the base URL (`api_base`, else `OPENAI_API_BASE`/`OPENAI_BASE_URL` for OpenAI,
    /// else the provider's default) and the key (`api_key`, else the provider's variable).
    pub fn new(d: &Deployment, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, GatewayError> {
        // Mistral rejects `stream_options` and reports usage in its last chunk anyway.
        let stream_usage = match &d.provider {
            ProviderKind::OpenAi => true,
            ProviderKind::Compatible(c) => *c != CompatibleProvider::Mistral,
            other => {
                return Err(GatewayError::Internal(format!(
                    "deployment '{}': provider '{}' is not OpenAI-compatible",
                    d.id,
                    other.name()
                )));
            }
        };
        let base = resolve_api_base(d, env)
            .map(|b| normalize_api_base(&b))
            .ok_or_else(|| {
                GatewayError::NotSupported(format!(
                    "deployment '{}': provider '{}' has no default endpoint; set litellm_params.api_base",
                    d.id,
                    d.provider.name()
                ))
            })?;
        let mut headers = HeaderMap::new();
        if let Some(key) = resolve_key(d, d.provider.api_key_env(), env) {
            headers.insert(AUTHORIZATION, secret_header(d, "Bearer ", &key)?);
        }
        if let Some(org) = non_empty(d.params.organization.clone()) {
            let value = HeaderValue::from_str(&org).map_err(|_| {
                GatewayError::Internal(format!(
                    "deployment '{}': organization is not a valid header value",
                    d.id
                ))
            })?;
            headers.insert(HeaderName::from_static("openai-organization"), value);
        }
        let responses_url = match d.provider {
            ProviderKind::OpenAi => Some(parse_endpoint(d, &format!("{base}/responses"))?),
            _ => None,
        };
        let urls = UrlScheme::OpenAi { base };
        Ok(OpenAiProvider {
            client: OpenAiCompatibleClient::new(d, urls, headers, stream_usage)?,
            responses_url,
        })
    }
}

impl OpenAiProvider {
    /// A provider over a configured client (Azure's constructor, `super::azure`, makes one).
    pub(super) fn with_client(client: OpenAiCompatibleClient) -> Self {
        OpenAiProvider {
            client,
            responses_url: None,
        }
    }

    /// The Responses API URL, when this deployment takes `POST /v1/responses` as it is.
    fn responses_target(&self) -> Result<&Uri, GatewayError> {
        self.responses_url.as_ref().ok_or_else(|| {
            GatewayError::Internal(format!(
                "{} deployments do not take the Responses API",
                self.client.upstream.provider
            ))
        })
    }

    /// `POST`s a client's Responses request to `{base}/responses`, passed through
    /// ([`ResponsesBody`]).
    async fn post_responses(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        let url = self.responses_target()?;
        let body = ResponsesBody {
            model: &self.client.model,
            request,
            defaults: &self.client.defaults,
        };
        self.client
            .upstream
            .send(
                ctx.http,
                url,
                (&self.client.headers, ctx.extra_headers),
                json_bytes(&body)?,
            )
            .await
    }

    /// `POST /v1/responses` with the client's request passed through (`model` set to the
    /// deployment's): OpenAI's `Response` as sent, once checked to be one, with its usage.
    /// `request` must not ask for a stream.
    pub async fn responses_raw(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
    ) -> Result<Answer, GatewayError> {
        let resp = self.post_responses(ctx, request).await?;
        let upstream = &self.client.upstream;
        let body = upstream.read_body(ctx.http.limits(), resp).await?;
        let shape: ResponseShape =
            serde_json::from_slice(&body).map_err(|e| upstream.unreadable_answer(&body, &e))?;
        let usage = shape
            .usage
            .and_then(|u| serde_json::from_str::<ResponsesUsage>(u.get()).ok())
            .map(|u| Usage {
                prompt_tokens: u.input_tokens,
                completion_tokens: u.output_tokens,
                total_tokens: u
                    .total_tokens
                    .max(u.input_tokens.saturating_add(u.output_tokens)),
            });
        Ok(Answer { body, usage })
    }

    /// [`OpenAiProvider::responses_raw`] for a streaming request: the events as OpenAI sends
    /// them, ending after the terminal event (`response.completed`, `.incomplete`,
    /// `.failed`), bounded like every upstream stream; an `error` event (or a cut stream) is
    /// the last item, as an error.
    pub async fn responses_raw_stream(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
    ) -> Result<ResponsesEventStream, GatewayError> {
        let resp = self.post_responses(ctx, request).await?;
        Ok(self
            .client
            .upstream
            .sse(ctx.http.limits(), resp, StreamEnd::ResponseDone)
            .map(|item| {
                item.map(|ev| ResponsesEvent {
                    event: ev.event,
                    data: ev.data,
                })
            })
            .boxed())
    }
}

/// One event of a passed-through Responses stream, as sent: its `event:` name (`message` when
/// the line was missing) and its `data:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesEvent {
    pub event: String,
    pub data: String,
}

/// The events of a passed-through Responses stream.
pub type ResponsesEventStream = BoxStream<'static, Result<ResponsesEvent, GatewayError>>;

/// Deployment params that are Responses API parameters, sent when the request does not set
/// them (chat-only parameters such as `seed` or `stop` would be refused by `/responses`).
const RESPONSES_DEFAULTS: [&str; 12] = [
    "temperature",
    "top_p",
    "max_output_tokens",
    "parallel_tool_calls",
    "reasoning",
    "text",
    "truncation",
    "service_tier",
    "top_logprobs",
    "max_tool_calls",
    "prompt_cache_key",
    "safety_identifier",
];

/// A client's Responses request as sent to an OpenAI deployment: `model` is the deployment's
/// upstream model, every other member the client's, then the deployment's params that are
/// Responses parameters ([`RESPONSES_DEFAULTS`]; chat's `max_tokens`/`max_completion_tokens`
/// as `max_output_tokens`, `reasoning_effort` as `reasoning.effort`) where the request does
/// not set them.
struct ResponsesBody<'a> {
    model: &'a str,
    request: &'a Map<String, Value>,
    defaults: &'a Map<String, Value>,
}

impl ResponsesBody<'_> {
    /// The deployment params to add, under their Responses names.
    fn defaults(&self) -> Vec<(&str, Value)> {
        let mut out: Vec<(&str, Value)> = Vec::new();
        let mut add = |key: &'static str, value: Value| {
            if !self.request.contains_key(key) && !out.iter().any(|(k, _)| *k == key) {
                out.push((key, value));
            }
        };
        for key in RESPONSES_DEFAULTS {
            if let Some(v) = self.defaults.get(key) {
                add(key, v.clone());
            }
        }
        for key in ["max_completion_tokens", "max_tokens"] {
            if let Some(v) = self.defaults.get(key) {
                add("max_output_tokens", v.clone());
            }
        }
        if let Some(effort) = self.defaults.get("reasoning_effort") {
            add("reasoning", serde_json::json!({ "effort": effort }));
        }
        out
    }
}

impl Serialize for ResponsesBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        for (k, v) in self.request {
            if k != "model" {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.defaults() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// What is checked of a `Response` before it passes through unchanged: an `id`, an `output`
/// list, and its `usage`.
#[derive(serde::Deserialize)]
struct ResponseShape<'a> {
    #[serde(rename = "id")]
    _id: IgnoredAny,
    #[serde(rename = "output")]
    _output: Vec<IgnoredAny>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

/// A Responses `usage` object's token counts.
#[derive(serde::Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

#[async_trait::async_trait]
impl InferenceProvider for OpenAiProvider {
    async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        self.client.chat(ctx, req).await
    }

    async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        self.client.chat_stream(ctx, req).await
    }

    async fn completion(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<Answer, GatewayError> {
        self.client.completion(ctx, req).await
    }

    async fn completion_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &CompletionRequest,
    ) -> Result<JsonStream, GatewayError> {
        self.client.completion_stream(ctx, req).await
    }

    async fn embeddings(
        &self,
        ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        self.client.embeddings(ctx, req).await
    }

    fn as_openai_responses(&self) -> Option<&OpenAiProvider> {
        self.responses_url.is_some().then_some(self)
    }

    fn endpoint(&self) -> Option<&Uri> {
        Some(self.client.endpoint())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::State;
    use axum::http::HeaderMap as AxumHeaders;
    use axum::routing::post;
    use futures::StreamExt;
    use routeiq::config::SecretString;

    use super::super::http::test_support::{client, deployment, params, serve, sse_response};
    use super::super::{CallContext, InferenceProvider};
    use super::*;
    use crate::error::UpstreamErrorKind;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn base_of(p: &OpenAiProvider) -> String {
        let chat = p.client.url(Endpoint::Chat);
        chat.strip_suffix("/chat/completions")
            .unwrap_or_else(|| panic!("unexpected chat URL {chat}"))
            .to_string()
    }

    /// The upstream chat body written straight from the request equals the map form
    /// (serialize, set the model, merge the deployment's params, drop `stream*`).
    #[test]
    fn upstream_chat_body_matches_the_map_form() {
        let mut ps = params("openai/up-model");
        ps.api_key = Some(SecretString::new("sk-test"));
        for (k, v) in [
            ("temperature", json!(0.9)),   // the request sets it: the request wins
            ("seed", json!(42)),           // the request does not: forwarded
            ("metadata", json!({"a": 1})), // not the request's metadata (never forwarded)
            ("stream", json!(true)),       // dropped with the request's own
            ("drop_params", json!(true)),  // LiteLLM-only: never forwarded
            ("model", json!("other")),     // never overrides the upstream model
        ] {
            ps.extra.insert(k.into(), v);
        }
        let p = OpenAiProvider::new(&deployment(ps), &no_env).unwrap();
        let requests = [
            json!({"model": "group", "messages": [{"role": "user", "content": "hi"}]}),
            json!({
                "model": "group",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "u"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
                        "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "42"}
                ],
                "stream": false, "stream_options": {"include_usage": true},
                "max_tokens": 5, "max_completion_tokens": 6, "temperature": 0.2, "top_p": 0.5,
                "stop": ["x"], "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": "auto", "user": "me", "metadata": {"routing_profile": "eco"},
                "n": 2, "response_format": {"type": "json_object"}, "logit_bias": null
            }),
        ];
        for raw in requests {
            let req: ChatCompletionRequest = serde_json::from_value(raw).unwrap();
            let mut expected = p.client.body(&req).unwrap();
            expected.remove("stream");
            expected.remove("stream_options");
            let direct = UpstreamChat {
                req: &req,
                model: &p.client.model,
                defaults: &p.client.defaults,
            };
            let got: Value = serde_json::from_slice(&json_bytes(&direct).unwrap()).unwrap();
            assert_eq!(got, Value::Object(expected));
            assert_eq!(got["model"], "up-model");
            assert_eq!(got["seed"], 42);
            assert!(got.get("drop_params").is_none() && got.get("stream").is_none());
        }
    }

    #[test]
    fn api_base_normalisation() {
        assert_eq!(
            normalize_api_base("http://host:8000"),
            "http://host:8000/v1"
        );
        assert_eq!(
            normalize_api_base("http://host:8000/"),
            "http://host:8000/v1"
        );
        assert_eq!(
            normalize_api_base("http://host:8000/v1/"),
            "http://host:8000/v1"
        );
        assert_eq!(
            normalize_api_base("https://api.groq.com/openai/v1"),
            "https://api.groq.com/openai/v1"
        );
        assert_eq!(normalize_api_base("localhost:11434"), "localhost:11434/v1");
    }

    #[test]
    fn base_url_and_key_resolution() {
        let p = OpenAiProvider::new(&deployment(params("gpt-4o")), &no_env).unwrap();
        assert_eq!(base_of(&p), "https://api.openai.com/v1");
        assert!(p.client.headers.get(AUTHORIZATION).is_none());

        let env = |name: &str| match name {
            "OPENAI_API_BASE" => Some("http://proxy:4000".to_string()),
            "OPENAI_API_KEY" => Some("sk-env".to_string()),
            _ => None,
        };
        let p = OpenAiProvider::new(&deployment(params("openai/gpt-4o")), &env).unwrap();
        assert_eq!(base_of(&p), "http://proxy:4000/v1");
        assert_eq!(p.client.headers[AUTHORIZATION], "Bearer sk-env");
        assert!(p.client.headers[AUTHORIZATION].is_sensitive());

        let mut ps = params("groq/llama-3.1-8b-instant");
        ps.api_key = Some(SecretString::new("gsk-param"));
        let env = |name: &str| (name == "GROQ_API_KEY").then(|| "gsk-env".to_string());
        let p = OpenAiProvider::new(&deployment(ps), &env).unwrap();
        assert_eq!(base_of(&p), "https://api.groq.com/openai/v1");
        assert_eq!(p.client.headers[AUTHORIZATION], "Bearer gsk-param");
        assert_eq!(p.client.model, "llama-3.1-8b-instant");

        let p = OpenAiProvider::new(&deployment(params("ollama/llama3")), &no_env).unwrap();
        assert_eq!(base_of(&p), "http://localhost:11434/v1");
        assert!(p.client.headers.is_empty());

        let err =
            OpenAiProvider::new(&deployment(params("hosted_vllm/qwen")), &no_env).unwrap_err();
        assert!(matches!(err, GatewayError::NotSupported(ref m) if m.contains("api_base")));
        let mut ps = params("hosted_vllm/qwen");
        ps.api_base = Some("http://gpu:8000".into());
        ps.organization = Some("org-1".into());
        let p = OpenAiProvider::new(&deployment(ps), &no_env).unwrap();
        assert_eq!(base_of(&p), "http://gpu:8000/v1");
        assert_eq!(p.client.headers["openai-organization"], "org-1");
    }

    #[derive(Default, Clone)]
    struct Seen {
        body: Arc<Mutex<Option<Value>>>,
        headers: Arc<Mutex<Option<AxumHeaders>>>,
    }

    fn request(body: Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    async fn provider_for(seen: &Seen, app: axum::Router<Seen>) -> OpenAiProvider {
        let url = serve(app.with_state(seen.clone())).await;
        let mut ps = params("openai/gpt-4o-mini");
        ps.api_base = Some(url);
        ps.api_key = Some(SecretString::new("sk-test"));
        ps.extra.insert("temperature".into(), json!(0.9));
        ps.extra.insert("seed".into(), json!(42));
        OpenAiProvider::new(&deployment(ps), &no_env).unwrap()
    }

    async fn record(seen: &Seen, headers: AxumHeaders, body: Value) {
        *seen.body.lock().unwrap() = Some(body);
        *seen.headers.lock().unwrap() = Some(headers);
    }

    #[tokio::test]
    async fn chat_round_trip() {
        let seen = Seen::default();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(|State(seen): State<Seen>, headers: AxumHeaders, Json(body): Json<Value>| async move {
                record(&seen, headers, body).await;
                Json(json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",
                    "choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],
                    "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}))
            }),
        );
        let p = provider_for(&seen, app).await;
        let http = client();
        let d = deployment(params("gpt-4o"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let req = request(
            json!({"model":"my-group","messages":[{"role":"user","content":"hi"}],
            "temperature":0.1,"metadata":{"routing_profile":"eco"}}),
        );
        let resp: routeiq::openai::ChatCompletionResponse =
            p.chat(&ctx, &req).await.unwrap().parse().unwrap();
        assert_eq!(resp.choices[0].message.content.as_deref(), Some("hello"));
        let body = seen.body.lock().unwrap().clone().unwrap();
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["temperature"], json!(0.1));
        assert_eq!(body["seed"], json!(42));
        assert!(body.get("metadata").is_none());
        let headers = seen.headers.lock().unwrap().clone().unwrap();
        assert_eq!(headers["authorization"], "Bearer sk-test");
    }

    #[tokio::test]
    async fn responses_pass_through_with_the_deployment_model_and_its_responses_extras() {
        use axum::response::IntoResponse;
        let seen = Seen::default();
        let app = axum::Router::new().route(
            "/v1/responses",
            post(|State(seen): State<Seen>, headers: AxumHeaders, Json(body): Json<Value>| async move {
                let stream = body["stream"] == json!(true);
                record(&seen, headers, body).await;
                if stream {
                    sse_response(concat!(
                        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
                        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]}}\n\n",
                        "event: after\ndata: {}\n\n",
                    ))
                } else {
                    Json(json!({"id": "resp_2", "object": "response", "status": "completed", "output": [],
                        "usage": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}}))
                    .into_response()
                }
            }),
        );
        let p = provider_for(&seen, app).await;
        assert!(p.as_openai_responses().is_some());
        let http = client();
        let d = deployment(params("gpt-4o"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let answer = p
            .responses_raw(
                &ctx,
                &obj(json!({"model": "my-group", "input": "hi", "top_p": 0.5})),
            )
            .await
            .unwrap();
        assert_eq!(answer.usage.unwrap().total_tokens, 6);
        assert_eq!(answer.parse::<Value>().unwrap()["id"], "resp_2");
        let body = seen.body.lock().unwrap().clone().unwrap();
        // The deployment's model; its `temperature` (a Responses parameter) fills in, its
        // `seed` (chat only) does not.
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "input": "hi", "top_p": 0.5, "temperature": 0.9})
        );
        let events: Vec<_> = p
            .responses_raw_stream(
                &ctx,
                &obj(json!({"model": "g", "input": "hi", "stream": true, "temperature": 0.1})),
            )
            .await
            .unwrap()
            .collect()
            .await;
        let names: Vec<String> = events.into_iter().map(|e| e.unwrap().event).collect();
        assert_eq!(names, ["response.created", "response.completed"]);
        let body = seen.body.lock().unwrap().clone().unwrap();
        assert_eq!(body["temperature"], json!(0.1));
        // A chat-only deployment's extras map to their Responses names.
        let defaults: Map<String, Value> =
            obj(json!({"max_tokens": 100, "reasoning_effort": "low", "stop": ["x"]}));
        let request = obj(json!({"model": "g", "input": "hi"}));
        let body = ResponsesBody {
            model: "up",
            request: &request,
            defaults: &defaults,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"model": "up", "input": "hi", "max_output_tokens": 100, "reasoning": {"effort": "low"}})
        );
        // OpenAI-compatible providers and Azure are translated.
        let groq = OpenAiProvider::new(&deployment(params("groq/llama-3")), &no_env).unwrap();
        assert!(groq.as_openai_responses().is_none());
    }

    #[tokio::test]
    async fn chat_error_status_maps() {
        let seen = Seen::default();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(|| async {
                (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "2")],
                    Json(json!({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})),
                )
            }),
        );
        let p = provider_for(&seen, app).await;
        let http = client();
        let d = deployment(params("gpt-4o"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let req = request(json!({"model":"g","messages":[{"role":"user","content":"hi"}]}));
        match p.chat(&ctx, &req).await.unwrap_err() {
            GatewayError::Upstream {
                status,
                kind,
                message,
                retry_after,
                provider,
            } => {
                assert_eq!((status, kind), (429, UpstreamErrorKind::RateLimit));
                assert_eq!(message, "Rate limit reached");
                assert_eq!(retry_after, Some(std::time::Duration::from_secs(2)));
                assert_eq!(provider, "openai");
            }
            other => panic!("unexpected {other:?}"),
        }
        let bad = axum::Router::new().route("/v1/chat/completions", post(|| async { "not json" }));
        let p = provider_for(&seen, bad).await;
        assert!(matches!(
            p.chat(&ctx, &req).await.unwrap_err(),
            GatewayError::BadUpstreamResponse { .. }
        ));
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );

    async fn stream_with(include_usage: Option<bool>) -> (Vec<ChatCompletionChunk>, Value) {
        let seen = Seen::default();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(|State(seen): State<Seen>, headers: AxumHeaders, Json(body): Json<Value>| async move {
                record(&seen, headers, body).await;
                sse_response(STREAM)
            }),
        );
        let p = provider_for(&seen, app).await;
        let http = client();
        let d = deployment(params("gpt-4o"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let mut req =
            request(json!({"model":"g","messages":[{"role":"user","content":"hi"}],"stream":true}));
        if let Some(u) = include_usage {
            req.stream_options = Some(routeiq::openai::StreamOptions {
                include_usage: Some(u),
                extra: Map::new(),
            });
        }
        let chunks: Vec<ChatCompletionChunk> = p
            .chat_stream(&ctx, &req)
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        let body = seen.body.lock().unwrap().clone().unwrap();
        (chunks, body)
    }

    #[tokio::test]
    async fn stream_usage_chunk_only_when_asked() {
        let (chunks, body) = stream_with(None).await;
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Hi"));

        let (chunks, body) = stream_with(Some(true)).await;
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[2].usage.unwrap().total_tokens, 4);
    }

    fn stream_items(parts: &'static [&'static str]) -> ChunkStream {
        let up = Upstream::new("openai");
        let bytes = futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
        .boxed();
        openai_chunks(
            up.clone(),
            up.sse_from_bytes(
                bytes,
                StreamEnd::Done,
                crate::upstream::client::ResponseLimits::default(),
            ),
            false,
        )
    }

    #[tokio::test]
    async fn cut_and_erroring_streams() {
        const CHUNK: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n";
        let items: Vec<_> = stream_items(&[CHUNK]).collect().await;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(GatewayError::Connection { .. })));

        let items: Vec<_> = stream_items(&[
            CHUNK,
            "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
        ])
        .collect()
        .await;
        assert_eq!(items.len(), 2);
        assert!(matches!(
            items[1],
            Err(GatewayError::Upstream {
                kind: UpstreamErrorKind::InternalServer,
                ..
            })
        ));

        let items: Vec<_> = stream_items(&["data: {not json}\n\n", "data: [DONE]\n\n"])
            .collect()
            .await;
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Err(GatewayError::BadUpstreamResponse { .. })
        ));

        // The usage-only chunk is swallowed when the client did not ask for it.
        const USAGE: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n";
        let items: Vec<_> = stream_items(&[CHUNK, USAGE, "data: [DONE]\n\n"])
            .collect()
            .await;
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
    }

    #[tokio::test]
    async fn completions_and_embeddings_pass_through() {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route(
                "/v1/embeddings",
                post(|State(seen): State<Seen>, headers: AxumHeaders, Json(body): Json<Value>| async move {
                    record(&seen, headers, body).await;
                    Json(json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"e"}))
                }),
            )
            .route(
                "/v1/completions",
                post(|| async {
                    sse_response(concat!(
                        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"a\",\"index\":0}]}\n\n",
                        "data: [DONE]\n\n"
                    ))
                }),
            );
        let p = provider_for(&seen, app).await;
        let http = client();
        let d = deployment(params("gpt-4o"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        let req: EmbeddingRequest =
            serde_json::from_value(json!({"model":"g","input":"hi"})).unwrap();
        let v: Value = p.embeddings(&ctx, &req).await.unwrap().parse().unwrap();
        assert_eq!(v["data"][0]["embedding"][0], json!(0.1));
        assert_eq!(
            seen.body.lock().unwrap().clone().unwrap()["model"],
            "gpt-4o-mini"
        );
        let req: CompletionRequest =
            serde_json::from_value(json!({"model":"g","prompt":"hi","stream":true})).unwrap();
        let items: Vec<Value> = p
            .completion_stream(&ctx, &req)
            .await
            .unwrap()
            .map(|v| v.unwrap())
            .collect()
            .await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["choices"][0]["text"], "a");
    }
}
