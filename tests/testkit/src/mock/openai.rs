//! OpenAI and Azure OpenAI wire formats.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::util::{
    base64, content_chars, embedding, now, pieces, query_param, sample_args, split_chars, tokens,
    wants_tool,
};
use super::{ANY_MODEL, Answer, Api, Flavor, Inner, data_frame, lock, openai_error, to_bytes};

type Rejection = (u16, Value);

/// OpenAI's 401 unless the expected key (if any) came as `Authorization: Bearer`.
pub(crate) fn check_auth(st: &Inner, headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(expected) = st.api_key() else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(k) if k == expected => Ok(()),
        Some(k) => {
            let tail: String = k
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err((
                401,
                openai_error(
                    &format!(
                        "Incorrect API key provided: sk-...{tail}. You can find your API key at https://platform.openai.com/account/api-keys."
                    ),
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            ))
        }
        None => Err((
            401,
            openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
            ),
        )),
    }
}

/// Azure's 401 without a (matching) `api-key` header, 404 without an `api-version` query.
pub(crate) fn check_azure(
    st: &Inner,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Rejection> {
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    let key_ok = match (key, st.api_key()) {
        (None, _) => false,
        (Some(""), _) => false,
        (Some(k), Some(expected)) => k == expected,
        (Some(_), None) => true,
    };
    if !key_ok {
        return Err((
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ));
    }
    match query.and_then(|q| query_param(q, "api-version")) {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err((
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        )),
    }
}

fn bad(message: &str, param: Option<&str>, code: Option<&str>) -> Rejection {
    (
        400,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
    )
}

/// OpenAI's request validation (the parts a translating gateway can get wrong).
pub(crate) fn validate(api: Api, flavor: Flavor, body: &Value) -> Result<(), Rejection> {
    if !body.is_object() {
        return Err(bad(
            "Invalid type for request body: expected an object.",
            None,
            Some("invalid_type"),
        ));
    }
    if flavor == Flavor::OpenAi && body.get("model").and_then(Value::as_str).is_none() {
        return Err(bad("you must provide a model parameter", None, None));
    }
    match api {
        Api::Chat => validate_chat(body),
        // Checked with the mock's state (stored responses) by `super::responses::validate`.
        Api::Responses => Ok(()),
        Api::Completions => match body.get("prompt") {
            Some(Value::String(_)) | Some(Value::Array(_)) => Ok(()),
            _ => Err(bad(
                "Missing required parameter: 'prompt'.",
                Some("prompt"),
                Some("missing_required_parameter"),
            )),
        },
        Api::Embeddings => match body.get("input") {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Array(a)) if !a.is_empty() => Ok(()),
            Some(_) => Err(bad(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                None,
                None,
            )),
            None => Err(bad("'input' is a required property", None, None)),
        },
    }
}

fn validate_chat(body: &Value) -> Result<(), Rejection> {
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(bad(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            ));
        }
        _ => {
            return Err(bad(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            ));
        }
    };
    // Tool call ids an assistant message asked for and no tool message answered yet.
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let param = format!("messages[{i}].role");
        if !matches!(
            role,
            "system" | "developer" | "user" | "assistant" | "tool" | "function"
        ) {
            return Err(bad(
                &format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                ),
                Some(&param),
                Some("invalid_value"),
            ));
        }
        if role == "tool" {
            let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else {
                return Err(bad(
                    &format!("Missing required parameter: 'messages[{i}].tool_call_id'."),
                    Some(&format!("messages[{i}].tool_call_id")),
                    Some("missing_required_parameter"),
                ));
            };
            match pending.iter().position(|p| p == id) {
                Some(pos) => {
                    pending.remove(pos);
                }
                None => {
                    return Err(bad(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                        Some(&format!("messages.[{i}].role")),
                        None,
                    ));
                }
            }
            continue;
        }
        if !pending.is_empty() {
            return Err(bad(
                &format!(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                    pending.join(", ")
                ),
                Some(&format!("messages.[{i}].role")),
                None,
            ));
        }
        if role == "assistant" {
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                pending = calls
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    if !pending.is_empty() {
        return Err(bad(
            &format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                pending.join(", ")
            ),
            Some("messages"),
            None,
        ));
    }
    Ok(())
}

/// OpenAI's usual error JSON for a status code.
pub(crate) fn default_error(code: u16, model: &str) -> Value {
    match code {
        400 => openai_error("Invalid request (mock).", "invalid_request_error", None),
        401 => openai_error(
            "Incorrect API key provided: sk-...mock. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => openai_error(
            &format!("You are not allowed to sample from this model: {model}"),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        404 => openai_error(
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        408 => openai_error("Request timed out.", "timeout", None),
        413 => openai_error("Request too large.", "invalid_request_error", None),
        429 => openai_error(
            &format!(
                "Rate limit reached for {model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
            ),
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => openai_error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502 => openai_error("Bad gateway.", "server_error", None),
        503 => openai_error(
            "The engine is currently overloaded, please try again later",
            "server_error",
            None,
        ),
        504 => openai_error("Gateway timeout.", "server_error", None),
        _ => openai_error(&format!("mock error {code}"), "server_error", None),
    }
}

/// The error event OpenAI sends in a stream that fails.
pub(crate) fn error_frame() -> bytes::Bytes {
    data_frame(&openai_error(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ))
}

/// `GET /v1/models`.
pub(crate) fn models_list(st: &Inner) -> Value {
    let mut ids: Vec<String> = [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-3.5-turbo-instruct",
        "text-embedding-3-small",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for k in lock(&st.scripts).keys() {
        if k != ANY_MODEL && !ids.contains(k) {
            ids.push(k.clone());
        }
    }
    let data: Vec<Value> = ids
        .into_iter()
        .map(
            |id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mock"}),
        )
        .collect();
    json!({"object": "list", "data": data})
}

/// What the assistant says.
enum Reply {
    Text(String),
    Tool {
        id: String,
        name: String,
        args: String,
    },
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn chosen_tool(body: &Value) -> Option<(String, Option<&Value>)> {
    let tools = body.get("tools")?.as_array()?;
    if tools.is_empty() || body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    if !wants_tool(body.get("messages")) {
        return None;
    }
    let wanted = body
        .get("tool_choice")
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let tool = tools
        .iter()
        .find(|t| wanted.is_some() && t.pointer("/function/name").and_then(Value::as_str) == wanted)
        .or_else(|| tools.first())?;
    let name = tool.pointer("/function/name").and_then(Value::as_str)?;
    Some((name.to_string(), tool.pointer("/function/parameters")))
}

fn stream_flags(body: &Value) -> (bool, bool) {
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    (stream, include_usage)
}

/// The answer of an OpenAI / Azure endpoint.
pub(crate) fn answer(
    st: &Inner,
    api: Api,
    flavor: Flavor,
    model: &str,
    body: &Value,
    text: Option<&str>,
) -> Answer {
    match api {
        Api::Chat => chat(st, flavor, model, body, text),
        Api::Completions => completions(st, model, body, text),
        Api::Embeddings => embeddings(model, body),
        Api::Responses => super::responses::answer(st, model, body, text),
    }
}

fn azure_filter() -> Value {
    json!({
        "hate": {"filtered": false, "severity": "safe"},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"},
        "violence": {"filtered": false, "severity": "safe"}
    })
}

fn chat(st: &Inner, flavor: Flavor, model: &str, body: &Value, text: Option<&str>) -> Answer {
    let n = st.next_id();
    let id = format!("chatcmpl-mock{n}");
    let created = now();
    let prompt_chars: usize = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| m.get("content").map(content_chars).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let prompt_tokens = tokens(prompt_chars);
    let reply = match (text, chosen_tool(body)) {
        (None, Some((name, schema))) => Reply::Tool {
            id: format!("call_mock{n}"),
            name,
            args: sample_args(schema).to_string(),
        },
        (Some(t), _) => Reply::Text(t.to_string()),
        (None, None) => Reply::Text(format!("mock answer from {model}")),
    };
    let completion_tokens = match &reply {
        Reply::Text(t) => tokens(t.chars().count()),
        Reply::Tool { name, args, .. } => tokens(name.len() + args.len()),
    };
    let finish_reason = match reply {
        Reply::Text(_) => "stop",
        Reply::Tool { .. } => "tool_calls",
    };
    let (stream, include_usage) = stream_flags(body);
    let azure = flavor == Flavor::Azure;

    if !stream {
        let message = match &reply {
            Reply::Text(t) => json!({"role": "assistant", "content": t, "refusal": null}),
            Reply::Tool { id, name, args } => json!({
                "role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": args}}]
            }),
        };
        let mut choice = json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason});
        let mut v = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
            "system_fingerprint": "fp_mock"
        });
        if azure {
            choice["content_filter_results"] = azure_filter();
            v["prompt_filter_results"] =
                json!([{"prompt_index": 0, "content_filter_results": azure_filter()}]);
        }
        v["choices"] = json!([choice]);
        return Answer {
            json: to_bytes(&v),
            frames: Vec::new(),
            stream: false,
        };
    }

    let mut frames = Vec::new();
    if azure {
        // Azure's first chunk has no choices, only the prompt filter results.
        frames.push(data_frame(&json!({
            "choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": azure_filter()}]
        })));
    }
    let chunk = |delta: Value, finish: Option<&str>| -> Value {
        let mut c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    match &reply {
        Reply::Text(t) => {
            frames.push(data_frame(&chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            )));
            for p in pieces(t) {
                frames.push(data_frame(&chunk(json!({"content": p}), None)));
            }
        }
        Reply::Tool { id, name, args } => {
            frames.push(data_frame(&chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
                ]}),
                None,
            )));
            for p in split_chars(args, 8) {
                frames.push(data_frame(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                    None,
                )));
            }
        }
    }
    frames.push(data_frame(&chunk(json!({}), Some(finish_reason))));
    if include_usage {
        frames.push(data_frame(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock", "choices": [],
            "usage": usage(prompt_tokens, completion_tokens)
        })));
    }
    frames.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    Answer {
        json: bytes::Bytes::new(),
        frames,
        stream: true,
    }
}

fn completions(st: &Inner, model: &str, body: &Value, text: Option<&str>) -> Answer {
    let id = format!("cmpl-mock{}", st.next_id());
    let created = now();
    let prompt_chars = body.get("prompt").map(content_chars).unwrap_or(0);
    let prompt_tokens = tokens(prompt_chars);
    let answer = text
        .map(str::to_string)
        .unwrap_or_else(|| format!("mock answer from {model}"));
    let completion_tokens = tokens(answer.chars().count());
    let (stream, include_usage) = stream_flags(body);
    if !stream {
        let v = json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": answer, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage(prompt_tokens, completion_tokens)
        });
        return Answer {
            json: to_bytes(&v),
            frames: Vec::new(),
            stream: false,
        };
    }
    let chunk = |text: &str, finish: Option<&str>| {
        data_frame(&json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]
        }))
    };
    let mut frames: Vec<bytes::Bytes> = pieces(&answer).iter().map(|p| chunk(p, None)).collect();
    frames.push(chunk("", Some("stop")));
    if include_usage {
        frames.push(data_frame(&json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [], "usage": usage(prompt_tokens, completion_tokens)
        })));
    }
    frames.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    Answer {
        json: bytes::Bytes::new(),
        frames,
        stream: true,
    }
}

fn embeddings(model: &str, body: &Value) -> Answer {
    // Each input as (hash key, token count).
    let inputs: Vec<(String, u64)> = match body.get("input") {
        Some(Value::String(s)) => vec![(s.clone(), tokens(s.chars().count()))],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![(Value::Array(items.clone()).to_string(), items.len() as u64)]
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => (s.clone(), tokens(s.chars().count())),
                Value::Array(t) => (i.to_string(), t.len() as u64),
                other => (other.to_string(), 1),
            })
            .collect(),
        _ => Vec::new(),
    };
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d.clamp(1, 4096) as usize)
        .unwrap_or(8);
    let b64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut total = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (key, toks))| {
            total += toks;
            let v = embedding(key, dims);
            let emb = if b64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": emb})
        })
        .collect();
    let v = json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total}
    });
    Answer {
        json: to_bytes(&v),
        frames: Vec::new(),
        stream: false,
    }
}
