//! OpenAI's Responses API (`POST /v1/responses`): a small but faithful mock.
//!
//! - Validation as OpenAI answers it: a JSON object with `model`, `input` (a string or a list)
//!   unless `previous_response_id` is given, function tools with a `name`; a
//!   `previous_response_id` this mock did not store is `previous_response_not_found`.
//! - The answer: a `function_call` of the first function tool (or the one `tool_choice` names)
//!   when the input's last item is a user message asking to "use the tool", else a message
//!   `"mock answer from <model>"`; usage counts ~4 characters per token of the input (and of
//!   the stored conversation it continues).
//! - Streams: `response.created`, `response.in_progress`, the item's events
//!   (`output_item.added`, `content_part.added`, `output_text.delta`s, `.done`s; or
//!   `function_call_arguments.delta`s), then `response.completed` with the whole Response,
//!   numbered by `sequence_number`, as `event: <type>` + `data:` frames, and no `[DONE]`.
//! - With `store` (the default) the conversation is kept, so a later request can continue it.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::util::{content_chars, now, pieces, sample_args, split_chars, tokens, wants_tool};
use super::{Answer, Inner, event_frame, lock, to_bytes};

type Rejection = (u16, Value);

fn bad(message: &str, param: Option<&str>, code: Option<&str>) -> Rejection {
    (
        400,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
    )
}

/// OpenAI's validation of a Responses request (the parts a gateway can get wrong).
pub(crate) fn validate(st: &Inner, body: &Value) -> Result<(), Rejection> {
    if !body.is_object() {
        return Err(bad(
            "Invalid type for request body: expected an object.",
            None,
            Some("invalid_type"),
        ));
    }
    if body.get("model").and_then(Value::as_str).is_none() {
        return Err(bad(
            "Missing required parameter: 'model'.",
            Some("model"),
            Some("missing_required_parameter"),
        ));
    }
    let previous = body.get("previous_response_id").and_then(Value::as_str);
    match body.get("input") {
        Some(Value::String(_)) | Some(Value::Array(_)) => {}
        None if previous.is_some() => {}
        Some(_) => {
            return Err(bad(
                "Invalid type for 'input': expected one of a string or array of input items.",
                Some("input"),
                Some("invalid_type"),
            ));
        }
        None => {
            return Err(bad(
                "Missing required parameter: 'input'.",
                Some("input"),
                Some("missing_required_parameter"),
            ));
        }
    }
    for (i, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool.get("type").and_then(Value::as_str) == Some("function")
            && tool.get("name").and_then(Value::as_str).is_none()
        {
            return Err(bad(
                &format!("Missing required parameter: 'tools[{i}].name'."),
                Some(&format!("tools[{i}].name")),
                Some("missing_required_parameter"),
            ));
        }
    }
    if let Some(id) = previous
        && !lock(&st.responses).contains_key(id)
    {
        return Err((
            400,
            json!({"error": {
                "message": format!("Previous response with id '{id}' not found."),
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found"
            }}),
        ));
    }
    Ok(())
}

/// The request's input as items.
fn input_items(body: &Value) -> Vec<Value> {
    match body.get("input") {
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Characters of an item's text (messages, tool outputs, call arguments).
fn item_chars(item: &Value) -> usize {
    item.get("content")
        .map(content_chars)
        .or_else(|| item.get("output").map(content_chars))
        .or_else(|| {
            item.get("arguments")
                .and_then(Value::as_str)
                .map(|a| a.chars().count())
        })
        .unwrap_or(0)
}

/// The function tool to call, with its parameters' schema.
fn chosen_tool(body: &Value, input: &[Value]) -> Option<(String, Option<Value>)> {
    let tools = body.get("tools")?.as_array()?;
    if body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    if !wants_tool(Some(&Value::Array(input.to_vec()))) {
        return None;
    }
    let wanted = body
        .get("tool_choice")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let tool = tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .find(|t| wanted.is_none() || t.get("name").and_then(Value::as_str) == wanted)?;
    let name = tool.get("name").and_then(Value::as_str)?;
    Some((name.to_string(), tool.get("parameters").cloned()))
}

/// The answer to a Responses request.
pub(crate) fn answer(st: &Inner, model: &str, body: &Value, text: Option<&str>) -> Answer {
    let n = st.next_id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let suffix = format!("mock{n}x{nanos:08x}");
    let id = format!("resp_{suffix}");
    let created = now();
    let input = input_items(body);
    let history = body
        .get("previous_response_id")
        .and_then(Value::as_str)
        .and_then(|p| lock(&st.responses).get(p).cloned())
        .unwrap_or_default();
    let input_chars: usize = history.iter().chain(&input).map(item_chars).sum::<usize>()
        + body
            .get("instructions")
            .and_then(Value::as_str)
            .map_or(0, |s| s.chars().count());
    let input_tokens = tokens(input_chars);
    let (item, output_tokens, text_out) = match (text, chosen_tool(body, &input)) {
        (None, Some((name, schema))) => {
            let args = sample_args(schema.as_ref()).to_string();
            let out = tokens(name.len() + args.len());
            let item = json!({
                "type": "function_call", "id": format!("fc_{suffix}"),
                "call_id": format!("call_{suffix}"), "name": name, "arguments": args,
                "status": "completed"
            });
            (item, out, None)
        }
        (t, _) => {
            let t = t.map_or_else(|| format!("mock answer from {model}"), str::to_string);
            let item = json!({
                "type": "message", "id": format!("msg_{suffix}"), "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": t, "annotations": [], "logprobs": []}]
            });
            (item, tokens(t.chars().count()), Some(t))
        }
    };
    let store = body.get("store").and_then(Value::as_bool) != Some(false);
    let echo = |key: &str, default: Value| body.get(key).cloned().unwrap_or(default);
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": created, "status": status,
            "background": false, "error": null, "incomplete_details": null,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": model, "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
            "previous_response_id": echo("previous_response_id", Value::Null),
            "reasoning": {"effort": null, "summary": null},
            "store": store, "temperature": echo("temperature", json!(1.0)),
            "text": echo("text", json!({"format": {"type": "text"}})),
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])),
            "top_p": echo("top_p", json!(1.0)), "truncation": "disabled",
            "usage": usage, "user": echo("user", Value::Null),
            "metadata": echo("metadata", json!({}))
        })
    };
    let usage = json!({
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens
    });
    let done = response("completed", vec![item.clone()], usage);
    if store {
        let mut conversation = history;
        conversation.extend(input);
        conversation.push(item.clone());
        lock(&st.responses).insert(id.clone(), conversation);
    }
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return Answer {
            json: to_bytes(&done),
            frames: Vec::new(),
            stream: false,
        };
    }

    let mut frames: Vec<Bytes> = Vec::new();
    let mut seq = 0u64;
    let mut push = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(seq);
        seq += 1;
        frames.push(event_frame(kind, &v));
    };
    push(
        "response.created",
        json!({"response": response("in_progress", vec![], Value::Null)}),
    );
    push(
        "response.in_progress",
        json!({"response": response("in_progress", vec![], Value::Null)}),
    );
    let item_id = item["id"].clone();
    match text_out {
        Some(t) => {
            push(
                "response.output_item.added",
                json!({"output_index": 0, "item": {
                    "type": "message", "id": item_id, "role": "assistant",
                    "status": "in_progress", "content": []
                }}),
            );
            push(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            );
            for p in pieces(&t) {
                push(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                        "delta": p, "logprobs": []}),
                );
            }
            push(
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                    "text": t, "logprobs": []}),
            );
            push(
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                    "part": {"type": "output_text", "text": t, "annotations": [], "logprobs": []}}),
            );
        }
        None => {
            let mut added = item.clone();
            added["arguments"] = json!("");
            added["status"] = json!("in_progress");
            push(
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            );
            let args = item["arguments"].as_str().unwrap_or_default().to_string();
            for p in split_chars(&args, 8) {
                push(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": 0, "delta": p}),
                );
            }
            push(
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": 0, "arguments": args}),
            );
        }
    }
    push(
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    );
    push("response.completed", json!({ "response": done }));
    Answer {
        json: Bytes::new(),
        frames,
        stream: true,
    }
}

/// The `error` event OpenAI sends in a Responses stream that fails.
pub(crate) fn error_frame() -> Bytes {
    event_frame(
        "error",
        &json!({"type": "error", "code": "server_error",
            "message": "The server had an error while processing your request. Sorry about that!",
            "param": null, "sequence_number": 99}),
    )
}
