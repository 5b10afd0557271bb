//! Policy state in this process: a few maps behind short mutexes. Every operation holds its
//! lock for the whole of its arithmetic, so operations are atomic as in Redis.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    BudgetCheck, Exceeded, Lease, Level, MAX_RUNS_ABOVE, Pause, RateCheck, RateOutcome, Reserve,
    RunBounds, RunUsage, RunView,
};
use crate::gcra::{Gcra, Take};

/// A value and when it may be dropped (Unix seconds; `i64::MAX`: never).
#[derive(Debug, Clone, Default)]
struct Expiring<T> {
    value: T,
    expire_at: i64,
}

#[derive(Debug, Clone, Default)]
struct Run {
    /// Seen as a run of its own (admitted, or settled): not only as a run above one. Until
    /// then its depth and parent are unknown.
    registered: bool,
    depth: u64,
    /// The run it is a sub-agent of. The runs above it are found by following these links
    /// when they are needed, so a link learned after it registered still counts.
    parent: Option<String>,
    /// Its own calls' and every run's below it.
    tokens: u64,
    /// Its own calls' and every run's below it.
    tool_calls: u64,
    /// Nanodollars, its own calls'.
    cost: u64,
    loops: HashMap<String, u64>,
    exceeded: Option<Exceeded>,
}

impl Run {
    /// The limit its calls and its sub-agents' are past, of those that count both: tokens,
    /// then tool calls.
    fn tree_limit(&self, bounds: RunBounds) -> Option<Exceeded> {
        if self.tokens > bounds.max_tokens {
            Some(Exceeded::Tokens(self.tokens))
        } else {
            (self.tool_calls > bounds.max_tool_calls)
                .then_some(Exceeded::ToolCalls(self.tool_calls))
        }
    }
}

/// A budget counter: its level, the leases behind its reservations, whether it was seeded.
#[derive(Debug, Clone, Default)]
struct Counter {
    level: Level,
    /// Lease id → (expiry in Unix seconds, amount).
    leases: HashMap<u128, (i64, i64)>,
    /// No lease expires before this (0 until known): the purge's short cut.
    earliest: i64,
    seeded: bool,
}

impl Counter {
    /// Releases the leases that have lapsed by `now`.
    fn purge(&mut self, now: i64) {
        if now < self.earliest {
            return;
        }
        let mut lapsed = 0i64;
        self.leases.retain(|_, (expires, amount)| {
            let keep = *expires > now;
            if !keep {
                lapsed = lapsed.saturating_add(*amount);
            }
            keep
        });
        self.level.reserved = self.level.reserved.saturating_sub(lapsed).max(0);
        self.earliest = self
            .leases
            .values()
            .map(|(expires, _)| *expires)
            .min()
            .unwrap_or(i64::MAX);
    }
}

/// Policy state in memory.
#[derive(Default)]
pub struct MemoryState {
    rates: Mutex<HashMap<String, Expiring<i64>>>,
    budgets: Mutex<HashMap<String, Expiring<Counter>>>,
    counters: Mutex<HashMap<String, Expiring<i64>>>,
    pauses: Mutex<HashMap<String, String>>,
    runs: Mutex<HashMap<String, Expiring<Run>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain numbers: a panic elsewhere cannot leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

fn now_s() -> i64 {
    now_us() / 1_000_000
}

impl MemoryState {
    /// Empty state.
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Drops every entry past its expiry.
    pub fn sweep(&self) {
        let now = now_s();
        let now_us = now_us();
        lock(&self.rates).retain(|_, tat| tat.value > now_us);
        lock(&self.budgets).retain(|_, entry| entry.expire_at > now);
        lock(&self.counters).retain(|_, entry| entry.expire_at > now);
        lock(&self.runs).retain(|_, entry| entry.expire_at > now);
    }

    pub(super) fn rate_take(&self, checks: &[RateCheck]) -> RateOutcome {
        let now = now_us();
        let mut rates = lock(&self.rates);
        let mut tats = Vec::with_capacity(checks.len());
        for (index, check) in checks.iter().enumerate() {
            let gcra = Gcra { limit: check.limit };
            let tat = rates.get(&check.key).map(|entry| entry.value);
            match gcra.take(tat, now, check.cost) {
                Take::Allowed { tat } => tats.push(tat),
                Take::Denied { retry_after_us } => {
                    return RateOutcome::Denied {
                        index,
                        retry_after_us,
                    };
                }
            }
        }
        for (check, tat) in checks.iter().zip(&tats) {
            rates.insert(
                check.key.clone(),
                Expiring {
                    value: *tat,
                    expire_at: i64::MAX,
                },
            );
        }
        RateOutcome::Allowed {
            reset_us: tats.iter().map(|tat| tat - now).collect(),
        }
    }

    pub(super) fn rate_correct(&self, key: &str, limit: u64, delta: i64) {
        let now = now_us();
        let mut rates = lock(&self.rates);
        let tat = rates.get(key).map(|entry| entry.value);
        let corrected = Gcra { limit }.correct(tat, now, delta);
        rates.insert(
            key.to_string(),
            Expiring {
                value: corrected,
                expire_at: i64::MAX,
            },
        );
    }

    pub(super) fn budget_levels(&self, keys: &[String]) -> Vec<Level> {
        let budgets = lock(&self.budgets);
        keys.iter()
            .map(|key| {
                budgets
                    .get(key)
                    .map(|entry| entry.value.level)
                    .unwrap_or_default()
            })
            .collect()
    }

    pub(super) fn budget_reserve(&self, checks: &[BudgetCheck], lease: &Lease) -> Reserve {
        let now = now_s();
        let mut budgets = lock(&self.budgets);
        let mut levels = Vec::with_capacity(checks.len());
        for (index, check) in checks.iter().enumerate() {
            let level = match budgets.get_mut(&check.key) {
                Some(entry) => {
                    entry.value.purge(now);
                    entry.value.level
                }
                None => Level::default(),
            };
            if check.enforce && level.committed().saturating_add(lease.amount) > check.limit {
                return Reserve::Denied { index, level };
            }
            levels.push(level);
        }
        let expires = now.saturating_add(lease.ttl_s);
        for check in checks {
            let entry = budgets.entry(check.key.clone()).or_default();
            let counter = &mut entry.value;
            counter.level.reserved = counter.level.reserved.saturating_add(lease.amount);
            counter.leases.insert(lease.id, (expires, lease.amount));
            counter.earliest = counter.earliest.min(expires);
            entry.expire_at = check.expire_at;
        }
        Reserve::Reserved(levels)
    }

    pub(super) fn budget_settle(
        &self,
        checks: &[BudgetCheck],
        lease: &Lease,
        actual: i64,
    ) -> Vec<Level> {
        let mut budgets = lock(&self.budgets);
        checks
            .iter()
            .map(|check| {
                let entry = budgets.entry(check.key.clone()).or_default();
                let counter = &mut entry.value;
                if let Some((_, amount)) = counter.leases.remove(&lease.id) {
                    counter.level.reserved = counter.level.reserved.saturating_sub(amount).max(0);
                }
                counter.level.spent = counter.level.spent.saturating_add(actual);
                entry.expire_at = check.expire_at;
                counter.level
            })
            .collect()
    }

    pub(super) fn budget_seed(&self, key: &str, spent: i64, expire_at: i64) {
        let mut budgets = lock(&self.budgets);
        let entry = budgets.entry(key.to_string()).or_insert(Expiring {
            value: Counter::default(),
            expire_at,
        });
        if !entry.value.seeded {
            entry.value.seeded = true;
            entry.value.level.spent = entry.value.level.spent.saturating_add(spent);
        }
    }

    pub(super) fn counter_add(&self, key: &str, amount: i64, expire_at: i64) -> i64 {
        let mut counters = lock(&self.counters);
        let entry = counters.entry(key.to_string()).or_default();
        entry.value = entry.value.saturating_add(amount);
        entry.expire_at = expire_at;
        entry.value
    }

    pub(super) fn counter_seed(&self, key: &str, value: i64, expire_at: i64) {
        lock(&self.counters)
            .entry(key.to_string())
            .or_insert(Expiring { value, expire_at });
    }

    pub(super) fn flag_raise(&self, key: &str, expire_at: i64) -> bool {
        let mut counters = lock(&self.counters);
        let now = now_s();
        match counters.get(key) {
            Some(entry) if entry.expire_at > now => false,
            _ => {
                counters.insert(
                    key.to_string(),
                    Expiring {
                        value: 1,
                        expire_at,
                    },
                );
                true
            }
        }
    }

    pub(super) fn flag_up(&self, key: &str) -> bool {
        lock(&self.counters)
            .get(key)
            .is_some_and(|entry| entry.expire_at > now_s())
    }

    pub(super) fn pause(&self, tenant: &str, reason: &str) -> bool {
        let mut pauses = lock(&self.pauses);
        if pauses.contains_key(tenant) {
            return false;
        }
        pauses.insert(tenant.to_string(), reason.to_string());
        true
    }

    pub(super) fn resume(&self, tenant: &str) -> bool {
        lock(&self.pauses).remove(tenant).is_some()
    }

    pub(super) fn paused(&self, tenant: &str) -> Option<String> {
        let pauses = lock(&self.pauses);
        if pauses.is_empty() {
            return None;
        }
        pauses.get(tenant).cloned()
    }

    pub(super) fn pauses(&self) -> Vec<Pause> {
        let mut pauses: Vec<Pause> = lock(&self.pauses)
            .iter()
            .map(|(tenant, reason)| Pause {
                tenant_id: tenant.clone(),
                reason: reason.clone(),
            })
            .collect();
        pauses.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        pauses
    }

    pub(super) fn run_admit(&self, run: &str, parent: Option<&str>, bounds: RunBounds) -> RunView {
        let mut runs = lock(&self.runs);
        let expire_at = now_s().saturating_add(i64::try_from(bounds.ttl_s).unwrap_or(i64::MAX));
        if let Some(entry) = runs.get_mut(run)
            && entry.value.registered
        {
            entry.expire_at = expire_at;
            return view(&runs, run);
        }
        // A run named as its own parent has none.
        let parent = parent.filter(|parent| *parent != run);
        let depth = parent.map_or(0, |parent| {
            runs.get(parent)
                .filter(|entry| entry.value.registered)
                .map_or(1, |entry| entry.value.depth.saturating_add(1))
        });
        // A run first seen as the run above another keeps what that one's calls counted.
        let entry = runs.entry(run.to_string()).or_default();
        entry.expire_at = expire_at;
        let state = &mut entry.value;
        state.registered = true;
        state.depth = depth;
        state.parent = parent.map(str::to_string);
        if depth > bounds.max_depth {
            state.exceeded.get_or_insert(Exceeded::Depth(depth));
        }
        view(&runs, run)
    }

    pub(super) fn run_settle(
        &self,
        run: &str,
        usage: &RunUsage,
        bounds: RunBounds,
    ) -> Option<Exceeded> {
        let mut runs = lock(&self.runs);
        let expire_at = now_s().saturating_add(i64::try_from(bounds.ttl_s).unwrap_or(i64::MAX));
        let entry = runs.entry(run.to_string()).or_default();
        entry.expire_at = expire_at;
        let state = &mut entry.value;
        // A run lost between admission and settlement comes back at depth 0.
        state.registered = true;
        state.tokens = state.tokens.saturating_add(usage.tokens);
        state.tool_calls = state.tool_calls.saturating_add(usage.tool_calls);
        state.cost = state.cost.saturating_add(usage.cost);
        let mut worst: Option<(&String, u64)> = None;
        for tool in &usage.tools {
            let count = state.loops.entry(tool.clone()).or_default();
            *count += 1;
            if worst.is_none_or(|(_, most)| *count > most) {
                worst = Some((tool, *count));
            }
        }
        if state.exceeded.is_none() {
            state.exceeded = state
                .tree_limit(bounds)
                .or_else(|| {
                    worst
                        .filter(|(_, count)| *count >= bounds.loop_repeats)
                        .map(|(tool, count)| Exceeded::Loop(tool.clone(), count))
                })
                .or_else(|| (state.cost > bounds.max_cost).then_some(Exceeded::Cost(state.cost)));
        }
        let exceeded = state.exceeded.clone();
        // The runs above count its tokens and tool calls (not its cost: the adaptive cost
        // limit compares a run's own cost with its feature's median run, which the ledger
        // takes per run id; nor its tools, which loop within one agent).
        for ancestor in ancestors(&runs, run) {
            let entry = runs.entry(ancestor).or_default();
            entry.expire_at = expire_at;
            let above = &mut entry.value;
            above.tokens = above.tokens.saturating_add(usage.tokens);
            above.tool_calls = above.tool_calls.saturating_add(usage.tool_calls);
            if above.exceeded.is_none() {
                above.exceeded = above.tree_limit(bounds);
            }
        }
        exceeded
    }
}

/// The runs above `run`, nearest first: its parent, its parent's parent and so on, at most
/// [`MAX_RUNS_ABOVE`] of them, ending where the links do or loop back (bad headers).
fn ancestors(runs: &HashMap<String, Expiring<Run>>, run: &str) -> Vec<String> {
    let mut above: Vec<String> = Vec::new();
    let mut next = runs.get(run).and_then(|entry| entry.value.parent.as_ref());
    while let Some(parent) = next
        && above.len() < MAX_RUNS_ABOVE
        && parent != run
        && !above.contains(parent)
    {
        above.push(parent.clone());
        next = runs
            .get(parent)
            .and_then(|entry| entry.value.parent.as_ref());
    }
    above
}

/// What admission sees of `run`: the limit it is past, else the first a run above it is past.
fn view(runs: &HashMap<String, Expiring<Run>>, run: &str) -> RunView {
    let Some(entry) = runs.get(run) else {
        return RunView {
            depth: 0,
            exceeded: None,
            by_run_above: false,
        };
    };
    if let Some(exceeded) = &entry.value.exceeded {
        return RunView {
            depth: entry.value.depth,
            exceeded: Some(exceeded.clone()),
            by_run_above: false,
        };
    }
    let above = ancestors(runs, run)
        .iter()
        .find_map(|ancestor| runs.get(ancestor)?.value.exceeded.clone());
    RunView {
        depth: entry.value.depth,
        by_run_above: above.is_some(),
        exceeded: above,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> RunBounds {
        RunBounds {
            max_tokens: 1_000,
            max_tool_calls: 3,
            max_depth: 2,
            loop_repeats: 2,
            max_cost: u64::MAX,
            ttl_s: 60,
        }
    }

    fn check(limit: i64, enforce: bool) -> BudgetCheck {
        BudgetCheck {
            key: format!("b{limit}"),
            limit,
            enforce,
            expire_at: i64::MAX,
        }
    }

    fn lease(amount: i64) -> Lease {
        Lease::new(amount, 600)
    }

    #[test]
    fn reservations_are_all_or_nothing() {
        let state = MemoryState::new();
        let checks = [check(100, true), check(50, true), check(10, false)];
        let first = lease(40);
        assert_eq!(
            state.budget_reserve(&checks, &first),
            Reserve::Reserved(vec![Level::default(); 3])
        );
        // 40 + 40 fits the first, not the second: nothing is reserved.
        assert_eq!(
            state.budget_reserve(&checks, &lease(40)),
            Reserve::Denied {
                index: 1,
                level: Level {
                    spent: 0,
                    reserved: 40
                }
            }
        );
        let after = state.budget_settle(&checks, &first, 25);
        assert_eq!(
            after[0],
            Level {
                spent: 25,
                reserved: 0
            }
        );
        // The shadow counter counts past its cap without refusing.
        assert!(matches!(
            state.budget_reserve(&checks, &lease(25)),
            Reserve::Reserved(_)
        ));
        assert_eq!(state.budget_levels(&["b10".into()])[0].committed(), 50);
        // Settling the same lease again releases nothing twice.
        let again = state.budget_settle(&checks, &first, 0);
        assert_eq!(again[0].reserved, 25);
    }

    #[test]
    fn a_lapsed_lease_is_released_by_the_next_reservation_and_never_twice() {
        let state = MemoryState::new();
        let checks = [check(100, true)];
        let lapsing = Lease::new(80, 0);
        assert!(matches!(
            state.budget_reserve(&checks, &lapsing),
            Reserve::Reserved(_)
        ));
        assert_eq!(state.budget_levels(&["b100".into()])[0].reserved, 80);
        // Its call never settles; the next reservation finds it lapsed and releases it.
        let next = lease(70);
        assert_eq!(
            state.budget_reserve(&checks, &next),
            Reserve::Reserved(vec![Level::default()])
        );
        // A late settlement of the lapsed lease counts its spend but releases nothing.
        let after = state.budget_settle(&checks, &lapsing, 5);
        assert_eq!(
            after[0],
            Level {
                spent: 5,
                reserved: 70
            }
        );
    }

    #[test]
    fn seeding_adds_once() {
        let state = MemoryState::new();
        let early = lease(4);
        state.budget_reserve(&[check(100, true)], &early);
        state.budget_settle(&[check(100, true)], &early, 3);
        state.budget_seed("b100", 7, i64::MAX);
        state.budget_seed("b100", 9, i64::MAX);
        assert_eq!(state.budget_levels(&["b100".into()])[0].spent, 10);
        state.counter_seed("c", 3, i64::MAX);
        assert_eq!(state.counter_add("c", 2, i64::MAX), 5);
    }

    #[test]
    fn run_depth_follows_parents() {
        let state = MemoryState::new();
        assert_eq!(state.run_admit("root", None, bounds()).depth, 0);
        assert_eq!(state.run_admit("a", Some("root"), bounds()).depth, 1);
        assert_eq!(state.run_admit("b", Some("a"), bounds()).depth, 2);
        let too_deep = state.run_admit("c", Some("b"), bounds());
        assert_eq!(too_deep.exceeded, Some(Exceeded::Depth(3)));
        // An unknown parent makes a depth-1 run.
        assert_eq!(state.run_admit("x", Some("nobody"), bounds()).depth, 1);
    }

    #[test]
    fn runs_stop_at_each_limit() {
        let state = MemoryState::new();
        let usage = |tokens, tools: &[&str]| RunUsage {
            tokens,
            cost: 0,
            tool_calls: tools.len() as u64,
            tools: tools.iter().map(|tool| tool.to_string()).collect(),
        };
        assert_eq!(state.run_settle("t", &usage(1_000, &[]), bounds()), None);
        assert_eq!(
            state.run_settle("t", &usage(1, &[]), bounds()),
            Some(Exceeded::Tokens(1_001))
        );
        assert_eq!(
            state.run_settle("l", &usage(1, &["a:1", "b:2"]), bounds()),
            None
        );
        assert_eq!(
            state.run_settle("l", &usage(1, &["a:1"]), bounds()),
            Some(Exceeded::Loop("a:1".into(), 2))
        );
        assert_eq!(
            state.run_settle("c", &usage(1, &["a:1", "b:1", "c:1"]), bounds()),
            None
        );
        assert_eq!(
            state.run_settle("c", &usage(1, &["d:1"]), bounds()),
            Some(Exceeded::ToolCalls(4))
        );
        // Once past a limit, a run stays past it.
        assert_eq!(
            state.run_admit("c", None, bounds()).exceeded,
            Some(Exceeded::ToolCalls(4))
        );
    }

    #[test]
    fn sub_agents_count_for_every_run_above_them() {
        let state = MemoryState::new();
        let tokens = |tokens| RunUsage {
            tokens,
            ..RunUsage::default()
        };
        state.run_admit("top", None, bounds());
        state.run_admit("a", Some("top"), bounds());
        state.run_admit("b", Some("a"), bounds());
        state.run_admit("c", Some("top"), bounds());
        // `b` and `c` each within 1,000 tokens; `a` with `b` is not, nor `top` with all three.
        assert_eq!(state.run_settle("b", &tokens(600), bounds()), None);
        assert_eq!(state.run_settle("c", &tokens(300), bounds()), None);
        assert_eq!(
            state.run_settle("a", &tokens(600), bounds()),
            Some(Exceeded::Tokens(1_200))
        );
        let top = state.run_admit("top", None, bounds());
        assert_eq!(top.exceeded, Some(Exceeded::Tokens(1_500)));
        assert!(!top.by_run_above);
        // `c` is within its own limit but stops with the run above it.
        let c = state.run_admit("c", Some("top"), bounds());
        assert_eq!(c.exceeded, Some(Exceeded::Tokens(1_500)));
        assert!(c.by_run_above);
        // A new sub-agent of a stopped run stops at once; its nearest stopped run speaks.
        let d = state.run_admit("d", Some("b"), bounds());
        assert_eq!((d.depth, d.by_run_above), (3, false));
        assert_eq!(d.exceeded, Some(Exceeded::Depth(3)));
        let e = state.run_admit("e", Some("a"), bounds());
        assert_eq!(e.exceeded, Some(Exceeded::Tokens(1_200)));
        assert!(e.by_run_above);
        // A link learned after a run registered counts: `leaf` calls before `mid` tells its
        // own parent, and still counts for `root` afterwards.
        state.run_admit("leaf", Some("mid"), bounds());
        state.run_admit("mid", Some("root"), bounds());
        state.run_admit("root", None, bounds());
        state.run_settle("leaf", &tokens(1_000), bounds());
        state.run_settle("leaf", &tokens(1), bounds());
        assert_eq!(
            state.run_admit("root", None, bounds()).exceeded,
            Some(Exceeded::Tokens(1_001))
        );
        // A run named as its own parent has none.
        let own = state.run_admit("self", Some("self"), bounds());
        assert_eq!((own.depth, own.exceeded), (0, None));
        state.run_settle("self", &tokens(600), bounds());
        assert_eq!(state.run_admit("self", None, bounds()).exceeded, None);
        // A parent seen first through its sub-agent keeps what the sub-agent counted.
        state.run_admit("kid", Some("late"), bounds());
        assert_eq!(state.run_settle("kid", &tokens(900), bounds()), None);
        state.run_settle("kid", &tokens(50), bounds());
        assert_eq!(state.run_admit("late", None, bounds()).exceeded, None);
        assert_eq!(
            state.run_settle("late", &tokens(100), bounds()),
            Some(Exceeded::Tokens(1_050))
        );
    }

    #[test]
    fn pauses_and_flags() {
        let state = MemoryState::new();
        assert!(state.pause("acme", "z=9"));
        assert!(!state.pause("acme", "again"));
        assert_eq!(state.paused("acme").as_deref(), Some("z=9"));
        assert_eq!(state.pauses().len(), 1);
        assert!(state.resume("acme"));
        assert_eq!(state.paused("acme"), None);
        assert!(state.flag_raise("f", i64::MAX));
        assert!(!state.flag_raise("f", i64::MAX));
        assert!(state.flag_up("f"));
        assert!(!state.flag_up("g"));
    }
}
