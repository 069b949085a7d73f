//! Workers: claim a waiting task, turn its audio into a transcript, record the outcome.
//!
//! What must stay true:
//! - a worker writes to a task only while it holds the lease; the lease is renewed in the
//!   background and, if lost (another node reclaimed the task), the work is abandoned unrecorded;
//! - every claimed task ends in `finish_success`, `finish_fail`, `release` (shutdown) or an
//!   abandoned lease that the reaper will reclaim: never silently dropped;
//! - a panic in the engine becomes a recorded failure, not a dead worker;
//! - a task's audio in the object store (request upload, download kept for retries) is deleted
//!   once the task is recorded final, never before: a retry elsewhere may still need it.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harken_audio::Fetcher;
use harken_engine::{EngineError, SpeechEngine, TranscribeOptions};
use harken_store::{StoreError, TaskRecord};
use harken_types::TaskState;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::files::task_audio;
use crate::metrics::Finished;
use crate::AppState;

mod audio;
mod job;

pub(crate) struct Worker {
    pub(crate) id: String,
    pub(crate) state: AppState,
    pub(crate) engine: Arc<dyn SpeechEngine>,
    pub(crate) fetcher: Fetcher,
    pub(crate) work_dir: PathBuf,
    pub(crate) cancel: CancellationToken,
}

/// Why the pipeline stopped short of a transcript.
enum Stop {
    /// Record the task as failed with this failCode and failMsg.
    Fail { code: &'static str, msg: String },
    /// The lease is gone: someone else owns the task now; record nothing.
    Abandon(String),
}

impl Stop {
    fn input(msg: impl Into<String>) -> Self {
        Stop::Fail { code: "422", msg: msg.into() }
    }
    fn internal(what: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{what}");
        Stop::Fail { code: "500", msg: format!("server error: {what}; try again later") }
    }
    fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::LeaseLost { .. } => Stop::Abandon(err.to_string()),
            other => Stop::internal("could not update the task", other),
        }
    }
}

/// The task's current state and progress, written by the pipeline and flushed by the lease keeper.
#[derive(Debug)]
struct Progress(Mutex<(TaskState, u8)>);

impl Progress {
    fn set(&self, state: TaskState, pct: u8) {
        *self.0.lock().expect("progress lock poisoned: a bug") = (state, pct.min(99));
    }
    fn get(&self) -> (TaskState, u8) {
        *self.0.lock().expect("progress lock poisoned: a bug")
    }
}

impl Worker {
    pub(crate) async fn run(self) {
        let poll = Duration::from_secs(1);
        while !self.cancel.is_cancelled() {
            // Subscribe before querying: a task announced between an empty claim and the wait
            // below still wakes this worker (the store's LISTEN feeds `task_added` too).
            let added = self.state.task_added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            match self.state.store.claim_next(&self.id, self.state.config.lease()).await {
                Ok(Some(task)) => {
                    let span =
                        tracing::info_span!("task", task.id = %task.id, key.id = %task.key_id, worker = %self.id);
                    self.process(task).instrument(span).await;
                }
                Ok(None) => tokio::select! {
                    _ = added => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.cancel.cancelled() => {}
                },
                Err(err) => {
                    tracing::error!(error = %err, worker = %self.id, "could not claim a task");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    async fn process(&self, task: TaskRecord) {
        let started = std::time::Instant::now();
        let _busy = self.state.metrics.task_started();
        tracing::info!(attempt = task.attempts, "task claimed");
        let progress = Arc::new(Progress(Mutex::new((TaskState::Queuing, 0))));
        let lost = CancellationToken::new();
        let keeper_stop = CancellationToken::new();
        let keeper = tokio::spawn(keep_lease(
            self.state.clone(),
            task.id.clone(),
            self.id.clone(),
            progress.clone(),
            lost.clone(),
            keeper_stop.clone(),
        ));
        let outcome = tokio::select! {
            r = self.pipeline(&task, &progress) => Some(r),
            _ = lost.cancelled() => Some(Err(Stop::Abandon("the lease was lost".to_owned()))),
            _ = self.cancel.cancelled() => None,
        };
        keeper_stop.cancel();
        let _ = keeper.await;
        let store = &self.state.store;
        let (finished, recorded) = match outcome {
            None => {
                tracing::info!("shutting down: task released back to the queue");
                (Finished::Released, store.release(&task.id, &self.id).await.map(|_| None))
            }
            Some(Ok(result_json)) => {
                (Finished::Success, store.finish_success(&task.id, &self.id, &result_json).await.map(Some))
            }
            Some(Err(Stop::Fail { code, msg })) => {
                tracing::info!(fail.code = code, fail.msg = %msg, "task failed");
                (Finished::Fail, store.finish_fail(&task.id, &self.id, code, &msg).await.map(Some))
            }
            Some(Err(Stop::Abandon(why))) => {
                tracing::warn!(reason = %why, "task abandoned: another worker owns it now");
                (Finished::Abandoned, Ok(None))
            }
        };
        if recorded.is_ok() {
            self.state.metrics.task_finished(finished, started.elapsed());
        }
        match recorded {
            Ok(Some(done)) => {
                tracing::info!(state = done.state.as_str(), credits.charged = %done.credits_consumed, elapsed_ms = started.elapsed().as_millis() as u64, "task finished");
                if done.callback_url.is_some() {
                    self.state.callback_added.notify_one();
                }
                // The task is final: no attempt will read its audio again.
                task_audio::forget(&self.state.files.blobs, &task.id).await;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "could not record the task's outcome; its lease will expire and it will be retried")
            }
        }
    }

    async fn pipeline(&self, task: &TaskRecord, progress: &Arc<Progress>) -> Result<String, Stop> {
        if crate::jobs::Dialect::of(task).is_some() {
            return self.run_job(task, progress).await;
        }
        let valid = crate::parse_create_task(task.param.as_bytes()).map_err(|e| Stop::input(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("task-")
            .tempdir_in(&self.work_dir)
            .map_err(|e| Stop::internal("could not create a download directory", e))?;
        let fetched = self.audio_from_url(task, &valid.audio_url, "audio_url", dir.path()).await?;
        tracing::debug!(audio.bytes = fetched.bytes, audio.format = fetched.format.name(), "audio downloaded");
        let path = fetched.path.clone();
        // Speaker labels can use a voice per channel (harken_engine::transcribe_channels).
        let per_channel = valid.diarize;
        let (channels, duration_s) = tokio::task::spawn_blocking(move || harken_audio::decode_file_as(&path, per_channel))
            .await
            .map_err(|e| Stop::internal("the decoder crashed", e))?
            .map_err(|e| match e {
                harken_audio::DecodeError::Io(io) => Stop::internal("could not read the downloaded audio", io),
                other => Stop::input(format!("audio_url: {other}")),
            })?;
        drop(dir);
        let cost = self.state.config.cost_of(duration_s);
        match self.state.store.reserve_credits(&task.id, &self.id, cost).await {
            Ok(()) => {}
            Err(StoreError::InsufficientCredits { available, .. }) => {
                return Err(Stop::Fail {
                    code: "402",
                    msg: format!(
                        "credits: the audio lasts {:.1} s and costs {cost} credits at {} credits per minute, the key has {available} available",
                        duration_s, self.state.config.credits_per_minute
                    ),
                })
            }
            Err(other) => return Err(Stop::from_store(other)),
        }
        progress.set(TaskState::Generating, 0);
        self.state.store.set_progress(&task.id, &self.id, TaskState::Generating, 0).await.map_err(Stop::from_store)?;
        let options = TranscribeOptions {
            language: valid.language.map(str::to_owned),
            diarize: valid.diarize,
            num_speakers: None,
            tag_audio_events: valid.tag_audio_events,
            ..TranscribeOptions::default()
        };
        let transcript = self.transcribe(channels, options, progress, (0.0, 1.0)).await?;
        serde_json::to_string(&serde_json::json!({ "resultObject": transcript }))
            .map_err(|e| Stop::internal("could not serialise the transcript", e))
    }

    /// Runs the engine on a blocking thread over the recording's `channels` (one signal, or one
    /// per channel: see `harken_engine::transcribe_channels`), reporting progress within `range`
    /// (a fraction of the whole task); a panic becomes a recorded failure.
    async fn transcribe(
        &self,
        channels: Vec<Vec<f32>>,
        options: TranscribeOptions,
        progress: &Arc<Progress>,
        range: (f32, f32),
    ) -> Result<harken_types::Transcript, Stop> {
        let (engine, p, span) = (self.engine.clone(), progress.clone(), tracing::Span::current());
        let joined = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let report = |f: f32| {
                let f = range.0 + f.clamp(0.0, 1.0) * (range.1 - range.0);
                p.set(TaskState::Generating, (f * 99.0) as u8)
            };
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                harken_engine::transcribe_channels(engine.as_ref(), &channels, &options, &report)
            }))
        })
        .await
        .map_err(|e| Stop::internal("the transcription thread failed", e))?;
        match joined {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(EngineError::Invalid(msg))) => Err(Stop::input(msg)),
            Ok(Err(err)) => Err(Stop::Fail { code: "500", msg: format!("transcription failed: {err}") }),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(panic = %what, "the engine panicked");
                Err(Stop::Fail {
                    code: "500",
                    msg: "transcription failed: the engine crashed on this audio (a bug in harken)".to_owned(),
                })
            }
        }
    }
}

/// Renews the lease and flushes progress until `stop`; cancels `lost` if the lease is gone.
async fn keep_lease(
    state: AppState,
    task_id: String,
    owner: String,
    progress: Arc<Progress>,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let lease = state.config.lease();
    let tick = Duration::from_secs(1).min(lease / 3);
    let mut written = progress.get();
    let mut last_beat = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = progress.get();
        let result = if now != written {
            written = now;
            state.store.set_progress(&task_id, &owner, now.0, now.1).await
        } else {
            Ok(())
        };
        let result = match result {
            Ok(()) if last_beat.elapsed() >= lease / 3 => {
                last_beat = tokio::time::Instant::now();
                state.store.heartbeat(&task_id, &owner, lease).await
            }
            other => other,
        };
        match result {
            Ok(()) => {}
            Err(StoreError::LeaseLost { .. }) if !stop.is_cancelled() => {
                lost.cancel();
                return;
            }
            Err(err) => tracing::warn!(error = %err, "could not renew the lease; retrying"),
        }
    }
}
