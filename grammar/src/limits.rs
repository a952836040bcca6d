//! Limits on the work and memory a grammar may cost.

/// Limits on what a grammar may cost. Exceeding one is an error
/// ([`crate::ErrorKind::Limit`]), never a hang or unbounded memory.
///
/// Every field documents its default and what it bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of grammar symbols after lowering to BNF (rules times
    /// their length). Default 500,000.
    pub max_grammar_size: usize,
    /// Maximum number of DFA states of one lexeme. Default 20,000.
    pub max_lexeme_states: usize,
    /// Maximum number of distinct lexer states a matcher may create (each
    /// costs up to 1 KiB of transition table). Default 50,000.
    pub max_lexer_states: usize,
    /// Maximum number of Earley items created while computing one mask or
    /// consuming one token. Default 500,000.
    pub max_items_per_step: usize,
    /// Maximum number of Earley items in one row. Default 50,000.
    pub max_items_per_row: usize,
    /// Maximum nesting depth of front-end input (parentheses, JSON nesting).
    /// Default 200.
    pub max_nesting: usize,
    /// Bytes of token-mask cache a matcher keeps; the cache is cleared when it
    /// grows past this (a cache, so exceeding it is not an error).
    /// Default 64 MiB.
    pub max_mask_cache_bytes: usize,
    /// Maximum number of forced bytes reported at once. Default 1,024.
    pub max_forced_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_grammar_size: 500_000,
            max_lexeme_states: 20_000,
            max_lexer_states: 50_000,
            max_items_per_step: 500_000,
            max_items_per_row: 50_000,
            max_nesting: 200,
            max_mask_cache_bytes: 64 << 20,
            max_forced_bytes: 1024,
        }
    }
}
