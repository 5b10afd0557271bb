//! The long tail of spend over any dimension: who holds what share, the smallest set of
//! members that holds half and four fifths of it, and the Gini coefficient.

use burnrate_model::Money;
use burnrate_model::dimension::Dimension;
use burnrate_store::{Cell, Filter, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::series::dollars;

/// The member that stands for calls without the dimension set: their spend is part of
/// the tail too.
pub const NOT_SET: &str = "(not set)";

/// One member's spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The dimension's value.
    pub name: String,
    /// Spend over the range.
    pub cost_usd: Money,
    /// Share of the total.
    pub share: f64,
    /// Share of the total held by this member and every costlier one.
    pub cumulative: f64,
}

/// The Pareto table of one dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LongTail {
    /// The dimension (`tenant_id`).
    pub dimension: String,
    /// Members, costliest first.
    pub members: Vec<Member>,
    /// Total spend.
    pub total_usd: Money,
    /// The fewest members holding at least half of the spend.
    pub members_for_half: usize,
    /// The fewest members holding at least 80% of the spend.
    pub members_for_80: usize,
    /// Gini coefficient of spend across members (0: equal, → 1: one member holds all).
    pub gini: f64,
}

impl LongTail {
    /// From (member, cost) pairs in any order.
    pub fn from_costs(dimension: &str, costs: Vec<(String, Money)>) -> LongTail {
        let mut costs = costs;
        costs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: Money = costs.iter().map(|(_, cost)| *cost).sum();
        let total_f = dollars(total);
        let mut cumulative = 0.0;
        let members: Vec<Member> = costs
            .into_iter()
            .map(|(name, cost)| {
                let share = if total_f > 0.0 {
                    dollars(cost) / total_f
                } else {
                    0.0
                };
                cumulative += share;
                Member {
                    name,
                    cost_usd: cost,
                    share,
                    cumulative,
                }
            })
            .collect();
        let holding = |part: f64| {
            members
                .iter()
                .position(|member| member.cumulative >= part - 1e-12)
                .map_or(members.len(), |index| index + 1)
        };
        LongTail {
            dimension: dimension.to_string(),
            members_for_half: holding(0.5),
            members_for_80: holding(0.8),
            gini: gini(&members),
            members,
            total_usd: total,
        }
    }

    /// The sentence an account team reads: "6 of 40 tenants — 15% of the book — consume
    /// 57% of the token spend".
    pub fn sentence(&self) -> String {
        let n = self.members.len();
        if n == 0 || self.total_usd <= Money::ZERO {
            return format!(
                "no {} spent anything in this range",
                plural(&self.dimension)
            );
        }
        let k = self.members_for_half;
        let held = self
            .members
            .get(k - 1)
            .map_or(0.0, |member| member.cumulative);
        format!(
            "{k} of {n} {} — {:.0}% of the book — consume {:.0}% of the token spend (Gini {:.2})",
            plural(&self.dimension),
            k as f64 * 100.0 / n as f64,
            held * 100.0,
            self.gini
        )
    }
}

fn plural(dimension: &str) -> String {
    let noun = dimension.strip_suffix("_id").unwrap_or(dimension);
    format!("{noun}s")
}

/// Gini over costs (members sorted costliest first).
fn gini(members: &[Member]) -> f64 {
    let n = members.len() as f64;
    let total: f64 = members.iter().map(|member| dollars(member.cost_usd)).sum();
    if members.len() < 2 || total <= 0.0 {
        return 0.0;
    }
    // Ascending order: rank i (1-based) weighs the i-th smallest.
    let weighted: f64 = members
        .iter()
        .rev()
        .enumerate()
        .map(|(i, member)| (i as f64 + 1.0) * dollars(member.cost_usd))
        .sum();
    (2.0 * weighted) / (n * total) - (n + 1.0) / n
}

/// The long tail of `dimension` over `[since, until)` among the calls matching `filters`,
/// from the store.
pub fn long_tail(
    store: &dyn Store,
    dimension: &Dimension,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    filters: &[Filter],
) -> Result<LongTail, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.filters = filters.to_vec();
    spec.group_by = vec![dimension.clone()];
    spec.metrics = vec![Metric::CostUsd];
    let result = store.query(&spec)?;
    let costs = result
        .rows
        .iter()
        .filter_map(|row| match (row.first(), row.get(1)) {
            (Some(Cell::Text(name)), Some(Cell::Money(cost))) => Some((name.clone(), *cost)),
            (Some(Cell::Null), Some(Cell::Money(cost))) => Some((NOT_SET.to_owned(), *cost)),
            _ => None,
        })
        .collect();
    Ok(LongTail::from_costs(&dimension.to_string(), costs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn usd(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn a_concentrated_book() {
        // 6 of 40 tenants hold 57 %: six at 9.5 each, 34 at 43 / 34 each.
        let mut costs: Vec<(String, Money)> =
            (0..6).map(|i| (format!("big{i}"), usd("9.5"))).collect();
        costs.extend((0..34).map(|i| (format!("small{i:02}"), usd("1.264705882352941"))));
        let tail = LongTail::from_costs("tenant_id", costs);
        assert_eq!(tail.members.len(), 40);
        assert_eq!(tail.members_for_half, 6);
        assert!(
            tail.sentence()
                .starts_with("6 of 40 tenants — 15% of the book — consume 57% of the token spend")
        );
        assert!(tail.members_for_80 > 6 && tail.members_for_80 < 40);
        assert!(tail.gini > 0.4 && tail.gini < 0.6, "{}", tail.gini);
    }

    #[test]
    fn an_equal_book_has_no_tail() {
        let costs = (0..10).map(|i| (format!("t{i}"), usd("2"))).collect();
        let tail = LongTail::from_costs("tenant_id", costs);
        assert_eq!(tail.members_for_half, 5);
        assert_eq!(tail.members_for_80, 8);
        assert!(tail.gini.abs() < 1e-9);
        let one = LongTail::from_costs("feature", vec![("a".into(), usd("3"))]);
        assert_eq!(one.members_for_half, 1);
        assert_eq!(one.gini, 0.0);
        let none = LongTail::from_costs("feature", Vec::new());
        assert_eq!(none.sentence(), "no features spent anything in this range");
    }
}
