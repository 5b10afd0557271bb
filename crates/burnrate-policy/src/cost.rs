//! Worst-case cost of a call before it runs, and the nanodollar unit budget counters use.
//!
//! Budget counters are whole nanodollars (10⁻⁹ $) so that the Redis scripts, whose numbers
//! are doubles, stay exact up to 9 million dollars per counter. Costs are rounded *up* to the
//! next nanodollar, so the enforced spend is never below the exact spend; the ledger keeps
//! the exact figures.

use burnrate_model::prices::ServiceTier;
use burnrate_model::{Money, PriceBook};
use chrono::NaiveDate;

use crate::input::{InputShape, input_bound};

/// Femtodollars per nanodollar.
const FEMTO_PER_NANO: i128 = 1_000_000;

/// Reserved output when neither the request nor the price table bounds it.
pub const UNKNOWN_MAX_OUTPUT: u64 = 128_000;

/// `money` in nanodollars, rounded up.
pub fn nanos(money: Money) -> i64 {
    let femto = money.to_femto();
    let nanos =
        femto.div_euclid(FEMTO_PER_NANO) + i128::from(femto.rem_euclid(FEMTO_PER_NANO) != 0);
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Nanodollars back to money.
pub fn money(nanos: i64) -> Money {
    Money::from_femto(i128::from(nanos) * FEMTO_PER_NANO).unwrap_or(Money::ZERO)
}

/// What a call may cost at most, before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    /// The cost, nanodollars.
    pub nanos: i64,
    /// The input tokens reserved.
    pub input_tokens: u64,
    /// The output tokens reserved.
    pub output_tokens: u64,
}

/// The most a call of `key` can cost with a request body of `body_bytes` shaped `input`
/// (which bounds its input, see [`input_bound`]) and at most `max_output` of output (the
/// model's own maximum when `None`): every input token at the dearest input-side price (a
/// cache write can cost more than plain input), every output token at the dearest
/// output-side price, in the band the input bound falls in. `None` when the model has no
/// price on `day`.
pub fn worst_case(
    book: &PriceBook,
    key: &str,
    day: NaiveDate,
    tier: ServiceTier,
    (body_bytes, input): (u64, InputShape),
    max_output: Option<u64>,
) -> Option<WorstCase> {
    let version = book.version_at(key, Some(day))?;
    if !version.prices.has_token_prices() {
        return None;
    }
    let input_tokens = input_bound(
        body_bytes,
        input,
        version.prices.max_input_tokens,
        version.prices.thresholds().last().copied().unwrap_or(0),
    );
    let rates = version.prices.rates(tier, input_tokens);
    let output_tokens = max_output
        .or(version.prices.max_output_tokens)
        .unwrap_or(UNKNOWN_MAX_OUTPUT);
    let input_rate = rates
        .input
        .max(rates.cache_read)
        .max(rates.cache_write_5m)
        .max(rates.cache_write_1h);
    let output_rate = rates.output.max(rates.reasoning);
    let cost = input_rate.times(input_tokens) + output_rate.times(output_tokens);
    Some(WorstCase {
        nanos: nanos(cost),
        input_tokens,
        output_tokens,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use burnrate_model::Usage;

    use super::*;

    #[test]
    fn nanos_round_up_and_back() {
        let money: Money = "0.0000000011".parse().unwrap();
        assert_eq!(nanos(money), 2);
        assert_eq!(nanos("2.5".parse().unwrap()), 2_500_000_000);
        assert_eq!(super::money(2_500_000_000).to_string(), "2.5");
        assert_eq!(nanos(Money::ZERO), 0);
    }

    #[test]
    fn the_worst_case_covers_every_usage_within_its_bounds() {
        let book = PriceBook::bundled().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        for model in ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "o3"] {
            let key = book.resolve("", model).unwrap();
            let worst = worst_case(
                &book,
                &key,
                day,
                ServiceTier::Standard,
                (300_000, InputShape::default()),
                Some(1_000),
            )
            .unwrap();
            // Any split of the input into cached and uncached parts, any reasoning share.
            for (cache_read, cache_write, write_1h, reasoning) in [
                (0, 0, 0, 0),
                (0, 300_000, 300_000, 1_000),
                (200_000, 100_000, 0, 500),
                (300_000, 0, 0, 0),
            ] {
                let usage = Usage {
                    input_tokens: 300_000,
                    cache_read_tokens: cache_read,
                    cache_write_tokens: cache_write,
                    cache_write_1h_tokens: write_1h,
                    output_tokens: 1_000,
                    reasoning_tokens: reasoning,
                };
                let cost = book.cost(&key, day, ServiceTier::Standard, &usage).unwrap();
                assert!(
                    nanos(cost) <= worst.nanos,
                    "{model}: {cost} above the worst case"
                );
            }
        }
    }

    #[test]
    fn without_max_tokens_the_models_maximum_is_reserved() {
        let book = PriceBook::bundled().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let key = book.resolve("openai", "gpt-4o").unwrap();
        let worst = worst_case(
            &book,
            &key,
            day,
            ServiceTier::Standard,
            (10, InputShape::default()),
            None,
        )
        .unwrap();
        assert_eq!(worst.output_tokens, 16_384);
    }
}
