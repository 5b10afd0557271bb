//! The priced user days answer what the queries answer from the events, through appends,
//! compaction, price changes, archiving, reopening and damage.

use burnrate_model::Money;
use chrono::{DateTime, NaiveDate, Utc};

use super::super::DuckStore;
use super::super::tests::{TEST_PRICES, hand_built, ts, two_months};
use super::TABLE;
use crate::query::result::Cell;
use crate::query::spec::{Bucket, Metric, QuerySpec};
use crate::query::sql::{Days, Rows};
use crate::reports::{Report, ReportParams};

/// The specs the priced user days can answer over `[since, until)`: by tenant and user per
/// day, by user per month among some tenants, and the total for some users, with every
/// metric but the run metrics; and the top two users per day by cost asking for no money
/// (so nothing is priced).
fn specs(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<QuerySpec> {
    let metrics: Vec<Metric> = Metric::ALL
        .iter()
        .copied()
        .filter(|m| !m.needs_runs())
        .collect();
    let cases: [(&[&str], Option<Bucket>, &[&str]); 3] = [
        (&["tenant_id", "user_id"], Some(Bucket::Day), &[]),
        (&["user_id"], Some(Bucket::Month), &["tenant_id!=B"]),
        (&[], None, &["user_id=u1,u3,"]),
    ];
    cases
        .iter()
        .map(|(group_by, bucket, filters)| {
            let mut spec = QuerySpec::new(since, until);
            spec.group_by = group_by.iter().map(|d| d.parse().unwrap()).collect();
            spec.filters = filters.iter().map(|f| f.parse().unwrap()).collect();
            spec.bucket = *bucket;
            spec.metrics = metrics.clone();
            spec
        })
        .chain([{
            let mut spec = QuerySpec::new(since, until);
            spec.group_by = vec!["user_id".parse().unwrap()];
            spec.bucket = Some(Bucket::Day);
            spec.top = Some(2);
            spec.metrics = vec![Metric::Requests];
            spec
        }])
        .collect()
}

/// Whether a query over `spec` reads the priced user days.
fn reads_priced(store: &DuckStore, spec: &QuerySpec) -> bool {
    matches!(
        store.with_priced_days(spec, store.rows_for(spec)),
        Rows::Rollup {
            days: Some(Days {
                priced: Some(TABLE),
                ..
            }),
            ..
        }
    )
}

/// Every answer of [`specs`] and the users-per-day report over `[since, until)`, read from
/// the priced user days, checked against the answers from the events.
fn same_answers(store: &mut DuckStore, since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let params = ReportParams {
        since,
        until,
        filters: Vec::new(),
        top: None,
    };
    let mut answers = Vec::new();
    for reads in [true, false] {
        store.set_rollup_reads(reads);
        let mut text = String::new();
        for spec in specs(since, until) {
            assert_eq!(reads_priced(store, &spec), reads, "{spec:?}");
            text.push_str(&format!("{:?}\n", store.query(&spec).unwrap()));
        }
        let report = store.report(Report::UsersDaily, &params).unwrap();
        text.push_str(&format!("{report:?}\n"));
        answers.push(text);
    }
    store.set_rollup_reads(true);
    assert_eq!(answers[0], answers[1]);
    answers.remove(0)
}

/// Rows of the priced user days, and how many keys they hold.
fn rows_and_keys(store: &DuckStore) -> (i64, i64) {
    store
        .conn
        .query_row(
            &format!("SELECT count(*), count(DISTINCT (ts, tenant_id, user_id)) FROM {TABLE}"),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

/// What user `u1` cost over `[since, until)`, read from the priced user days.
fn cost_of_u1(store: &DuckStore, since: DateTime<Utc>, until: DateTime<Utc>) -> Money {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec!["user_id".parse().unwrap()];
    spec.filters = vec!["user_id=u1".parse().unwrap()];
    spec.metrics = vec![Metric::CostUsd];
    assert!(reads_priced(store, &spec));
    let result = store.query(&spec).unwrap();
    match result.get(0, "cost_usd") {
        Some(Cell::Money(cost)) => *cost,
        other => panic!("no cost for u1: {other:?}"),
    }
}

#[test]
fn the_priced_user_days_follow_appends_prices_archiving_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.duckdb");
    let (since, until) = (ts("2026-10-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"));
    let whole = {
        let mut store = DuckStore::open(&path).unwrap();
        // One call per append, as the gateway's flushes go, and each again (skipped).
        for event in two_months() {
            store.append(std::slice::from_ref(&event)).unwrap();
            store.append(std::slice::from_ref(&event)).unwrap();
        }
        let unpriced = same_answers(&mut store, since, until);
        let (rows, keys) = rows_and_keys(&store);
        assert!(rows > keys, "one row per append: {rows} rows, {keys} keys");
        store.compact_rollup().unwrap();
        assert_eq!(rows_and_keys(&store), (keys, keys), "merged per key");
        assert_eq!(same_answers(&mut store, since, until), unpriced);
        store.import_overrides(TEST_PRICES, "test").unwrap();
        let priced = same_answers(&mut store, since, until);
        assert_ne!(unpriced, priced, "a new price prices the rows again");
        priced
    };

    // Reopened: the rows are used as they are.
    let mut store = DuckStore::open(&path).unwrap();
    assert!(store.user_day_costs_current().unwrap());
    assert_eq!(same_answers(&mut store, since, until), whole);

    // Archiving October takes its days out of the rows.
    let archive = tempfile::tempdir().unwrap();
    let moved = store
        .archive_before(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            archive.path(),
        )
        .unwrap();
    assert_eq!(moved.len(), 1);
    let november = same_answers(&mut store, since, until);
    assert_ne!(november, whole);
    let november_u1 = cost_of_u1(&store, since, until);
    let october: i64 = store
        .conn
        .query_row(
            &format!("SELECT count(*) FROM {TABLE} WHERE ts < TIMESTAMP '2026-11-01'"),
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(october, 0);

    // Rows lost (a crash while rebuilding them), priced with other prices (a crash after a
    // price change), missing calls (a crash between the roll-up's append and theirs, which
    // leaves no completeness marker) or of another version's columns are built again on
    // open.
    for damage in [
        "DELETE FROM meta WHERE key = 'user_day_costs'; DELETE FROM user_day_costs",
        "UPDATE meta SET value = 'older prices' WHERE key = 'user_day_costs'; \
         UPDATE user_day_costs SET cost = cost + 1",
        "DELETE FROM user_day_costs WHERE user_id = 'u1'; \
         DELETE FROM meta WHERE key = 'derived_complete_v2'",
        "ALTER TABLE user_day_costs DROP COLUMN naive_cost",
    ] {
        store.conn.execute_batch(damage).unwrap();
        drop(store);
        store = DuckStore::open(&path).unwrap();
        assert_eq!(
            same_answers(&mut store, since, until),
            november,
            "after {damage}"
        );
    }

    // Calls appended by an older burnrate, which keeps no priced user days (nor roll-ups,
    // here) and records a marker of its own: this version's marker names fewer events, so
    // the next open builds what is behind again.
    store
        .conn
        .execute_batch(
            "INSERT INTO events SELECT * REPLACE (uuidv7() AS id) FROM events \
             WHERE user_id = 'u1'; \
             INSERT OR REPLACE INTO meta SELECT 'derived_complete_at', \
             CAST(count(*) AS VARCHAR) FROM events",
        )
        .unwrap();
    drop(store);
    store = DuckStore::open(&path).unwrap();
    let doubled = cost_of_u1(&store, since, until);
    same_answers(&mut store, since, until);
    assert_eq!(doubled, november_u1 + november_u1);

    // Calls of a model the ledger had not mapped (an older burnrate's crash between an
    // append and its mapping, whose rows priced them as unpriced) are priced once an append
    // maps the model.
    let priced = cost_of_u1(&store, since, until);
    assert_eq!(priced, doubled);
    store
        .conn
        .execute_batch("DELETE FROM model_map WHERE model = 'test-model'")
        .unwrap();
    drop(store);
    let mut store = DuckStore::open(&path).unwrap();
    assert_ne!(same_answers(&mut store, since, until), november);
    assert_eq!(cost_of_u1(&store, since, until), Money::ZERO);
    let mut late = hand_built();
    late.truncate(1);
    late[0].ts = ts("2026-11-25T10:00:00Z");
    late[0].id = Some(uuid::Uuid::now_v7());
    store.append(&late).unwrap();
    same_answers(&mut store, since, until);
    // The call appended costs 0.00165 (see `hand_built`).
    assert_eq!(
        cost_of_u1(&store, since, until),
        priced + "0.00165".parse().unwrap()
    );
}

#[test]
fn a_query_reads_the_priced_user_days_only_for_tenants_and_users() {
    let mut store = DuckStore::open_in_memory().unwrap();
    store.import_overrides(TEST_PRICES, "test").unwrap();
    // The hand-built calls, and again in the parts of days at the ends of a range below.
    let mut events = hand_built();
    for (i, at) in [
        "2026-11-19T22:45:00Z",
        "2026-11-19T23:30:00Z",
        "2026-11-21T00:20:00Z",
        "2026-11-21T01:05:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        events.extend(hand_built().into_iter().skip(i).map(|mut event| {
            event.ts = ts(at);
            event.id = Some(uuid::Uuid::now_v7());
            event
        }));
    }
    store.append(&events).unwrap();
    let (since, until) = (ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"));
    for spec in specs(since, until) {
        assert!(reads_priced(&store, &spec), "{spec:?}");
    }
    let mut by_model = specs(since, until).remove(0);
    by_model.group_by.push("model".parse().unwrap());
    let mut by_feature = specs(since, until).remove(0);
    by_feature.filters = vec!["feature=F1".parse().unwrap()];
    let mut hourly = specs(since, until).remove(0);
    hourly.bucket = Some(Bucket::Hour);
    let mut runs = specs(since, until).remove(0);
    runs.metrics = vec![Metric::CostPerRunP50];
    let mut within_a_day = specs(since, until).remove(0);
    within_a_day.since = ts("2026-11-20T01:00:00Z");
    within_a_day.until = ts("2026-11-20T23:00:00Z");
    for spec in [by_model, by_feature, hourly, runs, within_a_day] {
        assert!(!reads_priced(&store, &spec), "{spec:?}");
    }
    // A range of whole days and parts of days reads both, and answers as the events do.
    let mut parts = specs(since, until);
    for spec in &mut parts {
        spec.since = ts("2026-11-19T22:30:00Z");
        spec.until = ts("2026-11-21T01:15:00Z");
        assert!(reads_priced(&store, spec), "{spec:?}");
    }
    let with: Vec<_> = parts.iter().map(|s| store.query(s).unwrap()).collect();
    store.set_rollup_reads(false);
    let without: Vec<_> = parts.iter().map(|s| store.query(s).unwrap()).collect();
    assert_eq!(with, without);
}
