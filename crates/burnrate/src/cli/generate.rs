//! `burnrate gen-events`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};

use super::time::parse_time;
use crate::GenEventsArgs;
use crate::gen_events::{GenSpec, write_events};

/// Runs `burnrate gen-events`.
pub fn run(args: GenEventsArgs) -> anyhow::Result<ExitCode> {
    let spec = GenSpec {
        tenants: args.tenants.max(1),
        days: args.days.max(1),
        events: args.events,
        seed: args.seed,
        end: parse_time(&args.end, Utc::now()).context("--end")?,
    };
    let bar = if io::stderr().is_terminal() {
        let bar = ProgressBar::new(spec.events);
        bar.set_style(
            ProgressStyle::with_template("{spinner} generating [{bar:40}] {human_pos}/{human_len} events {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    let written = write_events(&spec, &mut out, &|n| bar.set_position(n))?;
    out.flush()?;
    bar.finish_and_clear();
    if let Some(path) = &args.out {
        eprintln!("wrote {written} events to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
