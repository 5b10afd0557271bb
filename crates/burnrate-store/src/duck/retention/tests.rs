//! Retention on 18 months of synthetic calls: archiving keeps every total (cost included),
//! late events go to a further part, expiry deletes only older months, and a file that does
//! not match the ledger leaves the events where they were.

use burnrate_model::{Money, ToolCall, UsageEvent};
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::query::result::{Cell, QueryResult};
use crate::query::spec::{Bucket, Metric, QuerySpec};

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn ts(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Three calls a day from `first` to `last` (inclusive), one of them in the last microsecond
/// of the day, so every month has events on both of its edges. Tokens vary with the day.
fn calls(first: NaiveDate, last: NaiveDate) -> Vec<UsageEvent> {
    let mut events = Vec::new();
    for (n, date) in first.iter_days().take_while(|d| *d <= last).enumerate() {
        for (i, time) in ["00:00:00", "11:30:00.5", "23:59:59.999999"]
            .iter()
            .enumerate()
        {
            let model = if i == 1 { "gpt-4.1-mini" } else { "gpt-4.1" };
            let mut event = UsageEvent::from_json(&format!(
                r#"{{"ts": "{date}T{time}Z", "provider": "openai", "model": "{model}",
                    "usage": {{}}}}"#
            ))
            .unwrap();
            let n = n as u64;
            event.usage.input_tokens = 1000 + 37 * n + 11 * i as u64;
            event.usage.cache_read_tokens = if i == 0 { 200 + n } else { 0 };
            event.usage.output_tokens = 100 + n % 50;
            event.tenant_id = Some(["acme", "globex"][i % 2].to_owned());
            event.duration_ms = Some(100 + n);
            if i == 2 {
                event.agent_run_id = Some(format!("run-{n}"));
                event.labels.insert("team".into(), "core".into());
                event.tool_calls = 1;
                event.tools = vec![ToolCall {
                    name: "search".into(),
                    args_hash: Some(format!("{:016x}", n + 1)),
                }];
            }
            event.id = Some(uuid::Uuid::now_v7());
            event.validate().unwrap();
            events.push(event);
        }
    }
    events
}

/// Requests, tokens and cost over `[since, until)`, in total and per month.
fn totals(store: &DuckStore, since: &str, until: &str) -> (QueryResult, QueryResult) {
    let mut spec = QuerySpec::new(ts(since), ts(until));
    spec.metrics = vec![
        Metric::Requests,
        Metric::InputTokens,
        Metric::CacheReadTokens,
        Metric::OutputTokens,
        Metric::CostUsd,
    ];
    let total = store.query(&spec).unwrap();
    spec.group_by = vec!["tenant_id".parse().unwrap()];
    spec.bucket = Some(Bucket::Month);
    spec.order = Some("bucket".parse().unwrap());
    (total, store.query(&spec).unwrap())
}

fn count(result: &QueryResult, column: &str) -> u64 {
    match result.get(0, column) {
        Some(Cell::Count(n)) => u64::try_from(*n).unwrap(),
        other => panic!("{column}: {other:?}"),
    }
}

fn money(result: &QueryResult) -> Money {
    match result.get(0, "cost_usd") {
        Some(Cell::Money(m)) => *m,
        other => panic!("cost_usd: {other:?}"),
    }
}

fn files(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ledger_dir(archive))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sorted(mut events: Vec<UsageEvent>) -> Vec<UsageEvent> {
    events.sort_by_key(|e| (e.ts, e.id));
    events
}

const ALL: (&str, &str) = ("2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
const OLD: (&str, &str) = ("2025-01-01T00:00:00Z", "2025-11-01T00:00:00Z");
const HOT: (&str, &str) = ("2025-11-01T00:00:00Z", "2027-01-01T00:00:00Z");

#[test]
fn archiving_six_of_eighteen_months_keeps_every_total() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.duckdb");
    let archive = dir.path().join("archive");
    let events = calls(day("2025-05-01"), day("2026-10-31"));
    let mut store = DuckStore::open(&ledger).unwrap();
    store.append(&events).unwrap();
    let (before, before_by_month) = totals(&store, ALL.0, ALL.1);
    let (old, _) = totals(&store, OLD.0, OLD.1);
    let (hot, _) = totals(&store, HOT.0, HOT.1);
    assert_eq!(count(&before, "requests"), events.len() as u64);
    assert!(
        money(&before) > Money::ZERO,
        "the data set must cost something"
    );
    assert_eq!(before_by_month.rows.len(), 18 * 2);

    let archived = store.archive_before(day("2025-11-01"), &archive).unwrap();
    let labels: Vec<String> = archived.iter().map(MonthArchive::label).collect();
    assert_eq!(
        labels,
        [
            "2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10"
        ]
    );
    assert_eq!(
        archived.iter().map(|a| a.events).sum::<u64>(),
        count(&old, "requests")
    );
    assert_eq!(
        archived.iter().map(|a| a.input_tokens).sum::<u64>(),
        count(&old, "input_tokens")
    );
    assert_eq!(
        archived.iter().map(|a| a.output_tokens).sum::<u64>(),
        count(&old, "output_tokens")
    );
    assert_eq!(archived[0].events, 31 * 3);
    assert_eq!(
        archived[0].path,
        ledger_dir(&archive).join("2025-05.parquet")
    );
    assert_eq!(
        files(&archive),
        [
            "2025-05.parquet",
            "2025-06.parquet",
            "2025-07.parquet",
            "2025-08.parquet",
            "2025-09.parquet",
            "2025-10.parquet"
        ]
    );

    // The ledger holds the last 12 months only; its totals are the hot part's.
    assert_eq!(store.event_count().unwrap(), count(&hot, "requests"));
    let (remaining, remaining_by_month) = totals(&store, ALL.0, ALL.1);
    assert_eq!(remaining.rows, hot.rows);
    assert_eq!(remaining_by_month.rows.len(), 12 * 2);
    let first_left = store.events().unwrap()[0].ts;
    assert_eq!(first_left, ts("2025-11-01T00:00:00Z"));
    // Nothing left to archive: a second run writes nothing.
    assert!(
        store
            .archive_before(day("2025-11-01"), &archive)
            .unwrap()
            .is_empty()
    );
    drop(store);

    // Reading with the archive: every total, and every event, is as before.
    let mut store = DuckStore::open(&ledger).unwrap();
    store.include_archive(&archive).unwrap();
    let (after, after_by_month) = totals(&store, ALL.0, ALL.1);
    assert_eq!(after.rows, before.rows);
    assert_eq!(after_by_month.rows, before_by_month.rows);
    assert_eq!(
        money(&after),
        money(&hot) + money(&old),
        "total cost is the hot part's plus the archived part's"
    );
    assert_eq!(store.event_count().unwrap(), events.len() as u64);
    assert_eq!(store.events().unwrap(), sorted(events.clone()));
    let repeats = store.tool_repeats(ts(OLD.0), ts(OLD.1), 1).unwrap().len();
    assert_eq!(
        repeats, 184,
        "one per archived day: loops read the archive too"
    );
    // The store is for reading now.
    let late = calls(day("2025-07-10"), day("2025-07-10"));
    let error = store.append(&late).unwrap_err().to_string();
    assert!(error.contains("for reading only"), "{error}");
    let error = store
        .archive_before(day("2025-11-01"), &archive)
        .unwrap_err()
        .to_string();
    assert!(error.contains("for reading only"), "{error}");
    drop(store);

    // Late events for an archived month go to a further part; nothing is overwritten.
    let mut store = DuckStore::open(&ledger).unwrap();
    store.append(&late).unwrap();
    let archived = store.archive_before(day("2025-11-01"), &archive).unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(
        archived[0].path,
        ledger_dir(&archive).join("2025-07.1.parquet")
    );
    assert_eq!(archived[0].events, 3);
    assert_eq!(store.event_count().unwrap(), count(&hot, "requests"));
    store.include_archive(&archive).unwrap();
    let (with_late, _) = totals(&store, ALL.0, ALL.1);
    assert_eq!(
        count(&with_late, "requests"),
        count(&before, "requests") + 3
    );
    let mut all = events.clone();
    all.extend(late);
    assert_eq!(store.events().unwrap(), sorted(all));
    drop(store);

    // Expiry keeps August on: both parts of July go, as do May and June.
    let deleted = expire_archives(&archive, day("2025-08-17")).unwrap();
    let mut deleted: Vec<String> = deleted
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "2025-05.parquet",
            "2025-06.parquet",
            "2025-07.1.parquet",
            "2025-07.parquet"
        ]
    );
    assert_eq!(
        files(&archive),
        ["2025-08.parquet", "2025-09.parquet", "2025-10.parquet"]
    );
    let mut store = DuckStore::open(&ledger).unwrap();
    store.include_archive(&archive).unwrap();
    let (kept, _) = totals(&store, "2025-08-01T00:00:00Z", ALL.1);
    let (everything, _) = totals(&store, ALL.0, ALL.1);
    assert_eq!(kept.rows, everything.rows);
}

#[test]
fn a_file_that_does_not_match_is_removed_and_the_events_stay() {
    let archive = tempfile::tempdir().unwrap();
    let mut store = DuckStore::open_in_memory().unwrap();
    store
        .append(&calls(day("2025-05-30"), day("2025-06-02")))
        .unwrap();
    DROP_ONE_EVENT.set(true);
    let error = store
        .archive_before(day("2025-07-01"), archive.path())
        .unwrap_err()
        .to_string();
    DROP_ONE_EVENT.set(false);
    assert!(error.contains("2025-05"), "{error}");
    assert!(
        error.contains("events: 6 in the ledger, 5 in the file"),
        "{error}"
    );
    assert!(error.contains("the set of event ids"), "{error}");
    assert_eq!(store.event_count().unwrap(), 12);
    assert!(
        files(archive.path()).is_empty(),
        "{:?}",
        files(archive.path())
    );

    // Once the files come out right, the same call archives both months.
    let archived = store
        .archive_before(day("2025-07-01"), archive.path())
        .unwrap();
    assert_eq!(archived.len(), 2);
    assert_eq!(store.event_count().unwrap(), 0);
}

#[test]
fn the_comparison_names_what_differs() {
    let ledger = Tally {
        events: 10,
        tokens: [100, 20, 0, 0, 50, 5],
        ids: 12345,
        rows: 678,
    };
    assert!(differences(&ledger, &ledger).is_empty());
    let file = Tally {
        tokens: [100, 20, 0, 0, 49, 5],
        rows: 679,
        ..ledger
    };
    assert_eq!(
        differences(&ledger, &file),
        [
            "output_tokens: 50 in the ledger, 49 in the file",
            "the contents of the rows"
        ]
    );
}

#[test]
fn an_empty_or_missing_archive_reads_the_ledger_alone() {
    let archive = tempfile::tempdir().unwrap();
    let mut store = DuckStore::open_in_memory().unwrap();
    store
        .append(&calls(day("2026-01-01"), day("2026-01-03")))
        .unwrap();
    let (before, _) = totals(&store, ALL.0, ALL.1);
    store.include_archive(archive.path()).unwrap();
    assert_eq!(totals(&store, ALL.0, ALL.1).0.rows, before.rows);
    std::fs::create_dir(ledger_dir(archive.path())).unwrap();
    store.include_archive(archive.path()).unwrap();
    assert_eq!(totals(&store, ALL.0, ALL.1).0.rows, before.rows);
    assert!(
        expire_archives(archive.path(), day("2030-01-01"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_cutoff_must_start_a_month() {
    let archive = tempfile::tempdir().unwrap();
    let mut store = DuckStore::open_in_memory().unwrap();
    let error = store
        .archive_before(day("2025-11-15"), archive.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("pass 2025-11-01"), "{error}");
}

#[test]
fn expiry_leaves_files_it_did_not_name_alone() {
    let archive = tempfile::tempdir().unwrap();
    let folder = ledger_dir(archive.path());
    std::fs::create_dir(&folder).unwrap();
    let names = [
        "2025-05.parquet",
        "2025-05.2.parquet",
        "2025-05.parquet.tmp",
        "2025-5.parquet",
        "2025-05.x.parquet",
        "2025-05-01.parquet",
        "notes.txt",
        "2025-06.parquet",
    ];
    for name in names {
        std::fs::write(folder.join(name), b"").unwrap();
    }
    let deleted = expire_archives(archive.path(), day("2025-06-01")).unwrap();
    assert_eq!(
        deleted,
        [
            folder.join("2025-05.2.parquet"),
            folder.join("2025-05.parquet")
        ]
    );
    assert_eq!(files(archive.path()).len(), names.len() - 2);
    assert_eq!(file_month("2025-12.17.parquet"), Some(day("2025-12-01")));
    assert_eq!(file_month("2025-13.parquet"), None);
    assert_eq!(file_month("2025-12..parquet"), None);
}

#[test]
fn the_tally_sees_a_change_in_any_column() {
    let mut store = DuckStore::open_in_memory().unwrap();
    store
        .append(&calls(day("2026-01-01"), day("2026-01-02")))
        .unwrap();
    let table = store.events_table().unwrap();
    let ledger = store.tally(&table, "true").unwrap();
    let changed = format!("(SELECT * REPLACE ('EU' AS deployment) FROM {table})");
    let differ = differences(&ledger, &store.tally(&changed, "true").unwrap());
    assert_eq!(differ, ["the contents of the rows"]);
}

#[test]
fn a_run_cut_between_the_file_and_the_delete_does_not_archive_twice() {
    let folder = tempfile::tempdir().unwrap();
    let archive = folder.path().join("archive");
    let mut store = DuckStore::open_in_memory().unwrap();
    let events = calls(day("2025-05-01"), day("2025-06-30"));
    store.append(&events).unwrap();
    store.archive_before(day("2025-06-01"), &archive).unwrap();
    // As if the process died after the rename, before the delete: May is in both places.
    let may: Vec<UsageEvent> = events
        .iter()
        .filter(|e| e.ts < ts("2025-06-01T00:00:00Z"))
        .cloned()
        .collect();
    store.append(&may).unwrap();
    let again = store.archive_before(day("2025-06-01"), &archive).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].events, may.len() as u64);
    assert_eq!(
        files(&archive),
        ["2025-05.parquet"],
        "no second copy of May"
    );
    store.include_archive(&archive).unwrap();
    let (total, _) = totals(&store, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    assert_eq!(count(&total, "requests"), events.len() as u64);
}
