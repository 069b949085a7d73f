//! Dialect jobs: an ElevenLabs or OpenAI request becomes a task in the store, like a Kie.ai
//! createTask, so the same workers, leases, credits and callback outbox serve every dialect.
//!
//! What must stay true:
//! - a dialect task's `model` is `<dialect>:<requested model>` (never the Kie.ai model), and its
//!   `param` is a [`Job`] in JSON: the worker reads audio and options from it alone;
//! - an uploaded file is stored in the object store (`requests/<task id>.audio`, see
//!   `files::task_audio`) *before* the task exists, so a worker on any node can read it, and
//!   deleted when the task ends (or at once when the request is refused);
//! - a synchronous request holds one of `--max-sync-requests` slots while it waits: when none is
//!   free the request is refused with 429 rather than queued in memory;
//! - the result is `{"transcripts": [<transcript per channel>], "audio_duration_secs": d}`.

use std::time::{Duration, Instant};

use harken_store::{NewTask, TaskRecord};
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

/// Which dialect created a task (the prefix of its `model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Dialect {
    Elevenlabs,
    Openai,
}

impl Dialect {
    fn prefix(self) -> &'static str {
        match self {
            Dialect::Elevenlabs => "elevenlabs:",
            Dialect::Openai => "openai:",
        }
    }

    /// The dialect of a task, `None` for Kie.ai tasks.
    pub(crate) fn of(task: &TaskRecord) -> Option<Dialect> {
        [Dialect::Elevenlabs, Dialect::Openai].into_iter().find(|d| task.model.starts_with(d.prefix()))
    }
}

/// Where the audio is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AudioSource {
    /// Uploaded with the request; a file name under `<data dir>/requests/`.
    Upload(String),
    /// Downloaded by the worker through the SSRF-guarded fetcher.
    Url(String),
}

/// A dialect task's `param`: everything the worker needs, plus the dialect's own answer options
/// (`answer`), which only the dialect reads when it renders the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Job {
    pub dialect: Dialect,
    pub audio: AudioSource,
    /// Whisper language code; `None` detects.
    pub language: Option<String>,
    pub diarize: bool,
    pub num_speakers: Option<usize>,
    pub tag_audio_events: bool,
    /// One transcript per channel (at most [`MAX_CHANNELS`]).
    #[serde(default)]
    pub multi_channel: bool,
    /// Text Whisper is primed with (OpenAI's `prompt`; ElevenLabs' `keyterms`, joined).
    /// The three options below came after the first release: absent in older rows, read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Temperature of the first decoding attempt; none or 0 is beam search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Speaker clustering threshold (ElevenLabs' `diarization_threshold`, 0.1 to 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diarization_threshold: Option<f32>,
    /// Speakers to name by their voice (OpenAI's `known_speaker_names[]` with
    /// `known_speaker_references[]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_speakers: Vec<KnownSpeakerReference>,
    #[serde(default)]
    pub answer: serde_json::Value,
}

/// A name and its reference recording: the audio file's bytes in base64, as the request sent
/// them (a few seconds of audio; decoded by the worker with the task's audio).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KnownSpeakerReference {
    pub name: String,
    pub audio_base64: String,
}

/// Most channels a multi-channel request may have (ElevenLabs' limit).
pub(crate) const MAX_CHANNELS: usize = 5;

/// What a finished dialect task holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobResult {
    pub transcripts: Vec<harken_types::Transcript>,
    pub audio_duration_secs: f64,
}

impl JobResult {
    pub(crate) fn of(task: &TaskRecord) -> Option<JobResult> {
        serde_json::from_str(task.result_json.as_deref()?).ok()
    }
}

/// A request's file, already in the object store, that is deleted unless handed to a task.
#[derive(Debug)]
pub(crate) struct PendingUpload {
    /// The name under `requests/` (what `AudioSource::Upload` holds).
    pub name: String,
    pub blobs: harken_store::blobs::Blobs,
    keep: bool,
}

impl PendingUpload {
    /// The upload of task `task_id` once its bytes are stored under [`PendingUpload::key`].
    pub(crate) fn stored(blobs: harken_store::blobs::Blobs, task_id: &str) -> PendingUpload {
        PendingUpload { name: crate::files::task_audio::request_name(task_id), blobs, keep: false }
    }

    pub(crate) fn key(&self) -> String {
        crate::files::task_audio::request_key(&self.name)
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Drop cannot wait: the delete runs on the runtime (the sweeper catches a miss).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (blobs, key) = (self.blobs.clone(), self.key());
            runtime.spawn(async move { blobs.delete(&key).await });
        }
    }
}

/// A task about to be created for a dialect request.
#[derive(Debug)]
pub(crate) struct Submission {
    pub task_id: String,
    pub key_id: String,
    /// The model the client asked for (shown back as `<dialect>:<model>`).
    pub model: String,
    pub job: Job,
    pub upload: Option<PendingUpload>,
    pub callback_url: Option<String>,
}

/// Creates the task (rate limit and credits checked) and wakes a worker.
pub(crate) async fn submit(state: &AppState, mut s: Submission) -> Result<TaskRecord, ApiError> {
    if state.is_draining() {
        return Err(ApiError::Draining);
    }
    if let Err(wait) = state.limiter.try_acquire(&s.key_id) {
        return Err(ApiError::RateLimited(format!(
            "rate limit: expected at most {} new requests per {} s for this key, received more; retry in {} s",
            state.limiter.limit(),
            state.limiter.window().as_secs(),
            wait.as_secs().max(1)
        )));
    }
    let param = serde_json::to_string(&s.job).map_err(|e| ApiError::Internal(e.into()))?;
    let new = NewTask {
        id: s.task_id.clone(),
        key_id: s.key_id.clone(),
        model: format!("{}{}", s.job.dialect.prefix(), s.model),
        param,
        callback_url: s.callback_url.take(),
    };
    let task = state.store.create_task(new).await?;
    if let Some(upload) = s.upload.as_mut() {
        upload.keep = true;
    }
    tracing::info!(task.id = %task.id, key.id = %s.key_id, dialect = ?s.job.dialect, "task created");
    state.metrics.task_created();
    state.task_added.notify_one();
    Ok(task)
}

/// Waits until the task is final. Polls the store (the task may run on another node), every
/// 50 ms at first, then less often.
pub(crate) async fn wait_final(state: &AppState, key_id: &str, task_id: &str) -> Result<TaskRecord, ApiError> {
    let started = Instant::now();
    let deadline = Duration::from_secs(state.config.sync_timeout_secs);
    loop {
        let task = state
            .store
            .task_for_key(key_id, task_id)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("task {task_id} vanished while its request waited")))?;
        if task.state.is_final() {
            return Ok(task);
        }
        let waited = started.elapsed();
        if waited > deadline {
            return Err(ApiError::Unavailable(format!(
                "the transcription did not finish within {} s (--sync-timeout-secs); it goes on: fetch it later by its id {task_id}",
                deadline.as_secs()
            )));
        }
        let pause = if waited < Duration::from_secs(2) { 50 } else { 250 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// A failed task's outcome as an error for the client: `failCode` 422 (bad input) and 402
/// (credits) keep their meaning; anything else is a server-side failure.
pub(crate) fn failure(task: &TaskRecord) -> ApiError {
    let msg = task.fail_msg.clone().unwrap_or_else(|| "the transcription failed".to_owned());
    match task.fail_code.as_deref() {
        Some("422") => ApiError::Validation(msg),
        Some("402") => ApiError::InsufficientCredits(msg),
        _ => ApiError::Failed(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_stored_before_prompt_temperature_and_threshold_still_reads() {
        let old = r#"{"dialect":"openai","audio":{"upload":"task_1.audio"},"language":null,"diarize":false,
            "num_speakers":null,"tag_audio_events":false,"multi_channel":false,"answer":{}}"#;
        let job: Job = serde_json::from_str(old).unwrap();
        assert_eq!((job.prompt, job.temperature, job.diarization_threshold), (None, None, None));
    }

    #[test]
    fn new_options_round_trip_and_unset_ones_are_not_written() {
        let job = Job {
            dialect: Dialect::Elevenlabs,
            audio: AudioSource::Url("https://example.com/a.mp3".to_owned()),
            language: None,
            diarize: true,
            num_speakers: None,
            tag_audio_events: true,
            multi_channel: false,
            prompt: Some("Harken, Scribe".to_owned()),
            temperature: None,
            diarization_threshold: Some(0.3),
            known_speakers: vec![KnownSpeakerReference { name: "Ann".to_owned(), audio_base64: "UklGRg==".to_owned() }],
            answer: serde_json::Value::Null,
        };
        let json = serde_json::to_string(&job).unwrap();
        assert!(!json.contains("temperature"), "{json}");
        assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), job);
    }
}
