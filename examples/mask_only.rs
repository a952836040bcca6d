//! Walk a text through a grammar token by token, printing at each step how
//! many tokens the mask allows and what the grammar forces next. No model is
//! needed: this shows what the constrained decoder sees.
//!
//! ```text
//! cargo run --release --example mask_only -- [GRAMMAR.gbnf] [TEXT] [TOKENIZER.json]
//! ```
//!
//! Defaults: the JSON grammar in `grammar/testdata/grammars/json.gbnf`, a
//! small JSON document, and the SmolLM2 tokenizer vendored in
//! `grammar/testdata/tokenizers/`.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use formwork::grammar::{gbnf, lark, CompiledGrammar, Limits, TokenId, Vocabulary};

fn main() -> Result<(), Box<dyn Error>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let grammar_path = args.first().cloned().unwrap_or_else(|| format!("{root}/grammar/testdata/grammars/json.gbnf"));
    let text = args.get(1).cloned().unwrap_or_else(|| r#"{"name": "Ada", "langs": ["en", "fr"], "age": 36}"#.into());
    let tok_path =
        args.get(2).cloned().unwrap_or_else(|| format!("{root}/grammar/testdata/tokenizers/smollm2-135m.json"));

    let vocab = Arc::new(Vocabulary::from_tokenizer_json(&std::fs::read_to_string(&tok_path)?, &[])?);
    let source = std::fs::read_to_string(&grammar_path)?;
    let grammar = if grammar_path.ends_with(".lark") { lark::parse(&source)? } else { gbnf::parse(&source)? };
    let t0 = Instant::now();
    let compiled = CompiledGrammar::new(&grammar, vocab.clone(), Limits::default())?;
    println!("compiled {grammar_path} for {} tokens in {:.2?}", vocab.len(), t0.elapsed());

    let mut matcher = compiled.matcher()?;
    let mut mask = vec![0u32; compiled.mask_words()];
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        let t0 = Instant::now();
        matcher.compute_mask(&mut mask)?;
        let dt = t0.elapsed();
        let allowed: u32 = mask.iter().map(|w| w.count_ones()).sum();
        let forced = matcher.forced_bytes()?;
        // the longest allowed token that is a prefix of the rest of the text
        let pick = (0..vocab.len() as TokenId)
            .filter(|&t| mask[t as usize / 32] >> (t % 32) & 1 == 1 && rest.starts_with(vocab.token_bytes(t)))
            .max_by_key(|&t| vocab.token_bytes(t).len());
        let Some(t) = pick else {
            println!("the grammar rejects the text at {:?}", String::from_utf8_lossy(rest));
            return Ok(());
        };
        println!(
            "{:>8.1?} {:>6} allowed  forced {:<12?} -> {:?}",
            dt,
            allowed,
            String::from_utf8_lossy(&forced),
            String::from_utf8_lossy(vocab.token_bytes(t))
        );
        matcher.consume_token(t)?;
        rest = &rest[vocab.token_bytes(t).len()..];
    }
    println!("accepting: {}", matcher.is_accepting()?);
    Ok(())
}
