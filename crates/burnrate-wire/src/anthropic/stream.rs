//! An Anthropic messages stream: `message_start` gives the model and the first usage (with the
//! cache-write breakdown), each `message_delta.usage` is cumulative and replaces the counts it
//! repeats (web search grows the input: 2050 in `message_start`, 31772 at the end),
//! `content_block_start` opens `tool_use` blocks whose `input_json_delta.partial_json`
//! fragments are joined, `message_stop` ends the stream and `error` reports a failure.

use burnrate_model::ToolCall;
use memchr::memmem;
use serde::Deserialize;

use super::{AnthropicUsage, Block, Counts, Message};
use crate::openai::ErrorObject;
use crate::request::parse_json;
use crate::stream::Step;
use crate::tools::{PendingTools, Text, text_field};
use crate::{Metered, WireError};

/// What a messages stream said so far.
#[derive(Debug, Default)]
pub(crate) struct MessagesStream {
    model: Option<String>,
    service_tier: Option<String>,
    counts: Option<Counts>,
    tools: PendingTools,
}

/// One event: only the fields metering reads, for all event types at once.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    index: Option<u32>,
    #[serde(borrow)]
    content_block: Option<Block<'a>>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    usage: Option<AnthropicUsage<'a>>,
    #[serde(borrow)]
    error: Option<ErrorObject<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow, default)]
    partial_json: Text<'a>,
}

/// Whether an event must be parsed: text and thinking deltas (most of a stream) and pings
/// carry nothing metering needs.
fn wanted(name: &str, data: &str) -> bool {
    match name {
        "ping" => false,
        "content_block_delta" => memmem::find(data.as_bytes(), b"input_json_delta").is_some(),
        _ => true,
    }
}

impl MessagesStream {
    /// Reads one event; `name` is its `event:` field (may be empty: the data's `type` is used).
    pub(crate) fn on_event(&mut self, name: &str, data: &str) -> Result<Step, WireError> {
        if !wanted(name, data) {
            return Ok(Step::default());
        }
        let field = if name.is_empty() { "event" } else { name };
        let event: Event<'_> = parse_json(data.as_bytes(), field, |_| None)?;
        let kind = if name.is_empty() {
            event.kind.as_str()
        } else {
            name
        };
        match kind {
            "message_start" => {
                if let Some(message) = &event.message {
                    if let Some(model) = text_field(message.model.as_deref()) {
                        self.model = Some(model);
                    }
                    if let Some(usage) = &message.usage {
                        self.read_usage(usage);
                    }
                }
            }
            "message_delta" => {
                if let Some(usage) = &event.usage {
                    self.read_usage(usage);
                }
            }
            "content_block_start" => {
                let tool_use = |block: &&Block<'_>| block.kind.as_str() == "tool_use";
                if let Some(block) = event.content_block.as_ref().filter(tool_use) {
                    let key = (0, event.index.unwrap_or(0));
                    self.tools
                        .start(key, block.name.as_str(), block.input.clone());
                }
            }
            "content_block_delta" => {
                let json_delta = |delta: &&Delta<'_>| delta.kind.as_str() == "input_json_delta";
                if let Some(delta) = event.delta.as_ref().filter(json_delta) {
                    let key = (0, event.index.unwrap_or(0));
                    self.tools.append_args(key, delta.partial_json.as_str());
                }
            }
            "message_stop" => return Ok(Step::terminal()),
            "error" => {
                let error = event.error.unwrap_or_default();
                return Ok(Step::upstream(error.to_wire()));
            }
            _ => {}
        }
        Ok(Step::default())
    }

    fn read_usage(&mut self, usage: &AnthropicUsage<'_>) {
        self.counts
            .get_or_insert_with(Counts::default)
            .update(usage.counts());
        if let Some(tier) = text_field(usage.service_tier.as_deref()) {
            self.service_tier = Some(tier);
        }
    }

    /// What the stream said so far.
    pub(crate) fn metered(&self) -> Metered {
        let (tool_calls, tools): (u32, Vec<ToolCall>) = self.tools.finish();
        Metered {
            model: self.model.clone(),
            usage: self.counts.map(Counts::normalise).unwrap_or_default(),
            usage_seen: self.counts.is_some(),
            tool_calls,
            tools,
            service_tier: self.service_tier.clone(),
        }
    }
}
