//! The segmentation-3.0 network (pyannote's `PyanNet`) on a batch of 10 s chunks.
//!
//! SincNet front end: the waveform's instance norm, a strided convolution with 80 band-pass
//! filters (built at load time from their learned cut-off frequencies; [`SincConv`]), `|·|`,
//! then three blocks of max-pool (3), instance norm and leaky ReLU, with two plain convolutions
//! (80 → 60 → 60, 5 taps) between them. Then four bidirectional LSTM layers (128 per direction,
//! [`super::lstm`]), two linear layers with leaky ReLU, and a linear layer to the 7 powerset
//! classes. Activations are row-major matrices, one row per (chunk, time step), channels
//! contiguous; convolutions are im2col + one matrix product.

use std::collections::HashMap;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2};

#[cfg(target_arch = "x86_64")]
use crate::diarize::avx2;
use crate::diarize::campp::layers::{Linear, Weights};
use crate::diarize::lstm::{BiLstm, SEGMENT_HIDDEN as HIDDEN};
use crate::diarize::weights::Tensor;

/// Powerset classes: no one, speaker 0, 1, 2, and the pairs {0,1}, {0,2}, {1,2}.
pub(crate) const CLASSES: usize = 7;
const LEAKY_SLOPE: f32 = 0.01;
const NORM_EPS: f32 = 1e-5;

/// A valid (unpadded) 1-D convolution as a matrix product.
struct Conv {
    linear: Linear,
    /// The same weights for [`avx2::Matrix`], which reads the input in place (row `t` of the
    /// im2col matrix is the input from step `t · stride` on), when the CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    packed: Option<avx2::Matrix>,
    taps: usize,
    stride: usize,
}

impl Conv {
    /// From PyTorch's `[outputs][inputs][taps]` weight and `[outputs]` bias.
    fn new(weight: &Tensor, bias: &Tensor, stride: usize) -> Self {
        let (outputs, inputs, taps) = (weight.shape[0], weight.shape[1], weight.shape[2]);
        #[cfg(target_arch = "x86_64")]
        let packed = {
            // Row `tap · inputs + i`, column `o`, as `Linear::from_conv` lays it out.
            let mut w = vec![0.0f32; taps * inputs * outputs];
            for (at, &v) in weight.data.iter().enumerate() {
                let (o, i, k) = (at / (inputs * taps), at / taps % inputs, at % taps);
                w[(k * inputs + i) * outputs + o] = v;
            }
            avx2::Matrix::new(&w, taps * inputs, &bias.data)
        };
        Conv {
            linear: Linear::from_conv(weight, Some(bias), None),
            #[cfg(target_arch = "x86_64")]
            packed,
            taps,
            stride,
        }
    }

    fn out_len(&self, len: usize) -> usize {
        (len - self.taps) / self.stride + 1
    }

    /// `x`: `(chunks · len) × inputs`; returns `(chunks · out_len) × outputs`.
    fn forward(&self, x: &Array2<f32>, chunks: usize, len: usize) -> Array2<f32> {
        let inputs = x.ncols();
        let x = x.as_slice().expect("standard layout");
        let out_len = self.out_len(len);
        let row = self.taps * inputs;
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.packed {
            let outputs = self.linear.outputs();
            let mut out = vec![0.0f32; chunks * out_len * outputs];
            for (c, out) in out.chunks_exact_mut(out_len * outputs).enumerate() {
                let x = &x[c * len * inputs..(c + 1) * len * inputs];
                packed.forward(x, out_len, self.stride * inputs, out, outputs);
            }
            return Array2::from_shape_vec((chunks * out_len, outputs), out).expect("one row per step");
        }
        let mut cols = Vec::with_capacity(chunks * out_len * row);
        for c in 0..chunks {
            for t in 0..out_len {
                let src = (c * len + t * self.stride) * inputs;
                cols.extend_from_slice(&x[src..src + row]);
            }
        }
        let cols = ArrayView2::from_shape((chunks * out_len, row), &cols).expect("one im2col row per step");
        self.linear.forward(cols)
    }
}

/// Instance norm (per chunk and channel, over time; biased variance) with a learned affine.
struct InstanceNorm {
    scale: Vec<f32>,
    bias: Vec<f32>,
}

impl InstanceNorm {
    fn load(w: &mut Weights, prefix: &str, channels: usize) -> anyhow::Result<Self> {
        Ok(InstanceNorm {
            scale: w.take(&format!("{prefix}.weight"), &[channels])?.data,
            bias: w.take(&format!("{prefix}.bias"), &[channels])?.data,
        })
    }

    /// In place on `chunks` blocks of rows, then leaky ReLU when `leaky`.
    fn apply(&self, x: &mut Array2<f32>, chunks: usize, leaky: bool) {
        let (rows, channels) = x.dim();
        let len = rows / chunks;
        let data = x.as_slice_mut().expect("standard layout");
        let mut sum = vec![0.0f64; channels];
        let mut sq = vec![0.0f64; channels];
        for block in data.chunks_exact_mut(len * channels) {
            sum.fill(0.0);
            sq.fill(0.0);
            for row in block.chunks_exact(channels) {
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            let mean: Vec<f64> = sum.iter().map(|s| s / len as f64).collect();
            for row in block.chunks_exact(channels) {
                for ((q, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                    *q += (v as f64 - m).powi(2);
                }
            }
            let k: Vec<f32> = sq
                .iter()
                .zip(&self.scale)
                .map(|(q, g)| (*g as f64 / (q / len as f64 + NORM_EPS as f64).sqrt()) as f32)
                .collect();
            let b: Vec<f32> = mean.iter().zip(&k).zip(&self.bias).map(|((m, k), b)| b - (*m as f32) * k).collect();
            for row in block.chunks_exact_mut(channels) {
                for ((v, k), b) in row.iter_mut().zip(&k).zip(&b) {
                    let y = *v * k + b;
                    *v = if leaky && y < 0.0 { LEAKY_SLOPE * y } else { y };
                }
            }
        }
    }
}

/// Max over non-overlapping runs of 3 steps (a trailing remainder is dropped), per chunk.
fn max_pool3(x: &Array2<f32>, chunks: usize) -> (Array2<f32>, usize) {
    let (rows, channels) = x.dim();
    let len = rows / chunks;
    let out_len = len / 3;
    let src = x.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(chunks * out_len * channels);
    for c in 0..chunks {
        for t in 0..out_len {
            let at = (c * len + 3 * t) * channels;
            let (a, rest) = src[at..at + 3 * channels].split_at(channels);
            let (b, c3) = rest.split_at(channels);
            out.extend(a.iter().zip(b).zip(c3).map(|((x, y), z)| x.max(*y).max(*z)));
        }
    }
    (Array2::from_shape_vec((chunks * out_len, channels), out).expect("pooled shape"), out_len)
}

fn leaky_relu(x: &mut Array2<f32>) {
    x.mapv_inplace(|v| if v >= 0.0 { v } else { LEAKY_SLOPE * v });
}

/// SincNet's first layer (asteroid's `ParamSincFB`): 40 band-pass filters from their learned
/// low cut-off and bandwidth, each as a cosine (even) and a sine (odd) filter of 251 taps,
/// stride 10, outputs `[40 cosine | 40 sine]`.
///
/// The filters are symmetric and antisymmetric about their centre tap, so each window is folded
/// first (the sum and the difference of the taps `j` and `250 - j`) and multiplied by the left
/// halves only: half the multiplications of the plain convolution.
struct SincConv {
    /// `126 × 40`: the cosine filters' taps 0..=125, for the folded sums (and the centre).
    even: Array2<f32>,
    /// `125 × 40`: the sine filters' taps 0..125 (the centre is 0), for the folded differences.
    odd: Array2<f32>,
    /// `even` and `odd` for [`avx2::Matrix`], when the CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    packed: Option<[avx2::Matrix; 2]>,
}

impl SincConv {
    const TAPS: usize = 251;
    const STRIDE: usize = 10;
    const HALF: usize = Self::TAPS / 2;
    /// Output steps folded and multiplied together: 192 KB of folded windows.
    const PANEL: usize = 192;

    /// `window` (Hamming) and `n` (2π·t/sr for the left half's taps) are the buffers saved
    /// beside the parameters.
    fn new(low_hz: &[f32], band_hz: &[f32], window: &[f32], n: &[f32]) -> Self {
        const MIN_LOW_HZ: f64 = 50.0;
        const MIN_BAND_HZ: f64 = 50.0;
        const NYQUIST: f64 = 8_000.0;
        let filters = low_hz.len();
        let mut even = Array2::<f32>::zeros((Self::HALF + 1, filters));
        let mut odd = Array2::<f32>::zeros((Self::HALF, filters));
        for (f, (&low_, &band_)) in low_hz.iter().zip(band_hz).enumerate() {
            let low = MIN_LOW_HZ + (low_ as f64).abs();
            let high = (low + MIN_BAND_HZ + (band_ as f64).abs()).clamp(MIN_LOW_HZ, NYQUIST);
            let band = high - low;
            for (j, (&w, &n)) in window.iter().zip(n).enumerate() {
                let (w, n) = (w as f64, n as f64);
                let (lo, hi) = (low * n, high * n);
                even[[j, f]] = ((hi.sin() - lo.sin()) / (n / 2.0) * w / (2.0 * band)) as f32;
                odd[[j, f]] = ((lo.cos() - hi.cos()) / (n / 2.0) * w / (2.0 * band)) as f32;
            }
            even[[Self::HALF, f]] = 1.0; // 2·band / (2·band)
        }
        #[cfg(target_arch = "x86_64")]
        let packed = {
            let zero = vec![0.0f32; filters];
            let matrix = |m: &Array2<f32>| avx2::Matrix::new(m.as_slice().expect("standard layout"), m.nrows(), &zero);
            matrix(&even).zip(matrix(&odd)).map(|(e, o)| [e, o])
        };
        SincConv {
            even,
            odd,
            #[cfg(target_arch = "x86_64")]
            packed,
        }
    }

    fn out_len(&self, len: usize) -> usize {
        (len - Self::TAPS) / Self::STRIDE + 1
    }

    /// One chunk's samples; returns `out_len × 80`. Windows are folded [`Self::PANEL`] at a
    /// time, so that the folded matrices stay in cache until they are multiplied.
    fn forward(&self, x: &[f32]) -> Array2<f32> {
        let (half, filters) = (Self::HALF, self.odd.ncols());
        let out_len = self.out_len(x.len());
        let mut out = Array2::<f32>::zeros((out_len, 2 * filters));
        let mut sums = Vec::with_capacity(Self::PANEL * (half + 1));
        let mut diffs = Vec::with_capacity(Self::PANEL * half);
        for from in (0..out_len).step_by(Self::PANEL) {
            let rows = Self::PANEL.min(out_len - from);
            sums.clear();
            diffs.clear();
            for t in from..from + rows {
                let w = &x[t * Self::STRIDE..t * Self::STRIDE + Self::TAPS];
                let (left, right) = (&w[..half], &w[half + 1..]);
                sums.extend(left.iter().zip(right.iter().rev()).map(|(a, b)| a + b));
                sums.push(w[half]);
                diffs.extend(left.iter().zip(right.iter().rev()).map(|(a, b)| a - b));
            }
            self.multiply(&sums, &diffs, out.slice_mut(s![from..from + rows, ..]));
        }
        out
    }

    /// `out = [sums · even | diffs · odd]` for one panel of rows.
    fn multiply(&self, sums: &[f32], diffs: &[f32], mut out: ndarray::ArrayViewMut2<'_, f32>) {
        let (rows, filters) = (out.nrows(), self.odd.ncols());
        #[cfg(target_arch = "x86_64")]
        if let Some([even, odd]) = &self.packed {
            let out = out.as_slice_mut().expect("whole rows of a standard-layout matrix");
            even.forward(sums, rows, Self::HALF + 1, out, 2 * filters);
            odd.forward(diffs, rows, Self::HALF, &mut out[filters..], 2 * filters);
            return;
        }
        let sums = ArrayView2::from_shape((rows, Self::HALF + 1), sums).expect("one folded window per row");
        let diffs = ArrayView2::from_shape((rows, Self::HALF), diffs).expect("one folded window per row");
        general_mat_mul(1.0, &sums, &self.even, 0.0, &mut out.slice_mut(s![.., ..filters]));
        general_mat_mul(1.0, &diffs, &self.odd, 0.0, &mut out.slice_mut(s![.., filters..]));
    }
}

pub(crate) struct Network {
    wav_scale: f32,
    wav_bias: f32,
    sinc: SincConv,
    convs: [Conv; 2],
    norms: [InstanceNorm; 3],
    lstms: Vec<BiLstm>,
    linears: [Linear; 3],
}

impl Network {
    /// From the PyTorch Lightning checkpoint's `state_dict` (keys `state_dict.sincnet...`).
    pub(crate) fn load(tensors: HashMap<String, Tensor>) -> anyhow::Result<Self> {
        let tensors = tensors.into_iter().map(|(k, v)| (k.strip_prefix("state_dict.").unwrap_or(&k).to_owned(), v));
        let mut w = Weights(tensors.collect());
        let wav_scale = w.take("sincnet.wav_norm1d.weight", &[1])?.data[0];
        let wav_bias = w.take("sincnet.wav_norm1d.bias", &[1])?.data[0];
        let fb = "sincnet.conv1d.0.filterbank";
        let sinc = SincConv::new(
            &w.take(&format!("{fb}.low_hz_"), &[40, 1])?.data,
            &w.take(&format!("{fb}.band_hz_"), &[40, 1])?.data,
            &w.take(&format!("{fb}.window_"), &[SincConv::HALF])?.data,
            &w.take(&format!("{fb}.n_"), &[1, SincConv::HALF])?.data,
        );
        let mut conv = |i: usize, inputs: usize| -> anyhow::Result<Conv> {
            let weight = w.take(&format!("sincnet.conv1d.{i}.weight"), &[60, inputs, 5])?;
            let bias = w.take(&format!("sincnet.conv1d.{i}.bias"), &[60])?;
            Ok(Conv::new(&weight, &bias, 1))
        };
        let convs = [conv(1, 80)?, conv(2, 60)?];
        let norms = [
            InstanceNorm::load(&mut w, "sincnet.norm1d.0", 80)?,
            InstanceNorm::load(&mut w, "sincnet.norm1d.1", 60)?,
            InstanceNorm::load(&mut w, "sincnet.norm1d.2", 60)?,
        ];
        let lstms = (0..4)
            .map(|layer| BiLstm::load(&mut w, layer, if layer == 0 { 60 } else { 2 * HIDDEN }))
            .collect::<anyhow::Result<_>>()?;
        let mut linear = |name: &str, inputs: usize, outputs: usize| -> anyhow::Result<Linear> {
            let weight = w.take(&format!("{name}.weight"), &[outputs, inputs])?;
            let weight = Tensor { shape: vec![outputs, inputs, 1], data: weight.data };
            Ok(Linear::from_conv(&weight, Some(&w.take(&format!("{name}.bias"), &[outputs])?), None))
        };
        let linears = [
            linear("linear.0", 2 * HIDDEN, HIDDEN)?,
            linear("linear.1", HIDDEN, HIDDEN)?,
            linear("classifier", HIDDEN, CLASSES)?,
        ];
        Ok(Network { wav_scale, wav_bias, sinc, convs, norms, lstms, linears })
    }

    /// The same network without the AVX2 paths, to test the portable ones.
    #[cfg(all(test, target_arch = "x86_64"))]
    pub(crate) fn portable(mut self) -> Self {
        self.sinc.packed = None;
        for conv in &mut self.convs {
            conv.packed = None;
        }
        self.lstms = self.lstms.into_iter().map(BiLstm::portable).collect();
        self
    }

    /// Output frames for a chunk of `samples` samples.
    pub(crate) fn frames(&self, samples: usize) -> usize {
        let mut len = self.sinc.out_len(samples) / 3;
        for conv in &self.convs {
            len = conv.out_len(len) / 3;
        }
        len
    }

    /// The SincNet front end of one 10 s chunk: `frames × 60`.
    fn front_end(&self, audio: &[f32]) -> Array2<f32> {
        let mut x = Array2::from_shape_vec((audio.len(), 1), audio.to_vec()).expect("one column");
        let wav_norm = InstanceNorm { scale: vec![self.wav_scale], bias: vec![self.wav_bias] };
        wav_norm.apply(&mut x, 1, false);
        let mut x = self.sinc.forward(x.as_slice().expect("standard layout"));
        x.mapv_inplace(f32::abs);
        let mut len = 0;
        for (i, norm) in self.norms.iter().enumerate() {
            if i > 0 {
                x = self.convs[i - 1].forward(&x, 1, len);
            }
            let (mut pooled, pooled_len) = max_pool3(&x, 1);
            norm.apply(&mut pooled, 1, true);
            (x, len) = (pooled, pooled_len);
        }
        x
    }

    /// Log-probabilities of the 7 classes, `(chunks · frames) × 7`, for `chunks` chunks of
    /// equal length laid end to end in `audio`. The front ends run chunk by chunk on two
    /// threads (the first convolution's im2col matrix is 16 MB a chunk); the LSTMs run all
    /// chunks as one batch, so each recurrent step is one larger matrix product.
    pub(crate) fn forward(&self, audio: &[f32], chunks: usize) -> Array2<f32> {
        let x = self.front_ends(audio, chunks);
        self.sequence(x, chunks)
    }

    /// The front ends of `chunks` chunks laid end to end, on two threads: `(chunks · frames) × 60`.
    pub(crate) fn front_ends(&self, audio: &[f32], chunks: usize) -> Array2<f32> {
        let len = audio.len() / chunks;
        let frames = self.frames(len);
        let mut x = Array2::<f32>::zeros((chunks * frames, 60));
        let half = chunks.div_ceil(2) * frames;
        let (mut first, mut second) = x.view_mut().split_at(ndarray::Axis(0), half);
        let run = |from: usize, out: &mut ndarray::ArrayViewMut2<'_, f32>| {
            for (i, c) in (from..chunks).enumerate().take(out.nrows() / frames.max(1)) {
                let f = self.front_end(&audio[c * len..(c + 1) * len]);
                out.slice_mut(s![i * frames..(i + 1) * frames, ..]).assign(&f);
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| run(0, &mut first));
            run(chunks.div_ceil(2), &mut second);
        });
        x
    }

    /// The LSTMs and linear layers on the front ends' output: log-probabilities, `(chunks · frames) × 7`.
    pub(crate) fn sequence(&self, mut x: Array2<f32>, chunks: usize) -> Array2<f32> {
        let frames = x.nrows() / chunks;
        for lstm in &self.lstms {
            x = lstm.forward(&x, chunks, frames);
        }
        for (i, linear) in self.linears.iter().enumerate() {
            x = linear.forward(x.view());
            if i < 2 {
                leaky_relu(&mut x);
            }
        }
        for mut row in x.rows_mut() {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln() + max;
            row.mapv_inplace(|v| v - log_sum);
        }
        x
    }
}
