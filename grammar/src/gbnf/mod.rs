//! GBNF, llama.cpp's grammar format, parsed into the [IR](crate::ir).
//!
//! Where it sits: `GBNF text -> gbnf::parse -> ir::Grammar -> compile()`.
//!
//! GBNF is character-level: a string literal becomes [`Expr::Literal`], a
//! character class [`Expr::Class`], `.` a negated empty class, and rule names
//! [`Expr::Ref`]s. The front-end declares no lexemes; the compiler decides
//! which character-level parts can be lexed as one unit.
//!
//! ```
//! let grammar = formwork_grammar::gbnf::parse(r#"
//! root ::= "yes" | "no" | digit{1,3}
//! digit ::= [0-9]
//! "#).unwrap();
//! assert_eq!(grammar.rule(grammar.start()).name, "root");
//! ```
//!
//! The dialect follows llama.cpp's own parser (`src/llama-grammar.cpp`),
//! including where newlines may continue a rule (inside parentheses and after
//! `|`), which escapes exist and what a repeated definition means (the last
//! one wins). The departures — all of them stricter, none changing the
//! language of a grammar llama.cpp loads — are listed in
//! `docs/grammar-syntax.md`.
//!
//! Cost: one pass over the text, no backtracking; memory linear in the text.
//! Nesting is bounded by [`Limits::max_nesting`](crate::Limits::max_nesting)
//! and repetition counts by [`MAX_REPEAT`].
//!
//! [`Expr::Literal`]: crate::ir::Expr::Literal
//! [`Expr::Class`]: crate::ir::Expr::Class
//! [`Expr::Ref`]: crate::ir::Expr::Ref

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{parse, parse_with_limits, MAX_REPEAT};
