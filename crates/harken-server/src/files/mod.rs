//! Uploaded files (Kie.ai's file API): where their bytes live, their download links, expiry.
//!
//! Bytes live in the object store (`harken_store::blobs::Blobs`: `<data dir>/files` by default,
//! S3 with `--object-store-url`) under `uploads/<file id>`, so any node can serve a link or read
//! a file as `audio_url`, whichever node received it.
//!
//! What must stay true:
//! - bytes stream into the object store as they arrive and are published only once complete,
//!   non-empty, within `--max-upload-mb` and sniffed as audio (a refused upload is aborted and
//!   leaves nothing); the store row is written after the bytes, so a row always has bytes, and the
//!   sweeper deletes bytes before the row;
//! - a file's id (`file_<ulid>`, 80 random bits) is its download capability: `/files/{id}/{name}`
//!   is public like Kie's download links, and nothing lists files;
//! - only audio is accepted, and it is served with its sniffed type and `nosniff`, so an upload
//!   can never become a page on this origin (the web page keeps an API key in localStorage);
//! - an `audio_url` naming one of our download links is read from the object store, not fetched
//!   over HTTP, so it works with private URLs refused (a server often cannot reach its own public
//!   name).
//!
//! The same object store holds the audio of tasks (`task_audio`): ElevenLabs/OpenAI request
//! uploads and downloads kept for a retry; the sweeper removes those of finished tasks.

mod incoming;
mod names;
mod sweep;
pub(crate) mod task_audio;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use harken_audio::{AudioFormat, FetchError, FetchPolicy, FetchedFile, Fetcher};
use harken_store::blobs::Blobs;
use harken_store::FileRecord;

pub(crate) use incoming::{Incoming, Received};
pub(crate) use names::{human_duration, iso8601_ms, original_name_of_url, sanitize_file_name};
pub(crate) use sweep::sweep_expired;

use crate::{ApiError, AppState, ServerConfig};

/// Most distinct origins remembered from upload requests (they come from Host headers).
const MAX_SEEN_ORIGINS: usize = 64;

/// The uploaded-file service shared by the upload and download routes, the worker and the sweeper.
#[derive(Debug)]
pub(crate) struct Files {
    /// The object store: uploads, request audio, downloads kept for retries.
    pub(crate) blobs: Blobs,
    /// `<data dir>/tmp`: `fileUrl` downloads on their way to the object store.
    tmp: PathBuf,
    pub(crate) ttl: Duration,
    pub(crate) max_bytes: u64,
    public_url: Option<url::Url>,
    /// `host:port` of the links handed out, so an expired link is recognised as ours.
    seen_origins: Mutex<HashSet<String>>,
    /// The guarded client for `fileUrl` uploads, built on first use.
    fetcher: OnceLock<Fetcher>,
    fetch_policy: FetchPolicy,
}

/// Why stored audio could not be read.
#[derive(Debug)]
pub(crate) enum SourceError {
    /// One of our download links whose file is gone: the message says so.
    Gone(String),
    /// Reading our own copy failed: not the user's fault.
    Io(std::io::Error),
}

impl Files {
    pub(crate) fn new(config: &ServerConfig, blobs: Blobs) -> Files {
        let max_bytes = config.max_upload_mb.saturating_mul(1024 * 1024);
        Files {
            blobs,
            tmp: config.data_dir.join("tmp"),
            ttl: config.file_ttl,
            max_bytes,
            public_url: config.public_url.as_deref().and_then(|u| url::Url::parse(u).ok()),
            seen_origins: Mutex::new(HashSet::new()),
            fetcher: OnceLock::new(),
            fetch_policy: FetchPolicy {
                max_bytes,
                total_timeout: Duration::from_secs(config.download_timeout_secs),
                allow_private: config.allow_private_urls,
                ..FetchPolicy::default()
            },
        }
    }

    /// The object key of an uploaded file's bytes.
    pub(crate) fn key_of(file_id: &str) -> String {
        format!("uploads/{file_id}")
    }

    /// A new upload streaming into the object store under a new file id; refusals name `field`.
    pub(crate) fn incoming(&self, field: &'static str) -> Result<Incoming, ApiError> {
        let id = harken_store::new_id("file");
        let writer = self.blobs.writer(&Self::key_of(&id)).map_err(|e| internal(e, "starting an upload"))?;
        Ok(Incoming::new(id, writer, field, self.max_bytes))
    }

    /// Downloads `url` (a `fileUrl` upload) through the SSRF-guarded client into a temporary
    /// directory; refusals name `fileUrl`.
    pub(crate) async fn fetch_upload(&self, url: &str) -> Result<(tempfile::TempDir, FetchedFile), ApiError> {
        let fetcher = match self.fetcher.get() {
            Some(f) => f,
            None => {
                let built =
                    Fetcher::new(self.fetch_policy.clone()).map_err(|e| internal(e, "building the download client"))?;
                self.fetcher.get_or_init(|| built)
            }
        };
        std::fs::create_dir_all(&self.tmp).map_err(|e| internal(e, "creating the upload directory"))?;
        let dir = tempfile::Builder::new()
            .prefix("upload-")
            .tempdir_in(&self.tmp)
            .map_err(|e| internal(e, "creating a download directory"))?;
        match fetcher.fetch_to_file(url, dir.path()).await {
            Ok(fetched) => Ok((dir, fetched)),
            Err(e @ (FetchError::Storage(_) | FetchError::Client(_))) => Err(internal(e, "downloading fileUrl")),
            // The fetcher speaks of `audio_url`, the field of createTask; here the field is fileUrl.
            Err(e) => Err(ApiError::BadRequest(e.to_string().replacen("audio_url:", "fileUrl:", 1))),
        }
    }

    /// Publishes a complete upload's bytes and records it; returns the record.
    pub(crate) async fn keep(
        &self,
        state: &AppState,
        received: Received,
        meta: NewUpload,
    ) -> Result<FileRecord, ApiError> {
        let (size, format) = (received.size, received.format);
        let id = received.publish(&self.blobs).await.map_err(|e| internal(e, "storing an upload"))?;
        let new = harken_store::NewFile {
            id: id.clone(),
            key_id: meta.key_id,
            file_name: meta.file_name.unwrap_or_else(|| generated_name(&id, format)),
            original_name: meta.original_name.unwrap_or_default(),
            upload_path: meta.upload_path,
            mime_type: format.mime().to_owned(),
            size_bytes: size,
            ttl: self.ttl,
        };
        let mut new = new;
        if new.original_name.is_empty() {
            new.original_name = new.file_name.clone();
        }
        match state.store.create_file(new).await {
            Ok(record) => Ok(record),
            Err(err) => {
                let _ = self.blobs.delete(&Self::key_of(&id)).await;
                Err(err.into())
            }
        }
    }

    /// The base of download links for a request: `--public-url`, else the request's own origin
    /// (remembered, so an expired link is still recognised as ours).
    pub(crate) fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(public) = &self.public_url {
            return public.as_str().trim_end_matches('/').to_owned();
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let host = header("x-forwarded-host").or_else(|| header("host")).unwrap_or_else(|| "localhost".to_owned());
        let scheme =
            header("x-forwarded-proto").filter(|p| p == "https" || p == "http").unwrap_or_else(|| "http".to_owned());
        let base = format!("{scheme}://{host}");
        if let Ok(url) = url::Url::parse(&base) {
            let mut seen = self.seen_origins.lock().expect("origins lock poisoned: a bug");
            if seen.len() < MAX_SEEN_ORIGINS {
                seen.insert(origin_of(&url));
            }
        }
        base
    }

    /// `…/files/{id}/{name}`, the name percent-encoded.
    pub(crate) fn download_url(base: &str, record: &FileRecord) -> String {
        let name = percent_encoding::utf8_percent_encode(&record.file_name, percent_encoding::NON_ALPHANUMERIC);
        format!("{base}/files/{}/{name}", record.id)
    }

    /// The uploaded file an `audio_url` names, when it is one of our download links: `Ok(None)`
    /// for any other URL, `Gone` when it is ours but the file expired.
    pub(crate) async fn own_upload(
        &self,
        state: &AppState,
        audio_url: &str,
    ) -> Result<Option<FileRecord>, SourceError> {
        let Some((id, name)) = url::Url::parse(audio_url.trim()).ok().as_ref().and_then(own_link) else {
            return Ok(None);
        };
        let record = state.store.file(&id).await.map_err(|e| SourceError::Io(std::io::Error::other(e)))?;
        match record.filter(|r| r.file_name == name) {
            Some(record) => Ok(Some(record)),
            None if self.is_ours(audio_url) => Err(self.gone(&id)),
            None => Ok(None),
        }
    }

    /// Copies an uploaded file's bytes from the object store into `dir`.
    pub(crate) async fn copy_upload(&self, record: &FileRecord, dir: &Path) -> Result<FetchedFile, SourceError> {
        // The sweeper may have deleted the bytes since the row was read.
        let fetched =
            copy_blob(&self.blobs, &Self::key_of(&record.id), dir).await?.ok_or_else(|| self.gone(&record.id))?;
        tracing::info!(file.id = %record.id, audio.bytes = fetched.bytes, "audio read from an uploaded file");
        Ok(FetchedFile { content_type: Some(record.mime_type.clone()), ..fetched })
    }

    fn gone(&self, id: &str) -> SourceError {
        SourceError::Gone(format!(
            "audio_url: the uploaded file {id} has expired or does not exist (uploads are kept {}); upload it again",
            human_duration(self.ttl)
        ))
    }

    /// Whether a URL's origin is one this server handed out links under.
    fn is_ours(&self, audio_url: &str) -> bool {
        let Ok(url) = url::Url::parse(audio_url.trim()) else { return false };
        let origin = origin_of(&url);
        self.public_url.as_ref().is_some_and(|p| origin_of(p) == origin)
            || self.seen_origins.lock().expect("origins lock poisoned: a bug").contains(&origin)
    }
}

/// Streams the object `key` into `dir` as `audio.<extension of its sniffed format>`; `None` when
/// there is no such object.
pub(crate) async fn copy_blob(blobs: &Blobs, key: &str, dir: &Path) -> Result<Option<FetchedFile>, SourceError> {
    let part = dir.join("audio.part");
    let io = |e: harken_store::StoreError| SourceError::Io(std::io::Error::other(e));
    let Some(bytes) = blobs.get_to_file(key, &part).await.map_err(io)? else { return Ok(None) };
    let format = sniff_file(&part).map_err(SourceError::Io)?.ok_or_else(|| {
        SourceError::Io(std::io::Error::other(format!("the stored object {key} is not audio (a bug)")))
    })?;
    let path = dir.join(format!("audio.{}", format.extension()));
    tokio::fs::rename(&part, &path).await.map_err(SourceError::Io)?;
    Ok(Some(FetchedFile { path, bytes, content_type: None, format }))
}

/// The audio format of a local file, by content.
pub(crate) fn sniff_file(path: &Path) -> std::io::Result<Option<AudioFormat>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(harken_audio::SNIFF_LEN);
    std::fs::File::open(path)?.take(harken_audio::SNIFF_LEN as u64).read_to_end(&mut head)?;
    Ok(harken_audio::sniff(&head))
}

/// What an upload says about itself.
#[derive(Debug)]
pub(crate) struct NewUpload {
    pub key_id: String,
    pub upload_path: String,
    /// Sanitised `fileName`, if given (else the original name, else generated).
    pub file_name: Option<String>,
    pub original_name: Option<String>,
}

/// `(file id, name)` when the URL's path is one of our download links: `/files/file_<ulid>/<name>`.
pub(crate) fn own_link(url: &url::Url) -> Option<(String, String)> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut segments = url.path_segments()?;
    let (Some("files"), Some(id), Some(name), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return None;
    };
    if !is_file_id(id) {
        return None;
    }
    let name = percent_encoding::percent_decode_str(name).decode_utf8().ok()?.into_owned();
    Some((id.to_owned(), name))
}

/// `file_` + 26 Crockford base32 characters.
pub(crate) fn is_file_id(id: &str) -> bool {
    id.strip_prefix("file_").is_some_and(|rest| {
        rest.len() == 26
            && rest.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
    })
}

fn origin_of(url: &url::Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or_default().to_ascii_lowercase(), url.port_or_known_default().unwrap_or(0))
}

fn generated_name(id: &str, format: harken_audio::AudioFormat) -> String {
    let short: String = id.trim_start_matches("file_").chars().rev().take(12).collect::<String>().to_ascii_lowercase();
    format!("{short}.{}", format.extension())
}

fn internal(err: impl std::fmt::Display, what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_links_are_recognised_by_shape() {
        let id = harken_store::new_id("file");
        let url = url::Url::parse(&format!("http://h:1/files/{id}/my%20talk.wav")).unwrap();
        assert_eq!(own_link(&url), Some((id.clone(), "my talk.wav".to_owned())));
        for other in [
            format!("http://h/files/{id}"),
            format!("http://h/files/{id}/a/b"),
            "http://h/files/file_x/a.wav".to_owned(),
            format!("http://h/other/{id}/a.wav"),
        ] {
            assert_eq!(own_link(&url::Url::parse(&other).unwrap()), None, "{other}");
        }
    }
}
