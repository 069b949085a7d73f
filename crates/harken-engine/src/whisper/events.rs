//! Audio event tagging (`(laughter)`, `(applause)`, `(music)`, ...): not implemented yet.

use super::engine::WhisperEngine;
use crate::assemble::Item;
use crate::vad::Span;

/// Whether this build tags audio events; until it does, callers are told so.
pub(super) const SUPPORTED: bool = false;

impl WhisperEngine {
    /// Audio events found in `samples`, as items with absolute times.
    pub(super) fn tag_events(&self, _samples: &[f32], _speech: &[Span], _language: &str) -> anyhow::Result<Vec<Item>> {
        Ok(Vec::new())
    }
}
