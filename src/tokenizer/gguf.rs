//! Rebuilding a model's tokenizer from GGUF `tokenizer.ggml.*` metadata.
//!
//! The result is an ordinary `tokenizers::Tokenizer` put together from its
//! parts (model, normalizer, pre-tokenizer, added tokens) the way the model's
//! `tokenizer.json` would describe it, plus the exact bytes of every token.

use std::collections::HashMap;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, NormalizerWrapper, SplitDelimiterBehavior};

use super::{END_OF_GENERATION, END_OF_TURN};
use crate::error::ErrorKind;
use crate::grammar::Vocabulary;
use crate::weights::{Array, Gguf};
use crate::Error;

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// The models [`build`] reproduces, for error messages.
const SUPPORTED_MODELS: &str = "gpt2 (byte-level BPE), llama (SentencePiece BPE)";
/// The `gpt2` pre-tokenizers [`build`] reproduces, for error messages.
const SUPPORTED_PRE: &str = "gpt2, smollm, starcoder, refact, command-r, codeshell, exaone, minerva, llama-bpe, \
                             llama3, falcon3, pixtral, qwen2, stablelm2, deepseek-r1-qwen, default";

/// Llama 3's split regex (digits in runs of at most three).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split regex (single digits).
const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's default split for BPE vocabularies without a known
/// pre-tokenizer: these regexes applied one after the other, each splitting
/// the pieces of the previous one (matches and gaps both kept).
const DEFAULT_REGEXES: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
mod token_type {
    pub const NORMAL: i64 = 1;
    pub const UNKNOWN: i64 = 2;
    pub const CONTROL: i64 = 3;
    pub const USER_DEFINED: i64 = 4;
    pub const UNUSED: i64 = 5;
    // 6 = BYTE (`<0xNN>` pieces): decoded like normal pieces.
}

/// What [`build`] makes of a GGUF file's metadata.
pub(super) struct Built {
    pub inner: tokenizers::Tokenizer,
    pub vocab: Vocabulary,
    pub eos: u32,
    pub bos: Option<u32>,
    pub add_bos: bool,
    pub chat_template: Option<String>,
}

fn invalid(key: &str, problem: impl Into<String>) -> Error {
    ErrorKind::InvalidMetadata { key: key.to_string(), problem: problem.into() }.into()
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    ErrorKind::Tokenizer(e.to_string()).into()
}

/// An optional `u32` key: absent is `None`, present but mistyped is an error.
fn optional_u32(gguf: &Gguf, key: &str) -> Result<Option<u32>, Error> {
    match gguf.get(key) {
        None => Ok(None),
        Some(_) => gguf.get_u32(key).map(Some),
    }
}

fn optional_bool(gguf: &Gguf, key: &str) -> Result<Option<bool>, Error> {
    match gguf.get(key) {
        None => Ok(None),
        Some(_) => gguf.get_bool(key).map(Some),
    }
}

/// Token types, one per token (all `NORMAL` when the key is absent).
fn token_types(gguf: &Gguf, n: usize) -> Result<Vec<i64>, Error> {
    let Some(_) = gguf.get(KEY_TYPES) else {
        return Ok(vec![token_type::NORMAL; n]);
    };
    let array = gguf.get_array(KEY_TYPES)?;
    let types: Vec<i64> = match array {
        Array::I32(v) => v.iter().map(|&t| i64::from(t)).collect(),
        Array::U32(v) => v.iter().map(|&t| i64::from(t)).collect(),
        _ => {
            return Err(ErrorKind::MetadataType {
                key: KEY_TYPES.to_string(),
                expected: "array of i32",
                found: format!("array of {}", array.element_type_name()),
            }
            .into())
        }
    };
    if types.len() != n {
        return Err(invalid(KEY_TYPES, format!("{} token types for {n} tokens", types.len())));
    }
    Ok(types)
}

/// Builds the tokenizer described by `gguf`'s metadata.
pub(super) fn build(gguf: &Gguf) -> Result<Built, Error> {
    let model = gguf.get_str(KEY_MODEL)?;
    let tokens = gguf.get_strings(KEY_TOKENS)?;
    let n = tokens.len();
    if n == 0 {
        return Err(invalid(KEY_TOKENS, "the token list is empty"));
    }
    if n > (u32::MAX / 2) as usize {
        return Err(invalid(KEY_TOKENS, format!("{n} tokens is too many")));
    }
    let types = token_types(gguf, n)?;
    let texts: Vec<&str> = tokens.iter().collect();

    let (inner, bytes) = match model {
        "gpt2" => gpt2(gguf, &texts, &types)?,
        "llama" => llama(gguf, &texts, &types)?,
        other => {
            return Err(ErrorKind::TokenizerUnsupported {
                key: KEY_MODEL,
                what: "tokenizer model",
                value: other.to_string(),
                supported: SUPPORTED_MODELS,
            }
            .into())
        }
    };

    let eos_id = optional_u32(gguf, "tokenizer.ggml.eos_token_id")?;
    let eot_id = optional_u32(gguf, "tokenizer.ggml.eot_token_id")?;
    let eom_id = optional_u32(gguf, "tokenizer.ggml.eom_token_id")?;
    let bos = optional_u32(gguf, "tokenizer.ggml.bos_token_id")?;
    for (key, id) in [("eos", eos_id), ("eot", eot_id), ("eom", eom_id), ("bos", bos)] {
        if let Some(id) = id {
            if id as usize >= n {
                return Err(invalid(&format!("tokenizer.ggml.{key}_token_id"), format!("id {id} is not below {n}")));
            }
        }
    }
    let chat_template = match gguf.get("tokenizer.chat_template") {
        None => None,
        Some(_) => Some(gguf.get_str("tokenizer.chat_template")?.to_string()),
    };

    // End-of-generation ids: the explicit ones plus control tokens with the
    // end-of-turn names llama.cpp recognises.
    let is_control = |id: usize| types[id] == token_type::CONTROL;
    let named = |name: &str| (0..n).find(|&i| is_control(i) && texts[i] == name).map(|i| i as u32);
    let mut eog: Vec<u32> = [eos_id, eot_id, eom_id].into_iter().flatten().collect();
    eog.extend(END_OF_GENERATION.iter().filter_map(|name| named(name)));

    // The end of an assistant turn: the explicit end-of-turn id, else the
    // end-of-turn token the chat template writes, else EOS.
    let template_eot = END_OF_TURN
        .iter()
        .filter(|name| chat_template.as_deref().is_some_and(|t| t.contains(*name)))
        .find_map(|name| named(name));
    let eos = eot_id
        .or(template_eot)
        .or(eos_id)
        .ok_or_else(|| ErrorKind::MissingMetadata { key: "tokenizer.ggml.eos_token_id".to_string() })?;

    let special: Vec<u32> = (0..n)
        .filter(|&i| matches!(types[i], token_type::CONTROL | token_type::UNKNOWN | token_type::UNUSED))
        .map(|i| i as u32)
        .collect();
    let vocab =
        Vocabulary::new(bytes, &special, &eog).map_err(|e| tok_err(format!("{KEY_TOKENS}: vocabulary: {e}")))?;

    let add_bos = optional_bool(gguf, "tokenizer.ggml.add_bos_token")?.unwrap_or(model == "llama");
    Ok(Built { inner, vocab, eos, bos, add_bos, chat_template })
}

/// The `(text, id)` map of the model's vocabulary. Where two ids share a
/// text, the first keeps it (the later one can still be decoded, never
/// produced by encoding).
fn vocab_map(texts: &[&str]) -> Vocab {
    let mut map: Vocab = Vocab::default();
    for (i, t) in texts.iter().enumerate() {
        map.entry((*t).to_string()).or_insert(i as u32);
    }
    map
}

/// Registers control tokens (special) and user-defined tokens (matched
/// literally, not normalised) and checks that each kept its id (`map` is the
/// model's text -> id map: a repeated text keeps its first id).
fn add_tokens(inner: &mut tokenizers::Tokenizer, map: &Vocab, texts: &[&str], types: &[i64]) -> Result<(), Error> {
    let mut special = Vec::new();
    let mut user = Vec::new();
    for (i, &t) in types.iter().enumerate() {
        if texts[i].is_empty() {
            continue;
        }
        match t {
            token_type::CONTROL => special.push(AddedToken::from(texts[i], true)),
            token_type::USER_DEFINED => user.push(AddedToken::from(texts[i], false).normalized(false)),
            _ => {}
        }
    }
    inner.add_special_tokens(&special);
    inner.add_tokens(&user);
    for t in special.iter().chain(&user) {
        let got = inner.token_to_id(&t.content);
        let want = map.get(&t.content).copied();
        if got != want {
            return Err(invalid(KEY_TOKENS, format!("token {:?} (id {want:?}) resolves to id {got:?}", t.content)));
        }
    }
    Ok(())
}

fn split(regex: &str) -> Result<PreTokenizerWrapper, Error> {
    let s = Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
        .map_err(|e| tok_err(format!("pre-tokenizer regex {regex:?}: {e}")))?;
    Ok(s.into())
}

/// `tokenizer.ggml.pre` of a byte-level BPE vocabulary as `tokenizers`
/// pre-tokenizer (and normalizer) parts.
fn gpt2_pre(pre: &str) -> Result<(Option<NormalizerWrapper>, PreTokenizerWrapper), Error> {
    let byte_level_after_split = || PreTokenizerWrapper::from(ByteLevel::new(false, true, false));
    let seq = |parts: Vec<PreTokenizerWrapper>| PreTokenizerWrapper::from(PreTokenizerSequence::new(parts));
    Ok(match pre {
        // `ByteLevel` with `use_regex` splits with GPT-2's regex.
        "gpt2" | "mpt" | "olmo" | "jais" => (None, ByteLevel::new(false, true, true).into()),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            (None, seq(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]))
        }
        "llama-bpe" | "llama3" | "falcon3" | "pixtral" | "llama-v3" => {
            (None, seq(vec![split(LLAMA3_REGEX)?, byte_level_after_split()]))
        }
        "qwen2" | "stablelm2" | "deepseek-r1-qwen" => {
            (Some(NFC.into()), seq(vec![split(QWEN2_REGEX)?, byte_level_after_split()]))
        }
        "default" => {
            let mut parts = DEFAULT_REGEXES.iter().map(|r| split(r)).collect::<Result<Vec<_>, _>>()?;
            parts.push(byte_level_after_split());
            (None, seq(parts))
        }
        other => {
            return Err(ErrorKind::TokenizerUnsupported {
                key: KEY_PRE,
                what: "pre-tokenizer",
                value: other.to_string(),
                supported: SUPPORTED_PRE,
            }
            .into())
        }
    })
}

/// Byte-level BPE (`tokenizer.ggml.model = gpt2`).
fn gpt2(gguf: &Gguf, texts: &[&str], types: &[i64]) -> Result<(tokenizers::Tokenizer, Vec<Vec<u8>>), Error> {
    let pre = match gguf.get(KEY_PRE) {
        None => "default",
        Some(_) => gguf.get_str(KEY_PRE)?,
    };
    let (normalizer, pre_tokenizer) = gpt2_pre(pre)?;

    let merge_strings = gguf.get_strings(KEY_MERGES)?;
    let mut merges = Vec::with_capacity(merge_strings.len());
    for (i, m) in merge_strings.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .ok_or_else(|| invalid(KEY_MERGES, format!("merge {i} {m:?} is not two tokens separated by a space")))?;
        merges.push((a.to_string(), b.to_string()));
    }
    // `tokenizers` checks that both halves and the merged token are in the
    // vocabulary and reports the first that is not.
    let map = vocab_map(texts);
    let bpe = BPE::builder()
        .vocab_and_merges(map.clone(), merges)
        .build()
        .map_err(|e| invalid(KEY_MERGES, format!("the merges do not fit the token list: {e}")))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_normalizer(normalizer);
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    add_tokens(&mut inner, &map, texts, types)?;

    let mut bytes = Vec::with_capacity(texts.len());
    for (i, (text, &t)) in texts.iter().zip(types).enumerate() {
        bytes.push(match t {
            token_type::CONTROL | token_type::USER_DEFINED => text.as_bytes().to_vec(),
            _ => match Vocabulary::byte_level_piece_bytes(text) {
                Ok(b) => b,
                // Placeholders (`[PAD12]`, unused slots) may hold any text.
                Err(_) if matches!(t, token_type::UNKNOWN | token_type::UNUSED) => text.as_bytes().to_vec(),
                Err(c) => {
                    return Err(invalid(
                        KEY_TOKENS,
                        format!("token {i} {text:?} has character {c:?} outside the byte-level alphabet"),
                    ))
                }
            },
        });
    }
    Ok((inner, bytes))
}

/// SentencePiece-style BPE (`tokenizer.ggml.model = llama`): merges ranked
/// by the merged piece's score (as SentencePiece merges the best-scoring
/// pair first), `▁` for spaces, `<0xNN>` byte fallback.
fn llama(gguf: &Gguf, texts: &[&str], types: &[i64]) -> Result<(tokenizers::Tokenizer, Vec<Vec<u8>>), Error> {
    let n = texts.len();
    let scores: Vec<f32> = match gguf.get(KEY_SCORES) {
        None => vec![0.0; n],
        Some(_) => {
            let array = gguf.get_array(KEY_SCORES)?;
            let s = array.as_f32().ok_or_else(|| ErrorKind::MetadataType {
                key: KEY_SCORES.to_string(),
                expected: "array of f32",
                found: format!("array of {}", array.element_type_name()),
            })?;
            if s.len() != n {
                return Err(invalid(KEY_SCORES, format!("{} scores for {n} tokens", s.len())));
            }
            s.to_vec()
        }
    };
    let add_space_prefix = optional_bool(gguf, "tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let unk = optional_u32(gguf, "tokenizer.ggml.unknown_token_id")?
        .filter(|&u| (u as usize) < n)
        .or_else(|| types.iter().position(|&t| t == token_type::UNKNOWN).map(|i| i as u32));

    // Merges: every way to cut a mergeable token into two mergeable tokens.
    let mergeable = |i: usize| matches!(types[i], token_type::NORMAL | token_type::USER_DEFINED);
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, t) in texts.iter().enumerate() {
        if mergeable(i) {
            index.entry(*t).or_insert(i);
        }
    }
    let mut ranked: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        if !mergeable(i) || index.get(t) != Some(&i) {
            continue;
        }
        for (cut, _) in t.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (index.get(&t[..cut]), index.get(&t[cut..])) {
                ranked.push((scores[i], i, l, r));
            }
        }
    }
    // Best score first; ties: the merged piece's id, then the left piece's.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges: Vec<(String, String)> =
        ranked.iter().map(|&(_, _, l, r)| (texts[l].to_string(), texts[r].to_string())).collect();

    let map = vocab_map(texts);
    let mut builder = BPE::builder().vocab_and_merges(map.clone(), merges).byte_fallback(true).fuse_unk(true);
    if let Some(u) = unk {
        builder = builder.unk_token(texts[u as usize].to_string());
    }
    let bpe = builder.build().map_err(|e| invalid(KEY_TOKENS, format!("SentencePiece vocabulary: {e}")))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    let replace = Replace::new(" ", "\u{2581}").map_err(tok_err)?;
    let normalizer: NormalizerWrapper = if add_space_prefix {
        NormalizerSequence::new(vec![Prepend::new("\u{2581}".to_string()).into(), replace.into()]).into()
    } else {
        replace.into()
    };
    inner.with_normalizer(Some(normalizer));
    add_tokens(&mut inner, &map, texts, types)?;

    let bytes = texts
        .iter()
        .zip(types)
        .map(|(text, &t)| match t {
            token_type::CONTROL | token_type::UNKNOWN | token_type::UNUSED => text.as_bytes().to_vec(),
            _ => Vocabulary::sentencepiece_piece_bytes(text),
        })
        .collect();
    Ok((inner, bytes))
}
