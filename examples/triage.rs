//! Support-ticket triage on the default model: each ticket becomes
//! `{"category": incident|billing|inquiry, "urgency": 1-5, "resolvedOffline": bool}`,
//! always valid, with a confidence per field.
//!
//! ```sh
//! cargo run --release --example triage
//! ```
//!
//! The system prompt (with worked examples) is computed once: the engine's
//! prefix cache keeps it across tickets, so each ticket costs its own words
//! plus the few tokens the grammar leaves to the model.

use formwork::generate::{Engine, GenerateOptions};
use formwork::tasks::triage;

fn main() -> Result<(), formwork::Error> {
    let mut engine = Engine::load_default()?;
    let shape = triage::shape();
    let tickets = [
        "My invoice was charged twice this month, please fix it.",
        "The website is down and customers cannot pay.",
        "Do you have an office in Lisbon?",
        "The sync failed this morning, but it works again now.",
    ];
    for ticket in tickets {
        let g = engine.generate(&triage::prompt(ticket), &shape, &GenerateOptions::default())?;
        println!("{ticket}\n  -> {}", g.text);
        println!(
            "     category {:.2}, urgency {:.2}; {} sampled + {} forced tokens, {:.0} ms ({} prompt tokens cached)",
            g.field("/category").unwrap_or(0.0),
            g.field("/urgency").unwrap_or(0.0),
            g.sampled_tokens,
            g.forced_tokens,
            g.timings.total.as_secs_f64() * 1e3,
            g.cached_prompt_tokens,
        );
    }
    Ok(())
}
