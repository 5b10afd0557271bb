//! `user_day_costs`: the user-day roll-up priced and summed per day, tenant and user, so a
//! query grouping and filtering only by tenant and user over whole days (the users-per-day
//! report) reads about half as many rows and joins no prices (see BENCHMARKS.md).
//!
//! Each row holds a day (`ts`), a tenant and a user, the roll-up's sums, and `cost`,
//! `naive_cost` and `unpriced` exactly as queries price the roll-up's rows. A key may have
//! several rows (one per append) until the user-day roll-up is compacted; readers sum them.
//! The table always equals the user-day roll-up priced with the ledger's prices:
//!
//! - an append stages the user-day rows it adds in the temp table `user_day_incoming`, and
//!   once they are in the roll-up prices them into this table (the models an append sees
//!   for the first time are mapped before, so they are priced);
//! - compacting the user-day roll-up merges this table's rows of the same days, in the same
//!   transaction, and retention deletes the same months from both;
//! - `meta.user_day_costs` holds the fingerprint of the prices the rows were priced with
//!   (the run totals', `prices_fingerprint`), removed while they are rebuilt. A price change
//!   rebuilds them; mapping new models records the new fingerprint (no row changes price);
//! - opening a ledger rebuilds them unless the completeness marker ([`super::complete`])
//!   says every derived table counts every event and the fingerprint is current. The
//!   marker is only recorded while the rows are in use, so a write cut short between the
//!   roll-up and this table is always seen.

use super::DuckStore;
use super::rollup::{Created, Level, sum_column_names};
use crate::error::StoreError;
use crate::query::sql;

/// The table, which [`sql::Days::priced`] names to queries.
pub const TABLE: &str = "user_day_costs";

/// The temp table of the user-day rows an append adds, before they are priced.
const INCOMING: &str = "user_day_incoming";

const META_KEY: &str = "user_day_costs";

/// The keys of a row besides its day: what a query reading the table can group and filter
/// by.
pub(super) const KEYS: [&str; 2] = ["tenant_id", "user_id"];

/// The columns of [`TABLE`] with their SQL types.
fn columns() -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = ["ts", "tenant_id", "user_id"]
        .into_iter()
        .chain(sum_column_names())
        .map(|name| {
            let column = Level::UserDay
                .columns()
                .into_iter()
                .find(|(column, _)| column == name);
            (
                name.to_owned(),
                column.map(|(_, sql)| sql).unwrap_or_default(),
            )
        })
        .collect();
    for (name, sql) in [
        ("cost", "HUGEINT"),
        ("naive_cost", "HUGEINT"),
        ("unpriced", "BIGINT NOT NULL"),
    ] {
        columns.push((name.to_owned(), sql.to_owned()));
    }
    columns
}

impl DuckStore {
    /// Creates the table and the staging table, replacing a table of other columns (then
    /// rebuilt at open, which finds it not current).
    pub(super) fn create_user_day_costs(&self) -> Result<Created, StoreError> {
        let columns = columns();
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let created = self.drop_if_columns_differ(TABLE, &names)?;
        let typed: Vec<String> = columns
            .iter()
            .map(|(name, sql)| format!("{name} {sql}"))
            .collect();
        self.conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} ({}); \
             CREATE OR REPLACE TEMP TABLE {INCOMING} AS SELECT * FROM {} LIMIT 0",
            typed.join(", "),
            Level::UserDay.table(),
        ))?;
        Ok(created)
    }

    /// At open, once the roll-ups were checked: uses the rows when the ledger was marked
    /// complete (`complete`) and they were priced with the prices now, else builds them
    /// again (unless the roll-ups' rebuild just did).
    pub(super) fn check_user_day_costs(&mut self, complete: bool) -> Result<(), StoreError> {
        if self.user_day_costs_valid {
            return Ok(());
        }
        if complete && self.user_day_costs_current()? {
            self.user_day_costs_valid = self.totals_buildable();
            return Ok(());
        }
        self.rebuild_user_day_costs()
    }

    /// Whether the rows were priced with the prices now (and are not being rebuilt).
    pub(super) fn user_day_costs_current(&self) -> Result<bool, StoreError> {
        self.priced_now(META_KEY)
    }

    /// Builds every row again from the user-day roll-up (not in one transaction, which
    /// DuckDB can fail for large writes: a rebuild cut short leaves no fingerprint, so the
    /// next open rebuilds). Without a complete roll-up the rows stay unused.
    pub(super) fn rebuild_user_day_costs(&mut self) -> Result<(), StoreError> {
        self.user_day_costs_valid = false;
        self.conn
            .execute("DELETE FROM meta WHERE key = ?", [META_KEY])?;
        // Buildable when the run totals are: the roll-ups are complete and can be priced.
        if !self.totals_buildable() {
            return Ok(());
        }
        let build = sql::priced_user_days_sql(
            Level::UserDay.table(),
            "true",
            &self.thresholds,
            &self.rollup_universe,
        );
        self.conn.execute_batch(&format!(
            "DELETE FROM {INCOMING}; DELETE FROM {TABLE}; INSERT INTO {TABLE} {build}"
        ))?;
        self.record_prices(META_KEY)?;
        self.user_day_costs_valid = true;
        Ok(())
    }

    /// After a price change that did not rebuild the roll-ups: prices the rows again if any
    /// price they used changed.
    pub(super) fn user_day_costs_after_price_change(&mut self) -> Result<(), StoreError> {
        if self.user_day_costs_current()? {
            return Ok(());
        }
        self.rebuild_user_day_costs()
    }

    /// After an append mapped the models `pairs` it sees for the first time, before writing
    /// its calls: records the prices now as the rows'. No row changes price (the other
    /// models resolve as before, and a new input-size threshold only splits their bands
    /// into bands of the same prices) unless the roll-up already holds calls of those
    /// models, priced as unpriced: left by an older burnrate that crashed between an append
    /// and its mapping. Then the rows are built again.
    pub(super) fn user_day_costs_after_new_models(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(), StoreError> {
        if !self.user_day_costs_valid {
            return Ok(());
        }
        for (provider, model) in pairs {
            let seen: bool = self.conn.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE provider = ? AND model = ?)",
                    Level::UserDay.table()
                ),
                [provider, model],
                |row| row.get(0),
            )?;
            if seen {
                return self.rebuild_user_day_costs();
            }
        }
        self.record_prices(META_KEY)
    }

    /// The appender the user-day rows of an append are staged in, while the rows are in
    /// use.
    pub(super) fn user_day_stage(&self) -> Result<Option<duckdb::Appender<'_>>, StoreError> {
        if !self.user_day_costs_valid {
            return Ok(None);
        }
        Ok(Some(self.conn.appender(INCOMING)?))
    }

    /// Prices the staged rows into the table, once they are in the user-day roll-up. On
    /// failure the rows are left unused (and the error returned).
    pub(super) fn price_staged_user_days(&mut self) -> Result<(), StoreError> {
        if !self.user_day_costs_valid {
            return Ok(());
        }
        let priced =
            sql::priced_user_days_sql(INCOMING, "true", &self.thresholds, &self.rollup_universe);
        let result = self.conn.execute_batch(&format!(
            "INSERT INTO {TABLE} {priced}; DELETE FROM {INCOMING}"
        ));
        if result.is_err() {
            self.user_day_costs_valid = false;
        }
        Ok(result?)
    }

    /// The statements (inside the caller's transaction) merging the rows of the days from
    /// `since` (a condition on `ts`) into one row per key, as the user-day roll-up's are;
    /// none while the rows are unused.
    pub(super) fn merge_user_days_sql(&self, since: &str) -> String {
        if !self.user_day_costs_valid {
            return String::new();
        }
        let sums: Vec<String> = sum_column_names()
            .chain(sql::PRICED_COLUMNS)
            .map(|name| format!("sum({name})"))
            .collect();
        format!(
            "CREATE OR REPLACE TEMP TABLE user_days_merged AS SELECT ts, tenant_id, user_id, \
             {sums} FROM {TABLE} WHERE {since} GROUP BY ts, tenant_id, user_id; \
             DELETE FROM {TABLE} WHERE {since}; \
             INSERT INTO {TABLE} SELECT * FROM user_days_merged; DROP TABLE user_days_merged; ",
            sums = sums.join(", "),
        )
    }

    /// `rows` with the whole days it reads from the user-day roll-up read from [`TABLE`]
    /// instead, when the rows are in use and `spec` groups and filters only by [`KEYS`] and
    /// reads no runs.
    pub(super) fn with_priced_days<'a>(
        &self,
        spec: &crate::query::spec::QuerySpec,
        mut rows: sql::Rows<'a>,
    ) -> sql::Rows<'a> {
        let keyed = spec
            .group_by
            .iter()
            .chain(spec.filters.iter().map(|filter| &filter.dimension))
            .all(|dimension| {
                matches!(dimension, burnrate_model::Dimension::Field(field)
                    if KEYS.contains(&field.as_str()))
            });
        let runs = spec.metrics.iter().any(|metric| metric.needs_runs());
        if let sql::Rows::Rollup {
            days: Some(days), ..
        } = &mut rows
            && days.table == Level::UserDay.table()
            && self.user_day_costs_valid
            && keyed
            && !runs
        {
            days.priced = Some(TABLE);
        }
        rows
    }
}

#[cfg(test)]
mod tests;
