//! Where policy state lives: in this process ([`memory`]) or in Redis ([`redis`]), shared by
//! every gateway replica. Both backends offer the same atomic operations with the same
//! arithmetic; the Redis one runs each as a Lua script, so no two replicas can interleave
//! inside one.

pub mod memory;
pub mod redis;

use crate::gcra::Gcra;

/// One rate limit a call takes cells from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCheck {
    /// State key of the bucket.
    pub key: String,
    /// Cells per minute.
    pub limit: u64,
    /// Cells this call takes.
    pub cost: u64,
}

/// What taking from several rate limits at once came to: all of them or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateOutcome {
    /// Every check was taken; per check, microseconds until its bucket is full again.
    Allowed {
        /// Per check: time until the bucket is full again, µs.
        reset_us: Vec<i64>,
    },
    /// The check at `index` did not fit; nothing was taken.
    Denied {
        /// Which check.
        index: usize,
        /// Wait before it fits, µs (`None`: never, the cost is above the limit).
        retry_after_us: Option<i64>,
    },
}

impl RateCheck {
    /// Cells left after an allowed take whose bucket is full again in `reset_us`.
    pub fn remaining(&self, reset_us: i64) -> u64 {
        let gcra = Gcra { limit: self.limit };
        u64::try_from((gcra.tau_us() - reset_us).max(0) / gcra.interval_us()).unwrap_or(0)
    }
}

/// One budget counter a call reserves against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    /// State key of the counter (names the period).
    pub key: String,
    /// The cap, nanodollars.
    pub limit: i64,
    /// `false` for shadow rules: counted, never refusing.
    pub enforce: bool,
    /// When the counter may be forgotten (after its period), Unix seconds.
    pub expire_at: i64,
}

/// One call's reservation against its budget counters. Each counter records it with an
/// expiry, so a reservation whose call never settles (a task cancelled mid-admission, a reply
/// lost to a timeout after the backend acted, a crashed replica) lapses and is released by
/// the next reservation against that counter. Settling a lapsed or already settled lease
/// releases nothing a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unique among every replica's leases (a UUIDv7).
    pub id: u128,
    /// Nanodollars reserved on each counter.
    pub amount: i64,
    /// Seconds the reservation holds without settlement.
    pub ttl_s: i64,
}

impl Lease {
    /// A new lease of `amount` nanodollars for `ttl_s` seconds.
    pub fn new(amount: i64, ttl_s: i64) -> Lease {
        Lease {
            id: uuid::Uuid::now_v7().as_u128(),
            amount,
            ttl_s,
        }
    }

    /// The lease as a counter records it: `amount:id`.
    fn member(&self) -> String {
        format!("{}:{:032x}", self.amount, self.id)
    }
}

/// A budget counter's state, nanodollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    /// Settled spend.
    pub spent: i64,
    /// Reserved by calls in flight.
    pub reserved: i64,
}

impl Level {
    /// Spent plus reserved.
    pub fn committed(self) -> i64 {
        self.spent.saturating_add(self.reserved)
    }
}

/// What reserving against several budgets at once came to: all of them or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved everywhere; the levels before this reservation, per check.
    Reserved(Vec<Level>),
    /// The enforced check at `index` would go past its cap; nothing was reserved.
    Denied {
        /// Which check.
        index: usize,
        /// Its level at the time.
        level: Level,
    },
}

/// How many runs above a run count its calls, at most: far beyond any sensible `max_depth`,
/// and a bound on the work one settlement does when parent links form a long chain.
pub const MAX_RUNS_ABOVE: usize = 32;

/// What a run has done, as far as its limits care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Sub-agent depth (0 for a run without a parent).
    pub depth: u64,
    /// The limit the run went past, if it did, else the limit a run above it (its parent,
    /// its parent's parent…) went past: a run's tokens and tool calls count for every run
    /// above it too, and a run stops when any run above it does.
    pub exceeded: Option<Exceeded>,
    /// `exceeded` is a run's above this one.
    pub by_run_above: bool,
}

/// The limit a run went past and by how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    /// Total tokens; how many it used.
    Tokens(u64),
    /// Tool calls; how many it made.
    ToolCalls(u64),
    /// Sub-agent depth; its depth.
    Depth(u64),
    /// The loop detector: this tool (`name:args_hash`) this many times.
    Loop(String, u64),
    /// The adaptive cost limit; what the run has cost, in nanodollars.
    Cost(u64),
}

impl Exceeded {
    /// The storable form: `code value [tool]`.
    pub fn encode(&self) -> String {
        match self {
            Exceeded::Tokens(used) => format!("tokens {used}"),
            Exceeded::ToolCalls(used) => format!("tool_calls {used}"),
            Exceeded::Depth(depth) => format!("depth {depth}"),
            Exceeded::Loop(tool, times) => format!("loop {times} {tool}"),
            Exceeded::Cost(nanos) => format!("cost {nanos}"),
        }
    }

    /// Reads [`Exceeded::encode`]'s form.
    pub fn decode(text: &str) -> Option<Exceeded> {
        let mut parts = text.splitn(3, ' ');
        let code = parts.next()?;
        let value = parts.next()?.parse().ok()?;
        match code {
            "tokens" => Some(Exceeded::Tokens(value)),
            "tool_calls" => Some(Exceeded::ToolCalls(value)),
            "depth" => Some(Exceeded::Depth(value)),
            "loop" => Some(Exceeded::Loop(parts.next()?.to_string(), value)),
            "cost" => Some(Exceeded::Cost(value)),
            _ => None,
        }
    }
}

/// The run limits a settlement checks, and how long an idle run is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBounds {
    /// Total tokens.
    pub max_tokens: u64,
    /// Tool calls.
    pub max_tool_calls: u64,
    /// Depth.
    pub max_depth: u64,
    /// Same tool with the same arguments.
    pub loop_repeats: u64,
    /// Cost in nanodollars (`u64::MAX`: no cost limit for this run).
    pub max_cost: u64,
    /// Idle lifetime, seconds.
    pub ttl_s: u64,
}

/// What one settled call adds to its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunUsage {
    /// Input plus output tokens.
    pub tokens: u64,
    /// Tool calls asked for.
    pub tool_calls: u64,
    /// What the call cost, in nanodollars.
    pub cost: u64,
    /// `name:args_hash` of each tool call with an argument hash.
    pub tools: Vec<String>,
}

/// A paused tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pause {
    /// The tenant.
    pub tenant_id: String,
    /// Why.
    pub reason: String,
}

/// A failure of the state backend (Redis unreachable, a script error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy state ({backend}): {reason}")]
pub struct StateError {
    /// `redis` or `memory`.
    pub backend: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// The policy state backend.
pub enum State {
    /// In this process.
    Memory(memory::MemoryState),
    /// In Redis, shared by replicas.
    Redis(redis::RedisState),
}

/// Dispatches one operation to the backend.
macro_rules! dispatch {
    ($self:ident . $op:ident ( $($arg:expr),* )) => {
        match $self {
            State::Memory(state) => Ok(state.$op($($arg),*)),
            State::Redis(state) => state.$op($($arg),*).await,
        }
    };
}

impl State {
    /// Takes from every rate limit in `checks`, or from none.
    pub async fn rate_take(&self, checks: &[RateCheck]) -> Result<RateOutcome, StateError> {
        if checks.is_empty() {
            return Ok(RateOutcome::Allowed {
                reset_us: Vec::new(),
            });
        }
        dispatch!(self.rate_take(checks))
    }

    /// Corrects a rate limit by `delta` cells (negative gives back).
    pub async fn rate_correct(&self, key: &str, limit: u64, delta: i64) -> Result<(), StateError> {
        dispatch!(self.rate_correct(key, limit, delta))
    }

    /// The levels of budget counters.
    pub async fn budget_levels(&self, keys: &[String]) -> Result<Vec<Level>, StateError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.budget_levels(keys))
    }

    /// Reserves a lease against every check, or against none, after releasing the checks'
    /// lapsed leases.
    pub async fn budget_reserve(
        &self,
        checks: &[BudgetCheck],
        lease: &Lease,
    ) -> Result<Reserve, StateError> {
        if checks.is_empty() {
            return Ok(Reserve::Reserved(Vec::new()));
        }
        dispatch!(self.budget_reserve(checks, lease))
    }

    /// Releases a lease (unless it lapsed or was settled already) and adds the real cost;
    /// the levels after.
    pub async fn budget_settle(
        &self,
        checks: &[BudgetCheck],
        lease: &Lease,
        actual: i64,
    ) -> Result<Vec<Level>, StateError> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.budget_settle(checks, lease, actual))
    }

    /// Adds spend rebuilt from the store to a counter, once: a counter seeded before (by
    /// this replica or another, or before a restart) is left as it is.
    pub async fn budget_seed(
        &self,
        key: &str,
        spent: i64,
        expire_at: i64,
    ) -> Result<(), StateError> {
        dispatch!(self.budget_seed(key, spent, expire_at))
    }

    /// Adds to a plain counter and returns its new total.
    pub async fn counter_add(
        &self,
        key: &str,
        amount: i64,
        expire_at: i64,
    ) -> Result<i64, StateError> {
        dispatch!(self.counter_add(key, amount, expire_at))
    }

    /// Sets a counter when the backend has none for it.
    pub async fn counter_seed(
        &self,
        key: &str,
        value: i64,
        expire_at: i64,
    ) -> Result<(), StateError> {
        dispatch!(self.counter_seed(key, value, expire_at))
    }

    /// Raises a flag; `true` when this call raised it.
    pub async fn flag_raise(&self, key: &str, expire_at: i64) -> Result<bool, StateError> {
        dispatch!(self.flag_raise(key, expire_at))
    }

    /// Whether a flag is up.
    pub async fn flag_up(&self, key: &str) -> Result<bool, StateError> {
        dispatch!(self.flag_up(key))
    }

    /// Pauses a tenant; `true` when it was not paused before.
    pub async fn pause(&self, tenant: &str, reason: &str) -> Result<bool, StateError> {
        dispatch!(self.pause(tenant, reason))
    }

    /// Resumes a tenant; `true` when it was paused.
    pub async fn resume(&self, tenant: &str) -> Result<bool, StateError> {
        dispatch!(self.resume(tenant))
    }

    /// Why a tenant is paused, if it is.
    pub async fn paused(&self, tenant: &str) -> Result<Option<String>, StateError> {
        dispatch!(self.paused(tenant))
    }

    /// Every paused tenant.
    pub async fn pauses(&self) -> Result<Vec<Pause>, StateError> {
        dispatch!(self.pauses())
    }

    /// Looks a run up, registering it (its depth and the runs above it, from its parent's) on
    /// first sight.
    pub async fn run_admit(
        &self,
        run: &str,
        parent: Option<&str>,
        bounds: RunBounds,
    ) -> Result<RunView, StateError> {
        dispatch!(self.run_admit(run, parent, bounds))
    }

    /// Adds a settled call to its run, and its tokens and tool calls to every run above it;
    /// the limit the run itself is past, if any.
    pub async fn run_settle(
        &self,
        run: &str,
        usage: &RunUsage,
        bounds: RunBounds,
    ) -> Result<Option<Exceeded>, StateError> {
        dispatch!(self.run_settle(run, usage, bounds))
    }
}

/// State keys, each id length-prefixed so no id can forge another key.
pub mod keys {
    use crate::config::Scope;

    fn id(text: &str) -> String {
        format!("{}:{text}", text.len())
    }

    /// A rate-limit bucket: `unit` is `rpm` or `tpm`.
    pub fn rate(scope: Scope, who: &str, unit: &str) -> String {
        format!("burnrate:rate:{}:{unit}:{}", scope.as_str(), id(who))
    }

    /// A budget counter for one period.
    pub fn budget(scope: Scope, who: &str, period: &str, label: &str) -> String {
        format!(
            "burnrate:budget:{}:{period}:{label}:{}",
            scope.as_str(),
            id(who)
        )
    }

    /// A tenant's spend in one hour (`2026-11-23T18`, UTC).
    pub fn hour(tenant: &str, hour: &str) -> String {
        format!("burnrate:hour:{hour}:{}", id(tenant))
    }

    /// The flag of a tenant past a daily cap on `day`.
    pub fn capped(tenant: &str, day: &str) -> String {
        format!("burnrate:capped:{day}:{}", id(tenant))
    }

    /// A run's state.
    pub fn run(run: &str) -> String {
        format!("burnrate:run:{}", id(run))
    }

    /// A run's tool-call counts, for the loop detector.
    pub fn run_loops(run: &str) -> String {
        format!("burnrate:runloops:{}", id(run))
    }

    /// The hash of paused tenants.
    pub const PAUSES: &str = "burnrate:paused";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceeded_round_trips() {
        for exceeded in [
            Exceeded::Tokens(500_001),
            Exceeded::ToolCalls(51),
            Exceeded::Depth(4),
            Exceeded::Loop("search:ab12 cd".into(), 5),
        ] {
            assert_eq!(Exceeded::decode(&exceeded.encode()), Some(exceeded));
        }
        assert_eq!(Exceeded::decode("nonsense"), None);
    }

    #[test]
    fn ids_cannot_forge_keys() {
        use crate::config::Scope;
        assert_ne!(
            keys::budget(Scope::Tenant, "a:day:x", "day", "2026-11-23"),
            keys::budget(Scope::Tenant, "a", "day", "2026-11-23"),
        );
        assert_ne!(
            keys::rate(Scope::User, "1:a", "rpm"),
            keys::rate(Scope::User, "a", "rpm")
        );
    }
}
