//! LiteLLM's `mock_response`: canned answers without any network call.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream;
use routeiq::openai::{
    ChatChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChunkChoice,
    Delta, EmbeddingRequest, MessageContent, ResponseMessage, Role, Usage, estimate_tokens,
};
use serde_json::{Map, Value, json};

use super::http::{unix_seconds_now, wants_stream_usage};
use super::{Answer, CallContext, ChunkStream, InferenceProvider};
use crate::error::{GatewayError, UpstreamErrorKind};

/// At most this many content chunks per streamed answer.
const STREAM_CONTENT_CHUNKS: usize = 4;
/// Embedding length when the request sets no `dimensions`.
const DEFAULT_EMBEDDING_DIMENSIONS: u32 = 8;
const MAX_EMBEDDING_DIMENSIONS: u32 = 4096;

/// Answers every call with the deployment's `mock_response` text, as LiteLLM does: chat and
/// text completions (streamed as a role chunk, a few word-boundary content chunks, a finish
/// chunk and, if asked, a usage chunk) with estimated usage, and deterministic hash-derived
/// embeddings. The model in answers is the requested one. As in LiteLLM, the texts
/// `litellm.RateLimitError`, `litellm.InternalServerError`,
/// `litellm.ContextWindowExceededError` and `Exception: ...` fail instead, for testing
/// retries and fallbacks.
#[derive(Debug, Clone)]
pub struct MockProvider {
    text: String,
    failure: Option<(u16, UpstreamErrorKind)>,
}

impl MockProvider {
    pub fn new(text: String) -> Self {
        let failure = match text.as_str() {
            "litellm.RateLimitError" => Some((429, UpstreamErrorKind::RateLimit)),
            "litellm.InternalServerError" => Some((500, UpstreamErrorKind::InternalServer)),
            "litellm.ContextWindowExceededError" => {
                Some((400, UpstreamErrorKind::ContextWindowExceeded))
            }
            t if t.starts_with("Exception: content_filter") => {
                Some((400, UpstreamErrorKind::ContentPolicyViolation))
            }
            t if t.starts_with("Exception: ") => Some((500, UpstreamErrorKind::InternalServer)),
            _ => None,
        };
        MockProvider { text, failure }
    }

    fn check(&self) -> Result<(), GatewayError> {
        match self.failure {
            None => Ok(()),
            Some((status, kind)) => Err(GatewayError::Upstream {
                provider: "mock".into(),
                status,
                kind,
                message: format!("mock_response: {}", self.text),
                retry_after: None,
            }),
        }
    }

    fn usage(&self, req: &ChatCompletionRequest) -> Usage {
        let prompt: Vec<String> = req
            .messages
            .iter()
            .filter_map(|m| m.content.as_ref().map(MessageContent::as_text))
            .collect();
        let prompt_tokens = estimate_tokens(&prompt.join("\n"));
        let completion_tokens = estimate_tokens(&self.text);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }

    fn response(&self, req: &ChatCompletionRequest) -> ChatCompletionResponse {
        ChatCompletionResponse {
            id: new_id(),
            object: "chat.completion".into(),
            created: unix_seconds_now(),
            model: req.model.clone(),
            choices: vec![ChatChoice {
                index: 0,
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: Some(self.text.clone()),
                    tool_calls: None,
                    extra: Map::new(),
                },
                finish_reason: Some("stop".into()),
                logprobs: None,
            }],
            usage: Some(self.usage(req)),
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn chunks(&self, req: &ChatCompletionRequest) -> Vec<ChatCompletionChunk> {
        let (id, created) = (new_id(), unix_seconds_now());
        let chunk = |delta: Delta, finish_reason: Option<&str>| ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: req.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_string),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        };
        let mut out = vec![chunk(
            Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        )];
        for piece in split_words(&self.text, STREAM_CONTENT_CHUNKS) {
            out.push(chunk(
                Delta {
                    content: Some(piece.to_string()),
                    ..Delta::default()
                },
                None,
            ));
        }
        out.push(chunk(Delta::default(), Some("stop")));
        if wants_stream_usage(req) {
            let mut last = chunk(Delta::default(), None);
            last.choices.clear();
            last.usage = Some(self.usage(req));
            out.push(last);
        }
        out
    }
}

fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

/// Splits `text` into at most `parts` pieces at word boundaries (whitespace stays with the
/// word before it), so the pieces concatenate back to `text`.
fn split_words(text: &str, parts: usize) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let words: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| i > 0 && !c.is_whitespace() && text[..i].ends_with(char::is_whitespace))
        .map(|(i, _)| i)
        .collect();
    let count = words.len() + 1;
    let per_part = count.div_ceil(parts.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for cut in words.iter().skip(per_part - 1).step_by(per_part) {
        out.push(&text[start..*cut]);
        start = *cut;
    }
    out.push(&text[start..]);
    out
}

/// The inputs of an embedding request: a string, strings, a token array or token arrays.
enum EmbeddingInput<'a> {
    Text(&'a str),
    Tokens(&'a [Value]),
}

fn embedding_inputs(input: &Value) -> Option<Vec<EmbeddingInput<'_>>> {
    match input {
        Value::String(s) => Some(vec![EmbeddingInput::Text(s)]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Some(vec![EmbeddingInput::Tokens(items)])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(EmbeddingInput::Text(s)),
                Value::Array(tokens) if tokens.iter().all(Value::is_number) => {
                    Some(EmbeddingInput::Tokens(tokens))
                }
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A deterministic unit vector derived from FNV-1a of the input.
fn embedding(input: &EmbeddingInput<'_>, dimensions: u32) -> Vec<f32> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    match input {
        EmbeddingInput::Text(s) => feed(s.as_bytes()),
        EmbeddingInput::Tokens(tokens) => {
            for t in *tokens {
                feed(&t.as_i64().unwrap_or(0).to_le_bytes());
            }
        }
    }
    // splitmix64 stream seeded by the hash.
    let mut state = hash;
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Standard base64 of the little-endian `f32`s (OpenAI's `encoding_format: base64`).
fn base64_f32(values: &[f32]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[async_trait]
impl InferenceProvider for MockProvider {
    async fn chat(
        &self,
        _ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        self.check()?;
        let resp = self.response(req);
        Answer::json(&resp, resp.usage)
    }

    async fn chat_stream(
        &self,
        _ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        self.check()?;
        Ok(stream::iter(self.chunks(req).into_iter().map(Ok)).boxed())
    }

    async fn embeddings(
        &self,
        _ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        self.check()?;
        let inputs = embedding_inputs(&req.input).ok_or_else(|| {
            GatewayError::invalid_param(
                "input must be a non-empty string, array of strings, or array of token arrays",
                "input",
            )
        })?;
        let dimensions = req
            .dimensions
            .unwrap_or(DEFAULT_EMBEDDING_DIMENSIONS)
            .clamp(1, MAX_EMBEDDING_DIMENSIONS);
        let base64 = req.encoding_format.as_deref() == Some("base64");
        let mut tokens = 0;
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                tokens += match input {
                    EmbeddingInput::Text(s) => estimate_tokens(s),
                    EmbeddingInput::Tokens(t) => t.len() as u64,
                };
                let v = embedding(input, dimensions);
                let embedding = if base64 {
                    json!(base64_f32(&v))
                } else {
                    json!(v)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let usage = Usage {
            prompt_tokens: tokens,
            completion_tokens: 0,
            total_tokens: tokens,
        };
        let body = json!({
            "object": "list",
            "data": data,
            "model": req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        });
        Answer::json(&body, Some(usage))
    }

    /// Mock deployments make no call.
    fn endpoint(&self) -> Option<&::http::Uri> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::test_support::{client, deployment, params};
    use super::*;
    use routeiq::openai::CompletionRequest;

    async fn with_ctx<T>(f: impl AsyncFnOnce(&CallContext<'_>) -> T) -> T {
        let d = deployment(params("openai/gpt-4o"));
        let http = client();
        let ctx = CallContext {
            deployment: &d,
            http: &http,
            extra_headers: None,
        };
        f(&ctx).await
    }

    fn chat_req(stream_usage: bool) -> ChatCompletionRequest {
        let mut v = json!({"model":"my-group","messages":[
            {"role":"system","content":"Be nice"},{"role":"user","content":"Hello there"}]});
        if stream_usage {
            v["stream_options"] = json!({"include_usage": true});
        }
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn chat_answers_with_the_text() {
        let p = MockProvider::new("This is a mock answer.".into());
        let a = with_ctx(async |ctx| p.chat(ctx, &chat_req(false)).await.unwrap()).await;
        let r: ChatCompletionResponse = a.parse().unwrap();
        assert_eq!(a.usage, r.usage);
        assert_eq!(r.model, "my-group");
        assert_eq!(r.object, "chat.completion");
        assert_eq!(
            r.choices[0].message.content.as_deref(),
            Some("This is a mock answer.")
        );
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
        let u = r.usage.unwrap();
        assert_eq!(u.prompt_tokens, estimate_tokens("Be nice\nHello there"));
        assert_eq!(
            u.completion_tokens,
            estimate_tokens("This is a mock answer.")
        );
        assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    }

    #[tokio::test]
    async fn chat_stream_chunks() {
        let text = "one two three four five six seven eight nine";
        let p = MockProvider::new(text.into());
        let chunks: Vec<ChatCompletionChunk> = with_ctx(async |ctx| {
            p.chat_stream(ctx, &chat_req(true))
                .await
                .unwrap()
                .map(|c| c.unwrap())
                .collect()
                .await
        })
        .await;
        assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
        let content: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c.choices.first()?.delta.content.as_deref())
            .filter(|t| !t.is_empty())
            .collect();
        assert!(content.len() > 1 && content.len() <= STREAM_CONTENT_CHUNKS);
        assert_eq!(content.concat(), text);
        let n = chunks.len();
        assert_eq!(
            chunks[n - 2].choices[0].finish_reason.as_deref(),
            Some("stop")
        );
        assert!(chunks[n - 1].choices.is_empty());
        assert!(chunks[n - 1].usage.is_some());
        assert!(chunks.iter().all(|c| c.id == chunks[0].id));

        let chunks: Vec<_> = with_ctx(async |ctx| {
            p.chat_stream(ctx, &chat_req(false))
                .await
                .unwrap()
                .collect::<Vec<_>>()
                .await
        })
        .await;
        assert_eq!(chunks.len(), content.len() + 2);
    }

    #[test]
    fn word_splitting() {
        assert_eq!(split_words("", 4), Vec::<&str>::new());
        assert_eq!(split_words("single", 4), vec!["single"]);
        assert_eq!(split_words("a b", 4), vec!["a ", "b"]);
        assert_eq!(
            split_words("a b c d e f g h", 4),
            vec!["a b ", "c d ", "e f ", "g h"]
        );
        assert_eq!(split_words("a b c d e", 4).concat(), "a b c d e");
        assert!(split_words("a b c d e", 4).len() <= 4);
        assert_eq!(split_words("héllo  wörld", 4), vec!["héllo  ", "wörld"]);
    }

    #[tokio::test]
    async fn completions_in_text_completion_shape() {
        let p = MockProvider::new("Hi you".into());
        let req: CompletionRequest =
            serde_json::from_value(json!({"model":"m","prompt":"Say hi"})).unwrap();
        let a = with_ctx(async |ctx| p.completion(ctx, &req).await.unwrap()).await;
        let v: Value = a.parse().unwrap();
        assert_eq!(a.usage.unwrap().total_tokens, v["usage"]["total_tokens"]);
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], "Hi you");
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
        assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
        let req: CompletionRequest = serde_json::from_value(
            json!({"model":"m","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true}}),
        )
        .unwrap();
        let events: Vec<Value> = with_ctx(async |ctx| {
            p.completion_stream(ctx, &req)
                .await
                .unwrap()
                .map(|e| e.unwrap())
                .collect()
                .await
        })
        .await;
        let text: String = events
            .iter()
            .filter_map(|e| e["choices"].get(0)?["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, "Hi you");
        assert!(events.iter().all(|e| e["object"] == "text_completion"));
        assert!(events.last().unwrap()["usage"].is_object());
    }

    #[tokio::test]
    async fn embeddings_are_deterministic() {
        let p = MockProvider::new("x".into());
        let embed = async |input: Value, extra: Value| {
            let mut v = json!({"model":"emb","input":input});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            let req: EmbeddingRequest = serde_json::from_value(v).unwrap();
            with_ctx(async |ctx| p.embeddings(ctx, &req).await)
                .await
                .map(|a| a.parse::<Value>().unwrap())
        };
        let a = embed(json!("hello"), json!({})).await.unwrap();
        let b = embed(json!(["hello", "world"]), json!({})).await.unwrap();
        assert_eq!(a["object"], "list");
        assert_eq!(a["model"], "emb");
        assert_eq!(a["data"][0]["embedding"].as_array().unwrap().len(), 8);
        assert_eq!(a["data"][0]["embedding"], b["data"][0]["embedding"]);
        assert_ne!(b["data"][0]["embedding"], b["data"][1]["embedding"]);
        assert_eq!(b["data"][1]["index"], 1);
        let norm: f64 = a["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((norm - 1.0).abs() < 1e-3);
        let t = embed(json!([[1, 2, 3], [4, 5]]), json!({"dimensions": 16}))
            .await
            .unwrap();
        assert_eq!(t["data"].as_array().unwrap().len(), 2);
        assert_eq!(t["data"][0]["embedding"].as_array().unwrap().len(), 16);
        assert_eq!(t["usage"]["prompt_tokens"], 5);
        let single = embed(json!([1, 2, 3]), json!({})).await.unwrap();
        assert_eq!(single["data"].as_array().unwrap().len(), 1);
        let b64 = embed(json!("hello"), json!({"encoding_format":"base64"}))
            .await
            .unwrap();
        assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 44);
        assert!(matches!(
            embed(json!([]), json!({})).await,
            Err(GatewayError::InvalidRequest { .. })
        ));
        assert!(matches!(
            embed(json!({"a": 1}), json!({})).await,
            Err(GatewayError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn base64_encoding() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[]), "");
    }

    #[tokio::test]
    async fn litellm_error_mocks() {
        let p = MockProvider::new("litellm.RateLimitError".into());
        let e = with_ctx(async |ctx| p.chat(ctx, &chat_req(false)).await.unwrap_err()).await;
        assert!(matches!(
            e,
            GatewayError::Upstream {
                status: 429,
                kind: UpstreamErrorKind::RateLimit,
                ..
            }
        ));
        assert!(e.is_retryable());
        let p = MockProvider::new("litellm.ContextWindowExceededError".into());
        assert_eq!(
            p.check().unwrap_err().class(),
            crate::error::ErrorClass::Upstream(UpstreamErrorKind::ContextWindowExceeded)
        );
    }
}
