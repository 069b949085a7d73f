#![cfg(feature = "whisper")]
//! Audio event tagging on real recordings from `../shared/testdata` (override with
//! `HARKEN_TESTDATA`): recall on the `event` rows, false events on plain speech (`asr` rows),
//! and nothing leaking when tagging is off. Bounds follow the numbers `examples/events.rs`
//! measured (docs/EVENTS.md), with some slack for thread-count and backend differences.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use harken_engine::diarize::eval;
use harken_engine::{EngineConfig, SpeechEngine, TranscribeOptions, Transcript, WhisperEngine, WordKind};

fn engine() -> Arc<WhisperEngine> {
    static BASE: OnceLock<Arc<WhisperEngine>> = OnceLock::new();
    BASE.get_or_init(|| {
        let models = std::env::var_os("HARKEN_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(harken_models::default_models_dir);
        let dir = harken_models::resolve_whisper(&models, "base")
            .unwrap_or_else(|e| panic!("model base missing ({e}); run `harken models fetch base`"));
        let mut config = EngineConfig::new(dir, "base");
        config.threads = 1;
        Arc::new(WhisperEngine::load(config).expect("model loads"))
    })
    .clone()
}

/// Manifest rows of one kind: (file, reference).
fn rows(kind: &str) -> Vec<(String, String)> {
    let testdata = eval::testdata_dir();
    let rows = eval::manifest_rows(&testdata).unwrap_or_else(|e| panic!("{e:#}; set HARKEN_TESTDATA"));
    rows.into_iter().filter(|r| r.kind == kind).map(|r| (r.file, r.reference)).collect()
}

fn transcribe(file: &str, tag: bool) -> (Transcript, f64) {
    let samples = harken_audio::decode_file(&eval::testdata_dir().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .samples;
    let options = TranscribeOptions {
        diarize: false,
        tag_audio_events: tag,
        language: Some("en".to_owned()),
        ..TranscribeOptions::default()
    };
    let t = engine()
        .transcribe(&samples, &options, &|_| {})
        .expect("transcription succeeds");
    t.check()
        .unwrap_or_else(|e| panic!("{file}: transcript breaks the format rules: {e}\n{t:#?}"));
    (t, samples.len() as f64 / 16_000.0)
}

fn events(t: &Transcript) -> Vec<String> {
    t.words
        .iter()
        .filter(|w| w.kind == WordKind::AudioEvent)
        .map(|w| w.text.clone())
        .collect()
}

/// The labels our vocabulary may give for a reference label of the test data.
fn fits(reference: &str, event: &str) -> bool {
    let label = event.trim_matches(['(', ')']);
    let first = reference.split([' ', '_']).next().unwrap_or("");
    match first {
        "music" => label == "music",
        "laughter" => label == "laughter",
        "dog" => label == "dog barking",
        "thunderstorm" => label == "thunder" || label == "rain",
        "car" => label == "car horn",
        "bird" => label == "birds chirping",
        "whale" => label == "whale song",
        _ => false,
    }
}

fn assert_no_markup_words(t: &Transcript, what: &str) {
    for w in t.words.iter().filter(|w| w.kind == WordKind::Word) {
        assert!(
            !w.text.chars().any(|c| "[]()*♪♫♬¶".contains(c)) && w.text.chars().any(char::is_alphanumeric),
            "{what}: caption markup leaked into a word: {:?}",
            w.text
        );
    }
}

#[test]
fn event_clips_are_tagged_with_fitting_labels() {
    let clips = rows("event");
    assert!(!clips.is_empty(), "no event rows in the manifest");
    let mut hits = 0;
    for (file, reference) in &clips {
        let (t, _) = transcribe(file, true);
        assert_no_markup_words(&t, file);
        let found = events(&t);
        // Event items read like ElevenLabs': "(label)", and sit in the text.
        for e in &found {
            assert!(
                e.starts_with('(') && e.ends_with(')') && e == &e.to_lowercase(),
                "{file}: {e}"
            );
            assert!(t.text.contains(e.as_str()), "{file}: {e} missing from text");
        }
        hits += usize::from(found.iter().any(|e| fits(reference, e)));
        eprintln!("{file} [{reference}]: {found:?}");
    }
    // Measured 9 of 11 (docs/EVENTS.md); the target is half.
    assert!(
        hits * 2 >= clips.len(),
        "only {hits} of {} event clips tagged with a fitting label",
        clips.len()
    );
}

#[test]
fn plain_speech_gives_almost_no_events() {
    // Every third asr clip plus the long, hissy Lucier recording (the hardest case measured).
    let all = rows("asr");
    let sample: Vec<&(String, String)> = all
        .iter()
        .enumerate()
        .filter(|(i, (f, _))| i % 3 == 0 || f.contains("lucier"))
        .map(|(_, r)| r)
        .collect();
    let (mut seconds, mut false_events) = (0.0, Vec::new());
    for (file, _) in sample {
        let (t, s) = transcribe(file, true);
        seconds += s;
        false_events.extend(events(&t).into_iter().map(|e| format!("{file}: {e}")));
    }
    // Target: at most 1 per 10 minutes. Over all 101 asr clips (14.6 min) one event was found,
    // a real cough the reference marks as <VOCNOISE> (docs/EVENTS.md); the sample is ~6 min.
    assert!(
        false_events.len() <= 1,
        "{} false events in {:.1} min: {false_events:?}",
        false_events.len(),
        seconds / 60.0
    );
}

#[test]
fn with_tagging_off_no_event_appears_and_no_markup_leaks() {
    for (file, _) in rows("event")
        .iter()
        .filter(|(f, _)| f.contains("laugh") || f.contains("ragtime") || f.contains("Vibe_Ace"))
    {
        let (t, _) = transcribe(file, false);
        assert!(
            events(&t).is_empty(),
            "{file}: audio_event with tagging off: {:?}",
            events(&t)
        );
        assert_no_markup_words(&t, file);
    }
}
