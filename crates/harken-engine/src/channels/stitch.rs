//! The channels of a call cut down to their speech and laid end to end, so that one pass of the
//! decoder transcribes them all. Whisper encodes whole 30 s windows, and a channel that speaks
//! half the time (the other half is the other person's turn) still spreads its speech over as
//! many windows as the whole call: transcribing every channel whole costs about as many times the
//! call as there are channels, and each pass pays its own language detection, VAD and half-empty
//! last window. Cut down to its own speech (with a short pause left where a silence was), each
//! channel fills only the windows its speech needs, and together they fill about as many as the
//! call mixed to mono.
//!
//! Conservative on purpose: only stretches of at least [`MIN_CUT_S`] that stay within
//! [`QUIET_DB`] of the channel's noise floor and [`LOUD_GAP_DB`] under its speech are cut, and
//! [`KEEP_S`] of each is kept, so quiet speech and ordinary pauses stay in.

use harken_types::{Transcript, Word, WordKind};

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
/// Digital silence (s) between one channel's speech and the next's: with the pauses kept at
/// either side, the VAD ends a region there, so no word runs from one voice into the other.
const SEAM_S: f64 = 1.0;

/// Part of a channel, copied to `at` in the stitched signal.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    at: usize,
    channel: usize,
    original: usize,
    len: usize,
}

impl Piece {
    fn end(&self) -> usize {
        self.at + self.len
    }

    /// The original time (s) of stitched sample `at`, clamped to this piece.
    fn original_time(&self, at: usize) -> f64 {
        (self.original + at.clamp(self.at, self.end()) - self.at) as f64 / SAMPLE_RATE as f64
    }
}

/// The channels' speech in one signal, and the map back to each channel's time.
pub(super) struct Stitched {
    pub(super) samples: Vec<f32>,
    /// In stitched order: channel 0's pieces, then channel 1's, ...
    pieces: Vec<Piece>,
    channels: usize,
}

/// Each channel without its long silences, one after another, [`SEAM_S`] apart.
pub(super) fn stitch(channels: &[Vec<f32>]) -> Stitched {
    let seam = vec![0.0; (SEAM_S * SAMPLE_RATE as f64) as usize];
    let mut out = Stitched { samples: Vec::new(), pieces: Vec::new(), channels: channels.len() };
    for (channel, samples) in channels.iter().enumerate() {
        if channel > 0 {
            out.samples.extend_from_slice(&seam);
        }
        for (a, b) in kept(samples) {
            out.pieces.push(Piece { at: out.samples.len(), channel, original: a, len: b - a });
            out.samples.extend_from_slice(&samples[a..b]);
        }
    }
    out
}

impl Stitched {
    /// The piece holding stitched time `t` (seconds), else the nearest one (in a seam).
    fn piece_at(&self, t: f64) -> Option<&Piece> {
        let at = to_sample(t);
        let i = self.pieces.partition_point(|p| p.at <= at);
        let before = i.checked_sub(1).and_then(|i| self.pieces.get(i));
        match (before, self.pieces.get(i)) {
            (Some(b), Some(n)) if at >= b.end() && n.at - at < at - b.end() => Some(n),
            (Some(b), _) => Some(b),
            (None, n) => n,
        }
    }

    /// The original time of stitched time `t`, an edge of an item whose midpoint is in `home`:
    /// in the piece holding it when that is `home`'s channel too (an item across a cut), else
    /// (an edge the aligner stretched over a seam) clamped to `home`.
    fn time_of(&self, home: &Piece, t: f64) -> f64 {
        let at = to_sample(t);
        let holding = self.pieces.iter().find(|p| p.channel == home.channel && (p.at..p.end()).contains(&at));
        holding.unwrap_or(home).original_time(at)
    }

    /// The stitched transcript's items split back into one transcript per channel, in each
    /// channel's own time: an item belongs to the channel at its midpoint; a spacing item goes
    /// with the word after it.
    pub(super) fn split(&self, t: Transcript) -> Vec<Transcript> {
        let mut out: Vec<Transcript> = (0..self.channels)
            .map(|_| Transcript {
                language_code: t.language_code.clone(),
                language_probability: t.language_probability,
                text: String::new(),
                words: Vec::new(),
            })
            .collect();
        let mut spacing: Option<Word> = None;
        for w in t.words {
            if w.kind == WordKind::Spacing {
                spacing = Some(w);
                continue;
            }
            let Some(home) = self.piece_at((w.start + w.end) / 2.0) else { continue };
            let start = self.time_of(home, w.start);
            let end = self.time_of(home, w.end).max(start);
            let words = &mut out[home.channel].words;
            if let (Some(s), Some(previous)) = (spacing.take(), words.last()) {
                let previous_end = previous.end.min(start);
                words.push(Word { start: previous_end, end: start, ..s });
            }
            words.push(Word { start, end, ..w });
        }
        out
    }
}

fn to_sample(t: f64) -> usize {
    (t.max(0.0) * SAMPLE_RATE as f64).round() as usize
}

/// The sample ranges of `samples` left once its long silences are cut (see the module's doc).
fn kept(samples: &[f32]) -> Vec<(usize, usize)> {
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
    let mut ranges = Vec::new();
    let mut at = 0;
    for (a, b) in cuts
        .into_iter()
        .map(|(a, b)| (a * FRAME, (b * FRAME).min(samples.len())))
        .chain([(samples.len(), samples.len())])
    {
        if a > at {
            ranges.push((at, a));
        }
        at = b.max(at);
    }
    ranges
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

    fn seconds(samples: &[f32]) -> f64 {
        samples.len() as f64 / SAMPLE_RATE as f64
    }

    /// The original time of stitched time `t`.
    fn original(s: &Stitched, t: f64) -> f64 {
        s.time_of(s.piece_at(t).unwrap(), t)
    }

    #[test]
    fn long_silences_shrink_to_a_pause_and_times_map_back() {
        // Speech 0–2 s, silence 2–8 s, speech 8–9 s, silence 9–10 s (too short to cut).
        let s = stitch(&[signal(10.0, |t| t < 2.0 || (8.0..9.0).contains(&t))]);
        // 6 s of silence becomes 1 s: 10 s → 5 s.
        assert!((seconds(&s.samples) - 5.0).abs() < 0.05, "{}", seconds(&s.samples));
        assert!((original(&s, 1.0) - 1.0).abs() < 1e-3);
        // Stitched 3.0 s is 0.5 s after the cut's end, at 7.5 s: original 8.0 s.
        assert!((original(&s, 3.0) - 8.0).abs() < 0.03, "{}", original(&s, 3.0));
        assert!((original(&s, 4.5) - 9.5).abs() < 0.03);
    }

    #[test]
    fn speech_without_long_silences_is_left_alone() {
        let x = signal(6.0, |t| (t % 1.5) < 1.0);
        let s = stitch(std::slice::from_ref(&x));
        assert_eq!(s.samples, x);
        assert!((original(&s, 4.2) - 4.2).abs() < 1e-9);
    }

    fn item(text: &str, kind: WordKind, start: f64, end: f64) -> Word {
        Word { text: text.into(), start, end, kind, speaker_id: None, logprob: -0.1 }
    }

    #[test]
    fn a_call_is_laid_end_to_end_and_split_back_per_channel() {
        // Left speaks at 0–2 s, right at 6–8 s, each silent for the rest of 10 s.
        let s = stitch(&[signal(10.0, |t| t < 2.0), signal(10.0, |t| (6.0..8.0).contains(&t))]);
        // Left keeps 0–2.5 and 9.5–10 s (3 s), then the 1 s seam, then right keeps 0–0.5,
        // 5.5–8.5 and 9.5–10 s (4 s): right's speech at 6 s is at stitched 5 s.
        assert!((seconds(&s.samples) - 8.0).abs() < 0.05, "{}", seconds(&s.samples));
        let t = Transcript {
            language_code: "eng".into(),
            language_probability: 0.9,
            text: "Hello there. Hi.".into(),
            words: vec![
                item("Hello", WordKind::Word, 0.1, 0.6),
                item(" ", WordKind::Spacing, 0.6, 0.7),
                item("there.", WordKind::Word, 0.7, 1.2),
                item(" ", WordKind::Spacing, 1.2, 3.6),
                // Stretched by the aligner back over the seam; its middle is right's speech.
                item("Hi.", WordKind::Word, 3.6, 5.6),
            ],
        };
        let parts = s.split(t);
        let texts = |i: usize| parts[i].words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>();
        assert_eq!(texts(0), ["Hello", " ", "there."]);
        assert_eq!(texts(1), ["Hi."]);
        let there = &parts[0].words[2];
        assert!((there.start - 0.7).abs() < 1e-3 && (there.end - 1.2).abs() < 1e-3, "{there:?}");
        // The seam side is clamped to the piece of its middle (original 5.5 s).
        let hi = &parts[1].words[0];
        assert!((hi.start - 5.5).abs() < 0.03 && (hi.end - 6.6).abs() < 0.03, "{hi:?}");
        assert!(parts.iter().all(|p| p.language_code == "eng"));
    }
}
