//! `POST /v1/audio/transcriptions`: synchronous, through the task queue.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use harken_store::ApiKey;

use super::{request, response, OpenAiError};
use crate::jobs::{self, JobResult, Submission};
use crate::multipart::{self, Received};
use crate::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    // The upload streams to the object store under --max-audio-mb; axum's 2 MB default would refuse it.
    Router::new().route("/v1/audio/transcriptions", post(create_transcription).layer(DefaultBodyLimit::disable()))
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
    let secret = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "Authorization: expected \"Bearer <harken API key>\", received no Bearer token".to_owned(),
            )
        })?;
    let key = state
        .store
        .authenticate(secret)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Authorization: expected a valid API key, received an unknown one".to_owned()))?;
    tracing::Span::current().record("key.id", key.id.as_str());
    Ok(key)
}

#[tracing::instrument(name = "create_transcription", skip_all, fields(key.id, task.id))]
async fn create_transcription(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, OpenAiError> {
    if state.is_draining() {
        return Err(ApiError::Draining.into());
    }
    let key = authenticate(&state, &headers).await?;
    let Received { slot: _slot, task_id, form } = multipart::receive(&state, multipart, "retry shortly").await?;
    let valid = request::parse(&form, &state.model_name)?;
    let submission = Submission {
        task_id: task_id.clone(),
        key_id: key.id.clone(),
        model: valid.model,
        job: valid.job,
        upload: form.file.map(|f| f.pending),
        callback_url: None,
    };
    jobs::submit(&state, submission).await?;
    let task = jobs::wait_final(&state, &key.id, &task_id).await?;
    match JobResult::of(&task) {
        Some(result) if task.state == harken_types::TaskState::Success => Ok(response::render(&result, &valid.answer)),
        _ => Err(jobs::failure(&task).into()),
    }
}
