//! Request bodies: gzip, then protobuf or OTLP/JSON, within a size limit.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use prost::Message;

use super::{Encoding, ExportTraceServiceRequest, json};
use crate::WireError;

/// Decodes an OTLP/HTTP trace export body: gunzips it when `gzip` (the request's
/// `Content-Encoding: gzip`), then parses it as `encoding`. A body larger than
/// `max_decoded_bytes` once decompressed is refused without inflating the rest, so a small
/// gzip bomb costs at most that much memory. Errors name the field when the encoding allows
/// (`resourceSpans[0].scopeSpans[0].spans[3].traceId` in JSON, the message path in protobuf)
/// and `(body)` otherwise; they are the client's fault (HTTP 400, or 413 for the size).
pub fn decode(
    body: &[u8],
    encoding: Encoding,
    gzip: bool,
    max_decoded_bytes: usize,
) -> Result<ExportTraceServiceRequest, WireError> {
    let inflated;
    let bytes = if gzip {
        inflated = gunzip(body, max_decoded_bytes)?;
        inflated.as_slice()
    } else {
        if body.len() > max_decoded_bytes {
            return Err(too_large(max_decoded_bytes));
        }
        body
    };
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|error| {
            WireError::new(
                "(body)",
                format!("not an OTLP protobuf ExportTraceServiceRequest: {error}"),
            )
        }),
        Encoding::Json => json::decode(bytes),
    }
}

/// True when a decode error is about the size limit (HTTP 413 rather than 400).
pub fn is_too_large(error: &WireError) -> bool {
    error.field == "(body)" && error.reason.starts_with(TOO_LARGE)
}

const TOO_LARGE: &str = "larger than the limit";

fn too_large(limit: usize) -> WireError {
    WireError::new(
        "(body)",
        format!("{TOO_LARGE} of {limit} bytes once decompressed"),
    )
}

/// Inflates a gzip body (several members are read as one, as `gzip -c a b` writes them).
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    // Compressed OTLP is typically 5-10x smaller; start there and let the Vec grow.
    let mut out = Vec::with_capacity(body.len().saturating_mul(8).min(limit).min(64 << 20));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|error| WireError::new("(body)", format!("not valid gzip: {error}")))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
