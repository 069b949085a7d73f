//! The transcript: ElevenLabs Scribe's format, which Kie.ai returns as `resultObject`.
//!
//! Invariants every producer must keep (checked by [`Transcript::check`]):
//! - a `spacing` item sits between consecutive non-spacing items;
//! - times are seconds, non-negative, `start <= end`, and starts are non-decreasing;
//! - `text` equals the concatenation of the items' texts;
//! - `speaker_id` is on every item or on none.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// ISO 639-3, e.g. `eng`.
    pub language_code: String,
    pub language_probability: f32,
    pub text: String,
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordKind {
    Word,
    Spacing,
    AudioEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start: f64,
    pub end: f64,
    #[serde(rename = "type")]
    pub kind: WordKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_id: Option<String>,
    /// Mean log-probability of the word's tokens (0 for spacing items).
    #[serde(default)]
    pub logprob: f64,
}

impl Transcript {
    /// A transcript with no speech in it.
    pub fn empty(language_code: impl Into<String>, language_probability: f32) -> Self {
        Transcript {
            language_code: language_code.into(),
            language_probability,
            text: String::new(),
            words: Vec::new(),
        }
    }

    /// Returns the first broken invariant, if any (see the module docs).
    pub fn check(&self) -> Result<(), String> {
        let mut text = String::new();
        let mut last_start = 0.0f64;
        let with_speaker = self.words.first().map(|w| w.speaker_id.is_some());
        for (i, w) in self.words.iter().enumerate() {
            if !(w.start >= 0.0 && w.start <= w.end) {
                return Err(format!("item {i} has start {} and end {}", w.start, w.end));
            }
            if w.start + 1e-9 < last_start {
                return Err(format!("item {i} starts at {} before {}", w.start, last_start));
            }
            last_start = w.start;
            if Some(w.speaker_id.is_some()) != with_speaker {
                return Err(format!("item {i} differs from item 0 in having a speaker_id"));
            }
            if i > 0 {
                let prev_spacing = self.words[i - 1].kind == WordKind::Spacing;
                let spacing = w.kind == WordKind::Spacing;
                if prev_spacing == spacing {
                    return Err(format!("items {} and {i} are not separated by one spacing", i - 1));
                }
            }
            text.push_str(&w.text);
        }
        if text != self.text {
            return Err("text is not the concatenation of the items".to_owned());
        }
        Ok(())
    }
}
