//! [`CompiledGrammar`]: a grammar compiled for one vocabulary.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::complete::CompletionTable;
use crate::error::Error;
use crate::ir::Grammar;
use crate::lexer::Terminals;
use crate::lower::lower;
use crate::matcher::{Matcher, MatcherCache};
use crate::parser::cfg::Cfg;
use crate::trie::TokenTrie;
use crate::{Limits, Vocabulary};

/// A grammar compiled for one vocabulary: the lexer's terminal automata, the
/// Earley parser's tables and the token trie.
///
/// Immutable and `Send + Sync`; `Clone` is cheap (an `Arc`). Build it once per
/// (grammar, vocabulary) and create a [`Matcher`] per sequence.
///
/// Matchers fill lazily built caches (lexer states, per-lexer-state token
/// masks). When a matcher is dropped its caches go back to a pool in the
/// compiled grammar and the next matcher starts warm.
#[derive(Clone)]
pub struct CompiledGrammar {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: Cfg,
    pub(crate) terms: Terminals,
    pub(crate) trie: Arc<TokenTrie>,
    pub(crate) vocab: Arc<Vocabulary>,
    pub(crate) limits: Limits,
    pub(crate) pool: Mutex<Vec<MatcherCache>>,
    /// Shortest-completion tables, built on first use.
    pub(crate) completion: OnceLock<CompletionTable>,
}

impl Inner {
    /// The shortest-completion tables (built on first use).
    pub(crate) fn completion(&self) -> &CompletionTable {
        self.completion.get_or_init(|| CompletionTable::new(&self.cfg, &self.terms))
    }
}

impl fmt::Debug for CompiledGrammar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledGrammar")
            .field("terminals", &self.inner.terms.dfas.len())
            .field("nonterminals", &self.inner.cfg.num_nts())
            .field("vocab_size", &self.inner.vocab.len())
            .finish()
    }
}

impl CompiledGrammar {
    /// Compiles `grammar` for `vocab`.
    pub fn new(grammar: &Grammar, vocab: Arc<Vocabulary>, limits: Limits) -> Result<Self, Error> {
        let lowered = lower(grammar, &limits)?;
        let trie = vocab.trie().clone();
        Ok(CompiledGrammar {
            inner: Arc::new(Inner {
                cfg: lowered.cfg,
                terms: lowered.terminals,
                trie,
                vocab,
                limits,
                pool: Mutex::new(Vec::new()),
                completion: OnceLock::new(),
            }),
        })
    }

    /// A new matcher at the start of the grammar.
    pub fn matcher(&self) -> Result<Matcher, Error> {
        Matcher::new(self)
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocabulary {
        &self.inner.vocab
    }

    /// The limits the grammar was compiled with.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Number of lexer terminals after lexeme inference.
    pub fn num_terminals(&self) -> usize {
        self.inner.terms.dfas.len()
    }

    /// Number of `u32` words of a mask for this grammar's vocabulary.
    pub fn mask_words(&self) -> usize {
        self.inner.vocab.mask_words()
    }

    /// Names of the lexer terminals (for debugging).
    pub fn terminal_names(&self) -> &[String] {
        &self.inner.terms.names
    }

    pub(crate) fn take_cache(&self) -> Option<Box<MatcherCache>> {
        self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).pop().map(Box::new)
    }

    pub(crate) fn return_cache(&self, c: MatcherCache) {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(c);
        }
    }
}

// A compiled grammar is shared across threads; a matcher moves between them.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shared::<CompiledGrammar>();
    movable::<Matcher>();
};
