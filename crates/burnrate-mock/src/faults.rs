//! Errors in each provider's dialect, the auth check and the error-rate roll.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::json::Obj;
use crate::text::Ids;

/// Which provider's wire format a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `{"error": {"message", "type", "param", "code"}}`, `x-request-id`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}, "request_id"}`, `request-id`.
    Anthropic,
}

impl Dialect {
    /// Guesses the dialect of a request on a route both providers share (`/v1/models`, 404s).
    pub(crate) fn guess(headers: &HeaderMap) -> Self {
        let anthropic = headers.contains_key("anthropic-version")
            || (headers.contains_key("x-api-key") && !headers.contains_key(header::AUTHORIZATION));
        if anthropic {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }

    /// The header the provider puts its request id in.
    pub(crate) fn request_id_header(self) -> &'static str {
        match self {
            Self::OpenAi => "x-request-id",
            Self::Anthropic => "request-id",
        }
    }
}

/// Whether the request carries the credential the provider requires: a non-empty
/// `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic). The value is not checked.
pub(crate) fn authorized(dialect: Dialect, headers: &HeaderMap) -> bool {
    match dialect {
        Dialect::OpenAi => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            })
            .is_some_and(|token| !token.trim().is_empty()),
        Dialect::Anthropic => headers.get("x-api-key").is_some_and(|v| !v.is_empty()),
    }
}

/// The 401 a provider answers when the credential is missing.
pub(crate) fn unauthorized(dialect: Dialect, ids: Ids) -> Response {
    let message = match dialect {
        Dialect::OpenAi => {
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        }
        Dialect::Anthropic => "x-api-key header is required",
    };
    error(dialect, StatusCode::UNAUTHORIZED, Some(message), ids)
}

/// An error response with `status` in the dialect, with the provider's usual type, code and
/// message for that status unless `message` is given.
pub(crate) fn error(
    dialect: Dialect,
    status: StatusCode,
    message: Option<&str>,
    ids: Ids,
) -> Response {
    let request_id = ids.request();
    let body = match dialect {
        Dialect::OpenAi => {
            let (kind, code, default_message) = openai_kind(status);
            let inner = Obj::new()
                .s("message", message.unwrap_or(default_message))
                .s("type", kind)
                .null("param")
                .opt_s("code", code);
            Obj::new().o("error", inner).done()
        }
        Dialect::Anthropic => {
            let (kind, default_message) = anthropic_kind(status);
            let inner = Obj::new()
                .s("type", kind)
                .s("message", message.unwrap_or(default_message));
            Obj::new()
                .s("type", "error")
                .o("error", inner)
                .s("request_id", &request_id)
                .done()
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(dialect.request_id_header(), value);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if dialect == Dialect::Anthropic && status.is_server_error() {
        headers.insert("x-should-retry", HeaderValue::from_static("true"));
    }
    response
}

/// The error a provider answers when it is overloaded: OpenAI 500, Anthropic 529.
pub(crate) fn overloaded(dialect: Dialect, ids: Ids) -> Response {
    let status = match dialect {
        Dialect::OpenAi => StatusCode::INTERNAL_SERVER_ERROR,
        Dialect::Anthropic => StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
    };
    error(dialect, status, None, ids)
}

/// A 400 for a malformed request body, naming the field.
pub(crate) fn bad_request(dialect: Dialect, message: &str, ids: Ids) -> Response {
    error(dialect, StatusCode::BAD_REQUEST, Some(message), ids)
}

fn openai_kind(status: StatusCode) -> (&'static str, Option<&'static str>, &'static str) {
    match status.as_u16() {
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported.",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests. Please try again in 1s.",
        ),
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => ("invalid_request_error", None, "Invalid request."),
    }
}

fn anthropic_kind(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        401 => ("authentication_error", "invalid x-api-key"),
        402 => (
            "billing_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit.",
        ),
        504 => ("timeout_error", "Request timed out."),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Invalid request."),
    }
}
