//! HTTP plumbing shared by the providers: sending JSON requests, mapping upstream error statuses
//! and bodies to [`GatewayError`], reading Server-Sent Events streams, and the few OpenAI-shape
//! conversions more than one provider needs.
//!
//! Nothing here retries, sleeps or times out on its own: the dispatcher owns all of that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eventsource_stream::{EventStream, EventStreamError, Eventsource};
use futures::stream::{self, BoxStream, StreamExt};
use http::header::{HeaderMap, HeaderValue};
use http::{Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use routeiq::config::SecretString;
use routeiq::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, Usage,
};
use routeiq::router::Deployment;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{GatewayError, UpstreamErrorKind};
use crate::upstream::client::{HttpClient, ResponseLimits};

/// Upstream error messages longer than this (in characters) are cut.
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

/// How much of an upstream error body (or of an answer that is not an event stream) is read.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// `litellm_params` keys that configure LiteLLM itself and must never reach an upstream body
/// (the config loader may keep them in `LitellmParams::extra`).
const LITELLM_ONLY_PARAMS: &[&str] = &[
    "additional_drop_params",
    "api_type",
    "azure_ad_token",
    "base_model",
    "client_id",
    "client_secret",
    "custom_llm_provider",
    "drop_params",
    "input_cost_per_token",
    "litellm_credential_name",
    "max_parallel_requests",
    "output_cost_per_token",
    "region_name",
    "tags",
    "tenant_id",
    "use_in_pass_through",
];

/// Body hints (lower-case) that a 400 is a context-window error.
const CONTEXT_WINDOW_HINTS: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "exceed context limit",
];

/// Body hints (lower-case) that a 400 is a content-policy refusal.
const CONTENT_POLICY_HINTS: &[&str] = &[
    "content_policy_violation",
    "content management policy",
    "content_filter",
    "safety",
];

/// The upstream a provider talks to, as errors and logs name it.
#[derive(Debug, Clone)]
pub(super) struct Upstream {
    /// Provider name (`openai`, `groq`, `azure`, `anthropic`...).
    pub(super) provider: String,
}

impl Upstream {
    pub(super) fn new(provider: &str) -> Self {
        Upstream {
            provider: provider.to_string(),
        }
    }

    pub(super) fn connection_error(&self, message: impl Into<String>) -> GatewayError {
        GatewayError::Connection {
            provider: self.provider.clone(),
            message: message.into(),
        }
    }

    pub(super) fn bad_response(&self, message: impl Into<String>) -> GatewayError {
        GatewayError::BadUpstreamResponse {
            provider: self.provider.clone(),
            message: message.into(),
        }
    }

    /// Maps a transport error (from [`HttpClient`] or a response body): a connection the
    /// SSRF guard refused is [`GatewayError::OutboundBlocked`], anything else (including a
    /// connect timeout and a body cut mid-way) a connection error carrying the error chain.
    /// No URL appears in it (an `api_base` may carry credentials); API keys travel in
    /// headers, which are never printed.
    pub(super) fn transport_error(&self, e: &(dyn std::error::Error + 'static)) -> GatewayError {
        if let Some(blocked) = crate::upstream::guard::blocked_in(e) {
            return GatewayError::OutboundBlocked(blocked);
        }
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        self.connection_error(message)
    }

    /// `POST`s `body` (JSON) to `url`; a non-2xx answer becomes [`GatewayError::Upstream`].
    /// The 2xx response's body is left to stream.
    ///
    /// `extra` are the client's `extra_headers` (checked by [`crate::http::client_params`]): added
    /// where the provider sets no header of the same name (its own headers always win).
    pub(super) async fn send(
        &self,
        http: &HttpClient,
        url: &Uri,
        (headers, extra): (&HeaderMap, Option<&HeaderMap>),
        body: Bytes,
    ) -> Result<Response<Incoming>, GatewayError> {
        let merged;
        let headers = match extra {
            Some(extra) if !extra.is_empty() => {
                let mut all = headers.clone();
                for (name, value) in extra {
                    if !all.contains_key(name) {
                        all.append(name.clone(), value.clone());
                    }
                }
                merged = all;
                &merged
            }
            _ => headers,
        };
        let resp = http
            .post_json(url, headers, body)
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        // A body that cannot be read (or is too long to be an error message) still leaves
        // the status to classify by.
        let body = http_body_util::Limited::new(body, MAX_ERROR_BODY_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(self.error_from_response(status.as_u16(), &parts.headers, &body))
    }

    /// The whole body of a 2xx answer, at most `limits.max_body_bytes` of it: a longer one
    /// is a bad answer (502), refused as soon as its `Content-Length` or its bytes say so.
    pub(super) async fn read_body(
        &self,
        limits: ResponseLimits,
        resp: Response<Incoming>,
    ) -> Result<Bytes, GatewayError> {
        let max = limits.max_body_bytes;
        let too_large = || {
            self.bad_response(format!(
                "the answer is larger than the {} MB limit (general_settings.max_response_size_mb)",
                max as f64 / (1024.0 * 1024.0)
            ))
        };
        let declared = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        match http_body_util::Limited::new(resp.into_body(), max)
            .collect()
            .await
        {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(self.transport_error(&*e)),
        }
    }

    /// Reads a 2xx body as JSON of type `T`; a body that is an error object (`{"error":
    /// ...}`, which some upstreams send with 200) is that error.
    pub(super) async fn read_json<T: DeserializeOwned>(
        &self,
        limits: ResponseLimits,
        resp: Response<Incoming>,
    ) -> Result<T, GatewayError> {
        let body = self.read_body(limits, resp).await?;
        serde_json::from_slice(&body).map_err(|e| self.unreadable_answer(&body, &e))
    }

    /// The error for a 2xx body that is not the expected shape: the upstream's own error
    /// when the body is an error object, else a bad answer naming what failed to parse.
    pub(super) fn unreadable_answer(&self, body: &[u8], e: &serde_json::Error) -> GatewayError {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) if v.get("error").is_some_and(|e| !e.is_null()) => self.error_from_payload(&v),
            _ => self.bad_response(format!("invalid JSON: {e}")),
        }
    }

    /// The error for a non-2xx answer.
    pub(super) fn error_from_response(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> GatewayError {
        let parsed = serde_json::from_slice::<Value>(body).ok();
        let message = parsed.as_ref().and_then(error_message).unwrap_or_else(|| {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no error message")
                    .to_string()
            } else {
                raw.to_string()
            }
        });
        let codes = parsed.as_ref().map(error_codes).unwrap_or_default();
        let kind = classify(status, &codes, &message);
        let retry_after = retry_after(headers, SystemTime::now());
        tracing::debug!(
            provider = %self.provider,
            status,
            kind = ?kind,
            "upstream returned an error status"
        );
        GatewayError::Upstream {
            provider: self.provider.clone(),
            status,
            kind,
            message: truncate(&message, MAX_ERROR_MESSAGE_CHARS),
            retry_after,
        }
    }

    /// The error for an error event received mid-stream (OpenAI `{"error":{...}}` or
    /// Anthropic `{"type":"error","error":{"type","message"}}`).
    pub(super) fn error_from_payload(&self, payload: &Value) -> GatewayError {
        let message = error_message(payload).unwrap_or_else(|| "error event in stream".into());
        let codes = error_codes(payload);
        let status = payload
            .get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .or_else(|| codes.iter().find_map(|c| status_for_error_type(c)))
            .unwrap_or(500);
        let kind = classify(status, &codes, &message);
        tracing::debug!(
            provider = %self.provider,
            status,
            kind = ?kind,
            "upstream sent an error event mid-stream"
        );
        GatewayError::Upstream {
            provider: self.provider.clone(),
            status,
            kind,
            message: truncate(&message, MAX_ERROR_MESSAGE_CHARS),
            retry_after: None,
        }
    }

    /// The `data:` events of a 2xx SSE answer (see [`Upstream::sse_from_bytes`]). An answer
    /// that is plainly not an event stream (an HTML page, a JSON body) is one error item
    /// saying what arrived: the upstream's error for a JSON error object, else a bad answer
    /// with the content type and the start of the body.
    pub(super) fn sse(
        &self,
        limits: ResponseLimits,
        resp: Response<Incoming>,
        end: StreamEnd,
    ) -> SseStream {
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let not_a_stream = [
            "text/html",
            "application/json",
            "text/xml",
            "application/xml",
        ]
        .iter()
        .any(|t| content_type.starts_with(t));
        if !not_a_stream {
            let bytes = resp.into_body().into_data_stream().boxed();
            return self.sse_from_bytes(bytes, end, limits);
        }
        let upstream = self.clone();
        stream::once(async move {
            let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && v.get("error").is_some_and(|e| !e.is_null())
            {
                return Err(upstream.error_from_payload(&v));
            }
            let text = String::from_utf8_lossy(&body);
            Err(upstream.bad_response(format!(
                "expected an event stream (text/event-stream), got {content_type}: {}",
                truncate(text.trim(), 200)
            )))
        })
        .boxed()
    }

    /// Turns a byte stream into SSE events. The stream ends cleanly on OpenAI's `data: [DONE]`
    /// (not yielded) or after Anthropic's `message_stop` event (yielded), depending on `end`.
    /// A transport failure, an error event (`event: error` or a payload with an `error`
    /// member), or the bytes ending before that terminator yield one error item, then the
    /// stream ends: a cut stream is never mistaken for a complete one.
    ///
    /// A line longer than `limits.max_sse_line_bytes`, or a stream longer in all than
    /// `limits.max_body_bytes` (`general_settings.max_response_size_mb`), ends the stream with
    /// a bad-answer error, so an upstream cannot make the gateway relay or buffer without end.
    pub(super) fn sse_from_bytes<E>(
        &self,
        bytes: BoxStream<'static, Result<Bytes, E>>,
        end: StreamEnd,
        limits: ResponseLimits,
    ) -> SseStream
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut line = 0usize;
        let mut total = 0usize;
        let bytes = bytes
            .map(move |chunk| match chunk {
                Ok(b) => {
                    total = total.saturating_add(b.len());
                    if total > limits.max_body_bytes {
                        Err(SseRead::TooLarge(limits.max_body_bytes))
                    } else if longest_line(&mut line, &b) > limits.max_sse_line_bytes {
                        Err(SseRead::LineTooLong(limits.max_sse_line_bytes))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => Err(SseRead::Transport(e)),
            })
            .boxed();
        let state = SseState {
            events: bytes.eventsource(),
            upstream: self.clone(),
            end,
            finished: false,
            complete: false,
        };
        stream::unfold(state, |mut st| async move {
            if st.finished {
                return None;
            }
            loop {
                let item = match st.events.next().await {
                    None if st.complete => return None,
                    None => Err(st
                        .upstream
                        .connection_error("stream ended before completion")),
                    Some(Err(EventStreamError::Transport(SseRead::Transport(e)))) => {
                        Err(st.upstream.transport_error(&e))
                    }
                    Some(Err(EventStreamError::Transport(
                        e @ (SseRead::LineTooLong(_) | SseRead::TooLarge(_)),
                    ))) => Err(st.upstream.bad_response(e.to_string())),
                    Some(Err(e)) => Err(st.upstream.bad_response(format!("invalid SSE: {e}"))),
                    Some(Ok(ev)) => {
                        if ev.data == "[DONE]" {
                            match st.end {
                                StreamEnd::Done => return None,
                                StreamEnd::MessageStop
                                | StreamEnd::FinishReason
                                | StreamEnd::ResponseDone => continue,
                            }
                        }
                        if let Some(err) = st.upstream.stream_error(&ev.event, &ev.data) {
                            Err(err)
                        } else {
                            st.finished = (st.end == StreamEnd::MessageStop
                                && is_message_stop(&ev.event, &ev.data))
                                || (st.end == StreamEnd::ResponseDone
                                    && is_response_terminal(&ev.event, &ev.data));
                            st.complete |= st.end == StreamEnd::FinishReason
                                && ev.data.contains("\"finishReason\"");
                            let ev = SseEvent {
                                event: ev.event,
                                data: ev.data,
                            };
                            return Some((Ok(ev), st));
                        }
                    }
                };
                st.finished = true;
                return Some((item, st));
            }
        })
        .boxed()
    }

    /// The error an SSE event carries, if it is an error event.
    fn stream_error(&self, event: &str, data: &str) -> Option<GatewayError> {
        let is_error_event = event == "error";
        // Cheap pre-check: in a JSON text, `"error"` followed by a quote only occurs as a key
        // or a whole string value, never inside escaped content.
        if !is_error_event && !data.contains("\"error\"") {
            return None;
        }
        match serde_json::from_str::<Value>(data) {
            Ok(v) if is_error_event || v.get("error").is_some_and(|e| !e.is_null()) => {
                Some(self.error_from_payload(&v))
            }
            Ok(_) => None,
            Err(_) if is_error_event => Some(GatewayError::Upstream {
                provider: self.provider.clone(),
                status: 500,
                kind: UpstreamErrorKind::InternalServer,
                message: truncate(data, MAX_ERROR_MESSAGE_CHARS),
                retry_after: None,
            }),
            Err(_) => None,
        }
    }
}

/// Whether an SSE event is Anthropic's `message_stop` (by its name, or by its payload's `type`
/// when a proxy dropped the `event:` line).
fn is_message_stop(event: &str, data: &str) -> bool {
    event == "message_stop"
        || (event == "message"
            && serde_json::from_str::<Value>(data)
                .ok()
                .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("message_stop")))
}

/// The terminal events of an OpenAI Responses stream.
const RESPONSE_TERMINAL_EVENTS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Whether an SSE event ends a Responses stream (by its name, or by its payload's `type` when
/// a proxy dropped the `event:` line).
fn is_response_terminal(event: &str, data: &str) -> bool {
    RESPONSE_TERMINAL_EVENTS.contains(&event)
        || (event == "message"
            && serde_json::from_str::<Value>(data).ok().is_some_and(|v| {
                v.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| RESPONSE_TERMINAL_EVENTS.contains(&t))
            }))
}

/// How a provider's SSE stream signals a complete answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamEnd {
    /// OpenAI and compatible APIs: `data: [DONE]`.
    Done,
    /// Anthropic: the `message_stop` event.
    MessageStop,
    /// Gemini: the connection closes after an event with a `finishReason`.
    FinishReason,
    /// OpenAI's Responses API: the terminal event (`response.completed`,
    /// `response.incomplete` or `response.failed`, yielded).
    ResponseDone,
}

/// One SSE event: its `event:` name (`message` when absent) and its `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SseEvent {
    pub(super) event: String,
    pub(super) data: String,
}

pub(super) type SseStream = BoxStream<'static, Result<SseEvent, GatewayError>>;

/// What reading an event stream's bytes can fail with.
#[derive(Debug)]
enum SseRead<E> {
    /// The connection.
    Transport(E),
    /// A line longer than the limit (`ROUTEIQ_MAX_SSE_LINE_BYTES`).
    LineTooLong(usize),
    /// More bytes in all than the limit (`general_settings.max_response_size_mb`).
    TooLarge(usize),
}

impl<E: std::fmt::Display> std::fmt::Display for SseRead<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseRead::Transport(e) => e.fmt(f),
            SseRead::LineTooLong(max) => write!(
                f,
                "the event stream sent a line longer than {max} bytes (ROUTEIQ_MAX_SSE_LINE_BYTES)"
            ),
            SseRead::TooLarge(max) => write!(
                f,
                "the event stream sent more than {max} bytes (general_settings.max_response_size_mb)"
            ),
        }
    }
}

impl<E: std::error::Error> std::error::Error for SseRead<E> {}

/// Updates `current` (the length of the line in progress) with `chunk` and returns the
/// longest line seen in it, the one in progress included.
fn longest_line(current: &mut usize, chunk: &[u8]) -> usize {
    let mut longest = 0;
    let mut start = 0;
    for at in memchr::memchr2_iter(b'\n', b'\r', chunk) {
        longest = longest.max(*current + (at - start));
        *current = 0;
        start = at + 1;
    }
    *current += chunk.len() - start;
    longest.max(*current)
}

struct SseState<E> {
    events: EventStream<BoxStream<'static, Result<Bytes, SseRead<E>>>>,
    upstream: Upstream,
    end: StreamEnd,
    finished: bool,
    /// [`StreamEnd::FinishReason`]: an event with a finish reason went by, so the
    /// connection may close.
    complete: bool,
}

/// Maps each SSE event through `f` (which may swallow it by returning `None`). The first
/// error, from the SSE stream or from `f`, is the last item.
pub(super) fn translate_events<T, S, F>(
    events: SseStream,
    state: S,
    f: F,
) -> BoxStream<'static, Result<T, GatewayError>>
where
    T: Send + 'static,
    S: Send + 'static,
    F: FnMut(&mut S, SseEvent) -> Result<Option<T>, GatewayError> + Send + 'static,
{
    stream::unfold(
        (events, state, f, false),
        |(mut events, mut state, mut f, failed)| async move {
            if failed {
                return None;
            }
            loop {
                match events.next().await? {
                    Err(e) => return Some((Err(e), (events, state, f, true))),
                    Ok(ev) => match f(&mut state, ev) {
                        Ok(Some(item)) => return Some((Ok(item), (events, state, f, false))),
                        Ok(None) => continue,
                        Err(e) => return Some((Err(e), (events, state, f, true))),
                    },
                }
            }
        },
    )
    .boxed()
}

/// The upstream's error message: `error.message`, a string `error`, `message` or `detail`.
fn error_message(v: &Value) -> Option<String> {
    let err = v.get("error");
    err.and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .or_else(|| err.and_then(Value::as_str))
        .or_else(|| v.get("message").and_then(Value::as_str))
        .or_else(|| v.get("detail").and_then(Value::as_str))
        .map(str::to_string)
}

/// Machine-readable error codes and types in a body, for classification.
fn error_codes(v: &Value) -> Vec<String> {
    let mut codes = Vec::new();
    for obj in [v.get("error"), Some(v)].into_iter().flatten() {
        for key in ["code", "type"] {
            if let Some(s) = obj.get(key).and_then(Value::as_str)
                && s != "error"
            {
                codes.push(s.to_string());
            }
        }
    }
    codes
}

/// HTTP status for an error `type` as OpenAI and Anthropic name them (mid-stream errors).
fn status_for_error_type(t: &str) -> Option<u16> {
    Some(match t {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" | "rate_limit_exceeded" => 429,
        "api_error" | "server_error" => 500,
        "overloaded_error" => 529,
        "timeout_error" => 504,
        _ => return None,
    })
}

/// The error class: from the status, refined for 400-class answers by the body's hints.
pub(super) fn classify(status: u16, codes: &[String], message: &str) -> UpstreamErrorKind {
    let kind = UpstreamErrorKind::from_status(status);
    if kind != UpstreamErrorKind::BadRequest {
        return kind;
    }
    let message = message.to_lowercase();
    let hit = |hints: &[&str]| {
        hints
            .iter()
            .any(|h| message.contains(h) || codes.iter().any(|c| c.eq_ignore_ascii_case(h)))
    };
    if hit(CONTEXT_WINDOW_HINTS) {
        UpstreamErrorKind::ContextWindowExceeded
    } else if hit(CONTENT_POLICY_HINTS) {
        UpstreamErrorKind::ContentPolicyViolation
    } else {
        kind
    }
}

/// How long the upstream asks us to wait: `retry-after-ms`, else `Retry-After` (seconds or an
/// HTTP-date).
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0)
    {
        return Some(d);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete forms RFC 9110
/// still asks recipients to read).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s).ok()
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Seconds since the Unix epoch, for `created`.
pub(super) fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A serializable value as a JSON object.
pub(super) fn to_object<T: Serialize>(value: &T) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::Internal(
            "request is not a JSON object".into(),
        )),
        Err(e) => Err(GatewayError::Internal(format!(
            "cannot serialize request: {e}"
        ))),
    }
}

/// A value serialized as a JSON body (a request's, or a translated answer's).
pub(super) fn json_bytes(value: &impl Serialize) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| GatewayError::Internal(format!("cannot serialize JSON: {e}")))
}

/// Parses a deployment's endpoint URL (once, at start-up): `http://` or `https://` with a
/// host.
pub(super) fn parse_endpoint(d: &Deployment, url: &str) -> Result<Uri, GatewayError> {
    parse_http_url(url).map_err(|why| {
        GatewayError::NotSupported(format!(
            "deployment '{}': api_base gives an invalid URL '{url}': {why}",
            d.id
        ))
    })
}

/// `url` as an `http://` or `https://` URI with a host and, if any, a port that reads; else
/// why not.
pub(super) fn parse_http_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the scheme must be http or https".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    // `Uri` keeps a port it cannot read as a number (`:99999`) and reports none.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    if after_host.contains(':') && uri.port_u16().is_none() {
        return Err("invalid port".into());
    }
    Ok(uri)
}

/// Adds the deployment's `litellm_params` extras to a request body: keys the request already
/// has win, and LiteLLM's own settings (`drop_params`, `tags`...) are never sent.
pub(super) fn merge_defaults(body: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, value) in defaults {
        if !is_litellm_only(key) && !body.contains_key(key) {
            body.insert(key.clone(), value.clone());
        }
    }
}

/// Whether a `litellm_params` key configures the gateway rather than the upstream request.
pub(super) fn is_litellm_only(key: &str) -> bool {
    LITELLM_ONLY_PARAMS.contains(&key)
}

/// Adds the deployment's own headers (`litellm_params.extra_headers`) to `headers`, marked
/// sensitive (their values may be credentials). A name or value that is not a valid header
/// fails the deployment's construction.
pub(super) fn add_deployment_headers(
    d: &Deployment,
    headers: &mut ::http::HeaderMap,
) -> Result<(), GatewayError> {
    for (name, value) in &d.params.headers {
        let bad = |what: &str| {
            GatewayError::Internal(format!(
                "deployment '{}': extra_headers '{name}' is not a valid header {what}",
                d.id
            ))
        };
        let name = ::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| bad("value"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(())
}

/// A non-empty value.
pub(super) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// The deployment's base URL: `api_base`, else the provider's base URL variables, else its
/// public endpoint ([`routeiq::provider::ProviderKind`] declares both).
pub(super) fn resolve_api_base(
    d: &Deployment,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    non_empty(d.params.api_base.clone())
        .or_else(|| {
            d.provider
                .api_base_env()
                .iter()
                .find_map(|v| non_empty(env(v)))
        })
        .or_else(|| d.provider.default_api_base().map(str::to_string))
}

/// The deployment's `api_key`, else the named environment variable; kept a
/// [`SecretString`] until it becomes a sensitive header value ([`secret_header`]).
pub(super) fn resolve_key(
    d: &Deployment,
    env_var: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<SecretString> {
    d.params
        .api_key
        .clone()
        .filter(|k| !k.expose().trim().is_empty())
        .or_else(|| non_empty(env_var.and_then(env)).map(SecretString::new))
}

/// A header value holding a secret, `prefix` + the key (marked sensitive so it is never
/// printed).
pub(super) fn secret_header(
    d: &Deployment,
    prefix: &str,
    key: &SecretString,
) -> Result<HeaderValue, GatewayError> {
    let mut bytes = Vec::with_capacity(prefix.len() + key.expose().len());
    bytes.extend_from_slice(prefix.as_bytes());
    bytes.extend_from_slice(key.expose().as_bytes());
    let mut v = HeaderValue::from_bytes(&bytes).map_err(|_| {
        GatewayError::Internal(format!(
            "the API key of deployment '{}' contains characters not allowed in an HTTP header",
            d.id
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
pub(super) fn wants_stream_usage(req: &ChatCompletionRequest) -> bool {
    req.stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false)
}

/// A legacy completion request as a one-user-message chat request (for providers without a
/// completions endpoint). Completion-only parameters stay in `extra` for the provider to drop.
pub(super) fn completion_as_chat(
    req: &CompletionRequest,
) -> Result<ChatCompletionRequest, GatewayError> {
    if req.prompt_text().is_empty() {
        return Err(GatewayError::invalid_param(
            "this deployment's provider has no completions endpoint: the prompt must be a \
             non-empty string or array of strings",
            "prompt",
        ));
    }
    let mut map = to_object(req)?;
    map.remove("prompt");
    map.insert(
        "messages".into(),
        json!([{"role": "user", "content": req.prompt_text()}]),
    );
    let mut chat: ChatCompletionRequest = serde_json::from_value(Value::Object(map))
        .map_err(|e| GatewayError::invalid(format!("invalid completion request: {e}")))?;
    chat.metadata = req.metadata.clone();
    Ok(chat)
}

/// A chat response in OpenAI's legacy `text_completion` shape.
pub(super) fn text_completion_from_chat(resp: &ChatCompletionResponse) -> Value {
    let choices: Vec<Value> = resp
        .choices
        .iter()
        .map(|c| {
            json!({
                "text": c.message.content.clone().unwrap_or_default(),
                "index": c.index,
                "finish_reason": c.finish_reason,
                "logprobs": null,
            })
        })
        .collect();
    text_completion(&resp.id, resp.created, &resp.model, choices, resp.usage)
}

/// A chat chunk as a `text_completion` stream event; `None` for chunks with nothing to say
/// in that shape (the role-only first chunk).
/// A chat chunk stream as a legacy `text_completion` event stream (providers that serve
/// completions through their chat API).
pub(super) fn text_completion_stream(chunks: super::ChunkStream) -> super::JsonStream {
    use futures::StreamExt;
    chunks
        .filter_map(|c| async move {
            match c {
                Ok(chunk) => text_completion_from_chunk(&chunk).map(Ok),
                Err(e) => Some(Err(e)),
            }
        })
        .boxed()
}

pub(super) fn text_completion_from_chunk(chunk: &ChatCompletionChunk) -> Option<Value> {
    let choices: Vec<Value> = chunk
        .choices
        .iter()
        .filter(|c| {
            c.finish_reason.is_some() || c.delta.content.as_ref().is_some_and(|t| !t.is_empty())
        })
        .map(|c| {
            json!({
                "text": c.delta.content.clone().unwrap_or_default(),
                "index": c.index,
                "finish_reason": c.finish_reason,
                "logprobs": null,
            })
        })
        .collect();
    if choices.is_empty() && chunk.usage.is_none() {
        return None;
    }
    Some(text_completion(
        &chunk.id,
        chunk.created,
        &chunk.model,
        choices,
        chunk.usage,
    ))
}

fn text_completion(
    id: &str,
    created: u64,
    model: &str,
    choices: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let id = id
        .strip_prefix("chatcmpl-")
        .map_or_else(|| id.to_string(), |rest| format!("cmpl-{rest}"));
    let mut v = json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let (Some(usage), Some(obj)) = (usage, v.as_object_mut()) {
        obj.insert("usage".into(), json!(usage));
    }
    v
}

#[cfg(test)]
pub(super) mod test_support {
    //! Helpers for provider tests: a local HTTP server and deployments.

    use routeiq::config::{DeploymentConfig, LitellmParams, ModelInfo};
    use routeiq::router::Deployment;

    /// The gateway's upstream client, as the operator's deployments use it.
    pub(in crate::upstream::providers) fn client() -> crate::upstream::client::HttpClient {
        crate::upstream::client::HttpClient::new(
            std::sync::Arc::new(crate::upstream::guard::OutboundPolicy::default()),
            crate::upstream::guard::Trust::Operator,
            None,
            1,
        )
        .expect("client")
    }

    /// Serves `app` on 127.0.0.1 and returns its base URL.
    pub(in crate::upstream::providers) async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        format!("http://{addr}")
    }

    pub(in crate::upstream::providers) fn deployment(params: LitellmParams) -> Deployment {
        deployment_with_info(params, ModelInfo::default())
    }

    pub(in crate::upstream::providers) fn deployment_with_info(
        params: LitellmParams,
        info: ModelInfo,
    ) -> Deployment {
        let cfg = DeploymentConfig {
            model_name: "group".into(),
            litellm_params: params,
            model_info: info,
        };
        Deployment::from_config(0, &cfg)
    }

    pub(in crate::upstream::providers) fn params(model: &str) -> LitellmParams {
        LitellmParams {
            model: model.into(),
            ..LitellmParams::default()
        }
    }

    /// An SSE response body.
    pub(in crate::upstream::providers) fn sse_response(
        body: &'static str,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        (
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No line in these tests comes near it.
    const TEST_LIMITS: ResponseLimits = ResponseLimits {
        max_body_bytes: 64 << 20,
        max_sse_line_bytes: 1 << 20,
    };

    #[test]
    fn longest_line_spans_chunks() {
        let mut line = 0;
        assert_eq!(longest_line(&mut line, b"data: abc"), 9);
        assert_eq!(longest_line(&mut line, b"def\n\ndata: x"), 12);
        assert_eq!(line, 7);
        assert_eq!(longest_line(&mut line, b"\r\n"), 7);
        assert_eq!(line, 0);
        assert_eq!(longest_line(&mut line, b""), 0);
    }

    #[tokio::test]
    async fn an_endless_sse_line_is_a_bad_answer() {
        let long = "x".repeat(100);
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from("data: {\"a\":1}\n\n")),
            Ok(Bytes::from(format!("data: {long}"))),
            Ok(Bytes::from(long.clone())),
        ];
        let limits = ResponseLimits {
            max_sse_line_bytes: 150,
            ..ResponseLimits::default()
        };
        let items = collect(upstream().sse_from_bytes(
            stream::iter(chunks).boxed(),
            StreamEnd::Done,
            limits,
        ))
        .await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(items[0].is_ok());
        let Err(e) = &items[1] else {
            panic!("expected an error: {items:?}")
        };
        assert!(matches!(e, GatewayError::BadUpstreamResponse { .. }), "{e}");
        assert!(e.to_string().contains("ROUTEIQ_MAX_SSE_LINE_BYTES"), "{e}");
    }

    #[tokio::test]
    async fn a_stream_longer_than_the_response_limit_is_a_bad_answer() {
        let event = Bytes::from("data: {\"choices\":[]}\n\n");
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..10).map(|_| Ok(event.clone())).collect();
        let limits = ResponseLimits {
            max_body_bytes: event.len() * 3,
            ..ResponseLimits::default()
        };
        let items = collect(upstream().sse_from_bytes(
            stream::iter(chunks).boxed(),
            StreamEnd::Done,
            limits,
        ))
        .await;
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(items[..3].iter().all(Result::is_ok));
        let Err(e) = &items[3] else {
            panic!("expected an error: {items:?}")
        };
        assert!(e.to_string().contains("max_response_size_mb"), "{e}");
    }
    use futures::TryStreamExt;
    use http::header::HeaderValue;

    fn upstream() -> Upstream {
        Upstream::new("openai")
    }

    fn bytes(parts: &[&'static str]) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    async fn collect(s: SseStream) -> Vec<Result<SseEvent, GatewayError>> {
        s.collect().await
    }

    fn upstream_err(e: &GatewayError) -> (u16, UpstreamErrorKind, String, Option<Duration>) {
        match e {
            GatewayError::Upstream {
                status,
                kind,
                message,
                retry_after,
                ..
            } => (*status, *kind, message.clone(), *retry_after),
            other => panic!("not an upstream error: {other:?}"),
        }
    }

    #[test]
    fn openai_error_body_maps_message_and_kind() {
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        let e = upstream().error_from_response(400, &HeaderMap::new(), body);
        let (status, kind, message, _) = upstream_err(&e);
        assert_eq!(status, 400);
        assert_eq!(kind, UpstreamErrorKind::ContextWindowExceeded);
        assert!(message.starts_with("This model's maximum context length"));
    }

    #[test]
    fn anthropic_error_bodies_map() {
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        let e = upstream().error_from_response(400, &HeaderMap::new(), body);
        assert_eq!(upstream_err(&e).1, UpstreamErrorKind::ContextWindowExceeded);
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = upstream().error_from_response(529, &HeaderMap::new(), body);
        let (_, kind, message, _) = upstream_err(&e);
        assert_eq!(kind, UpstreamErrorKind::ServiceUnavailable);
        assert_eq!(message, "Overloaded");
        assert!(e.is_retryable());
    }

    #[test]
    fn content_policy_and_plain_bad_request() {
        let body = br#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","code":"content_filter"}}"#;
        let e = upstream().error_from_response(400, &HeaderMap::new(), body);
        assert_eq!(
            upstream_err(&e).1,
            UpstreamErrorKind::ContentPolicyViolation
        );
        let body = br#"{"error":{"message":"Invalid value for 'temperature'","code":null}}"#;
        let e = upstream().error_from_response(400, &HeaderMap::new(), body);
        assert_eq!(upstream_err(&e).1, UpstreamErrorKind::BadRequest);
        // Hints only refine 400s: a 429 mentioning tokens stays a rate limit.
        let body = br#"{"error":{"message":"too many tokens per minute"}}"#;
        let e = upstream().error_from_response(429, &HeaderMap::new(), body);
        assert_eq!(upstream_err(&e).1, UpstreamErrorKind::RateLimit);
    }

    #[test]
    fn raw_bodies_are_truncated_and_other_shapes_read() {
        let long = "x".repeat(2000);
        let e = upstream().error_from_response(502, &HeaderMap::new(), long.as_bytes());
        let (_, kind, message, _) = upstream_err(&e);
        assert_eq!(kind, UpstreamErrorKind::InternalServer);
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS + 1);
        let e =
            upstream().error_from_response(404, &HeaderMap::new(), br#"{"detail":"Not Found"}"#);
        assert_eq!(upstream_err(&e).2, "Not Found");
        let e = upstream().error_from_response(
            400,
            &HeaderMap::new(),
            br#"{"error":"model 'x' not found"}"#,
        );
        assert_eq!(upstream_err(&e).2, "model 'x' not found");
        let e = upstream().error_from_response(503, &HeaderMap::new(), b"");
        assert_eq!(upstream_err(&e).2, "Service Unavailable");
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        let e = upstream().error_from_response(429, &h, b"{}");
        assert_eq!(upstream_err(&e).3, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994"), None);
    }

    #[tokio::test]
    async fn sse_done_ends_cleanly() {
        let s = upstream().sse_from_bytes(
            bytes(&[
                "data: {\"a\":1}\n\n",
                "data: {\"b\"",
                ":2}\n\ndata: [DONE]\n\n",
            ]),
            StreamEnd::Done,
            TEST_LIMITS,
        );
        let items: Vec<SseEvent> = s.try_collect().await.unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].data, "{\"b\":2}");
    }

    #[tokio::test]
    async fn sse_cut_stream_is_an_error() {
        let items = collect(upstream().sse_from_bytes(
            bytes(&["data: {\"a\":1}\n\n"]),
            StreamEnd::Done,
            TEST_LIMITS,
        ))
        .await;
        assert_eq!(items.len(), 2);
        match &items[1] {
            Err(GatewayError::Connection { message, .. }) => {
                assert_eq!(message, "stream ended before completion")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn sse_mid_stream_error_payload() {
        let items = collect(upstream().sse_from_bytes(
            bytes(&[
                "data: {\"a\":1}\n\n",
                "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
                "data: {\"a\":2}\n\n",
            ]),
            StreamEnd::Done,
            TEST_LIMITS,
        ))
        .await;
        assert_eq!(items.len(), 2);
        let (status, kind, message, _) = upstream_err(items[1].as_ref().unwrap_err());
        assert_eq!((status, kind), (500, UpstreamErrorKind::InternalServer));
        assert_eq!(message, "overloaded");
    }

    #[tokio::test]
    async fn sse_message_stop_ends_anthropic_streams() {
        let s = upstream().sse_from_bytes(
            bytes(&[
                "event: ping\ndata: {\"type\":\"ping\"}\n\n",
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            ]),
            StreamEnd::MessageStop,
            TEST_LIMITS,
        );
        let items: Vec<SseEvent> = s.try_collect().await.unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].event, "message_stop");
        // Without message_stop the stream is cut.
        let items = collect(upstream().sse_from_bytes(
            bytes(&["event: ping\ndata: {\"type\":\"ping\"}\n\n"]),
            StreamEnd::MessageStop,
            TEST_LIMITS,
        ))
        .await;
        assert!(matches!(items[1], Err(GatewayError::Connection { .. })));
    }

    #[tokio::test]
    async fn translate_stops_after_first_error() {
        let events = upstream().sse_from_bytes(
            bytes(&["data: 1\n\ndata: x\n\ndata: 3\n\ndata: [DONE]\n\n"]),
            StreamEnd::Done,
            TEST_LIMITS,
        );
        let items: Vec<Result<u32, GatewayError>> = translate_events(events, (), |_, ev| {
            ev.data
                .parse::<u32>()
                .map(Some)
                .map_err(|_| GatewayError::Internal("nan".into()))
        })
        .collect()
        .await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), &1);
        assert!(items[1].is_err());
    }

    #[tokio::test]
    async fn connection_refused_is_a_connection_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let http = test_support::client();
        let url: Uri = format!("http://{addr}/v1/chat/completions?key=secret")
            .parse()
            .unwrap();
        let e = upstream()
            .send(
                &http,
                &url,
                (&HeaderMap::new(), None),
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap_err();
        match e {
            GatewayError::Connection { message, .. } => assert!(!message.contains("secret")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn endpoints_must_be_http_urls_with_a_host_and_a_port_that_reads() {
        let d = test_support::deployment(test_support::params("openai/x"));
        for ok in [
            "http://127.0.0.1:8000/v1/chat/completions",
            "https://api.openai.com/v1/chat/completions",
            "http://[::1]:8000/v1/embeddings",
            "https://example.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ] {
            let uri = parse_endpoint(&d, ok).unwrap();
            assert_eq!(uri.to_string(), ok);
        }
        for bad in [
            "ftp://host/v1",
            "localhost:11434/v1/chat/completions",
            "http:///v1",
            "http://bad_host:99999/v1",
            "http://host:port/v1",
            "not a url",
        ] {
            let e = parse_endpoint(&d, bad).unwrap_err();
            assert!(e.to_string().contains("invalid URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn merge_keeps_request_values_and_skips_litellm_keys() {
        let mut body = Map::new();
        body.insert("temperature".into(), json!(0.1));
        let mut defaults = Map::new();
        defaults.insert("temperature".into(), json!(0.9));
        defaults.insert("top_k".into(), json!(5));
        defaults.insert("drop_params".into(), json!(true));
        merge_defaults(&mut body, &defaults);
        assert_eq!(body["temperature"], json!(0.1));
        assert_eq!(body["top_k"], json!(5));
        assert!(!body.contains_key("drop_params"));
    }

    #[test]
    fn completion_shapes() {
        let req: CompletionRequest = serde_json::from_value(
            json!({"model":"m","prompt":"Say hi","max_tokens":5,"temperature":0.5}),
        )
        .unwrap();
        let chat = completion_as_chat(&req).unwrap();
        assert_eq!(chat.messages.len(), 1);
        assert_eq!(chat.max_tokens, Some(5));
        assert_eq!(chat.temperature, Some(0.5));
        let chunk: ChatCompletionChunk = serde_json::from_value(json!({
            "id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]
        }))
        .unwrap();
        assert_eq!(text_completion_from_chunk(&chunk), None);
        let chunk: ChatCompletionChunk = serde_json::from_value(json!({
            "id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]
        }))
        .unwrap();
        let v = text_completion_from_chunk(&chunk).unwrap();
        assert_eq!(v["id"], "cmpl-1");
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], "Hi");
    }

    /// Property tests of the SSE reader: how the bytes are cut into chunks never changes the
    /// events, and no byte sequence makes it panic.
    mod sse_props {
        use proptest::prelude::*;

        use super::*;

        const VALID: &str = "data: {\"id\":\"1\",\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n\
: a comment\r\n\r\n\
event: message\ndata: {\"id\":\"2\",\"choices\":[{\"delta\":{\"content\":\"llo é世\"}}]}\n\n\
data: {\"id\":\"3\",\r\ndata: \"usage\":{\"total_tokens\":3}}\r\n\r\n\
data: [DONE]\n\n";

        fn run(chunks: Vec<Vec<u8>>, end: StreamEnd) -> Vec<Result<SseEvent, String>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime");
            rt.block_on(async move {
                let s = stream::iter(
                    chunks
                        .into_iter()
                        .map(|c| Ok::<_, std::io::Error>(Bytes::from(c)))
                        .collect::<Vec<_>>(),
                )
                .boxed();
                upstream()
                    .sse_from_bytes(s, end, TEST_LIMITS)
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect()
                    .await
            })
        }

        /// Cuts `bytes` at the given positions (any byte offset, also inside UTF-8 sequences).
        fn split(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<Vec<u8>> {
            cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
            cuts.sort_unstable();
            cuts.dedup();
            let mut out = Vec::new();
            let mut start = 0;
            for c in cuts {
                out.push(bytes[start..c].to_vec());
                start = c;
            }
            out.push(bytes[start..].to_vec());
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn chunking_never_changes_the_events(cuts in proptest::collection::vec(0usize..400, 0..40)) {
                let whole = run(vec![VALID.as_bytes().to_vec()], StreamEnd::Done);
                prop_assert_eq!(whole.len(), 3);
                prop_assert!(whole.iter().all(Result::is_ok));
                let chunked = run(split(VALID.as_bytes(), cuts), StreamEnd::Done);
                prop_assert_eq!(chunked, whole);
            }

            #[test]
            fn arbitrary_bytes_never_panic(
                chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
                anthropic in any::<bool>(),
            ) {
                let end = if anthropic { StreamEnd::MessageStop } else { StreamEnd::Done };
                let items = run(chunks, end);
                // At most one error, and it is the last item.
                let errors = items.iter().filter(|i| i.is_err()).count();
                prop_assert!(errors <= 1);
                if errors == 1 {
                    prop_assert!(items.last().is_some_and(Result::is_err));
                }
            }

            #[test]
            fn sse_like_noise_never_panics(
                lines in proptest::collection::vec(
                    prop_oneof![
                        Just("data: [DONE]".to_string()),
                        Just("event: error".to_string()),
                        Just("event: message_stop".to_string()),
                        Just(String::new()),
                        "data: \\{[a-z\"{}:,\\[\\] ]{0,30}",
                        "[a-z: ]{0,20}",
                    ],
                    0..30,
                ),
                crlf in any::<bool>(),
            ) {
                let sep = if crlf { "\r\n" } else { "\n" };
                let text = lines.join(sep);
                let _ = run(vec![text.into_bytes()], StreamEnd::Done);
            }
        }
    }
}
