//! Insight over the ledger: anomaly detectors that return findings with their evidence, the
//! long tail of spend (Pareto shares and Gini), and cache economics.
//!
//! Everything is computed by queries on the store (the query spec every backend answers, and
//! a few purpose-built store queries), never by loading events into memory.

pub mod baseline;
pub mod cohorts;
pub mod compare;
pub mod detectors;
pub mod economics;
pub mod forecast;
pub mod invoice;
pub mod longtail;
pub mod margins;
pub mod meters;
pub mod report;
pub mod roles;
mod series;

pub use detectors::{Finding, Severity};
pub use series::{dollars, start_of};
