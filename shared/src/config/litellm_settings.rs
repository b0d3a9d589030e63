//! `litellm_settings`: LiteLLM's library-level settings. RouteIQ acts on `drop_params`,
//! `request_timeout`, `json_logs`, `set_verbose`, and on the routing keys it shares with
//! `router_settings` (read there, where `router_settings` wins).

use std::time::Duration;

use serde::Deserialize;

use super::coerce;
use super::load::{Above, Loader};
use super::router_settings::RawFallback;
use super::schema::{MapSchema, Node, Unknown};

/// `litellm_settings` (documented list: LiteLLM's litellm_settings reference and the settings
/// its proxy docs use). The routing keys fill `RouterSettings` where `router_settings` does not
/// set them.
pub(in crate::config) static LITELLM_SETTINGS: MapSchema = MapSchema {
    implemented: &[
        ("num_retries", Node::Any),
        ("request_timeout", Node::Any),
        ("fallbacks", Node::Any),
        ("context_window_fallbacks", Node::Any),
        ("content_policy_fallbacks", Node::Any),
        ("default_fallbacks", Node::Any),
        ("allowed_fails", Node::Any),
        ("cooldown_time", Node::Any),
        ("disable_cooldowns", Node::Any),
        ("drop_params", Node::Any),
        ("json_logs", Node::Any),
        ("set_verbose", Node::Any),
        ("forward_traceparent_to_llm_provider", Node::Any),
        ("budget_exceeded_status_code", Node::Any),
    ],
    documented: &[
        // Newer LiteLLM settings (its example configs and docs use them).
        "websearch_interception_params",
        "code_interpreter_interception_params",
        "vertex_ai_safety_settings",
        "priority_reservation",
        "priority_reservation_settings",
        "mcp_semantic_tool_filter",
        "global_prompt_directory",
        "success_callback",
        "failure_callback",
        "callbacks",
        "service_callbacks",
        "turn_off_message_logging",
        "redact_user_api_key_info",
        "redact_messages_in_exceptions",
        "langfuse_default_tags",
        "force_ipv4",
        "modify_params",
        "enable_preview_features",
        "LITELLM_DISABLE_STOP_SEQUENCE_LIMIT",
        "mcp_aliases",
        "cache",
        "cache_params",
        "disable_end_user_cost_tracking",
        "disable_end_user_cost_tracking_prometheus_only",
        "key_generation_settings",
        "disable_add_transform_inline_image_block",
        "use_chat_completions_url_for_anthropic_messages",
        "disable_hf_tokenizer_download",
        "enable_json_schema_validation",
        "enable_key_alias_format_validation",
        "disable_copilot_system_to_assistant",
        "default_team_settings",
        "default_internal_user_params",
        "default_key_generate_params",
        "upperbound_key_generate_params",
        "ssl_verify",
        "telemetry",
        "model_group_settings",
        "public_model_groups",
        "return_response_headers",
        "enable_loadbalancing_on_batch_endpoints",
        "prometheus_initialize_budget_metrics",
        "custom_provider_map",
    ],
    free: &[],
    unenforceable: &[
        ("max_budget", "spend (the proxy's budget)"),
        ("budget_duration", "spend (the proxy's budget period)"),
        ("max_end_user_budget", "spend (each end user's budget)"),
        (
            "max_internal_user_budget",
            "spend (each internal user's budget)",
        ),
        (
            "internal_user_budget_duration",
            "spend (the internal users' budget period)",
        ),
        (
            "guardrails",
            "requests (guardrails checking prompts and answers)",
        ),
    ],
    unknown: Unknown::Warn,
};

/// `litellm_settings` keys RouteIQ acts on beyond the routing ones merged into [`RouterSettings`].
#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// Drop OpenAI params a provider does not support instead of failing.
    pub drop_params: bool,
    /// LiteLLM `request_timeout`.
    pub request_timeout: Option<Duration>,
    pub json_logs: bool,
    pub set_verbose: bool,
    /// `forward_traceparent_to_llm_provider`: the client's W3C `traceparent` (and
    /// `tracestate`) go on to the provider (not to Bedrock, whose SDK sets its own headers).
    pub forward_traceparent: bool,
    /// The status of a refusal for a spent budget (virtual keys); `None`: RouteIQ's default.
    pub budget_exceeded_status_code: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of litellm_settings")]
pub(in crate::config) struct RawLitellmSettings {
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub(in crate::config) num_retries: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub(in crate::config) request_timeout: Option<f64>,
    #[serde(default)]
    pub(in crate::config) fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub(in crate::config) context_window_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub(in crate::config) content_policy_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub(in crate::config) default_fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub(in crate::config) allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub(in crate::config) cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) disable_cooldowns: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) drop_params: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) json_logs: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) set_verbose: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) forward_traceparent_to_llm_provider: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub(in crate::config) budget_exceeded_status_code: Option<u32>,
}

impl RawLitellmSettings {
    /// The keys RouteIQ acts on beyond the routing ones (those are read by
    /// `RawRouterSettings::load`).
    pub(in crate::config) fn load(&self, cx: &mut Loader) -> LitellmSettings {
        let request_timeout = cx
            .seconds(
                "litellm_settings.request_timeout",
                self.request_timeout,
                Above::Zero,
            )
            .ok()
            .flatten();
        let budget_exceeded_status_code = self.budget_exceeded_status_code.and_then(|c| {
            let ok = (400..=599).contains(&c);
            if !ok {
                cx.problem(
                    "litellm_settings.budget_exceeded_status_code",
                    "must be an HTTP error status (400 to 599)",
                );
            }
            u16::try_from(c).ok().filter(|_| ok)
        });
        LitellmSettings {
            budget_exceeded_status_code,
            drop_params: self.drop_params.unwrap_or(false),
            request_timeout,
            json_logs: self.json_logs.unwrap_or(false),
            set_verbose: self.set_verbose.unwrap_or(false),
            forward_traceparent: self.forward_traceparent_to_llm_provider.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LITELLM_SETTINGS, RawLitellmSettings};
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawLitellmSettings>(&LITELLM_SETTINGS);
    }

    use std::time::Duration;

    use crate::config::load::testing::{load, problems};

    #[test]
    fn settings_load_and_are_checked() {
        let l = load(
            "litellm_settings:\n  drop_params: 'yes'\n  json_logs: False\n  set_verbose: on\n  request_timeout: 12\n",
        )
        .unwrap();
        let s = &l.config.litellm_settings;
        assert!(s.drop_params && !s.json_logs && s.set_verbose);
        assert_eq!(s.request_timeout, Some(Duration::from_secs(12)));
        let p = problems("litellm_settings:\n  drop_params: 3\n  request_timeout: -1\n");
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "litellm_settings.drop_params",
                "litellm_settings.request_timeout"
            ]
        );
    }
}
