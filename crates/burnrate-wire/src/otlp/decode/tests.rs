//! Decoding tests: the OTLP/JSON forms the specification and real senders use, protobuf and
//! JSON of the same request, gzip, size limits, and garbage.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;
use prost::Message;

use super::super::tests::{i, map, s, span};
use super::super::{
    ExportTraceServiceResponse, Mapped, OtlpMapping, encode_response, map_request, partial_success,
};
use super::*;

const LIMIT: usize = 4 << 20;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// The request `SAME_REQUEST_JSON` describes, built directly.
fn same_request() -> ExportTraceServiceRequest {
    let trace = hex_bytes("5B8EFFF798038103D269B633813FC60C");
    let span = |id: &str, parent: &str, name: &str, attributes: Vec<KeyValue>| Span {
        trace_id: trace.clone(),
        span_id: hex_bytes(id),
        parent_span_id: hex_bytes(parent),
        name: name.into(),
        start_time_unix_nano: 1_795_450_947_508_072_077,
        end_time_unix_nano: 1_795_450_947_524_572_961,
        attributes,
        ..Span::default()
    };
    let text = |k: &str, v: &str| kv(k, Value::StringValue(v.into()));
    let int = |k: &str, v: i64| kv(k, Value::IntValue(v));
    let mut chat = span(
        "eee19b7ec3c1b174",
        "0000000000000a01",
        "chat gpt-4.1",
        vec![
            text("gen_ai.operation.name", "chat"),
            text("gen_ai.provider.name", "openai"),
            text("gen_ai.request.model", "gpt-4.1"),
            text("gen_ai.response.model", "gpt-4.1-2025-04-14"),
            int("gen_ai.usage.input_tokens", 1144),
            int("gen_ai.usage.output_tokens", 2),
            int("gen_ai.usage.cache_read.input_tokens", 1024),
            kv("gen_ai.request.temperature", Value::DoubleValue(0.5)),
            kv(
                "gen_ai.response.finish_reasons",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::StringValue("stop".into())),
                    }],
                }),
            ),
            kv("digitalapplied.user_id", Value::IntValue(8814)),
            kv("blob", Value::BytesValue(b"hello".to_vec())),
            kv(
                "kv",
                Value::KvlistValue(KeyValueList {
                    values: vec![text("a", "b")],
                }),
            ),
        ],
    );
    chat.kind = 3;
    chat.flags = 257;
    chat.events = vec![Event {
        time_unix_nano: 1_795_450_947_524_000_000,
        name: "gen_ai.choice".into(),
        ..Event::default()
    }];
    let mut oi = span(
        "0000000000000b01",
        "0000000000000a01",
        "ChatCompletion",
        vec![
            text("openinference.span.kind", "LLM"),
            text("llm.system", "openai"),
            text("llm.model_name", "gpt-5-nano-2025-08-07"),
            int("llm.token_count.prompt", 378),
            int("llm.token_count.completion", 1497),
            int("llm.token_count.completion_details.reasoning", 1408),
        ],
    );
    oi.kind = 1;
    oi.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    let agent = span(
        "0000000000000a01",
        "",
        "invoke_agent weather",
        vec![
            text("gen_ai.operation.name", "invoke_agent"),
            text("gen_ai.agent.name", "weather"),
            text("digitalapplied.tenant_id", "acme-corp"),
        ],
    );
    let tool = span(
        "0000000000000c01",
        "0000000000000a01",
        "execute_tool x",
        vec![
            text("gen_ai.operation.name", "execute_tool"),
            text("gen_ai.tool.name", "x"),
        ],
    );
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "svc")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "scope".into(),
                    version: "1.0".into(),
                    ..InstrumentationScope::default()
                }),
                spans: vec![chat, oi, tool, agent],
                schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// `same_request()` in OTLP/JSON, written the ways senders write it: upper-case hex, 64-bit
/// integers as strings and as numbers, enum numbers and names, nulls, unknown fields.
const SAME_REQUEST_JSON: &str = r#"{"resourceSpans": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}], "droppedAttributesCount": 0},
  "scopeSpans": [{
    "scope": {"name": "scope", "version": "1.0"},
    "schemaUrl": "https://opentelemetry.io/schemas/1.37.0",
    "spans": [
      {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174", "parentSpanId": "0000000000000a01",
       "name": "chat gpt-4.1", "kind": 3, "flags": 257,
       "startTimeUnixNano": "1795450947508072077", "endTimeUnixNano": 1795450947524572961,
       "attributes": [
         {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
         {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
         {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4.1"}},
         {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4.1-2025-04-14"}},
         {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1144"}},
         {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 2}},
         {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": 1024.0}},
         {"key": "gen_ai.request.temperature", "value": {"doubleValue": "0.5"}},
         {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
         {"key": "digitalapplied.user_id", "value": {"intValue": "8814", "futureField": 1}},
         {"key": "blob", "value": {"bytesValue": "aGVsbG8="}},
         {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}}}
       ],
       "events": [{"timeUnixNano": "1795450947524000000", "name": "gen_ai.choice", "attributes": null}],
       "links": [], "droppedLinksCount": 0, "status": null},
      {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000b01", "parentSpanId": "0000000000000a01",
       "name": "ChatCompletion", "kind": "SPAN_KIND_INTERNAL",
       "startTimeUnixNano": "1795450947508072077", "endTimeUnixNano": "1795450947524572961",
       "attributes": [
         {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
         {"key": "llm.system", "value": {"stringValue": "openai"}},
         {"key": "llm.model_name", "value": {"stringValue": "gpt-5-nano-2025-08-07"}},
         {"key": "llm.token_count.prompt", "value": {"intValue": 378}},
         {"key": "llm.token_count.completion", "value": {"intValue": 1497}},
         {"key": "llm.token_count.completion_details.reasoning", "value": {"intValue": "1408"}}
       ],
       "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}},
      {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000c01", "parentSpanId": "0000000000000a01",
       "name": "execute_tool x", "startTimeUnixNano": 1795450947508072077, "endTimeUnixNano": "1795450947524572961",
       "attributes": [
         {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
         {"key": "gen_ai.tool.name", "value": {"stringValue": "x"}}
       ]},
      {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000a01", "parentSpanId": null,
       "name": "invoke_agent weather", "kind": 0, "traceState": null,
       "startTimeUnixNano": "1795450947508072077", "endTimeUnixNano": "1795450947524572961",
       "attributes": [
         {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
         {"key": "gen_ai.agent.name", "value": {"stringValue": "weather"}},
         {"key": "digitalapplied.tenant_id", "value": {"stringValue": "acme-corp"}}
       ], "unknownSpanField": {"nested": [1, 2]}}
    ]}]}]}"#;

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn mapping() -> OtlpMapping {
    OtlpMapping {
        prefixes: vec!["digitalapplied.".into()],
        ..OtlpMapping::default()
    }
}

#[test]
fn json_reads_every_form_the_specification_allows() {
    let decoded = decode(SAME_REQUEST_JSON.as_bytes(), Encoding::Json, false, LIMIT).unwrap();
    assert_eq!(decoded, same_request());
}

#[test]
fn json_and_protobuf_give_the_same_events() {
    let protobuf = same_request().encode_to_vec();
    let from_protobuf = decode(&protobuf, Encoding::Protobuf, false, LIMIT).unwrap();
    let from_json = decode(SAME_REQUEST_JSON.as_bytes(), Encoding::Json, false, LIMIT).unwrap();
    let a = map_request(&from_protobuf, &mapping());
    let b = map_request(&from_json, &mapping());
    assert_eq!(a.events.len(), 2);
    assert_eq!(a, b);
    let chat = &a.events[0];
    assert_eq!(chat.user_id.as_deref(), Some("8814"));
    assert_eq!(chat.tenant_id.as_deref(), Some("acme-corp"));
    let tool_calls: u32 = a.events.iter().map(|e| e.tool_calls).sum();
    assert_eq!(tool_calls, 1, "the tool span counts once, to one call");
    assert_eq!(a.events[1].error.as_deref(), Some("boom"));
}

#[test]
fn json_errors_name_the_field() {
    let cases = [
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "W0gxMjM0NTY3ODkwMTIzNA=="}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
            "not hex",
        ),
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "SPAN_KIND_SIDEWAYS"}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].kind",
            "not a span kind",
        ),
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "-1"}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano",
            "out of range",
        ),
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": {"intValue": 1.5}}]}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue",
            "not an integer",
        ),
        (r#"{"resourceSpans": {}}"#, "resourceSpans", "sequence"),
        (r#"{"resourceSpans": [] "#, "(body)", "EOF"),
        ("", "(body)", "a JSON object"),
        ("[[]]", "(body)", "a JSON object"),
    ];
    for (json, field, reason) in cases {
        let error = decode(json.as_bytes(), Encoding::Json, false, LIMIT).unwrap_err();
        assert_eq!(error.field, field, "{json}: {error}");
        assert!(error.reason.contains(reason), "{json}: {error}");
    }
}

#[test]
fn json_accepts_what_the_collector_accepts() {
    let snake = r#"{"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174", "start_time_unix_nano": "1", "attributes": [{"value": {"stringValue": "no key"}}]}]}]}]}"#;
    let request = decode(snake.as_bytes(), Encoding::Json, false, LIMIT).unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.span_id, hex_bytes("eee19b7ec3c1b174"));
    assert_eq!(span.start_time_unix_nano, 1);
    assert_eq!(span.attributes[0].key, "");
    let empty = decode(b"{}", Encoding::Json, false, LIMIT).unwrap();
    assert!(empty.resource_spans.is_empty());
    let special = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [
        {"key": "a", "value": {"doubleValue": "NaN"}}, {"key": "b", "value": {"doubleValue": "-Infinity"}},
        {"key": "c", "value": {}}, {"key": "d", "value": null}, {"key": "e", "value": {"stringValue": null}}]}]}]}]}"#;
    let request = decode(special.as_bytes(), Encoding::Json, false, LIMIT).unwrap();
    let attributes = &request.resource_spans[0].scope_spans[0].spans[0].attributes;
    assert!(
        matches!(attributes[0].value.as_ref().unwrap().value, Some(Value::DoubleValue(d)) if d.is_nan())
    );
    assert_eq!(
        attributes[1].value.as_ref().unwrap().value,
        Some(Value::DoubleValue(f64::NEG_INFINITY))
    );
    assert_eq!(attributes[2].value, Some(AnyValue { value: None }));
    assert_eq!(attributes[3].value, None);
    assert_eq!(attributes[4].value, Some(AnyValue { value: None }));
}

#[test]
fn gzip_bodies() {
    let protobuf = same_request().encode_to_vec();
    let decoded = decode(&gzip(&protobuf), Encoding::Protobuf, true, LIMIT).unwrap();
    assert_eq!(decoded, same_request());
    let decoded = decode(
        &gzip(SAME_REQUEST_JSON.as_bytes()),
        Encoding::Json,
        true,
        LIMIT,
    )
    .unwrap();
    assert_eq!(decoded, same_request());
    // Two gzip members read as one body.
    let half = SAME_REQUEST_JSON.len() / 2;
    let mut members = gzip(&SAME_REQUEST_JSON.as_bytes()[..half]);
    members.extend(gzip(&SAME_REQUEST_JSON.as_bytes()[half..]));
    assert_eq!(
        decode(&members, Encoding::Json, true, LIMIT).unwrap(),
        same_request()
    );
    // Not gzip, or cut short.
    let error = decode(&protobuf, Encoding::Protobuf, true, LIMIT).unwrap_err();
    assert!(error.reason.starts_with("not valid gzip"), "{error}");
    let zipped = gzip(&protobuf);
    let error = decode(&zipped[..zipped.len() / 2], Encoding::Protobuf, true, LIMIT).unwrap_err();
    assert!(error.reason.starts_with("not valid gzip"), "{error}");
}

#[test]
fn decoded_size_is_capped() {
    // 100 MB of zeros gzips to under 1 MB: refused after inflating just past the limit.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let block = vec![0u8; 1 << 20];
    for _ in 0..100 {
        encoder.write_all(&block).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1_000_000, "{}", bomb.len());
    let error = decode(&bomb, Encoding::Protobuf, true, LIMIT).unwrap_err();
    assert_eq!(error.field, "(body)");
    assert!(is_too_large(&error), "{error}");
    // Uncompressed bodies obey the same limit.
    let body = SAME_REQUEST_JSON.as_bytes();
    let error = decode(body, Encoding::Json, false, body.len() - 1).unwrap_err();
    assert!(is_too_large(&error), "{error}");
    assert!(decode(body, Encoding::Json, false, body.len()).is_ok());
    assert!(!is_too_large(
        &decode(b"x", Encoding::Json, false, 1).unwrap_err()
    ));
}

#[test]
fn truncated_protobuf_is_an_error() {
    let protobuf = same_request().encode_to_vec();
    let mut failures = 0;
    for cut in 1..protobuf.len() {
        if let Err(error) = decode(&protobuf[..cut], Encoding::Protobuf, false, LIMIT) {
            assert_eq!(error.field, "(body)");
            assert!(error.reason.starts_with("not an OTLP protobuf"), "{error}");
            failures += 1;
        }
    }
    // A cut at a message boundary is a valid (shorter) request; almost every cut is not.
    assert!(
        failures > protobuf.len() * 9 / 10,
        "{failures} of {}",
        protobuf.len()
    );
    let error = decode(
        &protobuf[..protobuf.len() - 3],
        Encoding::Protobuf,
        false,
        LIMIT,
    )
    .unwrap_err();
    assert!(
        error.reason.contains("buffer underflow") || error.reason.contains("invalid"),
        "{error}"
    );
    // JSON sent as protobuf (wrong content type) fails too.
    assert!(
        decode(
            SAME_REQUEST_JSON.as_bytes(),
            Encoding::Protobuf,
            false,
            LIMIT
        )
        .is_err()
    );
}

/// Decoding then mapping anything: never a panic, and whatever is mapped is a valid event.
fn decode_and_map(body: &[u8], encoding: Encoding, gzip: bool) {
    if let Ok(request) = decode(body, encoding, gzip, LIMIT) {
        let mapped = map_request(&request, &mapping());
        for event in &mapped.events {
            assert!(event.validate().is_ok(), "{event:?}");
        }
        let _ = partial_success(&mapped);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), gzip in any::<bool>()) {
        decode_and_map(&body, Encoding::Protobuf, gzip);
        decode_and_map(&body, Encoding::Json, gzip);
    }

    #[test]
    fn mutated_protobuf_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut body = same_request().encode_to_vec();
        for (index, byte) in edits {
            let at = index.index(body.len());
            body[at] = byte;
        }
        decode_and_map(&body, Encoding::Protobuf, false);
    }

    #[test]
    fn mutated_json_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), "[{}\\[\\]\":,0-9a-zA-Z.-]"), 1..6)) {
        let mut body = SAME_REQUEST_JSON.as_bytes().to_vec();
        for (index, text) in edits {
            let at = index.index(body.len());
            body.splice(at..at + 1, text.bytes());
        }
        decode_and_map(&body, Encoding::Json, false);
    }
}

#[test]
fn responses_in_both_encodings() {
    assert_eq!(encode_response(&Mapped::default(), Encoding::Json), b"{}");
    assert!(encode_response(&Mapped::default(), Encoding::Protobuf).is_empty());
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.operation.name", "chat"),
            i("gen_ai.usage.input_tokens", -1),
        ],
    )]);
    let json: serde_json::Value =
        serde_json::from_slice(&encode_response(&mapped, Encoding::Json)).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1");
    let protobuf = encode_response(&mapped, Encoding::Protobuf);
    let decoded =
        <ExportTraceServiceResponse as prost::Message>::decode(protobuf.as_slice()).unwrap();
    assert_eq!(decoded.partial_success.map(|p| p.rejected_spans), Some(1));
}

#[test]
fn partial_success_lists_the_first_rejections() {
    let spans = (1..=15u64)
        .map(|id| {
            span(
                id,
                0,
                0,
                vec![
                    s("gen_ai.operation.name", "chat"),
                    i("gen_ai.usage.input_tokens", -1),
                ],
            )
        })
        .collect();
    let (count, message) = partial_success(&map(spans)).unwrap();
    assert_eq!(count, 15);
    assert!(
        message.starts_with("15 LLM spans rejected; span 0000000000000001"),
        "{message}"
    );
    assert!(message.ends_with("; and 5 more"), "{message}");
}

#[test]
fn content_types() {
    assert_eq!(
        Encoding::from_content_type("application/x-protobuf"),
        Some(Encoding::Protobuf)
    );
    assert_eq!(
        Encoding::from_content_type("application/json; charset=utf-8"),
        Some(Encoding::Json)
    );
    assert_eq!(
        Encoding::from_content_type("Application/JSON"),
        Some(Encoding::Json)
    );
    assert_eq!(Encoding::from_content_type("text/plain"), None);
    assert_eq!(Encoding::from_content_type(""), None);
}
