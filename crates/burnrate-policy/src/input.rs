//! What bounds a request's input tokens before it runs.
//!
//! For plain text the body's byte length is a strict upper bound: every token of a byte-level
//! BPE vocabulary covers at least one byte, and JSON only adds bytes around the text. Some
//! constructs bill input the body does not carry, and for those only the model's context
//! window bounds the input:
//! - images, documents, audio and files (by URL, by id or inline: an image's token count
//!   follows its pixels, not its base64 length);
//! - state held by the provider (`previous_response_id`, `conversation`, item references,
//!   stored `prompt` templates);
//! - server-side tools (web search and fetch, file search, code execution, MCP servers) whose
//!   results enter the context inside the call.
//!
//! Tool definitions also make the provider add a fixed system prompt of its own (Anthropic
//! documents 300-350 tokens, plus up to about 1,250 for its computer-use, bash and editor
//! tools), so a request with tools adds [`TOOLS_OVERHEAD_TOKENS`] to its bound.
//!
//! The scan is one regular-expression pass over the body for the constructs' JSON shapes:
//! content parts and tools by their `"type"`, provider state by its key. A match inside a
//! message's text is impossible (the text's quotes are escaped) and a false match, say a tool
//! parameter named `conversation`, only makes the reservation larger. A key spelled with
//! `\u` escapes would hide from the scan, so an escaped ASCII letter (which no common
//! encoder writes) counts as such a construct too.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// Tokens added to the input bound of a request that defines tools.
pub const TOOLS_OVERHEAD_TOKENS: u64 = 4_096;

/// What the scan of a request body found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputShape {
    /// The request defines tools (or legacy functions).
    pub tools: bool,
    /// The first construct found whose input the body does not bound, if any.
    pub unbounded_by: Option<&'static str>,
}

/// The constructs, one capture group each, in the order of [`CONSTRUCTS`].
const PATTERN: &str = concat!(
    r#""type"\s*:\s*"(image|image_url|input_image)""#,
    r#"|"type"\s*:\s*"(document|file|input_file|container_upload)"|"(file_id)"\s*:"#,
    r#"|"type"\s*:\s*"(input_audio)""#,
    r#"|"(previous_response_id)"\s*:"#,
    r#"|"(conversation)"\s*:"#,
    r#"|"type"\s*:\s*"(item_reference)""#,
    r#"|"(prompt)"\s*:\s*\{(?:[^{}]|\{[^{}]*\})*"id"\s*:"#,
    r#"|"type"\s*:\s*"(web_search[a-z0-9_]*|web_fetch[a-z0-9_]*)"|"(web_search_options)"\s*:"#,
    r#"|"type"\s*:\s*"(file_search|code_interpreter|code_execution[a-z0-9_]*|image_generation|mcp)""#,
    r#"|"(mcp_servers)"\s*:"#,
    r#"|(\\u00[4-7])"#,
    r#"|"(tools|functions)"\s*:\s*\[\s*\{"#,
);

/// What each capture group of [`PATTERN`] means: `None` for tool definitions.
const CONSTRUCTS: &[Option<&str>] = &[
    Some("image input"),
    Some("file input"),
    Some("file input"),
    Some("audio input"),
    Some("previous_response_id"),
    Some("conversation"),
    Some("item reference"),
    Some("stored prompt template"),
    Some("web search tool"),
    Some("web search tool"),
    Some("server tool"),
    Some("MCP servers"),
    Some("escaped ASCII letters"),
    None,
];

static SCANNER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(PATTERN).ok());

/// Scans a request body for what bounds its input.
pub fn input_shape(body: &[u8]) -> InputShape {
    let mut shape = InputShape::default();
    let Some(scanner) = SCANNER.as_ref() else {
        // The needles are constants that always build; should they not, assume the worst.
        shape.unbounded_by = Some("unscanned body");
        return shape;
    };
    for found in scanner.captures_iter(body) {
        let group = (1..found.len()).find(|&group| found.get(group).is_some());
        match group.and_then(|group| CONSTRUCTS.get(group - 1)) {
            Some(None) => shape.tools = true,
            Some(Some(construct)) => {
                shape.unbounded_by = Some(construct);
                return shape;
            }
            None => {}
        }
    }
    shape
}

/// The most input tokens a request of `body_bytes` with `shape` can bill on a model whose
/// context window is `max_input_tokens` (`None`: not known) and whose highest price band
/// starts above `top_band` tokens (0 without bands).
pub fn input_bound(
    body_bytes: u64,
    shape: InputShape,
    max_input_tokens: Option<u64>,
    top_band: u64,
) -> u64 {
    let overhead = if shape.tools {
        TOOLS_OVERHEAD_TOKENS
    } else {
        0
    };
    let text = body_bytes.saturating_add(overhead);
    if shape.unbounded_by.is_none() {
        return text;
    }
    // A price band above the listed window means the table's window is out of date (a
    // long-context variant): then no listed figure bounds the input.
    let window = max_input_tokens
        .filter(|window| top_band < *window)
        .unwrap_or(UNKNOWN_MAX_INPUT);
    text.max(window)
}

/// The input bound when a model's context window is not known: the largest window offered
/// today (2M tokens).
pub const UNKNOWN_MAX_INPUT: u64 = 2_097_152;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn shape(value: &serde_json::Value) -> InputShape {
        input_shape(&serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn plain_text_is_bounded_by_the_body() {
        let chat = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Describe an image of a file in a document."},
            {"role": "user", "content": "what is \"type\": \"image\" in \"prompt\"?"}]});
        assert_eq!(shape(&chat), InputShape::default());
        // Tool parameters named like the constructs are not the constructs.
        let tools = json!({"model": "gpt-4o", "messages": [], "tools": [{"type": "function",
            "function": {"name": "draw", "parameters": {"type": "object", "properties": {
                "image": {"type": "string"}, "prompt": {"type": "string"},
                "file": {"type": "string"}}}}}]});
        assert_eq!(
            shape(&tools),
            InputShape {
                tools: true,
                unbounded_by: None
            }
        );
        assert_eq!(input_bound(500, shape(&chat), Some(128_000), 0), 500);
    }

    #[test]
    fn tools_add_the_providers_system_prompt() {
        let chat = json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
        let found = shape(&chat);
        assert!(found.tools);
        assert_eq!(found.unbounded_by, None);
        assert_eq!(
            input_bound(300, found, Some(200_000), 0),
            300 + TOOLS_OVERHEAD_TOKENS
        );
    }

    #[test]
    fn input_the_body_does_not_carry_is_bounded_by_the_context_window() {
        let cases = [
            (
                json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
                "image input",
            ),
            (
                json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [
                    {"type": "document", "source": {"type": "file", "file_id": "f"}}]}]}),
                "file input",
            ),
            (
                json!({"model": "gpt-5", "input": [{"role": "user", "content": [
                    {"type": "input_file", "file_id": "file-1"}]}]}),
                "file input",
            ),
            (
                json!({"model": "gpt-5", "input": "go on", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "gpt-5", "input": "go on", "conversation": "conv_1"}),
                "conversation",
            ),
            (
                json!({"model": "gpt-5", "prompt": {"id": "pmpt_1", "version": "2"}}),
                "stored prompt template",
            ),
            (
                json!({"model": "gpt-5", "input": "news?", "tools": [{"type": "web_search"}]}),
                "web search tool",
            ),
            (
                json!({"model": "claude-sonnet-4-5", "messages": [],
                    "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
                "web search tool",
            ),
            (
                json!({"model": "gpt-5", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                "item reference",
            ),
            (
                json!({"model": "claude-sonnet-4-5", "messages": [], "mcp_servers": []}),
                "MCP servers",
            ),
        ];
        for (body, construct) in cases {
            let found = shape(&body);
            assert_eq!(found.unbounded_by, Some(construct), "{body}");
            assert_eq!(input_bound(900, found, Some(128_000), 0), 128_000);
            assert_eq!(input_bound(900, found, None, 0), UNKNOWN_MAX_INPUT);
        }
    }

    #[test]
    fn a_key_hidden_behind_escapes_is_still_caught() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"\u0069mage_url","\u0069mage_url":{"url":"u"}}]}]}"#;
        assert_eq!(
            input_shape(body).unbounded_by,
            Some("escaped ASCII letters")
        );
        // Escapes of non-ASCII text, which every encoder writes, are not.
        let text =
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"caf\u00e9 \u4e2d"}]}"#;
        assert_eq!(input_shape(text).unbounded_by, None);
    }

    #[test]
    fn a_price_band_above_the_listed_window_distrusts_the_window() {
        let opaque = InputShape {
            tools: false,
            unbounded_by: Some("image input"),
        };
        assert_eq!(
            input_bound(10, opaque, Some(200_000), 200_000),
            UNKNOWN_MAX_INPUT
        );
        assert_eq!(input_bound(10, opaque, Some(1_048_576), 200_000), 1_048_576);
    }

    proptest! {
        /// Whatever the body, the bound covers the body and the scan never panics.
        #[test]
        fn the_bound_never_falls_below_the_body(body in proptest::collection::vec(any::<u8>(), 0..512),
                                              window in proptest::option::of(1u64..3_000_000)) {
            let found = input_shape(&body);
            let bytes = body.len() as u64;
            prop_assert!(input_bound(bytes, found, window, 0) >= bytes);
        }
    }
}
