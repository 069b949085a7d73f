//! The GE2E speaker encoder (Resemblyzer): power mel spectrogram → 3-layer LSTM → linear + ReLU
//! → L2 normalisation, in plain Rust.
//!
//! The features must match what the network was trained on (Resemblyzer's `audio.py`):
//! `librosa.feature.melspectrogram` power (not log), `n_fft` 400 (25 ms), hop 160 (10 ms),
//! 40 Slaney mel bands, centred frames with reflect padding, on audio raised to −30 dBFS when
//! quieter ("increase only"). An embedding is the last hidden state after a 160-frame (1.6 s)
//! partial utterance, as in Resemblyzer's `embed_utterance`.
//!
//! Cost is the LSTM (≈1.35 M multiply-adds per frame). Windows are run as a batch so every
//! step is a matrix product (B×256 · 256×1024) instead of a memory-bound matrix-vector product;
//! the input projections of all frames are one product ([`super::lstm`], on its AVX2 kernel with
//! pre-packed weights where the CPU has it).

use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Context};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Axis};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::lstm::Direction;
use super::weights::{load_tensors, Tensor};

pub(crate) const N_MELS: usize = 40;
pub(crate) const HOP: usize = 160;
const N_FFT: usize = 400;
/// Frames in one partial utterance (1.6 s).
pub(crate) const WINDOW_FRAMES: usize = 160;
pub(crate) const EMBEDDING: usize = 256;
const HIDDEN: usize = 256;
/// Windows run together; bounds the gate buffer to `160 × 48 × 1024` floats (31 MB).
const BATCH: usize = 48;
/// Threads for the LSTM; more than two brings little on the machines we measure.
const MAX_THREADS: usize = 2;
/// Resemblyzer's `audio_norm_target_dBFS`.
const TARGET_DBFS: f64 = -30.0;

/// The loaded network and its feature extractor. Immutable, so `Send + Sync`.
pub(crate) struct Encoder {
    layers: Vec<Direction>,
    /// `256 × 256`.
    linear_w: Array2<f32>,
    linear_b: Vec<f32>,
    mel: MelBank,
}

impl Encoder {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let mut tensors = load_tensors(path)?;
        let mut take = |name: &str, shape: &[usize]| -> anyhow::Result<Tensor> {
            let t = tensors
                .remove(&format!("model_state.{name}"))
                .with_context(|| format!("{}: no tensor model_state.{name}", path.display()))?;
            ensure!(t.shape == shape, "{}: {name} has shape {:?}, expected {shape:?}", path.display(), t.shape);
            Ok(t)
        };
        let layers = (0..3)
            .map(|l| Direction::load(&mut take, l, "", if l == 0 { N_MELS } else { HIDDEN }, HIDDEN))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let linear_w = Array2::from_shape_vec((EMBEDDING, HIDDEN), take("linear.weight", &[EMBEDDING, HIDDEN])?.data)?;
        let linear_b = take("linear.bias", &[EMBEDDING])?.data;
        Ok(Encoder { layers, linear_w, linear_b, mel: MelBank::new() })
    }

    /// The same encoder without the AVX2 path, to test the portable one.
    #[cfg(test)]
    pub(crate) fn portable(mut self) -> Self {
        self.layers = self.layers.into_iter().map(Direction::portable).collect();
        self
    }

    /// Resemblyzer's volume normalisation as a factor on power features: the gain that raises
    /// the loudness of `gain_ref` (the speech, not the silence around it) to −30 dBFS; quieter
    /// audio is never lowered.
    pub(crate) fn power_gain(gain_ref: impl Iterator<Item = f32>) -> f32 {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for x in gain_ref {
            sum += (x as f64) * (x as f64);
            n += 1;
        }
        let rms = (sum / n.max(1) as f64).sqrt().max(1e-9);
        let change_db = (TARGET_DBFS - 20.0 * rms.log10()).max(0.0);
        // Power features scale with the square of the amplitude gain.
        10f64.powf(change_db / 10.0) as f32
    }

    /// One L2-normalised embedding per window of 16 kHz `samples`; window `i` is frames
    /// `starts[i] .. starts[i] + 160` (frame `t` centred on sample `t * HOP`; frames past the
    /// end count as silence), its power features times `power_gain` ([`Encoder::power_gain`]).
    /// Batches run on up to [`MAX_THREADS`] scoped threads (diarization runs beside Whisper's
    /// decoding, which leaves the cores idle between its steps). Each batch computes the
    /// features of its own windows only: those of a whole hour would hold 58 MB at once.
    pub(crate) fn embed(&self, samples: &[f32], power_gain: f32, starts: &[usize]) -> Vec<Vec<f32>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        // Even batches per thread, so the threads finish together.
        let per_thread = starts.len().div_ceil(threads.max(1)).max(1);
        let batch = per_thread.div_ceil(per_thread.div_ceil(BATCH));
        let embed = |b: &[usize]| self.embed_batch(samples, power_gain, b);
        if threads <= 1 || starts.len() <= batch {
            return starts.chunks(batch).flat_map(embed).collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = starts
                .chunks(per_thread)
                .map(|part| scope.spawn(move || part.chunks(batch).flat_map(embed).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("embedding thread panicked")).collect()
        })
    }

    fn embed_batch(&self, samples: &[f32], power_gain: f32, starts: &[usize]) -> Vec<Vec<f32>> {
        let (b, t_len) = (starts.len(), WINDOW_FRAMES);
        let frames = 1 + samples.len() / HOP;
        // Row `w * t_len + t` is frame `t` of window `w`.
        let mut x = Array2::<f32>::zeros((b * t_len, N_MELS));
        // Frames `first ..` of the recording, computed once for all the windows that share them
        // (windows overlap, and their starts come sorted).
        let (mut first, mut mel) = (0usize, Vec::new());
        for (w, &start) in starts.iter().enumerate() {
            let end = (start + t_len).min(frames);
            if start < first || start > first + mel.len() / N_MELS {
                (first, mel) = (start, Vec::new());
            }
            let computed = first + mel.len() / N_MELS;
            if end > computed {
                self.mel.power_mel_into(samples, computed..end, power_gain, &mut mel);
            }
            let have = end.saturating_sub(start);
            let rows = x.slice_mut(s![w * t_len..w * t_len + have, ..]);
            rows.into_slice().expect("contiguous").copy_from_slice(&mel[(start - first) * N_MELS..][..have * N_MELS]);
        }
        for layer in &self.layers {
            let mut h = Array2::<f32>::zeros((b * t_len, HIDDEN));
            layer.run(x.view(), b, t_len, false, h.view_mut());
            x = h;
        }
        let h = x.slice(s![t_len - 1..;t_len, ..]);
        let mut out = Array2::<f32>::zeros((b, EMBEDDING));
        for mut row in out.rows_mut() {
            row.as_slice_mut().expect("contiguous").copy_from_slice(&self.linear_b);
        }
        general_mat_mul(1.0, &h, &self.linear_w.t(), 1.0, &mut out);
        out.axis_iter(Axis(0))
            .map(|row| {
                let v: Vec<f32> = row.iter().map(|&x| x.max(0.0)).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }
}

/// `tanh` is ±1 to f32 precision beyond this; inputs are clamped to it.
pub(crate) const TANH_CLAMP: f32 = 7.905_311;
/// [`tanh`]'s numerator (odd: a polynomial in `x²`, times `x`), highest power first.
pub(crate) const TANH_P: [f32; 7] =
    [-2.760_768_5e-16, 2.000_188e-13, -8.604_672e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3];
/// [`tanh`]'s denominator (a polynomial in `x²`), highest power first.
pub(crate) const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// Rational approximation of `tanh` (Eigen's `generic_fast_tanh_float`, max error a few ulp);
/// branch-free so the loops above vectorise, unlike `f32::tanh`.
#[inline]
pub(crate) fn tanh(x: f32) -> f32 {
    let x = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    let horner = |coefficients: &[f32]| coefficients[1..].iter().fold(coefficients[0], |p, &k| x2 * p + k);
    horner(&TANH_P) * x / horner(&TANH_Q)
}

#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * tanh(0.5 * x)
}

/// `librosa.feature.melspectrogram(sr=16000, n_fft=400, hop_length=160, n_mels=40)`.
struct MelBank {
    /// `40 × 201` Slaney-normalised triangles on the Slaney mel scale (librosa's defaults).
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

impl MelBank {
    fn new() -> Self {
        let window = crate::mel::periodic_hann(N_FFT);
        MelBank {
            filters: slaney_filters(16_000.0, N_FFT, N_MELS),
            window,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// Frames `range` of `audio`'s power mel spectrogram (of `1 + len / HOP` frames, frame `t`
    /// centred on sample `t * HOP`) times `gain`, 40 values each, appended to `out`.
    fn power_mel_into(&self, audio: &[f32], range: std::ops::Range<usize>, gain: f32, out: &mut Vec<f32>) {
        let bins = N_FFT / 2 + 1;
        let pad = N_FFT / 2;
        // Reflect padding (numpy "reflect"); a clip shorter than the padding is zero-padded.
        let at = |i: isize| -> f32 {
            let n = audio.len() as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            if (0..n).contains(&j) {
                audio[j as usize]
            } else {
                0.0
            }
        };
        let mut buf = vec![Complex32::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f32; bins];
        for t in range {
            let start = (t * HOP) as isize - pad as isize;
            for (i, c) in buf.iter_mut().enumerate() {
                let s = start + i as isize;
                let v = if s >= 0 && (s as usize) < audio.len() { audio[s as usize] } else { at(s) };
                *c = Complex32::new(v * self.window[i], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf[..bins]) {
                *p = c.norm_sqr();
            }
            out.extend((0..N_MELS).map(|m| {
                gain * self.filters[m * bins..(m + 1) * bins].iter().zip(&power).map(|(w, p)| w * p).sum::<f32>()
            }));
        }
    }
}

// The same filterbank as `crate::mel` builds for Whisper (kept private there).
fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_hz / f_sp + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_hz / f_sp {
        min_log_hz * (logstep * (m - min_log_hz / f_sp)).exp()
    } else {
        f_sp * m
    }
}

fn slaney_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0.0f32; n_mels * bins];
    for m in 0..n_mels {
        let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (f2 - f0);
        for k in 0..bins {
            let f = k as f64 * sr / n_fft as f64;
            let w = ((f - f0) / (f1 - f0)).min((f2 - f) / (f2 - f1)).max(0.0);
            weights[m * bins + k] = (w * enorm) as f32;
        }
    }
    weights
}
