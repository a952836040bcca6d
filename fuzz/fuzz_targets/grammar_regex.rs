//! A regex → `regex()` → `CompiledGrammar::new` (strict limits) → a matcher
//! fed bytes from the input, checked against the oracle of trying each token.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: common::Input| common::run(&input, formwork::grammar::regex));
