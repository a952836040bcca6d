//! The vocabulary: token id -> exact bytes.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::trie::TokenTrie;

/// A token id.
pub type TokenId = u32;

/// A tokenizer's vocabulary as plain data: the exact bytes of every token,
/// which tokens are special (never produced by the grammar) and which are
/// end-of-sequence tokens (allowed exactly when the grammar accepts).
///
/// This crate does not depend on a tokenizer library; the root crate builds a
/// `Vocabulary` from `tokenizer.json` or GGUF metadata.
///
/// Building a vocabulary also builds its token trie, which every grammar
/// compiled for it shares: build it once per tokenizer and share it in an
/// `Arc`.
#[derive(Clone)]
pub struct Vocabulary {
    tokens: Vec<Vec<u8>>,
    special: Vec<bool>,
    eos: Vec<TokenId>,
    trie: Arc<TokenTrie>,
}

impl PartialEq for Vocabulary {
    fn eq(&self, o: &Self) -> bool {
        self.tokens == o.tokens && self.special == o.special && self.eos == o.eos
    }
}
impl Eq for Vocabulary {}

impl fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vocabulary").field("len", &self.tokens.len()).field("eos", &self.eos).finish()
    }
}

impl Vocabulary {
    /// A vocabulary of `tokens` (index = id). Tokens listed in `special` are
    /// never matched by a grammar; `eos` tokens are special and allowed when
    /// the grammar accepts. Empty non-special tokens are treated as special.
    pub fn new(tokens: Vec<Vec<u8>>, special: &[TokenId], eos: &[TokenId]) -> Result<Self, Error> {
        if tokens.is_empty() {
            return Err(Error::new(ErrorKind::Vocabulary("no tokens".into())));
        }
        if tokens.len() > (u32::MAX as usize) / 2 {
            return Err(Error::new(ErrorKind::Vocabulary(format!("{} tokens is too many", tokens.len()))));
        }
        let mut sp = vec![false; tokens.len()];
        for &t in special.iter().chain(eos) {
            let slot = sp.get_mut(t as usize).ok_or_else(|| {
                Error::new(ErrorKind::Vocabulary(format!(
                    "special token {t} is outside the vocabulary of {} tokens",
                    tokens.len()
                )))
            })?;
            *slot = true;
        }
        for (i, t) in tokens.iter().enumerate() {
            if t.len() > u16::MAX as usize {
                return Err(Error::new(ErrorKind::Vocabulary(format!(
                    "token {i} is {} bytes long; at most {} are supported",
                    t.len(),
                    u16::MAX
                ))));
            }
            if t.is_empty() {
                sp[i] = true;
            }
        }
        let mut eos = eos.to_vec();
        eos.sort_unstable();
        eos.dedup();
        let trie = Arc::new(TokenTrie::new(&tokens, &sp));
        Ok(Vocabulary { tokens, special: sp, eos, trie })
    }

    /// A vocabulary with one token per byte value (ids 0..=255) plus an EOS
    /// token (id 256). Useful for tests and for byte-level matching.
    pub fn bytes() -> Self {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"<eos>".to_vec());
        // 256 is in range by construction.
        Self::new(tokens, &[], &[256]).expect("byte vocabulary is valid")
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always false: a vocabulary has at least one token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes of a token.
    pub fn token_bytes(&self, t: TokenId) -> &[u8] {
        &self.tokens[t as usize]
    }

    /// All tokens' bytes.
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }

    /// Whether the token is special (never matched by the grammar).
    pub fn is_special(&self, t: TokenId) -> bool {
        self.special[t as usize]
    }

    /// The end-of-sequence tokens.
    pub fn eos(&self) -> &[TokenId] {
        &self.eos
    }

    pub(crate) fn trie(&self) -> &Arc<TokenTrie> {
        &self.trie
    }

    /// Number of `u32` words in a mask over this vocabulary.
    pub fn mask_words(&self) -> usize {
        self.tokens.len().div_ceil(32)
    }
}
