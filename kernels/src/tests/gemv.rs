//! GEMV: each kernel set's matrix-vector product against the scalar dot
//! product of each row (within the dot tolerance), row counts around the
//! multi-row kernels' widths, the matrix views, and the parallel version
//! (identical results to the single-threaded one).

use super::*;
use crate::gemv::{QuantMatrix, QuantizedVector, WeightBlocks};
use crate::quant::blocks_as_bytes;

/// (weights, activation source values) for a rows x cols matrix of `ty`.
struct Case {
    bytes: Vec<u8>,
    ty: QuantType,
    rows: usize,
    cols: usize,
    x: Vec<f32>,
}

fn make_case(ty: QuantType, rows: usize, cols: usize, seed: u64) -> Case {
    let mut rng = Gen::new(seed);
    let n = rows * cols / ty.block_weights();
    let bytes = match ty {
        QuantType::Q4_0 => blocks_as_bytes(&q4_0_blocks(&mut rng, n)).to_vec(),
        QuantType::Q4_1 => blocks_as_bytes(&q4_1_blocks(&mut rng, n)).to_vec(),
        QuantType::Q5_0 => blocks_as_bytes(&q5_0_blocks(&mut rng, n)).to_vec(),
        QuantType::Q8_0 => blocks_as_bytes(&q8_0_blocks(&mut rng, n)).to_vec(),
        QuantType::Q4K => blocks_as_bytes(&q4k_blocks(&mut rng, n)).to_vec(),
        QuantType::Q5K => blocks_as_bytes(&q5k_blocks(&mut rng, n)).to_vec(),
        QuantType::Q6K => blocks_as_bytes(&q6k_blocks(&mut rng, n)).to_vec(),
    };
    Case { bytes, ty, rows, cols, x: rng.activations(cols) }
}

/// Reference row results: scalar dot per row, plus each row's magnitude.
fn row_reference(w: &QuantMatrix<'_>, xq: &QuantizedVector) -> Vec<(f32, f64)> {
    (0..w.rows())
        .map(|r| {
            let row = w.row_range(r..r + 1);
            let mut out = [0.0f32];
            crate::gemv::gemv_with(&scalar::Scalar, &row, xq, &mut out);
            let mut wf = vec![0.0f32; w.cols()];
            row.dequantize_row(0, &mut wf);
            let xd: Vec<f64> = match xq {
                QuantizedVector::Q8_0(b) => ref_q8_0_act(b),
                QuantizedVector::Q8_1(b) => ref_q8_1_act(b),
                QuantizedVector::Q8K(b) => ref_q8k_act(b),
            };
            // Magnitude from the dequantized row: terms of K-quant weights
            // can cancel, so take them from the f64 reference.
            let terms: Vec<[f64; 2]> = match row.blocks() {
                WeightBlocks::Q4_0(b) => ref_q4_0(b),
                WeightBlocks::Q4_1(b) => ref_q4_1(b),
                WeightBlocks::Q5_0(b) => ref_q5_0(b),
                WeightBlocks::Q8_0(b) => ref_q8_0(b),
                WeightBlocks::Q4K(b) => ref_q4k(b),
                WeightBlocks::Q5K(b) => ref_q5k(b),
                WeightBlocks::Q6K(b) => ref_q6k(b),
            };
            (out[0], ref_dot(&terms, &xd).1)
        })
        .collect()
}

fn check_case(c: &Case) {
    let w = QuantMatrix::from_bytes(c.ty, c.rows, c.cols, &c.bytes).unwrap();
    assert_eq!(w.byte_len(), c.bytes.len());
    let xq = QuantizedVector::quantize(c.ty.activation(), &c.x);
    let reference = row_reference(&w, &xq);
    let nb = c.cols / c.ty.block_weights();
    for k in kernel_sets() {
        let mut out = vec![f32::NAN; c.rows];
        crate::gemv::gemv_with(k, &w, &xq, &mut out);
        for (r, (&got, &(want, mag))) in out.iter().zip(&reference).enumerate() {
            let tol = tolerance(nb, mag, 0.0);
            assert!(
                (f64::from(got) - f64::from(want)).abs() <= tol,
                "{} {} {}x{} row {r}: {got} vs {want}",
                k.name(),
                c.ty,
                c.rows,
                c.cols
            );
        }
        // Any row range gives the same values as the full product.
        for (a, b) in [(0, c.rows), (1, c.rows), (c.rows / 2, c.rows), (0, c.rows.min(3))] {
            if a > b {
                continue;
            }
            let mut part = vec![f32::NAN; b - a];
            crate::gemv::gemv_with(k, &w.row_range(a..b), &xq, &mut part);
            assert_eq!(&part[..], &out[a..b], "{} {} rows {a}..{b}", k.name(), c.ty);
        }
    }
}

#[test]
fn all_formats_row_counts() {
    for ty in QuantType::ALL {
        let bw = ty.block_weights();
        for rows in [0, 1, 2, 3, 4, 5, 7, 8, 9, 13] {
            for blocks in [1, 2, 3, 5] {
                check_case(&make_case(ty, rows, blocks * bw, (rows * 31 + blocks) as u64));
            }
        }
    }
}

#[test]
fn model_shapes() {
    // SmolLM2-135M: hidden 576, MLP 1536; Gemma 3 270M: hidden 640, MLP 2048.
    check_case(&make_case(QuantType::Q4_1, 67, 576, 1));
    check_case(&make_case(QuantType::Q4_1, 61, 1536, 2));
    check_case(&make_case(QuantType::Q8_0, 45, 576, 3));
    check_case(&make_case(QuantType::Q5_0, 33, 640, 4));
    check_case(&make_case(QuantType::Q4K, 19, 2048, 5));
    check_case(&make_case(QuantType::Q6K, 21, 2048, 6));
}

#[test]
fn matrix_errors() {
    let bytes = vec![0u8; 20 * 4];
    assert!(QuantMatrix::from_bytes(QuantType::Q4_1, 2, 64, &bytes).is_ok());
    assert!(QuantMatrix::from_bytes(QuantType::Q4_1, 2, 65, &bytes).is_err());
    assert!(QuantMatrix::from_bytes(QuantType::Q4_1, 3, 64, &bytes).is_err());
    assert!(QuantMatrix::from_bytes(QuantType::Q4_1, usize::MAX, 64, &bytes).is_err());
    assert!(QuantMatrix::from_bytes(QuantType::Q4K, 1, 256, &bytes).is_err());
    let e = QuantMatrix::from_bytes(QuantType::Q4_1, 2, 65, &bytes).unwrap_err();
    assert!(e.to_string().contains("65"), "{e}");
}

#[test]
#[should_panic(expected = "activations")]
fn wrong_activation_format_panics() {
    let bytes = vec![0u8; 20 * 2];
    let w = QuantMatrix::from_bytes(QuantType::Q4_1, 1, 64, &bytes).unwrap();
    let xq = QuantizedVector::quantize(crate::quant::ActivationType::Q8_0, &[0.0; 64]);
    crate::gemv(&w, &xq, &mut [0.0]);
}

#[cfg(feature = "std")]
#[test]
fn parallel_is_identical() {
    use crate::gemv::{gemv_parallel_many, gemv_parallel_with, GemvTask};
    use crate::pool::ThreadPool;
    for threads in [1, 2, 3] {
        let pool = ThreadPool::new(threads);
        for (ty, rows, cols) in [
            (QuantType::Q4_1, 576, 576),
            (QuantType::Q4_1, 37, 64),
            (QuantType::Q8_0, 1000, 64),
            (QuantType::Q6K, 130, 512),
            (QuantType::Q4_0, 3, 32),
        ] {
            let c = make_case(ty, rows, cols, 9);
            let w = QuantMatrix::from_bytes(ty, rows, cols, &c.bytes).unwrap();
            let xq = QuantizedVector::quantize(ty.activation(), &c.x);
            for k in kernel_sets() {
                let mut single = vec![0.0; rows];
                crate::gemv::gemv_with(k, &w, &xq, &mut single);
                let mut par = vec![f32::NAN; rows];
                gemv_parallel_with(&pool, k, &w, &xq, &mut par);
                assert_eq!(single, par, "{} {ty} {rows}x{cols} threads {threads}", k.name());
            }
        }
        // Several products in one job.
        let a = make_case(QuantType::Q4_1, 100, 128, 10);
        let b = make_case(QuantType::Q4_1, 7, 128, 11);
        let wa = QuantMatrix::from_bytes(a.ty, a.rows, a.cols, &a.bytes).unwrap();
        let wb = QuantMatrix::from_bytes(b.ty, b.rows, b.cols, &b.bytes).unwrap();
        let xq = QuantizedVector::quantize(a.ty.activation(), &a.x);
        let (mut oa, mut ob) = (vec![0.0; 100], vec![0.0; 7]);
        let k = crate::dispatch::best();
        gemv_parallel_many(
            &pool,
            k,
            &mut [GemvTask { w: wa, x: &xq, out: &mut oa }, GemvTask { w: wb, x: &xq, out: &mut ob }],
        );
        let (mut ea, mut eb) = (vec![0.0; 100], vec![0.0; 7]);
        crate::gemv::gemv_with(k, &wa, &xq, &mut ea);
        crate::gemv::gemv_with(k, &wb, &xq, &mut eb);
        assert_eq!((oa, ob), (ea, eb));
    }
}

/// Batched products equal the per-vector GEMV bit for bit, for every kernel
/// set, format, and tile edge (rows and vector counts around 2 and 4; the
/// AVX2 kernel sums Q4_1 offsets eight vectors at a time: 9 and 17 cross
/// those groups).
#[test]
fn gemm_equals_gemv() {
    for ty in QuantType::ALL {
        let bw = ty.block_weights();
        for rows in [0, 1, 2, 3, 5, 8] {
            for vectors in [1, 2, 3, 4, 5, 9, 17] {
                for blocks in [1, 3] {
                    let cols = blocks * bw;
                    let c = make_case(ty, rows, cols, (rows * 7 + vectors * 3 + blocks) as u64);
                    let w = QuantMatrix::from_bytes(ty, rows, cols, &c.bytes).unwrap();
                    let mut gen = Gen::new(vectors as u64);
                    let xs = gen.activations(vectors * cols);
                    let xq = QuantizedVector::quantize(ty.activation(), &xs);
                    for k in kernel_sets() {
                        let mut batched = vec![f32::NAN; vectors * rows];
                        crate::gemv::gemm_with(k, &w, &xq, &mut batched);
                        for t in 0..vectors {
                            let xt = QuantizedVector::quantize(ty.activation(), &xs[t * cols..(t + 1) * cols]);
                            let mut single = vec![f32::NAN; rows];
                            crate::gemv::gemv_with(k, &w, &xt, &mut single);
                            assert_eq!(
                                &batched[t * rows..(t + 1) * rows],
                                &single[..],
                                "{} {ty} {rows}x{cols} vector {t} of {vectors}",
                                k.name()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(feature = "std")]
#[test]
fn gemm_parallel_is_identical() {
    use crate::gemv::gemm_parallel_with;
    use crate::pool::ThreadPool;
    for threads in [2, 3] {
        let pool = ThreadPool::new(threads);
        for (ty, rows, cols, vectors) in
            [(QuantType::Q4_1, 576, 576, 7), (QuantType::Q8_0, 301, 64, 3), (QuantType::Q6K, 37, 256, 5)]
        {
            let c = make_case(ty, rows, cols, 21);
            let w = QuantMatrix::from_bytes(ty, rows, cols, &c.bytes).unwrap();
            let xs = Gen::new(22).activations(vectors * cols);
            let xq = QuantizedVector::quantize(ty.activation(), &xs);
            for k in kernel_sets() {
                let mut single = vec![0.0; rows * vectors];
                crate::gemv::gemm_with(k, &w, &xq, &mut single);
                let mut par = vec![f32::NAN; rows * vectors];
                gemm_parallel_with(&pool, k, &w, &xq, &mut par);
                assert_eq!(single, par, "{} {ty} threads {threads}", k.name());
            }
        }
    }
}

/// Several batched products in one pool job equal [`crate::gemm`] per task:
/// q/k/v-like shapes sharing an input, another activation format, a task
/// with no vectors, and a matrix with no rows.
#[cfg(feature = "std")]
#[test]
fn gemm_parallel_many_is_identical() {
    use crate::gemv::{gemm_parallel_many, GemvTask};
    use crate::pool::ThreadPool;
    let vectors = 6;
    let q = make_case(QuantType::Q4_1, 576, 576, 31);
    let k = make_case(QuantType::Q4_1, 192, 576, 32);
    let e = make_case(QuantType::Q4_1, 0, 576, 33);
    let o = make_case(QuantType::Q8_0, 45, 64, 34);
    let wq = QuantMatrix::from_bytes(q.ty, q.rows, q.cols, &q.bytes).unwrap();
    let wk = QuantMatrix::from_bytes(k.ty, k.rows, k.cols, &k.bytes).unwrap();
    let we = QuantMatrix::from_bytes(e.ty, e.rows, e.cols, &e.bytes).unwrap();
    let wo = QuantMatrix::from_bytes(o.ty, o.rows, o.cols, &o.bytes).unwrap();
    let x1 = QuantizedVector::quantize(q.ty.activation(), &Gen::new(35).activations(vectors * 576));
    let x8 = QuantizedVector::quantize(o.ty.activation(), &Gen::new(36).activations(vectors * 64));
    let none = QuantizedVector::new(q.ty.activation());
    for threads in [1, 2, 3] {
        let pool = ThreadPool::new(threads);
        for kern in kernel_sets() {
            let mut outs =
                [vec![f32::NAN; vectors * 576], vec![f32::NAN; vectors * 192], vec![], vec![f32::NAN; vectors * 45]];
            let mut empty = [0.0f32; 0];
            let [oq, ok, oe, oo] = &mut outs;
            let mut tasks = [
                GemvTask { w: wq, x: &x1, out: oq },
                GemvTask { w: wk, x: &x1, out: ok },
                GemvTask { w: wk, x: &none, out: &mut empty },
                GemvTask { w: we, x: &x1, out: oe },
                GemvTask { w: wo, x: &x8, out: oo },
            ];
            gemm_parallel_many(&pool, kern, &mut tasks);
            for (w, x, got) in [(&wq, &x1, &outs[0]), (&wk, &x1, &outs[1]), (&wo, &x8, &outs[3])] {
                let mut want = vec![0.0; got.len()];
                crate::gemv::gemm_with(kern, w, x, &mut want);
                assert_eq!(got, &want, "{} {}x{} threads {threads}", kern.name(), w.rows(), w.cols());
            }
        }
    }
}
