//! The audit trail the gateway writes: a record per call and per decision, exports that match
//! the ledger, content capture whose redaction happens before anything reaches disk, and
//! erasure that keeps the chain.

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use axum::response::IntoResponse;
use burnrate_audit::export::{self, Filter, Format};
use burnrate_audit::{AuditRecord, Kind, verify};
use common::{ADMIN_TOKEN, Harness};
use serde_json::{Value, json};

const OTHER_KEY: &str = "br-globex-test-key";

fn other_key_toml() -> String {
    let hash: String = burnrate_server::keys::hash_key(OTHER_KEY)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("[[keys]]\nid = \"globex\"\nsha256 = \"{hash}\"\ntenant_id = \"globex\"\n")
}

fn chat(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4.1",
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        "metadata": {"customer_email": "carol@corp.example", "ticket": "T-1"}
    })
}

/// Every record of a trail, in order.
fn records(dir: &Path) -> Vec<(AuditRecord, String)> {
    let mut all = Vec::new();
    export::walk(dir, None, |record, hash| {
        all.push((record.clone(), hash.to_owned()));
        Ok(())
    })
    .unwrap();
    all
}

#[tokio::test]
async fn every_call_and_decision_is_on_record_and_a_tenant_export_equals_the_ledger() {
    let harness = Harness::start_with(&other_key_toml()).await;
    for n in 0..3 {
        let sent = harness
            .post("/v1/chat/completions")
            .json(&chat(&format!("question {n}"), n == 1))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 200);
        sent.bytes().await.unwrap();
    }
    let globex = |harness: &Harness| {
        harness
            .client
            .post(format!("{}/v1/chat/completions", harness.base))
            .bearer_auth(OTHER_KEY)
            .header("X-Attribution-User-ID", "g-1")
            .header("X-Attribution-Feature", "search")
            .json(&chat("hello", false))
    };
    assert_eq!(globex(&harness).send().await.unwrap().status(), 200);
    let admin = |path: &str| {
        harness
            .client
            .post(format!("{}{path}", harness.base))
            .bearer_auth(ADMIN_TOKEN)
    };
    let paused = admin("/api/v1/admin/tenants/globex/pause")
        .json(&json!({"reason": "runaway agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    assert_eq!(globex(&harness).send().await.unwrap().status(), 403);
    let resumed = admin("/api/v1/admin/tenants/globex/resume")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    // The same export over the admin API, its manifest in a header.
    let over_api = harness
        .client
        .get(format!(
            "{}/api/v1/admin/audit/export?tenant=acme-corp&format=jsonl",
            harness.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(over_api.status(), 200);
    let api_manifest: Value =
        serde_json::from_str(over_api.headers()["x-burnrate-manifest"].to_str().unwrap()).unwrap();
    let api_lines = over_api.text().await.unwrap();
    assert_eq!(api_manifest["records"], json!(3));
    assert_eq!(api_manifest["chain"]["ok"], json!(true));
    let bad = harness
        .client
        .get(format!(
            "{}/api/v1/admin/audit/export?format=xml&tenant=a",
            harness.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("format"));
    let (events, dir) = harness.stop_and_keep().await;
    let trail = dir.path().join("audit");

    let verified = verify(&trail).unwrap();
    let all = records(&trail);
    assert_eq!(verified.records, all.len() as u64);
    let kinds: Vec<Kind> = all.iter().filter_map(|(r, _)| r.kind).collect();
    assert_eq!(
        kinds[0],
        Kind::PriceChange,
        "the price table in force at start"
    );
    for kind in [Kind::Pause, Kind::Resume, Kind::Refusal] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind:?} in {kinds:?}"
        );
    }
    // One record per event in the ledger, linked by the event's id.
    let by_event: BTreeMap<String, &AuditRecord> = all
        .iter()
        .filter_map(|(r, _)| Some((r.event_id.clone()?, r)))
        .collect();
    assert_eq!(by_event.len(), events.len());
    for event in &events {
        let record = by_event[&event.id.unwrap().to_string()];
        assert_eq!(record.tenant_id, event.tenant_id);
        assert_eq!(record.user_id, event.user_id);
        assert_eq!(record.model.as_deref(), Some(event.model.as_str()));
        assert_eq!(record.input_tokens, Some(event.usage.input_tokens));
        assert_eq!(record.output_tokens, Some(event.usage.output_tokens));
        assert_eq!(record.start, Some(event.ts));
        assert_eq!(
            record.burnrate_version.as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(record.config_hash.as_ref().map(String::len), Some(64));
    }
    let refusal = all
        .iter()
        .find(|(r, _)| r.kind == Some(Kind::Refusal))
        .unwrap();
    assert_eq!(refusal.0.tenant_id.as_deref(), Some("globex"));
    assert_eq!(refusal.0.status.as_deref(), Some("blocked"));

    // The tenant's export holds exactly its ledger events, record for record, in every format.
    let ledger: Vec<_> = events
        .iter()
        .filter(|e| e.tenant_id.as_deref() == Some("acme-corp"))
        .collect();
    let filter = Filter {
        tenant: Some("acme-corp".into()),
        ..Filter::default()
    };
    let jsonl = dir.path().join("acme.jsonl");
    let manifest = export::export(&trail, None, &filter, Format::Jsonl, &jsonl).unwrap();
    assert!(manifest.chain.ok, "{:?}", manifest.chain);
    assert_eq!(manifest.records, ledger.len() as u64);
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), ledger.len());
    for (line, event) in lines.iter().zip(&ledger) {
        assert_eq!(line["event_id"], json!(event.id.unwrap().to_string()));
        assert_eq!(line["input_tokens"], json!(event.usage.input_tokens));
        assert_eq!(line["output_tokens"], json!(event.usage.output_tokens));
        assert_eq!(line["tenant_id"], json!("acme-corp"));
    }
    assert_eq!(manifest.first_seq, lines[0]["seq"].as_u64());
    assert_eq!(api_lines, std::fs::read_to_string(&jsonl).unwrap());
    assert_eq!(
        manifest.last_hash.as_deref(),
        lines.last().unwrap()["hash"].as_str()
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(export::manifest_path(&jsonl)).unwrap())
            .unwrap();
    assert_eq!(written["records"], json!(ledger.len()));
    assert_eq!(
        written["file_sha256"],
        json!(export::file_sha256(&jsonl).unwrap())
    );

    let parquet = dir.path().join("acme.parquet");
    export::export(&trail, None, &filter, Format::Parquet, &parquet).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut statement = conn
        .prepare(&format!(
            "SELECT seq::BIGINT, hash, event_id, input_tokens::BIGINT, output_tokens::BIGINT \
             FROM read_parquet('{}') ORDER BY seq",
            parquet.display()
        ))
        .unwrap();
    let rows: Vec<(i64, String, String, i64, i64)> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), lines.len());
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(Some(row.0 as u64), line["seq"].as_u64());
        assert_eq!(Some(row.1.as_str()), line["hash"].as_str());
        assert_eq!(Some(row.2.as_str()), line["event_id"].as_str());
        assert_eq!(Some(row.3 as u64), line["input_tokens"].as_u64());
        assert_eq!(Some(row.4 as u64), line["output_tokens"].as_u64());
    }
    let csv = dir.path().join("acme.csv");
    let manifest = export::export(&trail, None, &filter, Format::Csv, &csv).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text.lines().count(),
        ledger.len() + 1,
        "a header and a row per record"
    );
    assert_eq!(manifest.records, ledger.len() as u64);
}

/// An upstream whose streamed answer splits a secret across two deltas.
fn splitting_upstream() -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let chunk = |content: &str| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1",
                           "choices": [{"index": 0, "delta": {"content": content}}]})
                )
            };
            let usage = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1",
                "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5,
                "total_tokens": 17}});
            let body = format!(
                "{}{}{}data: {usage}\n\ndata: [DONE]\n\n",
                chunk("Write to alice@"),
                chunk("example.org today, key sk-live"),
                chunk("ABCDEFGHIJKLMNOP")
            );
            ([(http::header::CONTENT_TYPE, "text/event-stream")], body).into_response()
        }),
    )
}

/// Every byte under `dir`, with gzip files also inflated.
fn everything_on_disk(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut all)
                .unwrap();
        }
        all.extend_from_slice(&bytes);
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn captured_content_is_redacted_before_it_reaches_disk_and_erasure_keeps_the_chain() {
    let config = r#"
[[audit.capture]]
tenant = "acme-corp"

[audit.redact]
patterns = ['[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', 'sk-[A-Za-z0-9]{8,}']
json_paths = ["$.metadata.ticket"]
"#;
    let log = burnrate_mock::RequestLog::default();
    let harness = Harness::start_upstream(splitting_upstream(), log, config).await;
    for stream in [true, false] {
        let body = json!({
            "model": "gpt-4.1",
            "stream": stream,
            "messages": [{"role": "user",
                          "content": "I am bob@mail.example, my key is sk-test12345678"}],
            "metadata": {"ticket": "T-SECRET-42"}
        });
        let sent = harness
            .post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .unwrap();
        // The plain call reads a stream as JSON and fails upstream parsing; it is still
        // recorded and captured.
        sent.bytes().await.unwrap();
    }
    let erased = harness
        .client
        .post(format!("{}/api/v1/admin/audit/erase", harness.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_id": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    assert_eq!(erased.json::<Value>().await.unwrap()["captured"], json!(0));
    let (events, dir) = harness.stop_and_keep().await;
    assert_eq!(events.len(), 2);

    let disk = everything_on_disk(dir.path());
    for secret in [
        "bob@mail.example",
        "sk-test12345678",
        "T-SECRET-42",
        "alice@example.org",
        "example.org",
        "sk-liveABCDEFGHIJKLMNOP",
    ] {
        assert!(!contains(&disk, secret), "`{secret}` reached the disk");
    }
    assert!(contains(&disk, "[REDACTED]"));

    // Each call's record carries the hash of its stored content.
    let trail = dir.path().join("audit");
    let content = burnrate_audit::content::ContentStore::new(&dir.path().join("content"));
    for event in &events {
        let id = event.id.unwrap().to_string();
        let record = records(&trail)
            .into_iter()
            .find(|(r, _)| r.event_id.as_deref() == Some(id.as_str()))
            .unwrap()
            .0;
        let stored = content.hash(&id, event.ts.date_naive()).unwrap().unwrap();
        assert_eq!(record.content_sha256.as_deref(), Some(stored.as_str()));
    }
    let streamed = events.iter().find(|e| e.usage.output_tokens == 5).unwrap();
    let document = content
        .read(&streamed.id.unwrap().to_string(), streamed.ts.date_naive())
        .unwrap()
        .unwrap();
    let text = document["response"]["text"].as_str().unwrap();
    assert!(text.starts_with("Write to [REDACTED]"), "{text}");

    // Erasing the user removes the bodies and keeps every record and the chain.
    let before = records(&trail).len();
    let storage = burnrate_server::config::Storage::beside(&dir.path().join("ledger.duckdb"));
    let mut opened = burnrate_server::audit::AuditTrail::open(&storage.audit, "").unwrap();
    let erased = opened
        .erase_user("u-1", &storage.retention.archive_dir)
        .unwrap();
    drop(opened);
    assert_eq!(erased.captured, 2);
    assert_eq!(erased.files_deleted, 2);
    for event in &events {
        let id = event.id.unwrap().to_string();
        assert_eq!(content.hash(&id, event.ts.date_naive()).unwrap(), None);
    }
    let after = records(&trail);
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().0.kind, Some(Kind::Erasure));
    assert_eq!(
        after
            .iter()
            .filter(|(r, _)| r.content_sha256.is_some())
            .count(),
        2,
        "the records keep the hash of what was erased"
    );
    verify(&trail).unwrap();
}
