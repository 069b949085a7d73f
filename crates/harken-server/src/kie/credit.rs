//! `GET /api/v1/chat/credit`: the caller's remaining credits.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use harken_types::Envelope;
use serde_json::Value;

use crate::auth::Caller;
use crate::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat/credit", get(get_credit))
}

#[tracing::instrument(name = "get_credit", skip_all, fields(key.id))]
async fn get_credit(State(state): State<AppState>, Caller(key): Caller) -> Result<Json<Envelope<Value>>, ApiError> {
    let available = state.store.available_credits(&key.id).await?;
    Ok(Json(Envelope::success(available.to_json())))
}
