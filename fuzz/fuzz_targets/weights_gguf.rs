//! GGUF bytes → `Gguf::parse`, under strict and default limits.
//!
//! Any input must give an error or a header whose every tensor lies inside
//! the input and whose accessors all work; never a panic, an overflow or a
//! large allocation. Seed the corpus with a small real GGUF header (the first
//! few KiB of any model file parse as "truncated", which is still useful) or
//! with the files `tests/gguf.rs` writes.

#![no_main]

use std::fmt;

use formwork::weights::gguf::{Gguf, Limits};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Inputs above this are rejected: the interesting structure is in headers.
const MAX_INPUT: usize = 1 << 16;

/// The raw file bytes. `Debug` prints a Rust snippet that reproduces a crash
/// as a normal test.
struct Input {
    bytes: Vec<u8>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Input> {
        Ok(Input { bytes: u.bytes(u.len())?.to_vec() })
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Input> {
        Ok(Input { bytes: u.take_rest().to_vec() })
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "// Reproduce in tests/gguf.rs:")?;
        writeln!(f, "let bytes: &[u8] = b\"{}\";", self.bytes.escape_ascii())?;
        write!(f, "let _ = formwork::weights::gguf::Gguf::parse(bytes);")
    }
}

fn check(bytes: &[u8], limits: &Limits) {
    let Ok(g) = Gguf::parse_with_limits(bytes, limits) else { return };
    assert!(g.data_offset() <= bytes.len());
    assert!(g.alignment().is_power_of_two());
    for t in g.tensors() {
        assert!(t.byte_range().end <= bytes.len());
        assert!(t.dims().len() <= 4);
        let data = g.tensor_bytes(bytes, t.name()).expect("a listed tensor's bytes");
        assert_eq!(data.len(), t.byte_len());
    }
    for (key, _) in g.metadata() {
        assert!(g.get(key).is_some());
    }
    assert!(g.tensor_data_len() <= bytes.len() as u64);
    let _ = g.memory_estimate(4096, 4);
}

fuzz_target!(|input: Input| {
    if input.bytes.len() > MAX_INPUT {
        return;
    }
    let strict = Limits {
        max_tensors: 64,
        max_metadata_kvs: 64,
        max_string_len: 1024,
        max_array_len: 4096,
        max_array_depth: 3,
        max_tensor_name_len: 64,
    };
    check(&input.bytes, &strict);
    check(&input.bytes, &Limits::default());
});
