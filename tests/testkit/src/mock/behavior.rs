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
    /// Answer with exactly this status, `content-type`, body and extra headers, whatever the
    /// endpoint and whether the request asked for a stream: an upstream that answers 200 with
    /// an error body, an HTML page from a proxy in front of it, or a header no real service
    /// sends (`retry-after: 99999999999999999999`).
    Raw {
        status: u16,
        content_type: String,
        body: String,
        /// Extra response headers (name, value); not settable from the header syntax.
        headers: Vec<(String, String)>,
    },
    /// Answer normally, with an assistant content of exactly this many bytes (`x`s, every
    /// 1024th byte a space), sent in 64 KiB pieces without a `content-length` (chunked), so a
    /// reader has to count. Streaming: one SSE event per word (~1 KiB of content each).
    Huge { content_bytes: usize },
    /// Streaming: `200 text/event-stream`, then `data: {"` and this many more bytes without a
    /// newline (16 KiB pieces), then silence with the connection open: an SSE line that never
    /// ends. Non-streaming requests get the same as an `application/json` body (`{"id":"`
    /// and the bytes) that never ends.
    EndlessLine { bytes: usize },
}

/// OpenAI's error JSON.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// How many bytes an [`Behavior::EndlessLine`] sends when the header gives no count: 8 MiB.
pub const ENDLESS_LINE_DEFAULT_BYTES: usize = 8 * 1024 * 1024;

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

    /// `Raw`: this status, content type and body, no extra headers.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Behavior::Raw {
            status,
            content_type: content_type.to_string(),
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// `Raw` with extra response headers.
    pub fn raw_with_headers(
        status: u16,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        Behavior::Raw {
            status,
            content_type: content_type.to_string(),
            body: body.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `EndlessLine` of [`ENDLESS_LINE_DEFAULT_BYTES`].
    pub fn endless_line() -> Self {
        Behavior::EndlessLine {
            bytes: ENDLESS_LINE_DEFAULT_BYTES,
        }
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
/// `reset`, `cut:<n>`, `end:<n>`, `error-mid-stream:<n>`, `trickle:<ms>`,
/// `raw:<status>:<content-type>:<body>` (the body may contain `:`; no extra headers),
/// `huge:<content bytes>`, `endless-line[:<bytes>]` (default 8 MiB).
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
            "raw" => {
                let mut parts = rest.ok_or_else(bad)?.splitn(3, ':');
                let status: u16 = num(parts.next(), s)?;
                let content_type = parts.next().map(str::trim).unwrap_or("");
                if !(100..=999).contains(&status) || content_type.is_empty() {
                    return Err(bad());
                }
                Behavior::raw(status, content_type, parts.next().unwrap_or(""))
            }
            "huge" => Behavior::Huge {
                content_bytes: num(rest, s)?,
            },
            "endless-line" => Behavior::EndlessLine {
                bytes: match rest {
                    Some(r) => num(Some(r), s)?,
                    None => ENDLESS_LINE_DEFAULT_BYTES,
                },
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
    fn parses_raw_huge_and_endless_line() {
        assert_eq!(
            "raw:200:text/html:<html>a: b</html>".parse::<Behavior>(),
            Ok(Behavior::raw(200, "text/html", "<html>a: b</html>"))
        );
        assert_eq!(
            "raw:502:text/plain".parse::<Behavior>(),
            Ok(Behavior::raw(502, "text/plain", ""))
        );
        assert!("raw".parse::<Behavior>().is_err());
        assert!("raw:200".parse::<Behavior>().is_err());
        assert!("raw:abc:text/html:x".parse::<Behavior>().is_err());
        assert!("raw:42:text/html:x".parse::<Behavior>().is_err());
        assert_eq!(
            "huge:2097152".parse::<Behavior>(),
            Ok(Behavior::Huge {
                content_bytes: 2 * 1024 * 1024
            })
        );
        assert!("huge".parse::<Behavior>().is_err());
        assert_eq!(
            "endless-line".parse::<Behavior>(),
            Ok(Behavior::endless_line())
        );
        assert_eq!(
            "endless-line:1000".parse::<Behavior>(),
            Ok(Behavior::EndlessLine { bytes: 1000 })
        );
        assert!("endless-line:lots".parse::<Behavior>().is_err());
        assert_eq!(
            Behavior::raw_with_headers(429, "application/json", "{}", &[("retry-after", "9")]),
            Behavior::Raw {
                status: 429,
                content_type: "application/json".into(),
                body: "{}".into(),
                headers: vec![("retry-after".into(), "9".into())],
            }
        );
    }

    #[test]
    fn fail_times_ends_with_ok() {
        let s = Behavior::fail_times(2, Behavior::unavailable());
        assert_eq!(s.len(), 3);
        assert_eq!(s[2], Behavior::Ok);
    }
}
