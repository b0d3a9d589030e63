//! Key checking: the schema of the keys a LiteLLM `config.yaml` may contain.
//!
//! Every mapping of the config is walked against a [`MapSchema`] that lists
//!
//! * the keys RouteIQ implements (each is a field of its section's raw type: the section
//!   modules test that with [`testing::assert_schema_matches`]),
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

use super::{
    ConfigProblem, ConfigWarning, WarningKind, general_settings, litellm_settings, model_list,
    router_settings,
};

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
    /// Removed with a warning, with a "did you mean" over the known keys (LiteLLM adds keys
    /// every month: a config naming one must still start).
    Warn,
    /// Moved into the collected extras, unless it is a likely typo of a known key
    /// (then removed with a warning and a "did you mean").
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
    /// Keys LiteLLM documents that restrict access or spend and that RouteIQ cannot enforce,
    /// with what they control: set to anything but null, `false` or an empty value they stop
    /// the start (fail closed: a config must not look protected while it is not).
    pub unenforceable: &'static [(&'static str, &'static str)],
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
            .chain(self.unenforceable.iter().map(|(k, _)| *k))
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
            out.warnings.push(ConfigWarning::new(
                child,
                WarningKind::NotImplemented,
                NOT_IMPLEMENTED,
            ));
            continue;
        }
        if let Some((_, what)) = schema
            .unenforceable
            .iter()
            .find(|(k, _)| is_string_key && *k == name)
        {
            if map.shift_remove(&key).is_some_and(|v| restricts(&v)) {
                out.problems.push(ConfigProblem::new(
                    child,
                    format!(
                        "restricts {what}, which RouteIQ cannot enforce yet: refusing to start \
                         rather than serve without it (remove the key to run without it)"
                    ),
                ));
            }
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
                        out.warnings.push(ConfigWarning::new(
                            child,
                            WarningKind::Unknown,
                            format!("unknown key '{name}', ignored; did you mean '{s}'?"),
                        ));
                    }
                    None => collect(map, out),
                }
            }
            Unknown::Warn => {
                map.shift_remove(&key);
                let known = schema.known_names();
                let mut message = format!("unknown key '{name}', ignored");
                if let Some(s) = suggest(&name, &known) {
                    message.push_str(&format!("; did you mean '{s}'?"));
                }
                out.warnings
                    .push(ConfigWarning::new(child, WarningKind::Unknown, message));
            }
        }
    }
}

/// Does a value of an unenforceable key ask for a restriction? Null, `false`, an empty string,
/// list or mapping ask for none.
fn restricts(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.trim().is_empty() && super::coerce::parse_bool(s) != Some(false),
        Value::Sequence(items) => !items.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Number(_) | Value::Tagged(_) => true,
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
        ("model_list", Node::ListOf(&model_list::DEPLOYMENT)),
        (
            "router_settings",
            Node::Map(&router_settings::ROUTER_SETTINGS),
        ),
        (
            "litellm_settings",
            Node::Map(&litellm_settings::LITELLM_SETTINGS),
        ),
        (
            "general_settings",
            Node::Map(&general_settings::GENERAL_SETTINGS),
        ),
        ("environment_variables", Node::Any),
    ],
    documented: &[
        // Newer LiteLLM sections (its example configs use them).
        "sandbox_tools",
        "worker_registry",
        "callbacks",
        "policy_attachments",
        "include",
        "callback_settings",
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
    unenforceable: &[
        (
            "guardrails",
            "requests (guardrails checking prompts and answers)",
        ),
        ("policies", "requests (guardrail policies)"),
    ],
    unknown: Unknown::Warn,
};

/// The check each section module runs on its schema and raw type.
#[cfg(test)]
pub(super) mod testing {
    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use serde_yaml_ng::{Mapping, Value};

    use super::MapSchema;

    /// The keys `schema` marks implemented are exactly the fields of the raw type `T`, and
    /// each deserializes into `T` (set to null, i.e. absent): a key cannot be checked by the
    /// schema and then refused by the raw type, nor read by the raw type and never reach it.
    pub fn assert_schema_matches<T: DeserializeOwned>(schema: &MapSchema) {
        let fields: BTreeSet<&str> = serde_aux::serde_introspection::serde_introspect::<T>()
            .iter()
            .copied()
            .collect();
        let implemented: BTreeSet<&str> = schema.implemented_names().collect();
        assert_eq!(
            implemented,
            fields,
            "schema vs fields of {}",
            std::any::type_name::<T>()
        );
        for key in implemented {
            let mut m = Mapping::new();
            m.insert(Value::from(key), Value::Null);
            if let Err(e) = serde_yaml_ng::from_value::<T>(Value::Mapping(m)) {
                panic!(
                    "{key} does not deserialize into {}: {e}",
                    std::any::type_name::<T>()
                );
            }
        }
    }
}

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
            "router_settings:\n  enable_pre_call_checks: true\n  debug_level: INFO\n  routing_strategy: least-busy\n\
             litellm_settings:\n  cache_params:\n    type: redis\n    host: x\n",
        );
        let paths: Vec<_> = out.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "router_settings.enable_pre_call_checks",
                "router_settings.debug_level",
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
    fn unknown_key_warns_with_full_path_and_suggestion() {
        let (m, out) = run("router_settings:\n  routing_stratgy: least-busy\nmodel_lst: []\n");
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.warnings.len(), 2);
        assert_eq!(out.warnings[0].path, "router_settings.routing_stratgy");
        assert_eq!(out.warnings[0].kind, WarningKind::Unknown);
        assert_eq!(
            out.warnings[0].message,
            "unknown key 'routing_stratgy', ignored; did you mean 'routing_strategy'?"
        );
        assert_eq!(out.warnings[1].path, "model_lst");
        assert!(
            out.warnings[1]
                .message
                .contains("did you mean 'model_list'?")
        );
        // Removed from the tree: the raw types never see them.
        assert!(!m.contains_key("model_lst"));
        assert!(
            m["router_settings"]
                .as_mapping()
                .is_some_and(Mapping::is_empty)
        );
    }

    #[test]
    fn far_unknown_key_has_no_suggestion() {
        let (_, out) = run("general_settings:\n  zzqqxx_frobnicate: 1\n");
        assert_eq!(
            out.warnings[0].message,
            "unknown key 'zzqqxx_frobnicate', ignored"
        );
    }

    #[test]
    fn unenforceable_keys_fail_closed_unless_off() {
        let (_, out) = run(
            "general_settings:\n  allowed_ips: [10.0.0.1]\n  enforce_user_param: true\n  \
             enable_jwt_auth: false\n  allowed_routes: []\nlitellm_settings:\n  max_budget: 100\n",
        );
        let paths: Vec<&str> = out.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "general_settings.allowed_ips",
                "general_settings.enforce_user_param",
                "litellm_settings.max_budget"
            ]
        );
        assert!(out.problems[0].message.contains("cannot enforce"));
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn litellm_params_pass_through_and_typos() {
        let (m, out) = run(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      \
             temperature: 0.2\n      extra_body: {x: 1}\n      api_bse: http://x\n      \
             aws_role_name: my-role\n",
        );
        assert!(out.problems.is_empty());
        assert_eq!(out.warnings.len(), 2);
        assert_eq!(out.warnings[0].path, "model_list[0].litellm_params.api_bse");
        assert!(out.warnings[0].message.contains("did you mean 'api_base'?"));
        assert_eq!(
            out.warnings[1].path,
            "model_list[0].litellm_params.aws_role_name"
        );
        let extra = &out.extras["model_list[0].litellm_params"];
        assert!(extra.contains_key("temperature"));
        assert!(extra.contains_key("extra_body"));
        let lp = m["model_list"][0]["litellm_params"].as_mapping().unwrap();
        assert_eq!(lp.len(), 1);
    }

    #[test]
    fn common_provider_params_are_not_typos() {
        let known = model_list::LITELLM_PARAMS.known_names();
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
    fn model_info_keeps_free_form_keys_but_drops_typos() {
        let (_, out) = run(
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n    model_info:\n      \
             supports_vision: true\n      my_team_tag: x\n      input_cost_per_tokn: 1\n",
        );
        assert!(out.problems.is_empty());
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(
            out.warnings[0].path,
            "model_list[0].model_info.input_cost_per_tokn"
        );
        assert!(
            out.warnings[0]
                .message
                .contains("did you mean 'input_cost_per_token'?")
        );
        let extra = &out.extras["model_list[0].model_info"];
        assert!(extra.contains_key("supports_vision"));
        assert!(extra.contains_key("my_team_tag"));
    }

    #[test]
    fn top_level_documented_sections_warn() {
        // An empty guardrails list restricts nothing: removed without a word.
        let (m, out) = run("guardrails: []\ncredential_list: []\ninclude: [a.yaml]\n");
        assert_eq!(out.warnings.len(), 2);
        assert!(out.problems.is_empty());
        assert!(m.is_empty());
        let (_, out) = run("guardrails: [{guardrail_name: pii}]\n");
        assert_eq!(out.problems[0].path, "guardrails");
    }

    #[test]
    fn schema_lists_are_consistent() {
        // Every schema reachable from the top, so a new section is covered without a list.
        fn walk(s: &'static MapSchema, seen: &mut Vec<*const MapSchema>) {
            if seen.contains(&(s as *const MapSchema)) {
                return;
            }
            seen.push(s);
            let names = s.known_names();
            let unique: std::collections::BTreeSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "duplicate key in {names:?}");
            for (_, node) in s.implemented {
                match node {
                    Node::Map(c) | Node::ListOf(c) => walk(c, seen),
                    Node::Any => {}
                }
            }
        }
        let mut seen = Vec::new();
        walk(&TOP, &mut seen);
        assert_eq!(seen.len(), 14, "schemas reachable from TOP");
        assert!(general_settings::GENERAL_SETTINGS.documented.len() >= 55);
        assert!(litellm_settings::LITELLM_SETTINGS.documented.len() >= 35);
        // Keys move from documented to implemented as RouteIQ implements them.
        assert!(router_settings::ROUTER_SETTINGS.known_names().len() >= 50);
    }

    #[test]
    fn non_string_keys_are_problems() {
        let (_, out) = run("general_settings:\n  [a, b]: 1\n");
        assert_eq!(out.problems[0].path, "general_settings");
    }
}
