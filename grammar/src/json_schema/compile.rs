//! Emitting the grammar of a normalized schema.
//!
//! Where it sits: [`Schema`] (from `schema.rs`) -> [`compile`] -> `ir::Grammar`.
//!
//! Lexemes are designed so that the maximal-munch lexer is exact:
//!
//! * a string value is one lexeme `"` body `"` (prefix-free: it ends at its
//!   closing quote), the body being the intersection of the JSON string
//!   syntax, the length bounds, every `pattern` and every `format`;
//!   a string with only length bounds and a `maxLength` over
//!   [`LONG_STRING_MIN`] is a sequence of fixed-size chunk lexemes instead
//!   (one automaton counting that far would be too large);
//! * a number is one lexeme per number schema (bounds built in, see
//!   `numeric.rs`); no number lexeme can be extended by what may follow a
//!   value (`,`, `]`, `}`, whitespace);
//! * keys are literal lexemes `"name"`, and extra keys a string lexeme minus
//!   the declared names (so a declared key never parses as an extra one);
//! * punctuation and whitespace are their own lexemes; no value lexeme starts
//!   with whitespace, so whitespace never merges into a neighbour.
//!
//! Objects emit their declared properties in schema order (optional ones may
//! be skipped), then extra properties; arrays their prefix items, then the
//! rest, with `minItems`/`maxItems` as bounded repetition.

use std::collections::HashMap;

use serde_json::Value;

use super::formats::{format_max_len, format_regex};
use super::numeric::{dec_regex, number_spec, Dec};
use super::options::{JsonSchemaOptions, PropertyOrder, Whitespace};
use super::pattern::{any_char, encode_str, full_regex, loose_char, search_regex};
use super::schema::{pattern_matches, ArraySchema, Normalizer, ObjectSchema, Schema, StringSchema, Typed};
use super::validate::matches;
use super::Warning;
use crate::error::Error;
use crate::ir::{Expr, Grammar, GrammarBuilder, LexemeSpec, RuleId};
use crate::lexer::dfa::Dfa;
use crate::lexer::spec::{compile_spec, compile_spec_cached, SpecCache};

/// Compiles a JSON Schema into a grammar whose sentences are JSON texts
/// valid under the schema.
///
/// ```
/// use formwork_grammar::json_schema::{compile, JsonSchemaOptions};
/// let schema = serde_json::json!({
///     "type": "object",
///     "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 150}},
///     "required": ["age"],
///     "additionalProperties": false
/// });
/// let (grammar, warnings) = compile(&schema, &JsonSchemaOptions::default())?;
/// assert!(warnings.is_empty());
/// assert!(grammar.lexemes().len() > 3);
/// # Ok::<(), formwork_grammar::Error>(())
/// ```
///
/// Errors: [`ErrorKind::Schema`](crate::ErrorKind::Schema) names the keyword
/// and JSON pointer of what cannot be enforced (in strict mode) or is
/// malformed; [`ErrorKind::Limit`](crate::ErrorKind::Limit) when an option's
/// bound is exceeded.
pub fn compile(schema: &Value, options: &JsonSchemaOptions) -> Result<(Grammar, Vec<Warning>), Error> {
    let n = Normalizer::new(schema, options);
    let mut e = Emitter::new(n, options);
    let root_schema = e.n.normalize(schema, "", 0)?;
    if root_schema.is_nothing() {
        return Err(Error::schema("/", "", "no value is valid under this schema"));
    }
    let root = e.b.declare("root");
    let body = e.emit(&root_schema, 0)?;
    e.b.define(root, body)?;
    while let Some((target, rule)) = e.pending.pop() {
        let s = e.n.normalize_at(&target, 0)?;
        let body = e.emit(&s, 0)?;
        e.b.define(rule, body)?;
    }
    let warnings = std::mem::take(&mut e.n.warnings);
    Ok((e.b.finish(root)?, warnings))
}

/// [`compile`] from JSON text.
///
/// ```
/// use formwork_grammar::json_schema::{from_str, JsonSchemaOptions};
/// let (g, _) = from_str(r#"{"enum": ["red", "green"]}"#, &JsonSchemaOptions::default())?;
/// assert!(!g.lexemes().is_empty());
/// assert!(from_str("{not json", &JsonSchemaOptions::default()).is_err());
/// # Ok::<(), formwork_grammar::Error>(())
/// ```
pub fn from_str(text: &str, options: &JsonSchemaOptions) -> Result<(Grammar, Vec<Warning>), Error> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| Error::schema("", "", format!("the schema is not valid JSON: {e}")))?;
    compile(&v, options)
}

struct Emitter<'a> {
    n: Normalizer<'a>,
    b: GrammarBuilder,
    refs: HashMap<String, RuleId>,
    pending: Vec<(String, RuleId)>,
    ws: Expr,
    any_rule: Option<RuleId>,
    /// Chunked long strings already emitted, by `(minLength, maxLength)`.
    long_strings: HashMap<(u64, u64), RuleId>,
}

fn lit(b: &mut GrammarBuilder, s: &str) -> Expr {
    b.lexeme(s, LexemeSpec::Literal(s.to_string()))
}

/// The JSON string syntax of one character, as a regex over the encoding.
fn char_re() -> String {
    any_char()
}

/// The body of a string lexeme: JSON string syntax, length bounds, patterns,
/// formats, excluded values.
pub(crate) fn string_body_spec(s: &StringSchema) -> Result<LexemeSpec, String> {
    let mut parts = Vec::new();
    let mut max_len = s.max_len;
    for f in &s.formats {
        if let Some(m) = format_max_len(f) {
            max_len = Some(max_len.map_or(m, |x| x.min(m)));
        }
    }
    let c = char_re();
    let loose = loose_char();
    if s.min_len > 0 || max_len.is_some() {
        let r = match max_len {
            Some(m) => format!("{loose}{{{},{m}}}", s.min_len),
            None => format!("{loose}{{{},}}", s.min_len),
        };
        parts.push(LexemeSpec::Regex(r));
    }
    for p in &s.patterns {
        parts.push(LexemeSpec::Regex(search_regex(p).map_err(|e| e.0)?));
    }
    for p in &s.not_patterns {
        parts.push(LexemeSpec::Not(Box::new(LexemeSpec::Regex(search_regex(p).map_err(|e| e.0)?))));
    }
    let exact_parts = s.formats.iter().filter(|f| format_regex(f).is_some()).count();
    for f in &s.formats {
        if let Some(re) = format_regex(f) {
            parts.push(LexemeSpec::Regex(full_regex(&re).map_err(|e| e.0)?));
        }
    }
    // the exact string syntax, unless a format (exact by construction) is there
    if exact_parts == 0 {
        parts.insert(0, LexemeSpec::Regex(format!("(?:{c})*")));
    }
    if !s.exclude.is_empty() {
        let lits = s.exclude.iter().map(|x| LexemeSpec::Literal(encode_str(x))).collect();
        parts.push(LexemeSpec::Not(Box::new(LexemeSpec::Or(lits))));
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { LexemeSpec::And(parts) })
}

/// Code points per chunk of a long string (see [`long_string_bounds`]).
pub(crate) const LONG_STRING_CHUNK: u64 = 64;

/// Strings whose `maxLength` is above this are emitted in chunks when
/// nothing but length bounds constrains them.
pub(crate) const LONG_STRING_MIN: u64 = 1000;

/// `Some((minLength, maxLength))` when a string schema is only length
/// bounds (no pattern, format or excluded value) with a `maxLength` above
/// [`LONG_STRING_MIN`]. One lexeme counting to such a bound would need about
/// 15 DFA states per character (over the lexeme state limit past about
/// 1,500), so the value is emitted as a grammar-level sequence of lexemes of
/// at most [`LONG_STRING_CHUNK`] code points each (see `emit_long_string`).
pub(crate) fn long_string_bounds(s: &StringSchema) -> Option<(u64, u64)> {
    let max = s.max_len?;
    let plain = s.patterns.is_empty() && s.formats.is_empty() && s.exclude.is_empty() && s.not_patterns.is_empty();
    (plain && max > LONG_STRING_MIN && s.min_len <= max).then_some((s.min_len, max))
}

/// The body of a plain string of `lo..=hi` code points, with a literal
/// prefix and suffix. Appending a fixed text at an end is injective, so it
/// distributes over the parts of an intersection.
fn affixed_body(lo: u64, hi: u64, prefix: &str, suffix: &str) -> LexemeSpec {
    let s = StringSchema {
        min_len: lo,
        max_len: Some(hi),
        patterns: Vec::new(),
        formats: Vec::new(),
        exclude: Vec::new(),
        not_patterns: Vec::new(),
    };
    let wrap = |x: LexemeSpec| match x {
        LexemeSpec::Regex(r) => LexemeSpec::Regex(format!("{prefix}(?:{r}){suffix}")),
        other => {
            LexemeSpec::Concat(vec![LexemeSpec::Literal(prefix.into()), other, LexemeSpec::Literal(suffix.into())])
        }
    };
    match string_body_spec(&s) {
        Ok(LexemeSpec::And(v)) => LexemeSpec::And(v.into_iter().map(wrap).collect()),
        Ok(x) => wrap(x),
        // only patterns can fail to translate, and there are none
        Err(_) => unreachable!("a plain string body always translates"),
    }
}

/// `"` body `"`. An intersection is quoted part by part (each part stays
/// one regex, and no automaton concatenation is needed): every positive part
/// fixes the quoted shape, so a quoted complement means the same thing.
fn quoted(body: LexemeSpec) -> LexemeSpec {
    match body {
        LexemeSpec::Regex(r) => LexemeSpec::Regex(format!("\"(?:{r})\"")),
        LexemeSpec::Literal(l) => LexemeSpec::Literal(format!("\"{l}\"")),
        LexemeSpec::Or(v) => LexemeSpec::Or(v.into_iter().map(quoted).collect()),
        LexemeSpec::And(v) if v.iter().any(|x| !matches!(x, LexemeSpec::Not(_))) => {
            LexemeSpec::And(v.into_iter().map(quoted).collect())
        }
        LexemeSpec::Not(x) => LexemeSpec::Not(Box::new(quoted(*x))),
        other => LexemeSpec::Concat(vec![LexemeSpec::Literal("\"".into()), other, LexemeSpec::Literal("\"".into())]),
    }
}

/// Whether two string schemas provably share no value.
pub(crate) fn strings_disjoint(p: &StringSchema, q: &StringSchema, cache: &mut SpecCache) -> bool {
    let (Ok(a), Ok(b)) = (string_body_spec(p), string_body_spec(q)) else { return false };
    match (compile_spec_cached(&a, 20_000, cache), compile_spec_cached(&b, 20_000, cache)) {
        (Ok(a), Ok(b)) => Dfa::intersection_is_empty(&a, &b, 20_000).unwrap_or(false),
        _ => false,
    }
}

fn lexeme_name(prefix: &str, spec: &LexemeSpec) -> String {
    let mut s = format!("{spec:?}");
    if s.len() > 40 {
        let mut cut = 40;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    format!("{prefix}:{s}")
}

impl<'a> Emitter<'a> {
    fn new(n: Normalizer<'a>, opts: &JsonSchemaOptions) -> Self {
        let mut b = GrammarBuilder::new();
        let ws = match opts.whitespace {
            Whitespace::Compact => Expr::Empty,
            Whitespace::Flexible { max_run } => {
                Expr::opt(b.lexeme("ws", LexemeSpec::Regex(format!("[ \\t\\n\\r]{{1,{}}}", max_run.max(1)))))
            }
        };
        Emitter { n, b, refs: HashMap::new(), pending: Vec::new(), ws, any_rule: None, long_strings: HashMap::new() }
    }

    fn check_depth(&self, depth: usize) -> Result<(), Error> {
        if depth > self.n.opts.max_depth * 2 {
            return Err(Error::limit("max_depth", self.n.opts.max_depth, "emitting nested schemas"));
        }
        Ok(())
    }

    fn emit(&mut self, s: &Schema, depth: usize) -> Result<Expr, Error> {
        self.check_depth(depth)?;
        match s {
            Schema::Any => {
                if let Some(r) = self.any_rule {
                    return Ok(Expr::Ref(r));
                }
                let r = self.b.fresh("any");
                self.any_rule = Some(r);
                let body = self.emit_typed(&Typed::any(), depth + 1)?;
                self.b.define(r, body)?;
                Ok(Expr::Ref(r))
            }
            Schema::Ref(t) => {
                if let Some(&r) = self.refs.get(t) {
                    return Ok(Expr::Ref(r));
                }
                let r = self.b.fresh(&format!("ref:{t}"));
                self.refs.insert(t.clone(), r);
                self.pending.push((t.clone(), r));
                Ok(Expr::Ref(r))
            }
            Schema::AnyOf(v) => {
                let mut alts = Vec::new();
                for x in v {
                    if x.is_nothing() {
                        continue;
                    }
                    alts.push(self.emit(x, depth + 1)?);
                }
                Ok(match alts.len() {
                    0 => Expr::Nothing,
                    1 => alts.remove(0),
                    _ => Expr::Alt(alts),
                })
            }
            Schema::Typed(t) => self.emit_typed(t, depth),
        }
    }

    fn emit_typed(&mut self, t: &Typed, depth: usize) -> Result<Expr, Error> {
        if let Some(vals) = &t.values {
            let mut rest = t.clone();
            rest.values = None;
            let rest = Schema::Typed(Box::new(rest));
            let mut alts = Vec::new();
            let mut seen: Vec<&Value> = Vec::new();
            for v in vals {
                if seen.iter().any(|x| super::schema::json_eq(x, v)) {
                    continue;
                }
                seen.push(v);
                match matches(&mut self.n, v, &rest, depth)? {
                    Some(true) => alts.push(self.emit_const(v, depth)?),
                    Some(false) => {}
                    None => {
                        return Err(Error::schema(
                            "/",
                            "enum",
                            format!("cannot check the enumerated value {v} against its sibling keywords"),
                        ))
                    }
                }
            }
            return Ok(match alts.len() {
                0 => Expr::Nothing,
                1 => alts.remove(0),
                _ => Expr::Alt(alts),
            });
        }
        let mut alts = Vec::new();
        if t.null {
            alts.push(lit(&mut self.b, "null"));
        }
        if t.t {
            alts.push(lit(&mut self.b, "true"));
        }
        if t.f {
            alts.push(lit(&mut self.b, "false"));
        }
        if let Some(n) = &t.number {
            let spec = number_spec(n).map_err(|e| Error::schema("/", "multipleOf", e))?;
            let name = lexeme_name("number", &spec);
            alts.push(self.b.lexeme(&name, spec));
        }
        if let Some((lo, hi)) = t.string.as_ref().and_then(long_string_bounds) {
            alts.push(self.emit_long_string(lo, hi)?);
        } else if let Some(s) = &t.string {
            let body = string_body_spec(s).map_err(|e| Error::schema("/", "pattern", e))?;
            let spec = quoted(body);
            let name = lexeme_name("string", &spec);
            alts.push(self.b.lexeme(&name, spec));
        }
        if let Some(a) = &t.array {
            alts.push(self.emit_array(a, depth)?);
        }
        if let Some(o) = &t.object {
            alts.push(self.emit_object(o, depth)?);
        }
        Ok(match alts.len() {
            0 => Expr::Nothing,
            1 => alts.remove(0),
            _ => Expr::Alt(alts),
        })
    }

    /// A string value of `lo..=hi` code points, in chunks: with `K` =
    /// [`LONG_STRING_CHUNK`], a body of `j*K + t` code points (`t < K`, so
    /// `j` and `t` are unique) is `j` lexemes `FULL` of exactly `K` code
    /// points (the first carries the opening quote), then `TAIL_j` of
    /// `max(0, lo - jK) ..= min(K - 1, hi - jK)` code points and the closing
    /// quote. The values of `j` that share a `TAIL_j` form one alternative
    /// `FULL{a..=b} TAIL` (a flat bounded repetition, no nesting per chunk).
    /// The length is exact, and so is maximal munch: after `K` code points
    /// `FULL` accepts and cannot go on while every tail (fewer than `K`
    /// before its quote) is dead, and a tail ends at its quote, which `FULL`
    /// cannot take.
    fn emit_long_string(&mut self, lo: u64, hi: u64) -> Result<Expr, Error> {
        if let Some(&r) = self.long_strings.get(&(lo, hi)) {
            return Ok(Expr::Ref(r));
        }
        let k = LONG_STRING_CHUNK;
        // (first j, last j, tail bounds), for runs of j with equal tails
        let mut runs: Vec<(u64, u64, (u64, u64))> = Vec::new();
        for j in 0..=hi / k {
            let tail = (lo.saturating_sub(j * k), (k - 1).min(hi - j * k));
            if tail.0 > tail.1 {
                continue;
            }
            match runs.last_mut() {
                Some(r) if j > 1 && r.1 + 1 == j && r.2 == tail => r.1 = j,
                _ => runs.push((j, j, tail)),
            }
        }
        let mut alts = Vec::new();
        for (a, b, (tlo, thi)) in runs {
            let open = if a == 0 { "\"" } else { "" };
            let spec = affixed_body(tlo, thi, open, "\"");
            let name = lexeme_name("string-tail", &spec);
            let tail = self.b.lexeme(&name, spec);
            if a == 0 {
                alts.push(tail);
                continue;
            }
            let spec = affixed_body(k, k, "\"", "");
            let name = lexeme_name("string-chunk", &spec);
            let first = self.b.lexeme(&name, spec);
            let spec = affixed_body(k, k, "", "");
            let name = lexeme_name("string-chunk", &spec);
            let full = self.b.lexeme(&name, spec);
            let (min, max) = (u32::try_from(a - 1), u32::try_from(b - 1));
            let (Ok(min), Ok(max)) = (min, max) else {
                return Err(Error::schema("/", "maxLength", "too long a bound"));
            };
            let rest = Expr::Repeat { expr: Box::new(full), min, max: Some(max) };
            alts.push(Expr::Seq(vec![first, rest, tail]));
        }
        let body = match alts.len() {
            0 => Expr::Nothing,
            1 => alts.remove(0),
            _ => Expr::Alt(alts),
        };
        let r = self.b.fresh(&format!("string{lo}..{hi}"));
        self.b.define(r, body)?;
        self.long_strings.insert((lo, hi), r);
        Ok(Expr::Ref(r))
    }

    /// One JSON value, exactly (numbers in every spelling of their value).
    fn emit_const(&mut self, v: &Value, depth: usize) -> Result<Expr, Error> {
        self.check_depth(depth)?;
        Ok(match v {
            Value::Null => lit(&mut self.b, "null"),
            Value::Bool(true) => lit(&mut self.b, "true"),
            Value::Bool(false) => lit(&mut self.b, "false"),
            Value::Number(n) => match Dec::from_value(n) {
                Some(d) => {
                    let spec = LexemeSpec::Regex(dec_regex(&d));
                    let name = lexeme_name("number", &spec);
                    self.b.lexeme(&name, spec)
                }
                None => lit(&mut self.b, &n.to_string()),
            },
            Value::String(s) => lit(&mut self.b, &format!("\"{}\"", encode_str(s))),
            Value::Array(items) => {
                let mut seq = vec![lit(&mut self.b, "["), self.ws.clone()];
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        seq.push(lit(&mut self.b, ","));
                        seq.push(self.ws.clone());
                    }
                    seq.push(self.emit_const(x, depth + 1)?);
                    seq.push(self.ws.clone());
                }
                seq.push(lit(&mut self.b, "]"));
                Expr::Seq(seq)
            }
            Value::Object(m) => {
                let mut seq = vec![lit(&mut self.b, "{"), self.ws.clone()];
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        seq.push(lit(&mut self.b, ","));
                        seq.push(self.ws.clone());
                    }
                    seq.push(lit(&mut self.b, &format!("\"{}\"", encode_str(k))));
                    seq.push(self.ws.clone());
                    seq.push(lit(&mut self.b, ":"));
                    seq.push(self.ws.clone());
                    seq.push(self.emit_const(x, depth + 1)?);
                    seq.push(self.ws.clone());
                }
                seq.push(lit(&mut self.b, "}"));
                Expr::Seq(seq)
            }
        })
    }

    fn emit_array(&mut self, a: &ArraySchema, depth: usize) -> Result<Expr, Error> {
        let open = lit(&mut self.b, "[");
        let close = lit(&mut self.b, "]");
        let comma = lit(&mut self.b, ",");
        let ws = self.ws.clone();
        if a.max == Some(0) {
            return Ok(Expr::Seq(vec![open, ws, close]));
        }
        let sep = Expr::Seq(vec![comma, ws.clone()]);
        let k = a.prefix.len();
        let mut items = Vec::with_capacity(k);
        for p in &a.prefix {
            let e = self.emit(p, depth + 1)?;
            items.push(Expr::Seq(vec![e, ws.clone()]));
        }
        let rest_item = if a.rest.is_nothing() || a.max.is_some_and(|m| m as usize <= k) {
            None
        } else {
            let e = self.emit(&a.rest, depth + 1)?;
            Some(Expr::Seq(vec![e, ws.clone()]))
        };
        let item = |i: usize| -> Option<Expr> {
            if i < k {
                Some(items[i].clone())
            } else {
                rest_item.clone()
            }
        };
        // tail(i): what follows once i >= 1 elements were written
        let mut tail = match &rest_item {
            Some(r) => {
                let min = a.min.saturating_sub(k.max(1) as u64).min(u32::MAX as u64) as u32;
                let max = a.max.map(|m| m.saturating_sub(k.max(1) as u64).min(u32::MAX as u64) as u32);
                Expr::Repeat { expr: Box::new(Expr::Seq(vec![sep.clone(), r.clone()])), min, max }
            }
            None => Expr::Empty,
        };
        for i in (1..k).rev() {
            let next = Expr::Seq(vec![sep.clone(), items[i].clone(), tail]);
            tail = if (i as u64) >= a.min { Expr::opt(next) } else { next };
            if a.max.is_some_and(|m| (i as u64) >= m) {
                tail = Expr::Empty;
            }
        }
        let Some(first) = item(0) else {
            return Ok(Expr::Seq(vec![open, ws, close]));
        };
        let body = Expr::Seq(vec![first, tail]);
        let body = if a.min == 0 { Expr::opt(body) } else { body };
        Ok(Expr::Seq(vec![open, ws, body, close]))
    }

    /// The key lexeme body for property names allowed by `names`.
    fn names_spec(&mut self, names: &Schema, depth: usize) -> Result<Option<LexemeSpec>, Error> {
        let s = match names {
            Schema::Typed(t) => (**t).clone(),
            _ => {
                return Err(Error::schema("/", "propertyNames", "propertyNames must be a simple string schema"));
            }
        };
        let _ = depth;
        if let Some(vals) = &s.values {
            let lits: Vec<LexemeSpec> =
                vals.iter().filter_map(Value::as_str).map(|x| LexemeSpec::Literal(encode_str(x))).collect();
            return Ok(Some(LexemeSpec::Or(lits)));
        }
        match &s.string {
            None => Ok(None),
            Some(ss) => Ok(Some(string_body_spec(ss).map_err(|e| Error::schema("/", "propertyNames", e))?)),
        }
    }

    fn emit_object(&mut self, o: &ObjectSchema, depth: usize) -> Result<Expr, Error> {
        // dependencies whose trigger is optional: one variant per choice of
        // "trigger absent" / "trigger and its dependencies present"
        let unresolved: Vec<(String, Vec<String>)> = o
            .dependent
            .iter()
            .filter(|(k, d)| !d.iter().all(|x| o.required.contains(x)) && !o.required.contains(k))
            .cloned()
            .collect();
        if !unresolved.is_empty()
            && unresolved.len() <= 4
            && o.required.iter().all(|r| !unresolved.iter().any(|(k, _)| k == r))
        {
            let mut alts = Vec::new();
            for mask in 0..(1u32 << unresolved.len()) {
                let mut v = o.clone();
                v.dependent.retain(|(k, _)| !unresolved.iter().any(|(u, _)| u == k));
                let mut forbidden: Vec<String> = Vec::new();
                for (i, (k, deps)) in unresolved.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        for r in std::iter::once(k).chain(deps) {
                            if !v.required.contains(r) {
                                v.required.push(r.clone());
                            }
                        }
                    } else {
                        forbidden.push(k.clone());
                    }
                }
                if forbidden.iter().any(|k| v.required.contains(k)) {
                    continue;
                }
                for k in forbidden {
                    match v.props.iter_mut().find(|(n, _)| *n == k) {
                        Some((_, s)) => *s = Schema::nothing(),
                        None => v.props.push((k, Schema::nothing())),
                    }
                }
                alts.push(self.emit_object(&v, depth + 1)?);
            }
            return Ok(if alts.is_empty() { Expr::Nothing } else { Expr::Alt(alts) });
        }
        let ws = self.ws.clone();
        let open = lit(&mut self.b, "{");
        let close = lit(&mut self.b, "}");
        let comma = lit(&mut self.b, ",");
        let colon = lit(&mut self.b, ":");
        // declared properties (plus required ones not declared)
        let mut props: Vec<(String, Schema)> = o.props.clone();
        for r in &o.required {
            if !props.iter().any(|(k, _)| k == r) {
                let mut s = o.additional.clone();
                let mut matched = false;
                for (p, ps) in &o.pattern_props {
                    if pattern_matches(p, r).map_err(|e| Error::schema("/", "patternProperties", e))? {
                        s = if matched { self.n.intersect(s, ps.clone(), "/", depth)? } else { ps.clone() };
                        matched = true;
                    }
                }
                props.push((r.clone(), s));
            }
        }
        // declared properties also obey matching patterns and propertyNames
        for (k, s) in props.iter_mut() {
            for (p, ps) in &o.pattern_props {
                if pattern_matches(p, k).map_err(|e| Error::schema("/", "patternProperties", e))? {
                    *s = self.n.intersect(s.clone(), ps.clone(), "/", depth)?;
                }
            }
            if let Some(names) = &o.names {
                if matches(&mut self.n, &Value::String(k.clone()), names, depth)? != Some(true) {
                    *s = Schema::nothing();
                }
            }
        }
        // a required property's dependencies are required too
        let mut required_set: Vec<String> = o.required.clone();
        loop {
            let mut changed = false;
            for (k, deps) in &o.dependent {
                if required_set.contains(k) {
                    for d in deps {
                        if !required_set.contains(d) {
                            required_set.push(d.clone());
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for r in &required_set {
            if !props.iter().any(|(k, _)| k == r) {
                props.push((r.clone(), o.additional.clone()));
            }
        }
        let required: Vec<bool> = props.iter().map(|(k, _)| required_set.contains(k)).collect();
        for (i, (_, s)) in props.iter().enumerate() {
            if required[i] && s.is_nothing() {
                return Ok(Expr::Nothing);
            }
        }
        // extra properties: (key lexeme body, value schema)
        let mut extras: Vec<(LexemeSpec, Schema)> = Vec::new();
        let declared: Vec<LexemeSpec> = props.iter().map(|(k, _)| LexemeSpec::Literal(encode_str(k))).collect();
        let names_body = match &o.names {
            Some(n) => match self.names_spec(n, depth)? {
                Some(x) => Some(x),
                None => {
                    // no string is a valid name: no extra keys
                    Some(LexemeSpec::Regex("[a&&b]".into()))
                }
            },
            None => None,
        };
        let np = o.pattern_props.len();
        if np > 3 {
            return Err(Error::schema("/", "patternProperties", "more than 3 patternProperties are not supported"));
        }
        for mask in 0..(1u32 << np) {
            let mut parts = vec![LexemeSpec::Regex(format!("(?:{})*", char_re()))];
            let mut value = if mask == 0 { o.additional.clone() } else { Schema::any() };
            for (i, (p, ps)) in o.pattern_props.iter().enumerate() {
                let re = LexemeSpec::Regex(search_regex(p).map_err(|e| Error::schema("/", "patternProperties", e.0))?);
                if mask & (1 << i) != 0 {
                    parts.push(re);
                    value = self.n.intersect(value, ps.clone(), "/", depth)?;
                } else {
                    parts.push(LexemeSpec::Not(Box::new(re)));
                }
            }
            if value.is_nothing() {
                continue;
            }
            if !declared.is_empty() {
                parts.push(LexemeSpec::Not(Box::new(LexemeSpec::Or(declared.clone()))));
            }
            if let Some(nb) = &names_body {
                parts.push(nb.clone());
            }
            let spec = if parts.len() == 1 { parts.remove(0) } else { LexemeSpec::And(parts) };
            // skip key sets that are empty
            if np > 0 || names_body.is_some() {
                match compile_spec(&spec, 50_000) {
                    Ok(d) if d.is_empty_language() => continue,
                    _ => {}
                }
            }
            extras.push((spec, value));
        }
        // minProperties / maxProperties / dependentRequired
        let n_required = required.iter().filter(|r| **r).count() as u64;
        let n_optional = props.len() as u64 - n_required;
        let max_total = if extras.is_empty() { Some(props.len() as u64) } else { None };
        let min_ok = o.min_props <= n_required;
        let max_ok = match (o.max_props, max_total) {
            (None, _) => true,
            (Some(m), Some(t)) => t <= m,
            (Some(_), None) => false,
        };
        let counting = !(min_ok && max_ok);
        let _ = n_optional;
        for (k, deps) in &o.dependent {
            let trigger_possible = props.iter().any(|(p, s)| p == k && !s.is_nothing()) || !extras.is_empty();
            let all_required = deps.iter().all(|d| required_set.contains(d));
            if trigger_possible && !all_required {
                return Err(Error::schema(
                    "/",
                    "dependentRequired",
                    "dependencies on optional properties are not supported",
                ));
            }
        }
        // the items
        let mut items: Vec<Expr> = Vec::new();
        for (k, s) in &props {
            if s.is_nothing() {
                items.push(Expr::Nothing);
                continue;
            }
            let key = lit(&mut self.b, &format!("\"{}\"", encode_str(k)));
            let v = self.emit(s, depth + 1)?;
            items.push(Expr::Seq(vec![key, ws.clone(), colon.clone(), ws.clone(), v, ws.clone()]));
        }
        let mut extra_alts = Vec::new();
        for (spec, s) in &extras {
            let spec = quoted(spec.clone());
            let name = lexeme_name("key", &spec);
            let key = self.b.lexeme(&name, spec);
            let v = self.emit(s, depth + 1)?;
            extra_alts.push(Expr::Seq(vec![key, ws.clone(), colon.clone(), ws.clone(), v, ws.clone()]));
        }
        let extra = match extra_alts.len() {
            0 => None,
            1 => Some(extra_alts.remove(0)),
            _ => Some(Expr::Alt(extra_alts)),
        };
        if counting {
            return self.emit_counted(&items, &required, extra, o, open, close, comma);
        }
        if let PropertyOrder::Any { max_properties } = self.n.opts.property_order {
            if items.len() >= 2 && items.len() <= (max_properties.min(12) as usize) {
                return self.emit_any_order(items, &required, extra, open, close, comma);
            }
        }
        let sep = Expr::Seq(vec![comma.clone(), ws.clone()]);
        let n = items.len();
        // A_i: after something was written; F_i: nothing written yet
        let a_end = match &extra {
            Some(x) => Expr::star(Expr::Seq(vec![sep.clone(), x.clone()])),
            None => Expr::Empty,
        };
        let f_end = match &extra {
            Some(x) => Expr::opt(Expr::Seq(vec![x.clone(), a_end.clone()])),
            None => Expr::Empty,
        };
        let mut a_next = a_end;
        let mut f_next = f_end;
        for i in (0..n).rev() {
            let item = items[i].clone();
            let a_rule = self.b.fresh("obj_after");
            let mut a_alts = vec![Expr::Seq(vec![sep.clone(), item.clone(), a_next.clone()])];
            if !required[i] {
                a_alts.push(a_next.clone());
            }
            self.b.define(a_rule, Expr::Alt(a_alts))?;
            let f_rule = self.b.fresh("obj_first");
            let mut f_alts = vec![Expr::Seq(vec![item, a_next.clone()])];
            if !required[i] {
                f_alts.push(f_next.clone());
            }
            self.b.define(f_rule, Expr::Alt(f_alts))?;
            a_next = Expr::Ref(a_rule);
            f_next = Expr::Ref(f_rule);
        }
        Ok(Expr::Seq(vec![open, ws, f_next, close]))
    }

    /// Objects whose declared properties come in any order: one rule per set
    /// of properties already written (`2^n` rules).
    fn emit_any_order(
        &mut self,
        items: Vec<Expr>,
        required: &[bool],
        extra: Option<Expr>,
        open: Expr,
        close: Expr,
        comma: Expr,
    ) -> Result<Expr, Error> {
        let ws = self.ws.clone();
        let sep = Expr::Seq(vec![comma, ws.clone()]);
        let n = items.len();
        // each item and the extras behind a rule, so alternatives share them
        let mut item_refs = Vec::with_capacity(n);
        for it in items {
            if matches!(it, Expr::Nothing) {
                item_refs.push(None);
                continue;
            }
            let r = self.b.fresh("prop");
            self.b.define(r, it)?;
            item_refs.push(Some(Expr::Ref(r)));
        }
        let extra = match extra {
            Some(x) => {
                let r = self.b.fresh("extra_prop");
                self.b.define(r, x)?;
                Some(Expr::Ref(r))
            }
            None => None,
        };
        let full = 1usize << n;
        let req_mask: usize = required.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| 1 << i).sum();
        // rules[set][any]
        let rules: Vec<[RuleId; 2]> = (0..full).map(|_| [self.b.fresh("obj_set"), self.b.fresh("obj_set")]).collect();
        for set in 0..full {
            for any in [false, true] {
                let mut alts = Vec::new();
                if set & req_mask == req_mask {
                    alts.push(Expr::Empty);
                }
                let lead = |x: Expr| if any { Expr::Seq(vec![sep.clone(), x]) } else { x };
                for (i, it) in item_refs.iter().enumerate() {
                    let Some(it) = it else { continue };
                    if set & (1 << i) == 0 {
                        alts.push(Expr::Seq(vec![lead(it.clone()), Expr::Ref(rules[set | (1 << i)][1])]));
                    }
                }
                if let Some(x) = &extra {
                    alts.push(Expr::Seq(vec![lead(x.clone()), Expr::Ref(rules[set][1])]));
                }
                let body = if alts.is_empty() { Expr::Nothing } else { Expr::Alt(alts) };
                self.b.define(rules[set][usize::from(any)], body)?;
            }
        }
        Ok(Expr::Seq(vec![open, ws, Expr::Ref(rules[0][0]), close]))
    }

    /// Objects with `minProperties`/`maxProperties` that depend on optional
    /// properties: the rules carry the count written so far.
    #[allow(clippy::too_many_arguments)]
    fn emit_counted(
        &mut self,
        items: &[Expr],
        required: &[bool],
        extra: Option<Expr>,
        o: &ObjectSchema,
        open: Expr,
        close: Expr,
        comma: Expr,
    ) -> Result<Expr, Error> {
        let ws = self.ws.clone();
        let sep = Expr::Seq(vec![comma, ws.clone()]);
        let n = items.len();
        // counts are saturated at `cap`
        let cap = o.max_props.map_or(o.min_props, |m| m.max(o.min_props)).min(10_000);
        if (cap as usize + 1) * (n + 1) > 20_000 {
            return Err(Error::schema("/", "maxProperties", "minProperties/maxProperties bound too large to count"));
        }
        let cap = cap as usize;
        let mut memo: HashMap<(usize, usize, bool), Expr> = HashMap::new();
        // rule(i, c, any): properties i.. remain, c written so far (saturated), any = something written
        let ok_end = |c: usize| (c as u64) >= o.min_props && o.max_props.is_none_or(|m| (c as u64) <= m);
        // extras at the end: from count c
        let mut extra_rules: HashMap<(usize, bool), Expr> = HashMap::new();
        for c in (0..=cap).rev() {
            for any in [true, false] {
                let r = self.b.fresh("obj_extra");
                let mut alts = Vec::new();
                if ok_end(c) {
                    alts.push(Expr::Empty);
                }
                if let Some(x) = &extra {
                    let next_c = (c + 1).min(cap);
                    let can = o.max_props.is_none_or(|m| ((c + 1) as u64) <= m);
                    if can {
                        let next = extra_rules.get(&(next_c, true)).cloned().unwrap_or(Expr::Ref(r));
                        let lead = if any { vec![sep.clone(), x.clone(), next] } else { vec![x.clone(), next] };
                        alts.push(Expr::Seq(lead));
                    }
                }
                self.b.define(r, if alts.is_empty() { Expr::Nothing } else { Expr::Alt(alts) })?;
                extra_rules.insert((c, any), Expr::Ref(r));
            }
        }
        for i in (0..=n).rev() {
            for c in (0..=cap).rev() {
                for any in [true, false] {
                    let e = if i == n {
                        extra_rules[&(c, any)].clone()
                    } else {
                        let r = self.b.fresh("obj_count");
                        let mut alts = Vec::new();
                        let next_c = (c + 1).min(cap);
                        let can = o.max_props.is_none_or(|m| ((c + 1) as u64) <= m);
                        if can && !matches!(items[i], Expr::Nothing) {
                            let next = memo[&(i + 1, next_c, true)].clone();
                            let lead = if any {
                                vec![sep.clone(), items[i].clone(), next]
                            } else {
                                vec![items[i].clone(), next]
                            };
                            alts.push(Expr::Seq(lead));
                        }
                        if !required[i] {
                            alts.push(memo[&(i + 1, c, any)].clone());
                        }
                        self.b.define(r, if alts.is_empty() { Expr::Nothing } else { Expr::Alt(alts) })?;
                        Expr::Ref(r)
                    };
                    memo.insert((i, c, any), e);
                }
            }
        }
        Ok(Expr::Seq(vec![open, ws, memo[&(0, 0, false)].clone(), close]))
    }
}
