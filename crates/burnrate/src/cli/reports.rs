//! `burnrate report daily|weekly|monthly`: the scheduled reports, on demand.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use burnrate_insight::margins::{self, Contract};
use burnrate_insight::report::{self, Context, Report};
use burnrate_policy::PolicyConfig;
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;

use super::query::open_reading;
use crate::{Format, ReportArgs};

/// The parts of the gateway's configuration the reports read; the rest is ignored.
#[derive(Debug, Default, Deserialize)]
struct ReportConfig {
    #[serde(default)]
    contracts: Vec<Contract>,
    #[serde(default)]
    policy: PolicyConfig,
}

/// Reads contracts and monthly tenant budgets from a configuration file.
pub fn report_context(path: Option<&Path>) -> anyhow::Result<Context> {
    let Some(path) = path else {
        return Ok(Context::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: ReportConfig =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let problems = margins::validate(&config.contracts);
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(Context {
        contracts: config.contracts,
        budgets: burnrate_server::reports::monthly_budgets(&config.policy),
        ..Context::default()
    })
}

/// Renders a report.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Md | Format::Table => report.markdown(),
        Format::Html => report.html(),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Csv => bail!("--format csv: reports are md, json or html"),
    })
}

/// Runs `burnrate report daily|weekly|monthly`.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if args.range.server.is_some() {
        bail!("--server: the daily, weekly and monthly reports read the ledger file; pass --db");
    }
    // Their range is the --date's day, week or month.
    let range = &args.range;
    if range.since.is_some()
        || range.until.is_some()
        || !range.filters.is_empty()
        || range.top.is_some()
    {
        bail!(
            "--since, --until, --filter and --top are for the table reports; `report {}` covers \
             the --date's {}",
            args.report,
            match args.report.as_str() {
                "daily" => "day",
                "weekly" => "week (its last day)",
                _ => "month",
            }
        );
    }
    let day = match &args.date {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("--date `{text}`: expected a day like 2026-11-22"))?,
        None => Utc::now().date_naive() - Days::new(1),
    };
    let mut context = report_context(args.config.as_deref())?;
    let store = open_reading(&args.db.db, &args.range.archive)?;
    context.warnings = store
        .stale_warning(args.range.max_price_age_days, Utc::now().date_naive())
        .into_iter()
        .collect();
    let report =
        report::build(store.as_ref(), &args.report, day, &context).ok_or_else(|| {
            anyhow::anyhow!("no report `{}`: use daily, weekly or monthly", args.report)
        })??;
    out!("{}", render(&report, args.range.format)?);
    Ok(ExitCode::SUCCESS)
}
