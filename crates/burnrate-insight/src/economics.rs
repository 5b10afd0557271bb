//! Cache economics: what the calls cost, what a dashboard that prices every input token at the
//! list input price would have said, and the dollars caching saved.

use burnrate_model::Money;
use burnrate_model::dimension::Dimension;
use burnrate_store::{Cell, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The cache economics of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheEconomics {
    /// The group's value (`None` for the whole range).
    pub group: Option<String>,
    /// What the calls cost, cache reads and writes priced apart.
    pub cost_usd: Money,
    /// Every input token at the list input price, every output token at the output price.
    pub naive_cost_usd: Money,
    /// `naive - real`: what caching saved (negative when cache writes cost more than reads
    /// saved).
    pub saved_usd: Money,
    /// How much a naive dashboard over-reports: `naive / real - 1`.
    pub over_report: Option<f64>,
    /// Share of input tokens read from the cache.
    pub cache_hit_rate: Option<f64>,
}

/// Cache economics over `[since, until)`, for the whole range or per value of `group_by`.
pub fn cache_economics(
    store: &dyn Store,
    group_by: Option<&Dimension>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<CacheEconomics>, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = group_by.into_iter().cloned().collect();
    spec.metrics = vec![Metric::CostUsd, Metric::NaiveCostUsd, Metric::CacheHitRate];
    let result = store.query(&spec)?;
    let offset = spec.group_by.len();
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            let group = match row.first() {
                Some(Cell::Text(name)) if offset == 1 => Some(name.clone()),
                _ => None,
            };
            let money = |index: usize| match row.get(offset + index) {
                Some(Cell::Money(money)) => Some(*money),
                _ => None,
            };
            let (cost, naive) = (money(0)?, money(1)?);
            let real = cost.to_femto();
            Some(CacheEconomics {
                group,
                cost_usd: cost,
                naive_cost_usd: naive,
                saved_usd: Money::from_femto(naive.to_femto() - real).unwrap_or(Money::ZERO),
                over_report: (real > 0).then(|| naive.to_femto() as f64 / real as f64 - 1.0),
                cache_hit_rate: match row.get(offset + 2) {
                    Some(Cell::Number(rate)) => Some(*rate),
                    _ => None,
                },
            })
        })
        .collect())
}
