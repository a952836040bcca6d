//! Ready-made tasks: the prompts and schemas the examples, `formwork bench`
//! and the end-to-end tests share (one definition, so the benchmark measures
//! what the examples show).

use crate::generate::{Prompt, Shape};
use crate::tokenizer::Message;

/// Support-ticket triage: `{"category": incident|billing|inquiry,
/// "urgency": 1-5, "resolvedOffline": bool}`.
///
/// The system prompt carries a few worked examples: a 135M model given only
/// the field names picks `incident` for nearly everything; with examples it
/// tells billing from incidents. The system prompt is the same for every
/// ticket, so [`Engine`](crate::generate::Engine)'s prefix cache computes it
/// once per process.
pub mod triage {
    use super::*;

    /// The system prompt.
    pub const SYSTEM: &str = "\
You triage customer support tickets. Answer with JSON: \"category\" is \"billing\" for invoices, charges, \
payments and refunds; \"incident\" when something is broken, down or failing; \"inquiry\" for questions and \
requests for information. \"urgency\" is 1 (can wait) to 5 (critical outage). \"resolvedOffline\" is true when \
the customer says the problem went away or they fixed it themselves.
Examples:
Ticket: I was billed twice for my subscription.
{\"category\": \"billing\", \"urgency\": 3, \"resolvedOffline\": false}
Ticket: The whole website is down and nobody can log in!
{\"category\": \"incident\", \"urgency\": 5, \"resolvedOffline\": false}
Ticket: Do you offer a discount for students?
{\"category\": \"inquiry\", \"urgency\": 1, \"resolvedOffline\": false}
Ticket: The app crashed this morning but after a restart it works again.
{\"category\": \"incident\", \"urgency\": 2, \"resolvedOffline\": true}";

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

    /// The shape: [`schema`] with the JSON spacing of the examples.
    pub fn shape() -> Shape {
        Shape::json_schema(schema())
    }

    /// The prompt for one ticket.
    pub fn prompt(ticket: &str) -> Prompt {
        Prompt::Chat(vec![Message::system(SYSTEM), Message::user(format!("Ticket: {ticket}"))])
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

/// Telemetry alert triage for a gateway: `{"severity": info|warning|
/// critical, "component": string, "action": page|ticket|ignore}`.
pub mod alerts {
    use super::*;

    /// The system prompt.
    pub const SYSTEM: &str = "\
You triage monitoring alerts. Answer with JSON: \"severity\" is \"critical\" when a service is down or data is \
at risk, \"warning\" when a resource is close to a limit, \"info\" otherwise; \"component\" names the affected \
part in one or two words; \"action\" is \"page\" for critical, \"ticket\" for warnings, \"ignore\" for info.
Example:
Alert: disk /var at 91% on db-2
{\"severity\": \"warning\", \"component\": \"database disk\", \"action\": \"ticket\"}";

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

    /// The prompt for one alert line.
    pub fn prompt(alert: &str) -> Prompt {
        Prompt::Chat(vec![Message::system(SYSTEM), Message::user(format!("Alert: {alert}"))])
    }
}
