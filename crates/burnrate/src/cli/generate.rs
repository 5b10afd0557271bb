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
use crate::reference;

/// Runs `burnrate gen-events`.
pub fn run(args: GenEventsArgs) -> anyhow::Result<ExitCode> {
    if let Some(scenario) = &args.scenario {
        return scenario_run(&args, scenario);
    }
    if args.contracts.is_some() {
        anyhow::bail!("--contracts: only a --scenario has contracts");
    }
    let spec = GenSpec {
        tenants: args.tenants,
        days: args.days,
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
        None => Box::new(BufWriter::with_capacity(1 << 20, crate::Stdout)),
    };
    let written = write_events(&spec, &mut out, &|n| bar.set_position(n))?;
    out.flush()?;
    bar.finish_and_clear();
    if let Some(path) = &args.out {
        eprintln!("wrote {written} events to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn scenario_run(args: &GenEventsArgs, scenario: &str) -> anyhow::Result<ExitCode> {
    if scenario != "reference" {
        anyhow::bail!("--scenario `{scenario}`: the one scenario is `reference`");
    }
    let end = parse_time(&args.end, Utc::now()).context("--end")?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, crate::Stdout)),
    };
    if args.days == 0 {
        anyhow::bail!("--days: the reference scenario needs at least one day");
    }
    let written = reference::write_events(&mut out, end, u64::from(args.days), args.seed)?;
    out.flush()?;
    if let Some(path) = &args.contracts {
        std::fs::write(path, reference::contracts_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.out {
        eprintln!(
            "wrote {written} events of the reference scenario to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
