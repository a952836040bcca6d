//! Reading a vocabulary from a Hugging Face `tokenizer.json`.
//!
//! Only the vocabulary is read (token strings -> exact bytes), not the
//! tokenization rules: this crate never tokenizes text, it only needs to know
//! what bytes each token stands for. Two encodings of token strings are
//! handled: byte-level BPE (GPT-2's byte-to-character map; SmolLM2, Llama 3,
//! Qwen2.5) and SentencePiece pieces (`▁` for space, `<0xNN>` byte fallback;
//! Gemma, Llama 2).

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::vocab::{TokenId, Vocabulary};

/// End-of-sequence token names looked for when none are given.
const DEFAULT_EOS: &[&str] = &["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<eos>", "</s>", "<|endoftext|>"];

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Vocabulary(msg.into()))
}

/// The GPT-2 byte-level map, inverted: the byte a character of a byte-level
/// token string stands for. Printable Latin-1 characters (`!`..=`~`,
/// `¡`..=`¬`, `®`..=`ÿ`) stand for themselves; the other 68 byte values
/// (0..=32, 127..=160, 173), in ascending order, are U+0100 onwards.
fn byte_level_char_to_byte(c: char) -> Option<u8> {
    let c = c as u32;
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if c <= 0xFF {
        // `c` fits in a byte here.
        return printable(c).then_some(c as u8);
    }
    let i = c.checked_sub(0x100)?;
    match i {
        0..=32 => Some(i as u8),
        33..=66 => Some((127 + (i - 33)) as u8),
        67 => Some(173),
        _ => None,
    }
}

fn mentions(v: &Value, ty: &str) -> bool {
    match v {
        Value::Object(m) => m.get("type").and_then(Value::as_str) == Some(ty) || m.values().any(|x| mentions(x, ty)),
        Value::Array(a) => a.iter().any(|x| mentions(x, ty)),
        _ => false,
    }
}

impl Vocabulary {
    /// The bytes a byte-level BPE token string stands for (GPT-2's
    /// byte-to-character map: `Ġ` is a space, `Ċ` a newline; SmolLM2,
    /// Llama 3, Qwen2.5). The error is the first character outside the map.
    ///
    /// ```
    /// use formwork_grammar::Vocabulary;
    /// assert_eq!(Vocabulary::byte_level_piece_bytes("Ġhi").unwrap(), b" hi");
    /// assert_eq!(Vocabulary::byte_level_piece_bytes("a b"), Err(' '));
    /// ```
    pub fn byte_level_piece_bytes(piece: &str) -> Result<Vec<u8>, char> {
        piece.chars().map(|c| byte_level_char_to_byte(c).ok_or(c)).collect()
    }

    /// The bytes a SentencePiece piece stands for: `<0xNN>` byte-fallback
    /// pieces are that byte, and `▁` (U+2581) is a space.
    ///
    /// ```
    /// use formwork_grammar::Vocabulary;
    /// assert_eq!(Vocabulary::sentencepiece_piece_bytes("▁hi"), b" hi");
    /// assert_eq!(Vocabulary::sentencepiece_piece_bytes("<0x0A>"), b"\n");
    /// ```
    pub fn sentencepiece_piece_bytes(piece: &str) -> Vec<u8> {
        match byte_fallback(piece) {
            Some(b) => vec![b],
            None => piece.replace('\u{2581}', " ").into_bytes(),
        }
    }

    /// Reads the vocabulary of a `tokenizer.json`. `eos` names the
    /// end-of-sequence tokens; when empty, the first of `<|im_end|>`,
    /// `<|eot_id|>`, `<end_of_turn>`, `<eos>`, `</s>`, `<|endoftext|>` found
    /// (and `<end_of_turn>` alongside `<eos>`) is used.
    ///
    /// Added tokens marked `special` are special; other added tokens match
    /// their literal text.
    pub fn from_tokenizer_json(json: &str, eos: &[&str]) -> Result<Vocabulary, Error> {
        let v: Value = serde_json::from_str(json).map_err(|e| err(format!("tokenizer.json is not valid JSON: {e}")))?;
        let model = v.get("model").ok_or_else(|| err("tokenizer.json has no `model`"))?;
        let byte_level = mentions(v.get("pre_tokenizer").unwrap_or(&Value::Null), "ByteLevel")
            || mentions(v.get("decoder").unwrap_or(&Value::Null), "ByteLevel");
        let mut entries: Vec<(String, u64)> = Vec::new();
        match model.get("vocab") {
            Some(Value::Object(m)) => {
                for (k, id) in m {
                    let id = id.as_u64().ok_or_else(|| err(format!("token {k:?} has a non-integer id")))?;
                    entries.push((k.clone(), id));
                }
            }
            Some(Value::Array(a)) => {
                for (i, e) in a.iter().enumerate() {
                    let piece = e
                        .get(0)
                        .and_then(Value::as_str)
                        .ok_or_else(|| err(format!("vocab entry {i} is not [piece, score]")))?;
                    entries.push((piece.to_string(), i as u64));
                }
            }
            _ => return Err(err("model.vocab is missing or not a map or list")),
        }
        let mut added: Vec<(String, u64, bool)> = Vec::new();
        if let Some(Value::Array(a)) = v.get("added_tokens") {
            for t in a {
                let id = t.get("id").and_then(Value::as_u64).ok_or_else(|| err("added token without id"))?;
                let content =
                    t.get("content").and_then(Value::as_str).ok_or_else(|| err("added token without content"))?;
                let special = t.get("special").and_then(Value::as_bool).unwrap_or(false);
                added.push((content.to_string(), id, special));
            }
        }
        let max_id = entries
            .iter()
            .map(|e| e.1)
            .chain(added.iter().map(|a| a.1))
            .max()
            .ok_or_else(|| err("empty vocabulary"))?;
        if max_id >= 1 << 24 {
            return Err(err(format!("token id {max_id} is implausibly large")));
        }
        let n = max_id as usize + 1;
        let mut tokens: Vec<Vec<u8>> = vec![Vec::new(); n];
        let mut names: Vec<String> = vec![String::new(); n];
        for (piece, id) in &entries {
            let bytes = if byte_level {
                Vocabulary::byte_level_piece_bytes(piece)
                    .map_err(|c| err(format!("token {piece:?} has character {c:?} outside the byte-level alphabet")))?
            } else {
                Vocabulary::sentencepiece_piece_bytes(piece)
            };
            tokens[*id as usize] = bytes;
            names[*id as usize] = piece.clone();
        }
        let mut special = Vec::new();
        for (content, id, sp) in &added {
            names[*id as usize] = content.clone();
            if *sp {
                tokens[*id as usize] = content.as_bytes().to_vec();
                special.push(*id as TokenId);
            } else {
                tokens[*id as usize] = if byte_level {
                    content.as_bytes().to_vec()
                } else {
                    content.replace('\u{2581}', " ").into_bytes()
                };
            }
        }
        let find = |name: &str| names.iter().position(|n| n == name).map(|i| i as TokenId);
        let mut eos_ids = Vec::new();
        if eos.is_empty() {
            for name in DEFAULT_EOS {
                if let Some(id) = find(name) {
                    eos_ids.push(id);
                    if *name == "<end_of_turn>" {
                        if let Some(e) = find("<eos>") {
                            eos_ids.push(e);
                        }
                    }
                    break;
                }
            }
        } else {
            for name in eos {
                eos_ids.push(find(name).ok_or_else(|| err(format!("EOS token {name:?} is not in the vocabulary")))?);
            }
        }
        Vocabulary::new(tokens, &special, &eos_ids)
    }
}

fn byte_fallback(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_vocab() {
        let json = r#"{"model":{"type":"BPE","vocab":{"a":0,"Ġb":1,"Ċ":2}},
            "pre_tokenizer":{"type":"ByteLevel"},
            "added_tokens":[{"id":3,"content":"<|im_end|>","special":true}]}"#;
        let v = Vocabulary::from_tokenizer_json(json, &[]).unwrap();
        assert_eq!(v.token_bytes(1), b" b");
        assert_eq!(v.token_bytes(2), b"\n");
        assert_eq!(v.eos(), &[3]);
        assert!(v.is_special(3));
    }

    #[test]
    fn byte_level_map_is_a_bijection_onto_bytes() {
        let mut seen = [false; 256];
        for c in (0u32..0x200).filter_map(char::from_u32) {
            if let Some(b) = byte_level_char_to_byte(c) {
                assert!(!seen[b as usize], "byte {b} reached twice");
                seen[b as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(byte_level_char_to_byte('Ġ'), Some(b' '));
        assert_eq!(byte_level_char_to_byte('Ċ'), Some(b'\n'));
        assert_eq!(byte_level_char_to_byte('\u{0100}'), Some(0));
        assert_eq!(byte_level_char_to_byte('\u{0143}'), Some(173));
        assert_eq!(byte_level_char_to_byte(' '), None);
        assert_eq!(byte_level_char_to_byte('\u{0144}'), None);
    }

    #[test]
    fn sentencepiece_vocab() {
        let json = r#"{"model":{"type":"BPE","vocab":{"<eos>":1,"▁hi":2,"<0x0A>":3,"x":0}},
            "decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"}]},
            "added_tokens":[{"id":1,"content":"<eos>","special":true}]}"#;
        let v = Vocabulary::from_tokenizer_json(json, &[]).unwrap();
        assert_eq!(v.token_bytes(2), b" hi");
        assert_eq!(v.token_bytes(3), b"\n");
        assert_eq!(v.eos(), &[1]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(Vocabulary::from_tokenizer_json("{", &[]).is_err());
        assert!(Vocabulary::from_tokenizer_json(r#"{"model":{}}"#, &[]).is_err());
        assert!(Vocabulary::from_tokenizer_json(r#"{"model":{"vocab":{"a":99999999}}}"#, &[]).is_err());
        assert!(Vocabulary::from_tokenizer_json(r#"{"model":{"vocab":{"a":0}}}"#, &["<nope>"]).is_err());
    }
}
