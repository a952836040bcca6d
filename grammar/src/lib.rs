//! # formwork-grammar
//!
//! Shapes — a regular expression, a list of choices, a GBNF or Lark-like
//! grammar, a JSON Schema — compiled into token-level automata that tell, at
//! every step of generation, which tokens of a vocabulary keep the output
//! inside the shape.
//!
//! The pipeline:
//!
//! ```text
//! front-end text ──> ir::Grammar ──compile(vocab)──> CompiledGrammar ──> Matcher (one per sequence)
//!                    rules over        lexer (DFAs per lexeme,              compute_mask(&mut [u32])
//!                    lexemes           lazily combined), Earley tables,     consume_token / rollback
//!                                      token trie                           forced_bytes / is_accepting
//! ```
//!
//! This crate has no ML dependencies and builds for `wasm32-unknown-unknown`:
//! it uses no files, threads or clocks.

#![forbid(unsafe_code)]

mod error;
pub mod gbnf;
pub mod ir;
pub mod lark;
mod limits;
mod vocab;

pub use error::{Error, ErrorKind, SyntaxError};
pub use limits::Limits;
pub use vocab::{TokenId, Vocabulary};
