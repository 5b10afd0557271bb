//! Input layers: how much of a request's input is prompt, tool and memory.
//!
//! The usage event's `layers` split the provider's input count into three parts (DESIGN.md, "The
//! usage event"); `response` is the output count. The provider never says how its input count
//! divides, so [`estimate`] counts each part of the request body with OpenAI's o200k tokenizer
//! and [`LayerEstimate::scale_to`] scales those counts to the provider's exact input count. The
//! proportions are what matter, so the o200k estimate serves Anthropic requests too.
//!
//! Classification:
//!
//! - **prompt**: system and developer messages, `instructions` (Responses), `system`
//!   (Anthropic), the current user input, a structured-output schema (`response_format` /
//!   `text.format`), prompt-template variables, embedding input, and any content this module
//!   does not recognise.
//! - **tool**: tool definitions (`tools[]`, `functions[]`, serialised as JSON), tool-role
//!   messages and tool results, and the assistant's earlier tool calls (name and arguments).
//!   Everything inside a tool result counts as tool, whatever its block types.
//! - **memory**: earlier user and assistant turns, earlier reasoning (thinking text, reasoning
//!   summaries) and retrieved context (Anthropic `document` and `search_result` blocks).
//!
//! The current user input is the last user message that carries something other than tool
//! results: in an agent loop the trailing Anthropic `user` messages that only return
//! `tool_result` blocks are tool, and the question that started the loop stays prompt.
//!
//! Fixed estimates, for content whose tokens the body does not show: each message or input item
//! adds [`MESSAGE_OVERHEAD`] tokens (OpenAI's documented per-message framing) to the layer of
//! the message, and each image, audio clip or file adds [`ATTACHMENT_TOKENS`] (OpenAI's price of
//! one low-detail image; real costs vary with size, which the body does not say without decoding
//! the attachment). Opaque values (base64 data, encrypted reasoning, signatures, ids) are not
//! tokenised.
//!
//! Tokenising is the costly part (about 25 MB/s of text in a release build with `bpe-openai`,
//! four times tiktoken-rs, whose counts the tests hold it to), so the counts of
//! texts of 64 bytes or more are remembered by content hash: agent loops resend the same system
//! prompt, tools and history on every call, and only the new part is tokenised. Within the new
//! part, each thread remembers the counts of short pre-tokens (words, numbers): text repeats
//! them, and counting one afresh allocates the encoder's state. Text is split
//! into chunks at points where the o200k pre-tokeniser always splits (before a space that follows
//! a non-space), which keeps the count exact, and runs of more than 256 bytes without such a
//! point are cut as well: this bounds the work on one pre-token (a long run of one letter takes
//! seconds in tiktoken's quadratic merge and makes its regex panic) at the price of at
//! most a token or so per cut.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{LazyLock, Mutex};

use burnrate_model::Layers;
use serde_json::{Map, Value};

use crate::{Api, WireError};

mod o200k;
#[cfg(test)]
mod tests;

/// Tokens added for each message or input item, as OpenAI's chat format frames every message.
pub const MESSAGE_OVERHEAD: u64 = 3;

/// Tokens counted for an image, audio clip or file: OpenAI's price of one low-detail image.
pub const ATTACHMENT_TOKENS: u64 = 85;

/// Token estimate of each input layer of one request, before scaling to the provider's count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerEstimate {
    /// System prompt, instructions and the current user input.
    pub prompt: u64,
    /// Tool definitions, tool results and the assistant's earlier tool calls.
    pub tool: u64,
    /// Earlier turns and retrieved context.
    pub memory: u64,
}

impl LayerEstimate {
    /// Scales the estimate so the layers sum exactly to the provider's input count (largest
    /// remainder, exact integer maths, u128 intermediates; if the estimate is all zero put
    /// everything in prompt), response = output.
    ///
    /// Each layer gets the floor of its exact share `estimate × input / total` and the tokens
    /// left over (at most two) go to the layers with the largest remainders, ties to the
    /// earlier of prompt, tool, memory. So every layer is within one token of its exact share
    /// and a layer estimated at zero stays zero.
    pub fn scale_to(self, input_tokens: u64, output_tokens: u64) -> Layers {
        let parts = [self.prompt, self.tool, self.memory];
        let total: u128 = parts.iter().map(|&p| u128::from(p)).sum();
        if total == 0 {
            return Layers {
                prompt: input_tokens,
                tool: 0,
                memory: 0,
                response: output_tokens,
            };
        }
        let input = u128::from(input_tokens);
        let mut scaled = [0u64; 3];
        let mut remainders = [0u128; 3];
        let mut given: u64 = 0;
        for (i, &part) in parts.iter().enumerate() {
            let exact = u128::from(part) * input;
            // The share is at most `input`, which fits in u64.
            scaled[i] = u64::try_from(exact / total).unwrap_or(input_tokens);
            remainders[i] = exact % total;
            given = given.saturating_add(scaled[i]);
        }
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
        let left_over = input_tokens.saturating_sub(given);
        for &i in order.iter().take(usize::try_from(left_over).unwrap_or(3)) {
            scaled[i] += 1;
        }
        Layers {
            prompt: scaled[0],
            tool: scaled[1],
            memory: scaled[2],
            response: output_tokens,
        }
    }
}

/// Builds the tokenizer now, so the first request does not pay for it (about 0.1 s
/// in a release build).
pub fn warm_up() {
    // A failure is reported by the next estimate.
    let _ = o200k::tokenizer();
    LazyLock::force(&CACHE);
}

/// Estimates the layers of a request body with the o200k tokenizer (OpenAI's; an estimate for
/// other providers).
///
/// Fails only when the body is not a JSON object or its main list (`messages`, `input`) has the
/// wrong shape; content it does not understand is counted as prompt.
pub fn estimate(api: Api, body: &[u8]) -> Result<LayerEstimate, WireError> {
    o200k::tokenizer().map_err(|reason| WireError::new("(tokenizer)", reason))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::new("(body)", format!("not valid JSON: {e}")))?;
    let Value::Object(request) = value else {
        return Err(WireError::new("(body)", "expected a JSON object"));
    };
    let mut tally = Tally::default();
    match api {
        Api::ChatCompletions => chat(&mut tally, &request)?,
        Api::Responses => responses(&mut tally, &request)?,
        Api::Messages => messages(&mut tally, &request)?,
        Api::Embeddings => embeddings(&mut tally, &request)?,
    }
    Ok(tally.estimate)
}

/// One of the three input layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Prompt,
    Tool,
    Memory,
}

/// Keys whose string values the model never reads as text: ids, binary data, encrypted state.
const OPAQUE_KEYS: &[&str] = &[
    "id",
    "call_id",
    "tool_call_id",
    "tool_use_id",
    "type",
    "status",
    "data",
    "file_data",
    "file_id",
    "image_url",
    "encrypted_content",
    "signature",
    "cache_control",
];

/// The running per-layer counts of one request.
#[derive(Default)]
struct Tally {
    estimate: LayerEstimate,
}

impl Tally {
    fn add(&mut self, layer: Layer, tokens: u64) {
        let slot = match layer {
            Layer::Prompt => &mut self.estimate.prompt,
            Layer::Tool => &mut self.estimate.tool,
            Layer::Memory => &mut self.estimate.memory,
        };
        *slot = slot.saturating_add(tokens);
    }

    fn text(&mut self, layer: Layer, text: &str) {
        self.add(layer, count_tokens(text));
    }

    /// Counts a string value, if `value` is one.
    fn text_of(&mut self, layer: Layer, value: Option<&Value>) {
        if let Some(text) = value.and_then(Value::as_str) {
            self.text(layer, text);
        }
    }

    /// Counts a JSON value as the model reads it: serialised (tool definitions, arguments).
    fn json(&mut self, layer: Layer, value: &Value) {
        match value {
            Value::Null => {}
            Value::String(text) => self.text(layer, text),
            _ => match serde_json::to_string(value) {
                Ok(text) => self.text(layer, &text),
                Err(_) => self.leaves(layer, value),
            },
        }
    }

    /// Counts the string values of something not recognised, skipping opaque keys.
    fn leaves(&mut self, layer: Layer, value: &Value) {
        match value {
            Value::String(text) if !text.starts_with("data:") => self.text(layer, text),
            Value::Array(items) => items.iter().for_each(|item| self.leaves(layer, item)),
            Value::Object(fields) => {
                for (key, item) in fields {
                    if !OPAQUE_KEYS.contains(&key.as_str()) {
                        self.leaves(layer, item);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts each tool definition of a `tools` or `functions` list.
    fn tool_definitions(&mut self, value: Option<&Value>) {
        match value {
            Some(Value::Array(tools)) => tools.iter().for_each(|tool| self.json(Layer::Tool, tool)),
            Some(other) => self.json(Layer::Tool, other),
            None => {}
        }
    }

    /// Counts a tool call's name and arguments (`{"name", "arguments"}` or `{"name", "input"}`).
    fn tool_call(&mut self, call: &Value) {
        match call {
            Value::Object(fields) => {
                self.text_of(Layer::Tool, fields.get("name"));
                for key in ["arguments", "input"] {
                    if let Some(arguments) = fields.get(key) {
                        self.json(Layer::Tool, arguments);
                    }
                }
            }
            other => self.leaves(Layer::Tool, other),
        }
    }

    /// Counts the content of a tool result: text, attachments, and anything else as leaves.
    fn tool_output(&mut self, output: &Value) {
        match output {
            Value::String(text) => self.text(Layer::Tool, text),
            Value::Array(parts) => {
                for part in parts {
                    match part {
                        Value::String(text) => self.text(Layer::Tool, text),
                        Value::Object(fields) if is_attachment(fields) => {
                            self.add(Layer::Tool, ATTACHMENT_TOKENS);
                        }
                        Value::Object(fields)
                            if fields.get("type").and_then(Value::as_str) == Some("document") =>
                        {
                            self.document(Layer::Tool, fields);
                        }
                        other => self.leaves(Layer::Tool, other),
                    }
                }
            }
            other => self.leaves(Layer::Tool, other),
        }
    }

    /// Counts an Anthropic `document` block: title, context and its source's text.
    fn document(&mut self, layer: Layer, block: &Map<String, Value>) {
        self.text_of(layer, block.get("title"));
        self.text_of(layer, block.get("context"));
        let Some(Value::Object(source)) = block.get("source") else {
            return;
        };
        match source.get("type").and_then(Value::as_str) {
            Some("text") => self.text_of(layer, source.get("data")),
            Some("content") => match source.get("content") {
                Some(Value::Array(blocks)) => {
                    for block in blocks {
                        match block {
                            Value::Object(b) if is_attachment(b) => {
                                self.add(layer, ATTACHMENT_TOKENS);
                            }
                            other => self.leaves(layer, other),
                        }
                    }
                }
                Some(other) => self.leaves(layer, other),
                None => {}
            },
            _ => self.add(layer, ATTACHMENT_TOKENS),
        }
    }
}

/// Whether a content part is an image, audio clip or file (any API's spelling).
fn is_attachment(part: &Map<String, Value>) -> bool {
    matches!(
        part.get("type").and_then(Value::as_str),
        Some(
            "image"
                | "image_url"
                | "input_image"
                | "audio"
                | "input_audio"
                | "file"
                | "input_file"
                | "container_upload"
        )
    )
}

/// Whether a value is absent, null, `""` or `[]`.
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn role(item: &Value) -> Option<&str> {
    item.get("role").and_then(Value::as_str)
}

/// The list under `key`, or an error naming the field.
fn required_array<'a>(
    request: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], WireError> {
    match request.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(WireError::new(key, "expected an array")),
        None => Err(WireError::new(key, "missing")),
    }
}

/// The layer of a message by its role and whether it is the current user input.
fn message_layer(role: Option<&str>, current: bool) -> Layer {
    match role {
        Some("user") if current => Layer::Prompt,
        Some("user" | "assistant") => Layer::Memory,
        Some("tool" | "function") => Layer::Tool,
        _ => Layer::Prompt,
    }
}

/// Counts a structured-output schema (`response_format` / `text.format`) as prompt.
fn output_schema(tally: &mut Tally, format: Option<&Value>) {
    let schema = format.filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"));
    if let Some(schema) = schema {
        tally.json(Layer::Prompt, schema);
    }
}

// --- OpenAI chat completions -----------------------------------------------------------------

fn chat(tally: &mut Tally, request: &Map<String, Value>) -> Result<(), WireError> {
    let messages = required_array(request, "messages")?;
    let current = messages.iter().rposition(|m| role(m) == Some("user"));
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            tally.leaves(Layer::Prompt, message);
            continue;
        };
        let role = message.get("role").and_then(Value::as_str);
        let layer = message_layer(role, current == Some(i));
        let calls = message
            .get("tool_calls")
            .or_else(|| message.get("function_call"));
        let only_calls = is_empty(message.get("content")) && !is_empty(calls);
        tally.add(
            if only_calls { Layer::Tool } else { layer },
            MESSAGE_OVERHEAD,
        );
        tally.text_of(layer, message.get("name"));
        tally.text_of(layer, message.get("refusal"));
        match message.get("content") {
            // Everything a tool returned is tool, whatever its parts.
            Some(content) if layer == Layer::Tool => tally.tool_output(content),
            Some(content) => chat_content(tally, layer, content),
            None => {}
        }
        match message.get("tool_calls") {
            Some(Value::Array(calls)) => {
                for call in calls {
                    // `{"function": {name, arguments}}` or `{"custom": {name, input}}`.
                    let inner = call.get("function").or_else(|| call.get("custom"));
                    tally.tool_call(inner.unwrap_or(call));
                }
            }
            Some(other) => tally.leaves(Layer::Tool, other),
            None => {}
        }
        if let Some(call) = message.get("function_call") {
            tally.tool_call(call);
        }
    }
    tally.tool_definitions(request.get("tools"));
    tally.tool_definitions(request.get("functions"));
    output_schema(tally, request.get("response_format"));
    Ok(())
}

/// Counts a chat message's `content`: a string or an array of parts.
fn chat_content(tally: &mut Tally, layer: Layer, content: &Value) {
    match content {
        Value::Null => {}
        Value::String(text) => tally.text(layer, text),
        Value::Array(parts) => {
            for part in parts {
                match part {
                    Value::String(text) => tally.text(layer, text),
                    Value::Object(fields) => text_part(tally, layer, part, fields),
                    other => tally.leaves(Layer::Prompt, other),
                }
            }
        }
        other => tally.leaves(Layer::Prompt, other),
    }
}

/// Counts one content part of OpenAI's chat or Responses shapes.
fn text_part(tally: &mut Tally, layer: Layer, part: &Value, fields: &Map<String, Value>) {
    match fields.get("type").and_then(Value::as_str) {
        Some("text" | "input_text" | "output_text" | "summary_text" | "reasoning_text") => {
            tally.text_of(layer, fields.get("text"));
        }
        Some("refusal") => tally.text_of(layer, fields.get("refusal")),
        _ if is_attachment(fields) => tally.add(layer, ATTACHMENT_TOKENS),
        _ => tally.leaves(Layer::Prompt, part),
    }
}

// --- OpenAI Responses ------------------------------------------------------------------------

fn responses(tally: &mut Tally, request: &Map<String, Value>) -> Result<(), WireError> {
    if let Some(instructions) = request.get("instructions") {
        tally.leaves(Layer::Prompt, instructions);
    }
    match request.get("input") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => tally.text(Layer::Prompt, text),
        Some(Value::Array(items)) => responses_items(tally, items),
        Some(_) => return Err(WireError::new("input", "expected a string or an array")),
    }
    tally.tool_definitions(request.get("tools"));
    output_schema(
        tally,
        request.get("text").and_then(|text| text.get("format")),
    );
    if let Some(variables) = request.get("prompt").and_then(|p| p.get("variables")) {
        tally.leaves(Layer::Prompt, variables);
    }
    Ok(())
}

/// Whether a Responses input item is a message (`type: message`, or no type and a role).
fn is_message_item(item: &Value) -> bool {
    match item.get("type").and_then(Value::as_str) {
        Some(kind) => kind == "message",
        None => role(item).is_some(),
    }
}

fn responses_items(tally: &mut Tally, items: &[Value]) {
    let current = items
        .iter()
        .rposition(|item| is_message_item(item) && role(item) == Some("user"));
    for (i, item) in items.iter().enumerate() {
        let Value::Object(fields) = item else {
            tally.leaves(Layer::Prompt, item);
            continue;
        };
        if is_message_item(item) {
            let layer = message_layer(role(item), current == Some(i));
            tally.add(layer, MESSAGE_OVERHEAD);
            if let Some(content) = fields.get("content") {
                chat_content(tally, layer, content);
            }
            continue;
        }
        let kind = fields
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "item_reference" => {}
            "function_call" | "custom_tool_call" => {
                tally.add(Layer::Tool, MESSAGE_OVERHEAD);
                tally.tool_call(item);
            }
            "function_call_output" | "custom_tool_call_output" => {
                tally.add(Layer::Tool, MESSAGE_OVERHEAD);
                if let Some(output) = fields.get("output") {
                    tally.tool_output(output);
                }
            }
            "reasoning" => {
                tally.add(Layer::Memory, MESSAGE_OVERHEAD);
                for key in ["summary", "content"] {
                    if let Some(Value::Array(parts)) = fields.get(key) {
                        for part in parts {
                            tally.text_of(Layer::Memory, part.get("text"));
                        }
                    }
                }
            }
            _ if kind.ends_with("_call")
                || kind.ends_with("_output")
                || kind.starts_with("mcp_") =>
            {
                tally.add(Layer::Tool, MESSAGE_OVERHEAD);
                tally.leaves(Layer::Tool, item);
            }
            _ => {
                tally.add(Layer::Prompt, MESSAGE_OVERHEAD);
                tally.leaves(Layer::Prompt, item);
            }
        }
    }
}

// --- Anthropic messages ----------------------------------------------------------------------

/// Whether an Anthropic block is a tool call or a tool result (client, server or MCP tool).
fn is_tool_block(block: &Value) -> bool {
    block
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("tool_use") || kind.ends_with("tool_result"))
}

/// Whether an Anthropic message holds anything besides tool calls and results.
fn has_own_content(message: &Value) -> bool {
    match message.get("content") {
        Some(Value::Array(blocks)) => blocks.iter().any(|block| !is_tool_block(block)),
        content => !is_empty(content),
    }
}

fn messages(tally: &mut Tally, request: &Map<String, Value>) -> Result<(), WireError> {
    match request.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => tally.text(Layer::Prompt, text),
        Some(Value::Array(blocks)) => {
            for block in blocks {
                anthropic_block(tally, Layer::Prompt, block);
            }
        }
        Some(other) => tally.leaves(Layer::Prompt, other),
    }
    let messages = required_array(request, "messages")?;
    let current = messages
        .iter()
        .rposition(|m| role(m) == Some("user") && has_own_content(m));
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(fields) = message else {
            tally.leaves(Layer::Prompt, message);
            continue;
        };
        let layer = message_layer(role(message), current == Some(i));
        let overhead_layer = if has_own_content(message) {
            layer
        } else {
            Layer::Tool
        };
        tally.add(overhead_layer, MESSAGE_OVERHEAD);
        match fields.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => tally.text(layer, text),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    anthropic_block(tally, layer, block);
                }
            }
            Some(other) => tally.leaves(Layer::Prompt, other),
        }
    }
    tally.tool_definitions(request.get("tools"));
    Ok(())
}

/// Counts one Anthropic content block of a message whose own layer is `layer`.
fn anthropic_block(tally: &mut Tally, layer: Layer, block: &Value) {
    let Value::Object(fields) = block else {
        match block {
            Value::String(text) => tally.text(layer, text),
            other => tally.leaves(Layer::Prompt, other),
        }
        return;
    };
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => tally.text_of(layer, fields.get("text")),
        "image" => tally.add(layer, ATTACHMENT_TOKENS),
        "document" => tally.document(Layer::Memory, fields),
        "search_result" => tally.leaves(Layer::Memory, block),
        "thinking" => tally.text_of(Layer::Memory, fields.get("thinking")),
        "redacted_thinking" => {}
        _ if kind.ends_with("tool_use") => tally.tool_call(block),
        _ if kind.ends_with("tool_result") => match fields.get("content") {
            Some(content) => tally.tool_output(content),
            None => tally.leaves(Layer::Tool, block),
        },
        _ if is_attachment(fields) => tally.add(layer, ATTACHMENT_TOKENS),
        _ => tally.leaves(Layer::Prompt, block),
    }
}

// --- OpenAI embeddings -----------------------------------------------------------------------

fn embeddings(tally: &mut Tally, request: &Map<String, Value>) -> Result<(), WireError> {
    match request.get("input") {
        Some(Value::String(text)) => tally.text(Layer::Prompt, text),
        Some(Value::Array(inputs)) => {
            for input in inputs {
                match input {
                    Value::String(text) => tally.text(Layer::Prompt, text),
                    // A token array: one token per number.
                    Value::Number(_) => tally.add(Layer::Prompt, 1),
                    Value::Array(tokens) => {
                        let numbers = tokens.iter().filter(|t| t.is_number()).count();
                        tally.add(Layer::Prompt, u64::try_from(numbers).unwrap_or(u64::MAX));
                    }
                    other => tally.leaves(Layer::Prompt, other),
                }
            }
        }
        Some(_) => return Err(WireError::new("input", "expected a string or an array")),
        None => return Err(WireError::new("input", "missing")),
    }
    Ok(())
}

// --- Tokenizer -------------------------------------------------------------------------------

/// Texts shorter than this are tokenised every time: cheaper than hashing and locking.
const CACHE_MIN_BYTES: usize = 64;
/// Number of independently locked parts of the count cache.
const CACHE_SHARDS: usize = 16;
/// Entries per part; a full part is emptied (at most 64 Ki entries, about 2 MB in all).
const CACHE_SHARD_ENTRIES: usize = 4096;

/// Token counts of recently seen texts by a seeded 64-bit hash of their bytes. The seed is
/// random per process, so nobody can craft texts whose counts collide with someone else's.
struct CountCache {
    seed: u64,
    shards: [Mutex<HashMap<u64, u64>>; CACHE_SHARDS],
}

static CACHE: LazyLock<CountCache> = LazyLock::new(|| CountCache {
    seed: std::collections::hash_map::RandomState::new().hash_one(0x6275_726e_7261_7465_u64),
    shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
});

impl CountCache {
    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        // The shard index comes from the high bits; HashMap uses its own hash of the key.
        let index = usize::try_from(key >> 60).unwrap_or(0) % CACHE_SHARDS;
        match self.shards[index].lock() {
            Ok(guard) => guard,
            // A map of plain numbers cannot be left half-updated: keep using it.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Number of o200k tokens in `text`.
pub(crate) fn count_tokens(text: &str) -> u64 {
    if text.len() < CACHE_MIN_BYTES {
        return tokenize(text);
    }
    let cache = &*CACHE;
    let key = xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), cache.seed);
    if let Some(&tokens) = cache.shard(key).get(&key) {
        return tokens;
    }
    let tokens = tokenize(text);
    let mut shard = cache.shard(key);
    if shard.len() >= CACHE_SHARD_ENTRIES {
        shard.clear();
    }
    shard.insert(key, tokens);
    tokens
}

/// Tokenises `text` chunk by chunk; see the module documentation.
fn tokenize(text: &str) -> u64 {
    // `estimate` fails at its start when the tokenizer did not load, so this never counts 0.
    let Ok(tokenizer) = o200k::tokenizer() else {
        return 0;
    };
    let mut tokens: u64 = 0;
    PIECES.with_borrow_mut(|pieces| {
        for_each_chunk(text, |chunk| {
            // `Tokenizer::count`, with the pieces' counts remembered.
            let chunk = tokenizer.normalize(chunk);
            for piece in tokenizer.split(chunk.as_str()) {
                let n = pieces.count(&tokenizer.bpe, piece.as_bytes());
                tokens = tokens.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            }
        });
    });
    tokens
}

/// Longest pre-token whose count is remembered.
const PIECE_MAX_BYTES: usize = 16;
/// Remembered pre-tokens per thread; a full memo is emptied. 7/8 of 4,096 buckets of 25
/// bytes: about 100 KB per thread at most.
const PIECE_ENTRIES: usize = 3584;

thread_local! {
    static PIECES: std::cell::RefCell<PieceCounts> = std::cell::RefCell::default();
}

/// The token counts of short pre-tokens (words, numbers, punctuation) this thread has seen.
/// Counting one allocates the encoder's state, which was the tokenizer's largest cost in the
/// gateway's profile; text repeats its words, and a count never changes, so the memo is exact.
#[derive(Default)]
struct PieceCounts {
    /// By the piece's bytes, zero-padded, and its length.
    counts: rustc_hash::FxHashMap<([u8; PIECE_MAX_BYTES], u8), u32>,
}

impl PieceCounts {
    fn count(
        &mut self,
        bpe: &bpe_openai::byte_pair_encoding::BytePairEncoding,
        piece: &[u8],
    ) -> usize {
        if piece.len() > PIECE_MAX_BYTES {
            return bpe.count(piece);
        }
        let mut bytes = [0u8; PIECE_MAX_BYTES];
        bytes[..piece.len()].copy_from_slice(piece);
        // The length is part of the key: a piece may end in zero bytes.
        let key = (bytes, piece.len() as u8);
        if let Some(&count) = self.counts.get(&key) {
            return count as usize;
        }
        let count = bpe.count(piece);
        if self.counts.len() >= PIECE_ENTRIES {
            self.counts.clear();
        }
        self.counts
            .insert(key, u32::try_from(count).unwrap_or(u32::MAX));
        count
    }
}

/// Preferred chunk size for one tokenizer call.
const CHUNK_BYTES: usize = 4096;
/// Longest run without an exact split point before it is cut anyway.
const MAX_RUN_BYTES: usize = 256;

/// Calls `f` with consecutive chunks of `text` that together make up all of it.
///
/// A chunk ends before a space that follows a non-whitespace character once it is
/// [`CHUNK_BYTES`] long. No o200k pre-token crosses such a point (no pattern of its regex
/// matches whitespace after a non-whitespace character, and the regex only looks ahead), so the
/// chunks' counts add up to the whole text's. A stretch of [`MAX_RUN_BYTES`] without such a point
/// (one long word, minified JSON, base64, a run of spaces) is cut at a character boundary.
fn for_each_chunk(text: &str, mut f: impl FnMut(&str)) {
    let mut start = 0;
    let mut run_start = 0;
    let mut after_non_space = false;
    for (i, ch) in text.char_indices() {
        if ch == ' ' && after_non_space {
            if i - start >= CHUNK_BYTES {
                f(&text[start..i]);
                start = i;
            }
            run_start = i;
        } else if i - run_start >= MAX_RUN_BYTES {
            f(&text[start..i]);
            start = i;
            run_start = i;
        }
        after_non_space = !ch.is_whitespace();
    }
    if start < text.len() {
        f(&text[start..]);
    }
}
