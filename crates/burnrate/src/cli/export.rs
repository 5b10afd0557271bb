//! `burnrate export`: the ledger's events as JSONL on stdout.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use burnrate_store::StoreError;
use chrono::{DateTime, Utc};

use super::query::open_duck_reading;
use super::time::parse_time;
use crate::ExportArgs;

/// Writes every event in the range, oldest first, one JSON object per line.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let since = match &args.since {
        Some(text) => parse_time(text, now).context("--since")?,
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    let until = parse_time(&args.until, now).context("--until")?;
    let store = open_duck_reading(&args.db.db, &args.archive)?;
    let mut out = std::io::BufWriter::new(crate::Stdout);
    let count = store.export_events(since, until, |line| {
        writeln!(out, "{line}").map_err(|source| StoreError::Io {
            path: "stdout".into(),
            source,
        })
    })?;
    out.flush()?;
    eprintln!("exported {count} events");
    Ok(ExitCode::SUCCESS)
}
