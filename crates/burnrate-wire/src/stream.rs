//! Metering a streamed (SSE) response as it passes through the gateway.
//!
//! [`StreamMeter`] reads each chunk for usage and tool calls and hands back what the client
//! should get. Normally that is the chunk itself, untouched and uncopied. The one rewrite: when
//! the gateway added `stream_options.include_usage` to an OpenAI chat request whose client did
//! not ask for usage, the client must see the stream it would have seen without it, so the
//! usage-only last chunk is dropped and the `"usage"` member is cut from the other chunks (a
//! structural scan of the chunk's JSON text, not a re-serialisation: every other byte stays).
//! Rewriting works on whole events, so bytes of an event not yet complete are held back.

use bytes::{Bytes, BytesMut};
use memchr::memmem;

use crate::anthropic::MessagesStream;
use crate::openai::chat::ChatStream;
use crate::openai::responses::ResponsesStream;
use crate::openai::strip::member_span;
use crate::sse::{MAX_EVENT_BYTES, SseEvent, SseParser};
use crate::{Api, Metered, WireError};

/// Meters one SSE response stream; see the module documentation.
#[derive(Debug)]
pub struct StreamMeter {
    api: Api,
    /// Rewriting (chat with `strip_usage`) and not given up.
    rewriting: bool,
    parser: SseParser,
    state: State,
    /// While rewriting: raw bytes of the event not complete yet.
    held: BytesMut,
    /// While rewriting: the last chunk ended with the CR of an event's closing CRLF, so a LF
    /// starting the next chunk ends that event (kept: `Some(true)`, dropped: `Some(false)`).
    split_crlf: Option<bool>,
    /// `flush` ran.
    flushed: bool,
}

/// What one event meant for the stream as a whole.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// The terminal event of the stream.
    pub(crate) terminal: bool,
    /// An OpenAI chat chunk with usage and no choices (dropped when stripping usage).
    pub(crate) usage_only: bool,
    /// An error the provider reported.
    pub(crate) upstream: Option<WireError>,
}

impl Step {
    /// The stream's terminal event.
    pub(crate) fn terminal() -> Step {
        Step {
            terminal: true,
            ..Step::default()
        }
    }

    /// An error event from the provider.
    pub(crate) fn upstream(error: WireError) -> Step {
        Step {
            upstream: Some(error),
            ..Step::default()
        }
    }
}

/// The per-API reader of events.
#[derive(Debug)]
enum Meter {
    Chat(ChatStream),
    Responses(ResponsesStream),
    Messages(MessagesStream),
    /// Embeddings do not stream.
    None,
}

/// What the stream said so far; apart from the parser so both can be borrowed at once.
#[derive(Debug)]
struct State {
    meter: Meter,
    complete: bool,
    error: Option<WireError>,
}

impl StreamMeter {
    /// A meter for a stream of `api`. `strip_usage` (OpenAI chat only; ignored for other APIs):
    /// the gateway itself added `stream_options.include_usage`, so hide the usage from the client.
    pub fn new(api: Api, strip_usage: bool) -> StreamMeter {
        let (meter, error) = match api {
            Api::ChatCompletions => (Meter::Chat(ChatStream::default()), None),
            Api::Responses => (Meter::Responses(ResponsesStream::default()), None),
            Api::Messages => (Meter::Messages(MessagesStream::default()), None),
            Api::Embeddings => (
                Meter::None,
                Some(WireError::new(
                    "(stream)",
                    "the embeddings endpoint does not stream",
                )),
            ),
        };
        StreamMeter {
            api,
            rewriting: strip_usage && api == Api::ChatCompletions,
            parser: SseParser::new(),
            state: State {
                meter,
                complete: false,
                error,
            },
            held: BytesMut::new(),
            split_crlf: None,
            flushed: false,
        }
    }

    /// The API this meter reads.
    pub fn api(&self) -> Api {
        self.api
    }

    /// Reads the next chunk from upstream and returns what to send to the client now: the
    /// chunk itself unless rewriting, else the complete events so far, rewritten. Never fails:
    /// a stream that cannot be read is recorded in [`StreamMeter::error`] and, when rewriting,
    /// passed on untouched from there on.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if self.rewriting {
            return self.feed_rewriting(&chunk);
        }
        let state = &mut self.state;
        if let Err(error) = self.parser.feed(&chunk, |event| {
            state.observe(&event);
        }) {
            state.note(error);
        }
        chunk
    }

    /// Ends the stream: meters an event left without its closing blank line, and returns the
    /// bytes still held back (empty unless rewriting). Later calls return nothing.
    pub fn flush(&mut self) -> Bytes {
        if self.flushed {
            return Bytes::new();
        }
        self.flushed = true;
        let Self {
            parser,
            state,
            held,
            rewriting,
            ..
        } = self;
        let mut out = BytesMut::new();
        let result = parser.finish(|event| {
            let step = state.observe(&event);
            if *rewriting {
                emit(&mut out, held, &event, &step);
                held.clear();
            }
        });
        if let Err(error) = result {
            state.note(error);
        }
        out.extend_from_slice(held);
        held.clear();
        out.freeze()
    }

    /// Whether the stream's terminal event came: chat `data: [DONE]`, Responses
    /// `response.completed` / `response.failed` / `response.incomplete`, Anthropic
    /// `message_stop`.
    pub fn is_complete(&self) -> bool {
        self.state.complete
    }

    /// What the stream said so far: usage, model, service tier and tool calls.
    pub fn metered(&self) -> Metered {
        match &self.state.meter {
            Meter::Chat(chat) => chat.metered(),
            Meter::Responses(responses) => responses.metered(),
            Meter::Messages(messages) => messages.metered(),
            Meter::None => Metered::default(),
        }
    }

    /// The first problem met: an error the provider reported in the stream (field
    /// `(upstream)`, e.g. Anthropic `event: error`, an OpenAI `{"error": ...}` chunk, Responses
    /// `error` / `response.failed`), an event too large (field `(stream)`), or an event whose
    /// data could not be read (field named after the event, e.g. `message_delta.usage.
    /// output_tokens`). Metering goes on after the latter; usage read before stays.
    pub fn error(&self) -> Option<&WireError> {
        self.state.error.as_ref()
    }

    fn feed_rewriting(&mut self, chunk: &Bytes) -> Bytes {
        if chunk.is_empty() {
            return Bytes::new();
        }
        let Self {
            parser,
            state,
            held,
            rewriting,
            split_crlf,
            ..
        } = self;
        let mut out = BytesMut::with_capacity(chunk.len() + held.len());
        let mut start = 0;
        if let Some(kept) = split_crlf.take().filter(|_| chunk[0] == b'\n') {
            if kept {
                out.extend_from_slice(b"\n");
            }
            start = 1;
        }
        let mut last_kept = true;
        let result = parser.feed(chunk, |event| {
            let step = state.observe(&event);
            last_kept = !step.usage_only;
            let piece = &chunk[start..event.end];
            if held.is_empty() {
                emit(&mut out, piece, &event, &step);
            } else {
                held.extend_from_slice(piece);
                emit(&mut out, held, &event, &step);
                held.clear();
            }
            start = event.end;
        });
        if start == chunk.len() && start > 0 && chunk[start - 1] == b'\r' && held.is_empty() {
            *split_crlf = Some(last_kept);
        }
        held.extend_from_slice(&chunk[start..]);
        let too_long = held.len() > MAX_EVENT_BYTES + (MAX_EVENT_BYTES >> 4);
        let failed = result.is_err();
        if let Err(error) = result {
            state.note(error);
        } else if too_long {
            state.note(WireError::new(
                "(stream)",
                format!("no event ended within {MAX_EVENT_BYTES} bytes"),
            ));
        }
        if failed || too_long {
            // Give up rewriting: pass everything on as it comes.
            *rewriting = false;
            out.extend_from_slice(held);
            held.clear();
        }
        out.freeze()
    }
}

impl State {
    /// Meters one event and says what it was.
    fn observe(&mut self, event: &SseEvent<'_>) -> Step {
        let Some(data) = event.data else {
            return Step::default();
        };
        let read = match &mut self.meter {
            Meter::Chat(chat) => chat.on_data(data),
            Meter::Responses(responses) => responses.on_event(event.event, data),
            Meter::Messages(messages) => messages.on_event(event.event, data),
            Meter::None => Ok(Step::default()),
        };
        match read {
            Ok(step) => {
                self.complete |= step.terminal;
                if let Some(error) = &step.upstream {
                    self.note(error.clone());
                }
                step
            }
            Err(error) => {
                self.note(error);
                Step::default()
            }
        }
    }

    /// Keeps the first error.
    fn note(&mut self, error: WireError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }
}

/// Appends the raw bytes of one event to `out`, rewritten for a client that did not ask for
/// usage: a usage-only chunk is dropped, and a top-level `"usage"` member cut.
fn emit(out: &mut BytesMut, raw: &[u8], event: &SseEvent<'_>, step: &Step) {
    if step.usage_only {
        return;
    }
    let Some(data) = event.data else {
        out.extend_from_slice(raw);
        return;
    };
    let Some(span) = member_span(data.as_bytes(), b"usage") else {
        out.extend_from_slice(raw);
        return;
    };
    match data_offset(raw, data.as_bytes()) {
        Some(at) => {
            out.extend_from_slice(&raw[..at + span.start]);
            out.extend_from_slice(&raw[at + span.end..]);
        }
        None => {
            // Data spread over several `data:` lines: write the event anew.
            if !event.event.is_empty() {
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(event.event.as_bytes());
                out.extend_from_slice(b"\n");
            }
            let stripped = [&data[..span.start], &data[span.end..]].concat();
            for line in stripped.split('\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\n");
            }
            out.extend_from_slice(b"\n");
        }
    }
}

/// Where the value of the event's first `data:` line starts in its raw bytes, when that line
/// holds all of `data`.
fn data_offset(raw: &[u8], data: &[u8]) -> Option<usize> {
    let line = memmem::find_iter(raw, b"data:")
        .find(|&at| at == 0 || matches!(raw[at - 1], b'\n' | b'\r'))?;
    let mut value = line + 5;
    if raw.get(value) == Some(&b' ') {
        value += 1;
    }
    let rest = &raw[value..];
    let ends_line = matches!(rest.get(data.len()), None | Some(b'\n' | b'\r'));
    (rest.starts_with(data) && ends_line).then_some(value)
}

#[cfg(test)]
mod tests;
