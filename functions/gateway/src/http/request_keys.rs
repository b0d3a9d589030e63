//! The keys a request is grouped by ([`RequestKeys`]).
//!
//! - the conversation key: `x-routeiq-conversation-id`, else `metadata.conversation_id` or
//!   `metadata.session_id` (at most 512 bytes; a bad value is a 400);
//! - the OpenAI `user`.
//!
//! Conversation affinity pins by the conversation key, else `user` (affinity on only);
//! experiments assign arms by the conversation key, else `user` ([`crate::experiment::route`]).

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Request header carrying the conversation key.
pub const CONVERSATION_HEADER: &str = crate::http::headers::CONVERSATION_ID;
/// Longest accepted conversation key (bytes).
const MAX_KEY_LEN: usize = 512;

/// The keys a request can be grouped by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestKeys {
    /// `x-routeiq-conversation-id`, else `metadata.conversation_id` / `metadata.session_id`.
    pub conversation: Option<String>,
    /// The OpenAI `user` field.
    pub user: Option<String>,
}

fn checked(v: &str, param: &str) -> Result<Option<String>, GatewayError> {
    let v = v.trim();
    if v.len() > MAX_KEY_LEN {
        return Err(GatewayError::invalid_param(
            format!("{param} is longer than {MAX_KEY_LEN} bytes"),
            param,
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

impl RequestKeys {
    /// The conversation header (call before the body is read; a bad value is a 400).
    pub fn from_headers(headers: &HeaderMap) -> Result<RequestKeys, GatewayError> {
        let conversation = match headers.get(CONVERSATION_HEADER) {
            None => None,
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    GatewayError::invalid(format!("{CONVERSATION_HEADER} is not valid text"))
                })?;
                checked(s, CONVERSATION_HEADER)?
            }
        };
        Ok(RequestKeys {
            conversation,
            user: None,
        })
    }

    /// Adds what the body says: `metadata.conversation_id` (or `session_id`) when no header
    /// gave a key, and `user`.
    pub fn with_body(
        mut self,
        metadata: Option<&Map<String, Value>>,
        user: Option<&str>,
    ) -> Result<RequestKeys, GatewayError> {
        if self.conversation.is_none() {
            for (field, path) in [
                ("conversation_id", "metadata.conversation_id"),
                ("session_id", "metadata.session_id"),
            ] {
                let value = match metadata.and_then(|m| m.get(field)) {
                    None | Some(Value::Null) => continue,
                    Some(Value::String(s)) => checked(s, path)?,
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(_) => {
                        return Err(GatewayError::invalid_param("must be a string", path));
                    }
                };
                if value.is_some() {
                    self.conversation = value;
                    break;
                }
            }
        }
        self.user = match user {
            Some(u) => checked(u, "user")?,
            None => None,
        };
        Ok(self)
    }

    /// The key conversation affinity pins by: the conversation key, else `user`.
    pub fn affinity_key(&self) -> Option<&str> {
        self.conversation.as_deref().or(self.user.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_come_from_the_header_then_metadata_and_user() {
        let mut h = HeaderMap::new();
        assert_eq!(
            RequestKeys::from_headers(&h).unwrap(),
            RequestKeys::default()
        );
        let meta: Map<String, Value> =
            serde_json::from_value(json!({"conversation_id": "m-1"})).unwrap();
        let k = RequestKeys::from_headers(&h)
            .unwrap()
            .with_body(Some(&meta), Some("u-1"))
            .unwrap();
        assert_eq!(k.conversation.as_deref(), Some("m-1"));
        assert_eq!(k.affinity_key(), Some("m-1"));
        h.insert(CONVERSATION_HEADER, HeaderValue::from_static("h-1"));
        let k = RequestKeys::from_headers(&h)
            .unwrap()
            .with_body(Some(&meta), Some("u-1"))
            .unwrap();
        assert_eq!(k.conversation.as_deref(), Some("h-1"));
        let k = RequestKeys::default().with_body(None, Some("u-1")).unwrap();
        assert_eq!(
            (k.conversation.as_deref(), k.affinity_key()),
            (None, Some("u-1"))
        );
        let bad: Map<String, Value> =
            serde_json::from_value(json!({"conversation_id": [1]})).unwrap();
        assert!(RequestKeys::default().with_body(Some(&bad), None).is_err());
        let long = "x".repeat(MAX_KEY_LEN + 1);
        assert!(RequestKeys::default().with_body(None, Some(&long)).is_err());
    }
}
