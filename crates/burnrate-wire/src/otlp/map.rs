//! Span → usage event: which spans are LLM calls, and what a call span says about itself.
//! What its ancestors and siblings add (agent runs, inherited attribution, tool calls) is
//! [`super::tree`]'s.

use std::borrow::Cow;

use burnrate_model::event::deterministic_v7;
use burnrate_model::{Layers, ServiceTier, Status, ToolCall, Usage, UsageEvent};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};

use super::attrs::{Carrier, Dim, Facts, OutputToolPart, Reject, Slot, text, tokens};
use super::tree::{NodeKind, Tree};
use super::{
    ADJUSTED_LABEL, ExportTraceServiceRequest, MISSING_LABEL, Mapped, OtlpMapping, RejectedSpan,
    SOURCE, UNKNOWN,
};
use crate::tools::{MAX_TOOLS, UNNAMED_TOOL, args_hash, clean, count, tool_name};

/// Maps every span of one export request. No state is kept between requests, so structure
/// whose spans arrive in another request is not seen:
///
/// * **Agent run**: an attribute naming one (`<prefix>agent_run_id`, or `agent_run_id` in
///   OpenInference `metadata`) on the span or its nearest ancestor that has one; otherwise the
///   trace id (32 hex digits) is the run of the outermost agent, and an `invoke_agent` (or
///   OpenInference `AGENT`) span nested inside another starts a sub-run
///   `<trace id>-<agent span id>` whose `parent_run_id` is the enclosing run.
/// * **`span_depth`**: the number of agent spans above the call, minus one (0 at the top).
/// * **`agent_name`**: the span's own, else its nearest ancestor's that names one (an agent
///   span's `gen_ai.agent.name`, or `gen_ai.agent.id` when it has no name).
/// * **Tool calls**: an OpenInference span that lists tool calls in its output messages counts
///   those. An `execute_tool` (or `TOOL`) span is counted to the LLM call that asked for it:
///   its parent when that is a call, else the latest call that started before it under the
///   same nearest agent span (the same parent when there is no agent). `tool_calls` is the
///   larger of the two counts, so a call counted both ways is counted once.
/// * **Nested calls**: a call span with a call span inside it in the same request (a framework
///   span around the SDK's) is dropped and counted in [`Mapped::nested_call_spans`]; the inner
///   one, closer to the wire, is kept and inherits the outer one's attribution.
///
/// Spans arrive as they end, children before parents, and batch exporters cut requests by
/// size and time, so an ancestor is often in a later request. What is lost then: inherited
/// dimensions and `agent_name`; sub-agent runs, which fold into the trace's run (the cost per
/// trace stays right), with depth 0; tool spans whose call was in an earlier request
/// ([`Mapped::unattached_tool_spans`]); and the de-duplication of nested calls. Setting the
/// attribution attributes on every span (OpenTelemetry's baggage span processor copies them
/// from the context) makes the mapping independent of how spans are batched.
pub fn map_request(request: &ExportTraceServiceRequest, mapping: &OtlpMapping) -> Mapped {
    let mut mapped = Mapped::default();
    let mut tree = Tree::default();
    let mut facts = Facts::default();
    for resource_spans in &request.resource_spans {
        let resource = tree.add_resource(resource_spans.resource.as_ref(), mapping);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                facts.scan(&span.attributes, &mapping.prefixes);
                map_span(span, &facts, resource, &mut tree, &mut mapped);
            }
        }
    }
    tree.link(&mut mapped);
    mapped
}

/// What a span is, by its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Structure(NodeKind),
}

fn map_span<'a>(
    span: &'a Span,
    facts: &Facts<'a>,
    resource: u32,
    tree: &mut Tree<'a>,
    mapped: &mut Mapped,
) {
    match classify(facts) {
        Kind::Call => match call_event(span, facts) {
            Ok((event, carrier)) => tree.add_call(span, resource, event, carrier),
            Err(reject) => {
                mapped.rejected.push(rejected_span(span, reject));
                tree.add_structure(span, NodeKind::Other, facts);
            }
        },
        Kind::Structure(kind) => {
            mapped.ignored_spans += 1;
            tree.add_structure(span, kind, facts);
        }
    }
}

const USAGE_SLOTS: [Slot; 7] = [
    Slot::InputTokens,
    Slot::PromptTokens,
    Slot::OutputTokens,
    Slot::CompletionTokens,
    Slot::OiPrompt,
    Slot::OiCompletion,
    Slot::OiTotal,
];

/// Which spans are calls (see the module documentation).
fn classify(facts: &Facts<'_>) -> Kind {
    if let Some(operation) = facts.str(Slot::OperationName) {
        return match operation {
            "invoke_agent" => Kind::Structure(NodeKind::Agent),
            "execute_tool" => Kind::Structure(NodeKind::Tool),
            "chat" | "text_completion" | "generate_content" | "embeddings" | "completion"
            | "responses" => Kind::Call,
            "create_agent" | "invoke_workflow" => Kind::Structure(NodeKind::Other),
            _ if facts.any(&USAGE_SLOTS) || facts.get(Slot::ResponseModel).is_some() => Kind::Call,
            _ => Kind::Structure(NodeKind::Other),
        };
    }
    if let Some(kind) = facts.str(Slot::OiKind) {
        return match kind {
            "LLM" | "EMBEDDING" => Kind::Call,
            "AGENT" => Kind::Structure(NodeKind::Agent),
            "TOOL" => Kind::Structure(NodeKind::Tool),
            _ => Kind::Structure(NodeKind::Other),
        };
    }
    let provider = facts.any(&[
        Slot::ProviderName,
        Slot::System,
        Slot::OiProvider,
        Slot::OiSystem,
    ]);
    let model = facts.any(&[Slot::RequestModel, Slot::ResponseModel, Slot::OiModel]);
    if facts.any(&USAGE_SLOTS) || facts.get(Slot::RequestType).is_some() || (provider && model) {
        Kind::Call
    } else {
        Kind::Structure(NodeKind::Other)
    }
}

/// The event a call span describes by itself, and the attribution it passes to spans inside
/// it.
fn call_event<'a>(span: &'a Span, facts: &Facts<'a>) -> Result<(UsageEvent, Carrier<'a>), Reject> {
    let (trace, span_id) = span_ids(span)?;
    let ts = start_time(span)?;
    let mut missing: Vec<&str> = Vec::new();
    let mut adjusted: Vec<&str> = Vec::new();
    let provider = first_text(
        facts,
        &[
            Slot::ProviderName,
            Slot::System,
            Slot::OiProvider,
            Slot::OiSystem,
        ],
    )?
    .map(|text| clean(&text).to_ascii_lowercase());
    let response_model = first_text(facts, &[Slot::ResponseModel, Slot::OiModel])?;
    let request_model = first_text(facts, &[Slot::RequestModel])?;
    let model = response_model
        .as_ref()
        .or(request_model.as_ref())
        .map(|m| clean(m));
    let requested_model = request_model
        .map(|m| clean(&m))
        .filter(|requested| Some(requested) != model.as_ref());
    let operation = operation(facts)?;
    let (usage, usage_missing) = read_usage(facts, &mut adjusted)?;
    if model.is_none() {
        missing.push("model");
    }
    if provider.is_none() {
        missing.push("provider");
    }
    if usage_missing {
        missing.push("usage");
    } else if lacks_cache_detail(facts, operation.as_deref(), &usage) {
        missing.push("cache");
    }
    let layers = read_layers(facts, &usage, &mut adjusted)?;
    let carrier = Carrier::from_facts(facts, true)?;
    let (tool_calls, tools) = output_tools(&facts.output_tools);
    let (status, error) = status(span, facts);
    let mut event = UsageEvent {
        id: Some(deterministic_v7(ts, &id_content(trace, span_id))),
        duration_ms: duration_ms(span),
        source: Some(SOURCE.to_owned()),
        requested_model,
        operation,
        service_tier: service_tier(facts),
        layers,
        tool_calls,
        tools,
        status,
        error,
        ..UsageEvent::new(
            ts,
            provider.unwrap_or_else(|| UNKNOWN.to_owned()),
            model.unwrap_or_else(|| UNKNOWN.to_owned()),
            usage,
        )
    };
    apply_carrier(&mut event, &carrier, true);
    if !missing.is_empty() {
        event
            .labels
            .insert(MISSING_LABEL.to_owned(), missing.join(","));
    }
    if !adjusted.is_empty() {
        event
            .labels
            .insert(ADJUSTED_LABEL.to_owned(), adjusted.join(","));
    }
    Ok((event, carrier))
}

/// Sets the event's dimensions and labels that are still unset from `carrier`; with
/// `with_runs`, `agent_run_id` and `parent_run_id` too (the tree sets those itself for
/// inherited attribution).
pub(crate) fn apply_carrier(event: &mut UsageEvent, carrier: &Carrier<'_>, with_runs: bool) {
    for dim in Dim::ALL {
        if !with_runs && matches!(dim, Dim::AgentRun | Dim::ParentRun) {
            continue;
        }
        if let Some(value) = carrier.get(dim) {
            fill(dim.field(event), value);
        }
    }
    for (name, value) in &carrier.labels {
        if !event.labels.contains_key(*name) {
            event.labels.insert((*name).to_owned(), clean(value));
        }
    }
}

/// Sets `field` to `value` (cleaned) unless it is already set or the value is blank.
pub(crate) fn fill(field: &mut Option<String>, value: &str) {
    if field.is_none() {
        let value = clean(value);
        if !value.trim().is_empty() {
            *field = Some(value);
        }
    }
}

/// The 16-byte trace id and 8-byte span id, as numbers.
fn span_ids(span: &Span) -> Result<(u128, u64), Reject> {
    let trace = id128(&span.trace_id).ok_or_else(|| {
        Reject::new(
            "traceId",
            format!(
                "must be 16 bytes, not all zero; found {} bytes",
                span.trace_id.len()
            ),
        )
    })?;
    let span_id = id64(&span.span_id).ok_or_else(|| {
        Reject::new(
            "spanId",
            format!(
                "must be 8 bytes, not all zero; found {} bytes",
                span.span_id.len()
            ),
        )
    })?;
    Ok((trace, span_id))
}

/// A valid trace id as a number (all zeroes is invalid).
pub(crate) fn id128(bytes: &[u8]) -> Option<u128> {
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    Some(u128::from_be_bytes(bytes)).filter(|id| *id != 0)
}

/// A valid span id as a number (all zeroes is invalid, and means "no parent").
pub(crate) fn id64(bytes: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_be_bytes(bytes)).filter(|id| *id != 0)
}

fn start_time(span: &Span) -> Result<DateTime<Utc>, Reject> {
    match i64::try_from(span.start_time_unix_nano) {
        Ok(0) => Err(Reject::new("startTimeUnixNano", "is missing (0)")),
        Ok(nanos) => Ok(DateTime::from_timestamp_nanos(nanos)),
        Err(_) => Err(Reject::new(
            "startTimeUnixNano",
            format!("{} is after the year 2262", span.start_time_unix_nano),
        )),
    }
}

fn duration_ms(span: &Span) -> Option<u64> {
    let nanos = span
        .end_time_unix_nano
        .checked_sub(span.start_time_unix_nano)?;
    (span.end_time_unix_nano != 0).then_some(nanos / 1_000_000)
}

/// What the event id hashes: the trace and span ids, so that a span exported twice gets the
/// same id (a UUIDv7 whose time is the span's start) and is recorded once.
fn id_content(trace: u128, span: u64) -> [u8; 28] {
    let mut content = [0u8; 28];
    content[..4].copy_from_slice(b"otlp");
    content[4..20].copy_from_slice(&trace.to_be_bytes());
    content[20..].copy_from_slice(&span.to_be_bytes());
    content
}

/// The first of `slots` that is present, as text.
fn first_text<'a>(facts: &Facts<'a>, slots: &[Slot]) -> Result<Option<Cow<'a, str>>, Reject> {
    match facts.first(slots) {
        Some(attribute) => text(attribute),
        None => Ok(None),
    }
}

fn operation(facts: &Facts<'_>) -> Result<Option<String>, Reject> {
    if let Some(operation) = first_text(facts, &[Slot::OperationName, Slot::RequestType])? {
        return Ok(Some(clean(&operation)));
    }
    Ok((facts.str(Slot::OiKind) == Some("EMBEDDING")).then(|| "embeddings".to_owned()))
}

/// The first of `slots` that is present, as a token count.
fn first_tokens(facts: &Facts<'_>, slots: &[Slot]) -> Result<Option<u64>, Reject> {
    match facts.first(slots) {
        Some(attribute) => tokens(attribute),
        None => Ok(None),
    }
}

/// Token counts, with a part larger than its whole corrected (module documentation), and
/// whether the span reported no usage at all.
fn read_usage(facts: &Facts<'_>, adjusted: &mut Vec<&str>) -> Result<(Usage, bool), Reject> {
    let input = first_tokens(
        facts,
        &[Slot::InputTokens, Slot::PromptTokens, Slot::OiPrompt],
    )?;
    let output = first_tokens(
        facts,
        &[
            Slot::OutputTokens,
            Slot::CompletionTokens,
            Slot::OiCompletion,
        ],
    )?;
    let cache_read = first_tokens(
        facts,
        &[
            Slot::CacheRead,
            Slot::CacheReadUnderscore,
            Slot::OiCacheRead,
        ],
    )?
    .unwrap_or(0);
    let cache_write = first_tokens(
        facts,
        &[
            Slot::CacheWrite,
            Slot::CacheCreation,
            Slot::CacheCreationUnderscore,
            Slot::OiCacheWrite,
        ],
    )?
    .unwrap_or(0);
    let reasoning = first_tokens(facts, &[Slot::ReasoningTokens, Slot::OiReasoning])?.unwrap_or(0);
    let missing = input.is_none() && output.is_none();
    let mut usage = Usage {
        input_tokens: input.unwrap_or(0),
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        cache_write_1h_tokens: 0,
        output_tokens: output.unwrap_or(0),
        reasoning_tokens: reasoning,
    };
    let cached = cache_read + cache_write;
    if cached > usage.input_tokens {
        usage.input_tokens += cached;
        adjusted.push("input_excluded_cache");
    }
    if reasoning > usage.output_tokens {
        usage.output_tokens += reasoning;
        adjusted.push("output_excluded_reasoning");
    }
    // Each count is plausible on its own; a whole raised by its parts may not be.
    usage
        .validate()
        .map_err(|error| Reject::new(error.field, error.reason))?;
    Ok((usage, missing))
}

/// True for an inference call with input whose span has no cache attribute at all: its input
/// may include cached tokens that will be priced at the full rate.
fn lacks_cache_detail(facts: &Facts<'_>, operation: Option<&str>, usage: &Usage) -> bool {
    usage.input_tokens > 0
        && operation != Some("embeddings")
        && !facts.any(&[
            Slot::CacheRead,
            Slot::CacheReadUnderscore,
            Slot::CacheWrite,
            Slot::CacheCreation,
            Slot::CacheCreationUnderscore,
            Slot::OiCacheRead,
            Slot::OiCacheWrite,
        ])
}

/// `<prefix>prompt_tokens` / `tool_tokens` / `memory_tokens`, kept when they add up to the
/// input (the event's rule); otherwise dropped with `layers_dropped` in `burnrate.adjusted`.
fn read_layers(
    facts: &Facts<'_>,
    usage: &Usage,
    adjusted: &mut Vec<&str>,
) -> Result<Option<Layers>, Reject> {
    let attributes = facts.layers();
    if attributes.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut values = [0u64; 3];
    for (value, attribute) in values.iter_mut().zip(attributes) {
        if let Some(attribute) = attribute {
            *value = tokens(attribute)?.unwrap_or(0);
        }
    }
    let [prompt, tool, memory] = values;
    if prompt + tool + memory != usage.input_tokens {
        adjusted.push("layers_dropped");
        return Ok(None);
    }
    Ok(Some(Layers {
        prompt,
        tool,
        memory,
        response: usage.output_tokens,
    }))
}

/// The tool calls an OpenInference span lists in its output messages: their count and, for
/// the first [`MAX_TOOLS`], name and arguments hash.
fn output_tools(parts: &[OutputToolPart<'_>]) -> (u32, Vec<ToolCall>) {
    if parts.is_empty() {
        return (0, Vec::new());
    }
    let mut parts = parts.to_vec();
    parts.sort_by_key(|part| part.call);
    let mut tools: Vec<ToolCall> = Vec::new();
    let mut calls = 0usize;
    let mut group = parts.as_slice();
    while let Some(first) = group.first() {
        let end = group
            .iter()
            .position(|p| p.call != first.call)
            .unwrap_or(group.len());
        let (call, rest) = group.split_at(end);
        calls += 1;
        if tools.len() < MAX_TOOLS {
            let name = call
                .iter()
                .find(|p| p.is_name)
                .map_or(UNNAMED_TOOL, |p| p.text);
            let args = call.iter().find(|p| !p.is_name).map(|p| args_hash(p.text));
            tools.push(ToolCall {
                name: tool_name(name),
                args_hash: args,
            });
        }
        group = rest;
    }
    (count(calls), tools)
}

/// `error` with the status message (or `error.type`) when the span's status is ERROR.
fn status(span: &Span, facts: &Facts<'_>) -> (Status, Option<String>) {
    let Some(status) = span
        .status
        .as_ref()
        .filter(|s| s.code == StatusCode::Error as i32)
    else {
        return (Status::Ok, None);
    };
    let message = Some(status.message.as_str())
        .filter(|m| !m.trim().is_empty())
        .map(Cow::Borrowed)
        .or_else(|| {
            facts
                .get(Slot::ErrorType)
                .and_then(|a| text(a).ok().flatten())
        })
        .unwrap_or(Cow::Borrowed("error"));
    (Status::Error, Some(clean(&message)))
}

/// The service tier the provider reported (or the request asked for), normalised as the
/// gateway normalises it.
fn service_tier(facts: &Facts<'_>) -> Option<String> {
    let tier = facts
        .str(Slot::ServiceTier)
        .or_else(|| facts.str(Slot::RequestServiceTier))?;
    Some(ServiceTier::from_event(Some(tier)).as_str().to_owned())
}

fn rejected_span(span: &Span, reject: Reject) -> RejectedSpan {
    RejectedSpan {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        field: reject.field,
        reason: reject.reason,
    }
}

/// Lowercase hex of (at most the first 32 bytes of) an id.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len().min(32) * 2);
    for byte in bytes.iter().take(32) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
