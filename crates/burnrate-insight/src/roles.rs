//! Agent roles: in multi-agent runs, the share of each run's cost taken by each agent name
//! and depth (coordinators often take 40–60% of a run's tokens).
//!
//! A run here is a whole run tree: sub-agents that report a run id of their own with their
//! parent's (`parent_run_id`) count in their top-level run, as do calls that share the
//! top-level run's id. Otherwise each sub-agent would be a run of its own, all its own cost.

use std::collections::{BTreeMap, HashMap};

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Cell, Filter, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// One agent role's part in the runs it took part in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleShare {
    /// The agent's name (`None`: calls of a run that named no agent).
    pub agent_name: Option<String>,
    /// Its depth (`span_depth`; `None` when not reported).
    pub depth: Option<i64>,
    /// Runs it took part in (run trees: see the module's documentation).
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
    spec.filters.push(Filter::in_a_run());
    let result = store.query(&spec)?;
    let parents = parent_links(store, since, until)?;
    let mut roots: HashMap<String, String> = HashMap::new();
    type Role = (Option<String>, Option<i64>);
    let mut run_totals: HashMap<String, Decimal> = HashMap::new();
    let mut parts: BTreeMap<Role, BTreeMap<String, Decimal>> = BTreeMap::new();
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
        let root = root_run(&parents, &mut roots, run);
        *run_totals.entry(root.clone()).or_default() += cost.as_decimal();
        *parts
            .entry((name, depth))
            .or_default()
            .entry(root)
            .or_default() += cost.as_decimal();
    }
    let ratio =
        |part: Decimal, whole: Decimal| Money::from_decimal(part).ratio(Money::from_decimal(whole));
    let mut roles: Vec<RoleShare> = parts
        .into_iter()
        .map(|((agent_name, depth), runs)| {
            let cost: Decimal = runs.values().sum();
            let whole: Decimal = runs.keys().map(|run| run_totals[run]).sum();
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

/// Each sub-agent run's parent, from every call naming one within a day of `[since, until)`,
/// whatever the report's filters: a tree whose middle run is of another feature, or made no
/// call within the range, is still one tree. A run that named several parents takes the
/// smallest, so the answer does not depend on the order rows come in.
fn parent_links(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<HashMap<String, String>, StoreError> {
    let margin = TimeDelta::days(1);
    let mut spec = QuerySpec::new(since - margin, until + margin);
    spec.group_by = vec![
        Dimension::Field(Field::AgentRun),
        Dimension::Field(Field::ParentRun),
    ];
    spec.metrics = vec![Metric::Requests];
    spec.filters = vec![Filter::in_a_run(), Filter::is_set(Field::ParentRun)];
    let mut parents: HashMap<String, String> = HashMap::new();
    for row in store.query(&spec)?.rows {
        let [Cell::Text(run), Cell::Text(parent), _] = row.as_slice() else {
            continue;
        };
        if parent == run {
            continue;
        }
        parents
            .entry(run.clone())
            .and_modify(|known| {
                if parent < known {
                    known.clone_from(parent);
                }
            })
            .or_insert_with(|| parent.clone());
    }
    Ok(parents)
}

/// The top-level run of `run`: its parent's, its parent's parent's and so on, up to a run
/// with no parent in `parents`. Ids that loop back (bad data) resolve to the loop's smallest,
/// whichever of its runs the walk starts from. `roots` keeps every answer, so each run's
/// links are walked once.
fn root_run(
    parents: &HashMap<String, String>,
    roots: &mut HashMap<String, String>,
    run: &str,
) -> String {
    let mut path = vec![run.to_owned()];
    let root = loop {
        let last = &path[path.len() - 1];
        if let Some(root) = roots.get(last) {
            break root.clone();
        }
        let Some(parent) = parents.get(last) else {
            break last.clone();
        };
        if let Some(start) = path.iter().position(|seen| seen == parent) {
            break path[start..].iter().min().unwrap_or(parent).clone();
        }
        path.push(parent.clone());
    };
    for node in path {
        roots.insert(node, root.clone());
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parents(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(run, parent)| ((*run).to_owned(), (*parent).to_owned()))
            .collect()
    }

    /// `root_run` from a fresh memo.
    fn root(parents: &HashMap<String, String>, run: &str) -> String {
        root_run(parents, &mut HashMap::new(), run)
    }

    #[test]
    fn a_run_resolves_to_the_top_of_its_tree() {
        let parents = parents(&[("sub", "top"), ("subsub", "sub"), ("orphan", "gone")]);
        assert_eq!(root(&parents, "top"), "top");
        assert_eq!(root(&parents, "sub"), "top");
        assert_eq!(root(&parents, "subsub"), "top");
        // A parent with no calls in the range still names the tree.
        assert_eq!(root(&parents, "orphan"), "gone");
        assert_eq!(root(&parents, "alone"), "alone");
    }

    #[test]
    fn runs_that_loop_back_share_one_root() {
        let parents = parents(&[("b", "c"), ("c", "a"), ("a", "b"), ("d", "b")]);
        for run in ["a", "b", "c", "d"] {
            assert_eq!(root(&parents, run), "a", "{run}");
        }
        // And the same from one memo, in any order.
        let mut roots = HashMap::new();
        for run in ["d", "c", "b", "a"] {
            assert_eq!(root_run(&parents, &mut roots, run), "a", "{run}");
        }
    }
}
