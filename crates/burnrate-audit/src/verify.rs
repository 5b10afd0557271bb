//! Checking the whole chain, and naming the first record that is not what was written.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Serialize;

use crate::log::{GENESIS, segments, sha256_hex, split_line};
use crate::record::AuditRecord;

/// A chain that holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Segment files read.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// The last record's hash.
    pub last_hash: String,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{segment}, line {line}: {reason}")]
pub struct Break {
    /// The segment file.
    pub segment: String,
    /// 1-based line in it.
    pub line: u64,
    /// The record that should be there.
    pub expected_seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// Verifies every segment in `dir`, in order: each line's hash matches its bytes, sequence
/// numbers run without gaps, each record points at the hash of the one before.
pub fn verify(dir: &Path) -> Result<Verified, Break> {
    let paths = segments(dir).map_err(|error| Break {
        segment: dir.display().to_string(),
        line: 0,
        expected_seq: 1,
        reason: error.to_string(),
    })?;
    let mut expected = 1u64;
    let mut prev = GENESIS.to_owned();
    for path in &paths {
        let name = path.display().to_string();
        let broken = |line: u64, expected: u64, reason: String| Break {
            segment: name.clone(),
            line,
            expected_seq: expected,
            reason,
        };
        let file = File::open(path).map_err(|e| broken(0, expected, e.to_string()))?;
        let mut reader = BufReader::new(file);
        let mut number = 0u64;
        let mut text = String::new();
        loop {
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|e| broken(number + 1, expected, format!("unreadable: {e}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            let Some(line) = text.strip_suffix('\n') else {
                return Err(broken(
                    number,
                    expected,
                    "the last record is cut short".into(),
                ));
            };
            let Some((json, hash)) = split_line(line) else {
                return Err(broken(
                    number,
                    expected,
                    "altered: not a record and its hash".into(),
                ));
            };
            if sha256_hex(json.as_bytes()) != hash {
                return Err(broken(
                    number,
                    expected,
                    format!("record {expected} was altered: its hash does not match its bytes"),
                ));
            }
            let record: AuditRecord = serde_json::from_str(json).map_err(|e| {
                broken(
                    number,
                    expected,
                    format!("altered: the record does not parse ({e})"),
                )
            })?;
            if record.seq > expected {
                return Err(broken(
                    number,
                    expected,
                    format!(
                        "found record {} where record {expected} belongs: record {expected} was removed, or records were reordered",
                        record.seq
                    ),
                ));
            }
            if record.seq < expected {
                return Err(broken(
                    number,
                    expected,
                    format!(
                        "found record {} where record {expected} belongs: records were reordered or repeated",
                        record.seq
                    ),
                ));
            }
            if record.prev != prev {
                return Err(broken(
                    number,
                    expected,
                    format!(
                        "record {expected} does not point at the hash of record {}: the chain was rewritten",
                        expected - 1
                    ),
                ));
            }
            prev = hash.to_owned();
            expected += 1;
        }
    }
    Ok(Verified {
        segments: paths.len(),
        records: expected - 1,
        last_hash: prev,
    })
}
