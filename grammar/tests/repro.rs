//! Minimal reproductions of bugs found by the other tests. Each one failed
//! when it was written; once the bug is fixed it stays as a regression test.
//! Its doc comment says what was wrong and why.
//!
//! | test | status |
//! |:-----|:-------|
//! | `items_limit_accumulates_across_consumes` | fixed in db76927 |
//! | `items_limit_accumulates_across_try_consume_and_rollback` | fixed in db76927 |
//! | `c_grammar_mask_over_smollm2_within_default_limits` | fixed (lexeme inference, e04bc44) |
//! | `nullable_lexeme_keeps_its_language` | fixed in e04bc44 |
//! | `failed_try_consume_leaves_no_trace` | fixed in f3eae81 |
//! | `reset_after_a_failure_on_the_first_token_restores_the_start` | fixed in f3eae81 |
//! | `failed_forced_bytes_leaves_the_matcher_unchanged` | fixed in f3eae81 |
//! | `schema_integer_bound_beyond_u64_is_exact` | open |
//! | `schema_enum_and_const_numbers_are_exact` | open |
//! | `schema_decimal_bounds_are_exact` | open |
//! | `schema_string_with_length_or_pattern_compiles` | open at HEAD (passes with json_schema work in progress) |
//! | `schema_format_hostname_compiles_under_default_limits` | open |

use std::sync::Arc;

use formwork_grammar::ir::{Expr, GrammarBuilder, LexemeSpec};
use formwork_grammar::{CompiledGrammar, ErrorKind, Limits, Vocabulary};

use crate::common;

/// `max_items_per_step` is documented as the number of Earley items created
/// "while computing one mask or consuming one token", but the counter is
/// only reset by `compute_mask`: every `consume_token`/`try_consume_token`
/// in between adds to it. Feeding a long document without computing masks
/// (a prompt prefix, forced tokens, a validator) eventually fails with a
/// limit error although no single step is expensive.
#[test]
fn items_limit_accumulates_across_consumes() {
    // root ::= item* ; item ::= "a" | "b" | "(" item ")"  — recursive, so
    // the parser runs on every byte, creating a handful of items each.
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let item = b.declare("item");
    b.define(root, Expr::star(Expr::Ref(item))).unwrap();
    let paren = Expr::Seq(vec![Expr::Literal("(".into()), Expr::Ref(item), Expr::Literal(")".into())]);
    b.define(item, Expr::Alt(vec![Expr::Literal("a".into()), Expr::Literal("b".into()), paren])).unwrap();
    let g = b.finish(root).unwrap();
    let compiled = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let mut m = compiled.matcher().unwrap();
    for i in 0..300_000 {
        if let Err(e) = m.consume_token(if i % 2 == 0 { b'a' } else { b'b' } as u32) {
            panic!("consume_token #{i} failed on a one-byte step: {e}");
        }
    }
    assert!(m.is_accepting().unwrap());
}

/// Same counter, without even changing the state: trying one token and
/// rolling it back, many times (what a brute-force mask oracle or a
/// speculative decoder does), ends in a `max_items_per_step` error.
#[test]
fn items_limit_accumulates_across_try_consume_and_rollback() {
    // recursive, so it is not collapsed into one lexeme
    let g = formwork_grammar::gbnf::parse(
        r#"root ::= "[" (item ("," item)*)? "]"
item ::= "1" | root"#,
    )
    .unwrap();
    let compiled = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let mut m = compiled.matcher().unwrap();
    m.consume_token(b'[' as u32).unwrap();
    for i in 0..300_000 {
        match m.try_consume_token(b'1' as u32) {
            Ok(true) => m.rollback(1).unwrap(),
            Ok(false) => panic!("'1' refused after '['"),
            Err(e) => panic!("try_consume_token #{i} of the same token in the same state failed: {e}"),
        }
    }
}

/// llama.cpp's C example grammar (`testdata/grammars/c.gbnf`) cannot be used
/// with a real vocabulary under the default limits: after `int`, computing
/// the mask over SmolLM2's 49,152 tokens exceeds `max_items_per_step`
/// (500,000). The identifier rule `[a-zA-Z_] [a-zA-Z0-9_]{0,31}` and
/// `ws1 ::= [ \t\n]+` are not prefix-free, so lexeme inference keeps them
/// character-level: every byte of every token under the `" "` subtree of the
/// trie is a lexeme boundary that builds an Earley row, and `{0,31}` lowers
/// to a chain of 31 optional nonterminals, so each row is large.
#[test]
fn c_grammar_mask_over_smollm2_within_default_limits() {
    let src = std::fs::read_to_string(common::testdata_dir().join("grammars/c.gbnf")).unwrap();
    let g = formwork_grammar::gbnf::parse(&src).unwrap();
    let compiled = CompiledGrammar::new(&g, Arc::clone(&common::smollm2().vocab), Limits::default()).unwrap();
    let mut m = compiled.matcher().unwrap();
    assert!(m.try_consume_bytes(b"int").unwrap());
    let t = std::time::Instant::now();
    let r = m.compute_mask_vec();
    eprintln!("c.gbnf mask after `int` over SmolLM2: {:?}", t.elapsed());
    r.unwrap();
}

/// A declared lexeme whose language contains the empty string gets the
/// wrong language: `regex("(ab)*")` accepts `a` and `aba` and refuses `ab`
/// and `abab` (likewise `(ab)?` accepts `a`, `(abc)*` accepts `a`).
/// `Dfa::without_empty` (lexer/dfa.rs) copies the states into a
/// `RawBuilder` that already holds its own dead state 0, so original state
/// `s` gets its accept flag at id `s + 1` while the transitions keep using
/// id `s`: acceptance is shifted by one state. `a*` and `[0-9]*` hide it
/// because all their states accept.
#[test]
fn nullable_lexeme_keeps_its_language() {
    let g = formwork_grammar::regex("(ab)*").unwrap();
    let compiled = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let accepts = |s: &str| {
        let mut m = compiled.matcher().unwrap();
        m.try_consume_bytes(s.as_bytes()).unwrap() && m.is_accepting().unwrap()
    };
    let got: Vec<(&str, bool)> = ["", "a", "ab", "aba", "abab"].iter().map(|&s| (s, accepts(s))).collect();
    assert_eq!(got, [("", true), ("a", false), ("ab", true), ("aba", false), ("abab", true)]);
}

/// `root -> A B?` with declared lexemes `A = "a"`, `B = "b"`, and room for
/// only 3 lexer states: consuming `a` scans `A` (pushing a parser row) and
/// then fails to build the lexer state for `B`.
fn a_then_optional_b(max_lexer_states: usize) -> CompiledGrammar {
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let a = b.lexeme("A", LexemeSpec::Literal("a".into()));
    let bb = b.lexeme("B", LexemeSpec::Literal("b".into()));
    b.define(root, Expr::Seq(vec![a, Expr::opt(bb)])).unwrap();
    let g = b.finish(root).unwrap();
    let limits = Limits { max_lexer_states, ..Limits::default() };
    CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), limits).unwrap()
}

/// A call that fails with an error (not a refusal) must leave the matcher
/// either in the error state or exactly as it was. `try_consume_token`
/// breaks this: `advance` (matcher.rs) scans the lexeme — pushing a parser
/// row — then fails in `start_state`, and neither it nor
/// `consume_bytes_inner` (which restores only when a frame was pushed)
/// truncates the chart; `try_consume_token` does not set the error state
/// either. The matcher then says it accepts with nothing consumed.
#[test]
fn failed_try_consume_leaves_no_trace() {
    let c = a_then_optional_b(3);
    let mut m = c.matcher().unwrap();
    let r = m.try_consume_token(b'a' as u32);
    assert!(matches!(r.as_ref().map_err(|e| e.kind()), Err(ErrorKind::Limit { .. })), "{r:?}");
    match m.is_accepting() {
        Err(e) if matches!(e.kind(), ErrorKind::Stopped(_)) => {}
        Ok(false) => {}
        other => panic!("after a failed try_consume_token and nothing consumed, is_accepting() = {other:?}"),
    }
}

/// `reset()` restores the chart only when some byte was consumed
/// (`if let Some(f) = self.frames.first()`), so state left behind by a
/// failure on the very first token survives the reset: here the matcher
/// accepts the empty input after `reset()`.
#[test]
fn reset_after_a_failure_on_the_first_token_restores_the_start() {
    let c = a_then_optional_b(3);
    let mut m = c.matcher().unwrap();
    assert!(m.consume_token(b'a' as u32).is_err());
    m.reset().unwrap();
    assert_eq!(m.num_tokens(), 0);
    assert!(!m.is_accepting().unwrap(), "a reset matcher accepts the empty input");
}

/// `forced_bytes` consumes the forced bytes one by one to look further and
/// restores the state at the end — but an error on the way (`?` on
/// `only_next_byte`/`consume_byte`) returns before the restore, so the
/// matcher silently keeps the bytes it looked at, without the error state
/// and without counting a token: here, after a failed `forced_bytes()` on
/// `abcdefghij`, the matcher refuses `a`.
#[test]
fn failed_forced_bytes_leaves_the_matcher_unchanged() {
    let g = formwork_grammar::regex("abcdefghij").unwrap();
    let limits = Limits { max_lexer_states: 5, ..Limits::default() };
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), limits).unwrap();
    let mut m = c.matcher().unwrap();
    assert!(m.forced_bytes().is_err());
    if m.error().is_none() {
        assert_eq!(m.num_tokens(), 0);
        assert!(m.try_consume_token(b'a' as u32).unwrap(), "`a` refused after a failed forced_bytes()");
    }
}

/// Whether the schema's grammar accepts each string (byte vocabulary).
#[cfg(feature = "json-schema")]
fn schema_accepts(schema: &str, strings: &[&str]) -> Vec<(String, bool)> {
    use formwork_grammar::json_schema::{from_str, JsonSchemaOptions};
    let (g, _) = from_str(schema, &JsonSchemaOptions::default()).unwrap();
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    strings
        .iter()
        .map(|s| {
            let mut m = c.matcher().unwrap();
            (s.to_string(), m.try_consume_bytes(s.as_bytes()).unwrap() && m.is_accepting().unwrap())
        })
        .collect()
}

/// JSON numbers in a schema are arbitrary-precision decimals, but the
/// compiler reads them as `f64` (serde_json without `arbitrary_precision`)
/// and writes the bound back with `f64`'s shortest round-trip decimal:
/// `maximum: 18446744073709551616` (2^64, exact in `f64`) becomes
/// `18446744073709552000`, so 18446744073709551617 ..= 18446744073709552000
/// are accepted. Same class: `maximum: 12345678901234567890123` accepts
/// 12345678901234567890124; `minimum: -18446744073709551617` accepts
/// -18446744073709551618.
#[cfg(feature = "json-schema")]
#[test]
fn schema_integer_bound_beyond_u64_is_exact() {
    let got = schema_accepts(
        r#"{"type": "integer", "maximum": 18446744073709551616}"#,
        &["18446744073709551616", "18446744073709551617", "18446744073709552000"],
    );
    let want: Vec<(String, bool)> =
        [("18446744073709551616", true), ("18446744073709551617", false), ("18446744073709552000", false)]
            .iter()
            .map(|&(s, b)| (s.to_string(), b))
            .collect();
    assert_eq!(got, want);
}

/// The same `f64` reading makes `enum`/`const` values wrong both ways: for
/// `enum: [18446744073709551617]` the grammar refuses the one valid value and
/// accepts `18446744073709552000` instead; for `const: 0.30000000000000001`
/// it accepts `0.3` and refuses `0.30000000000000001`.
#[cfg(feature = "json-schema")]
#[test]
fn schema_enum_and_const_numbers_are_exact() {
    assert_eq!(
        schema_accepts(r#"{"enum": [18446744073709551617]}"#, &["18446744073709551617", "18446744073709552000"]),
        [("18446744073709551617".to_string(), true), ("18446744073709552000".to_string(), false)]
    );
    assert_eq!(
        schema_accepts(r#"{"const": 0.30000000000000001}"#, &["0.30000000000000001", "0.3"]),
        [("0.30000000000000001".to_string(), true), ("0.3".to_string(), false)]
    );
}

/// Decimal bounds with more digits than `f64` keeps are rounded the same
/// way, in the unsound direction half of the time: `minimum:
/// 0.30000000000000001` accepts `0.3`, `maximum: 0.29999999999999999`
/// accepts `0.3`.
#[cfg(feature = "json-schema")]
#[test]
fn schema_decimal_bounds_are_exact() {
    assert_eq!(
        schema_accepts(r#"{"type": "number", "minimum": 0.30000000000000001}"#, &["0.3"]),
        [("0.3".to_string(), false)]
    );
    assert_eq!(
        schema_accepts(r#"{"type": "number", "maximum": 0.29999999999999999}"#, &["0.3"]),
        [("0.3".to_string(), false)]
    );
}

/// Every JSON Schema string with a length bound or a `pattern` fails to
/// compile: `{"type": "string", "maxLength": 3}` gives "invalid regex in
/// lexeme `string:…`: error building NFA". The string lexeme intersects the
/// JSON string syntax with byte-mode parts (`(?s-u:[\x20\x21\x23-…])`) that
/// can match bytes above 0x7F, and `Dfa::from_regex` builds with
/// regex-syntax in UTF-8 mode, which refuses such patterns (any declared
/// lexeme `(?-u:\xC3\xA9)` fails the same way; `(?-u:[\x20-\x7f])` works).
/// The message also hides the cause (regex-syntax's "pattern can match
/// invalid UTF-8").
#[cfg(feature = "json-schema")]
#[test]
fn schema_string_with_length_or_pattern_compiles() {
    use formwork_grammar::json_schema::{from_str, JsonSchemaOptions};
    let mut fails = Vec::new();
    for schema in [
        r#"{"type": "string", "maxLength": 3}"#,
        r#"{"type": "string", "minLength": 1}"#,
        r#"{"type": "string", "pattern": "^[a-c]+$"}"#,
    ] {
        let (g, _) = from_str(schema, &JsonSchemaOptions::default()).unwrap();
        if let Err(e) = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()) {
            fails.push(format!("{schema}: {e}"));
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// `{"type": "string", "format": "hostname"}` cannot be compiled under the
/// default limits: building the string lexeme's automaton exceeds
/// `max_lexeme_states` (20,000). Hostname labels are bounded (1 to 63
/// characters, 253 in all), and the intersection of those counted
/// repetitions with the JSON string syntax blows the DFA up.
#[cfg(feature = "json-schema")]
#[test]
fn schema_format_hostname_compiles_under_default_limits() {
    use formwork_grammar::json_schema::{from_str, JsonSchemaOptions};
    let (g, _) = from_str(r#"{"type": "string", "format": "hostname"}"#, &JsonSchemaOptions::default()).unwrap();
    let t = std::time::Instant::now();
    let r = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default());
    eprintln!("format hostname: {:?}", t.elapsed());
    r.unwrap();
}
