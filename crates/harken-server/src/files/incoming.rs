//! An upload's bytes on their way in: streamed to a temporary file, counted against the cap,
//! sniffed, and moved into place only when complete. Dropping an [`Incoming`] deletes the file.

use std::path::Path;

use harken_audio::{AudioFormat, SNIFF_LEN};
use tokio::io::AsyncWriteExt as _;

use crate::ApiError;

/// Bytes being received.
#[derive(Debug)]
pub(crate) struct Incoming {
    part: tempfile::NamedTempFile,
    file: tokio::fs::File,
    head: Vec<u8>,
    size: u64,
    max_bytes: u64,
    /// The request field the bytes came in, named in refusals.
    field: &'static str,
}

/// A complete upload, still in its temporary place.
#[derive(Debug)]
pub(crate) struct Received {
    source: Source,
    pub size: u64,
    pub format: AudioFormat,
}

/// Where a complete upload waits; either is deleted on drop.
#[derive(Debug)]
enum Source {
    Part(tempfile::NamedTempFile),
    /// A `fileUrl` download: the fetcher already capped, checked and sniffed it.
    Fetched {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
}

impl Incoming {
    pub(crate) fn new(dir: &Path, field: &'static str, max_bytes: u64) -> std::io::Result<Incoming> {
        let part = tempfile::Builder::new().prefix(".harken-upload-").suffix(".part").tempfile_in(dir)?;
        let file = tokio::fs::File::from_std(part.reopen()?);
        Ok(Incoming { part, file, head: Vec::with_capacity(SNIFF_LEN), size: 0, max_bytes, field })
    }

    /// Appends a chunk; refuses once the total passes the cap.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(ApiError::BadRequest(format!(
                "{}: expected at most {} MB, received more",
                self.field,
                self.max_bytes / (1024 * 1024)
            )));
        }
        let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        self.file.write_all(chunk).await.map_err(|e| ApiError::Internal(anyhow::anyhow!("writing an upload: {e}")))
    }

    /// Checks the whole upload: not empty, and audio by content.
    pub(crate) async fn finish(mut self, declared: Option<&str>) -> Result<Received, ApiError> {
        if self.size == 0 {
            return Err(ApiError::BadRequest(format!(
                "{}: expected a non-empty audio file, received 0 bytes",
                self.field
            )));
        }
        let format = harken_audio::sniff(&self.head).ok_or_else(|| {
            let received = match declared.filter(|d| !d.is_empty() && *d != "application/octet-stream") {
                Some(d) => format!("content (declared {d}) that is not one of these"),
                None => "content that is not one of these".to_owned(),
            };
            ApiError::BadRequest(format!(
                "{}: expected audio (mp3, wav, aac, m4a/mp4, ogg vorbis/opus, flac or aiff), received {received}",
                self.field
            ))
        })?;
        self.file.flush().await.map_err(|e| ApiError::Internal(anyhow::anyhow!("writing an upload: {e}")))?;
        self.file.sync_all().await.map_err(|e| ApiError::Internal(anyhow::anyhow!("writing an upload: {e}")))?;
        Ok(Received { source: Source::Part(self.part), size: self.size, format })
    }
}

impl Received {
    /// Puts the bytes at `dest`: a hard link (the temporary name goes when `self` drops), or a
    /// copy across file systems. Nothing reads `dest` before its row exists.
    pub(crate) fn persist(&self, dest: &Path) -> std::io::Result<()> {
        let src = match &self.source {
            Source::Part(part) => part.path(),
            Source::Fetched { path, .. } => path.as_path(),
        };
        std::fs::hard_link(src, dest).or_else(|_| std::fs::copy(src, dest).map(|_| ()))
    }

    /// A file the SSRF-guarded fetcher downloaded into `dir`.
    pub(crate) fn fetched(dir: tempfile::TempDir, file: harken_audio::FetchedFile) -> Received {
        Received { source: Source::Fetched { _dir: dir, path: file.path }, size: file.bytes, format: file.format }
    }
}
