//! Runs the declarative cases of `grammar/testdata/*.toml` (format:
//! `grammar/testdata/README.md`) under every test vocabulary.
//!
//! Every `*.toml` file in the directory is picked up at run time. For each
//! case and vocabulary:
//!
//! * each `accept` string is spelled greedily and in [`Policy::random_splits`]
//!   random ways (fixed seeds), fed token by token — before each token the
//!   mask must allow it, and agree with `try_consume_token` — and the end must
//!   be accepting with every EOS token allowed (and consuming EOS stops);
//! * each `reject` string must fail: a token refused (and not in the mask) or
//!   not accepting at the end (and EOS not in the mask);
//! * each `incomplete` string must be fed without a refusal and not accept;
//! * each `forced` entry: after `after`, `forced_bytes()` is exactly `bytes`,
//!   `forced_tokens()` spells a prefix of it and is accepted token by token,
//!   and every token the mask allows agrees with the forced bytes;
//! * at sampled states the mask is compared with the brute-force oracle
//!   (every token tried on a copy of the matcher), bit for bit.
//!
//! Strings a vocabulary cannot spell are skipped for that vocabulary (the
//! tiny one spells few; SmolLM2 has no token for 21 byte values).
//!
//! Failures are collected over all cases and reported at once, one line per
//! failure: `<file-stem>/<name> [vocab]: what went wrong`. Set
//! `FORMWORK_TEST_FILTER=<substring>` to run only the cases whose name
//! contains it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use formwork_grammar::ir::Grammar;
use formwork_grammar::{CompiledGrammar, Limits, Matcher, TokenId, Vocabulary};

use crate::common::oracle::check_forced_by_bytes;
use crate::common::{self, bit, check_mask_against_oracle, show_token, Split, TestVocab, XorShift};

/// One `[[test]]` table.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    regex: Option<String>,
    choices: Option<Vec<String>>,
    gbnf: Option<String>,
    gbnf_file: Option<String>,
    lark: Option<String>,
    lark_file: Option<String>,
    /// A JSON Schema, as JSON text.
    schema: Option<String>,
    schema_file: Option<String>,
    #[serde(default)]
    schema_options: SchemaOptions,
    #[serde(default)]
    accept: Vec<String>,
    #[serde(default)]
    reject: Vec<String>,
    #[serde(default)]
    incomplete: Vec<String>,
    #[serde(default)]
    forced: Vec<Forced>,
    /// The shape must be refused (parse or compile error) with a message
    /// containing this text.
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Forced {
    after: String,
    bytes: String,
}

/// Options for `schema` cases (defaults: strict, flexible whitespace with
/// runs of at most 32, extra properties allowed).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaOptions {
    /// `"strict"` or `"lenient"`.
    mode: Option<String>,
    /// Longest whitespace run; 0 means compact.
    max_ws_run: Option<u32>,
    allow_extra_properties: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    test: Vec<RawCase>,
}

/// A case with its full name and its grammar (or why there is none).
struct Case {
    full_name: String,
    raw: RawCase,
    grammar: Result<Grammar, String>,
}

/// Loads every `testdata/*.toml`; problems with the files themselves are
/// returned as failures.
fn load_cases(failures: &mut Vec<String>) -> Vec<Case> {
    let dir = common::testdata_dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no test files in {}", dir.display());
    let filter = std::env::var("FORMWORK_TEST_FILTER").unwrap_or_default();
    let mut cases = Vec::new();
    for path in paths {
        let stem = path.file_stem().expect("file name").to_string_lossy().into_owned();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{stem}: cannot read {}: {e}", path.display()));
                continue;
            }
        };
        let file: CaseFile = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{stem}: invalid test file: {e}"));
                continue;
            }
        };
        let mut names = HashSet::new();
        for raw in file.test {
            let full_name = format!("{stem}/{}", raw.name);
            if !names.insert(raw.name.clone()) {
                failures.push(format!("{full_name}: duplicate case name in {stem}.toml"));
            }
            if !full_name.contains(&filter) {
                continue;
            }
            if (raw.schema.is_some() || raw.schema_file.is_some()) && !cfg!(feature = "json-schema") {
                eprintln!("NOT RUN: {full_name} needs the `json-schema` feature");
                continue;
            }
            let grammar = build_grammar(&raw, &dir);
            cases.push(Case { full_name, raw, grammar });
        }
    }
    cases
}

fn build_grammar(c: &RawCase, dir: &Path) -> Result<Grammar, String> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("cannot read {f}: {e}"));
    let shapes = [&c.regex, &c.gbnf, &c.gbnf_file, &c.lark, &c.lark_file, &c.schema, &c.schema_file]
        .iter()
        .filter(|s| s.is_some())
        .count()
        + c.choices.is_some() as usize;
    if shapes != 1 {
        return Err(format!(
            "a case needs exactly one of regex, choices, gbnf, gbnf_file, lark, lark_file, schema, schema_file \
             ({shapes} given)"
        ));
    }
    let r = if let Some(re) = &c.regex {
        formwork_grammar::regex(re)
    } else if let Some(ch) = &c.choices {
        formwork_grammar::choices(ch)
    } else if let Some(src) = &c.gbnf {
        formwork_grammar::gbnf::parse(src)
    } else if let Some(f) = &c.gbnf_file {
        formwork_grammar::gbnf::parse(&read(f)?)
    } else if let Some(src) = &c.lark {
        return parse_lark(src);
    } else if let Some(f) = &c.lark_file {
        return parse_lark(&read(f)?);
    } else if let Some(text) = &c.schema {
        return compile_schema(text, &c.schema_options);
    } else if let Some(f) = &c.schema_file {
        return compile_schema(&read(f)?, &c.schema_options);
    } else {
        unreachable!("exactly one shape")
    };
    r.map_err(|e| format!("the shape does not parse: {e}"))
}

fn parse_lark(src: &str) -> Result<Grammar, String> {
    formwork_grammar::lark::parse(src).map_err(|e| format!("the shape does not parse: {e}"))
}

#[cfg(feature = "json-schema")]
fn compile_schema(text: &str, o: &SchemaOptions) -> Result<Grammar, String> {
    use formwork_grammar::json_schema::{from_str, JsonSchemaOptions, Mode, Whitespace};
    let mut opts = JsonSchemaOptions::default();
    match o.mode.as_deref() {
        None | Some("strict") => {}
        Some("lenient") => opts.mode = Mode::Lenient,
        Some(m) => return Err(format!("schema_options.mode must be \"strict\" or \"lenient\", not {m:?}")),
    }
    match o.max_ws_run {
        None => {}
        Some(0) => opts.whitespace = Whitespace::Compact,
        Some(n) => opts.whitespace = Whitespace::Flexible { max_run: n },
    }
    if let Some(x) = o.allow_extra_properties {
        opts.allow_extra_properties = x;
    }
    from_str(text, &opts).map(|(g, _warnings)| g).map_err(|e| format!("the schema does not compile: {e}"))
}

#[cfg(not(feature = "json-schema"))]
fn compile_schema(_text: &str, _o: &SchemaOptions) -> Result<Grammar, String> {
    Err("schema cases need the `json-schema` feature".into())
}

/// How thoroughly a vocabulary is exercised.
#[derive(Clone, Copy, Debug)]
struct Policy {
    /// Random splits per string, on top of the greedy one.
    random_splits: usize,
    /// States of a string's greedy split compared with the oracle (at most;
    /// all of them when the split is shorter).
    oracle_per_string: usize,
    /// At most this many oracle states per case.
    oracle_per_case: usize,
}

#[derive(Default)]
struct Stats {
    cases: usize,
    runs: usize,
    skipped: usize,
    oracle_states: usize,
    oracle_time: std::time::Duration,
    compile_time: std::time::Duration,
}

fn short(s: &[u8]) -> String {
    let t = String::from_utf8_lossy(s);
    if t.chars().count() > 60 {
        format!("{:?}...", t.chars().take(60).collect::<String>())
    } else {
        format!("{t:?}")
    }
}

/// What feeding a token sequence did.
enum Outcome {
    /// Token number `.0` was refused.
    Refused(usize),
    /// All tokens were consumed.
    End { accepting: bool },
}

struct Feeder<'a> {
    compiled: &'a CompiledGrammar,
    vocab: &'a Vocabulary,
    specials: &'a [TokenId],
    stats: &'a mut Stats,
    /// The vocabulary is `Vocabulary::bytes()`: at oracle states, also check
    /// `forced_bytes` and `is_stopped` against their byte-level definitions.
    byte_level: bool,
}

impl Feeder<'_> {
    /// Feeds `toks`, checking every mask against `try_consume_token`, special
    /// tokens and EOS, and the oracle at the states in `oracle_at`.
    fn feed(&mut self, toks: &[(TokenId, usize)], oracle_at: &HashSet<usize>) -> Result<Outcome, String> {
        let mut m = self.compiled.matcher().map_err(|e| format!("matcher() failed: {e}"))?;
        let mut mask = vec![0u32; self.compiled.mask_words()];
        for (i, &(t, off)) in toks.iter().enumerate() {
            let at = || format!("before token #{i} {} (byte {off})", show_token(self.vocab, t));
            if oracle_at.contains(&i) {
                self.oracle(&mut m).map_err(|e| format!("{}: {e}", at()))?;
            }
            m.compute_mask(&mut mask).map_err(|e| format!("{}: compute_mask failed: {e}", at()))?;
            self.check_specials(&mask, &mut m).map_err(|e| format!("{}: {e}", at()))?;
            let ok = m.try_consume_token(t).map_err(|e| format!("{}: try_consume_token failed: {e}", at()))?;
            if bit(&mask, t) != ok {
                return Err(format!(
                    "{}: the mask {} the token but try_consume_token {} it",
                    at(),
                    if ok { "refuses" } else { "allows" },
                    if ok { "accepts" } else { "refuses" }
                ));
            }
            if !ok {
                return Ok(Outcome::Refused(i));
            }
        }
        if oracle_at.contains(&toks.len()) {
            self.oracle(&mut m).map_err(|e| format!("at the end: {e}"))?;
        }
        m.compute_mask(&mut mask).map_err(|e| format!("at the end: compute_mask failed: {e}"))?;
        self.check_specials(&mask, &mut m).map_err(|e| format!("at the end: {e}"))?;
        let accepting = m.is_accepting().map_err(|e| format!("is_accepting failed: {e}"))?;
        if accepting {
            let eos = self.vocab.eos()[0];
            m.consume_token(eos).map_err(|e| format!("accepting, but consuming EOS fails: {e}"))?;
            if !m.is_stopped().map_err(|e| format!("is_stopped failed: {e}"))? {
                return Err("EOS consumed but is_stopped() is false".into());
            }
            m.compute_mask(&mut mask).map_err(|e| format!("after EOS: compute_mask failed: {e}"))?;
            if mask.iter().any(|&w| w != 0) {
                return Err("after EOS the mask is not empty".into());
            }
        }
        Ok(Outcome::End { accepting })
    }

    /// The mask against the oracle, and for the byte vocabulary the forced
    /// bytes and `is_stopped` against their definitions.
    fn oracle(&mut self, m: &mut Matcher) -> Result<(), String> {
        self.stats.oracle_states += 1;
        let t0 = std::time::Instant::now();
        check_mask_against_oracle(m)?;
        if self.byte_level {
            check_forced_by_bytes(m)?;
        }
        self.stats.oracle_time += t0.elapsed();
        Ok(())
    }

    /// Special tokens are never allowed; EOS exactly when accepting.
    fn check_specials(&self, mask: &[u32], m: &mut Matcher) -> Result<(), String> {
        let accepting = m.is_accepting().map_err(|e| format!("is_accepting failed: {e}"))?;
        for &t in self.specials {
            let is_eos = self.vocab.eos().contains(&t);
            if bit(mask, t) && !(is_eos && accepting) {
                return Err(format!("the mask allows special token {}", show_token(self.vocab, t)));
            }
            if is_eos && accepting && !bit(mask, t) {
                return Err(format!("accepting, but the mask refuses EOS {}", show_token(self.vocab, t)));
            }
        }
        Ok(())
    }
}

/// Picks `n` distinct states among `0..=len`.
fn sample_states(len: usize, n: usize, rng: &mut XorShift) -> HashSet<usize> {
    let mut s = HashSet::new();
    if n > len {
        s.extend(0..=len);
        return s;
    }
    while s.len() < n {
        s.insert(rng.below(len + 1));
    }
    s
}

fn seed_of(name: &str) -> u64 {
    // FNV-1a: stable across runs and platforms
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject,
    Incomplete,
}

fn run_case(case: &Case, tv: &TestVocab, policy: Policy, specials: &[TokenId], stats: &mut Stats) -> Vec<String> {
    let mut fails = Vec::new();
    if let Some(want) = &case.raw.error {
        let got = match &case.grammar {
            Err(e) => e.clone(),
            Ok(g) => match CompiledGrammar::new(g, Arc::clone(&tv.vocab), Limits::default()) {
                Err(e) => e.to_string(),
                Ok(_) => return vec![format!("the shape compiles, but an error containing {want:?} was expected")],
            },
        };
        if !got.contains(want.as_str()) {
            return vec![format!("expected an error containing {want:?}, got: {got}")];
        }
        return Vec::new();
    }
    let grammar = match &case.grammar {
        Ok(g) => g,
        Err(e) => return vec![e.clone()],
    };
    let t0 = std::time::Instant::now();
    let compiled = CompiledGrammar::new(grammar, Arc::clone(&tv.vocab), Limits::default());
    stats.compile_time += t0.elapsed();
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => return vec![format!("CompiledGrammar::new failed: {e}")],
    };
    stats.cases += 1;
    let mut rng = XorShift::new(seed_of(&case.full_name));
    let mut case_oracle_left = policy.oracle_per_case;
    let raw = &case.raw;
    let strings = raw
        .accept
        .iter()
        .map(|s| (s, Expect::Accept))
        .chain(raw.reject.iter().map(|s| (s, Expect::Reject)))
        .chain(raw.incomplete.iter().map(|s| (s, Expect::Incomplete)));
    let byte_level = *tv.vocab == formwork_grammar::Vocabulary::bytes();
    let mut feeder = Feeder { compiled: &compiled, vocab: &tv.vocab, specials, stats, byte_level };
    for (s, expect) in strings {
        let bytes = s.as_bytes();
        for k in 0..=policy.random_splits {
            let toks = if k == 0 {
                tv.tokenizer.tokenize(bytes, Split::Greedy)
            } else {
                tv.tokenizer.tokenize(bytes, Split::Random(&mut rng))
            };
            let Some(toks) = toks else {
                feeder.stats.skipped += 1;
                break;
            };
            feeder.stats.runs += 1;
            let oracle_at = if k > 0 {
                HashSet::new()
            } else {
                let n = policy.oracle_per_string.min(case_oracle_left).min(toks.len() + 1);
                case_oracle_left -= n;
                sample_states(toks.len(), n, &mut rng)
            };
            let split = if k == 0 { "greedy split".to_string() } else { format!("random split {k}") };
            let what = match expect {
                Expect::Accept => "accept",
                Expect::Reject => "reject",
                Expect::Incomplete => "incomplete",
            };
            let ctx = format!("{what} {} ({split}, {} tokens)", short(bytes), toks.len());
            match (feeder.feed(&toks, &oracle_at), expect) {
                (Err(e), _) => fails.push(format!("{ctx}: {e}")),
                (Ok(Outcome::Refused(i)), Expect::Accept | Expect::Incomplete) => {
                    let (t, off) = toks[i];
                    fails.push(format!(
                        "{ctx}: token #{i} {} at byte {off} is refused (after {})",
                        show_token(&tv.vocab, t),
                        short(&bytes[..off])
                    ))
                }
                (Ok(Outcome::End { accepting: false }), Expect::Accept) => {
                    fails.push(format!("{ctx}: every token consumed but not accepting at the end"))
                }
                (Ok(Outcome::End { accepting: true }), Expect::Reject) => {
                    fails.push(format!("{ctx}: accepted (every token allowed and accepting at the end)"))
                }
                (Ok(Outcome::End { accepting: true }), Expect::Incomplete) => {
                    fails.push(format!("{ctx}: accepting at the end, expected an incomplete prefix"))
                }
                _ => {}
            }
        }
    }
    for f in &raw.forced {
        if let Err(e) = check_forced(&compiled, f, tv.vocab.len() <= 5_000) {
            fails.push(format!("forced after {}: {e}", short(f.after.as_bytes())));
        }
    }
    fails
}

fn check_forced(compiled: &CompiledGrammar, f: &Forced, check_mask: bool) -> Result<(), String> {
    let mut m = compiled.matcher().map_err(|e| format!("matcher() failed: {e}"))?;
    if !m.try_consume_bytes(f.after.as_bytes()).map_err(|e| format!("try_consume_bytes failed: {e}"))? {
        return Err("the `after` bytes are refused".into());
    }
    let got = m.forced_bytes().map_err(|e| format!("forced_bytes failed: {e}"))?;
    if got != f.bytes.as_bytes() {
        return Err(format!("forced_bytes() = {}, expected {}", short(&got), short(f.bytes.as_bytes())));
    }
    if check_mask {
        // every allowed token must agree with the forced bytes
        let mask = m.compute_mask_vec().map_err(|e| format!("compute_mask failed: {e}"))?;
        let vocab = compiled.vocab();
        for t in common::oracle::allowed(&mask, vocab.len()) {
            let tb = vocab.token_bytes(t);
            let n = tb.len().min(got.len());
            let is_eos = vocab.eos().contains(&t);
            if (is_eos && !got.is_empty()) || (!is_eos && tb[..n] != got[..n]) {
                return Err(format!("forced bytes are {} but the mask allows {}", short(&got), show_token(vocab, t)));
            }
        }
    }
    let toks = m.forced_tokens().map_err(|e| format!("forced_tokens failed: {e}"))?;
    let spelled: Vec<u8> = toks.iter().flat_map(|&t| compiled.vocab().token_bytes(t).to_vec()).collect();
    if !got.starts_with(&spelled) {
        return Err(format!("forced_tokens() spell {}, not a prefix of the forced bytes", short(&spelled)));
    }
    for &t in &toks {
        let mask = m.compute_mask_vec().map_err(|e| format!("compute_mask failed: {e}"))?;
        if !bit(&mask, t) {
            return Err(format!("forced token {} is not in the mask", show_token(compiled.vocab(), t)));
        }
        m.consume_token(t).map_err(|e| format!("forced token refused: {e}"))?;
    }
    Ok(())
}

/// Runs every case under one vocabulary; panics with the collected report.
fn run_suite(tv: &TestVocab, policy: Policy) {
    let start = std::time::Instant::now();
    let mut failures = Vec::new();
    let cases = load_cases(&mut failures);
    let specials: Vec<TokenId> = (0..tv.vocab.len() as TokenId).filter(|&t| tv.vocab.is_special(t)).collect();
    let mut stats = Stats::default();
    for case in &cases {
        for f in run_case(case, tv, policy, &specials, &mut stats) {
            failures.push(format!("{} [{}]: {f}", case.full_name, tv.name));
        }
    }
    eprintln!(
        "suite [{}]: {} cases compiled, {} token sequences fed, {} strings skipped (not spellable), \
         {} states checked against the oracle; {:.1}s ({:.1}s compiling, {:.1}s in the oracle)",
        tv.name,
        stats.cases,
        stats.runs,
        stats.skipped,
        stats.oracle_states,
        start.elapsed().as_secs_f64(),
        stats.compile_time.as_secs_f64(),
        stats.oracle_time.as_secs_f64()
    );
    if !failures.is_empty() {
        panic!(
            "{} failure(s) in the declarative suite under vocabulary `{}`:\n  {}\n\n\
             To rerun some cases only: FORMWORK_TEST_FILTER=<file-stem>/<name substring> \
             cargo test -p formwork-grammar --test integration suite::{}",
            failures.len(),
            tv.name,
            failures.join("\n  "),
            tv.name
        );
    }
}

// The oracle costs one `try_consume_token` per token of the vocabulary per
// state (the large vocabularies prune tokens that extend a refused one, see
// `common::oracle::oracle_mask_pruned`; still up to 40 ms per state for SmolLM2
// and 200 ms for Gemma 3 inside a string, where every token is tried), so the large
// vocabularies sample states; the small ones check every state of short
// strings.

#[test]
fn bytes() {
    run_suite(common::bytes(), Policy { random_splits: 2, oracle_per_string: 64, oracle_per_case: usize::MAX });
}

#[test]
fn tiny() {
    run_suite(common::tiny(), Policy { random_splits: 2, oracle_per_string: 64, oracle_per_case: usize::MAX });
}

#[test]
fn synthetic() {
    run_suite(common::synthetic(), Policy { random_splits: 2, oracle_per_string: 32, oracle_per_case: usize::MAX });
}

#[test]
fn smollm2() {
    run_suite(common::smollm2(), Policy { random_splits: 2, oracle_per_string: 2, oracle_per_case: 6 });
}

#[test]
fn gemma3() {
    if let Some(tv) = common::gemma3() {
        run_suite(tv, Policy { random_splits: 2, oracle_per_string: 1, oracle_per_case: 1 });
    }
}
