//! What the gateway must read from a request body before forwarding it (model, stream, output
//! cap, service tier), how to ask an OpenAI chat stream for its usage, and the JSON reading
//! shared by the response readers (errors that name the field).
//!
//! Request bodies are read into structs of only the needed fields: serde skips the rest
//! (messages, tools) without building them, and strings are borrowed where they have no escapes.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, IgnoredAny};
use serde_json::Value;

use crate::{Api, WireError};

/// What the gateway needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// Model the client asked for.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the response the client asked for carries usage on its own: always, except an
    /// OpenAI chat stream without `stream_options.include_usage: true`. When false, the gateway
    /// adds it ([`with_stream_usage`]) and strips it again on the way back
    /// ([`crate::StreamMeter::new`] with `strip_usage`).
    pub client_wants_usage: bool,
    /// Output cap: `max_completion_tokens` (or the older `max_tokens`) for chat,
    /// `max_output_tokens` for responses, `max_tokens` for messages.
    pub max_output_tokens: Option<u64>,
    /// Service tier asked for (`auto`, `default`, `flex`, `priority`, ...).
    pub service_tier: Option<String>,
    /// Completions asked for (OpenAI chat's `n`; 1 elsewhere), each up to the output cap.
    pub choices: u64,
    /// A Responses call run in the background (`background: true`): answered at once without
    /// usage, which arrives later on a different request.
    pub background: bool,
}

/// Reads the fields the gateway needs from a request body of `api`.
pub fn analyze(api: Api, body: &[u8]) -> Result<RequestInfo, WireError> {
    check_utf8(body)?;
    match api {
        Api::ChatCompletions => {
            let raw: ChatRequest<'_> = parse_json(body, "", request_reason)?;
            let stream = raw.stream.unwrap_or(false);
            let include_usage = raw.stream_options.and_then(|o| o.include_usage);
            let mut info = info(
                raw.model,
                stream,
                !stream || include_usage == Some(true),
                raw.max_completion_tokens.or(raw.max_tokens),
                raw.service_tier,
            )?;
            info.choices = raw.n.unwrap_or(1).max(1);
            Ok(info)
        }
        Api::Responses => {
            let raw: ResponsesRequest<'_> = parse_json(body, "", request_reason)?;
            let stream = raw.stream.unwrap_or(false);
            let mut info = info(
                raw.model,
                stream,
                true,
                raw.max_output_tokens,
                raw.service_tier,
            )?;
            info.background = raw.background.unwrap_or(false);
            Ok(info)
        }
        Api::Embeddings => {
            let raw: EmbeddingsRequest<'_> = parse_json(body, "", request_reason)?;
            info(raw.model, false, true, None, None)
        }
        Api::Messages => {
            let raw: MessagesRequest<'_> = parse_json(body, "", request_reason)?;
            let stream = raw.stream.unwrap_or(false);
            info(raw.model, stream, true, raw.max_tokens, raw.service_tier)
        }
    }
}

/// The OpenAI chat request `body` with `stream_options.include_usage` set to true, so that the
/// stream ends with a usage chunk. When the body has no `stream_options`, the member is inserted
/// after the opening brace and every other byte is kept; otherwise the body is re-serialised
/// with the other `stream_options` keys kept (key order and number spelling may change).
pub fn with_stream_usage(body: &[u8]) -> Result<Vec<u8>, WireError> {
    check_utf8(body)?;
    let probe: StreamOptionsProbe = parse_json(body, "", request_reason)?;
    if !probe.stream_options {
        return Ok(insert_stream_options(body));
    }
    let mut value: Value = parse_json(body, "", request_reason)?;
    let Some(object) = value.as_object_mut() else {
        return Err(WireError::new("(body)", "must be a JSON object"));
    };
    let include = Value::Bool(true);
    match object.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".into(), include);
        }
        _ => {
            let mut options = serde_json::Map::new();
            options.insert("include_usage".into(), include);
            object.insert("stream_options".into(), Value::Object(options));
        }
    }
    serde_json::to_vec(&value).map_err(|e| WireError::new("(body)", e.to_string()))
}

/// Inserts `"stream_options":{"include_usage":true}` right after the opening brace of a body
/// already known to be a JSON object.
fn insert_stream_options(body: &[u8]) -> Vec<u8> {
    const MEMBER: &[u8] = br#""stream_options":{"include_usage":true}"#;
    let open = body.iter().position(|&b| b == b'{').unwrap_or(0);
    let after = &body[open + 1..];
    let empty = after
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'}');
    let mut out = Vec::with_capacity(body.len() + MEMBER.len() + 1);
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(MEMBER);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(after);
    out
}

/// JSON text is UTF-8 (RFC 8259). serde_json checks the strings it builds but not the ones
/// it skips, so a body with bad bytes inside `messages` would otherwise reach the provider.
fn check_utf8(body: &[u8]) -> Result<(), WireError> {
    std::str::from_utf8(body).map(drop).map_err(|e| {
        WireError::new(
            "(body)",
            format!("not UTF-8: invalid byte at offset {}", e.valid_up_to()),
        )
    })
}

fn info(
    model: Option<Cow<'_, str>>,
    stream: bool,
    client_wants_usage: bool,
    max_output_tokens: Option<u64>,
    service_tier: Option<Cow<'_, str>>,
) -> Result<RequestInfo, WireError> {
    let model = match model {
        None => return Err(WireError::new("model", "missing")),
        Some(model) if model.is_empty() => {
            return Err(WireError::new("model", "must not be empty"));
        }
        Some(model) => model.into_owned(),
    };
    Ok(RequestInfo {
        model,
        stream,
        client_wants_usage,
        max_output_tokens,
        service_tier: service_tier.map(Cow::into_owned),
        choices: 1,
        background: false,
    })
}

/// Friendly reasons for the request fields read here.
fn request_reason(path: &str) -> Option<&'static str> {
    Some(match path {
        "model" | "service_tier" => "must be a string",
        "stream" | "stream_options.include_usage" | "background" => "must be true or false",
        "stream_options" => "must be an object",
        "max_tokens" | "max_completion_tokens" | "max_output_tokens" | "n" => {
            "must be a non-negative integer"
        }
        _ => return None,
    })
}

#[derive(serde::Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(serde::Deserialize)]
struct ResponsesRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
    background: Option<bool>,
    max_output_tokens: Option<u64>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct EmbeddingsRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
    max_tokens: Option<u64>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
}

/// Whether a body has a top-level `stream_options` member (even `null`).
#[derive(serde::Deserialize)]
struct StreamOptionsProbe {
    #[serde(default, deserialize_with = "present")]
    stream_options: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Reads a JSON object into `T`. Fast path first; only a failure is read again, tracking the
/// path, to name the field: `usage.prompt_tokens: invalid type: ...`. `prefix` starts the field
/// (a stream event's name) and stands for the whole when the error is not about one field
/// (`(body)` when empty). `reason` may give a friendlier reason for a field's path.
pub(crate) fn parse_json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    prefix: &str,
    reason: fn(&str) -> Option<&'static str>,
) -> Result<T, WireError> {
    let whole = if prefix.is_empty() { "(body)" } else { prefix };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => WireError::new(whole, "must be a JSON object"),
            Err(e) => WireError::new(whole, format!("not JSON: {e}")),
        });
    }
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(error) => error,
        // The fast path failed, so what follows the value must be wrong.
        Ok(_) => {
            let reason = match de.end() {
                Err(e) => format!("not JSON: {e}"),
                Ok(()) => "could not be read".to_owned(),
            };
            return Err(WireError::new(whole, reason));
        }
    };
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return Err(WireError::new(whole, format!("not JSON: {inner}")));
    }
    let field = match (path.as_str(), prefix.is_empty()) {
        (".", _) => whole.to_owned(),
        (_, true) => path.clone(),
        (_, false) => format!("{prefix}.{path}"),
    };
    let text = match reason(&path) {
        Some(friendly) => friendly.to_owned(),
        None => strip_position(&inner.to_string()),
    };
    Err(WireError::new(field, text))
}

/// A serde_json message without its ` at line 1 column 42` tail.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
