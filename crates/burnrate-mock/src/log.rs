//! The request log: what reached the mock, so tests can check what the gateway forwarded.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::MAX_BODY_BYTES;

/// Requests kept; older ones are dropped first so a long benchmark cannot grow it forever.
const CAPACITY: usize = 100_000;

/// One request as the mock received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// HTTP method (`POST`).
    pub method: String,
    /// Path and query (`/v1/chat/completions`).
    pub path: String,
    /// Headers in arrival order, names lower-case; non-UTF-8 values decoded lossily.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The credential the request carried: the `Authorization` value, else `x-api-key`.
    pub fn auth(&self) -> Option<&str> {
        self.header("authorization")
            .or_else(|| self.header("x-api-key"))
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A cheap, cloneable handle on the requests a mock server received (up to the most recent
/// 100,000), in arrival order.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl RequestLog {
    /// Every request kept so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.lock().clone()
    }

    /// The most recent request.
    pub fn last(&self) -> Option<SeenRequest> {
        self.lock().last().cloned()
    }

    /// The credential of the most recent request (`Authorization` or `x-api-key` value).
    pub fn last_auth(&self) -> Option<String> {
        self.lock().last().and_then(|r| r.auth().map(str::to_owned))
    }

    /// How many requests are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request has been seen (or all were cleared).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every request seen so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SeenRequest>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, request: SeenRequest) {
        let mut seen = self.lock();
        if seen.len() >= CAPACITY {
            seen.drain(..CAPACITY / 10);
        }
        seen.push(request);
    }
}

/// Middleware: records the request, then hands it on with its body intact.
pub(crate) async fn record(
    State(log): State<RequestLog>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return (
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )
                .into_response();
        }
    };
    log.push(SeenRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}
