//! Splits Lark grammar text into tokens, decoding string escapes on the way.
//!
//! The token set follows Lark's own grammar lexer (`lark/load_grammar.py`):
//! `//` and `#` comments, `\` line continuations, rule modifiers `?` and `!`
//! only at the start of a definition, `NAME` vs `name` by case.

use super::FORMAT;
use crate::error::{Error, SyntaxError};

/// A token kind with its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// A rule name: lowercase letters, digits and `_`.
    Rule(String),
    /// A terminal name: uppercase letters, digits and `_`.
    Term(String),
    /// `?`, `!`, `?!` or `!?` right before the name at the start of a rule definition.
    Modifier(String),
    /// A string literal, escapes decoded; `ci` for the `i` flag.
    Str {
        value: String,
        ci: bool,
    },
    /// A `/regex/flags` literal: the raw text between the slashes and the flags.
    Regex {
        raw: String,
        flags: String,
    },
    /// A decimal integer, possibly negative.
    Number(String),
    Colon,
    Pipe,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Question,
    Star,
    Plus,
    Tilde,
    Amp,
    Dot,
    DotDot,
    Arrow,
    /// `%name`: a directive such as `%ignore`.
    Directive(String),
    /// One or more line breaks.
    Newline,
    Eof,
}

impl Tok {
    /// How the token is shown in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Rule(n) => format!("rule name `{n}`"),
            Tok::Term(n) => format!("terminal name `{n}`"),
            Tok::Modifier(m) => format!("`{m}`"),
            Tok::Str { .. } => "a string".into(),
            Tok::Regex { .. } => "a regex".into(),
            Tok::Number(n) => format!("`{n}`"),
            Tok::Colon => "`:`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Question => "`?`".into(),
            Tok::Star => "`*`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Tilde => "`~`".into(),
            Tok::Amp => "`&`".into(),
            Tok::Dot => "`.`".into(),
            Tok::DotDot => "`..`".into(),
            Tok::Arrow => "`->`".into(),
            Tok::Directive(d) => format!("`%{d}`"),
            Tok::Newline => "a line break".into(),
            Tok::Eof => "the end of the input".into(),
        }
    }
}

/// A token and its byte span in the source.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Tokenizes `src`. The result always ends with [`Tok::Eof`].
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    Lexer { src, pos: 0, out: Vec::new() }.run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn error(&self, start: usize, end: usize, message: impl Into<String>) -> Error {
        Error::syntax(SyntaxError::at(FORMAT, self.src, start, end, message))
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.src.get(self.pos + offset..).and_then(|s| s.chars().next())
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token { tok, start, end: self.pos });
    }

    /// Whether the next token starts a definition (first token of a line).
    fn at_line_start(&self) -> bool {
        matches!(self.out.last().map(|t| &t.tok), None | Some(Tok::Newline))
    }

    fn run(mut self) -> Result<Vec<Token>, Error> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                ' ' | '\t' | '\r' | '\u{c}' => self.pos += 1,
                '\n' => {
                    self.pos += 1;
                    if !matches!(self.out.last().map(|t| &t.tok), None | Some(Tok::Newline)) {
                        self.push(Tok::Newline, start);
                    }
                }
                '#' => self.skip_comment(),
                '/' if self.peek_at(1) == Some('/') => self.skip_comment(),
                '/' => self.regex()?,
                '\\' => {
                    // A line continuation: `\`, optional spaces, a newline.
                    let rest = &self.src[self.pos + 1..];
                    let spaces = rest.len() - rest.trim_start_matches([' ', '\t', '\r']).len();
                    if rest[spaces..].starts_with('\n') {
                        self.pos += 1 + spaces + 1;
                    } else {
                        return Err(self.error(
                            start,
                            start + 1,
                            "unexpected `\\` (only a line continuation may end a line with `\\`)",
                        ));
                    }
                }
                '"' => self.string()?,
                '?' | '!' if self.at_line_start() => {
                    let len = if matches!((c, self.peek_at(1)), ('?', Some('!')) | ('!', Some('?'))) { 2 } else { 1 };
                    let next = self.peek_at(len);
                    if next.is_some_and(|n| n.is_ascii_lowercase() || n == '_') {
                        self.pos += len;
                        let m = self.src[start..self.pos].to_string();
                        self.push(Tok::Modifier(m), start);
                    } else if c == '?' {
                        self.pos += 1;
                        self.push(Tok::Question, start);
                    } else {
                        return Err(self.error(start, start + 1, "`!` must be followed by a rule name"));
                    }
                }
                '!' => {
                    return Err(self.error(
                        start,
                        start + 1,
                        "`!` is a rule modifier and only allowed at the start of a rule definition",
                    ))
                }
                '%' => {
                    self.pos += 1;
                    let n = self.src[self.pos..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(self.src.len() - self.pos);
                    if n == 0 {
                        return Err(self.error(start, start + 1, "expected a directive name after `%`"));
                    }
                    self.pos += n;
                    let d = self.src[start + 1..self.pos].to_string();
                    self.push(Tok::Directive(d), start);
                }
                c if c.is_ascii_digit() => self.number(start),
                '-' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.pos += 1;
                    self.number(start);
                }
                '-' if self.peek_at(1) == Some('>') => {
                    self.pos += 2;
                    self.push(Tok::Arrow, start);
                }
                '.' if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    self.push(Tok::DotDot, start);
                }
                c if c.is_ascii_alphabetic() || c == '_' => self.name()?,
                '<' => {
                    return Err(self.error(
                        start,
                        start + 1,
                        "special tokens (`<name>`, `<[id]>`) are not supported: formwork grammars match text",
                    ))
                }
                '@' => return Err(self.error(start, start + 1, "grammar references (`@name`) are not supported")),
                _ => {
                    let tok = match c {
                        ':' => Tok::Colon,
                        '|' => Tok::Pipe,
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        '{' => Tok::LBrace,
                        '}' => Tok::RBrace,
                        ',' => Tok::Comma,
                        '?' => Tok::Question,
                        '*' => Tok::Star,
                        '+' => Tok::Plus,
                        '~' => Tok::Tilde,
                        '&' => Tok::Amp,
                        '.' => Tok::Dot,
                        _ => {
                            return Err(self.error(start, start + c.len_utf8(), format!("unexpected character `{c}`")))
                        }
                    };
                    self.pos += c.len_utf8();
                    self.push(tok, start);
                }
            }
        }
        let end = self.src.len();
        self.out.push(Token { tok: Tok::Eof, start: end, end });
        Ok(self.out)
    }

    /// Skips to the end of the line (the newline itself is kept).
    fn skip_comment(&mut self) {
        self.pos = self.src[self.pos..].find('\n').map_or(self.src.len(), |i| self.pos + i);
    }

    fn number(&mut self, start: usize) {
        let rest = &self.src[self.pos..];
        self.pos += rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n = self.src[start..self.pos].to_string();
        self.push(Tok::Number(n), start);
    }

    /// A name: `_*` then a lowercase rule name or an uppercase terminal name.
    fn name(&mut self) -> Result<(), Error> {
        let start = self.pos;
        let rest = &self.src[self.pos..];
        self.pos += rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &self.src[start..self.pos];
        let core = name.trim_start_matches('_');
        let tok = match core.chars().next() {
            Some(c) if c.is_ascii_lowercase() && !core.contains(|c: char| c.is_ascii_uppercase()) => {
                Tok::Rule(name.to_string())
            }
            Some(c) if c.is_ascii_uppercase() && !core.contains(|c: char| c.is_ascii_lowercase()) => {
                Tok::Term(name.to_string())
            }
            _ => {
                return Err(self.error(
                    start,
                    self.pos,
                    format!(
                        "invalid name `{name}`: rule names are lowercase (`expr`), terminal names uppercase (`NUMBER`)"
                    ),
                ))
            }
        };
        self.push(tok, start);
        Ok(())
    }

    /// A `"..."` string with an optional `i` flag. Escapes follow Lark's
    /// `eval_escaping`: `\\ \" \n \t \r \f \xHH \uHHHH \UHHHHHHHH` are decoded;
    /// any other backslash is kept as written.
    fn string(&mut self) -> Result<(), Error> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, start + 1, "unterminated string literal"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\n' => {
                    return Err(self.error(
                        start,
                        self.pos,
                        "unterminated string literal (strings cannot contain line breaks; write `\\n`)",
                    ))
                }
                '\\' => {
                    let esc = self.pos;
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.error(start, start + 1, "unterminated string literal"));
                    };
                    if e == '\n' {
                        return Err(self.error(start, self.pos, "unterminated string literal"));
                    }
                    self.pos += e.len_utf8();
                    let digits = match e {
                        '\\' => {
                            value.push('\\');
                            continue;
                        }
                        '"' => {
                            value.push('"');
                            continue;
                        }
                        'n' | 't' | 'r' | 'f' => {
                            value.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                _ => '\u{c}',
                            });
                            continue;
                        }
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        other => {
                            value.push('\\');
                            value.push(other);
                            continue;
                        }
                    };
                    let hex = self.src.as_bytes()[self.pos..]
                        .iter()
                        .take(digits)
                        .take_while(|b| b.is_ascii_hexdigit())
                        .count();
                    if hex != digits {
                        return Err(self.error(
                            esc,
                            self.pos + hex,
                            format!("expected {digits} hex digits after `\\{e}`"),
                        ));
                    }
                    let text = &self.src[self.pos..self.pos + digits];
                    self.pos += digits;
                    match u32::from_str_radix(text, 16).ok().and_then(char::from_u32) {
                        Some(ch) => value.push(ch),
                        None => {
                            return Err(self.error(
                                esc,
                                self.pos,
                                format!("`\\{e}{text}` is not a Unicode scalar value"),
                            ))
                        }
                    }
                }
                c => {
                    value.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        let ci = self.peek() == Some('i');
        if ci {
            self.pos += 1;
        }
        self.push(Tok::Str { value, ci }, start);
        Ok(())
    }

    /// A `/.../flags` regex. `\/` stands for `/`; a line break is allowed
    /// only with the `x` flag, as in Lark.
    fn regex(&mut self) -> Result<(), Error> {
        let start = self.pos;
        self.pos += 1;
        let mut newline_at = None;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(start, start + 1, "unterminated regex"));
            };
            self.pos += c.len_utf8();
            match c {
                '/' => break,
                '\\' => {
                    if let Some(e) = self.peek() {
                        if e == '\n' {
                            newline_at.get_or_insert(self.pos);
                        }
                        self.pos += e.len_utf8();
                    }
                }
                '\n' => {
                    newline_at.get_or_insert(self.pos - 1);
                }
                _ => {}
            }
        }
        let raw = self.src[start + 1..self.pos - 1].to_string();
        let rest = &self.src[self.pos..];
        let n = rest.find(|c: char| !"imslux".contains(c)).unwrap_or(rest.len());
        let flags = rest[..n].to_string();
        self.pos += n;
        if let Some(at) = newline_at {
            if !flags.contains('x') {
                return Err(self.error(at, at + 1, "a regex may contain line breaks only with the `x` (verbose) flag"));
            }
        }
        self.push(Tok::Regex { raw, flags }, start);
        Ok(())
    }
}
