//! Gateway benchmark: the latency burnrate adds over calling the provider directly, side by
//! side with LiteLLM's proxy, and the gateway's memory at many concurrent open streams.
//!
//! It starts `burnrate mock-provider`, `burnrate serve` (journal and DuckDB store on) and,
//! when `--litellm-start` is given, LiteLLM's proxy in front of the same mock; then an
//! open-loop load generator sends chat completions at fixed rates (a request is started on
//! schedule whether or not earlier ones finished) to each target in turn and prints the
//! latency percentiles as a Markdown table. Run it through `bench/gateway.sh`.
//!
//! Latency is measured from the moment a request is handed to the HTTP client to its last
//! response byte; "added" is the target's percentile minus the direct call's percentile in
//! the same run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    /// Internal: run as the pass-through proxy in front of this upstream base URL.
    #[arg(long, hide = true)]
    floor_proxy: Option<String>,
    /// Internal: run as the TCP relay in front of this upstream base URL.
    #[arg(long, hide = true)]
    tcp_relay: Option<String>,
    /// The burnrate binary (default: next to this program's directory).
    #[arg(long)]
    burnrate: Option<PathBuf>,
    /// Request rates to measure, requests per second.
    #[arg(long, value_delimiter = ',', default_value = "200,2000,5000")]
    rates: Vec<u32>,
    /// Seconds measured per target, rate and mode.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The gateway's `flush_interval_ms`: how often journaled calls move into its store
    /// (a long one keeps the flushes out of the measured seconds).
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// The gateway's `flush_in_idle_time` (its flushes under `SCHED_IDLE`); left unset (the
    /// gateway's default) when not given.
    #[arg(long)]
    flush_in_idle_time: Option<bool>,
    /// Seconds of the same load before each measurement (not recorded).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent open streams for the memory figure (0 skips it). Each holds two of the
    /// gateway's descriptors (client and upstream socket): at most about half of `ulimit -n`.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Open the streams over HTTP/2 (prior knowledge), spread over this many client
    /// connections, instead of one HTTP/1.1 connection each: the gateway then holds one
    /// socket per stream (upstream) plus these, so 10,000 streams fit under a 20,000
    /// descriptor limit. 0: HTTP/1.1.
    #[arg(long, default_value_t = 0)]
    streams_h2_connections: usize,
    /// Script that starts LiteLLM's proxy: called as `SCRIPT VENV UPSTREAM_BASE_URL PORT`.
    #[arg(long)]
    litellm_start: Option<PathBuf>,
    /// Virtualenv for LiteLLM (created by the script on first use).
    #[arg(long, default_value = "/tmp/burnrate-bench-litellm")]
    litellm_venv: PathBuf,
    /// Directory with `traces.pb` and `traces.json` (written by burnrate-wire's
    /// `otlp_map_bench` with OTLP_BENCH_WRITE=DIR): measure OTLP/HTTP ingest with them.
    #[arg(long)]
    otlp_bodies: Option<PathBuf>,
    /// Spans per OTLP body.
    #[arg(long, default_value_t = 10_000)]
    otlp_spans: u64,
    /// Working directory for the ledger and journal (default: a temporary directory).
    #[arg(long)]
    work: Option<PathBuf>,
    /// How the gateway speaks to the mock (its provider's `http`): `auto` (HTTP/1.1 over
    /// `http://`), `1.1`, or `2` (h2c, as the gateway speaks to hosted providers over TLS).
    #[arg(long, default_value = "auto")]
    upstream_http: String,
    /// TOML appended to the gateway's config (`[policy]` rules, `[state]`), to measure
    /// what enforcement adds.
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// The gateway key of the benchmark config.
const KEY: &str = "br-bench-key";
/// LiteLLM's master key (bench/litellm/start.sh sets it).
const LITELLM_KEY: &str = "sk-bench-master";
/// The model asked for; the mock echoes it.
const MODEL: &str = "gpt-4.1-mini";

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(upstream) = &args.floor_proxy {
        return floor_proxy(upstream, args.upstream_http == "2");
    }
    if let Some(upstream) = &args.tcp_relay {
        return tcp_relay(upstream);
    }
    let bin = match &args.burnrate {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("no parent directory")?
            .join("burnrate"),
    };
    let work = match &args.work {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("burnrate-gateway-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;

    println!("machine: {}", machine());
    println!(
        "command: gateway_bench --rates {} --seconds {} --streams {} --upstream-http {}{}{}",
        args.rates
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.seconds,
        args.streams,
        args.upstream_http,
        if args.litellm_start.is_some() {
            " --litellm-start ..."
        } else {
            ""
        },
        args.policy
            .as_ref()
            .map(|path| format!(" --policy {}", path.display()))
            .unwrap_or_default()
    );

    let mock = Process::start(
        "mock",
        Command::new(&bin).args(["mock-provider", "--listen", "127.0.0.1:0"]),
        listening_url,
    )?;
    let policy = match &args.policy {
        Some(path) => std::fs::read_to_string(path)?,
        None => String::new(),
    };
    let gateway = start_gateway(&bin, &work.join("latency"), &mock.url, &policy, &args)?;
    let floor = start_floor(&mock.url, &args.upstream_http)?;
    let relay = Process::start(
        "TCP relay",
        Command::new(std::env::current_exe()?).args(["--tcp-relay", &mock.url]),
        listening_url,
    )?;
    let litellm = match &args.litellm_start {
        None => None,
        Some(script) => Some(start_litellm(script, &args.litellm_venv, &mock.url)?),
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each target with the process whose CPU time it costs (LiteLLM's is a process tree).
    let mut targets = vec![
        (
            Target::new("mock, direct", &mock.url, "sk-direct", false)?,
            Some(mock.pid()),
        ),
        (
            Target::new("pass-through proxy", &floor.url, "sk-direct", false)?,
            Some(floor.pid()),
        ),
        (
            Target::new("TCP relay (no HTTP)", &relay.url, "sk-direct", false)?,
            Some(relay.pid()),
        ),
        (
            Target::new("burnrate", &gateway.url, KEY, true)?,
            Some(gateway.pid()),
        ),
    ];
    if let Some(litellm) = &litellm {
        targets.push((
            Target::new("LiteLLM proxy", &litellm.url, LITELLM_KEY, false)?,
            None,
        ));
    }

    println!();
    println!(
        "| mode | rate (req/s) | target | p50 | p90 | p99 | max | added p50 | added p99 | errors | CPU per call |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for stream in [false, true] {
        for &rate in &args.rates {
            let mut direct: Option<Stats> = None;
            for (target, pid) in &targets {
                runtime.block_on(load(target, rate, args.warmup, stream))?;
                let cpu_before = pid.map(cpu_time).transpose()?;
                let stats = runtime.block_on(load(target, rate, args.seconds, stream))?;
                let cpu = match (pid, cpu_before) {
                    (Some(pid), Some(before)) => {
                        let calls = (stats.micros.len() + stats.errors).max(1) as f64;
                        format!(
                            "{:.0} µs",
                            (cpu_time(*pid)? - before).as_secs_f64() * 1e6 / calls
                        )
                    }
                    _ => "—".into(),
                };
                let added = direct.as_ref().map(|d| {
                    (
                        stats.percentile(0.50) as i64 - d.percentile(0.50) as i64,
                        stats.percentile(0.99) as i64 - d.percentile(0.99) as i64,
                    )
                });
                println!(
                    "| {} | {rate} | {} | {} | {} | {} | {} | {} | {} | {} | {cpu} |",
                    if stream { "stream" } else { "plain" },
                    target.name,
                    micros(stats.percentile(0.50)),
                    micros(stats.percentile(0.90)),
                    micros(stats.percentile(0.99)),
                    micros(stats.percentile(1.0)),
                    added.map_or("—".into(), |(p50, _)| signed_micros(p50)),
                    added.map_or("—".into(), |(_, p99)| signed_micros(p99)),
                    stats.errors,
                );
                if direct.is_none() {
                    direct = Some(stats);
                }
            }
        }
    }

    drop(litellm);
    drop(floor);
    drop(relay);
    if let Some(dir) = &args.otlp_bodies {
        println!();
        println!("| OTLP/HTTP body | requests | spans/s | errors |");
        println!("|---|---|---|---|");
        for (name, file, content_type) in [
            ("protobuf", "traces.pb", "application/x-protobuf"),
            ("JSON", "traces.json", "application/json"),
        ] {
            let body = std::fs::read(dir.join(file)).with_context(|| format!("read {file}"))?;
            let (requests, errors, elapsed) =
                runtime.block_on(ingest(&gateway.url, body, content_type, args.seconds))?;
            println!(
                "| {name} | {requests} | {:.0} | {errors} |",
                (requests * args.otlp_spans) as f64 / elapsed.as_secs_f64()
            );
        }
    }
    drop(gateway);
    if args.streams > 0 {
        println!();
        let gateway = start_gateway(&bin, &work.join("streams"), &mock.url, &policy, &args)?;
        let upstream = match args.upstream_http.as_str() {
            "2" => "HTTP/2 upstream",
            _ => "HTTP/1.1 upstream, a socket per stream",
        };
        runtime.block_on(stream_memory("burnrate", &gateway, KEY, upstream, &args))?;
        drop(gateway);
        // The same streams through the pass-through proxy: the memory any proxy on this
        // stack (hyper through axum, reqwest) holds per open stream, before doing anything.
        // Over HTTP/1.1 upstream: it has no lanes, and one HTTP/2 connection carries only
        // the mock's 200 streams.
        let floor = start_floor(&mock.url, "1.1")?;
        runtime.block_on(stream_memory(
            "pass-through proxy",
            &floor,
            "sk-direct",
            "HTTP/1.1 upstream, a socket per stream",
            &args,
        ))?;
    }
    drop(mock);
    if args.work.is_none() {
        std::fs::remove_dir_all(&work).ok();
    }
    Ok(())
}

/// The least a proxy can do, on the gateway's stack (tokio, hyper through axum, reqwest):
/// forward the request as it is and stream the response back. Its added latency is the floor
/// any HTTP proxy pays on this machine (a second loopback hop and its wake-ups), so the
/// benchmark can tell the gateway's own work from the hop. It speaks HTTP/2 upstream when
/// `http2` (as the gateway does with `--upstream-http 2`).
fn floor_proxy(upstream: &str, http2: bool) -> Result<()> {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use axum::serve::ListenerExt;

    async fn forward(
        State((client, upstream)): State<(reqwest::Client, String)>,
        request: Request,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let url = format!("{upstream}{}", parts.uri.path());
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return Response::builder()
                .status(400)
                .body(Body::empty())
                .unwrap_or_default();
        };
        let mut headers = parts.headers;
        headers.remove("host");
        headers.remove("content-length");
        match client.post(url).headers(headers).body(body).send().await {
            Ok(response) => {
                let mut builder = Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    if name != "content-length"
                        && name != "transfer-encoding"
                        && name != "connection"
                    {
                        builder = builder.header(name, value);
                    }
                }
                builder
                    .body(Body::from_stream(response.bytes_stream()))
                    .unwrap_or_default()
            }
            Err(_) => Response::builder()
                .status(502)
                .body(Body::empty())
                .unwrap_or_default(),
        }
    }

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().tcp_nodelay(true);
        let client = if http2 {
            client.http2_prior_knowledge()
        } else {
            client
        }
        .build()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        eprintln!(
            "pass-through proxy listening on http://{}",
            listener.local_addr()?
        );
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((client, upstream.to_owned()));
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Less than any proxy can do: copy bytes between each client connection and a connection of
/// its own to `upstream`, without reading HTTP at all. Its added latency is what a second
/// loopback hop costs on this machine by itself (two more sockets, their wake-ups and
/// copies), the floor under the pass-through proxy's.
fn tcp_relay(upstream: &str) -> Result<()> {
    let upstream = upstream
        .strip_prefix("http://")
        .context("the TCP relay's upstream must be an http:// URL")?
        .to_owned();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        eprintln!("TCP relay listening on http://{}", listener.local_addr()?);
        loop {
            let (mut client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    })
}

/// One endpoint under load.
struct Target {
    name: &'static str,
    url: String,
    key: &'static str,
    attribution: bool,
    client: reqwest::Client,
}

impl Target {
    fn new(name: &'static str, base: &str, key: &'static str, attribution: bool) -> Result<Target> {
        Target::with_timeout(name, base, key, attribution, Some(REQUEST_TIMEOUT))
    }

    fn with_timeout(
        name: &'static str,
        base: &str,
        key: &'static str,
        attribution: bool,
        timeout: Option<Duration>,
    ) -> Result<Target> {
        let mut client = reqwest::Client::builder();
        if let Some(timeout) = timeout {
            client = client.timeout(timeout);
        }
        let client = client
            .tcp_nodelay(true)
            .pool_max_idle_per_host(20_000)
            .build()?;
        Ok(Target::with_client(name, base, key, attribution, client))
    }

    /// A client that speaks HTTP/2 without upgrade (h2c), with no timeout: one connection.
    fn http2(name: &'static str, base: &str, key: &'static str) -> Result<Target> {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .tcp_nodelay(true)
            .build()?;
        Ok(Target::with_client(name, base, key, true, client))
    }

    fn with_client(
        name: &'static str,
        base: &str,
        key: &'static str,
        attribution: bool,
        client: reqwest::Client,
    ) -> Target {
        Target {
            name,
            url: format!("{base}/v1/chat/completions"),
            key,
            attribution,
            client,
        }
    }

    fn request(&self, stream: bool) -> reqwest::RequestBuilder {
        // Numbered across every phase and target, so no two calls share a run and order.
        static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut request = self
            .client
            .post(&self.url)
            .bearer_auth(self.key)
            .header("content-type", "application/json")
            .body(chat_body(n, stream));
        if self.attribution {
            request = request
                .header("x-attribution-user-id", format!("u_{}", n % 500))
                .header(
                    "x-attribution-feature",
                    ["inbox-triage", "search", "summarise"][n as usize % 3],
                )
                .header("x-attribution-agent-run-id", format!("run-{}", n / 8));
        }
        request
    }
}

/// A realistic agent turn: a shared system prompt and tool (a cacheable prefix) and a user
/// message that differs on every call, so tokenizer caches do not make the gateway look faster.
fn chat_body(n: u64, stream: bool) -> String {
    serde_json::json!({
        "model": MODEL,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a support agent for a large online shop. Answer briefly, cite the order number, and call a tool when you need order data. Never invent tracking numbers."},
            {"role": "user", "content": format!("Request {n}: where is my order {}? It was due on Monday and the tracking page has not changed for three days.", 100_000 + n)},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_order",
            "description": "Look up an order by its number.",
            // The mock fills arguments from the schema: a different order per call, so the
            // tool calls of one agent run differ (the same call five times in a run is a
            // loop, which the gateway's default run limits stop).
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "enum": [(100_000 + n).to_string()]}}, "required": ["order_id"]},
        }}],
        "max_completion_tokens": 64,
    })
    .to_string()
}

/// Latencies of one measured run, in microseconds.
struct Stats {
    micros: Vec<u64>,
    errors: usize,
}

impl Stats {
    /// Nearest-rank percentile.
    fn percentile(&self, q: f64) -> u64 {
        if self.micros.is_empty() {
            return 0;
        }
        let rank = ((q * self.micros.len() as f64).ceil() as usize).clamp(1, self.micros.len());
        self.micros[rank - 1]
    }
}

/// A request not answered in this time counts as an error (an overloaded target must not hold
/// the run up for minutes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Requests in flight per target beyond which a scheduled request is counted as an error
/// instead of sent (a target that cannot keep up would otherwise exhaust the descriptors).
const MAX_IN_FLIGHT: usize = 4_000;

/// Open-loop load: request `i` starts at `start + i / rate` whatever happened to the others.
async fn load(target: &Target, rate: u32, seconds: u64, stream: bool) -> Result<Stats> {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    for n in 0..total {
        tokio::time::sleep_until(start + interval.mul_f64(n as f64)).await;
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            let _ = tx.send(Err(anyhow::anyhow!("more than {MAX_IN_FLIGHT} in flight")));
            continue;
        };
        let request = target.request(stream);
        let tx = tx.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let outcome = send(request).await;
            drop(permit);
            let _ = tx.send(outcome.map(|()| began.elapsed()));
        });
    }
    drop(tx);
    let mut stats = Stats {
        micros: Vec::with_capacity(total as usize),
        errors: 0,
    };
    while let Some(outcome) = rx.recv().await {
        match outcome {
            Ok(elapsed) => stats.micros.push(elapsed.as_micros() as u64),
            Err(_) => stats.errors += 1,
        }
    }
    stats.micros.sort_unstable();
    Ok(stats)
}

/// Sends one request and reads its whole body.
async fn send(request: reqwest::RequestBuilder) -> Result<()> {
    let mut response = request.send().await?;
    let status = response.status();
    while response.chunk().await?.is_some() {}
    if !status.is_success() {
        bail!("status {status}");
    }
    Ok(())
}

/// Posts `body` to `/v1/traces` from four concurrent senders for `seconds`; returns the
/// requests answered 200, the failures, and the time taken.
async fn ingest(
    base: &str,
    body: Vec<u8>,
    content_type: &'static str,
    seconds: u64,
) -> Result<(u64, u64, Duration)> {
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let url = format!("{base}/v1/traces");
    let body = axum::body::Bytes::from(body);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        senders.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let sent = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for sender in senders {
        let (o, f) = sender.await?;
        ok += o;
        failed += f;
    }
    Ok((ok, failed, started.elapsed()))
}

/// Holds `args.streams` streams open through `proxy` and prints its resident memory.
async fn stream_memory(
    name: &'static str,
    proxy: &Process,
    key: &'static str,
    upstream: &str,
    args: &Args,
) -> Result<()> {
    let (targets, sockets) = if args.streams_h2_connections == 0 {
        let target = Target::with_timeout(name, &proxy.url, key, true, None)?;
        (
            vec![Arc::new(target)],
            format!("HTTP/1.1 clients, {upstream}"),
        )
    } else {
        let targets = (0..args.streams_h2_connections)
            .map(|_| Target::http2(name, &proxy.url, key).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let sockets = format!(
            "HTTP/2 over {} client connections, {upstream}",
            args.streams_h2_connections
        );
        (targets, sockets)
    };
    let (held, base, rss, peak) = open_streams(&targets, args.streams, proxy.pid()).await?;
    println!(
        "{name}, {held} concurrent open streams ({sockets}): RSS {:.1} MB, peak RSS {:.1} MB; \
         {:.1} MB after one call, so {:.1} KB per open stream",
        rss as f64 / 1e6,
        peak as f64 / 1e6,
        base as f64 / 1e6,
        peak.saturating_sub(base) as f64 / 1e3 / held.max(1) as f64
    );
    Ok(())
}

/// Opens `count` streams through `targets` (in turn) that stay open (the mock waits between
/// chunks), waits until each has its first chunk, and reads the gateway's resident memory:
/// after one whole call first (the base: code and tables touched, the tokenizer loaded), then
/// with the streams open (now and peak).
async fn open_streams(
    targets: &[Arc<Target>],
    count: usize,
    pid: u32,
) -> Result<(usize, u64, u64, u64)> {
    let first = targets[0].request(true).send().await?;
    anyhow::ensure!(
        first.status().is_success(),
        "warm-up call: status {}",
        first.status()
    );
    first.bytes().await?;
    let (base, _) = memory(pid)?;
    let (opened_tx, mut opened) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count as u64 {
        let target = targets[n as usize % targets.len()].clone();
        let opened_tx = opened_tx.clone();
        let release = release.clone();
        tasks.push(tokio::spawn(async move {
            let request = target
                .request(true)
                .header("x-mock-chunk-delay-ms", "30000");
            let first = async {
                let mut response = request.send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "status {}",
                    response.status()
                );
                response.chunk().await?;
                Ok::<_, anyhow::Error>(response)
            }
            .await;
            let held = first.is_ok();
            let _ = opened_tx.send(first.map(drop).map_err(|e| e.to_string()));
            if held {
                release.notified().await;
            }
        }));
        if n % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(opened_tx);
    let mut held = 0;
    let mut first_error = None;
    for _ in 0..count {
        match opened.recv().await {
            Some(Ok(())) => held += 1,
            Some(Err(error)) => {
                first_error.get_or_insert(error);
            }
            None => break,
        }
    }
    if let Some(error) = first_error {
        eprintln!(
            "{} of {count} streams failed to open; first error: {error}",
            count - held
        );
    }
    let (rss, peak) = memory(pid)?;
    release.notify_waiters();
    for task in tasks {
        task.abort();
    }
    Ok((held, base, rss, peak))
}

/// CPU time (user and system, all threads) a process has used so far.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime
    // are the 14th and 15th fields of the line, in clock ticks.
    let rest = &stat[stat.rfind(')').context("malformed /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // Linux reports USER_HZ ticks, 100 per second on every architecture it runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// VmRSS and VmHWM of a process, in bytes.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("{name} missing in /proc/{pid}/status"))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Process {
    /// Starts `command` and waits up to two minutes for a stderr or stdout line that `ready`
    /// turns into the base URL.
    fn start(
        name: &str,
        command: &mut Command,
        ready: fn(&str) -> Option<String>,
    ) -> Result<Process> {
        use std::io::{BufRead, BufReader};
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {name}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        // Only the readers send: a child that exits before it is ready ends the wait.
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = ready(&line) {
                        // Keep draining the pipes so the child never blocks on a full one.
                        std::thread::spawn(move || while rx.recv().is_ok() {});
                        return Ok(Process { child, url });
                    }
                    seen.push(line);
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        bail!("{name} did not become ready; output:\n{}", seen.join("\n"))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn listening_url(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let (host, after) = rest.split_once(':')?;
    let port: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!port.is_empty()).then(|| format!("http://{host}:{port}"))
}

/// Starts LiteLLM through its script on a free port and waits (up to five minutes: the
/// first start installs it) until `/health/liveliness` answers.
fn start_litellm(script: &Path, venv: &Path, mock: &str) -> Result<Process> {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(script)
        .arg(venv)
        .arg(format!("{mock}/v1"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start LiteLLM")?;
    let mut process = Process {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if let Some(status) = process.child.try_wait()? {
            bail!("LiteLLM exited before it was ready: {status}");
        }
        if let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            socket.write_all(
                b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )?;
            let mut answer = String::new();
            let _ = socket.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(process);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("LiteLLM did not answer /health/liveliness within five minutes")
}

/// Starts `burnrate serve` on the mock with its ledger and journal under `dir`, with
/// `policy` appended to its config.
fn start_gateway(bin: &Path, dir: &Path, mock: &str, policy: &str, args: &Args) -> Result<Process> {
    std::fs::create_dir_all(dir)?;
    let config = write_config(dir, mock, bin, policy, args)?;
    Process::start(
        "gateway",
        Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("BENCH_PROVIDER_KEY", "sk-bench-upstream")
            .env("RUST_LOG", "warn"),
        listening_url,
    )
}

/// Starts the pass-through proxy (this program with `--floor-proxy`) in front of `mock`,
/// speaking `upstream_http` to it.
fn start_floor(mock: &str, upstream_http: &str) -> Result<Process> {
    Process::start(
        "pass-through proxy",
        Command::new(std::env::current_exe()?).args([
            "--floor-proxy",
            mock,
            "--upstream-http",
            upstream_http,
        ]),
        listening_url,
    )
}

/// The benchmark's gateway config: the mock as OpenAI, journal and store on.
fn write_config(work: &Path, mock: &str, bin: &Path, policy: &str, args: &Args) -> Result<PathBuf> {
    let flush_interval_ms = args.flush_interval_ms;
    // Left out when `auto` (the default), so the benchmark also runs binaries without it.
    let upstream_http = match args.upstream_http.as_str() {
        "auto" => String::new(),
        version => format!("http = \"{version}\""),
    };
    let flush_in_idle_time = args
        .flush_in_idle_time
        .map_or(String::new(), |on| format!("flush_in_idle_time = {on}"));
    let output = Command::new(bin).args(["keys", "hash", KEY]).output()?;
    anyhow::ensure!(output.status.success(), "burnrate keys hash failed");
    let hash = String::from_utf8(output.stdout)?.trim().to_owned();
    let dir = work.display();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"

[store]
path = "{dir}/ledger.duckdb"
journal_dir = "{dir}/journal"
fsync_interval_ms = 100
flush_interval_ms = {flush_interval_ms}
{flush_in_idle_time}

[[providers]]
name = "openai"
kind = "openai"
base_url = "{mock}/v1"
api_key_env = "BENCH_PROVIDER_KEY"
models = ["gpt-*"]
{upstream_http}

[[keys]]
id = "bench"
sha256 = "{hash}"
tenant_id = "bench-tenant"

[attribution]
require = ["tenant_id", "user_id", "feature"]
untagged = "reject"

{policy}
"#
    );
    let path = work.join("burnrate.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn micros(value: u64) -> String {
    format!("{value} µs")
}

fn signed_micros(value: i64) -> String {
    format!("{value:+} µs")
}

/// Cores, memory and kernel of this machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let kb: f64 = text
                .lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {memory}, Linux {}", kernel.trim())
}
