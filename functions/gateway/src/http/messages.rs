//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API as a
//! front door (Claude Code and the Anthropic SDKs as clients).
//!
//! Requests are read, checked and routed like chat requests ([`open`]: auth as `x-api-key` or
//! `Authorization: Bearer`, size and depth limits, `extra_body`/`extra_headers`, conversation
//! keys from `metadata.user_id`, experiments, ML strategies, auto routers, edge hints) and
//! dispatched with the operations of [`crate::messages`]: passed through to Anthropic
//! deployments, translated for the others. `anthropic-version` is accepted and not required;
//! `anthropic-beta` goes to Anthropic deployments only. Every error is answered in Anthropic's
//! shape (`{"type":"error","error":{"type","message"}}`, [`GatewayError::into_anthropic_response`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use routeiq::anthropic::{
    Content, ContentBlock, CountTokensRequest, MessageRole, MessagesRequest, SystemPrompt,
};
use routeiq::router::RequestFacts;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::handlers::{
    Opened, RequestBody, answer_response, open, read_json, require_model, sse_response,
};
use crate::http::observe::RequestCtx;
use crate::messages::{CountTokensOp, MessagesCall, MessagesOp, MessagesStreamOp};
use crate::upstream::providers::ANTHROPIC_BETA;

type AppState = State<Arc<Gateway>>;

impl RequestBody for MessagesRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }

    /// The members of `metadata` beside `user_id` (`conversation_id`, `routing_profile`...).
    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref().map(|m| &m.extra)
    }

    /// `metadata.user_id` (Anthropic's end-user id).
    fn user(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(|m| m.user_id.as_deref())
    }

    fn is_stream(&self) -> bool {
        MessagesRequest::is_stream(self)
    }

    /// Anthropic requires `max_tokens` (≥ 1) and at least one message; LiteLLM answers a
    /// request without `max_tokens` with a 400 too.
    fn check(&self, gw: &Gateway) -> Result<(), GatewayError> {
        if self.messages.is_empty() {
            return Err(GatewayError::invalid_param(
                "messages: at least one message is required",
                "messages",
            ));
        }
        match self.max_tokens {
            None => {
                return Err(GatewayError::invalid_param(
                    "max_tokens: Field required",
                    "max_tokens",
                ));
            }
            Some(0) => {
                return Err(GatewayError::invalid_param(
                    "max_tokens: Input should be greater than or equal to 1",
                    "max_tokens",
                ));
            }
            Some(_) => {}
        }
        crate::http::limits::check_message_count(
            self.messages.len(),
            gw.settings().limits.max_messages,
        )
    }

    fn estimated_tokens(&self) -> u64 {
        routeiq::anthropic::to_openai::estimate_request_tokens(self)
    }

    fn prompt_text(&self) -> String {
        let mut texts = Vec::new();
        match &self.system {
            Some(SystemPrompt::Text(s)) => texts.push(s.as_str()),
            Some(SystemPrompt::Blocks(blocks)) => blocks_text(blocks, true, &mut texts),
            None => {}
        }
        for m in &self.messages {
            content_text(&m.content, true, &mut texts);
        }
        texts.join("\n")
    }

    /// The last user message's text; its tool results when it has no text of its own.
    fn routing_text(&self) -> String {
        let Some(last) = self
            .messages
            .iter()
            .rev()
            .find(|m| m.role == MessageRole::User)
        else {
            return String::new();
        };
        let mut texts = Vec::new();
        content_text(&last.content, false, &mut texts);
        if texts.is_empty() {
            content_text(&last.content, true, &mut texts);
        }
        texts.join("\n")
    }
}

/// The text of a message's content (tool results' text when `tool_results`).
fn content_text<'a>(content: &'a Content, tool_results: bool, out: &mut Vec<&'a str>) {
    match content {
        Content::Text(s) => out.push(s),
        Content::Blocks(blocks) => blocks_text(blocks, tool_results, out),
    }
}

fn blocks_text<'a>(blocks: &'a [ContentBlock], tool_results: bool, out: &mut Vec<&'a str>) {
    for b in blocks {
        match b {
            ContentBlock::Text(t) => out.push(&t.text),
            ContentBlock::ToolResult(r) if tool_results => {
                if let Some(c) = &r.content {
                    content_text(c, false, out);
                }
            }
            _ => {}
        }
    }
}

/// The client's `anthropic-beta` header.
fn beta_header(headers: &HeaderMap) -> Option<HeaderValue> {
    headers.get(ANTHROPIC_BETA).cloned()
}

/// `POST /v1/messages`.
pub async fn messages(State(gw): AppState, req: Request) -> Response {
    let started = Instant::now();
    match messages_inner(gw, req, started).await {
        Ok(r) => r,
        Err(e) => e.into_anthropic_response(),
    }
}

async fn messages_inner(
    gw: Arc<Gateway>,
    req: Request,
    started: Instant,
) -> Result<Response, GatewayError> {
    let beta = beta_header(req.headers());
    let o: Opened<MessagesRequest> = open(&gw, req).await?;
    let call = MessagesCall::new(
        &o.body,
        &o.raw,
        o.extra_headers.as_ref(),
        beta.as_ref(),
        o.facts.estimated_tokens,
    );
    let (mut resp, outcome) = if o.body.is_stream() {
        let d = gw
            .dispatch(&o.model, o.facts, &MessagesStreamOp(&call))
            .await?;
        let outcome = d.hint;
        (sse_response(gw.clone(), d, started, o.ctx.clone()), outcome)
    } else {
        let d = gw.dispatch(&o.model, o.facts, &MessagesOp(&call)).await?;
        let outcome = d.hint;
        (answer_response(&o.ctx, d, started), outcome)
    };
    crate::edge_hint::set_status(resp.headers_mut(), &o.hint, outcome);
    Ok(resp)
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": n}`, routed like a Messages request
/// (an auto router's name is answered with the estimate).
pub async fn count_tokens(State(gw): AppState, req: Request) -> Response {
    let started = Instant::now();
    match count_tokens_inner(gw, req, started).await {
        Ok(r) => r,
        Err(e) => e.into_anthropic_response(),
    }
}

async fn count_tokens_inner(
    gw: Arc<Gateway>,
    req: Request,
    started: Instant,
) -> Result<Response, GatewayError> {
    let principal = crate::http::access::principal(&gw, req.extensions(), req.headers())?;
    let ctx = RequestCtx::of(&req);
    let beta = beta_header(req.headers());
    let trace = crate::http::client_params::trace_headers(&gw, req.headers());
    let mut body: CountTokensRequest = read_json(&gw, req).await?;
    require_model(&body.model)?;
    body.model = crate::http::access::check_model(&gw, &principal, &body.model)?;
    if body.messages.is_empty() {
        return Err(GatewayError::invalid_param(
            "messages: at least one message is required",
            "messages",
        ));
    }
    let extra_headers = crate::http::client_params::with_trace(
        crate::http::client_params::take(&mut body.extra)?,
        trace,
    );
    ctx.set_model_group(gw.router.resolve_group(&body.model));
    if gw.router.is_auto_router(&body.model) {
        let answer = CountTokensOp::estimate(&body)?;
        return Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer.body,
        )
            .into_response());
    }
    let facts = RequestFacts {
        stream: false,
        ..RequestFacts::default()
    };
    let op = CountTokensOp::new(&body, extra_headers.as_ref(), beta.as_ref());
    let d = gw.dispatch(&body.model, facts, &op).await?;
    Ok(answer_response(&ctx, d, started))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn prompt_and_routing_text() {
        let r = req(json!({
            "model": "m", "max_tokens": 10,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "What is in main.rs?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "fn main() {}"}]}
            ],
            "metadata": {"user_id": "u-1", "conversation_id": "c-1"}
        }));
        assert_eq!(
            r.prompt_text(),
            "Be brief.\nWhat is in main.rs?\nfn main() {}"
        );
        // The last user message has only a tool result: its text is read.
        assert_eq!(r.routing_text(), "fn main() {}");
        assert_eq!(r.user(), Some("u-1"));
        assert_eq!(r.metadata().unwrap()["conversation_id"], "c-1");
        let r = req(json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "text", "text": "Now explain."}
            ]}
        ]}));
        assert_eq!(r.routing_text(), "Now explain.");
        assert!(r.estimated_tokens() >= 1);
    }
}
