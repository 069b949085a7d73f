//! The AVX2 and AVX-512 paths against the portable one, on made-up weights.

use ndarray::Array2;

use super::Direction;

/// Deterministic values in `[-scale, scale)`.
fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn avx2_and_avx512_match_the_portable_path() {
    // The segmentation model's 128 units: 5 and 16 chunks, tiles of 3 + 2 and of
    // 3 + 3 + 3 + 3 + 2 + 2 rows (AVX2), of 5 and of 6 + 6 + 4 rows (AVX-512).
    for chunks in [5, 16] {
        compare(60, 128, chunks, 9);
    }
    compare(256, 128, 1, 40);
    // Sequences longer than a block of input projections: blocks of 32 + 32 + 6 steps.
    compare(60, 128, 3, 70);
    // GE2E's 256 units, on its 40 mel bands and on a layer below.
    compare(40, 256, 7, 12);
    compare(256, 256, 4, 20);
}

#[cfg(target_arch = "x86_64")]
fn compare(inputs: usize, hidden: usize, chunks: usize, len: usize) {
    let gates = 4 * hidden;
    let w_in = Array2::from_shape_vec((inputs, gates), noise(inputs * gates, 1, 0.3)).unwrap();
    // Smaller recurrent weights for more units, so the states neither saturate nor vanish.
    let scale = 0.3 * (128.0 / hidden as f32).sqrt();
    let w_rec = Array2::from_shape_vec((hidden, gates), noise(hidden * gates, 2, scale)).unwrap();
    let mut fast = Direction::new(w_in, w_rec, noise(gates, 3, 0.5));
    let kernels = crate::diarize::avx2::tests::kernels();
    if kernels.is_empty() {
        eprintln!("no AVX2 + FMA here: only the portable path exists");
    }
    let x = Array2::from_shape_vec((chunks * len, inputs), noise(chunks * len * inputs, 4, 1.0)).unwrap();
    // The kernels add the same products in the same order: the same states to the bit.
    let mut first: Vec<Array2<f32>> = Vec::new();
    for kernel in kernels {
        fast = fast.on_kernel(Some(kernel));
        for (i, reverse) in [false, true].into_iter().enumerate() {
            let mut a = Array2::<f32>::zeros((chunks * len, hidden));
            let mut b = a.clone();
            fast.run(x.view(), chunks, len, reverse, a.view_mut());
            fast.run_portable(x.view(), chunks, len, reverse, b.view_mut());
            let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{kernel:?}, {hidden} units: states differ by up to {worst} (reverse: {reverse})");
            assert!(a.iter().any(|&v| v.abs() > 0.1), "the states are not all near zero");
            match first.get(i) {
                Some(f) => assert!(f.iter().zip(&a).all(|(f, a)| f.to_bits() == a.to_bits()), "{kernel:?} differs"),
                None => first.push(a),
            }
        }
    }
}
