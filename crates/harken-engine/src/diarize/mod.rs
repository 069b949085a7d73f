//! Speaker diarization: who speaks when, as [`SpeakerTurn`]s, and words labelled from them.
//!
//! Pipeline, inside the speech regions found by VAD only:
//! 1. power mel features of the whole recording (cheap), gain set from the speech's loudness;
//! 2. a speaker embedding for each window, windows every [`DiarizeParams::hop_s`] seconds; a
//!    region shorter than a window gets one centred window. Two encoders ([`SpeakerEncoder`]):
//!    Resemblyzer's GE2E LSTM ([`encoder`]; 1.6 s windows every 1.2 s) and 3D-Speaker's CAM++
//!    ([`campp`]; 1.5 s windows), each with its own window plan and clustering threshold;
//! 3. the speaker count from average-linkage clustering cut at a similarity threshold (or the
//!    requested number), then Ward clustering into that many speakers ([`cluster`]); with
//!    pyannote's segmentation model ([`segment`], 10 s chunks every 5 s), the count is at least
//!    the number of voices it hears talk alone for 2 s within one chunk, and 1 when no chunk
//!    hears a second voice talk alone for 0.9 s; telephone-band speech ([`band`]) is counted
//!    at a higher threshold, its voices' embeddings lying closer together;
//! 4. a majority filter over neighbouring windows of a region, then turns: each window owns the
//!    time from halfway to its previous neighbour to halfway to its next one;
//! 5. with the segmentation model, the turns redrawn along its local speakers ([`refine`]).
//!
//! Invariants: turns are sorted, do not overlap, lie inside the speech regions, and their
//! speaker indices are `0..k` with no gaps. One speaker alone always comes out as one label.

mod assign;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod band;
mod campp;
pub(crate) mod cluster;
mod encoder;
mod lstm;
mod refine;
#[doc(hidden)]
pub mod eval;
pub(crate) mod segment;
mod speech;
#[doc(hidden)]
pub mod synthetic;
mod weights;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

#[allow(unused_imports)] // Used by the engine once wired (whisper feature).
pub(crate) use assign::assign_speakers;
use campp::CamPlusPlus;
use cluster::ClusterParams;
use encoder::{Encoder, HOP};
use segment::Segmenter;
#[allow(unused_imports)] // For the engine: the regions to pass to `Diarizer::diarize`.
pub(crate) use speech::diarization_regions;

use crate::api::SAMPLE_RATE;

/// One speaker talking from `start` to `end` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SpeakerTurn {
    pub start: f64,
    pub end: f64,
    pub speaker: usize,
}

/// Which speaker-embedding model a [`Diarizer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// Resemblyzer's GE2E LSTM (`resemblyzer/pretrained.pt`, 256-d): cheap (RTF ≈ 0.005).
    Ge2e,
    /// 3D-Speaker's CAM++ zh+en common advanced (`campplus/campplus_cn_en_common.pt`, 192-d):
    /// ≈ 0.79 GMAC per 1.5 s window, several times GE2E's cost.
    CamPlusPlus,
}

impl EncoderKind {
    /// The pipeline's default encoder (docs/DIARIZATION.md says why).
    pub const DEFAULT: EncoderKind = EncoderKind::Ge2e;

    /// The kind of a weights file, from its first bytes: CAM++ ships as a zip-format
    /// `torch.save` (starts with `PK`), Resemblyzer's `pretrained.pt` in the legacy format
    /// (a pickle).
    pub fn of_file(path: &Path) -> anyhow::Result<Self> {
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(if magic == *b"PK\x03\x04" { EncoderKind::CamPlusPlus } else { EncoderKind::Ge2e })
    }

    /// The weights file in a models directory (`harken models fetch <name>`).
    pub fn model_path(self, models_dir: &Path) -> std::path::PathBuf {
        match self {
            EncoderKind::Ge2e => models_dir.join("resemblyzer").join("pretrained.pt"),
            EncoderKind::CamPlusPlus => models_dir.join("campplus").join("campplus_cn_en_common.pt"),
        }
    }

    /// The model registry's name for the weights.
    pub fn model_name(self) -> &'static str {
        match self {
            EncoderKind::Ge2e => "resemblyzer",
            EncoderKind::CamPlusPlus => "campplus",
        }
    }
}

impl std::str::FromStr for EncoderKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ge2e" | "resemblyzer" => Ok(EncoderKind::Ge2e),
            "campp" | "cam++" | "campplus" => Ok(EncoderKind::CamPlusPlus),
            other => anyhow::bail!("unknown speaker encoder {other:?} (ge2e or campp)"),
        }
    }
}

/// The loaded speaker-embedding model (one per process, so the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum SpeakerEncoder {
    Ge2e(Encoder),
    CamPlusPlus(CamPlusPlus),
}

impl SpeakerEncoder {
    fn kind(&self) -> EncoderKind {
        match self {
            SpeakerEncoder::Ge2e(_) => EncoderKind::Ge2e,
            SpeakerEncoder::CamPlusPlus(_) => EncoderKind::CamPlusPlus,
        }
    }

    /// The loudness factor [`SpeakerEncoder::embed`] applies, from the `speech` spans of
    /// `samples`: GE2E's features are raised to −30 dBFS of speech; CAM++ takes the audio as is.
    fn gain(&self, samples: &[f32], speech: &[(usize, usize)]) -> f32 {
        match self {
            SpeakerEncoder::Ge2e(_) => Encoder::power_gain(speech.iter().flat_map(|&(a, b)| samples[a..b].iter().copied())),
            SpeakerEncoder::CamPlusPlus(_) => 1.0,
        }
    }

    /// One L2-normalised embedding per window of 16 kHz `samples`; window `i` is the 10 ms
    /// frames `starts[i] .. starts[i] + window_frames`, i.e. samples `starts[i] * 160 ..`.
    /// `gain` is [`SpeakerEncoder::gain`] of the whole recording, also when `samples` holds
    /// only pieces of it, so that every window of a recording is heard at one loudness.
    fn embed(&self, samples: &[f32], gain: f32, starts: &[usize], window_frames: usize) -> Vec<Vec<f32>> {
        match self {
            SpeakerEncoder::Ge2e(enc) => {
                debug_assert_eq!(window_frames, encoder::WINDOW_FRAMES, "GE2E's windows are fixed");
                enc.embed(samples, gain, starts)
            }
            SpeakerEncoder::CamPlusPlus(model) => {
                let spans: Vec<(usize, usize)> =
                    starts.iter().map(|&s| (s * HOP, ((s + window_frames) * HOP).min(samples.len()))).collect();
                model.embed(samples, &spans)
            }
        }
    }
}

/// Tuning of the pipeline; the defaults are what `docs/DIARIZATION.md` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DiarizeParams {
    /// Window length in 10 ms frames: 160 (1.6 s) for GE2E, the length it was trained on.
    pub(crate) window_frames: usize,
    /// Seconds between the starts of consecutive windows. For GE2E 1.2 scores better than 1.6
    /// (side by side) with Ward clustering and about as well as 0.8, at two thirds of the cost
    /// of 0.8 (docs/DIARIZATION.md).
    pub(crate) hop_s: f64,
    /// Width (in windows, odd) of the majority filter over labels; 1 disables it.
    pub(crate) smooth: usize,
    pub(crate) cluster: ClusterParams,
    /// With the segmentation model: redraw the turns along its local speakers ([`refine`]).
    pub(crate) refine: bool,
    /// Seconds between the starts of the segmentation model's 10 s chunks.
    pub(crate) segment_step_s: f64,
}

/// Seconds between segmentation chunks: 5 s makes them half-overlapping, so every voice change
/// falls well inside one (pyannote's own step, 1 s, costs 5× as much).
const SEGMENT_STEP_S: f64 = 5.0;

impl Default for DiarizeParams {
    fn default() -> Self {
        DiarizeParams::for_encoder(EncoderKind::Ge2e)
    }
}

impl DiarizeParams {
    /// The tuned settings of each encoder (docs/DIARIZATION.md).
    pub(crate) fn for_encoder(kind: EncoderKind) -> Self {
        match kind {
            EncoderKind::Ge2e => DiarizeParams {
                window_frames: encoder::WINDOW_FRAMES,
                hop_s: 1.2,
                smooth: 3,
                cluster: ClusterParams::default(),
                refine: true,
                segment_step_s: SEGMENT_STEP_S,
            },
            // CAM++ similarities: same speaker ≈ 0.75–0.87, different ≈ −0.07–0.26 on clean
            // speech, far lower than GE2E's, so the counting threshold is too.
            EncoderKind::CamPlusPlus => DiarizeParams {
                window_frames: CAMPP_WINDOW_FRAMES,
                hop_s: CAMPP_HOP_S,
                smooth: 3,
                cluster: ClusterParams { threshold: CAMPP_THRESHOLD, ..ClusterParams::default() },
                refine: true,
                segment_step_s: SEGMENT_STEP_S,
            },
        }
    }
}

/// CAM++'s window (1.5 s), hop and counting threshold, tuned with `examples/der.rs` on Silero's
/// `diarization_regions` (DER `diar` set / synthetic set): threshold 0.35–0.4 is the plateau
/// on both sets at every hop (0.3 splits, 0.45 and up merges on `diar`); hop 1.5 s scored
/// 45.6–46.4 / 6.7 %, 0.75 s 47.7–48.2 / 6.0 % at 1.4–1.5× the cost, 1.0 s 51.0–53.3 / 6.3 %
/// (so the `diar` differences are clip-level noise); 2.0 s windows were worse on the synthetic
/// set (7.6–7.9 %).
const CAMPP_WINDOW_FRAMES: usize = 150;
const CAMPP_HOP_S: f64 = 1.5;
const CAMPP_THRESHOLD: f32 = 0.38;

/// The speaker encoder (and optionally the segmentation model), loaded once; `diarize` may be
/// called from several threads.
pub(crate) struct Diarizer {
    encoder: SpeakerEncoder,
    segmenter: Option<Segmenter>,
    params: DiarizeParams,
}

/// Share of a track's own windows that must sound like one speaker for [`Diarizer::voices`] to
/// name it: with up to three windows, all of them. Measured (DER `diar` / synthetic, component
/// benchmark, votes trusted at 70 %): two of three (0.5) 40.1 / 16.1 %, all 41.1 / 9.6 %, never
/// asking 42.1 / 9.6 %; the model's tracks that hold two clean read voices are what a looser
/// rule gets wrong.
const VOICE_AGREEMENT: f64 = 0.7;
/// At most this many windows of a track are embedded (spread over its audio), which bounds the
/// cost: a track can hold 10 s of speech, and chunks overlap. Six scored the same as three.
const VOICE_WINDOWS: usize = 3;
/// Windows [`Diarizer::voices`] embeds per call: two of the encoder's batches, one per thread.
const VOICE_BATCH: usize = 96;

/// Solo speech (s) a local speaker needs in one chunk to count (`segment::speakers_heard_alone`).
const SEGMENT_MIN_SOLO_S: f64 = 2.0;

/// Below this much solo speech (s) by a second voice in every chunk, the segmentation model
/// hears one voice in the whole recording, and the count is 1 whatever the embeddings say. On
/// our single-speaker recordings the longest second voice held 0.76 s (a sonnet; 0 on 44 of 48),
/// while every multi-speaker clip had one of ≥ 1.01 s (docs/DIARIZATION.md, session 15): a
/// voice split in two costs far more than a short remark folded into the speaker around it.
const SEGMENT_ONE_VOICE_S: f64 = 0.9;

/// A window of the recording: 10 ms frames `start .. start + window_frames` (samples
/// `start * 160 ..`), in speech region `region`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: usize,
    region: usize,
}

impl Diarizer {
    /// Loads a speaker encoder, the kind told by the file ([`EncoderKind::of_file`]):
    /// Resemblyzer's `pretrained.pt` (`harken models fetch resemblyzer`) or CAM++'s
    /// `campplus_cn_en_common.pt`; the pipeline's settings are that encoder's defaults.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_as(path, EncoderKind::of_file(path)?)
    }

    /// Loads `path` as a `kind` encoder.
    pub(crate) fn load_as(path: &Path, kind: EncoderKind) -> anyhow::Result<Self> {
        let encoder = match kind {
            EncoderKind::Ge2e => SpeakerEncoder::Ge2e(Encoder::load(path)?),
            EncoderKind::CamPlusPlus => SpeakerEncoder::CamPlusPlus(CamPlusPlus::load(path)?),
        };
        Ok(Diarizer { encoder, segmenter: None, params: DiarizeParams::for_encoder(kind) })
    }

    /// Adds pyannote's segmentation model (`pytorch_model.bin`, [`segment`]): without a requested
    /// count, the voices it hears alone within one 10 s chunk set the least count (above
    /// ElevenLabs' `diarization_threshold`), and the turns follow its voice changes ([`refine`]).
    pub(crate) fn with_segmenter(mut self, path: &Path) -> anyhow::Result<Self> {
        self.segmenter = Some(Segmenter::load(path)?);
        Ok(self)
    }

    /// Drops the segmentation model (for side-by-side measurements).
    pub(crate) fn without_segmenter(mut self) -> Self {
        self.segmenter = None;
        self
    }

    /// Which encoder runs.
    #[allow(dead_code)] // For the engine's logs and the tests.
    pub(crate) fn kind(&self) -> EncoderKind {
        self.encoder.kind()
    }

    /// Speaker turns of 16 kHz mono `samples`, within the half-open sample spans `speech`
    /// (sorted, from VAD). The number of speakers is estimated (1 to 32, at most
    /// `num_speakers`), more readily merged the higher `threshold` (ElevenLabs'
    /// `diarization_threshold`, 0.1 to 0.4) is. No speech gives no turns.
    pub(crate) fn diarize(
        &self,
        samples: &[f32],
        speech: &[(usize, usize)],
        num_speakers: Option<usize>,
        threshold: Option<f32>,
    ) -> Vec<SpeakerTurn> {
        let speech: Vec<(usize, usize)> =
            speech.iter().map(|&(a, b)| (a.min(samples.len()), b.min(samples.len()))).filter(|(a, b)| b > a).collect();
        if speech.is_empty() {
            return Vec::new();
        }
        let gain = self.encoder.gain(samples, &speech);
        let (windows, emb) = self.embed_windows(samples, &speech, gain, &self.params);
        let mut cluster_params = self.params.cluster;
        let narrowband = band::is_narrowband(samples, &speech);
        if narrowband {
            cluster_params.threshold += band::NARROWBAND_THRESHOLD_RISE;
        }
        if let Some(t) = threshold {
            cluster_params.threshold = similarity_threshold(cluster_params.threshold, t);
        }
        let step = ((self.params.segment_step_s * SAMPLE_RATE as f64) as usize).max(SAMPLE_RATE as usize);
        let activity = self.segmenter.as_ref().map(|seg| seg.activity_in(samples, &speech, step));
        let second_voice_s = activity.as_deref().map(segment::second_voice_alone_s);
        if let Some(activity) = &activity {
            cluster_params.min_speakers = segment::speakers_heard_alone(activity, SEGMENT_MIN_SOLO_S);
            if second_voice_s.is_some_and(|s| s < SEGMENT_ONE_VOICE_S) {
                cluster_params.max_speakers = 1;
            }
        }
        let mut labels = cluster::cluster(&emb, num_speakers, &cluster_params);
        smooth(&mut labels, &windows, self.params.smooth);
        let speakers = labels.iter().max().map_or(0, |&m| m + 1);
        tracing::debug!(
            windows = emb.len(),
            least = cluster_params.min_speakers,
            narrowband,
            second_voice_s,
            threshold = cluster_params.threshold,
            speakers,
            "speakers counted"
        );
        let turns = turns(&speech, &windows, &labels, self.params.window_frames);
        match activity {
            Some(activity) if self.params.refine => {
                let centroids = cluster::label_centroids(&emb, &labels);
                let voice = |tracks: &[Vec<(usize, usize)>]| self.voices(samples, gain, tracks, &centroids);
                refine::refine_turns(&turns, &activity, speakers, &speech, &voice)
            }
            _ => turns,
        }
    }

    /// For each track (a set of sample spans), the speaker (index into `centroids`) its audio
    /// sounds like: the spans' audio is joined and cut into back-to-back windows (at most
    /// [`VOICE_WINDOWS`], spread over it), and at least [`VOICE_AGREEMENT`] of them must be
    /// closest to that speaker's centroid. Audio shorter than a window is repeated until it
    /// fills one, so the encoder ends on speech. The chosen windows are laid end to end and
    /// embedded [`VOICE_BATCH`] at a time: the encoder is fast in batches only, and copying
    /// every track's audio at once would hold as much audio again as the recording's speech.
    fn voices(
        &self,
        samples: &[f32],
        gain: f32,
        tracks: &[Vec<(usize, usize)>],
        centroids: &[Option<Vec<f32>>],
    ) -> Vec<Option<usize>> {
        let window = self.params.window_frames * HOP;
        let mut votes = vec![vec![0usize; centroids.len()]; tracks.len()];
        let mut track: Vec<f32> = Vec::new();
        let mut audio: Vec<f32> = Vec::new(); // chosen windows, back to back
        let mut owner: Vec<usize> = Vec::new(); // the track of each window in `audio`
        for (t, spans) in tracks.iter().enumerate() {
            track.clear();
            track.extend(spans.iter().flat_map(|&(a, b)| &samples[a.min(samples.len())..b.min(samples.len())]));
            if track.is_empty() {
                continue;
            }
            while track.len() < window {
                let have = track.len();
                track.extend_from_within(..have.min(window - have));
            }
            let fits = track.len() / window;
            let n = fits.min(VOICE_WINDOWS);
            for i in 0..n {
                let from = i * fits / n * window;
                audio.extend_from_slice(&track[from..from + window]);
                owner.push(t);
            }
            if owner.len() >= VOICE_BATCH {
                self.vote(&audio, gain, &owner, centroids, &mut votes);
                audio.clear();
                owner.clear();
            }
        }
        if !owner.is_empty() {
            self.vote(&audio, gain, &owner, centroids, &mut votes);
        }
        votes
            .iter()
            .map(|v| {
                let total: usize = v.iter().sum();
                let (speaker, &n) = v.iter().enumerate().max_by_key(|&(_, n)| n)?;
                (total > 0 && n as f64 >= VOICE_AGREEMENT * total as f64).then_some(speaker)
            })
            .collect()
    }

    /// Adds to `votes[track]` the speaker closest to each window of `audio` (back-to-back
    /// windows, window `i` heard from track `owner[i]`).
    fn vote(&self, audio: &[f32], gain: f32, owner: &[usize], centroids: &[Option<Vec<f32>>], votes: &mut [Vec<usize>]) {
        let window_frames = self.params.window_frames;
        let starts: Vec<usize> = (0..owner.len()).map(|i| i * window_frames).collect();
        let emb = self.encoder.embed(audio, gain, &starts, window_frames);
        for (e, &t) in emb.iter().zip(owner) {
            votes[t][cluster::closest(e, centroids)] += 1;
        }
    }

    /// One voice print per clip of 16 kHz mono speech: the normalised mean of its windows'
    /// embeddings (`None` for a clip under [`MIN_PRINT_SAMPLES`]), and the similarity above
    /// which two prints are one voice ([`SAME_VOICE_GE2E`], [`SAME_VOICE_CAMPP`]).
    pub(crate) fn voice_prints(&self, clips: &[&[f32]]) -> (Vec<Option<Vec<f32>>>, f32) {
        let prints = clips
            .iter()
            .map(|clip| {
                if clip.len() < MIN_PRINT_SAMPLES {
                    return None;
                }
                let whole = [(0, clip.len())];
                let gain = self.encoder.gain(clip, &whole);
                let (_, emb) = self.embed_windows(clip, &whole, gain, &self.params);
                cluster::label_centroids(&emb, &vec![0; emb.len()]).pop().flatten()
            })
            .collect();
        let same_voice = match self.kind() {
            EncoderKind::Ge2e => SAME_VOICE_GE2E,
            EncoderKind::CamPlusPlus => SAME_VOICE_CAMPP,
        };
        (prints, same_voice)
    }

    /// The windows over `speech` (clipped, non-empty spans) and their embeddings.
    fn embed_windows(
        &self,
        samples: &[f32],
        speech: &[(usize, usize)],
        gain: f32,
        p: &DiarizeParams,
    ) -> (Vec<Window>, Vec<Vec<f32>>) {
        let frames = samples.len() / HOP + 1;
        let windows = plan_windows(speech, frames, p.window_frames, p.hop_s);
        let starts: Vec<usize> = windows.iter().map(|w| w.start).collect();
        let emb = self.encoder.embed(samples, gain, &starts, p.window_frames);
        (windows, emb)
    }
}

/// Cosine similarity above which two voice prints (the mean embedding of a few seconds or more
/// of speech) are taken for one person. Measured on the synthetic 6-speaker conversation with
/// an 8 s reference of each voice and two of voices not in it (docs/DIARIZATION.md, "Speakers
/// named by their voice"): GE2E gave 0.879–0.965 to the right voice and up to 0.796 to another,
/// CAM++ 0.835–0.960 and up to 0.406. On meeting clips named from another excerpt of the same
/// meeting the right voice scored 0.60–0.92 (GE2E) and 0.50–0.74 (CAM++), and GE2E once gave
/// 0.83 to a label that mixes two voices. A name left off costs less than a stranger's name given.
const SAME_VOICE_GE2E: f32 = 0.82;
const SAME_VOICE_CAMPP: f32 = 0.6;

/// Least audio (0.5 s) a voice print is made of: less is a word or two, too little to tell.
const MIN_PRINT_SAMPLES: usize = SAMPLE_RATE as usize / 2;

/// ElevenLabs' default `diarization_threshold`, which maps to our tuned threshold.
const ELEVENLABS_DEFAULT_THRESHOLD: f32 = 0.22;

/// The counting threshold (mean cosine similarity below which clusters stay apart) for
/// ElevenLabs' `diarization_threshold`: a distance-like value, 0.1 to 0.4, where higher means
/// fewer speakers. Their default 0.22 gives our tuned `tuned` (0.62); each 0.01 above it lowers
/// the similarity threshold by 0.01, so 0.1 asks for 0.74 (splits voices readily: on our test
/// set 0.7 already finds too many speakers) and 0.4 for 0.44 (almost always one speaker). GE2E
/// similarities between windows of different speakers lie around 0.45–0.7 and within a
/// speaker around 0.7–0.8 (docs/DIARIZATION.md), so the ElevenLabs range spans all of it.
/// With CAM++ (tuned 0.38) the same offsets give 0.50 to 0.20: its similarities between
/// speakers run lower (≈ 0–0.3 on clean speech, higher far-field), within a speaker ≈ 0.75–0.87.
fn similarity_threshold(tuned: f32, diarization_threshold: f32) -> f32 {
    (tuned + ELEVENLABS_DEFAULT_THRESHOLD - diarization_threshold).clamp(0.0, 1.0)
}

/// Windows covering every speech region, `hop_s` apart; the last one of a region is aligned to
/// its end, and a region shorter than a window gets one window centred on it.
fn plan_windows(speech: &[(usize, usize)], frames: usize, window_frames: usize, hop_s: f64) -> Vec<Window> {
    let hop = ((hop_s * SAMPLE_RATE as f64 / HOP as f64).round() as usize).max(1);
    let mut out = Vec::new();
    for (region, &(a, b)) in speech.iter().enumerate() {
        let (fa, fb) = (a / HOP, b.div_ceil(HOP).min(frames));
        if fb - fa <= window_frames {
            let centre = (fa + fb) / 2;
            let start = centre.saturating_sub(window_frames / 2).min(frames.saturating_sub(window_frames));
            out.push(Window { start, region });
            continue;
        }
        let mut start = fa;
        loop {
            if start + window_frames >= fb {
                out.push(Window { start: fb - window_frames, region });
                break;
            }
            out.push(Window { start, region });
            start += hop;
        }
    }
    out
}

/// Majority filter of odd width `width` over the labels of each region's windows.
fn smooth(labels: &mut [usize], windows: &[Window], width: usize) {
    if width < 3 {
        return;
    }
    let half = width / 2;
    let orig = labels.to_vec();
    for i in 0..labels.len() {
        let lo = (i.saturating_sub(half)..i)
            .rev()
            .take_while(|&j| windows[j].region == windows[i].region)
            .last()
            .unwrap_or(i);
        let hi = (i + 1..(i + half + 1).min(labels.len()))
            .take_while(|&j| windows[j].region == windows[i].region)
            .last()
            .unwrap_or(i);
        let votes = &orig[lo..=hi];
        let count = |l: usize| votes.iter().filter(|&&x| x == l).count();
        let best = votes.iter().copied().max_by_key(|&l| (count(l), l == orig[i])).unwrap_or(orig[i]);
        labels[i] = best;
    }
}

/// Turns from labelled windows: a window owns the time between the midpoints to its neighbours'
/// centres, clipped to its region; equal neighbours merge.
fn turns(speech: &[(usize, usize)], windows: &[Window], labels: &[usize], window_frames: usize) -> Vec<SpeakerTurn> {
    let sr = SAMPLE_RATE as f64;
    let centre = |w: &Window| ((w.start + window_frames / 2) * HOP) as f64 / sr;
    let mut out: Vec<SpeakerTurn> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let (ra, rb) = (speech[w.region].0 as f64 / sr, speech[w.region].1 as f64 / sr);
        let start = match i.checked_sub(1).map(|j| &windows[j]) {
            Some(p) if p.region == w.region => (centre(p) + centre(w)) / 2.0,
            _ => ra,
        };
        let end = match windows.get(i + 1) {
            Some(n) if n.region == w.region => (centre(w) + centre(n)) / 2.0,
            _ => rb,
        };
        let (start, end) = (start.clamp(ra, rb), end.clamp(ra, rb));
        match out.last_mut() {
            Some(last) if last.speaker == labels[i] && start - last.end < 1e-9 => last.end = end,
            _ if end > start => out.push(SpeakerTurn { start, end, speaker: labels[i] }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
