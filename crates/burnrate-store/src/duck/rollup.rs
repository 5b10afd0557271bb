//! The hourly roll-up: `events` summed per hour and every dimension, kept at append, so
//! queries over whole hours read a table several times smaller than the events.
//!
//! A roll-up row holds the hour (`ts`), every dimension column of the event (so any filter
//! or group-by on a dimension can be answered), three derived keys (`call_id`: the event id
//! of a call outside any agent run that reached an outcome, which counts as its own run;
//! `input_class`: how many of the whole price book's input-size thresholds the call's input
//! exceeds, from which any query's price band follows; `missing`: the OTLP
//! `burnrate.missing` label), and the sums queries need. Cost is linear in the token sums,
//! so pricing the sums per (model, tier, band, day) is exact.
//!
//! The roll-up is kept consistent with `events`: every append adds the roll-up rows of the
//! rows it added, retention deletes both in one transaction, and opening a ledger whose
//! roll-up does not count every event (a crash between the two appends, a ledger written by
//! an older burnrate) or was built for other thresholds rebuilds it from the events.

use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryBuilder, Int64Array, Int64Builder,
    StringBuilder, TimestampMicrosecondArray, UInt8Array, UInt32Array,
};
use arrow::compute::take;
use arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, UInt32Type,
};
use arrow::record_batch::RecordBatch;
use burnrate_model::UsageEvent;
use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::DuckStore;
use super::retention::TOKEN_COLUMNS;
use crate::batch::{EVENT_COLUMNS, event_schema, texts_before_depth, uuid_field};
use crate::error::StoreError;

/// The event columns a roll-up row keeps as they are: every dimension, plus
/// `outcome_success` (so successes are a sum).
pub const KEY_COLUMNS: [&str; 22] = [
    "source",
    "provider",
    "model",
    "requested_model",
    "operation",
    "service_tier",
    "tenant_id",
    "user_id",
    "feature",
    "task_id",
    "route",
    "agent_run_id",
    "parent_run_id",
    "agent_name",
    "span_depth",
    "session_id",
    "deployment",
    "prompt_version",
    "effort",
    "status",
    "outcome_name",
    "outcome_success",
];

/// The sums beyond the token counts, summed from the event columns of the same name
/// (`layer_*` stay NULL when no call of the row had a layer split, as `sum` over the events
/// gives).
const OTHER_SUMS: [&str; 4] = ["tool_calls", "layer_prompt", "layer_tool", "layer_memory"];

/// Every column the roll-up sums as it is: the token counts, then [`OTHER_SUMS`].
fn summed_columns() -> impl Iterator<Item = &'static str> {
    TOKEN_COLUMNS.into_iter().chain(OTHER_SUMS)
}

/// Rows of the roll-up appended by small appends (the gateway's flushes) before they are
/// merged into one row per key.
const COMPACT_AFTER_ROWS: usize = 100_000;
/// An append smaller than this counts as small (an import's appends are already summed).
const SMALL_APPEND: usize = 10_000;

const META_UNIVERSE: &str = "rollup_thresholds";

const HOUR_MICROS: i64 = 3_600_000_000;

fn sql_type(column: &str) -> &'static str {
    EVENT_COLUMNS
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, sql)| sql.trim_end_matches(" NOT NULL"))
        .unwrap_or("VARCHAR")
}

/// The `CREATE TABLE` statement of the roll-up.
pub(super) fn create_table_sql() -> String {
    let keys: Vec<String> = KEY_COLUMNS
        .iter()
        .map(|name| format!("{name} {}", sql_type(name)))
        .collect();
    let sums: Vec<String> = summed_columns()
        .map(|name| {
            let null = if name.starts_with("layer_") {
                ""
            } else {
                " NOT NULL"
            };
            format!("{name} BIGINT{null}")
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS rollup (ts TIMESTAMP NOT NULL, {}, call_id UUID, \
         input_class UTINYINT NOT NULL, missing VARCHAR, requests BIGINT NOT NULL, \
         errors BIGINT NOT NULL, {}, layered BIGINT NOT NULL, successes BIGINT NOT NULL)",
        keys.join(", "),
        sums.join(", ")
    )
}

/// The Arrow schema of the roll-up table, column for column.
fn schema() -> SchemaRef {
    let events = event_schema();
    let mut fields = vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Microsecond, None),
        false,
    )];
    for name in KEY_COLUMNS {
        if let Ok(field) = events.field_with_name(name) {
            fields.push(field.clone().with_nullable(true));
        }
    }
    fields.push(uuid_field("call_id").with_nullable(true));
    fields.push(Field::new("input_class", DataType::UInt8, false));
    fields.push(Field::new("missing", DataType::Utf8, true));
    fields.push(Field::new("requests", DataType::Int64, false));
    fields.push(Field::new("errors", DataType::Int64, false));
    for name in summed_columns() {
        fields.push(Field::new(
            name,
            DataType::Int64,
            name.starts_with("layer_"),
        ));
    }
    fields.push(Field::new("layered", DataType::Int64, false));
    fields.push(Field::new("successes", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// SQL for the input class of an `events` row under `universe` (ascending thresholds): its
/// band under the whole book's thresholds.
pub fn input_class_expr(universe: &[u64]) -> String {
    format!(
        "CAST({} AS UTINYINT)",
        crate::query::sql::band_expr(universe)
    )
}

/// SQL for the `call_id` of an `events` row.
pub const CALL_ID_EXPR: &str =
    "CASE WHEN agent_run_id IS NULL AND outcome_name IS NOT NULL THEN id END";

/// SQL for the `missing` key of an `events` row.
pub const MISSING_EXPR: &str = "json_extract_string(labels, '$.\"burnrate.missing\"')";

fn class_of(input_tokens: i64, universe: &[u64]) -> u8 {
    let input = u64::try_from(input_tokens).unwrap_or(0);
    let exceeded = universe.iter().take_while(|t| input > **t).count();
    u8::try_from(exceeded).unwrap_or(u8::MAX)
}

/// A roll-up key of one event, borrowing its text.
#[derive(PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    hour: i64,
    texts: [Option<&'a str>; 14],
    texts_after_depth: [Option<&'a str>; 5],
    span_depth: Option<u32>,
    status: &'static str,
    outcome_success: Option<bool>,
    call_id: Option<Uuid>,
    missing: Option<&'a str>,
}

impl<'a> KeyRef<'a> {
    fn of(event: &'a UsageEvent) -> KeyRef<'a> {
        let outcome = event.outcome.as_ref();
        KeyRef {
            hour: event.ts.timestamp_micros().div_euclid(HOUR_MICROS),
            texts: texts_before_depth(event),
            texts_after_depth: [
                event.session_id.as_deref(),
                event.deployment.as_deref(),
                event.prompt_version.as_deref(),
                event.effort.as_deref(),
                outcome.map(|o| o.name.as_str()),
            ],
            span_depth: event.span_depth,
            status: event.status.as_str(),
            outcome_success: outcome.map(|o| o.success),
            call_id: event
                .id
                .filter(|_| event.agent_run_id.is_none() && outcome.is_some()),
            missing: event.labels.get("burnrate.missing").map(String::as_str),
        }
    }
}

/// The roll-up groups of a batch of events, found on the worker thread that builds the
/// batch: each row's group, and per group its first row, `call_id` and `missing` key. The
/// input class, which depends on the ledger's price book, is added at append.
#[derive(Debug, Default)]
pub struct Groups {
    row_group: Vec<u32>,
    first_row: Vec<u32>,
    call_id: Vec<Option<Uuid>>,
    missing: Vec<Option<String>>,
}

impl Groups {
    /// Groups `events` by their roll-up key (without the input class).
    pub fn of(events: &[UsageEvent]) -> Groups {
        let mut index: FxHashMap<KeyRef<'_>, u32> = FxHashMap::default();
        let mut groups = Groups {
            row_group: Vec::with_capacity(events.len()),
            ..Groups::default()
        };
        for (row, event) in events.iter().enumerate() {
            let key = KeyRef::of(event);
            let next = u32::try_from(groups.first_row.len()).unwrap_or(u32::MAX);
            let group = *index.entry(key).or_insert_with_key(|key| {
                groups
                    .first_row
                    .push(u32::try_from(row).unwrap_or(u32::MAX));
                groups.call_id.push(key.call_id);
                groups.missing.push(key.missing.map(str::to_owned));
                next
            });
            groups.row_group.push(group);
        }
        groups
    }
}

/// One roll-up row being summed: its group, input class and sums.
#[derive(Default)]
struct Slot {
    group: u32,
    class: u8,
    requests: i64,
    tokens: [i64; 7],
    layers: [Option<i64>; 3],
    layered: i64,
}

/// The roll-up rows of the rows of `batch` that `keep` keeps (all when `None`).
pub(super) fn rows(
    batch: &RecordBatch,
    groups: &Groups,
    keep: Option<&BooleanArray>,
    universe: &[u64],
) -> Result<Option<RecordBatch>, StoreError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| StoreError::Corrupt(format!("event batch without `{name}`")))
    };
    let int64 = |name: &str| column(name).map(|c| c.as_primitive::<Int64Type>().clone());
    let counts = [
        int64("input_tokens")?,
        int64("cache_read_tokens")?,
        int64("cache_write_tokens")?,
        int64("cache_write_1h_tokens")?,
        int64("output_tokens")?,
        int64("reasoning_tokens")?,
    ];
    let tool_calls = column("tool_calls")?.as_primitive::<UInt32Type>().clone();
    let layers = [
        int64("layer_prompt")?,
        int64("layer_tool")?,
        int64("layer_memory")?,
    ];
    let mut index: FxHashMap<(u32, u8), usize> = FxHashMap::default();
    let mut slots: Vec<Slot> = Vec::new();
    for (row, &group) in groups.row_group.iter().enumerate() {
        if keep.is_some_and(|keep| !keep.value(row)) {
            continue;
        }
        let class = class_of(counts[0].value(row), universe);
        let slot = *index.entry((group, class)).or_insert_with(|| {
            slots.push(Slot {
                group,
                class,
                ..Slot::default()
            });
            slots.len() - 1
        });
        let slot = &mut slots[slot];
        slot.requests += 1;
        for (sum, count) in slot.tokens.iter_mut().zip(&counts) {
            *sum += count.value(row);
        }
        slot.tokens[6] += i64::from(tool_calls.value(row));
        for (sum, layer) in slot.layers.iter_mut().zip(&layers) {
            if layer.is_valid(row) {
                *sum = Some(sum.unwrap_or(0) + layer.value(row));
            }
        }
        slot.layered += i64::from(layers[0].is_valid(row));
    }
    if slots.is_empty() {
        return Ok(None);
    }

    let first_rows = UInt32Array::from_iter_values(
        slots
            .iter()
            .map(|slot| groups.first_row[slot.group as usize]),
    );
    let ts = column("ts")?
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    let hours = TimestampMicrosecondArray::from_iter_values(
        first_rows
            .values()
            .iter()
            .map(|&row| ts.value(row as usize).div_euclid(HOUR_MICROS) * HOUR_MICROS),
    );
    let mut columns: Vec<ArrayRef> = vec![Arc::new(hours)];
    for name in KEY_COLUMNS {
        columns.push(take(column(name)?.as_ref(), &first_rows, None)?);
    }
    let mut call_ids = FixedSizeBinaryBuilder::with_capacity(slots.len(), 16);
    let mut missing = StringBuilder::new();
    for slot in &slots {
        match groups.call_id[slot.group as usize] {
            Some(id) => call_ids.append_value(id.as_bytes())?,
            None => call_ids.append_null(),
        }
        missing.append_option(groups.missing[slot.group as usize].as_deref());
    }
    columns.push(Arc::new(call_ids.finish()));
    columns.push(Arc::new(UInt8Array::from_iter_values(
        slots.iter().map(|slot| slot.class),
    )));
    columns.push(Arc::new(missing.finish()));
    let status = column("status")?.as_string::<i32>().clone();
    let success = column("outcome_success")?.as_boolean().clone();
    let mut requests = Int64Builder::with_capacity(slots.len());
    let mut errors = Int64Builder::with_capacity(slots.len());
    let mut successes = Int64Builder::with_capacity(slots.len());
    for (slot, &row) in slots.iter().zip(first_rows.values()) {
        let row = row as usize;
        requests.append_value(slot.requests);
        let error = status.value(row) == "error";
        errors.append_value(if error { slot.requests } else { 0 });
        let succeeded = success.is_valid(row) && success.value(row);
        successes.append_value(if succeeded { slot.requests } else { 0 });
    }
    columns.push(Arc::new(requests.finish()));
    columns.push(Arc::new(errors.finish()));
    for i in 0..7 {
        columns.push(Arc::new(Int64Array::from_iter_values(
            slots.iter().map(|slot| slot.tokens[i]),
        )));
    }
    for i in 0..3 {
        columns.push(Arc::new(Int64Array::from_iter(
            slots.iter().map(|slot| slot.layers[i]),
        )));
    }
    columns.push(Arc::new(Int64Array::from_iter_values(
        slots.iter().map(|slot| slot.layered),
    )));
    columns.push(Arc::new(successes.finish()));
    Ok(Some(RecordBatch::try_new(schema(), columns)?))
}

/// Each column the roll-up sums, in table order, with what one event adds to it.
fn contributions() -> impl Iterator<Item = (&'static str, String)> {
    [
        ("requests", "1".to_owned()),
        ("errors", "CAST(status = 'error' AS BIGINT)".to_owned()),
    ]
    .into_iter()
    .chain(summed_columns().map(|name| (name, format!("CAST({name} AS BIGINT)"))))
    .chain([
        (
            "layered",
            "CAST(layer_prompt IS NOT NULL AS BIGINT)".to_owned(),
        ),
        (
            "successes",
            "CAST(coalesce(outcome_success, false) AS BIGINT)".to_owned(),
        ),
    ])
}

/// The roll-up's sums as named SQL aggregates, in table order, over the `rollup` table
/// (`rollup`) or over `events` (`layer_*` stay NULL when no call had a layer split).
fn sums_sql(rollup: bool) -> String {
    let sums: Vec<String> = contributions()
        .map(|(name, event)| {
            let value = if rollup { name } else { event.as_str() };
            format!("sum({value}) AS {name}")
        })
        .collect();
    sums.join(", ")
}

/// What [`sums_sql`] sums, one row at a time: the roll-up's columns as they are (`rollup`),
/// or each event's contribution to them, under the same names.
pub fn row_values_sql(rollup: bool) -> String {
    let values: Vec<String> = contributions()
        .map(|(name, event)| {
            if rollup {
                name.to_owned()
            } else {
                format!("{event} AS {name}")
            }
        })
        .collect();
    values.join(", ")
}

impl DuckStore {
    /// The input-size thresholds of the whole price book: what the roll-up's input class
    /// counts.
    pub(super) fn universe(&self) -> Vec<u64> {
        crate::pricing::thresholds(&self.book, self.book.keys())
    }

    /// Rebuilds the roll-up when it does not count every event or was built for other
    /// thresholds.
    pub(super) fn check_rollup(&mut self) -> Result<(), StoreError> {
        let universe = self.universe();
        let recorded: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?",
                [META_UNIVERSE],
                |row| row.get(0),
            )
            .ok();
        let events: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))?;
        let counted: i64 = self.conn.query_row(
            "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM rollup",
            [],
            |row| row.get(0),
        )?;
        self.rollup_universe = universe;
        if recorded.as_deref() == Some(universe_text(&self.rollup_universe).as_str())
            && events == counted
        {
            self.rollup_valid = true;
            return Ok(());
        }
        self.rebuild_rollup()
    }

    /// Builds the roll-up again from the events, in one transaction.
    pub fn rebuild_rollup(&mut self) -> Result<(), StoreError> {
        self.ensure_writable("rebuild the roll-up")?;
        let universe = self.universe();
        let keys = KEY_COLUMNS.join(", ");
        let statement = format!(
            "DELETE FROM rollup; \
             INSERT INTO rollup SELECT date_trunc('hour', ts), {keys}, {CALL_ID_EXPR}, {class}, \
             {MISSING_EXPR}, {sums} FROM events GROUP BY ALL; \
             INSERT OR REPLACE INTO meta VALUES ('{META_UNIVERSE}', '{text}')",
            class = input_class_expr(&universe),
            sums = sums_sql(false),
            text = universe_text(&universe),
        );
        // No explicit transaction (DuckDB 2.0 can fail large optimistic writes inside one):
        // a rebuild cut short leaves a roll-up that does not count every event, which the
        // next open rebuilds.
        if let Err(error) = self.conn.execute_batch(&statement) {
            self.rollup_valid = false;
            return Err(error.into());
        }
        self.rollup_universe = universe;
        self.rollup_valid = true;
        self.small_rows = 0;
        self.dirty_from = None;
        Ok(())
    }

    /// Rebuilds the roll-up if the price book's thresholds changed since it was built.
    pub(super) fn rollup_after_price_change(&mut self) -> Result<(), StoreError> {
        if self.universe() != self.rollup_universe && self.archive.is_none() {
            self.rebuild_rollup()?;
        }
        Ok(())
    }

    /// Appends the roll-up rows of an append. On failure the roll-up is marked stale
    /// (queries read the events; the next open rebuilds it) and the error returned.
    pub(super) fn append_rollup(
        &mut self,
        parts: Vec<(RecordBatch, Groups, Option<BooleanArray>)>,
        appended: usize,
    ) -> Result<(), StoreError> {
        if !self.rollup_valid {
            return Ok(());
        }
        let result = self.try_append_rollup(parts, appended);
        if result.is_err() {
            self.rollup_valid = false;
        }
        result
    }

    fn try_append_rollup(
        &mut self,
        parts: Vec<(RecordBatch, Groups, Option<BooleanArray>)>,
        appended: usize,
    ) -> Result<(), StoreError> {
        let mut added = 0;
        let mut earliest: Option<i64> = None;
        {
            let mut appender = self.conn.appender("rollup")?;
            for (batch, groups, keep) in &parts {
                if let Some(rows) = rows(batch, groups, keep.as_ref(), &self.rollup_universe)? {
                    added += rows.num_rows();
                    let hours = rows.column(0).as_primitive::<TimestampMicrosecondType>();
                    earliest = earlier(earliest, hours.values().iter().min().copied());
                    appender.append_record_batch(rows)?;
                }
            }
            appender.flush()?;
        }
        if appended < SMALL_APPEND {
            self.small_rows += added;
            self.dirty_from = earlier(self.dirty_from, earliest);
            if self.small_rows >= COMPACT_AFTER_ROWS {
                self.compact_rollup()?;
            }
        }
        Ok(())
    }

    /// Merges the roll-up rows small appends left since the last compaction into one row per
    /// key, in one transaction.
    pub fn compact_rollup(&mut self) -> Result<(), StoreError> {
        let Some(from) = self.dirty_from else {
            return Ok(());
        };
        let keys = KEY_COLUMNS.join(", ");
        let statement = format!(
            "BEGIN TRANSACTION; \
             CREATE OR REPLACE TEMP TABLE rollup_merged AS SELECT ts, {keys}, call_id, \
             input_class, missing, {sums} FROM rollup WHERE ts >= make_timestamp({from}) \
             GROUP BY ALL; \
             DELETE FROM rollup WHERE ts >= make_timestamp({from}); \
             INSERT INTO rollup SELECT * FROM rollup_merged; DROP TABLE rollup_merged; COMMIT",
            sums = sums_sql(true),
        );
        if let Err(error) = self.conn.execute_batch(&statement) {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
        self.small_rows = 0;
        self.dirty_from = None;
        Ok(())
    }

    /// Rows in the roll-up table.
    pub fn rollup_rows(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM rollup", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The earlier of two optional instants.
fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn universe_text(universe: &[u64]) -> String {
    universe
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burnrate_model::dimension::Field as Dimension;

    #[test]
    fn every_dimension_is_a_key() {
        for field in Dimension::ALL {
            assert!(KEY_COLUMNS.contains(&field.as_str()), "{}", field.as_str());
        }
    }

    #[test]
    fn input_class_counts_thresholds_exceeded() {
        let universe = [128_000, 200_000];
        assert_eq!(class_of(0, &universe), 0);
        assert_eq!(class_of(128_000, &universe), 0);
        assert_eq!(class_of(128_001, &universe), 1);
        assert_eq!(class_of(200_001, &universe), 2);
        assert_eq!(class_of(5, &[]), 0);
    }
}
