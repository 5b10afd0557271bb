//! Retention: old months of the ledger move to monthly Parquet files and can be read back.
//!
//! The archive is the folder `<dir>/ledger/`, one file per calendar month (UTC) named
//! `YYYY-MM.parquet`; events that arrive later for a month already archived go to the next free
//! `YYYY-MM.N.parquet`. A file is never overwritten, and a month's events leave the ledger only
//! after its file has been read back and found to hold exactly them. Files keep every column, so
//! costs (derived at query time from the price tables) come out the same when they are read back.

use std::path::{Path, PathBuf};

use chrono::{Datelike, Months, NaiveDate};

use super::DuckStore;
use crate::error::StoreError;

/// One month written to the archive (and removed from the ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthArchive {
    /// The month, as its first day (UTC).
    pub month: NaiveDate,
    /// The file the month's events went to.
    pub path: PathBuf,
    /// Events written (and removed from the ledger).
    pub events: u64,
    /// Their input tokens.
    pub input_tokens: u64,
    /// Their output tokens.
    pub output_tokens: u64,
}

impl MonthArchive {
    /// The month as `YYYY-MM`.
    pub fn label(&self) -> String {
        self.month.format("%Y-%m").to_string()
    }
}

/// The token columns whose sums must match between the ledger and a month's file.
pub(super) const TOKEN_COLUMNS: [&str; 6] = [
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
];

/// What a set of events adds up to: compared between the ledger and a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    events: i64,
    /// Sums of [`TOKEN_COLUMNS`], in order.
    tokens: [i128; 6],
    /// Sum of the ids' hashes: order-independent.
    ids: i128,
    /// Sum of the whole rows' hashes: catches any column that did not survive the round trip.
    rows: i128,
}

/// What differs between the ledger's tally of a month and its file's; empty when they match.
pub(super) fn differences(ledger: &Tally, file: &Tally) -> Vec<String> {
    let mut differ = Vec::new();
    if ledger.events != file.events {
        differ.push(format!(
            "events: {} in the ledger, {} in the file",
            ledger.events, file.events
        ));
    }
    for ((column, ours), theirs) in TOKEN_COLUMNS.iter().zip(ledger.tokens).zip(file.tokens) {
        if ours != theirs {
            differ.push(format!(
                "{column}: {ours} in the ledger, {theirs} in the file"
            ));
        }
    }
    if ledger.ids != file.ids {
        differ.push("the set of event ids".to_owned());
    }
    if ledger.rows != file.rows {
        differ.push("the contents of the rows".to_owned());
    }
    differ
}

/// The archive folder under `dir`.
fn ledger_dir(dir: &Path) -> PathBuf {
    dir.join("ledger")
}

/// The month of an archive file named `YYYY-MM.parquet` or `YYYY-MM.N.parquet`.
fn file_month(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".parquet")?;
    let (month, part) = match stem.split_once('.') {
        Some((month, part)) => (month, Some(part)),
        None => (stem, None),
    };
    if part.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let bytes = month.as_bytes();
    let shaped = bytes.len() == 7
        && bytes[4] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()
}

/// The archive files under `dir` with their months, sorted by name. No folder: none.
fn archive_files(dir: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, StoreError> {
    let folder = ledger_dir(dir);
    let io = |source| StoreError::Io {
        path: folder.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let month = entry.file_name().to_str().and_then(file_month);
        if let Some(month) = month
            && entry.file_type().map_err(io)?.is_file()
        {
            files.push((month, entry.path()));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

/// Deletes the archive files under `dir` of months before `oldest_kept`'s month and returns
/// them. Files not named like archive files are left alone; no archive folder deletes nothing.
pub fn expire_archives(dir: &Path, oldest_kept: NaiveDate) -> Result<Vec<PathBuf>, StoreError> {
    let first_kept = oldest_kept.with_day(1).unwrap_or(oldest_kept);
    let mut deleted = Vec::new();
    for (month, path) in archive_files(dir)? {
        if month < first_kept {
            std::fs::remove_file(&path).map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
            deleted.push(path);
        }
    }
    Ok(deleted)
}

/// A path as a SQL string literal.
fn sql_path(path: &Path) -> Result<String, StoreError> {
    let text = path.to_str().ok_or_else(|| {
        StoreError::Archive(format!(
            "the path {} is not valid UTF-8, which DuckDB cannot name; choose an archive folder \
             whose path is",
            path.display()
        ))
    })?;
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// A month's filter on `ts`: `[month, next month)`, as SQL with literal dates.
fn month_filter(month: NaiveDate) -> String {
    let next = month + Months::new(1);
    format!("ts >= TIMESTAMP '{month}' AND ts < TIMESTAMP '{next}'")
}

/// The first free name for `month` in `folder`: `YYYY-MM.parquet`, else `YYYY-MM.N.parquet`.
fn free_name(folder: &Path, month: NaiveDate) -> PathBuf {
    let label = month.format("%Y-%m");
    let mut path = folder.join(format!("{label}.parquet"));
    let mut part = 1;
    while path.exists() {
        path = folder.join(format!("{label}.{part}.parquet"));
        part += 1;
    }
    path
}

/// Flushes a file, or a folder's entries, to the disk.
fn sync(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
}

fn remove_quietly(path: &Path) {
    // Best effort: the caller is already reporting the failure that made the file useless.
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
thread_local! {
    /// Test hook: the next archive file leaves out one event, so verification must fail.
    pub(super) static DROP_ONE_EVENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the COPY's SELECT appends: nothing, except when a test damages the file.
fn tamper() -> &'static str {
    #[cfg(test)]
    if DROP_ONE_EVENT.get() {
        return " OFFSET 1";
    }
    ""
}

impl DuckStore {
    /// The ledger's own `events` table, fully qualified: unlike plain `events`, it never means
    /// the view [`DuckStore::include_archive`] creates.
    fn events_table(&self) -> Result<String, StoreError> {
        let database: String = self
            .conn
            .query_row("SELECT current_database()", [], |row| row.get(0))?;
        Ok(format!("\"{}\".main.events", database.replace('"', "\"\"")))
    }

    /// Fails when the store reads the archive: it is then for reading only.
    pub(super) fn ensure_writable(&self, what: &str) -> Result<(), StoreError> {
        match &self.archive {
            Some(dir) => Err(StoreError::Archive(format!(
                "cannot {what}: this store also reads the archive in {} and is for reading only; \
                 open the ledger again (without the archive) to write to it",
                dir.display()
            ))),
            None => Ok(()),
        }
    }

    fn tally(&self, from: &str, filter: &str) -> Result<Tally, StoreError> {
        let sums: String = TOKEN_COLUMNS
            .iter()
            .map(|column| format!("coalesce(sum({column}), 0)::HUGEINT, "))
            .collect();
        let statement_sql = format!(
            "SELECT count(*), {sums}coalesce(sum(hash(id)), 0)::HUGEINT, \
             coalesce(sum(hash(r)), 0)::HUGEINT FROM {from} r WHERE {filter}"
        );
        Ok(self.conn.query_row(&statement_sql, [], |row| {
            let mut tokens = [0; 6];
            for (i, slot) in tokens.iter_mut().enumerate() {
                *slot = row.get(i + 1)?;
            }
            Ok(Tally {
                events: row.get(0)?,
                tokens,
                ids: row.get(7)?,
                rows: row.get(8)?,
            })
        })?)
    }

    /// Moves every month (UTC) with events before `cutoff` (the first day of a month) to
    /// `<dir>/ledger/YYYY-MM.parquet` (or the next free `YYYY-MM.N.parquet` when the month was
    /// archived before), oldest first. Each file is written under a temporary name, read back
    /// and compared with the ledger (event count, the sum of every token column, the ids and
    /// the whole rows) before it takes its name and the month's events are deleted. On a
    /// mismatch the file is removed, the month's events stay and an error names the month;
    /// months archived before it stay archived. The ledger file does not shrink: DuckDB reuses
    /// the freed space for new events.
    pub fn archive_before(
        &mut self,
        cutoff: NaiveDate,
        dir: &Path,
    ) -> Result<Vec<MonthArchive>, StoreError> {
        self.ensure_writable("archive")?;
        if cutoff.day() != 1 {
            return Err(StoreError::Archive(format!(
                "the cutoff {cutoff} is not the first day of a month; only whole months are \
                 archived, pass {}",
                cutoff.with_day(1).unwrap_or(cutoff)
            )));
        }
        let table = self.events_table()?;
        let mut statement = self.conn.prepare(&format!(
            "SELECT DISTINCT CAST(date_trunc('month', ts) AS DATE) AS month FROM {table} \
             WHERE ts < TIMESTAMP '{cutoff}' ORDER BY month"
        ))?;
        let months = statement
            .query_map([], |row| row.get::<_, NaiveDate>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(statement);
        if months.is_empty() {
            return Ok(Vec::new());
        }
        let folder = ledger_dir(dir);
        std::fs::create_dir_all(&folder).map_err(|source| StoreError::Io {
            path: folder.display().to_string(),
            source,
        })?;
        let existing = archive_files(dir)?;
        let mut archived = Vec::with_capacity(months.len());
        for month in months {
            archived.push(self.archive_month(&table, month, &folder, &existing)?);
        }
        self.compact_run_totals()?;
        self.checkpoint()?;
        Ok(archived)
    }

    fn archive_month(
        &mut self,
        table: &str,
        month: NaiveDate,
        folder: &Path,
        existing: &[(NaiveDate, PathBuf)],
    ) -> Result<MonthArchive, StoreError> {
        let label = month.format("%Y-%m").to_string();
        let filter = month_filter(month);
        // A run cut between renaming a file and deleting its events left a file that holds
        // exactly these events: delete them, do not archive them a second time.
        let count = |n: i128| u64::try_from(n).unwrap_or(u64::MAX);
        for (_, path) in existing.iter().filter(|(of, _)| *of == month) {
            let ledger = self.tally(table, &filter)?;
            let file = self.tally(&format!("read_parquet({})", sql_path(path)?), "true")?;
            if differences(&ledger, &file).is_empty() {
                self.delete_month(table, month, &filter, ledger.events)?;
                return Ok(MonthArchive {
                    month,
                    path: path.clone(),
                    events: count(i128::from(ledger.events)),
                    input_tokens: count(ledger.tokens[0]),
                    output_tokens: count(ledger.tokens[4]),
                });
            }
        }
        let path = free_name(folder, month);
        let mut temporary = path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        remove_quietly(&temporary);
        let quoted = sql_path(&temporary)?;
        let written = self
            .conn
            .execute_batch(&format!(
                "COPY (SELECT * FROM {table} WHERE {filter} ORDER BY ts, id{tamper}) TO {quoted} \
                 (FORMAT parquet, COMPRESSION zstd)",
                tamper = tamper()
            ))
            .map_err(StoreError::from)
            .and_then(|()| {
                let ledger = self.tally(table, &filter)?;
                let file = self.tally(&format!("read_parquet({quoted})"), "true")?;
                Ok((ledger, differences(&ledger, &file)))
            });
        let ledger = match written {
            Ok((ledger, differ)) if differ.is_empty() => ledger,
            Ok((_, differ)) => {
                remove_quietly(&temporary);
                return Err(StoreError::Archive(format!(
                    "{label}: the file written for it does not match the ledger ({}); it was \
                     removed and the month's events stay in the ledger. Check the disk under {} \
                     and archive again",
                    differ.join("; "),
                    folder.display()
                )));
            }
            Err(error) => {
                remove_quietly(&temporary);
                return Err(error);
            }
        };
        sync(&temporary)?;
        std::fs::rename(&temporary, &path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        // The new name must be on the disk before the events leave the ledger.
        #[cfg(unix)]
        sync(folder)?;
        self.delete_month(table, month, &filter, ledger.events)?;
        Ok(MonthArchive {
            month,
            path,
            events: count(i128::from(ledger.events)),
            input_tokens: count(ledger.tokens[0]),
            output_tokens: count(ledger.tokens[4]),
        })
    }

    /// Deletes a month's events in one transaction, which must remove exactly `expected`.
    fn delete_month(
        &mut self,
        table: &str,
        month: NaiveDate,
        filter: &str,
        expected: i64,
    ) -> Result<(), StoreError> {
        let label = month.format("%Y-%m");
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let deleted = self
            .conn
            .execute(&format!("DELETE FROM {table} WHERE {filter}"), [])
            .and_then(|n| {
                // The roll-ups' hours and days lie inside months, so the same filter takes
                // their rows, and the priced user days'.
                let tables = super::Level::ALL
                    .map(super::Level::table)
                    .into_iter()
                    .chain([super::user_day_costs::TABLE]);
                for table in tables {
                    self.conn
                        .execute(&format!("DELETE FROM {table} WHERE {filter}"), [])?;
                }
                Ok(n)
            })
            .and_then(|n| {
                // The runs with calls in the month are computed again without them.
                self.freshen_runs_before(month + Months::new(1))?;
                Ok(n)
            });
        match deleted {
            Ok(n) if i64::try_from(n).ok() == Some(expected) => {
                self.conn.execute_batch("COMMIT")?;
                // The derived tables lost the same calls: they still count every event.
                self.mark_complete()
            }
            Ok(n) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(StoreError::Archive(format!(
                    "{label}: deleting the archived events would remove {n} events, not the \
                     {expected} archived; nothing was deleted. Archive again (the month gets a \
                     further part file)"
                )))
            }
            Err(error) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(error.into())
            }
        }
    }

    /// Makes every read of this store (queries, reports, exports, sessions, loops, unpriced
    /// models, the event count) see the archive files under `dir` as well as the ledger's own
    /// events: a temporary view named `events`, which DuckDB resolves before the table, unions
    /// the table with the files present now. No archive files: just the ledger. Models seen
    /// only in the archive are added to the model map so they are priced (or reported as
    /// unpriced). Afterwards the store is for reading: appending and archiving fail.
    pub fn include_archive(&mut self, dir: &Path) -> Result<(), StoreError> {
        let table = self.events_table()?;
        let files = archive_files(dir)?
            .iter()
            .map(|(_, path)| sql_path(path))
            .collect::<Result<Vec<_>, _>>()?;
        let view = if files.is_empty() {
            format!("SELECT * FROM {table}")
        } else {
            let archive = format!("read_parquet([{}], union_by_name = true)", files.join(", "));
            let mut statement = self
                .conn
                .prepare(&format!("SELECT DISTINCT provider, model FROM {archive}"))?;
            let models = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<(String, String)>, _>>()?;
            drop(statement);
            let new_models: Vec<_> = models
                .into_iter()
                .filter(|pair| !self.known_models.contains(pair))
                .collect();
            if !new_models.is_empty() {
                self.map_models(new_models)?;
            }
            format!("SELECT * FROM {table} UNION ALL BY NAME SELECT * FROM {archive}")
        };
        self.conn
            .execute_batch(&format!("CREATE OR REPLACE TEMP VIEW events AS {view}"))?;
        self.archive = Some(dir.to_path_buf());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
