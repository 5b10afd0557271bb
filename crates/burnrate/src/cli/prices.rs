//! `burnrate prices import|list|show|missing`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use burnrate_model::prices::{PriceVersion, ServiceTier, TokenClass, litellm};
use burnrate_model::{Money, PriceBook};
use burnrate_store::{DuckStore, Store};
use chrono::{NaiveDate, Utc};
use comfy_table::CellAlignment;

use super::query::open;
use super::time::parse_day;
use crate::{Format, PricesCommand};

/// Runs a `burnrate prices` subcommand.
pub fn run(command: PricesCommand) -> anyhow::Result<ExitCode> {
    match command {
        PricesCommand::Import {
            db,
            file,
            effective_from,
            as_of,
        } => import(&db.db, &file, effective_from.as_deref(), as_of.as_deref()),
        PricesCommand::Update {
            db,
            from,
            effective_from,
            dry_run,
            format,
        } => update(&db.db, &from, effective_from.as_deref(), dry_run, &format),
        PricesCommand::List { search, db } => list(&book(db.as_deref())?, search.as_deref()),
        PricesCommand::Show {
            model,
            provider,
            at,
            db,
        } => {
            let day = at
                .as_deref()
                .map(parse_day)
                .transpose()?
                .unwrap_or_else(|| Utc::now().date_naive());
            show(&book(db.as_deref())?, &provider, &model, day)
        }
        PricesCommand::Missing { db, format } => missing(&db.db, format),
    }
}

fn book(db: Option<&Path>) -> anyhow::Result<PriceBook> {
    match db {
        Some(path) => Ok(open(path)?.prices().clone()),
        None => Ok(PriceBook::bundled()?),
    }
}

fn import(
    db: &Path,
    file: &PathBuf,
    effective_from: Option<&str>,
    as_of: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut store = open_for_prices(db)?;
    let source = file.display().to_string();
    let mut exit = ExitCode::SUCCESS;
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let today = Utc::now().date_naive();
            let effective_from = effective_from.map(parse_day).transpose()?.unwrap_or(today);
            let as_of = match as_of {
                Some(text) => parse_day(text)?,
                None => file_date(file).unwrap_or(today),
            };
            let table = litellm::read(&text)
                .map_err(|error| anyhow!("{source} is not a LiteLLM price table: {error}"))?;
            let refused = report_refused(&source, &table.refused);
            let changed = store.import_litellm(
                table.models,
                Some(effective_from),
                as_of,
                &format!("{source}@{as_of}"),
            )?;
            outln!(
                "imported {}: {changed} models changed, effective from {effective_from}{}",
                file.display(),
                if refused {
                    "; some entries were refused (on stderr)"
                } else {
                    ""
                }
            );
            if refused {
                exit = ExitCode::FAILURE;
            }
        }
        Some("toml") => {
            if effective_from.is_some() {
                bail!(
                    "--effective-from applies to LiteLLM tables; an overrides file carries effective_from per entry"
                );
            }
            let entries = store.import_overrides(&text, &source)?;
            outln!("imported {}: {entries} price overrides", file.display());
        }
        _ => bail!(
            "{}: give a LiteLLM table (.json) or an overrides file (.toml)",
            file.display()
        ),
    }
    store.checkpoint()?;
    Ok(exit)
}

/// Prints each refused entry of a LiteLLM table on stderr; true when there was one.
fn report_refused(source: &str, refused: &[String]) -> bool {
    for problem in refused {
        eprintln!("{source}: refused {problem} (the model keeps its current prices, if any)");
    }
    !refused.is_empty()
}

/// Opens a ledger to change its prices: a DuckDB ledger is created on first use; a
/// ClickHouse one must answer.
fn open_for_prices(db: &Path) -> anyhow::Result<Box<dyn Store>> {
    Ok(match super::query::clickhouse_url(db) {
        Some(url) => Box::new(super::query::connect(url)?),
        None => Box::new(DuckStore::open(db).with_context(|| format!("opening {}", db.display()))?),
    })
}

fn update(
    db: &Path,
    from: &str,
    effective_from: Option<&str>,
    dry_run: bool,
    format: &str,
) -> anyhow::Result<ExitCode> {
    let text = burnrate_server::price_update::read_table(from).map_err(anyhow::Error::msg)?;
    let table = litellm::read(&text)
        .map_err(|error| anyhow!("{from} is not a LiteLLM price table: {error}"))?;
    let refused = report_refused(from, &table.refused);
    let exit = if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    let today = Utc::now().date_naive();
    let day = effective_from.map(parse_day).transpose()?.unwrap_or(today);
    let mut store = open_for_prices(db)?;
    let changes = store.prices().changes(&table.models, day);
    if format == "json" {
        outln!("{}", serde_json::to_string_pretty(&changes)?);
    } else {
        print_changes(&changes)?;
    }
    if dry_run || changes.is_empty() {
        outln!(
            "{}: nothing recorded",
            if dry_run {
                "dry run"
            } else {
                "no price changed"
            }
        );
        return Ok(exit);
    }
    let changed =
        store.import_litellm(table.models, Some(day), today, &format!("{from}@{today}"))?;
    store.checkpoint()?;
    outln!("recorded {changed} models' prices from {day} on; earlier calls keep their prices");
    Ok(exit)
}

fn print_changes(changes: &[burnrate_model::prices::changes::PriceChange]) -> std::io::Result<()> {
    let added = changes.iter().filter(|c| c.added).count();
    outln!(
        "{} models change: {added} added, {} with new prices",
        changes.len(),
        changes.len() - added
    );
    if changes.is_empty() {
        return Ok(());
    }
    let mut table = super::output::new_table();
    table.set_header(vec!["model", "change", "field", "old /MTok", "new /MTok"]);
    for change in changes {
        for field in &change.fields {
            let price = |money: Option<Money>| money.map(per_million).unwrap_or("-".into());
            table.add_row(vec![
                change.model.clone(),
                if change.added { "added" } else { "changed" }.to_owned(),
                field.field.clone(),
                price(field.old),
                price(field.new),
            ]);
        }
    }
    for column in [3, 4] {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    outln!("{table}");
    Ok(())
}

fn file_date(path: &Path) -> Option<NaiveDate> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(chrono::DateTime::<Utc>::from(modified).date_naive())
}

fn per_million(price: Money) -> String {
    let dollars = price.as_decimal() * rust_decimal::Decimal::from(1_000_000);
    format!("${}", dollars.normalize())
}

fn list(book: &PriceBook, search: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut table = super::output::new_table();
    table.set_header(vec![
        "model",
        "provider",
        "mode",
        "input /MTok",
        "output /MTok",
        "cache read /MTok",
        "versions",
    ]);
    let mut shown = 0;
    for key in book.keys() {
        if search.is_some_and(|s| !key.contains(s)) {
            continue;
        }
        let Some(version) = book.version_at(key, Some(Utc::now().date_naive())) else {
            continue;
        };
        let rates = version.prices.rates(ServiceTier::Standard, 0);
        table.add_row(vec![
            key.to_owned(),
            version.prices.provider.clone().unwrap_or_default(),
            version.prices.mode.clone().unwrap_or_default(),
            per_million(rates.input),
            per_million(rates.output),
            per_million(rates.cache_read),
            book.history(key).len().to_string(),
        ]);
        shown += 1;
    }
    outln!("{table}");
    outln!("{shown} models");
    Ok(ExitCode::SUCCESS)
}

fn show(book: &PriceBook, provider: &str, model: &str, day: NaiveDate) -> anyhow::Result<ExitCode> {
    let key = book
        .resolve(provider, model)
        .or_else(|| book.version_at(model, None).map(|_| model.to_owned()))
        .ok_or_else(|| {
            anyhow!(
                "no price for `{model}`{}: try `burnrate prices list {}`",
                if provider.is_empty() {
                    String::new()
                } else {
                    format!(" from {provider}")
                },
                burnrate_model::prices::strip_date_suffix(model).unwrap_or(model)
            )
        })?;
    let version: &PriceVersion = book
        .version_at(&key, Some(day))
        .ok_or_else(|| anyhow!("`{key}` has no price in force on {day}"))?;
    outln!(
        "{model} → price key `{key}` ({}), source {}, in force from {}",
        version.prices.provider.as_deref().unwrap_or("any provider"),
        version.source,
        version
            .effective_from
            .map_or("the beginning".to_owned(), |d| d.to_string())
    );
    let mut bands = vec![0];
    bands.extend(version.prices.thresholds());
    for band in bands {
        let mut table = super::output::new_table();
        let mut header = vec!["per million tokens".to_owned()];
        header.extend(ServiceTier::ALL.iter().map(|t| t.as_str().to_owned()));
        table.set_header(header);
        let input = if band == 0 { 0 } else { band + 1 };
        for class in TokenClass::ALL {
            let mut row = vec![comfy_table::Cell::new(class.as_str())];
            for tier in ServiceTier::ALL {
                let price = version.prices.rates(tier, input).of(class);
                row.push(
                    comfy_table::Cell::new(per_million(price)).set_alignment(CellAlignment::Right),
                );
            }
            table.add_row(row);
        }
        if band == 0 {
            outln!(
                "calls up to {} input tokens:",
                version
                    .prices
                    .thresholds()
                    .first()
                    .map_or("any number of".to_owned(), |t| t.to_string())
            );
        } else {
            outln!("calls above {band} input tokens:");
        }
        outln!("{table}");
    }
    if book.history(&key).len() > 1 {
        outln!("history:");
        for version in book.history(&key) {
            let rates = version.prices.rates(ServiceTier::Standard, 0);
            outln!(
                "  from {:<12} input {} output {} ({})",
                version
                    .effective_from
                    .map_or("the start".to_owned(), |d| d.to_string()),
                per_million(rates.input),
                per_million(rates.output),
                version.source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn missing(db: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let models = store.unpriced_models()?;
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "rows": models }))?
        ),
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(crate::Stdout);
            for model in &models {
                writer.serialize(model)?;
            }
            writer.flush()?;
        }
        Format::Md | Format::Html => {
            anyhow::bail!("--format md and html are for reports; use table, json or csv")
        }
        Format::Table => {
            if models.is_empty() {
                outln!("every model in the ledger has a price");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = super::output::new_table();
            table.set_header(vec![
                "provider",
                "model",
                "calls",
                "input tokens",
                "output tokens",
                "first seen",
                "last seen",
            ]);
            for model in &models {
                table.add_row(vec![
                    model.provider.clone(),
                    model.model.clone(),
                    model.requests.to_string(),
                    model.input_tokens.to_string(),
                    model.output_tokens.to_string(),
                    model.first_seen.clone(),
                    model.last_seen.clone(),
                ]);
            }
            outln!("{table}");
            outln!(
                "These calls count as unpriced in every report. Add their prices to an overrides file \
                 ([[price]] model = \"...\" input_cost_per_token = \"...\") and run \
                 `burnrate prices import --db {} FILE.toml`: history re-prices at once.",
                db.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
