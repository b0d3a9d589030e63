//! `router_settings.routing_strategy` and `routing_strategy_args`: which strategy orders a
//! group's deployments, and its arguments (latency window, ML router settings, an A/B
//! experiment). Strategy-specific keys RouteIQ does not read stay in
//! [`RoutingStrategyArgs::extra`].

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::WarningKind;
use crate::config::coerce;
use crate::config::load::{Above, Loader};
use crate::config::schema::{self, MapSchema, Node, Unknown, join};
use crate::ml::MlStrategyName;
use crate::ml::routing::{ARG_KEYS as ML_ARG_KEYS, MlSettings};
use crate::router::experiment::ExperimentSettings;

/// `router_settings.routing_strategy_args`: strategy-specific, other keys go to `extra`.
pub(in crate::config) static ROUTING_STRATEGY_ARGS: MapSchema = MapSchema {
    implemented: &[("ttl", Node::Any), ("lowest_latency_buffer", Node::Any)],
    documented: &[],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Collect,
};

/// `router_settings.routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingStrategyName {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    CostBased,
    UsageBased,
    UsageBasedV2,
    /// An ML strategy, `llmrouter-*` (see [`crate::ml::routing`]).
    LlmRouter(MlStrategyName),
}

impl RoutingStrategyName {
    pub const ALL: [(&'static str, RoutingStrategyName); 6] = [
        ("simple-shuffle", RoutingStrategyName::SimpleShuffle),
        ("least-busy", RoutingStrategyName::LeastBusy),
        ("latency-based-routing", RoutingStrategyName::LatencyBased),
        ("cost-based-routing", RoutingStrategyName::CostBased),
        ("usage-based-routing", RoutingStrategyName::UsageBased),
        ("usage-based-routing-v2", RoutingStrategyName::UsageBasedV2),
    ];

    /// The name as LiteLLM spells it (the names of [`Self::ALL`]).
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingStrategyName::SimpleShuffle => "simple-shuffle",
            RoutingStrategyName::LeastBusy => "least-busy",
            RoutingStrategyName::LatencyBased => "latency-based-routing",
            RoutingStrategyName::CostBased => "cost-based-routing",
            RoutingStrategyName::UsageBased => "usage-based-routing",
            RoutingStrategyName::UsageBasedV2 => "usage-based-routing-v2",
            RoutingStrategyName::LlmRouter(s) => s.as_str(),
        }
    }

    /// Parses a LiteLLM strategy name (as in [`Self::ALL`]) or an `llmrouter-*` one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .or_else(|| {
                name.starts_with("llmrouter-")
                    .then(|| MlStrategyName::parse(name).ok())
                    .flatten()
                    .map(RoutingStrategyName::LlmRouter)
            })
    }
}

/// `router_settings.routing_strategy_args`.
#[derive(Debug, Clone)]
pub struct RoutingStrategyArgs {
    /// latency-based: how long a latency sample counts for (LiteLLM default 1 hour).
    pub ttl: Duration,
    /// latency-based: deployments within `lowest * (1 + buffer)` are picked among at random.
    pub lowest_latency_buffer: f64,
    /// Other strategy args (ML strategies read theirs from here).
    pub extra: Map<String, Value>,
    /// The ML strategies' args, validated (set when the strategy is `llmrouter-*`).
    pub ml: Option<MlSettings>,
    /// `experiment`: an A/B experiment on one model group (any strategy; see
    /// [`crate::router::experiment`]).
    pub experiment: Option<ExperimentSettings>,
}

impl Default for RoutingStrategyArgs {
    fn default() -> Self {
        RoutingStrategyArgs {
            ttl: Duration::from_secs(3600),
            lowest_latency_buffer: 0.0,
            extra: Map::new(),
            ml: None,
            experiment: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of routing strategy args")]
pub(in crate::config) struct RawRoutingStrategyArgs {
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub ttl: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub lowest_latency_buffer: Option<f64>,
}

/// `routing_strategy`: a LiteLLM name (`_` or `-`, any case) or an `llmrouter-*` one.
pub(super) fn load_name(raw: Option<String>, cx: &mut Loader) -> RoutingStrategyName {
    let Some(raw) = raw else {
        return RoutingStrategyName::default();
    };
    let normalized = raw.trim().to_ascii_lowercase().replace('_', "-");
    if let Some(s) = RoutingStrategyName::parse(&normalized) {
        return s;
    }
    let mut names: Vec<&str> = RoutingStrategyName::ALL.iter().map(|(n, _)| *n).collect();
    names.extend(MlStrategyName::names());
    let valid = names.join(", ");
    let msg = if normalized.starts_with("llmrouter-") {
        // Unknown, or an LLMRouter strategy that needs an LLM or a GPU: say which.
        MlStrategyName::parse(&normalized).err().unwrap_or_default()
    } else {
        match schema::suggest(&normalized, &names) {
            Some(s) => format!(
                "unknown routing strategy '{raw}'; did you mean '{s}'? valid strategies: {valid}"
            ),
            None => format!("unknown routing strategy '{raw}'; valid strategies: {valid}"),
        }
    };
    cx.problem("router_settings.routing_strategy", msg);
    RoutingStrategyName::default()
}

/// `routing_strategy_args` keys the gateway's edge-hint verification reads
/// (`functions/gateway/src/edge_hint.rs`), whatever the strategy.
const EDGE_HINT_ARGS: [&str; 4] = [
    "edge_hint",
    "edge_hint_max_age",
    "edge_hint_min_confidence",
    "edge_hint_secret",
];

impl RawRoutingStrategyArgs {
    /// The args of `strategy`: the common keys checked, an `experiment` and the ML strategies'
    /// args validated; other keys are kept in [`RoutingStrategyArgs::extra`].
    pub(super) fn load(
        raw: Option<Self>,
        strategy: RoutingStrategyName,
        path: &str,
        cx: &mut Loader,
    ) -> RoutingStrategyArgs {
        let mut args = RoutingStrategyArgs {
            extra: cx.take_extras(path),
            ..RoutingStrategyArgs::default()
        };
        if let Some(a) = raw {
            if let Ok(Some(ttl)) = cx.seconds(&join(path, "ttl"), a.ttl, Above::Zero) {
                args.ttl = ttl;
            }
            if let Some(b) = cx.non_negative(
                &join(path, "lowest_latency_buffer"),
                a.lowest_latency_buffer,
            ) {
                args.lowest_latency_buffer = b;
            }
        }
        if let Some(v) = args.extra.remove("experiment") {
            match ExperimentSettings::from_value(&v) {
                Ok(e) => args.experiment = Some(e),
                Err(problems) => cx.problems_under(problems, &join(path, "experiment")),
            }
        }
        if let RoutingStrategyName::LlmRouter(ml) = strategy {
            match MlSettings::from_args(ml, &args.extra) {
                Ok(settings) => args.ml = Some(settings),
                Err(problems) => cx.problems_under(problems, path),
            }
        }
        // Strategy-specific keys nobody reads would vanish: each is named in a warning.
        let is_ml = matches!(strategy, RoutingStrategyName::LlmRouter(_));
        let mut known: Vec<&str> = vec!["ttl", "lowest_latency_buffer", "experiment"];
        known.extend(EDGE_HINT_ARGS);
        if is_ml {
            known.extend(ML_ARG_KEYS);
        }
        for key in args.extra.keys() {
            let ml_key = ML_ARG_KEYS.contains(&key.as_str()) || key == "public_key";
            if EDGE_HINT_ARGS.contains(&key.as_str()) || (ml_key && is_ml) {
                continue;
            }
            let message = if ml_key {
                format!(
                    "read only by the llmrouter-* strategies; ignored with '{}'",
                    strategy.as_str()
                )
            } else {
                let mut m = format!("unknown key '{key}', ignored");
                if let Some(s) = schema::suggest(key, &known) {
                    m.push_str(&format!("; did you mean '{s}'?"));
                }
                m
            };
            cx.warn(join(path, key), WarningKind::Unknown, message);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn args_nobody_reads_warn() {
        let l = crate::config::load_str_with_env(
            "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: \
             {ttl: 60, edge_hint: ignore, cost_weight: 0.5, lowest_latency_bufer: 1, k: 3}\n",
            &|_| None,
        )
        .unwrap();
        let w: Vec<(&str, &str)> = l
            .warnings
            .iter()
            .map(|w| (w.path.as_str(), w.message.as_str()))
            .collect();
        assert_eq!(
            w,
            [
                (
                    "router_settings.routing_strategy_args.cost_weight",
                    "read only by the llmrouter-* strategies; ignored with 'latency-based-routing'"
                ),
                (
                    "router_settings.routing_strategy_args.k",
                    "unknown key 'k', ignored"
                ),
                (
                    "router_settings.routing_strategy_args.lowest_latency_bufer",
                    "unknown key 'lowest_latency_bufer', ignored; did you mean 'lowest_latency_buffer'?"
                ),
            ]
        );
    }

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawRoutingStrategyArgs>(&ROUTING_STRATEGY_ARGS);
    }

    #[test]
    fn strategy_names_round_trip() {
        for (name, strategy) in RoutingStrategyName::ALL {
            assert_eq!(strategy.as_str(), name);
            assert_eq!(RoutingStrategyName::parse(name), Some(strategy));
        }
    }
}
