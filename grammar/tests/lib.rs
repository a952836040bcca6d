//! The integration tests of formwork-grammar: one binary, a module per area
//! (as in regex-automata's `tests/lib.rs`).
//!
//! * [`suite`]: the declarative cases of `grammar/testdata/*.toml`, run under
//!   every test vocabulary and checked against a brute-force mask oracle.
//! * [`ir`]: grammars built by hand with `ir::GrammarBuilder` — recursion,
//!   ambiguity, nullable rules, deep nesting, `&`/`~` lexemes, limits, the
//!   error state, rollback, forced bytes.
//! * [`prop`]: proptest — random sentences of char-level grammars under
//!   random tokenizations, mutated sentences against a reference Earley
//!   recognizer, rollback.
//! * [`vocab`]: the test vocabularies, the library's tokenizer.json reader
//!   against the tests' one, `Vocabulary` edge cases.
//! * [`repro`]: minimal reproductions of bugs found here (open ones fail until
//!   fixed; fixed ones stay as regression tests).
//!
//! Vocabularies, the test-side tokenizer, the mask oracle and the reference
//! recognizer live in [`common`].

mod common;
mod ir;
mod json_schema;
mod prop;
mod repro;
mod suite;
mod vocab;
