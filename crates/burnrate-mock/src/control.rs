//! Per-request control headers (`x-mock-*`).
//!
//! The gateway forwards headers it does not know, so a test steers one call by setting these
//! on the client request. A malformed value is answered with a 400 in the route's dialect that
//! names the header, never ignored silently.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, StatusCode};

/// `x-mock-delay-ms: N`: wait N ms before the first byte (replaces the server's delay).
pub const DELAY_MS: HeaderName = HeaderName::from_static("x-mock-delay-ms");
/// `x-mock-chunk-delay-ms: N`: wait N ms between stream events (replaces the server's).
pub const CHUNK_DELAY_MS: HeaderName = HeaderName::from_static("x-mock-chunk-delay-ms");
/// `x-mock-status: 400..=599`: answer with this error status, in the route's dialect.
pub const STATUS: HeaderName = HeaderName::from_static("x-mock-status");
/// `x-mock-cut-after: N`: close the connection abruptly after N stream events (all of them
/// when there are fewer; N bytes of a non-streaming body), so the client sees an incomplete
/// chunked body.
pub const CUT_AFTER: HeaderName = HeaderName::from_static("x-mock-cut-after");
/// `x-mock-broken-sse: 1`: put a malformed `data:` line in the middle of the stream.
pub const BROKEN_SSE: HeaderName = HeaderName::from_static("x-mock-broken-sse");
/// `x-mock-output-tokens: N`: report exactly N output tokens (reasoning included).
pub const OUTPUT_TOKENS: HeaderName = HeaderName::from_static("x-mock-output-tokens");
/// `x-mock-cached-tokens: N`: report N cache-read tokens.
pub const CACHED_TOKENS: HeaderName = HeaderName::from_static("x-mock-cached-tokens");
/// `x-mock-cache-write-tokens: N`: report N cache-write tokens.
pub const CACHE_WRITE_TOKENS: HeaderName = HeaderName::from_static("x-mock-cache-write-tokens");
/// `x-mock-reasoning-tokens: N`: report N reasoning tokens, whatever the model.
pub const REASONING_TOKENS: HeaderName = HeaderName::from_static("x-mock-reasoning-tokens");
/// `x-mock-tool-calls: 0|1|auto`: never, always, or by default rules answer with a tool call.
pub const TOOL_CALLS: HeaderName = HeaderName::from_static("x-mock-tool-calls");

/// Largest output the mock will generate for one call, whatever a header asks.
const MAX_OUTPUT_TOKENS: u64 = 1_000_000;

/// When a request with tools is answered with a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ToolMode {
    /// Call the first tool unless `tool_choice` says none or the last message is already a
    /// tool result (so an agent loop ends).
    Auto,
    /// Never call a tool.
    Never,
    /// Call the tool even after a tool result (only `tool_choice: none` stops it).
    Always,
}

/// The parsed control headers of one request.
#[derive(Clone, Debug)]
pub(crate) struct Controls {
    pub delay: Option<Duration>,
    pub chunk_delay: Option<Duration>,
    pub status: Option<StatusCode>,
    pub cut_after: Option<usize>,
    pub broken_sse: bool,
    pub output_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub tool_mode: ToolMode,
}

impl Controls {
    /// Reads the control headers; the error names the bad header and why.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        let status = match number(headers, &STATUS)? {
            None => None,
            Some(code) => match u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                Some(s) if s.is_client_error() || s.is_server_error() => Some(s),
                _ => {
                    return Err(format!(
                        "{STATUS}: expected an error status 400..=599, got {code}"
                    ));
                }
            },
        };
        let broken_sse = match text(headers, &BROKEN_SSE)? {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => return Err(format!("{BROKEN_SSE}: expected 0 or 1, got {other:?}")),
        };
        let tool_mode = match text(headers, &TOOL_CALLS)? {
            None | Some("auto") => ToolMode::Auto,
            Some("0" | "false") => ToolMode::Never,
            Some("1" | "true") => ToolMode::Always,
            Some(other) => {
                return Err(format!(
                    "{TOOL_CALLS}: expected 0, 1 or auto, got {other:?}"
                ));
            }
        };
        Ok(Self {
            delay: number(headers, &DELAY_MS)?.map(Duration::from_millis),
            chunk_delay: number(headers, &CHUNK_DELAY_MS)?.map(Duration::from_millis),
            status,
            cut_after: number(headers, &CUT_AFTER)?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            broken_sse,
            output_tokens: number(headers, &OUTPUT_TOKENS)?.map(|n| n.min(MAX_OUTPUT_TOKENS)),
            cached_tokens: number(headers, &CACHED_TOKENS)?,
            cache_write_tokens: number(headers, &CACHE_WRITE_TOKENS)?,
            reasoning_tokens: number(headers, &REASONING_TOKENS)?.map(|n| n.min(MAX_OUTPUT_TOKENS)),
            tool_mode,
        })
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| format!("{name}: the value is not visible ASCII")),
    }
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, String> {
    match text(headers, name)? {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name}: expected a non-negative integer, got {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert((*name).clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn parses_every_header() {
        let c = Controls::from_headers(&headers(&[
            (&DELAY_MS, "15"),
            (&STATUS, "529"),
            (&CUT_AFTER, "3"),
            (&BROKEN_SSE, "1"),
            (&OUTPUT_TOKENS, "40"),
            (&CACHED_TOKENS, "1024"),
            (&CACHE_WRITE_TOKENS, "9"),
            (&REASONING_TOKENS, "8"),
            (&TOOL_CALLS, "0"),
        ]));
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(c.delay, Some(Duration::from_millis(15)));
        assert_eq!(c.status.map(|s| s.as_u16()), Some(529));
        assert_eq!(c.cut_after, Some(3));
        assert!(c.broken_sse);
        assert_eq!(c.output_tokens, Some(40));
        assert_eq!(c.cached_tokens, Some(1024));
        assert_eq!(c.cache_write_tokens, Some(9));
        assert_eq!(c.reasoning_tokens, Some(8));
        assert_eq!(c.tool_mode, ToolMode::Never);
    }

    #[test]
    fn names_the_bad_header() {
        let err = Controls::from_headers(&headers(&[(&STATUS, "200")])).err();
        assert!(err.is_some_and(|e| e.starts_with("x-mock-status")));
        let err = Controls::from_headers(&headers(&[(&CUT_AFTER, "-1")])).err();
        assert!(err.is_some_and(|e| e.contains("x-mock-cut-after")));
        assert!(Controls::from_headers(&HeaderMap::new()).is_ok());
    }
}
