//! The speech pipeline behind one small trait: audio samples in, a [`Transcript`] out.
//!
//! This crate knows nothing of HTTP, SQL or jobs. Callers hand it 16 kHz mono `f32` samples
//! (see `harken-audio`) and [`TranscribeOptions`]; the engine returns the contract's transcript.
//! With the `whisper` feature (default) it provides [`WhisperEngine`], Whisper on CTranslate2.
// Without the `whisper` feature only the trait is used; the pipeline parts stay compiled and tested.
#![cfg_attr(not(feature = "whisper"), allow(dead_code))]

mod api;
mod assemble;
mod channels;
mod known_speakers;
#[doc(hidden)] pub mod diarize; // pub only for tests/diarize.rs and examples/der.rs
mod mel;
mod vad;
mod whisper;

pub use api::{EngineError, KnownSpeaker, Progress, SpeechEngine, TranscribeOptions, SAMPLE_RATE};
pub use channels::transcribe_channels;
/// Which speaker encoder diarization runs, and where its weights live in a models directory.
pub use diarize::EncoderKind as SpeakerEncoderKind;
/// Where pyannote's segmentation model lives in a models directory, and its registry name.
pub use diarize::segment::{model_path as segmentation_model_path, MODEL_NAME as SEGMENTATION_MODEL};
pub use harken_types::{Transcript, Word, WordKind};
#[cfg(feature = "whisper")]
pub use whisper::{EngineConfig, WhisperEngine};
