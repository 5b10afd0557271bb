//! Real OpenTelemetry exporters and instrumentors (Python, from PyPI) sending spans to
//! `burnrate serve`: each must land the right tokens and dimensions in the ledger.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::{ADMIN_TOKEN, export, mock_provider, python, script, serve, write_config};

/// Runs otlp_export.py in `mode`; returns what it reported per model call.
fn run_exporter(mode: &str, gateway: &str, mock: &str) -> Vec<Value> {
    let output = Command::new(python())
        .arg(script("otlp_export.py"))
        .arg(mode)
        .env("BURNRATE_URL", gateway)
        .env("BURNRATE_TOKEN", ADMIN_TOKEN)
        .env("MOCK_URL", mock)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "otlp_export.py {mode} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
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
