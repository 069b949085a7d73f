//! Turning what the user typed (`--model base`, `--model /models/large-v3-turbo`) into a model
//! directory, and listing what is installed.
//!
//! What must stay true: every error names what is missing and the command that fixes it.

use std::path::{Path, PathBuf};

use crate::install::{self, check_installed};
use crate::registry::{self, ModelKind};

/// Why a Whisper model could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    #[error("model `{name}` is not installed in {}: run `harken models fetch {name}` (or point --models-dir / HARKEN_MODELS_DIR at where it is)", dir.display())]
    NotInstalled { name: String, dir: PathBuf },
    #[error("model `{name}` in {} is incomplete ({problem}): run `harken models fetch {name}` to reinstall it", dir.display())]
    Incomplete {
        name: String,
        dir: PathBuf,
        problem: String,
    },
    #[error("`{name}` is a {kind} model, not a Whisper model; Whisper models: {whisper}")]
    NotWhisper {
        name: String,
        kind: ModelKind,
        whisper: String,
    },
    #[error("`{input}` is neither a known model ({known}) nor an existing directory")]
    NotFound { input: String, known: String },
    #[error(
        "{} is not a Whisper model directory: missing {missing} (a faster-whisper / CTranslate2 \
         directory holds model.bin, config.json, tokenizer.json and vocabulary.txt or vocabulary.json)",
        dir.display()
    )]
    NotAModelDir { dir: PathBuf, missing: String },
}

/// Files a CTranslate2 Whisper directory must hold; each inner list is alternatives.
const WHISPER_FILES: &[&[&str]] = &[
    &["model.bin"],
    &["config.json"],
    &["tokenizer.json"],
    &["vocabulary.txt", "vocabulary.json"],
];

/// Finds a Whisper model: a [`crate::KNOWN`] name installed under `models_dir`, or a directory
/// holding a faster-whisper (CTranslate2) model such as large-v3-turbo.
///
/// ```
/// let dir = std::env::temp_dir().join("harken-doc-resolve-empty");
/// let err = harken_models::resolve_whisper(&dir, "base").unwrap_err();
/// assert!(err.to_string().contains("harken models fetch base"));
/// ```
pub fn resolve_whisper(models_dir: &Path, name_or_path: &str) -> Result<PathBuf, ResolveError> {
    if let Some(spec) = registry::spec(name_or_path) {
        if spec.kind != ModelKind::Whisper {
            return Err(ResolveError::NotWhisper {
                name: spec.name.into(),
                kind: spec.kind,
                whisper: registry::names_of_kind(ModelKind::Whisper),
            });
        }
        let dir = models_dir.join(spec.name);
        if !dir.exists() {
            return Err(ResolveError::NotInstalled {
                name: spec.name.into(),
                dir,
            });
        }
        if let Some(problem) = check_installed(&dir, spec) {
            return Err(ResolveError::Incomplete {
                name: spec.name.into(),
                dir,
                problem,
            });
        }
        return Ok(dir);
    }
    let dir = PathBuf::from(name_or_path);
    if !dir.is_dir() {
        return Err(ResolveError::NotFound {
            input: name_or_path.into(),
            known: registry::known_names(),
        });
    }
    let missing: Vec<String> = WHISPER_FILES
        .iter()
        .filter(|alternatives| !alternatives.iter().any(|f| dir.join(f).is_file()))
        .map(|alternatives| alternatives.join(" or "))
        .collect();
    if !missing.is_empty() {
        return Err(ResolveError::NotAModelDir {
            dir,
            missing: missing.join(", "),
        });
    }
    Ok(dir)
}

/// A model found under the models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledModel {
    pub name: String,
    pub path: PathBuf,
    /// Bytes of the model's files.
    pub size: u64,
    pub kind: ModelKind,
    /// False when the directory no longer matches the pinned sources (run fetch again).
    pub complete: bool,
}

/// Models installed under `models_dir`, sorted by name: directories with a harken marker, plus
/// Whisper directories copied in by hand (model.bin and friends, no marker).
pub fn installed(models_dir: &Path) -> Vec<InstalledModel> {
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return Vec::new();
    };
    let mut models: Vec<InstalledModel> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().is_dir())
        .filter_map(|e| describe_dir(&e.path()))
        .collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    models
}

fn describe_dir(path: &Path) -> Option<InstalledModel> {
    let dir_name = path.file_name()?.to_string_lossy().into_owned();
    if let Some((name, kind, size)) = install::installed_entry(path) {
        let complete = registry::spec(&name).is_some_and(|spec| check_installed(path, spec).is_none());
        return Some(InstalledModel {
            name,
            path: path.into(),
            size,
            kind,
            complete,
        });
    }
    if let Some(spec) = registry::spec(&dir_name) {
        // A known name without a marker: an interrupted or foreign install; fetch repairs it.
        return Some(InstalledModel {
            name: dir_name,
            path: path.into(),
            size: dir_size(path),
            kind: spec.kind,
            complete: false,
        });
    }
    // A hand-copied faster-whisper directory.
    let path_str = path.to_str()?;
    let dir = resolve_whisper(Path::new("/nonexistent"), path_str).ok()?;
    Some(InstalledModel {
        name: dir_name,
        size: dir_size(&dir),
        path: dir,
        kind: ModelKind::Whisper,
        complete: true,
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
