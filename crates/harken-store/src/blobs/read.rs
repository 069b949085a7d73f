//! Reading: whole objects or byte ranges as streams (download links serve ranges, players seek),
//! or streamed into a local file (the decoder needs a file).

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use object_store::{GetOptions, GetRange};
use tokio::io::AsyncWriteExt as _;

use super::{local_io, parse, Blobs};
use crate::Result;

/// An object's bytes as they arrive.
pub type ByteStream = BoxStream<'static, std::result::Result<Bytes, object_store::Error>>;

/// An object being read.
pub struct BlobRead {
    /// The whole object's size.
    pub size: u64,
    /// The bytes this read returns (the whole object unless a range was asked for).
    pub range: Range<u64>,
    pub stream: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead").field("size", &self.size).field("range", &self.range).finish_non_exhaustive()
    }
}

impl Blobs {
    /// Streams the object, or the bytes `range` of it (non-empty, starting inside the object;
    /// an end past the object is cut to it); `None` when there is no such object.
    pub async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<BlobRead>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        match self.store.get_opts(&parse(key)?, options).await {
            Ok(got) => Ok(Some(BlobRead { size: got.meta.size, range: got.range.clone(), stream: got.into_stream() })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the object into a new file at `path`; its size, or `None` when there is none.
    pub async fn get_to_file(&self, key: &str, path: &Path) -> Result<Option<u64>> {
        let Some(read) = self.read(key, None).await? else { return Ok(None) };
        let mut file = tokio::fs::File::create(path).await.map_err(|e| local_io(path, e))?;
        let mut stream = read.stream;
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(|e| local_io(path, e))?;
            total += chunk.len() as u64;
        }
        file.flush().await.map_err(|e| local_io(path, e))?;
        Ok(Some(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ranges_read_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        blobs.put("k/x", Bytes::from_static(b"0123456789")).await.unwrap();
        let collect = |r: BlobRead| async move {
            let parts: Vec<Bytes> = r.stream.map(|c| c.unwrap()).collect().await;
            parts.concat()
        };
        let whole = blobs.read("k/x", None).await.unwrap().unwrap();
        assert_eq!((whole.size, whole.range.clone()), (10, 0..10));
        assert_eq!(collect(whole).await, b"0123456789");
        let part = blobs.read("k/x", Some(2..5)).await.unwrap().unwrap();
        assert_eq!((part.size, part.range.clone()), (10, 2..5));
        assert_eq!(collect(part).await, b"234");
        assert!(blobs.read("k/none", None).await.unwrap().is_none());
    }
}
