//! Any bytes as a protobuf export request, plain and gzip: never a panic; every event mapped
//! is valid and survives the JSON round trip the journal makes; the partial-success count is
//! the number of rejected spans.
#![no_main]

#[path = "otlp_check.rs"]
mod otlp_check;

use burnrate_wire::otlp::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for gzip in [false, true] {
        otlp_check::check(body, Encoding::Protobuf, gzip);
    }
});
