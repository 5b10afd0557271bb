//! Renders a [`QuerySpec`] to SQL.
//!
//! Cost is derived at query time: each row read (an event, or a roll-up row summing calls of
//! one model, service tier and input-size band in one hour) is joined to the price band in
//! force that day and multiplied out in whole femtodollars (exact integers); then summed per
//! group. Percentiles use the nearest-rank definition: the value at rank ⌈p·n/100⌉ of the
//! sorted list, computed with integer arithmetic so every backend picks the same element.

use burnrate_model::Dimension;

use super::spec::{Bucket, Metric, MetricKind, OrderKey, QuerySpec};

/// SQL with its positional text parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The statement; `?` marks parameters.
    pub sql: String,
    /// Parameters in order.
    pub params: Vec<String>,
    /// Output column names, in order.
    pub columns: Vec<String>,
}

/// Per-run costs a query takes from elsewhere than its own priced rows (the run totals):
/// SQL selecting the group keys (`g0`, ...; the spec has no bucket), `run` and `run_cost`,
/// one row per run and group, and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCosts {
    /// The select.
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<String>,
}

/// The SQL expression reading a dimension from the `events` table.
pub fn dimension_expr(dimension: &Dimension) -> String {
    match dimension {
        Dimension::Field(field) => field.as_str().to_owned(),
        Dimension::Label(name) => crate::duck::label_expr(name),
    }
}

fn bucket_expr(bucket: Bucket) -> String {
    format!("date_trunc('{}', ts)", bucket.as_str())
}

/// The band of a call: how many of the price book's thresholds its input exceeds.
pub fn band_expr(thresholds: &[u64]) -> String {
    if thresholds.is_empty() {
        return "0".to_owned();
    }
    thresholds
        .iter()
        .map(|t| format!("CAST(input_tokens > {t} AS INTEGER)"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The band under `thresholds` of a roll-up row whose input class counts the thresholds of
/// `universe` (ascending; it holds every one of `thresholds`): input > the k-th threshold
/// of the universe exactly when the class exceeds k.
fn rollup_band_expr(thresholds: &[u64], universe: &[u64]) -> String {
    if thresholds.is_empty() {
        return "0".to_owned();
    }
    thresholds
        .iter()
        .map(|t| {
            let k = universe.iter().position(|u| u == t).unwrap_or(usize::MAX);
            format!("CAST(input_class > {k} AS INTEGER)")
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The tier an event's `service_tier` prices at (mirrors `ServiceTier::from_event`).
pub const TIER_EXPR: &str = "CASE service_tier WHEN 'batch' THEN 'batch' WHEN 'flex' THEN 'flex' \
     WHEN 'priority' THEN 'priority' WHEN 'scale' THEN 'priority' ELSE 'standard' END";

/// The WHERE clause for the spec's range and filters over the `events` table, with its
/// parameters.
pub fn where_clause(spec: &QuerySpec, params: &mut Vec<String>) -> String {
    where_clause_with(spec, params, dimension_expr)
}

/// The WHERE clause for the spec's range and filters, each dimension read by `column`.
fn where_clause_with(
    spec: &QuerySpec,
    params: &mut Vec<String>,
    column: impl Fn(&Dimension) -> String,
) -> String {
    params.push(spec.since.naive_utc().to_string());
    params.push(spec.until.naive_utc().to_string());
    let mut clauses = vec![
        "ts >= CAST(? AS TIMESTAMP)".to_owned(),
        "ts < CAST(? AS TIMESTAMP)".to_owned(),
    ];
    clauses.extend(filter_clauses(spec, params, column));
    clauses.join(" AND ")
}

/// One condition per filter of the spec, each dimension read by `column`.
pub fn filter_clauses(
    spec: &QuerySpec,
    params: &mut Vec<String>,
    column: impl Fn(&Dimension) -> String,
) -> Vec<String> {
    let mut clauses = Vec::with_capacity(spec.filters.len());
    for filter in &spec.filters {
        let column = column(&filter.dimension);
        let integer = matches!(&filter.dimension, Dimension::Field(f) if f.is_integer());
        let mut alternatives = Vec::new();
        for value in &filter.values {
            if value.is_empty() {
                alternatives.push(format!("{column} IS NULL"));
            } else {
                params.push(value.clone());
                let placeholder = if integer {
                    "TRY_CAST(? AS INTEGER)"
                } else {
                    "?"
                };
                alternatives.push(format!("{column} = {placeholder}"));
            }
        }
        let any = format!("({})", alternatives.join(" OR "));
        clauses.push(if filter.negate {
            format!("NOT coalesce({any}, false)")
        } else {
            any
        });
    }
    clauses
}

/// The percentiles of run cost a query can ask for, computed together.
const RUN_QUANTILES: [u32; 3] = [50, 90, 99];

/// Nearest-rank percentile of a sorted 1-based list.
fn percentile(list: &str, percent: u32) -> String {
    format!("{list}[({percent} * len({list}) + 99) // 100]")
}

/// The expression of the cost of a `priced` row in femtodollars, from summed token columns
/// `b.*` and per-token prices `p.*`.
const COST_EXPR: &str = "(b.input_tokens - b.cache_read_tokens - b.cache_write_tokens) * p.input \
    + b.cache_read_tokens * p.cache_read \
    + (b.cache_write_tokens - b.cache_write_1h_tokens) * p.cache_write_5m \
    + b.cache_write_1h_tokens * p.cache_write_1h \
    + (b.output_tokens - b.reasoning_tokens) * p.output \
    + b.reasoning_tokens * p.reasoning";

const NAIVE_COST_EXPR: &str = "b.input_tokens * p.input + b.output_tokens * p.output";

/// Where a query reads the sums it prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows<'a> {
    /// The `events` table, one row per call.
    Events,
    /// The roll-ups: a daily one for the whole days `days` (when given), `rollup` for the
    /// other whole hours in `[from, to)`, and `events` for the parts of hours at the range's
    /// ends. `universe` lists the thresholds the roll-ups' input classes count; it holds
    /// every threshold of the query's bands.
    Rollup {
        /// The roll-ups' thresholds, ascending.
        universe: &'a [u64],
        /// The whole hours the roll-ups answer for.
        from: chrono::NaiveDateTime,
        /// End of those hours, exclusive.
        to: chrono::NaiveDateTime,
        /// The whole days within them a daily roll-up answers for.
        days: Option<Days>,
    },
}

/// Whole days a daily roll-up answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    /// The daily roll-up's table.
    pub table: &'static str,
    /// The first day.
    pub start: chrono::NaiveDateTime,
    /// End of the days, exclusive.
    pub end: chrono::NaiveDateTime,
    /// The table holding the same days' sums already priced and summed per day, tenant and
    /// user (`user_day_costs`), when it is current and the query groups and filters
    /// only by its keys: [`priced_ctes`] reads it instead of pricing `table`'s rows (every
    /// other reader reads `table`).
    pub priced: Option<&'static str>,
}

impl Rows<'_> {
    /// SQL reading `dimension` from a row: a label the roll-ups keep is their column (the
    /// events read where roll-ups are read carry it too), any other as from the events.
    pub fn dimension_expr(&self, dimension: &Dimension) -> String {
        match (self, dimension) {
            (Rows::Rollup { .. }, Dimension::Label(label)) => {
                match crate::duck::kept_label_column(label) {
                    Some(column) => column.to_owned(),
                    None => dimension_expr(dimension),
                }
            }
            _ => dimension_expr(dimension),
        }
    }

    /// SQL for whether a row's calls have no `user_id`.
    pub fn user_missing_expr(&self) -> &'static str {
        match self {
            Rows::Events => "user_id IS NULL",
            Rows::Rollup { .. } => crate::duck::USER_MISSING,
        }
    }

    /// SQL for the run a call counts in when runs are reached outcomes: its agent run, else
    /// the call itself (only calls outside runs that reached an outcome need their own).
    pub fn outcome_run_expr(&self) -> &'static str {
        match self {
            Rows::Events => "coalesce(agent_run_id, CAST(id AS VARCHAR))",
            Rows::Rollup { .. } => "coalesce(agent_run_id, CAST(call_id AS VARCHAR))",
        }
    }

    /// SQL for whether a row's calls are outside any run and reached an outcome (each counts
    /// as its own run, [`Rows::outcome_run_expr`]).
    pub fn outcome_call_expr(&self) -> &'static str {
        match self {
            Rows::Events => "agent_run_id IS NULL AND outcome_name IS NOT NULL",
            Rows::Rollup { .. } => "call_id IS NOT NULL",
        }
    }

    /// The band of a row under `thresholds`: from the input for events, from the input class
    /// for the roll-up (input > the k-th threshold of the universe exactly when the class
    /// exceeds k).
    fn band(&self, thresholds: &[u64]) -> String {
        match self {
            Rows::Events => band_expr(thresholds),
            Rows::Rollup { universe, .. } => rollup_band_expr(thresholds, universe),
        }
    }

    /// `FROM ... WHERE ...` over `rows` with the spec's range and filters, as one SELECT or
    /// a UNION ALL of a daily roll-up's whole days, the hourly roll-up's other whole hours
    /// and the events at the ends; `select` renders a part's select list and grouping from
    /// whether it reads a roll-up (every roll-up has the sums and the derived keys but
    /// `call_id`; [`crate::duck::DuckStore::rows_reading`] chose one that keeps the spec's
    /// dimensions, so a caller reading other columns must name them in the spec it chose by).
    pub fn scan(
        &self,
        spec: &QuerySpec,
        params: &mut Vec<String>,
        select: impl Fn(bool) -> (String, String),
    ) -> String {
        self.scan_parts(spec, params, select, false)
            .join(" UNION ALL ")
    }

    /// The SELECTs of [`Rows::scan`], without the daily roll-up's when `skip_days`.
    fn scan_parts(
        &self,
        spec: &QuerySpec,
        params: &mut Vec<String>,
        select: impl Fn(bool) -> (String, String),
        skip_days: bool,
    ) -> Vec<String> {
        match self {
            Rows::Events => {
                let (list, tail) = select(false);
                let filter = where_clause(spec, params);
                vec![format!("SELECT {list} FROM events WHERE {filter}{tail}")]
            }
            Rows::Rollup {
                universe,
                from,
                to,
                days,
            } => {
                let mut parts = Vec::new();
                let mut part = |table: &str, within: String, rollup: bool| {
                    let (list, tail) = select(rollup);
                    let filter = where_clause_with(spec, params, |d| self.dimension_expr(d));
                    parts.push(format!(
                        "SELECT {list} FROM {table} WHERE {filter} AND {within}{tail}"
                    ));
                };
                let span = |from: &chrono::NaiveDateTime, to: &chrono::NaiveDateTime| {
                    format!("ts >= TIMESTAMP '{from}' AND ts < TIMESTAMP '{to}'")
                };
                let mut hours = span(from, to);
                if let Some(Days {
                    table, start, end, ..
                }) = days
                {
                    if !skip_days {
                        part(table, span(start, end), true);
                    }
                    if start > from || end < to {
                        hours.push_str(&format!(
                            " AND (ts < TIMESTAMP '{start}' OR ts >= TIMESTAMP '{end}')"
                        ));
                        part("rollup", hours, true);
                    }
                } else {
                    part("rollup", hours, true);
                }
                let since = spec.since.naive_utc();
                let until = spec.until.naive_utc();
                if since < *from || *to < until {
                    part(
                        &crate::duck::events_as_rollup_sql(universe),
                        format!("(ts < TIMESTAMP '{from}' OR ts >= TIMESTAMP '{to}')"),
                        false,
                    );
                }
                parts
            }
        }
    }

    /// The SELECT of the whole days [`Days::priced`] answers for, with the spec's filters and
    /// each row's `keys` (alias, expression), [`row_values_sql`](crate::duck::row_values_sql)
    /// and its `cost`, `naive_cost` and `unpriced`; `None` when there is no such table.
    fn priced_days(
        &self,
        spec: &QuerySpec,
        params: &mut Vec<String>,
        key_select: &str,
    ) -> Option<String> {
        let Rows::Rollup {
            days:
                Some(Days {
                    start,
                    end,
                    priced: Some(table),
                    ..
                }),
            ..
        } = self
        else {
            return None;
        };
        let filter = where_clause_with(spec, params, |d| self.dimension_expr(d));
        Some(format!(
            "SELECT {key_select}{values}, cost, naive_cost, unpriced FROM {table} WHERE {filter} \
             AND ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}'",
            values = crate::duck::row_values_sql(true),
        ))
    }
}

/// The run each priced row counts in, and which runs to read.
#[derive(Debug, Clone, Copy)]
pub struct RunKey<'a> {
    /// SQL of a row's run.
    pub expr: &'a str,
    /// A condition on the rows to read; `None`: every row.
    pub only: Option<&'a str>,
}

impl<'a> RunKey<'a> {
    /// Every row's run, by `expr`.
    pub fn every(expr: &'a str) -> RunKey<'a> {
        RunKey { expr, only: None }
    }
}

/// The `base` and `priced` common table expressions: the rows (events or roll-up rows) in
/// the spec's range that match its filters (and [`RunKey::only`]), each with its
/// `keys` (alias, expression), optional `run` key, model, tier, band, day and [`row_values_sql`](crate::duck::row_values_sql),
/// then priced in femtodollars (`cost`, `naive_cost`; `unpriced` counts calls with no price)
/// when `with_prices` (`NULL` and 0 otherwise: no join to the prices). Pushes the
/// filters' parameters onto `params`.
///
/// Each row is priced as it is, without summing first: the join is against a few dozen price
/// rows, and one grouping by the query's own keys afterwards is cheaper than two.
pub fn priced_ctes(
    keys: &[(String, String)],
    run: Option<RunKey<'_>>,
    spec: &QuerySpec,
    params: &mut Vec<String>,
    thresholds: &[u64],
    rows: Rows<'_>,
    with_prices: bool,
) -> String {
    let key_select: String = keys
        .iter()
        .map(|(alias, expr)| format!("{expr} AS {alias}, "))
        .collect();
    let run_select = run
        .map(|run| format!("{} AS run, ", run.expr))
        .unwrap_or_default();
    let only = run
        .and_then(|run| run.only)
        .map(|condition| format!(" AND ({condition})"))
        .unwrap_or_default();
    let band = rows.band(thresholds);
    // Pre-priced days, only where no run is read (their rows hold no run ids) and the rows
    // are priced (else their costs would count where the others' are NULL).
    let priced_days = with_prices
        && run.is_none()
        && matches!(
            rows,
            Rows::Rollup {
                days: Some(Days {
                    priced: Some(_),
                    ..
                }),
                ..
            }
        );
    let base_parts = rows.scan_parts(
        spec,
        params,
        |rollup| {
            (
                format!(
                    "{key_select}{run_select}provider, model, {TIER_EXPR} AS tier, {band} AS band, \
                     CAST(ts AS DATE) AS day, {}",
                    crate::duck::row_values_sql(rollup)
                ),
                only.clone(),
            )
        },
        priced_days,
    );
    let pre_priced = priced_days
        .then(|| rows.priced_days(spec, params, &key_select))
        .flatten();
    // By name where pre-priced rows join the rows priced here, which also carry what they
    // were priced by.
    let joined = |name: &str| price_join(name, with_prices, &base_parts.join(" UNION ALL "));
    match pre_priced {
        None => joined("priced"),
        Some(days) if base_parts.is_empty() => format!("WITH priced AS ({days})"),
        Some(days) => format!(
            "{}, priced AS (SELECT * FROM joined UNION ALL BY NAME {days})",
            joined("joined")
        ),
    }
}

/// `WITH base AS (base), name AS (...)`: each row of `base` (token sums with their provider,
/// model, tier, band and day) joined to the price band in force that day and priced in
/// femtodollars (`cost`, `naive_cost`; `NULL` without a price, and `unpriced` counts its
/// calls); `NULL` and 0 without `with_prices` (no join).
fn price_join(name: &str, with_prices: bool, base: &str) -> String {
    if !with_prices {
        return format!(
            "WITH base AS ({base}), {name} AS (SELECT b.*, CAST(NULL AS HUGEINT) AS cost, \
             CAST(NULL AS HUGEINT) AS naive_cost, 0 AS unpriced FROM base b)"
        );
    }
    format!(
        "WITH base AS ({base}), \
         {name} AS (SELECT b.*, {COST_EXPR} AS cost, {NAIVE_COST_EXPR} AS naive_cost, \
         CASE WHEN p.price_key IS NULL THEN b.requests ELSE 0 END AS unpriced \
         FROM base b LEFT JOIN (SELECT m.provider, m.model, p.* FROM model_map m \
         JOIN price_bands p USING (price_key)) p ON p.provider = b.provider \
         AND p.model = b.model AND p.tier = b.tier AND p.band = b.band \
         AND b.day >= p.valid_from AND b.day < p.valid_to)",
    )
}

/// The columns pricing adds to a row: what it cost, what it would have cost without cache
/// and reasoning prices, and its calls without a price.
pub const PRICED_COLUMNS: [&str; 3] = ["cost", "naive_cost", "unpriced"];

/// SQL pricing the rows of `table` (a roll-up with the user-day roll-up's columns) that
/// `filter` holds for, summed per day, tenant and user: `ts`, `tenant_id`, `user_id`, the
/// sums of [`row_values_sql`](crate::duck::row_values_sql), `cost`, `naive_cost` and
/// `unpriced`, priced exactly as queries price (what [`Days::priced`] tables hold).
pub fn priced_user_days_sql(
    table: &str,
    filter: &str,
    thresholds: &[u64],
    universe: &[u64],
) -> String {
    let band = rollup_band_expr(thresholds, universe);
    let base = format!(
        "SELECT ts, tenant_id, user_id, provider, model, {TIER_EXPR} AS tier, {band} AS band, \
         CAST(ts AS DATE) AS day, {} FROM {table} WHERE {filter}",
        crate::duck::row_values_sql(true)
    );
    let sums: Vec<String> = crate::duck::sum_column_names()
        .chain(PRICED_COLUMNS)
        .map(|name| format!("sum({name}) AS {name}"))
        .collect();
    format!(
        "{} SELECT ts, tenant_id, user_id, {} FROM priced GROUP BY ts, tenant_id, user_id",
        price_join("priced", true, &base),
        sums.join(", ")
    )
}

/// Renders a validated spec; `thresholds` are the price book's input-size band thresholds,
/// `rows` where the sums are read, `run_costs` where the per-run costs come from when not
/// from `rows` (which then need not carry run ids).
pub fn render(
    spec: &QuerySpec,
    thresholds: &[u64],
    rows: Rows<'_>,
    run_costs: Option<&RunCosts>,
) -> Rendered {
    let mut params = Vec::new();
    let needs_runs = spec.metrics.iter().any(|m| m.needs_runs());
    let needs_latency = spec.metrics.iter().any(|m| m.needs_latency());

    // Group keys: g0.. for dimensions, then the bucket; as read from `rows` and from the
    // events (for latency, which only the events hold).
    let keys_of = |expr: &dyn Fn(&Dimension) -> String| {
        let mut keys: Vec<(String, String)> = spec
            .group_by
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("g{i}"), expr(d)))
            .collect();
        if let Some(bucket) = spec.bucket {
            keys.push(("bucket".to_owned(), bucket_expr(bucket)));
        }
        keys
    };
    let keys = keys_of(&|d| rows.dimension_expr(d));
    let event_key_select: String = keys_of(&dimension_expr)
        .iter()
        .map(|(alias, expr)| format!("{expr} AS {alias}, "))
        .collect();
    let key_names: Vec<&str> = keys.iter().map(|(alias, _)| alias.as_str()).collect();
    let key_list: String = key_names.iter().map(|k| format!("{k}, ")).collect();
    let mut sql = priced_ctes(
        &keys,
        (needs_runs && run_costs.is_none()).then_some(RunKey::every("agent_run_id")),
        spec,
        &mut params,
        thresholds,
        rows,
        spec.metrics.iter().any(|m| m.needs_prices()),
    );
    let (columns, select) = output_columns(
        spec,
        |i| format!("CAST(g.g{i} AS VARCHAR)"),
        // The instant itself: the fetch writes it as text (`result::instant_cells`).
        "g.bucket",
        metric_expr,
    );
    let order_by = order_by(spec, &key_names, "g.", metric_expr);
    // The top groups are chosen by cost.
    let top_by_cost = spec.top.is_some().then_some("g.cost");
    let read: Vec<&str> = select
        .iter()
        .map(String::as_str)
        .chain([order_by.as_str()])
        .chain(top_by_cost)
        .collect();
    sql.push_str(&format!(
        ", groups AS (SELECT {key_list}{} FROM priced GROUP BY ALL)",
        group_sums(&read)
    ));
    if needs_runs {
        match run_costs {
            Some(costs) => {
                sql.push_str(&format!(", runs AS ({})", costs.sql));
                params.extend(costs.params.iter().cloned());
            }
            None => sql.push_str(&format!(
                ", runs AS (SELECT {key_list}run, coalesce(sum(cost), 0) AS run_cost FROM priced \
                 WHERE run IS NOT NULL GROUP BY ALL)"
            )),
        }
        // A run's whole cost, over every group it is in, only for the share of it.
        let (share, share_join) = if spec.metrics.contains(&Metric::RunCostShare) {
            sql.push_str(
                // Not named `run_totals`: that is the table `runs` may read.
                ", run_wholes AS (SELECT run, sum(run_cost) AS run_total FROM runs GROUP BY run)",
            );
            (
                ", sum(run_cost) AS in_runs, sum(run_total) AS of_runs",
                " JOIN run_wholes USING (run)",
            )
        } else {
            ("", "")
        };
        // Nearest rank: `quantile_disc(x, q)` is the smallest value whose cumulative
        // distribution reaches q, the value at rank ⌈q·n⌉ (DuckDB computes it with integer
        // arithmetic for a decimal literal q), without sorting a list per group.
        let quantiles = if spec.metrics.iter().any(|m| m.run_quantile().is_some()) {
            let qs: Vec<String> = RUN_QUANTILES.iter().map(|p| format!("0.{p:02}")).collect();
            format!(
                ", quantile_disc(run_cost, [{}]) AS quantiles",
                qs.join(", ")
            )
        } else {
            String::new()
        };
        sql.push_str(&format!(
            ", run_stats AS (SELECT {key_list}count(*) AS runs, min(run_cost) AS min_cost, \
             max(run_cost) AS max_cost, min(run_cost) FILTER (WHERE run_cost > 0) AS min_paid\
             {quantiles}{share} FROM runs{share_join} GROUP BY ALL)"
        ));
    }
    if needs_latency {
        let mut latency_params = Vec::new();
        let latency_filter = where_clause(spec, &mut latency_params);
        params.extend(latency_params);
        sql.push_str(&format!(
            ", latency AS (SELECT {event_key_select}list_sort(list(duration_ms)) AS millis FROM events \
             WHERE {latency_filter} AND duration_ms IS NOT NULL GROUP BY ALL)"
        ));
    }

    let join_on = |alias: &str| -> String {
        if key_names.is_empty() {
            "true".to_owned()
        } else {
            key_names
                .iter()
                .map(|k| format!("g.{k} IS NOT DISTINCT FROM {alias}.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        }
    };
    let mut from = "groups g".to_owned();
    if needs_runs {
        from.push_str(&format!(" LEFT JOIN run_stats r ON {}", join_on("r")));
    }
    if needs_latency {
        from.push_str(&format!(" LEFT JOIN latency l ON {}", join_on("l")));
    }
    let mut limit = String::new();
    if let Some(top) = spec.top {
        if spec.bucket.is_some() && !spec.group_by.is_empty() {
            // Keep the N groups with the most cost over the whole range, every bucket of each.
            let dims: Vec<String> = (0..spec.group_by.len()).map(|i| format!("g{i}")).collect();
            let dims_list = dims.join(", ");
            sql.push_str(&format!(
                ", top_groups AS (SELECT {dims_list} FROM groups GROUP BY ALL \
                 ORDER BY sum(cost) DESC, {dims_list} LIMIT {top})"
            ));
            let on: Vec<String> = dims
                .iter()
                .map(|d| format!("g.{d} IS NOT DISTINCT FROM t.{d}"))
                .collect();
            from.push_str(&format!(" SEMI JOIN top_groups t ON {}", on.join(" AND ")));
        } else {
            limit = format!(" LIMIT {top}");
        }
    }
    sql.push_str(&format!(
        " SELECT {} FROM {from} {order_by}{limit}",
        select.join(", ")
    ));
    Rendered {
        sql,
        params,
        columns,
    }
}

/// The sums the `groups` expression can hold, by name, as read by [`metric_expr`] (`g.name`).
const GROUP_SUMS: [(&str, &str); 16] = [
    ("requests", "sum(requests)"),
    ("errors", "sum(errors)"),
    ("cost", "coalesce(sum(cost), 0)"),
    ("naive_cost", "coalesce(sum(naive_cost), 0)"),
    ("unpriced", "sum(unpriced)"),
    ("input_tokens", "sum(input_tokens)"),
    ("cache_read_tokens", "sum(cache_read_tokens)"),
    ("cache_write_tokens", "sum(cache_write_tokens)"),
    ("output_tokens", "sum(output_tokens)"),
    ("reasoning_tokens", "sum(reasoning_tokens)"),
    ("tool_calls", "sum(tool_calls)"),
    ("layer_prompt", "sum(layer_prompt)"),
    ("layer_tool", "sum(layer_tool)"),
    ("layer_memory", "sum(layer_memory)"),
    ("layered", "sum(layered)"),
    ("successes", "sum(successes)"),
];

/// The `groups` sums that the SQL in `read` reads as `g.name`, `requests` always (so the
/// list is never empty). Only those: DuckDB computes every aggregate of a common table
/// expression whether it is read or not (users-daily at 100M events spent 0.13 of 0.66 s on
/// sums nobody read).
fn group_sums(read: &[&str]) -> String {
    GROUP_SUMS
        .iter()
        .filter(|(name, _)| {
            *name == "requests" || read.iter().any(|sql| reads_group_sum(sql, name))
        })
        .map(|(name, sum)| format!("{sum} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `sql` reads `g.{name}` (not merely a longer name that starts with it).
fn reads_group_sum(sql: &str, name: &str) -> bool {
    let column = format!("g.{name}");
    sql.match_indices(&column).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + column.len()..].chars().next();
        let part_of_name =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part_of_name(before) && !part_of_name(after)
    })
}

/// A spec's output column names and their SQL, in order: dimension `i` as `dimension(i)`,
/// the bucket as `bucket`, each metric as `metric_sql` gives.
pub(crate) fn output_columns(
    spec: &QuerySpec,
    dimension: impl Fn(usize) -> String,
    bucket: &str,
    metric_sql: impl Fn(Metric) -> String,
) -> (Vec<String>, Vec<String>) {
    let mut columns = Vec::new();
    let mut select = Vec::new();
    for (i, name) in spec.group_by.iter().enumerate() {
        columns.push(name.to_string());
        select.push(dimension(i));
    }
    if spec.bucket.is_some() {
        columns.push("bucket".to_owned());
        select.push(bucket.to_owned());
    }
    for metric in &spec.metrics {
        columns.push(metric.as_str().to_owned());
        select.push(metric_sql(*metric));
    }
    (columns, select)
}

/// The `ORDER BY` clause of a spec whose group keys are `keys` (read as `{prefix}{key}`;
/// dimension `i` is `g{i}`) and whose metrics' SQL `metric_sql` gives. Ties are broken by
/// the group keys, so results are deterministic and the same on every backend.
pub(crate) fn order_by(
    spec: &QuerySpec,
    keys: &[impl AsRef<str>],
    prefix: &str,
    metric_sql: impl Fn(Metric) -> String,
) -> String {
    let order = spec.effective_order();
    let order_expr = match &order.key {
        OrderKey::Metric(metric) => metric_sql(*metric),
        OrderKey::Dimension(dimension) => {
            let index = spec
                .group_by
                .iter()
                .position(|d| d == dimension)
                .unwrap_or(0);
            format!("{prefix}g{index}")
        }
        OrderKey::Bucket => format!("{prefix}bucket"),
    };
    let direction = if order.descending {
        "DESC NULLS LAST"
    } else {
        "ASC NULLS LAST"
    };
    let mut clause = format!("ORDER BY {order_expr} {direction}");
    if order.key == OrderKey::Bucket
        && let Some(money) = spec.metrics.iter().find(|m| m.kind() == MetricKind::Money)
    {
        clause.push_str(&format!(", {} DESC NULLS LAST", metric_sql(*money)));
    }
    for key in keys {
        let key = key.as_ref();
        // The bucket, when it is what the rows are ordered by, breaks no ties.
        if order.key == OrderKey::Bucket && key == "bucket" {
            continue;
        }
        clause.push_str(&format!(", {prefix}{key} ASC NULLS FIRST"));
    }
    clause
}

/// The SQL of one metric over the joined `g` (groups), `r` (run stats), `l` (latency) rows.
fn metric_expr(metric: Metric) -> String {
    match metric {
        Metric::Requests => "g.requests".into(),
        Metric::CostUsd => "g.cost".into(),
        Metric::NaiveCostUsd => "g.naive_cost".into(),
        Metric::InputTokens => "g.input_tokens".into(),
        Metric::UncachedInputTokens => {
            "g.input_tokens - g.cache_read_tokens - g.cache_write_tokens".into()
        }
        Metric::CacheReadTokens => "g.cache_read_tokens".into(),
        Metric::CacheWriteTokens => "g.cache_write_tokens".into(),
        Metric::OutputTokens => "g.output_tokens".into(),
        Metric::ReasoningTokens => "g.reasoning_tokens".into(),
        Metric::CacheHitRate => {
            "CAST(g.cache_read_tokens AS DOUBLE) / nullif(g.input_tokens, 0)".into()
        }
        Metric::ToolCalls => "g.tool_calls".into(),
        Metric::Runs => "coalesce(r.runs, 0)".into(),
        Metric::CostPerRunP50 | Metric::CostPerRunP90 | Metric::CostPerRunP99 => {
            let percent = metric.run_quantile().unwrap_or_default();
            let index = RUN_QUANTILES
                .iter()
                .position(|p| *p == percent)
                .unwrap_or(0)
                + 1;
            format!("r.quantiles[{index}]")
        }
        Metric::CostPerRunMin => "r.min_cost".into(),
        Metric::CostPerRunMax => "r.max_cost".into(),
        // The costliest run over the cheapest that cost anything.
        Metric::RunCostSpread => {
            "CAST(r.max_cost AS DOUBLE) / nullif(CAST(r.min_paid AS DOUBLE), 0)".into()
        }
        // The group's part of the runs it is in: its cost in them over their whole cost.
        Metric::RunCostShare => {
            "CAST(r.in_runs AS DOUBLE) / nullif(CAST(r.of_runs AS DOUBLE), 0)".into()
        }
        Metric::ErrorRate => "CAST(g.errors AS DOUBLE) / g.requests".into(),
        Metric::LatencyP50Ms => percentile("l.millis", 50),
        Metric::LatencyP99Ms => percentile("l.millis", 99),
        Metric::ShareOfCost => {
            "CAST(g.cost AS DOUBLE) / nullif(CAST((SELECT sum(cost) FROM groups) AS DOUBLE), 0)"
                .into()
        }
        Metric::UnpricedRequests => "g.unpriced".into(),
        Metric::PromptTokens => "g.layer_prompt".into(),
        Metric::ToolTokens => "g.layer_tool".into(),
        Metric::MemoryTokens => "g.layer_memory".into(),
        // Per call that has a layer split (calls without one do not dilute the average).
        Metric::PromptTokensPerCall => {
            "CAST(g.layer_prompt AS DOUBLE) / nullif(g.layered, 0)".into()
        }
        Metric::ToolTokensPerCall => "CAST(g.layer_tool AS DOUBLE) / nullif(g.layered, 0)".into(),
        Metric::MemoryTokensPerCall => {
            "CAST(g.layer_memory AS DOUBLE) / nullif(g.layered, 0)".into()
        }
        Metric::Outcomes => "g.successes".into(),
        // Femtodollars, rounded down to the femtodollar.
        Metric::CostPerOutcome => "g.cost // nullif(g.successes, 0)".into(),
    }
}

/// Runs per group and cost bin ([`crate::query::bins`]) for a spec grouped by one
/// dimension: each run's cost in the group, priced like every query, binned in SQL so only
/// the bins leave the database. Output: group (text), bin (`NULL` for runs that cost
/// nothing), runs.
///
/// DuckDB converts a cost above 2^53 femtodollars (about $9) to a double by its own
/// rounding, so a run within one unit in the last place of a bin edge may land in the next
/// bin from [`crate::query::bins::bin_of`]'s; the counts stay exact.
pub fn render_run_bins(spec: &QuerySpec, thresholds: &[u64], rows: Rows<'_>) -> Rendered {
    let mut params = Vec::new();
    let keys: Vec<(String, String)> = spec
        .group_by
        .iter()
        .take(1)
        .map(|dimension| ("g0".to_owned(), rows.dimension_expr(dimension)))
        .collect();
    let group = if keys.is_empty() {
        "CAST(NULL AS VARCHAR)"
    } else {
        "CAST(g0 AS VARCHAR)"
    };
    let key_list = if keys.is_empty() { "" } else { "g0, " };
    let priced = priced_ctes(
        &keys,
        Some(RunKey::every("agent_run_id")),
        spec,
        &mut params,
        thresholds,
        rows,
        true,
    );
    let sql = format!(
        "{priced}, runs AS (SELECT {key_list}run, coalesce(sum(cost), 0) AS cost FROM priced \
         WHERE run IS NOT NULL GROUP BY ALL) \
         SELECT {group} AS grp, {bin} AS bin, count(*) AS runs FROM runs GROUP BY ALL \
         ORDER BY grp NULLS FIRST, bin NULLS FIRST",
        bin = bin_sql("cost"),
    );
    Rendered {
        sql,
        params,
        columns: vec!["group".into(), "bin".into(), "runs".into()],
    }
}

/// The cost bin ([`crate::query::bins::bin_of`]) of a run costing `cost` femtodollars, `NULL`
/// when it cost nothing.
pub fn bin_sql(cost: &str) -> String {
    format!(
        "CASE WHEN {cost} > 0 THEN CAST(floor(log10(CAST({cost} AS DOUBLE) / 1e15) * {per_decade}) \
         AS BIGINT) END",
        per_decade = crate::query::bins::BINS_PER_DECADE,
    )
}
