//! The building blocks of CAM++ as matrix products on `matrixmultiply`'s SIMD kernels.
//!
//! Activations are row-major matrices with one row per (window, time) or (frequency, time)
//! position and the channels contiguous, so a convolution is an im2col copy (each tap's
//! channels side by side) followed by one product with a `(taps · inputs) × outputs` weight
//! matrix. Every BatchNorm that directly follows a convolution is folded into it at load time.

use std::collections::HashMap;

use anyhow::{ensure, Context};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};

use crate::diarize::weights::Tensor;

/// BatchNorm's `eps`.
const BN_EPS: f32 = 1e-5;

/// The state dict, consumed tensor by tensor with shape checks.
pub(crate) struct Weights(pub(crate) HashMap<String, Tensor>);

impl Weights {
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> anyhow::Result<Tensor> {
        let t = self.0.remove(name).with_context(|| format!("no tensor {name}"))?;
        ensure!(t.shape == shape, "{name} has shape {:?}, expected {shape:?}", t.shape);
        Ok(t)
    }
}

/// Eval-mode BatchNorm as `x · scale + shift` per channel.
pub(crate) struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Affine {
    /// `prefix.{running_mean,running_var}` and, if `learned`, `prefix.{weight,bias}`.
    pub(crate) fn batch_norm(w: &mut Weights, prefix: &str, channels: usize, learned: bool) -> anyhow::Result<Self> {
        let mean = w.take(&format!("{prefix}.running_mean"), &[channels])?.data;
        let var = w.take(&format!("{prefix}.running_var"), &[channels])?.data;
        let (gamma, beta) = if learned {
            let gamma = w.take(&format!("{prefix}.weight"), &[channels])?.data;
            (gamma, w.take(&format!("{prefix}.bias"), &[channels])?.data)
        } else {
            (vec![1.0; channels], vec![0.0; channels])
        };
        let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + BN_EPS).sqrt()).collect();
        let shift = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Ok(Affine { scale, shift })
    }

    /// `relu(x · scale + shift)` of the first `scale.len()` columns of `x`, as a new matrix.
    pub(crate) fn relu(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let c = self.scale.len();
        let mut out = Array2::<f32>::zeros((x.nrows(), c));
        for (src, mut dst) in x.rows().into_iter().zip(out.rows_mut()) {
            let src = &src.to_slice().expect("activation rows are contiguous")[..c];
            let dst = dst.as_slice_mut().expect("fresh matrix rows are contiguous");
            for (((d, s), a), b) in dst.iter_mut().zip(src).zip(&self.scale).zip(&self.shift) {
                *d = (s * a + b).max(0.0);
            }
        }
        out
    }
}

/// `y = x · weight + bias`, `weight` stored `inputs × outputs`.
pub(crate) struct Linear {
    weight: Array2<f32>,
    bias: Vec<f32>,
}

impl Linear {
    /// From PyTorch's `[out][in][taps…]` convolution weight: row `tap · in + i`, column `o`, so
    /// it multiplies an im2col matrix whose columns are the taps' channels side by side. `bias`
    /// zero if absent; `bn` (the BatchNorm right after the convolution) folded in.
    pub(crate) fn from_conv(torch: &Tensor, bias: Option<&Tensor>, bn: Option<&Affine>) -> Self {
        let (outputs, inputs) = (torch.shape[0], torch.shape[1]);
        let taps: usize = torch.shape[2..].iter().product();
        let mut weight = Array2::<f32>::zeros((taps * inputs, outputs));
        for o in 0..outputs {
            let s = bn.map_or(1.0, |bn| bn.scale[o]);
            for i in 0..inputs {
                for k in 0..taps {
                    weight[[k * inputs + i, o]] = torch.data[(o * inputs + i) * taps + k] * s;
                }
            }
        }
        let bias = (0..outputs)
            .map(|o| {
                let b = bias.map_or(0.0, |b| b.data[o]);
                match bn {
                    Some(bn) => b * bn.scale[o] + bn.shift[o],
                    None => b,
                }
            })
            .collect();
        Linear { weight, bias }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.weight.ncols()
    }

    /// `x · weight + bias` into `out` (any row-major view with `outputs` columns).
    pub(crate) fn forward_into(&self, x: ArrayView2<'_, f32>, out: &mut ndarray::ArrayViewMut2<'_, f32>) {
        for mut row in out.rows_mut() {
            row.iter_mut().zip(&self.bias).for_each(|(y, b)| *y = *b);
        }
        general_mat_mul(1.0, &x, &self.weight, 1.0, out);
    }

    pub(crate) fn forward(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((x.nrows(), self.outputs()));
        self.forward_into(x, &mut out.view_mut());
        out
    }
}

pub(crate) fn relu_in_place(x: &mut Array2<f32>) {
    x.mapv_inplace(|v| v.max(0.0));
}

/// A 1-D convolution over `windows` sequences of `len` steps stored one after the other (rows
/// `w · len + t`), zero-padded so that the output keeps `ceil(len / stride)` steps.
pub(crate) struct Conv1d {
    pub(crate) linear: Linear,
    taps: usize,
    stride: usize,
    dilation: usize,
}

impl Conv1d {
    pub(crate) fn new(linear: Linear, taps: usize, stride: usize, dilation: usize) -> Self {
        Conv1d { linear, taps, stride, dilation }
    }

    pub(crate) fn out_len(&self, len: usize) -> usize {
        let pad = (self.taps - 1) / 2 * self.dilation;
        (len + 2 * pad - self.dilation * (self.taps - 1) - 1) / self.stride + 1
    }

    /// `x` is `(windows · len) × inputs`, contiguous; returns `(windows · out_len) × outputs`.
    pub(crate) fn forward(&self, x: &Array2<f32>, windows: usize, len: usize) -> Array2<f32> {
        let inputs = x.ncols();
        let x = x.as_slice().expect("conv input is a standard-layout matrix");
        let pad = ((self.taps - 1) / 2 * self.dilation) as isize;
        let out_len = self.out_len(len);
        let mut cols = Vec::with_capacity(windows * out_len * self.taps * inputs);
        for w in 0..windows {
            for t in 0..out_len {
                for k in 0..self.taps {
                    let src = (t * self.stride) as isize + (k * self.dilation) as isize - pad;
                    if (0..len as isize).contains(&src) {
                        let src = w * len + src as usize;
                        cols.extend_from_slice(&x[src * inputs..(src + 1) * inputs]);
                    } else {
                        cols.resize(cols.len() + inputs, 0.0);
                    }
                }
            }
        }
        let cols = ArrayView2::from_shape((windows * out_len, self.taps * inputs), &cols)
            .expect("im2col has one row per output step");
        self.linear.forward(cols)
    }
}

/// A 2-D convolution over one window's `(frequency, time)` plane, kernel 3×3 (padding 1) or
/// 1×1, striding over frequency only. The plane is channel-major (`channels × (freqs · time)`,
/// column `f · time + t`), so the im2col matrix is built from contiguous runs of `time`
/// samples and the product `weightᵀ · cols` streams it in order; with the head's 32 output
/// channels a row-major layout spent more time packing than multiplying.
pub(crate) struct Conv2d {
    pub(crate) linear: Linear,
    kernel: usize,
    stride_f: usize,
}

impl Conv2d {
    pub(crate) fn new(linear: Linear, kernel: usize, stride_f: usize) -> Self {
        Conv2d { linear, kernel, stride_f }
    }

    /// `x` is `inputs × (freqs · time)`, contiguous; returns `outputs × (out_f · time)` and
    /// `out_f`.
    pub(crate) fn forward(&self, x: &Array2<f32>, freqs: usize, time: usize) -> (Array2<f32>, usize) {
        let inputs = x.nrows();
        let x = x.as_slice().expect("conv input is a standard-layout matrix");
        let pad = self.kernel / 2;
        let out_f = (freqs + 2 * pad - self.kernel) / self.stride_f + 1;
        let width = out_f * time;
        // Row `(i · kernel + j) · inputs + c`: input channel `c` shifted by tap `(i, j)`.
        let mut cols = Vec::with_capacity(self.kernel * self.kernel * inputs * width);
        for i in 0..self.kernel {
            for j in 0..self.kernel {
                for c in 0..inputs {
                    let plane = &x[c * freqs * time..(c + 1) * freqs * time];
                    for fo in 0..out_f {
                        let fi = (fo * self.stride_f + i).checked_sub(pad).filter(|&f| f < freqs);
                        let Some(fi) = fi else {
                            cols.resize(cols.len() + time, 0.0);
                            continue;
                        };
                        let row = &plane[fi * time..(fi + 1) * time];
                        // Output step t reads input step t + j - pad.
                        match (j as isize - pad as isize).signum() {
                            -1 => {
                                cols.push(0.0);
                                cols.extend_from_slice(&row[..time - 1]);
                            }
                            0 => cols.extend_from_slice(row),
                            _ => {
                                cols.extend_from_slice(&row[1..]);
                                cols.push(0.0);
                            }
                        }
                    }
                }
            }
        }
        let cols = ArrayView2::from_shape((self.kernel * self.kernel * inputs, width), &cols)
            .expect("im2col has taps · inputs rows of out_f · time");
        let outputs = self.linear.outputs();
        let mut out = Array2::from_shape_fn((outputs, width), |(o, _)| self.linear.bias[o]);
        general_mat_mul(1.0, &self.linear.weight.t(), &cols, 1.0, &mut out);
        (out, out_f)
    }
}
