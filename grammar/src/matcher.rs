//! [`Matcher`]: the per-sequence state — which tokens may come next.
//!
//! Where it sits: one matcher per generated sequence, created from a
//! [`CompiledGrammar`]. The generator calls [`Matcher::compute_mask`] before
//! sampling and [`Matcher::consume_token`] after.
//!
//! The state is an Earley chart (one row per scanned lexeme) plus the lexer
//! state of the lexeme in progress. Every consumed byte records a frame, so
//! rollback is a truncate.
//!
//! Computing a mask: the token trie is walked from the current lexer state.
//! Tokens whose bytes stay inside the current lexeme depend on the lexer state
//! alone; their bits are computed once per lexer state and cached
//! ([`StateMasks`]). Only the subtrees where a lexeme ends inside a token
//! (the "boundaries") are walked again with the parser, on every mask.

use std::collections::HashMap;
use std::sync::Arc;

use crate::compiled::{CompiledGrammar, Inner};
use crate::complete::INF;
use crate::error::{Error, ErrorKind};
use crate::lexer::{LexState, LexerCache, LEX_DEAD};
use crate::parser::cfg::{decode, Next};
use crate::parser::chart::Chart;
use crate::trie::TokenTrie;
use crate::vocab::TokenId;

/// A way to finish the output: bytes after which the grammar accepts, and
/// a tokenization of them (greedy longest match over the vocabulary).
///
/// See [`Matcher::shortest_completion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Tokens spelling exactly `bytes`.
    pub tokens: Vec<TokenId>,
}

/// Where the shortest completion starts: the lexeme in progress (a
/// terminal and its DFA state) if it must be finished first, and the top
/// row's item it advances.
#[derive(Clone, Copy, Debug)]
struct CompletionStart {
    pending: Option<(u32, u32)>,
    dot: u32,
    origin: u32,
}

/// Splits `bytes` into tokens, longest match first. With `hold_last`, a
/// last token that a longer token could replace once more bytes are known
/// is left out. Returns the tokens and the bytes they cover.
fn greedy_tokens(trie: &TokenTrie, bytes: &[u8], hold_last: bool) -> (Vec<TokenId>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        // longest token that is a prefix of bytes[pos..]
        let mut node = 0;
        let mut best: Option<(usize, TokenId, usize)> = None;
        for (k, &b) in bytes[pos..].iter().enumerate() {
            match trie.child(node, b) {
                Some(c) => {
                    node = c;
                    if let Some(&t) = trie.tokens(c).first() {
                        best = Some((k + 1, t, c));
                    }
                }
                None => break,
            }
        }
        let Some((len, t, n)) = best else { break };
        if hold_last && pos + len == bytes.len() && trie.has_children(n) {
            break;
        }
        out.push(t);
        pos += len;
    }
    (out, pos)
}

/// Token bits that depend only on a lexer state.
#[derive(Debug)]
struct StateMasks {
    /// Tokens whose bytes stay inside the lexeme (or end it exactly).
    allowed: Box<[u32]>,
    /// `(trie node, lexer state at that node)`: the lexeme may end after the
    /// node's bytes; children whose byte the state cannot take need the parser.
    boundaries: Box<[(u32, LexState)]>,
    /// The same boundaries sorted by node, so that those inside one subtree
    /// are a contiguous range (for [`MatcherCache::subtrees`]).
    by_node: Box<[(u32, LexState)]>,
}

/// Trie nodes with at least this many tokens below them are memoized by
/// `(lexer state at the node, node)` during cold walks (SmolLM2: ~750 nodes).
const MEMO_MIN_TOKENS: usize = 32;

/// A hasher for integer keys and slices of them (the memo is probed on every
/// large node of a cold walk, the lexer's maps at every lexeme boundary of a
/// mask; SipHash was a tenth of the mask time). Keys are our own state ids,
/// not attacker-chosen strings.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // fold the well-mixed high half into the low bits the table indexes by
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.write_u64(b as u64);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type IntMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;

/// Caches a matcher fills as it runs; pooled in the [`CompiledGrammar`].
#[derive(Clone, Debug)]
pub(crate) struct MatcherCache {
    lexer: LexerCache,
    masks: Vec<Option<Arc<StateMasks>>>,
    subs: IntMap<(LexState, LexState, u32), Arc<SubMask>>,
    /// Root boundaries: `(state before, state after)` -> tokens and boundaries.
    roots: IntMap<(LexState, LexState), Arc<StateMasks>>,
    /// `(lexer state at trie node n, n)` -> a walk that reached `n` in that
    /// state: the tokens and boundaries of `n`'s subtree are the same in
    /// every walk that reaches `n` in that state, so they are copied from
    /// it instead of walked again. Lexer states of one lexeme often converge
    /// (every key prefix of "any key but the declared ones" goes to the same
    /// state after a byte no declared key has there), so a cold walk mostly
    /// copies.
    subtrees: IntMap<(LexState, u32), Arc<StateMasks>>,
    mask_bytes: usize,
}

impl MatcherCache {
    fn new() -> Self {
        MatcherCache {
            lexer: LexerCache::new(),
            masks: Vec::new(),
            subs: IntMap::default(),
            roots: IntMap::default(),
            subtrees: IntMap::default(),
            mask_bytes: 0,
        }
    }

    fn clear_masks(&mut self) {
        self.masks.iter_mut().for_each(|m| *m = None);
        self.subs.clear();
        self.roots.clear();
        self.subtrees.clear();
        self.mask_bytes = 0;
    }
}

/// Tokens below a boundary node that stay in the lexeme started there.
#[derive(Debug)]
struct SubMask {
    tokens: Box<[TokenId]>,
    boundaries: Box<[(u32, LexState)]>,
}

/// Boundaries nested deeper than this inside one token are walked, not cached.
const MAX_BOUNDARY_DEPTH: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Frame {
    rows: u32,
    lex: LexState,
    pending: bool,
}

#[derive(Clone, Copy, Debug)]
struct TokMark {
    frames: usize,
    eos: bool,
}

/// Per-sequence matching state over a [`CompiledGrammar`].
///
/// ```
/// use std::sync::Arc;
/// use formwork_grammar::{regex, CompiledGrammar, Limits, Vocabulary};
/// let vocab = Arc::new(Vocabulary::bytes());
/// let g = CompiledGrammar::new(&regex("[0-9]{2}")?, vocab, Limits::default())?;
/// let mut m = g.matcher()?;
/// let mut mask = vec![0u32; g.mask_words()];
/// m.compute_mask(&mut mask)?;
/// assert!(mask[(b'7' / 32) as usize] & (1 << (b'7' % 32)) != 0);
/// assert!(mask[(b'x' / 32) as usize] & (1 << (b'x' % 32)) == 0);
/// m.consume_token(b'4' as u32)?;
/// m.consume_token(b'2' as u32)?;
/// assert!(m.is_accepting()?);
/// # Ok::<(), formwork_grammar::Error>(())
/// ```
#[derive(Clone)]
pub struct Matcher {
    g: CompiledGrammar,
    cache: Box<MatcherCache>,
    chart: Chart,
    lex: LexState,
    pending: bool,
    frames: Vec<Frame>,
    tokens: Vec<TokMark>,
    /// The state before anything was consumed.
    initial: Frame,
    stopped: bool,
    error: Option<Error>,
    scratch: Vec<u32>,
    walk: Vec<(u32, LexState)>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("tokens", &self.tokens.len())
            .field("bytes", &self.frames.len())
            .field("rows", &self.chart.num_rows())
            .field("stopped", &self.stopped)
            .field("error", &self.error)
            .finish()
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        let c = std::mem::replace(&mut self.cache, Box::new(MatcherCache::new()));
        self.g.return_cache(*c);
    }
}

/// Advances the lexer (and the chart, at lexeme boundaries) by one byte.
/// Returns the new lexer state and whether it starts a fresh lexeme, or
/// `None` (with the chart unchanged) when the byte is not allowed.
fn advance(
    g: &Inner,
    chart: &mut Chart,
    lexer: &mut LexerCache,
    scratch: &mut Vec<u32>,
    lex: LexState,
    b: u8,
) -> Result<Option<(LexState, bool)>, Error> {
    let rows = chart.num_rows();
    let r = advance_inner(g, chart, lexer, scratch, lex, b, rows);
    if r.is_err() {
        chart.truncate(rows);
    }
    r
}

fn advance_inner(
    g: &Inner,
    chart: &mut Chart,
    lexer: &mut LexerCache,
    scratch: &mut Vec<u32>,
    lex: LexState,
    b: u8,
    rows: usize,
) -> Result<Option<(LexState, bool)>, Error> {
    let mut n = lexer.step(lex, b, &g.terms, &g.limits)?;
    if n == LEX_DEAD {
        if lexer.accepting(lex).is_empty() {
            return Ok(None);
        }
        scratch.clear();
        scratch.extend_from_slice(lexer.accepting(lex));
        if !chart.scan(&g.cfg, scratch, &g.limits)? {
            return Ok(None);
        }
        chart.expected_terminals(&g.cfg, scratch);
        let s = lexer.start_state(scratch, &g.terms, &g.limits)?;
        n = lexer.step(s, b, &g.terms, &g.limits)?;
        if n == LEX_DEAD {
            chart.truncate(rows);
            return Ok(None);
        }
    }
    if lexer.must_end(n) {
        scratch.clear();
        scratch.extend_from_slice(lexer.accepting(n));
        if !chart.scan(&g.cfg, scratch, &g.limits)? {
            chart.truncate(rows);
            return Ok(None);
        }
        chart.expected_terminals(&g.cfg, scratch);
        let s = lexer.start_state(scratch, &g.terms, &g.limits)?;
        return Ok(Some((s, true)));
    }
    Ok(Some((n, false)))
}

impl Matcher {
    /// A matcher at the start of the grammar.
    pub fn new(g: &CompiledGrammar) -> Result<Matcher, Error> {
        let inner = &g.inner;
        let mut cache = g.take_cache().unwrap_or_else(|| Box::new(MatcherCache::new()));
        let mut chart = Chart::new(&inner.cfg);
        chart.init(&inner.cfg, &inner.limits)?;
        let mut scratch = Vec::new();
        chart.expected_terminals(&inner.cfg, &mut scratch);
        let lex = cache.lexer.start_state(&scratch, &inner.terms, &inner.limits)?;
        Ok(Matcher {
            g: g.clone(),
            cache,
            chart,
            lex,
            pending: false,
            frames: Vec::new(),
            tokens: Vec::new(),
            initial: Frame { rows: 1, lex, pending: false },
            stopped: false,
            error: None,
            scratch,
            walk: Vec::new(),
        })
    }

    /// The compiled grammar.
    pub fn grammar(&self) -> &CompiledGrammar {
        &self.g
    }

    /// Back to the start, clearing any error.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.error = None;
        self.stopped = false;
        self.restore(0, self.initial);
        self.tokens.clear();
        Ok(())
    }

    /// The error that stopped the matcher, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Number of tokens consumed (including a final EOS).
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }

    fn check(&self) -> Result<(), Error> {
        match &self.error {
            Some(e) => Err(Error::new(ErrorKind::Stopped(Box::new(e.clone())))),
            None => Ok(()),
        }
    }

    fn restore(&mut self, frame_index: usize, f: Frame) {
        self.chart.truncate(f.rows as usize);
        self.lex = f.lex;
        self.pending = f.pending;
        self.frames.truncate(frame_index);
    }

    /// Consumes one byte; false (state unchanged) if not allowed.
    fn consume_byte(&mut self, b: u8) -> Result<bool, Error> {
        let frame = Frame { rows: self.chart.num_rows() as u32, lex: self.lex, pending: self.pending };
        let g = self.g.inner.clone();
        let cache = &mut self.cache;
        match advance(&g, &mut self.chart, &mut cache.lexer, &mut self.scratch, self.lex, b)? {
            Some((n, fresh)) => {
                self.lex = n;
                self.pending = !fresh;
                self.frames.push(frame);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn consume_bytes_inner(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        let start = self.frames.len();
        for &b in bytes {
            match self.consume_byte(b) {
                Ok(true) => {}
                other => {
                    if let Some(f) = self.frames.get(start).copied() {
                        self.restore(start, f);
                    }
                    return other;
                }
            }
        }
        Ok(true)
    }

    /// Whether the input so far is a complete sentence of the grammar.
    pub fn is_accepting(&mut self) -> Result<bool, Error> {
        self.check()?;
        self.chart.items_created = 0;
        if self.stopped {
            return Ok(true);
        }
        let r = self.accepting_now();
        self.fail_on_error(r)
    }

    fn accepting_now(&mut self) -> Result<bool, Error> {
        if !self.pending {
            return Ok(self.chart.is_accepting());
        }
        let g = self.g.inner.clone();
        let lex = self.lex;
        let cache = &mut self.cache;
        if cache.lexer.accepting(lex).is_empty() {
            return Ok(false);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(cache.lexer.accepting(lex));
        let rows = self.chart.num_rows();
        let ok = self.chart.scan(&g.cfg, &self.scratch, &g.limits)? && self.chart.is_accepting();
        self.chart.truncate(rows);
        Ok(ok)
    }

    /// Whether generation must stop: EOS was consumed, or the grammar accepts
    /// and allows no further byte.
    pub fn is_stopped(&mut self) -> Result<bool, Error> {
        self.check()?;
        self.chart.items_created = 0;
        let r = self.accepting_now();
        let accepting = self.fail_on_error(r)?;
        Ok(self.stopped || (self.lex == LEX_DEAD && accepting))
    }

    /// Consumes a token; an error if the grammar does not allow it, after
    /// which the matcher stays in the error state until [`Matcher::reset`].
    pub fn consume_token(&mut self, t: TokenId) -> Result<(), Error> {
        self.check()?;
        match self.try_consume_token(t) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let vocab = &self.g.inner.vocab;
                let e = Error::new(ErrorKind::TokenRejected {
                    token: t,
                    text: String::from_utf8_lossy(vocab.token_bytes(t)).into_owned(),
                    position: self.tokens.len(),
                });
                self.error = Some(e.clone());
                Err(e)
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Consumes tokens in order (see [`Matcher::consume_token`]).
    pub fn consume_tokens(&mut self, tokens: &[TokenId]) -> Result<(), Error> {
        tokens.iter().try_for_each(|&t| self.consume_token(t))
    }

    /// Consumes the token if the grammar allows it and returns whether it
    /// did; a rejected token leaves the state unchanged and is not an error.
    pub fn try_consume_token(&mut self, t: TokenId) -> Result<bool, Error> {
        self.check()?;
        self.chart.items_created = 0;
        let r = self.try_consume_token_inner(t);
        self.fail_on_error(r)
    }

    /// Records an error as the matcher's error state (the state itself was
    /// left as before the failed call).
    fn fail_on_error<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &r {
            if self.error.is_none() && !matches!(e.kind(), ErrorKind::TokenOutOfRange { .. }) {
                self.error = Some(e.clone());
            }
        }
        r
    }

    fn try_consume_token_inner(&mut self, t: TokenId) -> Result<bool, Error> {
        let vocab = self.g.inner.vocab.clone();
        if t as usize >= vocab.len() {
            return Err(Error::new(ErrorKind::TokenOutOfRange { token: t, vocab_size: vocab.len() }));
        }
        if self.stopped {
            return Ok(false);
        }
        if vocab.eos().contains(&t) {
            if self.accepting_now()? {
                self.tokens.push(TokMark { frames: self.frames.len(), eos: true });
                self.stopped = true;
                return Ok(true);
            }
            return Ok(false);
        }
        if vocab.is_special(t) {
            return Ok(false);
        }
        let start = self.frames.len();
        if self.consume_bytes_inner(vocab.token_bytes(t))? {
            self.tokens.push(TokMark { frames: start, eos: false });
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Consumes raw bytes as one rollback unit if the grammar allows all of
    /// them; returns whether it did (state unchanged otherwise).
    pub fn try_consume_bytes(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        self.check()?;
        self.chart.items_created = 0;
        let r = self.try_consume_bytes_inner(bytes);
        self.fail_on_error(r)
    }

    fn try_consume_bytes_inner(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        if self.stopped {
            return Ok(false);
        }
        let start = self.frames.len();
        if self.consume_bytes_inner(bytes)? {
            self.tokens.push(TokMark { frames: start, eos: false });
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Undoes the last `n` consumed tokens (or byte units).
    pub fn rollback(&mut self, n: usize) -> Result<(), Error> {
        self.check()?;
        if n > self.tokens.len() {
            return Err(Error::grammar(format!(
                "cannot roll back {n} tokens: only {} were consumed",
                self.tokens.len()
            )));
        }
        for _ in 0..n {
            let m = self.tokens.pop().expect("n <= tokens.len()");
            if m.eos {
                self.stopped = false;
            } else if let Some(f) = self.frames.get(m.frames).copied() {
                self.restore(m.frames, f);
            }
        }
        Ok(())
    }

    /// Writes the set of allowed tokens into `mask` (bit `t % 32` of word
    /// `t / 32` is set iff token `t` is allowed). EOS tokens are allowed
    /// exactly when the grammar accepts; other special tokens never are.
    pub fn compute_mask(&mut self, mask: &mut [u32]) -> Result<(), Error> {
        self.check()?;
        let g = self.g.inner.clone();
        let words = g.vocab.mask_words();
        if mask.len() != words {
            return Err(Error::new(ErrorKind::MaskLength { expected: words, actual: mask.len() }));
        }
        mask.iter_mut().for_each(|w| *w = 0);
        if self.stopped {
            return Ok(());
        }
        self.chart.items_created = 0;
        let rows = self.chart.num_rows();
        let r = self.mask_inner(&g, mask);
        self.chart.truncate(rows);
        self.fail_on_error(r)?;
        let r = self.accepting_now();
        if self.fail_on_error(r)? {
            for &t in g.vocab.eos() {
                mask[t as usize / 32] |= 1 << (t % 32);
            }
        }
        Ok(())
    }

    /// A freshly allocated mask (see [`Matcher::compute_mask`]).
    pub fn compute_mask_vec(&mut self) -> Result<Vec<u32>, Error> {
        let mut m = vec![0u32; self.g.mask_words()];
        self.compute_mask(&mut m)?;
        Ok(m)
    }

    fn mask_inner(&mut self, g: &Inner, mask: &mut [u32]) -> Result<(), Error> {
        let entry = self.state_masks(g, self.lex)?;
        mask.copy_from_slice(&entry.allowed);
        self.process_boundaries(g, &entry.boundaries, mask, 0)
    }

    /// Adds the tokens that cross a lexeme boundary.
    fn process_boundaries(
        &mut self,
        g: &Inner,
        boundaries: &[(u32, LexState)],
        mask: &mut [u32],
        depth: usize,
    ) -> Result<(), Error> {
        let trie = &g.trie;
        // Boundaries are sorted by lexer state: the lexeme that ends, and so
        // the parser row after it, is the same for a whole group.
        for group in boundaries.chunk_by(|a, b| a.1 == b.1) {
            let p = group[0].1;
            let rows = self.chart.num_rows();
            let cache = &mut self.cache;
            self.scratch.clear();
            self.scratch.extend_from_slice(cache.lexer.accepting(p));
            if self.chart.scan(&g.cfg, &self.scratch, &g.limits)? {
                self.chart.expected_terminals(&g.cfg, &mut self.scratch);
                let s = cache.lexer.start_state(&self.scratch, &g.terms, &g.limits)?;
                for &(node, _) in group {
                    let node = node as usize;
                    if node == 0 && depth == 0 {
                        self.root_boundary(g, p, s, mask, depth)?;
                        continue;
                    }
                    if depth >= MAX_BOUNDARY_DEPTH {
                        // deep nesting of boundaries inside one token: walk
                        let mut c = node + 1;
                        let end = trie.end(node);
                        while c < end {
                            if self.cache.lexer.step(p, trie.byte(c), &g.terms, &g.limits)? == LEX_DEAD {
                                self.walk_subtree(g, c, s, mask)?;
                            }
                            c = trie.end(c);
                        }
                        continue;
                    }
                    let sub = self.sub_mask(g, p, s, node)?;
                    for &t in sub.tokens.iter() {
                        mask[t as usize / 32] |= 1 << (t % 32);
                    }
                    self.process_boundaries(g, &sub.boundaries, mask, depth + 1)?;
                }
            }
            self.chart.truncate(rows);
        }
        Ok(())
    }

    /// The tokens below `node` whose next byte the lexeme in state `p` cannot
    /// take, when a new lexeme starts there in state `s`: those that stay in
    /// the new lexeme, and the boundaries inside. Depends on lexer states
    /// only, so it is cached.
    fn sub_mask(&mut self, g: &Inner, p: LexState, s: LexState, node: usize) -> Result<Arc<SubMask>, Error> {
        let key = (p, s, node as u32);
        if let Some(m) = self.cache.subs.get(&key) {
            return Ok(m.clone());
        }
        let trie = &g.trie;
        let lexer = &mut self.cache.lexer;
        let base = trie.depth(node);
        let mut tokens = Vec::new();
        let mut boundaries: Vec<(u32, LexState)> = Vec::new();
        let span = trie.max_depth() + 1 - base;
        let mut lex_at: Vec<LexState> = vec![LEX_DEAD; span];
        let mut node_at: Vec<u32> = vec![0; span];
        let mut recorded: Vec<bool> = vec![false; span];
        lex_at[0] = s;
        node_at[0] = node as u32;
        let end = trie.end(node);
        let mut i = node + 1;
        while i < end {
            let d = trie.depth(i) - base;
            if d == 1 && lexer.step(p, trie.byte(i), &g.terms, &g.limits)? != LEX_DEAD {
                i = trie.end(i);
                continue;
            }
            let parent = lex_at[d - 1];
            let nx = lexer.step(parent, trie.byte(i), &g.terms, &g.limits)?;
            if nx == LEX_DEAD {
                if d > 1 && !recorded[d - 1] && !lexer.accepting(parent).is_empty() {
                    recorded[d - 1] = true;
                    boundaries.push((node_at[d - 1], parent));
                }
                i = trie.end(i);
                continue;
            }
            lex_at[d] = nx;
            node_at[d] = i as u32;
            recorded[d] = false;
            tokens.extend_from_slice(trie.tokens(i));
            i += 1;
        }
        boundaries.sort_unstable_by_key(|&(n, st)| (st, n));
        let sub = Arc::new(SubMask { tokens: tokens.into(), boundaries: boundaries.into() });
        let bytes = sub.tokens.len() * 4 + sub.boundaries.len() * 8 + 64;
        if self.cache.mask_bytes + bytes > g.limits.max_mask_cache_bytes {
            self.cache.clear_masks();
        }
        self.cache.mask_bytes += bytes;
        self.cache.subs.insert(key, sub.clone());
        Ok(sub)
    }

    /// The lexeme in progress (state `p`) may end before the token's first
    /// byte, and then a new lexeme starts in state `s`. Tokens whose first
    /// byte `p` cannot take are exactly those a matcher at `s` would allow,
    /// so `s`'s cached bits are reused instead of walking the whole trie.
    fn root_boundary(
        &mut self,
        g: &Inner,
        p: LexState,
        s: LexState,
        mask: &mut [u32],
        depth: usize,
    ) -> Result<(), Error> {
        let rm = match self.cache.roots.get(&(p, s)) {
            Some(rm) => rm.clone(),
            None => self.build_root_mask(g, p, s)?,
        };
        for (m, e) in mask.iter_mut().zip(rm.allowed.iter()) {
            *m |= *e;
        }
        self.process_boundaries(g, &rm.boundaries, mask, depth + 1)
    }

    /// `s`'s cached bits and boundaries minus the tokens whose first byte
    /// `p` can take (cached per `(p, s)`).
    fn build_root_mask(&mut self, g: &Inner, p: LexState, s: LexState) -> Result<Arc<StateMasks>, Error> {
        let trie = &g.trie;
        let mut live = [false; 256];
        for b in 0..=255u8 {
            live[b as usize] = self.cache.lexer.step(p, b, &g.terms, &g.limits)? != LEX_DEAD;
        }
        let es = self.state_masks(g, s)?;
        let mut allowed = es.allowed.to_vec();
        let mut c = 1;
        while c < trie.num_nodes() {
            if live[trie.byte(c) as usize] {
                for &t in trie.subtree_tokens(c) {
                    allowed[t as usize / 32] &= !(1 << (t % 32));
                }
            }
            c = trie.end(c);
        }
        let boundaries: Vec<(u32, LexState)> =
            es.boundaries.iter().copied().filter(|&(n, _)| !live[trie.first_byte(n as usize) as usize]).collect();
        let mut by_node = boundaries.clone();
        by_node.sort_unstable();
        let rm =
            Arc::new(StateMasks { allowed: allowed.into(), boundaries: boundaries.into(), by_node: by_node.into() });
        let bytes = rm.allowed.len() * 4 + rm.boundaries.len() * 16 + 64;
        if self.cache.mask_bytes + bytes > g.limits.max_mask_cache_bytes {
            self.cache.clear_masks();
        }
        self.cache.mask_bytes += bytes;
        self.cache.roots.insert((p, s), rm.clone());
        Ok(rm)
    }

    /// Walks the subtree of node `c` with the parser, `s` being the lexer
    /// state before `c`'s byte; sets the bits of the tokens reached.
    fn walk_subtree(&mut self, g: &Inner, c: usize, s: LexState, mask: &mut [u32]) -> Result<(), Error> {
        let trie = &g.trie;
        let base_rows = self.chart.num_rows() as u32;
        let base_depth = trie.depth(c);
        let end = trie.end(c);
        let mut walk = std::mem::take(&mut self.walk);
        walk.clear();
        let cache = &mut self.cache;
        let mut i = c;
        while i < end {
            let d = trie.depth(i) - base_depth;
            let (prows, plex) = if d == 0 { (base_rows, s) } else { walk[d - 1] };
            self.chart.truncate(prows as usize);
            match advance(g, &mut self.chart, &mut cache.lexer, &mut self.scratch, plex, trie.byte(i))? {
                None => {
                    i = trie.end(i);
                }
                Some((n, _)) => {
                    walk.truncate(d);
                    walk.push((self.chart.num_rows() as u32, n));
                    for &t in trie.tokens(i) {
                        mask[t as usize / 32] |= 1 << (t % 32);
                    }
                    i += 1;
                }
            }
        }
        self.chart.truncate(base_rows as usize);
        self.walk = walk;
        Ok(())
    }

    /// The cached token bits for lexer state `s`, computed on first use.
    ///
    /// The cold path walks the trie from `s`, but a large subtree reached in
    /// a lexer state some earlier walk reached it in is copied from that
    /// walk (`MatcherCache::subtrees`) instead of walked.
    fn state_masks(&mut self, g: &Inner, s: LexState) -> Result<Arc<StateMasks>, Error> {
        let cache = &mut self.cache;
        if let Some(Some(m)) = cache.masks.get(s as usize) {
            return Ok(m.clone());
        }
        let trie = &g.trie;
        let mut allowed = vec![0u32; g.vocab.mask_words()];
        let mut boundaries: Vec<(u32, LexState)> = Vec::new();
        let depth = trie.max_depth() + 1;
        let mut lex_at: Vec<LexState> = vec![LEX_DEAD; depth];
        let mut node_at: Vec<u32> = vec![0; depth];
        let mut recorded: Vec<bool> = vec![false; depth];
        // large nodes walked here (not copied): memoized afterwards
        let mut walked: Vec<(LexState, u32)> = Vec::new();
        lex_at[0] = s;
        let n = trie.num_nodes();
        let mut i = 1;
        while i < n {
            let d = trie.depth(i);
            let p = lex_at[d - 1];
            let nx = cache.lexer.step(p, trie.byte(i), &g.terms, &g.limits)?;
            if nx == LEX_DEAD {
                if !recorded[d - 1] && !cache.lexer.accepting(p).is_empty() {
                    recorded[d - 1] = true;
                    boundaries.push((node_at[d - 1], p));
                }
                i = trie.end(i);
                continue;
            }
            if trie.subtree_len(i) >= MEMO_MIN_TOKENS {
                if let Some(src) = cache.subtrees.get(&(nx, i as u32)) {
                    for &t in trie.subtree_tokens(i) {
                        let (w, bit) = (t as usize / 32, 1u32 << (t % 32));
                        allowed[w] |= src.allowed[w] & bit;
                    }
                    let end = trie.end(i) as u32;
                    let lo = src.by_node.partition_point(|&(node, _)| node < i as u32);
                    let hi = src.by_node.partition_point(|&(node, _)| node < end);
                    boundaries.extend_from_slice(&src.by_node[lo..hi]);
                    i = end as usize;
                    continue;
                }
                walked.push((nx, i as u32));
            }
            lex_at[d] = nx;
            node_at[d] = i as u32;
            recorded[d] = false;
            for &t in trie.tokens(i) {
                allowed[t as usize / 32] |= 1 << (t % 32);
            }
            i += 1;
        }
        let mut by_node = boundaries.clone();
        by_node.sort_unstable();
        boundaries.sort_unstable_by_key(|&(node, p)| (p, node));
        let entry =
            Arc::new(StateMasks { allowed: allowed.into(), boundaries: boundaries.into(), by_node: by_node.into() });
        let bytes = entry.allowed.len() * 4 + entry.boundaries.len() * 16 + walked.len() * 24;
        if cache.mask_bytes + bytes > g.limits.max_mask_cache_bytes {
            cache.clear_masks();
        }
        cache.mask_bytes += bytes;
        if cache.masks.len() <= s as usize {
            cache.masks.resize(s as usize + 1, None);
        }
        cache.masks[s as usize] = Some(entry.clone());
        for key in walked {
            cache.subtrees.insert(key, entry.clone());
        }
        Ok(entry)
    }

    /// The bytes the grammar forces next (empty if there is a choice,
    /// including the choice to stop).
    pub fn forced_bytes(&mut self) -> Result<Vec<u8>, Error> {
        self.check()?;
        self.chart.items_created = 0;
        let mut out = Vec::new();
        if self.stopped {
            return Ok(out);
        }
        let start = self.frames.len();
        let snapshot = Frame { rows: self.chart.num_rows() as u32, lex: self.lex, pending: self.pending };
        let g = self.g.inner.clone();
        let r = self.forced_bytes_inner(&g, &mut out);
        self.restore(start, snapshot);
        self.fail_on_error(r)?;
        Ok(out)
    }

    fn forced_bytes_inner(&mut self, g: &Inner, out: &mut Vec<u8>) -> Result<(), Error> {
        while out.len() < g.limits.max_forced_bytes && !self.accepting_now()? {
            let Some(b) = self.only_next_byte(g)? else { break };
            if !self.consume_byte(b)? {
                break;
            }
            out.push(b);
        }
        Ok(())
    }

    /// The single byte that may come next, if exactly one may.
    fn only_next_byte(&mut self, g: &Inner) -> Result<Option<u8>, Error> {
        let lex = self.lex;
        let cache = &mut self.cache;
        let mut found: Option<u8> = None;
        let mut count = 0;
        let mut live = [false; 256];
        for b in 0..=255u8 {
            if cache.lexer.step(lex, b, &g.terms, &g.limits)? != LEX_DEAD {
                live[b as usize] = true;
                count += 1;
                found = Some(b);
            }
        }
        if count <= 1 && !cache.lexer.accepting(lex).is_empty() {
            self.scratch.clear();
            self.scratch.extend_from_slice(cache.lexer.accepting(lex));
            let rows = self.chart.num_rows();
            if self.chart.scan(&g.cfg, &self.scratch, &g.limits)? {
                self.chart.expected_terminals(&g.cfg, &mut self.scratch);
                let s = cache.lexer.start_state(&self.scratch, &g.terms, &g.limits)?;
                for b in 0..=255u8 {
                    if !live[b as usize] && cache.lexer.step(s, b, &g.terms, &g.limits)? != LEX_DEAD {
                        count += 1;
                        found = Some(b);
                    }
                }
            }
            self.chart.truncate(rows);
        }
        Ok(if count == 1 { found } else { None })
    }

    /// The tokens that encode the forced bytes: a greedy longest-match
    /// tokenization, minus a last token that a longer token could replace
    /// once more bytes are known — one that spells the forced bytes' end
    /// and then a continuation the grammar allows (after `"urgency` the
    /// token `":` is forced when the value is a number, but not when it is
    /// a string, where `":"` may follow).
    pub fn forced_tokens(&mut self) -> Result<Vec<TokenId>, Error> {
        let bytes = self.forced_bytes()?;
        let g = self.g.inner.clone();
        let (mut out, pos) = greedy_tokens(&g.trie, &bytes, true);
        if pos < bytes.len() {
            // A held-back last token is forced too when no longer token the
            // grammar allows could replace it.
            let (rest, end) = greedy_tokens(&g.trie, &bytes[pos..], false);
            if let ([t], true) = (rest.as_slice(), pos + end == bytes.len()) {
                if let Some(n) = g.trie.find(g.vocab.token_bytes(*t)) {
                    if !self.may_extend_after(&g, &bytes, n)? {
                        out.push(*t);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The fewest bytes any continuation needs before the grammar accepts
    /// (0 when it accepts now). A lower bound: it counts each remaining
    /// lexeme at its shortest match; [`Matcher::shortest_completion`] builds
    /// and checks bytes that reach it. Saturates at `u64::MAX` when nothing
    /// can complete the input.
    ///
    /// Cost: the parse rows added since the last call, plus the top row.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use formwork_grammar::{gbnf, CompiledGrammar, Limits, Vocabulary};
    /// let g = gbnf::parse(r#"root ::= "[" ( "ab" ( "," "ab" )* )? "]""#)?;
    /// let g = CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default())?;
    /// let mut m = g.matcher()?;
    /// m.consume_tokens(&[b'[' as u32, b'a' as u32, b'b' as u32, b',' as u32])?;
    /// assert_eq!(m.min_completion_bytes()?, 3); // `ab]`
    /// let c = m.shortest_completion(64)?.expect("a completion exists");
    /// assert_eq!(c.bytes, b"ab]");
    /// # Ok::<(), formwork_grammar::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The matcher's error state.
    pub fn min_completion_bytes(&mut self) -> Result<u64, Error> {
        self.check()?;
        if self.stopped {
            return Ok(0);
        }
        Ok(self.completion_start().0)
    }

    /// The shortest bytes after which the grammar accepts, with their
    /// tokens, if they are at most `max_bytes` long and the matcher accepts
    /// them. `None` when no completion fits `max_bytes`, when the vocabulary
    /// cannot spell the bytes, or when the lexer would read the shortest
    /// lexemes differently (maximal munch gluing two of them): the result is
    /// always checked, never assumed. The state is unchanged.
    ///
    /// Deterministic: among equally short choices, the first rule and the
    /// smallest byte win.
    ///
    /// # Errors
    ///
    /// The matcher's error state; a limit exceeded while checking.
    pub fn shortest_completion(&mut self, max_bytes: usize) -> Result<Option<Completion>, Error> {
        self.check()?;
        if self.stopped {
            return Ok(Some(Completion { bytes: Vec::new(), tokens: Vec::new() }));
        }
        let (cost, start) = self.completion_start();
        let Some(start) = start else { return Ok(None) };
        if cost > max_bytes as u64 {
            return Ok(None);
        }
        let g = self.g.inner.clone();
        let Some(bytes) = self.completion_bytes(&g, start, max_bytes) else { return Ok(None) };
        // check it on the real lexer and parser
        self.chart.items_created = 0;
        let mark = self.frames.len();
        let snapshot = Frame { rows: self.chart.num_rows() as u32, lex: self.lex, pending: self.pending };
        let r = self.accepts_after(&bytes);
        self.restore(mark, snapshot);
        if !self.fail_on_error(r)? {
            return Ok(None);
        }
        let (tokens, covered) = greedy_tokens(&g.trie, &bytes, false);
        if covered < bytes.len() {
            return Ok(None);
        }
        Ok(Some(Completion { bytes, tokens }))
    }

    /// Consumes `bytes` (left consumed: the caller restores) and tells
    /// whether the grammar then accepts.
    fn accepts_after(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        Ok(self.consume_bytes_inner(bytes)? && self.accepting_now()?)
    }

    /// The cost of the shortest completion and where it starts (`None`
    /// when nothing completes the input).
    fn completion_start(&mut self) -> (u64, Option<CompletionStart>) {
        let g = self.g.inner.clone();
        let table = g.completion();
        self.chart.ensure_need(table);
        let mut best = (INF, None);
        let item_cost = |chart: &Chart, dot: u32, origin: u32| {
            table.rest(dot).saturating_add(chart.parent_need(table, origin, table.lhs(dot)))
        };
        if !self.pending {
            for (dot, origin) in self.chart.top_dots() {
                let c = item_cost(&self.chart, dot, origin);
                if c < best.0 {
                    best = (c, Some(CompletionStart { pending: None, dot, origin }));
                }
            }
            return best;
        }
        for &(t, s) in self.cache.lexer.members(self.lex) {
            let d = table.term_dist(t, s);
            if d == INF {
                continue;
            }
            for (dot, origin) in self.chart.top_dots() {
                if decode(g.cfg.dots[dot as usize]) == Next::Term(t) {
                    let c = d.saturating_add(item_cost(&self.chart, dot + 1, origin));
                    if c < best.0 {
                        best = (c, Some(CompletionStart { pending: Some((t, s)), dot: dot + 1, origin }));
                    }
                }
            }
        }
        best
    }

    /// The bytes of the shortest completion from `start`: finish the
    /// lexeme in progress, the rest of the item's rule, then of each parent
    /// up to the start symbol.
    fn completion_bytes(&self, g: &Inner, start: CompletionStart, max: usize) -> Option<Vec<u8>> {
        let table = g.completion();
        let mut out = Vec::new();
        if let Some((t, s)) = start.pending {
            if !table.push_term(&g.terms, t, s, &mut out, max) {
                return None;
            }
        }
        let (mut dot, mut origin) = (start.dot, start.origin);
        // every step goes to a lower row or along the row's acyclic choice
        // of entries, so the number of waiting entries bounds the walk
        for _ in 0..=self.chart.num_waiting() {
            if !table.push_rest(&g.cfg, &g.terms, dot, &mut out, max) {
                return None;
            }
            let lhs = table.lhs(dot);
            if lhs == table.aug() {
                return Some(out);
            }
            let (d, o) = self.chart.parent_item(origin, lhs)?;
            (dot, origin) = (d + 1, o);
        }
        None
    }

    /// Whether a token in the trie below node `n` (whose bytes end the
    /// forced bytes `forced`) spells a continuation the grammar allows after
    /// `forced`: then the model may pick that longer token instead, and the
    /// token at `n` is not forced. A walk over `n`'s subtree from the state
    /// after `forced`, pruned at the first byte the grammar rejects; the
    /// state is restored afterwards.
    fn may_extend_after(&mut self, g: &Inner, forced: &[u8], n: usize) -> Result<bool, Error> {
        let start = self.frames.len();
        let snapshot = Frame { rows: self.chart.num_rows() as u32, lex: self.lex, pending: self.pending };
        let r = self.may_extend_inner(g, forced, n);
        self.restore(start, snapshot);
        self.fail_on_error(r)
    }

    fn may_extend_inner(&mut self, g: &Inner, forced: &[u8], n: usize) -> Result<bool, Error> {
        if !self.consume_bytes_inner(forced)? {
            // Cannot happen (the bytes were just found forced); answering
            // "may extend" only forces fewer tokens, which is always safe.
            return Ok(true);
        }
        let trie = &g.trie;
        let base = self.frames.len();
        let top = trie.depth(n);
        let mut i = n + 1;
        while i < trie.end(n) {
            // Back to the state after the bytes of `i`'s parent.
            let level = base + (trie.depth(i) - top - 1);
            if let Some(f) = self.frames.get(level).copied() {
                self.restore(level, f);
            }
            if !self.consume_byte(trie.byte(i))? {
                i = trie.end(i);
                continue;
            }
            if !trie.tokens(i).is_empty() {
                return Ok(true);
            }
            i += 1;
        }
        Ok(false)
    }
}
