//! Retention: ledger events, audit segments and captured content older than the hot window
//! move to the archive (Parquet per month for events and records, the content files as they
//! are), each checked against its source before the source is deleted; archives past the
//! archive window are deleted. `burnrate retention apply` runs it by hand, `burnrate serve`
//! once a day at `[retention] at`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use burnrate_audit::content::ContentStore;
use burnrate_audit::{AuditRecord, Kind};
use burnrate_store::Store;
use chrono::{Datelike, Months, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::audit::AuditTrail;

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(60);

/// `[retention]`: how long data stays hot, and how long its archive is kept.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Run retention daily inside `burnrate serve`.
    pub enabled: bool,
    /// Months kept in the hot store: nothing younger than this is moved.
    pub hot_months: u32,
    /// Years an archive is kept after it leaves the hot store.
    pub archive_years: u32,
    /// The archive's folder (empty: `archive` beside the store file).
    pub archive_dir: PathBuf,
    /// Time of day (UTC, `HH:MM`) of the daily run.
    pub at: String,
}

impl Default for RetentionConfig {
    fn default() -> RetentionConfig {
        RetentionConfig {
            enabled: true,
            hot_months: 12,
            archive_years: 3,
            archive_dir: PathBuf::new(),
            at: "03:30".into(),
        }
    }
}

impl RetentionConfig {
    /// Problems with the table, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.hot_months < 6 {
            problems.push(format!(
                "retention.hot_months: {} is below 6; the EU AI Act (Art. 19, Art. 26(6)) asks \
                 for logs of at least six months",
                self.hot_months
            ));
        }
        if NaiveTime::parse_from_str(&self.at, "%H:%M").is_err() {
            problems.push(format!(
                "retention.at: `{}` is not a time of day like 03:30",
                self.at
            ));
        }
        problems
    }

    /// The first day of the oldest month kept hot on `today`: the month holding the day
    /// `hot_months` ago, so nothing younger than `hot_months` leaves the hot store.
    pub fn cutoff(&self, today: NaiveDate) -> NaiveDate {
        let back = today
            .checked_sub_months(Months::new(self.hot_months))
            .unwrap_or(NaiveDate::MIN);
        first_of_month(back)
    }

    /// The first month whose archive is kept on `today`.
    pub fn oldest_archived(&self, today: NaiveDate) -> NaiveDate {
        self.cutoff(today)
            .checked_sub_months(Months::new(self.archive_years.saturating_mul(12)))
            .unwrap_or(NaiveDate::MIN)
    }
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// What one retention run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionRun {
    /// Data before this day left the hot store.
    pub cutoff: Option<NaiveDate>,
    /// Ledger months archived: month, file, events.
    pub ledger: Vec<(String, PathBuf, u64)>,
    /// Audit months archived: month, file, records.
    pub audit: Vec<(String, PathBuf, u64)>,
    /// Content day folders moved to the archive.
    pub content_days: usize,
    /// Archive files and folders deleted past the archive window.
    pub expired: Vec<PathBuf>,
}

impl RetentionRun {
    /// One line for logs and the audit record.
    pub fn summary(&self) -> String {
        format!(
            "cutoff {}: {} ledger month(s) ({} events), {} audit month(s) ({} records), {} \
             content day(s) archived; {} expired archive item(s) deleted",
            self.cutoff.map_or_else(String::new, |c| c.to_string()),
            self.ledger.len(),
            self.ledger.iter().map(|m| m.2).sum::<u64>(),
            self.audit.len(),
            self.audit.iter().map(|m| m.2).sum::<u64>(),
            self.content_days,
            self.expired.len()
        )
    }
}

/// Runs retention for `today`: the ledger in `store`, the trail and its content when given.
/// Each month is archived and checked before its source is deleted; an error stops the run
/// with everything not yet checked still in place. The run is recorded on the trail, whether
/// it finished or stopped.
pub fn apply(
    store: &mut dyn Store,
    mut audit: Option<&mut AuditTrail>,
    config: &RetentionConfig,
    archive_root: &Path,
    today: NaiveDate,
) -> Result<RetentionRun, String> {
    let mut run = RetentionRun {
        cutoff: Some(config.cutoff(today)),
        ..RetentionRun::default()
    };
    let outcome = archive_and_expire(
        store,
        audit.as_deref_mut(),
        config,
        archive_root,
        today,
        &mut run,
    );
    if let Some(audit) = audit {
        let (status, detail) = match &outcome {
            Ok(()) => ("ok", run.summary()),
            Err(error) => (
                "error",
                format!("stopped: {error}; done before it: {}", run.summary()),
            ),
        };
        let record = AuditRecord {
            status: Some(status.into()),
            ..crate::audit::decision(Kind::Retention, None, detail)
        };
        audit.decision(record).map_err(|e| e.to_string())?;
    }
    outcome.map(|()| run)
}

fn archive_and_expire(
    store: &mut dyn Store,
    audit: Option<&mut AuditTrail>,
    config: &RetentionConfig,
    archive_root: &Path,
    today: NaiveDate,
    run: &mut RetentionRun,
) -> Result<(), String> {
    let cutoff = config.cutoff(today);
    let oldest = config.oldest_archived(today);
    for month in store
        .archive_before(cutoff, archive_root)
        .map_err(|e| e.to_string())?
    {
        run.ledger.push((month.label(), month.path, month.events));
    }
    run.expired.extend(
        burnrate_store::duck::expire_archives(archive_root, oldest).map_err(|e| e.to_string())?,
    );
    let Some(audit) = audit else {
        return Ok(());
    };
    for month in burnrate_audit::archive::archive_before(audit.dir(), archive_root, cutoff)
        .map_err(|e| e.to_string())?
    {
        run.audit.push((
            month.month.format("%Y-%m").to_string(),
            month.file,
            month.records,
        ));
    }
    run.expired
        .extend(burnrate_audit::archive::expire(archive_root, oldest).map_err(|e| e.to_string())?);
    let archived = ContentStore::new(&archive_root.join("content"));
    for day in audit.content().days().map_err(|e| e.to_string())? {
        if day < cutoff {
            audit
                .content()
                .move_day(day, archived.dir())
                .map_err(|e| e.to_string())?;
            run.content_days += 1;
        }
    }
    for day in archived.days().map_err(|e| e.to_string())? {
        if day < oldest {
            archived.remove_day(day).map_err(|e| e.to_string())?;
            run.expired
                .push(archive_root.join("content").join(day.to_string()));
        }
    }
    Ok(())
}

/// Starts the daily retention run (when `[retention] enabled`).
pub fn spawn_scheduler(state: Arc<AppState>) {
    let tasks = state.tasks.clone();
    tokio::spawn(async move {
        let mut last_run: Option<NaiveDate> = None;
        loop {
            let config = state.config();
            let now = Utc::now();
            let at = NaiveTime::parse_from_str(&config.retention.at, "%H:%M").ok();
            let due = config.retention.enabled
                && at.is_some_and(|at| now.time() >= at)
                && last_run != Some(now.date_naive());
            if due {
                last_run = Some(now.date_naive());
                let retention = config.retention.clone();
                let root = config.archive_dir();
                let today = now.date_naive();
                let ran = state
                    .ledger
                    .with_parts(move |store, audit| apply(store, audit, &retention, &root, today))
                    .await;
                match ran {
                    Ok(Ok(run)) => tracing::info!(summary = %run.summary(), "retention ran"),
                    Ok(Err(error)) => tracing::error!(%error, "retention stopped"),
                    Err(error) => tracing::error!(%error, "retention not run"),
                }
            }
            if crate::app::stopping_after(&tasks, TICK).await {
                return;
            }
        }
    });
}
