//! Raw serde types: the config tree after key checking and `os.environ/` resolution,
//! before validation. Every struct denies unknown fields (the key check has already removed
//! or reported them, so a denial here is a bug, not a user error).
//!
//! Numeric and boolean fields accept strings that parse as such (a value resolved from
//! `os.environ/NAME` is a string; LiteLLM's pydantic models coerce them the same way), and
//! PyYAML-style booleans (`yes`/`no`/`on`/`off`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value as JsonValue};

use super::SecretString;

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with model_name and litellm_params"
)]
pub(super) struct RawDeployment {
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub litellm_params: Option<RawLitellmParams>,
    #[serde(default)]
    pub model_info: Option<RawModelInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of litellm_params")]
pub(super) struct RawLitellmParams {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub api_key: Option<SecretString>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub rpm: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub tpm: Option<u64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub mock_response: Option<String>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub aws_access_key_id: Option<SecretString>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub aws_secret_access_key: Option<SecretString>,
    #[serde(default, deserialize_with = "opt_secret")]
    pub aws_session_token: Option<SecretString>,
    #[serde(default, deserialize_with = "opt_string")]
    pub aws_region_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub region_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub aws_profile_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub aws_bedrock_runtime_endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of model_info")]
pub(super) struct RawModelInfo {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub base_model: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, JsonValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of router_settings")]
pub(super) struct RawRouterSettings {
    #[serde(default)]
    pub routing_strategy: Option<String>,
    #[serde(default)]
    pub routing_strategy_args: Option<RawRoutingStrategyArgs>,
    #[serde(default)]
    pub model_group_alias: Option<BTreeMap<String, RawAlias>>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub num_retries: Option<u32>,
    #[serde(default)]
    pub retry_policy: Option<RawRetryPolicy>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub retry_after: Option<f64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub disable_cooldowns: Option<bool>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default)]
    pub fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub content_policy_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub context_window_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub max_fallbacks: Option<u32>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub deployment_affinity_ttl_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of routing strategy args")]
pub(super) struct RawRoutingStrategyArgs {
    #[serde(default, deserialize_with = "opt_f64")]
    pub ttl: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub lowest_latency_buffer: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of error class to retry count"
)]
pub(super) struct RawRetryPolicy {
    #[serde(
        default,
        rename = "BadRequestErrorRetries",
        deserialize_with = "opt_u32"
    )]
    pub bad_request: Option<u32>,
    #[serde(
        default,
        rename = "AuthenticationErrorRetries",
        deserialize_with = "opt_u32"
    )]
    pub authentication: Option<u32>,
    #[serde(default, rename = "TimeoutErrorRetries", deserialize_with = "opt_u32")]
    pub timeout: Option<u32>,
    #[serde(
        default,
        rename = "RateLimitErrorRetries",
        deserialize_with = "opt_u32"
    )]
    pub rate_limit: Option<u32>,
    #[serde(
        default,
        rename = "ContentPolicyViolationErrorRetries",
        deserialize_with = "opt_u32"
    )]
    pub content_policy_violation: Option<u32>,
    #[serde(
        default,
        rename = "InternalServerErrorRetries",
        deserialize_with = "opt_u32"
    )]
    pub internal_server: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of litellm_settings")]
pub(super) struct RawLitellmSettings {
    #[serde(default, deserialize_with = "opt_u32")]
    pub num_retries: Option<u32>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub request_timeout: Option<f64>,
    #[serde(default)]
    pub fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub context_window_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub content_policy_fallbacks: Option<Vec<RawFallback>>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub disable_cooldowns: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub drop_params: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub json_logs: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub set_verbose: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of general_settings")]
pub(super) struct RawGeneralSettings {
    #[serde(default, deserialize_with = "opt_secret")]
    pub master_key: Option<SecretString>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub max_request_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub max_response_size_mb: Option<f64>,
}

/// A `model_group_alias` value: `alias: group` or `alias: {model: group, hidden: true}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawAlias {
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
                        "hidden" => hidden = map.next_value::<BoolLike>()?.0.unwrap_or(false),
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

/// One entry of a LiteLLM fallbacks list: `{group: [target, ...]}`. A single target may be
/// written as a plain string. Entries are kept in file order; the loader requires exactly one
/// key per entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawFallback(pub Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for RawFallback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFallback;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from a model group to a list of fallback model groups")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFallback, A::Error> {
                let mut rules = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let targets = map.next_value::<Targets>()?;
                    rules.push((key, targets.0));
                }
                Ok(RawFallback(rules))
            }
        }
        d.deserialize_map(V)
    }
}

/// A list of model group names, or one name.
struct Targets(Vec<String>);

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of model group names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Targets, E> {
                Ok(Targets(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Targets(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient scalar deserializers.
// ---------------------------------------------------------------------------------------------

/// Parses a PyYAML-style boolean (`true`, `yes`, `on`, `1`, ... in any case).
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

macro_rules! lenient {
    ($name:ident, $fn:ident, $t:ty, $expecting:literal, $from_u64:expr, $from_i64:expr, $from_f64:expr, $from_bool:expr, $from_str:expr) => {
        struct $name(Option<$t>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(None))
                    }
                    fn visit_none<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name(None))
                    }
                    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<$name, D2::Error> {
                        d.deserialize_any(V)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        let f: fn(u64) -> Option<$t> = $from_u64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        let f: fn(i64) -> Option<$t> = $from_i64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        let f: fn(f64) -> Option<$t> = $from_f64;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<$name, E> {
                        let f: fn(bool) -> Option<$t> = $from_bool;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_type(Unexpected::Bool(v), &self))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        let f: fn(&str) -> Option<$t> = $from_str;
                        f(v).map(|x| $name(Some(x)))
                            .ok_or_else(|| E::invalid_type(Unexpected::Str(v), &self))
                    }
                }
                d.deserialize_any(V)
            }
        }

        fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            $name::deserialize(d).map(|v| v.0)
        }
    };
}

fn f64_to_u64(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
}

fn str_to_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().and_then(f64_to_u64))
}

lenient!(
    U64Like,
    opt_u64,
    u64,
    "a non-negative integer",
    Some,
    |v| u64::try_from(v).ok(),
    f64_to_u64,
    |_| None,
    str_to_u64
);

lenient!(
    U32Like,
    opt_u32,
    u32,
    "a non-negative integer",
    |v| u32::try_from(v).ok(),
    |v| u32::try_from(v).ok(),
    |v| f64_to_u64(v).and_then(|x| u32::try_from(x).ok()),
    |_| None,
    |s| str_to_u64(s).and_then(|x| u32::try_from(x).ok())
);

lenient!(
    F64Like,
    opt_f64,
    f64,
    "a number",
    |v| Some(v as f64),
    |v| Some(v as f64),
    Some,
    |_| None,
    |s| s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
);

lenient!(
    BoolLike,
    opt_bool,
    bool,
    "a boolean",
    |_| None,
    |_| None,
    |_| None,
    Some,
    parse_bool
);

/// A string; numbers are accepted and kept as written (`api_version: 2024.10` is rare, but a
/// numeric `model_info.id` is common).
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(StringLike).map(|s| s.0)
}

/// A secret: like [`opt_string`], and its errors never contain the value.
fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    d.deserialize_any(StringLike)
        .map(|s| s.0.map(SecretString::new))
}

struct ScalarString(Option<String>);
struct StringLike;

impl<'de> Visitor<'de> for StringLike {
    type Value = ScalarString;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<ScalarString, E> {
        Ok(ScalarString(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<ScalarString, E> {
        Ok(ScalarString(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ScalarString, D::Error> {
        d.deserialize_any(StringLike)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarString, E> {
        Ok(ScalarString(Some(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ScalarString, E> {
        Err(E::invalid_type(Unexpected::Other("a boolean"), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn numbers_accept_numeric_strings() {
        let p: RawLitellmParams =
            de("model: x\nrpm: '100'\ntpm: 2000.0\nweight: '0.5'\nmax_retries: 3\ntimeout: 30")
                .unwrap();
        assert_eq!(p.rpm, Some(100));
        assert_eq!(p.tpm, Some(2000));
        assert_eq!(p.weight, Some(0.5));
        assert_eq!(p.max_retries, Some(3));
        assert_eq!(p.timeout, Some(30.0));
    }

    #[test]
    fn number_type_errors_name_the_field() {
        let e = de::<RawLitellmParams>("rpm: abc").unwrap_err();
        assert_eq!(
            e,
            "rpm: invalid type: string \"abc\", expected a non-negative integer"
        );
        let e = de::<RawLitellmParams>("tpm: -5").unwrap_err();
        assert!(e.starts_with("tpm: invalid value: integer `-5`"), "{e}");
    }

    #[test]
    fn bools_accept_pyyaml_spellings() {
        let s: RawLitellmSettings =
            de("drop_params: 'yes'\njson_logs: False\nset_verbose: on").unwrap();
        assert_eq!(s.drop_params, Some(true));
        assert_eq!(s.json_logs, Some(false));
        assert_eq!(s.set_verbose, Some(true));
        assert!(de::<RawLitellmSettings>("drop_params: 3").is_err());
    }

    #[test]
    fn aliases_both_forms() {
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
    fn fallbacks_format() {
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
    fn secret_errors_do_not_echo() {
        let p: RawLitellmParams = de("api_key: 12345").unwrap();
        assert_eq!(p.api_key.unwrap().expose(), "12345");
        let e = de::<RawLitellmParams>("api_key: {sk-abc: 1}").unwrap_err();
        assert!(!e.contains("sk-abc"), "{e}");
    }
}
