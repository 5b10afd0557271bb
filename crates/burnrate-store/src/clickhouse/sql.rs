//! Renders a [`QuerySpec`] to SQL that ClickHouse 18.16 runs, and so every later release.
//!
//! The plan is the DuckDB one (`crate::query::sql`): events summed per group, run, price key,
//! tier, input band and day; those rows joined to the price bands in force that day and
//! multiplied out in whole femtodollars (`Decimal(38, 0)`, exact); then summed per group.
//! It takes the forms old ClickHouse knows: nested subqueries instead of `WITH`, one `JOIN`
//! per `SELECT` with `USING`, per-run costs and latencies carried up as arrays instead of
//! joined back, literals escaped inline (18.16 has no query parameters), `ifNull` around
//! comparisons with nullable columns (its `OR` is `NULL` when either side is), and answers
//! as `TabSeparated` (18.16's `toString` of a `Decimal` above 2^64 is wrong; its TSV writer
//! is right). Percentiles are nearest-rank, element ⌈p·n/100⌉ of the sorted list, as in
//! DuckDB; `quantileExact` picks another element.

use burnrate_model::Dimension;

use crate::error::StoreError;
use crate::query::spec::{Bucket, Metric, QuerySpec};

/// A rendered query and its output column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The statement, without a `FORMAT` clause.
    pub sql: String,
    /// Output column names, in order.
    pub columns: Vec<String>,
}

/// What pricing needs: where the bands are and how an event finds its price key.
pub struct Pricing<'a> {
    /// The database.
    pub db: &'a str,
    /// The price book generation whose bands to join.
    pub generation: u64,
    /// The book's input-size thresholds.
    pub thresholds: &'a [u64],
    /// An expression giving an event's price key, `''` when it has none.
    pub key_expr: String,
}

/// `text` as a ClickHouse string literal.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\0' => quoted.push_str("\\0"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// The price-key expression for `pairs` of (provider, model, key): a lookup on
/// `provider \0 model`, `''` for pairs with no key or not listed.
pub fn key_expr(pairs: &[(String, String, Option<String>)]) -> String {
    let priced: Vec<_> = pairs
        .iter()
        .filter_map(|(provider, model, key)| Some((provider, model, key.as_ref()?)))
        .collect();
    if priced.is_empty() {
        return "''".to_owned();
    }
    let from: Vec<String> = priced
        .iter()
        .map(|(provider, model, _)| quote(&format!("{provider}\0{model}")))
        .collect();
    let to: Vec<String> = priced.iter().map(|(_, _, key)| quote(key)).collect();
    format!(
        "transform(concat(provider, '\\0', model), [{}], [{}], '')",
        from.join(", "),
        to.join(", ")
    )
}

/// The expression reading a dimension from the `events` table.
pub fn dimension_expr(dimension: &Dimension) -> String {
    match dimension {
        Dimension::Field(field) => field.as_str().to_owned(),
        // Label names are restricted to [A-Za-z0-9_.-] when parsed; labels are a flat JSON
        // object of strings, which is what `visitParam*` reads.
        Dimension::Label(name) => format!(
            "if(visitParamHas(labels, '{name}'), visitParamExtractString(labels, '{name}'), NULL)"
        ),
    }
}

/// A bucket's start, as the text DuckDB's answers carry (`2026-11-02T00:00:00Z`).
fn bucket_expr(bucket: Bucket) -> String {
    let day = |expr: &str| format!("concat(toString({expr}), 'T00:00:00Z')");
    match bucket {
        Bucket::Hour => {
            "concat(replaceOne(toString(toStartOfHour(ts, 'UTC'), 'UTC'), ' ', 'T'), 'Z')"
                .to_owned()
        }
        Bucket::Day => day("toDate(ts, 'UTC')"),
        Bucket::Week => day("toMonday(ts, 'UTC')"),
        Bucket::Month => day("toStartOfMonth(ts, 'UTC')"),
    }
}

/// The tier an event prices at (mirrors `ServiceTier::from_event`).
const TIER_EXPR: &str = "transform(ifNull(service_tier, ''), ['batch', 'flex', 'priority', \
     'scale'], ['batch', 'flex', 'priority', 'priority'], 'standard')";

fn band_expr(thresholds: &[u64]) -> String {
    if thresholds.is_empty() {
        return "toUInt8(0)".to_owned();
    }
    let terms: Vec<String> = thresholds
        .iter()
        .map(|t| format!("(input_tokens > {t})"))
        .collect();
    format!("toUInt8({})", terms.join(" + "))
}

/// The `WHERE` condition of the spec's range and filters.
pub fn where_clause(spec: &QuerySpec) -> String {
    let since = spec.since.timestamp_micros();
    let until = spec.until.timestamp_micros();
    // `ts` (seconds) prunes partitions and the primary key; `ts_us` is exact.
    let mut clauses = vec![
        format!("ts >= toDateTime({})", since.div_euclid(1_000_000)),
        format!("ts <= toDateTime({})", until.div_euclid(1_000_000)),
        format!("ts_us >= {since}"),
        format!("ts_us < {until}"),
    ];
    for filter in &spec.filters {
        let column = dimension_expr(&filter.dimension);
        let integer = matches!(&filter.dimension, Dimension::Field(f) if f.is_integer());
        let alternatives: Vec<String> = filter
            .values
            .iter()
            .map(|value| {
                if value.is_empty() {
                    format!("isNull({column})")
                } else if integer {
                    // A value that is not a number matches nothing, as DuckDB's TRY_CAST.
                    value.parse::<i64>().map_or("0".to_owned(), |number| {
                        format!("ifNull({column} = {number}, 0)")
                    })
                } else {
                    format!("ifNull({column} = {}, 0)", quote(value))
                }
            })
            .collect();
        let any = format!("({})", alternatives.join(" OR "));
        clauses.push(if filter.negate {
            format!("NOT {any}")
        } else {
            any
        });
    }
    clauses.join(" AND ")
}

/// Columns summed from events, by name: each level of a query sums them again.
const SUMS: &[(&str, &str)] = &[
    ("t_requests", "count()"),
    ("t_errors", "countIf(status = 'error')"),
    ("t_input", "sum(input_tokens)"),
    ("t_cache_read", "sum(cache_read_tokens)"),
    ("t_cache_write", "sum(cache_write_tokens)"),
    ("t_cache_write_1h", "sum(cache_write_1h_tokens)"),
    ("t_output", "sum(output_tokens)"),
    ("t_reasoning", "sum(reasoning_tokens)"),
    ("t_tool_calls", "sum(tool_calls)"),
    ("t_layer_prompt", "sum(layer_prompt)"),
    ("t_layer_tool", "sum(layer_tool)"),
    ("t_layer_memory", "sum(layer_memory)"),
    ("t_layered", "count(layer_prompt)"),
    ("t_successes", "countIf(ifNull(outcome_success, 0) = 1)"),
];

const COST_EXPR: &str = "toDecimal128(t_input - t_cache_read - t_cache_write, 0) * p_input \
    + toDecimal128(t_cache_read, 0) * p_cache_read \
    + toDecimal128(t_cache_write - t_cache_write_1h, 0) * p_cache_write_5m \
    + toDecimal128(t_cache_write_1h, 0) * p_cache_write_1h \
    + toDecimal128(t_output - t_reasoning, 0) * p_output \
    + toDecimal128(t_reasoning, 0) * p_reasoning";

const NAIVE_COST_EXPR: &str =
    "toDecimal128(t_input, 0) * p_input + toDecimal128(t_output, 0) * p_output";

impl Pricing<'_> {
    /// Events matching `filter` summed per `keys` (alias, expression), optional `run`,
    /// price key, tier, band and day, then priced: the sums plus `cost` and `naive_cost`
    /// (femtodollars, 0 when unpriced), `unpriced` (calls with no price) and, with
    /// `latency`, `millis` (the calls' durations).
    pub fn priced(
        &self,
        keys: &[(String, String)],
        run: Option<&str>,
        filter: &str,
        latency: bool,
    ) -> String {
        let mut select: Vec<String> = keys
            .iter()
            .map(|(alias, expr)| format!("{expr} AS {alias}"))
            .collect();
        let mut names: Vec<String> = keys.iter().map(|(alias, _)| alias.clone()).collect();
        if let Some(run) = run {
            select.push(format!("{run} AS run"));
            names.push("run".to_owned());
        }
        select.push(format!("{} AS price_key", self.key_expr));
        select.push(format!("{TIER_EXPR} AS tier"));
        select.push(format!("{} AS band", band_expr(self.thresholds)));
        select.push("toDate(ts, 'UTC') AS day".to_owned());
        let group = [
            names.clone(),
            ["price_key", "tier", "band", "day"]
                .map(String::from)
                .to_vec(),
        ]
        .concat();
        select.extend(SUMS.iter().map(|(name, expr)| format!("{expr} AS {name}")));
        names.extend(SUMS.iter().map(|(name, _)| (*name).to_owned()));
        if latency {
            select.push("groupArray(duration_ms) AS millis".to_owned());
            names.push("millis".to_owned());
        }
        format!(
            "SELECT {names}, {COST_EXPR} AS cost, {NAIVE_COST_EXPR} AS naive_cost, \
             if(priced = 1, 0, t_requests) AS unpriced \
             FROM (SELECT {select} FROM {db}.events WHERE {filter} GROUP BY {group}) AS b \
             ALL LEFT JOIN (SELECT price_key, tier, band, valid_from, valid_to, priced, \
             p_input, p_cache_read, p_cache_write_5m, p_cache_write_1h, p_output, p_reasoning \
             FROM {db}.price_bands WHERE generation = {generation}) AS p USING (price_key, tier, band) \
             WHERE price_key = '' OR (day >= valid_from AND day < valid_to)",
            names = names.join(", "),
            select = select.join(", "),
            group = group.join(", "),
            db = self.db,
            generation = self.generation,
        )
    }

    /// The priced rows summed per `keys` (aliases of `priced`): the sums, `cost`,
    /// `naive_cost`, `unpriced`; with `runs`, `runs` and `costs` (sorted per-run costs);
    /// `run_max`, `run_min_priced` and `runs_priced`; with `latency`, `millis` (sorted). Without keys, sums over no rows are `NULL`, as in
    /// DuckDB.
    fn groups(&self, keys: &[String], priced: &str, runs: bool, latency: bool) -> String {
        let total = |expr: String| {
            if keys.is_empty() {
                format!("if(count() = 0, NULL, {expr})")
            } else {
                expr
            }
        };
        let mut select: Vec<String> = keys.to_vec();
        for (name, _) in SUMS {
            select.push(format!("{} AS {name}", total(format!("sum({name})"))));
        }
        select.push(format!("{} AS unpriced", total("sum(unpriced)".to_owned())));
        select.push("sum(naive_cost) AS naive_cost".to_owned());
        let mut from = priced.to_owned();
        if runs {
            // Per group and run first; calls outside any run have a NULL run.
            let mut per_run: Vec<String> = keys.to_vec();
            per_run.push("run".to_owned());
            per_run.extend(
                SUMS.iter()
                    .map(|(name, _)| format!("sum({name}) AS {name}")),
            );
            per_run.push("sum(unpriced) AS unpriced".to_owned());
            per_run.push("sum(naive_cost) AS naive_cost".to_owned());
            per_run.push("sum(cost) AS run_cost".to_owned());
            if latency {
                per_run.push("groupArrayArray(millis) AS millis".to_owned());
            }
            per_run.push("ifNull(run, '') AS run_key".to_owned());
            let group = [keys.to_vec(), vec!["run".to_owned()]].concat().join(", ");
            let level = format!(
                "SELECT {} FROM ({from}) GROUP BY {group}",
                per_run.join(", ")
            );
            // Each run's whole cost in the query, beside each of its groups.
            let mut columns: Vec<String> = keys.to_vec();
            columns.push("run".to_owned());
            columns.extend(SUMS.iter().map(|(name, _)| (*name).to_owned()));
            columns.extend(["unpriced", "naive_cost", "run_cost"].map(String::from));
            if latency {
                columns.push("millis".to_owned());
            }
            columns.push("run_total".to_owned());
            from = format!(
                "SELECT {} FROM ({level}) AS l ALL LEFT JOIN (SELECT run_key, \
                 sum(run_cost) AS run_total FROM ({level}) GROUP BY run_key) AS t USING (run_key)",
                columns.join(", ")
            );
            select.push("sum(run_cost) AS cost".to_owned());
            select.push("countIf(isNotNull(run)) AS runs".to_owned());
            select.push(format!(
                "arraySort(groupArrayIf({}, isNotNull(run))) AS costs",
                sortable_money("run_cost")
            ));
            // The spread (costliest run over cheapest run that cost anything), in decimals.
            select.push("maxIf(run_cost, isNotNull(run)) AS run_max".to_owned());
            select.push(
                "minIf(run_cost, isNotNull(run) AND run_cost > 0) AS run_min_priced".to_owned(),
            );
            select.push("countIf(isNotNull(run) AND run_cost > 0) AS runs_priced".to_owned());
            select.push("sumIf(run_cost, isNotNull(run)) AS in_runs".to_owned());
            select.push("sumIf(run_total, isNotNull(run)) AS of_runs".to_owned());
        } else {
            select.push("sum(cost) AS cost".to_owned());
        }
        if latency {
            select.push("arraySort(groupArrayArray(millis)) AS millis".to_owned());
        }
        let group = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        };
        format!("SELECT {} FROM ({from}){group}", select.join(", "))
    }
}

/// Femtodollars as 38 digits with leading zeros: text that sorts as the amount does.
/// 18.16 crashes collecting `Decimal` values into arrays (`groupArray`) and sorts by them
/// slowly, so per-run costs travel and money sorts as this text, built from two `UInt64` halves (its `toString` of a large `Decimal`
/// is wrong, of a `UInt64` right).
pub(super) fn sortable_money(expr: &str) -> String {
    let e18 = "toDecimal128(1000000000000000000, 0)";
    let padded = |digits: &str, width: usize| {
        format!(
            "concat(substring('{}', 1, {width} - length({digits})), {digits})",
            "0".repeat(width)
        )
    };
    let high = format!("toString(toUInt64({expr} / {e18}))");
    let low = format!("toString(toUInt64({expr} - ({expr} / {e18}) * {e18}))");
    format!("concat({}, {})", padded(&high, 20), padded(&low, 18))
}

/// Nearest-rank percentile of a sorted array, `NULL` when it is empty.
fn percentile(list: &str, percent: u32) -> String {
    format!("if(length({list}) = 0, NULL, {list}[intDiv({percent} * length({list}) + 99, 100)])")
}

/// The SQL of one metric over a `groups` row.
fn metric_expr(metric: Metric, total_cost: &str) -> String {
    match metric {
        Metric::Requests => "t_requests".into(),
        Metric::CostUsd => "cost".into(),
        Metric::NaiveCostUsd => "naive_cost".into(),
        Metric::InputTokens => "t_input".into(),
        Metric::UncachedInputTokens => "t_input - t_cache_read - t_cache_write".into(),
        Metric::CacheReadTokens => "t_cache_read".into(),
        Metric::CacheWriteTokens => "t_cache_write".into(),
        Metric::OutputTokens => "t_output".into(),
        Metric::ReasoningTokens => "t_reasoning".into(),
        Metric::CacheHitRate => "toFloat64(t_cache_read) / nullIf(t_input, 0)".into(),
        Metric::ToolCalls => "t_tool_calls".into(),
        Metric::Runs => "runs".into(),
        Metric::CostPerRunP50 => percentile("costs", 50),
        Metric::CostPerRunP90 => percentile("costs", 90),
        Metric::CostPerRunP99 => percentile("costs", 99),
        Metric::CostPerRunMin => "if(length(costs) = 0, NULL, costs[1])".into(),
        Metric::CostPerRunMax => "if(length(costs) = 0, NULL, costs[length(costs)])".into(),
        Metric::RunCostSpread => "if(runs_priced = 0, NULL, \
             toFloat64(run_max) / toFloat64(run_min_priced))"
            .into(),
        Metric::RunCostShare => "toFloat64(in_runs) / nullIf(toFloat64(of_runs), 0)".into(),
        Metric::ErrorRate => "toFloat64(t_errors) / t_requests".into(),
        Metric::LatencyP50Ms => percentile("millis", 50),
        Metric::LatencyP99Ms => percentile("millis", 99),
        Metric::ShareOfCost => format!("toFloat64(cost) / nullIf({total_cost}, 0)"),
        Metric::UnpricedRequests => "unpriced".into(),
        Metric::PromptTokens => "t_layer_prompt".into(),
        Metric::ToolTokens => "t_layer_tool".into(),
        Metric::MemoryTokens => "t_layer_memory".into(),
        Metric::PromptTokensPerCall => "toFloat64(t_layer_prompt) / nullIf(t_layered, 0)".into(),
        Metric::ToolTokensPerCall => "toFloat64(t_layer_tool) / nullIf(t_layered, 0)".into(),
        Metric::MemoryTokensPerCall => "toFloat64(t_layer_memory) / nullIf(t_layered, 0)".into(),
        Metric::Outcomes => "t_successes".into(),
        // Femtodollars, rounded down (decimal division truncates). `if` evaluates both
        // branches, and a decimal division by zero is an error.
        Metric::CostPerOutcome => "if(ifNull(t_successes, 0) = 0, NULL, \
             cost / toDecimal128(greatest(t_successes, 1), 0))"
            .into(),
    }
}

/// Renders a validated spec.
pub fn render(spec: &QuerySpec, pricing: &Pricing<'_>) -> Rendered {
    let filter = where_clause(spec);
    let runs = spec.metrics.iter().any(|m| m.needs_runs());
    let latency = spec.metrics.iter().any(|m| m.needs_latency());
    let mut keys: Vec<(String, String)> = spec
        .group_by
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("g{i}"), dimension_expr(d)))
        .collect();
    if let Some(bucket) = spec.bucket {
        keys.push(("bucket".to_owned(), bucket_expr(bucket)));
    }
    let names: Vec<String> = keys.iter().map(|(alias, _)| alias.clone()).collect();
    let priced = pricing.priced(&keys, runs.then_some("agent_run_id"), &filter, latency);
    let groups = pricing.groups(&names, &priced, runs, latency);
    // A double: 18.16 cannot return a `Decimal` from a scalar subquery.
    let total_cost = if spec.metrics.contains(&Metric::ShareOfCost) {
        format!(
            "(SELECT toFloat64(sum(cost)) FROM ({}))",
            pricing.priced(&[], None, &filter, false)
        )
    } else {
        "0".to_owned()
    };

    let (columns, select) = crate::query::sql::output_columns(
        spec,
        |i| format!("toString(g{i})"),
        "bucket",
        |metric| metric_expr(metric, &total_cost),
    );
    // 18.16 sorts a `Decimal` key among others very slowly (minutes for 171k rows where a
    // string key takes a second), so money sorts as its zero-padded text.
    let order_by = crate::query::sql::order_by(spec, &names, "", |metric| {
        let expr = metric_expr(metric, &total_cost);
        match metric {
            Metric::CostUsd | Metric::NaiveCostUsd | Metric::CostPerOutcome => {
                sortable_money(&expr)
            }
            _ => expr,
        }
    });

    let mut restrict = String::new();
    let mut limit = String::new();
    if let Some(top) = spec.top {
        if spec.bucket.is_some() && !spec.group_by.is_empty() {
            // Keep the N groups with the most cost over the whole range, every bucket of
            // each. `IN` never matches NULL, so absent values compare as a marker.
            let dims: Vec<String> = (0..spec.group_by.len()).map(|i| format!("g{i}")).collect();
            let marked: Vec<String> = dims
                .iter()
                .map(|d| format!("ifNull(toString({d}), '\\0')"))
                .collect();
            let ordered: Vec<String> = dims.iter().map(|d| format!("{d} ASC NULLS LAST")).collect();
            restrict = format!(
                " WHERE ({marked}) IN (SELECT {marked} FROM ({groups}) GROUP BY {dims} \
                 ORDER BY {cost} DESC, {ordered} LIMIT {top})",
                cost = sortable_money("sum(cost)"),
                marked = marked.join(", "),
                dims = dims.join(", "),
                ordered = ordered.join(", "),
            );
        } else {
            limit = format!(" LIMIT {top}");
        }
    }
    let sql = format!(
        "SELECT {} FROM ({groups}){restrict} {order_by}{limit}",
        select.join(", ")
    );
    Rendered { sql, columns }
}

/// Parses a `TabSeparated` answer of `width` columns; `\N` is `None`.
pub fn tsv_rows(text: &str, width: usize) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    text.lines()
        .map(|line| {
            let fields: Vec<Option<String>> = line.split('\t').map(unescape).collect();
            if fields.len() == width {
                Ok(fields)
            } else {
                Err(StoreError::ClickHouse(format!(
                    "answer row has {} columns where {width} were expected: `{line}`",
                    fields.len()
                )))
            }
        })
        .collect()
}

/// One `TabSeparated` field: `\N` is NULL; backslash escapes are undone.
fn unescape(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut text = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('t') => text.push('\t'),
            Some('r') => text.push('\r'),
            Some('0') => text.push('\0'),
            Some('b') => text.push('\u{8}'),
            Some('f') => text.push('\u{c}'),
            Some(other) => text.push(other),
            None => text.push('\\'),
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_would_end_or_bend_a_literal() {
        assert_eq!(quote("it's a \\ test"), "'it\\'s a \\\\ test'");
        assert_eq!(quote("a\tb\nc\0"), "'a\\tb\\nc\\0'");
    }

    #[test]
    fn tsv_fields_unescape_and_null_is_none() {
        let rows = tsv_rows("a\\tb\t\\N\tx\\\\y\n", 3).unwrap();
        assert_eq!(
            rows,
            vec![vec![Some("a\tb".into()), None, Some("x\\y".into())]]
        );
        assert!(tsv_rows("a\tb\n", 3).is_err());
    }
}
