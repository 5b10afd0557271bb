//! Store errors.

use burnrate_model::prices::PriceError;

use crate::query::spec::SpecError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ledger file could not be opened.
    #[error("cannot open the ledger at {path}: {reason}")]
    Open {
        /// File path.
        path: String,
        /// DuckDB's reason, and what to do about it when that is known.
        reason: String,
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

impl StoreError {
    /// Why DuckDB could not open the ledger at `path`, with what to do for the usual causes.
    pub fn open(path: &std::path::Path, error: &duckdb::Error) -> StoreError {
        let message = error.to_string();
        let hint = if message.contains("Could not set lock") {
            " (DuckDB lets one process hold a ledger file: while `burnrate serve` runs, query \
             it with --server URL --admin-token TOKEN instead of --db)"
        } else if path.is_dir() {
            " (that is a folder: give the ledger file's path, e.g. data/burnrate.duckdb)"
        } else if message.contains("not a valid DuckDB database file") {
            " (that file is not a burnrate ledger: check the path)"
        } else {
            ""
        };
        StoreError::Open {
            path: path.display().to_string(),
            reason: format!("{message}{hint}"),
        }
    }
}
