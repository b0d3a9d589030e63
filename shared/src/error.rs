//! The routing crate's error type.

use crate::config::ConfigError;

/// Everything the routing core can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request names a model that is neither a model group nor an alias.
    #[error("model '{model}' not found; available models: {}", .available.join(", "))]
    UnknownModel {
        model: String,
        available: Vec<String>,
    },
    /// Every deployment of the group is cooling down or over its rpm/tpm limit.
    #[error("no deployments available for model group '{group}': {reason}")]
    NoDeploymentAvailable {
        group: String,
        reason: String,
        /// Milliseconds until the first deployment becomes available again, when known.
        retry_after_ms: Option<u64>,
    },
    /// Every available deployment of the group has an open circuit breaker.
    #[error(
        "no deployments available for model group '{group}': the circuit breaker of all {deployments} deployment(s) is open after repeated failures"
    )]
    CircuitOpen {
        group: String,
        /// How many deployments were skipped.
        deployments: usize,
        /// Milliseconds until the first circuit lets trial requests through.
        retry_after_ms: Option<u64>,
    },
    /// None of the group's deployments can be called (a provider RouteIQ does not implement,
    /// an `os.environ/` value that was not set); `reasons` says why, one per deployment.
    #[error("model group '{group}' has no deployment RouteIQ can call: {}", .reasons.join("; "))]
    NoUsableDeployment { group: String, reasons: Vec<String> },
    /// The state backend failed (network, throttling, corrupt value).
    #[error("state store error: {0}")]
    State(String),
}
