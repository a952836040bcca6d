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
    let shape = alerts::shape();
    let lines = [
        "service payments-api returned HTTP 503 for 5 minutes on all hosts",
        "memory usage 87% on cache-3",
        "nightly backup completed in 42 minutes",
    ];
    for line in lines {
        let g = engine.generate(&alerts::prompt(line), &shape, &GenerateOptions::default())?;
        let v = g.value.as_ref().expect("the schema only allows JSON");
        let severity = g.field("/severity").unwrap_or(0.0);
        println!("{line}\n  -> {} (severity confidence {severity:.2})", g.text);
        if v["action"] == "page" {
            println!("     paging the on-call engineer");
        }
    }
    Ok(())
}
