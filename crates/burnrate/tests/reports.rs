//! The report scheduler inside `burnrate serve`, black-box: reports due at start are written
//! to the folder in three formats and announced to the notifiers with a link.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use chrono::{Datelike, Days, Utc};
use support::{Receiver, burnrate, mock_provider, serve, write_config};

#[test]
fn due_reports_are_written_and_announced_with_a_link() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);
    // Three days of the reference scenario, ending at midnight today, in the gateway's ledger.
    let events = dir.path().join("events.jsonl");
    let contracts = dir.path().join("contracts.toml");
    let generated = burnrate()
        .args([
            "gen-events",
            "--scenario",
            "reference",
            "--days",
            "3",
            "--end",
        ])
        .arg(today.to_string())
        .arg("--out")
        .arg(&events)
        .arg("--contracts")
        .arg(&contracts)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let imported = burnrate()
        .arg("import")
        .arg("--db")
        .arg(dir.path().join("ledger.duckdb"))
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let receiver = Receiver::start();
    let folder = dir.path().join("reports");
    let extra = format!(
        r#"
[reports]
folder = "{folder}"
at = "00:00"
weekly = "{weekday}"
monthly = false
link_base = "https://reports.example.com/burnrate/"

[[notifiers]]
name = "finops"
kind = "webhook"
url = "{url}"

{contracts}
"#,
        folder = folder.display(),
        weekday = today.weekday(),
        url = receiver.url,
        contracts = std::fs::read_to_string(&contracts).unwrap(),
    );
    let gateway = serve(&write_config(dir.path(), &mock.url, &extra));
    let bodies = receiver.wait_for(2);
    let mut kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["report_daily", "report_weekly"]);
    let daily = bodies.iter().find(|b| b["kind"] == "report_daily").unwrap();
    assert_eq!(daily["title"], format!("Daily anomaly report, {yesterday}"));
    assert_eq!(
        daily["fields"]["full report"],
        format!("https://reports.example.com/burnrate/daily-{yesterday}.html")
    );
    assert!(
        daily["text"].as_str().unwrap().contains("of 40 tenants"),
        "{daily}"
    );
    for format in ["md", "json", "html"] {
        let file = folder.join(format!("daily-{yesterday}.{format}"));
        assert!(file.exists(), "{} was not written", file.display());
    }
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(folder.join(format!("daily-{yesterday}.json"))).unwrap(),
    )
    .unwrap();
    // The loopers loop from the first of the three days: yesterday flags both.
    assert_eq!(
        json["data"]["runaway_tenants"],
        serde_json::json!(["ref-08", "ref-24"])
    );
    assert!(folder.join(format!("weekly-{yesterday}.html")).exists());
    assert!(gateway.terminate().success());
}
