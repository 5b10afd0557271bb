//! The server's TOML configuration, in two stages: raw serde structs that reject unknown
//! keys, then [`RawConfig::validate`] into runtime types, collecting every problem (each
//! naming its key) before failing once. Secrets are named by environment variable only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditConfig, Capture};
use crate::reports::ReportsConfig;
use crate::retention::RetentionConfig;
use burnrate_insight::margins::Contract;
use burnrate_model::dimension::Dimension;
use burnrate_policy::PolicyConfig;
use burnrate_wire::otlp::OtlpMapping;
use serde::Deserialize;

use crate::keys::{KeyBinding, VirtualKeys};
use crate::notify::{NotifierConfig, Notifiers};
use crate::routing::{HttpVersion, Provider, ProviderKind, Providers};

/// A dimension the attribution headers can set and `[attribution] require` can demand.
pub const REQUIRABLE: [&str; 12] = [
    "tenant_id",
    "user_id",
    "feature",
    "task_id",
    "route",
    "agent_run_id",
    "parent_run_id",
    "agent_name",
    "session_id",
    "deployment",
    "prompt_version",
    "effort",
];

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default)]
    attribution: RawAttribution,
    #[serde(default)]
    prices: RawPrices,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    policy: PolicyConfig,
    #[serde(default)]
    notifiers: Vec<NotifierConfig>,
    #[serde(default)]
    contracts: Vec<Contract>,
    #[serde(default)]
    reports: ReportsConfig,
    #[serde(default)]
    audit: AuditConfig,
    #[serde(default)]
    retention: RetentionConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawState {
    kind: String,
    url: Option<String>,
    url_env: Option<String>,
}

impl Default for RawState {
    fn default() -> RawState {
        RawState {
            kind: "memory".into(),
            url: None,
            url_env: None,
        }
    }
}

/// Where policy state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// In this process.
    Memory,
    /// In Redis, shared by replicas.
    Redis {
        /// `redis://host:port/db`.
        url: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    otlp_listen: Option<String>,
    admin_token_env: String,
    max_body_bytes: usize,
    upstream_timeout_s: u64,
    shutdown_timeout_s: u64,
    header_read_timeout_s: u64,
}

impl Default for RawServer {
    fn default() -> RawServer {
        RawServer {
            listen: "127.0.0.1:8790".into(),
            otlp_listen: None,
            admin_token_env: "BURNRATE_ADMIN_TOKEN".into(),
            max_body_bytes: 32 << 20,
            upstream_timeout_s: 600,
            shutdown_timeout_s: 30,
            // Above the idle timeouts of common load balancers and HTTP clients (60-90 s;
            // Google's load balancers ask for more than 600 s), which reuse idle connections: a
            // request sent as the gateway closes one would fail.
            header_read_timeout_s: 620,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    kind: String,
    path: PathBuf,
    url: Option<String>,
    url_env: Option<String>,
    journal_dir: PathBuf,
    fsync_interval_ms: u64,
    flush_interval_ms: u64,
    flush_in_idle_time: Option<bool>,
}

impl Default for RawStore {
    fn default() -> RawStore {
        RawStore {
            kind: "duckdb".into(),
            path: "data/burnrate.duckdb".into(),
            url: None,
            url_env: None,
            journal_dir: "data/journal".into(),
            fsync_interval_ms: 100,
            flush_interval_ms: 1000,
            flush_in_idle_time: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    kind: String,
    base_url: String,
    api_key_env: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    /// A string, or a bare number (`http = 2`, `http = 1.1`) read the same way.
    http: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    sha256: String,
    tenant_id: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAttribution {
    require: Vec<String>,
    untagged: String,
    otel_prefixes: Vec<String>,
    otel_resource: Option<Vec<RawResourceDimension>>,
}

/// `[[attribution.otel_resource]]`: a resource attribute that sets a dimension.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResourceDimension {
    attribute: String,
    dimension: String,
}

impl Default for RawAttribution {
    fn default() -> RawAttribution {
        RawAttribution {
            require: vec!["tenant_id".into(), "user_id".into(), "feature".into()],
            untagged: "reject".into(),
            otel_prefixes: Vec::new(),
            otel_resource: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPrices {
    overrides: Option<PathBuf>,
    max_age_days: i64,
    update_from: Option<String>,
    update_interval_h: u64,
}

impl Default for RawPrices {
    fn default() -> RawPrices {
        RawPrices {
            overrides: None,
            max_age_days: 30,
            update_from: None,
            update_interval_h: 24,
        }
    }
}

/// What to do with a call that lacks a required attribution header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untagged {
    /// Refuse it with 400 naming the missing headers.
    Reject,
    /// Serve it and record the missing dimensions as `untagged`.
    Tag,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Gateway listen address.
    pub listen: SocketAddr,
    /// Second listener for OTLP/HTTP only (exporters default to port 4318).
    pub otlp_listen: Option<SocketAddr>,
    /// How spans map to dimensions besides the conventions.
    pub otlp: OtlpMapping,
    /// Token for the admin APIs (query, reports); `None` disables them.
    pub admin_token: Option<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest an upstream call may take.
    pub upstream_timeout: Duration,
    /// Longest graceful shutdown waits for in-flight calls.
    pub shutdown_timeout: Duration,
    /// Longest a client may stay silent after connecting, take to send an HTTP/1 request
    /// head, or leave a keep-alive connection idle, before the connection is closed (`None`:
    /// no bound).
    pub header_read_timeout: Option<Duration>,
    /// DuckDB ledger file (with a ClickHouse ledger, the local folders sit beside it).
    pub store_path: PathBuf,
    /// The ClickHouse ledger's URL, when `[store] kind = "clickhouse"`.
    pub clickhouse: Option<String>,
    /// Journal directory.
    pub journal_dir: PathBuf,
    /// Group-commit interval of the journal (zero: fsync every event).
    pub fsync_interval: Duration,
    /// How often the store writer moves journaled events into the store.
    pub flush_interval: Duration,
    /// Whether those timed moves run under `SCHED_IDLE` (Linux), yielding every core to calls;
    /// unset, they do where a move under way can be hurried (the ledger decides at start).
    pub flush_in_idle_time: Option<bool>,
    /// Upstream providers and the models they serve.
    pub providers: Arc<Providers>,
    /// Gateway virtual keys.
    pub keys: Arc<VirtualKeys>,
    /// Dimensions every call must carry.
    pub require: Vec<&'static str>,
    /// What to do with calls that lack them.
    pub untagged: Untagged,
    /// TOML price overrides loaded into the store at start.
    pub price_overrides: Option<PathBuf>,
    /// Age beyond which the price snapshot is reported stale.
    pub max_price_age_days: i64,
    /// Where a newer LiteLLM price table is read from (a URL or a file), and how often.
    pub price_update: Option<(String, Duration)>,
    /// Where policy state lives.
    pub state: StateConfig,
    /// Enforcement rules.
    pub policy: Arc<PolicyConfig>,
    /// Where alerts and pages go.
    pub notifiers: Vec<NotifierConfig>,
    /// What each tenant pays (`[[contracts]]`), for margins and reports.
    pub contracts: Vec<Contract>,
    /// Scheduled reports.
    pub reports: ReportsConfig,
    /// `[audit]`, its folders resolved.
    pub audit: AuditConfig,
    /// Content capture, when `[[audit.capture]]` names anyone.
    pub capture: Option<Capture>,
    /// `[retention]`, its archive folder resolved.
    pub retention: RetentionConfig,
    /// SHA-256 of the configuration text, stamped on audit records.
    pub hash: String,
    /// The file this configuration was read from (reloads read it again).
    pub source: Option<PathBuf>,
}

/// Every problem found in a configuration file, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Config {
    /// Reads and validates the file at `path`; environment variables supply the secrets.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |problem: String| ConfigError {
            path: path.display().to_string(),
            problems: vec![problem],
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            fail(match error.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such file: pass --config FILE (its keys: docs/configuration.md)".into()
                }
                _ => format!("cannot read it: {error}"),
            })
        })?;
        let mut config =
            Config::parse(&text, |name| std::env::var(name).ok()).map_err(|problems| {
                ConfigError {
                    path: path.display().to_string(),
                    problems,
                }
            })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates configuration text; `env` looks up environment variables.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| vec![error.to_string()])?;
        let mut config = raw.validate(env)?;
        config.hash = burnrate_audit::log::sha256_hex(text.as_bytes());
        Ok(config)
    }

    /// Reads and checks the price overrides file `prices.overrides` names, as `serve` reads
    /// it at start (`config check` runs this; a reload does not, since the file is read only
    /// at start).
    pub fn check_price_overrides(&self) -> Result<(), String> {
        self.price_overrides
            .as_deref()
            .map_or(Ok(()), check_overrides)
    }

    /// The archive's folder.
    pub fn archive_dir(&self) -> PathBuf {
        self.retention.archive_dir.clone()
    }
}

/// Reads and checks the price overrides file `prices.overrides` names, as `serve` will.
fn check_overrides(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("prices.overrides: {}: {error}", path.display()))?;
    burnrate_model::prices::overrides::parse(&text)
        .map(drop)
        .map_err(|error| format!("prices.overrides: {}: {error}", path.display()))
}

impl RawConfig {
    /// Checks every key and builds the runtime configuration, or lists every problem.
    pub fn validate(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let listen = self
            .server
            .listen
            .parse::<SocketAddr>()
            .map_err(|error| {
                problems.push(format!(
                    "server.listen: `{}` is not an address like 127.0.0.1:8790 ({error})",
                    self.server.listen
                ))
            })
            .ok();
        let otlp_listen = self.server.otlp_listen.as_deref().and_then(|text| {
            text.parse::<SocketAddr>()
                .map_err(|error| {
                    problems.push(format!(
                        "server.otlp_listen: `{text}` is not an address like 127.0.0.1:4318 ({error})"
                    ))
                })
                .ok()
        });
        let otlp = validate_otlp(
            self.attribution.otel_prefixes,
            self.attribution.otel_resource,
            &mut problems,
        );
        if self.server.max_body_bytes == 0 {
            problems.push("server.max_body_bytes: must be above zero".into());
        }
        let clickhouse = clickhouse_url(&mut self.store, &env, &mut problems);
        if self.prices.update_interval_h == 0 {
            problems.push("prices.update_interval_h: must be at least 1".into());
        }
        let price_update = self.prices.update_from.take().map(|from| {
            (
                from,
                Duration::from_secs(self.prices.update_interval_h.max(1) * 3_600),
            )
        });
        let providers = validate_providers(self.providers, &env, &mut problems);
        let keys = validate_keys(self.keys, &mut problems);
        let require = validate_require(&self.attribution.require, &mut problems);
        let untagged = match self.attribution.untagged.as_str() {
            "reject" => Untagged::Reject,
            "tag" => Untagged::Tag,
            other => {
                problems.push(format!(
                    "attribution.untagged: `{other}` must be \"reject\" or \"tag\""
                ));
                Untagged::Reject
            }
        };
        if self.prices.max_age_days < 0 {
            problems.push("prices.max_age_days: must not be negative".into());
        }
        let admin_token = env(&self.server.admin_token_env).filter(|token| !token.is_empty());
        let state = validate_state(self.state, &env, &mut problems);
        problems.extend(self.policy.validate());
        problems.extend(burnrate_insight::margins::validate(&self.contracts));
        problems.extend(self.reports.validate());
        problems.extend(self.retention.validate());
        let storage = Storage::resolve(&self.store.path, self.audit, self.retention);
        let capture = storage
            .audit
            .compile()
            .map_err(|audit_problems| problems.extend(audit_problems))
            .ok()
            .flatten();
        if !self.policy.budgets.is_empty()
            && u64::try_from(self.policy.reservation_ttl_s).unwrap_or(0)
                <= self.server.upstream_timeout_s
        {
            problems.push(format!(
                "policy.reservation_ttl_s: {} s must be longer than server.upstream_timeout_s \
                 ({} s), or reservations of slow calls lapse while they run",
                self.policy.reservation_ttl_s, self.server.upstream_timeout_s
            ));
        }
        if let Err(notifier_problems) =
            Notifiers::with_env(&self.notifiers, reqwest::Client::new(), &env)
        {
            problems.extend(notifier_problems);
        }
        match (listen, problems.is_empty()) {
            (Some(listen), true) => Ok(Config {
                listen,
                otlp_listen,
                otlp,
                admin_token,
                max_body_bytes: self.server.max_body_bytes,
                upstream_timeout: Duration::from_secs(self.server.upstream_timeout_s.max(1)),
                shutdown_timeout: Duration::from_secs(self.server.shutdown_timeout_s),
                header_read_timeout: (self.server.header_read_timeout_s > 0)
                    .then(|| Duration::from_secs(self.server.header_read_timeout_s)),
                store_path: self.store.path,
                clickhouse,
                journal_dir: self.store.journal_dir,
                fsync_interval: Duration::from_millis(self.store.fsync_interval_ms),
                flush_interval: Duration::from_millis(self.store.flush_interval_ms.max(10)),
                flush_in_idle_time: self.store.flush_in_idle_time,
                providers: Arc::new(providers),
                keys: Arc::new(keys),
                require,
                untagged,
                price_overrides: self.prices.overrides,
                max_price_age_days: self.prices.max_age_days,
                price_update,
                state,
                policy: Arc::new(self.policy),
                notifiers: self.notifiers,
                contracts: self.contracts,
                reports: self.reports,
                audit: storage.audit,
                capture,
                retention: storage.retention,
                hash: String::new(),
                source: None,
            }),
            _ => Err(problems),
        }
    }
}

/// Where the gateway keeps its data: the ledger file, the audit trail and its content, the
/// archive. The CLI's audit and retention commands read it from the same file as `serve`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The DuckDB ledger file (with a ClickHouse ledger, the folders' anchor).
    pub store_path: PathBuf,
    /// The ClickHouse ledger's URL, when `[store] kind = "clickhouse"`.
    pub clickhouse: Option<String>,
    /// `[audit]`, its folders resolved.
    pub audit: AuditConfig,
    /// `[retention]`, its archive folder resolved.
    pub retention: RetentionConfig,
}

/// The tables `Storage` reads; the rest of the file is ignored.
#[derive(Debug, Default, Deserialize)]
struct RawStorage {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    audit: AuditConfig,
    #[serde(default)]
    retention: RetentionConfig,
}

impl Storage {
    /// The storage of a configuration file, without the rest of its checks (no secrets
    /// needed).
    pub fn load(path: &Path) -> Result<Storage, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            path: path.display().to_string(),
            problems,
        };
        let text = std::fs::read_to_string(path).map_err(|error| fail(vec![error.to_string()]))?;
        let raw: RawStorage =
            toml::from_str(&text).map_err(|error| fail(vec![error.to_string()]))?;
        let mut problems = raw.retention.validate();
        if let Err(audit_problems) = raw.audit.compile() {
            problems.extend(audit_problems);
        }
        let mut store = raw.store;
        let env = |name: &str| std::env::var(name).ok();
        let clickhouse = clickhouse_url(&mut store, &env, &mut problems);
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        let mut storage = Storage::resolve(&store.path, raw.audit, raw.retention);
        storage.clickhouse = clickhouse;
        Ok(storage)
    }

    /// The defaults for a ledger file: everything else beside it.
    pub fn beside(store_path: &Path) -> Storage {
        Storage::resolve(
            store_path,
            AuditConfig::default(),
            RetentionConfig::default(),
        )
    }

    /// Puts the trail, its content and the archive beside the store unless they are placed.
    fn resolve(
        store_path: &Path,
        mut audit: AuditConfig,
        mut retention: RetentionConfig,
    ) -> Storage {
        let store_dir = store_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (path, name) in [
            (&mut audit.dir, "audit"),
            (&mut audit.content_dir, "content"),
            (&mut retention.archive_dir, "archive"),
        ] {
            if path.as_os_str().is_empty() {
                *path = store_dir.join(name);
            }
        }
        Storage {
            store_path: store_path.to_path_buf(),
            clickhouse: None,
            audit,
            retention,
        }
    }
}

fn validate_state(
    raw: RawState,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> StateConfig {
    match raw.kind.as_str() {
        "memory" => StateConfig::Memory,
        "redis" => resolve_url(
            "state",
            raw.url,
            raw.url_env,
            &["redis://", "unix://"],
            env,
            problems,
        )
        .map_or(StateConfig::Memory, |url| StateConfig::Redis { url }),
        other => {
            problems.push(format!(
                "state.kind: `{other}` must be \"memory\" or \"redis\""
            ));
            StateConfig::Memory
        }
    }
}

/// The ClickHouse ledger's URL of a `[store]` table (`None` for a DuckDB store), with the
/// problems of its `kind`, `url` and `url_env` noted.
fn clickhouse_url(
    store: &mut RawStore,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<String> {
    match store.kind.as_str() {
        "duckdb" => {
            if store.url.is_some() || store.url_env.is_some() {
                problems.push(
                    "store.url: only a clickhouse store has a URL (the duckdb store is `path`)"
                        .into(),
                );
            }
            None
        }
        "clickhouse" => resolve_url(
            "store",
            store.url.take(),
            store.url_env.take(),
            &["clickhouse://", "http://"],
            env,
            problems,
        ),
        other => {
            problems.push(format!(
                "store.kind: `{other}` must be \"duckdb\" or \"clickhouse\""
            ));
            None
        }
    }
}

/// The URL of `[section]` from exactly one of `url` and `url_env`, starting with one of
/// `schemes`; `None` (with the problem noted) otherwise.
fn resolve_url(
    section: &str,
    url: Option<String>,
    url_env: Option<String>,
    schemes: &[&str],
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<String> {
    let url = match (url, url_env) {
        (Some(url), None) => Some(url),
        (None, Some(name)) => {
            let url = env(&name).filter(|url| !url.is_empty());
            if url.is_none() {
                problems.push(format!(
                    "{section}.url_env: environment variable {name} is not set"
                ));
            }
            url
        }
        _ => {
            problems.push(format!("{section}: needs exactly one of url and url_env"));
            None
        }
    }?;
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        Some(url)
    } else {
        problems.push(format!(
            "{section}.url: must start with {}",
            schemes.join(" or ")
        ));
        None
    }
}

fn validate_otlp(
    prefixes: Vec<String>,
    resource: Option<Vec<RawResourceDimension>>,
    problems: &mut Vec<String>,
) -> OtlpMapping {
    let mut mapping = OtlpMapping {
        prefixes,
        ..OtlpMapping::default()
    };
    if let Some(resource) = resource {
        mapping.resource_dimensions = Vec::with_capacity(resource.len());
        for (index, entry) in resource.into_iter().enumerate() {
            match entry.dimension.parse::<Dimension>() {
                Ok(dimension) => mapping
                    .resource_dimensions
                    .push((entry.attribute, dimension)),
                Err(error) => problems.push(format!(
                    "attribution.otel_resource[{index}].dimension: {error}"
                )),
            }
        }
    }
    if let Err(error) = mapping.validate() {
        problems.push(format!("attribution.{}: {}", error.field, error.reason));
    }
    mapping
}

fn validate_providers(
    raw: Vec<RawProvider>,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Providers {
    if raw.is_empty() {
        problems.push("providers: at least one [[providers]] entry is required".into());
    }
    let mut seen = HashMap::new();
    let mut providers = Vec::new();
    for (index, provider) in raw.into_iter().enumerate() {
        let at = format!("providers[{index}] ({})", provider.name);
        if seen.insert(provider.name.clone(), index).is_some() {
            problems.push(format!("{at}.name: defined twice"));
        }
        let kind = match provider.kind.as_str() {
            "openai" => ProviderKind::OpenAi,
            "anthropic" => ProviderKind::Anthropic,
            other => {
                problems.push(format!(
                    "{at}.kind: `{other}` must be \"openai\" or \"anthropic\""
                ));
                continue;
            }
        };
        let api_key = match &provider.api_key_env {
            Some(name) => match env(name) {
                Some(value) if !value.is_empty() => Some(value),
                _ => {
                    problems.push(format!(
                        "{at}.api_key_env: environment variable {name} is not set"
                    ));
                    None
                }
            },
            None => None,
        };
        if provider.models.is_empty() {
            problems.push(format!(
                "{at}.models: list the model names or patterns (\"gpt-*\") it serves"
            ));
        }
        let http = match &provider.http {
            None => HttpVersion::Auto,
            Some(value) => {
                let text = match value {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                HttpVersion::parse(&text).unwrap_or_else(|| {
                    problems.push(format!(
                        "{at}.http: `{text}` must be \"auto\" (HTTP/2 where the TLS handshake \
                         offers it), \"1.1\" or \"2\" (HTTP/2 without negotiation)"
                    ));
                    HttpVersion::Auto
                })
            }
        };
        match Provider::new(
            provider.name,
            kind,
            &provider.base_url,
            api_key.as_deref(),
            provider.models,
        ) {
            Ok(mut built) => {
                built.http = http;
                providers.push(built);
            }
            Err(problem) => problems.push(format!("{at}.{problem}")),
        }
    }
    Providers::new(providers)
}

fn validate_keys(raw: Vec<RawKey>, problems: &mut Vec<String>) -> VirtualKeys {
    let mut keys = VirtualKeys::default();
    for (index, key) in raw.into_iter().enumerate() {
        let at = format!("keys[{index}] ({})", key.id);
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(key.sha256.trim(), &mut hash).is_err() {
            problems.push(format!(
                "{at}.sha256: must be 64 hex digits (the SHA-256 of the key; `burnrate keys hash` prints it)"
            ));
            continue;
        }
        if key.tenant_id.trim().is_empty() {
            problems.push(format!("{at}.tenant_id: must not be empty"));
        }
        let binding = KeyBinding {
            id: key.id,
            tenant_id: key.tenant_id,
            users: key.users,
            features: key.features,
            models: key.models,
        };
        if !keys.insert(hash, binding) {
            problems.push(format!("{at}.sha256: the same key hash is listed twice"));
        }
    }
    keys
}

fn validate_require(raw: &[String], problems: &mut Vec<String>) -> Vec<&'static str> {
    let mut require = Vec::new();
    for name in raw {
        match REQUIRABLE.iter().find(|known| **known == name.as_str()) {
            Some(known) => require.push(*known),
            None => problems.push(format!(
                "attribution.require: `{name}` is not a dimension (one of {})",
                REQUIRABLE.join(", ")
            )),
        }
    }
    require
}

#[cfg(test)]
mod tests;
