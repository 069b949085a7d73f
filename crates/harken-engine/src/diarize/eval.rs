//! Scoring support for the diarization test and the `der` example; not part of the API.
//!
//! DER follows pyannote.metrics: a collar of `collar` seconds in total (half on each side) is
//! removed around every reference boundary, overlapped speech is scored (every reference
//! speaker counts), and reference and hypothesis speakers are mapped one-to-one so that their
//! co-occurring time is maximal. Time is scored in 1 ms steps.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{DiarizeParams, Diarizer};
pub use super::segment::{model_path as segmentation_model_path, MODEL_NAME as SEGMENTATION_MODEL};
pub use super::EncoderKind;
use crate::api::SAMPLE_RATE;
use crate::vad::silero::Silero;
use crate::vad::{self, VadParams};

/// One speaker speaking from `start` to `end` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub speaker: String,
}

/// VAD + diarization over a whole recording, as the engine runs it by default: Silero's
/// frame scores, then the speaker encoder.
pub struct Bench {
    diarizer: Diarizer,
    silero: Silero,
}

impl Bench {
    /// The default speaker encoder ([`EncoderKind::DEFAULT`]) and Silero VAD from a models
    /// directory ([`models_dir`]).
    pub fn load(models_dir: &Path) -> anyhow::Result<Self> {
        Self::load_with(models_dir, EncoderKind::DEFAULT)
    }

    /// The same with the `encoder` speaker encoder, with its default settings.
    pub fn load_with(models_dir: &Path, encoder: EncoderKind) -> anyhow::Result<Self> {
        let (speaker, vad, seg) =
            (encoder.model_path(models_dir), vad_model_path(models_dir), segmentation_model_path(models_dir));
        for (path, name) in
            [(&speaker, encoder.model_name()), (&vad, "silero-vad"), (&seg, SEGMENTATION_MODEL)]
        {
            anyhow::ensure!(path.exists(), "{} is missing: run `harken models fetch {name}`", path.display());
        }
        let diarizer = Diarizer::load_as(&speaker, encoder)?.with_segmenter(&seg)?;
        Ok(Bench { diarizer, silero: Silero::load(&vad)? })
    }

    /// Overrides the seconds between the segmentation model's chunks.
    pub fn set_segment_step(&mut self, step_s: f64) {
        self.diarizer.params.segment_step_s = step_s;
    }

    /// Overrides how many windows are clustered whole before a subsample is taken, so that a
    /// recording can be clustered as a longer one would be.
    pub fn set_max_clustered(&mut self, windows: usize) {
        self.diarizer.params.cluster.max_clustered = windows;
    }

    /// Keeps the window turns as they are (the segmentation model then only bounds the count).
    pub fn without_refinement(mut self) -> Self {
        self.diarizer.params.refine = false;
        self
    }

    /// Diarizes without the segmentation model, as before it was added.
    pub fn without_segmenter(mut self) -> Self {
        self.diarizer = self.diarizer.without_segmenter();
        self
    }

    /// Which speaker encoder runs.
    pub fn encoder(&self) -> EncoderKind {
        self.diarizer.kind()
    }

    fn frame_scores(&self, samples: &[f32]) -> Vec<f32> {
        vad::silero_frame_scores(&self.silero, samples)
    }

    /// Overrides tuning: window hop (s), clustering threshold, majority-filter width.
    pub fn tune(&mut self, hop_s: Option<f64>, threshold: Option<f32>, smooth: Option<usize>) {
        let p: &mut DiarizeParams = &mut self.diarizer.params;
        if let Some(h) = hop_s {
            p.hop_s = h;
        }
        if let Some(t) = threshold {
            p.cluster.threshold = t;
        }
        if let Some(s) = smooth {
            p.smooth = s;
        }
    }

    /// Overrides the window length (s); CAM++ only (GE2E's is fixed at 1.6 s).
    pub fn set_window(&mut self, window_s: f64) -> anyhow::Result<()> {
        anyhow::ensure!(self.diarizer.kind() == EncoderKind::CamPlusPlus, "only CAM++ takes another window length");
        let frames = (window_s * SAMPLE_RATE as f64 / super::encoder::HOP as f64).round() as usize;
        anyhow::ensure!(frames >= 10, "window of {window_s} s is too short");
        self.diarizer.params.window_frames = frames;
        Ok(())
    }

    /// Window length (s), hop (s) and counting threshold in use.
    pub fn settings(&self) -> (f64, f64, f32) {
        let p = &self.diarizer.params;
        let window = (p.window_frames * super::encoder::HOP) as f64 / SAMPLE_RATE as f64;
        (window, p.hop_s, p.cluster.threshold)
    }

    /// Speaker turns of 16 kHz mono samples, labelled `"0"`, `"1"`, ...
    pub fn run(&self, samples: &[f32], num_speakers: Option<usize>) -> Vec<Segment> {
        self.run_on(samples, &self.speech(samples), num_speakers)
    }

    /// The same, on given speech spans (samples), to time diarization without VAD.
    pub fn run_on(&self, samples: &[f32], speech: &[(usize, usize)], num_speakers: Option<usize>) -> Vec<Segment> {
        self.diarizer
            .diarize(samples, speech, num_speakers, None)
            .into_iter()
            .map(|t| Segment { start: t.start, end: t.end, speaker: t.speaker.to_string() })
            .collect()
    }

    /// Windows `(start_s, end_s, embedding)` over `speech`, `hop_s` apart, for probing how well
    /// the embeddings separate the reference speakers.
    pub fn embeddings(&self, samples: &[f32], speech: &[(usize, usize)], hop_s: f64) -> Vec<(f64, f64, Vec<f32>)> {
        let params = DiarizeParams { hop_s, ..self.diarizer.params };
        let gain = self.diarizer.encoder.gain(samples, speech);
        let (windows, emb) = self.diarizer.embed_windows(samples, speech, gain, &params);
        let sec = |f: usize| (f * super::encoder::HOP) as f64 / SAMPLE_RATE as f64;
        let wf = params.window_frames;
        windows.iter().zip(emb).map(|(w, e)| (sec(w.start), sec(w.start + wf), e)).collect()
    }

    /// VAD speech spans (samples), as the engine cuts them (padded 0.4 s on each side).
    pub fn speech(&self, samples: &[f32]) -> Vec<(usize, usize)> {
        vad::speech_regions(&self.frame_scores(samples), samples.len(), &VadParams::default())
    }

    /// The regions `diarization_regions` cuts (unpadded, split at pauses of 0.3 s): closer
    /// to what words cover than the engine's padded regions.
    pub fn tight_speech(&self, samples: &[f32]) -> Vec<(usize, usize)> {
        super::diarization_regions(&self.frame_scores(samples), samples.len())
    }
}

/// The best any system that gives one speaker at a time can do: the reference itself, keeping
/// one speaker wherever several overlap (the one already talking, else the one whose turn runs
/// longest). Its DER is all missed overlap: the floor for our output, where every word has one
/// speaker.
pub fn single_speaker_reference(reference: &[Segment]) -> Vec<Segment> {
    let mut bounds: Vec<f64> = reference.iter().flat_map(|s| [s.start, s.end]).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let mut out: Vec<Segment> = Vec::new();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        let active = reference.iter().filter(|s| s.start <= a && s.end >= b);
        let current = out.last().filter(|l| (l.end - a).abs() < 1e-9).map(|l| l.speaker.clone());
        let pick = active
            .max_by(|x, y| {
                let keep = |s: &Segment| Some(&s.speaker) == current.as_ref();
                (keep(x), x.end).partial_cmp(&(keep(y), y.end)).unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|s| s.speaker.clone());
        match (pick, out.last_mut()) {
            (Some(p), Some(l)) if l.speaker == p && (l.end - a).abs() < 1e-9 => l.end = b,
            (Some(p), _) => out.push(Segment { start: a, end: b, speaker: p }),
            (None, _) => {}
        }
    }
    out
}

/// `$HARKEN_MODELS_DIR`, else `default_models_dir`.
pub fn models_dir(default_models_dir: PathBuf) -> PathBuf {
    std::env::var_os("HARKEN_MODELS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or(default_models_dir)
}

/// Silero VAD's weights in a models directory.
pub fn vad_model_path(models_dir: &Path) -> PathBuf {
    models_dir.join("silero-vad").join("silero_vad_16k.safetensors")
}

/// User + system CPU seconds of this process (all threads), from `/proc/self/stat`; 0 where
/// there is no procfs. For the timings of benchmarks and timing tests: the wall clock is
/// meaningless while other work shares the cores.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / 100.0
}

/// `$HARKEN_TESTDATA`, else `../shared/testdata` next to the repository.
pub fn testdata_dir() -> PathBuf {
    std::env::var_os("HARKEN_TESTDATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"))
}

/// A `diar` row of `manifest.tsv`.
#[derive(Debug, Clone)]
pub struct Clip {
    pub audio: PathBuf,
    pub rttm: PathBuf,
}

/// The `diar` rows of `<testdata>/manifest.tsv`.
pub fn diar_clips(testdata: &Path) -> anyhow::Result<Vec<Clip>> {
    Ok(manifest_rows(testdata)?
        .into_iter()
        .filter(|row| row.kind == "diar" && !row.rttm.is_empty())
        .map(|row| Clip { audio: testdata.join(&row.file), rttm: testdata.join(&row.rttm) })
        .collect())
}

/// A row of `manifest.tsv`: the columns the tests and benchmarks read.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    /// Path relative to the test data directory.
    pub file: String,
    /// `asr` (one speaker), `diar`, `event` or `lang`.
    pub kind: String,
    /// ISO 639-1 code of the spoken language (`en`).
    pub language: String,
    pub duration_s: f64,
    /// The reference: a transcript (`asr`, `lang`), an event label (`event`); may be empty.
    pub reference: String,
    /// Path of the speaker RTTM, relative; empty when there is none.
    pub rttm: String,
}

/// Every row of `<testdata>/manifest.tsv`, columns found by the header's names.
pub fn manifest_rows(testdata: &Path) -> anyhow::Result<Vec<ManifestRow>> {
    let manifest = testdata.join("manifest.tsv");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().map(|h| h.split('\t').collect()).unwrap_or_default();
    Ok(lines
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let col = |name: &str| header.iter().position(|c| *c == name).and_then(|i| cols.get(i)).copied();
            ManifestRow {
                file: col("file").unwrap_or("").to_string(),
                kind: col("kind").unwrap_or("").to_string(),
                language: col("language").unwrap_or("").to_string(),
                duration_s: col("duration_s").and_then(|d| d.parse().ok()).unwrap_or(0.0),
                reference: col("reference").unwrap_or("").to_string(),
                rttm: col("rttm").unwrap_or("").to_string(),
            }
        })
        .collect())
}

/// Speaker segments of an RTTM file (`SPEAKER <file> <chan> <start> <dur> <NA> <NA> <name> ...`).
pub fn read_rttm(text: &str) -> Vec<Segment> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.first() != Some(&"SPEAKER") || f.len() < 8 {
                return None;
            }
            let (start, dur): (f64, f64) = (f[3].parse().ok()?, f[4].parse().ok()?);
            Some(Segment { start, end: start + dur, speaker: f[7].to_owned() })
        })
        .collect()
}

/// Error times (seconds) of one scored recording.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Scored reference speech (overlap counted once per speaker).
    pub reference: f64,
    pub miss: f64,
    pub false_alarm: f64,
    pub confusion: f64,
}

impl Score {
    pub fn errors(&self) -> f64 {
        self.miss + self.false_alarm + self.confusion
    }

    /// Diarization error rate, 0..; 0 when there is no reference speech and no error.
    pub fn der(&self) -> f64 {
        if self.reference > 0.0 {
            self.errors() / self.reference
        } else if self.errors() > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    pub fn add(&mut self, o: &Score) {
        self.reference += o.reference;
        self.miss += o.miss;
        self.false_alarm += o.false_alarm;
        self.confusion += o.confusion;
    }
}

const STEP: f64 = 0.001;

/// DER components of `hyp` against `reference`, pyannote style (see the module doc).
pub fn score(reference: &[Segment], hyp: &[Segment], collar: f64) -> Score {
    let end = reference.iter().chain(hyp).map(|s| s.end).fold(0.0, f64::max);
    let n = (end / STEP).ceil() as usize + 1;
    let idx = |t: f64| ((t / STEP).round().max(0.0) as usize).min(n);
    let mut scored = vec![true; n];
    for s in reference {
        for b in [s.start, s.end] {
            scored[idx(b - collar / 2.0)..idx(b + collar / 2.0)].fill(false);
        }
    }
    let activity = |segs: &[Segment]| -> (Vec<String>, Vec<Vec<bool>>) {
        let mut names: Vec<String> = segs.iter().map(|s| s.speaker.clone()).collect();
        names.sort();
        names.dedup();
        let mut act = vec![vec![false; n]; names.len()];
        for s in segs {
            let k = names.binary_search(&s.speaker).expect("name listed");
            act[k][idx(s.start)..idx(s.end)].fill(true);
        }
        (names, act)
    };
    let (_, r) = activity(reference);
    let (_, h) = activity(hyp);
    let mut co = vec![vec![0usize; h.len()]; r.len()];
    for (i, ri) in r.iter().enumerate() {
        for (j, hj) in h.iter().enumerate() {
            co[i][j] = (0..n).filter(|&t| scored[t] && ri[t] && hj[t]).count();
        }
    }
    let mapping = best_mapping(&co);
    let mut sc = Score::default();
    for t in (0..n).filter(|&t| scored[t]) {
        let nr = r.iter().filter(|a| a[t]).count();
        let nh = h.iter().filter(|a| a[t]).count();
        let correct = mapping.iter().enumerate().filter(|(i, m)| m.is_some_and(|j| r[*i][t] && h[j][t])).count();
        sc.reference += nr as f64 * STEP;
        sc.miss += nr.saturating_sub(nh) as f64 * STEP;
        sc.false_alarm += nh.saturating_sub(nr) as f64 * STEP;
        sc.confusion += (nr.min(nh) - correct) as f64 * STEP;
    }
    sc
}

/// The one-to-one reference→hypothesis mapping with the largest total co-occurrence
/// (exhaustive: speaker counts here are small).
fn best_mapping(co: &[Vec<usize>]) -> Vec<Option<usize>> {
    fn go(
        i: usize,
        co: &[Vec<usize>],
        used: &mut Vec<bool>,
        cur: &mut Vec<Option<usize>>,
        best: &mut (usize, Vec<Option<usize>>),
        sum: usize,
    ) {
        if i == co.len() {
            if sum >= best.0 {
                *best = (sum, cur.clone());
            }
            return;
        }
        cur.push(None);
        go(i + 1, co, used, cur, best, sum);
        cur.pop();
        for j in 0..used.len() {
            if !used[j] && co[i][j] > 0 {
                used[j] = true;
                cur.push(Some(j));
                go(i + 1, co, used, cur, best, sum + co[i][j]);
                cur.pop();
                used[j] = false;
            }
        }
    }
    let hyps = co.first().map_or(0, Vec::len);
    let mut best = (0, vec![None; co.len()]);
    go(0, co, &mut vec![false; hyps], &mut Vec::new(), &mut best, 0);
    best.1
}

/// Seconds of audio in `samples`.
pub fn seconds(samples: &[f32]) -> f64 {
    samples.len() as f64 / SAMPLE_RATE as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, s: &str) -> Segment {
        Segment { start, end, speaker: s.into() }
    }

    #[test]
    fn a_perfect_hypothesis_under_other_names_scores_zero() {
        let r = [seg(0.0, 2.0, "A"), seg(2.0, 5.0, "B")];
        let h = [seg(0.0, 2.0, "1"), seg(2.0, 5.0, "0")];
        let s = score(&r, &h, 0.25);
        assert!(s.der() < 1e-9, "{s:?}");
        // 0.125 s of collar on each side of the boundaries at 0, 2 and 5 s.
        assert!((s.reference - 4.5).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn miss_false_alarm_and_confusion_are_counted_outside_the_collar() {
        let r = [seg(0.0, 4.0, "A"), seg(4.0, 8.0, "B"), seg(6.0, 8.0, "C")];
        // B's first second confused with A, C missed, one second of speech where none is.
        let h = [seg(0.0, 5.0, "x"), seg(5.0, 8.0, "y"), seg(9.0, 10.0, "y")];
        let s = score(&r, &h, 0.0);
        assert!((s.reference - 10.0).abs() < 0.01, "{s:?}");
        assert!((s.confusion - 1.0).abs() < 0.01, "{s:?}");
        assert!((s.miss - 2.0).abs() < 0.01, "{s:?}");
        assert!((s.false_alarm - 1.0).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn the_single_speaker_floor_misses_only_the_overlap() {
        // B talks over A from 3 to 4 s; C alone later.
        let r = [seg(0.0, 4.0, "A"), seg(3.0, 6.0, "B"), seg(7.0, 8.0, "C")];
        let h = single_speaker_reference(&r);
        assert_eq!(h, vec![seg(0.0, 4.0, "A"), seg(4.0, 6.0, "B"), seg(7.0, 8.0, "C")]);
        let s = score(&r, &h, 0.0);
        assert!((s.miss - 1.0).abs() < 0.01 && s.confusion < 0.01 && s.false_alarm < 0.01, "{s:?}");
    }

    #[test]
    fn rttm_lines_are_read() {
        let r = read_rttm("SPEAKER f 1 0.5 1.25 <NA> <NA> spk1 <NA> <NA>\n\nnoise\n");
        assert_eq!(r, vec![seg(0.5, 1.75, "spk1")]);
    }
}
