//! Server-sent events to the client. The first chunk has already arrived when a stream is
//! committed (see `dispatch::open_stream`); the rest is relayed as it comes, each chunk under
//! the deployment's `stream_timeout`. A failure after the first byte ends the stream with one
//! final error event (OpenAI's `data: {"error": ...}`, what OpenAI's SDKs raise on, or
//! Anthropic's `event: error`, per [`StreamChunk::error_frame`]) and no terminator (`[DONE]`),
//! so a cut stream is never mistaken for a complete one. When the stream ends — completed,
//! failed, or dropped because the client went away — the router is told (in-flight, latency,
//! usage).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use routeiq::router::{CallOutcome, Deployment};
use serde::Serialize;

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::observe::RequestCtx;
use crate::upstream::dispatch::StreamStart;

/// A stream chunk: its wire form and what it tells about usage.
pub trait StreamChunk: Send + 'static {
    /// `usage.total_tokens` if the chunk carries usage.
    fn usage_total(&self) -> Option<u64>;
    /// `(prompt_tokens, completion_tokens)` if the chunk carries usage.
    fn usage_split(&self) -> Option<(u64, u64)>;
    /// Characters of generated text in the chunk (to estimate tokens without usage).
    fn text_chars(&self) -> usize;
    /// The chunk as SSE bytes (OpenAI's form: `data: <json>\n\n`).
    fn encode(&self) -> Bytes;
    /// What closes a complete stream (OpenAI's `data: [DONE]`; `None`: nothing).
    fn end_frame() -> Option<Bytes> {
        Some(Bytes::from_static(b"data: [DONE]\n\n"))
    }
    /// The final event of a stream that failed after its first chunk (OpenAI's
    /// `data: {"error": ...}`).
    fn error_frame(e: &GatewayError) -> Bytes {
        error_event(e)
    }
}

impl StreamChunk for routeiq::openai::ChatCompletionChunk {
    fn encode(&self) -> Bytes {
        event(self)
    }

    fn usage_total(&self) -> Option<u64> {
        self.usage.map(|u| u.total_tokens)
    }

    fn usage_split(&self) -> Option<(u64, u64)> {
        self.usage.map(|u| (u.prompt_tokens, u.completion_tokens))
    }

    fn text_chars(&self) -> usize {
        self.choices
            .iter()
            .map(|c| c.delta.content.as_deref().map_or(0, str::len))
            .sum()
    }
}

impl StreamChunk for serde_json::Value {
    fn encode(&self) -> Bytes {
        event(self)
    }

    fn usage_total(&self) -> Option<u64> {
        self.get("usage")?.get("total_tokens")?.as_u64()
    }

    fn usage_split(&self) -> Option<(u64, u64)> {
        let u = self.get("usage")?;
        Some((
            u.get("prompt_tokens")?.as_u64()?,
            u.get("completion_tokens")?.as_u64()?,
        ))
    }

    fn text_chars(&self) -> usize {
        self.get("choices")
            .and_then(|c| c.as_array())
            .map(|choices| {
                choices
                    .iter()
                    .filter_map(|c| c.get("text").and_then(|t| t.as_str()))
                    .map(str::len)
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Reports the end of a stream to the router exactly once, also when dropped mid-way.
struct Finisher {
    gateway: Arc<Gateway>,
    deployment: Arc<Deployment>,
    started: Instant,
    ttft: Duration,
    usage_total: Option<u64>,
    usage_split: Option<(u64, u64)>,
    text_chars: usize,
    done: bool,
    /// The request's log/metrics context: usage and cost are known only at the end.
    ctx: RequestCtx,
}

impl Finisher {
    fn observe<T: StreamChunk>(&mut self, chunk: &T) {
        if let Some(t) = chunk.usage_total() {
            self.usage_total = Some(t);
        }
        if let Some(split) = chunk.usage_split() {
            self.usage_split = Some(split);
        }
        self.text_chars += chunk.text_chars();
    }

    fn finish(&mut self, error: Option<GatewayError>) {
        if self.done {
            return;
        }
        self.done = true;
        if error.is_some() {
            self.ctx.stream_failed();
        }
        match self.usage_split {
            Some((prompt, completion)) => {
                self.ctx
                    .usage(Some(prompt), Some(completion), self.usage_total);
                self.ctx.cost(self.deployment.cost(prompt, completion));
            }
            None => {
                // No usage from the upstream (none sent, or the client left before it came):
                // estimate both sides so the call's cost is still accounted for.
                let completion = self.text_chars.div_ceil(4) as u64;
                let prompt = self.ctx.read(|i| i.estimated_prompt_tokens);
                self.ctx.usage(prompt, Some(completion), None);
                self.ctx.usage_estimated();
                if let Some(prompt) = prompt {
                    self.ctx.cost(self.deployment.cost(prompt, completion));
                }
            }
        }
        let gateway = self.gateway.clone();
        let deployment = self.deployment.clone();
        let outcome = error.is_none().then(|| CallOutcome {
            latency: self.started.elapsed(),
            ttft: Some(self.ttft),
            total_tokens: self
                .usage_total
                .unwrap_or_else(|| self.text_chars.div_ceil(4) as u64),
        });
        let class = error.as_ref().map(|e| e.class().failure());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            gateway.router.record_end(&deployment, outcome).await;
            if let Some(class) = class {
                gateway.router.record_failure(&deployment, class).await;
            }
        });
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if !self.done {
            // The client went away before the end: count the call as finished, not failed,
            // with what was generated so far.
            self.usage_split = None;
            self.usage_total = None;
            self.finish(None);
        }
    }
}

fn event<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(json) => {
            let mut buf = Vec::with_capacity(json.len() + 8);
            buf.extend_from_slice(b"data: ");
            buf.extend_from_slice(&json);
            buf.extend_from_slice(b"\n\n");
            Bytes::from(buf)
        }
        Err(e) => error_event(&GatewayError::Internal(format!("serializing chunk: {e}"))),
    }
}

fn error_event(e: &GatewayError) -> Bytes {
    let body = e.body();
    let json = serde_json::to_string(&body).unwrap_or_else(|_| {
        r#"{"error":{"message":"stream failed","type":"api_error","param":null,"code":null}}"#
            .to_string()
    });
    Bytes::from(format!("data: {json}\n\n"))
}

struct State<T> {
    first: Option<T>,
    rest: BoxStream<'static, Result<T, GatewayError>>,
    idle_timeout: Duration,
    provider: String,
    finisher: Finisher,
    ended: bool,
}

/// The SSE body for a committed stream.
pub fn sse_body<T: StreamChunk>(
    gateway: Arc<Gateway>,
    deployment: Arc<Deployment>,
    start: StreamStart<T>,
    idle_timeout: Duration,
    started: Instant,
    ctx: RequestCtx,
) -> Body {
    let provider = deployment.provider.name().to_string();
    let mut finisher = Finisher {
        gateway,
        deployment,
        started,
        ttft: start.ttft,
        usage_total: None,
        usage_split: None,
        text_chars: 0,
        done: false,
        ctx,
    };
    finisher.observe(&start.first);
    let state = State {
        first: Some(start.first),
        rest: start.rest,
        idle_timeout,
        provider,
        finisher,
        ended: false,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        if let Some(first) = s.first.take() {
            let bytes = first.encode();
            return Some((Ok::<Bytes, std::convert::Infallible>(bytes), s));
        }
        if s.ended {
            return None;
        }
        match tokio::time::timeout(s.idle_timeout, s.rest.next()).await {
            Ok(Some(Ok(chunk))) => {
                s.finisher.observe(&chunk);
                let bytes = chunk.encode();
                Some((Ok(bytes), s))
            }
            Ok(None) => {
                s.ended = true;
                s.finisher.finish(None);
                T::end_frame().map(|frame| (Ok(frame), s))
            }
            Ok(Some(Err(e))) => {
                s.ended = true;
                tracing::warn!(deployment = %s.finisher.deployment.id, error = %e, "stream failed after first chunk");
                let bytes = T::error_frame(&e);
                s.finisher.finish(Some(e));
                Some((Ok(bytes), s))
            }
            Err(_) => {
                s.ended = true;
                let e = GatewayError::Timeout {
                    provider: s.provider.clone(),
                    after: s.idle_timeout,
                };
                tracing::warn!(deployment = %s.finisher.deployment.id, error = %e, "stream stalled");
                let bytes = T::error_frame(&e);
                s.finisher.finish(Some(e));
                Some((Ok(bytes), s))
            }
        }
    });
    Body::from_stream(stream)
}
