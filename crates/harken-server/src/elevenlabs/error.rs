//! ElevenLabs' error shape over the one [`ApiError`]: `{"detail": {"status", "message"}}` with
//! the HTTP status from [`ApiError::http_status`]. The SDK raises `UnprocessableEntityError` for
//! 422 and `ApiError` (with `status_code` and this body) for the rest.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::ApiError;

#[derive(Debug)]
pub(crate) struct ElevenLabsError(pub ApiError);

impl From<ApiError> for ElevenLabsError {
    fn from(e: ApiError) -> Self {
        ElevenLabsError(e)
    }
}

impl From<harken_store::StoreError> for ElevenLabsError {
    fn from(e: harken_store::StoreError) -> Self {
        ElevenLabsError(e.into())
    }
}

/// The `detail.status` word for an error, as ElevenLabs names its statuses.
pub(crate) fn status_word(e: &ApiError) -> &'static str {
    match e {
        ApiError::BadRequest(_) => "invalid_request",
        ApiError::Unauthorized(_) => "invalid_api_key",
        ApiError::InsufficientCredits(_) => "quota_exceeded",
        ApiError::NotFound(_) => "transcript_not_found",
        ApiError::Validation(_) => "invalid_parameters",
        ApiError::RateLimited(_) => "too_many_concurrent_requests",
        ApiError::TooLarge(_) => "file_too_large",
        ApiError::Draining | ApiError::Unavailable(_) => "service_unavailable",
        ApiError::Failed(_) | ApiError::Internal(_) => "internal_server_error",
    }
}

impl IntoResponse for ElevenLabsError {
    fn into_response(self) -> Response {
        let status = self.0.http_status();
        let body = json!({"detail": {"status": status_word(&self.0), "message": self.0.public_message()}});
        (status, Json(body)).into_response()
    }
}
