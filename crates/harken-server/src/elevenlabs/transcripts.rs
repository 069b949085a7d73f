//! `POST /v1/speech-to-text` (synchronous, or asynchronous with `webhook=true`) and
//! `GET /v1/speech-to-text/transcripts/{id}`.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use harken_store::{ApiKey, TaskRecord};
use serde_json::json;

use super::request::{self, AnswerOptions};
use super::{response, ElevenLabsError};
use crate::jobs::{self, Dialect, Job, JobResult, Submission};
use crate::multipart::{self, wrap_pcm_as_wav, Received};
use crate::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        // The upload streams to the object store under --max-audio-mb; axum's 2 MB default would refuse it.
        .route("/v1/speech-to-text", post(create_transcript).layer(DefaultBodyLimit::disable()))
        .route("/v1/speech-to-text/transcripts/{id}", get(get_transcript))
}

/// `xi-api-key: <harken key>` (the SDK's header); `Authorization: Bearer` is accepted too.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
    let secret = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("xi-api-key: expected a header with a harken API key, received none".to_owned()))?;
    let key = state
        .store
        .authenticate(secret)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("xi-api-key: expected a valid API key, received an unknown one".to_owned()))?;
    tracing::Span::current().record("key.id", key.id.as_str());
    Ok(key)
}

#[tracing::instrument(name = "create_transcript", skip_all, fields(key.id, task.id))]
async fn create_transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ElevenLabsError> {
    if state.is_draining() {
        return Err(ApiError::Draining.into());
    }
    let key = authenticate(&state, &headers).await?;
    let Received { slot, task_id, form } = multipart::receive(&state, multipart, "retry shortly or use webhook=true").await?;
    let valid = request::parse(&form, &state.config)?;
    let mut upload = form.file.map(|f| f.pending);
    if let (Some(u), true) = (&upload, valid.pcm) {
        wrap_pcm_as_wav(u).await.map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("wrapping raw PCM")))?;
    }
    let submission = Submission {
        task_id: task_id.clone(),
        key_id: key.id.clone(),
        model: valid.answer.model_id.clone(),
        job: valid.job,
        upload: upload.take(),
        callback_url: if valid.webhook { state.config.elevenlabs_webhook_url.clone() } else { None },
    };
    jobs::submit(&state, submission).await?;
    if valid.webhook {
        drop(slot);
        let body = json!({
            "message": "Request accepted: the transcript will be sent to the configured webhook.",
            "request_id": task_id,
            "transcription_id": task_id,
        });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let task = jobs::wait_final(&state, &key.id, &task_id).await?;
    drop(slot);
    Ok(Json(answer(&task, &valid.answer)?).into_response())
}

#[tracing::instrument(name = "get_transcript", skip_all, fields(key.id))]
async fn get_transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ElevenLabsError> {
    let key = authenticate(&state, &headers).await?;
    let not_found = || ApiError::NotFound(format!("transcription_id: expected the id of one of this key's transcripts, received {id:?}"));
    let task = state.store.task_for_key(&key.id, &id).await?.ok_or_else(not_found)?;
    if Dialect::of(&task) != Some(Dialect::Elevenlabs) {
        return Err(not_found().into());
    }
    if !task.state.is_final() {
        return Err(ApiError::NotFound(format!(
            "transcription_id: {id} is not ready yet (state {}, {} %); ask again later",
            task.state.as_str(),
            task.progress
        ))
        .into());
    }
    let job: Job = serde_json::from_str(&task.param).map_err(|e| ApiError::Internal(e.into()))?;
    let answer_options: AnswerOptions = serde_json::from_value(job.answer).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(answer(&task, &answer_options)?))
}

/// A final task's answer: the transcript(s), or the failure as an error.
fn answer(task: &TaskRecord, options: &AnswerOptions) -> Result<serde_json::Value, ApiError> {
    match JobResult::of(task) {
        Some(result) if task.state == harken_types::TaskState::Success => Ok(response::render(&task.id, &result, options)),
        _ => Err(jobs::failure(task)),
    }
}
