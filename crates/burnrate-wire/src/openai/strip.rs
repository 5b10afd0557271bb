//! Removing a top-level member from a JSON object's text without re-serialising it: how a
//! chat stream loses the `"usage"` member the gateway asked for and the client did not.
//!
//! The scan follows the object's structure (strings, escapes, nesting), so a `"usage"` key
//! inside a nested object or a string is never touched, whatever the whitespace.

use std::ops::Range;

use memchr::memchr2;

/// The bytes to cut to remove the top-level member `key` from the JSON object `json`, with
/// one adjacent comma, so that what is left is the same object without it:
/// `{"a":1,"usage":null,"b":2}` → cut `"usage":null,`; a last member takes the comma before
/// it. `None` when there is no such member or the text is not a well-formed object.
/// `key` is compared with the key's raw text (no unescaping).
pub(crate) fn member_span(json: &[u8], key: &[u8]) -> Option<Range<usize>> {
    let mut at = skip_ws(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    let mut previous_value_end = None;
    loop {
        let key_start = skip_ws(json, at);
        if json.get(key_start) != Some(&b'"') {
            return None; // `}` of an empty object, or not JSON
        }
        let key_end = skip_string(json, key_start)?;
        let colon = skip_ws(json, key_end);
        if json.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(json, colon + 1);
        let value_end = skip_value(json, value_start)?;
        let after = skip_ws(json, value_end);
        let matches = &json[key_start + 1..key_end - 1] == key;
        match json.get(after)? {
            b',' if matches => return Some(key_start..skip_ws(json, after + 1)),
            b',' => {
                previous_value_end = Some(value_end);
                at = after + 1;
            }
            b'}' if matches => return Some(previous_value_end.unwrap_or(key_start)..value_end),
            _ => return None,
        }
    }
}

fn skip_ws(json: &[u8], mut at: usize) -> usize {
    while json
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// Position just past the string starting at `start` (a `"`).
fn skip_string(json: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        let found = at + memchr2(b'"', b'\\', json.get(at..)?)?;
        if json[found] == b'"' {
            return Some(found + 1);
        }
        at = found + 2; // skip the escaped character
    }
}

/// Position just past the value starting at `start`.
fn skip_value(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => skip_string(json, start),
        b'{' | b'[' => skip_container(json, start),
        _ => {
            let mut at = start;
            while json
                .get(at)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                at += 1;
            }
            (at > start).then_some(at)
        }
    }
}

/// Position just past the object or array starting at `start`.
fn skip_container(json: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => {
                at = skip_string(json, at)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `json` without the top-level member `key`, or `None` when it has none.
    fn without_member(json: &[u8], key: &[u8]) -> Option<Vec<u8>> {
        let span = member_span(json, key)?;
        Some([&json[..span.start], &json[span.end..]].concat())
    }

    fn strip(json: &str) -> Option<String> {
        without_member(json.as_bytes(), b"usage").map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn removes_middle_first_last_and_only_members() {
        assert_eq!(
            strip(r#"{"a":1,"usage":null,"b":2}"#).as_deref(),
            Some(r#"{"a":1,"b":2}"#)
        );
        assert_eq!(
            strip(r#"{"usage":null,"b":2}"#).as_deref(),
            Some(r#"{"b":2}"#)
        );
        assert_eq!(
            strip(r#"{"a":1,"usage":null}"#).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(strip(r#"{"usage":null}"#).as_deref(), Some(r#"{}"#));
        assert_eq!(
            strip(r#"{"a":[1,{"x":"}"}],"usage":{"p":1,"q":[2]},"b":"\"usage\":null"}"#).as_deref(),
            Some(r#"{"a":[1,{"x":"}"}],"b":"\"usage\":null"}"#)
        );
    }

    #[test]
    fn handles_whitespace() {
        let pretty = "{\n  \"a\": 1,\n  \"usage\" : null ,\n  \"b\": 2\n}";
        assert_eq!(
            strip(pretty).as_deref(),
            Some("{\n  \"a\": 1,\n  \"b\": 2\n}")
        );
        let last = "{ \"a\": 1 , \"usage\": null }";
        assert_eq!(strip(last).as_deref(), Some("{ \"a\": 1 }"));
    }

    #[test]
    fn leaves_nested_and_absent_members() {
        assert_eq!(strip(r#"{"a":{"usage":null}}"#), None);
        assert_eq!(strip(r#"{"a":"usage"}"#), None);
        assert_eq!(strip(r#"{}"#), None);
        assert_eq!(strip(r#"[{"usage":null}]"#), None);
        assert_eq!(strip(r#"{"usage":null"#), None);
        assert_eq!(strip(r#"{"us"#), None);
    }

    #[test]
    fn result_stays_json() {
        for json in [
            r#"{"a":1,"usage":null,"b":2}"#,
            r#"{"usage":{"x":[1,2,{"y":"\\"}]},"b":2}"#,
            r#"{"b":"x\"y","usage":-1.5e3}"#,
        ] {
            let out = without_member(json.as_bytes(), b"usage").unwrap_or_default();
            assert!(
                serde_json::from_slice::<serde_json::Value>(&out).is_ok(),
                "{json}"
            );
        }
    }
}
