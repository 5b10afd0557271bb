//! Anomaly detectors. Each looks at one day against what came before it and returns
//! findings that carry their evidence (the numbers) and a command that drills down.

use std::collections::BTreeMap;

use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Metric, Store, StoreError};
use chrono::{Days, NaiveDate};
use serde::Serialize;
use serde_json::json;

use crate::baseline::{Baseline, Window, baselines};
use crate::series::{Windows, start_of, week_over_week, windows};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// A soft alert.
    Warning,
    /// Money is burning now.
    Critical,
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `spend_spike`, `tool_loop`, `prompt_bloat`, `memory_runaway`, `cache_miss_storm`,
    /// `model_drift`.
    pub detector: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The day looked at.
    pub day: NaiveDate,
    /// What it is about: `tenant_id=acme`, `route=/api/triage`, `agent_run_id=run-7`.
    pub subject: String,
    /// One sentence for people.
    pub summary: String,
    /// The numbers behind it.
    pub evidence: serde_json::Value,
    /// A `burnrate query` that shows the numbers (append `--db LEDGER`).
    pub drill_down: String,
}

/// The detectors' thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Days of history the spend and cache detectors compare with.
    pub baseline_days: u64,
    /// A spike is spend above this multiple of the baseline's mean...
    pub spike_ratio: f64,
    /// ...and this many standard deviations above it.
    pub spike_z: f64,
    /// A cache miss storm: a hit rate of at least this over the baseline...
    pub cache_was: f64,
    /// ...falling below this.
    pub cache_now: f64,
    /// Prompt bloat: prompt-layer tokens per call up this share week over week.
    pub bloat: f64,
    /// The loop detector: the same tool with the same arguments this many times in a run.
    pub loop_repeats: u64,
    /// Model drift: a pricier model's share of a route's calls up this much (0.2 = 20 points).
    pub drift: f64,
    /// Calls a route needs in a window before its rates are compared.
    pub min_calls: f64,
    /// Spend in dollars below which a day is never a spike (pennies are not news).
    pub min_spike_usd: f64,
    /// Memory runaway: past sessions a route needs before its p99 is trusted.
    pub min_sessions: u64,
    /// Memory runaway: calls a session needs before its growth counts.
    pub min_session_calls: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            baseline_days: 7,
            spike_ratio: 2.0,
            spike_z: 2.0,
            cache_was: 0.7,
            cache_now: 0.4,
            bloat: 0.10,
            loop_repeats: 5,
            drift: 0.2,
            min_calls: 20.0,
            min_spike_usd: 1.0,
            min_sessions: 20,
            min_session_calls: 3,
        }
    }
}

fn dimension(field: Field) -> Dimension {
    Dimension::Field(field)
}

/// Every detector for `day`: spend spikes per tenant and per feature, tool loops, and the
/// route detectors (prompt bloat, cache miss storms, model drift) per `route`.
pub fn all(store: &dyn Store, day: NaiveDate, t: &Thresholds) -> Result<Vec<Finding>, StoreError> {
    let mut findings = spend_spikes(store, day, Field::Tenant, t)?;
    findings.extend(spend_spikes(store, day, Field::Feature, t)?);
    findings.extend(tool_loops(store, day, t)?);
    findings.extend(prompt_bloat(store, day, Field::Route, t)?);
    findings.extend(memory_runaway(store, day, t)?);
    findings.extend(cache_miss_storms(store, day, Field::Route, t)?);
    findings.extend(model_drift(store, day, Field::Route, t)?);
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.subject.cmp(&b.subject)));
    Ok(findings)
}

/// The first day whose calls [`all`] reads for `day`: the baseline days before it, and two
/// weeks for the week-over-week detector.
pub fn first_day_read(day: NaiveDate, t: &Thresholds) -> NaiveDate {
    day - Days::new(t.baseline_days.max(14))
}

/// Spend of a member of `field` on `day` above `spike_ratio` × its mean over the baseline
/// days and more than `spike_z` standard deviations above it. Members with spend on fewer
/// than half of the baseline days are new, not spiking.
pub fn spend_spikes(
    store: &dyn Store,
    day: NaiveDate,
    field: Field,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let first = day - Days::new(t.baseline_days);
    let baselines = baselines(
        store,
        &dimension(field),
        Metric::CostUsd,
        day,
        Window::Day,
        t.baseline_days,
    )?;
    let mut findings = Vec::new();
    for baseline in baselines {
        let Baseline {
            member,
            value: today,
            mean,
            stddev: deviation,
            history,
            ..
        } = baseline;
        // A member with spend on fewer than half the baseline days is new (ramping up), not
        // spiking: its mean is mostly the zeros from before it started.
        let active = history.iter().filter(|value| **value > 0.0).count() as u64;
        if active * 2 < t.baseline_days || today < t.min_spike_usd || today <= t.spike_ratio * mean
        {
            continue;
        }
        let z = if deviation > 0.0 {
            (today - mean) / deviation
        } else {
            f64::INFINITY
        };
        if z <= t.spike_z {
            continue;
        }
        let name = field.as_str();
        findings.push(Finding {
            detector: "spend_spike",
            severity: if today > 5.0 * t.spike_ratio * mean {
                Severity::Critical
            } else {
                Severity::Warning
            },
            day,
            subject: format!("{name}={member}"),
            summary: format!(
                "{name} {member} spent ${today:.2} on {day}, {:.1}× its {}-day average of ${mean:.2} (z = {})",
                today / mean,
                t.baseline_days,
                if z.is_finite() { format!("{z:.1}") } else { "∞".into() }
            ),
            evidence: json!({
                "spent_usd": today, "mean_usd": mean, "stddev_usd": deviation,
                "ratio": today / mean, "z": if z.is_finite() { json!(z) } else { json!(null) },
                "history_usd": history,
            }),
            drill_down: format!(
                "burnrate query --since {first} --until {} --bucket day --filter {name}={member} --metrics requests,cost_usd,runs,cost_per_run_p99",
                day + Days::new(1)
            ),
        });
    }
    Ok(findings)
}

/// Runs that asked for the same tool with the same normalised arguments `loop_repeats` or
/// more times on `day`.
pub fn tool_loops(
    store: &dyn Store,
    day: NaiveDate,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let repeats =
        store.tool_repeats(start_of(day), start_of(day + Days::new(1)), t.loop_repeats)?;
    Ok(repeats
        .into_iter()
        .map(|repeat| Finding {
            detector: "tool_loop",
            severity: Severity::Critical,
            day,
            subject: format!("agent_run_id={}", repeat.agent_run_id),
            summary: format!(
                "run {} of tenant {} called `{}` {} times with the same arguments ({} to {})",
                repeat.agent_run_id,
                repeat.tenant_id.as_deref().unwrap_or("(untagged)"),
                repeat.tool,
                repeat.calls,
                repeat.first.format("%H:%M:%S"),
                repeat.last.format("%H:%M:%S"),
            ),
            evidence: json!({
                "tenant_id": repeat.tenant_id, "feature": repeat.feature, "tool": repeat.tool,
                "args_hash": repeat.args_hash, "calls": repeat.calls,
                "first": repeat.first, "last": repeat.last,
            }),
            drill_down: format!(
                "burnrate query --since {day} --until {} --group-by agent_run_id --filter agent_run_id={} --metrics requests,tool_calls,cost_usd",
                day + Days::new(1),
                repeat.agent_run_id
            ),
        })
        .collect())
}

/// Routes whose sessions started on `day` grew their memory-layer tokens (from the first call
/// to the peak) beyond the 99th percentile of the route's sessions over the baseline days: a
/// conversation history carried whole from call to call, a summarisation step gone missing.
/// One finding per route, its worst sessions as evidence.
pub fn memory_runaway(
    store: &dyn Store,
    day: NaiveDate,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let first = day - Days::new(t.baseline_days);
    let sessions = store.memory_growth(
        start_of(first),
        start_of(day),
        start_of(day + Days::new(1)),
        t.min_session_calls,
        t.min_sessions,
    )?;
    let mut routes: BTreeMap<String, Vec<&burnrate_store::SessionGrowth>> = BTreeMap::new();
    for session in &sessions {
        routes
            .entry(session.route.clone())
            .or_default()
            .push(session);
    }
    let name = Field::Route.as_str();
    Ok(routes
        .into_iter()
        .map(|(route, sessions)| {
            let worst = sessions[0];
            let shown: Vec<serde_json::Value> = sessions
                .iter()
                .take(10)
                .map(|s| {
                    json!({"session": s.session, "tenant_id": s.tenant_id, "calls": s.calls,
                           "first_memory_tokens": s.first_memory,
                           "peak_memory_tokens": s.peak_memory, "growth": s.growth()})
                })
                .collect();
            Finding {
                detector: "memory_runaway",
                severity: Severity::Warning,
                day,
                subject: format!("{name}={route}"),
                summary: format!(
                    "{name} {route}: {} session(s) grew their memory past the route's usual;                      the worst, {} of tenant {}, went from {} to {} memory tokens in {} calls                      (p99 growth of {} past sessions: {})",
                    sessions.len(),
                    worst.session,
                    worst.tenant_id.as_deref().unwrap_or("(untagged)"),
                    worst.first_memory,
                    worst.peak_memory,
                    worst.calls,
                    worst.past_sessions,
                    worst.usual_p99
                ),
                evidence: json!({"sessions_beyond": sessions.len(),
                                 "usual_growth_p99": worst.usual_p99,
                                 "past_sessions": worst.past_sessions, "sessions": shown}),
                drill_down: format!(
                    "burnrate query --since {first} --until {} --bucket day --filter {name}={route} --metrics requests,memory_tokens_per_call,prompt_tokens_per_call,cost_usd",
                    day + Days::new(1)
                ),
            }
        })
        .collect())
}

/// Per member of `field`: the metrics over the baseline days before `day` and on `day`.
fn before_and_on(
    store: &dyn Store,
    day: NaiveDate,
    group_by: &[Dimension],
    metrics: &[Metric],
    t: &Thresholds,
) -> Result<Windows, StoreError> {
    windows(
        store,
        group_by,
        metrics,
        [
            (start_of(day - Days::new(t.baseline_days)), start_of(day)),
            (start_of(day), start_of(day + Days::new(1))),
        ],
    )
}

fn value(values: &[Option<f64>], index: usize) -> Option<f64> {
    values.get(index).copied().flatten()
}

/// A route whose cache hit rate was at least `cache_was` over the baseline days and is
/// below `cache_now` on `day`: a prompt prefix changed, a cache key broke.
pub fn cache_miss_storms(
    store: &dyn Store,
    day: NaiveDate,
    field: Field,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let metrics = [Metric::CacheHitRate, Metric::Requests, Metric::CostUsd];
    let joined = before_and_on(store, day, &[dimension(field)], &metrics, t)?;
    let mut findings = Vec::new();
    for (keys, [before, on]) in joined {
        let (Some(was), Some(now), Some(calls)) = (value(&before, 0), value(&on, 0), value(&on, 1))
        else {
            continue;
        };
        if was < t.cache_was || now >= t.cache_now || calls < t.min_calls {
            continue;
        }
        let member = keys.join(",");
        let name = field.as_str();
        findings.push(Finding {
            detector: "cache_miss_storm",
            severity: Severity::Warning,
            day,
            subject: format!("{name}={member}"),
            summary: format!(
                "{name} {member}: cache hit rate fell from {:.0}% to {:.0}% on {day}",
                was * 100.0,
                now * 100.0
            ),
            evidence: json!({"hit_rate_before": was, "hit_rate": now, "requests": calls,
                             "cost_usd": value(&on, 2)}),
            drill_down: format!(
                "burnrate query --since {} --until {} --bucket day --filter {name}={member} --metrics requests,cache_hit_rate,cost_usd,naive_cost_usd",
                day - Days::new(t.baseline_days),
                day + Days::new(1)
            ),
        });
    }
    Ok(findings)
}

/// A route whose prompt-layer tokens per call grew `bloat` or more week over week (the week
/// ending on `day` against the week before it).
pub fn prompt_bloat(
    store: &dyn Store,
    day: NaiveDate,
    field: Field,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let metrics = [Metric::PromptTokensPerCall, Metric::Requests];
    let week_end = day + Days::new(1);
    let weeks = week_over_week(store, &[dimension(field)], &metrics, day)?;
    let mut findings = Vec::new();
    for (keys, [before, now]) in weeks {
        let (Some(was), Some(is), Some(calls_was), Some(calls_now)) = (
            value(&before, 0),
            value(&now, 0),
            value(&before, 1),
            value(&now, 1),
        ) else {
            continue;
        };
        if was <= 0.0 || calls_was < t.min_calls || calls_now < t.min_calls {
            continue;
        }
        let growth = is / was - 1.0;
        if growth < t.bloat {
            continue;
        }
        let member = keys.join(",");
        let name = field.as_str();
        findings.push(Finding {
            detector: "prompt_bloat",
            severity: Severity::Info,
            day,
            subject: format!("{name}={member}"),
            summary: format!(
                "{name} {member}: prompt tokens per call up {:.0}% week over week ({was:.0} → {is:.0})",
                growth * 100.0
            ),
            evidence: json!({"prompt_tokens_per_call_before": was, "prompt_tokens_per_call": is,
                             "growth": growth, "requests": calls_now}),
            drill_down: format!(
                "burnrate query --since {} --until {week_end} --bucket day --filter {name}={member} --metrics requests,prompt_tokens_per_call,memory_tokens_per_call",
                week_end - Days::new(14)
            ),
        });
    }
    Ok(findings)
}

/// A route whose share of calls moved to a pricier model: a model costing more per call than
/// the route's usual gained `drift` or more of the route's calls on `day`.
pub fn model_drift(
    store: &dyn Store,
    day: NaiveDate,
    field: Field,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let metrics = [Metric::Requests, Metric::CostUsd];
    let joined = before_and_on(
        store,
        day,
        &[dimension(field), dimension(Field::Model)],
        &metrics,
        t,
    )?;
    // Per route: calls and cost before and on the day, and per model.
    #[derive(Default)]
    struct Route {
        calls: [f64; 2],
        cost: [f64; 2],
        models: BTreeMap<String, ([f64; 2], [f64; 2])>,
    }
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();
    for (keys, windows) in joined {
        let [route, model] = keys.as_slice() else {
            continue;
        };
        let entry = routes.entry(route.clone()).or_default();
        let per_model = entry.models.entry(model.clone()).or_default();
        for (window, values) in windows.iter().enumerate() {
            let calls = value(values, 0).unwrap_or(0.0);
            let cost = value(values, 1).unwrap_or(0.0);
            entry.calls[window] += calls;
            entry.cost[window] += cost;
            per_model.0[window] += calls;
            per_model.1[window] += cost;
        }
    }
    let mut findings = Vec::new();
    let name = field.as_str();
    for (route, totals) in routes {
        if totals.calls[0] < t.min_calls || totals.calls[1] < t.min_calls {
            continue;
        }
        let usual_per_call = totals.cost[0] / totals.calls[0];
        for (model, (calls, cost)) in &totals.models {
            let share_before = calls[0] / totals.calls[0];
            let share_now = calls[1] / totals.calls[1];
            let per_call = (cost[0] + cost[1]) / (calls[0] + calls[1]).max(1.0);
            if share_now - share_before < t.drift || per_call <= usual_per_call {
                continue;
            }
            findings.push(Finding {
                detector: "model_drift",
                severity: Severity::Warning,
                day,
                subject: format!("{name}={route}"),
                summary: format!(
                    "{name} {route}: {model} went from {:.0}% to {:.0}% of calls on {day}; it costs {:.1}× the route's usual per call",
                    share_before * 100.0,
                    share_now * 100.0,
                    per_call / usual_per_call.max(f64::MIN_POSITIVE)
                ),
                evidence: json!({"model": model, "share_before": share_before,
                                 "share": share_now, "cost_per_call_usd": per_call,
                                 "route_cost_per_call_before_usd": usual_per_call}),
                drill_down: format!(
                    "burnrate query --since {} --until {} --bucket day --group-by model --filter {name}={route} --metrics requests,cost_usd,share_of_cost",
                    day - Days::new(t.baseline_days),
                    day + Days::new(1)
                ),
            });
        }
    }
    Ok(findings)
}
