//! Ingest without the proxy: OTLP/HTTP traces (`POST /v1/traces`) and usage events posted
//! directly (`POST /api/v1/events`). Both journal what they accept in one write before they
//! answer, so an acknowledged export is never lost.
//!
//! Callers authenticate with the admin token (a trusted service: the tenant comes from the
//! spans or events) or with a virtual key, whose tenant then overrides whatever the data says
//! (a key bound to a tenant fixes the tenant, as on the proxy routes).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use burnrate_model::UsageEvent;
use burnrate_wire::otlp::{self, Encoding};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::app::AppState;
use crate::keys::{KeyBinding, presents};

/// Source recorded for events posted to the events API without one.
const API_SOURCE: &str = "api";

/// The OTLP route alone (for the separate OTLP listener).
pub fn otlp_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/traces", post(traces))
        .layer(DefaultBodyLimit::disable())
}

/// The OTLP route and the events API.
pub fn routes() -> Router<Arc<AppState>> {
    otlp_routes().route("/api/v1/events", post(events))
}

/// Who is sending data.
enum Caller {
    /// The admin token: a trusted service.
    Service,
    /// A virtual key: its tenant is forced onto every event.
    Key(Arc<KeyBinding>),
}

impl Caller {
    fn identify(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
        let config = state.config();
        if let Some(key) = config.keys.authenticate(headers) {
            return Some(Caller::Key(key));
        }
        let expected = config.admin_token.as_deref()?;
        presents(headers, expected).then_some(Caller::Service)
    }

    fn apply(&self, event: &mut UsageEvent) {
        if let Caller::Key(key) = self {
            event.tenant_id = Some(key.tenant_id.clone());
        }
    }
}

/// An OTLP error: the status and a `google.rpc.Status` body in the request's encoding.
fn otlp_error(status: StatusCode, encoding: Encoding, message: &str) -> Response {
    // gRPC codes: INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE.
    let code: i32 = match status {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 3,
    };
    let (content_type, body) = match encoding {
        Encoding::Json => (
            "application/json",
            json!({"code": code, "message": message})
                .to_string()
                .into_bytes(),
        ),
        Encoding::Protobuf => {
            // google.rpc.Status { int32 code = 1; string message = 2; }, written with prost's
            // field encoders (the message type is not part of opentelemetry-proto).
            let mut body = Vec::with_capacity(message.len() + 8);
            prost::encoding::int32::encode(1, &code, &mut body);
            prost::encoding::string::encode(2, &message.to_owned(), &mut body);
            ("application/x-protobuf", body)
        }
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn traces(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return otlp_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            &format!(
                "content-type must be application/x-protobuf or application/json, got `{content_type}`"
            ),
        );
    };
    let Some(caller) = Caller::identify(&state, &headers) else {
        state.metrics.refusal("unauthorized");
        return otlp_error(
            StatusCode::UNAUTHORIZED,
            encoding,
            "send a burnrate key or the admin token as `Authorization: Bearer ...` \
             (OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20...)",
        );
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?"))
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return otlp_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                &format!("content-encoding `{other}` is not supported (use gzip or none)"),
            );
        }
    };
    let limit = state.config().max_body_bytes;
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    let fits = declared.is_none_or(|length| length <= limit);
    let body = if fits {
        axum::body::to_bytes(body, limit).await.ok()
    } else {
        None
    };
    let Some(body) = body else {
        return otlp_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            &format!("body is larger than the limit of {limit} bytes (server.max_body_bytes)"),
        );
    };
    let request = match otlp::decode(&body, encoding, gzip, limit) {
        Ok(request) => request,
        Err(error) => {
            let status = if otlp::is_too_large(&error) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return otlp_error(status, encoding, &error.to_string());
        }
    };
    let mut mapped = otlp::map_request(&request, &state.config().otlp);
    let mut events = std::mem::take(&mut mapped.events);
    for event in &mut events {
        caller.apply(event);
    }
    if let Err(error) = journal(&state, events) {
        return otlp_error(StatusCode::SERVICE_UNAVAILABLE, encoding, &error);
    }
    let content_type = match encoding {
        Encoding::Json => "application/json",
        Encoding::Protobuf => "application/x-protobuf",
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        otlp::encode_response(&mapped, encoding),
    )
        .into_response()
}

/// Counts and journals accepted events in one write.
fn journal(state: &AppState, events: Vec<UsageEvent>) -> Result<(), String> {
    for event in &events {
        let cost = state.prices.cost(event);
        state
            .metrics
            .call(crate::metrics::CallLabels::of(event), &event.usage, cost);
    }
    state
        .ledger
        .record_all(events)
        .map_err(|error| error.to_string())
}

/// `POST /api/v1/events`: a JSON array of events or JSONL. Valid events are journaled and
/// acknowledged; invalid ones are listed with their index, field and reason. All invalid: 400.
async fn events(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let problem = |status: StatusCode, message: String| {
        (status, axum::Json(json!({"error": message}))).into_response()
    };
    let Some(caller) = Caller::identify(&state, &headers) else {
        state.metrics.refusal("unauthorized");
        return problem(
            StatusCode::UNAUTHORIZED,
            "send a burnrate key or the admin token as `Authorization: Bearer ...`".into(),
        );
    };
    if body.len() > state.config().max_body_bytes {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body is larger than the limit of {} bytes (server.max_body_bytes)",
                state.config().max_body_bytes
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return problem(StatusCode::BAD_REQUEST, "(body): not UTF-8".into());
    };
    let documents = match split_documents(text) {
        Ok(documents) => documents,
        Err(message) => return problem(StatusCode::BAD_REQUEST, message),
    };
    let mut accepted = Vec::with_capacity(documents.len());
    let mut rejected = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        match UsageEvent::from_json(document) {
            Ok(mut event) => {
                event.source.get_or_insert_with(|| API_SOURCE.to_owned());
                caller.apply(&mut event);
                event.ensure_id(document.as_bytes());
                accepted.push(event);
            }
            Err(error) => rejected.push(json!({
                "index": index, "field": error.field, "reason": error.reason,
            })),
        }
    }
    if accepted.is_empty() && !rejected.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"accepted": 0, "rejected": rejected})),
        )
            .into_response();
    }
    let count = accepted.len();
    if let Err(error) = journal(&state, accepted) {
        return problem(StatusCode::SERVICE_UNAVAILABLE, error);
    }
    axum::Json(json!({"accepted": count, "rejected": rejected})).into_response()
}

/// The events of a body: the elements of a JSON array, or one per non-blank line.
fn split_documents(text: &str) -> Result<Vec<String>, String> {
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|error| format!("(body): not a JSON array of events: {error}"))?;
        return Ok(values.iter().map(serde_json::Value::to_string).collect());
    }
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}
