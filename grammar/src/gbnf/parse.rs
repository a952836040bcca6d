//! The GBNF parser: a recursive-descent pass over the text that mirrors
//! llama.cpp's `llama_grammar_parser`, building IR expressions directly.

use crate::error::{Error, SyntaxError};
use crate::ir::{Expr, Grammar, GrammarBuilder, RuleId};
use crate::Limits;

const FORMAT: &str = "GBNF";

/// The largest repetition count accepted in `{m}`, `{m,}` and `{m,n}`.
///
/// The IR keeps counts symbolic, so this bounds what later stages may be
/// asked to unroll, not what the front-end allocates.
pub const MAX_REPEAT: u32 = 100_000;

/// Parses a GBNF grammar with default [`Limits`].
///
/// The start rule is `root`. Errors name the line and column of the problem
/// and show the offending text.
pub fn parse(text: &str) -> Result<Grammar, Error> {
    parse_with_limits(text, &Limits::default())
}

/// Parses a GBNF grammar, bounding nesting by `limits.max_nesting`.
pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Grammar, Error> {
    let mut p = Parser {
        src: text,
        pos: 0,
        max_nesting: limits.max_nesting,
        depth: 0,
        builder: GrammarBuilder::new(),
        rules: Vec::new(),
    };
    p.skip_space(true);
    while p.pos < p.src.len() {
        p.parse_rule()?;
    }
    p.finish()
}

/// What the parser knows about one rule name.
struct RuleInfo {
    /// The body of the latest definition, if any.
    body: Option<Expr>,
    /// Byte span of the first reference, for "undefined rule" errors.
    first_ref: Option<(usize, usize)>,
}

/// An expression and its nesting height (a leaf has height 1).
type Node = (Expr, usize);

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
    max_nesting: usize,
    /// Current parenthesis depth.
    depth: usize,
    builder: GrammarBuilder,
    /// Indexed by `RuleId`: the builder hands out ids in first-mention order.
    rules: Vec<RuleInfo>,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.src.get(self.pos + offset..).and_then(|s| s.chars().next())
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn error(&self, start: usize, end: usize, message: impl Into<String>) -> Error {
        Error::syntax(SyntaxError::at(FORMAT, self.src, start, end, message))
    }

    /// An error spanning the character at the current position.
    fn error_here(&self, message: impl Into<String>) -> Error {
        let end = self.pos + self.peek().map_or(0, char::len_utf8);
        self.error(self.pos, end, message)
    }

    /// Skips spaces, tabs and `#` comments, and newlines when `newline_ok`.
    /// A comment ends before its newline, which then counts as a newline.
    fn skip_space(&mut self, newline_ok: bool) {
        let bytes = self.src.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\t' => self.pos += 1,
                b'\r' | b'\n' if newline_ok => self.pos += 1,
                b'#' => {
                    while let Some(&c) = bytes.get(self.pos) {
                        if c == b'\r' || c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Reads a rule name (`[A-Za-z0-9_-]+`); the caller checked that one starts here.
    fn parse_name(&mut self) -> &'a str {
        let start = self.pos;
        let len = self.rest().find(|c: char| !is_word_char(c)).unwrap_or(self.rest().len());
        self.pos += len;
        &self.src[start..self.pos]
    }

    fn rule_id(&mut self, name: &str) -> RuleId {
        let id = self.builder.declare(name);
        if id.0 as usize == self.rules.len() {
            self.rules.push(RuleInfo { body: None, first_ref: None });
        }
        id
    }

    fn parse_rule(&mut self) -> Result<(), Error> {
        match self.peek() {
            Some(c) if is_word_char(c) => {}
            Some('|') => {
                return Err(self.error_here(
                    "a line cannot start with `|`: a GBNF rule continues on the next line \
                     only after a trailing `|` or inside parentheses",
                ))
            }
            _ => return Err(self.error_here("expected a rule name")),
        }
        let name = self.parse_name();
        self.skip_space(false);
        if !self.rest().starts_with("::=") {
            return Err(self.error_here(format!("expected `::=` after the rule name `{name}`")));
        }
        self.pos += 3;
        self.skip_space(true);
        let id = self.rule_id(name);
        let (body, _) = self.parse_alternates(false)?;
        match self.peek() {
            None => {}
            Some('\n') => self.pos += 1,
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
            }
            Some(')') => return Err(self.error_here("unmatched `)`")),
            Some(c) => {
                let hint = if self.rest().starts_with("::=") { " (each rule must start on a new line)" } else { "" };
                return Err(self.error_here(format!(
                    "unexpected `{c}`: expected a newline or the end of the input after the rule body{hint}"
                )));
            }
        }
        self.skip_space(true);
        // llama.cpp replaces the body when a rule is defined again: the last
        // definition wins.
        self.rules[id.0 as usize].body = Some(body);
        Ok(())
    }

    /// `sequence ('|' sequence)*`. Newlines are allowed after `|`, and
    /// anywhere when `nested` (inside parentheses).
    fn parse_alternates(&mut self, nested: bool) -> Result<Node, Error> {
        let mut alts = vec![self.parse_sequence(nested)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            self.skip_space(true);
            alts.push(self.parse_sequence(nested)?);
        }
        Ok(combine(alts, Expr::Alt))
    }

    fn parse_sequence(&mut self, nested: bool) -> Result<Node, Error> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '"' => {
                    let e = self.parse_literal()?;
                    items.push((e, 1));
                }
                '[' => {
                    let e = self.parse_class()?;
                    items.push((e, 1));
                }
                '.' => {
                    self.pos += 1;
                    items.push((Expr::Class { ranges: vec![], negated: true }, 1));
                }
                '<' | '!' => {
                    return Err(self.error_here(
                        "token references (`<[id]>`, `<token>`, `!<...>`) are not supported: \
                         formwork grammars match text, not token ids",
                    ))
                }
                '(' => {
                    if self.depth >= self.max_nesting {
                        return Err(self.nesting_error(start));
                    }
                    self.depth += 1;
                    self.pos += 1;
                    self.skip_space(true);
                    let inner = self.parse_alternates(true)?;
                    if self.peek() != Some(')') {
                        let Some(c) = self.peek() else {
                            return Err(self.error(
                                start,
                                start + 1,
                                "unclosed `(`: expected `)` before the end of the input",
                            ));
                        };
                        let open = SyntaxError::at(FORMAT, self.src, start, start + 1, "");
                        return Err(self.error_here(format!(
                            "expected `)` to close the `(` at line {}, column {}, found `{c}`",
                            open.line, open.column
                        )));
                    }
                    self.pos += 1;
                    self.depth -= 1;
                    items.push(inner);
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.apply_repeat(&mut items, start, min, max)?;
                }
                '{' => {
                    let (min, max) = self.parse_braces(nested)?;
                    self.apply_repeat(&mut items, start, min, max)?;
                }
                c if is_word_char(c) => {
                    let name = self.parse_name();
                    let id = self.rule_id(name);
                    let info = &mut self.rules[id.0 as usize];
                    if info.first_ref.is_none() {
                        info.first_ref = Some((start, self.pos));
                    }
                    items.push((Expr::Ref(id), 1));
                }
                _ => break,
            }
            self.skip_space(nested);
        }
        Ok(combine(items, Expr::Seq))
    }

    fn nesting_error(&self, at: usize) -> Error {
        let e = SyntaxError::at(FORMAT, self.src, at, at + 1, "");
        Error::limit(
            "max_nesting",
            self.max_nesting,
            format!("parsing GBNF: parentheses nested too deeply at line {}, column {}", e.line, e.column),
        )
    }

    /// Applies a repetition operator that started at byte `at` to the last item.
    fn apply_repeat(&mut self, items: &mut [Node], at: usize, min: u32, max: Option<u32>) -> Result<(), Error> {
        let Some(last) = items.last_mut() else {
            return Err(self.error(at, self.pos, "repetition operator with nothing before it to repeat"));
        };
        let height = last.1 + 1;
        if height > self.max_nesting {
            return Err(self.nesting_error(at));
        }
        let expr = std::mem::replace(&mut last.0, Expr::Empty);
        *last = (Expr::Repeat { expr: Box::new(expr), min, max }, height);
        Ok(())
    }

    /// `{m}`, `{m,}` or `{m,n}`, spaces allowed inside. llama.cpp requires the
    /// minimum, so `{,n}` is an error.
    fn parse_braces(&mut self, nested: bool) -> Result<(u32, Option<u32>), Error> {
        let open = self.pos;
        self.pos += 1;
        self.skip_space(nested);
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            let hint = if self.peek() == Some(',') { " (write `{0,n}` for at most n)" } else { "" };
            return Err(self.error_here(format!("expected an integer after `{{`{hint}")));
        }
        let min = self.parse_count()?;
        self.skip_space(nested);
        let max = match self.peek() {
            Some('}') => Some(min),
            Some(',') => {
                self.pos += 1;
                self.skip_space(nested);
                let max = if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    let n = self.parse_count()?;
                    self.skip_space(nested);
                    Some(n)
                } else {
                    None
                };
                if self.peek() != Some('}') {
                    return Err(self.error_here("expected `}` to close the repetition"));
                }
                max
            }
            _ => return Err(self.error_here("expected `,` or `}` in the repetition")),
        };
        self.pos += 1; // the '}'
        if let Some(max) = max {
            if min > max {
                return Err(self.error(
                    open,
                    self.pos,
                    format!("repetition minimum {min} is larger than its maximum {max}"),
                ));
            }
        }
        Ok((min, max))
    }

    /// Reads a decimal repetition count, at most [`MAX_REPEAT`].
    fn parse_count(&mut self) -> Result<u32, Error> {
        let start = self.pos;
        let len = self.rest().find(|c: char| !c.is_ascii_digit()).unwrap_or(self.rest().len());
        self.pos += len;
        let digits = &self.src[start..self.pos];
        match digits.parse::<u32>() {
            Ok(n) if n <= MAX_REPEAT => Ok(n),
            _ => Err(self.error(
                start,
                self.pos,
                format!("repetition count {digits} is larger than the maximum {MAX_REPEAT}"),
            )),
        }
    }

    /// `"..."`; the opening quote is at the current position.
    fn parse_literal(&mut self) -> Result<Expr, Error> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error(open, open + 1, "unterminated string literal")),
                Some('"') => break,
                Some(_) => {
                    let start = self.pos;
                    let cp = self.parse_char()?;
                    match char::from_u32(cp) {
                        Some(c) => text.push(c),
                        None => {
                            return Err(self.error(
                                start,
                                self.pos,
                                format!(
                                    "U+{cp:04X} is not a Unicode scalar value, so no text can match it \
                                     (GBNF matches characters, not UTF-16 surrogates or bytes)"
                                ),
                            ))
                        }
                    }
                }
            }
        }
        self.pos += 1;
        Ok(if text.is_empty() { Expr::Empty } else { Expr::Literal(text) })
    }

    /// `[...]` or `[^...]`; the `[` is at the current position.
    fn parse_class(&mut self) -> Result<Expr, Error> {
        let open = self.pos;
        self.pos += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut any_item = false;
        loop {
            match self.peek() {
                None => return Err(self.error(open, open + 1, "unterminated character class")),
                Some(']') => break,
                Some(_) => {}
            }
            let start = self.pos;
            let lo = self.parse_char()?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.peek_at(1) != Some(']') {
                self.pos += 1;
                if self.peek().is_none() {
                    return Err(self.error(open, open + 1, "unterminated character class"));
                }
                hi = self.parse_char()?;
                if lo > hi {
                    return Err(self.error(
                        start,
                        self.pos,
                        format!("character range U+{lo:04X}-U+{hi:04X} is reversed (its start is after its end)"),
                    ));
                }
            }
            any_item = true;
            push_scalar_range(&mut ranges, lo, hi);
        }
        self.pos += 1;
        if !any_item {
            return Err(self.error(open, self.pos, "empty character class"));
        }
        Ok(Expr::Class { ranges, negated })
    }

    /// One character of a literal or class, escapes decoded, as a code point
    /// (which may be a surrogate or above U+10FFFF after `\u`/`\U`).
    fn parse_char(&mut self) -> Result<u32, Error> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.error_here("unexpected end of input"));
        };
        self.pos += c.len_utf8();
        if c != '\\' {
            return Ok(c as u32);
        }
        let Some(e) = self.peek() else {
            return Err(self.error(start, self.pos, "unexpected end of input after `\\`"));
        };
        self.pos += e.len_utf8();
        let digits = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            't' => return Ok('\t' as u32),
            'r' => return Ok('\r' as u32),
            'n' => return Ok('\n' as u32),
            '\\' | '"' | '[' | ']' | '-' => return Ok(e as u32),
            _ => {
                return Err(self.error(
                    start,
                    self.pos,
                    format!(
                    "unknown escape `\\{e}` (GBNF knows \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH)"
                ),
                ))
            }
        };
        let hex = self.rest().as_bytes().iter().take(digits).take_while(|b| b.is_ascii_hexdigit()).count();
        if hex != digits {
            let end = self.pos + hex;
            return Err(self.error(start, end, format!("expected {digits} hex digits after `\\{e}`")));
        }
        let value = u32::from_str_radix(&self.src[self.pos..self.pos + digits], 16);
        self.pos += digits;
        // Up to 8 hex digits always fit in a u32.
        value.map_err(|_| self.error(start, self.pos, "invalid hex escape"))
    }

    fn finish(mut self) -> Result<Grammar, Error> {
        let rules = std::mem::take(&mut self.rules);
        if rules.iter().all(|r| r.body.is_none() && r.first_ref.is_none()) {
            return Err(Error::grammar("the GBNF grammar is empty: it needs at least a `root` rule"));
        }
        for (i, info) in rules.into_iter().enumerate() {
            match info.body {
                Some(body) => self.builder.define(RuleId(i as u32), body)?,
                None => {
                    // A rule without a body was only ever referenced, so it
                    // has a first reference.
                    let (start, end) = info.first_ref.unwrap_or((0, 0));
                    let name = &self.src[start..end];
                    return Err(self.error(start, end, format!("undefined rule `{name}`")));
                }
            }
        }
        let Some(root) = self.builder.get("root") else {
            return Err(Error::grammar("the GBNF grammar has no `root` rule (the start rule)"));
        };
        self.builder.finish(root)
    }
}

/// Builds a `Seq` or `Alt` of `parts`, collapsing the trivial cases.
fn combine(mut parts: Vec<Node>, make: fn(Vec<Expr>) -> Expr) -> Node {
    match parts.len() {
        0 => (Expr::Empty, 1),
        1 => parts.pop().unwrap_or((Expr::Empty, 1)),
        _ => {
            let height = 1 + parts.iter().map(|p| p.1).max().unwrap_or(0);
            (make(parts.into_iter().map(|p| p.0).collect()), height)
        }
    }
}

/// Adds the Unicode scalar values of `lo..=hi` to `ranges`: code points that
/// are not scalar values (surrogates, above U+10FFFF) can never occur in
/// text, so they are clipped off the ends of the range, and a range of only
/// such code points is dropped. This is exactly what the range matches.
fn push_scalar_range(ranges: &mut Vec<(char, char)>, lo: u32, hi: u32) {
    let lo = if (0xD800..=0xDFFF).contains(&lo) { 0xE000 } else { lo };
    let hi = if (0xD800..=0xDFFF).contains(&hi) { 0xD7FF } else { hi.min(0x10FFFF) };
    if lo > hi {
        return;
    }
    if let (Some(a), Some(b)) = (char::from_u32(lo), char::from_u32(hi)) {
        ranges.push((a, b));
    }
}
