//! ECMA-262 regular expressions over decoded characters, translated into
//! regexes over the JSON-escaped encoding of a string.
//!
//! Where it sits: `pattern` (and the format regexes of `formats.rs`) ->
//! [`parse`] -> [`Node`] -> [`search_regex`] / [`full_regex`] -> a
//! `regex-syntax` regex matched against the *body* of a JSON string lexeme
//! (the bytes between the quotes).
//!
//! The encoding a string lexeme accepts for each character is the one
//! `json.dumps(ensure_ascii=False)` and `serde_json` write: the character
//! itself, except `"` (`\"`), `\` (`\\`), the five control characters with a
//! short escape (`\b \f \n \r \t`) and the other control characters
//! (`\u00XX`, either case of hex digit). Every string value has exactly one
//! accepted spelling up to the case of those hex digits, so one decoded
//! character is one unit of the encoded regex, and lengths count code points.
//!
//! Supported ECMA-262 syntax: literals, `.`, classes (ranges, negation,
//! `\d \D \w \W \s \S`, `\p{..}`), escapes (`\t \n \v \f \r \0 \cX \xHH
//! \uHHHH \u{H..}`, surrogate pairs, identity escapes), groups (capturing,
//! named, non-capturing), alternation, quantifiers (greedy or lazy: the same
//! language), and the anchors `^`/`$` at the start/end of a top-level
//! alternative. A pattern is a search: unanchored ends match anything.
//! Refused: look-around, backreferences, word boundaries, anchors elsewhere.

use std::fmt::Write;

/// A set of Unicode scalar values as sorted, disjoint inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct CharSet(pub(crate) Vec<(u32, u32)>);

const MAX_CP: u32 = 0x10FFFF;

impl CharSet {
    pub(crate) fn single(c: u32) -> Self {
        CharSet(vec![(c, c)])
    }
    pub(crate) fn range(a: u32, b: u32) -> Self {
        CharSet(vec![(a.min(b), a.max(b))]).normalized()
    }
    pub(crate) fn any() -> Self {
        CharSet(vec![(0, MAX_CP)]).normalized()
    }
    /// Sorts, merges and removes the surrogates.
    fn normalized(mut self) -> Self {
        self.0.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::new();
        for (a, b) in self.0 {
            let b = b.min(MAX_CP);
            if a > b {
                continue;
            }
            for (x, y) in [(a, b.min(0xD7FF)), (a.max(0xE000), b)] {
                if x > y {
                    continue;
                }
                match out.last_mut() {
                    Some(last) if x <= last.1.saturating_add(1) => last.1 = last.1.max(y),
                    _ => out.push((x, y)),
                }
            }
        }
        CharSet(out)
    }
    pub(crate) fn union(mut self, other: &CharSet) -> Self {
        self.0.extend_from_slice(&other.0);
        self.normalized()
    }
    pub(crate) fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = 0u32;
        for &(a, b) in &self.0 {
            if a > next {
                out.push((next, a - 1));
            }
            next = b.saturating_add(1);
        }
        if next <= MAX_CP {
            out.push((next, MAX_CP));
        }
        CharSet(out).normalized()
    }
    pub(crate) fn minus(&self, other: &CharSet) -> Self {
        let c = other.complement();
        self.intersect(&c)
    }
    pub(crate) fn intersect(&self, other: &CharSet) -> Self {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                let (x, y) = (a.max(c), b.min(d));
                if x <= y {
                    out.push((x, y));
                }
            }
        }
        CharSet(out).normalized()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Empty,
    Set(CharSet),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
    Start,
    End,
}

/// Why a pattern cannot be translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PatternError(pub(crate) String);

type R<T> = Result<T, PatternError>;

fn err<T>(msg: impl Into<String>) -> R<T> {
    Err(PatternError(msg.into()))
}

/// Bound on repetition counts (larger ones make automata too big anyway).
const MAX_REPEAT: u32 = 10_000;
/// Bound on nesting of groups.
const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    src: &'a str,
}

/// Parses an ECMA-262 pattern (no flags).
pub(crate) fn parse(src: &str) -> R<Node> {
    let mut p = Parser { chars: src.chars().collect(), pos: 0, src };
    let n = p.disjunction(0)?;
    if p.pos < p.chars.len() {
        return err(format!("unbalanced `)` in pattern {:?}", p.src));
    }
    Ok(n)
}

fn digit_class() -> CharSet {
    CharSet::range('0' as u32, '9' as u32)
}
fn word_class() -> CharSet {
    CharSet(vec![
        ('0' as u32, '9' as u32),
        ('A' as u32, 'Z' as u32),
        ('_' as u32, '_' as u32),
        ('a' as u32, 'z' as u32),
    ])
    .normalized()
}
fn space_class() -> CharSet {
    CharSet(vec![
        (0x09, 0x0D),
        (0x20, 0x20),
        (0xA0, 0xA0),
        (0x1680, 0x1680),
        (0x2000, 0x200A),
        (0x2028, 0x2029),
        (0x202F, 0x202F),
        (0x205F, 0x205F),
        (0x3000, 0x3000),
        (0xFEFF, 0xFEFF),
    ])
    .normalized()
}
/// `.`: everything but line terminators.
pub(crate) fn dot_class() -> CharSet {
    CharSet(vec![(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]).complement()
}

enum ClassAtom {
    Char(u32),
    Set(CharSet),
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn disjunction(&mut self, depth: usize) -> R<Node> {
        if depth > MAX_DEPTH {
            return err("pattern nested too deeply");
        }
        let mut alts = vec![self.alternative(depth)?];
        while self.eat('|') {
            alts.push(self.alternative(depth)?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Node::Empty) } else { Node::Alt(alts) })
    }

    fn alternative(&mut self, depth: usize) -> R<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = match c {
                '^' => {
                    self.pos += 1;
                    items.push(Node::Start);
                    continue;
                }
                '$' => {
                    self.pos += 1;
                    items.push(Node::End);
                    continue;
                }
                '(' => self.group(depth)?,
                '.' => {
                    self.pos += 1;
                    Node::Set(dot_class())
                }
                '[' => self.class()?,
                '\\' => self.atom_escape()?,
                '*' | '+' | '?' => return err(format!("nothing to repeat in pattern {:?}", self.src)),
                '{' if self.quantifier_ahead() => return err(format!("nothing to repeat in pattern {:?}", self.src)),
                _ => {
                    self.pos += 1;
                    Node::Set(CharSet::single(c as u32))
                }
            };
            let atom = self.quantified(atom)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// Whether `{n}`, `{n,}` or `{n,m}` starts here.
    fn quantifier_ahead(&self) -> bool {
        let mut i = self.pos;
        if self.chars.get(i) != Some(&'{') {
            return false;
        }
        i += 1;
        let start = i;
        while self.chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if self.chars.get(i) == Some(&',') {
            i += 1;
            while self.chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
        }
        self.chars.get(i) == Some(&'}')
    }

    fn number(&mut self) -> R<u32> {
        let mut n: u64 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            n = (n * 10 + d as u64).min(u64::from(u32::MAX));
            self.pos += 1;
        }
        if n > MAX_REPEAT as u64 {
            return err(format!("repetition count {n} is too large (at most {MAX_REPEAT})"));
        }
        Ok(n as u32)
    }

    fn quantified(&mut self, atom: Node) -> R<Node> {
        let (min, max) = match self.peek() {
            Some('*') => {
                self.pos += 1;
                (0, None)
            }
            Some('+') => {
                self.pos += 1;
                (1, None)
            }
            Some('?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some('{') if self.quantifier_ahead() => {
                self.pos += 1;
                let min = self.number()?;
                let max = if self.eat(',') {
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number()?)
                    }
                } else {
                    Some(min)
                };
                self.pos += 1; // '}'
                if max.is_some_and(|m| m < min) {
                    return err(format!("numbers out of order in quantifier in pattern {:?}", self.src));
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.eat('?'); // lazy: same language
        if matches!(atom, Node::Start | Node::End) {
            return err("quantified anchor");
        }
        if matches!(self.peek(), Some('*' | '+' | '?')) || (self.peek() == Some('{') && self.quantifier_ahead()) {
            return err(format!("nothing to repeat in pattern {:?}", self.src));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn group(&mut self, depth: usize) -> R<Node> {
        self.pos += 1; // '('
        if self.eat('?') {
            match self.peek() {
                Some(':') => self.pos += 1,
                Some('=') | Some('!') => return err("look-ahead is not supported"),
                Some('<') => {
                    if matches!(self.peek_at(1), Some('=') | Some('!')) {
                        return err("look-behind is not supported");
                    }
                    // named group
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '>' {
                            break;
                        }
                    }
                }
                _ => return err(format!("invalid group in pattern {:?}", self.src)),
            }
        }
        let inner = self.disjunction(depth + 1)?;
        if !self.eat(')') {
            return err(format!("unclosed group in pattern {:?}", self.src));
        }
        Ok(inner)
    }

    fn hex(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for k in 0..n {
            let d = self.peek_at(k)?.to_digit(16)?;
            v = v * 16 + d;
        }
        self.pos += n;
        Some(v)
    }

    /// `\u` escapes, combining surrogate pairs. The `\u` is consumed.
    fn unicode_escape(&mut self) -> R<u32> {
        if self.peek() == Some('{') {
            let save = self.pos;
            self.pos += 1;
            let mut v: u32 = 0;
            let mut n = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                v = v.saturating_mul(16).saturating_add(d);
                n += 1;
                self.pos += 1;
            }
            if n > 0 && self.eat('}') && v <= MAX_CP {
                return Ok(v);
            }
            self.pos = save;
            return Ok('u' as u32);
        }
        match self.hex(4) {
            Some(hi) if (0xD800..0xDC00).contains(&hi) => {
                if self.peek() == Some('\\') && self.peek_at(1) == Some('u') {
                    let save = self.pos;
                    self.pos += 2;
                    match self.hex(4) {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            return Ok(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                        }
                        _ => self.pos = save,
                    }
                }
                err("a lone surrogate in a pattern is not supported")
            }
            Some(v) if (0xDC00..0xE000).contains(&v) => err("a lone surrogate in a pattern is not supported"),
            Some(v) => Ok(v),
            None => Ok('u' as u32),
        }
    }

    fn property(&mut self, negated: bool) -> R<CharSet> {
        // \p{...}: let regex-syntax resolve the property.
        if !self.eat('{') {
            return err("`\\p` without `{`");
        }
        let mut name = String::new();
        loop {
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    name.push(c);
                    self.pos += 1;
                }
                None => return err("unclosed `\\p{`"),
            }
        }
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(&format!("\\p{{{name}}}"))
            .map_err(|e| PatternError(format!("unknown Unicode property {name:?}: {e}")))?;
        let set = match hir.kind() {
            regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => {
                CharSet(c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect()).normalized()
            }
            _ => return err(format!("unsupported Unicode property {name:?}")),
        };
        Ok(if negated { set.complement() } else { set })
    }

    /// An escape outside or inside a class; the backslash is at `pos`.
    fn escape(&mut self, in_class: bool) -> R<ClassAtom> {
        self.pos += 1; // '\'
        let Some(c) = self.peek() else { return err("pattern ends with `\\`") };
        self.pos += 1;
        Ok(match c {
            'd' => ClassAtom::Set(digit_class()),
            'D' => ClassAtom::Set(digit_class().complement()),
            'w' => ClassAtom::Set(word_class()),
            'W' => ClassAtom::Set(word_class().complement()),
            's' => ClassAtom::Set(space_class()),
            'S' => ClassAtom::Set(space_class().complement()),
            'p' => ClassAtom::Set(self.property(false)?),
            'P' => ClassAtom::Set(self.property(true)?),
            't' => ClassAtom::Char(9),
            'n' => ClassAtom::Char(10),
            'v' => ClassAtom::Char(11),
            'f' => ClassAtom::Char(12),
            'r' => ClassAtom::Char(13),
            'b' if in_class => ClassAtom::Char(8),
            'b' | 'B' => return err("word boundaries (`\\b`, `\\B`) are not supported"),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => ClassAtom::Char(0),
            '1'..='9' if !in_class => return err("backreferences are not supported"),
            'k' if !in_class && self.peek() == Some('<') => return err("backreferences are not supported"),
            'c' => match self.peek() {
                Some(l) if l.is_ascii_alphabetic() => {
                    self.pos += 1;
                    ClassAtom::Char(l as u32 % 32)
                }
                _ => ClassAtom::Char('\\' as u32), // Annex B: `\c` is a literal backslash
            },
            'x' => match self.hex(2) {
                Some(v) => ClassAtom::Char(v),
                None => ClassAtom::Char('x' as u32),
            },
            'u' => ClassAtom::Char(self.unicode_escape()?),
            other => ClassAtom::Char(other as u32),
        })
    }

    fn atom_escape(&mut self) -> R<Node> {
        Ok(match self.escape(false)? {
            ClassAtom::Char(c) => Node::Set(CharSet::single(c)),
            ClassAtom::Set(s) => Node::Set(s),
        })
    }

    fn class_atom(&mut self) -> R<ClassAtom> {
        match self.peek() {
            Some('\\') => self.escape(true),
            Some(c) => {
                self.pos += 1;
                Ok(ClassAtom::Char(c as u32))
            }
            None => err(format!("unclosed character class in pattern {:?}", self.src)),
        }
    }

    fn class(&mut self) -> R<Node> {
        self.pos += 1; // '['
        let negated = self.eat('^');
        let mut set = CharSet::default();
        loop {
            match self.peek() {
                None => return err(format!("unclosed character class in pattern {:?}", self.src)),
                Some(']') => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            let a = self.class_atom()?;
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                let b = self.class_atom()?;
                match (a, b) {
                    (ClassAtom::Char(x), ClassAtom::Char(y)) => {
                        if x > y {
                            return err(format!("range out of order in character class in pattern {:?}", self.src));
                        }
                        set = set.union(&CharSet::range(x, y));
                    }
                    (a, b) => {
                        // Annex B: a class escape in a range is literal `-`
                        for x in [a, b] {
                            set = match x {
                                ClassAtom::Char(c) => set.union(&CharSet::single(c)),
                                ClassAtom::Set(s) => set.union(&s),
                            };
                        }
                        set = set.union(&CharSet::single('-' as u32));
                    }
                }
            } else {
                set = match a {
                    ClassAtom::Char(c) => set.union(&CharSet::single(c)),
                    ClassAtom::Set(s) => set.union(&s),
                };
            }
        }
        Ok(Node::Set(if negated { set.complement() } else { set }))
    }
}

/// Writes one code point as a regex-syntax escape.
fn cp(out: &mut String, c: u32) {
    let _ = write!(out, "\\x{{{c:X}}}");
}

/// The regex (over the JSON-escaped encoding) for one character of `set`.
pub(crate) fn encode_set(set: &CharSet) -> String {
    let special = CharSet(vec![(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]);
    let raw = set.minus(&special);
    let mut alts: Vec<String> = Vec::new();
    if !raw.is_empty() {
        let mut s = String::from("[");
        for &(a, b) in &raw.0 {
            cp(&mut s, a);
            if b != a {
                s.push('-');
                cp(&mut s, b);
            }
        }
        s.push(']');
        alts.push(s);
    }
    let specials = set.intersect(&special);
    for &(a, b) in &specials.0 {
        for c in a..=b {
            alts.push(match c {
                0x22 => "\\\\\"".to_string(),
                0x5C => "\\\\\\\\".to_string(),
                0x08 => "\\\\b".to_string(),
                0x0C => "\\\\f".to_string(),
                0x0A => "\\\\n".to_string(),
                0x0D => "\\\\r".to_string(),
                0x09 => "\\\\t".to_string(),
                _ => format!("\\\\u00{}[{}{}]", c >> 4, hexdigit(c & 15), hexdigit(c & 15).to_ascii_uppercase()),
            });
        }
    }
    match alts.len() {
        0 => "[a&&b]".to_string(),
        1 => alts.pop().unwrap_or_default(),
        _ => format!("(?:{})", alts.join("|")),
    }
}

fn hexdigit(d: u32) -> char {
    char::from_digit(d, 16).unwrap_or('0')
}

/// One encoded character, any character (exact: only the escapes the
/// canonical encoding uses).
pub(crate) fn any_char() -> String {
    encode_set(&CharSet::any())
}

/// One encoded character, loosely: a character that is not `"`, `\` or a
/// control, or any escape. Cheaper to determinize than [`any_char`]; always
/// intersected with `(?:any_char)*`, which makes it exact. Escapes have a
/// fixed shape, so it splits a valid body into the same characters.
pub(crate) fn loose_char() -> &'static str {
    r#"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))"#
}

/// Emits a node without anchors.
fn emit(n: &Node, out: &mut String) -> R<()> {
    match n {
        Node::Empty => out.push_str("(?:)"),
        Node::Set(s) => out.push_str(&encode_set(s)),
        Node::Concat(v) => {
            out.push_str("(?:");
            for x in v {
                emit(x, out)?;
            }
            out.push(')');
        }
        Node::Alt(v) => {
            out.push_str("(?:");
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(x, out)?;
            }
            out.push(')');
        }
        Node::Repeat(x, min, max) => {
            out.push_str("(?:");
            emit(x, out)?;
            out.push(')');
            match max {
                None => {
                    let _ = write!(out, "{{{min},}}");
                }
                Some(m) => {
                    let _ = write!(out, "{{{min},{m}}}");
                }
            }
        }
        Node::Start | Node::End => return err("`^` or `$` in the middle of a pattern is not supported"),
    }
    Ok(())
}

/// Flattens top-level alternatives (through groups).
fn top_branches(n: Node, out: &mut Vec<Node>) {
    match n {
        Node::Alt(v) => v.into_iter().for_each(|x| top_branches(x, out)),
        other => out.push(other),
    }
}

/// Splits a branch into (anchored at start, body items, anchored at end).
fn strip_anchors(n: Node) -> (bool, Vec<Node>, bool) {
    let mut items = match n {
        Node::Concat(v) => v,
        Node::Empty => vec![],
        other => vec![other],
    };
    // a leading group that is a concatenation starting with `^` is flattened
    loop {
        let mut changed = false;
        if let Some(Node::Concat(_)) = items.first() {
            if let Node::Concat(inner) = items.remove(0) {
                for (i, x) in inner.into_iter().enumerate() {
                    items.insert(i, x);
                }
                changed = true;
            }
        }
        if let Some(Node::Concat(_)) = items.last() {
            if let Some(Node::Concat(inner)) = items.pop() {
                items.extend(inner);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut start = false;
    while items.first() == Some(&Node::Start) {
        items.remove(0);
        start = true;
    }
    let mut end = false;
    while items.last() == Some(&Node::End) {
        items.pop();
        end = true;
    }
    (start, items, end)
}

/// Drops what an unanchored end makes redundant: in a search, `X R*` then
/// anything is `X` then anything, and `X R{n,m}` is `X R{n}`. Keeps the
/// search automaton small (overlapping repetitions before a free suffix
/// blow up the unminimized DFA).
fn trim(n: Node, tail: bool) -> Node {
    match n {
        Node::Repeat(_, 0, _) => Node::Empty,
        Node::Repeat(x, min, _) => Node::Repeat(x, min, Some(min)),
        Node::Concat(mut v) => {
            while !v.is_empty() {
                let i = if tail { v.len() - 1 } else { 0 };
                let x = trim(v.remove(i), tail);
                if x == Node::Empty {
                    continue;
                }
                if matches!(x, Node::Start | Node::End) {
                    v.insert(i, x);
                    break;
                }
                v.insert(i, x);
                break;
            }
            if v.is_empty() {
                Node::Empty
            } else {
                Node::Concat(v)
            }
        }
        Node::Alt(v) => {
            let v: Vec<Node> = v.into_iter().map(|x| trim(x, tail)).collect();
            if v.contains(&Node::Empty) {
                Node::Empty
            } else {
                Node::Alt(v)
            }
        }
        other => other,
    }
}

/// The regex (over the encoded string body) of the strings in which
/// `pattern` finds a match (ECMA-262 `RegExp.prototype.test`). The free
/// prefix and suffix use [`loose_char`]: intersect the result with the exact
/// string syntax.
pub(crate) fn search_regex(pattern: &str) -> R<String> {
    let node = parse(pattern)?;
    let mut branches = Vec::new();
    top_branches(node, &mut branches);
    let any = format!("{}*", loose_char());
    // branches grouped by their anchoring share one free prefix/suffix: a
    // prefix loop per branch would make the automaton a product of them
    let mut groups: [Vec<String>; 4] = Default::default();
    for b in branches {
        let (start, mut items, end) = strip_anchors(b);
        if !end {
            items = match trim(Node::Concat(items), true) {
                Node::Concat(v) => v,
                Node::Empty => vec![],
                x => vec![x],
            };
        }
        if !start {
            items = match trim(Node::Concat(items), false) {
                Node::Concat(v) => v,
                Node::Empty => vec![],
                x => vec![x],
            };
        }
        let mut s = String::new();
        for x in &items {
            emit(x, &mut s)?;
        }
        groups[usize::from(start) * 2 + usize::from(end)].push(s);
    }
    let mut alts = Vec::new();
    for (g, bodies) in groups.iter().enumerate() {
        if bodies.is_empty() {
            continue;
        }
        let (start, end) = (g >= 2, g % 2 == 1);
        alts.push(format!(
            "{}(?:{}){}",
            if start { "" } else { any.as_str() },
            bodies.join("|"),
            if end { "" } else { any.as_str() }
        ));
    }
    Ok(format!("(?:{})", alts.join("|")))
}

/// The regex of the encoded strings that `pattern` matches in full (as if
/// wrapped in `^(?:...)$`).
pub(crate) fn full_regex(pattern: &str) -> R<String> {
    let node = parse(pattern)?;
    let mut s = String::new();
    emit(&node, &mut s)?;
    Ok(s)
}

/// The JSON-escaped body of a string (what a string lexeme matches between
/// its quotes).
pub(crate) fn encode_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a lexeme automaton matches `bytes` in full.
pub(crate) fn dfa_matches(d: &crate::lexer::dfa::Dfa, bytes: &[u8]) -> bool {
    let mut s = d.start();
    for &b in bytes {
        s = d.next(s, b);
        if s == crate::lexer::dfa::DEAD {
            return false;
        }
    }
    d.is_accept(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::dfa::Dfa;

    fn search(p: &str, s: &str) -> bool {
        let re = format!("(?:{})*", any_char());
        let exact = Dfa::from_regex(&re, 100_000).unwrap();
        let re = search_regex(p).unwrap();
        let d = Dfa::from_regex(&re, 100_000).unwrap();
        let b = encode_str(s);
        d.matches(b.as_bytes()) && exact.matches(b.as_bytes())
    }

    #[test]
    fn search_semantics() {
        assert!(search("a", "xay"));
        assert!(!search("^a", "xa"));
        assert!(search("^a", "ab"));
        assert!(search("a$", "ba"));
        assert!(!search("a$", "ab"));
        assert!(search("^(a|b)$", "b"));
        assert!(!search("^(a|b)$", "ab"));
        assert!(search("^a|b$", "ab"));
        assert!(search("^[a-z]{2,3}$", "abc"));
        assert!(!search("^[a-z]{2,3}$", "abcd"));
        assert!(search("^\\d+$", "123"));
        assert!(!search("^\\d+$", "١٢"));
        assert!(search("^.$", "é"));
        assert!(!search("^.$", "\n"));
        assert!(search("^[^\"]*$", "abc"));
        assert!(!search("^[^\"]*$", "a\"c"));
        assert!(search("\"", "a\"c"));
        assert!(search("^\\\\$", "\\"));
        assert!(search("^\\n$", "\n"));
        assert!(search("^\\u{1F600}$", "😀") || search("^\\uD83D\\uDE00$", "😀"));
        assert!(search("^\\uD83D\\uDE00$", "😀"));
        assert!(search("^\\p{L}+$", "héllo"));
        assert!(search("^a{2}$", "aa"));
        assert!(search("x{", "x{"));
        assert!(search("", "anything"));
    }

    #[test]
    fn refusals() {
        for p in ["(?=a)", "(?!a)", "(?<=a)b", "(a)\\1", "\\bword", "a^b", "(a", "[a", "a**"] {
            assert!(search_regex(p).is_err(), "{p}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let re = full_regex("[\\x00-\\x1f]").unwrap();
        let d = Dfa::from_regex(&re, 10_000).unwrap();
        assert!(d.matches(b"\\n"));
        assert!(d.matches(b"\\u001f"));
        assert!(d.matches(b"\\u001F"));
        assert!(!d.matches(b"\n"));
    }
}
