//! The numbers behind each dashboard page, built from the ledger. Each view is one
//! serializable value: the JSON endpoint under `/api/v1/` answers it as it is, and the page
//! renders the same value, so what a page shows is what the API says.

use std::collections::{BTreeMap, HashMap, HashSet};

use burnrate_insight::detectors::Finding;
use burnrate_insight::longtail::{LongTail, long_tail};
use burnrate_insight::margins::{Contract, SegmentRules, TenantMargin, margins};
use burnrate_model::dimension::{Dimension, Field};
use burnrate_model::prices::ServiceTier;
use burnrate_model::{Money, PriceBook, Status, UsageEvent};
use burnrate_policy::config::Scope as Rule;
use burnrate_policy::{BudgetState, PolicyConfig};
use burnrate_store::reports::{Report, ReportParams};
use burnrate_store::{
    Bucket, Cell, Filter, Metric, Order, QueryResult, QuerySpec, RunSummary, Store, StoreError,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::scope::Scope;
use burnrate_store::query::bins::BINS_PER_DECADE;
use burnrate_store::query::spec::OrderKey;

/// How many groups a stacked chart shows before it folds the rest into "other".
pub const STACKED_GROUPS: usize = 8;
/// How many rows the ranked tables show.
pub const TABLE_ROWS: usize = 20;
/// Label the stacked chart gives the folded groups.
pub const OTHER: &str = "(other)";
/// Label for calls without the dimension set.
pub use burnrate_insight::longtail::NOT_SET;
/// How many levels of sub-agents a run page follows.
const MAX_RUN_DEPTH: usize = 8;

/// The overview page.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Range start.
    pub since: DateTime<Utc>,
    /// Range end (exclusive).
    pub until: DateTime<Utc>,
    /// What the spend chart is split by.
    pub by: String,
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// Spend over the range.
    pub cost_usd: Money,
    /// Calls over the range.
    pub requests: u64,
    /// Cache reads over all input tokens.
    pub cache_hit_rate: Option<f64>,
    /// Calls refused by the policy (`status = blocked`).
    pub refused: u64,
    /// Calls degraded (a cheaper model or a cached answer).
    pub degraded: u64,
    /// The groups of the chart, costliest first, then [`OTHER`] when some were folded.
    pub groups: Vec<String>,
    /// Spend per bucket, one amount per group in `groups` order.
    pub series: Vec<SeriesPoint>,
    /// Share of calls and cost lacking each attribution.
    pub coverage: Vec<Coverage>,
    /// The price table's age.
    pub prices: PriceAge,
    /// Today's (and this month's) budgets, fullest first.
    pub budgets: Vec<BudgetState>,
    /// What the reader must know (unpriced calls, stale prices).
    pub warnings: Vec<String>,
}

/// One bucket of a stacked spend chart.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// Bucket start.
    pub bucket: DateTime<Utc>,
    /// Spend per group, in the overview's `groups` order.
    pub costs: Vec<Money>,
}

/// Calls and cost without one attribution.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// The dimension (`tenant_id`, or `any` for any of them).
    pub dimension: String,
    /// Share of calls without it.
    pub share_of_requests: f64,
    /// Share of cost without it.
    pub share_of_cost: f64,
}

/// How old the price table is.
#[derive(Debug, Clone, Serialize)]
pub struct PriceAge {
    /// The day the newest table was taken.
    pub as_of: Option<NaiveDate>,
    /// Days since then.
    pub age_days: Option<i64>,
    /// The age past which costs are flagged.
    pub max_age_days: i64,
    /// Older than the limit.
    pub stale: bool,
    /// Calls in the range with no price.
    pub unpriced_requests: u64,
}

/// Spend of one member of a dimension.
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    /// The member ([`NOT_SET`] for calls without it).
    pub name: String,
    /// Spend.
    pub cost_usd: Money,
    /// Calls.
    pub requests: u64,
    /// Share of the total spend.
    pub share: f64,
}

/// The tenant page.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    /// The tenant.
    pub tenant: String,
    /// Range start.
    pub since: DateTime<Utc>,
    /// Range end (exclusive).
    pub until: DateTime<Utc>,
    /// Spend over the range.
    pub cost_usd: Money,
    /// Calls over the range.
    pub requests: u64,
    /// Spend by feature, costliest first.
    pub features: Vec<Slice>,
    /// Spend by user, the costliest [`TABLE_ROWS`].
    pub users: Vec<Slice>,
    /// Spend by model, costliest first.
    pub models: Vec<Slice>,
    /// Its contract, if it has one.
    pub contract: Option<Contract>,
    /// Its margin over the range against the contract.
    pub margin: Option<TenantMargin>,
    /// Its budgets now.
    pub budgets: Vec<BudgetState>,
    /// Why it is paused, when it is.
    pub paused: Option<String>,
}

/// The agent-runs page.
#[derive(Debug, Clone, Serialize)]
pub struct RunsView {
    /// Range start.
    pub since: DateTime<Utc>,
    /// Range end (exclusive).
    pub until: DateTime<Utc>,
    /// Per feature, the distribution of cost per run; costliest feature first.
    pub features: Vec<FeatureRuns>,
    /// The most expensive runs.
    pub top: Vec<RunSummary>,
}

/// The runs of one feature.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureRuns {
    /// The feature ([`NOT_SET`] for runs without one).
    pub feature: String,
    /// Runs.
    pub runs: u64,
    /// Spend in them.
    pub cost_usd: Money,
    /// Median cost per run (nearest rank).
    pub p50_usd: Option<Money>,
    /// 99th percentile cost per run (nearest rank).
    pub p99_usd: Option<Money>,
    /// Runs per cost bin: four bins per power of ten of dollars.
    pub histogram: Vec<Bin>,
}

/// One bin of a cost histogram: runs costing at least `from_usd` and less than `to_usd`.
#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    /// Lower edge, dollars.
    pub from_usd: f64,
    /// Upper edge, dollars.
    pub to_usd: f64,
    /// Runs in it.
    pub runs: u64,
}

/// One run's own page: its calls, its sub-agents, why it stopped.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run.
    pub agent_run_id: String,
    /// Its tenant.
    pub tenant_id: Option<String>,
    /// Its feature.
    pub feature: Option<String>,
    /// First call.
    pub started: Option<DateTime<Utc>>,
    /// Last call.
    pub ended: Option<DateTime<Utc>>,
    /// What the run and its sub-agents cost.
    pub cost_usd: Money,
    /// Calls with no price.
    pub unpriced_calls: u64,
    /// The run and its sub-agents as a tree.
    pub tree: RunNode,
    /// Every call of the run and its sub-agents, in order.
    pub calls: Vec<CallRow>,
    /// What each agent role cost of the whole run, largest first.
    pub roles: Vec<RunRole>,
    /// Why the policy stopped it, when it did (the first refusal's reason).
    pub stopped: Option<String>,
}

/// A run in the tree of sub-agents.
#[derive(Debug, Clone, Serialize)]
pub struct RunNode {
    /// The run.
    pub agent_run_id: String,
    /// Its agent's name.
    pub agent_name: Option<String>,
    /// Its depth.
    pub depth: Option<u32>,
    /// Its own calls.
    pub calls: u64,
    /// Its own calls' cost.
    pub cost_usd: Money,
    /// Its own cost plus its sub-agents'.
    pub total_usd: Money,
    /// Its sub-agent runs, in the order they started.
    pub children: Vec<RunNode>,
}

/// One call on a run page.
#[derive(Debug, Clone, Serialize)]
pub struct CallRow {
    /// The event id.
    pub id: String,
    /// When it started.
    pub ts: DateTime<Utc>,
    /// Its run (the page's run or a sub-agent's).
    pub agent_run_id: String,
    /// Its agent.
    pub agent_name: Option<String>,
    /// Its depth.
    pub depth: Option<u32>,
    /// The model that answered.
    pub model: String,
    /// `ok`, `error` or `blocked`.
    pub status: String,
    /// The error or refusal reason.
    pub error: Option<String>,
    /// Input tokens by layer: prompt, tool, memory (none when not known).
    pub layers: Option<[u64; 3]>,
    /// Input not read from or written to the cache.
    pub uncached_input_tokens: u64,
    /// Input read from the cache.
    pub cache_read_tokens: u64,
    /// Input written to the cache.
    pub cache_write_tokens: u64,
    /// Output.
    pub output_tokens: u64,
    /// Tools the response called.
    pub tools: Vec<String>,
    /// Tool calls asked for.
    pub tool_calls: u64,
    /// What it cost (none: the model has no price).
    pub cost_usd: Option<Money>,
}

/// One agent role's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRole {
    /// The agent's name.
    pub agent_name: Option<String>,
    /// Its depth.
    pub depth: Option<u32>,
    /// Its calls.
    pub calls: u64,
    /// What they cost.
    pub cost_usd: Money,
    /// Of the whole run's cost.
    pub share: Option<f64>,
}

/// The anomalies page.
#[derive(Debug, Clone, Serialize)]
pub struct AnomaliesView {
    /// The day looked at.
    pub day: NaiveDate,
    /// The findings, most severe first.
    pub findings: Vec<Finding>,
}

/// The bucket a range is charted in: hours up to two days, else days.
pub fn bucket_for(scope: &Scope) -> Bucket {
    if scope.until - scope.since <= Duration::days(2) {
        Bucket::Hour
    } else {
        Bucket::Day
    }
}

fn spec(scope: &Scope, group_by: Vec<Dimension>, metrics: Vec<Metric>) -> QuerySpec {
    let mut spec = QuerySpec::new(scope.since, scope.until);
    spec.group_by = group_by;
    spec.metrics = metrics;
    spec.filters = scope.spec_filters();
    spec
}

fn count(cell: Option<&Cell>) -> u64 {
    cell.and_then(Cell::as_count).unwrap_or(0)
}

fn money(cell: Option<&Cell>) -> Money {
    cell.and_then(Cell::as_money).unwrap_or(Money::ZERO)
}

fn number(cell: Option<&Cell>) -> Option<f64> {
    match cell {
        Some(Cell::Number(n)) => Some(*n),
        _ => None,
    }
}

fn text(cell: Option<&Cell>) -> Option<String> {
    cell.and_then(Cell::as_text)
}

/// The name a group shows under.
fn name(cell: Option<&Cell>) -> String {
    text(cell).unwrap_or_else(|| NOT_SET.to_owned())
}

/// The overview's numbers (budgets are added by the caller, from the policy state).
pub fn overview(
    store: &dyn Store,
    scope: &Scope,
    max_price_age_days: i64,
    today: NaiveDate,
) -> Result<Overview, StoreError> {
    let by = scope.by.clone().unwrap_or(Dimension::Field(Field::Tenant));
    let bucket = bucket_for(scope);

    let mut totals = store.query(&spec(
        scope,
        Vec::new(),
        vec![Metric::Requests, Metric::CostUsd, Metric::CacheHitRate],
    ))?;
    store.warn_if_stale(&mut totals, max_price_age_days, today);
    let first = totals.rows.first();
    let requests = count(first.and_then(|row| row.first()));
    let cost_usd = money(first.and_then(|row| row.get(1)));
    let cache_hit_rate = number(first.and_then(|row| row.get(2)));

    let mut per_bucket = spec(scope, Vec::new(), vec![Metric::CostUsd]);
    per_bucket.bucket = Some(bucket);
    per_bucket.order = Some(Order {
        key: OrderKey::Bucket,
        descending: false,
    });
    let per_bucket = store.query(&per_bucket)?;
    let mut stacked = spec(scope, vec![by.clone()], vec![Metric::CostUsd]);
    stacked.bucket = Some(bucket);
    stacked.top = Some(STACKED_GROUPS);
    let stacked = store.query(&stacked)?;
    let (groups, series) = stack(&per_bucket, &stacked);

    let policy = store.query(&spec(
        scope,
        vec![
            Dimension::Field(Field::Status),
            Dimension::Label("burnrate.degraded".into()),
        ],
        vec![Metric::Requests],
    ))?;
    let (mut refused, mut degraded) = (0, 0);
    for row in &policy.rows {
        let calls = count(row.get(2));
        if text(row.first()).as_deref() == Some(Status::Blocked.as_str()) {
            refused += calls;
        }
        if text(row.get(1)).is_some() {
            degraded += calls;
        }
    }

    let coverage = store
        .report(
            Report::Coverage,
            &ReportParams {
                since: scope.since,
                until: scope.until,
                filters: scope.spec_filters(),
                top: None,
            },
        )?
        .rows
        .iter()
        .filter_map(|row| {
            Some(Coverage {
                dimension: text(row.first())?,
                share_of_requests: number(row.get(2)).unwrap_or(0.0),
                share_of_cost: number(row.get(4)).unwrap_or(0.0),
            })
        })
        .collect();

    let book = store.prices();
    let age_days = book.as_of.map(|day| (today - day).num_days());
    Ok(Overview {
        since: scope.since,
        until: scope.until,
        by: by.to_string(),
        bucket: bucket.as_str(),
        cost_usd,
        requests,
        cache_hit_rate,
        refused,
        degraded,
        groups,
        series,
        coverage,
        prices: PriceAge {
            as_of: book.as_of,
            age_days,
            max_age_days: max_price_age_days,
            stale: age_days.is_some_and(|age| age > max_price_age_days),
            unpriced_requests: totals.unpriced.requests,
        },
        budgets: Vec::new(),
        warnings: totals.warnings,
    })
}

/// Groups (costliest first, then [`OTHER`] when the top groups miss some spend) and the
/// spend per bucket and group, from a bucketed total and a bucketed top-N split.
fn stack(per_bucket: &QueryResult, stacked: &QueryResult) -> (Vec<String>, Vec<SeriesPoint>) {
    let mut order: Vec<(String, Money)> = Vec::new();
    let mut cells: HashMap<(String, String), Money> = HashMap::new();
    for row in &stacked.rows {
        let group = name(row.first());
        let bucket = text(row.get(1)).unwrap_or_default();
        let cost = money(row.get(2));
        match order.iter_mut().find(|(g, _)| *g == group) {
            Some((_, total)) => *total += cost,
            None => order.push((group.clone(), cost)),
        }
        *cells.entry((bucket, group)).or_insert(Money::ZERO) += cost;
    }
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut groups: Vec<String> = order.into_iter().map(|(g, _)| g).collect();
    let mut series = Vec::new();
    let mut folded = false;
    for row in &per_bucket.rows {
        let Some(bucket_text) = text(row.first()) else {
            continue;
        };
        let Ok(bucket) = bucket_text.parse::<DateTime<Utc>>() else {
            continue;
        };
        let total = money(row.get(1));
        let mut costs: Vec<Money> = groups
            .iter()
            .map(|group| {
                cells
                    .get(&(bucket_text.clone(), group.clone()))
                    .copied()
                    .unwrap_or(Money::ZERO)
            })
            .collect();
        let shown = costs.iter().fold(Money::ZERO, |sum, cost| sum + *cost);
        let other = total - shown;
        folded |= other != Money::ZERO;
        costs.push(other);
        series.push(SeriesPoint { bucket, costs });
    }
    if folded {
        groups.push(OTHER.to_owned());
    } else {
        for point in &mut series {
            point.costs.pop();
        }
    }
    (groups, series)
}

/// The long tail of `scope.by` (default tenant) within the scope's filters.
pub fn longtail(store: &dyn Store, scope: &Scope) -> Result<LongTail, StoreError> {
    let by = scope.by.clone().unwrap_or(Dimension::Field(Field::Tenant));
    long_tail(store, &by, scope.since, scope.until, &scope.spec_filters())
}

/// Spend, calls and share per member of `dimension`, costliest first, at most `top`.
fn slices(
    store: &dyn Store,
    scope: &Scope,
    dimension: Field,
    top: Option<usize>,
) -> Result<Vec<Slice>, StoreError> {
    let mut query = spec(
        scope,
        vec![Dimension::Field(dimension)],
        vec![Metric::CostUsd, Metric::Requests, Metric::ShareOfCost],
    );
    query.top = top;
    Ok(store
        .query(&query)?
        .rows
        .iter()
        .map(|row| Slice {
            name: name(row.first()),
            cost_usd: money(row.get(1)),
            requests: count(row.get(2)),
            share: number(row.get(3)).unwrap_or(0.0),
        })
        .collect())
}

/// The tenant page's numbers (budgets and the pause are added by the caller).
pub fn tenant(
    store: &dyn Store,
    scope: &Scope,
    tenant: &str,
    contracts: &[Contract],
) -> Result<TenantView, StoreError> {
    let scope = scope.with_filter(Field::Tenant, tenant);
    let totals = store.query(&spec(
        &scope,
        Vec::new(),
        vec![Metric::CostUsd, Metric::Requests],
    ))?;
    let first = totals.rows.first();
    let contract = contracts.iter().find(|c| c.tenant == tenant).cloned();
    let margin = match &contract {
        Some(contract) => margins(
            store,
            std::slice::from_ref(contract),
            &[],
            scope.since,
            scope.until,
            SegmentRules::default(),
        )?
        .tenants
        .into_iter()
        .find(|m| m.tenant == tenant),
        None => None,
    };
    Ok(TenantView {
        tenant: tenant.to_owned(),
        since: scope.since,
        until: scope.until,
        cost_usd: money(first.and_then(|row| row.first())),
        requests: count(first.and_then(|row| row.get(1))),
        features: slices(store, &scope, Field::Feature, None)?,
        users: slices(store, &scope, Field::User, Some(TABLE_ROWS))?,
        models: slices(store, &scope, Field::Model, None)?,
        contract,
        margin,
        budgets: Vec::new(),
        paused: None,
    })
}

/// The runs page's numbers.
pub fn runs(store: &dyn Store, scope: &Scope) -> Result<RunsView, StoreError> {
    let overview = store.runs_overview(
        &spec(scope, vec![Dimension::Field(Field::Feature)], Vec::new()),
        TABLE_ROWS,
    )?;
    let mut binned: BTreeMap<Option<String>, Vec<(Option<i64>, u64)>> = BTreeMap::new();
    for bin in overview.bins {
        binned
            .entry(bin.group)
            .or_default()
            .push((bin.bin, bin.runs));
    }
    let features = overview
        .groups
        .into_iter()
        .map(|group| FeatureRuns {
            histogram: histogram(binned.get(&group.group).map(Vec::as_slice).unwrap_or(&[])),
            feature: group.group.unwrap_or_else(|| NOT_SET.to_owned()),
            runs: group.runs,
            cost_usd: group.cost,
            p50_usd: group.p50,
            p99_usd: group.p99,
        })
        .collect();
    Ok(RunsView {
        since: scope.since,
        until: scope.until,
        features,
        top: overview.top,
    })
}

/// The histogram's bins from runs counted per bin index ([`burnrate_store::query::bins`]):
/// every bin from the cheapest run's to the costliest's, runs that cost nothing in the
/// first.
pub fn histogram(counted: &[(Option<i64>, u64)]) -> Vec<Bin> {
    let total: u64 = counted.iter().map(|(_, runs)| runs).sum();
    let indices = counted.iter().filter_map(|(bin, _)| *bin);
    let (Some(low), Some(high)) = (indices.clone().min(), indices.max()) else {
        return if total == 0 {
            Vec::new()
        } else {
            vec![Bin {
                from_usd: 0.0,
                to_usd: 0.0,
                runs: total,
            }]
        };
    };
    let edge = |i: i64| 10f64.powf(i as f64 / BINS_PER_DECADE);
    let mut bins: Vec<Bin> = (low..=high)
        .map(|i| Bin {
            from_usd: edge(i),
            to_usd: edge(i + 1),
            runs: 0,
        })
        .collect();
    for (bin, runs) in counted {
        let slot = usize::try_from(bin.unwrap_or(low) - low).unwrap_or(0);
        if let Some(bin) = bins.get_mut(slot) {
            bin.runs += runs;
        }
    }
    bins
}

/// One run's page: its calls and its sub-agents' (followed up to [`MAX_RUN_DEPTH`] levels
/// down), priced with the ledger's book. `None` when the range holds no call of the run.
pub fn run(store: &dyn Store, scope: &Scope, run_id: &str) -> Result<Option<RunView>, StoreError> {
    let mut events: Vec<UsageEvent> = Vec::new();
    let mut seen_runs: HashSet<String> = HashSet::from([run_id.to_owned()]);
    let mut seen_events: HashSet<uuid::Uuid> = HashSet::new();
    let mut frontier = vec![run_id.to_owned()];
    let (mut since, mut until) = (scope.since, scope.until);
    for level in 0..MAX_RUN_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let found = store.run_events(&frontier, since, until)?;
        if level == 0 {
            // Sub-agents run inside their parent's span: later levels read only that
            // (and an hour after it), not the whole range.
            if let (Some(first), Some(last)) = (
                found.iter().map(|e| e.ts).min(),
                found.iter().map(|e| e.ts).max(),
            ) {
                since = first.max(scope.since);
                until = (last + Duration::hours(1)).min(scope.until);
            }
        }
        frontier.clear();
        for event in found {
            if event.id.is_some_and(|id| !seen_events.insert(id)) {
                continue;
            }
            if let Some(run) = &event.agent_run_id
                && seen_runs.insert(run.clone())
            {
                frontier.push(run.clone());
            }
            events.push(event);
        }
    }
    if !events
        .iter()
        .any(|e| e.agent_run_id.as_deref() == Some(run_id))
    {
        return Ok(None);
    }
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.id.cmp(&b.id)));
    let book = store.prices();
    let calls: Vec<CallRow> = events.iter().map(|event| call_row(book, event)).collect();
    let own = events
        .iter()
        .find(|e| e.agent_run_id.as_deref() == Some(run_id));
    let cost_usd = calls
        .iter()
        .filter_map(|call| call.cost_usd)
        .fold(Money::ZERO, |sum, cost| sum + cost);
    Ok(Some(RunView {
        agent_run_id: run_id.to_owned(),
        tenant_id: own.and_then(|e| e.tenant_id.clone()),
        feature: own.and_then(|e| e.feature.clone()),
        started: events.first().map(|e| e.ts),
        ended: events.last().map(|e| e.ts),
        cost_usd,
        unpriced_calls: calls.iter().filter(|c| c.cost_usd.is_none()).count() as u64,
        tree: run_tree(run_id, &events, &calls),
        roles: run_roles(&calls, cost_usd),
        stopped: events
            .iter()
            .find(|e| e.status == Status::Blocked)
            .map(|e| {
                e.error
                    .clone()
                    .unwrap_or_else(|| "refused by the policy".into())
            }),
        calls,
    }))
}

fn call_row(book: &PriceBook, event: &UsageEvent) -> CallRow {
    let usage = &event.usage;
    let cost_usd = book.resolve(&event.provider, &event.model).and_then(|key| {
        book.cost(
            &key,
            event.ts.date_naive(),
            ServiceTier::from_event(event.service_tier.as_deref()),
            usage,
        )
    });
    CallRow {
        id: event.id.map(|id| id.to_string()).unwrap_or_default(),
        ts: event.ts,
        agent_run_id: event.agent_run_id.clone().unwrap_or_default(),
        agent_name: event.agent_name.clone(),
        depth: event.span_depth,
        model: event.model.clone(),
        status: event.status.as_str().to_owned(),
        error: event.error.clone(),
        layers: event.layers.map(|l| [l.prompt, l.tool, l.memory]),
        uncached_input_tokens: usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens),
        cache_read_tokens: usage.cache_read_tokens,
        cache_write_tokens: usage.cache_write_tokens,
        output_tokens: usage.output_tokens,
        tools: event.tools.iter().map(|t| t.name.clone()).collect(),
        tool_calls: u64::from(event.tool_calls),
        cost_usd,
    }
}

/// The run and its sub-agents as a tree; each node's calls and cost are its own, its
/// total includes the nodes below it.
fn run_tree(root: &str, events: &[UsageEvent], calls: &[CallRow]) -> RunNode {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut first_seen: Vec<&str> = Vec::new();
    for event in events {
        let Some(run) = event.agent_run_id.as_deref() else {
            continue;
        };
        if first_seen.contains(&run) {
            continue;
        }
        first_seen.push(run);
        if let Some(parent) = event.parent_run_id.as_deref()
            && run != root
        {
            children.entry(parent).or_default().push(run);
        }
    }
    fn build(
        run: &str,
        events: &[UsageEvent],
        calls: &[CallRow],
        children: &BTreeMap<&str, Vec<&str>>,
        depth: usize,
    ) -> RunNode {
        let own: Vec<usize> = (0..events.len())
            .filter(|i| events[*i].agent_run_id.as_deref() == Some(run))
            .collect();
        let cost_usd = own
            .iter()
            .filter_map(|i| calls[*i].cost_usd)
            .fold(Money::ZERO, |sum, cost| sum + cost);
        let first = own.first().map(|i| &events[*i]);
        let kids: Vec<RunNode> = if depth < MAX_RUN_DEPTH {
            children
                .get(run)
                .map(|kids| {
                    kids.iter()
                        .map(|kid| build(kid, events, calls, children, depth + 1))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        RunNode {
            agent_run_id: run.to_owned(),
            agent_name: first.and_then(|e| e.agent_name.clone()),
            depth: first.and_then(|e| e.span_depth),
            calls: own.len() as u64,
            total_usd: kids.iter().fold(cost_usd, |sum, kid| sum + kid.total_usd),
            cost_usd,
            children: kids,
        }
    }
    build(root, events, calls, &children, 0)
}

fn run_roles(calls: &[CallRow], total: Money) -> Vec<RunRole> {
    let mut roles: BTreeMap<(Option<String>, Option<u32>), (u64, Money)> = BTreeMap::new();
    for call in calls {
        let role = roles
            .entry((call.agent_name.clone(), call.depth))
            .or_insert((0, Money::ZERO));
        role.0 += 1;
        role.1 += call.cost_usd.unwrap_or(Money::ZERO);
    }
    let mut roles: Vec<RunRole> = roles
        .into_iter()
        .map(|((agent_name, depth), (calls, cost_usd))| RunRole {
            agent_name,
            depth,
            calls,
            cost_usd,
            share: cost_usd.ratio(total),
        })
        .collect();
    roles.sort_by_key(|role| std::cmp::Reverse(role.cost_usd));
    roles
}

/// The subjects whose budgets the dashboard shows: every tenant, user and feature with
/// spend in the current period of a rule that covers them, from the ledger. Only the scopes
/// and periods the rules use are queried.
pub fn budget_subjects(
    store: &dyn Store,
    policy: &PolicyConfig,
    now: DateTime<Utc>,
    tenant: Option<&str>,
) -> Result<Vec<(Rule, String, String)>, StoreError> {
    let mut subjects = std::collections::BTreeSet::new();
    let scopes = [
        (Rule::Tenant, None),
        (Rule::User, Some(Field::User)),
        (Rule::Feature, Some(Field::Feature)),
    ];
    for (scope, field) in scopes {
        let Some(since) = policy
            .budgets
            .iter()
            .filter(|rule| rule.scope == scope)
            .map(|rule| burnrate_policy::period::span(rule.period, now, policy.timezone).start)
            .min()
        else {
            continue;
        };
        let mut spec = QuerySpec::new(since, now + Duration::seconds(1));
        spec.group_by = vec![Dimension::Field(Field::Tenant)];
        spec.group_by.extend(field.map(Dimension::Field));
        spec.metrics = vec![Metric::Requests];
        if let Some(tenant) = tenant {
            spec.filters.push(Filter {
                dimension: Dimension::Field(Field::Tenant),
                negate: false,
                values: vec![tenant.to_owned()],
            });
        }
        for row in &store.query(&spec)?.rows {
            let owner = text(row.first()).unwrap_or_default();
            match (scope, text(row.get(1))) {
                (Rule::Tenant, _) if !owner.is_empty() => {
                    subjects.insert((scope, owner.clone(), owner));
                }
                (Rule::User, Some(user)) if !owner.is_empty() => {
                    subjects.insert((scope, owner, user));
                }
                (Rule::Feature, Some(feature)) => {
                    subjects.insert((scope, String::new(), feature));
                }
                _ => {}
            }
        }
    }
    Ok(subjects.into_iter().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use burnrate_store::query::bins::bin_of;

    use super::*;

    #[test]
    fn the_histogram_counts_every_run_in_quarter_decade_bins() {
        let money = |text: &str| text.parse::<Money>().unwrap();
        let costs = [
            money("0"),
            money("0.01"),
            money("0.011"),
            money("0.5"),
            money("2.5"),
        ];
        let counted = |costs: &[Money]| {
            let mut counted: BTreeMap<Option<i64>, u64> = BTreeMap::new();
            for cost in costs {
                *counted.entry(bin_of(*cost)).or_default() += 1;
            }
            counted.into_iter().collect::<Vec<_>>()
        };
        let bins = histogram(&counted(&costs));
        assert_eq!(bins.iter().map(|b| b.runs).sum::<u64>(), 5);
        // From the $0.01 bin to the bin holding $2.50: 10^(k/4) edges.
        assert!((bins[0].from_usd - 0.01).abs() < 1e-12);
        assert_eq!(bins[0].runs, 3, "nothing-cost runs go in the first bin");
        let last = bins.last().unwrap();
        assert!(last.from_usd <= 2.5 && 2.5 < last.to_usd);
        assert_eq!(last.runs, 1);
        assert_eq!(bins.len(), 10);
        assert!(histogram(&[]).is_empty());
        assert_eq!(histogram(&counted(&[Money::ZERO]))[0].runs, 1);
    }
}
