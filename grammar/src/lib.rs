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

//! ## Key types
//!
//! * [`Vocabulary`]: token id -> bytes, special and EOS tokens (plain data).
//! * [`ir::Grammar`]: the grammar IR; build it with a front-end — [`regex`],
//!   [`choices`], [`gbnf::parse`], [`lark::parse`], [`json_schema::compile`]
//!   — or by hand with [`ir::GrammarBuilder`].
//! * [`CompiledGrammar`]: a grammar compiled for one vocabulary; immutable,
//!   `Send + Sync`, cheap to clone.
//! * [`Matcher`]: per-sequence state. `compute_mask` -> sample -> `consume_token`.
//! * [`Limits`]: bounds on every cost; exceeding one is an [`Error`].
//!
//! ## The loop
//!
//! ```
//! use std::sync::Arc;
//! use formwork_grammar::{gbnf, CompiledGrammar, Limits, Vocabulary};
//!
//! // A toy vocabulary: one token per byte, plus EOS (id 256).
//! let vocab = Arc::new(Vocabulary::bytes());
//! let grammar = gbnf::parse(r#"root ::= "{" ws "\"ok\"" ws ":" ws ("true" | "false") ws "}"
//! ws ::= [ ]?"#)?;
//! let compiled = CompiledGrammar::new(&grammar, vocab.clone(), Limits::default())?;
//! let mut m = compiled.matcher()?;
//! let mut mask = vec![0u32; compiled.mask_words()];
//! let mut out = Vec::new();
//! loop {
//!     m.compute_mask(&mut mask)?;
//!     // a "model" that always picks the lowest allowed token id
//!     let t = (0..vocab.len() as u32).find(|&t| mask[t as usize / 32] >> (t % 32) & 1 == 1).unwrap();
//!     if vocab.eos().contains(&t) {
//!         break;
//!     }
//!     m.consume_token(t)?;
//!     out.extend_from_slice(vocab.token_bytes(t));
//! }
//! // spaces (byte 32) come before quotes (34) and letters: the lowest ids win
//! assert_eq!(String::from_utf8(out).unwrap(), r#"{ "ok" : false }"#);
//! # Ok::<(), formwork_grammar::Error>(())
//! ```
//!
//! ## Semantics
//!
//! Character-level parts (GBNF literals and classes) keep their exact
//! meaning. Declared lexemes (Lark terminals, regexes, JSON Schema lexemes)
//! are matched by a maximal-munch lexer restricted to the terminals the parser
//! allows at that point. See `docs/design.md`.
//!
//! ## Limits
//!
//! Every input is bounded by [`Limits`]: grammar size, automaton states,
//! Earley items per step, nesting. Exceeding a limit is an error, never a hang
//! or unbounded memory. Caches are bounded and cleared when full.

#![forbid(unsafe_code)]

mod compiled;
mod complete;
mod error;
pub mod gbnf;
pub mod ir;
#[cfg(feature = "json-schema")]
pub mod json_schema;
pub mod lark;
mod lexer;
mod limits;
mod lower;
mod matcher;
mod parser;
mod shapes;
#[cfg(feature = "tokenizer-json")]
mod tokenizer_json;
mod trie;
mod vocab;

pub use compiled::CompiledGrammar;
pub use error::{Error, ErrorKind, SyntaxError};
pub use limits::Limits;
pub use matcher::{Completion, Matcher};
pub use shapes::{choices, regex};
pub use vocab::{TokenId, Vocabulary};
