//! Google's Gemini API, as AI Studio serves it (`gemini/<model>`, an API key) and as Vertex AI
//! serves it (`vertex_ai/<model>`, a project, a location and OAuth tokens), translated to and
//! from OpenAI's chat format as LiteLLM does.
//!
//! - Requests: system messages → `systemInstruction`; turns → `contents` (`user` / `model`,
//!   consecutive turns of one role merged); images → `inlineData` (data URLs) or `fileData`;
//!   tool calls → `functionCall` parts, tool results → `functionResponse` parts (named by the
//!   call they answer); tools → `functionDeclarations` (schemas reduced to the OpenAPI subset
//!   Gemini takes); sampling parameters → `generationConfig`.
//! - Answers: parts → text and `tool_calls` (ids made up: Gemini has none), `finishReason` →
//!   `finish_reason`, `usageMetadata` → `usage` (thinking tokens count as completion tokens).
//!   A prompt Gemini blocks is a content-policy error.
//! - Streams: `streamGenerateContent?alt=sse`, each event a partial answer; a stream that ends
//!   before a `finishReason` is a cut stream.
//! - Embeddings: AI Studio's `batchEmbedContents`, Vertex AI's `predict`.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use http::Uri;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName};
use routeiq::openai::{
    ChatChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
    ChunkChoice, ContentPart, Delta, EmbeddingRequest, FunctionCall, MessageContent,
    ResponseMessage, Role, ToolCall, Usage,
};
use routeiq::provider::ProviderKind;
use routeiq::router::Deployment;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::anthropic::{check_unsupported_of, with_defaults};
use super::google_auth::{TokenSource, bearer, vertex_model_base};
use super::http::{
    StreamEnd, Upstream, add_deployment_headers, json_bytes, parse_endpoint, resolve_api_base,
    resolve_key, secret_header, translate_events, unix_seconds_now, wants_stream_usage,
};
use super::{Answer, CallContext, ChunkStream, InferenceProvider};
use crate::error::{GatewayError, UpstreamErrorKind};

/// OpenAI parameters Gemini has no counterpart for: a 400 naming them unless `drop_params`.
const UNSUPPORTED_PARAMS: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "function_call",
    "functions",
    "service_tier",
    "prediction",
    "audio",
    "modalities",
    "store",
    "web_search_options",
];

/// OpenAI parameters that change nothing on Gemini and are left out without a word.
const IGNORED_PARAMS: &[&str] = &["parallel_tool_calls", "stream_options"];

/// Schema keys Gemini's `Schema` (an OpenAPI 3.0 subset) takes; others are removed.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The Gemini API of one deployment (see the module docs).
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    upstream: Upstream,
    generate: Uri,
    stream: Uri,
    embed: Uri,
    headers: HeaderMap,
    /// Vertex AI: where access tokens come from (AI Studio sends its key in `headers`).
    tokens: Option<Arc<TokenSource>>,
    model: String,
    defaults: Map<String, Value>,
    drop_params: bool,
    vertex: bool,
}

impl GeminiProvider {
    /// AI Studio: base from `api_base`, else `GEMINI_API_BASE`, else Google's; key from
    /// `api_key`, else `GEMINI_API_KEY` (sent as `x-goog-api-key`). Vertex AI: project from
    /// `vertex_project`, else `VERTEXAI_PROJECT` / `VERTEX_PROJECT` / `GOOGLE_CLOUD_PROJECT`;
    /// location from `vertex_location`, else `VERTEXAI_LOCATION` / `VERTEX_LOCATION`, else
    /// `us-central1`; base from `api_base`, else the location's endpoint; tokens from
    /// `vertex_credentials` (see [`TokenSource`]).
    pub fn new(d: &Deployment, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, GatewayError> {
        let vertex = d.provider == ProviderKind::VertexAi;
        let model = d
            .upstream_model
            .trim()
            .trim_start_matches("models/")
            .to_string();
        let mut headers = HeaderMap::new();
        let (base, tokens) = if vertex {
            let (base, tokens) = vertex_model_base(d, env, "google", &model)?;
            (base, Some(tokens))
        } else {
            let root = resolve_api_base(d, env).ok_or_else(|| {
                GatewayError::Internal(format!("deployment '{}': gemini has no endpoint", d.id))
            })?;
            let root = root.trim().trim_end_matches('/');
            let root = if root.ends_with("/v1beta") || root.ends_with("/v1") {
                root.to_string()
            } else {
                format!("{root}/v1beta")
            };
            if let Some(key) = resolve_key(d, d.provider.api_key_env(), env) {
                headers.insert(
                    HeaderName::from_static("x-goog-api-key"),
                    secret_header(d, "", &key)?,
                );
            }
            (format!("{root}/models/{model}"), None)
        };
        add_deployment_headers(d, &mut headers)?;
        let embed_method = if vertex {
            "predict"
        } else {
            "batchEmbedContents"
        };
        Ok(GeminiProvider {
            upstream: Upstream::new(d.provider.name()),
            generate: parse_endpoint(d, &format!("{base}:generateContent"))?,
            stream: parse_endpoint(d, &format!("{base}:streamGenerateContent?alt=sse"))?,
            embed: parse_endpoint(d, &format!("{base}:{embed_method}"))?,
            headers,
            tokens,
            model,
            defaults: d.params.extra.clone(),
            drop_params: d.params.drop_params.unwrap_or(false),
            vertex,
        })
    }

    /// `POST`s `body` to `url` with the deployment's headers and, on Vertex AI, a token.
    async fn post(
        &self,
        ctx: &CallContext<'_>,
        url: &Uri,
        body: &Map<String, Value>,
    ) -> Result<http::Response<hyper::body::Incoming>, GatewayError> {
        let with_token;
        let headers = match &self.tokens {
            Some(t) => {
                let token = t.token().await?;
                let mut h = self.headers.clone();
                h.insert(AUTHORIZATION, bearer(&token)?);
                with_token = h;
                &with_token
            }
            None => &self.headers,
        };
        self.upstream
            .send(
                ctx.http,
                url,
                (headers, ctx.extra_headers),
                json_bytes(body)?,
            )
            .await
    }

    fn body(&self, req: &ChatCompletionRequest) -> Result<Map<String, Value>, GatewayError> {
        let req = with_defaults(req, &self.defaults)?;
        check_unsupported_of(
            &req,
            self.upstream.provider.as_str(),
            self.drop_params,
            UNSUPPORTED_PARAMS,
        )?;
        build_request(&req)
    }
}

#[async_trait]
impl InferenceProvider for GeminiProvider {
    async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        let body = self.body(req)?;
        let resp = self.post(ctx, &self.generate, &body).await?;
        let resp: GenerateResponse = self.upstream.read_json(ctx.http.limits(), resp).await?;
        let chat = to_chat_response(resp, &self.model, &self.upstream)?;
        Answer::json(&chat, chat.usage)
    }

    async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        let body = self.body(req)?;
        let resp = self.post(ctx, &self.stream, &body).await?;
        let events = self
            .upstream
            .sse(ctx.http.limits(), resp, StreamEnd::FinishReason);
        Ok(chat_chunks(
            self.upstream.clone(),
            events,
            &self.model,
            wants_stream_usage(req),
        ))
    }

    async fn embeddings(
        &self,
        ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        let inputs = embedding_inputs(&req.input)?;
        let body = if self.vertex {
            let mut b = Map::new();
            b.insert(
                "instances".into(),
                Value::Array(inputs.iter().map(|t| json!({"content": t})).collect()),
            );
            if let Some(d) = req.dimensions {
                b.insert("parameters".into(), json!({"outputDimensionality": d}));
            }
            b
        } else {
            let requests: Vec<Value> = inputs
                .iter()
                .map(|t| {
                    let mut r = json!({
                        "model": format!("models/{}", self.model),
                        "content": {"parts": [{"text": t}]},
                    });
                    if let Some(d) = req.dimensions {
                        r["outputDimensionality"] = json!(d);
                    }
                    r
                })
                .collect();
            let mut b = Map::new();
            b.insert("requests".into(), Value::Array(requests));
            b
        };
        let resp = self.post(ctx, &self.embed, &body).await?;
        let body: Value = self.upstream.read_json(ctx.http.limits(), resp).await?;
        let (vectors, tokens) = if self.vertex {
            vertex_embeddings(&body)
        } else {
            studio_embeddings(&body)
        }
        .ok_or_else(|| self.upstream.bad_response("the answer holds no embeddings"))?;
        if vectors.len() != inputs.len() {
            return Err(self.upstream.bad_response(format!(
                "{} embeddings for {} inputs",
                vectors.len(),
                inputs.len()
            )));
        }
        let prompt_tokens = tokens.unwrap_or_else(|| {
            inputs
                .iter()
                .map(|t| routeiq::openai::estimate_tokens(t))
                .sum()
        });
        let usage = Usage {
            prompt_tokens,
            completion_tokens: 0,
            total_tokens: prompt_tokens,
        };
        let data: Vec<Value> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        Answer::json(
            &json!({"object": "list", "data": data, "model": self.model, "usage": usage}),
            Some(usage),
        )
    }

    fn endpoint(&self) -> Option<&Uri> {
        Some(&self.generate)
    }
}

/// The texts of an embeddings request's `input` (a string or a list of strings).
fn embedding_inputs(input: &Value) -> Result<Vec<String>, GatewayError> {
    let bad = || {
        GatewayError::invalid_param(
            "gemini embeds text: 'input' must be a string or a list of strings",
            "input",
        )
    };
    match input {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// `{"embeddings": [{"values": [...]}]}`.
fn studio_embeddings(body: &Value) -> Option<(Vec<Value>, Option<u64>)> {
    let list = body.get("embeddings")?.as_array()?;
    let vectors = list
        .iter()
        .map(|e| e.get("values").cloned())
        .collect::<Option<Vec<_>>>()?;
    Some((vectors, None))
}

/// `{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count": n}}}]}`.
fn vertex_embeddings(body: &Value) -> Option<(Vec<Value>, Option<u64>)> {
    let list = body.get("predictions")?.as_array()?;
    let mut tokens = 0u64;
    let mut counted = false;
    let mut vectors = Vec::new();
    for p in list {
        let e = p.get("embeddings")?;
        vectors.push(e.get("values")?.clone());
        if let Some(n) = e
            .get("statistics")
            .and_then(|s| s.get("token_count"))
            .and_then(Value::as_f64)
        {
            tokens += n as u64;
            counted = true;
        }
    }
    Some((vectors, counted.then_some(tokens)))
}

/// The Gemini `generateContent` body for an OpenAI chat request.
pub(super) fn build_request(
    req: &ChatCompletionRequest,
) -> Result<Map<String, Value>, GatewayError> {
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let param = || format!("messages[{i}]");
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                if let Some(c) = &m.content {
                    system.push(json!({"text": c.as_text()}));
                }
                continue;
            }
            Role::User => ("user", user_parts(m, &param)?),
            Role::Assistant => ("model", assistant_parts(m, &param)?),
            Role::Tool | Role::Function => (
                "user",
                vec![tool_result_part(m, &req.messages[..i], &param)?],
            ),
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((r, p)) if r == role => p.extend(parts),
            _ => contents.push((role.to_string(), parts)),
        }
    }
    if contents.is_empty() {
        return Err(GatewayError::invalid_param(
            "gemini needs at least one user or assistant message",
            "messages",
        ));
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.function.name});
                if let Some(desc) = &t.function.description {
                    d["description"] = json!(desc);
                }
                if let Some(p) = &t.function.parameters {
                    d["parameters"] = gemini_schema(p);
                }
                d
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), tool_config(choice)?);
    }
    let mut config = Map::new();
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), json!(p));
    }
    if let Some(n) = req.max_completion_tokens.or(req.max_tokens) {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(stop) = &req.stop {
        let stops: Vec<String> = stop
            .to_vec()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if !stops.is_empty() {
            config.insert("stopSequences".into(), json!(stops));
        }
    }
    for (key, value) in &req.extra {
        match key.as_str() {
            "n" => {
                config.insert("candidateCount".into(), value.clone());
            }
            "seed" => {
                config.insert("seed".into(), value.clone());
            }
            "presence_penalty" => {
                config.insert("presencePenalty".into(), value.clone());
            }
            "frequency_penalty" => {
                config.insert("frequencyPenalty".into(), value.clone());
            }
            "top_k" => {
                config.insert("topK".into(), value.clone());
            }
            "response_format" => response_format(value, &mut config)?,
            "reasoning_effort" => {
                if let Some(budget) = value.as_str().and_then(thinking_budget) {
                    config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
                }
            }
            "safety_settings" | "safetySettings" => {
                body.insert("safetySettings".into(), value.clone());
            }
            "cached_content" | "cachedContent" => {
                body.insert("cachedContent".into(), value.clone());
            }
            "labels" => {
                body.insert("labels".into(), value.clone());
            }
            "generationConfig" | "generation_config" => {
                if let Some(m) = value.as_object() {
                    for (k, v) in m {
                        config.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            k if UNSUPPORTED_PARAMS.contains(&k) || IGNORED_PARAMS.contains(&k) => {}
            // Gemini-native fields (`thinkingConfig`...) and anything newer go as they are.
            _ => {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(body)
}

/// LiteLLM's `reasoning_effort` → `thinkingBudget` tokens.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "none" | "disable" => Some(0),
        "minimal" => Some(128),
        "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

/// `response_format`: JSON mode and JSON schemas.
fn response_format(v: &Value, config: &mut Map<String, Value>) -> Result<(), GatewayError> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") | None => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = v.get("json_schema").and_then(|s| s.get("schema")) {
                config.insert("responseSchema".into(), gemini_schema(schema));
            }
        }
        Some(other) => {
            return Err(GatewayError::invalid_param(
                format!("response_format type '{other}' is not supported by gemini"),
                "response_format",
            ));
        }
    }
    Ok(())
}

/// A JSON schema reduced to the keys Gemini's `Schema` takes (property names are kept; a
/// `type` list with `null` becomes `nullable`).
fn gemini_schema(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in obj {
        if !SCHEMA_KEYS.contains(&k.as_str()) {
            continue;
        }
        let val = match k.as_str() {
            "properties" => match val.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), gemini_schema(s)))
                        .collect(),
                ),
                None => val.clone(),
            },
            "items" => gemini_schema(val),
            "anyOf" => match val.as_array() {
                Some(list) => Value::Array(list.iter().map(gemini_schema).collect()),
                None => val.clone(),
            },
            "type" => match val.as_array() {
                Some(types) => {
                    let non_null: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    non_null.first().map_or(json!("string"), |t| (*t).clone())
                }
                None => val.clone(),
            },
            _ => val.clone(),
        };
        out.insert(k.clone(), val);
    }
    Value::Object(out)
}

fn tool_config(choice: &Value) -> Result<Value, GatewayError> {
    let mode = |m: &str| json!({"functionCallingConfig": {"mode": m}});
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(mode("AUTO")),
            "none" => Ok(mode("NONE")),
            "required" => Ok(mode("ANY")),
            other => Err(GatewayError::invalid_param(
                format!("unknown tool_choice '{other}'"),
                "tool_choice",
            )),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    GatewayError::invalid_param("tool_choice needs function.name", "tool_choice")
                })?;
            Ok(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}))
        }
        _ => Err(GatewayError::invalid_param(
            "tool_choice must be a string or an object",
            "tool_choice",
        )),
    }
}

fn user_parts(m: &ChatMessage, param: &dyn Fn() -> String) -> Result<Vec<Value>, GatewayError> {
    match &m.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => Ok(json!({"text": text})),
                ContentPart::ImageUrl { image_url } => image_part(&image_url.url, param),
                ContentPart::Other(v) => Err(GatewayError::invalid_param(
                    format!(
                        "content part type {} is not supported by gemini",
                        v.get("type").unwrap_or(&Value::Null)
                    ),
                    format!("{}.content", param()),
                )),
            })
            .collect(),
    }
}

/// `data:` URLs become inline data; other URLs file data with a MIME type from the extension.
fn image_part(url: &str, param: &dyn Fn() -> String) -> Result<Value, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            GatewayError::invalid_param("malformed data URL", format!("{}.content", param()))
        })?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| {
            GatewayError::invalid_param(
                "only base64 data URLs are supported",
                format!("{}.content", param()),
            )
        })?;
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let mime = [
        (".png", "image/png"),
        (".gif", "image/gif"),
        (".webp", "image/webp"),
        (".pdf", "application/pdf"),
        (".mp4", "video/mp4"),
        (".mp3", "audio/mp3"),
        (".wav", "audio/wav"),
    ]
    .iter()
    .find(|(ext, _)| path.ends_with(ext))
    .map_or("image/jpeg", |(_, m)| m);
    Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
}

fn assistant_parts(
    m: &ChatMessage,
    param: &dyn Fn() -> String,
) -> Result<Vec<Value>, GatewayError> {
    let mut parts = Vec::new();
    if let Some(c) = &m.content {
        let text = c.as_text();
        if !text.is_empty() {
            parts.push(json!({"text": text}));
        }
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let name = call.function.name.as_deref().ok_or_else(|| {
            GatewayError::invalid_param(
                "a tool call needs function.name",
                format!("{}.tool_calls[{j}]", param()),
            )
        })?;
        let args: Value = if call.function.arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&call.function.arguments).map_err(|e| {
                GatewayError::invalid_param(
                    format!("function.arguments is not JSON: {e}"),
                    format!("{}.tool_calls[{j}].function.arguments", param()),
                )
            })?
        };
        parts.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    Ok(parts)
}

/// A tool result as a `functionResponse`, named by the assistant tool call it answers.
fn tool_result_part(
    m: &ChatMessage,
    before: &[ChatMessage],
    param: &dyn Fn() -> String,
) -> Result<Value, GatewayError> {
    let by_id = m.tool_call_id.as_deref().and_then(|id| {
        before
            .iter()
            .rev()
            .flat_map(|b| b.tool_calls.iter().flatten())
            .find(|c| c.id.as_deref() == Some(id))
            .and_then(|c| c.function.name.clone())
    });
    let name = by_id.or_else(|| m.name.clone()).ok_or_else(|| {
        GatewayError::invalid_param(
            "a tool message must answer an earlier assistant tool call (tool_call_id) or name \
             its function",
            format!("{}.tool_call_id", param()),
        )
    })?;
    let text = m.content.as_ref().map(|c| c.as_text()).unwrap_or_default();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({"content": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

/// `generateContent`'s answer (and each streamed event).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    response_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    /// A thought summary (`thought: true` on a text part).
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    function_call: Option<GeminiCall>,
}

#[derive(Debug, Deserialize)]
struct GeminiCall {
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

impl UsageMetadata {
    fn to_openai(self) -> Usage {
        let completion = self.candidates_token_count + self.thoughts_token_count;
        Usage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens: completion,
            total_tokens: self.prompt_token_count + completion,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

/// OpenAI's `finish_reason` for Gemini's `finishReason` (`tool_calls` when the answer calls
/// tools).
fn finish_reason(reason: &str, called_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// A call id: Gemini's calls have none.
fn call_id() -> String {
    format!("call_{:016x}", fastrand::u64(..))
}

fn blocked(upstream: &Upstream, reason: &str) -> GatewayError {
    GatewayError::Upstream {
        provider: upstream.provider.clone(),
        status: 400,
        kind: UpstreamErrorKind::ContentPolicyViolation,
        message: format!("the prompt was blocked by the provider's safety filters ({reason})"),
        retry_after: None,
    }
}

/// The text, reasoning and tool calls of a candidate's parts.
fn split_parts(parts: Vec<Part>) -> (Option<String>, Option<String>, Vec<(String, Value)>) {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for p in parts {
        if let Some(c) = p.function_call {
            calls.push((c.name, c.args));
        } else if let Some(t) = p.text {
            let target = if p.thought == Some(true) {
                &mut reasoning
            } else {
                &mut text
            };
            target.get_or_insert_with(String::new).push_str(&t);
        }
    }
    (text, reasoning, calls)
}

fn tool_call(index: Option<u32>, name: String, args: Value) -> ToolCall {
    let arguments = if args.is_null() {
        "{}".to_string()
    } else {
        args.to_string()
    };
    ToolCall {
        index,
        id: Some(call_id()),
        kind: Some("function".into()),
        function: FunctionCall {
            name: Some(name),
            arguments,
        },
    }
}

pub(super) fn to_chat_response(
    resp: GenerateResponse,
    model: &str,
    upstream: &Upstream,
) -> Result<ChatCompletionResponse, GatewayError> {
    if resp.candidates.is_empty() {
        let reason = resp
            .prompt_feedback
            .and_then(|f| f.block_reason)
            .unwrap_or_else(|| "no candidates".into());
        return Err(blocked(upstream, &reason));
    }
    let choices = resp
        .candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (text, reasoning, calls) =
                split_parts(c.content.map(|c| c.parts).unwrap_or_default());
            let called = !calls.is_empty();
            let tool_calls: Vec<ToolCall> = calls
                .into_iter()
                .map(|(name, args)| tool_call(None, name, args))
                .collect();
            let mut extra = Map::new();
            if let Some(r) = reasoning {
                extra.insert("reasoning_content".into(), Value::String(r));
            }
            ChatChoice {
                index: c.index.unwrap_or(i as u32),
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: text.or_else(|| (!called).then(String::new)),
                    tool_calls: called.then_some(tool_calls),
                    extra,
                },
                finish_reason: Some(
                    finish_reason(c.finish_reason.as_deref().unwrap_or("STOP"), called).into(),
                ),
                logprobs: None,
            }
        })
        .collect();
    Ok(ChatCompletionResponse {
        id: format!(
            "chatcmpl-{}",
            resp.response_id
                .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)))
        ),
        object: "chat.completion".into(),
        created: unix_seconds_now(),
        model: model.to_string(),
        choices,
        usage: resp.usage_metadata.map(UsageMetadata::to_openai),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

/// What a streamed answer needs across events.
struct ChatStream {
    id: String,
    model: String,
    created: u64,
    /// The role went out with the first chunk.
    started: bool,
    /// Tool calls sent so far (their OpenAI indices).
    calls: u32,
    include_usage: bool,
    usage: Option<UsageMetadata>,
    upstream: Upstream,
}

impl ChatStream {
    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// The chunks for one event: its content (and finish reason), then, on the last
    /// event, the usage chunk when the client asked for it.
    fn on_event(&mut self, data: &str) -> Result<Vec<ChatCompletionChunk>, GatewayError> {
        let resp: GenerateResponse = serde_json::from_str(data).map_err(|e| {
            self.upstream
                .bad_response(format!("invalid stream event: {e}"))
        })?;
        if let Some(u) = resp.usage_metadata {
            self.usage = Some(u);
        }
        let Some(candidate) = resp.candidates.into_iter().next() else {
            return match resp.prompt_feedback.and_then(|f| f.block_reason) {
                Some(reason) => Err(blocked(&self.upstream, &reason)),
                None => Ok(Vec::new()),
            };
        };
        let (text, reasoning, calls) =
            split_parts(candidate.content.map(|c| c.parts).unwrap_or_default());
        let called = !calls.is_empty();
        let tool_calls: Vec<ToolCall> = calls
            .into_iter()
            .map(|(name, args)| {
                let call = tool_call(Some(self.calls), name, args);
                self.calls += 1;
                call
            })
            .collect();
        let mut extra = Map::new();
        if let Some(r) = reasoning {
            extra.insert("reasoning_content".into(), Value::String(r));
        }
        let finish = candidate
            .finish_reason
            .as_deref()
            .map(|r| finish_reason(r, called || self.calls > 0).to_string());
        let has_content = text.is_some() || called || !extra.is_empty();
        let mut out = Vec::new();
        if has_content || finish.is_some() || !self.started {
            let delta = Delta {
                role: (!self.started).then_some(Role::Assistant),
                content: text,
                tool_calls: called.then_some(tool_calls),
                extra,
            };
            self.started = true;
            out.push(self.chunk(delta, finish.clone()));
        }
        if finish.is_some() && self.include_usage {
            let mut last = self.chunk(Delta::default(), None);
            last.choices.clear();
            last.usage = Some(self.usage.unwrap_or_default().to_openai());
            out.push(last);
        }
        Ok(out)
    }
}

/// OpenAI chunks from Gemini's stream events.
fn chat_chunks(
    upstream: Upstream,
    events: super::http::SseStream,
    model: &str,
    include_usage: bool,
) -> ChunkStream {
    let state = ChatStream {
        id: format!("chatcmpl-{:016x}", fastrand::u64(..)),
        model: model.to_string(),
        created: unix_seconds_now(),
        started: false,
        calls: 0,
        include_usage,
        usage: None,
        upstream: upstream.clone(),
    };
    translate_events(events, state, |st, ev| st.on_event(&ev.data).map(Some))
        .flat_map(|batch| {
            futures::stream::iter(match batch {
                Ok(chunks) => chunks.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    fn upstream() -> Upstream {
        Upstream::new("gemini")
    }

    #[test]
    fn messages_tools_and_config_translate() {
        let r = req(json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.webp?s=1"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather",
                "parameters": {"type": "object", "additionalProperties": false, "$schema": "x",
                    "properties": {"city": {"type": ["string", "null"], "title": "City"}}, "required": ["city"]}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "stop": "END",
            "seed": 7, "top_k": 3, "response_format": {"type": "json_object"},
            "reasoning_effort": "low", "parallel_tool_calls": true,
            "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
        }));
        let body = build_request(&r).unwrap();
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}]})
        );
        let contents = body["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 3, "{contents:?}");
        assert_eq!(contents[0]["role"], "user");
        assert_eq!(
            contents[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBOR"}})
        );
        assert_eq!(
            contents[0]["parts"][2]["fileData"]["mimeType"],
            "image/webp"
        );
        assert_eq!(contents[1]["role"], "model");
        assert_eq!(
            contents[1]["parts"][0],
            json!({"functionCall": {"name": "weather", "args": {"city": "Paris"}}})
        );
        assert_eq!(contents[1]["parts"][1]["functionCall"]["args"], json!({}));
        // Both tool results, then the user's text, are one user turn.
        assert_eq!(contents[2]["role"], "user");
        assert_eq!(
            contents[2]["parts"][0],
            json!({"functionResponse": {"name": "weather", "response": {"temp": 21}}})
        );
        assert_eq!(
            contents[2]["parts"][1],
            json!({"functionResponse": {"name": "time", "response": {"content": "noon"}}})
        );
        assert_eq!(contents[2]["parts"][2], json!({"text": "Thanks"}));
        let decl = &body["tools"][0]["functionDeclarations"][0];
        assert_eq!(
            decl["parameters"],
            json!({"type": "object", "properties": {"city": {"type": "string", "nullable": true, "title": "City"}}, "required": ["city"]})
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
        );
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"],
                "seed": 7, "topK": 3, "responseMimeType": "application/json",
                "thinkingConfig": {"thinkingBudget": 1024}})
        );
        assert!(body.contains_key("safetySettings"));
        assert!(!body.contains_key("parallel_tool_calls"));
    }

    #[test]
    fn bad_messages_are_invalid_requests() {
        let orphan = req(json!({"model": "g", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "nope", "content": "x"}
        ]}));
        let e = build_request(&orphan).unwrap_err();
        assert_eq!(e.status_code().as_u16(), 400);
        assert!(e.to_string().contains("tool_call_id"), "{e}");
        let only_system =
            req(json!({"model": "g", "messages": [{"role": "system", "content": "x"}]}));
        assert!(build_request(&only_system).is_err());
        let bad_args = req(json!({"model": "g", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}}]}
        ]}));
        assert!(
            build_request(&bad_args)
                .unwrap_err()
                .to_string()
                .contains("arguments")
        );
    }

    #[test]
    fn answers_translate() {
        let resp: GenerateResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "It is "}, {"text": "sunny."},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3, "totalTokenCount": 18},
            "responseId": "abc"
        }))
        .unwrap();
        let chat = to_chat_response(resp, "gemini-2.5-flash", &upstream()).unwrap();
        assert_eq!(chat.id, "chatcmpl-abc");
        let c = &chat.choices[0];
        assert_eq!(c.message.content.as_deref(), Some("It is sunny."));
        assert_eq!(c.message.extra["reasoning_content"], "thinking...");
        let call = &c.message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.name.as_deref(), Some("weather"));
        assert_eq!(call.function.arguments, r#"{"city":"Paris"}"#);
        assert!(call.id.as_deref().unwrap().starts_with("call_"));
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            chat.usage,
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 8,
                total_tokens: 18
            })
        );
        let blocked: GenerateResponse =
            serde_json::from_value(json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
        let e = to_chat_response(blocked, "g", &upstream()).unwrap_err();
        assert!(matches!(
            e,
            GatewayError::Upstream {
                kind: UpstreamErrorKind::ContentPolicyViolation,
                ..
            }
        ));
        for (reason, expect) in [
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("STOP", "stop"),
            ("OTHER", "stop"),
        ] {
            assert_eq!(finish_reason(reason, false), expect);
        }
    }

    #[test]
    fn stream_events_translate() {
        let mut st = ChatStream {
            id: "chatcmpl-x".into(),
            model: "g".into(),
            created: 1,
            started: false,
            calls: 0,
            include_usage: true,
            usage: None,
            upstream: upstream(),
        };
        let first = st
            .on_event(r#"{"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}"#)
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(first[0].choices[0].delta.content.as_deref(), Some("Hel"));
        let call = st
            .on_event(r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}}]}"#)
            .unwrap();
        let tc = &call[0].choices[0].delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (tc.index, tc.function.arguments.as_str()),
            (Some(0), r#"{"a":1}"#)
        );
        let last = st
            .on_event(r#"{"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}"#)
            .unwrap();
        assert_eq!(last.len(), 2);
        assert_eq!(
            last[0].choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        assert!(last[1].choices.is_empty());
        assert_eq!(last[1].usage.unwrap().total_tokens, 6);
        assert!(st.on_event("not json").is_err());
    }

    #[test]
    fn schemas_keep_what_gemini_takes() {
        let s = gemini_schema(&json!({
            "type": "object", "$defs": {}, "additionalProperties": false,
            "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer", "exclusiveMinimum": 0}}}},
                "format": {"type": "string", "enum": ["a", "b"]}}
        }));
        assert_eq!(
            s,
            json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                "format": {"type": "string", "enum": ["a", "b"]}}})
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        /// A turn: user text, or an assistant's tool calls (name, args) then their results.
        #[derive(Debug, Clone)]
        enum Turn {
            User(String),
            Calls(Vec<(String, i64, String)>),
        }

        fn turn() -> impl Strategy<Value = Turn> {
            prop_oneof![
                "[a-zA-Z0-9 ,.?!]{1,40}".prop_map(Turn::User),
                prop::collection::vec(("[a-z_]{1,12}", any::<i64>(), "[a-z ]{0,20}"), 1..4)
                    .prop_map(Turn::Calls),
            ]
        }

        fn messages(turns: &[Turn]) -> Vec<Value> {
            let mut out = vec![json!({"role": "user", "content": "start"})];
            for (t, turn) in turns.iter().enumerate() {
                match turn {
                    Turn::User(text) => out.push(json!({"role": "user", "content": text})),
                    Turn::Calls(calls) => {
                        let tool_calls: Vec<Value> = calls
                            .iter()
                            .enumerate()
                            .map(|(i, (name, n, _))| json!({"id": format!("c{t}_{i}"), "type": "function",
                                "function": {"name": name, "arguments": json!({"n": n}).to_string()}}))
                            .collect();
                        out.push(
                            json!({"role": "assistant", "content": null, "tool_calls": tool_calls}),
                        );
                        for (i, (_, _, result)) in calls.iter().enumerate() {
                            out.push(json!({"role": "tool", "tool_call_id": format!("c{t}_{i}"), "content": result}));
                        }
                    }
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Every text, call (name, arguments) and result reaches Gemini, in order.
            #[test]
            fn requests_lose_nothing(turns in prop::collection::vec(turn(), 0..8)) {
                let r = req(json!({"model": "g", "messages": messages(&turns)}));
                let body = build_request(&r).unwrap();
                let parts: Vec<Value> = body["contents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c["parts"].as_array().unwrap().clone())
                    .collect();
                let mut expected = vec![json!({"text": "start"})];
                for turn in &turns {
                    match turn {
                        Turn::User(text) => expected.push(json!({"text": text})),
                        Turn::Calls(calls) => {
                            for (name, n, _) in calls {
                                expected.push(json!({"functionCall": {"name": name, "args": {"n": n}}}));
                            }
                            for (name, _, result) in calls {
                                expected.push(json!({"functionResponse": {"name": name, "response": {"content": result}}}));
                            }
                        }
                    }
                }
                prop_assert_eq!(parts, expected);
                // Roles alternate once merged: Gemini wants no two turns of one role in a row.
                let roles: Vec<&str> = body["contents"].as_array().unwrap().iter().map(|c| c["role"].as_str().unwrap()).collect();
                prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "{:?}", roles);
            }

            /// An answer's text, calls and usage survive, whole and streamed.
            #[test]
            fn answers_lose_nothing(
                words in prop::collection::vec("[a-z]{1,8}", 0..12),
                calls in prop::collection::vec(("[a-z_]{1,12}", any::<i32>()), 0..4),
                prompt in 0u64..10_000,
                completion in 0u64..10_000,
            ) {
                let text = words.join(" ");
                let mut parts: Vec<Value> = Vec::new();
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for (name, n) in &calls {
                    parts.push(json!({"functionCall": {"name": name, "args": {"n": n}}}));
                }
                let usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": completion});
                let whole: GenerateResponse = serde_json::from_value(json!({
                    "candidates": [{"content": {"parts": parts.clone()}, "finishReason": "STOP"}],
                    "usageMetadata": usage,
                })).unwrap();
                let chat = to_chat_response(whole, "g", &upstream()).unwrap();
                let msg = &chat.choices[0].message;
                let got_calls: Vec<(String, String)> = msg.tool_calls.iter().flatten()
                    .map(|c| (c.function.name.clone().unwrap(), c.function.arguments.clone())).collect();
                let want_calls: Vec<(String, String)> = calls.iter()
                    .map(|(name, n)| (name.clone(), json!({"n": n}).to_string())).collect();
                prop_assert_eq!(&got_calls, &want_calls);
                if calls.is_empty() {
                    prop_assert_eq!(msg.content.clone().unwrap_or_default(), text.clone());
                }
                prop_assert_eq!(chat.usage.unwrap().total_tokens, prompt + completion);

                // The same answer streamed a part per event.
                let mut st = ChatStream {
                    id: "x".into(), model: "g".into(), created: 0, started: false, calls: 0,
                    include_usage: true, usage: None, upstream: upstream(),
                };
                let mut chunks = Vec::new();
                let last = parts.len().saturating_sub(1);
                for (i, p) in parts.iter().enumerate() {
                    let mut ev = json!({"candidates": [{"content": {"parts": [p]}}]});
                    if i == last {
                        ev["candidates"][0]["finishReason"] = json!("STOP");
                        ev["usageMetadata"] = usage.clone();
                    }
                    chunks.extend(st.on_event(&ev.to_string()).unwrap());
                }
                if parts.is_empty() {
                    let ev = json!({"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}], "usageMetadata": usage});
                    chunks.extend(st.on_event(&ev.to_string()).unwrap());
                }
                let streamed: String = chunks.iter()
                    .filter_map(|c| c.choices.first()?.delta.content.clone()).collect();
                prop_assert_eq!(streamed, text);
                let streamed_calls: Vec<(String, String)> = chunks.iter()
                    .filter_map(|c| c.choices.first()?.delta.tool_calls.clone())
                    .flatten()
                    .map(|c| (c.function.name.unwrap(), c.function.arguments))
                    .collect();
                prop_assert_eq!(streamed_calls, want_calls);
                let total = chunks.iter().filter_map(|c| c.usage).map(|u| u.total_tokens).next_back();
                prop_assert_eq!(total, Some(prompt + completion));
            }
        }
    }
}
