//! Any bytes as a response body of every API: never a panic, and usage that is read always
//! keeps the event's rule (no part larger than its whole).
#![no_main]

use burnrate_wire::{Api, meter_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for api in [
        Api::ChatCompletions,
        Api::Responses,
        Api::Embeddings,
        Api::Messages,
    ] {
        if let Ok(metered) = meter_json(api, body) {
            assert!(
                metered.usage.validate().is_ok(),
                "{api:?}: {:?}",
                metered.usage
            );
            assert!(metered.tool_calls as usize >= metered.tools.len());
        }
    }
});
