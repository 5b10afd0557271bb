//! Redaction of captured request and response bodies before they reach disk.
//!
//! Two kinds of rule, both from the `audit.redact` settings:
//!
//! - `json_paths`: RFC 9535 JSONPath queries (`$.messages[*].content`, `$..api_key`); every
//!   node they select is replaced by the string [`REDACTED`].
//! - `patterns`: regular expressions applied, after the paths, to every string value and
//!   every object key left in the document; each match becomes [`REDACTED`].
//!
//! A streamed response (server-sent events) is not stored event by event: a secret can be
//! split across two deltas (`"alice@"`, then `"example.com"`) and no per-event pattern would
//! see it whole. [`transcript`] assembles the streamed text first, and the rules then apply
//! to that assembled document.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;

/// What every redacted match or node becomes.
pub const REDACTED: &str = "[REDACTED]";

/// A redaction setting that does not compile: `audit.redact.patterns[2]: unclosed group`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit.redact.{setting}[{index}]: {reason}")]
pub struct RedactError {
    /// `patterns` or `json_paths`.
    pub setting: &'static str,
    /// 0-based position in that list.
    pub index: usize,
    /// Why it does not compile.
    pub reason: String,
}

/// The compiled `audit.redact` rules. The default redacts nothing.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    patterns: Vec<Regex>,
    paths: Vec<JsonPath>,
}

impl Redactor {
    /// Compiles the rules; the error names the first one that does not compile.
    pub fn new(patterns: &[String], json_paths: &[String]) -> Result<Self, RedactError> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(index, p)| {
                Regex::new(p).map_err(|e| RedactError {
                    setting: "patterns",
                    index,
                    reason: regex_reason(&e),
                })
            })
            .collect::<Result<_, _>>()?;
        let paths = json_paths
            .iter()
            .enumerate()
            .map(|(index, p)| {
                JsonPath::parse(p).map_err(|e| RedactError {
                    setting: "json_paths",
                    index,
                    reason: format!("at position {}, {}", e.position(), e.message()),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns, paths })
    }

    /// A request body as it may be stored: JSON with the rules applied, or, for a body that
    /// is not JSON, a JSON string of its (lossy UTF-8) text with the patterns applied.
    pub fn request(&self, body: &[u8]) -> Value {
        match serde_json::from_slice(body) {
            Ok(value) => self.redact_value(value),
            Err(_) => Value::String(self.redact_text(&String::from_utf8_lossy(body))),
        }
    }

    /// A response body as it may be stored: JSON as for [`Redactor::request`]; an event
    /// stream as its [`transcript`] with the rules applied; other text as a JSON string with
    /// the patterns applied.
    pub fn response(&self, body: &[u8]) -> Value {
        if let Ok(value) = serde_json::from_slice(body) {
            return self.redact_value(value);
        }
        let text = String::from_utf8_lossy(body);
        match transcript(&text) {
            Some(document) => self.redact_value(document),
            None => Value::String(self.redact_text(&text)),
        }
    }

    /// Applies the JSON paths, then the patterns to every string and object key.
    pub fn redact_value(&self, mut value: Value) -> Value {
        for path in &self.paths {
            let pointers: Vec<String> = path
                .query_located(&value)
                .iter()
                .map(|node| node.location().to_json_pointer())
                .collect();
            for pointer in pointers {
                // A node inside one already replaced is gone: nothing left to do for it.
                if let Some(node) = value.pointer_mut(&pointer) {
                    *node = Value::String(REDACTED.to_owned());
                }
            }
        }
        if self.patterns.is_empty() {
            value
        } else {
            self.redact_strings(value)
        }
    }

    /// Applies the patterns to `text`. Empty matches are left alone, so a pattern such as
    /// `\d*` redacts runs of digits rather than filling the text with markers.
    pub fn redact_text(&self, text: &str) -> String {
        let mut text = Cow::Borrowed(text);
        for re in &self.patterns {
            let mut out = String::new();
            let mut last = 0;
            for m in re.find_iter(&text).filter(|m| !m.is_empty()) {
                out.push_str(&text[last..m.start()]);
                out.push_str(REDACTED);
                last = m.end();
            }
            if last > 0 {
                out.push_str(&text[last..]);
                text = Cow::Owned(out);
            }
        }
        text.into_owned()
    }

    fn redact_strings(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact_text(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.redact_strings(v)).collect())
            }
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, v) in map {
                    let mut key = self.redact_text(&key);
                    // Two keys redacted to the same text must not overwrite each other.
                    if out.contains_key(&key) {
                        let base = key.clone();
                        let mut n = 2;
                        while out.contains_key(&key) {
                            key = format!("{base}#{n}");
                            n += 1;
                        }
                    }
                    out.insert(key, self.redact_strings(v));
                }
                Value::Object(out)
            }
            other => other,
        }
    }
}

/// The last line of the regex crate's message (`unclosed group`), not the whole
/// multi-line rendering with the pattern and a caret.
fn regex_reason(e: &regex::Error) -> String {
    let message = e.to_string();
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(|| message.trim().to_owned(), str::to_owned)
}

/// The document a server-sent event stream is stored as, or `None` if `text` has no `data:`
/// line. Without any rules applied yet:
///
/// ```json
/// {"stream": true, "events": 12, "text": "...", "tool_arguments": "...", "usage": {...}}
/// ```
///
/// - `events`: data lines other than `[DONE]`.
/// - `text`: the streamed text in order: OpenAI chat `choices[].delta.content`, Responses
///   API `*.delta` events (other than function-call arguments), Anthropic
///   `content_block_delta` `text` and `thinking`. Separate choices, outputs and content
///   blocks are joined by a newline, in index order.
/// - `tool_arguments`: chat `tool_calls[].function.arguments`, Responses
///   `*arguments.delta`, Anthropic `partial_json`, joined the same way.
/// - `usage`: the last `usage` object (top level or under `response`, as in
///   `response.completed`), or `null`; the rest of that event is dropped, since it can repeat
///   the whole output.
/// - `errors`: events with an `error` (only when there are some).
/// - `other`: the data lines that are not JSON (only when there are some).
///
/// Everything else in the events (ids, roles, indices, per-event metadata) is dropped.
pub fn transcript(text: &str) -> Option<Value> {
    let mut t = Transcript::default();
    let mut saw_data = false;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        saw_data = true;
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            continue;
        }
        t.events += 1;
        match serde_json::from_str::<Value>(data) {
            Ok(event) => t.absorb(event),
            Err(_) => t.other.push(data.to_owned()),
        }
    }
    saw_data.then(|| t.into_document())
}

/// Streamed pieces keyed by (choice/output/block index, content/tool-call index).
type Parts = BTreeMap<(u64, u64), String>;

#[derive(Default)]
struct Transcript {
    events: u64,
    text: Parts,
    tool_arguments: Parts,
    last: Option<Value>,
    errors: Vec<Value>,
    other: Vec<String>,
}

fn index(value: &Value, key: &str, default: u64) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(default)
}

fn push(parts: &mut Parts, key: (u64, u64), piece: Option<&str>) {
    if let Some(piece) = piece {
        parts.entry(key).or_default().push_str(piece);
    }
}

fn present(value: Option<&Value>) -> bool {
    value.is_some_and(|v| !v.is_null())
}

impl Transcript {
    fn absorb(&mut self, event: Value) {
        // OpenAI chat completions.
        if let Some(choices) = event.get("choices").and_then(Value::as_array) {
            for (i, choice) in (0u64..).zip(choices) {
                let c = index(choice, "index", i);
                let Some(delta) = choice.get("delta") else {
                    continue;
                };
                push(
                    &mut self.text,
                    (c, 0),
                    delta.get("content").and_then(Value::as_str),
                );
                let calls = delta.get("tool_calls").and_then(Value::as_array);
                for (j, call) in (0u64..).zip(calls.into_iter().flatten()) {
                    let args = call.pointer("/function/arguments").and_then(Value::as_str);
                    push(&mut self.tool_arguments, (c, index(call, "index", j)), args);
                }
            }
        }
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == "content_block_delta" {
            // Anthropic messages.
            let block = index(&event, "index", 0);
            if let Some(delta) = event.get("delta") {
                for key in ["text", "thinking"] {
                    push(
                        &mut self.text,
                        (block, 0),
                        delta.get(key).and_then(Value::as_str),
                    );
                }
                let json = delta.get("partial_json").and_then(Value::as_str);
                push(&mut self.tool_arguments, (block, 0), json);
            }
        } else if kind.ends_with(".delta") {
            // OpenAI Responses API.
            let output = index(&event, "output_index", 0);
            let part = index(&event, "content_index", index(&event, "summary_index", 0));
            let parts = if kind.contains("arguments") {
                &mut self.tool_arguments
            } else {
                &mut self.text
            };
            push(
                parts,
                (output, part),
                event.get("delta").and_then(Value::as_str),
            );
        }
        if present(event.get("error")) || kind == "error" {
            self.errors.push(event.clone());
        }
        // Only the usage: a final event such as `response.completed` repeats the whole
        // output, which the rules would have to find a second time.
        if let Some(usage) = event
            .get("usage")
            .filter(|u| !u.is_null())
            .or_else(|| event.pointer("/response/usage").filter(|u| !u.is_null()))
        {
            self.last = Some(usage.clone());
        }
    }

    fn into_document(self) -> Value {
        let join = |parts: Parts| parts.into_values().collect::<Vec<_>>().join("\n");
        let mut doc = json!({
            "stream": true,
            "events": self.events,
            "text": join(self.text),
            "tool_arguments": join(self.tool_arguments),
            "usage": self.last,
        });
        if let Some(map) = doc.as_object_mut() {
            if !self.errors.is_empty() {
                map.insert("errors".into(), Value::Array(self.errors));
            }
            if !self.other.is_empty() {
                map.insert("other".into(), self.other.into());
            }
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn redactor(patterns: &[&str], paths: &[&str]) -> Redactor {
        match Redactor::new(&strings(patterns), &strings(paths)) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn sse(events: &[Value]) -> String {
        let mut out = String::new();
        for e in events {
            out.push_str(&format!("data: {e}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }

    fn chat_delta(text: &str) -> Value {
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
    }

    fn anthropic_delta(text: &str) -> Value {
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
    }

    #[test]
    fn json_paths_replace_nodes() {
        let r = redactor(
            &[],
            &[
                "$.messages[*].content",
                "$.metadata.user_email",
                "$..api_key",
            ],
        );
        let body = json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}],
            "metadata": {"user_email": "a@b.co", "team": "x"},
            "tools": [{"config": {"api_key": "sk-1"}}],
            "api_key": {"nested": "sk-2"},
        });
        let got = r.request(body.to_string().as_bytes());
        assert_eq!(
            got,
            json!({
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": REDACTED}, {"role": "assistant", "content": REDACTED}],
                "metadata": {"user_email": REDACTED, "team": "x"},
                "tools": [{"config": {"api_key": REDACTED}}],
                "api_key": REDACTED,
            })
        );
    }

    #[test]
    fn patterns_apply_to_values_and_keys_after_paths() {
        let r = redactor(&[EMAIL, r"sk-[a-z0-9]+"], &["$.secret"]);
        let body = json!({"secret": "plain", "note": "mail bob@example.org or use sk-abc1", "by": {"eve@x.io": 1, "carl@y.io": 2}, "n": 5});
        let mut got = r.request(body.to_string().as_bytes());
        // Which colliding key gets the suffix depends on the map's order.
        let by = got.get_mut("by").map(Value::take).unwrap_or_default();
        let mut values = [by["[REDACTED]"].as_u64(), by["[REDACTED]#2"].as_u64()];
        values.sort();
        assert_eq!(values, [Some(1), Some(2)]);
        assert_eq!(
            got,
            json!({"secret": REDACTED, "note": "mail [REDACTED] or use [REDACTED]", "by": null, "n": 5})
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Redactor::new(&strings(&["a", "b", "(unclosed"]), &[]).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("audit.redact.patterns[2]: unclosed group")
        );
        let e = Redactor::new(&[], &strings(&["$.ok", "messages["])).err();
        let message = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("audit.redact.json_paths[1]: "),
            "{message}"
        );
        let e = Redactor::new(&[], &strings(&["no-dollar"])).err();
        assert!(e.is_some_and(|e| e.setting == "json_paths" && e.index == 0));
    }

    #[test]
    fn non_json_bodies_become_redacted_strings() {
        let r = redactor(&[EMAIL], &["$.x"]);
        assert_eq!(
            r.request(b"hello carol@example.com!"),
            json!("hello [REDACTED]!")
        );
        assert_eq!(
            r.request(b"\xffbin dave@ex.com"),
            json!("\u{fffd}bin [REDACTED]")
        );
        assert_eq!(
            r.response(b"upstream error for erin@ex.com"),
            json!("upstream error for [REDACTED]")
        );
        assert_eq!(r.request(b""), json!(""));
    }

    #[test]
    fn empty_matches_are_not_redacted() {
        let r = redactor(&[r"\d*"], &[]);
        assert_eq!(r.redact_text("pin 1234 ok"), "pin [REDACTED] ok");
    }

    #[test]
    fn openai_chat_stream_transcript() {
        let body = sse(&[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"content": "Write to alice@"}}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"content": "example.com now"}}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "send", "arguments": "{\"to\":\"bob@"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ex.com\"}"}}]}}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
        ]);
        let got = redactor(&[EMAIL], &[]).response(body.as_bytes());
        assert_eq!(
            got,
            json!({
                "stream": true, "events": 6,
                "text": "Write to [REDACTED] now",
                "tool_arguments": "{\"to\":\"[REDACTED]\"}",
                "usage": {"prompt_tokens": 5, "completion_tokens": 7},
            })
        );
    }

    #[test]
    fn anthropic_stream_transcript() {
        let body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":1}\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n\
            data: not json at all\n\n";
        let got = Redactor::default().response(body.as_bytes());
        assert_eq!(
            got,
            json!({
                "stream": true, "events": 7,
                "text": "hmm\nHi there",
                "tool_arguments": "{\"q\":1}",
                "usage": {"output_tokens": 9},
                "other": ["not json at all"],
            })
        );
    }

    #[test]
    fn responses_stream_transcript() {
        let body = sse(&[
            json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "key sk-"}),
            json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "abc9 end"}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"}),
            json!({"type": "response.completed", "response": {"output_text": "key sk-abc9 end", "usage": {"total_tokens": 4}}}),
        ]);
        let got = redactor(&[r"sk-[a-z0-9]+"], &[]).response(body.as_bytes());
        assert_eq!(
            got,
            json!({
                "stream": true, "events": 4,
                "text": "key [REDACTED] end",
                "tool_arguments": "{}",
                "usage": {"total_tokens": 4},
            })
        );
    }

    proptest! {
        #[test]
        fn split_email_never_survives(
            before in "[a-zA-Z0-9 .,!?_-]{0,30}",
            after in "[a-zA-Z0-9 .,!?_-]{0,30}",
            local in "[a-z0-9._]{1,12}",
            domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}",
            split in 0usize..64,
            anthropic in any::<bool>(),
        ) {
            let email = format!("{local}@{domain}");
            let full = format!("{before} {email} {after}");
            let at = before.len() + 1 + split % (email.len() + 1);
            let (first, second) = full.split_at(at);
            let delta = if anthropic { anthropic_delta } else { chat_delta };
            let body = sse(&[delta(first), delta(second)]);
            let stored = redactor(&[EMAIL], &[]).response(body.as_bytes()).to_string();
            let re = Regex::new(EMAIL).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!re.is_match(&stored), "{stored}");
            prop_assert!(!stored.contains(&email), "{stored}");
            prop_assert!(stored.contains(REDACTED), "{stored}");
        }
    }
}
