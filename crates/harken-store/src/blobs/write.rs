//! Writing: [`BlobWriter`] streams bytes to one key and publishes them only on
//! [`BlobWriter::finish`]. Small objects go out as one PUT, bigger ones as a multipart upload in
//! parts of [`PART_BYTES`] (object_store's `BufWriter` chooses), so a 200 MB upload never sits in
//! memory.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::buffered::BufWriter;
use object_store::ObjectStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{local_io, parse, Blobs, PARTS_IN_FLIGHT, PART_BYTES};
use crate::{Result, StoreError};

/// Bytes on their way to one key. Nothing is visible under the key before [`finish`]; a writer
/// dropped unfinished is aborted (a started multipart upload is cancelled in the background), so
/// refused or broken uploads leave nothing behind.
///
/// [`finish`]: BlobWriter::finish
pub struct BlobWriter {
    inner: Option<BufWriter>,
    key: String,
    written: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").field("key", &self.key).field("written", &self.written).finish()
    }
}

impl Blobs {
    /// Starts writing `key` (replacing what is there once finished).
    pub fn writer(&self, key: &str) -> Result<BlobWriter> {
        let path = parse(key)?;
        let inner = BufWriter::with_capacity(Arc::clone(&self.store) as Arc<dyn ObjectStore>, path, PART_BYTES)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        Ok(BlobWriter { inner: Some(inner), key: key.to_owned(), written: 0 })
    }

    /// Streams the local file at `path` to `key`; returns its size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let mut file = tokio::fs::File::open(path).await.map_err(|e| local_io(path, e))?;
        let mut writer = self.writer(key)?;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            let n = file.read(&mut buf).await.map_err(|e| local_io(path, e))?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            writer.write(Bytes::from(buf)).await?;
        }
        writer.finish().await
    }
}

impl BlobWriter {
    /// The key being written.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `bytes`; waits while [`PARTS_IN_FLIGHT`] parts are still uploading.
    pub async fn write(&mut self, bytes: Bytes) -> Result<()> {
        let len = bytes.len() as u64;
        self.inner_mut()?.put(bytes).await?;
        self.written += len;
        Ok(())
    }

    /// Publishes the object; returns its size.
    pub async fn finish(mut self) -> Result<u64> {
        let mut inner = self.inner.take().ok_or_else(finished)?;
        if let Err(e) = inner.shutdown().await {
            // The upload failed part-way: cancel what was sent.
            let _ = inner.abort().await;
            return Err(StoreError::Blob(object_store::Error::Generic {
                store: "object store",
                source: format!("finishing {}: {e}", self.key).into(),
            }));
        }
        Ok(self.written)
    }

    /// Cancels the upload: nothing becomes visible under the key.
    pub async fn abort(mut self) {
        if let Some(mut inner) = self.inner.take() {
            if let Err(e) = inner.abort().await {
                tracing::warn!(blob.key = %self.key, error = %e, "could not cancel an unfinished upload");
            }
        }
    }

    fn inner_mut(&mut self) -> Result<&mut BufWriter> {
        self.inner.as_mut().ok_or_else(finished)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else { return };
        // A plain PUT that never started needs nothing; a started multipart upload holds parts
        // on the server until cancelled. Drop cannot wait, so the cancel runs on the runtime.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let key = std::mem::take(&mut self.key);
            runtime.spawn(async move {
                if let Err(e) = inner.abort().await {
                    tracing::warn!(blob.key = %key, error = %e, "could not cancel an abandoned upload");
                }
            });
        }
    }
}

fn finished() -> StoreError {
    StoreError::Config("blob writer used after finish (a bug)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_publish_on_finish_and_vanish_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        // Bigger than a part: the multipart path.
        let mut w = blobs.writer("a/big").unwrap();
        let chunk = Bytes::from(vec![3u8; 1024 * 1024]);
        for _ in 0..(PART_BYTES / chunk.len() + 2) {
            w.write(chunk.clone()).await.unwrap();
        }
        assert!(blobs.get("a/big").await.unwrap().is_none(), "invisible before finish");
        let size = w.finish().await.unwrap();
        assert_eq!(size as usize, PART_BYTES + 2 * chunk.len());
        assert_eq!(blobs.get("a/big").await.unwrap().unwrap().len() as u64, size);

        let mut small = blobs.writer("a/small").unwrap();
        small.write(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(small.finish().await.unwrap(), 3);
        assert_eq!(blobs.get("a/small").await.unwrap().unwrap().as_ref(), b"abc");

        for key in ["b/dropped-small", "b/dropped-big", "b/aborted"] {
            let mut w = blobs.writer(key).unwrap();
            let n = if key.ends_with("small") { 1 } else { PART_BYTES / chunk.len() + 1 };
            for _ in 0..n {
                w.write(chunk.clone()).await.unwrap();
            }
            if key == "b/aborted" {
                w.abort().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(blobs.list("b").await.unwrap().is_empty(), "unfinished writes leave nothing");
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.iter().all(|p| !p.contains("/b/")), "no staging files left: {leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out
    }
}
