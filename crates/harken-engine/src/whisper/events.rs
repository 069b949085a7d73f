//! Audio event tagging: `(laughter)`, `(applause)`, `(music)`, `(dog barking)`, ... as
//! `audio_event` items, from Whisper's own caption annotations.
//!
//! No pretrained audio tagger is reachable here, but Whisper was trained on subtitles that
//! annotate sounds ("[Music]", "(laughs)", "(dog barking)"). The main pass suppresses those
//! tokens; this pass listens again, with them allowed, to the stretches no word covers and
//! that are loud enough to hold a sound ([`regions`]), and keeps only annotations that map to
//! the fixed vocabulary of [`labels`]. Each event spans its stretch. What must stay true:
//! nothing outside the vocabulary is emitted, and plain speech gives (almost) no events.

mod labels;
mod markup;
mod regions;

pub(super) use markup::markup_mask;

use std::path::Path;

use anyhow::Context;
use ct2rs::sys::WhisperOptions;
use harken_types::WordKind;

use super::engine::{WhisperEngine, Window};
use super::tokenizer::Tokenizer;
use crate::api::SAMPLE_RATE;
use crate::assemble::Item;
use crate::vad::Span;

/// Whether this build tags audio events.
pub(super) const SUPPORTED: bool = true;

/// Decodes less probable than this (mean token log-probability) count only over a strong sound.
const MIN_AVG_LOGPROB: f32 = -1.2;
/// A sound this far above the background (dB) is trusted with a less probable decode.
const STRONG_PROMINENCE_DB: f32 = 20.0;
/// Events of one label closer than this (seconds) become one event.
const MERGE_GAP: f64 = 1.0;

/// One decoded stretch: its text and Whisper's confidence in it.
#[derive(Debug, Clone)]
struct Caption {
    text: String,
    avg_logprob: f32,
}

/// The model's default suppression list (`suppress_ids` in `config.json`) without the tokens
/// that open or close caption markup: brackets, parentheses, asterisks and music notes.
fn caption_suppress_list(model_dir: &Path, tok: &Tokenizer) -> anyhow::Result<Vec<i32>> {
    let path = model_dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    #[derive(serde::Deserialize)]
    struct ModelConfig {
        #[serde(default)]
        suppress_ids: Vec<i32>,
    }
    let config: ModelConfig = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(config
        .suppress_ids
        .into_iter()
        .filter(|&id| !is_markup_token(tok.token_str(id as usize)))
        .collect())
}

/// A BPE token (GPT-2 byte form) made only of markup characters: `(`, `Ġ[`, `)`, `*`, `ĠâĻª` (♪).
fn is_markup_token(token: &str) -> bool {
    let t = token.trim_start_matches('Ġ');
    if t.starts_with("âĻ") {
        return true; // U+2669..U+266F (♩♪♫♬) begin with bytes E2 99
    }
    !t.is_empty() && t.chars().all(|c| "()[]*".contains(c))
}

impl WhisperEngine {
    /// Audio events in `samples`, as items with absolute times. `words` are the transcribed
    /// words (absolute times): events are looked for between them.
    pub(super) fn tag_events(
        &self,
        samples: &[f32],
        _speech: &[Span],
        words: &[Item],
        language: &str,
    ) -> anyhow::Result<Vec<Item>> {
        let started = std::time::Instant::now();
        let spans: Vec<(f64, f64)> = words.iter().map(|w| (w.start, w.end)).collect();
        let candidates = regions::candidates(samples, &spans, &regions::GapParams::default());
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let suppress = caption_suppress_list(&self.config.model_dir, &self.tok)?;
        let mut events: Vec<Item> = Vec::new();
        for batch in candidates.chunks(self.config.batch_size.max(1)) {
            let mut windows: Vec<Window> = batch
                .iter()
                .map(|c| Window {
                    span: c.span,
                    features: self.mel.window_features(&samples[c.span.0..c.span.1]),
                })
                .collect();
            let captions = self.decode_captions(&mut windows, language, &suppress)?;
            for (candidate, caption) in batch.iter().zip(&captions) {
                let labels = labels::labels_in(&caption.text);
                let trusted = caption.avg_logprob >= MIN_AVG_LOGPROB || candidate.prominence_db >= STRONG_PROMINENCE_DB;
                tracing::debug!(
                    start_s = candidate.span.0 as f64 / SAMPLE_RATE as f64,
                    end_s = candidate.span.1 as f64 / SAMPLE_RATE as f64,
                    prominence_db = candidate.prominence_db,
                    avg_logprob = caption.avg_logprob,
                    ?labels,
                    trusted,
                    "event candidate decoded"
                );
                if !trusted {
                    continue;
                }
                let (start, end) = (
                    candidate.span.0 as f64 / SAMPLE_RATE as f64,
                    candidate.span.1 as f64 / SAMPLE_RATE as f64,
                );
                for label in labels {
                    events.push(Item {
                        text: format!(" ({label})"),
                        start,
                        end,
                        logprob: caption.avg_logprob as f64,
                        kind: WordKind::AudioEvent,
                        speaker: None,
                    });
                }
            }
        }
        let events = merge(events);
        tracing::debug!(
            candidates = candidates.len(),
            events = events.len(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "audio events tagged"
        );
        Ok(events)
    }

    /// Decodes each window with caption markup allowed (no previous-text prompt: one that lists
    /// sound classes biases Whisper toward them, measured in docs/EVENTS.md).
    fn decode_captions(
        &self,
        windows: &mut [Window],
        language: &str,
        suppress: &[i32],
    ) -> anyhow::Result<Vec<Caption>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let n = windows.len();
        let encoded = self.encode(windows)?;
        let options = WhisperOptions {
            beam_size: self.config.beam_size,
            return_scores: true,
            // Annotations are short; a stretch Whisper hears as speech is cut off early.
            max_length: 64,
            suppress_tokens: suppress.to_vec(),
            ..WhisperOptions::default()
        };
        let results = self
            .model
            .generate(&encoded, &vec![self.prompt(language, &[]); n], &options)?;
        Ok(results
            .into_iter()
            .map(|r| {
                let ids: Vec<usize> = r
                    .sequences_ids
                    .into_iter()
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&t| self.tok.is_text(t))
                    .collect();
                Caption {
                    text: self.tok.decode(&ids),
                    avg_logprob: r.scores.first().copied().unwrap_or(f32::NEG_INFINITY),
                }
            })
            .collect())
    }
}

/// Sorts events by start and joins those of one label that touch or nearly do.
fn merge(mut events: Vec<Item>) -> Vec<Item> {
    events.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut out: Vec<Item> = Vec::new();
    for e in events {
        match out.iter_mut().rev().find(|o| o.text == e.text) {
            Some(o) if e.start - o.end <= MERGE_GAP => {
                o.end = o.end.max(e.end);
                o.logprob = o.logprob.max(e.logprob);
            }
            _ => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(label: &str, start: f64, end: f64) -> Item {
        Item {
            text: format!(" ({label})"),
            start,
            end,
            logprob: -0.5,
            kind: WordKind::AudioEvent,
            speaker: None,
        }
    }

    #[test]
    fn markup_tokens_are_recognised_in_byte_form() {
        for t in ["(", "Ġ(", "Ġ[", ")", "]", "Ġ*", "ĠâĻª", "âĻª", "ĠâĻ«", "âĻ", "))"] {
            assert!(is_markup_token(t), "{t}");
        }
        for t in ["\"", "Ġ-", "Ġ--", ":", "Ġ<", "Ġ(\"", "<|translate|>", ""] {
            assert!(!is_markup_token(t), "{t}");
        }
    }

    #[test]
    fn neighbouring_events_of_one_label_merge_and_others_stay() {
        let merged = merge(vec![
            event("music", 30.0, 60.0),
            event("music", 0.0, 29.5),
            event("laughter", 10.0, 12.0),
            event("music", 70.0, 80.0),
        ]);
        let got: Vec<(&str, f64, f64)> = merged.iter().map(|e| (e.text.as_str(), e.start, e.end)).collect();
        assert_eq!(
            got,
            vec![
                (" (music)", 0.0, 60.0),
                (" (laughter)", 10.0, 12.0),
                (" (music)", 70.0, 80.0)
            ]
        );
    }
}
