//! `burnrate demo` end to end: it sends its traffic through the gateway, prints the daily
//! report and the margins, serves the dashboard until interrupted, and leaves in its ledger
//! every call it made, each scenario's story visible in the events.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;
use support::{burnrate, json_lines};

/// Runs the demo, reads its output up to the dashboard line, checks the dashboard answers,
/// interrupts it, and returns its output and the folder.
fn run_demo() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let mut child = burnrate()
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&demo_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut dashboard = None;
    while dashboard.is_none() {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the demo ended before printing the dashboard's address:\n{out}"
        );
        if let Some(url) = line.strip_prefix("Dashboard: ") {
            dashboard = Some(url.trim().to_string());
        }
        out.push_str(&line);
    }
    let url = dashboard.unwrap();
    let (base, token) = url.split_once("/ui#token=").unwrap();
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response
    };
    // The dashboard is up and reads the same ledger.
    assert!(get("/ui/login").text().unwrap().contains("burnrate"));
    let budgets: Value = get("/api/v1/budgets").json().unwrap();
    let stark = budgets["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "stark-labs" && b["period"] == "day")
        .expect("stark-labs' daily budget");
    let spent: f64 = stark["spent_usd"].as_str().unwrap().parse().unwrap();
    // Near its cap, never past it: calls reserve their worst case before they go upstream.
    assert!((0.5..=0.60).contains(&spent), "stark-labs spent {spent}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::io::Read::read_to_string(&mut reader, &mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    (out, dir)
}

#[test]
fn the_demo_runs_its_scenarios_through_the_gateway_and_keeps_every_call() {
    let (out, dir) = run_demo();

    // What it printed: the daily report with the stories' findings, and the margins.
    for expected in [
        "Daily anomaly report",
        "tool_loop",
        "cache_miss_storm",
        "spend_spike",
        "Runaway tenant(s), burning money now: umbrella",
        "Tenant margins",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let margins: BTreeMap<&str, &str> = out
        .lines()
        .filter(|line| line.starts_with('│'))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(['│', '┆']).map(str::trim).collect();
            // │ tenant ┆ segment ┆ contract ┆ users ┆ revenue ┆ cost ┆ margin │
            let contract = ["bundled", "pass_through", "outcome"];
            (cells.len() == 9 && contract.contains(&cells[3])).then(|| (cells[1], cells[2]))
        })
        .collect();
    assert_eq!(margins.get("umbrella"), Some(&"runaway"), "{out}");
    assert_eq!(margins.get("stark-labs"), Some(&"power user"), "{out}");
    assert_eq!(margins.get("acme-corp"), Some(&"healthy"), "{out}");
    assert_eq!(margins.get("initech"), Some(&"healthy"), "{out}");
    assert_eq!(margins.len(), 18, "one row per tenant: {margins:?}");
    let sent: u64 = out
        .split("Sent ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the summary line");

    // What the ledger holds: every call of today, attributed.
    let db = dir.path().join("demo/burnrate.duckdb");
    let events = json_lines(
        burnrate()
            .args(["export", "--since", "20d", "--db"])
            .arg(&db),
        "export",
    );
    let today: Vec<&Value> = events
        .iter()
        .filter(|e| e["labels"]["demo"] != "history")
        .collect();
    let history = events.len() - today.len();
    assert!(history > 10_000, "two weeks of history: {history}");
    let proxied: Vec<&Value> = today
        .iter()
        .copied()
        .filter(|e| e["source"] == "gateway")
        .collect();
    assert_eq!(proxied.len() as u64, sent, "one event per call sent");
    let of = |tenant: &str| -> Vec<&Value> {
        proxied
            .iter()
            .copied()
            .filter(|e| e["tenant_id"] == tenant)
            .collect()
    };
    let features: BTreeSet<&str> = proxied
        .iter()
        .filter_map(|e| e["feature"].as_str())
        .collect();
    assert_eq!(features.len(), 7, "{features:?}");

    // acme-corp: a coordinator with sub-agents and tool calls.
    let acme = of("acme-corp");
    let run: Vec<&&Value> = acme
        .iter()
        .filter(|e| {
            e["agent_run_id"] == "acme-support-000" || e["parent_run_id"] == "acme-support-000"
        })
        .collect();
    let agents: BTreeSet<&str> = run
        .iter()
        .filter_map(|e| e["agent_name"].as_str())
        .collect();
    assert_eq!(
        agents,
        BTreeSet::from(["coordinator", "researcher", "refund-agent"]),
        "{run:?}"
    );
    let tools: BTreeSet<&str> = run
        .iter()
        .flat_map(|e| e["tools"].as_array().into_iter().flatten())
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.is_superset(&BTreeSet::from([
        "search_kb",
        "lookup_order",
        "issue_refund"
    ])));

    // umbrella: every looping run served five identical tool calls, then was refused.
    let umbrella = of("umbrella");
    for n in 10..24 {
        let run = format!("umbrella-ops-{n:03}");
        let calls: Vec<&&Value> = umbrella
            .iter()
            .filter(|e| e["agent_run_id"] == run)
            .collect();
        let served = calls.iter().filter(|e| e["status"] == "ok").count();
        let blocked = calls.iter().filter(|e| e["status"] == "blocked").count();
        assert_eq!((served, blocked), (5, 1), "{run}: {calls:?}");
    }

    // hooli: prompt v3.1 reads the cache, v3.2 writes it and reads nothing.
    let hooli = of("hooli");
    let reads = |version: &str| -> (u64, u64) {
        hooli
            .iter()
            .filter(|e| e["prompt_version"] == version)
            .fold((0, 0), |(read, write), e| {
                (
                    read + e["usage"]["cache_read_tokens"].as_u64().unwrap_or(0),
                    write + e["usage"]["cache_write_tokens"].as_u64().unwrap_or(0),
                )
            })
    };
    let (read_before, _) = reads("v3.1");
    let (read_after, write_after) = reads("v3.2");
    assert!(read_before > 0 && read_after == 0 && write_after > 0);

    // stark-labs: served on the cheaper model, then from cache, then refused at the cap.
    let stark = of("stark-labs");
    let degraded = |how: &str| {
        stark
            .iter()
            .filter(|e| {
                e["labels"]["burnrate.degraded"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(how))
            })
            .count()
    };
    assert!(
        degraded("fallback") > 0 && degraded("cached") > 0,
        "{stark:?}"
    );
    let fallbacks = stark
        .iter()
        .filter(|e| {
            e["model"]
                .as_str()
                .is_some_and(|m| m.starts_with("gpt-4.1-mini"))
        })
        .count();
    assert!(fallbacks > 0);
    let refused = stark.iter().filter(|e| e["status"] == "blocked").count();
    assert_eq!(refused, 10, "the app stops after ten quota errors");

    // initech: outcomes reported through the events API count for its contract.
    let outcomes = today
        .iter()
        .filter(|e| e["tenant_id"] == "initech" && e["outcome"]["success"] == true)
        .count();
    assert_eq!(outcomes, 21);
}

#[test]
fn the_demo_refuses_a_folder_that_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let output = burnrate()
        .args(["demo", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a burnrate demo folder"), "{stderr}");
    assert!(dir.path().join("notes.txt").exists());
}
