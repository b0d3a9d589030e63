//! The gateway's error type: every failure a request can meet, its HTTP status, whether a retry
//! may help, and its OpenAI-shaped JSON body `{"error":{"message","type","param","code"}}`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use routeiq::openai::{ErrorBody, ErrorDetail};

/// `Retry-After` on a 429 or 503 when nothing better is known.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The class of an error an upstream provider returned, as LiteLLM classifies them
/// (this drives `retry_policy`, cooldowns and which fallback list applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    BadRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RateLimit,
    ContextWindowExceeded,
    ContentPolicyViolation,
    InternalServer,
    ServiceUnavailable,
}

impl UpstreamErrorKind {
    /// Classifies an upstream HTTP status (body hints refine 400s, see the providers).
    pub fn from_status(status: u16) -> UpstreamErrorKind {
        match status {
            400 | 422 => UpstreamErrorKind::BadRequest,
            401 => UpstreamErrorKind::Authentication,
            403 => UpstreamErrorKind::PermissionDenied,
            404 => UpstreamErrorKind::NotFound,
            408 => UpstreamErrorKind::ServiceUnavailable,
            413 => UpstreamErrorKind::ContextWindowExceeded,
            429 => UpstreamErrorKind::RateLimit,
            503 | 529 => UpstreamErrorKind::ServiceUnavailable,
            s if s >= 500 => UpstreamErrorKind::InternalServer,
            _ => UpstreamErrorKind::BadRequest,
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            UpstreamErrorKind::BadRequest
            | UpstreamErrorKind::ContextWindowExceeded
            | UpstreamErrorKind::ContentPolicyViolation
            | UpstreamErrorKind::NotFound => "invalid_request_error",
            UpstreamErrorKind::Authentication => "authentication_error",
            UpstreamErrorKind::PermissionDenied => "permission_error",
            UpstreamErrorKind::RateLimit => "rate_limit_error",
            UpstreamErrorKind::InternalServer | UpstreamErrorKind::ServiceUnavailable => {
                "api_error"
            }
        }
    }

    fn code(self) -> Option<&'static str> {
        match self {
            UpstreamErrorKind::ContextWindowExceeded => Some("context_length_exceeded"),
            UpstreamErrorKind::ContentPolicyViolation => Some("content_policy_violation"),
            UpstreamErrorKind::RateLimit => Some("rate_limit_exceeded"),
            _ => None,
        }
    }
}

/// Everything that can go wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not valid JSON, or not the shape the endpoint takes.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("missing or invalid API key: pass it as 'Authorization: Bearer <key>' or 'x-api-key'")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("model '{model}' not found; available models: {}", .available.join(", "))]
    ModelNotFound {
        model: String,
        available: Vec<String>,
    },
    #[error("request body exceeds the {limit_mb} MB limit (general_settings.max_request_size_mb)")]
    PayloadTooLarge { limit_mb: f64 },
    /// The client stopped sending its request body (`ROUTEIQ_BODY_IDLE_TIMEOUT_SECONDS`).
    #[error("{0}")]
    RequestTimeout(String),
    /// Every deployment of the group is cooling down or over its rpm/tpm limit.
    #[error("no deployments available for model group '{model_group}': {reason}")]
    NoDeploymentAvailable {
        model_group: String,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Every deployment of the group has an open circuit breaker.
    #[error("{message}")]
    CircuitOpen {
        model_group: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// `ROUTEIQ_MAX_CONCURRENT_REQUESTS` requests are in flight: shed.
    #[error("the gateway is at its limit of {limit} concurrent requests; retry shortly")]
    Overloaded { limit: usize },
    /// The SSRF guard refused the outbound connection.
    #[error(transparent)]
    OutboundBlocked(#[from] crate::outbound::OutboundBlocked),
    /// The request asks for something the chosen provider or endpoint cannot do.
    #[error("{0}")]
    NotSupported(String),
    /// The upstream answered with an error status.
    #[error("{provider} returned {status}: {message}")]
    Upstream {
        provider: String,
        status: u16,
        kind: UpstreamErrorKind,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer (or no next chunk) within the configured timeout.
    #[error("{provider} did not answer within {:.1}s", .after.as_secs_f64())]
    Timeout { provider: String, after: Duration },
    /// Could not connect, or the connection broke before a complete answer.
    #[error("{provider} connection failed: {message}")]
    Connection { provider: String, message: String },
    /// The upstream answered 2xx with a body RouteIQ cannot read.
    #[error("{provider} returned an unreadable response: {message}")]
    BadUpstreamResponse { provider: String, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>) -> Self {
        GatewayError::InvalidRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid_param(message: impl Into<String>, param: impl Into<String>) -> Self {
        GatewayError::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            GatewayError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::NoDeploymentAvailable { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::CircuitOpen { .. } | GatewayError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::OutboundBlocked(_) => StatusCode::FORBIDDEN,
            GatewayError::NotSupported(_) => StatusCode::BAD_REQUEST,
            GatewayError::Upstream { status, kind, .. } => match kind {
                UpstreamErrorKind::ContextWindowExceeded
                | UpstreamErrorKind::ContentPolicyViolation => StatusCode::BAD_REQUEST,
                _ => StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            },
            GatewayError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Connection { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::BadUpstreamResponse { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether trying again (the same or another deployment) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            GatewayError::InvalidRequest { .. }
            | GatewayError::Unauthorized
            | GatewayError::Forbidden(_)
            | GatewayError::ModelNotFound { .. }
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RequestTimeout(_)
            | GatewayError::NotSupported(_)
            | GatewayError::Internal(_)
            | GatewayError::OutboundBlocked(_)
            | GatewayError::Overloaded { .. } => false,
            GatewayError::NoDeploymentAvailable { .. } | GatewayError::CircuitOpen { .. } => false,
            GatewayError::Upstream { kind, .. } => matches!(
                kind,
                UpstreamErrorKind::RateLimit
                    | UpstreamErrorKind::InternalServer
                    | UpstreamErrorKind::ServiceUnavailable
            ),
            GatewayError::Timeout { .. }
            | GatewayError::Connection { .. }
            | GatewayError::BadUpstreamResponse { .. } => true,
        }
    }

    /// The upstream error class, for retry policy, cooldowns and fallback selection.
    /// Timeouts and connection failures count as `ServiceUnavailable`.
    pub fn upstream_kind(&self) -> Option<UpstreamErrorKind> {
        match self {
            GatewayError::Upstream { kind, .. } => Some(*kind),
            GatewayError::Timeout { .. }
            | GatewayError::Connection { .. }
            | GatewayError::BadUpstreamResponse { .. } => {
                Some(UpstreamErrorKind::ServiceUnavailable)
            }
            _ => None,
        }
    }

    /// Seconds the upstream asked us to wait (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::Upstream { retry_after, .. }
            | GatewayError::NoDeploymentAvailable { retry_after, .. }
            | GatewayError::CircuitOpen { retry_after, .. } => *retry_after,
            GatewayError::Overloaded { .. } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest { .. }
            | GatewayError::ModelNotFound { .. }
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RequestTimeout(_)
            | GatewayError::NotSupported(_) => "invalid_request_error",
            GatewayError::Unauthorized => "authentication_error",
            GatewayError::Forbidden(_) | GatewayError::OutboundBlocked(_) => "permission_error",
            GatewayError::NoDeploymentAvailable { .. } => "rate_limit_error",
            GatewayError::CircuitOpen { .. } | GatewayError::Overloaded { .. } => "api_error",
            GatewayError::Upstream { kind, .. } => kind.openai_type(),
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::Connection { .. } | GatewayError::BadUpstreamResponse { .. } => {
                "api_error"
            }
            GatewayError::Internal(_) => "internal_error",
        }
    }

    fn code(&self) -> Option<String> {
        match self {
            GatewayError::InvalidRequest { .. } => Some("invalid_request".into()),
            GatewayError::Unauthorized => Some("invalid_api_key".into()),
            GatewayError::ModelNotFound { .. } => Some("model_not_found".into()),
            GatewayError::PayloadTooLarge { .. } => Some("request_too_large".into()),
            GatewayError::RequestTimeout(_) => Some("request_timeout".into()),
            GatewayError::NoDeploymentAvailable { .. } => Some("no_deployments_available".into()),
            GatewayError::CircuitOpen { .. } => Some("circuit_open".into()),
            GatewayError::Overloaded { .. } => Some("server_overloaded".into()),
            GatewayError::OutboundBlocked(_) => Some("ssrf_blocked".into()),
            GatewayError::Upstream { kind, status, .. } => Some(
                kind.code()
                    .map(str::to_string)
                    .unwrap_or(status.to_string()),
            ),
            GatewayError::Timeout { .. } => Some("timeout".into()),
            _ => None,
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            GatewayError::InvalidRequest { param, .. } => param.clone(),
            GatewayError::ModelNotFound { .. } => Some("model".into()),
            _ => None,
        }
    }

    /// The OpenAI-shaped body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.to_string(),
                kind: self.error_type().to_string(),
                param: self.param(),
                code: self.code(),
            },
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        // Every 429 and 503 says when to come back (clients and SDKs back off on it).
        let retry_after = self.retry_after().or_else(|| {
            matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then_some(DEFAULT_RETRY_AFTER)
        });
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(after) = retry_after {
            let secs = after
                .as_secs()
                .saturating_add(u64::from(after.subsec_nanos() > 0))
                .max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_retryability() {
        let e = GatewayError::Upstream {
            provider: "openai".into(),
            status: 429,
            kind: UpstreamErrorKind::RateLimit,
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(e.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert!(e.is_retryable());
        let ctx = GatewayError::Upstream {
            provider: "openai".into(),
            status: 400,
            kind: UpstreamErrorKind::ContextWindowExceeded,
            message: "too long".into(),
            retry_after: None,
        };
        assert_eq!(ctx.status_code(), StatusCode::BAD_REQUEST);
        assert!(!ctx.is_retryable());
        assert_eq!(
            ctx.body().error.code.as_deref(),
            Some("context_length_exceeded")
        );
        let t = GatewayError::Timeout {
            provider: "x".into(),
            after: Duration::from_secs(3),
        };
        assert_eq!(t.status_code(), StatusCode::GATEWAY_TIMEOUT);
        assert!(t.is_retryable());
    }

    #[test]
    fn model_not_found_lists_models() {
        let e = GatewayError::ModelNotFound {
            model: "gpt-5".into(),
            available: vec!["a".into(), "b".into()],
        };
        let body = e.body();
        assert_eq!(e.status_code(), StatusCode::NOT_FOUND);
        assert!(body.error.message.contains("a, b"));
        assert_eq!(body.error.param.as_deref(), Some("model"));
    }
}
