//! Control-plane endpoints:
//!
//! - admin keys (or an admin JWT): `POST /config/reload`, `GET /config/warnings`, `POST /router/reload`,
//!   `GET /router/experiments` (the running experiment's per-arm totals, see
//!   [`crate::experiment`]);
//! - `GET /metrics` and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use routeiq::router::CircuitState;
use routeiq::state::StoreHealth;
use serde_json::json;

use crate::GatewayError;
use crate::app::{App, ReloadError};
use crate::http::auth::authorize_admin;

async fn admin_check(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let gw = app.gateway();
    authorize_admin(&gw, headers).await.map_err(|e| {
        tracing::warn!(status = e.status_code().as_u16(), "admin request refused");
        Box::new(e.into_response())
    })
}

fn rejected(e: &ReloadError) -> Response {
    let problems: Vec<_> = e
        .problems()
        .into_iter()
        .map(|p| json!({"path": p.path, "message": p.message}))
        .collect();
    let body = json!({
        "error": {
            "message": e.to_string(),
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_config",
            "problems": problems,
        }
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Runs a reload on the background runtime: building a gateway loads models and may read
/// S3, which is not the serving threads' work. A reload task that dies is a 500.
async fn in_background<T: Send + 'static>(
    what: &str,
    reload: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Box<Response>> {
    crate::periodic::in_background(reload)
        .await
        .map_err(|e| Box::new(GatewayError::Internal(format!("{what}: {e}")).into_response()))
}

/// `POST /config/reload`: re-reads the config from its source and swaps it in atomically.
/// 200 with a summary, or 400 with every problem (the running config keeps serving).
pub async fn config_reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_check(&app, &headers).await {
        return *r;
    }
    let reloading = app.clone();
    let result = match in_background("config reload", async move {
        let env = |name: &str| std::env::var(name).ok();
        reloading.reload_config(&env).await
    })
    .await
    {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match result {
        Ok(s) => {
            Json(json!({"status": "reloaded", "reloaded": "config", "summary": s})).into_response()
        }
        Err(e) => rejected(&e),
    }
}

/// `GET /config/warnings`: what the running config loaded with but RouteIQ does not act on
/// (keys it ignores, deployments it cannot call), so operators see it after a reload too.
pub async fn config_warnings(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_check(&app, &headers).await {
        return *r;
    }
    let gw = app.gateway();
    let warnings: Vec<_> = gw
        .config_warnings
        .iter()
        .map(|w| json!({"path": w.path, "kind": w.kind.as_str(), "message": w.message}))
        .collect();
    Json(json!({"count": warnings.len(), "warnings": warnings})).into_response()
}

/// `POST /router/reload`: re-creates the router's strategies (and their models) from the
/// current config.
pub async fn router_reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = admin_check(&app, &headers).await {
        return *r;
    }
    let reloading = app.clone();
    let result = match in_background(
        "router reload",
        async move { reloading.reload_router().await },
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match result {
        Ok(s) => {
            Json(json!({"status": "reloaded", "reloaded": "router", "summary": s})).into_response()
        }
        Err(e) => rejected(&e),
    }
}

/// `GET /router/experiments` (admin): the running experiment's per-arm totals over its
/// retention window, after flushing this instance's pending counts.
pub async fn experiments(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let gw = app.gateway();
    if let Err(e) = authorize_admin(&gw, &headers).await {
        tracing::warn!(status = e.status_code().as_u16(), "admin request refused");
        return e.into_response();
    }
    gw.services.counters.flush().await;
    let Some(exp) = &gw.experiment else {
        return Json(json!({"experiments": []})).into_response();
    };
    match exp.totals(gw.router.state().as_ref()).await {
        Ok(v) => Json(json!({"experiments": [v]})).into_response(),
        Err(e) => {
            GatewayError::Internal(format!("reading experiment counters: {e}")).into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format (circuit breaker states refreshed first).
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let gw = app.gateway();
    let metrics = gw.metrics();
    for (d, state) in gw.router.circuit_states().await {
        metrics.set_circuit_state(&d.id, &d.model_name, state);
    }
    let mut resp = metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /health/readiness`, `/_health/ready`: 200 when serving (listing circuits that are open
/// or half-open), 503 while draining for shutdown.
pub async fn readiness(State(app): State<Arc<App>>) -> Response {
    let gw = app.gateway();
    let states = gw.router.circuit_states().await;
    let ids = |want: CircuitState| -> Vec<String> {
        states
            .iter()
            .filter(|(_, s)| *s == want)
            .map(|(d, _)| d.id.clone())
            .collect()
    };
    let draining = app.is_draining();
    // A failing state backend does not stop routing (it falls back to in-memory state), so
    // readiness stays 200 and says "degraded".
    let health = gw.router.state().health();
    let degraded = !matches!(health, StoreHealth::Healthy);
    let state_health = match health {
        StoreHealth::Healthy => json!({"status": "healthy"}),
        StoreHealth::Degraded { since_ms } => json!({"status": "degraded", "since_ms": since_ms}),
    };
    // Virtual keys: a key store that does not answer lets cached keys through and refuses
    // the rest (503); readiness says so.
    let keys = gw
        .services
        .control
        .as_ref()
        .map(|cp| match cp.failing_since_ms() {
            None => json!({"backend": cp.backend(), "status": "healthy"}),
            Some(since_ms) => {
                json!({"backend": cp.backend(), "status": "degraded", "since_ms": since_ms})
            }
        });
    let degraded = degraded || keys.as_ref().is_some_and(|k| k["status"] == "degraded");
    let body = json!({
        "status": if draining { "draining" } else if degraded { "degraded" } else { "healthy" },
        "state_backend": gw.router.state().backend(),
        "state": state_health,
        "keys": keys,
        "model_groups": gw.router.model_names().len(),
        "deployments": gw.router.deployments().count(),
        "routing_strategy": gw.router.strategy().name(),
        "circuit_breakers": {
            "open": ids(CircuitState::Open),
            "half_open": ids(CircuitState::HalfOpen),
        },
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}
