//! OpenAI Responses (`POST /v1/responses`): usage and tool calls from a response object or
//! from a stream's events.
//!
//! Usage: `input_tokens` (cache reads included) → input, `input_tokens_details.cached_tokens`
//! → cache reads, `output_tokens` → output, `output_tokens_details.reasoning_tokens` →
//! reasoning. A stream carries usage in `response.completed` (or `response.incomplete` /
//! `response.failed`) → `response.usage`; it is null in the earlier events.
//!
//! Tool calls: `output[]` items of type `function_call` and `custom_tool_call`, the calls the
//! client must run. Provider-run tools (`web_search_call`, `code_interpreter_call`,
//! `file_search_call`, `mcp_call`, ...) are not counted. A stream's calls come from the final
//! response's `output`, or, when the stream stops before it, from `response.output_item.done`.

use std::borrow::Cow;

use burnrate_model::{ToolCall, Usage};
use serde::Deserialize;
use serde_json::Value;

use super::{ErrorObject, upstream_error};
use crate::request::parse_json;
use crate::stream::Step;
use crate::tools::{self, Text, text_field};
use crate::{Metered, WireError};

/// Reads usage and tool calls from a Responses body (the response object).
pub fn meter_responses(body: &[u8]) -> Result<Metered, WireError> {
    let response: ResponseObject<'_> = parse_json(body, "", |_| None)?;
    Ok(response.metered())
}

/// A response object: only the fields metering reads.
#[derive(Deserialize)]
struct ResponseObject<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
    usage: Option<ResponsesUsage>,
    #[serde(borrow)]
    output: Option<Vec<OutputItem<'a>>>,
    #[serde(borrow)]
    error: Option<ErrorObject<'a>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    input_tokens_details: Option<InputDetails>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

impl ResponsesUsage {
    fn normalise(self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            cache_read_tokens: self
                .input_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            output_tokens: self.output_tokens.unwrap_or(0),
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
        .fitted()
    }
}

/// One `output[]` item; fields read leniently, as their shapes differ between item types.
#[derive(Deserialize)]
struct OutputItem<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    arguments: Option<Value>,
    input: Option<Value>,
}

impl OutputItem<'_> {
    /// The call the client must run, for `function_call` and `custom_tool_call` items.
    fn tool_call(&self) -> Option<ToolCall> {
        let arguments = match self.kind.as_str() {
            "function_call" => self.arguments.as_ref(),
            "custom_tool_call" => self.input.as_ref(),
            _ => return None,
        };
        let empty = Value::String(String::new());
        Some(tools::tool_call_value(
            self.name.as_str(),
            arguments.unwrap_or(&empty),
        ))
    }
}

impl ResponseObject<'_> {
    /// Tool calls of the output, and how many there were.
    fn tools(&self) -> (u32, Vec<ToolCall>) {
        let calls = self
            .output
            .iter()
            .flatten()
            .filter_map(OutputItem::tool_call);
        let mut count = 0usize;
        let mut tools = Vec::new();
        for call in calls {
            count += 1;
            if tools.len() < tools::MAX_TOOLS {
                tools.push(call);
            }
        }
        (tools::count(count), tools)
    }

    fn metered(&self) -> Metered {
        let (tool_calls, tools) = self.tools();
        Metered {
            model: text_field(self.model.as_deref()),
            usage: self
                .usage
                .map(ResponsesUsage::normalise)
                .unwrap_or_default(),
            usage_seen: self.usage.is_some(),
            tool_calls,
            tools,
            service_tier: text_field(self.service_tier.as_deref()),
        }
    }
}

/// One event of a Responses stream: only the fields metering reads.
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    response: Option<ResponseObject<'a>>,
    #[serde(borrow)]
    item: Option<OutputItem<'a>>,
    #[serde(borrow, default)]
    code: Text<'a>,
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(borrow)]
    error: Option<ErrorObject<'a>>,
}

/// What a Responses stream said so far.
#[derive(Debug, Default)]
pub(crate) struct ResponsesStream {
    model: Option<String>,
    service_tier: Option<String>,
    usage: Option<Usage>,
    /// Calls from `response.output_item.done`, until the final response replaces them.
    items: Vec<ToolCall>,
    item_count: u32,
    /// Calls from the final response's `output`.
    last: Option<(u32, Vec<ToolCall>)>,
}

/// Whether metering needs to read an event of this type.
fn wanted(kind: &str) -> bool {
    matches!(
        kind,
        "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.output_item.done"
            | "response.completed"
            | "response.incomplete"
            | "response.failed"
            | "error"
    )
}

impl ResponsesStream {
    /// Reads one event; `name` is its `event:` field (may be empty: the data's `type` is used).
    pub(crate) fn on_event(&mut self, name: &str, data: &str) -> Result<Step, WireError> {
        if !name.is_empty() && !wanted(name) {
            return Ok(Step::default());
        }
        let field = if name.is_empty() { "event" } else { name };
        let event: StreamEvent<'_> = parse_json(data.as_bytes(), field, |_| None)?;
        let kind = if name.is_empty() {
            event.kind.as_str()
        } else {
            name
        };
        match kind {
            "response.output_item.done" => {
                if let Some(call) = event.item.as_ref().and_then(OutputItem::tool_call) {
                    self.item_count = self.item_count.saturating_add(1);
                    if self.items.len() < tools::MAX_TOOLS {
                        self.items.push(call);
                    }
                }
                Ok(Step::default())
            }
            "error" => {
                let error = match &event.error {
                    Some(error) => error.to_wire(),
                    None => upstream_error(event.code.0.as_deref(), event.message.as_str()),
                };
                Ok(Step::upstream(error))
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let mut step = Step::terminal();
                if let Some(response) = &event.response {
                    self.read_response(response, true);
                    if kind == "response.failed" {
                        let error = response.error.as_ref().map(ErrorObject::to_wire);
                        step.upstream = Some(
                            error.unwrap_or_else(|| upstream_error(Some("response.failed"), "")),
                        );
                    }
                }
                Ok(step)
            }
            _ => {
                if let Some(response) = &event.response {
                    self.read_response(response, false);
                }
                Ok(Step::default())
            }
        }
    }

    fn read_response(&mut self, response: &ResponseObject<'_>, last: bool) {
        if let Some(model) = text_field(response.model.as_deref()) {
            self.model = Some(model);
        }
        if let Some(tier) = text_field(response.service_tier.as_deref()) {
            self.service_tier = Some(tier);
        }
        if let Some(usage) = response.usage {
            self.usage = Some(usage.normalise());
        }
        if last && response.output.is_some() {
            self.last = Some(response.tools());
        }
    }

    /// What the stream said so far.
    pub(crate) fn metered(&self) -> Metered {
        let (tool_calls, tools) = match &self.last {
            Some((count, tools)) => (*count, tools.clone()),
            None => (self.item_count, self.items.clone()),
        };
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
