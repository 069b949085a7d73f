//! `POST /api/v1/jobs/createTask` and `GET /api/v1/jobs/recordInfo`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use harken_store::NewTask;
use harken_types::Envelope;
use serde_json::{json, Value};

use super::{record, validate, MODEL};
use crate::auth::Caller;
use crate::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs/createTask", post(create_task))
        .route("/api/v1/jobs/recordInfo", get(get_record_info))
}

#[tracing::instrument(name = "create_task", skip_all, fields(key.id, task.id))]
async fn create_task(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Envelope<Value>>, ApiError> {
    // Checked in this order on purpose: a draining node refuses before anything else, and a
    // caller learns about its key before learning about its body.
    if state.is_draining() {
        return Err(ApiError::Draining);
    }
    let Caller(key) = caller?;
    let body = body.map_err(|e| ApiError::BadRequest(format!("body: could not be read ({e})")))?;
    let valid = validate::parse_create_task(&body)?;
    if let Err(wait) = state.limiter.try_acquire(&key.id) {
        return Err(ApiError::RateLimited(format!(
            "rate limit: expected at most {} new tasks per {} s for this key, received more; retry in {} s",
            state.limiter.limit(),
            state.limiter.window().as_secs(),
            wait.as_secs().max(1)
        )));
    }
    let new = NewTask {
        id: harken_store::new_id("task"),
        key_id: key.id.clone(),
        model: MODEL.to_owned(),
        param: String::from_utf8_lossy(&body).into_owned(),
        callback_url: valid.callback_url,
    };
    let task = state.store.create_task(new).await?;
    tracing::Span::current().record("task.id", task.id.as_str());
    tracing::info!(task.id = %task.id, key.id = %key.id, "task created");
    state.metrics.task_created();
    state.task_added.notify_one();
    Ok(Json(Envelope::success(json!({"taskId": task.id}))))
}

#[tracing::instrument(name = "get_record_info", skip_all, fields(key.id))]
async fn get_record_info(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Envelope<Value>>, ApiError> {
    let Caller(key) = caller?;
    let task_id =
        query.as_ref().ok().and_then(|q| q.get("taskId")).map(|s| s.trim()).filter(|s| !s.is_empty()).ok_or_else(
            || {
                ApiError::BadRequest(
                    "taskId: expected a task id in the query (?taskId=...), received nothing".to_owned(),
                )
            },
        )?;
    let task = state
        .store
        .task_for_key(&key.id, task_id)
        .await?
        .ok_or_else(|| ApiError::Validation("recordInfo is null".to_owned()))?;
    let available = state.store.available_credits(&key.id).await?;
    Ok(Json(Envelope::success(record::record_info(&task, available))))
}
