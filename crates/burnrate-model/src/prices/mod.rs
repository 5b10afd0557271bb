//! The price book: what every token class of every model costs, effective-dated.
//!
//! Prices come from LiteLLM's shared table ([`litellm`]) and from a TOML file of overrides and
//! contract prices ([`overrides`]). Each model key holds a history of [`PriceVersion`]s; an
//! event is priced with the version in force on its day.

pub mod changes;
pub mod litellm;
pub mod overrides;
mod resolve;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::event::Usage;
use crate::money::Money;

pub use resolve::strip_date_suffix;

/// The LiteLLM snapshot shipped with burnrate (see `prices/README.md`).
pub const BUNDLED_LITELLM_JSON: &str = include_str!("../../../../prices/litellm_model_prices.json");
/// The day the bundled snapshot was taken.
pub const BUNDLED_SNAPSHOT_DATE: &str = "2026-11-23";
/// Default age after which reports warn that prices may be stale.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 30;

/// Service tiers with their own prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTier {
    /// The default tier.
    Standard,
    /// Asynchronous batch APIs (LiteLLM suffix `_batches`).
    Batch,
    /// OpenAI flex processing (`_flex`).
    Flex,
    /// Priority processing (`_priority`).
    Priority,
}

impl ServiceTier {
    /// Every tier, standard first.
    pub const ALL: [ServiceTier; 4] = [
        ServiceTier::Standard,
        ServiceTier::Batch,
        ServiceTier::Flex,
        ServiceTier::Priority,
    ];

    /// The tier an event's `service_tier` text prices at. Unknown and absent tiers
    /// (`default`, `auto`) price as standard; OpenAI's `scale` is priority.
    pub fn from_event(text: Option<&str>) -> ServiceTier {
        match text {
            Some("batch") => ServiceTier::Batch,
            Some("flex") => ServiceTier::Flex,
            Some("priority" | "scale") => ServiceTier::Priority,
            _ => ServiceTier::Standard,
        }
    }

    /// The tier's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Standard => "standard",
            ServiceTier::Batch => "batch",
            ServiceTier::Flex => "flex",
            ServiceTier::Priority => "priority",
        }
    }
}

/// The token classes that are priced apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenClass {
    /// Input neither read from nor written to the cache.
    Input,
    /// Input read from the cache.
    CacheRead,
    /// Input written to the cache with the default 5-minute TTL.
    CacheWrite5m,
    /// Input written to the cache with a 1-hour TTL.
    CacheWrite1h,
    /// Output that is not reasoning.
    Output,
    /// Reasoning output.
    Reasoning,
}

impl TokenClass {
    /// Every class, in the order reports print them.
    pub const ALL: [TokenClass; 6] = [
        TokenClass::Input,
        TokenClass::CacheRead,
        TokenClass::CacheWrite5m,
        TokenClass::CacheWrite1h,
        TokenClass::Output,
        TokenClass::Reasoning,
    ];

    /// The class name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenClass::Input => "input",
            TokenClass::CacheRead => "cache_read",
            TokenClass::CacheWrite5m => "cache_write_5m",
            TokenClass::CacheWrite1h => "cache_write_1h",
            TokenClass::Output => "output",
            TokenClass::Reasoning => "reasoning",
        }
    }

    /// How many tokens of this class a call used.
    pub fn tokens(self, usage: &Usage) -> u64 {
        match self {
            TokenClass::Input => usage.uncached_input_tokens(),
            TokenClass::CacheRead => usage.cache_read_tokens,
            TokenClass::CacheWrite5m => usage.cache_write_5m_tokens(),
            TokenClass::CacheWrite1h => usage.cache_write_1h_tokens,
            TokenClass::Output => usage.visible_output_tokens(),
            TokenClass::Reasoning => usage.reasoning_tokens,
        }
    }
}

/// Where one raw price applies: a token class, a service tier and an input-size band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PriceSlot {
    /// Token class priced.
    pub class: TokenClass,
    /// Service tier.
    pub tier: ServiceTier,
    /// The band starts above this many input tokens (0 for the base band).
    pub above_tokens: u64,
}

/// The raw prices of one model as one source gave them, per token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelPrices {
    /// The provider the source lists the model under (`openai`, `vertex_ai-language-models`).
    pub provider: Option<String>,
    /// The model's mode (`chat`, `embedding`, ...).
    pub mode: Option<String>,
    /// Largest output the model produces, for worst-case cost estimates.
    pub max_output_tokens: Option<u64>,
    /// Largest input the model takes (its context window less nothing), for worst-case
    /// cost estimates of calls whose input the request body does not bound.
    pub max_input_tokens: Option<u64>,
    /// Prices as given, per slot.
    pub slots: BTreeMap<PriceSlot, Money>,
}

/// Fully resolved per-token prices for one tier and input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rates {
    /// Uncached input.
    pub input: Money,
    /// Cache reads.
    pub cache_read: Money,
    /// 5-minute cache writes.
    pub cache_write_5m: Money,
    /// 1-hour cache writes.
    pub cache_write_1h: Money,
    /// Output.
    pub output: Money,
    /// Reasoning output.
    pub reasoning: Money,
}

impl Rates {
    /// The price of one token of `class`.
    pub fn of(&self, class: TokenClass) -> Money {
        match class {
            TokenClass::Input => self.input,
            TokenClass::CacheRead => self.cache_read,
            TokenClass::CacheWrite5m => self.cache_write_5m,
            TokenClass::CacheWrite1h => self.cache_write_1h,
            TokenClass::Output => self.output,
            TokenClass::Reasoning => self.reasoning,
        }
    }

    /// The exact cost of a call's usage at these rates.
    pub fn cost(&self, usage: &Usage) -> Money {
        TokenClass::ALL
            .iter()
            .map(|class| self.of(*class).times(class.tokens(usage)))
            .sum()
    }

    /// What a naive dashboard would charge: every input token at the input price and every
    /// output token at the output price, ignoring cache discounts and reasoning prices.
    pub fn naive_cost(&self, usage: &Usage) -> Money {
        self.input.times(usage.input_tokens) + self.output.times(usage.output_tokens)
    }
}

impl ModelPrices {
    /// The input-size thresholds this model's prices change at, ascending.
    pub fn thresholds(&self) -> BTreeSet<u64> {
        self.slots
            .keys()
            .map(|slot| slot.above_tokens)
            .filter(|above| *above > 0)
            .collect()
    }

    /// True when the model has any token price at all.
    pub fn has_token_prices(&self) -> bool {
        self.slots
            .keys()
            .any(|slot| slot.class == TokenClass::Input || slot.class == TokenClass::Output)
    }

    /// The rates for a call in `tier` with `input_tokens` of input in total.
    ///
    /// The band is the highest threshold the input exceeds. A price the table does not give
    /// is found, in order: the same slot in the standard tier; a derivation within the band
    /// (reasoning → output, 1-hour write → 5-minute write → input, cache read → input); the
    /// same slot in the next lower band. A missing service-tier price thus falls back to the
    /// standard price, which never under-reports.
    pub fn rates(&self, tier: ServiceTier, input_tokens: u64) -> Rates {
        let band = self
            .thresholds()
            .into_iter()
            .rfind(|threshold| input_tokens > *threshold)
            .unwrap_or(0);
        let price = |class| self.resolve(class, tier, band);
        Rates {
            input: price(TokenClass::Input),
            cache_read: price(TokenClass::CacheRead),
            cache_write_5m: price(TokenClass::CacheWrite5m),
            cache_write_1h: price(TokenClass::CacheWrite1h),
            output: price(TokenClass::Output),
            reasoning: price(TokenClass::Reasoning),
        }
    }

    fn given(&self, class: TokenClass, tier: ServiceTier, band: u64) -> Option<Money> {
        let slot = |tier| PriceSlot {
            class,
            tier,
            above_tokens: band,
        };
        self.slots
            .get(&slot(tier))
            .or_else(|| self.slots.get(&slot(ServiceTier::Standard)))
            .copied()
    }

    fn resolve(&self, class: TokenClass, tier: ServiceTier, band: u64) -> Money {
        if let Some(price) = self.given(class, tier, band) {
            return price;
        }
        let derived_from = match class {
            TokenClass::Reasoning => Some(TokenClass::Output),
            TokenClass::CacheWrite1h => Some(TokenClass::CacheWrite5m),
            TokenClass::CacheWrite5m | TokenClass::CacheRead => Some(TokenClass::Input),
            TokenClass::Input | TokenClass::Output => None,
        };
        if let Some(source) = derived_from {
            let source_given = self.given(source, tier, band).is_some()
                || (source == TokenClass::CacheWrite5m
                    && self.given(TokenClass::Input, tier, band).is_some());
            if source_given || band == 0 {
                return self.resolve(source, tier, band);
            }
        }
        if band == 0 {
            return Money::ZERO;
        }
        let lower = self
            .thresholds()
            .into_iter()
            .rfind(|threshold| *threshold < band)
            .unwrap_or(0);
        self.resolve(class, tier, lower)
    }
}

/// One model's prices from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceVersion {
    /// First day (UTC) these prices apply; `None` means since the beginning.
    pub effective_from: Option<NaiveDate>,
    /// Where the prices came from (`litellm:2026-11-23`, `overrides.toml`).
    pub source: String,
    /// The prices.
    pub prices: ModelPrices,
}

/// Every model's price history.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    entries: HashMap<String, Vec<PriceVersion>>,
    /// The day the newest imported table was taken, for staleness warnings.
    pub as_of: Option<NaiveDate>,
}

/// Why a price file cannot be loaded; every problem names its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct PriceError {
    /// One line per problem, each naming the model and field.
    pub problems: Vec<String>,
}

impl PriceError {
    /// A single problem.
    pub fn one(problem: impl Into<String>) -> PriceError {
        PriceError {
            problems: vec![problem.into()],
        }
    }
}

impl PriceBook {
    /// The book built from the LiteLLM snapshot shipped with burnrate.
    pub fn bundled() -> Result<PriceBook, PriceError> {
        let date = NaiveDate::parse_from_str(BUNDLED_SNAPSHOT_DATE, "%Y-%m-%d")
            .map_err(|error| PriceError::one(format!("bundled snapshot date: {error}")))?;
        let table = litellm::parse(BUNDLED_LITELLM_JSON)?;
        let mut book = PriceBook::default();
        book.add_table(table, None, &format!("litellm:{date}"), date);
        Ok(book)
    }

    /// Adds a whole price table whose prices apply from `effective_from` (`None`: since the
    /// beginning). Only models whose prices changed get a new version, so history stays small.
    pub fn add_table(
        &mut self,
        table: BTreeMap<String, ModelPrices>,
        effective_from: Option<NaiveDate>,
        source: &str,
        as_of: NaiveDate,
    ) -> usize {
        let mut changed = 0;
        for (key, prices) in table {
            let unchanged = self
                .version_at(&key, effective_from)
                .is_some_and(|current| current.prices == prices);
            if !unchanged {
                self.insert(
                    key,
                    PriceVersion {
                        effective_from,
                        source: source.to_owned(),
                        prices,
                    },
                );
                changed += 1;
            }
        }
        self.as_of = Some(self.as_of.map_or(as_of, |known| known.max(as_of)));
        changed
    }

    /// Adds one version, replacing a version of the same key that starts the same day.
    pub fn insert(&mut self, key: String, version: PriceVersion) {
        let versions = self.entries.entry(key).or_default();
        versions.retain(|existing| existing.effective_from != version.effective_from);
        versions.push(version);
        versions.sort_by_key(|existing| existing.effective_from);
    }

    /// The version of `key` in force on `day` (`None`: the earliest).
    pub fn version_at(&self, key: &str, day: Option<NaiveDate>) -> Option<&PriceVersion> {
        let versions = self.entries.get(key)?;
        versions
            .iter()
            .rev()
            .find(|version| match (version.effective_from, day) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(from), Some(day)) => from <= day,
            })
    }

    /// Every version of `key`, oldest first.
    pub fn history(&self, key: &str) -> &[PriceVersion] {
        self.entries.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every model key, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    /// Every (key, version) pair.
    pub fn versions(&self) -> impl Iterator<Item = (&str, &PriceVersion)> {
        self.entries
            .iter()
            .flat_map(|(key, versions)| versions.iter().map(move |v| (key.as_str(), v)))
    }

    /// Every threshold any model's prices change at, ascending: the input-size bands.
    pub fn thresholds(&self) -> Vec<u64> {
        let all: BTreeSet<u64> = self
            .versions()
            .flat_map(|(_, version)| version.prices.thresholds())
            .collect();
        all.into_iter().collect()
    }

    /// The price key for a call a provider reported as `model`, or `None` when unpriced.
    /// Tries the exact name listed under that provider, the provider-qualified name
    /// (`gemini/gemini-2.5-pro`), the exact name under any provider, then all of these again
    /// without a date suffix (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`).
    pub fn resolve(&self, provider: &str, model: &str) -> Option<String> {
        resolve::resolve(self, provider, model)
    }

    /// Days since the newest table was taken, when that is more than `max_age_days`.
    pub fn stale_by(&self, today: NaiveDate, max_age_days: i64) -> Option<i64> {
        let age = (today - self.as_of?).num_days();
        (age > max_age_days).then_some(age)
    }

    /// The cost of `usage` on `day` for a model key, or `None` when the key has no price then.
    pub fn cost(
        &self,
        key: &str,
        day: NaiveDate,
        tier: ServiceTier,
        usage: &Usage,
    ) -> Option<Money> {
        let version = self.version_at(key, Some(day))?;
        Some(version.prices.rates(tier, usage.input_tokens).cost(usage))
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
}

impl fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
