//! The proxy routes: authenticate, attribute, forward, meter, record.
//!
//! The request path does the least it can: read the body, read the few fields it needs,
//! check the key and the attribution headers, pick the provider and forward. The call then
//! runs in its own tracked task, so it is metered and recorded even if the client goes away
//! (metering outlives the client), and graceful shutdown waits for it. The layer split is
//! tokenised on a blocking thread while the upstream works.

mod forward;
mod layers;
mod record;
mod stream;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use burnrate_policy::cache::CachedAnswer;
use burnrate_policy::{Admission, CallFacts, InputShape, Ticket};
use burnrate_wire::{Api, Dialect, RequestInfo};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use tokio::sync::oneshot;

use crate::app::AppState;
use crate::attribution::Attribution;
use crate::error::ApiError;
use crate::keys::KeyBinding;
use crate::routing::{Provider, ProviderKind};

use layers::LayerWork;
pub use record::{CallContext, Captured};

/// A call that passed the gateway's checks and goes upstream.
struct Call {
    context: CallContext,
    provider: Arc<Provider>,
    info: RequestInfo,
    /// The body to send upstream (rewritten to ask for stream usage when needed).
    body: Bytes,
    /// Whether the gateway added `include_usage` and must hide it from the client.
    strip_usage: bool,
    /// The layer split to tokenise.
    layers: LayerWork,
    /// The client's headers, to forward the ones that are not the gateway's.
    headers: http::HeaderMap,
    /// What the policy reserved, to settle when the call ends.
    ticket: Ticket,
    /// The answer-cache key, when a successful answer should be kept.
    cache_key: Option<u128>,
    /// The call's content, when `[[audit.capture]]` keeps it.
    captured: Option<record::Captured>,
}

/// What admission lets happen.
enum Admitted {
    /// Forward the call.
    Forward(Box<Call>),
    /// Answer from the ladder's cache.
    Cached(Box<CacheHit>),
}

/// A call the ladder answers from its cache.
struct CacheHit {
    context: CallContext,
    answer: Arc<CachedAnswer>,
    ticket: Ticket,
}

/// Handles one call to a proxy route.
pub async fn handle(State(state): State<Arc<AppState>>, api: Api, request: Request) -> Response {
    let ts = Utc::now();
    let started = Instant::now();
    let dialect = api.dialect();
    let (parts, body) = request.into_parts();
    let call = match admit(&state, api, ts, started, parts.headers, body).await {
        Ok(Admitted::Forward(call)) => *call,
        Ok(Admitted::Cached(hit)) => {
            return answer_from_cache(&state, hit.context, &hit.answer, &hit.ticket);
        }
        Err(refusal) => return refusal.respond(&state, dialect),
    };
    let (head_tx, head_rx) = oneshot::channel();
    state
        .tasks
        .spawn(forward::run(Arc::clone(&state), call, head_tx));
    head_rx.await.unwrap_or_else(|_| {
        ApiError::Unavailable("the call's task ended without an answer".into())
            .into_dialect(dialect)
    })
}

/// A call the gateway refuses before forwarding it.
struct Refusal {
    error: ApiError,
    /// The event to record, when the caller is known (authenticated).
    event: Option<CallContext>,
}

impl Refusal {
    fn anonymous(error: ApiError) -> Refusal {
        Refusal { error, event: None }
    }

    fn respond(self, state: &AppState, dialect: Dialect) -> Response {
        state.metrics.refusal(refusal_reason(&self.error));
        if let Some(context) = self.event
            && let Err(error) = record::refused(state, context, &self.error)
        {
            return ApiError::Unavailable(error.to_string()).into_dialect(dialect);
        }
        self.error.into_dialect(dialect)
    }
}

fn refusal_reason(error: &ApiError) -> &'static str {
    match error {
        ApiError::Unauthorized => "unauthorized",
        ApiError::Forbidden(_) => "forbidden",
        ApiError::BadRequest { .. } => "bad_request",
        ApiError::MissingAttribution(_) => "missing_attribution",
        ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        ApiError::PayloadTooLarge(_) => "payload_too_large",
        ApiError::UnknownModel { .. } => "unknown_model",
        ApiError::Upstream { .. } => "upstream",
        ApiError::UpstreamTimeout { .. } => "upstream_timeout",
        ApiError::Unavailable(_) => "unavailable",
        ApiError::Policy(refusal) => refusal.code(),
    }
}

/// The gateway's checks, in order: key, attribution headers, content type, body size, body
/// fields, key restrictions, required attribution, provider.
async fn admit(
    state: &Arc<AppState>,
    api: Api,
    ts: DateTime<Utc>,
    started: Instant,
    headers: http::HeaderMap,
    body: Body,
) -> Result<Admitted, Refusal> {
    let config = state.config();
    let key = config
        .keys
        .authenticate(&headers)
        .ok_or_else(|| Refusal::anonymous(ApiError::Unauthorized))?;
    let mut context = CallContext::new(api, ts, started, &key);
    let refuse = |context: &CallContext, error: ApiError| Refusal {
        error,
        event: Some(context.clone()),
    };
    let mut attribution =
        Attribution::from_headers(&headers).map_err(|error| refuse(&context, error))?;
    attribution.bind_key(&key);
    context.attribution = attribution;
    check_content_type(&headers).map_err(|error| refuse(&context, error))?;
    let body = axum::body::to_bytes(body, config.max_body_bytes)
        .await
        .map_err(|error| refuse(&context, body_error(error, config.max_body_bytes)))?;
    let info = burnrate_wire::request::analyze(api, &body).map_err(|error| {
        refuse(
            &context,
            ApiError::BadRequest {
                field: error.field,
                reason: error.reason,
            },
        )
    })?;
    context.requested_model = info.model.clone();
    context.request_tier = info.service_tier.clone();
    check_key(&key, &context.attribution, &info.model).map_err(|error| refuse(&context, error))?;
    context
        .attribution
        .require(&config.require, config.untagged)
        .map_err(|error| refuse(&context, error))?;
    let mut provider = config
        .providers
        .route(provider_kind(api), &info.model)
        .cloned()
        .ok_or_else(|| {
            let (other, route) = match provider_kind(api) {
                ProviderKind::OpenAi => (ProviderKind::Anthropic, "POST /v1/messages"),
                ProviderKind::Anthropic => (
                    ProviderKind::OpenAi,
                    "POST /v1/chat/completions (or /v1/responses)",
                ),
            };
            let other_route = config.providers.route(other, &info.model).map(|_| route);
            refuse(
                &context,
                ApiError::UnknownModel {
                    model: info.model.clone(),
                    other_route,
                },
            )
        })?;
    context.provider = provider.name.clone();
    if info.background && !config.policy.budgets.is_empty() {
        // Its usage arrives later, on a request the gateway does not see: it could never be
        // settled, so under budgets it is refused rather than let through uncounted.
        return Err(refuse(
            &context,
            ApiError::BadRequest {
                field: "background".into(),
                reason: "background responses report their usage outside the gateway, so \
                         they cannot be held to a budget; send the call without background"
                    .into(),
            },
        ));
    }
    let cache_key = (!info.stream && state.policy.caches_answers(&config.policy))
        .then(|| {
            let tenant = context.attribution.get("tenant_id").unwrap_or(UNTAGGED);
            burnrate_policy::request_key(tenant, api.operation(), &body)
        })
        .flatten();
    let facts = CallFacts {
        now: ts,
        tenant: context.attribution.get("tenant_id").unwrap_or(UNTAGGED),
        user: context.attribution.get("user_id"),
        feature: context.attribution.get("feature"),
        key_id: &context.key_id,
        run: context.attribution.get("agent_run_id"),
        parent_run: context.attribution.get("parent_run_id"),
        provider: &provider.name,
        model: &info.model,
        tier: config.policy.reservation_tier(info.service_tier.as_deref()),
        body_bytes: body.len() as u64,
        // The scan is only needed to reserve a worst case.
        input: if config.policy.budgets.is_empty() {
            InputShape::default()
        } else {
            burnrate_policy::input_shape(&body)
        },
        // Embeddings produce no output tokens.
        max_output: if api == Api::Embeddings {
            Some(0)
        } else {
            info.max_output_tokens
        },
        choices: info.choices,
        cache_key,
    };
    let admission = state
        .policy
        .admit(&config.policy, &state.prices.book(), &facts)
        .await
        .map_err(|error| refuse(&context, ApiError::Unavailable(error.to_string())))?;
    let ticket = match admission {
        Admission::Proceed(ticket) => ticket,
        Admission::Cached(answer, ticket) => {
            context.policy_labels = policy_labels(&ticket);
            return Ok(Admitted::Cached(Box::new(CacheHit {
                context,
                answer,
                ticket,
            })));
        }
        Admission::Refuse(refusal, alerts) => {
            state.alert(alerts);
            return Err(refuse(&context, ApiError::Policy(Box::new(refusal))));
        }
    };
    context.policy_labels = policy_labels(&ticket);
    let captured = config
        .capture
        .as_ref()
        .filter(|capture| {
            capture.wants(
                context.attribution.get("tenant_id"),
                context.attribution.get("feature"),
            )
        })
        .map(|capture| record::Captured {
            capture: capture.clone(),
            request: body.clone(),
        });
    let mut body = body;
    if let Some(model) = &ticket.model {
        // The ladder's fallback: the cheaper model, through whichever provider serves it.
        let rewritten = match with_model(&body, model) {
            Ok(rewritten) => rewritten,
            Err(error) => {
                release(state, &ticket).await;
                return Err(refuse(&context, error));
            }
        };
        body = Bytes::from(rewritten);
        if let Some(cheaper) = config.providers.route(provider_kind(api), model) {
            provider = Arc::clone(cheaper);
            context.provider = provider.name.clone();
        }
    }
    let strip_usage = api == Api::ChatCompletions && info.stream && !info.client_wants_usage;
    let body = if strip_usage {
        match burnrate_wire::request::with_stream_usage(&body) {
            Ok(rewritten) => Bytes::from(rewritten),
            Err(error) => {
                release(state, &ticket).await;
                return Err(refuse(
                    &context,
                    ApiError::BadRequest {
                        field: error.field,
                        reason: error.reason,
                    },
                ));
            }
        }
    } else {
        body
    };
    let layers = LayerWork::start(api, body.clone());
    Ok(Admitted::Forward(Box::new(Call {
        context,
        provider,
        info,
        body,
        strip_usage,
        layers,
        headers,
        ticket,
        cache_key,
        captured,
    })))
}

/// Gives back a reservation for a call refused after admission (a body the gateway cannot
/// rewrite), so it cannot hold budget it never used.
async fn release(state: &AppState, ticket: &Ticket) {
    if let Err(error) = state.policy.release(ticket).await {
        tracing::error!(%error, "a reservation could not be released");
    }
}

/// Tenant id of calls without one (`untagged = "tag"`).
const UNTAGGED: &str = "untagged";

/// The event labels that say what the policy did to a call.
fn policy_labels(ticket: &Ticket) -> Vec<(&'static str, String)> {
    let mut labels = Vec::new();
    if let Some(degraded) = &ticket.degraded {
        labels.push(("burnrate.degraded", degraded.header()));
    }
    if !ticket.shadow.is_empty() {
        labels.push(("burnrate.shadow", ticket.shadow.join("; ")));
    }
    labels
}

/// The response headers that tell the client what the policy did: `X-Burnrate-Degraded`
/// and the `X-RateLimit-*` figures of its tightest rate limit.
fn policy_headers(ticket: &Ticket, headers: &mut http::HeaderMap) {
    if let Some(degraded) = &ticket.degraded
        && let Ok(value) = http::HeaderValue::from_str(&degraded.header())
    {
        headers.insert("x-burnrate-degraded", value);
    }
    if let Some(rate) = ticket.rate {
        headers.insert("x-ratelimit-limit", rate.limit.into());
        headers.insert("x-ratelimit-remaining", rate.remaining.into());
        headers.insert("x-ratelimit-reset", rate.reset_s.into());
    }
}

/// `body` with its `model` replaced.
fn with_model(body: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let bad = |reason: String| ApiError::BadRequest {
        field: "(body)".into(),
        reason,
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| bad(error.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| bad("must be a JSON object".into()))?;
    object.insert("model".into(), serde_json::Value::from(model));
    serde_json::to_vec(&value).map_err(|error| bad(error.to_string()))
}

/// Answers a repeated request from the ladder's cache: no upstream call, no cost; the
/// event records the answer's model, no usage, and `burnrate.degraded = cached`.
fn answer_from_cache(
    state: &AppState,
    context: CallContext,
    answer: &CachedAnswer,
    ticket: &Ticket,
) -> Response {
    let dialect = context.api.dialect();
    let metered = burnrate_wire::Metered {
        model: Some(answer.model.clone()),
        ..burnrate_wire::Metered::default()
    };
    let event = context.event(&metered, None, burnrate_model::Status::Ok, None);
    if let Err(error) = record::record(state, event) {
        return ApiError::Unavailable(error.to_string()).into_dialect(dialect);
    }
    let mut response = Response::new(Body::from(answer.body.clone()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    policy_headers(ticket, response.headers_mut());
    response
}

fn check_content_type(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType("(none)".into()));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.into_owned()))
    }
}

fn body_error(error: axum::Error, limit: usize) -> ApiError {
    let too_large = std::error::Error::source(&error)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
    if too_large {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadRequest {
            field: "(body)".into(),
            reason: format!("could not be read: {error}"),
        }
    }
}

fn check_key(key: &KeyBinding, attribution: &Attribution, model: &str) -> Result<(), ApiError> {
    match key.refusal(
        attribution.get("user_id"),
        attribution.get("feature"),
        model,
    ) {
        Some(reason) => Err(ApiError::Forbidden(reason)),
        None => Ok(()),
    }
}

fn provider_kind(api: Api) -> ProviderKind {
    match api.dialect() {
        Dialect::OpenAi => ProviderKind::OpenAi,
        Dialect::Anthropic => ProviderKind::Anthropic,
    }
}

/// `GET /v1/models`: the model names and patterns the configured providers serve, in
/// OpenAI's list shape (authenticated like every proxy route).
pub async fn models(State(state): State<Arc<AppState>>, headers: http::HeaderMap) -> Response {
    if state.config().keys.authenticate(&headers).is_none() {
        state.metrics.refusal("unauthorized");
        return ApiError::Unauthorized.into_dialect(Dialect::OpenAi);
    }
    let data: Vec<serde_json::Value> = state
        .config()
        .providers
        .iter()
        .flat_map(|provider| {
            provider.models.iter().map(|model| {
                serde_json::json!({
                    "id": model, "object": "model", "created": 0, "owned_by": provider.name,
                })
            })
        })
        .collect();
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"object": "list", "data": data})),
    )
        .into_response()
}
