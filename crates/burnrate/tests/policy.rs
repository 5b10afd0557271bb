//! Enforcement end to end: the real `burnrate serve` in front of the real mock provider,
//! with budgets, rate limits, the ladder, the kill switch and run limits, in memory and
//! with two gateways sharing a real `redis-server`. The SDK scenarios drive the gateway with
//! the official OpenAI and Anthropic Python SDKs (tests/python/policy_calls.py). The
//! scale-out tests put both gateways' events in one real `clickhouse-server`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

#[path = "../../burnrate-store/tests/support/clickhouse_server.rs"]
mod clickhouse_server;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{
    ADMIN_TOKEN, KEY, Receiver, Redis, burnrate, burnrate_sha256, export, json_lines,
    mock_provider, python, script, serve, write_config,
};

/// The mock provider and a gateway in front of it with `extra` in its config; the mock and
/// the directory must outlive the gateway, so keep all three.
fn gateway_with(extra: &str) -> (support::Server, tempfile::TempDir, support::Server) {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(&write_config(dir.path(), &mock.url, extra));
    (mock, dir, gateway)
}

/// Total cost the ledger at `db` holds.
fn ledger_cost(db: &Path) -> Decimal {
    let output = burnrate()
        .args(["query", "--db"])
        .arg(db)
        .args([
            "--since",
            "30d",
            "--metrics",
            "cost_usd",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cost = &result["rows"][0]["cost_usd"];
    Decimal::from_str(cost.as_str().unwrap_or("0")).unwrap()
}

fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not money: {value}")),
    )
    .unwrap()
}

/// What one call of a burst came to.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// Sends `count` chat calls at once, spread over `gateways` in turn; the i-th asks the mock
/// for `output_tokens(i)` output tokens. Each call's text is unique (`tag` and `i`), so none
/// is answered from the ladder's cache.
fn burst(
    gateways: &[String],
    tag: &str,
    count: usize,
    max_tokens: u64,
    output_tokens: impl Fn(usize) -> u64,
) -> Vec<Answer> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let calls = (0..count).map(|i| {
            let url = format!("{}/v1/chat/completions", gateways[i % gateways.len()]);
            let request = client
                .post(url)
                .bearer_auth(KEY)
                .header("X-Attribution-User-ID", "burst-user")
                .header("X-Attribution-Feature", "burst")
                .header("x-mock-output-tokens", output_tokens(i).to_string())
                .json(&json!({
                    "model": "gpt-4o",
                    "max_tokens": max_tokens,
                    // The standard tier by name: a call naming none reserves at priority
                    // prices, and these tests count reservations in standard ones.
                    "service_tier": "default",
                    "messages": [{"role": "user", "content": format!("{tag} call {i}")}],
                }));
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body: Value = response.json().await.unwrap();
                Answer {
                    status,
                    headers,
                    body,
                }
            }
        });
        futures_join(calls).await
    })
}

async fn futures_join<F: Future<Output = Answer> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<Answer> {
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    answers
}

const DAILY_CAP: &str = r#"
[policy.kill_switch]
enabled = false

[[policy.budgets]]
scope = "tenant"
period = "day"
limit_usd = "1.00"
"#;

/// 500 concurrent calls, each of a random cost up to $0.02, against a $1.00 daily cap.
fn overshoot(gateways: &[String]) -> Vec<Answer> {
    // A fixed pseudo-random spread of output tokens (1..=2,000): $0.00001 to $0.02 each.
    burst(gateways, "overshoot", 500, 2_000, |i| {
        1 + (i as u64 * 7_919 + 13) % 2_000
    })
}

/// Every refusal is the quota error and says the call did not fit; nothing else failed.
fn check_refusals(answers: &[Answer]) -> usize {
    let cap = Decimal::from_str("1.00").unwrap();
    let mut refused = 0;
    for answer in answers {
        match answer.status {
            200 => {}
            429 => {
                refused += 1;
                let error = &answer.body["error"];
                assert_eq!(error["code"], "budget_exceeded", "{}", answer.body);
                assert_eq!(error["type"], "insufficient_quota");
                assert_eq!(decimal(&error["limit_usd"]), cap);
                let committed = decimal(&error["spent_usd"]) + decimal(&error["reserved_usd"]);
                // Refused only when the call's worst case did not fit in what was left.
                assert!(
                    committed + decimal(&error["requested_usd"]) > cap,
                    "a call that fit was refused: {}",
                    answer.body
                );
                assert_eq!(answer.headers["x-should-retry"], "false");
                assert!(answer.headers.contains_key("retry-after"));
            }
            other => panic!("unexpected status {other}: {}", answer.body),
        }
    }
    refused
}

#[test]
fn concurrent_calls_never_overshoot_a_daily_cap() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, DAILY_CAP);
    let gateway = serve(&config);
    let answers = overshoot(std::slice::from_ref(&gateway.url));
    let refused = check_refusals(&answers);
    assert!(refused > 0, "the burst never reached the cap");
    // Once the burst has settled, calls one at a time fill the cap up to the last call
    // that fits (each refusal checked as above), so a refusal is never the reservations of
    // calls that already ended.
    let mut refusals = 0;
    for sent in 0.. {
        assert!(sent < 200, "sequential calls were never refused");
        if refusals == 3 {
            break;
        }
        let tag = format!("sequential {sent}");
        let next = burst(std::slice::from_ref(&gateway.url), &tag, 1, 2_000, |_| {
            2_000
        });
        if check_refusals(&next) == 1 {
            refusals += 1;
            let error = &next[0].body["error"];
            assert_eq!(decimal(&error["reserved_usd"]), Decimal::ZERO, "{error}");
        }
    }
    assert!(gateway.terminate().success());
    let spent = ledger_cost(&dir.path().join("ledger.duckdb"));
    assert!(spent <= Decimal::ONE, "spent {spent} past the $1.00 cap");
    // The sequential calls stopped only when one more $0.02 call could not fit.
    assert!(
        spent > Decimal::from_str("0.97").unwrap(),
        "only {spent} of the cap was used"
    );
}

/// Two gateways, each with its own ledger, sharing policy state in one Redis.
struct Replicas {
    dirs: Vec<tempfile::TempDir>,
    gateways: Vec<support::Server>,
    urls: Vec<String>,
}

impl Replicas {
    fn start(redis: &Redis, mock: &str, policy: &str) -> Replicas {
        Replicas::with_ledger(redis, mock, policy, None)
    }

    /// Two gateways sharing Redis, and the ClickHouse ledger at `clickhouse` when given.
    fn with_ledger(redis: &Redis, mock: &str, policy: &str, clickhouse: Option<&str>) -> Replicas {
        let extra = format!(
            "[state]\nkind = \"redis\"\nurl = \"{}\"\n{policy}",
            redis.url
        );
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let gateways: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let config = write_config(dir.path(), mock, &extra);
                if let Some(url) = clickhouse {
                    use_clickhouse(&config, url);
                }
                serve(&config)
            })
            .collect();
        let urls = gateways.iter().map(|gateway| gateway.url.clone()).collect();
        Replicas {
            dirs,
            gateways,
            urls,
        }
    }
}

#[test]
fn two_gateways_sharing_redis_never_overshoot_a_daily_cap() {
    let redis = Redis::start();
    let mock = mock_provider();
    let Replicas {
        dirs,
        gateways,
        urls,
    } = Replicas::start(&redis, &mock.url, DAILY_CAP);
    let answers = overshoot(&urls);
    let refused = check_refusals(&answers);
    assert!(refused > 0, "the burst never reached the cap");
    let served: Vec<usize> = (0..2)
        .map(|g| {
            answers
                .iter()
                .enumerate()
                .filter(|(i, answer)| i % 2 == g && answer.status == 200)
                .count()
        })
        .collect();
    assert!(
        served.iter().all(|n| *n > 0),
        "both replicas served: {served:?}"
    );
    for gateway in gateways {
        assert!(gateway.terminate().success());
    }
    let spent: Decimal = dirs
        .iter()
        .map(|dir| ledger_cost(&dir.path().join("ledger.duckdb")))
        .sum();
    assert!(
        spent <= Decimal::ONE,
        "spent {spent} past the $1.00 cap across replicas"
    );
    assert!(spent > Decimal::ZERO);
}

/// Points the gateway config at `config` to a ClickHouse ledger.
fn use_clickhouse(config: &Path, url: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen(
        "[store]\n",
        &format!("[store]\nkind = \"clickhouse\"\nurl = \"{url}\"\n"),
        1,
    );
    std::fs::write(config, text).unwrap();
}

/// Events in the ClickHouse ledger at `url` and how many distinct ids they carry.
fn clickhouse_events(url: &str) -> (u64, u64) {
    let store = burnrate_store::clickhouse::ClickHouse::connect(url).unwrap();
    let text = store
        .execute("SELECT count(), uniqExact(id) FROM burnrate.events FORMAT TabSeparated")
        .unwrap();
    let (all, distinct) = text.trim().split_once('\t').unwrap();
    (all.parse().unwrap(), distinct.parse().unwrap())
}

#[test]
fn two_gateways_one_redis_one_clickhouse_record_every_call_once_and_hold_the_cap() {
    let clickhouse = clickhouse_server::start();
    let redis = Redis::start();
    let mock = mock_provider();
    let Replicas {
        dirs: _dirs,
        gateways,
        urls,
    } = Replicas::with_ledger(&redis, &mock.url, DAILY_CAP, Some(&clickhouse.url));
    let answers = overshoot(&urls);
    let refused = check_refusals(&answers);
    assert!(refused > 0, "the burst never reached the cap");
    for g in 0..2 {
        let served = answers
            .iter()
            .enumerate()
            .filter(|(i, answer)| i % 2 == g && answer.status == 200)
            .count();
        assert!(served > 0, "replica {g} served no call");
    }
    for gateway in gateways {
        assert!(gateway.terminate().success());
    }
    // Every call, served or refused, is one event, once.
    assert_eq!(clickhouse_events(&clickhouse.url), (500, 500));
    // Both replicas' spend, read from the shared ledger, stayed under the cap.
    let spent = ledger_cost(Path::new(&clickhouse.url));
    assert!(spent <= Decimal::ONE, "spent {spent} past the $1.00 cap");
    assert!(spent > Decimal::ZERO);
}

#[test]
fn a_clickhouse_outage_under_load_loses_and_doubles_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let mut clickhouse = clickhouse_server::start();
    let redis = Redis::start();
    let mock = mock_provider();
    let replicas = Replicas::with_ledger(&redis, &mock.url, "", Some(&clickhouse.url));
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    // Eight clients call the two gateways one call after another until told to stop.
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let url = replicas.urls[client % 2].clone();
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut failed = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let response = http
                        .post(format!("{url}/v1/chat/completions"))
                        .bearer_auth(KEY)
                        .header("X-Attribution-User-ID", format!("client-{client}"))
                        .header("X-Attribution-Feature", "outage")
                        .json(&json!({"model": "gpt-4o", "messages": [
                            {"role": "user", "content": format!("client {client} call {n}")}]}))
                        .send()
                        .unwrap();
                    match response.status().as_u16() {
                        200 => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        status => failed.push(status),
                    }
                }
                failed
            })
        })
        .collect();
    let wait_for = |calls: u64| {
        let start = served.load(Ordering::Relaxed);
        while served.load(Ordering::Relaxed) < start + calls {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for(200);
    clickhouse.stop();
    let before_outage = served.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_secs(30));
    // The gateways kept serving while ClickHouse was down.
    let during_outage = served.load(Ordering::Relaxed) - before_outage;
    assert!(
        during_outage > 100,
        "only {during_outage} calls served in 30 s"
    );
    clickhouse.resume();
    wait_for(200);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        assert_eq!(
            client.join().unwrap(),
            Vec::<u16>::new(),
            "calls that failed"
        );
    }
    for gateway in replicas.gateways {
        assert!(gateway.terminate().success());
    }
    let served = served.load(Ordering::Relaxed);
    assert_eq!(clickhouse_events(&clickhouse.url), (served, served));
}

const RATE_LIMIT: &str = r#"
[[policy.rate_limits]]
scope = "user"
requests_per_minute = 5
"#;

/// 20 calls at once against 5 requests a minute: exactly 5 through, 15 refused with a
/// `Retry-After` of at most 12 s (one request every 12 s refills the bucket).
fn check_burst(answers: &[Answer]) {
    let through = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(through, 5, "exactly the limit gets through");
    for answer in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert_eq!(answer.body["error"]["code"], "rate_limited");
        assert_eq!(answer.headers["x-ratelimit-limit"], "5");
        assert_eq!(answer.headers["x-ratelimit-remaining"], "0");
        let retry: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=12).contains(&retry), "Retry-After {retry}");
        assert!(!answer.headers.contains_key("x-should-retry"));
    }
    for answer in answers.iter().filter(|a| a.status == 200) {
        let remaining: u64 = answer.headers["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining < 5);
    }
}

#[test]
fn a_burst_gets_exactly_the_rate_limit_through() {
    let (_mock, dir, gateway) = gateway_with(RATE_LIMIT);
    check_burst(&burst(
        std::slice::from_ref(&gateway.url),
        "burst",
        20,
        10,
        |_| 5,
    ));
    assert!(gateway.terminate().success());
    let blocked = export(&dir.path().join("ledger.duckdb"))
        .into_iter()
        .filter(|event| event["status"] == "blocked")
        .count();
    assert_eq!(blocked, 15, "each refusal is recorded");
}

#[test]
fn the_rate_limit_holds_across_two_replicas_sharing_redis() {
    let redis = Redis::start();
    let mock = mock_provider();
    // `_dirs` keeps the ledgers alive until the gateways have stopped.
    let Replicas {
        dirs: _dirs,
        gateways,
        urls,
    } = Replicas::start(&redis, &mock.url, RATE_LIMIT);
    check_burst(&burst(&urls, "burst", 20, 10, |_| 5));
    for gateway in gateways {
        assert!(gateway.terminate().success());
    }
}

/// A key bound to `tenant`, as a `[[keys]]` table.
fn key_table(id: &str, key: &str, tenant: &str) -> String {
    format!(
        "[[keys]]\nid = \"{id}\"\nsha256 = \"{}\"\ntenant_id = \"{tenant}\"\n",
        burnrate_sha256(key)
    )
}

/// Runs one scenario of policy_calls.py; its lines by step.
fn scenario(gateway: &str, name: &str) -> HashMap<String, Value> {
    json_lines(
        Command::new(python())
            .arg(script("policy_calls.py"))
            .arg(name)
            .env("BURNRATE_URL", gateway)
            .env("LADDER_KEY", "br-ladder-key")
            .env("RUNAWAY_KEY", "br-runaway-key")
            .env("RUNS_KEY", "br-runs-key"),
        name,
    )
    .into_iter()
    .map(|line| (line["step"].as_str().unwrap().to_string(), line))
    .collect()
}

#[test]
fn each_rung_of_the_ladder_through_the_official_sdks() {
    let extra = format!(
        r#"
{keys}
[policy]
timezone = "Europe/Berlin"
auto_tier = "standard"              # the SDK calls name no tier; the mock bills standard

[policy.ladder]
fallback_at = 0.5
cache_at = 0.8

[policy.fallbacks]
"gpt-4o" = "gpt-4o-mini"

[policy.upgrade]
message = "Upgrade to the Scale plan."
url = "https://example.com/billing"

[[policy.budgets]]
scope = "tenant"
id = "ladder-tenant"
period = "day"
limit_usd = "0.10"
"#,
        keys = key_table("ladder", "br-ladder-key", "ladder-tenant")
    );
    let (_mock, dir, gateway) = gateway_with(&extra);
    let steps = scenario(&gateway.url, "ladder");
    let step = |name: &str| &steps[name];

    assert_eq!(step("first")["ok"], true, "{}", step("first"));
    assert_eq!(step("first")["degraded"], Value::Null);
    // Rung 1: half the cap spent, gpt-4o goes to the configured cheaper model.
    let fallback = step("fallback");
    assert_eq!(fallback["ok"], true, "{fallback}");
    assert!(
        fallback["model"]
            .as_str()
            .unwrap()
            .starts_with("gpt-4o-mini")
    );
    assert_eq!(
        fallback["degraded"],
        "fallback; from=gpt-4o; to=gpt-4o-mini"
    );
    // Rung 2: past 80 %, the repeated request is the first answer again, from the cache.
    let cached = step("cached");
    assert_eq!(cached["ok"], true, "{cached}");
    assert_eq!(cached["degraded"], "cached");
    assert_eq!(cached["id"], step("first")["id"]);
    // Rung 3: what cannot fit is a quota error the SDKs raise as a rate-limit error, and
    // do not retry.
    let quota = step("quota_openai");
    assert_eq!(quota["exception"], "RateLimitError", "{quota}");
    assert_eq!(quota["status"], 429);
    assert_eq!(quota["should_retry"], "false");
    let error = &quota["body"];
    assert_eq!(error["code"], "budget_exceeded", "{error}");
    assert_eq!(error["scope"], "tenant:ladder-tenant:day");
    assert_eq!(
        decimal(&error["limit_usd"]),
        Decimal::from_str("0.1").unwrap()
    );
    assert!(decimal(&error["spent_usd"]) > Decimal::from_str("0.08").unwrap());
    assert_eq!(error["upgrade"]["url"], "https://example.com/billing");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Upgrade to the Scale plan.")
    );
    // The period resets at midnight in Berlin, less than a day away.
    let retry = error["retry_after_s"].as_u64().unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(quota["retry_after"], retry.to_string());
    let anthropic = step("quota_anthropic");
    assert_eq!(anthropic["exception"], "RateLimitError", "{anthropic}");
    assert_eq!(anthropic["body"]["type"], "error");
    assert_eq!(anthropic["body"]["error"]["type"], "rate_limit_error");
    assert_eq!(anthropic["body"]["error"]["code"], "budget_exceeded");
    assert_eq!(
        anthropic["body"]["error"]["scope"],
        "tenant:ladder-tenant:day"
    );

    assert!(gateway.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    let by_feature = |feature: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| event["feature"] == feature)
            .collect()
    };
    let fallback = by_feature("fallback");
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["requested_model"], "gpt-4o");
    assert!(
        fallback[0]["model"]
            .as_str()
            .unwrap()
            .starts_with("gpt-4o-mini")
    );
    assert_eq!(
        fallback[0]["labels"]["burnrate.degraded"],
        "fallback; from=gpt-4o; to=gpt-4o-mini"
    );
    let cached = by_feature("cached");
    assert_eq!(cached[0]["labels"]["burnrate.degraded"], "cached");
    assert_eq!(cached[0]["usage"]["output_tokens"], 0);
    // One refusal each: the SDKs did not retry.
    for feature in ["quota_openai", "quota_anthropic"] {
        let refused = by_feature(feature);
        assert_eq!(refused.len(), 1, "{feature}: {refused:?}");
        assert_eq!(refused[0]["status"], "blocked");
        assert!(
            refused[0]["error"]
                .as_str()
                .unwrap()
                .starts_with("budget_exceeded")
        );
    }
    let spent = ledger_cost(&dir.path().join("ledger.duckdb"));
    assert!(spent <= Decimal::from_str("0.10").unwrap(), "spent {spent}");
}

#[test]
fn the_kill_switch_pauses_a_runaway_tenant_and_pages_on_call() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let pager = Receiver::start();
    // A synthetic baseline: about $0.01 in this hour on each of the last 8 days.
    let now = chrono::Utc::now();
    let baseline: String = (1..=8)
        .map(|days| {
            let event = json!({
                "ts": (now - chrono::Duration::days(days)).to_rfc3339(),
                "provider": "openai", "model": "gpt-4o", "tenant_id": "runaway",
                "usage": {"input_tokens": 100, "output_tokens": 950 + 20 * days},
            });
            format!("{event}\n")
        })
        .collect();
    let events = dir.path().join("baseline.jsonl");
    std::fs::write(&events, baseline).unwrap();
    let db = dir.path().join("ledger.duckdb");
    let imported = burnrate()
        .args(["import", "--db"])
        .arg(&db)
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let extra = format!(
        r#"
{keys}
[policy.kill_switch]
z_threshold = 4.0
min_hour_spend_usd = "0.05"
min_stddev_usd = "0.02"

[[notifiers]]
name = "on-call"
kind = "webhook"
url = "{pager}"
page = true
"#,
        keys = key_table("runaway", "br-runaway-key", "runaway"),
        pager = pager.url
    );
    let gateway = serve(&write_config(dir.path(), &mock.url, &extra));
    let steps = scenario(&gateway.url, "killswitch");
    // $0.05 is z = 2 against the baseline: fine. $0.10 is z = 4.5: paused.
    assert_eq!(steps["spike1"]["ok"], true, "{}", steps["spike1"]);
    assert_eq!(
        steps["spike2"]["ok"], true,
        "the call that crossed still completes"
    );
    let paused = &steps["paused"];
    assert_eq!(paused["exception"], "PermissionDeniedError", "{paused}");
    assert_eq!(paused["body"]["code"], "tenant_paused");
    assert_eq!(paused["should_retry"], "false");
    let pages = pager.wait_for(1);
    assert_eq!(pages[0]["kind"], "tenant_paused");
    assert_eq!(pages[0]["page"], true);
    assert_eq!(pages[0]["tenant"], "runaway");

    let listed = burnrate()
        .args([
            "tenants",
            "paused",
            "--server",
            &gateway.url,
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("runaway") && listed.contains("kill switch"),
        "{listed}"
    );
    let resumed = burnrate()
        .args(["tenants", "resume", "runaway", "--server", &gateway.url])
        .args(["--admin-token", ADMIN_TOKEN])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = scenario(&gateway.url, "resumed");
    assert_eq!(after["resumed"]["ok"], true, "{}", after["resumed"]);
    // An operator's pause of a name no key is bound to is kept, with a warning that it
    // refuses nothing; one of a bound tenant has none.
    let pause = |tenant: &str| {
        burnrate()
            .args(["tenants", "pause", tenant, "--server", &gateway.url])
            .args(["--admin-token", ADMIN_TOKEN])
            .output()
            .unwrap()
    };
    let typo = pause("runawya");
    assert!(typo.status.success());
    let warning = String::from_utf8_lossy(&typo.stderr);
    assert!(
        warning.contains("no key in the gateway's configuration is bound to tenant `runawya`"),
        "{warning}"
    );
    let bound = pause("runaway");
    assert!(bound.status.success());
    assert!(
        !String::from_utf8_lossy(&bound.stderr).contains("WARNING"),
        "{}",
        String::from_utf8_lossy(&bound.stderr)
    );
    assert!(gateway.terminate().success());
}

#[test]
fn a_tenant_without_seven_days_of_history_is_never_paused() {
    let extra = format!(
        "{}\n[policy.kill_switch]\nmin_hour_spend_usd = \"0.05\"\nmin_stddev_usd = \"0.02\"\n",
        key_table("runaway", "br-runaway-key", "runaway")
    );
    let (_mock, _dir, gateway) = gateway_with(&extra);
    let steps = scenario(&gateway.url, "killswitch");
    for step in ["spike1", "spike2", "paused"] {
        assert_eq!(steps[step]["ok"], true, "{step}: {}", steps[step]);
    }
    assert!(gateway.terminate().success());
}

#[test]
fn run_limits_and_the_loop_detector_stop_runs() {
    let extra = format!(
        r#"
{keys}
[policy.runs]
max_tokens = 2000
max_tool_calls = 3
max_depth = 2
loop_repeats = 3
"#,
        keys = key_table("runs", "br-runs-key", "runs-tenant")
    );
    let (_mock, dir, gateway) = gateway_with(&extra);
    let steps = scenario(&gateway.url, "runs");
    let refused = |step: &str, limit: &str| {
        let line = &steps[step];
        assert_eq!(line["exception"], "PermissionDeniedError", "{step}: {line}");
        assert_eq!(line["body"]["code"], "run_limit_exceeded", "{step}");
        let message = line["body"]["message"].as_str().unwrap();
        assert!(message.contains(limit), "{step}: {message}");
    };
    let passed = |step: &str| assert_eq!(steps[step]["ok"], true, "{step}: {}", steps[step]);
    for step in ["tokens0", "tokens1", "tokens2"] {
        passed(step);
    }
    refused("tokens3", "max_tokens");
    for step in ["tools0", "tools1", "tools2", "tools3"] {
        passed(step);
        assert_eq!(steps[step]["tool_calls"], 1);
    }
    refused("tools4", "max_tool_calls");
    for step in ["loop0", "loop1", "loop2"] {
        passed(step);
    }
    refused("loop3", "loop_repeats");
    assert!(
        steps["loop3"]["body"]["message"]
            .as_str()
            .unwrap()
            .contains("search_crm")
    );
    for step in ["depth0", "depth1", "depth2"] {
        passed(step);
    }
    refused("depth3", "max_depth");
    for step in ["tree0", "tree1", "tree2"] {
        passed(step);
    }
    refused(
        "tree3",
        "agent run t0.c is stopped: a run above it is past its max_tokens limit (2000): that run has used",
    );
    refused(
        "tree4",
        "agent run t0 is stopped: it is past its max_tokens limit (2000): it has used",
    );
    assert!(gateway.terminate().success());
    // The ledger says why each refused call was refused.
    let events = export(&dir.path().join("ledger.duckdb"));
    let blocked: Vec<&Value> = events
        .iter()
        .filter(|event| event["status"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 6, "{blocked:?}");
    for event in blocked {
        assert!(
            event["error"]
                .as_str()
                .unwrap()
                .starts_with("run_limit_exceeded")
        );
    }
}

#[test]
fn shadow_mode_refuses_nothing_and_records_what_it_would_have() {
    let extra = format!("[policy]\nmode = \"shadow\"\n{RATE_LIMIT}");
    let (_mock, dir, gateway) = gateway_with(&extra);
    let answers = burst(std::slice::from_ref(&gateway.url), "burst", 8, 10, |_| 5);
    assert!(answers.iter().all(|answer| answer.status == 200));
    assert!(gateway.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    let shadowed = events
        .iter()
        .filter(|event| {
            event["labels"]["burnrate.shadow"]
                .as_str()
                .is_some_and(|text| text.contains("rate limit of 5 requests per minute"))
        })
        .count();
    assert_eq!(shadowed, 3, "8 calls, 5 allowed: 3 would have been refused");
}

#[test]
fn a_reload_applies_new_limits_without_dropping_calls_in_flight() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    // A slow call in flight while the configuration changes under it.
    let url = gateway.url.clone();
    let slow = std::thread::spawn(move || slow_call(&url));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let limited = write_config(dir.path(), &mock.url, RATE_LIMIT);
    assert_eq!(limited, config);
    let reload = run_reload(&gateway.url);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    assert_eq!(slow.join().unwrap(), 200, "the call in flight finished");
    let answers = burst(std::slice::from_ref(&gateway.url), "burst", 8, 10, |_| 5);
    assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 5);
    // A configuration with a mistake is refused, and the CLI says what the mistake is.
    write_config(
        dir.path(),
        &mock.url,
        "[[policy.budgets]]\nscope = \"tenant\"\nperiod = \"month\"\nlimit_usd = \"ten\"\n",
    );
    let refused = run_reload(&gateway.url);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("the configuration was not reloaded") && stderr.contains("ten"),
        "{stderr}"
    );
    assert!(gateway.terminate().success());

    // On the audit trail: the reload from one configuration hash to the other, the call in
    // flight stamped with the configuration it started under, the later ones with the new.
    let mut records = Vec::new();
    burnrate_audit::export::walk(&dir.path().join("audit"), None, |record, _| {
        records.push(record.clone());
        Ok(())
    })
    .unwrap();
    let reload = records
        .iter()
        .find(|r| r.kind == Some(burnrate_audit::Kind::ConfigReload))
        .expect("a reload record");
    let slow = records
        .iter()
        .find(|r| r.feature.as_deref() == Some("slow"))
        .expect("the slow call's record");
    let later = records
        .iter()
        .find(|r| r.feature.as_deref() == Some("burst"))
        .expect("a later call's record");
    let (old, new) = (
        slow.config_hash.clone().unwrap(),
        later.config_hash.clone().unwrap(),
    );
    assert_ne!(old, new);
    assert_eq!(reload.config_hash.as_ref(), Some(&new));
    assert_eq!(
        reload.detail.as_deref(),
        Some(format!("configuration {old} replaced by {new}").as_str())
    );
}

/// `burnrate reload` against the gateway at `url`.
fn run_reload(url: &str) -> std::process::Output {
    burnrate()
        .args(["reload", "--server", url, "--admin-token", ADMIN_TOKEN])
        .output()
        .unwrap()
}

/// One call the mock answers after two seconds; its status.
fn slow_call(gateway: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{gateway}/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("X-Attribution-User-ID", "slow-user")
            .header("X-Attribution-Feature", "slow")
            .header("x-mock-delay-ms", "2000")
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn spend_survives_a_restart() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let cap = r#"
[[policy.budgets]]
scope = "tenant"
period = "month"
limit_usd = "0.05"
"#;
    let config = write_config(dir.path(), &mock.url, cap);
    let gateway = serve(&config);
    // $0.04 of the $0.05 cap.
    let first = burst(
        std::slice::from_ref(&gateway.url),
        "before",
        2,
        2_000,
        |_| 2_000,
    );
    assert!(first.iter().all(|answer| answer.status == 200));
    assert!(gateway.terminate().success());
    // A new process knows nothing but the ledger: another $0.02 call must not fit.
    let gateway = serve(&config);
    let after = burst(
        std::slice::from_ref(&gateway.url),
        "after",
        1,
        2_000,
        |_| 2_000,
    );
    assert_eq!(after[0].status, 429, "{}", after[0].body);
    let spent = decimal(&after[0].body["error"]["spent_usd"]);
    assert!(
        spent >= Decimal::from_str("0.04").unwrap(),
        "rebuilt spend {spent}"
    );
    assert!(gateway.terminate().success());
}

#[test]
fn crossing_a_daily_cap_alerts_and_tightens_the_tenants_rate_limit() {
    let slack = Receiver::start();
    let extra = format!(
        r#"
[policy.ladder]
capped_rate_fraction = 0.25

[[policy.rate_limits]]
scope = "tenant"
requests_per_minute = 40

[[policy.budgets]]
scope = "tenant"
period = "day"
limit_usd = "0.044"

[[notifiers]]
name = "finops"
kind = "webhook"
url = "{url}"
"#,
        url = slack.url
    );
    let (_mock, _dir, gateway) = gateway_with(&extra);
    // Two $0.02 calls (90% of the cap), then one that does not fit: the cap is crossed.
    let spend = burst(
        std::slice::from_ref(&gateway.url),
        "spend",
        2,
        2_000,
        |_| 2_000,
    );
    assert!(spend.iter().all(|answer| answer.status == 200));
    let over = burst(std::slice::from_ref(&gateway.url), "over", 1, 2_000, |_| {
        2_000
    });
    assert_eq!(over[0].status, 429, "{}", over[0].body);
    let alerts = slack.wait_for(1);
    assert_eq!(alerts[0]["kind"], "budget_cap_crossed");
    assert_eq!(alerts[0]["page"], false);
    assert_eq!(alerts[0]["tenant"], "blackbox-tenant");
    // 40 a minute would let a burst of 20 through; at a quarter (10 a minute, with 3
    // already taken) at most 10 pass. Cheap calls, so the budget is not what refuses.
    let burst_answers = burst(std::slice::from_ref(&gateway.url), "after", 20, 1, |_| 1);
    let through = burst_answers.iter().filter(|a| a.status == 200).count();
    assert!(
        (1..=10).contains(&through),
        "{through} calls passed the tightened limit"
    );
    let limited = burst_answers
        .iter()
        .find(|answer| answer.status == 429)
        .expect("the tightened limit refused some");
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    assert_eq!(limited.headers["x-ratelimit-limit"], "10");
    assert!(gateway.terminate().success());
}

#[test]
fn sighup_reloads_the_configuration() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    let before = burst(std::slice::from_ref(&gateway.url), "before", 8, 10, |_| 5);
    assert!(before.iter().all(|answer| answer.status == 200));
    write_config(dir.path(), &mock.url, RATE_LIMIT);
    let hangup = Command::new("kill")
        .args(["-HUP", &gateway.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    // The signal is handled asynchronously: wait until a call meets the new limit.
    let limited = (0..100).any(|attempt| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let tag = format!("after {attempt}");
        let answers = burst(std::slice::from_ref(&gateway.url), &tag, 1, 10, |_| 5);
        answers[0].headers.contains_key("x-ratelimit-limit")
    });
    assert!(limited, "the new rate limit never applied");
    assert!(
        gateway.terminate().success(),
        "the gateway kept serving after SIGHUP"
    );
}

#[test]
fn a_call_whose_usage_never_arrived_is_charged_its_reservation() {
    let cap = "[[policy.budgets]]\nscope = \"tenant\"\nperiod = \"day\"\nlimit_usd = \"0.03\"\n";
    let (_mock, _dir, gateway) = gateway_with(cap);
    // A stream cut before its usage chunk: the provider may bill it, so it counts at its
    // worst case (about $0.02), and a second call of the same size no longer fits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(KEY)
            .header("X-Attribution-User-ID", "cut-user")
            .header("X-Attribution-Feature", "cut")
            .header("x-mock-cut-after", "2")
            .json(
                &json!({"model": "gpt-4o", "max_tokens": 2000, "stream": true,
                          "service_tier": "default",
                          "messages": [{"role": "user", "content": "cut me"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    });
    let next = burst(std::slice::from_ref(&gateway.url), "next", 1, 2_000, |_| {
        2_000
    });
    assert_eq!(next[0].status, 429, "{}", next[0].body);
    let spent = decimal(&next[0].body["error"]["spent_usd"]);
    assert!(
        spent >= Decimal::from_str("0.02").unwrap(),
        "the cut stream counted {spent}"
    );
    assert!(gateway.terminate().success());
}

#[test]
fn a_budget_added_by_reload_starts_from_what_was_already_spent() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    let before = burst(
        std::slice::from_ref(&gateway.url),
        "before",
        2,
        2_000,
        |_| 2_000,
    );
    assert!(before.iter().all(|answer| answer.status == 200));
    let cap = "[[policy.budgets]]\nscope = \"tenant\"\nperiod = \"day\"\nlimit_usd = \"0.05\"\n";
    write_config(dir.path(), &mock.url, cap);
    let reload = run_reload(&gateway.url);
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    // $0.04 was spent before the rule existed: another $0.02 does not fit.
    let after = burst(
        std::slice::from_ref(&gateway.url),
        "after",
        1,
        2_000,
        |_| 2_000,
    );
    assert_eq!(after[0].status, 429, "{}", after[0].body);
    assert!(decimal(&after[0].body["error"]["spent_usd"]) >= Decimal::from_str("0.04").unwrap());
    assert!(gateway.terminate().success());
}

#[test]
fn background_responses_are_refused_under_a_budget() {
    let cap = "[[policy.budgets]]\nscope = \"tenant\"\nperiod = \"day\"\nlimit_usd = \"5\"\n";
    let (_mock, _dir, gateway) = gateway_with(cap);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/responses", gateway.url))
            .bearer_auth(KEY)
            .header("X-Attribution-User-ID", "bg-user")
            .header("X-Attribution-Feature", "bg")
            .json(&json!({"model": "gpt-4o", "input": "later", "background": true}))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "background");
    assert!(gateway.terminate().success());
}

#[test]
fn an_image_reserves_the_models_context_window_not_the_bodys_bytes() {
    let cap = "[[policy.budgets]]\nscope = \"tenant\"\nperiod = \"day\"\nlimit_usd = \"0.30\"\n";
    let (_mock, _dir, gateway) = gateway_with(cap);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = |content: Value| {
        runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(KEY)
                .header("X-Attribution-User-ID", "img-user")
                .header("X-Attribution-Feature", "vision")
                .json(
                    &json!({"model": "gpt-4o", "max_tokens": 100, "service_tier": "default",
                              "messages": [{"role": "user", "content": content}]}),
                )
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    };
    // Text: a few hundred bytes bound the input, far inside $0.30.
    let (status, body) = call(json!("describe a cat"));
    assert_eq!(status, 200, "{body}");
    // An image by URL bills tokens its URL does not show: gpt-4o's 128k-token window at
    // $2.50/M is $0.32 of input alone, which cannot fit.
    let (status, body) = call(json!([
        {"type": "text", "text": "describe this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]));
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert!(
        decimal(&body["error"]["requested_usd"]) >= Decimal::from_str("0.32").unwrap(),
        "{body}"
    );
    assert!(gateway.terminate().success());
}

#[test]
fn an_adaptive_run_limit_stops_a_runaway_run_and_leaves_normal_runs_alone() {
    let adaptive = AdaptiveLimit::start("");
    // A normal run: two small calls ($0.001 of output each), well under 3 × $0.0025.
    for n in 0..2 {
        let (status, body) = adaptive.call("normal", 100, n);
        assert_eq!(status, 200, "{body}");
    }
    // A runaway: its first call costs $0.01 of output, past the $0.0075 limit; the run
    // is stopped from its next call on.
    let (status, body) = adaptive.call("runaway", 1_000, 0);
    assert_eq!(status, 200, "{body}");
    let (status, body) = adaptive.call("runaway", 1_000, 1);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "run_limit_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("adaptive cost limit (3×"), "{message}");
    // Other runs of the feature go on.
    let (status, body) = adaptive.call("normal-2", 100, 0);
    assert_eq!(status, 200, "{body}");
    assert!(adaptive.gateway.terminate().success());
}

#[test]
fn in_shadow_mode_the_adaptive_run_limit_records_the_stop_and_refuses_nothing() {
    let adaptive = AdaptiveLimit::start("mode = \"shadow\"\n");
    for n in 0..3 {
        let (status, body) = adaptive.call("runaway", 1_000, n);
        assert_eq!(status, 200, "call {n}: {body}");
    }
    let db = adaptive.dir.path().join("ledger.duckdb");
    assert!(adaptive.gateway.terminate().success());
    let shadowed: Vec<String> = export(&db)
        .iter()
        .filter(|e| e["agent_run_id"] == "runaway")
        .filter_map(|e| e["labels"]["burnrate.shadow"].as_str().map(str::to_owned))
        .collect();
    // The first call passes (the run had cost nothing yet); the next two would have been
    // refused, and say why.
    assert_eq!(shadowed.len(), 2, "{shadowed:?}");
    assert!(
        shadowed
            .iter()
            .all(|s| s.contains("adaptive cost limit (3×")),
        "{shadowed:?}"
    );
}

/// A gateway whose `triage` feature has a week of history (25 one-call runs of $0.0025,
/// the median) and an adaptive run limit of 3× it; `policy` goes into `[policy]`.
struct AdaptiveLimit {
    _mock: support::Server,
    dir: tempfile::TempDir,
    gateway: support::Server,
    client: reqwest::blocking::Client,
}

impl AdaptiveLimit {
    fn start(policy: &str) -> AdaptiveLimit {
        let mock = mock_provider();
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let lines: Vec<String> = (0..25)
            .map(|n| {
                json!({"ts": (now - chrono::Duration::hours(2 + n)).to_rfc3339(),
                       "provider": "openai", "model": "gpt-4o", "tenant_id": "blackbox-tenant",
                       "feature": "triage", "agent_run_id": format!("past-{n}"),
                       "usage": {"input_tokens": 1_000, "output_tokens": 0}})
                .to_string()
            })
            .collect();
        let history = dir.path().join("history.jsonl");
        std::fs::write(&history, lines.join("\n")).unwrap();
        let imported = burnrate()
            .args(["import", "--db"])
            .arg(dir.path().join("ledger.duckdb"))
            .arg(&history)
            .output()
            .unwrap();
        assert!(imported.status.success());
        let extra = format!(
            "[policy]\n{policy}[policy.runs]\nadaptive_multiple = 3.0\nadaptive_min_runs = 20\n"
        );
        let gateway = serve(&write_config(dir.path(), &mock.url, &extra));
        AdaptiveLimit {
            _mock: mock,
            dir,
            gateway,
            client: reqwest::blocking::Client::new(),
        }
    }

    /// Call `n` of `run`, with `output_tokens` of output.
    fn call(&self, run: &str, output_tokens: u32, n: usize) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/chat/completions", self.gateway.url))
            .bearer_auth(KEY)
            .header("X-Attribution-User-ID", "u1")
            .header("X-Attribution-Feature", "triage")
            .header("X-Attribution-Agent-Run-ID", run)
            .header("x-mock-output-tokens", output_tokens.to_string())
            .json(&json!({"model": "gpt-4o", "service_tier": "default",
                "messages": [{"role": "user", "content": format!("{run} step {n}")}]}))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    }
}
