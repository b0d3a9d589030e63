//! What the mock does with one request.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// How the mock answers one request.
///
/// Behaviours are scripted per model name with [`crate::mock::MockUpstream::script`] and consumed
/// in order; the last one of a script is sticky. Without a script a model answers [`Behavior::Ok`].
/// A request may also pick its behaviour with the `x-mock-behavior` header (see [`FromStr`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Answer normally: `"mock answer from <model>"` (or a tool call, see the crate docs).
    Ok,
    /// Answer normally, but with this text as the assistant's content.
    Text(String),
    /// Answer with this HTTP status. `body: None` picks the provider's usual error JSON for the
    /// code (OpenAI shape on OpenAI/Azure endpoints, Anthropic shape on `/v1/messages`); an
    /// OpenAI-shaped body given here is re-shaped for the Anthropic endpoint. `retry_after`
    /// adds a `retry-after: <secs>` header.
    Status {
        code: u16,
        body: Option<Value>,
        retry_after: Option<u64>,
    },
    /// Wait this many milliseconds, then answer normally.
    Delay(u64),
    /// Never answer (the connection stays open).
    Hang,
    /// Send the status line, headers (with the full `content-length`) and part of the JSON body,
    /// then drop the connection. On a streaming request: part of the first SSE event.
    ResetMidBody,
    /// Streaming: send this many SSE events, then drop the connection (no `[DONE]` /
    /// `message_stop`). Non-streaming requests get [`Behavior::ResetMidBody`].
    CutStream { after_chunks: usize },
    /// Streaming: send this many SSE events, then end the response cleanly without `[DONE]` /
    /// `message_stop`. Non-streaming requests get [`Behavior::ResetMidBody`].
    EndStreamEarly { after_chunks: usize },
    /// Streaming: send this many SSE events, then an error event (`data: {"error":{...}}` for
    /// OpenAI, `event: error` for Anthropic) and end. Non-streaming requests get a 500.
    ErrorMidStream { after_chunks: usize },
    /// Streaming: send every SSE event after a pause of this many milliseconds. Non-streaming
    /// requests get their JSON body in small pieces with this pause between them.
    Trickle { chunk_delay_ms: u64 },
}

/// OpenAI's error JSON.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The message OpenAI sends with `context_length_exceeded`.
pub const CONTEXT_LENGTH_MESSAGE: &str = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.";

impl Behavior {
    /// `Status` with the default body for `code`.
    pub fn status(code: u16) -> Self {
        Behavior::Status {
            code,
            body: None,
            retry_after: None,
        }
    }

    /// `Status` with this body.
    pub fn status_with_body(code: u16, body: Value) -> Self {
        Behavior::Status {
            code,
            body: Some(body),
            retry_after: None,
        }
    }

    /// 429 rate limit, with `retry-after: secs` when given.
    pub fn rate_limited(retry_after: Option<u64>) -> Self {
        Behavior::Status {
            code: 429,
            body: None,
            retry_after,
        }
    }

    /// 500 server error.
    pub fn server_error() -> Self {
        Self::status(500)
    }

    /// 503 service unavailable.
    pub fn unavailable() -> Self {
        Self::status(503)
    }

    /// 401 invalid API key.
    pub fn unauthorized() -> Self {
        Self::status(401)
    }

    /// 400 `context_length_exceeded` (OpenAI's exact shape; Anthropic's "prompt is too long"
    /// on `/v1/messages`).
    pub fn context_length_exceeded() -> Self {
        Self::status_with_body(
            400,
            openai_error(
                CONTEXT_LENGTH_MESSAGE,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        )
    }

    /// 400 content policy violation (OpenAI's shape).
    pub fn content_policy() -> Self {
        Self::status_with_body(
            400,
            json!({"error": {
                "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "content_policy_violation"
            }}),
        )
    }

    /// `n` times `failure`, then [`Behavior::Ok`] (sticky): a script for retry tests.
    pub fn fail_times(n: usize, failure: Behavior) -> Vec<Behavior> {
        let mut script = vec![failure; n];
        script.push(Behavior::Ok);
        script
    }
}

/// Error from parsing an `x-mock-behavior` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBehaviorError(pub String);

impl fmt::Display for ParseBehaviorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad x-mock-behavior: {}", self.0)
    }
}

impl std::error::Error for ParseBehaviorError {}

fn num<T: FromStr>(s: Option<&str>, whole: &str) -> Result<T, ParseBehaviorError> {
    s.and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ParseBehaviorError(whole.to_string()))
}

/// The `x-mock-behavior` header syntax: `ok`, `text:<content>`, `status:<code>[:<retry_after>]`,
/// `rate-limit[:<retry_after>]`, `context-length`, `content-policy`, `delay:<ms>`, `hang`,
/// `reset`, `cut:<n>`, `end:<n>`, `error-mid-stream:<n>`, `trickle:<ms>`.
impl FromStr for Behavior {
    type Err = ParseBehaviorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (head, rest) = match s.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        let bad = || ParseBehaviorError(s.to_string());
        Ok(match head.to_ascii_lowercase().as_str() {
            "ok" => Behavior::Ok,
            "text" => Behavior::Text(rest.unwrap_or("").to_string()),
            "status" => {
                let rest = rest.ok_or_else(bad)?;
                let (code, retry) = match rest.split_once(':') {
                    Some((c, r)) => (c, Some(num(Some(r), s)?)),
                    None => (rest, None),
                };
                Behavior::Status {
                    code: num(Some(code), s)?,
                    body: None,
                    retry_after: retry,
                }
            }
            "rate-limit" | "429" => Behavior::rate_limited(match rest {
                Some(r) => Some(num(Some(r), s)?),
                None => None,
            }),
            "context-length" => Behavior::context_length_exceeded(),
            "content-policy" => Behavior::content_policy(),
            "delay" => Behavior::Delay(num(rest, s)?),
            "hang" => Behavior::Hang,
            "reset" => Behavior::ResetMidBody,
            "cut" => Behavior::CutStream {
                after_chunks: num(rest, s)?,
            },
            "end" => Behavior::EndStreamEarly {
                after_chunks: num(rest, s)?,
            },
            "error-mid-stream" => Behavior::ErrorMidStream {
                after_chunks: num(rest, s)?,
            },
            "trickle" => Behavior::Trickle {
                chunk_delay_ms: num(rest, s)?,
            },
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_syntax() {
        assert_eq!("ok".parse::<Behavior>(), Ok(Behavior::Ok));
        assert_eq!(
            "status:429:3".parse::<Behavior>(),
            Ok(Behavior::rate_limited(Some(3)))
        );
        assert_eq!(
            "status:500".parse::<Behavior>(),
            Ok(Behavior::server_error())
        );
        assert_eq!(
            "cut:2".parse::<Behavior>(),
            Ok(Behavior::CutStream { after_chunks: 2 })
        );
        assert_eq!("delay:150".parse::<Behavior>(), Ok(Behavior::Delay(150)));
        assert_eq!(
            "text:hello: world".parse::<Behavior>(),
            Ok(Behavior::Text("hello: world".into()))
        );
        assert!("status".parse::<Behavior>().is_err());
        assert!("nope".parse::<Behavior>().is_err());
    }

    #[test]
    fn fail_times_ends_with_ok() {
        let s = Behavior::fail_times(2, Behavior::unavailable());
        assert_eq!(s.len(), 3);
        assert_eq!(s[2], Behavior::Ok);
    }
}
