//! Real provider responses (fixtures/recordings) served back through the gateway: the event
//! it records must carry exactly the provider's token counts.

#![allow(
    clippy::unwrap_used,
    reason = "the replay upstream's helpers fail the test on a bad fixture"
)]

mod common;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use common::Harness;

fn recordings() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/recordings"
    ))
}

/// An upstream that answers every call with the recording named in `x-replay`.
fn replay_router() -> axum::Router {
    axum::Router::new().fallback(|headers: HeaderMap| async move {
        let name = headers["x-replay"].to_str().unwrap().to_string();
        let dir = recordings();
        let (path, content_type) = if dir.join(format!("{name}.response.sse")).exists() {
            (
                dir.join(format!("{name}.response.sse")),
                "text/event-stream",
            )
        } else {
            (
                dir.join(format!("{name}.response.json")),
                "application/json",
            )
        };
        Response::builder()
            .header("content-type", content_type)
            .body(Body::from(std::fs::read(path).unwrap()))
            .unwrap()
    })
}

fn number(cell: &str) -> u64 {
    if cell.is_empty() {
        0
    } else {
        cell.parse().unwrap()
    }
}

#[tokio::test]
async fn every_recording_is_recorded_with_the_providers_numbers() {
    let index = std::fs::read_to_string(recordings().join("INDEX.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = index
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect();
    assert!(rows.len() >= 23, "the index lists every recording");
    let (_, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let harness = Harness::start_upstream(replay_router(), log, "").await;
    for row in &rows {
        let (name, provider, api) = (row[0], row[1], row[2]);
        let path = match api {
            "chat_completions" => "/v1/chat/completions",
            "responses" => "/v1/responses",
            "embeddings" => "/v1/embeddings",
            "messages" => "/v1/messages",
            other => panic!("unknown api {other}"),
        };
        let body = std::fs::read(recordings().join(format!("{name}.request.json"))).unwrap();
        let response = harness
            .post(path)
            .header("content-type", "application/json")
            .header("x-replay", name)
            .header("X-Attribution-Task-ID", name)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let served = response.bytes().await.unwrap();
        assert!(!served.is_empty(), "{name}");
        let _ = provider;
    }
    let events = harness.stop().await;
    assert_eq!(events.len(), rows.len());
    for row in &rows {
        let name = row[0];
        let event = events
            .iter()
            .find(|event| event.task_id.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no event for {name}"));
        let (input, output) = (number(row[8]), number(row[9]));
        let (cache_read, cache_write) = (number(row[10]), number(row[11]));
        let (cache_1h, reasoning) = (number(row[12]), number(row[13]));
        // Anthropic's input excludes the cache parts; the event's input includes them.
        let input = if row[1] == "anthropic" {
            input + cache_read + cache_write
        } else {
            input
        };
        let usage = event.usage;
        assert_eq!(usage.input_tokens, input, "{name} input");
        assert_eq!(usage.output_tokens, output, "{name} output");
        assert_eq!(usage.cache_read_tokens, cache_read, "{name} cache read");
        assert_eq!(usage.cache_write_tokens, cache_write, "{name} cache write");
        assert_eq!(
            usage.cache_write_1h_tokens, cache_1h,
            "{name} 1h cache write"
        );
        assert_eq!(usage.reasoning_tokens, reasoning, "{name} reasoning");
        assert_eq!(event.model, row[4], "{name} model");
        assert_eq!(
            event.status,
            burnrate_model::Status::Ok,
            "{name}: {:?}",
            event.error
        );
        let layers = event.layers.unwrap_or_else(|| panic!("{name} has layers"));
        assert_eq!(
            layers.prompt + layers.tool + layers.memory,
            input,
            "{name} layers"
        );
    }
}
