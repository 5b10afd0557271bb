//! Times as people write them, on the command line and in the query API: RFC 3339, a bare
//! date, `now`, or a span back from now (`7d`).

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// What every time flag accepts, for error messages.
const FORMS: &str = "use RFC 3339 (2026-11-20T10:00:00Z), a date (2026-11-20), now, or a span back \
                     from now (90m, 24h, 7d, 2w)";

/// Parses a time relative to `now`; the error says what is wrong with the text.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    // What chrono reads besides: an offset without its colon (`+0000`, as strftime's `%z`
    // writes it) and `2026-11-20 10:00:00 UTC` (as a `DateTime<Utc>` prints).
    if let Ok(time) = text.parse::<DateTime<Utc>>() {
        return Ok(time);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.len() == 4 && unit.starts_with(['-', '/']) {
        return Err(format!(
            "`{text}` is not a time: {}",
            calendar_problem(text)
        ));
    }
    if number.is_empty() || unit.is_empty() {
        return Err(format!("`{text}` is not a time: {FORMS}"));
    }
    let span: fn(i64) -> Option<Duration> = match unit {
        "m" => Duration::try_minutes,
        "h" => Duration::try_hours,
        "d" => Duration::try_days,
        "w" => Duration::try_weeks,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}`; use m, h, d or w (7d = seven days ago)"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(span)
        .and_then(|span| now.checked_sub_signed(span))
        .ok_or_else(|| format!("`{text}` is too far back"))
}

/// Why `text`, which starts like a calendar date, is not one.
fn calendar_problem(text: &str) -> String {
    let date = text.get(..10).unwrap_or(text);
    if NaiveDate::parse_from_str(&date.replace('/', "-"), "%Y-%m-%d").is_err() {
        return format!("`{date}` is not a valid date (YYYY-MM-DD)");
    }
    if date.contains('/') {
        return format!("write the date with dashes: {}", text.replace('/', "-"));
    }
    let rest = &text[date.len()..];
    if rest.starts_with(['T', 't', ' '])
        && chrono::NaiveDateTime::parse_from_str(&text.replace(' ', "T"), "%Y-%m-%dT%H:%M:%S%.f")
            .is_ok()
    {
        return format!(
            "it has no time zone: add Z for UTC or an offset ({}Z)",
            text.replace(' ', "T")
        );
    }
    FORMS.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A span back from now reads as exactly that span, in every unit.
        #[test]
        fn spans_read_back(count in 0i64..1_000_000, unit in 0usize..4) {
            let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
            let (suffix, span) = [
                ("m", Duration::minutes(count)),
                ("h", Duration::hours(count)),
                ("d", Duration::days(count)),
                ("w", Duration::weeks(count)),
            ][unit];
            prop_assert_eq!(parse_time(&format!("{count}{suffix}"), now), Ok(now - span));
        }

        /// Any text is a time or a reason, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "\\PC{0,40}") {
            let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
            match parse_time(&text, now) {
                Ok(_) => {}
                Err(reason) => prop_assert!(reason.contains('`'), "{}", reason),
            }
        }
    }

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
        for loose in ["2026-11-20T10:00:00+0200", "2026-11-20 08:00:00 UTC"] {
            assert_eq!(
                parse_time(loose, now).unwrap().to_rfc3339(),
                "2026-11-20T08:00:00+00:00",
                "{loose}"
            );
        }
    }

    /// Every refusal says what is wrong with the text, and no text makes the parser panic.
    #[test]
    fn refusals_say_what_is_wrong() {
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let refusal = |text: &str| parse_time(text, now).unwrap_err();
        assert!(
            refusal("7y").contains("unknown unit `y`"),
            "{}",
            refusal("7y")
        );
        assert!(
            refusal("yesterday").contains("RFC 3339"),
            "{}",
            refusal("yesterday")
        );
        assert!(refusal("").contains("RFC 3339"));
        assert!(refusal("12").contains("RFC 3339"));
        assert!(refusal("99999999d").contains("too far back"));
        assert!(refusal("99999999999999999999w").contains("too far back"));
        assert!(
            refusal("2026-11-31").contains("not a valid date"),
            "{}",
            refusal("2026-11-31")
        );
        assert!(
            refusal("2026/11/20").contains("2026-11-20"),
            "{}",
            refusal("2026/11/20")
        );
        let no_zone = refusal("2026-11-20T10:00:00");
        assert!(
            no_zone.contains("no time zone") && no_zone.contains("2026-11-20T10:00:00Z"),
            "{no_zone}"
        );
        assert!(refusal("2026-11-20 10:00").contains("RFC 3339"));
        for text in [
            "-5d",
            "d",
            "5dd",
            "2026-",
            "2026-11-20T",
            "\u{0}",
            "9".repeat(40).as_str(),
        ] {
            assert!(parse_time(text, now).is_err(), "{text}");
        }
    }
}
