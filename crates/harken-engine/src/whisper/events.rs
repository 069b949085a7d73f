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

use super::engine::{Window, WhisperEngine};
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

/// One decoded window: its text and Whisper's confidence in it.
#[derive(Debug, Clone)]
pub(super) struct Caption {
    pub(super) text: String,
    pub(super) avg_logprob: f32,
    pub(super) no_speech_prob: f32,
}

/// The model's default suppression list (`suppress_ids` in `config.json`) without the tokens
/// that open or close caption markup: brackets, parentheses, asterisks and music notes.
pub(super) fn caption_suppress_list(model_dir: &Path, tok: &Tokenizer) -> anyhow::Result<Vec<i32>> {
    let path = model_dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    #[derive(serde::Deserialize)]
    struct ModelConfig {
        #[serde(default)]
        suppress_ids: Vec<i32>,
    }
    let config: ModelConfig = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(config.suppress_ids.into_iter().filter(|&id| !is_markup_token(tok.token_str(id as usize))).collect())
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
    /// Audio events found in `samples`, as items with absolute times.
    /// `words` are the transcribed words (absolute times); events are looked for between them.
    pub(super) fn tag_events(&self, samples: &[f32], _speech: &[Span], words: &[Item], language: &str) -> anyhow::Result<Vec<Item>> {
        let started = std::time::Instant::now();
        let spans: Vec<(f64, f64)> = words.iter().map(|w| (w.start, w.end)).collect();
        let candidates = regions::candidates(samples, &spans, &regions::GapParams::default());
        let min_lp: f32 = std::env::var("HARKEN_EVENTS_MIN_LP").ok().and_then(|v| v.parse().ok()).unwrap_or(MIN_AVG_LOGPROB);
        let strong: f32 = std::env::var("HARKEN_EVENTS_STRONG").ok().and_then(|v| v.parse().ok()).unwrap_or(STRONG_PROMINENCE_DB);
        if std::env::var_os("HARKEN_EVENTS_DEBUG").is_some() {
            eprintln!("words: {:?}", words.iter().map(|w| format!("{}@{:.2}-{:.2}", w.text, w.start, w.end)).collect::<Vec<_>>().join(""));
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let suppress = caption_suppress_list(&self.config.model_dir, &self.tok)?;
        let prev: Vec<String> = match std::env::var("HARKEN_EVENTS_PROMPT") {
            Ok(p) if !p.is_empty() => std::iter::once("<|startofprev|>".to_owned()).chain(self.rough_tokens(&p)).collect(),
            _ => Vec::new(),
        };
        let debug = std::env::var_os("HARKEN_EVENTS_DEBUG").is_some();
        let mut events: Vec<Item> = Vec::new();
        for batch in candidates.chunks(self.config.batch_size.max(1)) {
            let mut windows: Vec<Window> =
                batch.iter().map(|c| Window { span: c.span, features: self.mel.window_features(&samples[c.span.0..c.span.1]) }).collect();
            let captions = self.decode_captions(&mut windows, language, &suppress, &prev, self.config.beam_size)?;
            for (cand, c) in batch.iter().zip(&captions) {
                let (a, b) = cand.span;
                let found = labels::labels_in(&c.text);
                let (start, end) = (a as f64 / SAMPLE_RATE as f64, b as f64 / SAMPLE_RATE as f64);
                if debug {
                    let lv: Vec<f32> = samples[a..b].chunks(320).map(regions::level_db).collect();
                    let mut all: Vec<f32> = samples.chunks(320).map(regions::level_db).collect();
                    all.sort_by(f32::total_cmp);
                    let mut l2 = lv.clone();
                    l2.sort_by(f32::total_cmp);
                    let pct = |v: &[f32], q: f64| v[((v.len() - 1) as f64 * q) as usize];
                    eprintln!("events: prom {:.1} {start:.2}-{end:.2} lp {:.2} ns {:.2} {:?} -> {found:?} | cand p50 {:.1} p90 {:.1} | rec p10 {:.1} p50 {:.1} p90 {:.1}", cand.prominence_db, c.avg_logprob, c.no_speech_prob, c.text, pct(&l2, 0.5), pct(&l2, 0.9), pct(&all, 0.1), pct(&all, 0.5), pct(&all, 0.9));
                }
                if c.avg_logprob < min_lp && cand.prominence_db < strong {
                    continue;
                }
                for label in found {
                    events.push(Item { text: format!(" ({label})"), start, end, logprob: c.avg_logprob as f64, kind: WordKind::AudioEvent, speaker: None });
                }
            }
        }
        let events = merge(events);
        tracing::debug!(candidates = candidates.len(), events = events.len(), elapsed_s = started.elapsed().as_secs_f64(), "audio events tagged");
        if debug {
            eprintln!("events: pass {:.2} s, {} candidates", started.elapsed().as_secs_f64(), candidates.len());
        }
        Ok(events)
    }

    /// Decodes each window with caption markup allowed; `prev` is an optional previous-text
    /// prompt (token strings) placed before `<|startoftranscript|>`.
    pub(super) fn decode_captions(&self, windows: &mut [Window], language: &str, suppress: &[i32], prev: &[String], beam: usize) -> anyhow::Result<Vec<Caption>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let n = windows.len();
        let encoded = self.encode(windows)?;
        let mut prompt: Vec<String> = prev.to_vec();
        prompt.extend(self.prompt(language));
        let options = WhisperOptions {
            beam_size: beam,
            return_scores: true,
            return_no_speech_prob: true,
            max_length: 64,
            suppress_tokens: suppress.to_vec(),
            ..WhisperOptions::default()
        };
        let results = self.model.generate(&encoded, &vec![prompt; n], &options)?;
        Ok(results
            .into_iter()
            .map(|r| {
                let ids: Vec<usize> = r.sequences_ids.into_iter().next().unwrap_or_default().into_iter().filter(|&t| self.tok.is_text(t)).collect();
                Caption { text: self.tok.decode(&ids), avg_logprob: r.scores.first().copied().unwrap_or(0.0), no_speech_prob: r.no_speech_prob }
            })
            .collect())
    }

    /// Greedy longest-match encoding of `text` into vocabulary token strings (enough for a
    /// fixed prompt; not Whisper's BPE merge order).
    pub(super) fn rough_tokens(&self, text: &str) -> Vec<String> {
        let vocab: std::collections::HashMap<&str, usize> = (0..self.tok.eot).map(|id| (self.tok.token_str(id), id)).collect();
        let bytes: String = text.replace(' ', "Ġ");
        let chars: Vec<char> = bytes.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let mut j = chars.len();
            while j > i + 1 && !vocab.contains_key(chars[i..j].iter().collect::<String>().as_str()) {
                j -= 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
        out
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
mod probe {
    use super::*;
    use crate::mel::SAMPLES_PER_WINDOW;
    use crate::vad::{self, VadParams};
    use crate::whisper::engine::EngineConfig;

    #[test]
    #[ignore]
    fn probe() {
        let model = std::env::var("PROBE_MODEL").unwrap_or("base".into());
        let dir = harken_models::resolve_whisper(&harken_models::default_models_dir(), &model).unwrap();
        let engine = WhisperEngine::load(EngineConfig::new(dir.clone(), model)).unwrap();
        let suppress = caption_suppress_list(&dir, &engine.tok).unwrap();
        let mut prev = vec!["<|startofprev|>".to_owned()];
        prev.extend(engine.rough_tokens(" (laughter) [Music] (applause) (dog barking) (thunder)"));
        eprintln!("prev {prev:?}");
        let td = std::path::PathBuf::from("/work/shared/testdata");
        let manifest = std::fs::read_to_string(td.join("manifest.tsv")).unwrap();
        let kinds = std::env::var("PROBE_KINDS").unwrap_or("event".into());
        let limit: usize = std::env::var("PROBE_LIMIT").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
        for line in manifest.lines().skip(1).filter(|l| kinds.split(',').any(|k| l.split('\t').nth(1) == Some(k))).take(limit) {
            let f: Vec<&str> = line.split('\t').collect();
            let samples = harken_audio::decode_file(&td.join(f[0])).unwrap().samples;
            let scores = vad::frame_scores(&samples);
            let regions = vad::speech_regions(&scores, samples.len(), &VadParams::default());
            let secs = |s: usize| s as f64 / 16000.0;
            eprintln!("== {} [{}] {:.1}s vad {:?}", f[0], f[4], secs(samples.len()), regions.iter().map(|r| (secs(r.0), secs(r.1))).collect::<Vec<_>>());
            let chunks: Vec<Span> = (0..samples.len()).step_by(SAMPLES_PER_WINDOW).take(2).map(|a| (a, (a + SAMPLES_PER_WINDOW).min(samples.len()))).collect();
            for (name, p) in [("plain", &Vec::new()), ("prev", &prev)] {
                let mut windows: Vec<Window> = chunks.iter().map(|&span| Window { span, features: engine.mel.window_features(&samples[span.0..span.1]) }).collect();
                let t0 = std::time::Instant::now();
                let caps = engine.decode_captions(&mut windows, "en", &suppress, p, 5).unwrap();
                for c in caps {
                    eprintln!("  {name:5} lp {:.2} ns {:.2} {:?}  ({:.1}s)", c.avg_logprob, c.no_speech_prob, c.text, t0.elapsed().as_secs_f32());
                }
            }
        }
    }
}
