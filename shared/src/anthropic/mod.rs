//! Anthropic's Messages API: wire types and their translation to and from OpenAI chat.
//!
//! The pure layer behind a `POST /v1/messages` front door (Claude Code and the Anthropic SDKs
//! as clients). Requests routed to an Anthropic deployment can pass through as parsed
//! ([`types`] keeps unknown fields); requests routed to an OpenAI-shaped deployment are
//! translated with [`to_openai()`], and the answer comes back through [`from_openai()`] or, for
//! streams, [`stream::StreamTranslator`].
//!
//! - [`types`] — requests, content blocks, tools, the response `Message`, stream events,
//!   `count_tokens`.
//! - [`error`] — the error body and the HTTP status ↔ error type mapping.
//! - [`names`] — tool names OpenAI accepts (≤ 64 characters) and the way back.
//! - [`to_openai`](mod@to_openai) — `MessagesRequest` → `ChatCompletionRequest`, with notes on
//!   what could not be carried over.
//! - [`from_openai`](mod@from_openai) — `ChatCompletionResponse` → `Message`; finish reasons and
//!   usage.
//! - [`stream`] — OpenAI chunks → Anthropic stream events, the SSE encoder and an accumulator
//!   that rebuilds a `Message` from events.
//!
//! Translation never fails on a loss it can describe: it records a [`TranslationNote`] (for the
//! gateway to log) and goes on. It fails with a [`TranslateError`] naming the field path when
//! the request is invalid or holds content that cannot reach an OpenAI deployment at all.

pub mod error;
pub mod from_openai;
pub mod names;
pub mod stream;
pub mod to_openai;
pub mod types;

pub use error::{ErrorDetail, ErrorResponse, ErrorType, error_type_for_status};
pub use from_openai::{TranslationContext, UpstreamExtras, from_openai};
pub use names::ToolNameMap;
pub use stream::{MessageAccumulator, StreamTranslator, encode_sse, error_event};
pub use to_openai::{ToOpenAi, to_openai};
pub use types::*;

pub use crate::translate::{TranslateError, TranslationNote};

impl TranslateError {
    /// The 400 `invalid_request_error` body for this error.
    pub fn to_error_response(&self) -> ErrorResponse {
        ErrorResponse::new(ErrorType::InvalidRequestError, self.to_string())
    }
}
