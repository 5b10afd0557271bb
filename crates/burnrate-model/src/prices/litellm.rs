//! Import of LiteLLM's `model_prices_and_context_window.json`, the field's shared price table.
//!
//! The table's field names encode a token class, an optional 1-hour cache TTL, an optional
//! input-size band and an optional service tier:
//! `cache_creation_input_token_cost_above_1hr_above_200k_tokens_batches`. Field names are parsed
//! by hand because they are a naming convention, not a format any crate reads.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ModelPrices, PriceError, PriceSlot, ServiceTier, TokenClass};
use crate::money::Money;

/// Token-class prefixes of the field names, longest first so prefixes do not shadow.
const CLASS_PREFIXES: [(&str, TokenClass); 5] = [
    ("output_cost_per_reasoning_token", TokenClass::Reasoning),
    ("cache_creation_input_token_cost", TokenClass::CacheWrite5m),
    ("cache_read_input_token_cost", TokenClass::CacheRead),
    ("input_cost_per_token", TokenClass::Input),
    ("output_cost_per_token", TokenClass::Output),
];

/// The slot a LiteLLM price field fills, or `None` for fields burnrate does not price
/// (audio, images, per-request fees, tiers such as `_ultrafast`).
pub fn parse_field_name(name: &str) -> Option<PriceSlot> {
    let &(prefix, mut class) = CLASS_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))?;
    let mut rest = &name[prefix.len()..];
    if class == TokenClass::CacheWrite5m
        && let Some(after) = rest.strip_prefix("_above_1hr")
    {
        class = TokenClass::CacheWrite1h;
        rest = after;
    }
    let mut above_tokens = 0;
    if let Some(after) = rest.strip_prefix("_above_") {
        let end = after.find("k_tokens")?;
        let thousands: u64 = after[..end].parse().ok()?;
        above_tokens = thousands.checked_mul(1000)?;
        rest = &after[end + "k_tokens".len()..];
    }
    let tier = match rest {
        "" => ServiceTier::Standard,
        "_batches" => ServiceTier::Batch,
        "_flex" => ServiceTier::Flex,
        "_priority" => ServiceTier::Priority,
        _ => return None,
    };
    Some(PriceSlot {
        class,
        tier,
        above_tokens,
    })
}

/// The LiteLLM field name of a slot: the inverse of [`parse_field_name`].
pub fn field_name(slot: &PriceSlot) -> String {
    let mut name = match slot.class {
        TokenClass::Input => "input_cost_per_token".to_owned(),
        TokenClass::CacheRead => "cache_read_input_token_cost".to_owned(),
        TokenClass::CacheWrite5m => "cache_creation_input_token_cost".to_owned(),
        TokenClass::CacheWrite1h => "cache_creation_input_token_cost_above_1hr".to_owned(),
        TokenClass::Output => "output_cost_per_token".to_owned(),
        TokenClass::Reasoning => "output_cost_per_reasoning_token".to_owned(),
    };
    if slot.above_tokens > 0 {
        name.push_str(&format!("_above_{}k_tokens", slot.above_tokens / 1000));
    }
    name.push_str(match slot.tier {
        ServiceTier::Standard => "",
        ServiceTier::Batch => "_batches",
        ServiceTier::Flex => "_flex",
        ServiceTier::Priority => "_priority",
    });
    name
}

/// The most one token may cost, in dollars. The dearest token in LiteLLM's table costs about
/// a cent; a price beyond this is a mistake (a price per million tokens, say), and refusing
/// it keeps every call's cost (at most `Usage::MAX_TOKENS` of each class: $6 × 10¹⁵) within
/// what [`Money`] computes without overflow and a femtodollar `i128` holds.
const MAX_PRICE_PER_TOKEN: u32 = 1_000;

/// A price given as a JSON number or decimal string.
pub(super) fn money_value(value: &Value) -> Result<Money, String> {
    let money = match value {
        Value::Number(number) => number
            .as_f64()
            .ok_or_else(|| format!("{number} is not a number"))
            .and_then(|float| Money::from_json_number(float).map_err(|e| e.to_string()))?,
        Value::String(text) => text.parse::<Money>().map_err(|e| e.to_string())?,
        other => return Err(format!("expected a number, found {other}")),
    };
    if money.is_negative() {
        return Err(format!("{money} is negative"));
    }
    if money.as_decimal() > rust_decimal::Decimal::from(MAX_PRICE_PER_TOKEN) {
        return Err(format!(
            "{money} dollars per token is more than the {MAX_PRICE_PER_TOKEN} a price may be \
             (prices are per token, not per million)"
        ));
    }
    Ok(money)
}

/// A LiteLLM table as read: the models whose prices read, and why each other entry was
/// refused.
#[derive(Debug, Clone, Default)]
pub struct ReadTable {
    /// Models whose every price read, by table key.
    pub models: BTreeMap<String, ModelPrices>,
    /// Why entries were refused: a line per bad field (`` `m`.field: reason ``), or per
    /// entry that is not an object of prices (`` `m`: reason ``).
    pub refused: Vec<String>,
}

/// Reads a table entry by entry. Entries without any token price (image, audio, rerank
/// models) are skipped; an entry with a malformed price is refused whole and named in
/// [`ReadTable::refused`], so one bad entry in a table of thousands does not hold back the
/// others (a refused model keeps the prices the book has for it). Only a document that is
/// not a JSON object keyed by model is an error.
pub fn read(json: &str) -> Result<ReadTable, PriceError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|error| PriceError::one(format!("price table is not valid JSON: {error}")))?;
    let Value::Object(models) = root else {
        return Err(PriceError::one(
            "price table must be a JSON object keyed by model name",
        ));
    };
    let mut table = ReadTable::default();
    for (key, entry) in models {
        if key == "sample_spec" {
            continue;
        }
        let Value::Object(fields) = entry else {
            table
                .refused
                .push(format!("`{key}`: expected an object of prices"));
            continue;
        };
        let mut prices = ModelPrices {
            provider: fields
                .get("litellm_provider")
                .and_then(Value::as_str)
                .map(str::to_owned),
            mode: fields
                .get("mode")
                .and_then(Value::as_str)
                .map(str::to_owned),
            max_output_tokens: fields.get("max_output_tokens").and_then(Value::as_u64),
            max_input_tokens: fields.get("max_input_tokens").and_then(Value::as_u64),
            slots: BTreeMap::new(),
        };
        let refused_before = table.refused.len();
        for (field, value) in &fields {
            let Some(slot) = parse_field_name(field) else {
                continue;
            };
            if value.is_null() {
                continue;
            }
            match money_value(value) {
                Ok(money) => {
                    prices.slots.insert(slot, money);
                }
                Err(reason) => table.refused.push(format!("`{key}`.{field}: {reason}")),
            }
        }
        if table.refused.len() == refused_before && prices.has_token_prices() {
            table.models.insert(key, prices);
        }
    }
    Ok(table)
}

/// Reads a table that must be whole (the bundled snapshot): any refused entry is an error
/// naming every one.
pub fn parse(json: &str) -> Result<BTreeMap<String, ModelPrices>, PriceError> {
    let table = read(json)?;
    if table.refused.is_empty() {
        Ok(table.models)
    } else {
        Err(PriceError {
            problems: table.refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(class: TokenClass, tier: ServiceTier, above_tokens: u64) -> Option<PriceSlot> {
        Some(PriceSlot {
            class,
            tier,
            above_tokens,
        })
    }

    #[test]
    fn field_names_map_to_slots() {
        use ServiceTier::*;
        use TokenClass::*;
        assert_eq!(
            parse_field_name("input_cost_per_token"),
            slot(Input, Standard, 0)
        );
        assert_eq!(
            parse_field_name("cache_creation_input_token_cost_above_1hr_above_200k_tokens"),
            slot(CacheWrite1h, Standard, 200_000)
        );
        assert_eq!(
            parse_field_name("cache_read_input_token_cost_above_272k_tokens_priority"),
            slot(CacheRead, Priority, 272_000)
        );
        assert_eq!(
            parse_field_name("output_cost_per_token_batches"),
            slot(Output, Batch, 0)
        );
        assert_eq!(
            parse_field_name("output_cost_per_reasoning_token"),
            slot(Reasoning, Standard, 0)
        );
        assert_eq!(parse_field_name("input_cost_per_token_ultrafast"), None);
        assert_eq!(parse_field_name("input_cost_per_audio_token"), None);
        assert_eq!(
            parse_field_name("cache_creation_input_token_cost_above_12hr"),
            None
        );
        assert_eq!(
            parse_field_name("input_cost_per_token_above_xk_tokens"),
            None
        );
    }

    #[test]
    fn field_names_round_trip() {
        let table = parse(super::super::BUNDLED_LITELLM_JSON).unwrap();
        for prices in table.values() {
            for slot in prices.slots.keys() {
                assert_eq!(parse_field_name(&field_name(slot)).as_ref(), Some(slot));
            }
        }
    }

    #[test]
    fn bad_prices_name_model_and_field() {
        let error = parse(r#"{"m": {"input_cost_per_token": -1, "output_cost_per_token": "x"}}"#)
            .unwrap_err();
        assert_eq!(error.problems.len(), 2);
        assert!(
            error
                .problems
                .iter()
                .any(|p| p.contains("`m`.input_cost_per_token"))
        );
        assert!(
            error
                .problems
                .iter()
                .any(|p| p.contains("`m`.output_cost_per_token"))
        );
        assert!(parse("[1]").is_err());
        assert!(parse("{").is_err());
    }

    #[test]
    fn a_bad_entry_is_refused_whole_and_the_others_are_read() {
        let table = read(
            r#"{"good": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
                "bad": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e28},
                "odd": 7,
                "image-only": {"output_cost_per_image": 0.04}}"#,
        )
        .unwrap();
        assert_eq!(
            table.models.keys().collect::<Vec<_>>(),
            ["good"],
            "the bad entry is not half-read: none of its prices is kept"
        );
        assert_eq!(table.refused.len(), 2, "{:?}", table.refused);
        assert!(table.refused[0].starts_with("`bad`.output_cost_per_token: "));
        assert!(table.refused[1].starts_with("`odd`: expected an object"));
        assert!(read("[1]").is_err(), "not a table at all");
        let strict = parse(r#"{"good": {"input_cost_per_token": 1e-6}, "odd": 7}"#);
        assert_eq!(strict.unwrap_err().problems.len(), 1);
    }

    #[test]
    fn the_bundled_snapshot_parses() {
        let table = parse(super::super::BUNDLED_LITELLM_JSON).unwrap();
        assert!(table.len() > 1000, "only {} models", table.len());
        assert!(table.contains_key("gpt-4.1"));
        assert!(table.contains_key("claude-sonnet-4-5"));
        assert!(table.contains_key("gemini/gemini-2.5-pro"));
    }
}
