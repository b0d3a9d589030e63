//! The prompt as the router reads it, for ML strategies.
//!
//! - [`chat_text`]: a chat request's prompt text; [`last_user_text`]: its last user message;
//! - [`auto_route`]: an auto router's decision for a request;
//! - [`request_profile`]: the routing profile a request asks for (`x-routeiq-profile`, else
//!   `metadata.routing_profile`);
//! - [`prompt_features`]: the features a request carries to the router (text, token estimate,
//!   profile, embedding, edge tier).
//!
//! The prompt is embedded before routing: inline for the hashed-ngram and static embedders
//! (microseconds), on the blocking pool for the transformer (milliseconds of CPU that must not
//! stall the async runtime).

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderValue;
use routeiq::ml::centroid::Profile;
use routeiq::ml::routing::PromptFeatures;
use routeiq::openai::estimate_tokens;
use routeiq::router::auto::{AutoDecision, AutoInput};
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::gateway::Gateway;

/// Request header naming a routing profile.
pub const PROFILE_HEADER: &str = crate::http::headers::PROFILE;

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

/// The last user message's text (LiteLLM's auto routers read only it); empty when there
/// is none.
pub fn last_user_text(messages: &[routeiq::openai::ChatMessage]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == routeiq::openai::Role::User)
        .and_then(|m| m.content.as_ref())
        .map(|c| c.as_text())
        .unwrap_or_default()
}

/// When `model` is an auto router: its decision for the request (`text`: the last user
/// message), with the least quality tier the caller asks for (`x-litellm-min-quality-tier`,
/// else `metadata.min_quality_tier`; not a whole number from 1 to 3 is a 400) and the ML
/// strategy's prompt features (`prompt`: a trained router's qualities count). `None` for
/// other models.
pub fn auto_route(
    gw: &Gateway,
    model: &str,
    text: impl FnOnce() -> String,
    (min_tier, metadata): (Option<&HeaderValue>, Option<&Map<String, Value>>),
    prompt: Option<&PromptFeatures>,
) -> Result<Option<Arc<AutoDecision>>, GatewayError> {
    if !gw.router.is_auto_router(model) {
        return Ok(None);
    }
    let parse = |raw: Option<String>, path: &str| -> Result<Option<u8>, GatewayError> {
        match raw {
            None => Ok(None),
            Some(r) => match r.trim().parse::<u8>() {
                Ok(t @ 1..=3) => Ok(Some(t)),
                _ => Err(GatewayError::invalid_param(
                    format!("must be a quality tier, 1 (budget) to 3 (frontier); got '{r}'"),
                    path,
                )),
            },
        }
    };
    let header = min_tier
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| GatewayError::invalid("x-litellm-min-quality-tier is not valid text"))?;
    let min_quality_tier = match header {
        Some(h) => parse(Some(h), crate::http::headers::MIN_QUALITY_TIER)?,
        None => parse(
            metadata
                .and_then(|m| m.get("min_quality_tier"))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
            "metadata.min_quality_tier",
        )?,
    };
    let text = text();
    let input = AutoInput {
        text: &text,
        min_quality_tier,
        prompt,
    };
    match gw.router.auto_route(model, input) {
        None => Ok(None),
        Some(Ok(d)) => {
            tracing::debug!(
                auto_router = %d.router,
                kind = d.kind.as_str(),
                route = %d.label,
                target = d.targets.first().map(String::as_str),
                "auto router decided"
            );
            Ok(Some(Arc::new(d)))
        }
        Some(Err(e)) => Err(GatewayError::invalid_param(e.to_string(), "model")),
    }
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
