//! Text <-> token ids for the supported models (tokenizer.json or GGUF
//! metadata), the grammar [`Vocabulary`] of a
//! tokenizer, and chat templates.
//!
//! A [`Tokenizer`] wraps a Hugging Face `tokenizers::Tokenizer`: read from a
//! `tokenizer.json` ([`Tokenizer::from_json`]) or rebuilt from a GGUF file's
//! `tokenizer.ggml.*` metadata ([`Tokenizer::from_gguf`]) so that a GGUF file
//! alone is enough to run a model. Both give the same ids for the same text
//! as the model's own tokenizer (the tests compare the GGUF-built SmolLM2
//! tokenizer with its `tokenizer.json` id for id).
//!
//! What the GGUF route reproduces (`tokenizer.ggml.model` / `.pre`):
//!
//! | model | pre-tokenizer | as |
//! |:------|:--------------|:---|
//! | `gpt2` (byte-level BPE) | `gpt2` | GPT-2's split regex, then the byte-to-character map |
//! | | `smollm` (also `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva`) | every digit isolated, then the GPT-2 regex |
//! | | `llama-bpe` (also `llama3`, `falcon3`, `pixtral`, ...: llama.cpp's Llama 3 split) | the Llama 3 regex (digits in runs of at most three) |
//! | | `qwen2` (also `stablelm2`, `deepseek-r1-qwen`) | NFC, then the Qwen2 regex (single digits) |
//! | | `default` or absent | llama.cpp's default for BPE vocabularies: four regexes applied in turn |
//! | `llama` (SentencePiece BPE) | (not used) | `▁` for spaces, a `▁` prepended unless `add_space_prefix` is false, merges ranked by score, `<0xNN>` byte fallback |
//!
//! Anything else is an error naming the value ([`Tokenizer::from_gguf`]).
//!
//! Token bytes: [`Tokenizer::token_bytes`] is exactly what a token stands
//! for (special tokens: their text), and [`Tokenizer::decode`] concatenates
//! them, so `decode(encode(s)) == s` for every text whose bytes all have
//! tokens. Some vocabularies lack a few byte values (SmolLM2 has no token for
//! the control bytes 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D nor for 0xC0, 0xC1,
//! 0xF5..=0xFF): like the Hugging Face tokenizer, encoding drops such
//! characters rather than failing.
//!
//! End of a turn: [`Tokenizer::eos`] is the token an assistant turn ends with
//! (`<|im_end|>` for SmolLM2-Instruct); the vocabulary's EOS set holds every
//! end-of-generation token, as llama.cpp counts them (`eos_token_id`,
//! `eot_token_id`, `eom_token_id` and the control tokens named
//! `<|im_end|>`, `<|eot_id|>`, `<|eom_id|>`, `<|end|>`, `<end_of_turn>`,
//! `<|endoftext|>`, `<|end_of_text|>`, `<EOT>`).

mod chat;
mod gguf;

use std::sync::Arc;

use crate::error::ErrorKind;
use crate::grammar::Vocabulary;
use crate::Error;

pub use chat::{ChatTemplate, Message};

/// End-of-turn tokens, in order of preference for [`Tokenizer::eos`].
const END_OF_TURN: &[&str] = &["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"];

/// End-of-generation token texts (llama.cpp's list, for vocabularies without
/// explicit metadata): an assistant may stop with any of them.
const END_OF_GENERATION: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
];

/// General end-of-sequence token texts, for a `tokenizer.json` (which does not
/// say which token is EOS) that has no end-of-turn token.
const GENERAL_EOS: &[&str] = &["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"];

/// A model's tokenizer: text to token ids and back, the grammar vocabulary,
/// the special ids (EOS, BOS) and the chat template.
///
/// `Send + Sync`; build it once and share it in an [`Arc`].
///
/// ```
/// # fn main() -> Result<(), formwork::Error> {
/// let json = include_bytes!("../../grammar/testdata/tokenizers/smollm2-135m.json");
/// let tok = formwork::tokenizer::Tokenizer::from_json(json)?;
/// let ids = tok.encode("<|im_start|>user\nHi 42<|im_end|>")?;
/// assert_eq!(ids[0], 1); // <|im_start|> is one token
/// assert_eq!(tok.decode(&ids), "<|im_start|>user\nHi 42<|im_end|>");
/// assert_eq!(tok.eos(), 2); // <|im_end|>
/// # Ok(())
/// # }
/// ```
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    vocab: Arc<Vocabulary>,
    eos: u32,
    bos: Option<u32>,
    add_bos: bool,
    chat_template: Option<ChatTemplate>,
    chat_template_source: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("len", &self.len())
            .field("eos", &self.eos)
            .field("bos", &self.bos)
            .field("add_bos", &self.add_bos)
            .field("chat_template", &self.chat_template)
            .finish()
    }
}

impl Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`.
    ///
    /// A `tokenizer.json` does not say which token is EOS or BOS, nor hold
    /// the chat template (those live in `tokenizer_config.json`): EOS is the
    /// first end-of-turn token present (`<|im_end|>`, `<|eot_id|>`,
    /// `<end_of_turn>`, `<|end|>`), else the first of `<|endoftext|>`,
    /// `<|end_of_text|>`, `</s>`, `<eos>`; BOS is unknown. Set a template with
    /// [`Tokenizer::with_chat_template`].
    pub fn from_json(bytes: &[u8]) -> Result<Tokenizer, Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ErrorKind::Tokenizer(format!("tokenizer.json is not UTF-8: {e}")))?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| ErrorKind::Tokenizer(format!("tokenizer.json cannot be read: {e}")))?;
        let specials: Vec<(u32, String)> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (id, t.content))
            .collect();
        let find = |name: &str| specials.iter().find(|(_, c)| c == name).map(|(id, _)| *id);
        let eos = END_OF_TURN.iter().chain(GENERAL_EOS).find_map(|name| find(name)).ok_or_else(|| {
            ErrorKind::Tokenizer(format!(
                "tokenizer.json has no end-of-sequence token: none of the special tokens {:?} is present",
                END_OF_TURN.iter().chain(GENERAL_EOS).collect::<Vec<_>>()
            ))
        })?;
        let eos_names: Vec<&str> = END_OF_GENERATION.iter().copied().filter(|n| find(n).is_some()).collect();
        let vocab = Vocabulary::from_tokenizer_json(text, &eos_names)
            .map_err(|e| ErrorKind::Tokenizer(format!("tokenizer.json vocabulary: {e}")))?;
        let tok = Tokenizer {
            inner,
            vocab: Arc::new(vocab),
            eos,
            bos: None,
            add_bos: false,
            chat_template: None,
            chat_template_source: None,
        };
        tok.check_size()?;
        Ok(tok)
    }

    /// Reads a `tokenizer.json` file ([`Tokenizer::from_json`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_json_file(path: &std::path::Path) -> Result<Tokenizer, Error> {
        let bytes = std::fs::read(path).map_err(|source| ErrorKind::Io { path: path.to_path_buf(), source })?;
        Tokenizer::from_json(&bytes)
    }

    /// Rebuilds the tokenizer of a GGUF file from its `tokenizer.ggml.*`
    /// metadata (see the module docs for what is supported).
    ///
    /// Errors name the metadata key at fault: a missing token list, token
    /// types or scores of the wrong length, a merge that is not two tokens,
    /// an unsupported `tokenizer.ggml.model` or `tokenizer.ggml.pre`.
    pub fn from_gguf(gguf: &crate::weights::Gguf) -> Result<Tokenizer, Error> {
        let built = gguf::build(gguf)?;
        let chat_template = built.chat_template.as_deref().and_then(ChatTemplate::parse);
        let tok = Tokenizer {
            inner: built.inner,
            vocab: Arc::new(built.vocab),
            eos: built.eos,
            bos: built.bos,
            add_bos: built.add_bos,
            chat_template,
            chat_template_source: built.chat_template,
        };
        tok.check_size()?;
        Ok(tok)
    }

    /// Sets the chat template from its Jinja source (a `tokenizer_config.json`
    /// `chat_template`). Templates formwork does not recognise leave
    /// [`Tokenizer::chat_template`] empty; the source is kept either way.
    pub fn with_chat_template(mut self, source: &str) -> Tokenizer {
        self.chat_template = ChatTemplate::parse(source);
        self.chat_template_source = Some(source.to_string());
        self
    }

    /// The vocabulary and the `tokenizers` model must agree on the id range.
    fn check_size(&self) -> Result<(), Error> {
        let n = self.inner.get_vocab_size(true);
        if n != self.vocab.len() {
            return Err(ErrorKind::Tokenizer(format!(
                "the tokenizer has {n} ids but its vocabulary {} (an added token outside the token list?)",
                self.vocab.len()
            ))
            .into());
        }
        Ok(())
    }

    /// Encodes text WITHOUT adding BOS/EOS; special-token strings in the text
    /// (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| ErrorKind::Tokenizer(format!("encoding a text of {} bytes: {e}", text.len())))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Lossy UTF-8 decoding of the concatenated token bytes (special tokens
    /// rendered as their text; unknown ids contribute nothing).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id));
        }
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The exact bytes a token stands for (empty for unknown ids).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        if (id as usize) < self.vocab.len() {
            self.vocab.token_bytes(id)
        } else {
            &[]
        }
    }

    /// The grammar vocabulary: every token's bytes, special tokens marked,
    /// the end-of-generation ids as its EOS set.
    pub fn vocabulary(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Vocabulary size (ids `0..len`).
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    /// Always false: a tokenizer has at least one token.
    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// The id that ends an assistant turn in chat use (`<|im_end|>` for
    /// SmolLM2-Instruct).
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// The beginning-of-sequence id, when the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// Whether the model expects [`Tokenizer::bos`] before a prompt
    /// (`tokenizer.ggml.add_bos_token`; false for SmolLM2).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The chat template, when the model has one formwork can render.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// The chat template's Jinja source as the model ships it, recognised or not.
    pub fn chat_template_source(&self) -> Option<&str> {
        self.chat_template_source.as_deref()
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &[u8] = include_bytes!("../../grammar/testdata/tokenizers/smollm2-135m.json");

    #[test]
    fn tokenizer_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
    }

    #[test]
    fn from_json_finds_special_ids() {
        let tok = Tokenizer::from_json(SMOL).unwrap();
        assert_eq!(tok.len(), 49152);
        assert_eq!(tok.eos(), 2);
        assert_eq!(tok.vocabulary().eos(), &[0, 2]);
        assert!(tok.vocabulary().is_special(1));
        assert_eq!(tok.token_bytes(1), b"<|im_start|>");
        assert_eq!(tok.token_bytes(u32::MAX), b"");
        assert_eq!(tok.encode("").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn missing_bytes_are_dropped_not_fatal() {
        let tok = Tokenizer::from_json(SMOL).unwrap();
        let with = tok.encode("a\u{4}b").unwrap();
        let without = tok.encode("a b").unwrap();
        assert_eq!(tok.decode(&with), "ab");
        assert_ne!(with, without);
    }

    #[test]
    fn from_json_errors_are_clear() {
        let e = Tokenizer::from_json(b"{").unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
        let e = Tokenizer::from_json(b"\xff").unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn decode_is_lossy_on_partial_characters() {
        let tok = Tokenizer::from_json(SMOL).unwrap();
        // The single byte 0xC3 (the first half of "é") has a token of its own.
        let lead = (0..tok.len() as u32).find(|&id| tok.token_bytes(id) == b"\xc3").unwrap();
        assert_eq!(tok.decode(&[lead]), "\u{FFFD}");
        let ids = tok.encode("é").unwrap();
        assert_eq!(tok.decode(&ids), "é");
    }
}
