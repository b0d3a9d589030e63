//! Per-request observability and backpressure, as one axum middleware around the API routes:
//!
//! - a trace id per request: an incoming W3C `traceparent`'s trace id, else a well-formed
//!   `x-request-id`, else a fresh one; returned as `x-request-id`;
//! - the `request` span (parent: the incoming `traceparent` when OpenTelemetry is on);
//! - load shedding: beyond `ROUTEIQ_MAX_CONCURRENT_REQUESTS` requests in flight, 503 with
//!   `Retry-After` (health, metrics and admin paths are never shed);
//! - one JSON-able log line per request (`target: routeiq::request`) with the trace id, model
//!   group, deployment, strategy, decision and upstream time, tokens, cost and status — never
//!   message content — and the request metrics. Streams are logged when their body ends.
//!
//! Handlers fill a [`RequestCtx`] (from the request's extensions) with what routing decided.
//! From it the middleware also sets `x-routeiq-affinity` (conversation affinity: `hit`,
//! `miss`, `set`) and `x-routeiq-experiment` (`<experiment>/<arm>`) on the response, and
//! when the request ends adds it to its experiment arm's counters.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::app::App;
use crate::error::GatewayError;
use crate::telemetry::metrics::{Metrics, NO_MODEL, RequestSample};
use crate::upstream::dispatch::Dispatched;

/// The header the trace id is returned in (and read from).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What routing decided for one request, filled by the handlers.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The model group (from the config; never the raw requested name).
    pub model_group: Option<String>,
    pub deployment: Option<String>,
    pub strategy: Option<&'static str>,
    pub decision_time: Duration,
    pub upstream_time: Duration,
    pub attempts: u32,
    pub fallback: bool,
    pub stream: bool,
    /// A stream that failed after its first chunk (its status is still 200).
    pub stream_failed: bool,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    /// USD.
    pub cost: Option<f64>,
    /// The prompt's token count as estimated before routing (for streams without usage).
    pub estimated_prompt_tokens: Option<u64>,
    /// The tokens (and so the cost) are estimates: the upstream reported no usage (a stream
    /// without a usage chunk, or one the client left early).
    pub usage_estimated: bool,
    /// The experiment arm the request was assigned.
    pub experiment: Option<crate::experiment::ExperimentTag>,
    /// What conversation affinity did (`hit`, `miss`, `set`).
    pub affinity: Option<&'static str>,
    /// The model name the deployment sent upstream, and its provider (the spend log).
    pub upstream_model: Option<String>,
    pub provider: Option<String>,
    /// The `user` the request named (the spend log's end user).
    pub end_user: Option<String>,
    /// A virtual key's admission, charged when the request ends (`keys::access`).
    pub admission: Option<AdmissionSlot>,
}

/// A virtual key's admission, taken exactly once when the request ends.
#[derive(Debug, Clone)]
pub struct AdmissionSlot(Arc<Mutex<Option<crate::keys::Admission>>>);

impl AdmissionSlot {
    pub fn new(a: crate::keys::Admission) -> AdmissionSlot {
        AdmissionSlot(Arc::new(Mutex::new(Some(a))))
    }

    fn take(&self) -> Option<crate::keys::Admission> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The admission's `x-ratelimit-*` headers (none once it was charged).
    pub fn headers(&self) -> Vec<(String, u64)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|a| a.headers.clone())
            .unwrap_or_default()
    }
}

/// The shared, per-request [`RequestInfo`] (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct RequestCtx(Arc<Mutex<RequestInfo>>);

impl RequestCtx {
    /// The request's context, or a detached one when the middleware is not installed.
    pub fn of(req: &Request) -> RequestCtx {
        req.extensions()
            .get::<RequestCtx>()
            .cloned()
            .unwrap_or_default()
    }

    fn with(&self, f: impl FnOnce(&mut RequestInfo)) {
        let mut info = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut info);
    }

    /// Reads what was recorded so far, in place.
    pub fn read<R>(&self, f: impl FnOnce(&RequestInfo) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The model group the request resolved to, if it did.
    pub fn set_model_group(&self, group: Option<&str>) {
        self.with(|i| i.model_group = group.map(str::to_string));
    }

    /// What a successful dispatch decided.
    pub fn dispatched<T>(&self, d: &Dispatched<T>, stream: bool) {
        self.with(|i| {
            i.model_group = Some(d.model_group.clone());
            i.deployment = Some(d.deployment.id.clone());
            i.strategy = Some(d.strategy);
            i.decision_time = d.decision_time;
            i.upstream_time = d.upstream_time;
            i.attempts = d.attempts;
            i.fallback = d.fallback;
            i.stream = stream;
            i.affinity = d.affinity.map(|a| a.as_str());
            i.upstream_model = Some(d.deployment.upstream_model.clone());
            i.provider = Some(d.deployment.provider.name().to_string());
        });
    }

    /// A virtual key's admission (charged when the request ends).
    pub fn admitted(&self, a: crate::keys::Admission) {
        self.with(|i| i.admission = Some(AdmissionSlot::new(a)));
    }

    /// The `user` the request named.
    pub fn end_user(&self, user: Option<&str>) {
        self.with(|i| i.end_user = user.map(str::to_string));
    }

    /// The experiment arm the request was assigned.
    pub fn experiment(&self, tag: crate::experiment::ExperimentTag) {
        self.with(|i| i.experiment = Some(tag));
    }

    /// Token usage and cost, when known.
    pub fn usage(&self, prompt: Option<u64>, completion: Option<u64>, total: Option<u64>) {
        self.with(|i| {
            i.prompt_tokens = prompt;
            i.completion_tokens = completion;
            i.total_tokens = total.or_else(|| Some(prompt? + completion?));
        });
    }

    /// The prompt's estimated token count (see [`RequestInfo::estimated_prompt_tokens`]).
    pub fn estimated_prompt_tokens(&self, tokens: u64) {
        self.with(|i| i.estimated_prompt_tokens = Some(tokens));
    }

    /// Marks the usage as estimated.
    pub fn usage_estimated(&self) {
        self.with(|i| i.usage_estimated = true);
    }

    /// The USD cost, when prices are known.
    pub fn cost(&self, cost: Option<f64>) {
        self.with(|i| i.cost = cost);
    }

    /// Marks a stream that ended with an error event.
    pub fn stream_failed(&self) {
        self.with(|i| i.stream_failed = true);
    }
}

/// A route's label: bounded, never the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Chat,
    Completions,
    Embeddings,
    /// Anthropic's Messages API (`/v1/messages`).
    Messages,
    /// `/v1/messages/count_tokens`.
    CountTokens,
    Models,
    Admin,
    /// OpenAI's Responses API (`/v1/responses`, `/v1/responses/{id}`).
    Responses,
    /// Health and metrics: not shed, not logged per request.
    Probe,
    Other,
}

impl RouteKind {
    /// Classifies a request path.
    pub fn of(path: &str) -> RouteKind {
        let p = path.strip_prefix("/v1").unwrap_or(path);
        match p {
            "/chat/completions" => RouteKind::Chat,
            "/completions" => RouteKind::Completions,
            "/embeddings" => RouteKind::Embeddings,
            "/messages" if path.starts_with("/v1/") => RouteKind::Messages,
            "/messages/count_tokens" if path.starts_with("/v1/") => RouteKind::CountTokens,
            "/models" => RouteKind::Models,
            "/router/reload" | "/config/reload" | "/router/experiments" => RouteKind::Admin,
            _ if ["/key/", "/team/", "/user/", "/spend/", "/global/spend/"]
                .iter()
                .any(|prefix| path.starts_with(prefix)) =>
            {
                RouteKind::Admin
            }
            "/metrics" => RouteKind::Probe,
            "/responses" => RouteKind::Responses,
            _ if p.starts_with("/responses/") => RouteKind::Responses,
            _ if path.starts_with("/health/") || path.starts_with("/_health/") => RouteKind::Probe,
            _ => RouteKind::Other,
        }
    }

    /// LiteLLM's `call_type` for the spend log.
    pub fn call_type(self) -> &'static str {
        match self {
            RouteKind::Chat => "acompletion",
            RouteKind::Completions => "atext_completion",
            RouteKind::Embeddings => "aembedding",
            RouteKind::Messages => "anthropic_messages",
            RouteKind::CountTokens => "count_tokens",
            RouteKind::Responses => "aresponses",
            RouteKind::Models | RouteKind::Admin | RouteKind::Probe | RouteKind::Other => "other",
        }
    }

    /// Whether the route answers errors in Anthropic's shape.
    pub fn anthropic_errors(self) -> bool {
        matches!(self, RouteKind::Messages | RouteKind::CountTokens)
    }

    /// The `route` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Chat => "chat",
            RouteKind::Completions => "completions",
            RouteKind::Embeddings => "embeddings",
            RouteKind::Messages => "messages",
            RouteKind::CountTokens => "count_tokens",
            RouteKind::Models => "models",
            RouteKind::Admin => "admin",
            RouteKind::Responses => "responses",
            RouteKind::Probe => "probe",
            RouteKind::Other => "other",
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed and
/// not all zeros.
pub fn traceparent_trace_id(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && is_hex(span, 16)
        && is_hex(flags, 2);
    valid.then(|| trace.to_ascii_lowercase())
}

/// The request's trace id: `traceparent`, else a safe `x-request-id` (1–128 characters of
/// `[A-Za-z0-9._:-]`), else a new random 32-hex id.
pub fn trace_id(headers: &HeaderMap) -> String {
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    static REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
    let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(id) = get(&TRACEPARENT).and_then(traceparent_trace_id) {
        return id;
    }
    if let Some(id) = get(&REQUEST_ID).map(str::trim).filter(|v| {
        !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }) {
        return id.to_string();
    }
    new_trace_id()
}

/// A fresh 128-bit trace id as 32 hex digits, from the thread's fast generator (trace ids
/// need to be unique, not secret; a system call per request for them showed in profiles).
fn new_trace_id() -> String {
    let mut id = fastrand::u128(..);
    if id == 0 {
        id = 1; // W3C: an all-zero trace id is invalid
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..32)
        .rev()
        .map(|i| char::from(HEX[((id >> (4 * i)) & 0xf) as usize]))
        .collect()
}

/// Everything needed to log and count a request once it is over.
struct Finish {
    ctx: RequestCtx,
    route: RouteKind,
    method: axum::http::Method,
    trace_id: String,
    started: Instant,
    metrics: Arc<Metrics>,
    span: tracing::Span,
    _permit: Option<OwnedSemaphorePermit>,
    status: u16,
}

impl Finish {
    fn emit(&self) {
        self.ctx.read(|info| self.emit_info(info));
    }

    fn emit_info(&self, info: &RequestInfo) {
        let duration = self.started.elapsed();
        if let Some(admission) = info.admission.as_ref().and_then(AdmissionSlot::take) {
            let started =
                chrono::Utc::now() - chrono::Duration::from_std(duration).unwrap_or_default();
            admission.finish(crate::keys::Outcome {
                request_id: self.trace_id.clone(),
                call_type: self.route.call_type(),
                cost: info.cost.unwrap_or(0.0),
                prompt_tokens: info.prompt_tokens.unwrap_or(0),
                completion_tokens: info.completion_tokens.unwrap_or(0),
                started,
                model: info
                    .upstream_model
                    .clone()
                    .or_else(|| info.model_group.clone())
                    .unwrap_or_default(),
                model_id: info.deployment.clone(),
                model_group: info.model_group.clone(),
                provider: info.provider.clone(),
                end_user: info.end_user.clone(),
                success: self.status < 400 && !info.stream_failed,
            });
        }
        let model = info.model_group.as_deref().unwrap_or(NO_MODEL);
        self.metrics.observe_request(&RequestSample {
            route: self.route.as_str(),
            model,
            status: self.status,
            duration,
            strategy: info.strategy,
            decision_time: info.decision_time,
            upstream_time: info.upstream_time,
            prompt_tokens: info.prompt_tokens.unwrap_or(0),
            completion_tokens: info.completion_tokens.unwrap_or(0),
            cost: info.cost,
        });
        self.metrics.in_flight().dec();
        if let Some(tag) = &info.experiment {
            tag.recorder.record(
                tag.arm,
                crate::experiment::ArmOutcome {
                    error: self.status >= 400 || info.stream_failed,
                    prompt_tokens: info.prompt_tokens.unwrap_or(0),
                    completion_tokens: info.completion_tokens.unwrap_or(0),
                    cost: info.cost,
                },
            );
        }
        self.span.record("status", self.status);
        if let Some(g) = &info.model_group {
            self.span.record("model_group", g.as_str());
        }
        // Milliseconds to the microsecond: `0.085`, not `0.08509900000000001`.
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        tracing::info!(
            target: "routeiq::request",
            trace_id = %self.trace_id,
            method = %self.method,
            route = self.route.as_str(),
            model_group = info.model_group.as_deref(),
            deployment = info.deployment.as_deref(),
            strategy = info.strategy,
            decision_ms = ms(info.decision_time),
            upstream_ms = ms(info.upstream_time),
            duration_ms = ms(duration),
            attempts = info.attempts,
            fallback = info.fallback,
            stream = info.stream,
            stream_failed = info.stream_failed,
            prompt_tokens = info.prompt_tokens,
            completion_tokens = info.completion_tokens,
            total_tokens = info.total_tokens,
            cost_usd = info.cost,
            usage_estimated = info.usage_estimated,
            affinity = info.affinity,
            experiment_arm = info.experiment.as_ref().map(|t| t.arm_name()),
            status = self.status,
            "request"
        );
    }
}

/// The status logged and counted for a request whose client went away before its response
/// was complete (nginx's "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

/// Logs and counts the request exactly once, when dropped: after a plain response is ready,
/// when a stream's body ends, or when the client went away first (the handler's future or
/// the body is dropped), which counts as [`CLIENT_CLOSED`].
struct FinishOnDrop(Finish);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.emit();
    }
}

/// The middleware (see the module docs).
pub async fn observe(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let route = RouteKind::of(req.uri().path());
    if route == RouteKind::Probe {
        return next.run(req).await;
    }
    let trace_id = trace_id(req.headers());
    let metrics = app.metrics().clone();
    let permit = if route == RouteKind::Admin {
        None
    } else {
        match app.try_admit() {
            Ok(p) => p,
            Err(limit) => {
                metrics.observe_load_shed();
                tracing::warn!(trace_id = %trace_id, limit, "load shed: too many requests in flight");
                let e = GatewayError::Overloaded { limit };
                let mut resp = if route.anthropic_errors() {
                    e.into_anthropic_response()
                } else {
                    e.into_response()
                };
                set_request_id(resp.headers_mut(), &trace_id);
                return resp;
            }
        }
    };
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        http.method = %method,
        route = route.as_str(),
        model_group = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    if app.exporting_traces() {
        crate::telemetry::set_remote_parent(&span, req.headers());
    }
    let ctx = RequestCtx::default();
    req.extensions_mut().insert(ctx.clone());
    metrics.in_flight().inc();
    // From here on the request is logged and counted exactly once, however it ends: if the
    // client goes away while the handler runs, this future (and the guard) is dropped.
    let mut guard = FinishOnDrop(Finish {
        ctx: ctx.clone(),
        route,
        method,
        trace_id,
        started: Instant::now(),
        metrics,
        span: span.clone(),
        _permit: permit,
        status: CLIENT_CLOSED,
    });
    let mut resp = next.run(req).instrument(span).await;
    set_request_id(resp.headers_mut(), &guard.0.trace_id);
    set_routing_headers(resp.headers_mut(), &ctx);
    let status = resp.status().as_u16();
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        guard.0.status = status;
        drop(guard);
        return resp;
    }
    // A stream counts as answered when its body has been sent to the end; dropped before
    // that (the client went away), it stays `CLIENT_CLOSED`.
    let (parts, body) = resp.into_parts();
    let body = ObservedStream {
        data: body.into_data_stream(),
        guard: Some(guard),
        status,
    };
    Response::from_parts(parts, Body::from_stream(body))
}

/// A stream's body that logs and counts the request when it ends or is dropped.
struct ObservedStream {
    /// Declared (so dropped) before `guard`: the stream's own end-of-stream accounting (its
    /// usage and cost, into the request's context) runs before the request is logged.
    data: axum::body::BodyDataStream,
    guard: Option<FinishOnDrop>,
    /// The status logged when the body was sent to its end.
    status: u16,
}

impl futures::Stream for ObservedStream {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.data.poll_next_unpin(cx));
        if item.is_none() {
            let status = self.status;
            if let Some(mut g) = self.guard.take() {
                g.0.status = status;
            }
        }
        std::task::Poll::Ready(item)
    }
}

/// `x-routeiq-affinity` and `x-routeiq-experiment` from what the handler recorded.
fn set_routing_headers(headers: &mut HeaderMap, ctx: &RequestCtx) {
    ctx.read(|info| {
        if let Some(a) = info.affinity {
            headers.insert(
                crate::experiment::AFFINITY_HEADER,
                HeaderValue::from_static(a),
            );
        }
        if let Some(v) = info.experiment.as_ref().and_then(|t| t.header_value()) {
            headers.insert(crate::experiment::EXPERIMENT_HEADER, v);
        }
    });
}

fn set_request_id(headers: &mut HeaderMap, trace_id: &str) {
    static REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
    if let Ok(v) = HeaderValue::from_str(trace_id) {
        headers.insert(REQUEST_ID.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_traceparent_then_request_id() {
        let mut h = HeaderMap::new();
        let fresh = trace_id(&h);
        assert!(is_hex(&fresh, 32), "{fresh}");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-123.abc"));
        assert_eq!(trace_id(&h), "req-123.abc");
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id(&h), "4bf92f3577b34da6a3ce929d0e0e4736");
        // Malformed traceparent and unsafe request ids are ignored.
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        );
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("a b"));
        assert!(is_hex(&trace_id(&h), 32));
        assert_eq!(
            traceparent_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }

    #[test]
    fn routes_are_bounded_labels() {
        assert_eq!(RouteKind::of("/v1/chat/completions"), RouteKind::Chat);
        assert_eq!(RouteKind::of("/chat/completions"), RouteKind::Chat);
        assert_eq!(RouteKind::of("/metrics"), RouteKind::Probe);
        assert_eq!(RouteKind::of("/v1/responses"), RouteKind::Responses);
        assert_eq!(RouteKind::of("/responses/resp_1"), RouteKind::Responses);
        assert_eq!(RouteKind::of("/health/readiness"), RouteKind::Probe);
        assert_eq!(RouteKind::of("/config/reload"), RouteKind::Admin);
        assert_eq!(RouteKind::of("/anything/else"), RouteKind::Other);
        assert_eq!(RouteKind::of("/v1/messages"), RouteKind::Messages);
        assert_eq!(
            RouteKind::of("/v1/messages/count_tokens"),
            RouteKind::CountTokens
        );
        assert_eq!(RouteKind::of("/messages"), RouteKind::Other);
        assert!(RouteKind::Messages.anthropic_errors() && !RouteKind::Chat.anthropic_errors());
    }
}
