//! The sweeper: deletes expired uploads, bytes first, then the row (a crash in between only
//! repeats the work on the next pass), and the audio of finished tasks that no worker deleted
//! (see `task_audio`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{task_audio, Files};
use crate::AppState;

/// Rows handled per store call.
const BATCH: u32 = 100;

/// Runs until `cancel`, every half TTL (at least every second, at most every 5 minutes).
pub(crate) async fn sweep_expired(state: AppState, cancel: CancellationToken) {
    let every = (state.files.ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(300));
    while !cancel.is_cancelled() {
        match sweep_once(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files.deleted = n, "deleted expired uploads"),
            Err(err) => tracing::error!(error = %err, "could not delete expired uploads"),
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match task_audio::sweep_finished(&state, now_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(blobs.deleted = n, "deleted the audio of finished tasks"),
            Err(err) => tracing::error!(error = %err, "could not delete the audio of finished tasks"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// One pass; returns how many files were deleted.
pub(crate) async fn sweep_once(state: &AppState) -> anyhow::Result<usize> {
    let mut deleted = 0;
    loop {
        let expired = state.store.expired_files(BATCH).await?;
        if expired.is_empty() {
            return Ok(deleted);
        }
        for file in &expired {
            state
                .files
                .blobs
                .delete(&Files::key_of(&file.id))
                .await
                .map_err(|e| anyhow::anyhow!("deleting the bytes of {}: {e}", file.id))?;
            state.store.delete_file(&file.id).await?;
            deleted += 1;
        }
    }
}
