//! A tiny ordered JSON object writer.
//!
//! Provider responses list their fields in a fixed order (`id`, `object`, `created`, ...).
//! `serde_json::json!` sorts keys unless the workspace-wide `preserve_order` feature is on,
//! which would change every other crate's maps, so responses are written with this builder:
//! keys in the order given, values escaped, no intermediate `Value` tree.

use serde_json::Value;

/// An object being written; `done` closes it and hands back the bytes.
pub(crate) struct Obj {
    buf: Vec<u8>,
    first: bool,
}

impl Obj {
    /// Opens an object.
    pub(crate) fn new() -> Self {
        Self::with_capacity(256)
    }

    /// Opens an object with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        Self { buf, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        push_str(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// A string field.
    pub(crate) fn s(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_str(&mut self.buf, value);
        self
    }

    /// A string field, or `null`.
    pub(crate) fn opt_s(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.s(key, v),
            None => self.null(key),
        }
    }

    /// An unsigned integer field.
    pub(crate) fn n(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        self.buf.extend_from_slice(value.to_string().as_bytes());
        self
    }

    /// A boolean field.
    pub(crate) fn b(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// A `null` field.
    pub(crate) fn null(self, key: &str) -> Self {
        self.raw(key, b"null")
    }

    /// A field whose value is already encoded JSON.
    pub(crate) fn raw(mut self, key: &str, json: &[u8]) -> Self {
        self.key(key);
        self.buf.extend_from_slice(json);
        self
    }

    /// A field holding a nested object.
    pub(crate) fn o(self, key: &str, nested: Obj) -> Self {
        let nested = nested.done();
        self.raw(key, &nested)
    }

    /// A field echoing a request value (`null` when absent).
    pub(crate) fn v(mut self, key: &str, value: Option<&Value>) -> Self {
        self.key(key);
        match value {
            Some(v) => push_value(&mut self.buf, v),
            None => self.buf.extend_from_slice(b"null"),
        }
        self
    }

    /// Closes the object.
    pub(crate) fn done(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// Encoded JSON array of already-encoded elements.
pub(crate) fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let len = items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
    let mut buf = Vec::with_capacity(len);
    buf.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(item);
    }
    buf.push(b']');
    buf
}

/// `value` as a JSON string literal, quotes included.
pub(crate) fn string(value: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(value.len() + 2);
    push_str(&mut buf, value);
    buf
}

/// Appends `value` as a JSON string literal.
pub(crate) fn push_str(buf: &mut Vec<u8>, value: &str) {
    buf.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(byte >> 4)]);
            buf.push(HEX[usize::from(byte & 0xf)]);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends a request value re-encoded compactly.
fn push_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => push_str(buf, s),
        // Display for Value is compact JSON and cannot fail.
        other => buf.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fields_in_order_and_escapes() {
        let v = serde_json::json!({"b": [1, 2]});
        let out = Obj::new()
            .s("z", "a\"b\\c\n\u{1}é")
            .n("a", 7)
            .b("t", true)
            .null("x")
            .v("echo", Some(&v))
            .o("nested", Obj::new().s("k", "v"))
            .done();
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"z":"a\"b\\c\n\u0001é","a":7,"t":true,"x":null,"echo":{"b":[1,2]},"nested":{"k":"v"}}"#
        );
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(parsed["z"], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn arrays() {
        assert_eq!(array(&[]), b"[]");
        assert_eq!(array(&[b"1".to_vec(), b"{}".to_vec()]), b"[1,{}]");
    }
}
