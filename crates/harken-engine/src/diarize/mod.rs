//! Speaker diarization: who speaks when, as [`SpeakerTurn`]s, and words labelled from them.
//!
//! Pipeline, inside the speech regions found by VAD only:
//! 1. power mel features of the whole recording (cheap), gain set from the speech's loudness;
//! 2. a GE2E embedding (Resemblyzer's LSTM, [`encoder`]) for each 1.6 s window, windows every
//!    [`DiarizeParams::hop_s`] seconds (default 1.2); a region shorter than a window gets one centred window;
//! 3. the speaker count from average-linkage clustering cut at a similarity threshold (or the
//!    requested number), then Ward clustering into that many speakers ([`cluster`]);
//! 4. a majority filter over neighbouring windows of a region, then turns: each window owns the
//!    time from halfway to its previous neighbour to halfway to its next one.
//!
//! Invariants: turns are sorted, do not overlap, lie inside the speech regions, and their
//! speaker indices are `0..k` with no gaps. One speaker alone always comes out as one label.

mod assign;
mod cluster;
mod encoder;
#[doc(hidden)]
pub mod eval;
mod speech;
#[doc(hidden)]
pub mod synthetic;
mod weights;

use std::path::Path;

#[allow(unused_imports)] // Used by the engine once wired (whisper feature).
pub(crate) use assign::assign_speakers;
use cluster::ClusterParams;
use encoder::{Encoder, HOP, WINDOW_FRAMES};
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

/// Tuning of the pipeline; the defaults are what `docs/DIARIZATION.md` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DiarizeParams {
    /// Seconds between the starts of consecutive windows (a window is 1.6 s). 1.2 scores
    /// better than 1.6 (side by side) with Ward clustering and about as well as 0.8, at two
    /// thirds of the cost of 0.8 (docs/DIARIZATION.md).
    pub(crate) hop_s: f64,
    /// Width (in windows, odd) of the majority filter over labels; 1 disables it.
    pub(crate) smooth: usize,
    pub(crate) cluster: ClusterParams,
}

impl Default for DiarizeParams {
    fn default() -> Self {
        DiarizeParams { hop_s: 1.2, smooth: 3, cluster: ClusterParams::default() }
    }
}

/// The speaker encoder, loaded once; `diarize` may be called from several threads.
pub(crate) struct Diarizer {
    encoder: Encoder,
    params: DiarizeParams,
}

/// A window of the recording: frames `start .. start + 160`, in speech region `region`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: usize,
    region: usize,
}

impl Diarizer {
    /// Loads Resemblyzer's `pretrained.pt` (`harken models fetch resemblyzer`).
    pub(crate) fn load(pretrained_pt: &Path) -> anyhow::Result<Self> {
        Ok(Diarizer { encoder: Encoder::load(pretrained_pt)?, params: DiarizeParams::default() })
    }

    #[cfg(test)]
    pub(crate) fn with_params(mut self, params: DiarizeParams) -> Self {
        self.params = params;
        self
    }

    /// Speaker turns of 16 kHz mono `samples`, within the half-open sample spans `speech`
    /// (sorted, from VAD). `num_speakers` fixes the number of speakers; otherwise it is
    /// estimated (1 to 32), more readily merged the higher `threshold` (ElevenLabs'
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
        let gain_ref = speech.iter().flat_map(|&(a, b)| samples[a..b].iter().copied());
        let mel = self.encoder.features(samples, gain_ref);
        let frames = mel.len() / encoder::N_MELS;
        let windows = plan_windows(&speech, frames, self.params.hop_s);
        let starts: Vec<usize> = windows.iter().map(|w| w.start).collect();
        let emb = self.encoder.embed(&mel, &starts);
        let mut cluster_params = self.params.cluster;
        if let Some(t) = threshold {
            cluster_params.threshold = similarity_threshold(self.params.cluster.threshold, t);
        }
        let mut labels = cluster::cluster(&emb, num_speakers, &cluster_params);
        smooth(&mut labels, &windows, self.params.smooth);
        turns(&speech, &windows, &labels)
    }
}

/// ElevenLabs' default `diarization_threshold`, which maps to our tuned threshold.
const ELEVENLABS_DEFAULT_THRESHOLD: f32 = 0.22;

/// The counting threshold (mean cosine similarity below which clusters stay apart) for
/// ElevenLabs' `diarization_threshold`: a distance-like value, 0.1 to 0.4, where higher means
/// fewer speakers. Their default 0.22 gives our tuned `tuned` (0.62); each 0.01 above it lowers
/// the similarity threshold by 0.01, so 0.1 asks for 0.74 (splits voices readily: on our test
/// set 0.7 already finds too many speakers) and 0.4 for 0.44 (almost always one speaker). GE2E
/// similarities between windows of different speakers lie around 0.45–0.7 and within a
/// speaker around 0.7–0.8 (docs/DIARIZATION.md), so the ElevenLabs range spans all of it.
fn similarity_threshold(tuned: f32, diarization_threshold: f32) -> f32 {
    (tuned + ELEVENLABS_DEFAULT_THRESHOLD - diarization_threshold).clamp(0.0, 1.0)
}

/// Windows covering every speech region, `hop_s` apart; the last one of a region is aligned to
/// its end, and a region shorter than a window gets one window centred on it.
fn plan_windows(speech: &[(usize, usize)], frames: usize, hop_s: f64) -> Vec<Window> {
    let hop = ((hop_s * SAMPLE_RATE as f64 / HOP as f64).round() as usize).max(1);
    let mut out = Vec::new();
    for (region, &(a, b)) in speech.iter().enumerate() {
        let (fa, fb) = (a / HOP, b.div_ceil(HOP).min(frames));
        if fb - fa <= WINDOW_FRAMES {
            let centre = (fa + fb) / 2;
            let start = centre.saturating_sub(WINDOW_FRAMES / 2).min(frames.saturating_sub(WINDOW_FRAMES));
            out.push(Window { start, region });
            continue;
        }
        let mut start = fa;
        loop {
            if start + WINDOW_FRAMES >= fb {
                out.push(Window { start: fb - WINDOW_FRAMES, region });
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
fn turns(speech: &[(usize, usize)], windows: &[Window], labels: &[usize]) -> Vec<SpeakerTurn> {
    let sr = SAMPLE_RATE as f64;
    let centre = |w: &Window| ((w.start + WINDOW_FRAMES / 2) * HOP) as f64 / sr;
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
