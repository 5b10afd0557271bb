//! Cohort unit economics: tenants grouped by their contract's tier or signup month, and per
//! cohort and calendar month the cost per tenant, per seat (a user seen), per successful
//! outcome, and the margin.

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_store::{Store, StoreError};
use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

use crate::margins::{Contract, SegmentRules, margins};

/// What tenants are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CohortBy {
    /// The contract's `tier`.
    Tier,
    /// The contract's `signup` month.
    Signup,
}

/// One cohort in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortMonth {
    /// The cohort (`(none)` for tenants without the attribute or a contract).
    pub cohort: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Tenants with calls or a contract that month.
    pub tenants: u64,
    /// Users seen.
    pub seats: u64,
    /// Successful outcomes.
    pub outcomes: u64,
    /// Model cost.
    pub cost_usd: Money,
    /// Revenue under the contracts.
    pub revenue_usd: Money,
    /// Cost per tenant.
    pub cost_per_tenant_usd: Option<Money>,
    /// Cost per seat.
    pub cost_per_seat_usd: Option<Money>,
    /// Cost per successful outcome.
    pub cost_per_outcome_usd: Option<Money>,
    /// (revenue − cost) / revenue.
    pub margin: Option<f64>,
}

/// The cohorts of every calendar month from `first` to `last` (any days in them), oldest
/// month first, cohorts by name.
pub fn cohorts(
    store: &dyn Store,
    contracts: &[Contract],
    by: CohortBy,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<CohortMonth>, StoreError> {
    let cohort_of: BTreeMap<&str, String> = contracts
        .iter()
        .map(|c| {
            let label = match by {
                CohortBy::Tier => c.tier.clone(),
                CohortBy::Signup => c.signup.clone(),
            };
            (c.tenant.as_str(), label.unwrap_or_else(|| "(none)".into()))
        })
        .collect();
    let at = |day: NaiveDate| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let mut rows = Vec::new();
    let mut month = first.with_day(1).unwrap_or(first);
    while month <= last {
        let next = month + Months::new(1);
        let result = margins(
            store,
            contracts,
            &[],
            at(month),
            at(next),
            SegmentRules::default(),
        )?;
        let mut groups: BTreeMap<String, CohortMonth> = BTreeMap::new();
        for tenant in &result.tenants {
            if tenant.requests == 0 && tenant.revenue_usd == Money::ZERO {
                continue;
            }
            let cohort = cohort_of
                .get(tenant.tenant.as_str())
                .cloned()
                .unwrap_or_else(|| "(none)".into());
            let row = groups.entry(cohort.clone()).or_insert_with(|| CohortMonth {
                cohort,
                month: month.format("%Y-%m").to_string(),
                tenants: 0,
                seats: 0,
                outcomes: 0,
                cost_usd: Money::ZERO,
                revenue_usd: Money::ZERO,
                cost_per_tenant_usd: None,
                cost_per_seat_usd: None,
                cost_per_outcome_usd: None,
                margin: None,
            });
            row.tenants += 1;
            row.seats += tenant.users;
            row.outcomes += tenant.outcomes;
            row.cost_usd += tenant.cost_usd;
            row.revenue_usd += tenant.revenue_usd;
        }
        for mut row in groups.into_values() {
            let per = |count: u64| {
                (count > 0).then(|| {
                    Money::from_decimal(
                        row.cost_usd.as_decimal() / rust_decimal::Decimal::from(count),
                    )
                })
            };
            row.cost_per_tenant_usd = per(row.tenants);
            row.cost_per_seat_usd = per(row.seats);
            row.cost_per_outcome_usd = per(row.outcomes);
            row.margin = (row.revenue_usd - row.cost_usd).ratio(row.revenue_usd);
            rows.push(row);
        }
        month = next;
    }
    Ok(rows)
}
