//! Uploaded files (Kie.ai's file API): where their bytes live, their download links, expiry.
//!
//! What must stay true:
//! - bytes stream to a temporary file and move into place only once complete, non-empty, within
//!   `--max-upload-mb` and sniffed as audio; the store row is written after the move, so a row
//!   always has bytes, and the sweeper deletes bytes before the row;
//! - a file's id (`file_<ulid>`, 80 random bits) is its download capability: `/files/{id}/{name}`
//!   is public like Kie's download links, and nothing lists files;
//! - only audio is accepted, and it is served with its sniffed type and `nosniff`, so an upload
//!   can never become a page on this origin (the web page keeps an API key in localStorage);
//! - an `audio_url` naming one of our download links is read from disk, not fetched over HTTP,
//!   so it works with private URLs refused (a server often cannot reach its own public name).
//!
//! Bytes sit in `<data dir>/files/uploads/<file id>`: the layout of the store's object-store
//! `Blobs` (key `uploads/<file id>`), so moving to S3 later changes no link.

mod incoming;
mod names;
mod sweep;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use harken_audio::{FetchError, FetchPolicy, FetchedFile, Fetcher};
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
    /// `<data dir>/files/uploads`.
    root: PathBuf,
    /// `<data dir>/tmp`: incoming bytes (emptied at every start).
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

/// Why an `audio_url` gave no audio file.
#[derive(Debug)]
pub(crate) enum SourceError {
    /// From the fetcher (its message names `audio_url`).
    Fetch(FetchError),
    /// One of our download links whose file is gone: the message says so.
    Gone(String),
    /// Reading our own copy failed: not the user's fault.
    Io(std::io::Error),
}

impl Files {
    pub(crate) fn new(config: &ServerConfig) -> Files {
        let max_bytes = config.max_upload_mb.saturating_mul(1024 * 1024);
        Files {
            root: config.data_dir.join("files").join("uploads"),
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

    /// Where a file's bytes are.
    pub(crate) fn path_of(&self, file_id: &str) -> PathBuf {
        self.root.join(file_id)
    }

    /// A new temporary file for an upload's bytes; refusals name `field`.
    pub(crate) fn incoming(&self, field: &'static str) -> Result<Incoming, ApiError> {
        std::fs::create_dir_all(&self.tmp).map_err(|e| internal(e, "creating the upload directory"))?;
        Incoming::new(&self.tmp, field, self.max_bytes).map_err(|e| internal(e, "creating an upload file"))
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

    /// Moves a complete upload into place and records it; returns the record.
    pub(crate) async fn keep(
        &self,
        state: &AppState,
        received: Received,
        meta: NewUpload,
    ) -> Result<FileRecord, ApiError> {
        let id = harken_store::new_id("file");
        std::fs::create_dir_all(&self.root).map_err(|e| internal(e, "creating the files directory"))?;
        let dest = self.path_of(&id);
        received.persist(&dest).map_err(|e| internal(e, "moving an upload into place"))?;
        let new = harken_store::NewFile {
            id: id.clone(),
            key_id: meta.key_id,
            file_name: meta.file_name.unwrap_or_else(|| generated_name(&id, received.format)),
            original_name: meta.original_name.unwrap_or_default(),
            upload_path: meta.upload_path,
            mime_type: received.format.mime().to_owned(),
            size_bytes: received.size,
            ttl: self.ttl,
        };
        let mut new = new;
        if new.original_name.is_empty() {
            new.original_name = new.file_name.clone();
        }
        match state.store.create_file(new).await {
            Ok(record) => Ok(record),
            Err(err) => {
                let _ = std::fs::remove_file(&dest);
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

    /// Puts the audio an `audio_url` names into `dir`: our own download links are read from
    /// disk, anything else goes through `fetcher`.
    pub(crate) async fn fetch_audio(
        &self,
        state: &AppState,
        fetcher: &Fetcher,
        audio_url: &str,
        dir: &Path,
    ) -> Result<FetchedFile, SourceError> {
        if let Some((id, name)) = url::Url::parse(audio_url.trim()).ok().as_ref().and_then(own_link) {
            let record = state.store.file(&id).await.map_err(|e| SourceError::Io(std::io::Error::other(e)))?;
            match record.filter(|r| r.file_name == name) {
                Some(record) => return self.local_copy(&record, dir).await,
                None if self.is_ours(audio_url) => {
                    return Err(SourceError::Gone(format!(
                        "audio_url: the uploaded file {id} has expired or does not exist (uploads are kept {}); upload it again",
                        human_duration(self.ttl)
                    )))
                }
                None => {}
            }
        }
        fetcher.fetch_to_file(audio_url, dir).await.map_err(SourceError::Fetch)
    }

    /// Links our copy into `dir` (a hard link: the sweeper may delete the original meanwhile).
    async fn local_copy(&self, record: &FileRecord, dir: &Path) -> Result<FetchedFile, SourceError> {
        let src = self.path_of(&record.id);
        let mut head = vec![0u8; harken_audio::SNIFF_LEN];
        let n = {
            use std::io::Read as _;
            let mut f = std::fs::File::open(&src).map_err(SourceError::Io)?;
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..]).map_err(SourceError::Io)? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        };
        let format = harken_audio::sniff(&head[..n])
            .ok_or_else(|| SourceError::Io(std::io::Error::other(format!("stored file {} is not audio", record.id))))?;
        let dest = dir.join(format!("audio.{}", format.extension()));
        if std::fs::hard_link(&src, &dest).is_err() {
            tokio::fs::copy(&src, &dest).await.map_err(SourceError::Io)?;
        }
        tracing::info!(file.id = %record.id, audio.bytes = record.size_bytes, "audio read from an uploaded file");
        Ok(FetchedFile { path: dest, bytes: record.size_bytes, content_type: Some(record.mime_type.clone()), format })
    }

    /// Whether a URL's origin is one this server handed out links under.
    fn is_ours(&self, audio_url: &str) -> bool {
        let Ok(url) = url::Url::parse(audio_url.trim()) else { return false };
        let origin = origin_of(&url);
        self.public_url.as_ref().is_some_and(|p| origin_of(p) == origin)
            || self.seen_origins.lock().expect("origins lock poisoned: a bug").contains(&origin)
    }
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
