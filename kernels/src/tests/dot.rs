//! Dot products: scalar vs an f64 reference on the dequantized values, and
//! every kernel set vs scalar, over lengths that cross every unroll and
//! lane boundary (0..=17 blocks of 32; 0..=5 super-blocks of 256) and
//! random data (proptest over seeds and lengths).

use super::*;
use proptest::prelude::*;

/// Checks one case: `got_scalar` against the reference, every kernel set
/// against `got_scalar`.
fn check(
    what: &str,
    n_blocks: usize,
    reference: (f64, f64),
    extra: f64,
    scalar: f32,
    others: impl Fn(&dyn Kernels) -> f32,
) {
    let (want, mag) = reference;
    let tol = tolerance(n_blocks, mag, extra);
    assert!(
        (f64::from(scalar) - want).abs() <= tol,
        "{what} n={n_blocks}: scalar {scalar} vs reference {want} (tol {tol:e})"
    );
    for k in kernel_sets() {
        let got = others(k);
        let tol = tolerance(n_blocks, mag, 0.0);
        assert!(
            (f64::from(got) - f64::from(scalar)).abs() <= tol,
            "{what} n={n_blocks}: {} {got} vs scalar {scalar} (tol {tol:e})",
            k.name()
        );
    }
}

fn case_q4_0(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q4_0_blocks(&mut rng, n);
    let (_, x) = q8_0_activation(&mut rng, n);
    let r = ref_dot(&ref_q4_0(&w), &ref_q8_0_act(&x));
    check("q4_0", n, r, 0.0, scalar::dot_q4_0_q8_0(&w, &x), |k| k.dot_q4_0_q8_0(&w, &x));
}

fn case_q4_1(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q4_1_blocks(&mut rng, n);
    let (_, x) = q8_1_activation(&mut rng, n);
    let r = ref_dot(&ref_q4_1(&w), &ref_q8_1_act(&x));
    // `s` is d * Σq rounded to f16 from the unrounded d: relative error up
    // to 2^-11 from each of the two roundings.
    let extra: f64 = w
        .iter()
        .zip(&x)
        .map(|(bw, bx)| {
            let sum: i32 = bx.qs.iter().map(|&q| i32::from(q)).sum();
            f(bw.m).abs() * f(bx.d).abs() * f64::from(sum.abs()) * 2f64.powi(-9)
        })
        .sum();
    check("q4_1", n, r, extra, scalar::dot_q4_1_q8_1(&w, &x), |k| k.dot_q4_1_q8_1(&w, &x));
}

fn case_q5_0(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q5_0_blocks(&mut rng, n);
    let (_, x) = q8_0_activation(&mut rng, n);
    let r = ref_dot(&ref_q5_0(&w), &ref_q8_0_act(&x));
    check("q5_0", n, r, 0.0, scalar::dot_q5_0_q8_0(&w, &x), |k| k.dot_q5_0_q8_0(&w, &x));
}

fn case_q8_0(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q8_0_blocks(&mut rng, n);
    let (_, x) = q8_0_activation(&mut rng, n);
    let r = ref_dot(&ref_q8_0(&w), &ref_q8_0_act(&x));
    check("q8_0", n, r, 0.0, scalar::dot_q8_0_q8_0(&w, &x), |k| k.dot_q8_0_q8_0(&w, &x));
}

fn case_q4k(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q4k_blocks(&mut rng, n);
    let (_, x) = q8k_activation(&mut rng, n);
    let r = ref_dot(&ref_q4k(&w), &ref_q8k_act(&x));
    check("q4k", n, r, 0.0, scalar::dot_q4k_q8k(&w, &x), |k| k.dot_q4k_q8k(&w, &x));
}

fn case_q5k(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q5k_blocks(&mut rng, n);
    let (_, x) = q8k_activation(&mut rng, n);
    let r = ref_dot(&ref_q5k(&w), &ref_q8k_act(&x));
    check("q5k", n, r, 0.0, scalar::dot_q5k_q8k(&w, &x), |k| k.dot_q5k_q8k(&w, &x));
}

fn case_q6k(seed: u64, n: usize) {
    let mut rng = Gen::new(seed);
    let w = q6k_blocks(&mut rng, n);
    let (_, x) = q8k_activation(&mut rng, n);
    let r = ref_dot(&ref_q6k(&w), &ref_q8k_act(&x));
    check("q6k", n, r, 0.0, scalar::dot_q6k_q8k(&w, &x), |k| k.dot_q6k_q8k(&w, &x));
}

#[test]
fn sweep_32_weight_formats() {
    for n in 0..=17 {
        for seed in 0..4 {
            case_q4_0(seed, n);
            case_q4_1(seed, n);
            case_q5_0(seed, n);
            case_q8_0(seed, n);
        }
    }
}

#[test]
fn sweep_k_formats() {
    for n in 0..=5 {
        for seed in 0..4 {
            case_q4k(seed, n);
            case_q5k(seed, n);
            case_q6k(seed, n);
        }
    }
}

/// Extreme quants: every weight and activation at the end of its range.
#[test]
fn extremes() {
    let x = [BlockQ8_0 { d: F16::from_f32(1.0), qs: [-127; 32] }; 3];
    let x1 = [BlockQ8_1 { d: F16::from_f32(1.0), s: F16::from_f32(-127.0 * 32.0), qs: [-127; 32] }; 3];
    let xk = [BlockQ8K { d: 1.0, qs: [-127; 256], bsums: [-127 * 16; 16] }; 2];
    for k in kernel_sets() {
        let w = [BlockQ8_0 { d: F16::from_f32(1.0), qs: [-128; 32] }; 3];
        assert_eq!(k.dot_q8_0_q8_0(&w, &x), 3.0 * 32.0 * 128.0 * 127.0, "{}", k.name());
        let w = [BlockQ4_0 { d: F16::from_f32(1.0), qs: [0; 16] }; 3];
        assert_eq!(k.dot_q4_0_q8_0(&w, &x), 3.0 * 32.0 * 8.0 * 127.0, "{}", k.name());
        let w = [BlockQ5_0 { d: F16::from_f32(1.0), qh: [0; 4], qs: [0; 16] }; 3];
        assert_eq!(k.dot_q5_0_q8_0(&w, &x), 3.0 * 32.0 * 16.0 * 127.0, "{}", k.name());
        let w = [BlockQ4_1 { d: F16::from_f32(1.0), m: F16::ZERO, qs: [0xff; 16] }; 3];
        assert_eq!(k.dot_q4_1_q8_1(&w, &x1), -3.0 * 32.0 * 15.0 * 127.0, "{}", k.name());
        let w = [BlockQ6K { ql: [0; 128], qh: [0; 64], scales: [-128; 16], d: F16::from_f32(1.0) }; 2];
        assert_eq!(k.dot_q6k_q8k(&w, &xk), -2.0 * 256.0 * 32.0 * 128.0 * 127.0, "{}", k.name());
        let w = [BlockQ4K { d: F16::from_f32(1.0), dmin: F16::ZERO, scales: [0xff; 12], qs: [0xff; 128] }; 2];
        assert_eq!(k.dot_q4k_q8k(&w, &xk), -2.0 * 256.0 * 63.0 * 15.0 * 127.0, "{}", k.name());
        let w =
            [BlockQ5K { d: F16::from_f32(1.0), dmin: F16::ZERO, scales: [0xff; 12], qh: [0xff; 32], qs: [0xff; 128] };
                2];
        assert_eq!(k.dot_q5k_q8k(&w, &xk), -2.0 * 256.0 * 63.0 * 31.0 * 127.0, "{}", k.name());
    }
}

#[test]
#[should_panic]
fn length_mismatch_panics() {
    let w = [BlockQ4_0::default(); 2];
    let x = [BlockQ8_0::default(); 3];
    crate::dot_q4_0_q8_0(&w, &x);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn prop_32_weight_formats(seed in any::<u64>(), n in 0usize..64) {
        case_q4_0(seed, n);
        case_q4_1(seed, n);
        case_q5_0(seed, n);
        case_q8_0(seed, n);
    }

    #[test]
    fn prop_k_formats(seed in any::<u64>(), n in 0usize..10) {
        case_q4k(seed, n);
        case_q5k(seed, n);
        case_q6k(seed, n);
    }
}
