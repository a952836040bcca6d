//! Shortest completions: how many bytes the grammar still needs before it
//! accepts, and which bytes those are.
//!
//! Where it sits: a generator with a token budget asks the [`Matcher`]
//! (through [`Matcher::min_completion_bytes`] and
//! [`Matcher::shortest_completion`]) how short a valid ending of the output
//! can be, and steers to it when the budget runs low.
//!
//! The table is computed once per compiled grammar, on first use:
//!
//! - per terminal and DFA state, the fewest bytes to an accepting state
//!   (a breadth-first search backwards from the accepting states);
//! - per nonterminal, the fewest bytes it can derive and a rule achieving it
//!   (Knuth's generalization of Dijkstra's algorithm to grammars: a
//!   nonterminal is settled in order of cost, and a rule counts only once
//!   every nonterminal in it is settled, so the chosen rules never loop);
//! - per dot, the fewest bytes the rest of its rule derives.
//!
//! On a chart, the cost of finishing an item `(dot, origin)` is the rest of
//! its rule plus what its parents still need: `need(origin, lhs)`, the least
//! over the items of row `origin` waiting for `lhs` of the rest after them
//! plus their own parents' need. The chart memoizes `need` per row
//! ([`Chart::ensure_need`](crate::parser::chart::Chart)), so a step costs the
//! new rows only.
//!
//! The count is a lower bound on the bytes of any accepted continuation (it
//! treats the continuation as a sequence of terminals, each at least as long
//! as its shortest match). The bytes built from it are checked by running
//! them through the matcher: the lexer's maximal munch could glue two
//! shortest lexemes into one other lexeme, and then no completion is
//! claimed.
//!
//! [`Matcher`]: crate::Matcher
//! [`Matcher::min_completion_bytes`]: crate::Matcher::min_completion_bytes
//! [`Matcher::shortest_completion`]: crate::Matcher::shortest_completion

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::lexer::{dfa, Terminals};
use crate::parser::cfg::{decode, Cfg, Next};

/// "No completion": an unproductive symbol or a dead DFA state.
pub(crate) const INF: u64 = u64::MAX;

/// Per-grammar shortest-yield tables.
#[derive(Debug)]
pub(crate) struct CompletionTable {
    /// Per terminal, per DFA state: bytes to an accepting state (`u32::MAX`
    /// when none is reachable).
    term_dist: Vec<Box<[u32]>>,
    /// Per nonterminal: fewest bytes it derives (the search's result; the
    /// matcher reads `rest` and `nt_best`, the unit tests read this).
    #[cfg_attr(not(test), allow(dead_code))]
    nt_min: Vec<u64>,
    /// Per nonterminal: the first dot of a rule achieving `nt_min`.
    nt_best: Vec<u32>,
    /// Per dot: fewest bytes the symbols from the dot to its rule's end
    /// derive.
    rest: Vec<u64>,
    /// Per dot: its rule's left-hand side.
    dot_lhs: Vec<u32>,
    /// The augmented start nonterminal.
    aug: u32,
}

impl CompletionTable {
    pub(crate) fn new(cfg: &Cfg, terms: &Terminals) -> CompletionTable {
        let term_dist: Vec<Box<[u32]>> = terms.dfas.iter().map(dist_to_accept).collect();
        let term_min: Vec<u64> = terms
            .dfas
            .iter()
            .zip(&term_dist)
            .map(|(d, dist)| match dist[d.start() as usize] {
                u32::MAX => INF,
                x => u64::from(x),
            })
            .collect();
        let n = cfg.num_nts();
        // rules: (first dot, end dot) in order of the END markers
        let mut rules: Vec<(u32, u32)> = Vec::new();
        let mut dot_lhs = vec![0u32; cfg.dots.len()];
        let mut begin = 0u32;
        for (d, &x) in cfg.dots.iter().enumerate() {
            if let Next::End(r) = decode(x) {
                let lhs = cfg.rule_lhs[r as usize];
                dot_lhs[begin as usize..=d].iter_mut().for_each(|l| *l = lhs);
                rules.push((begin, d as u32));
                begin = d as u32 + 1;
            }
        }
        // Knuth: settle nonterminals in order of cost.
        let mut occurs: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut waiting_nts = vec![0u32; rules.len()];
        let mut partial = vec![0u64; rules.len()];
        for (r, &(b, e)) in rules.iter().enumerate() {
            for d in b..e {
                match decode(cfg.dots[d as usize]) {
                    Next::Nt(a) => {
                        occurs[a as usize].push(r as u32);
                        waiting_nts[r] += 1;
                    }
                    Next::Term(t) => partial[r] = partial[r].saturating_add(term_min[t as usize]),
                    Next::End(_) => {}
                }
            }
        }
        let mut nt_min = vec![INF; n];
        let mut nt_best = vec![u32::MAX; n];
        let mut settled = vec![false; n];
        let mut heap = BinaryHeap::new();
        for (r, &(b, _)) in rules.iter().enumerate() {
            let lhs = dot_lhs[b as usize] as usize;
            if waiting_nts[r] == 0 && partial[r] < nt_min[lhs] {
                nt_min[lhs] = partial[r];
                nt_best[lhs] = b;
                heap.push(Reverse((partial[r], lhs as u32)));
            }
        }
        while let Some(Reverse((c, a))) = heap.pop() {
            if settled[a as usize] || c != nt_min[a as usize] {
                continue;
            }
            settled[a as usize] = true;
            for &r in &occurs[a as usize] {
                let r = r as usize;
                partial[r] = partial[r].saturating_add(c);
                waiting_nts[r] -= 1;
                let b = rules[r].0;
                let lhs = dot_lhs[b as usize] as usize;
                if waiting_nts[r] == 0 && !settled[lhs] && partial[r] < nt_min[lhs] {
                    nt_min[lhs] = partial[r];
                    nt_best[lhs] = b;
                    heap.push(Reverse((partial[r], lhs as u32)));
                }
            }
        }
        let mut rest = vec![0u64; cfg.dots.len()];
        for &(b, e) in &rules {
            let mut acc = 0u64;
            for d in (b..e).rev() {
                let c = match decode(cfg.dots[d as usize]) {
                    Next::Nt(a) => nt_min[a as usize],
                    Next::Term(t) => term_min[t as usize],
                    Next::End(_) => 0,
                };
                acc = acc.saturating_add(c);
                rest[d as usize] = acc;
            }
        }
        CompletionTable { term_dist, nt_min, nt_best, rest, dot_lhs, aug: (n - 1) as u32 }
    }

    /// Fewest bytes derived by the symbols from `dot` to its rule's end.
    #[inline]
    pub(crate) fn rest(&self, dot: u32) -> u64 {
        self.rest[dot as usize]
    }

    /// The left-hand side of `dot`'s rule.
    #[inline]
    pub(crate) fn lhs(&self, dot: u32) -> u32 {
        self.dot_lhs[dot as usize]
    }

    /// The augmented start symbol: completing it is accepting.
    #[inline]
    pub(crate) fn aug(&self) -> u32 {
        self.aug
    }

    /// Bytes from DFA state `s` of terminal `t` to an accepting state.
    #[inline]
    pub(crate) fn term_dist(&self, t: u32, s: u32) -> u64 {
        match self.term_dist[t as usize][s as usize] {
            u32::MAX => INF,
            x => u64::from(x),
        }
    }

    /// Fewest bytes nonterminal `a` derives.
    #[cfg(test)]
    pub(crate) fn nt_min(&self, a: u32) -> u64 {
        self.nt_min[a as usize]
    }

    /// Appends the shortest bytes leading terminal `t` from DFA state `s` to
    /// acceptance (the smallest byte at each step, so the result is
    /// deterministic). False if there is none or `out` would exceed `max`.
    pub(crate) fn push_term(&self, terms: &Terminals, t: u32, s: u32, out: &mut Vec<u8>, max: usize) -> bool {
        let dfa = &terms.dfas[t as usize];
        let dist = &self.term_dist[t as usize];
        let mut s = s;
        let mut d = dist[s as usize];
        if d == u32::MAX || out.len() + d as usize > max {
            return false;
        }
        while d > 0 {
            let Some(b) = (0..=255u8).find(|&b| {
                let n = dfa.next(s, b);
                n != dfa::DEAD && dist[n as usize] == d - 1
            }) else {
                return false;
            };
            out.push(b);
            s = dfa.next(s, b);
            d -= 1;
        }
        true
    }

    /// Appends the shortest bytes the symbols from `dot` to its rule's end
    /// derive. False if they are unproductive or `out` would exceed `max`.
    pub(crate) fn push_rest(&self, cfg: &Cfg, terms: &Terminals, dot: u32, out: &mut Vec<u8>, max: usize) -> bool {
        if self.rest[dot as usize] == INF || (out.len() as u64).saturating_add(self.rest[dot as usize]) > max as u64 {
            return false;
        }
        // dots still to expand, in reverse order
        let mut stack = vec![dot];
        while let Some(d) = stack.pop() {
            match decode(cfg.dots[d as usize]) {
                Next::End(_) => {}
                Next::Term(t) => {
                    stack.push(d + 1);
                    if !self.push_term(terms, t, terms.dfas[t as usize].start(), out, max) {
                        return false;
                    }
                }
                Next::Nt(a) => {
                    stack.push(d + 1);
                    let b = self.nt_best[a as usize];
                    if b == u32::MAX {
                        return false;
                    }
                    stack.push(b);
                }
            }
        }
        true
    }
}

/// Per DFA state, the fewest bytes to an accepting state.
fn dist_to_accept(d: &dfa::Dfa) -> Box<[u32]> {
    let n = d.num_states();
    // reverse edges in compressed rows: count, then fill
    let mut count = vec![0u32; n + 1];
    let mut last = vec![u32::MAX; n];
    for s in 1..n as u32 {
        for b in 0..=255u8 {
            let t = d.next(s, b);
            if t != dfa::DEAD && last[t as usize] != s {
                last[t as usize] = s;
                count[t as usize + 1] += 1;
            }
        }
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    let mut from = vec![0u32; count[n] as usize];
    last.iter_mut().for_each(|l| *l = u32::MAX);
    for s in 1..n as u32 {
        for b in 0..=255u8 {
            let t = d.next(s, b);
            if t != dfa::DEAD && last[t as usize] != s {
                last[t as usize] = s;
                from[fill[t as usize] as usize] = s;
                fill[t as usize] += 1;
            }
        }
    }
    let mut dist = vec![u32::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for (s, ds) in dist.iter_mut().enumerate().skip(1) {
        if d.is_accept(s as u32) {
            *ds = 0;
            queue.push_back(s as u32);
        }
    }
    while let Some(t) = queue.pop_front() {
        let next = dist[t as usize] + 1;
        for &s in &from[count[t as usize] as usize..count[t as usize + 1] as usize] {
            if dist[s as usize] == u32::MAX {
                dist[s as usize] = next;
                queue.push_back(s);
            }
        }
    }
    dist.into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{gbnf, CompiledGrammar, Limits, Vocabulary};

    fn grammar(src: &str) -> CompiledGrammar {
        CompiledGrammar::new(&gbnf::parse(src).unwrap(), Arc::new(Vocabulary::bytes()), Limits::default()).unwrap()
    }

    /// The shortest completion after `prefix`, checked to be accepted and
    /// to have the length the count promised.
    fn completion(g: &CompiledGrammar, prefix: &str) -> String {
        let mut m = g.matcher().unwrap();
        assert!(m.try_consume_bytes(prefix.as_bytes()).unwrap(), "{prefix}");
        let n = m.min_completion_bytes().unwrap();
        let c = m.shortest_completion(1 << 16).unwrap().unwrap_or_else(|| panic!("no completion after {prefix}"));
        assert_eq!(c.bytes.len() as u64, n, "{prefix}: {:?}", String::from_utf8_lossy(&c.bytes));
        assert_eq!(c.tokens.len(), c.bytes.len(), "byte vocabulary: one token per byte");
        assert!(m.try_consume_bytes(&c.bytes).unwrap());
        assert!(m.is_accepting().unwrap());
        String::from_utf8(c.bytes).unwrap()
    }

    #[test]
    fn nonterminal_minimum_yields() {
        let g = grammar(
            r#"root ::= "(" list ")" | "xyzw"
list ::= item | list "," item
item ::= "ab" | "(" list ")""#,
        );
        let t = g.inner.completion();
        let names = &g.inner.cfg.nt_names;
        let nt = |name: &str| names.iter().position(|n| n == name).unwrap() as u32;
        assert_eq!(t.nt_min(nt("item")), 2);
        assert_eq!(t.nt_min(nt("list")), 2);
        assert_eq!(t.nt_min(nt("root")), 4);
    }

    #[test]
    fn nested_recursion_closes_every_open_level() {
        let g = grammar(
            r#"root ::= "(" list ")"
list ::= item | list "," item
item ::= "ab" | "(" list ")""#,
        );
        assert_eq!(completion(&g, ""), "(ab)");
        assert_eq!(completion(&g, "(("), "ab))");
        assert_eq!(completion(&g, "((ab,(a"), "b)))");
        assert_eq!(completion(&g, "(ab"), ")");
        assert_eq!(completion(&g, "(ab,"), "ab)");
        assert_eq!(completion(&g, "(ab)"), "");
    }

    #[test]
    fn a_lexeme_in_progress_is_finished_the_shortest_way() {
        // a declared lexeme (a regex): the pending state's distance counts
        let g = CompiledGrammar::new(
            &crate::regex("x[0-9]{3,5}y|xz").unwrap(),
            Arc::new(Vocabulary::bytes()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(completion(&g, "x"), "z");
        assert_eq!(completion(&g, "x1"), "00y");
        assert_eq!(completion(&g, "x1234"), "y");
    }

    #[cfg(feature = "json-schema")]
    fn schema(v: serde_json::Value) -> CompiledGrammar {
        use crate::json_schema::{compile, JsonSchemaOptions, Whitespace};
        let opts = JsonSchemaOptions { whitespace: Whitespace::Compact, ..Default::default() };
        let (g, _) = compile(&v, &opts).unwrap();
        CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap()
    }

    #[cfg(feature = "json-schema")]
    #[test]
    fn json_nested_objects_arrays_and_strings() {
        let g = schema(serde_json::json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3},
                "tags": {"type": "array", "items": {"type": "object",
                    "properties": {"k": {"type": "integer"}}, "required": ["k"]}, "minItems": 2},
                "note": {"type": "string"}
            },
            "required": ["name", "tags"],
            "additionalProperties": false
        }));
        let whole = completion(&g, "");
        let v: serde_json::Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(v["name"].as_str().unwrap().chars().count(), 3, "{whole}");
        assert_eq!(v["tags"].as_array().unwrap().len(), 2, "{whole}");
        assert!(v.get("note").is_none(), "{whole}");
        // inside a string shorter than minLength: the rest of the minimum
        let c = completion(&g, r#"{"name":"a"#);
        assert_eq!(c.as_bytes().get(2), Some(&b'"'), "{c}");
        let v: serde_json::Value = serde_json::from_str(&format!(r#"{{"name":"a{c}"#)).unwrap();
        assert_eq!(v["name"].as_str().unwrap().len(), 3, "{c}");
        // inside the first array item: close it, one more item, close all
        let c = completion(&g, r#"{"name":"abc","tags":[{"k":12"#);
        let full = format!(r#"{{"name":"abc","tags":[{{"k":12{c}"#);
        let v: serde_json::Value = serde_json::from_str(&full).unwrap();
        assert_eq!(v["tags"].as_array().unwrap().len(), 2, "{full}");
        // after minItems items: just close
        assert_eq!(completion(&g, r#"{"name":"abc","tags":[{"k":1},{"k":2}"#), "]}");
    }
}
