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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::from_chat::{from_chat, parse_chat_chunk, parse_chat_response};
    use crate::responses::types::ResponsesRequest;
    use serde_json::json;

    fn ctx_with(req: Value) -> ResponseContext {
        let req: ResponsesRequest = serde_json::from_value(req).unwrap();
        ResponseContext::from_request(&req, "resp_s1", 1_700_000_000)
    }

    fn ctx() -> ResponseContext {
        ctx_with(json!({"model": "my-model", "input": "x", "tools": [
            {"type": "function", "name": "get_weather"},
            {"type": "custom", "name": "apply_patch"}
        ]}))
    }

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

    fn run(t: &mut StreamTranslator, chunks: &[ChatCompletionChunk]) -> Vec<Event> {
        let mut events: Vec<Event> = chunks.iter().flat_map(|c| t.push(c)).collect();
        events.extend(t.finish());
        events
    }

    /// Event types, with the output index for item events.
    fn types(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let name = e.event_type().trim_start_matches("response.").to_string();
                match e {
                    Event::OutputItemAdded {
                        output_index, item, ..
                    }
                    | Event::OutputItemDone {
                        output_index, item, ..
                    } => format!("{name}{output_index}:{}", item.kind()),
                    _ => name,
                }
            })
            .collect()
    }

    fn accumulate(events: &[Event]) -> Response {
        let mut acc = ResponseAccumulator::new();
        for e in events {
            acc.push(e).unwrap();
        }
        assert!(acc.is_complete());
        acc.into_response().unwrap()
    }

    #[test]
    fn text_stream_with_usage_after_finish() {
        let mut t = StreamTranslator::new(ctx());
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
                "created",
                "in_progress",
                "output_item.added0:message",
                "content_part.added",
                "output_text.delta",
                "output_text.delta",
                "output_text.done",
                "content_part.done",
                "output_item.done0:message",
                "completed"
            ]
        );
        let numbers: Vec<u64> = events.iter().filter_map(Event::sequence_number).collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
        assert!(t.is_done());
        assert!(t.notes().is_empty(), "{:?}", t.notes());
        let created = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(created["response"]["status"], "in_progress");
        assert_eq!(created["response"]["model"], "my-model");
        assert_eq!(created["response"]["output"], json!([]));
        assert!(created["response"]["usage"].is_null());
        assert_eq!(
            serde_json::to_value(&events[4]).unwrap(),
            json!({"type": "response.output_text.delta", "item_id": "msg_s1", "output_index": 0,
                   "content_index": 0, "delta": "Hel", "logprobs": [], "sequence_number": 4})
        );
        let r = accumulate(&events);
        assert_eq!(r.output_text(), "Hello");
        assert_eq!(r.status, ResponseStatus::Completed);
        let usage = r.usage.as_ref().unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (12, 3));
        assert_eq!(t.response(), Some(&r));
        // Nothing more after the end.
        assert!(t.push(&delta(json!({"content": "late"}))).is_empty());
        assert!(t.finish().is_empty());
    }

    #[test]
    fn reasoning_text_and_tool_calls_including_a_custom_tool() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(
            &mut t,
            &[
                delta(json!({"role": "assistant", "reasoning_content": "Let me "})),
                delta(json!({"reasoning_content": "think."})),
                delta(json!({"content": "I'll check."})),
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
                    json!({"tool_calls": [{"index": 1, "id": "call_p", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin"}}]}),
                ),
                delta(
                    json!({"tool_calls": [{"index": 1, "function": {"arguments": " Patch\"}"}}]}),
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
                "created",
                "in_progress",
                "output_item.added0:reasoning",
                "reasoning_summary_part.added",
                "reasoning_summary_text.delta",
                "reasoning_summary_text.delta",
                "reasoning_summary_text.done",
                "reasoning_summary_part.done",
                "output_item.done0:reasoning",
                "output_item.added1:message",
                "content_part.added",
                "output_text.delta",
                "output_text.done",
                "content_part.done",
                "output_item.done1:message",
                "output_item.added2:function_call",
                "function_call_arguments.delta",
                "function_call_arguments.delta",
                "output_item.added3:custom_tool_call",
                "function_call_arguments.done",
                "output_item.done2:function_call",
                "custom_tool_call_input.delta",
                "custom_tool_call_input.done",
                "output_item.done3:custom_tool_call",
                "completed"
            ]
        );
        let r = accumulate(&events);
        assert_eq!(
            serde_json::to_value(&r.output).unwrap(),
            json!([
                {"type": "reasoning", "id": "rs_s1", "summary": [{"type": "summary_text", "text": "Let me think."}]},
                {"type": "message", "id": "msg_s1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "I'll check.", "annotations": []}]},
                {"type": "function_call", "id": "fc_s1_0", "call_id": "call_a", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
                {"type": "custom_tool_call", "id": "ctc_s1_1", "call_id": "call_p", "name": "apply_patch",
                 "input": "*** Begin Patch", "status": "completed"}
            ])
        );
        // output_item.added carries the in-progress items.
        let added = serde_json::to_value(&events[15]).unwrap();
        assert_eq!(added["item"]["status"], "in_progress");
        assert_eq!(added["item"]["arguments"], "");
        let done = serde_json::to_value(&events[19]).unwrap();
        assert_eq!(done["name"], "get_weather");
    }

    #[test]
    fn stream_equals_the_non_streaming_translation() {
        let body = json!({
            "id": "chatcmpl-eq", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok",
                "reasoning_content": "hm", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"a\":[1,2]}"}},
                {"id": "c2", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"x\"}"}}
            ]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37,
                      "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 2}}
        });
        let (resp, details) = parse_chat_response(body.to_string().as_bytes()).unwrap();
        let expected = from_chat(&resp, &details, &ctx());
        let raw = [
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hm"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"o"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"k"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"a\":[1,"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"2]}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"x\"}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"chatcmpl-eq","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        ];
        let mut t = StreamTranslator::new(ctx());
        let mut events = Vec::new();
        for data in raw {
            let (c, d) = parse_chat_chunk(data).unwrap();
            events.extend(t.push_with_details(&c, &d));
        }
        assert!(t.is_done());
        let streamed = accumulate(&events);
        assert_eq!(streamed, expected);
        let usage = streamed.usage.unwrap();
        assert_eq!(usage.input_tokens_details.cached_tokens, 10);
        assert_eq!(usage.output_tokens_details.reasoning_tokens, 2);
    }

    #[test]
    fn stream_without_finish_reason_or_usage_still_ends() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(&mut t, &[delta(json!({"content": "cut"}))]);
        assert_eq!(
            events.last().map(Event::event_type),
            Some("response.completed")
        );
        let r = accumulate(&events);
        assert_eq!(r.output_text(), "cut");
        assert_eq!(r.usage, Some(Default::default()));
        let paths: Vec<&str> = t.notes().iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["finish_reason", "usage"]);

        // A stream that produced nothing is one empty message, as from_chat answers.
        let mut t = StreamTranslator::new(ctx());
        let events = t.finish();
        assert_eq!(
            types(&events),
            [
                "created",
                "in_progress",
                "output_item.added0:message",
                "content_part.added",
                "output_text.done",
                "content_part.done",
                "output_item.done0:message",
                "completed"
            ]
        );
        let r = accumulate(&events);
        assert_eq!(r.output.len(), 1);
        assert_eq!(r.output_text(), "");
    }

    #[test]
    fn length_waits_for_usage_and_ends_incomplete() {
        let mut t = StreamTranslator::new(ctx());
        let mut events = t.push(&delta(json!({"content": "a"})));
        let at_finish = t.push(&finish("length"));
        assert_eq!(
            types(&at_finish),
            [
                "output_text.done",
                "content_part.done",
                "output_item.done0:message"
            ]
        );
        events.extend(at_finish);
        assert!(!t.is_done());
        let end = t.push(&usage(5, 1));
        assert_eq!(types(&end), ["incomplete"]);
        events.extend(end);
        let r = accumulate(&events);
        assert_eq!(r.status, ResponseStatus::Incomplete);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(v["output"][0]["status"], "incomplete");
    }

    #[test]
    fn tool_calls_without_index_with_a_reused_index_and_late_arguments() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(
            &mut t,
            &[
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"k\":"}}]}),
                ),
                // Another call at the same index, with its own id.
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
                // A call at a new index.
                delta(
                    json!({"tool_calls": [{"index": 7, "id": "late", "function": {"name": "l", "arguments": "{}"}}]}),
                ),
                finish("stop"),
            ],
        );
        let r = accumulate(&events);
        let calls: Vec<(String, String, String)> = r
            .output
            .iter()
            .filter_map(|i| match i {
                Item::FunctionCall(c) => {
                    Some((c.call_id.clone(), c.name.clone(), c.arguments.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("a".into(), "f".into(), "{\"k\":".into()),
                ("b".into(), "g".into(), "{\"x\":1}".into()),
                ("c".into(), "h".into(), "{\"y\":2}".into()),
                ("call_s1_3".into(), "noid".into(), "{}".into()),
                ("late".into(), "l".into(), "{}".into()),
            ]
        );
        assert_eq!(r.status, ResponseStatus::Completed);

        // Arguments of an earlier call arriving after a later call started still reach it.
        let mut t = StreamTranslator::new(ctx());
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
        let r = accumulate(&events);
        assert!(
            matches!(&r.output[0], Item::FunctionCall(c) if c.arguments == "{\"k\":1}"),
            "{:?}",
            r.output
        );
    }

    #[test]
    fn refusal_annotations_and_content_filter() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(
            &mut t,
            &[
                delta(json!({"content": "See x."})),
                delta(
                    json!({"annotations": [{"type": "url_citation", "url_citation": {"start_index": 4, "end_index": 5, "url": "https://x", "title": "X"}}]}),
                ),
                delta(json!({"refusal": "I can't "})),
                delta(json!({"refusal": "say more."})),
                finish("content_filter"),
            ],
        );
        assert!(types(&events).contains(&"output_text.annotation.added".to_string()));
        assert!(types(&events).contains(&"refusal.done".to_string()));
        let r = accumulate(&events);
        assert_eq!(r.status, ResponseStatus::Incomplete);
        assert_eq!(
            serde_json::to_value(&r.output[0]).unwrap()["content"],
            json!([
                {"type": "output_text", "text": "See x.", "annotations": [
                    {"type": "url_citation", "start_index": 4, "end_index": 5, "url": "https://x", "title": "X"}]},
                {"type": "refusal", "refusal": "I can't say more."}
            ])
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["incomplete_details"]["reason"], "content_filter");
    }

    #[test]
    fn other_choices_are_dropped_with_a_note() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(
            &mut t,
            &[chunk(json!({"choices": [
                {"index": 0, "delta": {"content": "zero"}, "finish_reason": null},
                {"index": 1, "delta": {"content": "one"}, "finish_reason": null}
            ]}))],
        );
        assert_eq!(accumulate(&events).output_text(), "zero");
        assert_eq!(t.notes()[0].path, "choices");
    }

    #[test]
    fn failure_mid_stream_sends_error_then_response_failed() {
        let mut t = StreamTranslator::new(ctx());
        let mut events = t.push(&delta(json!({"content": "partial"})));
        let failed = t.fail("server_error", "upstream reset");
        assert_eq!(types(&failed), ["error", "failed"]);
        events.extend(failed);
        assert!(t.is_done());
        assert!(t.finish().is_empty());
        let mut acc = ResponseAccumulator::new();
        for e in &events {
            acc.push(e).unwrap();
        }
        assert_eq!(acc.error(), Some((Some("server_error"), "upstream reset")));
        let r = acc.into_response().unwrap();
        assert_eq!(r.status, ResponseStatus::Failed);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["error"],
            json!({"code": "server_error", "message": "upstream reset"})
        );
        assert_eq!(r.output_text(), "partial");

        // Before anything was sent: response.created first.
        let mut t = StreamTranslator::new(ctx());
        assert_eq!(
            types(&t.fail("rate_limit_exceeded", "slow down")),
            ["created", "in_progress", "error", "failed"]
        );
    }

    #[test]
    fn sse_encoding_and_error_events() {
        let e = error_event("server_error", "boom");
        assert_eq!(
            encode_sse(&e).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\",\"param\":null,\"sequence_number\":0}\n\n"
        );
        let d = Event::FunctionCallArgumentsDelta {
            item_id: "fc_1".into(),
            output_index: 2,
            delta: "{\"a\"".into(),
            sequence_number: 9,
        };
        assert_eq!(
            encode_sse(&d).unwrap(),
            "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"{\\\"a\\\"\",\"sequence_number\":9}\n\n"
        );
        let weird = Event::Other(json!({"type": "a\nb"}));
        assert!(encode_sse(&weird).unwrap().starts_with("event: unknown\n"));
    }

    /// A real OpenAI stream (text, a function call, obfuscation padding) parses into these
    /// types and accumulates into the Response its last event carries.
    #[test]
    fn openai_stream_parses_and_accumulates() {
        let response = |status: &str, output: Value, usage: Value| {
            json!({"id": "resp_1", "object": "response", "created_at": 1741290958, "status": status,
                   "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
                   "model": "gpt-4.1-2025-04-14", "output": output, "parallel_tool_calls": true,
                   "previous_response_id": null, "reasoning": {"effort": null, "summary": null}, "store": true,
                   "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
                   "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": null, "metadata": {}})
        };
        let message = json!({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi there"}]});
        let call = json!({"id": "fc_1", "type": "function_call", "status": "completed",
            "arguments": "{\"city\":\"Paris\"}", "call_id": "call_1", "name": "get_weather"});
        let usage = json!({"input_tokens": 37, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 11,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 48});
        let data = [
            json!({"type": "response.created", "sequence_number": 0, "response": response("in_progress", json!([]), Value::Null)}),
            json!({"type": "response.in_progress", "sequence_number": 1, "response": response("in_progress", json!([]), Value::Null)}),
            json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
                   "item": {"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}),
            json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}),
            json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "delta": "Hi", "logprobs": [], "obfuscation": "pad1"}),
            json!({"type": "response.output_text.delta", "sequence_number": 5, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "delta": " there", "logprobs": [], "obfuscation": "pad2"}),
            json!({"type": "response.output_text.done", "sequence_number": 6, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "text": "Hi there", "logprobs": []}),
            json!({"type": "response.content_part.done", "sequence_number": 7, "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi there"}}),
            json!({"type": "response.output_item.done", "sequence_number": 8, "output_index": 0, "item": message}),
            json!({"type": "response.output_item.added", "sequence_number": 9, "output_index": 1,
                   "item": {"id": "fc_1", "type": "function_call", "status": "in_progress", "arguments": "", "call_id": "call_1", "name": "get_weather"}}),
            json!({"type": "response.function_call_arguments.delta", "sequence_number": 10, "item_id": "fc_1", "output_index": 1, "delta": "{\"city\":", "obfuscation": "p"}),
            json!({"type": "response.function_call_arguments.delta", "sequence_number": 11, "item_id": "fc_1", "output_index": 1, "delta": "\"Paris\"}", "obfuscation": "q"}),
            json!({"type": "response.function_call_arguments.done", "sequence_number": 12, "item_id": "fc_1", "output_index": 1, "arguments": "{\"city\":\"Paris\"}"}),
            json!({"type": "response.output_item.done", "sequence_number": 13, "output_index": 1, "item": call}),
            json!({"type": "response.completed", "sequence_number": 14, "response": response("completed", json!([message, call]), usage)}),
        ];
        let mut acc = ResponseAccumulator::new();
        for d in &data {
            let event: Event = serde_json::from_value(d.clone()).unwrap();
            assert!(!matches!(event, Event::Other(_)), "{d}");
            acc.push(&event).unwrap();
        }
        let r = acc.into_response().unwrap();
        assert_eq!(r.output_text(), "Hi there");
        assert_eq!(r.usage.as_ref().map(|u| u.total_tokens), Some(48));
        assert_eq!(
            serde_json::to_value(&r.output).unwrap(),
            json!([message, call])
        );
    }

    #[test]
    fn accumulator_rejects_protocol_violations() {
        let mut t = StreamTranslator::new(ctx());
        let events = run(&mut t, &[delta(json!({"content": "ab"})), finish("stop")]);
        // Anything before response.created.
        let mut acc = ResponseAccumulator::new();
        assert!(acc.push(&events[2]).is_err());
        // A sequence number that does not grow.
        let mut acc = ResponseAccumulator::new();
        acc.push(&events[0]).unwrap();
        assert!(acc.push(&events[0]).is_err());
        // A delta for the wrong item, a done that disagrees, events after the end.
        let mut acc = ResponseAccumulator::new();
        for e in &events[..5] {
            acc.push(e).unwrap();
        }
        let wrong = Event::OutputTextDone {
            item_id: "msg_s1".into(),
            output_index: 0,
            content_index: 0,
            text: "abc".into(),
            logprobs: Vec::new(),
            sequence_number: 100,
        };
        assert!(acc.push(&wrong).is_err());
        let wrong_item = Event::FunctionCallArgumentsDelta {
            item_id: "msg_s1".into(),
            output_index: 0,
            delta: "x".into(),
            sequence_number: 101,
        };
        assert!(acc.push(&wrong_item).is_err());
        let mut acc = ResponseAccumulator::new();
        for e in &events {
            acc.push(e).unwrap();
        }
        let late = Event::OutputTextDelta {
            item_id: "msg_s1".into(),
            output_index: 0,
            content_index: 0,
            delta: "x".into(),
            logprobs: Vec::new(),
            sequence_number: 1000,
        };
        assert!(acc.push(&late).is_err());
    }
}
