//! The Kie.ai jobs dialect (DESIGN.md §1): one file per resource, merged here.

mod credit;
pub(crate) mod record;
mod tasks;
mod uploads;
pub(crate) mod validate;

use axum::Router;

use crate::AppState;

/// The only model this dialect serves.
pub const MODEL: &str = "elevenlabs/speech-to-text";

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(tasks::router()).merge(credit::router()).merge(uploads::router())
}
