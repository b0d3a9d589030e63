//! ML routing in the gateway: setting up the `llmrouter-*` strategies (artifact store,
//! embedders), hot reload, the prompt features each request carries to the router, the
//! decision headers, and `POST /router/explain`.
//!
//! The prompt is embedded before routing: inline for the hashed-ngram and static embedders
//! (microseconds), on the blocking pool for the transformer (milliseconds of CPU that must not
//! stall the async runtime).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use routeiq::ml::ModelStore;
use routeiq::ml::centroid::Profile;
use routeiq::ml::routing::{
    Decision, MlContext, MlEnv, MlRouting, PromptFeatures, builtin_embedder,
};
use routeiq::ml::slot::RouterSlot;
use routeiq::openai::estimate_tokens;
use routeiq::router::{RequestFacts, Router};
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::auth::authorize;
use crate::http::headers as names;

/// Request header naming a routing profile.
pub const PROFILE_HEADER: &str = crate::http::headers::PROFILE;

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
    let every = Duration::from_secs_f64(settings.reload_interval_secs);
    crate::periodic::spawn_while_alive(&handle, weak, every, |slot| async move {
        // Reading and verifying a file is blocking work.
        tokio::task::spawn_blocking(move || slot.poll())
            .await
            .is_ok()
    });
}

fn parse_profile(raw: &str, path: &str) -> Result<Profile, GatewayError> {
    Profile::parse(raw).map_err(|e| GatewayError::invalid_param(e, path))
}

/// The routing profile a request asks for: the `x-routeiq-profile` header (`header`), else
/// `metadata.routing_profile` (or `metadata.routeiq_profile`).
pub fn request_profile(
    header: Option<&HeaderValue>,
    metadata: Option<&Map<String, Value>>,
) -> Result<Option<Profile>, GatewayError> {
    if let Some(v) = header {
        let raw = v
            .to_str()
            .map_err(|_| GatewayError::invalid("x-routeiq-profile is not valid text"))?;
        return parse_profile(raw, PROFILE_HEADER).map(Some);
    }
    for key in ["routing_profile", "routeiq_profile"] {
        if let Some(v) = metadata.and_then(|m| m.get(key)) {
            let path = format!("metadata.{key}");
            let raw = v
                .as_str()
                .ok_or_else(|| GatewayError::invalid_param("must be a string", path.clone()))?;
            return parse_profile(raw, &path).map(Some);
        }
    }
    Ok(None)
}

/// The prompt of a chat request as the router reads it: message texts, one per line.
pub fn chat_text(messages: &[routeiq::openai::ChatMessage]) -> String {
    messages
        .iter()
        .filter_map(|m| m.content.as_ref().map(|c| c.as_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The prompt features for the router, when its strategy is an ML one: the text (`text`
/// is only called then), the requested profile (`profile_header`, `metadata`; a bad one is
/// a 400), and the embedding (see the module docs). `None` for other strategies.
pub async fn prompt_features(
    gw: &Gateway,
    text: impl FnOnce() -> String,
    profile_header: Option<&HeaderValue>,
    metadata: Option<&Map<String, Value>>,
    hint: Option<&routeiq::router::hint::HintUse>,
) -> Result<Option<Arc<PromptFeatures>>, GatewayError> {
    let Some(ml) = gw.router.strategy().ml() else {
        return Ok(None);
    };
    let profile = request_profile(profile_header, metadata)?;
    let text = text();
    let text = text.as_str();
    let estimated_tokens = estimate_tokens(text);
    let started = Instant::now();
    let hint_tier = hint.and_then(|h| h.tier());
    let embedding = if ml.needs_embedding() && hint_tier.is_none() {
        let embedder = ml.embedder().clone();
        let cheap =
            embedder.id().starts_with("hashed-ngram") || embedder.id().starts_with("static-");
        let result = if cheap {
            embedder.embed(text)
        } else {
            let text = text.to_string();
            tokio::task::spawn_blocking(move || embedder.embed(&text))
                .await
                .map_err(|e| GatewayError::Internal(format!("embedding task failed: {e}")))?
        };
        match result {
            Ok(e) => Some(e),
            Err(e) => {
                // The strategy embeds again or falls back; never fail the request for it.
                tracing::warn!(error = %e, "prompt embedding failed");
                None
            }
        }
    } else {
        None
    };
    Ok(Some(Arc::new(PromptFeatures {
        text: text.to_string(),
        estimated_tokens,
        embedding,
        profile,
        embed_ms: started.elapsed().as_secs_f64() * 1000.0,
        hint_tier,
    })))
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// A duration in milliseconds with three decimals (`1.234`), as a header value, without
/// going through float formatting (this runs on every response).
pub fn millis_header(d: Duration) -> HeaderValue {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let (mut whole, mut frac) = (micros / 1000, micros % 1000);
    for _ in 0..3 {
        i -= 1;
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    i -= 1;
    buf[i] = b'.';
    loop {
        i -= 1;
        buf[i] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    // Digits and a dot are always a valid header value.
    HeaderValue::from_bytes(&buf[i..]).unwrap_or(HeaderValue::from_static("0.000"))
}

/// Decision headers: `x-routeiq-decision-ms` (embedding + routing, every group tried), and
/// for ML strategies `x-routeiq-predicted-quality` / `x-routeiq-predicted-cost` of the
/// deployment that answered, the router's version and the decision method.
pub fn decision_headers(
    headers: &mut HeaderMap,
    decision: Option<&Decision>,
    deployment: &str,
    routing_time: Duration,
) {
    let embed = decision
        .and_then(|d| Duration::try_from_secs_f64(d.embed_ms / 1000.0).ok())
        .unwrap_or_default();
    headers.insert(
        HeaderName::from_static(names::DECISION_MS),
        millis_header(routing_time + embed),
    );
    let Some(d) = decision else { return };
    if let Some(c) = d.ranking.iter().find(|c| c.deployment == deployment) {
        if let Some(q) = c.predicted_quality {
            set(headers, names::PREDICTED_QUALITY, &format!("{q:.4}"));
        }
        if let Some(cost) = c.predicted_cost {
            set(headers, names::PREDICTED_COST, &format!("{cost:.8}"));
        }
    }
    set(
        headers,
        names::DECISION_METHOD,
        match d.method {
            routeiq::ml::routing::DecisionMethod::Router => "router",
            routeiq::ml::routing::DecisionMethod::Centroid => "centroid",
            routeiq::ml::routing::DecisionMethod::Size => "size",
            routeiq::ml::routing::DecisionMethod::Cost => "cost",
            routeiq::ml::routing::DecisionMethod::Edge => "edge-hint",
        },
    );
    if let Some(v) = &d.router_version {
        set(headers, names::ROUTER_VERSION, v);
    }
    if let Some(t) = &d.tier {
        set(headers, names::TIER, t.tier.as_str());
    }
}

/// The body of `POST /router/explain`: a chat request (`model` + `messages`) or a completion
/// one (`model` + `prompt`); other fields are ignored.
#[derive(Debug, serde::Deserialize)]
struct ExplainRequest {
    model: String,
    #[serde(default)]
    messages: Vec<routeiq::openai::ChatMessage>,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// `POST /router/explain`: the full ranking the router would use for a prompt (predicted
/// quality and cost per candidate, tier, profile, decision time), without calling any model.
/// Authenticated like the API.
pub async fn explain(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    match explain_inner(gw, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn explain_inner(gw: Arc<Gateway>, req: Request) -> Result<Response, GatewayError> {
    authorize(gw.master_key.as_ref(), req.headers())?;
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), gw.max_request_bytes)
        .await
        .map_err(|_| GatewayError::PayloadTooLarge {
            limit_mb: gw.max_request_bytes as f64 / (1024.0 * 1024.0),
        })?;
    let body: ExplainRequest = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::invalid(format!("invalid request body: {e}")))?;
    let text: String = if body.messages.is_empty() {
        match &body.prompt {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            _ => {
                return Err(GatewayError::invalid_param(
                    "give 'messages' (chat) or 'prompt' (completion)",
                    "messages",
                ));
            }
        }
    } else {
        chat_text(&body.messages)
    };
    let started = Instant::now();
    let prompt = prompt_features(
        &gw,
        || text.clone(),
        headers.get(PROFILE_HEADER),
        body.metadata.as_ref(),
        None,
    )
    .await?;
    let facts = RequestFacts {
        estimated_tokens: estimate_tokens(&text),
        stream: false,
        prompt,
        ..RequestFacts::default()
    };
    let selection = gw
        .router
        .select(&body.model, facts, &mut fastrand::Rng::new())
        .await
        .map_err(GatewayError::from)?;
    let decision_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(json!({
        "model": body.model,
        "model_group": selection.model_group,
        "strategy": selection.strategy,
        "candidates": selection.candidates.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        "decision_ms": decision_ms,
        "decision": selection.decision.as_deref(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_header_has_three_decimals() {
        let h = |d: Duration| millis_header(d).to_str().unwrap().to_string();
        assert_eq!(h(Duration::ZERO), "0.000");
        assert_eq!(h(Duration::from_nanos(999)), "0.000");
        assert_eq!(h(Duration::from_micros(7)), "0.007");
        assert_eq!(h(Duration::from_micros(1_234)), "1.234");
        assert_eq!(h(Duration::from_micros(120_050)), "120.050");
        assert_eq!(h(Duration::from_secs(3600)), "3600000.000");
        assert_eq!(h(Duration::MAX), "18446744073709551.615");
    }
}
