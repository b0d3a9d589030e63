//! The loading pipeline: a LiteLLM `config.yaml` into the runtime [`Config`].
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
//! 4. deserialize each section (each deployment separately) into its raw type through
//!    `serde_path_to_error`, so type errors name their path;
//! 5. validate each section into its runtime type (its module's `load`), collecting every
//!    problem in the [`Loader`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as JsonValue};
use serde_path_to_error::Segment;
use serde_yaml_ng::{Mapping, Value};

use super::general_settings::RawGeneralSettings;
use super::litellm_settings::RawLitellmSettings;
use super::model_list::{self, ModelGroups};
use super::router_settings::RawRouterSettings;
use super::schema::{self, join, key_name};
use super::{
    Config, ConfigError, ConfigProblem, ConfigWarning, LoadedConfig, MAX_DURATION, MAX_SIZE_MB,
    SecretString, WarningKind,
};

/// The prefix of a string LiteLLM replaces with an environment variable's value.
const ENV_PREFIX: &str = "os.environ/";

/// Bound on the type errors reported per section (each retry removes one key).
const MAX_ERRORS_PER_SECTION: usize = 64;

/// The lower bound of a duration key.
#[derive(Clone, Copy)]
pub(super) enum Above {
    /// Strictly above zero (timeouts, TTLs).
    Zero,
    /// Zero allowed (waits, cooldowns).
    OrAtZero,
}

/// Keys whose values are secrets: their errors never show the value.
const SECRET_KEYS: &[&str] = &[
    "api_key",
    "master_key",
    "redis_password",
    "redis_url",
    "database_url",
];

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
    load_str_with(yaml, env, None)
}

/// Reads an included file (`include:`) by the name the config gives it; the gateway reads it
/// beside a config file. `Err` carries why it could not be read.
pub type IncludeReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// [`load_str_with_env`] with LiteLLM's `include:` (one file or a list) read through
/// `include`: each included file is a mapping whose lists extend the config's (`model_list`)
/// and whose other sections fill the ones the config does not set. Without a reader (a config
/// from S3 or the embedded one), `include` is a warning.
pub fn load_str_with(
    yaml: &str,
    env: &dyn Fn(&str) -> Option<String>,
    include: Option<IncludeReader<'_>>,
) -> Result<LoadedConfig, ConfigError> {
    let mut top = parse_mapping(yaml)?;
    if let Some(read) = include
        && let Some(names) = top.shift_remove("include")
    {
        let names = match names {
            Value::Null => Vec::new(),
            Value::String(s) => vec![s],
            Value::Sequence(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(other),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|other| {
                    invalid(
                        "include",
                        format!("expected file names, found {}", kind(&other)),
                    )
                })?,
            other => {
                return Err(invalid(
                    "include",
                    format!(
                        "expected a file name or a list of them, found {}",
                        kind(&other)
                    ),
                ));
            }
        };
        for name in names {
            let path = format!("include[{name}]");
            let text = read(&name).map_err(|e| invalid(&path, format!("cannot read: {e}")))?;
            let included = parse_mapping(&text).map_err(|e| match e {
                ConfigError::Yaml(m) => invalid(&path, format!("not valid YAML: {m}")),
                e @ ConfigError::Invalid { .. } => e,
            })?;
            for (key, value) in included {
                match (top.get_mut(&key), value) {
                    (Some(Value::Sequence(mine)), Value::Sequence(theirs)) => mine.extend(theirs),
                    (Some(_), _) => {}
                    (None, value) => {
                        top.insert(key, value);
                    }
                }
            }
        }
    }
    let files = match include {
        Some(read) => files_named(&top)
            .into_iter()
            .map(|name| {
                let text = read(&name);
                (name, text)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    load_mapping(top, env, files)
}

/// The files the config names to be read beside it (`auto_router_config_path`).
fn files_named(top: &Mapping) -> Vec<String> {
    let Some(Value::Sequence(items)) = top.get("model_list") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(
            |d| match d.get("litellm_params")?.get("auto_router_config_path")? {
                Value::String(s) => Some(s.trim().to_string()),
                _ => None,
            },
        )
        .collect()
}

fn invalid(path: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        problems: vec![ConfigProblem::new(path, message)],
        warnings: Vec::new(),
    }
}

/// The YAML text as the mapping of sections, merge keys applied.
fn parse_mapping(yaml: &str) -> Result<Mapping, ConfigError> {
    let mut root: Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    root.apply_merge()
        .map_err(|e| ConfigError::Yaml(format!("invalid merge key (<<): {e}")))?;
    match root {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(m) => Ok(m),
        other => Err(invalid(
            "<root>",
            format!(
                "the config must be a mapping of sections (model_list, router_settings, ...), found {}",
                kind(&other)
            ),
        )),
    }
}

fn load_mapping(
    mut top: Mapping,
    env: &dyn Fn(&str) -> Option<String>,
    files: BTreeMap<String, Result<String, String>>,
) -> Result<LoadedConfig, ConfigError> {
    let checked = schema::check(&mut top);
    let mut l = Loader {
        problems: checked.problems,
        warnings: checked.warnings,
        extras: checked.extras,
        failed: BTreeSet::new(),
        unresolved: BTreeMap::new(),
        files,
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

    let groups = ModelGroups::from_tree(top.get("model_list"));
    let model_list = model_list::load(top.shift_remove("model_list"), &groups, &mut l);
    let router: RawRouterSettings = l.section(&mut top, "router_settings");
    let litellm: RawLitellmSettings = l.section(&mut top, "litellm_settings");
    let general: RawGeneralSettings = l.section(&mut top, "general_settings");

    let router_settings = router.load(&litellm, &general, &groups, &mut l);
    let litellm_settings = litellm.load(&mut l);
    let mut model_list = model_list;
    for d in &mut model_list {
        // A deployment's own drop_params wins over litellm_settings'.
        d.litellm_params
            .drop_params
            .get_or_insert(litellm_settings.drop_params);
    }
    let general_settings = general.load(&mut l);

    if !l.problems.is_empty() {
        return Err(ConfigError::Invalid {
            problems: l.problems,
            warnings: l.warnings,
        });
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

pub(super) fn kind(v: &Value) -> &'static str {
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

/// A `http://` or `https://` URL with a host.
pub(super) fn check_url(s: &str) -> Result<(), &'static str> {
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

/// What the sections' `load`s report into: problems, warnings, the extras the key check set
/// aside, and the paths already reported.
pub(super) struct Loader {
    problems: Vec<ConfigProblem>,
    warnings: Vec<ConfigWarning>,
    extras: BTreeMap<String, Mapping>,
    /// Paths already reported (type errors, unset variables): not reported again as missing.
    failed: BTreeSet<String>,
    /// `litellm_params` values whose `os.environ/` variable is not set, by path: the
    /// deployment loads without them (see [`is_deployment_param`]).
    unresolved: BTreeMap<String, String>,
    /// Files the config names (`auto_router_config_path`), read beside it up front.
    files: BTreeMap<String, Result<String, String>>,
}

/// Is `path` a deployment's `litellm_params.<key>` (other than `model`)? An unset
/// `os.environ/` variable there is a warning, not an error: LiteLLM starts and fails the
/// deployment's requests, and so does RouteIQ (a missing `model` leaves nothing to route).
fn is_deployment_param(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("model_list[") else {
        return false;
    };
    let Some((index, key)) = rest.split_once("].litellm_params.") else {
        return false;
    };
    index.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() && key != "model"
}

impl Loader {
    /// A file the config names, read beside it (see [`load_str_with`]).
    pub(super) fn read_file(&self, name: &str) -> Result<String, String> {
        self.files.get(name.trim()).cloned().unwrap_or_else(|| {
            Err("files beside the config can only be read when it is a local file; put the                  routes inline in auto_router_config"
                .to_string())
        })
    }

    /// The unresolved `os.environ/` values under the `litellm_params` at `path`.
    pub(super) fn unresolved_under(&self, path: &str) -> Vec<super::UnresolvedEnv> {
        let prefix = format!("{path}.");
        self.unresolved
            .iter()
            .filter_map(|(p, var)| {
                let key = p.strip_prefix(&prefix)?;
                Some(super::UnresolvedEnv {
                    key: key.to_string(),
                    var: var.clone(),
                })
            })
            .collect()
    }

    /// Was `path` already reported (a type error, an unset variable)? Then a missing value
    /// there is not reported again.
    pub(super) fn failed(&self, path: &str) -> bool {
        self.failed.contains(path)
    }

    pub(super) fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records the problems a nested validator found, their paths read under `prefix`.
    pub(super) fn problems_under(&mut self, problems: Vec<ConfigProblem>, prefix: &str) {
        self.problems
            .extend(problems.into_iter().map(|p| p.under(prefix)));
    }

    pub(super) fn warn(
        &mut self,
        path: impl Into<String>,
        kind: WarningKind,
        message: impl Into<String>,
    ) {
        self.warnings.push(ConfigWarning::new(path, kind, message));
    }

    /// `environment_variables`: NAME -> scalar, in file order; values may be `os.environ/X`
    /// (resolved from the entries before them, then from `env`); null entries are skipped.
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
                // LiteLLM skips null entries: the variable stays unset.
                Value::Null => continue,
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
                        if is_deployment_param(path) {
                            // LiteLLM starts and fails this deployment's requests: so does
                            // RouteIQ.
                            self.warn(
                                path,
                                WarningKind::UnsetVariable,
                                format!(
                                    "environment variable {var} is not set: requests routed \
                                     only to this deployment will fail until it is set and \
                                     the config reloaded"
                                ),
                            );
                            self.unresolved.insert(path.to_string(), var.clone());
                        } else if path == "general_settings.database_url" {
                            // Without it virtual keys are off: only the master key works,
                            // so nothing opens (LiteLLM starts without its database too).
                            self.warn(
                                path,
                                WarningKind::UnsetVariable,
                                format!(
                                    "environment variable {var} is not set: virtual keys are \
                                     off unless another key store is configured (only the \
                                     master key is accepted)"
                                ),
                            );
                        } else {
                            self.problem(path, format!("environment variable {var} is not set"));
                        }
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
    pub(super) fn de<T: DeserializeOwned>(&mut self, mut v: Value, prefix: &str) -> Option<T> {
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
    pub(super) fn section<T: DeserializeOwned + Default>(
        &mut self,
        top: &mut Mapping,
        key: &str,
    ) -> T {
        match top.shift_remove(key) {
            None | Some(Value::Null) => T::default(),
            Some(v) => self.de(v, key).unwrap_or_default(),
        }
    }

    /// Moves the extras set aside at `path` into a JSON map.
    pub(super) fn take_extras(&mut self, path: &str) -> Map<String, JsonValue> {
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

    /// A duration in seconds: finite, above zero (or at least zero) and at most
    /// [`MAX_DURATION`]. `Err(())` after recording the problem.
    pub(super) fn seconds(
        &mut self,
        path: &str,
        v: Option<f64>,
        min: Above,
    ) -> Result<Option<Duration>, ()> {
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
    pub(super) fn megabytes(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
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

    pub(super) fn non_negative(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let v = v?;
        if !(v.is_finite() && v >= 0.0) {
            self.problem(path, format!("must be >= 0, got {v}"));
        }
        Some(v)
    }
}

/// What the sections' tests share: loading YAML with a given environment.
#[cfg(test)]
pub(super) mod testing {
    use std::collections::BTreeMap;

    use super::load_str_with_env;
    use crate::config::{ConfigError, ConfigProblem, LoadedConfig};

    /// One deployment, `gpt-4o`.
    pub const BASIC: &str =
        "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n";

    pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    /// Loads with an empty environment.
    pub fn load(yaml: &str) -> Result<LoadedConfig, ConfigError> {
        load_str_with_env(yaml, &env_of(&[]))
    }

    /// The problems of a config that must not load.
    pub fn problems(yaml: &str) -> Vec<ConfigProblem> {
        match load(yaml) {
            Ok(_) => panic!("expected problems"),
            Err(e) => e.problems().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value as JsonValue;

    use super::testing::{BASIC, env_of, load, problems};
    use super::*;
    use crate::config::RoutingStrategyName;

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
        // Resolved inside extra_body, which is merged into the body fields.
        assert_eq!(
            c.model_list[1].litellm_params.extra["x"],
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
        // In a deployment's litellm_params: a warning, the deployment loads and records it
        // (LiteLLM starts and fails that deployment's requests).
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      api_key: os.environ/NOPE_KEY\n      \
            api_base: os.environ/NOPE_BASE\n";
        let l = load(yaml).unwrap();
        let paths: Vec<&str> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.api_key",
                "model_list[0].litellm_params.api_base"
            ]
        );
        assert!(l.warnings[0].message.contains("NOPE_KEY is not set"));
        assert_eq!(l.warnings[0].kind, WarningKind::UnsetVariable);
        let lp = &l.config.model_list[0].litellm_params;
        assert!(lp.api_key.is_none() && lp.api_base.is_none());
        let vars: Vec<&str> = lp.unresolved_env.iter().map(|u| u.var.as_str()).collect();
        assert_eq!(vars, ["NOPE_BASE", "NOPE_KEY"]);

        // Elsewhere (the master key, environment_variables, a deployment's model): an error.
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: os.environ/NOPE_MODEL\n\
            environment_variables:\n  X: os.environ/ALSO_MISSING\n\
            general_settings:\n  master_key: os.environ/NOPE_MASTER\n";
        let p = problems(yaml);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "environment_variables.X",
                "model_list[0].litellm_params.model",
                "general_settings.master_key"
            ]
        );
        assert_eq!(p[0].message, "environment variable ALSO_MISSING is not set");
        assert_eq!(p[2].message, "environment variable NOPE_MASTER is not set");
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
        let yaml = format!("{BASIC}general_settings:\n  alerting_threshold: os.environ/NOT_SET\n");
        let l = load(&yaml).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].path, "general_settings.alerting_threshold");
    }

    #[test]
    fn an_unset_database_url_turns_virtual_keys_off_with_a_warning() {
        let yaml = format!("{BASIC}general_settings:\n  database_url: os.environ/NOT_SET_DB\n");
        let l = load(&yaml).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].path, "general_settings.database_url");
        assert_eq!(l.warnings[0].kind, WarningKind::UnsetVariable);
        assert!(l.config.general_settings.database_url.is_none());
        let env = env_of(&[("DB", "postgresql://u:p@127.0.0.1:5432/litellm")]);
        let yaml = format!("{BASIC}general_settings:\n  database_url: os.environ/DB\n");
        let l = load_str_with_env(&yaml, &env).unwrap();
        assert!(l.warnings.is_empty());
        assert!(l.config.general_settings.database_url.is_some());
        let p = problems(&format!(
            "{BASIC}general_settings:\n  database_url: mysql://x\n"
        ));
        assert_eq!(p[0].path, "general_settings.database_url");
    }

    #[test]
    fn warnings_one_per_key_with_path() {
        let yaml = format!(
            "{BASIC}router_settings:\n  debug_level: INFO\n  set_verbose: false\n  enable_pre_call_checks: true\n\
             litellm_settings:\n  success_callback: [langfuse]\n  cache: true\n  cache_params: {{type: redis, host: h}}\n\
             general_settings:\n  alerting: [slack]\n  master_key: sk-1\n"
        );
        let l = load(&yaml).unwrap();
        let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.debug_level",
                "router_settings.set_verbose",
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
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      rpm: -1\n      timeout: 0\n\
            \x20 - model_name: b\n    litellm_params:\n      model: gpt-4o\n      rpm: abc\n\
            router_settings:\n  routing_strategy: least-bsy\n  num_retries: x\n";
        let p = problems(yaml);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.rpm",
                "model_list[0].litellm_params.timeout",
                "model_list[1].litellm_params.rpm",
                "router_settings.num_retries",
                "router_settings.routing_strategy",
            ]
        );
        assert!(p[4].message.contains("did you mean 'least-busy'?"));
        assert_eq!(
            p[2].message,
            "invalid type: string \"abc\", expected a non-negative integer"
        );
    }

    #[test]
    fn unknown_keys_and_providers_warn_and_load() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: opnai/gpt-4\n      api_bse: http://x\n\
            router_settings:\n  routing_stratgy: least-busy\n\
            general_settings:\n  coordination_redis: {host: h}\n";
        let l = load(yaml).unwrap();
        let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.api_bse",
                "router_settings.routing_stratgy",
                "general_settings.coordination_redis",
                "model_list[0].litellm_params.model",
            ]
        );
        assert!(l.warnings[0].message.contains("did you mean 'api_base'?"));
        assert!(l.warnings[3].message.contains("did you mean 'openai'?"));
        assert_eq!(l.warnings[3].kind, WarningKind::Unusable);
        // The deployment loads; its requests fail (the router skips it).
        assert_eq!(l.config.model_list[0].litellm_params.model, "opnai/gpt-4");
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
    fn include_merges_files_as_litellm_does() {
        let files = |name: &str| match name {
            "models.yaml" => Ok(
                "model_list:\n  - {model_name: b, litellm_params: {model: openai/b}}\n\
                                 litellm_settings: {drop_params: false}\n\
                                 router_settings: {num_retries: 7}\n"
                    .to_string(),
            ),
            "more.yaml" => Ok(
                "model_list:\n  - {model_name: c, litellm_params: {model: openai/c}}\n".to_string(),
            ),
            other => Err(format!("{other}: no such file")),
        };
        let yaml = "include: [models.yaml, more.yaml]\n\
                    model_list:\n  - {model_name: a, litellm_params: {model: openai/a}}\n\
                    litellm_settings: {drop_params: true}\n";
        let l = load_str_with(yaml, &|_| None, Some(&files)).unwrap();
        let names: Vec<&str> = l
            .config
            .model_list
            .iter()
            .map(|d| d.model_name.as_str())
            .collect();
        // Lists extend; the config's own sections win; absent ones are filled.
        assert_eq!(names, ["a", "b", "c"]);
        assert!(l.config.litellm_settings.drop_params);
        assert_eq!(l.config.router_settings.num_retries, 7);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);

        let p = match load_str_with("include: missing.yaml\n", &|_| None, Some(&files)) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("a missing include must fail"),
        };
        assert_eq!(p[0].path, "include[missing.yaml]");
        assert!(p[0].message.contains("no such file"), "{}", p[0].message);
        // Without a reader (a config from S3): a warning, as before.
        let l = load_str_with_env("include: [models.yaml]\n", &|_| None).unwrap();
        assert_eq!(l.warnings[0].path, "include");
    }

    #[test]
    fn merge_keys_apply() {
        let yaml = "x-defaults: &defaults\n  api_base: https://example.openai.azure.com\n  api_version: '2024-06-01'\n  rpm: 60\n\
            model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      <<: *defaults\n      model: azure/gpt-4o-eu\n";
        // `x-defaults` is not a LiteLLM key: a warning; the anchor it holds still applies.
        let l = load(yaml).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].path, "x-defaults");
        assert_eq!(l.config.model_list[0].litellm_params.rpm, Some(60));

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
    fn environment_variables_scalars_become_strings() {
        let l = load("environment_variables:\n  PORT: 6379\n  SSL: true\n  HOST: h\n").unwrap();
        let ev = &l.config.environment_variables;
        assert_eq!(ev["PORT"].expose(), "6379");
        let l = load("environment_variables:\n  UNSET_ME: null\n  ALSO: ~\n").unwrap();
        assert!(l.config.environment_variables.is_empty());
        assert_eq!(ev["SSL"].expose(), "true");
        assert_eq!(ev["HOST"].expose(), "h");
    }
}
