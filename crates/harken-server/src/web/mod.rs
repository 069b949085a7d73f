//! The web page at `/`: paste a key, upload a file or give a URL, watch the task, read the
//! transcript by speaker with timestamps that play the audio, download srt/vtt/txt/json.
//!
//! Plain HTML, CSS and JS embedded in the binary (no build step, nothing fetched from elsewhere).
//! It calls the public API with the key the user pastes, like any other client. The key stays in
//! the browser's localStorage, so the page is served with a strict Content-Security-Policy (own
//! scripts only, API calls to this origin only) and uploads can only ever be served as audio.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_CSS: &str = include_str!("app.css");
const APP_JS: &str = include_str!("app.js");

/// Media may come from any URL the user gives; everything else from this origin only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    media-src * blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(get_page))
        .route("/assets/app.css", get(|| asset("text/css; charset=utf-8", APP_CSS)))
        .route("/assets/app.js", get(|| asset("text/javascript; charset=utf-8", APP_JS)))
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
}

async fn get_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
}

/// A static file compiled into the binary (also `/openapi.json`): never sniffed, revalidated on
/// each use so an upgraded server's copy is seen at once.
pub(crate) async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
