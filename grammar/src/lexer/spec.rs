//! Compiling a [`LexemeSpec`] (and character-level IR leaves) into a [`Dfa`].

use super::dfa::{Dfa, DfaError};
use crate::ir::LexemeSpec;

/// Compiles a lexeme spec. Parts without `&`/`~` are joined into one regex so
/// regex-automata does the determinization once.
pub(crate) fn compile_spec(spec: &LexemeSpec, max_states: usize) -> Result<Dfa, DfaError> {
    if let Some(re) = as_regex(spec) {
        return Dfa::from_regex(&re, max_states);
    }
    match spec {
        LexemeSpec::Regex(r) => Dfa::from_regex(r, max_states),
        LexemeSpec::Literal(s) => Ok(Dfa::literal(s.as_bytes())),
        LexemeSpec::Concat(v) => fold(v, max_states, |a, b| Dfa::concat(a, b, max_states)),
        LexemeSpec::Or(v) => fold(v, max_states, |a, b| Dfa::product(a, b, false, max_states)),
        LexemeSpec::And(v) => fold(v, max_states, |a, b| Dfa::product(a, b, true, max_states)),
        LexemeSpec::Not(x) => {
            let inner = compile_spec(x, max_states)?;
            let any = Dfa::from_regex("(?s:.*)", max_states)?;
            Dfa::product(&any, &inner.complement_all_bytes(), true, max_states)
        }
    }
}

fn fold(v: &[LexemeSpec], max_states: usize, f: impl Fn(&Dfa, &Dfa) -> Result<Dfa, DfaError>) -> Result<Dfa, DfaError> {
    let mut it = v.iter();
    let Some(first) = it.next() else {
        // empty concatenation = empty string; empty union/intersection: the
        // front-ends never build these, and "nothing" is the safe reading.
        return Dfa::from_regex("[a&&b]", max_states);
    };
    let mut acc = compile_spec(first, max_states)?;
    for s in it {
        acc = f(&acc, &compile_spec(s, max_states)?)?;
    }
    Ok(acc)
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
