//! Time to first mask of JSON Schemas, by phase (schema -> IR, lowering and
//! lexer automata, first mask), for profiling the compiler.
//!
//! `cargo run --release -p formwork-grammar --example ttfm -- TOKENIZER.json [--reps N] FILE...`
//! where each FILE is a MaskBench file (`{"schema": ..., "tests": [...]}`) or a bare schema.
//! Options as `formwork maskbench --any-order` (strict mode, properties in any order).

use std::sync::Arc;
use std::time::Instant;

use formwork_grammar::json_schema::{self, JsonSchemaOptions, PropertyOrder};
use formwork_grammar::{CompiledGrammar, Limits, Vocabulary};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(tok) = args.first() else {
        eprintln!("usage: ttfm TOKENIZER.json [--reps N] FILE...");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(tok).expect("tokenizer");
    let vocab = Arc::new(Vocabulary::from_tokenizer_json(&text, &[]).expect("vocabulary"));
    let mut reps = 1;
    let mut files = Vec::new();
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        if a == "--reps" {
            reps = it.next().and_then(|s| s.parse().ok()).expect("--reps N");
        } else {
            files.push(a.clone());
        }
    }
    let opts = JsonSchemaOptions { property_order: PropertyOrder::Any { max_properties: 8 }, ..Default::default() };
    let mut totals = [0u128; 3];
    for f in &files {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).expect("file")).expect("json");
        let schema = v.get("schema").cloned().unwrap_or(v);
        for _ in 0..reps {
            let t0 = Instant::now();
            let g = json_schema::compile(&schema, &opts);
            let t1 = Instant::now();
            let c = g.and_then(|(g, _)| CompiledGrammar::new(&g, vocab.clone(), Limits::default()));
            let t2 = Instant::now();
            let m = c.and_then(|c| c.matcher().and_then(|mut m| m.compute_mask_vec()).map(|_| c));
            let t3 = Instant::now();
            let us = |a: Instant, b: Instant| b.duration_since(a).as_micros();
            let (a, b, d) = (us(t0, t1), us(t1, t2), us(t2, t3));
            totals[0] += a;
            totals[1] += b;
            totals[2] += d;
            let status = match &m {
                Ok(c) => format!("ok, {} terminals", c.num_terminals()),
                Err(e) => format!("error: {}", e.to_string().chars().take(80).collect::<String>()),
            };
            println!("{:>9} us = schema {a:>8} + lower {b:>8} + mask {d:>8}  {f}  {status}", a + b + d);
        }
    }
    println!("total: schema {} + lower {} + mask {} us", totals[0], totals[1], totals[2]);
}
