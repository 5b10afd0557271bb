//! The axum application: shared state and the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burnrate_model::prices::ServiceTier;
use burnrate_model::{PriceBook, UsageEvent};
use burnrate_wire::Api;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::proxy;
use crate::{api, ingest};

/// Everything a request handler needs.
pub struct AppState {
    /// Validated configuration.
    pub config: Config,
    /// Pooled HTTP/1.1 client for the upstreams.
    pub client: reqwest::Client,
    /// Journal and store.
    pub ledger: Ledger,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Prices for the live cost metric (the ledger prices exactly at query time).
    pub prices: LivePrices,
    /// In-flight calls, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// The price book as the gateway uses it on the request path: for the cost metric only.
pub struct LivePrices {
    book: PriceBook,
}

impl LivePrices {
    /// Wraps the store's price book.
    pub fn new(book: PriceBook) -> LivePrices {
        LivePrices { book }
    }

    /// The event's list-price cost in dollars, `None` when its model has no price.
    pub fn cost_usd(&self, event: &UsageEvent) -> Option<f64> {
        let key = self.book.resolve(&event.provider, &event.model)?;
        let tier = ServiceTier::from_event(event.service_tier.as_deref());
        let cost = self
            .book
            .cost(&key, event.ts.date_naive(), tier, &event.usage)?;
        // Metrics are approximate by nature; exact money stays in the ledger.
        Some(cost.to_femto() as f64 / 1e15)
    }
}

/// Builds the router. Routes, in the order a request meets them:
///
/// 1. Unauthenticated allow-list: `/healthz`, `/readyz`, `/metrics` (scrape it from a
///    private network; it holds totals, not tenant data).
/// 2. Proxy routes (`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`,
///    `/v1/messages`, `GET /v1/models`): every one authenticates a virtual key first, in
///    the handler, so the refusal speaks the endpoint's dialect and is recorded.
/// 3. Admin API (`/api/...`): the admin token, checked per handler.
///
/// There is no request-wide middleware on purpose: each added layer costs latency on every
/// call, and the proxy handler bounds its own body read and times its own upstream call.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/v1/chat/completions",
            post(|state, request| proxy::handle(state, Api::ChatCompletions, request)),
        )
        .route(
            "/v1/responses",
            post(|state, request| proxy::handle(state, Api::Responses, request)),
        )
        .route(
            "/v1/embeddings",
            post(|state, request| proxy::handle(state, Api::Embeddings, request)),
        )
        .route(
            "/v1/messages",
            post(|state, request| proxy::handle(state, Api::Messages, request)),
        )
        .route("/v1/models", get(proxy::models))
        .merge(api::routes())
        .merge(ingest::routes())
        .with_state(state)
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.tasks.is_closed() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(state.ledger.lag()),
    )
        .into_response()
}
