#![cfg(feature = "whisper")]
//! The Whisper engine on real models and real audio: recordings from `../shared/testdata`
//! (override with `HARKEN_TESTDATA`) and speech, silence and noise the tests make with
//! espeak-ng and sox. Models come from `HARKEN_MODELS_DIR` (default `~/.cache/harken/models`,
//! filled by `harken models fetch base tiny.en`, which `scripts/test` runs first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use harken_engine::diarize::eval;
use harken_engine::{EngineConfig, EngineError, SpeechEngine, TranscribeOptions, WhisperEngine, WordKind};

fn models_dir() -> PathBuf {
    std::env::var_os("HARKEN_MODELS_DIR").map(PathBuf::from).unwrap_or_else(harken_models::default_models_dir)
}

fn engine(name: &str) -> Arc<WhisperEngine> {
    static BASE: OnceLock<Arc<WhisperEngine>> = OnceLock::new();
    static TINY: OnceLock<Arc<WhisperEngine>> = OnceLock::new();
    let cell = if name == "base" { &BASE } else { &TINY };
    cell.get_or_init(|| {
        let dir = harken_models::resolve_whisper(&models_dir(), name)
            .unwrap_or_else(|e| panic!("model {name} missing ({e}); run `harken models fetch {name}`"));
        let mut config = EngineConfig::new(dir, name);
        // Tests run in parallel: one thread per engine call keeps them from fighting.
        config.threads = 1;
        Arc::new(WhisperEngine::load(config).expect("model loads"))
    })
    .clone()
}

pub fn testdata() -> PathBuf {
    eval::testdata_dir()
}

/// Every row of the test data's manifest.
fn manifest() -> Vec<eval::ManifestRow> {
    eval::manifest_rows(&testdata()).unwrap_or_else(|e| panic!("{e:#}; set HARKEN_TESTDATA"))
}

fn decode(path: &Path) -> Vec<f32> {
    harken_audio::decode_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).samples
}

fn transcribe(model: &str, samples: &[f32], options: &TranscribeOptions) -> harken_engine::Transcript {
    let t = engine(model).transcribe(samples, options, &|_| {}).expect("transcription succeeds");
    t.check().unwrap_or_else(|e| panic!("transcript breaks the format rules: {e}\n{t:#?}"));
    t
}

fn plain() -> TranscribeOptions {
    TranscribeOptions { diarize: false, tag_audio_events: false, ..TranscribeOptions::default() }
}

/// Lower case, punctuation removed, single spaces.
fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn tool(name: &str, args: &[&str]) {
    let status = Command::new(name)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{name} is needed by this test ({e}); run scripts/install-deps"));
    assert!(status.success(), "{name} {args:?} failed");
}

#[test]
fn jfk_comes_out_word_exact_with_times_inside_the_audio() {
    let samples = decode(&testdata().join("asr/jfk_inaugural_excerpt.wav"));
    let t = transcribe("base", &samples, &plain());
    assert_eq!(
        normalise(&t.text),
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
    );
    assert_eq!(t.language_code, "eng");
    assert!(t.language_probability > 0.5, "language probability {}", t.language_probability);
    let duration = samples.len() as f64 / 16_000.0;
    let words: Vec<_> = t.words.iter().filter(|w| w.kind == WordKind::Word).collect();
    assert!(words.iter().all(|w| w.end <= duration && w.speaker_id.is_none()));
    assert!(words.iter().all(|w| w.logprob <= 0.0 && w.logprob > -20.0));
    assert!(words.iter().any(|w| w.text == "Americans,"), "punctuation stays attached: {}", t.text);
    // "ask not" is spoken around 3.6-5 s in this recording.
    let ask = words.iter().find(|w| w.text == "ask").expect("the word ask");
    assert!((3.0..5.5).contains(&ask.start), "ask starts at {}", ask.start);
}

#[test]
fn silence_and_noise_produce_no_words() {
    let dir = tempfile::tempdir().unwrap();
    let silence = dir.path().join("silence.wav");
    let noise = dir.path().join("noise.wav");
    tool("sox", &["-n", "-r", "16000", "-c", "1", silence.to_str().unwrap(), "trim", "0", "20"]);
    // `-R`: the same noise on every run. With a random draw this test failed once in a CI dry
    // run (tiny.en wrote "I'm not going to be here.") and passed on 230 other draws through the
    // CLI; a fixed draw makes a failure here a change in the engine, not luck.
    tool(
        "sox",
        &["-R", "-n", "-r", "16000", "-c", "1", noise.to_str().unwrap(), "synth", "20", "brownnoise", "vol", "0.3"],
    );
    for path in [&silence, &noise] {
        let t = transcribe("tiny.en", &decode(path), &plain());
        assert!(t.words.is_empty(), "{}: words on non-speech: {:?}", path.display(), t.text);
        assert_eq!(t.text, "");
    }
}

#[test]
fn synthetic_speech_after_leading_silence_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech.wav");
    let padded = dir.path().join("padded.wav");
    tool("espeak-ng", &["-w", speech.to_str().unwrap(), "The quick brown fox jumps over the lazy dog."]);
    tool("sox", &[speech.to_str().unwrap(), "-r", "16000", padded.to_str().unwrap(), "pad", "8", "3"]);
    let t = transcribe("tiny.en", &decode(&padded), &plain());
    let text = normalise(&t.text);
    for word in ["quick", "brown", "fox", "lazy", "dog"] {
        assert!(text.contains(word), "{word} missing from {text:?}");
    }
    let first = t.words.first().expect("words");
    assert!(first.start >= 7.0, "first word at {} s, speech starts at 8 s", first.start);
}

#[test]
fn language_is_detected_on_speech_and_a_hint_skips_detection() {
    let mut checked = 0;
    for row in manifest() {
        let (file, lang) = (&row.file, row.language.as_str());
        if row.kind != "lang" || !["de", "fr", "es"].contains(&lang) || !(3.0..=30.0).contains(&row.duration_s) {
            continue;
        }
        let t = transcribe("base", &decode(&testdata().join(file)), &plain());
        assert_eq!(harken_types::iso639_3_to_1(&t.language_code), Some(lang), "{file}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} German/French/Spanish clips found");
    let samples = decode(&testdata().join("asr/jfk_inaugural_excerpt.wav"));
    let hinted = transcribe("base", &samples, &TranscribeOptions { language: Some("eng".into()), ..plain() });
    assert_eq!((hinted.language_code.as_str(), hinted.language_probability), ("eng", 1.0));
}

#[test]
fn unknown_or_unsupported_languages_are_refused() {
    let samples = vec![0.0f32; 16_000];
    let unknown = engine("tiny.en").transcribe(&samples, &TranscribeOptions { language: Some("xx".into()), ..plain() }, &|_| {});
    assert!(matches!(&unknown, Err(EngineError::Invalid(m)) if m.contains("\"xx\"")), "{unknown:?}");
    let german = engine("tiny.en").transcribe(&samples, &TranscribeOptions { language: Some("de".into()), ..plain() }, &|_| {});
    assert!(matches!(&german, Err(EngineError::Invalid(m)) if m.contains("English only")), "{german:?}");
}

#[test]
fn every_asr_recording_yields_a_well_formed_transcript() {
    let mut count = 0;
    for row in manifest().into_iter().filter(|r| r.kind == "asr") {
        let samples = decode(&testdata().join(&row.file));
        let t = transcribe("tiny.en", &samples, &plain());
        let duration = samples.len() as f64 / 16_000.0;
        assert!(t.words.iter().all(|w| w.end <= duration + 1e-6), "{}: word past the end", row.file);
        if duration > 2.0 {
            assert!(!t.words.is_empty(), "{}: no words on a {duration:.1} s speech clip", row.file);
        }
        count += 1;
    }
    assert!(count >= 100, "only {count} asr rows");
}
