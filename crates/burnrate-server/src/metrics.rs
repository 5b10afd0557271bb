//! Prometheus metrics at `/metrics`: requests, cost, tokens by class, refusals, upstream
//! latency, time to first byte, calls in flight and connections per provider, and journal
//! lag.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use burnrate_model::{Usage, UsageEvent};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::routing::Providers;

/// Labels of a served or refused call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Event operation (`chat`, `messages`, ...).
    pub operation: &'static str,
    /// Provider name, or `none` when refused before routing.
    pub provider: String,
    /// Event status.
    pub status: &'static str,
}

impl CallLabels {
    /// The labels of a recorded event.
    pub fn of(event: &UsageEvent) -> CallLabels {
        CallLabels {
            operation: match event.operation.as_deref() {
                Some("chat") => "chat",
                Some("responses") => "responses",
                Some("embeddings") => "embeddings",
                Some("messages") => "messages",
                _ => "other",
            },
            provider: event.provider.clone(),
            status: event.status.as_str(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Counter<f64, AtomicU64>,
    unpriced: Counter,
    refusals: Family<ReasonLabels, Counter>,
    upstream_latency: Family<ProviderLabels, Histogram>,
    first_byte: Family<ProviderLabels, Histogram>,
    journal_lag: Gauge,
    in_flight: Family<ProviderLabels, Gauge>,
    lanes: Family<ProviderLabels, Gauge>,
    /// Held while a scrape fills the lane gauges and encodes them, so two scrapes at once
    /// cannot clear each other's.
    rendering: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let latency = || Histogram::new(exponential_buckets(0.000_1, 2.0, 20));
        let mut metrics = Metrics {
            registry: Registry::with_prefix("burnrate"),
            requests: Family::default(),
            tokens: Family::default(),
            cost: Counter::default(),
            unpriced: Counter::default(),
            refusals: Family::default(),
            upstream_latency: Family::new_with_constructor(latency),
            first_byte: Family::new_with_constructor(latency),
            journal_lag: Gauge::default(),
            in_flight: Family::default(),
            lanes: Family::default(),
            rendering: std::sync::Mutex::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "requests",
            "Calls handled, by operation, provider and status",
            metrics.requests.clone(),
        );
        registry.register(
            "tokens",
            "Tokens by class (input includes its cache parts; output includes reasoning)",
            metrics.tokens.clone(),
        );
        registry.register(
            "cost_usd",
            "List-price cost of priced calls, in dollars (the ledger holds the exact figures)",
            metrics.cost.clone(),
        );
        registry.register(
            "unpriced_calls",
            "Calls whose model has no price",
            metrics.unpriced.clone(),
        );
        registry.register(
            "refusals",
            "Calls refused by the gateway, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a call upstream to its last byte",
            metrics.upstream_latency.clone(),
        );
        registry.register(
            "upstream_first_byte_seconds",
            "Time from sending a call upstream to its first body byte",
            metrics.first_byte.clone(),
        );
        registry.register(
            "journal_lag_events",
            "Events journaled but not yet in the store",
            metrics.journal_lag.clone(),
        );
        registry.register(
            "upstream_in_flight",
            "Calls to a provider sent or about to be whose answers are not yet read",
            metrics.in_flight.clone(),
        );
        registry.register(
            "upstream_lanes",
            "Lanes opened to a provider since the configuration was loaded (over HTTP/2 a connection carrying up to 100 calls; over HTTP/1.1 one)",
            metrics.lanes.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// Counts one recorded call and its tokens; `cost` is `None` for unpriced models.
    pub fn call(&self, labels: CallLabels, usage: &Usage, cost: Option<burnrate_model::Money>) {
        self.requests.get_or_create(&labels).inc();
        for (class, count) in [
            ("input", usage.input_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            if count > 0 {
                self.tokens
                    .get_or_create(&TokenLabels { class })
                    .inc_by(count);
            }
        }
        match cost {
            Some(cost) => {
                // Metrics are approximate by nature; exact money stays in the ledger.
                self.cost.inc_by(cost.to_femto() as f64 / 1e15);
            }
            None if usage.input_tokens + usage.output_tokens > 0 => {
                self.unpriced.inc();
            }
            None => {}
        }
    }

    /// Counts a refusal (`unauthorized`, `bad_request`, `missing_attribution`, ...).
    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Records an upstream call's total time and time to first byte.
    pub fn upstream(&self, provider: &str, total: Duration, first_byte: Option<Duration>) {
        let labels = ProviderLabels {
            provider: provider.to_string(),
        };
        self.upstream_latency
            .get_or_create(&labels)
            .observe(total.as_secs_f64());
        if let Some(first_byte) = first_byte {
            self.first_byte
                .get_or_create(&labels)
                .observe(first_byte.as_secs_f64());
        }
    }

    /// The metrics in Prometheus text format, with the journal lag and the load of the
    /// configured providers' connections as of now. A reload opens new lanes, so calls that
    /// began before it are no longer counted (nor a provider it removed).
    pub fn render(&self, journal_lag: u64, providers: &Providers) -> String {
        let _rendering = self
            .rendering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.journal_lag
            .set(i64::try_from(journal_lag).unwrap_or(i64::MAX));
        self.in_flight.clear();
        self.lanes.clear();
        for provider in providers.iter() {
            let labels = ProviderLabels {
                provider: provider.name.clone(),
            };
            let load = provider.load();
            self.in_flight
                .get_or_create(&labels)
                .set(gauge(load.in_flight));
            self.lanes.get_or_create(&labels).set(gauge(load.lanes));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}
