//! An upload's bytes on their way in: streamed to the object store as they arrive, counted
//! against the cap, sniffed, and published under their key only when [`Received::publish`] is
//! called. Dropping an [`Incoming`] or [`Received`] before that aborts the upload: a refused
//! request leaves no bytes behind.

use axum::body::Bytes;
use harken_audio::{AudioFormat, FetchedFile, SNIFF_LEN};
use harken_store::blobs::{BlobWriter, Blobs};

use crate::ApiError;

/// Bytes being received.
#[derive(Debug)]
pub(crate) struct Incoming {
    id: String,
    writer: BlobWriter,
    head: Vec<u8>,
    size: u64,
    max_bytes: u64,
    /// The request field the bytes came in, named in refusals.
    field: &'static str,
    /// The content type the client declared, quoted when the content is refused.
    declared: Option<String>,
}

/// A complete upload, not yet published.
#[derive(Debug)]
pub(crate) struct Received {
    source: Source,
    pub size: u64,
    pub format: AudioFormat,
}

#[derive(Debug)]
enum Source {
    /// Streamed to the object store under `uploads/<id>`, waiting for `finish`.
    /// (Boxed: the writer is large next to the other variant.)
    Streamed { id: String, writer: Box<BlobWriter> },
    /// A `fileUrl` download on local disk: the fetcher already capped, checked and sniffed it.
    Fetched { _dir: tempfile::TempDir, path: std::path::PathBuf },
}

impl Incoming {
    pub(crate) fn new(id: String, writer: BlobWriter, field: &'static str, max_bytes: u64) -> Incoming {
        Incoming { id, writer, head: Vec::with_capacity(SNIFF_LEN), size: 0, max_bytes, field, declared: None }
    }

    /// Remembers the declared content type for refusal messages.
    pub(crate) fn declared(mut self, content_type: Option<&str>) -> Incoming {
        self.declared = content_type.map(str::to_owned);
        self
    }

    /// Appends a chunk; refuses once the total passes the cap, or as soon as the first bytes show
    /// the content is not audio (no need to receive the rest).
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(ApiError::BadRequest(format!(
                "{}: expected at most {} MB, received more",
                self.field,
                self.max_bytes / (1024 * 1024)
            )));
        }
        let had = self.head.len();
        let take = (SNIFF_LEN - had).min(chunk.len());
        self.head.extend_from_slice(&chunk[..take]);
        if had < SNIFF_LEN && self.head.len() == SNIFF_LEN {
            self.format()?;
        }
        self.writer.write(chunk).await.map_err(|e| ApiError::Internal(anyhow::anyhow!("writing an upload: {e}")))
    }

    /// Checks the whole upload: not empty, and audio by content.
    pub(crate) fn finish(self) -> Result<Received, ApiError> {
        if self.size == 0 {
            return Err(ApiError::BadRequest(format!(
                "{}: expected a non-empty audio file, received 0 bytes",
                self.field
            )));
        }
        let format = self.format()?;
        Ok(Received {
            source: Source::Streamed { id: self.id, writer: Box::new(self.writer) },
            size: self.size,
            format,
        })
    }

    fn format(&self) -> Result<AudioFormat, ApiError> {
        harken_audio::sniff(&self.head).ok_or_else(|| {
            let declared = self.declared.as_deref().filter(|d| !d.is_empty() && *d != "application/octet-stream");
            let received = match declared {
                Some(d) => format!("content (declared {d}) that is not one of these"),
                None => "content that is not one of these".to_owned(),
            };
            ApiError::BadRequest(format!(
                "{}: expected audio (mp3, wav, aac, m4a/mp4, ogg vorbis/opus, flac or aiff), received {received}",
                self.field
            ))
        })
    }
}

impl Received {
    /// A file the SSRF-guarded fetcher downloaded into `dir`.
    pub(crate) fn fetched(dir: tempfile::TempDir, file: FetchedFile) -> Received {
        Received { source: Source::Fetched { _dir: dir, path: file.path }, size: file.bytes, format: file.format }
    }

    /// Publishes the bytes under `uploads/<file id>`; returns the file id. Nothing reads the key
    /// before its row exists.
    pub(crate) async fn publish(self, blobs: &Blobs) -> harken_store::Result<String> {
        match self.source {
            Source::Streamed { id, writer } => {
                writer.finish().await?;
                Ok(id)
            }
            Source::Fetched { _dir, path } => {
                let id = harken_store::new_id("file");
                blobs.put_file(&super::Files::key_of(&id), &path).await?;
                Ok(id)
            }
        }
    }
}
