//! Sends the demo's calls to the gateway over HTTP, as the official SDKs would, and tallies
//! what the gateway did with them.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use serde_json::Value;

use super::conversation::{Conversation, Dialect};

/// Who makes a call: the tenant's gateway key and the `X-Attribution-*` headers.
#[derive(Debug, Clone, Default)]
pub struct Who {
    /// The tenant's burnrate key (the gateway binds the tenant to it).
    pub key: String,
    /// `X-Attribution-User-ID`.
    pub user: String,
    /// `X-Attribution-Feature`.
    pub feature: &'static str,
    /// `X-Attribution-Route`.
    pub route: &'static str,
    /// `X-Attribution-Agent-Run-ID`.
    pub run: Option<String>,
    /// `X-Attribution-Parent-Run-ID`.
    pub parent: Option<String>,
    /// `X-Attribution-Agent-Name`.
    pub agent: Option<&'static str>,
    /// `X-Attribution-Session-ID`.
    pub session: Option<String>,
    /// `X-Attribution-Prompt-Version`.
    pub prompt_version: Option<&'static str>,
}

impl Who {
    /// The same caller as a sub-agent `agent` of this run, in its own run.
    pub fn sub_agent(&self, agent: &'static str) -> Who {
        let parent = self.run.clone();
        Who {
            run: parent.as_ref().map(|run| format!("{run}.{agent}")),
            parent,
            agent: Some(agent),
            ..self.clone()
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("x-attribution-user-id", self.user.clone()),
            ("x-attribution-feature", self.feature.to_string()),
            ("x-attribution-route", self.route.to_string()),
            ("x-attribution-deployment", "prod-eu".to_string()),
        ];
        let optional = [
            ("x-attribution-agent-run-id", self.run.clone()),
            ("x-attribution-parent-run-id", self.parent.clone()),
            ("x-attribution-agent-name", self.agent.map(str::to_string)),
            ("x-attribution-session-id", self.session.clone()),
            (
                "x-attribution-prompt-version",
                self.prompt_version.map(str::to_string),
            ),
        ];
        headers.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v))),
        );
        headers
    }
}

/// What the gateway answered.
#[derive(Debug)]
pub enum Answer {
    /// Served by the model asked for (a streamed reply's body is not parsed: `Null`).
    Served(Value),
    /// Served, degraded by the budget ladder (`fallback; from=…; to=…` or `cached`).
    Degraded(String, Value),
    /// Refused: the HTTP status and the error's code (`budget_exceeded`, `run_limit_exceeded`).
    Refused(u16, String),
}

impl Answer {
    /// The reply body, when the call was served.
    pub fn reply(&self) -> Option<&Value> {
        match self {
            Answer::Served(reply) | Answer::Degraded(_, reply) => Some(reply),
            Answer::Refused(..) => None,
        }
    }
}

/// What the gateway did with the demo's calls.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls sent.
    pub calls: AtomicU64,
    /// Served on a cheaper model.
    pub fallbacks: AtomicU64,
    /// Answered from the gateway's cache.
    pub cached: AtomicU64,
    /// Refused for a budget.
    pub over_budget: AtomicU64,
    /// Refused for an agent-run limit (the loop detector).
    pub runs_stopped: AtomicU64,
    /// Outcomes reported through the events API.
    pub outcomes: AtomicU64,
}

/// The HTTP client pointed at the gateway.
#[derive(Debug)]
pub struct Driver {
    http: reqwest::Client,
    base: String,
    /// What happened so far.
    pub tally: Tally,
}

impl Driver {
    /// A driver for the gateway at `base` (`http://127.0.0.1:8790`).
    pub fn new(base: String) -> anyhow::Result<Driver> {
        Ok(Driver {
            http: reqwest::Client::builder()
                .http1_only()
                .build()
                .context("building the HTTP client")?,
            base,
            tally: Tally::default(),
        })
    }

    /// One model call through the gateway. `mock` are `x-mock-*` headers steering the mock
    /// provider (the gateway forwards headers it does not know).
    pub async fn call(
        &self,
        who: &Who,
        conversation: &Conversation,
        model: &str,
        max_tokens: u32,
        stream: bool,
        mock: &[(&'static str, String)],
    ) -> anyhow::Result<Answer> {
        let dialect = conversation.dialect();
        let mut request = self
            .http
            .post(format!("{}{}", self.base, dialect.path()))
            .json(&conversation.body(model, max_tokens, stream));
        request = match dialect {
            Dialect::OpenAi => request.bearer_auth(&who.key),
            Dialect::Anthropic => request
                .header("x-api-key", &who.key)
                .header("anthropic-version", "2023-06-01"),
        };
        for (name, value) in who.headers().into_iter().chain(mock.iter().cloned()) {
            request = request.header(name, value);
        }
        self.tally.calls.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {} through the gateway", dialect.path()))?;
        let status = response.status();
        let degraded = response
            .headers()
            .get("x-burnrate-degraded")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .bytes()
            .await
            .context("reading the gateway's answer")?;
        if status.is_success() {
            let reply = match stream {
                true => Value::Null,
                false => serde_json::from_slice(&bytes).context("the answer is not JSON")?,
            };
            return Ok(match degraded {
                Some(how) => {
                    let counter = match how.as_str() {
                        "cached" => &self.tally.cached,
                        _ => &self.tally.fallbacks,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    Answer::Degraded(how, reply)
                }
                None => Answer::Served(reply),
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body
            .pointer("/error/code")
            .or_else(|| body.pointer("/error/details/code"))
            .or_else(|| body.pointer("/error/type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match code.as_str() {
            "budget_exceeded" => self.tally.over_budget.fetch_add(1, Ordering::Relaxed),
            "run_limit_exceeded" => self.tally.runs_stopped.fetch_add(1, Ordering::Relaxed),
            _ => bail!(
                "the gateway answered {status} to {} for tenant key of {}: {}",
                dialect.path(),
                who.feature,
                String::from_utf8_lossy(&bytes)
            ),
        };
        Ok(Answer::Refused(status.as_u16(), code))
    }

    /// Reports usage events through `POST /api/v1/events` with the tenant's key (what an
    /// application does for work it instruments itself, such as an outcome).
    pub async fn post_events(&self, key: &str, events: &[Value]) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .bearer_auth(key)
            .json(events)
            .send()
            .await
            .context("posting events")?;
        let status = response.status();
        let body: Value = response.json().await.context("reading the events answer")?;
        let accepted = body.get("accepted").and_then(Value::as_u64).unwrap_or(0);
        if !status.is_success() || accepted != events.len() as u64 {
            bail!(
                "the events API took {accepted} of {} events: {body}",
                events.len()
            );
        }
        self.tally.outcomes.fetch_add(accepted, Ordering::Relaxed);
        Ok(())
    }
}
