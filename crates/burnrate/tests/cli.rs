//! Black-box tests of the `burnrate` binary: the CLI contract as scripts use it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::Path;
use std::process::{Command, Output};

fn burnrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_burnrate"))
        .args(args)
        .env_remove("BURNRATE_DB")
        .output()
        .expect("burnrate runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const RANGE: [&str; 4] = ["--since", "2026-10-01", "--until", "2026-11-21"];

#[test]
fn generate_import_twice_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("ledger.duckdb");
    let generated = burnrate(&[
        "gen-events",
        "--tenants",
        "12",
        "--days",
        "7",
        "--events",
        "5000",
        "--seed",
        "7",
        "--end",
        "2026-11-20T00:00:00Z",
        "--out",
        path(&events),
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));

    let first = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout)
            .contains("imported 5000 events, skipped 0 duplicates, rejected 0 lines")
    );
    let again = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert!(
        text(&again.stdout).contains("imported 0 events, skipped 5000 duplicates"),
        "{}",
        text(&again.stdout)
    );

    let mut args = vec![
        "query",
        "--db",
        path(&db),
        "--format",
        "json",
        "--metrics",
        "requests,cost_usd",
    ];
    args.extend(RANGE);
    let total = json(&burnrate(&args));
    assert_eq!(total["rows"][0]["requests"], 5000);
    let cost: f64 = total["rows"][0]["cost_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);

    for report in [
        "users-daily",
        "features",
        "runs",
        "outcomes",
        "tenants",
        "coverage",
    ] {
        let mut args = vec!["report", report, "--db", path(&db), "--format", "json"];
        args.extend(RANGE);
        let result = json(&burnrate(&args));
        assert!(
            !result["rows"].as_array().unwrap().is_empty(),
            "{report} has no rows"
        );
        let mut args = vec!["report", report, "--db", path(&db)];
        args.extend(RANGE);
        let table = burnrate(&args);
        assert!(table.status.success());
        assert!(
            text(&table.stdout).contains("rows"),
            "{report}: {}",
            text(&table.stdout)
        );
    }

    // Tenant costs add up to the total, exactly.
    let mut args = vec!["report", "tenants", "--db", path(&db), "--format", "json"];
    args.extend(RANGE);
    let tenants = json(&burnrate(&args));
    let sum: rust_decimal::Decimal = tenants["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row["cost_usd"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        sum,
        total["rows"][0]["cost_usd"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    );

    // The generator's unpriced model shows up.
    let missing = json(&burnrate(&[
        "prices",
        "missing",
        "--db",
        path(&db),
        "--format",
        "json",
    ]));
    assert!(!missing["rows"].as_array().unwrap().is_empty());

    let mut args = vec![
        "query",
        "--db",
        path(&db),
        "--format",
        "csv",
        "--group-by",
        "tenant_id,feature",
        "--bucket",
        "day",
        "--top",
        "3",
    ];
    args.extend(RANGE);
    let csv = burnrate(&args);
    assert!(text(&csv.stdout).starts_with("tenant_id,feature,bucket,requests,cost_usd"));
}

#[test]
fn bad_lines_are_rejected_by_number_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("mixed.jsonl");
    let db = dir.path().join("ledger.duckdb");
    let good = r#"{"ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1", "tenant_id": "acme", "usage": {"input_tokens": 1144, "cache_read_tokens": 1024, "output_tokens": 2}}"#;
    let good2 = good.replace("acme", "globex");
    let lines = [
        good,
        "{not json",
        r#"{"ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1", "usage": {"input_tokens": 10, "cache_read_tokens": 11}}"#,
        "",
        &good2,
        r#"{"ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1", "usage": {}, "tenant": "x"}"#,
    ];
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let output = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("mixed.jsonl:2:"), "{stderr}");
    assert!(
        stderr.contains("mixed.jsonl:3: field `usage.cache_read_tokens`"),
        "{stderr}"
    );
    assert!(stderr.contains("mixed.jsonl:6: field `tenant`"), "{stderr}");
    assert!(
        text(&output.stdout).contains("imported 2 events, skipped 0 duplicates, rejected 3 lines")
    );

    // Lines without ids get deterministic ones: importing again adds nothing.
    let again = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert!(
        text(&again.stdout).contains("imported 0 events, skipped 2 duplicates, rejected 3 lines")
    );

    let mut args = vec![
        "query",
        "--db",
        path(&db),
        "--format",
        "json",
        "--group-by",
        "tenant_id",
        "--order",
        "tenant_id",
    ];
    args.extend(RANGE);
    let result = json(&burnrate(&args));
    // 120 × 2e-6 + 1024 × 5e-7 + 2 × 8e-6 for gpt-4.1 (the dated and undated names share prices).
    assert_eq!(result["rows"][0]["tenant_id"], "acme");
    assert_eq!(result["rows"][0]["cost_usd"], "0.000768");
    assert_eq!(result["rows"][1]["tenant_id"], "globex");
}

#[test]
fn stdin_import_and_friendly_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.duckdb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_burnrate"))
        .args(["import", "--db", path(&db), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"ts": "2026-11-20T10:00:00Z", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929", "usage": {"input_tokens": 1532, "cache_read_tokens": 1111, "cache_write_tokens": 418, "output_tokens": 33}}"#)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(text(&output.stdout).contains("imported 1 events"));
    assert!(text(&output.stderr).is_empty(), "{}", text(&output.stderr));
    // A call dated far ahead is imported, and the ledger's owner is told reports skip it.
    let ahead = dir.path().join("ahead.jsonl");
    std::fs::write(
        &ahead,
        r#"{"ts": "2099-01-01T00:00:00Z", "provider": "openai", "model": "gpt-4.1", "usage": {"input_tokens": 10, "output_tokens": 1}}"#,
    )
    .unwrap();
    let imported = burnrate(&["import", "--db", path(&db), path(&ahead)]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(
        text(&imported.stderr).contains("WARNING: this import added 1 call dated after"),
        "{}",
        text(&imported.stderr)
    );
    // The next import adds none: no warning, though the ledger still holds it.
    let again = burnrate(&["import", "--db", path(&db), path(&ahead)]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        !text(&again.stderr).contains("WARNING"),
        "{}",
        text(&again.stderr)
    );

    let missing_db = burnrate(&["query", "--db", path(&dir.path().join("nope.duckdb"))]);
    assert!(!missing_db.status.success());
    assert!(text(&missing_db.stderr).contains("import events first"));
    let bad_metric = burnrate(&["query", "--db", path(&db), "--metrics", "dollars"]);
    assert!(text(&bad_metric.stderr).contains("unknown metric `dollars`"));
    let bad_time = burnrate(&["query", "--db", path(&db), "--since", "last tuesday"]);
    assert!(text(&bad_time.stderr).contains("--since"));
}

#[test]
fn prices_show_and_list() {
    let shown = burnrate(&[
        "prices",
        "show",
        "claude-sonnet-4-5-20250929",
        "--provider",
        "anthropic",
    ]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let out = text(&shown.stdout);
    assert!(out.contains("cache_write_1h"));
    assert!(out.contains("$6"), "1h writes are $6/MTok: {out}");
    assert!(out.contains("$0.3"), "cache reads are $0.30/MTok: {out}");
    let listed = burnrate(&["prices", "list", "gpt-4.1"]);
    assert!(text(&listed.stdout).contains("gpt-4.1-mini"));
    let unknown = burnrate(&["prices", "show", "no-such-model"]);
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("no price for `no-such-model`"));
}

#[test]
fn anomalies_and_the_long_tail_of_a_generated_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("ledger.duckdb");
    let generated = burnrate(&[
        "gen-events",
        "--events",
        "20000",
        "--days",
        "14",
        "--end",
        "2026-11-20",
        "-o",
        path(&events),
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    assert!(
        burnrate(&["import", "--db", path(&db), path(&events)])
            .status
            .success()
    );

    let found = burnrate(&[
        "anomalies",
        "--db",
        path(&db),
        "--since",
        "2026-11-14",
        "--until",
        "2026-11-20",
        "--format",
        "json",
    ]);
    assert!(found.status.success(), "{}", text(&found.stderr));
    let findings: Vec<serde_json::Value> = text(&found.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The generator's workload has agent loops and skewed tenants: something is found, and
    // every finding carries its evidence and a drill-down query.
    assert!(!findings.is_empty());
    for finding in &findings {
        assert!(finding["detector"].is_string() && finding["summary"].is_string());
        assert!(
            finding["drill_down"]
                .as_str()
                .unwrap()
                .starts_with("burnrate query")
        );
        assert!(finding["evidence"].is_object());
    }
    assert!(
        findings.iter().any(|f| f["detector"] == "tool_loop"),
        "the generator's loops"
    );

    let tail = json(&burnrate(&[
        "longtail",
        "--db",
        path(&db),
        "--by",
        "tenant_id",
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-21",
        "--format",
        "json",
    ]));
    let members = tail["members"].as_array().unwrap();
    assert!(!members.is_empty());
    let last = members.last().unwrap()["cumulative"].as_f64().unwrap();
    assert!((last - 1.0).abs() < 1e-9, "shares sum to one: {last}");
    let half = tail["members_for_half"].as_u64().unwrap() as usize;
    assert!(members[half - 1]["cumulative"].as_f64().unwrap() >= 0.5);
    assert!(half == 1 || members[half - 2]["cumulative"].as_f64().unwrap() < 0.5);
    let bad = burnrate(&["longtail", "--db", path(&db), "--by", "colour"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("--by"));
}

/// The issue's acceptance data: the reference scenario's monthly report names exactly the 4
/// power users and the 2 runaways in their segments, and the daily report on the loop's first
/// day flags the 2 runaways (and the day before flags none).
#[test]
fn the_reference_scenario_reports_its_power_users_and_runaways() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("reference.jsonl");
    let contracts = dir.path().join("contracts.toml");
    let db = dir.path().join("ledger.duckdb");
    let generated = burnrate(&[
        "gen-events",
        "--scenario",
        "reference",
        "--end",
        "2026-12-01",
        "--out",
        path(&events),
        "--contracts",
        path(&contracts),
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let imported = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let report = |kind: &str, date: &str, format: &str| {
        burnrate(&[
            "report",
            kind,
            "--db",
            path(&db),
            "--date",
            date,
            "--config",
            path(&contracts),
            "--format",
            format,
        ])
    };

    let monthly = json(&report("monthly", "2026-11-30", "json"));
    let margins = &monthly["data"]["margins"];
    let members = |segment: &str| -> Vec<String> {
        let mut names: Vec<String> = margins["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["segment"] == segment)
            .map(|t| t["tenant"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        members("power_user"),
        ["ref-04", "ref-12", "ref-20", "ref-28"]
    );
    assert_eq!(members("runaway"), ["ref-08", "ref-24"]);
    assert_eq!(members("healthy").len(), 34);
    // About $34,000 of spend against $180,000 of contracted revenue.
    let cost: f64 = margins["cost_usd"].as_str().unwrap().parse().unwrap();
    assert!((30_000.0..38_000.0).contains(&cost), "{cost}");
    assert_eq!(margins["revenue_usd"], "180000");
    let runaways: Vec<&str> = margins["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["segment"] == "runaway")
        .flat_map(|t| t["findings"].as_array().unwrap())
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        runaways.iter().any(|f| f.starts_with("tool_loop")),
        "{runaways:?}"
    );

    // The loop starts on 2026-11-21: that day's report flags exactly the two; the day before
    // flags nobody.
    let daily = json(&report("daily", "2026-11-21", "json"));
    assert_eq!(
        daily["data"]["runaway_tenants"],
        serde_json::json!(["ref-08", "ref-24"])
    );
    let quiet = json(&report("daily", "2026-11-20", "json"));
    assert_eq!(quiet["data"]["runaway_tenants"], serde_json::json!([]));
    assert_eq!(quiet["data"]["findings"], serde_json::json!([]));

    // Mid-month, the forecast projects the loopers' spend past what they have spent so far.
    let mid = json(&report("monthly", "2026-11-25", "json"));
    let looper = mid["data"]["forecast"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["tenant"] == "ref-08")
        .unwrap()
        .clone();
    let number = |key: &str| looper[key].as_f64().unwrap();
    assert!(
        number("projected_usd") > number("month_to_date_usd") + 1_000.0,
        "{looper}"
    );
    assert!(number("low_usd") <= number("projected_usd"));
    assert!(number("projected_usd") <= number("high_usd"));

    // The same reports as people read them.
    let markdown = report("monthly", "2026-11-30", "md");
    assert!(markdown.status.success(), "{}", text(&markdown.stderr));
    let markdown = text(&markdown.stdout);
    assert!(
        markdown.contains("4 power user(s) should move up a tier (ref-04, ref-12, ref-20, ref-28)"),
        "{markdown}"
    );
    assert!(markdown.contains("of 40 tenants"), "{markdown}");
    let html = report("daily", "2026-11-21", "html");
    assert!(html.status.success(), "{}", text(&html.stderr));
    let html = text(&html.stdout);
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("<svg role=\"img\""),
        "the page carries its charts inline"
    );
    assert!(html.contains("Runaway tenant(s), burning money now: ref-08, ref-24."));
    assert!(
        !html.contains("<script"),
        "no scripts, no outside resources"
    );
    let weekly = report("weekly", "2026-11-30", "md");
    assert!(weekly.status.success(), "{}", text(&weekly.stderr));
    assert!(text(&weekly.stdout).contains("## Margin per tenant"));
    // A bad --date names the flag and the form.
    let bad = report("daily", "yesterday-ish", "md");
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--date"),
        "{}",
        text(&bad.stderr)
    );
    // A flag the kind of report does not read is refused, not silently ignored.
    let ranged = burnrate(&["report", "daily", "--db", path(&db), "--since", "7d"]);
    assert!(!ranged.status.success());
    assert!(text(&ranged.stderr).contains("covers the --date's day"));
    let dated = burnrate(&[
        "report",
        "features",
        "--db",
        path(&db),
        "--date",
        "2026-11-20",
    ]);
    assert!(!dated.status.success());
    assert!(text(&dated.stderr).contains("--date is for the daily, weekly and monthly"));
}

#[test]
fn audit_verify_names_the_altered_record_and_heads_anchor_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = burnrate_audit::AuditLog::open(dir.path(), 1 << 20).unwrap();
    for n in 0..10u64 {
        log.append(burnrate_audit::AuditRecord {
            kind: Some(burnrate_audit::Kind::Call),
            tenant_id: Some("acme".into()),
            input_tokens: Some(100 + n),
            ..burnrate_audit::AuditRecord::default()
        })
        .unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let ok = burnrate(&["audit", "verify", "--dir", path(dir.path())]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok: 10 records in 1 segment(s)"));
    let heads = burnrate(&["audit", "heads", "--dir", path(dir.path())]);
    let head: serde_json::Value = serde_json::from_slice(&heads.stdout).unwrap();
    assert_eq!(
        (head["first_seq"].as_u64(), head["last_seq"].as_u64()),
        (Some(1), Some(10))
    );
    let segment = dir.path().join("segment-000001.log");
    let altered = std::fs::read_to_string(&segment).unwrap().replacen(
        "\"input_tokens\":104",
        "\"input_tokens\":904",
        1,
    );
    std::fs::write(&segment, altered).unwrap();
    let broken = burnrate(&["audit", "verify", "--dir", path(dir.path())]);
    assert!(!broken.status.success());
    let stderr = text(&broken.stderr);
    assert!(
        stderr.contains("segment-000001.log, line 5: record 5 was altered"),
        "{stderr}"
    );
    // A wrong path is not a verified trail: a missing folder and one with no records fail.
    let missing = burnrate(&["audit", "verify", "--dir", path(&dir.path().join("nope"))]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("the folder does not exist"));
    let empty = tempfile::tempdir().unwrap();
    let nothing = burnrate(&["audit", "verify", "--dir", path(empty.path())]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(text(&nothing.stderr).contains("no audit records"));
}

/// `burnrate prices list | head`: the reader leaving early ends the command quietly with the
/// status SIGPIPE gives (141, which `set -o pipefail` sees), instead of a panic or an error
/// message; for a table, and for gen-events' buffered stream of lines.
#[test]
fn a_reader_that_leaves_early_ends_the_output_quietly() {
    use std::io::Read;
    for args in [
        &["prices", "list"][..],
        &[
            "gen-events",
            "--tenants",
            "3",
            "--days",
            "1",
            "--events",
            "100000",
        ][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_burnrate"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe's read end is closed here, with most of the table unwritten.
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(141),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stderr), "", "{args:?}");
    }
}

/// Totals over the whole period, as the query prints them.
fn totals(db: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "query",
        "--db",
        path(db),
        "--format",
        "json",
        "--metrics",
        "requests,input_tokens,output_tokens,cost_usd",
        "--since",
        "2025-01-01",
        "--until",
        "2027-01-01",
    ];
    args.extend(extra);
    json(&burnrate(&args))["rows"][0].clone()
}

#[test]
fn retention_keeps_twelve_months_hot_and_the_archive_keeps_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("ledger.duckdb");
    // 18 months: May 2025 through October 2026.
    let generated = burnrate(&[
        "gen-events",
        "--tenants",
        "8",
        "--days",
        "549",
        "--events",
        "20000",
        "--end",
        "2026-11-01T00:00:00Z",
        "--out",
        path(&events),
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let imported = burnrate(&["import", "--db", path(&db), path(&events)]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let before = totals(&db, &[]);
    assert_eq!(before["requests"], 20000);

    let applied = burnrate(&[
        "retention",
        "apply",
        "--db",
        path(&db),
        "--as-of",
        "2026-11-01",
    ]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert!(
        text(&applied.stdout).contains("cutoff 2025-11-01: 6 ledger month(s)"),
        "{}",
        text(&applied.stdout)
    );
    let files: Vec<String> = std::fs::read_dir(dir.path().join("archive/ledger"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 6, "{files:?}");

    // The hot store keeps the 12 months from November 2025.
    let months = json(&burnrate(&[
        "query",
        "--db",
        path(&db),
        "--format",
        "json",
        "--bucket",
        "month",
        "--metrics",
        "requests",
        "--since",
        "2025-01-01",
        "--until",
        "2027-01-01",
        "--order",
        "bucket:asc",
    ]));
    let buckets: Vec<&str> = months["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(buckets.len(), 12, "{buckets:?}");
    assert!(buckets[0].starts_with("2025-11"), "{buckets:?}");
    let hot = totals(&db, &[]);
    assert!(hot["requests"].as_u64().unwrap() < 20000);

    // With the archive, the totals over the whole period are what they were.
    let whole = totals(&db, &["--include-archive"]);
    assert_eq!(whole, before);

    // A second run moves nothing, and the run is on the audit trail.
    let again = burnrate(&[
        "retention",
        "apply",
        "--db",
        path(&db),
        "--as-of",
        "2026-11-01",
    ]);
    assert!(
        text(&again.stdout).contains("0 ledger month(s)"),
        "{}",
        text(&again.stdout)
    );
    let verified = burnrate(&["audit", "verify", "--dir", path(&dir.path().join("audit"))]);
    assert!(
        text(&verified.stdout).starts_with("ok: 2 records"),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
}
