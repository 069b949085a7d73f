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
//! On CPUs with AVX-512 ([`Kernel::Wide`]) blocks of 32 columns run on [`products_wide`]
//! instead: the same packed weights, two 16-lane vectors a row, up to 6 rows a tile (12
//! accumulators of 32 registers), so each FMA does twice the work. `HARKEN_DIAR_AVX512=0`
//! keeps AVX2 (to compare the two in one binary).
//!
//! `unsafe` (denied in the workspace) is allowed here and in `lstm::avx2` only: intrinsics and
//! `target_feature` functions need it. Safe functions check every length the kernels rely on.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// Rows per tile at most: [`Kernel::Wide`]'s; AVX2's take at most [`ROWS_AVX2`].
pub(crate) const ROWS: usize = 6;
/// Rows per AVX2 tile at most.
pub(crate) const ROWS_AVX2: usize = 3;
/// Lanes of a vector.
pub(crate) const LANES: usize = 8;
/// Rows of `A` a [`Matrix`] product takes together.
const PANEL: usize = 96;
/// Rows of a block of weights taken together: 128 rows of 32 or 40 columns, 16 or 20 KB.
const DEPTH: usize = 128;

pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Which products run: both read the same packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// [`products`]: 8-lane vectors.
    Avx2,
    /// [`products_wide`]: 16-lane vectors, for blocks of 32 columns.
    Wide,
}

impl Kernel {
    /// The widest this CPU runs, `None` without AVX2 and FMA.
    pub(crate) fn detect() -> Option<Kernel> {
        static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let wide = *WIDE.get_or_init(|| {
            is_x86_feature_detected!("avx512f") && std::env::var("HARKEN_DIAR_AVX512").map_or(true, |v| v != "0")
        });
        available().then_some(if wide { Kernel::Wide } else { Kernel::Avx2 })
    }
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

/// [`products`] of `R` rows by a `[k][32]` block (`V` = 4) on 16-lane vectors: the same
/// sums, returned as 8-lane halves so that [`store`] and the LSTM's cell take them as they are.
///
/// # Safety
/// AVX-512F present; the pointers valid for those reads.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn products_wide<const R: usize>(
    a: [*const f32; ROWS],
    k: usize,
    w: *const f32,
    init: [*const f32; ROWS],
) -> [[__m256; 4]; R] {
    const WIDE: usize = 2 * LANES;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (j, v) in acc.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(init[r].add(j * WIDE));
        }
    }
    for i in 0..k {
        let wi = w.add(i * 2 * WIDE);
        let (b0, b1) = (_mm512_loadu_ps(wi), _mm512_loadu_ps(wi.add(WIDE)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a[r].add(i));
            acc[0] = _mm512_fmadd_ps(ai, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(ai, b1, acc[1]);
        }
    }
    // A loop rather than `acc.map`, which is not inlined here (it lacks AVX-512's features).
    let mut halves = [[_mm256_setzero_ps(); 4]; R];
    for r in 0..R {
        let [lo, hi] = acc[r];
        halves[r] = [low(lo), high(lo), low(hi), high(hi)];
    }
    halves
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn low(v: __m512) -> __m256 {
    _mm512_castps512_ps256(v)
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn high(v: __m512) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))
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
    /// [`Kernel::Wide`] runs blocks of 32 columns only; 40 stay on AVX2.
    kernel: Kernel,
}

/// A tile's inputs: row starts in `A`, the rows of the block's weights, where the sums start
/// from, and where the first `cols` columns go.
struct Tile {
    a: [*const f32; ROWS],
    k: usize,
    w: *const f32,
    init: [*const f32; ROWS],
    dst: [*mut f32; ROWS],
    cols: usize,
}

impl Matrix {
    /// `None` without AVX2 and FMA. `w` is `k × n`, row-major.
    pub(crate) fn new(w: &[f32], k: usize, bias: &[f32]) -> Option<Self> {
        Self::with_kernel(w, k, bias, Kernel::detect()?)
    }

    /// [`Matrix::new`] on a given kernel (the tests run both).
    pub(crate) fn with_kernel(w: &[f32], k: usize, bias: &[f32], kernel: Kernel) -> Option<Self> {
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
        let kernel = if v == 4 { kernel } else { Kernel::Avx2 };
        available().then_some(Matrix { k, n, v, packed, bias: padded_bias, kernel })
    }

    pub(crate) fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Rows `r < rows` of the output (`out[r · out_stride ..][..n]`) = bias + `a[r · stride ..][..k]` · w.
    pub(crate) fn forward(&self, a: &[f32], rows: usize, stride: usize, out: &mut [f32], out_stride: usize) {
        if rows == 0 {
            return;
        }
        assert!(available(), "bug: an AVX2 product called without AVX2 and FMA");
        assert!((rows - 1) * stride + self.k <= a.len(), "input rows out of bounds");
        assert!((rows - 1) * out_stride + self.n <= out.len() && out_stride >= self.n, "output rows out of bounds");
        // SAFETY: AVX2 and FMA are present (and AVX-512F for `Wide`: `Kernel::detect`); the
        // input rows and output rows were just checked, the weights and bias are
        // `[blocks][k][v · 8]` and `[blocks][v · 8]` (built in `with_kernel`).
        unsafe {
            match (self.kernel, self.v) {
                (Kernel::Wide, _) => self.forward_wide(a, rows, stride, out, out_stride),
                (Kernel::Avx2, 5) => self.forward_v::<5>(a, rows, stride, out, out_stride),
                (Kernel::Avx2, _) => self.forward_v::<4>(a, rows, stride, out, out_stride),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_v<const V: usize>(
        &self,
        a: &[f32],
        rows: usize,
        stride: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        // Rows per tile: as many as fit 12 accumulators.
        let tile = (12 / V).min(ROWS_AVX2);
        self.tiles(a, rows, stride, out, out_stride, tile, |r, t| match r {
            1 => store(products::<1, V>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            2 => store(products::<2, V>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            _ => store(products::<3, V>(t.a, t.k, t.w, t.init), t.dst, t.cols),
        })
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn forward_wide(&self, a: &[f32], rows: usize, stride: usize, out: &mut [f32], out_stride: usize) {
        self.tiles(a, rows, stride, out, out_stride, ROWS, |r, t| match r {
            1 => store(products_wide::<1>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            2 => store(products_wide::<2>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            3 => store(products_wide::<3>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            4 => store(products_wide::<4>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            5 => store(products_wide::<5>(t.a, t.k, t.w, t.init), t.dst, t.cols),
            _ => store(products_wide::<6>(t.a, t.k, t.w, t.init), t.dst, t.cols),
        })
    }

    /// Calls `product(r, tile)` on every tile of up to `tile` rows. Rows are taken [`PANEL`] at
    /// a time, their output and input staying in cache while every block of weights passes over
    /// them; a block's weights [`DEPTH`] rows at a time, so that they stay in L1 while every tile
    /// of the panel uses them.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles(
        &self,
        a: &[f32],
        rows: usize,
        stride: usize,
        out: &mut [f32],
        out_stride: usize,
        tile: usize,
        mut product: impl FnMut(usize, &Tile),
    ) {
        let width = self.v * LANES;
        let (a, out) = (a.as_ptr(), out.as_mut_ptr());
        // Where the sums so far are copied when the block is wider than what is left of a row.
        let mut partial = [[0.0f32; 5 * LANES]; ROWS];
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
                        let src: [*const f32; ROWS] = std::array::from_fn(|i| a.add(at(i) * stride + depth));
                        let dst: [*mut f32; ROWS] =
                            std::array::from_fn(|i| out.add(at(i) * out_stride + block * width));
                        // The first rows of weights start from the bias, later ones from the sum
                        // so far (copied into `partial` when the block is wider than the row).
                        let init = if depth == 0 {
                            [self.bias.as_ptr().add(block * width); ROWS]
                        } else if cols < width {
                            for (sum, &d) in partial.iter_mut().zip(&dst) {
                                std::ptr::copy_nonoverlapping(d, sum.as_mut_ptr(), cols);
                            }
                            std::array::from_fn(|i| partial[i].as_ptr())
                        } else {
                            dst.map(|p| p as *const f32)
                        };
                        product(r, &Tile { a: src, k, w, init, dst, cols });
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
pub(crate) mod tests {
    use super::{available, Kernel, Matrix};

    /// The kernels this CPU runs: AVX2, and the wide one where AVX-512 is.
    pub(crate) fn kernels() -> Vec<Kernel> {
        match Kernel::detect() {
            None => Vec::new(),
            Some(Kernel::Avx2) if !is_x86_feature_detected!("avx512f") => vec![Kernel::Avx2],
            Some(_) => vec![Kernel::Avx2, Kernel::Wide],
        }
    }

    /// Against a plain triple loop, with overlapping input rows (a convolution's), a partial
    /// last block (60 columns), 40 columns, more than one depth of weights (k = 300), and row
    /// counts that leave every size of last tile (1 to 6 rows). Both kernels add the same
    /// products in the same order, so they agree to the bit.
    #[test]
    fn matrix_product_matches_a_plain_one() {
        if !available() {
            eprintln!("no AVX2 + FMA here");
            return;
        }
        let shapes = [
            (300, 60, 100, 60),
            (126, 40, 7, 126),
            (300, 512, 5, 300),
            (20, 60, 1, 3),
            (64, 96, 14, 64),
            (32, 64, 9, 32),
        ];
        for (k, n, rows, stride) in shapes {
            let value = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.0 - 1.0;
            let w: Vec<f32> = (0..k * n).map(|i| value(i, 1)).collect();
            let bias: Vec<f32> = (0..n).map(|i| value(i, 2)).collect();
            let a: Vec<f32> = (0..(rows - 1) * stride + k).map(|i| value(i, 3)).collect();
            let out_stride = n + 3;
            let outputs: Vec<Vec<f32>> = kernels()
                .into_iter()
                .map(|kernel| {
                    let mut out = vec![f32::NAN; (rows - 1) * out_stride + n];
                    Matrix::with_kernel(&w, k, &bias, kernel).unwrap().forward(&a, rows, stride, &mut out, out_stride);
                    out
                })
                .collect();
            for r in 0..rows {
                for o in 0..n {
                    let want = bias[o] + (0..k).map(|i| a[r * stride + i] * w[i * n + o]).sum::<f32>();
                    let got = outputs[0][r * out_stride + o];
                    assert!((got - want).abs() < 1e-3, "k {k}, n {n}, row {r}, column {o}: {got} vs {want}");
                    for (kernel, out) in kernels().iter().zip(&outputs) {
                        assert_eq!(out[r * out_stride + o].to_bits(), got.to_bits(), "{kernel:?}, k {k}, n {n}");
                    }
                }
            }
        }
    }
}
