//! Anthropic Messages wire format.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::util::{content_chars, pieces, sample_args, split_chars, tokens, wants_tool};
use super::{Answer, Inner, event_frame, to_bytes};

type Rejection = (u16, Value);

/// Anthropic's error JSON.
pub(crate) fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn invalid(message: impl AsRef<str>) -> Rejection {
    (400, error("invalid_request_error", message.as_ref()))
}

/// 401 without a (matching) `x-api-key`, 400 without `anthropic-version`.
pub(crate) fn check_headers(st: &Inner, headers: &HeaderMap) -> Result<(), Rejection> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty());
    match (key, st.api_key()) {
        (None, _) => {
            return Err((
                401,
                error("authentication_error", "x-api-key header is required"),
            ));
        }
        (Some(k), Some(expected)) if k != expected => {
            return Err((401, error("authentication_error", "invalid x-api-key")));
        }
        _ => {}
    }
    if headers
        .get("anthropic-version")
        .is_none_or(|v| v.as_bytes().is_empty())
    {
        return Err(invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// Top-level fields the Messages API accepts; anything else is "Extra inputs are not permitted".
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];

const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
];

/// Validates a Messages request body like Anthropic does (the parts a translating gateway can
/// get wrong).
pub(crate) fn validate(body: &Value) -> Result<(), Rejection> {
    let Some(obj) = body.as_object() else {
        return Err(invalid("Input should be an object"));
    };
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            return Err(invalid(format!("{key}: Extra inputs are not permitted")));
        }
    }
    if obj.get("model").and_then(Value::as_str).is_none() {
        return Err(invalid("model: Field required"));
    }
    match obj.get("max_tokens") {
        None => return Err(invalid("max_tokens: Field required")),
        Some(v) if v.as_u64().is_none_or(|n| n == 0) => {
            return Err(invalid(
                "max_tokens: Input should be a valid integer greater than or equal to 1",
            ));
        }
        _ => {}
    }
    if let Some(t) = obj.get("temperature") {
        match t.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => {}
            Some(_) => {
                return Err(invalid(
                    "temperature: Input should be less than or equal to 1",
                ));
            }
            None => return Err(invalid("temperature: Input should be a valid number")),
        }
    }
    if let Some(s) = obj.get("stop_sequences") {
        if !s
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_str().is_some_and(|x| !x.is_empty())))
        {
            return Err(invalid("stop_sequences: Input should be a valid list"));
        }
    }
    match obj.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                if b.get("type").and_then(Value::as_str) != Some("text")
                    || b.get("text").and_then(Value::as_str).is_none()
                {
                    return Err(invalid(format!(
                        "system.{i}: Input should be a valid text block"
                    )));
                }
            }
        }
        Some(_) => return Err(invalid("system: Input should be a valid string")),
    }
    if let Some(tools) = obj.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err(invalid("tools: Input should be a valid list"));
        };
        for (i, t) in tools.iter().enumerate() {
            // Server tools (web search, ...) have a `type` and no schema.
            if t.get("type")
                .and_then(Value::as_str)
                .is_some_and(|ty| ty != "custom")
            {
                continue;
            }
            let name_ok = t.get("name").and_then(Value::as_str).is_some_and(|n| {
                !n.is_empty()
                    && n.len() <= 128
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if !name_ok {
                return Err(invalid(format!(
                    "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )));
            }
            if !t.get("input_schema").is_some_and(Value::is_object) {
                return Err(invalid(format!(
                    "tools.{i}.custom.input_schema: Field required"
                )));
            }
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        let ty = choice.get("type").and_then(Value::as_str);
        match ty {
            Some("auto" | "any" | "none") => {}
            Some("tool") if choice.get("name").and_then(Value::as_str).is_some() => {}
            _ => {
                return Err(invalid(
                    "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
                ));
            }
        }
    }
    validate_messages(obj.get("messages"))
}

fn validate_messages(messages: Option<&Value>) -> Result<(), Rejection> {
    let messages = match messages {
        None => return Err(invalid("messages: Field required")),
        Some(Value::Array(m)) => m,
        Some(_) => return Err(invalid("messages: Input should be a valid list")),
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let last = messages.len() - 1;
    let mut prev_role = "";
    // `tool_use` ids of the previous assistant message.
    let mut open_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        match role {
            "user" | "assistant" => {}
            "system" => {
                return Err(invalid(format!(
                    "messages.{i}.role: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role."
                )));
            }
            other => {
                return Err(invalid(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant' (got '{other}')"
                )));
            }
        }
        if i == 0 && role != "user" {
            return Err(invalid(
                "messages: first message must use the \"user\" role",
            ));
        }
        if role == prev_role {
            return Err(invalid(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
            )));
        }
        prev_role = role;

        let content = m.get("content");
        let blocks: Vec<&Value> = match content {
            Some(Value::String(s)) => {
                if s.is_empty() && !(i == last && role == "assistant") {
                    return Err(invalid(format!(
                        "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                    )));
                }
                Vec::new()
            }
            Some(Value::Array(b)) => {
                if b.is_empty() && !(i == last && role == "assistant") {
                    return Err(invalid(format!(
                        "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                    )));
                }
                b.iter().collect()
            }
            None => return Err(invalid(format!("messages.{i}.content: Field required"))),
            Some(_) => {
                return Err(invalid(format!(
                    "messages.{i}.content: Input should be a valid list"
                )));
            }
        };
        let mut tool_results: Vec<&str> = Vec::new();
        let mut tool_uses: Vec<String> = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let ty = b.get("type").and_then(Value::as_str).unwrap_or("");
            if !BLOCK_TYPES.contains(&ty) {
                return Err(invalid(format!(
                    "messages.{i}.content.{j}: Input tag '{ty}' found using 'type' does not match any of the expected tags: 'document', 'image', 'redacted_thinking', 'search_result', 'server_tool_use', 'text', 'thinking', 'tool_result', 'tool_use', 'web_search_tool_result'"
                )));
            }
            match ty {
                "text" => match b.get("text").and_then(Value::as_str) {
                    Some("") => {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}.text: text content blocks must be non-empty"
                        )));
                    }
                    None => {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}.text.text: Field required"
                        )));
                    }
                    Some(_) => {}
                },
                "image" | "document" if !b.get("source").is_some_and(Value::is_object) => {
                    return Err(invalid(format!(
                        "messages.{i}.content.{j}.{ty}.source: Field required"
                    )));
                }
                "tool_use" => {
                    if role != "assistant" {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}: tool_use blocks may only appear in assistant messages"
                        )));
                    }
                    let id = b.get("id").and_then(Value::as_str);
                    let name = b.get("name").and_then(Value::as_str);
                    let input_ok = b.get("input").is_some_and(Value::is_object);
                    match (id, name, input_ok) {
                        (Some(id), Some(_), true) => tool_uses.push(id.to_string()),
                        _ => {
                            return Err(invalid(format!(
                                "messages.{i}.content.{j}.tool_use: `id`, `name` and an object `input` are required"
                            )));
                        }
                    }
                }
                "tool_result" => {
                    if role != "user" {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}: tool_result blocks may only appear in user messages"
                        )));
                    }
                    let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}.tool_result.tool_use_id: Field required"
                        )));
                    };
                    if !open_tool_uses.iter().any(|u| u == id) {
                        return Err(invalid(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )));
                    }
                    tool_results.push(id);
                }
                _ => {}
            }
        }
        if role == "user" {
            let missing: Vec<&str> = open_tool_uses
                .iter()
                .filter(|u| !tool_results.contains(&u.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(invalid(format!(
                    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                )));
            }
            open_tool_uses.clear();
        } else {
            open_tool_uses = tool_uses;
        }
    }
    Ok(())
}

/// Tokens the mock's count_tokens adds per tool definition (so a count that came from the
/// mock is easy to tell from an estimate).
pub const COUNT_TOKENS_PER_TOOL: u64 = 1000;

/// `POST /v1/messages/count_tokens`: Anthropic's headers, a model and messages, then
/// `{"input_tokens": n}`.
pub(crate) fn count_tokens(
    st: &Inner,
    headers: &HeaderMap,
    body_ok: bool,
    body: &Value,
) -> Result<Value, Rejection> {
    check_headers(st, headers)?;
    if !body_ok || !body.is_object() {
        return Err(invalid(
            "There was an error parsing the body of your request.",
        ));
    }
    if body.get("model").and_then(Value::as_str).is_none() {
        return Err(invalid("model: Field required"));
    }
    for key in ["max_tokens", "stream", "temperature"] {
        if body.get(key).is_some() {
            return Err(invalid(format!("{key}: Extra inputs are not permitted")));
        }
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(invalid("messages: Field required"));
    };
    let mut chars = body.get("system").map(content_chars).unwrap_or(0);
    chars += messages
        .iter()
        .map(|m| m.get("content").map(content_chars).unwrap_or(0))
        .sum::<usize>();
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64;
    Ok(json!({"input_tokens": tokens(chars) + tools * COUNT_TOKENS_PER_TOOL}))
}

fn error_type(code: u16) -> &'static str {
    match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's usual error JSON for a status code.
pub(crate) fn default_error(code: u16) -> Value {
    let message = match code {
        400 => "Invalid request (mock).",
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "The requested resource could not be found.",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => "Number of request tokens has exceeded your per-minute rate limit",
        500 => "Internal server error",
        529 => "Overloaded",
        _ => "mock error",
    };
    error(error_type(code), message)
}

/// An error body given for the OpenAI shape, re-shaped for Anthropic. Bodies already in
/// Anthropic's shape (or any other shape) are kept as they are.
pub(crate) fn reshape_error(code: u16, body: Value) -> Value {
    if body.get("type").is_some() {
        return body;
    }
    let Some(err) = body.get("error").filter(|e| e.is_object()) else {
        return body;
    };
    let message = if err.get("code").and_then(Value::as_str) == Some("context_length_exceeded") {
        "prompt is too long: 9000 tokens > 8192 maximum".to_string()
    } else {
        err.get("message")
            .and_then(Value::as_str)
            .unwrap_or("mock error")
            .to_string()
    };
    error(error_type(code), &message)
}

/// The error event Anthropic sends in a stream that fails.
pub(crate) fn error_frame() -> bytes::Bytes {
    event_frame("error", &error("overloaded_error", "Overloaded"))
}

enum Block {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
}

fn chosen_tool(body: &Value) -> Option<(String, Option<&Value>)> {
    let tools = body.get("tools")?.as_array()?;
    let choice = body.get("tool_choice");
    if tools.is_empty()
        || choice.and_then(|c| c.get("type")).and_then(Value::as_str) == Some("none")
    {
        return None;
    }
    if !wants_tool(body.get("messages")) {
        return None;
    }
    let wanted = choice
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let tool = tools
        .iter()
        .find(|t| wanted.is_some() && t.get("name").and_then(Value::as_str) == wanted)
        .or_else(|| tools.first())?;
    let name = tool.get("name").and_then(Value::as_str)?;
    Some((name.to_string(), tool.get("input_schema")))
}

/// The answer of `POST /v1/messages`.
pub(crate) fn answer(st: &Inner, model: &str, body: &Value, text: Option<&str>) -> Answer {
    let n = st.next_id();
    let id = format!("msg_mock{n:016}");
    let mut prompt_chars = body.get("system").map(content_chars).unwrap_or(0);
    if let Some(ms) = body.get("messages").and_then(Value::as_array) {
        prompt_chars += ms
            .iter()
            .map(|m| m.get("content").map(content_chars).unwrap_or(0))
            .sum::<usize>();
    }
    let input_tokens = tokens(prompt_chars);
    let blocks = match (text, chosen_tool(body)) {
        (None, Some((name, schema))) => vec![
            Block::Text("I'll use the tool.".to_string()),
            Block::Tool {
                id: format!("toolu_mock{n:016}"),
                name,
                input: sample_args(schema),
            },
        ],
        (Some(t), _) => vec![Block::Text(t.to_string())],
        (None, None) => vec![Block::Text(format!("mock answer from {model}"))],
    };
    let output_tokens: u64 = blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => tokens(t.chars().count()),
            Block::Tool { name, input, .. } => tokens(name.len() + input.to_string().len()),
        })
        .sum();
    let stop_reason = if blocks.iter().any(|b| matches!(b, Block::Tool { .. })) {
        "tool_use"
    } else {
        "end_turn"
    };
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);

    if !stream {
        let content: Vec<Value> = blocks
            .iter()
            .map(|b| match b {
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::Tool { id, name, input } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        let v = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        });
        return Answer {
            json: to_bytes(&v),
            frames: Vec::new(),
            stream: false,
        };
    }

    let mut frames = vec![event_frame(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }}),
    )];
    for (index, b) in blocks.iter().enumerate() {
        match b {
            Block::Text(t) => {
                frames.push(event_frame(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                if index == 0 {
                    frames.push(event_frame("ping", &json!({"type": "ping"})));
                }
                for p in pieces(t) {
                    frames.push(event_frame(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
            }
            Block::Tool { id, name, input } => {
                frames.push(event_frame(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                ));
                if index == 0 {
                    frames.push(event_frame("ping", &json!({"type": "ping"})));
                }
                // Anthropic starts with an empty partial_json.
                let mut parts = vec![String::new()];
                parts.extend(split_chars(&input.to_string(), 8));
                for p in parts {
                    frames.push(event_frame(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}),
                    ));
                }
            }
        }
        frames.push(event_frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push(event_frame(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
    ));
    frames.push(event_frame(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    Answer {
        json: bytes::Bytes::new(),
        frames,
        stream: true,
    }
}
