//! One pass over a span's attributes: every key the mapping reads lands in a slot, borrowed
//! from the request, and values are converted only when they are used. Keys the mapping does
//! not know cost one failed `match` and a prefix comparison each.

use std::borrow::Cow;

use burnrate_model::dimension::Field;
use burnrate_model::{Usage, UsageEvent};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use serde::Deserialize;

/// The attributes of the conventions, each read from one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    OperationName,
    ProviderName,
    System,
    RequestModel,
    ResponseModel,
    InputTokens,
    PromptTokens,
    OutputTokens,
    CompletionTokens,
    CacheRead,
    CacheReadUnderscore,
    CacheWrite,
    CacheCreation,
    CacheCreationUnderscore,
    ReasoningTokens,
    ConversationId,
    AgentId,
    AgentName,
    ToolName,
    ToolCallArguments,
    ServiceTier,
    RequestServiceTier,
    ErrorType,
    RequestType,
    OiKind,
    OiModel,
    OiProvider,
    OiSystem,
    OiPrompt,
    OiCompletion,
    OiTotal,
    OiCacheRead,
    OiCacheWrite,
    OiReasoning,
    SessionId,
    UserId,
    EndUserId,
    Metadata,
    OiToolName,
}

const SLOTS: usize = Slot::OiToolName as usize + 1;

/// The slot of a convention attribute key.
fn slot(key: &str) -> Option<Slot> {
    Some(match key {
        "gen_ai.operation.name" => Slot::OperationName,
        "gen_ai.provider.name" => Slot::ProviderName,
        "gen_ai.system" => Slot::System,
        "gen_ai.request.model" => Slot::RequestModel,
        "gen_ai.response.model" => Slot::ResponseModel,
        "gen_ai.usage.input_tokens" => Slot::InputTokens,
        "gen_ai.usage.prompt_tokens" => Slot::PromptTokens,
        "gen_ai.usage.output_tokens" => Slot::OutputTokens,
        "gen_ai.usage.completion_tokens" => Slot::CompletionTokens,
        "gen_ai.usage.cache_read.input_tokens" => Slot::CacheRead,
        "gen_ai.usage.cache_read_input_tokens" => Slot::CacheReadUnderscore,
        "gen_ai.usage.cache_write.input_tokens" => Slot::CacheWrite,
        "gen_ai.usage.cache_creation.input_tokens" => Slot::CacheCreation,
        "gen_ai.usage.cache_creation_input_tokens" => Slot::CacheCreationUnderscore,
        "gen_ai.usage.reasoning.output_tokens" => Slot::ReasoningTokens,
        "gen_ai.conversation.id" => Slot::ConversationId,
        "gen_ai.agent.id" => Slot::AgentId,
        "gen_ai.agent.name" => Slot::AgentName,
        "gen_ai.tool.name" => Slot::ToolName,
        "gen_ai.tool.call.arguments" => Slot::ToolCallArguments,
        "openai.response.service_tier" | "gen_ai.openai.response.service_tier" => Slot::ServiceTier,
        "openai.request.service_tier" | "gen_ai.openai.request.service_tier" => {
            Slot::RequestServiceTier
        }
        "error.type" => Slot::ErrorType,
        "llm.request.type" => Slot::RequestType,
        "openinference.span.kind" => Slot::OiKind,
        "llm.model_name" => Slot::OiModel,
        "llm.provider" => Slot::OiProvider,
        "llm.system" => Slot::OiSystem,
        "llm.token_count.prompt" => Slot::OiPrompt,
        "llm.token_count.completion" => Slot::OiCompletion,
        "llm.token_count.total" => Slot::OiTotal,
        "llm.token_count.prompt_details.cache_read" => Slot::OiCacheRead,
        "llm.token_count.prompt_details.cache_write" => Slot::OiCacheWrite,
        "llm.token_count.completion_details.reasoning" => Slot::OiReasoning,
        "session.id" => Slot::SessionId,
        "user.id" => Slot::UserId,
        "enduser.id" => Slot::EndUserId,
        "metadata" => Slot::Metadata,
        "tool.name" => Slot::OiToolName,
        _ => return None,
    })
}

/// The attribution dimensions a span can set, as the attribution headers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    Tenant,
    User,
    Feature,
    Task,
    Route,
    AgentRun,
    ParentRun,
    AgentName,
    Session,
    Deployment,
    PromptVersion,
    Effort,
}

/// Number of [`Dim`]s.
pub(crate) const DIMS: usize = 12;

impl Dim {
    /// Every dimension, in index order.
    pub(crate) const ALL: [Dim; DIMS] = [
        Dim::Tenant,
        Dim::User,
        Dim::Feature,
        Dim::Task,
        Dim::Route,
        Dim::AgentRun,
        Dim::ParentRun,
        Dim::AgentName,
        Dim::Session,
        Dim::Deployment,
        Dim::PromptVersion,
        Dim::Effort,
    ];

    /// The dimension a key suffix (`tenant_id`) names.
    fn from_name(name: &str) -> Option<Dim> {
        Some(match name {
            "tenant_id" => Dim::Tenant,
            "user_id" => Dim::User,
            "feature" => Dim::Feature,
            "task_id" => Dim::Task,
            "route" => Dim::Route,
            "agent_run_id" => Dim::AgentRun,
            "parent_run_id" => Dim::ParentRun,
            "agent_name" => Dim::AgentName,
            "session_id" => Dim::Session,
            "deployment" => Dim::Deployment,
            "prompt_version" => Dim::PromptVersion,
            "effort" => Dim::Effort,
            _ => return None,
        })
    }

    /// The dimension of an event field, when it is an attribution dimension.
    pub(crate) fn from_field(field: Field) -> Option<Dim> {
        Dim::from_name(field.as_str())
    }

    /// The event's field for this dimension.
    pub(crate) fn field(self, event: &mut UsageEvent) -> &mut Option<String> {
        match self {
            Dim::Tenant => &mut event.tenant_id,
            Dim::User => &mut event.user_id,
            Dim::Feature => &mut event.feature,
            Dim::Task => &mut event.task_id,
            Dim::Route => &mut event.route,
            Dim::AgentRun => &mut event.agent_run_id,
            Dim::ParentRun => &mut event.parent_run_id,
            Dim::AgentName => &mut event.agent_name,
            Dim::Session => &mut event.session_id,
            Dim::Deployment => &mut event.deployment,
            Dim::PromptVersion => &mut event.prompt_version,
            Dim::Effort => &mut event.effort,
        }
    }
}

/// The input layers a span can report.
const LAYERS: usize = 3;

/// A tool call an OpenInference span lists among its output messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputToolPart<'a> {
    /// `(message index, tool call index)`.
    pub(crate) call: (u32, u32),
    /// True for `function.name`, false for `function.arguments`.
    pub(crate) is_name: bool,
    /// The attribute's text.
    pub(crate) text: &'a str,
}

/// What one pass over a span's attributes found, borrowed from the request.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    slots: [Option<&'a KeyValue>; SLOTS],
    prefixed: [Option<&'a KeyValue>; DIMS],
    layers: [Option<&'a KeyValue>; LAYERS],
    /// `<prefix>label.<name>` attributes: the name and the attribute.
    pub(crate) labels: Vec<(&'a str, &'a KeyValue)>,
    /// OpenInference `llm.output_messages.N.message.tool_calls.M.tool_call.function.*`.
    pub(crate) output_tools: Vec<OutputToolPart<'a>>,
    /// True when a prefixed attribute or an attribution convention attribute was seen.
    pub(crate) attribution: bool,
}

impl Default for Facts<'_> {
    fn default() -> Self {
        Facts {
            slots: [None; SLOTS],
            prefixed: [None; DIMS],
            layers: [None; LAYERS],
            labels: Vec::new(),
            output_tools: Vec::new(),
            attribution: false,
        }
    }
}

impl<'a> Facts<'a> {
    /// Reads `attributes` into the slots, replacing what a previous span left (the buffers
    /// are reused, so a span costs no allocation unless it has labels or tool-call messages).
    pub(crate) fn scan(&mut self, attributes: &'a [KeyValue], prefixes: &[String]) {
        self.slots = [None; SLOTS];
        self.prefixed = [None; DIMS];
        self.layers = [None; LAYERS];
        self.labels.clear();
        self.output_tools.clear();
        self.attribution = false;
        for attribute in attributes {
            self.read(attribute, prefixes);
        }
    }

    fn read(&mut self, attribute: &'a KeyValue, prefixes: &[String]) {
        let key = attribute.key.as_str();
        if let Some(slot) = slot(key) {
            self.slots[slot as usize] = Some(attribute);
            if matches!(
                slot,
                Slot::ConversationId
                    | Slot::SessionId
                    | Slot::UserId
                    | Slot::EndUserId
                    | Slot::AgentName
                    | Slot::AgentId
                    | Slot::Metadata
            ) {
                self.attribution = true;
            }
            return;
        }
        for prefix in prefixes {
            if let Some(suffix) = key.strip_prefix(prefix.as_str()) {
                self.read_prefixed(suffix, attribute);
                return;
            }
        }
        if let Some(rest) = key.strip_prefix("llm.output_messages.") {
            self.read_output_tool(rest, attribute);
        }
    }

    fn read_prefixed(&mut self, suffix: &'a str, attribute: &'a KeyValue) {
        if let Some(dim) = Dim::from_name(suffix) {
            self.prefixed[dim as usize] = Some(attribute);
        } else if let Some(name) = suffix.strip_prefix("label.") {
            self.labels.push((name, attribute));
        } else {
            let layer = match suffix {
                "prompt_tokens" => 0,
                "tool_tokens" => 1,
                "memory_tokens" => 2,
                _ => return,
            };
            self.layers[layer] = Some(attribute);
            return;
        }
        self.attribution = true;
    }

    /// `N.message.tool_calls.M.tool_call.function.name` (or `.arguments`).
    fn read_output_tool(&mut self, rest: &'a str, attribute: &'a KeyValue) {
        let Some(Value::StringValue(text)) =
            attribute.value.as_ref().and_then(|v| v.value.as_ref())
        else {
            return;
        };
        let Some((message, rest)) = split_index(rest) else {
            return;
        };
        let Some(rest) = rest.strip_prefix("message.tool_calls.") else {
            return;
        };
        let Some((index, field)) = split_index(rest) else {
            return;
        };
        let is_name = match field {
            "tool_call.function.name" => true,
            "tool_call.function.arguments" => false,
            _ => return,
        };
        self.output_tools.push(OutputToolPart {
            call: (message, index),
            is_name,
            text,
        });
    }

    /// The attribute in a slot.
    pub(crate) fn get(&self, slot: Slot) -> Option<&'a KeyValue> {
        self.slots[slot as usize]
    }

    /// The first of `slots` present, in order.
    pub(crate) fn first(&self, slots: &[Slot]) -> Option<&'a KeyValue> {
        slots.iter().find_map(|slot| self.get(*slot))
    }

    /// A slot's value when it is a non-empty string (classification reads only strings).
    pub(crate) fn str(&self, slot: Slot) -> Option<&'a str> {
        match self.get(slot)?.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }

    /// True when any slot in `slots` is present.
    pub(crate) fn any(&self, slots: &[Slot]) -> bool {
        slots.iter().any(|slot| self.get(*slot).is_some())
    }

    /// The `<prefix>prompt_tokens`, `tool_tokens` and `memory_tokens` attributes.
    pub(crate) fn layers(&self) -> [Option<&'a KeyValue>; LAYERS] {
        self.layers
    }
}

/// `"12.rest"` → `(12, "rest")`.
fn split_index(text: &str) -> Option<(u32, &str)> {
    let (number, rest) = text.split_once('.')?;
    Some((number.parse().ok()?, rest))
}

/// An attribute the mapping cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    /// The attribute key or span field.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl Reject {
    /// A rejection of `field`.
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Reject {
        Reject {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A token count: a non-negative integer up to [`Usage::MAX_TOKENS`], given as an int, an integral
/// double (`1144.0`, as JSON round trips make them) or a decimal string (`"1144"`). `None`
/// for an empty value.
pub(crate) fn tokens(attribute: &KeyValue) -> Result<Option<u64>, Reject> {
    let bad = |reason: String| Err(Reject::new(&attribute.key, reason));
    let Some(value) = attribute.value.as_ref().and_then(|v| v.value.as_ref()) else {
        return Ok(None);
    };
    let count = match value {
        Value::IntValue(count) => *count,
        Value::DoubleValue(count) => {
            if !count.is_finite() || count.fract() != 0.0 || count.abs() > 1e18 {
                return bad(format!("{count} is not a whole number of tokens"));
            }
            *count as i64
        }
        Value::StringValue(text) => match text.trim().parse::<i64>() {
            Ok(count) => count,
            Err(_) => return bad(format!("\"{}\" is not a number", preview(text))),
        },
        other => return bad(format!("is {}, expected an integer", type_name(other))),
    };
    if count < 0 {
        return bad(format!("{count} is negative"));
    }
    let count = count.unsigned_abs();
    if count > Usage::MAX_TOKENS {
        return bad(format!(
            "{count} is more than {} tokens: not a plausible count",
            Usage::MAX_TOKENS
        ));
    }
    Ok(Some(count))
}

/// A text value: strings as they are, integers, doubles and booleans written out (a numeric
/// user id is common). `None` for an empty value or an empty string.
pub(crate) fn text(attribute: &KeyValue) -> Result<Option<Cow<'_, str>>, Reject> {
    let Some(value) = attribute.value.as_ref().and_then(|v| v.value.as_ref()) else {
        return Ok(None);
    };
    Ok(match value {
        Value::StringValue(text) if text.trim().is_empty() => None,
        Value::StringValue(text) => Some(Cow::Borrowed(text.as_str())),
        Value::IntValue(number) => Some(Cow::Owned(number.to_string())),
        Value::DoubleValue(number) => Some(Cow::Owned(number.to_string())),
        Value::BoolValue(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        other => {
            return Err(Reject::new(
                &attribute.key,
                format!("is {}, expected a string", type_name(other)),
            ));
        }
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::StringValue(_) => "a string",
        Value::BoolValue(_) => "a boolean",
        Value::IntValue(_) => "an integer",
        Value::DoubleValue(_) => "a double",
        Value::ArrayValue(_) => "an array",
        Value::KvlistValue(_) => "a key-value list",
        Value::BytesValue(_) => "bytes",
        Value::StringValueStrindex(_) => "a string-table index",
    }
}

/// The start of `text`, for messages.
fn preview(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The attribution a span carries: dimensions and labels, with the span's own precedence
/// (prefixed attributes, then `metadata`, then the conventions) already applied.
#[derive(Debug, Default, Clone)]
pub(crate) struct Carrier<'a> {
    /// Values by [`Dim`] index.
    pub(crate) dims: [Option<Cow<'a, str>>; DIMS],
    /// `(name, value)` labels.
    pub(crate) labels: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Carrier<'a> {
    /// The attribution in `facts`. With `strict`, an attribute of a type that cannot be text or
    /// a label name that cannot be queried is an error naming it; without (spans that are not
    /// events themselves, resources), such attributes are skipped.
    pub(crate) fn from_facts(facts: &Facts<'a>, strict: bool) -> Result<Carrier<'a>, Reject> {
        let mut carrier = Carrier::default();
        if !facts.attribution {
            return Ok(carrier);
        }
        let conventions = [
            (Dim::Session, [Slot::ConversationId, Slot::SessionId]),
            (Dim::User, [Slot::UserId, Slot::EndUserId]),
            (Dim::AgentName, [Slot::AgentName, Slot::AgentId]),
        ];
        for (dim, slots) in conventions {
            if let Some(attribute) = facts.first(&slots) {
                carrier.set(dim, keep(text(attribute), strict)?);
            }
        }
        if let Some(metadata) = facts.get(Slot::Metadata) {
            carrier.read_metadata(metadata);
        }
        for dim in Dim::ALL {
            if let Some(attribute) = facts.prefixed[dim as usize] {
                carrier.set(dim, keep(text(attribute), strict)?);
            }
        }
        for (name, attribute) in &facts.labels {
            if !valid_label_name(name) {
                if strict {
                    return Err(Reject::new(
                        &attribute.key,
                        "label names may hold only letters, digits, `_`, `-` and `.`",
                    ));
                }
                continue;
            }
            if let Some(value) = keep(text(attribute), strict)? {
                carrier.labels.push((name, value));
            }
        }
        Ok(carrier)
    }

    /// Sets `dim` when `value` is something (a later, more specific source overrides).
    fn set(&mut self, dim: Dim, value: Option<Cow<'a, str>>) {
        if value.is_some() {
            self.dims[dim as usize] = value;
        }
    }

    /// The value of one dimension.
    pub(crate) fn get(&self, dim: Dim) -> Option<&str> {
        self.dims[dim as usize].as_deref()
    }

    /// OpenInference's `metadata`: a JSON object whose attribution keys (`tenant_id`,
    /// `user_id`, ...) set dimensions. Free-form user data, so anything else is skipped.
    fn read_metadata(&mut self, attribute: &'a KeyValue) {
        let Some(Value::StringValue(json)) =
            attribute.value.as_ref().and_then(|v| v.value.as_ref())
        else {
            return;
        };
        let Ok(metadata) = serde_json::from_str::<Metadata>(json) else {
            return;
        };
        for (dim, value) in metadata.values() {
            if let Some(Scalar(Some(value))) = value {
                self.set(dim, Some(Cow::Owned(value)));
            }
        }
    }

    /// True when the carrier holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.dims.iter().all(Option::is_none)
    }
}

/// A rejection passes in strict mode; otherwise the attribute is skipped.
fn keep<T>(result: Result<Option<T>, Reject>, strict: bool) -> Result<Option<T>, Reject> {
    match result {
        Err(reject) if strict => Err(reject),
        Err(_) => Ok(None),
        ok => ok,
    }
}

/// Label names as dimensions accept them (`label.<name>` in queries).
pub(crate) fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The attribution keys of OpenInference `metadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    tenant_id: Option<Scalar>,
    user_id: Option<Scalar>,
    feature: Option<Scalar>,
    task_id: Option<Scalar>,
    route: Option<Scalar>,
    agent_run_id: Option<Scalar>,
    parent_run_id: Option<Scalar>,
    agent_name: Option<Scalar>,
    session_id: Option<Scalar>,
    deployment: Option<Scalar>,
    prompt_version: Option<Scalar>,
    effort: Option<Scalar>,
}

impl Metadata {
    fn values(self) -> [(Dim, Option<Scalar>); DIMS] {
        [
            (Dim::Tenant, self.tenant_id),
            (Dim::User, self.user_id),
            (Dim::Feature, self.feature),
            (Dim::Task, self.task_id),
            (Dim::Route, self.route),
            (Dim::AgentRun, self.agent_run_id),
            (Dim::ParentRun, self.parent_run_id),
            (Dim::AgentName, self.agent_name),
            (Dim::Session, self.session_id),
            (Dim::Deployment, self.deployment),
            (Dim::PromptVersion, self.prompt_version),
            (Dim::Effort, self.effort),
        ]
    }
}

/// A JSON string, number or boolean as text; anything else (objects, arrays, null) is `None`.
#[derive(Debug, Default)]
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        Ok(Scalar(
            match serde_json::Value::deserialize(deserializer)? {
                serde_json::Value::String(text) if !text.trim().is_empty() => Some(text),
                serde_json::Value::Number(number) => Some(number.to_string()),
                serde_json::Value::Bool(flag) => Some(flag.to_string()),
                _ => None,
            },
        ))
    }
}
