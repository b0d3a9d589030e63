//! OpenAI chat chunks → Anthropic stream events, the SSE encoder, and an event accumulator.
//!
//! - [`StreamTranslator`]: fed `chat.completion.chunk`s one at a time, answers the events to
//!   send: `message_start` first, one content block per run of reasoning (`thinking`), text or
//!   tool call (`tool_use`, one per tool call index, arguments as `input_json_delta`), then
//!   `message_delta` (stop reason, cumulative usage) and `message_stop` once both the finish
//!   reason and the usage are in (or at [`StreamTranslator::finish`]).
//! - [`encode_sse`], [`error_event`]: the wire form of an event, and the event for a failure
//!   after the stream has started.
//! - [`MessageAccumulator`]: rebuilds the `Message` from events as the Anthropic SDKs do (for
//!   logging a streamed answer, and for tests).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::TranslationNote;
use super::error::{ErrorDetail, error_type_for_status};
use super::from_openai::{
    TranslationContext, UpstreamExtras, fallback_tool_id, message_id, parse_tool_arguments,
    reasoning_text, refusal_text, stop_reason_for_finish, usage_from_openai,
};
use super::types::{
    BlockDelta, ContentBlock, DeltaUsage, Message, MessageDeltaBody, MessageUsage, StopReason,
    StreamEvent, ThinkingBlock, ToolUseBlock,
};
use crate::openai::{ChatCompletionChunk, ToolCall, Usage};

/// The kind of the content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    /// Position in [`StreamTranslator::tools`].
    Tool(usize),
}

#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    index: u32,
    kind: BlockKind,
}

#[derive(Debug, Clone)]
struct StreamTool {
    openai_index: Option<u32>,
    block_index: u32,
    id: String,
    name: String,
    arguments: String,
}

/// Translates one OpenAI chat stream into Anthropic stream events.
///
/// Feed every upstream chunk to [`push`](Self::push) (or [`push_with_extras`](Self::push_with_extras)
/// when the raw JSON was at hand, see [`super::from_openai::parse_chunk`]) and send what it
/// returns; when the upstream stream ends, call [`finish`](Self::finish) and send that too (it
/// is empty when the stream already ended properly). The final `message_delta` waits for the
/// usage chunk OpenAI sends after the finish reason (`stream_options.include_usage`, which
/// [`to_openai`](super::to_openai::to_openai) requests).
#[derive(Debug, Clone)]
pub struct StreamTranslator {
    ctx: TranslationContext,
    id: String,
    model: String,
    started: bool,
    done: bool,
    open: Option<OpenBlock>,
    next_index: u32,
    tools: Vec<StreamTool>,
    finish_reason: Option<String>,
    refused: bool,
    usage: Option<Usage>,
    extras: UpstreamExtras,
    notes: Vec<TranslationNote>,
    noted_other_choices: bool,
    noted_late_arguments: bool,
}

impl StreamTranslator {
    pub fn new(ctx: TranslationContext) -> Self {
        StreamTranslator {
            ctx,
            id: String::new(),
            model: String::new(),
            started: false,
            done: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            finish_reason: None,
            refused: false,
            usage: None,
            extras: UpstreamExtras::default(),
            notes: Vec::new(),
            noted_other_choices: false,
            noted_late_arguments: false,
        }
    }

    /// The events one upstream chunk becomes.
    pub fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<StreamEvent> {
        self.push_with_extras(chunk, &UpstreamExtras::default())
    }

    /// [`push`](Self::push), with the chunk's [`UpstreamExtras`] (cache counts, matched stop).
    pub fn push_with_extras(
        &mut self,
        chunk: &ChatCompletionChunk,
        extras: &UpstreamExtras,
    ) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.extras.update(extras);
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        self.start(Some(chunk), &mut out);
        for choice in &chunk.choices {
            if choice.index != 0 {
                if !self.noted_other_choices {
                    self.noted_other_choices = true;
                    self.notes.push(TranslationNote::new(
                        "choices",
                        "choices other than 0 dropped: Anthropic messages carry one",
                    ));
                }
                continue;
            }
            let delta = &choice.delta;
            if let Some(thinking) = reasoning_text(&delta.extra) {
                let thinking = thinking.to_string();
                self.append(
                    BlockKind::Thinking,
                    BlockDelta::ThinkingDelta { thinking },
                    &mut out,
                );
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                let text = text.to_string();
                self.append(BlockKind::Text, BlockDelta::TextDelta { text }, &mut out);
            }
            if let Some(refusal) = refusal_text(&delta.extra) {
                let text = refusal.to_string();
                self.refused = true;
                self.append(BlockKind::Text, BlockDelta::TextDelta { text }, &mut out);
            }
            for call in delta.tool_calls.iter().flatten() {
                self.tool_delta(call, &mut out);
            }
            if let Some(reason) = choice.finish_reason.as_deref().filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason.to_string());
                self.close(&mut out);
            }
        }
        if self.finish_reason.is_some() && chunk.usage.is_some() {
            self.end(&mut out);
        }
        out
    }

    /// The events that end the stream when the upstream stream has ended: the open block's
    /// stop, `message_delta` (`end_turn`, or `tool_use` after tool calls, when no finish
    /// reason came) and `message_stop`. Empty when the stream already ended.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(None, &mut out);
        if self.finish_reason.is_none() {
            self.notes.push(TranslationNote::new(
                "finish_reason",
                "the upstream stream ended without a finish reason",
            ));
        }
        self.end(&mut out);
        out
    }

    /// Whether `message_stop` has been produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The message id (empty before the first event).
    pub fn message_id(&self) -> &str {
        &self.id
    }

    /// The usage reported so far, as Anthropic's (for logging and spend once the stream ends).
    pub fn usage(&self) -> Option<MessageUsage> {
        self.usage.map(|u| usage_from_openai(&u, &self.extras))
    }

    /// What was dropped or changed so far.
    pub fn notes(&self) -> &[TranslationNote] {
        &self.notes
    }

    fn start(&mut self, chunk: Option<&ChatCompletionChunk>, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = self
            .ctx
            .message_id
            .clone()
            .unwrap_or_else(|| message_id(chunk.map_or("", |c| c.id.as_str())));
        self.model = self
            .ctx
            .model
            .clone()
            .or_else(|| chunk.map(|c| c.model.clone()))
            .unwrap_or_default();
        let usage = match self.usage {
            Some(u) => MessageUsage {
                output_tokens: 0,
                ..usage_from_openai(&u, &self.extras)
            },
            None => MessageUsage {
                input_tokens: self.ctx.input_tokens_hint.unwrap_or(0),
                output_tokens: 0,
                cache_creation_input_tokens: Some(0),
                cache_read_input_tokens: Some(0),
                extra: Map::new(),
            },
        };
        out.push(StreamEvent::MessageStart {
            message: Message::empty(self.id.clone(), self.model.clone(), usage),
        });
    }

    /// Opens a block of `kind` unless one is open, then sends `delta` to it.
    fn append(&mut self, kind: BlockKind, delta: BlockDelta, out: &mut Vec<StreamEvent>) {
        let index = match self.open {
            Some(open) if open.kind == kind => open.index,
            _ => {
                self.close(out);
                let block = match kind {
                    // `signature: ""` as the SDK types require it; OpenAI-compatible
                    // models have none, so no signature_delta follows.
                    BlockKind::Thinking => ContentBlock::Thinking(ThinkingBlock {
                        thinking: String::new(),
                        signature: Some(String::new()),
                        extra: Map::new(),
                    }),
                    BlockKind::Text | BlockKind::Tool(_) => ContentBlock::text(""),
                };
                self.open_block(kind, block, out)
            }
        };
        out.push(StreamEvent::ContentBlockDelta { index, delta });
    }

    fn open_block(
        &mut self,
        kind: BlockKind,
        block: ContentBlock,
        out: &mut Vec<StreamEvent>,
    ) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some(OpenBlock { index, kind });
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        });
        index
    }

    /// One tool call delta: a new call (a new index, or a new id at a known index, as some
    /// servers send) opens a tool_use block; the rest of a call's arguments go to its block,
    /// even after another block has started (Anthropic SDKs accumulate by block index).
    fn tool_delta(&mut self, call: &ToolCall, out: &mut Vec<StreamEvent>) {
        let new_id = call.id.as_deref().filter(|id| !id.is_empty());
        let existing = match call.index {
            Some(i) => self.tools.iter().rposition(|t| t.openai_index == Some(i)),
            None if new_id.is_none() => self.tools.len().checked_sub(1),
            None => None,
        }
        .filter(|&p| new_id.is_none_or(|id| self.tools.get(p).is_some_and(|t| t.id == id)));
        let arguments = call.function.arguments.as_str();
        let position = match existing {
            Some(p) => p,
            None => {
                self.close(out);
                let position = self.tools.len();
                let id =
                    new_id.map_or_else(|| fallback_tool_id(&self.id, position), str::to_string);
                let name = self
                    .ctx
                    .tool_names
                    .original(call.function.name.as_deref().unwrap_or_default())
                    .to_string();
                let block = ContentBlock::ToolUse(ToolUseBlock {
                    id: id.clone(),
                    name: name.clone(),
                    input: json!({}),
                    cache_control: None,
                    extra: Map::new(),
                });
                let block_index = self.open_block(BlockKind::Tool(position), block, out);
                self.tools.push(StreamTool {
                    openai_index: call.index,
                    block_index,
                    id,
                    name,
                    arguments: String::new(),
                });
                position
            }
        };
        if arguments.is_empty() {
            return;
        }
        let Some(tool) = self.tools.get_mut(position) else {
            return;
        };
        tool.arguments.push_str(arguments);
        let index = tool.block_index;
        if self
            .open
            .is_none_or(|o| o.kind != BlockKind::Tool(position))
            && !self.noted_late_arguments
        {
            self.noted_late_arguments = true;
            self.notes.push(TranslationNote::new(
                format!("content.{index}"),
                "tool call arguments arrived after a later block started; sent to the tool's \
                 block out of order",
            ));
        }
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::InputJsonDelta {
                partial_json: arguments.to_string(),
            },
        });
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let BlockKind::Tool(p) = open.kind
            && let Some(tool) = self.tools.get(p)
            && parse_tool_arguments(&tool.arguments).1
        {
            self.notes.push(TranslationNote::new(
                format!("content.{}", open.index),
                format!(
                    "arguments of '{}' are not a JSON object; streamed as sent",
                    tool.name
                ),
            ));
        }
        out.push(StreamEvent::ContentBlockStop { index: open.index });
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.close(out);
        let (mut stop_reason, stop_sequence) = stop_reason_for_finish(
            self.finish_reason.as_deref(),
            !self.tools.is_empty(),
            self.extras.matched_stop_sequence.as_deref(),
        );
        if self.refused && stop_reason == StopReason::EndTurn {
            stop_reason = StopReason::Refusal;
        }
        let usage = match self.usage() {
            Some(u) => DeltaUsage {
                output_tokens: u.output_tokens,
                input_tokens: Some(u.input_tokens),
                cache_creation_input_tokens: u.cache_creation_input_tokens,
                cache_read_input_tokens: u.cache_read_input_tokens,
                extra: Map::new(),
            },
            None => {
                self.notes.push(TranslationNote::new(
                    "usage",
                    "the upstream stream reported no usage; zeros reported",
                ));
                DeltaUsage::default()
            }
        };
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason),
                stop_sequence,
                extra: Map::new(),
            },
            usage,
        });
        out.push(StreamEvent::MessageStop);
        self.done = true;
    }
}

/// The `error` event for a failure after the stream has started (HTTP status → error type as
/// [`error_type_for_status`]).
pub fn error_event(status: u16, message: impl Into<String>) -> StreamEvent {
    StreamEvent::Error {
        error: ErrorDetail {
            kind: error_type_for_status(status),
            message: message.into(),
        },
    }
}

/// An event as SSE: `event: <type>\ndata: <json>\n\n`.
pub fn encode_sse(event: &StreamEvent) -> Result<String, serde_json::Error> {
    let data = serde_json::to_string(event)?;
    let name = event.event_type();
    let name = if name.is_empty() || name.contains(['\r', '\n']) {
        "unknown"
    } else {
        name
    };
    Ok(format!("event: {name}\ndata: {data}\n\n"))
}

/// Rebuilds a `Message` from stream events as the Anthropic SDKs do: blocks by index, text and
/// thinking appended, tool inputs parsed from their `input_json_delta`s (by
/// [`parse_tool_arguments`]'s rule), `message_delta` setting the stop reason and usage.
#[derive(Debug, Clone, Default)]
pub struct MessageAccumulator {
    message: Option<Message>,
    /// Accumulated `partial_json` per tool_use block index.
    json: BTreeMap<u32, String>,
    stopped: bool,
    error: Option<ErrorDetail>,
}

impl MessageAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event. Fails on events that break the protocol (content before
    /// `message_start`, a block index out of order, a delta of the wrong type, anything after
    /// `message_stop`).
    pub fn push(&mut self, event: &StreamEvent) -> Result<(), String> {
        match event {
            StreamEvent::Ping | StreamEvent::Other(_) => return Ok(()),
            StreamEvent::Error { error } => {
                self.error = Some(error.clone());
                return Ok(());
            }
            _ => {}
        }
        if self.stopped {
            return Err(format!("{} after message_stop", event.event_type()));
        }
        if let StreamEvent::MessageStart { message } = event {
            if self.message.is_some() {
                return Err("a second message_start".into());
            }
            self.message = Some(message.clone());
            return Ok(());
        }
        let Some(message) = self.message.as_mut() else {
            return Err(format!("{} before message_start", event.event_type()));
        };
        match event {
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if *index as usize != message.content.len() {
                    return Err(format!(
                        "content_block_start index {index}, expected {}",
                        message.content.len()
                    ));
                }
                if let ContentBlock::ToolUse(_) = content_block {
                    self.json.insert(*index, String::new());
                }
                message.content.push(content_block.clone());
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let block = message
                    .content
                    .get_mut(*index as usize)
                    .ok_or_else(|| format!("content_block_delta for unknown block {index}"))?;
                match (block, delta) {
                    (ContentBlock::Text(t), BlockDelta::TextDelta { text }) => {
                        t.text.push_str(text);
                    }
                    (ContentBlock::Text(t), BlockDelta::CitationsDelta { citation }) => {
                        match t.citations.get_or_insert_with(|| json!([])) {
                            Value::Array(list) => list.push(citation.clone()),
                            other => *other = json!([citation]),
                        }
                    }
                    (ContentBlock::Thinking(t), BlockDelta::ThinkingDelta { thinking }) => {
                        t.thinking.push_str(thinking);
                    }
                    (ContentBlock::Thinking(t), BlockDelta::SignatureDelta { signature }) => {
                        t.signature = Some(signature.clone());
                    }
                    (ContentBlock::ToolUse(_), BlockDelta::InputJsonDelta { partial_json }) => {
                        self.json.entry(*index).or_default().push_str(partial_json);
                    }
                    (_, BlockDelta::Other(_)) => {}
                    (block, delta) => {
                        return Err(format!(
                            "{} delta for a {} block",
                            delta_kind(delta),
                            block.kind()
                        ));
                    }
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if *index as usize >= message.content.len() {
                    return Err(format!("content_block_stop for unknown block {index}"));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                message.stop_reason = delta.stop_reason.clone();
                message.stop_sequence = delta.stop_sequence.clone();
                message.usage.output_tokens = usage.output_tokens;
                if let Some(n) = usage.input_tokens {
                    message.usage.input_tokens = n;
                }
                if usage.cache_creation_input_tokens.is_some() {
                    message.usage.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                }
                if usage.cache_read_input_tokens.is_some() {
                    message.usage.cache_read_input_tokens = usage.cache_read_input_tokens;
                }
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::MessageStart { .. }
            | StreamEvent::Ping
            | StreamEvent::Error { .. }
            | StreamEvent::Other(_) => {}
        }
        Ok(())
    }

    /// Whether `message_stop` has been seen.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    /// The `error` event seen, if any.
    pub fn error(&self) -> Option<&ErrorDetail> {
        self.error.as_ref()
    }

    /// The message so far (`None` before `message_start`), tool inputs parsed.
    pub fn into_message(self) -> Option<Message> {
        let mut message = self.message?;
        for (index, json) in self.json {
            if let Some(ContentBlock::ToolUse(t)) = message.content.get_mut(index as usize) {
                t.input = parse_tool_arguments(&json).0;
            }
        }
        Some(message)
    }
}

fn delta_kind(delta: &BlockDelta) -> &'static str {
    match delta {
        BlockDelta::TextDelta { .. } => "text_delta",
        BlockDelta::InputJsonDelta { .. } => "input_json_delta",
        BlockDelta::ThinkingDelta { .. } => "thinking_delta",
        BlockDelta::SignatureDelta { .. } => "signature_delta",
        BlockDelta::CitationsDelta { .. } => "citations_delta",
        BlockDelta::Other(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::from_openai::{from_openai, parse_chunk, parse_response};
    use serde_json::json;

    fn chunk(v: Value) -> ChatCompletionChunk {
        let mut base = json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": []});
        if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
            b.extend(o.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn delta(d: Value) -> ChatCompletionChunk {
        chunk(json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]}))
    }

    fn finish(reason: &str) -> ChatCompletionChunk {
        chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}))
    }

    fn usage(prompt: u64, completion: u64) -> ChatCompletionChunk {
        chunk(
            json!({"usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}),
        )
    }

    fn run(t: &mut StreamTranslator, chunks: &[ChatCompletionChunk]) -> Vec<StreamEvent> {
        let mut events: Vec<StreamEvent> = chunks.iter().flat_map(|c| t.push(c)).collect();
        events.extend(t.finish());
        events
    }

    fn types(events: &[StreamEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                } => {
                    format!("start{index}:{}", content_block.kind())
                }
                StreamEvent::ContentBlockDelta { index, delta } => {
                    format!("delta{index}:{}", delta_kind(delta))
                }
                StreamEvent::ContentBlockStop { index } => format!("stop{index}"),
                other => other.event_type().to_string(),
            })
            .collect()
    }

    fn accumulate(events: &[StreamEvent]) -> Message {
        let mut acc = MessageAccumulator::new();
        for e in events {
            acc.push(e).unwrap();
        }
        assert!(acc.is_complete());
        acc.into_message().unwrap()
    }

    #[test]
    fn text_stream_with_usage_after_finish() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[
                delta(json!({"role": "assistant", "content": ""})),
                delta(json!({"content": "Hel"})),
                delta(json!({"content": "lo"})),
                finish("stop"),
                usage(12, 3),
            ],
        );
        assert_eq!(
            types(&events),
            [
                "message_start",
                "start0:text",
                "delta0:text_delta",
                "delta0:text_delta",
                "stop0",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(t.is_done());
        assert!(t.notes().is_empty(), "{:?}", t.notes());
        let start = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(start["message"]["id"], "msg_s1");
        assert_eq!(start["message"]["model"], "gpt-4o");
        assert_eq!(start["message"]["usage"]["input_tokens"], 0);
        assert_eq!(start["message"]["usage"]["cache_read_input_tokens"], 0);
        assert_eq!(
            serde_json::to_value(&events[5]).unwrap(),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 3, "input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        );
        let m = accumulate(&events);
        assert!(matches!(&m.content[..], [ContentBlock::Text(tb)] if tb.text == "Hello"));
        assert_eq!(m.usage.output_tokens, 3);
        // Nothing more after the end.
        assert!(t.push(&delta(json!({"content": "late"}))).is_empty());
        assert!(t.finish().is_empty());
    }

    #[test]
    fn thinking_text_and_parallel_tool_calls() {
        let mut ctx = TranslationContext {
            model: Some("claude-sonnet-4-5".into()),
            ..TranslationContext::default()
        };
        let long = format!("mcp__kb__{}", "search_".repeat(12));
        let short = ctx.tool_names.register(&long);
        let mut t = StreamTranslator::new(ctx);
        let events = run(
            &mut t,
            &[
                delta(json!({"role": "assistant", "reasoning_content": "Let me "})),
                delta(json!({"reasoning_content": "think."})),
                delta(json!({"content": "I'll check both."})),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": short, "arguments": "{\"q\":\"x\"}"}}]}),
                ),
                chunk(
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
                             "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}}),
                ),
            ],
        );
        assert_eq!(
            types(&events),
            [
                "message_start",
                "start0:thinking",
                "delta0:thinking_delta",
                "delta0:thinking_delta",
                "stop0",
                "start1:text",
                "delta1:text_delta",
                "stop1",
                "start2:tool_use",
                "delta2:input_json_delta",
                "delta2:input_json_delta",
                "stop2",
                "start3:tool_use",
                "delta3:input_json_delta",
                "stop3",
                "message_delta",
                "message_stop"
            ]
        );
        let m = accumulate(&events);
        assert_eq!(m.model, "claude-sonnet-4-5");
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
        assert!(
            matches!(&m.content[0], ContentBlock::Thinking(b) if b.thinking == "Let me think.")
        );
        let ContentBlock::ToolUse(a) = &m.content[2] else {
            panic!("tool_use expected")
        };
        assert_eq!((a.id.as_str(), a.name.as_str()), ("call_a", "get_weather"));
        assert_eq!(a.input, json!({"city": "Paris"}));
        let ContentBlock::ToolUse(b) = &m.content[3] else {
            panic!("tool_use expected")
        };
        assert_eq!(b.name, long);
        assert_eq!(b.input, json!({"q": "x"}));
        assert_eq!((m.usage.input_tokens, m.usage.output_tokens), (50, 9));
    }

    #[test]
    fn stream_equals_the_non_streaming_translation() {
        let body = json!({
            "id": "chatcmpl-eq", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}}
            ]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 10}}
        });
        let (resp, extras) = parse_response(body.to_string().as_bytes()).unwrap();
        let expected = from_openai(&resp, &extras, &TranslationContext::default()).message;
        let raw = [
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"o"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"k"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":[1,"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"2]}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":10}}}"#,
        ];
        let mut t = StreamTranslator::new(TranslationContext::default());
        let mut events = Vec::new();
        for data in raw {
            let (c, x) = parse_chunk(data).unwrap();
            events.extend(t.push_with_extras(&c, &x));
        }
        assert!(t.is_done());
        assert_eq!(accumulate(&events), expected);
        assert_eq!(t.usage().unwrap().cache_read_input_tokens, Some(10));
    }

    #[test]
    fn stream_without_finish_reason_or_usage_still_ends() {
        let mut t = StreamTranslator::new(TranslationContext {
            input_tokens_hint: Some(77),
            ..TranslationContext::default()
        });
        let events = run(&mut t, &[delta(json!({"content": "cut"}))]);
        assert_eq!(
            types(&events),
            [
                "message_start",
                "start0:text",
                "delta0:text_delta",
                "stop0",
                "message_delta",
                "message_stop"
            ]
        );
        let start = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(start["message"]["usage"]["input_tokens"], 77);
        let m = accumulate(&events);
        assert_eq!(m.stop_reason, Some(StopReason::EndTurn));
        let paths: Vec<&str> = t.notes().iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["finish_reason", "usage"]);

        // A stream that produced nothing at all is still a valid empty message.
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = t.finish();
        assert_eq!(
            types(&events),
            ["message_start", "message_delta", "message_stop"]
        );
        assert_eq!(accumulate(&events).id, "msg_routeiq");
    }

    #[test]
    fn finish_reason_waits_for_the_usage_chunk_then_finish_flushes() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let mut events = t.push(&delta(json!({"content": "a"})));
        let at_finish = t.push(&finish("length"));
        assert_eq!(types(&at_finish), ["stop0"]);
        events.extend(at_finish);
        let end = t.finish();
        assert_eq!(types(&end), ["message_delta", "message_stop"]);
        events.extend(end);
        assert_eq!(accumulate(&events).stop_reason, Some(StopReason::MaxTokens));
    }

    #[test]
    fn tool_calls_without_index_or_with_a_reused_index() {
        // Some servers send every call at index 0 with distinct ids, or no index at all.
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{\"x\":1}"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"id": "c", "function": {"name": "h", "arguments": "{\"y\""}}]}),
                ),
                delta(json!({"tool_calls": [{"function": {"arguments": ":2}"}}]})),
                delta(
                    json!({"tool_calls": [{"index": 5, "function": {"name": "noid", "arguments": ""}}]}),
                ),
                finish("stop"),
            ],
        );
        let m = accumulate(&events);
        let calls: Vec<(String, String, Value)> = m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse(t) => Some((t.id.clone(), t.name.clone(), t.input.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("a".into(), "f".into(), json!({})),
                ("b".into(), "g".into(), json!({"x": 1})),
                ("c".into(), "h".into(), json!({"y": 2})),
                ("toolu_s1_3".into(), "noid".into(), json!({})),
            ]
        );
        // finish_reason "stop" after tool calls is tool_use.
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
    }

    #[test]
    fn late_arguments_go_to_their_block_and_are_noted() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"k\":"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
                ),
                delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
                finish("tool_calls"),
            ],
        );
        let m = accumulate(&events);
        assert!(matches!(&m.content[0], ContentBlock::ToolUse(a) if a.input == json!({"k": 1})));
        assert!(t.notes().iter().any(|n| n.path == "content.0"));
    }

    #[test]
    fn refusal_and_content_filter() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[delta(json!({"refusal": "I can't."})), finish("stop")],
        );
        let m = accumulate(&events);
        assert_eq!(m.stop_reason, Some(StopReason::Refusal));
        assert!(matches!(&m.content[0], ContentBlock::Text(b) if b.text == "I can't."));

        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[delta(json!({"content": "x"})), finish("content_filter")],
        );
        assert_eq!(accumulate(&events).stop_reason, Some(StopReason::Refusal));
    }

    #[test]
    fn matched_stop_sequence_from_extras() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let (c, x) = parse_chunk(
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop","stop_reason":"END"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        )
        .unwrap();
        let events = t.push_with_extras(&c, &x);
        assert!(t.is_done());
        let m = accumulate(&events);
        assert_eq!(m.stop_reason, Some(StopReason::StopSequence));
        assert_eq!(m.stop_sequence.as_deref(), Some("END"));
    }

    #[test]
    fn other_choices_are_dropped_with_a_note() {
        let mut t = StreamTranslator::new(TranslationContext::default());
        let events = run(
            &mut t,
            &[chunk(json!({"choices": [
                {"index": 0, "delta": {"content": "zero"}, "finish_reason": null},
                {"index": 1, "delta": {"content": "one"}, "finish_reason": null}
            ]}))],
        );
        assert!(
            matches!(&accumulate(&events).content[..], [ContentBlock::Text(b)] if b.text == "zero")
        );
        assert_eq!(t.notes()[0].path, "choices");
    }

    #[test]
    fn sse_encoding_and_error_events() {
        let e = error_event(529, "Overloaded");
        assert_eq!(
            encode_sse(&e).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
        assert_eq!(
            encode_sse(&StreamEvent::Ping).unwrap(),
            "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        let weird = StreamEvent::Other(json!({"type": "a\nb"}));
        assert!(encode_sse(&weird).unwrap().starts_with("event: unknown\n"));
        let delta = StreamEvent::ContentBlockDelta {
            index: 2,
            delta: BlockDelta::InputJsonDelta {
                partial_json: "{\"a\"".into(),
            },
        };
        let sse = encode_sse(&delta).unwrap();
        assert_eq!(
            sse,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}\n\n"
        );
        let mut acc = MessageAccumulator::new();
        acc.push(&e).unwrap();
        assert_eq!(acc.error().map(|d| d.message.as_str()), Some("Overloaded"));
    }

    /// A real Anthropic stream (thinking with a signature, text, a tool call, pings, cache
    /// usage) parses into these types and accumulates into the Message Anthropic would answer.
    #[test]
    fn anthropic_stream_parses_and_accumulates() {
        let data = [
            r#"{"type":"message_start","message":{"id":"msg_01X","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1,"service_tier":"standard"}}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Read the file."}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Reading."}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"Read","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"file_path\": \"/a\"}"}}"#,
            r#"{"type":"content_block_stop","index":2}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":57}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let mut acc = MessageAccumulator::new();
        for d in data {
            let event: StreamEvent = serde_json::from_str(d).unwrap();
            assert!(!matches!(event, StreamEvent::Other(_)), "{d}");
            assert_eq!(
                serde_json::to_value(&event).unwrap(),
                serde_json::from_str::<Value>(d).unwrap()
            );
            acc.push(&event).unwrap();
        }
        let m = acc.into_message().unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({
                "id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                "content": [
                    {"type": "thinking", "thinking": "Read the file.", "signature": "EqQB"},
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "/a"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000,
                          "output_tokens": 57, "service_tier": "standard"}
            })
        );
        assert_eq!(m.usage.total_input_tokens(), 2112);
    }

    #[test]
    fn accumulator_rejects_protocol_violations() {
        let start = StreamEvent::MessageStart {
            message: Message::empty("msg_1", "m", MessageUsage::default()),
        };
        let mut acc = MessageAccumulator::new();
        assert!(
            acc.push(&StreamEvent::ContentBlockStop { index: 0 })
                .is_err()
        );
        acc.push(&start).unwrap();
        assert!(acc.push(&start).is_err());
        assert!(
            acc.push(&StreamEvent::ContentBlockStart {
                index: 1,
                content_block: ContentBlock::text("")
            })
            .is_err()
        );
        acc.push(&StreamEvent::ContentBlockStart {
            index: 0,
            content_block: ContentBlock::text(""),
        })
        .unwrap();
        assert!(
            acc.push(&StreamEvent::ContentBlockDelta {
                index: 0,
                delta: BlockDelta::InputJsonDelta {
                    partial_json: "{}".into()
                }
            })
            .is_err()
        );
        acc.push(&StreamEvent::MessageStop).unwrap();
        assert!(acc.push(&StreamEvent::MessageStop).is_err());
        acc.push(&StreamEvent::Ping).unwrap();
    }
}
