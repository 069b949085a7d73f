//! Diarization on the multi-speaker recordings of the shared test data (`diar` rows of
//! `manifest.tsv`, RTTM references): DER bounds and speaker counts. The bounds sit a little
//! above what `examples/der.rs` measures (docs/DIARIZATION.md), so a regression fails.
//! Needs `../shared/testdata` (or `$HARKEN_TESTDATA`) and the `resemblyzer`, `campplus`,
//! `pyannote-segmentation` and `silero-vad` models (`harken models fetch ...`); fails, rather
//! than skips, without them. The default pipeline runs GE2E and pyannote's segmentation model;
//! the `campp_*` tests run the CAM++ encoder instead of GE2E.

use std::collections::BTreeSet;

use harken_engine::diarize::eval::{self, Bench, EncoderKind, Score, Segment};
use harken_engine::diarize::synthetic;

struct Run {
    name: String,
    reference: Vec<Segment>,
    hyp: Vec<Segment>,
}

/// Which speech regions diarization gets.
#[derive(Clone, Copy, PartialEq)]
enum Speech {
    /// The engine's VAD regions, padded for Whisper.
    Padded,
    /// `diarization_regions`: unpadded, split at 0.3 s pauses.
    Tight,
    /// The reference's speech.
    Oracle,
}

fn run_all_with(encoder: EncoderKind, speech: Speech) -> Vec<Run> {
    run_all(load(encoder), speech)
}

fn load(encoder: EncoderKind) -> Bench {
    let models = eval::models_dir(harken_models::default_models_dir());
    Bench::load_with(&models, encoder)
        .unwrap_or_else(|e| panic!("loading the speaker encoder ({encoder:?}), the segmentation model and the VAD: {e:#}"))
}

fn run_all(bench: Bench, speech: Speech) -> Vec<Run> {
    let testdata = eval::testdata_dir();
    let clips = eval::diar_clips(&testdata).unwrap_or_else(|e| panic!("test data at {}: {e:#}", testdata.display()));
    assert!(clips.len() >= 10, "expected the 11 diar clips in {}, found {}", testdata.display(), clips.len());
    clips
        .iter()
        .map(|clip| {
            let samples = harken_audio::decode_file(&clip.audio).expect("decoding").samples;
            let reference = eval::read_rttm(&std::fs::read_to_string(&clip.rttm).expect("reading the RTTM"));
            let hyp = match speech {
                Speech::Oracle => {
                    let spans: Vec<(usize, usize)> = reference
                        .iter()
                        .map(|s| ((s.start * 16e3) as usize, ((s.end * 16e3) as usize).min(samples.len())))
                        .collect();
                    bench.run_on(&samples, &merge(spans), None)
                }
                Speech::Tight => bench.run_on(&samples, &bench.tight_speech(&samples), None),
                Speech::Padded => bench.run(&samples, None),
            };
            Run { name: clip.audio.file_name().unwrap().to_string_lossy().into_owned(), reference, hyp }
        })
        .collect()
}

fn merge(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (a, b) in spans.into_iter().filter(|(a, b)| b > a) {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn total(runs: &[Run]) -> Score {
    let mut t = Score::default();
    for r in runs {
        t.add(&eval::score(&r.reference, &r.hyp, 0.25));
    }
    t
}

fn speakers(segs: &[Segment]) -> usize {
    segs.iter().map(|s| s.speaker.as_str()).collect::<BTreeSet<_>>().len()
}

/// DER and confusion (fractions of the reference speech) stay under the bounds.
fn check(encoder: EncoderKind, speech: Speech, der: f64, confusion: f64) {
    let t = total(&run_all_with(encoder, speech));
    assert!(t.der() < der, "{encoder:?}: DER {:.1} % ({t:?})", 100.0 * t.der());
    assert!(t.confusion / t.reference < confusion, "{encoder:?}: confusion {:.1} % ({t:?})", 100.0 * t.confusion / t.reference);
    if speech == Speech::Oracle {
        assert!(t.false_alarm < 1e-6);
    }
}

// Measured with Silero VAD's scores (the engine's default), GE2E (the default encoder) and the
// segmentation model.

#[test]
fn der_with_the_engine_vad_stays_within_the_measured_bound() {
    // Measured: 41.1 % (miss 33.1, false alarm 2.9, confusion 5.1; 42.1 / 6.1 before undecided
    // tracks were named by their own voice). Miss is mostly overlapped speech (one speaker at a
    // time) and speech Silero does not hear; confusion is ours.
    check(EncoderKind::DEFAULT, Speech::Padded, 0.44, 0.07);
}

#[test]
fn der_with_diarization_regions_stays_within_the_measured_bound() {
    // Measured: 46.6 % (miss 40.2, false alarm 0.2, confusion 6.2).
    check(EncoderKind::DEFAULT, Speech::Tight, 0.49, 0.08);
}

#[test]
fn der_on_reference_speech_regions_stays_within_the_measured_bound() {
    // Measured: 38.5 % = 28.2 % missed overlap (the floor is 28.1 %) + 10.3 % confusion.
    check(EncoderKind::DEFAULT, Speech::Oracle, 0.41, 0.12);
}

#[test]
fn the_segmentation_model_lowers_the_error() {
    // Measured side by side (session 21): 42.9 % without (confusion 6.9 %), 40.7 % with (4.6 %).
    // The two-speaker pyannote dialogue is telephone-band: the embeddings alone found one
    // speaker at the wide-band threshold, and find both at the raised one (`diarize/band.rs`).
    let with = run_all(load(EncoderKind::DEFAULT), Speech::Padded);
    let without = run_all(load(EncoderKind::DEFAULT).without_segmenter(), Speech::Padded);
    let (w, wo) = (total(&with), total(&without));
    assert!(w.der() < wo.der() - 0.01, "with {:.1} %, without {:.1} %", 100.0 * w.der(), 100.0 * wo.der());
    let dialogue = |runs: &[Run]| runs.iter().find(|r| r.name == "pyannote_sample.wav").map(|r| speakers(&r.hyp));
    assert_eq!((dialogue(&without), dialogue(&with)), (Some(2), Some(2)));
}

#[test]
fn speaker_count_is_right_where_it_is_clear() {
    // With the segmentation model the pyannote dialogue is clear too.
    count_is_right_where_it_is_clear(EncoderKind::DEFAULT, true);
}

/// Every one-speaker recording of 5 s or more (`asr` rows) comes out as one speaker. The one
/// exception is Alvin Lucier's stammered reading, where the segmentation model itself hears a
/// second voice talk alone for 2.5 s within one chunk (docs/DIARIZATION.md, session 15).
#[test]
fn one_voice_alone_is_one_speaker() {
    let bench = load(EncoderKind::DEFAULT);
    let testdata = eval::testdata_dir();
    let rows = eval::manifest_rows(&testdata).unwrap_or_else(|e| panic!("test data at {}: {e:#}", testdata.display()));
    let readings: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == "asr" && r.duration_s >= 5.0 && !r.file.contains("gentle_lucier"))
        .collect();
    assert!(readings.len() >= 40, "expected the 47 one-speaker recordings, found {}", readings.len());
    let split: Vec<String> = readings
        .iter()
        .filter_map(|r| {
            let samples = harken_audio::decode_file(&testdata.join(&r.file)).expect("decoding").samples;
            let found = speakers(&bench.run(&samples, None));
            (found != 1).then(|| format!("{}: {found} speakers", r.file))
        })
        .collect();
    assert!(split.is_empty(), "one voice counted as several (or none): {split:?}");
}

/// `num_speakers` is the most speakers, as ElevenLabs defines it: a dialogue of two with room
/// for five keeps two, a reader alone with room for three stays one, and two voices allowed
/// one are one.
#[test]
fn num_speakers_is_a_ceiling() {
    let bench = load(EncoderKind::DEFAULT);
    let testdata = eval::testdata_dir();
    let decode = |file: &str| harken_audio::decode_file(&testdata.join(file)).expect("decoding").samples;
    let dialogue = decode("diar/pyannote_sample.wav");
    for (most, expected) in [(None, 2), (Some(5), 2), (Some(2), 2), (Some(1), 1)] {
        assert_eq!(speakers(&bench.run(&dialogue, most)), expected, "pyannote_sample, at most {most:?}");
    }
    let reader = decode("asr/librispeech_test-clean_triton_1221-135766-0001.wav");
    assert_eq!(speakers(&bench.run(&reader, Some(3))), 1, "one reader, at most 3");
}

/// A 15-minute meeting of five read voices (40 / 30 / 20 / 7 / 3 % of the turns,
/// `synthetic::meetings`): all five found, the error near what short conversations score.
/// Measured: 10.9 % (confusion 3.2), 5/5 (docs/DIARIZATION.md, "Long meetings").
#[test]
fn a_long_meeting_keeps_its_five_speakers() {
    let bench = load(EncoderKind::DEFAULT);
    let testdata = eval::testdata_dir();
    let decode = |p: &std::path::Path| Ok(harken_audio::decode_file(p)?.samples);
    let meetings = synthetic::meetings(&testdata, decode).unwrap_or_else(|e| panic!("test data: {e:#}"));
    let meeting = &meetings[0];
    assert!(eval::seconds(&meeting.samples) > 890.0, "{} is too short", meeting.name);
    let hyp = bench.run(&meeting.samples, None);
    let sc = eval::score(&meeting.reference, &hyp, 0.25);
    assert_eq!(speakers(&hyp), speakers(&meeting.reference), "{}", meeting.name);
    assert!(sc.der() < 0.14, "{}: DER {:.1} % ({sc:?})", meeting.name, 100.0 * sc.der());
}

fn count_is_right_where_it_is_clear(encoder: EncoderKind, dialogue_clear: bool) {
    let runs = run_all_with(encoder, Speech::Tight);
    for r in &runs {
        let (est, truth) = (speakers(&r.hyp), speakers(&r.reference));
        eprintln!("{encoder:?}: {}: {est} speakers estimated, {truth} in the reference", r.name);
        // Clear: two clean, separate speakers (NeMo an4), one speaker alone (trn02).
        let clear = ["nemo_an4_diarize_test.wav", "pyannote_test_trn02.wav"];
        if clear.contains(&r.name.as_str()) {
            assert_eq!(est, truth, "{encoder:?}: {}", r.name);
        }
        // The pyannote sample is a dialogue with little overlap: GE2E with the segmentation
        // model finds its two speakers, CAM++ three.
        if r.name == "pyannote_sample.wav" {
            let off = if dialogue_clear { 0 } else { 1 };
            assert!(est.abs_diff(truth) <= off, "{encoder:?}: {}: {est} speakers", r.name);
        }
        // Zero only where VAD finds no speech: Silero hears none of trn01's 3.6 s.
        assert!(est <= 32, "{encoder:?}: {}: {est} speakers", r.name);
        assert!(est > 0 || r.hyp.is_empty(), "{encoder:?}: {}: turns without a speaker", r.name);
    }
}

// CAM++ (selectable, not the default): measured with its defaults (1.5 s windows every 1.5 s,
// threshold 0.38) and the segmentation model; weights from `harken models fetch campplus`.

#[test]
fn campp_der_with_the_engine_vad_stays_within_the_measured_bound() {
    // Measured: 46.9 % (miss 33.1, false alarm 2.9, confusion 10.9).
    check(EncoderKind::CamPlusPlus, Speech::Padded, 0.50, 0.14);
}

#[test]
fn campp_der_with_diarization_regions_stays_within_the_measured_bound() {
    // Measured: 44.7 % (miss 40.2, false alarm 0.2, confusion 4.2).
    check(EncoderKind::CamPlusPlus, Speech::Tight, 0.48, 0.07);
}

#[test]
fn campp_der_on_reference_speech_regions_stays_within_the_measured_bound() {
    // Measured: 44.1 % = 28.2 % missed overlap + 15.9 % confusion (GE2E: 10.3 %).
    check(EncoderKind::CamPlusPlus, Speech::Oracle, 0.47, 0.19);
}

#[test]
fn campp_speaker_count_is_right_where_it_is_clear() {
    count_is_right_where_it_is_clear(EncoderKind::CamPlusPlus, false);
}
