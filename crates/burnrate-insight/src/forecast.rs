//! Month-end forecast per tenant.
//!
//! Method: month-to-date spend plus the mean daily spend of the last 7 days (days without
//! spend count as zero) times the days left in the month. The band is ±1.96 standard
//! deviations of that sum, treating the days left as independent draws from the last 7 (a
//! 95% band under that assumption; it widens with the days left and with how much the last
//! week varied).

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Bucket, Metric, Store, StoreError};
use chrono::{Days, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::baseline::mean_and_deviation;
use crate::series::{bucketed, month_of, start_of, totals};

/// Days the trend is taken over.
pub const TREND_DAYS: u64 = 7;

/// One tenant's month-end forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// The tenant.
    pub tenant: String,
    /// Spend from the first of the month to the end of the day looked at.
    pub month_to_date_usd: f64,
    /// Mean daily spend over the last 7 days.
    pub daily_trend_usd: f64,
    /// Projected spend for the whole month.
    pub projected_usd: f64,
    /// Lower end of the band.
    pub low_usd: f64,
    /// Upper end of the band.
    pub high_usd: f64,
    /// The tenant's monthly budget, if one is configured.
    pub budget_usd: Option<Money>,
    /// Whether the projection passes the budget.
    pub over_budget: bool,
}

/// Forecasts for every tenant with spend this month, as of the end of `day`; `budgets` maps
/// tenants to their monthly budget. Costliest projection first.
pub fn forecasts(
    store: &dyn Store,
    day: NaiveDate,
    budgets: &BTreeMap<String, Money>,
) -> Result<Vec<Forecast>, StoreError> {
    let (first, next_month) = month_of(day);
    let end = day + Days::new(1);
    let days_left = (next_month - end).num_days().max(0) as f64;
    let tenant = Dimension::Field(Field::Tenant);
    let to_date = totals(
        store,
        std::slice::from_ref(&tenant),
        &[Metric::CostUsd],
        start_of(first),
        start_of(end),
    )?;
    let recent = bucketed(
        store,
        &tenant,
        Metric::CostUsd,
        Bucket::Day,
        start_of(end - Days::new(TREND_DAYS)),
        start_of(end),
    )?;
    let mut forecasts: Vec<Forecast> = to_date
        .into_iter()
        .filter_map(|(keys, values)| {
            let tenant = keys.into_iter().next()?;
            let month_to_date = values.first().copied().flatten().unwrap_or(0.0);
            let days: Vec<f64> = (1..=TREND_DAYS)
                .map(|back| {
                    recent
                        .get(&tenant)
                        .and_then(|series| series.get(&start_of(end - Days::new(back))))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            let (trend, deviation) = mean_and_deviation(&days);
            let projected = month_to_date + trend * days_left;
            let spread = 1.96 * deviation * days_left.sqrt();
            let budget = budgets.get(&tenant).or_else(|| budgets.get("*")).copied();
            let over = budget.is_some_and(|budget| {
                budget
                    .as_decimal()
                    .to_f64()
                    .is_some_and(|limit| projected > limit)
            });
            Some(Forecast {
                month_to_date_usd: month_to_date,
                daily_trend_usd: trend,
                projected_usd: projected,
                low_usd: (projected - spread).max(month_to_date),
                high_usd: projected + spread,
                budget_usd: budget,
                over_budget: over,
                tenant,
            })
        })
        .collect();
    forecasts.sort_by(|a, b| {
        b.projected_usd
            .total_cmp(&a.projected_usd)
            .then(a.tenant.cmp(&b.tenant))
    });
    Ok(forecasts)
}
