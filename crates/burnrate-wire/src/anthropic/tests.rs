use burnrate_model::Usage;
use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::tools::{args_hash, value_hash};
use crate::{Api, StreamMeter};

fn meter(body: serde_json::Value) -> Result<Metered, WireError> {
    meter_messages(body.to_string().as_bytes())
}

#[test]
fn input_includes_cache_reads_and_writes() {
    let metered = meter(json!({
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": "hi"}],
        "usage": {"input_tokens": 13, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 3913,
                  "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 3913},
                  "output_tokens": 353, "output_tokens_details": {"thinking_tokens": 80},
                  "service_tier": "standard", "server_tool_use": {"web_search_requests": 1}}
    }))
    .unwrap();
    assert_eq!(
        metered.usage,
        Usage {
            input_tokens: 13 + 100 + 3913,
            cache_read_tokens: 100,
            cache_write_tokens: 3913,
            cache_write_1h_tokens: 3913,
            output_tokens: 353,
            reasoning_tokens: 80,
        }
    );
    assert_eq!(metered.service_tier.as_deref(), Some("standard"));
    assert_eq!(metered.model.as_deref(), Some("claude-sonnet-4-6"));
    assert!(metered.usage.validate().is_ok());
}

#[test]
fn cache_writes_from_the_breakdown_alone() {
    let metered = meter(json!({"usage": {"input_tokens": 1, "output_tokens": 2,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 5}}}))
    .unwrap();
    assert_eq!(metered.usage.cache_write_tokens, 15);
    assert_eq!(metered.usage.cache_write_1h_tokens, 5);
    assert_eq!(metered.usage.input_tokens, 16);
}

#[test]
fn inconsistent_counts_are_fitted_and_overflow_saturates() {
    let metered = meter(json!({"usage": {"input_tokens": 1, "output_tokens": 2,
        "cache_creation_input_tokens": 3,
        "cache_creation": {"ephemeral_1h_input_tokens": 9},
        "output_tokens_details": {"thinking_tokens": 7}}}))
    .unwrap();
    assert_eq!(metered.usage.cache_write_tokens, 9);
    assert_eq!(metered.usage.output_tokens, 7);
    assert!(metered.usage.validate().is_ok());
    let huge =
        meter(json!({"usage": {"input_tokens": u64::MAX, "cache_read_input_tokens": u64::MAX}}))
            .unwrap();
    assert_eq!(huge.usage.input_tokens, burnrate_model::Usage::MAX_TOKENS);
    assert!(huge.usage.validate().is_ok());
}

#[test]
fn only_client_tools_count() {
    let metered = meter(json!({"content": [
        {"type": "thinking", "thinking": "..."},
        {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "content": []},
        {"type": "mcp_tool_use", "name": "remote", "input": {}},
        {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"location": "Paris", "unit": "c"}},
        {"type": "tool_use", "id": "u", "name": "no_input"}
    ]}))
    .unwrap();
    assert_eq!(metered.tool_calls, 2);
    assert_eq!(metered.tools[0].name, "get_weather");
    assert_eq!(
        metered.tools[0].args_hash,
        Some(args_hash(r#"{"unit":"c","location":"Paris"}"#))
    );
    assert_eq!(metered.tools[1].args_hash, Some(value_hash(&json!({}))));
    assert!(!metered.usage_seen);
}

#[test]
fn errors_name_the_field() {
    let error = meter(json!({"usage": {"cache_creation": {"ephemeral_1h_input_tokens": "x"}}}))
        .unwrap_err();
    assert_eq!(
        error.field,
        "usage.cache_creation.ephemeral_1h_input_tokens"
    );
    let error = meter(json!({"content": {"type": "text"}})).unwrap_err();
    assert_eq!(error.field, "content");
}

fn stream(events: &[(&str, serde_json::Value)]) -> StreamMeter {
    let mut meter = StreamMeter::new(Api::Messages, false);
    for (name, data) in events {
        let text = format!("event: {name}\ndata: {data}\n\n");
        let out = meter.feed(Bytes::from(text.clone()));
        assert_eq!(out, text.as_bytes());
    }
    meter
}

#[test]
fn stream_usage_takes_later_values_and_keeps_the_breakdown() {
    let meter = stream(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"model": "claude-sonnet-4-6",
            "content": [], "usage": {"input_tokens": 13, "cache_creation_input_tokens": 3913,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 3913},
            "output_tokens": 1, "service_tier": "standard"}}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"input_tokens": 2050, "output_tokens": 4}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let metered = meter.metered();
    assert_eq!(
        metered.usage,
        Usage {
            input_tokens: 2050 + 3913,
            cache_read_tokens: 0,
            cache_write_tokens: 3913,
            cache_write_1h_tokens: 3913,
            output_tokens: 4,
            reasoning_tokens: 0,
        }
    );
    assert!(meter.is_complete());
    assert!(meter.error().is_none());
    assert_eq!(metered.service_tier.as_deref(), Some("standard"));
}

#[test]
fn stream_tool_use_matches_the_body_hash() {
    let meter = stream(&[
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{\"location\": \"Pa"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2,
            "content_block": {"type": "tool_use", "id": "u", "name": "noop", "input": {}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 3,
            "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 3,
            "delta": {"type": "input_json_delta", "partial_json": "{\"query\":\"x\"}"}}),
        ),
    ]);
    let metered = meter.metered();
    let body = meter_messages(
        br#"{"content":[{"type":"tool_use","name":"get_weather","input":{"location":"Paris"}},{"type":"tool_use","name":"noop","input":{}}]}"#,
    )
    .unwrap();
    assert_eq!(metered.tool_calls, 2);
    assert_eq!(metered.tools, body.tools);
    assert!(!meter.is_complete());
}

#[test]
fn stream_error_event() {
    let meter = stream(&[(
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    assert_eq!(
        meter.error().map(ToString::to_string).as_deref(),
        Some("(upstream): overloaded_error: Overloaded")
    );
    assert!(!meter.is_complete());
}

#[test]
fn stream_without_event_names_uses_the_data_type() {
    let mut meter = StreamMeter::new(Api::Messages, false);
    meter.feed(Bytes::from_static(
        b"data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":2,\"output_tokens\":1}}}\n\n\
          data: {\"type\":\"message_stop\"}\n\n",
    ));
    assert!(meter.is_complete());
    assert_eq!(meter.metered().usage.input_tokens, 2);
    assert_eq!(meter.metered().model.as_deref(), Some("m"));
}

#[test]
fn stream_bad_usage_names_the_event() {
    let meter = stream(&[(
        "message_delta",
        json!({"type": "message_delta", "usage": {"output_tokens": "many"}}),
    )]);
    assert_eq!(
        meter.error().map(|e| e.field.as_str()),
        Some("message_delta.usage.output_tokens")
    );
}
