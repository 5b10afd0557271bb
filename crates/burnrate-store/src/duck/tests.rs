//! Every query metric on a small hand-built data set with known answers, plus deduplication,
//! re-pricing and a property test that group costs add up to the total.

use burnrate_model::{Money, Outcome, Status, Usage, UsageEvent};
use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::query::result::{Cell, ColumnKind};
use crate::query::spec::{Bucket, Metric};

/// $1 per million input tokens and simple multiples for the other classes.
pub(super) const TEST_PRICES: &str = r#"
[[price]]
model = "test-model"
provider = "testprov"
input_cost_per_token = "0.000001"
cache_read_input_token_cost = "0.0000001"
cache_creation_input_token_cost = "0.000002"
cache_creation_input_token_cost_above_1hr = "0.000003"
output_cost_per_token = "0.00001"
output_cost_per_reasoning_token = "0.00002"
max_input_tokens = 400000
max_output_tokens = 8192
"#;

pub(super) fn ts(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn usd(text: &str) -> Cell {
    Cell::Money(text.parse::<Money>().unwrap())
}

#[allow(clippy::too_many_arguments)]
fn event(
    at: &str,
    tenant: Option<&str>,
    user: Option<&str>,
    feature: Option<&str>,
    run: Option<&str>,
    usage: [u64; 6],
    duration_ms: u64,
    status: Status,
    tool_calls: u32,
) -> UsageEvent {
    let mut event = UsageEvent::from_json(&format!(
        r#"{{"ts": "{at}", "provider": "testprov", "model": "test-model", "usage": {{}}}}"#
    ))
    .unwrap();
    event.tenant_id = tenant.map(str::to_owned);
    event.user_id = user.map(str::to_owned);
    event.feature = feature.map(str::to_owned);
    event.agent_run_id = run.map(str::to_owned);
    event.usage = Usage {
        input_tokens: usage[0],
        cache_read_tokens: usage[1],
        cache_write_tokens: usage[2],
        cache_write_1h_tokens: usage[3],
        output_tokens: usage[4],
        reasoning_tokens: usage[5],
    };
    event.duration_ms = Some(duration_ms);
    event.status = status;
    event.tool_calls = tool_calls;
    event.id = Some(uuid::Uuid::now_v7());
    event.validate().unwrap();
    event
}

/// Six calls; costs worked out by hand in the comments.
pub(super) fn hand_built() -> Vec<UsageEvent> {
    let day1 = "2026-11-20T10:00:00Z";
    let mut e1 = event(
        day1,
        Some("A"),
        Some("u1"),
        Some("F1"),
        Some("r1"),
        [1000, 500, 100, 0, 100, 0],
        100,
        Status::Ok,
        1,
    );
    // 400 × 1e-6 + 500 × 1e-7 + 100 × 2e-6 + 100 × 1e-5 = 0.00165 (naive 0.002)
    e1.labels.insert("team".into(), "core".into());
    e1.layers = Some(burnrate_model::Layers {
        prompt: 600,
        tool: 100,
        memory: 300,
        response: 100,
    });
    let mut e2 = event(
        day1,
        Some("A"),
        Some("u1"),
        Some("F1"),
        Some("r1"),
        [2000, 0, 1000, 1000, 200, 50],
        300,
        Status::Ok,
        2,
    );
    // 1000 × 1e-6 + 1000 × 3e-6 + 150 × 1e-5 + 50 × 2e-5 = 0.0065 (naive 0.004)
    e2.layers = Some(burnrate_model::Layers {
        prompt: 1500,
        tool: 0,
        memory: 500,
        response: 200,
    });
    let e3 = event(
        day1,
        Some("A"),
        Some("u2"),
        Some("F2"),
        Some("r2"),
        [100, 0, 0, 0, 10, 0],
        200,
        Status::Error,
        0,
    );
    // 100 × 1e-6 + 10 × 1e-5 = 0.0002
    let mut e4 = event(
        day1,
        Some("B"),
        Some("u3"),
        Some("F1"),
        Some("r3"),
        [10000, 9000, 0, 0, 1000, 0],
        1000,
        Status::Ok,
        0,
    );
    // 1000 × 1e-6 + 9000 × 1e-7 + 1000 × 1e-5 = 0.0119 (naive 0.02)
    e4.outcome = Some(Outcome {
        name: "ticket_resolved".into(),
        success: true,
    });
    let mut e5 = event(
        day1,
        Some("B"),
        None,
        None,
        None,
        [50, 0, 0, 0, 5, 0],
        50,
        Status::Ok,
        0,
    );
    e5.model = "mystery-model".into(); // unpriced
    let mut e6 = event(
        "2026-11-21T08:00:00Z",
        Some("A"),
        Some("u1"),
        Some("F1"),
        Some("r4"),
        [1000, 0, 0, 0, 0, 0],
        400,
        Status::Ok,
        0,
    );
    // 1000 × 1e-6 = 0.001
    e6.outcome = Some(Outcome {
        name: "ticket_resolved".into(),
        success: false,
    });
    vec![e1, e2, e3, e4, e5, e6]
}

/// Calls in October and November: the hand-built six, and the same again a month earlier
/// with their runs going on into November.
pub(super) fn two_months() -> Vec<UsageEvent> {
    let mut events = hand_built();
    let earlier: Vec<UsageEvent> = hand_built()
        .into_iter()
        .map(|mut event| {
            event.ts -= chrono::Duration::days(30);
            event.id = Some(uuid::Uuid::now_v7());
            event
        })
        .collect();
    events.extend(earlier);
    events
}

fn store_with(events: &[UsageEvent]) -> DuckStore {
    let mut store = DuckStore::open_in_memory().unwrap();
    store.import_overrides(TEST_PRICES, "test").unwrap();
    store.append(events).unwrap();
    store
}

fn spec(group_by: &[&str], metrics: &[Metric]) -> QuerySpec {
    let mut spec = QuerySpec::new(ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"));
    spec.group_by = group_by.iter().map(|d| d.parse().unwrap()).collect();
    spec.metrics = metrics.to_vec();
    spec
}

#[test]
fn every_metric_by_tenant() {
    let store = store_with(&hand_built());
    let mut query = spec(&["tenant_id"], Metric::ALL);
    query.order = Some("tenant_id:asc".parse().unwrap());
    let result = store.query(&query).unwrap();
    assert_eq!(result.rows.len(), 2);
    let a = |column: &str| result.get(0, column).unwrap().clone();
    let b = |column: &str| result.get(1, column).unwrap().clone();
    assert_eq!(a("tenant_id"), Cell::Text("A".into()));
    assert_eq!(a("requests"), Cell::Count(4));
    assert_eq!(b("requests"), Cell::Count(2));
    assert_eq!(a("cost_usd"), usd("0.00935"));
    assert_eq!(b("cost_usd"), usd("0.0119"));
    assert_eq!(a("naive_cost_usd"), usd("0.0072"));
    assert_eq!(b("naive_cost_usd"), usd("0.02"));
    assert_eq!(a("input_tokens"), Cell::Count(4100));
    assert_eq!(b("input_tokens"), Cell::Count(10050));
    assert_eq!(a("uncached_input_tokens"), Cell::Count(2500));
    assert_eq!(b("uncached_input_tokens"), Cell::Count(1050));
    assert_eq!(a("cache_read_tokens"), Cell::Count(500));
    assert_eq!(a("cache_write_tokens"), Cell::Count(1100));
    assert_eq!(a("output_tokens"), Cell::Count(310));
    assert_eq!(b("output_tokens"), Cell::Count(1005));
    assert_eq!(a("reasoning_tokens"), Cell::Count(50));
    assert_eq!(a("cache_hit_rate"), Cell::Number(500.0 / 4100.0));
    assert_eq!(b("cache_hit_rate"), Cell::Number(9000.0 / 10050.0));
    assert_eq!(a("tool_calls"), Cell::Count(3));
    assert_eq!(a("runs"), Cell::Count(3));
    assert_eq!(b("runs"), Cell::Count(1));
    // Runs of A: r2 0.0002, r4 0.001, r1 0.00815. Nearest rank: p50 → 2nd, p90 and p99 → 3rd.
    assert_eq!(a("cost_per_run_p50"), usd("0.001"));
    assert_eq!(a("cost_per_run_p90"), usd("0.00815"));
    assert_eq!(a("cost_per_run_p99"), usd("0.00815"));
    assert_eq!(a("cost_per_run_min"), usd("0.0002"));
    assert_eq!(a("cost_per_run_max"), usd("0.00815"));
    assert_eq!(a("run_cost_spread"), Cell::Number(40.75));
    assert_eq!(b("cost_per_run_p50"), usd("0.0119"));
    assert_eq!(a("error_rate"), Cell::Number(0.25));
    assert_eq!(b("error_rate"), Cell::Number(0.0));
    // Latencies of A: 100, 200, 300, 400 → p50 is the 2nd, p99 the 4th. B: 50, 1000.
    assert_eq!(a("latency_p50_ms"), Cell::Count(200));
    assert_eq!(a("latency_p99_ms"), Cell::Count(400));
    assert_eq!(b("latency_p50_ms"), Cell::Count(50));
    assert_eq!(b("latency_p99_ms"), Cell::Count(1000));
    assert_eq!(a("share_of_cost"), Cell::Number(0.44));
    assert_eq!(b("share_of_cost"), Cell::Number(0.56));
    assert_eq!(a("unpriced_requests"), Cell::Count(0));
    // Layers: e1 and e2 of A have a split, e3 does not (it does not dilute the average).
    assert_eq!(a("prompt_tokens"), Cell::Count(2100));
    assert_eq!(a("tool_tokens"), Cell::Count(100));
    assert_eq!(a("memory_tokens"), Cell::Count(800));
    assert_eq!(a("prompt_tokens_per_call"), Cell::Number(1050.0));
    assert_eq!(a("memory_tokens_per_call"), Cell::Number(400.0));
    assert_eq!(b("prompt_tokens"), Cell::Null);
    assert_eq!(b("prompt_tokens_per_call"), Cell::Null);
    assert_eq!(b("unpriced_requests"), Cell::Count(1));
    assert_eq!(result.unpriced.requests, 1);
    assert_eq!(result.unpriced.input_tokens, 50);
    assert!(result.warnings.iter().any(|w| w.contains("no price")));
}

#[test]
fn buckets_filters_labels_and_top() {
    let store = store_with(&hand_built());
    let mut by_day = spec(&[], &[Metric::Requests, Metric::CostUsd]);
    by_day.bucket = Some(Bucket::Day);
    by_day.order = Some("bucket".parse().unwrap());
    let result = store.query(&by_day).unwrap();
    assert_eq!(
        result.get(0, "bucket"),
        Some(&Cell::Text("2026-11-20T00:00:00Z".into()))
    );
    assert_eq!(result.get(0, "requests"), Some(&Cell::Count(5)));
    assert_eq!(result.get(0, "cost_usd"), Some(&usd("0.02025")));
    assert_eq!(
        result.get(1, "bucket"),
        Some(&Cell::Text("2026-11-21T00:00:00Z".into()))
    );
    assert_eq!(result.get(1, "cost_usd"), Some(&usd("0.001")));

    let mut f1 = spec(&[], &[Metric::Requests, Metric::CostUsd]);
    f1.filters = vec!["feature=F1".parse().unwrap()];
    let result = store.query(&f1).unwrap();
    assert_eq!(result.get(0, "cost_usd"), Some(&usd("0.02105")));
    f1.filters = vec!["feature!=F1".parse().unwrap()];
    let result = store.query(&f1).unwrap();
    assert_eq!(
        result.get(0, "requests"),
        Some(&Cell::Count(2)),
        "!= keeps calls without the dimension"
    );
    f1.filters = vec!["user_id=".parse().unwrap()];
    assert_eq!(
        store.query(&f1).unwrap().get(0, "requests"),
        Some(&Cell::Count(1))
    );
    f1.filters = vec![
        "tenant_id=A,B".parse().unwrap(),
        "feature=F2".parse().unwrap(),
    ];
    assert_eq!(
        store.query(&f1).unwrap().get(0, "cost_usd"),
        Some(&usd("0.0002"))
    );

    let labels = store
        .query(&spec(&["label.team"], &[Metric::CostUsd]))
        .unwrap();
    let core = labels
        .rows
        .iter()
        .find(|row| row[0] == Cell::Text("core".into()))
        .unwrap();
    assert_eq!(core[1], usd("0.00165"));

    let mut top = spec(&["tenant_id"], &[Metric::CostUsd]);
    top.top = Some(1);
    let result = store.query(&top).unwrap();
    assert_eq!(result.rows.len(), 1);
    assert_eq!(result.get(0, "tenant_id"), Some(&Cell::Text("B".into())));

    // Two dimensions at once, bucketed, top 1 group keeps every bucket of that group.
    let mut two = spec(&["tenant_id", "feature"], &[Metric::CostUsd]);
    two.bucket = Some(Bucket::Day);
    two.top = Some(1);
    let result = store.query(&two).unwrap();
    assert!(
        result
            .rows
            .iter()
            .all(|row| row[0] == Cell::Text("B".into()) && row[1] == Cell::Text("F1".into()))
    );
}

#[test]
fn json_rows_follow_the_contract() {
    let store = store_with(&hand_built());
    let mut query = spec(
        &["tenant_id"],
        &[Metric::Requests, Metric::CostUsd, Metric::ShareOfCost],
    );
    query.order = Some("tenant_id:asc".parse().unwrap());
    let json = serde_json::to_value(store.query(&query).unwrap()).unwrap();
    assert_eq!(json["rows"][0]["tenant_id"], "A");
    assert_eq!(json["rows"][0]["requests"], 4);
    assert_eq!(json["rows"][0]["cost_usd"], "0.00935");
    assert_eq!(json["rows"][0]["share_of_cost"], 0.44);
}

#[test]
fn coverage_counts_spans_that_did_not_say_their_model_usage_or_cache() {
    use crate::reports::{Report, ReportParams};
    let mut events = hand_built();
    events[0]
        .labels
        .insert("burnrate.missing".into(), "usage,cache".into());
    events[1]
        .labels
        .insert("burnrate.missing".into(), "cache".into());
    let store = store_with(&events);
    let params = ReportParams {
        since: ts("2026-11-01T00:00:00Z"),
        until: ts("2026-12-01T00:00:00Z"),
        filters: Vec::new(),
        top: None,
    };
    let coverage = store.report(Report::Coverage, &params).unwrap();
    let row = |name: &str| {
        (0..coverage.rows.len())
            .find(|&i| coverage.get(i, "dimension") == Some(&Cell::Text(name.into())))
            .unwrap()
    };
    let count = |name: &str| coverage.get(row(name), "requests_missing").cloned();
    assert_eq!(count("span_without_model"), Some(Cell::Count(0)));
    assert_eq!(count("span_without_usage"), Some(Cell::Count(1)));
    assert_eq!(count("span_without_cache_detail"), Some(Cell::Count(2)));
    // e1 0.00165 + e2 0.0065 lack cache detail.
    assert_eq!(
        coverage.get(row("span_without_cache_detail"), "cost_usd_missing"),
        Some(&usd("0.00815"))
    );
}

#[test]
fn reports_answer_what_they_promise() {
    use crate::reports::{Report, ReportParams};
    let store = store_with(&hand_built());
    let params = ReportParams {
        since: ts("2026-11-01T00:00:00Z"),
        until: ts("2026-12-01T00:00:00Z"),
        filters: Vec::new(),
        top: None,
    };
    let outcomes = store.report(Report::Outcomes, &params).unwrap();
    // Two ticket_resolved outcomes in F1 (r3 succeeded: 0.0119; r4 failed: 0.001).
    assert_eq!(
        outcomes.get(0, "outcome_name"),
        Some(&Cell::Text("ticket_resolved".into()))
    );
    assert_eq!(outcomes.get(0, "outcomes"), Some(&Cell::Count(2)));
    assert_eq!(outcomes.get(0, "successes"), Some(&Cell::Count(1)));
    assert_eq!(outcomes.get(0, "cost_usd"), Some(&usd("0.0129")));
    assert_eq!(
        outcomes.get(0, "cost_per_success_usd"),
        Some(&usd("0.0129"))
    );

    let coverage = store.report(Report::Coverage, &params).unwrap();
    // Only e5 lacks user and feature; it is unpriced, so it carries no cost.
    assert_eq!(
        coverage.get(1, "dimension"),
        Some(&Cell::Text("user_id".into()))
    );
    assert_eq!(coverage.get(1, "requests_missing"), Some(&Cell::Count(1)));
    assert_eq!(
        coverage.get(1, "share_of_requests"),
        Some(&Cell::Number(1.0 / 6.0))
    );
    assert_eq!(coverage.get(0, "requests_missing"), Some(&Cell::Count(0)));
    assert_eq!(
        coverage.get(3, "dimension"),
        Some(&Cell::Text("any".into()))
    );

    let runs = store.report(Report::Runs, &params).unwrap();
    let f1 = runs
        .rows
        .iter()
        .position(|row| row[0] == Cell::Text("F1".into()))
        .unwrap();
    // F1 runs: r1 0.00815, r3 0.0119, r4 0.001 → spread 11.9.
    assert_eq!(runs.get(f1, "runs"), Some(&Cell::Count(3)));
    assert_eq!(runs.get(f1, "run_cost_spread"), Some(&Cell::Number(11.9)));

    for report in Report::ALL {
        let result = store.report(report, &params).unwrap();
        assert!(!result.rows.is_empty(), "{} is empty", report.as_str());
    }
}

#[test]
fn importing_twice_counts_once() {
    let events = hand_built();
    let mut store = store_with(&events);
    let again = store.append(&events).unwrap();
    assert_eq!(
        again,
        AppendOutcome {
            inserted: 0,
            duplicates: 6
        }
    );
    assert_eq!(store.event_count().unwrap(), 6);
    // Repeats inside one batch count once too.
    let mut repeated = vec![hand_built()[0].clone()];
    repeated.push(repeated[0].clone());
    let outcome = store.append(&repeated).unwrap();
    assert_eq!(
        outcome,
        AppendOutcome {
            inserted: 1,
            duplicates: 1
        }
    );
}

#[test]
fn adding_a_price_later_reprices_history() {
    let mut store = store_with(&hand_built());
    assert_eq!(store.unpriced_models().unwrap().len(), 1);
    store
        .import_overrides(
            "[[price]]\nmodel = \"mystery-model\"\ninput_cost_per_token = \"0.001\"\noutput_cost_per_token = \"0\"\n",
            "later",
        )
        .unwrap();
    assert!(store.unpriced_models().unwrap().is_empty());
    let result = store
        .query(&spec(&[], &[Metric::CostUsd, Metric::UnpricedRequests]))
        .unwrap();
    // 0.02125 + 50 × 0.001
    assert_eq!(result.get(0, "cost_usd"), Some(&usd("0.07125")));
    assert_eq!(result.get(0, "unpriced_requests"), Some(&Cell::Count(0)));
    assert!(result.warnings.is_empty());
}

/// Calls refused before a provider (no tokens) to a model with no price, such as a model no
/// provider serves: nothing a price could change, so no warning and no `prices missing` line.
#[test]
fn unpriced_models_that_used_no_tokens_are_not_warned_about() {
    let mut refused = event(
        "2026-11-20T12:00:00Z",
        Some("A"),
        None,
        None,
        None,
        [0; 6],
        1,
        Status::Blocked,
        0,
    );
    refused.model = "llama-3".into();
    let mut events = hand_built();
    events.push(refused);
    let store = store_with(&events);
    let missing = store.unpriced_models().unwrap();
    assert_eq!(
        missing.iter().map(|m| m.model.as_str()).collect::<Vec<_>>(),
        ["mystery-model"]
    );
    let result = store.query(&spec(&[], &[Metric::CostUsd])).unwrap();
    // mystery-model's one call with tokens, not llama-3's.
    assert_eq!(result.unpriced.requests, 1);
    assert!(result.warnings.iter().any(|w| w.starts_with("1 calls")));
}

#[test]
fn effective_dated_prices_apply_from_their_day() {
    let mut store = store_with(&hand_built());
    store
        .import_overrides(
            "[[price]]\nmodel = \"test-model\"\neffective_from = \"2026-11-21\"\ninput_cost_per_token = \"0.000002\"\n",
            "raise",
        )
        .unwrap();
    let mut by_day = spec(&[], &[Metric::CostUsd]);
    by_day.bucket = Some(Bucket::Day);
    by_day.order = Some("bucket".parse().unwrap());
    let result = store.query(&by_day).unwrap();
    assert_eq!(result.get(0, "cost_usd"), Some(&usd("0.02025")));
    assert_eq!(result.get(1, "cost_usd"), Some(&usd("0.002")));
}

#[test]
fn reopening_keeps_events_and_prices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/ledger.duckdb");
    {
        let mut store = DuckStore::open(&path).unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        store.append(&hand_built()).unwrap();
        store.checkpoint().unwrap();
    }
    let store = DuckStore::open(&path).unwrap();
    assert_eq!(store.event_count().unwrap(), 6);
    let result = store.query(&spec(&[], &[Metric::CostUsd])).unwrap();
    assert_eq!(result.get(0, "cost_usd"), Some(&usd("0.02125")));
    assert!(store.prices().as_of.is_some());
    let limits = &store
        .prices()
        .version_at("test-model", None)
        .unwrap()
        .prices;
    assert_eq!(
        (limits.max_input_tokens, limits.max_output_tokens),
        (Some(400_000), Some(8_192))
    );
}

fn random_events() -> impl Strategy<Value = Vec<UsageEvent>> {
    let one = (
        0usize..4,
        0usize..3,
        0usize..3,
        0usize..4,
        (
            0u64..300_000,
            0u64..100,
            0u64..100,
            0u64..100,
            0u64..5000,
            0u64..100,
        ),
        0i64..(3 * 86_400_000),
    )
        .prop_map(
            |(
                tenant,
                feature,
                model,
                tier,
                (input, read_pct, write_pct, h1_pct, output, reason_pct),
                offset,
            )| {
                let read = input * read_pct / 100;
                let write = (input - read) * write_pct / 100;
                let base: DateTime<Utc> = ts("2026-11-20T00:00:00Z");
                let mut e = UsageEvent::from_json(
                    r#"{"ts": "2026-11-20T00:00:00Z", "provider": "x", "model": "y", "usage": {}}"#,
                )
                .unwrap();
                e.ts = base + chrono::Duration::milliseconds(offset);
                e.tenant_id = ["t1", "t2", "t3"].get(tenant).map(|s| (*s).to_owned());
                e.feature = ["f1", "f2", "f3"].get(feature).map(|s| (*s).to_owned());
                let (provider, name) = [
                    ("anthropic", "claude-sonnet-4-5-20250929"),
                    ("gemini", "gemini-2.5-pro"),
                    ("openai", "gpt-5-2025-08-07"),
                ][model];
                e.provider = provider.into();
                e.model = name.into();
                e.service_tier =
                    [None, Some("batch"), Some("flex"), Some("priority")][tier].map(str::to_owned);
                e.usage = Usage {
                    input_tokens: input,
                    cache_read_tokens: read,
                    cache_write_tokens: write,
                    cache_write_1h_tokens: write * h1_pct / 100,
                    output_tokens: output,
                    reasoning_tokens: output * reason_pct / 100,
                };
                e.id = Some(uuid::Uuid::now_v7());
                e
            },
        );
    proptest::collection::vec(one, 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn group_costs_sum_to_the_total_and_match_the_price_book(events in random_events()) {
        let mut store = DuckStore::open_in_memory().unwrap();
        store.append(&events).unwrap();
        let total = store.query(&spec(&[], &[Metric::CostUsd])).unwrap();
        let Cell::Money(total) = total.rows[0][0].clone() else { panic!("no total") };
        for group_by in [vec!["tenant_id"], vec!["feature", "model"], vec!["service_tier"]] {
            let result = store.query(&spec(&group_by, &[Metric::CostUsd])).unwrap();
            let sum: Money = result.rows.iter().map(|row| match row.last() {
                Some(Cell::Money(m)) => *m,
                _ => Money::ZERO,
            }).sum();
            prop_assert_eq!(sum, total);
        }
        // The SQL pricing agrees with the Rust price book, event by event.
        let book = store.prices();
        let expected: Money = events.iter().map(|e| {
            let key = book.resolve(&e.provider, &e.model).unwrap();
            let tier = burnrate_model::ServiceTier::from_event(e.service_tier.as_deref());
            book.cost(&key, e.ts.date_naive(), tier, &e.usage).unwrap()
        }).sum();
        prop_assert_eq!(total, expected);
    }
}

#[test]
fn tool_calls_are_stored_typed_for_loop_detection() {
    let mut e = hand_built().remove(0);
    e.tools = vec![
        burnrate_model::ToolCall {
            name: "search_crm".into(),
            args_hash: Some("b1946ac92492d234".into()),
        },
        burnrate_model::ToolCall {
            name: "search_crm".into(),
            args_hash: Some("not hex".into()),
        },
        burnrate_model::ToolCall {
            name: "noop".into(),
            args_hash: None,
        },
    ];
    let store = store_with(&[e]);
    let (name, first, second, third): (String, u64, u64, Option<u64>) = store
        .conn
        .query_row(
            "SELECT tools[1].name, tools[1].args_hash, tools[2].args_hash, tools[3].args_hash FROM events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!(name, "search_crm");
    assert_eq!(format!("{first:016x}"), "b1946ac92492d234");
    assert_eq!(second, crate::batch::args_hash_u64("not hex"));
    assert_ne!(second, first);
    assert_eq!(third, None);
}

#[test]
fn exported_events_read_back_as_they_were_appended() {
    let mut store = DuckStore::open_in_memory().unwrap();
    let mut full: UsageEvent = serde_json::from_value(serde_json::json!({
        "id": "01936f6e-0000-7000-8000-000000000001",
        "ts": "2026-11-20T10:00:00.123456Z", "duration_ms": 812, "source": "gateway",
        "provider": "anthropic", "model": "claude-sonnet-4-6", "requested_model": "claude-opus-4-7",
        "operation": "messages", "service_tier": "standard", "tenant_id": "acme", "user_id": "u1",
        "feature": "triage", "task_id": "t", "route": "/r", "agent_run_id": "run", "parent_run_id": "p",
        "agent_name": "a", "span_depth": 2, "session_id": "s", "deployment": "production",
        "prompt_version": "v2", "effort": "high", "labels": {"team": "core"},
        "usage": {"input_tokens": 100, "cache_read_tokens": 50, "cache_write_tokens": 20,
                  "cache_write_1h_tokens": 5, "output_tokens": 30, "reasoning_tokens": 10},
        "layers": {"prompt": 60, "tool": 30, "memory": 10, "response": 30},
        "tool_calls": 1, "tools": [{"name": "search", "args_hash": "b1946ac92492d234"}],
        "status": "ok", "outcome": {"name": "resolved", "success": true}
    }))
    .unwrap();
    full.validate().unwrap();
    let bare: UsageEvent = serde_json::from_value(serde_json::json!({
        "id": "01936f6e-0000-7000-8000-000000000002",
        "ts": "2026-11-20T11:00:00Z", "provider": "openai", "model": "gpt-4.1",
        "usage": {"input_tokens": 1}, "status": "blocked", "error": "budget"
    }))
    .unwrap();
    store.append(&[full.clone(), bare.clone()]).unwrap();
    let events = store.events().unwrap();
    full.tools[0].args_hash = Some("b1946ac92492d234".into());
    assert_eq!(events, vec![full, bare]);
}

#[test]
fn a_result_survives_the_wire_form_the_query_api_sends() {
    let mut result = QueryResult::new(
        vec![
            "tenant_id".into(),
            "requests".into(),
            "cost_usd".into(),
            "cache_hit_rate".into(),
        ],
        vec![
            ColumnKind::Text,
            ColumnKind::Count,
            ColumnKind::Money,
            ColumnKind::Ratio,
        ],
    );
    result.rows.push(vec![
        Cell::Text("acme".into()),
        Cell::Count(3),
        usd("0.000000000000001"),
        Cell::Number(0.25),
    ]);
    result
        .rows
        .push(vec![Cell::Null, Cell::Count(0), Cell::Null, Cell::Null]);
    result.warnings.push("stale".into());
    let wire = serde_json::to_value(result.wire()).unwrap();
    assert_eq!(QueryResult::from_wire_json(&wire).unwrap(), result);
    let mut broken = wire.clone();
    broken["rows"][0]["requests"] = serde_json::json!("three");
    let error = QueryResult::from_wire_json(&broken)
        .unwrap_err()
        .to_string();
    assert!(error.contains("`requests`"), "{error}");
}

/// Calls with everything the roll-ups key on varying: runs and calls outside runs, users,
/// errors, outcomes (in runs and outside), layer splits, the OTLP `burnrate.missing` and
/// the ladder's `burnrate.degraded` labels, tiers and inputs either side of the price
/// bands' thresholds, over three days.
pub(super) fn rollup_events() -> impl Strategy<Value = Vec<UsageEvent>> {
    let one = (
        (0usize..4, 0usize..3, 0usize..4, 0usize..3, 0usize..6),
        (0u64..300_000, 0u64..100, 0u64..5000),
        (0usize..4, 0usize..5, any::<bool>(), 0usize..3),
        0i64..(3 * 86_400_000),
    )
        .prop_map(
            |(
                (tenant, user, run, model, status),
                (input, read_pct, output),
                (tier, outcome, layered, missing),
                offset,
            )| {
                let mut e = UsageEvent::from_json(
                    r#"{"ts": "2026-11-20T00:00:00Z", "provider": "x", "model": "y", "usage": {}}"#,
                )
                .unwrap();
                e.ts = ts("2026-11-20T00:00:00Z") + chrono::Duration::milliseconds(offset);
                e.tenant_id = ["t1", "t2", "t3"].get(tenant).map(|s| (*s).to_owned());
                e.user_id = ["u1", "u2"].get(user).map(|s| (*s).to_owned());
                e.feature = e.tenant_id.as_ref().map(|t| format!("f-{t}"));
                e.agent_run_id = ["r1", "r2", "r3"].get(run).map(|s| (*s).to_owned());
                let (provider, name) = [
                    ("anthropic", "claude-sonnet-4-5-20250929"),
                    ("gemini", "gemini-2.5-pro"),
                    ("openai", "mystery-model"),
                ][model];
                e.provider = provider.into();
                e.model = name.into();
                e.service_tier =
                    [None, Some("batch"), Some("flex"), Some("priority")][tier].map(str::to_owned);
                e.status = [
                    Status::Ok,
                    Status::Ok,
                    Status::Ok,
                    Status::Error,
                    Status::Blocked,
                    Status::Ok,
                ][status];
                if e.status != Status::Ok {
                    e.error = Some("upstream 500".into());
                }
                let read = input * read_pct / 100;
                e.usage = Usage {
                    input_tokens: input,
                    cache_read_tokens: read,
                    cache_write_tokens: (input - read) / 3,
                    cache_write_1h_tokens: (input - read) / 9,
                    output_tokens: output,
                    reasoning_tokens: output / 4,
                };
                if layered {
                    e.layers = Some(burnrate_model::event::Layers {
                        prompt: input / 2,
                        tool: input / 4,
                        memory: input - input / 2 - input / 4,
                        response: output,
                    });
                }
                e.tool_calls = u32::try_from(output % 4).unwrap();
                e.duration_ms = Some(output);
                e.outcome = match outcome {
                    0 => Some(Outcome {
                        name: "resolved".into(),
                        success: true,
                    }),
                    1 => Some(Outcome {
                        name: "resolved".into(),
                        success: false,
                    }),
                    _ => None,
                };
                if missing > 0 {
                    e.labels.insert(
                        "burnrate.missing".into(),
                        ["usage", "model,cache"][missing - 1].into(),
                    );
                }
                if status == 5 {
                    e.labels
                        .insert("burnrate.degraded".into(), "claude-haiku".into());
                }
                e.id = Some(uuid::Uuid::now_v7());
                e.validate().unwrap();
                e
            },
        );
    proptest::collection::vec(one, 1..120)
}

/// Every answer of `store` with the roll-up read and with only the events read.
fn answers(store: &mut DuckStore, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<String> {
    let mut specs = Vec::new();
    let group_bys: [&[&str]; 12] = [
        &[],
        &["tenant_id"],
        &["feature", "model"],
        &["agent_run_id"],
        &["user_id", "status"],
        &["service_tier", "outcome_name"],
        &["span_depth"],
        &["status", "label.burnrate.degraded"],
        &["label.burnrate.missing"],
        &["provider"],
        &["tenant_id", "user_id"],
        &["user_id", "model"],
    ];
    // Every metric (run metrics read the hourly roll-up), and every metric but the run
    // metrics (which the daily roll-up can answer).
    let without_runs: Vec<Metric> = Metric::ALL
        .iter()
        .copied()
        .filter(|m| !m.needs_runs())
        .collect();
    for metrics in [Metric::ALL, &without_runs] {
        for (i, group_by) in group_bys.iter().enumerate() {
            let mut spec = spec(group_by, metrics);
            spec.since = since;
            spec.until = until;
            spec.bucket = [
                None,
                Some(Bucket::Hour),
                Some(Bucket::Day),
                Some(Bucket::Week),
            ][i % 4];
            if i == 4 {
                spec.filters = vec![
                    "tenant_id!=t2".parse().unwrap(),
                    "user_id=u1,".parse().unwrap(),
                ];
            }
            if i == 8 {
                spec.filters = vec!["label.burnrate.degraded=claude-haiku,".parse().unwrap()];
            }
            if i == 10 {
                spec.filters = vec!["service_tier!=batch".parse().unwrap()];
            }
            specs.push(spec);
        }
    }
    // What the priced user days answer: tenants and users over the range's whole days (and
    // the roll-ups and events its ends).
    let priced_specs = [
        (&["tenant_id", "user_id"][..], Some(Bucket::Day)),
        (&["user_id"], None),
    ]
    .map(|(group_by, bucket)| {
        let mut spec = spec(group_by, &without_runs);
        spec.since = since;
        spec.until = until;
        spec.bucket = bucket;
        spec.filters = vec!["tenant_id!=t2".parse().unwrap()];
        spec
    });
    for spec in &priced_specs {
        let rows = store.with_priced_days(spec, store.rows_for(spec));
        assert!(
            matches!(rows, crate::query::sql::Rows::Rollup { days: Some(days), .. } if days.priced.is_some()),
            "{spec:?} reads the priced user days"
        );
    }
    specs.extend(priced_specs);
    let params = crate::reports::ReportParams {
        since,
        until,
        filters: Vec::new(),
        top: None,
    };
    let mut out = Vec::new();
    for reads in [true, false] {
        store.set_rollup_reads(reads);
        let mut text = String::new();
        for spec in &specs {
            let rollup = matches!(store.rows_for(spec), crate::query::sql::Rows::Rollup { .. });
            assert_eq!(rollup, reads, "the roll-up is read exactly when it is on");
            text.push_str(&format!("{:?}\n", store.query(spec).unwrap()));
        }
        for report in crate::reports::Report::ALL {
            text.push_str(&format!("{:?}\n", store.report(report, &params).unwrap()));
        }
        // Run cost bins, binned in SQL, equal the bins of every run's cost.
        for group_by in [&["feature"][..], &["tenant_id"], &[]] {
            let mut by = spec(group_by, &[Metric::Requests]);
            by.since = since;
            by.until = until;
            let binned = store.run_cost_bins(&by).unwrap();
            let per_run = store.query(&crate::query::bins::per_run_spec(&by)).unwrap();
            assert_eq!(binned, crate::query::bins::bins_of_runs(&per_run));
            text.push_str(&format!("{binned:?}\n"));
        }
        out.push(text);
    }
    store.set_rollup_reads(true);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    /// The roll-up answers every metric, report and range exactly as the events do: after
    /// appends in pieces (with repeats), after compaction and after a rebuild.
    #[test]
    fn the_rollup_answers_what_the_events_answer(
        events in rollup_events(),
        cut in 0usize..120,
        since_ms in 0i64..86_400_000,
        until_ms in 0i64..86_400_000,
    ) {
        let mut store = DuckStore::open_in_memory().unwrap();
        let cut = cut.min(events.len());
        store.append(&events[..cut]).unwrap();
        store.append(&events[cut / 2..]).unwrap();
        prop_assert_eq!(store.event_count().unwrap(), events.len() as u64);
        let since = ts("2026-11-20T00:00:00Z") + chrono::Duration::milliseconds(since_ms);
        let until = ts("2026-11-22T00:00:00Z") + chrono::Duration::milliseconds(until_ms);
        let [with, without] = answers(&mut store, since, until).try_into().unwrap();
        prop_assert_eq!(&with, &without);
        store.compact_rollup().unwrap();
        let [compacted, _] = answers(&mut store, since, until).try_into().unwrap();
        prop_assert_eq!(&compacted, &without);
        store.rebuild_rollup().unwrap();
        let [rebuilt, _] = answers(&mut store, since, until).try_into().unwrap();
        prop_assert_eq!(&rebuilt, &without);
    }
}

/// [`answers`] over November: with the roll-ups read and with only the events read.
fn over_november(store: &mut DuckStore) -> [String; 2] {
    answers(
        store,
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
    )
    .try_into()
    .unwrap()
}

#[test]
fn the_rollup_is_compacted_and_rebuilt_when_it_misses_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.duckdb");
    let events = hand_built();
    let expected = {
        let mut store = DuckStore::open(&path).unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        for event in &events {
            store.append(std::slice::from_ref(event)).unwrap();
        }
        store.append(&events).unwrap();
        let before = Level::ALL.map(|level| store.rollup_rows(level).unwrap());
        store.compact_rollup().unwrap();
        let after = Level::ALL.map(|level| store.rollup_rows(level).unwrap());
        for i in 0..Level::ALL.len() {
            assert!(
                after[i] < before[i],
                "compaction merged nothing: {before:?} rows before, {after:?} after"
            );
            assert!(after[i] <= after[0], "a daily roll-up is larger: {after:?}");
        }
        let [with, without] = over_november(&mut store);
        assert_eq!(with, without);
        with
    };
    // A crash between the events' append and the roll-up's loses roll-up rows (and leaves no
    // marker that they are complete: an append removes it first), a ledger written by an
    // older burnrate has a daily roll-up of other columns, and one written before the
    // user-day roll-up has none: the next open rebuilds what is off.
    for damage in [
        "DELETE FROM rollup WHERE tenant_id = 'A'; DELETE FROM meta WHERE key = 'derived_complete_v2'",
        "ALTER TABLE rollup_day DROP COLUMN degraded",
        "DROP TABLE rollup_user_day",
    ] {
        DuckStore::open(&path)
            .unwrap()
            .conn
            .execute_batch(damage)
            .unwrap();
        let mut store = DuckStore::open(&path).unwrap();
        let [with, without] = over_november(&mut store);
        assert_eq!(with, without, "after {damage}");
        assert_eq!(with, expected, "after {damage}");
    }
}

/// A rebuild cut short leaves roll-ups that count fewer calls than the ledger holds, and no
/// marker that they are complete: the next open sums them, finds them short and builds them
/// again (it does not trust a marker written before the rebuild began).
#[test]
fn a_rebuild_cut_short_is_not_taken_for_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.duckdb");
    let expected = {
        let mut store = DuckStore::open(&path).unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        store.append(&hand_built()).unwrap();
        assert!(
            store.marked_complete().unwrap(),
            "an append marks them complete"
        );
        let [with, without] = over_november(&mut store);
        assert_eq!(with, without);
        with
    };
    {
        let mut store = DuckStore::open(&path).unwrap();
        assert!(store.marked_complete().unwrap());
        // The fault: reading the events fails once the rebuild has emptied the hourly
        // roll-up (a view named `events` is read before the table).
        store
            .conn
            .execute_batch(
                "CREATE TEMP VIEW events AS SELECT * FROM ledger.main.events \
                 WHERE error('injected fault') IS NULL",
            )
            .unwrap();
        let error = store.rebuild_rollup().unwrap_err();
        assert!(error.to_string().contains("injected fault"), "{error}");
        store.conn.execute_batch("DROP VIEW events").unwrap();
        assert!(!store.marked_complete().unwrap());
        assert_eq!(store.rollup_rows(Level::Hour).unwrap(), 0);
    }
    let mut store = DuckStore::open(&path).unwrap();
    assert!(
        store.rollup_rows(Level::Hour).unwrap() > 0,
        "the open rebuilt it"
    );
    assert!(store.marked_complete().unwrap());
    let [with, without] = over_november(&mut store);
    assert_eq!(with, without);
    assert_eq!(with, expected);
}

/// An append that fails may have written part of its events without their roll-up rows:
/// later appends in the same session record no completeness marker, queries read the events,
/// and the next open sums the roll-ups and rebuilds them.
#[test]
fn a_failed_append_leaves_no_marker_for_later_appends_to_renew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.duckdb");
    let events = hand_built();
    let (first, rest) = events.split_at(events.len() / 2);
    let expected = {
        let mut store = DuckStore::open_in_memory().unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        store.append(&events).unwrap();
        over_november(&mut store)[1].clone()
    };
    {
        let mut store = DuckStore::open(&path).unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        store.append(first).unwrap();
        assert!(store.marked_complete().unwrap());
        // The fault: the events table no longer has the batch's columns.
        store
            .conn
            .execute_batch("ALTER TABLE events ADD COLUMN injected_fault INTEGER")
            .unwrap();
        assert!(store.append(rest).is_err());
        store
            .conn
            .execute_batch("ALTER TABLE events DROP COLUMN injected_fault")
            .unwrap();
        store.append(rest).unwrap();
        assert!(
            !store.marked_complete().unwrap(),
            "an append after a failed one recorded the marker"
        );
        let by_tenant = spec(&["tenant_id"], &[Metric::CostUsd]);
        assert!(
            !matches!(
                store.rows_for(&by_tenant),
                crate::query::sql::Rows::Rollup { .. }
            ),
            "queries read the events until the next open"
        );
    }
    let mut store = DuckStore::open(&path).unwrap();
    assert!(
        store.marked_complete().unwrap(),
        "the open checked and recorded it"
    );
    let [with, without] = over_november(&mut store);
    assert_eq!(with, without);
    assert_eq!(with, expected);
}

#[test]
fn counts_read_without_prices_equal_counts_read_with_them() {
    let store = store_with(&hand_built());
    let counts_only: Vec<Metric> = Metric::ALL
        .iter()
        .copied()
        .filter(|m| !m.needs_prices())
        .collect();
    let mut with_cost = counts_only.clone();
    with_cost.push(Metric::CostUsd);
    for group_by in [&[][..], &["tenant_id"], &["feature", "model"]] {
        let rows = |metrics: &[Metric]| {
            let result = store.query(&spec(group_by, metrics)).unwrap();
            let width = group_by.len() + counts_only.len();
            let mut rows: Vec<String> = result
                .rows
                .iter()
                .map(|row| format!("{:?}", &row[..width]))
                .collect();
            rows.sort();
            rows
        };
        let counts = rows(&counts_only);
        assert!(!counts.is_empty());
        assert_eq!(counts, rows(&with_cost), "grouped by {group_by:?}");
    }
}

#[test]
fn the_user_day_rollup_keeps_users_apart_and_counts_each_call() {
    // Calls alike but for their user, status and outcome, in every hour of one day.
    let events: Vec<UsageEvent> = (0..96)
        .map(|i| {
            let mut event = UsageEvent::from_json(&format!(
                r#"{{"ts": "2026-11-20T{:02}:30:00Z", "provider": "anthropic",
                "model": "claude-sonnet-4-5-20250929", "tenant_id": "t",
                "usage": {{"input_tokens": {}, "output_tokens": 7}}}}"#,
                i % 24,
                100 + i
            ))
            .unwrap();
            event.user_id = [Some("u1"), Some("u2"), None][i % 3].map(str::to_owned);
            if i % 4 == 0 {
                event.status = Status::Error;
                event.error = Some("upstream 500".into());
            }
            if i % 5 < 2 {
                event.outcome = Some(Outcome {
                    name: "resolved".into(),
                    success: i % 5 == 0,
                });
            }
            event.id = Some(uuid::Uuid::now_v7());
            event
        })
        .collect();
    let mut store = DuckStore::open_in_memory().unwrap();
    store.import_overrides(TEST_PRICES, "test").unwrap();
    store.append(&events[..40]).unwrap();
    store.append(&events[40..]).unwrap();
    let without_runs: Vec<Metric> = Metric::ALL
        .iter()
        .copied()
        .filter(|m| !m.needs_runs())
        .collect();
    let mut per_user = spec(&["tenant_id", "user_id"], &without_runs);
    per_user.bucket = Some(Bucket::Day);
    let read = |store: &mut DuckStore, rollup: bool| {
        store.set_rollup_reads(rollup);
        if rollup {
            assert!(matches!(
                store.rows_for(&per_user),
                crate::query::sql::Rows::Rollup { days: Some(days), .. }
                    if days.table == Level::UserDay.table()
            ));
        }
        store.query(&per_user).unwrap()
    };
    let expected = read(&mut store, false);
    assert_eq!(expected.rows.len(), 3, "one row per user and the untagged");
    assert_eq!(read(&mut store, true), expected);
    store.compact_rollup().unwrap();
    assert_eq!(read(&mut store, true), expected);
    store.rebuild_rollup().unwrap();
    assert_eq!(read(&mut store, true), expected);
}

#[test]
fn coverage_filtered_by_user_reads_a_rollup_that_holds_its_flags() {
    let mut store = store_with(&hand_built());
    let params = crate::reports::ReportParams {
        since: ts("2026-11-01T00:00:00Z"),
        until: ts("2026-12-01T00:00:00Z"),
        filters: vec!["user_id!=nobody".parse().unwrap()],
        top: None,
    };
    let coverage = crate::reports::Report::Coverage;
    let from_rollups = store.report(coverage, &params).unwrap();
    store.set_rollup_reads(false);
    assert_eq!(from_rollups, store.report(coverage, &params).unwrap());
}

#[test]
fn the_daily_rollups_answer_only_what_they_keep() {
    let store = store_with(&hand_built());
    let table = |spec: &QuerySpec| match store.rows_for(spec) {
        crate::query::sql::Rows::Rollup {
            days: Some(days), ..
        } => Some(days.table),
        _ => None,
    };
    let days = |spec: &QuerySpec| table(spec) == Some(Level::Day.table());
    let kept = spec(
        &["tenant_id", "label.burnrate.degraded"],
        &[Metric::CostUsd],
    );
    assert!(days(&kept));
    let mut weekly = kept.clone();
    weekly.bucket = Some(Bucket::Week);
    assert!(days(&weekly));
    let mut hourly = kept.clone();
    hourly.bucket = Some(Bucket::Hour);
    assert!(!days(&hourly), "hour buckets need the hourly roll-up");
    assert!(!days(&spec(&["tenant_id"], &[Metric::CostPerRunP50])));
    assert!(!days(&spec(&["session_id"], &[Metric::CostUsd])));
    let mut by_run = kept.clone();
    by_run.filters = vec!["agent_run_id=r1".parse().unwrap()];
    assert!(!days(&by_run));
    let mut per_user = spec(&["tenant_id", "user_id"], &[Metric::CostUsd]);
    per_user.filters = vec!["model=m".parse().unwrap()];
    assert_eq!(table(&per_user), Some(Level::UserDay.table()));
    per_user.filters = vec!["feature=f".parse().unwrap()];
    assert_eq!(
        table(&per_user),
        None,
        "the user-day roll-up keeps no features"
    );
    per_user.filters.clear();
    per_user.bucket = Some(Bucket::Hour);
    assert_eq!(table(&per_user), None);
    assert_eq!(
        store.rows_for(&spec(&["label.team"], &[Metric::CostUsd])),
        crate::query::sql::Rows::Events,
        "only the events hold other labels"
    );
}

#[test]
fn the_store_trait_sets_how_many_threads_a_statement_runs_on() {
    let store = DuckStore::open_in_memory().unwrap();
    let threads = |store: &DuckStore| -> i64 {
        store
            .conn
            .query_row("SELECT current_setting('threads')", [], |row| row.get(0))
            .unwrap()
    };
    crate::Store::set_threads(&store, 1).unwrap();
    assert_eq!(threads(&store), 1);
    crate::Store::set_threads(&store, 3).unwrap();
    assert_eq!(threads(&store), 3);
    // Zero is not a thread count DuckDB takes: one is set instead.
    crate::Store::set_threads(&store, 0).unwrap();
    assert_eq!(threads(&store), 1);
}

/// A path that is a folder or some other file is named as such, with what to do.
#[test]
fn opening_a_folder_or_a_foreign_file_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DuckStore::open(dir.path()).err().unwrap().to_string();
    assert!(folder.contains("that is a folder"), "{folder}");
    let foreign = dir.path().join("notes.duckdb");
    std::fs::write(
        &foreign,
        "not a database, just some text that is long enough",
    )
    .unwrap();
    let foreign = DuckStore::open(&foreign).err().unwrap().to_string();
    assert!(foreign.contains("not a burnrate ledger"), "{foreign}");
    assert!(!foreign.contains("--server"), "{foreign}");
}
