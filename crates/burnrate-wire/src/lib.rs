//! Provider protocols, without I/O: what the gateway must read from a request (model, stream,
//! output cap), how to ask a stream for its usage, how to read usage and tool calls from a
//! response body or an SSE stream, and how to split input into prompt / tool / memory layers.
//!
//! Token counts come out normalised to the usage event's rule (DESIGN.md): `input_tokens`
//! counts all input with cache reads and writes as parts of it, `output_tokens` all output
//! with reasoning as part of it, whatever each provider's own convention is.

pub mod anthropic;
pub mod layers;
pub mod openai;
pub mod otlp;
pub mod request;
pub mod sse;
pub mod stream;
pub mod tools;

use burnrate_model::{ToolCall, Usage};

pub use layers::LayerEstimate;
pub use request::RequestInfo;
pub use stream::StreamMeter;

/// The provider endpoints the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// Anthropic `POST /v1/messages`.
    Messages,
}

impl Api {
    /// The event's `operation` for calls to this endpoint.
    pub fn operation(self) -> &'static str {
        match self {
            Api::ChatCompletions => "chat",
            Api::Responses => "responses",
            Api::Embeddings => "embeddings",
            Api::Messages => "messages",
        }
    }

    /// The error dialect (and wire family) of this endpoint.
    pub fn dialect(self) -> Dialect {
        match self {
            Api::ChatCompletions | Api::Responses | Api::Embeddings => Dialect::OpenAi,
            Api::Messages => Dialect::Anthropic,
        }
    }

    /// The endpoint's path below the provider's base URL (which ends in `/v1` for OpenAI-style
    /// providers and has no `/v1` for Anthropic, as the official SDKs expect).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Api::ChatCompletions => "/chat/completions",
            Api::Responses => "/responses",
            Api::Embeddings => "/embeddings",
            Api::Messages => "/v1/messages",
        }
    }
}

/// The two wire families: OpenAI-compatible and Anthropic-compatible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI's JSON shapes and error body.
    OpenAi,
    /// Anthropic's JSON shapes and error body.
    Anthropic,
}

/// What a response told about its cost: normalised usage and the tool calls it asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metered {
    /// Model the provider reported (`gpt-4.1-2025-04-14`), when it said.
    pub model: Option<String>,
    /// Token counts, normalised to the event's rule.
    pub usage: Usage,
    /// Whether the response carried a usage object at all (a cut-off stream may not).
    pub usage_seen: bool,
    /// Number of tool calls the response asked for.
    pub tool_calls: u32,
    /// The tool calls by name with a hash of their normalised arguments.
    pub tools: Vec<ToolCall>,
    /// Service tier the provider says it used, when it said.
    pub service_tier: Option<String>,
}

/// Why a request or response could not be read: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct WireError {
    /// Dotted path of the bad field (`messages[2].content`), or `(body)` for the whole.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl WireError {
    /// An error about one field.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> WireError {
        WireError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Reads usage and tool calls from a complete (non-streaming) JSON response body.
pub fn meter_json(api: Api, body: &[u8]) -> Result<Metered, WireError> {
    match api {
        Api::ChatCompletions => openai::meter_chat(body),
        Api::Responses => openai::meter_responses(body),
        Api::Embeddings => openai::meter_embeddings(body),
        Api::Messages => anthropic::meter_messages(body),
    }
}
