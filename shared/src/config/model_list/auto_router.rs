//! LiteLLM's routing models (`litellm_params.model: auto_router/...`), read as RouteIQ auto
//! routers: a model name that routes each request to one of other model groups.
//!
//! - `auto_router/adaptive_router` + `adaptive_router_config` (`available_models`,
//!   `weights.quality` / `weights.cost`), with each target's
//!   `model_info.adaptive_router_preferences` (`quality_tier`, `strengths`).
//! - `auto_router/complexity_router` + `complexity_router_config.tiers` (`SIMPLE`, `MEDIUM`,
//!   `COMPLEX`, `REASONING`: a group, or a list of them) and `default_model` (or
//!   `complexity_router_default_model` beside it).
//! - any other `auto_router/<name>`: the semantic router, `auto_router_config` (JSON text or a
//!   mapping) or `auto_router_config_path` (a JSON file beside the config) with `routes`
//!   (`name` = the target group, `utterances`, `score_threshold`), and
//!   `auto_router_default_model`.
//!
//! Targets must be model groups that are not auto routers themselves. How requests are routed
//! is [`crate::router::auto`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::ModelGroups;
use crate::config::WarningKind;
use crate::config::coerce;
use crate::config::load::{Loader, kind};
use crate::config::schema::{self, MapSchema, Node, Unknown, join};
use crate::ml::centroid::Tier;
use crate::ml::request_type::RequestType;

/// The `model` prefix of LiteLLM's routing models.
pub const PREFIX: &str = "auto_router/";
/// Default `weights.quality` of the adaptive router (LiteLLM's).
pub const DEFAULT_QUALITY_WEIGHT: f64 = 0.7;

/// `litellm_params.adaptive_router_config`.
pub(in crate::config) static ADAPTIVE_ROUTER_CONFIG: MapSchema = MapSchema {
    implemented: &[
        ("available_models", Node::Any),
        ("weights", Node::Map(&ADAPTIVE_WEIGHTS)),
    ],
    // The bandit's exploration and learned priors: feedback learning is not in RouteIQ yet.
    documented: &[
        "exploration_rate",
        "evaluation_priors",
        "evaluation_prior_max_mass",
    ],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Warn,
};

static ADAPTIVE_WEIGHTS: MapSchema = MapSchema {
    implemented: &[("quality", Node::Any), ("cost", Node::Any)],
    documented: &[],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Warn,
};

/// `litellm_params.complexity_router_config`. RouteIQ classifies with its centroid tiers, so
/// the keys that tune LiteLLM's rule-based scorer are not read.
pub(in crate::config) static COMPLEXITY_ROUTER_CONFIG: MapSchema = MapSchema {
    implemented: &[("tiers", Node::Any), ("default_model", Node::Any)],
    documented: &[
        "tier_boundaries",
        "token_thresholds",
        "dimension_weights",
        "code_keywords",
        "reasoning_keywords",
        "technical_keywords",
        "simple_keywords",
        "custom_dimensions",
        "keyword_tier_rules",
        "tier_labels",
        "classifier_type",
        "modality_routing",
        "modality_pin_override",
        "session_affinity_ttl_seconds",
    ],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Warn,
};

/// `model_info.adaptive_router_preferences`.
pub(in crate::config) static ADAPTIVE_PREFERENCES: MapSchema = MapSchema {
    implemented: &[("quality_tier", Node::Any), ("strengths", Node::Any)],
    documented: &[],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Warn,
};

/// An auto router: what a request to its model name is routed to.
#[derive(Debug, Clone, PartialEq)]
pub enum AutoRouterConfig {
    Semantic(SemanticRouterConfig),
    Complexity(ComplexityRouterConfig),
    Adaptive(AdaptiveRouterConfig),
}

impl AutoRouterConfig {
    /// The model groups it may route to.
    pub fn targets(&self) -> Vec<&str> {
        match self {
            AutoRouterConfig::Semantic(s) => s
                .routes
                .iter()
                .map(|r| r.name.as_str())
                .chain(s.default_model.as_deref())
                .collect(),
            AutoRouterConfig::Complexity(c) => c
                .tiers
                .values()
                .flatten()
                .map(String::as_str)
                .chain(c.default_model.as_deref())
                .collect(),
            AutoRouterConfig::Adaptive(a) => {
                a.available_models.iter().map(String::as_str).collect()
            }
        }
    }
}

/// The semantic router: the route whose utterances are nearest the prompt, above its
/// threshold; else the default model.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticRouterConfig {
    pub routes: Vec<SemanticRoute>,
    pub default_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SemanticRoute {
    /// The model group the route sends requests to.
    pub name: String,
    pub utterances: Vec<String>,
    /// The least similarity for the route to be taken (default
    /// [`crate::router::auto::DEFAULT_SCORE_THRESHOLD`]).
    pub score_threshold: Option<f32>,
}

/// The complexity router: a prompt's tier picks the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplexityRouterConfig {
    /// Each configured tier's groups, first choice first.
    pub tiers: BTreeMap<Tier, Vec<String>>,
    pub default_model: Option<String>,
}

/// The adaptive router: quality (from each group's tier and strengths) against cost.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveRouterConfig {
    pub available_models: Vec<String>,
    pub quality_weight: f64,
    pub cost_weight: f64,
}

/// `model_info.adaptive_router_preferences` of a deployment the adaptive router may pick.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptivePreferences {
    /// 1 = budget, 2 = mid, 3 = frontier.
    pub quality_tier: u8,
    pub strengths: Vec<RequestType>,
}

impl Default for AdaptivePreferences {
    /// LiteLLM's default for a model without preferences: tier 2, no strengths.
    fn default() -> Self {
        AdaptivePreferences {
            quality_tier: 2,
            strengths: Vec::new(),
        }
    }
}

/// The auto-router keys of `litellm_params`, as read.
#[derive(Debug, Default)]
pub(super) struct RawAutoRouterParams {
    pub adaptive_router_config: Option<Value>,
    pub complexity_router_config: Option<Value>,
    pub complexity_router_default_model: Option<String>,
    pub auto_router_config: Option<Value>,
    pub auto_router_config_path: Option<String>,
    pub auto_router_default_model: Option<String>,
    pub auto_router_embedding_model: Option<String>,
}

impl RawAutoRouterParams {
    /// Each key with whether it is set.
    fn keys(&self) -> [(&'static str, bool); 7] {
        [
            (
                "adaptive_router_config",
                self.adaptive_router_config.is_some(),
            ),
            (
                "complexity_router_config",
                self.complexity_router_config.is_some(),
            ),
            (
                "complexity_router_default_model",
                self.complexity_router_default_model.is_some(),
            ),
            ("auto_router_config", self.auto_router_config.is_some()),
            (
                "auto_router_config_path",
                self.auto_router_config_path.is_some(),
            ),
            (
                "auto_router_default_model",
                self.auto_router_default_model.is_some(),
            ),
            (
                "auto_router_embedding_model",
                self.auto_router_embedding_model.is_some(),
            ),
        ]
    }

    /// Warns for each key set that `reads` does not contain.
    fn warn_unread(&self, path: &str, reads: &[&str], message: &str, cx: &mut Loader) {
        for (key, set) in self.keys() {
            if set && !reads.contains(&key) {
                cx.warn(join(path, key), WarningKind::Caveat, message);
            }
        }
    }

    /// Warns that these keys are not read on a deployment that is not an auto router.
    pub(super) fn warn_unused(&self, path: &str, cx: &mut Loader) {
        self.warn_unread(
            path,
            &[],
            "read only on an auto router (model: auto_router/...); ignored",
            cx,
        );
    }

    /// The auto router `model` (`auto_router/<name>`) configures; `path` is the
    /// deployment's `litellm_params`. `None` when it has problems (recorded).
    pub(super) fn load(
        self,
        model: &str,
        path: &str,
        groups: &ModelGroups,
        cx: &mut Loader,
    ) -> Option<AutoRouterConfig> {
        let name = model.strip_prefix(PREFIX).unwrap_or(model).trim();
        let reads: &[&str] = match name {
            "adaptive_router" => &["adaptive_router_config"],
            "complexity_router" => &[
                "complexity_router_config",
                "complexity_router_default_model",
            ],
            _ => &[
                "auto_router_config",
                "auto_router_config_path",
                "auto_router_default_model",
                "auto_router_embedding_model",
            ],
        };
        self.warn_unread(path, reads, &format!("not read by {model}; ignored"), cx);
        let config = match name {
            "adaptive_router" => AutoRouterConfig::Adaptive(load_adaptive(
                self.adaptive_router_config,
                &join(path, "adaptive_router_config"),
                cx,
            )?),
            "complexity_router" => AutoRouterConfig::Complexity(load_complexity(
                self.complexity_router_config,
                self.complexity_router_default_model,
                path,
                cx,
            )?),
            _ => {
                if let Some(m) = &self.auto_router_embedding_model {
                    cx.warn(
                        join(path, "auto_router_embedding_model"),
                        WarningKind::Caveat,
                        format!(
                            "RouteIQ embeds utterances and prompts with its built-in embedder, \
                             not '{m}'; score thresholds tuned for that model may need lowering"
                        ),
                    );
                }
                AutoRouterConfig::Semantic(load_semantic(
                    self.auto_router_config,
                    self.auto_router_config_path,
                    self.auto_router_default_model,
                    path,
                    cx,
                )?)
            }
        };
        let mut ok = true;
        let mut check = |cx: &mut Loader, target: &str, at: &str| {
            if groups.is_auto_router(target) {
                cx.problem(
                    at,
                    format!("'{target}' is an auto router; an auto router routes to model groups"),
                );
                ok = false;
            } else if !groups.is_group(target) {
                cx.problem(at, groups.unknown_message(target, false));
                ok = false;
            }
        };
        match &config {
            AutoRouterConfig::Adaptive(a) => {
                for (i, m) in a.available_models.iter().enumerate() {
                    check(
                        cx,
                        m,
                        &format!("{path}.adaptive_router_config.available_models[{i}]"),
                    );
                }
            }
            AutoRouterConfig::Complexity(c) => {
                for (tier, targets) in &c.tiers {
                    for (i, t) in targets.iter().enumerate() {
                        let at = format!(
                            "{path}.complexity_router_config.tiers.{}[{i}]",
                            tier.as_str().to_ascii_uppercase()
                        );
                        check(cx, t, &at);
                    }
                }
                if let Some(d) = &c.default_model {
                    check(cx, d, &join(path, "complexity_router_default_model"));
                }
            }
            AutoRouterConfig::Semantic(s) => {
                for (i, r) in s.routes.iter().enumerate() {
                    check(
                        cx,
                        &r.name,
                        &format!("{path}.auto_router_config.routes[{i}].name"),
                    );
                }
                if let Some(d) = &s.default_model {
                    check(cx, d, &join(path, "auto_router_default_model"));
                }
            }
        }
        ok.then_some(config)
    }
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with available_models and weights"
)]
pub(in crate::config) struct RawAdaptiveConfig {
    #[serde(default)]
    pub available_models: Option<Vec<String>>,
    #[serde(default)]
    pub weights: Option<RawWeights>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with quality and cost")]
pub(in crate::config) struct RawWeights {
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub quality: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub cost: Option<f64>,
}

fn load_adaptive(raw: Option<Value>, path: &str, cx: &mut Loader) -> Option<AdaptiveRouterConfig> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        cx.problem(
            path,
            "auto_router/adaptive_router needs adaptive_router_config with available_models",
        );
        return None;
    };
    let raw: RawAdaptiveConfig = cx.de(raw, path)?;
    let models_path = join(path, "available_models");
    let models = match raw.available_models {
        Some(m) if !m.is_empty() => m,
        _ => {
            cx.problem(&models_path, "must list at least one model group");
            return None;
        }
    };
    let mut seen = Vec::new();
    for (i, m) in models.iter().enumerate() {
        if seen.contains(&m) {
            cx.problem(
                format!("{models_path}[{i}]"),
                format!("'{m}' is listed twice"),
            );
            return None;
        }
        seen.push(m);
    }
    let weights_path = join(path, "weights");
    let (quality, cost) = match raw.weights {
        None => (DEFAULT_QUALITY_WEIGHT, 1.0 - DEFAULT_QUALITY_WEIGHT),
        Some(w) => match (w.quality, w.cost) {
            (None, None) => (DEFAULT_QUALITY_WEIGHT, 1.0 - DEFAULT_QUALITY_WEIGHT),
            (Some(q), None) => (q, 1.0 - q),
            (None, Some(c)) => (1.0 - c, c),
            (Some(q), Some(c)) => (q, c),
        },
    };
    for (key, v) in [("quality", quality), ("cost", cost)] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            cx.problem(
                join(&weights_path, key),
                format!("must be between 0 and 1, got {v}"),
            );
            return None;
        }
    }
    if (quality + cost - 1.0).abs() > 1e-6 {
        cx.problem(
            &weights_path,
            format!("quality and cost must sum to 1.0, got {quality} + {cost}"),
        );
        return None;
    }
    Some(AdaptiveRouterConfig {
        available_models: models,
        quality_weight: quality,
        cost_weight: cost,
    })
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with tiers and default_model"
)]
pub(in crate::config) struct RawComplexityConfig {
    #[serde(default)]
    pub tiers: Option<Value>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub default_model: Option<String>,
}

const TIER_NAMES: [&str; 4] = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];

fn load_complexity(
    raw: Option<Value>,
    default_beside: Option<String>,
    lp_path: &str,
    cx: &mut Loader,
) -> Option<ComplexityRouterConfig> {
    let path = join(lp_path, "complexity_router_config");
    let raw: RawComplexityConfig = match raw.filter(|v| !v.is_null()) {
        Some(v) => cx.de(v, &path)?,
        None => RawComplexityConfig {
            tiers: None,
            default_model: None,
        },
    };
    let default_model = default_beside.or(raw.default_model);
    let tiers_path = join(&path, "tiers");
    let mut tiers = BTreeMap::new();
    match raw.tiers {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let Some(name) = schema::key_name(&k) else {
                    cx.problem(&tiers_path, "tier names must be strings");
                    return None;
                };
                let at = join(&tiers_path, &name);
                let Some(tier) = Tier::parse(&name) else {
                    let mut msg = format!(
                        "unknown tier '{name}'; the tiers are {}",
                        TIER_NAMES.join(", ")
                    );
                    if let Some(s) = schema::suggest(&name.to_ascii_uppercase(), &TIER_NAMES) {
                        msg.push_str(&format!("; did you mean '{s}'?"));
                    }
                    cx.problem(at, msg);
                    return None;
                };
                let targets = tier_targets(v, &at, cx)?;
                tiers.insert(tier, targets);
            }
        }
        Some(other) => {
            cx.problem(
                tiers_path,
                format!(
                    "expected a mapping of tiers to models, found {}",
                    kind(&other)
                ),
            );
            return None;
        }
    }
    if tiers.is_empty() && default_model.is_none() {
        cx.problem(
            path,
            "auto_router/complexity_router needs complexity_router_config.tiers (SIMPLE, \
             MEDIUM, COMPLEX, REASONING) or a default model",
        );
        return None;
    }
    Some(ComplexityRouterConfig {
        tiers,
        default_model,
    })
}

/// One tier's targets: a group name, `{model_name, litellm_params}`, or a list of them.
fn tier_targets(v: Value, path: &str, cx: &mut Loader) -> Option<Vec<String>> {
    let items = match v {
        Value::Sequence(items) if items.is_empty() => {
            cx.problem(path, "must name at least one model group");
            return None;
        }
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Some(i), v))
            .collect(),
        other => vec![(None, other)],
    };
    let mut out = Vec::new();
    for (i, item) in items {
        let at = match i {
            Some(i) => format!("{path}[{i}]"),
            None => path.to_string(),
        };
        match item {
            Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
            Value::Mapping(mut m) => {
                let Some(Value::String(name)) = m.shift_remove("model_name") else {
                    cx.problem(&at, "a tier entry mapping needs model_name");
                    return None;
                };
                for (k, v) in m {
                    let key = schema::key_name(&k).unwrap_or_default();
                    if key == "litellm_params" && !is_empty(&v) {
                        cx.warn(
                            join(&at, "litellm_params"),
                            WarningKind::NotImplemented,
                            format!(
                                "per-tier request parameters are not applied by RouteIQ yet; \
                                 this tier routes to '{name}' with the request's own parameters"
                            ),
                        );
                    } else if key != "litellm_params" {
                        cx.warn(
                            join(&at, &key),
                            WarningKind::Unknown,
                            "unknown key in a tier entry (model_name, litellm_params); ignored",
                        );
                    }
                }
                out.push(name.trim().to_string());
            }
            other => {
                cx.problem(
                    at,
                    format!(
                        "expected a model group name, a mapping with model_name, or a list of \
                         them, found {}",
                        kind(&other)
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(_) | Value::Number(_) | Value::Tagged(_) => false,
    }
}

/// The semantic router's routes file (`router.json`): semantic-router's `from_json` shape.
#[derive(Debug, Deserialize)]
struct RawSemantic {
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RawRoute {
    name: String,
    #[serde(default)]
    utterances: Vec<String>,
    #[serde(default)]
    score_threshold: Option<f64>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Route keys of the routes file that describe rather than route.
const ROUTE_FREE: &[&str] = &["description"];
/// Route keys semantic-router has that RouteIQ does not use (set to anything but null/empty).
const ROUTE_NOT_IMPLEMENTED: &[&str] = &["function_schemas", "llm", "metadata"];
/// Top-level keys of the routes file naming the encoder, which RouteIQ replaces.
const ENCODER_KEYS: &[&str] = &["encoder_type", "encoder_name"];

fn load_semantic(
    inline: Option<Value>,
    file: Option<String>,
    default_model: Option<String>,
    lp_path: &str,
    cx: &mut Loader,
) -> Option<SemanticRouterConfig> {
    let (json, path): (serde_json::Value, String) = match (inline, file) {
        (Some(v), Some(_)) if !v.is_null() => {
            cx.problem(
                join(lp_path, "auto_router_config"),
                "set auto_router_config or auto_router_config_path, not both",
            );
            return None;
        }
        (Some(Value::String(text)), _) => {
            let path = join(lp_path, "auto_router_config");
            match serde_json::from_str(&text) {
                Ok(j) => (j, path),
                Err(e) => {
                    cx.problem(path, format!("not valid JSON: {e}"));
                    return None;
                }
            }
        }
        (Some(v), _) if !v.is_null() => {
            let path = join(lp_path, "auto_router_config");
            match serde_json::to_value(&v) {
                Ok(j) => (j, path),
                Err(e) => {
                    cx.problem(path, format!("cannot be read as JSON: {e}"));
                    return None;
                }
            }
        }
        (_, Some(file)) => {
            let path = join(lp_path, "auto_router_config_path");
            let text = match cx.read_file(&file) {
                Ok(t) => t,
                Err(e) => {
                    cx.problem(path, format!("cannot read '{file}': {e}"));
                    return None;
                }
            };
            match serde_json::from_str(&text) {
                Ok(j) => (j, format!("{path}[{file}]")),
                Err(e) => {
                    cx.problem(path, format!("'{file}' is not valid JSON: {e}"));
                    return None;
                }
            }
        }
        _ => {
            cx.problem(
                join(lp_path, "model"),
                "a semantic auto router needs auto_router_config or auto_router_config_path \
                 (routes with utterances)",
            );
            return None;
        }
    };
    let raw: RawSemantic = match serde_path_to_error::deserialize(json) {
        Ok(r) => r,
        Err(e) => {
            let sub = e.path().to_string();
            let at = if sub == "." { path } else { join(&path, &sub) };
            cx.problem(at, e.inner().to_string());
            return None;
        }
    };
    for (k, v) in &raw.other {
        if ENCODER_KEYS.contains(&k.as_str()) {
            cx.warn(
                join(&path, k),
                WarningKind::Caveat,
                format!(
                    "RouteIQ embeds utterances with its built-in embedder, not {v}; score \
                     thresholds tuned for that encoder may need lowering"
                ),
            );
        } else {
            cx.warn(
                join(&path, k),
                WarningKind::Unknown,
                "unknown key of an auto router config (routes, encoder_type, encoder_name); \
                 ignored",
            );
        }
    }
    if raw.routes.is_empty() {
        cx.problem(join(&path, "routes"), "must list at least one route");
        return None;
    }
    let mut routes = Vec::new();
    let mut ok = true;
    for (i, r) in raw.routes.into_iter().enumerate() {
        let at = format!("{path}.routes[{i}]");
        for (k, v) in &r.other {
            let set = !(v.is_null()
                || v.as_object().is_some_and(|o| o.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty()));
            if ROUTE_FREE.contains(&k.as_str()) {
                continue;
            } else if ROUTE_NOT_IMPLEMENTED.contains(&k.as_str()) {
                if set {
                    cx.warn(
                        join(&at, k),
                        WarningKind::NotImplemented,
                        "not used by RouteIQ's semantic router; ignored",
                    );
                }
            } else {
                cx.warn(
                    join(&at, k),
                    WarningKind::Unknown,
                    "unknown route key (name, utterances, score_threshold, description); ignored",
                );
            }
        }
        let utterances: Vec<String> = r
            .utterances
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if utterances.is_empty() {
            cx.problem(join(&at, "utterances"), "must list at least one utterance");
            ok = false;
        }
        if let Some(t) = r
            .score_threshold
            .filter(|t| !(t.is_finite() && (0.0..=1.0).contains(t)))
        {
            cx.problem(
                join(&at, "score_threshold"),
                format!("must be between 0 and 1, got {t}"),
            );
            ok = false;
        }
        routes.push(SemanticRoute {
            name: r.name.trim().to_string(),
            utterances,
            score_threshold: r.score_threshold.map(|t| t as f32),
        });
    }
    ok.then_some(SemanticRouterConfig {
        routes,
        default_model,
    })
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with quality_tier and strengths"
)]
pub(in crate::config) struct RawAdaptivePreferences {
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub quality_tier: Option<u64>,
    #[serde(default)]
    pub strengths: Option<Vec<String>>,
}

impl RawAdaptivePreferences {
    pub(super) fn load(self, path: &str, cx: &mut Loader) -> Option<AdaptivePreferences> {
        let tier = match self.quality_tier {
            None => AdaptivePreferences::default().quality_tier,
            Some(t @ 1..=3) => t as u8,
            Some(t) => {
                cx.problem(
                    join(path, "quality_tier"),
                    format!("must be 1 (budget), 2 (mid) or 3 (frontier), got {t}"),
                );
                return None;
            }
        };
        let mut strengths = Vec::new();
        for (i, s) in self.strengths.unwrap_or_default().iter().enumerate() {
            match RequestType::parse(s) {
                Some(t) => strengths.push(t),
                None => {
                    let names = RequestType::names();
                    let mut msg = format!("unknown request type '{s}'");
                    if let Some(best) = schema::suggest(s, &names) {
                        msg.push_str(&format!("; did you mean '{best}'?"));
                    }
                    msg.push_str(&format!(" (the types: {})", names.join(", ")));
                    cx.problem(format!("{path}.strengths[{i}]"), msg);
                    return None;
                }
            }
        }
        Some(AdaptivePreferences {
            quality_tier: tier,
            strengths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::testing::{load, problems};
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schemas_match_raw_types() {
        assert_schema_matches::<RawAdaptiveConfig>(&ADAPTIVE_ROUTER_CONFIG);
        assert_schema_matches::<RawWeights>(&ADAPTIVE_WEIGHTS);
        assert_schema_matches::<RawComplexityConfig>(&COMPLEXITY_ROUTER_CONFIG);
        assert_schema_matches::<RawAdaptivePreferences>(&ADAPTIVE_PREFERENCES);
    }

    const TARGETS: &str = "model_list:\n\
        \x20 - {model_name: fast, litellm_params: {model: openai/gpt-4o-mini}, model_info: {adaptive_router_preferences: {quality_tier: 1, strengths: [factual_lookup]}}}\n\
        \x20 - {model_name: smart, litellm_params: {model: openai/gpt-4o}}\n";

    fn auto_of(yaml: &str) -> AutoRouterConfig {
        let l = load(&format!("{TARGETS}{yaml}")).unwrap();
        let d = l
            .config
            .model_list
            .iter()
            .find(|d| d.litellm_params.auto_router.is_some())
            .unwrap();
        d.litellm_params.auto_router.clone().unwrap()
    }

    #[test]
    fn adaptive_router_reads_models_and_weights() {
        let a = auto_of(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/adaptive_router\n      \
             adaptive_router_config: {available_models: [fast, smart], weights: {quality: 0.6, cost: '0.4'}}\n",
        );
        assert_eq!(
            a,
            AutoRouterConfig::Adaptive(AdaptiveRouterConfig {
                available_models: vec!["fast".into(), "smart".into()],
                quality_weight: 0.6,
                cost_weight: 0.4,
            })
        );
        let l = load(TARGETS).unwrap();
        assert_eq!(
            l.config.model_list[0]
                .model_info
                .adaptive_router_preferences,
            Some(AdaptivePreferences {
                quality_tier: 1,
                strengths: vec![RequestType::FactualLookup]
            })
        );
    }

    #[test]
    fn complexity_router_reads_tiers_in_every_form() {
        let c = auto_of(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/complexity_router\n      \
             complexity_router_config:\n        tiers:\n          SIMPLE: fast\n          \
             COMPLEX: {model_name: smart}\n          REASONING: [smart, {model_name: fast}]\n        \
             tier_boundaries: {simple_medium: 0.2}\n      complexity_router_default_model: smart\n",
        );
        let AutoRouterConfig::Complexity(c) = c else {
            panic!("{c:?}")
        };
        assert_eq!(c.default_model.as_deref(), Some("smart"));
        assert_eq!(c.tiers[&Tier::Simple], ["fast"]);
        assert_eq!(c.tiers[&Tier::Complex], ["smart"]);
        assert_eq!(c.tiers[&Tier::Reasoning], ["smart", "fast"]);
        assert!(!c.tiers.contains_key(&Tier::Medium));
    }

    #[test]
    fn semantic_router_reads_inline_json_and_mappings() {
        let json = r#"{"encoder_type": "openai", "encoder_name": "text-embedding-3-large", "routes": [{"name": "smart", "utterances": ["write code"], "description": "coding", "function_schemas": null, "llm": null, "score_threshold": 0.4, "metadata": {}}]}"#;
        let yaml = format!(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/router1\n      \
             auto_router_config: '{json}'\n      auto_router_default_model: fast\n"
        );
        let l = load(&format!("{TARGETS}{yaml}")).unwrap();
        let kinds: Vec<(&str, &str)> = l
            .warnings
            .iter()
            .map(|w| (w.path.as_str(), w.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    "model_list[2].litellm_params.auto_router_config.encoder_name",
                    "caveat"
                ),
                (
                    "model_list[2].litellm_params.auto_router_config.encoder_type",
                    "caveat"
                ),
            ]
        );
        let AutoRouterConfig::Semantic(s) = auto_of(&yaml) else {
            panic!()
        };
        assert_eq!(s.default_model.as_deref(), Some("fast"));
        assert_eq!(
            s.routes,
            [SemanticRoute {
                name: "smart".into(),
                utterances: vec!["write code".into()],
                score_threshold: Some(0.4)
            }]
        );
        let mapped = auto_of(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/x\n      \
             auto_router_config: {routes: [{name: fast, utterances: [hi]}]}\n",
        );
        assert!(matches!(mapped, AutoRouterConfig::Semantic(s) if s.routes[0].name == "fast"));
    }

    #[test]
    fn bad_auto_routers_name_the_path() {
        let p = |yaml: &str| -> Vec<(String, String)> {
            problems(&format!("{TARGETS}{yaml}"))
                .into_iter()
                .map(|p| (p.path, p.message))
                .collect()
        };
        let bad = p(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/adaptive_router\n      \
             adaptive_router_config: {available_models: [fast, smrt], weights: {quality: 0.9, cost: 0.3}}\n",
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(
            bad[0].0,
            "model_list[2].litellm_params.adaptive_router_config.weights"
        );
        let bad = p(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/adaptive_router\n      \
             adaptive_router_config: {available_models: [fast, smrt]}\n",
        );
        assert_eq!(
            bad,
            [(
                "model_list[2].litellm_params.adaptive_router_config.available_models[1]".into(),
                "unknown model group 'smrt'; did you mean 'smart'?".into()
            )]
        );
        let bad = p(
            "  - model_name: r\n    litellm_params:\n      model: auto_router/complexity_router\n      \
             complexity_router_config: {tiers: {SIMPEL: fast}}\n",
        );
        assert_eq!(
            bad[0].0,
            "model_list[2].litellm_params.complexity_router_config.tiers.SIMPEL"
        );
        assert!(bad[0].1.contains("did you mean 'SIMPLE'"), "{bad:?}");
        let bad = p(
            "  - model_name: r\n    litellm_params: {model: auto_router/complexity_router, complexity_router_config: {tiers: {SIMPLE: r2}}}\n\
             \x20 - model_name: r2\n    litellm_params: {model: auto_router/complexity_router, complexity_router_default_model: fast}\n",
        );
        assert_eq!(
            bad,
            [(
                "model_list[2].litellm_params.complexity_router_config.tiers.SIMPLE[0]".into(),
                "'r2' is an auto router; an auto router routes to model groups".into()
            )]
        );
        let bad = p("  - model_name: r\n    litellm_params: {model: auto_router/sem}\n");
        assert_eq!(bad[0].0, "model_list[2].litellm_params.model");
        let bad = p(
            "  - model_name: r\n    litellm_params: {model: auto_router/sem, auto_router_config: '{\"routes\": [{\"name\": \"fast\", \"utterances\": []}]}'}\n",
        );
        assert_eq!(
            bad[0].0,
            "model_list[2].litellm_params.auto_router_config.routes[0].utterances"
        );
        let bad = p(
            "  - model_name: fast\n    litellm_params: {model: auto_router/complexity_router, complexity_router_default_model: smart}\n",
        );
        assert_eq!(bad[0].0, "model_list[2].model_name", "{bad:?}");
        let bad = problems(&format!(
            "{TARGETS}  - model_name: x\n    litellm_params: {{model: gpt-4o}}\n    model_info: {{adaptive_router_preferences: {{quality_tier: 4, strengths: [coding]}}}}\n"
        ));
        assert_eq!(
            bad[0].path,
            "model_list[2].model_info.adaptive_router_preferences.quality_tier"
        );
    }

    #[test]
    fn routes_file_is_read_beside_the_config() {
        let yaml = format!(
            "{TARGETS}  - model_name: r\n    litellm_params: {{model: auto_router/sem, auto_router_config_path: router.json, auto_router_default_model: fast}}\n"
        );
        let read = |name: &str| -> Result<String, String> {
            match name {
                "router.json" => Ok(
                    r#"{"routes": [{"name": "smart", "utterances": ["design a system"]}]}"#.into(),
                ),
                other => Err(format!("no file {other}")),
            }
        };
        let l = crate::config::load_str_with(&yaml, &|_| None, Some(&read)).unwrap();
        let Some(AutoRouterConfig::Semantic(s)) =
            &l.config.model_list[2].litellm_params.auto_router
        else {
            panic!()
        };
        assert_eq!(s.routes[0].utterances, ["design a system"]);
        // Without a reader (a config from S3), the file cannot be read: a clear problem.
        let p = problems(&yaml);
        assert_eq!(
            p[0].path,
            "model_list[2].litellm_params.auto_router_config_path"
        );
    }
}
