//! OpenAI chat chunks → Responses stream events, the SSE encoder, and an event accumulator.
//!
//! - [`StreamTranslator`]: fed `chat.completion.chunk`s one at a time, answers the events to
//!   send, numbered from 0: `response.created` and `response.in_progress` first; one output
//!   item per run of reasoning (`reasoning_summary_*` events) or text (`content_part.*`,
//!   `output_text.*`, `refusal.*`), one per tool call index (`function_call_arguments.*`, or
//!   `custom_tool_call_input.*` for custom tools); their `.done` events; then
//!   `response.completed` (or `response.incomplete`) with the whole final `Response`, once both
//!   the finish reason and the usage are in (or at [`StreamTranslator::finish`]).
//! - [`encode_sse`], [`error_event`]: the wire form of an event, and the event for a failure
//!   (see also [`StreamTranslator::fail`], which ends a started stream with `response.failed`).
//! - [`ResponseAccumulator`]: rebuilds the `Response` from events as the OpenAI SDKs do, and
//!   checks them (for storing a streamed answer, and for tests).

use serde_json::{Map, Value};

use super::TranslationNote;
use super::from_chat::{
    ResponseContext, TextSegment, UsageDetails, annotations, call_item, custom_tool_input,
    message_item, reasoning_item, reasoning_text, refusal_text, set_status, usage_from_chat,
};
use super::types::{
    Content, ContentPart, Item, OutputTextPart, ReasoningPart, RefusalPart, Response,
    ResponseError, ResponseStatus, ResponseStreamEvent as Event, ResponseUsage,
};
use crate::openai::{ChatCompletionChunk, ToolCall, Usage};

/// One output item being streamed.
#[derive(Debug, Clone)]
enum StreamItem {
    Message {
        id: String,
        segments: Vec<TextSegment>,
        /// Whether the last segment's content part is still open.
        part_open: bool,
        status: &'static str,
    },
    Reasoning {
        id: String,
        text: String,
    },
    Tool {
        id: String,
        call_id: String,
        name: String,
        custom: bool,
        arguments: String,
        openai_index: Option<u32>,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    item: StreamItem,
    open: bool,
}

/// Translates one chat stream into Responses stream events.
///
/// Feed every upstream chunk to [`push`](Self::push) (or
/// [`push_with_details`](Self::push_with_details) when the raw JSON was at hand, see
/// [`parse_chat_chunk`](super::from_chat::parse_chat_chunk)) and send what it returns; when the
/// upstream stream ends, call [`finish`](Self::finish) and send that too (it is empty when the
/// stream already ended properly). On an upstream failure mid-stream, send
/// [`fail`](Self::fail)'s events instead.
///
/// Reasoning and text items close when another item starts; tool call items stay open until
/// the finish reason (a chat stream may still send arguments of an earlier call), then all
/// open items close in output order. The final event waits for the usage chunk chat streams
/// send after the finish reason (`stream_options.include_usage`, which
/// [`to_chat`](super::to_chat::to_chat) requests).
#[derive(Debug, Clone)]
pub struct StreamTranslator {
    ctx: ResponseContext,
    next_sequence: u64,
    started: bool,
    done: bool,
    upstream_model: String,
    slots: Vec<Slot>,
    /// The open reasoning or message item, if any.
    current: Option<usize>,
    messages: usize,
    reasonings: usize,
    tools: usize,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    details: UsageDetails,
    response: Option<Response>,
    notes: Vec<TranslationNote>,
    noted_other_choices: bool,
}

impl StreamTranslator {
    pub fn new(ctx: ResponseContext) -> Self {
        StreamTranslator {
            ctx,
            next_sequence: 0,
            started: false,
            done: false,
            upstream_model: String::new(),
            slots: Vec::new(),
            current: None,
            messages: 0,
            reasonings: 0,
            tools: 0,
            finish_reason: None,
            usage: None,
            details: UsageDetails::default(),
            response: None,
            notes: Vec::new(),
            noted_other_choices: false,
        }
    }

    /// The events one upstream chunk becomes.
    pub fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<Event> {
        self.push_with_details(chunk, &UsageDetails::default())
    }

    /// [`push`](Self::push), with the chunk's [`UsageDetails`] (cached and reasoning tokens).
    pub fn push_with_details(
        &mut self,
        chunk: &ChatCompletionChunk,
        details: &UsageDetails,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.details.update(details);
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if self.upstream_model.is_empty() {
            self.upstream_model.clone_from(&chunk.model);
        }
        self.start(&mut out);
        for choice in &chunk.choices {
            if choice.index != 0 {
                if !self.noted_other_choices {
                    self.noted_other_choices = true;
                    self.notes.push(TranslationNote::new(
                        "choices",
                        "choices other than 0 dropped: a Response carries one answer",
                    ));
                }
                continue;
            }
            let delta = &choice.delta;
            if let Some(text) = reasoning_text(&delta.extra) {
                let text = text.to_string();
                self.reasoning_delta(text, &mut out);
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                let text = text.to_string();
                self.text_delta(false, text, &mut out);
            }
            if let Some(refusal) = refusal_text(&delta.extra) {
                let text = refusal.to_string();
                self.text_delta(true, text, &mut out);
            }
            for annotation in annotations(&delta.extra) {
                self.annotation(annotation, &mut out);
            }
            for call in delta.tool_calls.iter().flatten() {
                self.tool_delta(call, &mut out);
            }
            if let Some(reason) = choice.finish_reason.as_deref().filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason.to_string());
                self.close_all(&mut out);
            }
        }
        if self.finish_reason.is_some() && chunk.usage.is_some() {
            self.end(&mut out);
        }
        out
    }

    /// The events that end the stream when the upstream stream has ended: the open items'
    /// `.done` events and `response.completed` (or `response.incomplete`). Empty when the
    /// stream already ended.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(&mut out);
        if self.finish_reason.is_none() {
            self.notes.push(TranslationNote::new(
                "finish_reason",
                "the upstream stream ended without a finish reason",
            ));
        }
        self.end(&mut out);
        out
    }

    /// The events that end a stream that failed upstream: `error` (`code`, `message`) and
    /// `response.failed` carrying the output so far (after `response.created` when nothing was
    /// sent yet). Empty when the stream already ended.
    pub fn fail(&mut self, code: &str, message: &str) -> Vec<Event> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(&mut out);
        let sequence_number = self.sequence();
        out.push(Event::Error {
            code: Some(code.to_string()),
            message: message.to_string(),
            param: None,
            sequence_number,
        });
        let mut response = self.snapshot(ResponseStatus::Failed);
        response.error = Some(ResponseError {
            code: code.to_string(),
            message: message.to_string(),
            extra: Map::new(),
        });
        response.usage = self.usage.map(|u| usage_from_chat(&u, &self.details));
        let sequence_number = self.sequence();
        out.push(Event::Failed {
            response: Box::new(response.clone()),
            sequence_number,
        });
        self.response = Some(response);
        self.done = true;
        out
    }

    /// Whether the final event has been produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The final Response (once [`is_done`](Self::is_done)): what the last event carries, for
    /// the gateway to store and log.
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// The usage reported so far (for logging and spend once the stream ends).
    pub fn usage(&self) -> Option<ResponseUsage> {
        self.usage.map(|u| usage_from_chat(&u, &self.details))
    }

    /// What was dropped or changed so far.
    pub fn notes(&self) -> &[TranslationNote] {
        &self.notes
    }

    fn sequence(&mut self) -> u64 {
        let n = self.next_sequence;
        self.next_sequence += 1;
        n
    }

    /// The Response as it stands: echo fields, `status`, the items so far (as their `.done`
    /// events carry them, or would).
    fn snapshot(&self, status: ResponseStatus) -> Response {
        let mut response = self.ctx.response(status, &self.upstream_model);
        response.output = self.slots.iter().map(|s| self.build(&s.item)).collect();
        response
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Box::new(self.snapshot(ResponseStatus::InProgress));
        let sequence_number = self.sequence();
        out.push(Event::Created {
            response: response.clone(),
            sequence_number,
        });
        let sequence_number = self.sequence();
        out.push(Event::InProgress {
            response,
            sequence_number,
        });
    }

    /// The item as output (complete, or as far as it got).
    fn build(&self, item: &StreamItem) -> Item {
        match item {
            StreamItem::Message {
                id,
                segments,
                status,
                ..
            } => message_item(id.clone(), status, segments),
            StreamItem::Reasoning { id, text } => reasoning_item(id.clone(), text),
            StreamItem::Tool {
                id,
                call_id,
                name,
                custom,
                arguments,
                ..
            } => call_item(
                id.clone(),
                call_id.clone(),
                name.clone(),
                arguments,
                *custom,
                "completed",
            ),
        }
    }

    fn open_item(&mut self, item: StreamItem, added: Item, out: &mut Vec<Event>) -> usize {
        let index = self.slots.len();
        self.slots.push(Slot { item, open: true });
        let sequence_number = self.sequence();
        out.push(Event::OutputItemAdded {
            output_index: index as u32,
            item: added,
            sequence_number,
        });
        index
    }

    fn reasoning_delta(&mut self, text: String, out: &mut Vec<Event>) {
        let index = match self.current {
            Some(i) if matches!(self.slots[i].item, StreamItem::Reasoning { .. }) => i,
            _ => {
                self.close_current(out);
                let id = self.ctx.item_id("rs", self.reasonings);
                self.reasonings += 1;
                let mut added = reasoning_item(id.clone(), "");
                if let Item::Reasoning(r) = &mut added {
                    r.summary.clear();
                }
                let item = StreamItem::Reasoning {
                    id: id.clone(),
                    text: String::new(),
                };
                let index = self.open_item(item, added, out);
                self.current = Some(index);
                let sequence_number = self.sequence();
                out.push(Event::ReasoningSummaryPartAdded {
                    item_id: id,
                    output_index: index as u32,
                    summary_index: 0,
                    part: ReasoningPart::summary_text(""),
                    sequence_number,
                });
                index
            }
        };
        let sequence_number = self.sequence();
        if let Some(Slot {
            item: StreamItem::Reasoning { id, text: acc },
            ..
        }) = self.slots.get_mut(index)
        {
            acc.push_str(&text);
            out.push(Event::ReasoningSummaryTextDelta {
                item_id: id.clone(),
                output_index: index as u32,
                summary_index: 0,
                delta: text,
                sequence_number,
            });
        }
    }

    /// Text (or refusal) for the open message item, opening the item and/or a content part
    /// of the right kind as needed.
    fn text_delta(&mut self, refusal: bool, text: String, out: &mut Vec<Event>) {
        let index = match self.current {
            Some(i) if matches!(self.slots[i].item, StreamItem::Message { .. }) => i,
            _ => {
                self.close_current(out);
                let id = self.ctx.item_id("msg", self.messages);
                self.messages += 1;
                let mut added = message_item(id.clone(), "in_progress", &[]);
                if let Item::Message(m) = &mut added {
                    m.content = Content::Parts(Vec::new());
                }
                let item = StreamItem::Message {
                    id,
                    segments: Vec::new(),
                    part_open: false,
                    status: "completed",
                };
                let index = self.open_item(item, added, out);
                self.current = Some(index);
                index
            }
        };
        let same_kind = match &self.slots[index].item {
            StreamItem::Message {
                segments,
                part_open,
                ..
            } => *part_open && segments.last().is_some_and(|s| s.refusal == refusal),
            _ => false,
        };
        if !same_kind {
            self.close_part(index, out);
            self.open_part(index, refusal, out);
        }
        if text.is_empty() {
            return;
        }
        let sequence_number = self.sequence();
        if let Some(Slot {
            item: StreamItem::Message { id, segments, .. },
            ..
        }) = self.slots.get_mut(index)
            && let Some(segment) = segments.last_mut()
        {
            segment.text.push_str(&text);
            let item_id = id.clone();
            let content_index = (segments.len() - 1) as u32;
            out.push(if refusal {
                Event::RefusalDelta {
                    item_id,
                    output_index: index as u32,
                    content_index,
                    delta: text,
                    sequence_number,
                }
            } else {
                Event::OutputTextDelta {
                    item_id,
                    output_index: index as u32,
                    content_index,
                    delta: text,
                    logprobs: Vec::new(),
                    sequence_number,
                }
            });
        }
    }

    fn open_part(&mut self, index: usize, refusal: bool, out: &mut Vec<Event>) {
        let sequence_number = self.sequence();
        if let Some(Slot {
            item:
                StreamItem::Message {
                    id,
                    segments,
                    part_open,
                    ..
                },
            ..
        }) = self.slots.get_mut(index)
        {
            segments.push(TextSegment {
                refusal,
                text: String::new(),
                annotations: Vec::new(),
            });
            *part_open = true;
            let part = if refusal {
                ContentPart::Refusal(RefusalPart {
                    refusal: String::new(),
                    extra: Map::new(),
                })
            } else {
                ContentPart::OutputText(OutputTextPart::new(""))
            };
            out.push(Event::ContentPartAdded {
                item_id: id.clone(),
                output_index: index as u32,
                content_index: (segments.len() - 1) as u32,
                part,
                sequence_number,
            });
        }
    }

    /// An annotation of the open output_text part (dropped, noted, when there is none).
    fn annotation(&mut self, annotation: Value, out: &mut Vec<Event>) {
        let sequence_number = self.next_sequence;
        if let Some(i) = self.current
            && let Some(Slot {
                item:
                    StreamItem::Message {
                        id,
                        segments,
                        part_open: true,
                        ..
                    },
                ..
            }) = self.slots.get_mut(i)
            && let content_index = (segments.len().saturating_sub(1)) as u32
            && let Some(segment) = segments.last_mut().filter(|s| !s.refusal)
        {
            segment.annotations.push(annotation.clone());
            out.push(Event::OutputTextAnnotationAdded {
                item_id: id.clone(),
                output_index: i as u32,
                content_index,
                annotation_index: (segment.annotations.len() - 1) as u32,
                annotation,
                sequence_number,
            });
            self.next_sequence += 1;
            return;
        }
        self.notes.push(TranslationNote::new(
            "annotations",
            "an annotation arrived with no output text to attach it to; dropped",
        ));
    }

    /// One tool call delta: a new call (a new index, or a new id at a known index, as some
    /// servers send) opens an item; the rest of a call's arguments go to its item, which stays
    /// open until the finish reason.
    fn tool_delta(&mut self, call: &ToolCall, out: &mut Vec<Event>) {
        let new_id = call.id.as_deref().filter(|id| !id.is_empty());
        fn tool_at(slot: &Slot) -> Option<(Option<u32>, &str, bool)> {
            match &slot.item {
                StreamItem::Tool {
                    openai_index,
                    call_id,
                    ..
                } => Some((*openai_index, call_id.as_str(), slot.open)),
                _ => None,
            }
        }
        let existing = match call.index {
            Some(i) => self
                .slots
                .iter()
                .rposition(|s| tool_at(s).is_some_and(|(idx, _, _)| idx == Some(i))),
            None if new_id.is_none() => self.slots.iter().rposition(|s| tool_at(s).is_some()),
            None => None,
        }
        .filter(|&p| {
            self.slots
                .get(p)
                .and_then(tool_at)
                .is_some_and(|(_, id, open)| open && new_id.is_none_or(|new| new == id))
        });
        let index = match existing {
            Some(p) => p,
            None => {
                self.close_current(out);
                let k = self.tools;
                self.tools += 1;
                let name = call.function.name.clone().unwrap_or_default();
                let custom = self.ctx.is_custom_tool(&name);
                let id = self.ctx.call_item_id(custom, k);
                let call_id = new_id.map_or_else(|| self.ctx.fallback_call_id(k), str::to_string);
                let added = call_item(
                    id.clone(),
                    call_id.clone(),
                    name.clone(),
                    "",
                    custom,
                    "in_progress",
                );
                let item = StreamItem::Tool {
                    id,
                    call_id,
                    name,
                    custom,
                    arguments: String::new(),
                    openai_index: call.index,
                };
                self.open_item(item, added, out)
            }
        };
        let arguments = call.function.arguments.as_str();
        let late_name = call.function.name.as_deref().filter(|n| !n.is_empty());
        if let Some(Slot {
            item:
                StreamItem::Tool {
                    name,
                    custom: false,
                    ..
                },
            ..
        }) = self.slots.get_mut(index)
            && name.is_empty()
            && let Some(n) = late_name
        {
            *name = n.to_string();
        }
        if arguments.is_empty() {
            return;
        }
        let sequence_number = self.next_sequence;
        if let Some(Slot {
            item:
                StreamItem::Tool {
                    id,
                    custom,
                    arguments: acc,
                    ..
                },
            ..
        }) = self.slots.get_mut(index)
        {
            acc.push_str(arguments);
            // A custom tool's input is inside the JSON arguments: it is sent whole at the end.
            if !*custom {
                out.push(Event::FunctionCallArgumentsDelta {
                    item_id: id.clone(),
                    output_index: index as u32,
                    delta: arguments.to_string(),
                    sequence_number,
                });
                self.next_sequence += 1;
            }
        }
    }

    /// Closes the open content part of message `index`: `output_text.done` (or
    /// `refusal.done`) and `content_part.done`.
    fn close_part(&mut self, index: usize, out: &mut Vec<Event>) {
        let Some(Slot {
            item:
                StreamItem::Message {
                    id,
                    segments,
                    part_open,
                    ..
                },
            ..
        }) = self.slots.get_mut(index)
        else {
            return;
        };
        if !*part_open {
            return;
        }
        *part_open = false;
        let Some(segment) = segments.last() else {
            return;
        };
        let item_id = id.clone();
        let content_index = (segments.len() - 1) as u32;
        let segment = segment.clone();
        let output_index = index as u32;
        let part = match message_item(String::new(), "", std::slice::from_ref(&segment)) {
            Item::Message(m) => match m.content {
                Content::Parts(mut parts) => parts.pop(),
                Content::Text(_) => None,
            },
            _ => None,
        };
        let sequence_number = self.sequence();
        out.push(if segment.refusal {
            Event::RefusalDone {
                item_id: item_id.clone(),
                output_index,
                content_index,
                refusal: segment.text,
                sequence_number,
            }
        } else {
            Event::OutputTextDone {
                item_id: item_id.clone(),
                output_index,
                content_index,
                text: segment.text,
                logprobs: Vec::new(),
                sequence_number,
            }
        });
        if let Some(part) = part {
            let sequence_number = self.sequence();
            out.push(Event::ContentPartDone {
                item_id,
                output_index,
                content_index,
                part,
                sequence_number,
            });
        }
    }

    fn close_current(&mut self, out: &mut Vec<Event>) {
        if let Some(i) = self.current.take() {
            self.close_item(i, false, out);
        }
    }

    /// Closes every open item, in output order (at the finish reason).
    fn close_all(&mut self, out: &mut Vec<Event>) {
        self.current = None;
        let (_, reason) = super::from_chat::status_for_finish(self.finish_reason.as_deref());
        for i in 0..self.slots.len() {
            if self.slots[i].open {
                self.close_item(i, reason.is_some(), out);
            }
        }
    }

    /// The `.done` events of item `index`. `cut`: the answer stopped short while this item
    /// was open (a message is then `incomplete`).
    fn close_item(&mut self, index: usize, cut: bool, out: &mut Vec<Event>) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if !slot.open {
            return;
        }
        slot.open = false;
        let output_index = index as u32;
        match slot.item.clone() {
            StreamItem::Message { .. } => {
                if cut && let StreamItem::Message { status, .. } = &mut slot.item {
                    *status = "incomplete";
                }
                self.close_part(index, out);
            }
            StreamItem::Reasoning { id, text } => {
                let sequence_number = self.sequence();
                out.push(Event::ReasoningSummaryTextDone {
                    item_id: id.clone(),
                    output_index,
                    summary_index: 0,
                    text: text.clone(),
                    sequence_number,
                });
                let sequence_number = self.sequence();
                out.push(Event::ReasoningSummaryPartDone {
                    item_id: id,
                    output_index,
                    summary_index: 0,
                    part: ReasoningPart::summary_text(text),
                    sequence_number,
                });
            }
            StreamItem::Tool {
                id,
                name,
                custom,
                arguments,
                ..
            } => {
                if custom {
                    let input = custom_tool_input(&arguments);
                    if arguments.trim_start().starts_with('{') && input == arguments {
                        self.notes.push(TranslationNote::new(
                            format!("output.{index}"),
                            format!(
                                "arguments of custom tool '{name}' have no string 'input'; \
                                 sent as its input"
                            ),
                        ));
                    }
                    if !input.is_empty() {
                        let sequence_number = self.sequence();
                        out.push(Event::CustomToolCallInputDelta {
                            item_id: id.clone(),
                            output_index,
                            delta: input.clone(),
                            sequence_number,
                        });
                    }
                    let sequence_number = self.sequence();
                    out.push(Event::CustomToolCallInputDone {
                        item_id: id,
                        output_index,
                        input,
                        sequence_number,
                    });
                } else {
                    let sequence_number = self.sequence();
                    out.push(Event::FunctionCallArgumentsDone {
                        item_id: id,
                        output_index,
                        arguments: if arguments.is_empty() {
                            "{}".into()
                        } else {
                            arguments
                        },
                        name: Some(name),
                        sequence_number,
                    });
                }
            }
        }
        // Function arguments that stayed empty are reported as "{}", as from_chat does.
        if let Some(Slot {
            item:
                StreamItem::Tool {
                    arguments,
                    custom: false,
                    ..
                },
            ..
        }) = self.slots.get_mut(index)
            && arguments.is_empty()
        {
            arguments.push_str("{}");
        }
        if let Some(item) = self.slots.get(index).map(|s| self.build(&s.item)) {
            let sequence_number = self.sequence();
            out.push(Event::OutputItemDone {
                output_index,
                item,
                sequence_number,
            });
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        self.close_all(out);
        if self.slots.is_empty() {
            // Nothing came back: one empty message, as the non-streaming translation answers.
            self.text_delta(false, String::new(), out);
            self.close_all(out);
        }
        let mut response = self.snapshot(ResponseStatus::Completed);
        set_status(&mut response, self.finish_reason.as_deref());
        response.usage = Some(match self.usage() {
            Some(u) => u,
            None => {
                self.notes.push(TranslationNote::new(
                    "usage",
                    "the upstream stream reported no usage; zeros reported",
                ));
                usage_from_chat(&Usage::default(), &self.details)
            }
        });
        let sequence_number = self.sequence();
        let boxed = Box::new(response.clone());
        out.push(if response.status == ResponseStatus::Incomplete {
            Event::Incomplete {
                response: boxed,
                sequence_number,
            }
        } else {
            Event::Completed {
                response: boxed,
                sequence_number,
            }
        });
        self.response = Some(response);
        self.done = true;
    }
}

/// An `error` event (`code` such as `server_error` or `rate_limit_exceeded`), numbered 0: for a
/// stream that fails before anything was sent. A started stream ends with
/// [`StreamTranslator::fail`].
pub fn error_event(code: &str, message: impl Into<String>) -> Event {
    Event::Error {
        code: Some(code.to_string()),
        message: message.into(),
        param: None,
        sequence_number: 0,
    }
}

/// An event as SSE: `event: <type>\ndata: <json>\n\n`.
pub fn encode_sse(event: &Event) -> Result<String, serde_json::Error> {
    let data = serde_json::to_string(event)?;
    let name = event.event_type();
    let name = if name.is_empty() || name.contains(['\r', '\n']) {
        "unknown"
    } else {
        name
    };
    Ok(format!("event: {name}\ndata: {data}\n\n"))
}

/// Rebuilds a `Response` from stream events as the OpenAI SDKs do: items by `output_index`,
/// text, refusal, arguments, custom tool input and reasoning summaries appended from their
/// deltas, each `.done` event checked against what the deltas built, and the terminal event's
/// Response taken as final (its output filled from the events when it carries none).
#[derive(Debug, Clone, Default)]
pub struct ResponseAccumulator {
    response: Option<Response>,
    last_sequence: Option<u64>,
    terminal: bool,
    error: Option<(Option<String>, String)>,
}

impl ResponseAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event. Fails on events that break the protocol: anything before
    /// `response.created` or after the terminal event, a sequence number that does not grow,
    /// an item or part index out of order, a delta for an item of another kind or id, a
    /// `.done` that disagrees with its deltas.
    pub fn push(&mut self, event: &Event) -> Result<(), String> {
        if let Some(n) = event.sequence_number() {
            if self.last_sequence.is_some_and(|last| n <= last) {
                return Err(format!(
                    "{} has sequence_number {n}, not above {:?}",
                    event.event_type(),
                    self.last_sequence
                ));
            }
            self.last_sequence = Some(n);
        }
        match event {
            Event::Other(_) => return Ok(()),
            Event::Error { code, message, .. } => {
                self.error = Some((code.clone(), message.clone()));
                return Ok(());
            }
            _ => {}
        }
        if self.terminal {
            return Err(format!("{} after the end", event.event_type()));
        }
        if let Event::Created { response, .. } = event {
            if self.response.is_some() {
                return Err("a second response.created".into());
            }
            self.response = Some((**response).clone());
            return Ok(());
        }
        let Some(response) = self.response.as_mut() else {
            return Err(format!("{} before response.created", event.event_type()));
        };
        match event {
            Event::InProgress { response: r, .. } => response.status = r.status.clone(),
            Event::Completed { response: r, .. }
            | Event::Incomplete { response: r, .. }
            | Event::Failed { response: r, .. } => {
                let mut last = (**r).clone();
                if last.output.is_empty() {
                    last.output = std::mem::take(&mut response.output);
                }
                *response = last;
                self.terminal = true;
            }
            Event::OutputItemAdded {
                output_index, item, ..
            } => {
                if *output_index as usize != response.output.len() {
                    return Err(format!(
                        "output_item.added at {output_index}, expected {}",
                        response.output.len()
                    ));
                }
                response.output.push(item.clone());
            }
            Event::OutputItemDone {
                output_index, item, ..
            } => {
                let slot = item_at(response, *output_index, item.id())?;
                check_done(slot, item)?;
                *slot = item.clone();
            }
            Event::ContentPartAdded {
                item_id,
                output_index,
                content_index,
                part,
                ..
            } => {
                let parts = message_parts(response, *output_index, item_id)?;
                if *content_index as usize != parts.len() {
                    return Err(format!(
                        "content_part.added at {content_index}, expected {}",
                        parts.len()
                    ));
                }
                parts.push(part.clone());
            }
            Event::ContentPartDone {
                item_id,
                output_index,
                content_index,
                part,
                ..
            } => {
                let slot = part_at(response, *output_index, item_id, *content_index)?;
                if slot.text() != part.text() {
                    return Err(format!(
                        "content_part.done of {item_id} disagrees with its deltas"
                    ));
                }
                *slot = part.clone();
            }
            Event::OutputTextDelta {
                item_id,
                output_index,
                content_index,
                delta,
                ..
            } => match part_at(response, *output_index, item_id, *content_index)? {
                ContentPart::OutputText(t) => t.text.push_str(delta),
                other => return Err(format!("output_text.delta for a {} part", other.kind())),
            },
            Event::OutputTextDone {
                item_id,
                output_index,
                content_index,
                text,
                ..
            } => match part_at(response, *output_index, item_id, *content_index)? {
                ContentPart::OutputText(t) if t.text == *text => {}
                _ => return Err(format!("output_text.done of {item_id} disagrees")),
            },
            Event::OutputTextAnnotationAdded {
                item_id,
                output_index,
                content_index,
                annotation,
                ..
            } => match part_at(response, *output_index, item_id, *content_index)? {
                ContentPart::OutputText(t) => t
                    .annotations
                    .get_or_insert_with(Vec::new)
                    .push(annotation.clone()),
                other => return Err(format!("annotation for a {} part", other.kind())),
            },
            Event::RefusalDelta {
                item_id,
                output_index,
                content_index,
                delta,
                ..
            } => match part_at(response, *output_index, item_id, *content_index)? {
                ContentPart::Refusal(r) => r.refusal.push_str(delta),
                other => return Err(format!("refusal.delta for a {} part", other.kind())),
            },
            Event::RefusalDone {
                item_id,
                output_index,
                content_index,
                refusal,
                ..
            } => match part_at(response, *output_index, item_id, *content_index)? {
                ContentPart::Refusal(r) if r.refusal == *refusal => {}
                _ => return Err(format!("refusal.done of {item_id} disagrees")),
            },
            Event::FunctionCallArgumentsDelta {
                item_id,
                output_index,
                delta,
                ..
            } => match item_at(response, *output_index, Some(item_id))? {
                Item::FunctionCall(c) => c.arguments.push_str(delta),
                other => {
                    return Err(format!(
                        "function_call_arguments.delta for a {} item",
                        other.kind()
                    ));
                }
            },
            Event::FunctionCallArgumentsDone {
                item_id,
                output_index,
                arguments,
                ..
            } => match item_at(response, *output_index, Some(item_id))? {
                // Arguments that stayed empty are reported as "{}".
                Item::FunctionCall(c)
                    if c.arguments == *arguments
                        || (c.arguments.is_empty() && arguments == "{}") =>
                {
                    c.arguments.clone_from(arguments);
                }
                _ => {
                    return Err(format!(
                        "function_call_arguments.done of {item_id} disagrees"
                    ));
                }
            },
            Event::CustomToolCallInputDelta {
                item_id,
                output_index,
                delta,
                ..
            } => match item_at(response, *output_index, Some(item_id))? {
                Item::CustomToolCall(c) => c.input.push_str(delta),
                other => {
                    return Err(format!(
                        "custom_tool_call_input.delta for a {} item",
                        other.kind()
                    ));
                }
            },
            Event::CustomToolCallInputDone {
                item_id,
                output_index,
                input,
                ..
            } => match item_at(response, *output_index, Some(item_id))? {
                Item::CustomToolCall(c) if c.input == *input => {}
                _ => {
                    return Err(format!(
                        "custom_tool_call_input.done of {item_id} disagrees"
                    ));
                }
            },
            Event::ReasoningSummaryPartAdded {
                item_id,
                output_index,
                summary_index,
                part,
                ..
            } => {
                let summary = summary_of(response, *output_index, item_id)?;
                if *summary_index as usize != summary.len() {
                    return Err(format!(
                        "reasoning_summary_part.added at {summary_index}, expected {}",
                        summary.len()
                    ));
                }
                summary.push(part.clone());
            }
            Event::ReasoningSummaryTextDelta {
                item_id,
                output_index,
                summary_index,
                delta,
                ..
            } => summary_part(response, *output_index, item_id, *summary_index)?
                .text
                .push_str(delta),
            Event::ReasoningSummaryTextDone {
                item_id,
                output_index,
                summary_index,
                text,
                ..
            } => {
                let part = summary_part(response, *output_index, item_id, *summary_index)?;
                if part.text != *text {
                    return Err(format!(
                        "reasoning_summary_text.done of {item_id} disagrees"
                    ));
                }
            }
            Event::ReasoningSummaryPartDone {
                item_id,
                output_index,
                summary_index,
                part,
                ..
            } => {
                let slot = summary_part(response, *output_index, item_id, *summary_index)?;
                if slot.text != part.text {
                    return Err(format!(
                        "reasoning_summary_part.done of {item_id} disagrees"
                    ));
                }
                *slot = part.clone();
            }
            Event::Created { .. } | Event::Error { .. } | Event::Other(_) => {}
        }
        Ok(())
    }

    /// Whether the terminal event (`response.completed`/`.incomplete`/`.failed`) has been seen.
    pub fn is_complete(&self) -> bool {
        self.terminal
    }

    /// The `error` event seen, if any: (`code`, `message`).
    pub fn error(&self) -> Option<(Option<&str>, &str)> {
        self.error.as_ref().map(|(c, m)| (c.as_deref(), m.as_str()))
    }

    /// The Response so far (`None` before `response.created`).
    pub fn into_response(self) -> Option<Response> {
        self.response
    }
}

fn item_at<'a>(
    response: &'a mut Response,
    output_index: u32,
    item_id: Option<&str>,
) -> Result<&'a mut Item, String> {
    let item = response
        .output
        .get_mut(output_index as usize)
        .ok_or_else(|| format!("no output item at {output_index}"))?;
    if item_id.is_some() && item.id() != item_id {
        return Err(format!(
            "output item {output_index} is {:?}, not {item_id:?}",
            item.id()
        ));
    }
    Ok(item)
}

fn message_parts<'a>(
    response: &'a mut Response,
    output_index: u32,
    item_id: &str,
) -> Result<&'a mut Vec<ContentPart>, String> {
    match item_at(response, output_index, Some(item_id))? {
        Item::Message(m) => {
            if let Content::Text(t) = &m.content {
                if !t.is_empty() {
                    return Err(format!("message {item_id} has string content"));
                }
                m.content = Content::Parts(Vec::new());
            }
            match &mut m.content {
                Content::Parts(parts) => Ok(parts),
                Content::Text(_) => Err(format!("message {item_id} has string content")),
            }
        }
        other => Err(format!("content part for a {} item", other.kind())),
    }
}

fn part_at<'a>(
    response: &'a mut Response,
    output_index: u32,
    item_id: &str,
    content_index: u32,
) -> Result<&'a mut ContentPart, String> {
    message_parts(response, output_index, item_id)?
        .get_mut(content_index as usize)
        .ok_or_else(|| format!("no content part {content_index} in {item_id}"))
}

fn summary_of<'a>(
    response: &'a mut Response,
    output_index: u32,
    item_id: &str,
) -> Result<&'a mut Vec<ReasoningPart>, String> {
    match item_at(response, output_index, Some(item_id))? {
        Item::Reasoning(r) => Ok(&mut r.summary),
        other => Err(format!("reasoning summary for a {} item", other.kind())),
    }
}

fn summary_part<'a>(
    response: &'a mut Response,
    output_index: u32,
    item_id: &str,
    summary_index: u32,
) -> Result<&'a mut ReasoningPart, String> {
    summary_of(response, output_index, item_id)?
        .get_mut(summary_index as usize)
        .ok_or_else(|| format!("no summary part {summary_index} in {item_id}"))
}

/// Checks an `output_item.done` item against what the deltas built (same kind; same text,
/// arguments, input and summary).
fn check_done(built: &Item, done: &Item) -> Result<(), String> {
    let agree = match (built, done) {
        (Item::Message(a), Item::Message(b)) => a.content.text() == b.content.text(),
        (Item::FunctionCall(a), Item::FunctionCall(b)) => {
            a.arguments == b.arguments || (a.arguments.is_empty() && b.arguments == "{}")
        }
        (Item::CustomToolCall(a), Item::CustomToolCall(b)) => a.input == b.input,
        (Item::Reasoning(a), Item::Reasoning(b)) => a
            .summary
            .iter()
            .map(|p| &p.text)
            .eq(b.summary.iter().map(|p| &p.text)),
        (a, b) => a.kind() == b.kind(),
    };
    if agree {
        Ok(())
    } else {
        Err(format!(
            "output_item.done of {:?} disagrees with its deltas",
            done.id()
        ))
    }
}
