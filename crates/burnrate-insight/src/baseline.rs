//! Rolling baselines: a member's value in a window (a day, or one hour of it) against the same
//! window on each of the days before, with mean, standard deviation and z-score. Computed from
//! store queries bucketed by day or hour, for any dimension (tenant, route, feature, model).

use burnrate_model::dimension::Dimension;
use burnrate_store::{Bucket, Metric, Store, StoreError};
use chrono::{Days, NaiveDate, TimeDelta};
use serde::Serialize;

use crate::series::{bucketed, start_of};

/// The window a baseline compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A whole UTC day against the previous days.
    Day,
    /// One UTC hour of the day (0-23) against the same hour of the previous days, so a busy
    /// morning is compared with other mornings, not with nights.
    Hour(u32),
}

/// One member's value in the window against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// The member (`acme`, `/api/triage`, `gpt-4.1`).
    pub member: String,
    /// Its value in the window.
    pub value: f64,
    /// Mean over the baseline days (days without data count as zero).
    pub mean: f64,
    /// Population standard deviation over the baseline days.
    pub stddev: f64,
    /// `(value - mean) / stddev`; `None` when the baseline does not vary.
    pub z: Option<f64>,
    /// The baseline's values, the day before first.
    pub history: Vec<f64>,
}

/// Mean and population standard deviation.
pub fn mean_and_deviation(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

/// Every member of `dimension` with `metric` in `window` of `day` or any of the `days` days
/// before it, against its rolling `days`-day baseline, highest z first.
pub fn baselines(
    store: &dyn Store,
    dimension: &Dimension,
    metric: Metric,
    day: NaiveDate,
    window: Window,
    days: u64,
) -> Result<Vec<Baseline>, StoreError> {
    let first = day - Days::new(days);
    // The window's bucket, where it starts within a day, and its length.
    let (bucket, offset, length) = match window {
        Window::Day => (Bucket::Day, TimeDelta::zero(), TimeDelta::days(1)),
        Window::Hour(hour) => (
            Bucket::Hour,
            TimeDelta::hours(i64::from(hour.min(23))),
            TimeDelta::hours(1),
        ),
    };
    let since = start_of(first) + offset;
    let until = start_of(day) + offset + length;
    let series = bucketed(store, dimension, metric, bucket, since, until)?;
    let mut baselines: Vec<Baseline> = series
        .into_iter()
        .map(|(member, values)| {
            let at = |back: u64| start_of(day - Days::new(back)) + offset;
            let on = |back: u64| values.get(&at(back)).copied().unwrap_or(0.0);
            let history: Vec<f64> = (1..=days).map(on).collect();
            let (mean, stddev) = mean_and_deviation(&history);
            let value = on(0);
            Baseline {
                member,
                value,
                mean,
                stddev,
                // Rounding leaves a constant series a deviation of ~1e-17: not variation.
                z: (stddev > mean.abs() * 1e-9).then(|| (value - mean) / stddev),
                history,
            }
        })
        .collect();
    baselines.sort_by(|a, b| {
        let z = |b: &Baseline| b.z.unwrap_or(f64::NEG_INFINITY);
        z(b).total_cmp(&z(a)).then(a.member.cmp(&b.member))
    });
    Ok(baselines)
}
