//! The named reports on ClickHouse: the query-spec ones through [`ClickHouse::query`], the
//! outcomes and coverage reports in their own SQL (the DuckDB plans in 18.16's forms).

use super::ClickHouse;
use crate::error::StoreError;
use crate::query::result::{ColumnKind, QueryResult};
use crate::reports::{Report, ReportParams};

/// A coverage part: its name and the flag expression over the `flags` columns.
const COVERAGE_PARTS: &[(&str, &str)] = &[
    ("tenant_id", "t"),
    ("user_id", "u"),
    ("feature", "f"),
    ("any", "greatest(greatest(t, u), f)"),
    ("span_without_model", "mm"),
    ("span_without_usage", "mu"),
    ("span_without_cache_detail", "mc"),
];

impl ClickHouse {
    /// Runs a named report.
    pub fn report(&self, report: Report, params: &ReportParams) -> Result<QueryResult, StoreError> {
        if let Some(spec) = report.spec(params) {
            return self.query(&spec);
        }
        let spec = params.base_spec()?;
        let pricing = self.pricing()?;
        let filter = super::sql::where_clause(&spec);
        let (statement, columns) = match report {
            Report::Outcomes => {
                // Per outcome name and feature: the runs that reached it (a call outside any
                // run is its own run), their successes and what the runs cost.
                let run = "coalesce(agent_run_id, toString(id))";
                let limit = params
                    .top
                    .map(|n| format!(" LIMIT {n}"))
                    .unwrap_or_default();
                let statement = format!(
                    "SELECT name, feature, outcomes, successes, toFloat64(successes) / outcomes, \
                     cost, if(successes = 0, NULL, (cost * toDecimal128(2, 0) \
                     + toDecimal128(successes, 0)) / toDecimal128(greatest(successes * 2, 1), 0)) \
                     FROM (SELECT name, feature, count() AS outcomes, \
                     countIf(success = 1) AS successes, sum(run_cost) AS cost \
                     FROM (SELECT outcome_name AS name, feature, {run} AS run, \
                     max(ifNull(outcome_success, 0)) AS success FROM {db}.events \
                     WHERE {filter} AND isNotNull(outcome_name) GROUP BY name, feature, run) AS o \
                     ALL LEFT JOIN (SELECT run, sum(cost) AS run_cost FROM ({priced}) \
                     GROUP BY run) AS rc USING (run) GROUP BY name, feature) \
                     ORDER BY {cost} DESC, name ASC NULLS LAST, feature ASC NULLS LAST{limit}",
                    cost = super::sql::sortable_money("cost"),
                    db = self.database,
                    priced = pricing.priced(&[], Some(run), &filter, false),
                );
                (statement, Report::OUTCOME_COLUMNS)
            }
            _ => {
                // Calls and cost lacking tenant, user or feature (or any), then calls from
                // spans that did not say their model, usage or cached tokens.
                let missing = |what: &str| {
                    format!(
                        "has(splitByChar(',', visitParamExtractString(labels, \
                         'burnrate.missing')), '{what}')"
                    )
                };
                let keys = [
                    ("t", "isNull(tenant_id)".to_owned()),
                    ("u", "isNull(user_id)".to_owned()),
                    ("f", "isNull(feature)".to_owned()),
                    ("mm", missing("model")),
                    ("mu", missing("usage")),
                    ("mc", missing("cache")),
                ]
                .map(|(alias, expr)| (alias.to_owned(), format!("toUInt8({expr})")));
                let parts: Vec<String> = COVERAGE_PARTS
                    .iter()
                    .enumerate()
                    .map(|(index, (name, flag))| {
                        format!(
                            "({index}, '{name}', sum(t_requests * {flag}), \
                             sum(cost * toDecimal128({flag}, 0)))"
                        )
                    })
                    .collect();
                let statement = format!(
                    "SELECT tupleElement(part, 2), tupleElement(part, 3), \
                     toFloat64(tupleElement(part, 3)) / nullIf(all_requests, 0), \
                     tupleElement(part, 4), \
                     toFloat64(tupleElement(part, 4)) / nullIf(toFloat64(all_cost), 0) \
                     FROM (SELECT [{parts}] AS parts, sum(t_requests) AS all_requests, \
                     sum(cost) AS all_cost FROM ({priced})) ARRAY JOIN parts AS part \
                     ORDER BY tupleElement(part, 1)",
                    parts = parts.join(", "),
                    priced = pricing.priced(&keys, None, &filter, false),
                );
                (statement, Report::COVERAGE_COLUMNS)
            }
        };
        let names = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
        let kinds: Vec<ColumnKind> = columns.iter().map(|(_, kind)| *kind).collect();
        let mut result = QueryResult::new(names, kinds);
        for row in self.select(&statement, columns.len())? {
            result.push_text_row(row)?;
        }
        result.note_unpriced(self.unpriced_in(&spec, &pricing)?);
        Ok(result)
    }
}
