//! A Lark-like grammar format, parsed into the [IR](crate::ir).
//!
//! Where it sits: `Lark text -> lark::parse -> ir::Grammar -> compile()`.
//!
//! The dialect is [Lark](https://lark-parser.readthedocs.io)'s grammar
//! syntax, with llguidance's `&` (intersection), `~` (complement) and
//! `x{m,n}` extensions:
//!
//! ```
//! let grammar = formwork_grammar::lark::parse(r#"
//! start: pair ("," pair)*
//! pair: KEY "=" VALUE
//! KEY: /[a-z]+/
//! VALUE: /[0-9]+/ | "true"i | "false"i
//! %ignore " "
//! "#).unwrap();
//! assert!(grammar.lexemes().len() >= 4);
//! ```
//!
//! Semantics: uppercase definitions are *terminals*, compiled to one
//! [`LexemeSpec`] each and matched by a maximal-munch lexer that only
//! considers the terminals the parser can accept at that point (Lark's
//! contextual lexer). Strings and regexes written inside rules are anonymous
//! terminals. Lowercase definitions are rules of a context-free grammar,
//! parsed by an Earley parser (any CFG, including left recursion). `start` is
//! the start rule. `%ignore` is supported by rewriting (see `lower.rs`);
//! `%import`, `%declare`, `%override`, `%extend` and templates are not.
//! `docs/grammar-syntax.md` lists every departure from Lark.
//!
//! Cost: one pass over the text plus one pass per definition; a terminal's
//! regex text is bounded by [`Limits::max_grammar_size`] and nesting by
//! [`Limits::max_nesting`].
//!
//! [`LexemeSpec`]: crate::ir::LexemeSpec
//! [`Limits::max_grammar_size`]: crate::Limits::max_grammar_size
//! [`Limits::max_nesting`]: crate::Limits::max_nesting

mod ast;
mod lexer;
mod lower;
mod parse;
mod regex;
#[cfg(test)]
mod tests;

pub use parse::{parse, parse_with_limits};

/// The format name in syntax errors.
const FORMAT: &str = "Lark";
