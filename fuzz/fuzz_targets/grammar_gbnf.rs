//! GBNF text → `gbnf::parse` → `CompiledGrammar::new` (strict limits) →
//! a matcher fed bytes from the input, with masks computed along the way.
//!
//! Any input must give an error or a working matcher; never a panic, a hang
//! or unbounded memory. `Debug` prints a snippet reproducing a crash.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: common::Input| common::run(&input, formwork::grammar::gbnf::parse));
