//! The crate's error type.

use std::fmt;

/// An error from building, compiling or running a grammar.
///
/// Match on [`Error::kind`] to tell the cases apart; the `Display` output is
/// meant for people (syntax errors show the offending line with `^` markers).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: Box<ErrorKind>,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Grammar text (GBNF, Lark, a regex) could not be parsed. Triggered by
    /// malformed front-end input.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A grammar is well-formed text but not a valid grammar: an undefined or
    /// doubly defined rule, a missing start rule, an empty language.
    #[error("invalid grammar: {0}")]
    Grammar(String),
    /// A lexeme's regular expression is invalid or unsupported.
    #[error("invalid regex in lexeme `{lexeme}`: {message}")]
    Regex {
        /// The lexeme's name.
        lexeme: String,
        /// What is wrong.
        message: String,
    },
    /// A configured limit ([`crate::Limits`]) was exceeded.
    #[error("limit `{limit}` ({value}) exceeded while {context}")]
    Limit {
        /// The limit's field name in [`crate::Limits`].
        limit: &'static str,
        /// Its value.
        value: usize,
        /// What was being done.
        context: String,
    },
    /// A JSON Schema (or a keyword in it) cannot be compiled exactly. Names
    /// the keyword and the JSON pointer of the schema that holds it.
    #[error("JSON Schema keyword `{keyword}` at `{pointer}`: {message}")]
    Schema {
        /// The JSON pointer of the (sub)schema, e.g. `/properties/age`.
        pointer: String,
        /// The keyword, e.g. `pattern`.
        keyword: String,
        /// What is wrong or unsupported.
        message: String,
    },
    /// The vocabulary is inconsistent (EOS out of range, no tokens).
    #[error("invalid vocabulary: {0}")]
    Vocabulary(String),
    /// A token was fed to a matcher that the grammar does not allow.
    #[error("token {token} ({text:?}) at position {position} is not allowed by the grammar")]
    TokenRejected {
        /// The token id.
        token: u32,
        /// The bytes of the token, lossily decoded.
        text: String,
        /// How many tokens had been accepted before it.
        position: usize,
    },
    /// A token id is outside the vocabulary.
    #[error("token {token} is outside the vocabulary of {vocab_size} tokens")]
    TokenOutOfRange {
        /// The token id.
        token: u32,
        /// Vocabulary size.
        vocab_size: usize,
    },
    /// A mask buffer has the wrong length.
    #[error("mask has {actual} words, expected {expected}")]
    MaskLength {
        /// Expected number of `u32` words.
        expected: usize,
        /// Actual number.
        actual: usize,
    },
    /// The matcher already stopped after an error; call `reset`.
    #[error("matcher stopped after an earlier error: {0}")]
    Stopped(Box<Error>),
}

/// A syntax error with its position in the source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Which format was being parsed ("GBNF", "Lark", "regex", ...).
    pub format: &'static str,
    /// What is wrong.
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The text of the offending line.
    pub line_text: String,
    /// Number of characters to underline (at least 1).
    pub width: usize,
}

impl SyntaxError {
    /// Builds a syntax error for the byte range `start..end` of `source`.
    pub fn at(format: &'static str, source: &str, start: usize, end: usize, message: impl Into<String>) -> Self {
        let start = floor_char_boundary(source, start.min(source.len()));
        let end = floor_char_boundary(source, end.max(start).min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..end.min(line_end).max(start)].chars().count().max(1);
        SyntaxError {
            format,
            message: message.into(),
            line,
            column,
            line_text: source[line_start..line_end].to_string(),
            width,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind: Box::new(kind) }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn syntax(e: SyntaxError) -> Self {
        Self::new(ErrorKind::Syntax(e))
    }

    pub(crate) fn grammar(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Grammar(msg.into()))
    }

    #[allow(dead_code)] // used by the JSON Schema front-end
    pub(crate) fn schema(pointer: impl Into<String>, keyword: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Schema { pointer: pointer.into(), keyword: keyword.into(), message: message.into() })
    }

    pub(crate) fn limit(limit: &'static str, value: usize, context: impl Into<String>) -> Self {
        Self::new(ErrorKind::Limit { limit, value, context: context.into() })
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} syntax error at line {}, column {}: {}", self.format, self.line, self.column, self.message)?;
        writeln!(f, "  | {}", self.line_text)?;
        let pad: String =
            self.line_text.chars().take(self.column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        write!(f, "  | {}{}", pad, "^".repeat(self.width))
    }
}
