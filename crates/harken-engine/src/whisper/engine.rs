//! [`WhisperEngine`]: the model, loaded once, and the transcription pipeline over it.

use std::path::PathBuf;

use anyhow::Context;
use ct2rs::sys::{ComputeType, Config, Device, StorageView, Whisper};
use harken_types::{iso639_1_to_3, normalize_language_code, Transcript, WordKind};

use super::bpe::BpeEncoder;
use super::decode::Decoded;
use super::streams::{Contexts, Streams};
use super::tokenizer::Tokenizer;
use super::unheard;
use super::words::{spread_words, words_from_alignment, Alignment, TimedWord};
use crate::api::{EngineError, Progress, SpeechEngine, TranscribeOptions, SAMPLE_RATE};
use crate::assemble::{self, Item};
use crate::diarize::{assign_speakers, Diarizer};
use crate::mel::{MelExtractor, FRAMES_PER_WINDOW, HOP, SAMPLES_PER_WINDOW};
use crate::vad::silero::Silero;
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
    /// Show each window the text of the window before it (see `streams`). Off by default:
    /// measured, it raised WER on our benchmark (docs/BENCHMARKS.md).
    pub condition_on_previous_text: bool,
    /// Silero VAD's `silero_vad_16k.safetensors`; without it the embedded earshot VAD runs.
    pub vad_model: Option<PathBuf>,
    /// pyannote's segmentation-3.0 checkpoint (`pyannote-segmentation/pytorch_model.bin`); with
    /// it, diarization counts at least the voices it hears alone within 10 s and turns change
    /// where it hears the voice change.
    pub segmentation_model: Option<PathBuf>,
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
            condition_on_previous_text: false,
            vad_model: None,
            segmentation_model: None,
        }
    }
}

/// Whisper loaded once; `transcribe` may be called from several threads.
pub struct WhisperEngine {
    pub(super) model: Whisper,
    pub(super) tok: Tokenizer,
    /// Text → tokens for prompts; `None` when the model directory has no `tokenizer.json`.
    bpe: Option<BpeEncoder>,
    pub(super) mel: MelExtractor,
    diarizer: Option<Diarizer>,
    silero: Option<Silero>,
    pub(super) config: EngineConfig,
}

impl std::fmt::Debug for WhisperEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperEngine").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Seed of CTranslate2's random generators, which draw the temperature fallback's samples
/// (`decode.rs`). Fixed, so a process that transcribes the same files in the same order writes
/// the same transcripts (a CLI run, a benchmark), where a seed from the OS made meeting clips
/// come out differently run to run. A server's draws go on from task to task: the generator
/// lives per thread and is seeded once, so one task's output still depends on those before it.
const SAMPLING_SEED: u32 = 0x6861_726b; // "hark"

/// One window of audio on its way through the model.
pub(super) struct Window {
    pub(super) span: Span,
    pub(super) features: Vec<f32>,
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
        // Before the model's thread first samples: CTranslate2 seeds each thread's generator once.
        ct2rs::set_random_seed(SAMPLING_SEED);
        let model = Whisper::new(&config.model_dir, ct2_config)
            .with_context(|| format!("loading the Whisper model in {}", config.model_dir.display()))?;
        let tok = Tokenizer::load(&config.model_dir, model.is_multilingual())?;
        let bpe = match BpeEncoder::load(&config.model_dir) {
            Ok(bpe) => Some(bpe),
            Err(e) => {
                tracing::warn!("prompts unavailable: {e:#}");
                None
            }
        };
        let mel = MelExtractor::new(model.n_mels());
        let diarizer =
            config.speaker_model.as_deref().map(Diarizer::load).transpose().context("loading the speaker model")?;
        let diarizer = match (diarizer, config.segmentation_model.as_deref()) {
            (Some(d), Some(path)) => Some(d.with_segmenter(path).context("loading the segmentation model")?),
            (d, _) => d,
        };
        tracing::info!(model = %config.model_name, threads, compute_type = %config.compute_type, diarization = diarizer.is_some(), "whisper model loaded");
        let silero = config.vad_model.as_deref().map(Silero::load).transpose().context("loading the VAD model")?;
        Ok(WhisperEngine { model, tok, bpe, mel, diarizer, silero, config })
    }

    fn run(&self, samples: &[f32], options: &TranscribeOptions, progress: Progress<'_>) -> anyhow::Result<Transcript> {
        let duration = samples.len() as f64 / SAMPLE_RATE as f64;
        let scores = match &self.silero {
            Some(silero) => vad::silero_frame_scores(silero, samples),
            None => vad::frame_scores(samples),
        };
        let regions = vad::speech_regions(&scores, samples.len(), &VadParams::default());
        let diarizer = self.diarizer.as_ref().filter(|_| options.diarize);
        // Diarization needs only the audio and the speech regions, so it runs beside decoding:
        // decoding leaves cores idle between its steps, and the diarizer fills them.
        let (heard, turns) = std::thread::scope(|scope| {
            let diarization = diarizer.map(|diarizer| {
                // The decoder's regions: on Silero's scores they score better than the tighter
                // `diarization_regions` (46.2 vs 51.1 % DER, docs/DIARIZATION.md).
                scope.spawn(|| diarizer.diarize(samples, &regions, options.num_speakers, options.diarization_threshold))
            });
            let heard = self.hear(samples, &scores, &regions, options, progress);
            let turns = diarization.map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            (heard, turns)
        });
        let (mut items, language, language_probability) = heard?;
        widen_words(&mut items, &scores, duration);
        if let Some(turns) = turns {
            assign_speakers(&mut items, &turns);
        }
        let whisper_code = language.unwrap_or_else(|| self.default_language().to_owned());
        let code = iso639_1_to_3(&whisper_code).unwrap_or("und");
        Ok(assemble::transcript(items, duration, code, language_probability))
    }

    /// Everything Whisper hears in `samples`: the words of every window, the speech it passed
    /// over decoded again, and the audio events when asked; sorted by start. With the language
    /// (detected or given) and its probability.
    fn hear(
        &self,
        samples: &[f32],
        scores: &[f32],
        regions: &[(usize, usize)],
        options: &TranscribeOptions,
        progress: Progress<'_>,
    ) -> anyhow::Result<(Vec<Item>, Option<String>, f32)> {
        let spans = vad::windows(regions, scores, SAMPLES_PER_WINDOW);
        let mut language = options.language.clone();
        let mut language_probability = if language.is_some() { 1.0 } else { 0.0 };
        let temperature = options.temperature.unwrap_or(0.0).max(0.0);
        let streams = Streams::new(spans.len(), self.config.batch_size);
        let mut contexts = Contexts::new(streams.len(), self.prompt_tokens(options)?, self.config.condition_on_previous_text);
        let mut items_of_window: Vec<Vec<Item>> = vec![Vec::new(); spans.len()];
        for step in 0..streams.steps() {
            let batch = streams.at(step);
            let mut windows = self.windows(samples, batch.iter().map(|&(_, w)| spans[w]));
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
            let stream_ids: Vec<usize> = batch.iter().map(|&(s, _)| s).collect();
            let batch_contexts: Vec<Vec<usize>> = contexts.for_batch(&stream_ids).into_iter().map(<[usize]>::to_vec).collect();
            let context_refs: Vec<&[usize]> = batch_contexts.iter().map(Vec::as_slice).collect();
            let heard = self.transcribe_encoded(samples, scores, &encoded, &windows, &context_refs, &lang, temperature)?;
            for ((stream, w), (d, items)) in batch.iter().copied().zip(heard) {
                if d.is_silence() {
                    continue;
                }
                if d.resets_context() {
                    contexts.reset(stream);
                } else {
                    contexts.push(stream, &d.tokens);
                }
                items_of_window[w] = items;
            }
            progress((step + 1) as f32 / streams.steps() as f32);
        }
        let mut items: Vec<Item> = items_of_window.into_iter().flatten().collect();
        if let Some(lang) = &language {
            let again = self.transcribe_unheard(samples, scores, regions, &items, contexts.initial(), lang, temperature)?;
            if !again.is_empty() {
                items.extend(again);
                items.sort_by(|a, b| a.start.total_cmp(&b.start));
            }
        }
        if options.tag_audio_events {
            let lang = language.as_deref().unwrap_or(self.default_language());
            let events = self.tag_events(samples, regions, &items, lang)?;
            items.extend(events);
            items.sort_by(|a, b| a.start.total_cmp(&b.start));
        }
        Ok((items, language, language_probability))
    }

    /// The caller's prompt as tokens, with the leading space Whisper's training text has.
    fn prompt_tokens(&self, options: &TranscribeOptions) -> anyhow::Result<Vec<usize>> {
        let Some(prompt) = options.prompt.as_deref().map(str::trim).filter(|p| !p.is_empty()) else { return Ok(Vec::new()) };
        let bpe = self.bpe.as_ref().context("this model directory has no tokenizer.json, which prompts need")?;
        Ok(bpe.encode(&self.tok, &format!(" {prompt}")))
    }

    fn default_language(&self) -> &'static str {
        "en"
    }

    /// Each span's log-mel features, ready for `encode`.
    pub(super) fn windows(&self, samples: &[f32], spans: impl IntoIterator<Item = Span>) -> Vec<Window> {
        spans.into_iter().map(|span| Window { span, features: self.mel.window_features(&samples[span.0..span.1]) }).collect()
    }

    /// Decodes encoded windows (sampling again where the output looks like a hallucination)
    /// and times their words: for each window, what decoding produced and its words as items
    /// with absolute times, trimmed to the VAD's speech (none for a window of silence).
    #[allow(clippy::too_many_arguments)]
    fn transcribe_encoded(
        &self,
        samples: &[f32],
        scores: &[f32],
        encoded: &StorageView<'_>,
        windows: &[Window],
        contexts: &[&[usize]],
        language: &str,
        temperature: f32,
    ) -> anyhow::Result<Vec<(Decoded, Vec<Item>)>> {
        let mut decoded = self.decode(encoded, contexts, language, temperature)?;
        for ((window, d), context) in windows.iter().zip(decoded.iter_mut()).zip(contexts) {
            if self.needs_fallback(d) {
                *d = self.decode_with_fallback(&samples[window.span.0..window.span.1], context, language, std::mem::take(d))?;
            }
        }
        let timed = self.align(encoded, windows, &decoded, language)?;
        Ok(decoded
            .into_iter()
            .zip(timed)
            .zip(windows)
            .map(|((d, words), window)| {
                let items = if d.is_silence() {
                    Vec::new()
                } else {
                    window_items(window.span, words)
                        .map(|mut item| {
                            (item.start, item.end) = vad::trim_to_speech(item.start, item.end, scores);
                            item
                        })
                        .collect()
                };
                (d, items)
            })
            .collect())
    }

    /// Decodes again, each on its own, the stretches of speech that no word of `items` covers
    /// (see [`unheard`]); returns the words found there.
    #[allow(clippy::too_many_arguments)]
    fn transcribe_unheard(
        &self,
        samples: &[f32],
        scores: &[f32],
        regions: &[Span],
        items: &[Item],
        prompt: &[usize],
        language: &str,
        temperature: f32,
    ) -> anyhow::Result<Vec<Item>> {
        let words: Vec<(f64, f64)> = items.iter().map(|i| (i.start, i.end)).collect();
        let spans: Vec<Span> = unheard::unheard_spans(scores, regions, &words)
            .into_iter()
            .flat_map(|span| vad::windows(&[span], scores, SAMPLES_PER_WINDOW))
            .collect();
        let mut found = Vec::new();
        for batch in spans.chunks(self.config.batch_size.max(1)) {
            let mut windows = self.windows(samples, batch.iter().copied());
            let encoded = self.encode(&mut windows)?;
            let contexts = vec![prompt; batch.len()];
            let readings = self.transcribe_encoded(samples, scores, &encoded, &windows, &contexts, language, temperature)?;
            for ((d, words), window) in readings.into_iter().zip(&windows) {
                // What the gate weighed, for tuning it (`HARKEN_LOG=harken_engine=debug`).
                tracing::debug!(
                    start = window.span.0 as f64 / SAMPLE_RATE as f64,
                    end = window.span.1 as f64 / SAMPLE_RATE as f64,
                    no_speech = d.no_speech_prob,
                    avg_logprob = d.avg_logprob,
                    kept = d.is_confident(),
                    text = words.iter().map(|w| w.text.as_str()).collect::<String>(),
                    "unheard stretch decoded again"
                );
                // The first pass heard nothing here, so only a confident reading is kept.
                if d.is_confident() {
                    found.extend(words);
                }
            }
        }
        tracing::debug!(stretches = spans.len(), words = found.len(), "speech without words decoded again");
        Ok(found)
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

impl SpeechEngine for WhisperEngine {
    fn transcribe(&self, samples: &[f32], options: &TranscribeOptions, progress: Progress<'_>) -> Result<Transcript, EngineError> {
        if options.diarize && self.diarizer.is_none() {
            // Words without the speaker labels asked for would pass for one speaker talking.
            return Err(EngineError::Invalid(
                "diarize: speaker labels are unavailable here: the speaker model is not installed (the operator \
                 can run `harken models fetch resemblyzer`, or `campplus` for that encoder); ask again without \
                 speaker labels"
                    .to_owned(),
            ));
        }
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

    fn voice_prints(&self, clips: &[&[f32]]) -> Option<(Vec<Option<Vec<f32>>>, f32)> {
        self.diarizer.as_ref().map(|d| d.voice_prints(clips))
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

/// Widens every word into the speech next to it (see [`vad::widen_to_speech`]), never into
/// another item nor past the end of the audio (`duration`, seconds; the last VAD frame runs
/// over it). `items` are in time order; audio events keep their times.
fn widen_words(items: &mut [Item], scores: &[f32], duration: f64) {
    let mut floor = 0.0f64;
    for i in 0..items.len() {
        if items[i].kind == WordKind::Word {
            let ceiling = items.get(i + 1).map_or(duration, |next| next.start);
            (items[i].start, items[i].end) = vad::widen_to_speech(items[i].start, items[i].end, floor, ceiling, scores);
        }
        floor = floor.max(items[i].end);
    }
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
    fn caption_markup_is_recognised() {
        for m in ["[Music]", " (laughs)", "*applause*", "♪", "[BLANK_AUDIO]", "(Laughter)."] {
            assert!(is_markup(m), "{m}");
        }
        for w in ["Hello", " (so", "world)", "3*4"] {
            assert!(!is_markup(w), "{w}");
        }
    }
}
