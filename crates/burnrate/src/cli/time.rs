//! Times on the command line: RFC 3339, a bare date, `now`, or relative to now (`7d`).

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// Parses a time given on the command line, relative to `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).with_context(|| {
        format!("`{text}` is not a time: use RFC 3339, YYYY-MM-DD, now, or 7d/24h/90m/2w")
    })?;
    let (number, unit) = text.split_at(split);
    let amount: i64 = number.parse().with_context(|| {
        format!("`{text}` is not a time: use RFC 3339, YYYY-MM-DD, now, or 7d/24h/90m/2w")
    })?;
    let span = match unit {
        "m" => Duration::minutes(amount),
        "h" => Duration::hours(amount),
        "d" => Duration::days(amount),
        "w" => Duration::weeks(amount),
        _ => bail!("`{text}`: unknown unit `{unit}`; use m, h, d or w (7d = seven days ago)"),
    };
    Ok(now - span)
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
    fn parses_every_form() {
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(parse_time("24h", now).unwrap(), now - Duration::hours(24));
        assert_eq!(parse_time("2w", now).unwrap(), now - Duration::weeks(2));
        assert_eq!(
            parse_time("2026-11-20", now).unwrap().to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-11-20T10:00:00+02:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-20T08:00:00+00:00"
        );
        assert!(parse_time("7y", now).is_err());
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_day("2026-13-01").is_err());
    }
}
