//! The dashboard at `/ui` and the view endpoints under `/api/v1/` that answer the same
//! numbers as JSON.
//!
//! Pages are rendered on the server (maud templates, inline SVG charts): no client-side
//! app, nothing loaded from elsewhere, and every page reads the same with JavaScript's
//! timers paused. The only script is the login page's, which moves a token given in the
//! URL fragment (`/ui#token=...`, never sent to the server, so never in a log) into the
//! login form.
//!
//! Both sit behind the admin token: the API takes it as `Authorization: Bearer`, the pages
//! as an HttpOnly, SameSite=Strict session cookie set by the login form. The cookie holds
//! a keyed hash of the token, not the token, and changes when the token does.

mod findings;
mod pages;
mod scope;
mod svg;
mod views;

use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use burnrate_model::dimension::Field;
use chrono::{Datelike, Days, NaiveDate, Utc};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::Markup;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;
pub use findings::{KeptFindings, spawn_keeper as spawn_findings_keeper};
use pages::Page;
use scope::{PageQuery, Scope};

/// The session cookie's name.
const COOKIE: &str = "burnrate_session";
/// How long a login lasts.
const SESSION_SECONDS: u64 = 12 * 3600;
/// The pages' security headers: nothing loads from elsewhere, no inline script runs, and
/// no other site frames them.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's and the view API's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(overview_page))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/longtail", get(longtail_page))
        .route("/ui/tenants/{id}", get(tenant_page))
        .route("/ui/tenants/{id}/{action}", post(tenant_action))
        .route("/ui/runs", get(runs_page))
        .route("/ui/runs/{id}", get(run_page))
        .route("/ui/anomalies", get(anomalies_page))
        .route("/ui/reports", get(reports_page))
        .route("/ui/reports/{kind}/{day}", get(report_page))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/{name}", get(asset))
        .route("/api/v1/overview", get(overview_api))
        .route("/api/v1/longtail", get(longtail_api))
        .route("/api/v1/tenants/{id}", get(tenant_api))
        .route("/api/v1/runs", get(runs_api))
        .route("/api/v1/runs/{id}", get(run_api))
        .route("/api/v1/anomalies", get(anomalies_api))
        .route("/api/v1/budgets", get(budgets_api))
        .route("/api/v1/prices", get(prices_api))
        .route("/api/v1/scheduled-reports", get(reports_api))
        .route("/api/v1/scheduled-reports/{kind}/{day}", get(report_api))
}

// ---- authentication ----

/// The cookie value for a token: a keyed hash, so the cookie is not the token itself.
fn session_value(token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"burnrate dashboard session v1\0");
    hash.update(token.as_bytes());
    hex::encode(hash.finalize())
}

/// Whether the request carries a valid session cookie.
fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = state.config().admin_token.clone() else {
        return false;
    };
    let expected = session_value(&token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .any(|c| c.name() == COOKIE && crate::keys::same_secret(c.value(), &expected))
}

/// The page, or the login form when the request is not signed in (the address to return
/// to rides along; a token in the fragment survives the redirect).
fn guarded(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> Option<Response> {
    if state.config().admin_token.is_none() {
        return Some(html_response(
            StatusCode::NOT_FOUND,
            pages::problem(
                Page::Overview,
                "The dashboard is off: set the variable named by server.admin_token_env and restart.",
            ),
        ));
    }
    if signed_in(state, headers) {
        return None;
    }
    let next = match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    };
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("next", &next);
    Some(Redirect::to(&format!("/ui/login?{}", pairs.finish())).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_page(Query(query): Query<LoginQuery>) -> Response {
    html_response(
        StatusCode::OK,
        pages::login(None, &safe_next(query.next.as_deref())),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// A return address on this site only (no `//host` or scheme), else the overview.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with("/ui") && !next.starts_with("//") => next.to_owned(),
        _ => "/ui".into(),
    }
}

async fn login(State(state): State<Arc<AppState>>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(token) = state.config().admin_token.clone() else {
        return html_response(
            StatusCode::NOT_FOUND,
            pages::login(
                Some("The dashboard is off: no admin token is configured."),
                &next,
            ),
        );
    };
    if !crate::keys::same_secret(form.token.trim(), &token) {
        tracing::warn!("dashboard sign-in refused: wrong token");
        return html_response(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That token is not the admin token."), &next),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}",
        session_value(&token)
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("burnrate_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The stylesheet, the login script and the icon, compiled into the binary.
async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "style.css" => (include_str!("assets/style.css"), "text/css; charset=utf-8"),
        "login.js" => (
            include_str!("assets/login.js"),
            "text/javascript; charset=utf-8",
        ),
        "icon.svg" => (include_str!("assets/icon.svg"), "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

// ---- shared plumbing ----

/// What went wrong building a view: the caller's mistake (400) or the ledger's (503).
enum ViewError {
    Bad(String),
    NotFound(String),
    Unavailable(String),
}

impl ViewError {
    fn status(&self) -> StatusCode {
        match self {
            ViewError::Bad(_) => StatusCode::BAD_REQUEST,
            ViewError::NotFound(_) => StatusCode::NOT_FOUND,
            ViewError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> &str {
        match self {
            ViewError::Bad(m) | ViewError::NotFound(m) | ViewError::Unavailable(m) => m,
        }
    }

    fn json(&self) -> Response {
        crate::api::problem(self.status(), self.message())
    }

    fn page(&self, page: Page) -> Response {
        html_response(self.status(), pages::problem(page, self.message()))
    }
}

impl From<burnrate_store::StoreError> for ViewError {
    fn from(error: burnrate_store::StoreError) -> ViewError {
        ViewError::Unavailable(error.to_string())
    }
}

impl From<burnrate_policy::StateError> for ViewError {
    fn from(error: burnrate_policy::StateError) -> ViewError {
        ViewError::Unavailable(error.to_string())
    }
}

fn read_scope(
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Scope, ViewError> {
    let Query(query) = query.map_err(|e| ViewError::Bad(e.body_text()))?;
    Scope::from_query(&query, Utc::now()).map_err(ViewError::Bad)
}

type PageQueryResult = Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>;

/// Runs `job` on the ledger thread.
async fn on_store<T: Send + 'static>(
    state: &AppState,
    job: impl FnOnce(&dyn burnrate_store::Store) -> Result<T, burnrate_store::StoreError>
    + Send
    + 'static,
) -> Result<T, ViewError> {
    Ok(state.ledger.with_store(move |store| job(store)).await??)
}

fn api_guard(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    crate::api::authorised(state, headers)
        .err()
        .map(|(status, message)| crate::api::problem(status, message))
}

// ---- views (shared by pages and the API) ----

async fn anomalies_view(
    state: &AppState,
    day: NaiveDate,
) -> Result<views::AnomaliesView, ViewError> {
    let kept = Arc::clone(&state.findings);
    let today = Utc::now().date_naive();
    on_store(state, move |store| {
        Ok(views::AnomaliesView {
            day,
            findings: kept.findings(store, day, today)?,
        })
    })
    .await
}

async fn overview_view(state: &AppState, scope: Scope) -> Result<views::Overview, ViewError> {
    let config = state.config();
    let max_age = config.max_price_age_days;
    let now = Utc::now();
    let tenant = scope.filter(Field::Tenant).map(str::to_owned);
    let policy = config.policy.clone();
    let (mut view, subjects) = on_store(state, move |store| {
        let view = views::overview(store, &scope, max_age, now.date_naive())?;
        let subjects = views::budget_subjects(store, &policy, now, tenant.as_deref())?;
        Ok((view, subjects))
    })
    .await?;
    view.budgets = state
        .policy
        .budget_states(&config.policy, now, &subjects)
        .await?;
    Ok(view)
}

async fn tenant_view(
    state: &AppState,
    scope: Scope,
    tenant: String,
) -> Result<views::TenantView, ViewError> {
    let config = state.config();
    let contracts = config.contracts.clone();
    let now = Utc::now();
    let policy = config.policy.clone();
    let (mut view, subjects) = on_store(state, move |store| {
        let view = views::tenant(store, &scope, &tenant, &contracts)?;
        let subjects = views::budget_subjects(store, &policy, now, Some(&tenant))?;
        Ok((view, subjects))
    })
    .await?;
    view.budgets = state
        .policy
        .budget_states(&config.policy, now, &subjects)
        .await?;
    view.paused = state.policy.state().paused(&view.tenant).await?;
    Ok(view)
}

async fn run_view(
    state: &AppState,
    scope: Scope,
    run: String,
) -> Result<views::RunView, ViewError> {
    let wanted = run.clone();
    on_store(state, move |store| views::run(store, &scope, &wanted))
        .await?
        .ok_or_else(|| {
            ViewError::NotFound(format!(
                "no call of run `{run}` in this range: widen the range (since/until)"
            ))
        })
}

fn anomaly_day(scope: &Scope) -> NaiveDate {
    scope
        .day
        .unwrap_or_else(|| Utc::now().date_naive() - Days::new(1))
}

// ---- pages ----

macro_rules! page_scope {
    ($state:expr, $headers:expr, $path:expr, $raw:expr, $query:expr, $page:expr) => {{
        if let Some(login) = guarded(&$state, &$headers, $path, $raw.as_deref()) {
            return login;
        }
        match read_scope($query) {
            Ok(scope) => scope,
            Err(error) => return error.page($page),
        }
    }};
}

/// A page in the frame with its range and filter bar, or the error page: `render` gives
/// the title and the body of a view that was built.
fn framed<T>(
    page: Page,
    scope: &Scope,
    action: &str,
    view: Result<T, ViewError>,
    render: impl FnOnce(&T) -> (String, Markup),
) -> Response {
    match view {
        Ok(view) => {
            let (title, body) = render(&view);
            html_response(
                StatusCode::OK,
                pages::layout(page, &title, Some(scope), action, body),
            )
        }
        Err(error) => error.page(page),
    }
}

async fn overview_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let scope = page_scope!(state, headers, "/ui", raw, query, Page::Overview);
    let view = overview_view(&state, scope.clone()).await;
    framed(Page::Overview, &scope, "/ui", view, |view| {
        ("Overview".into(), pages::overview(&scope, view))
    })
}

async fn longtail_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let scope = page_scope!(state, headers, "/ui/longtail", raw, query, Page::LongTail);
    let wanted = scope.clone();
    let view = on_store(&state, move |store| views::longtail(store, &wanted)).await;
    framed(Page::LongTail, &scope, "/ui/longtail", view, |tail| {
        (
            format!("Long tail of spend by {}", tail.dimension),
            pages::longtail(&scope, tail),
        )
    })
}

async fn tenant_page(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let path = pages::tenant_path(&tenant);
    let scope = page_scope!(state, headers, &path, raw, query, Page::Tenant);
    // The tenant is the page's subject, not a filter of the bar.
    let scope = scope.without_filter(Field::Tenant);
    let view = tenant_view(&state, scope.clone(), tenant.clone()).await;
    framed(Page::Tenant, &scope, &path, view, |view| {
        (format!("Tenant {tenant}"), pages::tenant(&scope, view))
    })
}

#[derive(Debug, Default, Deserialize)]
struct PauseForm {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /ui/tenants/{id}/pause` (with an optional `reason`) and `.../resume`, from the
/// tenant page's buttons; back to the page after.
async fn tenant_action(
    State(state): State<Arc<AppState>>,
    Path((tenant, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<PauseForm>,
) -> Response {
    if !signed_in(&state, &headers) {
        return (StatusCode::UNAUTHORIZED, "sign in at /ui/login first\n").into_response();
    }
    let done = match action.as_str() {
        "pause" => {
            let reason = form
                .reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "paused from the dashboard".into());
            crate::api::pause_tenant(&state, &tenant, &reason).await
        }
        "resume" => crate::api::resume_tenant(&state, &tenant).await,
        other => {
            return ViewError::NotFound(format!("no tenant action `{other}`: pause or resume"))
                .page(Page::Tenant);
        }
    };
    match done {
        Ok(_) => Redirect::to(&pages::tenant_path(&tenant)).into_response(),
        Err(error) => ViewError::from(error).page(Page::Tenant),
    }
}

async fn runs_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let scope = page_scope!(state, headers, "/ui/runs", raw, query, Page::Runs);
    let wanted = scope.clone();
    let view = on_store(&state, move |store| views::runs(store, &wanted)).await;
    framed(Page::Runs, &scope, "/ui/runs", view, |view| {
        ("Agent runs".into(), pages::runs(&scope, view))
    })
}

async fn run_page(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let path = pages::run_path(&run);
    let scope = page_scope!(state, headers, &path, raw, query, Page::Runs);
    let view = run_view(&state, scope.clone(), run.clone()).await;
    framed(Page::Runs, &scope, &path, view, |view| {
        (format!("Run {run}"), pages::run(&scope, view))
    })
}

async fn anomalies_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    query: PageQueryResult,
) -> Response {
    let scope = page_scope!(state, headers, "/ui/anomalies", raw, query, Page::Anomalies);
    let day = anomaly_day(&scope);
    let view = anomalies_view(&state, day).await;
    framed(Page::Anomalies, &scope, "/ui/anomalies", view, |view| {
        (
            format!("Anomalies on {day}"),
            pages::anomalies(&scope, view),
        )
    })
}

/// The reports the folder holds (newest first), then the latest of each kind that can be
/// built from the ledger.
fn report_entries(folder: Option<&std::path::Path>, today: NaiveDate) -> Vec<pages::ReportEntry> {
    let mut entries = Vec::new();
    if let Some(Ok(dir)) = folder.map(std::fs::read_dir) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Some((kind, day)) = stem.split_once('-') else {
                continue;
            };
            if let (true, Ok(day)) = (is_report_kind(kind), day.parse::<NaiveDate>()) {
                entries.push(pages::ReportEntry {
                    kind: kind.to_owned(),
                    day,
                    generated: true,
                });
            }
        }
    }
    entries.sort_by(|a, b| b.day.cmp(&a.day).then(a.kind.cmp(&b.kind)));
    let yesterday = today - Days::new(1);
    let last_sunday = yesterday - Days::new(u64::from(yesterday.weekday().num_days_from_sunday()));
    let last_of_month = today - Days::new(u64::from(today.day()));
    for (kind, day) in [
        ("daily", yesterday),
        ("weekly", last_sunday),
        ("monthly", last_of_month),
    ] {
        if !entries.iter().any(|e| e.kind == kind && e.day == day) {
            entries.push(pages::ReportEntry {
                kind: kind.to_owned(),
                day,
                generated: false,
            });
        }
    }
    entries
}

fn is_report_kind(kind: &str) -> bool {
    matches!(kind, "daily" | "weekly" | "monthly")
}

async fn reports_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(login) = guarded(&state, &headers, "/ui/reports", raw.as_deref()) {
        return login;
    }
    let config = state.config();
    let folder = config.reports.folder.clone();
    let entries = report_entries(folder.as_deref(), Utc::now().date_naive());
    html_response(
        StatusCode::OK,
        pages::layout(
            Page::Reports,
            "Reports",
            None,
            "/ui/reports",
            pages::reports(&entries, folder.as_deref()),
        ),
    )
}

/// A report as the scheduler wrote it, or built now from the ledger.
async fn report_document(
    state: &AppState,
    kind: &str,
    day: &str,
) -> Result<serde_json::Value, ViewError> {
    if !is_report_kind(kind) {
        return Err(ViewError::NotFound(format!(
            "no report kind `{kind}`: daily, weekly or monthly"
        )));
    }
    let day: NaiveDate = day
        .parse()
        .map_err(|_| ViewError::Bad(format!("day: `{day}` is not a date like 2026-11-23")))?;
    let config = state.config();
    if let Some(folder) = &config.reports.folder {
        let path = folder.join(format!("{kind}-{day}.json"));
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            return serde_json::from_str(&text)
                .map_err(|e| ViewError::Unavailable(format!("{}: {e}", path.display())));
        }
    }
    let report = crate::reports::build(state, kind, day)
        .await
        .map_err(ViewError::Unavailable)?;
    serde_json::to_value(&report).map_err(|e| ViewError::Unavailable(e.to_string()))
}

async fn report_page(
    State(state): State<Arc<AppState>>,
    Path((kind, day)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/ui/reports/{kind}/{day}");
    if let Some(login) = guarded(&state, &headers, &path, None) {
        return login;
    }
    match report_document(&state, &kind, &day).await {
        Ok(document) => {
            let title = document["title"].as_str().unwrap_or("Report").to_owned();
            html_response(
                StatusCode::OK,
                pages::layout(Page::Reports, &title, None, &path, pages::report(&document)),
            )
        }
        Err(error) => error.page(Page::Reports),
    }
}

// ---- the view API ----

macro_rules! api_scope {
    ($state:expr, $headers:expr, $query:expr) => {{
        if let Some(refused) = api_guard(&$state, &$headers) {
            return refused;
        }
        match read_scope($query) {
            Ok(scope) => scope,
            Err(error) => return error.json(),
        }
    }};
}

fn answer<T: serde::Serialize>(result: Result<T, ViewError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => error.json(),
    }
}

/// `GET /api/v1/overview?range=&since=&until=&tenant=&...&by=`.
async fn overview_api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    answer(overview_view(&state, scope).await)
}

/// `GET /api/v1/longtail?by=feature&...`: the Pareto table.
async fn longtail_api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    answer(on_store(&state, move |store| views::longtail(store, &scope)).await)
}

/// `GET /api/v1/tenants/{id}`: spend by feature, user and model, margin, budgets, pause.
async fn tenant_api(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    answer(tenant_view(&state, scope.without_filter(Field::Tenant), tenant).await)
}

/// `GET /api/v1/runs`: cost-per-run distributions per feature and the costliest runs.
async fn runs_api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    answer(on_store(&state, move |store| views::runs(store, &scope)).await)
}

/// `GET /api/v1/runs/{id}`: a run's calls, sub-agent tree, roles and stop reason.
async fn run_api(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    answer(run_view(&state, scope, run).await)
}

/// `GET /api/v1/anomalies?day=2026-11-23`: the detectors' findings with their evidence.
async fn anomalies_api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    let day = anomaly_day(&scope);
    answer(anomalies_view(&state, day).await)
}

/// `GET /api/v1/budgets?tenant=`: every budget's cap, spend and reservations now, with the
/// paused tenants.
async fn budgets_api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: PageQueryResult,
) -> Response {
    let scope = api_scope!(state, headers, query);
    let config = state.config();
    let now = Utc::now();
    let tenant = scope.filter(Field::Tenant).map(str::to_owned);
    let policy = config.policy.clone();
    let result = async {
        let subjects = on_store(&state, move |store| {
            views::budget_subjects(store, &policy, now, tenant.as_deref())
        })
        .await?;
        let budgets = state
            .policy
            .budget_states(&config.policy, now, &subjects)
            .await?;
        let paused = state.policy.state().pauses().await?;
        Ok::<_, ViewError>(json!({"budgets": budgets, "paused": paused}))
    }
    .await;
    answer(result)
}

/// `GET /api/v1/prices`: the price table's age, and the models in the ledger without a price.
async fn prices_api(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = api_guard(&state, &headers) {
        return refused;
    }
    let max_age = state.config().max_price_age_days;
    let today = Utc::now().date_naive();
    answer(
        on_store(&state, move |store| {
            let as_of = store.prices().as_of;
            let age = as_of.map(|day| (today - day).num_days());
            Ok(json!({
                "as_of": as_of,
                "age_days": age,
                "max_age_days": max_age,
                "stale": age.is_some_and(|age| age > max_age),
                "warning": store.stale_warning(max_age, today),
                "unpriced_models": store.unpriced_models()?,
            }))
        })
        .await,
    )
}

/// `GET /api/v1/scheduled-reports`: the reports written and the latest buildable ones.
async fn reports_api(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = api_guard(&state, &headers) {
        return refused;
    }
    let config = state.config();
    let entries = report_entries(config.reports.folder.as_deref(), Utc::now().date_naive());
    Json(json!({
        "reports": entries.iter().map(|e| json!({"kind": e.kind, "day": e.day, "generated": e.generated})).collect::<Vec<_>>()
    }))
    .into_response()
}

/// `GET /api/v1/scheduled-reports/{kind}/{day}`: one report's document.
async fn report_api(
    State(state): State<Arc<AppState>>,
    Path((kind, day)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = api_guard(&state, &headers) {
        return refused;
    }
    answer(report_document(&state, &kind, &day).await)
}
