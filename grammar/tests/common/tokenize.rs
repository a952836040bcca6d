//! A test-side tokenizer: splits a byte string into tokens of a vocabulary.
//!
//! It is not any real tokenizer's algorithm (no merges): the suite only needs
//! *some* token sequences that spell a string — the greedy longest match,
//! which resembles what BPE produces on common text, and random splits, which
//! cross lexeme boundaries in unusual places. Both only pick a token when the
//! rest of the string can still be spelled, so a vocabulary that cannot spell
//! a string at all (the tiny one, or SmolLM2 for its 21 missing bytes) says
//! `None` instead of producing a wrong split.

use std::collections::HashMap;

use formwork_grammar::{TokenId, Vocabulary};

use super::rng::XorShift;

/// Maps byte strings to the (non-special) tokens spelling them.
#[derive(Debug)]
pub struct Tokenizer {
    by_bytes: HashMap<Vec<u8>, Vec<TokenId>>,
    max_len: usize,
}

/// How to choose among the tokens that fit at a position.
#[derive(Debug)]
pub enum Split<'a> {
    /// The longest token (lowest id among tokens with equal bytes).
    Greedy,
    /// A uniformly random token (and a random id among equal ones).
    Random(&'a mut XorShift),
}

impl Tokenizer {
    /// A tokenizer over the non-special tokens of `vocab`.
    pub fn new(vocab: &Vocabulary) -> Self {
        let mut by_bytes: HashMap<Vec<u8>, Vec<TokenId>> = HashMap::new();
        let mut max_len = 0;
        for t in 0..vocab.len() as TokenId {
            if vocab.is_special(t) {
                continue;
            }
            let b = vocab.token_bytes(t);
            max_len = max_len.max(b.len());
            by_bytes.entry(b.to_vec()).or_default().push(t);
        }
        Tokenizer { by_bytes, max_len }
    }

    /// The tokens with exactly these bytes.
    pub fn tokens_for(&self, bytes: &[u8]) -> &[TokenId] {
        self.by_bytes.get(bytes).map_or(&[], |v| v.as_slice())
    }

    /// A token sequence spelling `s`, or `None` if the vocabulary cannot
    /// spell it. Each returned item is `(token, byte offset where it starts)`.
    pub fn tokenize(&self, s: &[u8], split: Split<'_>) -> Option<Vec<(TokenId, usize)>> {
        let n = s.len();
        // ok[i]: s[i..] can be spelled
        let mut ok = vec![false; n + 1];
        ok[n] = true;
        for i in (0..n).rev() {
            ok[i] = (1..=self.max_len.min(n - i)).any(|l| ok[i + l] && self.by_bytes.contains_key(&s[i..i + l]));
        }
        if !ok[0] {
            return None;
        }
        let mut rng = match split {
            Split::Greedy => None,
            Split::Random(r) => Some(r),
        };
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < n {
            let fits: Vec<usize> = (1..=self.max_len.min(n - pos))
                .filter(|&l| ok[pos + l] && self.by_bytes.contains_key(&s[pos..pos + l]))
                .collect();
            let (len, tok) = match rng.as_deref_mut() {
                None => {
                    let l = *fits.last().expect("ok[pos] implies a fitting token");
                    (l, self.by_bytes[&s[pos..pos + l]][0])
                }
                Some(r) => {
                    let l = *r.pick(&fits);
                    (l, *r.pick(&self.by_bytes[&s[pos..pos + l]]))
                }
            };
            out.push((tok, pos));
            pos += len;
        }
        Some(out)
    }
}
