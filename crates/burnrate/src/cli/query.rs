//! `burnrate query` and `burnrate report`.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use burnrate_store::clickhouse::ClickHouse;
use burnrate_store::reports::{Report, ReportParams};
use burnrate_store::{DuckStore, Filter, QuerySpec, Store};
use chrono::Utc;

use super::output::print_result_at_exit;
use super::remote;
use super::time::parse_time;
use crate::{QueryArgs, RangeArgs, ReportArgs};

/// Runs `burnrate query`.
pub fn run_query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let (since, until, filters) = range(&args.range)?;
    let spec = QuerySpec {
        since,
        until,
        bucket: args
            .bucket
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow!(e))?,
        group_by: args
            .group_by
            .iter()
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().parse())
            .collect::<Result<_, _>>()?,
        filters,
        metrics: args
            .metrics
            .iter()
            .map(|m| m.trim().parse())
            .collect::<Result<_, String>>()
            .map_err(|e| anyhow!(e))?,
        order: args
            .order
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow!(e))?,
        top: args.range.top,
    };
    spec.validate()?;
    refuse_remote_archive(&args.range)?;
    let result = match &args.range.server {
        Some(server) => {
            let request = serde_json::json!({
                "since": spec.since, "until": spec.until, "bucket": args.bucket,
                "group_by": args.group_by.iter().filter(|d| !d.trim().is_empty()).collect::<Vec<_>>(),
                "filters": args.range.filters, "metrics": args.metrics,
                "order": args.order, "top": args.range.top,
            });
            remote::post(
                server,
                args.range.admin_token.as_deref(),
                "/api/v1/query",
                &request,
            )?
        }
        None => {
            let store = open_reading(&args.db.db, &args.range.archive)?;
            let mut result = store.query(&spec)?;
            store.warn_if_stale(
                &mut result,
                args.range.max_price_age_days,
                Utc::now().date_naive(),
            );
            result
        }
    };
    print_result_at_exit(result, args.range.format, None)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `burnrate report NAME`.
pub fn run_report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if matches!(args.report.as_str(), "daily" | "weekly" | "monthly") {
        return super::reports::run(&args);
    }
    let report: Report = args.report.parse().map_err(|e: String| anyhow!(e))?;
    for (given, flag) in [
        (args.date.is_some(), "--date"),
        (args.config.is_some(), "--config"),
    ] {
        if given {
            anyhow::bail!(
                "{flag} is for the daily, weekly and monthly reports; `report {}` covers \
                 --since to --until",
                args.report
            );
        }
    }
    let (since, until, filters) = range(&args.range)?;
    let params = ReportParams {
        since,
        until,
        filters,
        top: args.range.top,
    };
    refuse_remote_archive(&args.range)?;
    let result = match &args.range.server {
        Some(server) => {
            let request = serde_json::json!({
                "since": since, "until": until, "filters": args.range.filters,
                "top": args.range.top,
            });
            let path = format!("/api/v1/reports/{}", report.as_str());
            remote::post(server, args.range.admin_token.as_deref(), &path, &request)?
        }
        None => {
            let store = open_reading(&args.db.db, &args.range.archive)?;
            let mut result = store.report(report, &params)?;
            store.warn_if_stale(
                &mut result,
                args.range.max_price_age_days,
                Utc::now().date_naive(),
            );
            result
        }
    };
    let title = format!(
        "{} — {} to {}",
        report.title(),
        since.format("%Y-%m-%d %H:%M"),
        until.format("%Y-%m-%d %H:%M UTC")
    );
    print_result_at_exit(result, args.range.format, Some(&title))?;
    Ok(ExitCode::SUCCESS)
}

/// The archive is files beside the ledger: a running gateway's API does not read them.
fn refuse_remote_archive(range: &crate::RangeArgs) -> anyhow::Result<()> {
    if range.server.is_some() && range.archive.include_archive {
        return Err(anyhow!(
            "--include-archive reads the archive files beside the ledger and cannot go through \
             --server; run it where the files are, with --db"
        ));
    }
    Ok(())
}

/// Opens an existing ledger for reading: a DuckDB file, with its archive when asked, or a
/// ClickHouse database (`--db clickhouse://host:8123/burnrate`).
pub fn open_reading(
    db: &std::path::Path,
    archive: &crate::ArchiveArgs,
) -> anyhow::Result<Box<dyn Store>> {
    if let Some(url) = clickhouse_url(db) {
        if archive.include_archive {
            return Err(anyhow!(
                "--include-archive reads a DuckDB ledger's archive; query archived months of a \
                 ClickHouse ledger with DuckDB (`--db` a DuckDB file) or read the Parquet files"
            ));
        }
        return Ok(Box::new(connect(url)?));
    }
    Ok(Box::new(open_duck_reading(db, archive)?))
}

/// Opens an existing DuckDB ledger for reading, with the archive when asked.
pub fn open_duck_reading(
    path: &std::path::Path,
    archive: &crate::ArchiveArgs,
) -> anyhow::Result<DuckStore> {
    let mut store = open_duck(path)?;
    if archive.include_archive {
        let dir = archive.archive_dir.clone().unwrap_or_else(|| {
            burnrate_server::config::Storage::beside(path)
                .retention
                .archive_dir
        });
        store
            .include_archive(&dir)
            .with_context(|| format!("reading the archive in {}", dir.display()))?;
    }
    Ok(store)
}

/// Opens an existing ledger: a DuckDB file or a ClickHouse database.
pub fn open(db: &std::path::Path) -> anyhow::Result<Box<dyn Store>> {
    match clickhouse_url(db) {
        Some(url) => Ok(Box::new(connect(url)?)),
        None => Ok(Box::new(open_duck(db)?)),
    }
}

/// The URL when `--db` names a ClickHouse database.
pub fn clickhouse_url(db: &std::path::Path) -> Option<&str> {
    db.to_str().filter(|text| text.starts_with("clickhouse://"))
}

/// Connects to a ClickHouse ledger.
pub fn connect(url: &str) -> anyhow::Result<ClickHouse> {
    ClickHouse::connect(url).with_context(|| format!("connecting to {url}"))
}

/// Opens an existing DuckDB ledger; queries never create one.
pub fn open_duck(path: &std::path::Path) -> anyhow::Result<DuckStore> {
    if !path.exists() {
        return Err(anyhow!(
            "no ledger at {}: import events first (`burnrate import --db {} events.jsonl`) or pass --db",
            path.display(),
            path.display()
        ));
    }
    DuckStore::open(path).with_context(|| format!("opening {}", path.display()))
}

fn range(
    args: &RangeArgs,
) -> anyhow::Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>, Vec<Filter>)> {
    time_and_filters(
        args.since.as_deref().unwrap_or("30d"),
        args.until.as_deref().unwrap_or("now"),
        &args.filters,
    )
}

/// `--since`, `--until` and `--filter` values read (times relative to now).
pub fn time_and_filters(
    since: &str,
    until: &str,
    filters: &[String],
) -> anyhow::Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>, Vec<Filter>)> {
    let now = Utc::now();
    let since = parse_time(since, now).context("--since")?;
    let until = parse_time(until, now).context("--until")?;
    let filters = filters
        .iter()
        .map(|f| f.parse::<Filter>().map_err(|e| anyhow!("--filter: {e}")))
        .collect::<anyhow::Result<_>>()?;
    Ok((since, until, filters))
}
