//! The embedded store: one DuckDB file, created on first use.
//!
//! Tables: `events` (one row per call, counters raw), `price_versions` (the whole price book
//! with its history), `model_map` (each provider + model seen, resolved to a price key),
//! `price_bands` (per-token prices in femtodollars of the keys in use, per tier, input band
//! and validity period: what queries join to), `rollup`, `rollup_day` and `rollup_user_day`
//! (the events summed per hour and per day, kept at append: see [`rollup`]), `run_totals`
//! and `runs_fresh` (each agent run's cost and use: see [`runs`]), `user_day_costs` (the
//! user-day roll-up priced per day, tenant and user: see [`user_day_costs`]) and `meta`.

mod complete;
mod export;
mod loops;
mod sessions;
pub use loops::ToolRepeat;
pub use sessions::SessionGrowth;
mod prices;
pub use prices::UnpricedModel;
mod retention;
pub use retention::{MonthArchive, expire_archives};
mod rollup;
mod runs;
mod user_day_costs;
pub use rollup::{
    Level, USER_MISSING, events_as_rollup_sql, kept_label_column, label_expr, row_values_sql,
    sum_column_names,
};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::array::{BooleanArray, FixedSizeBinaryBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use burnrate_model::{PriceBook, UsageEvent};
use chrono::DurationRound;
use duckdb::{Connection, OptionalExt, params_from_iter};
use uuid::Uuid;

use crate::batch::{EVENT_COLUMNS, event_schema, events_to_batch, uuid_field};
use crate::error::StoreError;
use crate::query::result::QueryResult;
use crate::query::spec::QuerySpec;
use crate::query::sql;

/// Events ready to append: an Arrow batch plus what deduplication and pricing need.
pub struct EventBatch {
    batch: RecordBatch,
    ids: Vec<Uuid>,
    models: HashSet<(String, String)>,
    runs: HashSet<String>,
    groups: rollup::Groups,
}

impl EventBatch {
    /// Converts events (each with an id) into a batch. Pure: safe to run on worker threads.
    pub fn from_events(events: &[UsageEvent]) -> Result<EventBatch, StoreError> {
        let batch = events_to_batch(&event_schema(), events)?;
        let ids = events.iter().filter_map(|e| e.id).collect();
        let models = events
            .iter()
            .map(|e| (e.provider.clone(), e.model.clone()))
            .collect();
        let runs = events
            .iter()
            .filter_map(|e| e.agent_run_id.clone())
            .collect();
        let groups = rollup::Groups::of(events);
        Ok(EventBatch {
            batch,
            ids,
            models,
            runs,
            groups,
        })
    }

    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Events written.
    pub inserted: u64,
    /// Events skipped because their id was already in the ledger (or earlier in the batch).
    pub duplicates: u64,
}

/// The DuckDB ledger.
pub struct DuckStore {
    conn: Connection,
    book: PriceBook,
    thresholds: Vec<u64>,
    known_models: HashSet<(String, String)>,
    /// The archive folder reads also see, once [`DuckStore::include_archive`] was called.
    archive: Option<PathBuf>,
    /// The thresholds the roll-up's input classes count.
    rollup_universe: Vec<u64>,
    /// False when the roll-up may not match the events: queries then read the events.
    rollup_valid: bool,
    /// Whether queries may read the roll-up (see [`DuckStore::set_rollup_reads`]).
    rollup_reads: bool,
    /// Per [`Level`], the rows appended since its last compaction that count towards the
    /// next one (for the hourly roll-up only small appends' rows).
    pending: [rollup::Pending; Level::ALL.len()],
    /// Per daily [`Level`], its rows after its last compaction.
    rows_compacted: [usize; Level::ALL.len()],
    /// The state of the run totals.
    run_totals: runs::RunTotals,
    /// Whether `user_day_costs` is the user-day roll-up priced with the prices now (see
    /// [`user_day_costs`]).
    user_day_costs_valid: bool,
}

impl DuckStore {
    /// Opens (creating when absent) the ledger file at `path`.
    pub fn open(path: &Path) -> Result<DuckStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|error| StoreError::open(path, &error))?;
        DuckStore::init(conn)
    }

    /// An in-memory ledger, for tests.
    pub fn open_in_memory() -> Result<DuckStore, StoreError> {
        DuckStore::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<DuckStore, StoreError> {
        let columns: Vec<String> = EVENT_COLUMNS
            .iter()
            .map(|(name, sql)| format!("{name} {sql}"))
            .collect();
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS events ({});
             CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
             CREATE TABLE IF NOT EXISTS price_versions (price_key VARCHAR NOT NULL,
                 effective_from DATE, source VARCHAR NOT NULL, provider VARCHAR, mode VARCHAR,
                 max_output_tokens BIGINT, slots VARCHAR NOT NULL);
             ALTER TABLE price_versions ADD COLUMN IF NOT EXISTS max_input_tokens BIGINT;
             CREATE TABLE IF NOT EXISTS model_map (provider VARCHAR NOT NULL,
                 model VARCHAR NOT NULL, price_key VARCHAR);
             CREATE TABLE IF NOT EXISTS price_bands (price_key VARCHAR NOT NULL,
                 tier VARCHAR NOT NULL, band INTEGER NOT NULL, valid_from DATE NOT NULL,
                 valid_to DATE NOT NULL, input HUGEINT NOT NULL, cache_read HUGEINT NOT NULL,
                 cache_write_5m HUGEINT NOT NULL, cache_write_1h HUGEINT NOT NULL,
                 output HUGEINT NOT NULL, reasoning HUGEINT NOT NULL);
             CREATE TEMP TABLE incoming_ids (id UUID NOT NULL);",
            columns.join(", "),
        ))?;
        let mut store = DuckStore {
            conn,
            book: PriceBook::default(),
            thresholds: Vec::new(),
            known_models: HashSet::new(),
            archive: None,
            rollup_universe: Vec::new(),
            rollup_valid: false,
            rollup_reads: true,
            pending: Default::default(),
            rows_compacted: Default::default(),
            run_totals: Default::default(),
            user_day_costs_valid: false,
        };
        let created = store
            .create_rollups()?
            .max(store.create_run_totals()?)
            .max(store.create_user_day_costs()?);
        store.load_prices()?;
        let complete = created == rollup::Created::None && store.marked_complete()?;
        store.check_rollup(complete)?;
        // Before the run totals, whose rebuild records the marker only when these are in use.
        store.check_user_day_costs(complete)?;
        store.check_run_totals(complete)?;
        if !complete {
            store.mark_complete()?;
        }
        Ok(store)
    }

    /// The price book the ledger prices with.
    pub fn prices(&self) -> &PriceBook {
        &self.book
    }

    /// Appends events (each must carry an id), skipping ids already in the ledger.
    pub fn append(&mut self, events: &[UsageEvent]) -> Result<AppendOutcome, StoreError> {
        self.append_batches(vec![EventBatch::from_events(events)?])
    }

    /// Appends events like [`DuckStore::append`] and says, event by event, whether it was
    /// new (false: its id was in the ledger already, or earlier in `events`).
    pub fn append_new(&mut self, events: &[UsageEvent]) -> Result<Vec<bool>, StoreError> {
        self.ensure_writable("append events")?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .append_deduplicated(vec![EventBatch::from_events(events)?])?
            .1)
    }

    /// Appends prepared batches, skipping ids already in the ledger and ids repeated among them
    /// (the first one wins). DuckDB's appender commits as it flushes; the append is not wrapped
    /// in an explicit transaction because DuckDB 2.0 fails large optimistic appends inside one
    /// ("Partially optimistically written data"). An interrupted import is completed by
    /// importing again: deduplication makes that safe.
    pub fn append_batches(
        &mut self,
        batches: Vec<EventBatch>,
    ) -> Result<AppendOutcome, StoreError> {
        self.ensure_writable("append events")?;
        if batches.iter().all(EventBatch::is_empty) {
            return Ok(AppendOutcome::default());
        }
        Ok(self.append_deduplicated(batches)?.0)
    }

    /// Appends the rows whose ids are new; returns the counts and, row by row in order,
    /// whether it was new.
    fn append_deduplicated(
        &mut self,
        batches: Vec<EventBatch>,
    ) -> Result<(AppendOutcome, Vec<bool>), StoreError> {
        let all_ids: Vec<Uuid> = batches.iter().flat_map(|b| b.ids.iter().copied()).collect();
        let existing = self.existing_ids(&all_ids)?;
        self.unmark_complete()?;
        let written = self.write_new(batches, &all_ids, &existing);
        if written.is_err() {
            // Part of the events may be in the table without their roll-up rows (an appender
            // flushes what it holds when it is dropped, and on its own when full): queries read
            // the events, and no completeness marker is recorded, until the next open rebuilds.
            self.rollup_valid = false;
        }
        let written = written?;
        self.mark_complete()?;
        Ok(written)
    }

    /// Writes the events of `batches` whose ids are not in `existing` (nor earlier in the
    /// batches), their roll-up rows and run totals; returns the counts and, row by row,
    /// whether it was new.
    fn write_new(
        &mut self,
        batches: Vec<EventBatch>,
        all_ids: &[Uuid],
        existing: &HashSet<Uuid>,
    ) -> Result<(AppendOutcome, Vec<bool>), StoreError> {
        // Before the calls are written, so a run whose total they change is always listed.
        let runs: HashSet<&str> = batches
            .iter()
            .flat_map(|b| b.runs.iter().map(String::as_str))
            .collect();
        self.note_fresh_runs(runs.into_iter())?;
        // Before the calls are written too, so what is priced as they are appended (the
        // priced user days) finds their models. A model mapped whose calls then fail to be
        // written only sits unused in the map.
        let new_models: Vec<(String, String)> = batches
            .iter()
            .flat_map(|b| b.models.iter())
            .filter(|pair| !self.known_models.contains(*pair))
            .collect::<HashSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        if !new_models.is_empty() {
            self.map_models(new_models.clone())?;
            self.user_day_costs_after_new_models(&new_models)?;
        }
        let mut seen = HashSet::with_capacity(all_ids.len());
        let mut fresh = Vec::with_capacity(all_ids.len());
        let mut rollup_parts = Vec::with_capacity(batches.len());
        let mut new_rows = Vec::with_capacity(batches.len());
        for batch in batches {
            let keep: BooleanArray = batch
                .ids
                .iter()
                .map(|id| {
                    let new = !existing.contains(id) && seen.insert(*id);
                    fresh.push(new);
                    Some(new)
                })
                .collect();
            let all = keep.true_count() == batch.ids.len();
            let rows = if all {
                batch.batch.clone()
            } else {
                filter_record_batch(&batch.batch, &keep)?
            };
            if rows.num_rows() > 0 {
                new_rows.push(rows);
            }
            rollup_parts.push((batch.batch, batch.groups, (!all).then_some(keep)));
        }
        let inserted = seen.len() as u64;
        // The events and the roll-up rows are appended at once, on two connections: each
        // append converts and compresses in its caller's thread, and they touch different
        // tables.
        let events_conn = self.conn.try_clone()?;
        let (events, rollup) = std::thread::scope(|scope| {
            let events = scope.spawn(move || append_events(&events_conn, new_rows));
            let rollup = self.append_rollup(rollup_parts, seen.len());
            (events.join(), rollup)
        });
        events.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        rollup?;
        if !new_models.is_empty() {
            self.runs_after_new_models(&new_models)?;
        }
        self.after_append_runs()?;
        Ok((
            AppendOutcome {
                inserted,
                duplicates: all_ids.len() as u64 - inserted,
            },
            fresh,
        ))
    }

    /// The ids of `ids` already in the ledger. The id range bounds the scan by DuckDB's
    /// per-row-group min/max statistics, so time-ordered (UUIDv7) ids touch few row groups.
    fn existing_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let (Some(min), Some(max)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(HashSet::new());
        };
        self.conn
            .execute_batch("CREATE OR REPLACE TEMP TABLE incoming_ids (id UUID NOT NULL)")?;
        let mut builder = FixedSizeBinaryBuilder::with_capacity(ids.len(), 16);
        for id in ids {
            builder.append_value(id.as_bytes())?;
        }
        let field = uuid_field("id");
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![field])),
            vec![std::sync::Arc::new(builder.finish())],
        )?;
        {
            let mut appender = self.conn.appender("incoming_ids")?;
            appender.append_record_batch(batch)?;
            appender.flush()?;
        }
        let mut statement = self.conn.prepare(
            "SELECT CAST(e.id AS VARCHAR) FROM events e SEMI JOIN incoming_ids i ON e.id = i.id \
             WHERE e.id BETWEEN CAST(? AS UUID) AND CAST(? AS UUID)",
        )?;
        let rows = statement.query_map([min.to_string(), max.to_string()], |row| {
            row.get::<_, String>(0)
        })?;
        let mut existing = HashSet::new();
        for row in rows {
            let text = row?;
            let id = Uuid::parse_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("stored id `{text}`: {e}")))?;
            existing.insert(id);
        }
        Ok(existing)
    }

    /// The value `meta` holds under `key`, if any.
    pub(super) fn meta_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Number of events in the ledger.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self.count_rows("events")? as u64)
    }

    /// Rows in `table` (or view).
    pub(super) fn count_rows(&self, table: &str) -> Result<usize, StoreError> {
        let count: i64 =
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get(0)
                })?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Runs a query spec.
    pub fn query(&self, spec: &QuerySpec) -> Result<QueryResult, StoreError> {
        spec.validate()?;
        let run_costs = self.run_costs_from_totals(spec)?;
        // With the runs' costs from the totals, the sums need no run ids.
        let rows = match run_costs {
            Some(_) => self.rows_reading(spec, false),
            None => self.rows_for(spec),
        };
        let rows = self.with_priced_days(spec, rows);
        let rendered = sql::render(spec, &self.thresholds, rows, run_costs.as_ref());
        let kinds = crate::query::result::column_kinds(spec);
        let result = self.run_sql(&rendered.sql, &rendered.params, rendered.columns, kinds);
        let mut result = match run_costs {
            Some(_) => self.end_run_split(result)?,
            None => result?,
        };
        self.annotate_unpriced(spec, &mut result)?;
        Ok(result)
    }

    /// Runs per cost bin for each value of `spec`'s first dimension, over the runs in its
    /// range and filters ([`crate::query::bins`]), binned in SQL.
    pub fn run_cost_bins(
        &self,
        spec: &QuerySpec,
    ) -> Result<Vec<crate::query::bins::RunCostBin>, StoreError> {
        let per_run = crate::query::bins::per_run_spec(spec);
        per_run.validate()?;
        let rendered = sql::render_run_bins(spec, &self.thresholds, self.rows_for(&per_run));
        let mut statement = self.conn.prepare(&rendered.sql)?;
        let bins = statement
            .query_map(params_from_iter(rendered.params.iter()), |row| {
                Ok(crate::query::bins::RunCostBin {
                    group: row.get(0)?,
                    bin: row.get(1)?,
                    runs: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(bins)
    }

    /// Where a query over `spec` reads its sums ([`DuckStore::rows_reading`]), reading run
    /// ids when a metric needs runs.
    pub(crate) fn rows_for(&self, spec: &QuerySpec) -> sql::Rows<'_> {
        self.rows_reading(spec, spec.metrics.iter().any(|m| m.needs_runs()))
    }

    /// Where a query over `spec` reads its sums: the roll-ups for the whole hours of the
    /// range when they can answer (they are current, the store does not read the archive,
    /// every label grouped or filtered by is one they keep, and the range holds a whole
    /// hour), else the events. A daily roll-up answers for the whole days among those hours
    /// when the query reads no run or call ids (`run_ids`), groups and filters only by its
    /// keys and buckets by days or longer: the first of [`Level::DAILY`] that can.
    pub(crate) fn rows_reading(&self, spec: &QuerySpec, run_ids: bool) -> sql::Rows<'_> {
        let dimensions = spec
            .group_by
            .iter()
            .chain(spec.filters.iter().map(|filter| &filter.dimension));
        // The hourly roll-up keeps every field and the kept labels.
        let labels_kept = dimensions
            .clone()
            .all(|dimension| Level::Hour.keeps(dimension));
        let bands_known = self
            .thresholds
            .iter()
            .all(|t| self.rollup_universe.contains(t));
        if !self.rollup_reads
            || !self.rollup_valid
            || self.archive.is_some()
            || !labels_kept
            || !bands_known
        {
            return sql::Rows::Events;
        }
        let hour = chrono::TimeDelta::hours(1);
        let Some((from, to)) = whole_units(spec, hour) else {
            return sql::Rows::Events;
        };
        let daily = Level::DAILY
            .into_iter()
            .find(|level| dimensions.clone().all(|dimension| level.keeps(dimension)))
            .filter(|_| !run_ids && spec.bucket != Some(crate::query::spec::Bucket::Hour));
        let days = daily.and_then(|level| {
            let (start, end) = whole_units(spec, chrono::TimeDelta::days(1))?;
            Some(sql::Days {
                table: level.table(),
                start,
                end,
                priced: None,
            })
        });
        sql::Rows::Rollup {
            universe: &self.rollup_universe,
            from,
            to,
            days,
        }
    }

    /// Turns reading the roll-up on (the default) or off; with it off every query reads the
    /// events, which answers the same (tests and benchmarks compare the two).
    pub fn set_rollup_reads(&mut self, on: bool) {
        self.rollup_reads = on;
    }

    /// Adds the count of unpriced calls in the spec's range, with a warning when there are any.
    pub(crate) fn annotate_unpriced(
        &self,
        spec: &QuerySpec,
        result: &mut QueryResult,
    ) -> Result<(), StoreError> {
        result.note_unpriced(self.unpriced_in(spec)?);
        Ok(())
    }

    /// Runs SQL whose output columns are `columns`, typing the cells by `kinds` (text is
    /// parsed, numbers taken as they are: [`QueryResult::push_batches`]).
    pub(crate) fn run_sql(
        &self,
        statement_sql: &str,
        params: &[String],
        columns: Vec<String>,
        kinds: Vec<crate::query::result::ColumnKind>,
    ) -> Result<QueryResult, StoreError> {
        let mut statement = self.conn.prepare(statement_sql)?;
        /// Batches converted together: enough for every core, few enough that a large
        /// result is not held twice over.
        const WINDOW: usize = 32;
        let mut result = QueryResult::new(columns, kinds);
        let mut batches = Vec::with_capacity(WINDOW);
        for batch in statement.query_arrow(params_from_iter(params.iter()))? {
            batches.push(batch);
            if batches.len() == WINDOW {
                result.push_batches(&batches)?;
                batches.clear();
            }
        }
        result.push_batches(&batches)?;
        Ok(result)
    }

    fn unpriced_in(&self, spec: &QuerySpec) -> Result<crate::query::result::Unpriced, StoreError> {
        // `model_map` holds what the book resolves each model seen to: no scan is needed
        // when it resolves them all.
        if self
            .known_models
            .iter()
            .all(|(provider, model)| self.book.resolve(provider, model).is_some())
        {
            return Ok(crate::query::result::Unpriced::default());
        }
        let mut params = Vec::new();
        // The count needs no run ids, groups or buckets, whatever the spec's, so it reads the
        // smallest roll-up its filters allow.
        let mut total = spec.clone();
        total.group_by.clear();
        total.bucket = None;
        let parts = self
            .rows_reading(&total, false)
            .scan(&total, &mut params, |rollup| {
                let requests = if rollup { "sum(requests)" } else { "count(*)" };
                (
                    format!(
                        "provider, model, {requests} AS requests, \
                         sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens"
                    ),
                    " AND (provider, model) IN (SELECT (provider, model) FROM model_map \
                     WHERE price_key IS NULL) GROUP BY provider, model"
                        .to_owned(),
                )
            });
        // A model whose calls in the range used no tokens (refused before reaching a
        // provider: a malformed body, a model no provider serves) costs nothing with or
        // without a price, so it is not what the warning is about.
        let statement_sql = format!(
            "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT), coalesce(sum(input_tokens), 0), \
             coalesce(sum(output_tokens), 0) FROM (SELECT sum(requests) AS requests, \
             sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens \
             FROM ({parts}) GROUP BY provider, model \
             HAVING sum(input_tokens) + sum(output_tokens) > 0)"
        );
        let mut statement = self.conn.prepare(&statement_sql)?;
        let (requests, input_tokens, output_tokens) =
            statement.query_row(params_from_iter(params.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i128>(1)?,
                    row.get::<_, i128>(2)?,
                ))
            })?;
        Ok(crate::query::result::Unpriced {
            requests: u64::try_from(requests).unwrap_or(0),
            input_tokens: u64::try_from(input_tokens).unwrap_or(u64::MAX),
            output_tokens: u64::try_from(output_tokens).unwrap_or(u64::MAX),
        })
    }

    /// Writes everything to the file and compacts it.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("CHECKPOINT")?;
        Ok(())
    }

    /// Sets how many threads DuckDB runs each statement on (by default, one per core). A
    /// bulk import that parses on every core and appends on threads of its own sets 1:
    /// DuckDB's idle workers would otherwise spin waiting for tasks on the cores the parser
    /// needs.
    pub fn set_threads(&self, threads: usize) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!("SET threads = {}", threads.max(1)))?;
        Ok(())
    }

    /// The price book's input-size thresholds for the models in use.
    pub(crate) fn thresholds(&self) -> &[u64] {
        &self.thresholds
    }
}

/// The whole `unit`s (hours or days, UTC) within the spec's range, `None` when it holds
/// none.
fn whole_units(
    spec: &QuerySpec,
    unit: chrono::TimeDelta,
) -> Option<(chrono::NaiveDateTime, chrono::NaiveDateTime)> {
    let floor = |t: chrono::NaiveDateTime| t.duration_trunc(unit).unwrap_or(t);
    let since = spec.since.naive_utc();
    let from = if floor(since) == since {
        since
    } else {
        floor(since) + unit
    };
    let to = floor(spec.until.naive_utc());
    (from < to).then_some((from, to))
}

/// Appends the rows to `events` through DuckDB's appender on `conn`.
fn append_events(conn: &Connection, batches: Vec<RecordBatch>) -> Result<(), StoreError> {
    let mut appender = conn.appender("events")?;
    for rows in batches {
        appender.append_record_batch(rows)?;
    }
    appender.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
