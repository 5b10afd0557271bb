//! Exact decimal money.
//!
//! Every amount of money in burnrate, a price per token or a cost, is a [`Money`]: an exact
//! decimal with at most [`Money::SCALE`] fractional digits of a dollar. Floats never carry money.
//! In JSON money is a decimal string (`"12.345678901234"`).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Sub};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact amount of US dollars with at most 15 fractional digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why a text or number is not a valid amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a decimal number.
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    /// The number is not finite or does not fit.
    #[error("{0} is out of range for money")]
    OutOfRange(String),
}

impl Money {
    /// Fractional digits kept: prices and costs are exact to a femtodollar (10⁻¹⁵ $).
    pub const SCALE: u32 = 15;
    /// Zero dollars.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Wraps a decimal, rounding it half-to-even to [`Money::SCALE`] digits.
    pub fn from_decimal(value: Decimal) -> Money {
        Money(value.round_dp_with_strategy(Self::SCALE, RoundingStrategy::MidpointNearestEven))
    }

    /// Money from a whole number of femtodollars (10⁻¹⁵ $), the unit the stores compute in.
    pub fn from_femto(femto: i128) -> Result<Money, MoneyError> {
        Decimal::try_from_i128_with_scale(femto, Self::SCALE)
            .map(Money)
            .map_err(|_| MoneyError::OutOfRange(femto.to_string()))
    }

    /// This amount as a whole number of femtodollars (saturating past ±1.7 × 10²³ dollars).
    /// Computed in `i128`: a decimal holds at most about 7.9 × 10²⁸ in its mantissa, too
    /// little for a large amount at fifteen places.
    pub fn to_femto(self) -> i128 {
        let mut value = self.0;
        if value.scale() > Self::SCALE {
            value.rescale(Self::SCALE);
        }
        let factor = 10i128.pow(Self::SCALE - value.scale());
        value.mantissa().saturating_mul(factor)
    }

    /// Reads a price written as a JSON number (as the LiteLLM table does). The shortest decimal
    /// that round-trips the float is taken, so `3.75e-06` is exactly 0.00000375, and float noise
    /// beyond 15 digits (`5.0000000000000004e-08`) rounds away.
    pub fn from_json_number(value: f64) -> Result<Money, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::OutOfRange(value.to_string()));
        }
        // `{:e}` prints the shortest representation that round-trips the f64.
        let text = format!("{value:e}");
        Decimal::from_scientific(&text)
            .map(Money::from_decimal)
            .map_err(|_| MoneyError::OutOfRange(text))
    }

    /// The underlying decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// True when the amount is below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// This amount times a token count.
    pub fn times(self, tokens: u64) -> Money {
        Money(self.0 * Decimal::from(tokens))
    }

    /// The ratio of two amounts as a float, for shares and rates (never for money itself).
    pub fn ratio(self, whole: Money) -> Option<f64> {
        use rust_decimal::prelude::ToPrimitive;
        if whole.0.is_zero() {
            return None;
        }
        (self.0 / whole.0).to_f64()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Money, MoneyError> {
        let trimmed = text.trim();
        let value = Decimal::from_str_exact(trimmed)
            .or_else(|_| Decimal::from_scientific(trimmed))
            .map_err(|_| MoneyError::NotANumber(text.to_owned()))?;
        Ok(Money::from_decimal(value))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl Mul<u64> for Money {
    type Output = Money;
    fn mul(self, tokens: u64) -> Money {
        self.times(tokens)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_numbers_become_the_decimal_they_were_written_as() {
        let cases = [
            (3.75e-06, "0.00000375"),
            (1.875e-07, "0.0000001875"),
            (5.0000000000000004e-08, "0.00000005"),
            (2e-08, "0.00000002"),
            (0.0, "0"),
        ];
        for (number, text) in cases {
            assert_eq!(
                Money::from_json_number(number).map(|m| m.to_string()),
                Ok(text.into())
            );
        }
        assert!(Money::from_json_number(f64::NAN).is_err());
    }

    #[test]
    fn parses_and_prints_decimal_strings() {
        let money: Money = "12.345678901234".parse().unwrap_or_default();
        assert_eq!(money.to_string(), "12.345678901234");
        assert_eq!(
            serde_json::to_string(&money).ok(),
            Some("\"12.345678901234\"".into())
        );
        assert!("twelve".parse::<Money>().is_err());
        assert_eq!(
            "1e-6".parse::<Money>().map(|m| m.to_string()),
            Ok("0.000001".into())
        );
    }

    #[test]
    fn femtos_of_large_amounts_are_exact() {
        // The dearest price a table may give, times the most tokens an event may hold.
        let cost = Money::from_decimal(Decimal::from(1_000)).times(1_000_000_000_000);
        assert_eq!(cost.to_femto(), 10i128.pow(30));
        let tiny = "0.000000000000001".parse::<Money>().unwrap();
        assert_eq!(tiny.to_femto(), 1);
        // Sums stay exact to the femtodollar up to about $7.9 × 10¹³ (the decimal's 28
        // digits); a ledger's totals are far below.
        let large = Money::from_decimal(Decimal::from(70_000_000_000_000u64));
        assert_eq!((large + tiny).to_femto(), 7 * 10i128.pow(28) + 1);
    }

    #[test]
    fn femto_round_trip() {
        let money: Money = "0.000000125".parse().unwrap_or_default();
        assert_eq!(money.to_femto(), 125_000_000);
        assert_eq!(Money::from_femto(125_000_000), Ok(money));
    }

    proptest! {
        #[test]
        fn sums_are_exact(femtos in proptest::collection::vec(0i64..1_000_000_000_000, 0..200)) {
            let total: Money = femtos.iter().map(|f| Money::from_femto(i128::from(*f)).unwrap_or_default()).sum();
            let expected: i128 = femtos.iter().map(|f| i128::from(*f)).sum();
            prop_assert_eq!(total.to_femto(), expected);
        }

        #[test]
        fn display_parse_round_trip(femto in any::<i64>()) {
            let money = Money::from_femto(i128::from(femto)).unwrap_or_default();
            prop_assert_eq!(money.to_string().parse::<Money>(), Ok(money));
        }
    }
}
