//! The detectors' raw material and the unpriced-models list on ClickHouse: the DuckDB
//! queries of the same names (`duck::sessions`, `duck::loops`, `duck::prices`) in 18.16's SQL.

use chrono::{DateTime, Utc};

use super::ClickHouse;
use crate::duck::{SessionGrowth, ToolRepeat, UnpricedModel};
use crate::error::StoreError;

/// The range condition on `ts`/`ts_us` for `[since, until)`.
fn range(since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let (since, until) = (since.timestamp_micros(), until.timestamp_micros());
    format!(
        "ts >= toDateTime({}) AND ts <= toDateTime({}) AND ts_us >= {since} AND ts_us < {until}",
        since.div_euclid(1_000_000),
        until.div_euclid(1_000_000)
    )
}

/// A whole number from an answer cell (`NULL` and garbage are 0).
fn number(cell: &Option<String>) -> u64 {
    cell.as_deref()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

/// A time from microseconds since the epoch in an answer cell.
fn micros(cell: &Option<String>) -> DateTime<Utc> {
    cell.as_deref()
        .and_then(|text| text.parse().ok())
        .and_then(DateTime::from_timestamp_micros)
        .unwrap_or_default()
}

fn text(cell: &Option<String>) -> String {
    cell.clone().unwrap_or_default()
}

impl ClickHouse {
    /// Models in the ledger with no price, with their usage: `burnrate prices missing`.
    pub fn unpriced_models(&self) -> Result<Vec<UnpricedModel>, StoreError> {
        let pricing = self.pricing()?;
        let time = "concat(replaceOne(toString(ts, 'UTC'), ' ', 'T'), 'Z')";
        let rows = self.select(
            &format!(
                "SELECT provider, model, count(), sum(input_tokens), sum(output_tokens), \
                 min({time}), max({time}) FROM {}.events WHERE {} = '' \
                 GROUP BY provider, model HAVING sum(input_tokens) + sum(output_tokens) > 0 \
                 ORDER BY sum(input_tokens) + sum(output_tokens) DESC, provider, model",
                self.database, pricing.key_expr
            ),
            7,
        )?;
        Ok(rows
            .iter()
            .map(|row| UnpricedModel {
                provider: text(&row[0]),
                model: text(&row[1]),
                requests: number(&row[2]),
                input_tokens: number(&row[3]),
                output_tokens: number(&row[4]),
                first_seen: text(&row[5]),
                last_seen: text(&row[6]),
            })
            .collect())
    }

    /// Sessions that started in `[recent, until)` with at least `min_calls` calls whose
    /// memory growth is above the nearest-rank 99th percentile of the growth of the route's
    /// sessions that started in `[since, recent)`, for routes with at least `min_past` past
    /// sessions. Most growth first.
    pub fn memory_growth(
        &self,
        since: DateTime<Utc>,
        recent: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
        min_past: u64,
    ) -> Result<Vec<SessionGrowth>, StoreError> {
        let sessions = format!(
            "SELECT toString(assumeNotNull(route)) AS path, \
             assumeNotNull(coalesce(session_id, agent_run_id)) AS session, \
             any(tenant_id) AS tenant, count() AS calls, \
             argMin(assumeNotNull(layer_memory), ts_us) AS first_memory, \
             max(assumeNotNull(layer_memory)) AS peak, peak - first_memory AS growth, \
             min(ts_us) >= {recent} AS is_recent FROM {db}.events \
             WHERE {range} AND isNotNull(layer_memory) AND isNotNull(route) \
             AND isNotNull(coalesce(session_id, agent_run_id)) GROUP BY path, session",
            recent = recent.timestamp_micros(),
            db = self.database,
            range = range(since, until),
        );
        let rows = self.select(
            &format!(
                "SELECT path, session, tenant, calls, first_memory, peak, p99, sessions \
                 FROM ({sessions}) AS s ALL INNER JOIN (SELECT path, \
                 arraySort(groupArray(growth)) AS growths, length(growths) AS sessions, \
                 growths[intDiv(99 * length(growths) + 99, 100)] AS p99 \
                 FROM ({sessions}) WHERE NOT is_recent GROUP BY path) AS u USING (path) \
                 WHERE is_recent AND calls >= {min_calls} AND sessions >= {min_past} \
                 AND growth > p99 ORDER BY growth DESC, path, session"
            ),
            8,
        )?;
        Ok(rows
            .iter()
            .map(|row| SessionGrowth {
                route: text(&row[0]),
                session: text(&row[1]),
                tenant_id: row[2].clone(),
                calls: number(&row[3]),
                first_memory: number(&row[4]),
                peak_memory: number(&row[5]),
                usual_p99: number(&row[6]),
                past_sessions: number(&row[7]),
            })
            .collect())
    }

    /// Runs in `[since, until)` that asked for the same tool with the same argument hash at
    /// least `min_calls` times, most repeated first.
    pub fn tool_repeats(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
    ) -> Result<Vec<ToolRepeat>, StoreError> {
        let rows = self.select(
            &format!(
                "SELECT run, any(tenant_id), any(feature), name, hash, count(), min(ts_us), \
                 max(ts_us) FROM (SELECT assumeNotNull(agent_run_id) AS run, tenant_id, feature, \
                 ts_us, tool_names, tool_hashes FROM {db}.events \
                 WHERE {range} AND isNotNull(agent_run_id)) \
                 ARRAY JOIN tool_names AS name, tool_hashes AS hash WHERE isNotNull(hash) \
                 GROUP BY run, name, hash HAVING count() >= {min_calls} \
                 ORDER BY count() DESC, run, name, hash",
                db = self.database,
                range = range(since, until),
            ),
            8,
        )?;
        Ok(rows
            .iter()
            .map(|row| ToolRepeat {
                agent_run_id: text(&row[0]),
                tenant_id: row[1].clone(),
                feature: row[2].clone(),
                tool: text(&row[3]),
                args_hash: format!("{:016x}", number(&row[4])),
                calls: number(&row[5]),
                first: micros(&row[6]),
                last: micros(&row[7]),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_cells_read_as_numbers_and_times() {
        assert_eq!(number(&Some("42".into())), 42);
        assert_eq!(number(&None), 0);
        assert_eq!(
            micros(&Some("1700000000000001".into())).timestamp_micros(),
            1_700_000_000_000_001
        );
        assert!(range("2026-11-01T00:00:00Z".parse().unwrap(), Utc::now()).contains("ts_us <"));
    }
}
