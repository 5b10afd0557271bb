//! Typed query results and their JSON form (`{"rows": [{...}, ...]}`).

use std::collections::HashMap;
use std::io::Write;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use burnrate_model::Money;
use burnrate_model::dimension::Dimension;
use burnrate_model::text::grouped;
use chrono::DateTime;
use rayon::prelude::*;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use serde_json::Value;

use super::spec::{MetricKind, QuerySpec};
use crate::error::StoreError;

/// How a result column is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// A dimension value or bucket start.
    Text,
    /// A whole number (counts, token totals, integer dimensions).
    Count,
    /// Dollars; computed in whole femtodollars.
    Money,
    /// A rate or share between 0 and 1.
    Ratio,
    /// A multiple (max/min ratios).
    Factor,
    /// Milliseconds.
    Millis,
}

impl From<MetricKind> for ColumnKind {
    fn from(kind: MetricKind) -> ColumnKind {
        match kind {
            MetricKind::Count => ColumnKind::Count,
            MetricKind::Money => ColumnKind::Money,
            MetricKind::Ratio => ColumnKind::Ratio,
            MetricKind::Factor => ColumnKind::Factor,
            MetricKind::Millis => ColumnKind::Millis,
        }
    }
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value (dimension not set, or no data for the metric).
    Null,
    /// Text.
    Text(String),
    /// A whole number.
    Count(i64),
    /// Exact dollars.
    Money(Money),
    /// A float (rates, shares, factors).
    Number(f64),
}

/// The cell as JSON: money as a decimal string, counts as integers, a float that is not
/// finite as `null`.
impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => serializer.serialize_none(),
            Cell::Text(text) => serializer.serialize_str(text),
            Cell::Count(count) => serializer.serialize_i64(*count),
            Cell::Money(money) => serializer.collect_str(money),
            Cell::Number(number) if number.is_finite() => serializer.serialize_f64(*number),
            Cell::Number(_) => serializer.serialize_none(),
        }
    }
}

impl Cell {
    /// A count cell as a count (`None` for anything else, or a negative count).
    pub fn as_count(&self) -> Option<u64> {
        match self {
            Cell::Count(count) => u64::try_from(*count).ok(),
            _ => None,
        }
    }

    /// A money cell's amount (`None` for anything else).
    pub fn as_money(&self) -> Option<Money> {
        match self {
            Cell::Money(money) => Some(*money),
            _ => None,
        }
    }

    /// A group's value as text: a text cell, or an integer dimension's value written out
    /// (`None` for anything else).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Cell::Text(text) => Some(text.clone()),
            Cell::Count(count) => Some(count.to_string()),
            _ => None,
        }
    }

    /// The cell as plain text, for tables and CSV.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Count(count) => count.to_string(),
            Cell::Money(money) => money.to_string(),
            Cell::Number(number) => format!("{number:.4}"),
        }
    }
}

/// Calls in a query's range whose model has no price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Unpriced {
    /// Calls.
    pub requests: u64,
    /// Their input tokens.
    pub input_tokens: u64,
    /// Their output tokens.
    pub output_tokens: u64,
}

/// The answer to a query or report.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Column names: dimensions, `bucket`, metrics.
    pub columns: Vec<String>,
    /// How each column is typed.
    pub kinds: Vec<ColumnKind>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// Things the reader must know (unpriced calls, stale prices).
    pub warnings: Vec<String>,
    /// Unpriced calls in the range.
    pub unpriced: Unpriced,
}

/// The column kinds of a spec's result, in output order.
pub fn column_kinds(spec: &QuerySpec) -> Vec<ColumnKind> {
    let mut kinds: Vec<ColumnKind> = spec
        .group_by
        .iter()
        .map(|d| match d {
            Dimension::Field(field) if field.is_integer() => ColumnKind::Count,
            Dimension::Field(_) | Dimension::Label(_) => ColumnKind::Text,
        })
        .collect();
    if spec.bucket.is_some() {
        kinds.push(ColumnKind::Text);
    }
    kinds.extend(spec.metrics.iter().map(|m| ColumnKind::from(m.kind())));
    kinds
}

impl QueryResult {
    /// An empty result with these columns.
    pub fn new(columns: Vec<String>, kinds: Vec<ColumnKind>) -> QueryResult {
        QueryResult {
            columns,
            kinds,
            rows: Vec::new(),
            warnings: Vec::new(),
            unpriced: Unpriced::default(),
        }
    }

    /// Adds a row given as SQL text values, typing each by its column.
    pub fn push_text_row(&mut self, values: Vec<Option<String>>) -> Result<(), StoreError> {
        let mut row = Vec::with_capacity(values.len());
        for (value, kind) in values.into_iter().zip(&self.kinds) {
            row.push(match value {
                None => Cell::Null,
                Some(text) => parse_cell(&text, *kind)?,
            });
        }
        self.rows.push(row);
        Ok(())
    }

    /// Adds the rows of `batches` in order, whose columns are the result's, typing each cell
    /// by its column: text is parsed as [`QueryResult::push_text_row`] does, numbers are taken
    /// as they are (DuckDB's HUGEINT sums arrive as `Decimal128(38, 0)`), so a query need not
    /// cast its numbers to text. The batches are converted on every core (a report can be
    /// hundreds of thousands of rows).
    pub fn push_batches(&mut self, batches: &[RecordBatch]) -> Result<(), StoreError> {
        let kinds = &self.kinds;
        let converted = batches
            .par_iter()
            .map(|batch| batch_rows(batch, kinds))
            .collect::<Result<Vec<_>, _>>()?;
        self.rows.reserve(converted.iter().map(Vec::len).sum());
        self.rows.extend(converted.into_iter().flatten());
        Ok(())
    }

    /// Writes the result's JSON document (its `Serialize` form) laid out for people and line
    /// tools alike: each field and each row on a line of its own, each row compact (so `grep`
    /// and `wc -l` work on it). Rows are rendered on every core, a window at a time.
    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        /// Rows rendered by one task.
        const CHUNK: usize = 4096;
        /// Rows rendered before they are written, bounding the memory held.
        const WINDOW: usize = 16 * CHUNK;
        let columns = &self.columns;
        let render = |rows: &[Vec<Cell>]| -> Result<Vec<u8>, serde_json::Error> {
            let mut text = Vec::with_capacity(rows.len() * 128);
            for row in rows {
                text.extend_from_slice(b",\n    ");
                serde_json::to_writer(&mut text, &RowJson(columns, row))?;
            }
            Ok(text)
        };
        out.write_all(b"{\n  \"rows\": [")?;
        let mut first = true;
        for window in self.rows.chunks(WINDOW) {
            let parts = window
                .par_chunks(CHUNK)
                .map(render)
                .collect::<Result<Vec<_>, _>>()?;
            for part in &parts {
                // Every row but the first follows a comma.
                out.write_all(if first { &part[1..] } else { part })?;
                first = false;
            }
        }
        out.write_all(if first { b"]" } else { b"\n  ]" })?;
        // The remaining fields of `document`, in its order.
        out.write_all(b",\n  \"warnings\": ")?;
        serde_json::to_writer(&mut *out, &self.warnings)?;
        out.write_all(b",\n  \"unpriced\": ")?;
        serde_json::to_writer(&mut *out, &self.unpriced)?;
        out.write_all(b"\n}\n")
    }

    /// Records the unpriced calls in the result's range, with a warning when there are any.
    pub fn note_unpriced(&mut self, unpriced: Unpriced) {
        if unpriced.requests > 0 {
            self.warnings.push(format!(
                "{} calls ({} input and {} output tokens) in this range use models with no price \
                 and count as $0 here; run `burnrate prices missing --db PATH` (while the \
                 gateway runs: its `GET /api/v1/prices`) to list them, then add their prices \
                 (history re-prices at once)",
                grouped(unpriced.requests),
                grouped(unpriced.input_tokens),
                grouped(unpriced.output_tokens)
            ));
        }
        self.unpriced = unpriced;
    }

    /// The value of `column` in `row`, if both exist.
    pub fn get(&self, row: usize, column: &str) -> Option<&Cell> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(index)
    }

    /// The result as its wire document: [`QueryResult`]'s JSON plus `columns` and `kinds`, so
    /// a client (the CLI's `--server`) can rebuild the typed result with
    /// [`QueryResult::from_wire_json`].
    pub fn wire(&self) -> WireResult<'_> {
        WireResult(self)
    }

    /// Rebuilds a result from [`QueryResult::wire`]'s document.
    pub fn from_wire_json(json: &Value) -> Result<QueryResult, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("query answer: {what}"));
        let columns: Vec<String> = serde_json::from_value(json["columns"].clone())
            .map_err(|_| bad("`columns` is not a list of names"))?;
        let kinds: Vec<ColumnKind> = serde_json::from_value(json["kinds"].clone())
            .map_err(|_| bad("`kinds` is not a list of column kinds"))?;
        if kinds.len() != columns.len() {
            return Err(bad("`columns` and `kinds` differ in length"));
        }
        let mut result = QueryResult::new(columns, kinds);
        result.warnings = serde_json::from_value(json["warnings"].clone()).unwrap_or_default();
        result.unpriced.requests = json["unpriced"]["requests"].as_u64().unwrap_or(0);
        result.unpriced.input_tokens = json["unpriced"]["input_tokens"].as_u64().unwrap_or(0);
        result.unpriced.output_tokens = json["unpriced"]["output_tokens"].as_u64().unwrap_or(0);
        let rows = json["rows"]
            .as_array()
            .ok_or_else(|| bad("`rows` is not a list"))?;
        for row in rows {
            let mut cells = Vec::with_capacity(result.columns.len());
            for (column, kind) in result.columns.iter().zip(&result.kinds) {
                cells.push(json_cell(&row[column.as_str()], *kind).ok_or_else(|| {
                    bad(&format!(
                        "`{column}` holds {} where a {kind:?} was expected",
                        row[column.as_str()]
                    ))
                })?);
            }
            result.rows.push(cells);
        }
        Ok(result)
    }
}

/// A cell from its JSON form (as [`Cell`] serialises).
fn json_cell(value: &Value, kind: ColumnKind) -> Option<Cell> {
    if value.is_null() {
        return Some(Cell::Null);
    }
    Some(match kind {
        ColumnKind::Text => Cell::Text(value.as_str()?.to_owned()),
        ColumnKind::Count | ColumnKind::Millis => Cell::Count(value.as_i64()?),
        ColumnKind::Money => Cell::Money(value.as_str()?.parse().ok()?),
        ColumnKind::Ratio | ColumnKind::Factor => Cell::Number(value.as_f64()?),
    })
}

fn parse_cell(text: &str, kind: ColumnKind) -> Result<Cell, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("`{text}` is not {what}"));
    Ok(match kind {
        ColumnKind::Text => Cell::Text(text.to_owned()),
        ColumnKind::Count | ColumnKind::Millis => {
            Cell::Count(text.parse().map_err(|_| bad("a whole number"))?)
        }
        ColumnKind::Money => {
            let femto: i128 = text.parse().map_err(|_| bad("femtodollars"))?;
            Cell::Money(Money::from_femto(femto).map_err(|_| bad("a representable amount"))?)
        }
        ColumnKind::Ratio | ColumnKind::Factor => {
            Cell::Number(text.parse().map_err(|_| bad("a number"))?)
        }
    })
}

/// The rows of `batch`, whose columns are typed by `kinds` (see
/// [`QueryResult::push_batches`]).
fn batch_rows(batch: &RecordBatch, kinds: &[ColumnKind]) -> Result<Vec<Vec<Cell>>, StoreError> {
    if batch.num_columns() != kinds.len() {
        return Err(StoreError::Corrupt(format!(
            "a result of {} columns where {} were expected",
            batch.num_columns(),
            kinds.len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(kinds)
        .map(|(array, kind)| column_cells(array, *kind))
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    Ok((0..batch.num_rows())
        .map(|_| {
            columns
                .iter_mut()
                .map(|cells| cells.next().unwrap_or(Cell::Null))
                .collect()
        })
        .collect())
}

/// The cells of one result column of `kind`.
fn column_cells(array: &ArrayRef, kind: ColumnKind) -> Result<Vec<Cell>, StoreError> {
    if let DataType::Timestamp(TimeUnit::Microsecond, None) = array.data_type() {
        return Ok(instant_cells(
            array.as_primitive::<TimestampMicrosecondType>(),
        ));
    }
    let array = match array.data_type() {
        DataType::Decimal128(..) | DataType::Float64 | DataType::Utf8 => array.clone(),
        integer if integer.is_integer() => cast(array, &DataType::Decimal128(38, 0))?,
        DataType::Float32 => cast(array, &DataType::Float64)?,
        _ => cast(array, &DataType::Utf8)?,
    };
    let cell = |row: usize| -> Result<Cell, StoreError> {
        if array.is_null(row) {
            return Ok(Cell::Null);
        }
        match array.data_type() {
            DataType::Decimal128(_, scale) => decimal_cell(
                array.as_primitive::<Decimal128Type>().value(row),
                *scale,
                kind,
            ),
            DataType::Float64 => float_cell(array.as_primitive::<Float64Type>().value(row), kind),
            _ => parse_cell(array.as_string::<i32>().value(row), kind),
        }
    };
    (0..array.len()).map(cell).collect()
}

/// Instants (a bucket's start) as RFC 3339 text in UTC, `2026-11-20T00:00:00Z`, as every
/// backend writes them. A result repeats few instants (one per bucket), so each is written
/// once: formatting 371k of them one by one cost as much as DuckDB's own `strftime`.
fn instant_cells(array: &TimestampMicrosecondArray) -> Vec<Cell> {
    let mut written: HashMap<i64, String> = HashMap::new();
    array
        .iter()
        .map(|micros| match micros {
            None => Cell::Null,
            Some(micros) => Cell::Text(
                written
                    .entry(micros)
                    .or_insert_with(|| match DateTime::from_timestamp_micros(micros) {
                        Some(at) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        None => micros.to_string(),
                    })
                    .clone(),
            ),
        })
        .collect()
}

/// A cell of `kind` from a decimal `value` with `scale` digits after the point.
fn decimal_cell(value: i128, scale: i8, kind: ColumnKind) -> Result<Cell, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("{value} (scale {scale}) is not {what}"));
    let whole = || {
        (scale == 0)
            .then_some(value)
            .ok_or_else(|| bad("a whole number"))
    };
    Ok(match kind {
        ColumnKind::Count | ColumnKind::Millis => {
            Cell::Count(i64::try_from(whole()?).map_err(|_| bad("a 64-bit count"))?)
        }
        ColumnKind::Money => {
            Cell::Money(Money::from_femto(whole()?).map_err(|_| bad("a representable amount"))?)
        }
        // The nearest double, as DuckDB's own cast gives.
        ColumnKind::Ratio | ColumnKind::Factor => Cell::Number(whole()? as f64),
        ColumnKind::Text => Cell::Text(whole()?.to_string()),
    })
}

/// A cell of `kind` from a double.
fn float_cell(value: f64, kind: ColumnKind) -> Result<Cell, StoreError> {
    match kind {
        ColumnKind::Ratio | ColumnKind::Factor => Ok(Cell::Number(value)),
        ColumnKind::Text => Ok(Cell::Text(value.to_string())),
        ColumnKind::Count | ColumnKind::Millis | ColumnKind::Money => Err(StoreError::Corrupt(
            format!("the double {value} where a whole number was expected"),
        )),
    }
}

/// `{"rows": [{column: cell, ...}, ...], "warnings": [...], "unpriced": {...}}`, written
/// row by row (a report can hold hundreds of thousands of rows: no JSON tree is built).
impl Serialize for QueryResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        document(self, serializer, false)
    }
}

/// [`QueryResult::wire`]: the result's JSON with `columns` and `kinds`.
pub struct WireResult<'a>(&'a QueryResult);

impl Serialize for WireResult<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        document(self.0, serializer, true)
    }
}

/// A result's JSON document, with `columns` and `kinds` for the wire form.
fn document<S: Serializer>(
    result: &QueryResult,
    serializer: S,
    wire: bool,
) -> Result<S::Ok, S::Error> {
    let mut document = serializer.serialize_struct("QueryResult", if wire { 5 } else { 3 })?;
    document.serialize_field("rows", &RowsJson(result))?;
    document.serialize_field("warnings", &result.warnings)?;
    document.serialize_field("unpriced", &result.unpriced)?;
    if wire {
        document.serialize_field("columns", &result.columns)?;
        document.serialize_field("kinds", &result.kinds)?;
    }
    document.end()
}

/// A result's rows, each an object from column name to cell.
struct RowsJson<'a>(&'a QueryResult);

impl Serialize for RowsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.0;
        serializer.collect_seq(result.rows.iter().map(|row| RowJson(&result.columns, row)))
    }
}

/// One row as an object from column name to cell.
struct RowJson<'a>(&'a [String], &'a [Cell]);

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().zip(self.1))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, Float64Array, Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<ArrayRef>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn result(kinds: &[ColumnKind]) -> QueryResult {
        let names = (0..kinds.len()).map(|i| format!("c{i}")).collect();
        QueryResult::new(names, kinds.to_vec())
    }

    #[test]
    fn typed_columns_become_the_cells_their_text_would() {
        use ColumnKind::*;
        let kinds = [Text, Count, Money, Ratio, Millis, Count, Text];
        let femto = 1_234_567_890_123_456_789_i128;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("acme"), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(7), Some(i128::from(i64::MAX))])
                    .with_precision_and_scale(38, 0)
                    .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(femto), None])
                    .with_precision_and_scale(38, 0)
                    .unwrap(),
            ),
            Arc::new(Float64Array::from(vec![Some(0.25), None])),
            Arc::new(Int32Array::from(vec![Some(12), Some(-3)])),
            Arc::new(StringArray::from(vec![Some("5"), Some("6")])),
            // A bucket's start, as the fetch writes it (DuckDB's `strftime` gave the same).
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_763_596_800_000_000),
                None,
            ])),
        ];
        let mut typed = result(&kinds);
        typed.push_batches(&[batch(columns)]).unwrap();
        let mut texts = result(&kinds);
        let text = |v: &str| Some(v.to_owned());
        texts
            .push_text_row(vec![
                text("acme"),
                text("7"),
                Some(femto.to_string()),
                text("0.25"),
                text("12"),
                text("5"),
                text("2025-11-20T00:00:00Z"),
            ])
            .unwrap();
        texts
            .push_text_row(vec![
                None,
                Some(i64::MAX.to_string()),
                None,
                None,
                text("-3"),
                text("6"),
                None,
            ])
            .unwrap();
        assert_eq!(typed, texts);
    }

    #[test]
    fn a_cell_that_does_not_fit_its_kind_is_an_error_naming_it() {
        let decimal = |value: i128, scale: i8| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(vec![value])
                    .with_precision_and_scale(38, scale)
                    .unwrap(),
            )
        };
        let cases: [(ColumnKind, ArrayRef, &str); 4] = [
            (ColumnKind::Count, decimal(i128::MAX, 0), "64-bit"),
            (ColumnKind::Money, decimal(15, 1), "whole number"),
            (
                ColumnKind::Count,
                Arc::new(Float64Array::from(vec![1.5])),
                "1.5",
            ),
            (
                ColumnKind::Count,
                Arc::new(StringArray::from(vec!["x"])),
                "`x`",
            ),
        ];
        for (kind, column, expected) in cases {
            let error = result(&[kind])
                .push_batches(&[batch(vec![column])])
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
        let two = batch(vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["b"])),
        ]);
        let error = result(&[ColumnKind::Text])
            .push_batches(&[two])
            .unwrap_err();
        assert!(error.to_string().contains("2 columns"), "{error}");
    }

    #[test]
    fn json_puts_each_row_on_a_line_and_reads_back_as_the_result() {
        let mut result = QueryResult::new(
            vec![
                "tenant_id".into(),
                "cost_usd".into(),
                "cache_hit_rate".into(),
            ],
            vec![ColumnKind::Text, ColumnKind::Money, ColumnKind::Ratio],
        );
        result.rows = vec![
            vec![
                Cell::Text("a \"quoted\" tenant".into()),
                Cell::Money("1.5".parse().unwrap()),
                Cell::Number(0.25),
            ],
            vec![Cell::Null, Cell::Money("0".parse().unwrap()), Cell::Null],
        ];
        result.warnings = vec!["one".into(), "two".into()];
        let mut out = Vec::new();
        result.write_json(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "{",
                "  \"rows\": [",
                r#"    {"tenant_id":"a \"quoted\" tenant","cost_usd":"1.5","cache_hit_rate":0.25},"#,
                r#"    {"tenant_id":null,"cost_usd":"0","cache_hit_rate":null}"#,
                "  ],",
                r#"  "warnings": ["one","two"],"#,
                r#"  "unpriced": {"requests":0,"input_tokens":0,"output_tokens":0}"#,
                "}",
            ]
        );
        let read: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, serde_json::to_value(&result).unwrap());

        let empty = QueryResult::new(vec!["requests".into()], vec![ColumnKind::Count]);
        let mut out = Vec::new();
        empty.write_json(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("{\n  \"rows\": [],\n  \"warnings\": [],\n"),
            "{text}"
        );
        let read: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, serde_json::to_value(&empty).unwrap());
    }

    #[test]
    fn json_of_many_windows_keeps_every_row_in_order() {
        // More rows than one window of rendering, ending mid-chunk.
        let mut result = QueryResult::new(vec!["n".into()], vec![ColumnKind::Count]);
        result.rows = (0..150_001).map(|n| vec![Cell::Count(n)]).collect();
        let mut out = Vec::new();
        result.write_json(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("    {")).collect();
        assert_eq!(rows.len(), 150_001);
        assert_eq!(rows[0], r#"    {"n":0},"#);
        assert_eq!(rows[150_000], r#"    {"n":150000}"#);
        let read: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, serde_json::to_value(&result).unwrap());
    }

    #[test]
    fn batches_converted_together_equal_batches_converted_one_by_one() {
        let kinds = [ColumnKind::Text, ColumnKind::Count];
        let batches: Vec<RecordBatch> = (0..5)
            .map(|b| {
                let names: Vec<Option<String>> = (0..1000)
                    .map(|i| (i % 7 != 0).then(|| format!("t{b}-{i}")))
                    .collect();
                batch(vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(Int32Array::from_iter_values(
                        (0..1000).map(|i| b * 1000 + i),
                    )),
                ])
            })
            .collect();
        let mut one_by_one = result(&kinds);
        for batch in &batches {
            one_by_one
                .push_batches(std::slice::from_ref(batch))
                .unwrap();
        }
        let mut together = result(&kinds);
        together.push_batches(&batches).unwrap();
        assert_eq!(together.rows.len(), 5000);
        assert_eq!(together, one_by_one);
        assert_eq!(together.rows[4999][1], Cell::Count(4999));
    }
}
