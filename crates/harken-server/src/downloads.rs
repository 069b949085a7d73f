//! `GET /files/{fileId}/{fileName}`: an uploaded file's download link. Public like Kie's download
//! links (the id is the capability), with ranges (players seek), its sniffed audio type and
//! `nosniff`. This is plain HTTP, not the Kie envelope contract: a missing or expired file is a
//! real 404 so browsers, players and fetchers see it.
//!
//! The bytes stream from the object store (any node serves any upload); a single byte range is
//! answered with 206, several ranges with the whole file (allowed by RFC 9110), an unsatisfiable
//! one with 416.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use harken_types::{Code, Envelope};

use crate::files::{is_file_id, Files};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/files/{file_id}/{file_name}", get(get_file))
}

#[tracing::instrument(name = "get_file", skip_all, fields(file.id = %file_id))]
async fn get_file(
    State(state): State<AppState>,
    Path((file_id, file_name)): Path<(String, String)>,
    headers: HeaderMap,
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
    let size = record.size_bytes;
    let range = match requested_range(&headers, size) {
        Ok(range) => range,
        Err(()) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let read = match state.files.blobs.read(&Files::key_of(&record.id), range).await {
        Ok(Some(read)) => read,
        // Swept between the row and the bytes.
        Ok(None) => return not_found(&state),
        Err(err) => return crate::ApiError::from(err).into_response(),
    };
    let status =
        if read.range.end - read.range.start == read.size { StatusCode::OK } else { StatusCode::PARTIAL_CONTENT };
    let mut response = (status, Body::from_stream(read.stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(read.range.end - read.range.start));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {}-{}/{}", read.range.start, read.range.end - 1, read.size);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
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

/// The one byte range a `Range` header asks for, resolved against `size`: `Ok(None)` for the
/// whole file (no header, a header we do not read, or several ranges), `Err` when unsatisfiable.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        // `bytes=-n`: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (Some(a), None) if last.is_empty() => a..size,
        (Some(a), Some(b)) if a <= b => a..(b + 1).min(size),
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

fn not_found(state: &AppState) -> Response {
    let msg = format!(
        "file: expected an uploaded file that has not expired, received an unknown or expired one (uploads are kept {})",
        crate::files::human_duration(state.files.ttl)
    );
    (StatusCode::NOT_FOUND, Json(Envelope::<()>::error(Code::NotFound, msg))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(spec: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(spec).unwrap());
        requested_range(&headers, size)
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(requested_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range("bytes=0-3", 10), Ok(Some(0..4)));
        assert_eq!(range("bytes=4-", 10), Ok(Some(4..10)));
        assert_eq!(range("bytes=-3", 10), Ok(Some(7..10)));
        assert_eq!(range("bytes=-30", 10), Ok(Some(0..10)));
        assert_eq!(range("bytes=5-100", 10), Ok(Some(5..10)));
        assert_eq!(range("bytes=10-", 10), Err(()));
        assert_eq!(range("bytes=-0", 10), Err(()));
        assert_eq!(range("bytes=0-1,4-5", 10), Ok(None), "several ranges: the whole file");
        assert_eq!(range("items=0-1", 10), Ok(None));
        assert_eq!(range("bytes=5-2", 10), Ok(None));
    }
}
