//! A gateway in front of the mock provider, both on random loopback ports, with its ledger in
//! a temporary directory.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is the test's failure"
)]

use std::net::SocketAddr;

use burnrate_model::UsageEvent;
use burnrate_server::{Config, Gateway, ServeError};
use burnrate_store::DuckStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The key the harness configures for tenant `acme-corp`.
pub const KEY: &str = "br-acme-test-key";
/// The upstream key the gateway must send to the provider.
pub const UPSTREAM_OPENAI_KEY: &str = "sk-upstream-openai";
/// The upstream key the gateway must send to Anthropic.
pub const UPSTREAM_ANTHROPIC_KEY: &str = "sk-ant-upstream";

/// The attribution headers most tests send.
pub const TAGS: [(&str, &str); 3] = [
    ("X-Attribution-User-ID", "u-1"),
    ("X-Attribution-Feature", "triage"),
    ("X-Attribution-Agent-Run-ID", "run-7"),
];

/// A running gateway and mock.
pub struct Harness {
    /// Gateway base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// What the mock received.
    pub log: burnrate_mock::RequestLog,
    /// The mock's address.
    pub mock: SocketAddr,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The gateway's calls under way (see `Gateway::calls`).
    pub calls: tokio_util::task::TaskTracker,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    run: Option<JoinHandle<Result<(), ServeError>>>,
    mock_task: JoinHandle<()>,
}

impl Harness {
    /// Gateway with the default attribution rules (tenant, user, feature required; reject).
    pub async fn start() -> Harness {
        Harness::start_with("").await
    }

    /// Gateway with extra TOML appended (e.g. an `[attribution]` table).
    pub async fn start_with(extra: &str) -> Harness {
        let (router, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
        Harness::start_upstream(router, log, extra).await
    }

    /// Gateway with extra TOML and a 60 s upstream timeout instead of 2 s, for calls that
    /// wait on one another at the upstream.
    pub async fn start_patient(extra: &str) -> Harness {
        let (router, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
        Harness::start_upstream_within(router, log, extra, 60).await
    }

    /// Gateway in front of `router` with a 60 s upstream timeout, for an upstream that holds
    /// a call until the test lets it go on.
    pub async fn start_upstream_patient(
        router: axum::Router,
        log: burnrate_mock::RequestLog,
    ) -> Harness {
        Harness::start_upstream_within(router, log, "", 60).await
    }

    /// Gateway in front of any upstream `router` (both providers point at it).
    pub async fn start_upstream(
        router: axum::Router,
        log: burnrate_mock::RequestLog,
        extra: &str,
    ) -> Harness {
        Harness::start_upstream_within(router, log, extra, 2).await
    }

    /// Gateway in front of `router` with an upstream timeout of `upstream_timeout_s`.
    async fn start_upstream_within(
        router: axum::Router,
        log: burnrate_mock::RequestLog,
        extra: &str,
        upstream_timeout_s: u64,
    ) -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = listener.local_addr().unwrap();
        let mock_task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let config = config_text_within(
            dir.path(),
            &format!("http://{mock}"),
            extra,
            upstream_timeout_s,
        );
        let config = Config::parse(&config, env).unwrap();
        let gateway = Gateway::bind(config).await.unwrap();
        let base = format!("http://{}", gateway.local_addr().unwrap());
        let calls = gateway.calls();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(gateway.run(async move {
            let _ = stopped.await;
        }));
        Harness {
            base,
            log,
            mock,
            client: reqwest::Client::new(),
            calls,
            dir,
            stop: Some(stop),
            run: Some(run),
            mock_task,
        }
    }

    /// A POST to the gateway with the test key and the usual attribution headers.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.post_with(&self.client, path)
    }

    /// [`Harness::post`] through another client (HTTP/2, say).
    pub fn post_with(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let mut request = client.post(format!("{}{path}", self.base)).bearer_auth(KEY);
        for (name, value) in TAGS {
            request = request.header(name, value);
        }
        request
    }

    /// The gateway's `/metrics` text once `done` holds for it (polled every 50 ms), so a
    /// test waits for a state instead of a time. Panics saying `what` was awaited after
    /// 60 s.
    pub async fn metrics_once(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let url = format!("{}/metrics", self.base);
        let wait = async {
            loop {
                let response = self.client.get(&url).send().await.unwrap();
                let text = response.text().await.unwrap();
                if done(&text) {
                    break text;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("waited 60 s for {what}"))
    }

    /// The gateway's data folder (ledger, journal, audit trail, content, archive).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the gateway gracefully and returns every event in its ledger.
    pub async fn stop(self) -> Vec<UsageEvent> {
        self.stop_and_keep().await.0
    }

    /// Stops the gateway gracefully and returns every event in its ledger and its data
    /// folder, kept until the caller drops it.
    pub async fn stop_and_keep(mut self) -> (Vec<UsageEvent>, tempfile::TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(run) = self.run.take() {
            run.await.unwrap().unwrap();
        }
        self.mock_task.abort();
        let path = self.dir.path().join("ledger.duckdb");
        let events =
            tokio::task::spawn_blocking(move || DuckStore::open(&path).unwrap().events().unwrap())
                .await
                .unwrap();
        (events, self.dir)
    }
}

/// The harness configuration: both providers pointing at the mock.
pub fn config_text(dir: &std::path::Path, mock: &str, extra: &str) -> String {
    config_text_within(dir, mock, extra, 2)
}

/// The harness configuration with an upstream timeout of `upstream_timeout_s`.
fn config_text_within(
    dir: &std::path::Path,
    mock: &str,
    extra: &str,
    upstream_timeout_s: u64,
) -> String {
    let hash = hex_sha256(KEY);
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
upstream_timeout_s = {upstream_timeout_s}
shutdown_timeout_s = 5
max_body_bytes = 65536

[store]
path = "{dir}/ledger.duckdb"
journal_dir = "{dir}/journal"
fsync_interval_ms = 10
flush_interval_ms = 50

[[providers]]
name = "openai"
kind = "openai"
base_url = "{mock}/v1"
api_key_env = "TEST_UPSTREAM_OPENAI"
models = ["gpt-*", "o*", "text-embedding-*"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{mock}"
api_key_env = "TEST_UPSTREAM_ANTHROPIC"
models = ["claude-*"]

[[keys]]
id = "acme-prod"
sha256 = "{hash}"
tenant_id = "acme-corp"
{extra}
"#,
        dir = dir.display()
    )
}

/// The admin token of the harness gateway.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The environment variables the harness gateway sees: the provider keys and admin token.
pub fn env(name: &str) -> Option<String> {
    match name {
        "TEST_UPSTREAM_OPENAI" => Some(UPSTREAM_OPENAI_KEY.into()),
        "TEST_UPSTREAM_ANTHROPIC" => Some(UPSTREAM_ANTHROPIC_KEY.into()),
        "BURNRATE_ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
        _ => None,
    }
}

fn hex_sha256(key: &str) -> String {
    burnrate_server::keys::hash_key(key)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Server-sent events of a body: the `data:` payloads in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| data.trim().to_string())
        .collect()
}
