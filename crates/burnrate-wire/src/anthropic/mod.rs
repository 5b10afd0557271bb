//! Anthropic messages (`POST /v1/messages`): usage and tool calls from a message body or from
//! a stream's events.
//!
//! Normalisation (DESIGN.md, "The usage event"): Anthropic's `input_tokens` EXCLUDES cache
//! reads and writes, so the event's input is `input_tokens + cache_read_input_tokens +
//! cache_creation_input_tokens`; cache writes are `cache_creation_input_tokens` (or, when only
//! the breakdown is given, `cache_creation.ephemeral_5m_input_tokens + ephemeral_1h_input_tokens`),
//! of which `cache_creation.ephemeral_1h_input_tokens` are 1-hour writes. `output_tokens`
//! includes thinking; reasoning is `output_tokens_details.thinking_tokens` when given, else 0.
//! The service tier is `usage.service_tier`.
//!
//! Tool calls: content blocks of type `tool_use` (name, and a hash of the normalised `input`).
//! Provider-run tools (`server_tool_use` such as web search, `mcp_tool_use`) are not counted.

mod stream;

pub(crate) use stream::MessagesStream;

use std::borrow::Cow;

use burnrate_model::{ToolCall, Usage};
use serde::Deserialize;
use serde_json::Value;

use crate::request::parse_json;
use crate::tools::{self, Text, text_field};
use crate::{Metered, WireError};

/// Reads usage and tool calls from a message body.
pub fn meter_messages(body: &[u8]) -> Result<Metered, WireError> {
    let message: Message<'_> = parse_json(body, "", |_| None)?;
    let mut count = 0usize;
    let mut tools = Vec::new();
    for call in message
        .content
        .iter()
        .flatten()
        .filter_map(Block::tool_call)
    {
        count += 1;
        if tools.len() < tools::MAX_TOOLS {
            tools.push(call);
        }
    }
    let usage = message.usage.as_ref().map(|usage| usage.counts());
    Ok(Metered {
        model: text_field(message.model.as_deref()),
        usage: usage.map(Counts::normalise).unwrap_or_default(),
        usage_seen: usage.is_some(),
        tool_calls: tools::count(count),
        tools,
        service_tier: message
            .usage
            .as_ref()
            .and_then(|usage| text_field(usage.service_tier.as_deref())),
    })
}

/// A message: only the fields metering reads.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<Vec<Block<'a>>>,
    #[serde(borrow)]
    usage: Option<AnthropicUsage<'a>>,
}

/// A content block; fields read leniently, as their shapes differ between block types.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow, default)]
    name: Text<'a>,
    input: Option<Value>,
}

impl Block<'_> {
    /// The call the client must run, for `tool_use` blocks.
    fn tool_call(&self) -> Option<ToolCall> {
        if self.kind.as_str() != "tool_use" {
            return None;
        }
        let empty = Value::Object(serde_json::Map::new());
        Some(tools::tool_call_value(
            self.name.as_str(),
            self.input.as_ref().unwrap_or(&empty),
        ))
    }
}

/// Usage as Anthropic reports it.
#[derive(Deserialize)]
struct AnthropicUsage<'a> {
    input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct OutputDetails {
    thinking_tokens: Option<u64>,
}

impl AnthropicUsage<'_> {
    fn counts(&self) -> Counts {
        let breakdown = self.cache_creation;
        let from_breakdown = breakdown.map(|b| {
            b.ephemeral_5m_input_tokens
                .unwrap_or(0)
                .saturating_add(b.ephemeral_1h_input_tokens.unwrap_or(0))
        });
        Counts {
            input: self.input_tokens,
            cache_read: self.cache_read_input_tokens,
            cache_write: self.cache_creation_input_tokens.or(from_breakdown),
            cache_write_1h: breakdown.and_then(|b| b.ephemeral_1h_input_tokens),
            output: self.output_tokens,
            thinking: self.output_tokens_details.and_then(|d| d.thinking_tokens),
        }
    }
}

/// Anthropic's counts as given, each possibly absent: a stream's `message_delta` repeats only
/// some of them, and later values replace earlier ones ([`Counts::update`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    input: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    cache_write_1h: Option<u64>,
    output: Option<u64>,
    thinking: Option<u64>,
}

impl Counts {
    /// Takes the counts `later` gives, keeping the others (usage in a stream is cumulative).
    fn update(&mut self, later: Counts) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.input, later.input);
        take(&mut self.cache_read, later.cache_read);
        take(&mut self.cache_write, later.cache_write);
        take(&mut self.cache_write_1h, later.cache_write_1h);
        take(&mut self.output, later.output);
        take(&mut self.thinking, later.thinking);
    }

    /// The counts by the event's rule: input includes cache reads and writes.
    fn normalise(self) -> Usage {
        let cache_read = self.cache_read.unwrap_or(0);
        let cache_write = self.cache_write.unwrap_or(0);
        Usage {
            input_tokens: self
                .input
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(cache_write),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            cache_write_1h_tokens: self.cache_write_1h.unwrap_or(0),
            output_tokens: self.output.unwrap_or(0),
            reasoning_tokens: self.thinking.unwrap_or(0),
        }
        .fitted()
    }
}

#[cfg(test)]
mod tests;
