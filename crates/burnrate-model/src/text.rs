//! Numbers written for people: whole numbers with their thousands grouped.

/// `count` with its thousands grouped by commas: `1,234,567`, `-1,000`, `12`.
pub fn grouped(count: impl Into<i128>) -> String {
    let count = count.into();
    let sign = if count < 0 { "-" } else { "" };
    format!(
        "{sign}{}",
        grouped_digits(&count.unsigned_abs().to_string())
    )
}

/// A string of decimal digits (no sign, no fraction) with its thousands grouped by commas.
pub fn grouped_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped_and_signs_kept() {
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(-1_000), "-1,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(i128::from(u64::MAX)), "18,446,744,073,709,551,615");
        assert_eq!(grouped_digits("1234"), "1,234");
    }
}
