//! Explicit DFAs over bytes, and the algebra lexemes need: intersection,
//! union, complement, concatenation.
//!
//! Where it sits: `LexemeSpec -> (regex-automata dense DFA ->) Dfa -> lexer`.
//! regex-automata builds a DFA for each regular expression; we copy its
//! transitions into this flat table so that products (for `&`), complements
//! (for `~`) and concatenations can be built exactly, with a bound on the
//! number of states.
//!
//! Invariants after [`Dfa::prune`]: state 0 is the dead state (absorbing, not
//! accepting); every other reachable state can still reach an accepting state,
//! so "not dead" means "some continuation matches".

use std::collections::{BTreeSet, HashMap, VecDeque};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

/// The dead state.
pub(crate) const DEAD: u32 = 0;

/// Why a DFA could not be built.
#[derive(Debug)]
pub(crate) enum DfaError {
    /// The regex is invalid or unsupported (message from regex-automata).
    Regex(String),
    /// More states than allowed.
    TooManyStates,
}

/// A deterministic automaton over bytes with byte equivalence classes.
#[derive(Clone, Debug)]
pub(crate) struct Dfa {
    /// byte -> class
    classes: [u8; 256],
    nclasses: usize,
    /// `state * nclasses + class` -> next state
    trans: Vec<u32>,
    accept: Vec<bool>,
    start: u32,
}

impl Dfa {
    /// Number of states (including the dead state).
    pub(crate) fn num_states(&self) -> usize {
        self.accept.len()
    }

    pub(crate) fn start(&self) -> u32 {
        self.start
    }

    #[inline]
    pub(crate) fn next(&self, s: u32, b: u8) -> u32 {
        self.trans[s as usize * self.nclasses + self.classes[b as usize] as usize]
    }

    #[inline]
    pub(crate) fn is_accept(&self, s: u32) -> bool {
        self.accept[s as usize]
    }

    /// Whether some byte leads out of `s` to a live state.
    pub(crate) fn has_live_transition(&self, s: u32) -> bool {
        let row = &self.trans[s as usize * self.nclasses..(s as usize + 1) * self.nclasses];
        row.iter().any(|&t| t != DEAD)
    }

    /// Whether the language is empty.
    pub(crate) fn is_empty_language(&self) -> bool {
        self.start == DEAD
    }

    /// Whether the empty string is in the language.
    pub(crate) fn matches_empty(&self) -> bool {
        self.accept[self.start as usize]
    }

    /// Whether no string of the language is a proper prefix of another.
    pub(crate) fn is_prefix_free(&self) -> bool {
        (1..self.num_states() as u32).all(|s| !self.accept[s as usize] || !self.has_live_transition(s))
    }

    /// The bytes that can start a string of the language.
    pub(crate) fn first_bytes(&self) -> [bool; 256] {
        let mut out = [false; 256];
        if self.start != DEAD {
            for b in 0..=255u8 {
                out[b as usize] = self.next(self.start, b) != DEAD;
            }
        }
        out
    }

    /// Whether `bytes` is in the language.
    #[cfg(test)]
    pub(crate) fn matches(&self, bytes: &[u8]) -> bool {
        let mut s = self.start;
        for &b in bytes {
            s = self.next(s, b);
            if s == DEAD {
                return false;
            }
        }
        self.is_accept(s)
    }

    /// A DFA matching exactly `bytes`.
    pub(crate) fn literal(bytes: &[u8]) -> Dfa {
        let n = bytes.len();
        // states: 0 dead, 1..=n+1 positions
        let mut b = RawBuilder::new();
        let ids: Vec<u32> = (0..=n).map(|i| b.add_state(i == n)).collect();
        for (i, &byte) in bytes.iter().enumerate() {
            b.set(ids[i], byte, ids[i + 1]);
        }
        b.finish(ids[0])
    }

    /// Builds a DFA from a regex (regex-syntax syntax), matched whole.
    pub(crate) fn from_regex(pattern: &str, max_states: usize) -> Result<Dfa, DfaError> {
        let size_limit = max_states.saturating_mul(256 * 8).max(1 << 20);
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(MatchKind::All)
                    .minimize(false)
                    .dfa_size_limit(Some(size_limit))
                    .determinize_size_limit(Some(size_limit)),
            )
            .syntax(syntax::Config::new().utf8(true).unicode(true).nest_limit(200))
            .build(pattern)
            .map_err(|e| {
                if e.to_string().contains("exceeded") {
                    DfaError::TooManyStates
                } else {
                    DfaError::Regex(e.to_string())
                }
            })?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| DfaError::Regex(e.to_string()))?;
        // BFS over the dense DFA's states, copying transitions.
        let mut b = RawBuilder::new();
        let mut ids: HashMap<regex_automata::util::primitives::StateID, u32> = HashMap::new();
        let mut queue = VecDeque::new();
        let accept_of = |s| dfa.is_match_state(dfa.next_eoi_state(s));
        let s0 = b.add_state(accept_of(start));
        ids.insert(start, s0);
        queue.push_back(start);
        while let Some(s) = queue.pop_front() {
            let from = ids[&s];
            for byte in 0..=255u8 {
                let t = dfa.next_state(s, byte);
                if dfa.is_dead_state(t) || dfa.is_quit_state(t) {
                    continue;
                }
                let to = match ids.get(&t) {
                    Some(&id) => id,
                    None => {
                        if b.num_states() > max_states {
                            return Err(DfaError::TooManyStates);
                        }
                        let id = b.add_state(accept_of(t));
                        ids.insert(t, id);
                        queue.push_back(t);
                        id
                    }
                };
                b.set(from, byte, to);
            }
        }
        Ok(b.finish(s0).prune())
    }

    /// Product of two DFAs: intersection when `and`, union otherwise.
    pub(crate) fn product(a: &Dfa, b: &Dfa, and: bool, max_states: usize) -> Result<Dfa, DfaError> {
        let mut out = RawBuilder::new();
        let mut ids: HashMap<(u32, u32), u32> = HashMap::new();
        let mut queue = VecDeque::new();
        let acc = |x: u32, y: u32| {
            if and {
                a.is_accept(x) && b.is_accept(y)
            } else {
                a.is_accept(x) || b.is_accept(y)
            }
        };
        let dead = |x: u32, y: u32| if and { x == DEAD || y == DEAD } else { x == DEAD && y == DEAD };
        let start = (a.start, b.start);
        if dead(start.0, start.1) {
            return Ok(RawBuilder::new().finish(DEAD));
        }
        let s0 = out.add_state(acc(start.0, start.1));
        ids.insert(start, s0);
        queue.push_back(start);
        while let Some((x, y)) = queue.pop_front() {
            let from = ids[&(x, y)];
            for byte in 0..=255u8 {
                let (nx, ny) = (a.next(x, byte), b.next(y, byte));
                if dead(nx, ny) {
                    continue;
                }
                let to = match ids.get(&(nx, ny)) {
                    Some(&id) => id,
                    None => {
                        if out.num_states() > max_states {
                            return Err(DfaError::TooManyStates);
                        }
                        let id = out.add_state(acc(nx, ny));
                        ids.insert((nx, ny), id);
                        queue.push_back((nx, ny));
                        id
                    }
                };
                out.set(from, byte, to);
            }
        }
        Ok(out.finish(s0).prune())
    }

    /// Complement with respect to all byte strings.
    pub(crate) fn complement_all_bytes(&self) -> Dfa {
        let n = self.num_states();
        let mut out = RawBuilder::new();
        // old state s (including dead 0) -> new state s + 1
        for s in 0..n {
            out.add_state(!self.accept[s]);
        }
        for s in 0..n as u32 {
            for byte in 0..=255u8 {
                out.set(s + 1, byte, self.next(s, byte) + 1);
            }
        }
        out.finish(self.start + 1).prune()
    }

    /// Concatenation by subset construction.
    pub(crate) fn concat(a: &Dfa, b: &Dfa, max_states: usize) -> Result<Dfa, DfaError> {
        if a.is_empty_language() || b.is_empty_language() {
            return Ok(RawBuilder::new().finish(DEAD));
        }
        type Key = (u32, Vec<u32>);
        let close = |x: u32, mut set: BTreeSet<u32>| -> Key {
            if a.is_accept(x) {
                set.insert(b.start);
            }
            set.remove(&DEAD);
            (x, set.into_iter().collect())
        };
        let acc = |k: &Key| k.1.iter().any(|&y| b.is_accept(y));
        let mut out = RawBuilder::new();
        let mut ids: HashMap<Key, u32> = HashMap::new();
        let mut queue = VecDeque::new();
        let k0 = close(a.start, BTreeSet::new());
        let s0 = out.add_state(acc(&k0));
        ids.insert(k0.clone(), s0);
        queue.push_back(k0);
        while let Some(k) = queue.pop_front() {
            let from = ids[&k];
            for byte in 0..=255u8 {
                let nx = a.next(k.0, byte);
                let set: BTreeSet<u32> = k.1.iter().map(|&y| b.next(y, byte)).collect();
                let nk = close(nx, set);
                if nk.0 == DEAD && nk.1.is_empty() {
                    continue;
                }
                let to = match ids.get(&nk) {
                    Some(&id) => id,
                    None => {
                        if out.num_states() > max_states {
                            return Err(DfaError::TooManyStates);
                        }
                        let id = out.add_state(acc(&nk));
                        ids.insert(nk.clone(), id);
                        queue.push_back(nk);
                        id
                    }
                };
                out.set(from, byte, to);
            }
        }
        Ok(out.finish(s0).prune())
    }

    /// The same language without the empty string.
    pub(crate) fn without_empty(&self) -> Dfa {
        if !self.matches_empty() {
            return self.clone();
        }
        let n = self.num_states();
        // The builder starts with its own dead state 0, so states 1.. keep
        // their ids.
        let mut out = RawBuilder::new();
        for s in 1..n {
            out.add_state(self.accept[s]);
        }
        let new_start = out.add_state(false);
        for s in 1..n as u32 {
            for byte in 0..=255u8 {
                out.set(s, byte, self.next(s, byte));
            }
        }
        for byte in 0..=255u8 {
            out.set(new_start, byte, self.next(self.start, byte));
        }
        out.finish(new_start).prune()
    }

    /// Removes states that cannot reach acceptance or are unreachable, and
    /// recomputes byte classes.
    fn prune(self) -> Dfa {
        let n = self.num_states();
        // reverse reachability from accepting states
        let mut rev: Vec<Vec<u32>> = vec![Vec::new(); n];
        for s in 0..n {
            for c in 0..self.nclasses {
                let t = self.trans[s * self.nclasses + c] as usize;
                rev[t].push(s as u32);
            }
        }
        let mut live = vec![false; n];
        let mut stack: Vec<u32> = (0..n as u32).filter(|&s| s != DEAD && self.accept[s as usize]).collect();
        for &s in &stack {
            live[s as usize] = true;
        }
        while let Some(s) = stack.pop() {
            for &p in &rev[s as usize] {
                if p != DEAD && !live[p as usize] {
                    live[p as usize] = true;
                    stack.push(p);
                }
            }
        }
        if !live[self.start as usize] || self.start == DEAD {
            return RawBuilder::new().finish(DEAD);
        }
        // forward reachability over live states, renumbering
        let mut map = vec![u32::MAX; n];
        let mut order = vec![self.start];
        map[self.start as usize] = 1;
        let mut i = 0;
        while i < order.len() {
            let s = order[i] as usize;
            i += 1;
            for c in 0..self.nclasses {
                let t = self.trans[s * self.nclasses + c] as usize;
                if live[t] && map[t] == u32::MAX {
                    map[t] = order.len() as u32 + 1;
                    order.push(t as u32);
                }
            }
        }
        let mut out = RawBuilder::new();
        for &s in &order {
            out.add_state(self.accept[s as usize]);
        }
        for &s in &order {
            for byte in 0..=255u8 {
                let t = self.next(s, byte) as usize;
                if live[t] {
                    out.set(map[s as usize], byte, map[t]);
                }
            }
        }
        out.finish(1)
    }
}

/// Builds a DFA with 256-wide rows, then compresses it into byte classes.
struct RawBuilder {
    rows: Vec<[u32; 256]>,
    accept: Vec<bool>,
}

impl RawBuilder {
    fn new() -> Self {
        RawBuilder { rows: vec![[DEAD; 256]], accept: vec![false] }
    }
    fn num_states(&self) -> usize {
        self.accept.len()
    }
    fn add_state(&mut self, accept: bool) -> u32 {
        self.rows.push([DEAD; 256]);
        self.accept.push(accept);
        (self.accept.len() - 1) as u32
    }
    fn set(&mut self, from: u32, byte: u8, to: u32) {
        self.rows[from as usize][byte as usize] = to;
    }
    fn finish(self, start: u32) -> Dfa {
        // byte classes: bytes with identical columns share a class
        let mut classes = [0u8; 256];
        let mut reps: Vec<u8> = Vec::new();
        let mut seen: HashMap<Vec<u32>, u8> = HashMap::new();
        for b in 0..256usize {
            let col: Vec<u32> = self.rows.iter().map(|r| r[b]).collect();
            let next = seen.len();
            let c = *seen.entry(col).or_insert_with(|| {
                reps.push(b as u8);
                // at most 256 distinct columns, so this fits in a u8
                next as u8
            });
            classes[b] = c;
        }
        let nclasses = reps.len();
        let mut trans = Vec::with_capacity(self.rows.len() * nclasses);
        for r in &self.rows {
            for &b in &reps {
                trans.push(r[b as usize]);
            }
        }
        Dfa { classes, nclasses, trans, accept: self.accept, start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Dfa {
        Dfa::from_regex(p, 10_000).unwrap()
    }

    #[test]
    fn regex_matches_whole_input() {
        let d = re("[0-9]+");
        assert!(d.matches(b"123"));
        assert!(!d.matches(b""));
        assert!(!d.matches(b"12a"));
        assert!(!d.is_prefix_free());
        assert!(re("\"[a-z]*\"").is_prefix_free());
    }

    #[test]
    fn intersection_and_complement() {
        let a = re("[a-z]+");
        let b = re(".{2,3}");
        let both = Dfa::product(&a, &b, true, 1000).unwrap();
        assert!(both.matches(b"ab"));
        assert!(!both.matches(b"a"));
        assert!(!both.matches(b"abcd"));
        let any = re("(?s:.*)");
        let not_ab = Dfa::product(&any, &re("ab").complement_all_bytes(), true, 1000).unwrap();
        assert!(not_ab.matches(b""));
        assert!(not_ab.matches(b"abc"));
        assert!(!not_ab.matches(b"ab"));
        assert!(!not_ab.matches(&[0xff]));
    }

    #[test]
    fn concat_and_empty_removal() {
        let d = Dfa::concat(&re("a*"), &re("ab"), 1000).unwrap();
        assert!(d.matches(b"aab"));
        assert!(d.matches(b"ab"));
        assert!(!d.matches(b"a"));
        let e = re("a*").without_empty();
        assert!(!e.matches(b""));
        assert!(e.matches(b"aaa"));
        let e = re("(ab)*").without_empty();
        assert!(!e.matches(b""));
        assert!(!e.matches(b"a"));
        assert!(e.matches(b"ab"));
        assert!(!e.matches(b"aba"));
        assert!(e.matches(b"abab"));
    }

    #[test]
    fn empty_language_is_dead() {
        let d = Dfa::product(&re("a"), &re("b"), true, 100).unwrap();
        assert!(d.is_empty_language());
        assert!(!d.matches(b"a"));
    }

    #[test]
    fn state_limit_is_an_error() {
        assert!(matches!(Dfa::from_regex("[a-z]{0,200}x[a-z]{30}", 50), Err(DfaError::TooManyStates)));
    }
}
