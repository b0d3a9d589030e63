//! `model_list[i].litellm_params`: how to call a deployment.
//!
//! - The provider comes from the `model` prefix ([`ProviderKind::parse`]); an unknown prefix is
//!   a problem, a known-but-unsupported one a warning.
//! - Keys RouteIQ does not know are forwarded to the provider in every request body
//!   ([`LitellmParams::extra`]), as LiteLLM does, unless they look like a typo of a known key.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::SecretString;
use crate::config::WarningKind;
use crate::config::coerce;
use crate::config::load::{Above, Loader, check_url};
use crate::config::schema::{self, MapSchema, Node, Unknown, join};
use crate::provider::ProviderKind;

use super::ModelGroups;
use super::auto_router::{self, AutoRouterConfig, RawAutoRouterParams};

/// `model_list[i].litellm_params`. Unknown keys are forwarded to the provider, as LiteLLM does
/// (`temperature`, `max_tokens`, `extra_body`, ...).
pub(in crate::config) static LITELLM_PARAMS: MapSchema = MapSchema {
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
        ("custom_llm_provider", Node::Any),
        ("order", Node::Any),
        ("drop_params", Node::Any),
        // LiteLLM's routing models (`model: auto_router/...`): see `auto_router`.
        (
            "adaptive_router_config",
            Node::Map(&super::auto_router::ADAPTIVE_ROUTER_CONFIG),
        ),
        (
            "complexity_router_config",
            Node::Map(&super::auto_router::COMPLEXITY_ROUTER_CONFIG),
        ),
        ("complexity_router_default_model", Node::Any),
        ("auto_router_config", Node::Any),
        ("auto_router_config_path", Node::Any),
        ("auto_router_default_model", Node::Any),
        ("auto_router_embedding_model", Node::Any),
        // Vertex AI (`vertex_ai/`).
        ("vertex_project", Node::Any),
        ("vertex_location", Node::Any),
        ("vertex_credentials", Node::Any),
        ("vertex_ai_project", Node::Any),
        ("vertex_ai_location", Node::Any),
    ],
    documented: &[
        // Bedrock batch (S3 input/output).
        "s3_access_key_id",
        "s3_secret_access_key",
        "s3_region_name",
        "s3_endpoint_url",
        "aws_batch_role_arn",
        // Routing and limits.
        "base_model",
        "itpm",
        "otpm",
        "max_parallel_requests",
        "num_retries",
        "cooldown_time",
        "tags",
        "tag_regex",
        "default_api_key_tpm_limit",
        "default_api_key_rpm_limit",
        "keepalive_seconds",
        "allow_client_keepalive_override",
        "provider_affinity_header",
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
    unenforceable: &[
        ("max_budget", "this deployment's spend (provider budget)"),
        (
            "budget_duration",
            "this deployment's spend (provider budget)",
        ),
    ],
    unknown: Unknown::CollectUnlessTypo,
};

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
    /// Google Cloud settings (`vertex_ai/` deployments).
    pub vertex: VertexParams,
    /// LiteLLM's `custom_llm_provider`: names the provider when `model` has no prefix (or a
    /// prefix that is part of the upstream name).
    pub custom_llm_provider: Option<String>,
    /// LiteLLM's `order`: deployments with a lower order are tried first; higher orders only
    /// when every lower one is cooling down, circuit-open, at its limits or failed for this
    /// request. Unset sorts after every set order.
    pub order: Option<u32>,
    /// LiteLLM's `drop_params` for this deployment; unset, `litellm_settings.drop_params`
    /// applies (the loader fills it in). True: OpenAI parameters the provider does not
    /// support are dropped; false: such a request is a 400 naming them.
    pub drop_params: Option<bool>,
    /// Headers sent with every request to this deployment (`extra_headers`, or LiteLLM's
    /// `headers`); values may be secrets.
    pub headers: Vec<(String, SecretString)>,
    /// Why RouteIQ cannot call the deployment, found at load (an `api_base` that is not a
    /// URL, no model name after the provider): it loads with a warning and is never routed to.
    /// The router's deployment adds the other reasons (its provider, unset variables, a client
    /// that could not be built).
    pub unusable: Option<String>,
    /// Keys whose `os.environ/` variable was not set at load: the deployment loads (with a
    /// warning, as LiteLLM does) and requests routed only to it get an error naming them.
    pub unresolved_env: Vec<UnresolvedEnv>,
    /// Other parameters: merged into every upstream request body for this deployment
    /// (e.g. `temperature`, `max_tokens`, provider extras).
    pub extra: Map<String, Value>,
    /// For LiteLLM's routing models (`model: auto_router/...`): the auto router this
    /// deployment is. Such a deployment is never called; its model name routes to others.
    pub auto_router: Option<AutoRouterConfig>,
}

/// A `litellm_params` key whose `os.environ/NAME` was not set at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedEnv {
    /// e.g. `api_key`.
    pub key: String,
    /// The environment variable, e.g. `AZURE_API_KEY_EU`.
    pub var: String,
}

/// `vertex_*` keys of `litellm_params` (`vertex_ai/` deployments). Unset, the project and
/// location come from `VERTEXAI_PROJECT`/`VERTEXAI_LOCATION` (LiteLLM's variables) and the
/// credentials from `GOOGLE_APPLICATION_CREDENTIALS`, else the metadata server.
#[derive(Debug, Clone, Default)]
pub struct VertexParams {
    /// `vertex_project` (or `vertex_ai_project`).
    pub project: Option<String>,
    /// `vertex_location` (or `vertex_ai_location`), e.g. `us-central1` or `global`.
    pub location: Option<String>,
    /// `vertex_credentials`: a service-account key, as JSON text or the path of its file.
    pub credentials: Option<SecretString>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of litellm_params")]
pub(in crate::config) struct RawLitellmParams {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub api_key: Option<SecretString>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub rpm: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub tpm: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub mock_response: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub aws_access_key_id: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub aws_secret_access_key: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub aws_session_token: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub aws_region_name: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub region_name: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub aws_profile_name: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub aws_bedrock_runtime_endpoint: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub custom_llm_provider: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub order: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub drop_params: Option<bool>,
    #[serde(default)]
    pub adaptive_router_config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub complexity_router_config: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub complexity_router_default_model: Option<String>,
    #[serde(default)]
    pub auto_router_config: Option<serde_yaml_ng::Value>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub auto_router_config_path: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub auto_router_default_model: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub auto_router_embedding_model: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub vertex_project: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub vertex_location: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub vertex_credentials: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub vertex_ai_project: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub vertex_ai_location: Option<String>,
}

impl RawLitellmParams {
    /// `None` when the deployment cannot serve (its problems are recorded).
    pub(super) fn load(
        mut self,
        path: &str,
        groups: &ModelGroups,
        cx: &mut Loader,
    ) -> Option<LitellmParams> {
        let auto = RawAutoRouterParams {
            adaptive_router_config: self.adaptive_router_config.take(),
            complexity_router_config: self.complexity_router_config.take(),
            complexity_router_default_model: self.complexity_router_default_model.take(),
            auto_router_config: self.auto_router_config.take(),
            auto_router_config_path: self.auto_router_config_path.take(),
            auto_router_default_model: self.auto_router_default_model.take(),
            auto_router_embedding_model: self.auto_router_embedding_model.take(),
        };
        if let Some(model) = self
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| m.starts_with(auto_router::PREFIX))
        {
            // A routing model: nothing to call, so the provider keys are not read.
            let config = auto.load(model, path, groups, cx)?;
            return Some(LitellmParams {
                model: model.to_string(),
                auto_router: Some(config),
                ..LitellmParams::default()
            });
        }
        auto.warn_unused(path, cx);
        let mut ok = true;
        // Why the deployment cannot be called, found here: it loads (as in LiteLLM, which
        // starts and fails its requests) and the router skips it, saying why.
        let mut unusable: Option<String> = None;
        let model_path = join(path, "model");
        let mut kind = None;
        match self.model.as_deref().map(str::trim) {
            None if cx.failed(&model_path) => ok = false,
            None => {
                cx.problem(&model_path, "missing required key 'model'");
                ok = false;
            }
            Some("") => {
                cx.problem(&model_path, "must not be empty");
                ok = false;
            }
            Some(model) => {
                let custom = self.custom_llm_provider.as_deref();
                match ProviderKind::parse_with(model, custom) {
                    Err(prefix) => {
                        // LiteLLM loads it and fails its requests: so does RouteIQ.
                        let known = ProviderKind::known_prefixes();
                        let mut msg = format!(
                            "unknown provider '{prefix}' in model '{model}': requests routed \
                             only to this deployment will fail"
                        );
                        if let Some(s) = schema::suggest(&prefix, &known) {
                            msg.push_str(&format!("; did you mean '{s}'?"));
                        } else {
                            msg.push_str(
                                " (use a LiteLLM provider prefix such as 'openai/', 'azure/', \
                                 'anthropic/', or set custom_llm_provider)",
                            );
                        }
                        cx.warn(&model_path, WarningKind::Unusable, msg);
                        kind = Some(ProviderKind::Unsupported(prefix));
                    }
                    Ok((k, name)) => {
                        if name.trim().is_empty() {
                            let why = format!("no model name after '{}/'", k.name());
                            cx.warn(
                                &model_path,
                                WarningKind::Unusable,
                                format!("{why}: requests routed only to this deployment will fail"),
                            );
                            unusable.get_or_insert(why);
                        }
                        if k == ProviderKind::VertexAi
                            && ProviderKind::vertex_publisher(&name).is_none()
                        {
                            let why = format!(
                                "vertex_ai model '{name}' is a partner model RouteIQ does not \
                                 call (it calls Gemini, Google's embedding models and Claude on \
                                 Vertex AI)"
                            );
                            cx.warn(
                                &model_path,
                                WarningKind::Unusable,
                                format!("{why}; requests routed only to this deployment will fail"),
                            );
                            unusable.get_or_insert(why);
                        }
                        if let ProviderKind::Unsupported(p) = &k {
                            cx.warn(
                                &model_path,
                                WarningKind::Unusable,
                                format!(
                                    "provider '{p}' is not supported by RouteIQ yet; requests \
                                     routed only to this deployment will fail"
                                ),
                            );
                        }
                        kind = Some(k);
                    }
                }
            }
        }
        let no_default_base = match &kind {
            Some(ProviderKind::Compatible(c)) if c.default_api_base().is_none() => Some(c.prefix()),
            _ => None,
        };
        if let Some(base) = &self.api_base {
            if let Err(msg) = check_url(base) {
                // Often a docs placeholder (`<your-azure-endpoint>`): LiteLLM starts with it.
                cx.warn(
                    join(path, "api_base"),
                    WarningKind::Unusable,
                    format!("{msg}: requests routed only to this deployment will fail"),
                );
                unusable.get_or_insert(format!("api_base {msg}"));
            }
        } else if let Some(prefix) = no_default_base
            && !cx.failed(&join(path, "api_base"))
        {
            let why = format!("no api_base ({prefix} has no default endpoint)");
            cx.warn(
                join(path, "api_base"),
                WarningKind::Unusable,
                format!("{why}: requests routed only to this deployment will fail"),
            );
            unusable.get_or_insert(why);
        }
        if let Some(w) = self.weight.filter(|w| !(w.is_finite() && *w > 0.0)) {
            cx.problem(join(path, "weight"), format!("must be > 0, got {w}"));
            ok = false;
        }
        let timeout = cx.seconds(&join(path, "timeout"), self.timeout, Above::Zero);
        let stream_timeout = cx.seconds(
            &join(path, "stream_timeout"),
            self.stream_timeout,
            Above::Zero,
        );
        ok &= timeout.is_ok() && stream_timeout.is_ok();
        for (key, v) in [
            ("input_cost_per_token", self.input_cost_per_token),
            ("output_cost_per_token", self.output_cost_per_token),
        ] {
            if let Some(c) = v.filter(|c| !(c.is_finite() && *c >= 0.0)) {
                cx.problem(join(path, key), format!("must be >= 0, got {c}"));
                ok = false;
            }
        }
        if self.aws_access_key_id.is_some() != self.aws_secret_access_key.is_some() {
            let missing = if self.aws_access_key_id.is_some() {
                "aws_secret_access_key"
            } else {
                "aws_access_key_id"
            };
            cx.problem(
                join(path, missing),
                "aws_access_key_id and aws_secret_access_key must be set together",
            );
            ok = false;
        }
        if let Some(endpoint) = &self.aws_bedrock_runtime_endpoint
            && let Err(msg) = check_url(endpoint)
        {
            cx.problem(join(path, "aws_bedrock_runtime_endpoint"), msg);
            ok = false;
        }
        let mut extra = cx.take_extras(path);
        // `extra_body` is merged into the body and `extra_headers` (or LiteLLM's `headers`)
        // sent as headers, as the OpenAI SDK and LiteLLM do: never forwarded as fields.
        match extra.remove("extra_body") {
            None | Some(Value::Null) => {}
            Some(Value::Object(body)) => extra.extend(body),
            Some(other) => {
                cx.problem(
                    join(path, "extra_body"),
                    format!("must be a mapping of body fields, got {other}"),
                );
                ok = false;
            }
        }
        let mut headers = Vec::new();
        for key in ["headers", "extra_headers"] {
            match extra.remove(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (name, value) in map {
                        let text = match value {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => {
                                // The value may be a secret: its kind only.
                                cx.problem(
                                    join(&join(path, key), &name),
                                    "must be a string or a number",
                                );
                                ok = false;
                                continue;
                            }
                        };
                        headers.push((name, SecretString::new(text)));
                    }
                }
                Some(_) => {
                    cx.problem(
                        join(path, key),
                        "must be a mapping of header names to values",
                    );
                    ok = false;
                }
            }
        }
        let unresolved_env = cx.unresolved_under(path);
        if !ok {
            return None;
        }
        Some(LitellmParams {
            model: self.model.map(|m| m.trim().to_string()).unwrap_or_default(),
            api_key: self.api_key,
            api_base: self.api_base.map(|b| b.trim().to_string()),
            api_version: self.api_version,
            organization: self.organization,
            rpm: self.rpm,
            tpm: self.tpm,
            weight: self.weight,
            timeout: timeout.ok().flatten(),
            stream_timeout: stream_timeout.ok().flatten(),
            max_retries: self.max_retries,
            mock_response: self.mock_response,
            region_name: self.region_name,
            aws: AwsParams {
                region_name: self.aws_region_name,
                access_key_id: self.aws_access_key_id,
                secret_access_key: self.aws_secret_access_key,
                session_token: self.aws_session_token,
                profile_name: self.aws_profile_name,
                bedrock_runtime_endpoint: self.aws_bedrock_runtime_endpoint,
            },
            vertex: VertexParams {
                project: self.vertex_project.or(self.vertex_ai_project),
                location: self.vertex_location.or(self.vertex_ai_location),
                credentials: self.vertex_credentials,
            },
            custom_llm_provider: self.custom_llm_provider.map(|p| p.trim().to_string()),
            unusable,
            headers,
            drop_params: self.drop_params,
            order: self.order,
            unresolved_env,
            extra,
            auto_router: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{LITELLM_PARAMS, RawLitellmParams};
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn extra_body_merges_and_extra_headers_become_headers() {
        let l = load(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
             temperature: 0.1\n      extra_body: {guided_json: {type: object}, top_k: 5}\n      \
             extra_headers: {X-Tenant: acme, X-Retries: 3}\n      headers: {X-Env: prod}\n",
        )
        .unwrap();
        let lp = &l.config.model_list[0].litellm_params;
        assert_eq!(lp.extra["top_k"], JsonValue::from(5));
        assert!(lp.extra.contains_key("guided_json"));
        assert!(!lp.extra.contains_key("extra_body"));
        assert!(!lp.extra.contains_key("extra_headers") && !lp.extra.contains_key("headers"));
        let headers: Vec<(&str, &str)> = lp
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(
            headers,
            [("X-Env", "prod"), ("X-Retries", "3"), ("X-Tenant", "acme")]
        );
        let p = crate::config::load::testing::problems(
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o, extra_body: [1], \
             extra_headers: {X-Secret: {sk-nested: 1}}}\n",
        );
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.extra_body",
                "model_list[0].litellm_params.extra_headers.X-Secret"
            ]
        );
        assert!(!p[1].message.contains("sk-nested"));
    }

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawLitellmParams>(&LITELLM_PARAMS);
    }

    use serde_json::Value as JsonValue;

    use crate::config::load::testing::load;

    #[test]
    fn unsupported_provider_warns() {
        let yaml = "model_list:\n  - model_name: g\n    litellm_params:\n      model: cohere/command-r\n      aws_role_name: p\n";
        let l = load(yaml).unwrap();
        let paths: Vec<_> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.aws_role_name",
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
}
