//! Policy state in Redis, shared by every gateway replica. Each operation is one Lua script
//! (atomic on the server; clocks come from Redis `TIME`, so replicas with skewed clocks
//! agree) or one plain command. The connection manager reconnects by itself; an operation
//! that fails is an error for the caller to decide on (the gateway refuses the call rather
//! than let it through unaccounted).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{
    BudgetCheck, Exceeded, Lease, Level, MAX_RUNS_ABOVE, Pause, RateCheck, RateOutcome, Reserve,
    RunBounds, RunUsage, RunView, StateError, keys,
};

/// The scripts, loaded once (by SHA, with a fallback to the full text after a Redis restart).
struct Scripts {
    rate_take: Script,
    rate_correct: Script,
    budget_reserve: Script,
    budget_settle: Script,
    budget_seed: Script,
    counter_add: Script,
    run_admit: Script,
    run_settle: Script,
}

/// Policy state in Redis.
pub struct RedisState {
    connection: ConnectionManager,
    scripts: Scripts,
}

/// The sorted set of a budget counter's leases.
fn leases_key(counter: &str) -> String {
    format!("{counter}:leases")
}

fn failed(error: redis::RedisError) -> StateError {
    StateError {
        backend: "redis",
        reason: error.to_string(),
    }
}

/// Longest a Redis command may take before the call it serves fails (503).
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest connecting to Redis may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl RedisState {
    /// Connects to `url` (`redis://127.0.0.1:6379/0`).
    pub async fn connect(url: &str) -> Result<RedisState, StateError> {
        let client = redis::Client::open(url).map_err(failed)?;
        // redis-rs answers "timed out" after 500 ms by default; a busy machine's Redis can
        // take longer without being down, and a refused call costs more than a slow one.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let mut connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(RedisState {
            connection,
            scripts: Scripts {
                rate_take: Script::new(include_str!("lua/rate_take.lua")),
                rate_correct: Script::new(include_str!("lua/rate_correct.lua")),
                budget_reserve: Script::new(include_str!("lua/budget_reserve.lua")),
                budget_settle: Script::new(include_str!("lua/budget_settle.lua")),
                budget_seed: Script::new(include_str!("lua/budget_seed.lua")),
                counter_add: Script::new(include_str!("lua/counter_add.lua")),
                run_admit: Script::new(include_str!("lua/run_admit.lua")),
                run_settle: Script::new(include_str!("lua/run_settle.lua")),
            },
        })
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub(super) async fn rate_take(&self, checks: &[RateCheck]) -> Result<RateOutcome, StateError> {
        let mut invocation = self.scripts.rate_take.prepare_invoke();
        for check in checks {
            invocation.key(&check.key).arg(check.limit).arg(check.cost);
        }
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        match reply.as_slice() {
            [1, reset_us @ ..] => Ok(RateOutcome::Allowed {
                reset_us: reset_us.to_vec(),
            }),
            [0, index, retry_after_us] => Ok(RateOutcome::Denied {
                index: usize::try_from(*index).unwrap_or(0),
                retry_after_us: (*retry_after_us >= 0).then_some(*retry_after_us),
            }),
            other => Err(unexpected("rate_take", other)),
        }
    }

    pub(super) async fn rate_correct(
        &self,
        key: &str,
        limit: u64,
        delta: i64,
    ) -> Result<(), StateError> {
        let _: i64 = self
            .scripts
            .rate_correct
            .key(key)
            .arg(limit)
            .arg(delta)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(())
    }

    pub(super) async fn budget_levels(&self, keys: &[String]) -> Result<Vec<Level>, StateError> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(key).arg("spent").arg("reserved");
        }
        let replies: Vec<(Option<i64>, Option<i64>)> = pipe
            .query_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(replies
            .into_iter()
            .map(|(spent, reserved)| Level {
                spent: spent.unwrap_or(0),
                reserved: reserved.unwrap_or(0),
            })
            .collect())
    }

    pub(super) async fn budget_reserve(
        &self,
        checks: &[BudgetCheck],
        lease: &Lease,
    ) -> Result<Reserve, StateError> {
        let mut invocation = self.scripts.budget_reserve.prepare_invoke();
        invocation
            .arg(lease.amount)
            .arg(lease.member())
            .arg(lease.ttl_s);
        for check in checks {
            invocation
                .key(&check.key)
                .key(leases_key(&check.key))
                .arg(check.limit)
                .arg(u8::from(check.enforce))
                .arg(check.expire_at);
        }
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        match reply.as_slice() {
            [1, levels @ ..] => Ok(Reserve::Reserved(pairs(levels))),
            [0, index, spent, reserved] => Ok(Reserve::Denied {
                index: usize::try_from(*index).unwrap_or(0),
                level: Level {
                    spent: *spent,
                    reserved: *reserved,
                },
            }),
            other => Err(unexpected("budget_reserve", other)),
        }
    }

    pub(super) async fn budget_settle(
        &self,
        checks: &[BudgetCheck],
        lease: &Lease,
        actual: i64,
    ) -> Result<Vec<Level>, StateError> {
        let mut invocation = self.scripts.budget_settle.prepare_invoke();
        invocation.arg(lease.amount).arg(lease.member()).arg(actual);
        for check in checks {
            invocation
                .key(&check.key)
                .key(leases_key(&check.key))
                .arg(check.expire_at);
        }
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(pairs(&reply))
    }

    pub(super) async fn budget_seed(
        &self,
        key: &str,
        spent: i64,
        expire_at: i64,
    ) -> Result<(), StateError> {
        let _: i64 = self
            .scripts
            .budget_seed
            .key(key)
            .arg(spent)
            .arg(expire_at)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(())
    }

    pub(super) async fn counter_add(
        &self,
        key: &str,
        amount: i64,
        expire_at: i64,
    ) -> Result<i64, StateError> {
        self.scripts
            .counter_add
            .key(key)
            .arg(amount)
            .arg(expire_at)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)
    }

    pub(super) async fn counter_seed(
        &self,
        key: &str,
        value: i64,
        expire_at: i64,
    ) -> Result<(), StateError> {
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EXAT(
                u64::try_from(expire_at).unwrap_or(0),
            ));
        let _: Option<String> = self
            .connection()
            .set_options(key, value, options)
            .await
            .map_err(failed)?;
        Ok(())
    }

    pub(super) async fn flag_raise(&self, key: &str, expire_at: i64) -> Result<bool, StateError> {
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EXAT(
                u64::try_from(expire_at).unwrap_or(0),
            ));
        let set: Option<String> = self
            .connection()
            .set_options(key, 1, options)
            .await
            .map_err(failed)?;
        Ok(set.is_some())
    }

    pub(super) async fn flag_up(&self, key: &str) -> Result<bool, StateError> {
        self.connection().exists(key).await.map_err(failed)
    }

    pub(super) async fn pause(&self, tenant: &str, reason: &str) -> Result<bool, StateError> {
        self.connection()
            .hset_nx(keys::PAUSES, tenant, reason)
            .await
            .map_err(failed)
    }

    pub(super) async fn resume(&self, tenant: &str) -> Result<bool, StateError> {
        let removed: i64 = self
            .connection()
            .hdel(keys::PAUSES, tenant)
            .await
            .map_err(failed)?;
        Ok(removed > 0)
    }

    pub(super) async fn paused(&self, tenant: &str) -> Result<Option<String>, StateError> {
        self.connection()
            .hget(keys::PAUSES, tenant)
            .await
            .map_err(failed)
    }

    pub(super) async fn pauses(&self) -> Result<Vec<Pause>, StateError> {
        let all: Vec<(String, String)> = self
            .connection()
            .hgetall(keys::PAUSES)
            .await
            .map_err(failed)?;
        let mut pauses: Vec<Pause> = all
            .into_iter()
            .map(|(tenant_id, reason)| Pause { tenant_id, reason })
            .collect();
        pauses.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        Ok(pauses)
    }

    pub(super) async fn run_admit(
        &self,
        run: &str,
        parent: Option<&str>,
        bounds: RunBounds,
    ) -> Result<RunView, StateError> {
        let (depth, exceeded, by_run_above): (u64, String, u8) = self
            .scripts
            .run_admit
            .key(keys::run(run))
            .key(keys::run(parent.unwrap_or(run)))
            .arg(u8::from(parent.is_some()))
            .arg(bounds.max_depth)
            .arg(bounds.ttl_s)
            .arg(MAX_RUNS_ABOVE)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(RunView {
            depth,
            exceeded: Exceeded::decode(&exceeded),
            by_run_above: by_run_above == 1,
        })
    }

    pub(super) async fn run_settle(
        &self,
        run: &str,
        usage: &RunUsage,
        bounds: RunBounds,
    ) -> Result<Option<Exceeded>, StateError> {
        let mut invocation = self.scripts.run_settle.prepare_invoke();
        invocation
            .key(keys::run(run))
            .key(keys::run_loops(run))
            .arg(usage.tokens)
            .arg(usage.tool_calls)
            .arg(usage.cost)
            .arg(bounds.max_tokens)
            .arg(bounds.max_tool_calls)
            // Lua numbers are doubles: "no limit" as the largest whole number they hold.
            .arg(bounds.max_cost.min(1 << 53))
            .arg(bounds.loop_repeats)
            .arg(bounds.ttl_s)
            .arg(MAX_RUNS_ABOVE);
        for tool in &usage.tools {
            invocation.arg(tool);
        }
        let exceeded: String = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(failed)?;
        Ok(Exceeded::decode(&exceeded))
    }
}

fn pairs(values: &[i64]) -> Vec<Level> {
    values
        .chunks_exact(2)
        .map(|pair| Level {
            spent: pair[0],
            reserved: pair[1],
        })
        .collect()
}

fn unexpected(script: &str, reply: &[i64]) -> StateError {
    StateError {
        backend: "redis",
        reason: format!("script {script} answered {reply:?}"),
    }
}
