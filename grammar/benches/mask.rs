//! Mask benchmarks: a JSON grammar written in GBNF over real vocabularies.
//!
//! `cargo bench -p formwork-grammar --bench mask`
//!
//! States (named as in llguidance's benches): `VALUE_START` (after `": "`),
//! `IN_STRING` (inside a string value), `IN_NUMBER` (after a digit),
//! `AFTER_KEY` (after a key's closing quote), each warm (the per-lexer-state
//! cache filled) and `IN_STRING_COLD` (first visit of the state). `compile`
//! times `CompiledGrammar::new`. Before criterion runs, the mask time of every
//! token of a ~400-token document is printed (median, p99, max, warm).
//!
//! Vocabularies: SmolLM2 (vendored in `testdata/tokenizers/`) and Gemma 3
//! (`$FORMWORK_SHARED_DIR/tokenizers/gemma3-270m/tokenizer.json`, default
//! `../shared` beside the workspace; skipped with a message when absent).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use formwork_grammar::{gbnf, CompiledGrammar, Limits, Matcher, TokenId, Vocabulary};

const JSON_GBNF: &str = include_str!("../testdata/grammars/json.gbnf");

fn shared_dir() -> PathBuf {
    match std::env::var_os("FORMWORK_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

fn vocabularies() -> Vec<(&'static str, Arc<Vocabulary>)> {
    let mut out = Vec::new();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let smol = [
        manifest.join("testdata/tokenizers/smollm2-135m.json"),
        shared_dir().join("tokenizers/smollm2-135m/tokenizer.json"),
    ];
    let gemma = [shared_dir().join("tokenizers/gemma3-270m/tokenizer.json")];
    for (name, paths) in [("smollm2", &smol[..]), ("gemma3", &gemma[..])] {
        match paths.iter().find(|p| p.exists()) {
            Some(p) => {
                let json = std::fs::read_to_string(p).expect("tokenizer.json is readable");
                let v = Vocabulary::from_tokenizer_json(&json, &[]).expect("tokenizer.json parses");
                out.push((name, Arc::new(v)));
            }
            None => eprintln!("mask bench: {name} vocabulary not found (looked in {paths:?}); skipped"),
        }
    }
    out
}

/// Greedy longest-match tokenization (good enough to drive the matcher).
fn tokenize(v: &Vocabulary, text: &str) -> Vec<TokenId> {
    let mut by_first: Vec<Vec<TokenId>> = vec![Vec::new(); 256];
    for t in 0..v.len() as TokenId {
        if !v.is_special(t) {
            by_first[v.token_bytes(t)[0] as usize].push(t);
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let best = by_first[bytes[pos] as usize]
            .iter()
            .filter(|&&t| bytes[pos..].starts_with(v.token_bytes(t)))
            .max_by_key(|&&t| v.token_bytes(t).len())
            .copied()
            .expect("every byte of the document has a token");
        out.push(best);
        pos += v.token_bytes(best).len();
    }
    out
}

fn document() -> String {
    let mut s = String::from("[");
    for i in 0..12 {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!(
            r#"{{"id": {i}, "name": "user number {i}", "score": {}.{}e-3, "active": {}, "tags": ["a{i}", "b"], "note": null}}"#,
            i * 37 + 1,
            i % 10,
            i % 2 == 0
        ));
    }
    s.push(']');
    s
}

fn matcher_after(g: &CompiledGrammar, prefix: &str) -> Matcher {
    let mut m = g.matcher().expect("matcher");
    assert!(m.try_consume_bytes(prefix.as_bytes()).expect("consume"), "prefix {prefix:?} is valid JSON");
    m
}

fn print_document_profile(name: &str, g: &CompiledGrammar, v: &Vocabulary) {
    let toks = tokenize(v, &document());
    let mut mask = vec![0u32; g.mask_words()];
    // one pass to warm the caches, one measured
    let mut times = Vec::new();
    for pass in 0..2 {
        let mut m = g.matcher().expect("matcher");
        for &t in &toks {
            let t0 = Instant::now();
            m.compute_mask(&mut mask).expect("mask");
            let dt = t0.elapsed().as_nanos() as f64 / 1000.0;
            if pass == 1 {
                times.push(dt);
            }
            m.consume_token(t).expect("document token allowed");
        }
        assert!(m.is_accepting().expect("accepting"));
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "document profile [{name}, {} tokens, warm]: median {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us",
        times.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}

fn bench(c: &mut Criterion) {
    let grammar = gbnf::parse(JSON_GBNF).expect("json.gbnf parses");
    for (name, vocab) in vocabularies() {
        let g = CompiledGrammar::new(&grammar, vocab.clone(), Limits::default()).expect("compiles");
        print_document_profile(name, &g, &vocab);
        let mut group = c.benchmark_group(format!("mask/{name}"));
        group.throughput(Throughput::Elements(vocab.len() as u64));
        let states = [
            ("VALUE_START", r#"{"name": "#),
            ("IN_STRING", r#"{"name": "Alice Sm"#),
            ("IN_NUMBER", r#"{"age": 4"#),
            ("AFTER_KEY", r#"{"name""#),
        ];
        let mut mask = vec![0u32; g.mask_words()];
        for (state, prefix) in states {
            let mut m = matcher_after(&g, prefix);
            m.compute_mask(&mut mask).expect("mask");
            group.bench_function(BenchmarkId::from_parameter(state), |b| {
                b.iter(|| m.compute_mask(&mut mask).expect("mask"))
            });
        }
        group.bench_function(BenchmarkId::from_parameter("IN_STRING_COLD"), |b| {
            b.iter_batched(
                || {
                    let fresh = CompiledGrammar::new(&grammar, vocab.clone(), Limits::default()).expect("compiles");
                    matcher_after(&fresh, r#"{"name": "Alice Sm"#)
                },
                |mut m| m.compute_mask(&mut mask).expect("mask"),
                criterion::BatchSize::SmallInput,
            )
        });
        group.finish();
        c.bench_function(&format!("compile/{name}/json.gbnf"), |b| {
            b.iter(|| CompiledGrammar::new(&grammar, vocab.clone(), Limits::default()).expect("compiles"))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
