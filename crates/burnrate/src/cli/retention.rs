//! `burnrate retention apply`.

use std::process::ExitCode;

use anyhow::Context as _;
use burnrate_server::audit::AuditTrail;
use burnrate_server::config::Storage;
use chrono::Utc;

use crate::RetentionCommand;

/// Runs a retention command.
pub fn run(command: RetentionCommand) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Apply { config, db, as_of } = command;
    let storage = match &config {
        Some(path) => Storage::load(path)?,
        None => Storage::beside(&db.db),
    };
    let mut store: Box<dyn burnrate_store::Store> = match &storage.clickhouse {
        Some(url) => Box::new(super::query::connect(url)?),
        None => Box::new(super::query::open_duck(&storage.store_path)?),
    };
    let mut trail = match storage.audit.enabled {
        true => Some(
            AuditTrail::open(&storage.audit, "")
                .with_context(|| format!("opening the trail in {}", storage.audit.dir.display()))?,
        ),
        false => None,
    };
    let today = as_of.unwrap_or_else(|| Utc::now().date_naive());
    let run = burnrate_server::retention::apply(
        store.as_mut(),
        trail.as_mut(),
        &storage.retention,
        &storage.retention.archive_dir,
        today,
    )
    .map_err(anyhow::Error::msg)?;
    print(&run)?;
    Ok(ExitCode::SUCCESS)
}

fn print(run: &burnrate_server::retention::RetentionRun) -> std::io::Result<()> {
    let mut table = super::output::new_table();
    table.set_header(vec!["archived", "month", "rows", "file"]);
    for (month, file, rows) in &run.ledger {
        table.add_row(vec![
            "ledger".to_string(),
            month.clone(),
            rows.to_string(),
            file.display().to_string(),
        ]);
    }
    for (month, file, rows) in &run.audit {
        table.add_row(vec![
            "audit".to_string(),
            month.clone(),
            rows.to_string(),
            file.display().to_string(),
        ]);
    }
    outln!("{table}");
    outln!("{}", run.summary());
    for path in &run.expired {
        outln!("deleted (past the archive window): {}", path.display());
    }
    Ok(())
}
