//! OpenAI Responses API wire types (`POST /v1/responses`, the `Response` object, stream events).
//!
//! - The request ([`ResponsesRequest`]): `input` as a string or [`Item`]s, tools, tool choice,
//!   `text`, `reasoning`; every field not modelled here stays in `extra` (serde `flatten`), so a
//!   request parsed here and serialized again reaches an OpenAI deployment with nothing lost.
//! - [`Item`]: the input and output items (messages, function and custom tool calls and their
//!   outputs, reasoning, item references); any other item type (hosted tool calls, MCP...) or
//!   a known type that does not parse is kept as raw JSON ([`Item::Other`]). A message item may
//!   omit `type` (the "easy input message"); it serializes back as it came.
//! - [`Response`], [`ResponseUsage`], [`ResponseError`], and [`ResponseStreamEvent`] (each with
//!   its `sequence_number`; unknown event types kept as raw JSON).
//! - Required strings that translation checks (`call_id`, `name`) default to empty on parse, so
//!   a missing one is reported with its path by [`to_chat`](super::to_chat::to_chat).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `POST /v1/responses` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Everything else: `include`, `prompt_cache_key`, `safety_identifier`, `service_tier`,
    /// `truncation`, `background`, `conversation`, `prompt`, `top_logprobs`,
    /// `max_tool_calls`, `stream_options`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponsesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the answer is to be stored (OpenAI's default: yes).
    pub fn is_store(&self) -> bool {
        self.store.unwrap_or(true)
    }
}

/// `input`: a string (one user message) or a list of items.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Item>),
}

/// The role of a message item. Unknown roles are kept as strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    System,
    Developer,
    #[serde(untagged)]
    Other(String),
}

/// An input or output item.
///
/// (De)serialized by hand: the `type` tag selects the variant (a tag-less object with a `role`
/// is a message), the structs do not carry it, and an item of another type — or of a known
/// type that does not parse — is kept whole in [`Item::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    CustomToolCall(CustomToolCallItem),
    CustomToolCallOutput(CustomToolCallOutputItem),
    Reasoning(ReasoningItem),
    ItemReference(ItemReference),
    /// `web_search_call`, `file_search_call`, `computer_call`, `local_shell_call`, `mcp_call`,
    /// `image_generation_call`...
    Other(Value),
}

impl Item {
    /// The item's `type` (`"message"` for a tag-less message, `"unknown"` for an unknown item
    /// without one).
    pub fn kind(&self) -> &str {
        match self {
            Item::Message(_) => "message",
            Item::FunctionCall(_) => "function_call",
            Item::FunctionCallOutput(_) => "function_call_output",
            Item::CustomToolCall(_) => "custom_tool_call",
            Item::CustomToolCallOutput(_) => "custom_tool_call_output",
            Item::Reasoning(_) => "reasoning",
            Item::ItemReference(_) => "item_reference",
            Item::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The item's `id`, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Item::Message(m) => m.id.as_deref(),
            Item::FunctionCall(c) => c.id.as_deref(),
            Item::FunctionCallOutput(o) => o.id.as_deref(),
            Item::CustomToolCall(c) => c.id.as_deref(),
            Item::CustomToolCallOutput(o) => o.id.as_deref(),
            Item::Reasoning(r) => r.id.as_deref(),
            Item::ItemReference(_) => None,
            Item::Other(v) => v.get("id").and_then(Value::as_str),
        }
    }

    /// A user message holding `text` (what a string `input` stands for).
    pub fn user_text(text: impl Into<String>) -> Self {
        Item::Message(MessageItem {
            kind: Some("message".into()),
            id: None,
            role: MessageRole::User,
            status: None,
            content: Content::Parts(vec![ContentPart::InputText(TextPart::new(text))]),
            extra: Map::new(),
        })
    }

    /// Reads an item from JSON; never fails (unparseable items become [`Item::Other`]).
    pub fn from_value(v: Value) -> Self {
        let parsed = match v.get("type").and_then(Value::as_str) {
            None | Some("message") => serde_json::from_value(v.clone()).ok().map(Item::Message),
            Some("function_call") => untagged(&v).map(Item::FunctionCall),
            Some("function_call_output") => untagged(&v).map(Item::FunctionCallOutput),
            Some("custom_tool_call") => untagged(&v).map(Item::CustomToolCall),
            Some("custom_tool_call_output") => untagged(&v).map(Item::CustomToolCallOutput),
            Some("reasoning") => untagged(&v).map(Item::Reasoning),
            Some("item_reference") => untagged(&v).map(Item::ItemReference),
            Some(_) => None,
        };
        parsed.unwrap_or(Item::Other(v))
    }
}

/// `v` without its `type`, parsed as `T` (`None` when it does not parse).
fn untagged<T: for<'de> Deserialize<'de>>(v: &Value) -> Option<T> {
    let mut obj = v.as_object()?.clone();
    obj.remove("type");
    serde_json::from_value(Value::Object(obj)).ok()
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Item::from_value)
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Tagged<'a> {
            FunctionCall(&'a FunctionCallItem),
            FunctionCallOutput(&'a FunctionCallOutputItem),
            CustomToolCall(&'a CustomToolCallItem),
            CustomToolCallOutput(&'a CustomToolCallOutputItem),
            Reasoning(&'a ReasoningItem),
            ItemReference(&'a ItemReference),
        }
        match self {
            Item::Message(m) => m.serialize(serializer),
            Item::FunctionCall(i) => Tagged::FunctionCall(i).serialize(serializer),
            Item::FunctionCallOutput(i) => Tagged::FunctionCallOutput(i).serialize(serializer),
            Item::CustomToolCall(i) => Tagged::CustomToolCall(i).serialize(serializer),
            Item::CustomToolCallOutput(i) => Tagged::CustomToolCallOutput(i).serialize(serializer),
            Item::Reasoning(i) => Tagged::Reasoning(i).serialize(serializer),
            Item::ItemReference(i) => Tagged::ItemReference(i).serialize(serializer),
            Item::Other(v) => v.serialize(serializer),
        }
    }
}

/// A message: input (user/system/developer/assistant history) or output (assistant).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageItem {
    /// `"message"`, or `None` for an easy input message sent without `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub role: MessageRole,
    /// `in_progress`, `completed` or `incomplete` (output messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message (or tool output) content: a string or content parts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Default for Content {
    fn default() -> Self {
        Content::Text(String::new())
    }
}

impl Content {
    /// The text of the content: the string, or the text parts (`input_text`, `output_text`,
    /// `refusal`) joined by newlines.
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(ContentPart::text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A content part of a message or a tool output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText(TextPart),
    OutputText(OutputTextPart),
    InputImage(ImagePart),
    InputFile(FilePart),
    Refusal(RefusalPart),
    /// `input_audio`, `summary_text`... or a known type that does not parse, kept as sent.
    #[serde(untagged)]
    Other(Value),
}

impl ContentPart {
    /// The part's `type` as sent.
    pub fn kind(&self) -> &str {
        match self {
            ContentPart::InputText(_) => "input_text",
            ContentPart::OutputText(_) => "output_text",
            ContentPart::InputImage(_) => "input_image",
            ContentPart::InputFile(_) => "input_file",
            ContentPart::Refusal(_) => "refusal",
            ContentPart::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The text of a text, output text or refusal part.
    pub fn text(&self) -> Option<&str> {
        match self {
            ContentPart::InputText(p) => Some(&p.text),
            ContentPart::OutputText(p) => Some(&p.text),
            ContentPart::Refusal(p) => Some(&p.refusal),
            ContentPart::InputImage(_) | ContentPart::InputFile(_) | ContentPart::Other(_) => None,
        }
    }
}

/// `input_text`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextPart {
    pub text: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TextPart {
    pub fn new(text: impl Into<String>) -> Self {
        TextPart {
            text: text.into(),
            extra: Map::new(),
        }
    }
}

/// `output_text`. OpenAI always sends `annotations` (and `logprobs` when asked); history sent
/// back by clients often has neither.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputTextPart {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OutputTextPart {
    /// An answer's text part: `annotations: []`.
    pub fn new(text: impl Into<String>) -> Self {
        OutputTextPart {
            text: text.into(),
            annotations: Some(Vec::new()),
            logprobs: None,
            extra: Map::new(),
        }
    }
}

/// `input_image`: by URL (`https:` or `data:`) or by Files API `file_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImagePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_file`: inline (`file_data`, a `data:` URL), by `file_id`, or by `file_url`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `refusal`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefusalPart {
    pub refusal: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `function_call`: the model calling a function tool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCallItem {
    /// `fc_...` on output items; optional in input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Required; empty when missing (translation reports it).
    #[serde(default)]
    pub call_id: String,
    #[serde(default)]
    pub name: String,
    /// A JSON string.
    #[serde(default)]
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `function_call_output`: the client's result of a function call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Required; empty when missing (translation reports it).
    #[serde(default)]
    pub call_id: String,
    /// A string, or `input_text`/`input_image`/`input_file` parts.
    #[serde(default)]
    pub output: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `custom_tool_call`: the model calling a custom (freeform) tool with a raw string input
/// (Codex's `apply_patch`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomToolCallItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub call_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `custom_tool_call_output`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomToolCallOutputItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub call_id: String,
    #[serde(default)]
    pub output: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `reasoning`: a summary of the model's reasoning (`summary_text` parts), its text
/// (`reasoning_text` parts) and/or OpenAI's `encrypted_content`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReasoningItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<ReasoningPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ReasoningPart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `summary_text` or `reasoning_text` part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReasoningPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ReasoningPart {
    pub fn summary_text(text: impl Into<String>) -> Self {
        ReasoningPart {
            kind: "summary_text".into(),
            text: text.into(),
            extra: Map::new(),
        }
    }
}

/// `item_reference`: an item of an earlier turn, by id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemReference {
    #[serde(default)]
    pub id: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entry of `tools`: a function tool (flattened: `{type, name, description, parameters,
/// strict}`), a custom (freeform) tool, or anything else (`web_search`, `file_search`,
/// `computer_use_preview`, `code_interpreter`, `image_generation`, `mcp`, `local_shell`...)
/// kept as raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolDefinition {
    Function(FunctionTool),
    Custom(CustomTool),
    Other(Value),
}

impl ToolDefinition {
    /// The tool's `type` as sent.
    pub fn kind(&self) -> &str {
        match self {
            ToolDefinition::Function(_) => "function",
            ToolDefinition::Custom(_) => "custom",
            ToolDefinition::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The tool's `name` (hosted tools mostly have none).
    pub fn name(&self) -> Option<&str> {
        match self {
            ToolDefinition::Function(t) => Some(&t.name),
            ToolDefinition::Custom(t) => Some(&t.name),
            ToolDefinition::Other(v) => v.get("name").and_then(Value::as_str),
        }
    }
}

impl<'de> Deserialize<'de> for ToolDefinition {
    /// `function` and `custom` tools must parse as such (a tool without a `name` is an error);
    /// any other `type` is kept as raw JSON.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(deserializer)?;
        let without_type = || {
            let mut obj = v.as_object().cloned().unwrap_or_default();
            obj.remove("type");
            Value::Object(obj)
        };
        match v.get("type").and_then(Value::as_str) {
            Some("function") => serde_json::from_value(without_type())
                .map(ToolDefinition::Function)
                .map_err(D::Error::custom),
            Some("custom") => serde_json::from_value(without_type())
                .map(ToolDefinition::Custom)
                .map_err(D::Error::custom),
            _ => Ok(ToolDefinition::Other(v)),
        }
    }
}

impl Serialize for ToolDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Tagged<'a> {
            Function(&'a FunctionTool),
            Custom(&'a CustomTool),
        }
        match self {
            ToolDefinition::Function(t) => Tagged::Function(t).serialize(serializer),
            ToolDefinition::Custom(t) => Tagged::Custom(t).serialize(serializer),
            ToolDefinition::Other(v) => v.serialize(serializer),
        }
    }
}

/// A function tool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A custom tool: the model answers a raw string, optionally constrained by a grammar
/// (`format: {type: "grammar", syntax: "lark" | "regex", definition}`) or free
/// (`format: {type: "text"}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomTool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`: `"none"`/`"auto"`/`"required"`, a named tool (`{type: "function" |
/// "custom" | "mcp", name}`), `allowed_tools`, or a hosted tool type (`{type:
/// "web_search_preview"}`...) kept as raw JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(String),
    Named(NamedToolChoice),
    AllowedTools(AllowedToolsChoice),
    Other(Value),
}

impl Default for ToolChoice {
    fn default() -> Self {
        ToolChoice::Mode("auto".into())
    }
}

/// `{type, name}`: this tool must be called.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{type: "allowed_tools", mode: "auto" | "required", tools: [{type, name}...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AllowedToolsChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub mode: String,
    pub tools: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `reasoning`: `{effort: none | minimal | low | medium | high | xhigh, summary: auto |
/// concise | detailed}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReasoningConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text`: the output `format` and `verbosity`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text.format`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema(JsonSchemaFormat),
    #[serde(untagged)]
    Other(Value),
}

/// `text.format` of type `json_schema` (flattened, unlike chat's `response_format`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonSchemaFormat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A response's `status`. Unknown values are kept as strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Completed,
    Failed,
    InProgress,
    Cancelled,
    Queued,
    Incomplete,
    #[serde(untagged)]
    Other(String),
}

/// The response object (`POST /v1/responses`, `GET /v1/responses/{id}`, and the `response`
/// of `response.*` stream events). The nullable fields are serialized as `null`, as OpenAI
/// does; `tools`, `tool_choice` and `parallel_tool_calls` are always present (the OpenAI SDKs
/// require them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub id: String,
    /// Always `"response"`.
    #[serde(default = "response_object")]
    pub object: String,
    #[serde(default)]
    pub created_at: u64,
    pub status: ResponseStatus,
    #[serde(default)]
    pub error: Option<ResponseError>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    /// A string (or, for prompt templates, items).
    #[serde(default)]
    pub instructions: Option<Value>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub output: Vec<Item>,
    #[serde(default = "yes")]
    pub parallel_tool_calls: bool,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default = "yes")]
    pub store: bool,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub tool_choice: ToolChoice,
    #[serde(default)]
    pub tools: Vec<ToolDefinition>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub usage: Option<ResponseUsage>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// `truncation`, `background`, `service_tier`, `top_logprobs`, `prompt_cache_key`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn response_object() -> String {
    "response".into()
}

fn yes() -> bool {
    true
}

impl Response {
    /// The text of the output messages (`output_text` parts), concatenated — what the OpenAI
    /// SDKs call `output_text`.
    pub fn output_text(&self) -> String {
        let mut text = String::new();
        for item in &self.output {
            if let Item::Message(m) = item
                && let Content::Parts(parts) = &m.content
            {
                for p in parts {
                    if let ContentPart::OutputText(t) = p {
                        text.push_str(&t.text);
                    }
                }
            }
        }
        text
    }
}

/// The answer to `DELETE /v1/responses/{id}`: `{id, object: "response.deleted", deleted}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponseDeleted {
    pub id: String,
    pub object: String,
    pub deleted: bool,
}

impl ResponseDeleted {
    pub fn new(id: impl Into<String>) -> Self {
        ResponseDeleted {
            id: id.into(),
            object: "response.deleted".into(),
            deleted: true,
        }
    }
}

/// `error` of a failed response: `{code, message}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponseError {
    /// `server_error`, `rate_limit_exceeded`, `invalid_prompt`...
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `incomplete_details`: `{reason: "max_output_tokens" | "content_filter"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncompleteDetails {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage` of a response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ResponseUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct InputTokensDetails {
    /// Prompt tokens read from the cache (included in `input_tokens`).
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct OutputTokensDetails {
    /// Reasoning tokens (included in `output_tokens`).
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One server-sent event of a streamed response. Every event carries a `sequence_number`
/// (0, 1, 2... within a stream).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ResponseStreamEvent {
    #[serde(rename = "response.created")]
    Created {
        response: Box<Response>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        response: Box<Response>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.completed")]
    Completed {
        response: Box<Response>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.incomplete")]
    Incomplete {
        response: Box<Response>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.failed")]
    Failed {
        response: Box<Response>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        output_index: u32,
        item: Item,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        output_index: u32,
        item: Item,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: ContentPart,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: ContentPart,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        item_id: String,
        output_index: u32,
        content_index: u32,
        delta: String,
        #[serde(default)]
        logprobs: Vec<Value>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        item_id: String,
        output_index: u32,
        content_index: u32,
        text: String,
        #[serde(default)]
        logprobs: Vec<Value>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.output_text.annotation.added")]
    OutputTextAnnotationAdded {
        item_id: String,
        output_index: u32,
        content_index: u32,
        annotation_index: u32,
        annotation: Value,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta {
        item_id: String,
        output_index: u32,
        content_index: u32,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.refusal.done")]
    RefusalDone {
        item_id: String,
        output_index: u32,
        content_index: u32,
        refusal: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        item_id: String,
        output_index: u32,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        item_id: String,
        output_index: u32,
        arguments: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.custom_tool_call_input.delta")]
    CustomToolCallInputDelta {
        item_id: String,
        output_index: u32,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.custom_tool_call_input.done")]
    CustomToolCallInputDone {
        item_id: String,
        output_index: u32,
        input: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_part.added")]
    ReasoningSummaryPartAdded {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        part: ReasoningPart,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_part.done")]
    ReasoningSummaryPartDone {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        part: ReasoningPart,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        delta: String,
        #[serde(default)]
        sequence_number: u64,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        text: String,
        #[serde(default)]
        sequence_number: u64,
    },
    /// A failure during the stream: `{code, message, param}`.
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<String>,
        message: String,
        #[serde(default)]
        param: Option<String>,
        #[serde(default)]
        sequence_number: u64,
    },
    /// An event type not modelled here (`response.queued`, hosted tool progress, audio...),
    /// kept as sent.
    #[serde(untagged)]
    Other(Value),
}

impl ResponseStreamEvent {
    /// The SSE `event:` name (the JSON `type`).
    pub fn event_type(&self) -> &str {
        use ResponseStreamEvent as E;
        match self {
            E::Created { .. } => "response.created",
            E::InProgress { .. } => "response.in_progress",
            E::Completed { .. } => "response.completed",
            E::Incomplete { .. } => "response.incomplete",
            E::Failed { .. } => "response.failed",
            E::OutputItemAdded { .. } => "response.output_item.added",
            E::OutputItemDone { .. } => "response.output_item.done",
            E::ContentPartAdded { .. } => "response.content_part.added",
            E::ContentPartDone { .. } => "response.content_part.done",
            E::OutputTextDelta { .. } => "response.output_text.delta",
            E::OutputTextDone { .. } => "response.output_text.done",
            E::OutputTextAnnotationAdded { .. } => "response.output_text.annotation.added",
            E::RefusalDelta { .. } => "response.refusal.delta",
            E::RefusalDone { .. } => "response.refusal.done",
            E::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            E::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            E::CustomToolCallInputDelta { .. } => "response.custom_tool_call_input.delta",
            E::CustomToolCallInputDone { .. } => "response.custom_tool_call_input.done",
            E::ReasoningSummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            E::ReasoningSummaryPartDone { .. } => "response.reasoning_summary_part.done",
            E::ReasoningSummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            E::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            E::Error { .. } => "error",
            E::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// The event's `sequence_number` (for an unknown event, when it has one).
    pub fn sequence_number(&self) -> Option<u64> {
        use ResponseStreamEvent as E;
        match self {
            E::Created {
                sequence_number, ..
            }
            | E::InProgress {
                sequence_number, ..
            }
            | E::Completed {
                sequence_number, ..
            }
            | E::Incomplete {
                sequence_number, ..
            }
            | E::Failed {
                sequence_number, ..
            }
            | E::OutputItemAdded {
                sequence_number, ..
            }
            | E::OutputItemDone {
                sequence_number, ..
            }
            | E::ContentPartAdded {
                sequence_number, ..
            }
            | E::ContentPartDone {
                sequence_number, ..
            }
            | E::OutputTextDelta {
                sequence_number, ..
            }
            | E::OutputTextDone {
                sequence_number, ..
            }
            | E::OutputTextAnnotationAdded {
                sequence_number, ..
            }
            | E::RefusalDelta {
                sequence_number, ..
            }
            | E::RefusalDone {
                sequence_number, ..
            }
            | E::FunctionCallArgumentsDelta {
                sequence_number, ..
            }
            | E::FunctionCallArgumentsDone {
                sequence_number, ..
            }
            | E::CustomToolCallInputDelta {
                sequence_number, ..
            }
            | E::CustomToolCallInputDone {
                sequence_number, ..
            }
            | E::ReasoningSummaryPartAdded {
                sequence_number, ..
            }
            | E::ReasoningSummaryPartDone {
                sequence_number, ..
            }
            | E::ReasoningSummaryTextDelta {
                sequence_number, ..
            }
            | E::ReasoningSummaryTextDone {
                sequence_number, ..
            }
            | E::Error {
                sequence_number, ..
            } => Some(*sequence_number),
            E::Other(v) => v.get("sequence_number").and_then(Value::as_u64),
        }
    }

    /// The response of a `response.completed`, `response.incomplete` or `response.failed`
    /// event (the end of a stream).
    pub fn terminal_response(&self) -> Option<&Response> {
        match self {
            ResponseStreamEvent::Completed { response, .. }
            | ResponseStreamEvent::Incomplete { response, .. }
            | ResponseStreamEvent::Failed { response, .. } => Some(response),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_items_tools_and_unknown_fields() {
        let body = json!({
            "model": "gpt-5-codex",
            "instructions": "You are Codex.",
            "input": [
                {"role": "user", "content": "easy message without a type"},
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAA"},
                    {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}], "encrypted_content": "gAAA"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_1"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
                {"type": "local_shell_call", "id": "lsh_1", "call_id": "c3", "status": "completed", "action": {"type": "exec", "command": ["ls"]}},
                {"type": "item_reference", "id": "msg_9"}
            ],
            "tools": [
                {"type": "function", "name": "shell", "description": "Runs a command", "strict": false,
                 "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}},
                {"type": "custom", "name": "apply_patch", "description": "Patch files", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
                {"type": "web_search"},
                {"type": "local_shell"}
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": false,
            "stream": true,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "conv-1",
            "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}}
        });
        let req: ResponsesRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
        assert_eq!(req.extra["prompt_cache_key"], "conv-1");
        let Some(Input::Items(items)) = &req.input else {
            panic!("items expected")
        };
        let kinds: Vec<&str> = items.iter().map(Item::kind).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "message",
                "message",
                "reasoning",
                "message",
                "function_call",
                "function_call_output",
                "custom_tool_call",
                "custom_tool_call_output",
                "local_shell_call",
                "item_reference"
            ]
        );
        assert!(
            matches!(&items[0], Item::Message(m) if m.kind.is_none() && m.role == MessageRole::User)
        );
        let Item::Message(m) = &items[2] else {
            panic!("message expected")
        };
        let Content::Parts(parts) = &m.content else {
            panic!("parts expected")
        };
        assert!(
            matches!(&parts[0], ContentPart::InputText(t) if t.extra["cache_control"]["type"] == "ephemeral")
        );
        assert_eq!(parts[3].kind(), "input_audio");
        assert!(matches!(&items[9], Item::Other(_)));
        assert_eq!(items[9].id(), Some("lsh_1"));
        let tools = req.tools.as_ref().unwrap();
        assert!(matches!(&tools[0], ToolDefinition::Function(t) if t.strict == Some(false)));
        assert!(matches!(&tools[1], ToolDefinition::Custom(t) if t.name == "apply_patch"));
        assert_eq!(tools[2].kind(), "web_search");
        assert!(!req.is_store());
        assert!(matches!(
            req.text.as_ref().and_then(|t| t.format.as_ref()),
            Some(TextFormat::JsonSchema(f)) if f.name.as_deref() == Some("out")
        ));
    }

    #[test]
    fn known_items_that_do_not_parse_are_kept_whole() {
        let bad = json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": {"not": "a string"}});
        let item: Item = serde_json::from_value(bad.clone()).unwrap();
        assert!(matches!(&item, Item::Other(v) if *v == bad));
        assert_eq!(item.kind(), "function_call");
        // Missing required strings default to empty (translation names them).
        let item: Item =
            serde_json::from_value(json!({"type": "function_call", "name": "f"})).unwrap();
        assert!(matches!(item, Item::FunctionCall(c) if c.call_id.is_empty()));
        let item: Item = serde_json::from_value(json!({"foo": 1})).unwrap();
        assert_eq!(item.kind(), "unknown");
    }

    #[test]
    fn function_tool_without_name_is_an_error() {
        let err =
            serde_json::from_value::<ToolDefinition>(json!({"type": "function", "parameters": {}}))
                .unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn tool_choice_forms() {
        let cases = [
            (json!("required"), "mode"),
            (json!({"type": "function", "name": "f"}), "named"),
            (json!({"type": "custom", "name": "apply_patch"}), "named"),
            (
                json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}),
                "allowed",
            ),
            (json!({"type": "file_search"}), "other"),
        ];
        for (v, want) in cases {
            let c: ToolChoice = serde_json::from_value(v.clone()).unwrap();
            let got = match &c {
                ToolChoice::Mode(_) => "mode",
                ToolChoice::Named(_) => "named",
                ToolChoice::AllowedTools(_) => "allowed",
                ToolChoice::Other(_) => "other",
            };
            assert_eq!(got, want, "{v}");
            assert_eq!(serde_json::to_value(&c).unwrap(), v);
        }
    }

    /// A real OpenAI response object parses, and serializes back with the same fields.
    #[test]
    fn openai_response_object_round_trips() {
        let body = json!({
            "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
            "object": "response", "created_at": 1741476777, "status": "completed",
            "error": null, "incomplete_details": null, "instructions": null,
            "max_output_tokens": null, "model": "gpt-4o-2024-08-06",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}", "status": "completed"}
            ],
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 380},
            "user": null, "metadata": {}, "service_tier": "default"
        });
        let r: Response = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(r.status, ResponseStatus::Completed);
        assert_eq!(r.output_text(), "Hi");
        assert_eq!(r.extra["truncation"], "disabled");
        let back = serde_json::to_value(&r).unwrap();
        // `reasoning: {effort: null, summary: null}` comes back as `{}`; the rest is equal.
        let mut expected = body;
        expected["reasoning"] = json!({});
        assert_eq!(back, expected);
    }

    #[test]
    fn stream_events_parse_and_serialize() {
        let raw = [
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hi", "logprobs": [], "sequence_number": 4}),
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "arguments": "{}", "name": "f", "sequence_number": 9}),
            json!({"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": ""}, "sequence_number": 2}),
            json!({"type": "error", "code": "server_error", "message": "boom", "param": null, "sequence_number": 7}),
        ];
        for v in raw {
            let e: ResponseStreamEvent = serde_json::from_value(v.clone()).unwrap();
            assert!(!matches!(e, ResponseStreamEvent::Other(_)), "{v}");
            assert_eq!(e.event_type(), v["type"]);
            assert_eq!(e.sequence_number(), v["sequence_number"].as_u64());
            assert_eq!(serde_json::to_value(&e).unwrap(), v);
        }
        let unknown: ResponseStreamEvent = serde_json::from_value(
            json!({"type": "response.web_search_call.searching", "item_id": "ws", "output_index": 0, "sequence_number": 3}),
        )
        .unwrap();
        assert_eq!(unknown.event_type(), "response.web_search_call.searching");
        assert_eq!(unknown.sequence_number(), Some(3));
    }
}
