//! Client access on the API routes, as one axum middleware inside [`super::observe`]:
//!
//! - who the request acts as ([`Principal`], [`authenticate`]): the master key, a virtual key
//!   when the control plane is on (`crate::keys`), or a JWT when JWT auth is on (a token of
//!   three base64url segments; `crate::keys::jwt`); without a master key the gateway runs open;
//! - the key's `allowed_routes` (an admin JWT: only `/v1/models` here, LiteLLM's admin
//!   routes);
//! - `x-ratelimit-*` headers on the answer;
//! - refusals in the route's error shape (Anthropic's on `/v1/messages`).
//!
//! A request with a method its route does not take passes through (the router's 405).
//! Handlers read the principal with [`principal`], check the model with [`check_model`], then
//! [`admit`] it on the routes that call a model: budgets and rate limits, in LiteLLM's order
//! (model access before budgets); the [`crate::keys::Admission`] goes into the request's
//! context and is charged when the request ends.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::auth::authorize;
use crate::http::observe::{RequestCtx, RouteKind};
use crate::keys::access::presented_key;
use crate::keys::jwt::looks_like_jwt;
use crate::keys::{AccessError, JwtGrant, Principal};

/// Whether the request is one of a client route's (authenticated here): the LLM routes,
/// `/v1/models`, `/router/explain`, with a method the route takes.
fn gated(route: RouteKind, path: &str, method: &Method) -> bool {
    match route {
        RouteKind::Chat
        | RouteKind::Completions
        | RouteKind::Embeddings
        | RouteKind::Messages
        | RouteKind::CountTokens => method == Method::POST,
        RouteKind::Models => method == Method::GET,
        RouteKind::Responses => {
            let bare = path.strip_prefix("/v1").unwrap_or(path);
            if bare == "/responses" {
                method == Method::POST
            } else {
                method == Method::GET || method == Method::DELETE
            }
        }
        RouteKind::Other => path == "/router/explain" && method == Method::POST,
        RouteKind::Admin | RouteKind::Probe => false,
    }
}

/// LiteLLM's route groups a key's `allowed_routes` may name.
const LLM_API_ROUTES: &[&str] = &[
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/messages",
    "/messages/count_tokens",
    "/responses",
    "/models",
];

/// The route groups `allowed_routes` takes besides paths.
pub const ROUTE_GROUPS: &[&str] = &["llm_api_routes", "openai_routes", "info_routes"];

/// Whether `allowed` (a key's `allowed_routes`) lets it call `path`.
pub fn route_allowed(allowed: &[String], path: &str) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let bare = path.strip_prefix("/v1").unwrap_or(path);
    let bare = if bare.starts_with("/responses/") {
        "/responses"
    } else {
        bare
    };
    allowed.iter().any(|a| {
        let a_bare = a.strip_prefix("/v1").unwrap_or(a);
        match a.as_str() {
            "llm_api_routes" | "openai_routes" => LLM_API_ROUTES.contains(&bare),
            "info_routes" => bare == "/models",
            _ => a_bare == bare || a == path,
        }
    })
}

/// The routes an admin JWT may call among the client routes: LiteLLM's default
/// `admin_allowed_routes` (only `info_routes` reaches a client route: `/v1/models`).
const ADMIN_JWT_ROUTES: &[&str] = &[
    "management_routes",
    "spend_tracking_routes",
    "global_spend_tracking_routes",
    "info_routes",
];

/// The JWT the request presents, when JWT auth is on and the credential looks like one (and
/// is not the master key).
pub fn presented_jwt<'a>(gw: &Gateway, headers: &'a axum::http::HeaderMap) -> Option<&'a str> {
    gw.jwt.as_ref()?;
    let token = presented_key(headers)?;
    let master = gw.master_key.as_ref()?;
    let is_master = bool::from(token.as_bytes().ct_eq(master.expose().as_bytes()));
    (looks_like_jwt(token) && !is_master).then_some(token)
}

/// Who the request acts as: a JWT (when JWT auth is on and the credential looks like one),
/// else the master key or a virtual key (control plane on), else the master key alone.
pub async fn authenticate(
    gw: &Gateway,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, GatewayError> {
    if let Some(token) = presented_jwt(gw, headers)
        && let Some(jwt) = &gw.jwt
    {
        let identity = jwt.verify(token).await?;
        return match &gw.services.control {
            Some(control) => Ok(control.jwt_principal(identity).await?),
            // Refused at start-up: tokens name no team or user without a control plane.
            None if identity.team_id.is_some() || identity.user_id.is_some() => Err(
                GatewayError::Internal("JWT teams and users need the control plane".into()),
            ),
            None => Ok(Principal::Jwt(Arc::new(JwtGrant {
                admin: identity.admin,
                ..JwtGrant::default()
            }))),
        };
    }
    match &gw.services.control {
        Some(control) => Ok(control
            .authenticate(gw.master_key.as_ref(), headers)
            .await?),
        None => {
            authorize(gw.master_key.as_ref(), headers)?;
            Ok(if gw.master_key.is_some() {
                Principal::Master
            } else {
                Principal::Open
            })
        }
    }
}

/// The middleware (see the module docs).
pub async fn access(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let route = RouteKind::of(&path);
    if !gated(route, &path, req.method()) {
        return next.run(req).await;
    }
    let gw = app.gateway();
    let refuse = |e: GatewayError| {
        if route.anthropic_errors() {
            e.into_anthropic_response()
        } else {
            e.into_response()
        }
    };
    let principal = match authenticate(&gw, req.headers()).await {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    match &principal {
        Principal::Key(grant) if !route_allowed(&grant.key.record.allowed_routes, &path) => {
            return refuse(
                AccessError::RouteNotAllowed {
                    route: path,
                    allowed: grant.key.record.allowed_routes.clone(),
                }
                .into(),
            );
        }
        Principal::Jwt(grant) if grant.admin => {
            let allowed: Vec<String> = ADMIN_JWT_ROUTES.iter().map(|r| r.to_string()).collect();
            if !route_allowed(&allowed, &path) {
                return refuse(
                    AccessError::AdminRouteNotAllowed {
                        route: path,
                        allowed: ADMIN_JWT_ROUTES.to_vec(),
                    }
                    .into(),
                );
            }
        }
        Principal::Key(_) | Principal::Jwt(_) | Principal::Open | Principal::Master => {}
    }
    let ctx = RequestCtx::of(&req);
    req.extensions_mut().insert(principal);
    let mut resp = next.run(req).await;
    let headers = ctx.read(|i| i.admission.as_ref().map(|a| a.headers()));
    for (name, value) in headers.unwrap_or_default() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value.to_string()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// Checks the budgets and rate limits of `principal` for a request that calls a model, after
/// its model was checked ([`check_model`]), and records its admission in `ctx` (charged
/// when the request ends). Nothing for the master key or an open gateway.
pub async fn admit(
    gw: &Gateway,
    principal: &Principal,
    ctx: &RequestCtx,
) -> Result<(), GatewayError> {
    let Some(control) = &gw.services.control else {
        return Ok(());
    };
    if let Some(admission) = control.admit(principal).await? {
        ctx.admitted(admission);
    }
    Ok(())
}

/// The request's principal: what [`access`] found, else (no middleware) the master key.
pub fn principal(
    gw: &Gateway,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, GatewayError> {
    if let Some(p) = extensions.get::<Principal>() {
        return Ok(p.clone());
    }
    authorize(gw.master_key.as_ref(), headers)?;
    Ok(if gw.master_key.is_some() {
        Principal::Master
    } else {
        Principal::Open
    })
}

/// Whether a model list (a key's, a team's or a user's `models`) allows `model` (the name
/// requested) or `group` (the model group it resolves to). Empty: everything.
pub fn models_allow(list: &[String], model: &str, group: Option<&str>) -> bool {
    if list.is_empty() {
        return true;
    }
    list.iter().any(|m| {
        m == "*"
            || m == "all-proxy-models"
            || m == model
            || Some(m.as_str()) == group
            || m.strip_suffix('*').is_some_and(|prefix| {
                !prefix.is_empty()
                    && (model.starts_with(prefix) || group.is_some_and(|g| g.starts_with(prefix)))
            })
    })
}

/// The model a request with `principal` calls for `requested`: the key's alias applied, then
/// checked against the key's (else its team's) and its user's models (a JWT's team's and
/// user's).
pub fn check_model(
    gw: &Gateway,
    principal: &Principal,
    requested: &str,
) -> Result<String, GatewayError> {
    let key = principal.key().map(|k| &k.record);
    let model = key
        .and_then(|k| k.aliases.get(requested))
        .and_then(|v| v.as_str())
        .unwrap_or(requested)
        .to_string();
    let group = gw.router.resolve_group(&model);
    let deny = |entity: &'static str, allowed: &[String]| {
        GatewayError::from(AccessError::ModelNotAllowed {
            entity,
            model: requested.to_string(),
            allowed: allowed.to_vec(),
        })
    };
    match key {
        Some(key) if !key.models.is_empty() => {
            if !models_allow(&key.models, &model, group) {
                return Err(deny("key", &key.models));
            }
        }
        _ => {
            if let Some(team) = principal.team()
                && !models_allow(&team.record.models, &model, group)
            {
                return Err(deny("team", &team.record.models));
            }
        }
    }
    if let Some(user) = principal.user()
        && !models_allow(&user.record.models, &model, group)
    {
        return Err(deny("user", &user.record.models));
    }
    Ok(model)
}

/// Whether `principal` may see `model` in `/v1/models`.
pub fn lists_model(gw: &Gateway, principal: &Principal, model: &str) -> bool {
    check_model(gw, principal, model).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let none: Vec<String> = vec![];
        assert!(route_allowed(&none, "/v1/chat/completions"));
        let only_chat = vec!["/chat/completions".to_string()];
        assert!(route_allowed(&only_chat, "/v1/chat/completions"));
        assert!(route_allowed(&only_chat, "/chat/completions"));
        assert!(!route_allowed(&only_chat, "/v1/embeddings"));
        let llm = vec!["llm_api_routes".to_string()];
        assert!(route_allowed(&llm, "/v1/responses/resp_1"));
        assert!(route_allowed(&llm, "/v1/messages"));
        assert!(!route_allowed(&llm, "/router/explain"));
    }

    #[test]
    fn model_lists() {
        let list = vec!["gpt-4o".to_string(), "claude-*".to_string()];
        assert!(models_allow(&list, "gpt-4o", None));
        assert!(models_allow(&list, "alias", Some("gpt-4o")));
        assert!(models_allow(&list, "claude-3", None));
        assert!(!models_allow(&list, "gpt-4o-mini", Some("gpt-4o-mini")));
        assert!(models_allow(&["*".to_string()], "x", None));
        assert!(models_allow(&[], "x", None));
    }
}
