//! Speech regions for diarization, cut tighter than the regions Whisper decodes.
//!
//! The engine pads VAD regions (0.4 s a side) and bridges pauses up to 1 s so that Whisper
//! never loses the edge of a word. For speaker embeddings that padding is silence or noise in
//! the windows, and bridged pauses put two speakers' turns into one region. Cutting at pauses
//! of 0.3 s without padding lowers DER on the `diar` set from 62.5 % to 49.2 % (confusion
//! 12.5 % → 5.8 %; docs/DIARIZATION.md). Words that fall outside these regions still get a
//! speaker: `assign_speakers` gives them the nearest turn.

use crate::vad::{self, Span, VadParams};

/// Regions from the same VAD frame scores the engine computed (`vad::frame_scores`), for
/// `Diarizer::diarize`: no padding, split at 0.3 s of silence, at least 0.1 s long.
pub(crate) fn diarization_regions(scores: &[f32], total: usize) -> Vec<Span> {
    vad::speech_regions(scores, total, &params())
}

fn params() -> VadParams {
    VadParams { pad: 0, min_silence: 4_800, min_speech: 1_600, ..VadParams::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_split_regions_and_nothing_is_padded() {
        // 16 ms frames: 1 s of speech, 0.5 s pause, 1 s of speech, then silence.
        let frames = |s: f64| (s * 16_000.0 / vad::FRAME as f64).round() as usize;
        let mut scores = vec![0.9f32; frames(1.0)];
        scores.extend(vec![0.0; frames(0.5)]);
        scores.extend(vec![0.9; frames(1.0)]);
        scores.extend(vec![0.0; frames(2.0)]);
        let total = scores.len() * vad::FRAME;
        let r = diarization_regions(&scores, total);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].0, 0);
        // Each region ends within a frame or two of the speech, not 0.4 s later.
        assert!(r[0].1 <= 16_000 + 2 * vad::FRAME, "{r:?}");
        assert!(r[1].0 >= 24_000 - vad::FRAME, "{r:?}");
        // The engine's own regions bridge that pause.
        assert_eq!(vad::speech_regions(&scores, total, &VadParams::default()).len(), 1);
    }
}
