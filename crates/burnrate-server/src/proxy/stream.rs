//! Streams: upstream chunks pass to the client as they arrive while the meter reads them.
//!
//! The pump owns the upstream stream and drives it to its end even when the client has gone,
//! so usage is always recorded. The event is journaled before the chunk that completes the
//! stream is sent, so a client that received the whole stream implies a journaled event. A
//! stream cut off midway is recorded with what it used and `status = error`, and the client's
//! body is aborted the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use burnrate_model::Status;
use burnrate_wire::StreamMeter;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::forward::{describe, idle_timeout};
use super::layers::LayerWork;
use super::record::{self, CallContext, Captured};
use crate::app::AppState;
use crate::error::ApiError;
use crate::upstream::Lane;
use burnrate_policy::{Outcome, Ticket};

/// Chunks queued between the pump and a slow client.
const CLIENT_QUEUE: usize = 16;

type ClientChunk = Result<Bytes, std::io::Error>;

/// Moves one streamed call from upstream to the client.
pub struct Pump {
    /// Shared state.
    pub state: Arc<AppState>,
    /// The call.
    pub context: CallContext,
    /// Provider name, for metrics.
    pub provider: String,
    /// The layer split.
    pub layers: LayerWork,
    /// When the call was sent upstream.
    pub sent: Instant,
    /// Whether to hide the usage chunk the gateway asked for.
    pub strip_usage: bool,
    /// What the policy reserved, settled when the stream's usage is known.
    pub ticket: Ticket,
    /// The call's content, when it is captured.
    pub captured: Option<Captured>,
    /// The call's place on its connection, given back when the upstream has answered.
    pub lane: Lane,
}

impl Pump {
    /// Answers the head at once and returns the pump, which moves the body until the
    /// upstream ends: the caller spawns it, so the head does not wait for a task to start.
    pub fn start(
        self,
        response: reqwest::Response,
        status: StatusCode,
        headers: HeaderMap,
        head: oneshot::Sender<Response>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (client, client_rx) = mpsc::channel::<ClientChunk>(CLIENT_QUEUE);
        // Set once the client has been sent everything it will get; a body whose pump
        // stopped before that (the client read nothing for too long) ends with an error, so
        // the client never takes a cut stream for a whole one.
        let ended = Arc::new(AtomicBool::new(false));
        let body = futures_util::stream::unfold(
            (client_rx, Some(Arc::clone(&ended))),
            |(mut rx, ended)| async move {
                match rx.recv().await {
                    Some(chunk) => Some((chunk, (rx, ended))),
                    None => {
                        let ended = ended?;
                        (!ended.load(Ordering::Acquire))
                            .then(|| (Err(std::io::Error::other(UNREAD)), (rx, None)))
                    }
                }
            },
        );
        let mut answer = Response::new(Body::from_stream(body));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        let client_gone = head.send(answer).is_err();
        self.run(response.bytes_stream(), client, ended, client_gone)
    }

    /// Pumps the body to `client` until the upstream ends, then records the call.
    async fn run(
        self,
        mut upstream: impl Stream<Item = reqwest::Result<Bytes>> + Unpin,
        client: mpsc::Sender<ClientChunk>,
        ended: Arc<AtomicBool>,
        mut client_gone: bool,
    ) {
        let Pump {
            state,
            context,
            provider,
            layers,
            sent,
            strip_usage,
            ticket,
            captured,
            lane,
        } = self;
        // A copy of what the upstream sent, for a captured call.
        let mut transcript: Option<Vec<u8>> = captured.as_ref().map(|_| Vec::new());
        let mut meter = StreamMeter::new(context.api, strip_usage);
        let mut first_byte = None;
        let mut layers = Some(layers);
        let mut recorded = false;
        let idle = idle_timeout(&state);
        let failure = loop {
            let next = match tokio::time::timeout(idle, upstream.next()).await {
                Ok(next) => next,
                Err(_) => break Some(format!("upstream went silent for {} s", idle.as_secs())),
            };
            let chunk = match next {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    break Some(format!("upstream stream failed: {}", describe(&error)));
                }
                None => break None,
            };
            first_byte.get_or_insert_with(|| sent.elapsed());
            if let Some(copy) = transcript.as_mut()
                && copy.len() + chunk.len() <= record::MAX_CAPTURED_RESPONSE
            {
                copy.extend_from_slice(&chunk);
            }
            let out = meter.feed(chunk);
            if meter.is_complete() && !recorded {
                recorded = true;
                let error = meter.error().map(ToString::to_string);
                let content = Content::of(captured.as_ref(), transcript.as_deref());
                // Boxed, as the other call below: recording happens once, and inline its
                // state would be held by every open stream for its whole life.
                if let Err(store) = Box::pin(finish(
                    &state,
                    &context,
                    &ticket,
                    &meter,
                    layers.take(),
                    (Status::Ok, error),
                    content,
                ))
                .await
                {
                    // Not journaled, so not acknowledged: abort the client's stream (the body
                    // ends with an error even if this one cannot be queued).
                    if !client_gone {
                        let error = std::io::Error::other(store.to_string());
                        deliver(&client, Err(error), idle).await;
                    }
                    client_gone = true;
                }
            }
            if !client_gone && !out.is_empty() {
                client_gone = !deliver(&client, Ok(out), idle).await;
            }
        };
        drop(upstream);
        drop(lane);
        state
            .metrics
            .upstream(&provider, sent.elapsed(), first_byte);
        let rest = meter.flush();
        if !recorded {
            let error = failure.clone().unwrap_or_else(|| {
                meter.error().map_or_else(
                    || "the stream ended before its final event".to_string(),
                    ToString::to_string,
                )
            });
            let content = Content::of(captured.as_ref(), transcript.as_deref());
            if let Err(store) = Box::pin(finish(
                &state,
                &context,
                &ticket,
                &meter,
                layers.take(),
                (Status::Error, Some(error)),
                content,
            ))
            .await
            {
                tracing::error!(%store, "a cut-off stream could not be recorded");
            }
        }
        if client_gone {
            return;
        }
        if !rest.is_empty() && !deliver(&client, Ok(rest), idle).await {
            return;
        }
        if let Some(reason) = failure {
            let error = ApiError::Upstream { provider, reason };
            let error = std::io::Error::other(error.to_string());
            if !deliver(&client, Err(error), idle).await {
                return;
            }
        }
        // A stream that ended before its final event (even cleanly, upstream) was recorded as
        // an error; its client's body ends with one too.
        ended.store(recorded, Ordering::Release);
    }
}

/// Why a stream's client got an error instead of the rest of its stream.
const UNREAD: &str = "the gateway stopped sending this stream: its client left a chunk unread \
                      for longer than the upstream timeout";

/// Queues a chunk for the client. False when the client has left, or has read nothing for
/// `patience` (the upstream timeout): the gateway then stops sending to it, reads the
/// upstream's stream to its end and records the call, rather than hold the call, its
/// upstream stream and its unrecorded usage for as long as a client keeps a socket open
/// without reading.
async fn deliver(
    client: &mpsc::Sender<ClientChunk>,
    chunk: ClientChunk,
    patience: std::time::Duration,
) -> bool {
    match tokio::time::timeout(patience, client.send(chunk)).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            tracing::warn!(
                seconds = patience.as_secs(),
                "a stream's client read nothing for the upstream timeout; finishing the call without it"
            );
            false
        }
    }
}

/// A captured stream's content so far.
struct Content<'a> {
    captured: &'a Captured,
    response: Bytes,
}

impl<'a> Content<'a> {
    fn of(captured: Option<&'a Captured>, transcript: Option<&[u8]>) -> Option<Content<'a>> {
        Some(Content {
            captured: captured?,
            response: Bytes::copy_from_slice(transcript?),
        })
    }
}

/// Records the stream's event (its content first, when captured) and settles it with the
/// policy.
async fn finish(
    state: &AppState,
    context: &CallContext,
    ticket: &Ticket,
    meter: &StreamMeter,
    layers: Option<LayerWork>,
    (status, error): (Status, Option<String>),
    content: Option<Content<'_>>,
) -> Result<(), burnrate_store::StoreError> {
    let metered = meter.metered();
    let layers = match layers {
        Some(layers) => layers.finish(&metered).await,
        None => None,
    };
    let event = context.event(&metered, layers, status, error);
    if let Some(content) = content {
        record::keep_content(Some(content.captured), &event, content.response).await;
    }
    let recorded = record::record(state, event);
    // A stream cut before its usage arrived may still be billed: settle at the reservation.
    let outcome = match &recorded {
        Ok(outcome) => Outcome {
            usage_known: metered.usage_seen,
            ..outcome.clone()
        },
        Err(_) => Outcome::default(),
    };
    record::settle(state, ticket, &outcome).await;
    recorded.map(drop)
}
