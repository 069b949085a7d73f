//! Diarization on the multi-speaker recordings of the shared test data (`diar` rows of
//! `manifest.tsv`, RTTM references): DER bounds and speaker counts. The bounds sit a little
//! above what `examples/der.rs` measures (docs/DIARIZATION.md), so a regression fails.
//! Needs `../shared/testdata` (or `$HARKEN_TESTDATA`) and the `resemblyzer` and
//! `silero-vad` models (`harken models fetch resemblyzer silero-vad`); fails, rather than skips, without them.
//! The default pipeline runs GE2E; the `campp_*` tests run the CAM++ encoder
//! (`campplus/campplus_cn_en_common.pt`, not fetched by `harken models fetch` yet, so they are
//! ignored: `cargo test ... --test diarize -- --ignored`).

use std::collections::BTreeSet;

use harken_engine::diarize::eval::{self, Bench, EncoderKind, Score, Segment};

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
    let models = eval::models_dir(harken_models::default_models_dir());
    let bench = Bench::load_with(&models, encoder)
        .unwrap_or_else(|e| panic!("loading the speaker encoder ({encoder:?}) and the VAD: {e:#}"));
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

// Measured with Silero VAD's scores (the engine's default), GE2E (the default encoder).

#[test]
fn der_with_the_engine_vad_stays_within_the_measured_bound() {
    // Measured: 46.2 % (miss 33.1, false alarm 2.9, confusion 10.2). Miss is mostly overlapped
    // speech (one speaker at a time) and speech Silero does not hear; confusion is ours.
    check(EncoderKind::DEFAULT, Speech::Padded, 0.49, 0.12);
}

#[test]
fn der_with_diarization_regions_stays_within_the_measured_bound() {
    // Measured: 51.1 % (miss 40.2, false alarm 0.2, confusion 10.7).
    check(EncoderKind::DEFAULT, Speech::Tight, 0.54, 0.125);
}

#[test]
fn der_on_reference_speech_regions_stays_within_the_measured_bound() {
    // Measured: 40.2 % = 28.2 % missed overlap (the floor is 28.1 %) + 11.9 % confusion.
    check(EncoderKind::DEFAULT, Speech::Oracle, 0.44, 0.14);
}

#[test]
fn speaker_count_is_right_where_it_is_clear() {
    count_is_right_where_it_is_clear(EncoderKind::DEFAULT);
}

fn count_is_right_where_it_is_clear(encoder: EncoderKind) {
    let runs = run_all_with(encoder, Speech::Tight);
    for r in &runs {
        let (est, truth) = (speakers(&r.hyp), speakers(&r.reference));
        eprintln!("{encoder:?}: {}: {est} speakers estimated, {truth} in the reference", r.name);
        // Clear: two clean, separate speakers (NeMo an4), one speaker alone (trn02).
        let clear = ["nemo_an4_diarize_test.wav", "pyannote_test_trn02.wav"];
        if clear.contains(&r.name.as_str()) {
            assert_eq!(est, truth, "{encoder:?}: {}", r.name);
        }
        // The pyannote sample is a dialogue with little overlap, but on Silero's regions GE2E
        // finds one speaker and CAM++ three (two with either on the reference regions).
        if r.name == "pyannote_sample.wav" {
            assert!(est.abs_diff(truth) <= 1, "{encoder:?}: {}: {est} speakers", r.name);
        }
        // Zero only where VAD finds no speech: Silero hears none of trn01's 3.6 s.
        assert!(est <= 32, "{encoder:?}: {}: {est} speakers", r.name);
        assert!(est > 0 || r.hyp.is_empty(), "{encoder:?}: {}: turns without a speaker", r.name);
    }
}

// CAM++ (selectable, not the default): measured with its defaults (1.5 s windows every 1.5 s,
// threshold 0.38); weights from `harken models fetch campplus`.

#[test]
fn campp_der_with_the_engine_vad_stays_within_the_measured_bound() {
    // Measured: 49.2 % (miss 33.1, false alarm 2.9, confusion 13.2).
    check(EncoderKind::CamPlusPlus, Speech::Padded, 0.52, 0.15);
}

#[test]
fn campp_der_with_diarization_regions_stays_within_the_measured_bound() {
    // Measured: 46.4 % (miss 40.2, false alarm 0.2, confusion 6.0).
    check(EncoderKind::CamPlusPlus, Speech::Tight, 0.49, 0.08);
}

#[test]
fn campp_der_on_reference_speech_regions_stays_within_the_measured_bound() {
    // Measured: 49.3 % = 28.2 % missed overlap + 21.1 % confusion (GE2E: 11.9 %).
    check(EncoderKind::CamPlusPlus, Speech::Oracle, 0.52, 0.235);
}

#[test]
fn campp_speaker_count_is_right_where_it_is_clear() {
    count_is_right_where_it_is_clear(EncoderKind::CamPlusPlus);
}
