//! Shared driver of the grammar fuzz targets.

use std::fmt;
use std::sync::{Arc, OnceLock};

use formwork::grammar::ir::Grammar;
use formwork::grammar::{CompiledGrammar, Error, Limits, Vocabulary};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};

/// Grammar text and the bytes to feed the matcher.
pub struct Input {
    pub grammar: String,
    pub feed: Vec<u8>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Input> {
        let grammar = String::arbitrary(u)?;
        let feed = Vec::<u8>::arbitrary(u)?;
        Ok(Input { grammar, feed })
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// Reproduce as a test (see fuzz_targets/common/mod.rs::run):")?;
        writeln!(f, "let grammar = {:?};", self.grammar)?;
        write!(f, "let feed: &[u8] = b\"{}\";", self.feed.escape_ascii())
    }
}

/// Small limits so one input cannot run long.
fn limits() -> Limits {
    Limits {
        max_grammar_size: 5_000,
        max_lexeme_states: 500,
        max_lexer_states: 2_000,
        max_items_per_step: 20_000,
        max_items_per_row: 2_000,
        max_nesting: 50,
        max_mask_cache_bytes: 1 << 20,
        max_forced_bytes: 64,
    }
}

/// A small vocabulary: every byte, some pairs, EOS.
fn vocab() -> Arc<Vocabulary> {
    static V: OnceLock<Arc<Vocabulary>> = OnceLock::new();
    V.get_or_init(|| {
        let mut toks: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for t in ["ab", "{\"", "\":", "\",", " \"", "12", "true", "()", "  ", "\n"] {
            toks.push(t.as_bytes().to_vec());
        }
        toks.push(b"<eos>".to_vec());
        let eos = (toks.len() - 1) as u32;
        Arc::new(Vocabulary::new(toks, &[], &[eos]).expect("valid vocabulary"))
    })
    .clone()
}

/// Parses, compiles and drives a matcher; panics only on a broken invariant.
pub fn run(input: &Input, parse: fn(&str) -> Result<Grammar, Error>) {
    if input.grammar.len() > 4096 || input.feed.len() > 256 {
        return;
    }
    let Ok(grammar) = parse(&input.grammar) else { return };
    let vocab = vocab();
    let Ok(compiled) = CompiledGrammar::new(&grammar, vocab.clone(), limits()) else { return };
    let Ok(mut m) = compiled.matcher() else { return };
    let mut mask = vec![0u32; compiled.mask_words()];
    for &b in &input.feed {
        if m.compute_mask(&mut mask).is_err() {
            return;
        }
        // a byte token is allowed iff consuming it succeeds
        let allowed = mask[b as usize / 32] >> (b % 32) & 1 == 1;
        match m.try_consume_token(b as u32) {
            Ok(ok) => assert_eq!(ok, allowed, "mask and consume disagree on byte {b:#04x}"),
            Err(_) => return,
        }
        if !allowed {
            return;
        }
    }
    let _ = m.forced_bytes();
    let _ = m.is_accepting();
    let n = m.num_tokens();
    if n > 0 {
        let before = m.compute_mask_vec().ok();
        let _ = m.rollback(1);
        let _ = m.try_consume_token(input.feed[n - 1] as u32);
        if let (Some(b), Ok(a)) = (before, m.compute_mask_vec()) {
            assert_eq!(a, b, "rollback then re-consume changed the mask");
        }
    }
}
