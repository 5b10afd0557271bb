//! The price book inside the ledger: stored versions, the model map and the price bands.

use std::collections::{BTreeMap, BTreeSet};

use burnrate_model::PriceBook;
use burnrate_model::prices::{ModelPrices, overrides};
use chrono::NaiveDate;
use duckdb::params;

use super::DuckStore;
use crate::error::StoreError;
use crate::pricing::{self, StoredVersion};

/// A model seen in the ledger with no price, and what it used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnpricedModel {
    /// Provider reported.
    pub provider: String,
    /// Model reported.
    pub model: String,
    /// Calls.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// First call.
    pub first_seen: String,
    /// Last call.
    pub last_seen: String,
}

const META_PRICES_AS_OF: &str = "prices_as_of";

impl DuckStore {
    /// Loads the stored price book; a new ledger starts from the bundled LiteLLM snapshot.
    pub(super) fn load_prices(&mut self) -> Result<(), StoreError> {
        let stored: i64 =
            self.conn
                .query_row("SELECT count(*) FROM price_versions", [], |row| row.get(0))?;
        if stored == 0 {
            self.book = PriceBook::bundled()?;
            self.save_prices()?;
        } else {
            self.book = self.read_prices()?;
        }
        let mut statement = self.conn.prepare("SELECT provider, model FROM model_map")?;
        let pairs = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        for pair in pairs {
            self.known_models.insert(pair?);
        }
        // The stored bands are current (they are rewritten with every change); only the
        // thresholds, which queries need to compute bands, are derived again.
        let keys = self.keys_in_use();
        self.thresholds = pricing::thresholds(&self.book, keys.iter().map(String::as_str));
        Ok(())
    }

    fn keys_in_use(&self) -> BTreeSet<String> {
        self.known_models
            .iter()
            .filter_map(|(provider, model)| self.book.resolve(provider, model))
            .collect()
    }

    fn read_prices(&self) -> Result<PriceBook, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT price_key, effective_from, source, provider, mode, max_output_tokens, slots, \
             max_input_tokens FROM price_versions",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(StoredVersion {
                price_key: row.get(0)?,
                effective_from: row.get(1)?,
                source: row.get(2)?,
                provider: row.get(3)?,
                mode: row.get(4)?,
                max_output_tokens: row
                    .get::<_, Option<i64>>(5)?
                    .and_then(|m| u64::try_from(m).ok()),
                slots: row.get(6)?,
                max_input_tokens: row
                    .get::<_, Option<i64>>(7)?
                    .and_then(|m| u64::try_from(m).ok()),
            })
        })?;
        let rows = rows.collect::<Result<Vec<_>, _>>()?;
        let as_of = self
            .meta_value(META_PRICES_AS_OF)?
            .and_then(|text| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok());
        StoredVersion::into_book(rows, as_of)
    }

    fn save_prices(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("DELETE FROM price_versions")?;
        {
            let mut appender = self.conn.appender("price_versions")?;
            for row in StoredVersion::all(&self.book)? {
                let count = |n: Option<u64>| n.and_then(|m| i64::try_from(m).ok());
                appender.append_row(params![
                    row.price_key,
                    row.effective_from,
                    row.source,
                    row.provider,
                    row.mode,
                    count(row.max_output_tokens),
                    row.slots,
                    count(row.max_input_tokens),
                ])?;
            }
            appender.flush()?;
        }
        if let Some(as_of) = self.book.as_of {
            self.conn.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                params![META_PRICES_AS_OF, as_of.format("%Y-%m-%d").to_string()],
            )?;
        }
        Ok(())
    }

    /// Records the models of a LiteLLM price table whose prices apply from `effective_from`
    /// (`None`: since the beginning). Returns how many models changed. History is kept;
    /// every model is re-resolved, so calls that were unpriced are priced from now on.
    pub fn import_litellm(
        &mut self,
        models: BTreeMap<String, ModelPrices>,
        effective_from: Option<NaiveDate>,
        as_of: NaiveDate,
        source: &str,
    ) -> Result<usize, StoreError> {
        let changed = self.book.add_table(models, effective_from, source, as_of);
        self.after_price_change()?;
        Ok(changed)
    }

    /// Imports a TOML file of overrides and contract prices. Returns how many entries it held.
    pub fn import_overrides(&mut self, text: &str, source: &str) -> Result<usize, StoreError> {
        let entries = overrides::parse(text)?;
        overrides::apply(&mut self.book, &entries, source);
        self.after_price_change()?;
        Ok(entries.len())
    }

    fn after_price_change(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self.save_prices().and_then(|()| {
            let pairs: Vec<(String, String)> = self.known_models.iter().cloned().collect();
            self.conn.execute_batch("DELETE FROM model_map")?;
            self.known_models.clear();
            self.map_models(pairs)
        });
        match result {
            Ok(()) => {
                self.conn.execute_batch("COMMIT")?;
                // A rebuilt roll-up rebuilds the run totals and the priced user days too;
                // else they are priced again when any price they used changed.
                if self.rollup_after_price_change()? {
                    return Ok(());
                }
                // Both, whatever the first gives: neither may stay priced with old prices.
                let costs = self.user_day_costs_after_price_change();
                let runs = match self.run_prices_changed() {
                    Ok(true) => self.rebuild_run_totals(),
                    Ok(false) => Ok(()),
                    Err(error) => Err(error),
                };
                costs.and(runs)
            }
            Err(error) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(error)
            }
        }
    }

    /// Resolves newly seen provider + model pairs to price keys and rebuilds the bands.
    pub(super) fn map_models(&mut self, pairs: Vec<(String, String)>) -> Result<(), StoreError> {
        {
            let mut appender = self.conn.appender("model_map")?;
            for (provider, model) in &pairs {
                let key = self.book.resolve(provider, model);
                appender.append_row(params![provider, model, key])?;
            }
            appender.flush()?;
        }
        self.known_models.extend(pairs);
        self.rebuild_bands()
    }

    /// Rewrites `price_bands` for the price keys in use: per key, version, tier and band, the
    /// fully resolved per-token prices in femtodollars.
    fn rebuild_bands(&mut self) -> Result<(), StoreError> {
        let keys = self.keys_in_use();
        self.thresholds = pricing::thresholds(&self.book, keys.iter().map(String::as_str));
        self.conn.execute_batch("DELETE FROM price_bands")?;
        let span = (
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default(),
        );
        let rows = pricing::band_rows(
            &self.book,
            keys.iter().map(String::as_str),
            &self.thresholds,
            span,
            false,
        );
        let mut appender = self.conn.appender("price_bands")?;
        for row in rows {
            let [
                input,
                cache_read,
                cache_write_5m,
                cache_write_1h,
                output,
                reasoning,
            ] = row.rates.unwrap_or_default();
            appender.append_row(params![
                row.price_key,
                row.tier.as_str(),
                i32::from(row.band),
                row.valid_from,
                row.valid_to,
                input,
                cache_read,
                cache_write_5m,
                cache_write_1h,
                output,
                reasoning,
            ])?;
        }
        appender.flush()?;
        Ok(())
    }

    /// Models in the ledger with no price, with their usage: `burnrate prices missing`. A
    /// model whose calls used no tokens (all refused before a provider) is not listed: no
    /// price would change what it cost.
    pub fn unpriced_models(&self) -> Result<Vec<UnpricedModel>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT e.provider, e.model, count(*), sum(e.input_tokens), sum(e.output_tokens), \
             strftime(min(e.ts), '%Y-%m-%dT%H:%M:%SZ'), strftime(max(e.ts), '%Y-%m-%dT%H:%M:%SZ') \
             FROM events e SEMI JOIN (SELECT provider, model FROM model_map \
             WHERE price_key IS NULL) m ON e.provider = m.provider AND e.model = m.model \
             GROUP BY ALL HAVING sum(e.input_tokens) + sum(e.output_tokens) > 0 \
             ORDER BY sum(e.input_tokens) + sum(e.output_tokens) DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(UnpricedModel {
                provider: row.get(0)?,
                model: row.get(1)?,
                requests: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                input_tokens: u64::try_from(row.get::<_, i128>(3)?).unwrap_or(u64::MAX),
                output_tokens: u64::try_from(row.get::<_, i128>(4)?).unwrap_or(u64::MAX),
                first_seen: row.get(5)?,
                last_seen: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
