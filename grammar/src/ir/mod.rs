//! The grammar IR: the one form every front-end (regex, choices, GBNF, Lark,
//! JSON Schema) emits.
//!
//! Where it sits: `front-end text -> ir::Grammar -> compile() -> CompiledGrammar`.
//!
//! A [`Grammar`] is a set of named rules whose bodies are [`Expr`] trees
//! (sequence, alternation, bounded or unbounded repetition, references to other
//! rules) over two kinds of leaves:
//!
//! * **character-level leaves** ([`Expr::Literal`], [`Expr::Class`]): text with
//!   the exact semantics of a character-level grammar such as GBNF. The compiler
//!   merges them into larger lexemes only where that provably changes nothing
//!   (see `docs/design.md`, "lexeme inference").
//! * **declared lexemes** ([`Expr::Lexeme`], built from a [`LexemeSpec`]): atomic
//!   tokens of a lexer with maximal-munch semantics, as in Lark's terminals or
//!   the lexemes the JSON Schema compiler designs. A lexeme may use intersection
//!   (`&`) and complement (`~`), which compile to product automata.
//!
//! Rules may be recursive in any way (left, right, mutual, nullable): the
//! parser is an Earley parser.

mod builder;
mod print;

pub use builder::GrammarBuilder;

/// Index of a rule (a nonterminal) in a [`Grammar`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// Index of a declared lexeme in a [`Grammar`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LexemeId(pub u32);

/// A grammar expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// Matches the empty string.
    Empty,
    /// Matches nothing (an alternation with no branches).
    Nothing,
    /// Character-level literal text.
    Literal(String),
    /// Exactly one Unicode scalar value from the given inclusive ranges
    /// (or, when `negated`, one not in them).
    Class {
        /// Inclusive ranges of code points.
        ranges: Vec<(char, char)>,
        /// Whether the class is the complement of `ranges`.
        negated: bool,
    },
    /// A declared lexeme (maximal-munch lexer token).
    Lexeme(LexemeId),
    /// A reference to a rule.
    Ref(RuleId),
    /// Concatenation.
    Seq(Vec<Expr>),
    /// Alternation.
    Alt(Vec<Expr>),
    /// `min` to `max` repetitions (`max == None`: unbounded).
    Repeat {
        /// The repeated expression.
        expr: Box<Expr>,
        /// Minimum number of repetitions.
        min: u32,
        /// Maximum number of repetitions, `None` for unbounded.
        max: Option<u32>,
    },
}

impl Expr {
    /// `expr?`
    pub fn opt(expr: Expr) -> Expr {
        Expr::Repeat { expr: Box::new(expr), min: 0, max: Some(1) }
    }
    /// `expr*`
    pub fn star(expr: Expr) -> Expr {
        Expr::Repeat { expr: Box::new(expr), min: 0, max: None }
    }
    /// `expr+`
    pub fn plus(expr: Expr) -> Expr {
        Expr::Repeat { expr: Box::new(expr), min: 1, max: None }
    }
    /// A class matching one character from `ranges`.
    pub fn class(ranges: Vec<(char, char)>) -> Expr {
        Expr::Class { ranges, negated: false }
    }
}

/// How a declared lexeme's language is given.
///
/// All forms describe sets of byte strings; a lexeme never matches the empty
/// string (the compiler removes the empty string from its language and makes
/// the reference optional instead).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LexemeSpec {
    /// A regular expression in `regex-syntax` syntax, matched against the whole
    /// lexeme (implicitly anchored at both ends).
    Regex(String),
    /// Exact text.
    Literal(String),
    /// Concatenation.
    Concat(Vec<LexemeSpec>),
    /// Union.
    Or(Vec<LexemeSpec>),
    /// Intersection: strings matched by every part.
    And(Vec<LexemeSpec>),
    /// Complement within valid UTF-8 strings: every UTF-8 string the inner spec
    /// does not match.
    Not(Box<LexemeSpec>),
}

/// A declared lexeme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexemeDef {
    /// Name used in error messages and debug output.
    pub name: String,
    /// The language.
    pub spec: LexemeSpec,
}

/// A rule: a named nonterminal with one body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDef {
    /// Name used in error messages and debug output.
    pub name: String,
    /// The body.
    pub body: Expr,
}

/// A complete grammar: rules, declared lexemes and a start rule.
///
/// Build one with [`GrammarBuilder`]; the front-ends do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grammar {
    pub(crate) rules: Vec<RuleDef>,
    pub(crate) lexemes: Vec<LexemeDef>,
    pub(crate) start: RuleId,
}

impl Grammar {
    /// The rules, indexed by [`RuleId`].
    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }
    /// The declared lexemes, indexed by [`LexemeId`].
    pub fn lexemes(&self) -> &[LexemeDef] {
        &self.lexemes
    }
    /// The start rule.
    pub fn start(&self) -> RuleId {
        self.start
    }
    /// The rule with this id.
    pub fn rule(&self, id: RuleId) -> &RuleDef {
        &self.rules[id.0 as usize]
    }
}
