//! The price book inside ClickHouse, shared by every replica and the CLI.
//!
//! ClickHouse has no transactions, so the book is written whole as a new *generation*:
//! versions, then bands, then a row in `price_generations` that makes it count. Readers use
//! the newest listed generation, so they never see half of one; a writer whose book matches
//! the newest generation's fingerprint writes nothing (replicas starting with the same
//! overrides do not pile up generations). Bands cover every key of the book, so a model first
//! seen by another replica is priced without rewriting them; the provider + model pairs seen
//! are resolved to keys by whoever queries, with the book it holds.

use std::collections::{BTreeMap, HashMap};

use burnrate_model::PriceBook;
use burnrate_model::prices::{ModelPrices, overrides};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ClickHouse, sql};
use crate::error::StoreError;
use crate::pricing::{self, StoredVersion};

/// The days price bands span: all a ClickHouse `Date` holds.
fn span() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2105, 12, 31).unwrap_or_default(),
    )
}

/// A stored version as a `JSONEachRow` row of `price_versions`.
#[derive(Serialize, Deserialize)]
struct VersionRow {
    generation: u64,
    #[serde(flatten)]
    version: StoredVersion,
}

/// A band as a `JSONEachRow` row of `price_bands`.
#[derive(Serialize)]
struct BandRow<'a> {
    generation: u64,
    price_key: &'a str,
    tier: &'static str,
    band: u8,
    valid_from: String,
    valid_to: String,
    priced: u8,
    p_input: i128,
    p_cache_read: i128,
    p_cache_write_5m: i128,
    p_cache_write_1h: i128,
    p_output: i128,
    p_reasoning: i128,
}

/// The newest generation, as `price_generations` lists it.
#[derive(Debug, Deserialize)]
struct Generation {
    generation: u64,
    as_of: Option<NaiveDate>,
    fingerprint: String,
}

impl ClickHouse {
    /// Loads the newest price book generation; a new ledger starts from the bundled snapshot.
    pub(super) fn load_prices(&mut self) -> Result<(), StoreError> {
        match self.newest_generation()? {
            None => {
                self.book = PriceBook::bundled()?;
                self.save_prices()
            }
            Some(newest) => self.read_generation(&newest),
        }
    }

    /// Reloads the book when another process wrote a newer generation.
    pub fn refresh_prices(&mut self) -> Result<(), StoreError> {
        match self.newest_generation()? {
            Some(newest) if newest.generation != self.generation => self.read_generation(&newest),
            _ => Ok(()),
        }
    }

    fn newest_generation(&self) -> Result<Option<Generation>, StoreError> {
        let text = self.execute(&format!(
            "SELECT generation, as_of, fingerprint FROM {}.price_generations \
             ORDER BY generation DESC LIMIT 1 FORMAT JSONEachRow",
            self.database
        ))?;
        match text.lines().next() {
            None => Ok(None),
            Some(line) => serde_json::from_str(line)
                .map(Some)
                .map_err(|error| StoreError::Corrupt(format!("price generation: {error}"))),
        }
    }

    fn read_generation(&mut self, newest: &Generation) -> Result<(), StoreError> {
        let text = self.execute(&format!(
            "SELECT * FROM {}.price_versions WHERE generation = {} FORMAT JSONEachRow",
            self.database, newest.generation
        ))?;
        let rows = text
            .lines()
            .map(|line| {
                serde_json::from_str::<VersionRow>(line)
                    .map(|row| row.version)
                    .map_err(|error| StoreError::Corrupt(format!("stored price: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.book = StoredVersion::into_book(rows, newest.as_of)?;
        self.generation = newest.generation;
        self.fingerprint = newest.fingerprint.clone();
        self.thresholds = self.book.thresholds();
        Ok(())
    }

    /// Writes the book as a new generation, unless the newest one holds the same book.
    fn save_prices(&mut self) -> Result<(), StoreError> {
        let versions = StoredVersion::all(&self.book)?;
        let mut text = serde_json::to_vec(&versions)
            .map_err(|error| StoreError::Corrupt(format!("price book: {error}")))?;
        text.extend_from_slice(format!("{:?}", self.book.as_of).as_bytes());
        let fingerprint = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&text));
        if let Some(newest) = self.newest_generation()?
            && newest.fingerprint == fingerprint
        {
            return self.read_generation(&newest);
        }
        // Microseconds, with random low digits so two writers in the same microsecond differ.
        let generation = u64::try_from(chrono::Utc::now().timestamp_micros())
            .unwrap_or_default()
            .saturating_mul(1000)
            .saturating_add(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 1000);
        let mut body = Vec::new();
        for version in versions {
            let row = VersionRow {
                generation,
                version,
            };
            serde_json::to_writer(&mut body, &row)
                .map_err(|error| StoreError::Corrupt(format!("price book: {error}")))?;
            body.push(b'\n');
        }
        self.insert("price_versions", body)?;

        let thresholds = self.book.thresholds();
        let keys = self.book.keys();
        let bands = pricing::band_rows(&self.book, keys, &thresholds, span(), true);
        let mut body = Vec::new();
        for band in &bands {
            let rates = band.rates.unwrap_or_default();
            let row = BandRow {
                generation,
                price_key: &band.price_key,
                tier: band.tier.as_str(),
                band: band.band,
                valid_from: band.valid_from.to_string(),
                valid_to: band.valid_to.to_string(),
                priced: u8::from(band.rates.is_some()),
                p_input: rates[0],
                p_cache_read: rates[1],
                p_cache_write_5m: rates[2],
                p_cache_write_1h: rates[3],
                p_output: rates[4],
                p_reasoning: rates[5],
            };
            serde_json::to_writer(&mut body, &row)
                .map_err(|error| StoreError::Corrupt(format!("price bands: {error}")))?;
            body.push(b'\n');
        }
        self.insert("price_bands", body)?;
        let as_of = self
            .book
            .as_of
            .map_or("NULL".to_owned(), |day| format!("toDate('{day}')"));
        self.execute(&format!(
            "INSERT INTO {}.price_generations VALUES ({generation}, now(), {as_of}, '{fingerprint}')",
            self.database
        ))?;
        self.generation = generation;
        self.fingerprint = fingerprint;
        self.thresholds = thresholds;
        Ok(())
    }

    /// Records the models of a LiteLLM price table whose prices apply from `effective_from`
    /// (`None`: since the beginning). Returns how many models changed.
    pub fn import_litellm(
        &mut self,
        models: BTreeMap<String, ModelPrices>,
        effective_from: Option<NaiveDate>,
        as_of: NaiveDate,
        source: &str,
    ) -> Result<usize, StoreError> {
        self.refresh_prices()?;
        let changed = self.book.add_table(models, effective_from, source, as_of);
        self.save_prices()?;
        Ok(changed)
    }

    /// Imports a TOML file of overrides and contract prices. Returns how many entries it held.
    pub fn import_overrides(&mut self, text: &str, source: &str) -> Result<usize, StoreError> {
        self.refresh_prices()?;
        let entries = overrides::parse(text)?;
        overrides::apply(&mut self.book, &entries, source);
        self.save_prices()?;
        Ok(entries.len())
    }

    /// Replaces the price book with `book` (all its history), as a new generation unless it
    /// is the book held already: how `burnrate migrate` carries an embedded ledger's prices.
    pub fn replace_prices(&mut self, book: PriceBook) -> Result<(), StoreError> {
        self.book = book;
        self.save_prices()
    }

    /// The provider + model pairs the ledger holds, each with its price key under the current
    /// book (`None`: unpriced).
    pub(super) fn model_keys(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let text = self.execute(&format!(
            "SELECT provider, model FROM {}.models_seen GROUP BY provider, model \
             FORMAT TabSeparated",
            self.database
        ))?;
        let mut resolved: HashMap<(String, String), Option<String>> = HashMap::new();
        for row in sql::tsv_rows(&text, 2)? {
            let [Some(provider), Some(model)] = <[Option<String>; 2]>::try_from(row)
                .map_err(|_| StoreError::Corrupt("models_seen row".into()))?
            else {
                continue;
            };
            let key = self.book.resolve(&provider, &model);
            resolved.insert((provider, model), key);
        }
        let mut pairs: Vec<_> = resolved
            .into_iter()
            .map(|((provider, model), key)| (provider, model, key))
            .collect();
        pairs.sort();
        Ok(pairs)
    }
}
