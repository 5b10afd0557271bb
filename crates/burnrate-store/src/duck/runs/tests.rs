//! The runs overview, queries of run metrics and the outcomes report from the run totals
//! answer what the queries answer.

use burnrate_model::UsageEvent;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;

use super::super::DuckStore;
use super::super::tests::{TEST_PRICES, hand_built, rollup_events, ts, two_months};
use crate::query::runs::overview_by_queries;
use crate::query::spec::{Metric, QuerySpec};
use crate::reports::{Report, ReportParams};

/// Renames the runs of two calls in three so runs vary: some span the three days and mix
/// tenants (as generated), some keep to one tenant, some to one tenant and two hours; gives
/// one call in four a feature other tenants' calls share, and one outcome in five another
/// name (so some runs reach two).
fn with_short_runs(mut events: Vec<UsageEvent>) -> Vec<UsageEvent> {
    for (i, event) in events.iter_mut().enumerate() {
        if i % 4 == 0 {
            event.feature = Some("f-shared".into());
        }
        if let Some(outcome) = event.outcome.as_mut().filter(|_| i % 5 == 0) {
            outcome.name = "escalated".into();
        }
        let tenant = event.tenant_id.clone().unwrap_or_default();
        let window = event.ts.timestamp() / 7200;
        if let Some(run) = &mut event.agent_run_id {
            match i % 3 {
                1 => *run = format!("{run}-{tenant}"),
                2 => *run = format!("{run}-{tenant}-{window}"),
                _ => {}
            }
        }
    }
    events
}

/// The overviews the page and the reports ask for, over `[since, until)`.
fn specs(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<QuerySpec> {
    let cases: [(&[&str], &[&str]); 5] = [
        (&[], &[]),
        (&["feature"], &[]),
        (&["tenant_id"], &["tenant_id!=t2"]),
        (&["feature"], &["feature=f-t1,", "tenant_id=t1,t3,"]),
        (&[], &["agent_run_id=r1,r2-t1"]),
    ];
    cases
        .iter()
        .map(|(group_by, filters)| {
            let mut spec = QuerySpec::new(since, until);
            spec.group_by = group_by.iter().map(|d| d.parse().unwrap()).collect();
            spec.filters = filters.iter().map(|f| f.parse().unwrap()).collect();
            spec
        })
        .collect()
}

/// Every overview of `specs` from the totals, checked against the queries'; and the same
/// specs asking for every run metric, and the outcomes report with their filters, from the
/// totals checked against the events.
fn same_overviews(store: &mut DuckStore, since: DateTime<Utc>, until: DateTime<Utc>) {
    for mut spec in specs(since, until) {
        let from_totals = store
            .overview_from_totals(&spec, 5)
            .unwrap()
            .expect("the run totals answer");
        let from_queries = overview_by_queries(store, &spec, 5).unwrap();
        assert_eq!(from_totals, from_queries, "{spec:?}");

        spec.metrics = vec![
            Metric::Requests,
            Metric::CostUsd,
            Metric::Runs,
            Metric::CostPerRunP50,
            Metric::CostPerRunP90,
            Metric::CostPerRunP99,
            Metric::CostPerRunMin,
            Metric::CostPerRunMax,
            Metric::RunCostSpread,
            Metric::RunCostShare,
        ];
        let outcomes = ReportParams {
            since,
            until,
            filters: spec.filters.clone(),
            top: None,
        };
        assert!(store.totals_answer(&spec), "{spec:?}");
        let query = store.query(&spec).unwrap();
        let report = store.report(Report::Outcomes, &outcomes).unwrap();
        store.set_rollup_reads(false);
        assert_eq!(query, store.query(&spec).unwrap(), "{spec:?}");
        assert_eq!(
            report,
            store.report(Report::Outcomes, &outcomes).unwrap(),
            "{spec:?}"
        );
        store.set_rollup_reads(true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// Over any range, with runs inside it, crossing its ends, mixed and fresh: after the
    /// fresh runs are computed again and after a price change.
    #[test]
    fn the_run_totals_answer_what_the_queries_answer(
        events in rollup_events(),
        cut in 0usize..120,
        since_ms in 0i64..(2 * 86_400_000),
        span_ms in 1i64..(2 * 86_400_000),
    ) {
        let events = with_short_runs(events);
        let mut store = DuckStore::open_in_memory().unwrap();
        let cut = cut.min(events.len());
        store.append(&events[..cut]).unwrap();
        store.compact_rollup().unwrap();
        store.append(&events[cut / 2..]).unwrap();
        let since = ts("2026-11-20T00:00:00Z") + Duration::milliseconds(since_ms);
        let until = since + Duration::milliseconds(span_ms);
        same_overviews(&mut store, since, until);
        store.compact_rollup().unwrap();
        let fresh: i64 = store
            .conn
            .query_row("SELECT count(*) FROM runs_fresh", [], |row| row.get(0))
            .unwrap();
        prop_assert_eq!(fresh, 0);
        same_overviews(&mut store, since, until);
        store.import_overrides(TEST_PRICES, "test").unwrap();
        same_overviews(&mut store, since, until);
        // Whole days and hours, as the dashboard asks: runs end and start at the range's ends.
        same_overviews(&mut store, ts("2026-11-20T00:00:00Z"), ts("2026-11-23T00:00:00Z"));
        same_overviews(&mut store, ts("2026-11-21T00:00:00Z"), ts("2026-11-22T00:00:00Z"));
        let hour = ts("2026-11-20T00:00:00Z") + Duration::hours(since_ms / 3_600_000);
        same_overviews(&mut store, hour, hour + Duration::hours(span_ms / 3_600_000 + 1));
    }
}

#[test]
fn the_run_totals_follow_prices_archiving_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.duckdb");
    let (since, until) = (ts("2026-10-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"));
    let whole = {
        let mut store = DuckStore::open(&path).unwrap();
        store.append(&two_months()).unwrap();
        same_overviews(&mut store, since, until);
        let unpriced = store.runs_overview(&specs(since, until)[0], 5).unwrap();
        store.import_overrides(TEST_PRICES, "test").unwrap();
        same_overviews(&mut store, since, until);
        let priced = store.runs_overview(&specs(since, until)[0], 5).unwrap();
        assert_ne!(unpriced, priced, "a new price re-prices the runs");
        priced
    };

    // Reopened: the totals are used as they are.
    let mut store = DuckStore::open(&path).unwrap();
    assert_eq!(
        store.runs_overview(&specs(since, until)[0], 5).unwrap(),
        whole
    );
    same_overviews(&mut store, since, until);

    // Archiving October takes its calls out of the runs that had them.
    let archive = tempfile::tempdir().unwrap();
    let moved = store
        .archive_before(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            archive.path(),
        )
        .unwrap();
    assert_eq!(moved.len(), 1);
    same_overviews(&mut store, since, until);
    let november = store.runs_overview(&specs(since, until)[0], 5).unwrap();
    assert!(november.groups[0].cost < whole.groups[0].cost);

    // Totals lost (a crash while rebuilding them), priced with other prices (a crash after a
    // price change), missing calls (appended by a burnrate without run totals, which changed
    // the event count the completeness marker names) or of another version's columns are
    // built again on open.
    for damage in [
        "DELETE FROM meta WHERE key = 'run_totals'; DELETE FROM run_totals",
        "UPDATE meta SET value = 'older prices' WHERE key = 'run_totals'; \
         UPDATE run_totals SET cost = cost + 1",
        "DELETE FROM run_totals WHERE agent_run_id = 'r1'; \
         DELETE FROM meta WHERE key = 'derived_complete_v2'",
        "ALTER TABLE run_totals DROP COLUMN mixed",
    ] {
        store.conn.execute_batch(damage).unwrap();
        drop(store);
        store = DuckStore::open(&path).unwrap();
        same_overviews(&mut store, since, until);
        assert_eq!(
            store.runs_overview(&specs(since, until)[0], 5).unwrap(),
            november,
            "after {damage}"
        );
    }

    // Calls of a model the ledger had not mapped (a crash between an append and its mapping)
    // are priced once the model is mapped: their runs are computed again.
    store
        .conn
        .execute_batch("DELETE FROM model_map WHERE model = 'test-model'")
        .unwrap();
    drop(store);
    let mut store = DuckStore::open(&path).unwrap();
    let mut late = hand_built();
    late.truncate(1);
    late[0].id = Some(uuid::Uuid::now_v7());
    store.append(&late).unwrap();
    same_overviews(&mut store, since, until);
}

#[test]
fn the_totals_answer_only_what_every_call_of_a_run_shares() {
    let mut store = DuckStore::open_in_memory().unwrap();
    let mut events = hand_built();
    // A run whose calls share a feature but not whether they have a tenant.
    for (event, tenant) in events.iter_mut().take(2).zip([Some("A"), None]) {
        event.agent_run_id = Some("rx".into());
        event.tenant_id = tenant.map(str::to_owned);
        event.feature = Some("F1".into());
    }
    store.append(&events).unwrap();
    store.compact_rollup().unwrap();
    let mixed: bool = store
        .conn
        .query_row(
            "SELECT mixed FROM run_totals WHERE agent_run_id = 'rx'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(mixed, "a run with and without a tenant is mixed");
    let (since, until) = (ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"));
    same_overviews(&mut store, since, until);
    for (group_by, filter) in [("model", None), ("feature", Some("user_id=u1"))] {
        let mut spec = QuerySpec::new(since, until);
        spec.group_by = vec![group_by.parse().unwrap()];
        spec.filters = filter.iter().map(|f| f.parse().unwrap()).collect();
        assert!(store.overview_from_totals(&spec, 5).unwrap().is_none());
        assert_eq!(
            store.runs_overview(&spec, 5).unwrap(),
            overview_by_queries(&store, &spec, 5).unwrap()
        );
    }
    // Calls at any time count, before 1970 too.
    let mut early = hand_built();
    for (event, at) in early
        .iter_mut()
        .zip(["1969-12-31T23:30:00Z", "1970-01-01T02:00:00Z"])
    {
        event.ts = ts(at);
        event.agent_run_id = Some("r-early".into());
    }
    store.append(&early[..2]).unwrap();
    store.compact_rollup().unwrap();
    same_overviews(
        &mut store,
        ts("1969-12-01T00:00:00Z"),
        ts("1970-02-01T00:00:00Z"),
    );

    // What the queries refuse, the totals refuse too.
    let mut backwards = QuerySpec::new(until, since);
    assert!(store.runs_overview(&backwards, 5).is_err());
    backwards.until = backwards.since;
    assert!(store.overview_from_totals(&backwards, 5).is_err());
    store.set_rollup_reads(false);
    assert!(
        store
            .overview_from_totals(&QuerySpec::new(since, until), 5)
            .unwrap()
            .is_none()
    );
}
