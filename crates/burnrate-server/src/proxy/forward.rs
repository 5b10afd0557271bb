//! Sending a call upstream and answering the client: the whole body for plain calls, chunk by
//! chunk for streams (see [`super::stream`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use burnrate_model::Status;
use burnrate_policy::{Outcome, Ticket};
use burnrate_wire::{Api, Metered};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::oneshot;

use super::record::{self, CallContext};
use super::{Call, stream};
use crate::app::AppState;
use crate::attribution;
use crate::error::ApiError;
use crate::routing::Provider;

/// Largest non-streaming upstream body the gateway reads.
const MAX_UPSTREAM_BODY: usize = 256 << 20;

/// Client headers never forwarded: hop-by-hop headers, the client's credentials (the
/// provider's key replaces them), and encodings the gateway could not meter through.
const NOT_FORWARDED: [&str; 12] = [
    "host",
    "authorization",
    "x-api-key",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "accept-encoding",
    "proxy-authorization",
];

/// Upstream response headers not passed back to the client.
const NOT_RETURNED: [&str; 6] = [
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
];

/// Runs one admitted call and sends the response head (and, for plain calls, the body) to
/// the waiting handler through `head`: a plain call to its end; a stream until its head is
/// sent, when its pump takes the body on in a task of its own.
pub async fn run(state: Arc<AppState>, call: Call, head: oneshot::Sender<Response>) {
    let Call {
        context,
        provider,
        info,
        body,
        strip_usage,
        layers,
        headers,
        ticket,
        cache_key,
        captured,
    } = call;
    let dialect = context.api.dialect();
    // Held until the answer has been read, the stream's last chunk included.
    let lane = match provider.lane() {
        Ok(lane) => lane,
        Err(error) => {
            let error = ApiError::Upstream {
                provider: provider.name.clone(),
                reason: format!("no client for the provider: {}", describe(&error)),
            };
            fail(
                &state,
                &context,
                &ticket,
                error,
                Billing::Nothing,
                head,
                dialect,
            )
            .await;
            return;
        }
    };
    let request = upstream_request(lane.client(), &provider, context.api, &headers, body);
    let sent = Instant::now();
    let timeout = state.config().upstream_timeout;
    // Set when the provider never took the call: see `never_taken`.
    let never_sent = AtomicBool::new(false);
    let sending = async {
        request.send().await.map_err(|error| {
            never_sent.store(never_taken(&error), Ordering::Relaxed);
            describe(&error)
        })
    };
    let mut sending = std::pin::pin!(within(timeout, &provider, sending));
    // One poll hands the request to a connection; the layers are tokenised while the
    // upstream works on it.
    let early = std::future::poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
    let layers = layers.run_inline();
    let answered = match early {
        Poll::Ready(answered) => answered,
        Poll::Pending => sending.await,
    };
    let response = match answered {
        Ok(response) => response,
        Err(error) => {
            let billing = if never_sent.load(Ordering::Relaxed) {
                Billing::Nothing
            } else {
                Billing::Unknown
            };
            fail(&state, &context, &ticket, error, billing, head, dialect).await;
            return;
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let error = ApiError::Upstream {
            provider: provider.name.clone(),
            reason: redirect_reason(status, response.headers()),
        };
        // A redirect to where the resource is (301, 302, 307, 308) answers without doing the
        // work: nothing to bill. A 303 can follow work done ("see the result there").
        let billing = if status == StatusCode::SEE_OTHER {
            Billing::Unknown
        } else {
            Billing::Nothing
        };
        fail(&state, &context, &ticket, error, billing, head, dialect).await;
        return;
    }
    let mut response_headers = returned_headers(response.headers());
    super::policy_headers(&ticket, &mut response_headers);
    if info.stream && status.is_success() {
        let tasks = state.tasks.clone();
        let pump = stream::Pump {
            state,
            context,
            provider: provider.name.clone(),
            layers,
            sent,
            strip_usage,
            ticket,
            captured,
            lane,
        };
        // A task of its own, and this one ends: a stream lives for minutes, and an async fn's
        // state is as large as its largest await, so the plain path's state (7.2 KB) would
        // be held beside the pump's for the stream's whole life. Tracked like this task, so
        // shutdown waits for the stream too.
        tasks.spawn(pump.start(response, status, response_headers, head));
        return;
    }
    let body = match within(timeout, &provider, read_limited(response)).await {
        Ok(body) => body,
        Err(error) => {
            fail(
                &state,
                &context,
                &ticket,
                error,
                Billing::Unknown,
                head,
                dialect,
            )
            .await;
            return;
        }
    };
    drop(lane);
    state.metrics.upstream(&provider.name, sent.elapsed(), None);
    let (metered, status_of_call, error) = if status.is_success() {
        match burnrate_wire::meter_json(context.api, &body) {
            Ok(metered) => (metered, Status::Ok, None),
            Err(error) => (
                Metered::default(),
                Status::Ok,
                Some(format!("usage not readable from the response: {error}")),
            ),
        }
    } else {
        (
            Metered::default(),
            Status::Error,
            Some(upstream_error_text(status, &body)),
        )
    };
    let layers = layers.finish(&metered).await;
    let usage_read = metered.usage_seen;
    let event = context.event(&metered, layers, status_of_call, error);
    let model = event.model.clone();
    record::keep_content(captured.as_ref(), &event, body.clone()).await;
    let outcome = match record::record(&state, event) {
        // A success whose usage cannot be read may still be billed: settle at the reservation.
        Ok(outcome) => Outcome {
            usage_known: !status.is_success() || usage_read,
            ..outcome
        },
        Err(error) => {
            record::settle(&state, &ticket, &Outcome::default()).await;
            let _ = head.send(ApiError::Unavailable(error.to_string()).into_dialect(dialect));
            return;
        }
    };
    record::settle(&state, &ticket, &outcome).await;
    if let Some(key) = cache_key
        && status.is_success()
    {
        state.policy.remember(key, &model, body.clone());
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    let _ = head.send(response);
}

/// What a provider may bill for a call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Billing {
    /// The provider never took the call (no connection to it, or a redirect other than 303):
    /// it costs nothing, so a provider outage does not fill the budgets with calls nobody ran.
    Nothing,
    /// The provider may have worked on it (a timeout, a connection lost after sending, an
    /// unreadable answer): it settles at its reservation.
    Unknown,
}

/// Whether a failed send says the provider never took the call: no connection to it could
/// be made (DNS, TCP, the TLS handshake), or it refused the HTTP/2 stream, which means that
/// no processing occurred (`REFUSED_STREAM`, RFC 9113 §8.7; reqwest has already retried it).
/// A `GOAWAY` is not enough: it also ends streams the provider did work on.
fn never_taken(error: &reqwest::Error) -> bool {
    error.is_connect() || refused_stream(error)
}

/// Whether an error or one of its causes is an HTTP/2 `REFUSED_STREAM` (also inside an
/// `io::Error`, whose `source` skips the error it wraps).
fn refused_stream(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |cause| cause.source()).any(|cause| {
        let cause = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map_or(cause, |inner| inner as _),
            None => cause,
        };
        cause
            .downcast_ref::<h2::Error>()
            .is_some_and(|h2| h2.reason() == Some(h2::Reason::REFUSED_STREAM))
    })
}

/// Records a failed call, settles it as `billing` says and answers the client with the
/// failure in its dialect.
async fn fail(
    state: &AppState,
    context: &CallContext,
    ticket: &Ticket,
    error: ApiError,
    billing: Billing,
    head: oneshot::Sender<Response>,
    dialect: burnrate_wire::Dialect,
) {
    tracing::warn!(%error, "upstream call failed");
    let event = context.event(
        &Metered::default(),
        None,
        Status::Error,
        Some(error.to_string()),
    );
    let (outcome, response) = match record::record(state, event) {
        Ok(outcome) => (outcome, error.into_dialect(dialect)),
        Err(store) => (
            Outcome::default(),
            ApiError::Unavailable(store.to_string()).into_dialect(dialect),
        ),
    };
    let outcome = Outcome {
        usage_known: billing == Billing::Nothing,
        ..outcome
    };
    record::settle(state, ticket, &outcome).await;
    let _ = head.send(response);
}

fn upstream_request(
    client: &reqwest::Client,
    provider: &crate::routing::Provider,
    api: Api,
    headers: &HeaderMap,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let mut forwarded = HeaderMap::with_capacity(headers.len() + 2);
    for (name, value) in headers {
        let name_text = name.as_str();
        if NOT_FORWARDED.contains(&name_text) || name_text.starts_with(attribution::PREFIX) {
            continue;
        }
        forwarded.append(name.clone(), value.clone());
    }
    if let Some((name, value)) = provider.auth() {
        forwarded.insert(name.clone(), value.clone());
    }
    client
        .post(provider.url(api).clone())
        .headers(forwarded)
        .body(body)
}

/// The upstream's response headers minus hop-by-hop ones.
pub fn returned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut returned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !NOT_RETURNED.contains(&name.as_str()) {
            returned.append(name.clone(), value.clone());
        }
    }
    returned
}

/// Runs an upstream step with the upstream timeout; a failure or the timeout becomes the
/// client's error.
async fn within<T>(
    timeout: Duration,
    provider: &Provider,
    step: impl Future<Output = Result<T, String>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(reason)) => Err(ApiError::Upstream {
            provider: provider.name.clone(),
            reason,
        }),
        Err(_) => Err(ApiError::UpstreamTimeout {
            provider: provider.name.clone(),
            seconds: timeout.as_secs(),
        }),
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Bytes, String> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_UPSTREAM_BODY as u64)
    {
        return Err(format!(
            "response body is larger than {MAX_UPSTREAM_BODY} bytes"
        ));
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| describe(&error))? {
        if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(format!(
                "response body is larger than {MAX_UPSTREAM_BODY} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Why an upstream's redirect fails the call, and what to change.
fn redirect_reason(status: StatusCode, headers: &HeaderMap) -> String {
    let target = headers
        .get(http::header::LOCATION)
        .map_or("nowhere".into(), |location| {
            String::from_utf8_lossy(location.as_bytes()).into_owned()
        });
    format!(
        "answered {} with a redirect to {target}, which the gateway does not follow (it would \
         send the call and the provider key there); point the provider's base_url at the \
         address that answers",
        status.as_u16()
    )
}

/// A short description of an upstream error body: the provider's message when it has one.
fn upstream_error_text(status: StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/message")
                .and_then(|message| message.as_str().map(str::to_string))
        });
    match message {
        Some(message) => format!("upstream status {}: {message}", status.as_u16()),
        None => format!("upstream status {}", status.as_u16()),
    }
}

/// reqwest's error with its causes, which hold the useful part (connection refused, ...).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How long a stream may stay silent before the gateway gives up on it.
pub fn idle_timeout(state: &AppState) -> Duration {
    state.config().upstream_timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_stream_anywhere_in_the_causes_means_the_provider_never_took_the_call() {
        /// An error caused by another, as hyper's errors are.
        #[derive(Debug)]
        struct CausedBy(h2::Error);
        impl std::fmt::Display for CausedBy {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request failed")
            }
        }
        impl std::error::Error for CausedBy {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = || h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(refused_stream(&refused()));
        assert!(refused_stream(&CausedBy(refused())));
        assert!(refused_stream(&std::io::Error::other(refused())));
        let cancelled = CausedBy(h2::Error::from(h2::Reason::CANCEL));
        assert!(
            !refused_stream(&cancelled),
            "a stream cancelled may have been worked on"
        );
        assert!(!refused_stream(&std::io::Error::other("connection reset")));
    }
}
