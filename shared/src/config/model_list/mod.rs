//! `model_list`: the deployments, each a model group name with its `litellm_params` and
//! `model_info`.
//!
//! - [`litellm_params`]: how to call the deployment (provider, endpoint, keys, limits).
//! - [`model_info`]: what it is (id, mode, prices, token limits, free-form metadata).
//! - [`auto_router`]: LiteLLM's routing models (`model: auto_router/...`), RouteIQ auto routers.
//! - [`ModelGroups`]: the group names, read from the tree before deserialization, that other
//!   sections' references (fallbacks, aliases, experiments) are checked against.

mod auto_router;
mod litellm_params;
mod model_info;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_yaml_ng::Value;

pub use auto_router::{
    AdaptivePreferences, AdaptiveRouterConfig, AutoRouterConfig, ComplexityRouterConfig,
    SemanticRoute, SemanticRouterConfig,
};
pub(super) use litellm_params::LITELLM_PARAMS;
pub use litellm_params::{AwsParams, LitellmParams, UnresolvedEnv, VertexParams};
pub(super) use model_info::MODEL_INFO;
pub use model_info::ModelInfo;

use super::coerce;
use super::load::{Loader, kind};
use super::schema::{self, MapSchema, Node, Unknown, join};
use litellm_params::RawLitellmParams;
use model_info::RawModelInfo;

/// One `model_list` entry.
pub(in crate::config) static DEPLOYMENT: MapSchema = MapSchema {
    implemented: &[
        ("model_name", Node::Any),
        ("litellm_params", Node::Map(&LITELLM_PARAMS)),
        ("model_info", Node::Map(&MODEL_INFO)),
        // LiteLLM also reads these beside litellm_params (litellm_params wins).
        ("rpm", Node::Any),
        ("tpm", Node::Any),
        ("weight", Node::Any),
        ("order", Node::Any),
    ],
    documented: &[],
    free: &[],
    unenforceable: &[],
    unknown: Unknown::Warn,
};

/// One entry of `model_list`: a deployment serving the group `model_name`.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    pub model_info: ModelInfo,
}

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
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub rpm: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_u64")]
    pub tpm: Option<u64>,
    #[serde(default, deserialize_with = "coerce::opt_f64")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "coerce::opt_u32")]
    pub order: Option<u32>,
}

/// `model_list`: each deployment deserialized and validated on its own, so one bad entry
/// does not hide the problems of the others.
pub(in crate::config) fn load(
    section: Option<Value>,
    groups: &ModelGroups,
    cx: &mut Loader,
) -> Vec<DeploymentConfig> {
    let items = match section {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            cx.problem(
                "model_list",
                format!("expected a list of deployments, found {}", kind(&other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("model_list[{i}]");
        let Some(raw) = cx.de::<RawDeployment>(item, &path) else {
            continue;
        };
        if let Some(d) = raw.load(&path, &mut ids, groups, cx) {
            out.push((i, d));
        }
    }
    // An auto router's model name routes to other groups: it cannot also be a group.
    for (i, d) in &out {
        if d.litellm_params.auto_router.is_some()
            && out
                .iter()
                .any(|(j, o)| j != i && o.model_name == d.model_name)
        {
            cx.problem(
                format!("model_list[{i}].model_name"),
                format!(
                    "'{}' is an auto router; no other deployment may use its model_name",
                    d.model_name
                ),
            );
        }
    }
    out.into_iter().map(|(_, d)| d).collect()
}

impl RawDeployment {
    /// `ids`: the `model_info.id`s seen so far, with the path of the deployment using each.
    fn load(
        self,
        path: &str,
        ids: &mut BTreeMap<String, String>,
        groups: &ModelGroups,
        cx: &mut Loader,
    ) -> Option<DeploymentConfig> {
        let model_name = match self.model_name {
            None if cx.failed(&join(path, "model_name")) => None,
            None => {
                cx.problem(
                    join(path, "model_name"),
                    "missing required key 'model_name'",
                );
                None
            }
            Some(n) if n.trim().is_empty() => {
                cx.problem(join(path, "model_name"), "must not be empty");
                None
            }
            Some(n) => Some(n),
        };
        let lp_path = join(path, "litellm_params");
        let litellm_params = match self.litellm_params {
            None if cx.failed(&lp_path) => None,
            None => {
                cx.problem(&lp_path, "missing required key 'litellm_params'");
                None
            }
            Some(lp) => {
                // LiteLLM accepts custom pricing in litellm_params too.
                let costs = (lp.input_cost_per_token, lp.output_cost_per_token);
                lp.load(&lp_path, groups, cx).map(|p| (p, costs))
            }
        };
        let (mut model_info, id) =
            RawModelInfo::load(self.model_info, &join(path, "model_info"), cx);
        if let Some(id) = id {
            let id_path = join(path, "model_info.id");
            if let Some(first) = ids.get(&id) {
                let first = first.clone();
                cx.problem(
                    id_path,
                    format!("duplicate model_info.id '{id}' (also used by {first})"),
                );
            } else {
                ids.insert(id, path.to_string());
            }
        }
        if let Some(w) = self.weight.filter(|w| !(w.is_finite() && *w > 0.0)) {
            cx.problem(join(path, "weight"), format!("must be > 0, got {w}"));
            return None;
        }
        let (mut litellm_params, costs) = litellm_params?;
        litellm_params.rpm = litellm_params.rpm.or(self.rpm);
        litellm_params.tpm = litellm_params.tpm.or(self.tpm);
        litellm_params.weight = litellm_params.weight.or(self.weight);
        litellm_params.order = litellm_params.order.or(self.order);
        if model_info.input_cost_per_token.is_none() {
            model_info.input_cost_per_token = costs.0;
        }
        if model_info.output_cost_per_token.is_none() {
            model_info.output_cost_per_token = costs.1;
        }
        Some(DeploymentConfig {
            model_name: model_name?,
            litellm_params,
            model_info,
        })
    }
}

/// The model groups of `model_list`, read from the tree before deserialization (so a
/// deployment with a type error elsewhere still counts as a group for references).
#[derive(Debug, Clone)]
pub(in crate::config) struct ModelGroups {
    names: BTreeSet<String>,
    /// `model_name`s with `*` (LiteLLM wildcard routing, e.g. `openai/*`).
    wildcards: Vec<String>,
    aliases: BTreeSet<String>,
    /// Deployments' `litellm_params.model` strings: LiteLLM routes a request (or a fallback)
    /// naming one to that deployment.
    litellm_models: BTreeSet<String>,
    /// Model names of auto routers (`model: auto_router/...`).
    auto_routers: BTreeSet<String>,
}

impl ModelGroups {
    pub(in crate::config) fn from_tree(model_list: Option<&Value>) -> ModelGroups {
        let mut names = BTreeSet::new();
        let mut litellm_models = BTreeSet::new();
        let mut auto_routers = BTreeSet::new();
        if let Some(Value::Sequence(items)) = model_list {
            for item in items {
                let name = match item.get("model_name") {
                    Some(Value::String(n)) => Some(n),
                    _ => None,
                };
                if let Some(n) = name {
                    names.insert(n.clone());
                }
                if let Some(Value::String(m)) =
                    item.get("litellm_params").and_then(|p| p.get("model"))
                {
                    litellm_models.insert(m.trim().to_string());
                    if let Some(n) = name.filter(|_| m.trim().starts_with(auto_router::PREFIX)) {
                        auto_routers.insert(n.clone());
                    }
                }
            }
        }
        let wildcards = names.iter().filter(|n| n.contains('*')).cloned().collect();
        ModelGroups {
            names,
            wildcards,
            aliases: BTreeSet::new(),
            litellm_models,
            auto_routers,
        }
    }

    /// The model name of an auto router.
    pub(in crate::config) fn is_auto_router(&self, name: &str) -> bool {
        self.auto_routers.contains(name)
    }

    /// Counts `alias` (a `model_group_alias` key) as a name references may use.
    pub(in crate::config) fn add_alias(&mut self, alias: &str) {
        self.aliases.insert(alias.to_string());
    }

    /// A model group (or a name a wildcard group serves).
    pub(in crate::config) fn is_group(&self, name: &str) -> bool {
        self.names.contains(name) || self.wildcards.iter().any(|w| glob_match(w, name))
    }

    /// A group, an alias, or a deployment's `litellm_params.model` (what a fallback or an
    /// experiment arm may name).
    pub(in crate::config) fn is_group_or_alias(&self, name: &str) -> bool {
        self.is_group(name) || self.aliases.contains(name) || self.litellm_models.contains(name)
    }

    pub(in crate::config) fn unknown_message(&self, name: &str, with_aliases: bool) -> String {
        let mut candidates: Vec<&str> = self.names.iter().map(String::as_str).collect();
        if with_aliases {
            candidates.extend(self.aliases.iter().map(String::as_str));
        }
        let base = format!("unknown model group '{name}'");
        match schema::suggest(name, &candidates) {
            Some(s) => format!("{base}; did you mean '{s}'?"),
            None if self.names.is_empty() => format!("{base} (model_list is empty)"),
            None => format!("{base} (not a model_name in model_list)"),
        }
    }
}

/// `*` matches any run of characters.
fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == s;
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use crate::config::schema::testing::assert_schema_matches;

    #[test]
    fn schema_matches_raw_type() {
        assert_schema_matches::<RawDeployment>(&DEPLOYMENT);
    }

    use super::*;
    use crate::config::load::testing::{BASIC, load, problems};

    #[test]
    fn limits_beside_litellm_params_count() {
        let l = load(
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o, rpm: 5}\n    \
             rpm: 60\n    tpm: '100_000'\n    weight: 2\n    order: 1\n",
        )
        .unwrap();
        let lp = &l.config.model_list[0].litellm_params;
        assert_eq!(
            (lp.rpm, lp.tpm, lp.weight, lp.order),
            (Some(5), Some(100_000), Some(2.0), Some(1))
        );
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let p = problems(
            "model_list:\n  - {model_name: a, litellm_params: {model: gpt-4o}, weight: 0}\n",
        );
        assert_eq!(p[0].path, "model_list[0].weight");
    }

    #[test]
    fn deployments_that_cannot_be_called_load_with_the_reason() {
        // LiteLLM starts with these and fails their requests; so does RouteIQ (the router
        // skips them and says why).
        let yaml = "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o, api_base: ftp://x}\n\
            \x20 - model_name: b\n    litellm_params: {model: hosted_vllm/llama}\n\
            \x20 - model_name: c\n    litellm_params: {model: azure/}\n";
        let l = load(yaml).unwrap();
        let paths: Vec<&str> = l.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.api_base",
                "model_list[1].litellm_params.api_base",
                "model_list[2].litellm_params.model",
            ]
        );
        let why: Vec<Option<&str>> = l
            .config
            .model_list
            .iter()
            .map(|d| d.litellm_params.unusable.as_deref())
            .collect();
        assert_eq!(
            why,
            [
                Some("api_base must be an http:// or https:// URL"),
                Some("no api_base (hosted_vllm has no default endpoint)"),
                Some("no model name after 'azure/'"),
            ]
        );
    }

    #[test]
    fn basic_deployment() {
        let l = load(BASIC).unwrap();
        let d = &l.config.model_list[0];
        assert_eq!(d.model_name, "gpt-4o");
        assert_eq!(d.litellm_params.model, "openai/gpt-4o");
    }

    #[test]
    fn litellm_params_checks() {
        let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
            api_base: ftp://x\n      weight: 0\n      timeout: -1\n\
            \x20 - model_name: b\n    litellm_params:\n      model: hosted_vllm/llama\n\
            \x20 - model_name: ''\n    litellm_params: {model: gpt-4o}\n\
            \x20 - model_name: d\n";
        let p = problems(yaml);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "model_list[0].litellm_params.weight",
                "model_list[0].litellm_params.timeout",
                "model_list[2].model_name",
                "model_list[3].litellm_params",
            ]
        );
    }

    #[test]
    fn wildcard_groups_satisfy_references() {
        let yaml = "model_list:\n  - {model_name: 'openai/*', litellm_params: {model: 'openai/*'}}\n\
            router_settings:\n  fallbacks: [{openai/gpt-4o: [openai/gpt-4o-mini]}]\n";
        assert!(load(yaml).is_ok());
        assert!(glob_match("openai/*", "openai/gpt-4o"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ac"));
    }
}
