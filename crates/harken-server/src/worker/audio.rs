//! Getting a task's audio into the worker's scratch directory, from wherever it is: the object
//! store (a request upload, one of our uploaded files, or a download an earlier attempt kept) or
//! the task's URL.
//!
//! A download is kept in the object store under the task (`fetched/<task id>`) before the work
//! goes on, unless this is the task's last allowed attempt: if this node dies or shuts down, the
//! node that takes the task over reads the same bytes instead of downloading again. The copy is
//! deleted when the task ends (`Worker::process`), or by the sweeper.

use std::path::{Path, PathBuf};

use harken_audio::{FetchError, FetchedFile};
use harken_store::TaskRecord;

use super::{Stop, Worker};
use crate::files::{copy_blob, task_audio, SourceError};

impl Worker {
    /// The audio an `audio_url` (or another URL field, named in messages) points at: our own
    /// upload, the copy kept by an earlier attempt, or a download.
    pub(super) async fn audio_from_url(
        &self,
        task: &TaskRecord,
        url: &str,
        field: &str,
        dir: &Path,
    ) -> Result<FetchedFile, Stop> {
        let files = &self.state.files;
        // Our download links also work as ElevenLabs' cloud_storage_url: a file uploaded with the
        // Kie file API, transcribed through the ElevenLabs SDK.
        let own = |e: SourceError| match e {
            SourceError::Gone(msg) => SourceError::Gone(msg.replacen("audio_url:", &format!("{field}:"), 1)),
            other => other,
        };
        if matches!(field, "audio_url" | "cloud_storage_url") {
            if let Some(record) = files.own_upload(&self.state, url).await.map_err(own).map_err(source_stop)? {
                return files.copy_upload(&record, dir).await.map_err(own).map_err(source_stop);
            }
        }
        // Looked for on every claim, not only retries: a task released at shutdown comes back
        // with its attempt count unchanged, and its copy is there all the same.
        let kept = task_audio::fetched_key(&task.id);
        if let Some(fetched) = copy_blob(&files.blobs, &kept, dir).await.map_err(source_stop)? {
            tracing::info!(audio.bytes = fetched.bytes, "audio read from the copy an earlier attempt kept");
            return Ok(fetched);
        }
        let fetched = self.fetcher.fetch_to_file(url, dir).await.map_err(|e| match e {
            FetchError::Storage(_) | FetchError::Client(_) => Stop::internal("could not download the audio", e),
            // The fetcher's messages name audio_url, the Kie field.
            user_facing => Stop::input(user_facing.to_string().replacen("audio_url:", &format!("{field}:"), 1)),
        })?;
        if task.attempts < self.state.config.max_attempts {
            // Losing the copy only costs a retry a second download: not worth failing the task.
            if let Err(err) = files.blobs.put_file(&kept, &fetched.path).await {
                tracing::warn!(error = %err, "could not keep the downloaded audio for a retry");
            }
        }
        Ok(fetched)
    }

    /// The file of an ElevenLabs/OpenAI request, stored by the API node that received it. It was
    /// not sniffed on the way in: the decoder judges it (and names `file` if it is not audio).
    pub(super) async fn audio_from_request(&self, name: &str, dir: &Path) -> Result<PathBuf, Stop> {
        let path = dir.join("request.audio");
        let key = task_audio::request_key(name);
        match self.state.files.blobs.get_to_file(&key, &path).await {
            Ok(Some(_)) => Ok(path),
            Ok(None) => Err(Stop::input("file: the uploaded audio is no longer stored; send the request again")),
            Err(err) => Err(Stop::internal("could not read the uploaded audio", err)),
        }
    }
}

fn source_stop(err: SourceError) -> Stop {
    match err {
        SourceError::Gone(msg) => Stop::input(msg),
        SourceError::Io(e) => Stop::internal("could not read stored audio", e),
    }
}
