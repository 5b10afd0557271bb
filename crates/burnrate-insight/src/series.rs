//! Per-member series and totals from the store: the shapes the detectors start from.

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::Dimension;
use burnrate_store::{Bucket, Cell, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};

/// The first instant of `day`, UTC.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Money as a float of dollars, for statistics and display (never for sums of money).
pub fn dollars(money: Money) -> f64 {
    money.to_femto() as f64 / 1e15
}

/// The first day of `day`'s month and the first day of the month after.
pub fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (first, next)
}

/// A cell as a number (money in dollars).
pub fn number(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Count(count) => Some(*count as f64),
        Cell::Money(money) => Some(dollars(*money)),
        Cell::Number(number) => Some(*number),
        Cell::Null | Cell::Text(_) => None,
    }
}

/// `metric` per value of `dimension` and time bucket over `[since, until)`: member → bucket
/// start → value (buckets without data are absent).
pub fn bucketed(
    store: &dyn Store,
    dimension: &Dimension,
    metric: Metric,
    bucket: Bucket,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<BTreeMap<String, BTreeMap<DateTime<Utc>, f64>>, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec![dimension.clone()];
    spec.bucket = Some(bucket);
    spec.metrics = vec![metric];
    let result = store.query(&spec)?;
    let mut values: BTreeMap<String, BTreeMap<DateTime<Utc>, f64>> = BTreeMap::new();
    for row in &result.rows {
        let (Some(Cell::Text(member)), Some(Cell::Text(bucket)), Some(value)) =
            (row.first(), row.get(1), row.get(2).and_then(number))
        else {
            continue;
        };
        let Ok(at) = bucket.parse::<DateTime<Utc>>() else {
            continue;
        };
        values.entry(member.clone()).or_default().insert(at, value);
    }
    Ok(values)
}

/// Per group: its metrics in an earlier window and in a later one.
pub type Windows = BTreeMap<Vec<String>, [Vec<Option<f64>>; 2]>;

/// Rows of [`totals`]: the group's values, then one value per metric.
pub type Rows = Vec<(Vec<String>, Vec<Option<f64>>)>;

/// Several metrics per value of `dimension` (and optionally a second one) over a range.
pub fn totals(
    store: &dyn Store,
    group_by: &[Dimension],
    metrics: &[Metric],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Rows, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = group_by.to_vec();
    spec.metrics = metrics.to_vec();
    let result = store.query(&spec)?;
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let keys: Option<Vec<String>> = row
                .get(..group_by.len())?
                .iter()
                .map(|cell| match cell {
                    Cell::Text(text) => Some(text.clone()),
                    _ => None,
                })
                .collect();
            let values = row.get(group_by.len()..)?.iter().map(number).collect();
            Some((keys?, values))
        })
        .collect())
}

/// Several metrics per group over two windows, joined by group.
pub fn windows(
    store: &dyn Store,
    group_by: &[Dimension],
    metrics: &[Metric],
    ranges: [(DateTime<Utc>, DateTime<Utc>); 2],
) -> Result<Windows, StoreError> {
    let mut joined = Windows::new();
    for (index, (since, until)) in ranges.into_iter().enumerate() {
        for (keys, values) in totals(store, group_by, metrics, since, until)? {
            joined.entry(keys).or_default()[index] = values;
        }
    }
    Ok(joined)
}

/// Several metrics per group over the week ending on `day` (later window) and the week
/// before it (earlier window).
pub fn week_over_week(
    store: &dyn Store,
    group_by: &[Dimension],
    metrics: &[Metric],
    day: NaiveDate,
) -> Result<Windows, StoreError> {
    let end = day + Days::new(1);
    windows(
        store,
        group_by,
        metrics,
        [
            (start_of(end - Days::new(14)), start_of(end - Days::new(7))),
            (start_of(end - Days::new(7)), start_of(end)),
        ],
    )
}
