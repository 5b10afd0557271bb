//! Any bytes into the SSE parser: never a panic, and the same events whatever the chunking.
#![no_main]

use burnrate_wire::sse::{SseEvent, SseParser};
use libfuzzer_sys::fuzz_target;

fn events(body: &[u8], size: usize) -> Vec<(String, Option<String>)> {
    let mut parser = SseParser::with_limit(4096);
    let mut events = Vec::new();
    let mut push = |event: SseEvent<'_>| {
        if let Some(data) = event.data {
            events.push((event.event.to_owned(), Some(data.to_owned())));
        }
    };
    for chunk in body.chunks(size.max(1)) {
        if parser.feed(chunk, &mut push).is_err() {
            events.push(("(failed)".to_owned(), None));
            return events;
        }
    }
    let _ = parser.finish(&mut push);
    events
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, body)) = input.split_first() else {
        return;
    };
    let size = usize::from(control) + 1;
    let whole = events(body, body.len());
    let chunked = events(body, size);
    if !whole.iter().any(|e| e.1.is_none()) && !chunked.iter().any(|e| e.1.is_none()) {
        assert_eq!(whole, chunked);
    }
});
