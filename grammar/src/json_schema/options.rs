//! Options of the JSON Schema compiler.

/// How a keyword that cannot be enforced exactly is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse the schema with an error naming the keyword and its JSON
    /// pointer (the default).
    #[default]
    Strict,
    /// Apply a documented *sound* approximation instead and report a
    /// [`Warning`](super::Warning): the grammar may allow fewer values than
    /// the schema (never more), so every output still validates. Where no
    /// sound approximation exists the schema is still refused.
    Lenient,
}

/// Whitespace between JSON tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whitespace {
    /// What JSON allows (space, tab, newline, carriage return) between any two
    /// tokens, at most `max_run` bytes in a row. None before the first or
    /// after the last token.
    Flexible {
        /// Longest whitespace run allowed between two tokens.
        max_run: u32,
    },
    /// No whitespace at all: `{"a":1,"b":[true,null]}`.
    Compact,
}

impl Default for Whitespace {
    fn default() -> Self {
        Whitespace::Flexible { max_run: 32 }
    }
}

/// The order in which an object's properties may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyOrder {
    /// The schema's order: `properties` order, then required-but-undeclared
    /// properties, then extra properties (the default).
    Schema,
    /// Any order, each declared property at most once and every required one
    /// present, extra properties anywhere, for objects with at most
    /// `max_properties` declared properties (at most 12; the grammar grows
    /// as `2^max_properties`, and no grammar that remembers which keys were
    /// written can be much smaller); larger objects, and objects whose
    /// `minProperties`/`maxProperties` need counting, use the schema's order.
    Any {
        /// Largest number of declared properties written in any order.
        max_properties: u32,
    },
}

/// A JSON Schema draft (the rules for `$ref` siblings, `items` arrays,
/// `exclusiveMinimum` booleans, `id` vs `$id`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Draft {
    /// Draft 4 (and draft 3's `$schema`).
    Draft4,
    /// Draft 6.
    Draft6,
    /// Draft 7.
    Draft7,
    /// 2019-09.
    Draft2019_09,
    /// 2020-12.
    Draft2020_12,
}

/// Options for [`compile`](super::compile).
///
/// ```
/// use formwork_grammar::json_schema::{JsonSchemaOptions, Mode, Whitespace};
/// let opts = JsonSchemaOptions { whitespace: Whitespace::Compact, ..JsonSchemaOptions::default() };
/// assert_eq!(opts.mode, Mode::Strict);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonSchemaOptions {
    /// Strict (default) or lenient.
    pub mode: Mode,
    /// Flexible (default, runs of at most 32) or compact whitespace.
    pub whitespace: Whitespace,
    /// Whether an object schema without `additionalProperties` (and without
    /// `unevaluatedProperties`) allows properties it does not declare, as
    /// JSON Schema says. Default `true`. `false` is a narrowing that keeps
    /// outputs valid (extra properties are simply never produced), useful to
    /// keep a model from inventing keys.
    pub allow_extra_properties: bool,
    /// Property order: the schema's (default) or any.
    pub property_order: PropertyOrder,
    /// Whether an integer may be written with a zero fraction (`5.0`), as
    /// JSON Schema allows from draft 6 on. Default `true` (a validator's
    /// view: such instances are accepted). `false` writes integers as
    /// integers only, a narrowing that keeps every output valid and spares
    /// a model one decision after each integer (`,` or `.`), i.e. one
    /// sampled step instead of a forced one.
    pub integer_zero_fraction: bool,
    /// The draft used when the root's `$schema` names none. Default 2020-12.
    pub default_draft: Draft,
    /// Bound on the branches an intersection (`allOf` over `anyOf`s) may
    /// expand to. Default 64.
    pub max_branches: usize,
    /// Bound on how deep the compiler follows schemas (nesting and `$ref`
    /// inlining). Default 64.
    pub max_depth: usize,
}

impl Default for JsonSchemaOptions {
    fn default() -> Self {
        JsonSchemaOptions {
            mode: Mode::Strict,
            whitespace: Whitespace::default(),
            allow_extra_properties: true,
            default_draft: Draft::Draft2020_12,
            property_order: PropertyOrder::Schema,
            integer_zero_fraction: true,
            max_branches: 64,
            max_depth: 64,
        }
    }
}
