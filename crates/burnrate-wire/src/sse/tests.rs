use proptest::prelude::*;

use super::*;

/// Every event (with data) of `chunks` fed in order, then finished.
fn events_of(chunks: &[&[u8]]) -> Vec<(String, String)> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut push = |event: SseEvent<'_>| {
        if let Some(data) = event.data {
            events.push((event.event.to_owned(), data.to_owned()));
        }
    };
    for chunk in chunks {
        parser.feed(chunk, &mut push).unwrap();
    }
    parser.finish(&mut push).unwrap();
    events
}

fn pair(event: &str, data: &str) -> (String, String) {
    (event.to_owned(), data.to_owned())
}

#[test]
fn reads_named_and_unnamed_events() {
    let body = b"event: message_start\ndata: {\"a\":1}\n\ndata: [DONE]\n\n";
    assert_eq!(
        events_of(&[body]),
        vec![pair("message_start", "{\"a\":1}"), pair("", "[DONE]")]
    );
}

#[test]
fn line_endings_lf_crlf_cr_are_the_same() {
    let expected = vec![pair("e", "x\ny"), pair("", "z")];
    for ending in ["\n", "\r\n", "\r"] {
        let body = format!(
            "event: e{ending}data: x{ending}data: y{ending}{ending}data: z{ending}{ending}"
        );
        assert_eq!(events_of(&[body.as_bytes()]), expected, "{ending:?}");
    }
}

#[test]
fn one_space_after_the_colon_is_dropped() {
    let body = b"data:x\n\ndata: x\n\ndata:  x\n\ndata\n\ndata:\n\n";
    assert_eq!(
        events_of(&[body]),
        vec![
            pair("", "x"),
            pair("", "x"),
            pair("", " x"),
            pair("", ""),
            pair("", "")
        ]
    );
}

#[test]
fn comments_ids_and_unknown_fields_are_ignored() {
    let body = b": keep-alive\nid: 7\nretry: 10\nfoo: bar\ndata: x\n: inside\n\n: alone\n\n";
    assert_eq!(events_of(&[body]), vec![pair("", "x")]);
}

#[test]
fn trailing_padding_is_kept_in_data() {
    let body = b"event: message_stop\ndata: {\"type\":\"message_stop\"     }\n\n";
    let events = events_of(&[body]);
    assert_eq!(events[0].1, "{\"type\":\"message_stop\"     }");
}

#[test]
fn event_name_does_not_leak_into_the_next_event() {
    let body = b"event: a\ndata: 1\n\ndata: 2\n\nevent: lonely\n\ndata: 3\n\n";
    assert_eq!(
        events_of(&[body]),
        vec![pair("a", "1"), pair("", "2"), pair("", "3")]
    );
}

#[test]
fn byte_order_mark_is_dropped_once() {
    let body = b"\xEF\xBB\xBFdata: x\n\n";
    assert_eq!(
        events_of(&[&body[..1], &body[1..2], &body[2..]]),
        vec![pair("", "x")]
    );
}

#[test]
fn utf8_split_inside_a_character() {
    let body = "data: é€😀\n\n".as_bytes();
    for cut in 0..=body.len() {
        assert_eq!(
            events_of(&[&body[..cut], &body[cut..]]),
            vec![pair("", "é€😀")],
            "cut at {cut}"
        );
    }
}

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(
        events_of(&[b"data: a\xFFb\n\n"]),
        vec![pair("", "a\u{FFFD}b")]
    );
}

#[test]
fn crlf_split_between_chunks_is_one_line_ending() {
    let events = events_of(&[b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"]);
    assert_eq!(events, vec![pair("", "x"), pair("", "y")]);
}

#[test]
fn end_offsets_cut_the_stream_into_events() {
    let body = b"data: a\r\n\r\n: c\n\nevent: x\ndata: b\n\n";
    let mut parser = SseParser::new();
    let mut ends = Vec::new();
    parser
        .feed(body, |event| {
            ends.push((event.end, event.data.map(str::to_owned)))
        })
        .unwrap();
    assert_eq!(
        ends,
        vec![
            (11, Some("a".into())),
            (16, None),
            (body.len(), Some("b".into()))
        ]
    );
}

#[test]
fn finish_dispatches_an_unterminated_event() {
    assert_eq!(
        events_of(&[b"data: x\n\ndata: y"]),
        vec![pair("", "x"), pair("", "y")]
    );
    assert_eq!(events_of(&[b"data: x\ndata: y\n"]), vec![pair("", "x\ny")]);
    assert_eq!(events_of(&[b"event: e\n"]), vec![]);
}

#[test]
fn oversized_events_fail_and_stay_failed() {
    let mut parser = SseParser::with_limit(16);
    assert!(parser.feed(b"data: 0123456789\n\n", |_| {}).is_ok());
    let error = parser.feed(b"data: 0123456789abcdef\n", |_| {});
    assert_eq!(
        error.as_ref().map_err(|e| e.field.as_str()),
        Err("(stream)")
    );
    assert!(parser.feed(b"\n", |_| {}).is_err());
    assert!(parser.failed().is_some());

    // A line that never ends is bounded too, across chunks.
    let mut parser = SseParser::with_limit(16);
    assert!(parser.feed(b"data: 01234", |_| {}).is_ok());
    assert!(parser.feed(b"56789abcdef", |_| {}).is_err());

    // So is an event of many small lines.
    let mut parser = SseParser::with_limit(16);
    assert!(
        parser
            .feed(b"data: 0123\ndata: 4567\ndata: 89ab\ndata: cdef\n", |_| {})
            .is_err()
    );
}

#[test]
fn parse_all_matches_streaming() {
    let body = b"event: a\ndata: 1\n\ndata: 2";
    assert_eq!(
        parse_all(body).unwrap(),
        vec![pair("a", "1"), pair("", "2")]
    );
}

proptest! {
    #[test]
    fn any_bytes_any_chunking_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut parser = SseParser::with_limit(256);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.sort_unstable();
        let mut last = 0;
        for point in points.into_iter().chain([body.len()]) {
            let _ = parser.feed(&body[last..point], |_| {});
            last = point;
        }
        let _ = parser.finish(|_| {});
    }

    #[test]
    fn chunking_does_not_change_events(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("data: x".to_owned()),
                Just("data:é€".to_owned()),
                Just("event: e".to_owned()),
                Just(": c".to_owned()),
                Just(String::new()),
                "[a-z: ]{0,6}",
            ],
            0..20,
        ),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        cut in any::<usize>(),
    ) {
        let body = lines.join(ending) + ending;
        let bytes = body.as_bytes();
        let cut = cut % (bytes.len() + 1);
        prop_assert_eq!(events_of(&[bytes]), events_of(&[&bytes[..cut], &bytes[cut..]]));
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(events_of(&[bytes]), events_of(&single));
    }
}
