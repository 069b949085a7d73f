//! Whisper's log-mel spectrogram, computed exactly as OpenAI's `whisper.audio` does it:
//! periodic Hann window of 400 samples, hop 160, centred STFT with reflect padding (the last
//! frame dropped), power spectrum, Slaney-normalised mel filters (librosa's default), `log10`,
//! clamped to 8 below the maximum, then scaled by `(x + 4) / 4`.
//!
//! Any deviation here shifts every model input and costs accuracy silently, so the filterbank
//! and the framing are unit-tested against values computed with librosa/numpy.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

pub(crate) const N_FFT: usize = 400;
pub(crate) const HOP: usize = 160;
/// Mel frames in one 30 s Whisper window.
pub(crate) const FRAMES_PER_WINDOW: usize = 3000;
/// Samples in one 30 s Whisper window.
pub(crate) const SAMPLES_PER_WINDOW: usize = FRAMES_PER_WINDOW * HOP;

/// Computes log-mel features; build once per model (the filterbank depends on `n_mels`).
pub(crate) struct MelExtractor {
    n_mels: usize,
    /// `n_mels` rows of `N_FFT / 2 + 1` weights.
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

/// A periodic Hann window of `n` samples (NumPy's and PyTorch's `hann_window(n)`), computed in
/// f64: the window of every short-time spectrum in the crate.
pub(crate) fn periodic_hann(n: usize) -> Vec<f32> {
    (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect()
}

impl MelExtractor {
    pub(crate) fn new(n_mels: usize) -> Self {
        let window = periodic_hann(N_FFT);
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        MelExtractor { n_mels, filters: slaney_filters(16_000.0, N_FFT, n_mels), window, fft }
    }

    pub(crate) fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Features of one 30 s window: `samples` (at most 30 s; shorter input is zero-padded)
    /// become `n_mels × 3000` values, row-major (one row per mel band).
    pub(crate) fn window_features(&self, samples: &[f32]) -> Vec<f32> {
        debug_assert!(samples.len() <= SAMPLES_PER_WINDOW);
        let mut padded = vec![0.0f32; SAMPLES_PER_WINDOW];
        padded[..samples.len()].copy_from_slice(samples);
        self.log_mel(&padded, FRAMES_PER_WINDOW)
    }

    /// Log-mel of `audio`, `frames` columns (`audio.len() / HOP` for the full signal).
    fn log_mel(&self, audio: &[f32], frames: usize) -> Vec<f32> {
        let bins = N_FFT / 2 + 1;
        let padded = reflect_pad(audio, N_FFT / 2);
        let mut power = vec![0.0f32; bins];
        let mut buf = vec![Complex32::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut out = vec![0.0f32; self.n_mels * frames];
        for t in 0..frames {
            let start = t * HOP;
            for (i, c) in buf.iter_mut().enumerate() {
                *c = Complex32::new(padded[start + i] * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf[..bins]) {
                *p = c.norm_sqr();
            }
            for m in 0..self.n_mels {
                let row = &self.filters[m * bins..(m + 1) * bins];
                let e: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                out[m * frames + t] = e.max(1e-10).log10();
            }
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut out {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        out
    }
}

/// `numpy.pad(x, pad, mode="reflect")`.
fn reflect_pad(x: &[f32], pad: usize) -> Vec<f32> {
    let n = x.len();
    assert!(n > pad, "reflect padding needs more than {pad} samples, got {n}");
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| x[i]));
    out.extend_from_slice(x);
    out.extend((0..pad).map(|i| x[n - 2 - i]));
    out
}

fn hz_to_mel(f: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= MIN_LOG_HZ {
        min_log_mel + (f / MIN_LOG_HZ).ln() / logstep
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel {
        MIN_LOG_HZ * (logstep * (m - min_log_mel)).exp()
    } else {
        F_SP * m
    }
}

/// `librosa.filters.mel(sr, n_fft, n_mels)` with its defaults (Slaney scale and norm).
fn slaney_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * sr / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0.0f32; n_mels * bins];
    for m in 0..n_mels {
        let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (f2 - f0);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - f0) / (f1 - f0);
            let upper = (f2 - f) / (f2 - f1);
            weights[m * bins + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filterbank_matches_librosa() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): row 0 peaks at bin 1
        // (0.02486259), row 10 at bin 6/7, rows sum to Slaney's area normalisation.
        let f = slaney_filters(16_000.0, 400, 80);
        assert!((f[1] - 0.024_862_59).abs() < 1e-6, "row 0 bin 1 = {}", f[1]);
        assert_eq!(f[0], 0.0);
        let row79: f32 = f[79 * 201..80 * 201].iter().sum();
        assert!(row79 > 0.0);
    }

    #[test]
    fn reflect_pad_mirrors_without_edge() {
        assert_eq!(reflect_pad(&[1.0, 2.0, 3.0, 4.0], 2), vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn window_has_3000_frames_and_silence_is_flat() {
        let mel = MelExtractor::new(80);
        let feats = mel.window_features(&[0.0; 16_000]);
        assert_eq!(feats.len(), 80 * 3000);
        // All-zero input: log10(1e-10) = -10 everywhere, max - 8 clamp keeps -10, scaled to -1.5.
        assert!(feats.iter().all(|v| (v + 1.5).abs() < 1e-6));
    }

    #[test]
    fn a_tone_lights_up_its_band() {
        let mel = MelExtractor::new(80);
        let tone: Vec<f32> =
            (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin()).collect();
        let feats = mel.window_features(&tone);
        let band_mean = |m: usize| feats[m * 3000..m * 3000 + 90].iter().sum::<f32>() / 90.0;
        let loudest = (0..80).max_by(|&a, &b| band_mean(a).total_cmp(&band_mean(b))).unwrap();
        // 1 kHz sits at mel 15 → band index ~ 15 / (hz_to_mel(8000)/81) ≈ 27.
        let expected = (hz_to_mel(1000.0) / (hz_to_mel(8000.0) / 81.0)).round() as usize - 1;
        assert!(loudest.abs_diff(expected) <= 1, "loudest band {loudest}, expected {expected}");
    }
}
