//! Property tests of the Responses ↔ chat translation: generated conversations (messages,
//! reasoning, function and custom tool calls and their outputs, split at random between the
//! stored history and the new input) translate to a valid chat request with no text or call
//! (call_id, name, arguments) lost; a generated chat answer comes back as a Response with
//! nothing lost, streamed (in random fragments) or not, the stream obeys the event protocol
//! and accumulates into the non-streaming Response; and the turn, stored as JSON, carries the
//! answer's text and calls into the next turn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashSet;

use proptest::prelude::*;
use routeiq::openai::{ChatMessage, MessageContent, Role};
use routeiq::responses::from_chat::{parse_chat_chunk, parse_chat_response};
use routeiq::responses::{
    Content, ContentPart, Item, Response, ResponseAccumulator, ResponseContext, ResponseStatus,
    ResponseStreamEvent, ResponsesRequest, StreamTranslator, encode_sse, from_chat,
    items_for_next_turn, to_chat,
};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum CallKind {
    /// A function call and its arguments (a JSON object).
    Function(Value),
    /// A custom tool call and its raw input.
    Custom(String),
}

#[derive(Debug, Clone)]
struct Call {
    name: String,
    kind: CallKind,
}

impl Call {
    fn is_custom(&self) -> bool {
        matches!(self.kind, CallKind::Custom(_))
    }

    /// The chat arguments of this call, parsed.
    fn chat_arguments(&self) -> Value {
        match &self.kind {
            CallKind::Function(args) => args.clone(),
            CallKind::Custom(input) => json!({ "input": input }),
        }
    }
}

#[derive(Debug, Clone)]
struct Exchange {
    reasoning: Option<String>,
    text: Option<String>,
    calls: Vec<Call>,
    /// One per call.
    outputs: Vec<String>,
    user_text: Option<String>,
}

#[derive(Debug, Clone)]
struct Answer {
    reasoning: Option<String>,
    text: String,
    calls: Vec<Call>,
    cut_short: bool,
    prompt: u64,
    cached: u64,
    completion: u64,
    reasoning_tokens: u64,
    /// Fragment sizes for streaming text, reasoning and arguments.
    cuts: Vec<usize>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,!?]{0,24}",
        "\\PC{0,16}",
        Just("line one\nline two".to_string()),
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

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => ("f_[a-z0-9_]{0,10}", prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..4))
            .prop_map(|(name, m)| Call { name, kind: CallKind::Function(Value::Object(m.into_iter().collect())) }),
        1 => ("c_[a-z0-9_]{0,10}", "\\PC{0,40}")
            .prop_map(|(name, input)| Call { name, kind: CallKind::Custom(input) }),
    ]
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::collection::vec(call(), 0..4),
        prop::option::of(text()),
    )
        .prop_flat_map(|(reasoning, text, calls, user_text)| {
            let n = calls.len();
            (
                Just(reasoning),
                Just(text),
                Just(calls),
                prop::collection::vec(self::text(), n),
                Just(user_text),
            )
        })
        .prop_map(|(reasoning, text, calls, outputs, user_text)| Exchange {
            reasoning,
            text,
            calls,
            outputs,
            user_text,
        })
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        prop::option::of(text()),
        text(),
        prop::collection::vec(call(), 0..4),
        any::<bool>(),
        (0u64..100_000, 0u64..=100, 0u64..10_000, 0u64..=100),
        prop::collection::vec(1usize..7, 1..12),
    )
        .prop_map(
            |(
                reasoning,
                text,
                calls,
                cut_short,
                (prompt, cached_pct, completion, reasoning_pct),
                cuts,
            )| {
                Answer {
                    reasoning: reasoning.filter(|r| !r.is_empty()),
                    text,
                    calls,
                    cut_short,
                    prompt,
                    cached: prompt * cached_pct / 100,
                    completion,
                    reasoning_tokens: completion * reasoning_pct / 100,
                    cuts,
                }
            },
        )
}

/// A chat message's (role, text).
type Text = (Role, String);
/// A tool call's (call_id, name, parsed arguments).
type CallRecord = (String, String, Value);

fn call_id(turn: &str, k: usize) -> String {
    format!("call_{turn}_{k}")
}

fn call_item(turn: &str, k: usize, c: &Call) -> Value {
    match &c.kind {
        CallKind::Function(args) => json!({"type": "function_call", "call_id": call_id(turn, k),
            "name": c.name, "arguments": args.to_string()}),
        CallKind::Custom(input) => json!({"type": "custom_tool_call", "call_id": call_id(turn, k),
            "name": c.name, "input": input}),
    }
}

fn output_item(turn: &str, k: usize, c: &Call, output: &str) -> Value {
    let kind = if c.is_custom() {
        "custom_tool_call_output"
    } else {
        "function_call_output"
    };
    json!({"type": kind, "call_id": call_id(turn, k), "output": output})
}

/// The items of a conversation: a first user message, then the exchanges.
fn conversation(first: &[String], exchanges: &[Exchange]) -> Vec<Value> {
    let parts: Vec<Value> = first
        .iter()
        .map(|t| json!({"type": "input_text", "text": t}))
        .collect();
    let mut items = vec![json!({"type": "message", "role": "user", "content": parts})];
    for (turn, ex) in exchanges.iter().enumerate() {
        let turn = turn.to_string();
        if let Some(r) = &ex.reasoning {
            items.push(json!({"type": "reasoning", "id": format!("rs_{turn}"),
                "summary": [{"type": "summary_text", "text": r}]}));
        }
        let text = match (&ex.text, ex.calls.is_empty()) {
            (Some(t), _) => Some(t.clone()),
            (None, true) => Some("(nothing)".to_string()),
            (None, false) => None,
        };
        if let Some(t) = text {
            items.push(json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": t}]}));
        }
        for (k, c) in ex.calls.iter().enumerate() {
            items.push(call_item(&turn, k, c));
        }
        for (k, (c, out)) in ex.calls.iter().zip(&ex.outputs).enumerate() {
            items.push(output_item(&turn, k, c, out));
        }
        if let Some(u) = &ex.user_text {
            // The easy form: no `type`.
            items.push(json!({"role": "user", "content": u}));
        }
    }
    items
}

/// The (role, text) of every chat message with content, and the (call_id, name, arguments)
/// of every tool call, in the order the conversation should produce them.
fn expected(first: &[String], exchanges: &[Exchange]) -> (Vec<Text>, Vec<CallRecord>) {
    let mut texts = vec![(Role::User, first.join("\n"))];
    let mut calls = Vec::new();
    for (turn, ex) in exchanges.iter().enumerate() {
        let turn = turn.to_string();
        match (&ex.text, ex.calls.is_empty()) {
            (Some(t), _) => texts.push((Role::Assistant, t.clone())),
            (None, true) => texts.push((Role::Assistant, "(nothing)".into())),
            (None, false) => {}
        }
        for (k, c) in ex.calls.iter().enumerate() {
            calls.push((call_id(&turn, k), c.name.clone(), c.chat_arguments()));
        }
        for out in &ex.outputs {
            texts.push((Role::Tool, out.clone()));
        }
        if let Some(u) = &ex.user_text {
            texts.push((Role::User, u.clone()));
        }
    }
    (texts, calls)
}

fn content_text(m: &ChatMessage) -> Option<String> {
    m.content.as_ref().map(MessageContent::as_text)
}

/// What a chat request holds: (role, text) of messages with content (system left out) and
/// the tool calls in order.
fn flatten(messages: &[ChatMessage]) -> (Vec<Text>, Vec<CallRecord>) {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for m in messages.iter().filter(|m| m.role != Role::System) {
        if let Some(t) = content_text(m) {
            texts.push((m.role, t));
        }
        for c in m.tool_calls.iter().flatten() {
            let args: Value = serde_json::from_str(&c.function.arguments).unwrap();
            calls.push((
                c.id.clone().unwrap(),
                c.function.name.clone().unwrap(),
                args,
            ));
        }
    }
    (texts, calls)
}

/// Chat's rule: tool messages come right after the assistant message whose calls they answer
/// (or after other such tool messages).
fn check_chat_validity(messages: &[ChatMessage]) -> Result<(), TestCaseError> {
    let mut pending: HashSet<String> = HashSet::new();
    let mut after_calls = false;
    for m in messages {
        match m.role {
            Role::Assistant => {
                pending = m
                    .tool_calls
                    .iter()
                    .flatten()
                    .filter_map(|c| c.id.clone())
                    .collect();
                after_calls = !pending.is_empty();
            }
            Role::Tool => {
                prop_assert!(
                    after_calls,
                    "a tool message that does not follow tool calls"
                );
                let id = m.tool_call_id.clone().unwrap_or_default();
                prop_assert!(pending.remove(&id), "tool message for unknown call {id}");
            }
            _ => after_calls = false,
        }
    }
    Ok(())
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
    let mut c = json!({"id": "chatcmpl-rt", "object": "chat.completion.chunk", "created": 1, "model": "upstream", "choices": choices});
    if let Some(u) = usage {
        c["usage"] = u;
    }
    c.to_string()
}

/// The Responses event protocol: created, in_progress, then items added in output order (each
/// before its deltas and its done), the terminal event last; sequence numbers 0, 1, 2...
fn check_protocol(events: &[ResponseStreamEvent]) -> Result<(), TestCaseError> {
    let numbers: Vec<u64> = events
        .iter()
        .filter_map(ResponseStreamEvent::sequence_number)
        .collect();
    prop_assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    prop_assert_eq!(
        events.first().map(|e| e.event_type()),
        Some("response.created")
    );
    prop_assert_eq!(
        events.get(1).map(|e| e.event_type()),
        Some("response.in_progress")
    );
    let last = events
        .last()
        .and_then(ResponseStreamEvent::terminal_response);
    prop_assert!(last.is_some(), "the stream must end with a terminal event");
    let mut added = 0u32;
    let mut done: HashSet<u32> = HashSet::new();
    for e in &events[2..events.len() - 1] {
        let v = serde_json::to_value(e).unwrap();
        let index = v["output_index"].as_u64().map(|i| i as u32);
        match e {
            ResponseStreamEvent::OutputItemAdded { output_index, .. } => {
                prop_assert_eq!(*output_index, added);
                added += 1;
            }
            ResponseStreamEvent::OutputItemDone { output_index, .. } => {
                prop_assert!(*output_index < added);
                prop_assert!(
                    done.insert(*output_index),
                    "item {} done twice",
                    output_index
                );
            }
            other => {
                let i =
                    index.ok_or_else(|| TestCaseError::fail(format!("unexpected {other:?}")))?;
                prop_assert!(
                    i < added && !done.contains(&i),
                    "event for item {} outside its life",
                    i
                );
            }
        }
    }
    prop_assert_eq!(
        done.len() as u32,
        added,
        "every item is done before the end"
    );
    for e in events {
        let sse = encode_sse(e).unwrap();
        let head = format!("event: {}\ndata: {{", e.event_type());
        prop_assert!(sse.starts_with(&head), "bad SSE head: {}", sse);
        prop_assert!(sse.ends_with("}\n\n"), "bad SSE tail: {}", sse);
    }
    Ok(())
}

fn calls_of(response: &Response) -> Vec<CallRecord> {
    response
        .output
        .iter()
        .filter_map(|i| match i {
            Item::FunctionCall(c) => Some((
                c.call_id.clone(),
                c.name.clone(),
                serde_json::from_str(&c.arguments).unwrap(),
            )),
            Item::CustomToolCall(c) => {
                Some((c.call_id.clone(), c.name.clone(), json!({"input": c.input})))
            }
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conversations_translate_without_loss(
        instructions in prop::option::of("[a-zA-Z .]{1,30}"),
        first in prop::collection::vec(text(), 1..3),
        exchanges in prop::collection::vec(exchange(), 0..4),
        split_pct in 0usize..=100,
        answer in answer(),
    ) {
        // The request: the conversation split between the stored history and the input.
        let items = conversation(&first, &exchanges);
        let split = items.len() * split_pct / 100;
        let history: Vec<Item> = serde_json::from_value(Value::from(items[..split].to_vec())).unwrap();
        let mut names: Vec<(String, bool)> = exchanges.iter().flat_map(|e| &e.calls)
            .chain(&answer.calls).map(|c| (c.name.clone(), c.is_custom())).collect();
        names.sort_unstable();
        names.dedup();
        let tools: Vec<Value> = names.iter().map(|(n, custom)| if *custom {
            json!({"type": "custom", "name": n, "description": "raw"})
        } else {
            json!({"type": "function", "name": n, "description": "d", "parameters": {"type": "object"}, "strict": false})
        }).collect();
        let mut body = json!({"model": "gpt-5", "input": items[split..].to_vec(), "tools": tools,
            "stream": true, "store": true, "reasoning": {"effort": "low"}});
        if let Some(i) = &instructions {
            body["instructions"] = json!(i);
        }
        let req: ResponsesRequest = serde_json::from_value(body.clone()).unwrap();
        // The parsed request serializes back to what was sent (pass-through loses nothing).
        prop_assert_eq!(serde_json::to_value(&req).unwrap(), body.clone());

        let t = to_chat(&req, &history).unwrap();
        let msgs = &t.request.messages;
        match &instructions {
            Some(i) => prop_assert_eq!((msgs[0].role, content_text(&msgs[0])), (Role::System, Some(i.clone()))),
            None => prop_assert!(msgs[0].role != Role::System),
        }
        let (want_texts, want_calls) = expected(&first, &exchanges);
        let (got_texts, got_calls) = flatten(msgs);
        prop_assert_eq!(&got_texts, &want_texts);
        prop_assert_eq!(&got_calls, &want_calls);
        check_chat_validity(msgs)?;
        let reasoning_items = exchanges.iter().filter(|e| e.reasoning.is_some()).count();
        prop_assert_eq!(t.notes.iter().any(|n| n.message.contains("reasoning item")), reasoning_items > 0);
        prop_assert_eq!(t.request.tools.as_ref().map_or(0, Vec::len), names.len());
        prop_assert_eq!(t.request.stream_options.as_ref().and_then(|o| o.include_usage), Some(true));

        // The answer, non-streaming.
        let ctx = ResponseContext::from_request(&req, "resp_rt", 1_700_000_000);
        let tool_calls: Vec<Value> = answer.calls.iter().enumerate().map(|(k, c)| json!({
            "id": call_id("ans", k), "type": "function",
            "function": {"name": c.name, "arguments": c.chat_arguments().to_string()}
        })).collect();
        let finish = if !answer.calls.is_empty() { "tool_calls" } else if answer.cut_short { "length" } else { "stop" };
        let usage = json!({"prompt_tokens": answer.prompt, "completion_tokens": answer.completion,
            "total_tokens": answer.prompt + answer.completion,
            "prompt_tokens_details": {"cached_tokens": answer.cached},
            "completion_tokens_details": {"reasoning_tokens": answer.reasoning_tokens}});
        let mut message = json!({"role": "assistant", "content": answer.text});
        if let Some(r) = &answer.reasoning {
            message["reasoning_content"] = json!(r);
        }
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::from(tool_calls);
        }
        let resp_body = json!({"id": "chatcmpl-rt", "object": "chat.completion", "created": 1, "model": "upstream",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
        let (resp, details) = parse_chat_response(resp_body.to_string().as_bytes()).unwrap();
        let r = from_chat(&resp, &details, &ctx);
        prop_assert_eq!(&r.model, "gpt-5");
        prop_assert_eq!(r.output_text(), answer.text.clone());
        let summary: Vec<String> = r.output.iter().filter_map(|i| match i {
            Item::Reasoning(x) => Some(x.summary.iter().map(|p| p.text.clone()).collect::<String>()),
            _ => None,
        }).collect();
        prop_assert_eq!(summary, answer.reasoning.iter().cloned().collect::<Vec<_>>());
        let want_answer_calls: Vec<CallRecord> = answer.calls.iter().enumerate()
            .map(|(k, c)| (call_id("ans", k), c.name.clone(), c.chat_arguments())).collect();
        prop_assert_eq!(calls_of(&r), want_answer_calls.clone());
        for (item, c) in r.output.iter().filter(|i| matches!(i, Item::FunctionCall(_) | Item::CustomToolCall(_))).zip(&answer.calls) {
            prop_assert_eq!(item.kind(), if c.is_custom() { "custom_tool_call" } else { "function_call" });
        }
        let want_status = if finish == "length" { ResponseStatus::Incomplete } else { ResponseStatus::Completed };
        prop_assert_eq!(&r.status, &want_status);
        let u = r.usage.clone().unwrap();
        prop_assert_eq!((u.input_tokens, u.output_tokens, u.total_tokens), (answer.prompt, answer.completion, answer.prompt + answer.completion));
        prop_assert_eq!(u.input_tokens_details.cached_tokens, answer.cached);
        prop_assert_eq!(u.output_tokens_details.reasoning_tokens, answer.reasoning_tokens);

        // The same answer streamed in fragments: the events obey the protocol and accumulate
        // into the non-streaming Response.
        let mut chunks = vec![chunk_json(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]), None)];
        if let Some(reasoning) = &answer.reasoning {
            for piece in fragments(reasoning, &answer.cuts) {
                chunks.push(chunk_json(json!([{"index": 0, "delta": {"reasoning_content": piece}, "finish_reason": null}]), None));
            }
        }
        for piece in fragments(&answer.text, &answer.cuts) {
            chunks.push(chunk_json(json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]), None));
        }
        for (k, c) in answer.calls.iter().enumerate() {
            for (j, piece) in fragments(&c.chat_arguments().to_string(), &answer.cuts).into_iter().enumerate() {
                let mut call = json!({"index": k, "function": {"arguments": piece}});
                if j == 0 {
                    call["id"] = json!(call_id("ans", k));
                    call["type"] = json!("function");
                    call["function"]["name"] = json!(c.name);
                }
                chunks.push(chunk_json(json!([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]), None));
            }
        }
        chunks.push(chunk_json(json!([{"index": 0, "delta": {}, "finish_reason": finish}]), None));
        chunks.push(chunk_json(json!([]), Some(usage)));
        let mut translator = StreamTranslator::new(ctx.clone());
        let mut events = Vec::new();
        for data in &chunks {
            let (chunk, d) = parse_chat_chunk(data).unwrap();
            events.extend(translator.push_with_details(&chunk, &d));
        }
        prop_assert!(translator.is_done());
        events.extend(translator.finish());
        prop_assert!(translator.notes().is_empty(), "{:?}", translator.notes());
        check_protocol(&events)?;
        let mut acc = ResponseAccumulator::new();
        for e in &events {
            acc.push(e).map_err(TestCaseError::fail)?;
        }
        prop_assert!(acc.is_complete());
        let accumulated = acc.into_response();
        prop_assert_eq!(accumulated.as_ref(), Some(&r));
        prop_assert_eq!(translator.response(), Some(&r));

        // The turn, stored as JSON, carries the answer into the next turn.
        let stored = serde_json::to_string(&items_for_next_turn(&history, &req, &r)).unwrap();
        let next_history: Vec<Item> = serde_json::from_str(&stored).unwrap();
        let mut next_input: Vec<Value> = answer.calls.iter().enumerate()
            .map(|(k, c)| output_item("ans", k, c, &format!("result {k}"))).collect();
        next_input.push(json!({"role": "user", "content": "next"}));
        let next: ResponsesRequest = serde_json::from_value(json!({"model": "gpt-5", "previous_response_id": "resp_rt",
            "input": next_input, "tools": body["tools"]})).unwrap();
        let t2 = to_chat(&next, &next_history).unwrap();
        check_chat_validity(&t2.request.messages)?;
        let (texts2, calls2) = flatten(&t2.request.messages);
        let mut want_texts2 = want_texts.clone();
        let answer_has_message = !answer.text.is_empty() || (answer.calls.is_empty() && answer.reasoning.is_none());
        if answer_has_message {
            want_texts2.push((Role::Assistant, answer.text.clone()));
        }
        for k in 0..answer.calls.len() {
            want_texts2.push((Role::Tool, format!("result {k}")));
        }
        want_texts2.push((Role::User, "next".into()));
        prop_assert_eq!(texts2, want_texts2);
        let mut want_calls2 = want_calls.clone();
        want_calls2.extend(want_answer_calls);
        prop_assert_eq!(calls2, want_calls2);
    }

    /// Whatever chat chunks arrive (any order of text, reasoning, refusal, tool deltas with or
    /// without ids and indexes, finish reasons, usage), the events obey the protocol, the
    /// accumulator accepts them, and no text, refusal, reasoning or argument fragment is lost.
    #[test]
    fn arbitrary_chunk_sequences_keep_the_protocol(
        steps in prop::collection::vec(
            prop_oneof![
                text().prop_map(|t| json!({"content": t})),
                text().prop_map(|t| json!({"reasoning_content": t})),
                text().prop_map(|t| json!({"refusal": t})),
                (prop::option::of(0u32..3), prop::option::of("[a-z]{1,3}"), prop::option::of("f_[a-z]{1,4}"), "\\PC{0,6}")
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
        let req: ResponsesRequest = serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
        let mut translator = StreamTranslator::new(ResponseContext::from_request(&req, "resp_any", 1));
        let mut events = Vec::new();
        for d in &steps {
            let (c, x) = parse_chat_chunk(&chunk_json(json!([{"index": 0, "delta": d, "finish_reason": null}]), None)).unwrap();
            events.extend(translator.push_with_details(&c, &x));
        }
        if let Some(f) = finish {
            let (c, _) = parse_chat_chunk(&chunk_json(json!([{"index": 0, "delta": {}, "finish_reason": f}]), None)).unwrap();
            events.extend(translator.push(&c));
        }
        if with_usage {
            let usage = json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11});
            let (c, _) = parse_chat_chunk(&chunk_json(json!([]), Some(usage))).unwrap();
            events.extend(translator.push(&c));
        }
        events.extend(translator.finish());
        prop_assert!(translator.is_done());
        check_protocol(&events)?;
        let mut acc = ResponseAccumulator::new();
        for e in &events {
            acc.push(e).map_err(TestCaseError::fail)?;
        }
        let r = acc.into_response().unwrap();
        prop_assert_eq!(Some(&r), translator.response());
        // Every text, refusal and reasoning fragment arrives, in order.
        let joined = |key: &str| steps.iter().filter_map(|d| d[key].as_str()).collect::<String>();
        prop_assert_eq!(r.output_text(), joined("content"));
        let refusals: String = r.output.iter().filter_map(|i| match i {
            Item::Message(m) => match &m.content {
                Content::Parts(parts) => Some(parts.iter().filter_map(|p| match p {
                    ContentPart::Refusal(x) => Some(x.refusal.as_str()),
                    _ => None,
                }).collect::<String>()),
                Content::Text(_) => None,
            },
            _ => None,
        }).collect();
        prop_assert_eq!(refusals, joined("refusal"));
        let reasoning: String = r.output.iter().filter_map(|i| match i {
            Item::Reasoning(x) => Some(x.summary.iter().map(|p| p.text.as_str()).collect::<String>()),
            _ => None,
        }).collect();
        prop_assert_eq!(reasoning, joined("reasoning_content"));
        // Every argument fragment is streamed as a delta of some function call.
        let sent: String = steps.iter()
            .filter_map(|d| d["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        let streamed: String = events.iter().filter_map(|e| match e {
            ResponseStreamEvent::FunctionCallArgumentsDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        }).collect();
        prop_assert_eq!(streamed, sent);
    }
}
