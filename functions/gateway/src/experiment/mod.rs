//! A/B experiments: assigning requests to arms and counting their outcomes.
//!
//! - [`route`]: applies conversation affinity and the configured experiment
//!   (`routing_strategy_args.experiment`, see [`routeiq::router::experiment`]) to a request:
//!   the model group to dispatch to, the arm's ML routing profile, the affinity key
//!   ([`Routed`]); the arm is kept in the request's context ([`ExperimentTag`]);
//! - [`ExperimentRecorder`]: when a request ends, adds its outcome to per-arm, per-hour
//!   counters (requests, errors, prompt/completion tokens, cost in micro-dollars) and to
//!   Prometheus; sums them over the retention window for `GET /router/experiments`
//!   (`http/admin.rs`);
//! - [`counters`]: the counters are batched in process and flushed in the background.

pub mod counters;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use routeiq::ml::centroid::Profile;
use routeiq::ml::routing::PromptFeatures;
use routeiq::router::experiment::{ExperimentMetric, ExperimentSettings, counter_key, hour_of};
use routeiq::state::{Clock, StateStore};
use serde_json::{Map, Value, json};

use crate::gateway::Gateway;
use crate::http::observe::RequestCtx;
use crate::http::request_keys::RequestKeys;
use crate::telemetry::metrics::Metrics;

pub use counters::{CounterBatcher, FLUSH_INTERVAL};

/// Response header naming the experiment arm (`<experiment>/<arm>`).
pub const EXPERIMENT_HEADER: &str = crate::http::headers::EXPERIMENT;
/// Response header with the affinity outcome (`hit`, `miss`, `set`).
pub const AFFINITY_HEADER: &str = crate::http::headers::AFFINITY;

/// How a request is routed after its keys and the experiment are applied.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The model to dispatch to: the requested one, or the experiment arm's group.
    pub model: String,
    /// The arm's ML routing profile, applied when the request names none.
    pub profile: Option<Profile>,
    /// The affinity key, when affinity is on.
    pub conversation: Option<Arc<str>>,
}

impl Routed {
    /// The prompt features with the arm's profile when the request named none.
    pub fn with_profile(
        &self,
        features: Option<Arc<PromptFeatures>>,
    ) -> Option<Arc<PromptFeatures>> {
        match (features, self.profile) {
            (Some(f), Some(p)) if f.profile.is_none() => {
                let mut f = Arc::unwrap_or_clone(f);
                f.profile = Some(p);
                Some(Arc::new(f))
            }
            (f, _) => f,
        }
    }
}

/// Applies conversation affinity and the experiment to a request for `model`: the model to
/// dispatch to, the arm's profile and the affinity key; records the arm in `ctx`.
pub fn route(gw: &Gateway, ctx: &RequestCtx, model: &str, keys: &RequestKeys) -> Routed {
    let conversation = gw
        .router
        .affinity_ttl()
        .and_then(|_| keys.affinity_key())
        .map(Arc::from);
    let mut routed = Routed {
        model: model.to_string(),
        profile: None,
        conversation,
    };
    let Some(exp) = &gw.experiment else {
        return routed;
    };
    let settings = exp.settings();
    if gw.router.resolve_group(model) != gw.router.resolve_group(&settings.model_group) {
        return routed;
    }
    let key = keys.conversation.as_deref().or(keys.user.as_deref());
    let arm = settings.assign(key, &mut fastrand::Rng::new());
    if let Some(a) = settings.arms.get(arm) {
        if let Some(m) = &a.model {
            routed.model = m.clone();
        }
        routed.profile = a.profile;
        tracing::debug!(experiment = %settings.name, arm = %a.name, keyed = key.is_some(), "experiment arm assigned");
    }
    ctx.experiment(ExperimentTag {
        recorder: exp.clone(),
        arm,
    });
    routed
}

/// The arm a request was assigned, kept in its [`RequestCtx`] until it ends.
#[derive(Clone)]
pub struct ExperimentTag {
    pub recorder: Arc<ExperimentRecorder>,
    pub arm: usize,
}

impl std::fmt::Debug for ExperimentTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentTag")
            .field("experiment", &self.recorder.settings.name)
            .field("arm", &self.arm_name())
            .finish()
    }
}

impl ExperimentTag {
    pub fn arm_name(&self) -> &str {
        self.recorder
            .settings
            .arms
            .get(self.arm)
            .map_or("", |a| a.name.as_str())
    }

    /// `<experiment>/<arm>`, for the response header.
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{}/{}",
            self.recorder.settings.name,
            self.arm_name()
        ))
        .ok()
    }
}

/// What a finished request contributes to its arm's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArmOutcome {
    pub error: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// USD.
    pub cost: Option<f64>,
}

/// The configured experiment and where its counters go.
pub struct ExperimentRecorder {
    settings: ExperimentSettings,
    counters: Arc<CounterBatcher>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl ExperimentRecorder {
    pub fn new(
        settings: ExperimentSettings,
        counters: Arc<CounterBatcher>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> ExperimentRecorder {
        ExperimentRecorder {
            settings,
            counters,
            metrics,
            clock,
        }
    }

    pub fn settings(&self) -> &ExperimentSettings {
        &self.settings
    }

    fn ttl(&self) -> Duration {
        // The bucket's own hour plus the retention window.
        Duration::from_secs((u64::from(self.settings.retention_hours) + 1) * 3600)
    }

    /// Adds a finished request's outcome to `arm`'s counters (in process; flushed later)
    /// and to Prometheus.
    pub fn record(&self, arm: usize, outcome: ArmOutcome) {
        let Some(a) = self.settings.arms.get(arm) else {
            return;
        };
        let hour = hour_of(self.clock.now_ms());
        let cost_micro = outcome
            .cost
            .filter(|c| c.is_finite() && *c > 0.0)
            .map_or(0, |c| (c * 1e6).round() as i64);
        let deltas = [
            (ExperimentMetric::Requests, 1),
            (ExperimentMetric::Errors, i64::from(outcome.error)),
            (
                ExperimentMetric::PromptTokens,
                outcome.prompt_tokens.min(i64::MAX as u64) as i64,
            ),
            (
                ExperimentMetric::CompletionTokens,
                outcome.completion_tokens.min(i64::MAX as u64) as i64,
            ),
            (ExperimentMetric::CostMicroUsd, cost_micro),
        ];
        let ttl = self.ttl();
        for (metric, delta) in deltas {
            if delta != 0 {
                self.counters.add(
                    counter_key(&self.settings.name, &a.name, hour, metric),
                    delta,
                    ttl,
                );
            }
        }
        self.metrics.observe_experiment(
            &self.settings.name,
            &a.name,
            outcome.error,
            outcome.prompt_tokens,
            outcome.completion_tokens,
            outcome.cost,
        );
    }

    /// Per arm, every counter summed over the retention window (one batched read).
    pub async fn totals(&self, state: &dyn StateStore) -> Result<Value, routeiq::Error> {
        let now_hour = hour_of(self.clock.now_ms());
        let hours: Vec<u64> = (0..u64::from(self.settings.retention_hours))
            .map(|back| now_hour.saturating_sub(back))
            .collect();
        let mut keys = Vec::new();
        for arm in &self.settings.arms {
            for metric in ExperimentMetric::ALL {
                for h in &hours {
                    keys.push(counter_key(&self.settings.name, &arm.name, *h, metric));
                }
            }
        }
        let values = state.get_counters(&keys).await?;
        let per_metric = hours.len();
        let per_arm = per_metric * ExperimentMetric::ALL.len();
        let mut arms = Map::new();
        for (i, arm) in self.settings.arms.iter().enumerate() {
            let sum = |m: usize| -> i64 {
                let start = i * per_arm + m * per_metric;
                values
                    .get(start..start + per_metric)
                    .map_or(0, |s| s.iter().sum())
            };
            let (requests, errors, prompt, completion, cost) =
                (sum(0), sum(1), sum(2), sum(3), sum(4));
            arms.insert(
                arm.name.clone(),
                json!({
                    "weight": arm.weight,
                    "model": arm.model,
                    "profile": arm.profile.map(|p| p.as_str()),
                    "requests": requests,
                    "errors": errors,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "cost_micro_usd": cost,
                    "cost_usd": cost as f64 / 1e6,
                    "error_rate": if requests > 0 { errors as f64 / requests as f64 } else { 0.0 },
                }),
            );
        }
        Ok(json!({
            "name": self.settings.name,
            "model_group": self.settings.model_group,
            "retention_hours": self.settings.retention_hours,
            "arms": arms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use routeiq::state::{InMemoryStateStore, ManualClock};
    use serde_json::json;

    use super::*;

    fn recorder() -> (
        Arc<ManualClock>,
        Arc<InMemoryStateStore>,
        ExperimentRecorder,
    ) {
        let clock = Arc::new(ManualClock::new(1_000 * 3_600_000));
        let state = Arc::new(InMemoryStateStore::new(clock.clone()));
        let settings = ExperimentSettings::from_value(&json!({
            "name": "e", "model_group": "g", "retention_hours": 2,
            "arms": {"a": {"weight": 1}, "b": {"weight": 1, "model": "h"}}
        }))
        .unwrap();
        let batcher = CounterBatcher::new(state.clone(), FLUSH_INTERVAL);
        let r = ExperimentRecorder::new(
            settings,
            batcher,
            Arc::new(Metrics::default()),
            clock.clone(),
        );
        (clock, state, r)
    }

    #[tokio::test]
    async fn counters_batch_then_sum_over_the_retention_window() {
        let (clock, state, r) = recorder();
        let ok = ArmOutcome {
            error: false,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost: Some(0.000_25),
        };
        r.record(0, ok);
        r.record(
            0,
            ArmOutcome {
                error: true,
                ..ArmOutcome::default()
            },
        );
        r.record(1, ok);
        // Summed in process: one pending delta per non-zero counter (a: 5; b: no errors, 4),
        // none written yet.
        assert_eq!(r.counters.pending(), 9);
        assert_eq!(
            r.totals(state.as_ref()).await.unwrap()["arms"]["a"]["requests"],
            0
        );
        r.counters.flush().await;
        assert_eq!(r.counters.pending(), 0);
        clock.advance(Duration::from_secs(3600));
        r.record(0, ok);
        r.counters.flush().await;
        let t = r.totals(state.as_ref()).await.unwrap();
        let a = &t["arms"]["a"];
        assert_eq!(a["requests"], 3, "{t}");
        assert_eq!(a["errors"], 1);
        assert_eq!(a["prompt_tokens"], 20);
        assert_eq!(a["completion_tokens"], 10);
        assert_eq!(a["cost_micro_usd"], 500);
        assert_eq!(t["arms"]["b"]["requests"], 1);
        // Two hours later the first hour's bucket is outside the window.
        clock.advance(Duration::from_secs(2 * 3600));
        let t = r.totals(state.as_ref()).await.unwrap();
        assert_eq!(t["arms"]["a"]["requests"], 0, "{t}");
    }
}
