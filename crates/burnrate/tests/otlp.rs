//! Real OpenTelemetry exporters and instrumentors (Python, from PyPI) sending spans to
//! `burnrate serve`: each must land the right tokens and dimensions in the ledger.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod support;

use std::io::{Read, Write};
use std::process::Command;

use serde_json::Value;
use support::{
    ADMIN_TOKEN, export, js_dir, json_lines, mock_provider, python, script, serve, write_config,
};

/// Runs otlp_export.py in `mode`; returns what it reported per model call.
fn run_exporter(mode: &str, gateway: &str, mock: &str) -> Vec<Value> {
    json_lines(
        Command::new(python())
            .arg(script("otlp_export.py"))
            .arg(mode)
            .env("BURNRATE_URL", gateway)
            .env("BURNRATE_TOKEN", ADMIN_TOKEN)
            .env("MOCK_URL", mock),
        &format!("otlp_export.py {mode}"),
    )
}

#[test]
fn instrumented_sdk_calls_and_hand_made_spans_land_in_the_ledger() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "otel_prefixes = [\"acme.\"]");
    let gateway = serve(&config);
    let modes = ["openai-v2", "openinference", "sdk"];
    let reported: Vec<(&str, Vec<Value>)> = modes
        .iter()
        .map(|mode| (*mode, run_exporter(mode, &gateway.url, &mock.url)))
        .collect();
    assert!(gateway.terminate().success(), "SIGTERM exits 0");
    let events = export(&dir.path().join("ledger.duckdb"));

    for (mode, calls) in &reported {
        let tenant = format!("tenant-{mode}");
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["tenant_id"].as_str() == Some(tenant.as_str()))
            .collect();
        assert_eq!(mine.len(), calls.len(), "{mode}: {mine:#?}");
        for (event, call) in mine.iter().zip(calls) {
            let usage = &event["usage"];
            assert_eq!(event["source"], "otlp", "{mode}");
            assert_eq!(event["feature"], "otlp-e2e", "{mode}");
            assert_eq!(event["user_id"], "u-otlp", "{mode}");
            assert_eq!(event["agent_name"], "triage", "{mode}");
            assert_eq!(event["deployment"], "e2e", "{mode}");
            assert_eq!(event["model"], call["model"], "{mode}");
            assert_eq!(usage["input_tokens"], call["input"], "{mode}: {event}");
            assert_eq!(usage["output_tokens"], call["output"], "{mode}: {event}");
            let cached = usage
                .get("cache_read_tokens")
                .cloned()
                .unwrap_or(Value::from(0));
            if *mode == "openai-v2" {
                // This instrumentor never reports cached tokens: the event says so.
                assert_eq!(event["labels"]["burnrate.missing"], "cache", "{event}");
            } else {
                assert_eq!(cached, call["cached"], "{mode}: {event}");
            }
            assert!(
                event["agent_run_id"]
                    .as_str()
                    .is_some_and(|run| run.len() == 32)
            );
        }
    }
    // The hand-made spans: deprecated names read, the non-LLM span ignored, the Anthropic
    // cache write kept as a part of the input.
    let claude = events
        .iter()
        .find(|e| e["model"] == "claude-sonnet-4-5-20250929")
        .unwrap();
    assert_eq!(claude["provider"], "anthropic");
    assert_eq!(claude["usage"]["cache_write_tokens"], 300);
    let old_names = events.iter().find(|e| e["model"] == "gpt-4o").unwrap();
    assert_eq!(old_names["provider"], "openai");
    assert_eq!(old_names["usage"]["input_tokens"], 700);
}

#[test]
fn ten_thousand_spans_in_one_export_are_all_recorded_or_named() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    // 10,000 chat spans, every 1,000th with an absurd token count.
    let spans: Vec<Value> = (0..10_000u64)
        .map(|n| {
            let input = if n % 1_000 == 999 { "1e30".to_owned() } else { (100 + n).to_string() };
            serde_json::json!({
                "traceId": format!("{:032x}", n / 10 + 1), "spanId": format!("{:016x}", n + 1),
                "name": "chat gpt-4.1", "kind": 3,
                "startTimeUnixNano": "1795450947508072077", "endTimeUnixNano": "1795450947524572961",
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4.1"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": input}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "7"}},
                    {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "0"}}]})
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]});
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer: Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/traces", gateway.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    let rejected = answer["partialSuccess"]["rejectedSpans"].to_string();
    assert_eq!(rejected.trim_matches('"'), "10", "{answer}");
    assert!(gateway.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    assert_eq!(events.len(), 9_990);
    let total: u64 = events
        .iter()
        .map(|e| e["usage"]["input_tokens"].as_u64().unwrap())
        .sum();
    let expected: u64 = (0..10_000u64)
        .filter(|n| n % 1_000 != 999)
        .map(|n| 100 + n)
        .sum();
    assert_eq!(total, expected);
}

#[test]
fn the_official_js_exporter_sends_otlp_json_that_lands_in_the_ledger() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "otel_prefixes = [\"acme.\"]");
    let gateway = serve(&config);
    let reported = json_lines(
        Command::new("node")
            .arg(js_dir().join("otlp_json_export.js"))
            .env("BURNRATE_URL", &gateway.url)
            .env("BURNRATE_TOKEN", ADMIN_TOKEN),
        "node otlp_json_export.js (node and npm: apt-get install nodejs npm)",
    );
    let reported = &reported[0];
    assert!(gateway.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["source"], "otlp");
    assert_eq!(event["provider"], "anthropic");
    assert_eq!(event["model"], reported["model"]);
    assert_eq!(event["usage"]["input_tokens"], reported["input"]);
    assert_eq!(event["usage"]["output_tokens"], reported["output"]);
    assert_eq!(event["usage"]["cache_read_tokens"], reported["cached"]);
    assert_eq!(event["tenant_id"], "tenant-js");
    // An integer attribute becomes the dimension's text.
    assert_eq!(event["user_id"], "8814");
    assert_eq!(event["feature"], "otlp-e2e");
    assert_eq!(event["agent_name"], "planner");
    assert_eq!(event["deployment"], "e2e");
    assert_eq!(
        event["tool_calls"], 1,
        "the execute_tool span counts for the call"
    );
}

#[test]
fn a_separate_otlp_listener_takes_exports_and_nothing_else() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\notlp_listen = \"127.0.0.1:0\"",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let gateway = serve(&config);
    let line = gateway.listening_line.clone();
    let otlp = line
        .split("OTLP/HTTP also on ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(")"))
        .unwrap_or_else(|| panic!("no OTLP address in {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let body = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "chat", "startTimeUnixNano": "1795450947508072077",
            "endTimeUnixNano": "1795450947524572961",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4.1"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}]}]}]}]});
        let response = client
            .post(&otlp)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // The proxy routes are not on the OTLP listener.
        let base = otlp.trim_end_matches("/v1/traces");
        let proxy = client
            .post(format!("{base}/v1/chat/completions"))
            .send()
            .await
            .unwrap();
        assert_eq!(proxy.status(), 404);
    });
    // A 100 MB export, over the default 32 MB limit, is refused with 413 from its headers,
    // before the body is sent (so the test does not race the server closing the socket).
    let address = otlp
        .trim_start_matches("http://")
        .trim_end_matches("/v1/traces");
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    write!(
        socket,
        "POST /v1/traces HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        100u64 << 20
    )
    .unwrap();
    let mut status = [0u8; 12];
    socket.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 413");
    assert!(gateway.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["usage"]["input_tokens"], 42);
}
