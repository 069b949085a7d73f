//! Kie.ai's file upload API: `POST /api/file-stream-upload` (multipart), `/api/file-url-upload`
//! and `/api/file-base64-upload` (JSON). Each stores one audio file for `--file-ttl` and answers
//! its metadata and download link (see `crate::files`).
//!
//! Refusals are 400 with a message naming the field (Kie's file API documents 400 for request
//! errors); a missing or unknown key is 401 before the body is read.

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use harken_store::FileRecord;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::files::{iso8601_ms, original_name_of_url, sanitize_file_name, Files, NewUpload, Received};
use crate::{ApiError, AppState};

/// Largest JSON body of a URL upload, and largest text field of a multipart upload.
const MAX_SMALL_BODY: usize = 64 * 1024;
/// Longest `uploadPath`, in characters.
const MAX_UPLOAD_PATH_CHARS: usize = 256;

pub(super) fn router() -> Router<AppState> {
    // The upload size cap is a setting, enforced while the bytes stream in, so axum's fixed
    // default body limit is off on these routes.
    Router::new()
        .route("/api/file-stream-upload", post(upload_file_stream))
        .route("/api/file-url-upload", post(upload_file_url))
        .route("/api/file-base64-upload", post(upload_file_base64))
        .layer(DefaultBodyLimit::disable())
}

#[tracing::instrument(name = "upload_file_stream", skip_all, fields(key.id, file.id))]
async fn upload_file_stream(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let Caller(key) = caller?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::BadRequest(format!(
            "body: expected multipart/form-data with fields file, uploadPath and fileName, received {} ({e})",
            content_type(&headers)
        ))
    })?;
    let (mut upload_path, mut file_name, mut received, mut original) = (None, None, None, None);
    while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if received.is_some() {
                    return Err(ApiError::BadRequest("file: expected one file, received several".to_owned()));
                }
                original = field.file_name().and_then(sanitize_file_name);
                let mut incoming = state.files.incoming("file")?.declared(field.content_type());
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    incoming.write(chunk).await?;
                }
                received = Some(incoming.finish()?);
            }
            "uploadPath" => upload_path = Some(text_field(&mut field, "uploadPath").await?),
            "fileName" => file_name = Some(text_field(&mut field, "fileName").await?),
            _ => {} // Unknown fields are ignored, as JSON bodies' unknown keys are.
        }
    }
    let received = received
        .ok_or_else(|| ApiError::BadRequest("file: expected a file field with the audio, received none".to_owned()))?;
    let upload_path = valid_upload_path(upload_path.as_deref())?;
    let file_name = valid_file_name(file_name.as_deref())?;
    keep(&state, &headers, received, upload_meta(key.id, upload_path, file_name, original)).await
}

#[tracing::instrument(name = "upload_file_url", skip_all, fields(key.id, file.id))]
async fn upload_file_url(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Caller(key) = caller?;
    let body = json_body(body, MAX_SMALL_BODY, "the body").await?;
    let upload_path = valid_upload_path(string_field(&body, "uploadPath")?)?;
    let file_name = valid_file_name(string_field(&body, "fileName")?)?;
    let url = string_field(&body, "fileUrl")?.map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
        ApiError::BadRequest(format!("fileUrl: expected an http(s) URL, received {}", describe(body.get("fileUrl"))))
    })?;
    let (dir, fetched) = state.files.fetch_upload(url).await?;
    let received = Received::fetched(dir, fetched);
    let original = original_name_of_url(url);
    keep(&state, &headers, received, upload_meta(key.id, upload_path, file_name, original)).await
}

#[tracing::instrument(name = "upload_file_base64", skip_all, fields(key.id, file.id))]
async fn upload_file_base64(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Caller(key) = caller?;
    // Base64 takes 4 bytes per 3, plus room for the other fields.
    let limit = usize::try_from(state.files.max_bytes / 3 * 4 + 4).unwrap_or(usize::MAX).saturating_add(MAX_SMALL_BODY);
    let body = json_body(body, limit, "base64Data").await?;
    let upload_path = valid_upload_path(string_field(&body, "uploadPath")?)?;
    let file_name = valid_file_name(string_field(&body, "fileName")?)?;
    let data = string_field(&body, "base64Data")?.filter(|d| !d.trim().is_empty()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "base64Data: expected base64 or a data URL (data:audio/mpeg;base64,...), received {}",
            describe(body.get("base64Data"))
        ))
    })?;
    let bytes = decode_base64(data)?;
    let mut incoming = state.files.incoming("base64Data")?;
    incoming.write(bytes.into()).await?;
    let received = incoming.finish()?;
    // Base64 has no name of its own: the one asked for is the original too.
    keep(&state, &headers, received, upload_meta(key.id, upload_path, file_name.clone(), file_name)).await
}

/// What is kept about an upload: it is listed under the `fileName` asked for, else under the
/// name it came with (the form's file name, the URL's last segment).
fn upload_meta(key_id: String, upload_path: String, file_name: Option<String>, original: Option<String>) -> NewUpload {
    NewUpload { key_id, upload_path, file_name: file_name.or_else(|| original.clone()), original_name: original }
}

/// Stores the upload and answers Kie's success body.
async fn keep(
    state: &AppState,
    headers: &HeaderMap,
    received: Received,
    meta: NewUpload,
) -> Result<Json<Value>, ApiError> {
    let record = state.files.keep(state, received, meta).await?;
    tracing::Span::current().record("file.id", record.id.as_str());
    tracing::info!(file.id = %record.id, key.id = %record.key_id, file.bytes = record.size_bytes, "file uploaded");
    let base = state.files.base_url(headers);
    // Kie's envelope plus its `success` flag (its file API sends one).
    Ok(Json(
        json!({"success": true, "code": 200, "msg": "File uploaded successfully", "data": file_data(&base, &record)}),
    ))
}

/// The `data` of an upload answer. `filePath` and `uploadedAt` are in some of Kie's examples.
pub(crate) fn file_data(base: &str, record: &FileRecord) -> Value {
    let url = Files::download_url(base, record);
    json!({
        "fileId": record.id,
        "fileName": record.file_name,
        "originalName": record.original_name,
        "fileSize": record.size_bytes,
        "mimeType": record.mime_type,
        "uploadPath": record.upload_path,
        "filePath": format!("{}/{}", record.upload_path, record.file_name),
        "fileUrl": url,
        "downloadUrl": url,
        "uploadTime": iso8601_ms(record.created_at_ms),
        "uploadedAt": iso8601_ms(record.created_at_ms),
        "expiresAt": iso8601_ms(record.expires_at_ms),
    })
}

fn decode_base64(data: &str) -> Result<Vec<u8>, ApiError> {
    let payload = match data.trim_start().strip_prefix("data:") {
        Some(rest) => {
            let (header, payload) = rest.split_once(',').ok_or_else(|| {
                ApiError::BadRequest(
                    "base64Data: expected a data URL (data:<type>;base64,<data>), received one without a comma"
                        .to_owned(),
                )
            })?;
            if !header.to_ascii_lowercase().ends_with(";base64") {
                return Err(ApiError::BadRequest(format!(
                    "base64Data: expected a base64 data URL (data:<type>;base64,<data>), received the header \"data:{}\"",
                    header.chars().take(60).collect::<String>()
                )));
            }
            payload
        }
        None => data,
    };
    let clean: Vec<u8> = payload.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    let url_safe = clean.iter().any(|b| *b == b'-' || *b == b'_');
    let alphabet = if url_safe { &base64::alphabet::URL_SAFE } else { &base64::alphabet::STANDARD };
    base64::engine::GeneralPurpose::new(alphabet, config)
        .decode(&clean)
        .map_err(|e| ApiError::BadRequest(format!("base64Data: expected valid base64, received invalid base64 ({e})")))
}

async fn json_body(body: Body, limit: usize, field: &str) -> Result<Map<String, Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::BadRequest(format!("{field}: expected a body of at most {} KB, received more", limit / 1024))
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            Err(ApiError::BadRequest(format!("body: expected a JSON object, received {}", describe(Some(&other)))))
        }
        Err(e) => Err(ApiError::BadRequest(format!("body: expected a JSON object, received malformed JSON ({e})"))),
    }
}

/// An optional string field; another type is refused.
fn string_field<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        other => Err(ApiError::BadRequest(format!("{key}: expected a string, received {}", describe(other)))),
    }
}

fn valid_upload_path(raw: Option<&str>) -> Result<String, ApiError> {
    let path = raw.map(|p| p.trim().trim_matches('/')).unwrap_or_default();
    if path.is_empty() {
        let received = match raw {
            Some(r) => format!("{r:?}"),
            None => "nothing".to_owned(),
        };
        return Err(ApiError::BadRequest(format!(
            "uploadPath: expected a folder name such as \"audio/meetings\", received {received}"
        )));
    }
    if path.chars().count() > MAX_UPLOAD_PATH_CHARS
        || path.chars().any(char::is_control)
        || path.split('/').any(|s| s == "..")
    {
        return Err(ApiError::BadRequest(format!(
            "uploadPath: expected at most {MAX_UPLOAD_PATH_CHARS} printable characters without \"..\" segments, received {}",
            describe(Some(&Value::String(path.to_owned())))
        )));
    }
    Ok(path.to_owned())
}

fn valid_file_name(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(name) => sanitize_file_name(name).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "fileName: expected a file name with letters or digits, received {}",
                describe(Some(&Value::String(name.to_owned())))
            ))
        }),
    }
}

async fn text_field(field: &mut axum::extract::multipart::Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
        text.extend_from_slice(&chunk);
        if text.len() > MAX_SMALL_BODY {
            return Err(ApiError::BadRequest(format!(
                "{name}: expected at most {MAX_SMALL_BODY} bytes, received more"
            )));
        }
    }
    String::from_utf8(text)
        .map_err(|_| ApiError::BadRequest(format!("{name}: expected UTF-8 text, received other bytes")))
}

fn bad_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("body: expected a complete multipart/form-data body, received a broken one ({e})"))
}

fn content_type(headers: &HeaderMap) -> String {
    match headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => format!("content-type {:?}", ct.chars().take(80).collect::<String>()),
        None => "no content-type".to_owned(),
    }
}

fn describe(v: Option<&Value>) -> String {
    match v {
        None => "nothing".to_owned(),
        Some(Value::String(s)) if s.chars().count() > 60 => {
            format!(
                "a string of {} characters starting {:?}",
                s.chars().count(),
                s.chars().take(30).collect::<String>()
            )
        }
        Some(Value::String(s)) => format!("the string {s:?}"),
        Some(Value::Null) => "null".to_owned(),
        Some(Value::Bool(b)) => format!("the boolean {b}"),
        Some(Value::Number(n)) => format!("the number {n}"),
        Some(Value::Array(_)) => "an array".to_owned(),
        Some(Value::Object(_)) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_plain_data_urls_and_url_safe() {
        assert_eq!(decode_base64("UklGRg==").unwrap(), b"RIFF");
        assert_eq!(decode_base64("data:audio/mpeg;base64,UklGRg").unwrap(), b"RIFF");
        assert_eq!(decode_base64("UklG\nRg==").unwrap(), b"RIFF");
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        let e = decode_base64("not base64!").unwrap_err().to_string();
        assert!(e.starts_with("base64Data: expected valid base64, received invalid base64"), "{e}");
        let e = decode_base64("data:audio/mpeg,abc").unwrap_err().to_string();
        assert!(e.starts_with("base64Data: expected a base64 data URL"), "{e}");
    }

    #[test]
    fn upload_path_is_required_and_printable() {
        assert_eq!(valid_upload_path(Some("/audio/meetings/")).unwrap(), "audio/meetings");
        assert_eq!(
            valid_upload_path(None).unwrap_err().to_string(),
            "uploadPath: expected a folder name such as \"audio/meetings\", received nothing"
        );
        assert!(valid_upload_path(Some("a/../b")).is_err());
        assert!(valid_upload_path(Some("  ")).is_err());
    }
}
