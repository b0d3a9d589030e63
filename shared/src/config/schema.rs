//! Key checking: the schema of the keys a LiteLLM `config.yaml` may contain.
//!
//! Every mapping of the config is walked against a [`MapSchema`] that lists
//!
//! * the keys RouteIQ implements (they map to the runtime types of [`super::types`]),
//! * the keys LiteLLM documents but RouteIQ does not implement yet: they are removed from the
//!   tree with one [`ConfigWarning`] each,
//! * for `model_info`, the keys LiteLLM documents as free-form model metadata: they are kept
//!   (moved into the collected extras) without a warning,
//!
//! and what to do with keys neither knows ([`Unknown`]): a [`ConfigProblem`] with a "did you
//! mean" (most sections), or moved into the collected extras (`litellm_params`, whose unknown
//! keys LiteLLM forwards to the provider; `model_info`; `routing_strategy_args`) unless the key
//! is a likely typo of a known key.
//!
//! The documented-key lists follow LiteLLM's "All settings" reference
//! (`docs/proxy/config_settings.md`), its proxy config docs, and its router types
//! (`GenericLiteLLMParams`, `ModelInfo`, `RetryPolicy`).

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::{ConfigProblem, ConfigWarning};

/// The message of the warning for a documented LiteLLM key RouteIQ ignores.
pub(super) const NOT_IMPLEMENTED: &str = "LiteLLM setting not implemented by RouteIQ yet; ignored";

/// What a key's value is checked as.
pub(super) enum Node {
    /// Not walked further (scalars, free-form mappings, lists of scalars); the raw
    /// deserialization checks its type.
    Any,
    /// A mapping checked against a schema.
    Map(&'static MapSchema),
    /// A list whose mapping items are checked against a schema.
    ListOf(&'static MapSchema),
}

/// What happens to a key that is neither implemented nor documented.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    /// A problem, with a "did you mean" over the known keys.
    Deny,
    /// Moved into the collected extras, unless it is a likely typo of a known key
    /// (then a problem with a "did you mean").
    CollectUnlessTypo,
    /// Moved into the collected extras.
    Collect,
}

/// The keys of one kind of mapping.
pub(super) struct MapSchema {
    /// Keys RouteIQ implements, with how their values are checked.
    pub implemented: &'static [(&'static str, Node)],
    /// Keys LiteLLM documents that RouteIQ ignores (removed, one warning each).
    pub documented: &'static [&'static str],
    /// Keys LiteLLM documents that are kept as free-form extras without a warning.
    pub free: &'static [&'static str],
    pub unknown: Unknown,
}

impl MapSchema {
    fn implemented_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.implemented.iter().map(|(k, _)| *k)
    }

    fn known_names(&self) -> Vec<&'static str> {
        self.implemented_names()
            .chain(self.documented.iter().copied())
            .chain(self.free.iter().copied())
            .collect()
    }
}

/// The result of [`check`].
#[derive(Debug, Default)]
pub(super) struct CheckOutcome {
    pub warnings: Vec<ConfigWarning>,
    pub problems: Vec<ConfigProblem>,
    /// Keys moved out of `Collect*` mappings, by the path of the mapping they were in
    /// (e.g. `model_list[0].litellm_params`).
    pub extras: BTreeMap<String, Mapping>,
}

/// Walks the whole config tree against [`TOP`], removing documented-but-unimplemented keys,
/// unknown keys and collected extras from it.
pub(super) fn check(root: &mut Mapping) -> CheckOutcome {
    let mut out = CheckOutcome::default();
    walk_map(root, &TOP, "", &mut out);
    out
}

/// `parent.key`, or `key` at the top level.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// How a mapping key is shown in paths; `None` for keys that are not scalars.
pub(super) fn key_name(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

fn walk_map(map: &mut Mapping, schema: &MapSchema, path: &str, out: &mut CheckOutcome) {
    let keys: Vec<Value> = map.keys().cloned().collect();
    for key in keys {
        let Some(name) = key_name(&key) else {
            out.problems.push(ConfigProblem {
                path: if path.is_empty() {
                    "<root>".to_string()
                } else {
                    path.to_string()
                },
                message: "mapping keys must be strings".to_string(),
            });
            map.shift_remove(&key);
            continue;
        };
        let child = join(path, &name);
        let is_string_key = matches!(key, Value::String(_));
        if let Some((_, node)) = schema
            .implemented
            .iter()
            .find(|(k, _)| is_string_key && *k == name)
        {
            match (node, map.get_mut(&key)) {
                (Node::Map(s), Some(Value::Mapping(m))) => walk_map(m, s, &child, out),
                (Node::ListOf(s), Some(Value::Sequence(items))) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Mapping(m) = item {
                            walk_map(m, s, &format!("{child}[{i}]"), out);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        if is_string_key && schema.documented.contains(&name.as_str()) {
            map.shift_remove(&key);
            out.warnings.push(ConfigWarning {
                path: child,
                message: NOT_IMPLEMENTED.to_string(),
            });
            continue;
        }
        let collect = |map: &mut Mapping, out: &mut CheckOutcome| {
            if let Some(v) = map.shift_remove(&key) {
                out.extras
                    .entry(path.to_string())
                    .or_default()
                    .insert(Value::String(name.clone()), v);
            }
        };
        if is_string_key && schema.free.contains(&name.as_str()) {
            collect(map, out);
            continue;
        }
        match schema.unknown {
            Unknown::Collect => collect(map, out),
            Unknown::CollectUnlessTypo => {
                let known = schema.known_names();
                match likely_typo(&name, &known) {
                    Some(s) => {
                        map.shift_remove(&key);
                        out.problems.push(ConfigProblem {
                            path: child,
                            message: format!("unknown key '{name}'; did you mean '{s}'?"),
                        });
                    }
                    None => collect(map, out),
                }
            }
            Unknown::Deny => {
                map.shift_remove(&key);
                let known = schema.known_names();
                out.problems.push(ConfigProblem {
                    path: child,
                    message: unknown_message("key", &name, &known),
                });
            }
        }
    }
}

/// `unknown <what> '<name>'`, plus `; did you mean '<x>'?` when a candidate is close.
pub(super) fn unknown_message(what: &str, name: &str, candidates: &[&str]) -> String {
    match suggest(name, candidates) {
        Some(s) => format!("unknown {what} '{name}'; did you mean '{s}'?"),
        None => format!("unknown {what} '{name}'"),
    }
}

/// The candidate nearest to `name`, if reasonably close (for "did you mean").
pub(super) fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, f64, &'a str)> = None;
    for &c in candidates {
        let cl = c.to_lowercase();
        let d = strsim::levenshtein(&lower, &cl);
        let jw = strsim::jaro_winkler(&lower, &cl);
        let shorter = lower.chars().count().min(cl.chars().count());
        let max_d = (shorter / 3).clamp(1, 3);
        // Never suggest a candidate that shares (almost) nothing with the name.
        if d < shorter.max(2) && (d <= max_d || jw >= 0.88) {
            let better = match best {
                None => true,
                Some((bd, bjw, _)) => d < bd || (d == bd && jw > bjw),
            };
            if better {
                best = Some((d, jw, c));
            }
        }
    }
    best.map(|(_, _, c)| c)
}

/// For mappings whose unknown keys are passed through: is `name` a likely typo of one of
/// the known keys? Edit distance <= 2 (<= 1 when either key is 4 characters or shorter), or
/// Jaro-Winkler >= 0.9 with an edit distance of at most a third of the key.
pub(super) fn likely_typo<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &k in known {
        let d = strsim::levenshtein(&lower, k);
        if d == 0 {
            // Differs only in case: certainly meant as this key.
            return Some(k);
        }
        let shorter = lower.chars().count().min(k.chars().count());
        let by_distance = if shorter <= 4 { d <= 1 } else { d <= 2 };
        let by_jw = strsim::jaro_winkler(&lower, k) >= 0.9 && d * 3 <= shorter;
        if (by_distance || by_jw) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

// ---------------------------------------------------------------------------------------------
// The schema.
// ---------------------------------------------------------------------------------------------

/// The top level of `config.yaml`.
pub(super) static TOP: MapSchema = MapSchema {
    implemented: &[
        ("model_list", Node::ListOf(&DEPLOYMENT)),
        ("router_settings", Node::Map(&ROUTER_SETTINGS)),
        ("litellm_settings", Node::Map(&LITELLM_SETTINGS)),
        ("general_settings", Node::Map(&GENERAL_SETTINGS)),
        ("environment_variables", Node::Any),
    ],
    documented: &[
        "include",
        "callback_settings",
        "guardrails",
        "credential_list",
        "files_settings",
        "assistant_settings",
        "finetune_settings",
        "mcp_servers",
        "search_tools",
        "vector_store_registry",
        "prompts",
    ],
    free: &[],
    unknown: Unknown::Deny,
};

/// One `model_list` entry.
pub(super) static DEPLOYMENT: MapSchema = MapSchema {
    implemented: &[
        ("model_name", Node::Any),
        ("litellm_params", Node::Map(&LITELLM_PARAMS)),
        ("model_info", Node::Map(&MODEL_INFO)),
    ],
    documented: &[],
    free: &[],
    unknown: Unknown::Deny,
};

/// `model_list[i].litellm_params`. Unknown keys are forwarded to the provider, as LiteLLM does
/// (`temperature`, `max_tokens`, `extra_body`, ...).
pub(super) static LITELLM_PARAMS: MapSchema = MapSchema {
    implemented: &[
        ("model", Node::Any),
        ("api_key", Node::Any),
        ("api_base", Node::Any),
        ("api_version", Node::Any),
        ("organization", Node::Any),
        ("rpm", Node::Any),
        ("tpm", Node::Any),
        ("weight", Node::Any),
        ("timeout", Node::Any),
        ("stream_timeout", Node::Any),
        ("max_retries", Node::Any),
        ("mock_response", Node::Any),
        ("input_cost_per_token", Node::Any),
        ("output_cost_per_token", Node::Any),
        ("aws_access_key_id", Node::Any),
        ("aws_secret_access_key", Node::Any),
        ("aws_session_token", Node::Any),
        ("aws_region_name", Node::Any),
        ("region_name", Node::Any),
        ("aws_profile_name", Node::Any),
        ("aws_bedrock_runtime_endpoint", Node::Any),
    ],
    documented: &[
        // Routing and limits.
        "custom_llm_provider",
        "base_model",
        "itpm",
        "otpm",
        "order",
        "max_parallel_requests",
        "num_retries",
        "cooldown_time",
        "tags",
        "tag_regex",
        "max_budget",
        "budget_duration",
        "default_api_key_tpm_limit",
        "default_api_key_rpm_limit",
        "keepalive_seconds",
        "allow_client_keepalive_override",
        "provider_affinity_header",
        "drop_params",
        "additional_drop_params",
        "configurable_clientside_auth_params",
        "litellm_credential_name",
        "litellm_trace_id",
        "max_file_size_mb",
        "use_in_pass_through",
        "use_litellm_proxy",
        "use_chat_completions_api",
        "merge_reasoning_content_in_choices",
        "model_info",
        "auto_router_config_path",
        "auto_router_config",
        "auto_router_default_model",
        "auto_router_embedding_model",
        "vector_store_id",
        // Pricing (beyond input/output per token).
        "input_cost_per_second",
        "output_cost_per_second",
        "input_cost_per_pixel",
        "output_cost_per_pixel",
        "input_cost_per_token_batches",
        "output_cost_per_token_batches",
        "cache_creation_input_token_cost",
        "cache_read_input_token_cost",
        // Azure.
        "azure_ad_token",
        "azure_ad_token_provider",
        "tenant_id",
        "client_id",
        "client_secret",
        "azure_scope",
        "azure_username",
        "azure_password",
        // Vertex AI.
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "vertex_ai_project",
        "vertex_ai_location",
        // AWS Bedrock / SageMaker.
        "aws_session_name",
        "aws_role_name",
        "aws_web_identity_token",
        "aws_sts_endpoint",
        "aws_external_id",
        "s3_bucket_name",
        "gcs_bucket_name",
        "bucket_name",
        // IBM watsonx.
        "watsonx_region_name",
    ],
    free: &[],
    unknown: Unknown::CollectUnlessTypo,
};

/// `model_list[i].model_info`: free-form metadata in LiteLLM, so every key is kept.
pub(super) static MODEL_INFO: MapSchema = MapSchema {
    implemented: &[
        ("id", Node::Any),
        ("mode", Node::Any),
        ("input_cost_per_token", Node::Any),
        ("output_cost_per_token", Node::Any),
        ("max_tokens", Node::Any),
        ("max_input_tokens", Node::Any),
        ("max_output_tokens", Node::Any),
        ("base_model", Node::Any),
        ("metadata", Node::Any),
    ],
    documented: &[],
    free: &[
        "db_model",
        "updated_at",
        "updated_by",
        "created_at",
        "created_by",
        "tier",
        "team_id",
        "team_public_model_name",
        "access_groups",
        "blocked",
        "discoverable",
        "litellm_provider",
        "description",
        "tpm",
        "rpm",
        "supported_openai_params",
        "supports_function_calling",
        "supports_parallel_function_calling",
        "supports_tool_choice",
        "supports_vision",
        "supports_reasoning",
        "supports_web_search",
        "supports_url_context",
        "supports_response_schema",
        "supports_system_messages",
        "supports_prompt_caching",
        "supports_audio_input",
        "supports_audio_output",
        "supports_pdf_input",
        "supports_assistant_prefill",
        "supports_computer_use",
        "supports_embedding_image_input",
        "supports_native_streaming",
        "input_cost_per_second",
        "output_cost_per_second",
        "input_cost_per_pixel",
        "output_cost_per_pixel",
        "input_cost_per_character",
        "output_cost_per_character",
        "input_cost_per_image",
        "output_cost_per_image",
        "input_cost_per_audio_token",
        "output_cost_per_audio_token",
        "output_cost_per_reasoning_token",
        "input_cost_per_token_batches",
        "output_cost_per_token_batches",
        "cache_creation_input_token_cost",
        "cache_read_input_token_cost",
    ],
    unknown: Unknown::CollectUnlessTypo,
};

/// `router_settings` (documented list: LiteLLM's router_settings reference and
/// `UpdateRouterConfig`).
pub(super) static ROUTER_SETTINGS: MapSchema = MapSchema {
    implemented: &[
        ("routing_strategy", Node::Any),
        ("routing_strategy_args", Node::Map(&ROUTING_STRATEGY_ARGS)),
        ("model_group_alias", Node::Any),
        ("num_retries", Node::Any),
        ("retry_policy", Node::Map(&RETRY_POLICY)),
        ("retry_after", Node::Any),
        ("allowed_fails", Node::Any),
        ("cooldown_time", Node::Any),
        ("disable_cooldowns", Node::Any),
        ("timeout", Node::Any),
        ("stream_timeout", Node::Any),
        ("fallbacks", Node::Any),
        ("content_policy_fallbacks", Node::Any),
        ("context_window_fallbacks", Node::Any),
        ("default_fallbacks", Node::Any),
        ("max_fallbacks", Node::Any),
        ("deployment_affinity_ttl_seconds", Node::Any),
    ],
    documented: &[
        "redis_host",
        "redis_password",
        "redis_port",
        "redis_db",
        "redis_url",
        "enable_pre_call_checks",
        "enable_pre_call_check",
        "optional_pre_call_checks",
        "enable_tag_filtering",
        "tag_filtering_match_any",
        "tag_routing_prefix",
        "allowed_fails_policy",
        "default_max_parallel_requests",
        "default_priority",
        "polling_interval",
        "default_litellm_params",
        "debug_level",
        "client_ttl",
        "cache_kwargs",
        "cache_responses",
        "caching_groups",
        "alerting_config",
        "assistants_config",
        "set_verbose",
        "provider_budget_config",
        "model_group_retry_policy",
        "model_group_affinity_config",
        "router_general_settings",
        "ignore_invalid_deployments",
        "search_tools",
        "guardrail_list",
        "routing_groups",
        "weights",
        "max_retries",
    ],
    free: &[],
    unknown: Unknown::Deny,
};

/// `router_settings.routing_strategy_args`: strategy-specific, other keys go to `extra`.
pub(super) static ROUTING_STRATEGY_ARGS: MapSchema = MapSchema {
    implemented: &[("ttl", Node::Any), ("lowest_latency_buffer", Node::Any)],
    documented: &[],
    free: &[],
    unknown: Unknown::Collect,
};

/// `router_settings.retry_policy` (LiteLLM's `RetryPolicy`).
pub(super) static RETRY_POLICY: MapSchema = MapSchema {
    implemented: &[
        ("BadRequestErrorRetries", Node::Any),
        ("AuthenticationErrorRetries", Node::Any),
        ("TimeoutErrorRetries", Node::Any),
        ("RateLimitErrorRetries", Node::Any),
        ("ContentPolicyViolationErrorRetries", Node::Any),
        ("InternalServerErrorRetries", Node::Any),
    ],
    documented: &[
        "ServiceUnavailableErrorRetries",
        "NotFoundErrorRetries",
        "DefaultRetries",
    ],
    free: &[],
    unknown: Unknown::Deny,
};

/// `litellm_settings` (documented list: LiteLLM's litellm_settings reference and the settings
/// its proxy docs use). The routing keys fill `RouterSettings` where `router_settings` does not
/// set them.
pub(super) static LITELLM_SETTINGS: MapSchema = MapSchema {
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
    ],
    documented: &[
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
        "max_budget",
        "budget_duration",
        "max_end_user_budget",
        "max_internal_user_budget",
        "internal_user_budget_duration",
        "default_team_settings",
        "default_internal_user_params",
        "default_key_generate_params",
        "upperbound_key_generate_params",
        "ssl_verify",
        "telemetry",
        "guardrails",
        "model_group_settings",
        "public_model_groups",
        "return_response_headers",
        "enable_loadbalancing_on_batch_endpoints",
        "prometheus_initialize_budget_metrics",
        "custom_provider_map",
    ],
    free: &[],
    unknown: Unknown::Deny,
};

/// `general_settings` (documented list: LiteLLM's general_settings reference).
pub(super) static GENERAL_SETTINGS: MapSchema = MapSchema {
    implemented: &[
        ("master_key", Node::Any),
        ("max_request_size_mb", Node::Any),
        ("max_response_size_mb", Node::Any),
    ],
    documented: &[
        "completion_model",
        "store_prompts_in_spend_logs",
        "forward_client_headers_to_llm_api",
        "forward_openai_org_id",
        "disable_spend_logs",
        "disable_spend_updates",
        "disable_master_key_return",
        "disable_retry_on_max_parallel_request_limit_error",
        "disable_reset_budget",
        "disable_adding_master_key_hash_to_db",
        "disable_responses_id_security",
        "disable_prisma_schema_update",
        "enable_jwt_auth",
        "enforce_user_param",
        "reject_clientside_metadata_tags",
        "allowed_routes",
        "public_routes",
        "admin_only_routes",
        "key_management_system",
        "key_management_settings",
        "maximum_spend_logs_retention_period",
        "maximum_spend_logs_retention_interval",
        "user_mcp_management_mode",
        "database_url",
        "database_connection_pool_limit",
        "database_connection_timeout",
        "allow_requests_on_db_unavailable",
        "custom_auth",
        "custom_key_generate",
        "custom_sso",
        "max_parallel_requests",
        "global_max_parallel_requests",
        "infer_model_from_keys",
        "background_health_checks",
        "health_check_interval",
        "health_check_details",
        "alerting",
        "alerting_threshold",
        "alerting_args",
        "alert_types",
        "alert_to_webhook_url",
        "spend_report_frequency",
        "use_client_credentials_pass_through_routes",
        "enforced_params",
        "enable_oauth2_auth",
        "enable_oauth2_proxy_auth",
        "oauth2_config_mappings",
        "use_x_forwarded_for",
        "service_account_settings",
        "image_generation_model",
        "embedding_model",
        "moderation_model",
        "store_model_in_db",
        "supported_db_objects",
        "proxy_budget_rescheduler_min_time",
        "proxy_budget_rescheduler_max_time",
        "proxy_batch_write_at",
        "proxy_batch_polling_interval",
        "allowed_ips",
        "default_team_disabled",
        "allow_user_auth",
        "user_api_key_cache_ttl",
        "litellm_key_header_name",
        "allow_client_side_credentials",
        "use_azure_key_vault",
        "use_google_kms",
        "ui_access_mode",
        "litellm_jwtauth",
        "litellm_license",
        "pass_through_endpoints",
        "enable_public_model_hub",
        "search_tools",
    ],
    free: &[],
    unknown: Unknown::Deny,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> (Mapping, CheckOutcome) {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let Value::Mapping(mut m) = v else {
            panic!("not a mapping")
        };
        let out = check(&mut m);
        (m, out)
    }

    #[test]
    fn documented_keys_warn_once_and_are_removed() {
        let (m, out) = run(
            "router_settings:\n  redis_host: localhost\n  redis_port: 6379\n  routing_strategy: least-busy\n\
             litellm_settings:\n  cache_params:\n    type: redis\n    host: x\n",
        );
        let paths: Vec<_> = out.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.redis_host",
                "router_settings.redis_port",
                "litellm_settings.cache_params"
            ]
        );
        assert!(out.problems.is_empty());
        assert!(
            out.warnings[0]
                .message
                .contains("not implemented by RouteIQ")
        );
        let rs = m.get("router_settings").unwrap().as_mapping().unwrap();
        assert_eq!(rs.len(), 1);
        assert!(rs.contains_key("routing_strategy"));
    }

    #[test]
    fn unknown_key_has_full_path_and_suggestion() {
        let (_, out) = run("router_settings:\n  routing_stratgy: least-busy\nmodel_lst: []\n");
        assert_eq!(out.problems.len(), 2);
        assert_eq!(out.problems[0].path, "router_settings.routing_stratgy");
        assert_eq!(
            out.problems[0].message,
            "unknown key 'routing_stratgy'; did you mean 'routing_strategy'?"
        );
        assert_eq!(out.problems[1].path, "model_lst");
        assert!(
            out.problems[1]
                .message
                .contains("did you mean 'model_list'?")
        );
    }

    #[test]
    fn far_unknown_key_has_no_suggestion() {
        let (_, out) = run("general_settings:\n  zzqqxx_frobnicate: 1\n");
        assert_eq!(out.problems[0].message, "unknown key 'zzqqxx_frobnicate'");
    }

    #[test]
    fn litellm_params_pass_through_and_typos() {
        let (m, out) = run(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
             temperature: 0.2\n      extra_body: {x: 1}\n      api_bse: http://x\n      \
             vertex_project: my-project\n",
        );
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.problems[0].path, "model_list[0].litellm_params.api_bse");
        assert!(out.problems[0].message.contains("did you mean 'api_base'?"));
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(
            out.warnings[0].path,
            "model_list[0].litellm_params.vertex_project"
        );
        let extra = &out.extras["model_list[0].litellm_params"];
        assert!(extra.contains_key("temperature"));
        assert!(extra.contains_key("extra_body"));
        let lp = m["model_list"][0]["litellm_params"].as_mapping().unwrap();
        assert_eq!(lp.len(), 1);
    }

    #[test]
    fn common_provider_params_are_not_typos() {
        let known = LITELLM_PARAMS.known_names();
        for k in [
            "temperature",
            "max_tokens",
            "max_completion_tokens",
            "top_p",
            "top_k",
            "seed",
            "stop",
            "n",
            "user",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "extra_body",
            "extra_headers",
            "headers",
            "frequency_penalty",
            "presence_penalty",
            "response_format",
            "reasoning_effort",
            "thinking",
            "logprobs",
            "top_logprobs",
            "num_ctx",
            "keep_alive",
            "stream_options",
            "service_tier",
            "metadata",
            "api_type",
        ] {
            assert_eq!(likely_typo(k, &known), None, "{k} flagged as a typo");
        }
        for (typo, want) in [
            ("modle", "model"),
            ("api_ky", "api_key"),
            ("rpms", "rpm"),
            ("api_verison", "api_version"),
            ("stream_timout", "stream_timeout"),
            ("Api_Key", "api_key"),
        ] {
            assert_eq!(likely_typo(typo, &known), Some(want), "{typo}");
        }
    }

    #[test]
    fn model_info_keeps_free_form_keys_but_denies_typos() {
        let (_, out) = run(
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info:\n      \
             supports_vision: true\n      my_team_tag: x\n      input_cost_per_tokn: 1\n",
        );
        assert!(out.warnings.is_empty());
        assert_eq!(out.problems.len(), 1);
        assert_eq!(
            out.problems[0].path,
            "model_list[0].model_info.input_cost_per_tokn"
        );
        assert!(
            out.problems[0]
                .message
                .contains("did you mean 'input_cost_per_token'?")
        );
        let extra = &out.extras["model_list[0].model_info"];
        assert!(extra.contains_key("supports_vision"));
        assert!(extra.contains_key("my_team_tag"));
    }

    #[test]
    fn top_level_documented_sections_warn() {
        let (m, out) = run("guardrails: []\ncredential_list: []\ninclude: [a.yaml]\n");
        assert_eq!(out.warnings.len(), 3);
        assert!(m.is_empty());
    }

    #[test]
    fn schema_lists_are_consistent() {
        let all = [
            &TOP,
            &DEPLOYMENT,
            &LITELLM_PARAMS,
            &MODEL_INFO,
            &ROUTER_SETTINGS,
            &ROUTING_STRATEGY_ARGS,
            &RETRY_POLICY,
            &LITELLM_SETTINGS,
            &GENERAL_SETTINGS,
        ];
        for s in all {
            let names = s.known_names();
            let unique: std::collections::BTreeSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "duplicate key in {names:?}");
        }
        assert!(GENERAL_SETTINGS.documented.len() >= 60);
        assert!(LITELLM_SETTINGS.documented.len() >= 35);
        assert!(ROUTER_SETTINGS.documented.len() >= 30);
    }

    #[test]
    fn non_string_keys_are_problems() {
        let (_, out) = run("general_settings:\n  [a, b]: 1\n");
        assert_eq!(out.problems[0].path, "general_settings");
    }
}
