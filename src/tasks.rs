//! Ready-made tasks: the prompts and schemas the examples, `formwork bench`
//! and the end-to-end tests share (one definition, so the benchmark measures
//! what the examples show).

use crate::generate::{Prompt, Shape};
use crate::tokenizer::Message;

/// Support-ticket triage: `{"category": incident|billing|inquiry,
/// "urgency": 1-5, "resolvedOffline": bool}`.
///
/// The prompt carries a few worked examples as earlier turns of the chat:
/// a 135M model given only the field names answers nearly everything with
/// one category. Everything before the ticket is the same for every ticket,
/// so [`Engine`](crate::generate::Engine)'s prefix cache computes it once per
/// process.
pub mod triage {
    use super::*;

    /// The system prompt.
    pub const SYSTEM: &str = "\
You triage customer support tickets. Answer with JSON: \"category\" is \"billing\" for invoices, charges, \
payments and refunds; \"incident\" when something is broken, down or failing; \"inquiry\" for questions and \
requests for information. \"urgency\" is 1 (can wait) to 5 (critical outage). \"resolvedOffline\" is true when \
the customer says the problem went away or they fixed it themselves.";

    /// Worked examples, given to the model as earlier turns of the
    /// conversation (ticket, answer). A 135M model copies the last example's
    /// category when the examples sit in the system prompt as text; as turns,
    /// with the categories in this order, it gets 5 of the 6
    /// [`CLEAR_TICKETS`] right.
    pub const EXAMPLES: &[(&str, &str)] = &[
        ("Do you offer a discount for students?", r#"{"category":"inquiry","urgency":1,"resolvedOffline":false}"#),
        ("I was billed twice for my subscription.", r#"{"category":"billing","urgency":3,"resolvedOffline":false}"#),
        (
            "The whole website is down and nobody can log in!",
            r#"{"category":"incident","urgency":5,"resolvedOffline":false}"#,
        ),
        (
            "Our reports page shows an error and the export keeps failing.",
            r#"{"category":"incident","urgency":4,"resolvedOffline":false}"#,
        ),
        (
            "The app crashed this morning but after a restart it works again.",
            r#"{"category":"incident","urgency":2,"resolvedOffline":true}"#,
        ),
    ];

    /// The JSON Schema of the answer.
    pub fn schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "category": {"enum": ["incident", "billing", "inquiry"]},
                "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
                "resolvedOffline": {"type": "boolean"}
            },
            "required": ["category", "urgency", "resolvedOffline"],
            "additionalProperties": false
        })
    }

    /// The shape: [`schema`] with the JSON spacing of the examples (none:
    /// fewer tokens to write, and a small model copies the examples' style).
    pub fn shape() -> Shape {
        Shape::json_schema_compact(schema())
    }

    /// The prompt for one ticket: the system prompt, the [`EXAMPLES`] as
    /// earlier turns, then the ticket. Everything before the ticket is the
    /// same for every ticket, so the prefix cache computes it once.
    pub fn prompt(ticket: &str) -> Prompt {
        few_shot(SYSTEM, EXAMPLES, "Ticket: ", ticket)
    }

    /// Tickets whose category is clear, with it: the end-to-end tests check
    /// the model gets these right, the benchmark times them.
    pub const CLEAR_TICKETS: &[(&str, &str)] = &[
        ("My invoice was charged twice this month, please fix it.", "billing"),
        ("I need a refund for the payment you took by mistake.", "billing"),
        ("Your server is down and our checkout page returns errors.", "incident"),
        ("The database is failing and the service keeps crashing.", "incident"),
        ("What are your opening hours?", "inquiry"),
        ("Can you tell me which plans include phone support?", "inquiry"),
    ];

    /// More tickets, of every kind, for timing (50 queries in the benchmark
    /// cycle through [`CLEAR_TICKETS`] and these).
    pub const MORE_TICKETS: &[&str] = &[
        "The login page shows a blank screen since the update.",
        "Please send me a copy of last month's receipt.",
        "Is there an API for exporting my data?",
        "We were charged in dollars instead of euros.",
        "Emails from your system stopped arriving yesterday; today they work again.",
        "How do I add a second user to my account?",
        "The mobile app freezes when I open the settings.",
        "My credit card was declined but the money left my account.",
    ];
}

/// A chat prompt: the system message, each example as a user turn
/// (`label` + input) answered by an assistant turn, then the input.
fn few_shot(system: &str, examples: &[(&str, &str)], label: &str, input: &str) -> Prompt {
    let mut messages = vec![Message::system(system)];
    for (example, answer) in examples {
        messages.push(Message::user(format!("{label}{example}")));
        messages.push(Message::assistant(*answer));
    }
    messages.push(Message::user(format!("{label}{input}")));
    Prompt::Chat(messages)
}

/// Telemetry alert triage for a gateway: `{"severity": info|warning|
/// critical, "component": string, "action": page|ticket|ignore}`.
pub mod alerts {
    use super::*;

    /// The system prompt.
    pub const SYSTEM: &str = "\
You triage monitoring alerts. Answer with JSON: \"severity\" is \"critical\" when a service is down or data is \
at risk, \"warning\" when a resource is close to a limit, \"info\" otherwise; \"component\" names the affected \
part in one or two words; \"action\" is \"page\" for critical, \"ticket\" for warnings, \"ignore\" for info.";

    /// Worked examples, as earlier turns (alert, answer).
    pub const EXAMPLES: &[(&str, &str)] = &[
        ("certificate renewed for www", r#"{"severity":"info","component":"certificate","action":"ignore"}"#),
        ("disk /var at 91% on db-2", r#"{"severity":"warning","component":"database disk","action":"ticket"}"#),
        (
            "checkout-api: 100% of requests failing for 3 minutes",
            r#"{"severity":"critical","component":"checkout api","action":"page"}"#,
        ),
    ];

    /// The JSON Schema of the answer.
    pub fn schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "severity": {"enum": ["info", "warning", "critical"]},
                "component": {"type": "string", "minLength": 1, "maxLength": 40},
                "action": {"enum": ["page", "ticket", "ignore"]}
            },
            "required": ["severity", "component", "action"],
            "additionalProperties": false
        })
    }

    /// The shape: [`schema`], compact like the examples.
    pub fn shape() -> Shape {
        Shape::json_schema_compact(schema())
    }

    /// The prompt for one alert line: system prompt, [`EXAMPLES`] as
    /// turns, the alert.
    pub fn prompt(alert: &str) -> Prompt {
        few_shot(SYSTEM, EXAMPLES, "Alert: ", alert)
    }
}
