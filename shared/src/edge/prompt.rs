//! What the edge reads of a request body: a lenient view of an OpenAI chat or completion
//! request. Anything it cannot read makes it give up (`None`) rather than fail: the edge
//! forwards such requests unclassified and the origin gives the real error.

use serde_json::Value;

/// The longest body the edge classifies (larger ones are forwarded unclassified).
pub const MAX_CLASSIFY_BYTES: usize = 1 << 20;
/// Characters of the last user turn the classifier reads.
pub const MAX_TEXT_CHARS: usize = 6_000;

/// The parts of a request the classifier looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptView {
    /// The requested model (group), if any.
    pub model: Option<String>,
    /// The text the classifier reads: the last user turn (chat) or the prompt (completion),
    /// at most [`MAX_TEXT_CHARS`] characters.
    pub text: String,
    /// Characters in every message together.
    pub total_chars: usize,
    /// Messages in the conversation (1 for a completion).
    pub messages: usize,
    /// User turns.
    pub user_turns: usize,
    pub has_system: bool,
    /// Tools or functions offered, or tool results carried.
    pub has_tools: bool,
    /// `max_tokens` / `max_completion_tokens` when given.
    pub max_tokens: Option<u64>,
    pub stream: bool,
    /// `metadata.routing_profile` (or `routeiq_profile`) when given.
    pub profile: Option<String>,
}

fn content_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
        }
        _ => {}
    }
}

fn truncate_chars(s: &mut String, n: usize) {
    if let Some((i, _)) = s.char_indices().nth(n) {
        s.truncate(i);
    }
}

impl PromptView {
    /// Reads a request body; `None` when it is not a JSON chat or completion request the
    /// classifier can use.
    pub fn parse(body: &[u8]) -> Option<PromptView> {
        if body.len() > MAX_CLASSIFY_BYTES {
            return None;
        }
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        let mut view = PromptView {
            model: obj.get("model").and_then(Value::as_str).map(str::to_string),
            stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
            max_tokens: obj
                .get("max_completion_tokens")
                .or_else(|| obj.get("max_tokens"))
                .and_then(Value::as_u64),
            has_tools: ["tools", "functions"].iter().any(|k| {
                obj.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            }),
            profile: obj.get("metadata").and_then(|m| {
                ["routing_profile", "routeiq_profile"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(Value::as_str))
                    .map(str::to_string)
            }),
            ..PromptView::default()
        };
        if let Some(messages) = obj.get("messages") {
            let messages = messages.as_array()?;
            let mut last_user = None;
            for m in messages {
                let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
                let mut text = String::new();
                if let Some(c) = m.get("content") {
                    content_text(c, &mut text);
                }
                view.total_chars += text.chars().count();
                match role {
                    "user" => {
                        view.user_turns += 1;
                        last_user = Some(text);
                    }
                    "system" | "developer" => view.has_system = true,
                    "tool" | "function" => view.has_tools = true,
                    _ => {}
                }
                if m.get("tool_calls").is_some_and(|t| !t.is_null()) {
                    view.has_tools = true;
                }
            }
            view.messages = messages.len();
            view.text = last_user?;
        } else {
            let mut text = String::new();
            match obj.get("prompt")? {
                Value::String(s) => text.push_str(s),
                Value::Array(a) => {
                    for p in a {
                        if let Some(s) = p.as_str() {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(s);
                        }
                    }
                }
                _ => return None,
            }
            view.total_chars = text.chars().count();
            view.messages = 1;
            view.user_turns = 1;
            view.text = text;
        }
        truncate_chars(&mut view.text, MAX_TEXT_CHARS);
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_chat_request() {
        let body = br#"{"model":"smart","stream":true,"max_tokens":300,
            "metadata":{"routing_profile":"eco"},
            "messages":[{"role":"system","content":"be brief"},
                        {"role":"user","content":"first"},
                        {"role":"assistant","content":"ok"},
                        {"role":"user","content":[{"type":"text","text":"second"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        let v = PromptView::parse(body).unwrap();
        assert_eq!(v.model.as_deref(), Some("smart"));
        assert_eq!(v.text, "second");
        assert_eq!((v.messages, v.user_turns), (4, 2));
        assert!(v.has_system && v.stream && !v.has_tools);
        assert_eq!(v.max_tokens, Some(300));
        assert_eq!(v.profile.as_deref(), Some("eco"));
        assert_eq!(v.total_chars, "be brief".len() + 5 + 2 + 6);
    }

    #[test]
    fn reads_completions_and_tools() {
        let v = PromptView::parse(br#"{"model":"m","prompt":["a","b"]}"#).unwrap();
        assert_eq!(v.text, "a\nb");
        let v = PromptView::parse(
            br#"{"model":"m","tools":[{"type":"function"}],"messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert!(v.has_tools);
    }

    #[test]
    fn gives_up_on_what_it_cannot_read() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"model":"m"}"#,
            br#"{"model":"m","messages":"hi"}"#,
            br#"{"model":"m","messages":[{"role":"assistant","content":"x"}]}"#,
            br#"{"model":"m","prompt":42}"#,
        ] {
            assert_eq!(
                PromptView::parse(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let big = vec![b' '; MAX_CLASSIFY_BYTES + 1];
        assert_eq!(PromptView::parse(&big), None);
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_TEXT_CHARS + 10);
        let body = serde_json::json!({"model":"m","prompt": text}).to_string();
        let v = PromptView::parse(body.as_bytes()).unwrap();
        assert_eq!(v.text.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(v.total_chars, MAX_TEXT_CHARS + 10);
    }
}
