//! The journal keeps every appended event until the store has it.

use std::io::Write;

use burnrate_model::{Usage, UsageEvent};
use crossbeam_channel::unbounded;
use uuid::Uuid;

use super::*;

fn event(n: u64) -> UsageEvent {
    let mut event: UsageEvent = serde_json::from_value(serde_json::json!({
        "ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1",
        "tenant_id": format!("t{n}"),
        "usage": {"input_tokens": n, "output_tokens": 1}
    }))
    .unwrap();
    event.id = Some(Uuid::now_v7());
    event
}

fn replay_all(dir: &Path) -> (ReplayOutcome, Option<u64>, Vec<UsageEvent>) {
    let mut seen = Vec::new();
    let (outcome, last) = replay(dir, |batch| {
        seen.extend(batch);
        Ok(())
    })
    .unwrap();
    (outcome, last, seen)
}

#[test]
fn appended_events_reach_the_sink_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, receiver) = unbounded();
    let written: Vec<UsageEvent> = (1..=5).map(event).collect();
    {
        let journal = Journal::open(dir.path(), Duration::from_millis(5), sender).unwrap();
        for event in &written {
            journal.append(event.clone()).unwrap();
        }
        // Dropped without rotate: as if the process died before the store writer ran.
    }
    let handed: Vec<UsageEvent> = receiver.try_iter().collect();
    assert_eq!(handed, written);
    let (outcome, last, replayed) = replay_all(dir.path());
    assert_eq!(replayed, written);
    assert_eq!(outcome.events, 5);
    assert_eq!(outcome.segments, 1);
    assert!(outcome.unreadable.is_empty());
    remove_replayed(dir.path(), last.unwrap()).unwrap();
    assert_eq!(replay_all(dir.path()).2, Vec::new());
}

#[test]
fn a_batch_is_one_write_that_replays_in_order_with_single_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, receiver) = unbounded();
    let written: Vec<UsageEvent> = (1..=7).map(event).collect();
    {
        let journal = Journal::open(dir.path(), Duration::ZERO, sender).unwrap();
        journal.append(written[0].clone()).unwrap();
        journal.append_all(written[1..6].to_vec()).unwrap();
        journal.append_all(Vec::new()).unwrap();
        journal.append(written[6].clone()).unwrap();
    }
    assert_eq!(receiver.try_iter().collect::<Vec<_>>(), written);
    let (outcome, _, replayed) = replay_all(dir.path());
    assert_eq!(replayed, written);
    assert_eq!(outcome.events, 7);
}

#[test]
fn rotation_seals_segments_and_removal_keeps_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, _receiver) = unbounded();
    let journal = Journal::open(dir.path(), Duration::ZERO, sender).unwrap();
    journal.append(event(1)).unwrap();
    journal.append(event(2)).unwrap();
    let sealed = journal.rotate().unwrap();
    journal.append(event(3)).unwrap();
    journal.remove_through(sealed).unwrap();
    journal.close().unwrap();
    let (_, _, replayed) = replay_all(dir.path());
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        replayed[0].usage,
        Usage {
            input_tokens: 3,
            output_tokens: 1,
            ..Usage::default()
        }
    );
}

#[test]
fn a_new_journal_starts_after_the_segments_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, _receiver) = unbounded();
    let first = Journal::open(dir.path(), Duration::ZERO, sender.clone()).unwrap();
    first.append(event(1)).unwrap();
    drop(first);
    let second = Journal::open(dir.path(), Duration::ZERO, sender).unwrap();
    second.append(event(2)).unwrap();
    drop(second);
    let (outcome, _, replayed) = replay_all(dir.path());
    assert_eq!(outcome.segments, 2);
    let inputs: Vec<u64> = replayed.iter().map(|e| e.usage.input_tokens).collect();
    assert_eq!(inputs, vec![1, 2], "oldest segment first");
}

#[test]
fn a_torn_last_line_is_reported_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, _receiver) = unbounded();
    let journal = Journal::open(dir.path(), Duration::ZERO, sender).unwrap();
    journal.append(event(1)).unwrap();
    journal.close().unwrap();
    drop(journal);
    let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"ts":"2026-11-20T10:00:00Z","prov"#)
        .unwrap();
    let (outcome, _, replayed) = replay_all(dir.path());
    assert_eq!(replayed.len(), 1);
    assert_eq!(outcome.unreadable.len(), 1);
    assert!(
        outcome.unreadable[0].contains(":2:"),
        "{:?}",
        outcome.unreadable
    );
}

#[test]
fn replay_of_a_missing_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, last, replayed) = replay_all(&dir.path().join("absent"));
    assert_eq!((outcome.events, last, replayed.len()), (0, None, 0));
}
