//! The distribution of what runs cost: runs per cost bin, four bins per power of ten of
//! dollars, per value of one dimension.

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};

use super::result::{Cell, QueryResult};
use super::spec::{Filter, Metric, QuerySpec};

/// Bins per power of ten of dollars.
pub const BINS_PER_DECADE: f64 = 4.0;

/// The runs of one group whose cost falls in one bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCostBin {
    /// The group's value of the spec's dimension (`None`: calls without it).
    pub group: Option<String>,
    /// The bin, `⌊log10(dollars) × 4⌋` ([`bin_of`]); `None` for runs that cost nothing.
    pub bin: Option<i64>,
    /// Runs in it.
    pub runs: u64,
}

/// The bin of a run costing `cost`: `⌊log10(dollars) × 4⌋`, `None` when it cost nothing.
pub fn bin_of(cost: Money) -> Option<i64> {
    let dollars = cost.to_femto() as f64 / 1e15;
    (dollars > 0.0).then(|| (dollars.log10() * BINS_PER_DECADE).floor() as i64)
}

/// The spec whose rows are each run's cost in the group: `spec`'s first dimension (if any),
/// then the run, over the calls in a run.
pub fn per_run_spec(spec: &QuerySpec) -> QuerySpec {
    let mut each = spec.clone();
    each.group_by.truncate(1);
    each.group_by.push(Dimension::Field(Field::AgentRun));
    each.metrics = vec![Metric::CostUsd];
    each.filters.push(Filter::in_a_run());
    each.bucket = None;
    each.order = None;
    each.top = None;
    each
}

/// Counts the runs per group and bin in the rows of [`per_run_spec`]: (group, run, cost), or
/// (run, cost) for a spec without a dimension.
pub fn bins_of_runs(per_run: &QueryResult) -> Vec<RunCostBin> {
    let mut counts: std::collections::BTreeMap<(Option<String>, Option<i64>), u64> =
        std::collections::BTreeMap::new();
    for row in &per_run.rows {
        let group = match row.as_slice() {
            [Cell::Text(text), _, _] => Some(text.clone()),
            [Cell::Count(n), _, _] => Some(n.to_string()),
            _ => None,
        };
        let cost = row.last().and_then(Cell::as_money).unwrap_or(Money::ZERO);
        *counts.entry((group, bin_of(cost))).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((group, bin), runs)| RunCostBin { group, bin, runs })
        .collect()
}
