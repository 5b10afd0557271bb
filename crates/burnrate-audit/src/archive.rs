//! Retention for the trail: whole segments of months past the hot window move to one
//! Parquet file per month (`<archive>/audit/YYYY-MM.<first seq>.parquet`, zstd), checked against the
//! chain before the segments are deleted. The archive keeps each record's exact line and
//! hash, so the archived chain verifies as the segments did; the trail's anchor file records
//! where the hot chain continues.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::export::sql_path;
use crate::log::{
    Anchor, AuditError, SegmentsLock, corrupt, first_record, for_each_line, io, segments,
    split_line,
};
use crate::record::AuditRecord;
use crate::verify::Chain;

/// One month moved to the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedMonth {
    /// The month's first day.
    pub month: NaiveDate,
    /// The Parquet file written.
    pub file: PathBuf,
    /// Records in it.
    pub records: u64,
    /// Its first record.
    pub first_seq: u64,
    /// Its last record.
    pub last_seq: u64,
    /// Segment files deleted once the archive checked out.
    pub segments: Vec<String>,
}

/// The folder of archived audit months under an archive root.
pub fn audit_folder(archive_root: &Path) -> PathBuf {
    archive_root.join("audit")
}

/// The month of a segment (from its first record), or `None` for an empty one.
fn segment_month(path: &Path) -> Result<Option<NaiveDate>, AuditError> {
    Ok(first_record(path)?
        .and_then(|record| record.at)
        .and_then(|at| NaiveDate::from_ymd_opt(at.year(), at.month(), 1)))
}

/// Moves every closed segment whose month is before `cutoff` (a month's first day) to the
/// archive under `archive_root`, month by month and in chain order: writes the month's
/// Parquet file, reads it back and checks every record against the chain, then moves the
/// anchor past it and deletes the segments. The active (last) segment is never moved.
pub fn archive_before(
    dir: &Path,
    archive_root: &Path,
    cutoff: NaiveDate,
) -> Result<Vec<ArchivedMonth>, AuditError> {
    let _moving = SegmentsLock::write(dir)?;
    let all = segments(dir)?;
    let closed = all.len().saturating_sub(1);
    // The oldest segments, as long as they are of months before the cutoff.
    let mut months: Vec<(NaiveDate, Vec<PathBuf>)> = Vec::new();
    for path in &all[..closed] {
        let Some(month) = segment_month(path)? else {
            continue;
        };
        if month >= cutoff {
            break;
        }
        match months.last_mut() {
            Some((last, paths)) if *last == month => paths.push(path.clone()),
            _ => months.push((month, vec![path.clone()])),
        }
    }
    let folder = audit_folder(archive_root);
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let mut done = Vec::new();
    for (month, paths) in months {
        done.extend(archive_month(dir, &folder, month, &paths)?);
    }
    Ok(done)
}

fn archive_month(
    dir: &Path,
    folder: &Path,
    month: NaiveDate,
    paths: &[PathBuf],
) -> Result<Option<ArchivedMonth>, AuditError> {
    let anchor = Anchor::load(dir)?.unwrap_or_else(Anchor::genesis);
    let name = month.format("%Y-%m").to_string();
    let staging = folder.join(format!("{name}.staging.jsonl"));
    // Stage the month as JSON lines of (seq, times, tenant, user, line, hash).
    let mut writer = BufWriter::new(File::create(&staging).map_err(io(&staging))?);
    let mut records = 0u64;
    let mut first_seq = None;
    let mut last_seq = 0;
    for path in paths {
        for_each_line(path, |_, line| {
            if crate::export::leftover(line, anchor.last_seq) {
                return Ok(());
            }
            let (json, hash) =
                split_line(line).ok_or_else(|| corrupt(path, "not an audit record"))?;
            let record: AuditRecord = serde_json::from_str(json).map_err(|e| corrupt(path, e))?;
            first_seq.get_or_insert(record.seq);
            last_seq = record.seq;
            records += 1;
            let row = serde_json::json!({
                "seq": record.seq, "at": record.at, "start": record.start,
                "tenant_id": record.tenant_id, "user_id": record.user_id,
                "event_id": record.event_id, "line": json, "hash": hash,
            });
            serde_json::to_writer(&mut writer, &row).map_err(|e| corrupt(&staging, e))?;
            writer.write_all(b"\n").map_err(io(&staging))
        })?;
    }
    writer.flush().map_err(io(&staging))?;
    drop(writer);
    let Some(first) = first_seq else {
        // Segments a cut-short run archived already but did not delete.
        let _ = std::fs::remove_file(&staging);
        for path in paths {
            std::fs::remove_file(path).map_err(io(path))?;
        }
        return Ok(None);
    };
    // Named by its first record: a run cut before the anchor moved writes the same file
    // again, never a second copy.
    let file = folder.join(format!("{name}.{first:012}.parquet"));
    let written = write_parquet(&staging, &file);
    let _ = std::fs::remove_file(&staging);
    written?;
    // Check the archive itself, not what was meant to go in it.
    let mut chain = Chain::after(&anchor);
    let mut checked = 0u64;
    let checked_out = for_each_in(&file, |line| {
        chain.check(line).map_err(|reason| corrupt(&file, reason))?;
        checked += 1;
        Ok(())
    })
    .and_then(|()| {
        if checked == records {
            Ok(())
        } else {
            Err(corrupt(
                &file,
                format!("holds {checked} records where the segments hold {records}"),
            ))
        }
    });
    if let Err(error) = checked_out {
        let _ = std::fs::remove_file(&file);
        return Err(error);
    }
    Anchor {
        last_seq: chain.next_seq() - 1,
        last_hash: chain.last_hash().to_owned(),
    }
    .save(dir)?;
    let mut removed = Vec::new();
    for path in paths {
        std::fs::remove_file(path).map_err(io(path))?;
        removed.push(
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    Ok(Some(ArchivedMonth {
        month,
        file,
        records,
        first_seq: first,
        last_seq,
        segments: removed,
    }))
}

fn write_parquet(from: &Path, to: &Path) -> Result<(), AuditError> {
    let temporary = to.with_extension("parquet.tmp");
    let conn = duckdb::Connection::open_in_memory().map_err(|e| corrupt(to, e))?;
    conn.execute_batch(&format!(
        "COPY (SELECT * FROM read_json({}, format = 'newline_delimited', columns = {{
            'seq': 'UBIGINT', 'at': 'TIMESTAMPTZ', 'start': 'TIMESTAMPTZ',
            'tenant_id': 'VARCHAR', 'user_id': 'VARCHAR', 'event_id': 'VARCHAR',
            'line': 'VARCHAR', 'hash': 'VARCHAR'}}) ORDER BY seq)
         TO {} (FORMAT parquet, COMPRESSION zstd)",
        sql_path(from),
        sql_path(&temporary)
    ))
    .map_err(|e| corrupt(to, format!("writing Parquet: {e}")))?;
    File::open(&temporary)
        .and_then(|file| file.sync_all())
        .map_err(io(&temporary))?;
    std::fs::rename(&temporary, to).map_err(io(to))
}

/// Calls `each` with every record line (`JSON<TAB>SHA256`) of one archive file, in order.
fn for_each_in(
    file: &Path,
    mut each: impl FnMut(&str) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let conn = duckdb::Connection::open_in_memory().map_err(|e| corrupt(file, e))?;
    let mut statement = conn
        .prepare(&format!(
            "SELECT line || chr(9) || hash FROM read_parquet({}) ORDER BY seq",
            sql_path(file)
        ))
        .map_err(|e| corrupt(file, e))?;
    let mut rows = statement.query([]).map_err(|e| corrupt(file, e))?;
    while let Some(row) = rows.next().map_err(|e| corrupt(file, e))? {
        let line: String = row.get(0).map_err(|e| corrupt(file, e))?;
        each(&line)?;
    }
    Ok(())
}

/// The archive files under `archive_root`, oldest month first (parts in order).
pub fn archived_files(archive_root: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let folder = audit_folder(archive_root);
    let mut files = Vec::new();
    if !folder.exists() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
        let path = entry.map_err(io(&folder))?.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    // Named `YYYY-MM.<first seq, 12 digits>.parquet`: by name is chain order.
    files.sort();
    Ok(files)
}

/// Calls `each` with every archived record line, in chain order, and the file it is in.
pub fn for_each_archived(
    archive_root: &Path,
    mut each: impl FnMut(&Path, &str) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    for file in archived_files(archive_root)? {
        for_each_in(&file, |line| each(&file, line))?;
    }
    Ok(())
}

/// Deletes archive files of months before `oldest_kept` (a month's first day); returns them.
/// The archive's own anchor then records the last deleted record, so what is left still
/// verifies as a chain.
pub fn expire(archive_root: &Path, oldest_kept: NaiveDate) -> Result<Vec<PathBuf>, AuditError> {
    let folder = audit_folder(archive_root);
    let mut expired = Vec::new();
    if !folder.exists() {
        return Ok(expired);
    }
    for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
        let path = entry.map_err(io(&folder))?.path();
        let month = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.get(..7))
            .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
        if month.is_some_and(|m| m < oldest_kept)
            && path.extension().is_some_and(|e| e == "parquet")
        {
            expired.push(path);
        }
    }
    expired.sort();
    let mut last: Option<Anchor> = None;
    for path in &expired {
        let conn = duckdb::Connection::open_in_memory().map_err(|e| corrupt(path, e))?;
        let (seq, hash): (i64, String) = conn
            .query_row(
                &format!(
                    "SELECT seq::BIGINT, hash FROM read_parquet({}) ORDER BY seq DESC LIMIT 1",
                    sql_path(path)
                ),
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| corrupt(path, e))?;
        let seq = u64::try_from(seq).unwrap_or(0);
        if last.as_ref().is_none_or(|l| seq > l.last_seq) {
            last = Some(Anchor {
                last_seq: seq,
                last_hash: hash,
            });
        }
    }
    if let Some(anchor) = last {
        anchor.save(&folder)?;
    }
    for path in &expired {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    Ok(expired)
}

/// Where the archived chain starts: after the last expired record, else at the beginning.
pub fn archive_anchor(archive_root: &Path) -> Result<Anchor, AuditError> {
    Ok(Anchor::load(&audit_folder(archive_root))?.unwrap_or_else(Anchor::genesis))
}
