//! `POST /router/explain`: the ranking the router would use for a prompt, without calling
//! any model.
//!
//! - the body: a chat request (`model` + `messages`) or a completion one (`model` + `prompt`);
//! - the answer: model group, strategy, candidates in order, decision time, the ML
//!   decision (predicted quality and cost per candidate, tier, profile) and, for an auto
//!   router, its decision (`auto_router`: route, tier or request type, scores, targets).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use routeiq::openai::estimate_tokens;
use routeiq::router::RequestFacts;
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::headers::MIN_QUALITY_TIER;
use crate::http::prompt::{PROFILE_HEADER, auto_route, chat_text, last_user_text, prompt_features};

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
    let principal = crate::http::access::principal(&gw, req.extensions(), req.headers())?;
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), gw.max_request_bytes)
        .await
        .map_err(|_| GatewayError::PayloadTooLarge {
            limit_mb: gw.max_request_bytes as f64 / (1024.0 * 1024.0),
        })?;
    let mut body: ExplainRequest = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::invalid(format!("invalid request body: {e}")))?;
    body.model = crate::http::access::check_model(&gw, &principal, &body.model)?;
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
    let auto = auto_route(
        &gw,
        &body.model,
        || match body.messages.is_empty() {
            true => text.clone(),
            false => last_user_text(&body.messages),
        },
        (headers.get(MIN_QUALITY_TIER), body.metadata.as_ref()),
        prompt.as_deref(),
    )?;
    let target = auto
        .as_ref()
        .and_then(|a| a.targets.first())
        .map_or(body.model.as_str(), String::as_str);
    let facts = RequestFacts {
        estimated_tokens: estimate_tokens(&text),
        stream: false,
        prompt,
        auto: auto.clone(),
        ..RequestFacts::default()
    };
    let selection = gw
        .router
        .select(target, facts, &mut fastrand::Rng::new())
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
        "auto_router": auto.as_deref(),
    }))
    .into_response())
}
