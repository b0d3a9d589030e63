//! Anthropic's Messages API, translated to and from OpenAI's chat format as LiteLLM does.

use std::borrow::Cow;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::Uri;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use routeiq::openai::{
    ChatChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
    ChunkChoice, ContentPart, Delta, EmbeddingRequest, FunctionCall, MessageContent,
    ResponseMessage, Role, Tool, ToolCall, Usage,
};
use routeiq::router::Deployment;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::http::{
    SseStream, StreamEnd, Upstream, add_deployment_headers, is_litellm_only, json_bytes,
    merge_defaults, parse_endpoint, resolve_api_base, resolve_key, secret_header, to_object,
    translate_events, unix_seconds_now, wants_stream_usage,
};
use super::{Answer, CallContext, ChunkStream, InferenceProvider};
use crate::error::GatewayError;

const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The client header naming Anthropic beta features; passed through to Anthropic only.
pub const ANTHROPIC_BETA: &str = "anthropic-beta";
/// `max_tokens` when neither the request, the deployment nor its `model_info` sets one
/// (Anthropic requires it).
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// OpenAI parameters with no Anthropic counterpart. With `drop_params` they are dropped
/// (logged at debug level); without, a request carrying one is a 400 naming them, as in
/// LiteLLM ([`check_unsupported`]). Any other unknown parameter is passed through, so
/// Anthropic-native ones (`top_k`, `thinking`...) work from requests and `litellm_params`.
const DROPPED_PARAMS: &[&str] = &[
    "audio",
    "best_of",
    "echo",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "modalities",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "store",
    "suffix",
    "top_logprobs",
    "verbosity",
    "web_search_options",
];

/// Anthropic's Messages API (`POST {api_base}/v1/messages`, `x-api-key`,
/// `anthropic-version: 2023-06-01`). OpenAI chat requests are translated (system messages to
/// `system`, tools and tool results to `tool_use`/`tool_result` blocks, images to image blocks,
/// a default `max_tokens`), and answers and stream events are translated back to OpenAI's
/// `chat.completion`/`chat.completion.chunk`. Legacy completions run as a one-message chat;
/// embeddings are not offered.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    upstream: Upstream,
    /// The Messages API URL, parsed once at start-up.
    url: Uri,
    /// `{messages URL}/count_tokens`.
    count_tokens_url: Uri,
    headers: HeaderMap,
    model: String,
    defaults: Map<String, Value>,
    default_max_tokens: u64,
    /// `drop_params` (the deployment's, else `litellm_settings`').
    drop_params: bool,
    /// Claude on Vertex AI (`vertex_ai/claude-*`): the streaming URL and the token source.
    vertex: Option<VertexClaude>,
}

/// Claude on Vertex AI: Anthropic's Messages API at `…/publishers/anthropic/models/{model}`
/// `:rawPredict` (`url`) and `:streamRawPredict`, with Google OAuth tokens; the body names no
/// `model` and carries `anthropic_version: vertex-2023-10-16`.
#[derive(Debug, Clone)]
struct VertexClaude {
    stream_url: Uri,
    tokens: std::sync::Arc<super::google_auth::TokenSource>,
}

/// The `anthropic_version` Vertex AI's Claude endpoints take in the body.
const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

impl AnthropicProvider {
    /// Base URL from `api_base`, else `ANTHROPIC_API_BASE`/`ANTHROPIC_BASE_URL`, else
    /// Anthropic's; key from `api_key`, else `ANTHROPIC_API_KEY`.
    pub fn new(d: &Deployment, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, GatewayError> {
        let base = resolve_api_base(d, env).ok_or_else(|| {
            GatewayError::Internal(format!("deployment '{}': anthropic has no endpoint", d.id))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = resolve_key(d, d.provider.api_key_env(), env) {
            headers.insert(
                HeaderName::from_static("x-api-key"),
                secret_header(d, "", &key)?,
            );
        }
        add_deployment_headers(d, &mut headers)?;
        let url = parse_endpoint(d, &messages_url(&base))?;
        let count_tokens_url = parse_endpoint(d, &format!("{}/count_tokens", messages_url(&base)))?;
        Ok(AnthropicProvider {
            upstream: Upstream::new(d.provider.name()),
            url,
            count_tokens_url,
            headers,
            model: d.upstream_model.clone(),
            defaults: d.params.extra.clone(),
            // `model_info.max_tokens` is a context window in LiteLLM, not an output length.
            default_max_tokens: d.info.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            drop_params: d.params.drop_params.unwrap_or(false),
            vertex: None,
        })
    }

    /// Claude on Vertex AI (`vertex_ai/claude-*`): the project, location and credentials as
    /// for Gemini on Vertex AI (see `google_auth::vertex_model_base`). Chat requests are
    /// translated as for Anthropic; `/v1/messages` translates too (no pass-through here).
    pub fn new_vertex(
        d: &Deployment,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, GatewayError> {
        let model = d.upstream_model.trim();
        let (base, tokens) = super::google_auth::vertex_model_base(d, env, "anthropic", model)?;
        let mut headers = HeaderMap::new();
        add_deployment_headers(d, &mut headers)?;
        let url = parse_endpoint(d, &format!("{base}:rawPredict"))?;
        Ok(AnthropicProvider {
            upstream: Upstream::new(d.provider.name()),
            count_tokens_url: url.clone(),
            url,
            headers,
            model: model.to_string(),
            defaults: d.params.extra.clone(),
            default_max_tokens: d.info.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            drop_params: d.params.drop_params.unwrap_or(false),
            vertex: Some(VertexClaude {
                stream_url: parse_endpoint(d, &format!("{base}:streamRawPredict"))?,
                tokens,
            }),
        })
    }

    fn body(
        &self,
        req: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<Map<String, Value>, GatewayError> {
        let req = with_defaults(req, &self.defaults)?;
        check_unsupported(&req, "anthropic", self.drop_params)?;
        let mut body = build_request(&req, &self.model, self.default_max_tokens, stream)?;
        if self.vertex.is_some() {
            body.remove("model");
            body.insert(
                "anthropic_version".into(),
                Value::String(VERTEX_ANTHROPIC_VERSION.into()),
            );
        }
        Ok(body)
    }

    /// `POST`s `body` to the Messages API; the 2xx response's body streams.
    async fn post(
        &self,
        ctx: &CallContext<'_>,
        body: &Map<String, Value>,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        let Some(vertex) = &self.vertex else {
            return self
                .upstream
                .send(
                    ctx.http,
                    &self.url,
                    (&self.headers, ctx.extra_headers),
                    json_bytes(body)?,
                )
                .await;
        };
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        let url = if stream {
            &vertex.stream_url
        } else {
            &self.url
        };
        let mut headers = self.headers.clone();
        headers.insert(
            http::header::AUTHORIZATION,
            super::google_auth::bearer(&vertex.tokens.token().await?)?,
        );
        self.upstream
            .send(
                ctx.http,
                url,
                (&headers, ctx.extra_headers),
                json_bytes(body)?,
            )
            .await
    }
}

impl AnthropicProvider {
    /// A Messages API call, translated to a `chat.completion`.
    async fn messages(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChatCompletionResponse, GatewayError> {
        let body = self.body(req, false)?;
        let resp = self.post(ctx, &body).await?;
        let resp: MessagesResponse = self.upstream.read_json(ctx.http.limits(), resp).await?;
        Ok(to_chat_response(resp, &self.model))
    }
}

/// One event of an Anthropic stream, as sent: its `event:` name (`message` when the line was
/// missing) and its `data:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub event: String,
    pub data: String,
}

/// The events of a passed-through Messages stream, ending after `message_stop`; a failure
/// (an `error` event, a cut or oversized stream) is the last item.
pub type RawEventStream = BoxStream<'static, Result<RawEvent, GatewayError>>;

/// A client's Messages (or count_tokens) request as sent to the deployment: `model` is the
/// deployment's upstream model, every other member the client's, then (Messages calls only)
/// the deployment's `litellm_params` extras the request does not set, leaving out LiteLLM's
/// own settings and OpenAI-only parameters.
struct PassthroughBody<'a> {
    model: &'a str,
    request: &'a Map<String, Value>,
    defaults: Option<&'a Map<String, Value>>,
}

impl Serialize for PassthroughBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        for (k, v) in self.request {
            if k != "model" {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.defaults.into_iter().flatten() {
            if k != "model"
                && !self.request.contains_key(k)
                && !is_litellm_only(k)
                && !DROPPED_PARAMS.contains(&k.as_str())
            {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// What a Messages answer says about tokens (the rest of it is relayed unread).
#[derive(Debug, Deserialize)]
struct MessageUsageOnly {
    #[allow(dead_code)] // required: a body without an id is not a message
    id: String,
    #[serde(default)]
    usage: routeiq::anthropic::MessageUsage,
}

impl AnthropicProvider {
    /// `POST`s a client's request, passed through ([`PassthroughBody`]), to `url`, with the
    /// client's `anthropic-beta` header (`beta`) beside its `extra_headers` (the
    /// deployment's own headers win).
    async fn post_passthrough(
        &self,
        ctx: &CallContext<'_>,
        url: &Uri,
        body: &PassthroughBody<'_>,
        beta: Option<&HeaderValue>,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        let with_beta;
        let extra = match beta {
            Some(beta) => {
                let mut h = ctx.extra_headers.cloned().unwrap_or_default();
                h.entry(HeaderName::from_static(ANTHROPIC_BETA))
                    .or_insert_with(|| beta.clone());
                with_beta = h;
                Some(&with_beta)
            }
            None => ctx.extra_headers,
        };
        self.upstream
            .send(ctx.http, url, (&self.headers, extra), json_bytes(body)?)
            .await
    }

    /// `POST /v1/messages` with the client's request passed through (`model` set to the
    /// deployment's): Anthropic's answer as sent, with its usage (cache reads and writes count
    /// as prompt tokens). `request` must not ask for a stream.
    pub async fn messages_raw(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
        beta: Option<&HeaderValue>,
    ) -> Result<Answer, GatewayError> {
        let body = PassthroughBody {
            model: &self.model,
            request,
            defaults: Some(&self.defaults),
        };
        let resp = self.post_passthrough(ctx, &self.url, &body, beta).await?;
        let body = self.upstream.read_body(ctx.http.limits(), resp).await?;
        let answer: MessageUsageOnly = serde_json::from_slice(&body)
            .map_err(|e| self.upstream.unreadable_answer(&body, &e))?;
        let prompt = answer.usage.total_input_tokens();
        let completion = answer.usage.output_tokens;
        Ok(Answer {
            body,
            usage: Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt.saturating_add(completion),
            }),
        })
    }

    /// [`AnthropicProvider::messages_raw`] for a streaming request: the events as Anthropic
    /// sends them, bounded like every upstream stream (line length, total size).
    pub async fn messages_raw_stream(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
        beta: Option<&HeaderValue>,
    ) -> Result<RawEventStream, GatewayError> {
        let body = PassthroughBody {
            model: &self.model,
            request,
            defaults: Some(&self.defaults),
        };
        let resp = self.post_passthrough(ctx, &self.url, &body, beta).await?;
        Ok(self
            .upstream
            .sse(ctx.http.limits(), resp, StreamEnd::MessageStop)
            .map(|item| {
                item.map(|ev| RawEvent {
                    event: ev.event,
                    data: ev.data,
                })
            })
            .boxed())
    }

    /// `POST /v1/messages/count_tokens` with the client's request passed through (`model` set
    /// to the deployment's): Anthropic's answer (`{"input_tokens": n}`) as sent.
    pub async fn count_tokens_raw(
        &self,
        ctx: &CallContext<'_>,
        request: &Map<String, Value>,
        beta: Option<&HeaderValue>,
    ) -> Result<Bytes, GatewayError> {
        let body = PassthroughBody {
            model: &self.model,
            request,
            defaults: None,
        };
        let resp = self
            .post_passthrough(ctx, &self.count_tokens_url, &body, beta)
            .await?;
        let body = self.upstream.read_body(ctx.http.limits(), resp).await?;
        serde_json::from_slice::<routeiq::anthropic::CountTokensResponse>(&body)
            .map_err(|e| self.upstream.unreadable_answer(&body, &e))?;
        Ok(body)
    }
}

#[async_trait]
impl InferenceProvider for AnthropicProvider {
    async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        let resp = self.messages(ctx, req).await?;
        Answer::json(&resp, resp.usage)
    }

    async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        let body = self.body(req, true)?;
        let resp = self.post(ctx, &body).await?;
        Ok(chat_chunks(
            self.upstream.clone(),
            self.upstream
                .sse(ctx.http.limits(), resp, StreamEnd::MessageStop),
            &self.model,
            wants_stream_usage(req),
        ))
    }

    async fn embeddings(
        &self,
        _ctx: &CallContext<'_>,
        _req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        Err(GatewayError::NotSupported(
            "anthropic does not offer embeddings".into(),
        ))
    }

    fn endpoint(&self) -> Option<&Uri> {
        Some(&self.url)
    }

    fn as_anthropic(&self) -> Option<&AnthropicProvider> {
        // Claude on Vertex AI takes another body and URLs: `/v1/messages` translates.
        self.vertex.is_none().then_some(self)
    }
}

/// `{base}/v1/messages`, accepting bases given with or without `/v1` or `/v1/messages`.
fn messages_url(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// The request with the deployment's `litellm_params` extras merged in (request values win).
pub(super) fn with_defaults<'a>(
    req: &'a ChatCompletionRequest,
    defaults: &Map<String, Value>,
) -> Result<Cow<'a, ChatCompletionRequest>, GatewayError> {
    if defaults.is_empty() {
        return Ok(Cow::Borrowed(req));
    }
    let mut map = to_object(req)?;
    merge_defaults(&mut map, defaults);
    let mut merged: ChatCompletionRequest =
        serde_json::from_value(Value::Object(map)).map_err(|e| {
            GatewayError::Internal(format!(
                "litellm_params extras do not fit a chat request: {e}"
            ))
        })?;
    merged.metadata = req.metadata.clone();
    Ok(Cow::Owned(merged))
}

/// LiteLLM's `UnsupportedParamsError`: without `drop_params`, a request (or a deployment's
/// `litellm_params`) setting an OpenAI parameter `provider` has no counterpart for is a 400
/// naming every such parameter and how to drop them.
pub(super) fn check_unsupported(
    req: &ChatCompletionRequest,
    provider: &str,
    drop_params: bool,
) -> Result<(), GatewayError> {
    check_unsupported_of(req, provider, drop_params, DROPPED_PARAMS)
}

/// [`check_unsupported`] against a provider's own list of `unsupported` parameters.
pub(super) fn check_unsupported_of(
    req: &ChatCompletionRequest,
    provider: &str,
    drop_params: bool,
    unsupported: &[&str],
) -> Result<(), GatewayError> {
    if drop_params {
        return Ok(());
    }
    let list = unsupported;
    let unsupported: Vec<&str> = req
        .extra
        .iter()
        .filter(|(k, v)| list.contains(&k.as_str()) && asks_for_something(v))
        .map(|(k, _)| k.as_str())
        .collect();
    let Some(first) = unsupported.first() else {
        return Ok(());
    };
    Err(GatewayError::invalid_param(
        format!(
            "{provider} does not support parameters: {unsupported:?}. To drop them, set \
             `drop_params: true` in litellm_settings (or in the deployment's litellm_params)"
        ),
        *first,
    ))
}

/// Whether a parameter's value changes anything: `null`, `false` and `0` are OpenAI's defaults
/// (clients such as LangChain send `presence_penalty: 0`), so they are dropped silently.
fn asks_for_something(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64().is_none_or(|x| x != 0.0),
        Value::Bool(true) | Value::String(_) | Value::Array(_) | Value::Object(_) => true,
    }
}

/// Translates an OpenAI chat request into a Messages API body (Bedrock's Converse input is
/// built from it too).
pub(super) fn build_request(
    req: &ChatCompletionRequest,
    model: &str,
    default_max_tokens: u64,
    stream: bool,
) -> Result<Map<String, Value>, GatewayError> {
    let (system, messages) = convert_messages(&req.messages)?;
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    if let Some(system) = system {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(default_max_tokens);
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        // Anthropic rejects whitespace-only stop sequences (LiteLLM drops them too).
        let stops: Vec<String> = stop
            .to_vec()
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect();
        if !stops.is_empty() {
            body.insert("stop_sequences".into(), json!(stops));
        }
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        body.insert(
            "tools".into(),
            Value::Array(tools.iter().map(convert_tool).collect()),
        );
    }
    let parallel = req
        .extra
        .get("parallel_tool_calls")
        .and_then(Value::as_bool);
    if let Some(choice) =
        convert_tool_choice(req.tool_choice.as_ref(), parallel, req.tools.is_some())?
    {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(user) = req.user.as_ref().filter(|u| !u.is_empty()) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    for (key, value) in &req.extra {
        match key.as_str() {
            "n" => {
                if value.as_u64().is_some_and(|n| n > 1) {
                    return Err(GatewayError::invalid_param(
                        "anthropic returns one choice per request; n must be 1",
                        "n",
                    ));
                }
            }
            "parallel_tool_calls" => {}
            k if DROPPED_PARAMS.contains(&k) => {
                tracing::debug!(
                    param = k,
                    provider = "anthropic",
                    "dropping parameter anthropic does not support"
                );
            }
            _ => {
                body.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    Ok(body)
}

/// System/developer messages become the `system` text; the rest become alternating
/// user/assistant messages of content blocks (consecutive same-role messages merged).
fn convert_messages(
    messages: &[ChatMessage],
) -> Result<(Option<String>, Vec<Value>), GatewayError> {
    let mut system: Vec<String> = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let param = || format!("messages[{i}]");
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                if let Some(text) = m.content.as_ref().map(MessageContent::as_text)
                    && !text.is_empty()
                {
                    system.push(text);
                }
                continue;
            }
            Role::User => ("user", content_blocks(m.content.as_ref(), &param)?),
            Role::Assistant => ("assistant", assistant_blocks(m, &param)?),
            Role::Tool => ("user", vec![tool_result_block(m, &param)?]),
            Role::Function => {
                return Err(GatewayError::invalid_param(
                    "role 'function' is not supported for anthropic; use 'tool' messages",
                    param(),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    let system = (!system.is_empty()).then(|| system.join("\n"));
    let messages = out
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect();
    Ok((system, messages))
}

fn content_blocks(
    content: Option<&MessageContent>,
    param: &dyn Fn() -> String,
) -> Result<Vec<Value>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![json!({"type": "text", "text": text})]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text } if text.is_empty() => {}
                    ContentPart::Text { text } => {
                        blocks.push(json!({"type": "text", "text": text}))
                    }
                    ContentPart::ImageUrl { image_url } => {
                        blocks.push(image_block(&image_url.url, param)?)
                    }
                    // Anthropic-native blocks (`document`, `image` with a source...) pass as-is.
                    ContentPart::Other(v) => blocks.push(v.clone()),
                }
            }
            Ok(blocks)
        }
    }
}

/// An `image_url` as an image block: data URLs inline (base64), http(s) URLs by reference.
/// PDFs become `document` blocks.
fn image_block(url: &str, param: &dyn Fn() -> String) -> Result<Value, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let media_type = rest
            .split_once(',')
            .and_then(|(meta, _)| meta.strip_suffix(";base64"))
            .ok_or_else(|| {
                GatewayError::invalid_param("image data URLs must be base64-encoded", param())
            })?;
        let data = rest.split_once(',').map_or("", |(_, d)| d);
        let kind = if media_type == "application/pdf" {
            "document"
        } else {
            "image"
        };
        Ok(
            json!({"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}),
        )
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(GatewayError::invalid_param(
            "image_url must be a data: URL or an http(s) URL",
            param(),
        ))
    }
}

fn assistant_blocks(
    m: &ChatMessage,
    param: &dyn Fn() -> String,
) -> Result<Vec<Value>, GatewayError> {
    let mut blocks = content_blocks(m.content.as_ref(), param)?;
    for call in m.tool_calls.iter().flatten() {
        let (Some(id), Some(name)) = (call.id.as_ref(), call.function.name.as_ref()) else {
            return Err(GatewayError::invalid_param(
                "assistant tool_calls need an id and a function name",
                format!("{}.tool_calls", param()),
            ));
        };
        let input = if call.function.arguments.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str::<Value>(&call.function.arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(GatewayError::invalid_param(
                        "tool call arguments must be a JSON object",
                        format!("{}.tool_calls", param()),
                    ));
                }
            }
        };
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

fn tool_result_block(m: &ChatMessage, param: &dyn Fn() -> String) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_ref().ok_or_else(|| {
        GatewayError::invalid_param(
            "tool messages need a tool_call_id",
            format!("{}.tool_call_id", param()),
        )
    })?;
    let content = match &m.content {
        None => json!(""),
        Some(MessageContent::Text(text)) => json!(text),
        Some(parts) => Value::Array(content_blocks(Some(parts), param)?),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

fn convert_tool(tool: &Tool) -> Value {
    let mut t = Map::new();
    t.insert("name".into(), json!(tool.function.name));
    if let Some(d) = &tool.function.description {
        t.insert("description".into(), json!(d));
    }
    t.insert(
        "input_schema".into(),
        tool.function
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    Value::Object(t)
}

/// OpenAI `tool_choice` (and `parallel_tool_calls: false`) as Anthropic's `tool_choice`.
fn convert_tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
    has_tools: bool,
) -> Result<Option<Value>, GatewayError> {
    let invalid = || {
        GatewayError::invalid_param(
            "tool_choice must be 'auto', 'required', 'none' or {\"type\":\"function\",\"function\":{\"name\":...}}",
            "tool_choice",
        )
    };
    let mut converted = match choice {
        None if parallel == Some(false) && has_tools => json!({"type": "auto"}),
        None => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" | "any" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            _ => return Err(invalid()),
        },
        Some(Value::Object(o)) => {
            if let Some(name) = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                json!({"type": "tool", "name": name})
            } else if matches!(
                o.get("type").and_then(Value::as_str),
                Some("auto" | "any" | "none" | "tool")
            ) {
                Value::Object(o.clone())
            } else {
                return Err(invalid());
            }
        }
        Some(_) => return Err(invalid()),
    };
    if parallel == Some(false)
        && let Some(obj) = converted.as_object_mut()
        && obj.get("type").and_then(Value::as_str) != Some("none")
    {
        obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
    }
    Ok(Some(converted))
}

#[derive(Debug, Deserialize)]
struct MessagesResponse {
    id: String,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Takes the fields `newer` reports (message_delta carries cumulative counts).
    fn update(&mut self, newer: AnthropicUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    /// OpenAI usage: cache writes and reads count as prompt tokens.
    fn to_openai(self) -> Usage {
        let prompt = self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0);
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn chat_id(anthropic_id: &str) -> String {
    format!(
        "chatcmpl-{}",
        anthropic_id.strip_prefix("msg_").unwrap_or(anthropic_id)
    )
}

fn to_chat_response(resp: MessagesResponse, model: &str) -> ChatCompletionResponse {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in resp.content {
        match block {
            Block::Text { text: t } => text.get_or_insert_with(String::new).push_str(&t),
            Block::Thinking { thinking } => reasoning
                .get_or_insert_with(String::new)
                .push_str(&thinking),
            Block::ToolUse { id, name, input } => {
                let arguments = if input.is_null() {
                    "{}".to_string()
                } else {
                    input.to_string()
                };
                tool_calls.push(ToolCall {
                    index: None,
                    id: Some(id),
                    kind: Some("function".into()),
                    function: FunctionCall {
                        name: Some(name),
                        arguments,
                    },
                });
            }
            Block::Other => {}
        }
    }
    if text.is_none() && tool_calls.is_empty() {
        text = Some(String::new());
    }
    let mut extra = Map::new();
    if let Some(r) = reasoning {
        extra.insert("reasoning_content".into(), Value::String(r));
    }
    ChatCompletionResponse {
        id: chat_id(&resp.id),
        object: "chat.completion".into(),
        created: unix_seconds_now(),
        model: model.to_string(),
        choices: vec![ChatChoice {
            index: 0,
            message: ResponseMessage {
                role: Role::Assistant,
                content: text,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                extra,
            },
            finish_reason: resp
                .stop_reason
                .as_deref()
                .map(|r| finish_reason(r).to_string()),
            logprobs: None,
        }],
        usage: Some(resp.usage.to_openai()),
        system_fingerprint: None,
        extra: Map::new(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StreamMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop {},
    /// `ping`, `content_block_stop` and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StreamMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Translation state of one Anthropic stream into OpenAI chunks.
struct ChatStream {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    usage: AnthropicUsage,
    /// (content block index, OpenAI tool_calls index) of each tool_use block.
    tools: Vec<(u64, u32)>,
}

impl ChatStream {
    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    fn content(&self, text: String) -> Option<ChatCompletionChunk> {
        (!text.is_empty()).then(|| {
            self.chunk(
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                None,
            )
        })
    }

    fn tool_delta(&self, call: ToolCall) -> ChatCompletionChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    /// The chunk (if any) one Anthropic event becomes.
    fn on_event(&mut self, data: &str) -> Result<Option<ChatCompletionChunk>, String> {
        let event: StreamEvent =
            serde_json::from_str(data).map_err(|e| format!("invalid stream event: {e}"))?;
        Ok(match event {
            StreamEvent::MessageStart { message } => {
                if let Some(id) = message.id {
                    self.id = chat_id(&id);
                }
                self.usage.update(message.usage);
                Some(self.chunk(
                    Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ))
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::Text { text } => self.content(text),
                Block::ToolUse { id, name, .. } => {
                    let tool_index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push((index, tool_index));
                    Some(self.tool_delta(ToolCall {
                        index: Some(tool_index),
                        id: Some(id),
                        kind: Some("function".into()),
                        function: FunctionCall {
                            name: Some(name),
                            arguments: String::new(),
                        },
                    }))
                }
                Block::Thinking { .. } | Block::Other => None,
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => self.content(text),
                BlockDelta::InputJsonDelta { partial_json } => self
                    .tools
                    .iter()
                    .find(|(block, _)| *block == index)
                    .map(|&(_, tool_index)| {
                        self.tool_delta(ToolCall {
                            index: Some(tool_index),
                            id: None,
                            kind: None,
                            function: FunctionCall {
                                name: None,
                                arguments: partial_json,
                            },
                        })
                    }),
                BlockDelta::ThinkingDelta { thinking } => {
                    let mut extra = Map::new();
                    extra.insert("reasoning_content".into(), Value::String(thinking));
                    Some(self.chunk(
                        Delta {
                            extra,
                            ..Delta::default()
                        },
                        None,
                    ))
                }
                BlockDelta::Other => None,
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.update(u);
                }
                delta
                    .stop_reason
                    .map(|r| self.chunk(Delta::default(), Some(finish_reason(&r).to_string())))
            }
            StreamEvent::MessageStop {} => self.include_usage.then(|| ChatCompletionChunk {
                choices: Vec::new(),
                usage: Some(self.usage.to_openai()),
                ..self.chunk(Delta::default(), None)
            }),
            StreamEvent::Other => None,
        })
    }
}

/// Translates Anthropic stream events into OpenAI chunks: a role chunk, content and tool-call
/// deltas, a finish chunk, and (when `include_usage`) a usage chunk with empty `choices`.
fn chat_chunks(
    upstream: Upstream,
    events: SseStream,
    model: &str,
    include_usage: bool,
) -> ChunkStream {
    let state = ChatStream {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_seconds_now(),
        model: model.to_string(),
        include_usage,
        usage: AnthropicUsage::default(),
        tools: Vec::new(),
    };
    translate_events(events, state, move |st, ev| {
        st.on_event(&ev.data).map_err(|m| upstream.bad_response(m))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::State;
    use axum::routing::post;
    use futures::StreamExt;
    use futures::stream;
    use routeiq::config::{ModelInfo, SecretString};

    use super::super::http::test_support::{
        client, deployment, deployment_with_info, params, serve, sse_response,
    };
    use super::*;
    use crate::error::UpstreamErrorKind;
    use routeiq::openai::CompletionRequest;

    fn req(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    fn build(v: Value) -> Map<String, Value> {
        build_request(&req(v), "claude-x", 4096, false).unwrap()
    }

    #[test]
    fn system_extraction_and_role_merging() {
        let body = build(json!({"model":"g","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"developer","content":[{"type":"text","text":"No emojis."}]},
            {"role":"user","content":"Hi"},
            {"role":"user","content":[{"type":"text","text":"there"}]},
            {"role":"assistant","content":"Hello"},
            {"role":"user","content":"Bye"}
        ]}));
        assert_eq!(body["system"], "Be brief.\nNo emojis.");
        assert_eq!(body["model"], "claude-x");
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(
            Value::Array(body["messages"].as_array().unwrap().clone()),
            json!([
                {"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]},
                {"role":"assistant","content":[{"type":"text","text":"Hello"}]},
                {"role":"user","content":[{"type":"text","text":"Bye"}]}
            ])
        );
    }

    #[test]
    fn tool_calls_and_results_translate() {
        let body = build(json!({"model":"g","messages":[
            {"role":"user","content":"Weather in Paris and Rome?"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"toolu_2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}
            ]},
            {"role":"tool","tool_call_id":"toolu_1","content":"20C"},
            {"role":"tool","tool_call_id":"toolu_2","content":"25C"}
        ],
        "tools":[{"type":"function","function":{"name":"weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
        "tool_choice":"required"}));
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            msgs[1]["content"][0],
            json!({"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}})
        );
        assert_eq!(msgs[1]["content"][1]["input"]["city"], "Rome");
        assert_eq!(msgs[2]["role"], "user");
        assert_eq!(
            msgs[2]["content"],
            json!([
                {"type":"tool_result","tool_use_id":"toolu_1","content":"20C"},
                {"type":"tool_result","tool_use_id":"toolu_2","content":"25C"}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"name":"weather","description":"Get weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])
        );
        assert_eq!(body["tool_choice"], json!({"type":"any"}));
    }

    #[test]
    fn bad_tool_messages_are_invalid_requests() {
        let bad_args = req(json!({"model":"g","messages":[
            {"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{oops"}}]}
        ]}));
        assert!(matches!(
            build_request(&bad_args, "m", 1, false),
            Err(GatewayError::InvalidRequest { .. })
        ));
        let no_id = req(json!({"model":"g","messages":[{"role":"tool","content":"x"}]}));
        assert!(matches!(
            build_request(&no_id, "m", 1, false),
            Err(GatewayError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn tool_choice_variants() {
        let c =
            |v: Value, p: Option<bool>| convert_tool_choice(Some(&v), p, true).unwrap().unwrap();
        assert_eq!(c(json!("auto"), None), json!({"type":"auto"}));
        assert_eq!(c(json!("none"), None), json!({"type":"none"}));
        assert_eq!(c(json!("required"), None), json!({"type":"any"}));
        assert_eq!(
            c(json!({"type":"function","function":{"name":"f"}}), None),
            json!({"type":"tool","name":"f"})
        );
        assert_eq!(
            c(json!("auto"), Some(false)),
            json!({"type":"auto","disable_parallel_tool_use":true})
        );
        assert_eq!(
            convert_tool_choice(None, Some(false), true).unwrap(),
            Some(json!({"type":"auto","disable_parallel_tool_use":true}))
        );
        assert_eq!(convert_tool_choice(None, None, true).unwrap(), None);
        assert!(convert_tool_choice(Some(&json!("sometimes")), None, true).is_err());
        assert!(convert_tool_choice(Some(&json!(3)), None, true).is_err());
    }

    #[test]
    fn image_blocks() {
        let body = build(json!({"model":"g","messages":[{"role":"user","content":[
            {"type":"text","text":"What is this?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}},
            {"type":"image_url","image_url":{"url":"data:application/pdf;base64,JVBERi0="}}
        ]}]}));
        let content = &body["messages"][0]["content"];
        assert_eq!(
            content[1],
            json!({"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}})
        );
        assert_eq!(
            content[2],
            json!({"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}})
        );
        assert_eq!(content[3]["type"], "document");
        let bad = req(json!({"model":"g","messages":[{"role":"user","content":[
            {"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}));
        assert!(build_request(&bad, "m", 1, false).is_err());
    }

    #[test]
    fn params_translation_and_dropping() {
        let body = build(
            json!({"model":"g","messages":[{"role":"user","content":"x"}],
            "max_completion_tokens":100,"temperature":0.3,"top_p":0.9,"stop":["END","\n"],
            "user":"u-1","seed":1,"presence_penalty":0.5,"frequency_penalty":0.1,"logit_bias":{},
            "response_format":{"type":"json_object"},"n":1,"top_k":5,"stream_options":{"include_usage":true}}),
        );
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["temperature"], 0.3);
        assert_eq!(body["top_p"], 0.9);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["metadata"], json!({"user_id":"u-1"}));
        assert_eq!(body["top_k"], 5);
        for dropped in [
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "response_format",
            "n",
            "stream_options",
            "max_completion_tokens",
            "stop",
            "user",
        ] {
            assert!(!body.contains_key(dropped), "{dropped} was forwarded");
        }
        let many = req(json!({"model":"g","messages":[{"role":"user","content":"x"}],"n":2}));
        match build_request(&many, "m", 1, false) {
            Err(GatewayError::InvalidRequest { param, .. }) => {
                assert_eq!(param.as_deref(), Some("n"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn max_tokens_defaults() {
        let info = ModelInfo {
            max_output_tokens: Some(8192),
            ..ModelInfo::default()
        };
        let p = AnthropicProvider::new(
            &deployment_with_info(params("anthropic/claude-3-5-haiku-latest"), info),
            &|_| None,
        )
        .unwrap();
        let r = req(json!({"model":"g","messages":[{"role":"user","content":"x"}]}));
        assert_eq!(p.body(&r, false).unwrap()["max_tokens"], 8192);
        // LiteLLM's `model_info.max_tokens` is the context window: never the output length.
        let window = ModelInfo {
            max_tokens: Some(200_000),
            ..ModelInfo::default()
        };
        let p = AnthropicProvider::new(
            &deployment_with_info(params("anthropic/claude-3-5-haiku-latest"), window),
            &|_| None,
        )
        .unwrap();
        assert_eq!(p.body(&r, false).unwrap()["max_tokens"], DEFAULT_MAX_TOKENS);

        let mut ps = params("anthropic/claude-3-5-haiku-latest");
        ps.extra.insert("max_tokens".into(), json!(256));
        ps.extra.insert(
            "thinking".into(),
            json!({"type":"enabled","budget_tokens":1024}),
        );
        ps.drop_params = Some(true);
        let p = AnthropicProvider::new(&deployment(ps), &|_| None).unwrap();
        let body = p.body(&r, true).unwrap();
        assert_eq!(body["max_tokens"], 256);
        assert_eq!(body["thinking"]["budget_tokens"], 1024);
        assert_eq!(body["stream"], true);
        assert!(!body.contains_key("drop_params"));
        let r2 =
            req(json!({"model":"g","messages":[{"role":"user","content":"x"}],"max_tokens":7}));
        assert_eq!(p.body(&r2, false).unwrap()["max_tokens"], 7);

        let p = AnthropicProvider::new(&deployment(params("anthropic/c")), &|_| None).unwrap();
        assert_eq!(p.body(&r, false).unwrap()["max_tokens"], 4096);
    }

    #[test]
    fn unsupported_params_fail_unless_dropped() {
        let r = req(
            json!({"model":"g","messages":[{"role":"user","content":"x"}],
            "seed": 7, "logit_bias": {"1": 2}, "presence_penalty": 0, "top_k": 3}),
        );
        let strict = AnthropicProvider::new(&deployment(params("anthropic/c")), &|_| None).unwrap();
        match strict.body(&r, false) {
            Err(GatewayError::InvalidRequest { message, param }) => {
                assert!(message.contains(r#"["logit_bias", "seed"]"#), "{message}");
                assert!(message.contains("drop_params: true"), "{message}");
                assert_eq!(param.as_deref(), Some("logit_bias"));
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        let mut ps = params("anthropic/c");
        ps.drop_params = Some(true);
        let dropping = AnthropicProvider::new(&deployment(ps), &|_| None).unwrap();
        let body = dropping.body(&r, false).unwrap();
        assert!(!body.contains_key("seed") && !body.contains_key("logit_bias"));
        // Anthropic-native parameters pass through either way.
        assert_eq!(body["top_k"], 3);
    }

    #[tokio::test]
    async fn passthrough_keeps_the_request_and_relays_the_answer() {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route(
                "/v1/messages",
                post(|State(seen): State<Seen>, headers: axum::http::HeaderMap, Json(body): Json<Value>| async move {
                    let stream = body["stream"] == json!(true);
                    seen.0.lock().unwrap().push((headers, body));
                    if stream {
                        sse_response(concat!(
                            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
                            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
                            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
                        ))
                    } else {
                        axum::response::IntoResponse::into_response(Json(json!({
                            "id":"msg_2","type":"message","role":"assistant","model":"claude-x",
                            "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn",
                            "usage":{"input_tokens":4,"output_tokens":2,"cache_read_input_tokens":10,"cache_creation_input_tokens":1}
                        })))
                    }
                }),
            )
            .route(
                "/v1/messages/count_tokens",
                post(|State(seen): State<Seen>, headers: axum::http::HeaderMap, Json(body): Json<Value>| async move {
                    seen.0.lock().unwrap().push((headers, body));
                    Json(json!({"input_tokens": 42}))
                }),
            )
            .with_state(seen.clone());
        let url = serve(app).await;
        let mut ps = params("anthropic/claude-x");
        ps.api_base = Some(url);
        ps.api_key = Some(SecretString::new("sk-ant-test"));
        // Deployment extras: a Messages parameter fills in, LiteLLM's own settings and
        // OpenAI-only parameters never reach Anthropic, the request's own value wins.
        ps.extra.insert("top_k".into(), json!(3));
        ps.extra.insert("temperature".into(), json!(0.1));
        ps.extra.insert("tags".into(), json!(["a"]));
        ps.extra.insert("seed".into(), json!(7));
        let d = deployment(ps);
        let p = AnthropicProvider::new(&d, &|_| None).unwrap();
        assert!(p.as_anthropic().is_some());
        let http = client();
        let mut extra = HeaderMap::new();
        extra.insert("x-trace", HeaderValue::from_static("t1"));
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: Some(&extra),
        };
        let beta = HeaderValue::from_static("interleaved-thinking-2025-05-14");
        let request = match json!({
            "model": "my-group", "max_tokens": 10, "temperature": 0.9,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}]
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let answer = p.messages_raw(&ctx, &request, Some(&beta)).await.unwrap();
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(v["id"], "msg_2");
        assert_eq!(
            answer.usage.unwrap(),
            Usage {
                prompt_tokens: 15,
                completion_tokens: 2,
                total_tokens: 17
            }
        );
        {
            let seen = seen.0.lock().unwrap();
            let (headers, body) = &seen[0];
            assert_eq!(headers["anthropic-beta"], "interleaved-thinking-2025-05-14");
            assert_eq!(headers["x-trace"], "t1");
            assert_eq!(headers["x-api-key"], "sk-ant-test");
            let mut expected = Value::Object(request.clone());
            expected["model"] = json!("claude-x");
            expected["top_k"] = json!(3);
            assert_eq!(body, &expected);
        }

        let mut streaming = request.clone();
        streaming.insert("stream".into(), json!(true));
        let events: Vec<RawEvent> = p
            .messages_raw_stream(&ctx, &streaming, None)
            .await
            .unwrap()
            .map(|e| e.unwrap())
            .collect()
            .await;
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        // The stream ends at message_stop.
        assert_eq!(names, ["message_start", "ping", "message_stop"]);
        assert_eq!(events[1].data, "{\"type\":\"ping\"}");
        assert!(seen.0.lock().unwrap()[1].0.get("anthropic-beta").is_none());

        let count = p
            .count_tokens_raw(&ctx, &request, Some(&beta))
            .await
            .unwrap();
        assert_eq!(&count[..], b"{\"input_tokens\":42}");
        let seen = seen.0.lock().unwrap();
        let (headers, body) = &seen[2];
        assert_eq!(headers["anthropic-beta"], "interleaved-thinking-2025-05-14");
        // count_tokens takes no generation settings: no deployment extras.
        assert_eq!(body["model"], "claude-x");
        assert!(body.get("top_k").is_none());
    }

    #[test]
    fn urls_and_headers() {
        assert_eq!(
            messages_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(messages_url("http://proxy/v1/"), "http://proxy/v1/messages");
        assert_eq!(
            messages_url("http://proxy/v1/messages"),
            "http://proxy/v1/messages"
        );
        let env = |n: &str| (n == "ANTHROPIC_API_KEY").then(|| "sk-ant".to_string());
        let p = AnthropicProvider::new(&deployment(params("anthropic/c")), &env).unwrap();
        assert_eq!(p.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(p.headers["x-api-key"], "sk-ant");
        assert!(p.headers["x-api-key"].is_sensitive());
        assert_eq!(p.headers["anthropic-version"], ANTHROPIC_VERSION);
    }

    #[test]
    fn response_translation() {
        let resp: MessagesResponse = serde_json::from_value(json!({
            "id":"msg_01ABC","type":"message","role":"assistant","model":"claude-x",
            "content":[
                {"type":"thinking","thinking":"hmm","signature":"sig"},
                {"type":"text","text":"Let me check. "},
                {"type":"text","text":"One moment."},
                {"type":"tool_use","id":"toolu_9","name":"weather","input":{"city":"Paris"}}
            ],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":5,"cache_read_input_tokens":null}
        }))
        .unwrap();
        let r = to_chat_response(resp, "claude-x");
        assert_eq!(r.id, "chatcmpl-01ABC");
        assert_eq!(r.object, "chat.completion");
        assert_eq!(r.model, "claude-x");
        let c = &r.choices[0];
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            c.message.content.as_deref(),
            Some("Let me check. One moment.")
        );
        assert_eq!(c.message.extra["reasoning_content"], "hmm");
        let call = &c.message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.id.as_deref(), Some("toolu_9"));
        assert_eq!(call.kind.as_deref(), Some("function"));
        assert_eq!(call.function.name.as_deref(), Some("weather"));
        assert_eq!(
            serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
            json!({"city":"Paris"})
        );
        assert_eq!(
            r.usage.unwrap(),
            Usage {
                prompt_tokens: 15,
                completion_tokens: 20,
                total_tokens: 35
            }
        );
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
        ] {
            let resp: MessagesResponse = serde_json::from_value(json!({
                "id":"msg_1","content":[{"type":"text","text":"x"}],"stop_reason":stop,"usage":{"input_tokens":1,"output_tokens":1}
            }))
            .unwrap();
            assert_eq!(
                to_chat_response(resp, "m").choices[0]
                    .finish_reason
                    .as_deref(),
                Some(finish)
            );
        }
    }

    fn events(parts: &[&'static str], include_usage: bool) -> ChunkStream {
        let up = Upstream::new("anthropic");
        let bytes = stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
        .boxed();
        chat_chunks(
            up.clone(),
            up.sse_from_bytes(
                bytes,
                StreamEnd::MessageStop,
                crate::upstream::client::ResponseLimits::default(),
            ),
            "claude-x",
            include_usage,
        )
    }

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n";
    const TEXT_STREAM: &[&str] = &[
        START,
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ];

    #[tokio::test]
    async fn text_stream_translation() {
        let chunks: Vec<ChatCompletionChunk> = events(TEXT_STREAM, true)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(chunks.len(), 5);
        assert!(
            chunks
                .iter()
                .all(|c| c.id == "chatcmpl-01XY" && c.object == "chat.completion.chunk")
        );
        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Hello"));
        assert_eq!(
            chunks[2].choices[0].delta.content.as_deref(),
            Some(" world")
        );
        assert_eq!(chunks[3].choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(chunks[4].choices.is_empty());
        assert_eq!(
            chunks[4].usage.unwrap(),
            Usage {
                prompt_tokens: 25,
                completion_tokens: 15,
                total_tokens: 40
            }
        );
        // Without include_usage there is no usage chunk.
        let chunks: Vec<_> = events(TEXT_STREAM, false).collect().await;
        assert_eq!(chunks.len(), 4);
    }

    #[tokio::test]
    async fn tool_use_stream_translation() {
        let parts: &[&str] = &[
            START,
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":30}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ];
        let chunks: Vec<ChatCompletionChunk> =
            events(parts, false).map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.len(), 6);
        let start = &chunks[2].choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(start.index, Some(0));
        assert_eq!(start.id.as_deref(), Some("toolu_01"));
        assert_eq!(start.kind.as_deref(), Some("function"));
        assert_eq!(start.function.name.as_deref(), Some("get_weather"));
        assert_eq!(start.function.arguments, "");
        let args: String = chunks[3..5]
            .iter()
            .map(|c| {
                let call = &c.choices[0].delta.tool_calls.as_ref().unwrap()[0];
                assert_eq!(call.index, Some(0));
                assert!(call.id.is_none());
                call.function.arguments.clone()
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city":"Paris"})
        );
        assert_eq!(
            chunks[5].choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
    }

    #[tokio::test]
    async fn error_event_and_cut_stream() {
        let parts: &[&str] = &[
            START,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        ];
        let items: Vec<_> = events(parts, false).collect().await;
        assert_eq!(items.len(), 2);
        match &items[1] {
            Err(GatewayError::Upstream {
                status,
                kind,
                message,
                ..
            }) => {
                assert_eq!(*status, 529);
                assert_eq!(*kind, UpstreamErrorKind::ServiceUnavailable);
                assert_eq!(message, "Overloaded");
            }
            other => panic!("unexpected {other:?}"),
        }
        let cut = &TEXT_STREAM[..TEXT_STREAM.len() - 1];
        let items: Vec<_> = events(cut, true).collect().await;
        assert_eq!(items.len(), 5);
        assert!(items[..4].iter().all(Result::is_ok));
        match &items[4] {
            Err(GatewayError::Connection { message, .. }) => {
                assert_eq!(message, "stream ended before completion")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>);

    #[tokio::test]
    async fn http_round_trips() {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route(
                "/v1/messages",
                post(|State(seen): State<Seen>, headers: axum::http::HeaderMap, Json(body): Json<Value>| async move {
                    let stream = body["stream"] == json!(true);
                    seen.0.lock().unwrap().push((headers, body));
                    if stream {
                        sse_response(concat!(
                            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
                            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
                            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\n\n",
                            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                        ))
                    } else {
                        axum::response::IntoResponse::into_response(Json(json!({
                            "id":"msg_2","type":"message","role":"assistant",
                            "content":[{"type":"text","text":"Hello!"}],
                            "stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":2}
                        })))
                    }
                }),
            )
            .with_state(seen.clone());
        let url = serve(app).await;
        let mut ps = params("anthropic/claude-3-5-haiku-latest");
        ps.api_base = Some(url);
        ps.api_key = Some(SecretString::new("sk-ant-test"));
        let d = deployment(ps);
        let p = AnthropicProvider::new(&d, &|_| None).unwrap();
        let http = client();
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };

        let r = req(json!({"model":"g","messages":[{"role":"user","content":"hi"}]}));
        let resp: ChatCompletionResponse = p.chat(&ctx, &r).await.unwrap().parse().unwrap();
        assert_eq!(resp.choices[0].message.content.as_deref(), Some("Hello!"));
        assert_eq!(resp.model, "claude-3-5-haiku-latest");
        {
            let seen = seen.0.lock().unwrap();
            let (headers, body) = &seen[0];
            assert_eq!(headers["x-api-key"], "sk-ant-test");
            assert_eq!(headers["anthropic-version"], "2023-06-01");
            assert_eq!(body["model"], "claude-3-5-haiku-latest");
            assert!(body.get("stream").is_none());
        }

        let creq: CompletionRequest = serde_json::from_value(
            json!({"model":"g","prompt":"Say hi","stream":true,"echo":false}),
        )
        .unwrap();
        let items: Vec<Value> = p
            .completion_stream(&ctx, &creq)
            .await
            .unwrap()
            .map(|v| v.unwrap())
            .collect()
            .await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["object"], "text_completion");
        assert_eq!(items[0]["choices"][0]["text"], "Hi");
        assert_eq!(items[1]["choices"][0]["finish_reason"], "length");
        {
            let seen = seen.0.lock().unwrap();
            let body = &seen[1].1;
            assert_eq!(
                body["messages"],
                json!([{"role":"user","content":[{"type":"text","text":"Say hi"}]}])
            );
            assert!(body.get("echo").is_none());
        }

        let creq: CompletionRequest =
            serde_json::from_value(json!({"model":"g","prompt":["Say hi"]})).unwrap();
        let v: Value = p.completion(&ctx, &creq).await.unwrap().parse().unwrap();
        assert_eq!(v["choices"][0]["text"], "Hello!");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 6);

        let ereq: EmbeddingRequest =
            serde_json::from_value(json!({"model":"g","input":"x"})).unwrap();
        assert!(matches!(
            p.embeddings(&ctx, &ereq).await,
            Err(GatewayError::NotSupported(_))
        ));
    }
}
