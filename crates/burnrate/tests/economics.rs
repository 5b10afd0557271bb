//! Economics and guardrails end to end, through the binary: the cost regression gate.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod support;

use std::path::Path;
use std::process::Output;

use support::burnrate;

/// `runs` agent runs of three calls on `version` of the triage prompt, each call carrying
/// `prompt` prompt-layer tokens (plus a little noise), as JSONL lines.
fn runs(version: &str, runs: u32, prompt: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for run in 0..runs {
        for call in 0..3u64 {
            let noise = u64::from(run % 7) * 10 + call;
            let (tool, memory) = (200, 300 + call * 100);
            let input = prompt + noise + tool + memory;
            lines.push(
                serde_json::json!({
                    "ts": format!("2026-11-{:02}T10:{:02}:00Z", 10 + run % 10, call),
                    "provider": "openai", "model": "gpt-4.1", "tenant_id": "acme",
                    "feature": "triage", "prompt_version": version,
                    "agent_run_id": format!("{version}-run-{run}"),
                    "usage": {"input_tokens": input, "cache_read_tokens": input / 4,
                              "output_tokens": 150},
                    "layers": {"prompt": prompt + noise, "tool": tool, "memory": memory,
                               "response": 150},
                })
                .to_string(),
            );
        }
    }
    lines
}

fn ledger(dir: &Path) -> String {
    let mut lines = runs("v2.3", 30, 1_000);
    lines.extend(runs("v2.4", 30, 1_600)); // the prompt grew by 60%
    lines.extend(runs("v2.5", 30, 1_000)); // same as v2.3
    lines.extend(runs("v2.6", 5, 1_000)); // too new to judge
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n")).unwrap();
    let db = dir.join("ledger.duckdb");
    let imported = burnrate()
        .args(["import", "--db"])
        .arg(&db)
        .arg(&events)
        .output()
        .unwrap();
    assert!(imported.status.success());
    db.to_str().unwrap().to_owned()
}

fn compare(db: &str, candidate: &str, extra: &[&str]) -> Output {
    burnrate()
        .args([
            "compare",
            "--db",
            db,
            "--feature",
            "triage",
            "--since",
            "2026-11-01",
        ])
        .args(["--until", "2026-12-01", "--baseline", "prompt_version=v2.3"])
        .args(["--candidate", &format!("prompt_version={candidate}")])
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_regression_gate_fails_a_bloated_prompt_and_passes_an_equal_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = ledger(dir.path());

    let bloated = compare(&db, "v2.4", &[]);
    assert_eq!(bloated.status.code(), Some(1), "{}", stdout(&bloated));
    let text = stdout(&bloated);
    assert!(
        text.contains("30 runs on prompt_version=v2.3, 30 on prompt_version=v2.4"),
        "{text}"
    );
    assert!(text.contains("FAIL"), "{text}");
    let json = compare(&db, "v2.4", &["--format", "json"]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["verdict"], "regressed");
    let check = |name: &str| {
        answer["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == name)
            .unwrap()
            .clone()
    };
    for metric in [
        "cost_per_run_p50",
        "cost_per_run_p99",
        "prompt_tokens_per_call",
    ] {
        assert_eq!(
            check(metric)["regressed"],
            true,
            "{metric}: {}",
            check(metric)
        );
    }
    // The prompt layer grew by about 60%; tool and memory layers did not move.
    let grew = check("prompt_tokens_per_call")["worse_by"]
        .as_f64()
        .unwrap();
    assert!((0.55..0.65).contains(&grew), "{grew}");
    assert_eq!(check("tool_tokens_per_call")["regressed"], false);
    assert_eq!(
        check("memory_tokens_per_call")["worse_by"].as_f64(),
        Some(0.0)
    );

    let equal = compare(&db, "v2.5", &[]);
    assert_eq!(equal.status.code(), Some(0), "{}", stdout(&equal));
    assert!(stdout(&equal).contains("PASS"));
    // A tolerance wide enough lets the bloated one through.
    let tolerated = compare(&db, "v2.4", &["--max-regression", "200%"]);
    assert_eq!(tolerated.status.code(), Some(0), "{}", stdout(&tolerated));
    // Too few runs on one side: no judgement, a distinct exit status.
    let young = compare(&db, "v2.6", &[]);
    assert_eq!(young.status.code(), Some(3), "{}", stdout(&young));
    assert!(stdout(&young).contains("5 on prompt_version=v2.6"));
    assert!(stdout(&young).contains("NO JUDGEMENT"));
}

/// Runs the binary; it must succeed. Returns its stdout.
fn ok(args: &[&str]) -> String {
    let output = burnrate().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "burnrate {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// The ledger's November rows with `cost_usd`, grouped and ordered as `shape` says.
fn november_costs(db: &str, shape: &[&str]) -> Vec<serde_json::Value> {
    let query = [
        "query",
        "--db",
        db,
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--metrics",
        "cost_usd",
        "--format",
        "json",
    ];
    let text = ok(&[&query[..], shape].concat());
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    answer["rows"].as_array().unwrap().clone()
}

/// The ledger's cost per day, as (day, dollars) text pairs.
fn cost_by_day(db: &str) -> Vec<(String, String)> {
    november_costs(db, &["--bucket", "day", "--order", "bucket:asc"])
        .iter()
        .map(|row| {
            (
                row["bucket"].as_str().unwrap()[..10].to_owned(),
                row["cost_usd"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_price_update_keeps_old_calls_at_old_prices_and_prices_new_ones_anew() {
    let dir = tempfile::tempdir().unwrap();
    let call = |day: &str| {
        serde_json::json!({"ts": format!("2026-11-{day}T12:00:00Z"), "provider": "openai",
            "model": "gpt-4.1", "tenant_id": "acme",
            "usage": {"input_tokens": 1_000_000, "output_tokens": 0}})
        .to_string()
    };
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, [call("10"), call("20")].join("\n")).unwrap();
    let db = dir.path().join("ledger.duckdb");
    let db = db.to_str().unwrap();
    ok(&["import", "--db", db, events.to_str().unwrap()]);
    // The bundled table: gpt-4.1 input at $2 per million tokens.
    let before = cost_by_day(db);
    assert_eq!(before.len(), 2);
    assert!(
        before
            .iter()
            .all(|(_, cost)| cost.parse::<f64>().unwrap() == 2.0),
        "{before:?}"
    );

    // A newer table doubles gpt-4.1's input price and adds a model; served over HTTP.
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(
        site.join("prices.json"),
        r#"{"gpt-4.1": {"input_cost_per_token": 4e-6, "output_cost_per_token": 8e-6,
                        "cache_read_input_token_cost": 5e-7, "litellm_provider": "openai",
                        "mode": "chat"},
            "brand-new-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                                "litellm_provider": "openai", "mode": "chat"}}"#,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&site)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("http://127.0.0.1:{port}/prices.json");
    let from = [
        "prices",
        "update",
        "--db",
        db,
        "--from",
        &url,
        "--effective-from",
        "2026-11-15",
    ];

    let shown = ok(&[&from[..], &["--dry-run"]].concat());
    assert!(
        shown.contains("2 models change: 1 added, 1 with new prices"),
        "{shown}"
    );
    assert!(shown.contains("input_cost_per_token"), "{shown}");
    assert!(shown.contains("$2") && shown.contains("$4"), "{shown}");
    assert!(shown.contains("dry run: nothing recorded"), "{shown}");
    assert_eq!(cost_by_day(db), before);

    let recorded = ok(&from);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        recorded.contains("recorded 2 models' prices from 2026-11-15 on"),
        "{recorded}"
    );
    let after = cost_by_day(db);
    // The call before the effective day keeps its price; the one after costs the new one.
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1].0, "2026-11-20");
    assert_eq!(after[1].1.parse::<f64>().unwrap(), 4.0, "{after:?}");
    // Updating again from the same table, read as a file, changes nothing.
    let file = site.join("prices.json");
    let again = ok(&[
        "prices",
        "update",
        "--db",
        db,
        "--from",
        file.to_str().unwrap(),
    ]);
    assert!(again.contains("0 models change"), "{again}");
}

#[test]
fn a_price_table_with_a_bad_entry_records_the_others_and_names_it() {
    // One absurd price in a table of many must not hold back the rest: the good entries are
    // recorded, the bad one is named, its model keeps its price, and the command exits 1.
    let dir = tempfile::tempdir().unwrap();
    let call = |model: &str| {
        serde_json::json!({"ts": "2026-11-20T12:00:00Z", "provider": "openai",
            "model": model, "tenant_id": "acme",
            "usage": {"input_tokens": 1_000_000, "output_tokens": 0}})
        .to_string()
    };
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, [call("gpt-4.1"), call("gpt-4.1-mini")].join("\n")).unwrap();
    let table = dir.path().join("prices.json");
    std::fs::write(
        &table,
        r#"{"gpt-4.1": {"input_cost_per_token": 4e-6, "output_cost_per_token": 8e-6,
                        "litellm_provider": "openai", "mode": "chat"},
            "gpt-4.1-mini": {"input_cost_per_token": 1e28, "output_cost_per_token": 1e-6,
                             "litellm_provider": "openai", "mode": "chat"}}"#,
    )
    .unwrap();
    let table = table.to_str().unwrap();
    let cost_by_model = |db: &str| -> Vec<(String, f64)> {
        november_costs(db, &["--group-by", "model", "--order", "model:asc"])
            .iter()
            .map(|row| {
                let cost = row["cost_usd"].as_str().unwrap().parse().unwrap();
                (row["model"].as_str().unwrap().to_owned(), cost)
            })
            .collect()
    };
    let priced = |gpt_4_1: f64| {
        // gpt-4.1-mini stays at the bundled table's $0.40 per million input tokens.
        vec![
            ("gpt-4.1".to_owned(), gpt_4_1),
            ("gpt-4.1-mini".to_owned(), 0.4),
        ]
    };
    // Each command on a ledger of its own, holding the bundled table's prices.
    for (name, command, gpt_4_1) in [
        ("import", vec!["prices", "import", table], 4.0),
        ("update", vec!["prices", "update", "--from", table], 4.0),
        (
            "update --dry-run",
            vec!["prices", "update", "--from", table, "--dry-run"],
            2.0,
        ),
    ] {
        let db = dir.path().join(format!("{name}.duckdb"));
        let db = db.to_str().unwrap();
        ok(&["import", "--db", db, events.to_str().unwrap()]);
        assert_eq!(cost_by_model(db), priced(2.0), "{name}: the bundled prices");
        let output = burnrate()
            .args(&command)
            .args(["--db", db, "--effective-from", "2026-11-15"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("refused `gpt-4.1-mini`.input_cost_per_token: ")
                && stderr.contains("keeps its current prices"),
            "{name}: {stderr}"
        );
        assert_eq!(
            cost_by_model(db),
            priced(gpt_4_1),
            "{name}: the good entry is recorded (unless a dry run), the bad one's model keeps \
             its price"
        );
    }
}

/// Three tenants' calls in November (and one in October, outside the invoice), with outcomes.
fn billing_ledger(dir: &Path) -> String {
    let mut lines = Vec::new();
    for (tenant, calls) in [("acme", 40u64), ("beta", 30), ("gamma", 25)] {
        for n in 0..calls {
            let mut event = serde_json::json!({
                "ts": format!("2026-11-{:02}T08:00:{:02}Z", 1 + n % 28, n % 60),
                "provider": "openai", "model": "gpt-4.1", "tenant_id": tenant,
                "agent_run_id": format!("{tenant}-{n}"),
                "usage": {"input_tokens": 20_000 + n * 1_000, "cache_read_tokens": 5_000,
                          "output_tokens": 1_000 + n * 10},
            });
            if n % 3 == 0 {
                event["outcome"] = serde_json::json!({"name": "resolved", "success": n % 2 == 0});
            }
            lines.push(event.to_string());
        }
    }
    lines.push(
        serde_json::json!({"ts": "2026-10-31T23:59:59Z", "provider": "openai",
            "model": "gpt-4.1", "tenant_id": "acme",
            "usage": {"input_tokens": 1_000_000, "output_tokens": 0}})
        .to_string(),
    );
    let events = dir.join("billing.jsonl");
    std::fs::write(&events, lines.join("\n")).unwrap();
    let db = dir.join("billing.duckdb");
    ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        events.to_str().unwrap(),
    ]);
    db.to_str().unwrap().to_owned()
}

/// One contract of each kind for the billing ledger's tenants, with tiers and signup months;
/// returns the configuration file.
fn contracts(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("burnrate.toml");
    std::fs::write(
        &config,
        r#"
[[contracts]]
tenant = "acme"
kind = "pass_through"
markup = "0.25"
tier = "growth"
signup = "2026-09"

[[contracts]]
tenant = "beta"
kind = "bundled"
monthly_fee_usd = "100"
included_usd = "0.50"
markup = "0.10"
tier = "growth"
signup = "2026-10"

[[contracts]]
tenant = "gamma"
kind = "outcome"
price_per_outcome_usd = "0.40"
tier = "enterprise"
signup = "2026-10"
"#,
    )
    .unwrap();
    config
}

/// The ledger's own November figures per tenant (`burnrate query`'s JSON).
fn november_by_tenant(db: &str, metrics: &str) -> serde_json::Value {
    let text = ok(&[
        "query",
        "--db",
        db,
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--group-by",
        "tenant_id",
        "--metrics",
        metrics,
        "--format",
        "json",
    ]);
    serde_json::from_str(&text).unwrap()
}

fn decimal(value: &serde_json::Value) -> rust_decimal::Decimal {
    value.as_str().unwrap().parse().unwrap()
}

#[test]
fn invoice_lines_equal_ledger_totals_plus_each_contract_kind_terms() {
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let db = billing_ledger(dir.path());
    let config = contracts(dir.path());
    // The ledger's own totals per tenant for November.
    let totals: serde_json::Value = november_by_tenant(&db, "requests,cost_usd,outcomes");
    let ledger = |tenant: &str| {
        totals["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["tenant_id"] == tenant)
            .unwrap()
            .clone()
    };
    let config = config.to_str().unwrap();
    let text = ok(&[
        "invoice", "--db", &db, "--config", config, "--month", "2026-11", "--format", "json",
    ]);
    let lines: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let amount = |tenant: &str, item: &str| {
        decimal(
            &lines
                .iter()
                .find(|l| l["tenant"] == tenant && l["item"] == item)
                .unwrap_or_else(|| panic!("no {item} line for {tenant}: {text}"))["amount_usd"],
        )
    };
    // Pass-through: the month's cost (October's call excluded) × 1.25.
    let acme = ledger("acme");
    let acme_cost = decimal(&acme["cost_usd"]);
    assert!(acme_cost > Decimal::ZERO);
    assert_eq!(
        amount("acme", "model usage at cost plus markup"),
        acme_cost * Decimal::new(125, 2)
    );
    // Bundled: the fee, plus the cost above $0.50 × 1.10.
    let beta_cost = decimal(&ledger("beta")["cost_usd"]);
    assert!(beta_cost > Decimal::new(5, 1), "{beta_cost}");
    assert_eq!(amount("beta", "monthly fee"), Decimal::from(100));
    assert_eq!(
        amount("beta", "usage above the included allowance"),
        (beta_cost - Decimal::new(5, 1)) * Decimal::new(110, 2)
    );
    // Outcome-based: $0.40 per successful outcome.
    let gamma = ledger("gamma");
    let successes = gamma["outcomes"].as_u64().unwrap();
    assert!(successes > 0);
    assert_eq!(
        amount("gamma", "successful outcomes"),
        Decimal::new(40, 2) * Decimal::from(successes)
    );
    // Every line carries the usage behind it and how to reproduce it.
    for line in &lines {
        let tenant = line["tenant"].as_str().unwrap();
        assert_eq!(line["calls"], ledger(tenant)["requests"]);
        assert_eq!(
            decimal(&line["cost_usd"]),
            decimal(&ledger(tenant)["cost_usd"])
        );
        assert!(
            line["query"]
                .as_str()
                .unwrap()
                .contains(&format!("tenant_id={tenant}"))
        );
        assert!(line["prices_as_of"].is_string());
    }
    // CSV has the same lines; one tenant alone has only its own.
    let csv = ok(&[
        "invoice", "--db", &db, "--config", config, "--month", "2026-11", "--format", "csv",
    ]);
    assert_eq!(csv.lines().count(), 1 + lines.len());
    let one = ok(&[
        "invoice", "--db", &db, "--config", config, "--month", "2026-11", "--tenant", "gamma",
        "--format", "json",
    ]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&one)
            .unwrap()
            .len(),
        1
    );
    assert!(lines.iter().all(|line| line["unpriced_calls"] == 0));
    // A call to a model with no price: the invoice still prints, says which tenant's cost
    // leaves it out, and exits 1 so a billing script stops.
    let unpriced = dir.path().join("unpriced.jsonl");
    // beta's call, refused before any provider, used no tokens: nothing a price could change.
    std::fs::write(
        &unpriced,
        [
            serde_json::json!({"ts": "2026-11-20T10:00:00Z", "provider": "openai",
                "model": "my-private-model", "tenant_id": "acme",
                "usage": {"input_tokens": 5_000_000, "output_tokens": 1_000_000}}),
            serde_json::json!({"ts": "2026-11-20T11:00:00Z", "provider": "openai",
                "model": "llama-3", "tenant_id": "beta", "status": "blocked",
                "usage": {"input_tokens": 0, "output_tokens": 0}}),
        ]
        .map(|event| event.to_string())
        .join("\n"),
    )
    .unwrap();
    ok(&["import", "--db", &db, unpriced.to_str().unwrap()]);
    let output = burnrate()
        .args([
            "invoice", "--db", &db, "--config", config, "--month", "2026-11", "--format", "json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARNING: acme: 1 calls in 2026-11 use models with no price"),
        "{stderr}"
    );
    assert!(!stderr.contains("beta"), "{stderr}");
    let lines: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let acme = lines.iter().find(|l| l["tenant"] == "acme").unwrap();
    assert_eq!(acme["unpriced_calls"], 1);
    assert_eq!(decimal(&acme["cost_usd"]), acme_cost);
    assert!(
        lines
            .iter()
            .filter(|l| l["tenant"] != "acme")
            .all(|l| l["unpriced_calls"] == 0)
    );
}

/// Runs `tests/js/validate_cloudevents.js` (the CNCF SDK's compiled CloudEvents schema) on
/// `file`.
fn validate_cloudevents(file: &Path) -> Output {
    let dir = support::js_dir();
    std::process::Command::new("node")
        .arg(dir.join("validate_cloudevents.js"))
        .arg(file)
        .current_dir(&dir)
        .output()
        .unwrap()
}

#[test]
fn the_usage_export_is_valid_cloudevents_that_add_up_to_the_ledger() {
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let db = billing_ledger(dir.path());
    let file = dir.path().join("usage.json");
    ok(&[
        "meters",
        "--db",
        &db,
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--source",
        "/burnrate/test",
        "--out",
        file.to_str().unwrap(),
    ]);
    let valid = validate_cloudevents(&file);
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // One event per tenant, meter and day; ids unique.
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids.len(), events.len());
    // Calls fall on days 1 to 28: seven meters for each day a tenant called.
    let days = |calls: usize| calls.min(28) * 7;
    assert_eq!(events.len(), days(40) + days(30) + days(25));
    // The cost meter adds up to the ledger's cost per tenant, to the femtodollar.
    let totals: serde_json::Value = november_by_tenant(&db, "cost_usd,requests");
    for row in totals["rows"].as_array().unwrap() {
        let tenant = row["tenant_id"].as_str().unwrap();
        let meter = |name: &str| {
            events
                .iter()
                .filter(|e| e["subject"] == tenant && e["data"]["meter"] == name)
                .map(|e| e["data"]["value"].clone())
                .collect::<Vec<_>>()
        };
        let cost: Decimal = meter("cost_usd").iter().map(decimal).sum();
        assert_eq!(cost, decimal(&row["cost_usd"]), "{tenant}");
        let calls: u64 = meter("requests").iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(serde_json::json!(calls), row["requests"], "{tenant}");
    }
    // The validator is not a rubber stamp: an event without a source fails it.
    let mut broken = events[0].clone();
    broken.as_object_mut().unwrap().remove("source");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::json!([broken]).to_string()).unwrap();
    assert!(!validate_cloudevents(&bad).status.success());
}

#[test]
fn cohorts_group_tenants_by_tier_or_signup_with_unit_costs_and_margins() {
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let db = billing_ledger(dir.path());
    let config = contracts(dir.path());
    let totals: serde_json::Value = november_by_tenant(&db, "cost_usd,outcomes");
    let cost = |tenant: &str| {
        totals["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["tenant_id"] == tenant)
            .map(|row| decimal(&row["cost_usd"]))
            .unwrap()
    };
    let config = config.to_str().unwrap();
    let rows_in = |by: &str, month: &str| -> Vec<serde_json::Value> {
        let text = ok(&[
            "cohorts", "--db", &db, "--config", config, "--by", by, "--from", month, "--to", month,
            "--format", "json",
        ]);
        serde_json::from_str(&text).unwrap()
    };
    let rows = |by: &str| rows_in(by, "2026-11");
    // Before beta signed up (2026-10), its contract bills no fee: September has no revenue,
    // in the cohorts and on an invoice.
    let september = rows_in("tier", "2026-09");
    assert!(
        september
            .iter()
            .all(|r| decimal(&r["revenue_usd"]).is_zero()),
        "{september:?}"
    );
    let invoice = ok(&[
        "invoice", "--db", &db, "--config", config, "--month", "2026-09", "--tenant", "beta",
        "--format", "json",
    ]);
    assert_eq!(invoice.trim(), "[]");
    let by_tier = rows("tier");
    let growth = by_tier.iter().find(|r| r["cohort"] == "growth").unwrap();
    assert_eq!(growth["tenants"], 2);
    assert_eq!(decimal(&growth["cost_usd"]), cost("acme") + cost("beta"));
    assert_eq!(
        decimal(&growth["cost_per_tenant_usd"]),
        ((cost("acme") + cost("beta")) / Decimal::from(2)).round_dp(15)
    );
    // Revenue: acme's cost × 1.25, beta's fee and its cost above $0.50 × 1.10.
    let revenue = cost("acme") * Decimal::new(125, 2)
        + Decimal::from(100)
        + (cost("beta") - Decimal::new(5, 1)) * Decimal::new(110, 2);
    assert_eq!(decimal(&growth["revenue_usd"]), revenue);
    let enterprise = by_tier
        .iter()
        .find(|r| r["cohort"] == "enterprise")
        .unwrap();
    let outcomes = enterprise["outcomes"].as_u64().unwrap();
    assert!(outcomes > 0);
    assert_eq!(
        decimal(&enterprise["cost_per_outcome_usd"]),
        (cost("gamma") / Decimal::from(outcomes)).round_dp(15)
    );
    let margin = enterprise["margin"].as_f64().unwrap();
    let revenue = Decimal::new(40, 2) * Decimal::from(outcomes);
    let expected: f64 = ((revenue - cost("gamma")) / revenue)
        .to_string()
        .parse()
        .unwrap();
    assert!((margin - expected).abs() < 1e-9, "{margin} {expected}");
    // By signup month: acme alone in September's cohort, beta and gamma in October's.
    let by_signup = rows("signup");
    let cohort = |name: &str| {
        by_signup
            .iter()
            .find(|r| r["cohort"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(cohort("2026-09")["tenants"], 1);
    assert_eq!(cohort("2026-10")["tenants"], 2);
    assert_eq!(
        decimal(&cohort("2026-10")["cost_usd"]),
        cost("beta") + cost("gamma")
    );
}

#[test]
fn the_gateway_picks_up_a_newer_price_table_and_the_ledger_prices_with_it() {
    use rust_decimal::Decimal;
    let mock = support::mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("prices.json");
    std::fs::write(
        &table,
        // A bad entry beside it must not hold the update back.
        r#"{"gpt-4o": {"input_cost_per_token": 1e-3, "output_cost_per_token": 2e-3,
                       "litellm_provider": "openai", "mode": "chat"},
            "gpt-4.1": {"input_cost_per_token": 1e28, "output_cost_per_token": 1e-6,
                        "litellm_provider": "openai", "mode": "chat"}}"#,
    )
    .unwrap();
    let extra = format!(
        "[prices]\nupdate_from = \"{}\"\nupdate_interval_h = 24\n",
        table.display()
    );
    let config = support::write_config(dir.path(), &mock.url, &extra);
    let gateway = support::serve(&config);
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(support::KEY)
        .header("X-Attribution-User-ID", "u1")
        .header("X-Attribution-Feature", "pricing")
        .header("x-mock-output-tokens", "100")
        .json(
            &serde_json::json!({"model": "gpt-4o", "service_tier": "default",
            "messages": [{"role": "user", "content": "price me"}]}),
        )
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let usage = answer.json::<serde_json::Value>().unwrap()["usage"].clone();
    let (input, output) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!(output, 100);
    // Priced with the table read at start: $0.001 per input token, $0.002 per output token.
    let expected =
        Decimal::new(1, 3) * Decimal::from(input) + Decimal::new(2, 3) * Decimal::from(output);
    let cost_in = |source: &[&str]| -> Option<Decimal> {
        let mut args = vec!["query", "--since", "2d", "--metrics", "cost_usd"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--format", "json"]);
        let cost: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        cost["rows"][0]["cost_usd"]
            .as_str()
            .map(|c| c.parse().unwrap())
    };
    // The first update runs beside the first calls: wait until the gateway's ledger has
    // taken it, or a stop right away would leave it for the next start.
    let server = [
        "--server",
        &gateway.url,
        "--admin-token",
        support::ADMIN_TOKEN,
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = cost_in(&server);
    while seen != Some(expected) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen = cost_in(&server);
    }
    assert_eq!(seen, Some(expected));
    assert!(gateway.terminate().success());

    let db = dir.path().join("ledger.duckdb");
    let events = support::export(&db);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["usage"]["input_tokens"].as_u64(), Some(input));
    assert_eq!(cost_in(&["--db", db.to_str().unwrap()]), Some(expected));
    // The new version is on record with its source; the bundled one is its history.
    let shown = ok(&["prices", "show", "gpt-4o", "--db", db.to_str().unwrap()]);
    assert!(shown.contains("prices.json@"), "{shown}");
    // The refused entry's model keeps the bundled prices alone.
    let kept = ok(&["prices", "show", "gpt-4.1", "--db", db.to_str().unwrap()]);
    assert!(!kept.contains("prices.json@"), "{kept}");
}

#[test]
fn agent_roles_show_each_agents_share_of_the_runs_it_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let call = |run: Option<String>, agent: Option<(&str, u32)>, input: u64, minute: u32| {
        let mut event = serde_json::json!({
            "ts": format!("2026-11-18T10:{minute:02}:00Z"), "provider": "openai",
            "model": "gpt-4.1", "tenant_id": "acme", "feature": "research",
            "usage": {"input_tokens": input, "output_tokens": 0},
        });
        if let Some(run) = run {
            event["agent_run_id"] = run.into();
        }
        if let Some((name, depth)) = agent {
            event["agent_name"] = name.into();
            event["span_depth"] = depth.into();
        }
        event
    };
    let mut lines = Vec::new();
    for run in 0..20 {
        let id = || Some(format!("run-{run}"));
        // The coordinator makes two calls, each worker one: half the run's cost is its.
        lines.push(call(id(), Some(("coordinator", 0)), 2_500, run));
        lines.push(call(id(), Some(("coordinator", 0)), 2_500, run + 30));
        lines.push(call(id(), Some(("researcher", 1)), 2_500, run));
        lines.push(call(id(), Some(("writer", 1)), 2_500, run));
    }
    // The same split where sub-agents report run ids of their own with their parent's,
    // two levels down (the writer works for the researcher): each tree is one run.
    for run in 0..10 {
        let top = format!("tree-{run}");
        let sub = format!("tree-{run}.researcher");
        // The researcher's calls are tagged with a feature of their own.
        let mut delegated = |run: &str, parent: Option<&str>, agent: (&str, u32), minute| {
            let mut event = call(Some(run.to_owned()), Some(agent), 2_500, minute);
            event["feature"] = match agent.0 {
                "researcher" => "web-search",
                _ => "delegation",
            }
            .into();
            if let Some(parent) = parent {
                event["parent_run_id"] = parent.into();
            }
            lines.push(event);
        };
        delegated(&top, None, ("coordinator", 0), run);
        delegated(&top, None, ("coordinator", 0), run + 30);
        delegated(&sub, Some(&top), ("researcher", 1), run);
        delegated(
            &format!("tree-{run}.writer"),
            Some(&sub),
            ("writer", 1),
            run,
        );
    }
    lines.push(call(Some("solo".into()), None, 4_000, 55));
    lines.push(call(None, None, 9_000, 56)); // outside any run: not a role
    let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
    let events = dir.path().join("roles.jsonl");
    std::fs::write(&events, lines.join("\n")).unwrap();
    let db = dir.path().join("roles.duckdb");
    let db = db.to_str().unwrap();
    ok(&["import", "--db", db, events.to_str().unwrap()]);

    // `burnrate roles` over November with these extra arguments: its text and its roles.
    let roles_of = |extra: &[&str]| {
        let mut args = vec![
            "roles",
            "--db",
            db,
            "--since",
            "2026-11-01",
            "--until",
            "2026-12-01",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let text = ok(&args);
        let roles: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        (text, roles)
    };
    let (text, roles) = roles_of(&[]);
    let role = |name: Option<&str>| {
        roles
            .iter()
            .find(|r| r["agent_name"].as_str() == name)
            .unwrap_or_else(|| panic!("{name:?} in {text}"))
            .clone()
    };
    let share = |r: &serde_json::Value, key: &str| r[key].as_f64().unwrap();
    let coordinator = role(Some("coordinator"));
    assert_eq!(coordinator["runs"], 30);
    assert_eq!(coordinator["depth"], 0);
    assert!((share(&coordinator, "share_of_run_cost") - 0.5).abs() < 1e-12);
    assert!((share(&coordinator, "median_share") - 0.5).abs() < 1e-12);
    let researcher = role(Some("researcher"));
    assert_eq!(researcher["depth"], 1);
    assert_eq!(researcher["runs"], 30);
    assert!((share(&researcher, "share_of_run_cost") - 0.25).abs() < 1e-12);
    assert!((share(&researcher, "median_share") - 0.25).abs() < 1e-12);
    let writer = role(Some("writer"));
    assert_eq!(writer["runs"], 30);
    assert!((share(&writer, "median_share") - 0.25).abs() < 1e-12);
    // A run that named no agent is all "unnamed"; calls outside runs are not counted.
    let solo = role(None);
    assert_eq!(solo["runs"], 1);
    assert!((share(&solo, "share_of_run_cost") - 1.0).abs() < 1e-12);
    assert_eq!(roles[0]["agent_name"], serde_json::Value::Null);
    assert_eq!(roles[1]["agent_name"], "coordinator");
    // Filtered to one feature, the trees still hold together through the researcher's run,
    // whose calls the filter leaves out: the writer's cost is a third of its tree's.
    let (text, filtered) = roles_of(&["--filter", "feature=delegation"]);
    let writer = filtered
        .iter()
        .find(|r| r["agent_name"] == "writer")
        .unwrap_or_else(|| panic!("writer in {text}"));
    assert_eq!(writer["runs"], 10, "{text}");
    assert!(
        (share(writer, "share_of_run_cost") - 1.0 / 3.0).abs() < 1e-12,
        "{text}"
    );
    assert!(!text.contains("researcher"), "{text}");
    // The same shares as a query metric, grouped by agent, for the runs whose agents share
    // the run's id (the metric takes each run id as a run).
    let text = ok(&[
        "query",
        "--db",
        db,
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--filter",
        "feature=research",
        "--group-by",
        "agent_name",
        "--metrics",
        "run_cost_share",
        "--format",
        "json",
    ]);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    let metric = |name: serde_json::Value| {
        answer["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["agent_name"] == name)
            .unwrap_or_else(|| panic!("{name} in {text}"))["run_cost_share"]
            .as_f64()
            .unwrap()
    };
    assert!((metric("coordinator".into()) - 0.5).abs() < 1e-12, "{text}");
    assert!((metric("writer".into()) - 0.25).abs() < 1e-12, "{text}");
    // Calls outside runs have no run: the unnamed group is the solo run, all its own.
    assert!(
        (metric(serde_json::Value::Null) - 1.0).abs() < 1e-12,
        "{text}"
    );
    // The weekly report carries the same roles.
    let report = ok(&[
        "report",
        "weekly",
        "--db",
        db,
        "--date",
        "2026-11-20",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["data"]["agent_roles"].as_array().unwrap().len(),
        roles.len()
    );
    assert!(
        report["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["title"] == "Agent roles in multi-agent runs")
    );
}
