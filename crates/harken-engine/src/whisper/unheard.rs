//! Speech the decoder passed over: stretches the VAD hears as speech that no word covers.
//!
//! Whisper decoding a 30 s window without timestamps sometimes leaves a sentence out, most
//! often after a change of speaker or where a word was cut (docs/DIARIZATION.md: on spliced
//! conversations whole turns of 2–7 s had no words). Such a stretch decoded again on its own,
//! as a short window, usually comes back with its words. Only stretches with enough speech in
//! them are tried, so silence and the pauses between words are never decoded twice.

use crate::api::SAMPLE_RATE;
use crate::vad::{Span, FRAME};

/// Frames scoring at least this are speech (the VAD's own threshold).
const SPEECH_SCORE: f32 = 0.5;
/// Least speech (in frames, ≈ 1 s) inside an uncovered stretch worth decoding again.
const MIN_UNHEARD_FRAMES: usize = 62;
/// Context (in samples, 0.2 s) kept on each side of the speech, within the stretch.
const MARGIN: usize = 3_200;

/// The stretches of `regions` (in samples) that no word of `words` (seconds) covers and that
/// hold at least `MIN_UNHEARD_FRAMES` frames of speech, trimmed to their speech plus a small
/// margin that never reaches into a word.
pub(super) fn unheard_spans(scores: &[f32], regions: &[Span], words: &[(f64, f64)]) -> Vec<Span> {
    let to_sample = |t: f64| (t.max(0.0) * SAMPLE_RATE as f64).round() as usize;
    let mut covered: Vec<Span> = words.iter().map(|&(a, b)| (to_sample(a), to_sample(b))).filter(|(a, b)| b > a).collect();
    covered.sort_unstable();
    let mut out = Vec::new();
    for &(region_start, region_end) in regions {
        // The gaps between the words inside this region.
        let mut at = region_start;
        let mut gaps = Vec::new();
        for &(a, b) in covered.iter().filter(|(a, b)| *b > region_start && *a < region_end) {
            if a > at {
                gaps.push((at, a.min(region_end)));
            }
            at = at.max(b);
        }
        if at < region_end {
            gaps.push((at, region_end));
        }
        for (gap_start, gap_end) in gaps {
            let (f0, f1) = (gap_start.div_ceil(FRAME), (gap_end / FRAME).min(scores.len()));
            let speech: Vec<usize> = (f0..f1).filter(|&f| scores[f] >= SPEECH_SCORE).collect();
            if speech.len() < MIN_UNHEARD_FRAMES {
                continue;
            }
            let (first, last) = (speech[0] * FRAME, (speech[speech.len() - 1] + 1) * FRAME);
            out.push((first.saturating_sub(MARGIN).max(gap_start), (last + MARGIN).min(gap_end)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of `frames` frames, speech on the given frame ranges.
    fn scores(frames: usize, speech: &[(usize, usize)]) -> Vec<f32> {
        let mut s = vec![0.05; frames];
        for &(a, b) in speech {
            s[a..b].fill(0.9);
        }
        s
    }

    fn seconds(frame: usize) -> f64 {
        (frame * FRAME) as f64 / SAMPLE_RATE as f64
    }

    #[test]
    fn speech_without_words_is_found_and_trimmed_to_its_speech() {
        // Words over frames 0..100; speech on 0..100 and 200..300 (1.6 s) with no word there.
        let s = scores(400, &[(0, 100), (200, 300)]);
        let spans = unheard_spans(&s, &[(0, 400 * FRAME)], &[(0.0, seconds(100))]);
        assert_eq!(spans, vec![(200 * FRAME - MARGIN, 300 * FRAME + MARGIN)]);
    }

    #[test]
    fn pauses_between_words_and_short_sounds_are_left_alone() {
        // Speech everywhere the words are; a 0.5 s sound between two words.
        let s = scores(400, &[(0, 100), (150, 181), (300, 400)]);
        let words = [(0.0, seconds(100)), (seconds(300), seconds(400))];
        assert!(unheard_spans(&s, &[(0, 400 * FRAME)], &words).is_empty());
    }

    #[test]
    fn the_margin_never_reaches_into_a_word() {
        // Speech right up to the next word's start.
        let s = scores(400, &[(100, 300)]);
        let spans = unheard_spans(&s, &[(0, 400 * FRAME)], &[(seconds(300), seconds(400))]);
        assert_eq!(spans, vec![(100 * FRAME - MARGIN, 300 * FRAME)]);
    }

    #[test]
    fn only_speech_inside_a_region_counts() {
        let s = scores(400, &[(100, 300)]);
        assert!(unheard_spans(&s, &[(0, 150 * FRAME)], &[]).is_empty());
        assert_eq!(unheard_spans(&s, &[(0, 400 * FRAME)], &[]), vec![(100 * FRAME - MARGIN, 300 * FRAME + MARGIN)]);
    }
}
