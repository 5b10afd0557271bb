use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

use super::*;

/// A tokenizer of the tests' own, so expected numbers do not go through the module's chunking
/// or cache.
static O200K: LazyLock<CoreBPE> = LazyLock::new(|| tiktoken_rs::o200k_base().unwrap());

/// The module's tokenizer.
fn tokenizer() -> &'static bpe_openai::Tokenizer {
    o200k::tokenizer().unwrap()
}

/// Tokens of `text`, counted independently of the module.
fn tok(text: &str) -> u64 {
    O200K.encode_ordinary(text).len() as u64
}

/// Tokens of a JSON value serialised as the module serialises tool definitions.
fn tok_json(value: &Value) -> u64 {
    tok(&serde_json::to_string(value).unwrap())
}

fn est(api: Api, body: &Value) -> LayerEstimate {
    estimate(api, &serde_json::to_vec(body).unwrap()).unwrap()
}

const OH: u64 = MESSAGE_OVERHEAD;
const ATT: u64 = ATTACHMENT_TOKENS;

// --- OpenAI chat -----------------------------------------------------------------------------

#[test]
fn chat_roles_parts_and_tools() {
    let tool = json!({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}});
    let body = json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in one word."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "And of Spain?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}
        ],
        "tools": [tool],
    });
    let got = est(Api::ChatCompletions, &body);
    let prompt = OH
        + tok("You are a terse assistant.")
        + OH
        + tok("Answer in one word.")
        + OH
        + tok("And of Spain?")
        + ATT;
    let memory = OH + tok("What is the capital of France?") + OH + tok("Paris.");
    assert_eq!(
        got,
        LayerEstimate {
            prompt,
            tool: tok_json(&tool),
            memory
        }
    );
    assert!(got.prompt > 0 && got.tool > 0 && got.memory > 0);
}

#[test]
fn chat_tool_calls_and_tool_messages_are_tool() {
    let arguments = r#"{"city":"Paris"}"#;
    let body = json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": r#"{"temp":18}"#},
        ]
    });
    let got = est(Api::ChatCompletions, &body);
    assert_eq!(
        got,
        LayerEstimate {
            prompt: OH + tok("Weather in Paris?"),
            tool: OH + tok("get_weather") + tok(arguments) + OH + tok(r#"{"temp":18}"#),
            memory: 0,
        }
    );
}

#[test]
fn chat_legacy_functions_names_unknown_roles_and_parts() {
    let function = json!({"name": "f", "parameters": {}});
    let schema =
        json!({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}});
    let body = json!({
        "messages": [
            {"role": "user", "name": "alice", "content": "Hi"},
            {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "ok"},
            {"role": "critic", "content": "unknown role text"},
            {"role": "user", "content": [{"type": "mystery", "note": "strange part"}, 42]},
            "a bare string message",
        ],
        "functions": [function],
        "response_format": schema,
    });
    let got = est(Api::ChatCompletions, &body);
    assert_eq!(
        got,
        LayerEstimate {
            // Unknown role, the unknown part of the current input, the bare string, the schema.
            prompt: OH
                + tok("unknown role text")
                + OH
                + tok("strange part")
                + tok("a bare string message")
                + tok_json(&schema),
            tool: OH + tok("f") + tok("{}") + OH + tok("f") + tok("ok") + tok_json(&function),
            memory: OH + tok("alice") + tok("Hi"),
        }
    );
}

// --- OpenAI Responses ------------------------------------------------------------------------

#[test]
fn responses_items() {
    let arguments = r#"{"city":"Oslo"}"#;
    let tool = json!({"type": "function", "name": "get_weather", "parameters": {"type": "object"}});
    let format = json!({"type": "json_schema", "name": "answer", "schema": {"type": "object"}});
    let body = json!({
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": arguments},
            {"type": "function_call_output", "call_id": "c1", "output": r#"{"temp":3}"#},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "User wants weather."}],
             "encrypted_content": "gAAAAABo"},
            {"role": "user", "content": [
                {"type": "input_text", "text": "And tomorrow?"},
                {"type": "input_image", "image_url": "https://example.com/sky.png"}
            ]},
            {"type": "item_reference", "id": "msg_1"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed",
             "action": {"type": "search", "query": "oslo weather"}},
            {"type": "hologram", "words": "never seen"},
        ],
        "tools": [tool],
        "text": {"format": format},
    });
    let got = est(Api::Responses, &body);
    assert_eq!(
        got,
        LayerEstimate {
            prompt: tok("Be brief.")
                + OH
                + tok("Use metric units.")
                + OH
                + tok("And tomorrow?")
                + ATT
                + OH
                + tok("never seen")
                + tok_json(&format),
            tool: OH
                + tok("get_weather")
                + tok(arguments)
                + OH
                + tok(r#"{"temp":3}"#)
                + OH
                + tok("oslo weather")
                + tok_json(&tool),
            memory: OH
                + tok("Weather in Oslo?")
                + OH
                + tok("Let me check.")
                + OH
                + tok("User wants weather."),
        }
    );
}

#[test]
fn responses_string_input_and_no_input() {
    let body = json!({"instructions": "You are helpful.", "input": "Hello there, how are you?"});
    assert_eq!(
        est(Api::Responses, &body),
        LayerEstimate {
            prompt: tok("You are helpful.") + tok("Hello there, how are you?"),
            tool: 0,
            memory: 0
        }
    );
    // With `previous_response_id` the input may be absent.
    let body = json!({"previous_response_id": "resp_1", "prompt": {"id": "pmpt_1", "variables": {"city": "Rome"}}});
    assert_eq!(
        est(Api::Responses, &body),
        LayerEstimate {
            prompt: tok("Rome"),
            tool: 0,
            memory: 0
        }
    );
}

// --- Anthropic messages ----------------------------------------------------------------------

#[test]
fn messages_agent_loop() {
    let tool = json!({"name": "lookup_order", "description": "Look up an order.", "input_schema": {"type": "object"}});
    let body = json!({
        "system": [{"type": "text", "text": "You are a refund bot.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "document", "title": "Policy",
                 "source": {"type": "text", "media_type": "text/plain", "data": "Refunds within 30 days."}},
                {"type": "text", "text": "Can I get a refund on order-123?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the order.", "signature": "c2ln"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {"id": "order-123"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "Order placed 10 days ago."},
                    {"type": "search_result", "source": "kb", "title": "Refunds",
                     "content": [{"type": "text", "text": "30-day window"}]}
                ]}
            ]},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "tool_use", "id": "toolu_2", "name": "refund", "input": {}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "Refunded."}]}
        ],
        "tools": [tool],
    });
    let got = est(Api::Messages, &body);
    assert_eq!(
        got,
        LayerEstimate {
            // The question that started the loop is the current input, not the last tool_result.
            prompt: tok("You are a refund bot.") + OH + tok("Can I get a refund on order-123?"),
            tool: tok("lookup_order")
                + tok(r#"{"id":"order-123"}"#)
                + OH
                + tok("Order placed 10 days ago.")
                + tok("kb")
                + tok("Refunds")
                + tok("30-day window")
                + tok("refund")
                + tok("{}")
                + OH
                + tok("Refunded.")
                + tok_json(&tool),
            memory: tok("Policy")
                + tok("Refunds within 30 days.")
                + OH
                + tok("Need the order.")
                + tok("Let me look.")
                // The redacted-thinking message has content of its own, so its framing is memory.
                + OH,
        }
    );
}

#[test]
fn messages_strings_images_search_results_and_unknown_blocks() {
    let body = json!({
        "system": "Be kind.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "search_result", "source": "https://docs", "title": "Guide",
                 "content": [{"type": "text", "text": "Step one."}]},
                {"type": "wormhole", "payload": "odd stuff"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "text", "text": "What is this?"}
            ]}
        ]
    });
    assert_eq!(
        est(Api::Messages, &body),
        LayerEstimate {
            prompt: tok("Be kind.") + OH + ATT + tok("odd stuff") + tok("What is this?"),
            tool: 0,
            memory: OH
                + tok("Hello")
                + OH
                + tok("Hi!")
                + tok("https://docs")
                + tok("Guide")
                + tok("Step one.")
                + ATT,
        }
    );
}

// --- Embeddings ------------------------------------------------------------------------------

#[test]
fn embeddings_inputs() {
    let one = |body: Value| est(Api::Embeddings, &body);
    let prompt = |prompt| LayerEstimate {
        prompt,
        tool: 0,
        memory: 0,
    };
    assert_eq!(
        one(json!({"input": "Hello, world!"})),
        prompt(tok("Hello, world!"))
    );
    assert_eq!(
        one(json!({"input": ["first text", "second text"]})),
        prompt(tok("first text") + tok("second text"))
    );
    assert_eq!(one(json!({"input": [1, 2, 3]})), prompt(3));
    assert_eq!(one(json!({"input": [[1, 2], [3, 4, 5]]})), prompt(5));
}

// --- Errors ----------------------------------------------------------------------------------

#[test]
fn errors_name_the_field() {
    let field = |api, body: &[u8]| estimate(api, body).unwrap_err().field;
    assert_eq!(field(Api::ChatCompletions, b"not json"), "(body)");
    assert_eq!(field(Api::Messages, b"[1, 2]"), "(body)");
    assert_eq!(
        field(Api::ChatCompletions, br#"{"messages": {}}"#),
        "messages"
    );
    assert_eq!(
        field(Api::ChatCompletions, br#"{"model": "x"}"#),
        "messages"
    );
    assert_eq!(field(Api::Messages, br#"{"messages": "hi"}"#), "messages");
    assert_eq!(field(Api::Responses, br#"{"input": 5}"#), "input");
    assert_eq!(field(Api::Embeddings, br#"{"input": {"a": 1}}"#), "input");
    assert_eq!(field(Api::Embeddings, br#"{}"#), "input");
    let error = estimate(Api::ChatCompletions, br#"{"messages": 1}"#).unwrap_err();
    assert_eq!(error.to_string(), "messages: expected an array");
}

// --- Tokenizer chunking ----------------------------------------------------------------------

#[test]
fn chunking_is_exact_on_ordinary_text() {
    let mut text = String::new();
    for i in 0..600 {
        text.push_str(&format!(
            "Entry {i:04}: shelf {i}, aisle {}, naïve café — ünïcödé 日本語のテキスト {{\"k\": [1, 2]}}\n\tindented  twice   ",
            i % 7
        ));
    }
    assert!(text.len() > 10 * CHUNK_BYTES);
    let mut chunks = 0;
    for_each_chunk(&text, |_| chunks += 1);
    assert!(chunks > 10);
    assert_eq!(tokenize(&text), tok(&text));
    assert_eq!(count_tokens(&text), tok(&text));
    // Second time from the cache.
    assert_eq!(count_tokens(&text), tok(&text));
}

#[test]
fn chunks_cover_the_text() {
    for text in [
        "",
        " ",
        "a",
        "a b",
        &"x".repeat(1000),
        &"word ".repeat(3000),
    ] {
        let mut joined = String::new();
        for_each_chunk(text, |chunk| {
            assert!(!chunk.is_empty());
            joined.push_str(chunk);
        });
        assert_eq!(joined, text);
    }
}

#[test]
fn pathological_runs_do_not_panic_or_stall() {
    // Plain tiktoken panics on this one (fancy-regex gives up) and takes seconds on shorter runs.
    let capitals = "A".repeat(1_000_000);
    let n = tokenize(&capitals);
    assert!(n > 0 && n < 1_000_000, "{n}");
    let letters = "a".repeat(300_000);
    let n = tokenize(&letters);
    // 256 bytes of `a` are exactly 32 tokens, so the cuts cost nothing here.
    assert_eq!(n, 300_000 / 8);
    let spaces = " ".repeat(300_000);
    assert!(tokenize(&spaces) > 0);
    let newlines = "\n".repeat(300_000);
    assert!(tokenize(&newlines) > 0);
}

/// What `tokenize` counts, each chunk counted by the tokenizer itself.
fn chunked_without_memo(text: &str) -> u64 {
    let mut tokens = 0;
    for_each_chunk(text, |chunk| tokens += tokenizer().count(chunk) as u64);
    tokens
}

#[test]
fn remembered_piece_counts_are_the_counts() {
    let bpe = &tokenizer().bpe;
    let mut memo = PieceCounts::default();
    // Pieces that differ only in trailing zero bytes must not share a count.
    for piece in [
        "a",
        "a\0",
        "a\0\0",
        "\0",
        " hello",
        "0123456789abcdef",
        "0123456789abcdefg",
    ] {
        let direct = bpe.count(piece.as_bytes());
        assert_eq!(memo.count(bpe, piece.as_bytes()), direct, "{piece:?}");
        assert_eq!(
            memo.count(bpe, piece.as_bytes()),
            direct,
            "{piece:?}, remembered"
        );
    }
    // A full memo starts again and goes on counting right.
    for n in 0..PIECE_ENTRIES + 10 {
        let piece = format!(" w{n}");
        assert_eq!(
            memo.count(bpe, piece.as_bytes()),
            bpe.count(piece.as_bytes())
        );
    }
    assert!(memo.counts.len() <= PIECE_ENTRIES);
}

fn word() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[a-zA-Z0-9éü日本'.,;:!?(){}\[\]\x22/\\_-]{1,24}").unwrap()
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just(" "),
        1 => Just("  "),
        1 => Just("\n"),
        1 => Just(" \n  "),
        1 => Just("\t"),
        1 => Just("\r\n"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Without runs longer than `MAX_RUN_BYTES`, the chunked count is the whole text's count.
    #[test]
    fn chunked_count_equals_whole_count(words in prop::collection::vec((word(), separator()), 1..1500)) {
        let text: String = words.iter().flat_map(|(w, s)| [w.as_str(), *s]).collect();
        prop_assert_eq!(tokenize(&text), tok(&text));
    }

    /// The tokenizer counts what tiktoken counts, on any text (short enough for tiktoken's
    /// regex; unchunked, as chunking may cut long runs).
    #[test]
    fn counts_equal_tiktokens(text in "\\PC{0,200}", mixed in prop::collection::vec(
        prop_oneof![Just(" "), Just("  "), Just("\n"), Just("\r\n"), Just("\t"), Just("'s"), Just("'LL"),
            Just("123456"), Just("日本語"), Just("😀"), Just("\u{a0}"), Just("İ"), Just("ﬁ"), Just("Ω"),
            Just("ab"), Just("CD"), Just("-->"), Just("é")], 0..80)) {
        prop_assert_eq!(tokenizer().count(text.as_str()) as u64, tok(&text));
        // The remembered piece counts are the tokenizer's own (chunked, as `tokenize` is).
        prop_assert_eq!(tokenize(&text), chunked_without_memo(&text));
        let mixed: String = mixed.concat();
        prop_assert_eq!(tokenizer().count(mixed.as_str()) as u64, tok(&mixed));
        prop_assert_eq!(tokenize(&mixed), chunked_without_memo(&mixed));
    }
}

// --- Scaling ---------------------------------------------------------------------------------

#[test]
fn scale_to_cases() {
    let e = |prompt, tool, memory| LayerEstimate {
        prompt,
        tool,
        memory,
    };
    let l = |prompt, tool, memory, response| Layers {
        prompt,
        tool,
        memory,
        response,
    };
    assert_eq!(e(1, 1, 1).scale_to(10, 7), l(4, 3, 3, 7));
    assert_eq!(e(1, 1, 1).scale_to(11, 0), l(4, 4, 3, 0));
    assert_eq!(e(0, 0, 0).scale_to(500, 9), l(500, 0, 0, 9));
    assert_eq!(e(0, 0, 0).scale_to(0, 0), l(0, 0, 0, 0));
    assert_eq!(e(3, 4, 5).scale_to(0, 2), l(0, 0, 0, 2));
    assert_eq!(e(0, 5, 0).scale_to(17, 1), l(0, 17, 0, 1));
    assert_eq!(e(100, 50, 50).scale_to(1000, 1), l(500, 250, 250, 1));
    // Largest remainder: shares 2.92, 1.25, 0.83 → 2, 1, 0 and the 2 left over go to prompt, memory.
    assert_eq!(e(7, 3, 2).scale_to(5, 0), l(3, 1, 1, 0));
    assert_eq!(
        e(u64::MAX, u64::MAX, u64::MAX).scale_to(u64::MAX, u64::MAX),
        l(u64::MAX / 3, u64::MAX / 3, u64::MAX / 3, u64::MAX)
    );
}

fn any_count() -> impl Strategy<Value = u64> {
    prop_oneof![0..=3u64, 0..=10_000u64, any::<u64>()]
}

proptest! {
    #[test]
    fn scale_to_properties(
        prompt in any_count(), tool in any_count(), memory in any_count(),
        input in any_count(), output in any::<u64>(),
    ) {
        let estimate = LayerEstimate { prompt, tool, memory };
        let layers = estimate.scale_to(input, output);
        let parts = [layers.prompt, layers.tool, layers.memory];
        prop_assert_eq!(layers.response, output);
        prop_assert_eq!(parts.iter().map(|&p| u128::from(p)).sum::<u128>(), u128::from(input));
        prop_assert!(parts.iter().all(|&p| p <= input));
        let total: u128 = [prompt, tool, memory].iter().map(|&p| u128::from(p)).sum();
        if total == 0 {
            prop_assert_eq!(parts, [input, 0, 0]);
        }
        for (&part, &estimated) in parts.iter().zip(&[prompt, tool, memory]) {
            // Within one token of the exact rational share: between its floor and ceiling.
            let exact = u128::from(estimated) * u128::from(input);
            let Some(floor) = exact.checked_div(total) else { continue };
            let ceiling = exact.div_ceil(total);
            prop_assert!(u128::from(part) >= floor && u128::from(part) <= ceiling);
            if estimated == 0 {
                prop_assert_eq!(part, 0);
            }
        }
    }
}

// --- Recorded requests -----------------------------------------------------------------------

/// The recorded provider requests: `$BURNRATE_FIXTURES`, the repository's
/// `fixtures/recordings`, or the shared copy beside the repository.
fn fixtures_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("BURNRATE_FIXTURES").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/recordings")),
        Some(PathBuf::from("/work/shared/fixtures/recordings")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.join("INDEX.tsv").is_file())
        .expect("recorded fixtures: set BURNRATE_FIXTURES to the recordings directory")
}

/// `(name, api, input_tokens, output_tokens, body)` of every recorded request, with the
/// event's input count.
fn recorded_requests() -> Vec<(String, Api, u64, u64, Vec<u8>)> {
    let dir = fixtures_dir();
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap();
    let mut rows = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let api = match cols[2] {
            "chat_completions" => Api::ChatCompletions,
            "responses" => Api::Responses,
            "embeddings" => Api::Embeddings,
            "messages" => Api::Messages,
            other => panic!("unknown api {other}"),
        };
        let count = |i: usize| cols[i].parse::<u64>().unwrap_or(0);
        // The event's input counts cache reads and writes; Anthropic's `input_tokens` does not.
        let input = match cols[1] {
            "anthropic" => count(8) + count(10) + count(11),
            _ => count(8),
        };
        let body = std::fs::read(dir.join(format!("{}.request.json", cols[0]))).unwrap();
        rows.push((cols[0].to_string(), api, input, count(9), body));
    }
    assert!(rows.len() >= 20, "only {} recorded requests", rows.len());
    rows
}

#[test]
fn recorded_requests_estimate() {
    for (name, api, input, output, body) in recorded_requests() {
        let estimate = estimate(api, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let request: Value = serde_json::from_slice(&body).unwrap();
        let has_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty());
        assert_eq!(estimate.tool > 0, has_tools, "{name}: {estimate:?}");
        assert!(estimate.prompt > 0, "{name}: {estimate:?}");
        let layers = estimate.scale_to(input, output);
        assert_eq!(layers.prompt + layers.tool + layers.memory, input, "{name}");
        assert_eq!(layers.response, output, "{name}");
    }
}

#[test]
fn recorded_tool_use_conversation() {
    let body = std::fs::read(
        fixtures_dir().join("anthropic_cache_write_5m_tool_use_sonnet45.request.json"),
    )
    .unwrap();
    let got = estimate(Api::Messages, &body).unwrap();
    // System plus the opening question; the assistant's text; tool definitions, calls, results.
    assert_eq!(
        got.prompt,
        tok(
            "The following capabilities are deferred and can be loaded using the `load_capability` tool:\n- refunds: Refund policy tools."
        ) + OH
            + tok("Can I get a refund on order-123?")
    );
    assert_eq!(
        got.memory,
        OH + tok(
            "I'll help you with your refund request for order-123. Let me load the refund policy tools to assist you."
        )
    );
    assert!(got.tool > got.prompt, "{got:?}");
}

#[test]
fn estimates_agree_across_threads() {
    warm_up();
    let bodies = recorded_requests();
    let expected: Vec<_> = bodies
        .iter()
        .map(|(_, api, _, _, body)| estimate(*api, body))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    bodies
                        .iter()
                        .map(|(_, api, _, _, body)| estimate(*api, body))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
}

// --- Never panics ----------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "function_call",
    "name",
    "arguments",
    "input",
    "output",
    "source",
    "data",
    "messages",
    "system",
    "tools",
    "functions",
    "instructions",
    "summary",
    "thinking",
    "title",
    "variables",
    "format",
    "response_format",
    "prompt",
];
const STRINGS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "input_text",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "document",
    "search_result",
    "image",
    "input_image",
    "function_call",
    "function_call_output",
    "message",
    "reasoning",
    "item_reference",
    "mcp_call",
    "json_schema",
    "content",
    "hello world",
    "",
    "data:image/png;base64,AAAA",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
        ]
    })
}

const APIS: [Api; 4] = [
    Api::ChatCompletions,
    Api::Responses,
    Api::Messages,
    Api::Embeddings,
];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for api in APIS {
            let _ = estimate(api, &body);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(body in arb_json(), items in prop::collection::vec(arb_json(), 0..6)) {
        let shaped = json!({
            "messages": items, "input": items, "system": body, "tools": body, "instructions": body,
            "functions": items, "response_format": body, "text": {"format": body}, "prompt": body,
        });
        for api in APIS {
            let _ = estimate(api, &serde_json::to_vec(&body).unwrap());
            let _ = estimate(api, &serde_json::to_vec(&shaped).unwrap());
        }
    }
}
