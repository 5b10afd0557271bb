//! OpenAI Chat Completions, Embeddings and the models list.

use axum::response::Response;
use serde_json::{Map, Value};

use crate::faults::bad_request;
use crate::json::{self, Obj, push_str};
use crate::stream::{self, Sse};
use crate::text;
use crate::usage::{self, Output, ToolCall};
use crate::{Call, now};

/// OpenAI's `system_fingerprint` (constant: one backend configuration).
pub(crate) const FINGERPRINT: &str = "fp_b1d2c3e4f5";

/// What a broken chat stream shows in its middle: a `data:` line cut inside its JSON.
const BROKEN_CHAT: &[u8] =
    b"data: {\"id\":\"chatcmpl-broken\",\"object\":\"chat.completion.chu\n\n";

/// `POST /v1/chat/completions`.
pub(crate) fn chat(call: &Call, req: &Map<String, Value>) -> Response {
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return bad_request(call.dialect, "you must provide a model parameter", call.ids);
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return bad_request(call.dialect, "'messages' is a required property", call.ids);
    };
    if messages.is_empty() {
        return bad_request(call.dialect, "[] is too short - 'messages'", call.ids);
    }
    let controls = &call.controls;
    let prompt_bytes =
        usage::fields_bytes(req, &["messages", "tools", "functions", "response_format"]);
    let (prompt, cached, cache_write) = prompt_usage(call, req, usage::tokens(prompt_bytes).max(1));
    let reasoning = if usage::is_reasoning_model(model) {
        usage::reasoning_for_effort(req.get("reasoning_effort").and_then(Value::as_str))
    } else {
        0
    };
    let tool = chat_tool(call, req, messages);
    let cap = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64);
    let out = usage::plan_output(controls, tool.as_ref(), reasoning, cap);
    let finish = match (&tool, out.truncated) {
        (Some(_), _) => "tool_calls",
        (None, true) => "length",
        (None, false) => "stop",
    };
    let usage = chat_usage(prompt, cached, cache_write, &out);
    let tier = service_tier(req);
    let id = call.ids.chat_completion();
    let head = Obj::new()
        .s("id", &id)
        .s(
            "object",
            if stream_requested(req) {
                "chat.completion.chunk"
            } else {
                "chat.completion"
            },
        )
        .n("created", now())
        .s("model", model);
    if !stream_requested(req) {
        let mut message = Obj::new().s("role", "assistant");
        message = match &tool {
            Some(t) => message.null("content").raw(
                "tool_calls",
                &json::array(&[tool_call(&call.ids.call(), t)]),
            ),
            None => message.s("content", &text::reply(out.visible)),
        };
        let message = message.null("refusal").raw("annotations", b"[]");
        let choice = Obj::new()
            .n("index", 0)
            .o("message", message)
            .null("logprobs")
            .s("finish_reason", finish);
        let body = head
            .raw("choices", &json::array(&[choice.done()]))
            .raw("usage", &usage)
            .s("service_tier", tier)
            .s("system_fingerprint", FINGERPRINT)
            .done();
        return stream::json(call, body);
    }

    let options = req.get("stream_options");
    let flag = |name: &str| options.and_then(|o| o.get(name)).and_then(Value::as_bool);
    let chunks = Chunks {
        head: {
            let mut head = head
                .s("service_tier", tier)
                .s("system_fingerprint", FINGERPRINT)
                .done();
            head.pop();
            head.extend_from_slice(b",\"choices\":[");
            head
        },
        include_usage: flag("include_usage") == Some(true),
        obfuscate: flag("include_obfuscation") != Some(false),
    };
    let mut sse = Sse::with_capacity(out.visible as usize + 5);
    let mut n = 0;
    match &tool {
        Some(t) => {
            let mut first = Vec::with_capacity(160 + t.name.len());
            first.extend_from_slice(b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":");
            push_str(&mut first, &call.ids.call());
            first.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            push_str(&mut first, &t.name);
            first.extend_from_slice(b",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}");
            sse.data(&chunks.chunk(&first, n));
            for piece in text::pieces(&t.arguments, 4) {
                n += 1;
                let mut delta = Vec::with_capacity(120);
                delta.extend_from_slice(b"{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
                push_str(&mut delta, piece);
                delta.extend_from_slice(b"}}]},\"logprobs\":null,\"finish_reason\":null}");
                sse.data(&chunks.chunk(&delta, n));
            }
        }
        None => {
            sse.data(&chunks.chunk(
                b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}",
                n,
            ));
            for i in 0..out.visible {
                n += 1;
                let word = text::word(i);
                let mut delta = Vec::with_capacity(80 + word.len());
                delta.extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":\"");
                delta.extend_from_slice(word.as_bytes());
                delta.extend_from_slice(b"\"},\"logprobs\":null,\"finish_reason\":null}");
                sse.data(&chunks.chunk(&delta, n));
            }
        }
    }
    n += 1;
    let finish_choice =
        format!("{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{finish}\"}}");
    sse.data(&chunks.chunk(finish_choice.as_bytes(), n));
    if chunks.include_usage {
        n += 1;
        sse.data(&chunks.usage_chunk(&usage, n));
    }
    sse.raw(b"data: [DONE]\n\n");
    sse.into_response(call, BROKEN_CHAT)
}

/// The shared start of every chunk, and the `stream_options` that shape the rest.
struct Chunks {
    head: Vec<u8>,
    include_usage: bool,
    obfuscate: bool,
}

impl Chunks {
    /// A chunk with one choice; `"usage":null` only when usage was asked for, as OpenAI does.
    fn chunk(&self, choice: &[u8], n: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + choice.len() + 48);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(choice);
        out.push(b']');
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        self.finish(out, n)
    }

    /// The last chunk: no choices, the usage.
    fn usage_chunk(&self, usage: &[u8], n: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + usage.len() + 48);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"],\"usage\":");
        out.extend_from_slice(usage);
        self.finish(out, n)
    }

    fn finish(&self, mut out: Vec<u8>, n: u64) -> Vec<u8> {
        if self.obfuscate {
            out.extend_from_slice(b",\"obfuscation\":\"");
            out.extend_from_slice(text::obfuscation(n).as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
        out
    }
}

fn stream_requested(req: &Map<String, Value>) -> bool {
    req.get("stream").and_then(Value::as_bool) == Some(true)
}

/// The service tier a response reports: the requested one, `default` for `auto` or none.
pub(crate) fn service_tier(req: &Map<String, Value>) -> &str {
    req.get("service_tier")
        .and_then(Value::as_str)
        .filter(|t| *t != "auto")
        .unwrap_or("default")
}

/// Prompt, cached-read and cache-write tokens of an OpenAI request. Reads come from
/// `x-mock-cached-tokens`, else from a `prompt_cache_key`; writes only from
/// `x-mock-cache-write-tokens`. The prompt is raised so its parts never exceed it.
pub(crate) fn prompt_usage(call: &Call, req: &Map<String, Value>, prompt: u64) -> (u64, u64, u64) {
    let keyed = req.get("prompt_cache_key").is_some_and(|k| !k.is_null());
    let cached = call.controls.cached_tokens.unwrap_or(if keyed {
        usage::openai_cached(prompt)
    } else {
        0
    });
    let write = call.controls.cache_write_tokens.unwrap_or(0);
    (prompt.max(cached.saturating_add(write)), cached, write)
}

/// The first function tool (or the one `tool_choice` names), when the call should use it.
fn chat_tool(call: &Call, req: &Map<String, Value>, messages: &[Value]) -> Option<ToolCall> {
    let tools = req.get("tools").and_then(Value::as_array)?;
    let choice = req.get("tool_choice");
    let choice_none = choice.and_then(Value::as_str) == Some("none");
    let after_result = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    if !usage::wants_tool(&call.controls, choice_none, after_result) {
        return None;
    }
    let forced = choice
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let function = tools
        .iter()
        .filter_map(|t| t.get("function"))
        .find(|f| forced.is_none_or(|name| f.get("name").and_then(Value::as_str) == Some(name)))?;
    let name = function.get("name").and_then(Value::as_str)?;
    Some(ToolCall::new(name, function.get("parameters")))
}

fn tool_call(id: &str, tool: &ToolCall) -> Vec<u8> {
    let function = Obj::new()
        .s("name", &tool.name)
        .s("arguments", &tool.arguments);
    Obj::new()
        .s("id", id)
        .s("type", "function")
        .o("function", function)
        .done()
}

fn chat_usage(prompt: u64, cached: u64, cache_write: u64, out: &Output) -> Vec<u8> {
    let mut details = Obj::new().n("cached_tokens", cached).n("audio_tokens", 0);
    if cache_write > 0 {
        details = details.n("cache_write_tokens", cache_write);
    }
    let completion = Obj::new()
        .n("reasoning_tokens", out.reasoning)
        .n("audio_tokens", 0)
        .n("accepted_prediction_tokens", 0)
        .n("rejected_prediction_tokens", 0);
    Obj::new()
        .n("prompt_tokens", prompt)
        .n("completion_tokens", out.total)
        .n("total_tokens", prompt + out.total)
        .o("prompt_tokens_details", details)
        .o("completion_tokens_details", completion)
        .done()
}

/// `POST /v1/embeddings`: one deterministic unit vector per input (16 dimensions unless
/// `dimensions` says otherwise), as floats or, with `encoding_format: base64`, as
/// little-endian `f32` bytes in base64 (what the OpenAI SDKs ask for by default).
pub(crate) fn embeddings(call: &Call, req: &Map<String, Value>) -> Response {
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return bad_request(call.dialect, "you must provide a model parameter", call.ids);
    };
    let inputs: Vec<(u64, u64)> = match req.get("input") {
        Some(Value::String(s)) => vec![(
            text::fnv(s.as_bytes()),
            usage::tokens(s.len() as u64).max(1),
        )],
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_u64) {
                vec![(
                    text::fnv(Value::Array(items.clone()).to_string().as_bytes()),
                    items.len() as u64,
                )]
            } else {
                let mut inputs = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => inputs.push((
                            text::fnv(s.as_bytes()),
                            usage::tokens(s.len() as u64).max(1),
                        )),
                        Value::Array(t) => {
                            inputs.push((text::fnv(item.to_string().as_bytes()), t.len() as u64))
                        }
                        _ => {
                            return bad_request(
                                call.dialect,
                                "'input' items must be strings or token arrays",
                                call.ids,
                            );
                        }
                    }
                }
                inputs
            }
        }
        _ => {
            return bad_request(
                call.dialect,
                "'input' must be a non-empty string or array",
                call.ids,
            );
        }
    };
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(16, |d| d.clamp(1, 3072)) as usize;
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut data = Vec::with_capacity(inputs.len());
    let mut prompt = 0;
    for (index, (hash, tokens)) in inputs.iter().enumerate() {
        prompt += tokens;
        let vector = vector(*hash, dims);
        let encoded = if base64 {
            let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
            json::string(&base64_encode(&bytes))
        } else {
            let floats: Vec<Vec<u8>> = vector.iter().map(|v| v.to_string().into_bytes()).collect();
            json::array(&floats)
        };
        data.push(
            Obj::new()
                .s("object", "embedding")
                .n("index", index as u64)
                .raw("embedding", &encoded)
                .done(),
        );
    }
    let body = Obj::new()
        .s("object", "list")
        .raw("data", &json::array(&data))
        .s("model", model)
        .o(
            "usage",
            Obj::new()
                .n("prompt_tokens", prompt)
                .n("total_tokens", prompt),
        )
        .done();
    stream::json(call, body)
}

fn vector(hash: u64, dims: usize) -> Vec<f32> {
    let raw: Vec<f64> = (0..dims as u64)
        .map(|j| text::unit(hash, j, 0xEB) * 2.0 - 1.0)
        .collect();
    let norm = raw
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|v| (v / norm) as f32).collect()
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Models `GET /v1/models` lists (OpenAI shape): (id, created).
const MODELS: [(&str, u64); 10] = [
    ("gpt-4.1", 1_744_316_542),
    ("gpt-4.1-mini", 1_744_318_173),
    ("gpt-4o", 1_715_367_049),
    ("gpt-4o-mini", 1_721_172_741),
    ("gpt-5", 1_754_425_777),
    ("gpt-5-mini", 1_754_425_928),
    ("o3", 1_744_225_308),
    ("o4-mini", 1_744_225_351),
    ("text-embedding-3-small", 1_705_948_997),
    ("text-embedding-3-large", 1_705_953_180),
];

/// `GET /v1/models`, OpenAI's list shape.
pub(crate) fn models(call: &Call) -> Response {
    let data: Vec<Vec<u8>> = MODELS
        .iter()
        .map(|(id, created)| {
            Obj::new()
                .s("id", id)
                .s("object", "model")
                .n("created", *created)
                .s("owned_by", "system")
                .done()
        })
        .collect();
    let body = Obj::new()
        .s("object", "list")
        .raw("data", &json::array(&data))
        .done();
    stream::json(call, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn vectors_are_unit_length_and_stable() {
        let v = vector(42, 16);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(v, vector(42, 16));
    }
}
