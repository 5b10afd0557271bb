//! Per-member daily series from the store: the shape most detectors start from.

use std::collections::BTreeMap;

use burnrate_model::dimension::Dimension;
use burnrate_store::{Bucket, Cell, DuckStore, Metric, QuerySpec, StoreError};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

/// The first instant of `day`, UTC.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// One value per member and day over `[first, last]`, for one metric.
pub struct Daily {
    /// Member → day → value (days without data are absent).
    pub values: BTreeMap<String, BTreeMap<NaiveDate, f64>>,
}

impl Daily {
    /// The member's value on `day`, 0 when it had none.
    pub fn on(&self, member: &str, day: NaiveDate) -> f64 {
        self.values
            .get(member)
            .and_then(|days| days.get(&day))
            .copied()
            .unwrap_or(0.0)
    }
}

/// A cell as a number (money in dollars).
pub fn number(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Count(count) => Some(*count as f64),
        Cell::Money(money) => Some(money.to_femto() as f64 / 1e15),
        Cell::Number(number) => Some(*number),
        Cell::Null | Cell::Text(_) => None,
    }
}

/// `metric` per value of `dimension` and day, over the days `first..=last`.
pub fn daily(
    store: &DuckStore,
    dimension: &Dimension,
    metric: Metric,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Daily, StoreError> {
    let mut spec = QuerySpec::new(start_of(first), start_of(last + Days::new(1)));
    spec.group_by = vec![dimension.clone()];
    spec.bucket = Some(Bucket::Day);
    spec.metrics = vec![metric];
    let result = store.query(&spec)?;
    let mut values: BTreeMap<String, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for row in &result.rows {
        let (Some(Cell::Text(member)), Some(Cell::Text(bucket)), Some(value)) =
            (row.first(), row.get(1), row.get(2).and_then(number))
        else {
            continue;
        };
        let Ok(day) = bucket.parse::<DateTime<Utc>>() else {
            continue;
        };
        values
            .entry(member.clone())
            .or_default()
            .insert(day.date_naive(), value);
    }
    Ok(Daily { values })
}

/// Rows of [`totals`]: the group's values, then one value per metric.
pub type Rows = Vec<(Vec<String>, Vec<Option<f64>>)>;

/// Several metrics per value of `dimension` (and optionally a second one) over a range.
pub fn totals(
    store: &DuckStore,
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
