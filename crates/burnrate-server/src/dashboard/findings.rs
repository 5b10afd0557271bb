//! Detector findings of closed days, kept. Finding a day's anomalies reads that day's events
//! (tool loops) and a week of sessions (memory growth): about 460 ms at 10M events, which is
//! too slow for a page people open often, and a closed day's findings rarely change.
//!
//! A day's findings are kept with a fingerprint of what they were computed from: the calls
//! and their cost per model over every day the detectors read (one query on the daily
//! roll-up). Events
//! are only ever added (or archived by the month), so any call arriving late for those days
//! changes the count, and a price change changes the cost: a view whose fingerprint differs
//! computes the findings again. A day none of whose read days has a call has no findings,
//! and the detectors are not run for it. Today's findings are otherwise always computed. A background task keeps
//! the last [`BACKFILL_DAYS`] closed days' findings computed, so views of them read kept ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use burnrate_insight::detectors::{self, Finding, Thresholds};
use burnrate_insight::start_of;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Metric, QuerySpec, Store, StoreError};
use chrono::{Days, NaiveDate, Utc};

use crate::app::AppState;

/// Closed days whose findings the background task keeps computed.
pub const BACKFILL_DAYS: u64 = 30;
/// Days kept at most (a view may ask for an older day); the oldest go first.
const KEPT_DAYS: usize = 62;
/// How often the background task looks for days to compute.
const EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How long after start it first does: the start's own work on the ledger (replaying the
/// journal, the price table update, the first appends) goes first.
const FIRST_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The findings of closed days with the fingerprint of what they were computed from.
#[derive(Debug, Default)]
pub struct KeptFindings {
    days: Mutex<BTreeMap<NaiveDate, (String, Vec<Finding>)>>,
}

impl KeptFindings {
    /// The findings for `day`, most severe first: kept ones while their fingerprint holds,
    /// else computed (and kept when `day` is before `today`).
    pub fn findings(
        &self,
        store: &dyn Store,
        day: NaiveDate,
        today: NaiveDate,
    ) -> Result<Vec<Finding>, StoreError> {
        let thresholds = Thresholds::default();
        let read = calls_read(store, day, &thresholds)?;
        if read.is_empty() {
            // No call in any day the detectors read: nothing to find, and nothing worth
            // keeping (a fresh ledger's month of empty days cost seconds of planning).
            return Ok(Vec::new());
        }
        if day >= today {
            return compute(store, day, &thresholds);
        }
        let fingerprint = format!("{read:?}");
        if let Some((kept, findings)) = self.lock().get(&day)
            && *kept == fingerprint
        {
            return Ok(findings.clone());
        }
        let findings = compute(store, day, &thresholds)?;
        let mut days = self.lock();
        days.insert(day, (fingerprint, findings.clone()));
        while days.len() > KEPT_DAYS {
            days.pop_first();
        }
        Ok(findings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NaiveDate, (String, Vec<Finding>)>> {
        // A panic while holding the lock leaves a whole map: nothing to repair.
        self.days.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every detector's findings for `day`, most severe first.
fn compute(
    store: &dyn Store,
    day: NaiveDate,
    thresholds: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = detectors::all(store, day, thresholds)?;
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.detector.cmp(b.detector)));
    Ok(findings)
}

/// Calls and cost per model over the days the detectors read for `day`, one row per model
/// with calls: the kept findings' fingerprint (per model, so a price change that moves cost
/// between models changes it too).
fn calls_read(
    store: &dyn Store,
    day: NaiveDate,
    thresholds: &Thresholds,
) -> Result<Vec<Vec<burnrate_store::Cell>>, StoreError> {
    let first = detectors::first_day_read(day, thresholds);
    let mut spec = QuerySpec::new(start_of(first), start_of(day + Days::new(1)));
    spec.group_by = vec![Dimension::Field(Field::Model)];
    spec.metrics = vec![Metric::Requests, Metric::CostUsd];
    Ok(store.query(&spec)?.rows)
}

/// Starts the task that keeps the last [`BACKFILL_DAYS`] closed days' findings computed,
/// newest first, one day per turn of the ledger so appends wait for one day at most; the
/// first pass [`FIRST_AFTER`] the start.
pub fn spawn_keeper(state: Arc<AppState>) {
    let tasks = state.tasks.clone();
    tokio::spawn(async move {
        if crate::app::stopping_after(&tasks, FIRST_AFTER).await {
            return;
        }
        loop {
            let today = Utc::now().date_naive();
            let mut days = 0;
            for back in 1..=BACKFILL_DAYS {
                let day = today - Days::new(back);
                let kept = Arc::clone(&state.findings);
                let done = state
                    .ledger
                    .with_store(move |store| kept.findings(store, day, today).map(|_| ()))
                    .await;
                match done {
                    Ok(Ok(())) => days += 1,
                    Ok(Err(error)) => tracing::warn!(%day, %error, "anomaly findings not kept"),
                    Err(error) => {
                        tracing::warn!(%day, %error, "anomaly findings not kept");
                        break;
                    }
                }
                if tasks.is_closed() {
                    return;
                }
            }
            tracing::info!(days, "anomaly findings of the closed days kept");
            if crate::app::stopping_after(&tasks, EVERY).await {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use burnrate_model::UsageEvent;
    use burnrate_model::event::ToolCall;
    use burnrate_store::DuckStore;

    use super::*;

    /// `calls` calls of run `run` on 2026-11-19, each asking for the same tool with the same
    /// arguments.
    fn looping(run: &str, calls: usize) -> Vec<UsageEvent> {
        (0..calls)
            .map(|i| {
                let mut event = UsageEvent::from_json(&format!(
                    r#"{{"ts": "2026-11-19T10:00:{i:02}Z", "provider": "openai", "model": "gpt-4o",
                        "usage": {{"input_tokens": 100, "output_tokens": 10}}}}"#
                ))
                .unwrap();
                event.agent_run_id = Some(run.to_owned());
                event.tenant_id = Some("acme".into());
                event.tool_calls = 1;
                event.tools = vec![ToolCall {
                    name: "search_crm".into(),
                    args_hash: Some("00000000000000aa".into()),
                }];
                event.id = Some(uuid::Uuid::now_v7());
                event
            })
            .collect()
    }

    fn loops(findings: &[Finding]) -> Vec<(String, serde_json::Value)> {
        findings
            .iter()
            .filter(|f| f.detector == "tool_loop")
            .map(|f| (f.subject.clone(), f.evidence["calls"].clone()))
            .collect()
    }

    #[test]
    fn kept_findings_are_computed_again_when_calls_arrive_late() {
        let mut store = DuckStore::open_in_memory().unwrap();
        store.append(&looping("r1", 5)).unwrap();
        let kept = KeptFindings::default();
        let day = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
        let today = day + Days::new(1);
        let first = kept.findings(&store, day, today).unwrap();
        assert_eq!(
            loops(&first),
            vec![("agent_run_id=r1".to_owned(), serde_json::json!(5))]
        );
        assert_eq!(kept.lock().len(), 1, "a closed day's findings are kept");
        assert_eq!(kept.findings(&store, day, today).unwrap(), first);

        // Two more calls of the loop and a second run arrive late for that day.
        store.append(&looping("r1", 7)[5..]).unwrap();
        store.append(&looping("r2", 6)).unwrap();
        let late = kept.findings(&store, day, today).unwrap();
        assert_eq!(
            loops(&late),
            vec![
                ("agent_run_id=r1".to_owned(), serde_json::json!(7)),
                ("agent_run_id=r2".to_owned(), serde_json::json!(6)),
            ]
        );
        assert_eq!(late, compute(&store, day, &Thresholds::default()).unwrap());

        // The day itself, still open, is computed every time and not kept.
        let open = KeptFindings::default();
        assert_eq!(open.findings(&store, day, day).unwrap(), late);
        assert!(open.lock().is_empty());
    }

    #[test]
    fn days_whose_window_has_no_calls_find_nothing_without_the_detectors() {
        let mut store = DuckStore::open_in_memory().unwrap();
        store.append(&looping("r1", 5)).unwrap();
        let kept = KeptFindings::default();
        let calls = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
        let reach = calls - detectors::first_day_read(calls, &Thresholds::default());
        // The last day whose window still holds the calls, and the first that does not.
        let last = calls + reach;
        let today = last + Days::new(10);
        assert_eq!(
            kept.findings(&store, last, today).unwrap(),
            compute(&store, last, &Thresholds::default()).unwrap()
        );
        assert_eq!(
            kept.lock().len(),
            1,
            "a window with calls runs the detectors"
        );
        let after = last + Days::new(1);
        assert_eq!(kept.findings(&store, after, today).unwrap(), vec![]);
        assert_eq!(
            compute(&store, after, &Thresholds::default()).unwrap(),
            vec![]
        );
        assert_eq!(
            kept.lock().len(),
            1,
            "an empty window is not computed or kept"
        );
        let before = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
        assert_eq!(kept.findings(&store, before, today).unwrap(), vec![]);
        assert_eq!(kept.lock().len(), 1);
    }
}
