//! The compiler's internal form of a schema: one constraint set per JSON type.
//!
//! Where it sits: `serde_json::Value` -> [`Normalizer::normalize`] ->
//! [`Schema`] -> `compile.rs` emits the grammar.
//!
//! A JSON Schema object is a conjunction of keywords; each keyword constrains
//! one JSON type (or all). So a schema is normalized into a [`Typed`]: for each
//! of the six types, `None` when the type is excluded, or that type's
//! constraints. Conjunction (`allOf`, sibling keywords, `$ref` beside other
//! keywords in 2019-09+) is then a per-type intersection; disjunction
//! (`anyOf`, `oneOf` proven disjoint, `type` arrays) is a list of branches,
//! and intersection distributes over it (bounded by
//! [`JsonSchemaOptions::max_branches`](super::JsonSchemaOptions::max_branches)).
//! `$ref` stays a reference (one grammar rule per target, so recursion works)
//! unless it must be intersected with something, then it is inlined (bounded
//! by `max_depth`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::numeric::{Dec, NumberSchema};
use super::options::{JsonSchemaOptions, Mode};
use super::refs::{escape_token, Draft, Index};
use super::Warning;
use crate::error::Error;

/// A normalized schema.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Schema {
    /// Every value (`true`, `{}`).
    Any,
    /// Per-type constraints.
    Typed(Box<Typed>),
    /// A union; empty = no value.
    AnyOf(Vec<Schema>),
    /// The schema at this pointer (a grammar rule).
    Ref(String),
}

/// String constraints.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct StringSchema {
    pub(crate) min_len: u64,
    pub(crate) max_len: Option<u64>,
    /// ECMA-262 patterns (searches).
    pub(crate) patterns: Vec<String>,
    /// Enforced formats.
    pub(crate) formats: Vec<String>,
    /// Excluded values (from `not` + `const`/`enum`).
    pub(crate) exclude: Vec<String>,
    /// Patterns that must not match (from `not` + `pattern`).
    pub(crate) not_patterns: Vec<String>,
}

/// Array constraints.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ArraySchema {
    pub(crate) prefix: Vec<Schema>,
    /// Items after the prefix.
    pub(crate) rest: Schema,
    pub(crate) min: u64,
    pub(crate) max: Option<u64>,
}

/// Object constraints.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ObjectSchema {
    /// Declared properties in schema order.
    pub(crate) props: Vec<(String, Schema)>,
    pub(crate) required: Vec<String>,
    /// `patternProperties` (ECMA-262 pattern, schema).
    pub(crate) pattern_props: Vec<(String, Schema)>,
    /// Schema of properties neither declared nor matched by a pattern.
    pub(crate) additional: Schema,
    /// `propertyNames` (a schema for the key strings).
    pub(crate) names: Option<Schema>,
    pub(crate) min_props: u64,
    pub(crate) max_props: Option<u64>,
    /// `dependentRequired`: if the key is present, these must be.
    pub(crate) dependent: Vec<(String, Vec<String>)>,
}

/// Constraints per JSON type; `None` excludes the type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Typed {
    pub(crate) null: bool,
    pub(crate) t: bool,
    pub(crate) f: bool,
    pub(crate) number: Option<NumberSchema>,
    pub(crate) string: Option<StringSchema>,
    pub(crate) array: Option<ArraySchema>,
    pub(crate) object: Option<ObjectSchema>,
    /// `enum`/`const`: the value must be one of these (and meet the rest).
    pub(crate) values: Option<Vec<Value>>,
}

impl Schema {
    pub(crate) fn any() -> Schema {
        Schema::Any
    }
    pub(crate) fn nothing() -> Schema {
        Schema::AnyOf(Vec::new())
    }
    pub(crate) fn is_nothing(&self) -> bool {
        match self {
            Schema::AnyOf(v) => v.iter().all(Schema::is_nothing),
            Schema::Typed(t) => t.is_nothing(),
            Schema::Ref(_) | Schema::Any => false,
        }
    }
    pub(crate) fn is_any(&self) -> bool {
        match self {
            Schema::Any => true,
            Schema::Typed(t) => **t == Typed::any(),
            _ => false,
        }
    }
}

impl Default for ArraySchema {
    fn default() -> Self {
        ArraySchema { prefix: Vec::new(), rest: Schema::any(), min: 0, max: None }
    }
}

impl Default for ObjectSchema {
    fn default() -> Self {
        ObjectSchema {
            props: Vec::new(),
            required: Vec::new(),
            pattern_props: Vec::new(),
            additional: Schema::any(),
            names: None,
            min_props: 0,
            max_props: None,
            dependent: Vec::new(),
        }
    }
}

impl Typed {
    pub(crate) fn any() -> Typed {
        Typed {
            null: true,
            t: true,
            f: true,
            number: Some(NumberSchema::default()),
            string: Some(StringSchema::default()),
            array: Some(ArraySchema::default()),
            object: Some(ObjectSchema::default()),
            values: None,
        }
    }
    pub(crate) fn none() -> Typed {
        Typed { null: false, t: false, f: false, number: None, string: None, array: None, object: None, values: None }
    }
    pub(crate) fn is_nothing(&self) -> bool {
        (!self.null
            && !self.t
            && !self.f
            && self.number.is_none()
            && self.string.is_none()
            && self.array.is_none()
            && self.object.is_none())
            || self.values.as_ref().is_some_and(|v| v.is_empty())
    }
}

/// JSON Schema equality of values (numbers by value: `1 == 1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Dec::from_value(x), Dec::from_value(y)) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Keywords that are annotations or structure (never constrain by
/// themselves); everything not listed and not handled is ignored too (unknown
/// keywords are annotations), see `KNOWN_UNSUPPORTED`.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentSchemas",
    "$dynamicRef",
    "$recursiveRef",
];

/// Lenient mode lowers `maxLength` above this to it: counting code points
/// costs about ten automaton states per character.
const LENIENT_MAX_LEN: u64 = 1000;

/// Turns JSON schemas into [`Schema`]s.
pub(crate) struct Normalizer<'a> {
    pub(crate) root: &'a Value,
    pub(crate) draft: Draft,
    pub(crate) index: Index,
    pub(crate) opts: &'a JsonSchemaOptions,
    pub(crate) warnings: Vec<Warning>,
    /// Normalized ref targets (for inlining).
    cache: HashMap<String, Schema>,
    /// Ref targets currently being inlined (cycle detection).
    inlining: Vec<String>,
    /// String automata built for disjointness checks (each built once).
    pub(crate) specs: crate::lexer::spec::SpecCache,
}

type R<T> = Result<T, Error>;

fn kw_err(ptr: &str, kw: &str, msg: impl Into<String>) -> Error {
    Error::schema(if ptr.is_empty() { "/".to_string() } else { ptr.to_string() }, kw, msg)
}

fn as_u64(v: &Value, ptr: &str, kw: &str) -> R<u64> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                return Ok(u);
            }
            match Dec::from_value(n) {
                Some(d) if d.is_integer() && !d.neg => Ok(d.int.parse::<u64>().unwrap_or(u64::MAX)),
                _ => Err(kw_err(ptr, kw, "must be a non-negative integer")),
            }
        }
        _ => Err(kw_err(ptr, kw, "must be a non-negative integer")),
    }
}

fn as_dec_value(v: &Value, ptr: &str, kw: &str) -> R<Dec> {
    match v {
        Value::Number(n) => Dec::from_value(n).ok_or_else(|| kw_err(ptr, kw, "number out of the supported range")),
        _ => Err(kw_err(ptr, kw, "must be a number")),
    }
}

impl<'a> Normalizer<'a> {
    pub(crate) fn new(root: &'a Value, opts: &'a JsonSchemaOptions) -> Self {
        let draft = Draft::detect(root, opts.default_draft);
        Normalizer {
            root,
            draft,
            index: Index::new(root, draft),
            opts,
            warnings: Vec::new(),
            cache: HashMap::new(),
            inlining: Vec::new(),
            specs: Default::default(),
        }
    }

    /// A number keyword's value (exact: serde_json keeps numbers as written,
    /// `arbitrary_precision`).
    fn as_dec(&self, v: &Value, ptr: &str, kw: &str) -> R<Dec> {
        as_dec_value(v, ptr, kw)
    }

    /// Whether `k` is a keyword of the draft in force (keywords of later
    /// drafts are unknown, so annotations, in earlier ones: `if` in draft 4).
    fn is_keyword(&self, k: &str) -> bool {
        let since = match k {
            "const" | "contains" | "propertyNames" => Draft::Draft6,
            "if" | "then" | "else" => Draft::Draft7,
            "dependentRequired"
            | "dependentSchemas"
            | "unevaluatedProperties"
            | "unevaluatedItems"
            | "minContains"
            | "maxContains"
            | "$recursiveRef" => Draft::Draft2019_09,
            "prefixItems" | "$dynamicRef" => Draft::Draft2020_12,
            _ => return true,
        };
        self.draft >= since
    }

    fn without_unknown(&self, m: &Map<String, Value>) -> Map<String, Value> {
        m.iter().filter(|(k, _)| self.is_keyword(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn refuse_or_warn(&mut self, ptr: &str, kw: &str, msg: &str, approx: &str) -> R<()> {
        if self.opts.mode == Mode::Lenient && !approx.is_empty() {
            self.warnings.push(Warning {
                pointer: ptr.to_string(),
                keyword: kw.to_string(),
                message: format!("{msg}; {approx}"),
            });
            Ok(())
        } else {
            Err(kw_err(ptr, kw, msg))
        }
    }

    /// Normalizes the schema at `ptr` (a JSON pointer from the root).
    pub(crate) fn normalize_at(&mut self, ptr: &str, depth: usize) -> R<Schema> {
        let Some(v) = super::refs::lookup(self.root, ptr) else {
            return Err(kw_err(ptr, "$ref", "the reference points to nothing"));
        };
        self.normalize(v, ptr, depth)
    }

    pub(crate) fn normalize(&mut self, v: &Value, ptr: &str, depth: usize) -> R<Schema> {
        if depth > self.opts.max_depth {
            return Err(Error::limit("max_depth", self.opts.max_depth, format!("normalizing the schema at `{ptr}`")));
        }
        let m = match v {
            Value::Bool(true) => return Ok(Schema::any()),
            Value::Bool(false) => return Ok(Schema::nothing()),
            Value::Object(m) => m,
            _ => return Err(kw_err(ptr, "", "a schema must be an object or a boolean")),
        };
        let filtered;
        let m = if m.keys().any(|k| !self.is_keyword(k)) {
            filtered = self.without_unknown(m);
            &filtered
        } else {
            m
        };
        // draft <= 7: `$ref` ignores its siblings
        if let Some(r) = m.get("$ref") {
            let r = r.as_str().ok_or_else(|| kw_err(ptr, "$ref", "must be a string"))?;
            let target = self.index.resolve(ptr, r).map_err(|e| kw_err(ptr, "$ref", e))?;
            if self.draft <= Draft::Draft7 {
                return Ok(Schema::Ref(target));
            }
        }
        let mut t = Typed::any();
        self.apply_type(m, ptr, &mut t)?;
        self.apply_values(m, ptr, &mut t)?;
        if let Some(n) = t.number.as_mut() {
            self.apply_number(m, ptr, n)?;
            if n.is_empty() {
                t.number = None;
            }
        }
        if let Some(s) = t.string.as_mut() {
            Self::apply_string(m, ptr, s)?;
            if self.opts.mode == Mode::Lenient
                && s.max_len.is_some_and(|x| x > LENIENT_MAX_LEN)
                && s.min_len <= LENIENT_MAX_LEN
                && super::compile::long_string_bounds(s).is_none()
            {
                s.max_len = Some(LENIENT_MAX_LEN);
                self.warnings.push(Warning {
                    pointer: ptr.to_string(),
                    keyword: "maxLength".into(),
                    message: format!("lowered to {LENIENT_MAX_LEN} (a longer bound needs too many automaton states)"),
                });
            }
            if s.max_len.is_some_and(|mx| mx < s.min_len) {
                t.string = None;
            }
        }
        if t.array.is_some() {
            let a = self.array_schema(m, ptr, depth)?;
            t.array = a;
        }
        if t.object.is_some() {
            let o = self.object_schema(m, ptr, depth)?;
            t.object = o;
        }
        for kw in KNOWN_UNSUPPORTED {
            if let Some(val) = m.get(*kw) {
                self.unsupported(kw, val, m, ptr, &mut t)?;
            }
        }
        let mut s = Schema::Typed(Box::new(t));
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            let target = self.index.resolve(ptr, r).map_err(|e| kw_err(ptr, "$ref", e))?;
            s = self.intersect(s, Schema::Ref(target), ptr, depth)?;
        }
        if let Some(all) = m.get("allOf") {
            let all = all.as_array().ok_or_else(|| kw_err(ptr, "allOf", "must be an array"))?;
            for (i, x) in all.iter().enumerate() {
                let p = format!("{ptr}/allOf/{i}");
                let sub = self.normalize(x, &p, depth + 1)?;
                s = self.intersect(s, sub, &p, depth)?;
            }
        }
        if let Some(any) = m.get("anyOf") {
            let any = any.as_array().ok_or_else(|| kw_err(ptr, "anyOf", "must be an array"))?;
            let mut branches = Vec::new();
            for (i, x) in any.iter().enumerate() {
                branches.push(self.normalize(x, &format!("{ptr}/anyOf/{i}"), depth + 1)?);
            }
            s = self.intersect(s, Schema::AnyOf(branches), ptr, depth)?;
        }
        if let Some(one) = m.get("oneOf") {
            let one = one.as_array().ok_or_else(|| kw_err(ptr, "oneOf", "must be an array"))?;
            let mut branches = Vec::new();
            for (i, x) in one.iter().enumerate() {
                branches.push(self.normalize(x, &format!("{ptr}/oneOf/{i}"), depth + 1)?);
            }
            let u = self.one_of(branches, one, ptr, depth)?;
            s = self.intersect(s, u, ptr, depth)?;
        }
        if let Some(n) = m.get("not") {
            let p = format!("{ptr}/not");
            let neg = self.negate(n, &p, depth + 1)?;
            s = self.intersect(s, neg, ptr, depth)?;
        }
        if let Some(i) = m.get("if") {
            let p = format!("{ptr}/if");
            let cond = self.normalize(i, &p, depth + 1)?;
            let ncond = self.negate(i, &p, depth + 1)?;
            let then = match m.get("then") {
                Some(x) => self.normalize(x, &format!("{ptr}/then"), depth + 1)?,
                None => Schema::any(),
            };
            let els = match m.get("else") {
                Some(x) => self.normalize(x, &format!("{ptr}/else"), depth + 1)?,
                None => Schema::any(),
            };
            let a = self.intersect(cond, then, ptr, depth)?;
            let b = self.intersect(ncond, els, ptr, depth)?;
            s = self.intersect(s, Schema::AnyOf(vec![a, b]), ptr, depth)?;
        }
        Ok(s)
    }

    fn unsupported(&mut self, kw: &str, val: &Value, m: &Map<String, Value>, ptr: &str, t: &mut Typed) -> R<()> {
        match kw {
            "uniqueItems" => {
                if val != &Value::Bool(true) {
                    return Ok(());
                }
                let Some(a) = t.array.as_mut() else { return Ok(()) };
                if a.max.is_some_and(|x| x <= 1) {
                    return Ok(());
                }
                if a.min <= 1 && self.opts.mode == Mode::Lenient {
                    a.max = Some(1);
                    self.refuse_or_warn(ptr, kw, "uniqueItems is not enforced", "arrays limited to one item")?;
                    return Ok(());
                }
                Err(kw_err(ptr, kw, "uniqueItems cannot be enforced by a context-free grammar"))
            }
            // reported with `contains`, ignored without it
            "minContains" | "maxContains" => Ok(()),
            "contains" => {
                if t.array.is_none() {
                    return Ok(());
                }
                if val == &Value::Bool(false) {
                    if m.get("minContains").and_then(Value::as_u64) == Some(0) {
                        return Ok(());
                    }
                    t.array = None;
                    return Ok(());
                }
                Err(kw_err(ptr, kw, "contains is not supported"))
            }
            "unevaluatedProperties" | "unevaluatedItems" => {
                if val == &Value::Bool(true) || val.as_object().is_some_and(|o| o.is_empty()) {
                    return Ok(());
                }
                Err(kw_err(ptr, kw, "unevaluated* keywords are not supported"))
            }
            "dependentSchemas" => {
                if val.as_object().is_some_and(|o| o.is_empty()) || t.object.is_none() {
                    return Ok(());
                }
                Err(kw_err(ptr, kw, "dependentSchemas is not supported"))
            }
            _ => Err(kw_err(ptr, kw, "not supported")),
        }
    }

    fn apply_type(&mut self, m: &Map<String, Value>, ptr: &str, t: &mut Typed) -> R<()> {
        let Some(ty) = m.get("type") else { return Ok(()) };
        let names: Vec<&str> = match ty {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(kw_err(ptr, "type", "must be a string or an array of strings")),
        };
        let has = |n: &str| names.contains(&n);
        if !has("null") {
            t.null = false;
        }
        if !has("boolean") {
            t.t = false;
            t.f = false;
        }
        if !has("number") {
            if has("integer") {
                if let Some(n) = t.number.as_mut() {
                    n.integer = true;
                    n.strict_integer = self.draft == Draft::Draft4 || !self.opts.integer_zero_fraction;
                }
            } else {
                t.number = None;
            }
        }
        if !has("string") {
            t.string = None;
        }
        if !has("array") {
            t.array = None;
        }
        if !has("object") {
            t.object = None;
        }
        for n in &names {
            if !["null", "boolean", "number", "integer", "string", "array", "object"].contains(n) {
                return Err(kw_err(ptr, "type", format!("unknown type `{n}`")));
            }
        }
        Ok(())
    }

    fn apply_values(&mut self, m: &Map<String, Value>, ptr: &str, t: &mut Typed) -> R<()> {
        let mut vals: Option<Vec<Value>> = None;
        if let Some(e) = m.get("enum") {
            let e = e.as_array().ok_or_else(|| kw_err(ptr, "enum", "must be an array"))?;
            vals = Some(e.clone());
        }
        if let Some(c) = m.get("const") {
            vals = Some(match vals {
                Some(v) => v.into_iter().filter(|x| json_eq(x, c)).collect(),
                None => vec![c.clone()],
            });
        }
        t.values = vals;
        Ok(())
    }

    fn apply_number(&mut self, m: &Map<String, Value>, ptr: &str, n: &mut NumberSchema) -> R<()> {
        let lower = |d: Dec, ex: bool, n: &mut NumberSchema| {
            let replace = match &n.min {
                None => true,
                Some((cur, cex)) => match d.cmp(cur) {
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => ex && !cex,
                    _ => false,
                },
            };
            if replace {
                n.min = Some((d, ex));
            }
        };
        if let Some(v) = m.get("minimum") {
            let ex = m.get("exclusiveMinimum") == Some(&Value::Bool(true));
            lower(self.as_dec(v, ptr, "minimum")?, ex, n);
        }
        if let Some(v @ Value::Number(_)) = m.get("exclusiveMinimum") {
            lower(self.as_dec(v, ptr, "exclusiveMinimum")?, true, n);
        }
        let upper = |d: Dec, ex: bool, n: &mut NumberSchema| {
            let replace = match &n.max {
                None => true,
                Some((cur, cex)) => match d.cmp(cur) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => ex && !cex,
                    _ => false,
                },
            };
            if replace {
                n.max = Some((d, ex));
            }
        };
        if let Some(v) = m.get("maximum") {
            let ex = m.get("exclusiveMaximum") == Some(&Value::Bool(true));
            upper(self.as_dec(v, ptr, "maximum")?, ex, n);
        }
        if let Some(v @ Value::Number(_)) = m.get("exclusiveMaximum") {
            upper(self.as_dec(v, ptr, "exclusiveMaximum")?, true, n);
        }
        if let Some(v) = m.get("multipleOf") {
            let d = self.as_dec(v, ptr, "multipleOf")?;
            if d.neg || d.is_zero() {
                return Err(kw_err(ptr, "multipleOf", "must be positive"));
            }
            if !(d.int == "1" && d.frac.is_empty() && n.integer) {
                n.multiple_of.push(d);
            }
        }
        Ok(())
    }

    fn apply_string(m: &Map<String, Value>, ptr: &str, s: &mut StringSchema) -> R<()> {
        if let Some(v) = m.get("minLength") {
            s.min_len = s.min_len.max(as_u64(v, ptr, "minLength")?);
        }
        if let Some(v) = m.get("maxLength") {
            let x = as_u64(v, ptr, "maxLength")?;
            s.max_len = Some(s.max_len.map_or(x, |y| y.min(x)));
        }
        if let Some(v) = m.get("pattern") {
            let p = v.as_str().ok_or_else(|| kw_err(ptr, "pattern", "must be a string"))?;
            super::pattern::search_regex(p).map_err(|e| kw_err(ptr, "pattern", e.0))?;
            s.patterns.push(p.to_string());
        }
        if let Some(v) = m.get("format") {
            if let Some(f) = v.as_str() {
                if super::formats::format_regex(f).is_some() {
                    s.formats.push(f.to_string());
                } else if super::formats::UNSUPPORTED_FORMATS.contains(&f) {
                    return Err(kw_err(ptr, "format", format!("format `{f}` cannot be enforced")));
                }
            }
        }
        Ok(())
    }

    fn array_schema(&mut self, m: &Map<String, Value>, ptr: &str, depth: usize) -> R<Option<ArraySchema>> {
        let mut a = ArraySchema::default();
        if let Some(v) = m.get("minItems") {
            a.min = as_u64(v, ptr, "minItems")?;
        }
        if let Some(v) = m.get("maxItems") {
            a.max = Some(as_u64(v, ptr, "maxItems")?);
        }
        let tuple_items = match (self.draft >= Draft::Draft2020_12, m.get("prefixItems"), m.get("items")) {
            (true, Some(Value::Array(p)), _) => Some(("prefixItems", p)),
            (false, _, Some(Value::Array(p))) => Some(("items", p)),
            _ => None,
        };
        if let Some((kw, items)) = tuple_items {
            for (i, x) in items.iter().enumerate() {
                a.prefix.push(self.normalize(x, &format!("{ptr}/{kw}/{i}"), depth + 1)?);
            }
            let rest_kw = if kw == "prefixItems" { "items" } else { "additionalItems" };
            if let Some(r) = m.get(rest_kw) {
                a.rest = self.normalize(r, &format!("{ptr}/{rest_kw}"), depth + 1)?;
            }
        } else if let Some(it) = m.get("items") {
            if it.is_object() || it.is_boolean() {
                a.rest = self.normalize(it, &format!("{ptr}/items"), depth + 1)?;
            }
        }
        // a prefix item that allows nothing caps the length
        if let Some(i) = a.prefix.iter().position(Schema::is_nothing) {
            a.max = Some(a.max.map_or(i as u64, |x| x.min(i as u64)));
            a.prefix.truncate(i);
        }
        if a.rest.is_nothing() {
            let n = a.prefix.len() as u64;
            a.max = Some(a.max.map_or(n, |x| x.min(n)));
        }
        if a.max.is_some_and(|x| x < a.min) {
            return Ok(None);
        }
        Ok(Some(a))
    }

    fn object_schema(&mut self, m: &Map<String, Value>, ptr: &str, depth: usize) -> R<Option<ObjectSchema>> {
        let mut o = ObjectSchema::default();
        if let Some(Value::Object(props)) = m.get("properties") {
            for (k, v) in props {
                let s = self.normalize(v, &format!("{ptr}/properties/{}", escape_token(k)), depth + 1)?;
                o.props.push((k.clone(), s));
            }
        }
        if let Some(Value::Array(r)) = m.get("required") {
            for k in r.iter().filter_map(Value::as_str) {
                if !o.required.iter().any(|x| x == k) {
                    o.required.push(k.to_string());
                }
            }
        }
        if let Some(Value::Object(pp)) = m.get("patternProperties") {
            for (k, v) in pp {
                super::pattern::search_regex(k).map_err(|e| kw_err(ptr, "patternProperties", e.0))?;
                let s = self.normalize(v, &format!("{ptr}/patternProperties/{}", escape_token(k)), depth + 1)?;
                o.pattern_props.push((k.clone(), s));
            }
        }
        match m.get("additionalProperties") {
            Some(v) => o.additional = self.normalize(v, &format!("{ptr}/additionalProperties"), depth + 1)?,
            None => {
                if !self.opts.allow_extra_properties && !m.contains_key("unevaluatedProperties") {
                    o.additional = Schema::nothing();
                }
            }
        }
        if let Some(v) = m.get("propertyNames") {
            let s = self.normalize(v, &format!("{ptr}/propertyNames"), depth + 1)?;
            if !s.is_any() {
                o.names = Some(s);
            }
        }
        if let Some(v) = m.get("minProperties") {
            o.min_props = as_u64(v, ptr, "minProperties")?;
        }
        if let Some(v) = m.get("maxProperties") {
            o.max_props = Some(as_u64(v, ptr, "maxProperties")?);
        }
        let mut deps = Vec::new();
        if let Some(Value::Object(d)) = m.get("dependentRequired") {
            for (k, v) in d {
                let list: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                deps.push((k.clone(), list));
            }
        }
        if let Some(Value::Object(d)) = m.get("dependencies") {
            for (k, v) in d {
                match v {
                    Value::Array(a) => {
                        deps.push((k.clone(), a.iter().filter_map(Value::as_str).map(String::from).collect()))
                    }
                    Value::Bool(true) => {}
                    Value::Object(x) if x.is_empty() => {}
                    _ => return Err(kw_err(ptr, "dependencies", "schema dependencies are not supported")),
                }
            }
        }
        o.dependent = deps.into_iter().filter(|(_, l)| !l.is_empty()).collect();
        if o.max_props.is_some_and(|x| x < o.min_props) {
            return Ok(None);
        }
        Ok(Some(o))
    }

    /// `oneOf`: a union when the branches are provably pairwise disjoint.
    fn one_of(&mut self, branches: Vec<Schema>, values: &[Value], ptr: &str, depth: usize) -> R<Schema> {
        let n = branches.len();
        let mut keep = vec![true; n];
        let mut all_disjoint = true;
        for i in 0..n {
            for j in (i + 1)..n {
                if !self.disjoint(&branches[i], &branches[j], depth)? {
                    all_disjoint = false;
                    keep[i] = false;
                    keep[j] = false;
                }
            }
        }
        if all_disjoint {
            return Ok(Schema::AnyOf(branches));
        }
        // exact: branch i and not any other branch (disjoint by construction)
        if let Ok(s) = self.one_of_by_negation(&branches, values, ptr, depth) {
            return Ok(s);
        }
        let kept: Vec<Schema> = branches.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(b, _)| b).collect();
        if self.opts.mode == Mode::Lenient && !kept.is_empty() {
            self.refuse_or_warn(
                ptr,
                "oneOf",
                "branches not provably disjoint",
                "only the branches disjoint from every other branch are kept",
            )?;
            return Ok(Schema::AnyOf(kept));
        }
        Err(kw_err(ptr, "oneOf", "the branches are not provably disjoint (a value might match several)"))
    }

    /// `oneOf` as the union of `branch_i and not branch_j (j != i)`, when
    /// every branch can be negated.
    fn one_of_by_negation(&mut self, branches: &[Schema], values: &[Value], ptr: &str, depth: usize) -> R<Schema> {
        let mut negs = Vec::with_capacity(values.len());
        for (j, v) in values.iter().enumerate() {
            negs.push(self.negate(v, &format!("{ptr}/oneOf/{j}"), depth + 1)?);
        }
        let mut out = Vec::new();
        for (i, b) in branches.iter().enumerate() {
            let mut s = b.clone();
            for (j, n) in negs.iter().enumerate() {
                if i != j {
                    s = self.intersect(s, n.clone(), ptr, depth + 1)?;
                }
            }
            if !s.is_nothing() {
                out.push(s);
            }
        }
        Ok(Schema::AnyOf(out))
    }

    fn resolve_ref(&mut self, target: &str, depth: usize) -> R<Schema> {
        if let Some(s) = self.cache.get(target) {
            return Ok(s.clone());
        }
        if self.inlining.iter().any(|t| t == target) || self.inlining.len() > self.opts.max_depth {
            return Err(kw_err(target, "$ref", "a recursive reference cannot be combined with other keywords here"));
        }
        self.inlining.push(target.to_string());
        let r = self.normalize_at(target, depth + 1);
        self.inlining.pop();
        let s = r?;
        self.cache.insert(target.to_string(), s.clone());
        Ok(s)
    }

    /// Inlines top-level references (one level).
    fn expand(&mut self, s: Schema, depth: usize) -> R<Schema> {
        match s {
            Schema::Ref(t) => {
                let mut x = self.resolve_ref(&t, depth)?;
                let mut hops = 0;
                while let Schema::Ref(t2) = x {
                    hops += 1;
                    if hops > self.opts.max_depth {
                        return Err(kw_err(&t2, "$ref", "reference chain too long"));
                    }
                    x = self.resolve_ref(&t2, depth)?;
                }
                Ok(x)
            }
            other => Ok(other),
        }
    }

    /// The intersection of two schemas.
    pub(crate) fn intersect(&mut self, a: Schema, b: Schema, ptr: &str, depth: usize) -> R<Schema> {
        if depth > self.opts.max_depth {
            return Err(Error::limit("max_depth", self.opts.max_depth, format!("intersecting schemas at `{ptr}`")));
        }
        if a.is_any() {
            return Ok(b);
        }
        if b.is_any() {
            return Ok(a);
        }
        if a.is_nothing() || b.is_nothing() {
            return Ok(Schema::nothing());
        }
        if let (Schema::Ref(x), Schema::Ref(y)) = (&a, &b) {
            if x == y {
                return Ok(a);
            }
        }
        let a = self.expand(a, depth)?;
        let b = self.expand(b, depth)?;
        match (a, b) {
            (Schema::AnyOf(xs), other) | (other, Schema::AnyOf(xs)) => {
                let mut out = Vec::new();
                for x in xs {
                    let r = self.intersect(x, other.clone(), ptr, depth + 1)?;
                    match r {
                        Schema::AnyOf(v) => out.extend(v),
                        r if r.is_nothing() => {}
                        r => out.push(r),
                    }
                    if out.len() > self.opts.max_branches {
                        return Err(Error::limit(
                            "max_branches",
                            self.opts.max_branches,
                            format!("intersecting `anyOf`/`oneOf` branches at `{ptr}`"),
                        ));
                    }
                }
                Ok(Schema::AnyOf(out))
            }
            (Schema::Typed(x), Schema::Typed(y)) => {
                Ok(Schema::Typed(Box::new(self.intersect_typed(*x, *y, ptr, depth)?)))
            }
            (x, y) => {
                // unreachable after expand; keep a safe answer
                Err(kw_err(ptr, "$ref", format!("cannot intersect {x:?} with {y:?}")))
            }
        }
    }

    fn intersect_typed(&mut self, a: Typed, b: Typed, ptr: &str, depth: usize) -> R<Typed> {
        let mut t = Typed::none();
        t.null = a.null && b.null;
        t.t = a.t && b.t;
        t.f = a.f && b.f;
        t.number = match (a.number, b.number) {
            (Some(x), Some(y)) => {
                let mut n = x.clone();
                n.integer |= y.integer;
                n.strict_integer |= y.strict_integer;
                n.non_integer |= y.non_integer;
                n.not_multiple_of.extend(y.not_multiple_of);
                if let Some((d, ex)) = y.min {
                    match &n.min {
                        Some((c, cex)) if d.cmp(c) == std::cmp::Ordering::Less => {}
                        Some((c, cex)) if d.cmp(c) == std::cmp::Ordering::Equal && (*cex || !ex) => {}
                        _ => n.min = Some((d, ex)),
                    }
                }
                if let Some((d, ex)) = y.max {
                    match &n.max {
                        Some((c, cex)) if d.cmp(c) == std::cmp::Ordering::Greater => {}
                        Some((c, cex)) if d.cmp(c) == std::cmp::Ordering::Equal && (*cex || !ex) => {}
                        _ => n.max = Some((d, ex)),
                    }
                }
                for k in y.multiple_of {
                    if !n.multiple_of.contains(&k) {
                        n.multiple_of.push(k);
                    }
                }
                n.exclude.extend(y.exclude);
                if n.is_empty() {
                    None
                } else {
                    Some(n)
                }
            }
            _ => None,
        };
        t.string = match (a.string, b.string) {
            (Some(x), Some(y)) => {
                let mut s = x;
                s.min_len = s.min_len.max(y.min_len);
                s.max_len = match (s.max_len, y.max_len) {
                    (Some(p), Some(q)) => Some(p.min(q)),
                    (p, q) => p.or(q),
                };
                for p in y.patterns {
                    if !s.patterns.contains(&p) {
                        s.patterns.push(p);
                    }
                }
                for f in y.formats {
                    if !s.formats.contains(&f) {
                        s.formats.push(f);
                    }
                }
                s.exclude.extend(y.exclude);
                for p in y.not_patterns {
                    if !s.not_patterns.contains(&p) {
                        s.not_patterns.push(p);
                    }
                }
                if s.max_len.is_some_and(|m| m < s.min_len) {
                    None
                } else {
                    Some(s)
                }
            }
            _ => None,
        };
        t.array = match (a.array, b.array) {
            (Some(x), Some(y)) => self.intersect_array(x, y, ptr, depth)?,
            _ => None,
        };
        t.object = match (a.object, b.object) {
            (Some(x), Some(y)) => self.intersect_object(x, y, ptr, depth)?,
            _ => None,
        };
        t.values = match (a.values, b.values) {
            (Some(x), Some(y)) => Some(x.into_iter().filter(|v| y.iter().any(|w| json_eq(v, w))).collect()),
            (x, y) => x.or(y),
        };
        Ok(t)
    }

    fn intersect_array(&mut self, x: ArraySchema, y: ArraySchema, ptr: &str, depth: usize) -> R<Option<ArraySchema>> {
        let n = x.prefix.len().max(y.prefix.len());
        let mut prefix = Vec::with_capacity(n);
        for i in 0..n {
            let p = x.prefix.get(i).cloned().unwrap_or_else(|| x.rest.clone());
            let q = y.prefix.get(i).cloned().unwrap_or_else(|| y.rest.clone());
            prefix.push(self.intersect(p, q, ptr, depth + 1)?);
        }
        let rest = self.intersect(x.rest, y.rest, ptr, depth + 1)?;
        let mut a = ArraySchema {
            prefix,
            rest,
            min: x.min.max(y.min),
            max: match (x.max, y.max) {
                (Some(p), Some(q)) => Some(p.min(q)),
                (p, q) => p.or(q),
            },
        };
        if let Some(i) = a.prefix.iter().position(Schema::is_nothing) {
            a.max = Some(a.max.map_or(i as u64, |m| m.min(i as u64)));
            a.prefix.truncate(i);
        }
        if a.rest.is_nothing() {
            let n = a.prefix.len() as u64;
            a.max = Some(a.max.map_or(n, |m| m.min(n)));
        }
        if a.max.is_some_and(|m| m < a.min) {
            return Ok(None);
        }
        Ok(Some(a))
    }

    fn intersect_object(
        &mut self,
        x: ObjectSchema,
        y: ObjectSchema,
        ptr: &str,
        depth: usize,
    ) -> R<Option<ObjectSchema>> {
        if !x.pattern_props.is_empty() && !y.pattern_props.is_empty() && x.pattern_props != y.pattern_props {
            return Err(kw_err(
                ptr,
                "patternProperties",
                "intersecting two sets of patternProperties is not supported",
            ));
        }
        // the schema each side imposes on a key it does not declare
        let mut props: Vec<(String, Schema)> = Vec::new();
        let mut keys: Vec<String> = x.props.iter().map(|(k, _)| k.clone()).collect();
        for (k, _) in &y.props {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        for k in keys {
            let px = self.side_schema(&x, &k, ptr)?;
            let py = self.side_schema(&y, &k, ptr)?;
            let s = self.intersect(px, py, ptr, depth + 1)?;
            props.push((k, s));
        }
        let mut required = x.required.clone();
        for r in y.required {
            if !required.contains(&r) {
                required.push(r);
            }
        }
        let pattern_props = if x.pattern_props.is_empty() { y.pattern_props.clone() } else { x.pattern_props.clone() };
        if (!x.pattern_props.is_empty() && !y.additional.is_any())
            || (!y.pattern_props.is_empty() && !x.additional.is_any())
        {
            return Err(kw_err(
                ptr,
                "patternProperties",
                "patternProperties combined with another object's additionalProperties is not supported",
            ));
        }
        let additional = self.intersect(x.additional, y.additional, ptr, depth + 1)?;
        let names = match (x.names, y.names) {
            (Some(p), Some(q)) => Some(self.intersect(p, q, ptr, depth + 1)?),
            (p, q) => p.or(q),
        };
        let mut dependent = x.dependent;
        dependent.extend(y.dependent);
        let o = ObjectSchema {
            props,
            required,
            pattern_props,
            additional,
            names,
            min_props: x.min_props.max(y.min_props),
            max_props: match (x.max_props, y.max_props) {
                (Some(p), Some(q)) => Some(p.min(q)),
                (p, q) => p.or(q),
            },
            dependent,
        };
        if o.max_props.is_some_and(|m| m < o.min_props) {
            return Ok(None);
        }
        Ok(Some(o))
    }

    /// The schema an object schema imposes on property `k`.
    fn side_schema(&mut self, o: &ObjectSchema, k: &str, ptr: &str) -> R<Schema> {
        if let Some((_, s)) = o.props.iter().find(|(n, _)| n == k) {
            return Ok(s.clone());
        }
        if !o.pattern_props.is_empty() {
            let mut matched = false;
            for (p, _) in &o.pattern_props {
                if pattern_matches(p, k).map_err(|e| kw_err(ptr, "patternProperties", e))? {
                    matched = true;
                }
            }
            if matched {
                return Err(kw_err(
                    ptr,
                    "patternProperties",
                    "a property matched by patternProperties in an intersection is not supported",
                ));
            }
        }
        Ok(o.additional.clone())
    }

    /// Provable disjointness of two schemas (false = unknown).
    pub(crate) fn disjoint(&mut self, a: &Schema, b: &Schema, depth: usize) -> R<bool> {
        if depth > self.opts.max_depth {
            return Ok(false);
        }
        let a = match self.expand(a.clone(), depth) {
            Ok(x) => x,
            Err(_) => return Ok(false),
        };
        let b = match self.expand(b.clone(), depth) {
            Ok(x) => x,
            Err(_) => return Ok(false),
        };
        match (&a, &b) {
            (Schema::AnyOf(xs), other) | (other, Schema::AnyOf(xs)) => {
                for x in xs {
                    if !self.disjoint(x, other, depth + 1)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (Schema::Typed(x), Schema::Typed(y)) => self.disjoint_typed(x, y, depth),
            _ => Ok(false),
        }
    }

    fn disjoint_typed(&mut self, x: &Typed, y: &Typed, depth: usize) -> R<bool> {
        // enumerated values: check each against the other side
        if let Some(vals) = &x.values {
            let mut all = true;
            for v in vals {
                if super::validate::matches(self, v, &Schema::Typed(Box::new(y.clone())), depth + 1)? != Some(false) {
                    all = false;
                }
            }
            if all {
                return Ok(true);
            }
        }
        if let Some(vals) = &y.values {
            let mut all = true;
            for v in vals {
                if super::validate::matches(self, v, &Schema::Typed(Box::new(x.clone())), depth + 1)? != Some(false) {
                    all = false;
                }
            }
            if all {
                return Ok(true);
            }
        }
        if (x.null && y.null) || (x.t && y.t) || (x.f && y.f) {
            return Ok(false);
        }
        if let (Some(p), Some(q)) = (&x.number, &y.number) {
            if !disjoint_numbers(p, q) {
                return Ok(false);
            }
        }
        if let (Some(p), Some(q)) = (&x.string, &y.string) {
            if !super::compile::strings_disjoint(p, q, &mut self.specs) {
                return Ok(false);
            }
        }
        if let (Some(p), Some(q)) = (&x.array, &y.array) {
            if !self.disjoint_arrays(p, q, depth)? {
                return Ok(false);
            }
        }
        if let (Some(p), Some(q)) = (&x.object, &y.object) {
            if !self.disjoint_objects(p, q, depth)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn disjoint_arrays(&mut self, p: &ArraySchema, q: &ArraySchema, depth: usize) -> R<bool> {
        if p.max.is_some_and(|m| m < q.min) || q.max.is_some_and(|m| m < p.min) {
            return Ok(true);
        }
        // a position every array of both must have, with disjoint schemas
        let must = p.min.max(q.min) as usize;
        for i in 0..must.min(p.prefix.len().max(q.prefix.len()) + 1) {
            let a = p.prefix.get(i).unwrap_or(&p.rest).clone();
            let b = q.prefix.get(i).unwrap_or(&q.rest).clone();
            if self.disjoint(&a, &b, depth + 1)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn disjoint_objects(&mut self, p: &ObjectSchema, q: &ObjectSchema, depth: usize) -> R<bool> {
        // a property required by both with disjoint schemas
        for k in &p.required {
            if q.required.contains(k) {
                let a = match p.props.iter().find(|(n, _)| n == k) {
                    Some((_, s)) => s.clone(),
                    None => continue,
                };
                let b = match q.props.iter().find(|(n, _)| n == k) {
                    Some((_, s)) => s.clone(),
                    None => continue,
                };
                if self.disjoint(&a, &b, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        // a property required by one that the other forbids
        for (r, o) in [(p, q), (q, p)] {
            for k in &r.required {
                let forbidden = match o.props.iter().find(|(n, _)| n == k) {
                    Some((_, s)) => s.is_nothing(),
                    None => o.additional.is_nothing() && o.pattern_props.is_empty(),
                };
                if forbidden {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The complement of the schema `v` (as a JSON value at `ptr`), when it
    /// can be expressed exactly.
    pub(crate) fn negate(&mut self, v: &Value, ptr: &str, depth: usize) -> R<Schema> {
        if depth > self.opts.max_depth {
            return Err(Error::limit("max_depth", self.opts.max_depth, format!("negating the schema at `{ptr}`")));
        }
        let m = match v {
            Value::Bool(true) => return Ok(Schema::nothing()),
            Value::Bool(false) => return Ok(Schema::any()),
            Value::Object(m) => m,
            _ => return Err(kw_err(ptr, "not", "a schema must be an object or a boolean")),
        };
        let filtered;
        let m = if m.keys().any(|k| !self.is_keyword(k)) {
            filtered = self.without_unknown(m);
            &filtered
        } else {
            m
        };
        // Negate each assertion keyword separately: not(A and B) = not A or not B.
        let mut branches: Vec<Schema> = Vec::new();
        for (k, val) in m {
            let b = match k.as_str() {
                "type" => {
                    let mut t = Typed::any();
                    let mut pos = Map::new();
                    pos.insert("type".into(), val.clone());
                    let mut tt = Typed::any();
                    self.apply_type(&pos, ptr, &mut tt)?;
                    t.null = !tt.null;
                    t.t = !tt.t;
                    t.f = !tt.f;
                    if tt.string.is_some() {
                        t.string = None;
                    }
                    if tt.array.is_some() {
                        t.array = None;
                    }
                    if tt.object.is_some() {
                        t.object = None;
                    }
                    match &tt.number {
                        // not integer: numbers with a non-zero fraction
                        Some(n) if n.integer => {
                            if let Some(nn) = t.number.as_mut() {
                                nn.non_integer = true;
                            }
                        }
                        Some(_) => t.number = None,
                        None => {}
                    }
                    Schema::Typed(Box::new(t))
                }
                "enum" | "const" => {
                    let vals: Vec<Value> =
                        if k == "const" { vec![val.clone()] } else { val.as_array().cloned().unwrap_or_default() };
                    let mut t = Typed::any();
                    for x in &vals {
                        match x {
                            Value::Null => t.null = false,
                            Value::Bool(true) => t.t = false,
                            Value::Bool(false) => t.f = false,
                            Value::String(s) => {
                                if let Some(st) = t.string.as_mut() {
                                    st.exclude.push(s.clone());
                                }
                            }
                            Value::Number(n) => {
                                let d = self.as_dec(x, ptr, k)?;
                                let _ = n;
                                if let Some(nn) = t.number.as_mut() {
                                    nn.exclude.push(d);
                                }
                            }
                            _ => return Err(kw_err(ptr, "not", "`not` of an object or array value is not supported")),
                        }
                    }
                    Schema::Typed(Box::new(t))
                }
                "required" => {
                    // not required [a, b] = object missing a or missing b (or not an object)
                    let names: Vec<String> = val
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                        .unwrap_or_default();
                    if names.is_empty() {
                        Schema::nothing()
                    } else {
                        let mut alts = Vec::new();
                        let mut nonobj = Typed::any();
                        nonobj.object = None;
                        alts.push(Schema::Typed(Box::new(nonobj)));
                        for n in names {
                            let mut t = Typed::none();
                            let mut o = ObjectSchema::default();
                            o.props.push((n, Schema::nothing()));
                            t.object = Some(o);
                            alts.push(Schema::Typed(Box::new(t)));
                        }
                        Schema::AnyOf(alts)
                    }
                }
                "minLength" | "maxLength" | "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum"
                | "minItems" | "maxItems" | "minProperties" | "maxProperties" | "pattern" => {
                    self.negate_simple(k, val, m, ptr)?
                }
                "multipleOf" => {
                    let k = self.as_dec(val, ptr, "multipleOf")?;
                    let mut t = Typed::none();
                    t.number = Some(NumberSchema { not_multiple_of: vec![k], ..NumberSchema::default() });
                    Schema::Typed(Box::new(t))
                }
                "anyOf" => {
                    // not anyOf = allOf not
                    let arr = val.as_array().cloned().unwrap_or_default();
                    let mut s = Schema::any();
                    for (i, x) in arr.iter().enumerate() {
                        let n = self.negate(x, &format!("{ptr}/anyOf/{i}"), depth + 1)?;
                        s = self.intersect(s, n, ptr, depth + 1)?;
                    }
                    s
                }
                "allOf" => {
                    let arr = val.as_array().cloned().unwrap_or_default();
                    let mut alts = Vec::new();
                    for (i, x) in arr.iter().enumerate() {
                        alts.push(self.negate(x, &format!("{ptr}/allOf/{i}"), depth + 1)?);
                    }
                    Schema::AnyOf(alts)
                }
                "not" => self.normalize(val, &format!("{ptr}/not"), depth + 1)?,
                "$ref" => {
                    let r = val.as_str().ok_or_else(|| kw_err(ptr, "$ref", "must be a string"))?;
                    let target = self.index.resolve(ptr, r).map_err(|e| kw_err(ptr, "$ref", e))?;
                    if self.inlining.contains(&target) {
                        return Err(kw_err(ptr, "not", "`not` of a recursive reference is not supported"));
                    }
                    let Some(tv) = super::refs::lookup(self.root, &target) else {
                        return Err(kw_err(ptr, "$ref", "the reference points to nothing"));
                    };
                    self.inlining.push(target.clone());
                    let r = self.negate(tv, &target, depth + 1);
                    self.inlining.pop();
                    let n = r?;
                    if self.draft <= Draft::Draft7 {
                        // siblings of `$ref` are ignored
                        return Ok(n);
                    }
                    n
                }
                "properties" => {
                    // some declared property is present and violates its schema
                    let props = val.as_object().cloned().unwrap_or_default();
                    let mut alts = Vec::new();
                    for (k, pv) in &props {
                        let n = self.negate(pv, &format!("{ptr}/properties/{}", escape_token(k)), depth + 1)?;
                        if n.is_nothing() {
                            continue;
                        }
                        let mut t = Typed::none();
                        let o = ObjectSchema {
                            props: vec![(k.clone(), n)],
                            required: vec![k.clone()],
                            ..ObjectSchema::default()
                        };
                        t.object = Some(o);
                        alts.push(Schema::Typed(Box::new(t)));
                    }
                    Schema::AnyOf(alts)
                }
                "additionalProperties"
                | "patternProperties"
                | "items"
                | "prefixItems"
                | "additionalItems"
                | "contains"
                | "uniqueItems"
                | "dependencies"
                | "dependentRequired"
                | "dependentSchemas"
                | "propertyNames"
                | "if"
                | "oneOf"
                | "format"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "$dynamicRef"
                | "$recursiveRef"
                | "minContains"
                | "maxContains" => {
                    return Err(kw_err(ptr, "not", format!("`not` with `{k}` is not supported")));
                }
                // annotations and unknown keywords constrain nothing: their negation is empty
                _ => continue,
            };
            branches.push(b);
        }
        if branches.is_empty() {
            // not {} = nothing
            return Ok(Schema::nothing());
        }
        Ok(if branches.len() == 1 { branches.remove(0) } else { Schema::AnyOf(branches) })
    }

    /// The complement of one numeric/length keyword.
    fn negate_simple(&mut self, k: &str, val: &Value, m: &Map<String, Value>, ptr: &str) -> R<Schema> {
        let mut t = Typed::any();
        match k {
            "minLength" | "maxLength" => {
                let n = as_u64(val, ptr, k)?;
                let s = t.string.as_mut().ok_or_else(|| kw_err(ptr, k, "internal"))?;
                if k == "minLength" {
                    if n == 0 {
                        t.string = None;
                    } else {
                        s.max_len = Some(n - 1);
                    }
                } else {
                    s.min_len = n + 1;
                }
            }
            "minItems" | "maxItems" => {
                let n = as_u64(val, ptr, k)?;
                let a = t.array.as_mut().ok_or_else(|| kw_err(ptr, k, "internal"))?;
                if k == "minItems" {
                    if n == 0 {
                        t.array = None;
                    } else {
                        a.max = Some(n - 1);
                    }
                } else {
                    a.min = n + 1;
                }
            }
            "minProperties" | "maxProperties" => {
                let n = as_u64(val, ptr, k)?;
                let o = t.object.as_mut().ok_or_else(|| kw_err(ptr, k, "internal"))?;
                if k == "minProperties" {
                    if n == 0 {
                        t.object = None;
                    } else {
                        o.max_props = Some(n - 1);
                    }
                } else {
                    o.min_props = n + 1;
                }
            }
            "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum" => {
                if let Value::Bool(_) = val {
                    // draft-4 flag: handled with minimum/maximum
                    return Ok(Schema::nothing());
                }
                let d = self.as_dec(val, ptr, k)?;
                let draft4_ex = |name: &str| m.get(name) == Some(&Value::Bool(true));
                let n = t.number.as_mut().ok_or_else(|| kw_err(ptr, k, "internal"))?;
                match k {
                    "minimum" => n.max = Some((d, !draft4_ex("exclusiveMinimum"))),
                    "exclusiveMinimum" => n.max = Some((d, false)),
                    "maximum" => n.min = Some((d, !draft4_ex("exclusiveMaximum"))),
                    _ => n.min = Some((d, false)),
                }
            }
            "pattern" => {
                let p = val.as_str().ok_or_else(|| kw_err(ptr, "pattern", "must be a string"))?;
                super::pattern::search_regex(p).map_err(|e| kw_err(ptr, "pattern", e.0))?;
                let mut t = Typed::none();
                t.string = Some(StringSchema { not_patterns: vec![p.to_string()], ..StringSchema::default() });
                return Ok(Schema::Typed(Box::new(t)));
            }
            _ => return Err(kw_err(ptr, "not", format!("`not` with `{k}` is not supported"))),
        }
        Ok(Schema::Typed(Box::new(t)))
    }
}

fn disjoint_numbers(p: &NumberSchema, q: &NumberSchema) -> bool {
    let below = |hi: &Option<(Dec, bool)>, lo: &Option<(Dec, bool)>| match (hi, lo) {
        (Some((h, hex)), Some((l, lex))) => match h.cmp(l) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => *hex || *lex,
            _ => false,
        },
        _ => false,
    };
    below(&p.max, &q.min) || below(&q.max, &p.min)
}

/// Whether the ECMA-262 `pattern` finds a match in `s`.
pub(crate) fn pattern_matches(pattern: &str, s: &str) -> Result<bool, String> {
    let re = super::pattern::search_regex(pattern).map_err(|e| e.0)?;
    // the encoding of `s` is valid by construction, so the loose search is exact here
    let d =
        crate::lexer::spec::compile_spec(&crate::ir::LexemeSpec::Regex(re), 100_000).map_err(|e| format!("{e:?}"))?;
    Ok(super::pattern::dfa_matches(&d, super::pattern::encode_str(s).as_bytes()))
}
