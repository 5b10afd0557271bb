//! Checking the whole chain, and naming the first record that is not what was written.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Serialize;

use crate::log::{Anchor, AuditError, SegmentsLock, segments, sha256_hex, split_line};
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

/// Follows the chain record by record: each line's hash matches its bytes, sequence numbers
/// run without gaps, each record points at the hash of the one before. Used by `verify`, by
/// exports and by retention (checking an archive before the segments go).
#[derive(Debug, Clone)]
pub struct Chain {
    next_seq: u64,
    prev: String,
}

impl Chain {
    /// A chain that continues after `anchor` (the genesis anchor for a whole trail).
    pub fn after(anchor: &Anchor) -> Chain {
        Chain {
            next_seq: anchor.last_seq + 1,
            prev: anchor.last_hash.clone(),
        }
    }

    /// The sequence number the next record must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last checked record's hash.
    pub fn last_hash(&self) -> &str {
        &self.prev
    }

    /// Checks the next line (`JSON<TAB>SHA256`, no newline) and returns its record, or why
    /// it is not the record that belongs here.
    pub fn check(&mut self, line: &str) -> Result<AuditRecord, String> {
        let expected = self.next_seq;
        let (json, hash) =
            split_line(line).ok_or_else(|| "altered: not a record and its hash".to_string())?;
        if sha256_hex(json.as_bytes()) != hash {
            return Err(format!(
                "record {expected} was altered: its hash does not match its bytes"
            ));
        }
        let record: AuditRecord = serde_json::from_str(json)
            .map_err(|e| format!("altered: the record does not parse ({e})"))?;
        if record.seq > expected {
            return Err(format!(
                "found record {} where record {expected} belongs: record {expected} was removed, or records were reordered",
                record.seq
            ));
        }
        if record.seq < expected {
            return Err(format!(
                "found record {} where record {expected} belongs: records were reordered or repeated",
                record.seq
            ));
        }
        if record.prev != self.prev {
            return Err(format!(
                "record {expected} does not point at the hash of record {}: the chain was rewritten",
                expected - 1
            ));
        }
        hash.clone_into(&mut self.prev);
        self.next_seq += 1;
        Ok(record)
    }
}

/// Verifies every segment in `dir`, in order, from the archive's anchor (or the start).
pub fn verify(dir: &Path) -> Result<Verified, Break> {
    let unreadable = |error: AuditError| Break {
        segment: dir.display().to_string(),
        line: 0,
        expected_seq: 1,
        reason: error.to_string(),
    };
    let _reading = SegmentsLock::read(dir);
    let paths = segments(dir).map_err(unreadable)?;
    let anchor = Anchor::load(dir)
        .map_err(unreadable)?
        .unwrap_or_else(Anchor::genesis);
    let mut chain = Chain::after(&anchor);
    for path in &paths {
        let name = path.display().to_string();
        let broken = |line: u64, expected: u64, reason: String| Break {
            segment: name.clone(),
            line,
            expected_seq: expected,
            reason,
        };
        let file = File::open(path).map_err(|e| broken(0, chain.next_seq(), e.to_string()))?;
        let mut reader = BufReader::new(file);
        let mut number = 0u64;
        let mut text = String::new();
        loop {
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|e| broken(number + 1, chain.next_seq(), format!("unreadable: {e}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            let Some(line) = text.strip_suffix('\n') else {
                return Err(broken(
                    number,
                    chain.next_seq(),
                    "the last record is cut short".into(),
                ));
            };
            // Lines a retention run archived but could not delete yet.
            if crate::export::leftover(line, anchor.last_seq) {
                continue;
            }
            let expected = chain.next_seq();
            chain
                .check(line)
                .map_err(|reason| broken(number, expected, reason))?;
        }
    }
    Ok(Verified {
        segments: paths.len(),
        records: chain.next_seq() - 1 - anchor.last_seq,
        last_hash: chain.last_hash().to_owned(),
    })
}
