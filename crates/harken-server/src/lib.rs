#![doc = include_str!("../README.md")]
//!
//! Module map: `config` (the one settings struct), `state` (shared handles), `error` (the one
//! mapping to envelopes), `auth`, `rate_limit`, `kie/` (one file per resource), `health`,
//! `elevenlabs/` and `openai/` (the other dialects, over `jobs` and `multipart`),
//! `metrics` (this node's counters at `/metrics`), `openapi` (`/openapi.json`),
//! `worker` (tasks → transcripts), `callbacks` (outbox delivery), `run` (lifecycle), `files`
//! (uploaded files: storage, expiry, links) with `downloads` (their links), `web` (the page at `/`).

mod auth;
mod callbacks;
mod config;
mod elevenlabs;
mod downloads;
mod error;
mod files;
mod health;
mod jobs;
mod kie;
mod metrics;
mod multipart;
mod openapi;
mod openai;
mod rate_limit;
mod run;
mod state;
mod web;
mod worker;

pub use callbacks::signature;
pub use config::{DatabaseUrl, Role, ServerConfig};
pub use elevenlabs::webhook::signature as elevenlabs_signature;
pub use error::ApiError;
pub use kie::validate::{parse_create_task, ValidCreateTask};
pub use kie::MODEL;
pub use run::run;
pub use state::AppState;

use axum::Router;

/// The whole HTTP API, from its state; no socket needed (tests call it with `oneshot`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(kie::router())
        .merge(elevenlabs::router())
        .merge(openai::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .merge(downloads::router())
        .merge(web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// What a worker node serves with `--ops-listen`: its health and counters, no API.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("path: expected one of harken's endpoints, received {method} {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("method: {method} is not served on {}; see the API docs for its method", uri.path()))
}
