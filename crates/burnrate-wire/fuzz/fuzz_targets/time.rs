//! Any bytes as a time (`--since`/`--until`, the query API's `since`/`until`): never a panic,
//! and a time that reads is one chrono can hold and lies within what a timestamp prints.
#![no_main]

use burnrate_model::when::parse_time;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now: DateTime<Utc> = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    if let Ok(time) = parse_time(text, now) {
        // Printing and reading back is lossless for any time the parser gives.
        let printed = time.to_rfc3339();
        assert_eq!(printed.parse::<DateTime<Utc>>().ok(), Some(time), "{text:?}");
    }
});
