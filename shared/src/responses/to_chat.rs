//! `ResponsesRequest` (+ the items of earlier turns) → OpenAI `ChatCompletionRequest`.
//!
//! - `instructions` → the first (system) message; then the history items (resolved by the
//!   gateway from `previous_response_id`), then `input` (a string is one user message).
//! - Message items by role; `input_text`/`output_text`/`refusal` → text, `input_image` →
//!   `image_url`, `input_file` → a `file` part. Text-only content becomes a plain string (parts
//!   joined by `\n`), which every OpenAI-compatible server accepts.
//! - `function_call`/`custom_tool_call` items → `tool_calls` of one assistant message (merged
//!   into the assistant message before them); `function_call_output`/`custom_tool_call_output`
//!   → `tool` messages; `item_reference` → the item it names; reasoning items and hosted-tool
//!   items are dropped with a [`TranslationNote`].
//! - Function tools → chat function tools; custom tools → function tools taking one string
//!   (`{"input": ...}`); hosted tools are dropped (an error if `tool_choice` requires one).
//! - `tool_choice`, `max_output_tokens` (→ `max_completion_tokens`), `reasoning.effort` (→
//!   `reasoning_effort`), `text.format` (→ `response_format`), `text.verbosity`, sampling,
//!   `parallel_tool_calls`, `user`, `metadata`, `stream` (+ `stream_options.include_usage`).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::from_chat::CUSTOM_TOOL_ARGUMENT;
use super::types::{
    AllowedToolsChoice, Content, ContentPart, CustomTool, FilePart, FunctionTool, ImagePart, Input,
    Item, MessageItem, MessageRole, ResponsesRequest, TextConfig, TextFormat, ToolChoice,
    ToolDefinition,
};
use super::{TranslateError, TranslationNote};
use crate::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart as ChatPart, FunctionCall, FunctionDef,
    ImageUrl, MessageContent, Role, StreamOptions, Tool, ToolCall,
};

/// A translated request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToChat {
    pub request: ChatCompletionRequest,
    /// What was dropped or changed, for the gateway to log.
    pub notes: Vec<TranslationNote>,
}

/// Top-level request fields passed on to the chat request as they are (OpenAI's chat API has
/// the same names).
const PASSED_FIELDS: [&str; 3] = ["prompt_cache_key", "safety_identifier", "service_tier"];

/// Translates a Responses request into a chat request.
///
/// `history` holds the items of earlier turns that `previous_response_id` names (the stored
/// items of that response: its request's history and input items, then its output items; see
/// [`items_for_next_turn`](super::store::items_for_next_turn)); pass `&[]` when there is none.
/// `instructions` of earlier turns are not carried over, as OpenAI does.
///
/// Fails (with the field path) when the request is invalid — no input, a function call
/// without `call_id` or `name`, a tool output whose call is nowhere in the conversation, an
/// unresolvable `item_reference`, an unknown role — or needs what a chat deployment cannot do:
/// an image by `file_id`, a file by URL, a hosted tool that `tool_choice` requires,
/// `background`, `conversation` or `prompt`.
pub fn to_chat(req: &ResponsesRequest, history: &[Item]) -> Result<ToChat, TranslateError> {
    let mut t = Translator::default();
    let mut extra = Map::new();
    t.other_fields(req, &mut extra)?;

    let input: Vec<Item> = match &req.input {
        None => Vec::new(),
        Some(Input::Text(s)) => vec![Item::user_text(s.clone())],
        Some(Input::Items(items)) => items.clone(),
    };
    let mut messages = Vec::new();
    if let Some(instructions) = req.instructions.as_deref().filter(|s| !s.is_empty()) {
        messages.push(ChatMessage::text(Role::System, instructions));
    }
    let conversation = Conversation {
        history,
        input: &input,
    };
    for (i, item) in history.iter().enumerate() {
        t.item(item, &format!("history.{i}"), &conversation, &mut messages)?;
    }
    for (i, item) in input.iter().enumerate() {
        let path = match &req.input {
            Some(Input::Text(_)) => "input".to_string(),
            _ => format!("input.{i}"),
        };
        t.item(item, &path, &conversation, &mut messages)?;
    }
    t.flush_moved_parts(&mut messages);
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(TranslateError::new(
            "input",
            "at least one input item is required",
        ));
    }
    t.finish_notes();

    let (tools, custom_names) = t.tools(req.tools.as_deref())?;
    let (tools, tool_choice) = t.tool_choice(req.tool_choice.as_ref(), tools, &custom_names)?;
    if !tools.is_empty()
        && let Some(parallel) = req.parallel_tool_calls
    {
        extra.insert("parallel_tool_calls".into(), Value::Bool(parallel));
    }
    if let Some(effort) = req.reasoning.as_ref().and_then(|r| r.effort.as_deref()) {
        extra.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(text) = &req.text {
        t.text(text, &mut extra);
    }

    let stream = req.is_stream();
    let request = ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        // Responses streams end with usage; chat streams send it only when asked.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: None,
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: None,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        user: req.user.clone(),
        metadata: req.metadata.clone(),
        extra,
    };
    Ok(ToChat {
        request,
        notes: t.notes,
    })
}

/// The items `item_reference`s may name.
struct Conversation<'a> {
    history: &'a [Item],
    input: &'a [Item],
}

impl Conversation<'_> {
    fn find(&self, id: &str) -> Option<&Item> {
        self.history
            .iter()
            .chain(self.input)
            .find(|i| !matches!(i, Item::ItemReference(_)) && i.id() == Some(id))
    }
}

/// Translation state: notes, the call ids seen so far, parts waiting for a user message, and
/// counts of the drops noted once.
#[derive(Default)]
struct Translator {
    notes: Vec<TranslationNote>,
    call_ids: HashSet<String>,
    /// Images/files of tool outputs, sent in a user message after the tool messages.
    moved: Vec<ChatPart>,
    /// (count, first path) of dropped reasoning items.
    reasoning: (usize, String),
}

impl Translator {
    fn note(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.notes.push(TranslationNote::new(path, message));
    }

    fn finish_notes(&mut self) {
        if self.reasoning.0 > 0 {
            let (n, path) = std::mem::take(&mut self.reasoning);
            self.note(
                path,
                format!(
                    "{n} reasoning item(s) dropped: chat completions have no way to send prior \
                     reasoning"
                ),
            );
        }
    }

    /// Pushes a message, first sending the parts moved out of tool outputs (once the tool
    /// messages are over: chat wants them right after their assistant message).
    fn push(&mut self, msg: ChatMessage, out: &mut Vec<ChatMessage>) {
        if msg.role != Role::Tool {
            self.flush_moved_parts(out);
        }
        out.push(msg);
    }

    fn flush_moved_parts(&mut self, out: &mut Vec<ChatMessage>) {
        if !self.moved.is_empty() {
            let parts = std::mem::take(&mut self.moved);
            out.push(ChatMessage {
                content: Some(MessageContent::Parts(parts)),
                ..ChatMessage::text(Role::User, "")
            });
        }
    }

    fn item(
        &mut self,
        item: &Item,
        path: &str,
        conversation: &Conversation<'_>,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        match item {
            Item::Message(m) => self.message(m, path, out),
            Item::FunctionCall(c) => {
                let arguments = if c.arguments.trim().is_empty() {
                    "{}".to_string()
                } else {
                    c.arguments.clone()
                };
                self.call(&c.call_id, &c.name, arguments, path, out)
            }
            Item::CustomToolCall(c) => {
                let arguments = json!({ CUSTOM_TOOL_ARGUMENT: c.input }).to_string();
                self.call(&c.call_id, &c.name, arguments, path, out)
            }
            Item::FunctionCallOutput(o) => self.call_output(&o.call_id, &o.output, path, out),
            Item::CustomToolCallOutput(o) => self.call_output(&o.call_id, &o.output, path, out),
            Item::Reasoning(_) => {
                if self.reasoning.0 == 0 {
                    self.reasoning.1 = path.to_string();
                }
                self.reasoning.0 += 1;
                Ok(())
            }
            Item::ItemReference(r) => match conversation.find(&r.id) {
                Some(found) => self.item(found, path, conversation, out),
                None => Err(TranslateError::new(
                    format!("{path}.id"),
                    format!(
                        "item '{}' is neither in this request nor in the previous response",
                        r.id
                    ),
                )),
            },
            Item::Other(v) => self.other_item(v, path),
        }
    }

    /// A hosted-tool item (dropped with a note), or an item that is invalid.
    fn other_item(&mut self, v: &Value, path: &str) -> Result<(), TranslateError> {
        let kind = v.get("type").and_then(Value::as_str);
        match kind {
            None => Err(TranslateError::new(
                path,
                "items need a type (or a role and content, for messages)",
            )),
            Some(
                k @ ("message"
                | "function_call"
                | "function_call_output"
                | "custom_tool_call"
                | "custom_tool_call_output"
                | "reasoning"
                | "item_reference"),
            ) => Err(TranslateError::new(
                path,
                format!("this {k} item does not have the fields of one"),
            )),
            Some(k) => {
                self.note(
                    path,
                    format!(
                        "'{k}' item (a hosted or built-in tool's) has no chat equivalent; dropped"
                    ),
                );
                Ok(())
            }
        }
    }

    fn message(
        &mut self,
        m: &MessageItem,
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        let role = match &m.role {
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
            MessageRole::System => Role::System,
            MessageRole::Developer => Role::Developer,
            MessageRole::Other(r) => {
                return Err(TranslateError::new(
                    format!("{path}.role"),
                    format!("unknown role '{r}'"),
                ));
            }
        };
        let parts = match &m.content {
            Content::Text(s) => vec![ChatPart::Text { text: s.clone() }],
            Content::Parts(parts) => {
                let mut out_parts = Vec::with_capacity(parts.len());
                for (j, p) in parts.iter().enumerate() {
                    self.part(p, &format!("{path}.content.{j}"), &mut out_parts)?;
                }
                out_parts
            }
        };
        if role != Role::User
            && let Some(j) = parts
                .iter()
                .position(|p| !matches!(p, ChatPart::Text { .. }))
        {
            return Err(TranslateError::new(
                format!("{path}.content.{j}"),
                "only user messages can carry images and files",
            ));
        }
        let content = collapse(parts);
        if role == Role::Assistant && content.is_none() {
            return Ok(());
        }
        self.push(
            ChatMessage {
                role,
                content: Some(content.unwrap_or_else(|| MessageContent::Text(String::new()))),
                name: None,
                tool_calls: None,
                tool_call_id: None,
                extra: Map::new(),
            },
            out,
        );
        Ok(())
    }

    /// A content part as chat parts (unknown parts are dropped with a note).
    fn part(
        &mut self,
        p: &ContentPart,
        path: &str,
        out: &mut Vec<ChatPart>,
    ) -> Result<(), TranslateError> {
        match p {
            ContentPart::InputText(t) => out.push(ChatPart::Text {
                text: t.text.clone(),
            }),
            ContentPart::OutputText(t) => out.push(ChatPart::Text {
                text: t.text.clone(),
            }),
            ContentPart::Refusal(r) => out.push(ChatPart::Text {
                text: r.refusal.clone(),
            }),
            ContentPart::InputImage(img) => out.push(self.image(img, path)?),
            ContentPart::InputFile(f) => out.push(self.file(f, path)?),
            ContentPart::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                if matches!(
                    kind,
                    "input_text" | "output_text" | "input_image" | "input_file" | "refusal"
                ) {
                    return Err(TranslateError::new(
                        path,
                        format!("this {kind} part does not have the fields of one"),
                    ));
                }
                self.note(
                    path,
                    format!("'{kind}' content has no chat equivalent; dropped"),
                );
            }
        }
        Ok(())
    }

    /// `input_image` → `image_url` (`detail` kept); by `file_id` it cannot be sent.
    fn image(&mut self, img: &ImagePart, path: &str) -> Result<ChatPart, TranslateError> {
        match (&img.image_url, &img.file_id) {
            (Some(url), _) if !url.is_empty() => Ok(ChatPart::ImageUrl {
                image_url: ImageUrl {
                    url: url.clone(),
                    detail: img.detail.clone(),
                },
            }),
            (_, Some(_)) => Err(TranslateError::new(
                format!("{path}.file_id"),
                "images by file_id live in OpenAI's Files API and cannot be sent to this \
                 deployment; send image_url (an https: or data: URL)",
            )),
            _ => Err(TranslateError::new(path, "input_image needs an image_url")),
        }
    }

    /// `input_file` → a chat `file` part (`file_data` with `filename`, or `file_id`, which
    /// only OpenAI-backed deployments resolve); by URL it cannot be sent.
    fn file(&mut self, f: &FilePart, path: &str) -> Result<ChatPart, TranslateError> {
        let mut file = Map::new();
        if let Some(data) = &f.file_data {
            file.insert("file_data".into(), json!(data));
            file.insert(
                "filename".into(),
                json!(f.filename.clone().unwrap_or_else(|| "file".into())),
            );
        } else if let Some(id) = &f.file_id {
            self.note(
                path,
                "file_id sent as a chat file part: only OpenAI-backed deployments can resolve it",
            );
            file.insert("file_id".into(), json!(id));
        } else if f.file_url.is_some() {
            return Err(TranslateError::new(
                format!("{path}.file_url"),
                "files by URL cannot be sent in a chat request; send file_data",
            ));
        } else {
            return Err(TranslateError::new(
                path,
                "input_file needs file_data or file_id",
            ));
        }
        Ok(ChatPart::Other(json!({"type": "file", "file": file})))
    }

    /// A function (or custom tool) call: a tool call of the assistant message before it, or
    /// of a new assistant message.
    fn call(
        &mut self,
        call_id: &str,
        name: &str,
        arguments: String,
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        if call_id.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.call_id"),
                "tool call items need a call_id",
            ));
        }
        if name.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.name"),
                "tool call items need a name",
            ));
        }
        self.call_ids.insert(call_id.to_string());
        let call = ToolCall {
            index: None,
            id: Some(call_id.to_string()),
            kind: Some("function".into()),
            function: FunctionCall {
                name: Some(name.to_string()),
                arguments,
            },
        };
        if self.moved.is_empty()
            && let Some(last) = out.last_mut()
            && last.role == Role::Assistant
        {
            last.tool_calls.get_or_insert_with(Vec::new).push(call);
            return Ok(());
        }
        self.push(
            ChatMessage {
                role: Role::Assistant,
                content: None,
                name: None,
                tool_calls: Some(vec![call]),
                tool_call_id: None,
                extra: Map::new(),
            },
            out,
        );
        Ok(())
    }

    /// A tool output as a `tool` message (text), its images/files moved to a user message
    /// after the tool messages.
    fn call_output(
        &mut self,
        call_id: &str,
        output: &Content,
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        if call_id.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.call_id"),
                "tool output items need a call_id",
            ));
        }
        if !self.call_ids.contains(call_id) {
            return Err(TranslateError::new(
                format!("{path}.call_id"),
                format!(
                    "no tool call with call_id '{call_id}' precedes this output, in this request \
                     or in the previous response"
                ),
            ));
        }
        let text = match output {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => {
                let mut chat_parts = Vec::new();
                for (j, p) in parts.iter().enumerate() {
                    self.part(p, &format!("{path}.output.{j}"), &mut chat_parts)?;
                }
                let (texts, moved): (Vec<ChatPart>, Vec<ChatPart>) = chat_parts
                    .into_iter()
                    .partition(|p| matches!(p, ChatPart::Text { .. }));
                if !moved.is_empty() {
                    self.note(
                        path,
                        format!(
                            "{} image/file part(s) of the tool output moved to a user message \
                             after the tool messages: chat tool messages hold text only",
                            moved.len()
                        ),
                    );
                    self.moved.extend(moved);
                }
                collapse(texts).map_or_else(String::new, |c| c.as_text())
            }
        };
        self.push(
            ChatMessage {
                tool_call_id: Some(call_id.to_string()),
                ..ChatMessage::text(Role::Tool, text)
            },
            out,
        );
        Ok(())
    }

    /// Tools as chat function tools, and the names of the custom ones.
    fn tools(
        &mut self,
        tools: Option<&[ToolDefinition]>,
    ) -> Result<(Vec<Tool>, HashSet<String>), TranslateError> {
        let mut out = Vec::new();
        let mut custom = HashSet::new();
        for (i, tool) in tools.unwrap_or_default().iter().enumerate() {
            let path = format!("tools.{i}");
            match tool {
                ToolDefinition::Function(f) => out.push(self.function_tool(f, &path)?),
                ToolDefinition::Custom(c) => {
                    out.push(self.custom_tool(c, &path)?);
                    custom.insert(c.name.clone());
                }
                ToolDefinition::Other(_) => {
                    let kind = tool.kind();
                    self.note(
                        path,
                        format!(
                            "'{kind}' tool runs on OpenAI's side (or is built into OpenAI \
                             clients) and has no chat equivalent; dropped"
                        ),
                    );
                }
            }
        }
        Ok((out, custom))
    }

    fn function_tool(&mut self, f: &FunctionTool, path: &str) -> Result<Tool, TranslateError> {
        if f.name.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.name"),
                "tools need a name",
            ));
        }
        if !f.extra.is_empty() {
            self.note(path, format!("tool fields dropped: {}", keys(&f.extra)));
        }
        let mut extra = Map::new();
        if let Some(strict) = f.strict {
            extra.insert("strict".into(), Value::Bool(strict));
        }
        Ok(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: f.name.clone(),
                description: f.description.clone(),
                parameters: f.parameters.clone(),
                extra,
            },
        })
    }

    /// A custom tool as a function taking `{"input": string}`; its grammar, if any, goes into
    /// the description (chat has no grammar-constrained output).
    fn custom_tool(&mut self, c: &CustomTool, path: &str) -> Result<Tool, TranslateError> {
        if c.name.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.name"),
                "tools need a name",
            ));
        }
        let mut description = c.description.clone().unwrap_or_default();
        let format = c.format.as_ref();
        if let Some(definition) = format
            .and_then(|f| f.get("definition"))
            .and_then(Value::as_str)
        {
            let syntax = format
                .and_then(|f| f.get("syntax"))
                .and_then(Value::as_str)
                .unwrap_or("grammar");
            description.push_str(&format!(
                "\n\nThe input must follow this {syntax} grammar:\n```\n{definition}\n```"
            ));
        }
        self.note(
            path,
            format!(
                "custom tool '{}' sent as a function tool taking one string argument '{}'",
                c.name, CUSTOM_TOOL_ARGUMENT
            ),
        );
        Ok(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: c.name.clone(),
                description: (!description.is_empty()).then_some(description),
                parameters: Some(json!({
                    "type": "object",
                    "properties": {CUSTOM_TOOL_ARGUMENT: {"type": "string", "description": format!("The raw input of {}", c.name)}},
                    "required": [CUSTOM_TOOL_ARGUMENT],
                    "additionalProperties": false,
                })),
                extra: Map::new(),
            },
        })
    }

    /// `tool_choice` → chat's: the modes as they are; a named function or custom tool → the
    /// function; `allowed_tools` → the tools narrowed to the allowed ones and its mode. A hosted
    /// tool (or one not among the tools) that must be called is an error. Dropped (noted) when
    /// no function tool is left.
    fn tool_choice(
        &mut self,
        choice: Option<&ToolChoice>,
        mut tools: Vec<Tool>,
        custom: &HashSet<String>,
    ) -> Result<(Vec<Tool>, Option<Value>), TranslateError> {
        let Some(choice) = choice else {
            return Ok((tools, None));
        };
        let mode = match choice {
            ToolChoice::Mode(m) => m.clone(),
            ToolChoice::Named(n) => {
                let function_like = n.kind == "function" || n.kind == "custom";
                if !function_like || !tools.iter().any(|t| t.function.name == n.name) {
                    return Err(required_tool_error(&n.kind, &n.name));
                }
                if n.kind == "custom" && !custom.contains(&n.name) {
                    return Err(required_tool_error(&n.kind, &n.name));
                }
                let chosen = json!({"type": "function", "function": {"name": n.name}});
                return Ok((tools, Some(chosen)));
            }
            ToolChoice::AllowedTools(a) => {
                tools = self.allowed_tools(a, tools)?;
                a.mode.clone()
            }
            ToolChoice::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                return Err(TranslateError::new(
                    "tool_choice",
                    format!(
                        "tool_choice requires the '{kind}' tool, which runs on OpenAI's side; \
                         this deployment cannot call it"
                    ),
                ));
            }
        };
        if tools.is_empty() {
            if mode == "required" {
                return Err(TranslateError::new(
                    "tool_choice",
                    "tool_choice 'required' but no function tool is left after translation \
                     (hosted tools are dropped)",
                ));
            }
            self.note(
                "tool_choice",
                "no function tools to choose from after translation; dropped",
            );
            return Ok((tools, None));
        }
        Ok((tools, Some(json!(mode))))
    }

    /// The tools `allowed_tools` names (function and custom ones; hosted ones are noted).
    fn allowed_tools(
        &mut self,
        a: &AllowedToolsChoice,
        tools: Vec<Tool>,
    ) -> Result<Vec<Tool>, TranslateError> {
        let mut names = HashSet::new();
        for (i, t) in a.tools.iter().enumerate() {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("unknown");
            match (kind, t.get("name").and_then(Value::as_str)) {
                ("function" | "custom", Some(name)) => {
                    names.insert(name.to_string());
                }
                _ => self.note(
                    format!("tool_choice.tools.{i}"),
                    format!("allowed '{kind}' tool has no chat equivalent; dropped"),
                ),
            }
        }
        Ok(tools
            .into_iter()
            .filter(|t| names.contains(&t.function.name))
            .collect())
    }

    /// `text.format` → `response_format` (json_schema unflattened); `verbosity` as is.
    fn text(&mut self, text: &TextConfig, extra: &mut Map<String, Value>) {
        match &text.format {
            None | Some(TextFormat::Text) => {}
            Some(TextFormat::JsonObject) => {
                extra.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some(TextFormat::JsonSchema(f)) => {
                let mut schema = Map::new();
                schema.insert(
                    "name".into(),
                    json!(f.name.clone().unwrap_or_else(|| "response".into())),
                );
                schema.insert("schema".into(), f.schema.clone());
                if let Some(d) = &f.description {
                    schema.insert("description".into(), json!(d));
                }
                if let Some(s) = f.strict {
                    schema.insert("strict".into(), json!(s));
                }
                extra.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some(TextFormat::Other(v)) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                self.note(
                    "text.format",
                    format!("text format '{kind}' not understood; dropped"),
                );
            }
        }
        if let Some(v) = &text.verbosity {
            extra.insert("verbosity".into(), json!(v));
        }
    }

    /// Top-level fields outside the typed ones: passed on (same name in chat), refused (state
    /// or execution a chat deployment cannot provide), or dropped with a note.
    fn other_fields(
        &mut self,
        req: &ResponsesRequest,
        extra: &mut Map<String, Value>,
    ) -> Result<(), TranslateError> {
        let mut dropped = Vec::new();
        for (key, value) in &req.extra {
            match key.as_str() {
                k if PASSED_FIELDS.contains(&k) => {
                    extra.insert(key.clone(), value.clone());
                }
                "background" if value.as_bool() == Some(true) => {
                    return Err(TranslateError::new(
                        "background",
                        "background responses are not supported for this deployment",
                    ));
                }
                "conversation" if !value.is_null() => {
                    return Err(TranslateError::new(
                        "conversation",
                        "conversations are not supported for this deployment; use \
                         previous_response_id or send the history in input",
                    ));
                }
                "prompt" if !value.is_null() => {
                    return Err(TranslateError::new(
                        "prompt",
                        "prompt templates live at OpenAI and cannot be used with this deployment",
                    ));
                }
                // Ours to set (`include_usage`), or a default that changes nothing.
                "stream_options" | "background" | "conversation" | "prompt" => {}
                "truncation" if value.as_str() != Some("auto") => {}
                _ => dropped.push(key.as_str()),
            }
        }
        if !dropped.is_empty() {
            dropped.sort_unstable();
            self.note(
                "request",
                format!(
                    "fields with no chat equivalent dropped: {}",
                    dropped.join(", ")
                ),
            );
        }
        Ok(())
    }
}

fn required_tool_error(kind: &str, name: &str) -> TranslateError {
    TranslateError::new(
        "tool_choice",
        format!(
            "tool_choice requires the '{kind}' tool '{name}', which is not a function or custom \
             tool of this request"
        ),
    )
}

/// Parts as message content: `None` when empty, a string when all text (joined by `\n`),
/// else the parts.
fn collapse(parts: Vec<ChatPart>) -> Option<MessageContent> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().all(|p| matches!(p, ChatPart::Text { .. })) {
        return Some(MessageContent::Text(MessageContent::Parts(parts).as_text()));
    }
    Some(MessageContent::Parts(parts))
}

fn keys(map: &Map<String, Value>) -> String {
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn translate(v: Value) -> ToChat {
        to_chat(&parse(v), &[]).unwrap()
    }

    fn translate_err(v: Value) -> TranslateError {
        to_chat(&parse(v), &[]).unwrap_err()
    }

    fn wire(t: &ToChat) -> Value {
        serde_json::to_value(&t.request).unwrap()
    }

    fn has_note(t: &ToChat, path: &str, needle: &str) -> bool {
        t.notes
            .iter()
            .any(|n| n.path == path && n.message.contains(needle))
    }

    /// A request shaped like Codex CLI's: instructions, function tools (a shell tool), a
    /// custom apply_patch tool, hosted tools, reasoning, function_call/function_call_output
    /// items, `store: false`, `stream: true`, `include`, `prompt_cache_key`.
    fn codex_request() -> Value {
        serde_json::from_str(include_str!(
            "../../tests/data/responses/codex_request.json"
        ))
        .unwrap()
    }

    #[test]
    fn codex_request_translates() {
        let t = translate(codex_request());
        let w = wire(&t);
        let msgs = w["messages"].as_array().unwrap();
        let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(
            roles,
            [
                "system",
                "user",
                "user",
                "assistant",
                "tool",
                "tool",
                "assistant",
                "tool",
                "user"
            ]
        );
        assert!(
            msgs[0]["content"]
                .as_str()
                .unwrap()
                .starts_with("You are Codex")
        );
        assert!(
            msgs[1]["content"]
                .as_str()
                .unwrap()
                .contains("<environment_context>")
        );
        // Text before the calls and both parallel calls in one assistant message.
        assert_eq!(msgs[3]["content"], "Let me look at the repository.");
        let calls = msgs[3]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["id"], "call_ls");
        assert_eq!(calls[0]["function"]["name"], "shell");
        assert_eq!(
            calls[0]["function"]["arguments"],
            "{\"command\":[\"bash\",\"-lc\",\"ls\"],\"workdir\":\"/repo\"}"
        );
        assert_eq!(calls[1]["id"], "call_cat");
        assert_eq!(msgs[4]["tool_call_id"], "call_ls");
        assert_eq!(msgs[5]["tool_call_id"], "call_cat");
        assert_eq!(msgs[5]["content"], "fn main() {}");
        // A custom tool call: arguments wrapped as {"input": ...}.
        let patch = &msgs[6]["tool_calls"][0];
        assert_eq!(patch["function"]["name"], "apply_patch");
        let args: Value =
            serde_json::from_str(patch["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(
            args["input"]
                .as_str()
                .unwrap()
                .starts_with("*** Begin Patch")
        );
        assert_eq!(msgs[7]["tool_call_id"], "call_patch");
        assert_eq!(msgs[8]["content"], "Now run the tests.");

        let tools = w["tools"].as_array().unwrap();
        let names: Vec<&str> = tools
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["shell", "update_plan", "apply_patch"]);
        assert_eq!(tools[0]["function"]["strict"], false);
        assert_eq!(
            tools[0]["function"]["parameters"]["required"],
            json!(["command"])
        );
        assert_eq!(
            tools[2]["function"]["parameters"]["required"],
            json!(["input"])
        );
        assert!(
            tools[2]["function"]["description"]
                .as_str()
                .unwrap()
                .contains("lark grammar")
        );
        assert_eq!(w["tool_choice"], "auto");
        assert_eq!(w["parallel_tool_calls"], true);
        assert_eq!(w["reasoning_effort"], "high");
        assert_eq!(w["stream"], true);
        assert_eq!(w["stream_options"], json!({"include_usage": true}));
        assert_eq!(w["prompt_cache_key"], "019a-session");
        assert!(w.get("store").is_none());
        assert!(w.get("include").is_none());
        assert!(has_note(&t, "tools.3", "'web_search' tool"));
        assert!(has_note(&t, "tools.4", "'local_shell' tool"));
        assert!(has_note(&t, "tools.2", "custom tool 'apply_patch'"));
        assert!(has_note(&t, "input.2", "1 reasoning item(s) dropped"));
        assert!(has_note(&t, "request", "include"));
    }

    #[test]
    fn string_input_and_roles() {
        let t = translate(json!({"model": "m", "input": "hi", "instructions": "sys"}));
        assert_eq!(
            wire(&t)["messages"],
            json!([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}])
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);

        let t = translate(json!({"model": "m", "input": [
            {"role": "developer", "content": "dev"},
            {"role": "system", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "prev"}, {"type": "refusal", "refusal": "no"}]},
            {"role": "user", "content": "q"}
        ]}));
        assert_eq!(
            wire(&t)["messages"],
            json!([
                {"role": "developer", "content": "dev"},
                {"role": "system", "content": "a\nb"},
                {"role": "assistant", "content": "prev\nno"},
                {"role": "user", "content": "q"}
            ])
        );
        let e = translate_err(json!({"model": "m", "input": [{"role": "critic", "content": "x"}]}));
        assert_eq!(e.path, "input.0.role");
    }

    #[test]
    fn images_and_files_become_parts() {
        let t = translate(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what is this"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,BBB"},
            {"type": "input_file", "file_id": "file-1"},
            {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
        ]}]}));
        assert_eq!(
            wire(&t)["messages"][0]["content"],
            json!([
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,BBB", "filename": "a.pdf"}},
                {"type": "file", "file": {"file_id": "file-1"}}
            ])
        );
        assert!(has_note(&t, "input.0.content.3", "file_id"));
        assert!(has_note(&t, "input.0.content.4", "'input_audio'"));

        let e = translate_err(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_image", "file_id": "file-img"}]}]}));
        assert_eq!(e.path, "input.0.content.0.file_id");
        let e = translate_err(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_file", "file_url": "https://x/a.pdf"}]}]}));
        assert_eq!(e.path, "input.0.content.0.file_url");
        let e = translate_err(
            json!({"model": "m", "input": [{"role": "system", "content": [
            {"type": "input_image", "image_url": "https://x"}]}]}),
        );
        assert_eq!(e.path, "input.0.content.0");
    }

    #[test]
    fn tool_output_images_move_after_the_tool_messages() {
        let t = translate(json!({"model": "m", "input": [
            {"role": "user", "content": "shoot"},
            {"type": "function_call", "call_id": "a", "name": "screenshot", "arguments": ""},
            {"type": "function_call", "call_id": "b", "name": "screenshot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": [
                {"type": "input_text", "text": "taken"},
                {"type": "input_image", "image_url": "https://x/1.png"}]},
            {"type": "function_call_output", "call_id": "b", "output": "fail"}
        ]}));
        let w = wire(&t);
        assert_eq!(
            w["messages"],
            json!([
                {"role": "user", "content": "shoot"},
                {"role": "assistant", "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}}
                ]},
                {"role": "tool", "content": "taken", "tool_call_id": "a"},
                {"role": "tool", "content": "fail", "tool_call_id": "b"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/1.png"}}]}
            ])
        );
        assert!(has_note(&t, "input.3", "moved"));
    }

    #[test]
    fn history_items_come_first_and_references_resolve() {
        let history: Vec<Item> = serde_json::from_value(json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"}
        ]))
        .unwrap();
        let req = parse(
            json!({"model": "m", "instructions": "new sys", "previous_response_id": "resp_1", "input": [
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {"type": "item_reference", "id": "fc_1"},
                {"type": "function_call_output", "call_id": "call_1", "output": "again"}
            ]}),
        );
        let t = to_chat(&req, &history).unwrap();
        let msgs = wire(&t)["messages"].clone();
        assert_eq!(msgs[0], json!({"role": "system", "content": "new sys"}));
        assert_eq!(msgs[1], json!({"role": "user", "content": "weather?"}));
        assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_1");
        assert_eq!(msgs[3]["content"], "sunny");
        // The reference repeats the call as a new assistant message.
        assert_eq!(msgs[4]["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(msgs[5]["content"], "again");
        assert!(has_note(&t, "history.1", "reasoning"));

        let e = to_chat(
            &parse(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_gone"}]})),
            &history,
        )
        .unwrap_err();
        assert_eq!(e.path, "input.0.id");
    }

    #[test]
    fn invalid_items_name_the_field() {
        let cases = [
            (
                json!([{"type": "function_call", "name": "f", "arguments": "{}"}]),
                "input.0.call_id",
            ),
            (
                json!([{"type": "function_call", "call_id": "c", "arguments": "{}"}]),
                "input.0.name",
            ),
            (
                json!([{"type": "function_call_output", "call_id": "nope", "output": "x"}]),
                "input.0.call_id",
            ),
            (
                json!([{"type": "function_call_output", "output": "x"}]),
                "input.0.call_id",
            ),
            (
                json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": 3}]),
                "input.0",
            ),
            (json!([{"foo": "bar"}]), "input.0"),
            (json!([]), "input"),
        ];
        for (input, path) in cases {
            let e = translate_err(json!({"model": "m", "input": input}));
            assert_eq!(e.path, path, "{input}: {e}");
        }
        let e = translate_err(json!({"model": "m"}));
        assert_eq!(e.path, "input");
        // Hosted tool items are dropped, not refused.
        let t = translate(json!({"model": "m", "input": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"role": "user", "content": "go on"}]}));
        assert!(has_note(&t, "input.0", "'web_search_call'"));
    }

    #[test]
    fn tool_choice_mapping() {
        let tools = json!([
            {"type": "function", "name": "a", "parameters": {"type": "object"}},
            {"type": "function", "name": "b"},
            {"type": "custom", "name": "patch"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]}
        ]);
        let choice = |c: Value| {
            to_chat(
                &parse(
                    json!({"model": "m", "input": "x", "tools": tools, "tool_choice": c, "parallel_tool_calls": false}),
                ),
                &[],
            )
        };
        let t = choice(json!("required")).unwrap();
        assert_eq!(wire(&t)["tool_choice"], "required");
        assert_eq!(wire(&t)["parallel_tool_calls"], false);
        assert!(has_note(&t, "tools.3", "'file_search'"));
        let t = choice(json!({"type": "function", "name": "b"})).unwrap();
        assert_eq!(
            wire(&t)["tool_choice"],
            json!({"type": "function", "function": {"name": "b"}})
        );
        let t = choice(json!({"type": "custom", "name": "patch"})).unwrap();
        assert_eq!(wire(&t)["tool_choice"]["function"]["name"], "patch");
        let t = choice(
            json!({"type": "allowed_tools", "mode": "required", "tools": [
            {"type": "function", "name": "a"}, {"type": "file_search"}]}),
        )
        .unwrap();
        let w = wire(&t);
        assert_eq!(w["tool_choice"], "required");
        assert_eq!(w["tools"].as_array().unwrap().len(), 1);
        assert_eq!(w["tools"][0]["function"]["name"], "a");
        assert!(has_note(&t, "tool_choice.tools.1", "'file_search'"));

        assert_eq!(
            choice(json!({"type": "file_search"})).unwrap_err().path,
            "tool_choice"
        );
        assert_eq!(
            choice(json!({"type": "function", "name": "zzz"}))
                .unwrap_err()
                .path,
            "tool_choice"
        );
        assert!(
            choice(json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "file_search"}]}))
                .is_err()
        );
        // Only hosted tools: dropped, and tool_choice (and parallel_tool_calls) with them.
        let t = to_chat(
            &parse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": "auto", "parallel_tool_calls": true})),
            &[],
        )
        .unwrap();
        let w = wire(&t);
        assert!(w.get("tools").is_none() && w.get("tool_choice").is_none());
        assert!(w.get("parallel_tool_calls").is_none());
        assert!(has_note(&t, "tool_choice", "dropped"));
        let e = to_chat(
            &parse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": "required"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "tool_choice");
    }

    #[test]
    fn sampling_text_format_and_other_fields() {
        let t = translate(json!({
            "model": "m", "input": "x", "max_output_tokens": 300, "temperature": 0.5, "top_p": 0.9,
            "user": "u", "metadata": {"routing_profile": "eco"}, "reasoning": {"effort": "minimal", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "person", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
            "safety_identifier": "sid", "service_tier": "flex", "truncation": "disabled",
            "top_logprobs": 2, "max_tool_calls": 3, "stream_options": {"include_obfuscation": false},
            "store": true, "previous_response_id": "resp_x"
        }));
        let w = wire(&t);
        assert_eq!(w["max_completion_tokens"], 300);
        assert!(w.get("max_tokens").is_none());
        assert_eq!(w["temperature"], 0.5);
        assert_eq!(w["top_p"], 0.9);
        assert_eq!(w["user"], "u");
        assert_eq!(w["reasoning_effort"], "minimal");
        assert_eq!(
            w["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": true}})
        );
        assert_eq!(w["verbosity"], "low");
        assert_eq!(w["safety_identifier"], "sid");
        assert_eq!(w["service_tier"], "flex");
        assert!(w.get("stream").is_none() && w.get("stream_options").is_none());
        // Metadata reaches the router, not the upstream (as on the chat front door).
        assert_eq!(
            t.request.metadata.as_ref().unwrap()["routing_profile"],
            "eco"
        );
        assert!(w.get("metadata").is_none());
        assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
        assert!(has_note(&t, "request", "max_tool_calls, top_logprobs"));

        let t = translate(
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}),
        );
        assert_eq!(wire(&t)["response_format"], json!({"type": "json_object"}));
        let t =
            translate(json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}));
        assert!(wire(&t).get("response_format").is_none());

        for (field, value) in [
            ("background", json!(true)),
            ("conversation", json!("conv_1")),
            ("prompt", json!({"id": "pmpt_1"})),
        ] {
            let mut body = json!({"model": "m", "input": "x"});
            body[field] = value;
            assert_eq!(translate_err(body).path, field);
        }
        let t = translate(json!({"model": "m", "input": "x", "background": false}));
        assert!(t.notes.is_empty());
    }
}
