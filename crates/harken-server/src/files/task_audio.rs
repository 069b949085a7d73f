//! The audio of tasks in the object store, so whichever node claims a task (first or after a
//! lease was reclaimed) can read it:
//! - `requests/<task id>.audio`: the file of an ElevenLabs/OpenAI request, stored by the API node
//!   before the task exists;
//! - `fetched/<task id>`: audio a worker downloaded from the task's URL, kept so a retry on
//!   another node reads it instead of downloading again (the URL may have expired, or answer
//!   differently).
//!
//! Both are deleted by the worker that records the task's end (success or failure). What a crash
//! or the lease reaper leaves behind, the sweeper deletes once the task is final
//! ([`sweep_finished`]).

use std::time::Duration;

use harken_store::blobs::Blobs;

use crate::AppState;

/// A request upload's object key.
pub(crate) fn request_key(name: &str) -> String {
    format!("requests/{name}")
}

/// The name of a task's request upload (under `requests/`).
pub(crate) fn request_name(task_id: &str) -> String {
    format!("{task_id}.audio")
}

/// The object key of the download kept for a task's retries.
pub(crate) fn fetched_key(task_id: &str) -> String {
    format!("fetched/{task_id}")
}

/// How long an object may exist without its task (a request upload is stored just before its
/// task is created; anything older without a task was left by a crash or a refused request).
const ORPHAN_AFTER: Duration = Duration::from_secs(3600);

/// Deletes a finished task's audio; failures are logged (the sweeper tries again later).
pub(crate) async fn forget(blobs: &Blobs, task_id: &str) {
    for key in [request_key(&request_name(task_id)), fetched_key(task_id)] {
        if let Err(err) = blobs.delete(&key).await {
            tracing::warn!(blob.key = %key, error = %err, "could not delete a finished task's audio");
        }
    }
}

/// One pass over the task audio: deletes the objects of final tasks, and of no task at all once
/// they are older than [`ORPHAN_AFTER`]. Returns how many were deleted.
pub(crate) async fn sweep_finished(state: &AppState, now_ms: i64) -> anyhow::Result<usize> {
    let blobs = &state.files.blobs;
    let mut deleted = 0;
    for folder in ["requests", "fetched"] {
        for object in blobs.list(folder).await? {
            let name = object.key.rsplit('/').next().unwrap_or_default();
            let task_id = name.strip_suffix(".audio").unwrap_or(name);
            let done = match state.store.task(task_id).await? {
                Some(task) => task.state.is_final(),
                None => now_ms - object.modified_ms > ORPHAN_AFTER.as_millis() as i64,
            };
            if done {
                blobs.delete(&object.key).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use harken_store::{NewKey, NewTask, SqliteStore, Store};

    use super::*;
    use crate::ServerConfig;

    fn b(s: &'static str) -> axum::body::Bytes {
        axum::body::Bytes::from_static(s.as_bytes())
    }

    #[tokio::test]
    async fn the_sweeper_deletes_audio_of_final_tasks_and_old_orphans_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open_dir(dir.path()).await.unwrap());
        let blobs = Blobs::local(&dir.path().join("files")).unwrap();
        let config = ServerConfig { data_dir: dir.path().into(), ..ServerConfig::default() };
        let state = AppState::new(store.clone(), config, "fake", blobs.clone());
        let key = store.create_key(NewKey { credits: harken_store::Credits::from_f64(5.0), ..Default::default() });
        let key = key.await.unwrap().key.id;
        let task = |id: &str| NewTask {
            id: id.to_owned(),
            key_id: key.clone(),
            model: "m".into(),
            param: "{}".into(),
            callback_url: None,
        };
        store.create_task(task("task_done")).await.unwrap();
        store.claim_next("w", Duration::from_secs(60)).await.unwrap().unwrap();
        store.finish_fail("task_done", "w", "422", "bad audio").await.unwrap();
        store.create_task(task("task_waiting")).await.unwrap();
        for k in ["requests/task_done.audio", "fetched/task_done", "requests/task_waiting.audio", "fetched/task_gone"] {
            blobs.put(k, b("x")).await.unwrap();
        }
        let now = blobs.list("").await.unwrap().iter().map(|m| m.modified_ms).max().unwrap();
        assert_eq!(sweep_finished(&state, now).await.unwrap(), 2, "the final task's two objects");
        let later = now + ORPHAN_AFTER.as_millis() as i64 + 1;
        assert_eq!(sweep_finished(&state, later).await.unwrap(), 1, "the object whose task never existed, once old");
        let left: Vec<String> = blobs.list("").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(left, ["requests/task_waiting.audio"], "a task still waiting keeps its audio");
    }
}
