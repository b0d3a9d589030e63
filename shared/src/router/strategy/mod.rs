//! Routing strategies. Each ranks a model group's available deployments and returns them
//! *ordered*: the first is the choice, the rest the order to fall back in (pingora's
//! `BackendSelection`). A strategy may also leave deployments out (usage-based drops those
//! over their rpm/tpm limits).
//!
//! Strategies are pure: the router fetches the statistics they need from the state store
//! into [`Candidate`]s, and passes the randomness in.

use std::sync::Arc;

use crate::config::{RoutingStrategyArgs, RoutingStrategyName};
use crate::ml::routing::{
    Decision, MlContext, MlRouting, MlSettings, MlSetupError, PromptFeatures,
};
use crate::router::Deployment;

mod cost;
mod latency;
mod least_busy;
mod simple_shuffle;
mod usage;

/// A deployment with the statistics strategies rank by.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub deployment: &'a Deployment,
    /// Requests in flight (least-busy).
    pub in_flight: i64,
    /// Mean of recent request latencies in ms (latency-based).
    pub latency_ms: Option<f64>,
    /// Mean of recent time-to-first-token in ms, for streaming requests (latency-based).
    pub ttft_ms: Option<f64>,
    /// Requests this minute (usage-based).
    pub rpm_used: i64,
    /// Tokens this minute (usage-based).
    pub tpm_used: i64,
}

impl<'a> Candidate<'a> {
    pub fn new(deployment: &'a Deployment) -> Self {
        Candidate {
            deployment,
            in_flight: 0,
            latency_ms: None,
            ttft_ms: None,
            rpm_used: 0,
            tpm_used: 0,
        }
    }
}

/// What a strategy knows about the request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// Estimated prompt tokens (usage-based tpm pre-check).
    pub estimated_tokens: u64,
    pub stream: bool,
    /// The prompt (and its embedding, when computed), for the ML strategies.
    pub prompt: Option<Arc<PromptFeatures>>,
    /// The conversation key (`x-routeiq-conversation-id`, `metadata.conversation_id`, else
    /// the OpenAI `user`), when conversation affinity is on: the router keeps the
    /// conversation on one deployment (see [`crate::router::affinity`]).
    pub conversation: Option<Arc<str>>,
    /// A deployment (`model_info.id`) the request named explicitly as its `model`: the only
    /// candidate of its group, and never overridden by affinity.
    pub deployment: Option<Arc<str>>,
    /// A verified edge hint and the mode to follow it in (see [`crate::router::hint`]).
    pub hint: Option<Arc<crate::router::hint::HintUse>>,
    /// When the request named an auto router: where it decided the request goes (see
    /// [`crate::router::auto`]).
    pub auto: Option<Arc<crate::router::auto::AutoDecision>>,
}

/// Which statistics a strategy needs fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    pub in_flight: bool,
    pub latency: bool,
    pub usage: bool,
}

/// A configured strategy.
#[derive(Debug, Clone)]
pub enum Strategy {
    SimpleShuffle,
    LeastBusy,
    LatencyBased {
        buffer: f64,
    },
    CostBased,
    UsageBased {
        v2: bool,
    },
    /// An `llmrouter-*` strategy (see [`crate::ml::routing`]).
    Ml(Arc<MlRouting>),
}

impl Strategy {
    /// The strategy `name` with `args`; ML strategies are set up with `ctx` (their artifact
    /// loaded and verified, the embedder built).
    pub fn from_config_with(
        name: RoutingStrategyName,
        args: &RoutingStrategyArgs,
        ctx: &MlContext,
    ) -> Result<Strategy, MlSetupError> {
        if let RoutingStrategyName::LlmRouter(ml) = name {
            let settings = match &args.ml {
                Some(s) => s.clone(),
                None => MlSettings::from_args(ml, &args.extra).map_err(|problems| {
                    MlSetupError::Router {
                        strategy: ml.as_str(),
                        message: problems
                            .iter()
                            .map(|p| p.clone().under("routing_strategy_args").to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    }
                })?,
            };
            return Ok(Strategy::Ml(Arc::new(MlRouting::build(settings, ctx)?)));
        }
        Ok(Self::from_config(name, args))
    }

    /// The strategy `name` with `args`. ML strategies are set up with the default
    /// [`MlContext`] (no environment); one that cannot be set up is logged and replaced by
    /// cost-based routing (the gateway uses [`Strategy::from_config_with`] and fails instead).
    pub fn from_config(name: RoutingStrategyName, args: &RoutingStrategyArgs) -> Strategy {
        match name {
            RoutingStrategyName::SimpleShuffle => Strategy::SimpleShuffle,
            RoutingStrategyName::LeastBusy => Strategy::LeastBusy,
            RoutingStrategyName::LatencyBased => Strategy::LatencyBased {
                buffer: args.lowest_latency_buffer.max(0.0),
            },
            RoutingStrategyName::CostBased => Strategy::CostBased,
            RoutingStrategyName::UsageBased => Strategy::UsageBased { v2: false },
            RoutingStrategyName::UsageBasedV2 => Strategy::UsageBased { v2: true },
            RoutingStrategyName::LlmRouter(ml) => {
                match Self::from_config_with(name, args, &MlContext::default()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(strategy = ml.as_str(), error = %e, "ML strategy unavailable; routing by cost");
                        Strategy::CostBased
                    }
                }
            }
        }
    }

    /// The name as configured (`router_settings.routing_strategy`).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::SimpleShuffle => RoutingStrategyName::SimpleShuffle.as_str(),
            Strategy::LeastBusy => RoutingStrategyName::LeastBusy.as_str(),
            Strategy::LatencyBased { .. } => RoutingStrategyName::LatencyBased.as_str(),
            Strategy::CostBased => RoutingStrategyName::CostBased.as_str(),
            Strategy::UsageBased { v2: false } => RoutingStrategyName::UsageBased.as_str(),
            Strategy::UsageBased { v2: true } => RoutingStrategyName::UsageBasedV2.as_str(),
            Strategy::Ml(ml) => ml.strategy().as_str(),
        }
    }

    /// The ML routing, when this is an `llmrouter-*` strategy.
    pub fn ml(&self) -> Option<&Arc<MlRouting>> {
        match self {
            Strategy::Ml(ml) => Some(ml),
            _ => None,
        }
    }

    pub fn needs(&self) -> Needs {
        match self {
            Strategy::SimpleShuffle | Strategy::CostBased | Strategy::Ml(_) => Needs::default(),
            Strategy::LeastBusy => Needs {
                in_flight: true,
                ..Needs::default()
            },
            Strategy::LatencyBased { .. } => Needs {
                latency: true,
                ..Needs::default()
            },
            Strategy::UsageBased { .. } => Needs {
                usage: true,
                ..Needs::default()
            },
        }
    }

    /// Orders `candidates` (indices into the slice), best first.
    pub fn rank(
        &self,
        candidates: &[Candidate<'_>],
        facts: RequestFacts,
        rng: &mut fastrand::Rng,
    ) -> Vec<usize> {
        self.rank_explained(candidates, facts, rng).0
    }

    /// Like [`Strategy::rank`], with the ML strategies' explainable decision.
    pub fn rank_explained(
        &self,
        candidates: &[Candidate<'_>],
        facts: RequestFacts,
        rng: &mut fastrand::Rng,
    ) -> (Vec<usize>, Option<Decision>) {
        let order = match self {
            Strategy::SimpleShuffle => simple_shuffle::rank(candidates, rng),
            Strategy::LeastBusy => least_busy::rank(candidates, rng),
            Strategy::LatencyBased { buffer } => latency::rank(candidates, facts, *buffer, rng),
            Strategy::CostBased => cost::rank(candidates, rng),
            Strategy::UsageBased { .. } => usage::rank(candidates, facts, rng),
            Strategy::Ml(ml) => {
                let cands: Vec<_> = candidates
                    .iter()
                    .map(|c| ml.candidate(c.deployment))
                    .collect();
                let decision = match &facts.prompt {
                    Some(p) => ml.decide(&cands, p),
                    None => ml.decide(
                        &cands,
                        &PromptFeatures {
                            estimated_tokens: facts.estimated_tokens,
                            ..PromptFeatures::default()
                        },
                    ),
                };
                return (decision.order(), Some(decision));
            }
        };
        (order, None)
    }
}

/// Random permutation of `0..n`, the tie-breaker every strategy starts from.
fn shuffled(n: usize, rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    order
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::{DeploymentConfig, LitellmParams, ModelInfo};
    use crate::router::Deployment;

    pub fn deployment(id: &str, f: impl FnOnce(&mut LitellmParams, &mut ModelInfo)) -> Deployment {
        let mut params = LitellmParams {
            model: format!("openai/{id}"),
            ..LitellmParams::default()
        };
        let mut info = ModelInfo {
            id: Some(id.to_string()),
            ..ModelInfo::default()
        };
        f(&mut params, &mut info);
        Deployment::from_config(
            0,
            &DeploymentConfig {
                model_name: "group".into(),
                litellm_params: params,
                model_info: info,
            },
        )
    }

    /// How often each deployment id came first over `runs` rankings.
    pub fn first_counts(
        runs: usize,
        mut rank: impl FnMut(&mut fastrand::Rng) -> Vec<usize>,
        n: usize,
    ) -> Vec<usize> {
        let mut rng = fastrand::Rng::with_seed(42);
        let mut counts = vec![0; n];
        for _ in 0..runs {
            let order = rank(&mut rng);
            counts[order[0]] += 1;
        }
        counts
    }
}
