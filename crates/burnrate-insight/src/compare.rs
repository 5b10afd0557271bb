//! The cost regression gate: two slices of one feature (a baseline and a candidate, such as
//! two prompt versions) compared on cost per run, tokens per input layer and cache hit rate,
//! so a change that bloats cost fails a pipeline before it ships.

use burnrate_model::Dimension;
use burnrate_model::dimension::Field;
use burnrate_store::{Cell, Filter, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What is compared, and which way is worse.
const CHECKED: &[(Metric, Better)] = &[
    (Metric::CostPerRunP50, Better::Lower),
    (Metric::CostPerRunP99, Better::Lower),
    (Metric::PromptTokensPerCall, Better::Lower),
    (Metric::ToolTokensPerCall, Better::Lower),
    (Metric::MemoryTokensPerCall, Better::Lower),
    (Metric::CacheHitRate, Better::Higher),
];

/// Which direction of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Less is better (cost, tokens).
    Lower,
    /// More is better (cache hit rate).
    Higher,
}

/// One metric on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The metric's name.
    pub metric: &'static str,
    /// Which way is better.
    pub better: Better,
    /// The baseline's value (`None`: it has none, e.g. no layer split).
    pub baseline: Option<f64>,
    /// The candidate's value.
    pub candidate: Option<f64>,
    /// How much worse the candidate is, relative to the baseline (0.12 = 12% worse; negative
    /// is better); `None` when either side has no value or the baseline is zero.
    pub worse_by: Option<f64>,
    /// True when `worse_by` is above the allowed regression.
    pub regressed: bool,
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing is worse than allowed.
    Pass,
    /// At least one metric is worse than allowed.
    Regressed,
    /// A side has fewer runs than the minimum: no judgement.
    TooFewRuns,
}

/// Both slices compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Agent runs on the baseline side.
    pub baseline_runs: u64,
    /// Agent runs on the candidate side.
    pub candidate_runs: u64,
    /// The fewest runs a side needs for a judgement.
    pub min_runs: u64,
    /// The largest regression allowed (0.10 = 10%).
    pub max_regression: f64,
    /// Every metric compared.
    pub checks: Vec<Check>,
    /// The answer.
    pub verdict: Verdict,
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Start of the range.
    pub since: DateTime<Utc>,
    /// End of the range (exclusive).
    pub until: DateTime<Utc>,
    /// The feature both slices belong to.
    pub feature: String,
    /// The baseline slice (`prompt_version=v2.3`).
    pub baseline: Filter,
    /// The candidate slice (`prompt_version=v2.4`).
    pub candidate: Filter,
    /// The largest regression allowed (0.10 = 10%).
    pub max_regression: f64,
    /// The fewest runs each side needs.
    pub min_runs: u64,
}

/// A metric's value as a number (money in dollars).
fn number(cell: Option<&Cell>) -> Option<f64> {
    match cell? {
        Cell::Count(count) => Some(*count as f64),
        Cell::Number(number) => Some(*number),
        Cell::Money(money) => rust_decimal::prelude::ToPrimitive::to_f64(&money.as_decimal()),
        Cell::Null | Cell::Text(_) => None,
    }
}

/// Compares the two slices.
pub fn compare(store: &dyn Store, gate: &Gate) -> Result<Comparison, StoreError> {
    let side = |slice: &Filter| {
        let mut metrics = vec![Metric::Runs];
        metrics.extend(CHECKED.iter().map(|(metric, _)| *metric));
        let spec = QuerySpec {
            since: gate.since,
            until: gate.until,
            bucket: None,
            group_by: Vec::new(),
            filters: vec![
                Filter {
                    dimension: Dimension::Field(Field::Feature),
                    negate: false,
                    values: vec![gate.feature.clone()],
                },
                slice.clone(),
            ],
            metrics,
            order: None,
            top: None,
        };
        store.query(&spec)
    };
    let (baseline, candidate) = (side(&gate.baseline)?, side(&gate.candidate)?);
    let runs = |result: &burnrate_store::QueryResult| {
        number(result.get(0, Metric::Runs.as_str())).unwrap_or(0.0) as u64
    };
    let checks: Vec<Check> = CHECKED
        .iter()
        .map(|(metric, better)| {
            let a = number(baseline.get(0, metric.as_str()));
            let b = number(candidate.get(0, metric.as_str()));
            let worse_by = match (a, b) {
                (Some(a), Some(b)) if a != 0.0 => Some(match better {
                    Better::Lower => (b - a) / a,
                    Better::Higher => (a - b) / a,
                }),
                _ => None,
            };
            Check {
                metric: metric.as_str(),
                better: *better,
                baseline: a,
                candidate: b,
                worse_by,
                regressed: worse_by.is_some_and(|w| w > gate.max_regression),
            }
        })
        .collect();
    let (baseline_runs, candidate_runs) = (runs(&baseline), runs(&candidate));
    let verdict = if baseline_runs.min(candidate_runs) < gate.min_runs {
        Verdict::TooFewRuns
    } else if checks.iter().any(|check| check.regressed) {
        Verdict::Regressed
    } else {
        Verdict::Pass
    };
    Ok(Comparison {
        baseline_runs,
        candidate_runs,
        min_runs: gate.min_runs,
        max_regression: gate.max_regression,
        checks,
        verdict,
    })
}
