//! Loading the speech engine from command-line settings, shared by `serve` and `transcribe`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use harken_engine::{segmentation_model_path, EngineConfig, SpeakerEncoderKind, SpeechEngine, WhisperEngine, SEGMENTATION_MODEL};

/// Engine settings common to every subcommand that transcribes.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Whisper model: a name known to `harken models` (base, tiny.en) or the path of a
    /// faster-whisper (CTranslate2) model directory.
    #[arg(long, env = "HARKEN_MODEL", default_value = "base")]
    pub model: String,
    /// Where fetched models live [default: ~/.cache/harken/models].
    #[arg(long, env = "HARKEN_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// CPU threads for inference (at most the number of cores; 0 = all cores).
    #[arg(long, env = "HARKEN_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Beam width of the decoder.
    #[arg(long, env = "HARKEN_BEAM_SIZE", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beam_size: u16,
    /// Speech windows (up to 30 s each) decoded together: faster, more memory.
    #[arg(long, env = "HARKEN_BATCH_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub batch_size: u16,
    /// Precision of the weights at run time.
    #[arg(long, env = "HARKEN_COMPUTE_TYPE", default_value = "int8")]
    pub compute_type: String,
    /// Show each speech window the text decoded just before it, as faster-whisper does. Off by
    /// default: on our benchmark it set off a repetition loop in a long recording and changed
    /// nothing else (docs/BENCHMARKS.md).
    #[arg(long, env = "HARKEN_PREVIOUS_TEXT", default_value_t = false, action = clap::ArgAction::Set)]
    pub previous_text: bool,
    /// Voice activity detector: `silero` (Silero VAD, fetched with the model) or `earshot`
    /// (embedded, no download).
    #[arg(long, env = "HARKEN_VAD", default_value = "silero", value_parser = ["silero", "earshot"])]
    pub vad: String,
    /// Speaker encoder for diarization: `resemblyzer` (GE2E, cheap) or `campplus` (3D-Speaker
    /// CAM++, 2–3× the cost, not better on our meeting clips: docs/DIARIZATION.md). Fetched
    /// when missing.
    #[arg(long, env = "HARKEN_SPEAKER_ENCODER", default_value = "resemblyzer", value_parser = ["resemblyzer", "campplus"])]
    pub speaker_encoder: String,
    /// Run pyannote's segmentation model in diarization (fetched when missing): it sets the
    /// least speaker count and where turns change (DER 46.2 → 42.1 % on our meeting clips) and
    /// costs about as much again as the speaker encoder (docs/DIARIZATION.md).
    #[arg(long, env = "HARKEN_SPEAKER_SEGMENTATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub speaker_segmentation: bool,
}

impl EngineArgs {
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(harken_models::default_models_dir)
    }
}

/// The directory of an optional model, fetched when missing. Without it the engine runs with
/// less (`without` says what, in the warning): a warning here beats a server that will not
/// start offline.
async fn optional_model(models_dir: &std::path::Path, name: &str, without: &str) -> Option<PathBuf> {
    match harken_models::ensure(models_dir, name).await {
        Ok(dir) => Some(dir),
        Err(err) => {
            tracing::warn!(error = format!("{err:#}"), model = name, "model unavailable: {without}");
            None
        }
    }
}

/// The speaker encoder's weights (`resemblyzer` or `campplus`); without them the engine still
/// transcribes, and refuses diarization.
async fn speaker_model(models_dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let kind: SpeakerEncoderKind = name.parse().ok()?;
    optional_model(models_dir, kind.model_name(), "diarization disabled").await?;
    Some(kind.model_path(models_dir))
}

/// pyannote's segmentation model; without it diarization counts speakers from the speaker
/// embeddings alone.
async fn segmentation_model(models_dir: &std::path::Path) -> Option<PathBuf> {
    optional_model(models_dir, SEGMENTATION_MODEL, "diarization runs without segmentation").await?;
    Some(segmentation_model_path(models_dir))
}

/// Silero VAD's weights; without them the embedded VAD runs.
async fn vad_model(models_dir: &std::path::Path) -> Option<PathBuf> {
    let dir = optional_model(models_dir, "silero-vad", "using the embedded VAD").await?;
    Some(dir.join("silero_vad_16k.safetensors"))
}

/// Loads the engine, fetching the model first when it is a known name not yet installed.
pub async fn load(args: &EngineArgs) -> anyhow::Result<Arc<dyn SpeechEngine>> {
    let model_dir = harken_models::ensure(&args.models_dir(), &args.model)
        .await
        .with_context(|| format!("preparing model `{}`", args.model))?;
    let mut config = EngineConfig::new(model_dir, args.model.clone());
    config.threads = args.threads;
    config.beam_size = args.beam_size.into();
    config.batch_size = args.batch_size.into();
    config.compute_type = args.compute_type.clone();
    config.condition_on_previous_text = args.previous_text;
    config.speaker_model = speaker_model(&args.models_dir(), &args.speaker_encoder).await;
    if config.speaker_model.is_some() && args.speaker_segmentation {
        config.segmentation_model = segmentation_model(&args.models_dir()).await;
    }
    if args.vad == "silero" {
        config.vad_model = vad_model(&args.models_dir()).await;
    }
    let engine = tokio::task::spawn_blocking(move || WhisperEngine::load(config))
        .await
        .context("the model loading thread panicked")??;
    Ok(Arc::new(engine))
}
