//! Turning a call into its usage event, journaling it and counting it.

use std::time::Instant;

use burnrate_model::prices::ServiceTier;
use burnrate_model::{Layers, Status, UsageEvent};
use burnrate_policy::{Outcome, Ticket};
use burnrate_store::StoreError;
use burnrate_wire::{Api, Metered};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::app::AppState;
use crate::attribution::Attribution;
use crate::error::ApiError;
use crate::keys::KeyBinding;
use crate::metrics::CallLabels;

/// Longest error text kept in an event.
const MAX_ERROR_LEN: usize = 512;

/// What the gateway knows about a call before the upstream answers.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The endpoint called.
    pub api: Api,
    /// When the call arrived.
    pub ts: DateTime<Utc>,
    /// Monotonic arrival time, for durations.
    pub started: Instant,
    /// The key's configuration id.
    pub key_id: String,
    /// Provider name once routed; the dialect's family before.
    pub provider: String,
    /// The model the request asked for.
    pub requested_model: String,
    /// The service tier the request asked for.
    pub request_tier: Option<String>,
    /// Dimensions from the headers and the key.
    pub attribution: Attribution,
    /// Labels the policy adds (`burnrate.degraded`, `burnrate.shadow`).
    pub policy_labels: Vec<(&'static str, String)>,
}

impl CallContext {
    /// The context of an authenticated call that has not been read further.
    pub fn new(api: Api, ts: DateTime<Utc>, started: Instant, key: &KeyBinding) -> CallContext {
        CallContext {
            api,
            ts,
            started,
            key_id: key.id.clone(),
            provider: match api.dialect() {
                burnrate_wire::Dialect::OpenAi => "openai".into(),
                burnrate_wire::Dialect::Anthropic => "anthropic".into(),
            },
            requested_model: String::new(),
            request_tier: None,
            attribution: Attribution::default(),
            policy_labels: Vec::new(),
        }
    }

    /// The event for this call with what the upstream reported.
    pub fn event(
        &self,
        metered: &Metered,
        layers: Option<Layers>,
        status: Status,
        error: Option<String>,
    ) -> UsageEvent {
        let requested = non_empty(&self.requested_model).unwrap_or("unknown");
        let model = metered
            .model
            .as_deref()
            .and_then(non_empty)
            .unwrap_or(requested)
            .to_string();
        let mut event = UsageEvent {
            id: Some(Uuid::now_v7()),
            duration_ms: Some(
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ),
            source: Some("gateway".into()),
            requested_model: (model != requested).then(|| requested.to_string()),
            operation: Some(self.api.operation().into()),
            service_tier: Some(
                ServiceTier::from_event(
                    metered
                        .service_tier
                        .as_deref()
                        .or(self.request_tier.as_deref()),
                )
                .as_str()
                .into(),
            ),
            layers,
            tool_calls: metered.tool_calls,
            tools: metered.tools.clone(),
            status,
            error: error.map(|text| clean_error(&text)),
            ..UsageEvent::new(self.ts, self.provider.clone(), model, metered.usage)
        };
        self.attribution.apply(&mut event);
        for (name, value) in &self.policy_labels {
            event.labels.insert((*name).to_string(), clean_error(value));
        }
        event
    }
}

fn non_empty(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

/// Error text fit for an event: one line, no control characters, bounded.
fn clean_error(text: &str) -> String {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean.truncate(end);
    }
    clean
}

/// A call whose content is kept: the capture settings and the body the client sent.
#[derive(Clone)]
pub struct Captured {
    /// Where and how the content is stored.
    pub capture: crate::audit::Capture,
    /// The request as the client sent it.
    pub request: bytes::Bytes,
}

/// Most response bytes kept for a captured call (a longer stream is cut here).
pub const MAX_CAPTURED_RESPONSE: usize = 16 << 20;

/// Stores a captured call's redacted content under its event's id, before the event is
/// journaled (so its audit record carries the content's hash). A failure is logged: the
/// call itself is still recorded.
pub async fn keep_content(captured: Option<&Captured>, event: &UsageEvent, response: bytes::Bytes) {
    let (Some(captured), Some(id)) = (captured, event.id) else {
        return;
    };
    let captured = captured.clone();
    let day = event.ts.date_naive();
    let stored = tokio::task::spawn_blocking(move || {
        captured
            .capture
            .store(&id.to_string(), day, &captured.request, &response)
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()));
    if let Err(error) = stored {
        tracing::error!(%error, %id, "captured content not stored");
    }
}

/// Journals a refused call (`status = blocked`, the refusal as its error).
pub fn refused(
    state: &AppState,
    context: CallContext,
    error: &ApiError,
) -> Result<Outcome, StoreError> {
    let event = context.event(
        &Metered::default(),
        None,
        Status::Blocked,
        Some(error.to_string()),
    );
    record(state, event)
}

/// Validates, journals and counts an event, and returns what the policy settles. A call is
/// acknowledged only after this succeeds.
pub fn record(state: &AppState, mut event: UsageEvent) -> Result<Outcome, StoreError> {
    if let Err(problem) = event.validate() {
        // Upstream numbers that break the event's rules (a part above its whole, a count past
        // the plausible) are kept as nearly as the rules allow, with the layer split dropped
        // and the problem noted, rather than lost.
        tracing::warn!(%problem, "recording an event that breaks a usage rule");
        event.layers = None;
        event.usage = event.usage.fitted();
        event.error = Some(clean_error(&format!("usage clamped: {problem}")));
    }
    let cost = state.prices.cost(&event);
    let labels = CallLabels::of(&event);
    let usage = event.usage;
    let outcome = Outcome {
        cost,
        tokens: usage.input_tokens.saturating_add(usage.output_tokens),
        tool_calls: u64::from(event.tool_calls),
        tools: event
            .tools
            .iter()
            .filter_map(|tool| {
                let hash = tool.args_hash.as_deref()?;
                Some(format!("{}:{hash}", tool.name))
            })
            .collect(),
        usage_known: true,
    };
    state.ledger.record(event)?;
    state.metrics.call(labels, &usage, cost);
    Ok(outcome)
}

/// Settles a call with the policy: releases its reservation, adds its real cost, feeds its
/// run and the kill switch, and sends any alert. A settlement that fails (Redis gone) is
/// logged: the reservation then stays held until its period ends, which errs on the side
/// of refusing, never of overspending.
pub async fn settle(state: &AppState, ticket: &Ticket, outcome: &Outcome) {
    let config = state.config();
    match state
        .policy
        .settle(&config.policy, ticket, Utc::now(), outcome)
        .await
    {
        Ok(alerts) => state.alert(alerts),
        Err(error) => tracing::error!(%error, "policy settlement failed"),
    }
}
