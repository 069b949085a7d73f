//! `Blobs`: bytes every node must see, kept in an object store through the `object_store` crate:
//! a local directory by default (`<data dir>/files`), or any S3-compatible service
//! (`s3://bucket/optional/prefix`, credentials and region from the standard `AWS_*` environment
//! variables, an explicit endpoint for MinIO, Ceph, moto, ...).
//!
//! What lives here (keys are built by the server, see `harken-server`'s `files` module):
//! uploaded files (`uploads/<file id>`), the audio of ElevenLabs/OpenAI requests
//! (`requests/<task id>.audio`) and audio a worker downloaded, kept for a retry on another node
//! (`fetched/<task id>`).
//!
//! What must stay true:
//! - a key is visible to readers only once its whole content is written (object stores publish an
//!   object atomically at the end of the upload; the local store writes a temporary file and
//!   renames it): [`BlobWriter`] streams in and publishes on `finish`, and an unfinished writer is
//!   aborted, leaving nothing behind;
//! - memory stays bounded whatever the size: writes go out in parts of [`PART_BYTES`] (at most
//!   [`PARTS_IN_FLIGHT`] at once), reads are streams;
//! - keys are `/`-separated relative paths chosen by harken, never by a client: callers build
//!   them from ids; `..` and empty segments are refused.
//!
//! With several nodes the local directory only works when it is shared (NFS): use S3 otherwise.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let blobs = harken_store::blobs::Blobs::local(dir.path()).unwrap();
//! blobs.put("uploads/f1/a.wav", bytes::Bytes::from_static(b"RIFF")).await.unwrap();
//! assert_eq!(blobs.get("uploads/f1/a.wav").await.unwrap().unwrap().as_ref(), b"RIFF");
//! # });
//! ```

mod read;
mod write;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};

pub use read::{BlobRead, ByteStream};
pub use write::BlobWriter;

use crate::{Result, StoreError};

/// The folder of the data dir holding files when no object store URL is set.
pub const LOCAL_DIR: &str = "files";

/// Bytes per multipart part (S3's minimum part is 5 MiB); an object smaller than this is sent
/// with one plain PUT.
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one object uploaded at once: memory per upload stays near
/// `PART_BYTES * (PARTS_IN_FLIGHT + 1)`.
pub const PARTS_IN_FLIGHT: usize = 2;

/// One stored object, as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    /// Last modification, Unix milliseconds.
    pub modified_ms: i64,
}

/// A handle on the object store; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    describe: Arc<str>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("at", &self.describe).finish()
    }
}

impl Blobs {
    /// The configured store: `object_store_url` when given (`s3://bucket[/prefix]`, or
    /// `file:///abs/dir`), else `<data_dir>/files`.
    pub fn open(object_store_url: Option<&str>, s3_endpoint: Option<&str>, data_dir: &Path) -> Result<Self> {
        match object_store_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Self::local(&data_dir.join(LOCAL_DIR)),
            Some(url) => Self::from_url(url, s3_endpoint),
        }
    }

    /// Files under `dir` (created if missing).
    pub fn local(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Config(format!("creating the files directory {}: {e}", dir.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(Blobs { store: Arc::new(store), describe: format!("directory {}", dir.display()).into() })
    }

    /// `s3://bucket[/prefix]` (with `s3_endpoint` for S3-compatible services; plain `http://`
    /// endpoints are allowed since they are named explicitly) or `file:///dir`.
    pub fn from_url(url: &str, s3_endpoint: Option<&str>) -> Result<Self> {
        let bad = |why: &str| StoreError::Config(format!("--object-store-url: {why}, received {url:?}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("expected s3://bucket or file:///dir ({e})")))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|_| bad("expected an absolute file:/// path"))?;
                Self::local(&dir)
            }
            "s3" | "s3a" => {
                let bucket =
                    parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("expected a bucket name"))?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = s3_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                let s3 = builder.build()?;
                let prefix = parsed.path().trim_matches('/');
                let describe = match s3_endpoint {
                    Some(e) => format!("s3://{bucket}/{prefix} at {e}"),
                    None => format!("s3://{bucket}/{prefix}"),
                };
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, parse(prefix)?))
                };
                Ok(Blobs { store, describe: describe.into() })
            }
            other => Err(bad(&format!("unsupported scheme {other}: expected s3:// or file://"))),
        }
    }

    /// Where the files are, for logs (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store.put(&parse(key)?, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The whole object, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&parse(key)?).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `key`; removing a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&parse(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object whose key starts with the folder `prefix` (`""` for all), in no set order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { None } else { Some(parse(prefix)?) };
        let mut stream = self.store.list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta?;
            out.push(BlobMeta {
                key: meta.location.to_string(),
                size: meta.size,
                modified_ms: meta.last_modified.timestamp_millis(),
            });
        }
        Ok(out)
    }
}

/// A key as harken builds it: relative, `/`-separated, no empty, `.` or `..` segments.
pub(crate) fn parse(key: &str) -> Result<Key> {
    let bad = key.is_empty() || key.starts_with('/') || key.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(StoreError::Config(format!("blob key: expected a relative path like a/b.wav, received {key:?}")));
    }
    Key::parse(key).map_err(|e| StoreError::Blob(e.into()))
}

fn local_io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Blob(object_store::Error::Generic {
        store: "local file",
        source: format!("{}: {e}", path.display()).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(None, None, dir.path()).unwrap();
        assert!(dir.path().join(LOCAL_DIR).is_dir());
        blobs.put("uploads/a/x.wav", Bytes::from_static(b"abc")).await.unwrap();
        let src = dir.path().join("big.bin");
        std::fs::write(&src, vec![7u8; 3 * 1024 * 1024 + 5]).unwrap();
        assert_eq!(blobs.put_file("uploads/b/y.bin", &src).await.unwrap(), 3 * 1024 * 1024 + 5);
        assert_eq!(blobs.get("uploads/a/x.wav").await.unwrap().unwrap().as_ref(), b"abc");
        let out = dir.path().join("out.bin");
        assert_eq!(blobs.get_to_file("uploads/b/y.bin", &out).await.unwrap(), Some(3 * 1024 * 1024 + 5));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
        let mut keys: Vec<String> = blobs.list("uploads").await.unwrap().into_iter().map(|m| m.key).collect();
        keys.sort();
        assert_eq!(keys, ["uploads/a/x.wav", "uploads/b/y.bin"]);
        blobs.delete("uploads/a/x.wav").await.unwrap();
        blobs.delete("uploads/a/x.wav").await.unwrap();
        assert!(blobs.get("uploads/a/x.wav").await.unwrap().is_none());
        assert!(blobs.get_to_file("nope", &out).await.unwrap().is_none());
    }

    #[test]
    fn keys_and_urls_are_checked() {
        for bad in ["", "/abs", "a//b", "a/../b", "./a"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let err = Blobs::from_url("ftp://x", None).unwrap_err().to_string();
        assert!(err.contains("--object-store-url"), "{err}");
        assert!(Blobs::from_url("s3://", None).is_err());
    }
}
