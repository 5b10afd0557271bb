//! The admin API: queries and reports over the ledger while `serve` holds the file. Every
//! route needs `Authorization: Bearer <admin token>` (the variable `server.admin_token_env`
//! names); without a configured token the API is off.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use burnrate_model::when;
use burnrate_store::reports::{Report, ReportParams};
use burnrate_store::{Filter, QuerySpec};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use burnrate_audit::Kind;

/// A query as text fields, the same words the CLI takes (`group_by: ["tenant_id"]`,
/// `filters: ["feature!=search"]`, `metrics: ["cost_usd"]`, `order: "cost_usd:asc"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Start, inclusive: RFC 3339, a date, `now` or a span back from now (`7d`).
    pub since: String,
    /// End, exclusive, in the same forms.
    pub until: String,
    /// `hour`, `day`, `week` or `month`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Dimensions.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// `key=value` or `key!=value` filters.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Metric names; default requests and cost.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Sort order.
    #[serde(default)]
    pub order: Option<String>,
    /// Top N groups.
    #[serde(default)]
    pub top: Option<usize>,
}

impl QueryRequest {
    /// The spec, or an error naming the bad field.
    pub fn into_spec(self) -> Result<QuerySpec, String> {
        let (since, until) = range(&self.since, &self.until)?;
        let mut spec = QuerySpec::new(since, until);
        spec.bucket = self
            .bucket
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|error| format!("bucket: {error}"))?;
        spec.group_by = self
            .group_by
            .iter()
            .map(|name| name.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|error| format!("group_by: {error}"))?;
        spec.filters = parse_filters(&self.filters)?;
        if !self.metrics.is_empty() {
            spec.metrics = self
                .metrics
                .iter()
                .map(|name| name.trim().parse())
                .collect::<Result<_, String>>()
                .map_err(|error| format!("metrics: {error}"))?;
        }
        spec.order = self
            .order
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|error| format!("order: {error}"))?;
        spec.top = self.top;
        spec.validate().map_err(|error| error.to_string())?;
        Ok(spec)
    }
}

/// A report's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// Start, inclusive: RFC 3339, a date, `now` or a span back from now (`7d`).
    pub since: String,
    /// End, exclusive, in the same forms.
    pub until: String,
    /// `key=value` filters.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Top N groups.
    #[serde(default)]
    pub top: Option<usize>,
}

/// A request's `since` and `until`, read against one clock reading; errors name the field.
fn range(since: &str, until: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let now = Utc::now();
    let since = when::parse_time(since, now).map_err(|error| format!("since: {error}"))?;
    let until = when::parse_time(until, now).map_err(|error| format!("until: {error}"))?;
    Ok((since, until))
}

fn parse_filters(filters: &[String]) -> Result<Vec<Filter>, String> {
    filters
        .iter()
        .map(|text| text.parse::<Filter>())
        .collect::<Result<_, _>>()
        .map_err(|error| format!("filters: {error}"))
}

/// The admin routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/query", post(query))
        .route("/api/v1/reports/{name}", post(report))
        .route("/api/v1/admin/tenants/paused", get(paused))
        .route("/api/v1/admin/tenants/{id}/pause", post(pause))
        .route("/api/v1/admin/tenants/{id}/resume", post(resume))
        .route("/api/v1/admin/reload", post(reload))
        .route("/api/v1/admin/audit/export", get(audit_export))
        .route("/api/v1/admin/audit/erase", post(audit_erase))
}

/// The query string of an audit export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    tenant: Option<String>,
    user: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default = "jsonl")]
    format: String,
    #[serde(default)]
    include_archive: bool,
}

fn jsonl() -> String {
    "jsonl".into()
}

/// `GET /api/v1/admin/audit/export?tenant=T|user=U&since=&until=&format=jsonl|csv|parquet`:
/// the matching audit records as a file, its manifest in the `x-burnrate-manifest` header.
/// The export is written to a temporary file first (bounded memory), then streamed.
async fn audit_export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    let query = match query {
        Ok(axum::extract::Query(query)) => query,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &error.body_text()),
    };
    if query.tenant.is_none() && query.user.is_none() {
        return problem(
            StatusCode::BAD_REQUEST,
            "tenant or user: name whose records to export",
        );
    }
    let format: burnrate_audit::export::Format = match query.format.parse() {
        Ok(format) => format,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &format!("format: {error}")),
    };
    let config = state.config();
    if !config.audit.enabled {
        return problem(
            StatusCode::NOT_FOUND,
            "the audit trail is off ([audit] enabled)",
        );
    }
    let filter = burnrate_audit::export::Filter {
        tenant: query.tenant,
        user: query.user,
        since: query.since,
        until: query.until,
    };
    // The records of every call answered so far reach the trail first.
    if let Err(error) = state.ledger.with_store(|_| ()).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string());
    }
    let dir = config.audit.dir.clone();
    let archive = query.include_archive.then(|| config.archive_dir());
    let out = std::env::temp_dir().join(format!("burnrate-export-{}", uuid::Uuid::now_v7()));
    // The export holds the trail's segment lock shared: retention waits for it.
    let exported = tokio::task::spawn_blocking(move || {
        let manifest =
            burnrate_audit::export::export(&dir, archive.as_deref(), &filter, format, &out);
        // The open file keeps its bytes after the names are gone.
        let file = std::fs::File::open(&out);
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(burnrate_audit::export::manifest_path(&out));
        Ok::<_, String>((
            manifest.map_err(|e| e.to_string())?,
            file.map_err(|e| e.to_string())?,
        ))
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()));
    let (manifest, file) = match exported {
        Ok(done) => done,
        Err(error) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let content_type = match format {
        burnrate_audit::export::Format::Jsonl => "application/x-ndjson",
        burnrate_audit::export::Format::Csv => "text/csv; charset=utf-8",
        burnrate_audit::export::Format::Parquet => "application/vnd.apache.parquet",
    };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(value) = serde_json::to_string(&manifest)
        .map_err(|e| e.to_string())
        .and_then(|text| http::HeaderValue::from_str(&ascii_json(&text)).map_err(|e| e.to_string()))
    {
        headers.insert("x-burnrate-manifest", value);
    }
    response
}

/// JSON text with every non-ASCII character escaped (`\u00e9`), fit for a header value.
fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The body of an erasure.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    user_id: String,
}

/// `POST /api/v1/admin/audit/erase` `{"user_id": "..."}`: deletes the captured content of
/// the user's calls; the records (and the chain) stay, with the hash of what was erased.
async fn audit_erase(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: EraseRequest = match admin_request(&state, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    if request.user_id.trim().is_empty() {
        return problem(StatusCode::BAD_REQUEST, "user_id: must not be empty");
    }
    let archive = state.config().archive_dir();
    let erased = state
        .ledger
        .with_audit(move |_, trail| trail.erase_user(&request.user_id, &archive))
        .await;
    match erased {
        Ok(Some(Ok(erased))) => Json(json!(erased)).into_response(),
        Ok(Some(Err(error))) => problem(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "the audit trail is off ([audit] enabled)",
        ),
        Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    }
}

/// `GET /api/v1/admin/tenants/paused`: every paused tenant and why.
async fn paused(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    match state.policy.state().pauses().await {
        Ok(pauses) => Json(json!({"paused": pauses})).into_response(),
        Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    }
}

/// The optional body of a pause: why.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/admin/tenants/{id}/pause`: refuse every call of a tenant until resumed.
async fn pause(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    let request: PauseRequest = if body.is_empty() {
        PauseRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => return problem(StatusCode::BAD_REQUEST, &error.to_string()),
        }
    };
    let reason = request
        .reason
        .unwrap_or_else(|| "paused by an operator".into());
    match pause_tenant(&state, &tenant, &reason).await {
        Ok(newly) => {
            // A key fixes its calls' tenant: a tenant no key is bound to makes no calls, so
            // its pause refuses nothing (a misspelt name, most likely). Paused all the same:
            // a reload may bind a key to it.
            let bound = state.config().keys.binds_tenant(&tenant);
            Json(
                json!({"tenant_id": tenant, "paused": true, "changed": newly,
                        "bound_to_a_key": bound}),
            )
            .into_response()
        }
        Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    }
}

/// Pauses a tenant and records it in the audit trail when it was not paused already.
pub(crate) async fn pause_tenant(
    state: &AppState,
    tenant: &str,
    reason: &str,
) -> Result<bool, burnrate_policy::StateError> {
    let newly = state.policy.state().pause(tenant, reason).await?;
    tracing::warn!(%tenant, %reason, "tenant paused by an operator");
    if newly {
        state.ledger.audit(crate::audit::decision(
            Kind::Pause,
            Some(tenant),
            format!("paused by an operator: {reason}"),
        ));
    }
    Ok(newly)
}

/// Resumes a tenant and records it in the audit trail when it was paused.
pub(crate) async fn resume_tenant(
    state: &AppState,
    tenant: &str,
) -> Result<bool, burnrate_policy::StateError> {
    let changed = state.policy.state().resume(tenant).await?;
    tracing::info!(%tenant, changed, "tenant resumed");
    if changed {
        state.ledger.audit(crate::audit::decision(
            Kind::Resume,
            Some(tenant),
            "resumed by an operator",
        ));
    }
    Ok(changed)
}

/// `POST /api/v1/admin/tenants/{id}/resume`: let a paused tenant's calls through again.
async fn resume(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    match resume_tenant(&state, &tenant).await {
        Ok(changed) => {
            Json(json!({"tenant_id": tenant, "paused": false, "changed": changed})).into_response()
        }
        Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    }
}

/// `POST /api/v1/admin/reload`: read the configuration file again, as SIGHUP does.
async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    match crate::enforce::reload(&state).await {
        Ok(reloaded) => {
            Json(json!({"reloaded": true, "needs_restart": reloaded.needs_restart})).into_response()
        }
        Err(problems) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "the configuration was not reloaded", "problems": problems})),
        )
            .into_response(),
    }
}

/// Checks the admin token; the refusal is a status and a message for [`problem`].
pub(crate) fn authorised(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let config = state.config();
    let Some(expected) = config.admin_token.as_deref() else {
        return Err((
            StatusCode::NOT_FOUND,
            "the admin API is off: set the variable named by server.admin_token_env",
        ));
    };
    if crate::keys::presents(headers, expected) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            "send the admin token as `Authorization: Bearer TOKEN`",
        ))
    }
}

/// Checks the admin token and reads the JSON body, or answers with why not.
fn admin_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    authorised(state, headers).map_err(|(status, message)| Box::new(problem(status, message)))?;
    serde_json::from_slice(body)
        .map_err(|error| Box::new(problem(StatusCode::BAD_REQUEST, &error.to_string())))
}

/// An error answer: `{"error": message}` with `status`.
pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: QueryRequest = match admin_request(&state, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let spec = match request.into_spec() {
        Ok(spec) => spec,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &error),
    };
    let max_age = state.config().max_price_age_days;
    answer(
        state
            .ledger
            .with_store(move |store| {
                let mut result = store.query(&spec)?;
                store.warn_if_stale(&mut result, max_age, Utc::now().date_naive());
                Ok(result)
            })
            .await,
    )
}

async fn report(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err((status, message)) = authorised(&state, &headers) {
        return problem(status, message);
    }
    let report: Report = match name.parse() {
        Ok(report) => report,
        Err(error) => return problem(StatusCode::NOT_FOUND, &error),
    };
    let request: ReportRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let (filters, (since, until)) = match parse_filters(&request.filters)
        .and_then(|filters| Ok((filters, range(&request.since, &request.until)?)))
    {
        Ok(parsed) => parsed,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &error),
    };
    let params = ReportParams {
        since,
        until,
        filters,
        top: request.top,
    };
    let max_age = state.config().max_price_age_days;
    answer(
        state
            .ledger
            .with_store(move |store| {
                let mut result = store.report(report, &params)?;
                store.warn_if_stale(&mut result, max_age, Utc::now().date_naive());
                Ok(result)
            })
            .await,
    )
}

fn answer(
    result: Result<
        Result<burnrate_store::QueryResult, burnrate_store::StoreError>,
        burnrate_store::StoreError,
    >,
) -> Response {
    match result.and_then(|inner| inner) {
        Ok(result) => Json(result.wire()).into_response(),
        // A query or report the store finds incoherent (a range that runs backwards) is the
        // caller's to mend.
        Err(error @ burnrate_store::StoreError::Spec(_)) => {
            problem(StatusCode::BAD_REQUEST, &error.to_string())
        }
        Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}
