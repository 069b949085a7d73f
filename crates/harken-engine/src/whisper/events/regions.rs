//! Where to listen for events: stretches of the recording that no transcribed word covers and
//! that are loud enough to hold a sound (pure signal code, no model).
//!
//! A gap between words is a candidate when it lasts at least `min_gap` and, after trimming its
//! quiet edges, keeps at least `min_audible` of frames that rise `rise_db` above the recording's
//! background (its 10th-percentile frame level, or the absolute floor when nothing was said); its prominence (90th
//! percentile level over the background) must reach `min_prominence_db`, so steady hiss or hum
//! between sentences is not listened to. Long gaps are cut into pieces of at most one window. Plain speech has few such gaps (pauses are
//! quiet), so the tagging pass costs little there; music and noises the VAD called speech but
//! Whisper left wordless are gaps too.

use crate::api::SAMPLE_RATE;
use crate::vad::Span;

/// Level analysis frame: 20 ms.
const FRAME: usize = SAMPLE_RATE as usize / 50;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GapParams {
    /// Seconds added around each word before gaps are taken.
    pub(crate) word_pad: f64,
    /// Shortest gap worth listening to, in seconds.
    pub(crate) min_gap: f64,
    /// Frames quieter than this (dBFS, RMS) are silence whatever the background.
    pub(crate) floor_db: f32,
    /// A frame is audible when it is this much louder than the background (dB).
    pub(crate) rise_db: f32,
    /// A candidate's 90th-percentile level must exceed the background by this much (dB).
    pub(crate) min_prominence_db: f32,
    /// Seconds of audible frames a candidate needs.
    pub(crate) min_audible: f64,
    /// Longest candidate, in samples (one Whisper window).
    pub(crate) max_len: usize,
}

impl Default for GapParams {
    fn default() -> Self {
        GapParams {
            word_pad: 0.2,
            min_gap: 0.6,
            floor_db: -60.0,
            rise_db: 10.0,
            min_prominence_db: 12.0,
            min_audible: 0.2,
            max_len: 30 * SAMPLE_RATE as usize,
        }
    }
}

/// A stretch worth listening to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) span: Span,
    /// 90th-percentile frame level over the recording's background, in dB.
    pub(crate) prominence_db: f32,
}

/// Candidate stretches between the word spans `words` (seconds, any order).
pub(crate) fn candidates(samples: &[f32], words: &[(f64, f64)], p: &GapParams) -> Vec<Candidate> {
    let total = samples.len();
    let to_sample = |t: f64| ((t.max(0.0) * SAMPLE_RATE as f64) as usize).min(total);
    let mut covered: Vec<Span> = words
        .iter()
        .map(|&(a, b)| (to_sample(a - p.word_pad), to_sample(b + p.word_pad)))
        .collect();
    covered.sort_unstable();
    let mut gaps: Vec<Span> = Vec::new();
    let mut at = 0;
    for (a, b) in covered {
        if a > at {
            gaps.push((at, a));
        }
        at = at.max(b);
    }
    if at < total {
        gaps.push((at, total));
    }
    let min_gap = (p.min_gap * SAMPLE_RATE as f64) as usize;
    let min_audible = (p.min_audible * SAMPLE_RATE as f64 / FRAME as f64).ceil() as usize;
    let levels: Vec<f32> = samples.chunks(FRAME).map(level_db).collect();
    // Without words there is no speech to protect and often no quiet tenth to measure (a music
    // file): only the absolute floor applies.
    let background = if words.is_empty() {
        p.floor_db
    } else {
        percentile(&levels, 0.1).max(p.floor_db)
    };
    let audible = p.floor_db.max(background + p.rise_db);
    let mut out = Vec::new();
    for (a, b) in gaps.into_iter().filter(|(a, b)| b - a >= min_gap) {
        let loud: Vec<bool> = samples[a..b].chunks(FRAME).map(|f| level_db(f) > audible).collect();
        let (Some(first), Some(last)) = (loud.iter().position(|&l| l), loud.iter().rposition(|&l| l)) else {
            continue;
        };
        if loud.iter().filter(|&&l| l).count() < min_audible.max(1) {
            continue;
        }
        let (start, end) = (a + first * FRAME, (a + (last + 1) * FRAME).min(b));
        let mut s = start;
        while s < end {
            let mut e = (s + p.max_len).min(end);
            // A short tail is not worth a window of its own: leave it out.
            if end - e < min_gap {
                e = end.min(s + p.max_len);
            }
            let prominence_db = percentile(&levels[s / FRAME..e.div_ceil(FRAME).min(levels.len())], 0.9) - background;
            if prominence_db >= p.min_prominence_db {
                out.push(Candidate {
                    span: (s, e),
                    prominence_db,
                });
            }
            if end - e < min_gap {
                break;
            }
            s = e;
        }
    }
    out
}

/// The `q` quantile of `values` (nearest rank); the floor level for an empty slice.
pub(crate) fn percentile(values: &[f32], q: f64) -> f32 {
    if values.is_empty() {
        return -120.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// RMS level of a frame in dB relative to full scale.
pub(crate) fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let power = frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32;
    10.0 * power.max(1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, amplitude: f32) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f64) as usize)
            .map(|i| amplitude * (i as f32 * 0.05).sin())
            .collect()
    }

    #[test]
    fn loud_gaps_between_words_are_candidates_and_quiet_ones_are_not() {
        // 0-1 s word, 1-3 s loud, 3-4 s word, 4-6 s near silence.
        let mut s = tone(1.0, 0.3);
        s.extend(tone(2.0, 0.3));
        s.extend(tone(1.0, 0.3));
        s.extend(tone(2.0, 0.001));
        let c = candidates(&s, &[(0.0, 1.0), (3.0, 4.0)], &GapParams::default());
        assert_eq!(c.len(), 1, "{c:?}");
        let (a, b) = c[0].span;
        assert!(
            (a as f64 / 16_000.0 - 1.2).abs() < 0.03 && (b as f64 / 16_000.0 - 2.8).abs() < 0.03,
            "{c:?}"
        );
    }

    #[test]
    fn steady_background_noise_is_not_a_candidate() {
        // Speech-level words over constant hiss: the hiss between them never stands out.
        let mut s: Vec<f32> = (0..6 * 16_000)
            .map(|i| 0.01 * ((i * 7919 % 1000) as f32 / 500.0 - 1.0))
            .collect();
        for x in &mut s[16_000..32_000] {
            *x += 0.3;
        }
        assert!(candidates(&s, &[(1.0, 2.0)], &GapParams::default()).is_empty());
    }

    #[test]
    fn no_words_means_the_whole_sound_is_listened_to_in_window_sized_pieces() {
        let s = tone(70.0, 0.2);
        let c = candidates(&s, &[], &GapParams::default());
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|c| c.span.1 - c.span.0 <= 30 * 16_000));
        assert_eq!(c.last().unwrap().span.1, s.len());
    }

    #[test]
    fn silence_gives_nothing() {
        assert!(candidates(&vec![0.0; 160_000], &[], &GapParams::default()).is_empty());
        assert!(candidates(&[], &[], &GapParams::default()).is_empty());
    }
}
