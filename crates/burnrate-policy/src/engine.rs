//! The policy engine: [`Policy::admit`] before a call goes upstream, [`Policy::settle`]
//! after it.
//!
//! Admission, in order: a paused tenant is refused; a run past a limit is refused; the
//! budget levels pick the ladder's rung (a cached answer, a cheaper model); rate limits take
//! their cells; the call's worst-case cost is reserved against every budget it falls under,
//! all or none, or the call is refused with a quota error. Settlement releases the
//! reservation and adds the real cost, corrects the token limits, adds the call to its run,
//! and feeds the kill switch. Reservations make overshoot impossible: a call only runs when
//! its worst case fits in what the budget has not spent or promised to calls in flight.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use burnrate_model::prices::ServiceTier;
use burnrate_model::{Money, PriceBook};
use chrono::{DateTime, Utc};

use crate::cache::{AnswerCache, CachedAnswer};
use crate::config::{BudgetRule, Mode, Period, PolicyConfig, RateLimitRule, Scope, Unpriced};
use crate::cost::{self, WorstCase};
use crate::input::InputShape;
use crate::killswitch::{Baseline, Baselines};
use crate::period;
use crate::state::{
    BudgetCheck, Exceeded, Lease, RateCheck, RateOutcome, Reserve, RunBounds, RunUsage, State,
    StateError, keys,
};

/// What the policy needs to know about a call before it runs.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    /// When the call arrived.
    pub now: DateTime<Utc>,
    /// Tenant (`untagged` when none).
    pub tenant: &'a str,
    /// User, if tagged.
    pub user: Option<&'a str>,
    /// Feature, if tagged.
    pub feature: Option<&'a str>,
    /// The virtual key's id.
    pub key_id: &'a str,
    /// Agent run, if tagged.
    pub run: Option<&'a str>,
    /// Parent run, if tagged.
    pub parent_run: Option<&'a str>,
    /// Provider the call goes to (for price resolution).
    pub provider: &'a str,
    /// Model asked for.
    pub model: &'a str,
    /// Service tier asked for.
    pub tier: ServiceTier,
    /// Request body size in bytes: a strict upper bound of the text input's tokens (every
    /// token of a byte-level BPE vocabulary is at least one byte).
    pub body_bytes: u64,
    /// What else bounds the input ([`crate::input_shape`] of the body).
    pub input: InputShape,
    /// Output cap the request sets.
    pub max_output: Option<u64>,
    /// Completions asked for (`n`), each up to the output cap.
    pub choices: u64,
    /// The request's answer-cache key, when the call may be answered from the cache.
    pub cache_key: Option<u128>,
}

/// Why the ladder changed a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
    /// Sent to a cheaper model.
    Fallback {
        /// Asked for.
        from: String,
        /// Sent to.
        to: String,
    },
    /// Answered from the cache.
    Cached,
}

impl Degraded {
    /// The `X-Burnrate-Degraded` header value.
    pub fn header(&self) -> String {
        match self {
            Degraded::Fallback { from, to } => format!("fallback; from={from}; to={to}"),
            Degraded::Cached => "cached".into(),
        }
    }
}

/// The `X-RateLimit-*` figures of the tightest limit a call passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// Limit per minute.
    pub limit: u64,
    /// Left now.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_s: u64,
}

/// A call let through, with what settlement needs.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    /// The model to call instead of the one asked for (the ladder's fallback).
    pub model: Option<String>,
    /// What the ladder did.
    pub degraded: Option<Degraded>,
    /// What shadow rules would have refused.
    pub shadow: Vec<String>,
    /// Rate-limit headers for the response.
    pub rate: Option<RateHeaders>,
    budgets: Vec<BudgetCheck>,
    /// Per budget: its name and period, in the same order.
    budget_info: Vec<BudgetInfo>,
    /// The reservation against `budgets` (none without budgets).
    lease: Option<Lease>,
    token_limits: Vec<RateCheck>,
    tenant: String,
    run: Option<String>,
    /// The adaptive cost limit of the call's run, in nanodollars (`u64::MAX`: none).
    max_run_cost: u64,
    /// When the call was admitted: its budgets' periods are that moment's.
    admitted_at: DateTime<Utc>,
}

impl Ticket {
    /// Nanodollars reserved for the call.
    fn reserved(&self) -> i64 {
        self.lease.as_ref().map_or(0, |lease| lease.amount)
    }
}

/// What a budget check is, for messages.
#[derive(Debug, Clone)]
struct BudgetInfo {
    /// `tenant:acme-corp:day`.
    name: String,
    /// When its period ends.
    ends: DateTime<Utc>,
    /// Whether it is a tenant's daily cap (crossing it tightens rate limits and alerts).
    tenant_day: bool,
}

/// What admission decided.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Go upstream.
    Proceed(Ticket),
    /// Answer with this cached answer instead of calling the model.
    Cached(Arc<CachedAnswer>, Ticket),
    /// Refuse the call.
    Refuse(Refusal, Vec<Alert>),
}

/// Why a call is refused; each maps to one error the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rate limit (429 with `Retry-After`).
    RateLimited {
        /// `tenant:acme-corp`, `user:u1`, `key:k1`.
        scope: String,
        /// `requests` or `tokens`.
        unit: &'static str,
        /// Per minute.
        limit: u64,
        /// Seconds until the call would fit; `None` when it never fits.
        retry_after_s: Option<u64>,
    },
    /// A budget's cap (429, the quota error).
    Budget {
        /// `tenant:acme-corp:day`.
        scope: String,
        /// The cap.
        limit_usd: Money,
        /// Settled spend this period.
        spent_usd: Money,
        /// Promised to calls in flight.
        reserved_usd: Money,
        /// What this call needed reserved.
        requested_usd: Money,
        /// Seconds until the period resets.
        retry_after_s: u64,
        /// The way out.
        upgrade_message: String,
        /// Where to raise the limit.
        upgrade_url: Option<String>,
    },
    /// A model the budget cannot price.
    Unpriced {
        /// The model.
        model: String,
    },
    /// The tenant is paused (by the kill switch or an operator).
    TenantPaused {
        /// The tenant.
        tenant: String,
        /// Why.
        reason: String,
    },
    /// The agent run is past a limit.
    RunLimit {
        /// The run.
        run: String,
        /// Which limit and by how much, in words.
        limit: String,
    },
}

impl Refusal {
    /// The error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::Budget { .. } => "budget_exceeded",
            Refusal::Unpriced { .. } => "model_unpriced",
            Refusal::TenantPaused { .. } => "tenant_paused",
            Refusal::RunLimit { .. } => "run_limit_exceeded",
        }
    }

    /// One sentence for people.
    pub fn message(&self) -> String {
        match self {
            Refusal::RateLimited {
                scope,
                unit,
                limit,
                retry_after_s,
            } => match retry_after_s {
                Some(seconds) => format!(
                    "rate limit of {limit} {unit} per minute for {scope} reached; retry in {seconds} s"
                ),
                None => format!(
                    "this call needs more {unit} than the limit of {limit} per minute for {scope} allows at all"
                ),
            },
            Refusal::Budget {
                scope,
                limit_usd,
                spent_usd,
                reserved_usd,
                requested_usd,
                upgrade_message,
                ..
            } => format!(
                "budget {scope} of ${limit_usd} cannot cover this call: ${spent_usd} spent, \
                 ${reserved_usd} reserved by calls in flight, this call may cost up to \
                 ${requested_usd}. {upgrade_message}"
            ),
            Refusal::Unpriced { model } => format!(
                "model `{model}` has no price, so its cost cannot be reserved against the budget; \
                 add it to the price overrides or set policy.unpriced = \"allow\""
            ),
            Refusal::TenantPaused { tenant, reason } => format!(
                "tenant {tenant} is paused ({reason}); an operator resumes it with `burnrate tenants resume {tenant}`"
            ),
            Refusal::RunLimit { run, limit } => {
                format!("agent run {run} is stopped: {limit}")
            }
        }
    }
}

/// Something the policy wants people told (sent by the server's notifiers).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Machine name: `budget_cap_crossed`, `tenant_paused`.
    pub kind: &'static str,
    /// Page on-call.
    pub page: bool,
    /// Headline.
    pub title: String,
    /// Body.
    pub text: String,
    /// The tenant concerned.
    pub tenant: String,
    /// Key figures.
    pub fields: Vec<(String, String)>,
}

/// What a finished call used.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Its cost at list price (`None`: unpriced, counted as zero).
    pub cost: Option<Money>,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Tool calls the response asked for.
    pub tool_calls: u64,
    /// `name:args_hash` of each tool call with an argument hash.
    pub tools: Vec<String>,
    /// Whether the call's usage is known. When it is not (a timeout, a cut stream, an
    /// unreadable answer) the provider may still bill it, so the call settles at its
    /// reservation: the budget errs towards refusing, never towards overspending.
    pub usage_known: bool,
}

/// The policy engine and its state.
pub struct Policy {
    state: State,
    cache: AnswerCache,
    baselines: RwLock<Arc<Baselines>>,
    /// Per feature, the median cost of its runs over the last days, in nanodollars: what the
    /// adaptive run limit multiplies.
    run_costs: RwLock<Arc<HashMap<String, u64>>>,
}

fn expire_after(end: DateTime<Utc>) -> i64 {
    // Counters outlive their period by a day, so late settlements still find them.
    end.timestamp() + 86_400
}

fn hour_label(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H").to_string()
}

impl Policy {
    /// An engine over `state`, with the answer cache `config` asks for.
    pub fn new(state: State, config: &PolicyConfig) -> Policy {
        Policy {
            state,
            cache: AnswerCache::new(
                Duration::from_secs(config.ladder.cache_ttl_s),
                config.ladder.cache_max_mib.saturating_mul(1 << 20),
            ),
            baselines: RwLock::new(Arc::new(Baselines::default())),
            run_costs: RwLock::new(Arc::new(HashMap::new())),
        }
    }

    /// Replaces the features' median run costs (nanodollars; computed from the store off the
    /// request path), which the adaptive run limit multiplies.
    pub fn set_run_costs(&self, medians: HashMap<String, u64>) {
        *self
            .run_costs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(medians);
    }

    /// The adaptive cost limit of a run of `feature`, nanodollars; `u64::MAX` when off or
    /// when the feature has no median yet.
    fn run_cost_limit(&self, config: &PolicyConfig, feature: Option<&str>) -> u64 {
        let (Some(multiple), Some(feature)) = (config.runs.adaptive_multiple, feature) else {
            return u64::MAX;
        };
        let medians = self
            .run_costs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        medians
            .get(feature)
            .map_or(u64::MAX, |median| (*median as f64 * multiple) as u64)
    }

    /// The state backend (for pauses from the admin API and the start-up rebuild).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether answers are cached: the caller computes cache keys only then.
    pub fn caches_answers(&self, config: &PolicyConfig) -> bool {
        self.cache.enabled() && !config.budgets.is_empty()
    }

    /// Keeps a successful answer for the ladder's cache rung.
    pub fn remember(&self, key: u128, model: &str, body: bytes::Bytes) {
        self.cache.put(
            key,
            CachedAnswer {
                model: model.to_string(),
                body,
            },
        );
    }

    /// Replaces the kill switch's baselines (computed from the store off the request path).
    pub fn set_baselines(&self, baselines: Baselines) {
        let mut current = self
            .baselines
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(baselines);
    }

    fn baseline(&self, tenant: &str, hour: &str) -> Option<Baseline> {
        let baselines = self
            .baselines
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        (baselines.hour == hour)
            .then(|| baselines.tenants.get(tenant).copied())
            .flatten()
    }

    /// Decides whether a call may run, and reserves what it may cost.
    pub async fn admit(
        &self,
        config: &PolicyConfig,
        book: &PriceBook,
        call: &CallFacts<'_>,
    ) -> Result<Admission, StateError> {
        let mut ticket = Ticket {
            tenant: call.tenant.to_string(),
            max_run_cost: self.run_cost_limit(config, call.feature),
            admitted_at: call.now,
            ..Ticket::default()
        };
        let (budgets, budget_info) = self.budget_checks(config, call);
        let keys: Vec<String> = budgets.iter().map(|check| check.key.clone()).collect();
        let capped_key = config
            .rate_limits
            .iter()
            .any(|rule| rule.scope == Scope::Tenant)
            .then(|| {
                let day = period::span(Period::Day, call.now, config.timezone);
                keys::capped(call.tenant, &day.label)
            });
        // Independent reads, overlapped: with Redis they share one round trip on the
        // multiplexed connection.
        let (paused, run_view, capped, levels) = tokio::join!(
            self.state.paused(call.tenant),
            async {
                // Runs are the tenant's own: another tenant naming the same run id (or
                // parent) reaches a different run.
                match call.run {
                    Some(run) => {
                        let parent = call.parent_run.map(|parent| scoped(call.tenant, parent));
                        self.state
                            .run_admit(
                                &scoped(call.tenant, run),
                                parent.as_deref(),
                                run_bounds(config),
                            )
                            .await
                            .map(Some)
                    }
                    None => Ok(None),
                }
            },
            async {
                match &capped_key {
                    Some(key) => self.state.flag_up(key).await,
                    None => Ok(false),
                }
            },
            self.state.budget_levels(&keys),
        );
        let (paused, run_view, capped, levels) = (paused?, run_view?, capped?, levels?);
        if let Some(reason) = paused {
            let refusal = Refusal::TenantPaused {
                tenant: call.tenant.to_string(),
                reason,
            };
            return Ok(Admission::Refuse(refusal, Vec::new()));
        }
        if let (Some(run), Some(view)) = (call.run, run_view) {
            if let Some(exceeded) = view.exceeded {
                let refusal = Refusal::RunLimit {
                    run: run.to_string(),
                    limit: describe_exceeded(config, &exceeded, view.by_run_above),
                };
                if config.mode_of(config.runs.mode) == Mode::Enforce {
                    return Ok(Admission::Refuse(refusal, Vec::new()));
                }
                ticket.shadow.push(refusal.message());
            }
            ticket.run = Some(scoped(call.tenant, run));
        }

        // Only enforced budgets move the ladder: shadow rules change nothing.
        let share = budgets
            .iter()
            .zip(&levels)
            .filter(|(check, _)| check.enforce)
            .map(|(check, level)| level.committed() as f64 / check.limit as f64)
            .fold(0.0, f64::max);
        if share >= config.ladder.cache_at
            && let Some(answer) = call.cache_key.and_then(|key| self.cache.get(key))
        {
            ticket.degraded = Some(Degraded::Cached);
            return Ok(Admission::Cached(answer, ticket));
        }
        let fallback = config.fallbacks.get(call.model);
        let mut model = call.model;
        if share >= config.ladder.fallback_at
            && let Some(cheaper) = fallback
        {
            model = cheaper;
        }

        let worst = self.worst_case(book, call, model);
        if worst.is_none()
            && budgets.iter().any(|check| check.enforce)
            && config.unpriced == Unpriced::Refuse
        {
            let refusal = Refusal::Unpriced {
                model: model.to_string(),
            };
            return Ok(Admission::Refuse(refusal, Vec::new()));
        }

        // Rate limits and the reservation, overlapped (one round trip with Redis); each is
        // undone when the other refuses.
        let mut lease = Lease::new(
            worst.map_or(0, |worst| worst.nanos),
            config.reservation_ttl_s,
        );
        let (taken, reserved) = tokio::join!(
            self.take_rates(config, call, worst, capped, &mut ticket),
            self.state.budget_reserve(&budgets, &lease),
        );
        let (taken, mut reserved) = match (taken, reserved) {
            (Ok(taken), Ok(reserved)) => (taken, reserved),
            (taken, reserved) => {
                // One side failed (the state backend): undo what the other side took.
                if let Ok(Reserve::Reserved(_)) = &reserved
                    && !budgets.is_empty()
                {
                    let _ = self.state.budget_settle(&budgets, &lease, 0).await;
                }
                if let Ok(Ok(taken)) = &taken {
                    let _ = self.give_back(taken).await;
                }
                return Err(match (taken, reserved) {
                    (Err(error), _) | (_, Err(error)) => error,
                    _ => StateError {
                        backend: "policy",
                        reason: "admission failed".into(),
                    },
                });
            }
        };
        let taken = match taken {
            Ok(taken) => taken,
            Err(refusal) => {
                if matches!(reserved, Reserve::Reserved(_)) && !budgets.is_empty() {
                    self.state.budget_settle(&budgets, &lease, 0).await?;
                }
                return Ok(Admission::Refuse(refusal, Vec::new()));
            }
        };
        if let (Reserve::Denied { .. }, Some(cheaper)) = (&reserved, fallback)
            && model != cheaper.as_str()
            && let Some(cheaper_worst) = self.worst_case(book, call, cheaper)
        {
            let cheaper_lease = Lease::new(cheaper_worst.nanos, config.reservation_ttl_s);
            let again = self.state.budget_reserve(&budgets, &cheaper_lease).await?;
            if matches!(again, Reserve::Reserved(_)) {
                model = cheaper;
                lease = cheaper_lease;
                reserved = again;
            }
        }
        if let Reserve::Denied { index, level } = reserved {
            self.give_back(&taken).await?;
            if let Some(answer) = call.cache_key.and_then(|key| self.cache.get(key)) {
                ticket.degraded = Some(Degraded::Cached);
                ticket.budgets.clear();
                ticket.token_limits.clear();
                return Ok(Admission::Cached(answer, ticket));
            }
            let check = &budgets[index];
            let info = &budget_info[index];
            let refusal = Refusal::Budget {
                scope: info.name.clone(),
                limit_usd: cost::money(check.limit),
                spent_usd: cost::money(level.spent),
                reserved_usd: cost::money(level.reserved),
                requested_usd: cost::money(lease.amount),
                retry_after_s: u64::try_from((info.ends - call.now).num_seconds().max(1))
                    .unwrap_or(1),
                upgrade_message: config.upgrade.message.clone(),
                upgrade_url: config.upgrade.url.clone(),
            };
            let mut alerts = Vec::new();
            // A refusal alone only means this call's worst case does not fit (a huge
            // `max_tokens`, many calls in flight). The cap counts as crossed when settled
            // spend has reached 90% of it and alone leaves no room for this call.
            let spent_out = level.spent.saturating_add(lease.amount) > check.limit
                && i128::from(level.spent) * 10 >= i128::from(check.limit) * 9;
            if info.tenant_day && spent_out {
                alerts.extend(self.cap_crossed(config, call.now, &ticket, check).await?);
            }
            return Ok(Admission::Refuse(refusal, alerts));
        }
        if let Reserve::Reserved(before) = &reserved {
            for ((check, level), info) in budgets.iter().zip(before).zip(&budget_info) {
                if !check.enforce && level.committed().saturating_add(lease.amount) > check.limit {
                    ticket.shadow.push(format!(
                        "budget {} of ${} would refuse this call",
                        info.name,
                        cost::money(check.limit)
                    ));
                }
            }
        }
        if model != call.model {
            ticket.degraded = Some(Degraded::Fallback {
                from: call.model.to_string(),
                to: model.to_string(),
            });
            ticket.model = Some(model.to_string());
        }
        ticket.lease = (!budgets.is_empty()).then_some(lease);
        ticket.budgets = budgets;
        ticket.budget_info = budget_info;
        Ok(Admission::Proceed(ticket))
    }

    /// Settles a call that ran: releases its reservation, adds its cost, corrects its token
    /// limits, adds it to its run and feeds the kill switch. Returns what to tell people.
    pub async fn settle(
        &self,
        config: &PolicyConfig,
        ticket: &Ticket,
        now: DateTime<Utc>,
        outcome: &Outcome,
    ) -> Result<Vec<Alert>, StateError> {
        let mut alerts = Vec::new();
        let reserved = ticket.reserved();
        let actual = if outcome.usage_known {
            outcome.cost.map_or(0, cost::nanos)
        } else {
            reserved
        };
        if actual > reserved && ticket.lease.is_some() {
            // The worst case was not the worst: the answer names a dearer model or tier than
            // the one reserved. The budget counts what was spent, so later calls see it.
            tracing::warn!(
                reserved_usd = %cost::money(reserved),
                spent_usd = %cost::money(actual),
                "a call cost more than its reservation; its budgets may pass their cap by the difference"
            );
        }
        let hour = hour_label(now);
        // Independent updates, overlapped: one round trip with Redis.
        let (after, corrected, run, hour_total) = tokio::join!(
            async {
                let Some(lease) = &ticket.lease else {
                    return Ok(Vec::new());
                };
                self.state
                    .budget_settle(&ticket.budgets, lease, actual)
                    .await
            },
            async {
                for check in &ticket.token_limits {
                    let delta = i64::try_from(outcome.tokens).unwrap_or(i64::MAX)
                        - i64::try_from(check.cost).unwrap_or(i64::MAX);
                    if delta != 0 {
                        self.state
                            .rate_correct(&check.key, check.limit, delta)
                            .await?;
                    }
                }
                Ok(())
            },
            async {
                let Some(run) = &ticket.run else {
                    return Ok(None);
                };
                let usage = RunUsage {
                    tokens: outcome.tokens,
                    tool_calls: outcome.tool_calls,
                    cost: u64::try_from(actual).unwrap_or(0),
                    tools: outcome.tools.clone(),
                };
                let bounds = RunBounds {
                    max_cost: ticket.max_run_cost,
                    ..run_bounds(config)
                };
                self.state.run_settle(run, &usage, bounds).await
            },
            async {
                if actual == 0 {
                    return Ok(0);
                }
                self.state
                    .counter_add(
                        &keys::hour(&ticket.tenant, &hour),
                        actual,
                        now.timestamp() + 7_200,
                    )
                    .await
            },
        );
        let (after, (), _, hour_total) = (after?, corrected?, run?, hour_total?);
        for ((check, info), level) in ticket.budgets.iter().zip(&ticket.budget_info).zip(&after) {
            if info.tenant_day && level.spent >= check.limit {
                // The day of the reservation, not of the settlement (a call across midnight).
                alerts.extend(
                    self.cap_crossed(config, ticket.admitted_at, ticket, check)
                        .await?,
                );
            }
        }
        if actual > 0 {
            alerts.extend(
                self.watch_hour(config, &hour, &ticket.tenant, hour_total)
                    .await?,
            );
        }
        Ok(alerts)
    }

    /// Releases a reservation for a call that never ran (answered from the cache, or the
    /// gateway failed before sending it).
    pub async fn release(&self, ticket: &Ticket) -> Result<(), StateError> {
        if let Some(lease) = &ticket.lease {
            self.state.budget_settle(&ticket.budgets, lease, 0).await?;
        }
        Ok(())
    }

    /// Rebuilds budget spend from the store at start: `spent` per (tenant, id) for one rule's
    /// scope and period, as the store summed it since the period began (for tenant budgets
    /// the id is the tenant).
    pub async fn seed_budgets(
        &self,
        config: &PolicyConfig,
        now: DateTime<Utc>,
        scope: Scope,
        period: Period,
        spent: &[(String, String, Money)],
    ) -> Result<usize, StateError> {
        let span = period::span(period, now, config.timezone);
        let mut seeded = 0;
        for (tenant, id, money) in spent {
            let applies = config
                .budgets
                .iter()
                .any(|rule| rule.scope == scope && rule.period == period && rule_covers(rule, id));
            if applies {
                let key = keys::budget(
                    scope,
                    &state_id(scope, tenant, id),
                    period.as_str(),
                    &span.label,
                );
                self.state
                    .budget_seed(&key, cost::nanos(*money), expire_after(span.end))
                    .await?;
                seeded += 1;
            }
        }
        Ok(seeded)
    }

    /// Rebuilds the tenants' spend in the current hour from the store at start.
    pub async fn seed_hour(
        &self,
        now: DateTime<Utc>,
        spent: &[(String, Money)],
    ) -> Result<(), StateError> {
        let hour = hour_label(now);
        for (tenant, money) in spent {
            self.state
                .counter_seed(
                    &keys::hour(tenant, &hour),
                    cost::nanos(*money),
                    now.timestamp() + 7_200,
                )
                .await?;
        }
        Ok(())
    }

    fn worst_case(&self, book: &PriceBook, call: &CallFacts<'_>, model: &str) -> Option<WorstCase> {
        let key = book.resolve(call.provider, model)?;
        let worst = cost::worst_case(
            book,
            &key,
            call.now.date_naive(),
            call.tier,
            (call.body_bytes, call.input),
            call.max_output,
        )?;
        let choices = call.choices.max(1);
        if choices == 1 {
            return Some(worst);
        }
        // `n` completions: the output part of the worst case repeats, the input does not.
        let one_output = cost::worst_case(
            book,
            &key,
            call.now.date_naive(),
            call.tier,
            (call.body_bytes, call.input),
            Some(0),
        )?;
        let output = worst.nanos - one_output.nanos;
        Some(WorstCase {
            nanos: one_output
                .nanos
                .saturating_add(output.saturating_mul(i64::try_from(choices).unwrap_or(1))),
            input_tokens: worst.input_tokens,
            output_tokens: worst.output_tokens.saturating_mul(choices),
        })
    }

    fn budget_checks(
        &self,
        config: &PolicyConfig,
        call: &CallFacts<'_>,
    ) -> (Vec<BudgetCheck>, Vec<BudgetInfo>) {
        let mut checks = Vec::new();
        let mut info = Vec::new();
        for rule in &config.budgets {
            let Some(id) = subject(rule.scope, call) else {
                continue;
            };
            // A rule naming this id overrides the `*` rule of the same scope and period.
            let overridden = rule.id == "*"
                && config.budgets.iter().any(|other| {
                    other.scope == rule.scope && other.period == rule.period && other.id == id
                });
            if !rule_covers(rule, id) || overridden {
                continue;
            }
            let span = period::span(rule.period, call.now, config.timezone);
            let key = keys::budget(
                rule.scope,
                &state_id(rule.scope, call.tenant, id),
                rule.period.as_str(),
                &span.label,
            );
            if checks.iter().any(|check: &BudgetCheck| check.key == key) {
                continue;
            }
            info.push(BudgetInfo {
                name: format!("{}:{id}:{}", rule.scope.as_str(), rule.period.as_str()),
                ends: span.end,
                tenant_day: rule.scope == Scope::Tenant && rule.period == Period::Day,
            });
            checks.push(BudgetCheck {
                key,
                limit: cost::nanos(rule.limit_usd),
                enforce: config.mode_of(rule.mode) == Mode::Enforce,
                expire_at: expire_after(span.end),
            });
        }
        (checks, info)
    }

    /// Takes every rate limit the call falls under; the token limits taken go in `ticket`.
    async fn take_rates(
        &self,
        config: &PolicyConfig,
        call: &CallFacts<'_>,
        worst: Option<WorstCase>,
        capped: bool,
        ticket: &mut Ticket,
    ) -> Result<Result<Vec<RateCheck>, Refusal>, StateError> {
        let rules: Vec<(&RateLimitRule, &str)> = config
            .rate_limits
            .iter()
            .filter_map(|rule| {
                let id = subject(rule.scope, call)?;
                // A rule naming this id overrides the `*` rule of the same scope.
                let overridden = rule.id == "*"
                    && config
                        .rate_limits
                        .iter()
                        .any(|other| other.scope == rule.scope && other.id == id);
                ((rule.id == "*" || rule.id == id) && !overridden).then_some((rule, id))
            })
            .collect();
        if rules.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        // Tokens reserved: the usual estimate of four bytes a token for the input (corrected
        // after the call) plus the output cap.
        let output = worst.map_or_else(
            || {
                call.max_output
                    .unwrap_or(cost::UNKNOWN_MAX_OUTPUT)
                    .saturating_mul(call.choices.max(1))
            },
            |worst| worst.output_tokens,
        );
        let tokens = call.body_bytes.div_ceil(4).saturating_add(output);
        let mut checks = Vec::new();
        let mut described = Vec::new();
        for (rule, id) in rules {
            let shrink = |limit: u64| {
                if capped && rule.scope == Scope::Tenant {
                    ((limit as f64 * config.ladder.capped_rate_fraction).ceil() as u64).max(1)
                } else {
                    limit
                }
            };
            let enforce = config.mode_of(rule.mode) == Mode::Enforce;
            for (unit, limit, cost) in [
                ("requests", rule.requests_per_minute, 1),
                ("tokens", rule.tokens_per_minute, tokens),
            ] {
                if let Some(limit) = limit {
                    let short = if unit == "requests" { "rpm" } else { "tpm" };
                    checks.push(RateCheck {
                        key: keys::rate(rule.scope, &state_id(rule.scope, call.tenant, id), short),
                        limit: shrink(limit),
                        cost,
                    });
                    described.push((format!("{}:{id}", rule.scope.as_str()), unit, enforce));
                }
            }
        }
        loop {
            match self.state.rate_take(&checks).await? {
                RateOutcome::Allowed { reset_us } => {
                    ticket.rate = checks
                        .iter()
                        .zip(&reset_us)
                        .map(|(check, reset)| RateHeaders {
                            limit: check.limit,
                            remaining: check.remaining(*reset),
                            reset_s: seconds_up(*reset),
                        })
                        .min_by_key(|headers| headers.remaining);
                    ticket.token_limits = checks
                        .iter()
                        .zip(&described)
                        .filter(|(_, (_, unit, _))| *unit == "tokens")
                        .map(|(check, _)| check.clone())
                        .collect();
                    return Ok(Ok(checks));
                }
                RateOutcome::Denied {
                    index,
                    retry_after_us,
                } => {
                    let (scope, unit, enforce) = described.remove(index);
                    let check = checks.remove(index);
                    let refusal = Refusal::RateLimited {
                        scope,
                        unit,
                        limit: check.limit,
                        retry_after_s: retry_after_us.map(|us| seconds_up(us).max(1)),
                    };
                    if enforce {
                        return Ok(Err(refusal));
                    }
                    ticket.shadow.push(refusal.message());
                }
            }
        }
    }

    async fn give_back(&self, taken: &[RateCheck]) -> Result<(), StateError> {
        for check in taken {
            let cells = i64::try_from(check.cost).unwrap_or(i64::MAX);
            self.state
                .rate_correct(&check.key, check.limit, -cells)
                .await?;
        }
        Ok(())
    }

    /// Raises the tenant's capped flag for the day; alerts the first time.
    async fn cap_crossed(
        &self,
        config: &PolicyConfig,
        now: DateTime<Utc>,
        ticket: &Ticket,
        check: &BudgetCheck,
    ) -> Result<Option<Alert>, StateError> {
        if !check.enforce {
            return Ok(None);
        }
        let day = period::span(Period::Day, now, config.timezone);
        let key = keys::capped(&ticket.tenant, &day.label);
        if !self.state.flag_raise(&key, day.end.timestamp()).await? {
            return Ok(None);
        }
        let fraction = config.ladder.capped_rate_fraction;
        Ok(Some(Alert {
            kind: "budget_cap_crossed",
            page: false,
            title: format!("Tenant {} reached its daily budget", ticket.tenant),
            text: format!(
                "Tenant *{}* has reached its daily cap of ${}. Calls that do not fit are refused \
                 with a quota error until {}, and its rate limits are cut to {:.0}% until then.",
                ticket.tenant,
                cost::money(check.limit),
                day.end.format("%Y-%m-%d %H:%M UTC"),
                fraction * 100.0
            ),
            tenant: ticket.tenant.clone(),
            fields: vec![
                ("cap".into(), format!("${}", cost::money(check.limit))),
                ("day".into(), day.label),
                ("rate limits".into(), format!("{:.0}%", fraction * 100.0)),
            ],
        }))
    }

    /// Pauses the tenant when its spend this hour (`total`) is far above its baseline.
    async fn watch_hour(
        &self,
        config: &PolicyConfig,
        hour: &str,
        tenant: &str,
        total: i64,
    ) -> Result<Option<Alert>, StateError> {
        let kill = &config.kill_switch;
        if !kill.enabled || total < cost::nanos(kill.min_hour_spend_usd) {
            return Ok(None);
        }
        let Some(baseline) = self.baseline(tenant, hour) else {
            return Ok(None);
        };
        if baseline.history_days < kill.baseline_days {
            return Ok(None);
        }
        let z = baseline.z(total as f64, cost::nanos(kill.min_stddev_usd) as f64);
        if z <= kill.z_threshold {
            return Ok(None);
        }
        let spent = cost::money(total);
        let usual = cost::money(baseline.mean as i64);
        let reason = format!(
            "kill switch: ${spent} spent in hour {hour} UTC, z-score {z:.1} against its {}-day baseline of ${usual}",
            kill.baseline_days
        );
        if config.mode_of(kill.mode) == Mode::Shadow {
            tracing::warn!(tenant, %reason, "shadow mode: the kill switch would pause this tenant");
            return Ok(None);
        }
        if !self.state.pause(tenant, &reason).await? {
            return Ok(None);
        }
        tracing::warn!(tenant, %reason, "tenant paused");
        Ok(Some(Alert {
            kind: "tenant_paused",
            page: true,
            title: format!("Tenant {tenant} paused by the kill switch"),
            text: format!(
                "Tenant *{tenant}* spent ${spent} in hour {hour} UTC against a usual ${usual} \
                 (z-score {z:.1}, threshold {}). Every call is refused until an operator runs \
                 `burnrate tenants resume {tenant}`.",
                kill.z_threshold
            ),
            tenant: tenant.to_string(),
            fields: vec![
                ("spent this hour".into(), format!("${spent}")),
                ("baseline mean".into(), format!("${usual}")),
                ("z-score".into(), format!("{z:.1}")),
            ],
        }))
    }
}

/// Microseconds as whole seconds, rounded up.
fn seconds_up(us: i64) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(0).div_ceil(1_000_000)
}

/// The state id of a rule's subject: user ids are the tenant's own, so they are scoped by
/// tenant (two tenants' user `1` are two users); tenants, features and keys are global.
pub(crate) fn state_id(scope: Scope, tenant: &str, id: &str) -> String {
    match scope {
        Scope::User => scoped(tenant, id),
        Scope::Tenant | Scope::Feature | Scope::Key => id.to_string(),
    }
}

/// `id` within `tenant`, unambiguously (the tenant is length-prefixed).
pub fn scoped(tenant: &str, id: &str) -> String {
    format!("{}:{tenant}:{id}", tenant.len())
}

/// The id a rule of `scope` counts this call under.
fn subject<'a>(scope: Scope, call: &CallFacts<'a>) -> Option<&'a str> {
    match scope {
        Scope::Tenant => Some(call.tenant),
        Scope::User => call.user,
        Scope::Feature => call.feature,
        Scope::Key => Some(call.key_id),
    }
}

pub(crate) fn rule_covers(rule: &BudgetRule, id: &str) -> bool {
    rule.id == "*" || rule.id == id
}

fn run_bounds(config: &PolicyConfig) -> RunBounds {
    RunBounds {
        max_tokens: config.runs.max_tokens,
        max_tool_calls: config.runs.max_tool_calls,
        max_depth: config.runs.max_depth,
        loop_repeats: config.runs.loop_repeats,
        max_cost: u64::MAX,
        ttl_s: config.runs.idle_ttl_s,
    }
}

/// Which run went past which limit, and by how much, in words: the run refused, or (when
/// `by_run_above`) a run above it, whose tokens and tool calls count its sub-agents'.
fn describe_exceeded(config: &PolicyConfig, exceeded: &Exceeded, by_run_above: bool) -> String {
    let runs = &config.runs;
    let (who, that) = match by_run_above {
        true => ("a run above it", "that run"),
        false => ("it", "it"),
    };
    let limit = match exceeded {
        Exceeded::Tokens(used) => format!(
            "max_tokens limit ({}): {that} has used {used} tokens (its sub-agents' count too)",
            runs.max_tokens
        ),
        Exceeded::ToolCalls(used) => format!(
            "max_tool_calls limit ({}): {that} has made {used} tool calls (its sub-agents' count too)",
            runs.max_tool_calls
        ),
        Exceeded::Depth(depth) => format!(
            "max_depth limit ({}): {that} is a sub-agent at depth {depth}",
            runs.max_depth
        ),
        Exceeded::Loop(tool, times) => {
            let name = tool
                .rsplit_once(':')
                .map_or(tool.as_str(), |(name, _)| name);
            format!(
                "loop_repeats limit ({}): {that} called tool `{name}` {times} times with the same arguments",
                runs.loop_repeats
            )
        }
        Exceeded::Cost(nanos) => format!(
            "adaptive cost limit ({}× its feature's median run): {that} has cost ${}",
            runs.adaptive_multiple.unwrap_or_default(),
            cost::money(i64::try_from(*nanos).unwrap_or(i64::MAX))
        ),
    };
    format!("{who} is past its {limit}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::state::memory::MemoryState;

    fn call<'a>(tenant: &'a str, now: DateTime<Utc>) -> CallFacts<'a> {
        CallFacts {
            now,
            tenant,
            user: Some("u1"),
            feature: None,
            key_id: "k",
            run: None,
            parent_run: None,
            provider: "openai",
            model: "gpt-4o",
            tier: ServiceTier::Standard,
            body_bytes: 100,
            input: InputShape::default(),
            max_output: Some(1_000),
            choices: 1,
            cache_key: None,
        }
    }

    fn admitted(admission: &Admission) -> bool {
        matches!(admission, Admission::Proceed(_))
    }

    #[tokio::test]
    async fn a_rule_naming_an_id_overrides_the_star_rule() {
        let config: PolicyConfig = toml::from_str(
            r#"
            [[rate_limits]]
            scope = "tenant"
            requests_per_minute = 1
            [[rate_limits]]
            scope = "tenant"
            id = "vip"
            requests_per_minute = 3
            [[budgets]]
            scope = "tenant"
            period = "day"
            limit_usd = "1000"
            [[budgets]]
            scope = "tenant"
            id = "vip"
            period = "day"
            limit_usd = "0.015"
            "#,
        )
        .unwrap();
        let policy = Policy::new(State::Memory(MemoryState::new()), &config);
        let book = PriceBook::bundled().unwrap();
        let now = Utc::now();
        // Everyone else: one call a minute under the `*` rule.
        let first = policy
            .admit(&config, &book, &call("acme", now))
            .await
            .unwrap();
        let second = policy
            .admit(&config, &book, &call("acme", now))
            .await
            .unwrap();
        assert!(admitted(&first) && !admitted(&second));
        // vip: three a minute, and its own $0.015 cap (one $0.01 worst case fits, two do not).
        let first = policy
            .admit(&config, &book, &call("vip", now))
            .await
            .unwrap();
        let second = policy
            .admit(&config, &book, &call("vip", now))
            .await
            .unwrap();
        assert!(admitted(&first));
        match second {
            Admission::Refuse(Refusal::Budget { scope, .. }, _) => {
                assert_eq!(scope, "tenant:vip:day");
            }
            other => panic!("expected the vip budget to refuse, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn input_the_body_does_not_carry_and_the_auto_tier_are_reserved_at_their_worst() {
        let config: PolicyConfig = toml::from_str(
            r#"
            [[budgets]]
            scope = "tenant"
            period = "day"
            limit_usd = "0.30"
            "#,
        )
        .unwrap();
        let policy = Policy::new(State::Memory(MemoryState::new()), &config);
        let book = PriceBook::bundled().unwrap();
        let now = Utc::now();
        let reserved = |admission: Admission| match admission {
            Admission::Proceed(ticket) => Ok(cost::money(ticket.reserved())),
            Admission::Refuse(Refusal::Budget { requested_usd, .. }, _) => Err(requested_usd),
            other => panic!("expected a reservation or a budget refusal, got {other:?}"),
        };
        // Text: 100 bytes bound the input. An image: gpt-4o's 128k context window does.
        let text = reserved(
            policy
                .admit(&config, &book, &call("text", now))
                .await
                .unwrap(),
        )
        .unwrap();
        let mut image = call("image", now);
        image.input = crate::input_shape(
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
        );
        let image = reserved(policy.admit(&config, &book, &image).await.unwrap());
        let image_cost = image.expect_err("128k input tokens do not fit $0.30");
        assert!(image_cost > "0.32".parse().unwrap(), "{image_cost}");
        // No tier (OpenAI's `auto`) reserves at priority prices by default.
        let mut auto = call("auto", now);
        auto.tier = config.reservation_tier(None);
        let auto = reserved(policy.admit(&config, &book, &auto).await.unwrap()).unwrap();
        assert!(auto > text, "priority {auto} must exceed standard {text}");
        assert_eq!(
            config.reservation_tier(Some("default")),
            ServiceTier::Standard
        );
    }
}
