//! Store errors.

use burnrate_model::prices::PriceError;

use crate::query::spec::SpecError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ledger file could not be opened.
    #[error(
        "cannot open the ledger at {path}: {source} (is another burnrate process using it? \
             DuckDB lets one process hold the file; query a running server with --server)"
    )]
    Open {
        /// File path.
        path: String,
        /// DuckDB's reason.
        source: duckdb::Error,
    },
    /// A file-system error.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The journal could not take an event.
    #[error("journal {path}: {reason}")]
    Journal {
        /// Journal directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// ClickHouse refused a statement or could not be reached.
    #[error("ClickHouse: {0}")]
    ClickHouse(String),
    /// DuckDB failed.
    #[error("ledger: {0}")]
    Duck(#[from] duckdb::Error),
    /// Arrow conversion failed.
    #[error("ledger batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A price file was rejected.
    #[error("price book:\n{0}")]
    Prices(#[from] PriceError),
    /// The query spec is not coherent.
    #[error("query: {0}")]
    Spec(#[from] SpecError),
    /// Archiving old months, or reading the archive, failed.
    #[error("ledger archive: {0}")]
    Archive(String),
    /// Stored data could not be read back.
    #[error("ledger holds unreadable data: {0}")]
    Corrupt(String),
}
