//! Retention of the trail: a segment per month, whole months moved to Parquet and checked
//! against the chain before their segments go, the chain verifying across archive and
//! segments afterwards, and expiry that leaves what is kept verifiable.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use burnrate_audit::export::{self, Filter, Format};
use burnrate_audit::log::segments;
use burnrate_audit::{AuditError, AuditLog, AuditRecord, Kind, archive, verify};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// Five records on the 3rd..7th of each of 18 months from May 2025.
fn eighteen_months(dir: &Path) -> u64 {
    let mut log = AuditLog::open(dir, 1 << 20).unwrap();
    let first = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
    let mut count = 0;
    for month in 0..18 {
        let start = first.checked_add_months(Months::new(month)).unwrap();
        for day in 3..8 {
            let at: DateTime<Utc> = start
                .with_day(day)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc();
            log.append(AuditRecord {
                at: Some(at),
                kind: Some(Kind::Call),
                start: Some(at),
                tenant_id: Some(format!("t-{}", day % 2)),
                input_tokens: Some(u64::from(day) * 100),
                ..AuditRecord::default()
            })
            .unwrap();
            count += 1;
        }
    }
    log.sync().unwrap();
    count
}

#[test]
fn a_segment_holds_one_month() {
    let dir = tempfile::tempdir().unwrap();
    eighteen_months(dir.path());
    assert_eq!(segments(dir.path()).unwrap().len(), 18);
    verify(dir.path()).unwrap();
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let _first = AuditLog::open(dir.path(), 1 << 20).unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), 1 << 20),
        Err(AuditError::Locked { .. })
    ));
}

#[test]
fn old_months_move_to_parquet_and_the_chain_holds_across_archive_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit");
    let root = dir.path().join("archive");
    let total = eighteen_months(&trail);
    let cutoff = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
    let moved = archive::archive_before(&trail, &root, cutoff).unwrap();
    assert_eq!(moved.len(), 6);
    assert_eq!(moved.iter().map(|m| m.records).sum::<u64>(), 30);
    assert_eq!(moved[0].first_seq, 1);
    assert_eq!(moved[5].last_seq, 30);
    assert_eq!(segments(&trail).unwrap().len(), 12, "12 hot months stay");
    assert_eq!(archive::archived_files(&root).unwrap().len(), 6);

    // The hot chain verifies from the anchor; with the archive, from the first record.
    let hot = verify(&trail).unwrap();
    assert_eq!(hot.records, total - 30);
    let mut seen = 0;
    let check = export::walk(&trail, Some(&root), |_, _| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(seen, total);

    // The chain goes on after a restart, and a second run finds nothing more to move.
    let mut log = AuditLog::open(&trail, 1 << 20).unwrap();
    let (seq, _) = log.append(AuditRecord::default()).unwrap();
    assert_eq!(seq, total + 1);
    drop(log);
    verify(&trail).unwrap();
    assert!(
        archive::archive_before(&trail, &root, cutoff)
            .unwrap()
            .is_empty()
    );

    // An export with the archive holds every record of the tenant, archived ones first.
    let out = dir.path().join("t0.jsonl");
    let filter = Filter {
        tenant: Some("t-0".into()),
        ..Filter::default()
    };
    let manifest = export::export(&trail, Some(&root), &filter, Format::Jsonl, &out).unwrap();
    assert!(manifest.chain.ok);
    assert_eq!(manifest.records, 18 * 2, "days 4 and 6 of each month");
    assert_eq!(manifest.first_seq, Some(2));

    // Expiry deletes the oldest months; what is left still verifies.
    let expired = archive::expire(&root, NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()).unwrap();
    assert_eq!(expired.len(), 2);
    let check = export::walk(&trail, Some(&root), |_, _| Ok(())).unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.records_checked, total + 1 - 10);
}

#[test]
fn an_altered_record_stops_the_archive_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit");
    let root = dir.path().join("archive");
    eighteen_months(&trail);
    let second = segments(&trail).unwrap()[1].clone();
    let text = std::fs::read_to_string(&second).unwrap();
    std::fs::write(
        &second,
        text.replacen("\"input_tokens\":300", "\"input_tokens\":900", 1),
    )
    .unwrap();
    let error =
        archive::archive_before(&trail, &root, NaiveDate::from_ymd_opt(2025, 11, 1).unwrap())
            .unwrap_err();
    assert!(
        error.to_string().contains("record 6 was altered"),
        "{error}"
    );
    assert_eq!(
        segments(&trail).unwrap().len(),
        17,
        "only the checked first month moved"
    );
    assert!(second.exists());
    let broken = verify(&trail).unwrap_err();
    assert_eq!(broken.expected_seq, 6);
}

#[test]
fn a_retention_run_cut_between_anchor_and_delete_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit");
    let root = dir.path().join("archive");
    let total = eighteen_months(&trail);
    let first = segments(&trail).unwrap()[0].clone();
    let kept = std::fs::read(&first).unwrap();
    archive::archive_before(&trail, &root, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()).unwrap();
    // Put the archived segment back, as if the process died before deleting it.
    std::fs::write(&first, kept).unwrap();
    assert_eq!(verify(&trail).unwrap().records, total - 5);
    let check = export::walk(&trail, Some(&root), |_, _| Ok(())).unwrap();
    assert!(check.ok, "{check:?}");
}
