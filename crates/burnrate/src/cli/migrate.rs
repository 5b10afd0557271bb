//! `burnrate migrate --from duckdb:PATH --to clickhouse:URL`: moves an embedded ledger up to
//! ClickHouse, its price book with it, then checks that both answer the same totals.
//!
//! Idempotent: events carry their ids and ClickHouse skips ids it holds, so a migration
//! stopped half-way is finished by running it again.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use burnrate_model::UsageEvent;
use burnrate_store::clickhouse::ClickHouse;
use burnrate_store::{Metric, QueryResult, QuerySpec, Store, StoreError};
use indicatif::{ProgressBar, ProgressStyle};

use super::output::print_result;

/// Events sent to ClickHouse per insert.
const BATCH: usize = 50_000;

/// What the two ledgers must agree on.
const TOTALS: &[Metric] = &[
    Metric::Requests,
    Metric::CostUsd,
    Metric::InputTokens,
    Metric::CacheReadTokens,
    Metric::CacheWriteTokens,
    Metric::OutputTokens,
    Metric::ReasoningTokens,
    Metric::UnpricedRequests,
];

/// Runs the migration; fails when the totals differ afterwards.
pub fn run(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let path = from
        .strip_prefix("duckdb:")
        .ok_or_else(|| anyhow!("--from `{from}`: name the embedded ledger as duckdb:PATH"))?;
    // `clickhouse:URL`, or the URL alone when it says what it is.
    let url = match to.strip_prefix("clickhouse:") {
        Some(url) if !url.starts_with("//") => url,
        _ if to.starts_with("clickhouse://") => to,
        _ => {
            return Err(anyhow!(
                "--to `{to}`: name the ClickHouse ledger as clickhouse:clickhouse://HOST:8123/DB"
            ));
        }
    };
    let source = super::query::open_duck(Path::new(path))?;
    let mut target = super::query::connect(url)?;
    target
        .replace_prices(source.prices().clone())
        .context("copying the price book")?;

    let Some((first, last)) = source.time_span()? else {
        outln!("the ledger at {path} is empty: nothing to move");
        return Ok(ExitCode::SUCCESS);
    };
    let bar = progress(source.event_count()?);
    let mut batch: Vec<UsageEvent> = Vec::with_capacity(BATCH);
    let (mut inserted, mut duplicates) = (0, 0);
    let mut send = |batch: &mut Vec<UsageEvent>, target: &mut ClickHouse| {
        let outcome = target.append(batch)?;
        inserted += outcome.inserted;
        duplicates += outcome.duplicates;
        bar.inc(batch.len() as u64);
        batch.clear();
        Ok::<_, StoreError>(())
    };
    // A day at a time: DuckDB sorts what one export returns in memory.
    let end = last + chrono::Duration::microseconds(1);
    let mut day = first;
    while day < end {
        let next = (day + chrono::Duration::days(1)).min(end);
        source.export_events(day, next, |line| {
            let event: UsageEvent = serde_json::from_str(line).map_err(|error| {
                StoreError::Corrupt(format!("an event of {path} does not read back: {error}"))
            })?;
            batch.push(event);
            if batch.len() == BATCH {
                send(&mut batch, &mut target)?;
            }
            Ok(())
        })?;
        day = next;
    }
    send(&mut batch, &mut target)?;
    bar.finish_and_clear();
    outln!("moved {inserted} events to {url} ({duplicates} were there already)");

    let spec = QuerySpec {
        since: first,
        until: end,
        bucket: None,
        group_by: Vec::new(),
        filters: Vec::new(),
        metrics: TOTALS.to_vec(),
        order: None,
        top: None,
    };
    let before = source.query(&spec)?;
    let after = target.query(&spec)?;
    print_totals(&before, &after)?;
    if before.rows == after.rows {
        outln!("totals match to the last digit");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "the totals differ: ClickHouse held other events in {first} .. {last} before the \
             migration, or an insert failed; run the migration again, then compare with \
             `burnrate query --db {url}`"
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Both ledgers' totals, one row each.
fn print_totals(before: &QueryResult, after: &QueryResult) -> anyhow::Result<()> {
    let mut table = QueryResult::new(
        std::iter::once("ledger".to_owned())
            .chain(before.columns.iter().cloned())
            .collect(),
        std::iter::once(burnrate_store::query::result::ColumnKind::Text)
            .chain(before.kinds.iter().copied())
            .collect(),
    );
    for (name, result) in [("duckdb", before), ("clickhouse", after)] {
        for row in &result.rows {
            let mut cells = vec![burnrate_store::Cell::Text(name.to_owned())];
            cells.extend(row.iter().cloned());
            table.rows.push(cells);
        }
    }
    print_result(&table, crate::Format::Table, Some("Totals"))
}

fn progress(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{spinner} migrating [{bar:40}] {pos}/{len} events {per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}
