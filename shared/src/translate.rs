//! What the wire-format translations (Anthropic Messages, OpenAI Responses ↔ chat) report:
//!
//! - [`TranslationNote`]: something a translation dropped or changed, for the gateway to log;
//! - [`TranslateError`]: a request that is invalid or cannot be translated, with its field
//!   path; each front door answers it as a 400 in its own shape.

use std::fmt;

/// Something a translation dropped or changed, with the field path it concerns
/// (`messages.3.content.0`, `input.2`, `top_k`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationNote {
    pub path: String,
    pub message: String,
}

impl TranslationNote {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        TranslationNote {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslationNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// An invalid or untranslatable request: the field path (`messages.2.content.1.id`,
/// `input.2.call_id`...) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TranslateError {
    pub path: String,
    pub message: String,
}

impl TranslateError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            path: path.into(),
            message: message.into(),
        }
    }
}
