//! One audit record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A model call.
    Call,
    /// A call refused by policy.
    Refusal,
    /// A call degraded by the ladder (cheaper model, cached answer).
    Degradation,
    /// A tenant paused.
    Pause,
    /// A tenant resumed.
    Resume,
    /// The configuration reloaded.
    ConfigReload,
    /// The price table changed.
    PriceChange,
    /// A user's captured content was erased.
    Erasure,
    /// Old records and events moved to the archive.
    Retention,
}

/// One record of the audit trail, as written (fields without a value are left out).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the trail, from 1, without gaps.
    #[serde(default)]
    pub seq: u64,
    /// Hash of the record before (64 zeros for the first).
    #[serde(default)]
    pub prev: String,
    /// When the record was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// What it is about.
    pub kind: Option<Kind>,
    /// When the call or decision started.
    pub start: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// User.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Feature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Agent run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_run_id: Option<String>,
    /// Deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// burnrate's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burnrate_version: Option<String>,
    /// SHA-256 of the configuration in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Prompt version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    /// Provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// Model that served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Input tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Input tokens read from the provider's cache (part of `input_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to the provider's cache (part of `input_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Reasoning tokens (part of `output_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Service tier the call was billed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// `ok`, `error`, `blocked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The decision or error, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The usage event's id, linking the record to the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// SHA-256 of the captured request and response (the stored file), when content was
    /// captured. It stays when the content is erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
}

impl AuditRecord {
    /// The time the record is about: its start, else when it was written.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.start.or(self.at)
    }
}
