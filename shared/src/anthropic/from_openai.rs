//! OpenAI `ChatCompletionResponse` → Anthropic `Message`, and the rules streams share.
//!
//! - Content: reasoning (`reasoning_content`/`reasoning`, or LiteLLM's `thinking_blocks`) →
//!   thinking blocks, text → a text block, `refusal` → a text block, `tool_calls` → tool_use
//!   blocks (arguments parsed, see [`parse_tool_arguments`]; shortened names restored).
//! - `finish_reason` → `stop_reason` ([`stop_reason_for_finish`]); usage → Anthropic usage with
//!   cached prompt tokens apart ([`usage_from_openai`]).
//! - [`UpstreamExtras`]: what RouteIQ's typed OpenAI structs drop but the translation wants
//!   (cached-token counts, vLLM's matched stop string), read from the raw JSON.

use serde_json::{Map, Value, json};

use super::TranslationNote;
use super::names::ToolNameMap;
use super::types::{
    ContentBlock, Message, MessageUsage, RedactedThinkingBlock, StopReason, ThinkingBlock,
    ToolUseBlock,
};
use crate::openai::{ChatCompletionChunk, ChatCompletionResponse, ToolCall, Usage};

/// Key of the object a tool_use `input` becomes when the upstream's arguments are not a JSON
/// object: `{"_raw_arguments": "<the arguments as sent>"}` (Anthropic requires an object; the
/// client's schema check then reports the bad call to the model instead of losing it).
pub const RAW_ARGUMENTS_KEY: &str = "_raw_arguments";

/// What the way back needs to know about the request, and how to name the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranslationContext {
    /// The `model` to report (e.g. the name the client asked for); default: the upstream's.
    pub model: Option<String>,
    /// The message id to report; default: derived from the upstream id ([`message_id`]).
    pub message_id: Option<String>,
    /// Tool names shortened for OpenAI, restored in tool_use blocks.
    pub tool_names: ToolNameMap,
    /// Prompt tokens to report in `message_start` when the upstream has not said yet (e.g.
    /// [`estimate_input_tokens`](super::to_openai::estimate_input_tokens)); default 0.
    pub input_tokens_hint: Option<u64>,
}

/// Facts the typed OpenAI structs do not keep: prompt-cache counts and the stop string a vLLM
/// server reports as `choices[].stop_reason`. Read them with [`UpstreamExtras::from_json`] (or
/// [`parse_response`]/[`parse_chunk`]) from the upstream's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamExtras {
    /// Prompt tokens read from the cache: `usage.prompt_tokens_details.cached_tokens`
    /// (OpenAI), `usage.cache_read_input_tokens` (LiteLLM), `usage.prompt_cache_hit_tokens`
    /// (DeepSeek).
    pub cache_read_tokens: Option<u64>,
    /// Prompt tokens written to the cache: `usage.cache_creation_input_tokens` (LiteLLM),
    /// `usage.prompt_tokens_details.cache_creation_tokens`/`cache_write_tokens`.
    pub cache_creation_tokens: Option<u64>,
    /// The stop sequence that ended generation, when the upstream says (vLLM's
    /// `choices[0].stop_reason` string).
    pub matched_stop_sequence: Option<String>,
}

impl UpstreamExtras {
    /// Reads the extras of a `chat.completion` or `chat.completion.chunk` JSON.
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
        UpstreamExtras {
            cache_read_tokens: first(&[
                "/prompt_tokens_details/cached_tokens",
                "/cache_read_input_tokens",
                "/prompt_cache_hit_tokens",
            ]),
            cache_creation_tokens: first(&[
                "/cache_creation_input_tokens",
                "/prompt_tokens_details/cache_creation_tokens",
                "/prompt_tokens_details/cache_write_tokens",
            ]),
            matched_stop_sequence: v
                .pointer("/choices/0/stop_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    /// Takes what `newer` knows (streams report these on one chunk or another).
    pub fn update(&mut self, newer: &UpstreamExtras) {
        if newer.cache_read_tokens.is_some() {
            self.cache_read_tokens = newer.cache_read_tokens;
        }
        if newer.cache_creation_tokens.is_some() {
            self.cache_creation_tokens = newer.cache_creation_tokens;
        }
        if newer.matched_stop_sequence.is_some() {
            self.matched_stop_sequence = newer.matched_stop_sequence.clone();
        }
    }
}

/// Parses an upstream `chat.completion` body and its [`UpstreamExtras`] in one pass.
pub fn parse_response(
    body: &[u8],
) -> Result<(ChatCompletionResponse, UpstreamExtras), serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    let extras = UpstreamExtras::from_json(&v);
    Ok((serde_json::from_value(v)?, extras))
}

/// Parses one upstream SSE `data:` payload (a `chat.completion.chunk`) and its extras.
pub fn parse_chunk(data: &str) -> Result<(ChatCompletionChunk, UpstreamExtras), serde_json::Error> {
    let v: Value = serde_json::from_str(data)?;
    let extras = UpstreamExtras::from_json(&v);
    Ok((serde_json::from_value(v)?, extras))
}

/// A translated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FromOpenAi {
    pub message: Message,
    pub notes: Vec<TranslationNote>,
}

/// `msg_` + the upstream id without its `chatcmpl-` prefix (`msg_routeiq` when empty).
pub fn message_id(upstream_id: &str) -> String {
    let id = upstream_id.strip_prefix("chatcmpl-").unwrap_or(upstream_id);
    if id.is_empty() {
        "msg_routeiq".into()
    } else if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

/// Anthropic's `stop_reason` (and `stop_sequence`) for an OpenAI `finish_reason`:
/// `stop` → `end_turn` (`stop_sequence` when the matched stop string is known), `length` →
/// `max_tokens`, `tool_calls`/`function_call` → `tool_use`, `content_filter` → `refusal`,
/// anything else or none → `end_turn`. A stop (or none) after tool calls is `tool_use`: some
/// OpenAI-compatible servers answer tool calls with `stop`, and Anthropic clients run tools on
/// `tool_use`.
pub fn stop_reason_for_finish(
    finish_reason: Option<&str>,
    has_tool_use: bool,
    matched_stop_sequence: Option<&str>,
) -> (StopReason, Option<String>) {
    match finish_reason {
        Some("length") => (StopReason::MaxTokens, None),
        Some("tool_calls" | "function_call") => (StopReason::ToolUse, None),
        Some("content_filter") => (StopReason::Refusal, None),
        _ if has_tool_use => (StopReason::ToolUse, None),
        Some("stop") => match matched_stop_sequence {
            Some(s) => (StopReason::StopSequence, Some(s.to_string())),
            None => (StopReason::EndTurn, None),
        },
        _ => (StopReason::EndTurn, None),
    }
}

/// The OpenAI `finish_reason` for an Anthropic `stop_reason` (the other direction, for
/// translating Anthropic answers to OpenAI): `max_tokens`/`model_context_window_exceeded` →
/// `length`, `tool_use` → `tool_calls`, `refusal` → `content_filter`, the rest → `stop`.
pub fn finish_reason_for_stop(stop_reason: &StopReason) -> &'static str {
    match stop_reason {
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::Refusal => "content_filter",
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::PauseTurn
        | StopReason::Other(_) => "stop",
    }
}

/// OpenAI usage as Anthropic's: `input_tokens` = prompt tokens − cache reads − cache writes
/// (Anthropic counts them apart), `output_tokens` = completion tokens (reasoning included),
/// the cache counts as reported (0 when unknown).
pub fn usage_from_openai(usage: &Usage, extras: &UpstreamExtras) -> MessageUsage {
    let read = extras.cache_read_tokens.unwrap_or(0);
    let creation = extras.cache_creation_tokens.unwrap_or(0);
    MessageUsage {
        input_tokens: usage
            .prompt_tokens
            .saturating_sub(read)
            .saturating_sub(creation),
        output_tokens: usage.completion_tokens,
        cache_creation_input_tokens: Some(creation),
        cache_read_input_tokens: Some(read),
        extra: Map::new(),
    }
}

/// A tool call's arguments as a tool_use `input`: empty → `{}`, a JSON object → itself,
/// anything else → `{"_raw_arguments": "<as sent>"}` ([`RAW_ARGUMENTS_KEY`]). The flag says
/// whether the raw rule applied.
pub fn parse_tool_arguments(arguments: &str) -> (Value, bool) {
    if arguments.trim().is_empty() {
        return (json!({}), false);
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => (v, false),
        _ => (json!({ RAW_ARGUMENTS_KEY: arguments }), true),
    }
}

/// The id of the `k`th tool call of a message when the upstream gave none.
pub(crate) fn fallback_tool_id(message_id: &str, k: usize) -> String {
    format!(
        "toolu_{}_{k}",
        message_id.strip_prefix("msg_").unwrap_or(message_id)
    )
}

/// The reasoning text of a message or delta (`reasoning_content`, else `reasoning`).
pub(crate) fn reasoning_text(extra: &Map<String, Value>) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| extra.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// The refusal text of a message or delta.
pub(crate) fn refusal_text(extra: &Map<String, Value>) -> Option<&str> {
    extra
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Translates an OpenAI chat completion into an Anthropic Message (the first choice; others
/// are dropped with a note).
pub fn from_openai(
    resp: &ChatCompletionResponse,
    extras: &UpstreamExtras,
    ctx: &TranslationContext,
) -> FromOpenAi {
    let mut notes = Vec::new();
    let id = ctx
        .message_id
        .clone()
        .unwrap_or_else(|| message_id(&resp.id));
    let model = ctx.model.clone().unwrap_or_else(|| resp.model.clone());
    let choice = resp
        .choices
        .iter()
        .find(|c| c.index == 0)
        .or(resp.choices.first());
    if resp.choices.len() > 1 {
        notes.push(TranslationNote::new(
            "choices",
            format!(
                "{} choices; Anthropic messages carry one, the rest dropped",
                resp.choices.len()
            ),
        ));
    }
    let mut content = Vec::new();
    let mut refused = false;
    let mut finish = None;
    if let Some(choice) = choice {
        let msg = &choice.message;
        finish = choice.finish_reason.as_deref();
        thinking_blocks(&msg.extra, &mut content);
        if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(ContentBlock::text(text));
        }
        if let Some(refusal) = refusal_text(&msg.extra) {
            content.push(ContentBlock::text(refusal));
            refused = true;
        }
        for (k, call) in msg.tool_calls.iter().flatten().enumerate() {
            content.push(tool_use_block(call, k, &id, ctx, &mut notes));
        }
    } else {
        notes.push(TranslationNote::new(
            "choices",
            "the upstream answered no choices; the message is empty",
        ));
    }
    let has_tool_use = content
        .iter()
        .any(|b| matches!(b, ContentBlock::ToolUse(_)));
    let (mut stop_reason, stop_sequence) = stop_reason_for_finish(
        finish,
        has_tool_use,
        extras.matched_stop_sequence.as_deref(),
    );
    if refused && stop_reason == StopReason::EndTurn {
        stop_reason = StopReason::Refusal;
    }
    let usage = match &resp.usage {
        Some(u) => usage_from_openai(u, extras),
        None => {
            notes.push(TranslationNote::new(
                "usage",
                "the upstream reported no usage; zeros reported",
            ));
            usage_from_openai(&Usage::default(), extras)
        }
    };
    FromOpenAi {
        message: Message {
            stop_reason: Some(stop_reason),
            stop_sequence,
            content,
            ..Message::empty(id, model, usage)
        },
        notes,
    }
}

/// Thinking blocks from LiteLLM's `thinking_blocks` (with signatures) or from
/// `reasoning_content`/`reasoning` (signature empty: OpenAI-compatible models have none).
fn thinking_blocks(extra: &Map<String, Value>, content: &mut Vec<ContentBlock>) {
    let from_blocks: Vec<ContentBlock> = extra
        .get("thinking_blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| match b.get("type").and_then(Value::as_str) {
            Some("thinking") => Some(ContentBlock::Thinking(ThinkingBlock {
                thinking: b
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                signature: Some(
                    b.get("signature")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                extra: Map::new(),
            })),
            Some("redacted_thinking") => {
                Some(ContentBlock::RedactedThinking(RedactedThinkingBlock {
                    data: b
                        .get("data")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    extra: Map::new(),
                }))
            }
            _ => None,
        })
        .collect();
    if !from_blocks.is_empty() {
        content.extend(from_blocks);
    } else if let Some(text) = reasoning_text(extra) {
        content.push(ContentBlock::Thinking(ThinkingBlock {
            thinking: text.to_string(),
            signature: Some(String::new()),
            extra: Map::new(),
        }));
    }
}

fn tool_use_block(
    call: &ToolCall,
    k: usize,
    message_id: &str,
    ctx: &TranslationContext,
    notes: &mut Vec<TranslationNote>,
) -> ContentBlock {
    let name = ctx
        .tool_names
        .original(call.function.name.as_deref().unwrap_or_default())
        .to_string();
    let (input, raw) = parse_tool_arguments(&call.function.arguments);
    if raw {
        notes.push(TranslationNote::new(
            format!("choices.0.message.tool_calls.{k}.function.arguments"),
            format!("arguments of '{name}' are not a JSON object; kept under {RAW_ARGUMENTS_KEY}"),
        ));
    }
    ContentBlock::ToolUse(ToolUseBlock {
        id: call
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| fallback_tool_id(message_id, k)),
        name,
        input,
        cache_control: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(v: Value) -> (ChatCompletionResponse, UpstreamExtras) {
        parse_response(v.to_string().as_bytes()).unwrap()
    }

    fn translate(v: Value, ctx: &TranslationContext) -> FromOpenAi {
        let (resp, extras) = response(v);
        from_openai(&resp, &extras, ctx)
    }

    fn base(message: Value, finish: &str) -> Value {
        json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 60}}
        })
    }

    #[test]
    fn text_answer() {
        let out = translate(
            base(json!({"role": "assistant", "content": "Hello!"}), "stop"),
            &TranslationContext::default(),
        );
        let v = serde_json::to_value(&out.message).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [{"type": "text", "text": "Hello!"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 40, "output_tokens": 20,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60}
            })
        );
        assert!(out.notes.is_empty());
    }

    #[test]
    fn tool_calls_become_tool_use_with_restored_names() {
        let mut ctx = TranslationContext {
            model: Some("claude-sonnet-4-5".into()),
            ..TranslationContext::default()
        };
        let long = "mcp__server__".to_string() + &"x".repeat(80);
        let openai_name = ctx.tool_names.register(&long);
        let out = translate(
            base(
                json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"type": "function", "function": {"name": openai_name, "arguments": ""}},
                    {"id": "call_3", "type": "function", "function": {"name": "broken", "arguments": "{\"a\":"}}
                ]}),
                "tool_calls",
            ),
            &ctx,
        );
        let m = &out.message;
        assert_eq!(m.model, "claude-sonnet-4-5");
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
        assert!(matches!(&m.content[0], ContentBlock::Text(t) if t.text == "Checking."));
        let ContentBlock::ToolUse(a) = &m.content[1] else {
            panic!("tool_use expected")
        };
        assert_eq!((a.id.as_str(), a.name.as_str()), ("call_1", "get_weather"));
        assert_eq!(a.input, json!({"city": "Paris"}));
        let ContentBlock::ToolUse(b) = &m.content[2] else {
            panic!("tool_use expected")
        };
        assert_eq!(b.id, "toolu_abc_1");
        assert_eq!(b.name, long);
        assert_eq!(b.input, json!({}));
        let ContentBlock::ToolUse(c) = &m.content[3] else {
            panic!("tool_use expected")
        };
        assert_eq!(c.input, json!({"_raw_arguments": "{\"a\":"}));
        assert_eq!(out.notes.len(), 1);
        assert_eq!(
            out.notes[0].path,
            "choices.0.message.tool_calls.2.function.arguments"
        );
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        let cases = [
            (Some("stop"), false, None, StopReason::EndTurn),
            (Some("length"), false, None, StopReason::MaxTokens),
            (Some("tool_calls"), true, None, StopReason::ToolUse),
            (Some("function_call"), true, None, StopReason::ToolUse),
            (Some("content_filter"), false, None, StopReason::Refusal),
            (Some("stop"), true, None, StopReason::ToolUse),
            (None, true, None, StopReason::ToolUse),
            (Some("length"), true, None, StopReason::MaxTokens),
            (Some("weird"), false, None, StopReason::EndTurn),
            (None, false, None, StopReason::EndTurn),
            (Some("stop"), false, Some("END"), StopReason::StopSequence),
        ];
        for (finish, tools, stop, expected) in cases {
            let (reason, seq) = stop_reason_for_finish(finish, tools, stop);
            assert_eq!(reason, expected, "{finish:?} {tools} {stop:?}");
            assert_eq!(seq.is_some(), expected == StopReason::StopSequence);
        }
    }

    #[test]
    fn stop_reasons_map_back_to_finish_reasons() {
        for (finish, tools) in [
            ("stop", false),
            ("length", false),
            ("tool_calls", true),
            ("content_filter", false),
        ] {
            let (reason, _) = stop_reason_for_finish(Some(finish), tools, None);
            assert_eq!(finish_reason_for_stop(&reason), finish);
        }
        assert_eq!(
            finish_reason_for_stop(&StopReason::ModelContextWindowExceeded),
            "length"
        );
        assert_eq!(finish_reason_for_stop(&StopReason::PauseTurn), "stop");
        assert_eq!(finish_reason_for_stop(&StopReason::StopSequence), "stop");
    }

    #[test]
    fn vllm_stop_string_and_refusal_and_reasoning() {
        let mut v = base(
            json!({"role": "assistant", "content": "partial", "reasoning_content": "think think"}),
            "stop",
        );
        v["choices"][0]["stop_reason"] = json!("</answer>");
        let out = translate(v, &TranslationContext::default());
        assert_eq!(out.message.stop_reason, Some(StopReason::StopSequence));
        assert_eq!(out.message.stop_sequence.as_deref(), Some("</answer>"));
        assert!(
            matches!(&out.message.content[0], ContentBlock::Thinking(t) if t.thinking == "think think" && t.signature.as_deref() == Some(""))
        );
        assert!(matches!(&out.message.content[1], ContentBlock::Text(t) if t.text == "partial"));

        let out = translate(
            base(
                json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
                "stop",
            ),
            &TranslationContext::default(),
        );
        assert_eq!(out.message.stop_reason, Some(StopReason::Refusal));
        assert!(
            matches!(&out.message.content[0], ContentBlock::Text(t) if t.text == "I can't help with that.")
        );

        let out = translate(
            base(
                json!({"role": "assistant", "content": "x", "thinking_blocks": [
                {"type": "thinking", "thinking": "a", "signature": "sig"},
                {"type": "redacted_thinking", "data": "enc"}
            ], "reasoning_content": "a"}),
                "stop",
            ),
            &TranslationContext::default(),
        );
        assert!(
            matches!(&out.message.content[0], ContentBlock::Thinking(t) if t.signature.as_deref() == Some("sig"))
        );
        assert!(
            matches!(&out.message.content[1], ContentBlock::RedactedThinking(r) if r.data == "enc")
        );
        assert_eq!(out.message.content.len(), 3);
    }

    #[test]
    fn usage_and_cache_extras() {
        let extras = UpstreamExtras::from_json(&json!({"usage": {
            "prompt_tokens": 10, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4
        }}));
        assert_eq!(extras.cache_read_tokens, Some(3));
        assert_eq!(extras.cache_creation_tokens, Some(4));
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 2,
            total_tokens: 12,
        };
        let u = usage_from_openai(&usage, &extras);
        assert_eq!((u.input_tokens, u.output_tokens), (3, 2));
        assert_eq!(u.total_input_tokens(), 10);
        let deepseek = UpstreamExtras::from_json(&json!({"usage": {"prompt_cache_hit_tokens": 7}}));
        assert_eq!(deepseek.cache_read_tokens, Some(7));
        assert_eq!(
            UpstreamExtras::from_json(&json!({"usage": null})),
            UpstreamExtras::default()
        );

        let mut v = base(json!({"role": "assistant", "content": "x"}), "stop");
        v.as_object_mut().unwrap().remove("usage");
        let out = translate(v, &TranslationContext::default());
        assert_eq!(out.message.usage.input_tokens, 0);
        assert_eq!(out.notes[0].path, "usage");
    }

    #[test]
    fn ids_and_empty_answers() {
        assert_eq!(message_id("chatcmpl-xyz"), "msg_xyz");
        assert_eq!(message_id("msg_1"), "msg_1");
        assert_eq!(message_id(""), "msg_routeiq");
        assert_eq!(message_id("gen-1"), "msg_gen-1");
        let mut v = base(json!({"role": "assistant", "content": ""}), "stop");
        v["choices"] = json!([]);
        let ctx = TranslationContext {
            message_id: Some("msg_fixed".into()),
            ..TranslationContext::default()
        };
        let out = translate(v, &ctx);
        assert_eq!(out.message.id, "msg_fixed");
        assert!(out.message.content.is_empty());
        assert_eq!(out.message.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(out.notes[0].path, "choices");
    }

    #[test]
    fn tool_argument_rule() {
        assert_eq!(parse_tool_arguments("  "), (json!({}), false));
        assert_eq!(parse_tool_arguments("{\"a\":1}"), (json!({"a": 1}), false));
        assert_eq!(
            parse_tool_arguments("[1]"),
            (json!({"_raw_arguments": "[1]"}), true)
        );
        assert_eq!(
            parse_tool_arguments("nope"),
            (json!({"_raw_arguments": "nope"}), true)
        );
    }
}
