//! Response bodies: SSE framing, chunk pacing, and the stream faults (cut, broken line).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;

use crate::Call;

/// Events of one SSE response, each already framed (`event: ...\ndata: ...\n\n`).
pub(crate) struct Sse {
    events: Vec<Bytes>,
}

impl Sse {
    /// An empty stream with room for `events` events.
    pub(crate) fn with_capacity(events: usize) -> Self {
        Self {
            events: Vec::with_capacity(events),
        }
    }

    /// A `data:` line only (OpenAI Chat).
    pub(crate) fn data(&mut self, json: &[u8]) {
        let mut buf = Vec::with_capacity(json.len() + 8);
        buf.extend_from_slice(b"data: ");
        buf.extend_from_slice(json);
        buf.extend_from_slice(b"\n\n");
        self.events.push(Bytes::from(buf));
    }

    /// An `event:` line and a `data:` line, the data followed by `pad` spaces (Anthropic pads
    /// its data lines with trailing spaces).
    pub(crate) fn event(&mut self, name: &str, json: &[u8], pad: usize) {
        let mut buf = Vec::with_capacity(name.len() + json.len() + pad + 17);
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        buf.extend_from_slice(json);
        buf.resize(buf.len() + pad, b' ');
        buf.extend_from_slice(b"\n\n");
        self.events.push(Bytes::from(buf));
    }

    /// Already-framed bytes (`data: [DONE]\n\n`).
    pub(crate) fn raw(&mut self, framed: &'static [u8]) {
        self.events.push(Bytes::from_static(framed));
    }

    /// The response: `text/event-stream`, paced and faulted as the call asks. `broken` is the
    /// malformed event the dialect uses for `x-mock-broken-sse`.
    pub(crate) fn into_response(mut self, call: &Call, broken: &'static [u8]) -> Response {
        if call.controls.broken_sse {
            let at = self.events.len() / 2;
            self.events.insert(at, Bytes::from_static(broken));
        }
        let body = paced(self.events, call.chunk_delay, call.controls.cut_after);
        respond(call, body, "text/event-stream; charset=utf-8")
    }
}

/// A JSON response; `x-mock-cut-after: N` sends only its first N bytes, then cuts.
pub(crate) fn json(call: &Call, body: Vec<u8>) -> Response {
    let body = match call.controls.cut_after {
        None => Body::from(body),
        Some(n) => {
            let mut bytes = Bytes::from(body);
            bytes.truncate(n);
            let events = if bytes.is_empty() {
                Vec::new()
            } else {
                vec![bytes]
            };
            paced(events, Duration::ZERO, Some(usize::MAX))
        }
    };
    respond(call, body, "application/json")
}

fn respond(call: &Call, body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type.starts_with("text/event-stream") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Ok(value) = HeaderValue::from_str(&call.ids.request()) {
        headers.insert(call.dialect.request_id_header(), value);
    }
    response
}

/// A body of unknown length (sent with `transfer-encoding: chunked`, as providers send
/// their event streams) for `events`: one frame when nothing is paced or cut (the fast path
/// the benchmarks take), otherwise a stream that sleeps `delay` between events and, with
/// `cut_after`, fails after that many events so the client sees the connection drop
/// mid-body.
fn paced(events: Vec<Bytes>, delay: Duration, cut_after: Option<usize>) -> Body {
    if delay.is_zero() && cut_after.is_none() {
        let mut all = Vec::with_capacity(events.iter().map(Bytes::len).sum());
        for event in &events {
            all.extend_from_slice(event);
        }
        let once = stream::once(std::future::ready(Ok::<_, std::io::Error>(Bytes::from(
            all,
        ))));
        return Body::from_stream(once);
    }
    let cut_after = cut_after.map(|n| n.min(events.len()));
    let feed = Feed {
        events: events.into_iter(),
        sent: 0,
        delay,
        cut_after,
    };
    Body::from_stream(stream::unfold(feed, Feed::next))
}

struct Feed {
    events: std::vec::IntoIter<Bytes>,
    sent: usize,
    delay: Duration,
    cut_after: Option<usize>,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.cut_after == Some(self.sent) {
            // Let the server flush what was sent before the error tears the connection down.
            tokio::task::yield_now().await;
            self.cut_after = None;
            self.events = Vec::new().into_iter();
            let cut = std::io::Error::other("x-mock-cut-after: connection cut by the mock");
            return Some((Err(cut), self));
        }
        let event = self.events.next()?;
        if self.sent > 0 && !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.sent += 1;
        Some((Ok(event), self))
    }
}
