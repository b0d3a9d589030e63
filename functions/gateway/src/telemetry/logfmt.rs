//! Log lines for production: plain text (`tracing`'s compact layout, no colours) or JSON lines,
//! written straight from each field's value.
//!
//! tracing-subscriber's own formatters cost about as much CPU as the rest of a request for the
//! per-request access line: the compact one styles every field name through its ANSI
//! machinery even with colours off, and the JSON one renders span fields as text and parses
//! them back into JSON for every line. These formatters write each field once: numbers and
//! booleans as they are, strings escaped once, span fields kept pre-rendered in the span (in
//! the line's own syntax) and copied into every line logged inside it.
//!
//! Text: `2026-12-02T16:40:01.123456Z  INFO request{trace_id=ab… route="chat"}: target: message k=v …`
//! (strings quoted as `Debug` shows them, `%`-recorded values bare).
//! JSON: `{"timestamp":…,"level":"INFO","target":…,"message":…,<fields>,"span":{"name":…,<fields>},
//! "spans":[{…},…]}` — the layout of tracing-subscriber's JSON with `flatten_event(true)`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The line syntax: text or JSON. Both the event format and the span-field format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    json: bool,
}

impl Lines {
    pub const TEXT: Lines = Lines { json: false };
    pub const JSON: Lines = Lines { json: true };
}

/// Writes `s` as the inside of a JSON string.
fn json_escaped(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if esc.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(esc)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// A `fmt::Write` that JSON-escapes what goes through it (for `Debug`/`Display` values).
struct JsonEscaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for JsonEscaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escaped(self.0, s)
    }
}

/// Writes fields as `k=v` pairs (text) or `"k":v` members (JSON), each preceded by a
/// separator when something was written before.
struct FieldWriter<'a, W: fmt::Write> {
    out: &'a mut W,
    json: bool,
    /// Whether a separator is due before the next field.
    sep: bool,
    /// Text lines print the message bare and first; it is skipped here then.
    skip_message: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> FieldWriter<'_, W> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if self.sep {
            self.out.write_str(if self.json { "," } else { " " })?;
        }
        self.sep = true;
        if self.json {
            self.out.write_char('"')?;
            json_escaped(self.out, field.name())?;
            self.out.write_str("\":")
        } else {
            self.out.write_str(field.name())?;
            self.out.write_char('=')
        }
    }

    fn skip(&self, field: &Field) -> bool {
        self.skip_message && field.name() == "message"
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Self) -> fmt::Result) {
        if self.result.is_err() || self.skip(field) {
            return;
        }
        self.result = self.key(field).and_then(|()| value(self));
    }
}

impl<W: fmt::Write> Visit for FieldWriter<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, |w| {
            if w.json && !value.is_finite() {
                w.out.write_str("null")
            } else {
                write!(w.out, "{value}")
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| write!(w.out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w.out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| {
            w.out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |w| {
            if w.json {
                w.out.write_char('"')?;
                json_escaped(w.out, value)?;
                w.out.write_char('"')
            } else if value
                .bytes()
                .any(|b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
            {
                write!(w.out, "{value:?}")
            } else {
                // What `Debug` prints for plain printable ASCII, without its per-char escaping.
                w.out.write_char('"')?;
                w.out.write_str(value)?;
                w.out.write_char('"')
            }
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| {
            if w.json {
                w.out.write_char('"')?;
                write!(JsonEscaping(w.out), "{value:?}")?;
                w.out.write_char('"')
            } else {
                write!(w.out, "{value:?}")
            }
        });
    }
}

/// Span fields, rendered once when the span is created or recorded into.
impl<'writer> FormatFields<'writer> for Lines {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut v = FieldWriter {
            out: &mut writer,
            json: self.json,
            sep: false,
            skip_message: false,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut v = FieldWriter {
            sep: !current.fields.is_empty(),
            out: &mut current.fields,
            json: self.json,
            skip_message: false,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// Finds the event's `message` for text lines, which print it before the other fields.
struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if self.json {
            w.write_str("{\"timestamp\":\"")?;
            SystemTime.format_time(&mut w)?;
            write!(
                w,
                "\",\"level\":\"{}\",\"target\":\"",
                level_str(meta.level())
            )?;
            json_escaped(&mut w, meta.target())?;
            w.write_char('"')?;
            let mut v = FieldWriter {
                out: &mut w,
                json: true,
                sep: true,
                skip_message: false,
                result: Ok(()),
            };
            event.record(&mut v);
            v.result?;
            if let Some(scope) = ctx.event_scope() {
                let mut spans = String::new();
                let mut current = None;
                for span in scope.from_root() {
                    let ext = span.extensions();
                    let mut one = String::with_capacity(64);
                    one.push_str("{\"name\":\"");
                    json_escaped(&mut one, span.name())?;
                    one.push('"');
                    if let Some(f) = ext.get::<FormattedFields<N>>()
                        && !f.fields.is_empty()
                    {
                        one.push(',');
                        one.push_str(&f.fields);
                    }
                    one.push('}');
                    if !spans.is_empty() {
                        spans.push(',');
                    }
                    spans.push_str(&one);
                    current = Some(one);
                }
                if let Some(current) = current {
                    write!(w, ",\"span\":{current},\"spans\":[{spans}]")?;
                }
            }
            return writeln!(w, "}}");
        }
        SystemTime.format_time(&mut w)?;
        write!(w, " {:>5} ", level_str(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                if any {
                    w.write_char(':')?;
                }
                any = true;
                w.write_str(span.name())?;
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>()
                    && !f.fields.is_empty()
                {
                    write!(w, "{{{}}}", f.fields)?;
                }
            }
            if any {
                w.write_str(": ")?;
            }
        }
        write!(w, "{}: ", meta.target())?;
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        w.write_str(&message)?;
        let mut v = FieldWriter {
            out: &mut w,
            json: false,
            sep: !message.is_empty(),
            skip_message: true,
            result: Ok(()),
        };
        event.record(&mut v);
        v.result?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture(lines: Lines, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(lines)
            .event_format(lines)
            .with_writer(move || out.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    fn log_a_request() {
        let span = tracing::info_span!(
            "request",
            trace_id = %"abc123",
            route = "chat",
            note = "naïve",
            status = tracing::field::Empty
        );
        let _g = span.enter();
        span.record("status", 200u64);
        tracing::info!(
            target: "routeiq::request",
            model_group = "gpt \"4\"\n",
            duration_ms = 1.25,
            attempts = 2u32,
            delta = -3i64,
            fallback = false,
            cost_usd = None::<f64>,
            error = %"bad\tthing",
            "request"
        );
    }

    #[test]
    fn json_lines_are_json_with_fields_and_spans() {
        let out = capture(Lines::JSON, log_a_request);
        let line = out.lines().next().unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "routeiq::request");
        assert_eq!(v["message"], "request");
        assert_eq!(v["model_group"], "gpt \"4\"\n");
        assert_eq!(v["duration_ms"], 1.25);
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["fallback"], false);
        assert!(
            v.get("cost_usd").is_none(),
            "None fields are left out: {line}"
        );
        assert_eq!(v["error"], "bad\tthing");
        assert_eq!(v["span"]["name"], "request");
        assert_eq!(v["span"]["trace_id"], "abc123");
        assert_eq!(v["span"]["route"], "chat");
        assert_eq!(v["span"]["status"], 200);
        assert_eq!(v["spans"][0], v["span"]);
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.starts_with("20") && ts.ends_with('Z'), "{ts}");
    }

    #[test]
    fn text_lines_read_like_compact_ones() {
        let out = capture(Lines::TEXT, log_a_request);
        let line = out.lines().next().unwrap();
        let after_time = line.split_once(' ').unwrap().1;
        assert_eq!(
            after_time,
            " INFO request{trace_id=abc123 route=\"chat\" note=\"naïve\" status=200}: routeiq::request: request \
             model_group=\"gpt \\\"4\\\"\\n\" duration_ms=1.25 attempts=2 delta=-3 \
             fallback=false error=bad\tthing"
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn escaping_covers_control_characters() {
        let mut s = String::new();
        json_escaped(&mut s, "a\u{1}b\"c\\").unwrap();
        assert_eq!(s, "a\\u0001b\\\"c\\\\");
        let parsed: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(parsed, "a\u{1}b\"c\\");
    }
}
