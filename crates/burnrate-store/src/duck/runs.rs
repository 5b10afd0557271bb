//! Run totals: what each agent run cost and used, kept beside the roll-ups so the runs
//! overview, queries of run metrics by tenant or feature and the outcomes report read one
//! row per run instead of grouping the hourly roll-up by run (1.25M runs at 10M events).
//!
//! - `run_totals`: per run, the tenant, feature and outcome name of its calls (`mixed` when
//!   they are not all the same; calls reaching no outcome do not count for the name), its
//!   first and last hour, its cost in femtodollars (priced from the hourly roll-up like
//!   every query), calls, tool calls and tokens, and whether it reached its outcome.
//! - `runs_fresh`: runs with calls appended since their row was written. An append lists its
//!   runs there before it writes its events, so a run whose row is stale is always listed.
//!   Once enough are listed their rows are computed again from the hourly roll-up.
//! - `meta.run_totals`: the fingerprint of the prices the rows were priced with
//!   (`prices_fingerprint`); removed while they are rebuilt. On open, the totals
//!   are rebuilt when it differs from the prices' (a crash after a price change) or when the
//!   calls they count differ from the hourly roll-up's for the runs not listed fresh (a ledger
//!   written meanwhile by a burnrate without run totals).
//!
//! Each of those takes from `run_totals` the runs wholly inside its range whose calls share a
//! tenant, feature and outcome name and that are not fresh ([`DuckStore::split_runs`]);
//! every other run with calls in the range (fresh, mixed, or crossing the range's ends) is
//! computed from the roll-ups and the events exactly as queries are, so both parts answer
//! what the queries answer.

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use duckdb::params_from_iter;

use super::DuckStore;
use super::rollup::Created;
use crate::error::StoreError;
use crate::query::bins::RunCostBin;
use crate::query::runs::{RunGroup, RunSummary, RunsOverview};
use crate::query::spec::{Filter, Metric, QuerySpec};
use crate::query::sql::{self, Rows, RunKey};

/// The columns of `run_totals`.
const COLUMNS: [(&str, &str); 13] = [
    ("agent_run_id", "VARCHAR NOT NULL"),
    ("tenant_id", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("mixed", "BOOLEAN NOT NULL"),
    ("first_hour", "TIMESTAMP NOT NULL"),
    ("last_hour", "TIMESTAMP NOT NULL"),
    ("cost", "HUGEINT NOT NULL"),
    ("requests", "BIGINT NOT NULL"),
    ("tool_calls", "BIGINT NOT NULL"),
    ("input_tokens", "BIGINT NOT NULL"),
    ("output_tokens", "BIGINT NOT NULL"),
    ("outcome_name", "VARCHAR"),
    ("outcome_success", "BOOLEAN"),
];

/// The columns a ranking shows, in [`RunSummary`]'s order but the cost last.
const SUMMARY_COLUMNS: &str =
    "agent_run_id, tenant_id, feature, requests, tool_calls, input_tokens, output_tokens, cost";

const META_KEY: &str = "run_totals";

/// Fresh runs listed before their rows are computed again: at least this many, and at least
/// as many as there were rows after the last time (so an import recomputes a few times).
const COMPACT_AFTER_RUNS: usize = 100_000;

/// The dimensions every call of an unmixed run shares, which the totals can group and
/// filter by.
const RUN_FIELDS: [Field; 3] = [Field::AgentRun, Field::Tenant, Field::Feature];

/// Whether the calls grouped are not all of one tenant and feature (`NULL` counts as a
/// value of its own), or reached more than one outcome name.
const MIXED_SQL: &str = "(min(tenant_id) IS DISTINCT FROM max(tenant_id) \
     OR (count(tenant_id) > 0 AND count(tenant_id) < count(*)) \
     OR min(feature) IS DISTINCT FROM max(feature) \
     OR (count(feature) > 0 AND count(feature) < count(*)) \
     OR min(outcome_name) IS DISTINCT FROM max(outcome_name))";

/// Run totals' state in the store.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct RunTotals {
    /// The rows match the roll-ups and the prices (`meta.run_totals`).
    pub(super) valid: bool,
    /// Runs listed fresh since the last computation (with repeats).
    fresh: usize,
    /// Rows after the last computation.
    rows: usize,
}

impl DuckStore {
    /// Creates the tables, replacing a `run_totals` of other columns (then rebuilt by
    /// [`DuckStore::check_run_totals`]).
    pub(super) fn create_run_totals(&self) -> Result<Created, StoreError> {
        let created = self.drop_if_columns_differ("run_totals", &COLUMNS.map(|(name, _)| name))?;
        if created == Created::Replaced {
            self.conn
                .execute("DELETE FROM meta WHERE key = ?", [META_KEY])?;
        }
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|(name, sql)| format!("{name} {sql}"))
            .collect();
        self.conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS run_totals ({}); \
             CREATE TABLE IF NOT EXISTS runs_fresh (agent_run_id VARCHAR NOT NULL)",
            columns.join(", ")
        ))?;
        Ok(created)
    }

    /// At open, once the roll-ups were checked: uses the totals when they were complete
    /// (`complete`: as the marker says, [`DuckStore::marked_complete`]), else builds them
    /// again.
    pub(super) fn check_run_totals(&mut self, complete: bool) -> Result<(), StoreError> {
        if self.run_prices_changed()? || !self.rollup_valid {
            return self.rebuild_run_totals();
        }
        if complete {
            return self.use_run_totals();
        }
        // Each side is its whole sum less the fresh runs' part: a semi join against the few
        // fresh runs, where `NOT IN` made DuckDB mark every row of both tables (0.67 s of
        // every open at 100M events, against 0.05 s).
        let counted: bool = self.conn.query_row(
            "SELECT (SELECT coalesce(sum(requests), 0) FROM run_totals) \
             - (SELECT coalesce(sum(requests), 0) FROM run_totals \
             WHERE agent_run_id IN (SELECT agent_run_id FROM runs_fresh)) \
             = (SELECT coalesce(sum(requests), 0) FROM rollup WHERE agent_run_id IS NOT NULL) \
             - (SELECT coalesce(sum(requests), 0) FROM rollup \
             WHERE agent_run_id IN (SELECT agent_run_id FROM runs_fresh))",
            [],
            |row| row.get(0),
        )?;
        if !counted {
            return self.rebuild_run_totals();
        }
        self.use_run_totals()
    }

    /// Uses the run totals as they are.
    fn use_run_totals(&mut self) -> Result<(), StoreError> {
        self.run_totals = RunTotals {
            valid: true,
            fresh: self.count_rows("runs_fresh")?,
            rows: self.count_rows("run_totals")?,
        };
        Ok(())
    }

    /// Builds every run's row again from the hourly roll-up; without a complete roll-up the
    /// totals stay unused (the overview runs its queries) until the roll-up is rebuilt.
    pub(super) fn rebuild_run_totals(&mut self) -> Result<(), StoreError> {
        self.unmark_complete()?;
        self.run_totals.valid = false;
        self.conn
            .execute("DELETE FROM meta WHERE key = ?", [META_KEY])?;
        if !self.totals_buildable() {
            return Ok(());
        }
        let mut params = Vec::new();
        let build = self.totals_sql(None, &mut params)?;
        self.conn
            .execute_batch("DELETE FROM run_totals; DELETE FROM runs_fresh")?;
        self.conn.execute(
            &format!("INSERT INTO run_totals {build}"),
            params_from_iter(params.iter()),
        )?;
        self.record_prices(META_KEY)?;
        self.run_totals = RunTotals {
            valid: true,
            fresh: 0,
            rows: self.count_rows("run_totals")?,
        };
        self.mark_complete()
    }

    /// Whether the rows were priced with other prices than the ledger's now (or are being
    /// rebuilt: no prices recorded).
    pub(super) fn run_prices_changed(&self) -> Result<bool, StoreError> {
        Ok(!self.priced_now(META_KEY)?)
    }

    /// Whether the rows of a priced derived table were priced with the prices now:
    /// `meta.key` holds the fingerprint they were priced with (absent while rebuilt).
    pub(super) fn priced_now(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.meta_value(key)? == Some(self.prices_fingerprint()?))
    }

    /// Records under `meta.key` that a priced derived table's rows match the prices now.
    pub(super) fn record_prices(&self, key: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [key, &self.prices_fingerprint()?],
        )?;
        Ok(())
    }

    /// After an append mapped models seen for the first time: lists fresh the runs with
    /// calls of those models (appends map their models before writing their calls; only an
    /// older burnrate, which mapped them after, could crash in between and leave such calls
    /// priced as unpriced in the rows) and records the prices as the rows'.
    pub(super) fn runs_after_new_models(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(), StoreError> {
        if !self.run_totals.valid {
            return Ok(());
        }
        let mut listed = 0;
        for (provider, model) in pairs {
            listed += self.conn.execute(
                "INSERT INTO runs_fresh SELECT agent_run_id FROM run_totals WHERE agent_run_id \
                 IN (SELECT agent_run_id FROM rollup WHERE provider = ? AND model = ? \
                 AND agent_run_id IS NOT NULL)",
                [provider, model],
            )?;
        }
        self.run_totals.fresh += listed;
        self.record_prices(META_KEY)
    }

    /// Lists `runs` fresh: called before their calls are written.
    pub(super) fn note_fresh_runs<'a>(
        &mut self,
        runs: impl Iterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let mut appender = self.conn.appender("runs_fresh")?;
        for run in runs {
            // Counted first: on an error the appender may still flush what it holds, and
            // the count must never say none are listed when some are.
            self.run_totals.fresh += 1;
            appender.append_row([run])?;
        }
        appender.flush()?;
        Ok(())
    }

    /// After an append: computes the fresh runs' rows again once enough are listed.
    pub(super) fn after_append_runs(&mut self) -> Result<(), StoreError> {
        if self.run_totals.fresh >= COMPACT_AFTER_RUNS.max(self.run_totals.rows) {
            self.compact_run_totals()?;
        }
        Ok(())
    }

    /// Computes the fresh runs' rows again from the hourly roll-up, in one transaction. On
    /// failure (rolled back, the runs still listed) the totals are left unused until the
    /// ledger is opened again.
    pub(super) fn compact_run_totals(&mut self) -> Result<(), StoreError> {
        if !self.run_totals.valid {
            return Ok(());
        }
        if !self.totals_buildable() {
            self.run_totals.valid = false;
            return Ok(());
        }
        let mut params = Vec::new();
        let build = self.totals_sql(
            Some("agent_run_id IN (SELECT agent_run_id FROM runs_fresh)"),
            &mut params,
        )?;
        let result = self
            .conn
            .execute_batch(
                "BEGIN TRANSACTION; DELETE FROM run_totals WHERE agent_run_id IN \
                 (SELECT agent_run_id FROM runs_fresh)",
            )
            .and_then(|()| {
                self.conn.execute(
                    &format!("INSERT INTO run_totals {build}"),
                    params_from_iter(params.iter()),
                )
            })
            .and_then(|_| self.conn.execute_batch("DELETE FROM runs_fresh; COMMIT"));
        if let Err(error) = result {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.run_totals.valid = false;
            return Err(error.into());
        }
        self.run_totals.fresh = 0;
        self.run_totals.rows = self.count_rows("run_totals")?;
        Ok(())
    }

    /// Lists fresh the runs with calls before `until`, whose rows change when those calls
    /// leave the ledger (inside the caller's transaction).
    pub(super) fn freshen_runs_before(&mut self, until: NaiveDate) -> duckdb::Result<()> {
        let listed = self.conn.execute(
            "INSERT INTO runs_fresh SELECT agent_run_id FROM run_totals \
             WHERE first_hour < CAST(? AS TIMESTAMP)",
            [until.to_string()],
        )?;
        self.run_totals.fresh += listed;
        Ok(())
    }

    /// A fingerprint of what the totals were priced with: the price bands, the model map and
    /// the band thresholds.
    pub(super) fn prices_fingerprint(&self) -> Result<String, StoreError> {
        let sums: String = self.conn.query_row(
            "SELECT CAST((SELECT coalesce(sum(hash(price_key, tier, band, valid_from, valid_to, \
             input, cache_read, cache_write_5m, cache_write_1h, output, reasoning)), 0) \
             FROM price_bands) AS VARCHAR) || '/' || CAST((SELECT coalesce(sum(hash(provider, \
             model, price_key)), 0) FROM model_map) AS VARCHAR)",
            [],
            |row| row.get(0),
        )?;
        Ok(format!("{sums}/{:?}", self.thresholds))
    }

    /// The totals can be computed: the hourly roll-up is complete and its input classes
    /// count every threshold of the prices.
    pub(super) fn totals_buildable(&self) -> bool {
        self.rollup_valid
            && self.archive.is_none()
            && self
                .thresholds
                .iter()
                .all(|t| self.rollup_universe.contains(t))
    }

    /// The rows of `run_totals` for every run of the hourly roll-up, or for the rows `only`
    /// holds for.
    fn totals_sql(
        &self,
        only: Option<&str>,
        params: &mut Vec<String>,
    ) -> Result<String, StoreError> {
        // Every hour the roll-up holds (calls may carry any time).
        let (first, last): (Option<NaiveDateTime>, Option<NaiveDateTime>) =
            self.conn
                .query_row("SELECT min(ts), max(ts) FROM rollup", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
        let start = first.unwrap_or_default().and_utc();
        let end = last.unwrap_or_default().and_utc() + TimeDelta::hours(1);
        let spec = QuerySpec::new(start, end);
        let rows = Rows::Rollup {
            universe: &self.rollup_universe,
            from: start.naive_utc(),
            to: end.naive_utc(),
            days: None,
        };
        let keys = [
            ("tenant_id", "tenant_id"),
            ("feature", "feature"),
            ("hour", "ts"),
            ("outcome_name", "outcome_name"),
            ("outcome_success", "outcome_success"),
        ]
        .map(|(alias, expr)| (alias.to_owned(), expr.to_owned()));
        let priced = sql::priced_ctes(
            &keys,
            Some(RunKey {
                expr: "agent_run_id",
                only,
            }),
            &spec,
            params,
            &self.thresholds,
            rows,
            true,
        );
        Ok(format!(
            "{priced} SELECT run, any_value(tenant_id), any_value(feature), {MIXED_SQL}, \
             min(hour), max(hour), coalesce(sum(cost), 0), CAST(sum(requests) AS BIGINT), \
             CAST(sum(tool_calls) AS BIGINT), CAST(sum(input_tokens) AS BIGINT), \
             CAST(sum(output_tokens) AS BIGINT), min(outcome_name), \
             bool_or(outcome_success) FILTER (WHERE outcome_name IS NOT NULL) \
             FROM priced WHERE run IS NOT NULL GROUP BY run"
        ))
    }

    /// The runs overview ([`RunsOverview`]) from the run totals where they can answer (see
    /// the module's notes), else from the queries any backend runs.
    pub fn runs_overview(&self, spec: &QuerySpec, top: usize) -> Result<RunsOverview, StoreError> {
        match self.overview_from_totals(spec, top)? {
            Some(overview) => Ok(overview),
            None => crate::query::runs::overview_by_queries(self, spec, top),
        }
    }

    /// Whether the totals are current and can answer for `spec`'s runs: it groups and
    /// filters only by what every call of an unmixed run shares (run, tenant and feature).
    pub(crate) fn totals_answer(&self, spec: &QuerySpec) -> bool {
        let shared = |dimension: &Dimension| matches!(dimension, Dimension::Field(f) if RUN_FIELDS.contains(f));
        self.run_totals.valid
            && self.rollup_reads
            && self.totals_buildable()
            && spec.group_by.iter().all(shared)
            && spec.filters.iter().all(|filter| shared(&filter.dimension))
    }

    /// Splits the runs with calls in `spec`'s range that match its filters into those the
    /// totals answer for (wholly inside the range, unmixed, not fresh) and the others, whose
    /// calls in the range go to the temp table `runs_exact` (run, tenant, feature and the
    /// sums of [`SUMMARY_COLUMNS`]), priced like every query. With `outcome_calls`, so do
    /// the calls outside any run that reached an outcome, each as its own run
    /// ([`Rows::outcome_run_expr`](sql::Rows::outcome_run_expr)), and the rows are also per
    /// outcome name, with `outcome_success`. Returns the condition on `run_totals` that
    /// picks the former, and its parameters. [`DuckStore::end_run_split`] drops the temp
    /// tables.
    pub(crate) fn split_runs(
        &self,
        spec: &QuerySpec,
        outcome_calls: bool,
    ) -> Result<(String, Vec<String>), StoreError> {
        let since = spec.since.naive_utc().to_string();
        let until = spec.until.naive_utc().to_string();

        // The runs the totals do not answer for: with calls in the range, and fresh, mixed or
        // not wholly inside it. One select per reason, so each filter is a conjunction that
        // DuckDB checks against its zone maps (the hour's length taken from the constants, not
        // added to `last_hour`): 2 ms instead of 280 over 12.5M runs wholly inside the range.
        let with_calls = "first_hour < CAST(?2 AS TIMESTAMP) \
             AND last_hour > CAST(?1 AS TIMESTAMP) - INTERVAL 1 HOUR";
        self.conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE runs_other AS \
                 SELECT agent_run_id FROM run_totals WHERE mixed AND {with_calls} \
                 UNION SELECT agent_run_id FROM run_totals \
                 WHERE first_hour < CAST(?1 AS TIMESTAMP) AND {with_calls} \
                 UNION SELECT agent_run_id FROM run_totals \
                 WHERE last_hour > CAST(?2 AS TIMESTAMP) - INTERVAL 1 HOUR AND {with_calls} \
                 UNION SELECT agent_run_id FROM runs_fresh"
            ),
            [&since, &until],
        )?;
        // Their calls in the range, priced like every query.
        let rows = self.rows_reading(spec, true);
        let mut params = Vec::new();
        let mut keys: Vec<(String, String)> = [Field::Tenant, Field::Feature]
            .map(|field| {
                (
                    field.as_str().to_owned(),
                    rows.dimension_expr(&Dimension::Field(field)),
                )
            })
            .into();
        let other = "agent_run_id IN (SELECT agent_run_id FROM runs_other)";
        let (expr, only, outcome, success) = if outcome_calls {
            for column in ["outcome_name", "outcome_success"] {
                keys.push((column.to_owned(), column.to_owned()));
            }
            (
                rows.outcome_run_expr(),
                format!("{other} OR {}", rows.outcome_call_expr()),
                ", outcome_name",
                ", bool_or(outcome_success) AS outcome_success",
            )
        } else {
            ("agent_run_id", other.to_owned(), "", "")
        };
        let priced = sql::priced_ctes(
            &keys,
            Some(RunKey {
                expr,
                only: Some(&only),
            }),
            spec,
            &mut params,
            &self.thresholds,
            rows,
            true,
        );
        self.conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE runs_exact AS {priced} SELECT run AS \
                 agent_run_id, tenant_id, feature{outcome}, coalesce(sum(cost), 0) AS cost, \
                 sum(requests) AS requests, sum(tool_calls) AS tool_calls, \
                 sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens{success} \
                 FROM priced WHERE run IS NOT NULL GROUP BY run, tenant_id, feature{outcome}"
            ),
            params_from_iter(params.iter()),
        )?;

        // The other runs, one row each, from the totals.
        let mut params = vec![since, until];
        let mut inside = vec![
            "first_hour >= CAST(? AS TIMESTAMP)".to_owned(),
            "last_hour <= CAST(? AS TIMESTAMP) - INTERVAL 1 HOUR".to_owned(),
            "NOT mixed".to_owned(),
        ];
        // Of the other runs only the fresh ones can be unmixed and wholly inside; with none
        // listed the clause is left out (DuckDB marks every row for a `NOT IN`, even of an
        // empty table).
        if self.run_totals.fresh > 0 {
            inside.push("agent_run_id NOT IN (SELECT agent_run_id FROM runs_fresh)".to_owned());
        }
        inside.extend(sql::filter_clauses(spec, &mut params, sql::dimension_expr));
        Ok((inside.join(" AND "), params))
    }

    /// Drops the temp tables of [`DuckStore::split_runs`] once `result`, which read them,
    /// is known; its own error comes first.
    pub(crate) fn end_run_split<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let dropped = self
            .conn
            .execute_batch("DROP TABLE IF EXISTS runs_other; DROP TABLE IF EXISTS runs_exact");
        let value = result?;
        dropped?;
        Ok(value)
    }

    /// For a query with run metrics and no bucket that the totals can answer for: each
    /// run's cost per group (`g0`, ..., `run`, `run_cost`) from the totals and the split's
    /// exact rows, which [`DuckStore::end_run_split`] drops after the query; `None` when
    /// the totals cannot answer.
    pub(super) fn run_costs_from_totals(
        &self,
        spec: &QuerySpec,
    ) -> Result<Option<sql::RunCosts>, StoreError> {
        if !spec.metrics.iter().any(|m| m.needs_runs())
            || spec.bucket.is_some()
            || !self.totals_answer(spec)
        {
            return Ok(None);
        }
        let mut runs = spec.clone();
        runs.filters.push(Filter::in_a_run());
        let (kept, params) = self.split_runs(&runs, false)?;
        let keys: String = spec
            .group_by
            .iter()
            .enumerate()
            .map(|(i, dimension)| format!("{} AS g{i}, ", sql::dimension_expr(dimension)))
            .collect();
        Ok(Some(sql::RunCosts {
            sql: format!(
                "SELECT {keys}agent_run_id AS run, cost AS run_cost FROM run_totals \
                 WHERE {kept} UNION ALL \
                 SELECT {keys}agent_run_id AS run, sum(cost) AS run_cost FROM runs_exact \
                 GROUP BY ALL"
            ),
            params,
        }))
    }

    /// The overview from the totals; `None` when they are not current or the spec groups by
    /// more than one dimension or by or filters by what a run's calls need not share.
    pub(super) fn overview_from_totals(
        &self,
        spec: &QuerySpec,
        top: usize,
    ) -> Result<Option<RunsOverview>, StoreError> {
        if spec.group_by.len() > 1 || !self.totals_answer(spec) {
            return Ok(None);
        }
        let mut spec = spec.clone();
        spec.bucket = None;
        spec.metrics = vec![Metric::Runs];
        spec.validate()?;
        if top == 0 {
            // The queries refuse it with their error.
            return Ok(None);
        }
        spec.filters.push(Filter::in_a_run());
        let (kept, params) = self.split_runs(&spec, false)?;
        let kept = format!("SELECT {SUMMARY_COLUMNS} FROM run_totals WHERE {kept}");
        let group = spec
            .group_by
            .first()
            .map(sql::dimension_expr)
            .unwrap_or_else(|| "CAST(NULL AS VARCHAR)".to_owned());
        let per_run = format!(
            "WITH per_run AS (SELECT {group} AS grp, cost FROM ({kept}) UNION ALL \
             SELECT {group} AS grp, sum(cost) AS cost FROM runs_exact \
             GROUP BY grp, agent_run_id)"
        );

        // Nearest rank: `quantile_disc(x, q)` is the smallest value whose cumulative
        // distribution reaches q, the value at rank ⌈q·n⌉, as queries compute it.
        let groups = self
            .conn
            .prepare(&format!(
                "{per_run} SELECT grp, count(*), sum(cost), quantile_disc(cost, 0.5), \
                 quantile_disc(cost, 0.99) FROM per_run GROUP BY grp \
                 ORDER BY sum(cost) DESC, grp ASC NULLS FIRST"
            ))?
            .query_map(params_from_iter(params.iter()), |row| {
                Ok(RunGroup {
                    group: row.get(0)?,
                    runs: count(row.get(1)?),
                    cost: money_at(row, 2)?,
                    p50: row
                        .get::<_, Option<i128>>(3)?
                        .map(|_| money_at(row, 3))
                        .transpose()?,
                    p99: row
                        .get::<_, Option<i128>>(4)?
                        .map(|_| money_at(row, 4))
                        .transpose()?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let bins = self
            .conn
            .prepare(&format!(
                "{per_run} SELECT grp, {bin} AS bin, count(*) FROM per_run GROUP BY ALL \
                 ORDER BY grp NULLS FIRST, bin NULLS FIRST",
                bin = sql::bin_sql("cost"),
            ))?
            .query_map(params_from_iter(params.iter()), |row| {
                Ok(RunCostBin {
                    group: row.get(0)?,
                    bin: row.get(1)?,
                    runs: count(row.get(2)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let top = self
            .conn
            .prepare(&format!(
                "SELECT * FROM ({kept} UNION ALL SELECT {SUMMARY_COLUMNS} FROM runs_exact) \
                 ORDER BY cost DESC, agent_run_id ASC NULLS FIRST, tenant_id ASC NULLS FIRST, \
                 feature ASC NULLS FIRST LIMIT {top}"
            ))?
            .query_map(params_from_iter(params.iter()), |row| {
                Ok(RunSummary {
                    agent_run_id: row.get(0)?,
                    tenant_id: row.get(1)?,
                    feature: row.get(2)?,
                    requests: count(row.get(3)?),
                    tool_calls: count(row.get(4)?),
                    input_tokens: count(row.get(5)?),
                    output_tokens: count(row.get(6)?),
                    cost_usd: money_at(row, 7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        self.end_run_split(Ok(Some(RunsOverview { groups, bins, top })))
    }
}

/// A count read as a wide integer (sums are `HUGEINT`).
fn count(value: i128) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The femtodollars in column `i` as money.
fn money_at(row: &duckdb::Row<'_>, i: usize) -> duckdb::Result<Money> {
    let femto: i128 = row.get(i)?;
    Money::from_femto(femto).map_err(|error| {
        duckdb::Error::FromSqlConversionFailure(i, duckdb::types::Type::HugeInt, Box::new(error))
    })
}

#[cfg(test)]
mod tests;
