//! The axum application and the HTTP server, with graceful drain on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutBody;

use crate::app::{App, AppState};
use crate::http::admin;
use crate::http::handlers;
use crate::http::management;
use crate::http::observe;
use crate::http::responses;
use crate::settings::ConnectionLimits;

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
        .route("/v1/messages", post(crate::http::messages::messages))
        .route(
            "/v1/messages/count_tokens",
            post(crate::http::messages::count_tokens),
        )
        .route("/v1/models", get(handlers::models))
        .route("/models", get(handlers::models))
        .route("/v1/responses", post(responses::create))
        .route("/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route(
            "/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route("/key/generate", post(management::key_generate))
        .route("/key/update", post(management::key_update))
        .route("/key/delete", post(management::key_delete))
        .route("/key/regenerate", post(management::key_regenerate))
        .route("/key/{key}/regenerate", post(management::key_regenerate))
        .route("/key/block", post(management::key_block))
        .route("/key/unblock", post(management::key_unblock))
        .route("/key/info", get(management::key_info))
        .route("/key/list", get(management::key_list))
        .route("/team/new", post(management::team_new))
        .route("/team/update", post(management::team_update))
        .route("/team/delete", post(management::team_delete))
        .route("/team/block", post(management::team_block))
        .route("/team/unblock", post(management::team_unblock))
        .route("/team/info", get(management::team_info))
        .route("/team/list", get(management::team_list))
        .route("/user/new", post(management::user_new))
        .route("/user/update", post(management::user_update))
        .route("/user/delete", post(management::user_delete))
        .route("/user/info", get(management::user_info))
        .route("/spend/logs", get(management::spend_logs))
        .route("/global/spend/report", get(management::global_spend_report))
        .route("/config/reload", post(admin::config_reload))
        .route("/config/warnings", get(admin::config_warnings))
        .route("/router/reload", post(admin::router_reload))
        .route("/router/explain", post(crate::http::explain::explain))
        .route("/router/experiments", get(admin::experiments))
        .route("/metrics", get(admin::metrics))
        .route("/health/liveliness", get(handlers::liveliness))
        .route("/health/readiness", get(admin::readiness))
        .route("/_health/live", get(handlers::liveliness))
        .route("/_health/ready", get(admin::readiness))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::http::access::access,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .layer(axum::middleware::from_fn(handlers::method_not_allowed))
        .with_state(AppState(app))
}

/// Serves `router` on `addr` until SIGTERM or Ctrl-C, on `threads` serving threads.
///
/// Each serving thread runs an event loop of its own (a current-thread tokio runtime) that
/// accepts from the shared listening socket and keeps every connection it accepts, together
/// with its upstream connections ([`crate::upstream::client::HttpClient`] keeps one pool per thread):
/// a request is served start to end on one thread, with no hand-off between threads. With
/// `tests/bench/gateway_bench.sh` that measured ~50 µs less per request at concurrency 1 than
/// one work-stealing runtime. A connection stays on the thread that accepted it, so a few
/// long-lived client connections can load the threads unevenly. Background work (config and
/// model polling, counter flushes, signals) stays on the caller's runtime.
///
/// Slow and idle clients ([`ConnectionLimits`], from the app's settings):
/// - a request head must arrive within `header_read_timeout` (also the keep-alive idle time);
/// - a request body may pause at most `body_idle_timeout` between bytes (then 408);
/// - at most `max_connections` connections are open per process; past it the listener stops
///   accepting (new connections wait in the kernel's backlog) until one closes.
///
/// On a signal it drains: readiness answers 503, the listener stops accepting, in-flight
/// requests and streams run to their end; after `drain_timeout` it returns anyway.
pub async fn serve(
    router: Router,
    app: Arc<App>,
    addr: SocketAddr,
    drain_timeout: Duration,
    threads: usize,
) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let threads = threads.max(1);
    let limits = app.gateway().services.settings.connections;
    tracing::info!(
        address = %local,
        threads,
        header_read_timeout_secs = limits.header_read_timeout.as_secs_f64(),
        body_idle_timeout_secs = limits.body_idle_timeout.as_secs_f64(),
        max_connections = limits.max_connections,
        "routeiq gateway listening"
    );
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<std::io::Result<()>>(threads);
    for worker in 0..threads {
        let listener = listener.try_clone()?;
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        let slots = slots.clone();
        let metrics = app.metrics();
        std::thread::Builder::new()
            .name(format!("routeiq-serve-{worker}"))
            .spawn(move || {
                let conns = Connections {
                    limits,
                    slots,
                    metrics,
                };
                let result = serve_thread(worker, listener, router, conns, async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                });
                let _ = done.blocking_send(result);
            })?;
    }
    drop(done_tx);
    drop(listener);
    let mut first_error: Option<std::io::Error> = None;
    let mut running = threads;
    tokio::select! {
        () = shutdown_signal() => {}
        Some(result) = done_rx.recv() => {
            // A serving thread ended on its own: stop the others and report it.
            running -= 1;
            first_error = result.err().or_else(|| {
                Some(std::io::Error::other("a serving thread stopped"))
            });
        }
    }
    app.start_draining();
    tracing::info!(
        drain_timeout_secs = drain_timeout.as_secs_f64(),
        "draining: no new connections; finishing in-flight requests and streams"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(drain_timeout, async {
        while running > 0 {
            match done_rx.recv().await {
                Some(result) => {
                    running -= 1;
                    if let Err(e) = result {
                        first_error.get_or_insert(e);
                    }
                }
                None => break,
            }
        }
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("drained: every in-flight request finished"),
        Err(_) => tracing::warn!(
            drain_timeout_secs = drain_timeout.as_secs_f64(),
            "drain timeout reached: exiting with requests still in flight"
        ),
    }
    first_error.map_or(Ok(()), Err)
}

/// What every serving thread shares about client connections.
struct Connections {
    limits: ConnectionLimits,
    /// One permit per open connection, process-wide.
    slots: Arc<Semaphore>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
}

/// One serving thread: its event loop, accepting from `listener` until `stop` resolves, then
/// finishing the requests in flight.
fn serve_thread(
    worker: usize,
    listener: std::net::TcpListener,
    router: Router,
    conns: Connections,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::upstream::client::set_worker(worker);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Every request arms a deadline (its timeout). Tokio's timer wakes its driver (an
        // eventfd write plus an extra epoll round) whenever a new timer is due before the
        // driver's next planned wake-up, which with no earlier timer is every request. A timer
        // that is never more than a second away makes request deadlines (seconds to minutes)
        // register silently.
        tokio::spawn(async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
            }
        });
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut builder = AutoBuilder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(conns.limits.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        let idle = conns.limits.body_idle_timeout;
        let header_timeout = conns.limits.header_read_timeout;
        tokio::pin!(stop);
        loop {
            // A free connection slot first: at the cap, connections wait in the backlog.
            let slot = tokio::select! {
                slot = conns.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                () = &mut stop => break,
            };
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            // Responses and SSE events go out as they are written.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a client connection");
            }
            let router = router.clone();
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let req = req.map(|body| Body::new(TimeoutBody::new(idle, body)));
                tower_service::Service::call(&mut router.clone(), req)
            });
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let open = conns.metrics.client_connections();
            open.inc();
            tokio::spawn(async move {
                // The protocol sniffing (HTTP/1 or HTTP/2) waits for the first bytes before
                // hyper's header timer runs: a connection that sends nothing is closed here.
                let mut first = [0u8; 1];
                match tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                            .into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(error = %e, "client connection ended with an error");
                        }
                    }
                    Ok(_) => {} // closed, or failed, before a byte
                    Err(_) => tracing::debug!("client connection sent nothing: closed"),
                }
                open.dec();
                drop(slot);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
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
