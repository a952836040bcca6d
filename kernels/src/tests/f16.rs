//! f16 <-> f32 against the definition of binary16.

use crate::f16::{f16_bits_to_f32, f32_to_f16_bits, F16};
use proptest::prelude::*;

/// The value of half `h` from the definition, in f64.
fn half_value(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let e = i32::from((h >> 10) & 0x1f);
    let m = f64::from(h & 0x3ff);
    match e {
        0 => sign * m * 2f64.powi(-24),
        31 if m == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
    }
}

#[test]
fn every_half_converts_exactly_and_round_trips() {
    for h in 0..=u16::MAX {
        let v = f16_bits_to_f32(h);
        let want = half_value(h);
        if want.is_nan() {
            assert!(v.is_nan(), "{h:#06x}");
            // Quiet NaN round-trips as NaN.
            let back = f32_to_f16_bits(v);
            assert_eq!(back & 0x7c00, 0x7c00, "{h:#06x}");
            assert_ne!(back & 0x03ff, 0, "{h:#06x}");
        } else {
            assert_eq!(f64::from(v), want, "{h:#06x}");
            assert_eq!(f32_to_f16_bits(v), h, "{h:#06x}");
        }
    }
}

/// The nearest half by brute force over the neighbours, ties to even.
fn nearest_half(x: f32) -> u16 {
    let x64 = f64::from(x);
    let mut best = 0u16;
    let mut best_err = f64::INFINITY;
    // Only finite, non-negative halves; sign handled by the caller.
    for h in 0..0x7c00u16 {
        let err = (half_value(h) - x64.abs()).abs();
        if err < best_err || (err == best_err && h % 2 == 0) {
            best = h;
            best_err = err;
        }
    }
    // Beyond the largest half by at least half an ulp (2^4): infinity.
    if x64.abs() >= 65520.0 {
        best = 0x7c00;
    }
    best | if x.is_sign_negative() { 0x8000 } else { 0 }
}

#[test]
fn rounding_cases() {
    let cases = [
        0.0f32, -0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e9, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10, 6.1e-5, 6.097e-5,
        0.33333334, 1.0009766, 1.0004883, 1.0014648,
    ];
    for x in cases {
        assert_eq!(f32_to_f16_bits(x), nearest_half(x), "{x:e}");
    }
    assert_eq!(f32_to_f16_bits(f32::INFINITY), 0x7c00);
    assert_eq!(f32_to_f16_bits(f32::NEG_INFINITY), 0xfc00);
    assert!(F16::from_f32(f32::NAN).to_f32().is_nan());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn f32_to_f16_is_nearest(bits in any::<u32>()) {
        let x = f32::from_bits(bits);
        prop_assume!(x.is_finite());
        prop_assert_eq!(f32_to_f16_bits(x), nearest_half(x), "{:e}", x);
    }

    #[test]
    fn f32_to_f16_is_nearest_in_half_range(v in -70000.0f32..70000.0, scale in -30i32..2) {
        let x = v * 2f32.powi(scale);
        prop_assert_eq!(f32_to_f16_bits(x), nearest_half(x), "{:e}", x);
    }
}
