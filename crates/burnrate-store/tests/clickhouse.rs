//! The ClickHouse ledger against a real `clickhouse-server` (Debian's 18.16 in CI), started
//! on free loopback ports in a temporary folder. Without the server these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;

use burnrate_model::UsageEvent;
use burnrate_store::Store;
use burnrate_store::clickhouse::{ClickHouse, MIGRATIONS};
use clickhouse_server::{free_port, start};

/// `count` calls over three months, ids set, tokens varying.
fn calls(count: u64) -> Vec<UsageEvent> {
    (0..count)
        .map(|n| {
            let day = 1 + n % 28;
            let month = 8 + n % 3;
            let mut event = UsageEvent::from_json(&format!(
                r#"{{"ts": "2026-{month:02}-{day:02}T10:{:02}:{:02}.123456Z", "provider": "openai",
                    "model": "gpt-4.1", "tenant_id": "t-{}",
                    "usage": {{"input_tokens": {}, "output_tokens": {}}},
                    "tools": [{{"name": "search", "args_hash": "00000000000000{:02x}"}}],
                    "tool_calls": 1}}"#,
                n % 60,
                n % 60,
                n % 7,
                1000 + n,
                10 + n % 90,
                n % 256
            ))
            .unwrap();
            event.id = Some(uuid::Uuid::now_v7());
            event
        })
        .collect()
}

#[test]
fn migrations_run_once_a_retried_batch_inserts_nothing_and_a_month_drops_whole() {
    let server = start();
    let mut store = ClickHouse::connect(&server.url).unwrap();
    let latest = MIGRATIONS.last().unwrap().0;
    assert_eq!(store.schema_version().unwrap(), latest);
    // Connecting again finds the schema current and changes nothing.
    let again = ClickHouse::connect(&server.url).unwrap();
    assert_eq!(again.migrate().unwrap(), latest);
    let versions = again
        .execute("SELECT count() FROM burnrate.schema_migrations")
        .unwrap();
    assert_eq!(versions.trim(), MIGRATIONS.len().to_string());

    let events = calls(1_000);
    let first = store.append(&events).unwrap();
    assert_eq!((first.inserted, first.duplicates), (1_000, 0));
    // The same batch again (an answer lost on the way back), and a batch with a repeat.
    let retried = store.append(&events).unwrap();
    assert_eq!((retried.inserted, retried.duplicates), (0, 1_000));
    let mut mixed = calls(10);
    mixed.push(mixed[0].clone());
    mixed.push(events[5].clone());
    let outcome = store.append(&mixed).unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (10, 2));
    assert_eq!(store.event_count().unwrap(), 1_010);

    let expected: u64 = events
        .iter()
        .chain(&mixed[..10])
        .map(|e| e.usage.input_tokens)
        .sum();
    let stored = store
        .execute("SELECT sum(input_tokens) FROM burnrate.events")
        .unwrap();
    assert_eq!(stored.trim(), expected.to_string());
    // The exact time and the tools survive the trip.
    let row = store
        .execute(&format!(
            "SELECT ts_us, tool_names, tool_hashes FROM burnrate.events WHERE id = toUUID('{}') \
             FORMAT TabSeparated",
            events[3].id.unwrap()
        ))
        .unwrap();
    assert_eq!(
        row.trim(),
        format!("{}\t['search']\t[3]", events[3].ts.timestamp_micros())
    );
    // Three monthly partitions.
    let partitions = store
        .execute(
            "SELECT count(DISTINCT partition) FROM system.parts \
             WHERE database = 'burnrate' AND table = 'events' AND active",
        )
        .unwrap();
    assert_eq!(partitions.trim(), "3");

    // Retention drops a month as a partition.
    let months = store.months().unwrap();
    let august = chrono::NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
    assert_eq!(months.len(), 3);
    assert_eq!(months[0], august);
    let in_august = events
        .iter()
        .chain(&mixed[..10])
        .filter(|e| e.ts.format("%Y-%m").to_string() == "2026-08")
        .count() as u64;
    store.drop_month(august).unwrap();
    assert_eq!(store.event_count().unwrap(), 1_010 - in_august);
    assert_eq!(store.months().unwrap().len(), 2);
}

#[test]
fn a_bad_url_and_an_unreachable_server_say_what_to_do() {
    let error = ClickHouse::connect("not a url").err().unwrap().to_string();
    assert!(
        error.contains("clickhouse://127.0.0.1:8123/burnrate"),
        "{error}"
    );
    let port = free_port();
    let error = ClickHouse::connect(&format!("clickhouse://127.0.0.1:{port}/burnrate"))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("unreachable"), "{error}");
}

#[test]
fn retention_archives_months_to_parquet_that_reads_back_then_drops_them() {
    use burnrate_store::{DuckStore, Metric, QuerySpec};
    let server = start();
    let mut store = ClickHouse::connect(&server.url).unwrap();
    let events = calls(900);
    store.append(&events).unwrap();
    let at = |day: &str| format!("{day}T00:00:00Z").parse().unwrap();
    let spec = QuerySpec {
        since: at("2026-01-01"),
        until: at("2027-01-01"),
        bucket: None,
        group_by: vec!["tenant_id".parse().unwrap()],
        filters: Vec::new(),
        metrics: vec![Metric::Requests, Metric::CostUsd, Metric::InputTokens],
        order: Some("tenant_id:asc".parse().unwrap()),
        top: None,
    };
    let mut before_october = spec.clone();
    before_october.until = at("2026-10-01");
    let expected = store.query(&before_october).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let october = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let archived = store.archive_before(october, dir.path()).unwrap();
    let labels: Vec<String> = archived.iter().map(|m| m.label()).collect();
    assert_eq!(labels, ["2026-08", "2026-09"]);
    let in_archive = events.iter().filter(|e| e.ts < at("2026-10-01")).count() as u64;
    assert_eq!(archived.iter().map(|m| m.events).sum::<u64>(), in_archive);
    assert!(archived.iter().all(|m| m.path.exists()));
    // The months left ClickHouse, the rest stayed.
    assert_eq!(store.months().unwrap(), [october]);
    assert_eq!(store.event_count().unwrap(), 900 - in_archive);
    // No scratch file is left beside the archive.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains("duckdb"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The files read back through the embedded ledger's archive, with the same costs.
    let ledger = dir.path().join("reader.duckdb");
    let mut reader = DuckStore::open(&ledger).unwrap();
    reader.include_archive(dir.path()).unwrap();
    let read_back = reader.query(&before_october).unwrap();
    assert_eq!(read_back.rows, expected.rows);
    // Archiving again finds nothing before the cutoff.
    assert!(
        store
            .archive_before(october, dir.path())
            .unwrap()
            .is_empty()
    );
}
