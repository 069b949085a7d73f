//! The engine's public contract: what a caller passes in and what it gets back.

/// Samples per second of the audio every engine takes.
pub const SAMPLE_RATE: u32 = 16_000;

/// What the caller asks of one transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeOptions {
    /// Whisper language code (ISO 639-1, see `harken_types::normalize_language_code`);
    /// `None` detects the language from the speech.
    pub language: Option<String>,
    /// Label words with `speaker_N`.
    pub diarize: bool,
    /// The most speakers to label (ElevenLabs' `num_speakers`, "the maximum amount of speakers
    /// talking"): the count is still estimated, and capped at this.
    pub num_speakers: Option<usize>,
    /// Emit `audio_event` items such as `(laughter)`.
    pub tag_audio_events: bool,
    /// Text the decoder sees as if it had been said just before the audio: spellings, names,
    /// terms (OpenAI's `prompt`, ElevenLabs' `keyterms`). `None` or empty: no prompt.
    pub prompt: Option<String>,
    /// Sampling temperature of the first decoding attempt (OpenAI's `temperature`, 0 to 1).
    /// `None` or 0: beam search, with temperature fallback on repetitive or improbable output.
    pub temperature: Option<f32>,
    /// Speaker clustering threshold (ElevenLabs' `diarization_threshold`, 0.1 to 0.4; higher
    /// gives fewer speakers). ElevenLabs takes it only without `num_speakers`.
    pub diarization_threshold: Option<f32>,
    /// Speakers to name by their voice (OpenAI's `known_speaker_names[]` with
    /// `known_speaker_references[]`): a diarized speaker who sounds like one of them takes
    /// its name as `speaker_id` instead of `speaker_N`. Needs `diarize`.
    pub known_speakers: Vec<KnownSpeaker>,
}

/// A name and a short recording (16 kHz mono) of the voice that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownSpeaker {
    pub name: String,
    pub samples: std::sync::Arc<[f32]>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        TranscribeOptions {
            language: None,
            diarize: true,
            num_speakers: None,
            tag_audio_events: true,
            prompt: None,
            temperature: None,
            diarization_threshold: None,
            known_speakers: Vec::new(),
        }
    }
}

/// Receives the fraction of the work done, 0.0 to 1.0. Called from the engine's thread.
pub type Progress<'a> = &'a (dyn Fn(f32) + Sync);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request cannot be honoured (unknown language, unsupported option).
    #[error("{0}")]
    Invalid(String),
    /// The model failed; retrying the same input is unlikely to help.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A speech-to-text engine. Implementations load their models once and are shared between
/// threads; `transcribe` blocks (it is CPU-bound), so async callers run it on a blocking thread.
pub trait SpeechEngine: Send + Sync {
    /// Transcribes 16 kHz mono samples.
    fn transcribe(
        &self,
        samples: &[f32],
        options: &TranscribeOptions,
        progress: Progress<'_>,
    ) -> Result<harken_types::Transcript, EngineError>;

    /// A short name of the loaded model, for logs and `/healthz`.
    fn model_name(&self) -> &str;

    /// Whether the engine can honour `diarize` (speaker labels) at all.
    fn supports_diarization(&self) -> bool {
        false
    }

    /// One voice print (a unit vector) per clip of 16 kHz mono speech, `None` for a clip with
    /// too little audio, and the cosine similarity above which two prints are one voice; `None`
    /// when the engine has no speaker model.
    fn voice_prints(&self, _clips: &[&[f32]]) -> Option<(Vec<Option<Vec<f32>>>, f32)> {
        None
    }

    /// Whether the engine can honour `tag_audio_events` at all.
    fn supports_audio_events(&self) -> bool {
        false
    }
}
