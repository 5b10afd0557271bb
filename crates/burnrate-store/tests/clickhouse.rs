//! The ClickHouse ledger against a real `clickhouse-server` (Debian's 18.16 in CI), started
//! on free loopback ports in a temporary folder. Without the server these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use burnrate_model::UsageEvent;
use burnrate_store::clickhouse::{ClickHouse, MIGRATIONS};

/// A ClickHouse server for one test, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (http, tcp) = (free_port(), free_port());
    let root = dir.path().display();
    std::fs::write(
        dir.path().join("users.xml"),
        "<?xml version=\"1.0\"?><yandex><profiles><default></default></profiles>\
         <users><default><password></password><networks><ip>127.0.0.1</ip></networks>\
         <profile>default</profile><quota>default</quota></default></users>\
         <quotas><default></default></quotas></yandex>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.xml"),
        format!(
            "<?xml version=\"1.0\"?><yandex><logger><level>warning</level><console>1</console>\
             </logger><http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>\
             <listen_host>127.0.0.1</listen_host><path>{root}/data/</path>\
             <tmp_path>{root}/tmp/</tmp_path><user_files_path>{root}/files/</user_files_path>\
             <users_config>{root}/users.xml</users_config><default_profile>default\
             </default_profile><default_database>default</default_database>\
             <mark_cache_size>268435456</mark_cache_size></yandex>"
        ),
    )
    .unwrap();
    let child = Command::new("clickhouse-server")
        .arg(format!("--config-file={root}/config.xml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("clickhouse-server runs (apt-get install clickhouse-server; .ci/run does)");
    let server = Server {
        child,
        url: format!("clickhouse://127.0.0.1:{http}/burnrate"),
        _dir: dir,
    };
    // Ready once it answers; a server that never does fails the test after 600 tries.
    let ping = format!("http://127.0.0.1:{http}/ping");
    let ready = (0..600).any(|_| {
        let up = reqwest::blocking::get(&ping).is_ok();
        if !up {
            std::thread::sleep(Duration::from_millis(100));
        }
        up
    });
    assert!(ready, "clickhouse-server did not answer on port {http}");
    server
}

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
