//! The axum application: shared state and the router.

use std::sync::Arc;

use arc_swap::ArcSwap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burnrate_model::prices::ServiceTier;
use burnrate_model::{Money, PriceBook, UsageEvent};
use burnrate_policy::Policy;
use burnrate_wire::Api;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::notify::Notifiers;
use crate::proxy;
use crate::{api, dashboard, ingest};

/// Everything a request handler needs.
pub struct AppState {
    /// Validated configuration; swapped whole on reload, so a call keeps the configuration
    /// it started with.
    pub config: ArcSwap<Config>,
    /// Enforcement and its state.
    pub policy: Policy,
    /// Where alerts and pages go (rebuilt on reload).
    pub notifiers: ArcSwap<Notifiers>,
    /// Client for everything else the gateway calls (notifiers' webhooks).
    pub client: reqwest::Client,
    /// Journal and store.
    pub ledger: Ledger,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Prices for the live cost metric (the ledger prices exactly at query time).
    pub prices: LivePrices,
    /// In-flight calls, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Detector findings of closed days, kept for the dashboard.
    pub findings: Arc<crate::dashboard::KeptFindings>,
}

impl AppState {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Hands alerts to the notifiers (delivered in the background).
    pub fn alert(&self, alerts: Vec<burnrate_policy::Alert>) {
        if alerts.is_empty() {
            return;
        }
        let notifiers = self.notifiers.load();
        for alert in alerts {
            tracing::warn!(kind = alert.kind, tenant = %alert.tenant, "{}", alert.title);
            if alert.kind == "tenant_paused" {
                self.ledger.audit(crate::audit::decision(
                    burnrate_audit::Kind::Pause,
                    Some(&alert.tenant),
                    alert.title.clone(),
                ));
            }
            notifiers.send(crate::notify::Alert {
                kind: alert.kind.to_string(),
                page: alert.page,
                title: alert.title,
                text: alert.text,
                tenant: Some(alert.tenant),
                fields: alert.fields,
                at: chrono::Utc::now(),
            });
        }
    }
}

/// Waits `tick` for a background loop (a scheduler); true when the gateway is stopping and
/// the loop should end.
pub async fn stopping_after(tasks: &TaskTracker, tick: std::time::Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(tick) => {}
        () = tasks.wait() => return true,
    }
    tasks.is_closed()
}

/// The price book as the gateway uses it on the request path: the policy's worst-case
/// reservations and settlements, and the cost metric.
pub struct LivePrices {
    book: arc_swap::ArcSwap<PriceBook>,
}

impl LivePrices {
    /// Wraps the store's price book.
    pub fn new(book: PriceBook) -> LivePrices {
        LivePrices {
            book: arc_swap::ArcSwap::from_pointee(book),
        }
    }

    /// The price book.
    pub fn book(&self) -> arc_swap::Guard<Arc<PriceBook>> {
        self.book.load()
    }

    /// Replaces the book (a price update reached the ledger).
    pub fn replace(&self, book: PriceBook) {
        self.book.store(Arc::new(book));
    }

    /// The event's exact list-price cost, `None` when its model has no price.
    pub fn cost(&self, event: &UsageEvent) -> Option<Money> {
        let book = self.book.load();
        let key = book.resolve(&event.provider, &event.model)?;
        let tier = ServiceTier::from_event(event.service_tier.as_deref());
        book.cost(&key, event.ts.date_naive(), tier, &event.usage)
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
/// 4. Dashboard (`/ui/...`): a session cookie from its login form, checked per handler
///    (the login page and the stylesheet are open).
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
        .merge(dashboard::routes())
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
        state
            .metrics
            .render(state.ledger.lag(), &state.config().providers),
    )
        .into_response()
}
