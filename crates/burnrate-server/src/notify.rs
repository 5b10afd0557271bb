//! Alert delivery: Slack incoming webhooks (a Block Kit message) and generic JSON webhooks,
//! each POSTed with a per-attempt timeout and retried with exponential backoff.
//!
//! Webhook URLs are secrets: they are resolved once by [`Notifiers::new`] and never logged or
//! put into error messages; failures name the notifier instead.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Delay before the first retry; it doubles with every further retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two attempts, whether from backoff or from `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Slack: a header block's `plain_text` holds at most this many characters.
const SLACK_HEADER_MAX: usize = 150;
/// Slack: a section's text (and the top-level fallback we send) holds at most this many.
const SLACK_TEXT_MAX: usize = 3000;
/// Slack: one entry of a section's `fields` holds at most this many characters.
const SLACK_FIELD_MAX: usize = 2000;
/// Slack: a section holds at most this many `fields`.
const SLACK_FIELDS_PER_SECTION: usize = 10;
/// Slack: a message holds at most this many blocks.
const SLACK_MAX_BLOCKS: usize = 50;
/// How much of an error response's body is quoted in the error.
const ERROR_BODY_MAX: usize = 200;

fn default_timeout_s() -> u64 {
    5
}

fn default_retries() -> u32 {
    3
}

/// One `[[notifiers]]` table of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Unique name, used in logs and delivery results (the URL never is).
    pub name: String,
    /// What the receiving end expects: a Slack Block Kit message or generic JSON.
    pub kind: NotifierKind,
    /// The URL written literally (fine for loopback and tests); exactly one of `url` and
    /// `url_env` must be set.
    pub url: Option<String>,
    /// The name of an environment variable holding the URL (webhook URLs are secrets).
    pub url_env: Option<String>,
    /// A paging notifier: it receives pages only, while every other notifier receives every
    /// alert, pages included.
    #[serde(default)]
    pub page: bool,
    /// Per-attempt timeout in seconds, covering connect, request and response.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// Attempts after the first one, for connection errors, timeouts, 429 and 5xx.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

/// The message format a notifier sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    /// A Slack incoming webhook: a Block Kit message with a `text` fallback.
    Slack,
    /// A generic webhook: the alert as flat JSON.
    Webhook,
}

/// Something worth telling people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Alert {
    /// Machine name: `"budget_cap_crossed"`, `"tenant_paused"`, ...
    pub kind: String,
    /// True to page on-call: the alert then also reaches the paging notifiers.
    pub page: bool,
    /// One-line summary.
    pub title: String,
    /// The body, shown literally (Slack markup in it is escaped).
    pub text: String,
    /// The tenant concerned, if any.
    pub tenant: Option<String>,
    /// Details shown as key/value pairs, in order.
    pub fields: Vec<(String, String)>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// One resolved notifier.
struct Target {
    name: String,
    kind: NotifierKind,
    /// A secret: never logged.
    url: reqwest::Url,
    page: bool,
    timeout: Duration,
    retries: u32,
}

/// The configured notifiers, ready to deliver. Cheap to clone.
#[derive(Clone)]
pub struct Notifiers {
    targets: Arc<[Arc<Target>]>,
    client: reqwest::Client,
}

impl fmt::Debug for Notifiers {
    // By hand: the derived form would print the secret URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.targets.iter().map(|target| &target.name))
            .finish()
    }
}

impl Notifiers {
    /// Validates configs (every problem named with its key, e.g. `notifiers[1].url_env:
    /// environment variable SLACK_URL is not set`) and resolves URLs once, from the process
    /// environment for `url_env`.
    pub fn new(
        configs: &[NotifierConfig],
        client: reqwest::Client,
    ) -> Result<Notifiers, Vec<String>> {
        Notifiers::with_env(configs, client, |name| std::env::var(name).ok())
    }

    /// [`Notifiers::new`] with `env` looking up environment variables (as
    /// [`crate::config::Config::parse`] does), so callers and tests need not touch the
    /// process environment.
    pub fn with_env(
        configs: &[NotifierConfig],
        client: reqwest::Client,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Notifiers, Vec<String>> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let at = format!("notifiers[{index}]");
            if config.name.trim().is_empty() {
                problems.push(format!("{at}.name: must not be empty"));
            } else if !seen.insert(config.name.as_str()) {
                problems.push(format!("{at}.name: `{}` is defined twice", config.name));
            }
            if config.timeout_s == 0 {
                problems.push(format!("{at}.timeout_s: must be above zero"));
            }
            let (key, url) = match (&config.url, &config.url_env) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}.url: set either url or url_env, not both"));
                    continue;
                }
                (None, None) => {
                    problems.push(format!(
                        "{at}.url: one of url or url_env (the name of an environment variable \
                         holding the URL) is required"
                    ));
                    continue;
                }
                (Some(url), None) => ("url", url.clone()),
                (None, Some(name)) => match env(name) {
                    Some(value) if !value.trim().is_empty() => ("url_env", value),
                    _ => {
                        problems.push(format!(
                            "{at}.url_env: environment variable {name} is not set"
                        ));
                        continue;
                    }
                },
            };
            // The URL is a secret: problems describe it without quoting it.
            let url = match reqwest::Url::parse(url.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => url,
                Ok(_) => {
                    problems.push(format!(
                        "{at}.{key}: the URL must start with http:// or https://"
                    ));
                    continue;
                }
                Err(error) => {
                    problems.push(format!("{at}.{key}: not a valid URL ({error})"));
                    continue;
                }
            };
            targets.push(Arc::new(Target {
                name: config.name.clone(),
                kind: config.kind,
                url,
                page: config.page,
                timeout: Duration::from_secs(config.timeout_s),
                retries: config.retries,
            }));
        }
        if problems.is_empty() {
            Ok(Notifiers {
                targets: targets.into(),
                client,
            })
        } else {
            Err(problems)
        }
    }

    /// Delivers in the background (a task per target): pages go to every notifier, other
    /// alerts only to the notifiers with `page = false`. Never blocks the caller; failures
    /// are logged. Outside a Tokio runtime the alert is dropped with a warning.
    pub fn send(&self, alert: Alert) {
        if self.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(alert = %alert.kind, "alert dropped: no async runtime to deliver it");
            return;
        };
        let alert = Arc::new(alert);
        for target in self.targets_for(&alert) {
            let target = Arc::clone(target);
            let client = self.client.clone();
            let alert = Arc::clone(&alert);
            runtime.spawn(async move {
                // Logged inside; nobody is waiting for the result.
                let _ = deliver_to(&client, &target, &alert).await;
            });
        }
    }

    /// Same as [`Notifiers::send`], but awaits delivery to all targets (concurrently) and
    /// returns each target's name and result, in configuration order.
    pub async fn deliver(&self, alert: &Alert) -> Vec<(String, Result<(), String>)> {
        let client = &self.client;
        futures_util::future::join_all(self.targets_for(alert).map(|target| async move {
            (target.name.clone(), deliver_to(client, target, alert).await)
        }))
        .await
    }

    /// True when no notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The notifiers an alert goes to.
    fn targets_for<'a>(&'a self, alert: &Alert) -> impl Iterator<Item = &'a Arc<Target>> + 'a {
        let page = alert.page;
        self.targets
            .iter()
            .filter(move |target| page || !target.page)
    }
}

/// Why one attempt failed.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
}

/// Delivers `alert` to one target, retrying, and logs a final failure.
async fn deliver_to(
    client: &reqwest::Client,
    target: &Target,
    alert: &Alert,
) -> Result<(), String> {
    let body = match target.kind {
        NotifierKind::Slack => slack_body(alert),
        NotifierKind::Webhook => webhook_body(alert),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let failure = match attempt(client, target, &body).await {
            Ok(()) => {
                tracing::debug!(notifier = %target.name, alert = %alert.kind, attempts, "alert delivered");
                return Ok(());
            }
            Err(failure) => failure,
        };
        if !failure.retry || attempts > target.retries {
            let message = if attempts > 1 {
                format!("{} (after {attempts} attempts)", failure.message)
            } else {
                failure.message
            };
            tracing::warn!(
                notifier = %target.name,
                alert = %alert.kind,
                error = %message,
                "alert delivery failed"
            );
            return Err(message);
        }
        let wait = wait_before_retry(backoff, failure.retry_after);
        tracing::debug!(
            notifier = %target.name,
            alert = %alert.kind,
            error = %failure.message,
            wait_ms = wait.as_millis() as u64,
            "alert delivery attempt failed, retrying"
        );
        tokio::time::sleep(wait).await;
        backoff = backoff.saturating_mul(2).min(MAX_WAIT);
    }
}

/// The pause before the next attempt: the backoff, or longer if the receiver's `Retry-After`
/// asks for it, never above [`MAX_WAIT`].
fn wait_before_retry(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    retry_after
        .map_or(backoff, |after| after.max(backoff))
        .min(MAX_WAIT)
}

/// One POST with the target's timeout.
async fn attempt(client: &reqwest::Client, target: &Target, body: &Value) -> Result<(), Failure> {
    let response = client
        .post(target.url.clone())
        .timeout(target.timeout)
        .json(body)
        .send()
        .await
        .map_err(|error| transport_failure(error, target.timeout))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let retry = status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    let snippet = error_body(response).await;
    let mut message = format!("HTTP {status}");
    if !snippet.is_empty() {
        message.push_str(": ");
        message.push_str(&snippet);
    }
    Err(Failure {
        message,
        retry,
        retry_after,
    })
}

/// A failure before any response: connection errors and timeouts are retried.
fn transport_failure(error: reqwest::Error, timeout: Duration) -> Failure {
    let retry = !error.is_builder();
    let message = if error.is_timeout() {
        format!("timed out after {} ms", timeout.as_millis())
    } else {
        // reqwest puts the URL into its messages: strip it, then add the causes.
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    };
    Failure {
        message,
        retry,
        retry_after: None,
    }
}

/// The start of an error response's body, on one line; empty when unreadable.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_MAX * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    fit(&text, ERROR_BODY_MAX, false)
}

/// The generic webhook body: `{"kind","page","title","text","tenant","fields":{k:v},"at"}`.
fn webhook_body(alert: &Alert) -> Value {
    let fields: Map<String, Value> = alert
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    json!({
        "kind": alert.kind,
        "page": alert.page,
        "title": alert.title,
        "text": alert.text,
        "tenant": alert.tenant,
        "fields": fields,
        "at": alert.at,
    })
}

/// The Slack body: a Block Kit message (header, text section, field sections, context) and
/// the top-level `text` Slack shows in notifications.
fn slack_body(alert: &Alert) -> Value {
    let prefix = if alert.page { "🚨 " } else { "" };
    let title = if alert.title.trim().is_empty() {
        &alert.kind
    } else {
        &alert.title
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": fit(&format!("{prefix}{title}"), SLACK_HEADER_MAX, false),
            "emoji": true,
        },
    })];
    if !alert.text.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": fit(&alert.text, SLACK_TEXT_MAX, true) },
        }));
    }
    // Room for the header, the text section and the context block.
    let field_sections = SLACK_MAX_BLOCKS - 3;
    for chunk in alert
        .fields
        .chunks(SLACK_FIELDS_PER_SECTION)
        .take(field_sections)
    {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(key, value)| {
                let key = fit(key, 100, true);
                let value = fit(value, SLACK_FIELD_MAX - 8 - key.chars().count(), true);
                json!({ "type": "mrkdwn", "text": format!("*{key}*\n{value}") })
            })
            .collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    let mut context = format!("`{}`", fit(&alert.kind, 100, true));
    if let Some(tenant) = &alert.tenant {
        context.push_str(&format!(" · tenant `{}`", fit(tenant, 200, true)));
    }
    context.push_str(&format!(" · {}", alert.at.format("%Y-%m-%d %H:%M:%S UTC")));
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context }],
    }));
    let mut fallback = format!("{prefix}{title}");
    if !alert.text.trim().is_empty() {
        fallback.push_str(": ");
        fallback.push_str(&alert.text);
    }
    json!({
        "text": fit(&fallback, SLACK_TEXT_MAX, true),
        "blocks": blocks,
    })
}

/// `text` cut to at most `max` characters (an ellipsis marking the cut), escaping Slack's
/// control characters `&`, `<` and `>` first when `escape` (so `<!channel>` in a tenant name
/// cannot ping anyone); an escape is never cut in half.
fn fit(text: &str, max: usize, escape: bool) -> String {
    let piece = |c: char| -> std::borrow::Cow<'static, str> {
        match c {
            '&' if escape => "&amp;".into(),
            '<' if escape => "&lt;".into(),
            '>' if escape => "&gt;".into(),
            c => String::from(c).into(),
        }
    };
    let total: usize = text.chars().map(|c| piece(c).chars().count()).sum();
    if total <= max {
        return text.chars().map(piece).collect();
    }
    let budget = max.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = piece(c);
        let len = piece.chars().count();
        if used + len > budget {
            break;
        }
        out.push_str(&piece);
        used += len;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use chrono::TimeZone;

    use super::*;

    /// What a test receiver answers each request with.
    #[derive(Clone, Copy)]
    enum Answer {
        Status(u16),
        Hang,
    }

    #[derive(Default)]
    struct Seen {
        attempts: AtomicUsize,
        bodies: Mutex<Vec<Value>>,
    }

    struct Receiver {
        url: String,
        seen: Arc<Seen>,
    }

    impl Receiver {
        fn attempts(&self) -> usize {
            self.seen.attempts.load(Ordering::SeqCst)
        }

        fn bodies(&self) -> Vec<Value> {
            self.seen.bodies.lock().unwrap().clone()
        }
    }

    /// A local HTTP receiver answering the n-th request with `script[n]` (the last one
    /// repeating).
    async fn receiver(script: Vec<Answer>) -> Receiver {
        let seen = Arc::new(Seen::default());
        let state = (Arc::clone(&seen), Arc::new(script));
        let app = axum::Router::new()
            .route("/hook", post(handle))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen,
        }
    }

    async fn handle(
        State((seen, script)): State<(Arc<Seen>, Arc<Vec<Answer>>)>,
        Json(body): Json<Value>,
    ) -> (StatusCode, [(&'static str, &'static str); 1]) {
        let n = seen.attempts.fetch_add(1, Ordering::SeqCst);
        seen.bodies.lock().unwrap().push(body);
        match script[n.min(script.len() - 1)] {
            Answer::Status(code) => (StatusCode::from_u16(code).unwrap(), [("retry-after", "0")]),
            Answer::Hang => std::future::pending().await,
        }
    }

    fn config(name: &str, kind: NotifierKind, url: &str) -> NotifierConfig {
        NotifierConfig {
            name: name.into(),
            kind,
            url: Some(url.into()),
            url_env: None,
            page: false,
            timeout_s: 5,
            retries: 3,
        }
    }

    fn notifiers(configs: &[NotifierConfig]) -> Notifiers {
        Notifiers::with_env(configs, reqwest::Client::new(), |_| None).unwrap()
    }

    fn alert(page: bool) -> Alert {
        Alert {
            kind: "budget_cap_crossed".into(),
            page,
            title: "Tenant acme crossed its daily cap".into(),
            text: "Spent $105.20 of $100.00 <today> & counting".into(),
            tenant: Some("acme".into()),
            fields: vec![
                ("cap".into(), "$100.00".into()),
                ("spent".into(), "$105.20".into()),
            ],
            at: Utc.with_ymd_and_hms(2025, 5, 1, 12, 30, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn webhook_receives_the_alert_as_flat_json() {
        let rx = receiver(vec![Answer::Status(200)]).await;
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, &rx.url)]);
        let results = notifiers.deliver(&alert(false)).await;
        assert_eq!(results, vec![("ops".to_string(), Ok(()))]);
        assert_eq!(
            rx.bodies(),
            vec![json!({
                "kind": "budget_cap_crossed",
                "page": false,
                "title": "Tenant acme crossed its daily cap",
                "text": "Spent $105.20 of $100.00 <today> & counting",
                "tenant": "acme",
                "fields": { "cap": "$100.00", "spent": "$105.20" },
                "at": "2025-05-01T12:30:00Z",
            })]
        );
    }

    #[tokio::test]
    async fn slack_receives_block_kit_with_a_text_fallback() {
        let rx = receiver(vec![Answer::Status(200)]).await;
        let notifiers = notifiers(&[config("slack", NotifierKind::Slack, &rx.url)]);
        let mut alert = alert(true);
        alert.fields = (0..12)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        assert_eq!(notifiers.deliver(&alert).await[0].1, Ok(()));
        let body = rx.bodies().remove(0);
        let fallback = body["text"].as_str().unwrap();
        assert!(
            fallback.starts_with("🚨 Tenant acme crossed its daily cap"),
            "{fallback}"
        );
        let blocks = body["blocks"].as_array().unwrap();
        let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["header", "section", "section", "section", "context"]
        );
        assert_eq!(
            blocks[0]["text"],
            json!({ "type": "plain_text", "text": "🚨 Tenant acme crossed its daily cap", "emoji": true })
        );
        assert_eq!(
            blocks[1]["text"],
            json!({ "type": "mrkdwn", "text": "Spent $105.20 of $100.00 &lt;today&gt; &amp; counting" })
        );
        let fields = blocks[2]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 10);
        assert_eq!(fields[0], json!({ "type": "mrkdwn", "text": "*k0*\nv0" }));
        let rest = blocks[3]["fields"].as_array().unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[1]["text"], "*k11*\nv11");
        let context = blocks[4]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains("budget_cap_crossed"), "{context}");
        assert!(context.contains("acme"), "{context}");
        assert!(context.contains("2025-05-01 12:30:00 UTC"), "{context}");
    }

    #[test]
    fn slack_texts_are_truncated_to_slacks_limits() {
        let mut alert = alert(false);
        alert.title = "é".repeat(400);
        alert.text = "<".repeat(5000);
        let body = slack_body(&alert);
        let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), SLACK_HEADER_MAX);
        assert!(header.ends_with('…'));
        let text = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= SLACK_TEXT_MAX);
        assert!(text.ends_with("&lt;…"), "an escape is not cut in half");
        assert!(body["text"].as_str().unwrap().chars().count() <= SLACK_TEXT_MAX);
        assert_eq!(fit("short", 10, false), "short");
        assert_eq!(fit("abcdef", 4, false), "abc…");
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_success() {
        let rx = receiver(vec![
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(200),
        ])
        .await;
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, &rx.url)]);
        let results = notifiers.deliver(&alert(false)).await;
        assert_eq!(results, vec![("ops".to_string(), Ok(()))]);
        assert_eq!(rx.attempts(), 3);
    }

    #[tokio::test]
    async fn too_many_requests_is_retried() {
        let rx = receiver(vec![Answer::Status(429), Answer::Status(200)]).await;
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, &rx.url)]);
        let results = notifiers.deliver(&alert(false)).await;
        assert_eq!(results, vec![("ops".to_string(), Ok(()))]);
        assert_eq!(rx.attempts(), 2);
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_the_cap() {
        let backoff = Duration::from_millis(400);
        assert_eq!(wait_before_retry(backoff, None), backoff);
        assert_eq!(wait_before_retry(backoff, Some(Duration::ZERO)), backoff);
        let asked = Duration::from_secs(7);
        assert_eq!(wait_before_retry(backoff, Some(asked)), asked);
        let too_long = Duration::from_secs(3600);
        assert_eq!(wait_before_retry(backoff, Some(too_long)), MAX_WAIT);
        assert_eq!(wait_before_retry(Duration::from_secs(60), None), MAX_WAIT);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let rx = receiver(vec![Answer::Status(400), Answer::Status(200)]).await;
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, &rx.url)]);
        let results = notifiers.deliver(&alert(false)).await;
        let error = results[0].1.clone().unwrap_err();
        assert!(error.contains("400"), "{error}");
        assert!(!error.contains("127.0.0.1"), "the URL is a secret: {error}");
        assert_eq!(rx.attempts(), 1);
    }

    #[tokio::test]
    async fn retries_run_out() {
        let rx = receiver(vec![Answer::Status(503)]).await;
        let mut config = config("ops", NotifierKind::Webhook, &rx.url);
        config.retries = 1;
        let results = notifiers(&[config]).deliver(&alert(false)).await;
        let error = results[0].1.clone().unwrap_err();
        assert!(error.contains("503"), "{error}");
        assert!(error.contains("after 2 attempts"), "{error}");
        assert_eq!(rx.attempts(), 2);
    }

    #[tokio::test]
    async fn a_silent_receiver_hits_the_timeout() {
        let rx = receiver(vec![Answer::Hang]).await;
        let mut config = config("ops", NotifierKind::Webhook, &rx.url);
        config.retries = 1;
        let mut notifiers = notifiers(&[config]);
        let targets = Arc::get_mut(&mut notifiers.targets).unwrap();
        Arc::get_mut(&mut targets[0]).unwrap().timeout = Duration::from_millis(200);
        let results = notifiers.deliver(&alert(false)).await;
        let error = results[0].1.clone().unwrap_err();
        assert!(error.contains("timed out"), "{error}");
        assert!(error.contains("after 2 attempts"), "{error}");
        assert!(rx.attempts() >= 1);
    }

    #[tokio::test]
    async fn connection_errors_are_retried_without_naming_the_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut config = config("ops", NotifierKind::Webhook, &format!("http://{addr}/hook"));
        config.retries = 1;
        let results = notifiers(&[config]).deliver(&alert(false)).await;
        let error = results[0].1.clone().unwrap_err();
        assert!(error.contains("after 2 attempts"), "{error}");
        assert!(
            !error.contains(&addr.to_string()),
            "the URL is a secret: {error}"
        );
    }

    #[tokio::test]
    async fn pages_reach_every_notifier_and_alerts_only_non_paging_ones() {
        let chat = receiver(vec![Answer::Status(200)]).await;
        let pager = receiver(vec![Answer::Status(200)]).await;
        let mut paging = config("pager", NotifierKind::Webhook, &pager.url);
        paging.page = true;
        let notifiers = notifiers(&[config("chat", NotifierKind::Slack, &chat.url), paging]);

        let results = notifiers.deliver(&alert(false)).await;
        assert_eq!(results, vec![("chat".to_string(), Ok(()))]);
        assert_eq!((chat.attempts(), pager.attempts()), (1, 0));

        let results = notifiers.deliver(&alert(true)).await;
        assert_eq!(
            results,
            vec![("chat".to_string(), Ok(())), ("pager".to_string(), Ok(()))]
        );
        assert_eq!((chat.attempts(), pager.attempts()), (2, 1));
    }

    #[tokio::test]
    async fn send_delivers_in_the_background() {
        let rx = receiver(vec![Answer::Status(200)]).await;
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, &rx.url)]);
        notifiers.send(alert(false));
        for _ in 0..500 {
            if rx.attempts() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(rx.attempts(), 1);
        assert_eq!(rx.bodies()[0]["kind"], "budget_cap_crossed");
    }

    #[test]
    fn send_outside_a_runtime_does_not_panic() {
        let notifiers = notifiers(&[config("ops", NotifierKind::Webhook, "http://127.0.0.1:9/")]);
        notifiers.send(alert(false));
    }

    #[test]
    fn new_names_every_bad_key() {
        let both = NotifierConfig {
            url_env: Some("HOOK".into()),
            ..config("both", NotifierKind::Webhook, "http://127.0.0.1:1/")
        };
        let neither = NotifierConfig {
            url: None,
            ..config("neither", NotifierKind::Webhook, "")
        };
        let unset = NotifierConfig {
            url: None,
            url_env: Some("SLACK_URL".into()),
            ..config("unset", NotifierKind::Slack, "")
        };
        let set = NotifierConfig {
            url: None,
            url_env: Some("HOOK".into()),
            ..config("set", NotifierKind::Slack, "")
        };
        let env = |name: &str| (name == "HOOK").then(|| "https://hooks.example/T0/B0".to_string());
        let problems = Notifiers::with_env(
            &[both, neither, unset, set.clone()],
            reqwest::Client::new(),
            env,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("notifiers[0].url: "),
            "{problems:?}"
        );
        assert!(problems[0].contains("not both"), "{problems:?}");
        assert!(
            problems[1].starts_with("notifiers[1].url: "),
            "{problems:?}"
        );
        assert_eq!(
            problems[2],
            "notifiers[2].url_env: environment variable SLACK_URL is not set"
        );
        let ok = Notifiers::with_env(&[set], reqwest::Client::new(), env).unwrap();
        assert!(!ok.is_empty());
        assert!(
            !format!("{ok:?}").contains("hooks.example"),
            "Debug hides URLs"
        );
    }

    #[test]
    fn new_reads_the_process_environment() {
        let unset = NotifierConfig {
            url: None,
            url_env: Some("BURNRATE_NOTIFY_TEST_NEVER_SET_4F2A".into()),
            ..config("x", NotifierKind::Webhook, "")
        };
        let problems = Notifiers::new(&[unset], reqwest::Client::new()).unwrap_err();
        assert_eq!(
            problems,
            [
                "notifiers[0].url_env: environment variable BURNRATE_NOTIFY_TEST_NEVER_SET_4F2A is not set"
            ]
        );
        assert!(
            Notifiers::new(&[], reqwest::Client::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn new_rejects_bad_urls_names_and_timeouts_without_quoting_the_url() {
        let mut bad_scheme = config("a", NotifierKind::Webhook, "ftp://secret.example/x");
        bad_scheme.timeout_s = 0;
        let duplicate = config("a", NotifierKind::Webhook, "not a url secret");
        let problems =
            Notifiers::with_env(&[bad_scheme, duplicate], reqwest::Client::new(), |_| None)
                .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0], "notifiers[0].timeout_s: must be above zero");
        assert!(
            problems[1].starts_with("notifiers[0].url: "),
            "{problems:?}"
        );
        assert_eq!(problems[2], "notifiers[1].name: `a` is defined twice");
        assert!(
            problems[3].starts_with("notifiers[1].url: "),
            "{problems:?}"
        );
        assert!(
            problems.iter().all(|p| !p.contains("secret")),
            "{problems:?}"
        );
    }

    #[test]
    fn config_parses_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct File {
            notifiers: Vec<NotifierConfig>,
        }
        let file: File = toml::from_str(
            r#"
            [[notifiers]]
            name = "slack"
            kind = "slack"
            url_env = "SLACK_URL"

            [[notifiers]]
            name = "pager"
            kind = "webhook"
            url = "http://127.0.0.1:9000/page"
            page = true
            timeout_s = 2
            retries = 0
            "#,
        )
        .unwrap();
        let [slack, pager] = &file.notifiers[..] else {
            panic!("two notifiers expected");
        };
        assert_eq!(slack.kind, NotifierKind::Slack);
        assert_eq!((slack.page, slack.timeout_s, slack.retries), (false, 5, 3));
        assert_eq!(pager.kind, NotifierKind::Webhook);
        assert_eq!((pager.page, pager.timeout_s, pager.retries), (true, 2, 0));
        let unknown = toml::from_str::<File>(
            "[[notifiers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"http://h/\"\nchannel = \"#ops\"\n",
        );
        assert!(unknown.is_err());
        let bad_kind = toml::from_str::<File>("[[notifiers]]\nname = \"x\"\nkind = \"email\"\n");
        assert!(bad_kind.is_err());
    }
}
