//! Loading a LiteLLM `config.yaml` into the runtime [`Config`].
//!
//! Stages:
//! 1. parse the YAML into a `serde_yaml_ng::Value` and apply merge keys (`<<: *anchor`);
//! 2. check every key against the [schema](super::schema): documented-but-unimplemented LiteLLM
//!    keys are removed with one warning each, unknown keys are problems (with a "did you
//!    mean"), pass-through keys (`litellm_params`, `model_info`, `routing_strategy_args`) are
//!    set aside;
//! 3. resolve `os.environ/NAME` strings, first from the config's own `environment_variables`,
//!    then from the environment. This runs after the key check, so a variable referenced only
//!    by an ignored LiteLLM setting (e.g. `general_settings.database_url`) need not be set;
//! 4. deserialize each section (each deployment separately) into the [raw](super::raw) types
//!    through `serde_path_to_error`, so type errors name their path;
//! 5. validate into the runtime types, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as JsonValue};
use serde_path_to_error::Segment;
use serde_yaml_ng::{Mapping, Value};

use super::raw::{
    RawDeployment, RawFallback, RawGeneralSettings, RawLitellmParams, RawLitellmSettings,
    RawModelInfo, RawRouterSettings,
};
use super::schema::{self, join, key_name};
use super::{
    AwsParams, Config, ConfigError, ConfigProblem, ConfigWarning, DeploymentConfig, FallbackRule,
    GeneralSettings, LitellmParams, LitellmSettings, LoadedConfig, MAX_DURATION, MAX_SIZE_MB,
    ModelInfo, RetryPolicy, RouterSettings, RoutingStrategyArgs, RoutingStrategyName, SecretString,
};
use crate::ml::MlStrategyName;
use crate::ml::routing::MlSettings;
use crate::provider::ProviderKind;
use crate::router::experiment::ExperimentSettings;

/// The prefix of a string LiteLLM replaces with an environment variable's value.
const ENV_PREFIX: &str = "os.environ/";

/// Values of `model_info.mode` RouteIQ knows.
const MODES: &[&str] = &[
    "chat",
    "completion",
    "embedding",
    "image_generation",
    "audio_transcription",
    "audio_speech",
    "moderation",
    "rerank",
];

/// Bound on the type errors reported per section (each retry removes one key).
const MAX_ERRORS_PER_SECTION: usize = 64;

/// The lower bound of a duration key.
#[derive(Clone, Copy)]
enum Above {
    /// Strictly above zero (timeouts, TTLs).
    Zero,
    /// Zero allowed (waits, cooldowns).
    OrAtZero,
}

/// Keys whose values are secrets: their errors never show the value.
const SECRET_KEYS: &[&str] = &["api_key", "master_key"];

/// Loads a config from YAML text, resolving `os.environ/NAME` from the process environment
/// (after the config's own `environment_variables`).
pub fn load_str(yaml: &str) -> Result<LoadedConfig, ConfigError> {
    load_str_with_env(yaml, &|name| std::env::var(name).ok())
}

/// Loads a config from YAML text, resolving `os.environ/NAME` from the config's own
/// `environment_variables` first, then from `env`.
///
/// Returns every problem found ([`ConfigError::Invalid`]) rather than stopping at the first;
/// on success, the warnings list each LiteLLM setting RouteIQ ignores.
pub fn load_str_with_env(
    yaml: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let mut root: Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    root.apply_merge()
        .map_err(|e| ConfigError::Yaml(format!("invalid merge key (<<): {e}")))?;
    let mut top = match root {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        other => {
            return Err(ConfigError::Invalid(vec![ConfigProblem {
                path: "<root>".to_string(),
                message: format!(
                    "the config must be a mapping of sections (model_list, router_settings, ...), found {}",
                    kind(&other)
                ),
            }]));
        }
    };

    let checked = schema::check(&mut top);
    let mut l = Loader {
        problems: checked.problems,
        warnings: checked.warnings,
        extras: checked.extras,
        failed: BTreeSet::new(),
    };

    // Environment: the config's own section first, then `env`.
    let config_env = l.environment_variables(top.shift_remove("environment_variables"), env);
    let lookup = |name: &str| config_env.get(name).cloned().or_else(|| env(name));
    for (k, v) in top.iter_mut() {
        if let Some(name) = key_name(k) {
            l.resolve_env(v, &name, &lookup);
        }
    }
    let mut extras = std::mem::take(&mut l.extras);
    for (path, map) in extras.iter_mut() {
        for (k, v) in map.iter_mut() {
            if let Some(name) = key_name(k) {
                l.resolve_env(v, &join(path, &name), &lookup);
            }
        }
    }
    l.extras = extras;

    let groups = Groups::from_tree(top.get("model_list"));
    let model_list = l.model_list(top.shift_remove("model_list"));
    let router: RawRouterSettings = l.section(&mut top, "router_settings");
    let litellm: RawLitellmSettings = l.section(&mut top, "litellm_settings");
    let general: RawGeneralSettings = l.section(&mut top, "general_settings");

    let router_settings = l.router_settings(router, &litellm, &groups);
    let litellm_settings = l.litellm_settings(&litellm);
    let general_settings = l.general_settings(general);

    if !l.problems.is_empty() {
        return Err(ConfigError::Invalid(l.problems));
    }
    Ok(LoadedConfig {
        config: Config {
            model_list,
            router_settings,
            general_settings,
            litellm_settings,
            environment_variables: config_env
                .into_iter()
                .map(|(k, v)| (k, SecretString::new(v)))
                .collect(),
        },
        warnings: l.warnings,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Is `path`'s value a secret (its errors must not show it)?
fn is_secret_path(path: &str) -> bool {
    path.starts_with("environment_variables")
        || SECRET_KEYS
            .iter()
            .any(|k| path == *k || path.ends_with(&format!(".{k}")))
}

/// The model groups of `model_list`, read from the tree before deserialization (so a
/// deployment with a type error elsewhere still counts as a group for references).
struct Groups {
    names: BTreeSet<String>,
    /// `model_name`s with `*` (LiteLLM wildcard routing, e.g. `openai/*`).
    wildcards: Vec<String>,
    aliases: BTreeSet<String>,
}

impl Groups {
    fn from_tree(model_list: Option<&Value>) -> Groups {
        let mut names = BTreeSet::new();
        if let Some(Value::Sequence(items)) = model_list {
            for item in items {
                if let Some(Value::String(n)) = item.get("model_name") {
                    names.insert(n.clone());
                }
            }
        }
        let wildcards = names.iter().filter(|n| n.contains('*')).cloned().collect();
        Groups {
            names,
            wildcards,
            aliases: BTreeSet::new(),
        }
    }

    /// A model group (or a name a wildcard group serves).
    fn is_group(&self, name: &str) -> bool {
        self.names.contains(name) || self.wildcards.iter().any(|w| glob_match(w, name))
    }

    fn is_group_or_alias(&self, name: &str) -> bool {
        self.is_group(name) || self.aliases.contains(name)
    }

    fn unknown_message(&self, name: &str, with_aliases: bool) -> String {
        let mut candidates: Vec<&str> = self.names.iter().map(String::as_str).collect();
        if with_aliases {
            candidates.extend(self.aliases.iter().map(String::as_str));
        }
        let base = format!("unknown model group '{name}'");
        match schema::suggest(name, &candidates) {
            Some(s) => format!("{base}; did you mean '{s}'?"),
            None if self.names.is_empty() => format!("{base} (model_list is empty)"),
            None => format!("{base} (not a model_name in model_list)"),
        }
    }
}

/// `*` matches any run of characters.
fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == s;
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A `http://` or `https://` URL with a host.
fn check_url(s: &str) -> Result<(), &'static str> {
    let lower = s.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    if s.chars().any(char::is_whitespace) {
        return Err("must be an http:// or https:// URL without spaces");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("must be an http:// or https:// URL with a host");
    }
    Ok(())
}

/// Removes the key of the innermost mapping on `segments` (the field a type error is in),
/// so that deserialization can be retried without it. `false` if there is none.
fn remove_at(v: &mut Value, segments: &[Segment]) -> bool {
    let Some(last) = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))
    else {
        return false;
    };
    let mut cur = v;
    for s in &segments[..last] {
        let next = match (s, cur) {
            (Segment::Map { key }, Value::Mapping(m)) => m.get_mut(key.as_str()),
            (Segment::Seq { index }, Value::Sequence(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (&segments[last], cur) {
        (Segment::Map { key }, Value::Mapping(m)) => m.shift_remove(key.as_str()).is_some(),
        _ => false,
    }
}

struct Loader {
    problems: Vec<ConfigProblem>,
    warnings: Vec<ConfigWarning>,
    extras: BTreeMap<String, Mapping>,
    /// Paths already reported (type errors, unset variables): not reported again as missing.
    failed: BTreeSet<String>,
}

impl Loader {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            path: path.into(),
            message: message.into(),
        });
    }

    /// `environment_variables`: NAME -> scalar, in file order; values may be `os.environ/X`
    /// (resolved from the entries before them, then from `env`).
    fn environment_variables(
        &mut self,
        section: Option<Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let map = match section {
            None | Some(Value::Null) => return out,
            Some(Value::Mapping(m)) => m,
            Some(other) => {
                self.problem(
                    "environment_variables",
                    format!(
                        "expected a mapping of variable names to values, found {}",
                        kind(&other)
                    ),
                );
                return out;
            }
        };
        for (k, v) in map {
            let Value::String(name) = k else {
                self.problem(
                    "environment_variables",
                    "environment variable names must be strings",
                );
                continue;
            };
            let path = join("environment_variables", &name);
            let value = match v {
                Value::String(s) => match s.strip_prefix(ENV_PREFIX) {
                    Some(var) => {
                        let var = var.trim();
                        match out.get(var).cloned().or_else(|| env(var)) {
                            Some(val) => val,
                            None => {
                                self.problem(
                                    path,
                                    format!("environment variable {var} is not set"),
                                );
                                continue;
                            }
                        }
                    }
                    None => s,
                },
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    // The value is a secret: describe its kind only.
                    self.problem(
                        path,
                        format!(
                            "expected a string, number or boolean, found {}",
                            kind(&other)
                        ),
                    );
                    continue;
                }
            };
            out.insert(name, value);
        }
        out
    }

    /// Replaces every `os.environ/NAME` string under `v`.
    fn resolve_env(&mut self, v: &mut Value, path: &str, lookup: &dyn Fn(&str) -> Option<String>) {
        match v {
            Value::String(s) => {
                let Some(var) = s.strip_prefix(ENV_PREFIX) else {
                    return;
                };
                let var = var.trim().to_string();
                let resolved = if var.is_empty() {
                    self.problem(path, "'os.environ/' must be followed by a variable name");
                    None
                } else {
                    let found = lookup(&var);
                    if found.is_none() {
                        self.problem(path, format!("environment variable {var} is not set"));
                    }
                    found
                };
                match resolved {
                    Some(val) => *s = val,
                    None => {
                        // Unset: reported once here, then treated as absent.
                        self.failed.insert(path.to_string());
                        *v = Value::Null;
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.resolve_env(item, &format!("{path}[{i}]"), lookup);
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m.iter_mut() {
                    if let Some(name) = key_name(k) {
                        self.resolve_env(item, &join(path, &name), lookup);
                    }
                }
            }
            Value::Tagged(t) => self.resolve_env(&mut t.value, path, lookup),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Deserializes `v` as `T`, recording a problem (with the full path) per error: after an
    /// error, the offending key is removed and deserialization retried, so every bad field of
    /// a section is reported, not only the first.
    fn de<T: DeserializeOwned>(&mut self, mut v: Value, prefix: &str) -> Option<T> {
        for _ in 0..MAX_ERRORS_PER_SECTION {
            let e = match serde_path_to_error::deserialize::<_, T>(v.clone()) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let sub = e.path().to_string();
            let path = if sub == "." {
                prefix.to_string()
            } else if sub.starts_with('[') || prefix.is_empty() {
                format!("{prefix}{sub}")
            } else {
                format!("{prefix}.{sub}")
            };
            let message = if is_secret_path(&path) {
                "invalid secret value (not shown); expected a string".to_string()
            } else {
                e.inner().to_string()
            };
            let segments: Vec<Segment> = e.path().iter().cloned().collect();
            self.failed.insert(path.clone());
            self.problem(path, message);
            if !remove_at(&mut v, &segments) {
                return None;
            }
        }
        None
    }

    /// A top-level section; missing or null -> defaults.
    fn section<T: DeserializeOwned + Default>(&mut self, top: &mut Mapping, key: &str) -> T {
        match top.shift_remove(key) {
            None | Some(Value::Null) => T::default(),
            Some(v) => self.de(v, key).unwrap_or_default(),
        }
    }

    /// Moves the extras set aside at `path` into a JSON map.
    fn take_extras(&mut self, path: &str) -> Map<String, JsonValue> {
        let mut out = Map::new();
        let Some(map) = self.extras.remove(path) else {
            return out;
        };
        for (k, v) in map {
            let Some(name) = key_name(&k) else { continue };
            match serde_json::to_value(&v) {
                Ok(j) => {
                    out.insert(name, j);
                }
                Err(e) => {
                    let p = join(path, &name);
                    self.problem(p, format!("cannot be represented as JSON: {e}"));
                }
            }
        }
        out
    }

    fn model_list(&mut self, section: Option<Value>) -> Vec<DeploymentConfig> {
        let items = match section {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                self.problem(
                    "model_list",
                    format!("expected a list of deployments, found {}", kind(&other)),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("model_list[{i}]");
            let Some(raw) = self.de::<RawDeployment>(item, &path) else {
                continue;
            };
            if let Some(d) = self.deployment(raw, &path, &mut ids) {
                out.push(d);
            }
        }
        out
    }

    fn deployment(
        &mut self,
        raw: RawDeployment,
        path: &str,
        ids: &mut BTreeMap<String, String>,
    ) -> Option<DeploymentConfig> {
        let model_name = match raw.model_name {
            None if self.failed.contains(&join(path, "model_name")) => None,
            None => {
                self.problem(
                    join(path, "model_name"),
                    "missing required key 'model_name'",
                );
                None
            }
            Some(n) if n.trim().is_empty() => {
                self.problem(join(path, "model_name"), "must not be empty");
                None
            }
            Some(n) => Some(n),
        };
        let lp_path = join(path, "litellm_params");
        let litellm_params = match raw.litellm_params {
            None if self.failed.contains(&lp_path) => None,
            None => {
                self.problem(&lp_path, "missing required key 'litellm_params'");
                None
            }
            Some(lp) => self.litellm_params(lp, &lp_path),
        };
        let (mut model_info, id) = self.model_info(raw.model_info, &join(path, "model_info"));
        if let Some(id) = id {
            let id_path = join(path, "model_info.id");
            if let Some(first) = ids.get(&id) {
                let first = first.clone();
                self.problem(
                    id_path,
                    format!("duplicate model_info.id '{id}' (also used by {first})"),
                );
            } else {
                ids.insert(id, path.to_string());
            }
        }
        let (litellm_params, costs) = litellm_params?;
        // LiteLLM accepts custom pricing in litellm_params too.
        if model_info.input_cost_per_token.is_none() {
            model_info.input_cost_per_token = costs.0;
        }
        if model_info.output_cost_per_token.is_none() {
            model_info.output_cost_per_token = costs.1;
        }
        Some(DeploymentConfig {
            model_name: model_name?,
            litellm_params,
            model_info,
        })
    }

    #[allow(clippy::type_complexity)]
    fn litellm_params(
        &mut self,
        raw: RawLitellmParams,
        path: &str,
    ) -> Option<(LitellmParams, (Option<f64>, Option<f64>))> {
        let mut ok = true;
        let model_path = join(path, "model");
        let mut kind = None;
        match raw.model.as_deref().map(str::trim) {
            None if self.failed.contains(&model_path) => ok = false,
            None => {
                self.problem(&model_path, "missing required key 'model'");
                ok = false;
            }
            Some("") => {
                self.problem(&model_path, "must not be empty");
                ok = false;
            }
            Some(model) => match ProviderKind::parse(model) {
                Err(prefix) => {
                    let known = ProviderKind::known_prefixes();
                    let mut msg = format!("unknown provider '{prefix}' in model '{model}'");
                    if let Some(s) = schema::suggest(&prefix, &known) {
                        msg.push_str(&format!("; did you mean '{s}'?"));
                    } else {
                        msg.push_str(
                            " (use a LiteLLM provider prefix such as 'openai/', 'azure/', \
                             'anthropic/')",
                        );
                    }
                    self.problem(&model_path, msg);
                    ok = false;
                }
                Ok((k, name)) => {
                    if name.trim().is_empty() {
                        self.problem(
                            &model_path,
                            format!("model name missing after '{}/'", k.name()),
                        );
                        ok = false;
                    }
                    if let ProviderKind::Unsupported(p) = &k {
                        self.warn(
                            &model_path,
                            format!(
                                "provider '{p}' is not supported by RouteIQ yet; requests routed \
                                 only to this deployment will fail"
                            ),
                        );
                    }
                    kind = Some(k);
                }
            },
        }
        let no_default_base = match &kind {
            Some(ProviderKind::Compatible(c)) if c.default_api_base().is_none() => Some(c.prefix()),
            _ => None,
        };
        if let Some(base) = &raw.api_base {
            if let Err(msg) = check_url(base) {
                self.problem(join(path, "api_base"), msg);
                ok = false;
            }
        } else if let Some(prefix) = no_default_base {
            self.problem(
                join(path, "api_base"),
                format!("missing required key 'api_base' ({prefix} has no default endpoint)"),
            );
            ok = false;
        }
        if let Some(w) = raw.weight.filter(|w| !(w.is_finite() && *w > 0.0)) {
            self.problem(join(path, "weight"), format!("must be > 0, got {w}"));
            ok = false;
        }
        let timeout = self.seconds(&join(path, "timeout"), raw.timeout, Above::Zero);
        let stream_timeout = self.seconds(
            &join(path, "stream_timeout"),
            raw.stream_timeout,
            Above::Zero,
        );
        ok &= timeout.is_ok() && stream_timeout.is_ok();
        for (key, v) in [
            ("input_cost_per_token", raw.input_cost_per_token),
            ("output_cost_per_token", raw.output_cost_per_token),
        ] {
            if let Some(c) = v.filter(|c| !(c.is_finite() && *c >= 0.0)) {
                self.problem(join(path, key), format!("must be >= 0, got {c}"));
                ok = false;
            }
        }
        if raw.aws_access_key_id.is_some() != raw.aws_secret_access_key.is_some() {
            let missing = if raw.aws_access_key_id.is_some() {
                "aws_secret_access_key"
            } else {
                "aws_access_key_id"
            };
            self.problem(
                join(path, missing),
                "aws_access_key_id and aws_secret_access_key must be set together",
            );
            ok = false;
        }
        if let Some(endpoint) = &raw.aws_bedrock_runtime_endpoint
            && let Err(msg) = check_url(endpoint)
        {
            self.problem(join(path, "aws_bedrock_runtime_endpoint"), msg);
            ok = false;
        }
        let extra = self.take_extras(path);
        if !ok {
            return None;
        }
        Some((
            LitellmParams {
                model: raw.model.map(|m| m.trim().to_string()).unwrap_or_default(),
                api_key: raw.api_key,
                api_base: raw.api_base.map(|b| b.trim().to_string()),
                api_version: raw.api_version,
                organization: raw.organization,
                rpm: raw.rpm,
                tpm: raw.tpm,
                weight: raw.weight,
                timeout: timeout.ok().flatten(),
                stream_timeout: stream_timeout.ok().flatten(),
                max_retries: raw.max_retries,
                mock_response: raw.mock_response,
                region_name: raw.region_name,
                aws: AwsParams {
                    region_name: raw.aws_region_name,
                    access_key_id: raw.aws_access_key_id,
                    secret_access_key: raw.aws_secret_access_key,
                    session_token: raw.aws_session_token,
                    profile_name: raw.aws_profile_name,
                    bedrock_runtime_endpoint: raw.aws_bedrock_runtime_endpoint,
                },
                extra,
            },
            (raw.input_cost_per_token, raw.output_cost_per_token),
        ))
    }

    /// Returns the model info and its id (for the duplicate check).
    fn model_info(&mut self, raw: Option<RawModelInfo>, path: &str) -> (ModelInfo, Option<String>) {
        let extra = self.take_extras(path);
        let Some(raw) = raw else {
            return (
                ModelInfo {
                    extra,
                    ..ModelInfo::default()
                },
                None,
            );
        };
        if let Some(mode) = raw.mode.as_ref().filter(|m| !MODES.contains(&m.as_str())) {
            let mut msg = format!("unknown mode '{mode}'");
            if let Some(s) = schema::suggest(mode, MODES) {
                msg.push_str(&format!("; did you mean '{s}'?"));
            }
            msg.push_str(&format!(" (valid: {})", MODES.join(", ")));
            self.problem(join(path, "mode"), msg);
        }
        for (key, v) in [
            ("input_cost_per_token", raw.input_cost_per_token),
            ("output_cost_per_token", raw.output_cost_per_token),
        ] {
            if let Some(c) = v.filter(|c| !(c.is_finite() && *c >= 0.0)) {
                self.problem(join(path, key), format!("must be >= 0, got {c}"));
            }
        }
        if raw.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            self.problem(join(path, "id"), "must not be empty");
        }
        let id = raw.id.clone();
        (
            ModelInfo {
                id: raw.id,
                mode: raw.mode,
                input_cost_per_token: raw.input_cost_per_token,
                output_cost_per_token: raw.output_cost_per_token,
                max_tokens: raw.max_tokens,
                max_input_tokens: raw.max_input_tokens,
                max_output_tokens: raw.max_output_tokens,
                base_model: raw.base_model,
                metadata: raw.metadata.unwrap_or_default(),
                extra,
            },
            id,
        )
    }

    fn fallbacks(
        &mut self,
        raw: Option<Vec<RawFallback>>,
        path: &str,
        groups: &Groups,
    ) -> Option<Vec<FallbackRule>> {
        let raw = raw?;
        let mut rules = Vec::new();
        for (i, entry) in raw.into_iter().enumerate() {
            let entry_path = format!("{path}[{i}]");
            if entry.0.len() != 1 {
                self.problem(
                    &entry_path,
                    format!(
                        "each fallback entry must map exactly one model group to its fallbacks \
                         (e.g. {{\"gpt-4o\": [\"gpt-4o-mini\"]}}), found {} keys",
                        entry.0.len()
                    ),
                );
                continue;
            }
            for (from, to) in entry.0 {
                let from_path = join(&entry_path, &from);
                // `*`: LiteLLM's generic fallback for every group.
                if from != "*" && !groups.is_group_or_alias(&from) {
                    self.problem(&from_path, groups.unknown_message(&from, true));
                }
                for (j, target) in to.iter().enumerate() {
                    if !groups.is_group_or_alias(target) {
                        self.problem(
                            format!("{from_path}[{j}]"),
                            groups.unknown_message(target, true),
                        );
                    }
                }
                rules.push(FallbackRule { from, to });
            }
        }
        Some(rules)
    }

    fn default_fallbacks(
        &mut self,
        raw: Option<&Vec<String>>,
        path: &str,
        groups: &Groups,
    ) -> Option<Vec<String>> {
        let raw = raw?;
        for (i, target) in raw.iter().enumerate() {
            if !groups.is_group_or_alias(target) {
                self.problem(format!("{path}[{i}]"), groups.unknown_message(target, true));
            }
        }
        Some(raw.clone())
    }

    /// A duration in seconds: finite, above zero (or at least zero) and at most
    /// [`MAX_DURATION`]. `Err(())` after recording the problem.
    fn seconds(&mut self, path: &str, v: Option<f64>, min: Above) -> Result<Option<Duration>, ()> {
        let Some(v) = v else { return Ok(None) };
        let max = MAX_DURATION.as_secs_f64();
        let low_ok = match min {
            Above::Zero => v > 0.0,
            Above::OrAtZero => v >= 0.0,
        };
        if v.is_finite() && low_ok && v <= max {
            // In range, so the conversion cannot fail.
            return Ok(Duration::try_from_secs_f64(v).ok());
        }
        let low = match min {
            Above::Zero => "> 0",
            Above::OrAtZero => ">= 0",
        };
        self.problem(
            path,
            format!("must be a number of seconds {low} and at most {max} (one year), got {v}"),
        );
        Err(())
    }

    /// A size in MB: finite, above zero and at most [`MAX_SIZE_MB`].
    fn megabytes(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let v = v?;
        if v.is_finite() && v > 0.0 && v <= MAX_SIZE_MB {
            return Some(v);
        }
        self.problem(
            path,
            format!("must be a size in MB > 0 and at most {MAX_SIZE_MB}, got {v}"),
        );
        None
    }

    fn non_negative(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let v = v?;
        if !(v.is_finite() && v >= 0.0) {
            self.problem(path, format!("must be >= 0, got {v}"));
        }
        Some(v)
    }

    fn routing_strategy(&mut self, raw: Option<String>) -> RoutingStrategyName {
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
        self.problem("router_settings.routing_strategy", msg);
        RoutingStrategyName::default()
    }

    fn router_settings(
        &mut self,
        raw: RawRouterSettings,
        ls: &RawLitellmSettings,
        groups: &Groups,
    ) -> RouterSettings {
        const RS: &str = "router_settings";
        const LS: &str = "litellm_settings";
        let d = RouterSettings::default();
        let mut groups_with_aliases = Groups {
            names: groups.names.clone(),
            wildcards: groups.wildcards.clone(),
            aliases: BTreeSet::new(),
        };

        let routing_strategy = self.routing_strategy(raw.routing_strategy);

        let args_path = join(RS, "routing_strategy_args");
        let mut routing_strategy_args = RoutingStrategyArgs {
            extra: self.take_extras(&args_path),
            ..RoutingStrategyArgs::default()
        };
        if let Some(a) = raw.routing_strategy_args {
            if let Ok(Some(ttl)) = self.seconds(&join(&args_path, "ttl"), a.ttl, Above::Zero) {
                routing_strategy_args.ttl = ttl;
            }
            if let Some(b) = self.non_negative(
                &join(&args_path, "lowest_latency_buffer"),
                a.lowest_latency_buffer,
            ) {
                routing_strategy_args.lowest_latency_buffer = b;
            }
        }
        if let Some(v) = routing_strategy_args.extra.remove("experiment") {
            let exp_path = join(&args_path, "experiment");
            match ExperimentSettings::from_value(&v) {
                Ok(e) => routing_strategy_args.experiment = Some(e),
                Err(problems) => {
                    for (key, message) in problems {
                        let p = if key.is_empty() {
                            exp_path.clone()
                        } else {
                            join(&exp_path, &key)
                        };
                        self.problem(p, message);
                    }
                }
            }
        }
        if let RoutingStrategyName::LlmRouter(ml) = routing_strategy {
            match MlSettings::from_args(ml, &routing_strategy_args.extra) {
                Ok(settings) => routing_strategy_args.ml = Some(settings),
                Err(problems) => {
                    for (key, message) in problems {
                        self.problem(join(&args_path, &key), message);
                    }
                }
            }
        }

        let mut model_group_alias = BTreeMap::new();
        let mut hidden_aliases = Vec::new();
        for (alias, target) in raw.model_group_alias.unwrap_or_default() {
            let p = join(&join(RS, "model_group_alias"), &alias);
            if !groups.is_group(&target.model) {
                self.problem(p, groups.unknown_message(&target.model, false));
            }
            if target.hidden {
                hidden_aliases.push(alias.clone());
            }
            groups_with_aliases.aliases.insert(alias.clone());
            model_group_alias.insert(alias, target.model);
        }
        let g = &groups_with_aliases;
        if let Some(e) = &routing_strategy_args.experiment {
            let exp_path = join(&args_path, "experiment");
            if !g.is_group_or_alias(&e.model_group) {
                self.problem(
                    join(&exp_path, "model_group"),
                    g.unknown_message(&e.model_group, true),
                );
            }
            for arm in &e.arms {
                if let Some(m) = &arm.model
                    && !g.is_group_or_alias(m)
                {
                    self.problem(
                        format!("{exp_path}.arms.{}.model", arm.name),
                        g.unknown_message(m, true),
                    );
                }
            }
        }
        let affinity_ttl = self
            .seconds(
                &join(RS, "deployment_affinity_ttl_seconds"),
                raw.deployment_affinity_ttl_seconds,
                Above::Zero,
            )
            .ok()
            .flatten();

        let retry_policy = raw
            .retry_policy
            .map(|r| RetryPolicy {
                bad_request: r.bad_request,
                authentication: r.authentication,
                timeout: r.timeout,
                rate_limit: r.rate_limit,
                content_policy_violation: r.content_policy_violation,
                internal_server: r.internal_server,
            })
            .unwrap_or_default();

        let mut secs = |key: &str, rs: Option<f64>, ls: Option<f64>, min: Above| {
            let rs = self.seconds(&join(RS, key), rs, min).ok().flatten();
            let ls = self.seconds(&join(LS, key), ls, min).ok().flatten();
            rs.or(ls)
        };
        let retry_after = secs("retry_after", raw.retry_after, None, Above::OrAtZero);
        let cooldown = secs(
            "cooldown_time",
            raw.cooldown_time,
            ls.cooldown_time,
            Above::OrAtZero,
        );
        // `litellm_settings.request_timeout` is checked (at its own path) by `litellm_settings`.
        let timeout = secs("timeout", raw.timeout, None, Above::Zero).or_else(|| {
            ls.request_timeout
                .and_then(|t| Duration::try_from_secs_f64(t).ok())
                .filter(|t| !t.is_zero() && *t <= MAX_DURATION)
        });
        let stream_timeout = secs("stream_timeout", raw.stream_timeout, None, Above::Zero);

        // Validate both sections' lists (each problem at its own path); router_settings wins.
        let fallbacks_rs = self.fallbacks(raw.fallbacks, &join(RS, "fallbacks"), g);
        let fallbacks_ls = self.fallbacks(ls.fallbacks.clone(), &join(LS, "fallbacks"), g);
        let cp_rs = self.fallbacks(
            raw.content_policy_fallbacks,
            &join(RS, "content_policy_fallbacks"),
            g,
        );
        let cp_ls = self.fallbacks(
            ls.content_policy_fallbacks.clone(),
            &join(LS, "content_policy_fallbacks"),
            g,
        );
        let cw_rs = self.fallbacks(
            raw.context_window_fallbacks,
            &join(RS, "context_window_fallbacks"),
            g,
        );
        let cw_ls = self.fallbacks(
            ls.context_window_fallbacks.clone(),
            &join(LS, "context_window_fallbacks"),
            g,
        );
        let df_rs = self.default_fallbacks(
            raw.default_fallbacks.as_ref(),
            &join(RS, "default_fallbacks"),
            g,
        );
        let df_ls = self.default_fallbacks(
            ls.default_fallbacks.as_ref(),
            &join(LS, "default_fallbacks"),
            g,
        );

        RouterSettings {
            routing_strategy,
            routing_strategy_args,
            model_group_alias,
            hidden_aliases,
            num_retries: raw.num_retries.or(ls.num_retries).unwrap_or(d.num_retries),
            retry_policy,
            retry_after: retry_after.unwrap_or(d.retry_after),
            allowed_fails: raw
                .allowed_fails
                .or(ls.allowed_fails)
                .unwrap_or(d.allowed_fails),
            cooldown_time: cooldown.unwrap_or(d.cooldown_time),
            disable_cooldowns: raw
                .disable_cooldowns
                .or(ls.disable_cooldowns)
                .unwrap_or(d.disable_cooldowns),
            timeout,
            stream_timeout,
            fallbacks: fallbacks_rs.or(fallbacks_ls).unwrap_or_default(),
            content_policy_fallbacks: cp_rs.or(cp_ls).unwrap_or_default(),
            context_window_fallbacks: cw_rs.or(cw_ls).unwrap_or_default(),
            default_fallbacks: df_rs.or(df_ls).unwrap_or_default(),
            max_fallbacks: raw.max_fallbacks.unwrap_or(d.max_fallbacks),
            deployment_affinity_ttl: affinity_ttl,
        }
    }

    fn litellm_settings(&mut self, raw: &RawLitellmSettings) -> LitellmSettings {
        let request_timeout = self
            .seconds(
                "litellm_settings.request_timeout",
                raw.request_timeout,
                Above::Zero,
            )
            .ok()
            .flatten();
        LitellmSettings {
            drop_params: raw.drop_params.unwrap_or(false),
            request_timeout,
            json_logs: raw.json_logs.unwrap_or(false),
            set_verbose: raw.set_verbose.unwrap_or(false),
        }
    }

    fn general_settings(&mut self, raw: RawGeneralSettings) -> GeneralSettings {
        const GS: &str = "general_settings";
        let d = GeneralSettings::default();
        if let Some(key) = &raw.master_key {
            if key.expose().trim().is_empty() {
                self.problem(join(GS, "master_key"), "must not be empty");
            } else if !key.expose().starts_with("sk-") {
                self.warn(
                    join(GS, "master_key"),
                    "LiteLLM expects the master key to start with 'sk-'; RouteIQ accepts it, \
                     but LiteLLM clients and tools may not",
                );
            }
        }
        let max_request_size_mb =
            self.megabytes(&join(GS, "max_request_size_mb"), raw.max_request_size_mb);
        let max_response_size_mb =
            self.megabytes(&join(GS, "max_response_size_mb"), raw.max_response_size_mb);
        GeneralSettings {
            master_key: raw.master_key,
            max_request_size_mb: max_request_size_mb.unwrap_or(d.max_request_size_mb),
            max_response_size_mb: max_response_size_mb.unwrap_or(d.max_response_size_mb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn load(yaml: &str) -> Result<LoadedConfig, ConfigError> {
        load_str_with_env(yaml, &env_of(&[]))
    }

    fn problems(yaml: &str) -> Vec<ConfigProblem> {
        match load(yaml) {
            Ok(_) => panic!("expected problems"),
            Err(e) => e.problems().to_vec(),
        }
    }

    const BASIC: &str =
        "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n";

    #[test]
    fn empty_and_null_configs_load_with_defaults() {
        for yaml in ["", "null", "# just a comment\n", "~"] {
            let l = load(yaml).unwrap();
            assert!(l.config.model_list.is_empty());
            assert_eq!(
                l.config.router_settings.routing_strategy,
                RoutingStrategyName::SimpleShuffle
            );
            assert_eq!(l.config.general_settings.max_request_size_mb, 10.0);
            assert!(l.warnings.is_empty());
        }
    }

    #[test]
    fn invalid_yaml_reports_location() {
        let e = load("model_list:\n  - model_name: a\n   litellm_params: [\n").unwrap_err();
        let ConfigError::Yaml(msg) = e else {
            panic!("expected a YAML error")
        };
        assert!(msg.contains("line"), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn non_mapping_root_is_a_problem() {
        let p = problems("- a\n- b\n");
        assert_eq!(p[0].path, "<root>");
    }

    #[test]
    fn basic_deployment() {
        let l = load(BASIC).unwrap();
        let d = &l.config.model_list[0];
        assert_eq!(d.model_name, "gpt-4o");
        assert_eq!(d.litellm_params.model, "openai/gpt-4o");
    }

    #[test]
    fn env_resolution_prefers_config_section() {
        let yaml = "environment_variables:\n  OPENAI_API_KEY: sk-from-config\n  ALIAS_KEY: os.environ/REAL_KEY\n\
            model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      api_key: os.environ/OPENAI_API_KEY\n\
            \x20 - model_name: b\n    litellm_params:\n      model: gpt-4o\n      api_key: os.environ/ALIAS_KEY\n      \
            extra_body: {x: os.environ/EXTRA}\n\
            general_settings:\n  master_key: os.environ/MASTER\n";
        let env = env_of(&[
            ("OPENAI_API_KEY", "sk-from-process"),
            ("REAL_KEY", "sk-real"),
            ("EXTRA", "42"),
            ("MASTER", "sk-master"),
        ]);
        let l = load_str_with_env(yaml, &env).unwrap();
        let c = &l.config;
        assert_eq!(
            c.model_list[0]
                .litellm_params
                .api_key
                .as_ref()
                .unwrap()
                .expose(),
            "sk-from-config"
        );
        assert_eq!(
            c.model_list[1]
                .litellm_params
                .api_key
                .as_ref()
                .unwrap()
                .expose(),
            "sk-real"
        );
        assert_eq!(
            c.model_list[1].litellm_params.extra["extra_body"]["x"],
            JsonValue::from("42")
        );
        assert_eq!(
            c.general_settings.master_key.as_ref().unwrap().expose(),
            "sk-master"
        );
        assert_eq!(c.environment_variables["ALIAS_KEY"].expose(), "sk-real");
    }

    #[test]
    fn missing_env_var_names_the_path() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      api_key: os.environ/NOPE_KEY\n\
            environment_variables:\n  X: os.environ/ALSO_MISSING\n";
        let p = problems(yaml);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].path, "environment_variables.X");
        assert_eq!(p[0].message, "environment variable ALSO_MISSING is not set");
        assert_eq!(p[1].path, "model_list[0].litellm_params.api_key");
        assert_eq!(p[1].message, "environment variable NOPE_KEY is not set");
    }

    #[test]
    fn env_values_fill_numeric_fields() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            rpm: os.environ/MY_RPM\n      timeout: os.environ/MY_TIMEOUT\n\
            litellm_settings:\n  drop_params: os.environ/DROP\n";
        let env = env_of(&[("MY_RPM", "100"), ("MY_TIMEOUT", "2.5"), ("DROP", "True")]);
        let l = load_str_with_env(yaml, &env).unwrap();
        assert_eq!(l.config.model_list[0].litellm_params.rpm, Some(100));
        assert_eq!(
            l.config.model_list[0].litellm_params.timeout,
            Some(Duration::from_millis(2500))
        );
        assert!(l.config.litellm_settings.drop_params);
    }

    #[test]
    fn env_var_used_only_by_ignored_setting_need_not_be_set() {
        let yaml = format!("{BASIC}general_settings:\n  database_url: os.environ/DATABASE_URL\n");
        let l = load(&yaml).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].path, "general_settings.database_url");
    }

    #[test]
    fn warnings_one_per_key_with_path() {
        let yaml = format!(
            "{BASIC}router_settings:\n  redis_host: h\n  redis_port: 1\n  enable_pre_call_checks: true\n\
             litellm_settings:\n  success_callback: [langfuse]\n  cache: true\n  cache_params: {{type: redis, host: h}}\n\
             general_settings:\n  alerting: [slack]\n  master_key: sk-1\n"
        );
        let l = load(&yaml).unwrap();
        let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.redis_host",
                "router_settings.redis_port",
                "router_settings.enable_pre_call_checks",
                "litellm_settings.success_callback",
                "litellm_settings.cache",
                "litellm_settings.cache_params",
                "general_settings.alerting",
            ]
        );
    }

    #[test]
    fn all_problems_are_collected() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: opnai/gpt-4\n      api_bse: http://x\n\
            \x20 - model_name: b\n    litellm_params:\n      model: gpt-4o\n      rpm: abc\n\
            router_settings:\n  routing_stratgy: least-busy\n";
        let p = problems(yaml);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.api_bse",
                "router_settings.routing_stratgy",
                "model_list[0].litellm_params.model",
                "model_list[1].litellm_params.rpm",
            ]
        );
        assert!(p[0].message.contains("did you mean 'api_base'?"));
        assert!(p[2].message.contains("did you mean 'openai'?"));
        assert_eq!(
            p[3].message,
            "invalid type: string \"abc\", expected a non-negative integer"
        );
    }

    #[test]
    fn unsupported_provider_warns() {
        let yaml = "model_list:\n  - model_name: g\n    litellm_params:\n      model: vertex_ai/gemini-pro\n      vertex_project: p\n";
        let l = load(yaml).unwrap();
        let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.vertex_project",
                "model_list[0].litellm_params.model"
            ]
        );
        assert!(l.warnings[1].message.contains("not supported"));
    }

    #[test]
    fn passthrough_params_go_to_extra() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            temperature: 0.2\n      max_tokens: 100\n      seed: 7\n";
        let l = load(yaml).unwrap();
        let extra = &l.config.model_list[0].litellm_params.extra;
        assert_eq!(extra["temperature"], JsonValue::from(0.2));
        assert_eq!(extra["max_tokens"], JsonValue::from(100));
        assert_eq!(extra.len(), 3);
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn litellm_params_checks() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            api_base: ftp://x\n      weight: 0\n      timeout: -1\n\
            \x20 - model_name: b\n    litellm_params:\n      model: hosted_vllm/llama\n\
            \x20 - model_name: ''\n    litellm_params: {model: gpt-4o}\n\
            \x20 - model_name: d\n";
        let p = problems(yaml);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.api_base",
                "model_list[0].litellm_params.weight",
                "model_list[0].litellm_params.timeout",
                "model_list[1].litellm_params.api_base",
                "model_list[2].model_name",
                "model_list[3].litellm_params",
            ]
        );
    }

    #[test]
    fn url_check() {
        assert!(check_url("https://api.openai.com/v1").is_ok());
        assert!(check_url("http://localhost:11434").is_ok());
        assert!(check_url("HTTPS://X.example").is_ok());
        assert!(check_url("localhost:8000").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://a b").is_err());
    }

    #[test]
    fn model_info_checks_and_cost_mapping() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n    model_info:\n      \
            id: one\n      output_cost_per_token: 0.5\n      supports_vision: true\n      mode: chat\n\
            \x20 - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info: {id: 2}\n";
        let l = load(yaml).unwrap();
        let mi = &l.config.model_list[0].model_info;
        assert_eq!(mi.input_cost_per_token, Some(0.001));
        assert_eq!(mi.output_cost_per_token, Some(0.5));
        assert_eq!(mi.extra["supports_vision"], JsonValue::from(true));
        assert_eq!(l.config.model_list[1].model_info.id.as_deref(), Some("2"));

        let dup = "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info: {id: x, mode: chatt}\n\
            \x20 - model_name: b\n    litellm_params: {model: gpt-4o}\n    model_info: {id: x}\n";
        let p = problems(dup);
        assert_eq!(p[0].path, "model_list[0].model_info.mode");
        assert!(p[0].message.contains("did you mean 'chat'?"));
        assert_eq!(p[1].path, "model_list[1].model_info.id");
        assert!(p[1].message.contains("also used by model_list[0]"));
    }

    #[test]
    fn fallbacks_parse_and_check_groups() {
        let yaml = "model_list:\n  - {model_name: gpt-4, litellm_params: {model: gpt-4}}\n  \
            - {model_name: gpt-3.5-turbo, litellm_params: {model: gpt-3.5-turbo}}\n  \
            - {model_name: claude, litellm_params: {model: anthropic/claude-3-5-haiku-latest}}\n\
            router_settings:\n  fallbacks: [{\"gpt-4\": [\"gpt-3.5-turbo\", \"claude\"]}, {\"*\": [claude]}]\n  \
            context_window_fallbacks: [{gpt-3.5-turbo: gpt-4}]\n  default_fallbacks: [claude]\n";
        let rs = load(yaml).unwrap().config.router_settings;
        assert_eq!(
            rs.fallbacks[0],
            FallbackRule {
                from: "gpt-4".into(),
                to: vec!["gpt-3.5-turbo".into(), "claude".into()]
            }
        );
        assert_eq!(rs.fallbacks[1].from, "*");
        assert_eq!(rs.context_window_fallbacks[0].to, ["gpt-4"]);
        assert_eq!(rs.default_fallbacks, ["claude"]);

        let bad = "model_list:\n  - {model_name: gpt-4, litellm_params: {model: gpt-4}}\n\
            router_settings:\n  fallbacks: [{gpt4: [gpt-4o]}, {gpt-4: [x], a: [b]}]\n\
            litellm_settings:\n  default_fallbacks: [gtp-4]\n";
        let p = problems(bad);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.fallbacks[0].gpt4",
                "router_settings.fallbacks[0].gpt4[0]",
                "router_settings.fallbacks[1]",
                "litellm_settings.default_fallbacks[0]",
            ]
        );
        assert!(p[0].message.contains("did you mean 'gpt-4'?"));
        assert!(p[3].message.contains("did you mean 'gpt-4'?"));
    }

    #[test]
    fn aliases_both_forms_and_hidden() {
        let yaml = format!(
            "{BASIC}router_settings:\n  model_group_alias:\n    gpt-4: gpt-4o\n    \
             secret-gpt: {{model: gpt-4o, hidden: true}}\n  fallbacks: [{{gpt-4: [gpt-4o]}}]\n"
        );
        let rs = load(&yaml).unwrap().config.router_settings;
        assert_eq!(rs.model_group_alias["gpt-4"], "gpt-4o");
        assert_eq!(rs.model_group_alias["secret-gpt"], "gpt-4o");
        assert_eq!(rs.hidden_aliases, ["secret-gpt"]);
        assert_eq!(rs.fallbacks[0].from, "gpt-4");

        let bad = format!("{BASIC}router_settings:\n  model_group_alias: {{x: gpt-4p}}\n");
        let p = problems(&bad);
        assert_eq!(p[0].path, "router_settings.model_group_alias.x");
        assert!(p[0].message.contains("did you mean 'gpt-4o'?"));
    }

    #[test]
    fn wildcard_groups_satisfy_references() {
        let yaml = "model_list:\n  - {model_name: 'openai/*', litellm_params: {model: 'openai/*'}}\n\
            router_settings:\n  fallbacks: [{openai/gpt-4o: [openai/gpt-4o-mini]}]\n";
        assert!(load(yaml).is_ok());
        assert!(glob_match("openai/*", "openai/gpt-4o"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ac"));
    }

    #[test]
    fn litellm_settings_merge_into_router_settings() {
        let yaml = format!(
            "{BASIC}litellm_settings:\n  num_retries: 5\n  request_timeout: 30\n  allowed_fails: 9\n  \
             cooldown_time: 60\n  fallbacks: [{{gpt-4o: [gpt-4o]}}]\n  drop_params: true\n\
             router_settings:\n  num_retries: 1\n  routing_strategy: usage-based-routing-v2\n"
        );
        let c = load(&yaml).unwrap().config;
        let rs = &c.router_settings;
        assert_eq!(rs.num_retries, 1);
        assert_eq!(rs.allowed_fails, 9);
        assert_eq!(rs.cooldown_time, Duration::from_secs(60));
        assert_eq!(rs.timeout, Some(Duration::from_secs(30)));
        assert_eq!(rs.fallbacks.len(), 1);
        assert_eq!(rs.routing_strategy, RoutingStrategyName::UsageBasedV2);
        assert_eq!(
            c.litellm_settings.request_timeout,
            Some(Duration::from_secs(30))
        );
        assert!(c.litellm_settings.drop_params);

        let yaml = format!(
            "{BASIC}litellm_settings:\n  request_timeout: 30\nrouter_settings:\n  timeout: 5\n"
        );
        assert_eq!(
            load(&yaml).unwrap().config.router_settings.timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn routing_strategies() {
        for (name, want) in [
            ("latency-based-routing", RoutingStrategyName::LatencyBased),
            ("least_busy", RoutingStrategyName::LeastBusy),
            ("cost-based-routing", RoutingStrategyName::CostBased),
        ] {
            let yaml = format!("router_settings:\n  routing_strategy: {name}\n");
            assert_eq!(
                load(&yaml).unwrap().config.router_settings.routing_strategy,
                want
            );
        }
        let p = problems("router_settings:\n  routing_strategy: latency-based-routng\n");
        assert!(
            p[0].message
                .contains("did you mean 'latency-based-routing'?")
        );
        assert!(p[0].message.contains("simple-shuffle"));
        // ML strategies load with their args; LLM/GPU ones and bad args are clear errors.
        let l = load(
            "router_settings:\n  routing_strategy: llmrouter-knn\n  routing_strategy_args: \
             {model_path: models/routers/knn.json, cost_weight: 0.2, hot_reload: true, reload_interval: 5}\n",
        )
        .unwrap();
        let rs = &l.config.router_settings;
        assert_eq!(
            rs.routing_strategy,
            RoutingStrategyName::LlmRouter(MlStrategyName::Knn)
        );
        let ml = rs.routing_strategy_args.ml.as_ref().unwrap();
        assert_eq!(ml.model_path.as_deref(), Some("models/routers/knn.json"));
        assert_eq!(ml.cost.cost_weight, 0.2);
        assert!(ml.hot_reload && ml.reload_interval_secs == 5.0);
        let p = problems("router_settings:\n  routing_strategy: llmrouter-routerdc\n");
        assert!(
            p[0].message.contains("not supported by RouteIQ"),
            "{}",
            p[0].message
        );
        assert!(p[0].message.contains("GPU"));
        let p = problems("router_settings:\n  routing_strategy: llmrouter-knnn\n");
        assert!(p[0].message.contains("unknown ML routing strategy"));
        let p = problems(
            "router_settings:\n  routing_strategy: llmrouter-mlp\n  routing_strategy_args: {cost_weight: -1, profile: turbo}\n",
        );
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"router_settings.routing_strategy_args.cost_weight"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"router_settings.routing_strategy_args.profile"),
            "{paths:?}"
        );
    }

    #[test]
    fn affinity_ttl_and_experiment_load_and_are_checked() {
        let yaml = "model_list:\n  - {model_name: auto, litellm_params: {model: openai/a}}\n  \
                    - {model_name: small, litellm_params: {model: openai/b}}\n\
                    router_settings:\n  deployment_affinity_ttl_seconds: 900\n  \
                    routing_strategy_args:\n    experiment:\n      name: e1\n      \
                    model_group: auto\n      arms: {control: {weight: 1}, cheap: {weight: 1, model: small}}\n";
        let loaded = load(yaml).unwrap();
        let rs = &loaded.config.router_settings;
        assert_eq!(rs.deployment_affinity_ttl, Some(Duration::from_secs(900)));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let e = rs.routing_strategy_args.experiment.as_ref().unwrap();
        assert_eq!((e.name.as_str(), e.arms.len()), ("e1", 2));
        assert!(!rs.routing_strategy_args.extra.contains_key("experiment"));
        let bad = problems(
            "model_list:\n  - {model_name: auto, litellm_params: {model: openai/a}}\n\
             router_settings:\n  deployment_affinity_ttl_seconds: -1\n  \
             routing_strategy_args:\n    experiment: {name: e1, model_group: autoo, \
             arms: {x: {model: nope}}}\n",
        );
        let paths: Vec<&str> = bad.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "router_settings.deployment_affinity_ttl_seconds",
            "router_settings.routing_strategy_args.experiment.model_group",
            "router_settings.routing_strategy_args.experiment.arms.x.model",
        ] {
            assert!(paths.contains(&want), "{want} not in {bad:?}");
        }
    }

    #[test]
    fn routing_strategy_args_and_retry_policy() {
        let yaml = "router_settings:\n  routing_strategy_args: {ttl: 60, lowest_latency_buffer: 0.5, k: 3}\n  \
            retry_policy: {TimeoutErrorRetries: 2, RateLimitErrorRetries: 4, NotFoundErrorRetries: 1}\n";
        let l = load(yaml).unwrap();
        let rs = &l.config.router_settings;
        assert_eq!(rs.routing_strategy_args.ttl, Duration::from_secs(60));
        assert_eq!(rs.routing_strategy_args.lowest_latency_buffer, 0.5);
        assert_eq!(rs.routing_strategy_args.extra["k"], JsonValue::from(3));
        assert_eq!(rs.retry_policy.timeout, Some(2));
        assert_eq!(rs.retry_policy.rate_limit, Some(4));
        assert_eq!(
            l.warnings[0].path,
            "router_settings.retry_policy.NotFoundErrorRetries"
        );
    }

    #[test]
    fn merge_keys_apply() {
        let yaml = "x-defaults: &defaults\n  api_base: https://example.openai.azure.com\n  api_version: '2024-06-01'\n  rpm: 60\n\
            model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      <<: *defaults\n      model: azure/gpt-4o-eu\n";
        // `x-defaults` is not a LiteLLM key: it is reported.
        let p = problems(yaml);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "x-defaults");

        let yaml = "model_list:\n  - model_name: gpt-4o\n    litellm_params: &base\n      \
            model: azure/gpt-4o-eu\n      api_base: https://eu.example.com\n      rpm: 60\n  \
            - model_name: gpt-4o\n    litellm_params:\n      <<: *base\n      api_base: https://us.example.com\n";
        let c = load(yaml).unwrap().config;
        let lp = &c.model_list[1].litellm_params;
        assert_eq!(lp.model, "azure/gpt-4o-eu");
        assert_eq!(lp.api_base.as_deref(), Some("https://us.example.com"));
        assert_eq!(lp.rpm, Some(60));
    }

    #[test]
    fn type_error_path() {
        let p = problems(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      rpm: abc\n",
        );
        assert_eq!(
            p[0].to_string(),
            "model_list[0].litellm_params.rpm: invalid type: string \"abc\", expected a non-negative integer"
        );
        let p = problems("router_settings:\n  num_retries: [1]\n");
        assert_eq!(p[0].path, "router_settings.num_retries");
        let p = problems("model_list: {a: 1}\n");
        assert_eq!(p[0].path, "model_list");
    }

    #[test]
    fn secrets_never_in_messages_or_debug() {
        let yaml = "environment_variables:\n  SECRET_ONE: sk-env-secret-value\n  BAD: [sk-listed-secret]\n\
            model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      api_key: {sk-nested-secret: 1}\n";
        let e = load(yaml).unwrap_err();
        let text = format!("{e} {e:?}");
        for s in [
            "sk-env-secret-value",
            "sk-listed-secret",
            "sk-nested-secret",
        ] {
            assert!(!text.contains(s), "{s} leaked: {text}");
        }

        let yaml = "environment_variables:\n  OPENAI_API_KEY: sk-env-secret-value\n\
            model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      api_key: sk-inline-secret\n\
            general_settings:\n  master_key: sk-master-secret\n";
        let l = load(yaml).unwrap();
        let dbg = format!("{:?}", l.config);
        for s in [
            "sk-env-secret-value",
            "sk-inline-secret",
            "sk-master-secret",
        ] {
            assert!(!dbg.contains(s), "{s} leaked in Debug");
        }
    }

    #[test]
    fn general_settings_checks() {
        let l =
            load("general_settings:\n  master_key: my-key\n  max_request_size_mb: 50\n").unwrap();
        assert_eq!(l.warnings[0].path, "general_settings.master_key");
        assert!(!l.warnings[0].message.contains("my-key"));
        assert_eq!(l.config.general_settings.max_request_size_mb, 50.0);
        let p = problems("general_settings:\n  master_key: ''\n  max_request_size_mb: 0\n");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn environment_variables_scalars_become_strings() {
        let l = load("environment_variables:\n  PORT: 6379\n  SSL: true\n  HOST: h\n").unwrap();
        let ev = &l.config.environment_variables;
        assert_eq!(ev["PORT"].expose(), "6379");
        assert_eq!(ev["SSL"].expose(), "true");
        assert_eq!(ev["HOST"].expose(), "h");
    }
}
