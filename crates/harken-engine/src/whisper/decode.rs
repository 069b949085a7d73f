//! Decoding windows to text tokens: the prompt, beam search or sampling, and Whisper's
//! temperature fallback when the output looks like a hallucination.

use anyhow::Context;
use ct2rs::sys::{StorageView, WhisperGenerationResult, WhisperOptions};

use super::engine::WhisperEngine;

/// Sampling temperatures tried, in order, when beam search output looks like a hallucination
/// (Whisper's and faster-whisper's schedule).
const FALLBACK_TEMPERATURES: [f32; 5] = [0.2, 0.4, 0.6, 0.8, 1.0];
/// Text that compresses better than this is repetitive ("the the the ...").
pub(super) const MAX_COMPRESSION_RATIO: f64 = 2.4;
const MIN_AVG_LOGPROB: f32 = -1.0;
/// Least average log-probability of a window decoded a second time ([`Decoded::is_confident`]).
const CONFIDENT_AVG_LOGPROB: f32 = -0.8;
const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// Output that needed a hotter temperature than this is not fed to the next window as context
/// (faster-whisper's `prompt_reset_on_temperature`).
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;
/// Samples drawn per window when decoding at a temperature above zero (Whisper's `best_of`).
const BEST_OF: usize = 5;

/// What decoding produced for one window.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) tokens: Vec<usize>,
    pub(super) avg_logprob: f32,
    pub(super) no_speech_prob: f32,
    /// 0 for beam search.
    pub(super) temperature: f32,
}

impl Decoded {
    /// Whisper's own "this window is not speech" rule.
    pub(super) fn is_silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_THRESHOLD && self.avg_logprob < MIN_AVG_LOGPROB
    }

    /// Neither of Whisper's two signs of silence, and a higher average log-probability than
    /// the fallback asks for. For audio decoded a second time (`unheard`), where the first pass
    /// found no words: a short window of a cough, a drawn-out word's tail or a distant voice
    /// tends to come back as a plausible phrase ("Still, I ain't there.", a repeated "here.")
    /// at −0.85 to −0.9, while the turns the first pass skipped on our synthetic conversations
    /// came back at −0.25 to −0.66 (one real turn at −0.84 is lost; docs/DIARIZATION.md).
    pub(super) fn is_confident(&self) -> bool {
        self.no_speech_prob <= NO_SPEECH_THRESHOLD && self.avg_logprob >= CONFIDENT_AVG_LOGPROB
    }

    /// Whether this text should not be context for the next window.
    pub(super) fn resets_context(&self) -> bool {
        self.temperature > PROMPT_RESET_TEMPERATURE
    }
}

impl WhisperEngine {
    /// The decoder prompt: previous text (if any) after `<|startofprev|>`, then
    /// `<|startoftranscript|>`, language and task, and `<|notimestamps|>`.
    pub(super) fn prompt(&self, language: &str, context: &[usize]) -> Vec<String> {
        let mut ids = Vec::with_capacity(context.len() + 5);
        if let (false, Some(sot_prev)) = (context.is_empty(), self.tok.sot_prev) {
            ids.push(sot_prev);
            ids.extend_from_slice(context);
        }
        ids.extend(self.tok.sot_sequence(language));
        // Text only: decoding with timestamp tokens, as faster-whisper does, measured 21 more
        // word errors on our benchmark (docs/BENCHMARKS.md); word times come from alignment.
        ids.push(self.tok.no_timestamps);
        ids.into_iter().map(|id| self.tok.token_str(id).to_owned()).collect()
    }

    /// Beam search at temperature 0, else `BEST_OF` samples at that temperature.
    fn generation_options(&self, temperature: f32) -> WhisperOptions {
        let common = WhisperOptions { return_scores: true, return_no_speech_prob: true, ..WhisperOptions::default() };
        if temperature <= 0.0 {
            WhisperOptions { beam_size: self.config.beam_size, ..common }
        } else {
            WhisperOptions { beam_size: 1, sampling_topk: 0, sampling_temperature: temperature, num_hypotheses: BEST_OF, ..common }
        }
    }

    /// The most probable hypothesis of one result, text tokens only.
    fn best_hypothesis(&self, r: WhisperGenerationResult, temperature: f32) -> Decoded {
        let no_speech_prob = r.no_speech_prob;
        r.sequences_ids
            .into_iter()
            .zip(r.scores)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(ids, score)| Decoded {
                avg_logprob: avg_logprob(score, ids.len()),
                tokens: ids.into_iter().filter(|&t| self.tok.is_text(t)).collect(),
                no_speech_prob,
                temperature,
            })
            .unwrap_or(Decoded { no_speech_prob, temperature, ..Decoded::default() })
    }

    /// Decodes a batch of encoded windows, each with its own previous-text context (all of the
    /// same length).
    pub(super) fn decode(&self, encoded: &StorageView<'_>, contexts: &[&[usize]], language: &str, temperature: f32) -> anyhow::Result<Vec<Decoded>> {
        let prompts: Vec<Vec<String>> = contexts.iter().map(|c| self.prompt(language, c)).collect();
        let results = self.model.generate(encoded, &prompts, &self.generation_options(temperature)).context("decoding")?;
        Ok(results.into_iter().map(|r| self.best_hypothesis(r, temperature)).collect())
    }

    /// Whether the text repeats itself ("the the the ...").
    fn is_repetitive(&self, d: &Decoded) -> bool {
        compression_ratio(&self.tok.decode(&d.tokens)) > MAX_COMPRESSION_RATIO
    }

    /// Output that repeats itself or is improbable, and is not silence.
    pub(super) fn needs_fallback(&self, d: &Decoded) -> bool {
        !d.tokens.is_empty() && !d.is_silence() && (self.is_repetitive(d) || d.avg_logprob < MIN_AVG_LOGPROB)
    }

    /// Decodes one window again by sampling at rising temperatures above the first attempt's;
    /// keeps the first acceptable result, else the most probable of those that do not repeat
    /// themselves (of all, if every one does), as faster-whisper chooses.
    pub(super) fn decode_with_fallback(&self, window: &[f32], context: &[usize], language: &str, first: Decoded) -> anyhow::Result<Decoded> {
        let mut windows = self.windows(window, [(0, window.len())]);
        let encoded = self.encode(&mut windows)?;
        let first_temperature = first.temperature;
        let mut tried = vec![first];
        for temperature in FALLBACK_TEMPERATURES.into_iter().filter(|&t| t > first_temperature) {
            let Some(candidate) = self.decode(&encoded, &[context], language, temperature)?.into_iter().next() else { continue };
            tracing::debug!(temperature, avg_logprob = candidate.avg_logprob, "fallback decode");
            if !self.needs_fallback(&candidate) {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
        let (repetitive, fluent): (Vec<Decoded>, Vec<Decoded>) = tried.into_iter().partition(|d| self.is_repetitive(d));
        let pool = if fluent.is_empty() { repetitive } else { fluent };
        Ok(pool.into_iter().max_by(|a, b| a.avg_logprob.total_cmp(&b.avg_logprob)).unwrap_or_default())
    }
}

/// faster-whisper's average log-probability of a hypothesis: CTranslate2's score is the sum of
/// the token log-probabilities over the length (length penalty 1), and faster-whisper divides
/// the sum by the length plus one (the end-of-text token), which is what its thresholds assume.
fn avg_logprob(score: f32, len: usize) -> f32 {
    score * len as f32 / (len + 1) as f32
}

/// Bytes of text over bytes of its zlib compression, as Whisper measures repetition.
pub(super) fn compression_ratio(text: &str) -> f64 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = z.write_all(text.as_bytes()).and_then(|()| z.finish()).map_or(1, |v| v.len().max(1));
    text.len() as f64 / compressed as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_compresses_well() {
        assert!(compression_ratio(&"the cat sat. ".repeat(30)) > MAX_COMPRESSION_RATIO);
        assert!(compression_ratio("And so, my fellow Americans, ask not what your country can do for you.") < MAX_COMPRESSION_RATIO);
    }
}
