//! A deployment as the router sees it: one `model_list` entry, resolved.

use crate::config::{DeploymentConfig, LitellmParams, ModelInfo};
use crate::pricing;
use crate::provider::ProviderKind;

/// One routable deployment of a model group.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stable id: `model_info.id`, else derived from the group, the model and its position.
    pub id: String,
    /// The model group (`model_name`) it serves.
    pub model_name: String,
    pub provider: ProviderKind,
    /// The model name sent upstream (the part after `provider/`).
    pub upstream_model: String,
    pub params: LitellmParams,
    pub info: ModelInfo,
    /// USD per input token: `model_info`, else the built-in price table, else unknown.
    pub input_cost_per_token: Option<f64>,
    /// USD per output token.
    pub output_cost_per_token: Option<f64>,
}

/// Why RouteIQ cannot call a deployment on `provider` with `params`, if it cannot: a provider
/// RouteIQ does not implement (or nobody knows), what the config loader found
/// (`params.unusable`: a bad `api_base`, no model name...), or a `litellm_params` value whose
/// `os.environ/` variable was not set at load. `mock_response` deployments always answer.
fn unusable_reason(provider: &ProviderKind, params: &LitellmParams) -> Option<String> {
    if params.mock_response.is_some() {
        return None;
    }
    if let ProviderKind::Unsupported(p) = provider {
        return Some(if ProviderKind::is_litellm_provider(p) {
            format!("provider '{p}' is not supported by RouteIQ yet")
        } else {
            format!("provider '{p}' is unknown (neither RouteIQ nor LiteLLM knows it)")
        });
    }
    if let Some(why) = &params.unusable {
        return Some(why.clone());
    }
    if params.unresolved_env.is_empty() {
        return None;
    }
    let unset: Vec<String> = params
        .unresolved_env
        .iter()
        .map(|u| format!("{} (os.environ/{})", u.key, u.var))
        .collect();
    Some(format!(
        "{} not set when the config was loaded",
        unset.join(", ")
    ))
}

impl Deployment {
    /// The provider region it runs in: `region_name`, else `aws_region_name`.
    pub fn region(&self) -> Option<&str> {
        self.params
            .region_name
            .as_deref()
            .or(self.params.aws.region_name.as_deref())
    }

    /// Builds the runtime deployment for `model_list[index]`.
    /// `litellm_params.model` must already have been validated by the config loader;
    /// an unknown prefix here is treated as unsupported.
    pub fn from_config(index: usize, cfg: &DeploymentConfig) -> Deployment {
        let params = &cfg.litellm_params;
        let (provider, upstream_model) =
            ProviderKind::parse_with(&params.model, params.custom_llm_provider.as_deref())
                .unwrap_or_else(|p| {
                    (
                        ProviderKind::Unsupported(p),
                        cfg.litellm_params.model.clone(),
                    )
                });
        let id = cfg.model_info.id.clone().unwrap_or_else(|| {
            format!(
                "{}-{}-{index}",
                sanitize(&cfg.model_name),
                sanitize(&cfg.litellm_params.model)
            )
        });
        let table = pricing::lookup(
            cfg.model_info
                .base_model
                .as_deref()
                .unwrap_or(upstream_model.as_str()),
        );
        let mut params = cfg.litellm_params.clone();
        params.unusable = unusable_reason(&provider, &params);
        Deployment {
            id,
            model_name: cfg.model_name.clone(),
            provider,
            upstream_model,
            params,
            info: cfg.model_info.clone(),
            input_cost_per_token: cfg
                .model_info
                .input_cost_per_token
                .or(table.map(|p| p.input_cost_per_token)),
            output_cost_per_token: cfg
                .model_info
                .output_cost_per_token
                .or(table.map(|p| p.output_cost_per_token)),
        }
    }

    /// Why RouteIQ cannot call this deployment, if it cannot (see [`unusable_reason`]). The
    /// router skips such deployments; a group with nothing else answers with these reasons.
    /// Decided once, when the deployment is built: this runs for every request.
    pub fn unusable(&self) -> Option<&str> {
        self.params.unusable.as_deref()
    }

    /// LiteLLM's `order`: lower first; unset after every set order.
    pub fn order(&self) -> u32 {
        self.params.order.unwrap_or(u32::MAX)
    }

    /// Cost in USD of a call with these token counts, when prices are known.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Option<f64> {
        Some(
            self.input_cost_per_token? * prompt_tokens as f64
                + self.output_cost_per_token? * completion_tokens as f64,
        )
    }

    /// Sum of input and output price per token (LiteLLM's cost-based ordering key).
    pub fn unit_cost(&self) -> Option<f64> {
        Some(self.input_cost_per_token? + self.output_cost_per_token?)
    }

    /// `model_info.mode`, defaulting to `chat`.
    pub fn mode(&self) -> &str {
        self.info.mode.as_deref().unwrap_or("chat")
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
