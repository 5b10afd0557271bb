//! The ClickHouse ledger against a real `clickhouse-server` (Debian's 18.16 in CI), started
//! on free loopback ports in a temporary folder. Without the server these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;

use burnrate_model::UsageEvent;
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
