//! Checking one JSON value against a normalized [`Schema`].
//!
//! Where it sits: `enum`/`const` values are filtered through the rest of
//! their schema before they become literals, and `oneOf` disjointness is
//! proven for enumerated branches, with this check. It answers for the
//! language the compiler emits (so string checks run the same lexeme
//! automata as the grammar). `None` means "cannot tell".

use serde_json::Value;

use super::compile::string_body_spec;
use super::numeric::Dec;
use super::schema::{json_eq, pattern_matches, Normalizer, Schema, Typed};
use crate::error::Error;
use crate::lexer::spec::compile_spec;

/// Whether `v` is in the language of `s`.
pub(crate) fn matches(n: &mut Normalizer<'_>, v: &Value, s: &Schema, depth: usize) -> Result<Option<bool>, Error> {
    if depth > n.opts.max_depth {
        return Ok(None);
    }
    match s {
        Schema::Any => Ok(Some(true)),
        Schema::Ref(t) => {
            let x = match n.normalize_at(&t.clone(), depth + 1) {
                Ok(x) => x,
                Err(_) => return Ok(None),
            };
            matches(n, v, &x, depth + 1)
        }
        Schema::AnyOf(bs) => {
            let mut unknown = false;
            for b in bs {
                match matches(n, v, b, depth + 1)? {
                    Some(true) => return Ok(Some(true)),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            Ok(if unknown { None } else { Some(false) })
        }
        Schema::Typed(t) => matches_typed(n, v, t, depth),
    }
}

fn matches_typed(n: &mut Normalizer<'_>, v: &Value, t: &Typed, depth: usize) -> Result<Option<bool>, Error> {
    if let Some(vals) = &t.values {
        if !vals.iter().any(|x| json_eq(x, v)) {
            return Ok(Some(false));
        }
    }
    Ok(match v {
        Value::Null => Some(t.null),
        Value::Bool(true) => Some(t.t),
        Value::Bool(false) => Some(t.f),
        Value::Number(x) => match (&t.number, Dec::from_value(x)) {
            (None, _) => Some(false),
            (Some(ns), Some(d)) => ns.accepts(&d),
            (Some(_), None) => None,
        },
        Value::String(s) => match &t.string {
            None => Some(false),
            Some(ss) => {
                let len = s.chars().count() as u64;
                if len < ss.min_len || ss.max_len.is_some_and(|m| len > m) {
                    return Ok(Some(false));
                }
                if ss.exclude.iter().any(|x| x == s) {
                    return Ok(Some(false));
                }
                for p in &ss.not_patterns {
                    match pattern_matches(p, s) {
                        Ok(true) => return Ok(Some(false)),
                        Ok(false) => {}
                        Err(_) => return Ok(None),
                    }
                }
                for p in &ss.patterns {
                    match pattern_matches(p, s) {
                        Ok(false) => return Ok(Some(false)),
                        Ok(true) => {}
                        Err(_) => return Ok(None),
                    }
                }
                if !ss.formats.is_empty() {
                    let spec = match string_body_spec(ss) {
                        Ok(s) => s,
                        Err(_) => return Ok(None),
                    };
                    match compile_spec(&spec, 200_000) {
                        Ok(d) => {
                            return Ok(Some(super::pattern::dfa_matches(&d, super::pattern::encode_str(s).as_bytes())))
                        }
                        Err(_) => return Ok(None),
                    }
                }
                Some(true)
            }
        },
        Value::Array(items) => match &t.array {
            None => Some(false),
            Some(a) => {
                let len = items.len() as u64;
                if len < a.min || a.max.is_some_and(|m| len > m) {
                    return Ok(Some(false));
                }
                let mut unknown = false;
                for (i, x) in items.iter().enumerate() {
                    let s = a.prefix.get(i).unwrap_or(&a.rest).clone();
                    match matches(n, x, &s, depth + 1)? {
                        Some(false) => return Ok(Some(false)),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown {
                    None
                } else {
                    Some(true)
                }
            }
        },
        Value::Object(m) => match &t.object {
            None => Some(false),
            Some(o) => {
                let len = m.len() as u64;
                if len < o.min_props || o.max_props.is_some_and(|x| len > x) {
                    return Ok(Some(false));
                }
                if o.required.iter().any(|r| !m.contains_key(r)) {
                    return Ok(Some(false));
                }
                for (k, deps) in &o.dependent {
                    if m.contains_key(k) && deps.iter().any(|d| !m.contains_key(d)) {
                        return Ok(Some(false));
                    }
                }
                let mut unknown = false;
                for (k, x) in m {
                    let mut schemas = Vec::new();
                    if let Some((_, s)) = o.props.iter().find(|(p, _)| p == k) {
                        schemas.push(s.clone());
                    }
                    let mut matched = false;
                    for (p, s) in &o.pattern_props {
                        match pattern_matches(p, k) {
                            Ok(true) => {
                                matched = true;
                                schemas.push(s.clone());
                            }
                            Ok(false) => {}
                            Err(_) => return Ok(None),
                        }
                    }
                    if schemas.is_empty() && !matched {
                        schemas.push(o.additional.clone());
                    }
                    if let Some(ns) = &o.names {
                        match matches(n, &Value::String(k.clone()), ns, depth + 1)? {
                            Some(false) => return Ok(Some(false)),
                            None => unknown = true,
                            Some(true) => {}
                        }
                    }
                    for s in schemas {
                        match matches(n, x, &s, depth + 1)? {
                            Some(false) => return Ok(Some(false)),
                            None => unknown = true,
                            Some(true) => {}
                        }
                    }
                }
                if unknown {
                    None
                } else {
                    Some(true)
                }
            }
        },
    })
}
