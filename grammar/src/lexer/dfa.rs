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

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use regex_syntax::hir::Hir;

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

    /// Length of the transition table (states times byte classes).
    pub(crate) fn table_len(&self) -> usize {
        self.trans.len()
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
        Dfa::literals(&[bytes])
    }

    /// A DFA matching exactly the given strings (a trie).
    pub(crate) fn literals(words: &[&[u8]]) -> Dfa {
        if words.is_empty() {
            return Dfa::nothing();
        }
        // classes: one per byte used, plus class 0 for every other byte
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        for w in words {
            for &b in *w {
                if classes[b as usize] == 0 && nclasses < 256 {
                    classes[b as usize] = nclasses as u8;
                    nclasses += 1;
                }
            }
        }
        if nclasses == 256 {
            // every byte used: give each byte its own class
            for (b, c) in classes.iter_mut().enumerate() {
                *c = b as u8;
            }
        }
        let mut out = Builder::new(classes, nclasses);
        let root = out.add_state(false);
        for w in words {
            let mut s = root;
            for &b in *w {
                let c = classes[b as usize] as usize;
                let t = out.get(s, c);
                s = if t == DEAD {
                    let n = out.add_state(false);
                    out.set(s, c, n);
                    n
                } else {
                    t
                };
            }
            out.accept[s as usize] = true;
        }
        out.finish(root)
    }

    /// Builds a DFA from a regex (regex-syntax syntax), matched whole.
    pub(crate) fn from_regex(pattern: &str, max_states: usize) -> Result<Dfa, DfaError> {
        let hir = parse_regex(pattern)?;
        Dfa::from_hir(&hir, max_states)
    }

    /// Builds a DFA from a parsed regex, matched whole.
    pub(crate) fn from_hir(hir: &Hir, max_states: usize) -> Result<Dfa, DfaError> {
        let size_limit = max_states.saturating_mul(256 * 8).max(1 << 20);
        let limit_err = |e: String| {
            if e.contains("exceeded") {
                DfaError::TooManyStates
            } else {
                DfaError::Regex(e)
            }
        };
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
            .build_from_hir(hir)
            .map_err(|e| limit_err(e.to_string()))?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(MatchKind::All)
                    .minimize(false)
                    .dfa_size_limit(Some(size_limit))
                    .determinize_size_limit(Some(size_limit)),
            )
            .build_from_nfa(&nfa)
            .map_err(|e| limit_err(e.to_string()))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| DfaError::Regex(e.to_string()))?;
        // Byte classes of regex-automata's DFA (its EOI class is not a byte).
        let bc = dfa.byte_classes();
        let mut classes = [0u8; 256];
        let mut reps: Vec<u8> = Vec::new();
        for b in 0..=255u8 {
            let c = bc.get(b);
            classes[b as usize] = c;
            if c as usize >= reps.len() {
                reps.resize(c as usize + 1, b);
            }
        }
        // BFS over the dense DFA's states, copying transitions per class.
        let mut out = Builder::new(classes, reps.len());
        let mut ids: FxMap<u32, u32> = FxMap::default();
        let mut queue = VecDeque::new();
        let accept_of = |s| dfa.is_match_state(dfa.next_eoi_state(s));
        let s0 = out.add_state(accept_of(start));
        ids.insert(start.as_u32(), s0);
        queue.push_back((start, s0));
        while let Some((s, from)) = queue.pop_front() {
            for (c, &byte) in reps.iter().enumerate() {
                let t = dfa.next_state(s, byte);
                if dfa.is_dead_state(t) || dfa.is_quit_state(t) {
                    continue;
                }
                let to = match ids.get(&t.as_u32()) {
                    Some(&id) => id,
                    None => {
                        if out.num_states() > max_states {
                            return Err(DfaError::TooManyStates);
                        }
                        let id = out.add_state(accept_of(t));
                        ids.insert(t.as_u32(), id);
                        queue.push_back((t, id));
                        id
                    }
                };
                out.set(from, c, to);
            }
        }
        Ok(out.finish(s0).prune())
    }

    /// Joint byte classes of two DFAs: `(classes, for each joint class its
    /// class in a and in b)`.
    fn joint_classes(a: &Dfa, b: &Dfa) -> ([u8; 256], Vec<(u32, u32)>) {
        let mut idx = vec![u16::MAX; a.nclasses * b.nclasses];
        let mut classes = [0u8; 256];
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (out, (&ca, &cb)) in classes.iter_mut().zip(a.classes.iter().zip(b.classes.iter())) {
            let (ca, cb) = (ca as usize, cb as usize);
            let k = ca * b.nclasses + cb;
            if idx[k] == u16::MAX {
                idx[k] = pairs.len() as u16;
                pairs.push((ca as u32, cb as u32));
            }
            *out = idx[k] as u8;
        }
        (classes, pairs)
    }

    /// Product of two DFAs: intersection when `and`, union otherwise.
    pub(crate) fn product(a: &Dfa, b: &Dfa, and: bool, max_states: usize) -> Result<Dfa, DfaError> {
        let (classes, pairs) = Dfa::joint_classes(a, b);
        let mut out = Builder::new(classes, pairs.len());
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
            return Ok(Dfa::nothing());
        }
        let (na, nb) = (a.num_states(), b.num_states());
        let mut dense_ids: Vec<u32> =
            if na.saturating_mul(nb) <= 1 << 20 { vec![u32::MAX; na * nb] } else { Vec::new() };
        let mut ids: FxMap<(u32, u32), u32> = FxMap::default();
        let mut queue = VecDeque::new();
        let s0 = out.add_state(acc(start.0, start.1));
        if dense_ids.is_empty() {
            ids.insert(start, s0);
        } else {
            dense_ids[start.0 as usize * nb + start.1 as usize] = s0;
        }
        queue.push_back((start.0, start.1, s0));
        while let Some((x, y, from)) = queue.pop_front() {
            for (c, &(ca, cb)) in pairs.iter().enumerate() {
                let nx = a.trans[x as usize * a.nclasses + ca as usize];
                let ny = b.trans[y as usize * b.nclasses + cb as usize];
                if dead(nx, ny) {
                    continue;
                }
                let known = if dense_ids.is_empty() {
                    ids.get(&(nx, ny)).copied()
                } else {
                    Some(dense_ids[nx as usize * nb + ny as usize]).filter(|&v| v != u32::MAX)
                };
                let to = match known {
                    Some(id) => id,
                    None => {
                        if out.num_states() > max_states {
                            return Err(DfaError::TooManyStates);
                        }
                        let id = out.add_state(acc(nx, ny));
                        if dense_ids.is_empty() {
                            ids.insert((nx, ny), id);
                        } else {
                            dense_ids[nx as usize * nb + ny as usize] = id;
                        }
                        queue.push_back((nx, ny, id));
                        id
                    }
                };
                out.set(from, c, to);
            }
        }
        Ok(out.finish(s0).prune())
    }

    /// Whether no string is in both languages (a product search that stops
    /// at the first common string; `None` past `max_states` pairs).
    pub(crate) fn intersection_is_empty(a: &Dfa, b: &Dfa, max_states: usize) -> Option<bool> {
        if a.start == DEAD || b.start == DEAD {
            return Some(true);
        }
        let (_, pairs) = Dfa::joint_classes(a, b);
        let mut seen: FxMap<(u32, u32), ()> = FxMap::default();
        let mut stack = vec![(a.start, b.start)];
        seen.insert((a.start, b.start), ());
        while let Some((x, y)) = stack.pop() {
            if a.is_accept(x) && b.is_accept(y) {
                return Some(false);
            }
            for &(ca, cb) in &pairs {
                let nx = a.trans[x as usize * a.nclasses + ca as usize];
                let ny = b.trans[y as usize * b.nclasses + cb as usize];
                if nx == DEAD || ny == DEAD || seen.insert((nx, ny), ()).is_some() {
                    continue;
                }
                if seen.len() > max_states {
                    return None;
                }
                stack.push((nx, ny));
            }
        }
        Some(true)
    }

    /// The empty language.
    fn nothing() -> Dfa {
        Builder::new([0; 256], 1).finish(DEAD)
    }

    /// Complement with respect to all byte strings.
    pub(crate) fn complement_all_bytes(&self) -> Dfa {
        let n = self.num_states();
        let k = self.nclasses;
        let mut out = Builder::new(self.classes, k);
        // old state s (including dead 0) -> new state s + 1
        for s in 0..n {
            out.add_state(!self.accept[s]);
        }
        for s in 0..n {
            for c in 0..k {
                out.set(s as u32 + 1, c, self.trans[s * k + c] + 1);
            }
        }
        out.finish(self.start + 1).prune()
    }

    /// Concatenation by subset construction.
    pub(crate) fn concat(a: &Dfa, b: &Dfa, max_states: usize) -> Result<Dfa, DfaError> {
        if a.is_empty_language() || b.is_empty_language() {
            return Ok(Dfa::nothing());
        }
        type Key = (u32, Vec<u32>);
        let close = |x: u32, mut set: Vec<u32>| -> Key {
            if a.is_accept(x) {
                set.push(b.start);
            }
            set.retain(|&y| y != DEAD);
            set.sort_unstable();
            set.dedup();
            (x, set)
        };
        let acc = |k: &Key| k.1.iter().any(|&y| b.is_accept(y));
        let (classes, pairs) = Dfa::joint_classes(a, b);
        let mut out = Builder::new(classes, pairs.len());
        let mut ids: FxMap<Key, u32> = FxMap::default();
        let mut queue = VecDeque::new();
        let k0 = close(a.start, Vec::new());
        let s0 = out.add_state(acc(&k0));
        ids.insert(k0.clone(), s0);
        queue.push_back((k0, s0));
        while let Some((k, from)) = queue.pop_front() {
            for (c, &(ca, cb)) in pairs.iter().enumerate() {
                let nx = a.trans[k.0 as usize * a.nclasses + ca as usize];
                let set: Vec<u32> = k.1.iter().map(|&y| b.trans[y as usize * b.nclasses + cb as usize]).collect();
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
                        queue.push_back((nk, id));
                        id
                    }
                };
                out.set(from, c, to);
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
        let k = self.nclasses;
        // The builder starts with its own dead state 0, so states 1.. keep
        // their ids.
        let mut out = Builder::new(self.classes, k);
        for s in 1..n {
            out.add_state(self.accept[s]);
        }
        let new_start = out.add_state(false);
        for s in 1..n {
            for c in 0..k {
                out.set(s as u32, c, self.trans[s * k + c]);
            }
        }
        for c in 0..k {
            out.set(new_start, c, self.trans[self.start as usize * k + c]);
        }
        out.finish(new_start).prune()
    }

    /// Removes states that cannot reach acceptance or are unreachable, and
    /// merges byte classes that became identical.
    fn prune(self) -> Dfa {
        let n = self.num_states();
        let k = self.nclasses;
        // reverse reachability from accepting states (CSR adjacency)
        let mut deg = vec![0u32; n + 1];
        for &t in &self.trans {
            deg[t as usize + 1] += 1;
        }
        for i in 0..n {
            deg[i + 1] += deg[i];
        }
        let mut fill = deg.clone();
        let mut rev = vec![0u32; self.trans.len()];
        for (i, &t) in self.trans.iter().enumerate() {
            rev[fill[t as usize] as usize] = (i / k) as u32;
            fill[t as usize] += 1;
        }
        let mut live = vec![false; n];
        let mut stack: Vec<u32> = (0..n as u32).filter(|&s| s != DEAD && self.accept[s as usize]).collect();
        for &s in &stack {
            live[s as usize] = true;
        }
        while let Some(s) = stack.pop() {
            for &p in &rev[deg[s as usize] as usize..deg[s as usize + 1] as usize] {
                if p != DEAD && !live[p as usize] {
                    live[p as usize] = true;
                    stack.push(p);
                }
            }
        }
        if !live[self.start as usize] || self.start == DEAD {
            return Dfa::nothing();
        }
        // forward reachability over live states, renumbering
        let mut map = vec![u32::MAX; n];
        let mut order = vec![self.start];
        map[self.start as usize] = 1;
        let mut i = 0;
        while i < order.len() {
            let s = order[i] as usize;
            i += 1;
            for c in 0..k {
                let t = self.trans[s * k + c] as usize;
                if live[t] && map[t] == u32::MAX {
                    map[t] = order.len() as u32 + 1;
                    order.push(t as u32);
                }
            }
        }
        let mut out = Builder::new(self.classes, k);
        for &s in &order {
            out.add_state(self.accept[s as usize]);
        }
        for &s in &order {
            for c in 0..k {
                let t = self.trans[s as usize * k + c] as usize;
                if live[t] {
                    out.set(map[s as usize], c, map[t]);
                }
            }
        }
        out.finish(1)
    }
}

/// Parses a regex as the lexer reads it: Unicode, matching valid UTF-8 only.
pub(crate) fn parse_regex(pattern: &str) -> Result<Hir, DfaError> {
    regex_syntax::ParserBuilder::new()
        .utf8(true)
        .unicode(true)
        .nest_limit(200)
        .build()
        .parse(pattern)
        .map_err(|e| DfaError::Regex(e.to_string()))
}

/// `HashMap` with the Fx hash (multiply-rotate; keys here are small
/// integers and state vectors built by this module, not adversarial input).
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The Fx hash function (as in rustc): fast, not DoS-resistant.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds a DFA over given byte classes, then merges classes whose columns
/// are identical.
struct Builder {
    classes: [u8; 256],
    nclasses: usize,
    trans: Vec<u32>,
    accept: Vec<bool>,
}

impl Builder {
    fn new(classes: [u8; 256], nclasses: usize) -> Self {
        Builder { classes, nclasses, trans: vec![DEAD; nclasses], accept: vec![false] }
    }
    fn num_states(&self) -> usize {
        self.accept.len()
    }
    fn add_state(&mut self, accept: bool) -> u32 {
        self.trans.extend(std::iter::repeat_n(DEAD, self.nclasses));
        self.accept.push(accept);
        (self.accept.len() - 1) as u32
    }
    #[inline]
    fn set(&mut self, from: u32, class: usize, to: u32) {
        self.trans[from as usize * self.nclasses + class] = to;
    }
    #[inline]
    fn get(&self, from: u32, class: usize) -> u32 {
        self.trans[from as usize * self.nclasses + class]
    }
    fn finish(self, start: u32) -> Dfa {
        let k = self.nclasses;
        let n = self.accept.len();
        // merge classes with identical columns
        let mut seen: FxMap<Vec<u32>, u8> = FxMap::default();
        let mut remap = vec![0u8; k];
        let mut keep: Vec<usize> = Vec::new();
        let mut col = Vec::with_capacity(n);
        let mut used = vec![false; k];
        for &c in &self.classes {
            used[c as usize] = true;
        }
        for c in 0..k {
            if !used[c] {
                continue;
            }
            col.clear();
            col.extend((0..n).map(|s| self.trans[s * k + c]));
            let next = keep.len();
            let id = *seen.entry(col.clone()).or_insert_with(|| {
                keep.push(c);
                // at most 256 distinct columns, so this fits in a u8
                next as u8
            });
            remap[c] = id;
        }
        if keep.len() == k {
            return Dfa { classes: self.classes, nclasses: k, trans: self.trans, accept: self.accept, start };
        }
        let mut classes = [0u8; 256];
        for b in 0..256 {
            classes[b] = remap[self.classes[b] as usize];
        }
        let nk = keep.len();
        let mut trans = Vec::with_capacity(n * nk);
        for s in 0..n {
            for &c in &keep {
                trans.push(self.trans[s * k + c]);
            }
        }
        Dfa { classes, nclasses: nk, trans, accept: self.accept, start }
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
