//! `burnrate import`: JSONL into the ledger, parsed in parallel, appended in order.
//!
//! A reader thread cuts the input into blocks at line ends; worker threads parse and validate
//! each block into an Arrow batch; the main thread appends batches to DuckDB in input order
//! (so the first copy of a repeated id wins) and reports progress.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use anyhow::Context;
use burnrate_model::UsageEvent;
use burnrate_model::text::grouped;
use burnrate_store::{Cell, DuckStore, EventBatch, Metric, QuerySpec};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use crossbeam_channel::bounded;
use indicatif::{ProgressBar, ProgressStyle};

/// Bytes per parse block.
const BLOCK_BYTES: usize = 4 << 20;
/// Events per append (one dedup probe each). Large appends matter: DuckDB merges and rewrites
/// the row groups of each append, and small appends left the file 40–70% larger (measured at
/// 1M events: 122,880 per append → 130 MB, 256k → 103 MB, 1M → 75 MB). Costs about 1 GB of
/// memory at peak.
const APPEND_EVENTS: usize = 1 << 20;
/// Longest accepted line.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Rejections printed before the rest are only counted.
const SHOWN_REJECTIONS: usize = 50;

/// A line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Input file (`-` for stdin).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Why, naming the field.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Events written.
    pub imported: u64,
    /// Events whose id was already in the ledger.
    pub duplicates: u64,
    /// Lines rejected.
    pub rejected: Vec<Rejection>,
}

struct Block {
    seq: u64,
    file: String,
    first_line: u64,
    bytes: Vec<u8>,
}

struct Parsed {
    seq: u64,
    batch: EventBatch,
    rejected: Vec<Rejection>,
    bytes: u64,
}

/// Runs `burnrate import`.
pub fn run(db: &Path, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut store = DuckStore::open(db).with_context(|| format!("opening {}", db.display()))?;
    // The parser takes every core and the appends run on threads of their own (measured on
    // 3M events: 20.8 s and 36.4 CPU-s with DuckDB's default workers, 19.1 s and 30.5 with one).
    store.set_threads(1)?;
    let total_bytes: u64 = files
        .iter()
        .filter(|f| f.as_os_str() != "-")
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = progress_bar(total_bytes);
    let ahead_of = Utc::now() + TimeDelta::hours(1);
    let ahead_before = calls_dated_after(&store, ahead_of);
    let summary = import_files(&mut store, files, &|bytes| progress.inc(bytes))?;
    progress.finish_and_clear();
    // Batches repeat daily roll-up keys: merge them so queries read one row per key.
    store.compact_rollup()?;
    store.checkpoint()?;
    print_summary(&summary)?;
    warn_of_calls_ahead(ahead_of, ahead_before, calls_dated_after(&store, ahead_of));
    Ok(if summary.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    let style = ProgressStyle::with_template(
        "{spinner} importing [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn print_summary(summary: &ImportSummary) -> std::io::Result<()> {
    for rejection in summary.rejected.iter().take(SHOWN_REJECTIONS) {
        eprintln!(
            "{}:{}: {}",
            rejection.file, rejection.line, rejection.reason
        );
    }
    if summary.rejected.len() > SHOWN_REJECTIONS {
        eprintln!(
            "... and {} more rejected lines",
            summary.rejected.len() - SHOWN_REJECTIONS
        );
    }
    outln!(
        "imported {} events, skipped {} duplicates, rejected {} lines",
        summary.imported,
        summary.duplicates,
        summary.rejected.len()
    );
    Ok(())
}

/// The ledger's calls dated at or after `after`.
fn calls_dated_after(store: &DuckStore, after: DateTime<Utc>) -> anyhow::Result<u64> {
    // The last instant RFC 3339's four-digit years can write (the end is exclusive: a call
    // in its last microsecond is not counted).
    let end = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999))
        .unwrap_or(NaiveDateTime::MAX)
        .and_utc();
    let mut spec = QuerySpec::new(after, end);
    spec.metrics = vec![Metric::Requests];
    let result = store.query(&spec)?;
    Ok(match result.get(0, "requests") {
        Some(Cell::Count(count)) => u64::try_from(*count).unwrap_or(0),
        _ => 0,
    })
}

/// Warns when this import added calls dated over an hour ahead of the clock: they are kept,
/// but every report of a range up to now leaves them out, which usually means local time
/// stamped as UTC (`Z`) or a wrong clock. Only a note when the count could not be read: the
/// import itself is done.
fn warn_of_calls_ahead(
    ahead_of: DateTime<Utc>,
    before: anyhow::Result<u64>,
    after: anyhow::Result<u64>,
) {
    match (before, after) {
        (Ok(before), Ok(after)) if after > before => eprintln!(
            "WARNING: this import added {} dated after {} (an hour from now), {} in the \
             ledger: reports of ranges up to now leave them out; check the `ts` fields and the \
             clocks that wrote them (local time stamped as UTC is the usual cause)",
            calls(after - before),
            ahead_of.format("%Y-%m-%dT%H:%M:%SZ"),
            grouped(after)
        ),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("note: could not check for calls dated ahead of the clock: {error:#}");
        }
        _ => {}
    }
}

/// `n calls`, or `1 call`.
fn calls(n: u64) -> String {
    match n {
        1 => "1 call".to_owned(),
        n => format!("{} calls", grouped(n)),
    }
}

/// Imports JSONL files into the store, calling `on_bytes` as input is consumed.
pub fn import_files(
    store: &mut DuckStore,
    files: &[PathBuf],
    on_bytes: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<ImportSummary> {
    let workers = thread::available_parallelism().map_or(2, |n| n.get());
    let (block_tx, block_rx) = bounded::<Block>(workers * 2);
    let (parsed_tx, parsed_rx) = bounded::<anyhow::Result<Parsed>>(workers * 2);
    thread::scope(|scope| {
        let reader = scope.spawn(move || read_blocks(files, &block_tx));
        for _ in 0..workers {
            let block_rx = block_rx.clone();
            let parsed_tx = parsed_tx.clone();
            scope.spawn(move || {
                for block in block_rx {
                    if parsed_tx.send(parse_block(block)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(parsed_tx);
        drop(block_rx);
        let appended = append_in_order(store, parsed_rx, on_bytes);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
        read?;
        appended
    })
}

/// Appends parsed blocks in input order, in appends of about [`APPEND_EVENTS`].
fn append_in_order(
    store: &mut DuckStore,
    parsed: crossbeam_channel::Receiver<anyhow::Result<Parsed>>,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut waiting: BTreeMap<u64, Parsed> = BTreeMap::new();
    let mut next_seq = 0;
    let mut pending: Vec<EventBatch> = Vec::new();
    let mut pending_events = 0;
    let mut flush = |pending: &mut Vec<EventBatch>, summary: &mut ImportSummary| {
        let outcome = store.append_batches(std::mem::take(pending))?;
        summary.imported += outcome.inserted;
        summary.duplicates += outcome.duplicates;
        anyhow::Ok(())
    };
    for block in parsed {
        let block = block?;
        waiting.insert(block.seq, block);
        while let Some(block) = waiting.remove(&next_seq) {
            next_seq += 1;
            summary.rejected.extend(block.rejected);
            pending_events += block.batch.len();
            pending.push(block.batch);
            if pending_events >= APPEND_EVENTS {
                flush(&mut pending, &mut summary)?;
                pending_events = 0;
            }
            on_bytes(block.bytes);
        }
    }
    flush(&mut pending, &mut summary)?;
    Ok(summary)
}

/// Cuts each input into blocks that end at a line end.
fn read_blocks(files: &[PathBuf], blocks: &crossbeam_channel::Sender<Block>) -> anyhow::Result<()> {
    let mut seq = 0;
    for path in files {
        let name = path.display().to_string();
        let mut input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("cannot read {name}"))?)
        };
        let mut line = 1;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut buffer = std::mem::take(&mut carry);
            let start = buffer.len();
            buffer.resize(start + BLOCK_BYTES, 0);
            let read = read_full(&mut input, &mut buffer[start..])
                .with_context(|| format!("reading {name}"))?;
            buffer.truncate(start + read);
            let at_end = read == 0;
            if buffer.is_empty() {
                break;
            }
            if !at_end {
                // Keep the partial last line for the next block.
                if let Some(end) = memchr::memrchr(b'\n', &buffer) {
                    carry = buffer.split_off(end + 1);
                }
            }
            let lines = memchr::memchr_iter(b'\n', &buffer).count() as u64;
            let block = Block {
                seq,
                file: name.clone(),
                first_line: line,
                bytes: buffer,
            };
            seq += 1;
            line += lines;
            if blocks.send(block).is_err() {
                return Ok(());
            }
            if at_end {
                break;
            }
        }
    }
    Ok(())
}

fn read_full(input: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Parses and validates every line of a block.
fn parse_block(block: Block) -> anyhow::Result<Parsed> {
    let mut events = Vec::with_capacity(block.bytes.len() / 512);
    let mut rejected = Vec::new();
    for (offset, raw) in block.bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = block.first_line + offset as u64;
        match parse_line(raw) {
            Ok(event) => events.push(event),
            Err(reason) => rejected.push(Rejection {
                file: block.file.clone(),
                line,
                reason,
            }),
        }
    }
    Ok(Parsed {
        seq: block.seq,
        batch: EventBatch::from_events(&events)?,
        rejected,
        bytes: block.bytes.len() as u64,
    })
}

/// One JSONL line to a validated event with an id.
pub fn parse_line(raw: &[u8]) -> Result<UsageEvent, String> {
    if raw.len() > MAX_LINE_BYTES {
        return Err(format!(
            "line is {} bytes long; the limit is {MAX_LINE_BYTES}",
            raw.len()
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| format!("not valid UTF-8: {e}"))?;
    let mut event = UsageEvent::from_json(text).map_err(|e| e.to_string())?;
    event.ensure_id(raw);
    Ok(event)
}
