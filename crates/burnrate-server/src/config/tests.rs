//! Configuration: defaults, every problem reported at once, secrets from the environment.

use super::*;

const MINIMAL: &str = r#"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:9/v1/"
api_key_env = "TEST_OPENAI_KEY"
models = ["gpt-*"]

[[keys]]
id = "acme-prod"
sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
tenant_id = "acme-corp"
"#;

fn env(name: &str) -> Option<String> {
    (name == "TEST_OPENAI_KEY").then(|| "sk-upstream".to_string())
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let config = Config::parse(MINIMAL, env).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8790");
    assert_eq!(config.require, vec!["tenant_id", "user_id", "feature"]);
    assert_eq!(config.untagged, Untagged::Reject);
    assert_eq!(config.store_path, PathBuf::from("data/burnrate.duckdb"));
    assert_eq!(
        config.flush_in_idle_time, None,
        "unset: the ledger decides whether a flush in idle time can be hurried"
    );
    assert_eq!(
        config.header_read_timeout,
        Some(Duration::from_secs(620)),
        "above the idle timeouts of load balancers that reuse connections"
    );
    assert_eq!(config.keys.len(), 1);
    let provider = config.providers.iter().next().unwrap();
    assert_eq!(
        provider.base_url, "http://127.0.0.1:9/v1",
        "trailing slash trimmed"
    );
    let (_, auth) = provider.auth().unwrap();
    assert_eq!(auth.to_str().unwrap(), "Bearer sk-upstream");
    assert_eq!(
        provider.http,
        HttpVersion::Auto,
        "HTTP/2 where the TLS handshake offers it"
    );
}

#[test]
fn every_problem_is_listed_with_its_key() {
    let text = r#"
[server]
listen = "nowhere"
[store]
kind = "sqlite"
[[providers]]
name = "x"
kind = "gemini"
base_url = "ftp://x"
[[providers]]
name = "y"
kind = "openai"
base_url = "ftp://y"
api_key_env = "UNSET_VARIABLE"
http = "3"
[[keys]]
id = "k"
sha256 = "zz"
tenant_id = "t"
[attribution]
require = ["tenant", "user_id"]
untagged = "drop"
"#;
    let problems = Config::parse(text, env).unwrap_err();
    let all = problems.join("\n");
    for expected in [
        "server.listen",
        "store.kind",
        "providers[0] (x).kind",
        "providers[1] (y).base_url",
        "providers[1] (y).api_key_env: environment variable UNSET_VARIABLE is not set",
        "providers[1] (y).models",
        "providers[1] (y).http: `3` must be",
        "keys[0] (k).sha256",
        "attribution.require: `tenant`",
        "attribution.untagged",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
}

#[test]
fn a_providers_http_version_reads_with_or_without_quotes() {
    for (written, read) in [
        ("\"auto\"", HttpVersion::Auto),
        ("\"1.1\"", HttpVersion::Http1),
        ("1.1", HttpVersion::Http1),
        ("\"2\"", HttpVersion::Http2),
        ("2", HttpVersion::Http2),
    ] {
        let text = MINIMAL.replace(
            "models = [\"gpt-*\"]",
            &format!("models = [\"gpt-*\"]\nhttp = {written}"),
        );
        let config = Config::parse(&text, env).unwrap();
        let provider = config.providers.iter().next().unwrap();
        assert_eq!(provider.http, read, "http = {written}");
    }
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let problems =
        Config::parse(&format!("{MINIMAL}\n[server]\nlisten_on = \"x\"\n"), env).unwrap_err();
    assert!(problems[0].contains("listen_on"), "{problems:?}");
}

#[test]
fn a_header_read_timeout_of_zero_means_no_bound() {
    let text = format!("[server]\nheader_read_timeout_s = 0\n{MINIMAL}");
    assert_eq!(Config::parse(&text, env).unwrap().header_read_timeout, None);
    let text = format!("[server]\nheader_read_timeout_s = 5\n{MINIMAL}");
    assert_eq!(
        Config::parse(&text, env).unwrap().header_read_timeout,
        Some(Duration::from_secs(5))
    );
}

/// `config check` and `serve` read the overrides file the configuration names: a missing or
/// malformed file is a problem of `prices.overrides`, found before `serve` would stop on it.
#[test]
fn the_price_overrides_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let problem = check_overrides(&missing).unwrap_err();
    assert!(
        problem.starts_with("prices.overrides: ") && problem.contains("missing.toml"),
        "{problem}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[price]]\nmodel = \"m\"\ninput_cost_per_tokn = \"0.000001\"\n",
    )
    .unwrap();
    let problem = check_overrides(&bad).unwrap_err();
    assert!(problem.contains("input_cost_per_tokn"), "{problem}");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[price]]\nmodel = \"m\"\ninput_cost_per_token = \"0.000001\"\n",
    )
    .unwrap();
    check_overrides(&good).unwrap();
}
