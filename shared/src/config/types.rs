//! Runtime configuration: what `load()` produces from a LiteLLM `config.yaml` after
//! validation, defaults and `os.environ/NAME` resolution. Everything here is checked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::SecretString;
use crate::ml::MlStrategyName;
use crate::ml::routing::MlSettings;
use crate::router::experiment::ExperimentSettings;

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

/// One entry of `model_list`: a deployment serving the group `model_name`.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    pub model_info: ModelInfo,
}

#[derive(Debug, Clone, Default)]
pub struct LitellmParams {
    /// `provider/model`, e.g. `openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest`.
    /// A bare name (`gpt-4o`) means OpenAI, as in LiteLLM.
    pub model: String,
    pub api_key: Option<SecretString>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub weight: Option<f64>,
    pub timeout: Option<Duration>,
    /// For streaming requests (time to first byte and between chunks).
    pub stream_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    /// Answer with this text instead of calling the provider.
    pub mock_response: Option<String>,
    /// The provider region the deployment runs in (LiteLLM's `region_name`; for `bedrock/`
    /// deployments `aws_region_name` counts too): edge hints prefer deployments in the
    /// region nearest the client among equivalent ones.
    pub region_name: Option<String>,
    /// AWS settings (`bedrock/` deployments).
    pub aws: AwsParams,
    /// Other parameters: merged into every upstream request body for this deployment
    /// (e.g. `temperature`, `max_tokens`, provider extras).
    pub extra: Map<String, Value>,
}

/// `aws_*` keys of `litellm_params`. Unset keys fall back to the standard AWS configuration
/// chain (environment, profile, the Lambda function's role).
#[derive(Debug, Clone, Default)]
pub struct AwsParams {
    pub region_name: Option<String>,
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
    pub profile_name: Option<String>,
    /// Endpoint override for the Bedrock runtime (VPC endpoints, emulators).
    pub bedrock_runtime_endpoint: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub id: Option<String>,
    /// `chat` (default), `completion`, `embedding`.
    pub mode: Option<String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub base_model: Option<String>,
    pub metadata: Map<String, Value>,
    /// Other `model_info` keys, kept for `/v1/model/info`-style reporting.
    pub extra: Map<String, Value>,
}

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

/// Per-error-class retry counts (`router_settings.retry_policy`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy_violation: Option<u32>,
    pub internal_server: Option<u32>,
}

/// A fallback rule: requests for `from` that fail go to `to`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackRule {
    pub from: String,
    pub to: Vec<String>,
}

/// `router_settings` merged with the routing keys LiteLLM also accepts in `litellm_settings`
/// (`router_settings` wins where both are set).
#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub routing_strategy: RoutingStrategyName,
    pub routing_strategy_args: RoutingStrategyArgs,
    /// alias -> model group.
    pub model_group_alias: BTreeMap<String, String>,
    /// Aliases not listed by `/v1/models` (LiteLLM's `{model, hidden: true}` form).
    pub hidden_aliases: Vec<String>,
    pub num_retries: u32,
    pub retry_policy: RetryPolicy,
    /// Minimum wait before a retry of the same deployment (LiteLLM `retry_after`).
    pub retry_after: Duration,
    pub allowed_fails: u32,
    /// How long a deployment stays out of rotation after too many failures.
    pub cooldown_time: Duration,
    pub disable_cooldowns: bool,
    /// Default request timeout when a deployment sets none.
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    pub fallbacks: Vec<FallbackRule>,
    pub content_policy_fallbacks: Vec<FallbackRule>,
    pub context_window_fallbacks: Vec<FallbackRule>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: u32,
    /// `deployment_affinity_ttl_seconds`: conversation affinity on, pins kept this long
    /// (sliding); `None`: off (see [`crate::router::affinity`]).
    pub deployment_affinity_ttl: Option<Duration>,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            routing_strategy: RoutingStrategyName::SimpleShuffle,
            routing_strategy_args: RoutingStrategyArgs::default(),
            model_group_alias: BTreeMap::new(),
            hidden_aliases: Vec::new(),
            num_retries: 2,
            retry_policy: RetryPolicy::default(),
            retry_after: Duration::ZERO,
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            disable_cooldowns: false,
            timeout: None,
            stream_timeout: None,
            fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            default_fallbacks: Vec::new(),
            max_fallbacks: 5,
            deployment_affinity_ttl: None,
        }
    }
}

/// `litellm_settings` keys RouteIQ acts on beyond the routing ones merged into [`RouterSettings`].
#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// Drop OpenAI params a provider does not support instead of failing.
    pub drop_params: bool,
    /// LiteLLM `request_timeout`.
    pub request_timeout: Option<Duration>,
    pub json_logs: bool,
    pub set_verbose: bool,
}

/// `general_settings`.
#[derive(Debug, Clone)]
pub struct GeneralSettings {
    pub master_key: Option<SecretString>,
    pub max_request_size_mb: f64,
    /// Largest upstream answer (non-streamed body) relayed, in MB; larger ones are a 502.
    pub max_response_size_mb: f64,
}

/// The longest duration a config key takes (one year): a longer one is a config error, so
/// nothing downstream ever computes with an absurd duration.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest size in MB a config key takes (1 TiB).
pub const MAX_SIZE_MB: f64 = 1024.0 * 1024.0;

/// Default of `general_settings.max_response_size_mb`.
pub const DEFAULT_MAX_RESPONSE_SIZE_MB: f64 = 64.0;

impl Default for GeneralSettings {
    fn default() -> Self {
        GeneralSettings {
            master_key: None,
            max_request_size_mb: 10.0,
            max_response_size_mb: DEFAULT_MAX_RESPONSE_SIZE_MB,
        }
    }
}

/// A key LiteLLM documents that RouteIQ loads but does not act on yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// YAML path, e.g. `litellm_settings.callbacks`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The result of loading: the config plus one warning per unimplemented-but-documented key.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip() {
        for (name, strategy) in RoutingStrategyName::ALL {
            assert_eq!(strategy.as_str(), name);
            assert_eq!(RoutingStrategyName::parse(name), Some(strategy));
        }
    }
}
