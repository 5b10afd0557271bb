//! Tool calls: names and a hash of the normalised arguments, so that the ledger alone can tell
//! an agent calling the same tool with the same arguments over and over.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use burnrate_model::ToolCall;
use burnrate_model::event::MAX_TEXT_LEN;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Name recorded for a tool call whose name the response did not give.
pub const UNNAMED_TOOL: &str = "(unnamed)";

/// Hash of a tool call's arguments: 16 lowercase hex digits of the xxh3-64 of their normalised
/// JSON (keys sorted at every level, no whitespace), so that key order and spacing do not
/// matter. Text that is not JSON is hashed as it is.
pub fn args_hash(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value) => value_hash(&value),
        Err(_) => hex(xxhash_rust::xxh3::xxh3_64(arguments.as_bytes())),
    }
}

/// [`args_hash`] of arguments already parsed (Anthropic's `tool_use.input`).
pub fn value_hash(value: &Value) -> String {
    hex(xxhash_rust::xxh3::xxh3_64(&normalised_json(value)))
}

/// The normalised JSON text of a value: object keys sorted (by their bytes) at every level,
/// compact, strings escaped as `serde_json` escapes them.
pub fn normalised_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_normalised(value, &mut out);
    out
}

/// A tool call from its name and its arguments as text (OpenAI's `arguments` string).
pub fn tool_call(name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        name: tool_name(name),
        args_hash: Some(args_hash(arguments)),
    }
}

/// A tool call from its name and its parsed arguments (Anthropic's `input` object). A string
/// value is taken as the arguments' text, as OpenAI sends them.
pub fn tool_call_value(name: &str, arguments: &Value) -> ToolCall {
    let args_hash = match arguments {
        Value::String(text) => args_hash(text),
        other => value_hash(other),
    };
    ToolCall {
        name: tool_name(name),
        args_hash: Some(args_hash),
    }
}

/// A tool name as the event accepts it: cleaned (see [`clean`]), and [`UNNAMED_TOOL`] when
/// blank.
pub fn tool_name(name: &str) -> String {
    let name = clean(name);
    if name.trim().is_empty() {
        UNNAMED_TOOL.to_owned()
    } else {
        name
    }
}

/// Text as the event accepts it: at most [`MAX_TEXT_LEN`] bytes (cut at a character
/// boundary), control characters replaced by spaces.
pub fn clean(text: &str) -> String {
    let clipped = clip(text);
    // 0xc2 starts the two-byte encodings of the C1 controls (U+0080..U+009F).
    if clipped.bytes().all(|b| b >= 0x20 && b != 0x7f && b != 0xc2) {
        return clipped.to_owned();
    }
    clipped
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` cut to at most [`MAX_TEXT_LEN`] bytes at a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    if text.len() <= MAX_TEXT_LEN {
        return text;
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An optional text from a response (model, service tier) as the event accepts it: `None`
/// when blank, cleaned (see [`clean`]).
pub(crate) fn text_field(text: Option<&str>) -> Option<String> {
    text.map(clean).filter(|text| !text.trim().is_empty())
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

fn write_normalised(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_normalised(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_normalised(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail; should it ever, the hash still differs by value.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Most tool calls named per response; later ones are counted but not named.
pub const MAX_TOOLS: usize = 1024;

/// Most bytes of streamed tool-call arguments kept per stream; a call whose arguments go past
/// it is named with no `args_hash`.
pub const MAX_STREAMED_ARGS: usize = 16 << 20;

/// The count of tool calls, saturating.
pub(crate) fn count(tools: usize) -> u32 {
    u32::try_from(tools).unwrap_or(u32::MAX)
}

/// Tool calls put together from a stream's fragments, keyed by (choice, index).
#[derive(Debug, Default)]
pub(crate) struct PendingTools {
    calls: Vec<PendingTool>,
    /// Calls seen, the ones past [`MAX_TOOLS`] included.
    count: u32,
    /// Argument bytes kept so far.
    args_bytes: usize,
}

#[derive(Debug)]
struct PendingTool {
    key: (u32, u32),
    id: String,
    name: String,
    args: String,
    /// Arguments given whole at the start (Anthropic's `input`), used when no fragment came.
    input: Option<Value>,
    /// The arguments passed [`MAX_STREAMED_ARGS`]: no hash.
    clipped: bool,
}

impl PendingTools {
    /// Starts a call given at once (Anthropic `content_block_start` of a `tool_use`).
    pub(crate) fn start(&mut self, key: (u32, u32), name: &str, input: Option<Value>) {
        self.push(key, "", name, input);
    }

    /// Adds one fragment of a call (an OpenAI chat `delta.tool_calls[]` entry), starting the
    /// call when its key is new or its id differs from the call already under that key.
    /// Past [`MAX_TOOLS`] calls, only fragments that carry an id or a name count as new calls.
    pub(crate) fn fragment(
        &mut self,
        key: (u32, u32),
        id: Option<&str>,
        name: Option<&str>,
        args: Option<&str>,
    ) {
        let id = id.unwrap_or("");
        let found = self.calls.iter().rposition(|call| call.key == key);
        let same = found
            .filter(|&i| id.is_empty() || self.calls[i].id.is_empty() || self.calls[i].id == id);
        let index = match same {
            Some(index) => index,
            None if self.calls.len() < MAX_TOOLS => {
                self.push(key, id, name.unwrap_or(""), None);
                self.calls.len() - 1
            }
            None => {
                if !id.is_empty() || name.is_some_and(|n| !n.is_empty()) {
                    self.count = self.count.saturating_add(1);
                }
                return;
            }
        };
        let call = &mut self.calls[index];
        if call.id.is_empty() && !id.is_empty() {
            call.id = clip(id).to_owned();
        }
        match name {
            Some(name) if call.name.is_empty() => call.name = clip(name).to_owned(),
            _ => {}
        }
        if let Some(args) = args {
            self.append(index, args);
        }
    }

    /// Appends a fragment of arguments to the call under `key` (Anthropic `input_json_delta`).
    pub(crate) fn append_args(&mut self, key: (u32, u32), fragment: &str) {
        if let Some(index) = self.calls.iter().rposition(|call| call.key == key) {
            self.append(index, fragment);
        }
    }

    /// The number of calls and the calls by name with their argument hashes.
    pub(crate) fn finish(&self) -> (u32, Vec<ToolCall>) {
        let tools = self.calls.iter().map(PendingTool::finish).collect();
        (self.count, tools)
    }

    fn push(&mut self, key: (u32, u32), id: &str, name: &str, input: Option<Value>) {
        self.count = self.count.saturating_add(1);
        if self.calls.len() >= MAX_TOOLS {
            return;
        }
        self.calls.push(PendingTool {
            key,
            id: clip(id).to_owned(),
            name: clip(name).to_owned(),
            args: String::new(),
            input,
            clipped: false,
        });
    }

    fn append(&mut self, index: usize, fragment: &str) {
        let call = &mut self.calls[index];
        if call.clipped {
            return;
        }
        if self.args_bytes.saturating_add(fragment.len()) > MAX_STREAMED_ARGS {
            call.clipped = true;
            self.args_bytes = self.args_bytes.saturating_sub(call.args.len());
            call.args = String::new();
            return;
        }
        self.args_bytes += fragment.len();
        call.args.push_str(fragment);
    }
}

impl PendingTool {
    fn finish(&self) -> ToolCall {
        let args_hash = if self.clipped {
            None
        } else if !self.args.is_empty() {
            Some(args_hash(&self.args))
        } else if let Some(input) = &self.input {
            tool_call_value("", input).args_hash
        } else {
            Some(args_hash(""))
        };
        ToolCall {
            name: tool_name(&self.name),
            args_hash,
        }
    }
}

/// A string field read leniently: any other JSON value (or a missing field) reads as `None`
/// instead of failing the whole response. For the fields of tool calls and output items,
/// whose shapes vary between item types and providers; usage numbers are read strictly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    /// The text, or `""`.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(text))))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(text.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(text))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = args_hash(r#"{"b": 1, "a": {"y": [1, 2], "x": "é"}}"#);
        let b = args_hash("{\"a\":{\"x\":\"\\u00e9\",\"y\":[1,2]},\"b\":1}");
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn different_arguments_differ() {
        assert_ne!(args_hash(r#"{"a":1}"#), args_hash(r#"{"a":2}"#));
        assert_ne!(args_hash(r#"[1,2]"#), args_hash(r#"[2,1]"#));
    }

    #[test]
    fn normalised_text_is_sorted_and_compact() {
        let value: Value = serde_json::from_str(r#"{ "b" : [ {"d":1,"c":null} ], "a": true }"#)
            .unwrap_or(Value::Null);
        assert_eq!(
            normalised_json(&value),
            br#"{"a":true,"b":[{"c":null,"d":1}]}"#.to_vec()
        );
    }

    #[test]
    fn hash_is_xxh3_of_normalised_text() {
        let expected = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(br#"{"a":1,"b":2}"#));
        assert_eq!(args_hash(r#"{"b":2,"a":1}"#), expected);
    }

    #[test]
    fn text_that_is_not_json_is_hashed_as_is() {
        let expected = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"{not json"));
        assert_eq!(args_hash("{not json"), expected);
        assert_eq!(
            args_hash(""),
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b""))
        );
    }

    #[test]
    fn value_and_text_forms_agree() {
        let value: Value = serde_json::from_str(r#"{"location":"Paris"}"#).unwrap_or(Value::Null);
        assert_eq!(
            tool_call_value("get_weather", &value),
            tool_call("get_weather", r#"{ "location": "Paris" }"#)
        );
        let text = Value::String(r#"{"location":"Paris"}"#.into());
        assert_eq!(
            tool_call_value("get_weather", &text),
            tool_call("get_weather", r#"{"location":"Paris"}"#)
        );
    }

    #[test]
    fn names_fit_the_event() {
        assert_eq!(tool_name(""), UNNAMED_TOOL);
        let long = "é".repeat(MAX_TEXT_LEN);
        let clipped = tool_name(&long);
        assert!(clipped.len() <= MAX_TEXT_LEN && clipped.len() >= MAX_TEXT_LEN - 1);
        assert_eq!(text_field(Some("")), None);
        assert_eq!(text_field(Some("gpt")), Some("gpt".into()));
    }

    #[test]
    fn control_characters_and_blank_names_cannot_make_an_event_invalid() {
        // Found by the OTLP fuzz target: a tool name with a control character.
        assert_eq!(tool_name("get\u{7}order\n"), "get order ");
        assert_eq!(tool_name("  \t "), UNNAMED_TOOL);
        assert_eq!(clean("caf\u{e9}\u{85}x"), "caf\u{e9} x");
        assert_eq!(text_field(Some(" \r\n")), None);
        assert_eq!(text_field(Some("gpt-4.1\u{0}")), Some("gpt-4.1 ".into()));
    }

    #[test]
    fn text_reads_anything() {
        let read = |json: &str| {
            serde_json::from_str::<Text<'_>>(json)
                .map(|text| text.0.map(Cow::into_owned))
                .ok()
        };
        assert_eq!(read(r#""abc""#), Some(Some("abc".into())));
        assert_eq!(read(r#""a\"b""#), Some(Some("a\"b".into())));
        assert_eq!(read("12"), Some(None));
        assert_eq!(read(r#"{"a":[1,{"b":2}]}"#), Some(None));
        assert_eq!(read("null"), Some(None));
    }
}
