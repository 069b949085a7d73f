//! OpenAI's error shape over the one [`ApiError`]. OpenAI answers invalid parameters with 400
//! (not 422) and quota problems with 429 `insufficient_quota`; the SDK picks its exception class
//! from the status (`BadRequestError`, `AuthenticationError`, `RateLimitError`, ...).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::ApiError;

#[derive(Debug)]
pub(crate) struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

impl From<harken_store::StoreError> for OpenAiError {
    fn from(e: harken_store::StoreError) -> Self {
        OpenAiError(e.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let (status, kind, code) = match &self.0 {
            ApiError::BadRequest(_) | ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "invalid_request_error", Some("invalid_api_key")),
            ApiError::InsufficientCredits(_) => (StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", Some("insufficient_quota")),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "invalid_request_error", None),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "requests", Some("rate_limit_exceeded")),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", None),
            other => (other.http_status(), "server_error", None),
        };
        let message = self.0.public_message();
        // Our messages start with the field they are about ("language: expected ..."): that is `param`.
        let param = match &self.0 {
            ApiError::BadRequest(_) | ApiError::Validation(_) | ApiError::TooLarge(_) => message
                .split_once(": ")
                .map(|(p, _)| p)
                .filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || "_[]".contains(c)))
                .map(str::to_owned),
            _ => None,
        };
        let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
        (status, Json(body)).into_response()
    }
}
