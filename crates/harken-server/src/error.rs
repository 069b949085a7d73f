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
            ApiError::Draining => Code::Unavailable,
            ApiError::Internal(_) => Code::ServerError,
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
        let msg = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed with an internal error");
                "server error: the request could not be completed; try again later".to_owned()
            }
            other => other.to_string(),
        };
        // Kie's contract: HTTP 200 for every answered request, the outcome in `code`.
        Json(Envelope::<()>::error(self.code(), msg)).into_response()
    }
}
