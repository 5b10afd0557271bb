//! Times OTLP trace decoding and mapping on a 10,000-span export request and prints spans/s.
//!
//! `cargo run --release --example otlp_map_bench [ROUNDS] [protobuf|protobuf+gzip|json]`
//!
//! With `OTLP_BENCH_WRITE=DIR` it only writes the request to `DIR/traces.pb` and
//! `DIR/traces.json` (for the HTTP ingest benchmark, `gateway_bench --otlp-bodies DIR`).
//!
//! The request: 1,000 traces of 10 spans each, as an agent service exports them. Per trace an
//! `invoke_agent` span, three `chat` spans carrying 15 attributes each (what
//! `opentelemetry-instrumentation-openai-v2` sets, plus cache and attribution attributes),
//! two `execute_tool` spans, two HTTP client spans and two database spans (not LLM calls).
//! Each body (protobuf, gzip protobuf, OTLP/JSON) is decoded and mapped ROUNDS times; each
//! phase's best round is reported (the machine is shared; the best is the least disturbed).
//! Freeing the decoded request and the events is timed apart: it is a real cost per request
//! (the events go on to the journal and are freed there).

#![allow(
    clippy::print_stdout,
    reason = "a benchmark program prints its numbers"
)]

use std::error::Error;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use burnrate_wire::otlp::{Encoding, ExportTraceServiceRequest, OtlpMapping, decode, map_request};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::json;

const TRACES: u64 = 1_000;
const LIMIT: usize = 64 << 20;

fn main() -> Result<(), Box<dyn Error>> {
    let rounds: u32 = std::env::args().nth(1).map_or(Ok(20), |n| n.parse())?;
    let only = std::env::args().nth(2);
    let request = build_request();
    let spans: usize = request.resource_spans[0]
        .scope_spans
        .iter()
        .map(|s| s.spans.len())
        .sum();
    let protobuf = request.encode_to_vec();
    let gzipped = gzip(&protobuf)?;
    let json = to_json(&request).to_string().into_bytes();
    if let Some(dir) = std::env::var_os("OTLP_BENCH_WRITE") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("traces.pb"), &protobuf)?;
        std::fs::write(dir.join("traces.json"), &json)?;
        println!("{spans} spans per request written to {}", dir.display());
        return Ok(());
    }
    let mapping = OtlpMapping {
        prefixes: vec!["digitalapplied.".into()],
        ..OtlpMapping::default()
    };
    let events = map_request(&request, &mapping).events.len();
    println!(
        "{spans} spans ({events} LLM calls) per request; protobuf {} KB, gzip {} KB, JSON {} KB; best of {rounds} rounds",
        protobuf.len() / 1024,
        gzipped.len() / 1024,
        json.len() / 1024
    );
    println!(
        "{:<14} {:>10} {:>10} {:>12} {:>12} {:>10} {:>11}",
        "body", "decode µs", "map µs", "drop req µs", "drop evts µs", "total µs", "spans/s"
    );
    for (name, body, encoding, gzip) in [
        ("protobuf", &protobuf, Encoding::Protobuf, false),
        ("protobuf+gzip", &gzipped, Encoding::Protobuf, true),
        ("json", &json, Encoding::Json, false),
    ] {
        if only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let mut best = [Duration::MAX; 4];
        for _ in 0..rounds {
            let started = Instant::now();
            let decoded = decode(black_box(body), encoding, gzip, LIMIT)?;
            let decoded_at = Instant::now();
            let mapped = map_request(black_box(&decoded), &mapping);
            let mapped_at = Instant::now();
            drop(black_box(decoded));
            let dropped_request = Instant::now();
            drop(black_box(mapped));
            let dropped_events = Instant::now();
            let times = [
                decoded_at - started,
                mapped_at - decoded_at,
                dropped_request - mapped_at,
                dropped_events - dropped_request,
            ];
            for (best, time) in best.iter_mut().zip(times) {
                *best = (*best).min(time);
            }
        }
        let total: Duration = best.iter().sum();
        println!(
            "{name:<14} {:>10} {:>10} {:>12} {:>12} {:>10} {:>11.0}",
            best[0].as_micros(),
            best[1].as_micros(),
            best[2].as_micros(),
            best[3].as_micros(),
            total.as_micros(),
            spans as f64 / total.as_secs_f64()
        );
    }
    let per_span = |d: Duration| d.as_nanos() as f64 / spans as f64;
    let started = Instant::now();
    let decoded = decode(&protobuf, Encoding::Protobuf, false, LIMIT)?;
    let decode_ns = per_span(started.elapsed());
    let started = Instant::now();
    black_box(map_request(&decoded, &mapping));
    println!(
        "one cold round, protobuf: decode {decode_ns:.0} ns/span, map {:.0} ns/span",
        per_span(started.elapsed())
    );
    Ok(())
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

fn span(
    trace: u128,
    id: u64,
    parent: u64,
    name: &str,
    start: u64,
    attributes: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: name.to_owned(),
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 812_000_000,
        attributes,
        status: Some(Status::default()),
        ..Span::default()
    }
}

fn chat(n: u64) -> Vec<KeyValue> {
    vec![
        text("gen_ai.operation.name", "chat"),
        text("gen_ai.provider.name", "openai"),
        text("gen_ai.request.model", "gpt-4.1"),
        text("gen_ai.response.model", "gpt-4.1-2025-04-14"),
        text(
            "gen_ai.response.id",
            &format!("chatcmpl-D7mVhCCkdWfellaSmcNLOuu{n:08}"),
        ),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("tool_calls".into())),
                }],
            }),
        ),
        int("gen_ai.usage.input_tokens", 1_144 + (n % 977) as i64),
        int("gen_ai.usage.output_tokens", 2 + (n % 311) as i64),
        int("gen_ai.usage.cache_read.input_tokens", 1_024),
        kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
        int("gen_ai.request.max_tokens", 4096),
        text("openai.response.service_tier", "default"),
        text("openai.response.system_fingerprint", "fp_8b22347a3e"),
        text("digitalapplied.tenant_id", &format!("tenant-{}", n % 50)),
        text("digitalapplied.feature", "inbox-triage"),
    ]
}

fn build_request() -> ExportTraceServiceRequest {
    let t0 = 1_795_450_947_508_072_077u64;
    let mut spans = Vec::new();
    for t in 0..TRACES {
        let trace = 0x5b8e_fff7_9803_8103_d269_b633_0000_0000u128 + u128::from(t) * 7919;
        let base = t * 100 + 1;
        let start = t0 + t * 10_000_000;
        let agent = base;
        spans.push(span(
            trace,
            agent,
            0,
            "invoke_agent triage",
            start,
            vec![
                text("gen_ai.operation.name", "invoke_agent"),
                text("gen_ai.agent.name", "triage"),
                text("gen_ai.agent.id", "agent-triage"),
                text("gen_ai.conversation.id", &format!("conv-{t}")),
                text("digitalapplied.user_id", &format!("u_{}", t % 400)),
            ],
        ));
        for c in 0..3u64 {
            let at = start + c * 1_000_000_000;
            spans.push(span(
                trace,
                base + 1 + c,
                agent,
                "chat gpt-4.1",
                at,
                chat(t * 3 + c),
            ));
        }
        for k in 0..2u64 {
            spans.push(span(
                trace,
                base + 10 + k,
                agent,
                "execute_tool search_crm",
                start + 900_000_000 + k,
                vec![
                    text("gen_ai.operation.name", "execute_tool"),
                    text("gen_ai.tool.name", "search_crm"),
                    text("gen_ai.tool.call.id", &format!("call_{t}_{k}")),
                ],
            ));
            spans.push(span(
                trace,
                base + 20 + k,
                base + 10 + k,
                "GET",
                start + 900_100_000,
                vec![
                    text("http.request.method", "GET"),
                    text(
                        "url.full",
                        "https://crm.internal/api/v2/contacts?query=acme",
                    ),
                    text("server.address", "crm.internal"),
                    int("server.port", 443),
                    int("http.response.status_code", 200),
                    text("network.protocol.version", "1.1"),
                ],
            ));
            spans.push(span(
                trace,
                base + 30 + k,
                base + 20 + k,
                "SELECT contacts",
                start + 900_200_000,
                vec![
                    text("db.system.name", "postgresql"),
                    text("db.namespace", "crm"),
                    text(
                        "db.query.text",
                        "SELECT id, name, email FROM contacts WHERE tenant = $1 AND name ILIKE $2",
                    ),
                    text("db.operation.name", "SELECT"),
                ],
            ));
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "support-bot"),
                    text("service.version", "1.4.2"),
                    text("deployment.environment.name", "production"),
                    text("telemetry.sdk.language", "python"),
                    text("telemetry.sdk.name", "opentelemetry"),
                    text("telemetry.sdk.version", "1.45.2"),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.openai_v2".into(),
                    version: "2.4b0".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The request in OTLP/JSON (hex ids, integer enums, 64-bit integers as strings).
fn to_json(request: &ExportTraceServiceRequest) -> serde_json::Value {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let attributes = |attributes: &[KeyValue]| -> Vec<serde_json::Value> {
        attributes
            .iter()
            .map(|a| json!({"key": a.key, "value": any(a.value.as_ref())}))
            .collect()
    };
    let resource_spans: Vec<_> = request
        .resource_spans
        .iter()
        .map(|rs| {
            let scope_spans: Vec<_> = rs
                .scope_spans
                .iter()
                .map(|ss| {
                    let spans: Vec<_> = ss
                        .spans
                        .iter()
                        .map(|s| {
                            json!({
                                "traceId": hex(&s.trace_id), "spanId": hex(&s.span_id),
                                "parentSpanId": hex(&s.parent_span_id), "name": s.name, "kind": s.kind,
                                "startTimeUnixNano": s.start_time_unix_nano.to_string(),
                                "endTimeUnixNano": s.end_time_unix_nano.to_string(),
                                "attributes": attributes(&s.attributes),
                                "status": {"code": s.status.as_ref().map_or(0, |st| st.code)},
                            })
                        })
                        .collect();
                    json!({"scope": {"name": ss.scope.as_ref().map(|s| s.name.as_str())}, "spans": spans})
                })
                .collect();
            let resource = rs.resource.as_ref().map(|r| attributes(&r.attributes)).unwrap_or_default();
            json!({"resource": {"attributes": resource}, "scopeSpans": scope_spans})
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

fn any(value: Option<&AnyValue>) -> serde_json::Value {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => json!({"stringValue": s}),
        Some(Value::IntValue(i)) => json!({"intValue": i.to_string()}),
        Some(Value::DoubleValue(d)) => json!({"doubleValue": d}),
        Some(Value::BoolValue(b)) => json!({"boolValue": b}),
        Some(Value::ArrayValue(a)) => {
            json!({"arrayValue": {"values": a.values.iter().map(|v| any(Some(v))).collect::<Vec<_>>()}})
        }
        _ => json!({}),
    }
}
