//! Matrix products on AVX2 + FMA for the segmentation network and the LSTMs, chosen at run time
//! ([`available`]); the callers keep a portable path for other CPUs.
//!
//! One kernel ([`products`]): a tile of `R` rows by `V` vectors of 8 columns (`R · V` ≤ 12
//! accumulators of the 16 vector registers, enough to hide the FMA latency) over a block of the
//! weight matrix packed at load time (`[k][V · 8]`, contiguous), broadcasting one input value
//! per row and step of `k`. Matrixmultiply's 8 × 8 kernel loads 9 values per 8 FMAs; this one 7
//! per 12, which keeps the FMA units busier on CPUs with two loads a cycle (Zen 2). The rows of
//! `A` are given by their starts, so a stride-1 convolution reads its input in place (row `t` of
//! its im2col matrix is the input from step `t` on) instead of copying it.
//!
//! `unsafe` (denied in the workspace) is allowed here and in `lstm::avx2` only: intrinsics and
//! `target_feature` functions need it. Safe functions check every length the kernels rely on.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// Rows per tile at most.
pub(crate) const ROWS: usize = 3;
/// Lanes of a vector.
pub(crate) const LANES: usize = 8;
/// Rows of `A` a [`Matrix`] product takes together.
const PANEL: usize = 96;
/// Rows of a block of weights taken together: 128 rows of 32 or 40 columns, 16 or 20 KB.
const DEPTH: usize = 128;

pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `init[r] + a[r] · w` for the first `R` rows: `a[r]` a row of `k`, `w` a `[k][V · 8]` block,
/// `init[r]` `V · 8` values.
///
/// # Safety
/// AVX2 and FMA present; the pointers valid for those reads.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn products<const R: usize, const V: usize>(
    a: [*const f32; ROWS],
    k: usize,
    w: *const f32,
    init: [*const f32; ROWS],
) -> [[__m256; V]; R] {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (j, v) in acc.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(init[r].add(j * LANES));
        }
    }
    for i in 0..k {
        let mut ai = [_mm256_setzero_ps(); R];
        for (r, v) in ai.iter_mut().enumerate() {
            *v = _mm256_set1_ps(*a[r].add(i));
        }
        let wi = w.add(i * V * LANES);
        // Vector by vector, so that one weight vector is live beside the accumulators and `ai`.
        #[allow(clippy::needless_range_loop)]
        for j in 0..V {
            let b = _mm256_loadu_ps(wi.add(j * LANES));
            for r in 0..R {
                acc[r][j] = _mm256_fmadd_ps(ai[r], b, acc[r][j]);
            }
        }
    }
    acc
}

/// `x · w + bias` with `w` packed for [`products`]: a convolution's or linear layer's weight of
/// `k` rows and `n` columns, `n` padded to whole blocks of `V · 8`.
pub(crate) struct Matrix {
    k: usize,
    n: usize,
    /// Vectors per block: 5 for 40 columns (2 rows a tile), else 4 (3 rows a tile).
    v: usize,
    /// `[blocks][k][v · 8]`, zero beyond column `n`.
    packed: Vec<f32>,
    /// `[blocks][v · 8]`, zero beyond column `n`.
    bias: Vec<f32>,
}

impl Matrix {
    /// `None` without AVX2 and FMA. `w` is `k × n`, row-major.
    pub(crate) fn new(w: &[f32], k: usize, bias: &[f32]) -> Option<Self> {
        let n = bias.len();
        assert_eq!(w.len(), k * n, "weight is {k} × {n}");
        // At most 5 (see `forward_v`'s partial blocks).
        let v = if n == 5 * LANES { 5 } else { 4 };
        let width = v * LANES;
        let blocks = n.div_ceil(width);
        let mut packed = vec![0.0f32; blocks * k * width];
        let mut padded_bias = vec![0.0f32; blocks * width];
        for col in 0..n {
            let (block, at) = (col / width, col % width);
            padded_bias[block * width + at] = bias[col];
            for row in 0..k {
                packed[(block * k + row) * width + at] = w[row * n + col];
            }
        }
        available().then_some(Matrix { k, n, v, packed, bias: padded_bias })
    }

    /// Rows `r < rows` of the output (`out[r · out_stride ..][..n]`) = bias + `a[r · stride ..][..k]` · w.
    pub(crate) fn forward(&self, a: &[f32], rows: usize, stride: usize, out: &mut [f32], out_stride: usize) {
        if rows == 0 {
            return;
        }
        assert!(available(), "bug: an AVX2 product called without AVX2 and FMA");
        assert!((rows - 1) * stride + self.k <= a.len(), "input rows out of bounds");
        assert!((rows - 1) * out_stride + self.n <= out.len() && out_stride >= self.n, "output rows out of bounds");
        // SAFETY: AVX2 and FMA are present; the input rows and output rows were just checked,
        // the weights and bias are `[blocks][k][v · 8]` and `[blocks][v · 8]` (built in `new`).
        unsafe {
            match self.v {
                5 => self.forward_v::<5>(a, rows, stride, out, out_stride),
                _ => self.forward_v::<4>(a, rows, stride, out, out_stride),
            }
        }
    }

    /// Rows are taken [`PANEL`] at a time, their output and input staying in cache while every
    /// block of weights passes over them; a block's weights [`DEPTH`] rows at a time, so that
    /// they stay in L1 while every tile of the panel uses them.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_v<const V: usize>(
        &self,
        a: &[f32],
        rows: usize,
        stride: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let width = V * LANES;
        // Rows per tile: as many as fit 12 accumulators.
        let tile = (12 / V).min(ROWS);
        let (a, out) = (a.as_ptr(), out.as_mut_ptr());
        for panel in (0..rows).step_by(PANEL) {
            let end = rows.min(panel + PANEL);
            for block in 0..self.n.div_ceil(width) {
                let w = self.packed.as_ptr().add(block * self.k * width);
                let cols = (self.n - block * width).min(width);
                for depth in (0..self.k).step_by(DEPTH) {
                    let k = (self.k - depth).min(DEPTH);
                    let w = w.add(depth * width);
                    let mut row = panel;
                    while row < end {
                        let r = (end - row).min(tile);
                        let at = |i: usize| row + i.min(r - 1);
                        let src = |i: usize| a.add(at(i) * stride + depth);
                        let a3 = [src(0), src(1), src(2)];
                        let dst = |i: usize| out.add(at(i) * out_stride + block * width);
                        let d3 = [dst(0), dst(1), dst(2)];
                        // The first rows of weights start from the bias, later ones from the sum
                        // so far (copied when the block is wider than what is left of the row).
                        let mut partial = [[0.0f32; 5 * LANES]; ROWS];
                        let init = if depth == 0 {
                            [self.bias.as_ptr().add(block * width); ROWS]
                        } else if cols < width {
                            for (sum, &d) in partial.iter_mut().zip(&d3) {
                                std::ptr::copy_nonoverlapping(d, sum.as_mut_ptr(), cols);
                            }
                            [partial[0].as_ptr(), partial[1].as_ptr(), partial[2].as_ptr()]
                        } else {
                            d3.map(|p| p as *const f32)
                        };
                        match r {
                            1 => store(products::<1, V>(a3, k, w, init), d3, cols),
                            2 => store(products::<2, V>(a3, k, w, init), d3, cols),
                            _ => store(products::<3, V>(a3, k, w, init), d3, cols),
                        }
                        row += r;
                    }
                }
            }
        }
    }
}

/// The first `cols` columns of each row of `acc` to `dst[r]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) unsafe fn store<const R: usize, const V: usize>(acc: [[__m256; V]; R], dst: [*mut f32; ROWS], cols: usize) {
    for (r, acc) in acc.iter().enumerate() {
        for (j, v) in acc.iter().enumerate() {
            let at = j * LANES;
            if at + LANES <= cols {
                _mm256_storeu_ps(dst[r].add(at), *v);
            } else if at < cols {
                let mut lanes = [0.0f32; LANES];
                _mm256_storeu_ps(lanes.as_mut_ptr(), *v);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst[r].add(at), cols - at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{available, Matrix};

    /// Against a plain triple loop, with overlapping input rows (a convolution's), a partial
    /// last block (60 columns), 40 columns, and more than one depth of weights (k = 300).
    #[test]
    fn matrix_product_matches_a_plain_one() {
        if !available() {
            eprintln!("no AVX2 + FMA here");
            return;
        }
        for (k, n, rows, stride) in [(300, 60, 100, 60), (126, 40, 7, 126), (300, 512, 5, 300), (20, 60, 1, 3)] {
            let value = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.0 - 1.0;
            let w: Vec<f32> = (0..k * n).map(|i| value(i, 1)).collect();
            let bias: Vec<f32> = (0..n).map(|i| value(i, 2)).collect();
            let a: Vec<f32> = (0..(rows - 1) * stride + k).map(|i| value(i, 3)).collect();
            let out_stride = n + 3;
            let mut out = vec![f32::NAN; (rows - 1) * out_stride + n];
            Matrix::new(&w, k, &bias).unwrap().forward(&a, rows, stride, &mut out, out_stride);
            for r in 0..rows {
                for o in 0..n {
                    let want = bias[o] + (0..k).map(|i| a[r * stride + i] * w[i * n + o]).sum::<f32>();
                    let got = out[r * out_stride + o];
                    assert!((got - want).abs() < 1e-3, "k {k}, n {n}, row {r}, column {o}: {got} vs {want}");
                }
            }
        }
    }
}
