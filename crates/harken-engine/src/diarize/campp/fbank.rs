//! The features CAM++ was trained on: Kaldi log mel filterbank, mean-normalised per window.
//!
//! 3D-Speaker computes them with `torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80)` on
//! audio in [-1, 1], then subtracts the mean over time; senko's extractor uses the same Kaldi
//! options (`diarizer.py`, kaldifeat branch). Those options, all Kaldi defaults but the bin
//! count and dither: 25 ms frames every 10 ms without padding (`snip_edges`), no dither, DC
//! offset removed per frame, pre-emphasis 0.97, Povey window, FFT size rounded up to 512,
//! power spectrum, 80 triangular bins on the Kaldi mel scale from 20 Hz to Nyquist, natural log
//! floored at `f32::EPSILON`, no energy column.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

pub(crate) const MEL_BINS: usize = 80;
const SAMPLE_RATE: f64 = 16_000.0;
/// 25 ms.
pub(crate) const FRAME_LEN: usize = 400;
/// 10 ms.
pub(crate) const FRAME_SHIFT: usize = 160;
const FFT_LEN: usize = 512;
const PREEMPHASIS: f32 = 0.97;
const LOW_FREQ: f64 = 20.0;

/// Frames of a window of `samples` samples; a window shorter than one frame is zero-padded to
/// one (as senko's extractor does), so every window yields at least one frame.
pub(crate) fn frame_count(samples: usize) -> usize {
    1 + samples.saturating_sub(FRAME_LEN) / FRAME_SHIFT
}

/// One triangular filter: its weights over FFT bins `first_bin ..`.
struct Triangle {
    first_bin: usize,
    weights: Vec<f32>,
}

/// The filterbank and FFT plan; immutable, so shared by the embedding threads.
pub(crate) struct Fbank {
    window: Vec<f32>,
    triangles: Vec<Triangle>,
    fft: Arc<dyn Fft<f32>>,
}

impl Fbank {
    pub(crate) fn new() -> Self {
        // Povey window: a Hann window (denominator N - 1) raised to 0.85.
        let window = (0..FRAME_LEN)
            .map(|n| {
                let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / (FRAME_LEN - 1) as f64).cos();
                hann.powf(0.85) as f32
            })
            .collect();
        Fbank { window, triangles: kaldi_mel_triangles(), fft: FftPlanner::new().plan_fft_forward(FFT_LEN) }
    }

    /// `frame_count(samples.len()) × 80` log mel energies, row-major, minus their mean over
    /// frames.
    pub(crate) fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let frames = frame_count(samples.len());
        let mut out = vec![0.0f32; frames * MEL_BINS];
        let mut frame = [0.0f32; FRAME_LEN];
        let mut buf = vec![Complex32::new(0.0, 0.0); FFT_LEN];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = [0.0f32; FFT_LEN / 2];
        for (t, row) in out.chunks_exact_mut(MEL_BINS).enumerate() {
            let start = t * FRAME_SHIFT;
            let avail = samples.len().saturating_sub(start).min(FRAME_LEN);
            frame[..avail].copy_from_slice(&samples[start..start + avail]);
            frame[avail..].fill(0.0);
            self.preprocess(&mut frame);
            for (c, &x) in buf.iter_mut().zip(&frame) {
                *c = Complex32::new(x, 0.0);
            }
            buf[FRAME_LEN..].fill(Complex32::new(0.0, 0.0));
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            // Kaldi's filters span bins 0..256; the Nyquist bin never gets weight.
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for (o, tri) in row.iter_mut().zip(&self.triangles) {
                let energy: f32 = tri.weights.iter().zip(&power[tri.first_bin..]).map(|(w, p)| w * p).sum();
                *o = energy.max(f32::EPSILON).ln();
            }
        }
        subtract_mean_over_frames(&mut out, frames);
        out
    }

    /// DC removal, pre-emphasis (the first sample against itself, as Kaldi does) and window.
    fn preprocess(&self, frame: &mut [f32; FRAME_LEN]) {
        let mean = frame.iter().map(|&x| x as f64).sum::<f64>() / FRAME_LEN as f64;
        for x in frame.iter_mut() {
            *x -= mean as f32;
        }
        for i in (1..FRAME_LEN).rev() {
            frame[i] -= PREEMPHASIS * frame[i - 1];
        }
        frame[0] -= PREEMPHASIS * frame[0];
        for (x, w) in frame.iter_mut().zip(&self.window) {
            *x *= w;
        }
    }
}

fn subtract_mean_over_frames(feats: &mut [f32], frames: usize) {
    let mut mean = [0.0f64; MEL_BINS];
    for row in feats.chunks_exact(MEL_BINS) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for row in feats.chunks_exact_mut(MEL_BINS) {
        for (v, m) in row.iter_mut().zip(&mean) {
            *v -= (m / frames as f64) as f32;
        }
    }
}

/// Kaldi's mel scale (`MelBanks::MelScale`).
fn mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Kaldi `MelBanks`: bins equally spaced in mel between 20 Hz and Nyquist, each a triangle in
/// the mel domain (not in Hz), unnormalised.
fn kaldi_mel_triangles() -> Vec<Triangle> {
    let (low, high) = (mel(LOW_FREQ), mel(SAMPLE_RATE / 2.0));
    let delta = (high - low) / (MEL_BINS + 1) as f64;
    let bin_hz = SAMPLE_RATE / FFT_LEN as f64;
    (0..MEL_BINS)
        .map(|b| {
            let edge = |k: usize| low + k as f64 * delta;
            let (left, center, right) = (edge(b), edge(b + 1), edge(b + 2));
            let weight = |k: usize| {
                let m = mel(bin_hz * k as f64);
                if m <= left || m >= right {
                    0.0
                } else if m <= center {
                    (m - left) / (center - left)
                } else {
                    (right - m) / (right - center)
                }
            };
            let bins: Vec<usize> = (0..FFT_LEN / 2).filter(|&k| weight(k) > 0.0).collect();
            let first_bin = bins.first().copied().unwrap_or(0);
            let last_bin = bins.last().copied().unwrap_or(0);
            Triangle { first_bin, weights: (first_bin..=last_bin).map(|k| weight(k) as f32).collect() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_snip_edges() {
        assert_eq!(frame_count(24_000), 148);
        assert_eq!(frame_count(400), 1);
        assert_eq!(frame_count(10), 1);
        assert_eq!(frame_count(559), 1);
        assert_eq!(frame_count(560), 2);
    }

    #[test]
    fn every_triangle_has_weight_and_peaks_below_one() {
        for tri in kaldi_mel_triangles() {
            assert!(!tri.weights.is_empty());
            assert!(tri.weights.iter().all(|&w| w > 0.0 && w <= 1.0));
        }
    }

    #[test]
    fn features_are_mean_normalised() {
        let samples: Vec<f32> =
            (0..8000).map(|i| ((i as f32) * 0.05).sin() * 0.1 + ((i * 7919) % 13) as f32 * 1e-3).collect();
        let f = Fbank::new().compute(&samples);
        assert_eq!(f.len(), frame_count(8000) * MEL_BINS);
        for b in 0..MEL_BINS {
            let mean: f32 = f.iter().skip(b).step_by(MEL_BINS).sum::<f32>() / frame_count(8000) as f32;
            assert!(mean.abs() < 1e-4, "bin {b}: mean {mean}");
        }
    }
}
