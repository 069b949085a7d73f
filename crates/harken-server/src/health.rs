//! `GET /healthz`: liveness plus whether the node takes new tasks.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use harken_types::Envelope;
use serde_json::{json, Value};

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(get_health))
}

async fn get_health(State(state): State<AppState>) -> Json<Envelope<Value>> {
    let status = if state.is_draining() { "draining" } else { "ok" };
    Json(Envelope::success(json!({"status": status, "model": &*state.model_name})))
}
