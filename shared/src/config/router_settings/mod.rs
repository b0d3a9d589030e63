//! `router_settings`: strategy, aliases, retries, cooldowns, timeouts, fallbacks, affinity.
//!
//! - [`strategy`]: `routing_strategy` and `routing_strategy_args`.
//! - [`fallbacks`]: the fallback lists.
//! - [`redis`]: `redis_url`/`redis_host`/`redis_port`/`redis_password`/`redis_db`, the shared
//!   Redis for routing state (and the `REDIS_*` variables read when the config sets none).
//! - LiteLLM also accepts the routing keys in `litellm_settings` (`num_retries`,
//!   `allowed_fails`, `cooldown_time`, fallbacks, `request_timeout`): they fill
//!   [`RouterSettings`] where `router_settings` does not set them.

mod fallbacks;
mod redis;
mod strategy;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

pub use fallbacks::FallbackRule;
pub(in crate::config) use fallbacks::RawFallback;
pub use redis::{DEFAULT_REDIS_PORT, RedisSettings, RedisTarget};
pub(super) use strategy::ROUTING_STRATEGY_ARGS;
pub use strategy::{RoutingStrategyArgs, RoutingStrategyName};

use super::coerce;
use super::general_settings::RawGeneralSettings;
use super::litellm_settings::RawLitellmSettings;
use super::load::{Above, Loader};
use super::model_list::ModelGroups;
use super::schema::{MapSchema, Node, Unknown, join};
use super::{MAX_DURATION, SecretString};
use strategy::RawRoutingStrategyArgs;

const RS: &str = "router_settings";
const LS: &str = "litellm_settings";

/// `router_settings` (documented list: LiteLLM's router_settings reference and
/// `UpdateRouterConfig`).
pub(in crate::config) static ROUTER_SETTINGS: MapSchema = MapSchema {
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
        ("redis_host", Node::Any),
        ("redis_password", Node::Any),
        ("redis_port", Node::Any),
        ("redis_db", Node::Any),
        ("redis_url", Node::Any),
    ],
    documented: &[
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
    unenforceable: &[("provider_budget_config", "spend (per-provider budgets)")],
    unknown: Unknown::Warn,
};

/// `router_settings.retry_policy` (LiteLLM's `RetryPolicy`).
pub(in crate::config) static RETRY_POLICY: MapSchema = MapSchema {
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
    unenforceable: &[],
    unknown: Unknown::Warn,
};

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
    /// `redis_url` or `redis_host` (+ `redis_port`, `redis_password`, `redis_db`): the Redis
    /// that instances share routing state through. Read at start-up only: a reload that
    /// changes it is warned about and takes effect at the next restart.
    pub redis: Option<RedisSettings>,
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
            redis: None,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of router_settings")]
pub(in crate::config) struct RawRouterSettings {
    #[serde(default)]
    pub routing_strategy: Option<String>,
    #[serde(default)]
    pub routing_strategy_args: Option<RawRoutingStrategyArgs>,
    #[serde(default)]
    pub model_group_alias: Option<BTreeMap<String, RawAlias>>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub num_retries: Option<u32>,
    #[serde(default)]
    pub retry_policy: Option<RawRetryPolicy>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub retry_after: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_bool")]
    pub disable_cooldowns: Option<bool>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default)]
    pub fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub content_policy_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub context_window_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub max_fallbacks: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub deployment_affinity_ttl_seconds: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_string")]
    pub redis_host: Option<String>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub redis_port: Option<u32>,
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub redis_password: Option<SecretString>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub redis_db: Option<u32>,
    /// A secret: the URL may carry a password.
    #[serde(default, deserialize_with = "coerce::opt_secret")]
    pub redis_url: Option<SecretString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of error class to retry count"
)]
pub(in crate::config) struct RawRetryPolicy {
    #[serde(
        default,
        rename = "BadRequestErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub bad_request: Option<u32>,
    #[serde(
        default,
        rename = "AuthenticationErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub authentication: Option<u32>,
    #[serde(
        default,
        rename = "TimeoutErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub timeout: Option<u32>,
    #[serde(
        default,
        rename = "RateLimitErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub rate_limit: Option<u32>,
    #[serde(
        default,
        rename = "ContentPolicyViolationErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub content_policy_violation: Option<u32>,
    #[serde(
        default,
        rename = "InternalServerErrorRetries",
        deserialize_with = "coerce::opt_u32"
    )]
    pub internal_server: Option<u32>,
}

/// A `model_group_alias` value: `alias: group` or `alias: {model: group, hidden: true}`.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::config) struct RawAlias {
    pub model: String,
    pub hidden: bool,
}

impl<'de> Deserialize<'de> for RawAlias {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAlias;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a model group name, or a mapping with `model` and optional `hidden`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAlias, E> {
                Ok(RawAlias {
                    model: v.to_string(),
                    hidden: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAlias, A::Error> {
                let mut model = None;
                let mut hidden = false;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "model" => model = Some(map.next_value::<String>()?),
                        "hidden" => {
                            hidden = map.next_value::<coerce::BoolLike>()?.0.unwrap_or(false)
                        }
                        other => {
                            return Err(de::Error::unknown_field(other, &["model", "hidden"]));
                        }
                    }
                }
                let model = model.ok_or_else(|| de::Error::missing_field("model"))?;
                Ok(RawAlias { model, hidden })
            }
        }
        d.deserialize_any(V)
    }
}

impl RawRouterSettings {
    /// Validated, with the routing keys LiteLLM also accepts in `litellm_settings` merged in
    /// (`router_settings` wins where both are set; each is checked at its own path).
    pub(in crate::config) fn load(
        self,
        ls: &RawLitellmSettings,
        gs: &RawGeneralSettings,
        groups: &ModelGroups,
        cx: &mut Loader,
    ) -> RouterSettings {
        let d = RouterSettings::default();
        let mut groups_with_aliases = groups.clone();

        let routing_strategy = strategy::load_name(self.routing_strategy, cx);
        let args_path = join(RS, "routing_strategy_args");
        let routing_strategy_args = RawRoutingStrategyArgs::load(
            self.routing_strategy_args,
            routing_strategy,
            &args_path,
            cx,
        );

        let mut model_group_alias = BTreeMap::new();
        let mut hidden_aliases = Vec::new();
        // router_settings' aliases, then general_settings' (LiteLLM reads both) where the
        // former does not set the alias.
        let rs_aliases = self.model_group_alias.unwrap_or_default();
        let gs_aliases = gs.model_group_alias.clone().unwrap_or_default();
        let all_aliases = rs_aliases.into_iter().map(|(a, t)| (RS, a, t)).chain(
            gs_aliases
                .into_iter()
                .map(|(a, t)| ("general_settings", a, t)),
        );
        for (section, alias, target) in all_aliases {
            if model_group_alias.contains_key(&alias) {
                continue;
            }
            let p = join(&join(section, "model_group_alias"), &alias);
            if !groups.is_group(&target.model) {
                cx.problem(p, groups.unknown_message(&target.model, false));
            }
            if target.hidden {
                hidden_aliases.push(alias.clone());
            }
            groups_with_aliases.add_alias(&alias);
            model_group_alias.insert(alias, target.model);
        }
        let g = &groups_with_aliases;
        if let Some(e) = &routing_strategy_args.experiment {
            let exp_path = join(&args_path, "experiment");
            if !g.is_group_or_alias(&e.model_group) {
                cx.problem(
                    join(&exp_path, "model_group"),
                    g.unknown_message(&e.model_group, true),
                );
            }
            for arm in &e.arms {
                if let Some(m) = &arm.model
                    && !g.is_group_or_alias(m)
                {
                    cx.problem(
                        format!("{exp_path}.arms.{}.model", arm.name),
                        g.unknown_message(m, true),
                    );
                }
            }
        }
        let affinity_ttl = cx
            .seconds(
                &join(RS, "deployment_affinity_ttl_seconds"),
                self.deployment_affinity_ttl_seconds,
                Above::Zero,
            )
            .ok()
            .flatten();

        let retry_policy = self
            .retry_policy
            .map(|r| RetryPolicy {
                bad_request: r.bad_request,
                authentication: r.authentication,
                timeout: r.timeout,
                rate_limit: r.rate_limit,
                content_policy_violation: r.content_policy_violation,
                internal_server: r.internal_server,
            })
            .unwrap_or_default();

        let gs_retry_after = cx
            .seconds(
                "general_settings.retry_after",
                gs.retry_after,
                Above::OrAtZero,
            )
            .ok()
            .flatten();
        let mut secs = |key: &str, rs: Option<f64>, ls: Option<f64>, min: Above| {
            let rs = cx.seconds(&join(RS, key), rs, min).ok().flatten();
            let ls = cx.seconds(&join(LS, key), ls, min).ok().flatten();
            rs.or(ls)
        };
        let retry_after = secs("retry_after", self.retry_after, None, Above::OrAtZero);
        let cooldown = secs(
            "cooldown_time",
            self.cooldown_time,
            ls.cooldown_time,
            Above::OrAtZero,
        );
        // `litellm_settings.request_timeout` is checked (at its own path) by `litellm_settings`.
        let timeout = secs("timeout", self.timeout, None, Above::Zero).or_else(|| {
            ls.request_timeout
                .and_then(|t| Duration::try_from_secs_f64(t).ok())
                .filter(|t| !t.is_zero() && *t <= MAX_DURATION)
        });
        let stream_timeout = secs("stream_timeout", self.stream_timeout, None, Above::Zero);

        // Validate both sections' lists (each problem at its own path); router_settings wins.
        let fallbacks_rs = fallbacks::load(self.fallbacks, &join(RS, "fallbacks"), g, cx);
        let fallbacks_ls = fallbacks::load(ls.fallbacks.clone(), &join(LS, "fallbacks"), g, cx);
        let cp_rs = fallbacks::load(
            self.content_policy_fallbacks,
            &join(RS, "content_policy_fallbacks"),
            g,
            cx,
        );
        let cp_ls = fallbacks::load(
            ls.content_policy_fallbacks.clone(),
            &join(LS, "content_policy_fallbacks"),
            g,
            cx,
        );
        let cw_rs = fallbacks::load(
            self.context_window_fallbacks,
            &join(RS, "context_window_fallbacks"),
            g,
            cx,
        );
        let cw_ls = fallbacks::load(
            ls.context_window_fallbacks.clone(),
            &join(LS, "context_window_fallbacks"),
            g,
            cx,
        );
        let df_rs = fallbacks::load_default(
            self.default_fallbacks.as_ref(),
            &join(RS, "default_fallbacks"),
            g,
            cx,
        );
        let df_ls = fallbacks::load_default(
            ls.default_fallbacks.as_ref(),
            &join(LS, "default_fallbacks"),
            g,
            cx,
        );

        let redis = redis::RawRedis {
            url: self.redis_url,
            host: self.redis_host,
            port: self.redis_port,
            password: self.redis_password,
            db: self.redis_db,
        }
        .load(cx);

        RouterSettings {
            routing_strategy,
            routing_strategy_args,
            model_group_alias,
            hidden_aliases,
            num_retries: self
                .num_retries
                .or(ls.num_retries)
                .or(gs.num_retries)
                .unwrap_or(d.num_retries),
            retry_policy,
            retry_after: retry_after.or(gs_retry_after).unwrap_or(d.retry_after),
            allowed_fails: self
                .allowed_fails
                .or(ls.allowed_fails)
                .unwrap_or(d.allowed_fails),
            cooldown_time: cooldown.unwrap_or(d.cooldown_time),
            disable_cooldowns: self
                .disable_cooldowns
                .or(ls.disable_cooldowns)
                .unwrap_or(d.disable_cooldowns),
            timeout,
            stream_timeout,
            fallbacks: fallbacks_rs.or(fallbacks_ls).unwrap_or_default(),
            content_policy_fallbacks: cp_rs.or(cp_ls).unwrap_or_default(),
            context_window_fallbacks: cw_rs.or(cw_ls).unwrap_or_default(),
            default_fallbacks: df_rs.or(df_ls).unwrap_or_default(),
            max_fallbacks: self.max_fallbacks.unwrap_or(d.max_fallbacks),
            deployment_affinity_ttl: affinity_ttl,
            redis,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::schema::testing::assert_schema_matches;

    fn de<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<T, String> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn raw_aliases_both_forms() {
        let r: RawRouterSettings =
            de("model_group_alias:\n  gpt-4: gpt-4o\n  claude: {model: claude-3, hidden: true}")
                .unwrap();
        let a = r.model_group_alias.unwrap();
        assert_eq!(
            a["gpt-4"],
            RawAlias {
                model: "gpt-4o".into(),
                hidden: false
            }
        );
        assert!(a["claude"].hidden);
        let e = de::<RawRouterSettings>("model_group_alias:\n  x: {modle: y}").unwrap_err();
        assert!(
            e.starts_with("model_group_alias.x: unknown field `modle`"),
            "{e}"
        );
    }

    #[test]
    fn raw_fallbacks_format() {
        let r: RawRouterSettings =
            de("fallbacks: [{\"gpt-4\": [\"gpt-3.5\", \"claude\"]}, {a: b}]").unwrap();
        let f = r.fallbacks.unwrap();
        assert_eq!(
            f[0].0,
            vec![("gpt-4".to_string(), vec!["gpt-3.5".into(), "claude".into()])]
        );
        assert_eq!(f[1].0, vec![("a".to_string(), vec!["b".into()])]);
        let e = de::<RawRouterSettings>("fallbacks: [gpt-4]").unwrap_err();
        assert!(e.starts_with("fallbacks[0]: invalid type: string"), "{e}");
    }

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawRouterSettings>(&ROUTER_SETTINGS);
        assert_schema_matches::<RawRetryPolicy>(&RETRY_POLICY);
    }

    use std::time::Duration;

    use serde_json::Value as JsonValue;

    use super::*;
    use crate::config::load::testing::{BASIC, load, problems};
    use crate::ml::MlStrategyName;

    #[test]
    fn fallbacks_parse_and_check_groups() {
        let yaml = "model_list:\n  - {model_name: gpt-4, litellm_params: {model: gpt-4}}\n  \
            - {model_name: gpt-3.5-turbo, litellm_params: {model: gpt-3.5-turbo}}\n  \
            - {model_name: claude, litellm_params: {model: anthropic/claude-3-5-haiku-latest}}\n\
            router_settings:\n  fallbacks: [{\"gpt-4\": [\"gpt-3.5-turbo\", \"claude\"]}, {\"*\": [claude]}]\n  \
            context_window_fallbacks: [{gpt-3.5-turbo: gpt-4}]\n  default_fallbacks: [claude]\n";
        let rs = load(yaml).unwrap().config.router_settings;
        assert_eq!(
            rs.fallbacks[0],
            FallbackRule {
                from: "gpt-4".into(),
                to: vec!["gpt-3.5-turbo".into(), "claude".into()]
            }
        );
        assert_eq!(rs.fallbacks[1].from, "*");
        assert_eq!(rs.context_window_fallbacks[0].to, ["gpt-4"]);
        assert_eq!(rs.default_fallbacks, ["claude"]);

        let bad = "model_list:\n  - {model_name: gpt-4, litellm_params: {model: gpt-4}}\n\
            router_settings:\n  fallbacks: [{gpt4: [gpt-4o]}, {gpt-4: [x], a: [b]}]\n\
            litellm_settings:\n  default_fallbacks: [gtp-4]\n";
        let p = problems(bad);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.fallbacks[0].gpt4",
                "router_settings.fallbacks[0].gpt4[0]",
                "router_settings.fallbacks[1]",
                "litellm_settings.default_fallbacks[0]",
            ]
        );
        assert!(p[0].message.contains("did you mean 'gpt-4'?"));
        assert!(p[3].message.contains("did you mean 'gpt-4'?"));
    }

    #[test]
    fn aliases_both_forms_and_hidden() {
        let yaml = format!(
            "{BASIC}router_settings:\n  model_group_alias:\n    gpt-4: gpt-4o\n    \
             secret-gpt: {{model: gpt-4o, hidden: true}}\n  fallbacks: [{{gpt-4: [gpt-4o]}}]\n"
        );
        let rs = load(&yaml).unwrap().config.router_settings;
        assert_eq!(rs.model_group_alias["gpt-4"], "gpt-4o");
        assert_eq!(rs.model_group_alias["secret-gpt"], "gpt-4o");
        assert_eq!(rs.hidden_aliases, ["secret-gpt"]);
        assert_eq!(rs.fallbacks[0].from, "gpt-4");

        let bad = format!("{BASIC}router_settings:\n  model_group_alias: {{x: gpt-4p}}\n");
        let p = problems(&bad);
        assert_eq!(p[0].path, "router_settings.model_group_alias.x");
        assert!(p[0].message.contains("did you mean 'gpt-4o'?"));
    }

    #[test]
    fn general_settings_routing_keys_fill_router_settings() {
        let yaml = format!(
            "{BASIC}  - model_name: mini\n    litellm_params: {{model: openai/gpt-4o-mini}}\n\
             general_settings:\n  num_retries: 4\n  retry_after: 2\n  \
             model_group_alias: {{gpt4: gpt-4o, small: mini}}\n\
             router_settings:\n  model_group_alias: {{small: gpt-4o}}\n"
        );
        let l = load(&yaml).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let rs = &l.config.router_settings;
        assert_eq!(rs.num_retries, 4);
        assert_eq!(rs.retry_after, Duration::from_secs(2));
        // router_settings wins for an alias both set.
        assert_eq!(rs.model_group_alias["small"], "gpt-4o");
        assert_eq!(rs.model_group_alias["gpt4"], "gpt-4o");
        let p = problems("general_settings:\n  model_group_alias: {x: nope}\n  retry_after: -1\n");
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "general_settings.model_group_alias.x",
                "general_settings.retry_after"
            ]
        );
    }

    #[test]
    fn litellm_settings_merge_into_router_settings() {
        let yaml = format!(
            "{BASIC}litellm_settings:\n  num_retries: 5\n  request_timeout: 30\n  allowed_fails: 9\n  \
             cooldown_time: 60\n  fallbacks: [{{gpt-4o: [gpt-4o]}}]\n  drop_params: true\n\
             router_settings:\n  num_retries: 1\n  routing_strategy: usage-based-routing-v2\n"
        );
        let c = load(&yaml).unwrap().config;
        let rs = &c.router_settings;
        assert_eq!(rs.num_retries, 1);
        assert_eq!(rs.allowed_fails, 9);
        assert_eq!(rs.cooldown_time, Duration::from_secs(60));
        assert_eq!(rs.timeout, Some(Duration::from_secs(30)));
        assert_eq!(rs.fallbacks.len(), 1);
        assert_eq!(rs.routing_strategy, RoutingStrategyName::UsageBasedV2);
        assert_eq!(
            c.litellm_settings.request_timeout,
            Some(Duration::from_secs(30))
        );
        assert!(c.litellm_settings.drop_params);

        let yaml = format!(
            "{BASIC}litellm_settings:\n  request_timeout: 30\nrouter_settings:\n  timeout: 5\n"
        );
        assert_eq!(
            load(&yaml).unwrap().config.router_settings.timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn routing_strategies() {
        for (name, want) in [
            ("latency-based-routing", RoutingStrategyName::LatencyBased),
            ("least_busy", RoutingStrategyName::LeastBusy),
            ("cost-based-routing", RoutingStrategyName::CostBased),
        ] {
            let yaml = format!("router_settings:\n  routing_strategy: {name}\n");
            assert_eq!(
                load(&yaml).unwrap().config.router_settings.routing_strategy,
                want
            );
        }
        let p = problems("router_settings:\n  routing_strategy: latency-based-routng\n");
        assert!(
            p[0].message
                .contains("did you mean 'latency-based-routing'?")
        );
        assert!(p[0].message.contains("simple-shuffle"));
        // ML strategies load with their args; LLM/GPU ones and bad args are clear errors.
        let l = load(
            "router_settings:\n  routing_strategy: llmrouter-knn\n  routing_strategy_args: \
             {model_path: models/routers/knn.json, cost_weight: 0.2, hot_reload: true, reload_interval: 5}\n",
        )
        .unwrap();
        let rs = &l.config.router_settings;
        assert_eq!(
            rs.routing_strategy,
            RoutingStrategyName::LlmRouter(MlStrategyName::Knn)
        );
        let ml = rs.routing_strategy_args.ml.as_ref().unwrap();
        assert_eq!(ml.model_path.as_deref(), Some("models/routers/knn.json"));
        assert_eq!(ml.cost.cost_weight, 0.2);
        assert!(ml.hot_reload && ml.reload_interval == Duration::from_secs(5));
        let p = problems("router_settings:\n  routing_strategy: llmrouter-routerdc\n");
        assert!(
            p[0].message.contains("not supported by RouteIQ"),
            "{}",
            p[0].message
        );
        assert!(p[0].message.contains("GPU"));
        let p = problems("router_settings:\n  routing_strategy: llmrouter-knnn\n");
        assert!(p[0].message.contains("unknown ML routing strategy"));
        let p = problems(
            "router_settings:\n  routing_strategy: llmrouter-mlp\n  routing_strategy_args: {cost_weight: -1, profile: turbo}\n",
        );
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"router_settings.routing_strategy_args.cost_weight"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"router_settings.routing_strategy_args.profile"),
            "{paths:?}"
        );
    }

    #[test]
    fn affinity_ttl_and_experiment_load_and_are_checked() {
        let yaml = "model_list:\n  - {model_name: auto, litellm_params: {model: openai/a}}\n  \
                    - {model_name: small, litellm_params: {model: openai/b}}\n\
                    router_settings:\n  deployment_affinity_ttl_seconds: 900\n  \
                    routing_strategy_args:\n    experiment:\n      name: e1\n      \
                    model_group: auto\n      arms: {control: {weight: 1}, cheap: {weight: 1, model: small}}\n";
        let loaded = load(yaml).unwrap();
        let rs = &loaded.config.router_settings;
        assert_eq!(rs.deployment_affinity_ttl, Some(Duration::from_secs(900)));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let e = rs.routing_strategy_args.experiment.as_ref().unwrap();
        assert_eq!((e.name.as_str(), e.arms.len()), ("e1", 2));
        assert!(!rs.routing_strategy_args.extra.contains_key("experiment"));
        let bad = problems(
            "model_list:\n  - {model_name: auto, litellm_params: {model: openai/a}}\n\
             router_settings:\n  deployment_affinity_ttl_seconds: -1\n  \
             routing_strategy_args:\n    experiment: {name: e1, model_group: autoo, \
             arms: {x: {model: nope}}}\n",
        );
        let paths: Vec<&str> = bad.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "router_settings.deployment_affinity_ttl_seconds",
            "router_settings.routing_strategy_args.experiment.model_group",
            "router_settings.routing_strategy_args.experiment.arms.x.model",
        ] {
            assert!(paths.contains(&want), "{want} not in {bad:?}");
        }
    }

    #[test]
    fn routing_strategy_args_and_retry_policy() {
        let yaml = "router_settings:\n  routing_strategy_args: {ttl: 60, lowest_latency_buffer: 0.5, k: 3}\n  \
            retry_policy: {TimeoutErrorRetries: 2, RateLimitErrorRetries: 4, NotFoundErrorRetries: 1}\n";
        let l = load(yaml).unwrap();
        let rs = &l.config.router_settings;
        assert_eq!(rs.routing_strategy_args.ttl, Duration::from_secs(60));
        assert_eq!(rs.routing_strategy_args.lowest_latency_buffer, 0.5);
        assert_eq!(rs.routing_strategy_args.extra["k"], JsonValue::from(3));
        assert_eq!(rs.retry_policy.timeout, Some(2));
        assert_eq!(rs.retry_policy.rate_limit, Some(4));
        assert_eq!(
            l.warnings[0].path,
            "router_settings.retry_policy.NotFoundErrorRetries"
        );
    }
}
