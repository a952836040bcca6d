//! Compiling a [`LexemeSpec`] (and character-level IR leaves) into a [`Dfa`].

use std::sync::OnceLock;

use super::dfa::{parse_regex, Dfa, DfaError, FxMap};
use crate::ir::LexemeSpec;

/// Compiled specs, reused while compiling one grammar (identical lexemes and
/// parts of lexemes are built once).
#[derive(Default)]
pub(crate) struct SpecCache {
    dfas: FxMap<LexemeSpec, Dfa>,
}

/// Compiles a lexeme spec. Parts without `&`/`~` are joined into one regex so
/// regex-automata does the determinization once.
pub(crate) fn compile_spec(spec: &LexemeSpec, max_states: usize) -> Result<Dfa, DfaError> {
    compile_spec_cached(spec, max_states, &mut SpecCache::default())
}

/// [`compile_spec`] through a cache.
pub(crate) fn compile_spec_cached(
    spec: &LexemeSpec,
    max_states: usize,
    cache: &mut SpecCache,
) -> Result<Dfa, DfaError> {
    if let Some(d) = cache.dfas.get(spec) {
        return if d.num_states() > max_states + 1 { Err(DfaError::TooManyStates) } else { Ok(d.clone()) };
    }
    let d = build(spec, max_states, cache)?;
    cache.dfas.insert(spec.clone(), d.clone());
    Ok(d)
}

/// All valid UTF-8 strings.
fn any_utf8() -> &'static Dfa {
    static ANY: OnceLock<Dfa> = OnceLock::new();
    ANY.get_or_init(|| Dfa::from_regex("(?s:.*)", 100).expect("the any-string regex compiles"))
}

fn build(spec: &LexemeSpec, max_states: usize, cache: &mut SpecCache) -> Result<Dfa, DfaError> {
    match spec {
        LexemeSpec::Literal(s) => return Ok(Dfa::literal(s.as_bytes())),
        LexemeSpec::Or(v) if !v.is_empty() && v.iter().all(|x| matches!(x, LexemeSpec::Literal(_))) => {
            let words: Vec<&[u8]> = v
                .iter()
                .filter_map(|x| if let LexemeSpec::Literal(s) = x { Some(s.as_bytes()) } else { None })
                .collect();
            let d = Dfa::literals(&words);
            return if d.num_states() > max_states + 1 { Err(DfaError::TooManyStates) } else { Ok(d) };
        }
        _ => {}
    }
    if let Some(re) = as_regex(spec) {
        return regex_dfa(&re, max_states);
    }
    match spec {
        LexemeSpec::Regex(r) => regex_dfa(r, max_states),
        LexemeSpec::Literal(s) => Ok(Dfa::literal(s.as_bytes())),
        LexemeSpec::Concat(v) => fold(v, max_states, cache, |a, b| Dfa::concat(a, b, max_states)),
        LexemeSpec::Or(v) => fold(v, max_states, cache, |a, b| Dfa::product(a, b, false, max_states)),
        LexemeSpec::And(v) => fold(v, max_states, cache, |a, b| Dfa::product(a, b, true, max_states)),
        LexemeSpec::Not(x) => {
            let inner = compile_spec_cached(x, max_states, cache)?;
            Dfa::product(any_utf8(), &inner.complement_all_bytes(), true, max_states)
        }
    }
}

fn fold(
    v: &[LexemeSpec],
    max_states: usize,
    cache: &mut SpecCache,
    f: impl Fn(&Dfa, &Dfa) -> Result<Dfa, DfaError>,
) -> Result<Dfa, DfaError> {
    let mut it = v.iter();
    let Some(first) = it.next() else {
        // empty concatenation = empty string; empty union/intersection: the
        // front-ends never build these, and "nothing" is the safe reading.
        return Dfa::from_regex("[a&&b]", max_states);
    };
    let mut acc = compile_spec_cached(first, max_states, cache)?;
    for s in it {
        acc = f(&acc, &compile_spec_cached(s, max_states, cache)?)?;
    }
    Ok(acc)
}

/// A regex's DFA.
pub(crate) fn regex_dfa(pattern: &str, max_states: usize) -> Result<Dfa, DfaError> {
    Dfa::from_hir(&parse_regex(pattern)?, max_states)
}

/// The spec as one regex, when it has no `&` or `~`.
fn as_regex(spec: &LexemeSpec) -> Option<String> {
    match spec {
        LexemeSpec::Regex(r) => Some(format!("(?:{r})")),
        LexemeSpec::Literal(s) => Some(regex_syntax::escape(s)),
        LexemeSpec::Concat(v) => {
            let parts: Option<Vec<String>> = v.iter().map(as_regex).collect();
            Some(parts?.concat())
        }
        LexemeSpec::Or(v) if !v.is_empty() => {
            let parts: Option<Vec<String>> = v.iter().map(as_regex).collect();
            Some(format!("(?:{})", parts?.join("|")))
        }
        _ => None,
    }
}

/// A regex character class for one character of `ranges` (or not in them).
pub(crate) fn class_regex(ranges: &[(char, char)], negated: bool) -> String {
    if ranges.is_empty() {
        return if negated { "(?s:.)".to_string() } else { "[a&&b]".to_string() };
    }
    let mut s = String::from(if negated { "[^" } else { "[" });
    for &(a, b) in ranges {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        s.push_str(&format!("\\x{{{:X}}}", a as u32));
        if a != b {
            s.push_str(&format!("-\\x{{{:X}}}", b as u32));
        }
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_is_complement_within_utf8() {
        let d = compile_spec(&LexemeSpec::Not(Box::new(LexemeSpec::Literal("ab".into()))), 1000).unwrap();
        assert!(d.matches(b"a"));
        assert!(d.matches(b"abc"));
        assert!(!d.matches(b"ab"));
        assert!(!d.matches(&[0xC3]));
    }

    #[test]
    fn and_of_regexes() {
        let d = compile_spec(
            &LexemeSpec::And(vec![LexemeSpec::Regex("[a-z]+".into()), LexemeSpec::Regex(".{0,3}".into())]),
            1000,
        )
        .unwrap();
        assert!(d.matches(b"abc"));
        assert!(!d.matches(b"abcd"));
    }

    #[test]
    fn class_regex_negated_and_escaped() {
        let d = Dfa::from_regex(&class_regex(&[('"', '"'), ('\\', '\\')], true), 100).unwrap();
        assert!(d.matches(b"a"));
        assert!(d.matches("é".as_bytes()));
        assert!(!d.matches(b"\""));
        assert!(!d.matches(b"\\"));
    }
}
