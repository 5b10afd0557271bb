//! Any bytes as a usage event (a JSONL line to `burnrate import`, a body to
//! `POST /api/v1/events`): never a panic; a refusal names a field; an accepted event is
//! accepted again from its own JSON, unchanged, and gets the same id from the same line.
#![no_main]

use burnrate_model::UsageEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    match UsageEvent::from_json(text) {
        Ok(mut event) => {
            let json = serde_json::to_string(&event).expect("an accepted event serialises");
            let mut again = UsageEvent::from_json(&json).expect("its own JSON is accepted");
            assert_eq!(again, event);
            assert_eq!(event.ensure_id(line), again.ensure_id(line));
        }
        Err(error) => assert!(!error.field.is_empty() && !error.reason.is_empty()),
    }
});
