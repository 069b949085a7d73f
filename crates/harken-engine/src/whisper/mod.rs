//! Whisper on CTranslate2: our own front end over `ct2rs::sys::Whisper`.
//!
//! Why not `ct2rs::Whisper`: it cuts audio at hard 30 s boundaries (words lost at the cuts),
//! sends language tokens to English-only models, and has no VAD, word timing or batching.
//! Here: VAD windows → log-mel → one `encode` per batch → language detection on speech →
//! batched `generate` (windows in streams that carry previous text, see [`streams`]) → `align` for word times → assembly.

mod bpe;
#[cfg(feature = "whisper")]
mod decode;
#[cfg(feature = "whisper")]
mod engine;
#[cfg(feature = "whisper")]
mod events;
mod streams;
mod tokenizer;
mod unheard;
mod words;

#[cfg(feature = "whisper")]
pub use engine::{EngineConfig, WhisperEngine};
