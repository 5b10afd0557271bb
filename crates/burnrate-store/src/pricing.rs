//! The price book as rows, shared by the DuckDB and ClickHouse ledgers: stored versions (how a
//! ledger keeps the whole book with its history) and price bands (per-token prices in
//! femtodollars per key, service tier, input-size band and validity period: what queries
//! join to, so cost is computed at query time with the prices in force on each event's day).

use std::collections::{BTreeMap, BTreeSet};

use burnrate_model::prices::litellm::{field_name, parse_field_name};
use burnrate_model::prices::{ModelPrices, PriceVersion};
use burnrate_model::{Money, PriceBook, ServiceTier};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// One stored price version: a key, when it starts and its prices as `{field: dollars}` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVersion {
    /// The price key.
    pub price_key: String,
    /// First day the prices apply; `None` since the beginning.
    pub effective_from: Option<NaiveDate>,
    /// Where the prices came from.
    pub source: String,
    /// The provider the table lists the key under.
    pub provider: Option<String>,
    /// The table's mode (chat, embedding, …).
    pub mode: Option<String>,
    /// Largest output the model allows.
    pub max_output_tokens: Option<u64>,
    /// Largest input the model allows.
    pub max_input_tokens: Option<u64>,
    /// The prices, `{"input_cost_per_token": "0.000002", …}`.
    pub slots: String,
}

impl StoredVersion {
    /// Every version of `book`, sorted by key then start.
    pub fn all(book: &PriceBook) -> Result<Vec<StoredVersion>, StoreError> {
        let mut rows = book
            .versions()
            .map(|(key, version)| {
                let slots: BTreeMap<String, String> = version
                    .prices
                    .slots
                    .iter()
                    .map(|(slot, money)| (field_name(slot), money.to_string()))
                    .collect();
                let slots = serde_json::to_string(&slots)
                    .map_err(|e| StoreError::Corrupt(format!("prices of `{key}`: {e}")))?;
                Ok(StoredVersion {
                    price_key: key.to_owned(),
                    effective_from: version.effective_from,
                    source: version.source.clone(),
                    provider: version.prices.provider.clone(),
                    mode: version.prices.mode.clone(),
                    max_output_tokens: version.prices.max_output_tokens,
                    max_input_tokens: version.prices.max_input_tokens,
                    slots,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort_by(|a, b| {
            (&a.price_key, a.effective_from).cmp(&(&b.price_key, b.effective_from))
        });
        Ok(rows)
    }

    /// The book these versions make, taken on `as_of`.
    pub fn into_book(
        rows: impl IntoIterator<Item = StoredVersion>,
        as_of: Option<NaiveDate>,
    ) -> Result<PriceBook, StoreError> {
        let mut book = PriceBook::default();
        for row in rows {
            let key = row.price_key;
            let fields: BTreeMap<String, String> = serde_json::from_str(&row.slots)
                .map_err(|e| StoreError::Corrupt(format!("prices of `{key}`: {e}")))?;
            let mut prices = ModelPrices {
                provider: row.provider,
                mode: row.mode,
                max_output_tokens: row.max_output_tokens,
                max_input_tokens: row.max_input_tokens,
                slots: BTreeMap::new(),
            };
            for (field, value) in fields {
                let slot = parse_field_name(&field).ok_or_else(|| {
                    StoreError::Corrupt(format!("prices of `{key}`: unknown field {field}"))
                })?;
                let money: Money = value
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("prices of `{key}`.{field}: {e}")))?;
                prices.slots.insert(slot, money);
            }
            book.insert(
                key,
                PriceVersion {
                    effective_from: row.effective_from,
                    source: row.source,
                    prices,
                },
            );
        }
        book.as_of = as_of;
        Ok(book)
    }
}

/// The per-token prices of one key, tier and input band over a period, in femtodollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandRow {
    /// The price key.
    pub price_key: String,
    /// The service tier.
    pub tier: ServiceTier,
    /// How many of the thresholds a call's input exceeds.
    pub band: u8,
    /// First day, inclusive.
    pub valid_from: NaiveDate,
    /// Last day, exclusive.
    pub valid_to: NaiveDate,
    /// Input, cache read, 5-minute and 1-hour cache write, output and reasoning prices; `None`
    /// for a period before the key's first version, when it has no price.
    pub rates: Option<[i128; 6]>,
}

/// The input-size thresholds of `keys`' prices, ascending.
pub fn thresholds<'a>(book: &PriceBook, keys: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
    let all: BTreeSet<u64> = keys
        .into_iter()
        .flat_map(|key| book.history(key))
        .flat_map(|version| version.prices.thresholds())
        .collect();
    all.into_iter().collect()
}

/// The price bands of `keys` for the input bands `thresholds` make, covering
/// `[far_past, far_future)`. With `gaps`, the days before a key's first version get rows
/// without rates, so every key, tier and band covers the whole span exactly once.
pub fn band_rows<'a>(
    book: &PriceBook,
    keys: impl IntoIterator<Item = &'a str>,
    thresholds: &[u64],
    (far_past, far_future): (NaiveDate, NaiveDate),
    gaps: bool,
) -> Vec<BandRow> {
    let bands = u8::try_from(thresholds.len()).unwrap_or(u8::MAX - 1);
    let mut rows = Vec::new();
    for key in keys {
        let history = book.history(key);
        let mut periods: Vec<(NaiveDate, NaiveDate, Option<&PriceVersion>)> = Vec::new();
        if gaps
            && let Some(first) = history.first().and_then(|v| v.effective_from)
            && first > far_past
        {
            periods.push((far_past, first, None));
        }
        for (index, version) in history.iter().enumerate() {
            let valid_from = version.effective_from.unwrap_or(far_past);
            let valid_to = history
                .get(index + 1)
                .and_then(|next| next.effective_from)
                .unwrap_or(far_future);
            periods.push((valid_from, valid_to, Some(version)));
        }
        for (valid_from, valid_to, version) in periods {
            for tier in ServiceTier::ALL {
                for band in 0..=bands {
                    // A call just above the band's threshold represents the band.
                    let input = match band {
                        0 => 0,
                        _ => thresholds[usize::from(band) - 1] + 1,
                    };
                    let rates = version.map(|version| {
                        let rates = version.prices.rates(tier, input);
                        [
                            rates.input.to_femto(),
                            rates.cache_read.to_femto(),
                            rates.cache_write_5m.to_femto(),
                            rates.cache_write_1h.to_femto(),
                            rates.output.to_femto(),
                            rates.reasoning.to_femto(),
                        ]
                    });
                    rows.push(BandRow {
                        price_key: key.to_owned(),
                        tier,
                        band,
                        valid_from,
                        valid_to,
                        rates,
                    });
                }
            }
        }
    }
    rows
}
