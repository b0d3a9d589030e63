//! Prometheus metrics (`GET /metrics`), and the same metrics as CloudWatch EMF lines in Lambda.
//!
//! Label values come only from the config (model groups, deployment ids, strategy names) or
//! from small fixed sets (routes, statuses, error classes), never from request data, so the
//! number of series stays bounded.

use std::time::Duration;

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use routeiq::router::CircuitState;

use crate::telemetry::emf::{EmfEmitter, Metric, Unit};

/// The `model` label of requests that never resolved to a model group.
pub const NO_MODEL: &str = "none";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const DECISION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];
const LOAD_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// One finished client request, as metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample<'a> {
    /// `chat`, `completions`, `embeddings`, `models`, `admin`, `other`.
    pub route: &'a str,
    /// The model group (from the config), or [`NO_MODEL`].
    pub model: &'a str,
    pub status: u16,
    pub duration: Duration,
    /// The strategy that routed it, when it was routed.
    pub strategy: Option<&'a str>,
    pub decision_time: Duration,
    pub upstream_time: Duration,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// USD, when prices are known.
    pub cost: Option<f64>,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    decision_duration: HistogramVec,
    strategy_decisions: IntCounterVec,
    circuit_state: IntGaugeVec,
    model_load: HistogramVec,
    upstream_errors: IntCounterVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    outbound_blocked: IntCounterVec,
    edge_hints: IntCounterVec,
    load_shed: IntCounter,
    in_flight: IntGauge,
    client_connections: IntGauge,
    reloads: IntCounterVec,
    experiment_requests: IntCounterVec,
    experiment_errors: IntCounterVec,
    experiment_tokens: IntCounterVec,
    experiment_cost: CounterVec,
    emf: Option<EmfEmitter>,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    match IntCounterVec::new(Opts::new(name, help), labels) {
        Ok(c) => c,
        Err(e) => unreachable!("static metric definition {name} is invalid: {e}"),
    }
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    match HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    ) {
        Ok(h) => h,
        Err(e) => unreachable!("static metric definition {name} is invalid: {e}"),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// A fresh registry; with `emf`, every observation is also written as an EMF line.
    pub fn new(emf: Option<EmfEmitter>) -> Self {
        let registry = Registry::new();
        let m = Metrics {
            requests: counter(
                "routeiq_requests_total",
                "Client requests by route, model group and HTTP status.",
                &["route", "model", "status"],
            ),
            request_duration: histogram(
                "routeiq_request_duration_seconds",
                "Client request latency (to the last byte for streams).",
                &["route", "model", "status"],
                LATENCY_BUCKETS,
            ),
            decision_duration: histogram(
                "routeiq_routing_decision_duration_seconds",
                "Time the router took to choose and order deployments.",
                &["strategy", "model"],
                DECISION_BUCKETS,
            ),
            strategy_decisions: counter(
                "routeiq_routing_decisions_total",
                "Routing decisions by strategy (strategy usage).",
                &["strategy", "model"],
            ),
            circuit_state: match IntGaugeVec::new(
                Opts::new(
                    "routeiq_circuit_breaker_state",
                    "Circuit breaker state per deployment: 0 closed, 1 open, 2 half-open.",
                ),
                &["deployment", "model"],
            ) {
                Ok(g) => g,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            model_load: histogram(
                "routeiq_model_load_duration_seconds",
                "Time to load a routing model (ML strategies).",
                &["model"],
                LOAD_BUCKETS,
            ),
            upstream_errors: counter(
                "routeiq_upstream_errors_total",
                "Failed upstream calls by deployment and error class.",
                &["deployment", "class"],
            ),
            tokens: counter(
                "routeiq_tokens_total",
                "Tokens by model group and kind (prompt, completion).",
                &["model", "kind"],
            ),
            cost: match CounterVec::new(
                Opts::new(
                    "routeiq_cost_usd_total",
                    "USD spent by model group (calls with known prices).",
                ),
                &["model"],
            ) {
                Ok(c) => c,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            outbound_blocked: counter(
                "routeiq_outbound_blocked_total",
                "Outbound connections refused by the SSRF guard, by reason.",
                &["reason"],
            ),
            edge_hints: counter(
                "routeiq_edge_hints_total",
                "Edge hints received, by outcome (valid, or why one was ignored).",
                &["outcome"],
            ),
            load_shed: match IntCounter::new(
                "routeiq_load_shed_total",
                "Requests refused with 503 because ROUTEIQ_MAX_CONCURRENT_REQUESTS were in flight.",
            ) {
                Ok(c) => c,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            in_flight: match IntGauge::new(
                "routeiq_in_flight_requests",
                "Client requests being served (streams until their last byte).",
            ) {
                Ok(g) => g,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            client_connections: match IntGauge::new(
                "routeiq_client_connections",
                "Open client connections (ROUTEIQ_MAX_CONNECTIONS caps them per process).",
            ) {
                Ok(g) => g,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            reloads: counter(
                "routeiq_reloads_total",
                "Admin reloads by kind (config, router) and result (ok, rejected).",
                &["kind", "result"],
            ),
            experiment_requests: counter(
                "routeiq_experiment_requests_total",
                "Requests assigned to each arm of the configured A/B experiment.",
                &["experiment", "arm"],
            ),
            experiment_errors: counter(
                "routeiq_experiment_errors_total",
                "Experiment requests that ended in an error (status >= 400 or a failed stream).",
                &["experiment", "arm"],
            ),
            experiment_tokens: counter(
                "routeiq_experiment_tokens_total",
                "Tokens of experiment requests by arm and kind (prompt, completion).",
                &["experiment", "arm", "kind"],
            ),
            experiment_cost: match CounterVec::new(
                Opts::new(
                    "routeiq_experiment_cost_usd_total",
                    "USD spent by experiment arm (calls with known prices).",
                ),
                &["experiment", "arm"],
            ) {
                Ok(c) => c,
                Err(e) => unreachable!("static metric definition is invalid: {e}"),
            },
            registry,
            emf,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(m.request_duration.clone()),
            Box::new(m.decision_duration.clone()),
            Box::new(m.strategy_decisions.clone()),
            Box::new(m.circuit_state.clone()),
            Box::new(m.model_load.clone()),
            Box::new(m.upstream_errors.clone()),
            Box::new(m.tokens.clone()),
            Box::new(m.cost.clone()),
            Box::new(m.outbound_blocked.clone()),
            Box::new(m.edge_hints.clone()),
            Box::new(m.load_shed.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.client_connections.clone()),
            Box::new(m.reloads.clone()),
            Box::new(m.experiment_requests.clone()),
            Box::new(m.experiment_errors.clone()),
            Box::new(m.experiment_tokens.clone()),
            Box::new(m.experiment_cost.clone()),
        ];
        for c in collectors {
            if let Err(e) = m.registry.register(c) {
                unreachable!("metric registered twice in a fresh registry: {e}");
            }
        }
        m
    }

    /// Whether observations are also written as EMF lines.
    pub fn emits_emf(&self) -> bool {
        self.emf.is_some()
    }

    /// Records a finished client request.
    pub fn observe_request(&self, s: &RequestSample<'_>) {
        let status = s.status.to_string();
        let labels = [s.route, s.model, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.request_duration
            .with_label_values(&labels)
            .observe(s.duration.as_secs_f64());
        if s.prompt_tokens > 0 {
            self.tokens
                .with_label_values(&[s.model, "prompt"])
                .inc_by(s.prompt_tokens);
        }
        if s.completion_tokens > 0 {
            self.tokens
                .with_label_values(&[s.model, "completion"])
                .inc_by(s.completion_tokens);
        }
        if let Some(c) = s.cost.filter(|c| c.is_finite() && *c > 0.0) {
            self.cost.with_label_values(&[s.model]).inc_by(c);
        }
        if let Some(emf) = &self.emf {
            let strategy = s.strategy.unwrap_or(NO_MODEL);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            emf.emit(
                &[
                    ("route", s.route),
                    ("model", s.model),
                    ("status", &status),
                    ("strategy", strategy),
                ],
                &[&["route", "model", "status"], &["strategy", "model"]],
                &[
                    Metric::new("Requests", 1.0, Unit::Count),
                    Metric::new("RequestLatency", ms(s.duration), Unit::Milliseconds),
                    Metric::new(
                        "RoutingDecisionTime",
                        ms(s.decision_time),
                        Unit::Milliseconds,
                    ),
                    Metric::new("UpstreamTime", ms(s.upstream_time), Unit::Milliseconds),
                    Metric::new("PromptTokens", s.prompt_tokens as f64, Unit::Count),
                    Metric::new("CompletionTokens", s.completion_tokens as f64, Unit::Count),
                    Metric::new("CostUSD", s.cost.unwrap_or(0.0), Unit::None),
                ],
            );
        }
    }

    /// Records a finished request of an experiment arm (labels: the configured experiment
    /// and arm names).
    pub fn observe_experiment(
        &self,
        experiment: &str,
        arm: &str,
        error: bool,
        prompt_tokens: u64,
        completion_tokens: u64,
        cost: Option<f64>,
    ) {
        let labels = [experiment, arm];
        self.experiment_requests.with_label_values(&labels).inc();
        if error {
            self.experiment_errors.with_label_values(&labels).inc();
        }
        for (kind, n) in [("prompt", prompt_tokens), ("completion", completion_tokens)] {
            if n > 0 {
                self.experiment_tokens
                    .with_label_values(&[experiment, arm, kind])
                    .inc_by(n);
            }
        }
        if let Some(c) = cost.filter(|c| c.is_finite() && *c > 0.0) {
            self.experiment_cost.with_label_values(&labels).inc_by(c);
        }
    }

    /// Records one routing decision (the EMF request line carries its time in Lambda).
    pub fn observe_decision(&self, strategy: &str, model: &str, took: Duration) {
        let labels = [strategy, model];
        self.decision_duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
        self.strategy_decisions.with_label_values(&labels).inc();
    }

    /// Records a failed upstream call.
    pub fn observe_upstream_error(&self, deployment: &str, class: &str) {
        self.upstream_errors
            .with_label_values(&[deployment, class])
            .inc();
        if let Some(emf) = &self.emf {
            emf.emit(
                &[("deployment", deployment), ("class", class)],
                &[&["deployment", "class"]],
                &[Metric::new("UpstreamErrors", 1.0, Unit::Count)],
            );
        }
    }

    /// Sets a deployment's circuit breaker state.
    pub fn set_circuit_state(&self, deployment: &str, model: &str, state: CircuitState) {
        let g = self.circuit_state.with_label_values(&[deployment, model]);
        let changed = g.get() != state.gauge_value();
        g.set(state.gauge_value());
        if let (true, Some(emf)) = (changed, &self.emf) {
            emf.emit(
                &[("deployment", deployment), ("model", model)],
                &[&["deployment", "model"]],
                &[Metric::new(
                    "CircuitBreakerState",
                    state.gauge_value() as f64,
                    Unit::None,
                )],
            );
        }
    }

    /// Records how long loading a routing model took: the hook for ML strategies, called
    /// once per (re)load with the model's configured name.
    pub fn record_model_load(&self, model: &str, took: Duration) {
        self.model_load
            .with_label_values(&[model])
            .observe(took.as_secs_f64());
        if let Some(emf) = &self.emf {
            emf.emit(
                &[("model", model)],
                &[&["model"]],
                &[Metric::new(
                    "ModelLoadDuration",
                    took.as_secs_f64(),
                    Unit::Seconds,
                )],
            );
        }
    }

    /// Records an outbound connection the SSRF guard refused.
    pub fn observe_outbound_blocked(&self, reason: &str) {
        self.outbound_blocked.with_label_values(&[reason]).inc();
        if let Some(emf) = &self.emf {
            emf.emit(
                &[("reason", reason)],
                &[&["reason"]],
                &[Metric::new("OutboundBlocked", 1.0, Unit::Count)],
            );
        }
    }

    /// Records an edge hint's outcome (`valid`, or the reason it was ignored).
    pub fn observe_edge_hint(&self, outcome: &str) {
        self.edge_hints.with_label_values(&[outcome]).inc();
        if let Some(emf) = &self.emf {
            emf.emit(
                &[("outcome", outcome)],
                &[&["outcome"]],
                &[Metric::new("EdgeHints", 1.0, Unit::Count)],
            );
        }
    }

    /// Records a request shed by backpressure.
    pub fn observe_load_shed(&self) {
        self.load_shed.inc();
        if let Some(emf) = &self.emf {
            emf.emit(&[], &[&[]], &[Metric::new("LoadShed", 1.0, Unit::Count)]);
        }
    }

    /// The gauge of requests in flight.
    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    /// The gauge of open client connections (a clone: the server holds it per connection).
    pub fn client_connections(&self) -> IntGauge {
        self.client_connections.clone()
    }

    /// Records an admin reload (`kind`: `config`/`router`; `result`: `ok`/`rejected`).
    pub fn observe_reload(&self, kind: &str, result: &str) {
        self.reloads.with_label_values(&[kind, result]).inc();
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        match TextEncoder::new().encode_to_string(&self.registry.gather()) {
            Ok(s) => s,
            Err(e) => format!("# error encoding metrics: {e}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_bounded_labels() {
        let m = Metrics::default();
        m.observe_request(&RequestSample {
            route: "chat",
            model: "gpt",
            status: 200,
            duration: Duration::from_millis(12),
            strategy: Some("simple-shuffle"),
            decision_time: Duration::from_micros(20),
            upstream_time: Duration::from_millis(10),
            prompt_tokens: 7,
            completion_tokens: 5,
            cost: Some(0.001),
        });
        m.observe_decision("simple-shuffle", "gpt", Duration::from_micros(20));
        m.observe_upstream_error("gpt-a", "rate_limit");
        m.set_circuit_state("gpt-a", "gpt", CircuitState::Open);
        m.record_model_load("knn-router", Duration::from_millis(300));
        m.observe_outbound_blocked("link_local");
        m.observe_load_shed();
        m.observe_reload("config", "ok");
        let text = m.render();
        for needle in [
            r#"routeiq_requests_total{model="gpt",route="chat",status="200"} 1"#,
            "routeiq_request_duration_seconds_bucket",
            r#"routeiq_routing_decision_duration_seconds_count{model="gpt",strategy="simple-shuffle"} 1"#,
            r#"routeiq_routing_decisions_total{model="gpt",strategy="simple-shuffle"} 1"#,
            r#"routeiq_circuit_breaker_state{deployment="gpt-a",model="gpt"} 1"#,
            r#"routeiq_model_load_duration_seconds_count{model="knn-router"} 1"#,
            r#"routeiq_upstream_errors_total{class="rate_limit",deployment="gpt-a"} 1"#,
            r#"routeiq_tokens_total{kind="prompt",model="gpt"} 7"#,
            r#"routeiq_tokens_total{kind="completion",model="gpt"} 5"#,
            r#"routeiq_cost_usd_total{model="gpt"} 0.001"#,
            r#"routeiq_outbound_blocked_total{reason="link_local"} 1"#,
            "routeiq_load_shed_total 1",
            "routeiq_in_flight_requests 0",
            r#"routeiq_reloads_total{kind="config",result="ok"} 1"#,
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
