//! OpenAI embeddings (`POST /v1/embeddings`): usage from a response body.
//!
//! Usage: `usage.prompt_tokens` → input (or `total_tokens` when a compatible server gives only
//! that; embeddings have no output). Embeddings never stream.

use std::borrow::Cow;

use burnrate_model::Usage;
use serde::Deserialize;

use crate::request::parse_json;
use crate::tools::text_field;
use crate::{Metered, WireError};

/// Reads usage from an embeddings body. The vectors are skipped without being built.
pub fn meter_embeddings(body: &[u8]) -> Result<Metered, WireError> {
    let response: EmbeddingsResponse<'_> = parse_json(body, "", |_| None)?;
    let usage = response.usage.map(|usage| {
        Usage {
            input_tokens: usage.prompt_tokens.or(usage.total_tokens).unwrap_or(0),
            ..Usage::default()
        }
        .fitted()
    });
    Ok(Metered {
        model: text_field(response.model.as_deref()),
        usage: usage.unwrap_or_default(),
        usage_seen: usage.is_some(),
        tool_calls: 0,
        tools: Vec::new(),
        service_tier: None,
    })
}

#[derive(Deserialize)]
struct EmbeddingsResponse<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<EmbeddingsUsage>,
}

#[derive(Deserialize)]
struct EmbeddingsUsage {
    prompt_tokens: Option<u64>,
    total_tokens: Option<u64>,
}
