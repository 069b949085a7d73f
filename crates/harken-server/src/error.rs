//! The one place errors become answers.
//!
//! Layers: the store returns `StoreError`, `harken-audio` `FetchError`/`DecodeError`, the engine
//! `EngineError`; handlers turn what a client can act on into an [`ApiError`] with a message that
//! names the field, what was expected and what was received. Anything else is `Internal`: logged
//! once here with its cause, answered as a plain 500.

use axum::response::{IntoResponse, Response};
use axum::Json;
use harken_types::{Code, Envelope};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InsufficientCredits(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    RateLimited(String),
    /// The request body is larger than a limit allows.
    #[error("{0}")]
    TooLarge(String),
    /// The server cannot serve this now (a wait timed out, a queue is full).
    #[error("{0}")]
    Unavailable(String),
    /// The transcription ran and failed (a task that ended in `fail` for a server-side reason).
    #[error("{0}")]
    Failed(String),
    #[error("the server is shutting down and accepts no new tasks; retry on another node or later")]
    Draining,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> Code {
        match self {
            ApiError::BadRequest(_) => Code::BadRequest,
            ApiError::Unauthorized(_) => Code::Unauthorized,
            ApiError::InsufficientCredits(_) => Code::InsufficientCredits,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Validation(_) => Code::Validation,
            ApiError::RateLimited(_) => Code::RateLimited,
            ApiError::TooLarge(_) => Code::Validation,
            ApiError::Draining | ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Failed(_) => Code::GenerationFailed,
            ApiError::Internal(_) => Code::ServerError,
        }
    }
}

impl ApiError {
    /// The HTTP status for dialects that use HTTP statuses (ElevenLabs, OpenAI); Kie.ai answers 200.
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode as S;
        match self {
            ApiError::BadRequest(_) => S::BAD_REQUEST,
            ApiError::Unauthorized(_) => S::UNAUTHORIZED,
            ApiError::InsufficientCredits(_) => S::PAYMENT_REQUIRED,
            ApiError::NotFound(_) => S::NOT_FOUND,
            ApiError::Validation(_) => S::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => S::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
            ApiError::Draining | ApiError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            ApiError::Failed(_) | ApiError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client sees; an internal error's cause is logged here, once, and hidden.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed with an internal error");
                "server error: the request could not be completed; try again later".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<harken_store::StoreError> for ApiError {
    fn from(err: harken_store::StoreError) -> Self {
        match err {
            harken_store::StoreError::InsufficientCredits { available, .. } => ApiError::InsufficientCredits(format!(
                "credits: expected a positive balance to create a task, the key has {available}"
            )),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let msg = self.public_message();
        // Kie's contract: HTTP 200 for every answered request, the outcome in `code`.
        Json(Envelope::<()>::error(self.code(), msg)).into_response()
    }
}
