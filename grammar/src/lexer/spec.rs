//! Compiling a [`LexemeSpec`] (and character-level IR leaves) into a [`Dfa`].

use std::sync::{Mutex, OnceLock};

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
    let shareable = worth_sharing(spec);
    if shareable {
        if let Some(d) = shared_get(spec, max_states) {
            cache.dfas.insert(spec.clone(), d.clone());
            return Ok(d);
        }
    }
    let d = build(spec, max_states, cache)?;
    if shareable {
        shared_put(spec, max_states, &d);
    }
    cache.dfas.insert(spec.clone(), d.clone());
    Ok(d)
}

/// Compiled specs shared by every grammar compiled in the process: most JSON
/// Schemas use the same string, number and integer lexemes, whose automata
/// (a determinization over UTF-8) dominate the compile time of small
/// schemas. A spec's automaton does not depend on the state limit it was
/// built under (the limit only turns a larger construction into an error), so
/// an entry built under limit `L` serves any caller whose limit is at least
/// `L`; a caller with a smaller limit builds afresh, so whether a spec
/// compiles never depends on what was compiled before. Bounded: when the
/// tables held reach [`SHARED_MAX_WORDS`] transitions the cache is emptied.
struct SharedCache {
    /// spec -> (smallest limit it was built under, automaton)
    dfas: FxMap<LexemeSpec, (usize, Dfa)>,
    words: usize,
}

/// Bound on the transitions (4-byte words) the shared cache holds: 16 MiB.
const SHARED_MAX_WORDS: usize = 1 << 22;

fn shared() -> &'static Mutex<SharedCache> {
    static SHARED: OnceLock<Mutex<SharedCache>> = OnceLock::new();
    SHARED.get_or_init(|| Mutex::new(SharedCache { dfas: FxMap::default(), words: 0 }))
}

/// Whether a spec costs enough to build to be worth sharing: one with a
/// regular expression in it (literals and literal sets are built directly,
/// faster than a lookup would pay for).
fn worth_sharing(spec: &LexemeSpec) -> bool {
    match spec {
        LexemeSpec::Regex(_) => true,
        LexemeSpec::Literal(_) => false,
        LexemeSpec::Concat(v) | LexemeSpec::Or(v) | LexemeSpec::And(v) => v.iter().any(worth_sharing),
        LexemeSpec::Not(x) => worth_sharing(x),
    }
}

fn shared_get(spec: &LexemeSpec, max_states: usize) -> Option<Dfa> {
    // a poisoned lock only means another thread panicked while holding it;
    // entries are inserted whole, so the map is still consistent
    let c = shared().lock().unwrap_or_else(|e| e.into_inner());
    match c.dfas.get(spec) {
        Some((built_under, d)) if *built_under <= max_states => Some(d.clone()),
        _ => None,
    }
}

fn shared_put(spec: &LexemeSpec, max_states: usize, d: &Dfa) {
    let words = d.table_len();
    if words > SHARED_MAX_WORDS / 4 {
        return;
    }
    let mut c = shared().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = c.dfas.get_mut(spec) {
        e.0 = e.0.min(max_states);
        return;
    }
    if c.words + words > SHARED_MAX_WORDS {
        c.dfas.clear();
        c.words = 0;
    }
    c.dfas.insert(spec.clone(), (max_states, d.clone()));
    c.words += words;
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
        LexemeSpec::And(v) if v.iter().any(|x| !matches!(x, LexemeSpec::Not(_))) => {
            // Every spec's language is valid UTF-8 (regexes are parsed in
            // UTF-8 mode, literals are strings), so `P & ~X` is `P` minus
            // `X` over all byte strings: no product with "any UTF-8 string".
            let (pos, neg): (Vec<&LexemeSpec>, Vec<&LexemeSpec>) =
                v.iter().partition(|x| !matches!(x, LexemeSpec::Not(_)));
            let mut acc = compile_spec_cached(pos[0], max_states, cache)?;
            for p in &pos[1..] {
                acc = Dfa::product(&acc, &compile_spec_cached(p, max_states, cache)?, true, max_states)?;
            }
            for n in neg {
                if let LexemeSpec::Not(x) = n {
                    let inner = compile_spec_cached(x, max_states, cache)?;
                    acc = Dfa::product(&acc, &inner.complement_all_bytes(), true, max_states)?;
                }
            }
            Ok(acc)
        }
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
    fn and_with_complements_skips_the_utf8_product() {
        // P & ~X & ~Y: strings of P that are neither X nor Y
        let spec = LexemeSpec::And(vec![
            LexemeSpec::Not(Box::new(LexemeSpec::Literal("ab".into()))),
            LexemeSpec::Regex("[a-bé]{0,3}".into()),
            LexemeSpec::Not(Box::new(LexemeSpec::Or(vec![
                LexemeSpec::Literal("a".into()),
                LexemeSpec::Regex("é+".into()),
            ]))),
        ]);
        let d = compile_spec(&spec, 1000).unwrap();
        for (s, want) in [("", true), ("b", true), ("aa", true), ("abb", true), ("aé", true)] {
            assert_eq!(d.matches(s.as_bytes()), want, "{s:?}");
        }
        for s in ["a", "ab", "é", "éé", "abab", "c"] {
            assert!(!d.matches(s.as_bytes()), "{s:?}");
        }
        assert!(!d.matches(&[0xC3]));
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
