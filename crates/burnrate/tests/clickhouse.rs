//! The ClickHouse ledger next to the DuckDB one: the same events and prices in both, the same
//! queries, the same rows (exact money, nearest-rank percentiles). The SQL ClickHouse ran on
//! the real 18.16 server also runs on a current release (chdb, ClickHouse 26.x in-process)
//! and answers the same. Without `clickhouse-server` these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "../../burnrate-store/tests/support/clickhouse_server.rs"]
mod clickhouse_server;
mod support;

use std::process::Command;

use burnrate_model::UsageEvent;
use burnrate_model::dimension::Dimension;
use burnrate_store::clickhouse::{ClickHouse, MIGRATIONS};
use burnrate_store::reports::{Report, ReportParams};
use burnrate_store::{Bucket, Cell, DuckStore, Filter, Metric, QueryResult, QuerySpec, Store};
use chrono::{DateTime, Duration, TimeZone, Utc};

const OVERRIDES: &str = r#"
[[price]]
model = "test-model"
provider = "testprov"
input_cost_per_token = "0.000001"
cache_read_input_token_cost = "0.0000001"
cache_creation_input_token_cost = "0.000002"
cache_creation_input_token_cost_above_1hr = "0.000003"
output_cost_per_token = "0.00001"
output_cost_per_reasoning_token = "0.00002"
input_cost_per_token_above_128k_tokens = "0.000002"

[[price]]
model = "test-model"
provider = "testprov"
effective_from = "2026-11-10"
input_cost_per_token = "0.0000013"
output_cost_per_token = "0.000011"

[[price]]
model = "late-model"
provider = "testprov"
effective_from = "2026-11-05"
input_cost_per_token = "0.000004"
output_cost_per_token = "0.000016"
"#;

/// A deterministic mix: five tenants and untagged calls, users, features, runs, labels,
/// service tiers, cached and reasoning tokens, layers, outcomes, errors, calls above the
/// 128k and 200k input tiers, a dated model name, a model priced from a date on and one
/// never priced; October 20 to November 20, 2026.
fn dataset(count: u64) -> Vec<UsageEvent> {
    let start = Utc.with_ymd_and_hms(2026, 10, 20, 0, 0, 0).unwrap();
    let models = [
        ("openai", "gpt-4.1"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("testprov", "test-model"),
        ("testprov", "late-model"),
        ("mystery", "mystery-model"),
        ("gemini", "gemini-2.5-pro"),
    ];
    let tiers = [
        None,
        Some("batch"),
        Some("flex"),
        Some("priority"),
        Some("scale"),
    ];
    (0..count)
        .map(|n| {
            let mix = n.wrapping_mul(2_654_435_761) % 1_000_003;
            let ts = start + Duration::microseconds((n * 31 * 86_400_000_000 / count) as i64 + 7);
            let (provider, model) = models[(mix % 6) as usize];
            let big = mix % 17 == 0;
            let input = if big {
                130_000 + mix % 150_000
            } else {
                200 + mix % 9_000
            };
            let cache_read = (input / 3) * (mix % 2);
            let cache_write = (input / 5) * ((mix / 2) % 2);
            let cache_write_1h = cache_write / 2 * ((mix / 4) % 2);
            let output = 20 + mix % 2_000;
            let reasoning = (output / 2) * ((mix / 8) % 2);
            let tool = input / 10;
            let memory = input / 4;
            let mut event = serde_json::json!({
                "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "provider": provider, "model": model,
                "usage": {"input_tokens": input, "cache_read_tokens": cache_read,
                          "cache_write_tokens": cache_write,
                          "cache_write_1h_tokens": cache_write_1h,
                          "output_tokens": output, "reasoning_tokens": reasoning},
                "status": if mix % 23 == 0 { "error" } else { "ok" },
            });
            let object = event.as_object_mut().unwrap();
            if mix % 7 != 0 {
                object.insert("tenant_id".into(), format!("t-{}", mix % 5).into());
            }
            if mix % 3 != 0 {
                object.insert("user_id".into(), format!("u-{}", mix % 11).into());
            }
            if mix % 4 != 0 {
                let features = ["search", "chat", "agent"];
                object.insert("feature".into(), features[(mix % 3) as usize].into());
            }
            if mix % 5 < 3 {
                let run = mix % 97;
                object.insert("agent_run_id".into(), format!("r-{run}").into());
                // A quarter of the runs are sub-agents of others, two levels deep at most.
                let agent = if run % 4 == 1 {
                    object.insert("parent_run_id".into(), format!("r-{}", run / 4).into());
                    "worker"
                } else {
                    "coordinator"
                };
                object.insert("agent_name".into(), agent.into());
                object.insert("tool_calls".into(), 1.into());
                let tool = ["search", "fetch"][(mix % 2) as usize];
                let hash = format!("{:016x}", mix % 3);
                object.insert(
                    "tools".into(),
                    serde_json::json!([{"name": tool, "args_hash": hash}]),
                );
            }
            if mix % 2 == 0 {
                object.insert(
                    "route".into(),
                    ["/triage", "/draft"][(mix / 2 % 2) as usize].into(),
                );
                if mix % 3 != 2 {
                    object.insert("session_id".into(), format!("s-{}", mix % 61).into());
                }
            }
            if let Some(tier) = tiers[(mix % 5) as usize] {
                object.insert("service_tier".into(), tier.into());
            }
            if mix % 6 != 1 {
                object.insert("duration_ms".into(), (100 + mix % 5_000).into());
            }
            if mix % 2 == 0 {
                object.insert(
                    "layers".into(),
                    serde_json::json!({"prompt": input - tool - memory, "tool": tool,
                                       "memory": memory, "response": output}),
                );
            }
            if mix % 9 == 0 {
                object.insert(
                    "outcome".into(),
                    serde_json::json!({"name": "resolved", "success": mix % 2 == 0}),
                );
            }
            if mix % 4 == 1 {
                object.insert("span_depth".into(), (mix % 3).into());
            }
            let mut labels = serde_json::Map::new();
            if mix % 3 == 1 {
                labels.insert("team".into(), ["core", "growth"][(mix % 2) as usize].into());
            }
            if mix % 13 == 0 {
                labels.insert("burnrate.missing".into(), "cache,usage".into());
            }
            object.insert("labels".into(), labels.into());
            let mut event: UsageEvent = serde_json::from_value(event).unwrap();
            event.validate().unwrap();
            event.id = Some(uuid::Uuid::now_v7());
            event
        })
        .collect()
}

fn at(day: &str) -> DateTime<Utc> {
    format!("{day}T00:00:00Z").parse().unwrap()
}

fn spec(group_by: &[&str], metrics: &[Metric]) -> QuerySpec {
    QuerySpec {
        since: at("2026-10-01"),
        until: at("2026-12-01"),
        bucket: None,
        group_by: group_by
            .iter()
            .map(|d| d.parse::<Dimension>().unwrap())
            .collect(),
        filters: Vec::new(),
        metrics: metrics.to_vec(),
        order: None,
        top: None,
    }
}

/// The query suite: every metric, grouped by nothing, one and two dimensions and a label;
/// every bucket; filters of each kind; top-N with and without buckets; orders; an empty range.
fn suite() -> Vec<(String, QuerySpec)> {
    let all = Metric::ALL;
    let mut specs = vec![
        ("all metrics, no group".to_owned(), spec(&[], all)),
        (
            "all metrics by tenant".to_owned(),
            spec(&["tenant_id"], all),
        ),
        (
            "all metrics by tenant and feature".to_owned(),
            spec(&["tenant_id", "feature"], all),
        ),
        ("all metrics by model".to_owned(), spec(&["model"], all)),
        (
            "all metrics by service tier".to_owned(),
            spec(&["service_tier"], all),
        ),
        ("by label".to_owned(), spec(&["label.team"], all)),
        (
            "by span depth".to_owned(),
            spec(&["span_depth", "status"], all),
        ),
    ];
    for bucket in [Bucket::Hour, Bucket::Day, Bucket::Week, Bucket::Month] {
        let mut by_time = spec(
            &["feature"],
            &[
                Metric::CostUsd,
                Metric::Requests,
                Metric::CostPerRunP90,
                Metric::LatencyP99Ms,
            ],
        );
        by_time.bucket = Some(bucket);
        by_time.order = Some("bucket".parse().unwrap());
        if bucket == Bucket::Hour {
            by_time.since = at("2026-11-02");
            by_time.until = at("2026-11-04");
        }
        specs.push((format!("by {} and feature", bucket.as_str()), by_time));
    }
    let mut top_buckets = spec(&["user_id"], &[Metric::CostUsd, Metric::ShareOfCost]);
    top_buckets.bucket = Some(Bucket::Week);
    top_buckets.top = Some(3);
    specs.push(("top 3 users, weekly".to_owned(), top_buckets));
    let mut top = spec(
        &["user_id"],
        &[Metric::CostUsd, Metric::Runs, Metric::ShareOfCost],
    );
    top.top = Some(4);
    specs.push(("top 4 users".to_owned(), top));
    let mut ordered = spec(&["tenant_id"], &[Metric::Requests, Metric::CostUsd]);
    ordered.order = Some("tenant_id:asc".parse().unwrap());
    specs.push(("tenants by name".to_owned(), ordered));
    let mut by_rate = spec(&["user_id"], &[Metric::CacheHitRate, Metric::CostUsd]);
    by_rate.order = Some("cache_hit_rate:asc".parse().unwrap());
    specs.push(("users by cache hit rate".to_owned(), by_rate));
    for (name, filters) in [
        ("tenant t-1 or untagged", vec!["tenant_id=t-1,"]),
        ("not search", vec!["feature!=search"]),
        (
            "team core, depth 2",
            vec!["label.team=core", "span_depth=2"],
        ),
        ("depth not a number", vec!["span_depth=two"]),
        (
            "no user, not batch",
            vec!["user_id=", "service_tier!=batch"],
        ),
        ("quotes in a value", vec!["tenant_id=it's"]),
    ] {
        let mut filtered = spec(&["feature"], all);
        filtered.filters = filters
            .iter()
            .map(|f| f.parse::<Filter>().unwrap())
            .collect();
        specs.push((format!("filter: {name}"), filtered));
    }
    let mut empty = spec(&[], all);
    empty.since = at("2025-01-01");
    empty.until = at("2025-02-01");
    specs.push(("empty range, no group".to_owned(), empty));
    let mut empty_grouped = spec(&["tenant_id"], all);
    empty_grouped.since = at("2025-01-01");
    empty_grouped.until = at("2025-02-01");
    specs.push(("empty range by tenant".to_owned(), empty_grouped));
    let mut narrow = spec(&["model"], &[Metric::CostUsd, Metric::UnpricedRequests]);
    narrow.since = "2026-11-04T12:30:00.5Z".parse().unwrap();
    narrow.until = "2026-11-06T07:00:00.25Z".parse().unwrap();
    specs.push(("sub-second range".to_owned(), narrow));
    specs
}

/// Cells equal: text, counts and money exactly; ratios to 1e-12 (DuckDB and ClickHouse
/// convert a 128-bit sum to a double each their own way, within an ulp).
fn assert_same(name: &str, duck: &QueryResult, click: &QueryResult) {
    assert_eq!(duck.columns, click.columns, "{name}: columns");
    assert_eq!(
        duck.rows.len(),
        click.rows.len(),
        "{name}: row counts\nduckdb: {:?}\nclickhouse: {:?}",
        duck.rows,
        click.rows
    );
    for (index, (a, b)) in duck.rows.iter().zip(&click.rows).enumerate() {
        for ((column, x), y) in duck.columns.iter().zip(a).zip(b) {
            let same = match (x, y) {
                (Cell::Number(x), Cell::Number(y)) => {
                    (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1e-300)
                }
                _ => x == y,
            };
            assert!(
                same,
                "{name}: row {index} `{column}`: duckdb {x:?}, clickhouse {y:?}\n\
                 duckdb row: {a:?}\nclickhouse row: {b:?}"
            );
        }
    }
    assert_eq!(duck.unpriced, click.unpriced, "{name}: unpriced calls");
    assert_eq!(duck.warnings, click.warnings, "{name}: warnings");
}

fn both(events: &[UsageEvent], url: &str) -> (DuckStore, ClickHouse) {
    let mut duck = DuckStore::open_in_memory().unwrap();
    duck.import_overrides(OVERRIDES, "overrides.toml").unwrap();
    duck.append(events).unwrap();
    let mut click = ClickHouse::connect(url).unwrap();
    click.import_overrides(OVERRIDES, "overrides.toml").unwrap();
    // In two batches, the second partly a retry of the first.
    let half = events.len() / 2;
    click.append(&events[..half]).unwrap();
    let outcome = click.append(&events[half / 2..]).unwrap();
    assert_eq!(outcome.inserted as usize, events.len() - half);
    (duck, click)
}

#[test]
fn the_query_suite_returns_the_same_rows_on_duckdb_and_clickhouse() {
    let server = clickhouse_server::start();
    let events = dataset(3_000);
    let (duck, click) = both(&events, &server.url);
    assert_eq!(click.event_count().unwrap(), 3_000);
    for (name, spec) in suite() {
        let a = duck.query(&spec).unwrap();
        let b = click
            .query(&spec)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_same(&name, &a, &b);
    }
    // The suite is not vacuous: costs are positive, some calls are unpriced, runs spread.
    let totals = click.query(&spec(&[], Metric::ALL)).unwrap();
    assert!(matches!(totals.get(0, "cost_usd"), Some(Cell::Money(m)) if m.to_femto() > 0));
    assert!(totals.unpriced.requests > 0);
    assert!(matches!(
        totals.get(0, "cost_per_run_p99"),
        Some(Cell::Money(_))
    ));

    // The detectors' raw material: the same on both (tenant and feature are any of a run's,
    // so they are left out of the comparison).
    let (since, recent, until) = (at("2026-10-20"), at("2026-11-12"), at("2026-11-21"));
    let growth = |store: &dyn Store| {
        let mut sessions = store.memory_growth(since, recent, until, 2, 3).unwrap();
        sessions.iter_mut().for_each(|s| s.tenant_id = None);
        sessions
    };
    assert_eq!(growth(&duck), growth(&click));
    let repeats = |store: &dyn Store| {
        let mut repeats = store.tool_repeats(since, until, 3).unwrap();
        for repeat in &mut repeats {
            (repeat.tenant_id, repeat.feature) = (None, None);
        }
        repeats
    };
    assert!(!repeats(&duck).is_empty());
    assert_eq!(repeats(&duck), repeats(&click));
    assert_eq!(
        duck.unpriced_models().unwrap(),
        click.unpriced_models().unwrap()
    );
    assert!(!click.unpriced_models().unwrap().is_empty());

    // A run page's calls: the same events, in the same order, from both.
    let runs: Vec<String> = events
        .iter()
        .filter_map(|e| e.agent_run_id.clone())
        .take(3)
        .collect();
    assert!(!runs.is_empty());
    let calls = |store: &dyn Store| store.run_events(&runs, since, until).unwrap();
    let expected: Vec<_> = events
        .iter()
        .filter(|e| {
            [&e.agent_run_id, &e.parent_run_id]
                .iter()
                .any(|id| id.as_ref().is_some_and(|id| runs.contains(id)))
        })
        .map(|e| e.id)
        .collect();
    let from_duck: Vec<_> = calls(&duck).iter().map(|e| e.id).collect();
    assert_eq!(from_duck.len(), expected.len());
    assert_eq!(
        calls(&duck),
        calls(&click),
        "run events differ between the backends"
    );

    // Agent roles, whose run trees are resolved from the parent links each backend returns.
    let roles = |store: &dyn Store| {
        burnrate_insight::roles::agent_roles(store, at("2026-10-01"), at("2026-12-01"), &[])
            .unwrap()
    };
    let from_duck = roles(&duck);
    assert!(
        from_duck
            .iter()
            .any(|role| role.share_of_run_cost.is_some_and(|share| share < 1.0)),
        "{from_duck:?}"
    );
    assert_eq!(from_duck, roles(&click));

    let params = ReportParams {
        since: at("2026-10-01"),
        until: at("2026-12-01"),
        filters: Vec::new(),
        top: None,
    };
    for report in Report::ALL {
        let a = duck.report(report, &params).unwrap();
        let b = click
            .report(report, &params)
            .unwrap_or_else(|error| panic!("report {}: {error}", report.as_str()));
        assert_same(report.as_str(), &a, &b);
        assert!(!b.rows.is_empty(), "report {}", report.as_str());
    }
}

#[test]
fn the_generated_schema_and_queries_run_on_a_current_clickhouse_alike() {
    let server = clickhouse_server::start();
    let events = dataset(600);
    let (_, click) = both(&events, &server.url);
    // The plan: the migrations, then every table's rows as 18.16 holds them, then the suite.
    let mut statements = vec!["CREATE DATABASE IF NOT EXISTS burnrate".to_owned()];
    statements.push(
        "CREATE TABLE IF NOT EXISTS burnrate.schema_migrations (version UInt32, \
         applied DateTime) ENGINE = TinyLog"
            .to_owned(),
    );
    for (_, migration) in MIGRATIONS {
        statements.extend(migration.iter().map(|s| s.replace("{db}", "burnrate")));
    }
    for table in [
        "events",
        "price_versions",
        "price_bands",
        "price_generations",
        "models_seen",
    ] {
        let rows = click
            .execute(&format!(
                "SELECT * FROM burnrate.{table} FORMAT JSONEachRow"
            ))
            .unwrap();
        statements.push(format!(
            "INSERT INTO burnrate.{table} FORMAT JSONEachRow\n{rows}"
        ));
    }
    let suite = suite();
    let mut queries = Vec::new();
    for (name, spec) in &suite {
        queries.push(serde_json::json!({
            "name": name,
            "sql": format!("{} FORMAT TabSeparated", click.render(spec).unwrap()),
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        serde_json::json!({"statements": statements, "queries": queries}).to_string(),
    )
    .unwrap();
    let output = Command::new(support::python())
        .arg(support::script("chdb_check.py"))
        .arg(&plan)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chdb_check.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let version = answer["version"].as_str().unwrap();
    assert!(
        version.split('.').next().unwrap().parse::<u32>().unwrap() >= 24,
        "{version}"
    );
    for (name, spec) in &suite {
        let expected = click.query(spec).unwrap();
        let text = answer["results"][name.as_str()].as_str().unwrap();
        let mut current = QueryResult::new(expected.columns.clone(), expected.kinds.clone());
        for row in burnrate_store::clickhouse::sql::tsv_rows(text, expected.columns.len()).unwrap()
        {
            current.push_text_row(row).unwrap();
        }
        current.unpriced = expected.unpriced;
        current.warnings = expected.warnings.clone();
        assert_same(
            &format!("{name} on ClickHouse {version}"),
            &expected,
            &current,
        );
    }
}

/// Runs the binary with `args`; it must succeed. Returns its stdout.
fn run(args: &[&str]) -> String {
    let output = support::burnrate().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "burnrate {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn migrate_moves_a_million_event_ledger_and_totals_match_to_the_last_digit() {
    let server = clickhouse_server::start();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let db = dir.path().join("ledger.duckdb");
    let (events, db) = (events.to_str().unwrap(), db.to_str().unwrap());
    run(&[
        "gen-events",
        "--tenants",
        "40",
        "--days",
        "60",
        "--events",
        "1000000",
        "--seed",
        "3",
        "--end",
        "2026-11-20T00:00:00Z",
        "--out",
        events,
    ]);
    run(&["import", "--db", db, events]);
    let from = format!("duckdb:{db}");
    let to = format!("clickhouse:{}", server.url);
    let moved = run(&["migrate", "--from", &from, "--to", &to]);
    assert!(moved.contains("moved 1000000 events"), "{moved}");
    assert!(moved.contains("totals match to the last digit"), "{moved}");
    // The same answers per tenant and day from both ledgers, read by the CLI.
    let query = |ledger: &str| {
        run(&[
            "query",
            "--db",
            ledger,
            "--since",
            "2026-09-01",
            "--until",
            "2026-11-21",
            "--group-by",
            "tenant_id",
            "--bucket",
            "day",
            "--metrics",
            "requests,cost_usd,naive_cost_usd,input_tokens,cache_read_tokens,output_tokens,\
             cost_per_run_p99,unpriced_requests",
            "--format",
            "json",
        ])
    };
    let embedded: serde_json::Value = serde_json::from_str(&query(db)).unwrap();
    let moved_up: serde_json::Value = serde_json::from_str(&query(&server.url)).unwrap();
    assert!(embedded["rows"].as_array().unwrap().len() > 1_000);
    assert_eq!(embedded["rows"], moved_up["rows"]);
    // Running it again moves nothing and still matches.
    let again = run(&["migrate", "--from", &from, "--to", &to]);
    assert!(again.contains("moved 0 events"), "{again}");
    assert!(again.contains("totals match to the last digit"), "{again}");
}
