//! Logging and tracing: the `tracing` subscriber (compact text or JSON lines on stdout) and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set,
//! OpenTelemetry traces exported over OTLP/HTTP (protobuf) with the standard `OTEL_*`
//! variables (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`...).
//!
//! Without an endpoint no exporter, batch thread or propagator is created: tracing spans then
//! only feed the log lines.
//!
//! Spans: `request` (one per client request) → `routing_decision` (`strategy`,
//! `model_selected`, `candidates_count`) → `upstream_call` (`provider`, `deployment`,
//! `tokens`).
//!
//! Submodules: [`metrics`] (Prometheus), [`emf`] (CloudWatch Embedded Metric Format),
//! [`logfmt`] (the text and JSON line formatters).

pub mod emf;
pub mod logfmt;
pub mod metrics;

use std::fmt;

use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What [`init`] set up; [`Telemetry::shutdown`] flushes pending spans.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "OpenTelemetry shutdown failed");
        }
    }
}

/// Whether the environment asks for OTLP trace export.
pub fn otlp_requested(env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Per-request spans below `request` that only the trace exporter records.
const INNER_SPANS: [&str; 2] = ["routing_decision", "upstream_call"];

/// Installs the global subscriber: JSON lines when `json`, else compact text; filter from
/// `RUST_LOG` (default `info`); plus the OpenTelemetry layer when [`otlp_requested`].
/// Must run inside a tokio runtime when exporting (the exporter sends through it).
pub fn init(json: bool, env: &dyn Fn(&str) -> Option<String>) -> Telemetry {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into log files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && env("NO_COLOR").is_none();
    // Lines for machines (JSON, or text to a file or a collector) use the cheap formatters of
    // `logfmt`; a terminal gets tracing-subscriber's coloured compact lines.
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(crate::telemetry::logfmt::Lines::JSON)
            .event_format(crate::telemetry::logfmt::Lines::JSON)
            .with_writer(std::io::stdout)
            .boxed()
    } else if ansi {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(true)
            .with_writer(std::io::stdout)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(crate::telemetry::logfmt::Lines::TEXT)
            .event_format(crate::telemetry::logfmt::Lines::TEXT)
            .with_writer(std::io::stdout)
            .boxed()
    };
    let (provider, otel_error) = if otlp_requested(env) {
        match otlp_provider(env) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("routeiq"))
            .with_tracked_inactivity(false)
    });
    // The log lines skip the routing and upstream spans: formatting their fields for the
    // context prefix cost more than the rest of a request, and every event inside them names
    // its deployment and group itself. Exported traces keep them.
    let fmt_layer = fmt_layer.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.is_span() && INNER_SPANS.contains(&meta.name()))
    }));
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
    if let Some(e) = otel_error {
        tracing::error!(error = %e, "OpenTelemetry export disabled: the OTLP exporter could not be built");
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::info!("exporting OpenTelemetry traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

/// Makes an incoming W3C `traceparent` (in `headers`) the parent of `span`, so the gateway's
/// spans join the caller's trace.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    if let Err(e) = span.set_parent(cx) {
        tracing::debug!(error = %e, "cannot attach the incoming trace context");
    }
}

fn otlp_provider(env: &dyn Fn(&str) -> Option<String>) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "no async runtime to send spans through".to_string())?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(OtlpHttpClient { client, runtime })
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("routeiq");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The OTLP exporter's HTTP client: the gateway's reqwest, driven on the tokio runtime (the
/// batch processor exports from its own thread).
struct OtlpHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for OtlpHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtlpHttpClient")
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let (status, headers, body) = task.await??;
        let mut out = Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_only_when_an_endpoint_is_set() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!otlp_requested(&env(&[])));
        assert!(otlp_requested(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318"
        )])));
        assert!(otlp_requested(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces"
        )])));
        assert!(!otlp_requested(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true")
        ])));
    }
}
