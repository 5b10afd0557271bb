use proptest::prelude::*;

use super::*;

const CONTRACT_EXAMPLE: &str = r#"{
  "id": "01936f6e-1c2a-7b3c-8d4e-5f6a7b8c9d0e", "ts": "2026-11-20T10:00:00.123Z", "duration_ms": 812,
  "source": "gateway", "provider": "anthropic", "model": "claude-sonnet-4-6",
  "requested_model": "claude-opus-4-7", "operation": "messages", "service_tier": "standard",
  "tenant_id": "acme-corp", "user_id": "u_8814", "feature": "inbox-triage", "task_id": "t-77",
  "route": "/api/agents/triage", "agent_run_id": "run-42", "parent_run_id": null,
  "agent_name": "coordinator", "span_depth": 0, "session_id": "s-9", "deployment": "production",
  "prompt_version": "v2.3", "effort": "high", "labels": {"team": "core"},
  "usage": {"input_tokens": 12480, "cache_read_tokens": 9800, "cache_write_tokens": 0,
            "cache_write_1h_tokens": 0, "output_tokens": 2311, "reasoning_tokens": 0},
  "layers": {"prompt": 8200, "tool": 2100, "memory": 2180, "response": 2311},
  "tool_calls": 3, "tools": [{"name": "search_crm", "args_hash": "b1946ac92492d234"}],
  "status": "ok", "error": null, "outcome": null
}"#;

fn minimal(usage: &str) -> String {
    format!(
        r#"{{"ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1", "usage": {usage}}}"#
    )
}

#[test]
fn the_contract_example_parses() {
    let event = UsageEvent::from_json(CONTRACT_EXAMPLE).unwrap();
    assert_eq!(event.usage.uncached_input_tokens(), 2680);
    assert_eq!(event.labels.get("team").map(String::as_str), Some("core"));
    assert_eq!(event.tools[0].name, "search_crm");
    assert_eq!(event.status, Status::Ok);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (minimal(r#"{"input_tokens": 10, "cache_read_tokens": 11}"#), "usage.cache_read_tokens"),
        (minimal(r#"{"input_tokens": 10, "cache_read_tokens": 6, "cache_write_tokens": 6}"#), "usage.cache_write_tokens"),
        (minimal(r#"{"cache_write_tokens": 1, "cache_write_1h_tokens": 2, "input_tokens": 5}"#), "usage.cache_write_1h_tokens"),
        (minimal(r#"{"output_tokens": 1, "reasoning_tokens": 2}"#), "usage.reasoning_tokens"),
        (minimal(r#"{"input_tokens": -5}"#), "usage.input_tokens"),
        (minimal(r#"{"input_tokens": 1.5}"#), "usage.input_tokens"),
        (minimal(r#"{"input_tokens": 1, "bogus": 1}"#), "usage.bogus"),
        (minimal(r#"{"input_tokens": 1000000000001}"#), "usage.input_tokens"),
        (minimal(r#"{"output_tokens": 18446744073709551615, "reasoning_tokens": 1}"#), "usage.output_tokens"),
        (r#"{"ts": "yesterday", "provider": "openai", "model": "m", "usage": {}}"#.to_owned(), "ts"),
        (r#"{"provider": "openai", "model": "m", "usage": {}}"#.to_owned(), "ts"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "openai", "usage": {}}"#.to_owned(), "model"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "", "model": "m", "usage": {}}"#.to_owned(), "provider"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {}, "colour": 1}"#.to_owned(), "colour"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {}, "status": "fine"}"#.to_owned(), "status"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {}, "id": "nope"}"#.to_owned(), "id"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {"input_tokens": 3}, "layers": {"prompt": 1, "tool": 1, "memory": 0, "response": 0}}"#.to_owned(), "layers"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {"output_tokens": 3}, "layers": {"prompt": 0, "tool": 0, "memory": 0, "response": 1}}"#.to_owned(), "layers.response"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {}, "tenant_id": "a\u0000b"}"#.to_owned(), "tenant_id"),
        (r#"{"ts": "2026-11-20T10:00:00Z", "provider": "p", "model": "m", "usage": {}, "tools": [{"name": ""}]}"#.to_owned(), "tools[0].name"),
    ];
    for (text, field) in cases {
        let error = UsageEvent::from_json(&text).unwrap_err();
        assert_eq!(error.field, field, "{text} gave {error}");
        assert!(!error.reason.is_empty());
    }
    let error = UsageEvent::from_json("{not json").unwrap_err();
    assert!(!error.reason.is_empty());
    // Found by the `event` fuzz target: an empty key named no field, and a syntax error's
    // quoted token (`:`) was taken for a field's name.
    // A malformed key's place is named by the object it is in.
    for (text, field) in [
        (r#"{"": 1}"#, "(event)"),
        (r#"{"ts" 1}"#, "(event)"),
        (r#"{"ts": "2026-11-20T10:00:00Z",, }"#, "(event)"),
        (&minimal(r#"{"input_tokens": 1,, }"#), "usage"),
        (&minimal(r#"{"": 1}"#), "usage"),
    ] {
        let error = UsageEvent::from_json(text).unwrap_err();
        assert_eq!(error.field, field, "{text} gave {error:?}");
        assert!(!error.reason.is_empty());
    }
    assert!(UsageEvent::from_json(r#"{"ts": 1} trailing"#).is_err());
    // What a line that is not an event is, said in words rather than the parser's.
    for (text, reason) in [
        (
            "{not json",
            "not valid JSON: key must be a string (column 2)",
        ),
        (r#"{"ts": "#, "the JSON ends before the event does"),
        (r#"[{"ts": 1}]"#, "found an array: one object per event"),
        ("5", "expected a JSON object (an event)"),
        ("\u{feff}{}", "byte-order mark"),
    ] {
        let error = UsageEvent::from_json(text).unwrap_err();
        assert!(error.reason.contains(reason), "{text} gave {error}");
    }
    assert_eq!(
        UsageEvent::from_json(r#"{"ts": "#).unwrap_err().field,
        "(event)"
    );
}

#[test]
fn missing_ids_are_deterministic_v7() {
    let text = minimal("{}");
    let mut first = UsageEvent::from_json(&text).unwrap();
    let mut second = first.clone();
    let id = first.ensure_id(text.as_bytes());
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(second.ensure_id(text.as_bytes()), id);
    let mut other = UsageEvent::from_json(&text).unwrap();
    assert_ne!(other.ensure_id(b"something else"), id);
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9_./ -]{0,23}"
}

fn event_strategy() -> impl Strategy<Value = UsageEvent> {
    let usage = (0u64..1_000_000, 0u64..1_000_000, 0u64..100_000, 0u64..100).prop_flat_map(
        |(input, output, read_max, _)| {
            (Just(input), Just(output), 0..=input.min(read_max))
                .prop_flat_map(|(input, output, read)| {
                    (
                        Just(input),
                        Just(output),
                        Just(read),
                        0..=(input - read),
                        0..=output,
                    )
                })
                .prop_flat_map(|(input, output, read, write, reasoning)| {
                    (0..=write).prop_map(move |write_1h| Usage {
                        input_tokens: input,
                        cache_read_tokens: read,
                        cache_write_tokens: write,
                        cache_write_1h_tokens: write_1h,
                        output_tokens: output,
                        reasoning_tokens: reasoning,
                    })
                })
        },
    );
    let dims = proptest::collection::vec(proptest::option::of(text()), 16);
    let labels = proptest::collection::btree_map("[a-z]{1,8}", text(), 0..3);
    let tools = proptest::collection::vec(
        (text(), proptest::option::of("[0-9a-f]{16}"))
            .prop_map(|(name, args_hash)| ToolCall { name, args_hash }),
        0..3,
    );
    let outcome = proptest::option::of(
        (text(), any::<bool>()).prop_map(|(name, success)| Outcome { name, success }),
    );
    (
        usage,
        dims,
        labels,
        tools,
        outcome,
        (
            0i64..4_000_000_000_000,
            any::<u128>(),
            proptest::option::of(0u64..1_000_000),
        ),
        (
            proptest::option::of(0u32..8),
            0u32..50,
            prop_oneof![Just(Status::Ok), Just(Status::Error), Just(Status::Blocked)],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                usage,
                d,
                labels,
                tools,
                outcome,
                (millis, id, duration_ms),
                (span_depth, tool_calls, status, with_layers),
            )| {
                let layers = with_layers.then(|| Layers {
                    prompt: usage.input_tokens / 2,
                    tool: usage.input_tokens / 4,
                    memory: usage.input_tokens - usage.input_tokens / 2 - usage.input_tokens / 4,
                    response: usage.output_tokens,
                });
                UsageEvent {
                    id: Some(uuid::Uuid::from_u128(id)),
                    ts: chrono::DateTime::from_timestamp_millis(millis).unwrap(),
                    duration_ms,
                    source: d[0].clone(),
                    provider: "openai".into(),
                    model: "gpt-4.1".into(),
                    requested_model: d[1].clone(),
                    operation: d[2].clone(),
                    service_tier: d[3].clone(),
                    tenant_id: d[4].clone(),
                    user_id: d[5].clone(),
                    feature: d[6].clone(),
                    task_id: d[7].clone(),
                    route: d[8].clone(),
                    agent_run_id: d[9].clone(),
                    parent_run_id: d[10].clone(),
                    agent_name: d[11].clone(),
                    span_depth,
                    session_id: d[12].clone(),
                    deployment: d[13].clone(),
                    prompt_version: d[14].clone(),
                    effort: d[15].clone(),
                    labels,
                    usage,
                    layers,
                    tool_calls,
                    tools,
                    status,
                    error: None,
                    outcome,
                }
            },
        )
}

#[test]
fn fitting_raises_wholes_to_their_parts() {
    let usage = Usage {
        input_tokens: 10,
        cache_read_tokens: 8,
        cache_write_tokens: 5,
        cache_write_1h_tokens: 7,
        output_tokens: 3,
        reasoning_tokens: 4,
    }
    .fitted();
    assert_eq!(usage.cache_write_tokens, 7);
    assert_eq!(usage.input_tokens, 15);
    assert_eq!(usage.output_tokens, 4);
    assert!(usage.validate().is_ok());
    let huge = Usage {
        cache_read_tokens: u64::MAX,
        cache_write_tokens: u64::MAX,
        ..Usage::default()
    }
    .fitted();
    assert_eq!(huge.input_tokens, Usage::MAX_TOKENS);
    assert_eq!(huge.cache_read_tokens, Usage::MAX_TOKENS);
    assert!(huge.validate().is_ok());
    let past = Usage {
        input_tokens: u64::MAX,
        output_tokens: Usage::MAX_TOKENS + 1,
        reasoning_tokens: 5,
        ..Usage::default()
    }
    .fitted();
    assert_eq!(
        (past.input_tokens, past.output_tokens),
        (Usage::MAX_TOKENS, Usage::MAX_TOKENS)
    );
    assert_eq!(past.reasoning_tokens, 5);
}

proptest! {
    #[test]
    fn fitted_usage_always_validates(
        parts in proptest::array::uniform6(prop_oneof![0..100u64, any::<u64>()]),
    ) {
        let usage = Usage {
            input_tokens: parts[0],
            cache_read_tokens: parts[1],
            cache_write_tokens: parts[2],
            cache_write_1h_tokens: parts[3],
            output_tokens: parts[4],
            reasoning_tokens: parts[5],
        }
    .fitted();
        prop_assert!(usage.validate().is_ok());
    }

    #[test]
    fn any_event_round_trips_through_json(event in event_strategy()) {
        prop_assert!(event.validate().is_ok());
        let text = serde_json::to_string(&event).unwrap();
        let parsed = UsageEvent::from_json(&text).unwrap();
        prop_assert_eq!(parsed, event);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = UsageEvent::from_json(&text);
    }
}
