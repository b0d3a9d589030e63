//! CloudWatch Embedded Metric Format: metrics as JSON log lines, which CloudWatch Logs turns
//! into metrics. Used in AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set), where nothing scrapes
//! `/metrics`.
//!
//! One line per observation:
//! `{"_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":"RouteIQ","Dimensions":[["model","status"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]}]},"model":"gpt","status":"200","Requests":1}`

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// The CloudWatch namespace RouteIQ's metrics go to.
pub const NAMESPACE: &str = "RouteIQ";

/// A CloudWatch metric unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One metric value of a line.
#[derive(Debug, Clone, Copy)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: Unit,
}

impl<'a> Metric<'a> {
    pub fn new(name: &'a str, value: f64, unit: Unit) -> Self {
        Metric { name, value, unit }
    }
}

/// Writes EMF lines to a writer (stdout in Lambda), one whole line per write.
pub struct EmfEmitter {
    namespace: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfEmitter {
    /// An emitter writing to stdout.
    pub fn stdout() -> Self {
        Self::new(NAMESPACE, Box::new(std::io::stdout()))
    }

    /// An emitter writing to `out`.
    pub fn new(namespace: &str, out: Box<dyn Write + Send>) -> Self {
        EmfEmitter {
            namespace: namespace.to_string(),
            out: Mutex::new(out),
        }
    }

    /// The EMF document for these metrics. `dimension_sets` lists the dimension names each
    /// metric is published under (every name must be a key of `dimensions`); non-finite
    /// values are left out (CloudWatch rejects them).
    pub fn document(
        &self,
        timestamp_ms: u64,
        dimensions: &[(&str, &str)],
        dimension_sets: &[&[&str]],
        metrics: &[Metric<'_>],
    ) -> Value {
        let metrics: Vec<&Metric<'_>> = metrics.iter().filter(|m| m.value.is_finite()).collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": metrics
                        .iter()
                        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        for (k, v) in dimensions {
            root.insert((*k).to_string(), Value::String((*v).to_string()));
        }
        for m in metrics {
            root.insert(m.name.to_string(), json!(m.value));
        }
        Value::Object(root)
    }

    /// Writes one EMF line.
    pub fn emit(
        &self,
        dimensions: &[(&str, &str)],
        dimension_sets: &[&[&str]],
        metrics: &[Metric<'_>],
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let doc = self.document(now, dimensions, dimension_sets, metrics);
        let mut line = doc.to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "writing an EMF metric line failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_valid_emf() {
        let buf = Buffer::default();
        let emf = EmfEmitter::new("RouteIQ", Box::new(buf.clone()));
        emf.emit(
            &[("model", "gpt"), ("status", "200")],
            &[&["model", "status"], &["model"]],
            &[
                Metric::new("Requests", 1.0, Unit::Count),
                Metric::new("RequestLatency", 12.5, Unit::Milliseconds),
                Metric::new("Cost", f64::NAN, Unit::None),
            ],
        );
        emf.emit(&[], &[&[]], &[Metric::new("LoadShed", 1.0, Unit::Count)]);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let doc: Value = serde_json::from_str(lines[0]).unwrap();
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "RouteIQ");
        assert_eq!(
            directive["Dimensions"],
            json!([["model", "status"], ["model"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "Requests", "Unit": "Count"},
                {"Name": "RequestLatency", "Unit": "Milliseconds"}
            ])
        );
        // Every dimension and metric named in the directive is a top-level member.
        assert_eq!(doc["model"], "gpt");
        assert_eq!(doc["status"], "200");
        assert_eq!(doc["Requests"], 1.0);
        assert_eq!(doc["RequestLatency"], 12.5);
        assert!(doc.get("Cost").is_none(), "non-finite values are dropped");
        let second: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["LoadShed"], 1.0);
    }
}
