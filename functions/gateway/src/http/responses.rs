//! `POST /v1/responses`, `GET /v1/responses/{id}` and `DELETE /v1/responses/{id}`: OpenAI's
//! Responses API as a front door (Codex CLI, the OpenAI Agents SDK, new OpenAI SDK code).
//!
//! `POST` is read, checked and routed like a chat request ([`open`]: auth, size and depth
//! limits, `extra_body`/`extra_headers`, conversation keys, experiments, ML strategies on the
//! request's text, auto routers, edge hints) and dispatched with the operations of
//! [`crate::responses`]: passed through to OpenAI deployments, translated for the others.
//! A `previous_response_id` is looked up in the state store first (unknown: 400
//! `previous_response_not_found`); with `store` (OpenAI's default) the answer is kept there
//! for the next turn ([`crate::responses::store`]). `GET` and `DELETE` answer from the store,
//! for the key that created the response only. Errors are OpenAI's shape.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use routeiq::openai::estimate_tokens_of_chars;
use routeiq::responses::{
    Input, Item, MessageRole, Response, ResponseContext, ResponseDeleted, ResponsesRequest,
    new_response_id, previous_response_not_found, response_not_found,
};
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::auth::key_identity;
use crate::http::handlers::{Opened, RequestBody, answer_response, decision_headers, open};
use crate::http::observe::RequestCtx;
use crate::responses::store::{self, Previous, Storer};
use crate::responses::{
    ResponsesAnswer, ResponsesCall, ResponsesChunk, ResponsesOp, ResponsesStreamOp,
    STREAM_IDLE_MARGIN,
};
use crate::upstream::dispatch::{Dispatched, StreamStart};
use crate::upstream::providers::Answer;
use crate::upstream::stream::sse_body;

type AppState = State<Arc<Gateway>>;

/// The text of an item, as the prompt reads it: messages and tool outputs.
fn item_text(item: &Item) -> Option<String> {
    match item {
        Item::Message(m) => Some(m.content.text()),
        Item::FunctionCallOutput(o) => Some(o.output.text()),
        Item::CustomToolCallOutput(o) => Some(o.output.text()),
        _ => None,
    }
}

/// Characters of an item's content (for token estimates): text, tool calls' arguments and
/// outputs.
fn item_chars(item: &Item) -> usize {
    match item {
        Item::FunctionCall(c) => c.name.len() + c.arguments.len(),
        Item::CustomToolCall(c) => c.name.len() + c.input.len(),
        other => item_text(other).map_or(0, |t| t.len()),
    }
}

fn input_items(req: &ResponsesRequest) -> &[Item] {
    match &req.input {
        Some(Input::Items(items)) => items,
        _ => &[],
    }
}

impl RequestBody for ResponsesRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref()
    }

    fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn is_stream(&self) -> bool {
        ResponsesRequest::is_stream(self)
    }

    /// At most `ROUTEIQ_MAX_MESSAGES` input items.
    fn check(&self, gw: &Gateway) -> Result<(), GatewayError> {
        crate::http::limits::check_message_count(
            input_items(self).len(),
            gw.settings().limits.max_messages,
        )
    }

    fn estimated_tokens(&self) -> u64 {
        let input = match &self.input {
            Some(Input::Text(s)) => s.len(),
            Some(Input::Items(items)) => items.iter().map(item_chars).sum(),
            None => 0,
        };
        estimate_tokens_of_chars(input + self.instructions.as_ref().map_or(0, String::len))
    }

    /// `instructions`, then the input's messages and tool outputs.
    fn prompt_text(&self) -> String {
        let mut texts: Vec<String> = self.instructions.iter().cloned().collect();
        match &self.input {
            Some(Input::Text(s)) => texts.push(s.clone()),
            Some(Input::Items(items)) => texts.extend(items.iter().filter_map(item_text)),
            None => {}
        }
        texts.join("\n")
    }

    /// The last user message of the input.
    fn routing_text(&self) -> String {
        match &self.input {
            Some(Input::Text(s)) => s.clone(),
            Some(Input::Items(items)) => items
                .iter()
                .rev()
                .find_map(|i| match i {
                    Item::Message(m) if m.role == MessageRole::User => Some(m.content.text()),
                    _ => None,
                })
                .unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// An error in OpenAI's shape; a stored turn that cannot be continued carries OpenAI's code
/// `previous_response_not_found`.
fn error_response(e: GatewayError) -> HttpResponse {
    if let GatewayError::InvalidRequest {
        param: Some(param), ..
    } = &e
        && param == "previous_response_id"
    {
        let mut body = e.body();
        body.error.code = Some("previous_response_not_found".into());
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    e.into_response()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `POST /v1/responses` and `/responses`.
pub async fn create(State(gw): AppState, req: Request) -> HttpResponse {
    let started = Instant::now();
    match create_inner(gw, req, started).await {
        Ok(r) => r,
        Err(e) => error_response(e),
    }
}

async fn create_inner(
    gw: Arc<Gateway>,
    req: Request,
    started: Instant,
) -> Result<HttpResponse, GatewayError> {
    let owner = key_identity(gw.master_key.as_ref(), req.headers());
    let o: Opened<ResponsesRequest> = open(&gw, req).await?;
    let Opened {
        body,
        ctx,
        model,
        mut facts,
        hint,
        extra_headers,
        raw,
    } = o;
    let request = Arc::new(body);
    let state = gw.services.state.clone();
    let limit = store::max_record_bytes(state.backend());
    let previous = match request.previous_response_id.as_deref() {
        None => None,
        Some(id) => match store::load(state.as_ref(), id, owner.as_deref()).await? {
            None => {
                return Ok((
                    StatusCode::BAD_REQUEST,
                    Json(previous_response_not_found(id)),
                )
                    .into_response());
            }
            Some(record) => {
                let previous = Previous::from_record(id, record, limit);
                // A turn too large to store continues only where its upstream holds it.
                if previous.origin.is_none() {
                    previous.items()?;
                }
                Some(previous)
            }
        },
    };
    let history = previous
        .as_ref()
        .and_then(|p| p.items.clone())
        .unwrap_or_default();
    if !history.is_empty() {
        let chars: usize = history.iter().map(item_chars).sum();
        facts.estimated_tokens = facts
            .estimated_tokens
            .saturating_add(estimate_tokens_of_chars(chars));
        ctx.estimated_prompt_tokens(facts.estimated_tokens);
    }
    let storer = request.is_store().then(|| {
        Arc::new(Storer {
            state: state.clone(),
            ttl: gw.settings().responses_ttl,
            owner,
            max_bytes: limit,
            history,
            request: request.clone(),
        })
    });
    let context = ResponseContext::from_request(
        &request,
        new_response_id(&mut fastrand::Rng::new()),
        now_secs(),
    );
    let call = ResponsesCall::new(
        &request,
        &raw,
        extra_headers.as_ref(),
        previous.as_ref(),
        storer.clone(),
        context,
    );
    let (mut resp, outcome) = if request.is_stream() {
        let d = gw
            .dispatch(&model, facts, &ResponsesStreamOp(&call))
            .await?;
        let outcome = d.hint;
        (sse_response(gw.clone(), d, started, ctx.clone()), outcome)
    } else {
        let d = gw.dispatch(&model, facts, &ResponsesOp(&call)).await?;
        let outcome = d.hint;
        if let Some(storer) = &storer {
            save_answer(storer, &d.output).await;
        }
        (answer_response(&ctx, into_answer(d), started), outcome)
    };
    crate::edge_hint::set_status(resp.headers_mut(), &hint, outcome);
    Ok(resp)
}

/// Stores a non-streamed answer (the translated Response, or the one passed through, as
/// the upstream sent it).
async fn save_answer(storer: &Storer, output: &ResponsesAnswer) {
    if let Some(response) = &output.response {
        storer.save(response, None, output.origin.as_deref()).await;
        return;
    }
    let parsed = serde_json::from_slice::<Value>(&output.answer.body).and_then(|raw| {
        let typed = serde_json::from_value::<Response>(raw.clone())?;
        Ok((raw, typed))
    });
    match parsed {
        Ok((raw, response)) => {
            storer
                .save(&response, Some(&raw), output.origin.as_deref())
                .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the upstream's Response does not read: not stored");
        }
    }
}

/// The dispatch with the answer for the client.
fn into_answer(d: Dispatched<ResponsesAnswer>) -> Dispatched<Answer> {
    Dispatched {
        output: d.output.answer,
        deployment: d.deployment,
        model_group: d.model_group,
        strategy: d.strategy,
        attempts: d.attempts,
        upstream_time: d.upstream_time,
        decision_time: d.decision_time,
        fallback: d.fallback,
        decision: d.decision,
        affinity: d.affinity,
        hint: d.hint,
        auto: d.auto,
    }
}

/// The event stream with the decision headers. The body waits for each chunk a little
/// longer than the deployment's `stream_timeout`: the Responses streams enforce that
/// themselves, to end with `response.failed` ([`STREAM_IDLE_MARGIN`]).
fn sse_response(
    gw: Arc<Gateway>,
    d: Dispatched<StreamStart<ResponsesChunk>>,
    started: Instant,
    ctx: RequestCtx,
) -> HttpResponse {
    let mut headers = HeaderMap::new();
    decision_headers(&mut headers, &d, started);
    ctx.dispatched(&d, true);
    let idle = gw
        .timeout_for(&d.deployment, true)
        .saturating_add(STREAM_IDLE_MARGIN);
    let body = sse_body(gw, d.deployment, d.output, idle, started, ctx);
    let mut resp = HttpResponse::new(body);
    let h = resp.headers_mut();
    h.extend(headers);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    resp
}

/// OpenAI's 404 for a response the store does not hold for this key.
fn not_found(id: &str) -> HttpResponse {
    (StatusCode::NOT_FOUND, Json(response_not_found(id))).into_response()
}

/// The stored record of `id` for the request's key, after authorizing it.
async fn stored(
    gw: &Gateway,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    id: &str,
) -> Result<Option<store::Record>, GatewayError> {
    crate::http::access::principal(gw, extensions, headers)?;
    let owner = key_identity(gw.master_key.as_ref(), headers);
    store::load(gw.services.state.as_ref(), id, owner.as_deref()).await
}

/// `GET /v1/responses/{id}` and `/responses/{id}`: the stored Response.
pub async fn retrieve(
    State(gw): AppState,
    id: Result<Path<String>, PathRejection>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> HttpResponse {
    let Ok(Path(id)) = id else {
        return not_found("");
    };
    match stored(&gw, &extensions, &headers, &id).await {
        Ok(Some(store::Record {
            response: Some(response),
            ..
        })) => Json(response).into_response(),
        Ok(Some(record)) => {
            let limit = store::max_record_bytes(gw.services.state.backend());
            let mut body = response_not_found(&id);
            body.error.message =
                store::not_stored_message(&id, record.too_large.unwrap_or(0), limit);
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => error_response(e),
    }
}

/// `DELETE /v1/responses/{id}` and `/responses/{id}`: removes the stored response.
pub async fn delete(
    State(gw): AppState,
    id: Result<Path<String>, PathRejection>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> HttpResponse {
    let Ok(Path(id)) = id else {
        return not_found("");
    };
    match delete_stored(&gw, &extensions, &headers, &id).await {
        Ok(Some(deleted)) => Json(deleted).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => error_response(e),
    }
}

/// Removes the record of `id` when the request's key holds it.
async fn delete_stored(
    gw: &Gateway,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    id: &str,
) -> Result<Option<ResponseDeleted>, GatewayError> {
    if stored(gw, extensions, headers, id).await?.is_none() {
        return Ok(None);
    }
    store::delete(gw.services.state.as_ref(), id).await?;
    Ok(Some(ResponseDeleted::new(id)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn prompt_and_routing_text() {
        let r = req(json!({
            "model": "m", "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": "What is in main.rs?"},
                {"type": "function_call", "call_id": "c1", "name": "read", "arguments": "{\"path\":\"main.rs\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "fn main() {}"},
                {"role": "user", "content": [{"type": "input_text", "text": "Explain it."}]}
            ],
            "metadata": {"conversation_id": "c-1"}, "user": "u-1"
        }));
        assert_eq!(
            r.prompt_text(),
            "Be brief.\nWhat is in main.rs?\nfn main() {}\nExplain it."
        );
        assert_eq!(r.routing_text(), "Explain it.");
        assert_eq!(r.user(), Some("u-1"));
        assert_eq!(r.metadata().unwrap()["conversation_id"], "c-1");
        assert!(r.estimated_tokens() >= 10);
        let r = req(json!({"model": "m", "input": "hello there"}));
        assert_eq!(r.prompt_text(), "hello there");
        assert_eq!(r.routing_text(), "hello there");
        let r = req(json!({"model": "m", "previous_response_id": "resp_1"}));
        assert_eq!(r.routing_text(), "");
        assert_eq!(r.estimated_tokens(), 1);
    }

    #[tokio::test]
    async fn a_turn_that_was_not_stored_is_previous_response_not_found() {
        let resp = error_response(GatewayError::invalid_param(
            "not stored",
            "previous_response_id",
        ));
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "previous_response_not_found");
        assert_eq!(v["error"]["param"], "previous_response_id");
        let other = error_response(GatewayError::invalid_param("bad", "input.0"));
        let body = axum::body::to_bytes(other.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_request");
    }
}
