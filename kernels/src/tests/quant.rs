//! Block layouts, casting, and the scalar (de)quantizers against the f64
//! references.

use super::*;
use crate::quant::{blocks_as_bytes, cast_blocks, pack_scales_mins_k4, unpack_scales_mins_k4};

#[test]
fn k4_scales_pack_round_trip() {
    let mut rng = Gen::new(1);
    for _ in 0..1000 {
        let s: [u8; 12] = rng.bytes();
        let (sc, m) = unpack_scales_mins_k4(&s);
        assert_eq!(pack_scales_mins_k4(&sc, &m), s);
        for j in 0..8 {
            assert_eq!((f64::from(sc[j]), f64::from(m[j])), super::k4_scale_min(&s, j));
        }
    }
}

#[test]
fn cast_blocks_any_offset() {
    let mut rng = Gen::new(2);
    let bytes: Vec<u8> = (0..20 * 5 + 3).map(|_| rng.byte()).collect();
    for off in 0..3 {
        let b: &[BlockQ4_1] = cast_blocks(&bytes[off..off + 100]).unwrap();
        assert_eq!(b.len(), 5);
        assert_eq!(blocks_as_bytes(b), &bytes[off..off + 100]);
        assert_eq!(b[1].d.to_bits(), u16::from_le_bytes([bytes[off + 20], bytes[off + 21]]));
        assert_eq!(b[1].qs[0], bytes[off + 24]);
    }
    assert!(cast_blocks::<BlockQ4_1>(&bytes[..99]).is_none());
}

#[test]
fn quant_type_tables() {
    for t in QuantType::ALL {
        assert_eq!(QuantType::from_ggml_id(t.ggml_id()), Some(t));
        assert_eq!(t.row_bytes(t.block_weights() * 3), Some(3 * t.block_bytes()));
        assert_eq!(t.row_bytes(t.block_weights() + 1), None);
        assert_eq!(t.activation().block_len(), t.block_weights());
    }
    assert_eq!(QuantType::Q4K.block_bytes(), 144);
    assert_eq!(QuantType::Q6K.block_bytes(), 210);
    assert_eq!(QuantType::from_ggml_id(0), None);
}

fn assert_close_f32(got: &[f32], want: &[[f64; 2]], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, t)) in got.iter().zip(want).enumerate() {
        let w = t[0] + t[1];
        let tol = 4.0 * f64::from(f32::EPSILON) * (t[0].abs() + t[1].abs()) + 1e-30;
        assert!((f64::from(g) - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn dequantize_matches_reference() {
    let mut rng = Gen::new(3);
    for n in [0, 1, 2, 7] {
        let b = q4_0_blocks(&mut rng, n);
        let mut out = vec![0.0; n * 32];
        scalar::dequantize_q4_0(&b, &mut out);
        assert_close_f32(&out, &ref_q4_0(&b), "q4_0");

        let b = q4_1_blocks(&mut rng, n);
        scalar::dequantize_q4_1(&b, &mut out);
        assert_close_f32(&out, &ref_q4_1(&b), "q4_1");

        let b = q5_0_blocks(&mut rng, n);
        scalar::dequantize_q5_0(&b, &mut out);
        assert_close_f32(&out, &ref_q5_0(&b), "q5_0");

        let b = q8_0_blocks(&mut rng, n);
        scalar::dequantize_q8_0(&b, &mut out);
        assert_close_f32(&out, &ref_q8_0(&b), "q8_0");

        let mut out = vec![0.0; n * 256];
        let b = q4k_blocks(&mut rng, n);
        scalar::dequantize_q4k(&b, &mut out);
        assert_close_f32(&out, &ref_q4k(&b), "q4k");

        let b = q5k_blocks(&mut rng, n);
        scalar::dequantize_q5k(&b, &mut out);
        assert_close_f32(&out, &ref_q5k(&b), "q5k");

        let b = q6k_blocks(&mut rng, n);
        scalar::dequantize_q6k(&b, &mut out);
        assert_close_f32(&out, &ref_q6k(&b), "q6k");
    }
}

/// Quantizing then dequantizing stays within half a step of the scale
/// (plus the f16 rounding of the scale), and the side data is consistent.
#[test]
fn activation_quantizers_round_trip() {
    let mut rng = Gen::new(4);
    for n in [1, 3, 8] {
        let (x, q) = q8_0_activation(&mut rng, n);
        let back = ref_q8_0_act(&q);
        for (b, (xs, ys)) in q.iter().zip(x.chunks(32).zip(back.chunks(32))) {
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = f64::from(amax) / 127.0;
            for (&xi, &yi) in xs.iter().zip(ys) {
                assert!((f64::from(xi) - yi).abs() <= 0.5 * d + 2e-3 * f64::from(amax));
            }
            assert!(b.qs.iter().all(|&v| v != i8::MIN));
        }

        let (x, q) = q8_1_activation(&mut rng, n);
        for (b, xs) in q.iter().zip(x.chunks(32)) {
            let sum: i32 = b.qs.iter().map(|&v| i32::from(v)).sum();
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let s = f64::from(amax) / 127.0 * f64::from(sum);
            assert!((f(b.s) - s).abs() <= 1e-3 * s.abs() + 1e-6, "{} vs {s}", f(b.s));
        }

        let (x, q) = q8k_activation(&mut rng, n);
        let back = ref_q8k_act(&q);
        for (b, (xs, ys)) in q.iter().zip(x.chunks(256).zip(back.chunks(256))) {
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (&xi, &yi) in xs.iter().zip(ys) {
                assert!((f64::from(xi) - yi).abs() <= 0.5 * f64::from(b.d) * 1.0001);
            }
            for g in 0..16 {
                let s: i32 = b.qs[16 * g..16 * g + 16].iter().map(|&v| i32::from(v)).sum();
                assert_eq!(i32::from(b.bsums[g]), s);
            }
            assert!((f64::from(b.d) - f64::from(amax) / 127.0).abs() <= 1e-6 * f64::from(amax));
        }
    }
    // All zeros: zero scale, zero quants.
    let mut q = [BlockQ8K::default()];
    scalar::quantize_q8k(&[0.0; 256], &mut q);
    assert_eq!(q[0], BlockQ8K::default());
}

#[test]
fn weight_quantizers_round_trip() {
    let mut rng = Gen::new(5);
    let x = rng.activations(32 * 6);
    let mut back = vec![0.0; x.len()];

    let mut q = vec![BlockQ4_0::default(); 6];
    scalar::quantize_q4_0(&x, &mut q);
    scalar::dequantize_q4_0(&q, &mut back);
    for (xs, ys) in x.chunks(32).zip(back.chunks(32)) {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in xs.iter().zip(ys) {
            assert!((a - b).abs() <= amax / 8.0 * 0.51 + 1e-3 * amax, "{a} {b}");
        }
    }

    let mut q = vec![BlockQ4_1::default(); 6];
    scalar::quantize_q4_1(&x, &mut q);
    scalar::dequantize_q4_1(&q, &mut back);
    for (xs, ys) in x.chunks(32).zip(back.chunks(32)) {
        let lo = xs.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let hi = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for (a, b) in xs.iter().zip(ys) {
            assert!((a - b).abs() <= (hi - lo) / 15.0 * 0.51 + 2e-3 * (hi - lo + lo.abs()));
        }
    }

    let mut q = vec![BlockQ5_0::default(); 6];
    scalar::quantize_q5_0(&x, &mut q);
    scalar::dequantize_q5_0(&q, &mut back);
    for (xs, ys) in x.chunks(32).zip(back.chunks(32)) {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in xs.iter().zip(ys) {
            assert!((a - b).abs() <= amax / 16.0 * 0.51 + 1e-3 * amax, "{a} {b}");
        }
    }
}

/// Every kernel set quantizes activations exactly like the scalar code.
#[test]
fn activation_quantizers_agree() {
    let mut rng = Gen::new(6);
    for n in [1, 2, 5, 9] {
        let x = rng.activations(n * 256);
        let mut a0 = vec![BlockQ8_0::default(); n * 8];
        let mut a1 = vec![BlockQ8_1::default(); n * 8];
        let mut ak = vec![BlockQ8K::default(); n];
        scalar::quantize_q8_0(&x, &mut a0);
        scalar::quantize_q8_1(&x, &mut a1);
        scalar::quantize_q8k(&x, &mut ak);
        for k in kernel_sets() {
            let mut b0 = vec![BlockQ8_0::default(); n * 8];
            let mut b1 = vec![BlockQ8_1::default(); n * 8];
            let mut bk = vec![BlockQ8K::default(); n];
            k.quantize_q8_0(&x, &mut b0);
            k.quantize_q8_1(&x, &mut b1);
            k.quantize_q8k(&x, &mut bk);
            assert_eq!(a0, b0, "{}", k.name());
            assert_eq!(a1, b1, "{}", k.name());
            assert_eq!(ak, bk, "{}", k.name());
        }
    }
}
