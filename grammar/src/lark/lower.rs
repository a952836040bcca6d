//! Lowers a Lark [`Ast`] to the IR.
//!
//! * Terminals (uppercase definitions) become [`LexemeSpec`]s. A terminal
//!   built only from strings, regexes, ranges and the regular operators
//!   becomes one regex (or one literal) so the lexer compiles one automaton;
//!   `&` and `~` keep the `And`/`Not` structure. Terminal references are
//!   inlined, in dependency order (cycles are an error).
//! * In rules, strings, regexes and ranges are anonymous terminals; uppercase
//!   names refer to terminals; lowercase names to rules.
//! * `%ignore X` adds one rule `ignore#n ::= X*` and appends a reference to
//!   it after every terminal occurrence in every rule, plus one before the
//!   start rule: between any two terminals of a derivation there is then
//!   exactly one place where ignored text may appear, as with Lark's lexer.

use std::collections::HashMap;

use super::ast::{Ast, Def, Node, Span};
use super::{regex, FORMAT};
use crate::error::{Error, SyntaxError};
use crate::ir::{Expr, Grammar, GrammarBuilder, LexemeSpec, RuleId};
use crate::Limits;

/// How a regex text binds, to know when it needs a group around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prec {
    /// A single item (a char, a class, a group): never needs a group.
    Atom,
    /// A concatenation: needs a group before a repetition.
    Concat,
    /// An alternation: needs a group inside a concatenation.
    Alt,
    /// User-written text (may hold inline flags): always grouped when combined.
    Raw,
}

/// A terminal expression after lowering.
#[derive(Clone, Debug)]
enum Lowered {
    /// Exact text.
    Lit(String),
    /// A regex (no `&` or `~` inside).
    Re(String, Prec),
    /// A spec using `And`/`Not` somewhere.
    Spec(LexemeSpec),
}

impl Lowered {
    /// Regex text and precedence, unless `And`/`Not` are involved.
    fn regex(&self) -> Option<(String, Prec)> {
        match self {
            Lowered::Lit(s) => {
                let prec = if s.chars().count() == 1 { Prec::Atom } else { Prec::Concat };
                Some((escape_literal(s), prec))
            }
            Lowered::Re(r, p) => Some((r.clone(), *p)),
            Lowered::Spec(_) => None,
        }
    }

    fn into_spec(self) -> LexemeSpec {
        match self {
            Lowered::Lit(s) => LexemeSpec::Literal(s),
            Lowered::Re(r, _) => LexemeSpec::Regex(r),
            Lowered::Spec(s) => s,
        }
    }

    /// Bytes of text (regex or literal) this holds, to bound blow-up.
    fn size(&self) -> usize {
        match self {
            Lowered::Lit(s) | Lowered::Re(s, _) => s.len(),
            Lowered::Spec(s) => spec_size(s),
        }
    }
}

fn spec_size(s: &LexemeSpec) -> usize {
    match s {
        LexemeSpec::Regex(r) | LexemeSpec::Literal(r) => r.len(),
        LexemeSpec::Concat(v) | LexemeSpec::Or(v) | LexemeSpec::And(v) => 1 + v.iter().map(spec_size).sum::<usize>(),
        LexemeSpec::Not(x) => 1 + spec_size(x),
    }
}

/// `s` as regex text matching exactly `s`; control characters and
/// whitespace other than the space are written as `\x{..}` escapes.
fn escape_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || (c.is_whitespace() && c != ' ') {
            out.push_str(&format!("\\x{{{:x}}}", c as u32));
        } else {
            regex_syntax::escape_into(c.encode_utf8(&mut [0; 4]), &mut out);
        }
    }
    out
}

fn group(text: &str) -> String {
    format!("(?:{text})")
}

/// Lowers a parsed grammar to the IR.
pub(super) fn lower(src: &str, ast: Ast, limits: &Limits) -> Result<Grammar, Error> {
    let mut cx = Lower {
        src,
        max_size: limits.max_grammar_size,
        rules: HashMap::new(),
        terms: HashMap::new(),
        resolved: HashMap::new(),
        builder: GrammarBuilder::new(),
        term_exprs: HashMap::new(),
        ignore: None,
    };
    for (i, d) in ast.rules.iter().enumerate() {
        if let Some(&j) = cx.rules.get(d.name.as_str()) {
            return Err(cx.duplicate(d, &ast.rules[j], "rule"));
        }
        cx.rules.insert(&d.name, i);
    }
    for (i, d) in ast.terminals.iter().enumerate() {
        if let Some(&j) = cx.terms.get(d.name.as_str()) {
            return Err(cx.duplicate(d, &ast.terminals[j], "terminal"));
        }
        cx.terms.insert(&d.name, i);
    }
    if ast.rules.is_empty() && ast.terminals.is_empty() && ast.ignores.is_empty() {
        return Err(Error::grammar("the Lark grammar is empty: it needs at least a `start` rule"));
    }
    let Some(&start_index) = cx.rules.get("start") else {
        return Err(Error::grammar("the Lark grammar has no `start` rule (the start rule)"));
    };

    // Terminals, in dependency order: every terminal is lowered once, after
    // the terminals it mentions.
    for name in cx.dependency_order(&ast.terminals)? {
        let def = &ast.terminals[cx.terms[name]];
        let lowered = cx.lower_term(&def.body, &def.name)?;
        cx.resolved.insert(name, lowered);
    }

    // Lexemes for the named terminals that rules or `%ignore` use, in
    // definition order, so that they keep their names when an anonymous
    // string in a rule has the same language.
    let mut used = vec![false; ast.terminals.len()];
    for d in &ast.rules {
        mark_used(&d.body, &cx.terms, &mut used);
    }
    for n in &ast.ignores {
        mark_used(n, &cx.terms, &mut used);
    }
    for (d, _) in ast.terminals.iter().zip(&used).filter(|(_, &u)| u) {
        let spec = cx.resolved[d.name.as_str()].clone().into_spec();
        let e = cx.builder.lexeme(&d.name, spec);
        cx.term_exprs.insert(&d.name, e);
    }

    if !ast.ignores.is_empty() {
        let mut alts = Vec::new();
        for n in &ast.ignores {
            let name = match n {
                Node::Name { name, .. } => name.clone(),
                _ => "%ignore".to_string(),
            };
            let spec = cx.lower_term(n, &name)?.into_spec();
            alts.push(cx.builder.lexeme(&name, spec));
        }
        let id = cx.builder.fresh("ignore");
        let body = if alts.len() == 1 { alts.remove(0) } else { Expr::Alt(alts) };
        cx.builder.define(id, Expr::star(body))?;
        cx.ignore = Some(id);
    }

    // Rules: declared in definition order, then lowered.
    for d in &ast.rules {
        cx.builder.declare(&d.name);
    }
    for d in &ast.rules {
        let body = cx.lower_rule(&d.body)?;
        let id = cx.builder.declare(&d.name);
        cx.builder.define(id, body)?;
    }
    let start = cx.builder.declare(&ast.rules[start_index].name);
    let start = match cx.ignore {
        Some(ign) => {
            let wrapper = cx.builder.fresh("start");
            cx.builder.define(wrapper, Expr::Seq(vec![Expr::Ref(ign), Expr::Ref(start)]))?;
            wrapper
        }
        None => start,
    };
    cx.builder.finish(start)
}

/// Marks the terminals `node` mentions by name.
fn mark_used(node: &Node, terms: &HashMap<&str, usize>, used: &mut [bool]) {
    match node {
        Node::Name { name, .. } => {
            if let Some(&i) = terms.get(name.as_str()) {
                used[i] = true;
            }
        }
        Node::Seq(v) | Node::Alt(v) | Node::And(v, _) => v.iter().for_each(|n| mark_used(n, terms, used)),
        Node::Repeat { node, .. } | Node::Not(node, _) => mark_used(node, terms, used),
        Node::Str { .. } | Node::Regex { .. } | Node::Range { .. } => {}
    }
}

/// Names mentioned in `node`, with their spans.
fn mentions<'n>(node: &'n Node, out: &mut Vec<(&'n str, Span)>) {
    match node {
        Node::Name { name, span } => out.push((name, *span)),
        Node::Seq(v) | Node::Alt(v) | Node::And(v, _) => v.iter().for_each(|n| mentions(n, out)),
        Node::Repeat { node, .. } | Node::Not(node, _) => mentions(node, out),
        Node::Str { .. } | Node::Regex { .. } | Node::Range { .. } => {}
    }
}

struct Lower<'a> {
    src: &'a str,
    max_size: usize,
    /// Rule name -> index in `Ast::rules`.
    rules: HashMap<&'a str, usize>,
    /// Terminal name -> index in `Ast::terminals`.
    terms: HashMap<&'a str, usize>,
    /// Lowered terminals.
    resolved: HashMap<&'a str, Lowered>,
    builder: GrammarBuilder,
    /// The lexeme expression of each used terminal.
    term_exprs: HashMap<&'a str, Expr>,
    /// The `%ignore` rule, if any.
    ignore: Option<RuleId>,
}

impl<'a> Lower<'a> {
    fn error(&self, span: Span, message: impl Into<String>) -> Error {
        Error::syntax(SyntaxError::at(FORMAT, self.src, span.0, span.1, message))
    }

    fn duplicate(&self, second: &Def, first: &Def, what: &str) -> Error {
        let f = SyntaxError::at(FORMAT, self.src, first.span.0, first.span.1, "");
        self.error(
            second.span,
            format!("{what} `{}` is already defined at line {}, column {}", second.name, f.line, f.column),
        )
    }

    /// Terminal names ordered so that each comes after the terminals it
    /// mentions. An iterative depth-first search, so long chains cannot
    /// overflow the stack.
    fn dependency_order(&self, terminals: &'a [Def]) -> Result<Vec<&'a str>, Error> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut mark = vec![Mark::New; terminals.len()];
        let deps: Vec<Vec<(&str, Span)>> = terminals
            .iter()
            .map(|d| {
                let mut v = Vec::new();
                mentions(&d.body, &mut v);
                v
            })
            .collect();
        let mut order = Vec::new();
        for root in 0..terminals.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // (terminal, index of the next dependency to visit)
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Active;
            while let Some(&mut (t, ref mut next)) = stack.last_mut() {
                if let Some(&(name, span)) = deps[t].get(*next) {
                    *next += 1;
                    if name.trim_start_matches('_').starts_with(|c: char| c.is_ascii_lowercase()) {
                        return Err(self.error(
                            span,
                            format!(
                                "terminal `{}` refers to rule `{name}`: terminals can only use strings, regexes and other terminals",
                                terminals[t].name
                            ),
                        ));
                    }
                    let Some(&d) = self.terms.get(name) else {
                        return Err(self.error(span, format!("undefined terminal `{name}`")));
                    };
                    match mark[d] {
                        Mark::New => {
                            mark[d] = Mark::Active;
                            stack.push((d, 0));
                        }
                        Mark::Active => {
                            return Err(self.error(
                                span,
                                format!(
                                    "terminal `{name}` is defined in terms of itself (terminals cannot be recursive)"
                                ),
                            ))
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[t] = Mark::Done;
                    order.push(terminals[t].name.as_str());
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    fn check_size(&self, l: Lowered, span: Option<Span>, term: &str) -> Result<Lowered, Error> {
        if l.size() > self.max_size {
            let at = match span {
                Some(s) => {
                    let e = SyntaxError::at(FORMAT, self.src, s.0, s.1, "");
                    format!(" at line {}, column {}", e.line, e.column)
                }
                None => String::new(),
            };
            return Err(Error::limit(
                "max_grammar_size",
                self.max_size,
                format!("building the regex of terminal `{term}`{at}"),
            ));
        }
        Ok(l)
    }

    /// A regex literal as regex-syntax text (translated, flags applied, validated).
    fn regex_literal(&self, raw: &str, flags: &str, span: Span, term: &str) -> Result<Lowered, Error> {
        if flags.contains('l') {
            return Err(self.error(span, format!("in terminal `{term}`: the `l` (locale) regex flag is not supported")));
        }
        let verbose = flags.contains('x');
        let translated = regex::translate(raw, verbose)
            .map_err(|m| self.error(span, format!("invalid regex in terminal `{term}`: {m}")))?;
        let flags: String = flags.chars().filter(|&c| c != 'u').collect();
        let lowered = if flags.is_empty() {
            Lowered::Re(translated, Prec::Raw)
        } else {
            let nl = if verbose { "\n" } else { "" };
            Lowered::Re(format!("(?{flags}:{translated}{nl})"), Prec::Atom)
        };
        if let Lowered::Re(text, _) = &lowered {
            regex::validate(text).map_err(|m| self.error(span, format!("invalid regex in terminal `{term}`: {m}")))?;
        }
        Ok(lowered)
    }

    fn string_literal(value: &str, ci: bool) -> Lowered {
        if ci {
            Lowered::Re(format!("(?i:{})", escape_literal(value)), Prec::Atom)
        } else {
            Lowered::Lit(value.to_string())
        }
    }

    fn range(lo: char, hi: char) -> Lowered {
        let esc = |c: char| {
            if c.is_alphanumeric() || c.is_ascii_punctuation() {
                regex_syntax::escape(c.encode_utf8(&mut [0; 4]))
            } else {
                format!("\\x{{{:x}}}", c as u32)
            }
        };
        Lowered::Re(format!("[{}-{}]", esc(lo), esc(hi)), Prec::Atom)
    }

    /// Lowers the body of terminal `term` (or an anonymous terminal named `term`).
    fn lower_term(&self, node: &Node, term: &str) -> Result<Lowered, Error> {
        let l = match node {
            Node::Str { value, ci, span } => {
                if value.is_empty() {
                    return Err(self.error(*span, "empty strings are not allowed (Lark forbids empty terminals)"));
                }
                Self::string_literal(value, *ci)
            }
            Node::Regex { raw, flags, span } => self.regex_literal(raw, flags, *span, term)?,
            Node::Range { lo, hi, .. } => Self::range(*lo, *hi),
            Node::Name { name, span } if name.trim_start_matches('_').starts_with(|c: char| c.is_ascii_lowercase()) => {
                return Err(self.error(
                    *span,
                    format!(
                        "`{term}` refers to rule `{name}`: terminals can only use strings, regexes and other terminals"
                    ),
                ))
            }
            Node::Name { name, span } => match self.resolved.get(name.as_str()) {
                Some(l) => l.clone(),
                // Unreachable after `dependency_order`, which checked every
                // name a terminal mentions; kept as an error, not a panic.
                None => return Err(self.error(*span, format!("undefined terminal `{name}`"))),
            },
            Node::Seq(items) => {
                let parts = items.iter().map(|n| self.lower_term(n, term)).collect::<Result<Vec<_>, _>>()?;
                concat(parts)
            }
            Node::Alt(items) => {
                let parts = items.iter().map(|n| self.lower_term(n, term)).collect::<Result<Vec<_>, _>>()?;
                alternate(parts)
            }
            Node::Repeat { node: inner, min, max } => {
                let l = self.lower_term(inner, term)?;
                let Some((text, prec)) = l.regex() else {
                    let span = first_span(inner).unwrap_or((0, 0));
                    return Err(self.error(
                        span,
                        format!("in terminal `{term}`: repeating an expression that uses `&` or `~` is not supported"),
                    ));
                };
                let text = if prec == Prec::Atom { text } else { group(&text) };
                let quant = match (min, max) {
                    (0, Some(1)) => "?".to_string(),
                    (0, None) => "*".to_string(),
                    (1, None) => "+".to_string(),
                    (m, None) => format!("{{{m},}}"),
                    (m, Some(n)) if m == n => format!("{{{m}}}"),
                    (m, Some(n)) => format!("{{{m},{n}}}"),
                };
                Lowered::Re(format!("{text}{quant}"), Prec::Concat)
            }
            Node::And(items, _) => {
                let mut parts = Vec::new();
                for n in items {
                    match self.lower_term(n, term)?.into_spec() {
                        LexemeSpec::And(v) => parts.extend(v),
                        s => parts.push(s),
                    }
                }
                Lowered::Spec(LexemeSpec::And(parts))
            }
            Node::Not(inner, _) => Lowered::Spec(LexemeSpec::Not(Box::new(self.lower_term(inner, term)?.into_spec()))),
        };
        self.check_size(l, first_span(node), term)
    }

    /// An anonymous terminal in a rule: a lexeme named after its source text.
    fn anonymous(&mut self, node: &Node, span: Span) -> Result<Expr, Error> {
        let name = self.src.get(span.0..span.1).unwrap_or("%anonymous").to_string();
        let spec = self.lower_term(node, &name)?.into_spec();
        Ok(self.builder.lexeme(&name, spec))
    }

    /// A terminal occurrence in a rule, followed by the ignore rule if any.
    fn terminal_occurrence(&self, e: Expr) -> Expr {
        match self.ignore {
            Some(ign) => Expr::Seq(vec![e, Expr::Ref(ign)]),
            None => e,
        }
    }

    fn lower_rule(&mut self, node: &Node) -> Result<Expr, Error> {
        Ok(match node {
            Node::Str { span, .. } | Node::Regex { span, .. } | Node::Range { span, .. } => {
                let e = self.anonymous(node, *span)?;
                self.terminal_occurrence(e)
            }
            Node::Name { name, span } => {
                let is_rule = name.trim_start_matches('_').starts_with(|c: char| c.is_ascii_lowercase());
                if is_rule {
                    if !self.rules.contains_key(name.as_str()) {
                        return Err(self.error(*span, format!("undefined rule `{name}`")));
                    }
                    Expr::Ref(self.builder.declare(name))
                } else {
                    match self.term_exprs.get(name.as_str()) {
                        Some(e) => self.terminal_occurrence(e.clone()),
                        None => return Err(self.error(*span, format!("undefined terminal `{name}`"))),
                    }
                }
            }
            Node::Seq(items) => {
                let mut v = items.iter().map(|n| self.lower_rule(n)).collect::<Result<Vec<_>, _>>()?;
                match v.len() {
                    0 => Expr::Empty,
                    1 => v.remove(0),
                    _ => Expr::Seq(v),
                }
            }
            Node::Alt(items) => {
                let v = items.iter().map(|n| self.lower_rule(n)).collect::<Result<Vec<_>, _>>()?;
                Expr::Alt(v)
            }
            Node::Repeat { node, min, max } => {
                Expr::Repeat { expr: Box::new(self.lower_rule(node)?), min: *min, max: *max }
            }
            Node::And(_, span) => {
                return Err(self.error(*span, "`&` (intersection) is only allowed in terminal definitions"))
            }
            Node::Not(_, span) => {
                return Err(self.error(*span, "`~` (complement) is only allowed in terminal definitions"))
            }
        })
    }
}

/// The span of the first leaf of `node`.
fn first_span(node: &Node) -> Option<Span> {
    match node {
        Node::Str { span, .. } | Node::Regex { span, .. } | Node::Range { span, .. } | Node::Name { span, .. } => {
            Some(*span)
        }
        Node::Not(_, span) => Some(*span),
        Node::And(v, span) => v.iter().find_map(first_span).or(Some(*span)),
        Node::Seq(v) | Node::Alt(v) => v.iter().find_map(first_span),
        Node::Repeat { node, .. } => first_span(node),
    }
}

/// Concatenation of lowered parts.
fn concat(parts: Vec<Lowered>) -> Lowered {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or(Lowered::Lit(String::new()));
    }
    if parts.iter().all(|p| matches!(p, Lowered::Lit(_))) {
        let mut s = String::new();
        for p in &parts {
            if let Lowered::Lit(t) = p {
                s.push_str(t);
            }
        }
        return Lowered::Lit(s);
    }
    if parts.iter().any(|p| matches!(p, Lowered::Spec(_))) {
        return Lowered::Spec(LexemeSpec::Concat(parts.into_iter().map(Lowered::into_spec).collect()));
    }
    let mut text = String::new();
    for p in &parts {
        if let Some((t, prec)) = p.regex() {
            if matches!(prec, Prec::Alt | Prec::Raw) {
                text.push_str(&group(&t));
            } else {
                text.push_str(&t);
            }
        }
    }
    Lowered::Re(text, Prec::Concat)
}

/// Alternation of lowered parts.
fn alternate(parts: Vec<Lowered>) -> Lowered {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or(Lowered::Lit(String::new()));
    }
    if parts.iter().any(|p| matches!(p, Lowered::Spec(_))) {
        return Lowered::Spec(LexemeSpec::Or(parts.into_iter().map(Lowered::into_spec).collect()));
    }
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            text.push('|');
        }
        if let Some((t, prec)) = p.regex() {
            if prec == Prec::Raw {
                text.push_str(&group(&t));
            } else {
                text.push_str(&t);
            }
        }
    }
    Lowered::Re(text, Prec::Alt)
}
