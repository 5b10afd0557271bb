//! `burnrate serve`, `config check`, `keys` and `mock-provider`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use burnrate_server::{Config, Gateway};
use rand::RngCore;

use crate::{KeysCommand, MockArgs};

/// Runs the gateway until SIGTERM or Ctrl-C.
pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = Config::load(config_path)?;
    runtime()?.block_on(async move {
        let gateway = Gateway::bind(config).await?;
        let replayed = gateway.replayed();
        if replayed.events > 0 || !replayed.unreadable.is_empty() {
            tracing::info!(
                events = replayed.events,
                segments = replayed.segments,
                "replayed the journal a previous run left"
            );
        }
        for line in &replayed.unreadable {
            tracing::error!(%line, "journal line could not be read back");
        }
        let stop = burnrate_server::termination();
        let otlp = gateway
            .otlp_addr()
            .map(|addr| format!(" (OTLP/HTTP also on http://{addr}/v1/traces)"))
            .unwrap_or_default();
        // A plain line scripts and tests can wait for (printed once everything is bound).
        eprintln!(
            "burnrate gateway listening on http://{}{otlp}",
            gateway.local_addr()?
        );
        gateway.run(stop).await?;
        tracing::info!("stopped; every recorded call is in the ledger");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Validates a configuration file.
pub fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(config_path) {
        Ok(config) => {
            if let Err(problem) = config.check_price_overrides() {
                eprintln!("{}: 1 problem(s):\n  - {problem}", config_path.display());
                return Ok(ExitCode::FAILURE);
            }
            outln!(
                "{}: ok ({} provider(s), {} key(s), listening on {})",
                config_path.display(),
                config.providers.iter().count(),
                config.keys.len(),
                config.listen
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `burnrate keys new|hash`.
pub fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::New { id, tenant } => {
            let key = random_secret("br-");
            let hash = hex::encode(burnrate_server::keys::hash_key(&key));
            outln!("# Give this key to the client; it is not stored anywhere:\n# {key}\n");
            outln!("[[keys]]\nid = \"{id}\"\nsha256 = \"{hash}\"\ntenant_id = \"{tenant}\"");
        }
        KeysCommand::Hash { key } => {
            let key = match key {
                Some(key) => key,
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("reading the key from stdin")?;
                    text.trim().to_string()
                }
            };
            if key.is_empty() {
                return Err(anyhow!("no key given"));
            }
            outln!("{}", hex::encode(burnrate_server::keys::hash_key(&key)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A random secret for a key or a token: `prefix` and 24 random bytes in hex.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Runs the mock provider until Ctrl-C or SIGTERM.
pub fn mock(args: MockArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        return Err(anyhow!("--error-rate must be between 0 and 1"));
    }
    let config = burnrate_mock::MockConfig {
        delay: Duration::from_millis(args.delay_ms),
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        error_rate: args.error_rate,
        seed: args.seed,
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let stop = burnrate_server::termination();
        eprintln!(
            "mock provider (a test tool, not a provider) listening on http://{addr}: \
             OpenAI base URL http://{addr}/v1, Anthropic base URL http://{addr}"
        );
        tokio::select! {
            result = burnrate_mock::serve(listener, config) => result.context("mock provider")?,
            _ = stop => {},
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging() {
    init_logging_at("info");
}

/// Logs to stderr at `RUST_LOG`, or at `level` when it is not set.
pub fn init_logging_at(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: a log file or journald would get escape codes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
