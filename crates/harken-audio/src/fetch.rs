//! Downloading user-supplied audio URLs, safely.
//!
//! Owns [`Fetcher`] (one reqwest client, built once), [`FetchPolicy`], [`FetchedFile`] and
//! [`FetchError`].
//!
//! Invariants:
//! - every connection goes through the SSRF guard (`guard.rs`): names are checked after DNS
//!   resolution by the client's resolver (so redirects and DNS rebinding are covered), literal IP
//!   hosts before the first request and in the redirect policy; environment proxies are ignored,
//!   because a proxy would resolve names where we cannot check them;
//! - a download never exceeds `max_bytes` on disk (checked against Content-Length up front and
//!   while streaming), never waits more than `read_timeout` for the next bytes nor more than
//!   `total_timeout` overall, and follows at most `max_redirects` redirects;
//! - the body streams to a temporary file in the caller's directory and is renamed into place
//!   only when complete, non-empty and sniffed as supported audio; on any failure (or if the
//!   future is dropped) the temporary file is removed;
//! - messages never contain the URL's path or query string (signed URLs are secrets); the host is
//!   fine. Nothing here logs the URL either.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use url::{Host, Url};

use crate::guard::{check_ip, GuardedResolver, Refused};
use crate::sniff::{classify, AudioFormat, Content, SNIFF_LEN};

/// Limits for one download. The defaults follow the public API contract (200 MB, ...).
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Largest accepted body, in bytes (default 200 MiB).
    pub max_bytes: u64,
    /// TCP + TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Longest wait for the response headers or for the next chunk of body (default 30 s).
    pub read_timeout: Duration,
    /// Whole download, redirects included (default 10 min).
    pub total_timeout: Duration,
    /// Redirects followed before giving up (default 5).
    pub max_redirects: usize,
    /// Turns the SSRF guard off. Only for tests and trusted single-user setups.
    pub allow_private: bool,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            max_bytes: 200 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(600),
            max_redirects: 5,
            allow_private: false,
        }
    }
}

/// A completed download.
#[derive(Debug, Clone)]
pub struct FetchedFile {
    /// The file, inside the directory given to [`Fetcher::fetch_to_file`]; the caller owns it.
    pub path: PathBuf,
    pub bytes: u64,
    /// The Content-Type the server claimed (informational: the format comes from sniffing).
    pub content_type: Option<String>,
    /// The format, by content.
    pub format: AudioFormat,
}

/// A download failed. Every message starts with the field name and says what to fix.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("audio_url: must be an http or https URL, got \"{got}\"")]
    InvalidUrl { got: String },
    #[error("audio_url: download refused: {ip} is a {reason}")]
    Refused { ip: IpAddr, reason: &'static str },
    #[error("audio_url: could not connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error("audio_url: could not connect to {host} within {} s", secs(*.after))]
    ConnectTimeout { host: String, after: Duration },
    #[error("audio_url: server answered HTTP {status}")]
    Status { status: u16 },
    #[error("audio_url: too many redirects (more than {max})")]
    TooManyRedirects { max: usize },
    #[error("audio_url: redirected to a non-http(s) URL (\"{scheme}://...\")")]
    BadRedirect { scheme: String },
    #[error("audio_url: file exceeds {} limit", human_size(*.limit))]
    TooLarge { limit: u64 },
    #[error("audio_url: timed out after {} s without data", secs(*.after))]
    ReadTimeout { after: Duration },
    #[error("audio_url: download did not finish within {} s", secs(*.after))]
    TotalTimeout { after: Duration },
    #[error("audio_url: the file is empty (0 bytes)")]
    Empty,
    #[error(
        "audio_url: download incomplete: the connection closed after {got} of {expected} bytes"
    )]
    Truncated { got: u64, expected: u64 },
    #[error("audio_url: download from {host} failed: {detail}")]
    Transfer { host: String, detail: String },
    #[error("audio_url: the content looks like {what}, not audio")]
    NotAudio { what: &'static str },
    #[error("audio_url: unsupported audio type{}: expected mp3, wav, aac, m4a/mp4, ogg (vorbis/opus), flac or aiff",
        found.map(|f| format!(" ({f})")).unwrap_or_default())]
    Unsupported { found: Option<&'static str> },
    /// Our side failed (disk full, directory missing): not the user's fault.
    #[error("could not store the downloaded audio: {0}")]
    Storage(#[source] std::io::Error),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    /// Whether trying the same URL again later might succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. }
            | FetchError::ConnectTimeout { .. }
            | FetchError::ReadTimeout { .. }
            | FetchError::TotalTimeout { .. }
            | FetchError::Truncated { .. }
            | FetchError::Transfer { .. }
            | FetchError::Storage(_) => true,
            FetchError::Status { status } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    match bytes {
        b if b % MB == 0 && b > 0 => format!("{} MB", b / MB),
        b if b >= MB => format!("{:.1} MB", b as f64 / MB as f64),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KB", b / 1024),
        b => format!("{b} bytes"),
    }
}

/// Why the redirect policy stopped; recovered from reqwest's error chain by downcasting.
#[derive(Debug)]
enum RedirectStop {
    TooMany(usize),
    Scheme(String),
}

impl std::fmt::Display for RedirectStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedirectStop::TooMany(max) => write!(f, "more than {max} redirects"),
            RedirectStop::Scheme(s) => write!(f, "redirect to scheme {s}"),
        }
    }
}

impl std::error::Error for RedirectStop {}

/// The one outbound HTTP client for user-supplied audio URLs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let (max, allow_private) = (policy.max_redirects, policy.allow_private);
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                return attempt.error(RedirectStop::TooMany(max));
            }
            let url = attempt.url();
            if !matches!(url.scheme(), "http" | "https") {
                let scheme = url.scheme().to_owned();
                return attempt.error(RedirectStop::Scheme(scheme));
            }
            if let Some(ip) = literal_ip(url) {
                if let Err(refused) = check_ip(ip, allow_private) {
                    return attempt.error(refused);
                }
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("harken/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .no_proxy()
            .redirect(redirects)
            .connect_timeout(policy.connect_timeout)
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner { client, policy }),
        })
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.inner.policy
    }

    /// Downloads `url` into a new file in `dir` (which must exist). The file is there only if
    /// this returns `Ok`; the caller deletes it when done.
    pub async fn fetch_to_file(&self, url: &str, dir: &Path) -> Result<FetchedFile, FetchError> {
        let url = parse_url(url)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if let Some(ip) = literal_ip(&url) {
            check_ip(ip, self.inner.policy.allow_private).map_err(refused)?;
        }
        let total = self.inner.policy.total_timeout;
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(total, self.download(url, &host, dir)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::TotalTimeout { after: total }),
        };
        match &result {
            Ok(f) => {
                tracing::info!(audio.host = %host, audio.bytes = f.bytes, audio.format = %f.format,
                elapsed_ms = started.elapsed().as_millis() as u64, "downloaded audio")
            }
            Err(e) => tracing::info!(audio.host = %host, "audio download failed: {e}"),
        }
        result
    }

    async fn download(&self, url: Url, host: &str, dir: &Path) -> Result<FetchedFile, FetchError> {
        let policy = &self.inner.policy;
        let read_timeout = policy.read_timeout;
        let request = self
            .inner
            .client
            .get(url)
            .header(reqwest::header::ACCEPT_ENCODING, "identity")
            .send();
        let response = tokio::time::timeout(read_timeout, request)
            .await
            .map_err(|_| FetchError::ReadTimeout {
                after: read_timeout,
            })?
            .map_err(|e| map_request_error(e, host, policy))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
            });
        }
        let expected = response.content_length();
        if expected.is_some_and(|len| len > policy.max_bytes) {
            return Err(FetchError::TooLarge {
                limit: policy.max_bytes,
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        let part = tempfile::Builder::new()
            .prefix(".harken-download-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(FetchError::Storage)?;
        let mut file = tokio::fs::File::from_std(part.reopen().map_err(FetchError::Storage)?);
        let mut stream = response.bytes_stream();
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
        let mut format = None;
        let mut received = 0u64;
        loop {
            let next = tokio::time::timeout(read_timeout, stream.next())
                .await
                .map_err(|_| FetchError::ReadTimeout {
                    after: read_timeout,
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| match expected {
                Some(expected) if received < expected => FetchError::Truncated {
                    got: received,
                    expected,
                },
                _ => FetchError::Transfer {
                    host: host.to_owned(),
                    detail: root_cause(&e),
                },
            })?;
            received += chunk.len() as u64;
            if received > policy.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: policy.max_bytes,
                });
            }
            if format.is_none() {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() >= SNIFF_LEN {
                    format = Some(audio_format(&head)?);
                }
            }
            file.write_all(&chunk).await.map_err(FetchError::Storage)?;
        }
        if received == 0 {
            return Err(FetchError::Empty);
        }
        if let Some(expected) = expected.filter(|e| received < *e) {
            return Err(FetchError::Truncated {
                got: received,
                expected,
            });
        }
        let format = match format {
            Some(f) => f,
            None => audio_format(&head)?,
        };
        file.flush().await.map_err(FetchError::Storage)?;
        drop(file);

        // Rename into place only now that the file is complete and is audio.
        let id = part
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(".harken-download-"))
            .and_then(|n| n.strip_suffix(".part"))
            .unwrap_or("x")
            .to_owned();
        let path = dir.join(format!("audio-{id}.{}", format.extension()));
        part.persist_noclobber(&path)
            .map_err(|e| FetchError::Storage(e.error))?;
        Ok(FetchedFile {
            path,
            bytes: received,
            content_type,
            format,
        })
    }
}

fn audio_format(head: &[u8]) -> Result<AudioFormat, FetchError> {
    match classify(head) {
        Content::Audio(format) => Ok(format),
        Content::NotAudio(what) => Err(FetchError::NotAudio { what }),
        Content::Unknown(found) => Err(FetchError::Unsupported { found }),
    }
}

/// Accepts absolute http(s) URLs with a host. The error shows only the scheme.
fn parse_url(raw: &str) -> Result<Url, FetchError> {
    let shown = |raw: &str| match raw.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.len() <= 16 => format!("{scheme}://..."),
        _ => {
            let first: String = raw.chars().take(12).collect();
            if raw.chars().count() > 12 {
                format!("{first}...")
            } else {
                first
            }
        }
    };
    let url = Url::parse(raw.trim()).map_err(|_| FetchError::InvalidUrl {
        got: shown(raw.trim()),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(FetchError::InvalidUrl {
            got: shown(raw.trim()),
        });
    }
    Ok(url)
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

fn refused(r: Refused) -> FetchError {
    FetchError::Refused {
        ip: r.ip,
        reason: r.reason,
    }
}

/// Maps a request error using the typed causes we planted (guard, redirect policy).
fn map_request_error(e: reqwest::Error, host: &str, policy: &FetchPolicy) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return refused(r.clone());
        }
        if let Some(stop) = err.downcast_ref::<RedirectStop>() {
            return match stop {
                RedirectStop::TooMany(max) => FetchError::TooManyRedirects { max: *max },
                RedirectStop::Scheme(scheme) => FetchError::BadRedirect {
                    scheme: scheme.clone(),
                },
            };
        }
        source = err.source();
    }
    let host = host.to_owned();
    if e.is_connect() && e.is_timeout() {
        FetchError::ConnectTimeout {
            host,
            after: policy.connect_timeout,
        }
    } else if e.is_connect() {
        FetchError::Connect {
            host,
            detail: root_cause(&e),
        }
    } else {
        FetchError::Transfer {
            host,
            detail: root_cause(&e),
        }
    }
}

/// The innermost error message: never reqwest's top level, whose Display embeds the full URL.
fn root_cause(e: &reqwest::Error) -> String {
    let mut current: &(dyn std::error::Error + 'static) = e;
    let mut innermost = None;
    while let Some(next) = current.source() {
        innermost = Some(next.to_string());
        current = next;
    }
    innermost.unwrap_or_else(|| {
        if e.is_timeout() {
            "timed out".into()
        } else if e.is_body() || e.is_decode() {
            "the response body could not be read".into()
        } else {
            "request failed".into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_errors_never_show_more_than_the_scheme() {
        let e = parse_url("ftp://user:pw@example.com/a.mp3?sig=SECRET").unwrap_err();
        assert_eq!(
            e.to_string(),
            "audio_url: must be an http or https URL, got \"ftp://...\""
        );
        let e = parse_url("not a url at all, with SECRET").unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert!(parse_url("https://example.com/a.mp3?X-Amz-Signature=abc").is_ok());
        assert!(parse_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(
            FetchError::TooLarge {
                limit: FetchPolicy::default().max_bytes
            }
            .to_string(),
            "audio_url: file exceeds 200 MB limit"
        );
        assert_eq!(
            FetchError::TooLarge { limit: 4096 }.to_string(),
            "audio_url: file exceeds 4 KB limit"
        );
        assert_eq!(
            FetchError::ReadTimeout {
                after: Duration::from_secs(30)
            }
            .to_string(),
            "audio_url: timed out after 30 s without data"
        );
        assert_eq!(
            FetchError::ReadTimeout {
                after: Duration::from_millis(300)
            }
            .to_string(),
            "audio_url: timed out after 0.3 s without data"
        );
    }

    #[test]
    fn literal_ip_hosts_are_normalised() {
        for (raw, ip) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
        ] {
            assert_eq!(
                literal_ip(&parse_url(raw).unwrap()),
                Some(ip.parse().unwrap()),
                "{raw}"
            );
        }
    }
}
