//! LiteLLM-compatible configuration (`config.yaml`), one module per section.
//!
//! - [`load`]: the pipeline. The YAML is read into a `serde_yaml_ng::Value`, every key is
//!   checked against the [`schema`] (documented-but-unimplemented LiteLLM keys load with one
//!   warning each; unknown keys are problems with a "did you mean"), `os.environ/NAME`
//!   references are resolved, then each section is deserialized into its raw type through
//!   `serde_path_to_error` and validated by its `load` into its runtime type. Every problem
//!   is collected, not only the first.
//! - One module per section, each with its key list (schema), raw type, runtime type and
//!   `load` (tensorzero's `UninitializedX::load`): [`model_list`] (with `litellm_params` and
//!   `model_info`), [`router_settings`], [`litellm_settings`], [`general_settings`].
//! - [`coerce`]: the lenient scalars the raw types share; [`secret`]: [`SecretString`].
//!
//! Adding a key to a section touches that section's module only (schema entry, raw field,
//! runtime field, `load`), plus the code that acts on it.

mod coerce;
mod general_settings;
mod litellm_settings;
mod load;
mod model_list;
mod router_settings;
mod schema;
mod secret;

use std::collections::BTreeMap;
use std::time::Duration;

pub use general_settings::jwt_auth::{
    DEFAULT_ADMIN_JWT_SCOPE, DEFAULT_PUBLIC_KEY_STALE_TTL, DEFAULT_PUBLIC_KEY_TTL,
};
pub use general_settings::{DEFAULT_MAX_RESPONSE_SIZE_MB, GeneralSettings, JwtAuthSettings};
pub use litellm_settings::LitellmSettings;
pub use load::{IncludeReader, load_str, load_str_with, load_str_with_env};
pub use model_list::{
    AdaptivePreferences, AdaptiveRouterConfig, AutoRouterConfig, AwsParams, ComplexityRouterConfig,
    DeploymentConfig, LitellmParams, ModelInfo, SemanticRoute, SemanticRouterConfig, UnresolvedEnv,
    VertexParams,
};
pub use router_settings::{
    DEFAULT_REDIS_PORT, FallbackRule, RedisSettings, RedisTarget, RetryPolicy, RouterSettings,
    RoutingStrategyArgs, RoutingStrategyName,
};
pub use secret::SecretString;

/// The whole, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub model_list: Vec<DeploymentConfig>,
    pub router_settings: RouterSettings,
    pub general_settings: GeneralSettings,
    /// `litellm_settings` keys RouteIQ acts on (the rest are warned about at load).
    pub litellm_settings: LitellmSettings,
    /// `environment_variables`: values `os.environ/NAME` resolves to before the process
    /// environment, and that providers read their default keys from (e.g. `OPENAI_API_KEY`).
    pub environment_variables: BTreeMap<String, SecretString>,
}

/// The result of loading: the config plus one warning per unimplemented-but-documented key.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

impl LoadedConfig {
    /// Strict loading (`routeiq check --strict`, `ROUTEIQ_STRICT_CONFIG=true`): every warning
    /// becomes an error, for CI and for operators who want nothing ignored.
    pub fn strict(self) -> Result<LoadedConfig, ConfigError> {
        if self.warnings.is_empty() {
            return Ok(self);
        }
        Err(ConfigError::Invalid {
            problems: self
                .warnings
                .into_iter()
                .map(|w| {
                    ConfigProblem::new(
                        w.path,
                        format!("{} (an error under strict loading)", w.message),
                    )
                })
                .collect(),
            warnings: Vec::new(),
        })
    }
}

/// The longest duration a config key takes (one year): a longer one is a config error, so
/// nothing downstream ever computes with an absurd duration.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest size in MB a config key takes (1 TiB).
pub const MAX_SIZE_MB: f64 = 1024.0 * 1024.0;

/// One problem found while loading, with the YAML path it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// e.g. `model_list[2].litellm_params.api_bse`
    pub path: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same problem with its path read relative to `prefix` (a validator of a nested
    /// value reports paths inside that value; the caller knows where the value sits).
    /// An empty path is the value itself.
    pub fn under(self, prefix: &str) -> Self {
        let path = match (prefix.is_empty(), self.path.is_empty()) {
            (true, _) => self.path,
            (false, true) => prefix.to_string(),
            (false, false) if self.path.starts_with('[') => format!("{prefix}{}", self.path),
            (false, false) => format!("{prefix}.{}", self.path),
        };
        ConfigProblem { path, ..self }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Something in the config RouteIQ loads but does not act on, or acts on with a caveat. Each
/// is logged at start-up and on reload, listed by `GET /config/warnings`, and an error under
/// `--strict` / `ROUTEIQ_STRICT_CONFIG=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// YAML path, e.g. `litellm_settings.callbacks`.
    pub path: String,
    pub kind: WarningKind,
    pub message: String,
}

impl ConfigWarning {
    pub fn new(path: impl Into<String>, kind: WarningKind, message: impl Into<String>) -> Self {
        ConfigWarning {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

/// Why a [`ConfigWarning`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A key LiteLLM documents that RouteIQ does not implement: ignored.
    NotImplemented,
    /// A key neither LiteLLM's docs nor RouteIQ know (maybe newer than RouteIQ, maybe a
    /// typo): ignored.
    Unknown,
    /// A deployment RouteIQ cannot call (its provider): it loads, and requests routed only to
    /// it get a clear error.
    Unusable,
    /// A deployment's `os.environ/` value that is not set: the deployment loads without it
    /// (LiteLLM's behaviour), and requests routed only to it get a clear error.
    UnsetVariable,
    /// A value RouteIQ accepts with a caveat.
    Caveat,
}

impl WarningKind {
    /// Stable label for `GET /config/warnings` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::NotImplemented => "not_implemented",
            WarningKind::Unknown => "unknown_key",
            WarningKind::Unusable => "unusable_deployment",
            WarningKind::UnsetVariable => "unset_variable",
            WarningKind::Caveat => "caveat",
        }
    }
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config did not load. Lists every problem found, not only the first.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    #[error("config has {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        problems: Vec<ConfigProblem>,
        /// What else was found (reported beside the problems, e.g. by `routeiq check`).
        warnings: Vec<ConfigWarning>,
    },
}

impl ConfigError {
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Yaml(_) => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    pub fn warnings(&self) -> &[ConfigWarning] {
        match self {
            ConfigError::Yaml(_) => &[],
            ConfigError::Invalid { warnings, .. } => warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_turns_warnings_into_errors() {
        let yaml = "litellm_settings:\n  success_callback: [langfuse]\n";
        let loaded = load_str_with_env(yaml, &|_| None).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        let e = loaded.strict().unwrap_err();
        assert_eq!(e.problems()[0].path, "litellm_settings.success_callback");
        assert!(
            e.problems()[0]
                .message
                .ends_with("(an error under strict loading)")
        );
        let clean = load_str_with_env("model_list: []\n", &|_| None).unwrap();
        assert!(clean.strict().is_ok());
    }

    #[test]
    fn problem_paths_nest_under_a_prefix() {
        let p = |path: &str| ConfigProblem::new(path, "m");
        assert_eq!(p("ttl").under("a.b").path, "a.b.ttl");
        assert_eq!(p("").under("a.b").path, "a.b");
        assert_eq!(p("[2].x").under("a").path, "a[2].x");
        assert_eq!(p("x").under("").path, "x");
    }
}
