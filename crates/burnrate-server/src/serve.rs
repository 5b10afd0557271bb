//! Starting and stopping the gateway.
//!
//! Start: open the ledger, load price overrides, replay the journal a previous run left,
//! start the ledger thread, bind. Stop (SIGTERM, Ctrl-C or the caller's signal): stop
//! accepting, let in-flight calls finish (bounded by `server.shutdown_timeout_s`), move the
//! journal into the store, checkpoint.

use axum::serve::ListenerExt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use burnrate_store::clickhouse::ClickHouse;
use burnrate_store::journal::ReplayOutcome;
use burnrate_store::{DuckStore, Store};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::app::{AppState, LivePrices, router};
use crate::audit::AuditTrail;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::notify::Notifiers;
use arc_swap::ArcSwap;

/// Why the gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The ledger could not be opened or written.
    #[error(transparent)]
    Store(#[from] burnrate_store::StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
    /// The audit trail could not be opened or written.
    #[error("audit trail: {0}")]
    Audit(#[from] burnrate_audit::AuditError),
    /// The policy could not start (Redis unreachable, the ledger unreadable).
    #[error("policy: {0}")]
    Policy(String),
}

/// A gateway bound to its address, ready to run.
pub struct Gateway {
    state: Arc<AppState>,
    listener: TcpListener,
    otlp_listener: Option<TcpListener>,
    replayed: ReplayOutcome,
}

impl Gateway {
    /// Opens the ledger (replaying any journal left behind) and binds the listen address.
    pub async fn bind(config: Config) -> Result<Gateway, ServeError> {
        // The layer split's tokenizer loads in about 0.1 s of one core: now, beside the
        // ledger's opening, rather than on the first call's task.
        tokio::task::spawn_blocking(burnrate_wire::layers::warm_up);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let otlp_listener = match config.otlp_listen {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
        };
        let mut store: Box<dyn Store> = match &config.clickhouse {
            Some(url) => Box::new(ClickHouse::connect(url)?),
            // Opened on a thread at the ledger's priority, so DuckDB's worker threads (started
            // with the database, inheriting their creator's priority) yield to calls too.
            None => Box::new(crate::ledger::at_ledger_priority(|| {
                DuckStore::open(&config.store_path)
            })?),
        };
        let mut overrides = String::new();
        if let Some(path) = &config.price_overrides {
            overrides = std::fs::read_to_string(path).map_err(|source| ServeError::Read {
                path: path.display().to_string(),
                source,
            })?;
            store.import_overrides(&overrides, &path.display().to_string())?;
        }
        let prices = LivePrices::new(store.prices().clone());
        let audit = match config.audit.enabled {
            true => {
                let mut trail = AuditTrail::open(&config.audit, &config.hash)?;
                crate::audit::note_prices(
                    &mut trail,
                    config.price_overrides.as_deref(),
                    &overrides,
                )?;
                Some(trail)
            }
            false => None,
        };
        let (ledger, replayed) = Ledger::start(
            store,
            audit,
            &config.journal_dir,
            config.fsync_interval,
            config.flush_interval,
            config.flush_in_idle_time,
        )?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let policy = crate::enforce::policy(&config)
            .await
            .map_err(|error| ServeError::Policy(error.to_string()))?;
        crate::enforce::rebuild(&policy, &config.policy, &ledger, chrono::Utc::now())
            .await
            .map_err(|error| ServeError::Policy(error.to_string()))?;
        let notifiers = Notifiers::new(&config.notifiers, client.clone())
            .map_err(|problems| ServeError::Policy(problems.join("; ")))?;
        let state = Arc::new(AppState {
            config: ArcSwap::from_pointee(config),
            policy,
            notifiers: ArcSwap::from_pointee(notifiers),
            client,
            ledger,
            metrics: Metrics::default(),
            prices,
            tasks: TaskTracker::new(),
            findings: Arc::default(),
        });
        Ok(Gateway {
            state,
            listener,
            otlp_listener,
            replayed,
        })
    }

    /// The address the gateway listens on (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Serve)
    }

    /// The calls under way: every call's task and every open stream's pump, which shutdown
    /// waits for (bounded by `shutdown_timeout_s`).
    pub fn calls(&self) -> tokio_util::task::TaskTracker {
        self.state.tasks.clone()
    }

    /// The address of the separate OTLP listener, when one is configured.
    pub fn otlp_addr(&self) -> Option<SocketAddr> {
        self.otlp_listener.as_ref()?.local_addr().ok()
    }

    /// What the start-up replay of the journal found.
    pub fn replayed(&self) -> &ReplayOutcome {
        &self.replayed
    }

    /// The state the handlers share, for a process that embeds the gateway (the demo reads
    /// its ledger and reports through it while the gateway serves).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Gateway {
            state,
            listener,
            otlp_listener,
            ..
        } = self;
        let grace = state.config().shutdown_timeout;
        let header_read_timeout = state.config().header_read_timeout;
        let (otlp_stop, mut otlp_stopping) = tokio::sync::watch::channel(false);
        let otlp_server = otlp_listener.map(|listener| {
            let app = crate::ingest::otlp_routes()
                .route("/healthz", axum::routing::get(|| async { "ok\n" }))
                .with_state(Arc::clone(&state));
            tokio::spawn(async move {
                let stop = async move {
                    let _ = otlp_stopping.wait_for(|stopping| *stopping).await;
                };
                let connections =
                    crate::http::serve(listener, app, header_read_timeout, stop).await;
                connections.shutdown().await;
            })
        });
        crate::enforce::spawn_upkeep(Arc::clone(&state));
        crate::enforce::spawn_sighup(Arc::clone(&state));
        crate::reports::spawn_scheduler(Arc::clone(&state));
        crate::retention::spawn_scheduler(Arc::clone(&state));
        crate::price_update::spawn_scheduler(Arc::clone(&state));
        crate::dashboard::spawn_findings_keeper(Arc::clone(&state));
        let app = router(Arc::clone(&state));
        // Without TCP_NODELAY the last small write of a response can wait for the client's
        // delayed ACK (~40 ms): streams end with small chunks.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        // Serve until the signal; then stop accepting and give open connections the grace
        // period to finish.
        let connections = crate::http::serve(listener, app, header_read_timeout, shutdown).await;
        state.tasks.close();
        let _ = otlp_stop.send(true);
        if tokio::time::timeout(grace, connections.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                seconds = grace.as_secs(),
                "connections still open after the shutdown timeout; they end with the process"
            );
        }
        if let Some(otlp_server) = otlp_server
            && tokio::time::timeout(grace, otlp_server).await.is_err()
        {
            tracing::warn!("OTLP exports still open after the shutdown timeout; closing them");
        }
        if tokio::time::timeout(grace, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "calls still running after the shutdown timeout; the journal keeps what they recorded"
            );
        }
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || state.ledger.shutdown())
            .await
            .map_err(|error| ServeError::Serve(std::io::Error::other(error)))??;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub fn termination() -> impl Future<Output = ()> + Send + 'static {
    // Registered now, not when first polled: a SIGTERM that arrives right after the
    // "listening" line must stop the server gracefully, not kill it with the default action.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
    }
}
