//! What real instrumentors export, mapped (fixtures/README.md says how each file was made).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

use burnrate_model::{Status, UsageEvent};
use burnrate_wire::otlp::{
    ADJUSTED_LABEL, Encoding, MISSING_LABEL, Mapped, OtlpMapping, decode, map_request,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/otlp");

fn mapped(file: &str) -> Mapped {
    let encoding = if file.ends_with(".json") {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    let body = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
    let request = decode(&body, encoding, false, 16 << 20).unwrap();
    let mapping = OtlpMapping {
        prefixes: vec!["digitalapplied.".into()],
        ..OtlpMapping::default()
    };
    let mapped = map_request(&request, &mapping);
    for event in &mapped.events {
        event.validate().unwrap();
    }
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    mapped
}

fn label<'a>(event: &'a UsageEvent, name: &str) -> Option<&'a str> {
    event.labels.get(name).map(String::as_str)
}

/// `opentelemetry-instrumentation-openai-v2` 2.4b0: CLIENT spans `chat {model}` with no cache
/// attribute, inside a hand-made `invoke_agent` span with `execute_tool` children.
#[test]
fn openai_v2() {
    let mapped = mapped("openai_v2.0.pb");
    assert_eq!(mapped.events.len(), 3);
    assert_eq!(
        mapped.ignored_spans, 4,
        "the agent span and three tool spans"
    );
    let [cached, tools, failed] = [&mapped.events[0], &mapped.events[1], &mapped.events[2]];

    assert_eq!(
        (cached.provider.as_str(), cached.model.as_str()),
        ("openai", "gpt-4.1-2025-04-14")
    );
    assert_eq!(cached.requested_model.as_deref(), Some("gpt-4.1"));
    assert_eq!(
        (cached.usage.input_tokens, cached.usage.output_tokens),
        (1144, 2)
    );
    // The response had 1,024 cached tokens; the span does not say, and the event says so.
    assert_eq!(cached.usage.cache_read_tokens, 0);
    assert_eq!(label(cached, MISSING_LABEL), Some("cache"));
    assert_eq!(cached.deployment.as_deref(), Some("staging"));
    assert_eq!(label(cached, "service"), Some("support-bot"));
    assert_eq!(
        cached.service_tier.as_deref(),
        Some("standard"),
        "OpenAI's \"default\""
    );
    assert_eq!(
        cached.agent_run_id.as_deref(),
        Some("cf5425af7bcd661a1134f620237726a3")
    );

    assert_eq!(tools.tool_calls, 3, "the three execute_tool spans after it");
    let names: Vec<_> = tools.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "parallel_local_search_one",
            "parallel_local_search_two",
            "parallel_local_search_three"
        ]
    );
    assert_eq!(tools.agent_name.as_deref(), Some("weather"));
    assert_eq!(
        tools.session_id.as_deref(),
        Some("conv-77"),
        "the agent's conversation"
    );
    assert_eq!(
        tools.tenant_id.as_deref(),
        Some("acme-corp"),
        "inherited from the agent span"
    );
    assert_eq!(tools.feature.as_deref(), Some("weather-chat"));

    assert_eq!(failed.status, Status::Error);
    assert_eq!(
        failed.error.as_deref(),
        Some("Error code: 500 - The server had an error")
    );
    assert_eq!(failed.model, "broken-model");
    assert_eq!(label(failed, MISSING_LABEL), Some("usage"));
}

/// `openinference-instrumentation-openai` 0.1.66: INTERNAL spans `ChatCompletion`.
#[test]
fn openinference() {
    let mapped = mapped("openinference.0.pb");
    assert_eq!(mapped.events.len(), 3);
    let [cached, tools, failed] = [&mapped.events[0], &mapped.events[1], &mapped.events[2]];
    assert_eq!(cached.model, "gpt-4.1-2025-04-14");
    assert_eq!(
        (cached.usage.input_tokens, cached.usage.cache_read_tokens),
        (1144, 1024)
    );
    assert_eq!(cached.usage.uncached_input_tokens(), 120);
    assert_eq!(label(cached, MISSING_LABEL), None);
    assert_eq!(
        (tools.usage.output_tokens, tools.usage.reasoning_tokens),
        (1497, 1408)
    );
    assert_eq!(
        tools.tool_calls, 3,
        "from the output messages and the tool spans, once"
    );
    assert!(
        tools.tools.iter().all(|t| t.args_hash.is_some()),
        "{:?}",
        tools.tools
    );
    assert_eq!(tools.agent_name.as_deref(), Some("weather"));
    assert_eq!(failed.status, Status::Error);
    assert_eq!(failed.model, "unknown");
    assert_eq!(label(failed, MISSING_LABEL), Some("model,usage"));
    assert!(
        mapped
            .events
            .iter()
            .all(|e| label(e, ADJUSTED_LABEL).is_none())
    );
}

/// The protobuf captures converted to OTLP/JSON map to the same events.
#[test]
fn json_and_protobuf_of_the_same_export() {
    for name in ["openai_v2.0", "openinference.0"] {
        assert_eq!(
            mapped(&format!("{name}.pb")),
            mapped(&format!("{name}.json")),
            "{name}"
        );
    }
}

/// The JavaScript OTLP/HTTP JSON exporter (0.223.1), batch span processor: one request.
#[test]
fn javascript_json_exporter() {
    let mapped = mapped("js_batch.0.json");
    assert_eq!(mapped.events.len(), 2);
    let chat = &mapped.events[0];
    assert_eq!(chat.provider, "anthropic");
    assert_eq!(chat.model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        (chat.usage.input_tokens, chat.usage.cache_read_tokens),
        (12480, 9800)
    );
    assert_eq!(
        chat.user_id.as_deref(),
        Some("8814"),
        "an int attribute on the agent span"
    );
    assert_eq!(chat.tool_calls, 1);
    assert_eq!(chat.deployment.as_deref(), Some("production"));
    assert_eq!(mapped.events[1].error.as_deref(), Some("Overloaded"));
}

/// The same spans with the simple span processor: one request per span, children first.
/// Each call is still recorded once with its usage; what needed the later agent span (agent
/// name, inherited tenant) and the tool count (its call went in an earlier request) is lost.
#[test]
fn one_span_per_request_loses_only_structure() {
    let requests: Vec<Mapped> = (0..4)
        .map(|i| mapped(&format!("js_simple.{i}.json")))
        .collect();
    let events: Vec<&UsageEvent> = requests.iter().flat_map(|m| &m.events).collect();
    assert_eq!(events.len(), 2);
    let batch = mapped("js_batch.0.json");
    for (alone, together) in events.iter().zip(&batch.events) {
        assert_eq!(alone.usage, together.usage);
        assert_eq!(alone.model, together.model);
        assert_eq!(alone.agent_name, None);
        assert_eq!(alone.tenant_id, None);
    }
    assert_eq!(
        events[0].feature.as_deref(),
        Some("inbox-triage"),
        "the span's own attribute"
    );
    // The trace is the run whichever request a call came in.
    assert_eq!(events[0].agent_run_id, events[1].agent_run_id);
    assert_eq!(events[0].agent_run_id.as_ref().map(String::len), Some(32));
    let unattached: u64 = requests.iter().map(|m| m.unattached_tool_spans).sum();
    assert_eq!(unattached, 1);
}

/// Inputs the fuzzers found crashes with (fixtures/fuzz): tool names with control characters
/// made events invalid.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(FIXTURES).join("fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let encoding = if path.extension().is_some_and(|e| e == "json") {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let body = std::fs::read(&path).unwrap();
        if let Ok(request) = decode(&body, encoding, false, 16 << 20) {
            let mapping = OtlpMapping {
                prefixes: vec!["digitalapplied.".into(), "x.".into()],
                ..OtlpMapping::default()
            };
            for event in map_request(&request, &mapping).events {
                event.validate().unwrap();
            }
        }
        seen += 1;
    }
    assert!(seen >= 2);
}
