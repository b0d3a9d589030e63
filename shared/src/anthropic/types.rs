//! Anthropic Messages API wire types (`POST /v1/messages`, `/v1/messages/count_tokens`).
//!
//! - Requests, content blocks, tools, the response `Message` and stream events.
//! - Objects keep the fields they do not model in `extra` (serde `flatten`), and block, tool,
//!   source and event types fall back to raw JSON (`Other`) for types added after this was
//!   written (server tools, `search_result`, `container_upload`...), so a request parsed here and
//!   serialized again reaches an Anthropic deployment with nothing lost.
//! - Required-by-Anthropic strings that translation checks (`tool_use.id`, `tool_result.tool_use_id`)
//!   default to empty on parse, so a missing one is reported with its path by
//!   [`to_openai`](super::to_openai::to_openai) rather than silently becoming `Other`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ErrorDetail;

/// `POST /v1/messages` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Required by Anthropic; optional here so a request without it can still be routed to
    /// upstreams that do not need it (Anthropic deployments answer the 400 themselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Everything else: `service_tier`, `container`, `mcp_servers`, `context_management`,
    /// `output_config`, `output_format`, `inference_geo`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessagesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// `POST /v1/messages/count_tokens` body: a Messages request without the generation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CountTokensRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl From<&MessagesRequest> for CountTokensRequest {
    fn from(req: &MessagesRequest) -> Self {
        CountTokensRequest {
            model: req.model.clone(),
            messages: req.messages.clone(),
            system: req.system.clone(),
            tools: req.tools.clone(),
            tool_choice: req.tool_choice.clone(),
            thinking: req.thinking.clone(),
            extra: Map::new(),
        }
    }
}

/// `count_tokens` answer: `{"input_tokens": n}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CountTokensResponse {
    pub input_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `metadata`: only `user_id` is documented.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system`: a string or an array of text blocks (which may carry `cache_control`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SystemPrompt {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
}

/// One entry of `messages`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputMessage {
    pub role: MessageRole,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content: a string or an array of content blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// A content block, in requests (`messages[].content`, `system`, `tool_result.content`) and
/// responses (`content`, `content_block_start`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text(TextBlock),
    Image(ImageBlock),
    Document(DocumentBlock),
    ToolUse(ToolUseBlock),
    ToolResult(ToolResultBlock),
    Thinking(ThinkingBlock),
    RedactedThinking(RedactedThinkingBlock),
    /// Any other block (`server_tool_use`, `web_search_tool_result`, `search_result`,
    /// `container_upload`...), or a known type that does not parse, kept as sent.
    #[serde(untagged)]
    Other(Value),
}

impl ContentBlock {
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text(TextBlock {
            text: text.into(),
            cache_control: None,
            citations: None,
            extra: Map::new(),
        })
    }

    /// The block's `type` as sent (`"other"` when an unknown block has none).
    pub fn kind(&self) -> &str {
        match self {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Document(_) => "document",
            ContentBlock::ToolUse(_) => "tool_use",
            ContentBlock::ToolResult(_) => "tool_result",
            ContentBlock::Thinking(_) => "thinking",
            ContentBlock::RedactedThinking(_) => "redacted_thinking",
            ContentBlock::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("other"),
        }
    }

    /// The block's `cache_control`, for the block types that carry one.
    pub fn cache_control(&self) -> Option<&CacheControl> {
        match self {
            ContentBlock::Text(b) => b.cache_control.as_ref(),
            ContentBlock::Image(b) => b.cache_control.as_ref(),
            ContentBlock::Document(b) => b.cache_control.as_ref(),
            ContentBlock::ToolUse(b) => b.cache_control.as_ref(),
            ContentBlock::ToolResult(b) => b.cache_control.as_ref(),
            ContentBlock::Thinking(_)
            | ContentBlock::RedactedThinking(_)
            | ContentBlock::Other(_) => None,
        }
    }
}

/// `cache_control`: `{"type": "ephemeral", "ttl"?: "5m" | "1h"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheControl {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextBlock {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageBlock {
    pub source: MediaSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `document` block: a PDF (base64 or URL), plain text, inline content blocks or a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentBlock {
    pub source: MediaSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `source` of an image or document block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaSource {
    /// `{"type":"base64","media_type":"image/png","data":"..."}` (images, PDFs).
    Base64 { media_type: String, data: String },
    /// `{"type":"url","url":"https://..."}` (images, PDFs).
    Url { url: String },
    /// `{"type":"text","media_type":"text/plain","data":"..."}` (documents).
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        data: String,
    },
    /// `{"type":"content","content": string | [blocks]}` (documents).
    Content { content: Content },
    /// `{"type":"file","file_id":"file_..."}` (Files API).
    File { file_id: String },
    #[serde(untagged)]
    Other(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolUseBlock {
    /// Required by Anthropic; empty when missing (translation reports it).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolResultBlock {
    /// Required by Anthropic; empty when missing (translation reports it).
    #[serde(default)]
    pub tool_use_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThinkingBlock {
    #[serde(default)]
    pub thinking: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RedactedThinkingBlock {
    #[serde(default)]
    pub data: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entry of `tools`: a custom (client) tool with an `input_schema`, or any other tool type
/// (server tools such as `web_search_20250305`, Anthropic-defined client tools such as
/// `bash_20250124`, `mcp_toolset`...) kept as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "Value", untagged)]
pub enum ToolDefinition {
    Custom(CustomTool),
    Other(Value),
}

impl TryFrom<Value> for ToolDefinition {
    type Error = serde_json::Error;

    /// A tool without `type` (or with `"custom"`) is custom and must parse as one; any other
    /// `type` is kept as raw JSON.
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        match v.get("type") {
            None | Some(Value::Null) => serde_json::from_value(v).map(ToolDefinition::Custom),
            Some(Value::String(t)) if t == "custom" => {
                serde_json::from_value(v).map(ToolDefinition::Custom)
            }
            Some(_) => Ok(ToolDefinition::Other(v)),
        }
    }
}

impl ToolDefinition {
    /// The tool's `name` (server tools have one too).
    pub fn name(&self) -> Option<&str> {
        match self {
            ToolDefinition::Custom(t) => Some(&t.name),
            ToolDefinition::Other(v) => v.get("name").and_then(Value::as_str),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomTool {
    /// Absent or `"custom"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `strict`, `defer_loading`, `input_examples`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None {},
}

impl ToolChoice {
    pub fn disable_parallel_tool_use(&self) -> bool {
        match self {
            ToolChoice::Auto {
                disable_parallel_tool_use,
            }
            | ToolChoice::Any {
                disable_parallel_tool_use,
            }
            | ToolChoice::Tool {
                disable_parallel_tool_use,
                ..
            } => disable_parallel_tool_use.unwrap_or(false),
            ToolChoice::None {} => false,
        }
    }
}

/// `thinking`: `{"type":"enabled","budget_tokens":n}`, `{"type":"disabled"}`,
/// `{"type":"adaptive"}`, or a later type kept as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingConfig {
    Enabled(ThinkingEnabled),
    Disabled(ThinkingOptions),
    Adaptive(ThinkingOptions),
    #[serde(untagged)]
    Other(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThinkingEnabled {
    pub budget_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The fields of a `disabled`/`adaptive` thinking config (`display`...), kept as sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ThinkingOptions {
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why the model stopped. Unknown values are kept as strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    PauseTurn,
    Refusal,
    ModelContextWindowExceeded,
    #[serde(untagged)]
    Other(String),
}

/// The response of a non-streaming Messages call (and `message_start`'s `message`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// Always `"assistant"`.
    #[serde(default = "assistant_role")]
    pub role: String,
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// Required on the wire; defaulted on parse so a terse Anthropic-compatible upstream's
    /// answer still parses.
    #[serde(default)]
    pub model: String,
    /// `null` in `message_start`.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: MessageUsage,
    /// `container`, `context_management`, `stop_details`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn message_type() -> String {
    "message".into()
}

fn assistant_role() -> String {
    "assistant".into()
}

impl Message {
    /// An assistant message with no content yet (as `message_start` carries it).
    pub fn empty(id: impl Into<String>, model: impl Into<String>, usage: MessageUsage) -> Self {
        Message {
            id: id.into(),
            kind: message_type(),
            role: assistant_role(),
            content: Vec::new(),
            model: model.into(),
            stop_reason: None,
            stop_sequence: None,
            usage,
            extra: Map::new(),
        }
    }
}

/// `usage` of a Message. `input_tokens` excludes the cached prompt tokens, which are reported
/// apart (`cache_creation_input_tokens` written, `cache_read_input_tokens` read).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MessageUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `cache_creation` (by TTL), `server_tool_use`, `service_tier`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageUsage {
    /// Every prompt token: uncached input plus cache writes and reads.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }
}

/// One server-sent event of a streaming Messages call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: Message,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: DeltaUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail,
    },
    /// An event type added later, kept as sent.
    #[serde(untagged)]
    Other(Value),
}

impl StreamEvent {
    /// The SSE `event:` name (the JSON `type`).
    pub fn event_type(&self) -> &str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
            StreamEvent::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

/// The `delta` of a `content_block_delta`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    CitationsDelta {
        citation: Value,
    },
    #[serde(untagged)]
    Other(Value),
}

/// The `delta` of a `message_delta`: `stop_reason` and `stop_sequence` (both serialized, as
/// `null` when unset, as Anthropic does).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `usage` of a `message_delta`: cumulative counts. `output_tokens` is always present; the
/// input counts are sent when known (Anthropic sends them too since 2025).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DeltaUsage {
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_unknown_fields_blocks_and_tools() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                    {"type": "search_result", "source": "s", "title": "t", "content": []},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "/a"}, "caller": {"type": "direct"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}], "is_error": false}
                ]}
            ],
            "tools": [
                {"name": "Read", "description": "read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}, "defer_loading": true},
                {"type": "custom", "name": "Write", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 4000},
            "metadata": {"user_id": "u1", "session": "s"},
            "service_tier": "auto",
            "context_management": {"edits": []}
        });
        let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(req.extra["service_tier"], "auto");
        let tools = req.tools.as_ref().unwrap();
        assert!(matches!(&tools[0], ToolDefinition::Custom(t) if t.extra["defer_loading"] == true));
        assert!(matches!(&tools[1], ToolDefinition::Custom(t) if t.name == "Write"));
        assert!(matches!(&tools[2], ToolDefinition::Other(_)));
        let Content::Blocks(user) = &req.messages[0].content else {
            panic!("blocks expected")
        };
        assert!(matches!(&user[1], ContentBlock::Other(v) if v["type"] == "search_result"));
        assert_eq!(user[1].kind(), "search_result");
        let Content::Blocks(assistant) = &req.messages[1].content else {
            panic!("blocks expected")
        };
        assert!(
            matches!(&assistant[3], ContentBlock::ToolUse(t) if t.extra["caller"]["type"] == "direct")
        );
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn missing_tool_use_id_still_parses_as_tool_use() {
        let block: ContentBlock =
            serde_json::from_value(json!({"type": "tool_use", "name": "x", "input": {}})).unwrap();
        assert!(matches!(block, ContentBlock::ToolUse(t) if t.id.is_empty()));
    }

    #[test]
    fn custom_tool_without_schema_is_an_error() {
        let err = serde_json::from_value::<ToolDefinition>(json!({"name": "x"})).unwrap_err();
        assert!(err.to_string().contains("input_schema"), "{err}");
    }

    #[test]
    fn stream_events_serialize_like_anthropic() {
        let start = StreamEvent::MessageStart {
            message: Message::empty("msg_1", "m", MessageUsage::default()),
        };
        let v = serde_json::to_value(&start).unwrap();
        assert_eq!(v["type"], "message_start");
        assert_eq!(v["message"]["type"], "message");
        assert_eq!(v["message"]["role"], "assistant");
        assert!(v["message"]["stop_reason"].is_null());
        assert!(v["message"]["stop_sequence"].is_null());
        assert_eq!(
            serde_json::to_value(StreamEvent::MessageStop).unwrap(),
            json!({"type": "message_stop"})
        );
        let delta = StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(StopReason::ToolUse),
                ..MessageDeltaBody::default()
            },
            usage: DeltaUsage {
                output_tokens: 5,
                ..DeltaUsage::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&delta).unwrap(),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 5}})
        );
        let parsed: StreamEvent =
            serde_json::from_value(json!({"type": "brand_new", "x": 1})).unwrap();
        assert_eq!(parsed.event_type(), "brand_new");
        let unknown_reason: StopReason = serde_json::from_value(json!("compaction")).unwrap();
        assert_eq!(unknown_reason, StopReason::Other("compaction".into()));
        assert_eq!(serde_json::to_value(&unknown_reason).unwrap(), "compaction");
    }
}
