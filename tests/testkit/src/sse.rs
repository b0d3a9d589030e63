//! Reading Server-Sent Events from responses.
//!
//! - [`read_sse`], [`parse_sse`]: the events of a response or a text, as sent;
//! - [`ChunkStream`]: an OpenAI-style stream read as the tests check it: its JSON chunks,
//!   whether `[DONE]` closed it, the concatenated content, the usage chunk.

use futures::StreamExt;
use serde_json::Value;

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Everything read from an SSE response.
#[derive(Debug, Clone, Default)]
pub struct SseOutcome {
    /// The complete events, in order.
    pub events: Vec<SseEvent>,
    /// Bytes after the last complete event (an event cut mid-way).
    pub trailing: String,
    /// The transport error that ended the body, if it did not end cleanly.
    pub error: Option<String>,
}

impl SseOutcome {
    /// The `data:` payloads.
    pub fn data(&self) -> Vec<String> {
        self.events.iter().map(|e| e.data.clone()).collect()
    }

    /// Whether the last event is `data: [DONE]`.
    pub fn ends_with_done(&self) -> bool {
        self.events.last().is_some_and(|e| e.data == "[DONE]")
    }
}

/// Turns `\r\n` and lone `\r` line ends into `\n` (a trailing `\r` waits for the next chunk).
fn normalize(buf: &mut String) {
    if !buf.contains('\r') {
        return;
    }
    let hold = buf.ends_with('\r');
    if hold {
        buf.pop();
    }
    let mut s = buf.replace("\r\n", "\n").replace('\r', "\n");
    if hold {
        s.push('\r');
    }
    *buf = s;
}

/// Splits complete events off the front of `buf` (text up to a blank line).
fn drain_events(buf: &mut String, out: &mut Vec<SseEvent>) {
    normalize(buf);
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf[..end].to_string();
        buf.drain(..end + 2);
        if let Some(ev) = parse_block(&block) {
            out.push(ev);
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut ev = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => ev.event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() && ev.event.is_none() {
        return None;
    }
    ev.data = data.join("\n");
    Some(ev)
}

/// Parses a whole SSE text into events (a last event without its blank line is kept too).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut buf = text.to_string();
    let mut out = Vec::new();
    drain_events(&mut buf, &mut out);
    if let Some(ev) = parse_block(buf.trim_end_matches('\r')) {
        out.push(ev);
    }
    out
}

/// Reads a streaming response to its end (or to its transport error) and returns every event.
pub async fn read_sse(resp: reqwest::Response) -> SseOutcome {
    let mut stream = resp.bytes_stream();
    let mut raw: Vec<u8> = Vec::new();
    let mut buf = String::new();
    let mut out = SseOutcome::default();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                raw.extend_from_slice(&bytes);
                // Only hand complete UTF-8 to the parser.
                let valid = match std::str::from_utf8(&raw) {
                    Ok(s) => s.len(),
                    Err(e) => e.valid_up_to(),
                };
                buf.push_str(&String::from_utf8_lossy(&raw[..valid]));
                raw.drain(..valid);
                drain_events(&mut buf, &mut out.events);
            }
            Err(e) => {
                out.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    buf.push_str(&String::from_utf8_lossy(&raw));
    out.trailing = buf;
    out
}

/// The `data:` payloads of a streaming response, in order (up to a transport error, if any).
pub async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    read_sse(resp).await.data()
}

/// An OpenAI-style stream (`chat.completion.chunk` / completion chunks closed by `[DONE]`)
/// read to its end.
#[derive(Debug, Clone, Default)]
pub struct ChunkStream {
    /// Every event's `data:` payload, in order (`[DONE]` included).
    pub data: Vec<String>,
    /// The payloads other than `[DONE]`, parsed (a payload that is not JSON fails the test).
    pub chunks: Vec<Value>,
    /// Whether the last event is `data: [DONE]`.
    pub done: bool,
    /// The transport error that ended the body, if it did not end cleanly.
    pub error: Option<String>,
}

impl ChunkStream {
    /// Reads a streaming response to its end (or to its transport error).
    pub async fn read(resp: reqwest::Response) -> ChunkStream {
        ChunkStream::from_outcome(read_sse(resp).await)
    }

    /// A whole SSE text (a buffered stream).
    pub fn parse(text: &str) -> ChunkStream {
        ChunkStream::from_outcome(SseOutcome {
            events: parse_sse(text),
            ..SseOutcome::default()
        })
    }

    /// The events read by [`read_sse`].
    ///
    /// # Panics
    /// If a payload other than `[DONE]` is not JSON.
    pub fn from_outcome(outcome: SseOutcome) -> ChunkStream {
        let done = outcome.ends_with_done();
        let data = outcome.data();
        let chunks = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| {
                serde_json::from_str(d)
                    .unwrap_or_else(|e| panic!("an SSE payload is not JSON ({e}): {d:?}"))
            })
            .collect();
        ChunkStream {
            data,
            chunks,
            done,
            error: outcome.error,
        }
    }

    /// The chat answer: every chunk's `choices[0].delta.content`, concatenated.
    pub fn content(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    /// The completion answer: every chunk's `choices[0].text`, concatenated.
    pub fn text(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| c["choices"][0]["text"].as_str())
            .collect()
    }

    /// Whether a chunk's `choices[0].finish_reason` is `reason`.
    pub fn finished_with(&self, reason: &str) -> bool {
        self.chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == reason)
    }

    /// The `usage` object of the last chunk that has one (`stream_options.include_usage`).
    pub fn usage(&self) -> Option<&Value> {
        self.chunks
            .iter()
            .rev()
            .map(|c| &c["usage"])
            .find(|u| u.is_object())
    }

    /// The last chunk (after a failure, the error event).
    pub fn last(&self) -> Option<&Value> {
        self.chunks.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        let evs = parse_sse(
            "event: ping\ndata: {\"type\":\"ping\"}\n\n: comment\n\ndata: a\ndata: b\n\r\ndata: [DONE]\n\n",
        );
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].event.as_deref(), Some("ping"));
        assert_eq!(evs[1].data, "a\nb");
        assert_eq!(evs[2].data, "[DONE]");
    }

    #[test]
    fn chunk_stream_reads_content_usage_and_done() {
        let s = ChunkStream::parse(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"text\":\"x\"}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        ));
        assert!(s.done);
        assert_eq!(s.data.len(), 5);
        assert_eq!(s.chunks.len(), 4);
        assert_eq!(s.content(), "ab");
        assert_eq!(s.text(), "x");
        assert!(s.finished_with("stop") && !s.finished_with("length"));
        assert_eq!(s.usage().unwrap()["total_tokens"], 3);
        assert_eq!(s.last().unwrap()["choices"], serde_json::json!([]));
        let cut = ChunkStream::parse("data: {\"error\":{\"message\":\"m\"}}\n\n");
        assert!(!cut.done);
        assert_eq!(cut.usage(), None);
        assert!(cut.last().unwrap()["error"]["message"].is_string());
    }
}
