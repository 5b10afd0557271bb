//! Agent roles: in multi-agent runs, the share of each run's cost taken by each agent name
//! and depth (coordinators often take 40–60% of a run's tokens).

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Cell, Filter, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// One agent role's part in the runs it took part in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleShare {
    /// The agent's name (`None`: calls of a run that named no agent).
    pub agent_name: Option<String>,
    /// Its depth (`span_depth`; `None` when not reported).
    pub depth: Option<i64>,
    /// Runs it took part in.
    pub runs: u64,
    /// What its calls cost.
    pub cost_usd: Money,
    /// Its cost over the whole cost of the runs it took part in.
    pub share_of_run_cost: Option<f64>,
    /// The median, over those runs, of its share of each run's cost (nearest rank).
    pub median_share: Option<f64>,
}

/// The roles of the runs in `[since, until)` matching `filters`, the largest share first.
pub fn agent_roles(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    filters: &[Filter],
) -> Result<Vec<RoleShare>, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec![
        Dimension::Field(Field::AgentRun),
        Dimension::Field(Field::AgentName),
        Dimension::Field(Field::SpanDepth),
    ];
    spec.metrics = vec![Metric::CostUsd];
    spec.filters = filters.to_vec();
    spec.filters.push(Filter {
        dimension: Dimension::Field(Field::AgentRun),
        negate: true,
        values: vec![String::new()],
    });
    let result = store.query(&spec)?;
    type Role = (Option<String>, Option<i64>);
    let mut run_totals: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut parts: BTreeMap<Role, Vec<(String, Decimal)>> = BTreeMap::new();
    for row in &result.rows {
        let [Cell::Text(run), name, depth, Cell::Money(cost)] = row.as_slice() else {
            continue;
        };
        let name = match name {
            Cell::Text(name) => Some(name.clone()),
            _ => None,
        };
        let depth = match depth {
            Cell::Count(depth) => Some(*depth),
            _ => None,
        };
        *run_totals.entry(run.clone()).or_default() += cost.as_decimal();
        parts
            .entry((name, depth))
            .or_default()
            .push((run.clone(), cost.as_decimal()));
    }
    let ratio =
        |part: Decimal, whole: Decimal| Money::from_decimal(part).ratio(Money::from_decimal(whole));
    let mut roles: Vec<RoleShare> = parts
        .into_iter()
        .map(|((agent_name, depth), runs)| {
            let cost: Decimal = runs.iter().map(|(_, cost)| *cost).sum();
            let whole: Decimal = runs.iter().map(|(run, _)| run_totals[run]).sum();
            let mut shares: Vec<f64> = runs
                .iter()
                .filter_map(|(run, cost)| ratio(*cost, run_totals[run]))
                .collect();
            shares.sort_by(f64::total_cmp);
            let median = (!shares.is_empty()).then(|| shares[shares.len().div_ceil(2) - 1]);
            RoleShare {
                agent_name,
                depth,
                runs: runs.len() as u64,
                cost_usd: Money::from_decimal(cost),
                share_of_run_cost: ratio(cost, whole),
                median_share: median,
            }
        })
        .collect();
    roles.sort_by(|a, b| {
        let share = |r: &RoleShare| r.share_of_run_cost.unwrap_or(0.0);
        share(b).total_cmp(&share(a))
    });
    Ok(roles)
}
