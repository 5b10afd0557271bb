//! OTLP/HTTP trace ingest, without I/O: [`decode`] an export request body (protobuf or
//! OTLP/JSON, optionally gzip), [`map_request`] its spans to usage events, and answer the
//! exporter with [`partial_success`].
//!
//! # Which spans become events
//!
//! A span is an **LLM call** when `gen_ai.operation.name` names an inference (`chat`,
//! `text_completion`, `generate_content`, `embeddings`, or any other value that is not a
//! structure operation while the span carries token counts or a response model), when
//! `openinference.span.kind` is `LLM` or `EMBEDDING`, or, with neither, when it carries token
//! counts, `llm.request.type`, or a provider together with a model. Agent spans
//! (`invoke_agent`, OpenInference `AGENT`), tool spans (`execute_tool`, `TOOL`) and everything
//! else are structure: they never become events, even when they carry token counts (an agent
//! span's counts add up its calls; counting them would count the calls twice). Spans that are
//! not calls are counted in [`Mapped::ignored_spans`] after one look at their attributes.
//!
//! # Precedence, per event field (first present wins)
//!
//! | field | from |
//! |---|---|
//! | `provider` | `gen_ai.provider.name`, `gen_ai.system`, `llm.provider`, `llm.system` (lowercased) |
//! | `model` | `gen_ai.response.model`, `llm.model_name`, `gen_ai.request.model` |
//! | `requested_model` | `gen_ai.request.model` when it differs from `model` (as the gateway does) |
//! | `operation` | `gen_ai.operation.name`, `llm.request.type`; OpenInference `EMBEDDING` → `embeddings` |
//! | `input_tokens` | `gen_ai.usage.input_tokens`, `gen_ai.usage.prompt_tokens`, `llm.token_count.prompt` |
//! | `output_tokens` | `gen_ai.usage.output_tokens`, `gen_ai.usage.completion_tokens`, `llm.token_count.completion` |
//! | `cache_read_tokens` | `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_read_input_tokens`, `llm.token_count.prompt_details.cache_read` |
//! | `cache_write_tokens` | `gen_ai.usage.cache_write.input_tokens`, `gen_ai.usage.cache_creation.input_tokens`, `gen_ai.usage.cache_creation_input_tokens`, `llm.token_count.prompt_details.cache_write` |
//! | `reasoning_tokens` | `gen_ai.usage.reasoning.output_tokens`, `llm.token_count.completion_details.reasoning` |
//! | `service_tier` | `openai.response.service_tier`, `gen_ai.openai.response.service_tier`, `gen_ai.openai.request.service_tier` (normalised as the gateway does) |
//! | dimensions | `<prefix><dimension>`, then keys of OpenInference `metadata` (JSON), then `gen_ai.conversation.id` / `session.id` (session), `user.id` / `enduser.id` (user), `gen_ai.agent.name` / `gen_ai.agent.id` (agent name) |
//! | labels | `<prefix>label.<name>` |
//! | layers | `<prefix>prompt_tokens`, `<prefix>tool_tokens`, `<prefix>memory_tokens`; response = output |
//!
//! A dimension the span itself does not carry is taken from its nearest ancestor in the same
//! request that does, then from the resource's `<prefix>` attributes, then from the resource
//! attributes named in [`OtlpMapping::resource_dimensions`].
//!
//! # Token counts
//!
//! Both conventions count cached input inside the input total and reasoning inside the output
//! total, which is the event's rule, so the counts are taken as they are. A span whose parts
//! exceed their whole (cache reads + writes > input, or reasoning > output) was written by an
//! instrumentor that passed a provider's *exclusive* total through (Anthropic's `input_tokens`
//! leaves out cached input; Gemini's candidate count leaves out thinking): the whole becomes
//! whole + parts and the event gets the label `burnrate.adjusted`
//! (`input_excluded_cache`, `output_excluded_reasoning`). This is right for the known cause,
//! off by at most the reported whole otherwise, and visible; rejecting would lose real spend
//! and raising the whole to the parts' sum would price the uncached input at zero.
//!
//! # Incomplete spans
//!
//! An LLM call without a model or without usage still becomes an event (model and provider
//! `unknown`, zero tokens) with the label `burnrate.missing` listing what was missing:
//! `model`, `provider`, `usage`, and `cache` for inference calls that report input but no
//! cache attribute at all (`opentelemetry-instrumentation-openai-v2` never reports cached
//! tokens, so such events may be priced above their real cost). The coverage report counts
//! these labels.
//!
//! # Agent runs, depth and tool calls
//!
//! See [`map_request`]. Everything is computed per request, without state between requests.

mod attrs;
mod decode;
mod json;
mod map;
mod tree;

use burnrate_model::UsageEvent;
use burnrate_model::dimension::{Dimension, Field};

pub use decode::{decode, is_too_large};
pub use map::map_request;
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::WireError;

/// The event's `source` for events from OTLP.
pub const SOURCE: &str = "otlp";

/// Label listing what an LLM-call span did not say (`model,usage`, ...).
pub const MISSING_LABEL: &str = "burnrate.missing";

/// Label listing how the span's token counts were corrected (`input_excluded_cache`, ...).
pub const ADJUSTED_LABEL: &str = "burnrate.adjusted";

/// Model and provider recorded when a span does not name them.
pub const UNKNOWN: &str = "unknown";

/// Most rejected spans described in a partial-success message.
const MAX_REJECTIONS_LISTED: usize = 10;

/// How an export request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`).
    Protobuf,
    /// OTLP/JSON (`application/json`): protobuf's JSON mapping with hex ids and integer enums.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset` are ignored), or
    /// `None` for a type OTLP/HTTP does not use (the server answers 415).
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

/// What the mapping reads besides the conventions: attribution prefixes and resource
/// attributes to dimensions (`[attribution] otel_prefixes` and its resource table in the
/// config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpMapping {
    /// Span attribute `<prefix><dimension>` sets that dimension (`digitalapplied.tenant_id`),
    /// `<prefix>label.<name>` a label, `<prefix>prompt_tokens` / `tool_tokens` /
    /// `memory_tokens` the layers. Tried in order; the first prefix that matches a key wins.
    pub prefixes: Vec<String>,
    /// Resource attribute → dimension, tried in order; the first one present sets the
    /// dimension when nothing more specific did (`deployment.environment.name` → `deployment`).
    pub resource_dimensions: Vec<(String, Dimension)>,
}

impl Default for OtlpMapping {
    /// No prefixes; `deployment.environment.name`, then the older `deployment.environment`, set
    /// `deployment`, and `service.name` sets the label `service`.
    fn default() -> OtlpMapping {
        OtlpMapping {
            prefixes: Vec::new(),
            resource_dimensions: vec![
                (
                    "deployment.environment.name".into(),
                    Dimension::Field(Field::Deployment),
                ),
                (
                    "deployment.environment".into(),
                    Dimension::Field(Field::Deployment),
                ),
                ("service.name".into(), Dimension::Label("service".into())),
            ],
        }
    }
}

impl OtlpMapping {
    /// Checks the table: prefixes are not empty, and every resource dimension is an
    /// attribution dimension (`tenant_id`, `user_id`, `feature`, `task_id`, `route`,
    /// `agent_run_id`, `parent_run_id`, `agent_name`, `session_id`, `deployment`,
    /// `prompt_version`, `effort`) or a label. Errors name the entry.
    pub fn validate(&self) -> Result<(), WireError> {
        for (index, prefix) in self.prefixes.iter().enumerate() {
            if prefix.is_empty() {
                return Err(WireError::new(
                    format!("otel_prefixes[{index}]"),
                    "must not be empty (it would read every attribute as a dimension)",
                ));
            }
        }
        for (index, (attribute, dimension)) in self.resource_dimensions.iter().enumerate() {
            if attribute.is_empty() {
                return Err(WireError::new(
                    format!("otel_resource[{index}]"),
                    "the resource attribute name must not be empty",
                ));
            }
            let unusable = match dimension {
                Dimension::Field(field) => attrs::Dim::from_field(*field).is_none().then(|| {
                    format!(
                        "`{}` cannot be set from a resource attribute",
                        field.as_str()
                    )
                }),
                Dimension::Label(name) => (!attrs::valid_label_name(name))
                    .then(|| format!("`label.{name}` is not a valid label name")),
            };
            if let Some(reason) = unusable {
                return Err(WireError::new(
                    format!("otel_resource[{index}]"),
                    format!("{reason}; use an attribution dimension or label.<name>"),
                ));
            }
        }
        Ok(())
    }
}

/// One span that looked like an LLM call but could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSpan {
    /// Trace id, lowercase hex (as given when it is not 16 bytes).
    pub trace_id: String,
    /// Span id, lowercase hex (as given when it is not 8 bytes).
    pub span_id: String,
    /// The attribute or span field at fault (`gen_ai.usage.input_tokens`, `spanId`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The outcome of mapping one export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// One event per LLM-call span, valid by [`UsageEvent::validate`], in span order.
    pub events: Vec<UsageEvent>,
    /// LLM-call spans that could not be recorded, with the reason.
    pub rejected: Vec<RejectedSpan>,
    /// Spans that are not LLM calls (agent, tool, HTTP, database, ... spans).
    pub ignored_spans: u64,
    /// LLM-call spans dropped because an LLM-call span inside them, in the same request,
    /// reports the same call (a framework span around an SDK span: counting both would count
    /// the call twice).
    pub nested_call_spans: u64,
    /// `execute_tool` spans whose calling LLM span was not in this request, so no event's
    /// `tool_calls` counts them.
    pub unattached_tool_spans: u64,
}

/// The `partial_success` of the export response: `None` when every LLM-call span was
/// recorded, else the number of rejected spans and a message naming the first few (OTLP
/// exporters log it).
pub fn partial_success(mapped: &Mapped) -> Option<(i64, String)> {
    if mapped.rejected.is_empty() {
        return None;
    }
    let count = i64::try_from(mapped.rejected.len()).unwrap_or(i64::MAX);
    let mut message = format!(
        "{} LLM span{} rejected",
        mapped.rejected.len(),
        if mapped.rejected.len() == 1 { "" } else { "s" }
    );
    for rejected in mapped.rejected.iter().take(MAX_REJECTIONS_LISTED) {
        message.push_str(&format!(
            "; span {}: {}: {}",
            rejected.span_id, rejected.field, rejected.reason
        ));
    }
    if mapped.rejected.len() > MAX_REJECTIONS_LISTED {
        message.push_str(&format!(
            "; and {} more",
            mapped.rejected.len() - MAX_REJECTIONS_LISTED
        ));
    }
    Some((count, message))
}

/// [`partial_success`] as OTLP's response message.
pub fn export_response(mapped: &Mapped) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: partial_success(mapped).map(|(rejected_spans, error_message)| {
            ExportTracePartialSuccess {
                rejected_spans,
                error_message,
            }
        }),
    }
}

/// The body of the `200 OK` answer to an export request, in the request's encoding: an empty
/// `ExportTraceServiceResponse` when everything was recorded, else one with `partial_success`
/// (OTLP/JSON writes the int64 `rejectedSpans` as a string, as protobuf's JSON mapping does).
pub fn encode_response(mapped: &Mapped, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&export_response(mapped)),
        Encoding::Json => {
            let value = match partial_success(mapped) {
                None => serde_json::json!({}),
                Some((rejected, message)) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedSpans": rejected.to_string(),
                        "errorMessage": message,
                    }
                }),
            };
            value.to_string().into_bytes()
        }
    }
}

#[cfg(test)]
mod tests;
