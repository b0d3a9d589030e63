//! The gateway's error type: every failure a request can meet, its HTTP status, whether a retry
//! may help, and its OpenAI-shaped JSON body `{"error":{"message","type","param","code"}}`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use routeiq::openai::{ErrorBody, ErrorDetail};
use routeiq::router::{FailureClass, FallbackKind};

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
            UpstreamErrorKind::BadRequest
            | UpstreamErrorKind::Authentication
            | UpstreamErrorKind::PermissionDenied
            | UpstreamErrorKind::NotFound
            | UpstreamErrorKind::InternalServer
            | UpstreamErrorKind::ServiceUnavailable => None,
        }
    }
}

/// What a failure means for routing, decided once per [`GatewayError`] variant by
/// [`GatewayError::class`]: retry policy, deployment health, fallback list and metric label
/// all follow from it (exhaustive matches, no defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself (or the gateway) is at fault: no retry, no fallback, no health
    /// effect.
    Request,
    /// The chosen provider cannot do what the request asks: another group may.
    Unsupported,
    /// The SSRF guard refused the endpoint.
    Blocked,
    /// Every deployment of the group is cooling down, rate limited or circuit-open.
    NoCapacity,
    /// The upstream answered with an error status.
    Upstream(UpstreamErrorKind),
    /// No answer in time.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// A 2xx answer the gateway cannot read (or too large to relay).
    BadResponse,
}

/// The `retry_policy` entry that governs an error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySlot {
    BadRequest,
    Authentication,
    Timeout,
    RateLimit,
    ContentPolicyViolation,
    InternalServer,
    /// Never retried (context-window errors: a retry cannot fit the prompt).
    Never,
    /// Not an upstream failure: `retry_policy` does not apply.
    None,
}

impl ErrorClass {
    /// How the failure affects the deployment's health (cooldowns, circuit breakers).
    pub fn failure(self) -> FailureClass {
        match self {
            ErrorClass::Timeout | ErrorClass::Connection | ErrorClass::BadResponse => {
                FailureClass::Counted
            }
            ErrorClass::Upstream(kind) => match kind {
                UpstreamErrorKind::RateLimit
                | UpstreamErrorKind::Authentication
                | UpstreamErrorKind::PermissionDenied
                | UpstreamErrorKind::NotFound => FailureClass::Immediate,
                UpstreamErrorKind::InternalServer | UpstreamErrorKind::ServiceUnavailable => {
                    FailureClass::Counted
                }
                UpstreamErrorKind::BadRequest
                | UpstreamErrorKind::ContextWindowExceeded
                | UpstreamErrorKind::ContentPolicyViolation => FailureClass::Ignored,
            },
            ErrorClass::Request
            | ErrorClass::Unsupported
            | ErrorClass::Blocked
            | ErrorClass::NoCapacity => FailureClass::Ignored,
        }
    }

    /// Which fallback list the failure leads to, if any.
    pub fn fallback(self) -> Option<FallbackKind> {
        match self {
            ErrorClass::Upstream(kind) => match kind {
                UpstreamErrorKind::ContextWindowExceeded => Some(FallbackKind::ContextWindow),
                UpstreamErrorKind::ContentPolicyViolation => Some(FallbackKind::ContentPolicy),
                // The request itself is wrong: another model group would reject it too.
                UpstreamErrorKind::BadRequest => None,
                UpstreamErrorKind::Authentication
                | UpstreamErrorKind::PermissionDenied
                | UpstreamErrorKind::NotFound
                | UpstreamErrorKind::RateLimit
                | UpstreamErrorKind::InternalServer
                | UpstreamErrorKind::ServiceUnavailable => Some(FallbackKind::General),
            },
            ErrorClass::NoCapacity
            | ErrorClass::Timeout
            | ErrorClass::Connection
            | ErrorClass::BadResponse
            | ErrorClass::Unsupported => Some(FallbackKind::General),
            ErrorClass::Request | ErrorClass::Blocked => None,
        }
    }

    /// The `retry_policy` entry for the failure.
    pub fn retry_slot(self) -> RetrySlot {
        match self {
            ErrorClass::Timeout => RetrySlot::Timeout,
            ErrorClass::Connection | ErrorClass::BadResponse => RetrySlot::InternalServer,
            ErrorClass::Upstream(kind) => match kind {
                UpstreamErrorKind::BadRequest | UpstreamErrorKind::NotFound => {
                    RetrySlot::BadRequest
                }
                UpstreamErrorKind::Authentication | UpstreamErrorKind::PermissionDenied => {
                    RetrySlot::Authentication
                }
                UpstreamErrorKind::RateLimit => RetrySlot::RateLimit,
                UpstreamErrorKind::ContentPolicyViolation => RetrySlot::ContentPolicyViolation,
                UpstreamErrorKind::InternalServer | UpstreamErrorKind::ServiceUnavailable => {
                    RetrySlot::InternalServer
                }
                UpstreamErrorKind::ContextWindowExceeded => RetrySlot::Never,
            },
            ErrorClass::Request
            | ErrorClass::Unsupported
            | ErrorClass::Blocked
            | ErrorClass::NoCapacity => RetrySlot::None,
        }
    }

    /// The `class` label of `routeiq_upstream_errors_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::BadResponse => "bad_response",
            ErrorClass::Blocked => "ssrf_blocked",
            ErrorClass::Upstream(kind) => match kind {
                UpstreamErrorKind::BadRequest => "bad_request",
                UpstreamErrorKind::Authentication | UpstreamErrorKind::PermissionDenied => "auth",
                UpstreamErrorKind::NotFound => "not_found",
                UpstreamErrorKind::RateLimit => "rate_limit",
                UpstreamErrorKind::ContextWindowExceeded => "context_window",
                UpstreamErrorKind::ContentPolicyViolation => "content_policy",
                UpstreamErrorKind::InternalServer => "server_error",
                UpstreamErrorKind::ServiceUnavailable => "unavailable",
            },
            ErrorClass::Request | ErrorClass::Unsupported | ErrorClass::NoCapacity => "other",
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
    OutboundBlocked(#[from] crate::upstream::guard::OutboundBlocked),
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
    /// The control plane refused the request (virtual keys: key, route, model, budget,
    /// rate limit).
    #[error(transparent)]
    Access(#[from] crate::keys::AccessError),
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
                UpstreamErrorKind::BadRequest
                | UpstreamErrorKind::Authentication
                | UpstreamErrorKind::PermissionDenied
                | UpstreamErrorKind::NotFound
                | UpstreamErrorKind::RateLimit
                | UpstreamErrorKind::InternalServer
                | UpstreamErrorKind::ServiceUnavailable => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
                }
            },
            GatewayError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Connection { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::BadUpstreamResponse { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Access(e) => e.status(),
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
            | GatewayError::Access(_)
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

    /// What the failure means for routing (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            GatewayError::InvalidRequest { .. }
            | GatewayError::Unauthorized
            | GatewayError::Forbidden(_)
            | GatewayError::ModelNotFound { .. }
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RequestTimeout(_)
            | GatewayError::Overloaded { .. }
            | GatewayError::Access(_)
            | GatewayError::Internal(_) => ErrorClass::Request,
            GatewayError::NotSupported(_) => ErrorClass::Unsupported,
            GatewayError::OutboundBlocked(_) => ErrorClass::Blocked,
            GatewayError::NoDeploymentAvailable { .. } | GatewayError::CircuitOpen { .. } => {
                ErrorClass::NoCapacity
            }
            GatewayError::Upstream { kind, .. } => ErrorClass::Upstream(*kind),
            GatewayError::Timeout { .. } => ErrorClass::Timeout,
            GatewayError::Connection { .. } => ErrorClass::Connection,
            GatewayError::BadUpstreamResponse { .. } => ErrorClass::BadResponse,
        }
    }

    /// The upstream's own `Retry-After` on a failed call (not a wait the gateway computed).
    pub fn upstream_retry_after(&self) -> Option<Duration> {
        if let GatewayError::Upstream { retry_after, .. } = self {
            *retry_after
        } else {
            None
        }
    }

    /// Whether the upstream refused for now and said (or implied) when to come back: such a
    /// deployment is left at once for any other that can serve.
    pub fn is_rate_limited(&self) -> bool {
        self.class() == ErrorClass::Upstream(UpstreamErrorKind::RateLimit)
            || self.upstream_retry_after().is_some()
    }

    /// Seconds the upstream asked us to wait (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::Upstream { retry_after, .. }
            | GatewayError::NoDeploymentAvailable { retry_after, .. }
            | GatewayError::CircuitOpen { retry_after, .. } => *retry_after,
            GatewayError::Overloaded { .. } => Some(Duration::from_secs(1)),
            GatewayError::Access(e) => e.retry_after(),
            GatewayError::InvalidRequest { .. }
            | GatewayError::Unauthorized
            | GatewayError::Forbidden(_)
            | GatewayError::ModelNotFound { .. }
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RequestTimeout(_)
            | GatewayError::OutboundBlocked(_)
            | GatewayError::NotSupported(_)
            | GatewayError::Timeout { .. }
            | GatewayError::Connection { .. }
            | GatewayError::BadUpstreamResponse { .. }
            | GatewayError::Internal(_) => None,
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
            GatewayError::Access(e) => e.error_type(),
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
            GatewayError::Access(e) => Some(e.code()),
            GatewayError::Forbidden(_)
            | GatewayError::NotSupported(_)
            | GatewayError::Connection { .. }
            | GatewayError::BadUpstreamResponse { .. }
            | GatewayError::Internal(_) => None,
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            GatewayError::InvalidRequest { param, .. } => param.clone(),
            GatewayError::ModelNotFound { .. } => Some("model".into()),
            GatewayError::Access(e) => e.param().map(str::to_string),
            GatewayError::Unauthorized
            | GatewayError::Forbidden(_)
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RequestTimeout(_)
            | GatewayError::NoDeploymentAvailable { .. }
            | GatewayError::CircuitOpen { .. }
            | GatewayError::Overloaded { .. }
            | GatewayError::OutboundBlocked(_)
            | GatewayError::NotSupported(_)
            | GatewayError::Upstream { .. }
            | GatewayError::Timeout { .. }
            | GatewayError::Connection { .. }
            | GatewayError::BadUpstreamResponse { .. }
            | GatewayError::Internal(_) => None,
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

impl From<routeiq::Error> for GatewayError {
    fn from(e: routeiq::Error) -> Self {
        match e {
            routeiq::Error::UnknownModel { model, available } => {
                GatewayError::ModelNotFound { model, available }
            }
            routeiq::Error::NoDeploymentAvailable {
                group,
                reason,
                retry_after_ms,
            } => GatewayError::NoDeploymentAvailable {
                model_group: group,
                reason,
                retry_after: retry_after_ms.map(Duration::from_millis),
            },
            e @ routeiq::Error::NoUsableDeployment { .. } => {
                GatewayError::NotSupported(e.to_string())
            }
            routeiq::Error::CircuitOpen {
                ref group,
                retry_after_ms,
                ..
            } => GatewayError::CircuitOpen {
                model_group: group.clone(),
                message: e.to_string(),
                retry_after: retry_after_ms.map(Duration::from_millis),
            },
            routeiq::Error::Config(e) => GatewayError::Internal(e.to_string()),
            routeiq::Error::State(e) => GatewayError::Internal(format!("state store: {e}")),
        }
    }
}

impl GatewayError {
    /// The `Retry-After` value of the answer: the error's own wait (whole seconds, rounded
    /// up, at least 1), else 1 second on every 429 and 503 (clients and SDKs back off on it).
    fn retry_after_header(&self) -> Option<HeaderValue> {
        if let GatewayError::Access(e) = self
            && e.no_retry_after()
        {
            return None;
        }
        let status = self.status_code();
        let after = self.retry_after().or_else(|| {
            matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
            .then_some(DEFAULT_RETRY_AFTER)
        })?;
        let secs = after
            .as_secs()
            .saturating_add(u64::from(after.subsec_nanos() > 0))
            .max(1);
        HeaderValue::from_str(&secs.to_string()).ok()
    }

    /// The error in Anthropic's shape, for the Messages API routes:
    /// `{"type":"error","error":{"type","message"}}`, the same status (its `error.type` from
    /// it: [`routeiq::anthropic::error_type_for_status`]) and the same `Retry-After`.
    pub fn into_anthropic_response(self) -> Response {
        let status = self.status_code();
        let body = routeiq::anthropic::ErrorResponse::for_status(status.as_u16(), self.to_string());
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(v) = self.retry_after_header() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        self.add_headers(resp.headers_mut());
        resp
    }

    /// Headers of the error's own (LiteLLM's `rate_limit_type`, `reset_at`).
    fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        if let GatewayError::Access(e) = self {
            for (name, value) in e.headers() {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after_header();
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        self.add_headers(resp.headers_mut());
        resp
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An upstream error of `kind` with `status` (for tests across the crate).
    pub(crate) fn upstream(kind: UpstreamErrorKind, status: u16) -> GatewayError {
        GatewayError::Upstream {
            provider: "openai".into(),
            status,
            kind,
            message: "x".into(),
            retry_after: None,
        }
    }

    #[test]
    fn fallback_kinds() {
        assert_eq!(
            upstream(UpstreamErrorKind::ContextWindowExceeded, 400)
                .class()
                .fallback(),
            Some(FallbackKind::ContextWindow)
        );
        assert_eq!(
            upstream(UpstreamErrorKind::BadRequest, 400)
                .class()
                .fallback(),
            None
        );
        assert_eq!(
            upstream(UpstreamErrorKind::RateLimit, 429)
                .class()
                .fallback(),
            Some(FallbackKind::General)
        );
        assert_eq!(GatewayError::Unauthorized.class().fallback(), None);
    }

    #[test]
    fn failure_classes() {
        assert_eq!(
            upstream(UpstreamErrorKind::RateLimit, 429)
                .class()
                .failure(),
            FailureClass::Immediate
        );
        assert_eq!(
            upstream(UpstreamErrorKind::InternalServer, 500)
                .class()
                .failure(),
            FailureClass::Counted
        );
        assert_eq!(
            upstream(UpstreamErrorKind::ContextWindowExceeded, 400)
                .class()
                .failure(),
            FailureClass::Ignored
        );
    }

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

    #[tokio::test]
    async fn anthropic_shape_keeps_status_type_and_retry_after() {
        let e = GatewayError::Upstream {
            provider: "openai".into(),
            status: 429,
            kind: UpstreamErrorKind::RateLimit,
            message: "slow down".into(),
            retry_after: Some(Duration::from_millis(2500)),
        };
        let resp = e.into_anthropic_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("slow down")
        );
        for (e, status, kind) in [
            (GatewayError::Unauthorized, 401, "authentication_error"),
            (
                GatewayError::ModelNotFound {
                    model: "x".into(),
                    available: vec![],
                },
                404,
                "not_found_error",
            ),
            (
                GatewayError::PayloadTooLarge { limit_mb: 1.0 },
                413,
                "request_too_large",
            ),
            (GatewayError::invalid("bad"), 400, "invalid_request_error"),
            (
                GatewayError::Overloaded { limit: 1 },
                503,
                "overloaded_error",
            ),
        ] {
            let resp = e.into_anthropic_response();
            assert_eq!(resp.status().as_u16(), status);
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["type"], kind, "{status}");
        }
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
