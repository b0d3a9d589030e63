//! `MessagesRequest` → OpenAI `ChatCompletionRequest`.
//!
//! - `system` → one system message; user/assistant turns → OpenAI messages, `tool_result`
//!   blocks → `tool` messages ahead of the rest of their user turn, `tool_use` blocks →
//!   `tool_calls`; images → `image_url` parts (base64 as `data:` URLs); base64 documents →
//!   `file` parts; text documents → text.
//! - Tools → function tools (names OpenAI rejects are shortened, see [`super::names`]);
//!   `tool_choice`, `stop_sequences`, `metadata.user_id`, `thinking` (→ `reasoning_effort`),
//!   `output_format` (→ `response_format`) are mapped.
//! - What has no OpenAI counterpart (thinking blocks, `cache_control`, `top_k`, server tools,
//!   Anthropic-only top-level fields) is dropped with a [`TranslationNote`].
//! - Text-only content becomes a plain string (blocks joined by `\n`), which every
//!   OpenAI-compatible server accepts; mixed content stays an array of parts.

use serde_json::{Map, Value, json};

use super::from_openai::TranslationContext;
use super::names::ToolNameMap;
use super::types::{
    Content, ContentBlock, CustomTool, DocumentBlock, InputMessage, MediaSource, MessageRole,
    MessagesRequest, SystemPrompt, ThinkingConfig, ToolChoice, ToolDefinition, ToolResultBlock,
    ToolUseBlock,
};
use super::{TranslateError, TranslationNote};
use crate::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDef, ImageUrl,
    MessageContent, Role, Stop, StreamOptions, Tool, ToolCall,
};

/// Prefix of a `tool` message whose `tool_result` had `is_error: true` (OpenAI tool messages
/// have no error flag).
pub const TOOL_ERROR_PREFIX: &str = "Error: ";

/// A translated request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToOpenAi {
    pub request: ChatCompletionRequest,
    /// What the answer's translation needs: the changed tool names. Set `model`,
    /// `message_id` or `input_tokens_hint` on it before translating the answer if wanted.
    pub context: TranslationContext,
    /// What was dropped or changed, for the gateway to log.
    pub notes: Vec<TranslationNote>,
}

/// `reasoning_effort` for a thinking budget: below 2048 tokens `low`, below 4096 `medium`,
/// else `high`.
///
/// These are LiteLLM's thresholds (`DEFAULT_REASONING_EFFORT_{LOW,MEDIUM,HIGH}_THINKING_BUDGET`
/// = 1024/2048/4096). LiteLLM also answers `minimal` below 1024 (Anthropic's minimum budget, so
/// never valid) and `xhigh`/`max` from 8192/16384, which most OpenAI-compatible models reject;
/// here they fold into `low` and `high`.
pub fn reasoning_effort_for_budget(budget_tokens: u64) -> &'static str {
    match budget_tokens {
        0..2048 => "low",
        2048..4096 => "medium",
        _ => "high",
    }
}

/// Translates an Anthropic Messages request into an OpenAI chat request.
///
/// Fails (with the field path) when the request is invalid — no messages, a `tool_use` without
/// `id` or `name`, a `tool_result` without `tool_use_id` or outside a user turn, a `tool_use` in
/// a user turn, non-text `system` blocks — or holds content an OpenAI deployment cannot receive
/// (Files API sources, document URLs).
pub fn to_openai(req: &MessagesRequest) -> Result<ToOpenAi, TranslateError> {
    if req.messages.is_empty() {
        return Err(TranslateError::new(
            "messages",
            "at least one message is required",
        ));
    }
    let mut t = Translator::default();
    let mut messages = Vec::new();
    if let Some(system) = &req.system
        && let Some(m) = t.system(system)?
    {
        messages.push(m);
    }
    for (i, m) in req.messages.iter().enumerate() {
        t.message(m, &format!("messages.{i}"), &mut messages)?;
    }
    if let Some(last) = req.messages.last()
        && last.role == MessageRole::Assistant
    {
        t.note(
            format!("messages.{}", req.messages.len() - 1),
            "the final assistant turn (prefill) is sent as a complete assistant message; \
             OpenAI models answer after it rather than continuing it",
        );
    }

    let tools = t.tools(req.tools.as_deref())?;
    let mut extra = Map::new();
    let tool_choice = t.tool_choice(req.tool_choice.as_ref(), &tools, &mut extra);
    if let Some(effort) = t.reasoning_effort(req) {
        extra.insert("reasoning_effort".into(), json!(effort));
    }
    t.other_fields(req, &mut extra);

    let user = req.metadata.as_ref().and_then(|m| {
        if !m.extra.is_empty() {
            t.note(
                "metadata",
                format!(
                    "metadata fields other than user_id dropped: {}",
                    keys(&m.extra)
                ),
            );
        }
        m.user_id.clone()
    });
    if req.top_k.is_some() {
        t.note("top_k", "OpenAI has no top_k; dropped");
    }
    let stop = req
        .stop_sequences
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| Stop::Many(s.clone()));
    let stream = req.is_stream();
    t.finish_notes();

    let request = ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        // Anthropic streams always end with usage; OpenAI sends it only when asked.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        max_tokens: req.max_tokens,
        max_completion_tokens: None,
        temperature: req.temperature,
        top_p: req.top_p,
        stop,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        user,
        metadata: None,
        extra,
    };
    Ok(ToOpenAi {
        request,
        context: TranslationContext {
            tool_names: t.names,
            ..TranslationContext::default()
        },
        notes: t.notes,
    })
}

/// Translation state: changed tool names, notes, and counts of the drops noted once.
#[derive(Default)]
struct Translator {
    names: ToolNameMap,
    notes: Vec<TranslationNote>,
    cache_controls: usize,
    /// (count, first path) of dropped thinking/redacted_thinking blocks.
    thinking: (usize, String),
}

impl Translator {
    fn note(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.notes.push(TranslationNote::new(path, message));
    }

    fn count_cache_control(&mut self, block: &ContentBlock) {
        if block.cache_control().is_some() {
            self.cache_controls += 1;
        }
    }

    fn drop_thinking(&mut self, path: &str) {
        if self.thinking.0 == 0 {
            self.thinking.1 = path.to_string();
        }
        self.thinking.0 += 1;
    }

    /// The notes gathered as counts.
    fn finish_notes(&mut self) {
        if self.thinking.0 > 0 {
            let (n, path) = std::mem::take(&mut self.thinking);
            self.note(
                path,
                format!(
                    "{n} thinking/redacted_thinking block(s) dropped: OpenAI chat has no way to \
                     send prior reasoning"
                ),
            );
        }
        if self.cache_controls > 0 {
            let n = self.cache_controls;
            self.note(
                "cache_control",
                format!(
                    "{n} cache_control breakpoint(s) dropped: OpenAI-compatible deployments \
                     cache prompt prefixes on their own"
                ),
            );
        }
    }

    fn system(&mut self, system: &SystemPrompt) -> Result<Option<ChatMessage>, TranslateError> {
        let text = match system {
            SystemPrompt::Text(s) => s.clone(),
            SystemPrompt::Blocks(blocks) => {
                let mut texts = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.iter().enumerate() {
                    self.count_cache_control(b);
                    match b {
                        ContentBlock::Text(tb) => texts.push(tb.text.as_str()),
                        other => {
                            return Err(TranslateError::new(
                                format!("system.{j}"),
                                format!("system blocks must be text, not '{}'", other.kind()),
                            ));
                        }
                    }
                }
                texts.join("\n")
            }
        };
        Ok((!text.is_empty()).then(|| ChatMessage::text(Role::System, text)))
    }

    fn message(
        &mut self,
        m: &InputMessage,
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        if !m.extra.is_empty() {
            self.note(path, format!("message fields dropped: {}", keys(&m.extra)));
        }
        let blocks = match &m.content {
            Content::Text(s) => {
                let role = match m.role {
                    MessageRole::User => Role::User,
                    MessageRole::Assistant => Role::Assistant,
                };
                out.push(ChatMessage::text(role, s.clone()));
                return Ok(());
            }
            Content::Blocks(blocks) => blocks,
        };
        match m.role {
            MessageRole::User => self.user_turn(blocks, path, out),
            MessageRole::Assistant => self.assistant_turn(blocks, path, out),
        }
    }

    /// `tool_result` blocks → `tool` messages (in order), then the rest as one user message.
    fn user_turn(
        &mut self,
        blocks: &[ContentBlock],
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        let mut parts = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let path = format!("{path}.content.{j}");
            self.count_cache_control(b);
            match b {
                ContentBlock::ToolResult(r) => {
                    let (msg, moved) = self.tool_result(r, &path)?;
                    out.push(msg);
                    parts.extend(moved);
                }
                ContentBlock::ToolUse(_) => {
                    return Err(TranslateError::new(
                        path,
                        "tool_use blocks belong in assistant turns",
                    ));
                }
                ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) => {
                    self.drop_thinking(&path);
                }
                other => self.content_part(other, &path, &mut parts)?,
            }
        }
        if let Some(content) = collapse(parts) {
            out.push(ChatMessage {
                content: Some(content),
                ..ChatMessage::text(Role::User, "")
            });
        }
        Ok(())
    }

    /// A text, image or document block (or an unknown block, dropped) as content parts.
    fn content_part(
        &mut self,
        block: &ContentBlock,
        path: &str,
        parts: &mut Vec<ContentPart>,
    ) -> Result<(), TranslateError> {
        match block {
            ContentBlock::Text(tb) => {
                if tb.citations.is_some() {
                    self.note(path, "citations dropped");
                }
                parts.push(ContentPart::Text {
                    text: tb.text.clone(),
                });
            }
            ContentBlock::Image(img) => parts.push(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: image_url(&img.source, &format!("{path}.source"))?,
                    detail: None,
                },
            }),
            ContentBlock::Document(doc) => self.document(doc, path, parts)?,
            other => self.note(
                path,
                format!("'{}' block has no OpenAI equivalent; dropped", other.kind()),
            ),
        }
        Ok(())
    }

    /// A document: base64 → `file` part (OpenAI's `file_data`), text or inline content → text.
    fn document(
        &mut self,
        doc: &DocumentBlock,
        path: &str,
        parts: &mut Vec<ContentPart>,
    ) -> Result<(), TranslateError> {
        if doc.citations.is_some() {
            self.note(path, "document citations dropped");
        }
        match &doc.source {
            MediaSource::Base64 { media_type, data } => {
                let filename = doc.title.clone().unwrap_or_else(|| {
                    let ext = media_type.rsplit('/').next().unwrap_or("bin");
                    format!("document.{ext}")
                });
                parts.push(ContentPart::Other(json!({
                    "type": "file",
                    "file": {"filename": filename, "file_data": format!("data:{media_type};base64,{data}")},
                })));
            }
            MediaSource::Text { data, .. } => parts.push(ContentPart::Text { text: data.clone() }),
            MediaSource::Content { content } => match content {
                Content::Text(s) => parts.push(ContentPart::Text { text: s.clone() }),
                Content::Blocks(blocks) => {
                    for (k, b) in blocks.iter().enumerate() {
                        self.content_part(b, &format!("{path}.source.content.{k}"), parts)?;
                    }
                }
            },
            MediaSource::Url { .. } => {
                return Err(TranslateError::new(
                    format!("{path}.source"),
                    "document URLs cannot be sent to an OpenAI-compatible deployment; send the \
                     document as base64",
                ));
            }
            MediaSource::File { .. } | MediaSource::Other(_) => {
                return Err(unsupported_source(&format!("{path}.source")));
            }
        }
        if doc.title.is_some() && !matches!(doc.source, MediaSource::Base64 { .. })
            || doc.context.is_some()
        {
            self.note(path, "document title/context dropped");
        }
        Ok(())
    }

    /// A `tool_result` as a `tool` message, and the parts OpenAI tool messages cannot hold
    /// (images, files), which move to the user message that follows.
    fn tool_result(
        &mut self,
        r: &ToolResultBlock,
        path: &str,
    ) -> Result<(ChatMessage, Vec<ContentPart>), TranslateError> {
        if r.tool_use_id.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.tool_use_id"),
                "tool_result blocks need a tool_use_id",
            ));
        }
        let mut parts = Vec::new();
        match &r.content {
            None => {}
            Some(Content::Text(s)) => parts.push(ContentPart::Text { text: s.clone() }),
            Some(Content::Blocks(blocks)) => {
                for (k, b) in blocks.iter().enumerate() {
                    self.count_cache_control(b);
                    self.content_part(b, &format!("{path}.content.{k}"), &mut parts)?;
                }
            }
        }
        let (texts, moved): (Vec<ContentPart>, Vec<ContentPart>) = parts
            .into_iter()
            .partition(|p| matches!(p, ContentPart::Text { .. }));
        if !moved.is_empty() {
            self.note(
                path,
                format!(
                    "{} image/file part(s) of the tool result moved to the following user \
                     message: OpenAI tool messages hold text only",
                    moved.len()
                ),
            );
        }
        let mut text = collapse(texts).map_or_else(String::new, |c| c.as_text());
        if r.is_error == Some(true) {
            text.insert_str(0, TOOL_ERROR_PREFIX);
        }
        let msg = ChatMessage {
            tool_call_id: Some(r.tool_use_id.clone()),
            ..ChatMessage::text(Role::Tool, text)
        };
        Ok((msg, moved))
    }

    fn assistant_turn(
        &mut self,
        blocks: &[ContentBlock],
        path: &str,
        out: &mut Vec<ChatMessage>,
    ) -> Result<(), TranslateError> {
        let mut texts = Vec::new();
        let mut calls = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let path = format!("{path}.content.{j}");
            self.count_cache_control(b);
            match b {
                ContentBlock::Text(tb) => texts.push(ContentPart::Text {
                    text: tb.text.clone(),
                }),
                ContentBlock::ToolUse(tu) => calls.push(self.tool_call(tu, &path)?),
                ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) => {
                    self.drop_thinking(&path);
                }
                ContentBlock::ToolResult(_) => {
                    return Err(TranslateError::new(
                        path,
                        "tool_result blocks belong in user turns",
                    ));
                }
                other => self.note(
                    path,
                    format!(
                        "'{}' block in an assistant turn has no OpenAI equivalent; dropped",
                        other.kind()
                    ),
                ),
            }
        }
        let content = collapse(texts);
        if content.is_none() && calls.is_empty() {
            return Ok(());
        }
        out.push(ChatMessage {
            role: Role::Assistant,
            content,
            name: None,
            tool_calls: (!calls.is_empty()).then_some(calls),
            tool_call_id: None,
            extra: Map::new(),
        });
        Ok(())
    }

    fn tool_call(&mut self, tu: &ToolUseBlock, path: &str) -> Result<ToolCall, TranslateError> {
        if tu.id.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.id"),
                "tool_use blocks need an id",
            ));
        }
        if tu.name.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.name"),
                "tool_use blocks need a name",
            ));
        }
        let arguments = if tu.input.is_null() {
            "{}".to_string()
        } else {
            tu.input.to_string()
        };
        Ok(ToolCall {
            index: None,
            id: Some(tu.id.clone()),
            kind: Some("function".into()),
            function: FunctionCall {
                name: Some(self.names.register(&tu.name)),
                arguments,
            },
        })
    }

    fn tools(&mut self, tools: Option<&[ToolDefinition]>) -> Result<Vec<Tool>, TranslateError> {
        let mut out = Vec::new();
        for (i, tool) in tools.unwrap_or_default().iter().enumerate() {
            let path = format!("tools.{i}");
            match tool {
                ToolDefinition::Custom(ct) => out.push(self.function_tool(ct, &path)?),
                ToolDefinition::Other(v) => {
                    let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                    let name = tool.name().unwrap_or("unnamed");
                    self.note(
                        path,
                        format!(
                            "tool '{name}' of type '{kind}' runs on Anthropic's side (or has an \
                             Anthropic-defined schema) and has no OpenAI equivalent; dropped"
                        ),
                    );
                }
            }
        }
        Ok(out)
    }

    fn function_tool(&mut self, ct: &CustomTool, path: &str) -> Result<Tool, TranslateError> {
        if ct.name.is_empty() {
            return Err(TranslateError::new(
                format!("{path}.name"),
                "tools need a name",
            ));
        }
        if ct.cache_control.is_some() {
            self.cache_controls += 1;
        }
        let mut extra = Map::new();
        let mut dropped = Vec::new();
        for (k, v) in &ct.extra {
            if k == "strict" {
                extra.insert(k.clone(), v.clone());
            } else {
                dropped.push(k.as_str());
            }
        }
        if !dropped.is_empty() {
            self.note(path, format!("tool fields dropped: {}", dropped.join(", ")));
        }
        Ok(Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: self.names.register(&ct.name),
                description: ct.description.clone(),
                parameters: Some(ct.input_schema.clone()),
                extra,
            },
        })
    }

    /// `tool_choice`: auto → `auto`, any → `required`, tool → the named function, none →
    /// `none`; `disable_parallel_tool_use` → `parallel_tool_calls: false`. Dropped (noted) when
    /// no function tool is left or the named tool is not one.
    fn tool_choice(
        &mut self,
        choice: Option<&ToolChoice>,
        tools: &[Tool],
        extra: &mut Map<String, Value>,
    ) -> Option<Value> {
        let choice = choice?;
        if tools.is_empty() {
            self.note(
                "tool_choice",
                "no function tools to choose from after translation; dropped",
            );
            return None;
        }
        if choice.disable_parallel_tool_use() {
            extra.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
        Some(match choice {
            ToolChoice::Auto { .. } => json!("auto"),
            ToolChoice::Any { .. } => json!("required"),
            ToolChoice::None {} => json!("none"),
            ToolChoice::Tool { name, .. } => {
                let openai = crate::anthropic::names::openai_tool_name(name);
                if !tools.iter().any(|t| t.function.name == openai) {
                    self.note(
                        "tool_choice.name",
                        format!("'{name}' is not a function tool of this request; dropped"),
                    );
                    return None;
                }
                json!({"type": "function", "function": {"name": openai}})
            }
        })
    }

    /// `thinking` → `reasoning_effort`: enabled → by budget ([`reasoning_effort_for_budget`]);
    /// adaptive → `output_config.effort` (`max` → `high`) or `medium`, as LiteLLM; disabled →
    /// nothing.
    fn reasoning_effort(&mut self, req: &MessagesRequest) -> Option<&'static str> {
        match req.thinking.as_ref()? {
            ThinkingConfig::Enabled(e) => Some(reasoning_effort_for_budget(e.budget_tokens)),
            ThinkingConfig::Adaptive(_) => {
                let effort = req
                    .extra
                    .get("output_config")
                    .and_then(|c| c.get("effort"))
                    .and_then(Value::as_str);
                Some(match effort {
                    Some("low" | "minimal") => "low",
                    Some("high" | "xhigh" | "max") => "high",
                    _ => "medium",
                })
            }
            ThinkingConfig::Disabled(_) => None,
            ThinkingConfig::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                self.note(
                    "thinking",
                    format!("thinking type '{kind}' not understood; dropped"),
                );
                None
            }
        }
    }

    /// Top-level fields OpenAI has no name for: `output_format`/`output_config.format` →
    /// `response_format`; the rest dropped with a note.
    fn other_fields(&mut self, req: &MessagesRequest, extra: &mut Map<String, Value>) {
        let format = req
            .extra
            .get("output_format")
            .or_else(|| req.extra.get("output_config").and_then(|c| c.get("format")));
        if let Some(format) = format {
            match (
                format.get("type").and_then(Value::as_str),
                format.get("schema"),
            ) {
                (Some("json_schema"), Some(schema)) => {
                    extra.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": {"name": "structured_output", "schema": schema}}),
                    );
                }
                _ => self.note("output_format", "output format not understood; dropped"),
            }
        }
        let mut dropped = Vec::new();
        for (key, value) in &req.extra {
            match key.as_str() {
                "output_format" => {}
                "output_config" => {
                    let rest: Vec<&str> = value
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.keys())
                        .map(String::as_str)
                        .filter(|k| *k != "format" && *k != "effort")
                        .collect();
                    if !rest.is_empty() {
                        dropped.push(format!("output_config.{{{}}}", rest.join(",")));
                    }
                }
                _ => dropped.push(key.clone()),
            }
        }
        if !dropped.is_empty() {
            self.note(
                "request",
                format!("Anthropic-only fields dropped: {}", dropped.join(", ")),
            );
        }
    }
}

/// Parts as message content: `None` when empty, a string when all text (joined by `\n`),
/// else the parts.
fn collapse(parts: Vec<ContentPart>) -> Option<MessageContent> {
    if parts.is_empty() {
        return None;
    }
    if parts.iter().all(|p| matches!(p, ContentPart::Text { .. })) {
        return Some(MessageContent::Text(MessageContent::Parts(parts).as_text()));
    }
    Some(MessageContent::Parts(parts))
}

/// An image source as an `image_url` URL: base64 → `data:` URL, URL → as is.
fn image_url(source: &MediaSource, path: &str) -> Result<String, TranslateError> {
    match source {
        MediaSource::Base64 { media_type, data } => Ok(format!("data:{media_type};base64,{data}")),
        MediaSource::Url { url } => Ok(url.clone()),
        MediaSource::Text { .. } | MediaSource::Content { .. } => Err(TranslateError::new(
            path,
            "image sources must be base64 or url",
        )),
        MediaSource::File { .. } | MediaSource::Other(_) => Err(unsupported_source(path)),
    }
}

fn unsupported_source(path: &str) -> TranslateError {
    TranslateError::new(
        path,
        "this source type (e.g. a Files API file_id) cannot be sent to an OpenAI-compatible \
         deployment; send the content as base64",
    )
}

fn keys(map: &Map<String, Value>) -> String {
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A rough count of a request's prompt tokens (≈4 characters per token over the system
/// prompt, message text, tool inputs and results, and tool definitions), for `count_tokens`
/// against deployments that have no such endpoint and for `message_start` when the upstream
/// reports usage only at the end.
pub fn estimate_input_tokens(req: &super::types::CountTokensRequest) -> u64 {
    estimate_prompt_tokens(req.system.as_ref(), &req.messages, req.tools.as_deref())
}

/// [`estimate_input_tokens`] of a Messages request (without copying it into a
/// [`CountTokensRequest`](super::types::CountTokensRequest)).
pub fn estimate_request_tokens(req: &MessagesRequest) -> u64 {
    estimate_prompt_tokens(req.system.as_ref(), &req.messages, req.tools.as_deref())
}

fn estimate_prompt_tokens(
    system: Option<&SystemPrompt>,
    messages: &[InputMessage],
    tools: Option<&[ToolDefinition]>,
) -> u64 {
    let mut chars = 0usize;
    match system {
        Some(SystemPrompt::Text(s)) => chars += s.chars().count(),
        Some(SystemPrompt::Blocks(blocks)) => chars += blocks_chars(blocks),
        None => {}
    }
    for m in messages {
        chars += match &m.content {
            Content::Text(s) => s.chars().count(),
            Content::Blocks(blocks) => blocks_chars(blocks),
        };
    }
    for tool in tools.unwrap_or_default() {
        chars += match tool {
            ToolDefinition::Custom(ct) => {
                ct.name.chars().count()
                    + ct.description.as_deref().map_or(0, |d| d.chars().count())
                    + ct.input_schema.to_string().chars().count()
            }
            ToolDefinition::Other(v) => v.to_string().chars().count(),
        };
    }
    crate::openai::estimate_tokens_of_chars(chars)
}

fn blocks_chars(blocks: &[ContentBlock]) -> usize {
    blocks
        .iter()
        .map(|b| match b {
            ContentBlock::Text(tb) => tb.text.chars().count(),
            ContentBlock::ToolUse(tu) => tu.name.chars().count() + tu.input.to_string().len(),
            ContentBlock::ToolResult(r) => match &r.content {
                Some(Content::Text(s)) => s.chars().count(),
                Some(Content::Blocks(inner)) => blocks_chars(inner),
                None => 0,
            },
            ContentBlock::Thinking(tb) => tb.thinking.chars().count(),
            ContentBlock::Document(DocumentBlock {
                source: MediaSource::Text { data, .. },
                ..
            }) => data.chars().count(),
            // Images are billed by pixels, not by their encoding; count a typical image.
            ContentBlock::Image(_) => 1600 * 4,
            ContentBlock::Document(_)
            | ContentBlock::RedactedThinking(_)
            | ContentBlock::Other(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::types::MessagesRequest;
    use serde_json::json;

    fn translate(v: Value) -> ToOpenAi {
        let req: MessagesRequest = serde_json::from_value(v).unwrap();
        to_openai(&req).unwrap()
    }

    fn translate_err(v: Value) -> TranslateError {
        let req: MessagesRequest = serde_json::from_value(v).unwrap();
        to_openai(&req).unwrap_err()
    }

    fn wire(t: &ToOpenAi) -> Value {
        serde_json::to_value(&t.request).unwrap()
    }

    fn has_note(t: &ToOpenAi, path: &str, needle: &str) -> bool {
        t.notes
            .iter()
            .any(|n| n.path == path && n.message.contains(needle))
    }

    /// A request shaped like Claude Code's: system blocks with cache_control, many tools (the
    /// last with cache_control, one MCP tool with a long name, one server tool), thinking, a
    /// tool_use/tool_result exchange, metadata.user_id, stream: true.
    fn claude_code_request() -> Value {
        serde_json::from_str(include_str!(
            "../../tests/data/anthropic/claude_code_request.json"
        ))
        .unwrap()
    }

    #[test]
    fn claude_code_request_translates() {
        let t = translate(claude_code_request());
        let w = wire(&t);
        assert_eq!(w["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(w["stream"], true);
        assert_eq!(w["stream_options"], json!({"include_usage": true}));
        assert_eq!(w["max_tokens"], 32000);
        assert_eq!(w["temperature"], 1.0);
        assert_eq!(w["user"], "user_abc123_account_42_session_7f");
        assert_eq!(w["reasoning_effort"], "high");
        assert!(w.get("thinking").is_none());
        assert!(w.get("metadata").is_none());

        let msgs = w["messages"].as_array().unwrap();
        assert_eq!(msgs[0]["role"], "system");
        assert_eq!(
            msgs[0]["content"],
            "You are Claude Code, Anthropic's official CLI for Claude.\nYou are an interactive CLI tool that helps users with software engineering tasks."
        );
        // user (reminder + text joined), assistant (thinking dropped, text + tool call),
        // tool result, then the user's follow-up text.
        assert_eq!(msgs[1]["role"], "user");
        assert_eq!(
            msgs[1]["content"],
            "<system-reminder>\nThis is a reminder.\n</system-reminder>\nWhat is in src/main.rs?"
        );
        assert_eq!(msgs[2]["role"], "assistant");
        assert_eq!(msgs[2]["content"], "Let me read it.");
        let call = &msgs[2]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_01A");
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "Read");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"file_path": "/repo/src/main.rs"}));
        assert_eq!(msgs[3]["role"], "tool");
        assert_eq!(msgs[3]["tool_call_id"], "toolu_01A");
        assert_eq!(msgs[3]["content"], "fn main() {}");
        assert_eq!(msgs[4]["role"], "user");
        assert_eq!(msgs[4]["content"], "Explain it.");
        assert_eq!(msgs.len(), 5);

        let tools = w["tools"].as_array().unwrap();
        // Read, Bash, Edit, the MCP tool; web_search (a server tool) dropped.
        assert_eq!(tools.len(), 4);
        assert_eq!(tools[0]["type"], "function");
        assert_eq!(tools[0]["function"]["name"], "Read");
        assert_eq!(
            tools[0]["function"]["parameters"]["required"],
            json!(["file_path"])
        );
        let mcp = tools[3]["function"]["name"].as_str().unwrap();
        assert!(mcp.len() <= 64);
        assert_eq!(
            t.context.tool_names.original(mcp),
            "mcp__internal-knowledge-base__search_documents_by_semantic_similarity_with_filters"
        );
        assert!(has_note(&t, "tools.4", "web_search"));
        assert!(has_note(&t, "cache_control", "4 cache_control"));
        assert!(has_note(&t, "messages.1.content.0", "1 thinking"));
        assert!(w.get("tool_choice").is_none());
    }

    #[test]
    fn tool_results_come_first_in_order_with_errors_and_images() {
        let t = translate(json!({
            "model": "m", "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "a", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "b", "input": null}
                ]},
                {"role": "user", "content": [
                    {"type": "text", "text": "here you go"},
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": true},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [
                        {"type": "text", "text": "line 1"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                        {"type": "text", "text": "line 2"}
                    ]}
                ]}
            ]
        }));
        let w = wire(&t);
        let msgs = w["messages"].as_array().unwrap();
        assert_eq!(msgs[1]["tool_calls"][1]["function"]["arguments"], "{}");
        assert!(msgs[1].get("content").is_none());
        assert_eq!(
            msgs[2],
            json!({"role": "tool", "tool_call_id": "t1", "content": "Error: boom"})
        );
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "t2", "content": "line 1\nline 2"})
        );
        assert_eq!(msgs[4]["role"], "user");
        assert_eq!(
            msgs[4]["content"],
            json!([
                {"type": "text", "text": "here you go"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}
            ])
        );
        assert!(has_note(&t, "messages.2.content.2", "moved"));
    }

    #[test]
    fn images_and_documents_become_parts() {
        let t = translate(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}, "title": "spec.pdf"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inline doc"}]}},
                {"type": "search_result", "source": "s", "title": "t", "content": []}
            ]}]
        }));
        let w = wire(&t);
        assert_eq!(
            w["messages"][0]["content"],
            json!([
                {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBER"}},
                {"type": "text", "text": "plain doc"},
                {"type": "text", "text": "inline doc"}
            ])
        );
        assert!(has_note(&t, "messages.0.content.4", "search_result"));
        assert!(w.get("max_tokens").is_none());
    }

    #[test]
    fn unsendable_sources_are_errors_with_paths() {
        let e = translate_err(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "x"},
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
            ]}]}),
        );
        assert_eq!(e.path, "messages.0.content.1.source");
        let e = translate_err(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
            ]}]}),
        );
        assert_eq!(e.path, "messages.0.content.0.source");
        assert!(e.to_string().starts_with("messages.0.content.0.source: "));
        let body = serde_json::to_value(e.to_error_response()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let cases = [
            (json!([]), "messages"),
            (
                json!([{"role": "assistant", "content": [{"type": "tool_use", "name": "x", "input": {}}]}]),
                "messages.0.content.0.id",
            ),
            (
                json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}]),
                "messages.0.content.0.name",
            ),
            (
                json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]),
                "messages.1.content.0",
            ),
            (
                json!([{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}]),
                "messages.0.content.0",
            ),
            (
                json!([{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
                "messages.0.content.0.tool_use_id",
            ),
        ];
        for (messages, path) in cases {
            let e = translate_err(json!({"model": "m", "messages": messages}));
            assert_eq!(e.path, path, "{e}");
        }
        let e = translate_err(
            json!({"model": "m", "system": [{"type": "image", "source": {"type": "url", "url": "u"}}], "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(e.path, "system.0");
    }

    #[test]
    fn tool_choice_mapping() {
        let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search"}]);
        let choice = |tc: Value| {
            let t = translate(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": tc}),
            );
            let w = wire(&t);
            (
                w["tool_choice"].clone(),
                w.get("parallel_tool_calls").cloned(),
                t,
            )
        };
        assert_eq!(choice(json!({"type": "auto"})).0, "auto");
        assert_eq!(choice(json!({"type": "any"})).0, "required");
        assert_eq!(choice(json!({"type": "none"})).0, "none");
        let (tc, parallel, _) = choice(
            json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}),
        );
        assert_eq!(
            tc,
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(parallel, Some(Value::Bool(false)));
        assert_eq!(choice(json!({"type": "auto"})).1, None);
        let (tc, _, t) = choice(json!({"type": "tool", "name": "web_search"}));
        assert!(tc.is_null());
        assert!(has_note(&t, "tool_choice.name", "web_search"));

        // No tools left: tool_choice dropped.
        let t = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "any"}}),
        );
        assert!(wire(&t).get("tool_choice").is_none());
        assert!(has_note(&t, "tool_choice", "no function tools"));
    }

    #[test]
    fn thinking_budgets_map_to_reasoning_effort() {
        assert_eq!(reasoning_effort_for_budget(1024), "low");
        assert_eq!(reasoning_effort_for_budget(2047), "low");
        assert_eq!(reasoning_effort_for_budget(2048), "medium");
        assert_eq!(reasoning_effort_for_budget(4095), "medium");
        assert_eq!(reasoning_effort_for_budget(4096), "high");
        assert_eq!(reasoning_effort_for_budget(31999), "high");
        let effort = |thinking: Value, extra: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": thinking});
            if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            wire(&translate(body)).get("reasoning_effort").cloned()
        };
        assert_eq!(
            effort(json!({"type": "enabled", "budget_tokens": 3000}), json!({})),
            Some(json!("medium"))
        );
        assert_eq!(effort(json!({"type": "disabled"}), json!({})), None);
        assert_eq!(
            effort(json!({"type": "adaptive"}), json!({})),
            Some(json!("medium"))
        );
        assert_eq!(
            effort(
                json!({"type": "adaptive"}),
                json!({"output_config": {"effort": "max"}})
            ),
            Some(json!("high"))
        );
    }

    #[test]
    fn sampling_and_unknown_fields() {
        let t = translate(json!({
            "model": "m", "max_tokens": 5, "top_p": 0.5, "top_k": 40,
            "stop_sequences": ["END", "STOP"],
            "metadata": {"user_id": "u", "trace": "t"},
            "service_tier": "auto", "container": "c",
            "output_format": {"type": "json_schema", "schema": {"type": "object"}},
            "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "Sure:"}]
        }));
        let w = wire(&t);
        assert_eq!(w["stop"], json!(["END", "STOP"]));
        assert_eq!(w["top_p"], 0.5);
        assert_eq!(w["user"], "u");
        assert!(w.get("top_k").is_none());
        assert!(w.get("service_tier").is_none());
        assert!(w.get("container").is_none());
        assert!(w.get("stream_options").is_none());
        assert_eq!(
            w["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "structured_output", "schema": {"type": "object"}}})
        );
        assert_eq!(
            w["messages"][1],
            json!({"role": "assistant", "content": "Sure:"})
        );
        assert!(has_note(&t, "top_k", "top_k"));
        assert!(has_note(&t, "metadata", "trace"));
        assert!(has_note(&t, "request", "container, service_tier"));
        assert!(has_note(&t, "messages.1", "prefill"));
    }

    #[test]
    fn input_token_estimate_counts_text_tools_and_results() {
        let req: MessagesRequest = serde_json::from_value(claude_code_request()).unwrap();
        let count = super::super::types::CountTokensRequest::from(&req);
        let estimate = estimate_input_tokens(&count);
        assert_eq!(estimate_request_tokens(&req), estimate);
        let floor = serde_json::to_string(&req.messages).unwrap().len() as u64 / 8;
        assert!(estimate > floor, "{estimate} <= {floor}");
        let empty: super::super::types::CountTokensRequest = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": ""}]}),
        )
        .unwrap();
        assert_eq!(estimate_input_tokens(&empty), 1);
    }
}
