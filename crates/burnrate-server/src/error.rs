//! Errors the gateway answers with, in the dialect of the endpoint called so SDKs raise their
//! usual exceptions. One exhaustive match maps each error to its status and error type.

use axum::Json;
use axum::response::{IntoResponse, Response};
use burnrate_policy::Refusal;
use burnrate_wire::Dialect;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::json;

/// Why the gateway refused or failed a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No key, or a key the configuration does not know.
    #[error(
        "missing or unknown burnrate key: send it as `Authorization: Bearer KEY` or `x-api-key`"
    )]
    Unauthorized,
    /// The key may not be used for this call.
    #[error("{0}")]
    Forbidden(String),
    /// The request body or a header is malformed.
    #[error("{field}: {reason}")]
    BadRequest {
        /// The field or header at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Required attribution headers are missing.
    #[error("missing attribution header(s): {}", .0.join(", "))]
    MissingAttribution(Vec<String>),
    /// The body is not JSON.
    #[error("content-type must be application/json, got `{0}`")]
    UnsupportedMediaType(String),
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {0} bytes (server.max_body_bytes)")]
    PayloadTooLarge(usize),
    /// No configured provider of the route's API serves the model.
    #[error("{}", unknown_model(.model, .other_route))]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// The route to send it to, when a provider of the other API serves it.
        other_route: Option<&'static str>,
    },
    /// The upstream could not be reached or failed mid-call.
    #[error("upstream {provider} failed: {reason}")]
    Upstream {
        /// Provider name.
        provider: String,
        /// What happened.
        reason: String,
    },
    /// The upstream did not answer in time.
    #[error("upstream {provider} did not answer within {seconds} s")]
    UpstreamTimeout {
        /// Provider name.
        provider: String,
        /// The limit.
        seconds: u64,
    },
    /// The call could not be recorded, so it is not served.
    #[error("burnrate cannot record the call: {0}")]
    Unavailable(String),
    /// The policy refused the call.
    #[error("{}: {}", .0.code(), .0.message())]
    Policy(Box<Refusal>),
}

impl ApiError {
    /// HTTP status, OpenAI error type and Anthropic error type.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "authentication_error",
            ),
            ApiError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_error",
            ),
            ApiError::BadRequest { .. } | ApiError::MissingAttribution(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request_error",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "invalid_request_error",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
            ),
            ApiError::UnknownModel { .. } => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found_error",
            ),
            ApiError::Upstream { .. } => (StatusCode::BAD_GATEWAY, "api_error", "api_error"),
            ApiError::UpstreamTimeout { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "api_error", "timeout_error")
            }
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "overloaded_error",
            ),
            ApiError::Policy(refusal) => match **refusal {
                Refusal::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "rate_limit_error",
                ),
                Refusal::Budget { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "insufficient_quota",
                    "rate_limit_error",
                ),
                Refusal::Unpriced { .. }
                | Refusal::TenantPaused { .. }
                | Refusal::RunLimit { .. } => (
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    "permission_error",
                ),
            },
        }
    }

    /// OpenAI's `code` field.
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest { .. } => "invalid_request",
            ApiError::MissingAttribution(_) => "missing_attribution",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "request_too_large",
            ApiError::UnknownModel { .. } => "model_not_found",
            ApiError::Upstream { .. } => "upstream_error",
            ApiError::UpstreamTimeout { .. } => "upstream_timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Policy(refusal) => refusal.code(),
        }
    }

    /// burnrate's details of a policy refusal, added to the error object.
    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = serde_json::Map::new();
        let ApiError::Policy(refusal) = self else {
            return details;
        };
        let mut put = |key: &str, value: serde_json::Value| {
            details.insert(key.to_string(), value);
        };
        match &**refusal {
            Refusal::RateLimited {
                scope,
                unit,
                limit,
                retry_after_s,
            } => {
                put("scope", json!(scope));
                put("unit", json!(unit));
                put("limit", json!(limit));
                put("retry_after_s", json!(retry_after_s));
            }
            Refusal::Budget {
                scope,
                limit_usd,
                spent_usd,
                reserved_usd,
                requested_usd,
                retry_after_s,
                upgrade_message,
                upgrade_url,
            } => {
                put("scope", json!(scope));
                put("limit_usd", json!(limit_usd.to_string()));
                put("spent_usd", json!(spent_usd.to_string()));
                put("reserved_usd", json!(reserved_usd.to_string()));
                put("requested_usd", json!(requested_usd.to_string()));
                put("retry_after_s", json!(retry_after_s));
                put(
                    "upgrade",
                    json!({"message": upgrade_message, "url": upgrade_url}),
                );
            }
            Refusal::Unpriced { model } => put("model", json!(model)),
            Refusal::TenantPaused { tenant, reason } => {
                put("scope", json!(format!("tenant:{tenant}")));
                put("reason", json!(reason));
            }
            Refusal::RunLimit { run, limit } => {
                put("scope", json!(format!("agent_run:{run}")));
                put("limit", json!(limit));
            }
        }
        details
    }

    /// Response headers a refusal carries: `Retry-After` and, for refusals no retry can
    /// fix soon, `x-should-retry: false` (both official SDKs honour it).
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let ApiError::Policy(refusal) = self else {
            return Vec::new();
        };
        let mut headers = Vec::new();
        let retry_after = match &**refusal {
            Refusal::RateLimited {
                limit,
                retry_after_s,
                ..
            } => {
                headers.push((
                    HeaderName::from_static("x-ratelimit-limit"),
                    HeaderValue::from(*limit),
                ));
                headers.push((
                    HeaderName::from_static("x-ratelimit-remaining"),
                    HeaderValue::from(0),
                ));
                if let Some(seconds) = retry_after_s {
                    headers.push((
                        HeaderName::from_static("x-ratelimit-reset"),
                        HeaderValue::from(*seconds),
                    ));
                }
                *retry_after_s
            }
            Refusal::Budget { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            headers.push((http::header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        let retry_soon = matches!(
            &**refusal,
            Refusal::RateLimited {
                retry_after_s: Some(_),
                ..
            }
        );
        if !retry_soon {
            headers.push((
                HeaderName::from_static("x-should-retry"),
                HeaderValue::from_static("false"),
            ));
        }
        headers
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.classify().0
    }

    /// The response in the endpoint's dialect.
    pub fn into_dialect(self, dialect: Dialect) -> Response {
        let (status, openai_type, anthropic_type) = self.classify();
        let message = self.to_string();
        let param = match &self {
            ApiError::BadRequest { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut body = match dialect {
            Dialect::OpenAi => json!({"error": {
                "message": message, "type": openai_type, "param": param, "code": self.code(),
            }}),
            Dialect::Anthropic => json!({"type": "error", "error": {
                "type": anthropic_type, "message": message,
            }}),
        };
        let details = self.details();
        if !details.is_empty()
            && let Some(error) = body
                .get_mut("error")
                .and_then(|error| error.as_object_mut())
        {
            if dialect == Dialect::Anthropic {
                error.insert("code".into(), json!(self.code()));
            }
            error.extend(details);
        }
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().extend(self.headers());
        response
    }
}

/// The message of [`ApiError::UnknownModel`].
fn unknown_model(model: &str, other_route: &Option<&'static str>) -> String {
    match other_route {
        Some(route) => {
            format!("model `{model}` is served by a provider of the other API: send it to {route}")
        }
        None => format!(
            "no provider is configured for model `{model}` (see [[providers]] models in the config)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_speak_each_dialect() {
        let error = ApiError::MissingAttribution(vec!["X-Attribution-User-ID".into()]);
        let openai = error.clone().into_dialect(Dialect::OpenAi);
        assert_eq!(openai.status(), StatusCode::BAD_REQUEST);
        let openai = body(openai).await;
        assert_eq!(openai["error"]["type"], "invalid_request_error");
        assert_eq!(openai["error"]["code"], "missing_attribution");
        assert!(
            openai["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-Attribution-User-ID")
        );
        let anthropic = body(error.into_dialect(Dialect::Anthropic)).await;
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "invalid_request_error");
    }

    #[tokio::test]
    async fn bad_requests_name_the_field() {
        let error = ApiError::BadRequest {
            field: "model".into(),
            reason: "missing".into(),
        };
        let openai = body(error.into_dialect(Dialect::OpenAi)).await;
        assert_eq!(openai["error"]["param"], "model");
        assert_eq!(openai["error"]["message"], "model: missing");
    }
}
