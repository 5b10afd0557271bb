//! Export on demand: the records of one tenant or user over a time range, as JSON lines, CSV
//! or Parquet, with a manifest (counts, hash range, the chain check).
//!
//! The export streams: records are read a line at a time from the archive (when asked) and
//! the segments, checked against the chain as they pass, and written out at once. Parquet
//! goes through a temporary JSON-lines file that DuckDB converts, so memory stays bounded
//! for any size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::archive;
use crate::log::{
    Anchor, AuditError, SegmentsLock, corrupt, for_each_line, io, segments, split_line,
};
use crate::record::{AuditRecord, Kind};
use crate::verify::Chain;

/// Which records an export holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Only this tenant's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Only this user's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Records at or after this time (a call's start, else when the record was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Records before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether `record` belongs in the export.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let time = record.time();
        self.tenant
            .as_ref()
            .is_none_or(|t| record.tenant_id.as_ref() == Some(t))
            && self
                .user
                .as_ref()
                .is_none_or(|u| record.user_id.as_ref() == Some(u))
            && self
                .since
                .is_none_or(|since| time.is_some_and(|t| t >= since))
            && self
                .until
                .is_none_or(|until| time.is_some_and(|t| t < until))
    }
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet (zstd), written by DuckDB.
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "format `{other}` is not one of jsonl, csv, parquet"
            )),
        }
    }
}

/// What the chain check found while exporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    /// Whether every record read holds its place in the chain.
    pub ok: bool,
    /// Records checked (the whole trail read, not only the exported ones).
    pub records_checked: u64,
    /// Where the chain breaks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The manifest written beside an export (`<out>.manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The export file.
    pub file: String,
    /// Its format.
    pub format: Format,
    /// SHA-256 of the export file.
    pub file_sha256: String,
    /// Which records it holds.
    pub filter: Filter,
    /// Whether archived records were read too.
    pub include_archive: bool,
    /// Records exported.
    pub records: u64,
    /// First and last exported sequence numbers.
    pub first_seq: Option<u64>,
    /// Last exported sequence number.
    pub last_seq: Option<u64>,
    /// Hash of the first exported record.
    pub first_hash: Option<String>,
    /// Hash of the last exported record.
    pub last_hash: Option<String>,
    /// The chain check over everything read.
    pub chain: ChainCheck,
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The burnrate version that made it.
    pub burnrate_version: String,
}

/// One exported record: the record's fields and its hash, flat (the same columns in every
/// format).
#[derive(Debug, Serialize)]
struct Row<'a> {
    seq: u64,
    hash: &'a str,
    prev: &'a str,
    at: Option<DateTime<Utc>>,
    kind: Option<Kind>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    tenant_id: Option<&'a str>,
    user_id: Option<&'a str>,
    feature: Option<&'a str>,
    agent_run_id: Option<&'a str>,
    deployment: Option<&'a str>,
    burnrate_version: Option<&'a str>,
    config_hash: Option<&'a str>,
    prompt_version: Option<&'a str>,
    provider: Option<&'a str>,
    requested_model: Option<&'a str>,
    model: Option<&'a str>,
    service_tier: Option<&'a str>,
    input_tokens: Option<u64>,
    cache_read_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    output_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    status: Option<&'a str>,
    detail: Option<&'a str>,
    event_id: Option<&'a str>,
    content_sha256: Option<&'a str>,
}

/// The Parquet columns and their DuckDB types, in `Row`'s order.
const PARQUET_COLUMNS: &str = "{'seq': 'UBIGINT', 'hash': 'VARCHAR', 'prev': 'VARCHAR', \
    'at': 'TIMESTAMPTZ', 'kind': 'VARCHAR', 'start': 'TIMESTAMPTZ', 'end': 'TIMESTAMPTZ', \
    'tenant_id': 'VARCHAR', 'user_id': 'VARCHAR', 'feature': 'VARCHAR', \
    'agent_run_id': 'VARCHAR', 'deployment': 'VARCHAR', 'burnrate_version': 'VARCHAR', \
    'config_hash': 'VARCHAR', 'prompt_version': 'VARCHAR', 'provider': 'VARCHAR', \
    'requested_model': 'VARCHAR', 'model': 'VARCHAR', 'service_tier': 'VARCHAR', \
    'input_tokens': 'UBIGINT', 'cache_read_tokens': 'UBIGINT', \
    'cache_write_tokens': 'UBIGINT', 'output_tokens': 'UBIGINT', \
    'reasoning_tokens': 'UBIGINT', 'status': 'VARCHAR', 'detail': 'VARCHAR', \
    'event_id': 'VARCHAR', 'content_sha256': 'VARCHAR'}";

impl<'a> Row<'a> {
    fn of(record: &'a AuditRecord, hash: &'a str) -> Row<'a> {
        Row {
            seq: record.seq,
            hash,
            prev: &record.prev,
            at: record.at,
            kind: record.kind,
            start: record.start,
            end: record.end,
            tenant_id: record.tenant_id.as_deref(),
            user_id: record.user_id.as_deref(),
            feature: record.feature.as_deref(),
            agent_run_id: record.agent_run_id.as_deref(),
            deployment: record.deployment.as_deref(),
            burnrate_version: record.burnrate_version.as_deref(),
            config_hash: record.config_hash.as_deref(),
            prompt_version: record.prompt_version.as_deref(),
            provider: record.provider.as_deref(),
            requested_model: record.requested_model.as_deref(),
            model: record.model.as_deref(),
            service_tier: record.service_tier.as_deref(),
            input_tokens: record.input_tokens,
            cache_read_tokens: record.cache_read_tokens,
            cache_write_tokens: record.cache_write_tokens,
            output_tokens: record.output_tokens,
            reasoning_tokens: record.reasoning_tokens,
            status: record.status.as_deref(),
            detail: record.detail.as_deref(),
            event_id: record.event_id.as_deref(),
            content_sha256: record.content_sha256.as_deref(),
        }
    }
}

/// Reads the whole trail in order (the archive first when `archive_dir` is given), checking
/// the chain as it goes, and calls `each` with every record and its hash. A break in the
/// chain does not stop the walk: it is reported in the returned check.
pub fn walk(
    dir: &Path,
    archive_dir: Option<&Path>,
    mut each: impl FnMut(&AuditRecord, &str) -> Result<(), AuditError>,
) -> Result<ChainCheck, AuditError> {
    let _reading = SegmentsLock::read(dir);
    let anchor = Anchor::load(dir)?;
    let mut problem: Option<String> = None;
    let expired = match archive_dir {
        Some(root) => archive::archive_anchor(root)?,
        None => Anchor::genesis(),
    };
    let mut chain = match archive_dir {
        Some(_) => Chain::after(&expired),
        None => Chain::after(anchor.as_ref().unwrap_or(&Anchor::genesis())),
    };
    let mut checked = 0u64;
    let mut take = |line: &str, place: &dyn Fn() -> String| -> Result<(), AuditError> {
        let (json, hash) = split_line(line).ok_or_else(|| corrupt(dir, "not an audit record"))?;
        let record = match chain.check(line) {
            Ok(record) => {
                checked += 1;
                record
            }
            Err(reason) => {
                problem.get_or_insert_with(|| format!("{}: {reason}", place()));
                serde_json::from_str(json).map_err(|e| corrupt(dir, e))?
            }
        };
        each(&record, hash)
    };
    if let Some(archive_dir) = archive_dir {
        archive::for_each_archived(archive_dir, |file, line| {
            // Files an expiry cut short did not delete yet.
            if leftover(line, expired.last_seq) {
                return Ok(());
            }
            take(line, &|| file.display().to_string())
        })?;
    }
    let skip_through = anchor.map_or(0, |a| a.last_seq);
    for path in segments(dir)? {
        for_each_line(&path, |number, line| {
            // Lines a retention run archived but could not delete yet.
            if leftover(line, skip_through) {
                return Ok(());
            }
            take(line, &|| format!("{}, line {number}", path.display()))
        })?;
    }
    Ok(ChainCheck {
        ok: problem.is_none(),
        records_checked: checked,
        problem,
    })
}

/// Whether a segment line is at or before the archive's anchor (already archived).
pub(crate) fn leftover(line: &str, through: u64) -> bool {
    through > 0
        && split_line(line)
            .and_then(|(json, _)| serde_json::from_str::<AuditRecord>(json).ok())
            .is_some_and(|record| record.seq <= through)
}

/// Exports the records of `dir` (and of `archive_dir` when given) that match `filter` to
/// `out` in `format`, and writes the manifest beside it (`<out>.manifest.json`).
pub fn export(
    dir: &Path,
    archive_dir: Option<&Path>,
    filter: &Filter,
    format: Format,
    out: &Path,
) -> Result<Manifest, AuditError> {
    let mut records = 0u64;
    let mut first: Option<(u64, String)> = None;
    let mut last: Option<(u64, String)> = None;
    let mut count = |record: &AuditRecord, hash: &str| {
        records += 1;
        if first.is_none() {
            first = Some((record.seq, hash.to_owned()));
        }
        last = Some((record.seq, hash.to_owned()));
    };
    let chain = match format {
        Format::Jsonl => {
            let mut writer = BufWriter::new(File::create(out).map_err(io(out))?);
            let chain = walk(dir, archive_dir, |record, hash| {
                if !filter.matches(record) {
                    return Ok(());
                }
                count(record, hash);
                serde_json::to_writer(&mut writer, &Row::of(record, hash))
                    .map_err(|e| corrupt(out, e))?;
                writer.write_all(b"\n").map_err(io(out))
            })?;
            finish(writer, out)?;
            chain
        }
        Format::Csv => {
            let mut writer =
                csv::Writer::from_writer(BufWriter::new(File::create(out).map_err(io(out))?));
            let chain = walk(dir, archive_dir, |record, hash| {
                if !filter.matches(record) {
                    return Ok(());
                }
                count(record, hash);
                writer
                    .serialize(Row::of(record, hash))
                    .map_err(|e| corrupt(out, e))
            })?;
            let inner = writer.into_inner().map_err(|e| corrupt(out, e))?;
            finish(inner, out)?;
            chain
        }
        Format::Parquet => {
            let staging = staging_path(out);
            let mut writer = BufWriter::new(File::create(&staging).map_err(io(&staging))?);
            let walked = walk(dir, archive_dir, |record, hash| {
                if !filter.matches(record) {
                    return Ok(());
                }
                count(record, hash);
                serde_json::to_writer(&mut writer, &Row::of(record, hash))
                    .map_err(|e| corrupt(&staging, e))?;
                writer.write_all(b"\n").map_err(io(&staging))
            });
            let converted = walked.and_then(|chain| {
                finish(writer, &staging)?;
                jsonl_to_parquet(&staging, out)?;
                Ok(chain)
            });
            let _ = std::fs::remove_file(&staging);
            converted?
        }
    };
    let manifest = Manifest {
        file: out.display().to_string(),
        format,
        file_sha256: file_sha256(out)?,
        filter: filter.clone(),
        include_archive: archive_dir.is_some(),
        records,
        first_seq: first.as_ref().map(|f| f.0),
        last_seq: last.as_ref().map(|l| l.0),
        first_hash: first.map(|f| f.1),
        last_hash: last.map(|l| l.1),
        chain,
        exported_at: Utc::now(),
        burnrate_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let manifest_path = manifest_path(out);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| corrupt(out, e))?;
    std::fs::write(&manifest_path, text + "\n").map_err(io(&manifest_path))?;
    Ok(manifest)
}

/// Where the manifest of an export to `out` goes.
pub fn manifest_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn staging_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".staging.jsonl");
    PathBuf::from(name)
}

fn finish(mut writer: BufWriter<File>, path: &Path) -> Result<(), AuditError> {
    writer.flush().map_err(io(path))?;
    writer
        .into_inner()
        .map_err(|e| io(path)(e.into_error()))?
        .sync_all()
        .map_err(io(path))
}

/// A path as a single-quoted SQL string.
pub(crate) fn sql_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// Converts the JSON-lines file of export rows at `from` to Parquet at `to`.
fn jsonl_to_parquet(from: &Path, to: &Path) -> Result<(), AuditError> {
    let conn = duckdb::Connection::open_in_memory().map_err(|e| corrupt(to, e))?;
    conn.execute_batch(&format!(
        "COPY (SELECT * FROM read_json({}, format = 'newline_delimited', \
         columns = {PARQUET_COLUMNS})) TO {} (FORMAT parquet, COMPRESSION zstd)",
        sql_path(from),
        sql_path(to)
    ))
    .map_err(|e| corrupt(to, format!("writing Parquet: {e}")))
}

/// SHA-256 of a file's bytes, read in blocks.
pub fn file_sha256(path: &Path) -> Result<String, AuditError> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}
