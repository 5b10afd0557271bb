//! Retention on ClickHouse: a month leaves as a Parquet file, the same file the embedded
//! ledger's archive holds (so `--include-archive` and every DuckDB tool read it), and only
//! then as a dropped partition.
//!
//! The month's events are read back as usage events into a scratch DuckDB file beside the
//! archive, which writes and checks the Parquet file as the embedded ledger does; the file's
//! count and token sums are then compared with ClickHouse's own (`FINAL`, so a duplicate not
//! yet merged away counts once) before `DROP PARTITION`. On any mismatch the file goes, the
//! partition stays and the error names the month.

use std::path::{Path, PathBuf};

use burnrate_model::UsageEvent;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use super::{ClickHouse, schema};
use crate::duck::{DuckStore, MonthArchive};
use crate::error::StoreError;

impl ClickHouse {
    /// Calls `each` with the events in `[since, until)`, a day at a time, oldest first.
    /// Returns how many there were.
    pub fn read_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        mut each: impl FnMut(Vec<UsageEvent>) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut start = since;
        while start < until {
            let end = (start + chrono::Duration::days(1)).min(until);
            let text = self.execute(&format!(
                "SELECT {columns} FROM {db}.events WHERE ts >= toDateTime({from}) \
                 AND ts <= toDateTime({to}) AND ts_us >= {since_us} AND ts_us < {until_us} \
                 ORDER BY ts_us, id FORMAT JSONEachRow",
                columns = schema::STORED_COLUMNS,
                db = self.database,
                from = start.timestamp(),
                to = end.timestamp(),
                since_us = start.timestamp_micros(),
                until_us = end.timestamp_micros(),
            ))?;
            let events = text
                .lines()
                .map(stored_event)
                .collect::<Result<Vec<_>, _>>()?;
            count += events.len() as u64;
            if !events.is_empty() {
                each(events)?;
            }
            start = end;
        }
        Ok(count)
    }

    /// The calls in `[since, until)` whose `agent_run_id` or `parent_run_id` is in `runs`,
    /// oldest first.
    pub fn run_events(
        &self,
        runs: &[String],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let set = runs
            .iter()
            .map(|run| super::sql::quote(run))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self.execute(&format!(
            "SELECT {columns} FROM {db}.events FINAL WHERE ts >= toDateTime({from}) \
             AND ts <= toDateTime({to}) AND ts_us >= {since_us} AND ts_us < {until_us} \
             AND (agent_run_id IN ({set}) OR parent_run_id IN ({set})) \
             ORDER BY ts_us, id FORMAT JSONEachRow",
            columns = schema::STORED_COLUMNS,
            db = self.database,
            from = since.timestamp(),
            to = until.timestamp(),
            since_us = since.timestamp_micros(),
            until_us = until.timestamp_micros(),
        ))?;
        text.lines().map(stored_event).collect()
    }

    /// Moves every month before `cutoff` (the first day of a month) to
    /// `<dir>/ledger/YYYY-MM.parquet` (or the next free `YYYY-MM.N.parquet`), oldest first,
    /// each checked before its partition is dropped.
    pub fn archive_before(
        &mut self,
        cutoff: NaiveDate,
        dir: &Path,
    ) -> Result<Vec<MonthArchive>, StoreError> {
        if cutoff.day() != 1 {
            return Err(StoreError::Archive(format!(
                "the cutoff {cutoff} is not the first day of a month; only whole months are \
                 archived, pass {}",
                cutoff.with_day(1).unwrap_or(cutoff)
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut archived = Vec::new();
        for month in self.months()?.into_iter().filter(|m| *m < cutoff) {
            let scratch = dir.join(format!(".clickhouse-{}.duckdb", month.format("%Y-%m")));
            remove_scratch(&scratch);
            let result = self.archive_month(month, dir, &scratch);
            remove_scratch(&scratch);
            archived.push(result?);
        }
        Ok(archived)
    }

    fn archive_month(
        &self,
        month: NaiveDate,
        dir: &Path,
        scratch: &Path,
    ) -> Result<MonthArchive, StoreError> {
        let next = month + Months::new(1);
        let at = |day: NaiveDate| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let mut duck = DuckStore::open(scratch)?;
        self.read_events(at(month), at(next), |events| duck.append(&events).map(drop))?;
        let written = duck.archive_before(next, dir)?;
        drop(duck);
        let rows = self.select(
            &format!(
                "SELECT count(), sum(input_tokens), sum(output_tokens) FROM {}.events FINAL \
                 WHERE toYYYYMM(ts) = {}",
                self.database,
                month.format("%Y%m")
            ),
            3,
        )?;
        let stored: Vec<u64> = rows
            .first()
            .map(|row| {
                row.iter()
                    .map(|cell| cell.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        match written.as_slice() {
            [file]
                if stored == [file.events, file.input_tokens, file.output_tokens]
                    && file.month == month =>
            {
                self.drop_month(month)?;
                Ok(file.clone())
            }
            files => {
                for file in files {
                    let _ = std::fs::remove_file(&file.path);
                }
                Err(StoreError::Archive(format!(
                    "{}: ClickHouse holds {stored:?} (events, input, output tokens) but the \
                     archive read back {:?}; the month stays in ClickHouse",
                    month.format("%Y-%m"),
                    files
                        .iter()
                        .map(|f| (f.events, f.input_tokens, f.output_tokens))
                        .collect::<Vec<_>>()
                )))
            }
        }
    }
}

/// Removes a scratch DuckDB file and its write-ahead log, if there.
fn remove_scratch(path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut wal: PathBuf = path.to_path_buf();
    wal.as_mut_os_string().push(".wal");
    let _ = std::fs::remove_file(wal);
}

/// An event from one `JSONEachRow` line of [`schema::STORED_COLUMNS`].
fn stored_event(line: &str) -> Result<UsageEvent, StoreError> {
    serde_json::from_str::<schema::StoredRow>(line)
        .and_then(schema::StoredRow::into_event)
        .map_err(|error| StoreError::Corrupt(format!("a stored event does not read back: {error}")))
}
