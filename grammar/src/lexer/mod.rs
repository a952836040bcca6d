//! The lexer: terminals as DFAs, combined lazily into lexer states.
//!
//! Where it sits: the parser tells the lexer which terminals it allows at the
//! current position (a set); the lexer runs only those, byte by byte, and
//! reports which terminals accept. It receives bytes from the matcher (when a
//! token is consumed) and from the token-trie walk (when a mask is computed).
//!
//! A lexer state is the set of `(terminal, DFA state)` pairs still alive. States
//! are interned and their transitions cached in a 256-wide table filled on
//! first use, so after warm-up one byte costs one table lookup. The number of
//! states is bounded by [`Limits::max_lexer_states`]: exceeding it is an error.
//!
//! Semantics: maximal munch. A byte that some alive terminal can take extends
//! the current lexeme; a byte that none can take ends it (if some terminal
//! accepts) and starts the next one. A state where a terminal accepts and no
//! terminal can go on ("must end") ends the lexeme at once.

pub(crate) mod dfa;
pub(crate) mod spec;

use crate::error::Error;
use crate::matcher::IntMap;
use crate::Limits;
pub(crate) use dfa::Dfa;

/// A lexer state id; 0 is dead.
pub(crate) type LexState = u32;
pub(crate) const LEX_DEAD: LexState = 0;
const UNKNOWN: u32 = u32::MAX;

/// The compiled terminals of a grammar: one DFA each (immutable, shared).
#[derive(Debug)]
pub(crate) struct Terminals {
    pub(crate) dfas: Vec<Dfa>,
    pub(crate) names: Vec<String>,
}

#[derive(Clone, Debug)]
struct StateInfo {
    members: Box<[(u32, u32)]>,
    accepting: Box<[u32]>,
    must_end: bool,
}

/// Per-matcher lazily-built lexer states and transitions.
#[derive(Clone, Debug)]
pub(crate) struct LexerCache {
    states: Vec<StateInfo>,
    trans: Vec<u32>,
    intern: IntMap<Box<[(u32, u32)]>, LexState>,
    starts: IntMap<Box<[u32]>, LexState>,
}

impl LexerCache {
    pub(crate) fn new() -> Self {
        LexerCache {
            states: vec![StateInfo { members: Box::new([]), accepting: Box::new([]), must_end: false }],
            trans: vec![LEX_DEAD; 256],
            intern: IntMap::default(),
            starts: IntMap::default(),
        }
    }

    fn intern(&mut self, members: Vec<(u32, u32)>, terms: &Terminals, limits: &Limits) -> Result<LexState, Error> {
        if members.is_empty() {
            return Ok(LEX_DEAD);
        }
        if let Some(&s) = self.intern.get(members.as_slice()) {
            return Ok(s);
        }
        if self.states.len() >= limits.max_lexer_states {
            return Err(Error::limit("max_lexer_states", limits.max_lexer_states, "building lexer states"));
        }
        let accepting: Vec<u32> =
            members.iter().filter(|&&(t, s)| terms.dfas[t as usize].is_accept(s)).map(|&(t, _)| t).collect();
        let can_continue = members.iter().any(|&(t, s)| terms.dfas[t as usize].has_live_transition(s));
        let id = self.states.len() as LexState;
        let members: Box<[(u32, u32)]> = members.into();
        self.states.push(StateInfo {
            members: members.clone(),
            must_end: !accepting.is_empty() && !can_continue,
            accepting: accepting.into(),
        });
        self.trans.extend(std::iter::repeat_n(UNKNOWN, 256));
        self.intern.insert(members, id);
        Ok(id)
    }

    /// The state at the start of a lexeme when `allowed` (sorted, deduped
    /// terminal ids) are allowed.
    pub(crate) fn start_state(
        &mut self,
        allowed: &[u32],
        terms: &Terminals,
        limits: &Limits,
    ) -> Result<LexState, Error> {
        if let Some(&s) = self.starts.get(allowed) {
            return Ok(s);
        }
        let members: Vec<(u32, u32)> =
            allowed.iter().map(|&t| (t, terms.dfas[t as usize].start())).filter(|&(_, s)| s != dfa::DEAD).collect();
        let s = self.intern(members, terms, limits)?;
        self.starts.insert(allowed.into(), s);
        Ok(s)
    }

    /// One byte.
    #[inline]
    pub(crate) fn step(&mut self, s: LexState, b: u8, terms: &Terminals, limits: &Limits) -> Result<LexState, Error> {
        let t = self.trans[s as usize * 256 + b as usize];
        if t != UNKNOWN {
            return Ok(t);
        }
        self.step_slow(s, b, terms, limits)
    }

    #[cold]
    fn step_slow(&mut self, s: LexState, b: u8, terms: &Terminals, limits: &Limits) -> Result<LexState, Error> {
        let members: Vec<(u32, u32)> = self.states[s as usize]
            .members
            .iter()
            .map(|&(t, ds)| (t, terms.dfas[t as usize].next(ds, b)))
            .filter(|&(_, ds)| ds != dfa::DEAD)
            .collect();
        let n = self.intern(members, terms, limits)?;
        self.trans[s as usize * 256 + b as usize] = n;
        Ok(n)
    }

    /// Terminals whose lexeme would be complete in this state.
    #[inline]
    pub(crate) fn accepting(&self, s: LexState) -> &[u32] {
        &self.states[s as usize].accepting
    }

    /// The `(terminal, DFA state)` pairs alive in `s`.
    pub(crate) fn members(&self, s: LexState) -> &[(u32, u32)] {
        &self.states[s as usize].members
    }

    /// Whether a terminal accepts and none can continue.
    #[inline]
    pub(crate) fn must_end(&self, s: LexState) -> bool {
        self.states[s as usize].must_end
    }
}
