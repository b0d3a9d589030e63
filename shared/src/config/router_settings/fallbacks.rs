//! Fallback lists (`fallbacks`, `content_policy_fallbacks`, `context_window_fallbacks`,
//! `default_fallbacks`), in `router_settings` or `litellm_settings`: their raw form and
//! the check that every group they name exists.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::config::load::Loader;
use crate::config::model_list::ModelGroups;
use crate::config::schema::join;

/// A fallback rule: requests for `from` that fail go to `to`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackRule {
    pub from: String,
    pub to: Vec<String>,
}

/// One entry of a LiteLLM fallbacks list: `{group: [target, ...]}`. A single target may be
/// written as a plain string. Entries are kept in file order; the loader requires exactly one
/// key per entry.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::config) struct RawFallback(pub Vec<(String, Vec<String>)>);

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

/// A fallbacks list (`fallbacks`, `content_policy_fallbacks`, `context_window_fallbacks`):
/// every group named must exist (`*` as the source means every group). `None` when unset.
pub(super) fn load(
    raw: Option<Vec<RawFallback>>,
    path: &str,
    groups: &ModelGroups,
    cx: &mut Loader,
) -> Option<Vec<FallbackRule>> {
    let raw = raw?;
    let mut rules = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let entry_path = format!("{path}[{i}]");
        if entry.0.len() != 1 {
            cx.problem(
                &entry_path,
                format!(
                    "each fallback entry must map exactly one model group to its fallbacks \
                     (e.g. {{\"gpt-4o\": [\"gpt-4o-mini\"]}}), found {} keys",
                    entry.0.len()
                ),
            );
            continue;
        }
        for (from, to) in entry.0 {
            let from_path = join(&entry_path, &from);
            // `*`: LiteLLM's generic fallback for every group.
            if from != "*" && !groups.is_group_or_alias(&from) {
                cx.problem(&from_path, groups.unknown_message(&from, true));
            }
            for (j, target) in to.iter().enumerate() {
                if !groups.is_group_or_alias(target) {
                    cx.problem(
                        format!("{from_path}[{j}]"),
                        groups.unknown_message(target, true),
                    );
                }
            }
            rules.push(FallbackRule { from, to });
        }
    }
    Some(rules)
}

/// `default_fallbacks`: every group named must exist. `None` when unset.
pub(super) fn load_default(
    raw: Option<&Vec<String>>,
    path: &str,
    groups: &ModelGroups,
    cx: &mut Loader,
) -> Option<Vec<String>> {
    let raw = raw?;
    for (i, target) in raw.iter().enumerate() {
        if !groups.is_group_or_alias(target) {
            cx.problem(format!("{path}[{i}]"), groups.unknown_message(target, true));
        }
    }
    Some(raw.clone())
}
