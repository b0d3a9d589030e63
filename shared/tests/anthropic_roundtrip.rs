//! Property tests of the Anthropic ↔ OpenAI translation: generated conversations (text,
//! tool_use and tool_result turns, long and odd tool names) translate to OpenAI chat with no
//! text, tool call (id, name, arguments) or tool result lost; a generated OpenAI answer comes
//! back as an Anthropic Message with nothing lost, streamed (in random fragments) or not, and
//! the stream obeys Anthropic's event order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use proptest::prelude::*;
use routeiq::anthropic::from_openai::{from_openai, parse_chunk, parse_response};
use routeiq::anthropic::names::openai_tool_name;
use routeiq::anthropic::to_openai::TOOL_ERROR_PREFIX;
use routeiq::anthropic::{
    ContentBlock, Message, MessageAccumulator, MessagesRequest, StopReason, StreamEvent,
    StreamTranslator, encode_sse, to_openai,
};
use routeiq::openai::{ChatMessage, MessageContent, Role};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Call {
    name: String,
    input: Value,
}

#[derive(Debug, Clone)]
struct Exchange {
    assistant_text: Vec<String>,
    calls: Vec<Call>,
    /// One (text, is_error) per call.
    results: Vec<(String, bool)>,
    user_text: Vec<String>,
}

#[derive(Debug, Clone)]
struct Answer {
    text: String,
    calls: Vec<Call>,
    prompt: u64,
    cached: u64,
    completion: u64,
    /// Fragment sizes for streaming text and arguments.
    cuts: Vec<usize>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,!?]{0,24}",
        "\\PC{0,16}",
        Just("line one\nline two".to_string()),
    ]
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9_]{0,15}",
        1 => "mcp__[a-z]{3,8}__[a-z_]{60,80}",
        1 => "[a-z]{1,5}[.:/][a-z]{1,5}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn input() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn call() -> impl Strategy<Value = Call> {
    (tool_name(), input()).prop_map(|(name, input)| Call { name, input })
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(call(), 0..4),
        prop::collection::vec(text(), 0..2),
    )
        .prop_flat_map(|(assistant_text, calls, user_text)| {
            let n = calls.len();
            (
                Just(assistant_text),
                Just(calls),
                prop::collection::vec((text(), any::<bool>()), n),
                Just(user_text),
            )
        })
        .prop_map(|(assistant_text, calls, results, user_text)| Exchange {
            assistant_text,
            calls,
            results,
            user_text,
        })
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        text(),
        prop::collection::vec(call(), 0..4),
        0u64..100_000,
        0u64..=100,
        0u64..10_000,
        prop::collection::vec(1usize..7, 1..12),
    )
        .prop_map(
            |(text, calls, prompt, cached_pct, completion, cuts)| Answer {
                text,
                calls,
                prompt,
                cached: prompt * cached_pct / 100,
                completion,
                cuts,
            },
        )
}

fn tool_id(turn: usize, k: usize) -> String {
    format!("toolu_{turn:02}_{k}")
}

/// The Anthropic request for a first user message and the exchanges after it.
fn request(first: &[String], exchanges: &[Exchange], answer: &Answer) -> Value {
    let text_blocks = |texts: &[String]| -> Vec<Value> {
        texts
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect()
    };
    let mut messages = vec![json!({"role": "user", "content": text_blocks(first)})];
    let mut names: Vec<&str> = Vec::new();
    for (turn, ex) in exchanges.iter().enumerate() {
        let mut blocks = text_blocks(&ex.assistant_text);
        for (k, c) in ex.calls.iter().enumerate() {
            blocks.push(json!({"type": "tool_use", "id": tool_id(turn, k), "name": c.name, "input": c.input}));
            names.push(&c.name);
        }
        if blocks.is_empty() {
            blocks.push(json!({"type": "text", "text": "(nothing)"}));
        }
        messages.push(json!({"role": "assistant", "content": blocks}));
        let mut user: Vec<Value> = ex
            .results
            .iter()
            .enumerate()
            .map(|(k, (t, is_error))| {
                json!({"type": "tool_result", "tool_use_id": tool_id(turn, k), "content": [{"type": "text", "text": t}], "is_error": is_error})
            })
            .collect();
        user.extend(text_blocks(&ex.user_text));
        if user.is_empty() {
            user.push(json!({"type": "text", "text": "(go on)"}));
        }
        messages.push(json!({"role": "user", "content": user}));
    }
    names.extend(answer.calls.iter().map(|c| c.name.as_str()));
    names.sort_unstable();
    names.dedup();
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "description": "d", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}))
        .collect();
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": true,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": messages, "tools": tools,
    })
}

/// The text of an OpenAI message (`None` when absent).
fn content_text(m: &ChatMessage) -> Option<String> {
    m.content.as_ref().map(MessageContent::as_text)
}

/// Splits `s` at the char boundaries `cuts` cycle through (at least one piece).
fn fragments(s: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    let mut k = 0;
    while at < chars.len() {
        let len = cuts[k % cuts.len()].min(chars.len() - at);
        out.push(chars[at..at + len].iter().collect());
        at += len;
        k += 1;
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

fn chunk_json(choices: Value, usage: Option<Value>) -> String {
    let mut c = json!({"id": "chatcmpl-rt", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": choices});
    if let Some(u) = usage {
        c["usage"] = u;
    }
    c.to_string()
}

/// Checks Anthropic's event order: message_start, then blocks each started before its deltas
/// and stopped before the next starts (indexes 0, 1, 2...), then message_delta, message_stop.
fn check_protocol(events: &[StreamEvent]) -> Result<(), TestCaseError> {
    let first = matches!(events.first(), Some(StreamEvent::MessageStart { .. }));
    prop_assert!(first, "the stream must open with message_start");
    let last = matches!(events.last(), Some(StreamEvent::MessageStop));
    prop_assert!(last, "the stream must end with message_stop");
    let delta = matches!(
        events.get(events.len().saturating_sub(2)),
        Some(StreamEvent::MessageDelta { .. })
    );
    prop_assert!(delta, "message_delta must come right before message_stop");
    let mut open: Option<u32> = None;
    let mut next = 0u32;
    for e in &events[1..events.len() - 2] {
        match e {
            StreamEvent::ContentBlockStart { index, .. } => {
                prop_assert!(
                    open.is_none(),
                    "block {index} starts while {open:?} is open"
                );
                prop_assert_eq!(*index, next);
                open = Some(*index);
                next += 1;
            }
            StreamEvent::ContentBlockDelta { index, .. } => prop_assert_eq!(Some(*index), open),
            StreamEvent::ContentBlockStop { index } => {
                prop_assert_eq!(Some(*index), open);
                open = None;
            }
            other => prop_assert!(false, "unexpected {other:?} inside the message"),
        }
    }
    prop_assert!(open.is_none());
    for e in events {
        let sse = encode_sse(e).unwrap();
        let head = format!("event: {}\ndata: {{", e.event_type());
        prop_assert!(sse.starts_with(&head), "bad SSE head: {sse}");
        prop_assert!(sse.ends_with("}\n\n"), "bad SSE tail: {sse}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conversations_translate_without_loss(
        first in prop::collection::vec(text(), 1..3),
        exchanges in prop::collection::vec(exchange(), 0..4),
        answer in answer(),
    ) {
        let body = request(&first, &exchanges, &answer);
        let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        // The parsed request serializes back to what was sent (pass-through loses nothing).
        prop_assert_eq!(serde_json::to_value(&req).unwrap(), body);
        let t = to_openai(&req).unwrap();
        let out = &t.request.messages;

        // Expected OpenAI messages, in order.
        let mut at = 0usize;
        prop_assert_eq!(out[at].role, Role::System);
        prop_assert_eq!(content_text(&out[at]), Some("sys".to_string()));
        at += 1;
        prop_assert_eq!(out[at].role, Role::User);
        prop_assert_eq!(content_text(&out[at]), Some(first.join("\n")));
        at += 1;
        for (turn, ex) in exchanges.iter().enumerate() {
            let m = &out[at];
            prop_assert_eq!(m.role, Role::Assistant);
            let expected_text = if ex.assistant_text.is_empty() && ex.calls.is_empty() {
                Some("(nothing)".to_string())
            } else if ex.assistant_text.is_empty() {
                None
            } else {
                Some(ex.assistant_text.join("\n"))
            };
            prop_assert_eq!(content_text(m), expected_text);
            let calls = m.tool_calls.clone().unwrap_or_default();
            prop_assert_eq!(calls.len(), ex.calls.len());
            for (k, (got, want)) in calls.iter().zip(&ex.calls).enumerate() {
                prop_assert_eq!(got.id.clone(), Some(tool_id(turn, k)));
                let name = got.function.name.clone().unwrap();
                prop_assert!(name.len() <= 64);
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                prop_assert_eq!(t.context.tool_names.original(&name), want.name.as_str());
                let args: Value = serde_json::from_str(&got.function.arguments).unwrap();
                prop_assert_eq!(&args, &want.input);
            }
            at += 1;
            for (k, (text, is_error)) in ex.results.iter().enumerate() {
                let m = &out[at];
                prop_assert_eq!(m.role, Role::Tool);
                prop_assert_eq!(m.tool_call_id.clone(), Some(tool_id(turn, k)));
                let prefix = if *is_error { TOOL_ERROR_PREFIX } else { "" };
                prop_assert_eq!(content_text(m), Some(format!("{prefix}{text}")));
                at += 1;
            }
            if !ex.user_text.is_empty() || ex.results.is_empty() {
                let m = &out[at];
                prop_assert_eq!(m.role, Role::User);
                let expected = if ex.user_text.is_empty() { "(go on)".to_string() } else { ex.user_text.join("\n") };
                prop_assert_eq!(content_text(m), Some(expected));
                at += 1;
            }
        }
        prop_assert_eq!(at, out.len());
        let tools = t.request.tools.clone().unwrap_or_default();
        for tool in &tools {
            prop_assert!(tool.function.name.len() <= 64);
        }
        prop_assert!(t.notes.iter().any(|n| n.path == "cache_control"));
        prop_assert_eq!(t.request.stream_options.as_ref().and_then(|o| o.include_usage), Some(true));

        // The answer, non-streaming.
        let openai_name = |c: &Call| openai_tool_name(&c.name).into_owned();
        let tool_calls: Vec<Value> = answer.calls.iter().enumerate().map(|(k, c)| json!({
            "id": format!("call_{k}"), "type": "function",
            "function": {"name": openai_name(c), "arguments": c.input.to_string()}
        })).collect();
        let finish = if answer.calls.is_empty() { "stop" } else { "tool_calls" };
        let usage = json!({"prompt_tokens": answer.prompt, "completion_tokens": answer.completion,
                           "total_tokens": answer.prompt + answer.completion,
                           "prompt_tokens_details": {"cached_tokens": answer.cached}});
        let mut message = json!({"role": "assistant", "content": answer.text});
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::from(tool_calls);
        }
        let resp_body = json!({"id": "chatcmpl-rt", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
        let (resp, extras) = parse_response(resp_body.to_string().as_bytes()).unwrap();
        let back = from_openai(&resp, &extras, &t.context);
        prop_assert!(back.notes.is_empty(), "{:?}", back.notes);
        let m: &Message = &back.message;
        let mut blocks = m.content.iter();
        if !answer.text.is_empty() {
            prop_assert!(matches!(blocks.next(), Some(ContentBlock::Text(b)) if b.text == answer.text));
        }
        for (k, c) in answer.calls.iter().enumerate() {
            let Some(ContentBlock::ToolUse(b)) = blocks.next() else {
                return Err(TestCaseError::fail("tool_use expected"));
            };
            prop_assert_eq!(&b.id, &format!("call_{k}"));
            prop_assert_eq!(&b.name, &c.name);
            prop_assert_eq!(&b.input, &c.input);
        }
        prop_assert!(blocks.next().is_none());
        let expected_stop = if answer.calls.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse };
        prop_assert_eq!(m.stop_reason.clone(), Some(expected_stop));
        prop_assert_eq!(m.usage.total_input_tokens(), answer.prompt);
        prop_assert_eq!(m.usage.cache_read_input_tokens, Some(answer.cached));
        prop_assert_eq!(m.usage.input_tokens, answer.prompt - answer.cached);
        prop_assert_eq!(m.usage.output_tokens, answer.completion);

        // The same answer streamed in fragments: the accumulated events equal the message.
        let mut chunks = vec![chunk_json(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]), None)];
        for piece in fragments(&answer.text, &answer.cuts) {
            chunks.push(chunk_json(json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]), None));
        }
        for (k, c) in answer.calls.iter().enumerate() {
            for (j, piece) in fragments(&c.input.to_string(), &answer.cuts).into_iter().enumerate() {
                let mut call = json!({"index": k, "function": {"arguments": piece}});
                if j == 0 {
                    call["id"] = json!(format!("call_{k}"));
                    call["type"] = json!("function");
                    call["function"]["name"] = json!(openai_name(c));
                }
                chunks.push(chunk_json(json!([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]), None));
            }
        }
        chunks.push(chunk_json(json!([{"index": 0, "delta": {}, "finish_reason": finish}]), None));
        chunks.push(chunk_json(json!([]), Some(usage)));
        let mut translator = StreamTranslator::new(t.context.clone());
        let mut events = Vec::new();
        for data in &chunks {
            let (chunk, extras) = parse_chunk(data).unwrap();
            events.extend(translator.push_with_extras(&chunk, &extras));
        }
        prop_assert!(translator.is_done());
        events.extend(translator.finish());
        prop_assert!(translator.notes().is_empty(), "{:?}", translator.notes());
        check_protocol(&events)?;
        let mut acc = MessageAccumulator::new();
        for e in &events {
            acc.push(e).map_err(TestCaseError::fail)?;
        }
        prop_assert!(acc.is_complete());
        prop_assert_eq!(&acc.into_message().unwrap(), m);
    }

    /// Whatever OpenAI-shaped chunks arrive (any order of text, reasoning, tool deltas with or
    /// without ids and indexes, finish reasons, usage), the events obey the protocol and the
    /// accumulator accepts them.
    #[test]
    fn arbitrary_chunk_sequences_keep_the_protocol(
        steps in prop::collection::vec(
            prop_oneof![
                text().prop_map(|t| json!({"content": t})),
                text().prop_map(|t| json!({"reasoning_content": t})),
                (prop::option::of(0u32..3), prop::option::of("[a-z]{1,3}"), prop::option::of(tool_name()), "\\PC{0,6}")
                    .prop_map(|(index, id, name, args)| {
                        let mut call = json!({"function": {"arguments": args}});
                        if let Some(i) = index { call["index"] = json!(i); }
                        if let Some(id) = id { call["id"] = json!(id); }
                        if let Some(n) = name { call["function"]["name"] = json!(n); }
                        json!({"tool_calls": [call]})
                    }),
            ],
            0..20,
        ),
        finish in prop::option::of(prop_oneof![Just("stop"), Just("length"), Just("tool_calls"), Just("content_filter")]),
        with_usage in any::<bool>(),
    ) {
        let mut translator = StreamTranslator::new(Default::default());
        let mut events = Vec::new();
        for d in &steps {
            let (c, x) = parse_chunk(&chunk_json(json!([{"index": 0, "delta": d, "finish_reason": null}]), None)).unwrap();
            events.extend(translator.push_with_extras(&c, &x));
        }
        if let Some(f) = finish {
            let (c, _) = parse_chunk(&chunk_json(json!([{"index": 0, "delta": {}, "finish_reason": f}]), None)).unwrap();
            events.extend(translator.push(&c));
        }
        if with_usage {
            let usage = json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11});
            let (c, _) = parse_chunk(&chunk_json(json!([]), Some(usage))).unwrap();
            events.extend(translator.push(&c));
        }
        events.extend(translator.finish());
        prop_assert!(translator.is_done());
        let mut acc = MessageAccumulator::new();
        for e in &events {
            acc.push(e).map_err(TestCaseError::fail)?;
        }
        let m = acc.into_message().unwrap();
        // Every text and reasoning fragment arrives, in order.
        let text: String = steps.iter().filter_map(|d| d["content"].as_str()).collect();
        let got: String = m.content.iter().filter_map(|b| match b { ContentBlock::Text(t) => Some(t.text.as_str()), _ => None }).collect();
        prop_assert_eq!(got, text);
        let thinking: String = steps.iter().filter_map(|d| d["reasoning_content"].as_str()).collect();
        let got: String = m.content.iter().filter_map(|b| match b { ContentBlock::Thinking(t) => Some(t.thinking.as_str()), _ => None }).collect();
        prop_assert_eq!(got, thinking);
        // Tool arguments may reach an earlier block out of order (noted); otherwise the order
        // holds.
        if !translator.notes().iter().any(|n| n.message.contains("out of order")) {
            check_protocol(&events)?;
        }
    }
}
