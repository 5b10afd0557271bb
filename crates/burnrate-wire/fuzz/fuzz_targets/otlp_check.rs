//! The check both OTLP fuzz targets run on a body (included with `#[path]`).

use burnrate_model::UsageEvent;
use burnrate_wire::otlp::{
    Encoding, OtlpMapping, decode, encode_response, map_request, partial_success,
};

/// Decodes and maps `body`: never a panic; every event mapped is valid and survives the JSON
/// round trip the journal makes; the partial-success count is the number of rejected spans.
pub fn check(body: &[u8], encoding: Encoding, gzip: bool) {
    let Ok(request) = decode(body, encoding, gzip, 1 << 20) else {
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
    let _ = encode_response(&mapped, encoding);
}
