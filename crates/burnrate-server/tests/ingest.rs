//! OTLP/HTTP trace ingest and the events API on the running gateway: what exporters send lands
//! in the ledger, bad input gets a clear 4xx in OTLP's form, and the server keeps serving.

#![allow(
    clippy::unwrap_used,
    reason = "helpers of the tests: a failure fails the test"
)]

mod common;

use std::io::Write;

use common::{ADMIN_TOKEN, Harness, KEY};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/otlp/");
    std::fs::read(format!("{path}{name}")).unwrap()
}

async fn export(
    harness: &Harness,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    harness
        .client
        .post(format!("{}/v1/traces", harness.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn real_exporter_payloads_in_both_encodings_land_in_the_ledger() {
    let harness = Harness::start_with("[attribution]\notel_prefixes = [\"acme.\"]\n").await;
    let response = export(
        &harness,
        ADMIN_TOKEN,
        "application/x-protobuf",
        fixture("openai_v2.0.pb"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    // The same export again, as OTLP/JSON: same span ids, so counted once.
    let response = export(
        &harness,
        ADMIN_TOKEN,
        "application/json",
        fixture("openai_v2.0.json"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("partialSuccess")
            .is_none_or(|p| p["rejectedSpans"].as_i64().unwrap_or(0) == 0),
        "{body}"
    );
    let response = export(
        &harness,
        KEY,
        "application/json",
        fixture("openinference.0.json"),
    )
    .await;
    assert_eq!(response.status(), 200);

    let events = harness.stop().await;
    let genai: Vec<_> = events
        .iter()
        // The admin-token exports (no tenant); the protobuf and JSON copies are one event.
        .filter(|e| e.model == "gpt-4.1-2025-04-14" && e.tenant_id.is_none())
        .collect();
    assert_eq!(genai.len(), 1, "{events:#?}");
    let event = genai[0];
    assert_eq!(event.source.as_deref(), Some("otlp"));
    assert_eq!(event.provider, "openai");
    assert_eq!(event.usage.input_tokens, 1144);
    assert_eq!(event.usage.output_tokens, 2);
    assert_eq!(event.deployment.as_deref(), Some("staging"));
    assert_eq!(
        event.labels.get("service").map(String::as_str),
        Some("support-bot")
    );
    // openai-v2 spans carry no cache attribute: flagged, so coverage can count them.
    assert_eq!(
        event.labels.get("burnrate.missing").map(String::as_str),
        Some("cache")
    );
    // The OpenInference export came with a virtual key: its tenant is forced.
    let keyed: Vec<_> = events
        .iter()
        .filter(|e| e.tenant_id.as_deref() == Some("acme-corp"))
        .collect();
    assert!(!keyed.is_empty());
    assert!(keyed.iter().all(|e| e.source.as_deref() == Some("otlp")));
}

#[tokio::test]
async fn bad_exports_get_otlp_errors_and_the_server_keeps_serving() {
    let harness = Harness::start().await;
    let good = fixture("openai_v2.0.pb");

    let unauthenticated = export(&harness, "nope", "application/x-protobuf", good.clone()).await;
    assert_eq!(unauthenticated.status(), 401);

    let wrong_type = export(&harness, ADMIN_TOKEN, "text/plain", good.clone()).await;
    assert_eq!(wrong_type.status(), 415);
    let body: Value = wrong_type.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("text/plain"),
        "{body}"
    );

    let truncated = export(
        &harness,
        ADMIN_TOKEN,
        "application/x-protobuf",
        good[..good.len() / 2].to_vec(),
    )
    .await;
    assert_eq!(truncated.status(), 400);
    assert_eq!(
        truncated.headers()["content-type"],
        "application/x-protobuf"
    );
    assert!(!truncated.bytes().await.unwrap().is_empty());

    let bad_json = export(
        &harness,
        ADMIN_TOKEN,
        "application/json",
        b"{\"resourceSpans\": 7}".to_vec(),
    )
    .await;
    assert_eq!(bad_json.status(), 400);
    let body: Value = bad_json.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("resourceSpans"),
        "{body}"
    );

    // Over the harness's 64 KiB body limit.
    let huge = export(
        &harness,
        ADMIN_TOKEN,
        "application/json",
        vec![b' '; 200_000],
    )
    .await;
    assert_eq!(huge.status(), 413);

    // A gzip bomb: small on the wire, far over the limit once inflated.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 10_000_000]).unwrap();
    let bomb = harness
        .client
        .post(format!("{}/v1/traces", harness.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(bomb.status(), 413);

    // Still serving: a gzip export of the good payload goes through.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&good).unwrap();
    let gzipped = harness
        .client
        .post(format!("{}/v1/traces", harness.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), 200);
    let events = harness.stop().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.usage.input_tokens == 1144)
            .count(),
        1
    );
}

#[tokio::test]
async fn spans_with_absurd_counts_are_rejected_by_name_in_a_partial_success() {
    let harness = Harness::start().await;
    let span = |id: &str, input: Value| {
        json!({"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": id, "name": "chat",
               "startTimeUnixNano": "1795450947508072077", "endTimeUnixNano": "1795450947524572961",
               "attributes": [
                   {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                   {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                   {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4.1"}},
                   {"key": "gen_ai.usage.input_tokens", "value": input},
                   {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}]})
    };
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        span("00f067aa0ba902b7", json!({"intValue": "120"})),
        span("00f067aa0ba902b8", json!({"intValue": "99999999999999999"})),
        span("00f067aa0ba902b9", json!({"stringValue": "lots"})),
    ]}]}]});
    let response = export(
        &harness,
        ADMIN_TOKEN,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    // int64 in OTLP/JSON: a number or a decimal string.
    let rejected = answer["partialSuccess"]["rejectedSpans"].to_string();
    assert_eq!(rejected.trim_matches('"'), "2", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("gen_ai.usage.input_tokens"), "{message}");
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].usage.input_tokens, 120);
}

#[tokio::test]
async fn the_events_api_takes_arrays_and_jsonl_and_names_bad_events() {
    let harness = Harness::start().await;
    let post = |body: String| {
        harness
            .client
            .post(format!("{}/api/v1/events", harness.base))
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
    };
    let event = |tenant: &str, input: i64| {
        json!({"ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1",
               "tenant_id": tenant, "usage": {"input_tokens": input, "output_tokens": 3}})
    };
    let array = json!([event("a", 10), event("b", -1), event("c", 30)]);
    let response = post(array.to_string()).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "usage.input_tokens");

    let jsonl = format!("{}\n\n{}\n", event("d", 40), event("a", 10));
    let response = post(jsonl).await.unwrap();
    assert_eq!(response.status(), 200);

    let response = post("{\"ts\": 1}\n".into()).await.unwrap();
    assert_eq!(response.status(), 400);
    let response = harness
        .client
        .post(format!("{}/api/v1/events", harness.base))
        .body(event("x", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let events = harness.stop().await;
    let mut tenants: Vec<_> = events.iter().filter_map(|e| e.tenant_id.clone()).collect();
    tenants.sort();
    // "a" was posted twice with the same content: one event.
    assert_eq!(tenants, ["a", "c", "d"]);
    assert!(events.iter().all(|e| e.source.as_deref() == Some("api")));
}
