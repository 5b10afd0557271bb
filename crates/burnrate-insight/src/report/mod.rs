//! The scheduled reports: daily anomalies, weekly margin drift, monthly leadership roll-up.
//! Each is built from store queries into a small document (sections of a lead sentence, a
//! table and a bar chart) plus its numbers as JSON, and renders as Markdown, JSON or HTML.
//! Every report leads with shares, percentiles and the long tail, not means.

mod render;

pub use render::is_numeric_cell;

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Metric, Store, StoreError};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use crate::baseline::{Window, baselines};
use crate::detectors::{self, Finding, Severity, Thresholds};
use crate::economics::cache_economics;
use crate::forecast::forecasts;
use crate::longtail::long_tail;
use crate::margins::{Contract, Kind, Margins, Segment, SegmentRules, margins};
use crate::series::{dollars, month_of, start_of, totals, week_over_week};

/// A rendered-agnostic report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `daily`, `weekly` or `monthly`.
    pub kind: &'static str,
    /// The heading.
    pub title: String,
    /// First day covered.
    pub from: NaiveDate,
    /// Last day covered.
    pub to: NaiveDate,
    /// Warnings every reader must see (a stale price table).
    pub warnings: Vec<String>,
    /// The sections, in reading order.
    pub sections: Vec<Section>,
    /// The numbers behind the sections, for machines.
    pub data: serde_json::Value,
}

/// One section: a lead sentence, a chart, a table.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// The sentence to read first.
    pub lead: Option<String>,
    /// A bar chart.
    pub chart: Option<Chart>,
    /// A table.
    pub table: Option<Table>,
}

/// A table of text cells.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

/// A horizontal bar chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// What it shows (the SVG's accessible name).
    pub title: String,
    /// `$` for dollars, `%` for shares.
    pub unit: &'static str,
    /// Label and value per bar.
    pub bars: Vec<(String, f64)>,
}

impl Chart {
    fn format(&self, value: f64) -> String {
        bar_caption(self.unit, value)
    }
}

/// A bar's value as its chart's unit (`$` dollars, `%` a share) shows it.
pub fn bar_caption(unit: &str, value: f64) -> String {
    match unit {
        "$" => usd(value),
        "%" => format!("{:.1}%", value * 100.0),
        _ => format!("{value:.2}"),
    }
}

/// What the reports need besides the ledger.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Tenant contracts.
    pub contracts: Vec<Contract>,
    /// Monthly budget per tenant.
    pub budgets: BTreeMap<String, Money>,
    /// Detector thresholds.
    pub thresholds: Thresholds,
    /// Segment thresholds.
    pub rules: SegmentRules,
    /// Warnings to carry (a stale price table).
    pub warnings: Vec<String>,
}

fn usd(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("${value:.0}")
    } else {
        format!("${value:.2}")
    }
}

fn share(value: Option<f64>) -> String {
    value.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn tenant() -> Dimension {
    Dimension::Field(Field::Tenant)
}

fn route() -> Dimension {
    Dimension::Field(Field::Route)
}

/// Findings of every day in `first..=last`.
fn findings_over(
    store: &dyn Store,
    first: NaiveDate,
    last: NaiveDate,
    t: &Thresholds,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let mut day = first;
    while day <= last {
        findings.extend(detectors::all(store, day, t)?);
        day = day + Days::new(1);
    }
    Ok(findings)
}

fn findings_section(findings: &[Finding]) -> Section {
    Section {
        title: "Detector findings".into(),
        lead: Some(format!("{} finding(s).", findings.len())),
        chart: None,
        table: Some(Table {
            headers: ["day", "severity", "detector", "subject", "finding"]
                .map(String::from)
                .to_vec(),
            rows: findings
                .iter()
                .map(|f| {
                    vec![
                        f.day.to_string(),
                        format!("{:?}", f.severity).to_lowercase(),
                        f.detector.into(),
                        f.subject.clone(),
                        f.summary.clone(),
                    ]
                })
                .collect(),
        }),
    }
}

fn tail_section(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Section, serde_json::Value), StoreError> {
    let tail = long_tail(store, &tenant(), since, until, &[])?;
    let section = Section {
        title: "Who holds the spend".into(),
        lead: Some(format!(
            "{}. {} tenant(s) hold half of it, {} hold 80%.",
            tail.sentence(),
            tail.members_for_half,
            tail.members_for_80,
        )),
        chart: Some(Chart {
            title: "Share of spend, top tenants".into(),
            unit: "%",
            bars: tail
                .members
                .iter()
                .take(10)
                .map(|m| (m.name.clone(), m.share))
                .collect(),
        }),
        table: None,
    };
    Ok((section, serde_json::to_value(&tail).unwrap_or_default()))
}

/// The report named `kind` (`daily`, `weekly`, `monthly`) for `day`; `None` for another name.
pub fn build(
    store: &dyn Store,
    kind: &str,
    day: NaiveDate,
    context: &Context,
) -> Option<Result<Report, StoreError>> {
    Some(match kind {
        "daily" => daily(store, day, context),
        "weekly" => weekly(store, day, context),
        "monthly" => monthly(store, day, context),
        _ => return None,
    })
}

/// One row of the daily report's top tenants.
#[derive(Debug, Clone, Serialize)]
struct TopTenant {
    tenant_id: String,
    cost_usd: f64,
    yesterday_usd: f64,
    requests: f64,
    cost_per_run_p50_usd: Option<f64>,
    cost_per_run_p99_usd: Option<f64>,
}

/// The daily anomaly report for `day`.
pub fn daily(store: &dyn Store, day: NaiveDate, context: &Context) -> Result<Report, StoreError> {
    let since = start_of(day);
    let until = start_of(day + Days::new(1));
    let t = &context.thresholds;
    let (tail, tail_data) = tail_section(store, since, until)?;
    // Top tenants with the day-over-day change.
    let today = totals(
        store,
        &[tenant()],
        &[
            Metric::CostUsd,
            Metric::Requests,
            Metric::CostPerRunP50,
            Metric::CostPerRunP99,
        ],
        since,
        until,
    )?;
    let yesterday: BTreeMap<Vec<String>, f64> = totals(
        store,
        &[tenant()],
        &[Metric::CostUsd],
        start_of(day - Days::new(1)),
        since,
    )?
    .into_iter()
    .map(|(keys, values)| (keys, values.first().copied().flatten().unwrap_or(0.0)))
    .collect();
    let mut top: Vec<TopTenant> = today
        .into_iter()
        .map(|(keys, values)| {
            let at = |index: usize| values.get(index).copied().flatten();
            TopTenant {
                yesterday_usd: yesterday.get(&keys).copied().unwrap_or(0.0),
                tenant_id: keys.join(","),
                cost_usd: at(0).unwrap_or(0.0),
                requests: at(1).unwrap_or(0.0),
                cost_per_run_p50_usd: at(2),
                cost_per_run_p99_usd: at(3),
            }
        })
        .collect();
    top.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(a.tenant_id.cmp(&b.tenant_id))
    });
    top.truncate(10);
    let top_section = Section {
        title: "Top 10 tenants by spend".into(),
        lead: None,
        chart: Some(Chart {
            title: "Spend today".into(),
            unit: "$",
            bars: top
                .iter()
                .map(|t| (t.tenant_id.clone(), t.cost_usd))
                .collect(),
        }),
        table: Some(Table {
            headers: [
                "tenant",
                "spend",
                "yesterday",
                "change",
                "calls",
                "run p50",
                "run p99",
            ]
            .map(String::from)
            .to_vec(),
            rows: top
                .iter()
                .map(|t| {
                    let change = if t.yesterday_usd > 0.0 {
                        format!("{:+.0}%", (t.cost_usd / t.yesterday_usd - 1.0) * 100.0)
                    } else {
                        "new".into()
                    };
                    vec![
                        t.tenant_id.clone(),
                        usd(t.cost_usd),
                        usd(t.yesterday_usd),
                        change,
                        format!("{:.0}", t.requests),
                        t.cost_per_run_p50_usd.map_or("—".into(), usd),
                        t.cost_per_run_p99_usd.map_or("—".into(), usd),
                    ]
                })
                .collect(),
        }),
    };
    // Routes well above their own baseline.
    let mut hot: Vec<_> = baselines(
        store,
        &route(),
        Metric::CostUsd,
        day,
        Window::Day,
        t.baseline_days,
    )?
    .into_iter()
    .filter(|b| b.z.is_some_and(|z| z > t.spike_z))
    .collect();
    hot.truncate(5);
    let routes_section = Section {
        title: "Routes above their 7-day baseline (z > 2)".into(),
        lead: None,
        chart: None,
        table: Some(Table {
            headers: ["route", "spend", "7-day mean", "z"]
                .map(String::from)
                .to_vec(),
            rows: hot
                .iter()
                .map(|b| {
                    vec![
                        b.member.clone(),
                        usd(b.value),
                        usd(b.mean),
                        format!("{:.1}", b.z.unwrap_or_default()),
                    ]
                })
                .collect(),
        }),
    };
    // Cache hit rates under 40%.
    let cache = totals(
        store,
        &[route()],
        &[Metric::CacheHitRate, Metric::Requests],
        since,
        until,
    )?;
    let cold: Vec<Vec<String>> = cache
        .iter()
        .filter(|(_, v)| {
            v.first()
                .copied()
                .flatten()
                .is_some_and(|r| r < t.cache_now)
                && v.get(1).copied().flatten().unwrap_or(0.0) >= t.min_calls
        })
        .map(|(keys, v)| {
            vec![
                keys.join(","),
                share(v.first().copied().flatten()),
                format!("{:.0}", v.get(1).copied().flatten().unwrap_or(0.0)),
            ]
        })
        .collect();
    let cache_section = Section {
        title: "Cache hit rate under 40%".into(),
        lead: None,
        chart: None,
        table: Some(Table {
            headers: ["route", "hit rate", "calls"].map(String::from).to_vec(),
            rows: cold,
        }),
    };
    let findings = detectors::all(store, day, t)?;
    let runaways: std::collections::BTreeSet<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .filter_map(crate::margins::finding_tenant)
        .collect();
    let mut findings_part = findings_section(&findings);
    if !runaways.is_empty() {
        findings_part.lead = Some(format!(
            "{} finding(s). Runaway tenant(s), burning money now: {}.",
            findings.len(),
            runaways.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let data = json!({
        "runaway_tenants": runaways,
        "long_tail": tail_data,
        "top_tenants": top,
        "hot_routes": hot,
        "findings": findings,
    });
    Ok(Report {
        kind: "daily",
        title: format!("Daily anomaly report, {day}"),
        from: day,
        to: day,
        warnings: context.warnings.clone(),
        sections: vec![
            tail,
            top_section,
            findings_part,
            routes_section,
            cache_section,
        ],
        data,
    })
}

fn first(values: &[Option<f64>]) -> Option<f64> {
    values.first().copied().flatten()
}

fn change(before: Option<f64>, now: Option<f64>) -> String {
    match (before, now) {
        (Some(b), Some(n)) if b > 0.0 => format!("{:+.1}%", (n / b - 1.0) * 100.0),
        _ => "—".into(),
    }
}

/// Agent roles in multi-agent runs: each agent's share of the runs it took part in, the
/// `limit` largest.
pub fn roles_section(roles: &[crate::roles::RoleShare], limit: usize) -> Section {
    let rows: Vec<Vec<String>> = roles
        .iter()
        .take(limit)
        .map(|role| {
            vec![
                role.agent_name
                    .clone()
                    .unwrap_or_else(|| "(unnamed)".into()),
                role.depth.map_or("—".into(), |d| d.to_string()),
                role.runs.to_string(),
                usd(dollars(role.cost_usd)),
                share(role.share_of_run_cost),
                share(role.median_share),
            ]
        })
        .collect();
    let lead = roles.first().map(|top| {
        format!(
            "{} (depth {}) takes {} of the cost of the runs it is in.",
            top.agent_name.as_deref().unwrap_or("(unnamed)"),
            top.depth.map_or("—".into(), |d| d.to_string()),
            share(top.share_of_run_cost)
        )
    });
    Section {
        title: "Agent roles in multi-agent runs".into(),
        lead,
        chart: None,
        table: Some(Table {
            headers: [
                "agent",
                "depth",
                "runs",
                "cost",
                "share of its runs",
                "median per run",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }),
    }
}

/// The weekly margin-drift report for the week ending on `day`.
pub fn weekly(store: &dyn Store, day: NaiveDate, context: &Context) -> Result<Report, StoreError> {
    let end = day + Days::new(1);
    let week = (start_of(end - Days::new(7)), start_of(end));
    let before = (start_of(end - Days::new(14)), start_of(end - Days::new(7)));
    let (tail, tail_data) = tail_section(store, week.0, week.1)?;
    let roles = crate::roles::agent_roles(store, week.0, week.1, &[])?;
    let per_outcome = week_over_week(store, &[route()], &[Metric::CostPerOutcome], day)?;
    let outcome_rows: Vec<Vec<String>> = per_outcome
        .iter()
        .filter(|(_, [_, now])| first(now).is_some())
        .map(|(keys, [was, now])| {
            vec![
                keys.join(","),
                first(was).map_or("—".into(), usd),
                first(now).map_or("—".into(), usd),
                change(first(was), first(now)),
            ]
        })
        .collect();
    let prompt = week_over_week(store, &[route()], &[Metric::PromptTokensPerCall], day)?;
    let prompt_rows: Vec<Vec<String>> = prompt
        .iter()
        .filter(|(_, [_, now])| first(now).is_some())
        .map(|(keys, [was, now])| {
            vec![
                keys.join(","),
                first(was).map_or("—".into(), |v| format!("{v:.0}")),
                first(now).map_or("—".into(), |v| format!("{v:.0}")),
                change(first(was), first(now)),
            ]
        })
        .collect();
    // Model mix: each model's share of a route's calls, this week against last.
    let mix = week_over_week(
        store,
        &[route(), Dimension::Field(Field::Model)],
        &[Metric::Requests],
        day,
    )?;
    let mut route_calls: BTreeMap<String, [f64; 2]> = BTreeMap::new();
    for (keys, windows) in &mix {
        let entry = route_calls.entry(keys[0].clone()).or_default();
        for (index, values) in windows.iter().enumerate() {
            entry[index] += first(values).unwrap_or(0.0);
        }
    }
    let mut mix_rows: Vec<(f64, Vec<String>)> = mix
        .iter()
        .map(|(keys, windows)| {
            let calls = route_calls.get(&keys[0]).copied().unwrap_or_default();
            let shares: Vec<Option<f64>> = (0..2)
                .map(|i| (calls[i] > 0.0).then(|| first(&windows[i]).unwrap_or(0.0) / calls[i]))
                .collect();
            let delta = shares[1].unwrap_or(0.0) - shares[0].unwrap_or(0.0);
            (
                delta,
                vec![
                    keys[0].clone(),
                    keys[1].clone(),
                    share(shares[0]),
                    share(shares[1]),
                    format!("{:+.1} pts", delta * 100.0),
                ],
            )
        })
        .collect();
    mix_rows.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    let this_week = margins(
        store,
        &context.contracts,
        &[],
        week.0,
        week.1,
        context.rules,
    )?;
    let last_week = margins(
        store,
        &context.contracts,
        &[],
        before.0,
        before.1,
        context.rules,
    )?;
    let last: BTreeMap<&str, Option<f64>> = last_week
        .tenants
        .iter()
        .map(|t| (t.tenant.as_str(), t.margin))
        .collect();
    let margin_rows: Vec<Vec<String>> = this_week
        .tenants
        .iter()
        .map(|t| {
            let was = last.get(t.tenant.as_str()).copied().flatten();
            vec![
                t.tenant.clone(),
                usd(dollars(t.revenue_usd)),
                usd(dollars(t.cost_usd)),
                share(t.margin),
                share(was),
                match (was, t.margin) {
                    (Some(w), Some(n)) => format!("{:+.1} pts", (n - w) * 100.0),
                    _ => "—".into(),
                },
            ]
        })
        .collect();
    let table = |headers: &[&str], rows| {
        Some(Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        })
    };
    Ok(Report {
        kind: "weekly",
        title: format!("Weekly margin drift, week ending {day}"),
        from: day - Days::new(6),
        to: day,
        warnings: context.warnings.clone(),
        sections: vec![
            tail,
            Section {
                title: "Margin per tenant".into(),
                lead: Some(format!(
                    "Portfolio gross margin {} this week (revenue {}, cost {}), {} the week before.",
                    share(this_week.margin),
                    usd(dollars(this_week.revenue_usd)),
                    usd(dollars(this_week.cost_usd)),
                    share(last_week.margin)
                )),
                chart: None,
                table: table(
                    &["tenant", "revenue", "cost", "margin", "last week", "change"],
                    margin_rows,
                ),
            },
            Section {
                title: "Cost per successful outcome by route".into(),
                lead: None,
                chart: None,
                table: table(&["route", "last week", "this week", "change"], outcome_rows),
            },
            Section {
                title: "Model mix shift".into(),
                lead: None,
                chart: None,
                table: table(
                    &["route", "model", "last week", "this week", "change"],
                    mix_rows.into_iter().take(20).map(|(_, row)| row).collect(),
                ),
            },
            Section {
                title: "Prompt length per call by route".into(),
                lead: None,
                chart: None,
                table: table(&["route", "last week", "this week", "change"], prompt_rows),
            },
            roles_section(&roles, 15),
        ],
        data: json!({"long_tail": tail_data, "margins": this_week, "margins_last_week": last_week,
                     "agent_roles": roles}),
    })
}

/// The monthly leadership roll-up for the month of `day`, up to the end of `day`.
pub fn monthly(store: &dyn Store, day: NaiveDate, context: &Context) -> Result<Report, StoreError> {
    let (first_day, month_end) = month_of(day);
    let since = start_of(first_day);
    let until = start_of(month_end.min(day + Days::new(1)));
    let (tail, tail_data) = tail_section(store, since, until)?;
    let findings = findings_over(store, first_day, day, &context.thresholds)?;
    // Margins over the whole month: bundled fees are monthly.
    let book = margins(
        store,
        &context.contracts,
        &findings,
        since,
        start_of(month_end),
        context.rules,
    )?;
    let savings = cache_economics(store, None, since, until)?;
    let forecast = forecasts(store, day, &context.budgets)?;
    let title = format!("Monthly roll-up, {}", first_day.format("%B %Y"));
    let sections =
        vec![
        tail,
        profitability(&book),
        segments(&book),
        Section {
            title: "Cache savings".into(),
            lead: savings.first().map(|s| {
                format!(
                    "Caching saved {} this month: real cost {}, {} at list input prices; a \
                     dashboard pricing cached tokens as uncached would over-report by {}.",
                    usd(dollars(s.saved_usd)),
                    usd(dollars(s.cost_usd)),
                    usd(dollars(s.naive_cost_usd)),
                    share(s.over_report)
                )
            }),
            chart: None,
            table: None,
        },
        Section {
            title: "Forecast against budget".into(),
            lead: Some(
                "Month-to-date spend plus the last 7 days' mean daily spend for each day left, \
                 with a ±1.96σ band."
                    .into(),
            ),
            chart: None,
            table: Some(Table {
                headers: ["tenant", "to date", "projected", "band", "budget", "over"]
                    .map(String::from)
                    .to_vec(),
                rows: forecast
                    .iter()
                    .take(20)
                    .map(|f| {
                        vec![
                            f.tenant.clone(),
                            usd(f.month_to_date_usd),
                            usd(f.projected_usd),
                            format!("{}–{}", usd(f.low_usd), usd(f.high_usd)),
                            f.budget_usd.map_or("—".into(), |b| usd(dollars(b))),
                            if f.over_budget { "yes".into() } else { "".into() },
                        ]
                    })
                    .collect(),
            }),
        },
        findings_section(&findings),
    ];
    Ok(Report {
        kind: "monthly",
        title,
        from: first_day,
        to: day,
        warnings: context.warnings.clone(),
        sections,
        data: json!({"long_tail": tail_data, "margins": book, "cache": savings,
                     "forecast": forecast, "findings": findings}),
    })
}

/// Profitability per tenant: revenue, cost and gross margin, lowest margin first.
pub fn profitability(book: &Margins) -> Section {
    Section {
        title: "Profitability per tenant".into(),
        lead: Some(format!(
            "Revenue {} against cost {}: portfolio gross margin {}.",
            usd(dollars(book.revenue_usd)),
            usd(dollars(book.cost_usd)),
            share(book.margin)
        )),
        chart: Some(Chart {
            title: "Gross margin, lowest first".into(),
            unit: "%",
            bars: book
                .tenants
                .iter()
                .take(12)
                .map(|t| (t.tenant.clone(), t.margin.unwrap_or(0.0)))
                .collect(),
        }),
        table: Some(Table {
            headers: [
                "tenant", "segment", "contract", "users", "revenue", "cost", "margin",
            ]
            .map(String::from)
            .to_vec(),
            rows: book
                .tenants
                .iter()
                .map(|t| {
                    vec![
                        t.tenant.clone(),
                        segment_name(t.segment).into(),
                        t.kind.map_or("—", kind_name).into(),
                        t.users.to_string(),
                        usd(dollars(t.revenue_usd)),
                        usd(dollars(t.cost_usd)),
                        share(t.margin),
                    ]
                })
                .collect(),
        }),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::PassThrough => "pass_through",
        Kind::Bundled => "bundled",
        Kind::Outcome => "outcome",
    }
}

fn segment_name(segment: Segment) -> &'static str {
    match segment {
        Segment::Healthy => "healthy",
        Segment::PowerUser => "power user",
        Segment::Runaway => "runaway",
        Segment::NoContract => "no contract",
    }
}

fn segments(book: &Margins) -> Section {
    let mut rows: BTreeMap<Segment, (Vec<&str>, Money, Money)> = BTreeMap::new();
    for t in &book.tenants {
        let row = rows.entry(t.segment).or_default();
        row.0.push(&t.tenant);
        row.1 += t.revenue_usd;
        row.2 += t.cost_usd;
    }
    let mut power = book.in_segment(Segment::PowerUser);
    power.sort_unstable();
    let mut runaway = book.in_segment(Segment::Runaway);
    runaway.sort_unstable();
    Section {
        title: "Segments".into(),
        lead: Some(format!(
            "{} power user(s) should move up a tier ({}); {} runaway(s) burn money through a \
             bug ({}).",
            power.len(),
            if power.is_empty() {
                "none".into()
            } else {
                power.join(", ")
            },
            runaway.len(),
            if runaway.is_empty() {
                "none".into()
            } else {
                runaway.join(", ")
            },
        )),
        chart: None,
        table: Some(Table {
            headers: ["segment", "tenants", "revenue", "cost", "margin", "members"]
                .map(String::from)
                .to_vec(),
            rows: rows
                .iter()
                .map(|(segment, (members, revenue, cost))| {
                    vec![
                        segment_name(*segment).into(),
                        members.len().to_string(),
                        usd(dollars(*revenue)),
                        usd(dollars(*cost)),
                        share((*revenue - *cost).ratio(*revenue)),
                        if members.len() > 8 {
                            format!(
                                "{}, … ({} more)",
                                members[..8].join(", "),
                                members.len() - 8
                            )
                        } else {
                            members.join(", ")
                        },
                    ]
                })
                .collect(),
        }),
    }
}
