//! Decode speed of a GGUF model with formwork on one thread, built for
//! wasm32-wasip1 (with `simd128`) and run under a WASI runtime:
//!
//! ```sh
//! CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128" \
//!   cargo build --release --target wasm32-wasip1 --manifest-path benches/wasm-decode/Cargo.toml
//! node --no-warnings kernels/scripts/wasi-run.mjs \
//!   <target>/wasm32-wasip1/release/formwork-wasm-decode.wasm MODEL.gguf [DECODE [PROMPT [REPEAT]]]
//! ```
//!
//! The model file is read whole (`std::fs::read`: WASI has no mmap) into a
//! `Model::from_bytes`. It prefills `PROMPT` tokens (default 64), then
//! decodes `DECODE` tokens greedily (default 128), `REPEAT` times (default
//! 3), and prints the kernel set in use, the median prefill and decode
//! tokens/s and the weight bytes read per second while decoding, as one JSON
//! line. The same program builds natively, for a side-by-side figure.

use std::time::Instant;

use formwork::kernels::dispatch::best;
use formwork::model::{Model, ModelOptions};

fn arg(args: &[String], i: usize, default: usize) -> usize {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: formwork-wasm-decode MODEL.gguf [DECODE_TOKENS [PROMPT_TOKENS [REPEAT]]]");
        std::process::exit(2);
    };
    let (decode, prompt, repeat) = (arg(&args, 2, 128), arg(&args, 3, 64).max(1), arg(&args, 4, 3).max(1));

    let t0 = Instant::now();
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(1);
    });
    let opts = ModelOptions { threads: 1, context_len: prompt + decode + 1, memory_budget: None };
    let model = Model::from_bytes(bytes, &opts).unwrap_or_else(|e| {
        eprintln!("cannot load {path}: {e}");
        std::process::exit(1);
    });
    let load_s = t0.elapsed().as_secs_f64();
    let vocab = model.config().vocab_size;
    let prompt_tokens: Vec<u32> = (0..prompt).map(|i| ((i * 7919 + 13) % vocab) as u32).collect();
    let mut logits = vec![0.0f32; vocab];

    let (mut prefill_tps, mut decode_tps) = (Vec::new(), Vec::new());
    let mut last = 0;
    for _ in 0..repeat {
        let mut cache = model.new_cache();
        let t = Instant::now();
        model.forward(&prompt_tokens, &mut cache, &mut logits).expect("prefill");
        prefill_tps.push(prompt as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..decode {
            let next = (0..vocab).max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a))).unwrap_or(0);
            last = next as u32;
            model.forward(&[last], &mut cache, &mut logits).expect("decode step");
        }
        decode_tps.push(decode as f64 / t.elapsed().as_secs_f64());
    }
    let (prefill, dec) = (median(prefill_tps), median(decode_tps));
    println!(
        "{{\"target\":\"{}\",\"kernels\":\"{}\",\"threads\":1,\"load_s\":{load_s:.3},\"prompt_tokens\":{prompt},\
         \"prefill_tokens_per_s\":{prefill:.2},\"decode_tokens\":{decode},\"decode_tokens_per_s\":{dec:.2},\
         \"decode_gb_per_s\":{:.3},\"last_token\":{last}}}",
        std::env::consts::ARCH,
        best().name(),
        dec * model.weight_bytes() as f64 / 1e9,
    );
}
