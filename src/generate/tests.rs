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
fn budget_stops_with_an_incomplete_answer() {
    let model = Toy::wanting("aaaaaaaaaaaaaaaaaaaa");
    let g = CompiledGrammar::new(
        &formwork_grammar::regex("a+b").unwrap(),
        Arc::new(Vocabulary::bytes()),
        Limits::default(),
    )
    .unwrap();
    let opts = GenerateOptions { max_tokens: 5, ..Default::default() };
    let out = run(&model, Some(&g), &opts);
    assert_eq!(out.finish, Finish::Budget);
    assert_eq!(out.bytes, b"aaaaa");
    assert!(!out.accepted);
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
