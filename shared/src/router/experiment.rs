//! A/B experiments on a model group (`router_settings.routing_strategy_args.experiment`).
//!
//! ```yaml
//! router_settings:
//!   routing_strategy_args:
//!     experiment:
//!       name: cheap-vs-smart        # [A-Za-z0-9_.-], 1..=64 characters
//!       model_group: auto           # requests for this group (or an alias of it) take part
//!       retention_hours: 168        # how long the per-hour counters are kept (default 7 days)
//!       arms:
//!         control: {weight: 2}                # no change
//!         cheap:   {weight: 1, model: small}  # served by model group `small` instead
//!         eco:     {weight: 1, profile: eco}  # same group, ML routing profile `eco`
//! ```
//!
//! Each request to the experiment's group is assigned one arm: deterministically from the
//! conversation key (else the OpenAI `user`), hashed with the experiment's name, so a
//! conversation or user stays in one arm; else at random. Either way arms get requests in
//! proportion to their weights. An arm with `model` sends the request to that model group (an
//! alias works too), one with `profile` routes it with that ML routing profile unless the
//! request names a profile itself, one with neither is the control.
//!
//! Counters (requests, errors, prompt and completion tokens, cost in micro-dollars) are kept
//! per arm and per hour in the [`StateStore`](crate::state::StateStore) under
//! [`counter_key`]; the gateway adds to them in process and flushes them in batches.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::ConfigProblem;
use crate::ml::centroid::Profile;

/// Default `retention_hours`: one week of hourly buckets.
pub const DEFAULT_RETENTION_HOURS: u32 = 168;
/// Longest `retention_hours` (90 days).
pub const MAX_RETENTION_HOURS: u32 = 24 * 90;
const HOUR_MS: u64 = 3_600_000;

/// One arm of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentArm {
    pub name: String,
    /// Relative share of requests (≥ 0; the arms' sum is > 0).
    pub weight: f64,
    /// Serve the arm's requests from this model group (or alias) instead.
    pub model: Option<String>,
    /// Route the arm's requests with this ML routing profile.
    pub profile: Option<Profile>,
}

/// A validated experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSettings {
    pub name: String,
    /// The model group (or alias) whose requests take part.
    pub model_group: String,
    /// Arms in config order.
    pub arms: Vec<ExperimentArm>,
    /// Hours each hourly bucket is kept (its TTL) and that `/router/experiments` sums over.
    pub retention_hours: u32,
}

/// The counters kept per arm and hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentMetric {
    Requests,
    Errors,
    PromptTokens,
    CompletionTokens,
    /// USD × 10⁶, rounded.
    CostMicroUsd,
}

impl ExperimentMetric {
    pub const ALL: [ExperimentMetric; 5] = [
        ExperimentMetric::Requests,
        ExperimentMetric::Errors,
        ExperimentMetric::PromptTokens,
        ExperimentMetric::CompletionTokens,
        ExperimentMetric::CostMicroUsd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentMetric::Requests => "requests",
            ExperimentMetric::Errors => "errors",
            ExperimentMetric::PromptTokens => "prompt_tokens",
            ExperimentMetric::CompletionTokens => "completion_tokens",
            ExperimentMetric::CostMicroUsd => "cost_micro_usd",
        }
    }
}

/// The hour bucket of an epoch-ms time.
pub fn hour_of(now_ms: u64) -> u64 {
    now_ms / HOUR_MS
}

/// The state key of one counter: `exp:{experiment}:{arm}:{hour}:{metric}`, `hour` in hours
/// since the epoch. Names are restricted to `[A-Za-z0-9_.-]`, so keys never collide.
pub fn counter_key(experiment: &str, arm: &str, hour: u64, metric: ExperimentMetric) -> String {
    format!("exp:{experiment}:{arm}:{hour}:{}", metric.as_str())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A point in `[0, 1)` from `salt` and `key` (SHA-256, so stable across builds and hosts).
fn unit_hash(salt: &str, key: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

impl ExperimentSettings {
    /// Reads and checks the `experiment` mapping; each problem is `(key path below
    /// experiment, message)`. Model group names are checked by the config loader, which
    /// knows the groups.
    pub fn from_value(v: &Value) -> Result<ExperimentSettings, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let Value::Object(map) = v else {
            return Err(vec![ConfigProblem::new(
                "",
                format!("must be a mapping, got {v}"),
            )]);
        };
        const KEYS: [&str; 4] = ["name", "model_group", "arms", "retention_hours"];
        for k in map.keys() {
            if !KEYS.contains(&k.as_str()) {
                problems.push(ConfigProblem::new(
                    k.clone(),
                    format!("unknown key (expected one of {KEYS:?})"),
                ));
            }
        }
        let string = |k: &str, problems: &mut Vec<ConfigProblem>| match map.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            None | Some(Value::Null) => {
                problems.push(ConfigProblem::new(k.to_string(), "is required"));
                None
            }
            Some(other) => {
                problems.push(ConfigProblem::new(
                    k.to_string(),
                    format!("must be a non-empty string, got {other}"),
                ));
                None
            }
        };
        let name = string("name", &mut problems);
        if let Some(n) = &name
            && !valid_name(n)
        {
            problems.push(ConfigProblem::new(
                "name",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            ));
        }
        let model_group = string("model_group", &mut problems);
        let retention_hours = match map.get("retention_hours") {
            None | Some(Value::Null) => DEFAULT_RETENTION_HOURS,
            Some(Value::Number(n))
                if n.as_u64()
                    .is_some_and(|h| (1..=u64::from(MAX_RETENTION_HOURS)).contains(&h)) =>
            {
                n.as_u64().map_or(DEFAULT_RETENTION_HOURS, |h| h as u32)
            }
            Some(other) => {
                problems.push(ConfigProblem::new(
                    "retention_hours",
                    format!(
                        "must be a whole number of hours in [1, {MAX_RETENTION_HOURS}], got {other}"
                    ),
                ));
                DEFAULT_RETENTION_HOURS
            }
        };
        let arms = match map.get("arms") {
            Some(Value::Object(arms)) if !arms.is_empty() => arms
                .iter()
                .filter_map(|(arm, spec)| Self::arm(arm, spec, &mut problems))
                .collect::<Vec<_>>(),
            _ => {
                problems.push(ConfigProblem::new(
                    "arms",
                    "must be a non-empty mapping of arm name to {weight, model or profile}",
                ));
                Vec::new()
            }
        };
        if !arms.is_empty() && arms.iter().map(|a| a.weight).sum::<f64>() <= 0.0 {
            problems.push(ConfigProblem::new(
                "arms",
                "the arms' weights must not all be 0",
            ));
        }
        match (name, model_group, problems.is_empty()) {
            (Some(name), Some(model_group), true) => Ok(ExperimentSettings {
                name,
                model_group,
                arms,
                retention_hours,
            }),
            _ => Err(problems),
        }
    }

    fn arm(name: &str, spec: &Value, problems: &mut Vec<ConfigProblem>) -> Option<ExperimentArm> {
        let path = |k: &str| format!("arms.{name}.{k}");
        if !valid_name(name) {
            problems.push(ConfigProblem::new(
                format!("arms.{name}"),
                "arm names must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            ));
            return None;
        }
        let empty = Map::new();
        let spec = match spec {
            Value::Object(m) => m,
            Value::Null => &empty,
            other => {
                problems.push(ConfigProblem::new(
                    format!("arms.{name}"),
                    format!("must be a mapping {{weight, model or profile}}, got {other}"),
                ));
                return None;
            }
        };
        for k in spec.keys() {
            if !["weight", "model", "profile"].contains(&k.as_str()) {
                problems.push(ConfigProblem::new(
                    path(k),
                    "unknown key (expected weight, model, profile)",
                ));
            }
        }
        let weight = match spec.get("weight") {
            None | Some(Value::Null) => 1.0,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|w| w.is_finite() && w >= 0.0) => {
                n.as_f64().unwrap_or(1.0)
            }
            Some(other) => {
                problems.push(ConfigProblem::new(
                    path("weight"),
                    format!("must be a number ≥ 0, got {other}"),
                ));
                return None;
            }
        };
        let model = match spec.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(other) => {
                problems.push(ConfigProblem::new(
                    path("model"),
                    format!("must be a model group name, got {other}"),
                ));
                return None;
            }
        };
        let profile = match spec.get("profile") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Profile::parse(s) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(ConfigProblem::new(path("profile"), e));
                    return None;
                }
            },
            Some(other) => {
                problems.push(ConfigProblem::new(
                    path("profile"),
                    format!("must be a profile name, got {other}"),
                ));
                return None;
            }
        };
        Some(ExperimentArm {
            name: name.to_string(),
            weight,
            model,
            profile,
        })
    }

    /// The arm (index into `arms`) for a request: from `key` (the conversation key or user)
    /// when given, so the same key always gets the same arm; else from `rng`. Arms get
    /// requests in proportion to their weights.
    pub fn assign(&self, key: Option<&str>, rng: &mut fastrand::Rng) -> usize {
        let total: f64 = self.arms.iter().map(|a| a.weight).sum();
        let u = match key {
            Some(k) => unit_hash(&self.name, k),
            None => rng.f64(),
        };
        let target = u * total;
        let mut acc = 0.0;
        let mut last_weighted = 0;
        for (i, arm) in self.arms.iter().enumerate() {
            if arm.weight <= 0.0 {
                continue;
            }
            acc += arm.weight;
            last_weighted = i;
            if target < acc {
                return i;
            }
        }
        // Rounding at the top end: the last arm with weight.
        last_weighted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> ExperimentSettings {
        ExperimentSettings::from_value(&json!({
            "name": "exp1",
            "model_group": "auto",
            "arms": {"a": {"weight": 3}, "b": {"weight": 1, "model": "small"}, "off": {"weight": 0}}
        }))
        .unwrap()
    }

    #[test]
    fn parses_and_reports_every_problem() {
        let s = settings();
        assert_eq!(s.arms.len(), 3);
        assert_eq!(s.arms[1].model.as_deref(), Some("small"));
        assert_eq!(s.retention_hours, DEFAULT_RETENTION_HOURS);
        let errs = ExperimentSettings::from_value(&json!({
            "name": "bad name", "arms": {"x": {"weight": -1}, "y": {"profile": "turbo"}},
            "retention_hours": 0, "extra": 1
        }))
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "name",
            "model_group",
            "arms.x.weight",
            "arms.y.profile",
            "retention_hours",
            "extra",
        ] {
            assert!(paths.contains(&want), "{want} not in {errs:?}");
        }
        let zero = ExperimentSettings::from_value(
            &json!({"name": "z", "model_group": "g", "arms": {"a": {"weight": 0}}}),
        )
        .unwrap_err();
        assert_eq!(zero[0].path, "arms");
    }

    #[test]
    fn keyed_assignment_is_stable_and_follows_weights() {
        let s = settings();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut counts = [0usize; 3];
        for i in 0..4000 {
            let key = format!("conversation-{i}");
            let arm = s.assign(Some(&key), &mut rng);
            // Same key, same arm, whatever the rng says.
            assert_eq!(s.assign(Some(&key), &mut fastrand::Rng::with_seed(99)), arm);
            counts[arm] += 1;
        }
        assert_eq!(counts[2], 0, "a zero-weight arm never gets requests");
        let share = counts[0] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.04, "{counts:?}");
        // Unkeyed requests are spread by weight too.
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[s.assign(None, &mut rng)] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(
            (counts[0] as f64 / 4000.0 - 0.75).abs() < 0.04,
            "{counts:?}"
        );
    }

    #[test]
    fn counter_keys_are_per_arm_hour_and_metric() {
        assert_eq!(
            counter_key("e", "a", hour_of(7_200_000), ExperimentMetric::CostMicroUsd),
            "exp:e:a:2:cost_micro_usd"
        );
    }
}
