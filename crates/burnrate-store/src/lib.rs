//! The ledger store: the query spec, its SQL, typed results, the named reports and the
//! embedded DuckDB backend.

pub mod batch;
pub mod clickhouse;
pub mod duck;
pub mod error;
pub mod journal;
pub mod pricing;
pub mod query;
pub mod reports;
pub mod store;

pub use duck::{
    AppendOutcome, DuckStore, EventBatch, MonthArchive, SessionGrowth, ToolRepeat, UnpricedModel,
    expire_archives,
};
pub use error::StoreError;
pub use journal::Journal;
pub use query::bins::RunCostBin;
pub use query::result::{Cell, ColumnKind, QueryResult, WireResult};
pub use query::runs::{RunGroup, RunSummary, RunsOverview};
pub use query::spec::{Bucket, Filter, Metric, Order, QuerySpec};
pub use store::Store;
