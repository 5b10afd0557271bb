//! `burnrate compare`: the cost regression gate for CI.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use burnrate_insight::compare::{Better, Comparison, Gate, Verdict, compare};
use burnrate_store::Filter;
use chrono::Utc;
use comfy_table::CellAlignment;

use super::query::open;
use super::time::parse_time;
use crate::CompareArgs;

/// Exit status when a side has too few runs to judge (1 is a regression).
const TOO_FEW_RUNS: u8 = 3;

/// Compares the two slices, prints the table (or JSON) and exits 0 (pass), 1 (regressed) or
/// 3 (too few runs to judge).
pub fn run(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let slice = |text: &str, what: &str| -> anyhow::Result<Filter> {
        text.parse::<Filter>()
            .map_err(|e| anyhow!("--{what} `{text}`: {e} (e.g. prompt_version=v2.4)"))
    };
    let gate = Gate {
        since: parse_time(&args.since, now).context("--since")?,
        until: parse_time(&args.until, now).context("--until")?,
        feature: args.feature.clone(),
        baseline: slice(&args.baseline, "baseline")?,
        candidate: slice(&args.candidate, "candidate")?,
        max_regression: parse_share(&args.max_regression)?,
        min_runs: args.min_runs,
    };
    let store = open(&args.db.db)?;
    let comparison = compare(store.as_ref(), &gate)?;
    if args.format == "json" {
        outln!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print(&comparison, args)?;
    }
    Ok(match comparison.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Regressed => ExitCode::FAILURE,
        Verdict::TooFewRuns => ExitCode::from(TOO_FEW_RUNS),
    })
}

/// `10%` or `0.1` as 0.1. A bare number of 1 or more is refused: `10` could mean 10% or
/// 1,000%, and a gate read the lenient way would pass what it should stop.
fn parse_share(text: &str) -> anyhow::Result<f64> {
    let bad = || anyhow!("--max-regression `{text}`: give a share like 10% or 0.1");
    let share = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => {
            let share = text.trim().parse::<f64>().map_err(|_| bad())?;
            if share >= 1.0 {
                return Err(anyhow!(
                    "--max-regression `{text}`: a bare number is a fraction (0.1 = 10%); \
                     write {text}% for a percentage"
                ));
            }
            share
        }
    };
    if share.is_finite() && share >= 0.0 {
        Ok(share)
    } else {
        Err(bad())
    }
}

fn print(comparison: &Comparison, args: &CompareArgs) -> std::io::Result<()> {
    let mut table = super::output::new_table();
    table.set_header([
        "metric",
        &args.baseline,
        &args.candidate,
        "candidate is",
        "verdict",
    ]);
    let value = |metric: &str, value: Option<f64>| match value {
        None => "-".to_owned(),
        Some(v) if metric.starts_with("cost") => format!("${v:.6}"),
        Some(v) if metric == "cache_hit_rate" => format!("{:.1}%", v * 100.0),
        Some(v) => format!("{v:.1} tokens"),
    };
    for check in &comparison.checks {
        let change = match check.worse_by {
            None => "-".to_owned(),
            Some(w) if w > 0.0 => format!("{:.1}% worse", w * 100.0),
            Some(w) => format!("{:.1}% better", -w * 100.0),
        };
        let verdict = if check.regressed { "REGRESSED" } else { "ok" };
        let direction = match check.better {
            Better::Lower => "",
            Better::Higher => " (higher is better)",
        };
        table.add_row([
            format!("{}{direction}", check.metric),
            value(check.metric, check.baseline),
            value(check.metric, check.candidate),
            change,
            verdict.to_owned(),
        ]);
    }
    for column in 1..=3 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    outln!(
        "feature {}: {} runs on {}, {} on {}",
        args.feature,
        comparison.baseline_runs,
        args.baseline,
        comparison.candidate_runs,
        args.candidate
    );
    outln!("{table}");
    let allowed = comparison.max_regression * 100.0;
    match comparison.verdict {
        Verdict::Pass => outln!("PASS: nothing is more than {allowed:.1}% worse"),
        Verdict::Regressed => {
            outln!("FAIL: the candidate is more than {allowed:.1}% worse on a metric above")
        }
        Verdict::TooFewRuns => outln!(
            "NO JUDGEMENT: each side needs at least {} runs (--min-runs); widen --since or wait \
             for traffic",
            comparison.min_runs
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_share;

    #[test]
    fn shares_read_as_percent_or_fraction() {
        assert_eq!(parse_share("10%").unwrap(), 0.1);
        assert_eq!(parse_share("0.25").unwrap(), 0.25);
        assert_eq!(parse_share("150%").unwrap(), 1.5);
        assert_eq!(parse_share("0").unwrap(), 0.0);
        // A bare 10 could be 10% or 1,000%: refused rather than read leniently.
        let refusal = parse_share("10").unwrap_err().to_string();
        assert!(refusal.contains("write 10% for a percentage"), "{refusal}");
        assert!(parse_share("1").is_err());
        for bad in ["-5%", "ten", "NaN", "inf%", ""] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }
}
