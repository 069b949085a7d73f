//! Reads a `multipart/form-data` request of the ElevenLabs and OpenAI dialects: text fields into
//! memory (bounded), the `file` field streamed to disk (bounded by `--max-audio-mb`).

use std::collections::HashMap;
use std::io::Write;

use axum::extract::Multipart;

use crate::jobs::PendingUpload;
use crate::ApiError;

/// Largest text field, and largest sum of all text fields, in bytes.
const MAX_TEXT_FIELD: usize = 256 * 1024;
const MAX_TEXT_TOTAL: usize = 1024 * 1024;

/// The fields of a form. Repeated names (`keyterms`, `timestamp_granularities[]`) keep every value.
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: HashMap<String, Vec<String>>,
    /// The uploaded file, if a `file` field came.
    pub file: Option<Upload>,
}

#[derive(Debug)]
pub(crate) struct Upload {
    pub pending: PendingUpload,
}

impl Form {
    /// Reads the whole form. `upload` is where a `file` field goes.
    pub(crate) async fn read(
        mut multipart: Multipart,
        upload: impl FnOnce() -> std::io::Result<PendingUpload>,
        max_file_bytes: u64,
    ) -> Result<Form, ApiError> {
        let mut form = Form::default();
        let mut upload = Some(upload);
        let mut text_total = 0usize;
        while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                let make = upload.take().ok_or_else(|| {
                    ApiError::Validation("file: expected one file, received several file fields".to_owned())
                })?;
                let pending = make().map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating an upload file")))?;
                let mut out = std::fs::File::create(&pending.path)
                    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating an upload file")))?;
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    bytes += chunk.len() as u64;
                    if bytes > max_file_bytes {
                        return Err(ApiError::TooLarge(format!(
                            "file: expected at most {} MB, received more",
                            max_file_bytes / (1024 * 1024)
                        )));
                    }
                    out.write_all(&chunk)
                        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("writing an upload")))?;
                }
                out.flush().map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("writing an upload")))?;
                tracing::debug!(upload.bytes = bytes, "upload received");
                form.file = Some(Upload { pending });
                continue;
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_TEXT_FIELD || text_total + value.len() > MAX_TEXT_TOTAL {
                    return Err(ApiError::TooLarge(format!(
                        "{name}: expected a text field of at most {} KB, received more",
                        MAX_TEXT_FIELD / 1024
                    )));
                }
            }
            text_total += value.len();
            let value = String::from_utf8(value)
                .map_err(|_| ApiError::Validation(format!("{name}: expected UTF-8 text, received other bytes")))?;
            form.fields.entry(name).or_default().push(value);
        }
        Ok(form)
    }

    /// A single-valued field; absent, empty and the literal `null` (which SDKs send for unset
    /// JSON fields) all read as none.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.last()).map(|s| s.trim()).filter(|s| !s.is_empty() && *s != "null")
    }

    /// Every value of a repeated field, empty ones dropped.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .get(name)
            .map(|v| v.iter().map(|s| s.trim()).filter(|s| !s.is_empty() && *s != "null").collect())
            .unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::Validation(format!("{name}: expected true or false, received {other:?}"))),
        }
    }

    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|s| s.parse::<T>().map_err(|_| ApiError::Validation(format!("{name}: expected {expected}, received {s:?}"))))
            .transpose()
    }
}

fn bad_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("body: expected multipart/form-data, could not read it ({})", e.body_text()))
}

/// Prepends a WAV header to raw 16-bit little-endian 16 kHz mono PCM (ElevenLabs'
/// `file_format=pcm_s16le_16`), so the decoder reads it like any other file.
pub(crate) fn wrap_pcm_as_wav(path: &std::path::Path) -> std::io::Result<()> {
    let data = std::fs::read(path)?;
    let len = data.len() as u32;
    let mut out = Vec::with_capacity(data.len() + 44);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data);
    std::fs::write(path, out)
}
