//! `burnrate anomalies`, `burnrate longtail` and `burnrate roles`: insight over a ledger.

use std::process::ExitCode;

use anyhow::{Context, bail};
use burnrate_insight::detectors::{self, Thresholds};
use burnrate_insight::longtail::long_tail;
use burnrate_model::dimension::Dimension;
use chrono::{Days, Utc};

use super::query::open;
use super::time::parse_time;
use crate::{AnomaliesArgs, LongtailArgs, RolesArgs};

/// Runs every detector over each day of the range and prints the findings.
pub fn anomalies(args: &AnomaliesArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let first = parse_time(&args.since, now)?.date_naive();
    let until = parse_time(&args.until, now)?;
    let json = output_is_json(&args.format)?;
    let store = open(&args.db.db)?;
    let thresholds = Thresholds::default();
    let mut findings = Vec::new();
    let mut day = first;
    while day.and_time(chrono::NaiveTime::MIN).and_utc() < until {
        findings.extend(
            detectors::all(store.as_ref(), day, &thresholds)
                .with_context(|| format!("running the detectors for {day}"))?,
        );
        day = day + Days::new(1);
    }
    if json {
        for finding in &findings {
            outln!("{}", serde_json::to_string(finding)?);
        }
    } else if findings.is_empty() {
        outln!("no findings from {first} to {until}");
    } else {
        let mut table = super::output::new_table();
        table.set_header(["day", "severity", "detector", "subject", "finding"]);
        for finding in &findings {
            table.add_row([
                finding.day.to_string(),
                format!("{:?}", finding.severity).to_lowercase(),
                finding.detector.to_string(),
                finding.subject.clone(),
                finding.summary.clone(),
            ]);
        }
        outln!("{table}");
        outln!("drill down: each finding's `drill_down` in --format json is a burnrate query");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the Pareto table of one dimension and its sentence.
pub fn longtail(args: &LongtailArgs) -> anyhow::Result<ExitCode> {
    let (since, until, filters) =
        super::query::time_and_filters(&args.since, &args.until, &args.filters)?;
    let json = output_is_json(&args.format)?;
    let dimension: Dimension = args
        .by
        .parse()
        .map_err(|error| anyhow::anyhow!("--by: {error}"))?;
    let store = open(&args.db.db)?;
    let tail = long_tail(store.as_ref(), &dimension, since, until, &filters)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&tail)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = super::output::new_table();
    table.set_header([args.by.as_str(), "cost_usd", "share", "cumulative"]);
    for member in tail.members.iter().take(args.top) {
        table.add_row([
            member.name.clone(),
            super::output::money(&member.cost_usd),
            format!("{:.1}%", member.share * 100.0),
            format!("{:.1}%", member.cumulative * 100.0),
        ]);
    }
    for column in 1..=3 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    outln!("{table}");
    outln!(
        "{} members hold half the spend, {} hold 80%; Gini {:.2}",
        tail.members_for_half,
        tail.members_for_80,
        tail.gini
    );
    outln!("{}", tail.sentence());
    Ok(ExitCode::SUCCESS)
}

fn output_is_json(format: &str) -> anyhow::Result<bool> {
    match format {
        "table" => Ok(false),
        "json" => Ok(true),
        other => bail!("--format `{other}`: use table or json"),
    }
}

/// Prints each agent role's share of the cost of the runs it took part in.
pub fn roles(args: &RolesArgs) -> anyhow::Result<ExitCode> {
    let (since, until, filters) =
        super::query::time_and_filters(&args.since, &args.until, &args.filters)?;
    let json = output_is_json(&args.format)?;
    let store = open(&args.db.db)?;
    let roles = burnrate_insight::roles::agent_roles(store.as_ref(), since, until, &filters)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&roles)?);
        return Ok(ExitCode::SUCCESS);
    }
    if roles.is_empty() {
        outln!("no calls in agent runs from {since} to {until}");
        return Ok(ExitCode::SUCCESS);
    }
    // The weekly report's table, every row.
    let section = burnrate_insight::report::roles_section(&roles, roles.len());
    let mut table = super::output::new_table();
    if let Some(rows) = section.table {
        table.set_header(rows.headers);
        for row in rows.rows {
            table.add_row(row);
        }
    }
    for column in 2..=5 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}
