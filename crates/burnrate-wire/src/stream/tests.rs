use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::tools::args_hash;

/// Feeds `body` in chunks of `size` bytes; returns the meter and all bytes given back.
fn run(api: Api, strip: bool, body: &[u8], size: usize) -> (StreamMeter, Vec<u8>) {
    let mut meter = StreamMeter::new(api, strip);
    let mut out = Vec::new();
    for chunk in body.chunks(size.max(1)) {
        out.extend_from_slice(&meter.feed(Bytes::copy_from_slice(chunk)));
    }
    out.extend_from_slice(&meter.flush());
    (meter, out)
}

fn data_events(chunks: &[serde_json::Value]) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

#[test]
fn chat_tool_call_fragments_are_joined_by_index() {
    let body = data_events(&[
        json!({"model": "gpt-4.1", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{\"loc"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "ation\": \"Paris\"}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ]);
    let (meter, out) = run(Api::ChatCompletions, false, body.as_bytes(), 7);
    assert_eq!(out, body.as_bytes());
    let metered = meter.metered();
    assert_eq!(metered.tool_calls, 2);
    assert_eq!(metered.tools[0].name, "get_weather");
    assert_eq!(
        metered.tools[0].args_hash,
        Some(args_hash(r#"{"location":"Paris"}"#))
    );
    assert_eq!(metered.tools[1].name, "get_time");
    assert_eq!(metered.model.as_deref(), Some("gpt-4.1"));
    assert!(!metered.usage_seen);
    assert!(meter.is_complete());
}

#[test]
fn chat_error_chunk_is_an_upstream_error() {
    let body = b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    let (meter, _) = run(Api::ChatCompletions, false, body, 1000);
    assert_eq!(meter.error().map(|e| e.field.as_str()), Some("(upstream)"));
    assert!(!meter.is_complete());
}

#[test]
fn chat_bad_chunk_is_an_error_but_metering_goes_on() {
    let body = data_events(&[
        json!({"choices": [], "usage": {"prompt_tokens": "x"}}),
        json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
    ]);
    let (meter, _) = run(Api::ChatCompletions, false, body.as_bytes(), 1000);
    assert_eq!(
        meter.error().map(|e| e.field.as_str()),
        Some("chunk.usage.prompt_tokens")
    );
    assert_eq!(meter.metered().usage.input_tokens, 5);
    let (meter, _) = run(Api::ChatCompletions, false, b"data: {nope\n\n", 1000);
    assert_eq!(meter.error().map(|e| e.field.as_str()), Some("chunk"));
}

fn responses_event(kind: &str, data: serde_json::Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

#[test]
fn responses_stream_items_then_completed() {
    let item =
        json!({"type": "function_call", "name": "final_result", "arguments": "{\"result\":6666}"});
    let head = [
        responses_event(
            "response.created",
            json!({"type": "response.created",
            "response": {"model": "gpt-5", "service_tier": "auto", "usage": null, "output": []}}),
        ),
        responses_event(
            "response.function_call_arguments.delta",
            json!({"delta": "{\"re"}),
        ),
        responses_event(
            "response.output_item.done",
            json!({"type": "response.output_item.done", "item": item}),
        ),
    ]
    .concat();
    let (meter, _) = run(Api::Responses, false, head.as_bytes(), 5);
    let metered = meter.metered();
    assert_eq!(metered.tool_calls, 1);
    assert_eq!(metered.service_tier.as_deref(), Some("auto"));
    assert!(!meter.is_complete());

    let full = head
        + &responses_event(
            "response.completed",
            json!({"type": "response.completed",
            "response": {"model": "gpt-5-2025-08-07", "service_tier": "default", "output": [item],
                         "usage": {"input_tokens": 53, "output_tokens": 469,
                                   "output_tokens_details": {"reasoning_tokens": 448}}}}),
        );
    let (meter, _) = run(Api::Responses, false, full.as_bytes(), 5);
    let metered = meter.metered();
    assert!(meter.is_complete());
    assert_eq!(metered.tool_calls, 1);
    assert_eq!(
        metered.tools[0].args_hash,
        Some(args_hash(r#"{"result":6666}"#))
    );
    assert_eq!(metered.model.as_deref(), Some("gpt-5-2025-08-07"));
    assert_eq!(metered.service_tier.as_deref(), Some("default"));
    assert_eq!(metered.usage.reasoning_tokens, 448);
}

#[test]
fn responses_failures() {
    let failed = responses_event(
        "response.failed",
        json!({"type": "response.failed",
        "response": {"error": {"code": "server_error", "message": "sorry"}, "usage": null}}),
    );
    let (meter, _) = run(Api::Responses, false, failed.as_bytes(), 100);
    assert!(meter.is_complete());
    assert_eq!(
        meter.error().map(ToString::to_string).as_deref(),
        Some("(upstream): server_error: sorry")
    );
    let error =
        "data: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}\n\n";
    let (meter, _) = run(Api::Responses, false, error.as_bytes(), 100);
    assert_eq!(
        meter.error().map(ToString::to_string).as_deref(),
        Some("(upstream): rate_limit_exceeded: slow down")
    );
}

#[test]
fn embeddings_do_not_stream() {
    let (meter, out) = run(Api::Embeddings, true, b"data: {}\n\n", 3);
    assert_eq!(out, b"data: {}\n\n");
    assert_eq!(meter.error().map(|e| e.field.as_str()), Some("(stream)"));
}

#[test]
fn oversized_events_are_errors_and_bytes_still_flow() {
    let mut body = b"data: ".to_vec();
    body.resize(MAX_EVENT_BYTES + 100, b'a');
    for strip in [false, true] {
        let (meter, out) = run(Api::ChatCompletions, strip, &body, 1 << 20);
        assert_eq!(out.len(), body.len(), "strip {strip}");
        assert_eq!(meter.error().map(|e| e.field.as_str()), Some("(stream)"));
    }
}

#[test]
fn endless_comments_do_not_pile_up_when_rewriting() {
    let mut meter = StreamMeter::new(Api::ChatCompletions, true);
    let comment = Bytes::from(": ".to_owned() + &"x".repeat(1 << 20) + "\n");
    let mut given = 0;
    for _ in 0..20 {
        given += meter.feed(comment.clone()).len();
    }
    assert!(meter.error().is_some());
    assert!(given > 0);
    assert_eq!(given + meter.flush().len(), 20 * comment.len());
}

const STRIP_BODY: &str = "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
data: {\"usage\":null,\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n\
data: [DONE]\n\n";

const STRIPPED: &str = "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

#[test]
fn strip_usage_removes_members_and_the_usage_chunk() {
    for size in [1, 2, 3, 7, 50, 1000] {
        let (meter, out) = run(Api::ChatCompletions, true, STRIP_BODY.as_bytes(), size);
        assert_eq!(String::from_utf8_lossy(&out), STRIPPED, "size {size}");
        assert_eq!(meter.metered().usage.input_tokens, 9);
        assert!(meter.is_complete());
    }
}

#[test]
fn strip_usage_keeps_crlf_comments_and_event_lines() {
    let body = STRIP_BODY
        .replace("\n", "\r\n")
        .replace("data: [DONE]", ": bye\r\nevent: end\r\ndata:[DONE]");
    let expected = STRIPPED
        .replace("\n", "\r\n")
        .replace("data: [DONE]", ": bye\r\nevent: end\r\ndata:[DONE]");
    for size in 1..=body.len() {
        let (_, out) = run(Api::ChatCompletions, true, body.as_bytes(), size);
        assert_eq!(String::from_utf8_lossy(&out), expected, "size {size}");
    }
}

#[test]
fn strip_usage_with_data_over_several_lines() {
    let body = "event: x\ndata: {\"a\":1,\ndata: \"usage\":null}\n\n";
    let (_, out) = run(Api::ChatCompletions, true, body.as_bytes(), 4);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "event: x\ndata: {\"a\":1}\n\n"
    );
}

#[test]
fn strip_usage_holds_only_incomplete_events() {
    let mut meter = StreamMeter::new(Api::ChatCompletions, true);
    let first = meter.feed(Bytes::from_static(
        b"data: {\"a\":1,\"usage\":null}\n\ndata: {\"b\"",
    ));
    assert_eq!(&first[..], b"data: {\"a\":1}\n\n");
    let second = meter.feed(Bytes::from_static(b":2}\n"));
    assert!(second.is_empty());
    assert_eq!(&meter.flush()[..], b"data: {\"b\":2}\n");
    assert!(meter.flush().is_empty());
}

#[test]
fn strip_flag_is_ignored_for_other_apis() {
    let body = "event: message_stop\ndata: {\"type\":\"message_stop\",\"usage\":null}\n\n";
    let (meter, out) = run(Api::Messages, true, body.as_bytes(), 3);
    assert_eq!(out, body.as_bytes());
    assert!(meter.is_complete());
}

#[test]
fn without_strip_the_chunk_itself_comes_back() {
    let mut meter = StreamMeter::new(Api::ChatCompletions, false);
    let chunk = Bytes::from_static(STRIP_BODY.as_bytes());
    let out = meter.feed(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert_eq!(out.len(), chunk.len());
}

proptest! {
    #[test]
    fn any_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        size in 1usize..64,
        strip in any::<bool>(),
    ) {
        for api in [Api::ChatCompletions, Api::Responses, Api::Embeddings, Api::Messages] {
            let (meter, out) = run(api, strip, &body, size);
            let _ = meter.metered();
            if !strip || api != Api::ChatCompletions {
                prop_assert_eq!(&out, &body);
            }
            let _ = crate::meter_json(api, &body);
        }
    }

    #[test]
    fn sse_like_bytes_never_panic(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("data: [DONE]".to_owned()),
                Just("event: message_start".to_owned()),
                Just("event: content_block_delta".to_owned()),
                Just("event: response.completed".to_owned()),
                "data: \\{[\"a-z:,0-9\\[\\]{} ]{0,40}\\}",
                "data: \\{\"(usage|choices|delta|message|response|content_block|index|type)\":[\"a-z:,0-9\\[\\]{} ]{0,30}\\}",
                Just(String::new()),
            ],
            0..24,
        ),
        size in 1usize..32,
        strip in any::<bool>(),
    ) {
        let body = lines.join("\n") + "\n";
        for api in [Api::ChatCompletions, Api::Responses, Api::Messages] {
            let (meter, _) = run(api, strip, body.as_bytes(), size);
            let metered = meter.metered();
            prop_assert!(metered.usage.validate().is_ok());
            let (whole, _) = run(api, strip, body.as_bytes(), body.len());
            prop_assert_eq!(whole.metered(), metered);
        }
    }
}
