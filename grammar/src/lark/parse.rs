//! The Lark parser: tokens to an [`Ast`], by recursive descent over Lark's
//! grammar of grammars, then [lowering](super::lower) to the IR.

use super::ast::{Ast, Def, Node, Span};
use super::lexer::{tokenize, Tok, Token};
use super::{lower, FORMAT};
use crate::error::{Error, SyntaxError};
use crate::gbnf::MAX_REPEAT;
use crate::ir::Grammar;
use crate::Limits;

/// Parses a Lark-like grammar with default [`Limits`].
///
/// The start rule is `start`. Errors name the line and column of the
/// problem and show the offending text.
pub fn parse(text: &str) -> Result<Grammar, Error> {
    parse_with_limits(text, &Limits::default())
}

/// Parses a Lark-like grammar, bounding nesting by `limits.max_nesting`.
pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Grammar, Error> {
    let tokens = tokenize(text)?;
    let mut p =
        Parser { src: text, toks: tokens, i: 0, depth: 0, max_nesting: limits.max_nesting, ast: Ast::default() };
    p.parse_file()?;
    lower::lower(text, p.ast, limits)
}

/// A node and its nesting height (a leaf has height 1).
type Sized = (Node, usize);

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    /// Index of the next token.
    i: usize,
    /// Bracket depth; inside brackets line breaks are insignificant.
    depth: usize,
    max_nesting: usize,
    ast: Ast,
}

impl Parser<'_> {
    /// Index of the next significant token.
    fn next_index(&self) -> usize {
        let mut j = self.i;
        if self.depth > 0 {
            while j + 1 < self.toks.len() && self.toks[j].tok == Tok::Newline {
                j += 1;
            }
        }
        j.min(self.toks.len() - 1)
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.next_index()].tok
    }

    /// The significant token after the next one.
    fn peek2(&self) -> &Tok {
        let j = (self.next_index() + 1).min(self.toks.len() - 1);
        &self.toks[j].tok
    }

    fn bump(&mut self) -> Token {
        let j = self.next_index();
        self.i = (j + 1).min(self.toks.len() - 1);
        self.toks[j].clone()
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> Error {
        Error::syntax(SyntaxError::at(FORMAT, self.src, span.0, span.1, message))
    }

    /// An error at the next token.
    fn error_here(&self, message: impl Into<String>) -> Error {
        let t = &self.toks[self.next_index()];
        self.error((t.start, t.end), message)
    }

    fn unexpected(&self, expected: &str) -> Error {
        let found = self.peek().describe();
        self.error_here(format!("expected {expected}, found {found}"))
    }

    fn nesting_error(&self) -> Error {
        let t = &self.toks[self.next_index()];
        let e = SyntaxError::at(FORMAT, self.src, t.start, t.end, "");
        Error::limit(
            "max_nesting",
            self.max_nesting,
            format!("parsing Lark: expression nested too deeply at line {}, column {}", e.line, e.column),
        )
    }

    fn check_height(&self, height: usize) -> Result<(), Error> {
        if height > self.max_nesting {
            return Err(self.nesting_error());
        }
        Ok(())
    }

    fn parse_file(&mut self) -> Result<(), Error> {
        loop {
            match self.peek().clone() {
                Tok::Eof => return Ok(()),
                Tok::Newline => {
                    self.bump();
                }
                Tok::Modifier(_) | Tok::Rule(_) | Tok::Term(_) => self.parse_definition()?,
                Tok::Directive(d) => self.parse_directive(&d)?,
                Tok::Pipe => {
                    return Err(
                        self.error_here("`|` continues the previous definition only when it starts the next line")
                    )
                }
                _ => return Err(self.unexpected("a rule or terminal definition")),
            }
        }
    }

    /// `[modifier] name [.priority] : expansions`
    fn parse_definition(&mut self) -> Result<(), Error> {
        if let Tok::Modifier(_) = self.peek() {
            self.bump(); // `?` and `!` shape Lark's parse tree, not the language.
        }
        let name_tok = self.bump();
        let (name, is_term) = match name_tok.tok {
            Tok::Rule(n) => (n, false),
            Tok::Term(n) => (n, true),
            _ => return Err(self.error((name_tok.start, name_tok.end), "expected a rule name after the modifier")),
        };
        let span = (name_tok.start, name_tok.end);
        if self.peek() == &Tok::LBrace {
            return Err(self.error_here(format!("templates (`{name}{{...}}`) are not supported")));
        }
        if self.eat(&Tok::Dot) {
            // A priority only picks among parse trees (rules) or among
            // terminals matching the same text; see docs/grammar-syntax.md.
            match self.bump().tok {
                Tok::Number(_) => {}
                _ => return Err(self.error(span, format!("expected a priority number after `{name}.`"))),
            }
        }
        if !self.eat(&Tok::Colon) {
            return Err(self.unexpected(&format!("`:` after the name `{name}`")));
        }
        let (body, _) = self.parse_expansions()?;
        self.expect_end_of_definition()?;
        let def = Def { name, span, body };
        if is_term {
            self.ast.terminals.push(def);
        } else {
            self.ast.rules.push(def);
        }
        Ok(())
    }

    fn expect_end_of_definition(&mut self) -> Result<(), Error> {
        match self.peek() {
            Tok::Newline | Tok::Eof => Ok(()),
            Tok::Colon => Err(self.error_here("unexpected `:` (each definition must start on a new line)")),
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                let what = self.peek().describe();
                Err(self.error_here(format!("unmatched {what}")))
            }
            _ => Err(self.unexpected("a line break after the definition")),
        }
    }

    fn parse_directive(&mut self, name: &str) -> Result<(), Error> {
        let tok = self.bump();
        let span = (tok.start, tok.end);
        match name {
            "ignore" => {
                let (body, _) = self.parse_expansions()?;
                self.expect_end_of_definition()?;
                self.ast.ignores.push(body);
                Ok(())
            }
            "import" => {
                let mut what = String::new();
                let mut j = self.i;
                while let Tok::Rule(n) | Tok::Term(n) = &self.toks[j].tok {
                    what.push_str(n);
                    j += 1;
                    if self.toks[j].tok != Tok::Dot {
                        break;
                    }
                    what.push('.');
                    j += 1;
                }
                let last = what.rsplit('.').next().unwrap_or("");
                let hint = match common_definition(last) {
                    Some(def) => format!("; define it in the grammar instead, e.g. `{last}: {def}`"),
                    None => "; define the rules and terminals you need in the grammar instead".to_string(),
                };
                Err(self.error(span, format!("`%import` is not supported{hint}")))
            }
            "declare" | "override" | "extend" => Err(self.error(span, format!("`%{name}` is not supported"))),
            "json" | "regex" | "llguidance" => {
                Err(self.error(span, format!("`%{name}` (an llguidance extension) is not supported")))
            }
            _ => Err(self.error(span, format!("unknown directive `%{name}`"))),
        }
    }

    /// `alias ('|' alias)*`; at the top level, `|` may also start the next line.
    fn parse_expansions(&mut self) -> Result<Sized, Error> {
        let mut alts = vec![self.parse_alias()?];
        loop {
            if self.eat(&Tok::Pipe) {
                alts.push(self.parse_alias()?);
                continue;
            }
            if self.depth == 0
                && self.toks[self.i].tok == Tok::Newline
                && self.toks.get(self.i + 1).map(|t| &t.tok) == Some(&Tok::Pipe)
            {
                self.i += 2;
                alts.push(self.parse_alias()?);
                continue;
            }
            break;
        }
        combine(alts, Node::Alt, |h| self.check_height(h))
    }

    /// `intersection ['->' name]`; the alias only names a parse-tree node.
    fn parse_alias(&mut self) -> Result<Sized, Error> {
        let node = self.parse_intersection()?;
        if self.eat(&Tok::Arrow) {
            match self.bump().tok {
                Tok::Rule(_) => {}
                _ => {
                    let t = &self.toks[self.i.saturating_sub(1)];
                    return Err(self.error((t.start, t.end), "expected a lowercase alias name after `->`"));
                }
            }
        }
        Ok(node)
    }

    /// `sequence ('&' sequence)*` (llguidance's intersection, terminals only).
    fn parse_intersection(&mut self) -> Result<Sized, Error> {
        let first = self.parse_sequence()?;
        if self.peek() != &Tok::Amp {
            return Ok(first);
        }
        let t = &self.toks[self.next_index()];
        let span = (t.start, t.end);
        let mut parts = vec![first];
        while self.eat(&Tok::Amp) {
            parts.push(self.parse_sequence()?);
        }
        let height = 1 + parts.iter().map(|p| p.1).max().unwrap_or(0);
        self.check_height(height)?;
        Ok((Node::And(parts.into_iter().map(|p| p.0).collect(), span), height))
    }

    fn parse_sequence(&mut self) -> Result<Sized, Error> {
        let mut items = Vec::new();
        while matches!(
            self.peek(),
            Tok::Str { .. }
                | Tok::Regex { .. }
                | Tok::Rule(_)
                | Tok::Term(_)
                | Tok::LParen
                | Tok::LBracket
                | Tok::Tilde
        ) {
            items.push(self.parse_expr()?);
        }
        combine(items, Node::Seq, |h| self.check_height(h))
    }

    /// `'~'* atom postfix*`
    fn parse_expr(&mut self) -> Result<Sized, Error> {
        let mut negations = Vec::new();
        while self.peek() == &Tok::Tilde {
            if matches!(self.peek2(), Tok::Number(_)) {
                return Err(self.error_here("`~ n` repetition needs an item before it"));
            }
            let t = self.bump();
            negations.push((t.start, t.end));
        }
        let (mut node, mut height) = self.parse_atom()?;
        for span in negations.into_iter().rev() {
            height += 1;
            self.check_height(height)?;
            node = Node::Not(Box::new(node), span);
        }
        loop {
            let (min, max) = match self.peek() {
                Tok::Question | Tok::Star | Tok::Plus => match self.bump().tok {
                    Tok::Question => (0, Some(1)),
                    Tok::Star => (0, None),
                    _ => (1, None),
                },
                Tok::Tilde if matches!(self.peek2(), Tok::Number(_)) => {
                    self.bump();
                    self.parse_tilde_range()?
                }
                Tok::LBrace if matches!(self.peek2(), Tok::Number(_) | Tok::Comma) => self.parse_brace_range()?,
                _ => break,
            };
            height += 1;
            self.check_height(height)?;
            node = Node::Repeat { node: Box::new(node), min, max };
        }
        Ok((node, height))
    }

    /// After `~`: `n` or `n..m`.
    fn parse_tilde_range(&mut self) -> Result<(u32, Option<u32>), Error> {
        let start = self.toks[self.next_index()].start;
        let min = self.parse_count()?;
        let max = if self.eat(&Tok::DotDot) {
            match self.peek() {
                Tok::Number(_) => self.parse_count()?,
                _ => return Err(self.unexpected("a number after `..`")),
            }
        } else {
            min
        };
        let end = self.toks[self.i.saturating_sub(1)].end;
        if min > max {
            return Err(self.error((start, end), format!("repetition range {min}..{max} is reversed")));
        }
        Ok((min, Some(max)))
    }

    /// `{m}`, `{m,}`, `{,n}` or `{m,n}` (llguidance's extension).
    fn parse_brace_range(&mut self) -> Result<(u32, Option<u32>), Error> {
        let open = self.bump();
        let min = if matches!(self.peek(), Tok::Number(_)) { self.parse_count()? } else { 0 };
        let max = if self.eat(&Tok::Comma) {
            if matches!(self.peek(), Tok::Number(_)) {
                Some(self.parse_count()?)
            } else {
                None
            }
        } else {
            Some(min)
        };
        if !matches!(self.peek(), Tok::RBrace) {
            return Err(self.unexpected("`}` to close the repetition"));
        }
        let close = self.bump();
        if let Some(max) = max {
            if min > max {
                return Err(self.error(
                    (open.start, close.end),
                    format!("repetition minimum {min} is larger than its maximum {max}"),
                ));
            }
        }
        Ok((min, max))
    }

    fn parse_count(&mut self) -> Result<u32, Error> {
        let t = self.bump();
        let Tok::Number(n) = &t.tok else {
            return Err(self.error((t.start, t.end), "expected a number"));
        };
        if n.starts_with('-') {
            return Err(self.error((t.start, t.end), "a repetition count cannot be negative"));
        }
        match n.parse::<u32>() {
            Ok(v) if v <= MAX_REPEAT => Ok(v),
            _ => {
                Err(self
                    .error((t.start, t.end), format!("repetition count {n} is larger than the maximum {MAX_REPEAT}")))
            }
        }
    }

    fn parse_atom(&mut self) -> Result<Sized, Error> {
        match self.peek().clone() {
            Tok::LParen | Tok::LBracket => {
                let optional = self.peek() == &Tok::LBracket;
                let open = self.bump();
                if self.depth >= self.max_nesting {
                    return Err(self.nesting_error());
                }
                self.depth += 1;
                let (inner, height) = self.parse_expansions()?;
                let close = if optional { Tok::RBracket } else { Tok::RParen };
                if self.peek() == &Tok::Eof {
                    let what = open.tok.describe();
                    return Err(self.error(
                        (open.start, open.end),
                        format!("unclosed {what}: expected {} before the end of the input", close.describe()),
                    ));
                }
                if self.peek() != &close {
                    let opened = SyntaxError::at(FORMAT, self.src, open.start, open.end, "");
                    return Err(self.unexpected(&format!(
                        "{} to close the {} at line {}, column {}",
                        close.describe(),
                        open.tok.describe(),
                        opened.line,
                        opened.column
                    )));
                }
                self.bump();
                self.depth -= 1;
                if optional {
                    self.check_height(height + 1)?;
                    Ok((Node::Repeat { node: Box::new(inner), min: 0, max: Some(1) }, height + 1))
                } else {
                    Ok((inner, height))
                }
            }
            Tok::Str { value, ci } => {
                let t = self.bump();
                if self.peek() != &Tok::DotDot {
                    return Ok((Node::Str { value, ci, span: (t.start, t.end) }, 1));
                }
                self.bump();
                let t2 = self.bump();
                let Tok::Str { value: value2, ci: ci2 } = &t2.tok else {
                    return Err(self.error((t2.start, t2.end), "expected a string after `..`"));
                };
                let span = (t.start, t2.end);
                let (lo, hi) = match (single_char(&value), single_char(value2)) {
                    (Some(lo), Some(hi)) if !ci && !ci2 => (lo, hi),
                    _ => {
                        return Err(
                            self.error(span, "a range `\"a\"..\"z\"` needs two single-character strings without flags")
                        )
                    }
                };
                if lo > hi {
                    return Err(self.error(span, format!("range {lo:?}..{hi:?} is reversed")));
                }
                Ok((Node::Range { lo, hi, span }, 1))
            }
            Tok::Regex { raw, flags } => {
                let t = self.bump();
                Ok((Node::Regex { raw, flags, span: (t.start, t.end) }, 1))
            }
            Tok::Rule(name) | Tok::Term(name) => {
                let t = self.bump();
                if self.peek() == &Tok::LBrace && !matches!(self.peek2(), Tok::Number(_) | Tok::Comma) {
                    return Err(self.error_here(format!("templates (`{name}{{...}}`) are not supported")));
                }
                Ok((Node::Name { name, span: (t.start, t.end) }, 1))
            }
            _ => Err(self.unexpected("a string, regex, name or group")),
        }
    }
}

fn single_char(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Builds a `Seq` or `Alt` of `parts`, collapsing the trivial cases.
fn combine(
    mut parts: Vec<Sized>,
    make: fn(Vec<Node>) -> Node,
    check: impl Fn(usize) -> Result<(), Error>,
) -> Result<Sized, Error> {
    match parts.len() {
        0 => Ok((Node::Seq(Vec::new()), 1)),
        1 => Ok(parts.pop().unwrap_or((Node::Seq(Vec::new()), 1))),
        _ => {
            let height = 1 + parts.iter().map(|p| p.1).max().unwrap_or(0);
            check(height)?;
            Ok((make(parts.into_iter().map(|p| p.0).collect()), height))
        }
    }
}

/// Definitions of the most used names of Lark's `common.lark`, suggested when
/// a grammar tries to `%import` them.
fn common_definition(name: &str) -> Option<&'static str> {
    Some(match name {
        "WS" => r"/[ \t\f\r\n]+/",
        "WS_INLINE" => r"/[ \t]+/",
        "NEWLINE" => r"/(\r?\n[\t ]*)+/",
        "CR" => r#""\r""#,
        "LF" => r#""\n""#,
        "DIGIT" => r#""0".."9""#,
        "HEXDIGIT" => r"/[a-fA-F0-9]/",
        "INT" => r"/[0-9]+/",
        "SIGNED_INT" => r"/[+-]?[0-9]+/",
        "DECIMAL" => r"/[0-9]+\.[0-9]*|\.[0-9]+/",
        "NUMBER" => r"/[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?/",
        "SIGNED_NUMBER" => r"/[+-]?([0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?)/",
        "FLOAT" => r"/[0-9]+\.[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+/",
        "LETTER" => r"/[a-zA-Z]/",
        "LCASE_LETTER" => r#""a".."z""#,
        "UCASE_LETTER" => r#""A".."Z""#,
        "WORD" => r"/[a-zA-Z]+/",
        "CNAME" => r"/[a-zA-Z_][a-zA-Z0-9_]*/",
        "ESCAPED_STRING" => r#"/"([^"\\]|\\.)*"/"#,
        "SH_COMMENT" => r"/#[^\n]*/",
        "CPP_COMMENT" => r"/\/\/[^\n]*/",
        _ => return None,
    })
}
