//! `burnrate demo`: the mock provider, the gateway on an embedded ledger and the dashboard in
//! one process, a day of multi-tenant agent traffic sent through the gateway over HTTP, the
//! daily report and the tenants' margins; then the dashboard stays up until Ctrl-C.
//!
//! Nothing here is a shortcut around the product: every call of today's traffic goes through
//! the gateway's HTTP routes with a tenant key and attribution headers, as an SDK's would.
//! Only the two weeks before today are written straight into the ledger (see `history`).

mod conversation;
mod driver;
mod history;
mod workload;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use burnrate_insight::detectors::{self, Thresholds};
use burnrate_insight::margins::{self, SegmentRules};
use burnrate_server::{Config, Gateway};
use burnrate_store::Store;
use chrono::{Days, NaiveDate, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::DemoArgs;
use crate::cli::serve::random_secret;
use driver::Driver;
use workload::{Keys, SCENARIOS, STARK_DAILY_CAP_USD, TENANTS};

/// The file that marks a folder as the demo's, so running it again may clear it.
const MARKER: &str = ".burnrate-demo";

/// The variable the demo's configuration names for the admin token.
const ADMIN_TOKEN_ENV: &str = "BURNRATE_ADMIN_TOKEN";

/// The variable the demo's configuration names for the (mock) providers' key.
const MOCK_KEY_ENV: &str = "MOCK_PROVIDER_KEY";

/// Runs the demo until Ctrl-C.
pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    crate::cli::serve::init_logging_at("warn");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = prepare(&args.dir)?;
    let mock = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the mock provider")?;
    let mock_addr = mock.local_addr()?;
    let mock_config = burnrate_mock::MockConfig {
        delay: Duration::from_millis(20),
        chunk_delay: Duration::from_millis(2),
        error_rate: 0.0,
        seed: args.seed,
    };
    tokio::spawn(burnrate_mock::serve(mock, mock_config));

    let keys: Keys = TENANTS
        .iter()
        .map(|t| (t.id, random_secret("br-")))
        .collect();
    let admin_token = random_secret("");
    let listen = listen_address(args.listen)?;
    let text = config_text(&dir, listen, mock_addr, &keys);
    let config_path = dir.join("burnrate.toml");
    std::fs::write(&config_path, &text)
        .with_context(|| format!("writing {}", config_path.display()))?;

    let today = Utc::now().date_naive();
    let seeded = seed_history(dir.join("burnrate.duckdb"), today, args.seed).await?;
    eprintln!(
        "Wrote {seeded} calls of history ({} days before today) into {}",
        history::DAYS,
        dir.join("burnrate.duckdb").display()
    );

    let mut config = Config::parse(&text, |name| match name {
        ADMIN_TOKEN_ENV => Some(admin_token.clone()),
        MOCK_KEY_ENV => Some("sk-mock".to_string()),
        _ => None,
    })
    .map_err(|problems| anyhow!("the demo's configuration: {}", problems.join("; ")))?;
    config.source = Some(config_path.clone());
    let gateway = Gateway::bind(config).await?;
    let addr = gateway.local_addr()?;
    let state = gateway.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    eprintln!(
        "Gateway on http://{addr} in front of the mock provider on http://{mock_addr}; \
         sending today's traffic:"
    );

    let mut interrupted = std::pin::pin!(burnrate_server::termination());
    let driver = Driver::new(format!("http://{addr}"))?;
    let progress = MultiProgress::new();
    let bars: Vec<ProgressBar> = SCENARIOS
        .iter()
        .map(|(name, tenant, calls)| {
            let bar = progress.add(ProgressBar::new(*calls));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} {bar:24} {pos:>4} calls  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(*tenant);
            bar.set_message(*name);
            bar
        })
        .collect();
    let started = Instant::now();
    tokio::select! {
        result = workload::run(&driver, &keys, bars) => result?,
        () = &mut interrupted => {
            let _ = stop.send(());
            let _ = server.await;
            return Ok(ExitCode::from(130));
        }
    }
    let took = started.elapsed();

    let mut out = summary(&driver, took);
    let report = burnrate_server::reports::build(&state, "daily", today)
        .await
        .map_err(|error| anyhow!("building the daily report: {error}"))?;
    out.push_str(&crate::cli::output::terminal(&report));
    let contracts = state.config().contracts.clone();
    let book = state
        .ledger
        .with_store(move |store| margins_today(store, &contracts, today))
        .await??;
    let section = burnrate_insight::report::profitability(&book);
    out.push_str(&crate::cli::output::terminal(
        &burnrate_insight::report::Report {
            kind: "margins",
            title: format!("Tenant margins, {today} (monthly fees prorated to the day)"),
            from: today,
            to: today,
            warnings: Vec::new(),
            sections: vec![section],
            data: serde_json::Value::Null,
        },
    ));
    let _ = writeln!(
        out,
        "\nDashboard: http://{addr}/ui#token={admin_token}\n\
         Ledger:    {}\n\
         Config:    {} (run it yourself: {ADMIN_TOKEN_ENV}=… {MOCK_KEY_ENV}=any burnrate serve --config …,\n           \
         with `burnrate mock-provider --listen {mock_addr}` as its provider)\n\
         Query it:  burnrate report features --server http://{addr} --admin-token {admin_token}\n           \
         (the daily report reads the ledger file: burnrate report daily --db … once the demo\n           \
         has stopped), or open the dashboard.\n\n\
         The dashboard stays up until Ctrl-C.",
        dir.join("burnrate.duckdb").display(),
        config_path.display(),
    );
    out!("{out}");
    interrupted.await;
    let _ = stop.send(());
    server.await.context("the gateway task")??;
    eprintln!("Stopped; the ledger keeps every call in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The folder, created or cleared (only when it is an earlier demo's), made absolute.
fn prepare(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not a burnrate demo folder; pass --dir with a new or empty folder",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "written by `burnrate demo`, which clears this folder\n",
    )?;
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

/// `wanted`, or any free port when it is taken.
fn listen_address(wanted: SocketAddr) -> anyhow::Result<SocketAddr> {
    match std::net::TcpListener::bind(wanted) {
        Ok(_) => Ok(wanted),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("{wanted} is taken; the gateway takes a free port instead");
            Ok(SocketAddr::new(wanted.ip(), 0))
        }
        Err(error) => Err(error).with_context(|| format!("cannot listen on {wanted}")),
    }
}

/// Writes the history into the ledger file before the gateway opens it.
async fn seed_history(path: PathBuf, today: NaiveDate, seed: u64) -> anyhow::Result<usize> {
    tokio::task::spawn_blocking(move || {
        let events = history::events(today, seed);
        let mut store = burnrate_store::DuckStore::open(&path)?;
        store.append(&events)?;
        anyhow::Ok(events.len())
    })
    .await?
}

/// Margins over today, with today's findings deciding the runaways.
fn margins_today(
    store: &mut dyn Store,
    contracts: &[margins::Contract],
    today: NaiveDate,
) -> anyhow::Result<margins::Margins> {
    let findings = detectors::all(store, today, &Thresholds::default())?;
    let start = |day: NaiveDate| day.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok(margins::margins(
        store,
        contracts,
        &findings,
        start(today),
        start(today + Days::new(1)),
        SegmentRules::default(),
    )?)
}

/// What the traffic did, in a few lines.
fn summary(driver: &Driver, took: Duration) -> String {
    let tally = &driver.tally;
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    format!(
        "\nSent {} calls through the gateway in {:.1} s: {} served on a cheaper model and {} \
         answered from the gateway's cache as stark-labs neared its ${STARK_DAILY_CAP_USD} \
         daily cap, {} refused at the cap, {} stopped by the agent-run loop detector; {} \
         outcomes reported through the events API.\n",
        get(&tally.calls),
        took.as_secs_f64(),
        get(&tally.fallbacks),
        get(&tally.cached),
        get(&tally.over_budget),
        get(&tally.runs_stopped),
        get(&tally.outcomes),
    )
}

/// The demo's gateway configuration (written beside the ledger for people to read).
fn config_text(dir: &Path, listen: SocketAddr, mock: SocketAddr, keys: &Keys) -> String {
    let mut text = format!(
        r#"# Written by `burnrate demo`: the gateway it ran, in front of the mock provider.
# Every key is explained in docs/configuration.md.

[server]
listen = "{listen}"
admin_token_env = "{ADMIN_TOKEN_ENV}"
upstream_timeout_s = 30
shutdown_timeout_s = 5

[store]
path = "{dir}/burnrate.duckdb"
journal_dir = "{dir}/journal"
fsync_interval_ms = 50
flush_interval_ms = 250

# The mock provider takes any key; a real provider's goes in the variable api_key_env names.
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://{mock}/v1"
api_key_env = "{MOCK_KEY_ENV}"
models = ["gpt-*", "o*"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://{mock}"
api_key_env = "{MOCK_KEY_ENV}"
models = ["claude-*"]

[attribution]
require = ["tenant_id", "user_id", "feature"]

[policy]
mode = "enforce"

[[policy.rate_limits]]
scope = "tenant"
id = "*"
requests_per_minute = 6000

[[policy.budgets]]                  # every tenant: a month's hard cap
scope = "tenant"
id = "*"
period = "month"
limit_usd = "2000"

[[policy.budgets]]                  # stark-labs' Starter plan: a small daily cap
scope = "tenant"
id = "stark-labs"
period = "day"
limit_usd = "{STARK_DAILY_CAP_USD}"

[policy.ladder]
fallback_at = 0.8
cache_at = 0.9

[policy.fallbacks]
"gpt-4.1" = "gpt-4.1-mini"
"claude-sonnet-4-5" = "claude-haiku-4-5"

[policy.upgrade]
message = "The Starter plan includes ${STARK_DAILY_CAP_USD} of AI usage a day."
url = "https://example.com/billing/upgrade"

# The demo plays a day's traffic in a minute: against its same hour on earlier days every
# tenant's hour would look like a spike, so the kill switch is off here.
[policy.kill_switch]
enabled = false

[policy.runs]
max_tool_calls = 60
max_depth = 3
loop_repeats = 5
"#,
        dir = dir.display()
    );
    for tenant in TENANTS {
        let hash = hex::encode(burnrate_server::keys::hash_key(
            keys.get(tenant.id).map_or("", String::as_str),
        ));
        let _ = write!(
            text,
            "\n[[keys]]\nid = \"{id}\"\nsha256 = \"{hash}\"\ntenant_id = \"{id}\"\n",
            id = tenant.id
        );
    }
    for tenant in TENANTS {
        let _ = write!(
            text,
            "\n[[contracts]]\ntenant = \"{}\"\n{}\n",
            tenant.id, tenant.contract
        );
    }
    text
}
