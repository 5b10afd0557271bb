//! The policy engine's life in the server: its state backend, the rebuild of spend from the
//! ledger at start, the kill switch's hourly baselines, upkeep, and configuration reloads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_policy::config::{Period, Scope};
use burnrate_policy::killswitch::{Baseline, Baselines};
use burnrate_policy::state::memory::MemoryState;
use burnrate_policy::state::redis::RedisState;
use burnrate_policy::{Policy, PolicyConfig, State, StateError};
use burnrate_store::query::spec::Metric;
use burnrate_store::{Cell, QuerySpec};
use chrono::{DateTime, Duration as Days, DurationRound, Utc};

use crate::app::AppState;
use crate::config::{Config, StateConfig};
use crate::ledger::Ledger;
use crate::notify::Notifiers;

/// How often upkeep runs: baselines when the hour turns, expired memory state.
const UPKEEP_EVERY: Duration = Duration::from_secs(30);

/// Why the policy could not start.
#[derive(Debug, thiserror::Error)]
pub enum PolicyStartError {
    /// The state backend is unreachable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The ledger could not be read.
    #[error(transparent)]
    Store(#[from] burnrate_store::StoreError),
}

/// Connects the state backend and builds the engine.
pub async fn policy(config: &Config) -> Result<Policy, StateError> {
    let state = match &config.state {
        StateConfig::Memory => State::Memory(MemoryState::new()),
        StateConfig::Redis { url } => State::Redis(RedisState::connect(url).await?),
    };
    Ok(Policy::new(state, &config.policy))
}

/// Rebuilds budget spend and this hour's spend per tenant from the ledger, so a restart
/// neither forgets what was spent nor lets a tenant spend its cap twice. With Redis, a
/// counter Redis already holds is left alone.
pub async fn rebuild(
    policy: &Policy,
    config: &PolicyConfig,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<(), PolicyStartError> {
    let mut pairs: Vec<(Scope, Period)> = config
        .budgets
        .iter()
        .map(|rule| (rule.scope, rule.period))
        .collect();
    pairs.sort_by_key(|(scope, period)| (scope.as_str(), period.as_str()));
    pairs.dedup();
    for (scope, period) in pairs {
        let span = burnrate_policy::period::span(period, now, config.timezone);
        let field = scope_field(scope);
        let fields: &[Field] = if field == Field::Tenant {
            &[Field::Tenant]
        } else {
            &[Field::Tenant, field]
        };
        // Live counters count calls through the gateway only; so does the rebuild (traces and
        // imported events would count a proxied call twice).
        let spent: Vec<(String, String, Money)> = cost_by(
            ledger,
            fields,
            Some("source=gateway"),
            span.start,
            now + Days::seconds(1),
        )
        .await?
        .into_iter()
        .filter_map(|(keys, cost)| {
            let tenant = keys.first()?.clone();
            let id = keys.last()?.clone();
            Some((tenant, id, cost))
        })
        .collect();
        let seeded = policy
            .seed_budgets(config, now, scope, period, &spent)
            .await?;
        tracing::info!(
            scope = scope.as_str(),
            period = period.as_str(),
            seeded,
            "budget spend rebuilt from the ledger"
        );
    }
    if config.kill_switch.enabled {
        let hour = hour_start(now);
        let spent = tenant_costs(ledger, hour, now + Days::seconds(1)).await?;
        policy.seed_hour(now, &spent).await?;
    }
    if config.runs.adaptive_multiple.is_some() {
        let medians = run_cost_medians(config, ledger, now).await?;
        tracing::info!(features = medians.len(), "median run costs computed");
        policy.set_run_costs(medians);
    }
    Ok(())
}

/// Per feature with at least `adaptive_min_runs` runs in the last `adaptive_days`, the
/// median (nearest-rank) cost of its runs, in nanodollars: what the adaptive run limit
/// multiplies.
pub async fn run_cost_medians(
    config: &PolicyConfig,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<HashMap<String, u64>, burnrate_store::StoreError> {
    let days = i64::try_from(config.runs.adaptive_days).unwrap_or(i64::MAX);
    let mut spec = QuerySpec::new(now - Days::days(days), now);
    spec.group_by = vec![Dimension::Field(Field::Feature)];
    spec.metrics = vec![Metric::Runs, Metric::CostPerRunP50];
    let result = ledger.with_store(move |store| store.query(&spec)).await??;
    Ok(result
        .rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [Cell::Text(feature), Cell::Count(runs), Cell::Money(median)]
                if u64::try_from(*runs).unwrap_or(0) >= config.runs.adaptive_min_runs =>
            {
                let nanos = u64::try_from(burnrate_policy::cost::nanos(*median)).ok()?;
                Some((feature.clone(), nanos))
            }
            _ => None,
        })
        .collect())
}

fn scope_field(scope: Scope) -> Field {
    match scope {
        Scope::Tenant => Field::Tenant,
        Scope::User => Field::User,
        Scope::Feature => Field::Feature,
        Scope::Key => Field::Tenant,
    }
}

fn hour_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Days::hours(1)).unwrap_or(now)
}

/// Cost per combination of `fields` over `[since, until)`, from the ledger (rows where a
/// field is not set are left out).
async fn cost_by(
    ledger: &Ledger,
    fields: &[Field],
    filter: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(Vec<String>, Money)>, burnrate_store::StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = fields
        .iter()
        .map(|field| Dimension::Field(*field))
        .collect();
    spec.metrics = vec![Metric::CostUsd];
    spec.filters = filter
        .and_then(|text| text.parse().ok())
        .into_iter()
        .collect();
    let width = fields.len();
    let result = ledger.with_store(move |store| store.query(&spec)).await??;
    Ok(result
        .rows
        .into_iter()
        .filter_map(|row| {
            let keys: Option<Vec<String>> = row
                .get(..width)?
                .iter()
                .map(|cell| match cell {
                    Cell::Text(text) => Some(text.clone()),
                    _ => None,
                })
                .collect();
            match row.get(width) {
                Some(Cell::Money(cost)) => Some((keys?, *cost)),
                _ => None,
            }
        })
        .collect())
}

/// Cost per tenant over `[since, until)`, every source.
async fn tenant_costs(
    ledger: &Ledger,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(String, Money)>, burnrate_store::StoreError> {
    Ok(cost_by(ledger, &[Field::Tenant], None, since, until)
        .await?
        .into_iter()
        .filter_map(|(mut keys, cost)| Some((keys.pop()?, cost)))
        .collect())
}

/// The kill switch's baselines for the hour `now` is in: per tenant, its spend in the same
/// hour on each of the `baseline_days` days before, and whether its history reaches back
/// that far.
pub async fn baselines(
    config: &PolicyConfig,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<Baselines, burnrate_store::StoreError> {
    let days = config.kill_switch.baseline_days;
    let hour = hour_start(now);
    let mut per_day: HashMap<String, Vec<f64>> = HashMap::new();
    for back in 1..=i64::from(days) {
        let start = hour - Days::days(back);
        let spent = tenant_costs(ledger, start, start + Days::hours(1)).await?;
        for (tenant, cost) in spent {
            let slot = per_day
                .entry(tenant)
                .or_insert_with(|| vec![0.0; days as usize]);
            slot[(back - 1) as usize] = burnrate_policy::cost::nanos(cost) as f64;
        }
    }
    // A tenant with spend before the window's start has the history the switch needs.
    let window_start = hour - Days::days(i64::from(days));
    let old = tenant_costs(ledger, window_start - Days::days(366), window_start).await?;
    let seasoned: std::collections::HashSet<String> =
        old.into_iter().map(|(tenant, _)| tenant).collect();
    // A seasoned tenant with no spend in this hour on any baseline day has a baseline of
    // zeros: a runaway in its quiet hours is exactly what the switch is for.
    for tenant in &seasoned {
        per_day
            .entry(tenant.clone())
            .or_insert_with(|| vec![0.0; days as usize]);
    }
    let tenants = per_day
        .into_iter()
        .map(|(tenant, values)| {
            let history = if seasoned.contains(&tenant) { days } else { 0 };
            let baseline = Baseline::from_days(&values, history);
            (tenant, baseline)
        })
        .collect();
    Ok(Baselines {
        hour: now.format("%Y-%m-%dT%H").to_string(),
        tenants,
    })
}

/// Background upkeep until the gateway stops: fresh baselines each hour, expired memory
/// state dropped.
pub fn spawn_upkeep(state: Arc<AppState>) {
    let tasks = state.tasks.clone();
    tokio::spawn(async move {
        let mut computed_for = String::new();
        let mut medians_for = String::new();
        loop {
            let now = Utc::now();
            let hour = now.format("%Y-%m-%dT%H").to_string();
            let config = state.config();
            if config.policy.runs.adaptive_multiple.is_some() && hour != medians_for {
                match run_cost_medians(&config.policy, &state.ledger, now).await {
                    Ok(medians) => {
                        state.policy.set_run_costs(medians);
                        medians_for = hour.clone();
                    }
                    Err(error) => tracing::warn!(%error, "median run costs not computed"),
                }
            }
            if config.policy.kill_switch.enabled && hour != computed_for {
                match baselines(&config.policy, &state.ledger, now).await {
                    Ok(baselines) => {
                        tracing::debug!(tenants = baselines.tenants.len(), %hour, "kill-switch baselines computed");
                        state.policy.set_baselines(baselines);
                        computed_for = hour;
                    }
                    Err(error) => tracing::warn!(%error, "kill-switch baselines not computed"),
                }
            }
            if let State::Memory(memory) = state.policy.state() {
                memory.sweep();
            }
            tokio::select! {
                () = tokio::time::sleep(UPKEEP_EVERY) => {}
                () = tasks.wait() => return,
            }
            if tasks.is_closed() {
                return;
            }
        }
    });
}

/// What a reload changed, or why it could not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// Keys that changed but only take effect after a restart.
    pub needs_restart: Vec<String>,
}

/// Reads the configuration file again and swaps it in. Calls in flight finish with the
/// configuration they started with. Listen addresses, the store and the state backend
/// need a restart; a change to them is reported, not applied.
pub async fn reload(state: &AppState) -> Result<Reloaded, Vec<String>> {
    let current = state.config();
    let Some(path) = current.source.clone() else {
        return Err(vec![
            "the gateway was not started from a configuration file".into(),
        ]);
    };
    let fresh = Config::load(&path).map_err(|error| error.problems)?;
    let notifiers = Notifiers::new(&fresh.notifiers, state.client.clone())?;
    let mut needs_restart = Vec::new();
    if fresh.listen != current.listen {
        needs_restart.push("server.listen".into());
    }
    if fresh.otlp_listen != current.otlp_listen {
        needs_restart.push("server.otlp_listen".into());
    }
    if fresh.store_path != current.store_path || fresh.journal_dir != current.journal_dir {
        needs_restart.push("store".into());
    }
    if fresh.state != current.state {
        needs_restart.push("state".into());
    }
    if fresh.price_overrides != current.price_overrides {
        needs_restart.push("prices.overrides".into());
    }
    if fresh.policy.ladder.cache_ttl_s != current.policy.ladder.cache_ttl_s
        || fresh.policy.ladder.cache_max_mib != current.policy.ladder.cache_max_mib
    {
        needs_restart.push("policy.ladder.cache_ttl_s / cache_max_mib".into());
    }
    // The trail and its folders stay as they started: the ledger thread holds them open.
    if fresh.audit.dir != current.audit.dir
        || fresh.audit.content_dir != current.audit.content_dir
        || fresh.audit.enabled != current.audit.enabled
        || fresh.audit.segment_mb != current.audit.segment_mb
    {
        needs_restart.push("audit.enabled / dir / content_dir / segment_mb".into());
    }
    if fresh.retention.archive_dir != current.retention.archive_dir {
        needs_restart.push("retention.archive_dir".into());
    }
    let mut fresh = fresh;
    fresh.audit.dir.clone_from(&current.audit.dir);
    fresh
        .audit
        .content_dir
        .clone_from(&current.audit.content_dir);
    fresh.audit.enabled = current.audit.enabled;
    fresh.audit.segment_mb = current.audit.segment_mb;
    fresh
        .retention
        .archive_dir
        .clone_from(&current.retention.archive_dir);
    // Capture rules and redaction reload; they write where the trail reads.
    fresh.capture = fresh.audit.compile().ok().flatten();
    let policy = Arc::clone(&fresh.policy);
    let (old_hash, new_hash) = (current.hash.clone(), fresh.hash.clone());
    let detail = match needs_restart.is_empty() {
        true => format!("configuration {old_hash} replaced by {new_hash}"),
        false => format!(
            "configuration {old_hash} replaced by {new_hash}; needs a restart to apply: {}",
            needs_restart.join(", ")
        ),
    };
    state.config.store(Arc::new(fresh));
    state.ledger.audit_with(move |trail| {
        trail.config_changed(Utc::now(), &new_hash);
        trail
            .decision(crate::audit::decision(
                burnrate_audit::Kind::ConfigReload,
                None,
                detail,
            ))
            .map(drop)
    });
    state.notifiers.store(Arc::new(notifiers));
    // New budget rules (or a new time zone's periods) start from the ledger's spend, as at
    // start; counters that exist are left alone.
    if let Err(error) = rebuild(&state.policy, &policy, &state.ledger, Utc::now()).await {
        tracing::error!(%error, "budget spend not rebuilt after the reload");
    }
    tracing::info!(path = %path.display(), ?needs_restart, "configuration reloaded");
    Ok(Reloaded { needs_restart })
}

/// Reloads the configuration on every SIGHUP until the gateway stops.
pub fn spawn_sighup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /api/v1/admin/reload");
            return;
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    received = hangups.recv() => {
                        if received.is_none() {
                            return;
                        }
                    }
                    () = state.tasks.wait() => return,
                }
                if let Err(problems) = reload(&state).await {
                    tracing::error!(problems = %problems.join("; "), "reload refused; the previous configuration stays");
                }
            }
        });
    }
}
