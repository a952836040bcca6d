//! Fixtures shared by the tests: vocabularies, a tokenizer, the mask oracle,
//! a reference recognizer and a seeded RNG.
//!
//! The vocabularies, smallest first:
//!
//! | name        | tokens  | what it exercises                                              |
//! |:------------|--------:|:---------------------------------------------------------------|
//! | `bytes`     |     257 | one token per byte: the grammar's own byte-level semantics    |
//! | `tiny`      |      30 | a hand-checked trie ([`tiny`]); strings it cannot spell skip   |
//! | `synthetic` |   ~ 800 | BPE-like: every byte plus chunks crossing lexeme boundaries   |
//! | `smollm2`   |  49,152 | the real SmolLM2 vocabulary (vendored), 21 bytes missing       |
//! | `gemma3`    | 262,144 | the real Gemma 3 vocabulary, read from `../shared` if present  |

#![allow(dead_code)] // each test module uses a different part

pub mod oracle;
pub mod reference;
pub mod rng;
pub mod tokenize;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use formwork_grammar::{TokenId, Vocabulary};

pub use oracle::{bit, check_mask_against_oracle, show_token};
pub use rng::XorShift;
pub use tokenize::{Split, Tokenizer};

/// A vocabulary with the tokenizer the tests use to spell strings in it.
pub struct TestVocab {
    /// Short name used in failure reports: `bytes`, `tiny`, `synthetic`, `smollm2`, `gemma3`.
    pub name: &'static str,
    /// The vocabulary.
    pub vocab: Arc<Vocabulary>,
    /// Spells strings in it.
    pub tokenizer: Tokenizer,
}

impl TestVocab {
    fn new(name: &'static str, vocab: Vocabulary) -> Self {
        let tokenizer = Tokenizer::new(&vocab);
        TestVocab { name, vocab: Arc::new(vocab), tokenizer }
    }

    /// The EOS tokens.
    pub fn eos(&self) -> &[TokenId] {
        self.vocab.eos()
    }
}

/// (a) One token per byte (ids 0..=255) plus EOS (256).
pub fn bytes() -> &'static TestVocab {
    static V: OnceLock<TestVocab> = OnceLock::new();
    V.get_or_init(|| TestVocab::new("bytes", Vocabulary::bytes()))
}

/// The tokens of [`tiny`], by id.
pub const TINY_TOKENS: [&str; 30] = [
    "<eos>", "{", "}", "[", "]", "\"", "\":", "\",", "{\"", ":", ",", " ", " \"", "1", "12", "2", "0", "+", "-", "*",
    "(", ")", "a", "ab", "b", "true", "tr", "ue", "null", "<pad>",
];

/// (b) A hand-drawn vocabulary of 30 tokens for JSON and arithmetic.
///
/// Ids 0 (`<eos>`, the EOS token) and 29 (`<pad>`) are special; the other 28
/// form this trie (node labels are bytes, `(n)` marks the node of token n;
/// `n`, `nu`, `nul`, `t`, `tru`, `u` are not tokens):
///
/// ```text
/// root
/// ├─ ' ' (11) ── '"' (12)
/// ├─ '"' (5) ─┬─ ',' (7)
/// │           └─ ':' (6)
/// ├─ '(' (20)
/// ├─ ')' (21)
/// ├─ '*' (19)
/// ├─ '+' (17)
/// ├─ ',' (10)
/// ├─ '-' (18)
/// ├─ '0' (16)
/// ├─ '1' (13) ── '2' (14)
/// ├─ '2' (15)
/// ├─ ':' (9)
/// ├─ '[' (3)
/// ├─ ']' (4)
/// ├─ 'a' (22) ── 'b' (23)
/// ├─ 'b' (24)
/// ├─ 'n' ── 'u' ── 'l' ── 'l' (28)
/// ├─ 't' ── 'r' (26) ── 'u' ── 'e' (25)
/// ├─ 'u' ── 'e' (27)
/// ├─ '{' (1) ── '"' (8)
/// └─ '}' (2)
/// ```
///
/// Many strings cannot be spelled with it (no `3`, no `c`): the suite skips
/// those. What it can spell, it spells in few ways, so a failure can be
/// checked by hand: `{"a":12}` is `{"` `a` `":` `12` `}` greedily, or
/// `{` `"` `a` `"` `:` `1` `2` `}` one byte at a time.
pub fn tiny() -> &'static TestVocab {
    static V: OnceLock<TestVocab> = OnceLock::new();
    V.get_or_init(|| {
        let tokens = TINY_TOKENS.iter().map(|s| s.as_bytes().to_vec()).collect();
        TestVocab::new("tiny", Vocabulary::new(tokens, &[29], &[0]).expect("tiny vocabulary is valid"))
    })
}

/// Ids of the special tokens of [`synthetic`]: EOS first.
pub struct SyntheticSpecials {
    /// `<eos>`.
    pub eos: TokenId,
    /// `<pad>`.
    pub pad: TokenId,
    /// `<|user|>`: special, although grammars with `<`, `|` and letters could spell it.
    pub user: TokenId,
    /// `"a"`: special, although JSON grammars could spell it.
    pub quoted_a: TokenId,
}

/// The special tokens of [`synthetic`].
pub fn synthetic_specials() -> SyntheticSpecials {
    let v = &synthetic().vocab;
    let find = |s: &str| (0..v.len() as TokenId).find(|&t| v.is_special(t) && v.token_bytes(t) == s.as_bytes());
    SyntheticSpecials {
        eos: v.eos()[0],
        pad: find("<pad>").expect("<pad>"),
        user: find("<|user|>").expect("<|user|>"),
        quoted_a: find("\"a\"").expect("\"a\" special"),
    }
}

/// The multi-byte chunks of [`synthetic`] (after the 256 single bytes).
fn synthetic_chunks() -> Vec<Vec<u8>> {
    let mut v: Vec<String> = Vec::new();
    let mut add = |s: &str| v.push(s.to_string());
    // JSON punctuation combinations, as BPE vocabularies learn them
    for s in [
        "\":", "\":\"", "\": ", "\": \"", "\",", "\",\"", "\", ", "\", \"", "\"}", "\"},", "\"}}", "\"]", "\"],",
        "{\"", "{ \"", " {", " }", "},", "}}", "}]", "},{", "}, {", "],", "]]", "]}", "[{", "[[", "[\"", "[]", "{}",
        "\"\"", " \"", " [", " ]", "\n", "\n ", "\n  ", "\n    ", "\n}", "\n]", ",\n", "{\n", "[\n", ": ", ", ", " :",
        " ,", "\\\"", "\\\\", "\\n", "\\t", "\\u", "\\u00", "\\/", "\"\\",
    ] {
        add(s);
    }
    // words, with and without a leading space, and inside quotes
    for w in [
        "true",
        "false",
        "null",
        "name",
        "age",
        "type",
        "id",
        "value",
        "items",
        "properties",
        "string",
        "number",
        "object",
        "array",
        "ok",
        "yes",
        "no",
        "if",
        "else",
        "for",
        "while",
        "return",
        "the",
        "and",
        "abc",
        "ab",
        "ba",
        "hello",
        "world",
        "foo",
        "bar",
        "baz",
        "key",
        "email",
        "date",
        "time",
        "user",
        "admin",
        "x",
        "y",
        "incident",
        "billing",
        "inquiry",
        "red",
        "green",
        "blue",
        "cat",
        "dog",
        "a",
        "an",
        "in",
        "is",
        "it",
        "on",
        "at",
        "or",
        "to",
        "er",
        "ing",
        "tion",
        "re",
        "de",
        "un",
    ] {
        add(&format!(" {w}"));
        add(&format!("\"{w}\""));
        add(&format!("\"{w}"));
        add(&format!("{w}\""));
        if w.len() > 1 {
            add(w);
        }
        let mut cap = w.to_string();
        cap[..1].make_ascii_uppercase();
        if w.len() > 1 {
            add(&cap);
        }
    }
    // digit runs
    for n in 0..100 {
        add(&format!("{n:02}"));
    }
    for n in [100, 123, 200, 255, 404, 500, 999, 1000, 2024, 2025, 12345] {
        add(&n.to_string());
    }
    for s in ["000", "0000", "1.", "0.", ".0", ".5", "1.5", "-1", "-0", "e1", "e+", "e-", "E+", "e10", "1e", "0e"] {
        add(s);
    }
    // space runs and other whitespace
    for k in 2..=16 {
        add(&" ".repeat(k));
    }
    for s in ["\t", "\t\t", " \n", "\r\n", "\n\n"] {
        add(s);
    }
    // tokens crossing lexeme boundaries
    for s in [
        "1,", "0,", "0}", "1}", "1]", "2,", "9}", "true,", "true}", "false,", "false}", "null,", "null}", "\"a", "a\"",
        "(-", ")*", ")+", "+1", "*2", "(1", "1)", "((", "))", "a,", ",a", "a]", "[a", "x=", "=1", "1-", "-x", ":{",
        ":[", ":\"", ":1", ",1", ",[", ",{", "ab\"", "\"ab", "-0.", "0-", "12-", "-12", "T1", "Z\"", ":00", "00:",
        "-01", "01-",
    ] {
        add(s);
    }
    // multi-byte UTF-8: whole characters, and pieces of them (real
    // byte-level BPE vocabularies have tokens ending mid-character)
    for s in ["é", "ü", "ñ", "ß", "中", "文", "日本", "語", "😀", "—", "“", "”", "€", "→", "λ", "Ω", "é\"", " é", "ção"]
    {
        add(s);
    }
    let mut out: Vec<Vec<u8>> = v.into_iter().map(String::into_bytes).collect();
    for s in ["😀", "中", "é", "€"] {
        let b = s.as_bytes();
        for k in 2..b.len() {
            out.push(b[..k].to_vec());
        }
        out.push(b[1..].to_vec());
    }
    out.sort();
    out.dedup();
    out.retain(|t| t.len() > 1);
    out
}

/// (c) A synthetic BPE-like vocabulary: all 256 bytes (ids 0..=255), then
/// about 550 multi-byte chunks — JSON punctuation runs (`":"`, `"},`, ` "`),
/// words, digit runs, space runs, multi-byte characters and pieces of them,
/// and chunks that cross lexeme boundaries (`1,`, `true}`, `(-`) — then a
/// duplicate of `true` under a second id, then the special tokens `<eos>`
/// (EOS), `<pad>`, `<|user|>` and `"a"` (a special token with the bytes of a
/// JSON string: it must never be allowed).
pub fn synthetic() -> &'static TestVocab {
    static V: OnceLock<TestVocab> = OnceLock::new();
    V.get_or_init(|| {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.extend(synthetic_chunks());
        tokens.push(b"true".to_vec()); // same bytes as an earlier token
        let eos = tokens.len() as TokenId;
        tokens.push(b"<eos>".to_vec());
        tokens.push(b"<pad>".to_vec());
        tokens.push(b"<|user|>".to_vec());
        tokens.push(b"\"a\"".to_vec());
        let specials: Vec<TokenId> = (eos + 1..eos + 4).collect();
        TestVocab::new("synthetic", Vocabulary::new(tokens, &specials, &[eos]).expect("synthetic vocabulary is valid"))
    })
}

/// How a tokenizer.json spells token bytes in `model.vocab`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceEncoding {
    /// GPT-2 byte-level BPE: every byte is mapped to a printable character.
    ByteLevel,
    /// SentencePiece: `▁` is a space, `<0xNN>` is the byte 0xNN, the rest is UTF-8.
    SentencePiece,
}

/// GPT-2's `bytes_to_unicode`, inverted: char -> byte.
fn gpt2_unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::new();
    let mut extra = 0u32;
    for b in 0..=255u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map.insert(char::from_u32(c).expect("valid code point"), b as u8);
    }
    map
}

#[derive(serde::Deserialize)]
struct TokenizerJson {
    model: ModelJson,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(serde::Deserialize)]
struct ModelJson {
    vocab: HashMap<String, TokenId>,
}

#[derive(serde::Deserialize)]
struct AddedToken {
    id: TokenId,
    content: String,
    special: bool,
}

/// Reads the vocabulary of a Hugging Face `tokenizer.json`: `model.vocab`
/// decoded with `encoding`, then `added_tokens` (special ones marked special;
/// non-special ones are raw text). `eos` names the EOS tokens by content.
pub fn vocabulary_from_tokenizer_json(json: &str, encoding: PieceEncoding, eos: &[&str]) -> Vocabulary {
    let parsed: TokenizerJson = serde_json::from_str(json).expect("tokenizer.json parses");
    let n = parsed.model.vocab.values().chain(parsed.added_tokens.iter().map(|a| &a.id)).max().expect("tokens") + 1;
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; n as usize];
    let byte_map = gpt2_unicode_to_byte();
    for (piece, &id) in &parsed.model.vocab {
        let bytes = match encoding {
            PieceEncoding::ByteLevel => piece
                .chars()
                .map(|c| *byte_map.get(&c).unwrap_or_else(|| panic!("byte-level token {id} {piece:?} has char {c:?}")))
                .collect(),
            PieceEncoding::SentencePiece => sentencepiece_bytes(piece),
        };
        tokens[id as usize] = Some(bytes);
    }
    let mut special = Vec::new();
    let mut by_content = HashMap::new();
    for a in &parsed.added_tokens {
        by_content.insert(a.content.as_str(), a.id);
        if a.special {
            special.push(a.id);
        }
        tokens[a.id as usize] = Some(a.content.as_bytes().to_vec());
    }
    let eos: Vec<TokenId> = eos
        .iter()
        .map(|s| *by_content.get(s).unwrap_or_else(|| panic!("EOS token {s:?} is not an added token")))
        .collect();
    let tokens: Vec<Vec<u8>> =
        tokens.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| panic!("token id {i} has no entry"))).collect();
    Vocabulary::new(tokens, &special, &eos).expect("tokenizer.json vocabulary is valid")
}

fn sentencepiece_bytes(piece: &str) -> Vec<u8> {
    if let Some(hex) = piece.strip_prefix("<0x").and_then(|s| s.strip_suffix('>')) {
        if hex.len() == 2 {
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                return vec![b];
            }
        }
    }
    piece.replace('\u{2581}', " ").into_bytes()
}

/// `grammar/testdata`.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// (d) The SmolLM2 vocabulary (49,152 tokens), from the vendored
/// `testdata/tokenizers/smollm2-135m.json`. EOS is `<|im_end|>` (2).
pub fn smollm2() -> &'static TestVocab {
    static V: OnceLock<TestVocab> = OnceLock::new();
    V.get_or_init(|| {
        let path = testdata_dir().join("tokenizers/smollm2-135m.json");
        let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TestVocab::new("smollm2", vocabulary_from_tokenizer_json(&json, PieceEncoding::ByteLevel, &["<|im_end|>"]))
    })
}

/// Where the shared, unvendored data lives: `$FORMWORK_SHARED_DIR`, by
/// default `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FORMWORK_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// (e) The Gemma 3 vocabulary (262,144 tokens) from
/// `$FORMWORK_SHARED_DIR/tokenizers/gemma3-270m/tokenizer.json`, or `None`
/// (after saying so on stderr) when the file is not there. EOS: `<eos>` (1)
/// and `<end_of_turn>` (106).
pub fn gemma3() -> Option<&'static TestVocab> {
    static V: OnceLock<Option<TestVocab>> = OnceLock::new();
    V.get_or_init(|| {
        let path = shared_dir().join("tokenizers/gemma3-270m/tokenizer.json");
        match std::fs::read_to_string(&path) {
            Ok(json) => Some(TestVocab::new(
                "gemma3",
                vocabulary_from_tokenizer_json(&json, PieceEncoding::SentencePiece, &["<eos>", "<end_of_turn>"]),
            )),
            Err(e) => {
                eprintln!(
                    "NOT RUN: Gemma 3 vocabulary tests skipped: {} is missing ({e}); \
                     set FORMWORK_SHARED_DIR to the directory holding tokenizers/gemma3-270m/",
                    path.display()
                );
                None
            }
        }
    })
    .as_ref()
}

/// The small vocabularies every hand-written test runs under.
pub fn small_vocabs() -> [&'static TestVocab; 3] {
    [bytes(), tiny(), synthetic()]
}
