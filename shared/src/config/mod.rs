//! LiteLLM-compatible configuration (`config.yaml`).
//!
//! Loading is two-staged, as in tensorzero: the YAML is read into a `serde_yaml_ng::Value`,
//! `os.environ/NAME` references are resolved, every key is checked against the schema of keys
//! RouteIQ implements and keys LiteLLM documents (the latter load with one warning each; keys
//! neither knows are errors with a "did you mean"), then the remaining tree is deserialized
//! into raw types with `deny_unknown_fields` through `serde_path_to_error`, and finally
//! validated into the runtime types of [`types`].

mod load;
mod raw;
mod schema;
mod secret;
mod types;

pub use load::{load_str, load_str_with_env};
pub use secret::SecretString;
pub use types::*;

/// One problem found while loading, with the YAML path it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// e.g. `model_list[2].litellm_params.api_bse`
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config did not load. Lists every problem found, not only the first.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    #[error("config has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

impl ConfigError {
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Yaml(_) => &[],
            ConfigError::Invalid(p) => p,
        }
    }
}
