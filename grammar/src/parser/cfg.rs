//! The context-free grammar in the flat form the Earley parser runs on.
//!
//! Every rule's right-hand side is laid out in one array of "dots": position
//! `rule_start[r] + i` holds the symbol after the dot when `i` symbols of rule
//! `r` have been recognised, and the position after the last symbol holds an
//! END marker naming the rule. An Earley item is then just `(dot, origin)`.

use std::collections::VecDeque;

/// Terminal symbol marker bit in a dot entry.
pub(crate) const TERM_BIT: u32 = 1 << 31;
/// END marker bit in a dot entry (low bits: rule index).
pub(crate) const END_BIT: u32 = 1 << 30;
const VALUE_MASK: u32 = END_BIT - 1;

/// A symbol on a right-hand side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Sym {
    Nt(u32),
    Term(u32),
}

/// What follows a dot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Nt(u32),
    Term(u32),
    End(u32),
}

#[inline]
pub(crate) fn decode(d: u32) -> Next {
    if d & TERM_BIT != 0 {
        Next::Term(d & !TERM_BIT)
    } else if d & END_BIT != 0 {
        Next::End(d & VALUE_MASK)
    } else {
        Next::Nt(d)
    }
}

/// The compiled CFG.
#[derive(Debug)]
pub(crate) struct Cfg {
    pub(crate) dots: Vec<u32>,
    pub(crate) rule_lhs: Vec<u32>,
    pub(crate) nullable: Vec<bool>,
    /// Per nonterminal: every dot predicted when it is expected (closure,
    /// including advancing over nullable symbols).
    pub(crate) predict: Vec<Box<[u32]>>,
    /// Per nonterminal: every nonterminal whose prediction the closure covers.
    pub(crate) predict_nts: Vec<Box<[u32]>>,
    pub(crate) start_dot: u32,
    pub(crate) accept_dot: u32,
    pub(crate) nt_names: Vec<String>,
}

impl Cfg {
    /// Builds the flat form. `rules` are `(lhs, rhs)` over nonterminals
    /// `0..nt_names.len()`; `start` is the start nonterminal. An augmented
    /// start rule is added. Rules must already be productive.
    pub(crate) fn new(nt_names: Vec<String>, rules: Vec<(u32, Vec<Sym>)>, start: u32) -> Cfg {
        let mut names = nt_names;
        let aug = names.len() as u32;
        names.push("<start>".to_string());
        let n = names.len();
        let mut all = rules;
        all.push((aug, vec![Sym::Nt(start)]));
        let mut dots = Vec::new();
        let mut rule_lhs = Vec::new();
        let mut rule_start = Vec::new();
        let mut by_nt: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (r, (lhs, rhs)) in all.iter().enumerate() {
            rule_start.push(dots.len() as u32);
            rule_lhs.push(*lhs);
            by_nt[*lhs as usize].push(dots.len() as u32);
            for s in rhs {
                dots.push(match *s {
                    Sym::Nt(x) => x,
                    Sym::Term(t) => TERM_BIT | t,
                });
            }
            dots.push(END_BIT | r as u32);
        }
        // nullable fixpoint
        let mut nullable = vec![false; n];
        loop {
            let mut changed = false;
            for (lhs, rhs) in &all {
                if !nullable[*lhs as usize] && rhs.iter().all(|s| matches!(s, Sym::Nt(x) if nullable[*x as usize])) {
                    nullable[*lhs as usize] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // prediction closures
        let mut predict = Vec::with_capacity(n);
        let mut predict_nts = Vec::with_capacity(n);
        let mut seen_dot = vec![u32::MAX; dots.len()];
        let mut seen_nt = vec![u32::MAX; n];
        for a in 0..n {
            let stamp = a as u32;
            let mut out = Vec::new();
            let mut nts = Vec::new();
            let mut queue = VecDeque::new();
            seen_nt[a] = stamp;
            nts.push(a as u32);
            for &d in &by_nt[a] {
                queue.push_back(d);
            }
            while let Some(d) = queue.pop_front() {
                if seen_dot[d as usize] == stamp {
                    continue;
                }
                seen_dot[d as usize] = stamp;
                out.push(d);
                if let Next::Nt(b) = decode(dots[d as usize]) {
                    if seen_nt[b as usize] != stamp {
                        seen_nt[b as usize] = stamp;
                        nts.push(b);
                        for &d2 in &by_nt[b as usize] {
                            queue.push_back(d2);
                        }
                    }
                    if nullable[b as usize] {
                        queue.push_back(d + 1);
                    }
                }
            }
            predict.push(out.into_boxed_slice());
            predict_nts.push(nts.into_boxed_slice());
        }
        let start_dot = rule_start[all.len() - 1];
        Cfg { dots, rule_lhs, nullable, predict, predict_nts, start_dot, accept_dot: start_dot + 1, nt_names: names }
    }

    pub(crate) fn num_nts(&self) -> usize {
        self.nt_names.len()
    }
}
