//! Tool names OpenAI accepts, and the way back to the names the client sent.
//!
//! - OpenAI function names must match `^[a-zA-Z0-9_-]{1,64}$`; Anthropic allows longer names
//!   (MCP tools such as `mcp__server__a_long_tool_name` often exceed 64 characters).
//! - A name that does not fit becomes `<first 55 sanitized chars>_<8 hex of its SHA-256>`, as
//!   LiteLLM does (it also replaces characters OpenAI rejects with `_`, which LiteLLM does not).
//! - [`ToolNameMap`] remembers every changed name so responses and streams restore it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// OpenAI's maximum function name length.
pub const OPENAI_MAX_TOOL_NAME_LEN: usize = 64;
/// Hex characters of the hash suffix of a shortened name.
const HASH_LEN: usize = 8;

/// The name to give OpenAI for a tool named `name`: unchanged when OpenAI accepts it.
pub fn openai_tool_name(name: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.is_empty() && name.len() <= OPENAI_MAX_TOOL_NAME_LEN && name.chars().all(valid) {
        return Cow::Borrowed(name);
    }
    let sanitized: String = name
        .chars()
        .map(|c| if valid(c) { c } else { '_' })
        .take(OPENAI_MAX_TOOL_NAME_LEN - HASH_LEN - 1)
        .collect();
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    Cow::Owned(format!("{sanitized}_{hash}"))
}

/// OpenAI name → original name, for the tool names [`openai_tool_name`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNameMap {
    originals: BTreeMap<String, String>,
}

impl ToolNameMap {
    /// The OpenAI name for `name`, remembering it when it differs.
    pub fn register(&mut self, name: &str) -> String {
        let openai = openai_tool_name(name);
        if openai != name {
            self.originals
                .insert(openai.clone().into_owned(), name.to_string());
        }
        openai.into_owned()
    }

    /// The name the client sent for an OpenAI tool name (unchanged names map to themselves).
    pub fn original<'a>(&'a self, openai_name: &'a str) -> &'a str {
        self.originals
            .get(openai_name)
            .map_or(openai_name, String::as_str)
    }

    /// How many names were changed.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_valid_names_are_kept() {
        for name in [
            "Read",
            "mcp__github__create_issue",
            "a-b_c9",
            &"x".repeat(64),
        ] {
            assert!(matches!(openai_tool_name(name), Cow::Borrowed(n) if n == name));
        }
    }

    #[test]
    fn long_or_invalid_names_are_shortened_and_restored() {
        let long = format!("mcp__server__{}", "very_long_tool_name_".repeat(5));
        let dotted = "namespace.tool:v2";
        let mut map = ToolNameMap::default();
        for name in [long.as_str(), dotted, ""] {
            let openai = map.register(name);
            assert!(openai.len() <= OPENAI_MAX_TOOL_NAME_LEN, "{openai}");
            assert!(
                openai
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{openai}"
            );
            assert_eq!(openai, map.register(name), "deterministic");
            assert_eq!(map.original(&openai), name);
        }
        assert_eq!(map.len(), 3);
        assert!(map.register(&long).starts_with("mcp__server__very_long"));
        assert_eq!(map.original("Read"), "Read");
        // Names that differ only past the cut do not collide.
        let a = format!("{}a", "t".repeat(70));
        let b = format!("{}b", "t".repeat(70));
        assert_ne!(openai_tool_name(&a), openai_tool_name(&b));
    }

    #[test]
    fn multibyte_names_are_sanitized_without_panicking() {
        let name = "outil_é_".repeat(20);
        let openai = openai_tool_name(&name);
        assert!(openai.is_ascii());
        assert!(openai.len() <= OPENAI_MAX_TOOL_NAME_LEN);
    }
}
