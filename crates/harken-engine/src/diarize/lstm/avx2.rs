//! One LSTM direction on AVX2 + FMA, chosen at run time ([`available`]).
//!
//! Both products (the input projection of [`STEPS`] steps at once, then each step's recurrent
//! one) run on [`products`]: a tile of up to 3 rows by 32 columns, 12 accumulators, the weight
//! matrix packed at load time by blocks of 8 hidden units (the 4 gates' 32 columns side by side,
//! so a tile holds gates i, f, g and o of the same units). A step's recurrent product is small
//! (`chunks × H` by `H × 4H`), so the general product spent much of it packing the weights
//! again; here a block's weights (`H × 32` floats: 16 KB at 128 units, 32 KB at 256, a whole
//! L1 data cache on Zen 2) stay cached while every row uses them, and the gates'
//! nonlinearities and the cell update run on the accumulators directly. The nonlinearities are `encoder::tanh`'s rational approximation,
//! eight lanes at a time.
//!
//! `unsafe` (denied in the workspace) is allowed here and in `diarize::avx2` only: intrinsics
//! and `target_feature` functions need it. The public functions check every length the kernels
//! rely on first.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::diarize::avx2::{available, products, products_wide, Kernel, Matrix, ROWS, ROWS_AVX2};
use crate::diarize::encoder::{TANH_CLAMP, TANH_P, TANH_Q};

/// Hidden units per block: one 256-bit vector.
const UNITS: usize = 8;
/// Columns per block: the 4 gates of `UNITS` units.
const BLOCK: usize = 4 * UNITS;
/// Steps whose input projections are computed together, for all chunks at once: the gates of
/// all 160 steps of a GE2E batch held 31 MB per thread, those of 32 steps hold 6 MB, and a product
/// over 32 rows still reuses each block of weights well (the output is the same either way).
const STEPS: usize = 32;

/// A direction's weights, packed.
pub(super) struct Packed {
    inputs: usize,
    /// Units `H`, a multiple of [`UNITS`].
    hidden: usize,
    /// `x · w_in + bias`, its columns in the order of [`pack`]'s.
    w_in: Matrix,
    /// `w_rec` (`H × 4H`) as `[H / 8][H][32]`.
    w_rec: Vec<f32>,
}

/// A `k × 4H` matrix (gates `[i f g o]` of `H` columns each) by blocks of 8 units: block `b`,
/// row `k` holds the columns of units `8b..8b + 8` of gate i, then f, g, o.
fn pack(w: &[f32], k: usize, hidden: usize) -> Vec<f32> {
    let gates = 4 * hidden;
    assert_eq!(w.len(), k * gates, "weight is {k} × {gates}");
    let mut packed = Vec::with_capacity(k * gates);
    for block in 0..hidden / UNITS {
        for row in w.chunks_exact(gates) {
            for gate in 0..4 {
                let at = gate * hidden + block * UNITS;
                packed.extend_from_slice(&row[at..at + UNITS]);
            }
        }
    }
    packed
}

impl Packed {
    /// `None` without AVX2 and FMA. `w_in`: `inputs × 4H`; `w_rec`: `H × 4H`, row-major;
    /// `bias`: `4H`. Both products run on `kernel`.
    pub(super) fn new(w_in: &[f32], w_rec: &[f32], bias: &[f32], kernel: Kernel) -> Option<Self> {
        let gates = bias.len();
        let (hidden, inputs) = (gates / 4, w_in.len() / gates);
        assert!(hidden.is_multiple_of(UNITS), "{hidden} units: not whole blocks of {UNITS}");
        // `pack` of one row per block is the column order of `pack` of any number of rows.
        let by_rows = |w: &[f32]| -> Vec<f32> {
            let blocked: Vec<Vec<f32>> = w.chunks_exact(gates).map(|row| pack(row, 1, hidden)).collect();
            blocked.concat()
        };
        let w_in = Matrix::with_kernel(&by_rows(w_in), inputs, &pack(bias, 1, hidden), kernel)?;
        Some(Packed { inputs, hidden, w_in, w_rec: pack(w_rec, hidden, hidden) })
    }

    /// Same contract as `Direction::run`.
    pub(super) fn run(
        &self,
        x: ArrayView2<'_, f32>,
        chunks: usize,
        len: usize,
        reverse: bool,
        mut out: ArrayViewMut2<'_, f32>,
    ) {
        let x = x.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let (rows, hidden, gates) = (chunks * len, self.hidden, 4 * self.hidden);
        assert_eq!(x.len(), rows * self.inputs, "input is (chunks · len) × inputs");
        assert_eq!(out.dim(), (rows, hidden), "output is (chunks · len) × H");
        assert!(available(), "bug: the AVX2 LSTM called without AVX2 and FMA");
        // The gates of [`STEPS`] steps of every chunk, each row blocked like the weights
        // (`[H / 8][32]`): row `k · steps + i` is chunk `k`'s step `first + i`.
        let steps = STEPS.min(len).max(1);
        let mut pre = vec![0.0f32; chunks * steps * gates];
        let mut h = vec![0.0f32; chunks * hidden];
        let mut h_next = h.clone();
        let mut c = h.clone();
        let mut pre_rows = vec![std::ptr::null(); chunks];
        let blocks = len.div_ceil(steps);
        for block in 0..blocks {
            // Blocks in the order the recurrence visits them.
            let first = if reverse { blocks - 1 - block } else { block } * steps;
            let n = steps.min(len - first);
            for k in 0..chunks {
                let x = &x[(k * len + first) * self.inputs..];
                self.w_in.forward(x, n, self.inputs, &mut pre[k * steps * gates..], gates);
            }
            for i in 0..n {
                let i = if reverse { n - 1 - i } else { i };
                for (k, p) in pre_rows.iter_mut().enumerate() {
                    *p = pre[(k * steps + i) * gates..][..gates].as_ptr();
                }
                // SAFETY: AVX2 and FMA are present (and AVX-512F for `Wide`: `Kernel::detect`);
                // each of the `chunks` pointers starts a row of 4H in `pre`; `h`, `c` and `h_next`
                // are `chunks × H`; `w_rec` is `[H / 8][H][32]`.
                unsafe {
                    match self.w_in.kernel() {
                        Kernel::Wide => step_wide(&self.w_rec, hidden, &pre_rows, &h, &mut c, &mut h_next),
                        Kernel::Avx2 => step_avx2(&self.w_rec, hidden, &pre_rows, &h, &mut c, &mut h_next),
                    }
                }
                std::mem::swap(&mut h, &mut h_next);
                for (k, h) in h.chunks_exact(hidden).enumerate() {
                    out.row_mut(k * len + first + i).assign(&ndarray::aview1(h));
                }
            }
        }
    }
}

/// One step of `pre.len()` sequences: gates = pre + h · w_rec, then the cell and hidden updates.
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(w: &[f32], hidden: usize, pre: &[*const f32], h: &[f32], c: &mut [f32], h_next: &mut [f32]) {
    // 2 + 2 for the last 4 rows: two tiles of 8 accumulators hide the FMA latency better than 3 + 1.
    let rows = |left: usize| if left == 4 { 2 } else { left.min(ROWS_AVX2) };
    step_tiles(w, hidden, pre, h, c, h_next, rows, |r, t| match r {
        1 => cell(products::<1, 4>(t.a, hidden, t.w, t.init), t.c, t.h),
        2 => cell(products::<2, 4>(t.a, hidden, t.w, t.init), t.c, t.h),
        _ => cell(products::<3, 4>(t.a, hidden, t.w, t.init), t.c, t.h),
    })
}

/// [`step_avx2`] on [`products_wide`].
#[target_feature(enable = "avx512f")]
unsafe fn step_wide(w: &[f32], hidden: usize, pre: &[*const f32], h: &[f32], c: &mut [f32], h_next: &mut [f32]) {
    let rows = |left: usize| left.min(ROWS);
    step_tiles(w, hidden, pre, h, c, h_next, rows, |r, t| match r {
        1 => cell(products_wide::<1>(t.a, hidden, t.w, t.init), t.c, t.h),
        2 => cell(products_wide::<2>(t.a, hidden, t.w, t.init), t.c, t.h),
        3 => cell(products_wide::<3>(t.a, hidden, t.w, t.init), t.c, t.h),
        4 => cell(products_wide::<4>(t.a, hidden, t.w, t.init), t.c, t.h),
        5 => cell(products_wide::<5>(t.a, hidden, t.w, t.init), t.c, t.h),
        _ => cell(products_wide::<6>(t.a, hidden, t.w, t.init), t.c, t.h),
    })
}

/// A tile of a step: the rows' hidden states, the block's recurrent weights, the rows' input
/// projections (where the gates' sums start), and the rows' cell and next hidden states.
struct StepTile {
    a: [*const f32; ROWS],
    w: *const f32,
    init: [*const f32; ROWS],
    c: [*mut f32; ROWS],
    h: [*mut f32; ROWS],
}

/// Calls `run(r, tile)` on every block of 8 units and every tile of rows, `rows(left)` rows a
/// tile when `left` are left.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_tiles(
    w: &[f32],
    hidden: usize,
    pre: &[*const f32],
    h: &[f32],
    c: &mut [f32],
    h_next: &mut [f32],
    rows: impl Fn(usize) -> usize,
    mut run: impl FnMut(usize, &StepTile),
) {
    let count = pre.len();
    let (w, h, c, h_next) = (w.as_ptr(), h.as_ptr(), c.as_mut_ptr(), h_next.as_mut_ptr());
    for block in 0..hidden / UNITS {
        let w = w.add(block * hidden * BLOCK);
        let mut row = 0;
        while row < count {
            let r = rows(count - row);
            let at = |i: usize| row + i.min(r - 1);
            let state = |i: usize| at(i) * hidden + block * UNITS;
            let tile = StepTile {
                a: std::array::from_fn(|i| h.add(at(i) * hidden)),
                w,
                init: std::array::from_fn(|i| pre[at(i)].add(block * BLOCK)),
                c: std::array::from_fn(|i| c.add(state(i))),
                h: std::array::from_fn(|i| h_next.add(state(i))),
            };
            run(r, &tile);
            row += r;
        }
    }
}

/// The LSTM cell on the gates of `R` rows: updates `c[r]` and writes `h[r]` (8 units each).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn cell<const R: usize>(gates: [[__m256; 4]; R], c: [*mut f32; ROWS], h: [*mut f32; ROWS]) {
    for (r, [i, f, g, o]) in gates.into_iter().enumerate() {
        let next = _mm256_fmadd_ps(sigmoid(f), _mm256_loadu_ps(c[r]), _mm256_mul_ps(sigmoid(i), tanh(g)));
        _mm256_storeu_ps(c[r], next);
        _mm256_storeu_ps(h[r], _mm256_mul_ps(sigmoid(o), tanh(next)));
    }
}

/// `encoder::tanh` on eight lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tanh(x: __m256) -> __m256 {
    let x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(TANH_CLAMP)), _mm256_set1_ps(-TANH_CLAMP));
    let x2 = _mm256_mul_ps(x, x);
    let (p, q) = (horner(x2, &TANH_P), horner(x2, &TANH_Q));
    _mm256_div_ps(_mm256_mul_ps(p, x), q)
}

/// The polynomial with `coefficients` (highest power first) at `x2`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn horner(x2: __m256, coefficients: &[f32]) -> __m256 {
    let mut p = _mm256_set1_ps(coefficients[0]);
    for &k in &coefficients[1..] {
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(k));
    }
    p
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sigmoid(x: __m256) -> __m256 {
    let half = _mm256_set1_ps(0.5);
    _mm256_fmadd_ps(half, tanh(_mm256_mul_ps(half, x)), half)
}
