//! Appending to the trail: segment files that rotate by size.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::record::AuditRecord;

/// The hash a first record points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What can go wrong with the trail's files.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what the trail writes.
    #[error("{path}, line {line}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A segment's first and last record, for anchoring the chain elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentHead {
    /// The segment's file name.
    pub segment: String,
    /// Its first record's sequence number.
    pub first_seq: u64,
    /// Its last record's sequence number.
    pub last_seq: u64,
    /// Its last record's hash: anchoring it fixes everything up to it.
    pub last_hash: String,
}

/// The segment files of `dir`, in order.
pub fn segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("segment-") && name.ends_with(".log") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("segment-{index:06}.log"))
}

/// Splits a line (without its newline) into its JSON and its hash.
pub fn split_line(line: &str) -> Option<(&str, &str)> {
    line.rsplit_once('\t')
}

/// The trail, open for appending.
pub struct AuditLog {
    dir: PathBuf,
    segment_bytes: u64,
    index: u32,
    file: File,
    size: u64,
    seq: u64,
    last_hash: String,
}

impl AuditLog {
    /// Opens the trail in `dir` (creating it), continuing the chain of its last segment.
    /// A last line cut short by a crash is dropped: it was never acknowledged. A new
    /// segment starts when one would pass `segment_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let existing = segments(dir)?;
        let (index, seq, last_hash) = match existing.last() {
            None => (1, 0, GENESIS.to_owned()),
            Some(last) => {
                let index = last
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.strip_prefix("segment-"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                let (seq, hash) = tail(last)?.unwrap_or((0, GENESIS.to_owned()));
                // An empty last segment continues the chain of the one before it.
                match (seq, existing.len()) {
                    (0, n) if n > 1 => {
                        let before = tail(&existing[n - 2])?.unwrap_or((0, GENESIS.to_owned()));
                        (index, before.0, before.1)
                    }
                    _ => (index, seq, hash),
                }
            }
        };
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let size = file.metadata().map_err(io(&path))?.len();
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            index,
            file,
            size,
            seq,
            last_hash,
        })
    }

    /// Appends a record (its `seq` and `prev` are set here); returns its sequence number and
    /// hash. The line reaches the file in one write.
    pub fn append(&mut self, mut record: AuditRecord) -> Result<(u64, String), AuditError> {
        record.seq = self.seq + 1;
        record.prev.clone_from(&self.last_hash);
        let json = serde_json::to_string(&record).map_err(|e| AuditError::Corrupt {
            path: self.dir.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        let hash = sha256_hex(json.as_bytes());
        let line = format!("{json}\t{hash}\n");
        if self.size > 0 && self.size + line.len() as u64 > self.segment_bytes {
            self.rotate()?;
        }
        let path = segment_path(&self.dir, self.index);
        self.file.write_all(line.as_bytes()).map_err(io(&path))?;
        self.size += line.len() as u64;
        self.seq = record.seq;
        self.last_hash.clone_from(&hash);
        Ok((record.seq, hash))
    }

    /// Flushes what was appended to disk.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        let path = segment_path(&self.dir, self.index);
        self.file.sync_data().map_err(io(&path))
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        self.index += 1;
        let path = segment_path(&self.dir, self.index);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        self.size = 0;
        Ok(())
    }

    /// The head of every segment in `dir`.
    pub fn heads(dir: &Path) -> Result<Vec<SegmentHead>, AuditError> {
        let mut heads = Vec::new();
        for path in segments(dir)? {
            let file = File::open(&path).map_err(io(&path))?;
            let mut first = None;
            let mut last = None;
            for (number, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(io(&path))?;
                let (seq, hash) = parse_head(&line).ok_or_else(|| AuditError::Corrupt {
                    path: path.display().to_string(),
                    line: number as u64 + 1,
                    reason: "not an audit record".into(),
                })?;
                first.get_or_insert(seq);
                last = Some((seq, hash));
            }
            if let (Some(first_seq), Some((last_seq, last_hash))) = (first, last) {
                heads.push(SegmentHead {
                    segment: path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_owned(),
                    first_seq,
                    last_seq,
                    last_hash,
                });
            }
        }
        Ok(heads)
    }
}

fn parse_head(line: &str) -> Option<(u64, String)> {
    let (json, hash) = split_line(line)?;
    let record: AuditRecord = serde_json::from_str(json).ok()?;
    Some((record.seq, hash.to_owned()))
}

/// The last complete record of a segment (truncating a line a crash cut short).
fn tail(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let mut reader = BufReader::new(&mut file);
    let mut last = None;
    let mut complete = 0u64;
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(io(path))?;
        if read == 0 {
            break;
        }
        number += 1;
        if !line.ends_with('\n') {
            break;
        }
        let head = parse_head(line.trim_end_matches('\n')).ok_or_else(|| AuditError::Corrupt {
            path: path.display().to_string(),
            line: number,
            reason: "not an audit record; run `burnrate audit verify`".into(),
        })?;
        last = Some(head);
        complete += read as u64;
    }
    drop(reader);
    if file.metadata().map_err(io(path))?.len() > complete {
        file.set_len(complete).map_err(io(path))?;
        file.seek(SeekFrom::End(0)).map_err(io(path))?;
    }
    Ok(last)
}
