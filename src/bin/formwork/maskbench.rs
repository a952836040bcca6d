//! `formwork maskbench`: the grammar-only benchmark of JSONSchemaBench's
//! MaskBench, single-threaded.
//!
//! For each `*.json` file of the directory (`{"schema": .., "tests": [{"data":
//! .., "valid": bool}, ..]}`): compile the schema and compute the first mask
//! (TTFM); then for every test instance, serialize it as Python's
//! `json.dumps(data, ensure_ascii=False)` does (what MaskBench's runner
//! does), tokenize it with the tokenizer (no special tokens), and for every
//! token compute the mask, check the token is allowed and consume it (the
//! mask time, TBM, covers both); at the end the matcher must accept. A valid
//! instance must be accepted and an invalid one rejected.
//!
//! One JSON file per schema goes to the output directory, with MaskBench's
//! fields (`id, ttfm_us, masks_us, max_mask_us, num_tokens, num_tests,
//! num_valid_tests, num_invalid_tests, compile_error?, validation_error?,
//! all_mask_us`), plus `summary.json`; the summary table (with the
//! llguidance figures of ANCHORS.md beside ours) goes to stdout, progress to
//! stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use formwork::grammar::json_schema::{self, JsonSchemaOptions, Mode};
use formwork::grammar::{CompiledGrammar, Limits, Vocabulary};
use serde_json::{json, Value};

use crate::pyjson;

const HELP: &str = "\
formwork maskbench: grammar-only benchmark over a directory of MaskBench files

USAGE:
    formwork maskbench DIR --tokenizer FILE --out OUTDIR [OPTIONS]

ARGS:
    DIR                  directory of MaskBench *.json files (schema + tests)

OPTIONS:
    --tokenizer FILE     a Hugging Face tokenizer.json (e.g. SmolLM2's)
    --out OUTDIR         where to write one JSON per schema and summary.json
    --limit N            only the first N files (sorted by name)
    --filter S           only files whose name contains S
    --lenient            compile in lenient mode (sound narrowings instead of refusals)
    --any-order          properties in any order (at most 8 declared per object)
    --compact            compact whitespace (instances use \", \" / \": \", so most fail)
    --timeout SECS       per-schema time budget after which its remaining tests are
                         skipped and the schema counts as failed (default 60)
    -h, --help           print this message

Mask time (TBM) is the time to compute one mask and consume the token, in
microseconds; TTFM is compile time plus the first mask.";

struct Args {
    dir: PathBuf,
    tokenizer: PathBuf,
    out: PathBuf,
    limit: Option<usize>,
    filter: Option<String>,
    lenient: bool,
    compact: bool,
    any_order: bool,
    timeout: Duration,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut dir = None;
    let mut tokenizer = None;
    let mut out = None;
    let mut limit = None;
    let mut filter = None;
    let mut lenient = false;
    let mut compact = false;
    let mut any_order = false;
    let mut timeout = Duration::from_secs(60);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("`{name}` needs a value\n\n{HELP}"));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(None);
            }
            "--tokenizer" => tokenizer = Some(PathBuf::from(value("--tokenizer")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--limit" => limit = Some(value("--limit")?.parse().map_err(|_| "`--limit` needs a number".to_string())?),
            "--filter" => filter = Some(value("--filter")?),
            "--timeout" => {
                let s: u64 = value("--timeout")?.parse().map_err(|_| "`--timeout` needs seconds".to_string())?;
                timeout = Duration::from_secs(s);
            }
            "--lenient" => lenient = true,
            "--compact" => compact = true,
            "--any-order" => any_order = true,
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`\n\n{HELP}")),
            s => {
                if dir.is_some() {
                    return Err(format!("unexpected argument `{s}`\n\n{HELP}"));
                }
                dir = Some(PathBuf::from(s));
            }
        }
    }
    let missing = |what: &str| format!("missing {what}\n\n{HELP}");
    Ok(Some(Args {
        dir: dir.ok_or_else(|| missing("DIR"))?,
        tokenizer: tokenizer.ok_or_else(|| missing("--tokenizer FILE"))?,
        out: out.ok_or_else(|| missing("--out OUTDIR"))?,
        limit,
        filter,
        lenient,
        compact,
        any_order,
        timeout,
    }))
}

/// The outcome of one schema.
#[derive(Default)]
struct Outcome {
    compiled: bool,
    ttfm_us: u64,
    mask_us: Vec<u64>,
    valid_rejected: bool,
    invalid_accepted: bool,
    other_error: bool,
    compile_error: Option<String>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(args) = parse_args(args)? else { return Ok(()) };
    let tok_text = std::fs::read_to_string(&args.tokenizer)
        .map_err(|e| format!("cannot read tokenizer {}: {e}", args.tokenizer.display()))?;
    let vocab = Arc::new(Vocabulary::from_tokenizer_json(&tok_text, &[]).map_err(|e| e.to_string())?);
    let tokenizer = tokenizers::Tokenizer::from_file(&args.tokenizer)
        .map_err(|e| format!("cannot load tokenizer {}: {e}", args.tokenizer.display()))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .map_err(|e| format!("cannot read {}: {e}", args.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| args.filter.as_ref().is_none_or(|f| file_name(p).contains(f.as_str())))
        .collect();
    files.sort();
    if let Some(n) = args.limit {
        files.truncate(n);
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut opts = JsonSchemaOptions::default();
    if args.lenient {
        opts.mode = Mode::Lenient;
    }
    if args.any_order {
        opts.property_order = json_schema::PropertyOrder::Any { max_properties: 8 };
    }
    if args.compact {
        opts.whitespace = json_schema::Whitespace::Compact;
    }
    let started = Instant::now();
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let total = files.len();
    for (i, path) in files.iter().enumerate() {
        let id = file_name(path);
        let (status, outcome) = run_one(path, &id, &vocab, &tokenizer, &opts, args.timeout);
        let text = serde_json::to_string_pretty(&status).unwrap_or_default();
        std::fs::write(args.out.join(&id), text).map_err(|e| format!("cannot write output for {id}: {e}"))?;
        let mark = if !outcome.compiled {
            "compile error"
        } else if outcome.invalid_accepted {
            "INVALID ACCEPTED"
        } else if outcome.valid_rejected {
            "VALID REJECTED"
        } else if outcome.other_error {
            "error"
        } else {
            "ok"
        };
        eprintln!("[{}/{}] {:>7.1}s {id}: {mark}", i + 1, total, started.elapsed().as_secs_f64());
        outcomes.push((id, outcome));
    }
    let summary = summarize(&outcomes);
    println!("{}", summary.0);
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary.1).unwrap_or_default())
        .map_err(|e| format!("cannot write summary: {e}"))?;
    std::fs::write(args.out.join("summary.txt"), &summary.0).map_err(|e| format!("cannot write summary: {e}"))?;
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

fn run_one(
    path: &Path,
    id: &str,
    vocab: &Arc<Vocabulary>,
    tokenizer: &tokenizers::Tokenizer,
    opts: &JsonSchemaOptions,
    timeout: Duration,
) -> (Value, Outcome) {
    let mut o = Outcome::default();
    let mut status = json!({
        "id": id, "ttfm_us": 0, "masks_us": 0, "max_mask_us": 0, "num_tokens": 0,
        "num_tests": 0, "num_valid_tests": 0, "num_invalid_tests": 0,
    });
    let data: Value = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            status["compile_error"] = json!(format!("cannot read the file: {e}"));
            o.compile_error = Some("cannot read the file".into());
            return (status, o);
        }
    };
    let tests = data.get("tests").and_then(Value::as_array).cloned().unwrap_or_default();
    status["num_tests"] = json!(tests.len());
    let schema = data.get("schema").cloned().unwrap_or(Value::Bool(true));
    let start = Instant::now();
    let compiled = json_schema::compile(&schema, opts)
        .and_then(|(g, _)| CompiledGrammar::new(&g, vocab.clone(), Limits::default()))
        .and_then(|c| {
            let mut m = c.matcher()?;
            m.compute_mask_vec()?;
            Ok(c)
        });
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            status["compile_error"] = json!(msg);
            o.compile_error = Some(msg);
            return (status, o);
        }
    };
    o.compiled = true;
    o.ttfm_us = micros(start.elapsed());
    status["ttfm_us"] = json!(o.ttfm_us);
    let mut validation_error: Option<String> = None;
    let (mut nvalid, mut ninvalid) = (0, 0);
    let mut mask = vec![0u32; compiled.mask_words()];
    for (ti, test) in tests.iter().enumerate() {
        if start.elapsed() > timeout {
            validation_error.get_or_insert_with(|| format!("test #{ti}: timeout after {}s", timeout.as_secs()));
            o.other_error = true;
            break;
        }
        let valid = test.get("valid").and_then(Value::as_bool).unwrap_or(false);
        let text = pyjson::dumps(test.get("data").unwrap_or(&Value::Null));
        let ids = match tokenizer.encode(text.as_str(), false) {
            Ok(e) => e.get_ids().to_vec(),
            Err(e) => {
                validation_error.get_or_insert_with(|| format!("test #{ti}: tokenizer error {e}"));
                o.other_error = true;
                continue;
            }
        };
        let mut m = match compiled.matcher() {
            Ok(m) => m,
            Err(e) => {
                validation_error.get_or_insert_with(|| format!("test #{ti}: EXN {e}"));
                o.other_error = true;
                continue;
            }
        };
        let mut accepted = true;
        let mut exn = None;
        let mut consumed: Vec<u8> = Vec::new();
        let mut refused_at: Option<String> = None;
        for &t in &ids {
            let t0 = Instant::now();
            let r = m.compute_mask(&mut mask).and_then(|()| {
                let allowed = (mask.get(t as usize / 32).copied().unwrap_or(0) >> (t % 32)) & 1 == 1;
                if allowed {
                    m.consume_token(t).map(|()| true)
                } else {
                    Ok(false)
                }
            });
            o.mask_us.push(micros(t0.elapsed()));
            match r {
                Ok(true) => consumed.extend_from_slice(vocab.token_bytes(t)),
                Ok(false) => {
                    let tail = String::from_utf8_lossy(&consumed[consumed.len().saturating_sub(80)..]).into_owned();
                    let tok = String::from_utf8_lossy(vocab.token_bytes(t)).into_owned();
                    refused_at = Some(format!("token {tok:?} refused after ...{tail:?}"));
                    accepted = false;
                    break;
                }
                Err(e) => {
                    exn = Some(e.to_string());
                    accepted = false;
                    break;
                }
            }
            if start.elapsed() > timeout {
                exn = Some(format!("timeout after {}s", timeout.as_secs()));
                accepted = false;
                break;
            }
        }
        if accepted {
            accepted = m.is_accepting().unwrap_or(false);
        }
        if let Some(e) = exn {
            validation_error.get_or_insert_with(|| format!("test #{ti}: EXN {e}"));
            o.other_error = true;
        } else if accepted && !valid {
            validation_error.get_or_insert_with(|| format!("test #{ti}: should reject but didn't"));
            o.invalid_accepted = true;
        } else if !accepted && valid {
            let why = refused_at.clone().unwrap_or_else(|| "not accepting at the end".to_string());
            validation_error.get_or_insert_with(|| format!("test #{ti}: should accept but didn't ({why})"));
            o.valid_rejected = true;
        } else if valid {
            nvalid += 1;
        } else {
            ninvalid += 1;
        }
    }
    let total: u64 = o.mask_us.iter().sum();
    status["masks_us"] = json!(total);
    status["max_mask_us"] = json!(o.mask_us.iter().copied().max().unwrap_or(0));
    status["num_tokens"] = json!(o.mask_us.len());
    status["num_valid_tests"] = json!(nvalid);
    status["num_invalid_tests"] = json!(ninvalid);
    if let Some(v) = validation_error {
        status["validation_error"] = json!(v);
    }
    status["all_mask_us"] = json!(o.mask_us);
    (status, o)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The category of a MaskBench file: `Github_easy---o123.json` ->
/// `Github_easy`, `BFCL_java_3.json` -> `BFCL_java`.
fn category(id: &str) -> String {
    let stem = id.trim_end_matches(".json");
    if let Some((c, _)) = stem.split_once("---") {
        return c.to_string();
    }
    match stem.rsplit_once('_') {
        Some((c, n)) if n.chars().all(|x| x.is_ascii_digit()) => c.to_string(),
        _ => stem.to_string(),
    }
}

/// Groups a compile error by the keyword it names (or its first words).
fn cause(msg: &str) -> String {
    if let Some(i) = msg.find("keyword `") {
        let rest = &msg[i + 9..];
        if let Some(j) = rest.find('`') {
            let kw = &rest[..j];
            let what = rest.split_once(": ").map(|x| x.1).unwrap_or("");
            let what: String = what.chars().take(60).collect();
            return format!("{kw}: {what}");
        }
    }
    msg.chars().take(70).collect()
}

fn fmt_n(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn summarize(outcomes: &[(String, Outcome)]) -> (String, Value) {
    let n = outcomes.len() as u64;
    let passing = outcomes
        .iter()
        .filter(|(_, o)| o.compiled && !o.valid_rejected && !o.invalid_accepted && !o.other_error)
        .count() as u64;
    let compile_errors = outcomes.iter().filter(|(_, o)| !o.compiled).count() as u64;
    let valerr = outcomes.iter().filter(|(_, o)| o.valid_rejected).count() as u64;
    let invalerr = outcomes.iter().filter(|(_, o)| o.invalid_accepted).count() as u64;
    let other = outcomes.iter().filter(|(_, o)| o.other_error).count() as u64;
    let mut masks: Vec<u64> = outcomes.iter().flat_map(|(_, o)| o.mask_us.iter().copied()).collect();
    masks.sort_unstable();
    let mut ttfm: Vec<u64> = outcomes.iter().filter(|(_, o)| o.compiled).map(|(_, o)| o.ttfm_us).collect();
    ttfm.sort_unstable();
    let avg = |v: &[u64]| if v.is_empty() { 0 } else { v.iter().sum::<u64>() / v.len() as u64 };
    let pct = [25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];
    let mut t = String::new();
    let pass_pct = if n > 0 { 100.0 * passing as f64 / n as f64 } else { 0.0 };
    t.push_str("| metric | formwork | llguidance 1.9.1 (ANCHORS.md, 5,584 schemas) |\n|---|---:|---:|\n");
    t.push_str(&format!("| passing | {} / {} ({pass_pct:.1}%) | 4,706 / 5,584 (84.3%) |\n", fmt_n(passing), fmt_n(n)));
    t.push_str(&format!("| compile errors | {} | 872 |\n", fmt_n(compile_errors)));
    t.push_str(&format!("| validation errors (valid instance rejected) | {} | 6 |\n", fmt_n(valerr)));
    t.push_str(&format!("| invalidation errors (invalid instance accepted) | {} | 0 |\n", fmt_n(invalerr)));
    t.push_str(&format!("| other errors (timeouts, internal) | {} | |\n", fmt_n(other)));
    t.push_str(&format!("| tokens | {} | |\n", fmt_n(masks.len() as u64)));
    let ll_tbm = ["", "23", "", "79", "", "562", "4,238"];
    t.push_str(&format!("| TBM avg (µs) | {} | 53 |\n", fmt_n(avg(&masks))));
    for (p, l) in pct.iter().zip(ll_tbm) {
        t.push_str(&format!("| TBM p{p} | {} | {l} |\n", fmt_n(percentile(&masks, *p))));
    }
    t.push_str(&format!("| TBM max | {} | 47,503 |\n", fmt_n(masks.last().copied().unwrap_or(0))));
    let ll_ttfm = ["", "1,956", "", "6,312", "", "32,805", ""];
    t.push_str(&format!("| TTFM avg (µs) | {} | |\n", fmt_n(avg(&ttfm))));
    for (p, l) in pct.iter().zip(ll_ttfm) {
        t.push_str(&format!("| TTFM p{p} | {} | {l} |\n", fmt_n(percentile(&ttfm, *p))));
    }
    t.push_str(&format!("| TTFM max | {} | 158,456 |\n", fmt_n(ttfm.last().copied().unwrap_or(0))));
    // per category
    let mut cats: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, o) in outcomes {
        let e = cats.entry(category(id)).or_default();
        e.1 += 1;
        if o.compiled && !o.valid_rejected && !o.invalid_accepted && !o.other_error {
            e.0 += 1;
        }
    }
    t.push_str("\n| category | passing | of | % |\n|---|---:|---:|---:|\n");
    for (c, (p, k)) in &cats {
        t.push_str(&format!("| {c} | {p} | {k} | {:.1} |\n", 100.0 * *p as f64 / (*k).max(1) as f64));
    }
    // compile error causes
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    for (_, o) in outcomes {
        if let Some(e) = &o.compile_error {
            *causes.entry(cause(e)).or_default() += 1;
        }
    }
    let mut cv: Vec<(String, u64)> = causes.into_iter().collect();
    cv.sort_by_key(|c| std::cmp::Reverse(c.1));
    t.push_str("\n| compile error cause | schemas |\n|---|---:|\n");
    for (c, k) in cv.iter().take(25) {
        t.push_str(&format!("| {} | {k} |\n", c.replace('|', "\\|")));
    }
    let per_schema: BTreeMap<&str, &str> = outcomes
        .iter()
        .map(|(id, o)| {
            let s = if !o.compiled {
                "compile_error"
            } else if o.invalid_accepted {
                "invalidation_error"
            } else if o.valid_rejected {
                "validation_error"
            } else if o.other_error {
                "other_error"
            } else {
                "pass"
            };
            (id.as_str(), s)
        })
        .collect();
    let js = json!({
        "schemas": n, "passing": passing, "compile_errors": compile_errors,
        "validation_errors": valerr, "invalidation_errors": invalerr, "other_errors": other,
        "tokens": masks.len(),
        "tbm_us": {"avg": avg(&masks), "p25": percentile(&masks, 25.0), "p50": percentile(&masks, 50.0),
                   "p75": percentile(&masks, 75.0), "p90": percentile(&masks, 90.0), "p95": percentile(&masks, 95.0),
                   "p99": percentile(&masks, 99.0), "p99.9": percentile(&masks, 99.9), "max": masks.last().copied().unwrap_or(0)},
        "ttfm_us": {"avg": avg(&ttfm), "p25": percentile(&ttfm, 25.0), "p50": percentile(&ttfm, 50.0),
                   "p75": percentile(&ttfm, 75.0), "p90": percentile(&ttfm, 90.0), "p95": percentile(&ttfm, 95.0),
                   "p99": percentile(&ttfm, 99.0), "p99.9": percentile(&ttfm, 99.9), "max": ttfm.last().copied().unwrap_or(0)},
        "per_schema": per_schema,
    });
    (t, js)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(category("Github_easy---o123.json"), "Github_easy");
        assert_eq!(category("BFCL_java_3.json"), "BFCL_java");
        assert_eq!(category("Synthesized---draft2019_09_x.json"), "Synthesized");
    }

    #[test]
    fn args() {
        let a: Vec<String> =
            ["d", "--tokenizer", "t.json", "--out", "o", "--limit", "3"].iter().map(|s| s.to_string()).collect();
        let p = parse_args(&a).unwrap().unwrap();
        assert_eq!(p.limit, Some(3));
        assert!(parse_args(&["d".to_string()]).is_err());
        assert!(parse_args(&["--bogus".to_string()]).is_err());
    }
}
