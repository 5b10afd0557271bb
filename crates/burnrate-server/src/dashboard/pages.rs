//! The dashboard's pages: each renders one view (the value its `/api/v1/` endpoint
//! answers) as HTML, with the range picker and filters on top and a link on every row or
//! bar that goes one level down. Money is shown rounded with its exact decimal in the
//! cell's `data-value`.

use burnrate_insight::longtail::LongTail;
use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_model::text::{grouped, grouped_digits};
use burnrate_policy::BudgetState;
use maud::{DOCTYPE, Markup, html};
use rust_decimal::RoundingStrategy;

use super::scope::{FILTER_FIELDS, PRESETS, Scope, filter_key};
use super::svg;
use super::views::{
    AnomaliesView, NOT_SET, OTHER, Overview, RunNode, RunView, RunsView, Slice, TenantView,
};

/// The pages, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/ui`.
    Overview,
    /// `/ui/longtail`.
    LongTail,
    /// `/ui/tenants/{id}`.
    Tenant,
    /// `/ui/runs` and a run's page.
    Runs,
    /// `/ui/anomalies`.
    Anomalies,
    /// `/ui/reports`.
    Reports,
}

const NAV: [(Page, &str, &str); 5] = [
    (Page::Overview, "/ui", "Overview"),
    (Page::LongTail, "/ui/longtail", "Long tail"),
    (Page::Runs, "/ui/runs", "Agent runs"),
    (Page::Anomalies, "/ui/anomalies", "Anomalies"),
    (Page::Reports, "/ui/reports", "Reports"),
];

/// Dimensions the charts can be split by.
const SPLITS: [Field; 6] = [
    Field::Tenant,
    Field::Feature,
    Field::Model,
    Field::Route,
    Field::User,
    Field::Deployment,
];

/// Dollars, rounded for reading: cents from a dollar up, four places below.
pub fn usd_text(money: Money) -> String {
    let decimal = money.as_decimal();
    let places = if decimal.abs() >= rust_decimal::Decimal::ONE {
        2
    } else {
        4
    };
    let rounded = decimal.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{rounded:.places$}", places = places as usize);
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    format!("{sign}${}.{fraction}", grouped_digits(whole))
}

/// A whole number with thousands grouped.
pub fn count_text(n: u64) -> String {
    grouped(n)
}

/// A share as a percentage.
pub fn percent_text(share: Option<f64>) -> String {
    share.map_or_else(|| "—".into(), |share| format!("{:.1}%", share * 100.0))
}

/// A money cell: rounded text, the exact amount in `data-value`.
fn usd(money: Money) -> Markup {
    html! { td class="num" data-value=(money.to_string()) { (usd_text(money)) } }
}

fn usd_opt(money: Option<Money>) -> Markup {
    match money {
        Some(money) => usd(money),
        None => html! { td class="num" data-value="" { "—" } },
    }
}

fn num(n: u64) -> Markup {
    html! { td class="num" data-value=(n) { (count_text(n)) } }
}

fn pct(share: Option<f64>) -> Markup {
    html! { td class="num" data-value=(share.map(|s| s.to_string()).unwrap_or_default()) { (percent_text(share)) } }
}

/// A headline number.
fn tile(label: &str, id: &str, value: &str, exact: &str) -> Markup {
    html! {
        div class="tile" {
            div class="label" { (label) }
            div class="value" id=(id) data-value=(exact) { (value) }
        }
    }
}

/// Where a member of `dimension` drills down to.
pub fn drill(scope: &Scope, dimension: &Dimension, member: &str) -> Option<String> {
    if member == NOT_SET || member == OTHER {
        return None;
    }
    match dimension {
        Dimension::Field(Field::Tenant) => Some(scope.link(&tenant_path(member), &[])),
        Dimension::Field(Field::AgentRun) => Some(scope.link(&run_path(member), &[])),
        Dimension::Field(field) if FILTER_FIELDS.contains(field) => {
            // A feature splits next by model; anything else by feature.
            let next = if *field == Field::Feature {
                "model"
            } else {
                "feature"
            };
            Some(
                scope
                    .with_filter(*field, member)
                    .link("/ui", &[("by", next)]),
            )
        }
        _ => None,
    }
}

/// `/ui/tenants/{id}`, the id escaped.
pub fn tenant_path(tenant: &str) -> String {
    format!("/ui/tenants/{}", path_segment(tenant))
}

/// `/ui/runs/{id}`, the id escaped.
pub fn run_path(run: &str) -> String {
    format!("/ui/runs/{}", path_segment(run))
}

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// The page frame: navigation, the range and filter bar, the content.
pub fn layout(
    page: Page,
    title: &str,
    scope: Option<&Scope>,
    action: &str,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · burnrate" }
                link rel="stylesheet" href="/ui/assets/style.css";
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    span class="brand" { "burnrate" }
                    nav aria-label="Pages" {
                        @for (p, href, label) in NAV {
                            @let href = scope.map_or_else(|| href.to_owned(), |s| s.link(href, &[]));
                            @if p == page {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    form method="post" action="/ui/logout" class="logout" {
                        button type="submit" { "Sign out" }
                    }
                }
                @if let Some(scope) = scope {
                    (filter_bar(scope, action))
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(scope) = scope {
                        p class="muted range" { (scope.describe()) }
                    }
                    (body)
                }
            }
        }
    }
}

fn filter_bar(scope: &Scope, action: &str) -> Markup {
    let date = |time: chrono::DateTime<chrono::Utc>| time.format("%Y-%m-%d").to_string();
    let last_day = scope.until - chrono::Duration::seconds(1);
    html! {
        form class="filters" method="get" action=(action) aria-label="Range and filters" {
            fieldset {
                legend { "Range" }
                @for (key, label) in PRESETS {
                    @let chosen = scope.preset.as_deref() == Some(key);
                    @let preset = Scope { preset: Some(key.to_owned()), ..scope.clone() };
                    a class=(if chosen { "preset chosen" } else { "preset" }) href=(preset.link(action, &by_pair(scope))) { (label) }
                }
                label { "From " input type="date" name="since" value=(date(scope.since)); }
                label { "to " input type="date" name="until" value=(date(last_day)); }
            }
            fieldset {
                legend { "Filters" }
                @for field in FILTER_FIELDS {
                    label {
                        (filter_key(field)) " "
                        input type="text" name=(filter_key(field)) value=(scope.filter(field).unwrap_or("")) size="12";
                    }
                }
                @if let Some(by) = &scope.by {
                    input type="hidden" name="by" value=(by.to_string());
                }
                button type="submit" { "Apply" }
            }
            @if !scope.filters.is_empty() {
                p class="chips" {
                    "Filtered by "
                    @for (field, value) in &scope.filters {
                        a class="chip" href=(scope.without_filter(*field).link(action, &by_pair(scope))) title="remove this filter" {
                            (filter_key(*field)) " = " (value) " ✕"
                        }
                    }
                }
            }
        }
    }
}

fn by_pair(scope: &Scope) -> Vec<(&'static str, &str)> {
    match &scope.by {
        Some(Dimension::Field(field)) => vec![("by", field.as_str())],
        _ => Vec::new(),
    }
}

/// Links that change what a chart splits by.
fn split_picker(scope: &Scope, action: &str, current: &str) -> Markup {
    html! {
        p class="split" {
            "Split by "
            @for field in SPLITS {
                @if field.as_str() == current {
                    strong { (field.as_str()) }
                } @else {
                    a href=(scope.link(action, &[("by", field.as_str())])) { (field.as_str()) }
                }
                " "
            }
        }
    }
}

/// The overview page.
pub fn overview(scope: &Scope, view: &Overview) -> Markup {
    let dimension: Dimension = view.by.parse().unwrap_or(Dimension::Field(Field::Tenant));
    let label_format = if view.bucket == "hour" {
        "%m-%d %H:00"
    } else {
        "%m-%d"
    };
    let labels: Vec<String> = view
        .series
        .iter()
        .map(|point| point.bucket.format(label_format).to_string())
        .collect();
    let values: Vec<Vec<f64>> = view
        .series
        .iter()
        .map(|point| {
            point
                .costs
                .iter()
                .map(|c| burnrate_insight::dollars(*c))
                .collect()
        })
        .collect();
    let links: Vec<Option<String>> = view
        .groups
        .iter()
        .map(|group| drill(scope, &dimension, group))
        .collect();
    let group_totals: Vec<Money> = (0..view.groups.len())
        .map(|g| {
            view.series
                .iter()
                .filter_map(|p| p.costs.get(g).copied())
                .sum()
        })
        .collect();
    let age = match (view.prices.as_of, view.prices.age_days) {
        (Some(day), Some(age)) => format!("{age} days (taken {day})"),
        _ => "no table imported".into(),
    };
    html! {
        @for warning in &view.warnings {
            p class="warning" role="alert" { (warning) }
        }
        div class="tiles" {
            (tile("Spend", "spend", &usd_text(view.cost_usd), &view.cost_usd.to_string()))
            (tile("Calls", "calls", &count_text(view.requests), &view.requests.to_string()))
            (tile("Cache hit rate", "cache-hit-rate", &percent_text(view.cache_hit_rate), &view.cache_hit_rate.map(|r| r.to_string()).unwrap_or_default()))
            (tile("Refused", "refused", &count_text(view.refused), &view.refused.to_string()))
            (tile("Degraded", "degraded", &count_text(view.degraded), &view.degraded.to_string()))
            (tile("Price table age", "price-age", &age, &view.prices.age_days.map(|a| a.to_string()).unwrap_or_default()))
        }
        @if view.prices.stale {
            p class="warning" { "The price table is older than " (view.prices.max_age_days) " days: import a fresh one (burnrate prices update)." }
        }
        section aria-labelledby="spend-title" {
            h2 id="spend-title" { "Spend per " (view.bucket) " by " (view.by) }
            (split_picker(scope, "/ui", &view.by))
            @if view.series.is_empty() {
                p class="empty" { "No calls in this range." }
            } @else {
                (svg::stacked_bars(&format!("Spend per {} by {}", view.bucket, view.by), &labels, &view.groups, &values, &links))
            }
            table id="groups" {
                thead { tr { th { (view.by) } th class="num" { "Spend" } } }
                tbody {
                    @for (g, group) in view.groups.iter().enumerate() {
                        tr {
                            td { @match &links[g] { Some(link) => a href=(link) { (group) }, None => (group) } }
                            (usd(group_totals[g]))
                        }
                    }
                }
            }
        }
        section aria-labelledby="budgets-title" {
            h2 id="budgets-title" { "Budgets now" }
            (budget_table(scope, &view.budgets))
        }
        section aria-labelledby="coverage-title" {
            h2 id="coverage-title" { "Tagging coverage" }
            table id="coverage" {
                thead { tr { th { "Attribution missing" } th class="num" { "Calls" } th class="num" { "Cost" } } }
                tbody {
                    @for row in &view.coverage {
                        tr { td { (row.dimension) } (pct(Some(row.share_of_requests))) (pct(Some(row.share_of_cost))) }
                    }
                }
            }
            p { (count_text(view.prices.unpriced_requests)) " calls in the range have no price." }
        }
    }
}

fn budget_table(scope: &Scope, budgets: &[BudgetState]) -> Markup {
    html! {
        @if budgets.is_empty() {
            p class="empty" { "No budget rule covers anything with spend this period." }
        } @else {
            table class="budgets" {
                thead { tr { th { "Budget" } th { "Period" } th class="num" { "Spent" } th class="num" { "Reserved" } th class="num" { "Cap" } th { "Used" } } }
                tbody {
                    @for budget in budgets {
                        tr {
                            td {
                                (budget.scope) " "
                                @if budget.scope == "tenant" {
                                    a href=(scope.link(&tenant_path(&budget.id), &[])) { (budget.id) }
                                } @else { (budget.id) }
                                @if !budget.enforced { " (shadow)" }
                            }
                            td { (budget.period_label) }
                            (usd(budget.spent_usd)) (usd(budget.reserved_usd)) (usd(budget.limit_usd))
                            td {
                                meter min="0" max="1" low="0.8" high="0.9" optimum="0" value=(budget.used.min(1.0)) aria-label=(format!("{} {} budget used", budget.scope, budget.id)) {}
                                " " (percent_text(Some(budget.used)))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The long-tail page.
pub fn longtail(scope: &Scope, tail: &LongTail) -> Markup {
    let dimension: Dimension = tail
        .dimension
        .parse()
        .unwrap_or(Dimension::Field(Field::Tenant));
    let members: Vec<(String, f64, f64, String)> = tail
        .members
        .iter()
        .take(200)
        .map(|m| {
            let link = drill(scope, &dimension, &m.name).unwrap_or_else(|| "#table".into());
            (m.name.clone(), m.share, m.cumulative, link)
        })
        .collect();
    html! {
        (split_picker(scope, "/ui/longtail", &tail.dimension))
        div class="tiles" {
            (tile("Spend", "spend", &usd_text(tail.total_usd), &tail.total_usd.to_string()))
            (tile("Members", "members", &count_text(tail.members.len() as u64), &tail.members.len().to_string()))
            (tile("Hold half the spend", "half", &count_text(tail.members_for_half as u64), &tail.members_for_half.to_string()))
            (tile("Hold 80% of it", "eighty", &count_text(tail.members_for_80 as u64), &tail.members_for_80.to_string()))
            (tile("Gini", "gini", &format!("{:.2}", tail.gini), &tail.gini.to_string()))
        }
        @if members.is_empty() {
            p class="empty" { "No spend in this range." }
        } @else {
            (svg::pareto(&format!("Pareto of spend by {}", tail.dimension), &members))
        }
        table id="table" {
            thead { tr { th { (tail.dimension) } th class="num" { "Spend" } th class="num" { "Share" } th class="num" { "Cumulative" } } }
            tbody {
                @for m in &tail.members {
                    tr {
                        td { @match drill(scope, &dimension, &m.name) { Some(link) => a href=(link) { (m.name) }, None => (m.name) } }
                        (usd(m.cost_usd)) (pct(Some(m.share))) (pct(Some(m.cumulative)))
                    }
                }
            }
        }
    }
}

fn slice_rows(
    title: &str,
    id: &str,
    rows: &[Slice],
    link: impl Fn(&str) -> Option<String>,
) -> Markup {
    let bars: Vec<(String, f64, String, Option<String>)> = rows
        .iter()
        .take(12)
        .map(|s| (s.name.clone(), s.share, usd_text(s.cost_usd), link(&s.name)))
        .collect();
    html! {
        section aria-labelledby=(format!("{id}-title")) {
            h2 id=(format!("{id}-title")) { (title) }
            @if !bars.is_empty() { (svg::hbars(title, &bars)) }
            table id=(id) {
                thead { tr { th { "Name" } th class="num" { "Spend" } th class="num" { "Calls" } th class="num" { "Share" } } }
                tbody {
                    @for s in rows {
                        tr {
                            td { @match link(&s.name) { Some(l) => a href=(l) { (s.name) }, None => (s.name) } }
                            (usd(s.cost_usd)) (num(s.requests)) (pct(Some(s.share)))
                        }
                    }
                }
            }
        }
    }
}

/// The tenant page.
pub fn tenant(scope: &Scope, view: &TenantView) -> Markup {
    let inner = scope.with_filter(Field::Tenant, &view.tenant);
    let pause_path = format!("{}/pause", tenant_path(&view.tenant));
    let resume_path = format!("{}/resume", tenant_path(&view.tenant));
    let not_set = |name: &str| name == NOT_SET;
    html! {
        @if let Some(reason) = &view.paused {
            p class="warning" role="status" id="paused" { "Paused: " (reason) }
        }
        div class="tiles" {
            (tile("Spend", "spend", &usd_text(view.cost_usd), &view.cost_usd.to_string()))
            (tile("Calls", "calls", &count_text(view.requests), &view.requests.to_string()))
            @if let Some(margin) = &view.margin {
                (tile("Revenue", "revenue", &usd_text(margin.revenue_usd), &margin.revenue_usd.to_string()))
                (tile("Margin", "margin", &format!("{} ({})", usd_text(margin.margin_usd), percent_text(margin.margin)), &margin.margin_usd.to_string()))
            } @else {
                (tile("Margin", "margin", "no contract", ""))
            }
        }
        @if let Some(contract) = &view.contract {
            p class="contract" { "Contract: " (serde_json::to_value(contract.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) @if let Some(tier) = &contract.tier { ", tier " (tier) } "." }
        }
        section aria-labelledby="budget-title" {
            h2 id="budget-title" { "Budgets" }
            (budget_table(scope, &view.budgets))
            @if view.paused.is_some() {
                form method="post" action=(resume_path) { button type="submit" id="resume" { "Resume " (view.tenant) } }
            } @else {
                form method="post" action=(pause_path) class="pause" {
                    label { "Reason " input type="text" name="reason" placeholder="paused from the dashboard"; }
                    button type="submit" id="pause" { "Pause " (view.tenant) }
                }
            }
        }
        (slice_rows("Spend by feature", "features", &view.features, |name| (!not_set(name)).then(|| inner.with_filter(Field::Feature, name).link("/ui/runs", &[]))))
        (slice_rows("Spend by model", "models", &view.models, |name| (!not_set(name)).then(|| inner.with_filter(Field::Model, name).link("/ui", &[("by", "feature")]))))
        (slice_rows("Costliest users", "users", &view.users, |name| (!not_set(name)).then(|| inner.with_filter(Field::User, name).link("/ui", &[("by", "feature")]))))
    }
}

/// The agent-runs page.
pub fn runs(scope: &Scope, view: &RunsView) -> Markup {
    let dollars = burnrate_insight::dollars;
    html! {
        section aria-labelledby="dist-title" {
            h2 id="dist-title" { "Cost per run, by feature" }
            @if view.features.is_empty() { p class="empty" { "No agent runs in this range." } }
            div class="cards" {
                @for feature in &view.features {
                    article class="card" data-feature=(feature.feature) {
                        h3 {
                            @if feature.feature == NOT_SET { (feature.feature) } @else {
                                a href=(scope.with_filter(Field::Feature, &feature.feature).link("/ui/runs", &[])) { (feature.feature) }
                            }
                        }
                        table class="compact" {
                            tr { th { "Runs" } (num(feature.runs)) th { "Spend" } (usd(feature.cost_usd)) }
                            tr { th { "Median" } (usd_opt(feature.p50_usd)) th { "p99" } (usd_opt(feature.p99_usd)) }
                        }
                        @let bins: Vec<(f64, f64, u64)> = feature.histogram.iter().map(|b| (b.from_usd, b.to_usd, b.runs)).collect();
                        (svg::histogram(&format!("Cost per run of {}", feature.feature), &bins, feature.p50_usd.map(dollars), feature.p99_usd.map(dollars)))
                    }
                }
            }
        }
        section aria-labelledby="top-title" {
            h2 id="top-title" { "Most expensive runs" }
            table id="top-runs" {
                thead { tr { th { "Run" } th { "Tenant" } th { "Feature" } th class="num" { "Calls" } th class="num" { "Tool calls" } th class="num" { "Input tokens" } th class="num" { "Output tokens" } th class="num" { "Cost" } } }
                tbody {
                    @for run in &view.top {
                        tr {
                            td { a href=(scope.link(&run_path(&run.agent_run_id), &[])) { (run.agent_run_id) } }
                            td { @if let Some(t) = &run.tenant_id { a href=(scope.link(&tenant_path(t), &[])) { (t) } } }
                            td { (run.feature.as_deref().unwrap_or("")) }
                            (num(run.requests)) (num(run.tool_calls)) (num(run.input_tokens)) (num(run.output_tokens)) (usd(run.cost_usd))
                        }
                    }
                }
            }
        }
    }
}

fn tree(scope: &Scope, node: &RunNode, root: &str) -> Markup {
    html! {
        li {
            @if node.agent_run_id == root { strong { (node.agent_run_id) } } @else {
                a href=(scope.link(&run_path(&node.agent_run_id), &[])) { (node.agent_run_id) }
            }
            " " span class="muted" { (node.agent_name.as_deref().unwrap_or("unnamed agent")) @if let Some(d) = node.depth { ", depth " (d) } }
            " · " (count_text(node.calls)) " calls · own " span data-value=(node.cost_usd.to_string()) { (usd_text(node.cost_usd)) }
            " · with sub-agents " span data-value=(node.total_usd.to_string()) { (usd_text(node.total_usd)) }
            @if !node.children.is_empty() {
                ul { @for child in &node.children { (tree(scope, child, root)) } }
            }
        }
    }
}

/// A run's own page.
pub fn run(scope: &Scope, view: &RunView) -> Markup {
    let duration = match (view.started, view.ended) {
        (Some(a), Some(b)) => format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => "—".into(),
    };
    html! {
        @if let Some(reason) = &view.stopped {
            p class="warning" role="status" id="stopped" { "Stopped by the policy: " (reason) }
        }
        div class="tiles" {
            (tile("Cost", "run-cost", &usd_text(view.cost_usd), &view.cost_usd.to_string()))
            (tile("Calls", "run-calls", &count_text(view.calls.len() as u64), &view.calls.len().to_string()))
            (tile("Span", "run-span", &duration, ""))
            (tile("Tenant", "run-tenant", view.tenant_id.as_deref().unwrap_or("—"), view.tenant_id.as_deref().unwrap_or("")))
            (tile("Feature", "run-feature", view.feature.as_deref().unwrap_or("—"), view.feature.as_deref().unwrap_or("")))
        }
        @if view.unpriced_calls > 0 {
            p class="warning" { (view.unpriced_calls) " calls have no price and count as $0." }
        }
        section aria-labelledby="tree-title" {
            h2 id="tree-title" { "Sub-agents" }
            ul class="tree" id="tree" { (tree(scope, &view.tree, &view.agent_run_id)) }
        }
        section aria-labelledby="roles-title" {
            h2 id="roles-title" { "Agent roles" }
            table id="roles" {
                thead { tr { th { "Agent" } th class="num" { "Depth" } th class="num" { "Calls" } th class="num" { "Cost" } th class="num" { "Share of the run" } } }
                tbody {
                    @for role in &view.roles {
                        tr {
                            td { (role.agent_name.as_deref().unwrap_or("unnamed")) }
                            td class="num" { (role.depth.map(|d| d.to_string()).unwrap_or_default()) }
                            (num(role.calls)) (usd(role.cost_usd)) (pct(role.share))
                        }
                    }
                }
            }
        }
        section aria-labelledby="calls-title" {
            h2 id="calls-title" { "Calls in order" }
            div class="scroll" {
                table id="calls" class="dense" {
                    thead {
                        tr { th colspan="5" {} th colspan="3" class="group" { "Input by layer" } th colspan="4" class="group" { "Tokens by class" } th colspan="2" {} }
                        tr {
                            th { "Time" } th { "Agent" } th class="num" { "Depth" } th { "Model" } th { "Status" }
                            th class="num" { "Prompt" } th class="num" { "Tool" } th class="num" { "Memory" }
                            th class="num" { "Uncached in" } th class="num" { "Cache read" } th class="num" { "Cache write" } th class="num" { "Output" }
                            th { "Tools called" } th class="num" { "Cost" }
                        }
                    }
                    tbody {
                        @for call in &view.calls {
                            tr class=(if call.status == "ok" { "" } else { "flagged" }) {
                                td { time datetime=(call.ts.to_rfc3339()) { (call.ts.format("%H:%M:%S%.3f")) } }
                                td { (call.agent_name.as_deref().unwrap_or("")) @if call.agent_run_id != view.agent_run_id { br; a class="muted" href=(scope.link(&run_path(&call.agent_run_id), &[])) { (call.agent_run_id) } } }
                                td class="num" { (call.depth.map(|d| d.to_string()).unwrap_or_default()) }
                                td { (call.model) }
                                td { (call.status) @if let Some(e) = &call.error { br; span class="muted" { (e) } } }
                                @match call.layers {
                                    Some([p, t, m]) => { (num(p)) (num(t)) (num(m)) },
                                    None => { td class="num" { "—" } td class="num" { "—" } td class="num" { "—" } },
                                }
                                (num(call.uncached_input_tokens)) (num(call.cache_read_tokens)) (num(call.cache_write_tokens)) (num(call.output_tokens))
                                td { @if call.tools.is_empty() { @if call.tool_calls > 0 { (call.tool_calls) " calls" } } @else { (call.tools.join(", ")) } }
                                (usd_opt(call.cost_usd))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The anomalies page.
pub fn anomalies(scope: &Scope, view: &AnomaliesView) -> Markup {
    html! {
        form method="get" action="/ui/anomalies" class="inline" {
            label { "Day " input type="date" name="day" value=(view.day.to_string()); }
            button type="submit" { "Show" }
        }
        @if view.findings.is_empty() {
            p class="empty" { "No detector fired on " (view.day) "." }
        } @else {
            table id="findings" {
                thead { tr { th { "Severity" } th { "Detector" } th { "Subject" } th { "What" } th { "Evidence" } } }
                tbody {
                    @for finding in &view.findings {
                        tr {
                            td { span class=(format!("severity {:?}", finding.severity).to_lowercase()) { (format!("{:?}", finding.severity).to_lowercase()) } }
                            td { (finding.detector) }
                            td { (subject_link(scope, &finding.subject)) }
                            td { (finding.summary) }
                            td {
                                details {
                                    summary { "numbers" }
                                    pre { (serde_json::to_string_pretty(&finding.evidence).unwrap_or_default()) }
                                    p { code { (finding.drill_down) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A finding's subject (`tenant_id=acme`) linked to its page.
fn subject_link(scope: &Scope, subject: &str) -> Markup {
    let link = subject.split_once('=').and_then(|(key, value)| {
        let dimension: Dimension = key.parse().ok()?;
        drill(scope, &dimension, value)
    });
    html! { @match link { Some(link) => a href=(link) { (subject) }, None => (subject) } }
}

/// One generated or buildable report in the list.
pub struct ReportEntry {
    /// `daily`, `weekly`, `monthly`.
    pub kind: String,
    /// The day it is for.
    pub day: chrono::NaiveDate,
    /// Whether the scheduler wrote it (else it is built when opened).
    pub generated: bool,
}

/// The reports page.
pub fn reports(entries: &[ReportEntry], folder: Option<&std::path::Path>) -> Markup {
    html! {
        @match folder {
            Some(folder) => p { "Scheduled reports are written to " code { (folder.display()) } "." },
            None => p { "No scheduled reports: set " code { "[reports] folder" } ". The reports below are built from the ledger when opened." },
        }
        table id="reports" {
            thead { tr { th { "Report" } th { "For" } th { "Source" } } }
            tbody {
                @for entry in entries {
                    tr {
                        td { a href=(format!("/ui/reports/{}/{}", entry.kind, entry.day)) { (entry.kind) } }
                        td { (entry.day) }
                        td { @if entry.generated { "scheduled" } @else { "built on open" } }
                    }
                }
            }
        }
    }
}

/// The login page; `error` says why the last attempt failed.
pub fn login(error: Option<&str>, next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Sign in · burnrate" }
                link rel="stylesheet" href="/ui/assets/style.css";
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                script src="/ui/assets/login.js" defer {}
            }
            body class="login" {
                main id="main" {
                    h1 { "burnrate" }
                    form method="post" action="/ui/login" id="login" {
                        @if let Some(error) = error { p class="warning" role="alert" { (error) } }
                        label { "Admin token " input type="password" name="token" id="token" autocomplete="current-password" required autofocus; }
                        input type="hidden" name="next" value=(next);
                        button type="submit" { "Sign in" }
                    }
                    p class="muted" { "The token is the value of the variable " code { "server.admin_token_env" } " names. A link may carry it after a " code { "#token=" } "; it never reaches the server's logs." }
                }
            }
        }
    }
}

/// An error page in the frame (a bad filter, a store failure).
pub fn problem(page: Page, message: &str) -> Markup {
    layout(
        page,
        "Something is wrong",
        None,
        "/ui",
        html! { p class="warning" role="alert" { (message) } p { a href="/ui" { "Back to the overview" } } },
    )
}

/// A report document (the scheduler's JSON): its warnings, then each section's lead
/// sentence, bar chart and table.
pub fn report(document: &serde_json::Value) -> Markup {
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let empty = Vec::new();
    html! {
        p class="muted" { (document["from"].as_str().unwrap_or("")) " to " (document["to"].as_str().unwrap_or("")) }
        @for warning in strings(&document["warnings"]) {
            p class="warning" role="alert" { (warning) }
        }
        @for section in document["sections"].as_array().unwrap_or(&empty) {
            section {
                h2 { (section["title"].as_str().unwrap_or("")) }
                @if let Some(lead) = section["lead"].as_str() { p class="lead" { (lead) } }
                @if let Some(bars) = section["chart"]["bars"].as_array() {
                    @let unit = section["chart"]["unit"].as_str().unwrap_or("");
                    @let rows: Vec<(String, f64, String, Option<String>)> = bars.iter().filter_map(|bar| {
                        let label = bar[0].as_str()?.to_owned();
                        let value = bar[1].as_f64()?;
                        let caption = burnrate_insight::report::bar_caption(unit, value);
                        Some((label, value, caption, None))
                    }).collect();
                    @if !rows.is_empty() { (svg::hbars(section["chart"]["title"].as_str().unwrap_or(""), &rows)) }
                }
                @if let Some(table) = section.get("table").filter(|t| !t.is_null()) {
                    @let headers = strings(&table["headers"]);
                    @let rows: Vec<Vec<String>> = table["rows"].as_array().unwrap_or(&empty).iter().map(&strings).collect();
                    @if rows.is_empty() { p class="empty" { "none" } } @else {
                        table {
                            thead { tr { @for h in &headers { th { (h) } } } }
                            tbody { @for row in &rows { tr { @for cell in row { td class=(if burnrate_insight::report::is_numeric_cell(cell) { "num" } else { "" }) { (cell) } } } } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn money_reads_rounded_with_thousands() {
        let m = |s: &str| s.parse::<Money>().unwrap();
        assert_eq!(usd_text(m("1234567.125")), "$1,234,567.13");
        assert_eq!(usd_text(m("0.000123456")), "$0.0001");
        assert_eq!(usd_text(m("0")), "$0.0000");
        assert_eq!(usd_text(m("-12.5")), "-$12.50");
        assert_eq!(usd_text(m("999.995")), "$1,000.00");
        assert_eq!(count_text(1_234_567), "1,234,567");
        assert_eq!(count_text(12), "12");
    }
}
