//! Anthropic's error body and the HTTP status ↔ error type mapping.
//!
//! - [`ErrorResponse`], the body: `{"type":"error","error":{"type","message"},"request_id"?}`.
//! - [`error_type_for_status`] / [`ErrorType::status`]: Anthropic's documented pairs, plus the
//!   statuses the gateway itself answers (408, 502, 503, 504...).
//! - [`ErrorResponse::from_upstream`]: an upstream's error body in Anthropic's shape (kept as is
//!   when it already is one, else the message of an OpenAI-style body, else the text).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::openai;

/// Anthropic's `error.type` values. Unknown ones are kept as strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    BillingError,
    PermissionError,
    NotFoundError,
    RequestTooLarge,
    RateLimitError,
    TimeoutError,
    ApiError,
    OverloadedError,
    #[serde(untagged)]
    Other(String),
}

impl ErrorType {
    /// The HTTP status Anthropic answers this error type with (unknown types: 500).
    pub fn status(&self) -> u16 {
        match self {
            ErrorType::InvalidRequestError => 400,
            ErrorType::AuthenticationError => 401,
            ErrorType::BillingError => 402,
            ErrorType::PermissionError => 403,
            ErrorType::NotFoundError => 404,
            ErrorType::RequestTooLarge => 413,
            ErrorType::RateLimitError => 429,
            ErrorType::TimeoutError => 504,
            ErrorType::ApiError | ErrorType::Other(_) => 500,
            ErrorType::OverloadedError => 529,
        }
    }
}

/// The Anthropic error type for an HTTP status.
///
/// Anthropic's documented pairs (400, 401, 402, 403, 404, 413, 429, 500, 504, 529), and for the
/// rest: other 4xx → `invalid_request_error` (as Anthropic documents), 408 → `timeout_error`,
/// 503 (the gateway's "no deployment can serve this now") → `overloaded_error`, other 5xx and
/// anything else → `api_error`. LiteLLM maps every unlisted status to `api_error`.
pub fn error_type_for_status(status: u16) -> ErrorType {
    match status {
        401 => ErrorType::AuthenticationError,
        402 => ErrorType::BillingError,
        403 => ErrorType::PermissionError,
        404 => ErrorType::NotFoundError,
        413 => ErrorType::RequestTooLarge,
        429 => ErrorType::RateLimitError,
        408 | 504 => ErrorType::TimeoutError,
        503 | 529 => ErrorType::OverloadedError,
        400..=499 => ErrorType::InvalidRequestError,
        _ => ErrorType::ApiError,
    }
}

/// `error` of an error body or of an `error` stream event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub message: String,
}

/// Anthropic's error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorDetail,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorResponse {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ErrorResponse {
            kind: "error".into(),
            error: ErrorDetail {
                kind,
                message: message.into(),
            },
            request_id: None,
        }
    }

    /// The error for an HTTP status ([`error_type_for_status`]).
    pub fn for_status(status: u16, message: impl Into<String>) -> Self {
        Self::new(error_type_for_status(status), message)
    }

    /// An OpenAI error body (`{"error":{"message",...}}`) answered with `status`.
    pub fn from_openai(status: u16, body: &openai::ErrorBody) -> Self {
        Self::for_status(status, body.error.message.clone())
    }

    /// An upstream's error body as Anthropic's: kept when it already has Anthropic's shape;
    /// else the `error.message` (OpenAI) or `message` of a JSON body; else the body's text
    /// (or the status when the body is empty).
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body)
            && parsed.kind == "error"
        {
            return parsed;
        }
        let message = match serde_json::from_slice::<Value>(body) {
            Ok(v) => json_message(&v),
            Err(_) => None,
        }
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                format!("upstream answered HTTP {status}")
            } else {
                text
            }
        });
        Self::for_status(status, message)
    }

    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The HTTP status to answer this error with.
    pub fn status(&self) -> u16 {
        self.error.kind.status()
    }
}

/// The message of a JSON error body: `error.message`, `error` (a string), `message`,
/// `detail.message` or `detail` (a string).
fn json_message(v: &Value) -> Option<String> {
    let candidates = [
        v.pointer("/error/message"),
        v.get("error"),
        v.get("message"),
        v.get("Message"),
        v.pointer("/detail/message"),
        v.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_map_to_anthropic_error_types() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (408, "timeout_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
            (200, "api_error"),
        ];
        for (status, kind) in cases {
            assert_eq!(
                serde_json::to_value(error_type_for_status(status)).unwrap(),
                kind,
                "{status}"
            );
        }
        for status in [400, 401, 402, 403, 404, 413, 429, 500, 504, 529] {
            assert_eq!(error_type_for_status(status).status(), status);
        }
    }

    #[test]
    fn error_body_shape() {
        let body = ErrorResponse::for_status(529, "Overloaded").with_request_id("req_1");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_1"})
        );
        assert_eq!(body.status(), 529);
    }

    #[test]
    fn upstream_bodies_become_anthropic_errors() {
        let anthropic =
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        let e = ErrorResponse::from_upstream(429, anthropic);
        assert_eq!(e.error.kind, ErrorType::RateLimitError);
        assert_eq!(e.error.message, "slow down");

        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error","param":null,"code":null}}"#;
        let e = ErrorResponse::from_upstream(404, openai);
        assert_eq!(e.error.kind, ErrorType::NotFoundError);
        assert_eq!(e.error.message, "bad model");

        let e = ErrorResponse::from_upstream(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.error.kind, ErrorType::ApiError);
        assert_eq!(e.error.message, "<html>Bad Gateway</html>");

        let e = ErrorResponse::from_upstream(500, b"");
        assert_eq!(e.error.message, "upstream answered HTTP 500");

        let e = ErrorResponse::from_upstream(400, br#"{"detail":{"message":"bedrock says no"}}"#);
        assert_eq!(e.error.message, "bedrock says no");

        let unknown: ErrorResponse = serde_json::from_value(
            json!({"type":"error","error":{"type":"brand_new_error","message":"m"}}),
        )
        .unwrap();
        assert_eq!(
            unknown.error.kind,
            ErrorType::Other("brand_new_error".into())
        );
        assert_eq!(unknown.status(), 500);
    }

    #[test]
    fn from_openai_body() {
        let body: openai::ErrorBody = serde_json::from_value(
            json!({"error":{"message":"nope","type":"auth","param":null,"code":null}}),
        )
        .unwrap();
        let e = ErrorResponse::from_openai(401, &body);
        assert_eq!(e.error.kind, ErrorType::AuthenticationError);
        assert_eq!(e.error.message, "nope");
    }
}
