//! A reference recognizer for character-level grammars, independent of the
//! library: the IR is expanded into a byte-level BNF (literals into their
//! UTF-8 bytes, classes into UTF-8 byte-range sequences with regex-syntax's
//! `Utf8Sequences`, repetitions into rules) and run by a textbook Earley
//! recognizer with Aycock–Horspool handling of nullable rules.
//!
//! It has none of the library's machinery (no lexemes, no lexeme inference,
//! no maximal munch, no token trie), so it answers "is this byte string a
//! viable prefix / a sentence?" by definition. It only takes grammars without
//! declared lexemes (`Expr::Lexeme`), whose rules are all productive.
//!
//! It is slow (no indexing beyond a hash set per Earley set): for test
//! sentences of a few hundred bytes only.

use std::collections::HashSet;

use formwork_grammar::ir::{Expr, Grammar};
use regex_syntax::utf8::Utf8Sequences;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Sym {
    Nt(u32),
    /// Inclusive byte range.
    Bytes(u8, u8),
}

/// A grammar expanded to byte-level BNF.
#[derive(Debug)]
pub struct Reference {
    /// `(lhs, rhs)`.
    rules: Vec<(u32, Vec<Sym>)>,
    /// Rules of each nonterminal.
    by_lhs: Vec<Vec<u32>>,
    nullable: Vec<bool>,
    start: u32,
}

/// An Earley item: rule, dot position, origin set.
type Item = (u32, u32, u32);

/// The recognizer's state after some bytes.
#[derive(Clone, Debug)]
pub struct RefState {
    sets: Vec<Vec<Item>>,
}

impl Reference {
    /// Expands `g`. Panics on declared lexemes.
    pub fn new(g: &Grammar) -> Reference {
        let mut b = Builder { rules: Vec::new(), num_nts: g.rules().len() as u32 };
        for (i, r) in g.rules().iter().enumerate() {
            for alt in b.alts(&r.body) {
                b.rules.push((i as u32, alt));
            }
        }
        let start = b.num_nts;
        b.num_nts += 1;
        b.rules.push((start, vec![Sym::Nt(g.start().0)]));
        let mut by_lhs = vec![Vec::new(); b.num_nts as usize];
        for (i, (lhs, _)) in b.rules.iter().enumerate() {
            by_lhs[*lhs as usize].push(i as u32);
        }
        let mut nullable = vec![false; b.num_nts as usize];
        loop {
            let mut changed = false;
            for (lhs, rhs) in &b.rules {
                if !nullable[*lhs as usize] && rhs.iter().all(|s| matches!(s, Sym::Nt(n) if nullable[*n as usize])) {
                    nullable[*lhs as usize] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Reference { rules: b.rules, by_lhs, nullable, start }
    }

    /// The state before any byte.
    pub fn start(&self) -> RefState {
        let mut set = Vec::new();
        let mut seen = HashSet::new();
        for &r in &self.by_lhs[self.start as usize] {
            push(&mut set, &mut seen, (r, 0, 0));
        }
        self.close(&mut set, &mut seen, &[], 0);
        RefState { sets: vec![set] }
    }

    /// Feeds one byte; false (state unchanged) if no sentence continues so.
    pub fn step(&self, st: &mut RefState, b: u8) -> bool {
        let k = st.sets.len() as u32;
        let mut next = Vec::new();
        let mut seen = HashSet::new();
        for &(r, d, o) in st.sets.last().expect("at least one set") {
            if let Some(&Sym::Bytes(lo, hi)) = self.rules[r as usize].1.get(d as usize) {
                if lo <= b && b <= hi {
                    push(&mut next, &mut seen, (r, d + 1, o));
                }
            }
        }
        if next.is_empty() {
            return false;
        }
        self.close(&mut next, &mut seen, &st.sets, k);
        st.sets.push(next);
        true
    }

    /// Whether the bytes fed so far form a sentence.
    pub fn accepts(&self, st: &RefState) -> bool {
        st.sets.last().expect("at least one set").iter().any(|&(r, d, o)| {
            o == 0 && self.rules[r as usize].0 == self.start && d as usize == self.rules[r as usize].1.len()
        })
    }

    /// The number of leading bytes of `s` that form a viable prefix.
    pub fn viable_len(&self, s: &[u8]) -> usize {
        let mut st = self.start();
        s.iter().take_while(|&&b| self.step(&mut st, b)).count()
    }

    /// Whether `s` is a sentence.
    pub fn is_sentence(&self, s: &[u8]) -> bool {
        let mut st = self.start();
        s.iter().all(|&b| self.step(&mut st, b)) && self.accepts(&st)
    }

    /// Predict/complete to a fixpoint in the set at position `k`.
    fn close(&self, set: &mut Vec<Item>, seen: &mut HashSet<Item>, earlier: &[Vec<Item>], k: u32) {
        let mut i = 0;
        while i < set.len() {
            let (r, d, o) = set[i];
            i += 1;
            let (lhs, rhs) = &self.rules[r as usize];
            match rhs.get(d as usize) {
                Some(&Sym::Nt(n)) => {
                    for &r2 in &self.by_lhs[n as usize] {
                        push(set, seen, (r2, 0, k));
                    }
                    if self.nullable[n as usize] {
                        push(set, seen, (r, d + 1, o));
                    }
                }
                Some(Sym::Bytes(..)) => {}
                None => {
                    // complete: advance the items of set `o` waiting for `lhs`
                    let waiting: Vec<Item> = if o == k { set.clone() } else { earlier[o as usize].clone() };
                    for (r2, d2, o2) in waiting {
                        if self.rules[r2 as usize].1.get(d2 as usize) == Some(&Sym::Nt(*lhs)) {
                            push(set, seen, (r2, d2 + 1, o2));
                        }
                    }
                }
            }
        }
    }
}

fn push(set: &mut Vec<Item>, seen: &mut HashSet<Item>, it: Item) {
    if seen.insert(it) {
        set.push(it);
    }
}

struct Builder {
    rules: Vec<(u32, Vec<Sym>)>,
    num_nts: u32,
}

impl Builder {
    fn fresh(&mut self, alts: Vec<Vec<Sym>>) -> Sym {
        let n = self.num_nts;
        self.num_nts += 1;
        for a in alts {
            self.rules.push((n, a));
        }
        Sym::Nt(n)
    }

    fn alts(&mut self, e: &Expr) -> Vec<Vec<Sym>> {
        match e {
            Expr::Alt(v) => v.iter().flat_map(|x| self.alts(x)).collect(),
            Expr::Nothing => vec![],
            _ => {
                let mut seq = Vec::new();
                self.seq_into(e, &mut seq);
                vec![seq]
            }
        }
    }

    fn seq_into(&mut self, e: &Expr, out: &mut Vec<Sym>) {
        match e {
            Expr::Empty => {}
            Expr::Nothing => out.push(self.fresh(vec![])),
            Expr::Literal(s) => out.extend(s.bytes().map(|b| Sym::Bytes(b, b))),
            Expr::Class { ranges, negated } => out.push(self.class(ranges, *negated)),
            Expr::Lexeme(_) => panic!("the reference recognizer takes character-level grammars only"),
            Expr::Ref(r) => out.push(Sym::Nt(r.0)),
            Expr::Seq(v) => v.iter().for_each(|x| self.seq_into(x, out)),
            Expr::Alt(_) => {
                let alts = self.alts(e);
                out.push(self.fresh(alts));
            }
            Expr::Repeat { expr, min, max } => {
                let alts = self.alts(expr);
                let x = self.fresh(alts);
                out.extend(std::iter::repeat_n(x, *min as usize));
                match max {
                    None => {
                        let star = Sym::Nt(self.num_nts);
                        self.fresh(vec![vec![], vec![x, star]]);
                        out.push(star);
                    }
                    Some(m) if *m < *min => out.push(self.fresh(vec![])),
                    Some(m) => {
                        for _ in *min..*m {
                            out.push(self.fresh(vec![vec![], vec![x]]));
                        }
                    }
                }
            }
        }
    }

    /// One character of the class, as alternatives of UTF-8 byte sequences.
    fn class(&mut self, ranges: &[(char, char)], negated: bool) -> Sym {
        let mut rs: Vec<(u32, u32)> =
            ranges.iter().map(|&(a, b)| if a <= b { (a as u32, b as u32) } else { (b as u32, a as u32) }).collect();
        rs.sort();
        if negated {
            let mut comp = Vec::new();
            let mut next = 0u32;
            for (a, b) in rs {
                if a > next {
                    comp.push((next, a - 1));
                }
                next = next.max(b + 1);
            }
            if next <= 0x10FFFF {
                comp.push((next, 0x10FFFF));
            }
            rs = comp;
        }
        let mut alts = Vec::new();
        for (a, b) in rs {
            // split around the surrogate gap, which chars cannot hold
            let mut parts = Vec::new();
            if a < 0xD800 {
                parts.push((a, b.min(0xD7FF)));
            }
            if b > 0xDFFF {
                parts.push((a.max(0xE000), b));
            }
            for (lo, hi) in parts {
                let (lo, hi) = (char::from_u32(lo).expect("scalar"), char::from_u32(hi).expect("scalar"));
                for seq in Utf8Sequences::new(lo, hi) {
                    alts.push(seq.as_slice().iter().map(|r| Sym::Bytes(r.start, r.end)).collect());
                }
            }
        }
        self.fresh(alts)
    }
}
