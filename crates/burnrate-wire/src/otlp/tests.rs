//! Mapping tests: one per convention and rule, on requests built here. The structure rules
//! (agent runs, tools, nested calls) are tested in `tree/tests.rs`, decoding in
//! `decode/tests.rs`, real exporter output in `tests/otlp_fixtures.rs`.

use burnrate_model::dimension::{Dimension, Field};
use burnrate_model::{Layers, Status, UsageEvent};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status as SpanStatus,
};

use super::*;

pub(super) const TRACE: u128 = 0x5b8e_fff7_9803_8103_d269_b633_813f_c60c;
pub(super) const T0: u64 = 1_795_450_947_508_000_000;

pub(super) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub(super) fn s(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

pub(super) fn i(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

/// A span of `TRACE` with id `id` under `parent` (0: root), starting `at` ms after T0 and
/// lasting 100 ms.
pub(super) fn span(id: u64, parent: u64, at: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: "span".into(),
        start_time_unix_nano: T0 + at * 1_000_000,
        end_time_unix_nano: T0 + (at + 100) * 1_000_000,
        attributes,
        ..Span::default()
    }
}

pub(super) fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

pub(super) fn mapping() -> OtlpMapping {
    OtlpMapping {
        prefixes: vec!["digitalapplied.".into()],
        ..OtlpMapping::default()
    }
}

pub(super) fn map(spans: Vec<Span>) -> Mapped {
    map_request(&request(Vec::new(), spans), &mapping())
}

/// The single event of a request, checked valid.
pub(super) fn only(mapped: &Mapped) -> &UsageEvent {
    assert_eq!(mapped.events.len(), 1, "{mapped:#?}");
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let event = &mapped.events[0];
    event.validate().unwrap();
    event
}

pub(super) fn chat(model: &str, input: i64, output: i64) -> Vec<KeyValue> {
    vec![
        s("gen_ai.operation.name", "chat"),
        s("gen_ai.provider.name", "openai"),
        s("gen_ai.request.model", model),
        s("gen_ai.response.model", model),
        i("gen_ai.usage.input_tokens", input),
        i("gen_ai.usage.output_tokens", output),
        i("gen_ai.usage.cache_read.input_tokens", 0),
    ]
}

/// An `execute_tool` span's attributes.
pub(super) fn tool(name: &str) -> Vec<KeyValue> {
    vec![
        s("gen_ai.operation.name", "execute_tool"),
        s("gen_ai.tool.name", name),
        s("gen_ai.tool.call.arguments", r#"{"id": 7}"#),
    ]
}

#[test]
fn genai_current_names() {
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "Anthropic"),
            s("gen_ai.request.model", "claude-sonnet-4-5"),
            s("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
            i("gen_ai.usage.input_tokens", 12_480),
            i("gen_ai.usage.output_tokens", 2_311),
            i("gen_ai.usage.cache_read.input_tokens", 9_800),
            i("gen_ai.usage.cache_creation.input_tokens", 500),
            i("gen_ai.usage.cache_write.input_tokens", 600),
            i("gen_ai.usage.reasoning.output_tokens", 1_000),
            s("gen_ai.conversation.id", "conv-9"),
            s("gen_ai.agent.name", "triage"),
            s("openai.response.service_tier", "flex"),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(event.provider, "anthropic", "lowercased as given");
    assert_eq!(event.model, "claude-sonnet-4-5-20250929");
    assert_eq!(event.requested_model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(event.operation.as_deref(), Some("chat"));
    assert_eq!(event.usage.input_tokens, 12_480);
    assert_eq!(event.usage.cache_read_tokens, 9_800);
    assert_eq!(
        event.usage.cache_write_tokens, 600,
        "cache_write wins over cache_creation"
    );
    assert_eq!(event.usage.output_tokens, 2_311);
    assert_eq!(event.usage.reasoning_tokens, 1_000);
    assert_eq!(event.session_id.as_deref(), Some("conv-9"));
    assert_eq!(event.agent_name.as_deref(), Some("triage"));
    assert_eq!(event.service_tier.as_deref(), Some("flex"));
    assert_eq!(event.source.as_deref(), Some(SOURCE));
    assert_eq!(event.ts.timestamp_nanos_opt(), Some(T0 as i64));
    assert_eq!(event.duration_ms, Some(100));
    assert_eq!(event.status, Status::Ok);
    assert!(event.labels.is_empty(), "{:?}", event.labels);
}

#[test]
fn genai_deprecated_names() {
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.system", "aws.bedrock"),
            s("gen_ai.request.model", "anthropic.claude-3-haiku"),
            i("gen_ai.usage.prompt_tokens", 900),
            i("gen_ai.usage.completion_tokens", 90),
            i("gen_ai.usage.cache_read_input_tokens", 100),
            i("gen_ai.usage.cache_creation_input_tokens", 50),
            s("llm.request.type", "chat"),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(event.provider, "aws.bedrock");
    assert_eq!(
        event.model, "anthropic.claude-3-haiku",
        "request model when no response model"
    );
    assert_eq!(event.requested_model, None);
    assert_eq!(event.operation.as_deref(), Some("chat"));
    assert_eq!(
        (event.usage.input_tokens, event.usage.output_tokens),
        (900, 90)
    );
    assert_eq!(
        (
            event.usage.cache_read_tokens,
            event.usage.cache_write_tokens
        ),
        (100, 50)
    );
    // The current names win over the deprecated ones when a span carries both.
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.system", "azure.ai.openai"),
            s("gen_ai.response.model", "gpt-4.1"),
            i("gen_ai.usage.input_tokens", 10),
            i("gen_ai.usage.prompt_tokens", 99),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(
        (event.provider.as_str(), event.usage.input_tokens),
        ("openai", 10)
    );
}

#[test]
fn openinference() {
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("openinference.span.kind", "LLM"),
            s("llm.system", "openai"),
            s("llm.provider", "azure"),
            s("llm.model_name", "gpt-4.1-2025-04-14"),
            i("llm.token_count.prompt", 1_144),
            i("llm.token_count.completion", 2),
            i("llm.token_count.total", 1_146),
            i("llm.token_count.prompt_details.cache_read", 1_024),
            i("llm.token_count.prompt_details.cache_write", 20),
            i("llm.token_count.completion_details.reasoning", 1),
            s("session.id", "s-9"),
            s("user.id", "u_8814"),
            s(
                "metadata",
                r#"{"tenant_id": "acme-corp", "feature": "inbox", "task_id": 77, "other": [1]}"#,
            ),
            s(
                "llm.output_messages.0.message.tool_calls.1.tool_call.function.name",
                "lookup",
            ),
            s(
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                "search",
            ),
            s(
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                r#"{"q": 1, "a": 2}"#,
            ),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(
        event.provider, "azure",
        "llm.provider (who served) before llm.system"
    );
    assert_eq!(event.model, "gpt-4.1-2025-04-14");
    assert_eq!(event.operation, None);
    assert_eq!(
        event.usage.input_tokens, 1_144,
        "prompt already includes the cache"
    );
    assert_eq!(event.usage.cache_read_tokens, 1_024);
    assert_eq!(event.usage.cache_write_tokens, 20);
    assert_eq!(
        (event.usage.output_tokens, event.usage.reasoning_tokens),
        (2, 1)
    );
    assert_eq!(event.session_id.as_deref(), Some("s-9"));
    assert_eq!(event.user_id.as_deref(), Some("u_8814"));
    assert_eq!(event.tenant_id.as_deref(), Some("acme-corp"));
    assert_eq!(event.feature.as_deref(), Some("inbox"));
    assert_eq!(event.task_id.as_deref(), Some("77"));
    assert_eq!(event.tool_calls, 2);
    let names: Vec<_> = event.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["search", "lookup"]);
    assert_eq!(
        event.tools[0].args_hash.as_deref(),
        Some(crate::tools::args_hash(r#"{"a":2,"q":1}"#).as_str()),
        "arguments hashed as the gateway hashes them"
    );
    assert_eq!(event.tools[1].args_hash, None);

    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("openinference.span.kind", "EMBEDDING"),
            s("llm.system", "openai"),
            s("llm.model_name", "text-embedding-3-small"),
            i("llm.token_count.prompt", 8),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(event.operation.as_deref(), Some("embeddings"));
    assert!(
        event.labels.is_empty(),
        "no cache detail is expected of embeddings"
    );
}

#[test]
fn prefix_attribution_and_resource_mapping() {
    let resource = vec![
        s("service.name", "support-bot"),
        s("deployment.environment", "old-name"),
        s("deployment.environment.name", "production"),
        s("digitalapplied.tenant_id", "from-resource"),
        s("digitalapplied.route", "/api/triage"),
    ];
    let mut attributes = chat("gpt-4.1", 100, 7);
    attributes.extend([
        s("digitalapplied.tenant_id", "acme-corp"),
        i("digitalapplied.user_id", 8814),
        s("digitalapplied.feature", "inbox-triage"),
        s("digitalapplied.task_id", "t-77"),
        s("digitalapplied.effort", "high"),
        s("digitalapplied.prompt_version", "v2.3"),
        s("digitalapplied.session_id", "explicit-session"),
        s("session.id", "convention-session"),
        s("digitalapplied.label.team", "core"),
        i("digitalapplied.prompt_tokens", 60),
        i("digitalapplied.tool_tokens", 30),
        i("digitalapplied.memory_tokens", 10),
        s("other.tenant_id", "not-a-prefix"),
    ]);
    let mut table = mapping();
    table
        .resource_dimensions
        .push(("service.name".into(), Dimension::Field(Field::Feature)));
    table.validate().unwrap();
    let mapped = map_request(&request(resource, vec![span(1, 0, 0, attributes)]), &table);
    let event = only(&mapped);
    assert_eq!(
        event.tenant_id.as_deref(),
        Some("acme-corp"),
        "span beats resource"
    );
    assert_eq!(
        event.user_id.as_deref(),
        Some("8814"),
        "integers are written out"
    );
    assert_eq!(
        event.feature.as_deref(),
        Some("inbox-triage"),
        "span beats the resource table"
    );
    assert_eq!(event.task_id.as_deref(), Some("t-77"));
    assert_eq!(event.effort.as_deref(), Some("high"));
    assert_eq!(event.prompt_version.as_deref(), Some("v2.3"));
    assert_eq!(
        event.session_id.as_deref(),
        Some("explicit-session"),
        "prefix beats convention"
    );
    assert_eq!(
        event.route.as_deref(),
        Some("/api/triage"),
        "resource prefix attribute"
    );
    assert_eq!(
        event.deployment.as_deref(),
        Some("production"),
        "first table entry present"
    );
    assert_eq!(event.labels.get("team").map(String::as_str), Some("core"));
    assert_eq!(
        event.labels.get("service").map(String::as_str),
        Some("support-bot")
    );
    assert_eq!(
        event.layers,
        Some(Layers {
            prompt: 60,
            tool: 30,
            memory: 10,
            response: 7
        })
    );

    // Layers that do not add up to the input are dropped, and the event says so.
    let mut attributes = chat("gpt-4.1", 100, 7);
    attributes.push(i("digitalapplied.prompt_tokens", 60));
    let event = map(vec![span(1, 0, 0, attributes)]).events.remove(0);
    assert_eq!(event.layers, None);
    assert_eq!(
        event.labels.get(ADJUSTED_LABEL).map(String::as_str),
        Some("layers_dropped")
    );

    // The service name as a feature when the span does not say.
    let mapped = map_request(
        &request(
            vec![s("service.name", "support-bot")],
            vec![span(1, 0, 0, chat("m", 1, 1))],
        ),
        &table,
    );
    assert_eq!(only(&mapped).feature.as_deref(), Some("support-bot"));
}

#[test]
fn mapping_table_is_validated() {
    let mut table = mapping();
    table
        .resource_dimensions
        .push(("x".into(), Dimension::Field(Field::Model)));
    let error = table.validate().unwrap_err();
    assert_eq!(error.field, "otel_resource[3]");
    assert!(error.reason.contains("`model`"), "{error}");
    table.resource_dimensions.pop();
    table
        .resource_dimensions
        .push(("x".into(), Dimension::Label("a b".into())));
    assert!(table.validate().unwrap_err().reason.contains("label.a b"));
    table.resource_dimensions.pop();
    table.prefixes.push(String::new());
    assert_eq!(table.validate().unwrap_err().field, "otel_prefixes[1]");
}

#[test]
fn parts_exceeding_their_whole() {
    // Anthropic's exclusive input passed through; Gemini's exclusive output likewise.
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.provider.name", "anthropic"),
            s("gen_ai.response.model", "claude-sonnet-4-5"),
            i("gen_ai.usage.input_tokens", 10),
            i("gen_ai.usage.cache_read.input_tokens", 9_800),
            i("gen_ai.usage.cache_creation.input_tokens", 200),
            i("gen_ai.usage.output_tokens", 50),
            i("gen_ai.usage.reasoning.output_tokens", 70),
        ],
    )]);
    let event = only(&mapped);
    assert_eq!(event.usage.input_tokens, 10_010);
    assert_eq!(event.usage.uncached_input_tokens(), 10);
    assert_eq!(event.usage.output_tokens, 120);
    assert_eq!(
        event.labels.get(ADJUSTED_LABEL).map(String::as_str),
        Some("input_excluded_cache,output_excluded_reasoning")
    );
    // A whole raised past the plausible by its parts is refused, naming it.
    let mapped = map(vec![span(
        1,
        0,
        0,
        vec![
            s("gen_ai.provider.name", "anthropic"),
            s("gen_ai.response.model", "claude-sonnet-4-5"),
            i("gen_ai.usage.input_tokens", 10),
            i("gen_ai.usage.cache_read.input_tokens", 1_000_000_000_000),
            i(
                "gen_ai.usage.cache_creation.input_tokens",
                1_000_000_000_000,
            ),
        ],
    )]);
    assert!(mapped.events.is_empty());
    assert_eq!(mapped.rejected[0].field, "usage.input_tokens");
    // Parts within their whole are left alone.
    let event = map(vec![span(1, 0, 0, chat("m", 100, 10))])
        .events
        .remove(0);
    assert!(!event.labels.contains_key(ADJUSTED_LABEL));
}

#[test]
fn missing_model_or_usage_is_recorded_and_marked() {
    let mapped = map(vec![
        span(
            1,
            0,
            0,
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", "openai"),
            ],
        ),
        span(
            2,
            0,
            0,
            vec![
                s("openinference.span.kind", "LLM"),
                i("llm.token_count.prompt", 5),
            ],
        ),
        span(
            3,
            0,
            0,
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.response.model", "gpt-4.1"),
                i("gen_ai.usage.input_tokens", 1_144),
                i("gen_ai.usage.output_tokens", 2),
            ],
        ),
    ]);
    assert_eq!(mapped.events.len(), 3);
    let missing: Vec<_> = mapped
        .events
        .iter()
        .map(|e| {
            e.validate().unwrap();
            e.labels.get(MISSING_LABEL).map(String::as_str)
        })
        .collect();
    assert_eq!(
        missing,
        [
            Some("model,usage"),
            Some("model,provider,cache"),
            Some("cache")
        ]
    );
    assert_eq!(mapped.events[0].model, UNKNOWN);
    assert_eq!(mapped.events[1].provider, UNKNOWN);
    assert_eq!(mapped.events[0].usage, burnrate_model::Usage::default());
}

#[test]
fn spans_that_are_not_calls_are_ignored() {
    let mapped = map(vec![
        span(
            1,
            0,
            0,
            vec![s("http.request.method", "POST"), s("url.full", "https://x")],
        ),
        span(2, 1, 0, vec![s("db.system", "postgresql")]),
        span(
            3,
            1,
            0,
            vec![
                s("openinference.span.kind", "CHAIN"),
                i("llm.token_count.prompt", 500),
            ],
        ),
        span(
            4,
            1,
            0,
            vec![
                s("openinference.span.kind", "AGENT"),
                i("llm.token_count.prompt", 500),
            ],
        ),
        span(
            5,
            1,
            0,
            vec![
                s("gen_ai.operation.name", "create_agent"),
                s("gen_ai.request.model", "m"),
            ],
        ),
        span(
            6,
            1,
            0,
            vec![
                s("gen_ai.operation.name", "invoke_agent"),
                i("gen_ai.usage.input_tokens", 9),
            ],
        ),
        span(7, 1, 0, vec![s("gen_ai.request.model", "m")]),
        span(8, 1, 0, Vec::new()),
    ]);
    assert!(mapped.events.is_empty(), "{:?}", mapped.events);
    assert!(mapped.rejected.is_empty());
    assert_eq!(mapped.ignored_spans, 8);
    assert_eq!(partial_success(&mapped), None);
}

#[test]
fn error_status() {
    let mut failed = span(
        1,
        0,
        0,
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4.1"),
            s("error.type", "server_error"),
        ],
    );
    failed.status = Some(SpanStatus {
        code: 2,
        message: "Error code: 500\nTraceback ...".into(),
    });
    let mut typed = failed.clone();
    typed.span_id = 2u64.to_be_bytes().to_vec();
    typed.status = Some(SpanStatus {
        code: 2,
        message: String::new(),
    });
    let mut ok = span(3, 0, 0, chat("m", 1, 1));
    ok.status = Some(SpanStatus {
        code: 1,
        message: "fine".into(),
    });
    let mapped = map(vec![failed, typed, ok]);
    let statuses: Vec<_> = mapped
        .events
        .iter()
        .map(|e| (e.status, e.error.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            (Status::Error, Some("Error code: 500 Traceback ...")),
            (Status::Error, Some("server_error")),
            (Status::Ok, None),
        ]
    );
    mapped.events.iter().for_each(|e| e.validate().unwrap());
}

#[test]
fn bad_attribute_types() {
    let with = |extra: KeyValue| {
        let mut attributes = chat("m", 1, 1);
        attributes.retain(|a| a.key != extra.key);
        attributes.push(extra);
        span(1, 0, 0, attributes)
    };
    // Accepted: numeric strings and integral doubles.
    let mapped = map(vec![with(s("gen_ai.usage.input_tokens", "12"))]);
    assert_eq!(only(&mapped).usage.input_tokens, 12);
    let mapped = map(vec![with(kv(
        "gen_ai.usage.input_tokens",
        Value::DoubleValue(1144.0),
    ))]);
    assert_eq!(only(&mapped).usage.input_tokens, 1144);

    let cases = [
        (
            s("gen_ai.usage.input_tokens", "twelve"),
            "gen_ai.usage.input_tokens",
            "not a number",
        ),
        (
            i("gen_ai.usage.output_tokens", -5),
            "gen_ai.usage.output_tokens",
            "negative",
        ),
        (
            i("gen_ai.usage.input_tokens", 2_000_000_000_000),
            "gen_ai.usage.input_tokens",
            "plausible",
        ),
        (
            kv("gen_ai.usage.input_tokens", Value::DoubleValue(1.5)),
            "gen_ai.usage.input_tokens",
            "whole",
        ),
        (
            kv("gen_ai.usage.input_tokens", Value::DoubleValue(f64::NAN)),
            "gen_ai.usage.input_tokens",
            "whole",
        ),
        (
            kv("gen_ai.usage.input_tokens", Value::BoolValue(true)),
            "gen_ai.usage.input_tokens",
            "boolean",
        ),
        (
            kv(
                "gen_ai.response.model",
                Value::ArrayValue(ArrayValue { values: Vec::new() }),
            ),
            "gen_ai.response.model",
            "an array",
        ),
        (
            kv("digitalapplied.tenant_id", Value::BytesValue(vec![1])),
            "digitalapplied.tenant_id",
            "bytes",
        ),
        (
            s("digitalapplied.label.a b", "x"),
            "digitalapplied.label.a b",
            "label names",
        ),
        (
            i("digitalapplied.tool_tokens", -1),
            "digitalapplied.tool_tokens",
            "negative",
        ),
    ];
    for (attribute, field, reason) in cases {
        let mapped = map(vec![
            with(attribute.clone()),
            span(2, 0, 0, chat("m", 1, 1)),
        ]);
        assert_eq!(
            mapped.events.len(),
            1,
            "{attribute:?}: the good span is kept"
        );
        assert_eq!(mapped.rejected.len(), 1, "{attribute:?}");
        let rejected = &mapped.rejected[0];
        assert_eq!(rejected.field, field);
        assert!(
            rejected.reason.contains(reason),
            "{attribute:?}: {}",
            rejected.reason
        );
        assert_eq!(rejected.span_id, "0000000000000001");
        let (count, message) = partial_success(&mapped).unwrap();
        assert_eq!(count, 1);
        assert!(
            message.contains(field) && message.contains("0000000000000001"),
            "{message}"
        );
    }
    // A wrongly typed attribute on a span that is not a call is skipped, not fatal.
    let mapped = map(vec![
        span(
            1,
            0,
            0,
            vec![kv("digitalapplied.tenant_id", Value::BytesValue(vec![1]))],
        ),
        span(2, 1, 0, chat("m", 1, 1)),
    ]);
    assert_eq!(only(&mapped).tenant_id, None);
}

#[test]
fn bad_ids_and_times_are_rejected() {
    let mut short = span(1, 0, 0, chat("m", 1, 1));
    short.span_id = vec![1, 2, 3];
    let mut zero = span(2, 0, 0, chat("m", 1, 1));
    zero.trace_id = vec![0; 16];
    let mut unset = span(3, 0, 0, chat("m", 1, 1));
    unset.start_time_unix_nano = 0;
    let mut backwards = span(4, 0, 0, chat("m", 1, 1));
    backwards.end_time_unix_nano = 1;
    let mapped = map(vec![short, zero, unset, backwards]);
    let fields: Vec<_> = mapped.rejected.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(fields, ["spanId", "traceId", "startTimeUnixNano"]);
    assert_eq!(mapped.rejected[0].span_id, "010203");
    assert!(
        mapped.rejected[1].reason.contains("all zero"),
        "{:?}",
        mapped.rejected[1]
    );
    assert_eq!(mapped.events.len(), 1);
    assert_eq!(
        mapped.events[0].duration_ms, None,
        "an end before the start is no duration"
    );
}

#[test]
fn event_ids_are_stable_per_span() {
    let spans = vec![
        span(1, 0, 0, chat("m", 1, 1)),
        span(2, 0, 0, chat("m", 1, 1)),
    ];
    let first = map(spans.clone());
    let again = map(spans);
    let ids: Vec<_> = first.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, again.events.iter().map(|e| e.id).collect::<Vec<_>>());
    assert_ne!(ids[0], ids[1]);
    let id = ids[0].unwrap();
    assert_eq!(id.get_version_num(), 7);
    let (seconds, _) = id.get_timestamp().unwrap().to_unix();
    assert_eq!(
        seconds,
        T0 / 1_000_000_000,
        "the UUID's time is the span's start"
    );
}

#[test]
fn text_is_cleaned_to_what_the_event_accepts() {
    let long = "x".repeat(5000);
    let mut attributes = chat("m", 1, 1);
    attributes.push(s("digitalapplied.feature", &long));
    attributes.push(s("digitalapplied.tenant_id", "acme\u{0}\u{85}corp"));
    attributes.push(s("digitalapplied.user_id", "   "));
    let event = map(vec![span(1, 0, 0, attributes)]).events.remove(0);
    event.validate().unwrap();
    assert_eq!(
        event.feature.map(|f| f.len()),
        Some(burnrate_model::event::MAX_TEXT_LEN)
    );
    assert_eq!(event.tenant_id.as_deref(), Some("acme  corp"));
    assert_eq!(event.user_id, None, "blank is nothing");

    // Tool names too (found by fuzzing): control characters, and blank names.
    let mut attributes = chat("m", 1, 1);
    attributes.push(s(
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
        "a\u{1}b",
    ));
    attributes.push(s(
        "llm.output_messages.0.message.tool_calls.1.tool_call.function.name",
        "  ",
    ));
    let event = map(vec![
        span(1, 0, 0, attributes),
        span(2, 0, 200, tool(" \t ")),
    ])
    .events
    .remove(0);
    event.validate().unwrap();
    let names: Vec<_> = event.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a b", crate::tools::UNNAMED_TOOL]);
}
