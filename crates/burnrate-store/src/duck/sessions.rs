//! Memory growth within sessions: the raw material of the memory-runaway detector, found by
//! one query that compares each recent session with the past sessions of its route.

use chrono::{DateTime, Utc};
use duckdb::params;

use super::DuckStore;
use crate::error::StoreError;

/// A recent session whose memory-layer tokens grew more than its route's past sessions did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrowth {
    /// The route.
    pub route: String,
    /// The session (`session_id`, else `agent_run_id`).
    pub session: String,
    /// Its tenant, if tagged.
    pub tenant_id: Option<String>,
    /// Calls in the session.
    pub calls: u64,
    /// Memory-layer tokens of its first call.
    pub first_memory: u64,
    /// The most memory-layer tokens one of its calls carried.
    pub peak_memory: u64,
    /// The route's past sessions' growth at the 99th percentile (nearest rank: element
    /// ⌈0.99·n⌉ of the sorted list).
    pub usual_p99: u64,
    /// How many past sessions the percentile is over.
    pub past_sessions: u64,
}

impl SessionGrowth {
    /// Memory-layer tokens gained from the first call to the peak.
    pub fn growth(&self) -> u64 {
        self.peak_memory.saturating_sub(self.first_memory)
    }
}

impl DuckStore {
    /// Sessions that started in `[recent, until)` with at least `min_calls` calls whose memory
    /// growth (peak minus first call's memory-layer tokens) is above the 99th percentile of the
    /// growth of the route's sessions that started in `[since, recent)`, for routes with at
    /// least `min_past` past sessions. Most growth first.
    pub fn memory_growth(
        &self,
        since: DateTime<Utc>,
        recent: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
        min_past: u64,
    ) -> Result<Vec<SessionGrowth>, StoreError> {
        let mut statement = self.conn.prepare(
            "WITH s AS (SELECT route, coalesce(session_id, agent_run_id) AS session, \
                 any_value(tenant_id) AS tenant_id, count(*) AS calls, \
                 arg_min(layer_memory, ts) AS first_memory, max(layer_memory) AS peak, \
                 max(layer_memory) - arg_min(layer_memory, ts) AS growth, \
                 min(ts) >= ?::TIMESTAMP AS recent \
               FROM events \
               WHERE ts >= ?::TIMESTAMP AND ts < ?::TIMESTAMP AND layer_memory IS NOT NULL \
                 AND route IS NOT NULL AND coalesce(session_id, agent_run_id) IS NOT NULL \
               GROUP BY ALL), \
             usual AS (SELECT route, list_sort(list(growth))[(99 * count(*) + 99) // 100] AS p99, \
               count(*) AS sessions FROM s WHERE NOT recent GROUP BY route) \
             SELECT s.route, s.session, s.tenant_id, s.calls, s.first_memory, s.peak, \
               u.p99, u.sessions \
             FROM s JOIN usual u USING (route) \
             WHERE s.recent AND s.calls >= ? AND u.sessions >= ? AND s.growth > u.p99 \
             ORDER BY s.growth DESC, s.route, s.session",
        )?;
        let text = |at: DateTime<Utc>| at.naive_utc().to_string();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = statement.query_map(
            params![
                text(recent),
                text(since),
                text(until),
                count(min_calls),
                count(min_past)
            ],
            |row| {
                let number = |index| -> duckdb::Result<u64> {
                    Ok(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0))
                };
                Ok(SessionGrowth {
                    route: row.get(0)?,
                    session: row.get(1)?,
                    tenant_id: row.get(2)?,
                    calls: number(3)?,
                    first_memory: number(4)?,
                    peak_memory: number(5)?,
                    usual_p99: number(6)?,
                    past_sessions: number(7)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
