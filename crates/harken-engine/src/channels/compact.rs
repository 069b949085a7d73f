//! One channel of a call with its long silences cut out. Whisper encodes whole 30 s windows, and
//! a channel that speaks half the time (the other half is the other person's turn) still spreads
//! its speech over as many windows as the whole call: transcribing every channel then costs
//! about as many times the call as there are channels. Cut down to its own speech (with a short
//! pause left where a silence was), a channel fills only the windows its speech needs.
//!
//! Conservative on purpose: only stretches of at least [`MIN_CUT_S`] that stay within
//! [`QUIET_DB`] of the channel's noise floor and [`LOUD_GAP_DB`] under its speech are cut, and
//! [`KEEP_S`] of each is kept, so quiet speech and ordinary pauses stay in.

use super::{frame_levels, FRAME};
use crate::api::SAMPLE_RATE;

/// Frames at most this far above the noise floor (dB) are silence.
const QUIET_DB: f32 = 10.0;
/// ... and at least this far below the loud frames (the 95th percentile: speech).
const LOUD_GAP_DB: f32 = 30.0;
/// Shortest silence (s) worth cutting.
const MIN_CUT_S: f64 = 2.0;
/// Silence (s) kept on each side of a cut, so the decoder still hears a pause there.
const KEEP_S: f64 = 0.5;

/// A signal with some stretches removed, and the map back to the original's time.
pub(super) struct Compacted {
    pub(super) samples: Vec<f32>,
    /// (start in `samples`, start in the original, length), in order.
    pieces: Vec<(usize, usize, usize)>,
}

impl Compacted {
    /// The original time of time `t` (seconds) of the compacted signal.
    pub(super) fn original_time(&self, t: f64) -> f64 {
        let at = (t.max(0.0) * SAMPLE_RATE as f64).round() as usize;
        let i = self.pieces.partition_point(|&(start, _, _)| start <= at).saturating_sub(1);
        let Some(&(start, original, len)) = self.pieces.get(i) else { return t };
        (original + (at - start).min(len)) as f64 / SAMPLE_RATE as f64
    }
}

/// `samples` without its long silences (see the module's doc).
pub(super) fn without_long_silences(samples: &[f32]) -> Compacted {
    let levels = frame_levels(samples);
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let percentile = |q: usize| sorted.get(sorted.len() * q / 100).copied().unwrap_or(0.0);
    // Silence: near the floor (the quietest tenth), and far below the loud frames (speech), so
    // a channel that is all speech keeps its quieter syllables.
    let quiet = (percentile(10) + QUIET_DB).min(percentile(95) - LOUD_GAP_DB);
    let frames_per_second = SAMPLE_RATE as f64 / FRAME as f64;
    let (min_cut, keep) = ((MIN_CUT_S * frames_per_second) as usize, (KEEP_S * frames_per_second) as usize);
    // Quiet runs of frames, long enough to cut: the frames strictly inside, past `keep` on each side.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut run_start = None;
    for (f, &level) in levels.iter().chain(std::iter::once(&f32::INFINITY)).enumerate() {
        match (level <= quiet, run_start) {
            (true, None) => run_start = Some(f),
            (false, Some(s)) => {
                if f - s >= min_cut {
                    cuts.push((s + keep, f - keep));
                }
                run_start = None;
            }
            _ => {}
        }
    }
    let mut out = Compacted { samples: Vec::with_capacity(samples.len()), pieces: Vec::new() };
    let mut at = 0;
    for (a, b) in cuts
        .into_iter()
        .map(|(a, b)| (a * FRAME, (b * FRAME).min(samples.len())))
        .chain([(samples.len(), samples.len())])
    {
        if a > at {
            out.pieces.push((out.samples.len(), at, a - at));
            out.samples.extend_from_slice(&samples[at..a]);
        }
        at = b.max(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Faint noise with a 440 Hz tone at 0.3 where `on` holds.
    fn signal(seconds: f64, on: impl Fn(f64) -> bool) -> Vec<f32> {
        let mut noise = 0x9e37_79b9_u32;
        (0..(seconds * SAMPLE_RATE as f64) as usize)
            .map(|i| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                let t = i as f64 / SAMPLE_RATE as f64;
                let tone = if on(t) { 0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() as f32 } else { 0.0 };
                tone + 1e-3 * (noise as f32 / u32::MAX as f32 - 0.5)
            })
            .collect()
    }

    #[test]
    fn long_silences_shrink_to_a_pause_and_times_map_back() {
        // Speech 0–2 s, silence 2–8 s, speech 8–9 s, silence 9–10 s (too short to cut).
        let x = signal(10.0, |t| t < 2.0 || (8.0..9.0).contains(&t));
        let c = without_long_silences(&x);
        // 6 s of silence becomes 1 s: 10 s → 5 s.
        assert!((c.samples.len() as f64 / 16_000.0 - 5.0).abs() < 0.05, "{}", c.samples.len());
        assert!((c.original_time(1.0) - 1.0).abs() < 1e-3);
        // Compacted 3.0 s is 0.5 s after the cut's end, at 7.5 s: original 8.0 s.
        assert!((c.original_time(3.0) - 8.0).abs() < 0.03, "{}", c.original_time(3.0));
        assert!((c.original_time(4.5) - 9.5).abs() < 0.03);
    }

    #[test]
    fn speech_without_long_silences_is_left_alone() {
        let x = signal(6.0, |t| (t % 1.5) < 1.0);
        let c = without_long_silences(&x);
        assert_eq!(c.samples, x);
        assert!((c.original_time(4.2) - 4.2).abs() < 1e-9);
    }
}
