//! Local-first routing: answer on the device, escalate to a larger model
//! (here: a message) when the small model is not sure.
//!
//! The confidence of a field is the probability the model gave the tokens
//! that chose it among those the schema allows: an app can act on it.
//!
//! ```sh
//! cargo run --release --example routing
//! ```

use formwork::generate::{Engine, GenerateOptions};
use formwork::tasks::triage;

/// Below this confidence in the category, the ticket goes to a bigger model.
const THRESHOLD: f32 = 0.8;

fn main() -> Result<(), formwork::Error> {
    let mut engine = Engine::load_default()?;
    let shape = triage::shape();
    let tickets = [
        "I was charged twice for the same invoice.",
        "Hmm, something about my account seems off since last week, not sure what.",
        "The server is down!",
    ];
    for ticket in tickets {
        let g = engine.generate(&triage::prompt(ticket), &shape, &GenerateOptions::default())?;
        let confidence = g.field("/category").unwrap_or(0.0);
        let route = if confidence >= THRESHOLD { "answered locally" } else { "escalated to the large model" };
        println!("{ticket}\n  -> {} (category confidence {confidence:.2}): {route}", g.text);
    }
    Ok(())
}
