//! The ElevenLabs speech-to-text dialect (DESIGN.md §2): `POST /v1/speech-to-text` and
//! `GET /v1/speech-to-text/transcripts/{id}`, with ElevenLabs' own error shape
//! (`{"detail": {"status": "...", "message": "..."}}`) and HTTP statuses, so the official SDK
//! works unchanged. Requests become tasks (see `jobs`); the transcription id is the task id.

mod error;
mod request;
mod response;
mod transcripts;
pub(crate) mod webhook;

use axum::Router;

use crate::AppState;

pub(crate) use error::ElevenLabsError;

/// ElevenLabs model ids accepted; all run on the server's engine.
pub(crate) const MODELS: &[&str] = &["scribe_v1", "scribe_v1_experimental", "scribe_v2"];

pub(crate) fn router() -> Router<AppState> {
    transcripts::router()
}
