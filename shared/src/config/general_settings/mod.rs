//! `general_settings`: the proxy's own settings. RouteIQ acts on `master_key`, the request
//! and response size limits, `database_url`, JWT authentication (`enable_jwt_auth`,
//! `litellm_jwtauth`: [`jwt_auth`]), and the routing keys LiteLLM also reads here
//! (`num_retries`, `retry_after`, `model_group_alias`, merged into `router_settings`).

pub mod jwt_auth;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::coerce;
use super::load::Loader;
use super::router_settings::RawAlias;
use super::schema::{MapSchema, Node, Unknown, join};
use super::{SecretString, WarningKind};
pub use jwt_auth::JwtAuthSettings;
use jwt_auth::RawJwtAuth;

const GS: &str = "general_settings";

/// `general_settings` (documented list: LiteLLM's general_settings reference).
pub(in crate::config) static GENERAL_SETTINGS: MapSchema = MapSchema {
    implemented: &[
        ("master_key", Node::Any),
        ("max_request_size_mb", Node::Any),
        ("max_response_size_mb", Node::Any),
        // Routing keys LiteLLM also reads here: they fill `RouterSettings` where neither
        // router_settings nor litellm_settings sets them (read by `RawRouterSettings::load`).
        ("num_retries", Node::Any),
        ("retry_after", Node::Any),
        ("model_group_alias", Node::Any),
        // The key store of virtual keys: PostgreSQL with LiteLLM's tables.
        ("database_url", Node::Any),
        // JWT authentication (the gateway verifies the tokens).
        ("enable_jwt_auth", Node::Any),
        ("litellm_jwtauth", Node::Map(&jwt_auth::LITELLM_JWTAUTH)),
    ],
    documented: &[
        // Newer LiteLLM settings (its example configs and docs use them).
        "coordination_redis",
        "use_shared_health_check",
        "use_redis_transaction_buffer",
        "team_metadata_validation_timeout",
        "team_metadata_validation_error_message",
        "otel",
        "health_check_ignore_transient_errors",
        "enable_health_check_routing",
        "custom_team_metadata_validate",
        // Guards LiteLLM's tag routing and tag budgets, which RouteIQ does not have: client
        // tags change nothing here, so ignoring it opens nothing.
        "reject_clientside_metadata_tags",
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
        "public_routes",
        "key_management_system",
        "key_management_settings",
        "maximum_spend_logs_retention_period",
        "maximum_spend_logs_retention_interval",
        "user_mcp_management_mode",
        "database_connection_pool_limit",
        "database_connection_timeout",
        "allow_requests_on_db_unavailable",
        "custom_key_generate",
        "custom_sso",
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
        "default_team_disabled",
        "allow_user_auth",
        "user_api_key_cache_ttl",
        "allow_client_side_credentials",
        "use_azure_key_vault",
        "use_google_kms",
        "ui_access_mode",
        "litellm_license",
        "pass_through_endpoints",
        "enable_public_model_hub",
        "search_tools",
    ],
    free: &[],
    unenforceable: &[
        ("allowed_ips", "access (a client IP allow-list)"),
        ("allowed_routes", "access (the routes keys may call)"),
        ("admin_only_routes", "access (routes only admins may call)"),
        (
            "enforce_user_param",
            "requests (every request must name a user)",
        ),
        (
            "litellm_key_header_name",
            "access (the header that carries the key)",
        ),
        ("custom_auth", "access (a custom authentication hook)"),
        (
            "enforced_params",
            "requests (parameters every request must carry)",
        ),
        ("enable_oauth2_auth", "access (OAuth2 authentication)"),
        (
            "enable_oauth2_proxy_auth",
            "access (OAuth2 proxy authentication)",
        ),
        ("max_parallel_requests", "load (parallel requests per key)"),
        (
            "global_max_parallel_requests",
            "load (parallel requests for the whole proxy)",
        ),
    ],
    unknown: Unknown::Warn,
};

/// `general_settings`.
#[derive(Debug, Clone)]
pub struct GeneralSettings {
    pub master_key: Option<SecretString>,
    pub max_request_size_mb: f64,
    /// Largest upstream answer (non-streamed body) relayed, in MB; larger ones are a 502.
    pub max_response_size_mb: f64,
    /// LiteLLM's database (PostgreSQL): the virtual keys' store (else `DATABASE_URL`).
    pub database_url: Option<SecretString>,
    /// JWTs authenticate clients (besides the master key and virtual keys).
    pub enable_jwt_auth: bool,
    /// How JWTs map to admins, teams and users.
    pub litellm_jwtauth: JwtAuthSettings,
}

/// Default of `general_settings.max_response_size_mb`.
pub const DEFAULT_MAX_RESPONSE_SIZE_MB: f64 = 64.0;

impl Default for GeneralSettings {
    fn default() -> Self {
        GeneralSettings {
            master_key: None,
            max_request_size_mb: 10.0,
            max_response_size_mb: DEFAULT_MAX_RESPONSE_SIZE_MB,
            database_url: None,
            enable_jwt_auth: false,
            litellm_jwtauth: JwtAuthSettings::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of general_settings")]
pub(in crate::config) struct RawGeneralSettings {
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub(in crate::config) master_key: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub(in crate::config) max_request_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub(in crate::config) max_response_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub(in crate::config) num_retries: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub(in crate::config) retry_after: Option<f64>,
    #[serde(default)]
    pub(in crate::config) model_group_alias: Option<BTreeMap<String, RawAlias>>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub(in crate::config) database_url: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub(in crate::config) enable_jwt_auth: Option<bool>,
    #[serde(default)]
    pub(in crate::config) litellm_jwtauth: Option<RawJwtAuth>,
}

impl RawGeneralSettings {
    /// The keys RouteIQ acts on here (the routing ones are read by `RawRouterSettings::load`).
    pub(in crate::config) fn load(self, cx: &mut Loader) -> GeneralSettings {
        let d = GeneralSettings::default();
        if let Some(key) = &self.master_key {
            if key.expose().trim().is_empty() {
                cx.problem(join(GS, "master_key"), "must not be empty");
            } else if !key.expose().starts_with("sk-") {
                cx.warn(
                    join(GS, "master_key"),
                    WarningKind::Caveat,
                    "LiteLLM expects the master key to start with 'sk-'; RouteIQ accepts it, \
                     but LiteLLM clients and tools may not",
                );
            }
        }
        let max_request_size_mb =
            cx.megabytes(&join(GS, "max_request_size_mb"), self.max_request_size_mb);
        let max_response_size_mb =
            cx.megabytes(&join(GS, "max_response_size_mb"), self.max_response_size_mb);
        let database_url = self
            .database_url
            .filter(|u| match postgres_url_problem(u.expose()) {
                None => true,
                Some(why) => {
                    cx.problem(
                    join(GS, "database_url"),
                    format!(
                        "must be a PostgreSQL URL (postgresql://user:password@host:5432/db): {why}"
                    ),
                );
                    false
                }
            });
        let enable_jwt_auth = self.enable_jwt_auth.unwrap_or(false);
        let litellm_jwtauth = match self.litellm_jwtauth {
            Some(raw) => {
                if !enable_jwt_auth {
                    cx.warn(
                        join(GS, "litellm_jwtauth"),
                        WarningKind::Caveat,
                        "set, but enable_jwt_auth is not true: JWTs are not accepted",
                    );
                }
                raw.load(cx)
            }
            None => JwtAuthSettings::default(),
        };
        GeneralSettings {
            database_url,
            enable_jwt_auth,
            litellm_jwtauth,
            master_key: self.master_key,
            max_request_size_mb: max_request_size_mb.unwrap_or(d.max_request_size_mb),
            max_response_size_mb: max_response_size_mb.unwrap_or(d.max_response_size_mb),
        }
    }
}

/// What is wrong with a PostgreSQL URL's shape, if anything (the scheme, a host, a numeric
/// port); never quotes the URL (it holds a password). The gateway's driver parses the rest.
fn postgres_url_problem(url: &str) -> Option<String> {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return Some("the scheme is not postgresql:// or postgres://".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    for host in hosts.split(',') {
        let (name, port) = match host.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((name, rest)) => (name, rest.strip_prefix(':')),
                None => return Some("an IPv6 host is missing its ']'".into()),
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            },
        };
        if name.is_empty() && hosts.len() > 1 {
            return Some("a host is empty".into());
        }
        if name.contains(['<', '>', ' ']) {
            return Some("the host is a placeholder, not a host name".into());
        }
        if let Some(p) = port
            && p.parse::<u16>().is_err()
        {
            return Some("the port is not a number from 0 to 65535".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{GENERAL_SETTINGS, RawGeneralSettings, postgres_url_problem};

    #[test]
    fn postgres_urls() {
        for ok in [
            "postgresql://u:p@127.0.0.1:5432/litellm",
            "postgres://u@db.internal/litellm?sslmode=require",
            "postgresql://u:p@[::1]:5432/db",
            "postgresql:///db?host=/var/run/postgresql",
            "postgres://..",
        ] {
            assert_eq!(postgres_url_problem(ok), None, "{ok}");
        }
        for bad in [
            "mysql://u@h/db",
            "https://placeholder.example.com",
            "postgresql://<user>:<password>@<host>:<port>/<dbname>",
            "postgresql://user:password@host:port/database",
            "postgresql://u@[::1/db",
        ] {
            assert!(postgres_url_problem(bad).is_some(), "{bad}");
        }
    }
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawGeneralSettings>(&GENERAL_SETTINGS);
    }

    use crate::config::load::testing::{load, problems};

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
}
