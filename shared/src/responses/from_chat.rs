//! OpenAI `ChatCompletionResponse` → `Response`, and the rules streams share.
//!
//! - Output items, in OpenAI's order: reasoning (`reasoning_content`/`reasoning`) → one
//!   `reasoning` item with a `summary_text`; text (and `refusal`) → one `message` item with an
//!   `output_text` (and `refusal`) part; each tool call → a `function_call` item (or a
//!   `custom_tool_call` when it calls a custom tool of the request). An answer with none of
//!   these is one empty message.
//! - Item ids derive from the response id (`resp_X` → `msg_X`, `rs_X`, `fc_X_0`...), so a
//!   streamed and a non-streamed translation of the same answer are equal.
//! - `finish_reason` → status ([`status_for_finish`]); usage → Responses usage
//!   ([`usage_from_chat`]) with the cached and reasoning token counts the typed chat structs
//!   drop, read from the raw JSON ([`UsageDetails`]).
//! - [`ResponseContext`]: the response id, time and model, and the request fields a Response
//!   echoes.

use serde_json::{Map, Value, json};

use super::types::{
    Content, ContentPart, CustomToolCallItem, FunctionCallItem, IncompleteDetails,
    InputTokensDetails, Item, MessageItem, MessageRole, OutputTextPart, OutputTokensDetails,
    ReasoningConfig, ReasoningItem, ReasoningPart, RefusalPart, Response, ResponseStatus,
    ResponseUsage, ResponsesRequest, TextConfig, TextFormat, ToolChoice, ToolDefinition,
};
use crate::openai::{ChatCompletionChunk, ChatCompletionResponse, ToolCall, Usage};

/// Key of the single string argument a custom tool becomes as a chat function tool
/// (`{"input": "<the raw input>"}`).
pub const CUSTOM_TOOL_ARGUMENT: &str = "input";

/// A new response id: `resp_` and 32 random hex digits.
pub fn new_response_id(rng: &mut fastrand::Rng) -> String {
    format!("resp_{:016x}{:016x}", rng.u64(..), rng.u64(..))
}

/// What the answer reports and echoes: its id, time and model, and the request's settings
/// (a Response repeats `instructions`, `tools`, `tool_choice`, sampling, `text`, `reasoning`,
/// `metadata`...). Build it with [`ResponseContext::from_request`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseContext {
    /// `resp_...` ([`new_response_id`]); item ids derive from it.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The model to report (the name the client asked for); empty: the upstream's.
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: ToolChoice,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u64>,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub metadata: Map<String, Value>,
    pub text: Option<TextConfig>,
    pub reasoning: Option<ReasoningConfig>,
    pub parallel_tool_calls: bool,
    pub user: Option<String>,
}

impl ResponseContext {
    /// The context of an answer to `req`, with OpenAI's defaults for what the request left out
    /// (`tool_choice: "auto"`, `parallel_tool_calls: true`, `store: true`,
    /// `text.format: {type: "text"}`).
    pub fn from_request(req: &ResponsesRequest, id: impl Into<String>, created_at: u64) -> Self {
        ResponseContext {
            id: id.into(),
            created_at,
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            tools: req.tools.clone().unwrap_or_default(),
            tool_choice: req.tool_choice.clone().unwrap_or_default(),
            temperature: req.temperature,
            top_p: req.top_p,
            max_output_tokens: req.max_output_tokens,
            previous_response_id: req.previous_response_id.clone(),
            store: req.is_store(),
            metadata: req.metadata.clone().unwrap_or_default(),
            text: Some(req.text.clone().unwrap_or_else(|| TextConfig {
                format: Some(TextFormat::Text),
                ..TextConfig::default()
            })),
            reasoning: req.reasoning.clone(),
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            user: req.user.clone(),
        }
    }

    /// A Response with this context's echo fields, `status`, no output and no usage (what
    /// `response.created` carries).
    pub fn response(&self, status: ResponseStatus, model: &str) -> Response {
        Response {
            id: self.id.clone(),
            object: "response".into(),
            created_at: self.created_at,
            status,
            error: None,
            incomplete_details: None,
            instructions: self.instructions.clone().map(Value::String),
            max_output_tokens: self.max_output_tokens,
            model: if self.model.is_empty() {
                model.to_string()
            } else {
                self.model.clone()
            },
            output: Vec::new(),
            parallel_tool_calls: self.parallel_tool_calls,
            previous_response_id: self.previous_response_id.clone(),
            reasoning: self.reasoning.clone(),
            store: self.store,
            temperature: self.temperature,
            text: self.text.clone(),
            tool_choice: self.tool_choice.clone(),
            tools: self.tools.clone(),
            top_p: self.top_p,
            usage: None,
            user: self.user.clone(),
            metadata: self.metadata.clone(),
            extra: Map::new(),
        }
    }

    /// Whether `name` is a custom tool of the request (its calls are `custom_tool_call`s).
    pub fn is_custom_tool(&self, name: &str) -> bool {
        self.tools
            .iter()
            .any(|t| matches!(t, ToolDefinition::Custom(c) if c.name == name))
    }

    /// The id suffix shared by this response's items (`resp_X` → `X`).
    fn suffix(&self) -> &str {
        let s = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        if s.is_empty() { "routeiq" } else { s }
    }

    /// The id of the `n`th item of a kind (`msg`, `rs`): `msg_X`, then `msg_X_1`...
    pub(crate) fn item_id(&self, prefix: &str, n: usize) -> String {
        if n == 0 {
            format!("{prefix}_{}", self.suffix())
        } else {
            format!("{prefix}_{}_{n}", self.suffix())
        }
    }

    /// The item id of the `k`th tool call: `fc_X_k` (`ctc_X_k` for custom tools).
    pub(crate) fn call_item_id(&self, custom: bool, k: usize) -> String {
        let prefix = if custom { "ctc" } else { "fc" };
        format!("{prefix}_{}_{k}", self.suffix())
    }

    /// The `call_id` of the `k`th tool call when the upstream gave none.
    pub(crate) fn fallback_call_id(&self, k: usize) -> String {
        format!("call_{}_{k}", self.suffix())
    }
}

/// Usage facts the typed chat structs do not keep, read from the upstream's JSON with
/// [`UsageDetails::from_json`] (or [`parse_chat_response`]/[`parse_chat_chunk`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageDetails {
    /// Prompt tokens read from the cache: `usage.prompt_tokens_details.cached_tokens`
    /// (OpenAI), `usage.cache_read_input_tokens` (LiteLLM, Anthropic-backed),
    /// `usage.prompt_cache_hit_tokens` (DeepSeek).
    pub cached_tokens: Option<u64>,
    /// `usage.completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: Option<u64>,
}

impl UsageDetails {
    /// Reads the details of a `chat.completion` or `chat.completion.chunk` JSON.
    pub fn from_json(v: &Value) -> Self {
        let usage = v.get("usage").filter(|u| u.is_object());
        let first = |paths: &[&str]| {
            usage.and_then(|u| {
                paths
                    .iter()
                    .filter_map(|p| u.pointer(p).and_then(Value::as_u64))
                    .find(|n| *n > 0)
            })
        };
        UsageDetails {
            cached_tokens: first(&[
                "/prompt_tokens_details/cached_tokens",
                "/cache_read_input_tokens",
                "/prompt_cache_hit_tokens",
            ]),
            reasoning_tokens: first(&["/completion_tokens_details/reasoning_tokens"]),
        }
    }

    /// Takes what `newer` knows (streams report these on the usage chunk).
    pub fn update(&mut self, newer: &UsageDetails) {
        if newer.cached_tokens.is_some() {
            self.cached_tokens = newer.cached_tokens;
        }
        if newer.reasoning_tokens.is_some() {
            self.reasoning_tokens = newer.reasoning_tokens;
        }
    }
}

/// Parses an upstream `chat.completion` body and its [`UsageDetails`] in one pass.
pub fn parse_chat_response(
    body: &[u8],
) -> Result<(ChatCompletionResponse, UsageDetails), serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    let details = UsageDetails::from_json(&v);
    Ok((serde_json::from_value(v)?, details))
}

/// Parses one upstream SSE `data:` payload (a `chat.completion.chunk`) and its details.
pub fn parse_chat_chunk(
    data: &str,
) -> Result<(ChatCompletionChunk, UsageDetails), serde_json::Error> {
    let v: Value = serde_json::from_str(data)?;
    let details = UsageDetails::from_json(&v);
    Ok((serde_json::from_value(v)?, details))
}

/// Chat usage as Responses usage: `input_tokens` = prompt tokens (cached ones included, as
/// OpenAI counts them), `output_tokens` = completion tokens (reasoning included), the details
/// as reported (0 when unknown), `total_tokens` as reported (or the sum when the upstream
/// sent 0).
pub fn usage_from_chat(usage: &Usage, details: &UsageDetails) -> ResponseUsage {
    let total = if usage.total_tokens == 0 {
        usage.prompt_tokens.saturating_add(usage.completion_tokens)
    } else {
        usage.total_tokens
    };
    ResponseUsage {
        input_tokens: usage.prompt_tokens,
        input_tokens_details: InputTokensDetails {
            cached_tokens: details.cached_tokens.unwrap_or(0),
            extra: Map::new(),
        },
        output_tokens: usage.completion_tokens,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: details.reasoning_tokens.unwrap_or(0),
            extra: Map::new(),
        },
        total_tokens: total,
        extra: Map::new(),
    }
}

/// The status (and `incomplete_details.reason`) for a chat `finish_reason`: `length` →
/// incomplete (`max_output_tokens`), `content_filter` → incomplete (`content_filter`),
/// anything else (`stop`, `tool_calls`, none) → completed.
pub fn status_for_finish(finish_reason: Option<&str>) -> (ResponseStatus, Option<&'static str>) {
    match finish_reason {
        Some("length") => (ResponseStatus::Incomplete, Some("max_output_tokens")),
        Some("content_filter") => (ResponseStatus::Incomplete, Some("content_filter")),
        _ => (ResponseStatus::Completed, None),
    }
}

/// Sets status and `incomplete_details` on `response` for `finish_reason`.
pub(crate) fn set_status(response: &mut Response, finish_reason: Option<&str>) {
    let (status, reason) = status_for_finish(finish_reason);
    response.status = status;
    response.incomplete_details = reason.map(|r| IncompleteDetails {
        reason: Some(r.to_string()),
        extra: Map::new(),
    });
}

/// The reasoning text of a chat message or delta (`reasoning_content`, else `reasoning`).
pub(crate) fn reasoning_text(extra: &Map<String, Value>) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| extra.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// The refusal text of a chat message or delta.
pub(crate) fn refusal_text(extra: &Map<String, Value>) -> Option<&str> {
    extra
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Chat `annotations` (`{type: "url_citation", url_citation: {start_index, end_index, url,
/// title}}`) as Responses annotations (the citation fields flattened); other types as sent.
pub(crate) fn annotations(extra: &Map<String, Value>) -> Vec<Value> {
    extra
        .get("annotations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(
            |a| match (a.get("type").and_then(Value::as_str), a.get("url_citation")) {
                (Some("url_citation"), Some(Value::Object(c))) => {
                    let mut out = Map::new();
                    out.insert("type".into(), json!("url_citation"));
                    out.extend(c.clone());
                    Value::Object(out)
                }
                _ => a.clone(),
            },
        )
        .collect()
}

/// A custom tool call's raw input from its chat arguments: the `input` string of a JSON
/// object, else the arguments as sent.
pub fn custom_tool_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut o)) => match o.remove(CUSTOM_TOOL_ARGUMENT) {
            Some(Value::String(s)) => s,
            _ => arguments.to_string(),
        },
        _ => arguments.to_string(),
    }
}

/// A message content part as built by translations: output text or refusal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextSegment {
    pub refusal: bool,
    pub text: String,
    pub annotations: Vec<Value>,
}

/// An assistant `message` output item.
pub(crate) fn message_item(id: String, status: &str, segments: &[TextSegment]) -> Item {
    let parts = segments
        .iter()
        .map(|s| {
            if s.refusal {
                ContentPart::Refusal(RefusalPart {
                    refusal: s.text.clone(),
                    extra: Map::new(),
                })
            } else {
                ContentPart::OutputText(OutputTextPart {
                    annotations: Some(s.annotations.clone()),
                    ..OutputTextPart::new(s.text.clone())
                })
            }
        })
        .collect();
    Item::Message(MessageItem {
        kind: Some("message".into()),
        id: Some(id),
        role: MessageRole::Assistant,
        status: Some(status.to_string()),
        content: Content::Parts(parts),
        extra: Map::new(),
    })
}

/// A `reasoning` output item with one `summary_text`.
pub(crate) fn reasoning_item(id: String, text: &str) -> Item {
    Item::Reasoning(ReasoningItem {
        id: Some(id),
        summary: vec![ReasoningPart::summary_text(text)],
        content: None,
        encrypted_content: None,
        status: None,
        extra: Map::new(),
    })
}

/// A tool call output item: `function_call`, or `custom_tool_call` (`input` unwrapped from
/// the arguments) when `custom`.
pub(crate) fn call_item(
    id: String,
    call_id: String,
    name: String,
    arguments: &str,
    custom: bool,
    status: &str,
) -> Item {
    if custom {
        Item::CustomToolCall(CustomToolCallItem {
            id: Some(id),
            call_id,
            name,
            input: if status == "in_progress" {
                String::new()
            } else {
                custom_tool_input(arguments)
            },
            status: Some(status.to_string()),
            extra: Map::new(),
        })
    } else {
        Item::FunctionCall(FunctionCallItem {
            id: Some(id),
            call_id,
            name,
            arguments: arguments.to_string(),
            status: Some(status.to_string()),
            extra: Map::new(),
        })
    }
}

/// The call id of a chat tool call (its `id`, or a fallback when the upstream sent none).
fn call_id(call: &ToolCall, k: usize, ctx: &ResponseContext) -> String {
    call.id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| ctx.fallback_call_id(k))
}

/// Translates a chat completion into a Response (the first choice; others are dropped).
///
/// `details` carries the cached/reasoning token counts of the raw JSON
/// ([`parse_chat_response`]); pass `UsageDetails::default()` when the JSON is not at hand.
pub fn from_chat(
    resp: &ChatCompletionResponse,
    details: &UsageDetails,
    ctx: &ResponseContext,
) -> Response {
    let mut response = ctx.response(ResponseStatus::Completed, &resp.model);
    let choice = resp
        .choices
        .iter()
        .find(|c| c.index == 0)
        .or(resp.choices.first());
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    set_status(&mut response, finish);
    let incomplete = response.status == ResponseStatus::Incomplete;
    if let Some(choice) = choice {
        let msg = &choice.message;
        if let Some(reasoning) = reasoning_text(&msg.extra) {
            response
                .output
                .push(reasoning_item(ctx.item_id("rs", 0), reasoning));
        }
        let mut segments = Vec::new();
        if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
            segments.push(TextSegment {
                refusal: false,
                text: text.to_string(),
                annotations: annotations(&msg.extra),
            });
        }
        if let Some(refusal) = refusal_text(&msg.extra) {
            segments.push(TextSegment {
                refusal: true,
                text: refusal.to_string(),
                annotations: Vec::new(),
            });
        }
        let calls = msg.tool_calls.as_deref().unwrap_or_default();
        if !segments.is_empty() {
            // The message is the last item unless tool calls follow; only the last item is
            // cut short by a length or content-filter stop.
            let status = if incomplete && calls.is_empty() {
                "incomplete"
            } else {
                "completed"
            };
            response
                .output
                .push(message_item(ctx.item_id("msg", 0), status, &segments));
        }
        for (k, call) in calls.iter().enumerate() {
            let name = call.function.name.clone().unwrap_or_default();
            let custom = ctx.is_custom_tool(&name);
            let arguments = if call.function.arguments.is_empty() && !custom {
                "{}"
            } else {
                call.function.arguments.as_str()
            };
            response.output.push(call_item(
                ctx.call_item_id(custom, k),
                call_id(call, k, ctx),
                name,
                arguments,
                custom,
                "completed",
            ));
        }
    }
    if response.output.is_empty() {
        let status = if incomplete {
            "incomplete"
        } else {
            "completed"
        };
        response.output.push(message_item(
            ctx.item_id("msg", 0),
            status,
            &[TextSegment {
                refusal: false,
                text: String::new(),
                annotations: Vec::new(),
            }],
        ));
    }
    response.usage = Some(usage_from_chat(&resp.usage.unwrap_or_default(), details));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn ctx() -> ResponseContext {
        ResponseContext::from_request(
            &request(json!({
                "model": "claude-sonnet", "instructions": "be brief", "temperature": 0.2,
                "max_output_tokens": 500, "previous_response_id": "resp_prev", "store": false,
                "metadata": {"k": "v"}, "reasoning": {"effort": "low"}, "parallel_tool_calls": false,
                "tools": [
                    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
                    {"type": "custom", "name": "apply_patch"}
                ],
                "tool_choice": "required", "user": "u1"
            })),
            "resp_abc",
            1_700_000_000,
        )
    }

    fn translate(v: Value) -> Response {
        let (resp, details) = parse_chat_response(v.to_string().as_bytes()).unwrap();
        from_chat(&resp, &details, &ctx())
    }

    fn chat(message: Value, finish: &str) -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "upstream-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 60},
                      "completion_tokens_details": {"reasoning_tokens": 7}}
        })
    }

    #[test]
    fn text_answer_with_echo_fields_and_usage() {
        let r = translate(chat(
            json!({"role": "assistant", "content": "Hello!"}),
            "stop",
        ));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "id": "resp_abc", "object": "response", "created_at": 1_700_000_000u64,
                "status": "completed", "error": null, "incomplete_details": null,
                "instructions": "be brief", "max_output_tokens": 500, "model": "claude-sonnet",
                "output": [{"type": "message", "id": "msg_abc", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}]}],
                "parallel_tool_calls": false, "previous_response_id": "resp_prev",
                "reasoning": {"effort": "low"}, "store": false, "temperature": 0.2,
                "text": {"format": {"type": "text"}},
                "tool_choice": "required",
                "tools": [
                    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
                    {"type": "custom", "name": "apply_patch"}
                ],
                "top_p": null,
                "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60},
                          "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 7},
                          "total_tokens": 120},
                "user": "u1", "metadata": {"k": "v"}
            })
        );
        assert_eq!(r.output_text(), "Hello!");
    }

    #[test]
    fn reasoning_text_and_tool_calls_become_items_in_order() {
        let r = translate(chat(
            json!({"role": "assistant", "content": "Running it.", "reasoning_content": "Need ls.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}},
                {"type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\\n*** End Patch\"}"}},
                {"id": "call_3", "type": "function", "function": {"name": "shell", "arguments": ""}}
            ]}),
            "tool_calls",
        ));
        let v = serde_json::to_value(&r.output).unwrap();
        assert_eq!(
            v,
            json!([
                {"type": "reasoning", "id": "rs_abc", "summary": [{"type": "summary_text", "text": "Need ls."}]},
                {"type": "message", "id": "msg_abc", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Running it.", "annotations": []}]},
                {"type": "function_call", "id": "fc_abc_0", "call_id": "call_1", "name": "shell",
                 "arguments": "{\"command\":[\"ls\"]}", "status": "completed"},
                {"type": "custom_tool_call", "id": "ctc_abc_1", "call_id": "call_abc_1", "name": "apply_patch",
                 "input": "*** Begin Patch\n*** End Patch", "status": "completed"},
                {"type": "function_call", "id": "fc_abc_2", "call_id": "call_3", "name": "shell",
                 "arguments": "{}", "status": "completed"}
            ])
        );
        assert_eq!(r.status, ResponseStatus::Completed);
    }

    #[test]
    fn length_and_content_filter_are_incomplete() {
        let r = translate(chat(
            json!({"role": "assistant", "content": "cut"}),
            "length",
        ));
        assert_eq!(r.status, ResponseStatus::Incomplete);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(v["output"][0]["status"], "incomplete");

        let r = translate(chat(
            json!({"role": "assistant", "content": null}),
            "content_filter",
        ));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], "content_filter");
        // Nothing came back: one empty message.
        assert_eq!(v["output"][0]["content"][0]["text"], "");
    }

    #[test]
    fn refusal_and_annotations() {
        let r = translate(chat(
            json!({"role": "assistant", "content": "See x.", "refusal": "Not that part.",
                   "annotations": [{"type": "url_citation", "url_citation": {"start_index": 4, "end_index": 5, "url": "https://x", "title": "X"}}]}),
            "stop",
        ));
        let v = serde_json::to_value(&r.output[0]).unwrap();
        assert_eq!(
            v["content"],
            json!([
                {"type": "output_text", "text": "See x.", "annotations": [
                    {"type": "url_citation", "start_index": 4, "end_index": 5, "url": "https://x", "title": "X"}
                ]},
                {"type": "refusal", "refusal": "Not that part."}
            ])
        );
    }

    #[test]
    fn usage_details_from_other_spellings_and_missing_usage() {
        let d = UsageDetails::from_json(
            &json!({"usage": {"prompt_tokens": 9, "cache_read_input_tokens": 4}}),
        );
        assert_eq!(d.cached_tokens, Some(4));
        let d = UsageDetails::from_json(&json!({"usage": {"prompt_cache_hit_tokens": 3}}));
        assert_eq!(d.cached_tokens, Some(3));
        let u = usage_from_chat(
            &Usage {
                prompt_tokens: 5,
                completion_tokens: 6,
                total_tokens: 0,
            },
            &UsageDetails::default(),
        );
        assert_eq!(u.total_tokens, 11);

        let mut body = chat(json!({"role": "assistant", "content": "x"}), "stop");
        body.as_object_mut().unwrap().remove("usage");
        let r = translate(body);
        assert_eq!(r.usage, Some(ResponseUsage::default()));
    }

    #[test]
    fn model_defaults_to_the_upstream_one_and_ids_are_random() {
        let mut c = ctx();
        c.model.clear();
        let (resp, d) = parse_chat_response(
            chat(json!({"role": "assistant", "content": "x"}), "stop")
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(from_chat(&resp, &d, &c).model, "upstream-model");
        let mut rng = fastrand::Rng::with_seed(7);
        let a = new_response_id(&mut rng);
        let b = new_response_id(&mut rng);
        assert!(a.starts_with("resp_") && a.len() == 37, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn custom_tool_input_unwraps_or_keeps_the_raw_arguments() {
        assert_eq!(custom_tool_input("{\"input\":\"a\\nb\"}"), "a\nb");
        assert_eq!(custom_tool_input("not json"), "not json");
        assert_eq!(custom_tool_input("{\"other\":1}"), "{\"other\":1}");
    }
}
