//! Times on the command line: what [`burnrate_model::when`] reads, and days.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

/// Parses a time given on the command line, relative to `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    burnrate_model::when::parse_time(text, now).map_err(anyhow::Error::msg)
}

/// Parses a day (`YYYY-MM-DD`).
pub fn parse_day(text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .with_context(|| format!("`{text}` is not a date like 2026-12-01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_calendar_dates() {
        assert_eq!(
            parse_day(" 2026-11-20 ").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
        );
        assert!(parse_day("2026-13-01").is_err());
    }
}
