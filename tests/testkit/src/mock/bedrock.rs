//! AWS Bedrock runtime's Converse API: `POST /model/{modelId}/converse` (JSON) and
//! `POST /model/{modelId}/converse-stream` (binary `application/vnd.amazon.eventstream`
//! frames, as the real service sends them, encoded with the AWS SDK's own event-stream crate).

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as EsHeader, Message};
use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Value, json};

use super::util::{content_chars, embedding, sample_args, tokens};
use super::{Answer, Inner};

type Rejection = (u16, Value);

/// The streaming body's content type.
pub(crate) const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Bedrock's error JSON (the error code travels in `x-amzn-errortype` and `__type`).
pub(crate) fn error(code: u16, message: &str) -> Value {
    json!({"__type": error_type(code), "message": message})
}

/// Bedrock's exception name for an HTTP status.
pub(crate) fn error_type(code: u16) -> &'static str {
    match code {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// The default error body for a scripted status; an OpenAI-shaped body's message is kept.
pub(crate) fn reshape_error(code: u16, body: Option<Value>) -> Value {
    let message = body
        .as_ref()
        .and_then(|b| b.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match code {
            400 => "Input is too long for requested model.".to_string(),
            429 => "Too many requests, please wait before trying again.".to_string(),
            _ => format!("mock bedrock error {code}"),
        });
    error(code, &message)
}

/// Requests must be SigV4-signed (`Authorization: AWS4-HMAC-SHA256 Credential=...`).
pub(crate) fn check_auth(headers: &HeaderMap) -> Result<(), Rejection> {
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if signed {
        Ok(())
    } else {
        Err((403, error(403, "Missing Authentication Token")))
    }
}

/// Converse's own validation: non-empty alternating messages starting with a user message,
/// non-empty content, `maxTokens` positive when given.
pub(crate) fn validate(body: &Value) -> Result<(), Rejection> {
    let invalid = |m: &str| Err((400, error(400, m)));
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return invalid(
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        );
    };
    if messages.is_empty() {
        return invalid("A conversation must start with a user message.");
    }
    let mut expected = "user";
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != expected {
            return invalid(&format!(
                "A conversation must alternate between user and assistant roles (messages[{i}] is '{role}')."
            ));
        }
        let empty = m
            .get("content")
            .and_then(Value::as_array)
            .is_none_or(|c| c.is_empty());
        if empty {
            return invalid(&format!("messages[{i}].content must not be empty."));
        }
        expected = if role == "user" { "assistant" } else { "user" };
    }
    if let Some(max) = body.pointer("/inferenceConfig/maxTokens")
        && max.as_u64().is_none_or(|m| m == 0)
    {
        return invalid("inferenceConfig.maxTokens must be a positive integer.");
    }
    Ok(())
}

/// The tool to call when the last user message asks to "use the tool" and tools are offered.
fn chosen_tool(body: &Value) -> Option<(String, Option<&Value>)> {
    let tools = body.pointer("/toolConfig/tools")?.as_array()?;
    let last = body.get("messages")?.as_array()?.last()?;
    let asks = last
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .any(|t| t.to_lowercase().contains("use the tool"));
    if !asks {
        return None;
    }
    let spec = tools.first()?.get("toolSpec")?;
    let name = spec.get("name")?.as_str()?;
    Some((name.to_string(), spec.pointer("/inputSchema/json")))
}

fn frame(event: &str, payload: &Value) -> Bytes {
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":message-type",
            EsHeader::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            EsHeader::String(event.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            EsHeader::String("application/json".into()),
        ));
    let mut buf = Vec::new();
    match write_message_to(&message, &mut buf) {
        Ok(()) => Bytes::from(buf),
        Err(_) => Bytes::new(),
    }
}

/// An exception frame mid-stream, as Bedrock sends `internalServerException`.
pub(crate) fn error_frame() -> Bytes {
    let message = Message::new(Bytes::from(
        json!({"message": "mock bedrock: model stream failed"}).to_string(),
    ))
    .add_header(Header::new(
        ":message-type",
        EsHeader::String("exception".into()),
    ))
    .add_header(Header::new(
        ":exception-type",
        EsHeader::String("internalServerException".into()),
    ))
    .add_header(Header::new(
        ":content-type",
        EsHeader::String("application/json".into()),
    ));
    let mut buf = Vec::new();
    match write_message_to(&message, &mut buf) {
        Ok(()) => Bytes::from(buf),
        Err(_) => Bytes::new(),
    }
}

/// The answer of Converse (`stream: false`) or ConverseStream.
pub(crate) fn answer(
    st: &Inner,
    model: &str,
    body: &Value,
    stream: bool,
    text: Option<&str>,
) -> Answer {
    let n = st.next_id();
    let mut prompt_chars = body.get("system").map(content_chars).unwrap_or(0);
    if let Some(ms) = body.get("messages").and_then(Value::as_array) {
        prompt_chars += ms
            .iter()
            .map(|m| m.get("content").map(content_chars).unwrap_or(0))
            .sum::<usize>();
    }
    let input_tokens = tokens(prompt_chars);
    let tool = if text.is_none() {
        chosen_tool(body)
    } else {
        None
    };
    let reply = text.map_or_else(|| format!("mock answer from {model}"), str::to_string);
    let (content, stop_reason, output_tokens) = match &tool {
        Some((name, schema)) => {
            let input = sample_args(*schema);
            let id = format!("tooluse_mock{n:012}");
            let out = tokens(name.len() + input.to_string().len());
            (
                vec![json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})],
                "tool_use",
                out,
            )
        }
        None => (
            vec![json!({"text": reply})],
            "end_turn",
            tokens(reply.chars().count()),
        ),
    };
    let usage = json!({
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens,
    });
    if !stream {
        let json = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": {"latencyMs": 1},
        });
        return Answer {
            json: Bytes::from(json.to_string()),
            frames: Vec::new(),
            stream: false,
        };
    }
    let mut frames = vec![frame("messageStart", &json!({"role": "assistant"}))];
    match &tool {
        Some(_) => {
            let tool_use = &content[0]["toolUse"];
            frames.push(frame(
                "contentBlockStart",
                &json!({"contentBlockIndex": 0, "start": {"toolUse": {
                    "toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}}}),
            ));
            let args = tool_use["input"].to_string();
            let mid = args.len() / 2;
            let (a, b) = args.split_at(args.char_indices().nth(mid).map_or(0, |(i, _)| i));
            for piece in [a, b] {
                frames.push(frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}),
                ));
            }
        }
        None => {
            for piece in super::util::pieces(&reply) {
                frames.push(frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                ));
            }
        }
    }
    frames.push(frame("contentBlockStop", &json!({"contentBlockIndex": 0})));
    frames.push(frame("messageStop", &json!({"stopReason": stop_reason})));
    frames.push(frame(
        "metadata",
        &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    Answer {
        json: Bytes::new(),
        frames,
        stream: true,
    }
}

/// Percent-decodes a path segment (`anthropic.claude-3-haiku-20240307-v1%3A0`).
pub(crate) fn decode_model_id(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// InvokeModel's validation for the embedding models: Titan takes one non-empty `inputText`
/// (and `dimensions` of 256, 512 or 1024), Cohere a non-empty `texts` list with an
/// `input_type`.
pub(crate) fn validate_invoke(model: &str, body: &Value) -> Result<(), Rejection> {
    let invalid = |m: &str| Err((400, error(400, m)));
    if model.contains("titan-embed") {
        match body.get("inputText").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {}
            _ => return invalid("Malformed input request: #: required key [inputText] not found"),
        }
        if let Some(d) = body.get("dimensions")
            && !matches!(d.as_u64(), Some(256 | 512 | 1024))
        {
            return invalid("Malformed input request: #/dimensions: must be 256, 512 or 1024");
        }
        return Ok(());
    }
    if model.contains("cohere.embed") {
        let texts_ok = body
            .get("texts")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_string));
        if !texts_ok {
            return invalid("Malformed input request: #: required key [texts] not found");
        }
        if body.get("input_type").and_then(Value::as_str).is_none() {
            return invalid("Malformed input request: #: required key [input_type] not found");
        }
        return Ok(());
    }
    Err((404, error(404, "The provided model identifier is invalid.")))
}

/// InvokeModel's answer for the embedding models.
pub(crate) fn invoke_answer(model: &str, body: &Value) -> Answer {
    let v = if model.contains("titan-embed") {
        let text = body
            .get("inputText")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dims = body
            .get("dimensions")
            .and_then(Value::as_u64)
            .unwrap_or(1024) as usize;
        json!({"embedding": embedding(text, dims.min(16)), "inputTextTokenCount": tokens(text.chars().count())})
    } else {
        let texts: Vec<&str> = body
            .get("texts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedding(t, 8)).collect();
        json!({"id": "mock", "embeddings": vectors, "texts": texts, "response_type": "embeddings_floats"})
    };
    Answer {
        json: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
        frames: Vec::new(),
        stream: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_decoded() {
        assert_eq!(
            decode_model_id("anthropic.claude-3-haiku-20240307-v1%3A0"),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(decode_model_id("plain"), "plain");
        assert_eq!(decode_model_id("bad%zz"), "bad%zz");
    }

    #[test]
    fn validation_requires_alternation() {
        let ok = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        assert!(validate(&ok).is_ok());
        let bad = json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]});
        assert_eq!(validate(&bad).unwrap_err().0, 400);
        let empty = json!({"messages": [{"role": "user", "content": []}]});
        assert!(validate(&empty).is_err());
    }
}
