//! The journal: an append-only write-ahead log of usage events in front of the store.
//!
//! Every accepted event is written (one `write(2)` of one JSON line) to the active segment
//! before the call that produced it is acknowledged, then handed to the store writer. A
//! background thread `fsync`s the active segment every `fsync_interval` (group commit), so a
//! process crash loses nothing written and a power cut at most that interval. The store writer
//! periodically seals the active segment ([`Journal::rotate`]), appends what it received to
//! the store, and then deletes the sealed segments ([`Journal::remove_through`]). At start-up
//! [`replay`] appends whatever segments a crash left behind; ids make that idempotent.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use burnrate_model::UsageEvent;
use crossbeam_channel::Sender;

use crate::StoreError;

/// Events appended per call of the replay sink.
const REPLAY_BATCH: usize = 100_000;

/// The journal of one store.
pub struct Journal {
    dir: PathBuf,
    shared: Arc<Shared>,
    fsync_thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    active: Mutex<Active>,
    /// Wakes the fsync thread early on shutdown.
    wake: Condvar,
    stopping: AtomicBool,
    /// Where appended events go next (the store writer).
    sink: Sender<UsageEvent>,
    fsync_each_write: bool,
}

struct Active {
    /// Shared so that fsync runs without holding the lock appends wait on.
    file: Arc<File>,
    seq: u64,
    dirty: bool,
    /// Reused serialisation buffer.
    line: Vec<u8>,
}

/// What [`replay`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Segments read.
    pub segments: usize,
    /// Events handed to the sink.
    pub events: u64,
    /// Lines that could not be read back, with their file and line number. A torn last line
    /// (power cut in mid-write) belongs to a call that was never acknowledged.
    pub unreadable: Vec<String>,
}

impl Journal {
    /// Opens the journal in `dir` (created when absent) with a new active segment after any
    /// existing ones. Run [`replay`] on the directory first. `fsync_interval` zero means fsync
    /// after every write.
    pub fn open(
        dir: &Path,
        fsync_interval: Duration,
        sink: Sender<UsageEvent>,
    ) -> Result<Journal, StoreError> {
        fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let next = segments(dir)?.last().map_or(1, |(seq, _)| seq + 1);
        let file = create_segment(dir, next)?;
        let shared = Arc::new(Shared {
            active: Mutex::new(Active {
                file: Arc::new(file),
                seq: next,
                dirty: false,
                line: Vec::with_capacity(1024),
            }),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            sink,
            fsync_each_write: fsync_interval.is_zero(),
        });
        let fsync_thread = if fsync_interval.is_zero() {
            None
        } else {
            let shared = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("journal-fsync".into())
                    .spawn(move || fsync_loop(&shared, fsync_interval))
                    .map_err(|source| io_error(dir, source))?,
            )
        };
        Ok(Journal {
            dir: dir.to_path_buf(),
            shared,
            fsync_thread: Mutex::new(fsync_thread),
        })
    }

    /// Writes one event (which must carry its id) to the active segment, then hands it to the
    /// store writer. When this returns `Ok` the event survives a crash of the process.
    pub fn append(&self, event: UsageEvent) -> Result<(), StoreError> {
        let mut active = self.lock();
        // The active segment's reused buffer: no allocation per event.
        let mut line = std::mem::take(&mut active.line);
        line.clear();
        let written = self
            .serialise(&event, &mut line)
            .and_then(|()| self.write(&mut active, &line));
        active.line = line;
        written?;
        drop(active);
        // The receiver lives as long as the server; if it is gone the event is still in the
        // journal and the next start replays it.
        let _ = self.shared.sink.send(event);
        Ok(())
    }

    /// Writes several events (each with its id) in one `write(2)`, then hands them to the
    /// store writer: an OTLP export or an events post is journaled whole or not at all. They
    /// are serialised before the lock is taken, so a large batch does not hold up calls.
    pub fn append_all(&self, events: Vec<UsageEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(events.len() * 512);
        for event in &events {
            self.serialise(event, &mut batch)?;
        }
        self.write(&mut self.lock(), &batch)?;
        for event in events {
            let _ = self.shared.sink.send(event);
        }
        Ok(())
    }

    /// Appends `event` as one JSON line to `out`.
    fn serialise(&self, event: &UsageEvent, out: &mut Vec<u8>) -> Result<(), StoreError> {
        serde_json::to_writer(&mut *out, event).map_err(|error| StoreError::Journal {
            path: self.dir.display().to_string(),
            reason: format!("cannot serialise an event: {error}"),
        })?;
        out.push(b'\n');
        Ok(())
    }

    /// Writes whole lines to the active segment: fsynced at once when the interval is zero,
    /// else marked for the fsync thread.
    fn write(&self, active: &mut Active, lines: &[u8]) -> Result<(), StoreError> {
        active
            .file
            .as_ref()
            .write_all(lines)
            .map_err(|source| io_error(&self.dir, source))?;
        if self.shared.fsync_each_write {
            active
                .file
                .sync_data()
                .map_err(|source| io_error(&self.dir, source))?;
        } else {
            active.dirty = true;
        }
        Ok(())
    }

    /// Seals the active segment (fsynced) and starts a new one. Every event appended before
    /// this call has already been handed to the sink. Returns the sealed segment's number.
    /// Only the store writer rotates, so the sequence cannot move between the two locks; the
    /// new file is created and the sealed one fsynced outside the lock appends wait on.
    pub fn rotate(&self) -> Result<u64, StoreError> {
        let sealed = self.lock().seq;
        let next = Arc::new(create_segment(&self.dir, sealed + 1)?);
        let old = {
            let mut active = self.lock();
            active.seq = sealed + 1;
            active.dirty = false;
            std::mem::replace(&mut active.file, next)
        };
        old.sync_data()
            .map_err(|source| io_error(&self.dir, source))?;
        Ok(sealed)
    }

    /// Deletes the sealed segments up to and including `seq`: their events are in the store.
    pub fn remove_through(&self, seq: u64) -> Result<(), StoreError> {
        remove_replayed(&self.dir, seq)
    }

    /// Stops the fsync thread after a last fsync.
    pub fn close(&self) -> Result<(), StoreError> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(handle) = self
            .fsync_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            let _ = handle.join();
        }
        self.lock()
            .file
            .sync_data()
            .map_err(|source| io_error(&self.dir, source))
    }

    fn lock(&self) -> MutexGuard<'_, Active> {
        // A panic while holding the lock cannot leave a half-written line behind that a later
        // append would corrupt: each append is one write of a whole line.
        self.shared
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn fsync_loop(shared: &Shared, interval: Duration) {
    let lock = || {
        shared
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let mut active = lock();
    loop {
        if active.dirty {
            active.dirty = false;
            let file = Arc::clone(&active.file);
            // fsync (milliseconds on a busy disk) without the lock, so appends go on.
            drop(active);
            let synced = file.sync_data().is_ok();
            active = lock();
            // A failed fsync is retried at the next tick; the data is still in the page cache.
            if !synced && Arc::ptr_eq(&file, &active.file) {
                active.dirty = true;
            }
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        active = match shared.wake.wait_timeout(active, interval) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// Hands every event of the segments in `dir` to `sink` in batches, oldest first, and returns
/// the segments' numbers so the caller can delete them once the store has the events.
pub fn replay(
    dir: &Path,
    mut sink: impl FnMut(Vec<UsageEvent>) -> Result<(), StoreError>,
) -> Result<(ReplayOutcome, Option<u64>), StoreError> {
    let mut outcome = ReplayOutcome::default();
    if !dir.exists() {
        return Ok((outcome, None));
    }
    let found = segments(dir)?;
    let mut batch = Vec::new();
    for (_, path) in &found {
        outcome.segments += 1;
        let file = File::open(path).map_err(|source| io_error(path, source))?;
        for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(|source| io_error(path, source))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<UsageEvent>(&line) {
                Ok(event) if event.id.is_some() => batch.push(event),
                Ok(_) => outcome.unreadable.push(format!(
                    "{}:{}: event without an id",
                    path.display(),
                    index + 1
                )),
                Err(error) => {
                    outcome
                        .unreadable
                        .push(format!("{}:{}: {error}", path.display(), index + 1))
                }
            }
            if batch.len() >= REPLAY_BATCH {
                outcome.events += batch.len() as u64;
                sink(std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        outcome.events += batch.len() as u64;
        sink(batch)?;
    }
    Ok((outcome, found.last().map(|(seq, _)| *seq)))
}

/// Deletes the segments of `dir` numbered up to `seq` (after a replay reached the store).
pub fn remove_replayed(dir: &Path, seq: u64) -> Result<(), StoreError> {
    for (number, path) in segments(dir)? {
        if number <= seq {
            fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
        }
    }
    Ok(())
}

/// The segment files of `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|name| name.strip_prefix("journal-"))
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort_unstable();
    Ok(found)
}

/// Creates segment `seq` and makes its directory entry durable.
fn create_segment(dir: &Path, seq: u64) -> Result<File, StoreError> {
    let path = dir.join(format!("journal-{seq:020}.jsonl"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| io_error(&path, source))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| io_error(dir, source))?;
    Ok(file)
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
