//! The syntax tree of a Lark grammar, between parsing and lowering.

/// A byte span in the grammar text.
pub(super) type Span = (usize, usize);

/// An expression in a rule, terminal or `%ignore` body.
#[derive(Clone, Debug)]
pub(super) enum Node {
    /// `"text"` or `"text"i`.
    Str { value: String, ci: bool, span: Span },
    /// `/raw/flags`, the raw text still in Python `re` syntax.
    Regex { raw: String, flags: String, span: Span },
    /// `"a".."z"`.
    Range { lo: char, hi: char, span: Span },
    /// A rule (lowercase) or terminal (uppercase) name.
    Name { name: String, span: Span },
    /// Concatenation (empty: the empty string).
    Seq(Vec<Node>),
    /// Alternation.
    Alt(Vec<Node>),
    /// `x?`, `x*`, `x+`, `[x]`, `x ~ n`, `x ~ n..m`, `x{m,n}`.
    Repeat { node: Box<Node>, min: u32, max: Option<u32> },
    /// `a & b`: intersection (terminals only).
    And(Vec<Node>, Span),
    /// `~x`: complement (terminals only).
    Not(Box<Node>, Span),
}

/// A rule or terminal definition.
#[derive(Clone, Debug)]
pub(super) struct Def {
    pub(super) name: String,
    /// The span of the name, for error messages.
    pub(super) span: Span,
    pub(super) body: Node,
}

/// A parsed grammar file.
#[derive(Clone, Debug, Default)]
pub(super) struct Ast {
    /// Rule definitions, in source order.
    pub(super) rules: Vec<Def>,
    /// Terminal definitions, in source order.
    pub(super) terminals: Vec<Def>,
    /// The bodies of `%ignore` statements.
    pub(super) ignores: Vec<Node>,
}
