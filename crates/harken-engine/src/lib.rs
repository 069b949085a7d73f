//! The speech pipeline behind one small trait: audio samples in, a [`Transcript`] out.
//!
//! This crate knows nothing of HTTP, SQL or jobs. Callers hand it 16 kHz mono `f32` samples
//! (see `harken-audio`) and [`TranscribeOptions`]; the engine returns the contract's transcript.
//! With the `whisper` feature (default) it provides [`WhisperEngine`], Whisper on CTranslate2.

mod api;
#[cfg(feature = "whisper")]
mod whisper;

pub use api::{EngineError, Progress, SpeechEngine, TranscribeOptions, SAMPLE_RATE};
pub use harken_types::{Transcript, Word, WordKind};
#[cfg(feature = "whisper")]
pub use whisper::{EngineConfig, WhisperEngine};
