//! The Earley chart: rows pushed when a lexeme is scanned, popped on
//! backtrack.
//!
//! Rows are stored contiguously (`items`), so popping a row is a truncate.
//! Each row keeps, sorted by nonterminal, the items waiting for a nonterminal,
//! so completion finds its parents by binary search. Nullable nonterminals are
//! handled as in Aycock & Horspool (2002): predicting a nullable nonterminal
//! also advances over it, so completions never look into the row being built.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::cfg::{decode, Cfg, Next};
use crate::complete::{CompletionTable, INF};
use crate::error::Error;
use crate::Limits;

/// An Earley item: `(dot << 32) | origin`.
pub(crate) type Item = u64;

#[inline]
fn item(dot: u32, origin: u32) -> Item {
    ((dot as u64) << 32) | origin as u64
}
#[inline]
pub(crate) fn dot_of(i: Item) -> u32 {
    (i >> 32) as u32
}
#[inline]
pub(crate) fn origin_of(i: Item) -> u32 {
    i as u32
}

/// A fast hasher for `u64` keys (multiplicative, as in FxHash).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);
impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

#[derive(Clone, Debug)]
struct Row {
    items_start: u32,
    waiting_start: u32,
    accepting: bool,
}

/// The chart.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chart {
    items: Vec<Item>,
    /// `(nonterminal, item index)` of items whose next symbol is a
    /// nonterminal, sorted per row.
    waiting: Vec<(u32, u32)>,
    rows: Vec<Row>,
    // scratch
    dedup: HashSet<Item, FxBuild>,
    work: Vec<Item>,
    pred_stamp: Vec<u32>,
    stamp: u32,
    /// Items created since the counter was last reset.
    pub(crate) items_created: usize,
    /// Parallel to `waiting`, filled for the first `need_rows` rows: on the
    /// first entry of each nonterminal's group, the fewest bytes that
    /// finish everything after that nonterminal completes from this row,
    /// and the waiting entry achieving it (see the `complete` module).
    need: Vec<(u64, u32)>,
    need_rows: usize,
}

impl Chart {
    pub(crate) fn new(cfg: &Cfg) -> Chart {
        Chart { pred_stamp: vec![0; cfg.num_nts()], ..Default::default() }
    }

    pub(crate) fn num_rows(&self) -> usize {
        self.rows.len()
    }

    /// Number of items waiting for a nonterminal, over all rows.
    pub(crate) fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Drops rows above `n`.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.rows.len() {
            let r = &self.rows[n];
            self.items.truncate(r.items_start as usize);
            self.waiting.truncate(r.waiting_start as usize);
            self.need.truncate(r.waiting_start as usize);
            self.rows.truncate(n);
            self.need_rows = self.need_rows.min(n);
        }
    }

    /// The waiting entries of row `k`: `start..end` in `waiting`.
    fn waiting_range(&self, k: usize) -> (usize, usize) {
        let start = self.rows[k].waiting_start as usize;
        let end = self.rows.get(k + 1).map_or(self.waiting.len(), |r| r.waiting_start as usize);
        (start, end)
    }

    /// Index of the first entry of row `k` waiting for `nt`, if any.
    fn group(&self, k: usize, nt: u32) -> Option<usize> {
        let (start, end) = self.waiting_range(k);
        let w = &self.waiting[start..end];
        let i = w.partition_point(|&(a, _)| a < nt);
        (i < w.len() && w[i].0 == nt).then_some(start + i)
    }

    /// Fewest bytes that finish the parse once a `lhs` started at row
    /// `origin` is complete (0 for the augmented start symbol: then the
    /// input is accepted). Needs [`Chart::ensure_need`] up to `origin`.
    pub(crate) fn parent_need(&self, table: &CompletionTable, origin: u32, lhs: u32) -> u64 {
        if lhs == table.aug() {
            return 0;
        }
        self.group(origin as usize, lhs).map_or(INF, |g| self.need[g].0)
    }

    /// The item of row `origin` waiting for `lhs` through which the parse
    /// finishes shortest: `(dot, origin)`.
    pub(crate) fn parent_item(&self, origin: u32, lhs: u32) -> Option<(u32, u32)> {
        let g = self.group(origin as usize, lhs)?;
        let (_, e) = *self.need.get(g)?;
        let it = self.items[self.waiting.get(e as usize)?.1 as usize];
        Some((dot_of(it), origin_of(it)))
    }

    /// Computes the memoized `need` of every row not yet done (rows below
    /// keep theirs: a row's need depends only on the rows up to it).
    pub(crate) fn ensure_need(&mut self, table: &CompletionTable) {
        while self.need_rows < self.rows.len() {
            let k = self.need_rows;
            let (start, end) = self.waiting_range(k);
            self.need.truncate(start);
            self.need.resize(end, (INF, u32::MAX));
            // Bellman-Ford within the row: an item predicted here (origin
            // k) depends on this row's need of its own left-hand side. A
            // value only ever decreases and the achieving entry changes only
            // on a strict decrease, so the chosen entries never loop.
            for _ in 0..=(end - start) {
                let mut changed = false;
                let mut g = start;
                for i in start..end {
                    let (nt, idx) = self.waiting[i];
                    if nt != self.waiting[g].0 {
                        g = i;
                    }
                    let it = self.items[idx as usize];
                    let dot = dot_of(it);
                    let parent = self.parent_need(table, origin_of(it), table.lhs(dot));
                    let v = table.rest(dot + 1).saturating_add(parent);
                    if v < self.need[g].0 {
                        self.need[g] = (v, i as u32);
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            self.need_rows += 1;
        }
    }

    /// The top row's items as `(dot, origin)`.
    pub(crate) fn top_dots(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.top_items().iter().map(|&it| (dot_of(it), origin_of(it)))
    }

    /// Builds row 0.
    pub(crate) fn init(&mut self, cfg: &Cfg, limits: &Limits) -> Result<(), Error> {
        self.items.clear();
        self.waiting.clear();
        self.need.clear();
        self.need_rows = 0;
        self.rows.clear();
        self.work.clear();
        self.work.push(item(cfg.start_dot, 0));
        self.build_row(cfg, limits)
    }

    /// Whether the top row accepts (the start symbol is complete from 0).
    pub(crate) fn is_accepting(&self) -> bool {
        self.rows.last().is_some_and(|r| r.accepting)
    }

    fn top_items(&self) -> &[Item] {
        let r = self.rows.last().expect("chart has at least one row");
        &self.items[r.items_start as usize..]
    }

    /// The terminals the top row expects, sorted and deduplicated, into `out`.
    pub(crate) fn expected_terminals(&self, cfg: &Cfg, out: &mut Vec<u32>) {
        out.clear();
        for &it in self.top_items() {
            if let Next::Term(t) = decode(cfg.dots[dot_of(it) as usize]) {
                out.push(t);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Scans a lexeme matched by any of `terms` and pushes the resulting row.
    /// Returns false (and pushes nothing) if no item expected them.
    pub(crate) fn scan(&mut self, cfg: &Cfg, terms: &[u32], limits: &Limits) -> Result<bool, Error> {
        self.work.clear();
        let r = self.rows.last().expect("chart has at least one row");
        for &it in &self.items[r.items_start as usize..] {
            if let Next::Term(t) = decode(cfg.dots[dot_of(it) as usize]) {
                if terms.contains(&t) {
                    self.work.push(it + (1u64 << 32));
                }
            }
        }
        if self.work.is_empty() {
            return Ok(false);
        }
        self.build_row(cfg, limits)?;
        Ok(true)
    }

    fn build_row(&mut self, cfg: &Cfg, limits: &Limits) -> Result<(), Error> {
        let cur = self.rows.len() as u32;
        let items_start = self.items.len();
        let waiting_start = self.waiting.len();
        self.dedup.clear();
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.pred_stamp.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        let accept_item = item(cfg.accept_dot, 0);
        let mut accepting = false;
        while let Some(it) = self.work.pop() {
            if !self.dedup.insert(it) {
                continue;
            }
            self.items.push(it);
            self.items_created += 1;
            if self.items.len() - items_start > limits.max_items_per_row {
                self.items.truncate(items_start);
                self.waiting.truncate(waiting_start);
                return Err(Error::limit("max_items_per_row", limits.max_items_per_row, "parsing"));
            }
            if self.items_created > limits.max_items_per_step {
                self.items.truncate(items_start);
                self.waiting.truncate(waiting_start);
                return Err(Error::limit("max_items_per_step", limits.max_items_per_step, "parsing"));
            }
            let dot = dot_of(it);
            match decode(cfg.dots[dot as usize]) {
                Next::Term(_) => {}
                Next::Nt(a) => {
                    if self.pred_stamp[a as usize] != stamp {
                        for &b in cfg.predict_nts[a as usize].iter() {
                            self.pred_stamp[b as usize] = stamp;
                        }
                        for &d in cfg.predict[a as usize].iter() {
                            self.work.push(item(d, cur));
                        }
                    }
                    if cfg.nullable[a as usize] {
                        self.work.push(it + (1u64 << 32));
                    }
                }
                Next::End(rule) => {
                    if it == accept_item {
                        accepting = true;
                    }
                    let origin = origin_of(it);
                    if origin == cur {
                        continue;
                    }
                    let lhs = cfg.rule_lhs[rule as usize];
                    let row = &self.rows[origin as usize];
                    let end = self.rows.get(origin as usize + 1).map_or(waiting_start, |r| r.waiting_start as usize);
                    let w = &self.waiting[row.waiting_start as usize..end];
                    let lo = w.partition_point(|&(nt, _)| nt < lhs);
                    for &(nt, idx) in &w[lo..] {
                        if nt != lhs {
                            break;
                        }
                        self.work.push(self.items[idx as usize] + (1u64 << 32));
                    }
                }
            }
        }
        for idx in items_start..self.items.len() {
            if let Next::Nt(a) = decode(cfg.dots[dot_of(self.items[idx]) as usize]) {
                self.waiting.push((a, idx as u32));
            }
        }
        self.waiting[waiting_start..].sort_unstable();
        self.rows.push(Row { items_start: items_start as u32, waiting_start: waiting_start as u32, accepting });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::cfg::Sym;

    /// Recognizes a terminal string with the chart directly.
    fn recognizes(cfg: &Cfg, input: &[u32]) -> bool {
        let limits = Limits::default();
        let mut ch = Chart::new(cfg);
        ch.init(cfg, &limits).unwrap();
        for &t in input {
            if !ch.scan(cfg, &[t], &limits).unwrap() {
                return false;
            }
        }
        ch.is_accepting()
    }

    #[test]
    fn left_recursion_and_nullable() {
        // S -> S a | ε ; terminal a = 0
        let cfg = Cfg::new(vec!["S".into()], vec![(0, vec![Sym::Nt(0), Sym::Term(0)]), (0, vec![])], 0);
        assert!(recognizes(&cfg, &[]));
        assert!(recognizes(&cfg, &[0, 0, 0]));
        assert!(!recognizes(&cfg, &[1]));
    }

    #[test]
    fn ambiguous_and_nullable_middle() {
        // S -> A A b ; A -> a | ε   (a=0, b=1)
        let cfg = Cfg::new(
            vec!["S".into(), "A".into()],
            vec![(0, vec![Sym::Nt(1), Sym::Nt(1), Sym::Term(1)]), (1, vec![Sym::Term(0)]), (1, vec![])],
            0,
        );
        assert!(recognizes(&cfg, &[1]));
        assert!(recognizes(&cfg, &[0, 1]));
        assert!(recognizes(&cfg, &[0, 0, 1]));
        assert!(!recognizes(&cfg, &[0, 0, 0, 1]));
    }

    #[test]
    fn balanced_parentheses() {
        // S -> ( S ) S | ε
        let cfg = Cfg::new(
            vec!["S".into()],
            vec![(0, vec![Sym::Term(0), Sym::Nt(0), Sym::Term(1), Sym::Nt(0)]), (0, vec![])],
            0,
        );
        assert!(recognizes(&cfg, &[0, 0, 1, 1, 0, 1]));
        assert!(!recognizes(&cfg, &[0, 0, 1]));
        assert!(!recognizes(&cfg, &[1, 0]));
    }
}
