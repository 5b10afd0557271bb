//! The ledger writer: one thread owns the store (DuckDB lets one process hold the file and a
//! connection is used from one thread at a time; a ClickHouse ledger is shared by every
//! replica, each shipping its own journal). It moves journaled events into the store in
//! batches and runs queries for the APIs between batches. While the store cannot be reached
//! the events stay journaled and pending, the gateway keeps serving, and each flush retries;
//! ids make a batch that was stored but not acknowledged harmless to send again.
//!
//! Flush cycle: seal the active journal segment, take every event received so far, append
//! them, then delete the sealed segments. An event therefore leaves the journal only after
//! the store has it; a crash in between replays it at the next start, and its id makes the
//! second append a no-op.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burnrate_model::UsageEvent;
use burnrate_store::journal::{self, ReplayOutcome};
use burnrate_store::{Journal, Store, StoreError};

use crate::audit::AuditTrail;
use crossbeam_channel::{Receiver, Select, Sender, select, tick};
use tokio::sync::oneshot;

/// Events appended to the store at most per append call.
const MAX_BATCH: usize = 100_000;

/// Work the ledger thread runs with the store and the audit trail (when it is on).
type Job = Box<dyn FnOnce(&mut dyn Store, Option<&mut AuditTrail>) + Send>;

/// Handle to the ledger thread.
pub struct Ledger {
    journal: Arc<Journal>,
    jobs: Sender<Job>,
    stop: Sender<()>,
    thread: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
    /// Events journaled but not yet in the store.
    lag: Arc<AtomicU64>,
}

impl Ledger {
    /// Replays the journal left in `journal_dir` into the audit trail (skipping what it
    /// already holds) and `store`, then starts the writer thread and a fresh journal segment.
    pub fn start(
        mut store: Box<dyn Store>,
        mut audit: Option<AuditTrail>,
        journal_dir: &Path,
        fsync_interval: Duration,
        flush_interval: Duration,
        flush_in_idle_time: Option<bool>,
    ) -> Result<(Ledger, ReplayOutcome), StoreError> {
        // The store first, then the trail. Events the store had already are on the trail
        // unless a crash came between the two: the trail's tail says which.
        let (outcome, last) = journal::replay(journal_dir, |batch| {
            store.append(&batch)?;
            if let Some(audit) = audit.as_mut() {
                audit.calls(&batch, true).map_err(audit_failed)?;
            }
            Ok(())
        })?;
        if let Some(last) = last {
            store.checkpoint()?;
            journal::remove_replayed(journal_dir, last)?;
        }
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let journal = Arc::new(Journal::open(journal_dir, fsync_interval, events_tx)?);
        let (jobs, jobs_rx) = crossbeam_channel::unbounded::<Job>();
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let lag = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            store,
            audit,
            unaudited: Vec::new(),
            store_broke: false,
            audit_broke: false,
            journal: Arc::clone(&journal),
            events: events_rx,
            pending: Vec::new(),
            lag: Arc::clone(&lag),
            jobs: jobs_rx,
            stop: stop_rx,
            flush_interval,
            idle_flushes: false,
            hurry_idle_flushes: false,
        };
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || {
                lower_priority();
                writer.run(flush_in_idle_time)
            })
            .map_err(|source| StoreError::Io {
                path: journal_dir.display().to_string(),
                source,
            })?;
        Ok((
            Ledger {
                journal,
                jobs,
                stop,
                thread: Mutex::new(Some(thread)),
                lag,
            },
            outcome,
        ))
    }

    /// Journals an event (durable when this returns) and queues it for the store.
    pub fn record(&self, event: UsageEvent) -> Result<(), StoreError> {
        // Counted first: the writer may take the event before `append` returns.
        self.lag.fetch_add(1, Ordering::Relaxed);
        self.journal.append(event).inspect_err(|_| {
            self.lag.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// Journals several events in one write (all durable when this returns) and queues them.
    pub fn record_all(&self, events: Vec<UsageEvent>) -> Result<(), StoreError> {
        let count = events.len() as u64;
        self.lag.fetch_add(count, Ordering::Relaxed);
        self.journal.append_all(events).inspect_err(|_| {
            self.lag.fetch_sub(count, Ordering::Relaxed);
        })
    }

    /// Events journaled but not yet in the store.
    pub fn lag(&self) -> u64 {
        self.lag.load(Ordering::Relaxed)
    }

    /// Runs `job` on the ledger thread with the store (after the events queued so far are
    /// appended, so a query sees every call answered before it was asked).
    pub async fn with_store<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        self.with_parts(move |store, _| job(store)).await
    }

    /// Runs `job` on the ledger thread with the store and the audit trail; `None` when the
    /// trail is off.
    pub async fn with_audit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut dyn Store, &mut AuditTrail) -> T + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        self.with_parts(move |store, audit| audit.map(|audit| job(store, audit)))
            .await
    }

    /// Appends a decision record to the audit trail on the ledger thread (synced to disk
    /// before the thread does anything else); does nothing when the trail is off.
    pub fn audit(&self, record: burnrate_audit::AuditRecord) {
        self.audit_with(move |trail| trail.decision(record).map(drop));
    }

    /// Runs `change` on the audit trail on the ledger thread, logging a failure.
    pub fn audit_with(
        &self,
        change: impl FnOnce(&mut AuditTrail) -> Result<(), burnrate_audit::AuditError> + Send + 'static,
    ) {
        let job: Job = Box::new(move |_, audit| {
            if let Some(trail) = audit
                && let Err(error) = change(trail)
            {
                tracing::error!(%error, "audit record not written");
            }
        });
        if self.jobs.send(job).is_err() {
            tracing::error!("audit record not written: the ledger thread has stopped");
        }
    }

    /// Runs `job` on the ledger thread with the store and the audit trail when it is on.
    pub async fn with_parts<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut dyn Store, Option<&mut AuditTrail>) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |store, audit| {
            let _ = reply.send(job(store, audit));
        });
        let gone = || StoreError::Journal {
            path: "ledger".into(),
            reason: "the ledger thread has stopped".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    /// Flushes every queued event into the store, checkpoints and stops the thread.
    /// Later calls do nothing.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        let _ = self.stop.try_send(());
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(thread) = thread else {
            return Ok(());
        };
        let result = thread.join().unwrap_or_else(|_| {
            Err(StoreError::Journal {
                path: "ledger".into(),
                reason:
                    "the ledger thread panicked; the journal keeps its events for the next start"
                        .into(),
            })
        });
        self.journal.close()?;
        result
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::error!(%error, "ledger shutdown failed");
        }
    }
}

struct Writer {
    store: Box<dyn Store>,
    audit: Option<AuditTrail>,
    /// Events in the store whose records are not on the trail yet.
    unaudited: Vec<UsageEvent>,
    /// Whether the last store append failed (it may have written part of its events, which
    /// the next append then sees as known).
    store_broke: bool,
    /// Whether the last trail append failed (the next one skips what it did write).
    audit_broke: bool,
    journal: Arc<Journal>,
    events: Receiver<UsageEvent>,
    /// Received events not yet in the store.
    pending: Vec<UsageEvent>,
    lag: Arc<AtomicU64>,
    jobs: Receiver<Job>,
    stop: Receiver<()>,
    flush_interval: Duration,
    /// Whether the timer's flushes store their events in idle time ([`in_idle_time`]); off
    /// for good once the policy cannot be set.
    idle_flushes: bool,
    /// Whether an idle-time flush still under way when work waits for the ledger is lifted
    /// back to the ledger's priority ([`in_idle_time`]).
    hurry_idle_flushes: bool,
}

impl Writer {
    /// Moves events into the store every `flush_interval` and runs jobs until stopped.
    /// `flush_in_idle_time` is the configured choice; unset, the timer's flushes run in idle
    /// time where a flush under way can be hurried.
    fn run(mut self, flush_in_idle_time: Option<bool>) -> Result<(), StoreError> {
        self.choose_idle_flushes(flush_in_idle_time);
        let (jobs, stop) = (self.jobs.clone(), self.stop.clone());
        let ticker = tick(self.flush_interval);
        let every_core = std::thread::available_parallelism().map_or(1, usize::from);
        self.statement_threads(FLUSH_THREADS);
        // The store's queries convert results on rayon's pool, whose threads take the
        // priority of the thread that first uses it: this one's, not an idle flush's.
        rayon::current_num_threads();
        loop {
            select! {
                recv(ticker) -> _ => {
                    self.flush_when_idle();
                    // Price changes another replica or the CLI made reach this one.
                    if let Err(error) = self.store.refresh() {
                        tracing::warn!(%error, "refreshing the ledger's price book failed");
                    }
                }
                recv(jobs) -> job => {
                    self.flush_logged();
                    if let Ok(job) = job {
                        // Queries asked for (reports, the dashboard) use every core.
                        self.statement_threads(every_core);
                        job(self.store.as_mut(), self.audit.as_mut());
                        self.statement_threads(FLUSH_THREADS);
                    }
                }
                recv(stop) -> _ => {
                    self.flush()?;
                    return self.store.checkpoint();
                }
            }
        }
    }

    /// Decides whether the timer's flushes run in idle time: as configured, or, unset, where
    /// a flush under way can be lifted back to the ledger's priority (which needs
    /// `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 20 - [`LEDGER_NICE`]).
    fn choose_idle_flushes(&mut self, configured: Option<bool>) {
        self.hurry_idle_flushes = configured != Some(false) && idle_flushes_can_be_hurried();
        self.idle_flushes = configured.unwrap_or(self.hurry_idle_flushes);
        match (configured, self.hurry_idle_flushes) {
            (Some(true), false) => tracing::warn!(
                "flush_in_idle_time is on, but a flush under way cannot be hurried here (it \
                 needs CAP_SYS_NICE or RLIMIT_NICE >= {}): while other work keeps every core \
                 busy, reports, the dashboard and shutdown wait for it",
                20 - LEDGER_NICE
            ),
            (None, false) if cfg!(target_os = "linux") => tracing::info!(
                "flushes run at the ledger's priority: one in idle time could not be hurried \
                 here (it needs CAP_SYS_NICE or RLIMIT_NICE >= {})",
                20 - LEDGER_NICE
            ),
            _ => {}
        }
    }

    /// Sets how many threads the store runs a statement on.
    fn statement_threads(&self, threads: usize) {
        if let Err(error) = self.store.set_threads(threads) {
            tracing::warn!(%error, threads, "setting the ledger's statement threads failed");
        }
    }

    /// The timer's flush. With `flush_in_idle_time`, the events are stored in the cores'
    /// idle time ([`in_idle_time`]) unless the store is more than [`CATCH_UP_LAG`] events
    /// behind; the journal's lock, which calls take, is only ever taken on this thread.
    fn flush_when_idle(&mut self) {
        if self.idle_flushes && self.lag.load(Ordering::Relaxed) <= CATCH_UP_LAG {
            let flushed = self.flush_storing(Writer::store_pending_in_idle_time);
            log_flush(flushed);
        } else {
            self.flush_logged();
        }
    }

    fn flush_logged(&mut self) {
        log_flush(self.flush());
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_storing(Writer::store_pending)
    }

    /// Seals the active journal segment, takes every event received so far, stores them
    /// with `store`, then deletes the sealed segments. An event therefore leaves the journal
    /// only once the store (and the trail) have it.
    fn flush_storing(
        &mut self,
        store: fn(&mut Writer) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if self.events.is_empty() && self.pending.is_empty() {
            return Ok(());
        }
        let sealed = self.journal.rotate()?;
        self.pending.extend(self.events.try_iter());
        store(self)?;
        self.journal.remove_through(sealed)
    }

    /// [`Writer::store_pending`] on a thread under `SCHED_IDLE`; on this thread when none
    /// can be started. A policy that cannot be set turns idle-time flushes off. Where it
    /// can, the flush is lifted back to the ledger's priority once a job or the stop waits,
    /// or once it has taken a whole flush interval.
    fn store_pending_in_idle_time(&mut self) -> Result<(), StoreError> {
        let (jobs, stop) = (self.jobs.clone(), self.stop.clone());
        let deadline = Instant::now() + self.flush_interval;
        let hurry = self.hurry_idle_flushes;
        let hurry_when =
            |finished: &Receiver<()>| hurry && !finished_first(finished, &jobs, &stop, deadline);
        match in_idle_time(|| self.store_pending(), hurry_when) {
            Ok((stored, in_idle)) => {
                self.idle_flushes &= in_idle;
                stored
            }
            Err(error) => {
                tracing::warn!(%error, "no thread for an idle-time flush; flushing at once");
                self.store_pending()
            }
        }
    }

    /// Appends the pending events to the store, then to the trail (records of the events
    /// the store took as new). On failure the events stay pending (and in the sealed
    /// segments, which are only deleted once everything up to them is in the store and on
    /// the trail).
    fn store_pending(&mut self) -> Result<(), StoreError> {
        let mut fresh = Vec::with_capacity(self.pending.len());
        for chunk in self.pending.chunks(MAX_BATCH) {
            match self.store.append_new(chunk) {
                Ok(flags) => fresh.extend(flags),
                Err(error) => {
                    self.store_broke = true;
                    return Err(error);
                }
            }
        }
        // After a failed append, known events may be ones it wrote: the trail decides.
        let maybe_ours = std::mem::take(&mut self.store_broke);
        self.lag
            .fetch_sub(self.pending.len() as u64, Ordering::Relaxed);
        if self.audit.is_some() {
            self.audit_broke |= maybe_ours;
            let taken = self.pending.drain(..).zip(fresh);
            self.unaudited.extend(
                taken
                    .filter(|(_, new)| *new || maybe_ours)
                    .map(|(event, _)| event),
            );
        }
        self.pending.clear();
        if let Some(audit) = self.audit.as_mut() {
            let written = audit.calls(&self.unaudited, self.audit_broke);
            self.audit_broke = written.is_err();
            written.map_err(audit_failed)?;
            self.unaudited.clear();
        }
        Ok(())
    }
}

/// Waits until `finished` is ready (an idle-time flush is done: true), a job or the stop
/// is waiting, or `deadline` passes; neither job nor stop is taken.
fn finished_first(
    finished: &Receiver<()>,
    jobs: &Receiver<Job>,
    stop: &Receiver<()>,
    deadline: Instant,
) -> bool {
    let mut select = Select::new();
    let done = select.recv(finished);
    select.recv(jobs);
    select.recv(stop);
    select.ready_deadline(deadline) == Ok(done)
}

/// Logs a failed flush: its events stay in the journal, and the next flush or start retries
/// them.
fn log_flush(flushed: Result<(), StoreError>) {
    if let Err(error) = flushed {
        tracing::error!(%error, "moving journaled events into the store failed");
    }
}

/// Threads a flush's statements run on: one, so the work of moving events into the store
/// every second does not spread over the cores calls need. Measured at 2,000 calls a second
/// against DuckDB's default of a thread per core: p99 added +1.1-1.4 ms against +1.8-2.1 ms
/// streamed, +1.0-1.6 ms against +1.0-1.8 ms plain.
const FLUSH_THREADS: usize = 1;

/// The ledger thread's nice value: calls in flight go first when the cores are busy. A flush
/// moves events the journal holds already, so running it a little later loses nothing; run at
/// the calls' priority, its burst of DuckDB work every second showed in their tail latency.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const LEDGER_NICE: i32 = 10;

/// Events behind the store (journaled, not yet appended) beyond which the timer's flush runs
/// at the ledger's priority instead of in idle time: about 25 s of calls at 2,000 a second.
const CATCH_UP_LAG: u64 = 50_000;

/// Runs `work` on a thread of its own under Linux's `SCHED_IDLE` policy and returns its
/// result, with whether the policy was set. Such a thread gets a core only when no other
/// thread wants it, and a call's thread that wakes up takes the core back at once; at a nice
/// value alone a flush kept its core for a time slice (BENCHMARKS.md, "Flushes in idle
/// time"). The trade: while other work keeps every core busy the thread barely runs. So
/// `hurry_when` runs on the calling thread meanwhile, with a channel that becomes ready
/// when `work` is done, and returns whether the thread must be hurried: put back under the
/// normal policy, at the nice value it inherited, which needs privileges (an unprivileged
/// thread cannot leave `SCHED_IDLE` with the default `RLIMIT_NICE`, hence also a thread per
/// use). Both changes are made from the calling thread, one after the other, before and
/// while `work` runs: a thread under `SCHED_IDLE` is never waited on to make one. Errs only
/// when no thread could be started (and then `work` has not run).
fn in_idle_time<T: Send>(
    work: impl FnOnce() -> T + Send,
    hurry_when: impl FnOnce(&Receiver<()>) -> bool,
) -> std::io::Result<(T, bool)> {
    let (started, running) = crossbeam_channel::bounded(1);
    let (go, gone) = crossbeam_channel::bounded::<()>(1);
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn_scoped(scope, move || {
                let _ = started.send(this_thread());
                let _ = gone.recv();
                let result = work();
                drop(done);
                result
            })?;
        let flush = running.recv();
        let idle = flush.is_ok_and(|flush| match set_idle(flush, true) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "could not store events in idle time (SCHED_IDLE); flushing at the \
                     ledger's priority"
                );
                false
            }
        });
        let _ = go.send(());
        if idle
            && let Ok(flush) = flush
            && hurry_when(&finished)
            && let Err(error) = set_idle(flush, false)
            // A flush that ended meanwhile has nothing to hurry.
            && finished.try_recv() != Err(crossbeam_channel::TryRecvError::Disconnected)
        {
            tracing::warn!(%error, "could not hurry an idle-time flush");
        }
        match thread.join() {
            Ok(result) => Ok((result, idle)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A thread as the scheduler knows it.
#[cfg(target_os = "linux")]
type NativeThread = thread_priority::ThreadId;
#[cfg(not(target_os = "linux"))]
type NativeThread = ();

/// The calling thread.
fn this_thread() -> NativeThread {
    #[cfg(target_os = "linux")]
    {
        thread_priority::thread_native_id()
    }
    #[cfg(not(target_os = "linux"))]
    {}
}

/// Puts thread `thread` (not yet joined) under `SCHED_IDLE`, or back under the normal
/// policy, its nice value unchanged. From a thread of its own: after the policy,
/// `thread-priority` also sets the *calling* thread's nice value (to the one `Min` maps
/// to), which must be neither the ledger's nor the flush's; the policy is then read back,
/// since that second step may fail where the first did not.
fn set_idle(thread: NativeThread, idle: bool) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        let policy = ThreadSchedulePolicy::Normal(if idle {
            NormalThreadSchedulePolicy::Idle
        } else {
            NormalThreadSchedulePolicy::Other
        });
        let set = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("ledger-policy".into())
                .spawn_scoped(scope, || {
                    thread_priority::set_thread_priority_and_policy(
                        thread,
                        ThreadPriority::Min,
                        policy,
                    )
                })
                .map(|setting| setting.join())
        });
        match thread_priority::thread_schedule_policy_param(thread) {
            Ok((now, _)) if now == policy => Ok(()),
            _ => Err(format!("setting {policy:?}: {set:?}")),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (thread, idle);
        Err("scheduling policies need Linux".into())
    }
}

/// Whether this process may lift a thread at the ledger's nice value out of `SCHED_IDLE`.
/// Linux allows it under the same condition as lowering a thread's nice value to the
/// ledger's (`CAP_SYS_NICE`, or `RLIMIT_NICE` of at least 20 - [`LEDGER_NICE`]), which is
/// what is tried, on a thread of its own.
fn idle_flushes_can_be_hurried() -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::setpriority_process;
        let probe = std::thread::Builder::new().spawn(|| {
            let me = Some(rustix::thread::gettid());
            setpriority_process(me, LEDGER_NICE + 1).is_ok()
                && setpriority_process(me, LEDGER_NICE).is_ok()
        });
        probe.is_ok_and(|probe| probe.join().unwrap_or(false))
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Runs `work` on a thread of its own at the ledger's priority and returns its result: threads
/// it starts inherit that priority.
pub fn at_ledger_priority<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            lower_priority();
            work()
        });
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Lowers the calling thread's scheduling priority to [`LEDGER_NICE`] (Linux keeps a nice
/// value per thread). Failing to is logged, not fatal.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), LEDGER_NICE)
    {
        tracing::warn!(%error, "could not lower the ledger thread's priority");
    }
}

/// An audit failure as the ledger reports it: the events stay journaled and are retried.
fn audit_failed(error: burnrate_audit::AuditError) -> StoreError {
    StoreError::Journal {
        path: "audit trail".into(),
        reason: format!("{error}; the calls stay in the journal until it can be written"),
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    /// Field `number` (counted from 1) of the calling thread's `/proc/thread-self/stat`.
    fn own_stat<T: std::str::FromStr<Err: std::fmt::Debug>>(number: usize) -> T {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The fields after the command name (the 2nd, in parentheses, which may hold spaces).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(number - 3).unwrap().parse().unwrap()
    }

    /// The calling thread's nice value.
    fn own_nice() -> i32 {
        own_stat(19)
    }

    /// The calling thread's scheduling policy.
    fn own_policy() -> u32 {
        own_stat(41)
    }

    #[test]
    fn an_idle_time_flush_runs_under_sched_idle_and_leaves_the_caller_alone() {
        const SCHED_IDLE: u32 = 5;
        let before = own_policy();
        assert_ne!(before, SCHED_IDLE);
        let inside = at_ledger_priority(|| {
            let (inside, idle) = in_idle_time(own_policy, |_| false).unwrap();
            assert!(idle);
            assert_eq!(own_policy(), before, "the caller's policy is untouched");
            inside
        });
        assert_eq!(inside, SCHED_IDLE);
    }

    #[test]
    fn an_idle_time_flush_is_hurried_back_to_the_normal_policy_where_it_may_be() {
        const SCHED_OTHER: u32 = 0;
        const SCHED_IDLE: u32 = 5;
        let can_hurry = idle_flushes_can_be_hurried();
        let (entered_tx, entered) = crossbeam_channel::bounded(1);
        let ((first, last, nice), idle) = at_ledger_priority(|| {
            let nice = own_nice();
            let flushed = in_idle_time(
                move || {
                    let first = own_policy();
                    entered_tx.send(()).unwrap();
                    // Waits for the hurry, bounded so a hurry that does not come ends the test.
                    let give_up = Instant::now()
                        + Duration::from_millis(if can_hurry { 60_000 } else { 200 });
                    while own_policy() == SCHED_IDLE && Instant::now() < give_up {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    (first, own_policy(), own_nice())
                },
                |_| {
                    entered.recv().unwrap();
                    true
                },
            )
            .unwrap();
            assert_eq!(
                own_nice(),
                nice,
                "the hurrying thread's priority is untouched"
            );
            flushed
        });
        assert!(idle);
        assert_eq!(first, SCHED_IDLE);
        let expected = if can_hurry { SCHED_OTHER } else { SCHED_IDLE };
        assert_eq!(
            last, expected,
            "hurried where this process may (can_hurry: {can_hurry})"
        );
        assert_eq!(
            nice, LEDGER_NICE,
            "a hurried flush keeps the ledger's nice value"
        );
    }

    #[test]
    fn a_waiting_job_or_stop_or_the_deadline_hurries_a_flush_and_is_left_for_the_loop() {
        let (done, finished) = crossbeam_channel::bounded::<()>(0);
        let (jobs_tx, jobs) = crossbeam_channel::unbounded::<Job>();
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let far = Instant::now() + Duration::from_secs(3600);

        jobs_tx.send(Box::new(|_, _| {})).unwrap();
        assert!(!finished_first(&finished, &jobs, &stop, far), "a job waits");
        assert_eq!(jobs.len(), 1, "the job is left for the loop");
        drop(jobs.try_recv().unwrap());

        stop_tx.send(()).unwrap();
        assert!(
            !finished_first(&finished, &jobs, &stop, far),
            "the stop waits"
        );
        assert_eq!(stop.len(), 1, "the stop is left for the loop");
        stop.try_recv().unwrap();

        assert!(
            !finished_first(&finished, &jobs, &stop, Instant::now()),
            "the flush interval has passed"
        );
        drop(done);
        assert!(
            finished_first(&finished, &jobs, &stop, far),
            "the flush is done"
        );
    }

    #[test]
    fn work_at_ledger_priority_and_the_threads_it_starts_yield_to_calls() {
        let before = own_nice();
        let (inside, started) = at_ledger_priority(|| {
            let started = std::thread::spawn(own_nice).join().unwrap();
            (own_nice(), started)
        });
        assert_eq!(inside, LEDGER_NICE.max(before));
        assert_eq!(started, inside, "a thread it starts inherits the priority");
        assert_eq!(own_nice(), before, "the caller's priority is untouched");
    }
}
