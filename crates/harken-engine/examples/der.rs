//! Diarization benchmark: DER over the `diar` rows of the shared test data.
//!
//! ```text
//! cargo run --release -p harken-engine --no-default-features --example der [-- --oracle-count]
//! ```
//! Prints per clip: DER (collar 0.25 s, overlap scored), its parts, the floor (the DER of the
//! reference itself with one speaker kept wherever several overlap: what any output with one
//! speaker per word must at least lose), estimated and true speaker counts, and the real-time
//! factor of diarization alone (VAD excluded, timed separately).
//! `--oracle-count` passes the true speaker count as `num_speakers` (a ceiling on the count); `--oracle-vad` replaces VAD
//! by the reference speech regions, leaving only the speaker errors (confusion, and the overlap
//! a one-speaker-at-a-time output must miss); `--tight-vad` uses `diarization_regions` (VAD
//! without padding, split at 0.3 s pauses) instead of the engine's padded regions;
//! `--no-segmentation` leaves pyannote's segmentation model out, `--no-refine` uses it for the
//! speaker count only (not to redraw the turns). Tuning knobs for
//! experiments: `HARKEN_DIAR_HOP` (s), `HARKEN_DIAR_THRESHOLD`, `HARKEN_DIAR_SMOOTH`,
//! `HARKEN_DIAR_WINDOW` (s, CAM++ only), `HARKEN_DIAR_SEGMENT_STEP` (s between segmentation
//! chunks), `HARKEN_DIAR_MAX_CLUSTERED` (windows clustered whole before subsampling; a lower
//! value clusters a recording as a longer one would be). The speaker encoder:
//! `HARKEN_DIAR_ENCODER=ge2e|campp` (default: the pipeline's default), each with its own tuned
//! window, hop and threshold.
//! `--rttm DIR` writes each clip's hypothesis and reference there as RTTM files.
//! `--write-audio DIR` writes each clip there as `<name>.wav` (16 kHz, 16-bit) with its reference
//! `<name>.rttm`, so that `bench/der.sh --clips DIR` can score the whole product on them.
//! `--synthetic` scores synthetic conversations built from the test data's single-speaker
//! recordings instead (`diarize::synthetic`: 2–6 speakers, 1–3 minutes, no overlap);
//! `--meetings` two long ones (15 and 25 minutes, 5 and 7 speakers with unequal shares);
//! `--clips DIR` every `<name>.wav` (any format the decoder reads) of DIR that has a
//! `<name>.rttm` beside it, as `bench/der.sh --clips DIR` takes them.
//! Test data: `$HARKEN_TESTDATA` or `../shared/testdata`; the model: `$HARKEN_MODELS_DIR` or
//! the default models directory: `resemblyzer/pretrained.pt` (GE2E) or
//! `campplus/campplus_cn_en_common.pt` (CAM++), and Silero VAD
//! (`silero-vad/silero_vad_16k.safetensors`), whose frame scores cut the speech regions, as in
//! the engine, and pyannote's segmentation (`pyannote-segmentation/pytorch_model.bin`).

use std::collections::BTreeSet;
use std::time::Instant;

use harken_engine::diarize::eval::{self, Bench, EncoderKind, Score, Segment};
use harken_engine::diarize::synthetic::{self, Conversation};

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() -> anyhow::Result<()> {
    let oracle = std::env::args().any(|a| a == "--oracle-count");
    let oracle_vad = std::env::args().any(|a| a == "--oracle-vad");
    let tight_vad = std::env::args().any(|a| a == "--tight-vad");
    let args: Vec<String> = std::env::args().collect();
    let dir_arg = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(std::path::PathBuf::from);
    let rttm_dir = dir_arg("--rttm");
    let audio_dir = dir_arg("--write-audio");
    let encoder = match std::env::var("HARKEN_DIAR_ENCODER") {
        Ok(v) if !v.is_empty() => v.parse()?,
        _ => EncoderKind::DEFAULT,
    };
    let mut bench = Bench::load_with(&eval::models_dir(harken_models::default_models_dir()), encoder)?;
    let segmentation = !std::env::args().any(|a| a == "--no-segmentation");
    if !segmentation {
        bench = bench.without_segmenter();
    }
    if let Some(step) = env::<f64>("HARKEN_DIAR_SEGMENT_STEP") {
        bench.set_segment_step(step);
    }
    if let Some(windows) = env::<usize>("HARKEN_DIAR_MAX_CLUSTERED") {
        bench.set_max_clustered(windows);
    }
    let refine = !std::env::args().any(|a| a == "--no-refine");
    if !refine {
        bench = bench.without_refinement();
    }
    bench.tune(env("HARKEN_DIAR_HOP"), env("HARKEN_DIAR_THRESHOLD"), env("HARKEN_DIAR_SMOOTH"));
    if let Some(w) = env::<f64>("HARKEN_DIAR_WINDOW") {
        bench.set_window(w)?;
    }
    let (window, hop, threshold) = bench.settings();
    println!(
        "encoder {:?}: window {window:.2} s, hop {hop:.2} s, threshold {threshold:.3}; segmentation model {}{}",
        bench.encoder(),
        if segmentation { "on" } else { "off" },
        if segmentation && !refine { " (count only)" } else { "" }
    );
    let testdata = eval::testdata_dir();
    let decode = |p: &std::path::Path| Ok(harken_audio::decode_file(p)?.samples);
    let clips = if let Some(dir) = dir_arg("--clips") {
        dir_clips(&dir)?
    } else if std::env::args().any(|a| a == "--synthetic") {
        synthetic::conversations(&testdata, decode)?
    } else if std::env::args().any(|a| a == "--meetings") {
        synthetic::meetings(&testdata, decode)?
    } else {
        diar_clips(&testdata)?
    };
    let mut total = Score::default();
    let mut floor_total = Score::default();
    let (mut audio_s, mut vad_s, mut diar_s, mut diar_cpu) = (0.0, 0.0, 0.0, 0.0);
    let mut counts_right = 0;
    println!(
        "{:<32} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}  {:>3}/{:<3} {:>7}",
        "clip", "DER%", "miss%", "FA%", "conf%", "floor%", "ref_s", "est", "ref", "RTF"
    );
    for Conversation { name, samples, reference } in &clips {
        let (samples, reference) = (samples.as_slice(), reference.as_slice());
        let true_count = reference.iter().map(|s| s.speaker.as_str()).collect::<BTreeSet<_>>().len();
        let t0 = Instant::now();
        let speech = if oracle_vad {
            reference_speech(reference, samples.len())
        } else if tight_vad {
            bench.tight_speech(samples)
        } else {
            bench.speech(samples)
        };
        let (t1, cpu1) = (Instant::now(), eval::process_cpu_seconds());
        let hyp = bench.run_on(samples, &speech, oracle.then_some(true_count));
        let (t2, cpu2) = (Instant::now(), eval::process_cpu_seconds());
        if let Some(dir) = &audio_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{name}.wav")), wav(samples))?;
            std::fs::write(dir.join(format!("{name}.rttm")), rttm(name, reference))?;
        }
        if let Some(dir) = &rttm_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{name}.hyp.rttm")), rttm(name, &hyp))?;
            std::fs::write(dir.join(format!("{name}.ref.rttm")), rttm(name, reference))?;
        }
        let est = hyp.iter().map(|s| s.speaker.as_str()).collect::<BTreeSet<_>>().len();
        let sc = eval::score(reference, &hyp, 0.25);
        let floor = eval::score(reference, &eval::single_speaker_reference(reference), 0.25);
        let secs = eval::seconds(samples);
        let pct = |x: f64| 100.0 * x / sc.reference.max(1e-9);
        println!(
            "{:<32} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1}  {:>3}/{:<3} {:>7.4}",
            name,
            100.0 * sc.der(),
            pct(sc.miss),
            pct(sc.false_alarm),
            pct(sc.confusion),
            100.0 * floor.der(),
            sc.reference,
            est,
            true_count,
            (t2 - t1).as_secs_f64() / secs
        );
        counts_right += usize::from(est == true_count);
        total.add(&sc);
        floor_total.add(&floor);
        audio_s += secs;
        vad_s += (t1 - t0).as_secs_f64();
        diar_s += (t2 - t1).as_secs_f64();
        diar_cpu += cpu2 - cpu1;
    }
    let pct = |x: f64| 100.0 * x / total.reference;
    println!(
        "overall DER {:.1}% (miss {:.1}%, false alarm {:.1}%, confusion {:.1}%) over {:.1} s of reference speech",
        100.0 * total.der(),
        pct(total.miss),
        pct(total.false_alarm),
        pct(total.confusion),
        total.reference
    );
    println!("floor (reference with one speaker at a time: missed overlap) {:.1}%", 100.0 * floor_total.der());
    println!("speaker count right on {counts_right}/{} clips", clips.len());
    println!(
        "diarization RTF {:.4} ({:.2} s for {:.1} s of audio); VAD RTF {:.4}",
        diar_s / audio_s,
        diar_s,
        audio_s,
        vad_s / audio_s
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2) as f64;
    println!(
        "diarization CPU {:.2} s (user+system, all threads): RTF {:.4} if {cores} idle cores shared it",
        diar_cpu,
        diar_cpu / cores / audio_s
    );
    Ok(())
}

/// Segments as RTTM lines.
fn rttm(name: &str, segs: &[Segment]) -> String {
    segs.iter()
        .map(|s| format!("SPEAKER {name} 1 {:.3} {:.3} <NA> <NA> {} <NA> <NA>\n", s.start, s.end - s.start, s.speaker))
        .collect()
}

/// 16 kHz mono samples as a 16-bit PCM WAV file.
fn wav(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    // fmt chunk: 16 bytes, PCM, 1 channel, 16 000 Hz, 32 000 bytes/s, 2-byte frames, 16 bits.
    for (value, width) in [(16u32, 4), (1, 2), (1, 2), (16_000, 4), (32_000, 4), (2, 2), (16, 2)] {
        out.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &x in samples {
        out.extend_from_slice(&((x.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    out
}

/// The `diar` clips of the manifest, decoded.
fn diar_clips(testdata: &std::path::Path) -> anyhow::Result<Vec<Conversation>> {
    let clips = eval::diar_clips(testdata)?;
    anyhow::ensure!(!clips.is_empty(), "no diar rows in {}/manifest.tsv", testdata.display());
    clips
        .iter()
        .map(|clip| {
            let samples = harken_audio::decode_file(&clip.audio)?.samples;
            let reference = eval::read_rttm(&std::fs::read_to_string(&clip.rttm)?);
            let name = clip.audio.file_name().unwrap_or_default().to_string_lossy().into_owned();
            Ok(Conversation { name, samples, reference })
        })
        .collect()
}

/// Every `<name>.<ext>` of `dir` with a `<name>.rttm` beside it, decoded, in name order.
fn dir_clips(dir: &std::path::Path) -> anyhow::Result<Vec<Conversation>> {
    let mut clips = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    for audio in paths.iter().filter(|p| p.extension().is_some_and(|e| e != "rttm")) {
        let Ok(rttm) = std::fs::read_to_string(audio.with_extension("rttm")) else { continue };
        let name = audio.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let samples = harken_audio::decode_file(audio)?.samples;
        clips.push(Conversation { name, samples, reference: eval::read_rttm(&rttm) });
    }
    anyhow::ensure!(!clips.is_empty(), "no audio with an .rttm beside it in {}", dir.display());
    Ok(clips)
}

/// The union of the reference segments, as sample spans.
fn reference_speech(reference: &[Segment], len: usize) -> Vec<(usize, usize)> {
    let mut segs: Vec<(usize, usize)> = reference
        .iter()
        .map(|s| (((s.start * 16_000.0) as usize).min(len), ((s.end * 16_000.0) as usize).min(len)))
        .filter(|(a, b)| b > a)
        .collect();
    segs.sort();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (a, b) in segs {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}
