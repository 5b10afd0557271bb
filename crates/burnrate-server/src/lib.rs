//! The burnrate gateway: an OpenAI- and Anthropic-compatible proxy that attributes, meters
//! and journals every call, plus the admin query API, the dashboard and Prometheus metrics.

pub mod api;
pub mod app;
pub mod attribution;
pub mod audit;
pub mod config;
pub mod dashboard;
pub mod enforce;
pub mod error;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod price_update;
pub mod proxy;
pub mod reports;
pub mod retention;
pub mod routing;
pub mod serve;
pub mod upstream;

pub use config::Config;
pub use serve::{Gateway, ServeError, termination};
