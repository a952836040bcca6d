//! Telemetry alert triage for a gateway: each alert line becomes
//! `{"severity", "component", "action"}`; critical alerts page someone.
//!
//! ```sh
//! cargo run --release --example alerts
//! ```

use formwork::generate::{Engine, GenerateOptions};
use formwork::tasks::alerts;

fn main() -> Result<(), formwork::Error> {
    let mut engine = Engine::load_default()?;
    let shape = formwork::generate::Shape::json_schema(alerts::schema());
    let lines = [
        "service payments-api returned HTTP 503 for 5 minutes on all hosts",
        "memory usage 87% on cache-3",
        "nightly backup completed in 42 minutes",
    ];
    for line in lines {
        let g = engine.generate(&alerts::prompt(line), &shape, &GenerateOptions::default())?;
        let v = g.value.as_ref().expect("the schema only allows JSON");
        println!("{line}\n  -> {} (confidence {:.2})", g.text, g.confidence);
        if v["action"] == "page" {
            println!("     paging the on-call engineer");
        }
    }
    Ok(())
}
