//! The test vocabularies themselves, and `Vocabulary`:
//!
//! * facts about the real vocabularies that the suite relies on (sizes, EOS,
//!   special tokens, byte decoding, SmolLM2's 21 missing bytes);
//! * the library's own `Vocabulary::from_tokenizer_json` agrees, token for
//!   token, with the test-side reader in `common`;
//! * `Vocabulary::new` edge cases, and masks over vocabulary sizes that are
//!   not multiples of 32.

use std::sync::Arc;

use formwork_grammar::{CompiledGrammar, ErrorKind, Limits, TokenId, Vocabulary};

use crate::common::{self, bit, check_mask_against_oracle, Split, TestVocab};

fn id_of(tv: &TestVocab, bytes: &[u8]) -> TokenId {
    *tv.tokenizer.tokens_for(bytes).first().unwrap_or_else(|| panic!("{bytes:?} is not a token of {}", tv.name))
}

#[test]
fn smollm2_facts() {
    let tv = common::smollm2();
    let v = &tv.vocab;
    assert_eq!(v.len(), 49_152);
    assert_eq!(v.eos(), &[2]);
    assert_eq!(v.token_bytes(2), b"<|im_end|>");
    assert!((0..=16).all(|t| v.is_special(t)));
    assert_eq!((0..v.len() as TokenId).filter(|&t| v.is_special(t)).count(), 17);
    // byte-level decoding: Ġ is a space, Ċ a newline
    assert_eq!(v.token_bytes(id_of(tv, b" the")), b" the");
    assert!(!tv.tokenizer.tokens_for(b"\n").is_empty());
    // 21 byte values have no token (../shared/tokenizers/README.md says 21
    // but lists 19: 0xF1 and 0xF2, lead bytes of the unassigned planes 4-11,
    // are missing too)
    let missing: Vec<u8> = (0..=255u8).filter(|&b| tv.tokenizer.tokens_for(&[b]).is_empty()).collect();
    let mut want = vec![0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2];
    want.extend(0xF5..=0xFF);
    assert_eq!(missing, want);
    // and those bytes appear in no token at all
    for t in 0..v.len() as TokenId {
        if !v.is_special(t) {
            assert!(!v.token_bytes(t).iter().any(|b| want.contains(b)), "token {t} holds a missing byte");
        }
    }
    assert!(tv.tokenizer.tokenize(b"a\x04b", Split::Greedy).is_none());
}

#[test]
fn gemma3_facts() {
    let Some(tv) = common::gemma3() else { return };
    let v = &tv.vocab;
    assert_eq!(v.len(), 262_144);
    assert_eq!(v.eos(), &[1, 106]);
    assert_eq!(v.token_bytes(106), b"<end_of_turn>");
    for t in [0, 1, 2, 3, 4, 105, 106] {
        assert!(v.is_special(t), "{t} is special");
    }
    // byte fallback: <0x41> is the byte A; every byte has a token
    assert!(tv.tokenizer.tokens_for(b"A").len() >= 2, "`A` and `<0x41>`");
    assert!((0..=255u8).all(|b| !tv.tokenizer.tokens_for(&[b]).is_empty()));
    // SentencePiece spaces; runs of spaces (ids 138..167) and of newlines are tokens
    assert!(!tv.tokenizer.tokens_for(b" the").is_empty());
    assert_eq!(v.token_bytes(138), b"  ");
    assert!(!v.is_special(107) && v.token_bytes(107) == b"\n");
    // non-special added tokens are ordinary text
    assert!(!v.is_special(id_of(tv, b"<table>")));
}

/// The library's reader and the tests' reader agree on every token.
fn same_vocabulary(name: &str, ours: &Vocabulary, theirs: &Vocabulary) {
    assert_eq!(ours.len(), theirs.len(), "{name}: sizes");
    assert_eq!(ours.eos(), theirs.eos(), "{name}: EOS");
    let mut diffs = Vec::new();
    for t in 0..ours.len() as TokenId {
        if ours.is_special(t) != theirs.is_special(t)
            || (!ours.is_special(t) && ours.token_bytes(t) != theirs.token_bytes(t))
        {
            diffs.push(format!(
                "{t}: tests {:?} special={}, library {:?} special={}",
                String::from_utf8_lossy(ours.token_bytes(t)),
                ours.is_special(t),
                String::from_utf8_lossy(theirs.token_bytes(t)),
                theirs.is_special(t)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{name}: {} tokens differ:\n  {}",
        diffs.len(),
        diffs.iter().take(20).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn library_reader_agrees_on_smollm2() {
    let path = common::testdata_dir().join("tokenizers/smollm2-135m.json");
    let json = std::fs::read_to_string(path).unwrap();
    let theirs = Vocabulary::from_tokenizer_json(&json, &["<|im_end|>"]).unwrap();
    same_vocabulary("smollm2", &common::smollm2().vocab, &theirs);
    // and with the default EOS choice
    assert_eq!(Vocabulary::from_tokenizer_json(&json, &[]).unwrap().eos(), &[2]);
}

#[test]
fn library_reader_agrees_on_gemma3() {
    let Some(tv) = common::gemma3() else { return };
    let path = common::shared_dir().join("tokenizers/gemma3-270m/tokenizer.json");
    let json = std::fs::read_to_string(path).unwrap();
    let theirs = Vocabulary::from_tokenizer_json(&json, &["<eos>", "<end_of_turn>"]).unwrap();
    same_vocabulary("gemma3", &tv.vocab, &theirs);
    let default = Vocabulary::from_tokenizer_json(&json, &[]).unwrap();
    assert_eq!(default.eos(), &[1, 106]);
}

#[test]
fn vocabulary_new_edge_cases() {
    let err = |r: Result<Vocabulary, formwork_grammar::Error>| match r {
        Err(e) => assert!(matches!(e.kind(), ErrorKind::Vocabulary(_)), "{e:?}"),
        Ok(_) => panic!("expected a vocabulary error"),
    };
    err(Vocabulary::new(vec![], &[], &[]));
    err(Vocabulary::new(vec![b"a".to_vec()], &[], &[1]));
    err(Vocabulary::new(vec![b"a".to_vec()], &[5], &[]));
    err(Vocabulary::new(vec![vec![b'a'; 70_000]], &[], &[]));
    // empty tokens are special; EOS is special; duplicates are fine
    let v = Vocabulary::new(vec![b"a".to_vec(), vec![], b"a".to_vec(), b"<e>".to_vec()], &[], &[3, 3]).unwrap();
    assert!(v.is_special(1) && v.is_special(3) && !v.is_special(0) && !v.is_special(2));
    assert_eq!(v.eos(), &[3]);
    assert_eq!(v.mask_words(), 1);
}

/// Masks never set bits past the end of the vocabulary, for sizes around
/// multiples of 32, and agree with the oracle.
#[test]
fn mask_tail_bits_are_clear() {
    for n in [1usize, 2, 31, 32, 33, 63, 64, 65, 257] {
        // tokens: "a", "b", ..., cycling over letters and growing
        let mut tokens: Vec<Vec<u8>> = (0..n - 1).map(|i| vec![b'a' + (i % 26) as u8; 1 + i / 26]).collect();
        tokens.push(b"<eos>".to_vec());
        let eos = (n - 1) as TokenId;
        let vocab = Arc::new(Vocabulary::new(tokens, &[], &[eos]).unwrap());
        let g = formwork_grammar::regex("[a-z]*").unwrap();
        let c = CompiledGrammar::new(&g, vocab.clone(), Limits::default()).unwrap();
        let mut m = c.matcher().unwrap();
        let mask = m.compute_mask_vec().unwrap();
        assert_eq!(mask.len(), n.div_ceil(32));
        for t in n..mask.len() * 32 {
            assert!(!bit(&mask, t as TokenId), "n={n}: bit {t} set past the end");
        }
        assert!(bit(&mask, eos), "n={n}: EOS");
        check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("n={n}: {e}"));
    }
}

/// Unicode-heavy shapes under SmolLM2, whose tokens often end or start in
/// the middle of a UTF-8 character: the oracle at every state of several
/// splits (the suite only samples SmolLM2 states).
#[test]
fn smollm2_oracle_at_every_state_of_unicode_text() {
    let tv = common::smollm2();
    let cases: &[(&str, &[&str])] = &[
        (r"\p{L}+( \p{L}+)*", &["héllo wörld", "日本語 テキスト", "Ωμέγα λ"]),
        (r#""([^"\\]|\\.)*""#, &["\"é😀 \\\" 中文\"", "\"naïve café\""]),
        ("[^a-z]+", &["ÀÉÎ 123 😀"]),
    ];
    let mut rng = common::XorShift::new(7);
    for &(re, strings) in cases {
        let g = formwork_grammar::regex(re).unwrap();
        let c = CompiledGrammar::new(&g, Arc::clone(&tv.vocab), Limits::default()).unwrap();
        for s in strings {
            for k in 0..2 {
                let split = if k == 0 { Split::Greedy } else { Split::Random(&mut rng) };
                let toks = tv.tokenizer.tokenize(s.as_bytes(), split).unwrap();
                let mut m = c.matcher().unwrap();
                for &(t, off) in &toks {
                    check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("{re} {s:?} at byte {off}: {e}"));
                    m.consume_token(t).unwrap_or_else(|e| panic!("{re} {s:?} at byte {off}: {e}"));
                }
                check_mask_against_oracle(&mut m).unwrap_or_else(|e| panic!("{re} {s:?} at the end: {e}"));
                assert!(m.is_accepting().unwrap(), "{re} {s:?}");
            }
        }
    }
}
