//! Chat templates: a conversation as the prompt text a model was trained on.
//!
//! Models ship their template as Jinja source (`tokenizer.chat_template`).
//! formwork does not embed a Jinja interpreter: it recognises the template
//! families of the models it runs and renders them natively, which keeps
//! rendering infallible and the wasm build small. [`ChatTemplate::parse`]
//! returns `None` for a template it does not recognise, so a caller never
//! gets a prompt that differs from what the model's template would produce.
//!
//! Recognised: ChatML (`<|im_start|>role\ncontent<|im_end|>\n`; SmolLM2,
//! Qwen2.5), including a default system message the template inserts when
//! the conversation does not start with one.

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant` (written into the prompt as given).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}

/// A recognised chat template (see the module docs).
///
/// ```
/// use formwork::tokenizer::{ChatTemplate, Message};
/// let t = ChatTemplate::chatml(None);
/// let prompt = t.render(&[Message::user("Hi")], true);
/// assert_eq!(prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTemplate {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// ChatML, with the system message the template inserts when the first
    /// message is not a system message.
    ChatMl { default_system: Option<String> },
}

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

impl ChatTemplate {
    /// ChatML with an optional default system message.
    pub fn chatml(default_system: Option<&str>) -> ChatTemplate {
        ChatTemplate { kind: Kind::ChatMl { default_system: default_system.map(str::to_string) } }
    }

    /// Recognises a Jinja chat template; `None` when it is not a family
    /// formwork renders.
    pub fn parse(source: &str) -> Option<ChatTemplate> {
        let role_then_content = ["message['role']", "message[\"role\"]", "message.role"];
        if source.contains(IM_START) && source.contains(IM_END) && role_then_content.iter().any(|r| source.contains(r))
        {
            return Some(ChatTemplate::chatml(chatml_default_system(source).as_deref()));
        }
        None
    }

    /// The default system message, if the template inserts one.
    pub fn default_system(&self) -> Option<&str> {
        match &self.kind {
            Kind::ChatMl { default_system } => default_system.as_deref(),
        }
    }

    /// The prompt text for `messages`; with `add_generation_prompt` it ends
    /// where the assistant's answer begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        match &self.kind {
            Kind::ChatMl { default_system } => {
                let mut out = String::new();
                if let (Some(system), Some(first)) = (default_system, messages.first()) {
                    if first.role != "system" {
                        push_chatml(&mut out, "system", system);
                    }
                }
                for m in messages {
                    push_chatml(&mut out, &m.role, &m.content);
                }
                if add_generation_prompt {
                    out.push_str(IM_START);
                    out.push_str("assistant\n");
                }
                out
            }
        }
    }
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str(IM_START);
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str(IM_END);
    out.push('\n');
}

/// The literal system message of a ChatML template: text following
/// `<|im_start|>system` and a newline (a real one or the escape `\n`) up to
/// `<|im_end|>`, all inside one string literal (no quote, brace or `+`).
fn chatml_default_system(source: &str) -> Option<String> {
    let marker = "<|im_start|>system";
    let mut rest = source;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let body = if let Some(b) = rest.strip_prefix("\\n") {
            b
        } else if let Some(b) = rest.strip_prefix('\n') {
            b
        } else {
            continue;
        };
        let Some(end) = body.find(IM_END) else { continue };
        let text = &body[..end];
        if text.is_empty() || text.contains(['\'', '"', '{', '}', '+']) {
            continue;
        }
        return Some(unescape(text));
    }
    None
}

/// Jinja string-literal escapes (`\n`, `\t`, `\\`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as its GGUF stores it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_is_chatml_with_default_system() {
        let t = ChatTemplate::parse(SMOLLM2).unwrap();
        assert_eq!(t.default_system(), Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
        // What jinja2 renders for this template (checked with Python's jinja2 3.1).
        assert_eq!(
            t.render(&[Message::user("Hi")], true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            t.render(&[Message::system("S"), Message::user("U"), Message::assistant("A")], false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
        );
        assert_eq!(t.render(&[], true), "<|im_start|>assistant\n");
    }

    #[test]
    fn escaped_newline_default_system() {
        let src = r#"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}"#;
        let t = ChatTemplate::parse(src).unwrap();
        assert_eq!(t.default_system(), Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    }

    #[test]
    fn unknown_templates_are_not_guessed() {
        assert_eq!(
            ChatTemplate::parse("{{ bos_token }}{% for m in messages %}[INST] {{ m.content }}{% endfor %}"),
            None
        );
        let plain = ChatTemplate::parse("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}{% endfor %}").unwrap();
        assert_eq!(plain.default_system(), None);
    }
}
