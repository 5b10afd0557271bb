//! The report scheduler inside `burnrate serve`: at the configured time each day it writes
//! the daily report for the day before (and on the configured weekday the weekly one, on the
//! first of the month the monthly one) into the reports folder as Markdown, JSON and HTML,
//! then sends a summary with a link to the notifiers.
//!
//! A report whose JSON file already exists is not made again, so a restart neither repeats
//! nor skips one: a gateway started after the hour catches up on the reports for yesterday.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use burnrate_insight::report::{self, Context, Report};
use burnrate_model::Money;
use burnrate_policy::PolicyConfig;
use burnrate_policy::config::{Period, Scope};
use chrono::{Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use serde::Deserialize;

use crate::app::AppState;
use crate::notify::Alert;

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(30);

/// `[reports]`: scheduled reports (off unless `folder` is set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Where the reports are written; no folder, no scheduled reports.
    pub folder: Option<PathBuf>,
    /// Time of day (UTC, `HH:MM`) the reports for the day before are made.
    pub at: String,
    /// Make the daily report.
    pub daily: bool,
    /// The weekday the weekly report (the week ending the day before) is made; none: no
    /// weekly report.
    pub weekly: Option<Weekday>,
    /// Make the monthly report on the first of each month (for the month before).
    pub monthly: bool,
    /// Base URL the folder is served at, for the link in notifications (else the path).
    pub link_base: Option<String>,
}

impl Default for ReportsConfig {
    fn default() -> ReportsConfig {
        ReportsConfig {
            folder: None,
            at: "08:00".into(),
            daily: true,
            weekly: Some(Weekday::Mon),
            monthly: true,
            link_base: None,
        }
    }
}

impl ReportsConfig {
    /// Problems with the table, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.time().is_none() {
            problems.push(format!(
                "reports.at: `{}` is not a time of day like 08:00",
                self.at
            ));
        }
        problems
    }

    fn time(&self) -> Option<NaiveTime> {
        NaiveTime::parse_from_str(&self.at, "%H:%M").ok()
    }

    /// The reports due on `today` at `now` (UTC): kind and the day it is made for.
    pub fn due(&self, now: chrono::DateTime<Utc>) -> Vec<(&'static str, NaiveDate)> {
        let Some(at) = self.time() else {
            return Vec::new();
        };
        let today = now.date_naive();
        if now.time() < at {
            return Vec::new();
        }
        let yesterday = today - Days::new(1);
        let mut due = Vec::new();
        if self.daily {
            due.push(("daily", yesterday));
        }
        if self.weekly == Some(today.weekday()) {
            due.push(("weekly", yesterday));
        }
        if self.monthly && today.day() == 1 {
            due.push(("monthly", yesterday));
        }
        due
    }
}

/// Tenant budgets per month from the policy, by tenant (`*` for every other tenant).
pub fn monthly_budgets(policy: &PolicyConfig) -> BTreeMap<String, Money> {
    policy
        .budgets
        .iter()
        .filter(|rule| rule.scope == Scope::Tenant && rule.period == Period::Month)
        .map(|rule| (rule.id.clone(), rule.limit_usd))
        .collect()
}

/// The file stem of a report: `daily-2026-11-22`.
fn stem(kind: &str, day: NaiveDate) -> String {
    format!("{kind}-{day}")
}

/// Writes a report as `.md`, `.json` and `.html` into `folder` (the JSON last: its presence
/// marks the report done).
pub fn write(folder: &Path, report: &Report) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let stem = stem(report.kind, report.to);
    std::fs::write(folder.join(format!("{stem}.md")), report.markdown())?;
    std::fs::write(folder.join(format!("{stem}.html")), report.html())?;
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    let path = folder.join(format!("{stem}.json"));
    std::fs::write(&path, json)?;
    Ok(folder.join(format!("{stem}.html")))
}

/// The notification for a report: its title, its first sections' lead sentences, a link.
pub fn summary(report: &Report, link: String) -> Alert {
    let text = report
        .sections
        .iter()
        .filter_map(|section| section.lead.as_deref())
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    Alert {
        kind: format!("report_{}", report.kind),
        page: false,
        title: report.title.clone(),
        text,
        tenant: None,
        fields: vec![("full report".into(), link)],
        at: Utc::now(),
    }
}

/// Starts the scheduler (when `[reports] folder` is set at start).
pub fn spawn_scheduler(state: Arc<AppState>) {
    let tasks = state.tasks.clone();
    tokio::spawn(async move {
        loop {
            let config = state.config();
            if let Some(folder) = config.reports.folder.clone() {
                for (kind, day) in config.reports.due(Utc::now()) {
                    if folder.join(format!("{}.json", stem(kind, day))).exists() {
                        continue;
                    }
                    match make(&state, kind, day, &folder).await {
                        Ok(()) => tracing::info!(kind, %day, "report written"),
                        Err(error) => tracing::warn!(kind, %day, %error, "report not made"),
                    }
                }
            }
            if crate::app::stopping_after(&tasks, TICK).await {
                return;
            }
        }
    });
}

/// Builds the `kind` report for `day` from the ledger, with the configured contracts and
/// budgets and the stale-prices warning.
pub async fn build(state: &AppState, kind: &str, day: NaiveDate) -> Result<Report, String> {
    let config = state.config();
    let context = Context {
        contracts: config.contracts.clone(),
        budgets: monthly_budgets(&config.policy),
        ..Context::default()
    };
    let max_age = config.max_price_age_days;
    let kind = kind.to_owned();
    state
        .ledger
        .with_store(move |store| {
            let mut context = context;
            context.warnings = store
                .stale_warning(max_age, Utc::now().date_naive())
                .into_iter()
                .collect();
            report::build(store, &kind, day, &context).ok_or_else(|| format!("no report `{kind}`"))
        })
        .await
        .map_err(|e| e.to_string())?
        .and_then(|built| built.map_err(|e| e.to_string()))
}

async fn make(
    state: &AppState,
    kind: &'static str,
    day: NaiveDate,
    folder: &Path,
) -> Result<(), String> {
    let config = state.config();
    let report = build(state, kind, day).await?;
    let folder = folder.to_path_buf();
    let page = tokio::task::spawn_blocking(move || write(&folder, &report).map(|p| (p, report)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (path, report) = page;
    let link = match &config.reports.link_base {
        Some(base) => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        ),
        None => path.display().to_string(),
    };
    state.notifiers.load().send(summary(&report, link));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn reports_fall_due_at_their_time_weekday_and_first_of_the_month() {
        let config = ReportsConfig::default();
        let at = |text: &str| text.parse::<chrono::DateTime<Utc>>().unwrap();
        // Monday 2026-06-01: every report, for Sunday the 31st.
        assert!(config.due(at("2026-06-01T07:59:00Z")).is_empty());
        let sunday = NaiveDate::from_ymd_opt(2026, 5, 31).unwrap();
        assert_eq!(
            config.due(at("2026-06-01T08:00:00Z")),
            [("daily", sunday), ("weekly", sunday), ("monthly", sunday)]
        );
        // Tuesday the 2nd: the daily one only.
        assert_eq!(config.due(at("2026-06-02T09:00:00Z")).len(), 1);
        let bad = ReportsConfig {
            at: "8am".into(),
            ..ReportsConfig::default()
        };
        assert_eq!(bad.validate().len(), 1);
        assert!(bad.validate()[0].starts_with("reports.at"));
    }
}
