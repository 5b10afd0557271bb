//! A wire-faithful fake OpenAI and Anthropic server for tests, the demo and benchmarks.
//! Never used in production paths.
//!
//! One server answers both providers (the OpenAI SDK's `base_url` is `http://HOST/v1`, the
//! Anthropic SDK's is `http://HOST`):
//!
//! | route | dialect | |
//! |---|---|---|
//! | `POST /v1/chat/completions` | OpenAI | JSON or SSE (`stream`, `stream_options.include_usage`) |
//! | `POST /v1/responses` | OpenAI | JSON or SSE (`response.created` ... `response.completed`) |
//! | `POST /v1/embeddings` | OpenAI | float or base64 vectors |
//! | `POST /v1/messages` | Anthropic | JSON or SSE (`message_start` ... `message_stop`) |
//! | `POST /v1/messages/count_tokens` | Anthropic | `{"input_tokens": N}` |
//! | `GET /v1/models` | either | OpenAI list, or Anthropic's when `anthropic-version` is sent |
//! | `GET /healthz` | none | `ok`, no auth |
//!
//! Response shapes and SSE framing follow real recorded responses (field order, `object`
//! values, id formats, Anthropic's `event:` lines and space-padded `data:` lines, `data:
//! [DONE]` for Chat only). Streams are sent chunked. The requested `model` is echoed.
//!
//! Auth is checked for presence only: `Authorization: Bearer ...` on OpenAI routes,
//! `x-api-key` on Anthropic ones, else a 401 in the dialect. [`router_with_log`] records
//! every request (before auth) so tests can check what the gateway forwarded.
//!
//! # Usage (deterministic from the request)
//!
//! * Input tokens: `ceil(bytes / 4)` (at least 1) over every string value and object key of
//!   the prompt fields (Chat: `messages`, `tools`, `functions`, `response_format`; Responses:
//!   `input`, `instructions`, `tools`, `text`; Anthropic: `tools`, `system`, `messages`;
//!   Embeddings: each input). `cache_control` objects are not counted.
//! * OpenAI cache reads: with a `prompt_cache_key`, 7/8 of the prompt (rounded down to a
//!   multiple of 128 once >= 1024), a part of `prompt_tokens`.
//! * Anthropic cache: the prefix up to the last `cache_control` block (the whole prompt for
//!   a top-level `cache_control`) is read up to the start of the last message and written
//!   after it, as in a running conversation; a `"ttl": "1h"` breakpoint makes the writes 1h.
//!   `input_tokens` is the rest (at least 1), excluding reads and writes like Anthropic's.
//! * Output: a 16-token deterministic reply, or a call to the first function tool when the
//!   request has tools (not after a tool result, nor with `tool_choice: none`), bounded by
//!   `max_tokens` / `max_completion_tokens` / `max_output_tokens` (then `length`,
//!   `max_tokens` or `incomplete`). Reasoning models (`o1*`, `o3*`, `o4*`, `gpt-5*`) add
//!   64/192/512 reasoning tokens for low/medium/high effort; Anthropic `thinking` adds
//!   `budget_tokens / 16` (16..=256) tokens of thinking, streamed as a thinking block.
//!
//! # Control headers
//!
//! See [`headers`]: `x-mock-delay-ms`, `x-mock-chunk-delay-ms`, `x-mock-status`,
//! `x-mock-cut-after`, `x-mock-broken-sse`, `x-mock-output-tokens`,
//! `x-mock-reasoning-tokens`, `x-mock-cached-tokens`, `x-mock-cache-write-tokens`,
//! `x-mock-tool-calls`. A malformed value is a 400 naming the header.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

mod anthropic;
mod control;
mod faults;
mod json;
mod log;
mod openai;
mod responses;
mod stream;
mod text;
mod usage;

pub use log::{RequestLog, SeenRequest};

use control::Controls;
use faults::Dialect;
use text::Ids;

/// Names of the per-request control headers the mock understands.
pub mod headers {
    pub use crate::control::{
        BROKEN_SSE, CACHE_WRITE_TOKENS, CACHED_TOKENS, CHUNK_DELAY_MS, CUT_AFTER, DELAY_MS,
        OUTPUT_TOKENS, REASONING_TOKENS, STATUS, TOOL_CALLS,
    };
}

/// Largest request body accepted (real providers accept tens of MB).
pub(crate) const MAX_BODY_BYTES: usize = 64 << 20;

/// How the mock behaves for every call; the `x-mock-*` headers override per call.
#[derive(Clone, Debug, PartialEq)]
pub struct MockConfig {
    /// Wait before the first byte of every answer (time to first token).
    pub delay: Duration,
    /// Wait between stream events.
    pub chunk_delay: Duration,
    /// Share of model calls (0.0..=1.0) answered with the provider's overload error: OpenAI
    /// 500 `server_error`, Anthropic 529 `overloaded_error`. `GET` routes never fail.
    pub error_rate: f64,
    /// Seeds the ids and the error-rate draws, so a run can be repeated exactly.
    pub seed: u64,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            error_rate: 0.0,
            seed: 0,
        }
    }
}

/// The mock's routes, ready to serve.
pub fn router(config: MockConfig) -> Router {
    routes(config)
}

/// The mock's routes and a log of every request they receive (method, path, headers, body),
/// recorded before auth is checked.
pub fn router_with_log(config: MockConfig) -> (Router, RequestLog) {
    let log = RequestLog::default();
    let router = routes(config).layer(axum::middleware::from_fn_with_state(
        log.clone(),
        log::record,
    ));
    (router, log)
}

/// Serves the mock on `listener` until the returned future is dropped.
pub async fn serve(listener: TcpListener, config: MockConfig) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the mock on `listener` until `shutdown` completes, then finishes the calls in
/// flight and returns.
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    config: MockConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Streams are written event by event: without TCP_NODELAY, Nagle's algorithm would hold
    // small events back behind unacknowledged ones.
    let listener = listener.tap_io(|tcp| {
        tcp.set_nodelay(true).ok();
    });
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A mock server running on a random local port; stopped when dropped.
#[derive(Debug)]
pub struct MockServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Every request it received.
    pub log: RequestLog,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Starts a mock on `127.0.0.1:0` in the current Tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (router, log) = router_with_log(config);
        let listener = listener.tap_io(|tcp| {
            tcp.set_nodelay(true).ok();
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        Ok(Self { addr, log, task })
    }

    /// The OpenAI SDK's `base_url`: `http://ADDR/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Anthropic SDK's `base_url`: `http://ADDR`.
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State shared by every call of one server.
struct Shared {
    config: MockConfig,
    calls: AtomicU64,
}

/// One call that passed auth, faults and delay: what the route handlers build from.
pub(crate) struct Call {
    pub controls: Controls,
    pub ids: Ids,
    pub dialect: Dialect,
    pub chunk_delay: Duration,
}

type AppState = Arc<Shared>;

fn routes(mut config: MockConfig) -> Router {
    config.error_rate = if config.error_rate.is_nan() {
        0.0
    } else {
        config.error_rate.clamp(0.0, 1.0)
    };
    let shared = Arc::new(Shared {
        config,
        calls: AtomicU64::new(0),
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses_create))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// A route handler body: the call and the parsed JSON request.
type Handler = fn(&Call, &Map<String, Value>) -> Response;

impl Shared {
    /// Auth, control headers, delay, forced status and the error-rate roll, in that order.
    async fn begin(
        &self,
        dialect: Dialect,
        headers: &HeaderMap,
        metered: bool,
    ) -> Result<Call, Response> {
        let number = self.calls.fetch_add(1, Ordering::Relaxed);
        let ids = Ids::new(self.config.seed, number);
        if !faults::authorized(dialect, headers) {
            return Err(faults::unauthorized(dialect, ids));
        }
        let controls = Controls::from_headers(headers)
            .map_err(|message| faults::bad_request(dialect, &message, ids))?;
        let delay = controls.delay.unwrap_or(self.config.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = controls.status {
            return Err(faults::error(dialect, status, None, ids));
        }
        if metered
            && self.config.error_rate > 0.0
            && text::unit(self.config.seed, number, 0xE5) < self.config.error_rate
        {
            return Err(faults::overloaded(dialect, ids));
        }
        let chunk_delay = controls.chunk_delay.unwrap_or(self.config.chunk_delay);
        Ok(Call {
            controls,
            ids,
            dialect,
            chunk_delay,
        })
    }

    async fn handle(
        &self,
        dialect: Dialect,
        headers: &HeaderMap,
        body: &Bytes,
        handler: Handler,
    ) -> Response {
        let call = match self.begin(dialect, headers, true).await {
            Ok(call) => call,
            Err(response) => return response,
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(request)) => handler(&call, &request),
            Ok(_) => {
                faults::bad_request(dialect, "the request body must be a JSON object", call.ids)
            }
            Err(e) => faults::bad_request(
                dialect,
                &format!("We could not parse the JSON body of your request: {e}"),
                call.ids,
            ),
        }
    }
}

async fn chat_completions(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.handle(Dialect::OpenAi, &headers, &body, openai::chat)
        .await
}

async fn responses_create(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.handle(Dialect::OpenAi, &headers, &body, responses::create)
        .await
}

async fn embeddings(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.handle(Dialect::OpenAi, &headers, &body, openai::embeddings)
        .await
}

async fn messages(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.handle(Dialect::Anthropic, &headers, &body, anthropic::messages)
        .await
}

async fn count_tokens(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    s.handle(Dialect::Anthropic, &headers, &body, anthropic::count_tokens)
        .await
}

async fn models(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let dialect = Dialect::guess(&headers);
    match s.begin(dialect, &headers, false).await {
        Ok(call) => match dialect {
            Dialect::OpenAi => openai::models(&call),
            Dialect::Anthropic => anthropic::models(&call),
        },
        Err(response) => response,
    }
}

async fn not_found(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let dialect = Dialect::guess(&headers);
    let number = s.calls.fetch_add(1, Ordering::Relaxed);
    let message = match dialect {
        Dialect::OpenAi => format!("Invalid URL ({method} {})", uri.path()),
        Dialect::Anthropic => "Not found".to_owned(),
    };
    faults::error(
        dialect,
        axum::http::StatusCode::NOT_FOUND,
        Some(&message),
        Ids::new(s.config.seed, number),
    )
}

/// Seconds since the Unix epoch (the `created` fields).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
