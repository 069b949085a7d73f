//! Reads a `multipart/form-data` request of the ElevenLabs and OpenAI dialects: text fields into
//! memory (bounded), the `file` field streamed into the object store (bounded by
//! `--max-audio-mb`) under the task's key, so a worker on any node can read it.

use std::collections::HashMap;

use axum::extract::multipart::MultipartRejection;
use axum::extract::Multipart;
use harken_store::blobs::Blobs;
use tokio::sync::OwnedSemaphorePermit;

use crate::files::task_audio;
use crate::jobs::PendingUpload;
use crate::{ApiError, AppState};

/// Largest text field, and largest sum of all text fields, in bytes.
const MAX_TEXT_FIELD: usize = 256 * 1024;
const MAX_TEXT_TOTAL: usize = 1024 * 1024;
/// OpenAI's `known_speaker_references[]` carry audio files as data URLs (a few seconds each, at
/// most four are used), so they have limits of their own: 10 s of 48 kHz 16-bit WAV in base64
/// is 1.3 MB.
const REFERENCE_FIELD: &str = "known_speaker_references[]";
const MAX_REFERENCE_FIELD: usize = 4 * 1024 * 1024;
const MAX_REFERENCE_TOTAL: usize = 4 * MAX_REFERENCE_FIELD;

/// A synchronous request (ElevenLabs, OpenAI) received: its place among `--max-sync-requests`,
/// the id of the task it becomes, and its form with the audio already in the object store.
pub(crate) struct Received {
    /// Held until the answer is sent; dropping it frees the place.
    pub slot: OwnedSemaphorePermit,
    pub task_id: String,
    pub form: Form,
}

/// Takes a place among the synchronous requests, then reads the form. The place is taken before
/// the upload is read, so a full server refuses at once instead of first swallowing the audio.
/// `when_busy` ends the refusal's message: what the client can do instead of waiting.
pub(crate) async fn receive(
    state: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
    when_busy: &str,
) -> Result<Received, ApiError> {
    let multipart = multipart.map_err(|e| ApiError::BadRequest(format!("body: expected multipart/form-data ({e})")))?;
    let slot = state.sync_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::RateLimited(format!(
            "server busy: {} requests are already waiting for their transcripts (--max-sync-requests); {when_busy}",
            state.config.max_sync_requests
        ))
    })?;
    let task_id = harken_store::new_id("task");
    tracing::Span::current().record("task.id", task_id.as_str());
    let max_bytes = state.config.max_audio_mb * 1024 * 1024;
    let form = Form::read(multipart, &state.files.blobs, &task_id, max_bytes).await?;
    Ok(Received { slot, task_id, form })
}

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
    /// Reads the whole form; a `file` field is stored as task `task_id`'s request audio.
    pub(crate) async fn read(
        mut multipart: Multipart,
        blobs: &Blobs,
        task_id: &str,
        max_file_bytes: u64,
    ) -> Result<Form, ApiError> {
        let mut form = Form::default();
        let (mut text_total, mut reference_total) = (0usize, 0usize);
        while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if form.file.is_some() {
                    return Err(ApiError::Validation(
                        "file: expected one file, received several file fields".to_owned(),
                    ));
                }
                let key = task_audio::request_key(&task_audio::request_name(task_id));
                // Dropped unfinished (a refusal below), the writer leaves nothing behind.
                let mut writer = blobs.writer(&key).map_err(|e| internal(e, "starting an upload"))?;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    if writer.written() + chunk.len() as u64 > max_file_bytes {
                        return Err(ApiError::TooLarge(format!(
                            "file: expected at most {} MB, received more",
                            max_file_bytes / (1024 * 1024)
                        )));
                    }
                    writer.write(chunk).await.map_err(|e| internal(e, "storing an upload"))?;
                }
                let bytes = writer.finish().await.map_err(|e| internal(e, "storing an upload"))?;
                tracing::debug!(upload.bytes = bytes, "upload received");
                form.file = Some(Upload { pending: PendingUpload::stored(blobs.clone(), task_id) });
                continue;
            }
            let (max_field, total, max_total) = match name.as_str() {
                REFERENCE_FIELD => (MAX_REFERENCE_FIELD, &mut reference_total, MAX_REFERENCE_TOTAL),
                _ => (MAX_TEXT_FIELD, &mut text_total, MAX_TEXT_TOTAL),
            };
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                value.extend_from_slice(&chunk);
                if value.len() > max_field || *total + value.len() > max_total {
                    return Err(ApiError::TooLarge(format!(
                        "{name}: expected a text field of at most {} KB ({} KB for all such fields), received more",
                        max_field / 1024,
                        max_total / 1024
                    )));
                }
            }
            *total += value.len();
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
            .map(|s| {
                s.parse::<T>().map_err(|_| ApiError::Validation(format!("{name}: expected {expected}, received {s:?}")))
            })
            .transpose()
    }
}

fn bad_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::BadRequest(format!("body: expected multipart/form-data, could not read it ({})", e.body_text()))
}

/// Prepends a WAV header to raw 16-bit little-endian 16 kHz mono PCM (ElevenLabs'
/// `file_format=pcm_s16le_16`), so the decoder reads it like any other file. The stored upload is
/// streamed into its replacement (published only when complete), never held in memory.
pub(crate) async fn wrap_pcm_as_wav(upload: &PendingUpload) -> harken_store::Result<()> {
    use futures_util::StreamExt as _;
    let key = upload.key();
    let Some(read) = upload.blobs.read(&key, None).await? else {
        return Err(harken_store::StoreError::NotFound { what: "request upload", id: key });
    };
    let mut writer = upload.blobs.writer(&key)?;
    writer.write(axum::body::Bytes::from(wav_header(read.size).to_vec())).await?;
    let mut stream = read.stream;
    while let Some(chunk) = stream.next().await {
        writer.write(chunk?).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// The 44-byte header of a WAV file holding `len` bytes of 16 kHz mono 16-bit PCM.
fn wav_header(len: u64) -> [u8; 44] {
    let len = u32::try_from(len).unwrap_or(u32::MAX - 36);
    let mut out = [0u8; 44];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"RIFF");
    put(&(36 + len).to_le_bytes());
    put(b"WAVEfmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes()); // PCM
    put(&1u16.to_le_bytes()); // mono
    put(&16_000u32.to_le_bytes());
    put(&32_000u32.to_le_bytes()); // byte rate
    put(&2u16.to_le_bytes()); // block align
    put(&16u16.to_le_bytes()); // bits per sample
    put(b"data");
    put(&len.to_le_bytes());
    out
}

fn internal(err: impl std::fmt::Display, what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raw_pcm_becomes_a_wav_the_decoder_reads() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let upload = PendingUpload::stored(blobs.clone(), "task_x");
        // One second of a 440 Hz tone.
        let pcm: Vec<u8> = (0..16_000)
            .flat_map(|i| (((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16).to_le_bytes())
            .collect();
        blobs.put(&upload.key(), pcm.clone().into()).await.unwrap();
        wrap_pcm_as_wav(&upload).await.unwrap();
        let wav = blobs.get(&upload.key()).await.unwrap().unwrap();
        assert_eq!(wav.len(), pcm.len() + 44);
        assert_eq!(&wav[44..], pcm.as_slice());
        let path = dir.path().join("out.wav");
        std::fs::write(&path, &wav).unwrap();
        let audio = harken_audio::decode_file(&path).unwrap();
        assert!((audio.duration_s - 1.0).abs() < 0.01, "{}", audio.duration_s);
        drop(upload);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(blobs.get("requests/task_x.audio").await.unwrap().is_none(), "an upload no task took is deleted");
    }
}
