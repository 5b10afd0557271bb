//! The chain holds across segments and restarts, and breaks, at the right spot, when a byte
//! is flipped, a record dropped or two records swapped.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

use burnrate_audit::{AuditLog, AuditRecord, Kind, verify};

fn record(n: u64) -> AuditRecord {
    AuditRecord {
        kind: Some(Kind::Call),
        start: Some(format!("2026-11-23T10:00:{:02}Z", n % 60).parse().unwrap()),
        tenant_id: Some(format!("tenant-{}", n % 3)),
        user_id: Some("u1".into()),
        model: Some("gpt-4.1".into()),
        input_tokens: Some(1_000 + n),
        output_tokens: Some(100),
        status: Some("ok".into()),
        ..AuditRecord::default()
    }
}

/// A trail of `count` records in segments of about 4 KB.
fn trail(dir: &Path, count: u64) {
    let mut log = AuditLog::open(dir, 4_096).unwrap();
    for n in 1..=count {
        assert_eq!(log.append(record(n)).unwrap().0, n);
    }
    log.sync().unwrap();
}

fn segment(dir: &Path, index: usize) -> PathBuf {
    burnrate_audit::log::segments(dir).unwrap()[index].clone()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_untouched_trail_verifies_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 30);
    // Reopened, it continues the chain.
    let mut log = AuditLog::open(dir.path(), 4_096).unwrap();
    assert_eq!(log.append(record(31)).unwrap().0, 31);
    drop(log);
    let verified = verify(dir.path()).unwrap();
    assert_eq!(verified.records, 31);
    assert!(verified.segments > 1, "{verified:?}");
    let heads = AuditLog::heads(dir.path()).unwrap();
    assert_eq!(heads.len(), verified.segments);
    assert_eq!(heads.last().unwrap().last_hash, verified.last_hash);
    assert_eq!(heads.last().unwrap().last_seq, 31);
    assert!(
        heads
            .windows(2)
            .all(|w| w[1].first_seq == w[0].last_seq + 1)
    );
}

#[test]
fn a_flipped_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 30);
    let second = segment(dir.path(), 1);
    let mut lines = lines(&second);
    // 1,001 input tokens become 9,001 in the segment's second record.
    let original = lines[1].clone();
    lines[1] = original.replacen("\"input_tokens\":10", "\"input_tokens\":90", 1);
    assert_ne!(lines[1], original);
    write_lines(&second, &lines);
    let broken = verify(dir.path()).unwrap_err();
    assert_eq!(broken.segment, second.display().to_string());
    assert_eq!(broken.line, 2);
    assert!(broken.reason.contains("was altered"), "{broken}");
}

#[test]
fn a_dropped_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 30);
    let first = segment(dir.path(), 0);
    let mut lines = lines(&first);
    lines.remove(2);
    write_lines(&first, &lines);
    let broken = verify(dir.path()).unwrap_err();
    assert_eq!((broken.line, broken.expected_seq), (3, 3), "{broken}");
    assert!(broken.reason.contains("record 3 was removed"), "{broken}");
}

#[test]
fn swapped_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 30);
    let first = segment(dir.path(), 0);
    let mut lines = lines(&first);
    lines.swap(1, 2);
    write_lines(&first, &lines);
    let broken = verify(dir.path()).unwrap_err();
    assert_eq!((broken.line, broken.expected_seq), (2, 2), "{broken}");
    assert!(broken.reason.contains("reordered"), "{broken}");
}

#[test]
fn a_record_cut_short_by_a_crash_is_dropped_on_open_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 5);
    let last = burnrate_audit::log::segments(dir.path())
        .unwrap()
        .pop()
        .unwrap();
    let mut text = std::fs::read_to_string(&last).unwrap();
    text.push_str("{\"seq\":6,\"prev\":\"ab");
    std::fs::write(&last, &text).unwrap();
    assert!(verify(dir.path()).unwrap_err().reason.contains("cut short"));
    let mut log = AuditLog::open(dir.path(), 4_096).unwrap();
    assert_eq!(log.append(record(6)).unwrap().0, 6);
    drop(log);
    assert_eq!(verify(dir.path()).unwrap().records, 6);
}

proptest::proptest! {
    /// Any line, however mangled, is refused with a reason and never panics the checker;
    /// a line built the way the trail writes it is taken.
    #[test]
    fn the_chain_checker_takes_any_line(line in ".{0,300}", tab in proptest::bool::ANY) {
        let line = if tab { format!("{line}\t{}", burnrate_audit::log::sha256_hex(line.as_bytes())) } else { line };
        let mut chain = burnrate_audit::Chain::after(&burnrate_audit::Anchor::genesis());
        if let Ok(record) = chain.check(&line) {
            proptest::prop_assert_eq!(record.seq, 1);
        }
    }
}
