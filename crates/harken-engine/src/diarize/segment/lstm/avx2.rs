//! The LSTM's time step on AVX2 + FMA, chosen at run time (`available`).
//!
//! A step's recurrent product is small (`chunks × 128` by `128 × 512`), so a general matrix
//! product spends much of it packing the weights again; here they are packed once at load time
//! by blocks of 8 hidden units (the 4 gates' 32 columns, 16 KB, stay in L1 while every row uses
//! them), and the gates' nonlinearities and the cell update run on the accumulators directly.
//! The nonlinearities are `encoder::tanh`'s rational approximation, eight lanes at a time.
//!
//! `unsafe` (denied in the workspace) is allowed here only: intrinsics and `target_feature`
//! functions need it. Every pointer the kernel touches is derived from slices whose lengths
//! `step` checks first.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{GATES, HIDDEN};

/// Hidden units per block: one 256-bit vector.
const UNITS: usize = 8;
/// Rows (sequences) per tile: 3 rows × 4 gates = 12 accumulators of the 16 vector registers.
const ROWS: usize = 3;

pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `w_rec` (`128 × 512`, `h · w_rec`) by blocks of 8 units: block `b`, row `k` holds the
/// weights from `h[k]` to units `8b..8b + 8` of gate i, then f, g, o: `[16][128][4][8]`.
pub(super) fn pack(w_rec: &[f32]) -> Vec<f32> {
    assert_eq!(w_rec.len(), HIDDEN * GATES, "recurrent weight is 128 × 512");
    let mut packed = Vec::with_capacity(HIDDEN * GATES);
    for block in 0..HIDDEN / UNITS {
        for k in 0..HIDDEN {
            for gate in 0..4 {
                let at = k * GATES + gate * HIDDEN + block * UNITS;
                packed.extend_from_slice(&w_rec[at..at + UNITS]);
            }
        }
    }
    packed
}

/// One time step of `rows` sequences. `pre(r)`: row `r`'s input projection plus biases (512,
/// gates `[i f g o]`); `h`: the previous hidden states, `rows × 128`; `c`: the cells, updated in
/// place; `h_next`: the new hidden states.
pub(super) fn step<'a>(packed: &[f32], pre: impl Fn(usize) -> &'a [f32], h: &[f32], c: &mut [f32], h_next: &mut [f32]) {
    let rows = h.len() / HIDDEN;
    assert!(available(), "bug: the AVX2 LSTM step called without AVX2 and FMA");
    assert_eq!(packed.len(), HIDDEN * GATES, "packed recurrent weight");
    assert!(h.len() == rows * HIDDEN && c.len() == h.len() && h_next.len() == h.len(), "state sizes");
    let pre: Vec<*const f32> = (0..rows)
        .map(|r| {
            let p = pre(r);
            assert_eq!(p.len(), GATES, "input projection row");
            p.as_ptr()
        })
        .collect();
    // SAFETY: AVX2 and FMA are present (asserted above); every offset the kernel forms stays
    // within the slices whose lengths were just checked: `block · 8 + gate · 128 + 7 < 512` in a
    // `pre` row, `row · 128 + block · 8 + 7 < rows · 128` in `c` and `h_next`, `row · 128 + k` in
    // `h`, and `block · 4096 + k · 32 + 31 < 16 · 4096` in `packed`.
    unsafe { step_avx2(packed.as_ptr(), &pre, h.as_ptr(), c.as_mut_ptr(), h_next.as_mut_ptr()) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(packed: *const f32, pre: &[*const f32], h: *const f32, c: *mut f32, h_next: *mut f32) {
    let rows = pre.len();
    for block in 0..HIDDEN / UNITS {
        let w = packed.add(block * HIDDEN * 4 * UNITS);
        let mut row = 0;
        while row < rows {
            match rows - row {
                1 => tile::<1>(w, pre, row, block, h, c, h_next),
                2 => tile::<2>(w, pre, row, block, h, c, h_next),
                _ => tile::<ROWS>(w, pre, row, block, h, c, h_next),
            }
            row += ROWS.min(rows - row);
        }
    }
}

/// Units `8 · block ..` of rows `row .. row + R`: the gates, then `c` and `h_next`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize>(
    w: *const f32,
    pre: &[*const f32],
    row: usize,
    block: usize,
    h: *const f32,
    c: *mut f32,
    h_next: *mut f32,
) {
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        let p = pre[row + r].add(block * UNITS);
        for (gate, a) in acc.iter_mut().enumerate() {
            *a = _mm256_loadu_ps(p.add(gate * HIDDEN));
        }
    }
    let h = h.add(row * HIDDEN);
    for k in 0..HIDDEN {
        let mut hk = [_mm256_setzero_ps(); R];
        for (r, v) in hk.iter_mut().enumerate() {
            *v = _mm256_set1_ps(*h.add(r * HIDDEN + k));
        }
        let wk = w.add(k * 4 * UNITS);
        // Gate by gate, so that one weight vector is live beside the accumulators and `hk`.
        #[allow(clippy::needless_range_loop)]
        for gate in 0..4 {
            let b = _mm256_loadu_ps(wk.add(gate * UNITS));
            for r in 0..R {
                acc[r][gate] = _mm256_fmadd_ps(hk[r], b, acc[r][gate]);
            }
        }
    }
    for (r, [i, f, g, o]) in acc.into_iter().enumerate() {
        let at = (row + r) * HIDDEN + block * UNITS;
        let cell = _mm256_fmadd_ps(sigmoid(f), _mm256_loadu_ps(c.add(at)), _mm256_mul_ps(sigmoid(i), tanh(g)));
        _mm256_storeu_ps(c.add(at), cell);
        _mm256_storeu_ps(h_next.add(at), _mm256_mul_ps(sigmoid(o), tanh(cell)));
    }
}

/// `encoder::tanh` on eight lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tanh(x: __m256) -> __m256 {
    let x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(7.905_311)), _mm256_set1_ps(-7.905_311));
    let x2 = _mm256_mul_ps(x, x);
    let p = horner(x2, &[-2.760_768_5e-16, 2.000_188e-13, -8.604_672e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3]);
    let q = horner(x2, &[1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3]);
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
