//! The real `burnrate serve` binary in front of the real `burnrate mock-provider`, driven by
//! the official OpenAI and Anthropic Python SDKs and by plain HTTP; then killed.

mod support;

use std::collections::HashMap;
use std::process::Command;

use serde_json::{Value, json};
use support::{KEY, export, json_lines, mock_provider, python, script, serve, write_config};

#[test]
fn the_official_sdks_work_through_the_gateway_and_the_ledger_matches_what_they_saw() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    let results: HashMap<String, Value> = json_lines(
        Command::new(python())
            .arg(script("sdk_calls.py"))
            .env("BURNRATE_URL", &gateway.url)
            .env("BURNRATE_KEY", KEY),
        "sdk_calls.py",
    )
    .into_iter()
    .map(|value| (value["case"].as_str().unwrap().to_string(), value))
    .collect();
    for (case, result) in &results {
        assert!(result.get("exception").is_none(), "{case}: {result}");
    }
    assert!(gateway.terminate().success(), "SIGTERM exits 0");
    let events = export(&dir.path().join("ledger.duckdb"));
    let by_feature: HashMap<&str, &Value> = events
        .iter()
        .filter_map(|event| Some((event["feature"].as_str()?, event)))
        .collect();

    for case in [
        "chat_plain",
        "chat_tools",
        "chat_stream_usage",
        "reasoning",
        "responses_plain",
        "responses_stream",
        "embeddings",
        "messages_plain",
        "messages_stream",
    ] {
        let seen = &results[case];
        let event = by_feature
            .get(case)
            .unwrap_or_else(|| panic!("no event for {case}"));
        assert_eq!(event["status"], "ok", "{case}: {event}");
        assert_eq!(event["tenant_id"], "blackbox-tenant", "{case}");
        assert_eq!(event["user_id"], "sdk-user", "{case}");
        assert_eq!(
            event["usage"]["input_tokens"], seen["input"],
            "{case}: {event}"
        );
        assert_eq!(
            event["usage"]["output_tokens"], seen["output"],
            "{case}: {event}"
        );
        let layers = &event["layers"];
        let layer_sum = layers["prompt"].as_u64().unwrap()
            + layers["tool"].as_u64().unwrap()
            + layers["memory"].as_u64().unwrap();
        assert_eq!(json!(layer_sum), seen["input"], "{case}: layers {layers}");
    }
    assert_eq!(results["chat_tools"]["tool_calls"], 1);
    assert_eq!(by_feature["chat_tools"]["tool_calls"], 1);
    assert_eq!(
        by_feature["chat_tools"]["tools"][0]["name"],
        "lookup_invoice"
    );
    assert!(by_feature["chat_tools"]["layers"]["tool"].as_u64().unwrap() > 0);
    assert_eq!(
        by_feature["reasoning"]["usage"]["reasoning_tokens"],
        results["reasoning"]["reasoning"]
    );
    assert_eq!(
        by_feature["messages_plain"]["usage"]["cache_read_tokens"],
        results["messages_plain"]["cached"]
    );

    // The stream whose client did not ask for usage: the SDK saw none, the ledger has it.
    let quiet = &results["chat_stream_no_usage"];
    assert_eq!(quiet["usage_seen"], false);
    assert!(!quiet["text"].as_str().unwrap().is_empty());
    let quiet_event = by_feature["chat_stream_no_usage"];
    assert!(quiet_event["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // Refusals raise the SDKs' own exceptions.
    assert_eq!(results["refused"]["status"], 400);
    assert!(
        results["refused"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Attribution-User-ID")
    );
    assert_eq!(by_feature["refused"]["status"], "blocked");
    assert_eq!(results["bad_key"]["status"], 401);
    assert_eq!(results["bad_key"]["type"], "authentication_error");
}

#[test]
fn a_kill_9_loses_no_answered_call_and_the_next_start_replays_the_journal() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    // A long flush interval: the events are only in the journal when the process dies.
    let config = write_config(dir.path(), &mock.url, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("flush_interval_ms = 200", "flush_interval_ms = 600000");
    std::fs::write(&config, text).unwrap();
    let gateway = serve(&config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answered = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut answered = 0;
        for n in 0..20 {
            let stream = n % 2 == 0;
            let response = client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(KEY)
                .header("X-Attribution-User-ID", format!("u{n}"))
                .header("X-Attribution-Feature", "durability")
                .json(&json!({"model": "gpt-4.1", "stream": stream,
                              "messages": [{"role": "user", "content": "count me"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
            answered += 1;
        }
        answered
    });
    gateway.kill_hard();
    let journal: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .collect();
    assert!(!journal.is_empty(), "the journal holds the events");

    let restarted = serve(&config);
    assert!(restarted.terminate().success());
    let events = export(&dir.path().join("ledger.duckdb"));
    assert_eq!(
        events.len(),
        answered,
        "every answered call is in the ledger"
    );
    let users: std::collections::HashSet<&str> = events
        .iter()
        .map(|event| event["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), answered);
}

#[test]
fn queries_and_reports_go_through_a_running_server() {
    let mock = mock_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.url, "");
    let gateway = serve(&config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for feature in ["search", "search", "triage"] {
            let response = client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(KEY)
                .header("X-Attribution-User-ID", "u1")
                .header("X-Attribution-Feature", feature)
                .json(&json!({"model": "gpt-4.1",
                              "messages": [{"role": "user", "content": "hello"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    let query = |extra: &[&str], token: &str| {
        support::burnrate()
            .args(["query", "--server", &gateway.url, "--admin-token", token])
            .args(["--since", "1h", "--format", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = query(
        &[
            "--group-by",
            "feature",
            "--metrics",
            "requests,input_tokens",
        ],
        support::ADMIN_TOKEN,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = answer["rows"].as_array().unwrap();
    let requests = |feature: &str| {
        rows.iter()
            .find(|row| row["feature"] == feature)
            .map(|row| row["requests"].clone())
    };
    assert_eq!(requests("search"), Some(json!(2)));
    assert_eq!(requests("triage"), Some(json!(1)));

    let table = support::burnrate()
        .args(["report", "tenants", "--server", &gateway.url])
        .args(["--admin-token", support::ADMIN_TOKEN, "--since", "1h"])
        .output()
        .unwrap();
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("blackbox-tenant"));

    let refused = query(&[], "wrong-token");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));

    // The API itself takes the CLI's times, relative ones included, and names a bad one.
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            client
                .post(format!("{}{path}", gateway.url))
                .bearer_auth(support::ADMIN_TOKEN)
                .json(&body)
                .send()
        };
        let answer: Value = post(
            "/api/v1/query",
            json!({"since": "1h", "until": "now", "metrics": ["requests"]}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(answer["rows"][0]["requests"], 3, "{answer}");
        let report = post(
            "/api/v1/reports/tenants",
            json!({"since": "2026-01-01", "until": "now"}),
        )
        .await
        .unwrap();
        assert_eq!(report.status(), 200);
        let bad = post(
            "/api/v1/query",
            json!({"since": "last tuesday", "until": "now"}),
        )
        .await
        .unwrap();
        assert_eq!(bad.status(), 400);
        let text = bad.text().await.unwrap();
        assert!(
            text.contains("since: `last tuesday` is not a time"),
            "{text}"
        );
        // A report whose range runs backwards is the caller's mistake, as a query's is.
        let backwards = post(
            "/api/v1/reports/tenants",
            json!({"since": "now", "until": "7d"}),
        )
        .await
        .unwrap();
        assert_eq!(backwards.status(), 400);
        let text = backwards.text().await.unwrap();
        assert!(text.contains("must be before until"), "{text}");
    });
    assert!(gateway.terminate().success());
}

/// `config check` reads the price overrides file the configuration names, so a missing or
/// misspelt one is found before `serve` would stop on it.
#[test]
fn config_check_reads_the_price_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &str| {
        let config = write_config(dir.path(), "http://127.0.0.1:9", extra);
        support::burnrate()
            .args(["config", "check", "--config", config.to_str().unwrap()])
            .env("BLACKBOX_OPENAI_KEY", "k")
            .env("BLACKBOX_ANTHROPIC_KEY", "k")
            .output()
            .unwrap()
    };
    let missing = dir.path().join("missing.toml");
    let output = check(&format!(
        "[prices]\noverrides = \"{}\"\n",
        missing.display()
    ));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prices.overrides: ") && stderr.contains("missing.toml"),
        "{stderr}"
    );
    std::fs::write(
        &missing,
        "[[price]]\nmodel = \"m\"\ninput_cost_per_token = \"0.000001\"\n",
    )
    .unwrap();
    let output = check(&format!(
        "[prices]\noverrides = \"{}\"\n",
        missing.display()
    ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
