//! The axum application and the HTTP server, with graceful drain on SIGTERM.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::admin;
use crate::app::{App, AppState};
use crate::handlers;
use crate::observe;

/// The HTTP routes over a running app. Every route but health and metrics goes through the
/// observability and backpressure middleware ([`observe::observe`]).
pub fn app(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/completions", post(handlers::completions))
        .route("/v1/embeddings", post(handlers::embeddings))
        .route("/embeddings", post(handlers::embeddings))
        .route("/v1/models", get(handlers::models))
        .route("/models", get(handlers::models))
        .route("/config/reload", post(admin::config_reload))
        .route("/router/reload", post(admin::router_reload))
        .route("/router/explain", post(crate::ml::explain))
        .route("/router/experiments", get(crate::experiment::experiments))
        .route("/metrics", get(admin::metrics))
        .route("/health/liveliness", get(handlers::liveliness))
        .route("/health/readiness", get(admin::readiness))
        .route("/_health/live", get(handlers::liveliness))
        .route("/_health/ready", get(admin::readiness))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .with_state(AppState(app))
}

/// Serves `router` on `addr` until SIGTERM or Ctrl-C. Then it drains: readiness answers 503,
/// the listener stops accepting, in-flight requests and streams run to their end; after
/// `drain_timeout` it returns anyway.
pub async fn serve(
    router: Router,
    app: Arc<App>,
    addr: SocketAddr,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "routeiq gateway listening");
    let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
    let draining = app.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown_signal().await;
        draining.start_draining();
        tracing::info!(
            drain_timeout_secs = drain_timeout.as_secs_f64(),
            "draining: no new connections; finishing in-flight requests and streams"
        );
        let _ = signalled_tx.send(true);
    });
    let server = server.into_future();
    tokio::pin!(server);
    let deadline = async {
        while !*signalled_rx.borrow() {
            if signalled_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        result = &mut server => {
            tracing::info!("drained: every in-flight request finished");
            result
        }
        () = deadline => {
            tracing::warn!(
                drain_timeout_secs = drain_timeout.as_secs_f64(),
                "drain timeout reached: exiting with requests still in flight"
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
