//! Auto routers: model names that route each request to one of other model groups, built
//! from LiteLLM's routing models (`model: auto_router/...`, see
//! [`crate::config::AutoRouterConfig`]).
//!
//! - **semantic** (`auto_router/<name>` with routes): the route with the utterance most
//!   similar to the prompt (cosine, RouteIQ's built-in embedder), if that similarity reaches
//!   the route's `score_threshold` (default [`DEFAULT_SCORE_THRESHOLD`]); else the default
//!   model.
//! - **complexity** (`auto_router/complexity_router`): the prompt's centroid tier (as in
//!   centroid routing) picks the tier's groups; a tier without groups takes the default
//!   model, else the nearest configured tier above it, else below it.
//! - **adaptive** (`auto_router/adaptive_router`): every available group scored
//!   `quality_weight · quality + cost_weight · cheapness`. Quality is the group's
//!   `quality_tier` prior (1 → 0.3, 2 → 0.5, 3 → 0.7) plus 0.3 when the prompt's request
//!   type is among its `strengths` (at most 0.95); cheapness is 1 for the cheapest group, 0
//!   for the dearest (0.5 when prices are unknown or equal). Callers may ask for a minimum
//!   tier (`x-litellm-min-quality-tier`, `metadata.min_quality_tier`).
//!
//! The prompt is the last user message (LiteLLM's rule). A decision lists its targets in
//! order: the request goes to the first; the others are its fallbacks, before the
//! configured ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::Deployment;
use crate::config::{AdaptivePreferences, AutoRouterConfig, Config};
use crate::ml::centroid::{CentroidClassifier, Tier, TierChoice};
use crate::ml::embed::{Embedder, cosine};
use crate::ml::hashed::HashedNgramEmbedder;
use crate::ml::request_type::{RequestTypeChoice, RequestTypeClassifier};
use crate::ml::routing::{DecisionMethod, MlRouting, PromptFeatures};

/// A semantic route's threshold when it sets none.
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.3;
/// The dimension of the embedder auto routers use.
pub const EMBEDDER_DIM: usize = 512;
/// The adaptive router's quality prior per `quality_tier`.
const TIER_QUALITY: [f64; 3] = [0.3, 0.5, 0.7];
/// Added to a group's quality when the request type is one of its strengths.
const STRENGTH_BONUS: f64 = 0.3;
const MAX_QUALITY: f64 = 0.95;

/// What an auto router needs of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoInput<'a> {
    /// The prompt: the last user message.
    pub text: &'a str,
    /// The least `quality_tier` the adaptive router may pick (1–3).
    pub min_quality_tier: Option<u8>,
    /// The request as the ML strategy reads it (with its embedding), when the routing
    /// strategy is an ML one: a trained router's predicted quality replaces the adaptive
    /// router's tier priors for the groups it knows.
    pub prompt: Option<&'a PromptFeatures>,
}

/// Where an adaptive score's quality came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualitySource {
    /// The trained router of the ML strategy predicted it for this prompt.
    TrainedRouter,
    /// `quality_tier` and `strengths`.
    Preferences,
}

/// Which kind of auto router decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoKind {
    Semantic,
    Complexity,
    Adaptive,
}

impl AutoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoKind::Semantic => "semantic",
            AutoKind::Complexity => "complexity",
            AutoKind::Adaptive => "adaptive",
        }
    }
}

/// One adaptive candidate's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdaptiveScore {
    pub group: String,
    pub quality_tier: u8,
    pub quality: f64,
    pub quality_from: QualitySource,
    /// Mean price per input+output token of the group's deployments, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_cost: Option<f64>,
    pub cheapness: f64,
    pub score: f64,
}

/// One semantic route's best similarity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteScore {
    pub route: String,
    pub score: f32,
    pub threshold: f32,
}

/// An auto router's decision, explainable (`/router/explain`) and shown in headers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoDecision {
    /// The auto router's model name.
    pub router: String,
    pub kind: AutoKind,
    /// What the prompt was read as: the route taken (semantic; `default` when none
    /// qualified), the tier (complexity) or the request type (adaptive).
    pub label: String,
    /// Model groups in order: the request goes to the first; the rest are its fallbacks.
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_type: Option<RequestTypeChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteScore>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<AdaptiveScore>,
}

/// Why an auto router could not decide: the request's fault (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auto router '{router}': {reason}")]
pub struct AutoError {
    pub router: String,
    pub reason: String,
}

struct Route {
    target: String,
    threshold: f32,
    utterances: Vec<Vec<f32>>,
}

struct AdaptiveTarget {
    group: String,
    prefs: AdaptivePreferences,
    unit_cost: Option<f64>,
}

enum Engine {
    Semantic {
        routes: Vec<Route>,
        default: Option<String>,
    },
    Complexity {
        classifier: CentroidClassifier,
        /// Per tier, in [`Tier::ALL`] order, the groups it routes to (the default model and
        /// the nearest-tier rule already applied).
        tiers: [Vec<String>; 4],
    },
    Adaptive {
        types: RequestTypeClassifier,
        targets: Vec<AdaptiveTarget>,
        quality_weight: f64,
        cost_weight: f64,
    },
}

/// One auto router, ready to decide.
pub struct AutoRouter {
    name: String,
    embedder: Arc<dyn Embedder>,
    engine: Engine,
}

impl std::fmt::Debug for AutoRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoRouter")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// The complexity router's groups per tier (see the module docs).
fn tier_table(tiers: &BTreeMap<Tier, Vec<String>>, default: Option<&String>) -> [Vec<String>; 4] {
    Tier::ALL.map(|tier| {
        if let Some(t) = tiers.get(&tier) {
            return t.clone();
        }
        if let Some(d) = default {
            return vec![d.clone()];
        }
        let above = tiers.range(tier..).next();
        let below = tiers.range(..tier).next_back();
        above.or(below).map(|(_, t)| t.clone()).unwrap_or_default()
    })
}

impl AutoRouter {
    /// Builds the auto router `name` of `config` (its targets' deployments give the
    /// adaptive router prices and preferences), embedding seeds and utterances with
    /// `embedder`.
    pub fn build(
        name: &str,
        config: &AutoRouterConfig,
        deployments: &HashMap<String, Vec<Arc<Deployment>>>,
        embedder: Arc<dyn Embedder>,
        tier_threshold: f32,
    ) -> Result<AutoRouter, String> {
        let engine = match config {
            AutoRouterConfig::Semantic(s) => {
                let mut routes = Vec::new();
                for r in &s.routes {
                    let texts: Vec<&str> = r.utterances.iter().map(String::as_str).collect();
                    let utterances = embedder.embed_batch(&texts).map_err(|e| e.to_string())?;
                    routes.push(Route {
                        target: r.name.clone(),
                        threshold: r.score_threshold.unwrap_or(DEFAULT_SCORE_THRESHOLD),
                        utterances,
                    });
                }
                Engine::Semantic {
                    routes,
                    default: s.default_model.clone(),
                }
            }
            AutoRouterConfig::Complexity(c) => Engine::Complexity {
                classifier: CentroidClassifier::build(embedder.as_ref(), None, tier_threshold)
                    .map_err(|e| e.to_string())?,
                tiers: tier_table(&c.tiers, c.default_model.as_ref()),
            },
            AutoRouterConfig::Adaptive(a) => Engine::Adaptive {
                types: RequestTypeClassifier::build(embedder.as_ref())
                    .map_err(|e| e.to_string())?,
                targets: a
                    .available_models
                    .iter()
                    .map(|g| adaptive_target(g, deployments.get(g).map(Vec::as_slice)))
                    .collect(),
                quality_weight: a.quality_weight,
                cost_weight: a.cost_weight,
            },
        };
        Ok(AutoRouter {
            name: name.to_string(),
            embedder,
            engine,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> AutoKind {
        match self.engine {
            Engine::Semantic { .. } => AutoKind::Semantic,
            Engine::Complexity { .. } => AutoKind::Complexity,
            Engine::Adaptive { .. } => AutoKind::Adaptive,
        }
    }

    fn error(&self, reason: impl Into<String>) -> AutoError {
        AutoError {
            router: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The groups the adaptive router chooses among (`None` for other kinds).
    pub fn adaptive_groups(&self) -> Option<Vec<&str>> {
        match &self.engine {
            Engine::Adaptive { targets, .. } => {
                Some(targets.iter().map(|t| t.group.as_str()).collect())
            }
            Engine::Semantic { .. } | Engine::Complexity { .. } => None,
        }
    }

    /// Decides where a request goes; `trained`: a trained router's predicted quality per
    /// group, for the adaptive router (see [`AutoInput::prompt`]).
    pub fn decide(
        &self,
        input: AutoInput<'_>,
        trained: &HashMap<String, f64>,
    ) -> Result<AutoDecision, AutoError> {
        let embedding = self
            .embedder
            .embed(input.text)
            .map_err(|e| self.error(format!("the prompt could not be embedded: {e}")))?;
        let mut decision = AutoDecision {
            router: self.name.clone(),
            kind: self.kind(),
            label: String::new(),
            targets: Vec::new(),
            tier: None,
            request_type: None,
            routes: Vec::new(),
            scores: Vec::new(),
        };
        match &self.engine {
            Engine::Semantic { routes, default } => {
                decision.routes = routes
                    .iter()
                    .map(|r| RouteScore {
                        route: r.target.clone(),
                        score: r
                            .utterances
                            .iter()
                            .map(|u| cosine(u, &embedding))
                            .fold(f32::MIN, f32::max),
                        threshold: r.threshold,
                    })
                    .collect();
                let best = decision
                    .routes
                    .iter()
                    .filter(|r| r.score >= r.threshold)
                    .max_by(|a, b| a.score.total_cmp(&b.score));
                match (best, default) {
                    (Some(r), _) => {
                        decision.label = r.route.clone();
                        decision.targets.push(r.route.clone());
                        if let Some(d) = default.as_ref().filter(|d| **d != r.route) {
                            decision.targets.push(d.clone());
                        }
                    }
                    (None, Some(d)) => {
                        decision.label = "default".into();
                        decision.targets.push(d.clone());
                    }
                    (None, None) => {
                        return Err(self.error(
                            "no route's utterances are similar enough to the prompt and no \
                             auto_router_default_model is set",
                        ));
                    }
                }
            }
            Engine::Complexity { classifier, tiers } => {
                let choice = classifier.classify(&embedding);
                let index = Tier::ALL
                    .iter()
                    .position(|t| *t == choice.tier)
                    .unwrap_or_default();
                decision.label = choice.tier.as_str().to_ascii_uppercase();
                decision.targets = tiers[index].clone();
                decision.tier = Some(choice);
                if decision.targets.is_empty() {
                    return Err(self.error(format!("no model group for tier {}", decision.label)));
                }
            }
            Engine::Adaptive {
                types,
                targets,
                quality_weight,
                cost_weight,
            } => {
                let choice = types.classify(&embedding);
                decision.label = choice.request_type.as_str().to_string();
                decision.request_type = Some(choice);
                let eligible: Vec<&AdaptiveTarget> = targets
                    .iter()
                    .filter(|t| {
                        input
                            .min_quality_tier
                            .is_none_or(|m| t.prefs.quality_tier >= m)
                    })
                    .collect();
                if eligible.is_empty() {
                    return Err(self.error(format!(
                        "no model has quality_tier {} or above",
                        input.min_quality_tier.unwrap_or_default()
                    )));
                }
                let known: Vec<f64> = eligible.iter().filter_map(|t| t.unit_cost).collect();
                let lo = known.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut scores: Vec<AdaptiveScore> = eligible
                    .iter()
                    .map(|t| {
                        let tier = usize::from(t.prefs.quality_tier.clamp(1, 3)) - 1;
                        let bonus = if t.prefs.strengths.contains(&choice.request_type) {
                            STRENGTH_BONUS
                        } else {
                            0.0
                        };
                        let (quality, quality_from) = match trained.get(&t.group) {
                            Some(q) => (q.clamp(0.0, 1.0), QualitySource::TrainedRouter),
                            None => (
                                (TIER_QUALITY[tier] + bonus).min(MAX_QUALITY),
                                QualitySource::Preferences,
                            ),
                        };
                        let cheapness = match t.unit_cost {
                            Some(c) if hi > lo => 1.0 - (c - lo) / (hi - lo),
                            _ => 0.5,
                        };
                        AdaptiveScore {
                            group: t.group.clone(),
                            quality_tier: t.prefs.quality_tier,
                            quality,
                            quality_from,
                            unit_cost: t.unit_cost,
                            cheapness,
                            score: quality_weight * quality + cost_weight * cheapness,
                        }
                    })
                    .collect();
                // Best first; ties keep the configured order (stable sort).
                scores.sort_by(|a, b| b.score.total_cmp(&a.score));
                decision.targets = scores.iter().map(|s| s.group.clone()).collect();
                decision.scores = scores;
            }
        }
        Ok(decision)
    }
}

/// A group's preferences and mean price, from its deployments (the first that declares
/// preferences gives them).
fn adaptive_target(group: &str, deployments: Option<&[Arc<Deployment>]>) -> AdaptiveTarget {
    let deployments = deployments.unwrap_or_default();
    let prefs = deployments
        .iter()
        .find_map(|d| d.info.adaptive_router_preferences.clone())
        .unwrap_or_default();
    let costs: Vec<f64> = deployments.iter().filter_map(|d| d.unit_cost()).collect();
    let unit_cost = (!costs.is_empty()).then(|| costs.iter().sum::<f64>() / costs.len() as f64);
    AdaptiveTarget {
        group: group.to_string(),
        prefs,
        unit_cost,
    }
}

/// What the ML strategy's trained router predicts for each of `groups` on `prompt` (a group
/// is read as its first deployment RouteIQ can call); empty when no trained router decided
/// (none loaded, or it knows none of the groups' models).
pub fn trained_quality(
    ml: &MlRouting,
    groups: &[&str],
    deployments: &HashMap<String, Vec<Arc<Deployment>>>,
    prompt: &PromptFeatures,
) -> HashMap<String, f64> {
    let picked: Vec<(&str, &Arc<Deployment>)> = groups
        .iter()
        .filter_map(|g| {
            let d = deployments
                .get(*g)?
                .iter()
                .find(|d| d.unusable().is_none())?;
            Some((*g, d))
        })
        .collect();
    let cands: Vec<_> = picked.iter().map(|(_, d)| ml.candidate(d)).collect();
    let decision = ml.decide(&cands, prompt);
    if decision.method != DecisionMethod::Router {
        return HashMap::new();
    }
    decision
        .ranking
        .iter()
        .filter_map(|r| Some((picked.get(r.index)?.0.to_string(), r.predicted_quality?)))
        .collect()
}

/// The auto routers of a config, by model name.
#[derive(Debug, Default)]
pub struct AutoRouters {
    routers: HashMap<String, Result<Arc<AutoRouter>, String>>,
}

impl AutoRouters {
    /// Builds every auto router of `config` over the router's `groups`. One that cannot be
    /// built (its embedder failed) answers its requests with the reason.
    pub fn build(
        config: &Config,
        groups: &HashMap<String, Vec<Arc<Deployment>>>,
        tier_threshold: f32,
    ) -> AutoRouters {
        let mut routers = HashMap::new();
        let autos: Vec<_> = config
            .model_list
            .iter()
            .filter_map(|d| {
                Some((
                    d.model_name.as_str(),
                    d.litellm_params.auto_router.as_ref()?,
                ))
            })
            .collect();
        if autos.is_empty() {
            return AutoRouters { routers };
        }
        let embedder: Result<Arc<dyn Embedder>, String> = HashedNgramEmbedder::new(EMBEDDER_DIM)
            .map(|e| Arc::new(e) as Arc<dyn Embedder>)
            .map_err(|e| e.to_string());
        for (name, auto) in autos {
            let built = embedder.clone().and_then(|e| {
                AutoRouter::build(name, auto, groups, e, tier_threshold).map(Arc::new)
            });
            if let Err(e) = &built {
                tracing::error!(auto_router = name, error = %e, "auto router could not be built");
            }
            routers.insert(name.to_string(), built);
        }
        AutoRouters { routers }
    }

    /// Is `model` an auto router's name?
    pub fn contains(&self, model: &str) -> bool {
        self.routers.contains_key(model)
    }

    /// The auto router `model`, when it is one that could be built.
    pub fn get(&self, model: &str) -> Option<&AutoRouter> {
        self.routers.get(model)?.as_deref().ok()
    }

    /// Decides for a request to `model`; `None` when `model` is not an auto router.
    pub fn decide(
        &self,
        model: &str,
        input: AutoInput<'_>,
        trained: &HashMap<String, f64>,
    ) -> Option<Result<AutoDecision, AutoError>> {
        Some(match self.routers.get(model)? {
            Ok(r) => r.decide(input, trained),
            Err(e) => Err(AutoError {
                router: model.to_string(),
                reason: format!("could not be built: {e}"),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "model_list:
  - model_name: cheap
    litellm_params: {model: openai/gpt-4o-mini, input_cost_per_token: 0.00000015, output_cost_per_token: 0.0000006}
    model_info: {adaptive_router_preferences: {quality_tier: 2, strengths: [factual_lookup]}}
  - model_name: strong
    litellm_params: {model: openai/gpt-4o, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
    model_info: {adaptive_router_preferences: {quality_tier: 3, strengths: [code_generation, technical_design]}}
  - model_name: thinker
    litellm_params: {model: openai/o3}
  - model_name: adaptive
    litellm_params:
      model: auto_router/adaptive_router
      adaptive_router_config: {available_models: [cheap, strong], weights: {quality: 0.7, cost: 0.3}}
  - model_name: tiers
    litellm_params:
      model: auto_router/complexity_router
      complexity_router_config:
        tiers: {SIMPLE: cheap, COMPLEX: [strong, cheap], REASONING: thinker}
  - model_name: semantic
    litellm_params:
      model: auto_router/my-router
      auto_router_default_model: cheap
      auto_router_config:
        routes:
          - name: strong
            utterances: [write a python function, implement a class in java, fix this bug in my code]
          - name: thinker
            utterances: [prove this theorem, solve the equation step by step]
            score_threshold: 0.35
";

    fn routers() -> AutoRouters {
        let l = crate::config::load_str_with_env(CONFIG, &|_| None).unwrap();
        let clock = Arc::new(crate::state::SystemClock);
        let router = crate::router::Router::new(
            &l.config,
            Arc::new(crate::state::InMemoryStateStore::new(clock.clone())),
            clock,
        );
        router.auto
    }

    fn decide(r: &AutoRouters, model: &str, text: &str) -> AutoDecision {
        r.decide(
            model,
            AutoInput {
                text,
                ..AutoInput::default()
            },
            &HashMap::new(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn complexity_router_routes_by_tier() {
        let r = routers();
        let d = decide(&r, "tiers", "What is the capital of France?");
        assert_eq!(
            (d.label.as_str(), d.targets.as_slice()),
            ("SIMPLE", &["cheap".to_string()][..])
        );
        let d = decide(
            &r,
            "tiers",
            "Design a distributed, multi-region architecture for a payments ledger with \
             consistency guarantees, failure modes and a migration plan.",
        );
        assert_eq!(d.label, "COMPLEX");
        assert_eq!(d.targets, ["strong", "cheap"]);
        // MEDIUM has no groups and there is no default: the nearest tier above (COMPLEX).
        let table = tier_table(
            &BTreeMap::from([
                (Tier::Simple, vec!["a".into()]),
                (Tier::Complex, vec!["c".into()]),
            ]),
            None,
        );
        assert_eq!(
            table,
            [
                vec!["a".to_string()],
                vec!["c".into()],
                vec!["c".into()],
                vec!["c".into()]
            ]
        );
        let with_default = tier_table(
            &BTreeMap::from([(Tier::Simple, vec!["a".into()])]),
            Some(&"d".into()),
        );
        assert_eq!(with_default[3], ["d"]);
        assert!(!r.contains("cheap"));
        assert!(
            r.decide("cheap", AutoInput::default(), &HashMap::new())
                .is_none()
        );
    }

    #[test]
    fn adaptive_router_weighs_quality_against_cost() {
        let r = routers();
        // Code is strong's strength: 0.7·0.95 + 0.3·0 beats 0.7·0.5 + 0.3·1.
        let d = decide(
            &r,
            "adaptive",
            "Write a Rust function that parses a semver string.",
        );
        assert_eq!(d.label, "code_generation");
        assert_eq!(d.targets, ["strong", "cheap"]);
        // A lookup is cheap's strength: 0.7·0.8 + 0.3 beats 0.7·0.7.
        let d = decide(&r, "adaptive", "Who painted the Mona Lisa?");
        assert_eq!(d.label, "factual_lookup");
        assert_eq!(d.targets, ["cheap", "strong"]);
        let s = &d.scores[0];
        assert!(
            (s.quality - 0.8).abs() < 1e-9 && (s.cheapness - 1.0).abs() < 1e-9,
            "{s:?}"
        );
        // A caller asking for tier 3 only gets strong; tier 4 nothing.
        let only = r
            .decide(
                "adaptive",
                AutoInput {
                    text: "Who painted the Mona Lisa?",
                    min_quality_tier: Some(3),
                    ..AutoInput::default()
                },
                &HashMap::new(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(only.targets, ["strong"]);
        let none = r
            .decide(
                "adaptive",
                AutoInput {
                    text: "hi",
                    min_quality_tier: Some(4),
                    ..AutoInput::default()
                },
                &HashMap::new(),
            )
            .unwrap();
        assert!(none.unwrap_err().reason.contains("quality_tier 4"));
    }

    #[test]
    fn semantic_router_takes_the_nearest_route_above_its_threshold() {
        let r = routers();
        let d = decide(
            &r,
            "semantic",
            "Please write a python function that reverses a list",
        );
        assert_eq!(d.label, "strong");
        assert_eq!(d.targets, ["strong", "cheap"]);
        assert!(d.routes[0].score >= d.routes[0].threshold, "{:?}", d.routes);
        let d = decide(&r, "semantic", "What's the weather like in Lisbon in May?");
        assert_eq!(d.label, "default");
        assert_eq!(d.targets, ["cheap"]);
        assert!(
            d.routes.iter().all(|s| s.score < s.threshold),
            "{:?}",
            d.routes
        );
    }
}
