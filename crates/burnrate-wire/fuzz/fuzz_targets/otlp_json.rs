//! Any bytes as an OTLP/JSON export request: never a panic; every event mapped is valid and
//! survives the JSON round trip the journal makes; the partial-success count is the number of
//! rejected spans.
#![no_main]

#[path = "otlp_check.rs"]
mod otlp_check;

use burnrate_wire::otlp::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    otlp_check::check(body, Encoding::Json, false);
});
