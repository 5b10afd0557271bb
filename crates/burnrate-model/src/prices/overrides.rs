//! Price overrides and contract prices from a small TOML file.
//!
//! ```toml
//! [[price]]
//! model = "gpt-4.1"                  # a price-book key; a new key adds a model
//! provider = "openai"                # optional: the provider the model is listed under
//! effective_from = "2026-12-01"      # optional: first day (UTC); absent = since the beginning
//! input_cost_per_token = "0.0000018" # LiteLLM field names, dollars per token
//! output_cost_per_token = "0.0000072"
//! max_input_tokens = 1047576         # optional: context window, bounds budget reservations
//! max_output_tokens = 32768          # optional: largest output
//! ```
//!
//! Fields an override does not give keep the value in force before it.

use chrono::NaiveDate;
use toml::Value;

use super::litellm::{money_value, parse_field_name};
use super::{PriceBook, PriceError, PriceVersion};

/// One parsed `[[price]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceOverride {
    /// Price-book key.
    pub model: String,
    /// Provider the model is listed under.
    pub provider: Option<String>,
    /// First day the prices apply.
    pub effective_from: Option<NaiveDate>,
    /// The prices given, by LiteLLM field name.
    pub fields: Vec<(String, super::PriceSlot, crate::money::Money)>,
    /// Largest input the model takes, if given.
    pub max_input_tokens: Option<u64>,
    /// Largest output the model produces, if given.
    pub max_output_tokens: Option<u64>,
}

/// Parses an overrides file, collecting every problem (each naming its entry and key).
pub fn parse(text: &str) -> Result<Vec<PriceOverride>, PriceError> {
    let root: toml::Table = text
        .parse()
        .map_err(|error| PriceError::one(format!("overrides file is not valid TOML: {error}")))?;
    let mut problems = Vec::new();
    for key in root.keys() {
        if key != "price" {
            problems.push(format!(
                "unknown key `{key}`: the file holds `[[price]]` entries only"
            ));
        }
    }
    let entries = match root.get("price") {
        None => &Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(PriceError::one(
                "`price` must be an array of tables: write `[[price]]`",
            ));
        }
    };
    let mut overrides = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let place = format!("price[{index}]");
        match parse_entry(entry, &place) {
            Ok(parsed) => overrides.push(parsed),
            Err(mut entry_problems) => problems.append(&mut entry_problems),
        }
    }
    if problems.is_empty() {
        Ok(overrides)
    } else {
        Err(PriceError { problems })
    }
}

fn parse_entry(entry: &Value, place: &str) -> Result<PriceOverride, Vec<String>> {
    let Value::Table(table) = entry else {
        return Err(vec![format!("{place}: expected a table")]);
    };
    let mut problems = Vec::new();
    let text = |key: &str, problems: &mut Vec<String>| match table.get(key) {
        None => None,
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.clone()),
        Some(_) => {
            problems.push(format!("{place}.{key}: expected a non-empty string"));
            None
        }
    };
    let model = text("model", &mut problems);
    if model.is_none() && !table.contains_key("model") {
        problems.push(format!("{place}.model: missing; name the price-book key"));
    }
    let provider = text("provider", &mut problems);
    let effective_from = match table.get("effective_from") {
        None => None,
        Some(Value::Datetime(date)) => parse_date(&date.to_string(), place, &mut problems),
        Some(Value::String(date)) => parse_date(date, place, &mut problems),
        Some(_) => {
            problems.push(format!(
                "{place}.effective_from: expected a date like 2026-12-01"
            ));
            None
        }
    };
    let count = |key: &str, problems: &mut Vec<String>| match table.get(key) {
        None => None,
        Some(Value::Integer(count)) if *count > 0 => u64::try_from(*count).ok(),
        Some(_) => {
            problems.push(format!(
                "{place}.{key}: expected a positive whole number of tokens"
            ));
            None
        }
    };
    let max_input_tokens = count("max_input_tokens", &mut problems);
    let max_output_tokens = count("max_output_tokens", &mut problems);
    let mut fields = Vec::new();
    for (key, value) in table {
        if matches!(
            key.as_str(),
            "model" | "provider" | "effective_from" | "max_input_tokens" | "max_output_tokens"
        ) {
            continue;
        }
        let Some(slot) = parse_field_name(key) else {
            problems.push(format!(
                "{place}.{key}: not a price field (use LiteLLM names such as input_cost_per_token)"
            ));
            continue;
        };
        let json = match value {
            Value::String(text) => serde_json::Value::String(text.clone()),
            Value::Float(float) => serde_json::Number::from_f64(*float)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Integer(integer) => serde_json::Value::from(*integer),
            _ => serde_json::Value::Null,
        };
        match money_value(&json) {
            Ok(money) => fields.push((key.clone(), slot, money)),
            Err(reason) => problems.push(format!("{place}.{key}: {reason}")),
        }
    }
    match model {
        Some(model) if problems.is_empty() => Ok(PriceOverride {
            model,
            provider,
            effective_from,
            fields,
            max_input_tokens,
            max_output_tokens,
        }),
        _ => Err(problems),
    }
}

fn parse_date(text: &str, place: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => {
            problems.push(format!(
                "{place}.effective_from: `{text}` is not a date like 2026-12-01"
            ));
            None
        }
    }
}

/// Applies overrides to a book: each becomes a version of its model from its date, with the
/// fields it does not give carried over from the version in force before.
pub fn apply(book: &mut PriceBook, overrides: &[PriceOverride], source: &str) {
    for entry in overrides {
        let mut prices = book
            .version_at(&entry.model, entry.effective_from)
            .map(|version| version.prices.clone())
            .unwrap_or_default();
        if entry.provider.is_some() {
            prices.provider.clone_from(&entry.provider);
        }
        prices.max_input_tokens = entry.max_input_tokens.or(prices.max_input_tokens);
        prices.max_output_tokens = entry.max_output_tokens.or(prices.max_output_tokens);
        for (_, slot, money) in &entry.fields {
            prices.slots.insert(*slot, *money);
        }
        book.insert(
            entry.model.clone(),
            PriceVersion {
                effective_from: entry.effective_from,
                source: source.to_owned(),
                prices,
            },
        );
    }
}
