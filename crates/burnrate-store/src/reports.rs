//! The named reports: the five roll-ups and tagging coverage.

use std::str::FromStr;

use burnrate_model::dimension::{Dimension, Field};
use chrono::{DateTime, Utc};

use crate::duck::DuckStore;
use crate::error::StoreError;
use crate::query::result::{ColumnKind, QueryResult};
use crate::query::spec::{Bucket, Filter, Metric, Order, OrderKey, QuerySpec};
use crate::query::sql;

/// A named report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Cost per user per day.
    UsersDaily,
    /// Cost per feature.
    Features,
    /// Cost per agent run, per feature: median, p90, p99, min, max and the max/min spread.
    Runs,
    /// Cost per successful outcome.
    Outcomes,
    /// Cost per tenant.
    Tenants,
    /// Share of calls and cost lacking tenant, user or feature.
    Coverage,
}

impl Report {
    /// Every report, in the order the CLI lists them.
    pub const ALL: [Report; 6] = [
        Report::UsersDaily,
        Report::Features,
        Report::Runs,
        Report::Outcomes,
        Report::Tenants,
        Report::Coverage,
    ];

    /// The report's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Report::UsersDaily => "users-daily",
            Report::Features => "features",
            Report::Runs => "runs",
            Report::Outcomes => "outcomes",
            Report::Tenants => "tenants",
            Report::Coverage => "coverage",
        }
    }

    /// A one-line description.
    pub fn title(self) -> &'static str {
        match self {
            Report::UsersDaily => "Cost per user per day",
            Report::Features => "Cost per feature",
            Report::Runs => {
                "Cost per agent run, by feature (spread = costliest run / cheapest run)"
            }
            Report::Outcomes => "Cost per successful outcome",
            Report::Tenants => "Cost per tenant",
            Report::Coverage => "Tagging coverage: calls and cost lacking attribution",
        }
    }
}

impl FromStr for Report {
    type Err = String;
    fn from_str(text: &str) -> Result<Report, String> {
        Report::ALL
            .iter()
            .copied()
            .find(|report| report.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Report::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown report `{text}`; use one of {}", names.join(", "))
            })
    }
}

/// What every report is restricted by.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportParams {
    /// Start, inclusive.
    pub since: DateTime<Utc>,
    /// End, exclusive.
    pub until: DateTime<Utc>,
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Keep the top N rows (groups).
    pub top: Option<usize>,
}

fn field(field: Field) -> Dimension {
    Dimension::Field(field)
}

impl ReportParams {
    fn spec(&self, group_by: Vec<Dimension>, metrics: Vec<Metric>) -> QuerySpec {
        QuerySpec {
            since: self.since,
            until: self.until,
            bucket: None,
            group_by,
            filters: self.filters.clone(),
            metrics,
            order: None,
            top: self.top,
        }
    }
}

impl Report {
    /// The query spec of a report that is one, `None` for the reports with their own SQL
    /// (outcomes, coverage).
    pub fn spec(self, params: &ReportParams) -> Option<QuerySpec> {
        use Metric::*;
        Some(match self {
            Report::UsersDaily => {
                let mut spec = params.spec(
                    vec![field(Field::Tenant), field(Field::User)],
                    vec![Requests, CostUsd, InputTokens, OutputTokens, CacheHitRate],
                );
                spec.bucket = Some(Bucket::Day);
                spec.order = Some(Order {
                    key: OrderKey::Bucket,
                    descending: false,
                });
                spec
            }
            Report::Features => params.spec(
                vec![field(Field::Feature)],
                vec![
                    Requests,
                    CostUsd,
                    ShareOfCost,
                    Runs,
                    CostPerRunP50,
                    CostPerRunP99,
                    CacheHitRate,
                    ErrorRate,
                ],
            ),
            Report::Runs => params.spec(
                vec![field(Field::Feature)],
                vec![
                    Runs,
                    CostUsd,
                    CostPerRunP50,
                    CostPerRunP90,
                    CostPerRunP99,
                    CostPerRunMin,
                    CostPerRunMax,
                    RunCostSpread,
                ],
            ),
            Report::Tenants => params.spec(
                vec![field(Field::Tenant)],
                vec![
                    Requests,
                    CostUsd,
                    ShareOfCost,
                    NaiveCostUsd,
                    CacheHitRate,
                    Runs,
                    ErrorRate,
                    UnpricedRequests,
                ],
            ),
            Report::Outcomes | Report::Coverage => return None,
        })
    }

    /// The columns of the outcomes report.
    pub(crate) const OUTCOME_COLUMNS: &[(&str, ColumnKind)] = &[
        ("outcome_name", ColumnKind::Text),
        ("feature", ColumnKind::Text),
        ("outcomes", ColumnKind::Count),
        ("successes", ColumnKind::Count),
        ("success_rate", ColumnKind::Ratio),
        ("cost_usd", ColumnKind::Money),
        ("cost_per_success_usd", ColumnKind::Money),
    ];

    /// The columns of the coverage report.
    pub(crate) const COVERAGE_COLUMNS: &[(&str, ColumnKind)] = &[
        ("dimension", ColumnKind::Text),
        ("requests_missing", ColumnKind::Count),
        ("share_of_requests", ColumnKind::Ratio),
        ("cost_usd_missing", ColumnKind::Money),
        ("share_of_cost", ColumnKind::Ratio),
    ];
}

impl ReportParams {
    /// The spec of the reports with their own SQL: the range and filters, validated.
    pub(crate) fn base_spec(&self) -> Result<QuerySpec, StoreError> {
        let spec = self.spec(Vec::new(), vec![Metric::Requests]);
        spec.validate()?;
        Ok(spec)
    }
}

impl DuckStore {
    /// Runs a named report.
    pub fn report(&self, report: Report, params: &ReportParams) -> Result<QueryResult, StoreError> {
        if let Some(spec) = report.spec(params) {
            return self.query(&spec);
        }
        match report {
            Report::Outcomes => self.outcomes(params),
            _ => self.coverage(params),
        }
    }

    /// Per outcome name and feature: outcomes, successes, the cost of the runs that reached
    /// them (a call outside any run is its own run) and that cost per success.
    fn outcomes(&self, params: &ReportParams) -> Result<QueryResult, StoreError> {
        let spec = params.base_spec()?;
        let from_totals = self.totals_answer(&spec);
        let mut sql_params = Vec::new();
        let ctes = if from_totals {
            self.outcome_ctes_from_totals(&spec, &mut sql_params)?
        } else {
            self.outcome_ctes(&spec, &mut sql_params)
        };
        let limit = params
            .top
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        let statement = format!(
            "{ctes}, totals AS (SELECT name, feature, count(*) AS outcomes, \
             count(*) FILTER (WHERE success) AS successes, coalesce(sum(cost), 0) AS cost \
             FROM reached GROUP BY ALL) \
             SELECT name, feature, outcomes, successes, CAST(successes AS DOUBLE) / outcomes, \
             cost, (cost * 2 + successes) // nullif(successes * 2, 0) FROM totals ORDER BY cost DESC, name, feature{limit}",
        );
        let result = self.report_sql(&spec, &statement, &sql_params, Report::OUTCOME_COLUMNS);
        if from_totals {
            return self.end_run_split(result);
        }
        result
    }

    /// The outcomes report's `reached`: per outcome name, feature and run, whether it
    /// succeeded and the run's cost in the range (a call outside any run that reached an
    /// outcome is its own run); from the roll-ups and the events.
    fn outcome_ctes(&self, spec: &QuerySpec, params: &mut Vec<String>) -> String {
        let rows = self.rows_reading(spec, true);
        let priced = sql::priced_ctes(
            &[],
            Some(sql::RunKey::every(rows.outcome_run_expr())),
            spec,
            params,
            self.thresholds(),
            rows,
            true,
        );
        let outcome_filter = sql::where_clause(spec, params);
        let run = sql::Rows::Events.outcome_run_expr();
        format!(
            "{priced}, run_cost AS (SELECT run, coalesce(sum(cost), 0) AS cost FROM priced GROUP BY run), \
             outcomes AS (SELECT outcome_name AS name, feature, {run} AS run, \
             bool_or(outcome_success) AS success FROM events \
             WHERE {outcome_filter} AND outcome_name IS NOT NULL GROUP BY ALL), \
             reached AS (SELECT o.*, rc.cost FROM outcomes o LEFT JOIN run_cost rc USING (run))"
        )
    }

    /// [`DuckStore::outcome_ctes`] from the run totals, which the caller checked can answer:
    /// a run they answer for is one row holding its outcome and cost (at 100M events, 12.5M
    /// rows read instead of 21.7M roll-up rows grouped by run and the events scanned). The
    /// caller drops the split's temp tables.
    fn outcome_ctes_from_totals(
        &self,
        spec: &QuerySpec,
        params: &mut Vec<String>,
    ) -> Result<String, StoreError> {
        let (kept, kept_params) = self.split_runs(spec, true)?;
        params.extend(kept_params);
        Ok(format!(
            "WITH reached AS (SELECT outcome_name AS name, feature, agent_run_id AS run, \
             outcome_success AS success, cost FROM run_totals \
             WHERE {kept} AND outcome_name IS NOT NULL \
             UNION ALL SELECT o.*, c.cost FROM (SELECT outcome_name AS name, feature, \
             agent_run_id AS run, bool_or(outcome_success) AS success FROM runs_exact \
             WHERE outcome_name IS NOT NULL GROUP BY ALL) o \
             JOIN (SELECT agent_run_id AS run, sum(cost) AS cost FROM runs_exact GROUP BY ALL) c \
             USING (run))"
        ))
    }

    /// For tenant, user and feature (and any of them): calls and cost lacking it, and shares;
    /// then calls recorded from spans that did not say their model, usage or cached tokens
    /// (the `burnrate.missing` label of OTLP events).
    fn coverage(&self, params: &ReportParams) -> Result<QueryResult, StoreError> {
        let spec = params.base_spec()?;
        // The rows must hold the columns the flags read, not only the spec's filters.
        let mut reading = spec.clone();
        reading.group_by = vec![field(Field::Tenant), field(Field::Feature)];
        let rows = self.rows_for(&reading);
        let mut sql_params = Vec::new();
        let missing = |what: &str| {
            format!(
                "coalesce(list_contains(string_split({}, ','), '{what}'), false)",
                rows.dimension_expr(&Dimension::Label("burnrate.missing".into()))
            )
        };
        let keys = [
            ("t", "tenant_id IS NULL".to_owned()),
            ("u", rows.user_missing_expr().to_owned()),
            ("f", "feature IS NULL".to_owned()),
            ("mm", missing("model")),
            ("mu", missing("usage")),
            ("mc", missing("cache")),
        ]
        .map(|(alias, expr)| (alias.to_owned(), expr));
        let part = |name: &str, condition: &str| {
            format!(
                "SELECT '{name}' AS dimension, coalesce(sum(requests) FILTER (WHERE {condition}), 0) AS requests, \
                 coalesce(sum(cost) FILTER (WHERE {condition}), 0) AS cost FROM flags"
            )
        };
        let statement = format!(
            "{priced}, flags AS (SELECT t, u, f, mm, mu, mc, sum(requests) AS requests, \
             coalesce(sum(cost), 0) AS cost FROM priced GROUP BY ALL), \
             totals AS (SELECT sum(requests) AS requests, sum(cost) AS cost FROM flags), \
             parts AS ({} UNION ALL {} UNION ALL {} UNION ALL {} UNION ALL {} UNION ALL {} \
             UNION ALL {}) \
             SELECT p.dimension, p.requests, CAST(p.requests AS DOUBLE) / nullif(t.requests, 0), \
             p.cost, CAST(p.cost AS DOUBLE) / nullif(CAST(t.cost AS DOUBLE), 0) FROM parts p, totals t ORDER BY CASE p.dimension WHEN 'tenant_id' THEN 1 \
             WHEN 'user_id' THEN 2 WHEN 'feature' THEN 3 WHEN 'any' THEN 4 \
             WHEN 'span_without_model' THEN 5 WHEN 'span_without_usage' THEN 6 ELSE 7 END",
            part("tenant_id", "t"),
            part("user_id", "u"),
            part("feature", "f"),
            part("any", "t OR u OR f"),
            part("span_without_model", "mm"),
            part("span_without_usage", "mu"),
            part("span_without_cache_detail", "mc"),
            priced = sql::priced_ctes(
                &keys,
                None,
                &spec,
                &mut sql_params,
                self.thresholds(),
                rows,
                true
            ),
        );
        self.report_sql(&spec, &statement, &sql_params, Report::COVERAGE_COLUMNS)
    }

    /// Runs a report's own SQL and notes unpriced calls.
    fn report_sql(
        &self,
        spec: &QuerySpec,
        statement: &str,
        params: &[String],
        columns: &[(&str, ColumnKind)],
    ) -> Result<QueryResult, StoreError> {
        let names = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
        let kinds = columns.iter().map(|(_, kind)| *kind).collect();
        let mut result = self.run_sql(statement, params, names, kinds)?;
        self.annotate_unpriced(spec, &mut result)?;
        Ok(result)
    }
}
