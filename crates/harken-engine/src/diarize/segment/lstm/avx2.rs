//! One LSTM direction on AVX2 + FMA, chosen at run time ([`available`]).
//!
//! Both products (the input projection of all steps at once, then each step's recurrent one)
//! run on one kernel: a tile of up to 3 rows by 32 columns, 12 accumulators, the weight matrix
//! packed at load time by blocks of 8 hidden units (the 4 gates' 32 columns side by side, so a
//! tile holds gates i, f, g and o of the same units). A step's recurrent product is small
//! (`chunks × 128` by `128 × 512`), so the general product spent much of it packing the weights
//! again; here a block's weights (16 KB) stay in L1 while every row uses them, and the gates'
//! nonlinearities and the cell update run on the accumulators directly. The nonlinearities are
//! `encoder::tanh`'s rational approximation, eight lanes at a time.
//!
//! `unsafe` (denied in the workspace) is allowed here only: intrinsics and `target_feature`
//! functions need it. The public functions check every length the kernels rely on first.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{GATES, HIDDEN};

/// Hidden units per block: one 256-bit vector.
const UNITS: usize = 8;
/// Columns per block: the 4 gates of `UNITS` units.
const BLOCK: usize = 4 * UNITS;
const BLOCKS: usize = HIDDEN / UNITS;
/// Rows per tile: 3 rows × 4 gates = 12 accumulators of the 16 vector registers, enough to
/// hide the FMA latency.
const ROWS: usize = 3;
/// Rows of the input projection done together, so that their inputs stay in L2 while every
/// block of weights passes over them.
const PANEL: usize = 96;

pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// A direction's weights, packed.
pub(super) struct Packed {
    inputs: usize,
    /// `w_in` (`inputs × 512`) as `[16][inputs][32]`: see [`pack`].
    w_in: Vec<f32>,
    /// `w_rec` (`128 × 512`) as `[16][128][32]`.
    w_rec: Vec<f32>,
    /// The summed biases as `[16][32]`.
    bias: Vec<f32>,
}

/// A `k × 512` matrix (gates `[i f g o]` of 128 columns each) by blocks of 8 units: block `b`,
/// row `k` holds the columns of units `8b..8b + 8` of gate i, then f, g, o.
fn pack(w: &[f32], k: usize) -> Vec<f32> {
    assert_eq!(w.len(), k * GATES, "weight is {k} × 512");
    let mut packed = Vec::with_capacity(k * GATES);
    for block in 0..BLOCKS {
        for row in w.chunks_exact(GATES) {
            for gate in 0..4 {
                let at = gate * HIDDEN + block * UNITS;
                packed.extend_from_slice(&row[at..at + UNITS]);
            }
        }
    }
    packed
}

impl Packed {
    /// `None` without AVX2 and FMA. `w_in`: `inputs × 512`; `w_rec`: `128 × 512`, row-major.
    pub(super) fn new(w_in: &[f32], w_rec: &[f32], bias: &[f32]) -> Option<Self> {
        let inputs = w_in.len() / GATES;
        let (w_rec, bias) = (pack(w_rec, HIDDEN), pack(bias, 1));
        available().then(|| Packed { inputs, w_in: pack(w_in, inputs), w_rec, bias })
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
        let rows = chunks * len;
        assert_eq!(x.len(), rows * self.inputs, "input is (chunks · len) × inputs");
        assert_eq!(out.dim(), (rows, HIDDEN), "output is (chunks · len) × 128");
        assert!(available(), "bug: the AVX2 LSTM called without AVX2 and FMA");
        // Each row's gates, blocked like the weights: `[16][32]`.
        let mut pre = vec![0.0f32; rows * GATES];
        // SAFETY: AVX2 and FMA are present; `x` holds `rows` rows of `inputs`, `pre` `rows`
        // rows of 512, and the packed weights `[16][inputs][32]` (checked in `new`).
        unsafe { project(x, self.inputs, &self.w_in, &self.bias, &mut pre) };
        let mut h = vec![0.0f32; chunks * HIDDEN];
        let mut h_next = h.clone();
        let mut c = h.clone();
        let mut pre_rows = vec![std::ptr::null(); chunks];
        for step in 0..len {
            let t = if reverse { len - 1 - step } else { step };
            for (k, p) in pre_rows.iter_mut().enumerate() {
                *p = pre[(k * len + t) * GATES..][..GATES].as_ptr();
            }
            // SAFETY: AVX2 and FMA are present; each of the `chunks` pointers starts a row of
            // 512 in `pre`; `h`, `c` and `h_next` are `chunks × 128`; `w_rec` is `[16][128][32]`.
            unsafe { step_avx2(&self.w_rec, &pre_rows, &h, &mut c, &mut h_next) };
            std::mem::swap(&mut h, &mut h_next);
            for (k, h) in h.chunks_exact(HIDDEN).enumerate() {
                out.row_mut(k * len + t).assign(&ndarray::aview1(h));
            }
        }
    }
}

/// `pre = bias + x · w_in`, `pre` blocked like the weights.
#[target_feature(enable = "avx2,fma")]
unsafe fn project(x: &[f32], inputs: usize, w: &[f32], bias: &[f32], pre: &mut [f32]) {
    let rows = x.len() / inputs;
    let (x, w, bias, pre) = (x.as_ptr(), w.as_ptr(), bias.as_ptr(), pre.as_mut_ptr());
    for panel in (0..rows).step_by(PANEL) {
        let end = rows.min(panel + PANEL);
        for block in 0..BLOCKS {
            let w = w.add(block * inputs * BLOCK);
            let init = [bias.add(block * BLOCK); ROWS];
            let mut row = panel;
            while row < end {
                let r = tile_rows(end - row);
                let a = |i: usize| x.add((row + i.min(r - 1)) * inputs);
                let dst = |i: usize| pre.add((row + i.min(r - 1)) * GATES + block * BLOCK);
                let a3 = [a(0), a(1), a(2)];
                let d3 = [dst(0), dst(1), dst(2)];
                match r {
                    1 => store(products::<1>(a3, inputs, w, init), d3),
                    2 => store(products::<2>(a3, inputs, w, init), d3),
                    _ => store(products::<ROWS>(a3, inputs, w, init), d3),
                }
                row += r;
            }
        }
    }
}

/// One step of `pre.len()` sequences: gates = pre + h · w_rec, then the cell and hidden updates.
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(w: &[f32], pre: &[*const f32], h: &[f32], c: &mut [f32], h_next: &mut [f32]) {
    let rows = pre.len();
    let (w, h, c, h_next) = (w.as_ptr(), h.as_ptr(), c.as_mut_ptr(), h_next.as_mut_ptr());
    for block in 0..BLOCKS {
        let w = w.add(block * HIDDEN * BLOCK);
        let mut row = 0;
        while row < rows {
            let r = tile_rows(rows - row);
            let at = |i: usize| row + i.min(r - 1);
            let a3 = [h.add(at(0) * HIDDEN), h.add(at(1) * HIDDEN), h.add(at(2) * HIDDEN)];
            let init = [pre[at(0)].add(block * BLOCK), pre[at(1)].add(block * BLOCK), pre[at(2)].add(block * BLOCK)];
            let state = |i: usize| at(i) * HIDDEN + block * UNITS;
            let c3 = [c.add(state(0)), c.add(state(1)), c.add(state(2))];
            let h3 = [h_next.add(state(0)), h_next.add(state(1)), h_next.add(state(2))];
            match r {
                1 => cell(products::<1>(a3, HIDDEN, w, init), c3, h3),
                2 => cell(products::<2>(a3, HIDDEN, w, init), c3, h3),
                _ => cell(products::<ROWS>(a3, HIDDEN, w, init), c3, h3),
            }
            row += r;
        }
    }
}

/// Rows for the next tile when `left` remain: 3, except 2 + 2 for the last 4 (two tiles of 8
/// accumulators hide the FMA latency better than 3 + 1).
fn tile_rows(left: usize) -> usize {
    if left == 4 { 2 } else { left.min(ROWS) }
}

/// `init[r] + a[r] · w` for the first `R` rows: `a[r]` a row of `k`, `w` a `[k][32]` block,
/// `init[r]` 32 values.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn products<const R: usize>(
    a: [*const f32; ROWS],
    k: usize,
    w: *const f32,
    init: [*const f32; ROWS],
) -> [[__m256; 4]; R] {
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (gate, v) in acc.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(init[r].add(gate * UNITS));
        }
    }
    for i in 0..k {
        let mut ai = [_mm256_setzero_ps(); R];
        for (r, v) in ai.iter_mut().enumerate() {
            *v = _mm256_set1_ps(*a[r].add(i));
        }
        let wi = w.add(i * BLOCK);
        // Gate by gate, so that one weight vector is live beside the accumulators and `ai`.
        #[allow(clippy::needless_range_loop)]
        for gate in 0..4 {
            let b = _mm256_loadu_ps(wi.add(gate * UNITS));
            for r in 0..R {
                acc[r][gate] = _mm256_fmadd_ps(ai[r], b, acc[r][gate]);
            }
        }
    }
    acc
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store<const R: usize>(acc: [[__m256; 4]; R], dst: [*mut f32; ROWS]) {
    for (r, acc) in acc.iter().enumerate() {
        for (gate, v) in acc.iter().enumerate() {
            _mm256_storeu_ps(dst[r].add(gate * UNITS), *v);
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

/// `encoder::tanh`'s numerator (odd, over `x²`, times `x`) and denominator, highest power first.
const TANH_P: [f32; 7] =
    [-2.760_768_5e-16, 2.000_188e-13, -8.604_672e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3];
const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// `encoder::tanh` on eight lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tanh(x: __m256) -> __m256 {
    let x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(7.905_311)), _mm256_set1_ps(-7.905_311));
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
