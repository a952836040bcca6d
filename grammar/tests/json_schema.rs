//! The JSON Schema front-end against its two corpora.
//!
//! * [`maskbench_fixtures`]: 20 MaskBench files (schema + valid/invalid
//!   instances) vendored in `testdata/json_schema/maskbench/`, copied from
//!   `../shared/data/maskbench-dev` (JSONSchemaBench's MaskBench, MIT
//!   licence), run on a fresh clone. Every schema must compile, accept its
//!   valid instances (spelled greedily with SmolLM2's tokens, each token
//!   allowed by the mask) and reject the invalid ones.
//! * [`test_suite_fixtures`]: a subset of the official JSON-Schema-Test-Suite
//!   vendored in `testdata/json_schema/test-suite/` (draft 2020-12 files,
//!   MIT licence).
//! * [`test_suite_shared`]: every case of the Test-Suite in
//!   `$FORMWORK_SHARED_DIR/data/json-schema-test-suite` (drafts 4, 6, 7,
//!   2019-09, 2020-12 and the `optional/format` files of the formats we
//!   assert) when it is there. Prints a per-keyword table of pass / refused /
//!   wrong and fails on any wrong answer: a compiled schema that accepts an
//!   invalid instance or rejects a valid one.
//! * [`sampled_outputs_validate`]: random outputs drawn through the mask are
//!   checked by the `jsonschema` crate (soundness, independent of our own
//!   reading of the schema).
//!
//! Instances are written as compact JSON with numbers in plain decimal
//! notation (the spelling the grammar uses for bounded numbers).

use std::path::Path;
use std::sync::Arc;

use formwork_grammar::json_schema::{self, Draft, JsonSchemaOptions};
use formwork_grammar::{CompiledGrammar, Limits, Vocabulary};
use serde_json::Value;

use crate::common::{self, bit, XorShift};

/// A number's JSON text in plain decimal notation (no exponent).
fn plain_number(text: &str) -> String {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mant, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    if exp == 0 {
        return text.to_string();
    }
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{ip}{fp}");
    let point = ip.len() as i64 + exp;
    let (i, f) = if point <= 0 {
        ("0".to_string(), format!("{}{}", "0".repeat((-point) as usize), digits))
    } else if point as usize >= digits.len() {
        (format!("{}{}", digits, "0".repeat(point as usize - digits.len())), String::new())
    } else {
        (digits[..point as usize].to_string(), digits[point as usize..].to_string())
    };
    let i = i.trim_start_matches('0');
    let i = if i.is_empty() { "0" } else { i };
    let f = f.trim_end_matches('0');
    let sign = if neg { "-" } else { "" };
    if f.is_empty() {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    }
}

/// Compact JSON with `sep` after `,` and `:` and plain-decimal numbers.
fn write_json(v: &Value, sep: &str, out: &mut String) {
    match v {
        Value::Number(n) => out.push_str(&plain_number(&n.to_string())),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    out.push_str(sep);
                }
                write_json(x, sep, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    out.push_str(sep);
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                out.push_str(sep);
                write_json(x, sep, out);
            }
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

fn to_text(v: &Value, sep: &str) -> String {
    let mut s = String::new();
    write_json(v, sep, &mut s);
    s
}

/// Spellings of `v` with the keys of its objects in different orders (the
/// grammar fixes one order per schema, so a value is accepted when one of
/// its spellings is): the given order first, then permutations, at most
/// `MAX_SPELLINGS` in all.
fn spellings(v: &Value) -> Vec<Value> {
    const MAX_SPELLINGS: usize = 720;
    match v {
        Value::Array(a) => {
            let mut out: Vec<Vec<Value>> = vec![Vec::new()];
            for x in a {
                let xs = spellings(x);
                let mut next = Vec::new();
                for prefix in &out {
                    for y in &xs {
                        if next.len() >= MAX_SPELLINGS {
                            break;
                        }
                        let mut p = prefix.clone();
                        p.push(y.clone());
                        next.push(p);
                    }
                }
                out = next;
            }
            out.into_iter().map(Value::Array).collect()
        }
        Value::Object(m) => {
            let entries: Vec<(String, Vec<Value>)> = m.iter().map(|(k, x)| (k.clone(), spellings(x))).collect();
            let mut orders: Vec<Vec<usize>> = Vec::new();
            permutations(&mut (0..entries.len()).collect(), 0, &mut orders, MAX_SPELLINGS);
            let mut out = Vec::new();
            for order in orders {
                let mut partial: Vec<serde_json::Map<String, Value>> = vec![serde_json::Map::new()];
                for &i in &order {
                    let (k, xs) = &entries[i];
                    let mut next = Vec::new();
                    for p in &partial {
                        for y in xs {
                            if next.len() >= MAX_SPELLINGS {
                                break;
                            }
                            let mut q = p.clone();
                            q.insert(k.clone(), y.clone());
                            next.push(q);
                        }
                    }
                    partial = next;
                }
                out.extend(partial.into_iter().map(Value::Object));
                if out.len() >= MAX_SPELLINGS {
                    break;
                }
            }
            out
        }
        other => vec![other.clone()],
    }
}

fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>, max: usize) {
    if out.len() >= max {
        return;
    }
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out, max);
        v.swap(k, i);
    }
}

/// Whether the compiled grammar accepts some spelling of `v`.
fn accepts_value(c: &CompiledGrammar, v: &Value) -> Result<bool, String> {
    for s in spellings(v) {
        if accepts(c, &to_text(&s, ""))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the compiled grammar accepts `text` (byte vocabulary).
fn accepts(c: &CompiledGrammar, text: &str) -> Result<bool, String> {
    let mut m = c.matcher().map_err(|e| e.to_string())?;
    let ok = m.try_consume_bytes(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(ok && m.is_accepting().map_err(|e| e.to_string())?)
}

fn bytes_vocab() -> Arc<Vocabulary> {
    common::bytes().vocab.clone()
}

// ---------------------------------------------------------------------------
// MaskBench fixtures

#[test]
fn maskbench_fixtures() {
    let dir = common::testdata_dir().join("json_schema/maskbench");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "expected the 20 vendored MaskBench files");
    let tv = common::smollm2();
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let data: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let (g, _) = match json_schema::compile(&data["schema"], &JsonSchemaOptions::default()) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: does not compile: {e}"));
                continue;
            }
        };
        let c = CompiledGrammar::new(&g, tv.vocab.clone(), Limits::default()).unwrap();
        for (i, t) in data["tests"].as_array().cloned().unwrap_or_default().iter().enumerate() {
            let valid = t["valid"].as_bool().unwrap_or(false);
            let text = to_text(&t["data"], " ");
            let Some(tokens) = tv.tokenizer.tokenize(text.as_bytes(), common::Split::Greedy) else { continue };
            let mut m = c.matcher().unwrap();
            let mut ok = true;
            for (tok, _) in tokens {
                let mask = m.compute_mask_vec().unwrap();
                let allowed = bit(&mask, tok);
                if allowed != m.try_consume_token(tok).unwrap() {
                    failures.push(format!("{name} test #{i}: mask and try_consume_token disagree"));
                }
                if !allowed {
                    ok = false;
                    break;
                }
            }
            let accepted = ok && m.is_accepting().unwrap();
            if accepted != valid {
                failures.push(format!("{name} test #{i}: valid={valid} but accepted={accepted}: {text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// JSON-Schema-Test-Suite

#[derive(Default)]
struct Tally {
    pass: usize,
    refused: usize,
    wrong: usize,
}

/// Runs one Test-Suite file; returns (keyword, tally) and wrong-answer lines.
fn run_suite_file(path: &Path, draft: Draft, tally: &mut Tally, wrong: &mut Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let groups: Value = serde_json::from_str(&text).unwrap();
    let opts = JsonSchemaOptions { default_draft: draft, ..JsonSchemaOptions::default() };
    let vocab = bytes_vocab();
    for g in groups.as_array().cloned().unwrap_or_default() {
        let desc = g["description"].as_str().unwrap_or("").to_string();
        let tests = g["tests"].as_array().cloned().unwrap_or_default();
        let compiled = json_schema::compile(&g["schema"], &opts)
            .and_then(|(gr, _)| CompiledGrammar::new(&gr, vocab.clone(), Limits::default()));
        let c = match compiled {
            Ok(c) => c,
            Err(_) => {
                tally.refused += tests.len();
                continue;
            }
        };
        for t in &tests {
            let valid = t["valid"].as_bool().unwrap_or(false);
            let inst = to_text(&t["data"], "");
            match accepts_value(&c, &t["data"]) {
                Ok(false)
                    if valid
                        && (KNOWN_NARROWINGS.iter().any(|n| t["description"].as_str() == Some(n))
                            || desc == "validation of A-label (punycode) host names") =>
                {
                    tally.refused += 1
                }
                Ok(a) if a == valid => tally.pass += 1,
                Ok(a) => {
                    tally.wrong += 1;
                    wrong.push(format!(
                        "{} / {desc} / {}: valid={valid}, accepted={a}: {inst}",
                        path.display(),
                        t["description"].as_str().unwrap_or("")
                    ));
                }
                Err(e) => {
                    tally.wrong += 1;
                    wrong.push(format!("{} / {desc}: error {e}", path.display()));
                }
            }
        }
    }
}

fn print_table(rows: &[(String, Tally)]) {
    let mut total = Tally::default();
    eprintln!("| keyword | pass | refused | wrong |\n|---|---:|---:|---:|");
    for (k, t) in rows {
        eprintln!("| {k} | {} | {} | {} |", t.pass, t.refused, t.wrong);
        total.pass += t.pass;
        total.refused += t.refused;
        total.wrong += t.wrong;
    }
    eprintln!("| total | {} | {} | {} |", total.pass, total.refused, total.wrong);
}

#[test]
fn test_suite_fixtures() {
    let dir = common::testdata_dir().join("json_schema/test-suite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for f in &files {
        let mut t = Tally::default();
        run_suite_file(f, Draft::Draft2020_12, &mut t, &mut wrong);
        rows.push((f.file_stem().unwrap_or_default().to_string_lossy().into_owned(), t));
    }
    print_table(&rows);
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    let pass: usize = rows.iter().map(|(_, t)| t.pass).sum();
    assert!(pass > 100, "too few cases passed: {pass}");
}

/// Test-Suite files not run: format.json asserts that formats are only
/// annotations, while formwork asserts the formats it supports (see
/// docs/json-schema.md); refRemote needs a network; vocabulary.json needs a
/// custom meta-schema (a remote document).
const SKIPPED_FILES: &[&str] = &["format.json", "refRemote.json", "vocabulary.json"];

/// Cases where the grammar is narrower than the schema on purpose
/// (documented in docs/json-schema.md); counted as refused, not wrong.
/// Leap seconds are accepted only at 23:59:60 UTC (offset Z or ±00:00);
/// hostnames have no IDNA A-labels (the whole group of valid A-label cases
/// counts so).
const KNOWN_NARROWINGS: &[&str] = &[
    "a valid date-time with a leap second, with minus offset",
    "valid leap second, positive time-offset",
    "valid leap second, large positive time-offset",
    "valid leap second, negative time-offset",
    "valid leap second, large negative time-offset",
    // hostnames: no `xn--` A-labels (their punycode is not regular), no `--`
    // in the 3rd and 4th positions (RFC 5891 reserves it for A-labels)
    "a valid punycoded IDN hostname",
    "hostname with consecutive hyphens (RFC1123)",
];
/// Formats whose optional/format tests run.
const FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "json-pointer",
    "relative-json-pointer",
];

#[test]
fn test_suite_shared() {
    let root = common::shared_dir().join("data/json-schema-test-suite/tests");
    if !root.is_dir() {
        eprintln!("NOT RUN: {} is missing; set FORMWORK_SHARED_DIR", root.display());
        return;
    }
    let drafts = [
        ("draft4", Draft::Draft4),
        ("draft6", Draft::Draft6),
        ("draft7", Draft::Draft7),
        ("draft2019-09", Draft::Draft2019_09),
        ("draft2020-12", Draft::Draft2020_12),
    ];
    let mut all_wrong = Vec::new();
    for (dir, draft) in drafts {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join(dir))
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !SKIPPED_FILES.contains(&p.file_name().unwrap_or_default().to_string_lossy().as_ref())
        });
        for f in FORMATS {
            let p = root.join(dir).join("optional/format").join(format!("{f}.json"));
            if p.exists() {
                files.push(p);
            }
        }
        files.sort();
        let mut rows = Vec::new();
        for f in &files {
            let mut t = Tally::default();
            run_suite_file(f, draft, &mut t, &mut all_wrong);
            let name = f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let name = if f.to_string_lossy().contains("optional/format") { format!("format:{name}") } else { name };
            rows.push((name, t));
        }
        eprintln!("\n{dir}:");
        print_table(&rows);
    }
    assert!(all_wrong.is_empty(), "{} wrong answers:\n{}", all_wrong.len(), all_wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Soundness by sampling, checked by the `jsonschema` crate

/// Draws a random output through the masks (bytes vocabulary), preferring to
/// close structures as it gets long. `None` if it ran out of steps.
fn sample(c: &CompiledGrammar, rng: &mut XorShift, max_steps: usize) -> Option<String> {
    let mut m = c.matcher().ok()?;
    let mut out = Vec::new();
    let eos = c.vocab().eos()[0];
    for step in 0..max_steps {
        let mask = m.compute_mask_vec().ok()?;
        let allowed: Vec<u32> = (0..c.vocab().len() as u32).filter(|&t| bit(&mask, t)).collect();
        if allowed.is_empty() {
            return None;
        }
        if allowed.contains(&eos) && (step > max_steps / 4 || rng.chance(1, 3)) {
            return String::from_utf8(out).ok();
        }
        // bias towards closing brackets/quotes when long
        let closers: Vec<u32> =
            allowed.iter().copied().filter(|&t| t != eos && matches!(t as u8, b'}' | b']' | b'"')).collect();
        let t = if step > max_steps / 3 && !closers.is_empty() && rng.chance(3, 4) {
            *rng.pick(&closers)
        } else {
            let non_eos: Vec<u32> = allowed.iter().copied().filter(|&t| t != eos).collect();
            if non_eos.is_empty() {
                return String::from_utf8(out).ok();
            }
            *rng.pick(&non_eos)
        };
        m.consume_token(t).ok()?;
        out.push(t as u8);
    }
    None
}

/// Whether every number in `text` is exactly representable as the oracle's
/// f64 (at most 15 significant digits, small exponent).
fn fits_f64(text: &str) -> bool {
    let mut digits = 0;
    let mut in_exp = false;
    let mut exp_digits = 0;
    let mut in_str = false;
    let mut prev = ' ';
    for c in text.chars() {
        if c == '"' && prev != '\\' {
            in_str = !in_str;
        }
        prev = c;
        if in_str {
            continue;
        }
        if c.is_ascii_digit() {
            if in_exp {
                exp_digits += 1;
            } else {
                digits += 1;
            }
        } else if c == 'e' || c == 'E' {
            in_exp = true;
        } else if c != '.' && c != '-' && c != '+' {
            digits = 0;
            in_exp = false;
            exp_digits = 0;
        }
        if digits > 15 || exp_digits > 2 {
            return false;
        }
    }
    true
}

#[test]
fn sampled_outputs_validate() {
    let schemas = [
        r##"{"type":"object","properties":{"a":{"type":"integer","minimum":-5,"maximum":120},"b":{"type":"string","pattern":"^[a-c]+x?$","maxLength":4},"c":{"enum":["x",1,null]}},"required":["a"],"additionalProperties":false}"##,
        r##"{"type":"array","items":{"type":"number","exclusiveMinimum":0.5,"maximum":3.25},"minItems":1,"maxItems":3}"##,
        r##"{"anyOf":[{"type":"string","format":"date"},{"type":"integer","multipleOf":4}]}"##,
        r##"{"oneOf":[{"type":"string","minLength":2},{"type":"boolean"}]}"##,
        r##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"$ref":"#/$defs/node"}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}"##,
        r##"{"type":"object","properties":{"k":{"const":"v"}},"patternProperties":{"^x":{"type":"null"}},"additionalProperties":{"type":"boolean"},"maxProperties":2}"##,
        r##"{"type":"string","format":"ipv4"}"##,
        r##"{"not":{"type":["string","object","array"]}}"##,
        r##"{"if":{"minimum":10},"then":{"multipleOf":5},"else":{"maximum":3},"type":"integer"}"##,
    ];
    let vocab = bytes_vocab();
    let mut rng = XorShift::new(7);
    let mut failures = Vec::new();
    for s in schemas {
        let schema: Value = serde_json::from_str(s).unwrap();
        let (g, _) = json_schema::compile(&schema, &JsonSchemaOptions::default()).unwrap();
        let c = CompiledGrammar::new(&g, vocab.clone(), Limits::default()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut n = 0;
        for _ in 0..60 {
            let Some(out) = sample(&c, &mut rng, 80) else { continue };
            n += 1;
            if !fits_f64(&out) {
                // the oracle parses numbers as f64: skip what it cannot represent exactly
                continue;
            }
            match serde_json::from_str::<Value>(&out) {
                Ok(v) => {
                    if !validator.is_valid(&v) {
                        failures.push(format!("{s}: generated invalid {out}"));
                    }
                }
                Err(e) => failures.push(format!("{s}: generated non-JSON {out:?}: {e}")),
            }
        }
        assert!(n > 5, "{s}: too few complete samples ({n})");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_name_keyword_and_pointer() {
    let cases = [
        (r#"{"properties":{"a":{"uniqueItems":true}}}"#, "uniqueItems", "/properties/a"),
        (r#"{"type":"string","pattern":"(?=x)"}"#, "pattern", "/"),
        (r#"{"$ref":"http://example.com/remote.json"}"#, "$ref", "/"),
        (r#"{"oneOf":[{"items":{"type":"integer"}},{"minItems":1}]}"#, "oneOf", "/"),
    ];
    for (s, kw, ptr) in cases {
        let e = json_schema::from_str(s, &JsonSchemaOptions::default()).unwrap_err();
        match e.kind() {
            formwork_grammar::ErrorKind::Schema { keyword, pointer, .. } => {
                assert_eq!(keyword, kw, "{s}");
                assert_eq!(pointer, ptr, "{s}");
            }
            other => panic!("{s}: {other:?}"),
        }
    }
}

/// A string of `n` code points cycling through plain, escaped and multi-byte
/// characters, as a JSON string literal (each escape is one code point).
fn long_string_text(n: usize) -> String {
    let pieces = ["a", "\\n", "é", "\\u0001", "😀", "\\\"", "z"];
    let mut s = String::from("\"");
    for i in 0..n {
        s.push_str(pieces[i % pieces.len()]);
    }
    s.push('"');
    s
}

#[test]
fn long_max_length_is_exact() {
    let vocab = bytes_vocab();
    // (minLength, maxLength): bounds over the lexeme state limit as one
    // automaton, emitted in chunks; lengths around every chunk boundary
    for (lo, hi) in [(0u64, 1024u64), (300, 1301), (700, 5000), (0, 32767)] {
        let schema = serde_json::json!({"type": "string", "minLength": lo, "maxLength": hi});
        let (g, w) = json_schema::compile(&schema, &JsonSchemaOptions::default()).unwrap();
        assert!(w.is_empty());
        let c = CompiledGrammar::new(&g, vocab.clone(), Limits::default()).unwrap();
        let mut lens: Vec<u64> = vec![0, 1, lo.saturating_sub(1), lo, lo + 1, hi - 1, hi, hi + 1, hi + 7];
        for b in [255u64, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025] {
            lens.push(b);
        }
        for n in lens {
            let text = long_string_text(n as usize);
            let want = lo <= n && n <= hi;
            assert_eq!(accepts(&c, &text).unwrap(), want, "[{lo}, {hi}], length {n}");
        }
        // a string that breaks JSON syntax after a chunk boundary
        let mut bad = long_string_text(600);
        bad.insert(300, '\u{1}');
        assert!(!accepts(&c, &bad).unwrap());
    }
    // in a structure, next to other strings and with the same bounds twice
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"type": "string", "maxLength": 2000},
            "b": {"type": "array", "items": {"anyOf": [{"type": "string", "maxLength": 2000}, {"type": "integer"}]}},
            "c": {"type": "string", "maxLength": 3}
        },
        "required": ["a", "b"],
        "additionalProperties": false
    });
    let (g, _) = json_schema::compile(&schema, &JsonSchemaOptions::default()).unwrap();
    let c = CompiledGrammar::new(&g, vocab.clone(), Limits::default()).unwrap();
    let s2000 = long_string_text(2000);
    let s2001 = long_string_text(2001);
    let ok = format!(r#"{{"a": {s2000}, "b": [{s2000}, 5, "", {s2000}], "c": "xyz"}}"#);
    assert!(accepts(&c, &ok).unwrap());
    for bad in [
        format!(r#"{{"a": {s2001}, "b": []}}"#),
        format!(r#"{{"a": "", "b": [{s2001}]}}"#),
        r#"{"a": "", "b": [], "c": "wxyz"}"#.to_string(),
    ] {
        assert!(!accepts(&c, &bad).unwrap());
    }
    // lenient mode keeps the exact bound (no narrowing needed)
    let opts = JsonSchemaOptions { mode: json_schema::Mode::Lenient, ..JsonSchemaOptions::default() };
    let (_, w) = json_schema::compile(&serde_json::json!({"maxLength": 5000}), &opts).unwrap();
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn integers_without_a_zero_fraction_when_asked() {
    // JSON Schema counts `5.0` as an integer (draft 6 on), so by default it
    // is accepted; `integer_zero_fraction: false` writes integers as integers
    // only, still exact on bounds, and leaves plain numbers alone.
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 5}, "x": {"type": "number"}},
        "required": ["n", "x"]
    });
    let compile = |integer_zero_fraction: bool| {
        let opts = JsonSchemaOptions { integer_zero_fraction, ..JsonSchemaOptions::default() };
        let (g, _) = json_schema::compile(&schema, &opts).unwrap();
        CompiledGrammar::new(&g, bytes_vocab(), Limits::default()).unwrap()
    };
    let (standard, narrow) = (compile(true), compile(false));
    for (text, by_default, narrowed) in [
        (r#"{"n": 5, "x": 1}"#, true, true),
        (r#"{"n": 5.0, "x": 1}"#, true, false),
        (r#"{"n": 1.00, "x": 2.5}"#, true, false),
        (r#"{"n": 3, "x": 2.0}"#, true, true),
        (r#"{"n": 6, "x": 1}"#, false, false),
        (r#"{"n": 5.5, "x": 1}"#, false, false),
    ] {
        assert_eq!(accepts(&standard, text).unwrap(), by_default, "default options on {text}");
        assert_eq!(accepts(&narrow, text).unwrap(), narrowed, "integer_zero_fraction false on {text}");
    }
}
