//! Diarization on the multi-speaker recordings of the shared test data (`diar` rows of
//! `manifest.tsv`, RTTM references): DER bounds and speaker counts. The bounds sit a little
//! above what `examples/der.rs` measures (docs/DIARIZATION.md), so a regression fails.
//! Needs `../shared/testdata` (or `$HARKEN_TESTDATA`) and the `resemblyzer` model
//! (`harken models fetch resemblyzer`); fails, rather than skips, without them.

use std::collections::BTreeSet;

use harken_engine::diarize::eval::{self, Bench, Score, Segment};

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

fn run_all(speech: Speech) -> Vec<Run> {
    let model = eval::model_path(harken_models::default_models_dir());
    assert!(model.exists(), "{} is missing: run `harken models fetch resemblyzer`", model.display());
    let bench = Bench::load(&model).expect("loading the speaker encoder");
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
                Speech::Tight => bench.run_on(&samples, &Bench::tight_speech(&samples), None),
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

#[test]
fn der_with_the_engine_vad_stays_within_the_measured_bound() {
    let t = total(&run_all(Speech::Padded));
    // Measured: 62.5 % (miss 28.6, false alarm 21.3, confusion 12.5). Miss is mostly overlapped
    // speech (one speaker at a time), false alarm mostly VAD padding; confusion is ours.
    assert!(t.der() < 0.66, "DER {:.1} % ({t:?})", 100.0 * t.der());
    assert!(t.confusion / t.reference < 0.15, "confusion {:.1} % ({t:?})", 100.0 * t.confusion / t.reference);
}

#[test]
fn der_with_diarization_regions_stays_within_the_measured_bound() {
    let t = total(&run_all(Speech::Tight));
    // Measured: 49.2 % (miss 33.0, false alarm 10.4, confusion 5.8).
    assert!(t.der() < 0.53, "DER {:.1} % ({t:?})", 100.0 * t.der());
    assert!(t.confusion / t.reference < 0.08, "confusion {:.1} % ({t:?})", 100.0 * t.confusion / t.reference);
}

#[test]
fn der_on_reference_speech_regions_stays_within_the_measured_bound() {
    let t = total(&run_all(Speech::Oracle));
    // Measured: 40.2 % = 28.2 % missed overlap (the floor is 28.1 %) + 11.9 % confusion.
    assert!(t.der() < 0.44, "DER {:.1} % ({t:?})", 100.0 * t.der());
    assert!(t.false_alarm < 1e-6);
}

#[test]
fn speaker_count_is_right_where_it_is_clear() {
    let runs = run_all(Speech::Tight);
    for r in &runs {
        let (est, truth) = (speakers(&r.hyp), speakers(&r.reference));
        eprintln!("{}: {est} speakers estimated, {truth} in the reference", r.name);
        // Clear: two clean, separate speakers (NeMo an4; the pyannote sample, a dialogue with
        // little overlap), one speaker alone (trn02).
        let clear = ["nemo_an4_diarize_test.wav", "pyannote_sample.wav", "pyannote_test_trn02.wav"];
        if clear.contains(&r.name.as_str()) {
            assert_eq!(est, truth, "{}", r.name);
        }
        assert!((1..=32).contains(&est), "{}: {est} speakers", r.name);
    }
}
