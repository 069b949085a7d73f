//! The worker's pipeline for dialect tasks (ElevenLabs, OpenAI): read the [`Job`] from the task,
//! take the audio from the upload or the URL (both through the object store, see `audio`),
//! decode it (per channel when asked, or for speaker labels), charge, transcribe, and store a
//! [`JobResult`].

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;

use harken_engine::{KnownSpeaker, TranscribeOptions};
use harken_store::{StoreError, TaskRecord};
use harken_types::TaskState;

use super::{Progress, Stop, Worker};
use crate::jobs::{AudioSource, Job, JobResult, KnownSpeakerReference, MAX_CHANNELS};

impl Worker {
    pub(super) async fn run_job(&self, task: &TaskRecord, progress: &Arc<Progress>) -> Result<String, Stop> {
        let job: Job = serde_json::from_str(&task.param)
            .map_err(|e| Stop::internal("could not read the stored request (a bug or a newer version)", e))?;
        let scratch = tempfile::Builder::new()
            .prefix("task-")
            .tempdir_in(&self.work_dir)
            .map_err(|e| Stop::internal("could not create a download directory", e))?;
        let path = match &job.audio {
            AudioSource::Upload(name) => self.audio_from_request(name, scratch.path()).await?,
            AudioSource::Url(url) => self.audio_from_url(task, url, "cloud_storage_url", scratch.path()).await?.path,
        };
        let multi = job.multi_channel;
        // Speaker labels can use a voice per channel (harken_engine::transcribe_channels).
        let per_channel = multi || job.diarize;
        let decoded = tokio::task::spawn_blocking(move || harken_audio::decode_file_as(&path, per_channel))
            .await
            .map_err(|e| Stop::internal("the decoder crashed", e))?;
        let (channels, duration_s) = decoded.map_err(|e| match e {
            harken_audio::DecodeError::Io(io) => Stop::internal("could not read the audio", io),
            other => Stop::input(format!("file: {other}")),
        })?;
        let known_speakers = decode_known_speakers(&job.known_speakers, scratch.path()).await?;
        drop(scratch);
        if multi && channels.len() > MAX_CHANNELS {
            return Err(Stop::input(format!(
                "use_multi_channel: expected audio with at most {MAX_CHANNELS} channels, received {}",
                channels.len()
            )));
        }
        self.reserve_for(task, duration_s, if multi { channels.len() } else { 1 }).await?;
        progress.set(TaskState::Generating, 0);
        self.state.store.set_progress(&task.id, &self.id, TaskState::Generating, 0).await.map_err(Stop::from_store)?;
        let options = TranscribeOptions {
            language: job.language.clone(),
            diarize: job.diarize,
            num_speakers: job.num_speakers,
            tag_audio_events: job.tag_audio_events,
            prompt: job.prompt.clone(),
            temperature: job.temperature,
            diarization_threshold: job.diarization_threshold,
            known_speakers,
        };
        let transcripts = if multi {
            let n = channels.len() as f32;
            let mut transcripts = Vec::with_capacity(channels.len());
            for (i, samples) in channels.into_iter().enumerate() {
                let range = (i as f32 / n, (i + 1) as f32 / n);
                transcripts.push(self.transcribe(vec![samples], options.clone(), progress, range).await?);
            }
            transcripts
        } else {
            vec![self.transcribe(channels, options, progress, (0.0, 1.0)).await?]
        };
        serde_json::to_string(&JobResult { transcripts, audio_duration_secs: duration_s })
            .map_err(|e| Stop::internal("could not serialise the transcript", e))
    }

    /// Reserves the price of `channels` × `duration_s` of audio (each channel is transcribed).
    async fn reserve_for(&self, task: &TaskRecord, duration_s: f64, channels: usize) -> Result<(), Stop> {
        let billed = duration_s * channels.max(1) as f64;
        let cost = self.state.config.cost_of(billed);
        match self.state.store.reserve_credits(&task.id, &self.id, cost).await {
            Ok(()) => Ok(()),
            Err(StoreError::InsufficientCredits { available, .. }) => Err(Stop::Fail {
                code: "402",
                msg: format!(
                    "credits: the audio lasts {billed:.1} s (all channels) and costs {cost} credits at {} credits per minute, the key has {available} available",
                    self.state.config.credits_per_minute
                ),
            }),
            Err(other) => Err(Stop::from_store(other)),
        }
    }
}

/// The known speakers' reference recordings, decoded to 16 kHz mono like the task's audio.
async fn decode_known_speakers(references: &[KnownSpeakerReference], dir: &Path) -> Result<Vec<KnownSpeaker>, Stop> {
    let mut out = Vec::with_capacity(references.len());
    for (i, reference) in references.iter().enumerate() {
        let field = format!("known_speaker_references[{i}]");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&reference.audio_base64)
            .map_err(|e| Stop::internal("a stored speaker reference is not base64", e))?;
        let path = dir.join(format!("speaker-{i}"));
        tokio::fs::write(&path, bytes).await.map_err(|e| Stop::internal("could not store a speaker reference", e))?;
        let decoded = tokio::task::spawn_blocking(move || harken_audio::decode_file_as(&path, false))
            .await
            .map_err(|e| Stop::internal("the decoder crashed", e))?;
        let (mut channels, _) = decoded.map_err(|e| Stop::input(format!("{field}: {e}")))?;
        let samples = channels.pop().unwrap_or_default();
        out.push(KnownSpeaker { name: reference.name.clone(), samples: samples.into() });
    }
    Ok(out)
}
