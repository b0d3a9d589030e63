//! Reading Server-Sent Events from responses.

use futures::StreamExt;

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
}
