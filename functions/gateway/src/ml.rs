//! The ML router in the gateway: setting up the `llmrouter-*` strategies and keeping them
//! current.
//!
//! - [`context`]: what ML strategies are set up with (artifact store, embedders);
//! - [`build_router`]: the router for a config, timing the ML router's load;
//! - [`force_reload`] (`POST /router/reload`) and the hot-reload poller (`hot_reload: true`).
//!
//! The request side lives in `http/`: the prompt features each request carries to the router
//! (`http/prompt.rs`), the decision headers (`http/response_headers.rs`) and
//! `POST /router/explain` (`http/explain.rs`).

use std::sync::{Arc, Weak};
use std::time::Instant;

use routeiq::ml::ModelStore;
use routeiq::ml::routing::{MlContext, MlEnv, MlRouting, builtin_embedder};
use routeiq::ml::slot::RouterSlot;
use routeiq::router::Router;

/// The context ML strategies are set up with: the environment switches, the model store
/// (local files, `file://` and `s3://` URIs: see [`crate::s3::UriModelStore`]), and the
/// embedders this build has.
pub fn context(env: &MlEnv, store: Arc<dyn ModelStore>) -> MlContext {
    MlContext {
        env: env.clone(),
        store,
        // hashed-ngram and static everywhere; the transformer when `routeiq` has `onnx`.
        embedders: Arc::new(builtin_embedder),
        load_custom: routeiq::ml::predictor::default_scorer_loader(),
    }
}

/// Builds the router for `config`, setting up an ML strategy with `settings.ml`, and
/// records how long the ML router took to load.
pub fn build_router(
    config: &routeiq::config::Config,
    services: &crate::gateway::Services,
) -> Result<Router, String> {
    let started = Instant::now();
    let router = Router::with_ml_context(
        config,
        services.state.clone(),
        services.clock.clone(),
        &context(&services.settings.ml, services.models.clone()),
    )
    .map_err(|e| e.to_string())?;
    if let Some(ml) = router.strategy().ml() {
        services
            .metrics
            .record_model_load(ml.strategy().as_str(), started.elapsed());
        start_hot_reload(ml);
    }
    Ok(router)
}

/// `POST /router/reload` for an ML strategy: reloads its artifact now (verification and
/// all); on failure the running router keeps serving and the error is returned.
pub fn force_reload(
    ml: &Arc<MlRouting>,
    metrics: &crate::telemetry::metrics::Metrics,
) -> Result<Option<String>, String> {
    let Some(slot) = ml.slot() else {
        return Ok(None);
    };
    let started = Instant::now();
    let outcome = slot.reload(true).map_err(|e| e.to_string())?;
    metrics.record_model_load(ml.strategy().as_str(), started.elapsed());
    tracing::info!(
        strategy = ml.strategy().as_str(),
        artifact = slot.uri(),
        ?outcome,
        "router artifact reloaded"
    );
    Ok(slot.current().map(|r| r.version.clone()))
}

/// Starts the hot-reload poller of an ML strategy (`hot_reload: true`): every
/// `reload_interval` it checks the artifact's version and reloads it when it changed. The
/// task holds the slot weakly and ends when the router is dropped (a config reload).
fn start_hot_reload(ml: &Arc<MlRouting>) {
    let settings = ml.settings();
    let (true, Some(slot)) = (settings.hot_reload, ml.slot()) else {
        return;
    };
    let Some(handle) = crate::periodic::background() else {
        tracing::warn!("hot_reload is set but no async runtime is running: not polling");
        return;
    };
    let weak: Weak<RouterSlot> = Arc::downgrade(slot);
    let every = settings.reload_interval;
    crate::periodic::spawn_while_alive(&handle, weak, every, |slot| async move {
        // Reading and verifying a file is blocking work.
        tokio::task::spawn_blocking(move || slot.poll())
            .await
            .is_ok()
    });
}
