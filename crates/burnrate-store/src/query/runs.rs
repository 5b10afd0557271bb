//! The runs overview: per value of one dimension, how many runs there were and what they
//! cost (in all, the median, the 99th percentile and the histogram's bins), and the costliest
//! runs.

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use serde::Serialize;

use super::bins::RunCostBin;
use super::result::Cell;
use super::spec::{Filter, Metric, Order, OrderKey, QuerySpec};
use crate::error::StoreError;
use crate::store::Store;

/// The runs of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGroup {
    /// The group's value of the dimension (`None`: calls without it).
    pub group: Option<String>,
    /// Runs with calls in the group.
    pub runs: u64,
    /// What the group's calls in runs cost.
    pub cost: Money,
    /// Median cost per run (nearest rank).
    pub p50: Option<Money>,
    /// 99th percentile cost per run (nearest rank).
    pub p99: Option<Money>,
}

/// One run in a ranking: its calls of one tenant and feature (a run whose calls have several
/// has a row for each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run.
    pub agent_run_id: String,
    /// Its tenant.
    pub tenant_id: Option<String>,
    /// Its feature.
    pub feature: Option<String>,
    /// Its calls.
    pub requests: u64,
    /// Tool calls asked for.
    pub tool_calls: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// What it cost.
    pub cost_usd: Money,
}

/// The runs in a spec's range and filters, per value of its first dimension (one group when
/// it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsOverview {
    /// Per group, costliest first (ties by group, unset first).
    pub groups: Vec<RunGroup>,
    /// Runs per group and cost bin ([`crate::query::bins`]), by group then bin.
    pub bins: Vec<RunCostBin>,
    /// The costliest runs, most first (ties by run, tenant and feature).
    pub top: Vec<RunSummary>,
}

/// The overview from three queries any backend answers: the groups' run metrics, the run
/// cost bins and the top runs grouped by run, tenant and feature.
pub fn overview_by_queries(
    store: &(impl Store + ?Sized),
    spec: &QuerySpec,
    top: usize,
) -> Result<RunsOverview, StoreError> {
    let mut base = spec.clone();
    base.group_by.truncate(1);
    base.bucket = None;
    base.order = None;
    base.top = None;
    base.filters.push(Filter::in_a_run());

    let mut per_group = base.clone();
    per_group.metrics = vec![
        Metric::Runs,
        Metric::CostUsd,
        Metric::CostPerRunP50,
        Metric::CostPerRunP99,
    ];
    let width = per_group.group_by.len();
    let groups = store
        .query(&per_group)?
        .rows
        .iter()
        .map(|row| {
            let group = if width == 0 { None } else { text(row.first()) };
            let metric = |i: usize| row.get(width + i);
            RunGroup {
                group,
                runs: metric(0).and_then(Cell::as_count).unwrap_or(0),
                cost: metric(1).and_then(Cell::as_money).unwrap_or(Money::ZERO),
                p50: metric(2).and_then(Cell::as_money),
                p99: metric(3).and_then(Cell::as_money),
            }
        })
        // A query without a dimension answers one row even when no run is in range.
        .filter(|group| group.runs > 0)
        .collect();

    let bins = store.run_cost_bins(&base)?;

    let mut ranked = base;
    ranked.group_by = vec![
        Dimension::Field(Field::AgentRun),
        Dimension::Field(Field::Tenant),
        Dimension::Field(Field::Feature),
    ];
    ranked.metrics = vec![
        Metric::CostUsd,
        Metric::Requests,
        Metric::ToolCalls,
        Metric::InputTokens,
        Metric::OutputTokens,
    ];
    ranked.top = Some(top);
    ranked.order = Some(Order {
        key: OrderKey::Metric(Metric::CostUsd),
        descending: true,
    });
    let count = |cell: Option<&Cell>| cell.and_then(Cell::as_count).unwrap_or(0);
    let top = store
        .query(&ranked)?
        .rows
        .iter()
        .map(|row| RunSummary {
            agent_run_id: text(row.first()).unwrap_or_default(),
            tenant_id: text(row.get(1)),
            feature: text(row.get(2)),
            cost_usd: row.get(3).and_then(Cell::as_money).unwrap_or(Money::ZERO),
            requests: count(row.get(4)),
            tool_calls: count(row.get(5)),
            input_tokens: count(row.get(6)),
            output_tokens: count(row.get(7)),
        })
        .collect();
    Ok(RunsOverview { groups, bins, top })
}

fn text(cell: Option<&Cell>) -> Option<String> {
    cell.and_then(Cell::as_text)
}
