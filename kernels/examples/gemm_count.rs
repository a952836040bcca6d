//! A fixed amount of batched-product (or GEMV) work, for instruction counts
//! under a profiler (`valgrind --tool=callgrind`), where wall-clock timings
//! are too noisy to compare kernel changes.
//!
//! ```text
//! cargo run --release -p formwork-kernels --example gemm_count -- gemm q4_1 1536 576 32 10
//! ```
//!
//! Arguments: `gemm` or `gemv`, the weight type (`q4_0`, `q4_1`, `q5_0`,
//! `q8_0`), rows, columns, tokens (vectors; `gemv` runs one product per
//! token), repetitions. Prints a hash of the outputs' bits, so that the work
//! is not optimized away and two builds can be checked for identical results.

use formwork_kernels::quant::{blocks_as_bytes, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, QuantType};
use formwork_kernels::{gemm, gemv, QuantMatrix, QuantizedVector, F16};

/// SplitMix64, for reproducible inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn sym(&mut self, a: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.next() as u8)
    }
}

fn weights(ty: QuantType, n: usize, g: &mut Gen) -> Result<Vec<u8>, String> {
    Ok(match ty {
        QuantType::Q4_0 => {
            let b: Vec<BlockQ4_0> =
                (0..n).map(|_| BlockQ4_0 { d: F16::from_f32(g.sym(0.01)), qs: g.bytes() }).collect();
            blocks_as_bytes(&b).to_vec()
        }
        QuantType::Q4_1 => {
            let b: Vec<BlockQ4_1> = (0..n)
                .map(|_| BlockQ4_1 { d: F16::from_f32(g.sym(0.01)), m: F16::from_f32(g.sym(0.05)), qs: g.bytes() })
                .collect();
            blocks_as_bytes(&b).to_vec()
        }
        QuantType::Q5_0 => {
            let b: Vec<BlockQ5_0> =
                (0..n).map(|_| BlockQ5_0 { d: F16::from_f32(g.sym(0.01)), qh: g.bytes(), qs: g.bytes() }).collect();
            blocks_as_bytes(&b).to_vec()
        }
        QuantType::Q8_0 => {
            let b: Vec<BlockQ8_0> = (0..n)
                .map(|_| BlockQ8_0 { d: F16::from_f32(g.sym(0.001)), qs: g.bytes::<32>().map(|v| v as i8) })
                .collect();
            blocks_as_bytes(&b).to_vec()
        }
        other => return Err(format!("no example weights for {other}")),
    })
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, ty, rows, cols, tokens, reps] = args.as_slice() else {
        return Err("usage: gemm_count gemm|gemv TYPE ROWS COLS TOKENS REPS".into());
    };
    let ty = match ty.as_str() {
        "q4_0" => QuantType::Q4_0,
        "q4_1" => QuantType::Q4_1,
        "q5_0" => QuantType::Q5_0,
        "q8_0" => QuantType::Q8_0,
        other => return Err(format!("unknown weight type {other:?}")),
    };
    let num = |s: &str, what: &str| s.parse::<usize>().map_err(|e| format!("{what} {s:?}: {e}"));
    let (rows, cols, tokens, reps) =
        (num(rows, "rows")?, num(cols, "cols")?, num(tokens, "tokens")?, num(reps, "repetitions")?);
    if cols == 0 || cols % ty.block_weights() != 0 {
        return Err(format!("{cols} columns are not whole blocks of {}", ty.block_weights()));
    }
    let mut g = Gen(43);
    let bytes = weights(ty, rows * cols / ty.block_weights(), &mut g)?;
    let w = QuantMatrix::from_bytes(ty, rows, cols, &bytes).map_err(|e| e.to_string())?;
    let x: Vec<f32> = (0..cols * tokens).map(|_| g.sym(2.0)).collect();
    let mut out = vec![0.0f32; rows * tokens];
    // FNV-1a over the output bits: equal across builds iff every value is.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut mix = |out: &[f32]| {
        for v in out {
            hash = (hash ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3);
        }
    };
    match mode.as_str() {
        "gemm" => {
            let xq = QuantizedVector::quantize(ty.activation(), &x);
            for _ in 0..reps {
                gemm(&w, &xq, &mut out);
                mix(&out);
            }
        }
        "gemv" => {
            let xs: Vec<QuantizedVector> =
                x.chunks_exact(cols).map(|xt| QuantizedVector::quantize(ty.activation(), xt)).collect();
            for _ in 0..reps {
                for (xq, o) in xs.iter().zip(out.chunks_exact_mut(rows)) {
                    gemv(&w, xq, o);
                }
                mix(&out);
            }
        }
        other => return Err(format!("unknown mode {other:?} (gemm or gemv)")),
    }
    println!("{mode} {ty} {rows}x{cols} x{tokens} x{reps}: output hash {hash:016x}");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gemm_count: {e}");
        std::process::exit(2);
    }
}
