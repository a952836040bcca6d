//! The brute-force mask oracle and small mask helpers.
//!
//! `compute_mask` walks the token trie with per-lexer-state caches; the
//! oracle instead tries every token id, one at a time, on a copy of the
//! matcher (`try_consume_token`, undone with `rollback(1)` when it succeeds).
//! The two must agree bit for bit, EOS and special tokens included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use formwork_grammar::{Error, Matcher, TokenId, Vocabulary};

/// Whether token `t` is set in `mask`.
pub fn bit(mask: &[u32], t: TokenId) -> bool {
    mask[t as usize / 32] >> (t % 32) & 1 == 1
}

/// Sets token `t` in `mask`.
pub fn set_bit(mask: &mut [u32], t: TokenId) {
    mask[t as usize / 32] |= 1 << (t % 32);
}

/// The tokens set in `mask`.
pub fn allowed(mask: &[u32], vocab_len: usize) -> Vec<TokenId> {
    (0..vocab_len as TokenId).filter(|&t| bit(mask, t)).collect()
}

/// The mask the matcher's state should produce, found by trying every token.
///
/// Each token is tried on a copy of `m` (a token that is accepted is undone
/// with `rollback(1)` before the next one). Vocabularies of more than
/// [`PRUNE_ABOVE`] tokens use [`oracle_mask_pruned`].
pub fn oracle_mask(m: &Matcher) -> Result<Vec<u32>, String> {
    if m.grammar().vocab().len() > PRUNE_ABOVE {
        return oracle_mask_pruned(m);
    }
    let e = |e: Error| format!("try_consume_token failed: {e}");
    let mut w = m.clone();
    let n = w.grammar().vocab().len();
    let mut mask = vec![0u32; w.grammar().mask_words()];
    for t in 0..n as TokenId {
        if w.try_consume_token(t).map_err(&e)? {
            set_bit(&mut mask, t);
            w.rollback(1).map_err(&e)?;
        }
    }
    Ok(mask)
}

/// Above this many tokens the oracle prunes by prefixes.
pub const PRUNE_ABOVE: usize = 10_000;

/// The non-special tokens of a vocabulary sorted by their bytes, with the
/// bytes laid out contiguously in that order (so a walk over them reads
/// memory sequentially).
struct Sorted {
    ids: Vec<TokenId>,
    /// `bytes[offsets[i]..offsets[i + 1]]` are the bytes of `ids[i]`.
    offsets: Vec<usize>,
    bytes: Vec<u8>,
}

impl Sorted {
    fn get(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// Sorted vocabularies by (address, length).
type SortedCache = Mutex<HashMap<(usize, usize), Arc<Sorted>>>;

/// [`Sorted`] for a vocabulary, cached (the large vocabularies are statics).
fn sorted(vocab: &Vocabulary) -> Arc<Sorted> {
    static CACHE: OnceLock<SortedCache> = OnceLock::new();
    let key = (vocab as *const Vocabulary as usize, vocab.len());
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| {
            let mut ids: Vec<TokenId> = (0..vocab.len() as TokenId).filter(|&t| !vocab.is_special(t)).collect();
            ids.sort_by(|&a, &b| vocab.token_bytes(a).cmp(vocab.token_bytes(b)));
            let mut offsets = vec![0];
            let mut bytes = Vec::new();
            for &t in &ids {
                bytes.extend_from_slice(vocab.token_bytes(t));
                offsets.push(bytes.len());
            }
            Arc::new(Sorted { ids, offsets, bytes })
        })
        .clone()
}

/// [`oracle_mask`] for large vocabularies: still one `try_consume_token` per
/// token, except that a token whose bytes extend a refused token's bytes is
/// refused without trying — consuming is byte by byte, so a refused prefix
/// cannot become acceptable by appending bytes. Tokens are visited in byte
/// order so the refused prefixes form a stack. One inferred refusal in 64 is
/// tried anyway, so a matcher that broke that rule would still be caught.
/// Special tokens (EOS included) are always tried.
pub fn oracle_mask_pruned(m: &Matcher) -> Result<Vec<u32>, String> {
    let e = |e: Error| format!("try_consume_token failed: {e}");
    let mut w = m.clone();
    let vocab = m.grammar().vocab();
    let mut mask = vec![0u32; w.grammar().mask_words()];
    for t in (0..vocab.len() as TokenId).filter(|&t| vocab.is_special(t)) {
        if w.try_consume_token(t).map_err(&e)? {
            set_bit(&mut mask, t);
            w.rollback(1).map_err(&e)?;
        }
    }
    let sorted = sorted(vocab);
    // indexes (into `sorted`) of refused tokens, each a prefix of the next
    let mut refused: Vec<usize> = Vec::new();
    let mut inferred = 0usize;
    for (i, &t) in sorted.ids.iter().enumerate() {
        let b = sorted.get(i);
        while let Some(&p) = refused.last() {
            if b.starts_with(sorted.get(p)) {
                break;
            }
            refused.pop();
        }
        if let Some(&p) = refused.last() {
            inferred += 1;
            if inferred % 64 == 0 && w.try_consume_token(t).map_err(&e)? {
                return Err(format!(
                    "prefix closure broken: {} is refused but {} is accepted",
                    show_token(vocab, sorted.ids[p]),
                    show_token(vocab, t)
                ));
            }
            continue;
        }
        if w.try_consume_token(t).map_err(&e)? {
            set_bit(&mut mask, t);
            w.rollback(1).map_err(&e)?;
        } else {
            refused.push(i);
        }
    }
    Ok(mask)
}

/// A token for messages: `17 "ab"`.
pub fn show_token(vocab: &Vocabulary, t: TokenId) -> String {
    format!("{t} {:?}", String::from_utf8_lossy(vocab.token_bytes(t)))
}

/// Compares `compute_mask` with the oracle at the matcher's current state;
/// `Err` describes the difference.
pub fn check_mask_against_oracle(m: &mut Matcher) -> Result<(), String> {
    let got = m.compute_mask_vec().map_err(|e| format!("compute_mask failed: {e}"))?;
    let want = oracle_mask(m).map_err(|e| format!("oracle: {e}"))?;
    compare_masks(m.grammar().vocab(), &got, &want)
}

/// `Err` lists the tokens on which `got` (compute_mask) and `want` (oracle) differ.
pub fn compare_masks(vocab: &Vocabulary, got: &[u32], want: &[u32]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let mut extra = Vec::new();
    let mut missing = Vec::new();
    for t in 0..vocab.len() as TokenId {
        match (bit(got, t), bit(want, t)) {
            (true, false) => extra.push(t),
            (false, true) => missing.push(t),
            _ => {}
        }
    }
    let list = |v: &[TokenId]| {
        let mut s: Vec<String> = v.iter().take(6).map(|&t| show_token(vocab, t)).collect();
        if v.len() > 6 {
            s.push(format!("... {} in all", v.len()));
        }
        s.join(", ")
    };
    let mut msg = String::from("compute_mask differs from the oracle:");
    if !extra.is_empty() {
        msg.push_str(&format!(" allows refused tokens [{}];", list(&extra)));
    }
    if !missing.is_empty() {
        msg.push_str(&format!(" refuses accepted tokens [{}];", list(&missing)));
    }
    Err(msg)
}

/// With one token per byte: the forced bytes are the bytes taken while the
/// matcher is not accepting and its mask allows exactly one byte; the
/// matcher is stopped exactly when it accepts and allows no byte.
pub fn check_forced_by_bytes(m: &Matcher) -> Result<(), String> {
    let mut w = m.clone();
    let got = w.forced_bytes().map_err(|e| format!("forced_bytes failed: {e}"))?;
    let limit = w.grammar().limits().max_forced_bytes;
    let mut want = Vec::new();
    loop {
        let mask = w.compute_mask_vec().map_err(|e| format!("compute_mask failed: {e}"))?;
        let bytes: Vec<u8> = (0..=255u8).filter(|&b| bit(&mask, b as TokenId)).collect();
        let accepting = w.is_accepting().map_err(|e| format!("is_accepting failed: {e}"))?;
        if want.is_empty() {
            let stopped = w.is_stopped().map_err(|e| format!("is_stopped failed: {e}"))?;
            if stopped != (accepting && bytes.is_empty()) {
                return Err(format!(
                    "is_stopped() is {stopped}, but accepting={accepting} and {} bytes allowed",
                    bytes.len()
                ));
            }
        }
        if accepting || bytes.len() != 1 || want.len() == limit {
            break;
        }
        want.push(bytes[0]);
        w.consume_token(bytes[0] as TokenId).map_err(|e| format!("consuming a forced byte failed: {e}"))?;
    }
    if got != want {
        return Err(format!(
            "forced_bytes() = {:?}, but byte by byte the forced bytes are {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        ));
    }
    Ok(())
}
