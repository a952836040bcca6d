//! Lowering the IR to the parser's CFG and the lexer's terminals.
//!
//! Where it sits: `ir::Grammar -> lower() -> (Cfg, Terminals) -> CompiledGrammar`.
//!
//! Besides flattening repetitions and alternations into BNF rules, this pass
//! does **lexeme inference** for character-level parts (GBNF): a literal of
//! several characters, or a whole non-recursive rule, becomes one terminal
//! when that provably cannot change the language:
//!
//! 1. the lexer never has to choose between ending it and going on: its
//!    language is prefix-free, or wherever a word of it could be extended,
//!    the extending byte cannot follow the rule in the grammar (FOLLOW set),
//!    so maximal munch takes the only possible parse; and
//! 2. no other terminal alive after the same bytes forces a guess: whenever
//!    one of two such terminals accepts, the bytes that continue the other
//!    cannot follow the first in the grammar.
//!
//! Under these conditions maximal munch always takes the only parse there is,
//! so the grammar keeps its exact character-level meaning. Single-character
//! terminals alive together end after the same bytes and never conflict.
//! Candidates that fail are split back into their parts until nothing
//! conflicts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::ir::{Expr, Grammar, LexemeId, LexemeSpec, RuleId};
use crate::lexer::dfa::FxMap;
use crate::lexer::dfa::{Dfa, DfaError, DEAD};
use crate::lexer::spec::{class_regex, compile_spec_cached, SpecCache};
use crate::lexer::Terminals;
use crate::parser::cfg::{Cfg, Sym};
use crate::Limits;

/// Maximum regex text size for a collapsed rule.
const MAX_COLLAPSE_REGEX: usize = 20_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TermKey {
    Declared(u32),
    Class(Vec<(char, char)>, bool),
    Literal(String),
    Rule(u32),
}

pub(crate) struct Lowered {
    pub(crate) cfg: Cfg,
    pub(crate) terminals: Terminals,
}

struct Lowerer<'a> {
    g: &'a Grammar,
    limits: &'a Limits,
    regular: Vec<bool>,
    rule_regex: HashMap<u32, Option<String>>,
    greedy_safe: HashMap<u32, bool>,
    follow: Option<Follows>,
    /// While computing the FOLLOW of runs of this rule: treat it as empty.
    skip_rule: Option<u32>,
    dfas: HashMap<TermKey, Option<Dfa>>,
    spec_cache: SpecCache,
    /// FIRST (bytes) of leaves, by expression address (the grammar is borrowed
    /// for the whole lowering, so addresses are stable).
    leaf_first: FxMap<usize, (ByteSet, bool)>,
    /// While rule FIRST sets are fixed (FOLLOW propagation): FIRST of any
    /// expression, by address.
    fixed_first: Option<FxMap<usize, (ByteSet, bool)>>,
    /// The same over terminals (co-occurrence).
    fixed_first_t: Option<FxMap<usize, (TSet, bool)>>,
    /// Rules whose FOLLOW grew during one propagation step (worklists).
    dirty: Vec<u32>,
    /// For each rule, the rules whose bodies refer to it.
    users: Option<Arc<Vec<Vec<u32>>>>,
    blocked: HashSet<TermKey>,
    // emission
    nt_names: Vec<String>,
    nt_of_rule: HashMap<u32, u32>,
    rules_out: Vec<(u32, Vec<Sym>)>,
    term_ids: HashMap<TermKey, Sym>,
    term_dfas: Vec<Dfa>,
    term_names: Vec<String>,
    pending: Vec<u32>,
    nothing_nt: Option<u32>,
    size: usize,
}

pub(crate) fn lower(g: &Grammar, limits: &Limits) -> Result<Lowered, Error> {
    let mut l = Lowerer {
        g,
        limits,
        regular: regular_rules(g),
        rule_regex: HashMap::new(),
        greedy_safe: HashMap::new(),
        follow: None,
        skip_rule: None,
        dfas: HashMap::new(),
        spec_cache: SpecCache::default(),
        leaf_first: FxMap::default(),
        fixed_first: None,
        fixed_first_t: None,
        dirty: Vec::new(),
        users: None,
        blocked: HashSet::new(),
        nt_names: Vec::new(),
        nt_of_rule: HashMap::new(),
        rules_out: Vec::new(),
        term_ids: HashMap::new(),
        term_dfas: Vec::new(),
        term_names: Vec::new(),
        pending: Vec::new(),
        nothing_nt: None,
        size: 0,
    };
    l.infer_lexemes()?;
    // The start rule is always a nonterminal (possibly wrapping one terminal).
    let start = l.nt_names.len() as u32;
    l.nt_names.push(g.rule(g.start).name.clone());
    let start_sym = l.ref_sym(g.start.0, 0)?;
    l.rules_out.push((start, vec![start_sym]));
    while let Some(r) = l.pending.pop() {
        let nt = l.nt_of_rule[&r];
        let alts = l.lower_alts(&g.rules[r as usize].body, 0)?;
        for a in alts {
            l.rules_out.push((nt, a));
        }
    }
    let rules = prune_unproductive(l.nt_names.len(), l.rules_out, start)?;
    let cfg = Cfg::new(l.nt_names, rules, start);
    Ok(Lowered { cfg, terminals: Terminals { dfas: l.term_dfas, names: l.term_names } })
}

/// Rules that are not recursive and use only character-level leaves.
fn regular_rules(g: &Grammar) -> Vec<bool> {
    let n = g.rules.len();
    let mut deps: Vec<HashSet<u32>> = vec![HashSet::new(); n];
    let mut has_lexeme = vec![false; n];
    for (i, r) in g.rules.iter().enumerate() {
        let mut stack = vec![&r.body];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Lexeme(_) => has_lexeme[i] = true,
                Expr::Ref(x) => {
                    deps[i].insert(x.0);
                }
                Expr::Seq(v) | Expr::Alt(v) => stack.extend(v.iter()),
                Expr::Repeat { expr, .. } => stack.push(expr),
                Expr::Empty | Expr::Nothing | Expr::Literal(_) | Expr::Class { .. } => {}
            }
        }
    }
    let mut users: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut pending: Vec<usize> = vec![0; n];
    for (i, d) in deps.iter().enumerate() {
        pending[i] = d.len();
        for &x in d {
            users[x as usize].push(i as u32);
        }
    }
    let mut regular = vec![false; n];
    let mut queue: Vec<u32> = (0..n as u32).filter(|&i| pending[i as usize] == 0 && !has_lexeme[i as usize]).collect();
    while let Some(r) = queue.pop() {
        regular[r as usize] = true;
        for &u in &users[r as usize] {
            pending[u as usize] -= 1;
            if pending[u as usize] == 0 && !has_lexeme[u as usize] {
                queue.push(u);
            }
        }
    }
    regular
}

impl Lowerer<'_> {
    fn nesting_check(&self, depth: usize) -> Result<(), Error> {
        let max = self.limits.max_nesting.saturating_mul(4).max(64);
        if depth > max {
            return Err(Error::limit("max_nesting", self.limits.max_nesting, "lowering nested grammar expressions"));
        }
        Ok(())
    }

    /// Decides which candidates become single terminals (fixpoint).
    ///
    /// Two terminals alive after the same bytes conflict when one accepts
    /// while the other can go on with a byte that may follow the first: then
    /// the lexer would have to guess. A candidate involved in such a conflict
    /// is split back into its parts, until no conflict is left.
    fn infer_lexemes(&mut self) -> Result<(), Error> {
        loop {
            let mut keys: Vec<TermKey> = Vec::new();
            let mut seen_keys = HashSet::new();
            let mut visited = HashSet::new();
            self.collect_terms_ref(self.g.start.0, &mut keys, &mut seen_keys, &mut visited, 0)?;
            if !keys.iter().any(is_candidate) {
                return Ok(());
            }
            self.ensure_follow()?;
            self.leaf_follows(&visited)?;
            let mut dfas = Vec::with_capacity(keys.len());
            for k in &keys {
                dfas.push(self.dfa_for(k)?.cloned());
            }
            let follows: Vec<ByteSet> = keys.iter().map(|k| self.key_follow(k)).collect();
            let firsts: Vec<ByteSet> = dfas
                .iter()
                .map(|d| d.as_ref().map(|d| ByteSet::from_bools(&d.first_bytes())).unwrap_or_default())
                .collect();
            let together = self.cooccurrence(&keys)?;
            let mut new_blocks = Vec::new();
            for a in 0..keys.len() {
                for b in 0..keys.len() {
                    if a == b
                        || !(is_candidate(&keys[a]) || is_candidate(&keys[b]))
                        || !firsts[a].intersects(&firsts[b])
                        || !together[a].contains(b)
                    {
                        continue;
                    }
                    let (Some(da), Some(db)) = (&dfas[a], &dfas[b]) else { continue };
                    if pair_conflict(da, db, &follows[a]) {
                        let victim = if is_candidate(&keys[b]) { b } else { a };
                        new_blocks.push(keys[victim].clone());
                    }
                }
            }
            if new_blocks.is_empty() {
                return Ok(());
            }
            self.blocked.extend(new_blocks);
        }
    }

    /// For each terminal, the terminals the parser may allow at the same
    /// position (so the lexer may run them together): those in the same
    /// FOLLOW set of some terminal, or in FIRST of the start rule.
    fn cooccurrence(&mut self, keys: &[TermKey]) -> Result<Vec<TSet>, Error> {
        let index: HashMap<TermKey, usize> = keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
        let n = keys.len();
        let g = self.g;
        let nr = g.rules.len();
        let mut first = vec![TSet::new(n); nr];
        let mut null = vec![false; nr];
        let users = self.users();
        let mut work = Worklist::new(nr);
        while let Some(r) = work.pop() {
            let (f, nl) = self.first_t(&g.rules[r].body, &first, &null, &index, n, 0)?;
            let before = first[r].clone();
            first[r].union(&f);
            if first[r] != before || (nl && !null[r]) {
                null[r] |= nl;
                work.extend(&users[r]);
            }
        }
        let mut follow_rule = vec![TSet::new(n); nr];
        let mut follow_key = vec![TSet::new(n); n];
        // FIRST sets are fixed from here on: memoize FIRST of subexpressions.
        self.fixed_first_t = Some(FxMap::default());
        let mut work = Worklist::new(nr);
        let res = (|| {
            while let Some(r) = work.pop() {
                if self.collapsible_rule(r as u32)? {
                    continue;
                }
                let after = follow_rule[r].clone();
                self.dirty.clear();
                self.follow_t(&g.rules[r].body, &after, &first, &null, &index, &mut follow_rule, &mut follow_key, 0)?;
                work.extend(&self.dirty);
            }
            Ok(())
        })();
        self.fixed_first_t = None;
        res?;
        let mut together = vec![TSet::new(n); n];
        let (start_first, _) = self.first_t(&Expr::Ref(g.start), &first, &null, &index, n, 0)?;
        for set in follow_key.iter().chain(std::iter::once(&start_first)) {
            for a in set.iter() {
                together[a].union(set);
            }
        }
        Ok(together)
    }

    /// The terminal a leaf or collapsed rule stands for, with nullability.
    fn leaf_key(&mut self, e: &Expr) -> Result<Option<(TermKey, bool)>, Error> {
        Ok(match e {
            Expr::Literal(s) => {
                let Some(c) = s.chars().next() else { return Ok(None) };
                if self.collapsible_literal(s) {
                    Some((TermKey::Literal(s.clone()), false))
                } else {
                    Some((TermKey::Class(vec![(c, c)], false), false))
                }
            }
            Expr::Class { ranges, negated } => Some((TermKey::Class(ranges.clone(), *negated), false)),
            Expr::Lexeme(id) => {
                let k = TermKey::Declared(id.0);
                let nullable = self.dfa_for(&k)?.is_some_and(|d| d.matches_empty());
                Some((k, nullable))
            }
            Expr::Ref(r) if self.collapsible_rule(r.0)? => {
                let k = TermKey::Rule(r.0);
                let nullable = self.dfa_for(&k)?.is_some_and(|d| d.matches_empty());
                Some((k, nullable))
            }
            _ => None,
        })
    }

    /// FIRST over terminals (indices into the current terminal list).
    fn first_t(
        &mut self,
        e: &Expr,
        first: &[TSet],
        null: &[bool],
        index: &HashMap<TermKey, usize>,
        n: usize,
        depth: usize,
    ) -> Result<(TSet, bool), Error> {
        let key = e as *const Expr as usize;
        if let Some(r) = self.fixed_first_t.as_ref().and_then(|m| m.get(&key)) {
            return Ok(r.clone());
        }
        let r = self.first_t_uncached(e, first, null, index, n, depth)?;
        if let Some(m) = self.fixed_first_t.as_mut() {
            m.insert(key, r.clone());
        }
        Ok(r)
    }

    fn first_t_uncached(
        &mut self,
        e: &Expr,
        first: &[TSet],
        null: &[bool],
        index: &HashMap<TermKey, usize>,
        n: usize,
        depth: usize,
    ) -> Result<(TSet, bool), Error> {
        self.nesting_check(depth)?;
        if let Some((k, nullable)) = self.leaf_key(e)? {
            let mut t = TSet::new(n);
            if let Some(&i) = index.get(&k) {
                t.insert(i);
            }
            return Ok((t, nullable));
        }
        Ok(match e {
            Expr::Empty => (TSet::new(n), true),
            Expr::Literal(_) => (TSet::new(n), true),
            Expr::Ref(r) => (first[r.0 as usize].clone(), null[r.0 as usize]),
            Expr::Seq(v) => {
                let mut f = TSet::new(n);
                for x in v {
                    let (fx, nx) = self.first_t(x, first, null, index, n, depth + 1)?;
                    f.union(&fx);
                    if !nx {
                        return Ok((f, false));
                    }
                }
                (f, true)
            }
            Expr::Alt(v) => {
                let mut f = TSet::new(n);
                let mut nl = false;
                for x in v {
                    let (fx, nx) = self.first_t(x, first, null, index, n, depth + 1)?;
                    f.union(&fx);
                    nl |= nx;
                }
                (f, nl)
            }
            Expr::Repeat { expr, min, max } => {
                if *max == Some(0) {
                    (TSet::new(n), true)
                } else {
                    let (fx, nx) = self.first_t(expr, first, null, index, n, depth + 1)?;
                    (fx, *min == 0 || nx)
                }
            }
            Expr::Nothing | Expr::Class { .. } | Expr::Lexeme(_) => (TSet::new(n), false),
        })
    }

    /// FOLLOW over terminals: propagates `after` into `e`.
    #[allow(clippy::too_many_arguments)]
    fn follow_t(
        &mut self,
        e: &Expr,
        after: &TSet,
        first: &[TSet],
        null: &[bool],
        index: &HashMap<TermKey, usize>,
        follow_rule: &mut [TSet],
        follow_key: &mut [TSet],
        depth: usize,
    ) -> Result<bool, Error> {
        self.nesting_check(depth)?;
        let n = after.len();
        if let Expr::Literal(s) = e {
            if !self.collapsible_literal(s) {
                // split into characters: each is followed by the next one
                let chars: Vec<char> = s.chars().collect();
                for (i, &c) in chars.iter().enumerate() {
                    let Some(&k) = index.get(&TermKey::Class(vec![(c, c)], false)) else { continue };
                    match chars.get(i + 1) {
                        Some(&d) => {
                            if let Some(&kd) = index.get(&TermKey::Class(vec![(d, d)], false)) {
                                follow_key[k].insert(kd);
                            }
                        }
                        None => follow_key[k].union(after),
                    }
                }
                return Ok(false);
            }
        }
        if let Some((k, _)) = self.leaf_key(e)? {
            if let Some(&i) = index.get(&k) {
                follow_key[i].union(after);
            }
            return Ok(false);
        }
        let mut changed = false;
        match e {
            Expr::Ref(r) => {
                let before = follow_rule[r.0 as usize].clone();
                follow_rule[r.0 as usize].union(after);
                changed = follow_rule[r.0 as usize] != before;
                if changed {
                    self.dirty.push(r.0);
                }
            }
            Expr::Seq(v) => {
                let mut f = after.clone();
                for x in v.iter().rev() {
                    changed |= self.follow_t(x, &f, first, null, index, follow_rule, follow_key, depth + 1)?;
                    let (fx, nx) = self.first_t(x, first, null, index, n, depth + 1)?;
                    if !nx {
                        f = TSet::new(n);
                    }
                    f.union(&fx);
                }
            }
            Expr::Alt(v) => {
                for x in v {
                    changed |= self.follow_t(x, after, first, null, index, follow_rule, follow_key, depth + 1)?;
                }
            }
            Expr::Repeat { expr, max, .. } => {
                let mut f = after.clone();
                if max.is_none_or(|m| m > 1) {
                    let (fx, _) = self.first_t(expr, first, null, index, n, depth + 1)?;
                    f.union(&fx);
                }
                changed |= self.follow_t(expr, &f, first, null, index, follow_rule, follow_key, depth + 1)?;
            }
            _ => {}
        }
        Ok(changed)
    }

    /// Recomputes what may follow each character-level leaf, counting only
    /// occurrences in rules that stay rules (`visited`): inside a collapsed
    /// rule a leaf is no terminal.
    fn leaf_follows(&mut self, visited: &HashSet<u32>) -> Result<(), Error> {
        let Some(mut f) = self.follow.take() else { return Ok(()) };
        f.literal.clear();
        f.literal_chars.clear();
        f.class.clear();
        f.declared.clear();
        let (first, null) = (std::mem::take(&mut f.first), std::mem::take(&mut f.null));
        let g = self.g;
        let mut rules: Vec<u32> = visited.iter().copied().collect();
        rules.sort_unstable();
        let mut res = Ok(false);
        self.fixed_first = Some(FxMap::default());
        for r in rules {
            let after = f.rule[r as usize];
            res = self.follow_in(&g.rules[r as usize].body, after, &first, &null, &mut f, 0);
            if res.is_err() {
                break;
            }
        }
        self.fixed_first = None;
        f.first = first;
        f.null = null;
        self.follow = Some(f);
        res.map(|_| ())
    }

    fn ensure_follow(&mut self) -> Result<(), Error> {
        if self.follow.is_none() {
            self.follow = Some(self.compute_follow()?);
        }
        Ok(())
    }

    /// The bytes that may follow a terminal (union over its occurrences).
    fn key_follow(&self, k: &TermKey) -> ByteSet {
        let Some(f) = self.follow.as_ref() else { return ByteSet::default() };
        match k {
            TermKey::Rule(r) => f.rule[*r as usize],
            TermKey::Literal(s) => f.literal.get(s).copied().unwrap_or_default(),
            TermKey::Declared(id) => f.declared.get(id).copied().unwrap_or_default(),
            TermKey::Class(ranges, negated) => {
                let mut out = f.class.get(&(ranges.clone(), *negated)).copied().unwrap_or_default();
                // characters of literals that are split into characters
                if let ([(c, d)], false) = (ranges.as_slice(), *negated) {
                    if c == d {
                        for (lit, per_char) in &f.literal_chars {
                            if self.collapsible_literal(lit) {
                                continue;
                            }
                            for (ch, set) in lit.chars().zip(per_char) {
                                if ch == *c {
                                    out.union(set);
                                }
                            }
                        }
                    }
                }
                out
            }
        }
    }

    fn collapsible_rule(&mut self, r: u32) -> Result<bool, Error> {
        if !self.regular[r as usize] || self.blocked.contains(&TermKey::Rule(r)) {
            return Ok(false);
        }
        if let Some(&ok) = self.greedy_safe.get(&r) {
            return Ok(ok);
        }
        let ok = self.is_greedy_safe(r)?;
        self.greedy_safe.insert(r, ok);
        Ok(ok)
    }

    /// Whether rule `r`, as one maximal-munch terminal, means what it means
    /// character by character: wherever the terminal could end and also go
    /// on, the byte that goes on cannot follow the rule in the grammar.
    fn is_greedy_safe(&mut self, r: u32) -> Result<bool, Error> {
        let Some(d) = self.dfa_for(&TermKey::Rule(r))? else { return Ok(false) };
        if d.is_empty_language() {
            return Ok(false);
        }
        let d = d.without_empty();
        if d.is_prefix_free() {
            return Ok(true);
        }
        self.ensure_follow()?;
        let follow = self.follow.as_ref().expect("computed above").rule[r as usize];
        if extends_into(&d, &follow) {
            // Runs of a nullable rule closed under concatenation (`ws ws`)
            // can be lexed as one: the others derive the empty string. Then
            // only what follows the whole run matters.
            let full = self.dfa_for(&TermKey::Rule(r))?.cloned();
            let Some(full) = full else { return Ok(false) };
            if !full.matches_empty() || !closed_under_concat(&full, self.limits.max_lexeme_states) {
                return Ok(false);
            }
            self.skip_rule = Some(r);
            let run_follow = self.compute_follow();
            self.skip_rule = None;
            return Ok(!extends_into(&d, &run_follow?.rule[r as usize]));
        }
        Ok(true)
    }

    /// FIRST and nullability of an expression, given those of the rules.
    fn first_of(&mut self, e: &Expr, first: &[ByteSet], null: &[bool], depth: usize) -> Result<(ByteSet, bool), Error> {
        let key = e as *const Expr as usize;
        let leaf = matches!(e, Expr::Class { .. } | Expr::Lexeme(_));
        let memo = if leaf { Some(&self.leaf_first) } else { self.fixed_first.as_ref() };
        if let Some(&r) = memo.and_then(|m| m.get(&key)) {
            return Ok(r);
        }
        let r = self.first_of_uncached(e, first, null, depth)?;
        if leaf {
            self.leaf_first.insert(key, r);
        } else if let Some(m) = self.fixed_first.as_mut() {
            m.insert(key, r);
        }
        Ok(r)
    }

    fn first_of_uncached(
        &mut self,
        e: &Expr,
        first: &[ByteSet],
        null: &[bool],
        depth: usize,
    ) -> Result<(ByteSet, bool), Error> {
        self.nesting_check(depth)?;
        Ok(match e {
            Expr::Empty => (ByteSet::default(), true),
            Expr::Nothing => (ByteSet::default(), false),
            Expr::Literal(s) => match s.as_bytes().first() {
                Some(&b) => (ByteSet::single(b), false),
                None => (ByteSet::default(), true),
            },
            Expr::Class { ranges, negated } => {
                let k = TermKey::Class(ranges.clone(), *negated);
                (self.dfa_for(&k)?.map(|d| ByteSet::from_bools(&d.first_bytes())).unwrap_or_default(), false)
            }
            Expr::Lexeme(id) => match self.dfa_for(&TermKey::Declared(id.0))? {
                Some(d) => (ByteSet::from_bools(&d.first_bytes()), d.matches_empty()),
                None => (ByteSet::default(), false),
            },
            Expr::Ref(r) if self.skip_rule == Some(r.0) => (ByteSet::default(), true),
            Expr::Ref(r) => (first[r.0 as usize], null[r.0 as usize]),
            Expr::Seq(v) => {
                let mut f = ByteSet::default();
                for x in v {
                    let (fx, nx) = self.first_of(x, first, null, depth + 1)?;
                    f.union(&fx);
                    if !nx {
                        return Ok((f, false));
                    }
                }
                (f, true)
            }
            Expr::Alt(v) => {
                let mut f = ByteSet::default();
                let mut n = false;
                for x in v {
                    let (fx, nx) = self.first_of(x, first, null, depth + 1)?;
                    f.union(&fx);
                    n |= nx;
                }
                (f, n)
            }
            Expr::Repeat { expr, min, max } => {
                if *max == Some(0) {
                    (ByteSet::default(), true)
                } else {
                    let (fx, nx) = self.first_of(expr, first, null, depth + 1)?;
                    (fx, *min == 0 || nx)
                }
            }
        })
    }

    /// FOLLOW sets (bytes that can come right after each rule).
    fn compute_follow(&mut self) -> Result<Follows, Error> {
        let g = self.g;
        let n = g.rules.len();
        let mut first = vec![ByteSet::default(); n];
        let mut null = vec![false; n];
        let users = self.users();
        let mut work = Worklist::new(n);
        while let Some(r) = work.pop() {
            let (f, nl) = self.first_of(&g.rules[r].body, &first, &null, 0)?;
            let mut merged = first[r];
            merged.union(&f);
            if merged != first[r] || (nl && !null[r]) {
                first[r] = merged;
                null[r] |= nl;
                work.extend(&users[r]);
            }
        }
        let mut follow = Follows { rule: vec![ByteSet::default(); n], ..Default::default() };

        // FIRST sets are fixed from here on: memoize FIRST of subexpressions.
        self.fixed_first = Some(FxMap::default());
        let mut work = Worklist::new(n);
        let res = (|| {
            while let Some(r) = work.pop() {
                let f = follow.rule[r];
                self.dirty.clear();
                self.follow_in(&g.rules[r].body, f, &first, &null, &mut follow, 0)?;
                work.extend(&self.dirty);
            }
            Ok(())
        })();
        self.fixed_first = None;
        res?;
        follow.first = first;
        follow.null = null;
        Ok(follow)
    }

    /// Propagates `after` (what may follow `e`) into the rules inside `e`.
    fn follow_in(
        &mut self,
        e: &Expr,
        after: ByteSet,
        first: &[ByteSet],
        null: &[bool],
        follow: &mut Follows,
        depth: usize,
    ) -> Result<bool, Error> {
        self.nesting_check(depth)?;
        let mut changed = false;
        match e {
            Expr::Ref(r) => {
                let mut m = follow.rule[r.0 as usize];
                m.union(&after);
                if m != follow.rule[r.0 as usize] {
                    follow.rule[r.0 as usize] = m;
                    changed = true;
                    self.dirty.push(r.0);
                }
            }
            Expr::Literal(text) => {
                follow.literal.entry(text.clone()).or_default().union(&after);
                let chars: Vec<char> = text.chars().collect();
                let per =
                    follow.literal_chars.entry(text.clone()).or_insert_with(|| vec![ByteSet::default(); chars.len()]);
                for i in 0..chars.len() {
                    if i + 1 < chars.len() {
                        let mut buf = [0u8; 4];
                        per[i].union(&ByteSet::single(chars[i + 1].encode_utf8(&mut buf).as_bytes()[0]));
                    } else {
                        per[i].union(&after);
                    }
                }
            }
            Expr::Class { ranges, negated } => {
                follow.class.entry((ranges.clone(), *negated)).or_default().union(&after);
            }
            Expr::Lexeme(id) => {
                follow.declared.entry(id.0).or_default().union(&after);
            }
            Expr::Seq(v) => {
                let mut f = after;
                for x in v.iter().rev() {
                    changed |= self.follow_in(x, f, first, null, follow, depth + 1)?;
                    let (fx, nx) = self.first_of(x, first, null, depth + 1)?;
                    if !nx {
                        f = ByteSet::default();
                    }
                    f.union(&fx);
                }
            }
            Expr::Alt(v) => {
                for x in v {
                    changed |= self.follow_in(x, after, first, null, follow, depth + 1)?;
                }
            }
            Expr::Repeat { expr, max, .. } => {
                let mut f = after;
                if max.is_none_or(|m| m > 1) {
                    let (fx, _) = self.first_of(expr, first, null, depth + 1)?;
                    f.union(&fx);
                }
                changed |= self.follow_in(expr, f, first, null, follow, depth + 1)?;
            }
            Expr::Empty | Expr::Nothing => {}
        }
        Ok(changed)
    }

    /// For each rule, the rules whose bodies refer to it (computed once).
    fn users(&mut self) -> Arc<Vec<Vec<u32>>> {
        fn refs(e: &Expr, out: &mut Vec<u32>) {
            match e {
                Expr::Ref(r) => out.push(r.0),
                Expr::Seq(v) | Expr::Alt(v) => v.iter().for_each(|x| refs(x, out)),
                Expr::Repeat { expr, .. } => refs(expr, out),
                _ => {}
            }
        }
        if self.users.is_none() {
            let mut users = vec![Vec::new(); self.g.rules.len()];
            let mut out = Vec::new();
            for (r, rule) in self.g.rules.iter().enumerate() {
                out.clear();
                refs(&rule.body, &mut out);
                out.sort_unstable();
                out.dedup();
                for &t in &out {
                    users[t as usize].push(r as u32);
                }
            }
            self.users = Some(Arc::new(users));
        }
        self.users.clone().unwrap_or_default()
    }

    fn collapsible_literal(&self, s: &str) -> bool {
        s.chars().nth(1).is_some() && !self.blocked.contains(&TermKey::Literal(s.to_string()))
    }

    fn collect_terms_ref(
        &mut self,
        r: u32,
        keys: &mut Vec<TermKey>,
        seen: &mut HashSet<TermKey>,
        visited: &mut HashSet<u32>,
        depth: usize,
    ) -> Result<(), Error> {
        if self.collapsible_rule(r)? {
            push_key(TermKey::Rule(r), keys, seen);
            return Ok(());
        }
        if visited.insert(r) {
            let g = self.g;
            self.collect_terms(&g.rules[r as usize].body, keys, seen, visited, depth + 1)?;
        }
        Ok(())
    }

    fn collect_terms(
        &mut self,
        e: &Expr,
        keys: &mut Vec<TermKey>,
        seen: &mut HashSet<TermKey>,
        visited: &mut HashSet<u32>,
        depth: usize,
    ) -> Result<(), Error> {
        self.nesting_check(depth)?;
        match e {
            Expr::Empty | Expr::Nothing => {}
            Expr::Literal(s) => {
                if self.collapsible_literal(s) {
                    push_key(TermKey::Literal(s.clone()), keys, seen);
                } else {
                    for c in s.chars() {
                        push_key(TermKey::Class(vec![(c, c)], false), keys, seen);
                    }
                }
            }
            Expr::Class { ranges, negated } => push_key(TermKey::Class(ranges.clone(), *negated), keys, seen),
            Expr::Lexeme(id) => push_key(TermKey::Declared(id.0), keys, seen),
            Expr::Ref(r) => self.collect_terms_ref(r.0, keys, seen, visited, depth)?,
            Expr::Seq(v) | Expr::Alt(v) => {
                for x in v {
                    self.collect_terms(x, keys, seen, visited, depth + 1)?;
                }
            }
            Expr::Repeat { expr, .. } => self.collect_terms(expr, keys, seen, visited, depth + 1)?,
        }
        Ok(())
    }

    /// The DFA of a terminal key (`None` when a collapse candidate cannot be
    /// built; declared lexemes that fail are errors).
    fn dfa_for(&mut self, k: &TermKey) -> Result<Option<&Dfa>, Error> {
        if !self.dfas.contains_key(k) {
            let max = self.limits.max_lexeme_states;
            let built: Option<Dfa> = match k {
                TermKey::Declared(id) => {
                    let def = &self.g.lexemes[*id as usize];
                    Some(
                        compile_spec_cached(&def.spec, max, &mut self.spec_cache)
                            .map_err(|e| lexeme_error(&def.name, e, max))?,
                    )
                }
                TermKey::Class(ranges, neg) => Some(
                    compile_spec_cached(&LexemeSpec::Regex(class_regex(ranges, *neg)), max, &mut self.spec_cache)
                        .map_err(|e| lexeme_error("character class", e, max))?,
                ),
                TermKey::Literal(s) => Some(Dfa::literal(s.as_bytes())),
                TermKey::Rule(r) => match self.regex_of_rule(*r, 0)? {
                    Some(re) => compile_spec_cached(&LexemeSpec::Regex(re), max.min(5_000), &mut self.spec_cache).ok(),
                    None => None,
                },
            };
            self.dfas.insert(k.clone(), built);
        }
        Ok(self.dfas[k].as_ref())
    }

    fn regex_of_rule(&mut self, r: u32, depth: usize) -> Result<Option<String>, Error> {
        if let Some(x) = self.rule_regex.get(&r) {
            return Ok(x.clone());
        }
        let g = self.g;
        let re = self.regex_of(&g.rules[r as usize].body, depth + 1)?;
        let re = re.filter(|s| s.len() <= MAX_COLLAPSE_REGEX);
        self.rule_regex.insert(r, re.clone());
        Ok(re)
    }

    fn regex_of(&mut self, e: &Expr, depth: usize) -> Result<Option<String>, Error> {
        self.nesting_check(depth)?;
        Ok(match e {
            Expr::Empty => Some("(?:)".into()),
            Expr::Nothing => Some("[a&&b]".into()),
            Expr::Literal(s) => Some(regex_syntax::escape(s)),
            Expr::Class { ranges, negated } => Some(class_regex(ranges, *negated)),
            Expr::Lexeme(_) => None,
            Expr::Ref(r) => self.regex_of_rule(r.0, depth)?.map(|s| format!("(?:{s})")),
            Expr::Seq(v) => {
                let mut out = String::new();
                for x in v {
                    match self.regex_of(x, depth + 1)? {
                        Some(s) if out.len() + s.len() <= MAX_COLLAPSE_REGEX => out.push_str(&format!("(?:{s})")),
                        _ => return Ok(None),
                    }
                }
                Some(out)
            }
            Expr::Alt(v) => {
                let mut parts = Vec::new();
                for x in v {
                    match self.regex_of(x, depth + 1)? {
                        Some(s) => parts.push(s),
                        None => return Ok(None),
                    }
                }
                if parts.is_empty() {
                    Some("[a&&b]".into())
                } else {
                    Some(format!("(?:{})", parts.join("|")))
                }
            }
            Expr::Repeat { expr, min, max } => self.regex_of(expr, depth + 1)?.map(|s| match max {
                Some(m) => format!("(?:{s}){{{min},{m}}}"),
                None => format!("(?:{s}){{{min},}}"),
            }),
        })
    }

    // ---- emission ----

    fn grow(&mut self, n: usize) -> Result<(), Error> {
        self.size += n;
        if self.size > self.limits.max_grammar_size {
            return Err(Error::limit("max_grammar_size", self.limits.max_grammar_size, "lowering the grammar to BNF"));
        }
        Ok(())
    }

    fn new_nt(&mut self, name: String) -> Result<u32, Error> {
        self.grow(1)?;
        self.nt_names.push(name);
        Ok((self.nt_names.len() - 1) as u32)
    }

    fn nothing(&mut self) -> Result<Sym, Error> {
        if let Some(n) = self.nothing_nt {
            return Ok(Sym::Nt(n));
        }
        let n = self.new_nt("<nothing>".into())?;
        self.nothing_nt = Some(n);
        Ok(Sym::Nt(n))
    }

    fn term_sym(&mut self, k: TermKey) -> Result<Sym, Error> {
        if let Some(&s) = self.term_ids.get(&k) {
            return Ok(s);
        }
        let dfa = match self.dfa_for(&k)? {
            Some(d) => d.clone(),
            None => return Err(Error::grammar("internal: terminal without automaton")),
        };
        let name = match &k {
            TermKey::Declared(id) => self.g.lexemes[*id as usize].name.clone(),
            TermKey::Class(r, n) => class_regex(r, *n),
            TermKey::Literal(s) => format!("{s:?}"),
            TermKey::Rule(r) => self.g.rules[*r as usize].name.clone(),
        };
        if dfa.is_empty_language() {
            let s = self.nothing()?;
            self.term_ids.insert(k, s);
            return Ok(s);
        }
        if dfa.matches_empty() {
            // T? where T is the non-empty part
            let t = self.term_dfas.len() as u32;
            self.term_dfas.push(dfa.without_empty());
            self.term_names.push(name.clone());
            let nt = self.new_nt(format!("{name}?"))?;
            self.rules_out.push((nt, vec![Sym::Term(t)]));
            self.rules_out.push((nt, vec![]));
            self.term_ids.insert(k, Sym::Nt(nt));
            return Ok(Sym::Nt(nt));
        }
        let t = self.term_dfas.len() as u32;
        self.term_dfas.push(dfa);
        self.term_names.push(name);
        self.term_ids.insert(k, Sym::Term(t));
        Ok(Sym::Term(t))
    }

    fn ref_sym(&mut self, r: u32, _depth: usize) -> Result<Sym, Error> {
        if self.collapsible_rule(r)? {
            return self.term_sym(TermKey::Rule(r));
        }
        if let Some(&nt) = self.nt_of_rule.get(&r) {
            return Ok(Sym::Nt(nt));
        }
        let nt = self.new_nt(self.g.rules[r as usize].name.clone())?;
        self.nt_of_rule.insert(r, nt);
        self.pending.push(r);
        Ok(Sym::Nt(nt))
    }

    fn lower_alts(&mut self, e: &Expr, depth: usize) -> Result<Vec<Vec<Sym>>, Error> {
        self.nesting_check(depth)?;
        match e {
            Expr::Alt(v) => {
                let mut out = Vec::new();
                for x in v {
                    out.extend(self.lower_alts(x, depth + 1)?);
                }
                Ok(out)
            }
            Expr::Nothing => Ok(vec![]),
            _ => {
                let mut seq = Vec::new();
                self.lower_into(e, &mut seq, depth + 1)?;
                Ok(vec![seq])
            }
        }
    }

    fn lower_into(&mut self, e: &Expr, out: &mut Vec<Sym>, depth: usize) -> Result<(), Error> {
        self.nesting_check(depth)?;
        match e {
            Expr::Empty => {}
            Expr::Nothing => out.push(self.nothing()?),
            Expr::Literal(s) => {
                if self.collapsible_literal(s) {
                    out.push(self.term_sym(TermKey::Literal(s.clone()))?);
                } else {
                    for c in s.chars() {
                        out.push(self.term_sym(TermKey::Class(vec![(c, c)], false))?);
                    }
                }
            }
            Expr::Class { ranges, negated } => out.push(self.term_sym(TermKey::Class(ranges.clone(), *negated))?),
            Expr::Lexeme(LexemeId(id)) => out.push(self.term_sym(TermKey::Declared(*id))?),
            Expr::Ref(RuleId(r)) => out.push(self.ref_sym(*r, depth)?),
            Expr::Seq(v) => {
                for x in v {
                    self.lower_into(x, out, depth + 1)?;
                }
            }
            Expr::Alt(_) => {
                let alts = self.lower_alts(e, depth + 1)?;
                out.push(self.nt_with_alts("alt", alts)?);
            }
            Expr::Repeat { expr, min, max } => {
                let x = self.single_sym(expr, depth + 1)?;
                let (min, max) = (*min as usize, max.map(|m| m as usize));
                if let Some(m) = max {
                    if m < min {
                        out.push(self.nothing()?);
                        return Ok(());
                    }
                }
                self.grow(min)?;
                out.extend(std::iter::repeat_n(x, min));
                match max {
                    None => {
                        // R -> ε | R x
                        let r = self.new_nt("star".into())?;
                        self.grow(2)?;
                        self.rules_out.push((r, vec![]));
                        self.rules_out.push((r, vec![Sym::Nt(r), x]));
                        out.push(Sym::Nt(r));
                    }
                    Some(m) if m > min => {
                        // O_1 -> ε | x ; O_k -> ε | x O_{k-1}
                        let mut prev: Option<u32> = None;
                        for _ in 0..(m - min) {
                            let o = self.new_nt("opt".into())?;
                            self.grow(2)?;
                            self.rules_out.push((o, vec![]));
                            let mut rhs = vec![x];
                            if let Some(p) = prev {
                                rhs.push(Sym::Nt(p));
                            }
                            self.rules_out.push((o, rhs));
                            prev = Some(o);
                        }
                        if let Some(p) = prev {
                            out.push(Sym::Nt(p));
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// A single symbol standing for `e`.
    fn single_sym(&mut self, e: &Expr, depth: usize) -> Result<Sym, Error> {
        let mut seq = Vec::new();
        if !matches!(e, Expr::Alt(_)) {
            self.lower_into(e, &mut seq, depth)?;
            if seq.len() == 1 {
                return Ok(seq[0]);
            }
            return self.nt_with_alts("group", vec![seq]);
        }
        let alts = self.lower_alts(e, depth)?;
        self.nt_with_alts("alt", alts)
    }

    fn nt_with_alts(&mut self, hint: &str, alts: Vec<Vec<Sym>>) -> Result<Sym, Error> {
        let nt = self.new_nt(hint.to_string())?;
        for a in alts {
            self.grow(a.len() + 1)?;
            self.rules_out.push((nt, a));
        }
        Ok(Sym::Nt(nt))
    }
}

/// What may follow each rule and each character-level leaf.
#[derive(Debug, Default)]
struct Follows {
    rule: Vec<ByteSet>,
    first: Vec<ByteSet>,
    null: Vec<bool>,
    literal: HashMap<String, ByteSet>,
    /// Per literal, what may follow each of its characters.
    literal_chars: HashMap<String, Vec<ByteSet>>,
    class: HashMap<(Vec<(char, char)>, bool), ByteSet>,
    declared: HashMap<u32, ByteSet>,
}

/// Whether some accepting state of `d` can go on with a byte of `follow`.
fn extends_into(d: &Dfa, follow: &ByteSet) -> bool {
    (1..d.num_states() as u32)
        .any(|st| d.is_accept(st) && (0..=255u8).any(|b| d.next(st, b) != DEAD && follow.contains(b)))
}

/// Whether `L·L ⊆ L`.
fn closed_under_concat(d: &Dfa, max_states: usize) -> bool {
    let Ok(ll) = Dfa::concat(d, d, max_states) else { return false };
    let outside = d.complement_all_bytes();
    Dfa::product(&ll, &outside, true, max_states).is_ok_and(|x| x.is_empty_language())
}

fn is_candidate(k: &TermKey) -> bool {
    matches!(k, TermKey::Rule(_) | TermKey::Literal(_))
}

/// Whether, after some bytes both `a` and `b` can read, `a` accepts while
/// `b` can go on with a byte in `follow_a` (a byte that may also come after
/// `a`): then maximal munch could miss a parse. Conservatively true when the
/// product is too big to explore.
fn pair_conflict(a: &Dfa, b: &Dfa, follow_a: &ByteSet) -> bool {
    const MAX_PAIRS: usize = 20_000;
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut stack = Vec::new();
    for x in 0..=255u8 {
        let (na, nb) = (a.next(a.start(), x), b.next(b.start(), x));
        if na != DEAD && nb != DEAD && seen.insert((na, nb)) {
            stack.push((na, nb));
        }
    }
    while let Some((sa, sb)) = stack.pop() {
        if seen.len() > MAX_PAIRS {
            return true;
        }
        if a.is_accept(sa) && (0..=255u8).any(|x| b.next(sb, x) != DEAD && follow_a.contains(x)) {
            return true;
        }
        for x in 0..=255u8 {
            let (na, nb) = (a.next(sa, x), b.next(sb, x));
            if na != DEAD && nb != DEAD && seen.insert((na, nb)) {
                stack.push((na, nb));
            }
        }
    }
    false
}

/// A FIFO of rule indices, each queued at most once at a time.
struct Worklist {
    queue: VecDeque<u32>,
    queued: Vec<bool>,
}

impl Worklist {
    /// Every rule queued, in order.
    fn new(n: usize) -> Self {
        Worklist { queue: (0..n as u32).collect(), queued: vec![true; n] }
    }
    fn pop(&mut self) -> Option<usize> {
        let r = self.queue.pop_front()? as usize;
        self.queued[r] = false;
        Some(r)
    }
    fn extend(&mut self, rules: &[u32]) {
        for &r in rules {
            if !std::mem::replace(&mut self.queued[r as usize], true) {
                self.queue.push_back(r);
            }
        }
    }
}

/// A set of terminal indices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TSet {
    bits: Vec<u64>,
    len: usize,
}

impl TSet {
    fn new(len: usize) -> Self {
        TSet { bits: vec![0; len.div_ceil(64)], len }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn insert(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }
    fn union(&mut self, o: &TSet) {
        for (a, b) in self.bits.iter_mut().zip(&o.bits) {
            *a |= *b;
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.contains(i))
    }
}

/// A set of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn single(b: u8) -> Self {
        let mut s = ByteSet::default();
        s.0[b as usize / 64] |= 1 << (b % 64);
        s
    }
    fn from_bools(v: &[bool; 256]) -> Self {
        let mut s = ByteSet::default();
        for (b, &on) in v.iter().enumerate() {
            if on {
                s.0[b / 64] |= 1 << (b % 64);
            }
        }
        s
    }
    fn union(&mut self, o: &ByteSet) {
        for i in 0..4 {
            self.0[i] |= o.0[i];
        }
    }
    fn intersects(&self, o: &ByteSet) -> bool {
        (0..4).any(|i| self.0[i] & o.0[i] != 0)
    }
    fn contains(&self, b: u8) -> bool {
        self.0[b as usize / 64] >> (b % 64) & 1 == 1
    }
}

fn push_key(k: TermKey, keys: &mut Vec<TermKey>, seen: &mut HashSet<TermKey>) {
    if seen.insert(k.clone()) {
        keys.push(k);
    }
}

fn lexeme_error(name: &str, e: DfaError, max: usize) -> Error {
    match e {
        DfaError::Regex(m) => Error::new(ErrorKind::Regex { lexeme: name.to_string(), message: m }),
        DfaError::TooManyStates => {
            Error::limit("max_lexeme_states", max, format!("building the automaton of `{name}`"))
        }
    }
}

/// Removes rules that can derive no terminal string.
fn prune_unproductive(num_nts: usize, rules: Vec<(u32, Vec<Sym>)>, start: u32) -> Result<Vec<(u32, Vec<Sym>)>, Error> {
    let mut productive = vec![false; num_nts];
    let mut missing: Vec<usize> = Vec::with_capacity(rules.len());
    let mut users: Vec<Vec<u32>> = vec![Vec::new(); num_nts];
    let mut queue = Vec::new();
    for (i, (lhs, rhs)) in rules.iter().enumerate() {
        let nts: Vec<u32> = rhs.iter().filter_map(|s| if let Sym::Nt(n) = s { Some(*n) } else { None }).collect();
        missing.push(nts.len());
        for n in nts {
            users[n as usize].push(i as u32);
        }
        if missing[i] == 0 && !productive[*lhs as usize] {
            productive[*lhs as usize] = true;
            queue.push(*lhs);
        }
    }
    while let Some(n) = queue.pop() {
        for &ri in &users[n as usize] {
            let ri = ri as usize;
            missing[ri] -= 1;
            let lhs = rules[ri].0;
            if missing[ri] == 0 && !productive[lhs as usize] {
                productive[lhs as usize] = true;
                queue.push(lhs);
            }
        }
    }
    if !productive[start as usize] {
        return Err(Error::grammar("the grammar matches no string (its start rule is not productive)"));
    }
    Ok(rules
        .into_iter()
        .filter(|(lhs, rhs)| {
            productive[*lhs as usize] && rhs.iter().all(|s| !matches!(s, Sym::Nt(n) if !productive[*n as usize]))
        })
        .collect())
}
