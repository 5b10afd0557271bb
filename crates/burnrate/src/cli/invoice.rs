//! `burnrate invoice`: a month's invoice lines per tenant from the contracts in the
//! gateway's configuration; `burnrate meters`: the usage behind them as CloudEvents;
//! `burnrate cohorts`: unit economics by cohort.

use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use burnrate_insight::invoice::invoice;
use burnrate_model::Money;
use chrono::NaiveDate;
use comfy_table::CellAlignment;

use super::query::open;
use super::reports::report_context;
use crate::{CohortsArgs, Format, InvoiceArgs, MetersArgs};

/// The first day of `YYYY-MM`, named by its option.
fn month(text: &str, option: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map_err(|_| anyhow!("{option} `{text}`: give a month as YYYY-MM"))
}

/// Prints the invoice lines of the month; exits 1, after printing them, when a tenant's calls
/// include models with no price (their cost counts as $0 until the price is added).
pub fn run(args: &InvoiceArgs) -> anyhow::Result<ExitCode> {
    let month = month(&args.month, "--month")?;
    let contracts = report_context(Some(&args.config))?.contracts;
    if contracts.is_empty() {
        bail!(
            "{} has no [[contracts]]: an invoice bills tenants by their contracts",
            args.config.display()
        );
    }
    if let Some(tenant) = &args.tenant
        && !contracts.iter().any(|c| &c.tenant == tenant)
    {
        bail!(
            "--tenant {tenant}: no contract in {}",
            args.config.display()
        );
    }
    let store = open(&args.db.db)?;
    let lines = invoice(store.as_ref(), &contracts, month, args.tenant.as_deref())?;
    let mut unpriced: Vec<(&str, u64)> = lines
        .iter()
        .filter(|line| line.unpriced_calls > 0)
        .map(|line| (line.tenant.as_str(), line.unpriced_calls))
        .collect();
    unpriced.dedup();
    for (tenant, calls) in &unpriced {
        eprintln!(
            "WARNING: {tenant}: {calls} calls in {} use models with no price and count as $0 in \
             its model cost (and in any amount billed at cost); run `burnrate prices missing \
             --db PATH` to list them, add their prices, and run the invoice again",
            args.month
        );
    }
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&lines)?),
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(crate::Stdout);
            for line in &lines {
                writer.serialize(line).context("writing CSV")?;
            }
            writer.flush()?;
        }
        Format::Table => {
            let mut table = super::output::new_table();
            table.set_header([
                "tenant",
                "contract",
                "item",
                "quantity",
                "unit price",
                "amount",
                "calls",
                "model cost",
            ]);
            for line in &lines {
                table.add_row([
                    line.tenant.clone(),
                    serde_json::to_value(line.contract)?
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    line.item.to_owned(),
                    line.quantity.to_string(),
                    line.unit_price_usd
                        .map(|p| format!("${p}"))
                        .unwrap_or_default(),
                    cents(line.amount_usd),
                    line.calls.to_string(),
                    cents(line.cost_usd),
                ]);
            }
            for column in [3, 4, 5, 6, 7] {
                if let Some(column) = table.column_mut(column) {
                    column.set_cell_alignment(CellAlignment::Right);
                }
            }
            outln!("{table}");
            let total: Money = lines.iter().map(|l| l.amount_usd).sum();
            outln!("total for {}: {}", args.month, cents(total));
        }
        other => bail!("--format {other:?}: invoices are table, csv or json"),
    }
    // Printed, but not a clean run: a bill must not go out with costs left out unnoticed.
    Ok(if unpriced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the cohorts' unit economics month by month.
pub fn cohorts(args: &CohortsArgs) -> anyhow::Result<ExitCode> {
    use burnrate_insight::cohorts::{CohortBy, cohorts};
    let by = match args.by.as_str() {
        "tier" => CohortBy::Tier,
        "signup" => CohortBy::Signup,
        other => bail!("--by `{other}`: tier or signup"),
    };
    let first = month(&args.from, "--from")?;
    let last = match &args.to {
        Some(text) => month(text, "--to")?,
        None => chrono::Utc::now().date_naive(),
    };
    let contracts = report_context(Some(&args.config))?.contracts;
    let store = open(&args.db.db)?;
    let rows = cohorts(store.as_ref(), &contracts, by, first, last)?;
    if args.format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = super::output::new_table();
    table.set_header([
        "cohort",
        "month",
        "tenants",
        "seats",
        "cost",
        "per tenant",
        "per seat",
        "per outcome",
        "revenue",
        "margin",
    ]);
    // Unit costs can be fractions of a cent.
    let money = |m: Option<Money>| {
        m.map(|m| format!("${:.4}", m.as_decimal().round_dp(4)))
            .unwrap_or_else(|| "-".into())
    };
    for row in &rows {
        table.add_row([
            row.cohort.clone(),
            row.month.clone(),
            row.tenants.to_string(),
            row.seats.to_string(),
            cents(row.cost_usd),
            money(row.cost_per_tenant_usd),
            money(row.cost_per_seat_usd),
            money(row.cost_per_outcome_usd),
            cents(row.revenue_usd),
            row.margin
                .map(|m| format!("{:.1}%", m * 100.0))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    for column in 2..=9 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// Writes the usage of the range as a CloudEvents JSON batch.
pub fn meters(args: &MetersArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let since = super::time::parse_time(&args.since, now).context("--since")?;
    let until = super::time::parse_time(&args.until, now).context("--until")?;
    let store = open(&args.db.db)?;
    let (events, untagged) =
        burnrate_insight::meters::usage_events(store.as_ref(), since, until, &args.source)?;
    if untagged > 0 {
        eprintln!("WARNING: {untagged} calls without a tenant are not in the export");
    }
    let text = serde_json::to_string_pretty(&events)? + "\n";
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} CloudEvents to {}", events.len(), path.display());
        }
        None => out!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Dollars to the cent, for people (the JSON and CSV keep every digit).
fn cents(money: Money) -> String {
    format!("${:.2}", money.as_decimal().round_dp(2))
}
