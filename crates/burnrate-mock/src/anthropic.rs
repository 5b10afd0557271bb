//! Anthropic Messages: `POST /v1/messages` (JSON and SSE), token counting, models list.

use axum::response::Response;
use serde_json::{Map, Value};

use crate::Call;
use crate::faults::bad_request;
use crate::json::{self, Obj};
use crate::stream::{self, Sse};
use crate::text;
use crate::usage::{self, Output, ToolCall};

/// What a broken Anthropic stream shows in its middle: an event whose JSON is cut short.
const BROKEN_MESSAGES: &[u8] =
    b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n";

/// Tokens per `text_delta` and per `thinking_delta` event.
const TEXT_TOKENS_PER_DELTA: u64 = 3;
const THINKING_TOKENS_PER_DELTA: u64 = 4;

/// The prompt's token classes, Anthropic style: `input` excludes cache reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// Uncached input tokens (`input_tokens`).
    pub input: u64,
    /// `cache_read_input_tokens`.
    pub read: u64,
    /// Cache writes with the 5-minute TTL.
    pub write_5m: u64,
    /// Cache writes with the 1-hour TTL.
    pub write_1h: u64,
}

/// Splits the prompt (tools, then system, then messages) at its cache breakpoints.
///
/// The cached prefix ends at the last block carrying `cache_control` (the whole prompt for a
/// top-level `cache_control`, Anthropic's automatic caching). The mock answers as a warm
/// cache in a running conversation would: the part of that prefix before the last message
/// was cached by earlier turns and is read; the part inside the last message is new and is
/// written, with the TTL of that last breakpoint (`"ttl": "1h"` → 1-hour writes). The rest
/// is uncached input (at least 1). `x-mock-cached-tokens` / `x-mock-cache-write-tokens`
/// replace the read / write counts.
pub(crate) fn prompt(call: &Call, req: &Map<String, Value>) -> Prompt {
    let mut pos = 0u64;
    let mut breakpoint: Option<(u64, bool)> = None;
    let mut mark = |block: &Value, pos: u64| {
        if let Some(cc) = block.get("cache_control").filter(|c| c.is_object()) {
            breakpoint = Some((pos, is_1h(cc)));
        }
    };
    for tool in req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pos += usage::text_bytes(tool);
        mark(tool, pos);
    }
    match req.get("system") {
        Some(Value::Array(blocks)) => {
            for block in blocks {
                pos += usage::text_bytes(block);
                mark(block, pos);
            }
        }
        Some(other) => pos += usage::text_bytes(other),
        None => {}
    }
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut last_start = 0;
    for (i, message) in messages.iter().enumerate() {
        if i + 1 == messages.len() {
            last_start = pos;
        }
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        pos += ("role".len() + role.len() + "content".len()) as u64;
        match message.get("content") {
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    pos += usage::text_bytes(block);
                    mark(block, pos);
                }
            }
            Some(other) => pos += usage::text_bytes(other),
            None => {}
        }
        mark(message, pos);
    }
    if let Some(cc) = req.get("cache_control").filter(|c| c.is_object()) {
        breakpoint = Some((pos, is_1h(cc)));
    }
    let total = usage::tokens(pos).max(1);
    let (prefix_end, ttl_1h) = breakpoint.unwrap_or((0, false));
    let read_bytes = prefix_end.min(last_start);
    let read = usage::tokens(read_bytes);
    let prefix = usage::tokens(prefix_end);
    let write = prefix - read;
    let read = call.controls.cached_tokens.unwrap_or(read);
    let write = call.controls.cache_write_tokens.unwrap_or(write);
    Prompt {
        input: total.saturating_sub(prefix).max(1),
        read,
        write_5m: if ttl_1h { 0 } else { write },
        write_1h: if ttl_1h { write } else { 0 },
    }
}

fn is_1h(cache_control: &Value) -> bool {
    cache_control.get("ttl").and_then(Value::as_str) == Some("1h")
}

/// `POST /v1/messages`.
pub(crate) fn messages(call: &Call, req: &Map<String, Value>) -> Response {
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return bad_request(call.dialect, "model: Field required", call.ids);
    };
    let Some(max_tokens) = req.get("max_tokens").and_then(Value::as_u64) else {
        return bad_request(call.dialect, "max_tokens: Field required", call.ids);
    };
    let Some(messages) = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bad_request(
            call.dialect,
            "messages: at least one message is required",
            call.ids,
        );
    };
    let prompt = prompt(call, req);
    let thinking_enabled = usage::thinking_tokens(req.get("thinking")) > 0;
    let tool = anthropic_tool(call, req, messages);
    let out = usage::plan_output(
        &call.controls,
        tool.as_ref(),
        usage::thinking_tokens(req.get("thinking")),
        Some(max_tokens),
    );
    let stop_reason = match (&tool, out.truncated) {
        (Some(_), _) => "tool_use",
        (None, true) => "max_tokens",
        (None, false) => "end_turn",
    };
    let answer = Answer {
        model,
        id: call.ids.anthropic_message(),
        tool_id: call.ids.tool_use(),
        signature: call.ids.signature(),
        tool,
        out,
        prompt,
        details: thinking_enabled || call.controls.reasoning_tokens.is_some(),
    };
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        answer.stream(call, stop_reason)
    } else {
        let body = Obj::new()
            .s("model", model)
            .s("id", &answer.id)
            .s("type", "message")
            .s("role", "assistant")
            .raw("content", &json::array(&answer.blocks()))
            .s("stop_reason", stop_reason)
            .null("stop_sequence")
            .raw("usage", &answer.usage(true, answer.out.total))
            .done();
        stream::json(call, body)
    }
}

/// Everything one reply is made of.
struct Answer<'a> {
    model: &'a str,
    id: String,
    tool_id: String,
    signature: String,
    tool: Option<ToolCall>,
    out: Output,
    prompt: Prompt,
    /// Report `output_tokens_details.thinking_tokens` (newer API versions do).
    details: bool,
}

impl Answer<'_> {
    fn has_text(&self) -> bool {
        self.tool.is_none() && (self.out.visible > 0 || self.out.reasoning == 0)
    }

    fn blocks(&self) -> Vec<Vec<u8>> {
        let mut blocks = Vec::with_capacity(2);
        if self.out.reasoning > 0 {
            blocks.push(
                Obj::new()
                    .s("type", "thinking")
                    .s("thinking", &text::thinking(self.out.reasoning))
                    .s("signature", &self.signature)
                    .done(),
            );
        }
        if let Some(tool) = &self.tool {
            blocks.push(
                Obj::new()
                    .s("type", "tool_use")
                    .s("id", &self.tool_id)
                    .s("name", &tool.name)
                    .raw("input", tool.arguments.as_bytes())
                    .done(),
            );
        }
        if self.has_text() {
            blocks.push(
                Obj::new()
                    .s("type", "text")
                    .s("text", &text::reply(self.out.visible))
                    .done(),
            );
        }
        blocks
    }

    /// Usage as in a full message (`full`: with the `cache_creation` breakdown, tier and geo)
    /// or as in `message_delta` (cumulative counts only).
    fn usage(&self, full: bool, output_tokens: u64) -> Vec<u8> {
        let p = &self.prompt;
        let mut o = Obj::new()
            .n("input_tokens", p.input)
            .n("cache_creation_input_tokens", p.write_5m + p.write_1h)
            .n("cache_read_input_tokens", p.read);
        if full {
            o = o.o(
                "cache_creation",
                Obj::new()
                    .n("ephemeral_5m_input_tokens", p.write_5m)
                    .n("ephemeral_1h_input_tokens", p.write_1h),
            );
        }
        o = o.n("output_tokens", output_tokens);
        if self.details && output_tokens == self.out.total {
            o = o.o(
                "output_tokens_details",
                Obj::new().n("thinking_tokens", self.out.reasoning),
            );
        }
        if full {
            o = o
                .s("service_tier", "standard")
                .s("inference_geo", "not_available");
        }
        o.done()
    }

    fn stream(&self, call: &Call, stop_reason: &str) -> Response {
        let deltas = self.out.visible / TEXT_TOKENS_PER_DELTA
            + self.out.reasoning / THINKING_TOKENS_PER_DELTA;
        let mut sse = Sse::with_capacity(deltas as usize + 16);
        let mut n = 0usize;
        let mut emit = |sse: &mut Sse, name: &str, data: &[u8]| {
            sse.event(name, data, (n * 5 + 3) % 14);
            n += 1;
        };
        let start = Obj::new()
            .s("model", self.model)
            .s("id", &self.id)
            .s("type", "message")
            .s("role", "assistant")
            .raw("content", b"[]")
            .null("stop_reason")
            .null("stop_sequence")
            .raw("usage", &self.usage(true, 1));
        emit(
            &mut sse,
            "message_start",
            &Obj::new()
                .s("type", "message_start")
                .o("message", start)
                .done(),
        );
        let mut index = 0u64;
        let mut pinged = false;
        let mut block = |sse: &mut Sse,
                         emit: &mut dyn FnMut(&mut Sse, &str, &[u8]),
                         content_block: Vec<u8>,
                         deltas: Vec<Vec<u8>>| {
            let open = Obj::new()
                .s("type", "content_block_start")
                .n("index", index)
                .raw("content_block", &content_block)
                .done();
            emit(sse, "content_block_start", &open);
            if !pinged {
                sse.event("ping", br#"{"type": "ping"}"#, 0);
                pinged = true;
            }
            for delta in deltas {
                let event = Obj::new()
                    .s("type", "content_block_delta")
                    .n("index", index)
                    .raw("delta", &delta)
                    .done();
                emit(sse, "content_block_delta", &event);
            }
            let stop = Obj::new()
                .s("type", "content_block_stop")
                .n("index", index)
                .done();
            emit(sse, "content_block_stop", &stop);
            index += 1;
        };
        if self.out.reasoning > 0 {
            let mut deltas = chunked(
                self.out.reasoning,
                THINKING_TOKENS_PER_DELTA,
                text::thought,
                "thinking_delta",
                "thinking",
            );
            deltas.push(
                Obj::new()
                    .s("type", "signature_delta")
                    .s("signature", &self.signature)
                    .done(),
            );
            block(
                &mut sse,
                &mut emit,
                br#"{"type":"thinking","thinking":"","signature":""}"#.to_vec(),
                deltas,
            );
        }
        if let Some(tool) = &self.tool {
            let opening = Obj::new()
                .s("type", "tool_use")
                .s("id", &self.tool_id)
                .s("name", &tool.name)
                .raw("input", b"{}")
                .done();
            let mut deltas = vec![br#"{"type":"input_json_delta","partial_json":""}"#.to_vec()];
            for piece in text::pieces(&tool.arguments, 8) {
                deltas.push(
                    Obj::new()
                        .s("type", "input_json_delta")
                        .s("partial_json", piece)
                        .done(),
                );
            }
            block(&mut sse, &mut emit, opening, deltas);
        }
        if self.has_text() {
            let deltas = chunked(
                self.out.visible,
                TEXT_TOKENS_PER_DELTA,
                text::word,
                "text_delta",
                "text",
            );
            block(
                &mut sse,
                &mut emit,
                br#"{"type":"text","text":""}"#.to_vec(),
                deltas,
            );
        }
        let delta = Obj::new()
            .s("type", "message_delta")
            .o(
                "delta",
                Obj::new()
                    .s("stop_reason", stop_reason)
                    .null("stop_sequence"),
            )
            .raw("usage", &self.usage(false, self.out.total))
            .done();
        emit(&mut sse, "message_delta", &delta);
        emit(&mut sse, "message_stop", br#"{"type":"message_stop"}"#);
        sse.into_response(call, BROKEN_MESSAGES)
    }
}

/// Delta objects carrying `tokens` tokens of `word`s, `per` tokens each.
fn chunked(
    tokens: u64,
    per: u64,
    word: fn(u64) -> &'static str,
    kind: &str,
    field: &str,
) -> Vec<Vec<u8>> {
    (0..tokens.div_ceil(per))
        .map(|c| {
            let piece: String = (c * per..((c + 1) * per).min(tokens)).map(word).collect();
            Obj::new().s("type", kind).s(field, &piece).done()
        })
        .collect()
}

/// The first custom tool (or the one `tool_choice` names), when the call should use it.
fn anthropic_tool(call: &Call, req: &Map<String, Value>, messages: &[Value]) -> Option<ToolCall> {
    let tools = req.get("tools").and_then(Value::as_array)?;
    let choice = req.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    let after_result = messages.last().is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("user")
            && m.get("content")
                .and_then(Value::as_array)
                .is_some_and(|blocks| {
                    blocks
                        .iter()
                        .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                })
    });
    if !usage::wants_tool(&call.controls, choice_type == Some("none"), after_result) {
        return None;
    }
    let forced = choice
        .filter(|_| choice_type == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let tool = tools.iter().find(|t| {
        matches!(t.get("type").and_then(Value::as_str), None | Some("custom"))
            && forced.is_none_or(|name| t.get("name").and_then(Value::as_str) == Some(name))
    })?;
    let name = tool.get("name").and_then(Value::as_str)?;
    Some(ToolCall::new(name, tool.get("input_schema")))
}

/// `POST /v1/messages/count_tokens`: the whole prompt, cached parts included.
pub(crate) fn count_tokens(call: &Call, req: &Map<String, Value>) -> Response {
    if req.get("messages").and_then(Value::as_array).is_none() {
        return bad_request(call.dialect, "messages: Field required", call.ids);
    }
    let p = prompt(call, req);
    let total = p.input + p.read + p.write_5m + p.write_1h;
    stream::json(call, Obj::new().n("input_tokens", total).done())
}

/// Models `GET /v1/models` lists in Anthropic's shape: (id, display name, created).
const MODELS: [(&str, &str, &str); 5] = [
    (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "2025-08-05T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-01T00:00:00Z",
    ),
    (
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        "2025-05-14T00:00:00Z",
    ),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
];

/// `GET /v1/models` for an Anthropic client.
pub(crate) fn models(call: &Call) -> Response {
    let data: Vec<Vec<u8>> = MODELS
        .iter()
        .map(|(id, name, created)| {
            Obj::new()
                .s("type", "model")
                .s("id", id)
                .s("display_name", name)
                .s("created_at", created)
                .done()
        })
        .collect();
    let body = Obj::new()
        .raw("data", &json::array(&data))
        .b("has_more", false)
        .s("first_id", MODELS[0].0)
        .s("last_id", MODELS[MODELS.len() - 1].0)
        .done();
    stream::json(call, body)
}
