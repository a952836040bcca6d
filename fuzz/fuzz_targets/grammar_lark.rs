//! Lark-like text → `lark::parse` → `CompiledGrammar::new` (strict limits) →
//! a matcher fed bytes from the input, with masks computed along the way.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: common::Input| common::run(&input, formwork::grammar::lark::parse));
