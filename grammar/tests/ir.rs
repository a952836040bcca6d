//! Grammars built by hand with [`GrammarBuilder`]: the parser's hard cases
//! (left and right recursion, ambiguity, nullable rules, deep nesting),
//! declared lexemes (a JSON grammar, `&`/`~` lexemes), limits, the error
//! state, EOS and special tokens, rollback, reset, forced bytes and tokens.
//!
//! Character-level grammars are also checked exhaustively against the
//! reference recognizer (`common::reference`): every string over a small
//! alphabet up to a length, every byte of the mask at every node.

use std::sync::Arc;

use formwork_grammar::ir::{Expr, Grammar, GrammarBuilder, LexemeSpec};
use formwork_grammar::{CompiledGrammar, ErrorKind, Limits, Matcher, TokenId, Vocabulary};

use crate::common::oracle::check_forced_by_bytes;
use crate::common::reference::{RefState, Reference};
use crate::common::{self, bit, check_mask_against_oracle, show_token, Split, TestVocab};

fn lit(s: &str) -> Expr {
    Expr::Literal(s.into())
}

fn seq(v: Vec<Expr>) -> Expr {
    Expr::Seq(v)
}

fn alt(v: Vec<Expr>) -> Expr {
    Expr::Alt(v)
}

fn compile(g: &Grammar, tv: &TestVocab) -> CompiledGrammar {
    CompiledGrammar::new(g, Arc::clone(&tv.vocab), Limits::default())
        .unwrap_or_else(|e| panic!("compiling for {}: {e}", tv.name))
}

/// Feeds the greedy split of `s`, comparing the mask with the oracle before
/// every token when `oracle` (and at the end), and the mask bit with
/// `try_consume_token` always. `Ok(accepting at the end)`, or `Err` naming
/// the refused token or the disagreement.
fn feed(c: &CompiledGrammar, tv: &TestVocab, s: &str, oracle: bool) -> Result<bool, String> {
    let toks = tv
        .tokenizer
        .tokenize(s.as_bytes(), Split::Greedy)
        .ok_or_else(|| format!("{s:?} cannot be spelled in {}", tv.name))?;
    let mut m = c.matcher().map_err(|e| e.to_string())?;
    for (i, &(t, off)) in toks.iter().enumerate() {
        if oracle {
            check_mask_against_oracle(&mut m).map_err(|e| format!("{s:?} [{}] before token #{i}: {e}", tv.name))?;
        }
        let mask = m.compute_mask_vec().map_err(|e| e.to_string())?;
        let ok = m.try_consume_token(t).map_err(|e| e.to_string())?;
        if ok != bit(&mask, t) {
            return Err(format!("{s:?} [{}]: mask and try_consume_token disagree on token #{i}", tv.name));
        }
        if !ok {
            return Err(format!("{s:?} [{}]: token #{i} {} at byte {off} refused", tv.name, show_token(&tv.vocab, t)));
        }
    }
    if oracle {
        check_mask_against_oracle(&mut m).map_err(|e| format!("{s:?} [{}] at the end: {e}", tv.name))?;
    }
    let accepting = m.is_accepting().map_err(|e| e.to_string())?;
    let mask = m.compute_mask_vec().map_err(|e| e.to_string())?;
    for &e in tv.vocab.eos() {
        if bit(&mask, e) != accepting {
            return Err(format!("{s:?} [{}]: EOS bit is {} but is_accepting is {accepting}", tv.name, bit(&mask, e)));
        }
    }
    Ok(accepting)
}

/// Checks that every `accept` string is accepted and every `reject` string
/// is not, under the small vocabularies, with the oracle at every state.
fn check_strings(g: &Grammar, accept: &[&str], reject: &[&str]) {
    let mut fails = Vec::new();
    for tv in common::small_vocabs() {
        let c = compile(g, tv);
        for s in accept {
            if tv.tokenizer.tokenize(s.as_bytes(), Split::Greedy).is_none() {
                continue;
            }
            match feed(&c, tv, s, true) {
                Ok(true) => {}
                Ok(false) => fails.push(format!("{s:?} [{}]: not accepting at the end", tv.name)),
                Err(e) => fails.push(e),
            }
        }
        for s in reject {
            if tv.tokenizer.tokenize(s.as_bytes(), Split::Greedy).is_none() {
                continue;
            }
            match feed(&c, tv, s, true) {
                Ok(true) => fails.push(format!("{s:?} [{}]: accepted, should be rejected", tv.name)),
                Ok(false) => {}
                Err(e) if e.contains("refused") => {}
                Err(e) => fails.push(e),
            }
        }
    }
    assert!(fails.is_empty(), "{} failure(s):\n  {}", fails.len(), fails.join("\n  "));
}

/// Walks every string over `alphabet` up to `max_len` bytes that is a viable
/// prefix, with the byte vocabulary, and checks at every node that the mask
/// equals the reference recognizer's set of next bytes (bit for bit over all
/// 256 bytes), that EOS is allowed exactly when the reference accepts, that
/// `is_accepting` agrees, and that `forced_bytes`/`is_stopped` follow from
/// the masks.
fn exhaustive_against_reference(g: &Grammar, alphabet: &[u8], max_len: usize) {
    let reference = Reference::new(g);
    let c = compile(g, common::bytes());
    let mut m = c.matcher().unwrap();
    let mut path = Vec::new();
    let mut nodes = 0;
    walk(&reference, reference.start(), &mut m, alphabet, max_len, &mut path, &mut nodes);
    assert!(nodes > 1, "the walk visited only the root");
}

fn walk(
    reference: &Reference,
    st: RefState,
    m: &mut Matcher,
    alphabet: &[u8],
    max_len: usize,
    path: &mut Vec<u8>,
    nodes: &mut usize,
) {
    *nodes += 1;
    let at = String::from_utf8_lossy(path).into_owned();
    let mask = m.compute_mask_vec().unwrap_or_else(|e| panic!("after {at:?}: compute_mask: {e}"));
    let accepts = reference.accepts(&st);
    assert_eq!(m.is_accepting().unwrap(), accepts, "is_accepting after {at:?}");
    assert_eq!(bit(&mask, 256), accepts, "EOS bit after {at:?}");
    check_forced_by_bytes(m).unwrap_or_else(|e| panic!("after {at:?}: {e}"));
    let mut next = Vec::new();
    for b in 0..=255u8 {
        let mut s2 = st.clone();
        let viable = reference.step(&mut s2, b);
        assert_eq!(
            bit(&mask, b as TokenId),
            viable,
            "after {at:?}: the mask says byte {:?} is {}, the reference says {}",
            b as char,
            if bit(&mask, b as TokenId) { "allowed" } else { "refused" },
            if viable { "viable" } else { "not viable" }
        );
        if viable && alphabet.contains(&b) {
            next.push((b, s2));
        }
    }
    if path.len() == max_len {
        return;
    }
    for (b, s2) in next {
        assert!(m.try_consume_token(b as TokenId).unwrap());
        path.push(b);
        walk(reference, s2, m, alphabet, max_len, path, nodes);
        path.pop();
        m.rollback(1).unwrap();
    }
}

fn digit() -> Expr {
    Expr::class(vec![('0', '9')])
}

// ---- the parser's hard cases ----

/// `E -> E "+" T | E "-" T | T ; T -> [0-9]`
fn left_recursive() -> Grammar {
    let mut b = GrammarBuilder::new();
    let e = b.declare("E");
    let t = b.declare("T");
    b.define(
        e,
        alt(vec![
            seq(vec![Expr::Ref(e), lit("+"), Expr::Ref(t)]),
            seq(vec![Expr::Ref(e), lit("-"), Expr::Ref(t)]),
            Expr::Ref(t),
        ]),
    )
    .unwrap();
    b.define(t, digit()).unwrap();
    b.finish(e).unwrap()
}

#[test]
fn left_recursion() {
    let g = left_recursive();
    check_strings(&g, &["1", "1+2", "1+2-0+2+1+2+1+0"], &["", "+", "1+", "1++2", "12", "+1"]);
    exhaustive_against_reference(&g, b"1+-", 7);
}

/// `L -> "a" | "a" "," L | "(" L ")" L`
#[test]
fn right_recursion() {
    let mut b = GrammarBuilder::new();
    let l = b.declare("L");
    b.define(
        l,
        alt(vec![
            lit("a"),
            seq(vec![lit("a"), lit(","), Expr::Ref(l)]),
            seq(vec![lit("("), Expr::Ref(l), lit(")"), Expr::Ref(l)]),
        ]),
    )
    .unwrap();
    let g = b.finish(l).unwrap();
    check_strings(&g, &["a", "a,a,a", "(a)a", "(a,(a)a)a,a"], &["", "a,", ",a", "(a)", "aa", "(a))a"]);
    exhaustive_against_reference(&g, b"a,()", 7);
}

/// `S -> S S | "a" | "(" S ")"`: exponentially ambiguous.
#[test]
fn ambiguity() {
    let mut b = GrammarBuilder::new();
    let s = b.declare("S");
    b.define(
        s,
        alt(vec![seq(vec![Expr::Ref(s), Expr::Ref(s)]), lit("a"), seq(vec![lit("("), Expr::Ref(s), lit(")")])]),
    )
    .unwrap();
    let g = b.finish(s).unwrap();
    let long = "a".repeat(60);
    check_strings(&g, &["a", "aa", "aaaaaaa", "(aa)a", &long], &["", "b", "()", "(a", "a)"]);
    exhaustive_against_reference(&g, b"a()", 7);
}

/// Nullable rules at every position, including the start and mutual nullable
/// recursion: `S -> A B A ; A -> ε | "a" | A A ; B -> ε | "b" B A | C ; C -> B`.
#[test]
fn nullable_rules_everywhere() {
    let mut b = GrammarBuilder::new();
    let s = b.declare("S");
    let a = b.declare("A");
    let bb = b.declare("B");
    let c = b.declare("C");
    b.define(s, seq(vec![Expr::Ref(a), Expr::Ref(bb), Expr::Ref(a)])).unwrap();
    b.define(a, alt(vec![Expr::Empty, lit("a"), seq(vec![Expr::Ref(a), Expr::Ref(a)])])).unwrap();
    b.define(bb, alt(vec![Expr::Empty, seq(vec![lit("b"), Expr::Ref(bb), Expr::Ref(a)]), Expr::Ref(c)])).unwrap();
    b.define(c, Expr::Ref(bb)).unwrap();
    let g = b.finish(s).unwrap();
    // the language is a* b* a*
    check_strings(&g, &["", "a", "b", "aba", "abba", "bbbaaa", "aabbbaa"], &["c", "ab c", "aabbaba", "bab"]);
    exhaustive_against_reference(&g, b"abc", 7);
}

/// Repetitions with bounds, optional parts and empty alternatives mixed.
#[test]
fn repetition_bounds_against_reference() {
    let mut b = GrammarBuilder::new();
    let s = b.declare("S");
    let x = b.declare("X");
    b.define(
        s,
        seq(vec![
            Expr::Repeat { expr: Box::new(Expr::Ref(x)), min: 1, max: Some(3) },
            Expr::opt(lit("-")),
            Expr::Repeat { expr: Box::new(alt(vec![lit("a"), lit("bb"), Expr::Empty])), min: 2, max: Some(2) },
        ]),
    )
    .unwrap();
    b.define(x, alt(vec![lit("x"), seq(vec![lit("("), Expr::Ref(s), lit(")")])])).unwrap();
    let g = b.finish(s).unwrap();
    exhaustive_against_reference(&g, b"x-ab()", 6);
}

/// `P -> "(" P ")" | "x"` with 500 levels of parentheses in the input.
#[test]
fn deep_nesting() {
    let mut b = GrammarBuilder::new();
    let p = b.declare("P");
    b.define(p, alt(vec![seq(vec![lit("("), Expr::Ref(p), lit(")")]), lit("x")])).unwrap();
    let g = b.finish(p).unwrap();
    let depth = 500;
    let doc = format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
    for tv in [common::bytes(), common::synthetic()] {
        let c = compile(&g, tv);
        assert_eq!(feed(&c, tv, &doc, false), Ok(true), "[{}]", tv.name);
        // the oracle at the deepest points
        let mut m = c.matcher().unwrap();
        assert!(m.try_consume_bytes("(".repeat(depth).as_bytes()).unwrap());
        check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("[{}] at depth {depth}: {e}", tv.name));
        let mask = m.compute_mask_vec().unwrap();
        assert!(bit(&mask, b'(' as TokenId) && bit(&mask, b'x' as TokenId) && !bit(&mask, b')' as TokenId));
        assert!(m.try_consume_bytes(format!("x{}", ")".repeat(depth - 1)).as_bytes()).unwrap());
        check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("[{}] one `)` from the end: {e}", tv.name));
        assert!(!m.is_accepting().unwrap());
        assert!(m.try_consume_bytes(b")").unwrap());
        assert!(m.is_accepting().unwrap());
        assert!(!m.try_consume_bytes(b")").unwrap());
    }
}

// ---- declared lexemes ----

const JSON_STRING: &str = r#""([^"\\\x00-\x1F]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*""#;
const JSON_NUMBER: &str = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?";

/// JSON over declared lexemes: strings, numbers and whitespace are regex
/// lexemes, keywords and punctuation literal lexemes.
pub(crate) fn json_lexeme_grammar() -> Grammar {
    let mut b = GrammarBuilder::new();
    let value = b.declare("value");
    let object = b.declare("object");
    let array = b.declare("array");
    let member = b.declare("member");
    let string = b.lexeme("STRING", LexemeSpec::Regex(JSON_STRING.into()));
    let number = b.lexeme("NUMBER", LexemeSpec::Regex(JSON_NUMBER.into()));
    let ws = Expr::opt(b.lexeme("WS", LexemeSpec::Regex("[ \t\n]+".into())));
    let mut l = |s: &str| b.lexeme(s, LexemeSpec::Literal(s.into()));
    let (lb, rb, ls, rs, colon, comma) = (l("{"), l("}"), l("["), l("]"), l(":"), l(","));
    let (t, f, n) = (l("true"), l("false"), l("null"));
    b.define(value, alt(vec![Expr::Ref(object), Expr::Ref(array), string.clone(), number, t, f, n])).unwrap();
    b.define(member, seq(vec![string, ws.clone(), colon, ws.clone(), Expr::Ref(value)])).unwrap();
    let list = |item: Expr| {
        Expr::opt(seq(vec![item.clone(), Expr::star(seq(vec![ws.clone(), comma.clone(), ws.clone(), item]))]))
    };
    b.define(object, seq(vec![lb, ws.clone(), list(Expr::Ref(member)), ws.clone(), rb])).unwrap();
    b.define(array, seq(vec![ls, ws.clone(), list(Expr::Ref(value)), ws.clone(), rs])).unwrap();
    let root = b.declare("root");
    b.define(root, seq(vec![ws.clone(), Expr::Ref(value), ws])).unwrap();
    b.finish(root).unwrap()
}

const JSON_DOCS: &[&str] = &[
    r#"{"name":"Ada","age":36,"tags":["x","y"],"ok":true,"none":null}"#,
    r#"[1, -2.5, 3e10, 0.0E-2, true, false, null, "s\"\\\u00e9"]"#,
    "{\n  \"a\": {\"b\": [[], {}]},\n  \"c\": \"d\"\n}",
    r#""just a string""#,
    "0",
    "  -12.5e+3  ",
    r#"{"k":"日本語 😀"}"#,
];

#[test]
fn json_from_declared_lexemes() {
    let g = json_lexeme_grammar();
    check_strings(
        &g,
        JSON_DOCS,
        &[
            r#"{"a":1,}"#,
            "[1 2]",
            "[01]",
            r#"{"a" 1}"#,
            "{'a':1}",
            "tru",
            "[1,]",
            r#""a"#,
            "1.",
            "-",
            "[]]",
            "\"\t\"",
            "{\"a\":1}}",
        ],
    );
}

#[test]
fn json_from_declared_lexemes_over_smollm2() {
    let g = json_lexeme_grammar();
    let tv = common::smollm2();
    let c = compile(&g, tv);
    for doc in JSON_DOCS {
        assert_eq!(feed(&c, tv, doc, false), Ok(true), "{doc:?}");
    }
    // the oracle at a few states inside the first document
    let doc = JSON_DOCS[0].as_bytes();
    for cut in [0, 1, 2, 8, 9, 16, 24, doc.len()] {
        let mut m = c.matcher().unwrap();
        assert!(m.try_consume_bytes(&doc[..cut]).unwrap());
        check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("after {} bytes: {e}", cut));
    }
}

/// An identifier lexeme that excludes keywords: `[a-z]+ & ~(if | else)`.
fn ident_spec() -> LexemeSpec {
    LexemeSpec::And(vec![
        LexemeSpec::Regex("[a-z]+".into()),
        LexemeSpec::Not(Box::new(LexemeSpec::Or(vec![
            LexemeSpec::Literal("if".into()),
            LexemeSpec::Literal("else".into()),
        ]))),
    ])
}

#[test]
fn and_not_lexeme_alone() {
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let ident = b.lexeme("IDENT", ident_spec());
    b.define(root, ident).unwrap();
    let g = b.finish(root).unwrap();
    check_strings(
        &g,
        &["i", "iff", "e", "el", "els", "elsewhere", "x", "abc", "ifelse"],
        &["if", "else", "", "a1", "A"],
    );
}

/// Keywords and identifiers side by side: `("if" | IDENT) " " IDENT`. With
/// maximal munch, `if` is the keyword; `iff` is an identifier.
#[test]
fn and_not_lexeme_next_to_keywords() {
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let ident = b.lexeme("IDENT", ident_spec());
    let kw_if = b.lexeme("IF", LexemeSpec::Literal("if".into()));
    b.define(root, seq(vec![alt(vec![kw_if, ident.clone()]), lit(" "), ident])).unwrap();
    let g = b.finish(root).unwrap();
    check_strings(&g, &["if x", "iff x", "x y", "i elsewhere"], &["else x", "if if", "x else", "if", "if "]);
}

#[test]
fn concat_and_or_lexemes() {
    // a quoted word of at most 5 letters that is not "null": And + Concat + Not
    let spec = LexemeSpec::And(vec![
        LexemeSpec::Concat(vec![
            LexemeSpec::Literal("\"".into()),
            LexemeSpec::Regex("[a-z]{1,5}".into()),
            LexemeSpec::Literal("\"".into()),
        ]),
        LexemeSpec::Not(Box::new(LexemeSpec::Literal("\"null\"".into()))),
    ]);
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let word = b.lexeme("WORD", spec);
    b.define(root, seq(vec![lit("["), word.clone(), Expr::star(seq(vec![lit(","), word])), lit("]")])).unwrap();
    let g = b.finish(root).unwrap();
    check_strings(
        &g,
        &[r#"["a"]"#, r#"["nul","nulls"]"#, r#"["abcde","x"]"#],
        &[r#"["null"]"#, r#"["abcdef"]"#, r#"[""]"#, r#"["a","null"]"#],
    );
}

// ---- limits ----

fn expect_limit<T: std::fmt::Debug>(r: Result<T, formwork_grammar::Error>, limit: &str) {
    match r {
        Err(e) => match e.kind() {
            ErrorKind::Limit { limit: l, .. } if *l == limit => {}
            _ => panic!("expected a `{limit}` limit error, got: {e}"),
        },
        Ok(v) => panic!("expected a `{limit}` limit error, got Ok({v:?})"),
    }
}

/// Runs `f` on the matcher-level steps of feeding `s` byte by byte and
/// computing masks, returning the first error.
fn first_error(c: &CompiledGrammar, s: &[u8]) -> Result<(), formwork_grammar::Error> {
    let mut m = c.matcher()?;
    for &b in s {
        m.compute_mask_vec()?;
        m.consume_token(b as TokenId)?;
    }
    m.compute_mask_vec()?;
    Ok(())
}

fn ambiguous_ss() -> Grammar {
    let mut b = GrammarBuilder::new();
    let s = b.declare("S");
    b.define(s, alt(vec![seq(vec![Expr::Ref(s), Expr::Ref(s)]), lit("a")])).unwrap();
    b.finish(s).unwrap()
}

#[test]
fn limit_items_per_row() {
    let limits = Limits { max_items_per_row: 8, ..Limits::default() };
    let c = CompiledGrammar::new(&ambiguous_ss(), Arc::new(Vocabulary::bytes()), limits);
    expect_limit(c.and_then(|c| first_error(&c, &[b'a'; 40])), "max_items_per_row");
}

#[test]
fn limit_items_per_step() {
    let limits = Limits { max_items_per_step: 50, ..Limits::default() };
    let c = CompiledGrammar::new(&ambiguous_ss(), Arc::new(Vocabulary::bytes()), limits);
    expect_limit(c.and_then(|c| first_error(&c, &[b'a'; 40])), "max_items_per_step");
}

#[test]
fn limit_lexer_states() {
    let limits = Limits { max_lexer_states: 5, ..Limits::default() };
    let g = formwork_grammar::regex("[a-z]{0,50}").unwrap();
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), limits);
    expect_limit(c.and_then(|c| first_error(&c, b"abcdefghijkl")), "max_lexer_states");
}

#[test]
fn limit_grammar_size() {
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let x = b.lexeme("X", LexemeSpec::Literal("x".into()));
    b.define(root, Expr::Repeat { expr: Box::new(seq(vec![x.clone(), lit(","), x])), min: 1000, max: Some(2000) })
        .unwrap();
    let g = b.finish(root).unwrap();
    let limits = Limits { max_grammar_size: 100, ..Limits::default() };
    expect_limit(CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), limits), "max_grammar_size");
}

#[test]
fn limit_lexeme_states_on_a_blowup_regex() {
    // the DFA of "x followed by exactly 40 letters" somewhere in 300 letters
    // needs about 2^40 states: the builder must give up, not hang
    let g = formwork_grammar::regex("[a-z]{0,300}x[a-z]{40}").unwrap();
    let t = std::time::Instant::now();
    expect_limit(CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()), "max_lexeme_states");
    assert!(t.elapsed().as_secs() < 30, "giving up took {:?}", t.elapsed());
}

#[test]
fn limit_nesting_of_ir_expressions() {
    let mut e = lit("x");
    for _ in 0..5_000 {
        e = seq(vec![e]);
    }
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    b.define(root, e).unwrap();
    let g = b.finish(root).unwrap();
    expect_limit(CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()), "max_nesting");
}

#[test]
fn deeply_nested_regex_is_an_error_not_a_crash() {
    let re = format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(formwork_grammar::regex(&re).is_err());
}

#[test]
fn forced_bytes_are_bounded() {
    let g = formwork_grammar::regex("a{5000}").unwrap();
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let mut m = c.matcher().unwrap();
    let forced = m.forced_bytes().unwrap();
    assert_eq!(forced.len(), Limits::default().max_forced_bytes);
    assert!(forced.iter().all(|&b| b == b'a'));
}

// ---- the matcher's contract ----

fn digits_matcher() -> (CompiledGrammar, Matcher) {
    let g = formwork_grammar::regex("[0-9]+").unwrap();
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let m = c.matcher().unwrap();
    (c, m)
}

fn assert_stopped<T: std::fmt::Debug>(what: &str, r: Result<T, formwork_grammar::Error>) {
    match r {
        Err(e) if matches!(e.kind(), ErrorKind::Stopped(_)) => {}
        other => panic!("{what} after a rejected token: expected a Stopped error, got {other:?}"),
    }
}

#[test]
fn error_state_after_rejected_token() {
    let (c, mut m) = digits_matcher();
    m.consume_token(b'4' as TokenId).unwrap();
    let e = m.consume_token(b'x' as TokenId).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TokenRejected { token: 120, position: 1, .. }), "{e:?}");
    assert!(m.error().is_some());
    let mut mask = vec![0u32; c.mask_words()];
    assert_stopped("compute_mask", m.compute_mask(&mut mask));
    assert_stopped("compute_mask_vec", m.compute_mask_vec());
    assert_stopped("consume_token", m.consume_token(b'1' as TokenId));
    assert_stopped("consume_tokens", m.consume_tokens(&[b'1' as TokenId]));
    assert_stopped("try_consume_token", m.try_consume_token(b'1' as TokenId));
    assert_stopped("try_consume_bytes", m.try_consume_bytes(b"1"));
    assert_stopped("rollback", m.rollback(1));
    assert_stopped("is_accepting", m.is_accepting());
    assert_stopped("is_stopped", m.is_stopped());
    assert_stopped("forced_bytes", m.forced_bytes());
    assert_stopped("forced_tokens", m.forced_tokens());
    // still stopped on a second round
    assert_stopped("compute_mask (again)", m.compute_mask(&mut mask));
    m.reset().unwrap();
    assert!(m.error().is_none());
    let fresh = c.matcher().unwrap().compute_mask_vec().unwrap();
    assert_eq!(m.compute_mask_vec().unwrap(), fresh);
    m.consume_token(b'7' as TokenId).unwrap();
    assert!(m.is_accepting().unwrap());
}

#[test]
fn error_state_after_a_limit_error() {
    let limits = Limits { max_items_per_step: 50, ..Limits::default() };
    let c = CompiledGrammar::new(&ambiguous_ss(), Arc::new(Vocabulary::bytes()), limits).unwrap();
    let mut m = c.matcher().unwrap();
    let mut failed = false;
    for _ in 0..40 {
        if m.consume_token(b'a' as TokenId).is_err() || m.compute_mask_vec().is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the item limit was never hit");
    assert_stopped("compute_mask", m.compute_mask_vec());
    assert_stopped("try_consume_token", m.try_consume_token(b'a' as TokenId));
    m.reset().unwrap();
    m.consume_token(b'a' as TokenId).unwrap();
    assert!(m.is_accepting().unwrap());
}

#[test]
fn try_consume_refusal_is_not_an_error() {
    let (_c, mut m) = digits_matcher();
    assert!(!m.try_consume_token(b'x' as TokenId).unwrap());
    assert!(!m.try_consume_bytes(b"1x").unwrap());
    assert!(m.error().is_none());
    // a refused multi-byte unit leaves no partial state behind
    assert!(!m.is_accepting().unwrap());
    m.consume_token(b'1' as TokenId).unwrap();
    assert!(m.is_accepting().unwrap());
}

#[test]
fn out_of_range_and_wrong_mask_length() {
    let (c, mut m) = digits_matcher();
    let n = c.vocab().len() as TokenId;
    assert!(matches!(m.try_consume_token(n).unwrap_err().kind(), ErrorKind::TokenOutOfRange { .. }));
    let mut short = vec![0u32; c.mask_words() - 1];
    assert!(matches!(m.compute_mask(&mut short).unwrap_err().kind(), ErrorKind::MaskLength { .. }));
    // neither stops the matcher
    m.consume_token(b'1' as TokenId).unwrap();
}

#[test]
fn eos_only_when_accepting() {
    let tv = common::synthetic();
    let g = formwork_grammar::regex("(ab)+c?").unwrap();
    let c = compile(&g, tv);
    let eos = tv.eos()[0];
    let mut m = c.matcher().unwrap();
    for (i, b) in "abab".bytes().enumerate() {
        let accepting = m.is_accepting().unwrap();
        assert_eq!(bit(&m.compute_mask_vec().unwrap(), eos), accepting, "after {i} bytes");
        if !accepting {
            assert!(!m.try_consume_token(eos).unwrap(), "EOS consumed while not accepting");
            assert!(m.consume_token(eos).is_err(), "EOS consumed while not accepting");
            m.reset().unwrap();
            m.try_consume_bytes(&b"abab"[..i]).unwrap();
        }
        m.consume_token(b as TokenId).unwrap();
    }
    assert!(m.is_accepting().unwrap());
    assert!(!m.is_stopped().unwrap(), "`c` or more `ab` may follow");
    m.consume_token(eos).unwrap();
    assert!(m.is_stopped().unwrap());
    assert!(m.is_accepting().unwrap());
    assert!(m.compute_mask_vec().unwrap().iter().all(|&w| w == 0));
    assert!(!m.try_consume_token(b'c' as TokenId).unwrap());
    // rolling back EOS resumes
    m.rollback(1).unwrap();
    assert!(!m.is_stopped().unwrap());
    assert!(bit(&m.compute_mask_vec().unwrap(), eos));
    m.consume_token(b'c' as TokenId).unwrap();
    assert!(m.is_stopped().unwrap(), "nothing can follow `c`");
}

#[test]
fn stopped_when_nothing_can_follow() {
    let g = formwork_grammar::choices(&["yes", "no"]).unwrap();
    let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap();
    let mut m = c.matcher().unwrap();
    assert!(!m.is_stopped().unwrap());
    m.consume_tokens(&[b'n' as TokenId, b'o' as TokenId]).unwrap();
    assert!(m.is_stopped().unwrap(), "`no` is complete and nothing can follow");
    let mask = m.compute_mask_vec().unwrap();
    assert_eq!(common::oracle::allowed(&mask, c.vocab().len()), vec![256], "only EOS");
}

#[test]
fn special_tokens_never_allowed() {
    let tv = common::synthetic();
    let sp = common::synthetic_specials();
    // every special token's text is a sentence of these grammars
    let grammars = [
        formwork_grammar::choices(&["<pad>", "<|user|>", "\"a\"", "<eos>"]).unwrap(),
        formwork_grammar::regex("(?s).*").unwrap(),
    ];
    for g in &grammars {
        let c = compile(g, tv);
        let mut m = c.matcher().unwrap();
        let mask = m.compute_mask_vec().unwrap();
        for t in [sp.pad, sp.user, sp.quoted_a] {
            assert!(!bit(&mask, t), "special token {} allowed", show_token(&tv.vocab, t));
            assert!(!m.try_consume_token(t).unwrap(), "special token {} consumed", show_token(&tv.vocab, t));
        }
        // the same text spelled with ordinary tokens is fine
        let normal = tv.tokenizer.tokens_for(b"\"a\"");
        assert!(!normal.is_empty() && normal.iter().all(|&t| bit(&mask, t)));
        check_mask_against_oracle(&mut m).unwrap();
    }
}

#[test]
fn duplicate_tokens_are_both_allowed() {
    let tv = common::synthetic();
    let ids = tv.tokenizer.tokens_for(b"true");
    assert_eq!(ids.len(), 2, "the synthetic vocabulary has `true` twice");
    let g = formwork_grammar::choices(&["true", "false"]).unwrap();
    let c = compile(&g, tv);
    let mut m = c.matcher().unwrap();
    let mask = m.compute_mask_vec().unwrap();
    assert!(ids.iter().all(|&t| bit(&mask, t)));
    m.consume_token(ids[1]).unwrap();
    assert!(m.is_accepting().unwrap());
}

/// Masks recorded along a document are identical after rolling back any
/// number of tokens and consuming them again.
#[test]
fn rollback_then_reconsume_gives_identical_masks() {
    let g = json_lexeme_grammar();
    for tv in [common::synthetic(), common::smollm2()] {
        let c = compile(&g, tv);
        let doc = JSON_DOCS[0];
        let toks: Vec<TokenId> =
            tv.tokenizer.tokenize(doc.as_bytes(), Split::Greedy).unwrap().into_iter().map(|(t, _)| t).collect();
        let mut m = c.matcher().unwrap();
        let mut masks = vec![m.compute_mask_vec().unwrap()];
        let mut forced = vec![m.forced_bytes().unwrap()];
        for &t in &toks {
            m.consume_token(t).unwrap();
            masks.push(m.compute_mask_vec().unwrap());
            forced.push(m.forced_bytes().unwrap());
        }
        for k in [1, 2, 3, 5, toks.len() / 2, toks.len()] {
            m.rollback(k).unwrap();
            let at = toks.len() - k;
            assert_eq!(m.num_tokens(), at);
            assert!(m.compute_mask_vec().unwrap() == masks[at], "[{}] mask after rollback({k})", tv.name);
            assert_eq!(m.forced_bytes().unwrap(), forced[at], "[{}] forced after rollback({k})", tv.name);
            for (i, &t) in toks[at..].iter().enumerate() {
                m.consume_token(t).unwrap();
                assert!(
                    m.compute_mask_vec().unwrap() == masks[at + i + 1],
                    "[{}] mask at {} after rollback({k}) and re-consuming",
                    tv.name,
                    at + i + 1
                );
            }
        }
        // through EOS and back
        let eos = tv.eos()[0];
        m.consume_token(eos).unwrap();
        m.rollback(2).unwrap();
        assert!(m.compute_mask_vec().unwrap() == masks[toks.len() - 1]);
        // more than consumed is an error that leaves the matcher usable
        assert!(m.rollback(toks.len() + 5).is_err());
        assert!(m.compute_mask_vec().unwrap() == masks[toks.len() - 1]);
    }
}

#[test]
fn reset_and_clone_are_independent() {
    let g = json_lexeme_grammar();
    let tv = common::synthetic();
    let c = compile(&g, tv);
    let mut m = c.matcher().unwrap();
    let start = m.compute_mask_vec().unwrap();
    m.try_consume_bytes(br#"{"a":"#).unwrap();
    let mid = m.compute_mask_vec().unwrap();
    let mut clone = m.clone();
    clone.try_consume_bytes(b"[1,").unwrap();
    assert!(clone.compute_mask_vec().unwrap() != mid);
    assert!(m.compute_mask_vec().unwrap() == mid, "consuming on a clone changed the original");
    m.reset().unwrap();
    assert!(m.compute_mask_vec().unwrap() == start);
    assert_eq!(m.num_tokens(), 0);
    assert!(clone.try_consume_bytes(b"2]}").unwrap());
    assert!(clone.is_accepting().unwrap());
}

#[test]
fn compiled_grammar_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<CompiledGrammar>();
    assert_send::<Matcher>();
    let g = json_lexeme_grammar();
    let tv = common::synthetic();
    let c = compile(&g, tv);
    let doc = JSON_DOCS[2].as_bytes();
    let run = |c: CompiledGrammar| {
        let mut m = c.matcher().unwrap();
        let mut masks = Vec::new();
        for &b in doc {
            masks.push(m.compute_mask_vec().unwrap());
            m.consume_token(b as TokenId).unwrap();
        }
        masks
    };
    let (a, b) = std::thread::scope(|s| {
        let h1 = s.spawn(|| run(c.clone()));
        let h2 = s.spawn(|| run(c.clone()));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert!(a == b);
    assert!(a == run(c));
}

/// `{"name":"<letters>","age":<digits>}` with character-level literals, as a
/// JSON Schema front-end would lower a two-property object.
fn schema_like() -> Grammar {
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let string = b.lexeme("STRING", LexemeSpec::Regex(r#""[a-zA-Z ]*""#.into()));
    let int = b.lexeme("INT", LexemeSpec::Regex("(0|[1-9][0-9]{0,2})".into()));
    b.define(
        root,
        seq(vec![
            lit(r#"{"name":"#),
            string,
            lit(r#","age":"#),
            int,
            Expr::opt(seq(vec![
                lit(r#","email":""#),
                Expr::plus(Expr::class(vec![('a', 'z'), ('@', '@'), ('.', '.')])),
                lit("\""),
            ])),
            lit("}"),
        ]),
    )
    .unwrap();
    b.finish(root).unwrap()
}

#[test]
fn forced_bytes_and_tokens_on_a_schema_like_grammar() {
    let g = schema_like();
    let cases: &[(&str, &str)] = &[
        ("", r#"{"name":""#),
        (r#"{"#, r#""name":""#),
        (r#"{"name":"Ada"#, ""),
        (r#"{"name":"Ada""#, r#","age":"#),
        (r#"{"name":"Ada","age":0"#, ""),
        (r#"{"name":"Ada","age":123"#, ""),
        (r#"{"name":"Ada","age":123,"#, r#""email":""#),
        (r#"{"name":"Ada","age":1,"email":"a@b.c""#, "}"),
    ];
    for tv in [common::bytes(), common::tiny(), common::synthetic(), common::smollm2()] {
        let c = compile(&g, tv);
        for &(after, want) in cases {
            let mut m = c.matcher().unwrap();
            assert!(m.try_consume_bytes(after.as_bytes()).unwrap(), "{after:?} refused");
            let forced = m.forced_bytes().unwrap();
            assert_eq!(String::from_utf8_lossy(&forced), want, "[{}] forced after {after:?}", tv.name);
            let toks = m.forced_tokens().unwrap();
            let spelled: Vec<u8> = toks.iter().flat_map(|&t| tv.vocab.token_bytes(t).to_vec()).collect();
            assert!(forced.starts_with(&spelled), "[{}] forced tokens spell {spelled:?}", tv.name);
            if forced.len() > 1 && tv.name != "tiny" {
                assert!(!toks.is_empty(), "[{}] no forced token for {:?}", tv.name, want);
            }
            // the forced tokens are accepted, and what remains is still forced
            m.consume_tokens(&toks).unwrap();
            assert_eq!(m.forced_bytes().unwrap(), forced[spelled.len()..], "[{}] after the forced tokens", tv.name);
        }
    }
}

#[test]
fn forced_tokens_stop_only_where_a_longer_allowed_token_could_follow() {
    // Forced tokens end early only when a token that spells the rest of the
    // forced bytes *and more* is allowed (after `{"name":` the forced `"`
    // may become part of `"A`); where no allowed token extends the rest
    // (`,"age":` before a number, the final `}`), every forced byte is
    // covered by forced tokens.
    let g = schema_like();
    let starts = ["", r#"{"name":"Ada""#, r#"{"name":"Ada","age":12"#, r#"{"name":"Ada","age":1,"email":"a@b.c""#];
    for tv in [common::synthetic(), common::smollm2()] {
        let c = compile(&g, tv);
        for after in starts {
            let mut m = c.matcher().unwrap();
            assert!(m.try_consume_bytes(after.as_bytes()).unwrap(), "{after:?} refused");
            let forced = m.forced_bytes().unwrap();
            let toks = m.forced_tokens().unwrap();
            let spelled: Vec<u8> = toks.iter().flat_map(|&t| tv.vocab.token_bytes(t).to_vec()).collect();
            m.consume_tokens(&toks).unwrap();
            let rest = &forced[spelled.len()..];
            let mask = m.compute_mask_vec().unwrap();
            let allowed_longer = (0..tv.vocab.len() as TokenId).any(|t| {
                let b = tv.vocab.token_bytes(t);
                mask[t as usize / 32] & (1 << (t % 32)) != 0 && b.len() > rest.len() && b.starts_with(rest)
            });
            if rest.is_empty() {
                continue;
            }
            assert!(allowed_longer, "[{}] after {after:?}: forced tokens stopped short of {rest:?}", tv.name);
        }
    }
    // SmolLM2: `,"age":` is spelled entirely by forced tokens (no allowed
    // token continues `":` with a digit), and so is the closing `}`.
    let tv = common::smollm2();
    let c = compile(&g, tv);
    for (after, want) in [(r#"{"name":"Ada""#, r#","age":"#), (r#"{"name":"Ada","age":1,"email":"a@b.c""#, "}")] {
        let mut m = c.matcher().unwrap();
        assert!(m.try_consume_bytes(after.as_bytes()).unwrap());
        let toks = m.forced_tokens().unwrap();
        let spelled: Vec<u8> = toks.iter().flat_map(|&t| tv.vocab.token_bytes(t).to_vec()).collect();
        assert_eq!(String::from_utf8_lossy(&spelled), want, "forced tokens after {after:?}");
    }
}

// ---- lexeme inference must not change a character-level language ----
//
// The compiler merges character-level parts into maximal-munch lexemes where
// that "provably changes nothing". Each grammar below has a rule that would
// change the language if it were lexed greedily; the exhaustive comparison
// with the reference recognizer catches any such merge.

fn gbnf(src: &str) -> Grammar {
    formwork_grammar::gbnf::parse(src).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn inference_rule_followed_by_its_own_continuation() {
    // x could go on with " ": greedy x would swallow the separator
    exhaustive_against_reference(&gbnf("root ::= x \" \" \"b\"\nx ::= [a ]+"), b"a b", 7);
}

#[test]
fn inference_follow_set_from_several_contexts() {
    // FOLLOW(a) = {x, b}: in the second context a's continuation follows it
    exhaustive_against_reference(&gbnf("root ::= a \"x\" | a \"b\"\na ::= \"b\"+"), b"bx", 7);
}

#[test]
fn inference_follow_through_a_nullable_suffix() {
    // FOLLOW(a) includes "b" through the nullable `opt`
    exhaustive_against_reference(&gbnf("root ::= a opt \"b\"\nopt ::= \"c\"?\na ::= \"b\"+"), b"bc", 7);
}

#[test]
fn inference_follow_through_the_end_of_a_rule() {
    // FOLLOW(a) includes FOLLOW(wrap) = {b}
    exhaustive_against_reference(&gbnf("root ::= wrap \"b\"\nwrap ::= \"(\" a \")\" | a\na ::= \"b\"+"), b"b()", 7);
}

#[test]
fn inference_repeated_rule_next_to_itself() {
    // a a: FOLLOW(a) = FIRST(a)
    exhaustive_against_reference(&gbnf("root ::= a+\na ::= \"b\"+ \"c\" | \"b\""), b"bc", 7);
}

#[test]
fn inference_literal_prefix_of_another_literal() {
    // "ab" and "abc" both literals; "a" alone too
    exhaustive_against_reference(&gbnf("root ::= (\"ab\" | \"abc\" | \"a\") (\"c\" | \"bc\")?"), b"abc", 6);
}

#[test]
fn inference_rule_used_at_the_end_and_in_the_middle() {
    // num is followed by nothing (end) or by "." num: "1.5" and "1" and "1.5.5"?
    exhaustive_against_reference(&gbnf("root ::= num (\".\" num)*\nnum ::= [0-9]+ (\".\" [0-9]+)?"), b"1.", 7);
}

#[test]
fn inference_whitespace_runs_side_by_side() {
    exhaustive_against_reference(&gbnf("root ::= ws \"a\" ws ws1 \"b\" ws\nws ::= [ ]*\nws1 ::= [ ]+"), b" ab", 7);
}

#[test]
fn inference_bounded_repeats_of_overlapping_classes() {
    exhaustive_against_reference(&gbnf("root ::= [a-b]{1,3} [b-c]{1,2} \"a\"?"), b"abc", 6);
}

#[test]
fn inference_keyword_versus_identifier() {
    exhaustive_against_reference(
        &gbnf("root ::= stmt (\";\" stmt)*\nstmt ::= \"if\" \" \" id | id\nid ::= [a-z] [a-z]*"),
        b"if ;",
        6,
    );
}

#[test]
fn inference_json_like_with_multibyte_strings() {
    exhaustive_against_reference(
        &gbnf("root ::= \"[\" (v (\",\" v)*)? \"]\"\nv ::= \"\\\"\" [^\"]* \"\\\"\" | [0-9]+ | root"),
        "[\",1é]".as_bytes(),
        6,
    );
}

// ---- caches ----

/// The masks of every step of `doc`, fed by its greedy split.
fn masks_along(c: &CompiledGrammar, tv: &TestVocab, doc: &str) -> Vec<Vec<u32>> {
    let toks = tv.tokenizer.tokenize(doc.as_bytes(), Split::Greedy).unwrap();
    let mut m = c.matcher().unwrap();
    let mut out = vec![m.compute_mask_vec().unwrap()];
    for (t, _) in toks {
        m.consume_token(t).unwrap();
        out.push(m.compute_mask_vec().unwrap());
    }
    out
}

#[test]
fn evicting_the_mask_cache_changes_no_mask() {
    let g = json_lexeme_grammar();
    let tv = common::smollm2();
    let normal = compile(&g, tv);
    let limits = Limits { max_mask_cache_bytes: 1, ..Limits::default() };
    let evicting = CompiledGrammar::new(&g, Arc::clone(&tv.vocab), limits).unwrap();
    for doc in JSON_DOCS {
        assert!(masks_along(&normal, tv, doc) == masks_along(&evicting, tv, doc), "{doc:?}");
    }
}

#[test]
fn warm_caches_from_other_matchers_change_no_mask() {
    let g = json_lexeme_grammar();
    let tv = common::synthetic();
    let cold: Vec<Vec<Vec<u32>>> = JSON_DOCS.iter().map(|d| masks_along(&compile(&g, tv), tv, d)).collect();
    let shared = compile(&g, tv);
    // matchers come and go (their caches return to the pool), in two threads
    std::thread::scope(|s| {
        for k in 0..2 {
            let shared = shared.clone();
            let cold = &cold;
            s.spawn(move || {
                for round in 0..3 {
                    for (i, doc) in JSON_DOCS.iter().enumerate().skip(k) {
                        assert!(masks_along(&shared, tv, doc) == cold[i], "thread {k} round {round}: {doc:?}");
                    }
                }
            });
        }
    });
    // several live matchers at once, interleaved
    let mut ms: Vec<Matcher> = (0..3).map(|_| shared.matcher().unwrap()).collect();
    let docs: Vec<Vec<TokenId>> = JSON_DOCS[..3]
        .iter()
        .map(|d| tv.tokenizer.tokenize(d.as_bytes(), Split::Greedy).unwrap().into_iter().map(|(t, _)| t).collect())
        .collect();
    let longest = docs.iter().map(Vec::len).max().unwrap();
    for step in 0..=longest {
        for (i, m) in ms.iter_mut().enumerate() {
            if step < docs[i].len() {
                assert!(m.compute_mask_vec().unwrap() == cold[i][step], "interleaved doc {i} step {step}");
                m.consume_token(docs[i][step]).unwrap();
            }
        }
    }
}
