//! Extraction into a Rust type: the schema comes from the type (`schemars`),
//! the answer is deserialized with serde, and it always fits the type.
//!
//! ```sh
//! cargo run --release --example extract
//! ```

use formwork::generate::{Engine, GenerateOptions, Prompt};
use formwork::tokenizer::Message;

/// What to pull out of an order e-mail.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)] // fields are read through Debug
struct Order {
    /// Who ordered.
    customer: String,
    /// How many items.
    quantity: u32,
    /// Whether it ships express.
    express: bool,
}

fn main() -> Result<(), formwork::Error> {
    let mut engine = Engine::load_default()?;
    let prompt = Prompt::Chat(vec![
        Message::system("Extract the order as JSON with customer, quantity and express."),
        Message::user("Hi, this is Maria Lopez. Please send 3 boxes of green tea, express delivery if possible."),
    ]);
    let (order, g) = engine.generate_typed::<Order>(&prompt, &GenerateOptions::default())?;
    println!("{order:?}");
    println!("text {} (confidence {:.2}, {:.0} ms)", g.text, g.confidence, g.timings.total.as_secs_f64() * 1e3);
    Ok(())
}
