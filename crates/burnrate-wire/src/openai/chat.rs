//! OpenAI chat completions (`POST /v1/chat/completions`): usage and tool calls from a response
//! body or from a stream's chunks.
//!
//! Usage: `prompt_tokens` (cache reads and writes included) → input, `prompt_tokens_details.
//! cached_tokens` → cache reads, `prompt_tokens_details.cache_write_tokens` → cache writes,
//! `completion_tokens` → output, `completion_tokens_details.reasoning_tokens` → reasoning.
//! A stream carries usage only in its last chunk (`"choices": []`), and only when the request
//! set `stream_options.include_usage`.
//!
//! Tool calls: `choices[].message.tool_calls[]` (`function` or `custom`) and the older
//! `message.function_call`; in a stream, `delta.tool_calls[]` fragments joined by index.

use std::borrow::Cow;

use burnrate_model::Usage;
use serde::Deserialize;
use serde_json::Value;

use super::ErrorObject;
use crate::request::parse_json;
use crate::stream::Step;
use crate::tools::{self, PendingTools, Text, text_field};
use crate::{Metered, WireError};

/// Reads usage and tool calls from a chat completion body.
pub fn meter_chat(body: &[u8]) -> Result<Metered, WireError> {
    let response: ChatResponse<'_> = parse_json(body, "", |_| None)?;
    let mut tools = Vec::new();
    for choice in response.choices.iter().flatten() {
        if let Some(message) = &choice.message {
            message.collect_tools(&mut tools);
        }
    }
    Ok(Metered {
        model: text_field(response.model.as_deref()),
        usage: response.usage.map(ChatUsage::normalise).unwrap_or_default(),
        usage_seen: response.usage.is_some(),
        tool_calls: tools::count(tools.len()),
        tools,
        service_tier: text_field(response.service_tier.as_deref()),
    })
}

/// A chat completion body: only the fields metering reads.
#[derive(Deserialize)]
struct ChatResponse<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
    usage: Option<ChatUsage>,
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
}

/// Chat usage as OpenAI reports it.
#[derive(Debug, Clone, Copy, Deserialize)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    fn normalise(self) -> Usage {
        let prompt = self.prompt_tokens_details;
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            cache_read_tokens: prompt.and_then(|p| p.cached_tokens).unwrap_or(0),
            cache_write_tokens: prompt.and_then(|p| p.cache_write_tokens).unwrap_or(0),
            cache_write_1h_tokens: 0,
            output_tokens: self.completion_tokens.unwrap_or(0),
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|c| c.reasoning_tokens)
                .unwrap_or(0),
        }
        .fitted()
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    index: Option<u32>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    #[serde(borrow)]
    delta: Option<Message<'a>>,
}

/// A choice's `message`, or a stream chunk's `delta` (same fields, in fragments).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallEntry<'a>>>,
    #[serde(borrow)]
    function_call: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct ToolCallEntry<'a> {
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Text<'a>,
    #[serde(borrow)]
    function: Option<Function<'a>>,
    #[serde(borrow)]
    custom: Option<Custom<'a>>,
}

/// `{"name", "arguments"}`; `arguments` is JSON text (some compatible servers send an object).
#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    arguments: Option<Value>,
}

/// A custom tool call: `{"name", "input"}` with free-form text input.
#[derive(Deserialize)]
struct Custom<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    input: Option<Value>,
}

impl Message<'_> {
    fn collect_tools(&self, tools: &mut Vec<burnrate_model::ToolCall>) {
        let empty = Value::String(String::new());
        for entry in self.tool_calls.iter().flatten() {
            let (name, arguments) = match (&entry.function, &entry.custom) {
                (Some(f), _) => (f.name.as_str(), f.arguments.as_ref()),
                (None, Some(c)) => (c.name.as_str(), c.input.as_ref()),
                (None, None) => ("", None),
            };
            if tools.len() < tools::MAX_TOOLS {
                tools.push(tools::tool_call_value(name, arguments.unwrap_or(&empty)));
            }
        }
        let room = tools.len() < tools::MAX_TOOLS;
        if let Some(f) = self.function_call.as_ref().filter(|_| room) {
            let arguments = f.arguments.as_ref().unwrap_or(&empty);
            tools.push(tools::tool_call_value(f.name.as_str(), arguments));
        }
    }
}

/// What a chat stream said so far.
#[derive(Debug, Default)]
pub(crate) struct ChatStream {
    model: Option<String>,
    service_tier: Option<String>,
    usage: Option<Usage>,
    tools: PendingTools,
}

/// One chunk of a chat stream.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
    usage: Option<ChatUsage>,
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(borrow)]
    error: Option<ErrorObject<'a>>,
}

/// Index under which the older `delta.function_call` fragments are joined.
const FUNCTION_CALL_INDEX: u32 = u32::MAX;

impl ChatStream {
    /// Reads one `data:` payload of the stream.
    pub(crate) fn on_data(&mut self, data: &str) -> Result<Step, WireError> {
        if data.trim() == "[DONE]" {
            return Ok(Step::terminal());
        }
        let chunk: Chunk<'_> = parse_json(data.as_bytes(), "chunk", |_| None)?;
        if let Some(error) = &chunk.error {
            return Ok(Step::upstream(error.to_wire()));
        }
        if self.model.is_none() {
            self.model = text_field(chunk.model.as_deref());
        }
        if let Some(tier) = text_field(chunk.service_tier.as_deref()) {
            self.service_tier = Some(tier);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.normalise());
        }
        for choice in chunk.choices.iter().flatten() {
            self.read_delta(choice);
        }
        let no_choices = chunk.choices.as_ref().is_none_or(Vec::is_empty);
        Ok(Step {
            usage_only: no_choices && chunk.usage.is_some(),
            ..Step::default()
        })
    }

    fn read_delta(&mut self, choice: &Choice<'_>) {
        let Some(delta) = &choice.delta else { return };
        let choice_index = choice.index.unwrap_or(0);
        for (position, entry) in delta.tool_calls.iter().flatten().enumerate() {
            let index = entry.index.unwrap_or(tools::count(position));
            let (name, args) = match (&entry.function, &entry.custom) {
                (Some(f), _) => (f.name.0.as_deref(), f.arguments.as_ref()),
                (None, Some(c)) => (c.name.0.as_deref(), c.input.as_ref()),
                (None, None) => (None, None),
            };
            let args = args.map(fragment_text);
            let key = (choice_index, index);
            self.tools
                .fragment(key, entry.id.0.as_deref(), name, args.as_deref());
        }
        if let Some(f) = &delta.function_call {
            let args = f.arguments.as_ref().map(fragment_text);
            let key = (choice_index, FUNCTION_CALL_INDEX);
            self.tools
                .fragment(key, None, f.name.0.as_deref(), args.as_deref());
        }
    }

    /// What the stream said so far.
    pub(crate) fn metered(&self) -> Metered {
        let (tool_calls, tools) = self.tools.finish();
        Metered {
            model: self.model.clone(),
            usage: self.usage.unwrap_or_default(),
            usage_seen: self.usage.is_some(),
            tool_calls,
            tools,
            service_tier: self.service_tier.clone(),
        }
    }
}

/// An arguments fragment as text: a string as it is, anything else as its JSON.
fn fragment_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}
