//! [`AccessError`]: why the control plane refused a request, with its status, LiteLLM's
//! error `type`, and the waits and headers a refusal carries.

use std::time::Duration;

use axum::http::StatusCode;

/// Which limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rpm,
    Tpm,
    Parallel,
    /// Requests per hour (RouteIQ's, from ModelMuxer).
    Rph,
    /// Requests per day.
    Rpd,
    /// Requests in one second.
    Burst,
}

impl LimitKind {
    /// LiteLLM's `Limit type` (and `rate_limit_type` header).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "requests",
            LimitKind::Tpm => "tokens",
            LimitKind::Parallel => "max_parallel_requests",
            LimitKind::Rph => "requests_per_hour",
            LimitKind::Rpd => "requests_per_day",
            LimitKind::Burst => "burst",
        }
    }
}

/// Why the control plane refused a request. Messages, `type`s and statuses are LiteLLM's
/// (1.110.2; the model message lists the allowed models as LiteLLM's earlier releases did).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    /// No key passed.
    #[error("Authentication Error, No api key passed in.")]
    NoKey,
    /// A key the gateway does not know.
    #[error("Authentication Error, Invalid API key provided.")]
    InvalidKey,
    #[error("Authentication Error - Expired Key. Key Expiry time {expires} and current time {now}")]
    ExpiredKey { expires: String, now: String },
    /// The key or its team is blocked (the message says which).
    #[error("Authentication Error, {0}")]
    Blocked(String),
    /// The key's team does not exist.
    #[error(
        "Authentication Error, Team doesn't exist in db. Team={0}. Create team via `/team/new` call."
    )]
    TeamNotFound(String),
    /// The key may not call this route.
    #[error(
        "Virtual key is not allowed to call this route. Only allowed to call routes: {allowed:?}. Tried to call route: {route}"
    )]
    RouteNotAllowed { route: String, allowed: Vec<String> },
    /// The key (or its team or user) may not call this model.
    #[error(
        "{entity} not allowed to access model. This {entity} can only access models={allowed:?}. Tried to access {model}"
    )]
    ModelNotAllowed {
        /// `key`, `team` or `user`.
        entity: &'static str,
        model: String,
        allowed: Vec<String>,
    },
    /// A budget is spent: `message` is LiteLLM's for the entity.
    #[error("{message}")]
    BudgetExceeded {
        message: String,
        /// `litellm_settings.budget_exceeded_status_code` (default 429).
        status: u16,
    },
    /// A rate limit is reached.
    #[error(
        "Rate limit exceeded for {descriptor}: {id}. Limit type: {}. Current limit: {limit}, Remaining: 0. Limit resets at: {reset_at} UTC",
        .kind.as_str()
    )]
    RateLimited {
        /// `api_key`, `team`, `user`.
        descriptor: &'static str,
        id: String,
        kind: LimitKind,
        limit: u64,
        /// `YYYY-MM-DD HH:MM:SS`.
        reset_at: String,
        retry_after: Duration,
    },
    /// The key store cannot be reached and the key is not cached: refused, never let in.
    #[error("Authentication Error, the key store is unavailable ({0}); retry shortly")]
    StoreUnavailable(String),
    /// A JWT whose `exp` has passed.
    #[error("Token Expired")]
    TokenExpired,
    /// A JWT that failed verification, or names no team where one is required: the reason
    /// (`Validation fails: ...`), never the token.
    #[error("Authentication Error, {0}")]
    InvalidToken(String),
    /// No key set can verify JWTs now: its URL cannot be reached and no copy is recent enough.
    #[error(
        "Authentication Error, the identity provider's JWKS endpoint is temporarily unreachable; retry shortly"
    )]
    KeySetUnavailable,
    /// A JWT names a user the key store does not hold.
    #[error(
        "Authentication Error, User doesn't exist in db. 'user_id'={0}. Create user via `/user/new` call."
    )]
    UserNotFound(String),
    /// An admin JWT on a route admins do not call (LiteLLM's `admin_allowed_routes`).
    #[error("Admin not allowed to access this route. Route={route}, Allowed Routes={allowed:?}")]
    AdminRouteNotAllowed {
        route: String,
        allowed: Vec<&'static str>,
    },
}

impl AccessError {
    pub fn status(&self) -> StatusCode {
        match self {
            AccessError::NoKey
            | AccessError::InvalidKey
            | AccessError::ExpiredKey { .. }
            | AccessError::Blocked(_)
            | AccessError::TeamNotFound(_)
            | AccessError::TokenExpired
            | AccessError::InvalidToken(_)
            | AccessError::UserNotFound(_) => StatusCode::UNAUTHORIZED,
            AccessError::RouteNotAllowed { .. }
            | AccessError::ModelNotAllowed { .. }
            | AccessError::AdminRouteNotAllowed { .. } => StatusCode::FORBIDDEN,
            AccessError::BudgetExceeded { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
            }
            AccessError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccessError::StoreUnavailable(_) | AccessError::KeySetUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// LiteLLM's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            AccessError::NoKey
            | AccessError::Blocked(_)
            | AccessError::TeamNotFound(_)
            | AccessError::RouteNotAllowed { .. }
            | AccessError::StoreUnavailable(_)
            | AccessError::InvalidToken(_)
            | AccessError::KeySetUnavailable
            | AccessError::UserNotFound(_)
            | AccessError::AdminRouteNotAllowed { .. } => "auth_error",
            AccessError::InvalidKey => "token_not_found_in_db",
            AccessError::ExpiredKey { .. } | AccessError::TokenExpired => "expired_key",
            AccessError::ModelNotAllowed { entity, .. } => {
                if *entity == "team" {
                    "team_model_access_denied"
                } else {
                    "key_model_access_denied"
                }
            }
            AccessError::BudgetExceeded { .. } => "budget_exceeded",
            AccessError::RateLimited { .. } => "throttling_error",
        }
    }

    /// `error.code`: the status, as LiteLLM writes it (a string).
    pub fn code(&self) -> String {
        self.status().as_u16().to_string()
    }

    /// `error.param`.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            AccessError::ModelNotAllowed { .. } => Some("model"),
            AccessError::InvalidKey => Some("key"),
            AccessError::NoKey
            | AccessError::ExpiredKey { .. }
            | AccessError::Blocked(_)
            | AccessError::TeamNotFound(_)
            | AccessError::RouteNotAllowed { .. }
            | AccessError::BudgetExceeded { .. }
            | AccessError::RateLimited { .. }
            | AccessError::StoreUnavailable(_)
            | AccessError::TokenExpired
            | AccessError::InvalidToken(_)
            | AccessError::KeySetUnavailable
            | AccessError::UserNotFound(_)
            | AccessError::AdminRouteNotAllowed { .. } => None,
        }
    }

    /// The wait a refusal asks for (`Retry-After`): the rate-limit window's end; a second
    /// for an unreachable store; none for a budget (LiteLLM sends none: waiting does not
    /// help until the budget resets).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AccessError::RateLimited { retry_after, .. } => Some(*retry_after),
            AccessError::StoreUnavailable(_) | AccessError::KeySetUnavailable => {
                Some(Duration::from_secs(1))
            }
            AccessError::NoKey
            | AccessError::InvalidKey
            | AccessError::ExpiredKey { .. }
            | AccessError::Blocked(_)
            | AccessError::TeamNotFound(_)
            | AccessError::RouteNotAllowed { .. }
            | AccessError::ModelNotAllowed { .. }
            | AccessError::BudgetExceeded { .. }
            | AccessError::TokenExpired
            | AccessError::InvalidToken(_)
            | AccessError::UserNotFound(_)
            | AccessError::AdminRouteNotAllowed { .. } => None,
        }
    }

    /// Whether the answer must not carry a `Retry-After` even when its status is 429.
    pub fn no_retry_after(&self) -> bool {
        matches!(self, AccessError::BudgetExceeded { .. })
    }

    /// LiteLLM's extra headers on a rate-limit refusal (`rate_limit_type`, `reset_at`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            AccessError::RateLimited { kind, reset_at, .. } => vec![
                ("rate_limit_type", kind.as_str().to_string()),
                ("reset_at", reset_at.clone()),
            ],
            AccessError::NoKey
            | AccessError::InvalidKey
            | AccessError::ExpiredKey { .. }
            | AccessError::Blocked(_)
            | AccessError::TeamNotFound(_)
            | AccessError::RouteNotAllowed { .. }
            | AccessError::ModelNotAllowed { .. }
            | AccessError::BudgetExceeded { .. }
            | AccessError::StoreUnavailable(_)
            | AccessError::TokenExpired
            | AccessError::InvalidToken(_)
            | AccessError::KeySetUnavailable
            | AccessError::UserNotFound(_)
            | AccessError::AdminRouteNotAllowed { .. } => Vec::new(),
        }
    }
}
