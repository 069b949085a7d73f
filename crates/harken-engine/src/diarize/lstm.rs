//! LSTM layers in PyTorch's layout (gates `[i f g o]`), for both networks that have them:
//! Resemblyzer's GE2E encoder (three layers of 256 units, one direction) and pyannote's
//! segmentation model (four bidirectional layers of 128 units per direction).
//!
//! Each direction's input projection is one matrix product over all steps of all sequences; the
//! recurrence then steps all sequences together. On x86-64 with AVX2 and FMA both run on
//! [`avx2`]'s kernel and pre-packed weights; elsewhere on a general matrix product and scalar
//! gates.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(test)]
mod tests;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

#[cfg(target_arch = "x86_64")]
use crate::diarize::avx2::Kernel;
use crate::diarize::campp::layers::Weights;
use crate::diarize::encoder::{sigmoid, tanh};
use crate::diarize::weights::Tensor;

/// Units per direction of the segmentation model's layers.
pub(crate) const SEGMENT_HIDDEN: usize = 128;

/// One direction of one LSTM layer.
pub(crate) struct Direction {
    hidden: usize,
    /// `inputs × 4H`, for `x · w_in`.
    w_in: Array2<f32>,
    /// `H × 4H`, for `h · w_rec`.
    w_rec: Array2<f32>,
    /// The same weights packed for [`avx2`], when the CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    packed: Option<avx2::Packed>,
    /// Input and recurrent biases summed.
    bias: Vec<f32>,
}

/// The weights packed for [`avx2`]'s kernels.
#[cfg(target_arch = "x86_64")]
fn pack(w_in: &Array2<f32>, w_rec: &Array2<f32>, bias: &[f32], kernel: Kernel) -> Option<avx2::Packed> {
    let layout = "standard layout";
    avx2::Packed::new(w_in.as_slice().expect(layout), w_rec.as_slice().expect(layout), bias, kernel)
}

/// A PyTorch `[rows][cols]` weight, transposed for `x · w`.
fn transposed(t: &Tensor) -> Array2<f32> {
    let m = ArrayView2::from_shape((t.shape[0], t.shape[1]), &t.data).expect("2-D weight");
    m.t().as_standard_layout().into_owned()
}

impl Direction {
    /// Direction `suffix` (`""` or `"_reverse"`) of layer `layer` of a PyTorch `nn.LSTM` named
    /// `lstm` with `hidden` units: `lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l{layer}{suffix}`,
    /// each read by `take(name, shape)`, which checks the shape.
    pub(crate) fn load(
        mut take: impl FnMut(&str, &[usize]) -> anyhow::Result<Tensor>,
        layer: usize,
        suffix: &str,
        inputs: usize,
        hidden: usize,
    ) -> anyhow::Result<Self> {
        let gates = 4 * hidden;
        let name = |what: &str| format!("lstm.{what}_l{layer}{suffix}");
        let w_in = transposed(&take(&name("weight_ih"), &[gates, inputs])?);
        let w_rec = transposed(&take(&name("weight_hh"), &[gates, hidden])?);
        let b_in = take(&name("bias_ih"), &[gates])?.data;
        let b_rec = take(&name("bias_hh"), &[gates])?.data;
        Ok(Direction::new(w_in, w_rec, b_in.iter().zip(&b_rec).map(|(a, b)| a + b).collect()))
    }

    /// `w_in`: `inputs × 4H`; `w_rec`: `H × 4H` (PyTorch's weights transposed); `bias`: `4H`, the
    /// input and recurrent biases summed.
    pub(crate) fn new(w_in: Array2<f32>, w_rec: Array2<f32>, bias: Vec<f32>) -> Self {
        let hidden = w_rec.nrows();
        assert_eq!((w_in.ncols(), w_rec.ncols(), bias.len()), (4 * hidden, 4 * hidden, 4 * hidden), "gate widths");
        #[cfg(target_arch = "x86_64")]
        let packed = Kernel::detect().and_then(|kernel| pack(&w_in, &w_rec, &bias, kernel));
        Direction {
            hidden,
            w_in,
            w_rec,
            #[cfg(target_arch = "x86_64")]
            packed,
            bias,
        }
    }

    /// The same direction on `kernel` (`None`: the portable path), to test each path.
    #[cfg(all(test, target_arch = "x86_64"))]
    pub(crate) fn on_kernel(self, kernel: Option<Kernel>) -> Self {
        let packed = kernel.and_then(|kernel| pack(&self.w_in, &self.w_rec, &self.bias, kernel));
        Direction { packed, ..self }
    }

    /// The same direction without the AVX2 path, to test the portable one.
    #[cfg(test)]
    pub(crate) fn portable(self) -> Self {
        #[cfg(target_arch = "x86_64")]
        return Direction { packed: None, ..self };
        #[cfg(not(target_arch = "x86_64"))]
        self
    }

    /// Runs over `chunks` sequences of `len` steps (rows `c · len + t` of `x`), writing the
    /// hidden states into `out` at the same rows.
    pub(crate) fn run(
        &self,
        x: ArrayView2<'_, f32>,
        chunks: usize,
        len: usize,
        reverse: bool,
        out: ArrayViewMut2<'_, f32>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(packed) = &self.packed {
            return packed.run(x, chunks, len, reverse, out);
        }
        self.run_portable(x, chunks, len, reverse, out);
    }

    /// [`Self::run`] on a general matrix product and scalar gates.
    fn run_portable(
        &self,
        x: ArrayView2<'_, f32>,
        chunks: usize,
        len: usize,
        reverse: bool,
        mut out: ArrayViewMut2<'_, f32>,
    ) {
        let (hidden, gates) = (self.hidden, 4 * self.hidden);
        let mut pre = Array2::<f32>::zeros((x.nrows(), gates));
        for mut row in pre.rows_mut() {
            row.as_slice_mut().expect("contiguous").copy_from_slice(&self.bias);
        }
        general_mat_mul(1.0, &x, &self.w_in, 1.0, &mut pre);
        let pre = pre.as_slice().expect("standard layout");
        let mut h = vec![0.0f32; chunks * hidden];
        let mut h_next = h.clone();
        let mut c = h.clone();
        for step in 0..len {
            let t = if reverse { len - 1 - step } else { step };
            let pre_row = |k: usize| &pre[(k * len + t) * gates..(k * len + t + 1) * gates];
            self.step(pre_row, &h, &mut c, &mut h_next);
            std::mem::swap(&mut h, &mut h_next);
            for (k, h) in h.chunks_exact(hidden).enumerate() {
                out.row_mut(k * len + t).assign(&ndarray::aview1(h));
            }
        }
    }

    /// One step of all chunks: `pre(k)`, chunk `k`'s input projection plus biases (4H); `h`, the
    /// previous hidden states (`chunks × H`); `c`, the cells, updated in place; `h_next`, the
    /// new hidden states.
    fn step<'a>(&self, pre: impl Fn(usize) -> &'a [f32], h: &[f32], c: &mut [f32], h_next: &mut [f32]) {
        let hidden = self.hidden;
        let chunks = h.len() / hidden;
        let mut g = Array2::<f32>::zeros((chunks, 4 * hidden));
        for (k, mut row) in g.rows_mut().into_iter().enumerate() {
            row.as_slice_mut().expect("contiguous").copy_from_slice(pre(k));
        }
        let h = ArrayView2::from_shape((chunks, hidden), h).expect("chunks × H");
        general_mat_mul(1.0, &h, &self.w_rec, 1.0, &mut g);
        let g = g.as_slice().expect("standard layout");
        let states = c.chunks_exact_mut(hidden).zip(h_next.chunks_exact_mut(hidden));
        for (g, (ck, hk)) in g.chunks_exact(4 * hidden).zip(states) {
            for j in 0..hidden {
                let (i, f, cand, o) =
                    (sigmoid(g[j]), sigmoid(g[hidden + j]), tanh(g[2 * hidden + j]), sigmoid(g[3 * hidden + j]));
                ck[j] = f * ck[j] + i * cand;
                hk[j] = o * tanh(ck[j]);
            }
        }
    }
}

/// A bidirectional layer of the segmentation model.
pub(crate) struct BiLstm {
    directions: [Direction; 2],
}

impl BiLstm {
    /// `lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l{layer}` and their `_reverse` twins.
    pub(crate) fn load(w: &mut Weights, layer: usize, inputs: usize) -> anyhow::Result<Self> {
        let mut direction =
            |suffix: &str| Direction::load(|name, shape| w.take(name, shape), layer, suffix, inputs, SEGMENT_HIDDEN);
        Ok(BiLstm { directions: [direction("")?, direction("_reverse")?] })
    }

    /// The same layer without the AVX2 path, to test the portable one.
    #[cfg(all(test, target_arch = "x86_64"))]
    pub(crate) fn portable(self) -> Self {
        BiLstm { directions: self.directions.map(Direction::portable) }
    }

    /// Both directions, on two threads; returns `(chunks · len) × 256` (forward, backward).
    pub(crate) fn forward(&self, x: &Array2<f32>, chunks: usize, len: usize) -> Array2<f32> {
        let [fwd, bwd] = &self.directions;
        let mut out = Array2::<f32>::zeros((x.nrows(), 2 * SEGMENT_HIDDEN));
        let (of, ob) = out.view_mut().split_at(Axis(1), SEGMENT_HIDDEN);
        std::thread::scope(|scope| {
            scope.spawn(|| fwd.run(x.view(), chunks, len, false, of));
            bwd.run(x.view(), chunks, len, true, ob);
        });
        out
    }
}
