//! How the mock derives token counts from a request. Every number is a pure function of the
//! request body and the control headers.
//!
//! * Text bytes: the bytes of every string value and object key under the prompt-bearing
//!   fields (`cache_control` objects are skipped, so marking a cache does not change the
//!   count). Counting keys stands in for the per-message framing real tokenizers add.
//! * Tokens: `ceil(bytes / 4)`, at least 1 for a prompt.
//! * Output: a deterministic reply of [`DEFAULT_REPLY_TOKENS`] tokens (or a tool call), plus
//!   reasoning for reasoning models, bounded by the request's `max_tokens`-style cap.

use serde_json::{Map, Value};

use crate::control::{Controls, ToolMode};

/// Visible tokens of a plain text reply when nothing bounds or sets it.
pub(crate) const DEFAULT_REPLY_TOKENS: u64 = 16;

/// Bytes of text in `value` (strings and keys, `cache_control` skipped).
pub(crate) fn text_bytes(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(text_bytes).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "cache_control")
            .map(|(k, v)| k.len() as u64 + text_bytes(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// Bytes of text in the named top-level fields of a request.
pub(crate) fn fields_bytes(request: &Map<String, Value>, fields: &[&str]) -> u64 {
    fields
        .iter()
        .filter_map(|f| request.get(*f))
        .map(text_bytes)
        .sum()
}

/// Tokens for `bytes` of text: a quarter, rounded up.
pub(crate) fn tokens(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

/// OpenAI's cached read for a request that names a `prompt_cache_key`: seven eighths of the
/// prompt, rounded down to OpenAI's 128-token cache blocks once past the 1024-token minimum.
pub(crate) fn openai_cached(prompt_tokens: u64) -> u64 {
    let cached = prompt_tokens * 7 / 8;
    if cached >= 1024 {
        cached / 128 * 128
    } else {
        cached
    }
}

/// Whether `model` is an OpenAI reasoning model (reports `reasoning_tokens`).
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|prefix| model.starts_with(prefix))
}

/// OpenAI reasoning tokens for a reasoning effort (`None`: the default, medium).
pub(crate) fn reasoning_for_effort(effort: Option<&str>) -> u64 {
    match effort {
        Some("none" | "minimal") => 0,
        Some("low") => 64,
        Some("high") => 512,
        Some("xhigh") => 1024,
        _ => 192,
    }
}

/// Anthropic thinking tokens for a `thinking` request object (0 when disabled).
pub(crate) fn thinking_tokens(thinking: Option<&Value>) -> u64 {
    let Some(thinking) = thinking else { return 0 };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(1024);
            (budget / 16).clamp(16, 256)
        }
        Some("adaptive") => 128,
        _ => 0,
    }
}

/// The tool a reply calls: its name and the JSON arguments it passes.
#[derive(Clone, Debug)]
pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// A call to `name` with arguments synthesised from its JSON schema.
    pub(crate) fn new(name: &str, schema: Option<&Value>) -> Self {
        Self {
            name: name.to_owned(),
            arguments: arguments(schema).to_string(),
        }
    }

    /// Output tokens a model spends on this call.
    pub(crate) fn tokens(&self) -> u64 {
        10 + tokens(self.arguments.len() as u64)
    }
}

/// Whether to answer with a tool call, given the control header, whether the request's
/// `tool_choice` forbids tools, and whether the last message is already a tool result.
pub(crate) fn wants_tool(controls: &Controls, choice_none: bool, after_tool_result: bool) -> bool {
    match controls.tool_mode {
        ToolMode::Never => false,
        ToolMode::Always => !choice_none,
        ToolMode::Auto => !choice_none && !after_tool_result,
    }
}

/// Deterministic arguments for a JSON schema: the required properties (all properties when
/// none are required), each with a value of its type (the first `enum` value when given).
fn arguments(schema: Option<&Value>) -> Value {
    let Some(schema) = schema else {
        return Value::Object(Map::new());
    };
    example(schema, 0)
}

fn example(schema: &Value, depth: usize) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" if depth < 4 => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (name, sub) in props {
                    if required.is_empty() || required.contains(&name.as_str()) {
                        out.insert(name.clone(), example(sub, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "object" => Value::Object(Map::new()),
        "array" => match schema.get("items") {
            Some(items) if depth < 4 => Value::Array(vec![example(items, depth + 1)]),
            _ => Value::Array(Vec::new()),
        },
        "integer" => Value::from(42),
        "number" => Value::from(1.5),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String("Paris".to_owned()),
    }
}

/// The output of one call: what is visible, what was reasoning, and whether a cap cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Output {
    /// Visible text tokens (for a tool call: the tokens reported for the call).
    pub visible: u64,
    /// Reasoning (OpenAI) or thinking (Anthropic) tokens.
    pub reasoning: u64,
    /// `visible + reasoning`: what the provider reports as output.
    pub total: u64,
    /// The request's cap stopped the reply (`finish_reason: length`, `max_tokens`).
    pub truncated: bool,
}

/// Plans the output: `x-mock-output-tokens` fixes the total; otherwise the natural reply
/// (default text or the tool call, plus `reasoning`) is bounded by `cap`. Reasoning takes at
/// most half of a fixed total unless `x-mock-reasoning-tokens` sets it.
pub(crate) fn plan_output(
    controls: &Controls,
    tool: Option<&ToolCall>,
    reasoning: u64,
    cap: Option<u64>,
) -> Output {
    let reasoning = controls.reasoning_tokens.unwrap_or(reasoning);
    let natural = tool.map_or(DEFAULT_REPLY_TOKENS, ToolCall::tokens);
    if let Some(total) = controls.output_tokens {
        let reasoning = if controls.reasoning_tokens.is_some() {
            reasoning.min(total)
        } else {
            reasoning.min(total / 2)
        };
        return Output {
            visible: total - reasoning,
            reasoning,
            total,
            truncated: false,
        };
    }
    let wanted = natural + reasoning;
    match cap {
        Some(cap) if cap < wanted && tool.is_none() => {
            let reasoning = reasoning.min(cap);
            Output {
                visible: cap - reasoning,
                reasoning,
                total: cap,
                truncated: true,
            }
        }
        _ => Output {
            visible: natural,
            reasoning,
            total: wanted,
            truncated: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use serde_json::json;

    fn controls() -> Controls {
        Controls::from_headers(&HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn counts_strings_and_keys_but_not_cache_markers() {
        let plain = json!([{"role": "user", "content": "Hello"}]);
        let marked =
            json!([{"role": "user", "content": "Hello", "cache_control": {"type": "ephemeral"}}]);
        assert_eq!(text_bytes(&plain), 20);
        assert_eq!(text_bytes(&marked), 20);
        assert_eq!(tokens(20), 5);
        assert_eq!(tokens(21), 6);
    }

    #[test]
    fn openai_cache_blocks() {
        assert_eq!(openai_cached(8), 7);
        assert_eq!(openai_cached(1144), 1001);
        assert_eq!(openai_cached(1500), 1280);
    }

    #[test]
    fn tool_arguments_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "f"]},
            "days": {"type": "integer"}}, "required": ["location", "unit"]});
        let call = ToolCall::new("get_weather", Some(&schema));
        assert_eq!(call.arguments, r#"{"location":"Paris","unit":"celsius"}"#);
        assert_eq!(ToolCall::new("x", None).arguments, "{}");
    }

    #[test]
    fn output_plans() {
        let c = controls();
        let plain = plan_output(&c, None, 0, None);
        assert_eq!(
            (plain.visible, plain.total, plain.truncated),
            (16, 16, false)
        );
        let capped = plan_output(&c, None, 192, Some(100));
        assert_eq!(
            (capped.visible, capped.reasoning, capped.truncated),
            (0, 100, true)
        );
        let mut fixed = controls();
        fixed.output_tokens = Some(50);
        let out = plan_output(&fixed, None, 192, Some(10));
        assert_eq!((out.visible, out.reasoning, out.total), (25, 25, 50));
        assert!(is_reasoning_model("gpt-5-mini") && !is_reasoning_model("gpt-4.1"));
    }
}
