//! An incremental Server-Sent Events parser: raw byte chunks in, events out.
//!
//! Hand-written on purpose. crates.io has `eventsource-stream` (an async `Stream` adapter with
//! no push interface) and `sse-parse` (sans-IO, but a first release); neither tells where an
//! event ends in the raw bytes, which [`crate::stream::StreamMeter`] needs to rewrite a stream
//! event by event, and both copy every event into owned strings. This one is small:
//!
//! - chunks may be split anywhere: inside a line, inside a CRLF pair, inside a UTF-8 character;
//! - lines end in LF, CRLF or CR; a leading UTF-8 byte order mark is dropped;
//! - `event:` names the event, `data:` lines are joined with `\n`, one space after the colon is
//!   dropped (`data:x` and `data: x` are the same), `:` lines are comments, `id:` / `retry:` and
//!   unknown fields are ignored (a gateway never reconnects);
//! - invalid UTF-8 is replaced with U+FFFD, as browsers do;
//! - memory is bounded: an event (or a line) larger than the limit is an error, and the parser
//!   stops there instead of growing without end.
//!
//! Complete lines are read in place from the chunk (found with `memchr`); only a line cut by a
//! chunk boundary is copied, and only `data:` values are gathered.

use memchr::{memchr, memchr2};

use crate::WireError;

/// Largest event (all its lines together) the parser accepts by default: 16 MiB.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// One blank line of the stream: the end of an event, or of nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, or `""` when the event had none (the SSE default is `message`).
    pub event: &'a str,
    /// The `data:` lines joined with `\n`; `None` when the blank line ended no event (only
    /// comments, an `event:` without data, or repeated blank lines). Such boundaries are
    /// reported too, so that callers can follow where each stretch of raw bytes ends.
    pub data: Option<&'a str>,
    /// Offset in the chunk just past the blank line (and past the LF of a CRLF when it is in
    /// the same chunk). Events dispatched by [`SseParser::finish`] report 0.
    pub end: usize,
}

/// Incremental SSE parser with bounded memory. Feed it chunks in order.
#[derive(Debug)]
pub struct SseParser {
    /// Start of a line cut by a chunk boundary.
    line: Vec<u8>,
    /// `data:` values of the current event, joined with `\n`.
    data: Vec<u8>,
    /// Whether the current event has a `data:` field (possibly empty).
    has_data: bool,
    /// `event:` value of the current event.
    event: Vec<u8>,
    /// Limit for `line` + `data` + `event`.
    max_event_bytes: usize,
    /// The previous chunk ended in CR: a LF starting the next one belongs to it.
    skip_lf: bool,
    /// No line has been read yet (a byte order mark may come).
    at_start: bool,
    /// Set once the limit was passed; the parser then reads nothing more.
    failed: Option<WireError>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser with the default event limit ([`MAX_EVENT_BYTES`]).
    pub fn new() -> SseParser {
        SseParser::with_limit(MAX_EVENT_BYTES)
    }

    /// A parser that fails on events larger than `max_event_bytes`.
    pub fn with_limit(max_event_bytes: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            max_event_bytes,
            skip_lf: false,
            at_start: true,
            failed: None,
        }
    }

    /// The error that stopped the parser, if any.
    pub fn failed(&self) -> Option<&WireError> {
        self.failed.as_ref()
    }

    /// Reads one chunk, calling `on_event` for every blank line it completes, in order.
    ///
    /// Fails when an event grows past the limit; from then on every call fails the same way.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), WireError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let mut pos = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                pos = 1;
            }
        }
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            let Some(found) = memchr2(b'\n', b'\r', rest) else {
                self.carry(rest)?;
                break;
            };
            let line_end = pos + found;
            let mut next = line_end + 1;
            if chunk[line_end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.line.is_empty() {
                self.read_line(&chunk[pos..line_end], next, &mut on_event)?;
            } else {
                self.carry(&chunk[pos..line_end])?;
                let line = std::mem::take(&mut self.line);
                let read = self.read_line(&line, next, &mut on_event);
                self.line = line;
                self.line.clear();
                if self.line.capacity() > 1 << 20 {
                    self.line = Vec::new();
                }
                read?;
            }
            pos = next;
        }
        Ok(())
    }

    /// Ends the stream: reads a last line that had no line ending and dispatches an event that
    /// had no closing blank line. (The SSE standard drops such an event; a meter would rather
    /// not lose a final usage chunk whose server forgot the blank line.)
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent<'_>)) -> Result<(), WireError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.read_line(&line, 0, &mut on_event)?;
        }
        if self.has_data {
            self.dispatch(0, &mut on_event);
        }
        self.event.clear();
        Ok(())
    }

    /// Keeps the start of a line cut by the chunk boundary.
    fn carry(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.check(bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Fails once the current event would hold more than the limit.
    fn check(&mut self, more: usize) -> Result<(), WireError> {
        let held = self.line.len() + self.data.len() + self.event.len();
        if held.saturating_add(more) <= self.max_event_bytes {
            return Ok(());
        }
        let error = WireError::new(
            "(stream)",
            format!(
                "an event is larger than {} bytes; the stream is not read further",
                self.max_event_bytes
            ),
        );
        self.failed = Some(error.clone());
        Err(error)
    }

    /// Interprets one complete line (without its line ending).
    fn read_line(
        &mut self,
        mut line: &[u8],
        end: usize,
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), WireError> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(end, on_event);
            return Ok(());
        }
        let (field, value) = match memchr(b':', line) {
            Some(0) => return Ok(()), // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.check(value.len() + 1)?;
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.check(value.len())?;
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        Ok(())
    }

    /// Reports the blank line at `end` and starts a new event.
    fn dispatch(&mut self, end: usize, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.has_data {
            let event = String::from_utf8_lossy(&self.event);
            let data = String::from_utf8_lossy(&self.data);
            on_event(SseEvent {
                event: &event,
                data: Some(&data),
                end,
            });
        } else {
            on_event(SseEvent {
                event: "",
                data: None,
                end,
            });
        }
        self.reset_event();
    }

    /// Forgets the current event, keeping the buffers' memory when it is small.
    fn reset_event(&mut self) {
        self.has_data = false;
        self.event.clear();
        self.data.clear();
        if self.data.capacity() > 1 << 20 {
            self.data = Vec::new();
        }
    }
}

/// Parses a whole SSE body at once and returns its events as owned `(event, data)` pairs,
/// the last event included even without a closing blank line. For tests and tools; the
/// gateway streams through [`SseParser`].
pub fn parse_all(body: &[u8]) -> Result<Vec<(String, String)>, WireError> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut push = |event: SseEvent<'_>| {
        if let Some(data) = event.data {
            events.push((event.event.to_owned(), data.to_owned()));
        }
    };
    parser.feed(body, &mut push)?;
    parser.finish(&mut push)?;
    Ok(events)
}

#[cfg(test)]
mod tests;
