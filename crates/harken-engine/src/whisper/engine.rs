//! [`WhisperEngine`]: the model, loaded once, and the transcription pipeline over it.

use std::path::PathBuf;

use anyhow::Context;
use ct2rs::sys::{ComputeType, Config, Device, StorageView, Whisper, WhisperOptions};
use harken_types::{iso639_1_to_3, normalize_language_code, Transcript, WordKind};

use super::tokenizer::Tokenizer;
use super::words::{spread_words, words_from_alignment, Alignment, TimedWord};
use crate::api::{EngineError, Progress, SpeechEngine, TranscribeOptions, SAMPLE_RATE};
use crate::assemble::{self, Item};
use crate::diarize::{assign_speakers, Diarizer};
use crate::mel::{MelExtractor, FRAMES_PER_WINDOW, HOP, SAMPLES_PER_WINDOW};
use crate::vad::{self, Span, VadParams};

/// How to load and run the model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// A CTranslate2 Whisper directory (`model.bin`, `config.json`, `vocabulary.txt`).
    pub model_dir: PathBuf,
    /// Shown in logs and health output.
    pub model_name: String,
    /// Inference threads; 0 = one per core. Never more than the cores.
    pub threads: usize,
    /// Beam width (faster-whisper's default, 5).
    pub beam_size: usize,
    /// Windows encoded and decoded together. Larger is faster and uses more memory.
    pub batch_size: usize,
    /// Weight precision on load: `int8` (default), `int8_float32`, `float32`, `float16`, ...
    pub compute_type: String,
    /// Resemblyzer's `pretrained.pt` (GE2E speaker encoder); without it `diarize` is refused.
    pub speaker_model: Option<PathBuf>,
}

impl EngineConfig {
    pub fn new(model_dir: impl Into<PathBuf>, model_name: impl Into<String>) -> Self {
        EngineConfig {
            model_dir: model_dir.into(),
            model_name: model_name.into(),
            threads: 0,
            beam_size: 5,
            batch_size: 4,
            compute_type: "int8".to_owned(),
            speaker_model: None,
        }
    }
}

/// Whisper loaded once; `transcribe` may be called from several threads.
pub struct WhisperEngine {
    pub(super) model: Whisper,
    pub(super) tok: Tokenizer,
    pub(super) mel: MelExtractor,
    diarizer: Option<Diarizer>,
    pub(super) config: EngineConfig,
}

impl std::fmt::Debug for WhisperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperEngine").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One window of audio on its way through the model.
pub(super) struct Window {
    pub(super) span: Span,
    pub(super) features: Vec<f32>,
}

/// Sampling temperatures tried, in order, when beam search output looks like a hallucination
/// (Whisper's and faster-whisper's schedule).
const FALLBACK_TEMPERATURES: [f32; 5] = [0.2, 0.4, 0.6, 0.8, 1.0];
/// Text that compresses better than this is repetitive ("the the the ...").
const MAX_COMPRESSION_RATIO: f64 = 2.4;
const MIN_AVG_LOGPROB: f32 = -1.0;
const NO_SPEECH_THRESHOLD: f32 = 0.6;

/// What decoding produced for one window.
#[derive(Debug, Default)]
struct Decoded {
    tokens: Vec<usize>,
    avg_logprob: f32,
    no_speech_prob: f32,
}

impl WhisperEngine {
    pub fn load(config: EngineConfig) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if config.threads == 0 { cores } else { config.threads.min(cores) };
        let ct2_config = Config {
            device: Device::CPU,
            compute_type: parse_compute_type(&config.compute_type)?,
            num_threads_per_replica: threads,
            ..Config::default()
        };
        let model = Whisper::new(&config.model_dir, ct2_config)
            .with_context(|| format!("loading the Whisper model in {}", config.model_dir.display()))?;
        let tok = Tokenizer::load(&config.model_dir, model.is_multilingual())?;
        let mel = MelExtractor::new(model.n_mels());
        let diarizer = config.speaker_model.as_deref().map(Diarizer::load).transpose().context("loading the speaker model")?;
        tracing::info!(model = %config.model_name, threads, compute_type = %config.compute_type, diarization = diarizer.is_some(), "whisper model loaded");
        Ok(WhisperEngine { model, tok, mel, diarizer, config })
    }

    fn run(&self, samples: &[f32], options: &TranscribeOptions, progress: Progress<'_>) -> anyhow::Result<Transcript> {
        let duration = samples.len() as f64 / SAMPLE_RATE as f64;
        let scores = vad::frame_scores(samples);
        let regions = vad::speech_regions(&scores, samples.len(), &VadParams::default());
        let spans = vad::windows(&regions, &scores, SAMPLES_PER_WINDOW);
        let mut language = options.language.clone();
        let mut language_probability = if language.is_some() { 1.0 } else { 0.0 };
        let mut items: Vec<Item> = Vec::new();
        let batch_size = self.config.batch_size.max(1);
        for (b, batch) in spans.chunks(batch_size).enumerate() {
            let mut windows: Vec<Window> = batch
                .iter()
                .map(|&span| Window { span, features: self.mel.window_features(&samples[span.0..span.1]) })
                .collect();
            let encoded = self.encode(&mut windows)?;
            let lang = match &language {
                Some(l) => l.clone(),
                None => {
                    let (l, p) = self.detect_language(&encoded, &windows)?;
                    language_probability = p;
                    language = Some(l.clone());
                    l
                }
            };
            let mut decoded = self.decode(&encoded, windows.len(), &lang)?;
            for (window, d) in windows.iter().zip(decoded.iter_mut()) {
                if self.needs_fallback(d) {
                    *d = self.decode_with_fallback(&samples[window.span.0..window.span.1], &lang, std::mem::take(d))?;
                }
            }
            let timed = self.align(&encoded, &windows, &decoded, &lang)?;
            for ((window, d), words) in windows.iter().zip(&decoded).zip(timed) {
                if !d.is_silence() {
                    items.extend(window_items(window.span, words).map(|mut item| {
                        (item.start, item.end) = vad::trim_to_speech(item.start, item.end, &scores);
                        item
                    }));
                }
            }
            progress(((b + 1) * batch_size).min(spans.len()) as f32 / spans.len() as f32);
        }
        if options.tag_audio_events {
            let lang = language.as_deref().unwrap_or(self.default_language());
            let events = self.tag_events(samples, &regions, &items, lang)?;
            items.extend(events);
            items.sort_by(|a, b| a.start.total_cmp(&b.start));
        }
        if let (true, Some(diarizer)) = (options.diarize, &self.diarizer) {
            let turns = diarizer.diarize(samples, &regions, options.num_speakers, options.diarization_threshold);
            assign_speakers(&mut items, &turns);
        }
        let whisper_code = language.unwrap_or_else(|| self.default_language().to_owned());
        let code = iso639_1_to_3(&whisper_code).unwrap_or("und");
        Ok(assemble::transcript(items, duration, code, language_probability))
    }

    fn default_language(&self) -> &'static str {
        "en"
    }

    pub(super) fn encode(&self, windows: &mut [Window]) -> anyhow::Result<StorageView<'static>> {
        let n_mels = self.mel.n_mels();
        let mut batch: Vec<f32> = Vec::with_capacity(windows.len() * n_mels * FRAMES_PER_WINDOW);
        for w in windows.iter_mut() {
            batch.append(&mut w.features);
        }
        let shape = [windows.len(), n_mels, FRAMES_PER_WINDOW];
        let view = StorageView::new(&shape, &mut batch, Device::CPU)?;
        self.model.encode(&view, false).context("encoding audio")
    }

    /// The most likely language over the batch's windows, weighted by their length.
    fn detect_language(&self, encoded: &StorageView<'_>, windows: &[Window]) -> anyhow::Result<(String, f32)> {
        if !self.tok.multilingual {
            return Ok(("en".to_owned(), 1.0));
        }
        let results = self.model.detect_language(encoded).context("detecting the language")?;
        let mut totals: Vec<(String, f64)> = Vec::new();
        let mut weight_sum = 0.0;
        for (window, candidates) in windows.iter().zip(results) {
            let weight = (window.span.1 - window.span.0) as f64;
            weight_sum += weight;
            for c in candidates {
                let (token, p) = detection_fields(&c)?;
                let code = token.trim_start_matches("<|").trim_end_matches("|>").to_owned();
                match totals.iter_mut().find(|(l, _)| *l == code) {
                    Some((_, t)) => *t += weight * p as f64,
                    None => totals.push((code, weight * p as f64)),
                }
            }
        }
        let (code, total) = totals
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .context("language detection returned no candidates")?;
        Ok((code, (total / weight_sum.max(1.0)) as f32))
    }

    pub(super) fn prompt(&self, language: &str) -> Vec<String> {
        let mut ids = self.tok.sot_sequence(language);
        ids.push(self.tok.no_timestamps);
        ids.into_iter().map(|id| self.tok.token_str(id).to_owned()).collect()
    }

    fn decode(&self, encoded: &StorageView<'_>, n: usize, language: &str) -> anyhow::Result<Vec<Decoded>> {
        let prompts = vec![self.prompt(language); n];
        let options = WhisperOptions {
            beam_size: self.config.beam_size,
            return_scores: true,
            return_no_speech_prob: true,
            ..WhisperOptions::default()
        };
        let results = self.model.generate(encoded, &prompts, &options)?;
        Ok(results
            .into_iter()
            .map(|r| Decoded {
                tokens: r.sequences_ids.into_iter().next().unwrap_or_default().into_iter().filter(|&t| self.tok.is_text(t)).collect(),
                avg_logprob: r.scores.first().copied().unwrap_or(0.0),
                no_speech_prob: r.no_speech_prob,
            })
            .collect())
    }

    /// Beam search output that repeats itself or is improbable, and is not silence.
    fn needs_fallback(&self, d: &Decoded) -> bool {
        !d.tokens.is_empty()
            && !d.is_silence()
            && (compression_ratio(&self.tok.decode(&d.tokens)) > MAX_COMPRESSION_RATIO || d.avg_logprob < MIN_AVG_LOGPROB)
    }

    /// Decodes one window again by sampling at rising temperatures; keeps the first acceptable
    /// result, else the most probable one seen.
    fn decode_with_fallback(&self, window: &[f32], language: &str, first: Decoded) -> anyhow::Result<Decoded> {
        let mut windows = vec![Window { span: (0, window.len()), features: self.mel.window_features(window) }];
        let encoded = self.encode(&mut windows)?;
        let mut best = first;
        for temperature in FALLBACK_TEMPERATURES {
            let options = WhisperOptions {
                beam_size: 1,
                sampling_topk: 0,
                sampling_temperature: temperature,
                num_hypotheses: 5,
                return_scores: true,
                return_no_speech_prob: true,
                ..WhisperOptions::default()
            };
            let result = self.model.generate(&encoded, &[self.prompt(language)], &options)?.into_iter().next();
            let Some(r) = result else { continue };
            let candidate = r
                .sequences_ids
                .into_iter()
                .zip(r.scores)
                .map(|(ids, score)| Decoded {
                    tokens: ids.into_iter().filter(|&t| self.tok.is_text(t)).collect(),
                    avg_logprob: score,
                    no_speech_prob: r.no_speech_prob,
                })
                .max_by(|a, b| a.avg_logprob.total_cmp(&b.avg_logprob));
            let Some(candidate) = candidate else { continue };
            tracing::debug!(temperature, avg_logprob = candidate.avg_logprob, "fallback decode");
            if !self.needs_fallback(&candidate) {
                return Ok(candidate);
            }
            if candidate.avg_logprob > best.avg_logprob {
                best = candidate;
            }
        }
        Ok(best)
    }

    fn align(&self, encoded: &StorageView<'_>, windows: &[Window], decoded: &[Decoded], language: &str) -> anyhow::Result<Vec<Vec<TimedWord>>> {
        let text_tokens: Vec<Vec<usize>> = decoded.iter().map(|d| d.tokens.clone()).collect();
        let num_frames: Vec<usize> = windows.iter().map(|w| ((w.span.1 - w.span.0) / HOP).max(1)).collect();
        let sot = self.tok.sot_sequence(language);
        let has_text = text_tokens.iter().any(|t| !t.is_empty());
        let alignments = if has_text { self.model.align(encoded, &sot, &text_tokens, &num_frames, 7)? } else { Vec::new() };
        Ok(windows
            .iter()
            .zip(&text_tokens)
            .enumerate()
            .map(|(i, (window, tokens))| {
                if tokens.is_empty() {
                    return Vec::new();
                }
                let seconds = (window.span.1 - window.span.0) as f64 / SAMPLE_RATE as f64;
                alignments
                    .get(i)
                    .and_then(|a| {
                        let alignment = Alignment {
                            path: a.alignments.iter().map(|p| (p.token_x, p.frame_x)).collect(),
                            token_probs: a.text_token_probs.clone(),
                        };
                        words_from_alignment(&self.tok, tokens, &alignment, language)
                    })
                    .unwrap_or_else(|| spread_words(&self.tok, tokens, language, seconds))
            })
            .collect())
    }
}

impl Decoded {
    /// Whisper's own "this window is not speech" rule.
    fn is_silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_THRESHOLD && self.avg_logprob < MIN_AVG_LOGPROB
    }
}

/// Bytes of text over bytes of its zlib compression, as Whisper measures repetition.
fn compression_ratio(text: &str) -> f64 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = z.write_all(text.as_bytes()).and_then(|()| z.finish()).map_or(1, |v| v.len().max(1));
    text.len() as f64 / compressed as f64
}

impl SpeechEngine for WhisperEngine {
    fn transcribe(&self, samples: &[f32], options: &TranscribeOptions, progress: Progress<'_>) -> Result<Transcript, EngineError> {
        let mut options = options.clone();
        if let Some(requested) = options.language.take().filter(|l| !l.trim().is_empty()) {
            let code = normalize_language_code(&requested)
                .ok_or_else(|| EngineError::Invalid(format!("language_code: unknown language \"{requested}\"; expected an ISO 639-1 or 639-3 code such as \"en\" or \"eng\"")))?;
            if !self.tok.multilingual && code != "en" {
                return Err(EngineError::Invalid(format!(
                    "language_code: model {} transcribes English only, got \"{requested}\"",
                    self.config.model_name
                )));
            }
            options.language = Some(code.to_owned());
        }
        self.run(samples, &options, progress).map_err(|e| EngineError::Inference(format!("{e:#}")))
    }

    fn model_name(&self) -> &str {
        &self.config.model_name
    }

    fn supports_diarization(&self) -> bool {
        self.diarizer.is_some()
    }

    fn supports_audio_events(&self) -> bool {
        super::events::SUPPORTED
    }
}

/// A window's words as transcript items with absolute times. Whisper's caption markup
/// ("[Music]", "(laughs)") is never a word; events are tagged by their own pass.
fn window_items(span: Span, words: Vec<TimedWord>) -> impl Iterator<Item = Item> {
    let offset = span.0 as f64 / SAMPLE_RATE as f64;
    let window_end = span.1 as f64 / SAMPLE_RATE as f64;
    let markup = super::events::markup_mask(&words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>());
    words.into_iter().zip(markup).filter(|(w, m)| !m && !is_markup(&w.text)).map(|(w, _)| w).map(move |w| Item {
        start: (offset + w.start).min(window_end),
        end: (offset + w.end).min(window_end),
        logprob: w.probability.max(1e-6).ln(),
        text: w.text,
        kind: WordKind::Word,
        speaker: None,
    })
}

/// Non-speech annotations Whisper learned from captions: "[Music]", "(laughs)", "*applause*", "♪".
pub(super) fn is_markup(word: &str) -> bool {
    let w = word.trim().trim_end_matches(['.', ',', '!', '?']);
    let bracketed = |o: char, c: char| w.starts_with(o) && w.ends_with(c);
    w.is_empty() || bracketed('[', ']') || bracketed('(', ')') || bracketed('*', '*') || w.chars().all(|c| "♪♫♬-".contains(c))
}

fn parse_compute_type(s: &str) -> anyhow::Result<ComputeType> {
    Ok(match s {
        "int8" => ComputeType::INT8,
        "int8_float32" => ComputeType::INT8_FLOAT32,
        "int8_float16" => ComputeType::INT8_FLOAT16,
        "int16" => ComputeType::INT16,
        "float32" => ComputeType::FLOAT32,
        "float16" => ComputeType::FLOAT16,
        "bfloat16" => ComputeType::BFLOAT16,
        "auto" => ComputeType::AUTO,
        "default" => ComputeType::DEFAULT,
        other => anyhow::bail!("compute type: expected int8, int8_float32, int8_float16, int16, float32, float16, bfloat16, auto or default, got \"{other}\""),
    })
}

/// ct2rs 0.10 keeps `DetectionResult`'s fields private and offers no getters; its `Debug`
/// output (`DetectionResult { language: "<|en|>", probability: 0.98 }`) is the only way in.
fn detection_fields(r: &ct2rs::sys::DetectionResult) -> anyhow::Result<(String, f32)> {
    let s = format!("{r:?}");
    let language = s.split('"').nth(1).context("language in detection result")?.to_owned();
    let probability = s
        .rsplit("probability: ")
        .next()
        .and_then(|p| p.trim_end_matches([' ', '}']).parse().ok())
        .context("probability in detection result")?;
    Ok((language, probability))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_compresses_well() {
        assert!(compression_ratio(&"the cat sat. ".repeat(30)) > MAX_COMPRESSION_RATIO);
        assert!(compression_ratio("And so, my fellow Americans, ask not what your country can do for you.") < MAX_COMPRESSION_RATIO);
    }

    #[test]
    fn caption_markup_is_recognised() {
        for m in ["[Music]", " (laughs)", "*applause*", "♪", "[BLANK_AUDIO]", "(Laughter)."] {
            assert!(is_markup(m), "{m}");
        }
        for w in ["Hello", " (so", "world)", "3*4"] {
            assert!(!is_markup(w), "{w}");
        }
    }
}
