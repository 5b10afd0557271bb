//! Any bytes as a protobuf export request, plain and gzip: never a panic; every event mapped
//! is valid and survives the JSON round trip the journal makes; the partial-success count is
//! the number of rejected spans.
#![no_main]

use burnrate_model::UsageEvent;
use burnrate_wire::otlp::{
    Encoding, OtlpMapping, decode, encode_response, map_request, partial_success,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for gzip in [false, true] {
        check(body, gzip);
    }
});

fn check(body: &[u8], gzip: bool) {
    let Ok(request) = decode(body, Encoding::Protobuf, gzip, 1 << 20) else {
        return;
    };
    let mapping = OtlpMapping {
        prefixes: vec!["digitalapplied.".into(), "x.".into()],
        ..OtlpMapping::default()
    };
    let mapped = map_request(&request, &mapping);
    for event in &mapped.events {
        assert!(event.validate().is_ok(), "{event:?}");
        let line = serde_json::to_string(event).expect("an event serialises");
        assert_eq!(UsageEvent::from_json(&line).as_ref(), Ok(event));
    }
    let rejected = partial_success(&mapped).map_or(0, |(count, _)| count);
    assert_eq!(rejected as usize, mapped.rejected.len());
    let _ = encode_response(&mapped, Encoding::Protobuf);
}
