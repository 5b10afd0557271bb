//! What a newer price table changes in a book: models added, prices changed (old and new), so
//! an update can be shown before it is recorded.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::litellm::field_name;
use super::{ModelPrices, PriceBook};
use crate::money::Money;

/// One price field's old and new value (`None`: not set on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The LiteLLM field name (`input_cost_per_token`).
    pub field: String,
    /// Dollars per token before.
    pub old: Option<Money>,
    /// Dollars per token after.
    pub new: Option<Money>,
}

/// How one model's prices change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceChange {
    /// The price key.
    pub model: String,
    /// True for a model the book has no price for on that day.
    pub added: bool,
    /// The fields whose price differs (every field of an added model).
    pub fields: Vec<FieldChange>,
}

impl PriceBook {
    /// What recording `table` from `day` on would change, sorted by model; models whose
    /// prices are the same are left out (so are changes to limits and modes alone).
    pub fn changes(
        &self,
        table: &BTreeMap<String, ModelPrices>,
        day: NaiveDate,
    ) -> Vec<PriceChange> {
        table
            .iter()
            .filter_map(|(key, prices)| {
                let current = self.version_at(key, Some(day)).map(|v| &v.prices);
                let fields = field_changes(current, prices);
                (!fields.is_empty()).then(|| PriceChange {
                    model: key.clone(),
                    added: current.is_none(),
                    fields,
                })
            })
            .collect()
    }
}

fn field_changes(old: Option<&ModelPrices>, new: &ModelPrices) -> Vec<FieldChange> {
    let slots: BTreeSet<_> = old
        .map(|o| o.slots.keys().collect::<BTreeSet<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(new.slots.keys())
        .collect();
    slots
        .into_iter()
        .filter_map(|slot| {
            let before = old.and_then(|o| o.slots.get(slot)).copied();
            let after = new.slots.get(slot).copied();
            (before != after).then(|| FieldChange {
                field: field_name(slot),
                old: before,
                new: after,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: &str) -> BTreeMap<String, ModelPrices> {
        super::super::litellm::parse(json).unwrap()
    }

    #[test]
    fn an_update_lists_added_models_and_changed_prices_only() {
        let mut book = PriceBook::default();
        let first = table(
            r#"{"a": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
                "b": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6}}"#,
        );
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        book.add_table(first, None, "first", day);
        let second = table(
            r#"{"a": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
                "b": {"input_cost_per_token": 5e-6, "output_cost_per_token": 4e-6},
                "c": {"input_cost_per_token": 7e-6}}"#,
        );
        let changes = book.changes(&second, day);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].model, "b");
        assert!(!changes[0].added);
        assert_eq!(changes[0].fields.len(), 1);
        assert_eq!(changes[0].fields[0].field, "input_cost_per_token");
        assert_eq!(changes[0].fields[0].old, Some("0.000003".parse().unwrap()));
        assert_eq!(changes[0].fields[0].new, Some("0.000005".parse().unwrap()));
        assert_eq!(changes[1].model, "c");
        assert!(changes[1].added);
    }
}
