//! OpenAI's Responses API as upstream operations, for `POST /v1/responses` (the handlers are
//! in [`crate::http::responses`]; what is stored between turns in [`store`]).
//!
//! Each is an [`Operation`] the dispatcher runs like chat's, so routing, retries, fallbacks,
//! cooldowns and circuit breakers apply unchanged. Per attempt, the deployment decides the
//! path:
//!
//! - an OpenAI deployment ([`InferenceProvider::as_openai_responses`]) gets the client's
//!   request passed through to its `/v1/responses`, `model` set to the deployment's upstream
//!   model ([`OpenAiProvider::responses_raw`]); its answer (JSON or the event stream) is
//!   relayed as sent. A `previous_response_id` the gateway stored goes on unchanged when that
//!   deployment answered it (its upstream holds it too), else the stored conversation is sent
//!   inline instead ([`inline_history`]);
//! - any other deployment gets the request translated to an OpenAI chat call ([`to_chat()`],
//!   with the stored conversation as history; made once per request), and its answer
//!   translated back ([`from_chat()`], [`StreamTranslator`] for streams). What the
//!   translation drops or changes is logged at debug level.
//!
//! A stream that fails after its first event ends with an `error` event and
//! `response.failed` (the output so far), then the connection closes; one that fails before
//! is retried or falls back like any call. A stored answer is written before its final event
//! goes out, so the client that reads `response.completed` can continue from it at once.
//!
//! [`InferenceProvider::as_openai_responses`]: crate::upstream::providers::InferenceProvider::as_openai_responses
//! [`OpenAiProvider::responses_raw`]: crate::upstream::providers::OpenAiProvider::responses_raw

pub mod store;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use routeiq::responses::from_chat::parse_chat_response;
use routeiq::responses::{
    Response, ResponseAccumulator, ResponseContext, ResponseError, ResponseStatus,
    ResponseStreamEvent as Event, ResponsesRequest, StreamTranslator, ToChat, TranslateError,
    TranslationNote, encode_sse, from_chat, inline_history, to_chat,
};
use serde_json::{Map, Value};

use crate::error::{GatewayError, UpstreamErrorKind};
use crate::upstream::dispatch::{Operation, StreamStart, open_stream, with_timeout};
use crate::upstream::providers::{
    Answer, CallContext, ChunkStream, Provider, ResponsesEvent, ResponsesEventStream,
};
use crate::upstream::stream::StreamChunk;
use store::{Previous, Storer};

/// A Responses request as the dispatcher's attempts share it: the request, what the client
/// sent beside it, the stored turn it continues, and the forms it takes (made at the first
/// attempt that needs each).
pub struct ResponsesCall<'r> {
    req: &'r ResponsesRequest,
    /// The body as the client sent it.
    body: &'r [u8],
    extra_headers: Option<&'r HeaderMap>,
    /// The stored turn `previous_response_id` names.
    previous: Option<&'r Previous>,
    /// Where a streamed answer is stored (`None`: `store: false`).
    storer: Option<Arc<Storer>>,
    /// The id, time and echoed settings of a translated answer.
    context: ResponseContext,
    /// The request as sent, for OpenAI deployments.
    raw: OnceLock<Result<Map<String, Value>, String>>,
    /// The request with the stored conversation inline, for OpenAI deployments that do not
    /// hold `previous_response_id`.
    inlined: OnceLock<Result<Map<String, Value>, String>>,
    /// The request as an OpenAI chat request, for the others.
    translated: OnceLock<Result<ToChat, TranslateError>>,
}

impl<'r> ResponsesCall<'r> {
    /// `body` is the request as sent, `req` as read from it; `context` the translated
    /// answer's ([`ResponseContext::from_request`] with a new id).
    pub fn new(
        req: &'r ResponsesRequest,
        body: &'r [u8],
        extra_headers: Option<&'r HeaderMap>,
        previous: Option<&'r Previous>,
        storer: Option<Arc<Storer>>,
        context: ResponseContext,
    ) -> Self {
        ResponsesCall {
            req,
            body,
            extra_headers,
            previous,
            storer,
            context,
            raw: OnceLock::new(),
            inlined: OnceLock::new(),
            translated: OnceLock::new(),
        }
    }

    /// The request as sent, for a pass-through: the client's JSON (numbers as written, nothing
    /// normalized) with `extra_body` merged and `extra_headers` taken out, as it was read.
    fn raw(&self) -> Result<&Map<String, Value>, GatewayError> {
        self.raw
            .get_or_init(|| {
                let map: Map<String, Value> =
                    serde_json::from_slice(self.body).map_err(|e| e.to_string())?;
                let mut map =
                    crate::http::client_params::merge_extra_body(map).map_err(|e| e.to_string())?;
                map.remove(crate::http::client_params::EXTRA_HEADERS);
                Ok(map)
            })
            .as_ref()
            .map_err(|e| GatewayError::Internal(format!("reading the request again: {e}")))
    }

    /// What an OpenAI deployment gets: the request as sent, or (continuing a conversation
    /// its upstream does not hold) with the stored conversation inline.
    fn passthrough_body(&self, deployment: &str) -> Result<&Map<String, Value>, GatewayError> {
        let Some(previous) = self.previous else {
            return self.raw();
        };
        if previous.origin.as_deref() == Some(deployment) {
            return self.raw();
        }
        let items = previous.items()?;
        self.inlined
            .get_or_init(
                || match serde_json::to_value(inline_history(self.req, items)) {
                    Ok(Value::Object(map)) => Ok(map),
                    Ok(_) => Err("not a JSON object".into()),
                    Err(e) => Err(e.to_string()),
                },
            )
            .as_ref()
            .map_err(|e| GatewayError::Internal(format!("inlining the conversation: {e}")))
    }

    /// The OpenAI chat request (a request that cannot be translated is a 400 naming the
    /// field).
    fn translated(&self) -> Result<&ToChat, GatewayError> {
        let history: &[routeiq::responses::Item] = match self.previous {
            Some(p) => p.items()?,
            None => &[],
        };
        self.translated
            .get_or_init(|| {
                let t = to_chat(self.req, history);
                if let Ok(t) = &t {
                    log_notes("request", &t.notes);
                }
                t
            })
            .as_ref()
            .map_err(|e| GatewayError::invalid_param(e.to_string(), e.path.clone()))
    }
}

/// Logs what a translation dropped or changed (`side`: `request` or `answer`).
fn log_notes(side: &'static str, notes: &[TranslationNote]) {
    for note in notes {
        tracing::debug!(
            side,
            path = %note.path,
            note = %note.message,
            "responses translation note"
        );
    }
}

/// A non-streamed answer: the body for the client (with its usage), the `Response` when the
/// gateway built it, and the deployment whose upstream holds it (pass-through).
pub struct ResponsesAnswer {
    pub answer: Answer,
    /// The translated `Response` (`None`: passed through; read it from the body).
    pub response: Option<Response>,
    /// The OpenAI deployment that answered (pass-through).
    pub origin: Option<String>,
}

/// Non-streaming Responses call.
pub struct ResponsesOp<'r>(pub &'r ResponsesCall<'r>);
/// Streaming Responses call: the answer is the Responses event stream.
pub struct ResponsesStreamOp<'r>(pub &'r ResponsesCall<'r>);

impl ResponsesOp<'_> {
    async fn answer(
        &self,
        provider: &Provider,
        ctx: &CallContext<'_>,
    ) -> Result<ResponsesAnswer, GatewayError> {
        let call = self.0;
        if let Some(openai) = provider.as_openai_responses() {
            let body = call.passthrough_body(&ctx.deployment.id)?;
            let answer = openai.responses_raw(ctx, body).await?;
            return Ok(ResponsesAnswer {
                answer,
                response: None,
                origin: Some(ctx.deployment.id.clone()),
            });
        }
        let t = call.translated()?;
        let answer = provider.chat(ctx, &t.request).await?;
        let (resp, details) =
            parse_chat_response(&answer.body).map_err(|e| GatewayError::BadUpstreamResponse {
                provider: ctx.deployment.provider.name().to_string(),
                message: format!("the chat answer cannot be read for translation: {e}"),
            })?;
        let response = from_chat(&resp, &details, &call.context);
        Ok(ResponsesAnswer {
            answer: Answer::json(&response, answer.usage.or(resp.usage))?,
            response: Some(response),
            origin: None,
        })
    }
}

impl Operation for ResponsesOp<'_> {
    type Output = ResponsesAnswer;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<ResponsesAnswer, GatewayError> {
        with_timeout(ctx.deployment, timeout, self.answer(provider, ctx)).await
    }

    fn total_tokens(output: &ResponsesAnswer) -> u64 {
        output.answer.usage.map_or(0, |u| u.total_tokens)
    }

    fn extra_headers(&self) -> Option<&HeaderMap> {
        self.0.extra_headers
    }
}

impl ResponsesStreamOp<'_> {
    async fn open(
        &self,
        provider: &Provider,
        ctx: &CallContext<'_>,
        idle: Duration,
    ) -> Result<ResponsesStream, GatewayError> {
        let call = self.0;
        let provider_name = ctx.deployment.provider.name().to_string();
        if let Some(openai) = provider.as_openai_responses() {
            let body = call.passthrough_body(&ctx.deployment.id)?;
            let events = openai.responses_raw_stream(ctx, body).await?;
            return Ok(relay_stream(Relaying {
                events,
                acc: ResponseAccumulator::new(),
                last_sequence: None,
                storer: call.storer.clone(),
                origin: ctx.deployment.id.clone(),
                idle,
                provider: provider_name,
                emitted: false,
                pending_error: None,
                done: false,
            }));
        }
        let t = call.translated()?;
        let chunks = provider.chat_stream(ctx, &t.request).await?;
        Ok(translate_stream(Translating {
            chunks,
            translator: StreamTranslator::new(call.context.clone()),
            storer: call.storer.clone(),
            idle,
            provider: provider_name,
            emitted: false,
            pending_error: None,
            done: false,
        }))
    }
}

impl Operation for ResponsesStreamOp<'_> {
    type Output = StreamStart<ResponsesChunk>;

    fn is_stream(&self) -> bool {
        true
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        open_stream(ctx.deployment, timeout, self.open(provider, ctx, timeout)).await
    }

    fn total_tokens(_: &Self::Output) -> u64 {
        0
    }

    fn extra_headers(&self) -> Option<&HeaderMap> {
        self.0.extra_headers
    }
}

/// One or more Responses stream events, encoded, and what they say about usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesChunk {
    /// The events as SSE (`event: <type>\ndata: <json>\n\n` each).
    pub frame: Bytes,
    /// `(input tokens, output tokens)`, on the chunk that ends the response.
    pub usage: Option<(u64, u64)>,
    /// Characters of generated text, refusal, reasoning summary and tool arguments.
    pub text_chars: usize,
}

impl StreamChunk for ResponsesChunk {
    fn usage_total(&self) -> Option<u64> {
        self.usage.map(|(i, o)| i.saturating_add(o))
    }

    fn usage_split(&self) -> Option<(u64, u64)> {
        self.usage
    }

    fn text_chars(&self) -> usize {
        self.text_chars
    }

    fn encode(&self) -> Bytes {
        self.frame.clone()
    }

    /// Responses streams end with their terminal event (`response.completed`...), which is an
    /// event like the others: no `[DONE]`.
    fn end_frame() -> Option<Bytes> {
        None
    }

    /// Nothing: the streams here end a failure themselves, with `error` and `response.failed`
    /// (which need the stream's state), before they report it.
    fn error_frame(_: &GatewayError) -> Bytes {
        Bytes::new()
    }
}

/// A stream of [`ResponsesChunk`]s.
pub type ResponsesStream = BoxStream<'static, Result<ResponsesChunk, GatewayError>>;

/// How long a stream's body may wait for its next chunk beyond the deployment's
/// `stream_timeout`: the streams here enforce that timeout themselves (to end with
/// `response.failed`), and storing the answer takes up to [`store::STORE_TIMEOUT`].
pub const STREAM_IDLE_MARGIN: Duration = Duration::from_secs(6);

/// The `error` code of a failure: OpenAI's `rate_limit_exceeded` or `server_error`.
fn failure_code(e: &GatewayError) -> &'static str {
    if e.is_rate_limited() || e.status_code().as_u16() == 429 {
        "rate_limit_exceeded"
    } else {
        "server_error"
    }
}

/// Characters of generated content in an event.
fn event_chars(event: &Event) -> usize {
    match event {
        Event::OutputTextDelta { delta, .. }
        | Event::RefusalDelta { delta, .. }
        | Event::FunctionCallArgumentsDelta { delta, .. }
        | Event::CustomToolCallInputDelta { delta, .. }
        | Event::ReasoningSummaryTextDelta { delta, .. } => delta.len(),
        _ => 0,
    }
}

/// The `(input, output)` tokens of a Response.
fn response_usage(response: &Response) -> Option<(u64, u64)> {
    response
        .usage
        .as_ref()
        .map(|u| (u.input_tokens, u.output_tokens))
}

/// Encoded events as one chunk (`None` when there are none).
fn chunk_of(
    events: &[Event],
    usage: Option<(u64, u64)>,
) -> Result<Option<ResponsesChunk>, GatewayError> {
    if events.is_empty() {
        return Ok(None);
    }
    let mut frame = String::new();
    let mut text_chars = 0;
    for ev in events {
        frame.push_str(
            &encode_sse(ev)
                .map_err(|e| GatewayError::Internal(format!("encoding a stream event: {e}")))?,
        );
        text_chars += event_chars(ev);
    }
    Ok(Some(ResponsesChunk {
        frame: Bytes::from(frame),
        usage,
        text_chars,
    }))
}

/// A chat stream being translated.
struct Translating {
    chunks: ChunkStream,
    translator: StreamTranslator,
    storer: Option<Arc<Storer>>,
    /// The deployment's `stream_timeout`: the longest wait for the next chunk.
    idle: Duration,
    provider: String,
    /// Whether a chunk went out (a failure before that is the call's: retried, or an HTTP
    /// error).
    emitted: bool,
    /// The failure to report after its `response.failed` went out.
    pending_error: Option<GatewayError>,
    done: bool,
}

impl Translating {
    /// The item for a failure: the error itself before anything went out, else the events
    /// that end the stream (the error follows as the next item).
    fn failed(mut self, e: GatewayError) -> Option<(Result<ResponsesChunk, GatewayError>, Self)> {
        self.done = true;
        if !self.emitted {
            return Some((Err(e), self));
        }
        let events = self.translator.fail(failure_code(&e), &e.to_string());
        log_notes("answer", self.translator.notes());
        let usage = self
            .translator
            .usage()
            .map(|u| (u.input_tokens, u.output_tokens));
        match chunk_of(&events, usage) {
            Ok(Some(chunk)) => {
                self.pending_error = Some(e);
                Some((Ok(chunk), self))
            }
            Ok(None) => Some((Err(e), self)),
            Err(encode) => Some((Err(encode), self)),
        }
    }
}

/// A chat chunk stream as Responses events: one chunk per upstream chunk that produces any,
/// the final one (with the usage) after the answer is stored. Failures: see
/// [`Translating::failed`]; the deployment's `stream_timeout` bounds each wait.
fn translate_stream(state: Translating) -> ResponsesStream {
    futures::stream::unfold(state, |mut st| async move {
        if let Some(e) = st.pending_error.take() {
            return Some((Err(e), st));
        }
        if st.done {
            return None;
        }
        let deadline = tokio::time::Instant::now() + st.idle;
        loop {
            let events = match tokio::time::timeout_at(deadline, st.chunks.next()).await {
                Ok(Some(Ok(chunk))) => st.translator.push(&chunk),
                Ok(None) => st.translator.finish(),
                Ok(Some(Err(e))) => return st.failed(e),
                Err(_) => {
                    let e = GatewayError::Timeout {
                        provider: st.provider.clone(),
                        after: st.idle,
                    };
                    return st.failed(e);
                }
            };
            let mut usage = None;
            if st.translator.is_done() {
                st.done = true;
                log_notes("answer", st.translator.notes());
                if let Some(response) = st.translator.response() {
                    usage = response_usage(response);
                    if let Some(storer) = &st.storer
                        && response.status != ResponseStatus::Failed
                    {
                        storer.save(response, None, None).await;
                    }
                }
            }
            match chunk_of(&events, usage) {
                Ok(Some(chunk)) => {
                    st.emitted = true;
                    return Some((Ok(chunk), st));
                }
                Ok(None) if st.done => return None,
                Ok(None) => continue,
                Err(e) => return st.failed(e),
            }
        }
    })
    .boxed()
}

/// A passed-through Responses stream being relayed.
struct Relaying {
    events: ResponsesEventStream,
    /// The Response rebuilt from the events (for `response.failed` when the stream breaks).
    acc: ResponseAccumulator,
    last_sequence: Option<u64>,
    storer: Option<Arc<Storer>>,
    /// The deployment relayed (its upstream holds the response).
    origin: String,
    idle: Duration,
    provider: String,
    emitted: bool,
    pending_error: Option<GatewayError>,
    done: bool,
}

impl Relaying {
    /// One event as sent, its usage and text counted; a completed answer stored first; an
    /// upstream `response.failed` reported as a failure after it.
    async fn relay(&mut self, ev: ResponsesEvent) -> ResponsesChunk {
        // A proxy may have dropped the `event:` lines: the payload's `type` names the event.
        let parsed: Option<Event> = serde_json::from_str(&ev.data).ok();
        let name = match &parsed {
            Some(p) if ev.event == "message" => p.event_type().to_string(),
            _ => ev.event,
        };
        let mut chunk = ResponsesChunk {
            frame: Bytes::new(),
            usage: None,
            text_chars: 0,
        };
        if let Some(p) = &parsed {
            if let Some(n) = p.sequence_number() {
                self.last_sequence = Some(n);
            }
            // The accumulator is for the failure path only: an event it does not take (an
            // upstream newer than this gateway) is relayed all the same.
            if let Err(e) = self.acc.push(p) {
                tracing::debug!(event = %name, error = %e, "relayed Responses event not accumulated");
            }
            chunk.text_chars = event_chars(p);
            match p {
                Event::Completed { response, .. } | Event::Incomplete { response, .. } => {
                    chunk.usage = response_usage(response);
                    if let Some(storer) = &self.storer {
                        // Kept as the upstream sent it.
                        let raw = serde_json::from_str::<Value>(&ev.data)
                            .ok()
                            .and_then(|mut v| v.get_mut("response").map(Value::take));
                        storer
                            .save(response, raw.as_ref(), Some(self.origin.as_str()))
                            .await;
                    }
                }
                Event::Failed { response, .. } => {
                    chunk.usage = response_usage(response);
                    let (code, message) = response
                        .error
                        .as_ref()
                        .map_or(("server_error", "the response failed"), |e| {
                            (e.code.as_str(), e.message.as_str())
                        });
                    let kind = if code == "rate_limit_exceeded" {
                        UpstreamErrorKind::RateLimit
                    } else {
                        UpstreamErrorKind::InternalServer
                    };
                    self.pending_error = Some(GatewayError::Upstream {
                        provider: self.provider.clone(),
                        status: if kind == UpstreamErrorKind::RateLimit {
                            429
                        } else {
                            500
                        },
                        kind,
                        message: format!("{code}: {message}"),
                        retry_after: None,
                    });
                }
                _ => {}
            }
        }
        let mut frame = Vec::with_capacity(name.len() + ev.data.len() + 16);
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(name.as_bytes());
        frame.push(b'\n');
        for line in ev.data.split('\n') {
            frame.extend_from_slice(b"data: ");
            frame.extend_from_slice(line.as_bytes());
            frame.push(b'\n');
        }
        frame.push(b'\n');
        chunk.frame = Bytes::from(frame);
        chunk
    }

    /// The item for a failure: the error itself before anything went out, else `error` and
    /// `response.failed` (the Response as the events built it), then the error.
    fn failed(mut self, e: GatewayError) -> Option<(Result<ResponsesChunk, GatewayError>, Self)> {
        self.done = true;
        if !self.emitted {
            return Some((Err(e), self));
        }
        let code = failure_code(&e);
        let message = e.to_string();
        let sequence = self.last_sequence.map_or(0, |n| n.saturating_add(1));
        let mut events = vec![Event::Error {
            code: Some(code.to_string()),
            message: message.clone(),
            param: None,
            sequence_number: sequence,
        }];
        if let Some(mut response) = self.acc.clone().into_response() {
            response.status = ResponseStatus::Failed;
            response.error = Some(ResponseError {
                code: code.to_string(),
                message,
                extra: Map::new(),
            });
            events.push(Event::Failed {
                response: Box::new(response),
                sequence_number: sequence.saturating_add(1),
            });
        }
        match chunk_of(&events, None) {
            Ok(Some(chunk)) => {
                self.pending_error = Some(e);
                Some((Ok(chunk), self))
            }
            Ok(None) => Some((Err(e), self)),
            Err(encode) => Some((Err(encode), self)),
        }
    }
}

/// A passed-through Responses stream as chunks, one per event, each wait bounded by the
/// deployment's `stream_timeout`.
fn relay_stream(state: Relaying) -> ResponsesStream {
    futures::stream::unfold(state, |mut st| async move {
        if let Some(e) = st.pending_error.take() {
            st.done = true;
            return Some((Err(e), st));
        }
        if st.done {
            return None;
        }
        match tokio::time::timeout(st.idle, st.events.next()).await {
            Ok(Some(Ok(ev))) => {
                let chunk = st.relay(ev).await;
                st.emitted = true;
                Some((Ok(chunk), st))
            }
            Ok(None) => None,
            Ok(Some(Err(e))) => st.failed(e),
            Err(_) => {
                let e = GatewayError::Timeout {
                    provider: st.provider.clone(),
                    after: st.idle,
                };
                st.failed(e)
            }
        }
    })
    .boxed()
}
