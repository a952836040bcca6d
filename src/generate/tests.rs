//! The decode loop on toy models over the byte vocabulary: what the loop
//! guarantees does not depend on the model.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use formwork_grammar::json_schema::{self, JsonSchemaOptions, Whitespace};
use formwork_grammar::{CompiledGrammar, Limits, Vocabulary};

use super::decode::{decode, LanguageModel};
use super::*;

const EOS: u32 = 256;

/// Wants to write `script` (byte by byte, then EOS) after the prompt, with
/// logit `strength` for the wanted byte and 0 elsewhere; `flat` gives every
/// token the same logit instead.
struct Toy {
    script: Vec<u8>,
    strength: f32,
    flat: bool,
    forward_calls: AtomicUsize,
    context: usize,
}

impl Toy {
    fn wanting(script: &str) -> Toy {
        Toy { script: script.as_bytes().to_vec(), strength: 20.0, flat: false, forward_calls: 0.into(), context: 4096 }
    }
}

impl LanguageModel for Toy {
    /// Every token seen; the prompt is `[b'>']`.
    type Cache = Vec<u32>;
    fn vocab_size(&self) -> usize {
        257
    }
    fn context_len(&self) -> usize {
        self.context
    }
    fn new_cache(&self) -> Vec<u32> {
        Vec::new()
    }
    fn cache_len(&self, c: &Vec<u32>) -> usize {
        c.len()
    }
    fn truncate_cache(&self, c: &mut Vec<u32>, len: usize) {
        c.truncate(len);
    }
    fn forward(&self, tokens: &[u32], cache: &mut Vec<u32>, logits: &mut [f32]) -> Result<(), crate::Error> {
        self.forward_calls.fetch_add(1, Ordering::Relaxed);
        cache.extend_from_slice(tokens);
        logits.fill(0.0);
        if !self.flat {
            let pos = cache.len() - 1; // output bytes so far
            let want = self.script.get(pos).map_or(EOS, |&b| u32::from(b));
            logits[want as usize] = self.strength;
        }
        Ok(())
    }
}

fn schema_grammar(schema: serde_json::Value) -> CompiledGrammar {
    let opts = JsonSchemaOptions { whitespace: Whitespace::Compact, ..Default::default() };
    let (g, _) = json_schema::compile(&schema, &opts).unwrap();
    CompiledGrammar::new(&g, Arc::new(Vocabulary::bytes()), Limits::default()).unwrap()
}

fn run(model: &Toy, grammar: Option<&CompiledGrammar>, opts: &GenerateOptions) -> decode::Decoded {
    let vocab = Vocabulary::bytes();
    let mut cache = model.new_cache();
    let mut matcher = grammar.map(|g| g.matcher().unwrap());
    decode(model, &mut cache, b">".map(u32::from).as_slice(), matcher.as_mut(), &vocab, opts, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap()
}

fn ticket_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "category": {"enum": ["incident", "billing", "inquiry"]},
            "urgency": {"type": "integer", "minimum": 1, "maximum": 5}
        },
        "required": ["category", "urgency"],
        "additionalProperties": false
    })
}

#[test]
fn a_model_that_wants_invalid_output_still_produces_valid_output() {
    // Wrong category, urgency out of range, an extra key: every one
    // forbidden by the schema.
    let model = Toy::wanting(r#"{"category":"refund","urgency":9,"x":1}"#);
    let g = schema_grammar(ticket_schema());
    let out = run(&model, Some(&g), &GenerateOptions::default());
    let text = String::from_utf8(out.bytes.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert!(["incident", "billing", "inquiry"].contains(&v["category"].as_str().unwrap()), "{text}");
    // JSON Schema counts `1.0` as an integer, so the grammar may write one.
    let u = v["urgency"].as_f64().unwrap();
    assert!(u.fract() == 0.0 && (1.0..=5.0).contains(&u), "{text}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{text}");
    assert!(out.accepted);
    assert!(matches!(out.finish, Finish::Eos | Finish::Grammar), "{:?}", out.finish);
    // The grammar had to overrule the model: some step removed nearly all
    // of the probability.
    assert!(out.mask_removed.iter().any(|&r| r > 0.99), "{:?}", out.mask_removed);
}

#[test]
fn forced_bytes_are_fed_in_batches_and_not_sampled() {
    let model = Toy::wanting(r#"{"category":"billing","urgency":2}"#);
    let g = schema_grammar(ticket_schema());
    let out = run(&model, Some(&g), &GenerateOptions::default());
    assert_eq!(String::from_utf8(out.bytes.clone()).unwrap(), r#"{"category":"billing","urgency":2}"#);
    // `{"category":"` is forced, then after `b` the rest of `billing`, …
    assert!(out.forced >= 20, "forced {}", out.forced);
    assert_eq!(out.sampled + out.forced, out.tokens.len() + usize::from(out.finish == Finish::Eos));
    // One forward for the prompt, one per sampled token that needed a next
    // step: far fewer than one per output byte.
    let calls = model.forward_calls.load(Ordering::Relaxed);
    assert!(calls <= out.sampled + 1, "{calls} forward calls for {} sampled", out.sampled);
    assert!(calls < out.tokens.len() / 2, "{calls} calls for {} tokens", out.tokens.len());

    // Without fast-forward the same answer costs a step per byte.
    let slow = Toy::wanting(r#"{"category":"billing","urgency":2}"#);
    let opts = GenerateOptions { fast_forward: false, ..Default::default() };
    let out2 = run(&slow, Some(&g), &opts);
    assert_eq!(out2.bytes, out.bytes);
    assert_eq!(out2.forced, 0);
    assert!(slow.forward_calls.load(Ordering::Relaxed) > calls * 2);
}

#[test]
fn confidence_is_the_constrained_probability() {
    // A flat model over 257 tokens: under `choices(["ab", "cd"])` the first
    // step allows `a` and `c` (p = 1/2 each), then everything is forced.
    let model = Toy { flat: true, ..Toy::wanting("") };
    let g = CompiledGrammar::new(
        &formwork_grammar::choices(&["ab", "cd"]).unwrap(),
        Arc::new(Vocabulary::bytes()),
        Limits::default(),
    )
    .unwrap();
    let out = run(&model, Some(&g), &GenerateOptions::default());
    assert!(out.bytes == b"ab" || out.bytes == b"cd");
    assert_eq!(out.sampled, 1);
    assert!((out.logprob.exp() - 0.5).abs() < 1e-6, "{}", out.logprob.exp());
    // The mask removed 255 of 257 equally likely tokens.
    assert!((out.mask_removed[0] - 255.0 / 257.0).abs() < 1e-5, "{:?}", out.mask_removed);
}

#[test]
fn seeded_sampling_is_reproducible_and_seeds_differ() {
    let model = Toy { flat: true, ..Toy::wanting("") };
    let g = CompiledGrammar::new(
        &formwork_grammar::regex("[a-z]{12}").unwrap(),
        Arc::new(Vocabulary::bytes()),
        Limits::default(),
    )
    .unwrap();
    let opts = |seed| GenerateOptions {
        sampling: Sampling { temperature: 1.0, seed, ..Default::default() },
        ..Default::default()
    };
    let a = run(&model, Some(&g), &opts(7)).bytes;
    let b = run(&model, Some(&g), &opts(7)).bytes;
    let c = run(&model, Some(&g), &opts(8)).bytes;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 12);
    assert!(a.iter().all(u8::is_ascii_lowercase));
}

#[test]
fn free_text_stops_at_eos_or_a_stop_string() {
    let model = Toy::wanting("hello world. more");
    let out = run(&model, None, &GenerateOptions::default());
    assert_eq!(out.finish, Finish::Eos);
    assert_eq!(out.bytes, b"hello world. more");
    let opts = GenerateOptions { stop: vec![". ".into()], ..Default::default() };
    let out = run(&model, None, &opts);
    assert_eq!(out.finish, Finish::Stop);
    assert_eq!(out.bytes, b"hello world");
}

#[test]
fn the_callback_streams_every_token_and_can_cancel() {
    let model = Toy::wanting(r#"{"category":"inquiry","urgency":4}"#);
    let g = schema_grammar(ticket_schema());
    let vocab = Vocabulary::bytes();
    let mut cache = model.new_cache();
    let mut m = g.matcher().unwrap();
    let seen = Cell::new(0usize);
    let mut partials = Vec::new();
    let out = decode(&model, &mut cache, &[u32::from(b'>')], Some(&mut m), &vocab, &Default::default(), &mut |p| {
        seen.set(seen.get() + p.tokens.len());
        if let Some(v) = p.partial_value() {
            partials.push(v);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen.get(), out.tokens.len());
    assert_eq!(partials.last(), Some(&serde_json::json!({"category": "inquiry", "urgency": 4})));
    assert!(partials.contains(&serde_json::json!({"category": "inquiry"})), "{partials:?}");

    let mut m = g.matcher().unwrap();
    let mut cache = model.new_cache();
    let out = decode(&model, &mut cache, &[u32::from(b'>')], Some(&mut m), &vocab, &Default::default(), &mut |p| {
        if p.text.len() > 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(out.finish, Finish::Cancelled);
    assert!(!out.accepted);
}

#[test]
fn the_cache_holds_exactly_what_was_fed() {
    let model = Toy::wanting(r#"{"category":"incident","urgency":1}"#);
    let g = schema_grammar(ticket_schema());
    let vocab = Vocabulary::bytes();
    let mut cache = model.new_cache();
    let mut m = g.matcher().unwrap();
    let prompt = [u32::from(b'>')];
    let out = decode(&model, &mut cache, &prompt, Some(&mut m), &vocab, &Default::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(cache, out.fed);
    // Everything but the last token (never fed: generation ended on it)
    // and EOS.
    let mut expect = prompt.to_vec();
    expect.extend_from_slice(&out.tokens);
    assert!(expect.starts_with(&cache), "{cache:?} vs {expect:?}");
    assert!(expect.len() - cache.len() <= 1);
}

fn regex_grammar(re: &str) -> CompiledGrammar {
    CompiledGrammar::new(&formwork_grammar::regex(re).unwrap(), Arc::new(Vocabulary::bytes()), Limits::default())
        .unwrap()
}

#[test]
fn budget_steering_closes_the_answer_within_max_tokens() {
    let model = Toy::wanting("aaaaaaaaaaaaaaaaaaaa");
    let g = regex_grammar("a+b");
    let out = run(&model, Some(&g), &GenerateOptions { max_tokens: 5, ..Default::default() });
    // The model keeps writing `a` while `b` still fits, then `b` is placed.
    assert_eq!(out.bytes, b"aaaab");
    assert_eq!(out.finish, Finish::BudgetClosed);
    assert!(out.accepted);
    // The first `a` is forced (the grammar's start joins the prompt), three
    // are sampled, the `b` is steered.
    assert_eq!((out.forced, out.sampled, out.steered), (1, 3, 1));
    assert_eq!(out.tokens_to_close, None);
    // The steered token's (tiny) model probability counts in confidence.
    assert!(out.logprob < -10.0, "{}", out.logprob);
}

#[test]
fn without_steering_the_budget_cuts_the_answer() {
    let model = Toy::wanting("aaaaaaaaaaaaaaaaaaaa");
    let g = regex_grammar("a+b");
    let opts = GenerateOptions { max_tokens: 5, budget_steering: false, ..Default::default() };
    let out = run(&model, Some(&g), &opts);
    assert_eq!(out.finish, Finish::Budget);
    assert_eq!(out.bytes, b"aaaaa");
    assert!(!out.accepted);
    assert_eq!(out.steered, 0);
    assert_eq!(out.tokens_to_close, Some(1));
}

#[test]
fn a_budget_below_the_shortest_answer_is_reported_incomplete() {
    // The shortest answer is `aaaaaaab`: 8 tokens; 5 cannot hold it.
    let model = Toy::wanting("aaaaaaaaaaaaaaaaaaaa");
    let g = regex_grammar("a{7,}b");
    let out = run(&model, Some(&g), &GenerateOptions { max_tokens: 5, ..Default::default() });
    assert_eq!(out.finish, Finish::Budget);
    assert!(!out.accepted);
    assert_eq!(out.steered, 0);
    assert_eq!(out.bytes, b"aaaaa");
    // From `aaaaa`, closing needs `aab`.
    assert_eq!(out.tokens_to_close, Some(3));
    // One more than the shortest answer is enough.
    let out = run(&model, Some(&g), &GenerateOptions { max_tokens: 8, ..Default::default() });
    assert_eq!((out.finish, out.bytes.as_slice()), (Finish::BudgetClosed, b"aaaaaaab".as_slice()));
}

/// A schema whose answer the toy model wants far longer than the budget:
/// every output, at every budget that can hold the shortest answer, closes
/// and validates.
#[test]
fn a_tight_budget_still_gives_valid_json_for_nested_arrays_of_objects() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 2, "maxLength": 40},
            "items": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["name", "qty"],
                "additionalProperties": false
            }}
        },
        "required": ["title", "items"],
        "additionalProperties": false
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    let g = schema_grammar(schema);
    // 85 bytes the model wants, plus junk after it
    let wanted =
        r#"{"title":"a very long shopping list","items":[{"name":"apples","qty":3},{"name":"pears","qty":12}]}xx"#;
    // `{"title":"aa","items":[{"name":"","qty":1}]}`
    let shortest = g.matcher().unwrap().min_completion_bytes().unwrap() as usize;
    assert_eq!(shortest, r#"{"title":"aa","items":[{"name":"","qty":1}]}"#.len());
    let mut steered = 0;
    for max_tokens in shortest..wanted.len() + 2 {
        let model = Toy::wanting(wanted);
        let out = run(&model, Some(&g), &GenerateOptions { max_tokens, ..Default::default() });
        let text = String::from_utf8(out.bytes.clone()).unwrap();
        assert!(out.tokens.len() <= max_tokens, "{max_tokens}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{max_tokens}: {text}: {e}"));
        assert!(validator.is_valid(&v), "{max_tokens}: {text}");
        assert!(out.accepted, "{max_tokens}: {text}");
        if out.steered > 0 {
            steered += 1;
            assert_eq!(out.finish, Finish::BudgetClosed, "{max_tokens}: {text}");
        }
    }
    // The wanted answer is valid: every budget below its length had to
    // steer, and none at or above it.
    assert_eq!(steered, wanted.len() - 2 - shortest);
    // One token short of the shortest answer: incomplete, and it says by how much.
    let out = run(&Toy::wanting(wanted), Some(&g), &GenerateOptions { max_tokens: shortest - 1, ..Default::default() });
    assert_eq!(out.finish, Finish::Budget);
    assert!(!out.accepted);
    assert!(out.tokens_to_close.is_some_and(|n| n >= 1), "{:?}", out.tokens_to_close);
}

#[test]
fn sample_first_greedy_is_identical_to_mask_first() {
    let g = schema_grammar(ticket_schema());
    let script = r#"{"category":"refund","urgency":9,"x":1}"#;
    let mask_first = run(&Toy::wanting(script), Some(&g), &GenerateOptions::default());
    let opts = GenerateOptions { mask_strategy: MaskStrategy::SampleFirst, ..Default::default() };
    let sample_first = run(&Toy::wanting(script), Some(&g), &opts);
    assert_eq!(sample_first.tokens, mask_first.tokens);
    assert_eq!(sample_first.finish, mask_first.finish);
    assert!(sample_first.accepted);
    // Masks only where the model's choice was rejected.
    assert!(sample_first.masks < mask_first.masks, "{} vs {}", sample_first.masks, mask_first.masks);
    let rejected = sample_first.mask_removed.iter().filter(|r| !r.is_nan()).count();
    assert_eq!(rejected, sample_first.masks);
    assert!(rejected >= 1);
    // A model that agrees with the grammar never needs a mask.
    let agree = run(&Toy::wanting(r#"{"category":"billing","urgency":2}"#), Some(&g), &opts);
    assert_eq!(agree.masks, 0);
    assert!(agree.mask_removed.iter().all(|r| r.is_nan()));
    assert_eq!(agree.bytes, br#"{"category":"billing","urgency":2}"#);
}

/// Fixed logits for the first byte: `x` (forbidden) is the most likely.
struct Fixed;

impl LanguageModel for Fixed {
    type Cache = Vec<u32>;
    fn vocab_size(&self) -> usize {
        257
    }
    fn context_len(&self) -> usize {
        64
    }
    fn new_cache(&self) -> Vec<u32> {
        Vec::new()
    }
    fn cache_len(&self, c: &Vec<u32>) -> usize {
        c.len()
    }
    fn truncate_cache(&self, c: &mut Vec<u32>, len: usize) {
        c.truncate(len);
    }
    fn forward(&self, tokens: &[u32], cache: &mut Vec<u32>, logits: &mut [f32]) -> Result<(), crate::Error> {
        cache.extend_from_slice(tokens);
        logits.fill(-30.0);
        for (b, l) in [(b'a', 2.0), (b'b', 1.0), (b'c', 0.0), (b'x', 2.5)] {
            logits[b as usize] = l;
        }
        Ok(())
    }
}

/// Counts of `a`, `b`, `c` over many seeds under `[abc]`.
fn first_byte_counts(strategy: MaskStrategy, seeds: u64) -> [f64; 3] {
    let g = regex_grammar("[abc]");
    let mut counts = [0f64; 3];
    for seed in 0..seeds {
        let opts = GenerateOptions {
            sampling: Sampling { temperature: 1.0, seed, ..Default::default() },
            mask_strategy: strategy,
            ..Default::default()
        };
        let vocab = Vocabulary::bytes();
        let mut cache = Fixed.new_cache();
        let mut m = g.matcher().unwrap();
        let out = decode(&Fixed, &mut cache, &[u32::from(b'>')], Some(&mut m), &vocab, &opts, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(out.accepted);
        assert_eq!(out.bytes.len(), 1);
        counts[usize::from(out.bytes[0] - b'a')] += 1.0;
    }
    counts
}

#[test]
fn sample_first_draws_from_the_masked_distribution() {
    let seeds = 3000;
    // p(a) : p(b) : p(c) = e² : e : 1 among the allowed tokens
    let w = [2f64.exp(), 1f64.exp(), 1.0];
    let total: f64 = w.iter().sum();
    let chi2 = |counts: [f64; 3]| -> f64 {
        (0..3)
            .map(|i| {
                let e = w[i] / total * seeds as f64;
                (counts[i] - e).powi(2) / e
            })
            .sum()
    };
    let sf = first_byte_counts(MaskStrategy::SampleFirst, seeds);
    let mf = first_byte_counts(MaskStrategy::MaskFirst, seeds);
    // Two degrees of freedom: 13.8 is the 0.1% tail. Seeds are fixed, so
    // the test is deterministic; a wrong distribution (e.g. keeping the
    // first draw's rejection bias) lands far out in the tail.
    assert!(chi2(sf) < 13.8, "sample-first {sf:?}: chi² {}", chi2(sf));
    assert!(chi2(mf) < 13.8, "mask-first {mf:?}: chi² {}", chi2(mf));
    // Top-k needs the allowed set: sample-first falls back to mask-first
    // and builds a mask every step.
    let g = regex_grammar("[abc]");
    let opts = GenerateOptions {
        sampling: Sampling { temperature: 1.0, top_k: 2, seed: 1, ..Default::default() },
        mask_strategy: MaskStrategy::SampleFirst,
        ..Default::default()
    };
    let vocab = Vocabulary::bytes();
    let mut m = g.matcher().unwrap();
    let out = decode(&Fixed, &mut Vec::new(), &[u32::from(b'>')], Some(&mut m), &vocab, &opts, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out.masks, out.mask_removed.len());
    assert!(out.mask_removed.iter().all(|r| !r.is_nan()));
    assert!(out.bytes == b"a" || out.bytes == b"b", "{:?}", out.bytes);
}
