//! The usage event: one model call, as the ledger records it (DESIGN.md, "The usage event").

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest text accepted in a dimension, label or error field, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// One model call. Token counts follow the OpenTelemetry GenAI convention: wholes and their parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    /// Idempotency key; a UUIDv7 is assigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Start of the call, stored in UTC.
    pub ts: DateTime<Utc>,
    /// Wall time of the call in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Where the event came from: `gateway`, `otlp`, `api`, `import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Provider that served the call (`openai`, `anthropic`, `gemini`, ...).
    pub provider: String,
    /// Model that served the call, as the provider reported it.
    pub model: String,
    /// Model the caller asked for, when the gateway routed it elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// API operation (`chat`, `responses`, `messages`, `embeddings`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Service tier: `standard`, `batch`, `flex` or `priority` (others price as standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Customer the call is billed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// End user inside the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Product feature that made the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Unit of work the call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// HTTP route of the caller's application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Agent run the call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_run_id: Option<String>,
    /// Agent run that spawned this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// Name of the agent making the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Depth of the agent in the sub-agent tree (0 = top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_depth: Option<u32>,
    /// Conversation or session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Deployment (`production`, `staging`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Version of the prompt template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    /// Reasoning effort requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Token counts.
    pub usage: Usage,
    /// Split of the tokens into prompt, tool, memory and response layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Layers>,
    /// Number of tool calls the response asked for.
    #[serde(default)]
    pub tool_calls: u32,
    /// The tool calls by name with a hash of their normalised arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolCall>,
    /// Whether the call succeeded, failed upstream or was refused by policy.
    #[serde(default)]
    pub status: Status,
    /// Error or refusal reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Business outcome reached, for cost per outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// Token counts of one call: wholes and their parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// All input tokens, cache reads and writes included.
    #[serde(default)]
    pub input_tokens: u64,
    /// Part of the input read from the prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Part of the input written to the prompt cache (all TTLs).
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Part of the cache writes made with a 1-hour TTL.
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
    /// All output tokens, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Part of the output spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// The largest count a token field may hold. A trillion tokens in one call is not
    /// plausible (the largest context windows hold about ten million); the bound keeps
    /// counts, their sums and their costs far inside the stores' 64-bit columns.
    pub const MAX_TOKENS: u64 = 1_000_000_000_000;

    /// Input neither read from nor written to the cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// Cache writes with the default 5-minute TTL.
    pub fn cache_write_5m_tokens(&self) -> u64 {
        self.cache_write_tokens
            .saturating_sub(self.cache_write_1h_tokens)
    }

    /// Output that is not reasoning.
    pub fn visible_output_tokens(&self) -> u64 {
        self.output_tokens.saturating_sub(self.reasoning_tokens)
    }

    /// This usage kept to the event's rules: a whole smaller than its parts is raised to them
    /// (output to reasoning, cache writes to their 1-hour part, input to cache reads +
    /// writes). A provider that reports a part larger than its whole has most likely counted
    /// the whole without it; raising the whole keeps every token the provider reported and
    /// never under-bills, where clamping the part would drop tokens.
    ///
    /// Counts past [`Usage::MAX_TOKENS`] (no real call's) are first cut to it, the cache parts
    /// so that together they fit in the largest input.
    pub fn fitted(mut self) -> Usage {
        let most = Self::MAX_TOKENS;
        self.reasoning_tokens = self.reasoning_tokens.min(most);
        self.output_tokens = self.output_tokens.min(most).max(self.reasoning_tokens);
        self.cache_read_tokens = self.cache_read_tokens.min(most);
        let write_room = most - self.cache_read_tokens;
        self.cache_write_1h_tokens = self.cache_write_1h_tokens.min(write_room);
        self.cache_write_tokens = self
            .cache_write_tokens
            .min(write_room)
            .max(self.cache_write_1h_tokens);
        let cached = self.cache_read_tokens + self.cache_write_tokens;
        self.input_tokens = self.input_tokens.min(most).max(cached);
        self
    }

    /// Checks that no count is above [`Usage::MAX_TOKENS`] and no part larger than its whole.
    pub fn validate(&self) -> Result<(), EventError> {
        for (field, count) in [
            ("usage.input_tokens", self.input_tokens),
            ("usage.cache_read_tokens", self.cache_read_tokens),
            ("usage.cache_write_tokens", self.cache_write_tokens),
            ("usage.cache_write_1h_tokens", self.cache_write_1h_tokens),
            ("usage.output_tokens", self.output_tokens),
            ("usage.reasoning_tokens", self.reasoning_tokens),
        ] {
            if count > Self::MAX_TOKENS {
                return Err(EventError::new(
                    field,
                    format!(
                        "{count} is more than {} tokens: not a plausible count",
                        Self::MAX_TOKENS
                    ),
                ));
            }
        }
        let part_of = |part: &str, value: u64, whole: &str, total: u64| {
            if value > total {
                Err(EventError::new(
                    part,
                    format!("{value} is larger than {whole} ({total}), which includes it"),
                ))
            } else {
                Ok(())
            }
        };
        part_of(
            "usage.cache_read_tokens",
            self.cache_read_tokens,
            "usage.input_tokens",
            self.input_tokens,
        )?;
        part_of(
            "usage.cache_write_tokens",
            self.cache_write_tokens,
            "usage.input_tokens",
            self.input_tokens,
        )?;
        let cached = self
            .cache_read_tokens
            .saturating_add(self.cache_write_tokens);
        part_of(
            "usage.cache_write_tokens",
            cached,
            "usage.input_tokens",
            self.input_tokens,
        )
        .map_err(|_| {
            EventError::new(
                "usage.cache_write_tokens",
                format!(
                    "cache reads ({}) plus cache writes ({}) exceed usage.input_tokens ({}), which includes both",
                    self.cache_read_tokens, self.cache_write_tokens, self.input_tokens
                ),
            )
        })?;
        part_of(
            "usage.cache_write_1h_tokens",
            self.cache_write_1h_tokens,
            "usage.cache_write_tokens",
            self.cache_write_tokens,
        )?;
        part_of(
            "usage.reasoning_tokens",
            self.reasoning_tokens,
            "usage.output_tokens",
            self.output_tokens,
        )
    }
}

/// Input split into what it is made of; `response` equals the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layers {
    /// System prompt, instructions and user input.
    pub prompt: u64,
    /// Tool definitions and tool results.
    pub tool: u64,
    /// Earlier turns and retrieved context.
    pub memory: u64,
    /// The response (= output tokens).
    pub response: u64,
}

/// One tool call the response asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Tool name.
    pub name: String,
    /// Hash of the normalised JSON arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_hash: Option<String>,
}

/// What happened to the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The call succeeded.
    #[default]
    Ok,
    /// The upstream failed.
    Error,
    /// Refused by policy; `error` holds the reason.
    Blocked,
}

impl Status {
    /// The status as written in events and stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Blocked => "blocked",
        }
    }
}

/// A business outcome reached by the call or its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Outcome name, e.g. `ticket_resolved`.
    pub name: String,
    /// Whether it succeeded.
    pub success: bool,
}

/// Why an event is invalid: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct EventError {
    /// Dotted path of the bad field (`usage.cache_read_tokens`), or `(event)` for the whole.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl EventError {
    /// An error about one field.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> EventError {
        EventError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl UsageEvent {
    /// An event with the required fields and nothing else: no id, source, dimensions, labels,
    /// layers or tool calls, status `ok`. Producers set the rest with struct update syntax.
    pub fn new(ts: DateTime<Utc>, provider: String, model: String, usage: Usage) -> UsageEvent {
        UsageEvent {
            id: None,
            ts,
            duration_ms: None,
            source: None,
            provider,
            model,
            requested_model: None,
            operation: None,
            service_tier: None,
            tenant_id: None,
            user_id: None,
            feature: None,
            task_id: None,
            route: None,
            agent_run_id: None,
            parent_run_id: None,
            agent_name: None,
            span_depth: None,
            session_id: None,
            deployment: None,
            prompt_version: None,
            effort: None,
            labels: BTreeMap::new(),
            usage,
            layers: None,
            tool_calls: 0,
            tools: Vec::new(),
            status: Status::Ok,
            error: None,
            outcome: None,
        }
    }

    /// Parses one JSON event and validates it. Errors name the bad field.
    pub fn from_json(text: &str) -> Result<UsageEvent, EventError> {
        let event: UsageEvent = match serde_json::from_str(text) {
            Ok(event) => event,
            // Only failures pay for the path-tracking second parse.
            Err(_) => return Err(describe_json_error(text)),
        };
        event.validate()?;
        Ok(event)
    }

    /// Checks every rule of the contract that the types alone do not.
    pub fn validate(&self) -> Result<(), EventError> {
        require_text("provider", &self.provider)?;
        require_text("model", &self.model)?;
        for (name, value) in self.optional_texts() {
            if let Some(value) = value {
                check_text(name, value)?;
            }
        }
        for (key, value) in &self.labels {
            if key.is_empty() || key.len() > MAX_TEXT_LEN {
                return Err(EventError::new(
                    "labels",
                    format!("label names must be 1 to {MAX_TEXT_LEN} bytes long"),
                ));
            }
            check_text(&format!("labels.{key}"), value)?;
        }
        self.usage.validate()?;
        if let Some(layers) = self.layers {
            let input = layers
                .prompt
                .checked_add(layers.tool)
                .and_then(|sum| sum.checked_add(layers.memory));
            if input != Some(self.usage.input_tokens) {
                return Err(EventError::new(
                    "layers",
                    format!(
                        "prompt + tool + memory ({}) must equal usage.input_tokens ({})",
                        layers.prompt as u128 + layers.tool as u128 + layers.memory as u128,
                        self.usage.input_tokens
                    ),
                ));
            }
            if layers.response != self.usage.output_tokens {
                return Err(EventError::new(
                    "layers.response",
                    format!(
                        "must equal usage.output_tokens ({}), found {}",
                        self.usage.output_tokens, layers.response
                    ),
                ));
            }
        }
        for (index, tool) in self.tools.iter().enumerate() {
            require_text(&format!("tools[{index}].name"), &tool.name)?;
        }
        if let Some(outcome) = &self.outcome {
            require_text("outcome.name", &outcome.name)?;
        }
        Ok(())
    }

    /// Assigns a UUIDv7 id when the event has none. Its time part is the event's `ts` and its
    /// random part a hash of `content`, so importing the same line twice yields the same id.
    pub fn ensure_id(&mut self, content: &[u8]) -> Uuid {
        *self
            .id
            .get_or_insert_with(|| deterministic_v7(self.ts, content))
    }

    /// The optional text dimensions with their field names.
    fn optional_texts(&self) -> [(&'static str, Option<&String>); 17] {
        [
            ("source", self.source.as_ref()),
            ("requested_model", self.requested_model.as_ref()),
            ("operation", self.operation.as_ref()),
            ("service_tier", self.service_tier.as_ref()),
            ("tenant_id", self.tenant_id.as_ref()),
            ("user_id", self.user_id.as_ref()),
            ("feature", self.feature.as_ref()),
            ("task_id", self.task_id.as_ref()),
            ("route", self.route.as_ref()),
            ("agent_run_id", self.agent_run_id.as_ref()),
            ("parent_run_id", self.parent_run_id.as_ref()),
            ("agent_name", self.agent_name.as_ref()),
            ("session_id", self.session_id.as_ref()),
            ("deployment", self.deployment.as_ref()),
            ("prompt_version", self.prompt_version.as_ref()),
            ("effort", self.effort.as_ref()),
            ("error", self.error.as_ref()),
        ]
    }
}

/// A UUIDv7 whose timestamp is `ts` and whose 74 random bits come from a hash of `content`.
pub fn deterministic_v7(ts: DateTime<Utc>, content: &[u8]) -> Uuid {
    let hash = xxhash_rust::xxh3::xxh3_128(content).to_be_bytes();
    let millis = u64::try_from(ts.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn require_text(field: &str, value: &str) -> Result<(), EventError> {
    if value.trim().is_empty() {
        return Err(EventError::new(field, "must not be empty"));
    }
    check_text(field, value)
}

fn check_text(field: &str, value: &str) -> Result<(), EventError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(EventError::new(
            field,
            format!("is {} bytes long; the limit is {MAX_TEXT_LEN}", value.len()),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(EventError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Re-parses a rejected document with path tracking to say which field is wrong.
fn describe_json_error(text: &str) -> EventError {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, UsageEvent>(&mut deserializer) {
        Ok(_) => EventError::new("(event)", "trailing characters after the JSON object"),
        Err(error) => {
            let path = error.path().to_string();
            // A part the parser could not name yet (a malformed key) shows as `?`, an empty
            // key as nothing after the dot: the object they are in is named instead.
            let path = path.strip_suffix(".?").unwrap_or(&path);
            let path = path.strip_suffix('.').unwrap_or(path).to_owned();
            let inner = error.into_inner();
            let reason = strip_position(&inner.to_string());
            let column = inner.column();
            if text.starts_with('\u{feff}') {
                return EventError::new(
                    "(event)",
                    "the line starts with a byte-order mark: save the file as UTF-8 without one",
                );
            }
            if inner.is_eof() {
                // Cut short: no field is at fault.
                return EventError::new(
                    "(event)",
                    format!("the JSON ends before the event does (column {column})"),
                );
            }
            // serde reads a struct from an array too, so an array is caught by its look.
            if text.trim_start().starts_with('[') {
                return EventError::new(
                    "(event)",
                    "expected a JSON object (an event), found an array: one object per \
                     event (a file to import holds one per line)",
                );
            }
            if reason.ends_with("expected struct UsageEvent") {
                return EventError::new(
                    "(event)",
                    "expected a JSON object (an event), found another kind of value",
                );
            }
            let reason = if inner.is_syntax() {
                format!("not valid JSON: {reason} (column {column})")
            } else {
                reason
            };
            if path == "." || path == "?" || path.is_empty() {
                // Missing and unknown fields are reported at the top level; name them.
                let field = quoted_name(&reason).unwrap_or_else(|| "(event)".to_owned());
                EventError::new(field, reason)
            } else {
                EventError::new(path, reason)
            }
        }
    }
}

/// serde_json appends " at line 1 column 57"; the line is the caller's business.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// The field a serde message about a missing or unknown field names: "missing field `ts`"
/// names `ts`. Not a syntax error's quoted token ("expected `:`"), nor an empty name.
fn quoted_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    let name = &rest[..rest.find('`')?];
    (!name.is_empty()).then(|| name.to_owned())
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
