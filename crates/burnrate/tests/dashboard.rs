//! The dashboard in a real browser: `burnrate serve` on a ledger loaded with the synthetic
//! workload, driven in Debian's headless Chromium by playwright-core (tests/js/dashboard.js).
//! Fails, never skips, without `/usr/bin/chromium` (CI installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, DurationRound, Utc};
use support::{ADMIN_TOKEN, Server, burnrate, js_dir, mock_provider, serve_logging, write_config};

/// A gateway over a ledger of 20,000 synthetic calls of 12 tenants over 14 days, with
/// budgets, a contract and a scheduled-reports folder.
struct Dashboard {
    _dir: tempfile::TempDir,
    _mock: Server,
    gateway: Server,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
}

fn start() -> Dashboard {
    let dir = tempfile::tempdir().unwrap();
    let until = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    let since = until - Duration::days(14);
    let events = dir.path().join("events.jsonl");
    let made = burnrate()
        .args([
            "gen-events",
            "--tenants",
            "12",
            "--days",
            "14",
            "--events",
            "20000",
            "--seed",
            "9",
            "--end",
        ])
        .arg(until.to_rfc3339())
        .arg("--out")
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let imported = burnrate()
        .args(["import", "--db"])
        .arg(dir.path().join("ledger.duckdb"))
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let mock = mock_provider();
    let extra = format!(
        r#"
[[policy.budgets]]
scope = "tenant"
id = "*"
period = "day"
limit_usd = "40"

[[policy.budgets]]
scope = "tenant"
id = "*"
period = "month"
limit_usd = "900"

[[contracts]]
tenant = "acme-corp"
kind = "pass_through"
markup = "0.3"
tier = "enterprise"

[reports]
folder = "{}/reports"
"#,
        dir.path().display()
    );
    let config = write_config(dir.path(), &mock.url, &extra);
    // Debug logging, so the test can check what reaches the log.
    let gateway = serve_logging(&config, "debug");
    Dashboard {
        _dir: dir,
        _mock: mock,
        gateway,
        since,
        until,
    }
}

/// Runs one scenario of tests/js/dashboard.js against the gateway; its output is shown
/// either way, and a failure fails the test.
fn scenario(dashboard: &Dashboard, name: &str, shots: Option<&Path>) -> String {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the dashboard tests need Debian's chromium (apt-get install chromium chromium-driver)"
    );
    let dir = js_dir();
    let mut command = Command::new("node");
    command
        .arg(dir.join("dashboard.js"))
        .arg(name)
        .current_dir(&dir)
        .env("BASE_URL", &dashboard.gateway.url)
        .env("TOKEN", ADMIN_TOKEN)
        .env("SINCE", dashboard.since.to_rfc3339())
        .env("UNTIL", dashboard.until.to_rfc3339());
    if let Some(shots) = shots {
        command.env("SHOTS", shots);
    }
    let output = command
        .output()
        .expect("node is needed (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "scenario {name} failed");
    assert!(stdout.contains(&format!("scenario {name}: passed")));
    stdout
}

#[test]
fn every_page_loads_without_console_errors_and_is_keyboard_navigable() {
    let dashboard = start();
    let out = scenario(&dashboard, "pages", None);
    assert_eq!(out.matches("ok: ").count(), 8, "eight pages checked");
}

#[test]
fn numbers_on_the_pages_equal_the_query_api() {
    let dashboard = start();
    scenario(&dashboard, "numbers", None);
}

#[test]
fn drill_down_clicks_reach_the_right_pages() {
    let dashboard = start();
    scenario(&dashboard, "drilldown", None);
}

#[test]
fn login_works_the_api_refuses_without_the_token_and_the_token_stays_out_of_logs() {
    let dashboard = start();
    scenario(&dashboard, "login", None);
    let log = dashboard.gateway.drain_stderr().join("\n");
    assert!(!log.is_empty(), "the gateway logged at debug level");
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the admin token reached the log:\n{log}"
    );
}

/// Screenshots of every page at 1280×800 with timers paused, into `BURNRATE_SCREENSHOTS`
/// (docs/screenshots when refreshing the README's pictures), else a scratch folder.
#[test]
fn screenshots_of_every_page() {
    let dashboard = start();
    let shots = std::env::var_os("BURNRATE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-shots"));
    std::fs::create_dir_all(&shots).unwrap();
    scenario(&dashboard, "screenshots", Some(&shots));
    for page in [
        "overview",
        "longtail",
        "tenant",
        "runs",
        "run",
        "anomalies",
        "reports",
        "report",
    ] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{page}.png is a PNG");
        assert!(png.len() > 10_000, "{page}.png has content");
    }
}
