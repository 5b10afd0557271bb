//! Any bytes as an SSE stream, cut into chunks: never a panic; without rewriting the bytes come
//! back unchanged; the meter reads the same whatever the chunking; usage keeps the event's rule.
#![no_main]

use burnrate_wire::{Api, StreamMeter};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fn run(api: Api, strip: bool, body: &[u8], size: usize) -> (StreamMeter, Vec<u8>) {
    let mut meter = StreamMeter::new(api, strip);
    let mut out = Vec::new();
    for chunk in body.chunks(size.max(1)) {
        out.extend_from_slice(&meter.feed(Bytes::copy_from_slice(chunk)));
    }
    out.extend_from_slice(&meter.flush());
    (meter, out)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, body)) = input.split_first() else {
        return;
    };
    let api = [
        Api::ChatCompletions,
        Api::Responses,
        Api::Messages,
        Api::Embeddings,
    ][usize::from(control & 3)];
    let strip = control & 4 != 0;
    let size = usize::from(control >> 3) + 1;
    let (chunked, chunked_out) = run(api, strip, body, size);
    let (whole, whole_out) = run(api, strip, body, body.len());
    assert!(chunked.metered().usage.validate().is_ok());
    assert_eq!(chunked.metered(), whole.metered());
    assert_eq!(chunked.is_complete(), whole.is_complete());
    assert_eq!(chunked_out, whole_out);
    if !strip || api != Api::ChatCompletions {
        assert_eq!(chunked_out, body);
    }
});
