//! The roll-ups: `events` summed per hour and every dimension (`rollup`), per day and the
//! dimensions with few values (`rollup_day`), and per day, tenant, user and what pricing
//! needs (`rollup_user_day`), kept at append, so queries over whole hours or days read
//! tables several (or many) times smaller than the events.
//!
//! An hourly row holds the hour (`ts`), every dimension column of the event (so any filter
//! or group-by on a dimension can be answered), derived keys (`call_id`: the event id of a
//! call outside any agent run that reached an outcome, which counts as its own run;
//! `input_class`: how many of the whole price book's input-size thresholds the call's input
//! exceeds, from which any query's price band follows; one column per [`KEPT_LABELS`];
//! [`USER_MISSING`]), and the sums queries need. A daily row has the day, its level's keys
//! ([`Level::Day`], [`Level::UserDay`]) and the same derived keys but `call_id`: it answers
//! queries that group and filter only by those and ask for no run metrics. Cost is linear
//! in the token sums, so pricing the sums per (model, tier, band, day) is exact.
//!
//! The roll-ups are kept consistent with `events`: every append adds the roll-up rows of the
//! rows it added, retention deletes them all in one transaction, and opening a ledger whose
//! roll-ups do not count every event (a crash between the appends), have other columns (a
//! ledger written by an older burnrate) or were built for other thresholds rebuilds them.

use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryBuilder, Int64Array, StringBuilder,
    TimestampMicrosecondArray, UInt8Array, UInt32Array,
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

/// The [`KEY_COLUMNS`] the daily roll-up keeps: the dimensions with few values per day
/// (not users, runs, sessions, tasks, agents, prompt versions or outcomes), which makes it
/// about a sixth of the hourly one, plus `status` and `outcome_success`.
const DAY_KEYS: [&str; 12] = [
    "source",
    "provider",
    "model",
    "requested_model",
    "operation",
    "service_tier",
    "tenant_id",
    "feature",
    "route",
    "deployment",
    "status",
    "outcome_success",
];

/// The [`KEY_COLUMNS`] the user-day roll-up keeps: tenant and user, and what pricing needs.
/// Users-per-day reports read it: about a fifth of the hourly roll-up, where the daily
/// roll-up keeps no users.
const USER_DAY_KEYS: [&str; 5] = ["provider", "model", "service_tier", "tenant_id", "user_id"];

/// The labels the roll-ups keep, each as a column of the same name without its prefix:
/// the OTLP receiver's `burnrate.missing` and the ladder's `burnrate.degraded`.
pub const KEPT_LABELS: [(&str, &str); 2] = [
    ("burnrate.missing", "missing"),
    ("burnrate.degraded", "degraded"),
];

/// The roll-up column saying the calls of a row have no `user_id` (the daily roll-up keeps
/// no users, but tagging coverage needs to know which calls lack one).
pub const USER_MISSING: &str = "user_missing";

/// The roll-up column of a kept label, `None` for any other label.
pub fn kept_label_column(label: &str) -> Option<&'static str> {
    KEPT_LABELS
        .iter()
        .find(|(name, _)| *name == label)
        .map(|(_, column)| *column)
}

/// SQL reading a label from an `events` row.
pub fn label_expr(label: &str) -> String {
    // Label names are restricted to [A-Za-z0-9_.-] when parsed, so quoting is safe.
    format!("json_extract_string(labels, '$.\"{label}\"')")
}

/// A roll-up's grain: its table, time unit and key columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `rollup`: per hour and every dimension.
    Hour,
    /// `rollup_day`: per day and the [`DAY_KEYS`].
    Day,
    /// `rollup_user_day`: per day and the [`USER_DAY_KEYS`].
    UserDay,
}

impl Level {
    /// Every level, the hourly one first (the others are built from it).
    pub const ALL: [Level; 3] = [Level::Hour, Level::Day, Level::UserDay];

    /// The levels per day, in the order queries prefer them (the daily one, 1.33M rows at
    /// 100M events, before the user-day one, 2.9M).
    pub const DAILY: [Level; 2] = [Level::Day, Level::UserDay];

    /// The level's table.
    pub fn table(self) -> &'static str {
        match self {
            Level::Hour => "rollup",
            Level::Day => "rollup_day",
            Level::UserDay => "rollup_user_day",
        }
    }

    fn micros(self) -> i64 {
        match self {
            Level::Hour => HOUR_MICROS,
            Level::Day | Level::UserDay => 24 * HOUR_MICROS,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Level::Hour => "hour",
            Level::Day | Level::UserDay => "day",
        }
    }

    /// Whether its rows keep the event column `key` as it is.
    fn has_key(self, key: &str) -> bool {
        match self {
            Level::Hour => KEY_COLUMNS.contains(&key),
            Level::Day => DAY_KEYS.contains(&key),
            Level::UserDay => USER_DAY_KEYS.contains(&key),
        }
    }

    /// The event columns its rows keep as they are.
    pub fn keys(self) -> impl Iterator<Item = &'static str> {
        KEY_COLUMNS.into_iter().filter(move |key| self.has_key(key))
    }

    /// Whether its rows can be grouped or filtered by `dimension`.
    pub fn keeps(self, dimension: &burnrate_model::Dimension) -> bool {
        match dimension {
            burnrate_model::Dimension::Field(field) => self.keys().any(|key| key == field.as_str()),
            burnrate_model::Dimension::Label(label) => kept_label_column(label).is_some(),
        }
    }

    /// Every column of its table, in order, with its SQL type.
    pub(super) fn columns(self) -> Vec<(String, String)> {
        let mut columns = vec![("ts".to_owned(), "TIMESTAMP NOT NULL".to_owned())];
        columns.extend(
            self.keys()
                .map(|name| (name.to_owned(), sql_type(name).to_owned())),
        );
        if self == Level::Hour {
            columns.push(("call_id".to_owned(), "UUID".to_owned()));
        }
        columns.push(("input_class".to_owned(), "UTINYINT NOT NULL".to_owned()));
        for (_, column) in KEPT_LABELS {
            columns.push((column.to_owned(), "VARCHAR".to_owned()));
        }
        columns.push((USER_MISSING.to_owned(), "BOOLEAN NOT NULL".to_owned()));
        for (name, _) in contributions() {
            let null = if name.starts_with("layer_") {
                ""
            } else {
                " NOT NULL"
            };
            columns.push((name.to_owned(), format!("BIGINT{null}")));
        }
        columns
    }

    /// The columns its rows are grouped by: everything but the sums.
    fn group_columns(self) -> Vec<String> {
        let sums: Vec<&str> = contributions().map(|(name, _)| name).collect();
        self.columns()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !sums.contains(&name.as_str()))
            .collect()
    }
}

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

/// The `CREATE TABLE` statement of a roll-up.
pub(super) fn create_table_sql(level: Level) -> String {
    let columns: Vec<String> = level
        .columns()
        .into_iter()
        .map(|(name, sql)| format!("{name} {sql}"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        level.table(),
        columns.join(", ")
    )
}

/// The Arrow schema of a roll-up table, column for column.
fn schema(level: Level) -> SchemaRef {
    let events = event_schema();
    let mut fields = Vec::new();
    for (name, sql) in level.columns() {
        let nullable = !sql.ends_with("NOT NULL");
        fields.push(match name.as_str() {
            "ts" => Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            "call_id" => uuid_field("call_id").with_nullable(true),
            "input_class" => Field::new("input_class", DataType::UInt8, false),
            USER_MISSING => Field::new(USER_MISSING, DataType::Boolean, false),
            _ if sql.starts_with("BIGINT") => Field::new(name, DataType::Int64, nullable),
            _ => match events.field_with_name(&name) {
                Ok(field) => field.clone().with_nullable(true),
                Err(_) => Field::new(name, DataType::Utf8, true),
            },
        });
    }
    Arc::new(Schema::new(fields))
}

/// SQL for the input class of an `events` row under `universe` (ascending thresholds): its
/// band under the whole book's thresholds.
fn input_class_expr(universe: &[u64]) -> String {
    format!(
        "CAST({} AS UTINYINT)",
        crate::query::sql::band_expr(universe)
    )
}

/// SQL for the `call_id` of an `events` row.
const CALL_ID_EXPR: &str =
    "CASE WHEN agent_run_id IS NULL AND outcome_name IS NOT NULL THEN id END";

/// The `events` table with the derived columns of an hourly roll-up row (input class,
/// `call_id`, [`KEPT_LABELS`] as their columns, [`USER_MISSING`]), as a subquery: what a
/// roll-up is built from, and what is read where a roll-up is read but events answer.
pub fn events_as_rollup_sql(universe: &[u64]) -> String {
    let mut columns = vec![
        format!("{} AS input_class", input_class_expr(universe)),
        format!("{CALL_ID_EXPR} AS call_id"),
    ];
    for (label, column) in KEPT_LABELS {
        columns.push(format!("{} AS {column}", label_expr(label)));
    }
    columns.push(format!("user_id IS NULL AS {USER_MISSING}"));
    format!("(SELECT *, {} FROM events)", columns.join(", "))
}

fn class_of(input_tokens: i64, universe: &[u64]) -> u8 {
    let input = u64::try_from(input_tokens).unwrap_or(0);
    let exceeded = universe.iter().take_while(|t| input > **t).count();
    u8::try_from(exceeded).unwrap_or(u8::MAX)
}

/// The columns of [`KeyRef::texts_after_depth`], in order.
const TEXTS_AFTER_DEPTH: [&str; 5] = [
    "session_id",
    "deployment",
    "prompt_version",
    "effort",
    "outcome_name",
];

/// An hourly roll-up key of one event, borrowing its text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    hour: i64,
    texts: [Option<&'a str>; 14],
    texts_after_depth: [Option<&'a str>; 5],
    span_depth: Option<u32>,
    status: &'static str,
    outcome_success: Option<bool>,
    call_id: Option<Uuid>,
    labels: [Option<&'a str>; KEPT_LABELS.len()],
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
            labels: KEPT_LABELS.map(|(label, _)| event.labels.get(label).map(String::as_str)),
        }
    }

    /// The key at a daily `level` of the events with this hourly key: the day (as its first
    /// hour), the level's keys, the kept labels, and whether a user is set (the
    /// [`USER_MISSING`] column).
    fn at(&self, level: Level) -> KeyRef<'a> {
        let mut key = *self;
        key.hour = self.hour.div_euclid(24) * 24;
        // The columns of `texts_before_depth` are the first 14 key columns.
        for (text, name) in key.texts.iter_mut().zip(KEY_COLUMNS) {
            if !level.has_key(name) {
                // Of a user not kept, only whether one is set.
                *text = if name == "user_id" {
                    text.map(|_| "")
                } else {
                    None
                };
            }
        }
        for (text, name) in key.texts_after_depth.iter_mut().zip(TEXTS_AFTER_DEPTH) {
            if !level.has_key(name) {
                *text = None;
            }
        }
        if !level.has_key("span_depth") {
            key.span_depth = None;
        }
        if !level.has_key("status") {
            key.status = "";
        }
        if !level.has_key("outcome_success") {
            key.outcome_success = None;
        }
        key.call_id = None;
        key
    }
}

/// The roll-up groups of a batch of events, found on the worker thread that builds the
/// batch: each row's hourly group; per hourly group its first row, `call_id`, kept labels
/// and group at each daily level. The input class, which depends on the ledger's price
/// book, is added at append.
#[derive(Debug, Default)]
pub struct Groups {
    row_group: Vec<u32>,
    first_row: Vec<u32>,
    call_id: Vec<Option<Uuid>>,
    labels: Vec<[Option<String>; KEPT_LABELS.len()]>,
    /// Per level of [`Level::DAILY`], in that order.
    daily: [DailyGroups; Level::DAILY.len()],
}

/// The groups of a batch at one daily level.
#[derive(Debug, Default)]
struct DailyGroups {
    /// Per hourly group, its group at this level.
    of: Vec<u32>,
    /// Per group at this level, its first hourly group.
    first_group: Vec<u32>,
}

impl Groups {
    /// Groups `events` by their roll-up keys (without the input class).
    pub fn of(events: &[UsageEvent]) -> Groups {
        let mut index: FxHashMap<KeyRef<'_>, u32> = FxHashMap::default();
        let mut daily_index: [FxHashMap<KeyRef<'_>, u32>; Level::DAILY.len()] = Default::default();
        let mut groups = Groups {
            row_group: Vec::with_capacity(events.len()),
            ..Groups::default()
        };
        let index_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        for (row, event) in events.iter().enumerate() {
            let key = KeyRef::of(event);
            let next = index_of(groups.first_row.len());
            let group = *index.entry(key).or_insert_with_key(|key| {
                groups.first_row.push(index_of(row));
                groups.call_id.push(key.call_id);
                groups.labels.push(key.labels.map(|l| l.map(str::to_owned)));
                for ((level, daily), index) in Level::DAILY
                    .into_iter()
                    .zip(&mut groups.daily)
                    .zip(&mut daily_index)
                {
                    let next_daily = index_of(daily.first_group.len());
                    let group = *index.entry(key.at(level)).or_insert_with(|| {
                        daily.first_group.push(next);
                        next_daily
                    });
                    daily.of.push(group);
                }
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
    errors: i64,
    successes: i64,
    tokens: [i64; 7],
    layers: [Option<i64>; 3],
    layered: i64,
}

/// The `level` roll-up rows of the rows of `batch` that `keep` keeps (all when `None`).
pub(super) fn rows(
    batch: &RecordBatch,
    groups: &Groups,
    keep: Option<&BooleanArray>,
    universe: &[u64],
    level: Level,
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
    let status = column("status")?.as_string::<i32>().clone();
    let success = column("outcome_success")?.as_boolean().clone();
    // A row's group at this level, and the hourly group whose first row stands for a group.
    let daily = Level::DAILY
        .iter()
        .position(|daily| *daily == level)
        .map(|i| &groups.daily[i]);
    let group_of = |row: usize| {
        let hourly = groups.row_group[row];
        daily.map_or(hourly, |daily| daily.of[hourly as usize])
    };
    let representative =
        |group: u32| daily.map_or(group, |daily| daily.first_group[group as usize]) as usize;
    let mut index: FxHashMap<(u32, u8), usize> = FxHashMap::default();
    let mut slots: Vec<Slot> = Vec::new();
    for row in 0..groups.row_group.len() {
        if keep.is_some_and(|keep| !keep.value(row)) {
            continue;
        }
        let group = group_of(row);
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
        slot.errors += i64::from(status.value(row) == "error");
        slot.successes += i64::from(success.is_valid(row) && success.value(row));
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

    let hourly: Vec<usize> = slots
        .iter()
        .map(|slot| representative(slot.group))
        .collect();
    let first_rows =
        UInt32Array::from_iter_values(hourly.iter().map(|&group| groups.first_row[group]));
    let ts = column("ts")?
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    let unit = level.micros();
    let starts = TimestampMicrosecondArray::from_iter_values(
        first_rows
            .values()
            .iter()
            .map(|&row| ts.value(row as usize).div_euclid(unit) * unit),
    );
    let mut columns: Vec<ArrayRef> = vec![Arc::new(starts)];
    for name in level.keys() {
        columns.push(take(column(name)?.as_ref(), &first_rows, None)?);
    }
    if level == Level::Hour {
        let mut call_ids = FixedSizeBinaryBuilder::with_capacity(slots.len(), 16);
        for &group in &hourly {
            match groups.call_id[group] {
                Some(id) => call_ids.append_value(id.as_bytes())?,
                None => call_ids.append_null(),
            }
        }
        columns.push(Arc::new(call_ids.finish()));
    }
    columns.push(Arc::new(UInt8Array::from_iter_values(
        slots.iter().map(|slot| slot.class),
    )));
    for label in 0..KEPT_LABELS.len() {
        let mut values = StringBuilder::new();
        for &group in &hourly {
            values.append_option(groups.labels[group][label].as_deref());
        }
        columns.push(Arc::new(values.finish()));
    }
    let users = column("user_id")?;
    columns.push(Arc::new(BooleanArray::from_iter(
        first_rows
            .values()
            .iter()
            .map(|&row| Some(users.is_null(row as usize))),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        slots.iter().map(|slot| slot.requests),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        slots.iter().map(|slot| slot.errors),
    )));
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
    columns.push(Arc::new(Int64Array::from_iter_values(
        slots.iter().map(|slot| slot.successes),
    )));
    Ok(Some(RecordBatch::try_new(schema(level), columns)?))
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

/// The names of every column a roll-up sums, in table order.
pub fn sum_column_names() -> impl Iterator<Item = &'static str> {
    contributions().map(|(name, _)| name)
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

/// Roll-up rows appended since a roll-up was last compacted, and the earliest time they
/// touch (microseconds).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pending {
    rows: usize,
    from: Option<i64>,
}

impl DuckStore {
    /// The input-size thresholds of the whole price book: what the roll-up's input class
    /// counts.
    pub(super) fn universe(&self) -> Vec<u64> {
        crate::pricing::thresholds(&self.book, self.book.keys())
    }

    /// Creates the roll-up tables, replacing one whose columns are not this version's (it is
    /// rebuilt by [`DuckStore::check_rollup`]).
    pub(super) fn create_rollups(&self) -> Result<Created, StoreError> {
        let mut created = Created::None;
        for level in Level::ALL {
            let expected: Vec<String> = level.columns().into_iter().map(|(name, _)| name).collect();
            created = created.max(self.drop_if_columns_differ(level.table(), &expected)?);
            self.conn.execute_batch(&create_table_sql(level))?;
        }
        Ok(created)
    }

    /// Drops `table` when it exists with other columns than `expected` (a ledger written by
    /// another version); says whether the table is to be created, and why.
    pub(super) fn drop_if_columns_differ(
        &self,
        table: &str,
        expected: &[impl AsRef<str>],
    ) -> Result<Created, StoreError> {
        let found: Vec<String> = self
            .conn
            .prepare(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? \
                 AND schema_name = 'main' AND database_name = current_database() \
                 ORDER BY column_index",
            )?
            .query_map([table], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if found.is_empty() {
            return Ok(Created::Absent);
        }
        if found
            .iter()
            .map(String::as_str)
            .eq(expected.iter().map(AsRef::as_ref))
        {
            return Ok(Created::None);
        }
        self.conn.execute_batch(&format!("DROP TABLE {table}"))?;
        Ok(Created::Replaced)
    }

    /// Rebuilds the roll-ups when they do not count every event or were built for other
    /// thresholds; only the daily ones that do not count every event when the hourly one is
    /// sound (a ledger from a version without one of them).
    /// `complete`: the marker says they count every event ([`DuckStore::marked_complete`]).
    pub(super) fn check_rollup(&mut self, complete: bool) -> Result<(), StoreError> {
        let universe = self.universe();
        let recorded = self.meta_value(META_UNIVERSE)?;
        let same_universe = recorded.as_deref() == Some(universe_text(&universe).as_str());
        self.rollup_universe = universe;
        if complete && same_universe {
            self.rollup_valid = true;
            return Ok(());
        }
        self.unmark_complete()?;
        let events: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))?;
        let mut incomplete = Vec::new();
        for level in Level::ALL {
            let counted: i64 = self.conn.query_row(
                &format!(
                    "SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM {}",
                    level.table()
                ),
                [],
                |row| row.get(0),
            )?;
            if counted != events {
                incomplete.push(level);
            }
        }
        if !same_universe || incomplete.contains(&Level::Hour) {
            return self.rebuild_rollup();
        }
        if !incomplete.is_empty() {
            self.ensure_writable("rebuild the roll-up")?;
            let rebuilt: Vec<String> = incomplete.into_iter().map(daily_rebuild_sql).collect();
            self.conn.execute_batch(&rebuilt.join("; "))?;
        }
        self.rollup_valid = true;
        Ok(())
    }

    /// Builds the roll-ups again, the hourly one from the events and the daily ones from it,
    /// and the run totals from the hourly one.
    pub fn rebuild_rollup(&mut self) -> Result<(), StoreError> {
        self.ensure_writable("rebuild the roll-up")?;
        self.unmark_complete()?;
        let universe = self.universe();
        let daily: Vec<String> = Level::DAILY.into_iter().map(daily_rebuild_sql).collect();
        let statement = format!(
            "DELETE FROM rollup; INSERT INTO rollup {hour}; {daily}; \
             INSERT OR REPLACE INTO meta VALUES ('{META_UNIVERSE}', '{text}')",
            hour = merged_sql(Level::Hour, &events_as_rollup_sql(&universe), false, None),
            daily = daily.join("; "),
            text = universe_text(&universe),
        );
        // No explicit transaction (DuckDB 2.0 can fail large optimistic writes inside one):
        // a rebuild cut short leaves roll-ups that do not count every event, which the next
        // open rebuilds.
        if let Err(error) = self.conn.execute_batch(&statement) {
            self.rollup_valid = false;
            return Err(error.into());
        }
        self.rollup_universe = universe;
        self.rollup_valid = true;
        self.pending = Default::default();
        // Both, whatever the first gives: neither may stay priced from the old roll-up.
        let costs = self.rebuild_user_day_costs();
        let runs = self.rebuild_run_totals();
        costs.and(runs)
    }

    /// Rebuilds the roll-ups if the price book's thresholds changed since they were built;
    /// says whether it did.
    pub(super) fn rollup_after_price_change(&mut self) -> Result<bool, StoreError> {
        let rebuild = self.universe() != self.rollup_universe && self.archive.is_none();
        if rebuild {
            self.rebuild_rollup()?;
        }
        Ok(rebuild)
    }

    /// Appends the roll-up rows of an append. On failure the roll-ups are marked stale
    /// (queries read the events; the next open rebuilds them) and the error returned.
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
        for level in Level::ALL {
            let mut added = Pending::default();
            {
                let mut appender = self.conn.appender(level.table())?;
                // The user-day rows are also priced for `user_day_costs`.
                let mut staged = match level {
                    Level::UserDay => self.user_day_stage()?,
                    Level::Hour | Level::Day => None,
                };
                for (batch, groups, keep) in &parts {
                    let universe = &self.rollup_universe;
                    if let Some(rows) = rows(batch, groups, keep.as_ref(), universe, level)? {
                        added.rows += rows.num_rows();
                        let starts = rows.column(0).as_primitive::<TimestampMicrosecondType>();
                        added.from = earlier(added.from, starts.values().iter().min().copied());
                        if let Some(staged) = &mut staged {
                            staged.append_record_batch(rows.clone())?;
                        }
                        appender.append_record_batch(rows)?;
                    }
                }
                if let Some(mut staged) = staged {
                    staged.flush()?;
                }
                appender.flush()?;
            }
            if level == Level::UserDay {
                self.price_staged_user_days()?;
            }
            // An import's hourly rows are summed per batch already; its daily rows repeat
            // keys across batches, so a daily roll-up is compacted after every append once
            // its new rows could have doubled it.
            if level == Level::Hour && appended >= SMALL_APPEND {
                continue;
            }
            let pending = &mut self.pending[level as usize];
            pending.rows += added.rows;
            pending.from = earlier(pending.from, added.from);
            let due = match level {
                Level::Hour => COMPACT_AFTER_ROWS,
                Level::Day | Level::UserDay => {
                    COMPACT_AFTER_ROWS.max(self.rows_compacted[level as usize])
                }
            };
            if pending.rows >= due {
                self.compact(level)?;
            }
        }
        Ok(())
    }

    /// Merges the rows the roll-ups received since they were last compacted into one row
    /// per key, and computes the run totals of the runs with new calls.
    pub fn compact_rollup(&mut self) -> Result<(), StoreError> {
        for level in Level::ALL {
            self.compact(level)?;
        }
        self.compact_run_totals()
    }

    /// Merges the rows `level` received since it was last compacted into one row per key, in
    /// one transaction.
    fn compact(&mut self, level: Level) -> Result<(), StoreError> {
        let Some(from) = self.pending[level as usize].from else {
            return Ok(());
        };
        let from = from.div_euclid(level.micros()) * level.micros();
        let table = level.table();
        let since = format!("ts >= make_timestamp({from})");
        // The priced user days are merged with the rows they price.
        let priced = match level {
            Level::UserDay => self.merge_user_days_sql(&since),
            Level::Hour | Level::Day => String::new(),
        };
        let statement = format!(
            "BEGIN TRANSACTION; \
             CREATE OR REPLACE TEMP TABLE rollup_merged AS {merged}; \
             DELETE FROM {table} WHERE {since}; \
             INSERT INTO {table} SELECT * FROM rollup_merged; DROP TABLE rollup_merged; \
             {priced}COMMIT",
            merged = merged_sql(level, table, true, Some(&since)),
        );
        if let Err(error) = self.conn.execute_batch(&statement) {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
        self.pending[level as usize] = Pending::default();
        if level != Level::Hour {
            self.rows_compacted[level as usize] = self.rollup_rows(level)?;
        }
        Ok(())
    }

    /// Rows in a roll-up table.
    pub fn rollup_rows(&self, level: Level) -> Result<usize, StoreError> {
        self.count_rows(level.table())
    }
}

/// The rows of `from` (only those matching `filter` if given) summed per key of `level`, in
/// the columns of `level`'s table; `from` is a roll-up table (`rollup`) or
/// [`events_as_rollup_sql`].
fn merged_sql(level: Level, from: &str, rollup: bool, filter: Option<&str>) -> String {
    let keys = level.group_columns();
    let keys: Vec<String> = keys
        .into_iter()
        .map(|key| {
            if key == "ts" {
                format!("date_trunc('{}', ts) AS ts", level.unit())
            } else {
                key
            }
        })
        .collect();
    let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
    format!(
        "SELECT {keys}, {sums} FROM {from}{filter} GROUP BY ALL",
        keys = keys.join(", "),
        sums = sums_sql(rollup),
    )
}

/// SQL building the daily `level` roll-up again from the hourly one.
fn daily_rebuild_sql(level: Level) -> String {
    let table = level.table();
    format!(
        "DELETE FROM {table}; INSERT INTO {table} {}",
        merged_sql(level, "rollup", true, None)
    )
}

/// Whether opening found a derived table to create, and why (ordered: the worst wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Created {
    /// It was there, as expected.
    None,
    /// It was there with other columns (another version's), and was dropped.
    Replaced,
    /// It was not there.
    Absent,
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

    /// An event with every dimension set, `changed` (a dimension's name) to another value.
    fn event_with(changed: &str) -> UsageEvent {
        let mut json = serde_json::json!({
            "ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "m",
            "requested_model": "r", "operation": "chat", "service_tier": "flex",
            "tenant_id": "t", "user_id": "u", "feature": "f", "task_id": "k", "route": "/x",
            "agent_run_id": "a", "parent_run_id": "p", "agent_name": "n", "span_depth": 1,
            "session_id": "s", "deployment": "d", "prompt_version": "v", "effort": "low",
            "source": "gateway", "status": "ok", "outcome": {"name": "o", "success": true},
            "usage": {}
        });
        match changed {
            "" => {}
            "span_depth" => json["span_depth"] = 2.into(),
            "status" => json["status"] = "error".into(),
            "source" => json["source"] = "otlp".into(),
            "outcome_name" => json["outcome"]["name"] = "other".into(),
            name => json[name] = "other".into(),
        }
        UsageEvent::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn a_daily_key_keeps_exactly_its_keys() {
        let base = event_with("");
        for field in Dimension::ALL {
            let changed = event_with(field.as_str());
            assert!(
                KeyRef::of(&changed) != KeyRef::of(&base),
                "{field:?} is no key"
            );
            for (level, keys) in [
                (Level::Day, &DAY_KEYS[..]),
                (Level::UserDay, &USER_DAY_KEYS),
            ] {
                let same = KeyRef::of(&changed).at(level) == KeyRef::of(&base).at(level);
                assert_eq!(
                    same,
                    !keys.contains(&field.as_str()),
                    "{field:?} in the {level:?} key"
                );
            }
        }
        for level in Level::DAILY {
            let mut without_user = base.clone();
            without_user.user_id = None;
            assert!(
                KeyRef::of(&without_user).at(level) != KeyRef::of(&base).at(level),
                "the {level:?} key keeps whether a user is set"
            );
            let mut an_hour_later = base.clone();
            an_hour_later.ts += chrono::Duration::hours(1);
            let (hour, later) = (KeyRef::of(&base), KeyRef::of(&an_hour_later));
            assert!(hour != later);
            assert!(
                hour.at(level) == later.at(level),
                "hours of a day share its {level:?} key"
            );
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
