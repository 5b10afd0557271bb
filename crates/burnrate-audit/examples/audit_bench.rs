//! Size and speed of the audit trail: bytes per record without content, the append rate
//! (synced every 1,000 records, as the ledger thread syncs per flush), the verify rate, and
//! the export rate of one tenant's records and of all of them, as JSON lines and Parquet.
//!
//! `cargo run --release --example audit_bench -p burnrate-audit -- [RECORDS] [WORKDIR]`
//! (default 10,000,000 records in a temporary folder; about 4.5 GB of segments).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark program")]

use std::path::Path;
use std::time::Instant;

use burnrate_audit::export::{self, Filter, Format};
use burnrate_audit::{AuditLog, AuditRecord, Kind, verify};
use chrono::{Duration, TimeZone, Utc};

/// A call record like the gateway writes: every attribution field set, ids as UUIDs.
fn record(n: u64) -> AuditRecord {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        + Duration::milliseconds(i64::try_from(n).unwrap() * 200);
    AuditRecord {
        kind: Some(Kind::Call),
        start: Some(start),
        end: Some(start + Duration::milliseconds(1_840)),
        tenant_id: Some(format!("tenant-{:03}", n % 200)),
        user_id: Some(format!("user-{:05}", n % 20_000)),
        feature: Some(
            ["inbox-triage", "search", "summarise", "support-bot"][(n % 4) as usize].into(),
        ),
        agent_run_id: Some(format!("run-{:08x}", n / 12)),
        deployment: Some("prod-eu-1".into()),
        burnrate_version: Some(env!("CARGO_PKG_VERSION").into()),
        config_hash: Some(
            "9f2c4e1ab0d35c7788e6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6".into(),
        ),
        prompt_version: Some("triage-v14".into()),
        provider: Some("openai".into()),
        requested_model: Some("gpt-4.1".into()),
        model: Some("gpt-4.1-2025-04-14".into()),
        input_tokens: Some(4_000 + n % 9_000),
        cache_read_tokens: Some(2_048),
        cache_write_tokens: Some(0),
        output_tokens: Some(100 + n % 700),
        reasoning_tokens: Some(0),
        service_tier: Some("default".into()),
        status: Some("ok".into()),
        event_id: Some(uuid_like(n)),
        ..AuditRecord::default()
    }
}

fn uuid_like(n: u64) -> String {
    let hex = format!(
        "{:032x}",
        u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
    );
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

fn rate(count: u64, seconds: f64) -> String {
    format!("{:.0} records/s", count as f64 / seconds)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(10_000_000, |n| n.parse().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let work = args
        .next()
        .map_or_else(|| scratch.path().to_path_buf(), Into::into);
    let trail = work.join("audit");
    let _ = std::fs::remove_dir_all(&trail);

    let started = Instant::now();
    let mut log = AuditLog::open(&trail, 64 << 20).unwrap();
    for n in 0..records {
        log.append(record(n)).unwrap();
        if n % 1_000 == 999 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    drop(log);
    let append = started.elapsed().as_secs_f64();
    let bytes = size_of(&trail);
    println!("records: {records}");
    println!(
        "bytes per record (no content): {:.0} ({bytes} bytes in segments)",
        bytes as f64 / records as f64
    );
    println!("append (sync per 1,000): {}", rate(records, append));

    let started = Instant::now();
    let verified = verify(&trail).unwrap();
    assert_eq!(verified.records, records);
    println!("verify: {}", rate(records, started.elapsed().as_secs_f64()));

    let tenant = Filter {
        tenant: Some("tenant-007".into()),
        ..Filter::default()
    };
    for (name, filter) in [
        ("one tenant of 200", &tenant),
        ("everything", &Filter::default()),
    ] {
        for format in [Format::Jsonl, Format::Parquet] {
            let out = work.join(format!("export.{format:?}"));
            let started = Instant::now();
            let manifest = export::export(&trail, None, filter, format, &out).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            assert!(manifest.chain.ok);
            println!(
                "export {name} as {format:?}: {} exported, {} read ({:.1} s, {} MB)",
                manifest.records,
                rate(records, seconds),
                seconds,
                std::fs::metadata(&out).unwrap().len() >> 20
            );
            std::fs::remove_file(&out).unwrap();
            std::fs::remove_file(export::manifest_path(&out)).unwrap();
        }
    }
}
