//! Anthropic's Messages API as upstream operations, for `POST /v1/messages` and
//! `POST /v1/messages/count_tokens` (the handlers are in [`crate::http::messages`]).
//!
//! Each is an [`Operation`] the dispatcher runs like chat's, so routing, retries, fallbacks,
//! cooldowns and circuit breakers apply unchanged. Per attempt, the deployment decides the
//! path:
//!
//! - an Anthropic deployment ([`InferenceProvider::as_anthropic`]) gets the client's request
//!   passed through, `model` set to the deployment's upstream model
//!   ([`AnthropicProvider::messages_raw`]), and its answer (JSON or the event stream) is
//!   relayed as sent;
//! - any other deployment gets the request translated to an OpenAI chat call
//!   ([`routeiq::anthropic::to_openai()`], made once per request), and its answer translated
//!   back ([`routeiq::anthropic::from_openai()`], [`StreamTranslator`] for streams). What the
//!   translation drops or changes is logged at debug level.
//!
//! [`AnthropicProvider::messages_raw`]: crate::upstream::providers::AnthropicProvider::messages_raw
//! [`InferenceProvider::as_anthropic`]: crate::upstream::providers::InferenceProvider::as_anthropic

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderValue};
use routeiq::anthropic::to_openai::estimate_input_tokens;
use routeiq::anthropic::{
    BlockDelta, CountTokensRequest, CountTokensResponse, DeltaUsage, MessageUsage, MessagesRequest,
    StreamEvent, StreamTranslator, ToOpenAi, TranslateError, TranslationContext, TranslationNote,
    encode_sse, error_event, from_openai,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::upstream::dispatch::{Operation, StreamStart, open_stream, with_timeout};
use crate::upstream::providers::{
    Answer, CallContext, ChunkStream, Provider, RawEvent, RawEventStream,
};
use crate::upstream::stream::StreamChunk;

/// A Messages request as the dispatcher's attempts share it: the request, what the client
/// sent beside it, and the two forms it takes (made at the first attempt that needs each).
pub struct MessagesCall<'r> {
    req: &'r MessagesRequest,
    /// The body as the client sent it.
    body: &'r [u8],
    extra_headers: Option<&'r HeaderMap>,
    /// The client's `anthropic-beta` header (sent to Anthropic deployments only).
    beta: Option<&'r HeaderValue>,
    /// The prompt's estimated tokens (`message_start`'s input tokens on translated streams,
    /// whose upstream reports usage only at the end).
    estimated_tokens: u64,
    /// The request as a JSON object, for Anthropic deployments.
    raw: OnceLock<Result<Map<String, Value>, String>>,
    /// The request as an OpenAI chat request, for the others.
    translated: OnceLock<Result<ToOpenAi, TranslateError>>,
}

impl<'r> MessagesCall<'r> {
    /// `body` is the request as sent, `req` as read from it.
    pub fn new(
        req: &'r MessagesRequest,
        body: &'r [u8],
        extra_headers: Option<&'r HeaderMap>,
        beta: Option<&'r HeaderValue>,
        estimated_tokens: u64,
    ) -> Self {
        MessagesCall {
            req,
            body,
            extra_headers,
            beta,
            estimated_tokens,
            raw: OnceLock::new(),
            translated: OnceLock::new(),
        }
    }

    /// The request as sent, for a pass-through: the client's JSON (numbers as written, no
    /// member added or normalized) with `extra_body` merged and `extra_headers` taken out, as
    /// the request was read.
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

    /// The OpenAI chat request (a request that cannot be translated is a 400 naming the
    /// field, for this deployment).
    fn translated(&self) -> Result<&ToOpenAi, GatewayError> {
        self.translated
            .get_or_init(|| {
                let t = routeiq::anthropic::to_openai(self.req);
                if let Ok(t) = &t {
                    log_notes("request", &t.notes);
                }
                t
            })
            .as_ref()
            .map_err(|e| GatewayError::invalid_param(e.to_string(), e.path.clone()))
    }
}

fn as_object<T: serde::Serialize>(value: &T) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Logs what a translation dropped or changed (`side`: `request` or `answer`).
fn log_notes(side: &'static str, notes: &[TranslationNote]) {
    for note in notes {
        tracing::debug!(
            side,
            path = %note.path,
            note = %note.message,
            "anthropic translation note"
        );
    }
}

/// Non-streaming Messages call: the answer is an Anthropic `Message` (JSON).
pub struct MessagesOp<'r>(pub &'r MessagesCall<'r>);
/// Streaming Messages call: the answer is Anthropic's event stream.
pub struct MessagesStreamOp<'r>(pub &'r MessagesCall<'r>);

impl MessagesOp<'_> {
    async fn answer(
        &self,
        provider: &Provider,
        ctx: &CallContext<'_>,
    ) -> Result<Answer, GatewayError> {
        let call = self.0;
        if let Some(anthropic) = provider.as_anthropic() {
            return anthropic.messages_raw(ctx, call.raw()?, call.beta).await;
        }
        let t = call.translated()?;
        let answer = provider.chat(ctx, &t.request).await?;
        translate_answer(ctx, &answer, &t.context)
    }
}

/// An OpenAI `chat.completion` answer as an Anthropic `Message`.
fn translate_answer(
    ctx: &CallContext<'_>,
    answer: &Answer,
    context: &TranslationContext,
) -> Result<Answer, GatewayError> {
    let (resp, extras) =
        routeiq::anthropic::from_openai::parse_response(&answer.body).map_err(|e| {
            GatewayError::BadUpstreamResponse {
                provider: ctx.deployment.provider.name().to_string(),
                message: format!("the chat answer cannot be read for translation: {e}"),
            }
        })?;
    let out = from_openai(&resp, &extras, context);
    log_notes("answer", &out.notes);
    Answer::json(&out.message, answer.usage.or(resp.usage))
}

impl Operation for MessagesOp<'_> {
    type Output = Answer;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Answer, GatewayError> {
        with_timeout(ctx.deployment, timeout, self.answer(provider, ctx)).await
    }

    fn total_tokens(output: &Answer) -> u64 {
        output.usage.map_or(0, |u| u.total_tokens)
    }

    fn extra_headers(&self) -> Option<&HeaderMap> {
        self.0.extra_headers
    }
}

impl MessagesStreamOp<'_> {
    async fn open(
        &self,
        provider: &Provider,
        ctx: &CallContext<'_>,
    ) -> Result<BoxStream<'static, Result<MessagesChunk, GatewayError>>, GatewayError> {
        let call = self.0;
        if let Some(anthropic) = provider.as_anthropic() {
            let events = anthropic
                .messages_raw_stream(ctx, call.raw()?, call.beta)
                .await?;
            return Ok(relay_events(events));
        }
        let t = call.translated()?;
        let chunks = provider.chat_stream(ctx, &t.request).await?;
        let context = TranslationContext {
            input_tokens_hint: Some(call.estimated_tokens),
            ..t.context.clone()
        };
        Ok(translate_chunks(chunks, StreamTranslator::new(context)))
    }
}

impl Operation for MessagesStreamOp<'_> {
    type Output = StreamStart<MessagesChunk>;

    fn is_stream(&self) -> bool {
        true
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Self::Output, GatewayError> {
        open_stream(ctx.deployment, timeout, self.open(provider, ctx)).await
    }

    fn total_tokens(_: &Self::Output) -> u64 {
        0
    }

    fn extra_headers(&self) -> Option<&HeaderMap> {
        self.0.extra_headers
    }
}

/// One or more Anthropic stream events, encoded, and what they say about usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesChunk {
    /// The events as SSE (`event: <type>\ndata: <json>\n\n` each).
    pub frame: Bytes,
    /// `(prompt tokens, completion tokens)` so far, on the chunk that ends the message
    /// (`message_delta`); prompt tokens include cache reads and writes.
    pub usage: Option<(u64, u64)>,
    /// Characters of generated text, thinking and tool input in the chunk.
    pub text_chars: usize,
}

impl StreamChunk for MessagesChunk {
    fn usage_total(&self) -> Option<u64> {
        self.usage.map(|(p, c)| p.saturating_add(c))
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

    /// Anthropic streams end with `message_stop`, which is an event like the others.
    fn end_frame() -> Option<Bytes> {
        None
    }

    /// Anthropic's `event: error` (its type from the error's status).
    fn error_frame(e: &GatewayError) -> Bytes {
        anthropic_error_frame(e)
    }
}

/// The `error` event for a failure after a Messages stream has started.
pub fn anthropic_error_frame(e: &GatewayError) -> Bytes {
    let event = error_event(e.status_code().as_u16(), e.to_string());
    match encode_sse(&event) {
        Ok(s) => Bytes::from(s),
        Err(_) => Bytes::from_static(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"stream failed\"}}\n\n",
        ),
    }
}

/// Appends one SSE event (`data` may hold several lines) to `frame`.
fn push_event(frame: &mut Vec<u8>, name: &str, data: &str) {
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(name.as_bytes());
    frame.push(b'\n');
    for line in data.split('\n') {
        frame.extend_from_slice(b"data: ");
        frame.extend_from_slice(line.as_bytes());
        frame.push(b'\n');
    }
    frame.push(b'\n');
}

/// Token counts seen so far in a passed-through stream (Anthropic reports input and cache
/// counts in `message_start` and cumulative counts in `message_delta`).
#[derive(Debug, Default, Clone, Copy)]
struct RelayUsage {
    input: u64,
    cache_creation: u64,
    cache_read: u64,
    output: u64,
}

impl RelayUsage {
    fn start(&mut self, u: &MessageUsage) {
        self.input = u.input_tokens;
        self.cache_creation = u.cache_creation_input_tokens.unwrap_or(0);
        self.cache_read = u.cache_read_input_tokens.unwrap_or(0);
        self.output = u.output_tokens;
    }

    fn delta(&mut self, u: &DeltaUsage) {
        self.output = u.output_tokens;
        if let Some(n) = u.input_tokens {
            self.input = n;
        }
        if let Some(n) = u.cache_creation_input_tokens {
            self.cache_creation = n;
        }
        if let Some(n) = u.cache_read_input_tokens {
            self.cache_read = n;
        }
    }

    fn split(self) -> (u64, u64) {
        let prompt = self
            .input
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read);
        (prompt, self.output)
    }
}

#[derive(Deserialize)]
struct StartData {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: MessageUsage,
}

#[derive(Deserialize)]
struct DeltaData {
    #[serde(default)]
    usage: Option<DeltaUsage>,
}

#[derive(Deserialize)]
struct BlockDeltaData {
    delta: DeltaText,
}

#[derive(Deserialize)]
struct DeltaText {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

/// One passed-through event as a chunk: relayed as sent, its usage and text counted.
fn relay_event(usage: &mut RelayUsage, ev: RawEvent) -> MessagesChunk {
    // A proxy may have dropped the `event:` lines: the payload's `type` names the event.
    let name = if ev.event == "message" {
        serde_json::from_str::<TypeOnly>(&ev.data)
            .map(|t| t.kind)
            .unwrap_or(ev.event)
    } else {
        ev.event
    };
    let mut chunk = MessagesChunk {
        frame: Bytes::new(),
        usage: None,
        text_chars: 0,
    };
    match name.as_str() {
        "message_start" => {
            if let Ok(d) = serde_json::from_str::<StartData>(&ev.data) {
                usage.start(&d.message.usage);
            }
        }
        "message_delta" => {
            if let Ok(DeltaData { usage: Some(u) }) = serde_json::from_str::<DeltaData>(&ev.data) {
                usage.delta(&u);
                chunk.usage = Some(usage.split());
            }
        }
        "content_block_delta" => {
            if let Ok(d) = serde_json::from_str::<BlockDeltaData>(&ev.data) {
                chunk.text_chars = [d.delta.text, d.delta.partial_json, d.delta.thinking]
                    .iter()
                    .flatten()
                    .map(String::len)
                    .sum();
            }
        }
        _ => {}
    }
    let mut frame = Vec::with_capacity(name.len() + ev.data.len() + 16);
    push_event(&mut frame, &name, &ev.data);
    chunk.frame = Bytes::from(frame);
    chunk
}

/// A passed-through Anthropic stream as chunks.
fn relay_events(events: RawEventStream) -> BoxStream<'static, Result<MessagesChunk, GatewayError>> {
    let mut usage = RelayUsage::default();
    events
        .map(move |item| item.map(|ev| relay_event(&mut usage, ev)))
        .boxed()
}

/// Translated events as one chunk (`None` when there are none).
fn translated_chunk(
    events: &[StreamEvent],
    translator: &StreamTranslator,
) -> Result<Option<MessagesChunk>, GatewayError> {
    if events.is_empty() {
        return Ok(None);
    }
    let mut frame = String::new();
    let mut text_chars = 0;
    let mut ends = false;
    for ev in events {
        frame.push_str(
            &encode_sse(ev)
                .map_err(|e| GatewayError::Internal(format!("encoding a stream event: {e}")))?,
        );
        match ev {
            StreamEvent::ContentBlockDelta { delta, .. } => {
                text_chars += match delta {
                    BlockDelta::TextDelta { text } => text.len(),
                    BlockDelta::InputJsonDelta { partial_json } => partial_json.len(),
                    BlockDelta::ThinkingDelta { thinking } => thinking.len(),
                    _ => 0,
                };
            }
            StreamEvent::MessageDelta { .. } => ends = true,
            _ => {}
        }
    }
    let usage = if ends {
        translator
            .usage()
            .map(|u| (u.total_input_tokens(), u.output_tokens))
    } else {
        None
    };
    Ok(Some(MessagesChunk {
        frame: Bytes::from(frame),
        usage,
        text_chars,
    }))
}

struct Translating {
    chunks: ChunkStream,
    translator: StreamTranslator,
    done: bool,
}

/// An OpenAI chunk stream as Anthropic events: one chunk per upstream chunk that produces
/// any, then (when the upstream ends without the translator having ended the message) the
/// closing events. An upstream failure is the last item.
fn translate_chunks(
    chunks: ChunkStream,
    translator: StreamTranslator,
) -> BoxStream<'static, Result<MessagesChunk, GatewayError>> {
    let state = Translating {
        chunks,
        translator,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let events = match st.chunks.next().await {
                Some(Ok(chunk)) => st.translator.push(&chunk),
                Some(Err(e)) => {
                    st.done = true;
                    log_notes("answer", st.translator.notes());
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    let events = st.translator.finish();
                    log_notes("answer", st.translator.notes());
                    events
                }
            };
            match translated_chunk(&events, &st.translator) {
                Ok(Some(chunk)) => return Some((Ok(chunk), st)),
                Ok(None) => continue,
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

/// `count_tokens` for a request: Anthropic's own count from Anthropic deployments, an
/// estimate ([`estimate_input_tokens`]) from the others.
pub struct CountTokensOp<'r> {
    req: &'r CountTokensRequest,
    extra_headers: Option<&'r HeaderMap>,
    beta: Option<&'r HeaderValue>,
    raw: OnceLock<Result<Map<String, Value>, String>>,
}

impl<'r> CountTokensOp<'r> {
    pub fn new(
        req: &'r CountTokensRequest,
        extra_headers: Option<&'r HeaderMap>,
        beta: Option<&'r HeaderValue>,
    ) -> Self {
        CountTokensOp {
            req,
            extra_headers,
            beta,
            raw: OnceLock::new(),
        }
    }

    /// The estimate answer (for deployments without a count_tokens endpoint).
    pub fn estimate(req: &CountTokensRequest) -> Result<Answer, GatewayError> {
        Answer::json(
            &CountTokensResponse {
                input_tokens: estimate_input_tokens(req),
                extra: Map::new(),
            },
            None,
        )
    }

    async fn answer(
        &self,
        provider: &Provider,
        ctx: &CallContext<'_>,
    ) -> Result<Answer, GatewayError> {
        let Some(anthropic) = provider.as_anthropic() else {
            return Self::estimate(self.req);
        };
        let raw = self
            .raw
            .get_or_init(|| as_object(self.req))
            .as_ref()
            .map_err(|e| GatewayError::Internal(format!("serializing the request: {e}")))?;
        let body = anthropic.count_tokens_raw(ctx, raw, self.beta).await?;
        Ok(Answer { body, usage: None })
    }
}

impl Operation for CountTokensOp<'_> {
    type Output = Answer;

    fn is_stream(&self) -> bool {
        false
    }

    async fn call<'a>(
        &'a self,
        provider: &'a Provider,
        ctx: &'a CallContext<'a>,
        timeout: Duration,
    ) -> Result<Answer, GatewayError> {
        with_timeout(ctx.deployment, timeout, self.answer(provider, ctx)).await
    }

    fn total_tokens(_: &Answer) -> u64 {
        0
    }

    fn extra_headers(&self) -> Option<&HeaderMap> {
        self.extra_headers
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use routeiq::anthropic::MessageAccumulator;
    use routeiq::openai::ChatCompletionChunk;
    use serde_json::json;

    use super::*;

    fn raw(event: &str, data: Value) -> RawEvent {
        RawEvent {
            event: event.into(),
            data: data.to_string(),
        }
    }

    #[test]
    fn relayed_events_keep_their_bytes_and_count_usage() {
        let mut usage = RelayUsage::default();
        let start = relay_event(
            &mut usage,
            raw(
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":10,"output_tokens":1,"cache_creation_input_tokens":5,"cache_read_input_tokens":20}}}),
            ),
        );
        assert!(start.usage.is_none());
        assert!(start.frame.starts_with(b"event: message_start\ndata: {"));
        assert!(start.frame.ends_with(b"}\n\n"));
        let delta = relay_event(
            &mut usage,
            raw(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}),
            ),
        );
        assert_eq!(delta.text_chars, 5);
        // A proxy dropped the event line: the payload's type names it.
        let end = relay_event(
            &mut usage,
            raw(
                "message",
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}),
            ),
        );
        assert_eq!(end.usage, Some((35, 7)));
        assert_eq!(end.usage_total(), Some(42));
        assert!(end.frame.starts_with(b"event: message_delta\n"));
        let multi = relay_event(&mut usage, raw("ping", json!({"type":"ping"})));
        assert_eq!(
            &multi.frame[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        let mut frame = Vec::new();
        push_event(&mut frame, "x", "a\nb");
        assert_eq!(frame, b"event: x\ndata: a\ndata: b\n\n");
    }

    fn chunk(v: Value) -> ChatCompletionChunk {
        serde_json::from_value(v).unwrap()
    }

    /// Parses the SSE bytes of chunks into events.
    fn events_of(chunks: &[MessagesChunk]) -> Vec<StreamEvent> {
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8(c.frame.to_vec()).unwrap())
            .collect();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let data = f.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(data).unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn translated_stream_ends_once_with_usage() {
        let upstream: ChunkStream = stream::iter(vec![
            Ok(chunk(
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}),
            )),
            Ok(chunk(
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi there"}}]}),
            )),
            Ok(chunk(
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
            )),
            Ok(chunk(
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}),
            )),
        ])
        .boxed();
        let ctx = TranslationContext {
            input_tokens_hint: Some(9),
            ..TranslationContext::default()
        };
        let chunks: Vec<MessagesChunk> = translate_chunks(upstream, StreamTranslator::new(ctx))
            .map(|c| c.unwrap())
            .collect()
            .await;
        let usage: Vec<_> = chunks.iter().filter_map(|c| c.usage).collect();
        assert_eq!(usage, vec![(12, 3)]);
        assert_eq!(chunks.iter().map(|c| c.text_chars).sum::<usize>(), 8);
        let events = events_of(&chunks);
        let names: Vec<&str> = events.iter().map(StreamEvent::event_type).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let mut acc = MessageAccumulator::new();
        for ev in &events {
            acc.push(ev).unwrap();
        }
        assert!(acc.is_complete());
        let message = acc.into_message().unwrap();
        assert_eq!(message.usage.input_tokens, 12);
        assert_eq!(
            serde_json::to_value(&message.content).unwrap(),
            json!([{"type":"text","text":"Hi there"}])
        );
    }

    #[tokio::test]
    async fn translated_stream_cut_ends_with_the_error() {
        let upstream: ChunkStream = stream::iter(vec![
            Ok(chunk(
                json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}),
            )),
            Err(GatewayError::Connection {
                provider: "openai".into(),
                message: "stream ended before completion".into(),
            }),
            Ok(chunk(
                json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"never"}}]}),
            )),
        ])
        .boxed();
        let items: Vec<_> = translate_chunks(
            upstream,
            StreamTranslator::new(TranslationContext::default()),
        )
        .collect()
        .await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        let e = items[1].as_ref().unwrap_err();
        let frame = anthropic_error_frame(e);
        let text = String::from_utf8(frame.to_vec()).unwrap();
        assert!(text.starts_with("event: error\ndata: "), "{text}");
        let data: Value =
            serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap())
                .unwrap();
        assert_eq!(data["type"], "error");
        assert_eq!(data["error"]["type"], "api_error");
        assert!(
            data["error"]["message"]
                .as_str()
                .unwrap()
                .contains("stream ended before completion")
        );
        assert_eq!(MessagesChunk::end_frame(), None);
    }

    #[test]
    fn count_tokens_estimate_answers_input_tokens() {
        let req: CountTokensRequest = serde_json::from_value(
            json!({"model":"m","messages":[{"role":"user","content":"12345678"}]}),
        )
        .unwrap();
        let answer = CountTokensOp::estimate(&req).unwrap();
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(v, json!({"input_tokens": 2}));
    }
}
