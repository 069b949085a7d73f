//! Tests of the encoder on the real weights and real speech, and of windows and turns.

use std::path::PathBuf;

use super::encoder::{self, Encoder, WINDOW_FRAMES};
use super::*;

pub(crate) fn model_path() -> PathBuf {
    let p = EncoderKind::Ge2e.model_path(&eval::models_dir(harken_models::default_models_dir()));
    assert!(p.exists(), "{} is missing: run `harken models fetch resemblyzer` (or set HARKEN_MODELS_DIR)", p.display());
    p
}

fn decode(rel: &str) -> Vec<f32> {
    let path = eval::testdata_dir().join(rel);
    assert!(path.exists(), "test data {} is missing (set HARKEN_TESTDATA)", path.display());
    harken_audio::decode_file(&path).unwrap_or_else(|e| panic!("decoding {}: {e}", path.display())).samples
}

#[test]
fn every_tensor_of_the_state_dict_has_its_shape() {
    let t = weights::load_tensors(&model_path()).unwrap();
    let shape = |k: &str| t.get(&format!("model_state.{k}")).unwrap_or_else(|| panic!("no {k}")).shape.clone();
    for l in 0..3 {
        let input = if l == 0 { 40 } else { 256 };
        assert_eq!(shape(&format!("lstm.weight_ih_l{l}")), [1024, input]);
        assert_eq!(shape(&format!("lstm.weight_hh_l{l}")), [1024, 256]);
        assert_eq!(shape(&format!("lstm.bias_ih_l{l}")), [1024]);
        assert_eq!(shape(&format!("lstm.bias_hh_l{l}")), [1024]);
    }
    assert_eq!(shape("linear.weight"), [256, 256]);
    assert_eq!(shape("linear.bias"), [256]);
    assert_eq!(shape("similarity_weight"), [1]);
    assert_eq!(shape("similarity_bias"), [1]);
    // Values are real weights, not zeros or garbage.
    let w = &t["model_state.lstm.weight_hh_l1"].data;
    assert!(w.iter().all(|x| x.is_finite() && x.abs() < 100.0));
    assert!(w.iter().filter(|x| **x != 0.0).count() > w.len() / 2);
}

#[test]
fn fast_tanh_matches_std() {
    for i in -2000..=2000 {
        let x = i as f32 / 100.0;
        assert!((encoder::tanh(x) - x.tanh()).abs() < 2e-6, "tanh({x})");
    }
}

/// Mean embedding of the 1.6 s windows of `samples`, every 0.8 s.
fn voice(enc: &Encoder, samples: &[f32]) -> Vec<f32> {
    let frames = 1 + samples.len() / encoder::HOP;
    let starts: Vec<usize> = (0..frames.saturating_sub(WINDOW_FRAMES)).step_by(80).collect();
    let emb = enc.embed(samples, Encoder::power_gain(samples.iter().copied()), &starts);
    let mut m = vec![0.0f32; encoder::EMBEDDING];
    for e in &emb {
        m.iter_mut().zip(e).for_each(|(a, b)| *a += b);
    }
    let n = cluster::dot(&m, &m).sqrt();
    m.into_iter().map(|x| x / n).collect()
}

#[test]
fn the_same_speaker_is_closer_than_another_speaker() {
    let enc = Encoder::load(&model_path()).unwrap();
    // Two LibriSpeech speakers (1089: male, 1221: female).
    let a = decode("asr/librispeech_test-clean_1089-134686-0000.flac");
    let b = decode("asr/librispeech_test-clean_triton_1221-135766-0001.wav");
    let (a1, a2) = a.split_at(a.len() / 2);
    let (va1, va2, vb) = (voice(&enc, a1), voice(&enc, a2), voice(&enc, &b));
    let same = cluster::dot(&va1, &va2);
    let other = cluster::dot(&va1, &vb).max(cluster::dot(&va2, &vb));
    assert!(same > other + 0.05, "same speaker {same:.3}, different speakers {other:.3}");
    assert!(va1.iter().all(|x| *x >= 0.0) && (cluster::dot(&va1, &va1) - 1.0).abs() < 1e-4);
}

/// The AVX2 LSTM and the portable one give the same embeddings of real speech, on the real
/// weights; a batch of 7 windows, the last running past the end of the audio.
#[test]
fn the_embeddings_do_not_depend_on_the_lstm_kernel() {
    let fast = Encoder::load(&model_path()).unwrap();
    let slow = Encoder::load(&model_path()).unwrap().portable();
    let samples = decode("asr/librispeech_test-clean_1089-134686-0000.flac");
    let gain = Encoder::power_gain(samples.iter().copied());
    let frames = 1 + samples.len() / encoder::HOP;
    let starts: Vec<usize> = (0..7).map(|i| i * (frames - WINDOW_FRAMES / 2) / 6).collect();
    let (a, b) = (fast.embed(&samples, gain, &starts), slow.embed(&samples, gain, &starts));
    assert_eq!(a.len(), 7);
    for (x, y) in a.iter().zip(&b) {
        let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "embeddings differ by up to {worst}");
    }
    assert!(cluster::dot(&a[0], &a[6]) < 0.999, "different windows gave the same embedding");
}

/// A batch computes the features of its windows once for all of them (overlapping windows
/// share frames): each window's embedding is the same as when it is embedded alone, whether the
/// windows overlap, leave gaps, go backwards or run past the end of the audio.
#[test]
fn a_window_embeds_the_same_in_any_batch() {
    let enc = Encoder::load(&model_path()).unwrap();
    let samples = decode("asr/librispeech_test-clean_1089-134686-0000.flac");
    let gain = Encoder::power_gain(samples.iter().copied());
    let frames = 1 + samples.len() / encoder::HOP;
    let starts = [0, 120, 240, 1000, 500, 560, frames - WINDOW_FRAMES / 2, frames + 10];
    let together = enc.embed(&samples, gain, &starts);
    assert_eq!(together.len(), starts.len());
    for (&start, e) in starts.iter().zip(&together) {
        let alone = &enc.embed(&samples, gain, &[start])[0];
        let worst = e.iter().zip(alone).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "window at frame {start}: embeddings differ by up to {worst}");
    }
    assert!(cluster::dot(&together[0], &together[3]) < 0.999, "different windows gave the same embedding");
}

#[test]
fn windows_cover_regions_and_short_regions_get_one_centred_window() {
    let frames = 5000;
    let speech = [(0, 16_000 * 4), (16_000 * 10, 16_000 * 10 + 8000)];
    let w = plan_windows(&speech, frames, WINDOW_FRAMES, 0.8);
    let first: Vec<usize> = w.iter().filter(|w| w.region == 0).map(|w| w.start).collect();
    assert_eq!(first, vec![0, 80, 160, 240]);
    let second: Vec<_> = w.iter().filter(|w| w.region == 1).collect();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].start, 1025 - 80);
}

#[test]
fn turns_are_sorted_disjoint_and_inside_speech() {
    let speech = [(0, 16_000 * 4), (16_000 * 10, 16_000 * 10 + 8000)];
    let w = plan_windows(&speech, 5000, WINDOW_FRAMES, 0.8);
    let labels = vec![0, 0, 1, 1, 1];
    let t = turns(&speech, &w, &labels, WINDOW_FRAMES);
    assert_eq!(t.len(), 3);
    assert_eq!((t[0].start, t[0].speaker), (0.0, 0));
    // Halfway between the centres of windows 2 (1.6 s) and 3 (2.4 s).
    assert!((t[0].end - 2.0).abs() < 1e-9, "{t:?}");
    assert_eq!((t[1].end, t[2].start, t[2].end), (4.0, 10.0, 10.5));
    for p in t.windows(2) {
        assert!(p[0].end <= p[1].start);
    }
}

#[test]
fn a_lone_odd_window_is_smoothed_away() {
    let w: Vec<Window> = (0..5).map(|i| Window { start: i * 80, region: 0 }).collect();
    let mut labels = vec![0, 0, 1, 0, 0];
    smooth(&mut labels, &w, 3);
    assert_eq!(labels, vec![0, 0, 0, 0, 0]);
}

#[test]
fn silence_gives_no_turns_and_one_voice_gives_one_speaker() {
    let d = Diarizer::load(&model_path()).unwrap();
    assert!(d.diarize(&vec![0.0; 32_000], &[], None, None).is_empty());
    let a = decode("asr/librispeech_test-clean_1089-134686-0000.flac");
    let t = d.diarize(&a, &[(0, a.len())], None, None);
    assert!(!t.is_empty());
    assert!(t.iter().all(|t| t.speaker == 0), "{t:?}");
}

#[test]
fn elevenlabs_threshold_maps_around_the_tuned_one() {
    let tuned = ClusterParams::default().threshold;
    assert!((similarity_threshold(tuned, 0.22) - tuned).abs() < 1e-6);
    // Higher diarization_threshold: lower similarity needed to merge, so fewer speakers.
    assert!(similarity_threshold(tuned, 0.4) < similarity_threshold(tuned, 0.3));
    assert!(similarity_threshold(tuned, 0.1) > tuned);
    assert!((0.4..0.5).contains(&similarity_threshold(tuned, 0.4)));
    assert!((0.7..0.8).contains(&similarity_threshold(tuned, 0.1)));
    assert_eq!(similarity_threshold(tuned, -5.0), 1.0);
}

#[test]
fn the_encoder_kind_is_told_by_the_weights_file_or_by_name() {
    assert_eq!(EncoderKind::of_file(&model_path()).unwrap(), EncoderKind::Ge2e);
    assert_eq!(Diarizer::load(&model_path()).unwrap().kind(), EncoderKind::Ge2e);
    assert_eq!("ge2e".parse::<EncoderKind>().unwrap(), EncoderKind::Ge2e);
    assert_eq!("CAMPP".parse::<EncoderKind>().unwrap(), EncoderKind::CamPlusPlus);
    assert!("xvector".parse::<EncoderKind>().is_err());
    assert!(EncoderKind::of_file(std::path::Path::new("/nonexistent/pretrained.pt")).is_err());
}

#[test]
fn each_encoder_has_its_own_window_hop_and_threshold() {
    let (g, c) = (DiarizeParams::for_encoder(EncoderKind::Ge2e), DiarizeParams::for_encoder(EncoderKind::CamPlusPlus));
    assert_eq!(g, DiarizeParams::default());
    assert_eq!((g.window_frames, g.hop_s), (WINDOW_FRAMES, 1.2));
    assert_eq!(c.window_frames, 150);
    // CAM++'s cosine similarities run far lower between speakers than GE2E's.
    assert!(c.cluster.threshold < g.cluster.threshold - 0.1);
    // A CAM++ plan: 1.5 s windows over a 4 s region, the last aligned to its end.
    let w = plan_windows(&[(0, 64_000)], 401, c.window_frames, c.hop_s);
    assert_eq!(w.last().unwrap().start + c.window_frames, 400);
    assert!(w.iter().all(|w| w.start + c.window_frames <= 400));
}
