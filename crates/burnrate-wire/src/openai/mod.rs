//! OpenAI's wire protocols: chat completions, Responses and embeddings.
//!
//! Normalisation (DESIGN.md, "The usage event"): OpenAI's input counts (`prompt_tokens`,
//! `input_tokens`) already include cache reads (`cached_tokens`) and cache writes
//! (`cache_write_tokens`), and its output counts include reasoning, which is the event's rule,
//! so the numbers are taken as they are.

pub mod chat;
pub mod embeddings;
pub mod responses;
pub(crate) mod strip;

pub use chat::meter_chat;
pub use embeddings::meter_embeddings;
pub use responses::meter_responses;

use serde::Deserialize;

use crate::WireError;
use crate::tools::Text;

/// OpenAI's error object (`{"error": {"message", "type", "code"}}`), read leniently.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorObject<'a> {
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(borrow, default, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow, default)]
    code: Text<'a>,
}

impl ErrorObject<'_> {
    /// The upstream error as a [`WireError`] with field `(upstream)`.
    pub(crate) fn to_wire(&self) -> WireError {
        upstream_error(
            self.kind.0.as_deref().or(self.code.0.as_deref()),
            self.message.as_str(),
        )
    }
}

/// An error the provider reported in the stream: field `(upstream)`, reason `kind: message`.
pub(crate) fn upstream_error(kind: Option<&str>, message: &str) -> WireError {
    let kind = kind.filter(|k| !k.is_empty()).unwrap_or("error");
    let message = if message.is_empty() {
        "(no message)"
    } else {
        message
    };
    WireError::new("(upstream)", format!("{kind}: {message}"))
}

#[cfg(test)]
mod tests;
