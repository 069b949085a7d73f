//! `Authorization: Bearer <api key>` → the caller's key. Failures are 401 with a message that
//! says what was expected, never echoing the key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use harken_store::ApiKey;

use crate::{ApiError, AppState};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("Authorization: expected a header \"Bearer <api key>\", received none".to_owned())
        })?;
        let value = header.to_str().unwrap_or_default().trim();
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "Authorization: expected \"Bearer <api key>\", received a value without a Bearer token".to_owned(),
                )
            })?;
        match state.store.authenticate(secret).await? {
            Some(key) => {
                tracing::Span::current().record("key.id", key.id.as_str());
                Ok(Caller(key))
            }
            None => Err(ApiError::Unauthorized(
                "Authorization: expected a valid API key, received an unknown one".to_owned(),
            )),
        }
    }
}
