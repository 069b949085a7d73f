//! Voice activity detection and the cut of a recording into Whisper windows.
//!
//! Scores come from `earshot` (a small pure-Rust network, weights embedded) on 16 ms frames,
//! or from Silero VAD ([`silero`], weights fetched) when the engine is given its model.
//! Frame scores become speech regions with Silero's hysteresis rules (enter above `threshold`,
//! leave after `min_silence` below `threshold - 0.15`), padded on both sides; regions are then
//! packed greedily into windows of at most 30 s, so each window is one `generate` call and
//! the silence between windows is never decoded (no "Thank you." on silence).

pub(crate) mod silero;

/// Samples per VAD frame (16 ms at 16 kHz), fixed by earshot.
pub(crate) const FRAME: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VadParams {
    pub(crate) threshold: f32,
    /// Silence (in samples) that ends a region.
    pub(crate) min_silence: usize,
    /// Regions shorter than this (in samples) are dropped.
    pub(crate) min_speech: usize,
    /// Samples added on each side of a region.
    pub(crate) pad: usize,
}

impl Default for VadParams {
    fn default() -> Self {
        VadParams { threshold: 0.5, min_silence: 16_000, min_speech: 4_000, pad: 6_400 }
    }
}

/// A half-open span of samples `[start, end)`.
pub(crate) type Span = (usize, usize);

/// Speech probability for every 16 ms frame of `samples`.
pub(crate) fn frame_scores(samples: &[f32]) -> Vec<f32> {
    let mut detector = earshot::Detector::default();
    let mut frame = [0.0f32; FRAME];
    samples
        .chunks(FRAME)
        .map(|chunk| {
            frame[..chunk.len()].copy_from_slice(chunk);
            frame[chunk.len()..].fill(0.0);
            detector.predict_f32(&frame)
        })
        .collect()
}

/// Speech probability for every 16 ms frame of `samples` from Silero (32 ms chunks, each
/// giving two frames), so that everything downstream works on one frame grid.
pub(crate) fn silero_frame_scores(model: &silero::Silero, samples: &[f32]) -> Vec<f32> {
    let frames = samples.len().div_ceil(FRAME);
    model.probabilities(samples).into_iter().flat_map(|p| [p; silero::CHUNK / FRAME]).take(frames).collect()
}

/// Speech regions (in samples) from frame scores.
pub(crate) fn speech_regions(scores: &[f32], total: usize, p: &VadParams) -> Vec<Span> {
    let neg = (p.threshold - 0.15).max(0.01);
    let mut regions: Vec<Span> = Vec::new();
    let mut start: Option<usize> = None;
    let mut silence_since: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        let at = i * FRAME;
        if s >= p.threshold {
            silence_since = None;
            start.get_or_insert(at);
        } else if let Some(st) = start {
            if s < neg {
                let since = *silence_since.get_or_insert(at);
                if at + FRAME - since >= p.min_silence {
                    regions.push((st, since));
                    start = None;
                    silence_since = None;
                }
            }
        }
    }
    if let Some(st) = start {
        regions.push((st, silence_since.unwrap_or(total)));
    }
    regions.retain(|(a, b)| b - a >= p.min_speech);
    // Pad, and merge regions the padding made touch.
    let mut padded: Vec<Span> = Vec::new();
    for (a, b) in regions {
        let (a, b) = (a.saturating_sub(p.pad), (b + p.pad).min(total));
        match padded.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => padded.push((a, b)),
        }
    }
    padded
}

/// Packs regions into windows of at most `max_len` samples. A region longer than a window is
/// cut where the speech score is lowest in the last third of the window (a pause, usually).
pub(crate) fn windows(regions: &[Span], scores: &[f32], max_len: usize) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for &(mut a, b) in regions {
        while b - a > max_len {
            let cut = quietest_point(scores, a + max_len * 2 / 3, a + max_len);
            out.push((a, cut));
            a = cut;
        }
        match out.last_mut() {
            Some(last) if b - last.0 <= max_len && a.saturating_sub(last.1) < max_len / 6 => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// Speech-score level under which a stretch inside a word counts as a pause.
const PAUSE_SCORE: f32 = 0.3;
/// Shortest pause (in frames, ~320 ms) worth cutting out of a word's span.
const PAUSE_FRAMES: usize = 20;

/// Shrinks a word's `[start, end)` (seconds) past a pause the VAD hears inside it. Word
/// alignment tends to stretch a word over the silence before or after it ("ask" after a
/// breath); the VAD knows better. The longest pause inside the word is cut off together with
/// the shorter side (the other word's fading tail); spans without such a pause stay as they are.
pub(crate) fn trim_to_speech(start: f64, end: f64, scores: &[f32]) -> (f64, f64) {
    let frame_s = FRAME as f64 / 16_000.0;
    let (f0, f1) = ((start / frame_s) as usize, ((end / frame_s).ceil() as usize).min(scores.len()));
    if f1 <= f0 + PAUSE_FRAMES {
        return (start, end);
    }
    let span = &scores[f0..f1];
    // Longest run of frames below the pause level: (first frame, length).
    let (mut best, mut run_start) = ((0, 0), None);
    for (i, &s) in span.iter().chain(std::iter::once(&1.0)).enumerate() {
        match (s < PAUSE_SCORE, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(r)) => {
                if i - r > best.1 {
                    best = (r, i - r);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    let (pause, len) = best;
    if len < PAUSE_FRAMES {
        return (start, end);
    }
    let (before, after) = (pause, span.len() - pause - len);
    if after >= before {
        ((f0 + pause + len) as f64 * frame_s, end)
    } else {
        (start, (f0 + pause) as f64 * frame_s)
    }
}

/// Speech-score level at which a frame next to a word is still that word's sound.
const WIDEN_SCORE: f32 = 0.5;
/// Farthest (in seconds) a word's edge moves out into the speech next to it.
const WIDEN_MAX_S: f64 = 0.5;

/// Widens a word's `[start, end)` (seconds) into the speech the VAD hears right next to it,
/// never past `floor` (where the item before ends) or `ceiling` (where the next begins), and
/// at most `WIDEN_MAX_S` each way. Whisper's word times come from cross-attention alignment and
/// fall inside the sound: the last word before a pause ends early, the first after it starts
/// late, and a filler or breath it did not write leaves a hole. Measured (docs/DIARIZATION.md):
/// the widened words cover reference speech they missed (miss 52 → 43 % on the `diar` clips)
/// and add no false alarm; on spoken digits laid end to end (`bench/wordtimes.sh`) starts stay
/// as they were and the median end error falls from 50 to 46 ms (ends now late, not early).
pub(crate) fn widen_to_speech(start: f64, end: f64, floor: f64, ceiling: f64, scores: &[f32]) -> (f64, f64) {
    let frame_s = FRAME as f64 / 16_000.0;
    let speech = |f: usize| scores.get(f).is_some_and(|&s| s >= WIDEN_SCORE);
    let reach = (WIDEN_MAX_S / frame_s) as usize;
    // Frames of speech touching the end (the frame holding `end` first), then the start.
    let last = (end / frame_s) as usize;
    let after = (last..last + reach).take_while(|&f| speech(f)).count();
    let first = (start / frame_s).ceil() as usize;
    let before = (first.saturating_sub(reach)..first).rev().take_while(|&f| speech(f)).count();
    let widened_end = if after > 0 { ((last + after) as f64 * frame_s).min(end + WIDEN_MAX_S) } else { end };
    let widened_start = ((first - before) as f64 * frame_s).max(start - WIDEN_MAX_S);
    (widened_start.max(floor).min(start), widened_end.min(ceiling).max(end))
}

fn quietest_point(scores: &[f32], from: usize, to: usize) -> usize {
    let (f0, f1) = (from / FRAME, (to / FRAME).min(scores.len()));
    (f0..f1)
        .min_by(|&x, &y| scores[x].total_cmp(&scores[y]))
        .map(|f| f * FRAME)
        .filter(|&s| s > from.saturating_sub(FRAME))
        .unwrap_or(to)
        .clamp(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern.iter().flat_map(|&(s, n)| std::iter::repeat_n(s, n)).collect()
    }

    #[test]
    fn short_pauses_do_not_split_and_long_ones_do() {
        let p = VadParams { threshold: 0.5, min_silence: 10 * FRAME, min_speech: 0, pad: 0 };
        let s = scores(&[(0.0, 10), (0.9, 20), (0.1, 5), (0.9, 20), (0.1, 30), (0.9, 10)]);
        let total = s.len() * FRAME;
        let r = speech_regions(&s, total, &p);
        assert_eq!(r, vec![(10 * FRAME, 55 * FRAME), (85 * FRAME, total)]);
    }

    #[test]
    fn a_word_stretched_over_a_pause_is_trimmed_to_its_speech() {
        // The previous word's fading tail, a pause, then this word.
        let s = scores(&[(0.5, 10), (0.2, 40), (0.9, 20), (0.1, 5)]);
        let frame_s = FRAME as f64 / 16_000.0;
        let (a, b) = trim_to_speech(0.0, 75.0 * frame_s, &s);
        assert!((a - 50.0 * frame_s).abs() < 1e-9 && b == 75.0 * frame_s, "{a} {b}");
        // A word followed by a long pause ends where its speech ends.
        let s = scores(&[(0.9, 20), (0.1, 40)]);
        let (a, b) = trim_to_speech(0.0, 60.0 * frame_s, &s);
        assert!(a == 0.0 && (b - 20.0 * frame_s).abs() < 1e-9, "{a} {b}");
        // Short dips inside a word are not pauses.
        let s = scores(&[(0.9, 20), (0.1, 10), (0.9, 20)]);
        assert_eq!(trim_to_speech(0.0, 50.0 * frame_s, &s), (0.0, 50.0 * frame_s));
    }

    #[test]
    fn a_word_widens_into_the_speech_next_to_it_only() {
        let frame_s = FRAME as f64 / 16_000.0;
        let at = |f: f64| f * frame_s;
        // Silence, speech on frames 10..40, silence: a word aligned to 15..30 takes 10..40.
        let s = scores(&[(0.1, 10), (0.9, 30), (0.1, 20)]);
        let (a, b) = widen_to_speech(at(15.0), at(30.0), 0.0, f64::INFINITY, &s);
        assert!((a - at(10.0)).abs() < 1e-9 && (b - at(40.0)).abs() < 1e-9, "{a} {b}");
        // Never past its neighbours.
        assert_eq!(widen_to_speech(at(15.0), at(30.0), at(13.0), at(35.0), &s), (at(13.0), at(35.0)));
        // Never more than WIDEN_MAX_S each way, however long the speech runs.
        let s = vec![0.9; 1000];
        let (a, b) = widen_to_speech(at(500.0), at(510.0), 0.0, f64::INFINITY, &s);
        assert!((at(500.0) - a - WIDEN_MAX_S).abs() < frame_s, "{a}");
        assert!((b - at(510.0) - WIDEN_MAX_S).abs() < frame_s, "{b}");
        // A word with silence on both sides keeps its times.
        let s = scores(&[(0.1, 10), (0.9, 10), (0.1, 10)]);
        assert_eq!(widen_to_speech(at(10.0), at(20.0), 0.0, f64::INFINITY, &s), (at(10.0), at(20.0)));
        // Nor does a word beyond the last scored frame move.
        assert_eq!(widen_to_speech(at(40.0), at(45.0), 0.0, f64::INFINITY, &s), (at(40.0), at(45.0)));
    }

    #[test]
    fn silence_gives_no_region() {
        let s = vec![0.01; 1000];
        assert!(speech_regions(&s, 1000 * FRAME, &VadParams::default()).is_empty());
    }

    #[test]
    fn windows_never_exceed_the_limit() {
        let s = vec![0.9; 10_000];
        let w = windows(&[(0, 10_000 * FRAME)], &s, 480_000);
        assert!(w.iter().all(|(a, b)| b - a <= 480_000 && b > a));
        assert_eq!(w.first().unwrap().0, 0);
        assert_eq!(w.last().unwrap().1, 10_000 * FRAME);
        for pair in w.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
    }

    #[test]
    fn nearby_regions_share_a_window() {
        let s = vec![0.0; 2000];
        let w = windows(&[(0, 16_000), (32_000, 48_000), (400_000, 460_000)], &s, 480_000);
        assert_eq!(w, vec![(0, 48_000), (400_000, 460_000)]);
    }
}
