//! `GET /healthz`: liveness, whether the node takes new tasks, and whether its workers can label
//! speakers (`diarization`: false when the speaker model could not be loaded, which otherwise
//! shows only as refused requests; null on a node without workers).

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
    Json(Envelope::success(json!({"status": status, "model": &*state.model_name, "diarization": state.diarization})))
}
