//! AWS Bedrock through the Converse and ConverseStream APIs (`bedrock/<model id>`), with the
//! AWS SDK: SigV4 signing, credentials from `litellm_params` (`aws_access_key_id`, ...) or the
//! standard chain (environment, profile, the Lambda role), region from `aws_region_name` or
//! the environment. OpenAI chat requests are translated to Converse messages (through the
//! Anthropic translation, whose content model Converse shares: system text, alternating
//! user/assistant turns, tool use and tool result blocks, images), and answers and stream
//! events back to OpenAI's `chat.completion` / `chat.completion.chunk`. Legacy completions
//! run as a one-message chat; embeddings are not offered through Converse.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    AnyToolChoice, AutoToolChoice, ContentBlock, ContentBlockDelta, ContentBlockStart,
    ConversationRole, ConverseOutput as OutputUnion, ConverseStreamOutput, DocumentBlock,
    DocumentFormat, DocumentSource, ImageBlock, ImageFormat, ImageSource, InferenceConfiguration,
    Message, SpecificToolChoice, StopReason, SystemContentBlock, TokenUsage, Tool, ToolChoice,
    ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolSpecification,
    ToolUseBlock,
};
use aws_smithy_types::{Document, Number};
use base64::Engine;
use futures::StreamExt;
use routeiq::openai::{
    ChatChoice, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChunkChoice,
    Delta, EmbeddingRequest, FunctionCall, ResponseMessage, Role, ToolCall, Usage,
};
use routeiq::router::Deployment;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::anthropic::{build_request, check_unsupported, with_defaults};
use super::http::{classify, parse_http_url, unix_seconds_now};
use super::{Answer, CallContext, ChunkStream, InferenceProvider};
use crate::error::GatewayError;

const PROVIDER: &str = "bedrock";
/// Output tokens when neither the request nor `model_info` says.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Keys of the Anthropic-shaped body that map onto Converse fields; the rest go to
/// `additionalModelRequestFields` (model-native parameters such as `top_k`).
const MAPPED_KEYS: &[&str] = &[
    "model",
    "system",
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "stream",
];

/// Bedrock's Converse API for one deployment.
pub struct BedrockProvider {
    model_id: String,
    aws: routeiq::config::AwsParams,
    /// Endpoint override, parsed at start-up.
    endpoint: Option<http::Uri>,
    default_max_tokens: u64,
    /// `drop_params` (the deployment's, else `litellm_settings`').
    drop_params: bool,
    defaults: Map<String, Value>,
    /// Built on first use: the AWS configuration chain is async.
    client: OnceCell<Client>,
}

impl BedrockProvider {
    /// The endpoint is `aws_bedrock_runtime_endpoint`, else `api_base`, else the SDK's
    /// (regional endpoint, or `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`).
    pub fn new(d: &Deployment) -> Result<Self, GatewayError> {
        if !d.params.headers.is_empty() {
            return Err(GatewayError::NotSupported(format!(
                "deployment '{}': extra_headers cannot be sent to bedrock deployments (the AWS SDK signs its own)",
                d.id
            )));
        }
        let endpoint = d
            .params
            .aws
            .bedrock_runtime_endpoint
            .as_deref()
            .or(d.params.api_base.as_deref())
            .map(|e| {
                parse_http_url(e.trim()).map_err(|why| {
                    GatewayError::NotSupported(format!(
                        "deployment '{}': invalid Bedrock endpoint '{e}': {why}",
                        d.id
                    ))
                })
            })
            .transpose()?;
        Ok(BedrockProvider {
            model_id: d.upstream_model.clone(),
            aws: d.params.aws.clone(),
            endpoint,
            // `model_info.max_tokens` is a context window in LiteLLM, not an output length.
            default_max_tokens: d.info.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            drop_params: d.params.drop_params.unwrap_or(false),
            defaults: d.params.extra.clone(),
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(crate::s3::aws_http_client());
                if let Some(region) = &self.aws.region_name {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(profile) = &self.aws.profile_name {
                    loader = loader.profile_name(profile);
                }
                if let (Some(id), Some(secret)) =
                    (&self.aws.access_key_id, &self.aws.secret_access_key)
                {
                    loader = loader.credentials_provider(
                        aws_sdk_bedrockruntime::config::Credentials::new(
                            id.expose(),
                            secret.expose(),
                            self.aws
                                .session_token
                                .as_ref()
                                .map(|t| t.expose().to_string()),
                            None,
                            "routeiq-litellm-params",
                        ),
                    );
                }
                let shared = loader.load().await;
                // The dispatcher owns retries, backoff and fallbacks: the SDK must not retry.
                let mut config = aws_sdk_bedrockruntime::config::Builder::from(&shared)
                    .retry_config(aws_config::retry::RetryConfig::disabled());
                if let Some(endpoint) = &self.endpoint {
                    config = config.endpoint_url(endpoint.to_string().trim_end_matches('/'));
                }
                Client::from_conf(config.build())
            })
            .await
    }

    /// InvokeModel with a JSON body; the answer as JSON.
    async fn invoke(&self, body: &Value) -> Result<Value, GatewayError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| GatewayError::Internal(format!("serializing a bedrock body: {e}")))?;
        let out = self
            .client()
            .await
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(bytes))
            .send()
            .await
            .map_err(call_error)?;
        serde_json::from_slice(out.body().as_ref())
            .map_err(|e| bad_embedding(&format!("the answer is not JSON: {e}")))
    }

    /// The Converse request parts for an OpenAI chat request.
    fn converse_input(&self, req: &ChatCompletionRequest) -> Result<ConverseInput, GatewayError> {
        let req = with_defaults(req, &self.defaults)?;
        check_unsupported(&req, "bedrock", self.drop_params)?;
        let body = build_request(&req, &self.model_id, self.default_max_tokens, false)?;
        ConverseInput::from_anthropic_body(&body)
    }

    async fn converse(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatCompletionResponse, GatewayError> {
        let input = self.converse_input(req)?;
        let out = self
            .client()
            .await
            .converse()
            .model_id(&self.model_id)
            .set_messages(Some(input.messages))
            .set_system(input.system)
            .inference_config(input.inference)
            .set_tool_config(input.tools)
            .set_additional_model_request_fields(input.additional)
            .send()
            .await
            .map_err(call_error)?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        if let Some(OutputUnion::Message(m)) = out.output() {
            for block in m.content() {
                match block {
                    ContentBlock::Text(t) => text.push_str(t),
                    ContentBlock::ToolUse(t) => tool_calls.push(ToolCall {
                        index: Some(tool_calls.len() as u32),
                        id: Some(t.tool_use_id().to_string()),
                        kind: Some("function".into()),
                        function: FunctionCall {
                            name: Some(t.name().to_string()),
                            arguments: document_to_json(t.input()).to_string(),
                        },
                    }),
                    _ => {}
                }
            }
        }
        Ok(ChatCompletionResponse {
            id: new_id(),
            object: "chat.completion".into(),
            created: unix_seconds_now(),
            model: self.model_id.clone(),
            choices: vec![ChatChoice {
                index: 0,
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                    tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                    extra: Map::new(),
                },
                finish_reason: Some(finish_reason(out.stop_reason()).into()),
                logprobs: None,
            }],
            usage: out.usage().map(usage),
            system_fingerprint: None,
            extra: Map::new(),
        })
    }

    async fn converse_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let input = self.converse_input(req)?;
        let out = self
            .client()
            .await
            .converse_stream()
            .model_id(&self.model_id)
            .set_messages(Some(input.messages))
            .set_system(input.system)
            .inference_config(input.inference)
            .set_tool_config(input.tools)
            .set_additional_model_request_fields(input.additional)
            .send()
            .await
            .map_err(call_error)?;
        let state = StreamState {
            output: out,
            id: new_id(),
            model: self.model_id.clone(),
            created: unix_seconds_now(),
            include_usage,
            tool_index: HashMap::new(),
            finish: None,
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut s| async move {
            loop {
                if s.done {
                    return None;
                }
                match s.output.stream.recv().await {
                    Ok(Some(event)) => {
                        if let Some(chunk) = s.translate(event) {
                            return Some((Ok(chunk), s));
                        }
                    }
                    // The event stream ended: complete only after a messageStop.
                    Ok(None) => {
                        s.done = true;
                        if s.finish.is_none() {
                            return Some((
                                Err(GatewayError::Connection {
                                    provider: PROVIDER.into(),
                                    message: "stream ended before completion".into(),
                                }),
                                s,
                            ));
                        }
                        return None;
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(stream_error(e)), s));
                    }
                }
            }
        });
        Ok(stream.boxed())
    }
}

/// The pieces of a Converse / ConverseStream call.
struct ConverseInput {
    messages: Vec<Message>,
    system: Option<Vec<SystemContentBlock>>,
    inference: InferenceConfiguration,
    tools: Option<ToolConfiguration>,
    additional: Option<Document>,
}

fn build_err(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("building a Bedrock request: {e}"))
}

impl ConverseInput {
    /// From the Messages-API-shaped body the Anthropic translation produces.
    fn from_anthropic_body(body: &Map<String, Value>) -> Result<Self, GatewayError> {
        let system = body
            .get("system")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| vec![SystemContentBlock::Text(s.to_string())]);
        let mut messages = Vec::new();
        for (i, m) in body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("assistant") => ConversationRole::Assistant,
                _ => ConversationRole::User,
            };
            let content = match m.get("content") {
                Some(Value::String(s)) => vec![ContentBlock::Text(s.clone())],
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .map(|b| content_block(b, i))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => Vec::new(),
            };
            messages.push(
                Message::builder()
                    .role(role)
                    .set_content(Some(content))
                    .build()
                    .map_err(build_err)?,
            );
        }
        let num = |k: &str| body.get(k).and_then(Value::as_f64);
        let stops: Option<Vec<String>> = body.get("stop_sequences").and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
        });
        let inference = InferenceConfiguration::builder()
            .set_max_tokens(
                body.get("max_tokens")
                    .and_then(Value::as_u64)
                    .map(|m| m.min(i32::MAX as u64) as i32),
            )
            .set_temperature(num("temperature").map(|t| t as f32))
            .set_top_p(num("top_p").map(|p| p as f32))
            .set_stop_sequences(stops)
            .build();
        let tools = tool_config(body)?;
        let extra: HashMap<String, Document> = body
            .iter()
            .filter(|(k, _)| !MAPPED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), json_to_document(v)))
            .collect();
        Ok(ConverseInput {
            messages,
            system,
            inference,
            tools,
            additional: (!extra.is_empty()).then_some(Document::Object(extra)),
        })
    }
}

fn invalid_block(i: usize, what: &str) -> GatewayError {
    GatewayError::invalid_param(format!("bedrock: {what}"), format!("messages[{i}].content"))
}

/// One Messages-API content block as a Converse content block.
fn content_block(b: &Value, i: usize) -> Result<ContentBlock, GatewayError> {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => Ok(ContentBlock::Text(
            b.get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        "image" | "document" => {
            let source = b.get("source").cloned().unwrap_or(Value::Null);
            if source.get("type").and_then(Value::as_str) != Some("base64") {
                return Err(invalid_block(
                    i,
                    "images must be inline data: URLs (Converse cannot fetch image URLs)",
                ));
            }
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let data = base64::engine::general_purpose::STANDARD
                .decode(source.get("data").and_then(Value::as_str).unwrap_or(""))
                .map_err(|_| invalid_block(i, "image data is not valid base64"))?;
            if kind == "document" {
                let doc = DocumentBlock::builder()
                    .format(DocumentFormat::Pdf)
                    .name(format!("document-{i}"))
                    .source(DocumentSource::Bytes(Blob::new(data)))
                    .build()
                    .map_err(build_err)?;
                return Ok(ContentBlock::Document(doc));
            }
            let format = match media {
                "image/png" => ImageFormat::Png,
                "image/jpeg" | "image/jpg" => ImageFormat::Jpeg,
                "image/gif" => ImageFormat::Gif,
                "image/webp" => ImageFormat::Webp,
                other => {
                    return Err(invalid_block(
                        i,
                        &format!("unsupported image type '{other}' (png, jpeg, gif, webp)"),
                    ));
                }
            };
            let image = ImageBlock::builder()
                .format(format)
                .source(ImageSource::Bytes(Blob::new(data)))
                .build()
                .map_err(build_err)?;
            Ok(ContentBlock::Image(image))
        }
        "tool_use" => {
            let tool = ToolUseBlock::builder()
                .tool_use_id(b.get("id").and_then(Value::as_str).unwrap_or(""))
                .name(b.get("name").and_then(Value::as_str).unwrap_or(""))
                .input(json_to_document(b.get("input").unwrap_or(&Value::Null)))
                .build()
                .map_err(build_err)?;
            Ok(ContentBlock::ToolUse(tool))
        }
        "tool_result" => {
            let text = match b.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            let result = ToolResultBlock::builder()
                .tool_use_id(b.get("tool_use_id").and_then(Value::as_str).unwrap_or(""))
                .content(ToolResultContentBlock::Text(text))
                .build()
                .map_err(build_err)?;
            Ok(ContentBlock::ToolResult(result))
        }
        other => Err(invalid_block(
            i,
            &format!("content of type '{other}' is not supported"),
        )),
    }
}

/// `tools` + `tool_choice` as Converse's tool configuration; `tool_choice: none` sends no tools
/// (Converse has no "none").
fn tool_config(body: &Map<String, Value>) -> Result<Option<ToolConfiguration>, GatewayError> {
    let Some(tools) = body
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let choice = body.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    if choice_type == Some("none") {
        return Ok(None);
    }
    let mut config = ToolConfiguration::builder();
    for t in tools {
        let mut spec = ToolSpecification::builder()
            .name(t.get("name").and_then(Value::as_str).unwrap_or(""))
            .input_schema(ToolInputSchema::Json(json_to_document(
                t.get("input_schema").unwrap_or(&Value::Null),
            )));
        if let Some(d) = t.get("description").and_then(Value::as_str) {
            spec = spec.description(d);
        }
        config = config.tools(Tool::ToolSpec(spec.build().map_err(build_err)?));
    }
    config = match choice_type {
        Some("any") => config.tool_choice(ToolChoice::Any(AnyToolChoice::builder().build())),
        Some("tool") => {
            let name = choice
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            config.tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(name)
                    .build()
                    .map_err(build_err)?,
            ))
        }
        _ => config.tool_choice(ToolChoice::Auto(AutoToolChoice::builder().build())),
    };
    config.build().map(Some).map_err(build_err)
}

/// JSON as a Smithy document (tool schemas and inputs, model-native parameters).
pub(super) fn json_to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(json_to_document).collect()),
        Value::Object(o) => Document::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_document(v)))
                .collect(),
        ),
    }
}

/// A Smithy document as JSON.
pub(super) fn document_to_json(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(document_to_json).collect()),
        Document::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), document_to_json(v)))
                .collect(),
        ),
    }
}

fn finish_reason(r: &StopReason) -> &'static str {
    match r {
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFiltered | StopReason::GuardrailIntervened => "content_filter",
        _ => "stop",
    }
}

fn usage(u: &TokenUsage) -> Usage {
    let prompt = u.input_tokens().max(0) as u64;
    let completion = u.output_tokens().max(0) as u64;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: (u.total_tokens().max(0) as u64).max(prompt + completion),
    }
}

fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

/// The embedding model families InvokeModel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmbedFamily {
    Titan,
    Cohere,
}

impl EmbedFamily {
    /// By model id (a cross-region prefix such as `us.` allowed).
    fn of(model_id: &str) -> Option<EmbedFamily> {
        let id = model_id.to_ascii_lowercase();
        let id = id
            .split_once('.')
            .filter(|(prefix, _)| prefix.len() <= 4)
            .map_or(id.as_str(), |(_, rest)| rest);
        if id.starts_with("amazon.titan-embed") {
            Some(EmbedFamily::Titan)
        } else if id.starts_with("cohere.embed") {
            Some(EmbedFamily::Cohere)
        } else {
            None
        }
    }
}

/// The texts of an embeddings request's `input` (a string or a list of strings).
fn embedding_texts(input: &Value) -> Result<Vec<String>, GatewayError> {
    let bad = || {
        GatewayError::invalid_param(
            "bedrock embeds text: 'input' must be a string or a list of strings",
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

fn bad_embedding(message: &str) -> GatewayError {
    GatewayError::BadUpstreamResponse {
        provider: PROVIDER.into(),
        message: message.to_string(),
    }
}

/// A failed Converse/ConverseStream call as a gateway error, classified by status and the
/// exception name (`ThrottlingException`, `ValidationException` "Input is too long"...).
fn call_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: SdkError<E, HttpResponse>,
) -> GatewayError {
    match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let message = ctx.err().message().unwrap_or("bedrock error").to_string();
            let codes: Vec<String> = ctx.err().code().map(str::to_string).into_iter().collect();
            // Bedrock reports an over-long prompt as `ValidationException: Input is too long`.
            let kind =
                if status == 400 && message.to_ascii_lowercase().contains("input is too long") {
                    crate::error::UpstreamErrorKind::ContextWindowExceeded
                } else {
                    classify(status, &codes, &message)
                };
            GatewayError::Upstream {
                provider: PROVIDER.into(),
                status,
                kind,
                message,
                retry_after: None,
            }
        }
        SdkError::TimeoutError(_) => GatewayError::Timeout {
            provider: PROVIDER.into(),
            after: std::time::Duration::ZERO,
        },
        SdkError::DispatchFailure(f) => GatewayError::Connection {
            provider: PROVIDER.into(),
            message: format!("{f:?}"),
        },
        SdkError::ResponseError(_) => GatewayError::BadUpstreamResponse {
            provider: PROVIDER.into(),
            message: "unreadable response".into(),
        },
        _ => GatewayError::Internal(format!("bedrock request failed: {e}")),
    }
}

/// An error from the event stream after the call was accepted (a modeled exception event
/// such as `internalServerException`, or a broken connection).
fn stream_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> GatewayError {
    let message = match &e {
        SdkError::ServiceError(ctx) => ctx
            .err()
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", ctx.err())),
        other => other.to_string(),
    };
    GatewayError::Connection {
        provider: PROVIDER.into(),
        message: format!("stream failed: {message}"),
    }
}

struct StreamState {
    /// The call's output; its `stream` field receives the events.
    output: aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamOutput,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Converse content block index -> OpenAI tool call index.
    tool_index: HashMap<i32, u32>,
    finish: Option<&'static str>,
    done: bool,
}

impl StreamState {
    fn chunk(&self, delta: Delta, finish: Option<&'static str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_string),
                logprobs: None,
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// One Converse stream event as an OpenAI chunk (`None`: nothing to send).
    fn translate(&mut self, event: ConverseStreamOutput) -> Option<ChatCompletionChunk> {
        match event {
            ConverseStreamOutput::MessageStart(_) => Some(self.chunk(
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            )),
            ConverseStreamOutput::ContentBlockStart(e) => match e.start() {
                Some(ContentBlockStart::ToolUse(t)) => {
                    let index = self.tool_index.len() as u32;
                    self.tool_index.insert(e.content_block_index(), index);
                    Some(self.chunk(
                        Delta {
                            tool_calls: Some(vec![ToolCall {
                                index: Some(index),
                                id: Some(t.tool_use_id().to_string()),
                                kind: Some("function".into()),
                                function: FunctionCall {
                                    name: Some(t.name().to_string()),
                                    arguments: String::new(),
                                },
                            }]),
                            ..Delta::default()
                        },
                        None,
                    ))
                }
                _ => None,
            },
            ConverseStreamOutput::ContentBlockDelta(e) => match e.delta() {
                Some(ContentBlockDelta::Text(t)) => Some(self.chunk(
                    Delta {
                        content: Some(t.clone()),
                        ..Delta::default()
                    },
                    None,
                )),
                Some(ContentBlockDelta::ToolUse(t)) => {
                    let index = *self.tool_index.get(&e.content_block_index())?;
                    Some(self.chunk(
                        Delta {
                            tool_calls: Some(vec![ToolCall {
                                index: Some(index),
                                id: None,
                                kind: None,
                                function: FunctionCall {
                                    name: None,
                                    arguments: t.input().to_string(),
                                },
                            }]),
                            ..Delta::default()
                        },
                        None,
                    ))
                }
                _ => None,
            },
            ConverseStreamOutput::MessageStop(e) => {
                let finish = finish_reason(e.stop_reason());
                self.finish = Some(finish);
                Some(self.chunk(Delta::default(), Some(finish)))
            }
            ConverseStreamOutput::Metadata(e) => {
                let u = e.usage().filter(|_| self.include_usage)?;
                let mut chunk = self.chunk(Delta::default(), None);
                chunk.choices.clear();
                chunk.usage = Some(usage(u));
                Some(chunk)
            }
            _ => None,
        }
    }
}

#[async_trait]
impl InferenceProvider for BedrockProvider {
    async fn chat(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<Answer, GatewayError> {
        ctx.refuse_extra_headers()?;
        let resp = self.converse(req).await?;
        Answer::json(&resp, resp.usage)
    }

    async fn chat_stream(
        &self,
        ctx: &CallContext<'_>,
        req: &ChatCompletionRequest,
    ) -> Result<ChunkStream, GatewayError> {
        ctx.refuse_extra_headers()?;
        self.converse_stream(req).await
    }

    /// Embeddings with InvokeModel: Amazon Titan text embeddings (`amazon.titan-embed-*`, one
    /// call per input, `dimensions` passed on) and Cohere Embed (`cohere.embed-*`, one call
    /// for all inputs, `input_type` from the request, default `search_document`).
    async fn embeddings(
        &self,
        ctx: &CallContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<Answer, GatewayError> {
        ctx.refuse_extra_headers()?;
        let inputs = embedding_texts(&req.input)?;
        let family = EmbedFamily::of(&self.model_id).ok_or_else(|| {
            GatewayError::NotSupported(format!(
                "bedrock model '{}' is not an embedding model RouteIQ calls (amazon.titan-embed-*, \
                 cohere.embed-*)",
                self.model_id
            ))
        })?;
        let mut vectors: Vec<Value> = Vec::with_capacity(inputs.len());
        let mut counted: Option<u64> = None;
        match family {
            EmbedFamily::Titan => {
                for text in &inputs {
                    let mut body = serde_json::json!({"inputText": text});
                    if let Some(d) = req.dimensions {
                        body["dimensions"] = d.into();
                    }
                    let out = self.invoke(&body).await?;
                    vectors.push(
                        out.get("embedding")
                            .cloned()
                            .ok_or_else(|| bad_embedding("no 'embedding' in the answer"))?,
                    );
                    if let Some(n) = out.get("inputTextTokenCount").and_then(Value::as_u64) {
                        *counted.get_or_insert(0) += n;
                    }
                }
            }
            EmbedFamily::Cohere => {
                let input_type = req
                    .extra
                    .get("input_type")
                    .and_then(Value::as_str)
                    .unwrap_or("search_document");
                let body = serde_json::json!({"texts": inputs, "input_type": input_type});
                let out = self.invoke(&body).await?;
                // v3 answers a list of vectors; v4 (with embedding_types) `{"float": [...]}`.
                let list = match out.get("embeddings") {
                    Some(Value::Array(list)) => list.clone(),
                    Some(Value::Object(by_type)) => by_type
                        .get("float")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                vectors = list;
            }
        }
        if vectors.len() != inputs.len() {
            return Err(bad_embedding(&format!(
                "{} embeddings for {} inputs",
                vectors.len(),
                inputs.len()
            )));
        }
        let prompt_tokens = counted.unwrap_or_else(|| {
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
            .map(|(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        Answer::json(
            &serde_json::json!({"object": "list", "data": data, "model": self.model_id, "usage": usage}),
            Some(usage),
        )
    }

    /// The endpoint override, if any (`None`: the SDK's regional endpoint).
    fn endpoint(&self) -> Option<&http::Uri> {
        self.endpoint.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_round_trip() {
        let v = json!({"a": [1, -2, 2.5, "x", true, null], "b": {"c": {}}});
        assert_eq!(document_to_json(&json_to_document(&v)), v);
    }

    #[test]
    fn anthropic_body_becomes_converse_input() {
        let body = json!({
            "model": "m",
            "system": "be brief",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}
                ]}
            ],
            "max_tokens": 100,
            "temperature": 0.5,
            "stop_sequences": ["END"],
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "top_k": 5
        });
        let input = ConverseInput::from_anthropic_body(body.as_object().unwrap()).unwrap();
        assert_eq!(input.messages.len(), 3);
        assert_eq!(input.messages[1].role(), &ConversationRole::Assistant);
        match &input.messages[1].content()[0] {
            ContentBlock::ToolUse(t) => {
                assert_eq!(t.name(), "get_weather");
                assert_eq!(document_to_json(t.input()), json!({"city": "Oslo"}));
            }
            other => panic!("{other:?}"),
        }
        match &input.messages[2].content()[0] {
            ContentBlock::ToolResult(r) => assert_eq!(r.tool_use_id(), "t1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(input.inference.max_tokens(), Some(100));
        assert_eq!(input.inference.stop_sequences(), ["END".to_string()]);
        let tools = input.tools.unwrap();
        assert!(
            matches!(tools.tool_choice(), Some(ToolChoice::Tool(t)) if t.name() == "get_weather")
        );
        assert_eq!(
            input.additional.map(|d| document_to_json(&d)),
            Some(json!({"top_k": 5}))
        );
        assert!(
            matches!(&input.system.unwrap()[0], SystemContentBlock::Text(s) if s == "be brief")
        );
    }

    #[test]
    fn url_images_are_refused_and_data_images_decoded() {
        let url = json!({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}});
        assert!(matches!(
            content_block(&url, 0),
            Err(GatewayError::InvalidRequest { .. })
        ));
        let data = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}});
        assert!(matches!(
            content_block(&data, 0),
            Ok(ContentBlock::Image(_))
        ));
    }

    #[test]
    fn tool_choice_none_sends_no_tools() {
        let body =
            json!({"tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "none"}});
        assert!(tool_config(body.as_object().unwrap()).unwrap().is_none());
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason(&StopReason::EndTurn), "stop");
        assert_eq!(finish_reason(&StopReason::MaxTokens), "length");
        assert_eq!(finish_reason(&StopReason::ToolUse), "tool_calls");
        assert_eq!(
            finish_reason(&StopReason::GuardrailIntervened),
            "content_filter"
        );
    }
}
