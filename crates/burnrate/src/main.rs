//! The `burnrate` command line.

/// `println!` that hands a failed write back with `?` instead of panicking: a closed pipe
/// (`burnrate prices list | head`) then ends the command as SIGPIPE would (see [`main`]).
macro_rules! outln {
    () => {
        outln!("")
    };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(crate::Stdout, $($arg)*)?
    }};
}

/// `print!` as [`outln!`] is `println!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(crate::Stdout, $($arg)*)?
    }};
}

mod cli;
mod demo;
mod gen_events;
mod reference;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// burnrate: who spent what on which model, feature and agent run, exactly.
#[derive(Debug, Parser)]
#[command(name = "burnrate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the mock provider, the gateway and the dashboard, send a day of multi-tenant
    /// agent traffic through the gateway, print the daily report and the tenants' margins,
    /// and keep the dashboard up until Ctrl-C. Needs no keys and no network.
    Demo(DemoArgs),
    /// Import usage events from JSONL files (`-` reads stdin) into the ledger.
    Import(ImportArgs),
    /// Query the ledger: any metrics, grouped by up to any dimensions, bucketed, filtered.
    Query(QueryArgs),
    /// Run a named report.
    Report(ReportArgs),
    /// Inspect and import prices.
    Prices {
        #[command(subcommand)]
        command: PricesCommand,
    },
    /// Write a realistic synthetic workload as JSONL.
    GenEvents(GenEventsArgs),
    /// Write the ledger's events as JSONL (re-importable: ids keep it idempotent).
    Export(ExportArgs),
    /// Run the gateway: an OpenAI- and Anthropic-compatible proxy that records every call.
    Serve(ConfigArgs),
    /// Check a configuration file and list every problem in it.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Gateway virtual keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// A fake OpenAI and Anthropic server for tests, demos and benchmarks (never production).
    MockProvider(MockArgs),
    /// Pause, resume and list paused tenants on a running gateway.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Ask a running gateway to read its configuration file again (as SIGHUP does).
    Reload(ServerArgs),
    /// Run the anomaly detectors over each day of a range and list their findings.
    Anomalies(AnomaliesArgs),
    /// The long tail of spend over one dimension: Pareto shares and the Gini coefficient.
    Longtail(LongtailArgs),
    /// Agent roles in multi-agent runs: each agent name and depth's share of the cost of the
    /// runs it took part in.
    Roles(RolesArgs),
    /// A month's invoice lines per tenant from the `[[contracts]]` of a configuration file,
    /// each with the usage and the query behind it.
    Invoice(InvoiceArgs),
    /// Cohort unit economics: tenants grouped by their contract's tier or signup month, per
    /// month: cost per tenant, per seat, per successful outcome, and the margin.
    Cohorts(CohortsArgs),
    /// Usage as CloudEvents (one per tenant, meter and day), a JSON batch for metering and
    /// billing systems.
    Meters(MetersArgs),
    /// The cost regression gate for CI: compare a candidate slice of a feature (a prompt
    /// version, a model) with a baseline on cost per run, tokens per layer and cache hit
    /// rate; exits 1 when the candidate is worse than allowed, 3 when there are too few runs.
    Compare(CompareArgs),
    /// The audit trail: check its hash chain, list segment heads, export, erase content.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Move an embedded ledger (events and price book) to ClickHouse and check the totals
    /// match; running it again skips what was moved.
    Migrate(MigrateArgs),
    /// Retention: move old data to the archive, delete archives past their window.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every segment's hashes and the chain; names the first record altered, removed
    /// or reordered, and exits non-zero.
    Verify {
        #[command(flatten)]
        paths: AuditPaths,
        /// Check the archived months too, and the chain across them into the segments.
        #[arg(long)]
        include_archive: bool,
    },
    /// Print each segment's first and last record and last hash as JSON lines, to anchor
    /// the chain elsewhere.
    Heads {
        #[command(flatten)]
        paths: AuditPaths,
    },
    /// Export the records of a tenant or a user over a time range, with a manifest
    /// (`OUT.manifest.json`: counts, hash range, the chain check).
    Export(AuditExportArgs),
    /// Delete the captured content (request and response bodies) of a user's calls; the
    /// records stay, with the hash of what was erased, and the erasure is recorded.
    Erase {
        #[command(flatten)]
        paths: AuditPaths,
        /// The user whose content goes.
        #[arg(long)]
        user: String,
    },
}

/// Where the audit trail is: from the gateway's configuration, or given.
#[derive(Debug, Args)]
struct AuditPaths {
    /// The gateway's configuration file: the folders come from its `[store]`, `[audit]` and
    /// `[retention]` tables (no secrets needed).
    #[arg(long, conflicts_with = "dir")]
    config: Option<PathBuf>,
    /// The audit directory, without --config.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The archive directory (default: `archive` beside the audit directory).
    #[arg(long)]
    archive_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct AuditExportArgs {
    #[command(flatten)]
    paths: AuditPaths,
    /// Only this tenant's records.
    #[arg(long, required_unless_present = "user")]
    tenant: Option<String>,
    /// Only this user's records.
    #[arg(long)]
    user: Option<String>,
    /// From this time on (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    until: Option<String>,
    /// jsonl, csv or parquet.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// The file to write (its manifest goes beside it).
    #[arg(long)]
    out: PathBuf,
    /// Read the archived months too.
    #[arg(long)]
    include_archive: bool,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Move ledger events, audit records and captured content older than the hot window to
    /// the archive (Parquet per month, each checked before its source is deleted), and
    /// delete archives past the archive window.
    Apply {
        /// The gateway's configuration file (`[store]`, `[audit]`, `[retention]`); without
        /// it, the defaults beside --db.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
        /// Run as on this day (YYYY-MM-DD) instead of today.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Args)]
struct AnomaliesArgs {
    #[command(flatten)]
    db: DbArgs,
    /// First day looked at: RFC 3339, a date, or relative (`7d`).
    #[arg(long, default_value = "1d")]
    since: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    until: String,
    /// `table` or `json` (one finding per line).
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, Args)]
struct LongtailArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The dimension (`tenant_id`, `feature`, `label.team`, ...).
    #[arg(long, default_value = "tenant_id")]
    by: String,
    /// Start: RFC 3339, a date, or relative (`30d`).
    #[arg(long, default_value = "30d")]
    since: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    until: String,
    /// Only calls matching `key=value` or `key!=value` (repeatable).
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Rows of the table (the sentence and shares always cover every member).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `burnrate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The folder for the ledger, the journal, the audit trail and the configuration (an
    /// earlier demo's folder is cleared first; any other non-empty folder is refused).
    #[arg(long, default_value = "burnrate-demo")]
    pub dir: PathBuf,
    /// Where the gateway and the dashboard listen (a free port if this one is taken).
    #[arg(long, default_value = "127.0.0.1:8790")]
    pub listen: std::net::SocketAddr,
    /// Seed of the history written before today's traffic.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
struct CohortsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The gateway's configuration file holding `[[contracts]]` (with `tier`, `signup`).
    #[arg(long)]
    config: PathBuf,
    /// `tier` or `signup`.
    #[arg(long, default_value = "tier")]
    by: String,
    /// First month, `YYYY-MM`.
    #[arg(long)]
    from: String,
    /// Last month, `YYYY-MM` (default: the current month).
    #[arg(long)]
    to: Option<String>,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct MetersArgs {
    #[command(flatten)]
    db: DbArgs,
    /// First day (UTC): a date, or relative (`30d`).
    #[arg(long, default_value = "30d")]
    since: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    until: String,
    /// The events' `source`: a URI reference naming this deployment.
    #[arg(long, default_value = "/burnrate")]
    source: String,
    /// Write the batch here instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InvoiceArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The gateway's configuration file holding `[[contracts]]`.
    #[arg(long)]
    config: PathBuf,
    /// The month billed, `YYYY-MM` (UTC).
    #[arg(long)]
    month: String,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// `table`, `csv` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct RolesArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Start: RFC 3339, a date, or relative (`30d`).
    #[arg(long, default_value = "30d")]
    since: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    until: String,
    /// `key=value` filters (`feature=triage`). Repeatable.
    #[arg(long = "filter", value_name = "K=V")]
    filters: Vec<String>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The feature both slices belong to.
    #[arg(long)]
    feature: String,
    /// The baseline slice, as a filter: `prompt_version=v2.3`.
    #[arg(long)]
    baseline: String,
    /// The candidate slice, as a filter: `prompt_version=v2.4`.
    #[arg(long)]
    candidate: String,
    /// The largest regression allowed on any metric: `10%` or `0.1`.
    #[arg(long, default_value = "10%")]
    max_regression: String,
    /// The fewest agent runs each side needs before it is judged.
    #[arg(long, default_value_t = 20)]
    min_runs: u64,
    /// Start: RFC 3339, a date, or relative (`30d`).
    #[arg(long, default_value = "30d")]
    since: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    until: String,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

/// Where a running gateway's admin API is.
#[derive(Debug, Args)]
struct ServerArgs {
    /// The gateway's base URL.
    #[arg(long, env = "BURNRATE_SERVER", default_value = "http://127.0.0.1:8790")]
    server: String,
    /// The gateway's admin token.
    #[arg(long, env = "BURNRATE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

/// `burnrate tenants ...`.
#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Refuse every call of a tenant (`tenant_paused`) until it is resumed.
    Pause {
        /// The tenant id.
        id: String,
        /// Why, recorded with the pause and shown to the tenant's callers.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Let a paused tenant's calls through again.
    Resume {
        /// The tenant id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List paused tenants and why they are paused.
    Paused {
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Start (inclusive): RFC 3339, a date, or relative (`7d`); default: the beginning.
    #[arg(long)]
    since: Option<String>,
    /// End (exclusive); default now.
    #[arg(long, default_value = "now")]
    until: String,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// The configuration file.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// TOML configuration (see docs/configuration.md).
    #[arg(long, env = "BURNRATE_CONFIG", default_value = "burnrate.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the file (and the environment variables it names); exit 1 on any problem.
    Check(ConfigArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new random key and print it with the `[[keys]]` entry that holds its hash.
    New {
        /// The key's id in the configuration.
        #[arg(long)]
        id: String,
        /// The tenant the key bills to.
        #[arg(long)]
        tenant: String,
    },
    /// Print the SHA-256 of a key (read from stdin when not given), for `[[keys]] sha256`.
    Hash {
        /// The key; omit to read it from stdin and keep it out of the shell history.
        key: Option<String>,
    },
}

#[derive(Debug, Args)]
struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8791")]
    listen: std::net::SocketAddr,
    /// Delay before the first byte of each answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Delay between stream chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Share of calls answered with a provider error (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Seed for the error draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Where the ledger is.
#[derive(Debug, Args)]
struct DbArgs {
    /// The DuckDB ledger file (commands that write to it, `import` and `prices import` or
    /// `update`, create it; commands that only read need it to exist).
    #[arg(long, env = "BURNRATE_DB", default_value = "data/burnrate.duckdb")]
    db: PathBuf,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// The embedded ledger: `duckdb:PATH`.
    #[arg(long)]
    from: String,
    /// The ClickHouse ledger: `clickhouse:clickhouse://HOST:8123/DATABASE`.
    #[arg(long)]
    to: String,
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// JSONL files, one usage event per line; `-` is stdin.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// `{"rows": [...]}` with money as decimal strings.
    Json,
    /// CSV with a header row.
    Csv,
    /// Markdown (reports daily, weekly and monthly).
    Md,
    /// A standalone HTML page with SVG charts (reports daily, weekly and monthly).
    Html,
}

/// The time range and filters shared by queries and reports.
#[derive(Debug, Args)]
struct RangeArgs {
    /// Start (inclusive): RFC 3339, a date, or relative to now (`7d`, `24h`, `90m`, `2w`);
    /// default 30d.
    #[arg(long)]
    since: Option<String>,
    /// End (exclusive), in the same forms; default now.
    #[arg(long)]
    until: Option<String>,
    /// `key=value`, `key!=value`, `key=a,b`; `key=` matches calls without it. Repeatable.
    #[arg(long = "filter", value_name = "K=V")]
    filters: Vec<String>,
    /// Keep the top N groups.
    #[arg(long)]
    top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Warn when the price table is older than this many days.
    #[arg(long, default_value_t = burnrate_model::prices::DEFAULT_MAX_AGE_DAYS)]
    max_price_age_days: i64,
    /// Ask a running `burnrate serve` at this base URL instead of opening --db (the server
    /// holds the file while it runs).
    #[arg(long, env = "BURNRATE_SERVER")]
    server: Option<String>,
    /// The server's admin token, for --server.
    #[arg(long, env = "BURNRATE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// Reading the months retention moved out of the ledger.
#[derive(Debug, Args)]
struct ArchiveArgs {
    /// Read the archive too (months `burnrate retention apply` moved out of the ledger).
    #[arg(long)]
    include_archive: bool,
    /// The archive folder (default: `archive` beside --db).
    #[arg(long, requires = "include_archive")]
    archive_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    range: RangeArgs,
    /// Time bucket: hour, day, week or month.
    #[arg(long)]
    bucket: Option<String>,
    /// Dimensions to group by, comma-separated (`tenant_id,feature`, `label.team`).
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<String>,
    /// Metrics, comma-separated (default requests,cost_usd).
    #[arg(long, value_delimiter = ',', default_value = "requests,cost_usd")]
    metrics: Vec<String>,
    /// Sort by a metric, dimension or `bucket`, optionally `:asc` or `:desc`.
    #[arg(long)]
    order: Option<String>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// daily, weekly or monthly (the scheduled reports, for --date); or users-daily,
    /// features, runs, outcomes, tenants or coverage (tables over --since/--until).
    report: String,
    /// The day a daily report covers, the last day of a weekly one, a day of a monthly one
    /// (default: yesterday, UTC).
    #[arg(long)]
    date: Option<String>,
    /// The gateway's configuration file, for `[[contracts]]` (margins) and monthly tenant
    /// budgets (forecast).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    range: RangeArgs,
}

#[derive(Debug, Subcommand)]
enum PricesCommand {
    /// Import a LiteLLM price table (.json) or an overrides file (.toml) into the ledger. A
    /// LiteLLM entry with a malformed price is named and left out (its model keeps its
    /// current prices) and the command exits 1.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The file.
        file: PathBuf,
        /// First day a LiteLLM table's prices apply (default: today, so history is kept).
        #[arg(long)]
        effective_from: Option<String>,
        /// Day the table was taken, for staleness warnings (default: the file's date).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Fetch (http/https URL) or read a newer LiteLLM price table, show what it changes
    /// (models added, prices with old and new) and record it from --effective-from on, so
    /// history keeps its old prices. Entries with a malformed price are named and left out,
    /// and the command exits 1.
    Update {
        #[command(flatten)]
        db: DbArgs,
        /// A URL (`https://…/model_prices_and_context_window.json`) or a file.
        #[arg(long)]
        from: String,
        /// First day the new prices apply (default today).
        #[arg(long)]
        effective_from: Option<String>,
        /// Show the changes without recording them.
        #[arg(long)]
        dry_run: bool,
        /// `table` or `json` (the changes).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// List priced models, optionally only those whose name contains TEXT.
    List {
        /// Filter on the model key.
        search: Option<String>,
        /// Read the ledger's price book instead of the bundled one.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Show what a model costs per token class, tier and input band.
    Show {
        /// Model name as a provider reports it (`gpt-4.1-2025-04-14`) or a price key.
        model: String,
        /// Provider, to resolve provider-qualified keys (`gemini`).
        #[arg(long, default_value = "")]
        provider: String,
        /// Day whose prices to show (default today).
        #[arg(long)]
        at: Option<String>,
        /// Read the ledger's price book instead of the bundled one.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// List models in the ledger that have no price, with their token totals.
    Missing {
        #[command(flatten)]
        db: DbArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Debug, Args)]
struct GenEventsArgs {
    /// Number of tenants.
    #[arg(long, default_value_t = 50)]
    tenants: u32,
    /// Days of history, ending at --end.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Random seed: the same arguments write the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// End of the generated range (default now).
    #[arg(long, default_value = "now")]
    end: String,
    /// Output file (default stdout).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// `reference`: the reference multi-tenant scenario (40 tenants on an inbox-triage agent,
    /// 4 power users, 2 tenants with a tool-call loop in the last 10 days) instead of the
    /// random workload; --tenants and --events do not apply.
    #[arg(long)]
    scenario: Option<String>,
    /// With --scenario: write the scenario's `[[contracts]]` here (TOML).
    #[arg(long)]
    contracts: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Import(args) => cli::import::run(&args.db.db, &args.files),
        Command::Migrate(args) => cli::migrate::run(&args.from, &args.to),
        Command::Compare(args) => cli::compare::run(&args),
        Command::Roles(args) => cli::insight::roles(&args),
        Command::Invoice(args) => cli::invoice::run(&args),
        Command::Meters(args) => cli::invoice::meters(&args),
        Command::Cohorts(args) => cli::invoice::cohorts(&args),
        Command::Query(args) => cli::query::run_query(args),
        Command::Report(args) => cli::query::run_report(args),
        Command::Prices { command } => cli::prices::run(command),
        Command::GenEvents(args) => cli::generate::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Serve(args) => cli::serve::run(&args.config),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => cli::serve::check(&args.config),
        Command::Keys { command } => cli::serve::keys(command),
        Command::MockProvider(args) => cli::serve::mock(args),
        Command::Tenants { command } => cli::tenants::run(command),
        Command::Reload(server) => cli::tenants::reload(&server),
        Command::Anomalies(args) => cli::insight::anomalies(&args),
        Command::Longtail(args) => cli::insight::longtail(&args),
        Command::Audit { command } => cli::audit::run(command),
        Command::Retention { command } => cli::retention::run(command),
    };
    match result {
        Ok(code) => code,
        // The reader of a pipe (`| head`) left: end quietly with the status a command killed
        // by SIGPIPE has (Rust ignores the signal), which `set -o pipefail` sees.
        Err(_) if STDOUT_CLOSED.load(Ordering::Relaxed) => ExitCode::from(128 + 13),
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// Set when a write to standard output found the pipe's reader gone.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output, noting a closed pipe in [`STDOUT_CLOSED`] so `main` tells it apart from a
/// broken pipe elsewhere (a connection to the gateway).
struct Stdout;

impl Stdout {
    fn note<T>(result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result
            && error.kind() == std::io::ErrorKind::BrokenPipe
        {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Stdout::note(std::io::stdout().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        Stdout::note(std::io::stdout().lock().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Stdout::note(std::io::stdout().lock().flush())
    }
}

/// `error` and its causes, outermost first, leaving out a cause whose text the message
/// already holds (many errors quote their source, so `{:#}` would print it twice).
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let quoted = anyhow::Error::new(io()).context(format!("prices.toml: {}", io()));
        assert_eq!(describe(&quoted), "prices.toml: No such file (os error 2)");
        let wrapped = anyhow::Error::new(io()).context("reading prices.toml");
        assert_eq!(
            describe(&wrapped),
            "reading prices.toml: No such file (os error 2)"
        );
    }

    #[test]
    fn only_a_closed_standard_output_counts_as_a_closed_pipe() {
        // Other failures of standard output are ordinary errors; a broken socket never
        // passes through `Stdout`.
        assert!(Stdout::note::<()>(Err(std::io::Error::other("disk full"))).is_err());
        assert!(!STDOUT_CLOSED.load(Ordering::Relaxed));
        let closed = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "Broken pipe");
        assert!(Stdout::note::<()>(Err(closed)).is_err());
        assert!(STDOUT_CLOSED.load(Ordering::Relaxed));
    }
}
