//! Calendar periods in the policy's time zone: which period a moment falls in, what it is
//! called in state keys, and when it ends.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Period;

/// One day or month in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// `2026-11-23` for a day, `2026-11` for a month.
    pub label: String,
    /// First instant, UTC.
    pub start: DateTime<Utc>,
    /// First instant of the next period, UTC.
    pub end: DateTime<Utc>,
}

/// The period of `kind` that `now` falls in.
pub fn span(kind: Period, now: DateTime<Utc>, tz: Tz) -> Span {
    let local = now.with_timezone(&tz).date_naive();
    let (first, next, label) = match kind {
        Period::Day => (
            local,
            local + Days::new(1),
            local.format("%Y-%m-%d").to_string(),
        ),
        Period::Month => {
            let first = local.with_day(1).unwrap_or(local);
            (
                first,
                first + Months::new(1),
                first.format("%Y-%m").to_string(),
            )
        }
    };
    Span {
        label,
        start: midnight(first, tz),
        end: midnight(next, tz),
    }
}

/// The first instant of `day` in `tz`; where midnight falls in a daylight-saving gap, the
/// first instant after it.
fn midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut time = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&time).earliest() {
            return instant.with_timezone(&Utc);
        }
        time += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&time)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn days_follow_the_time_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let day = span(Period::Day, at("2026-11-23T23:30:00Z"), berlin);
        assert_eq!(day.label, "2026-11-24");
        assert_eq!(day.start, at("2026-11-23T23:00:00Z"));
        assert_eq!(day.end, at("2026-11-24T23:00:00Z"));
        let utc = span(Period::Day, at("2026-11-23T23:30:00Z"), Tz::UTC);
        assert_eq!(utc.label, "2026-11-23");
    }

    #[test]
    fn months_and_daylight_saving() {
        let new_york = chrono_tz::America::New_York;
        let month = span(Period::Month, at("2026-03-15T12:00:00Z"), new_york);
        assert_eq!(month.label, "2026-03");
        assert_eq!(month.start, at("2026-03-01T05:00:00Z"));
        // DST began on March 8th: April starts at UTC-4.
        assert_eq!(month.end, at("2026-04-01T04:00:00Z"));
        let december = span(Period::Month, at("2026-12-31T23:59:59Z"), Tz::UTC);
        assert_eq!(december.end, at("2027-01-01T00:00:00Z"));
    }
}
