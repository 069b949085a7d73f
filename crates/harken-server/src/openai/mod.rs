//! The OpenAI audio dialect (DESIGN.md §2): `POST /v1/audio/transcriptions`, Bearer auth with
//! harken keys, OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`) and HTTP
//! statuses, so the official SDK works unchanged. Requests run as tasks like every dialect.

mod error;
mod languages;
mod request;
mod response;
mod transcriptions;

use axum::Router;

use crate::AppState;

pub(crate) use error::OpenAiError;

/// OpenAI model names accepted besides the server's own model name; all run on the server's engine.
pub(crate) const MODELS: &[&str] =
    &["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize"];

pub(crate) fn router() -> Router<AppState> {
    transcriptions::router()
}
