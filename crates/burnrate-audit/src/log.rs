//! Appending to the trail: segment files that rotate by size.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::collections::HashSet;

use chrono::{Datelike, Utc};
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
    /// Another process holds the trail open for writing.
    #[error(
        "{path} is in use by another burnrate process (a running gateway); stop it, or ask the \
         gateway through its admin API"
    )]
    Locked {
        /// The trail's folder.
        path: String,
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

/// The error for an I/O failure on `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The error for a file at `path` that does not hold what it should.
pub(crate) fn corrupt(path: &Path, reason: impl ToString) -> AuditError {
    AuditError::Corrupt {
        path: path.display().to_string(),
        line: 0,
        reason: reason.to_string(),
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

/// Held shared while the trail's segments are read (verify, exports) and exclusively while
/// retention moves them, across processes: a reader never sees a segment vanish under it.
/// Readers that cannot create the lock file (a read-only copy) read without it.
pub struct SegmentsLock {
    _file: Option<File>,
}

impl SegmentsLock {
    /// A reader's share of the lock (waits while retention runs).
    pub fn read(dir: &Path) -> SegmentsLock {
        let file = lock_file(dir)
            .ok()
            .filter(|file| file.lock_shared().is_ok());
        SegmentsLock { _file: file }
    }

    /// The lock alone, for moving segments (waits for readers to finish).
    pub fn write(dir: &Path) -> Result<SegmentsLock, AuditError> {
        let path = dir.join(".segments.lock");
        let file = lock_file(dir).map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(SegmentsLock { _file: Some(file) })
    }
}

fn lock_file(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".segments.lock"))
}

/// The number in a segment file's name.
fn segment_index(path: &Path) -> u32 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("segment-"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Calls `each` with every complete line of a segment (1-based number, without newline),
/// up to the first incomplete one.
pub fn for_each_line(
    path: &Path,
    mut each: impl FnMut(u64, &str) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let file = File::open(path).map_err(io(path))?;
    let mut reader = BufReader::new(file);
    let mut text = String::new();
    let mut number = 0;
    loop {
        text.clear();
        if reader.read_line(&mut text).map_err(io(path))? == 0 {
            return Ok(());
        }
        number += 1;
        // A line without its newline is being written (or was cut by a crash): the
        // records end before it.
        let Some(line) = text.strip_suffix('\n') else {
            return Ok(());
        };
        each(number, line)?;
    }
}

/// The first record of a segment, if it has one.
pub fn first_record(path: &Path) -> Result<Option<AuditRecord>, AuditError> {
    if !path.exists() {
        return Ok(None);
    }
    let file = File::open(path).map_err(io(path))?;
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(io(path))?;
    Ok(line
        .strip_suffix('\n')
        .and_then(split_line)
        .and_then(|(json, _)| serde_json::from_str(json).ok()))
}

fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("segment-{index:06}.log"))
}

/// Splits a line (without its newline) into its JSON and its hash.
pub fn split_line(line: &str) -> Option<(&str, &str)> {
    line.rsplit_once('\t')
}

/// Where the hot trail continues from after older segments moved to the archive: the last
/// archived record (written by retention, read by `open` and `verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Anchor {
    /// The last archived record's sequence number.
    pub last_seq: u64,
    /// Its hash.
    pub last_hash: String,
}

/// The anchor file's name in the trail's folder.
const ANCHOR: &str = "anchor.json";

impl Anchor {
    /// The anchor of `dir`, if older segments were archived.
    pub fn load(dir: &Path) -> Result<Option<Anchor>, AuditError> {
        let path = dir.join(ANCHOR);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| AuditError::Corrupt {
                    path: path.display().to_string(),
                    line: 1,
                    reason: e.to_string(),
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io(&path)(error)),
        }
    }

    /// Writes the anchor of `dir` (atomically: a crash leaves the old one or the new one).
    pub fn save(&self, dir: &Path) -> Result<(), AuditError> {
        let path = dir.join(ANCHOR);
        let temporary = dir.join(format!("{ANCHOR}.tmp"));
        let text = serde_json::to_string(self).map_err(|e| AuditError::Corrupt {
            path: path.display().to_string(),
            line: 1,
            reason: e.to_string(),
        })?;
        let mut file = File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(text.as_bytes()).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))
    }

    /// Where a chain with no archive starts.
    pub fn genesis() -> Anchor {
        Anchor {
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
        }
    }
}

/// The (year, month) a record belongs to, for rotating segments at month ends.
fn month_of(record: &AuditRecord) -> Option<(i32, u32)> {
    record.at.map(|at| (at.year(), at.month()))
}

/// The trail, open for appending. One process at a time: `open` takes an exclusive lock on
/// the folder, held until the log is dropped.
pub struct AuditLog {
    dir: PathBuf,
    segment_bytes: u64,
    index: u32,
    file: File,
    size: u64,
    /// The month of the active segment's records: a segment holds one month, so retention
    /// can archive whole segments.
    month: Option<(i32, u32)>,
    seq: u64,
    last_hash: String,
    _lock: File,
}

impl AuditLog {
    /// Opens the trail in `dir` (creating it), continuing the chain of its last segment.
    /// A last line cut short by a crash is dropped: it was never acknowledged. A new
    /// segment starts when one would pass `segment_bytes`, and at each new month.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if let Err(error) = lock.try_lock() {
            return Err(match error {
                std::fs::TryLockError::WouldBlock => AuditError::Locked {
                    path: dir.display().to_string(),
                },
                std::fs::TryLockError::Error(source) => io(&lock_path)(source),
            });
        }
        let existing = segments(dir)?;
        let index = existing.last().map_or(1, |last| segment_index(last));
        // The chain goes on from the last segment that holds a record (a crash can leave an
        // empty one after a rotation), else from the archive's anchor.
        let mut last = None;
        for path in existing.iter().rev() {
            if let Some(found) = tail(path)? {
                last = Some(found);
                break;
            }
        }
        let (seq, last_hash) = match last {
            Some(found) => found,
            None => {
                let anchor = Anchor::load(dir)?.unwrap_or_else(Anchor::genesis);
                (anchor.last_seq, anchor.last_hash)
            }
        };
        let path = segment_path(dir, index);
        let month = first_record(&path)?.as_ref().and_then(month_of);
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
            month,
            seq,
            last_hash,
            _lock: lock,
        })
    }

    /// Appends a record (its `seq` and `prev` are set here, and `at` when it has none);
    /// returns its sequence number and hash. The line reaches the file in one write.
    pub fn append(&mut self, mut record: AuditRecord) -> Result<(u64, String), AuditError> {
        record.seq = self.seq + 1;
        record.prev.clone_from(&self.last_hash);
        record.at.get_or_insert_with(Utc::now);
        let json = serde_json::to_string(&record).map_err(|e| AuditError::Corrupt {
            path: self.dir.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        let hash = sha256_hex(json.as_bytes());
        let line = format!("{json}\t{hash}\n");
        let month = month_of(&record);
        let new_month = self.month.is_some() && month != self.month;
        if self.size > 0 && (new_month || self.size + line.len() as u64 > self.segment_bytes) {
            self.rotate()?;
        }
        let path = segment_path(&self.dir, self.index);
        if let Err(error) = self.file.write_all(line.as_bytes()) {
            // A short write (a full disk) leaves part of a line: cut it, so the file holds
            // whole records and the next append starts clean.
            let _ = self.file.set_len(self.size);
            return Err(io(&path)(error));
        }
        if self.size == 0 {
            self.month = month;
        }
        self.size += line.len() as u64;
        self.seq = record.seq;
        self.last_hash.clone_from(&hash);
        Ok((record.seq, hash))
    }

    /// The event ids of the records in the last two segments: what a crash between the
    /// trail and the ledger may have written already.
    pub fn recent_event_ids(&self) -> Result<HashSet<String>, AuditError> {
        let mut ids = HashSet::new();
        let all = segments(&self.dir)?;
        for path in all.iter().rev().take(2) {
            for_each_line(path, |_, line| {
                if let Some(id) = split_line(line)
                    .and_then(|(json, _)| serde_json::from_str::<AuditRecord>(json).ok())
                    .and_then(|record| record.event_id)
                {
                    ids.insert(id);
                }
                Ok(())
            })?;
        }
        Ok(ids)
    }

    /// The folder of the trail.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes what was appended to disk.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        let path = segment_path(&self.dir, self.index);
        self.file.sync_data().map_err(io(&path))
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        self.index += 1;
        self.month = None;
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
            let mut first = None;
            let mut last = None;
            for_each_line(&path, |number, line| {
                let (seq, hash) = parse_head(line).ok_or_else(|| AuditError::Corrupt {
                    path: path.display().to_string(),
                    line: number,
                    reason: "not an audit record".into(),
                })?;
                first.get_or_insert(seq);
                last = Some((seq, hash));
                Ok(())
            })?;
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
