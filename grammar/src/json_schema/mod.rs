//! JSON Schema to grammar: the outputs a model may produce are exactly the
//! JSON texts that validate.
//!
//! Where it sits: `serde_json::Value` -> [`compile`] -> [`ir::Grammar`] ->
//! [`CompiledGrammar`](crate::CompiledGrammar). Inside:
//!
//! ```text
//! schema.rs   Value -> Schema (per-type constraint sets; allOf/siblings
//!             intersected, anyOf/oneOf/type arrays as unions, $ref kept)
//! refs.rs     $id / $anchor / JSON pointer resolution, one rule per target
//! compile.rs  Schema -> rules and lexemes (strings and numbers are single
//!             lexemes; objects in schema order; arrays with bounded counts)
//! pattern.rs  ECMA-262 `pattern` -> regex over the JSON-escaped encoding
//! numeric.rs  exact integer and decimal ranges, multipleOf
//! formats.rs  date-time, date, time, duration, email, hostname, ipv4,
//!             ipv6, uuid, uri, uri-reference, json-pointer
//! validate.rs a value against a normalized schema (enum filtering)
//! ```
//!
//! Drafts 4, 6, 7, 2019-09 and 2020-12 are read (chosen by `$schema`,
//! default 2020-12). **Soundness first**: in [`Mode::Strict`] (the default) a
//! keyword that cannot be enforced exactly is an error naming the keyword
//! and its JSON pointer ([`ErrorKind::Schema`](crate::ErrorKind::Schema));
//! [`Mode::Lenient`] replaces some of them by a narrowing (the grammar allows
//! fewer values than the schema, never more) and reports a [`Warning`].
//!
//! Departures from the letter of JSON Schema, all of them narrowings or
//! annotation choices (see `docs/json-schema.md`):
//!
//! * property order is the schema's: declared properties in `properties`
//!   order, then required-but-undeclared ones, then extra properties;
//! * each value has one spelling up to whitespace: strings escape only what
//!   JSON requires (`"`, `\`, control characters), numbers with bounds carry
//!   no exponent, integers may end in `.0`;
//! * the formats listed above are asserted; other formats are annotations;
//! * whitespace is flexible by default with bounded runs
//!   ([`Whitespace`]), never before or after the whole value.
//!
//! ```
//! use std::sync::Arc;
//! use formwork_grammar::{json_schema, CompiledGrammar, Limits, Vocabulary};
//! let schema = serde_json::json!({"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2});
//! let (g, _) = json_schema::compile(&schema, &json_schema::JsonSchemaOptions::default())?;
//! let c = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default())?;
//! let mut m = c.matcher()?;
//! assert!(m.try_consume_bytes(br#"["a", "b"]"#)?);
//! assert!(m.is_accepting()?);
//! let mut m = c.matcher()?;
//! assert!(!m.try_consume_bytes(br#"["a", "c"]"#)?);
//! # Ok::<(), formwork_grammar::Error>(())
//! ```
//!
//! [`ir::Grammar`]: crate::ir::Grammar

mod compile;
mod formats;
mod numeric;
mod options;
mod pattern;
mod refs;
mod schema;
mod validate;

pub use compile::{compile, from_str};
pub use options::{Draft, JsonSchemaOptions, Mode, PropertyOrder, Whitespace};

/// A keyword that lenient mode approximated (by narrowing) instead of
/// refusing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// JSON pointer of the schema holding the keyword.
    pub pointer: String,
    /// The keyword.
    pub keyword: String,
    /// What was done.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` at `{}`: {}",
            self.keyword,
            if self.pointer.is_empty() { "/" } else { &self.pointer },
            self.message
        )
    }
}
