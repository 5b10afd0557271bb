//! Repeated tool calls within agent runs: the raw material of the loop detector, found by
//! one query over the typed `tools` column.

use chrono::{DateTime, Utc};
use duckdb::params;

use super::DuckStore;
use crate::error::StoreError;

/// A run that asked for one tool with the same normalised arguments several times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRepeat {
    /// The agent run.
    pub agent_run_id: String,
    /// Its tenant, if tagged.
    pub tenant_id: Option<String>,
    /// Its feature, if tagged.
    pub feature: Option<String>,
    /// The tool.
    pub tool: String,
    /// The argument hash, as 16 hex digits.
    pub args_hash: String,
    /// How many times the run asked for it.
    pub calls: u64,
    /// First and last call asking for it.
    pub first: DateTime<Utc>,
    /// Last call asking for it.
    pub last: DateTime<Utc>,
}

impl DuckStore {
    /// Runs in `[since, until)` that asked for the same tool with the same argument hash at
    /// least `min_calls` times, most repeated first.
    pub fn tool_repeats(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
    ) -> Result<Vec<ToolRepeat>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT agent_run_id, any_value(tenant_id), any_value(feature), t.name, \
             printf('%016x', t.args_hash), count(*), epoch_us(min(ts)), epoch_us(max(ts)) \
             FROM (SELECT agent_run_id, tenant_id, feature, ts, unnest(tools) AS t FROM events \
                   WHERE ts >= ?::TIMESTAMP AND ts < ?::TIMESTAMP AND agent_run_id IS NOT NULL) \
             WHERE t.args_hash IS NOT NULL \
             GROUP BY agent_run_id, t.name, t.args_hash HAVING count(*) >= ? \
             ORDER BY count(*) DESC, agent_run_id, t.name, t.args_hash",
        )?;
        let since = since.naive_utc().to_string();
        let until = until.naive_utc().to_string();
        let min_calls = i64::try_from(min_calls).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![since, until, min_calls], |row| {
            let micros = |index| -> duckdb::Result<DateTime<Utc>> {
                let us: i64 = row.get(index)?;
                Ok(DateTime::from_timestamp_micros(us).unwrap_or_default())
            };
            Ok(ToolRepeat {
                agent_run_id: row.get(0)?,
                tenant_id: row.get(1)?,
                feature: row.get(2)?,
                tool: row.get(3)?,
                args_hash: row.get(4)?,
                calls: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                first: micros(6)?,
                last: micros(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
