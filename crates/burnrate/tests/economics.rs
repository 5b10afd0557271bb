//! Economics and guardrails end to end, through the binary: the cost regression gate.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod support;

use std::path::Path;
use std::process::Output;

use support::burnrate;

/// `runs` agent runs of three calls on `version` of the triage prompt, each call carrying
/// `prompt` prompt-layer tokens (plus a little noise), as JSONL lines.
fn runs(version: &str, runs: u32, prompt: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for run in 0..runs {
        for call in 0..3u64 {
            let noise = u64::from(run % 7) * 10 + call;
            let (tool, memory) = (200, 300 + call * 100);
            let input = prompt + noise + tool + memory;
            lines.push(
                serde_json::json!({
                    "ts": format!("2026-11-{:02}T10:{:02}:00Z", 10 + run % 10, call),
                    "provider": "openai", "model": "gpt-4.1", "tenant_id": "acme",
                    "feature": "triage", "prompt_version": version,
                    "agent_run_id": format!("{version}-run-{run}"),
                    "usage": {"input_tokens": input, "cache_read_tokens": input / 4,
                              "output_tokens": 150},
                    "layers": {"prompt": prompt + noise, "tool": tool, "memory": memory,
                               "response": 150},
                })
                .to_string(),
            );
        }
    }
    lines
}

fn ledger(dir: &Path) -> String {
    let mut lines = runs("v2.3", 30, 1_000);
    lines.extend(runs("v2.4", 30, 1_600)); // the prompt grew by 60%
    lines.extend(runs("v2.5", 30, 1_000)); // same as v2.3
    lines.extend(runs("v2.6", 5, 1_000)); // too new to judge
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n")).unwrap();
    let db = dir.join("ledger.duckdb");
    let imported = burnrate()
        .args(["import", "--db"])
        .arg(&db)
        .arg(&events)
        .output()
        .unwrap();
    assert!(imported.status.success());
    db.to_str().unwrap().to_owned()
}

fn compare(db: &str, candidate: &str, extra: &[&str]) -> Output {
    burnrate()
        .args([
            "compare",
            "--db",
            db,
            "--feature",
            "triage",
            "--since",
            "2026-11-01",
        ])
        .args(["--until", "2026-12-01", "--baseline", "prompt_version=v2.3"])
        .args(["--candidate", &format!("prompt_version={candidate}")])
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_regression_gate_fails_a_bloated_prompt_and_passes_an_equal_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = ledger(dir.path());

    let bloated = compare(&db, "v2.4", &[]);
    assert_eq!(bloated.status.code(), Some(1), "{}", stdout(&bloated));
    let text = stdout(&bloated);
    assert!(
        text.contains("30 runs on prompt_version=v2.3, 30 on prompt_version=v2.4"),
        "{text}"
    );
    assert!(text.contains("FAIL"), "{text}");
    let json = compare(&db, "v2.4", &["--format", "json"]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["verdict"], "regressed");
    let check = |name: &str| {
        answer["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == name)
            .unwrap()
            .clone()
    };
    for metric in [
        "cost_per_run_p50",
        "cost_per_run_p99",
        "prompt_tokens_per_call",
    ] {
        assert_eq!(
            check(metric)["regressed"],
            true,
            "{metric}: {}",
            check(metric)
        );
    }
    // The prompt layer grew by about 60%; tool and memory layers did not move.
    let grew = check("prompt_tokens_per_call")["worse_by"]
        .as_f64()
        .unwrap();
    assert!((0.55..0.65).contains(&grew), "{grew}");
    assert_eq!(check("tool_tokens_per_call")["regressed"], false);
    assert_eq!(
        check("memory_tokens_per_call")["worse_by"].as_f64(),
        Some(0.0)
    );

    let equal = compare(&db, "v2.5", &[]);
    assert_eq!(equal.status.code(), Some(0), "{}", stdout(&equal));
    assert!(stdout(&equal).contains("PASS"));
    // A tolerance wide enough lets the bloated one through.
    let tolerated = compare(&db, "v2.4", &["--max-regression", "200%"]);
    assert_eq!(tolerated.status.code(), Some(0), "{}", stdout(&tolerated));
    // Too few runs on one side: no judgement, a distinct exit status.
    let young = compare(&db, "v2.6", &[]);
    assert_eq!(young.status.code(), Some(3), "{}", stdout(&young));
    assert!(stdout(&young).contains("5 on prompt_version=v2.6"));
    assert!(stdout(&young).contains("NO JUDGEMENT"));
}
