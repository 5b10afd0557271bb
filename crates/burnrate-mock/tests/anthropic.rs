//! Anthropic Messages against a mock on a random port: shapes, streaming, cache, thinking, tools.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

mod common;

use common::{Event, events, json, sse_text, start};
use serde_json::{Value, json};

fn body() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024,
           "system": "You are a helpful assistant.",
           "messages": [{"role": "user", "content": "What is the weather in Tokyo today?"}]})
}

fn data_of<'a>(events: &'a [Event], name: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some(name))
        .collect()
}

#[tokio::test]
async fn message_non_stream_shape() {
    let h = start().await;
    let response = h
        .anthropic("/v1/messages", &body(), &[])
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let v: Value = response.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert_eq!(v["content"][0]["type"], "text");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("This is")
    );
    let u = &v["usage"];
    // system 28 bytes + "role" "user" "content" + 35 bytes of text = 78 bytes → 20 tokens.
    assert_eq!(u["input_tokens"], 20);
    assert_eq!(u["cache_read_input_tokens"], 0);
    assert_eq!(u["cache_creation_input_tokens"], 0);
    assert_eq!(
        u["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0})
    );
    assert_eq!(u["output_tokens"], 16);
    assert_eq!(u["service_tier"], "standard");
}

#[tokio::test]
async fn message_stream_events() {
    let h = start().await;
    let mut streamed = body();
    streamed["stream"] = json!(true);
    let text = sse_text(h.anthropic("/v1/messages", &streamed, &[])).await;
    let events = events(&text);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    for event in &events {
        assert_eq!(
            event.json()["type"],
            event.name.as_deref().unwrap(),
            "event: line matches data type"
        );
    }
    assert!(
        text.contains("}   \n") || text.contains("}    \n"),
        "data lines carry Anthropic's padding"
    );
    let start = events[0].json();
    let su = &start["message"]["usage"];
    assert_eq!(su["input_tokens"], 20);
    assert_eq!(su["cache_creation"]["ephemeral_1h_input_tokens"], 0);
    assert_eq!(su["output_tokens"], 1);
    assert_eq!(start["message"]["content"], json!([]));
    let text_out: String = data_of(&events, "content_block_delta")
        .iter()
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    let delta = data_of(&events, "message_delta")[0].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 16);
    assert_eq!(delta["usage"]["input_tokens"], 20);
    let whole = json(h.anthropic("/v1/messages", &body(), &[]), 200).await;
    assert_eq!(whole["content"][0]["text"].as_str().unwrap(), text_out);
}

#[tokio::test]
async fn cache_control_reads_and_writes() {
    let h = start().await;
    let long = "Some context about Python. ".repeat(40);
    // Breakpoint on the system prompt: all of it is read from cache.
    let marked = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
        "system": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Name one web framework."}]});
    let v = json(h.anthropic("/v1/messages", &marked, &[]), 200).await;
    let u = &v["usage"];
    // "type" + "text" + "text" + 1080 bytes of text = 1092 bytes.
    assert_eq!(u["cache_read_input_tokens"], 1092 / 4);
    assert_eq!(u["cache_creation_input_tokens"], 0);
    let uncached = u["input_tokens"].as_u64().unwrap();
    assert!(uncached > 0 && uncached < 20, "{u}");

    // A 1h breakpoint inside the last message: that part is written with the 1h TTL.
    let one_hour = json!({"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "Be concise.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": long, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "Name one framework."}]}]});
    let events = events(&sse_text(h.anthropic("/v1/messages", &one_hour, &[])).await);
    let su = events[0].json()["message"]["usage"].clone();
    assert!(
        su["cache_read_input_tokens"].as_u64().unwrap() > 0,
        "the system prefix is read: {su}"
    );
    let written = su["cache_creation_input_tokens"].as_u64().unwrap();
    assert!(written >= 270, "{su}");
    assert_eq!(su["cache_creation"]["ephemeral_1h_input_tokens"], written);
    assert_eq!(su["cache_creation"]["ephemeral_5m_input_tokens"], 0);
    let delta = data_of(&events, "message_delta")[0].json();
    assert_eq!(delta["usage"]["cache_creation_input_tokens"], written);
    assert!(
        delta["usage"].get("cache_creation").is_none(),
        "the breakdown is only in message_start"
    );

    // Top-level (automatic) caching and the headers.
    let mut auto = body();
    auto["cache_control"] = json!({"type": "ephemeral"});
    let v = json(
        h.anthropic(
            "/v1/messages",
            &auto,
            &[
                ("x-mock-cached-tokens", "1217"),
                ("x-mock-cache-write-tokens", "33"),
            ],
        ),
        200,
    )
    .await;
    assert_eq!(v["usage"]["cache_read_input_tokens"], 1217);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 33);
    assert_eq!(
        v["usage"]["cache_creation"]["ephemeral_5m_input_tokens"],
        33
    );
}

#[tokio::test]
async fn thinking_blocks() {
    let h = start().await;
    let mut thinking = body();
    thinking["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let v = json(h.anthropic("/v1/messages", &thinking, &[]), 200).await;
    assert_eq!(v["content"][0]["type"], "thinking");
    assert!(v["content"][0]["signature"].is_string());
    assert_eq!(v["content"][1]["type"], "text");
    assert_eq!(v["usage"]["output_tokens"], 64 + 16);
    assert_eq!(v["usage"]["output_tokens_details"]["thinking_tokens"], 64);

    thinking["stream"] = json!(true);
    let events = events(&sse_text(h.anthropic("/v1/messages", &thinking, &[])).await);
    let starts = data_of(&events, "content_block_start");
    assert_eq!(
        starts[0].json()["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(starts[1].json()["index"], 1);
    let kinds: Vec<String> = data_of(&events, "content_block_delta")
        .iter()
        .map(|e| e.json()["delta"]["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "thinking_delta").count(), 16);
    assert_eq!(kinds.iter().filter(|k| *k == "signature_delta").count(), 1);
    assert!(kinds.iter().any(|k| k == "text_delta"));
    assert_eq!(
        data_of(&events, "message_delta")[0].json()["usage"]["output_tokens"],
        80
    );
}

#[tokio::test]
async fn tool_use_blocks() {
    let h = start().await;
    let mut with_tools = body();
    with_tools["tools"] = json!([
        {"type": "web_search_20250305", "name": "web_search"},
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}, "required": ["location"]}}]);
    let v = json(h.anthropic("/v1/messages", &with_tools, &[]), 200).await;
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_01"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"location": "Paris"}));

    with_tools["stream"] = json!(true);
    let events = events(&sse_text(h.anthropic("/v1/messages", &with_tools, &[])).await);
    let start = data_of(&events, "content_block_start")[0].json();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["input"], json!({}));
    let partial: String = data_of(&events, "content_block_delta")
        .iter()
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(
        data_of(&events, "message_delta")[0].json()["delta"]["stop_reason"],
        "tool_use"
    );

    // After a tool result the reply is text; x-mock-tool-calls: 0 also turns tools off.
    with_tools["stream"] = json!(false);
    let v = json(
        h.anthropic("/v1/messages", &with_tools, &[("x-mock-tool-calls", "0")]),
        200,
    )
    .await;
    assert_eq!(v["stop_reason"], "end_turn");
    with_tools["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]}),
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}),
    ]);
    let v = json(h.anthropic("/v1/messages", &with_tools, &[]), 200).await;
    assert_eq!(v["stop_reason"], "end_turn");
}

#[tokio::test]
async fn max_tokens_required_and_caps() {
    let h = start().await;
    let mut no_max = body();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let v = json(h.anthropic("/v1/messages", &no_max, &[]), 400).await;
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let mut capped = body();
    capped["max_tokens"] = json!(3);
    let v = json(h.anthropic("/v1/messages", &capped, &[]), 200).await;
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 3);

    let v = json(h.anthropic("/v1/messages/count_tokens", &body(), &[]), 200).await;
    assert_eq!(v, json!({"input_tokens": 20}));
}
