//! HTTP handlers: authenticate, read and parse the body, call the gateway core, map the
//! result to a response with RouteIQ's decision headers.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use routeiq::openai::{
    ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ModelList, ModelObject,
    estimate_tokens, estimate_tokens_of_chars,
};
use routeiq::router::RequestFacts;
use serde::de::DeserializeOwned;

use crate::error::GatewayError;
use crate::gateway::{
    ChatOp, ChatStreamOp, CompletionOp, CompletionStreamOp, EmbeddingsOp, Gateway,
};
use crate::http::headers as names;
use crate::http::observe::RequestCtx;
use crate::http::request_keys::RequestKeys;
use crate::upstream::dispatch::{Dispatched, Operation, StreamStart};
use crate::upstream::providers::Answer;
use crate::upstream::stream::{StreamChunk, sse_body};

type AppState = State<Arc<Gateway>>;

/// Reads the body (at most `max_request_size_mb`) and parses it, naming the failing path.
pub(crate) async fn read_json<T: DeserializeOwned>(
    gw: &Gateway,
    req: Request,
) -> Result<T, GatewayError> {
    read_json_raw(gw, req).await.map(|(v, _)| v)
}

/// [`read_json`], also returning the raw body (edge hints are signed over it).
async fn read_json_raw<T: DeserializeOwned>(
    gw: &Gateway,
    req: Request,
) -> Result<(T, axum::body::Bytes), GatewayError> {
    let limit = gw.max_request_bytes;
    let too_large = || GatewayError::PayloadTooLarge {
        limit_mb: limit as f64 / (1024.0 * 1024.0),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|len| len > limit as u64) {
        drain(&mut body).await;
        return Err(too_large());
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return Err(body_read_error(gw, &e).unwrap_or_else(too_large)),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            drain(&mut body).await;
            return Err(too_large());
        }
        buf.extend_from_slice(&data);
    }
    let bytes = buf.freeze();
    crate::http::limits::check_json_depth(&bytes, gw.settings().limits.max_json_depth)?;
    if crate::http::client_params::mentions_extra_body(&bytes) {
        // `extra_body` is merged into the body before it is read as the endpoint's request.
        let body: serde_json::Map<String, serde_json::Value> = parse_json(&bytes)?;
        let merged = crate::http::client_params::merge_extra_body(body)?;
        let value = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
            .map_err(|e| path_error(e.path().to_string(), e.into_inner()))?;
        return Ok((value, bytes));
    }
    parse_json(&bytes).map(|v| (v, bytes))
}

/// Parses one JSON value of type `T` (and nothing after it but whitespace), naming the
/// failing path.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    // Fast path: plain serde (which also refuses trailing input). Only a body that fails is
    // parsed again to find the failing path.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut *de)
        .map_err(|e| path_error(e.path().to_string(), e.into_inner()))?;
    de.end().map_err(|e| {
        GatewayError::invalid(format!(
            "request body is not valid JSON: trailing characters after the JSON value ({e})"
        ))
    })?;
    Ok(value)
}

/// The 400 for a body that does not parse, naming the failing path when there is one.
fn path_error(path: String, inner: serde_json::Error) -> GatewayError {
    if inner.is_syntax() || inner.is_eof() {
        GatewayError::invalid(format!("request body is not valid JSON: {inner}"))
    } else if path.is_empty() || path == "." {
        GatewayError::invalid(format!("invalid request body: {inner}"))
    } else {
        GatewayError::invalid_param(format!("invalid request body at '{path}': {inner}"), path)
    }
}

/// Reads and drops what is left of a refused body, up to [`DRAIN_MAX_BYTES`], so the client
/// has sent it all and reads the error (closing on unread bytes resets the connection, and
/// the client may see a broken pipe instead of the 413).
async fn drain(body: &mut Body) {
    let mut drained = 0usize;
    while drained <= DRAIN_MAX_BYTES
        && let Some(Ok(frame)) = body.frame().await
    {
        drained += frame.data_ref().map_or(0, |d| d.len());
    }
}

/// The most of a refused request body read to answer cleanly (beyond it, the connection is
/// closed on the client).
const DRAIN_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What a failed body read means for the client, when it is not the size limit (`None`): a
/// stalled body is a 408, a body that does not match its framing (shorter than its
/// `Content-Length`, broken chunked encoding, a connection closed mid-body) a 400.
fn body_read_error(gw: &Gateway, e: &axum::Error) -> Option<GatewayError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return None;
        }
        if err.is::<tower_http::timeout::TimeoutError>() {
            return Some(GatewayError::RequestTimeout(format!(
                "the request body stalled for {}s (ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS)",
                gw.settings().connections.body_idle_timeout.as_secs_f64()
            )));
        }
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        let text = err.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = err.source();
    }
    Some(GatewayError::invalid(format!(
        "could not read the request body: {message}"
    )))
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// `x-routeiq-*` headers: which deployment answered, by which strategy, and the time spent in
/// the gateway itself (total minus upstream).
pub(crate) fn decision_headers<T>(headers: &mut HeaderMap, d: &Dispatched<T>, started: Instant) {
    let overhead = started.elapsed().saturating_sub(d.upstream_time);
    set_header(headers, names::MODEL, &d.deployment.id);
    set_header(headers, names::MODEL_GROUP, &d.model_group);
    headers.insert(
        HeaderName::from_static(names::STRATEGY),
        HeaderValue::from_static(d.strategy),
    );
    headers.insert(
        HeaderName::from_static(names::OVERHEAD_MS),
        crate::http::response_headers::millis_header(overhead),
    );
    headers.insert(
        HeaderName::from_static(names::ATTEMPTS),
        HeaderValue::from(d.attempts),
    );
    if d.fallback {
        headers.insert(
            HeaderName::from_static(names::FALLBACK),
            HeaderValue::from_static("true"),
        );
    }
    if let Some(a) = &d.auto {
        set_header(headers, names::AUTO_ROUTER, &a.router);
        set_header(headers, names::AUTO_ROUTE, &a.label);
        if a.kind == routeiq::router::auto::AutoKind::Adaptive {
            set_header(headers, names::ADAPTIVE_ROUTER_MODEL, &d.model_group);
        }
    }
    crate::http::response_headers::decision_headers(
        headers,
        d.decision.as_deref(),
        &d.deployment.id,
        d.decision_time,
    );
}

/// A JSON answer with the decision headers; records its usage and cost in the request's
/// context.
pub(crate) fn answer_response(
    ctx: &RequestCtx,
    mut d: Dispatched<Answer>,
    started: Instant,
) -> Response {
    let usage = d.output.usage;
    let cost = usage.and_then(|u| d.deployment.cost(u.prompt_tokens, u.completion_tokens));
    ctx.dispatched(&d, false);
    if let Some(u) = usage {
        ctx.usage(
            Some(u.prompt_tokens),
            Some(u.completion_tokens),
            Some(u.total_tokens),
        );
    }
    ctx.cost(cost);
    let mut resp = Response::new(Body::from(std::mem::take(&mut d.output.body)));
    // Room for every header the gateway and the middleware set, so the map never regrows.
    *resp.headers_mut() = HeaderMap::with_capacity(16);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    decision_headers(resp.headers_mut(), &d, started);
    if let Some(c) = cost {
        set_header(resp.headers_mut(), names::RESPONSE_COST, &format!("{c:.8}"));
    }
    resp
}

/// An event stream with the decision headers; the stream records its usage and cost when
/// it ends ([`sse_body`]).
pub(crate) fn sse_response<T: StreamChunk>(
    gw: Arc<Gateway>,
    d: Dispatched<StreamStart<T>>,
    started: Instant,
    ctx: RequestCtx,
) -> Response {
    let mut headers = HeaderMap::new();
    decision_headers(&mut headers, &d, started);
    ctx.dispatched(&d, true);
    let idle = gw.timeout_for(&d.deployment, true);
    let body = sse_body(gw, d.deployment, d.output, idle, started, ctx);
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.extend(headers);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    resp
}

pub(crate) fn require_model(model: &str) -> Result<(), GatewayError> {
    if model.trim().is_empty() {
        return Err(GatewayError::invalid_param(
            "'model' must not be empty",
            "model",
        ));
    }
    Ok(())
}

/// What the router learns of a chat or completion request: `(estimated tokens, stream)`,
/// the prompt text (read only by ML strategies), the requested profile (header, metadata),
/// the experiment arm or affinity key it was routed with, and a verified edge hint.
async fn request_facts(
    gw: &Gateway,
    (estimated_tokens, stream): (u64, bool),
    text: impl FnOnce() -> String,
    (profile, metadata): (
        Option<&HeaderValue>,
        Option<&serde_json::Map<String, serde_json::Value>>,
    ),
    routed: &crate::experiment::Routed,
    hint: &crate::edge_hint::HintCheck,
) -> Result<RequestFacts, GatewayError> {
    let features =
        crate::http::prompt::prompt_features(gw, text, profile, metadata, hint.hint().as_deref())
            .await?;
    Ok(RequestFacts {
        estimated_tokens,
        stream,
        prompt: routed.with_profile(features),
        conversation: routed.conversation.clone(),
        hint: hint.hint(),
        ..RequestFacts::default()
    })
}

/// What [`open`] needs of a routed request type (chat, completions, Anthropic messages).
pub(crate) trait RequestBody: DeserializeOwned {
    fn model(&self) -> &str;
    fn extra_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value>;
    fn metadata(&self) -> Option<&serde_json::Map<String, serde_json::Value>>;
    fn user(&self) -> Option<&str>;
    fn is_stream(&self) -> bool;
    /// Checks beyond the request's shape.
    fn check(&self, gw: &Gateway) -> Result<(), GatewayError>;
    /// The prompt's estimated tokens.
    fn estimated_tokens(&self) -> u64;
    /// The prompt text (read only by ML strategies).
    fn prompt_text(&self) -> String;
    /// The text auto routers read: the last user message (LiteLLM's rule), or the prompt.
    fn routing_text(&self) -> String;
}

/// What the chat and completions handlers need of their request type beyond [`RequestBody`]:
/// the upstream calls.
trait RoutedBody: RequestBody {
    /// The stream chunk type relayed to the client.
    type Chunk: StreamChunk;
    /// The non-streamed upstream call.
    type Plain<'a>: Operation<Output = Answer>
    where
        Self: 'a;
    /// The streamed upstream call.
    type Stream<'a>: Operation<Output = StreamStart<Self::Chunk>>
    where
        Self: 'a;
    fn plain<'a>(&'a self, headers: Option<&'a HeaderMap>) -> Self::Plain<'a>;
    fn stream<'a>(&'a self, headers: Option<&'a HeaderMap>) -> Self::Stream<'a>;
}

impl RequestBody for ChatCompletionRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn extra_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        &mut self.extra
    }

    fn metadata(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.metadata.as_ref()
    }

    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn is_stream(&self) -> bool {
        ChatCompletionRequest::is_stream(self)
    }

    fn check(&self, gw: &Gateway) -> Result<(), GatewayError> {
        if self.messages.is_empty() {
            return Err(GatewayError::invalid_param(
                "'messages' must not be empty",
                "messages",
            ));
        }
        crate::http::limits::check_message_count(
            self.messages.len(),
            gw.settings().limits.max_messages,
        )
    }

    fn estimated_tokens(&self) -> u64 {
        let chars: usize = self
            .messages
            .iter()
            .filter_map(|m| m.content.as_ref().map(|c| c.text_chars()))
            .sum();
        estimate_tokens_of_chars(chars)
    }

    fn prompt_text(&self) -> String {
        crate::http::prompt::chat_text(&self.messages)
    }

    fn routing_text(&self) -> String {
        crate::http::prompt::last_user_text(&self.messages)
    }
}

impl RoutedBody for ChatCompletionRequest {
    type Chunk = routeiq::openai::ChatCompletionChunk;
    type Plain<'a> = ChatOp<'a>;
    type Stream<'a> = ChatStreamOp<'a>;

    fn plain<'a>(&'a self, headers: Option<&'a HeaderMap>) -> ChatOp<'a> {
        ChatOp(self, headers)
    }

    fn stream<'a>(&'a self, headers: Option<&'a HeaderMap>) -> ChatStreamOp<'a> {
        ChatStreamOp(self, headers)
    }
}

impl RequestBody for CompletionRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn extra_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        &mut self.extra
    }

    fn metadata(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.metadata.as_ref()
    }

    fn user(&self) -> Option<&str> {
        self.extra.get("user").and_then(serde_json::Value::as_str)
    }

    fn is_stream(&self) -> bool {
        CompletionRequest::is_stream(self)
    }

    fn check(&self, _: &Gateway) -> Result<(), GatewayError> {
        Ok(())
    }

    fn estimated_tokens(&self) -> u64 {
        estimate_tokens(&CompletionRequest::prompt_text(self))
    }

    fn prompt_text(&self) -> String {
        CompletionRequest::prompt_text(self)
    }

    fn routing_text(&self) -> String {
        CompletionRequest::prompt_text(self)
    }
}

impl RoutedBody for CompletionRequest {
    type Chunk = serde_json::Value;
    type Plain<'a> = CompletionOp<'a>;
    type Stream<'a> = CompletionStreamOp<'a>;

    fn plain<'a>(&'a self, headers: Option<&'a HeaderMap>) -> CompletionOp<'a> {
        CompletionOp(self, headers)
    }

    fn stream<'a>(&'a self, headers: Option<&'a HeaderMap>) -> CompletionStreamOp<'a> {
        CompletionStreamOp(self, headers)
    }
}

/// A routed request read, checked and routed: what is left is the dispatch.
pub(crate) struct Opened<B> {
    pub body: B,
    pub ctx: RequestCtx,
    /// The model to dispatch to (an experiment arm may have changed it).
    pub model: String,
    pub facts: RequestFacts,
    pub hint: crate::edge_hint::HintCheck,
    pub extra_headers: Option<HeaderMap>,
    /// The body as the client sent it (a pass-through sends it on).
    pub raw: axum::body::Bytes,
}

/// The opening the routed handlers (chat, completions, messages) share: authorize, read the
/// headers they route by, read and check the body, take its client parameters, assign the
/// experiment arm or affinity key, and build the routing facts.
pub(crate) async fn open<B: RequestBody>(
    gw: &Gateway,
    req: Request,
) -> Result<Opened<B>, GatewayError> {
    let principal = crate::http::access::principal(gw, req.extensions(), req.headers())?;
    let ctx = RequestCtx::of(&req);
    let profile = req.headers().get(names::PROFILE).cloned();
    let min_tier = req.headers().get(names::MIN_QUALITY_TIER).cloned();
    let keys = RequestKeys::from_headers(req.headers())?;
    let hint_headers = crate::edge_hint::headers_of(req.headers());
    let trace = crate::http::client_params::trace_headers(gw, req.headers());
    let (mut body, raw): (B, _) = read_json_raw(gw, req).await?;
    let hint = crate::edge_hint::check_request(gw, &hint_headers, &raw);
    require_model(body.model())?;
    let model = crate::http::access::check_model(gw, &principal, body.model())?;
    body.check(gw)?;
    crate::http::access::admit(gw, &principal, &ctx).await?;
    let extra_headers = crate::http::client_params::with_trace(
        crate::http::client_params::take(body.extra_mut())?,
        trace,
    );
    ctx.set_model_group(gw.router.resolve_group(&model));
    ctx.end_user(body.user());
    let keys = keys.with_body(body.metadata(), body.user())?;
    let routed = crate::experiment::route(gw, &ctx, &model, &keys);
    let estimated_tokens = body.estimated_tokens();
    ctx.estimated_prompt_tokens(estimated_tokens);
    let mut facts = request_facts(
        gw,
        (estimated_tokens, body.is_stream()),
        || body.prompt_text(),
        (profile.as_ref(), body.metadata()),
        &routed,
        &hint,
    )
    .await?;
    facts.auto = crate::http::prompt::auto_route(
        gw,
        &routed.model,
        || body.routing_text(),
        (min_tier.as_ref(), body.metadata()),
        facts.prompt.as_deref(),
    )?;
    Ok(Opened {
        model: routed.model.clone(),
        body,
        ctx,
        facts,
        hint,
        extra_headers,
        raw,
    })
}

/// `POST /v1/chat/completions` and `/chat/completions`.
pub async fn chat_completions(State(gw): AppState, req: Request) -> Response {
    routed::<ChatCompletionRequest>(gw, req).await
}

/// `POST /v1/completions` and `/completions` (legacy text completions).
pub async fn completions(State(gw): AppState, req: Request) -> Response {
    routed::<CompletionRequest>(gw, req).await
}

/// A chat or completion request, start to end: [`open`], dispatch (streamed or not), and
/// the answer with the decision headers.
async fn routed<B: RoutedBody>(gw: Arc<Gateway>, req: Request) -> Response {
    let started = Instant::now();
    match routed_inner::<B>(gw, req, started).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn routed_inner<B: RoutedBody>(
    gw: Arc<Gateway>,
    req: Request,
    started: Instant,
) -> Result<Response, GatewayError> {
    let o: Opened<B> = open(&gw, req).await?;
    let headers = o.extra_headers.as_ref();
    let (mut resp, outcome) = if o.body.is_stream() {
        let d = gw
            .dispatch(&o.model, o.facts, &o.body.stream(headers))
            .await?;
        let outcome = d.hint;
        (sse_response(gw.clone(), d, started, o.ctx.clone()), outcome)
    } else {
        let d = gw
            .dispatch(&o.model, o.facts, &o.body.plain(headers))
            .await?;
        let outcome = d.hint;
        (answer_response(&o.ctx, d, started), outcome)
    };
    crate::edge_hint::set_status(resp.headers_mut(), &o.hint, outcome);
    Ok(resp)
}

/// `POST /v1/embeddings` and `/embeddings`.
pub async fn embeddings(State(gw): AppState, req: Request) -> Response {
    let started = Instant::now();
    match embeddings_inner(gw, req, started).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn embeddings_inner(
    gw: Arc<Gateway>,
    req: Request,
    started: Instant,
) -> Result<Response, GatewayError> {
    let principal = crate::http::access::principal(&gw, req.extensions(), req.headers())?;
    let ctx = RequestCtx::of(&req);
    let trace = crate::http::client_params::trace_headers(&gw, req.headers());
    let mut body: EmbeddingRequest = read_json(&gw, req).await?;
    require_model(&body.model)?;
    body.model = crate::http::access::check_model(&gw, &principal, &body.model)?;
    crate::http::access::admit(&gw, &principal, &ctx).await?;
    ctx.end_user(body.extra.get("user").and_then(|v| v.as_str()));
    let extra_headers = crate::http::client_params::with_trace(
        crate::http::client_params::take(&mut body.extra)?,
        trace,
    );
    ctx.set_model_group(gw.router.resolve_group(&body.model));
    let text = match &body.input {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if !items.is_empty() => items
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => {
            return Err(GatewayError::invalid_param(
                "'input' must be a string or a non-empty array",
                "input",
            ));
        }
    };
    let facts = RequestFacts {
        estimated_tokens: estimate_tokens(&text),
        stream: false,
        ..RequestFacts::default()
    };
    let d = gw
        .dispatch(
            &body.model,
            facts,
            &EmbeddingsOp(&body, extra_headers.as_ref()),
        )
        .await?;
    Ok(answer_response(&ctx, d, started))
}

/// `GET /v1/models` and `/models`.
pub async fn models(
    State(gw): AppState,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let principal = match crate::http::access::principal(&gw, &extensions, &headers) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let list = ModelList {
        object: "list".into(),
        data: gw
            .router
            .model_names()
            .into_iter()
            .filter(|m| crate::http::access::lists_model(&gw, &principal, m))
            .map(|id| ModelObject {
                id,
                object: "model".into(),
                created,
                owned_by: "routeiq".into(),
            })
            .collect(),
    };
    Json(list).into_response()
}

/// `GET /health/liveliness`, `/_health/live`: the process is up.
pub async fn liveliness() -> Response {
    Json("I'm alive!").into_response()
}

/// `GET /health/readiness`, `/_health/ready`: config loaded, router ready, not draining
/// (see [`crate::http::admin::readiness`]).
pub use crate::http::admin::readiness;

/// A 405 (a known path with another method; axum answers those with an empty body) in
/// OpenAI's error shape, keeping its `Allow` header.
pub async fn method_not_allowed(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    // axum sets `Allow` outside this layer, on the way out.
    let message = format!(
        "method {method} is not allowed on {path} (the Allow header lists the methods it takes)"
    );
    let mut out = if crate::http::observe::RouteKind::of(&path).anthropic_errors() {
        let body = routeiq::anthropic::ErrorResponse::for_status(405, message);
        (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
    } else {
        let mut body = GatewayError::invalid(message).body();
        body.error.code = Some("method_not_allowed".into());
        (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
    };
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

/// Unknown paths, in OpenAI's error shape.
pub async fn not_found(req: Request<Body>) -> Response {
    let e = GatewayError::InvalidRequest {
        message: format!("unknown endpoint: {} {}", req.method(), req.uri().path()),
        param: None,
    };
    (StatusCode::NOT_FOUND, Json(e.body())).into_response()
}
