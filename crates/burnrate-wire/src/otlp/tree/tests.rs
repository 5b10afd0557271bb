//! Structure tests: agent runs and depth, inherited attribution, tool calls, nested calls,
//! and the bounds on parent chains.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::super::map_request;
use super::super::tests::{TRACE, chat, i, map, mapping, only, request, s, span, tool};

/// An `invoke_agent` span's attributes.
fn agent(name: &str) -> Vec<KeyValue> {
    vec![
        s("gen_ai.operation.name", "invoke_agent"),
        s("gen_ai.agent.name", name),
        // An agent span's own usage sums its calls: never counted.
        i("gen_ai.usage.input_tokens", 1_000_000),
    ]
}

#[test]
fn agent_run_structure() {
    // coordinator (10) ── chat (11), then execute_tool search (12) and crm (13)
    //                  ├─ chat (14, after the tools)
    //                  └─ invoke_agent researcher (20) ── chat (21), then execute_tool fetch (22)
    let mapped = map(vec![
        span(11, 10, 0, chat("m", 100, 10)),
        span(12, 10, 150, tool("search")),
        span(13, 10, 160, tool("crm")),
        span(14, 10, 300, chat("m", 100, 10)),
        span(21, 20, 500, chat("m", 100, 10)),
        span(22, 20, 650, tool("fetch")),
        span(20, 10, 400, agent("researcher")),
        span(10, 0, 0, agent("coordinator")),
    ]);
    assert_eq!(mapped.events.len(), 3, "{mapped:#?}");
    assert_eq!(mapped.ignored_spans, 5, "two agents and three tools");
    assert_eq!(mapped.unattached_tool_spans, 0);
    let run = format!("{TRACE:032x}");
    let sub_run = format!("{TRACE:032x}-{:016x}", 20);
    let [first, second, sub] = [&mapped.events[0], &mapped.events[1], &mapped.events[2]];
    assert_eq!(first.agent_run_id.as_deref(), Some(run.as_str()));
    assert_eq!((first.span_depth, first.tool_calls), (Some(0), 2));
    let names: Vec<_> = first.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["search", "crm"]);
    assert_eq!(
        first.tools[0].args_hash.as_deref(),
        Some(crate::tools::args_hash(r#"{"id":7}"#).as_str())
    );
    assert_eq!(
        (second.span_depth, second.tool_calls),
        (Some(0), 0),
        "tools came before it"
    );
    assert_eq!(sub.agent_run_id.as_deref(), Some(sub_run.as_str()));
    assert_eq!(sub.span_depth, Some(1));
    assert_eq!(sub.tool_calls, 1);
    let total: u64 = mapped.events.iter().map(|e| e.usage.input_tokens).sum();
    assert_eq!(total, 300, "the agents' own usage is not counted");
}

#[test]
fn tool_spans_under_a_call_and_without_their_call() {
    let mapped = map(vec![
        span(1, 0, 0, chat("m", 1, 1)),
        span(2, 1, 10, tool("inside-the-call")),
        span(3, 99, 10, tool("call-in-another-request")),
    ]);
    let event = only(&mapped);
    assert_eq!(event.tool_calls, 1);
    assert_eq!(event.tools[0].name, "inside-the-call");
    assert_eq!(mapped.unattached_tool_spans, 1);
}

#[test]
fn parent_run_and_agent_name() {
    let mapped = map(vec![
        span(10, 0, 0, agent("coordinator")),
        span(11, 10, 10, chat("m", 1, 1)),
        span(20, 10, 20, agent("researcher")),
        span(30, 20, 30, {
            let mut a = agent("reader");
            a.push(s("digitalapplied.agent_run_id", "named-run"));
            a
        }),
        span(31, 30, 40, chat("m", 1, 1)),
        span(32, 31, 50, vec![s("http.method", "GET")]),
    ]);
    assert_eq!(mapped.events.len(), 2);
    let run = format!("{TRACE:032x}");
    let top = &mapped.events[0];
    assert_eq!(top.agent_name.as_deref(), Some("coordinator"));
    assert_eq!(top.parent_run_id, None);
    let deep = &mapped.events[1];
    assert_eq!(deep.agent_name.as_deref(), Some("reader"), "nearest agent");
    assert_eq!(
        deep.agent_run_id.as_deref(),
        Some("named-run"),
        "an attribute names the run"
    );
    assert_eq!(
        deep.parent_run_id,
        Some(format!("{run}-{:016x}", 20)),
        "the researcher's sub-run spawned it"
    );
    assert_eq!(deep.span_depth, Some(2));

    // A run named above the top agent names the top agent's run; its sub-agent points to it.
    let mapped = map(vec![
        span(
            1,
            0,
            0,
            vec![
                s("digitalapplied.agent_run_id", "run-42"),
                s("digitalapplied.tenant_id", "acme"),
            ],
        ),
        span(10, 1, 0, agent("coordinator")),
        span(11, 10, 10, chat("m", 1, 1)),
        span(20, 10, 20, agent("researcher")),
        span(21, 20, 30, chat("m", 1, 1)),
    ]);
    let [top, sub] = [&mapped.events[0], &mapped.events[1]];
    assert_eq!(top.agent_run_id.as_deref(), Some("run-42"));
    assert_eq!(sub.parent_run_id.as_deref(), Some("run-42"));
    assert_eq!(sub.agent_name.as_deref(), Some("researcher"));
    assert_eq!(
        sub.tenant_id.as_deref(),
        Some("acme"),
        "inherited from an ancestor"
    );

    // Without its ancestors (another request), a sub-agent's call folds into the trace's run.
    let mapped = map(vec![span(21, 20, 30, chat("m", 1, 1))]);
    let event = only(&mapped);
    assert_eq!(event.agent_run_id, Some(run));
    assert_eq!(
        (event.span_depth, event.agent_name.as_deref()),
        (Some(0), None)
    );
}

#[test]
fn nested_call_spans_count_once() {
    let outer = vec![
        s("openinference.span.kind", "LLM"),
        s("llm.model_name", "gpt-4.1"),
        i("llm.token_count.prompt", 100),
        i("llm.token_count.completion", 5),
        s("session.id", "from-framework"),
    ];
    let mapped = map(vec![
        span(2, 1, 10, chat("gpt-4.1-2025-04-14", 100, 5)),
        span(1, 0, 0, outer),
    ]);
    let event = only(&mapped);
    assert_eq!(mapped.nested_call_spans, 1);
    assert_eq!(
        event.model, "gpt-4.1-2025-04-14",
        "the inner (SDK) span is kept"
    );
    assert_eq!(
        event.session_id.as_deref(),
        Some("from-framework"),
        "outer attribution kept"
    );
}

#[test]
fn deep_and_cyclic_parent_chains_are_bounded() {
    let mut spans: Vec<Span> = (1..=10_000u64)
        .map(|id| span(id, id + 1, 0, vec![s("x", "y")]))
        .collect();
    spans.push(span(20_000, 1, 0, chat("m", 1, 1)));
    // A cycle: 30_001 → 30_002 → 30_001.
    spans.push(span(30_001, 30_002, 0, chat("m", 1, 1)));
    spans.push(span(30_002, 30_001, 0, chat("m", 1, 1)));
    let mapped = map(spans);
    assert_eq!(mapped.events.len() as u64 + mapped.nested_call_spans, 3);
    assert_eq!(mapped.events[0].span_depth, Some(0));
}

#[test]
fn ten_thousand_spans() {
    let mut spans = Vec::new();
    for n in 0..5_000u64 {
        let root = 1 + n * 2;
        spans.push(span(root, 0, n, agent("a")));
        spans.push(span(root + 1, root, n, chat("gpt-4.1", 100, 10)));
    }
    let request = request(vec![s("service.name", "bench")], spans);
    let started = std::time::Instant::now();
    let mapped = map_request(&request, &mapping());
    let elapsed = started.elapsed();
    assert_eq!(mapped.events.len(), 5_000);
    assert_eq!(mapped.ignored_spans, 5_000);
    assert!(
        mapped
            .events
            .iter()
            .all(|e| e.agent_name.as_deref() == Some("a"))
    );
    assert!(
        mapped
            .events
            .iter()
            .all(|e| e.labels.get("service").map(String::as_str) == Some("bench"))
    );
    // Not a timed assert (benchmarks are programs): printed for the curious.
    println!("10,000 spans mapped in {elapsed:?}");
}
