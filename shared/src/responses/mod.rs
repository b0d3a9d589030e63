//! OpenAI's Responses API: wire types and their translation to and from OpenAI chat.
//!
//! The pure layer behind a `POST /v1/responses` front door (Codex CLI, the OpenAI Agents SDK
//! and new OpenAI SDK code as clients). Requests routed to an OpenAI deployment pass through
//! as parsed ([`types`] keeps unknown fields); requests routed to any other deployment are
//! translated with [`to_chat()`], and the answer comes back through [`from_chat()`] or, for
//! streams, [`stream::StreamTranslator`]. The gateway stores the items of each turn
//! ([`store`]) so a later request can name it in `previous_response_id`.
//!
//! - [`types`] — the request, input/output items, tools, the `Response` object, usage and
//!   stream events.
//! - [`to_chat`](mod@to_chat) — `ResponsesRequest` (+ the stored items of earlier turns) →
//!   `ChatCompletionRequest`, with notes on what could not be carried over.
//! - [`from_chat`](mod@from_chat) — `ChatCompletionResponse` → `Response`: output items,
//!   status, usage; the [`ResponseContext`] the answer echoes.
//! - [`stream`] — chat chunks → Responses stream events, the SSE encoder and an accumulator
//!   that rebuilds the `Response` from events.
//! - [`store`] — the items to keep for the next turn, and a request with its history inlined.
//!
//! Translation never fails on a loss it can describe: it records a [`TranslationNote`] (for the
//! gateway to log) and goes on. It fails with a [`TranslateError`] naming the field path when
//! the request is invalid or needs something a chat deployment cannot do (a hosted tool it
//! requires, an image by `file_id`, background mode...).

pub mod from_chat;
pub mod store;
pub mod stream;
pub mod to_chat;
pub mod types;

pub use from_chat::{ResponseContext, UsageDetails, from_chat, new_response_id};
pub use store::{inline_history, input_items, items_for_next_turn};
pub use stream::{ResponseAccumulator, StreamTranslator, encode_sse, error_event};
pub use to_chat::{ToChat, to_chat};
pub use types::*;

use crate::openai;

pub use crate::translate::{TranslateError, TranslationNote};

impl TranslateError {
    /// OpenAI's 400 body for this error: `invalid_request_error` with `param` set to the path.
    pub fn to_error_body(&self) -> openai::ErrorBody {
        openai::ErrorBody {
            error: openai::ErrorDetail {
                message: self.to_string(),
                kind: "invalid_request_error".into(),
                param: Some(self.path.clone()),
                code: None,
            },
        }
    }
}

/// OpenAI's 400 for a `previous_response_id` the store does not hold (unknown, expired,
/// deleted, or stored with `store: false`): `invalid_request_error`, code
/// `previous_response_not_found`, param `previous_response_id`.
pub fn previous_response_not_found(id: &str) -> openai::ErrorBody {
    openai::ErrorBody {
        error: openai::ErrorDetail {
            message: format!("Previous response with id '{id}' not found."),
            kind: "invalid_request_error".into(),
            param: Some("previous_response_id".into()),
            code: Some("previous_response_not_found".into()),
        },
    }
}

/// OpenAI's 404 for `GET`/`DELETE /v1/responses/{id}` of a response the store does not hold.
pub fn response_not_found(id: &str) -> openai::ErrorBody {
    openai::ErrorBody {
        error: openai::ErrorDetail {
            message: format!("Response with id '{id}' not found."),
            kind: "invalid_request_error".into(),
            param: None,
            code: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_error_is_an_openai_400_body() {
        let e = TranslateError::new("input.2.call_id", "function_call items need a call_id");
        let v = serde_json::to_value(e.to_error_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {
                "message": "input.2.call_id: function_call items need a call_id",
                "type": "invalid_request_error", "param": "input.2.call_id", "code": null
            }})
        );
        assert_eq!(
            TranslationNote::new("include", "dropped").to_string(),
            "include: dropped"
        );
    }

    #[test]
    fn not_found_bodies() {
        let v = serde_json::to_value(previous_response_not_found("resp_x")).unwrap();
        assert_eq!(v["error"]["code"], "previous_response_not_found");
        assert_eq!(v["error"]["param"], "previous_response_id");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let v = serde_json::to_value(response_not_found("resp_x")).unwrap();
        assert_eq!(
            v["error"]["message"],
            "Response with id 'resp_x' not found."
        );
        let deleted = serde_json::to_value(ResponseDeleted::new("resp_x")).unwrap();
        assert_eq!(
            deleted,
            serde_json::json!({"id": "resp_x", "object": "response.deleted", "deleted": true})
        );
    }
}
