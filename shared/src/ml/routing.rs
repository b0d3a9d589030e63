//! The ML strategies as the router runs them: settings from `routing_strategy_args`, the
//! router artifact in a hot-reloadable slot, the embedder, centroid fallback, and the
//! explainable [`Decision`] for each request.
//!
//! Candidates are the deployments of the requested model group; each is matched to one of
//! the router's models by `model_info.base_model`, else the upstream model name (the part
//! of `litellm_params.model` after `provider/`), exact, then case-insensitive, then on the
//! last path segment. Prices come from `model_info` (or the built-in price table), else the
//! `llm_candidates.json` file (`llm_data_path`), else the router artifact; quality priors,
//! sizes and capabilities from `model_info.quality_score` / `size` / `capabilities`, else
//! `llm_candidates.json`, else the artifact.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::artifact::{EmbedderSpec, VerifyPolicy, embedding_probe};
use super::centroid::{
    CentroidClassifier, DEFAULT_CONFIDENCE_THRESHOLD, Profile, Tier, TierChoice, rank_for_tier,
};
use super::choice::{
    CandidateModel, CostPolicy, DEFAULT_OUTPUT_TOKENS, RankedCandidate, rank_by_utility,
};
use super::embed::Embedder;
use super::hashed::HashedNgramEmbedder;
use super::predictor::{HybridCall, LoadedRouter, Predictor, ScorerLoader, model_index};
use super::slot::RouterSlot;
use super::store::ModelStore;
use super::strategies::MlStrategyName;
use crate::config::ConfigProblem;
use crate::router::Deployment;

/// `routing_strategy_args` of an ML strategy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MlSettings {
    pub strategy: MlStrategyName,
    /// `model_path`: the router artifact (path or URI).
    pub model_path: Option<String>,
    /// `manifest_path`: default `manifest.json` beside the artifact.
    pub manifest_path: Option<String>,
    /// `hot_reload` (default false) and `reload_interval` (seconds in the config, default 30).
    pub hot_reload: bool,
    pub reload_interval: Duration,
    /// `cost_weight`, `willingness_to_pay`, `expected_output_tokens`.
    pub cost: CostPolicy,
    /// `threshold`: the hybrid router's decision threshold (default: the artifact's).
    pub threshold: Option<f32>,
    /// `profile`: default routing profile (`ROUTEIQ_ROUTING_PROFILE` wins).
    pub profile: Option<Profile>,
    /// `llm_data_path`: an `llm_candidates.json` with per-model prices and priors.
    pub llm_data_path: Option<String>,
    /// `public_keys`: trusted ed25519 keys (hex) for signed artifacts.
    pub public_keys: Vec<String>,
    /// `embedder_path`: directory of the static or transformer embedding model the artifact
    /// was trained on (default `$ROUTEIQ_MODEL_DIR/<embedder id>`).
    pub embedder_path: Option<String>,
}

/// Keys of `routing_strategy_args` the ML strategies read.
pub const ARG_KEYS: [&str; 12] = [
    "model_path",
    "manifest_path",
    "hot_reload",
    "reload_interval",
    "cost_weight",
    "willingness_to_pay",
    "expected_output_tokens",
    "threshold",
    "profile",
    "llm_data_path",
    "public_keys",
    "embedder_path",
];

impl MlSettings {
    /// Reads and checks the ML keys of `routing_strategy_args`; each problem is
    /// `(key, message)`.
    pub fn from_args(
        strategy: MlStrategyName,
        args: &Map<String, Value>,
    ) -> Result<MlSettings, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut string = |k: &str| -> Option<String> {
            match args.get(k) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(v) => {
                    problems.push(ConfigProblem::new(
                        k.to_string(),
                        format!("must be a non-empty string, got {v}"),
                    ));
                    None
                }
            }
        };
        let model_path = string("model_path");
        let manifest_path = string("manifest_path");
        let llm_data_path = string("llm_data_path");
        let embedder_path = string("embedder_path");
        let profile_raw = string("profile");
        let mut number = |k: &str, min: f64, max: f64| -> Option<f64> {
            let v = args.get(k)?;
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match n {
                Some(n) if n.is_finite() && (min..=max).contains(&n) => Some(n),
                _ => {
                    problems.push(ConfigProblem::new(
                        k.to_string(),
                        format!("must be a number in [{min}, {max}], got {v}"),
                    ));
                    None
                }
            }
        };
        // In range (0.1 s to a day), so the conversion cannot fail.
        let reload_interval =
            Duration::try_from_secs_f64(number("reload_interval", 0.1, 86_400.0).unwrap_or(30.0))
                .unwrap_or(Duration::from_secs(30));
        let cost_weight = number("cost_weight", 0.0, 1e6).unwrap_or(0.0);
        let willingness_to_pay = number("willingness_to_pay", 1e-12, 1e9);
        let expected_output_tokens =
            number("expected_output_tokens", 0.0, 1e7).map_or(DEFAULT_OUTPUT_TOKENS, |v| v as u64);
        let threshold = number("threshold", -1e3, 1e3).map(|v| v as f32);
        let hot_reload = match args.get("hot_reload") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                problems.push(ConfigProblem::new(
                    "hot_reload",
                    format!("must be true or false, got {v}"),
                ));
                false
            }
        };
        let public_keys = match args.get("public_keys").or_else(|| args.get("public_key")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(v) => {
                problems.push(ConfigProblem::new(
                    "public_keys",
                    format!("must be a list of hex keys, got {v}"),
                ));
                Vec::new()
            }
        };
        for k in &public_keys {
            if let Err(e) = super::artifact::parse_public_key(k) {
                problems.push(ConfigProblem::new("public_keys", e));
            }
        }
        let profile = profile_raw.and_then(|p| match Profile::parse(&p) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(ConfigProblem::new("profile", e));
                None
            }
        });
        if hot_reload && model_path.is_none() {
            problems.push(ConfigProblem::new("hot_reload", "needs model_path"));
        }
        if strategy == MlStrategyName::Custom && model_path.is_none() {
            problems.push(ConfigProblem::new(
                "model_path",
                "llmrouter-custom needs model_path: a routeiq-router JSON naming the ONNX file",
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(MlSettings {
            strategy,
            model_path,
            manifest_path,
            hot_reload,
            reload_interval,
            cost: CostPolicy {
                cost_weight,
                willingness_to_pay,
                expected_output_tokens,
            },
            threshold,
            profile,
            llm_data_path,
            public_keys,
            embedder_path,
        })
    }
}

/// One model's entry in `llm_candidates.json` (RouteIQ's fields, plus LLMRouter's
/// `default_llm.json` fields so that file works as is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateInfo {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub quality_score: Option<f64>,
    pub size_b: Option<f64>,
    pub capabilities: Vec<String>,
    pub provider: Option<String>,
}

/// Parses a size such as `7B`, `70b`, `1.5B`, `350M` or a number of billions.
pub fn parse_size_b(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            if let Some(b) = s.strip_suffix('b') {
                b.trim().parse().ok()
            } else if let Some(m) = s.strip_suffix('m') {
                m.trim().parse::<f64>().ok().map(|m| m / 1000.0)
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

fn info_from_json(v: &Map<String, Value>) -> CandidateInfo {
    let num = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64().or_else(|| x.as_str()?.trim().parse().ok()))
    };
    let per_1k = num("cost_per_1k_tokens").map(|c| c / 1000.0);
    let per_m = |k: &str| num(k).map(|p| p / 1e6);
    // `cost: {input, output}` in USD per million tokens (the models.dev form the seed uses).
    let cost_per_m = |k: &str| {
        v.get("cost")
            .and_then(|c| c.get(k))
            .and_then(|x| x.as_f64().or_else(|| x.as_str()?.trim().parse().ok()))
            .map(|p| p / 1e6)
    };
    CandidateInfo {
        input_cost_per_token: num("input_cost_per_token")
            .or(per_m("input_price"))
            .or(cost_per_m("input"))
            .or(per_1k),
        output_cost_per_token: num("output_cost_per_token")
            .or(per_m("output_price"))
            .or(cost_per_m("output"))
            .or(per_1k),
        quality_score: num("quality_score"),
        size_b: v.get("size").and_then(parse_size_b),
        capabilities: match v.get("capabilities") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|c| c.as_str())
                .map(str::to_ascii_lowercase)
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty())
                .collect(),
            _ => Vec::new(),
        },
        provider: v
            .get("provider")
            .or_else(|| v.get("service"))
            .and_then(|p| p.as_str())
            .map(str::to_string),
    }
}

/// Parses `llm_candidates.json`: an object of model name → fields, or a list of objects with
/// a `name` (or `model`). Fields: `provider`, `capabilities`, `cost_per_1k_tokens`,
/// `quality_score`, `size`; also `input_price`/`output_price` (USD per million tokens, as
/// in LLMRouter's `default_llm.json`), `cost: {input, output}` (USD per million tokens) and
/// `input_cost_per_token`/`output_cost_per_token`.
pub fn parse_candidates(json: &[u8]) -> Result<BTreeMap<String, CandidateInfo>, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    match v {
        Value::Object(map) => {
            for (name, fields) in map {
                let fields = fields
                    .as_object()
                    .ok_or_else(|| format!("'{name}': expected an object of fields"))?;
                out.insert(name, info_from_json(fields));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let fields = item
                    .as_object()
                    .ok_or_else(|| format!("[{i}]: expected an object of fields"))?;
                let name = fields
                    .get("name")
                    .or_else(|| fields.get("model"))
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| format!("[{i}]: missing \"name\""))?;
                out.insert(name.to_string(), info_from_json(fields));
            }
        }
        _ => return Err("expected an object or a list of models".into()),
    }
    Ok(out)
}

/// What routing knows about a deployment from its config alone (prices, and
/// `model_info` `quality_score`, size and capabilities): the candidate non-ML strategies
/// rank for an edge hint's tier.
pub fn basic_candidate(d: &Deployment) -> CandidateModel {
    let extra = info_from_json(&d.info.extra);
    CandidateModel {
        deployment: d.id.clone(),
        model: d
            .info
            .base_model
            .clone()
            .unwrap_or_else(|| d.upstream_model.clone()),
        input_cost_per_token: d.input_cost_per_token,
        output_cost_per_token: d.output_cost_per_token,
        quality_score: extra.quality_score,
        size_b: extra.size_b,
        capabilities: extra.capabilities,
    }
}

/// The request as the ML strategies see it.
#[derive(Debug, Clone, Default)]
pub struct PromptFeatures {
    /// The prompt text (chat messages joined).
    pub text: String,
    pub estimated_tokens: u64,
    /// The embedding, when the caller computed it already (off the async runtime for the
    /// transformer); otherwise the strategy embeds inline.
    pub embedding: Option<Vec<f32>>,
    /// Per-request profile (header `x-routeiq-profile` or `metadata.routing_profile`).
    pub profile: Option<Profile>,
    /// Milliseconds the caller spent embedding the prompt (reported with the decision).
    pub embed_ms: f64,
    /// A tier a verified edge hint settled (see [`crate::router::hint`]): the decision
    /// ranks for it without embedding the prompt or running the router.
    pub hint_tier: Option<Tier>,
}

/// How a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionMethod {
    /// The trained router predicted the qualities.
    Router,
    /// Centroid tiers (no router loaded, or it failed).
    Centroid,
    /// Ordered by model size.
    Size,
    /// Ordered by cost alone (nothing else available).
    Cost,
    /// Ranked for the tier a verified edge hint gave.
    Edge,
}

/// An explainable routing decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub strategy: &'static str,
    pub method: DecisionMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    pub profile: Profile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridCall>,
    /// Why a fallback was used, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The candidates, first choice first.
    pub ranking: Vec<RankedCandidate>,
    /// Milliseconds spent embedding the prompt (before the router ran).
    pub embed_ms: f64,
}

impl Decision {
    /// Candidate indices in order.
    pub fn order(&self) -> Vec<usize> {
        self.ranking.iter().map(|r| r.index).collect()
    }
}

/// Why the ML routing could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MlSetupError {
    #[error("{strategy}: {message}")]
    Router {
        strategy: &'static str,
        message: String,
    },
}

/// Process-wide switches from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct MlEnv {
    /// `ROUTEIQ_CENTROID_ROUTING` (default true).
    pub centroid_routing: bool,
    /// `ROUTEIQ_CONFIDENCE_THRESHOLD` (default 0.06).
    pub confidence_threshold: f32,
    /// `ROUTEIQ_ROUTING_PROFILE`.
    pub profile: Option<Profile>,
    /// `LLMROUTER_ENFORCE_SIGNED_MODELS`, `LLMROUTER_MODEL_PUBLIC_KEYS`.
    pub policy_keys: Vec<String>,
    pub enforce_signed: bool,
    /// `ROUTEIQ_MODEL_DIR` (default `$HOME/.cache/routeiq/models`).
    pub model_dir: Option<String>,
}

impl Default for MlEnv {
    /// Centroid routing on with the default threshold, no profile, no signing policy.
    fn default() -> Self {
        MlEnv {
            centroid_routing: true,
            confidence_threshold: DEFAULT_CONFIDENCE_THRESHOLD,
            profile: None,
            policy_keys: Vec::new(),
            enforce_signed: false,
            model_dir: None,
        }
    }
}

impl MlEnv {
    /// Reads `ROUTEIQ_CENTROID_ROUTING`, `ROUTEIQ_CONFIDENCE_THRESHOLD`,
    /// `ROUTEIQ_ROUTING_PROFILE`, `LLMROUTER_ENFORCE_SIGNED_MODELS`,
    /// `LLMROUTER_MODEL_PUBLIC_KEYS` and `ROUTEIQ_MODEL_DIR`; every bad value is reported as
    /// `(variable, message)`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<MlEnv, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let mut flag = |k: &str, default: bool| match get(k) {
            None => default,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    problems.push(ConfigProblem::new(
                        k.to_string(),
                        format!("'{v}' is not true or false"),
                    ));
                    default
                }
            },
        };
        let centroid_routing = flag("ROUTEIQ_CENTROID_ROUTING", true);
        let enforce_signed = flag("LLMROUTER_ENFORCE_SIGNED_MODELS", false);
        let confidence_threshold = match get("ROUTEIQ_CONFIDENCE_THRESHOLD") {
            None => DEFAULT_CONFIDENCE_THRESHOLD,
            Some(v) => match v.trim().parse::<f32>().ok().filter(|t| t.is_finite()) {
                Some(t) => t,
                None => {
                    problems.push(ConfigProblem::new(
                        "ROUTEIQ_CONFIDENCE_THRESHOLD",
                        format!("'{v}' is not a number"),
                    ));
                    DEFAULT_CONFIDENCE_THRESHOLD
                }
            },
        };
        let profile = get("ROUTEIQ_ROUTING_PROFILE").and_then(|p| match Profile::parse(&p) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(ConfigProblem::new("ROUTEIQ_ROUTING_PROFILE", e));
                None
            }
        });
        let policy_keys: Vec<String> = get("LLMROUTER_MODEL_PUBLIC_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        for k in &policy_keys {
            if let Err(e) = super::artifact::parse_public_key(k) {
                problems.push(ConfigProblem::new("LLMROUTER_MODEL_PUBLIC_KEYS", e));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(MlEnv {
            centroid_routing,
            confidence_threshold,
            profile,
            policy_keys,
            enforce_signed,
            model_dir: get("ROUTEIQ_MODEL_DIR")
                .or_else(|| get("HOME").map(|h| format!("{h}/.cache/routeiq/models"))),
        })
    }
}

/// Builds the embedder an artifact was trained on: `(spec, embedder_path or model dir)`.
pub type EmbedderFactory =
    dyn Fn(&EmbedderSpec, Option<&str>) -> Result<Arc<dyn Embedder>, String> + Send + Sync;

/// The embedders every build can make: `hashed-ngram-v1-<dim>`, and the static table
/// (`static-*`, from `<dir>/table.riqs`, `dir` being `embedder_path` or
/// `<model dir>/<id>`).
pub fn builtin_embedder(
    spec: &EmbedderSpec,
    dir: Option<&str>,
) -> Result<Arc<dyn Embedder>, String> {
    if let Some(e) = HashedNgramEmbedder::from_id(&spec.id) {
        return Ok(Arc::new(e));
    }
    if spec.id.starts_with("static-") {
        let dir = dir.ok_or_else(|| {
            format!("embedder '{}' needs its model directory (routing_strategy_args.embedder_path or ROUTEIQ_MODEL_DIR)", spec.id)
        })?;
        let path = std::path::Path::new(dir).join(super::static_embed::TABLE_FILE);
        let e = super::StaticEmbedder::load(&path).map_err(|e| e.to_string())?;
        if e.id() != spec.id {
            return Err(format!(
                "{} holds embedder '{}', the router needs '{}'",
                path.display(),
                e.id(),
                spec.id
            ));
        }
        return Ok(Arc::new(e));
    }
    if let Some(found) = transformer_embedder(spec, dir) {
        return found;
    }
    Err(format!(
        "embedder '{}' is not available in this build (the transformer needs the `onnx` feature)",
        spec.id
    ))
}

/// Whether a model location is a URI for a [`ModelStore`] other than the local disk
/// (`s3://…`), rather than a local path.
fn is_remote(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme != "file")
}

/// An embedder whose model directory `dir_uri` lives in `store` (e.g. `s3://bucket/prefix/
/// static-minilm-pca128`): its files are fetched, checked against the directory's
/// `manifest.json` and loaded from the store's local copies.
pub fn store_embedder(
    store: &dyn ModelStore,
    spec: &EmbedderSpec,
    dir_uri: &str,
) -> Result<Arc<dyn Embedder>, String> {
    if let Some(e) = HashedNgramEmbedder::from_id(&spec.id) {
        return Ok(Arc::new(e));
    }
    let e: Arc<dyn Embedder> = if spec.id.starts_with("static-") {
        Arc::new(super::StaticEmbedder::from_store(store, dir_uri).map_err(|e| e.to_string())?)
    } else {
        transformer_from_store(store, spec, dir_uri)?
    };
    if e.id() != spec.id {
        return Err(format!(
            "{dir_uri} holds embedder '{}', the router needs '{}'",
            e.id(),
            spec.id
        ));
    }
    Ok(e)
}

#[cfg(feature = "onnx")]
fn transformer_from_store(
    store: &dyn ModelStore,
    spec: &EmbedderSpec,
    dir_uri: &str,
) -> Result<Arc<dyn Embedder>, String> {
    if !spec.id.starts_with("minilm") {
        return Err(format!(
            "embedder '{}' is not one this build knows",
            spec.id
        ));
    }
    Ok(Arc::new(
        super::TransformerEmbedder::from_store(store, dir_uri).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "onnx"))]
fn transformer_from_store(
    _: &dyn ModelStore,
    spec: &EmbedderSpec,
    _: &str,
) -> Result<Arc<dyn Embedder>, String> {
    Err(format!(
        "embedder '{}' is not available in this build (the transformer needs the `onnx` feature)",
        spec.id
    ))
}

/// The transformer embedder (`minilm*`) from `dir`, else from the directory beside it that
/// `fetch_models.sh` writes (`<model dir>/minilm-l6-v2`). `None` when `spec` names no
/// transformer.
#[cfg(feature = "onnx")]
fn transformer_embedder(
    spec: &EmbedderSpec,
    dir: Option<&str>,
) -> Option<Result<Arc<dyn Embedder>, String>> {
    if !spec.id.starts_with("minilm") {
        return None;
    }
    let candidates = dir.into_iter().map(std::path::PathBuf::from).chain(
        dir.and_then(|d| std::path::Path::new(d).parent())
            .map(|p| p.join("minilm-l6-v2")),
    );
    let mut last = format!("no model directory for embedder '{}'", spec.id);
    for d in candidates {
        match super::TransformerEmbedder::load(&d) {
            Ok(e) if e.id() == spec.id => return Some(Ok(Arc::new(e))),
            Ok(e) => last = format!("{} holds '{}', not '{}'", d.display(), e.id(), spec.id),
            Err(e) => last = e.to_string(),
        }
    }
    Some(Err(last))
}

#[cfg(not(feature = "onnx"))]
fn transformer_embedder(
    _: &EmbedderSpec,
    _: Option<&str>,
) -> Option<Result<Arc<dyn Embedder>, String>> {
    None
}

/// What setting up an ML strategy needs from its host: the environment switches, where
/// artifacts are read from, how embedders are built, and (with ONNX support) how a custom
/// router's model is loaded.
#[derive(Clone)]
pub struct MlContext {
    pub env: MlEnv,
    pub store: Arc<dyn ModelStore>,
    pub embedders: Arc<EmbedderFactory>,
    pub load_custom: Option<Arc<ScorerLoader>>,
}

impl std::fmt::Debug for MlContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlContext")
            .field("env", &self.env)
            .field("custom_onnx", &self.load_custom.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for MlContext {
    /// The default environment, the local filesystem, the built-in embedders, and the
    /// custom-router loader of this build (ONNX with the `onnx` feature).
    fn default() -> Self {
        MlContext {
            env: MlEnv::default(),
            store: Arc::new(super::store::FsModelStore::new()),
            embedders: Arc::new(builtin_embedder),
            load_custom: super::predictor::default_scorer_loader(),
        }
    }
}

/// A configured ML strategy, ready to decide.
pub struct MlRouting {
    settings: MlSettings,
    slot: Option<Arc<RouterSlot>>,
    embedder: Arc<dyn Embedder>,
    centroid: Option<CentroidClassifier>,
    /// `ROUTEIQ_CONFIDENCE_THRESHOLD` as set up (auto routers' tiers use it too).
    tier_threshold: f32,
    default_profile: Profile,
    candidates: BTreeMap<String, CandidateInfo>,
    /// Why the router is not serving at start-up, when it is not.
    startup_note: Option<String>,
}

impl std::fmt::Debug for MlRouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlRouting")
            .field("strategy", &self.settings.strategy)
            .field("embedder", &self.embedder.id())
            .finish_non_exhaustive()
    }
}

/// Reads the artifact's header to learn its embedding space before the full load.
fn peek_embedder(store: &dyn ModelStore, uri: &str) -> Result<EmbedderSpec, String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        embedder: EmbedderSpec,
    }
    let local = store.fetch(uri).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&local.path).map_err(|e| format!("{}: {e}", local.path.display()))?;
    let p: Peek = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{uri} is not a valid routeiq-router file: {e}"))?;
    Ok(p.embedder)
}

impl MlRouting {
    /// Sets up the strategy: loads and verifies the artifact, builds its embedder and the
    /// centroid classifier. With centroid routing on, a router that cannot load is logged
    /// and replaced by centroid routing (and hot reload keeps trying); with it off, that is
    /// an error.
    pub fn build(settings: MlSettings, ctx: &MlContext) -> Result<MlRouting, MlSetupError> {
        let ml_env = &ctx.env;
        let store = ctx.store.clone();
        let embedders = ctx.embedders.as_ref();
        let load_custom = ctx.load_custom.clone();
        let strategy = settings.strategy.as_str();
        let fail = |message: String| MlSetupError::Router { strategy, message };
        let mut keys = settings.public_keys.clone();
        keys.extend(ml_env.policy_keys.iter().cloned());
        let policy = VerifyPolicy {
            enforce_signed: ml_env.enforce_signed,
            trusted_keys: keys
                .iter()
                .map(|k| super::artifact::parse_public_key(k))
                .collect::<Result<_, _>>()
                .map_err(fail)?,
        };
        let candidates = match &settings.llm_data_path {
            None => BTreeMap::new(),
            Some(p) => {
                let bytes =
                    std::fs::read(p).map_err(|e| fail(format!("llm_data_path {p}: {e}")))?;
                parse_candidates(&bytes).map_err(|e| fail(format!("llm_data_path {p}: {e}")))?
            }
        };
        let fallback_embedder =
            || -> Arc<dyn Embedder> { Arc::new(HashedNgramEmbedder::default()) };
        let mut startup_note = None;
        let mut embedder: Option<Arc<dyn Embedder>> = None;
        let mut slot = None;
        if let Some(uri) = &settings.model_path {
            let loaded = peek_embedder(store.as_ref(), uri).and_then(|spec| {
                let dir = settings.embedder_path.clone().or_else(|| {
                    ml_env
                        .model_dir
                        .as_ref()
                        .map(|d| format!("{d}/{}", spec.id))
                });
                let e = match dir.as_deref() {
                    // A model directory in object storage: fetched through the store
                    // (cached by ETag, verified against its manifest).
                    Some(d) if is_remote(d) => store_embedder(store.as_ref(), &spec, d)?,
                    _ => embedders(&spec, dir.as_deref())?,
                };
                if e.dim() != spec.dim {
                    return Err(format!(
                        "embedder '{}' has {} dimensions, the router expects {}",
                        spec.id,
                        e.dim(),
                        spec.dim
                    ));
                }
                if !super::artifact::probe_matches(&spec.probe, &embedding_probe(e.as_ref())) {
                    return Err(format!(
                        "embedder '{}' is not the one the router was trained with (its probe \
                         embedding differs; re-distilled?): retrain the router",
                        spec.id
                    ));
                }
                Ok(e)
            });
            let e = match loaded {
                Ok(e) => e,
                Err(m) => {
                    startup_note = Some(m);
                    fallback_embedder()
                }
            };
            let s = Arc::new(RouterSlot::new(
                uri,
                settings.manifest_path.as_deref(),
                store.clone(),
                policy,
                settings.strategy,
                Some((e.id().to_string(), embedding_probe(e.as_ref()))),
                load_custom,
            ));
            if startup_note.is_none() {
                if let Err(err) = s.reload(true) {
                    startup_note = Some(err.to_string());
                }
            }
            embedder = Some(e);
            slot = Some(s);
        } else if !matches!(
            settings.strategy,
            MlStrategyName::Smallest | MlStrategyName::Largest
        ) {
            startup_note = Some("no routing_strategy_args.model_path configured".into());
        }
        if let Some(note) = &startup_note {
            if !ml_env.centroid_routing {
                return Err(fail(format!(
                    "the router cannot be loaded ({note}) and centroid routing is off \
                     (ROUTEIQ_CENTROID_ROUTING=false)"
                )));
            }
            tracing::warn!(
                strategy,
                reason = %note,
                "ML router not loaded: routing by centroid tiers until it loads"
            );
        }
        let embedder = embedder.unwrap_or_else(fallback_embedder);
        let centroid = if ml_env.centroid_routing {
            Some(
                CentroidClassifier::build(embedder.as_ref(), None, ml_env.confidence_threshold)
                    .map_err(|e| fail(format!("centroid routing: {e}")))?,
            )
        } else {
            None
        };
        Ok(MlRouting {
            tier_threshold: ml_env.confidence_threshold,
            default_profile: ml_env.profile.or(settings.profile).unwrap_or_default(),
            settings,
            slot,
            embedder,
            centroid,
            candidates,
            startup_note,
        })
    }

    pub fn settings(&self) -> &MlSettings {
        &self.settings
    }

    pub fn strategy(&self) -> MlStrategyName {
        self.settings.strategy
    }

    /// The router artifact's slot (for reloads), when a model path is configured.
    pub fn slot(&self) -> Option<&Arc<RouterSlot>> {
        self.slot.as_ref()
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The tier confidence threshold it was set up with (`ROUTEIQ_CONFIDENCE_THRESHOLD`).
    pub fn tier_threshold(&self) -> f32 {
        self.tier_threshold
    }

    /// Whether a decision uses the prompt embedding (the router needs it, or centroid
    /// routing may run).
    pub fn needs_embedding(&self) -> bool {
        self.settings.strategy.needs_embedding() || self.centroid.is_some()
    }

    /// What routing knows about a deployment (see the module docs for the lookup order).
    pub fn candidate(&self, d: &Deployment) -> CandidateModel {
        let model = d
            .info
            .base_model
            .clone()
            .unwrap_or_else(|| d.upstream_model.clone());
        let router = self.slot.as_ref().and_then(|s| s.current());
        let spec = router
            .as_ref()
            .and_then(|r| model_index(&r.models, &model).map(|i| r.models[i].clone()));
        let file = self.candidates.get(&model).or_else(|| {
            let tail = model.rsplit('/').next().unwrap_or(&model);
            self.candidates
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&model) || k.eq_ignore_ascii_case(tail))
                .map(|(_, v)| v)
        });
        let extra = info_from_json(&d.info.extra);
        let spec_price = |p: Option<f64>| p.map(|v| v / 1e6);
        CandidateModel {
            deployment: d.id.clone(),
            input_cost_per_token: d
                .input_cost_per_token
                .or(file.and_then(|f| f.input_cost_per_token))
                .or(spec.as_ref().and_then(|s| spec_price(s.input_price))),
            output_cost_per_token: d
                .output_cost_per_token
                .or(file.and_then(|f| f.output_cost_per_token))
                .or(spec.as_ref().and_then(|s| spec_price(s.output_price))),
            quality_score: extra.quality_score.or(file.and_then(|f| f.quality_score)),
            size_b: extra
                .size_b
                .or(file.and_then(|f| f.size_b))
                .or(spec.as_ref().and_then(|s| s.size_b)),
            capabilities: if extra.capabilities.is_empty() {
                file.map(|f| f.capabilities.clone()).unwrap_or_default()
            } else {
                extra.capabilities
            },
            model,
        }
    }

    /// Ranks `cands` for a prompt. Never fails: when the router cannot decide, centroid
    /// tiers (or cost) do, and the decision says why.
    pub fn decide(&self, cands: &[CandidateModel], prompt: &PromptFeatures) -> Decision {
        let profile = prompt.profile.unwrap_or(self.default_profile);
        let out_tokens = self.settings.cost.expected_output_tokens;
        let costs: Vec<Option<f64>> = cands
            .iter()
            .map(|c| c.expected_cost(prompt.estimated_tokens, out_tokens))
            .collect();
        let router = self.slot.as_ref().and_then(|s| s.current());
        let strategy = self.settings.strategy;
        let mut note = self.startup_note.clone().filter(|_| router.is_none());
        if router.is_none() {
            if let Some(err) = self.slot.as_ref().and_then(|s| s.last_error()) {
                note = Some(err);
            }
        }
        if let (Some(tier), false) = (
            prompt.hint_tier,
            matches!(strategy, MlStrategyName::Smallest | MlStrategyName::Largest),
        ) {
            return Decision {
                strategy: strategy.as_str(),
                method: DecisionMethod::Edge,
                router_version: router.as_ref().map(|r| r.version.clone()),
                embedder: None,
                profile,
                tier: Some(TierChoice {
                    tier,
                    confidence: 1.0,
                    matched: tier,
                    similarities: Vec::new(),
                }),
                hybrid: None,
                note: Some("tier from a verified edge hint; prompt not embedded".into()),
                ranking: rank_for_tier(tier, profile, cands, &costs, out_tokens),
                embed_ms: 0.0,
            };
        }
        let embedding = if self.needs_embedding() {
            match &prompt.embedding {
                Some(e) => Some(e.clone()),
                None => match self.embedder.embed(&prompt.text) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        note = Some(format!("embedding failed: {e}"));
                        None
                    }
                },
            }
        } else {
            None
        };
        let tier = match (&self.centroid, &embedding) {
            (Some(c), Some(e)) if e.len() == self.embedder.dim() => Some(c.classify(e)),
            _ => None,
        };
        let base = Decision {
            strategy: strategy.as_str(),
            method: DecisionMethod::Cost,
            router_version: router.as_ref().map(|r| r.version.clone()),
            embedder: embedding.as_ref().map(|_| self.embedder.id().to_string()),
            profile,
            tier: tier.clone(),
            hybrid: None,
            note: None,
            ranking: Vec::new(),
            embed_ms: prompt.embed_ms,
        };

        if matches!(strategy, MlStrategyName::Smallest | MlStrategyName::Largest) {
            return Decision {
                method: DecisionMethod::Size,
                ranking: rank_by_size(cands, &costs, strategy == MlStrategyName::Largest),
                ..base
            };
        }
        if let Some(router) = &router {
            match self.router_ranking(router, cands, &costs, embedding.as_deref(), profile) {
                Ok((ranking, hybrid)) => {
                    return Decision {
                        method: DecisionMethod::Router,
                        ranking,
                        hybrid,
                        ..base
                    };
                }
                Err(e) => note = Some(e),
            }
        }
        match tier {
            Some(t) if self.centroid.is_some() => Decision {
                method: DecisionMethod::Centroid,
                ranking: rank_for_tier(t.tier, profile, cands, &costs, out_tokens),
                note,
                ..base
            },
            _ => {
                let q = vec![None; cands.len()];
                Decision {
                    method: DecisionMethod::Cost,
                    ranking: rank_by_utility(
                        cands,
                        &q,
                        &costs,
                        &vec![0.0; cands.len()],
                        &self.settings.cost,
                    ),
                    note,
                    ..base
                }
            }
        }
    }

    fn router_ranking(
        &self,
        router: &LoadedRouter,
        cands: &[CandidateModel],
        costs: &[Option<f64>],
        embedding: Option<&[f32]>,
        profile: Profile,
    ) -> Result<(Vec<RankedCandidate>, Option<HybridCall>), String> {
        let zeros;
        let emb = match embedding {
            Some(e) => e,
            None if !router.strategy.needs_embedding() => {
                zeros = vec![0f32; router.embedder.dim];
                &zeros
            }
            None => return Err("no prompt embedding".into()),
        };
        let prediction = router.predict(emb, self.settings.threshold)?;
        let idx: Vec<Option<usize>> = cands.iter().map(|c| router.model_index(&c.model)).collect();
        if idx.iter().all(Option::is_none) {
            return Err(format!(
                "none of the group's models ({}) is one the router knows ({})",
                cands
                    .iter()
                    .map(|c| c.model.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                router
                    .models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let quality: Vec<Option<f64>> = idx
            .iter()
            .zip(cands)
            .map(|(i, c)| i.and_then(|i| prediction.quality[i]).or(c.quality_score))
            .collect();
        let (weight, bonus) = profile.adjust(self.settings.cost.cost_weight, cands, costs);
        let policy = CostPolicy {
            cost_weight: weight,
            willingness_to_pay: if profile == Profile::Auto {
                self.settings.cost.willingness_to_pay
            } else {
                None
            },
            ..self.settings.cost
        };
        let mut ranking = rank_by_utility(cands, &quality, costs, &bonus, &policy);
        if let (Some(call), Predictor::Hybrid { small, large, .. }) =
            (prediction.hybrid, router.predictor())
        {
            let (first, second) = if call.small {
                (*small, *large)
            } else {
                (*large, *small)
            };
            let rank_of = |r: &RankedCandidate| match idx[r.index] {
                Some(i) if i == first => 0,
                Some(i) if i == second => 1,
                _ => 2,
            };
            ranking.sort_by_key(rank_of);
            return Ok((ranking, Some(call)));
        }
        Ok((ranking, None))
    }
}

/// Orders candidates by size (ascending, or descending for `largest`); unknown sizes last,
/// cheapest first among equals.
pub fn rank_by_size(
    cands: &[CandidateModel],
    costs: &[Option<f64>],
    largest: bool,
) -> Vec<RankedCandidate> {
    let mut ranking = rank_by_utility(
        cands,
        &vec![None; cands.len()],
        costs,
        &vec![0.0; cands.len()],
        &CostPolicy::default(),
    );
    ranking.sort_by(|a, b| {
        let (sa, sb) = (cands[a.index].size_b, cands[b.index].size_b);
        match (sa, sb) {
            (Some(x), Some(y)) if largest => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    for r in &mut ranking {
        r.predicted_quality = cands[r.index].quality_score;
        r.score = cands[r.index].size_b;
    }
    ranking
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::ml::artifact::{
        FORMAT, FORMAT_VERSION, ModelSpec, RouterArtifact, RouterParams, Tensor, update_manifest,
    };
    use crate::router::{RequestFacts, Router, Selection};
    use crate::state::{InMemoryStateStore, ManualClock};
    use futures::executor::block_on;

    const CODE: [&str; 4] = [
        "Write a Python function that sorts a list",
        "Implement a Rust struct with a method to parse JSON",
        "Fix the bug in this JavaScript loop over an array",
        "Write a SQL query joining orders and customers",
    ];
    const STORY: [&str; 4] = [
        "Tell me a bedtime story about a dragon",
        "Write a poem about the autumn sea",
        "Describe a cozy cabin in the snowy mountains",
        "Tell a funny tale about a talking cat",
    ];

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn temp_dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "routeiq-routing-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn spec(name: &str, size: f64, price: f64, q: f64) -> ModelSpec {
        ModelSpec {
            name: name.into(),
            size_b: Some(size),
            input_price: Some(price),
            output_price: Some(price),
            mean_quality: Some(q),
        }
    }

    /// A kNN router (k = 2) over hashed-ngram embeddings: code prompts → "coder" right,
    /// stories → "talker" right, "big" always 0.7.
    fn write_knn(dir: &std::path::Path) -> String {
        let e = HashedNgramEmbedder::new(64).unwrap();
        let mut emb = Vec::new();
        let mut scores = Vec::new();
        for p in CODE {
            emb.extend(e.embed(p).unwrap());
            scores.extend([1.0, 0.0, 0.7]);
        }
        for p in STORY {
            emb.extend(e.embed(p).unwrap());
            scores.extend([0.0, 1.0, 0.7]);
        }
        let art = RouterArtifact {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            strategy: "llmrouter-knn".into(),
            version: "test-1".into(),
            embedder: EmbedderSpec {
                id: e.id().into(),
                dim: 64,
                probe: embedding_probe(&e),
            },
            models: vec![
                spec("coder", 7.0, 0.2, 0.5),
                spec("talker", 8.0, 0.2, 0.5),
                spec("big", 70.0, 9.0, 0.7),
            ],
            params: RouterParams::Knn {
                k: 2,
                weighted: false,
                embeddings: Tensor::f32(vec![8, 64], &emb),
                scores: Tensor::f32(vec![8, 3], &scores),
            },
            training: serde_json::Value::Null,
        }
        .to_bytes();
        std::fs::write(dir.join("knn.json"), &art).unwrap();
        let m = update_manifest(None, "knn.json", &art, serde_json::json!({}), None).unwrap();
        std::fs::write(dir.join("manifest.json"), m).unwrap();
        dir.join("knn.json").display().to_string()
    }

    fn config(strategy: &str, args: &str) -> crate::config::Config {
        let yaml = format!(
            "model_list:\n\
             - {{model_name: auto, litellm_params: {{model: openai/coder, mock_response: c}}, model_info: {{id: d-coder, size: 7B}}}}\n\
             - {{model_name: auto, litellm_params: {{model: openai/talker, mock_response: t}}, model_info: {{id: d-talker, size: 8B}}}}\n\
             - {{model_name: auto, litellm_params: {{model: together_ai/big, mock_response: b}}, model_info: {{id: d-big, size: 70B}}}}\n\
             router_settings:\n  routing_strategy: {strategy}\n  routing_strategy_args: {{{args}}}\n"
        );
        load_str(&yaml).unwrap().config
    }

    fn router(cfg: &crate::config::Config, ctx: &MlContext) -> Result<Router, MlSetupError> {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let state = Arc::new(InMemoryStateStore::new(clock.clone()));
        Router::with_ml_context(cfg, state, clock, ctx)
    }

    fn select(r: &Router, prompt: &str) -> Selection {
        let facts = RequestFacts {
            estimated_tokens: 20,
            prompt: Some(Arc::new(PromptFeatures {
                text: prompt.into(),
                estimated_tokens: 20,
                ..PromptFeatures::default()
            })),
            ..RequestFacts::default()
        };
        block_on(r.select("auto", facts, &mut fastrand::Rng::with_seed(1))).unwrap()
    }

    fn ids(s: &Selection) -> Vec<&str> {
        s.candidates.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn knn_router_orders_the_group_and_explains() {
        let dir = temp_dir("knn");
        let path = write_knn(&dir.0);
        let r = router(
            &config("llmrouter-knn", &format!("model_path: {path}")),
            &MlContext::default(),
        )
        .unwrap();
        assert_eq!(r.strategy().name(), "llmrouter-knn");
        let s = select(&r, "Write a Python function that reverses a string");
        assert_eq!(ids(&s), ["d-coder", "d-big", "d-talker"]);
        let d = s.decision.as_ref().unwrap();
        assert_eq!(d.method, DecisionMethod::Router);
        assert_eq!(d.router_version.as_deref(), Some("test-1"));
        assert_eq!(d.ranking[0].predicted_quality, Some(1.0));
        assert!(d.ranking[0].predicted_cost.unwrap() > 0.0);
        let s = select(&r, "Tell me a story about a brave knight and a dragon");
        assert_eq!(ids(&s)[0], "d-talker");
        // Serialises for /router/explain.
        let json = serde_json::to_value(&**d).unwrap();
        assert_eq!(json["ranking"][0]["deployment"], "d-coder");
        assert_eq!(json["method"], "router");
    }

    #[test]
    fn cost_weight_prefers_cheaper_models() {
        let dir = temp_dir("cost");
        let path = write_knn(&dir.0);
        // "big" costs 45× more: with λ = 1 the 0.7-quality big model loses to a 0.0 one.
        let r = router(
            &config(
                "llmrouter-knn",
                &format!("model_path: {path}, cost_weight: 1.0"),
            ),
            &MlContext::default(),
        )
        .unwrap();
        let s = select(&r, "Write a Python function that reverses a string");
        assert_eq!(ids(&s), ["d-coder", "d-talker", "d-big"]);
    }

    #[test]
    fn missing_router_falls_back_to_centroids_or_fails_without_them() {
        let r = router(
            &config("llmrouter-mlp", "model_path: /nonexistent/routeiq/mlp.json"),
            &MlContext::default(),
        )
        .unwrap();
        let s = select(&r, "hello there");
        let d = s.decision.as_ref().unwrap();
        assert_eq!(d.method, DecisionMethod::Centroid);
        assert!(d.tier.is_some());
        assert!(
            d.note.as_deref().unwrap_or("").contains("nonexistent"),
            "{:?}",
            d.note
        );
        assert_eq!(s.candidates.len(), 3);

        let ctx = MlContext {
            env: MlEnv {
                centroid_routing: false,
                ..MlEnv::default()
            },
            ..MlContext::default()
        };
        let e = router(
            &config("llmrouter-mlp", "model_path: /nonexistent/routeiq/mlp.json"),
            &ctx,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("ROUTEIQ_CENTROID_ROUTING=false"),
            "{e}"
        );
    }

    #[test]
    fn enforced_signatures_refuse_an_unsigned_router() {
        let dir = temp_dir("signed");
        let path = write_knn(&dir.0);
        let ctx = MlContext {
            env: MlEnv {
                enforce_signed: true,
                centroid_routing: false,
                ..MlEnv::default()
            },
            ..MlContext::default()
        };
        let e = router(
            &config("llmrouter-knn", &format!("model_path: {path}")),
            &ctx,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("LLMROUTER_ENFORCE_SIGNED_MODELS"),
            "{e}"
        );
    }

    #[test]
    fn adaptive_auto_router_takes_the_trained_routers_quality() {
        use crate::router::auto::{AutoInput, QualitySource};
        let dir = temp_dir("adaptive");
        let path = write_knn(&dir.0);
        let yaml = format!(
            "model_list:\n\
             - {{model_name: coder, litellm_params: {{model: openai/coder, mock_response: c}}}}\n\
             - {{model_name: talker, litellm_params: {{model: openai/talker, mock_response: t}}, model_info: {{adaptive_router_preferences: {{quality_tier: 3}}}}}}\n\
             - {{model_name: pick, litellm_params: {{model: auto_router/adaptive_router, adaptive_router_config: {{available_models: [talker, coder]}}}}}}\n\
             router_settings:\n  routing_strategy: llmrouter-knn\n  routing_strategy_args: {{model_path: {path}}}\n"
        );
        let cfg = load_str(&yaml).unwrap().config;
        let r = router(&cfg, &MlContext::default()).unwrap();
        let decide = |text: &str, with_prompt: bool| {
            let prompt = PromptFeatures {
                text: text.into(),
                estimated_tokens: 20,
                ..PromptFeatures::default()
            };
            let input = AutoInput {
                text,
                prompt: with_prompt.then_some(&prompt),
                ..AutoInput::default()
            };
            r.auto_route("pick", input).unwrap().unwrap()
        };
        // The kNN router says coder answers code right and talker does not: coder first,
        // though talker's tier (3) is higher.
        let d = decide("Write a Python function that reverses a string", true);
        assert_eq!(d.targets, ["coder", "talker"]);
        assert!(
            d.scores
                .iter()
                .all(|s| s.quality_from == QualitySource::TrainedRouter),
            "{:?}",
            d.scores
        );
        let d = decide("Tell me a story about a brave knight and a dragon", true);
        assert_eq!(d.targets, ["talker", "coder"]);
        // Without the ML prompt the tier priors decide: talker (tier 3) over coder (tier 2).
        let d = decide("Write a Python function that reverses a string", false);
        assert_eq!(d.targets, ["talker", "coder"]);
        assert_eq!(d.scores[0].quality_from, QualitySource::Preferences);
    }

    #[test]
    fn size_strategies_need_no_artifact() {
        let r = router(&config("llmrouter-smallest", ""), &MlContext::default()).unwrap();
        assert_eq!(
            ids(&select(&r, "anything")),
            ["d-coder", "d-talker", "d-big"]
        );
        let r = router(&config("llmrouter-largest", ""), &MlContext::default()).unwrap();
        let s = select(&r, "anything");
        assert_eq!(ids(&s), ["d-big", "d-talker", "d-coder"]);
        assert_eq!(s.decision.as_ref().unwrap().method, DecisionMethod::Size);
    }

    #[test]
    fn profile_header_overrides_the_router() {
        let dir = temp_dir("profile");
        let path = write_knn(&dir.0);
        let r = router(
            &config("llmrouter-knn", &format!("model_path: {path}")),
            &MlContext::default(),
        )
        .unwrap();
        let facts = RequestFacts {
            prompt: Some(Arc::new(PromptFeatures {
                text: "Tell me a story about a dragon".into(),
                estimated_tokens: 10,
                embedding: None,
                profile: Some(Profile::Eco),
                embed_ms: 0.0,
                hint_tier: None,
            })),
            ..RequestFacts::default()
        };
        let s = block_on(r.select("auto", facts, &mut fastrand::Rng::with_seed(1))).unwrap();
        // eco adds 1.0 to λ: the dear "big" model drops to last even where it would be second.
        assert_eq!(ids(&s), ["d-talker", "d-coder", "d-big"]);
        assert_eq!(s.decision.as_ref().unwrap().profile, Profile::Eco);
    }

    #[test]
    fn candidates_file_and_settings() {
        let c = parse_candidates(
            br#"{"gpt-x": {"provider": "openai", "capabilities": ["reasoning", "Code"],
                 "cost_per_1k_tokens": 0.002, "quality_score": 0.9},
                 "small": {"size": "7B", "input_price": 0.2, "output_price": 0.4}}"#,
        )
        .unwrap();
        assert_eq!(c["gpt-x"].input_cost_per_token, Some(0.002 / 1000.0));
        assert_eq!(c["gpt-x"].capabilities, ["reasoning", "code"]);
        assert_eq!(c["small"].output_cost_per_token, Some(0.4 / 1e6));
        assert_eq!(c["small"].size_b, Some(7.0));
        let list = parse_candidates(br#"[{"name": "m", "quality_score": 0.5}]"#).unwrap();
        assert_eq!(list["m"].quality_score, Some(0.5));
        // The seed's form: `cost: {input, output}` per million tokens.
        let seed = parse_candidates(br#"{"s": {"cost": {"input": 3.0, "output": "15"}}}"#).unwrap();
        assert_eq!(seed["s"].input_cost_per_token, Some(3.0 / 1e6));
        assert_eq!(seed["s"].output_cost_per_token, Some(15.0 / 1e6));
        assert!(parse_candidates(b"[1]").is_err());

        let env = |k: &str| match k {
            "ROUTEIQ_CENTROID_ROUTING" => Some("false".to_string()),
            "ROUTEIQ_CONFIDENCE_THRESHOLD" => Some("0.1".to_string()),
            "ROUTEIQ_ROUTING_PROFILE" => Some("premium".to_string()),
            _ => None,
        };
        let e = MlEnv::from_env(&env).unwrap();
        assert!(!e.centroid_routing && e.confidence_threshold == 0.1);
        assert_eq!(e.profile, Some(Profile::Premium));
        let bad = |k: &str| match k {
            "ROUTEIQ_ROUTING_PROFILE" => Some("turbo".to_string()),
            "ROUTEIQ_CENTROID_ROUTING" => Some("maybe".to_string()),
            _ => None,
        };
        let problems = MlEnv::from_env(&bad).unwrap_err();
        let vars: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            vars,
            ["ROUTEIQ_CENTROID_ROUTING", "ROUTEIQ_ROUTING_PROFILE"]
        );
    }
}
