//! `GET /files/{fileId}/{fileName}`: an uploaded file's download link. Public like Kie's download
//! links (the id is the capability), with ranges (players seek), its sniffed audio type and
//! `nosniff`. This is plain HTTP, not the Kie envelope contract: a missing or expired file is a
//! real 404 so browsers, players and fetchers see it.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use harken_types::{Code, Envelope};
use tower::ServiceExt as _;

use crate::files::is_file_id;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/files/{file_id}/{file_name}", get(get_file))
}

#[tracing::instrument(name = "get_file", skip_all, fields(file.id = %file_id))]
async fn get_file(
    State(state): State<AppState>,
    Path((file_id, file_name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let record = match is_file_id(&file_id) {
        true => state.store.file(&file_id).await,
        false => Ok(None),
    };
    let record = match record {
        Ok(Some(r)) if r.file_name == file_name => r,
        Ok(_) => return not_found(&state),
        Err(err) => return crate::ApiError::from(err).into_response(),
    };
    // The bytes have no extension to guess from: the stored (sniffed) type is set below.
    let served = tower_http::services::ServeFile::new(state.files.path_of(&record.id)).oneshot(request).await;
    let mut response = match served {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => return not_found(&state),
        Ok(r) => r.map(axum::body::Body::new),
        Err(never) => match never {},
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&record.mime_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    let disposition = format!(
        "inline; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&record.file_name, percent_encoding::NON_ALPHANUMERIC)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

fn not_found(state: &AppState) -> Response {
    let msg = format!(
        "file: expected an uploaded file that has not expired, received an unknown or expired one (uploads are kept {})",
        crate::files::human_duration(state.files.ttl)
    );
    (StatusCode::NOT_FOUND, Json(Envelope::<()>::error(Code::NotFound, msg))).into_response()
}
