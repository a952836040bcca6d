//! `formwork generate` and `formwork classify`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use formwork::generate::{Engine, GenerateOptions, Generation, MaskStrategy, Prompt, Shape};
use formwork::grammar::json_schema::{JsonSchemaOptions, Mode, PropertyOrder, Whitespace};
use formwork::tokenizer::{Message, Tokenizer};
use serde_json::json;

use crate::common::{number, value, ModelArgs, MODEL_HELP};

const HELP: &str = "\
formwork generate: answer a prompt in the shape you give

USAGE:
    formwork generate --prompt TEXT [SHAPE] [OPTIONS]

EXAMPLES:
    formwork generate --prompt 'Is water wet? Answer yes or no.' --choices yes,no
    formwork generate --prompt 'A user record for Ada, 36.' \\
        --schema '{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}'
    formwork generate --prompt 'Three colours:' --regex '[a-z]+(, [a-z]+){2}' --stream
    formwork generate --schema schema.json --dry-run      # compile only: is the schema supported?

PROMPT:
    --prompt TEXT        the user's message (rendered with the model's chat template)
    --system TEXT        a system message before it
    --raw                use --prompt as raw text, without the chat template

SHAPE (at most one; none = free text):
    --schema FILE|JSON   a JSON Schema (a file path, or the JSON itself)
    --grammar FILE       a grammar: .gbnf (llama.cpp's GBNF) or .lark (Lark-like)
    --regex RE           the whole answer matches RE
    --choices A,B,C      the answer is one of these strings
    --lenient            schemas: approximate (soundly) what cannot be enforced instead of refusing
    --compact            schemas: no whitespace between JSON tokens (fewer tokens)
    --any-order          schemas: properties in any order

SAMPLING:
    --temperature T      0 (default) = greedy
    --top-k K            keep the K most likely tokens (0 = all)
    --top-p P            keep the most likely tokens whose probability reaches P (1 = all)
    --seed N             random seed (default 0): same seed, same answer
    --max-tokens N       most tokens to generate (default 256); a shape is closed
                         along its shortest valid ending when the budget runs low
    --mask-strategy S    mask-first (default): exact confidences; sample-first: build
                         the grammar mask only when the sampled token is rejected
                         (same distribution, no mask-removed figures); auto
    --stop S             stop before S (repeatable; for free text)

OUTPUT:
    --stream             print tokens as they come
    --json               print one JSON object: text, value, confidences, counts, timings
    --dry-run            compile the shape for the model's vocabulary and report; no model load
";

const CLASSIFY_HELP: &str = "\
formwork classify: the probability of each label as the answer

USAGE:
    formwork classify --prompt TEXT --labels A,B,C [--system TEXT] [--raw] [--json]

Each label's probability is the model's probability of writing exactly that
label as its whole answer, normalized over the labels (one batched forward
pass per label after the prompt).

EXAMPLE:
    formwork classify --system 'Classify the ticket.' \\
        --prompt 'My invoice was charged twice.' --labels billing,incident,inquiry
";

#[derive(Default)]
struct Args {
    prompt: Option<String>,
    system: Option<String>,
    raw: bool,
    schema: Option<String>,
    grammar: Option<String>,
    regex: Option<String>,
    choices: Option<String>,
    lenient: bool,
    compact: bool,
    any_order: bool,
    options: GenerateOptions,
    stream: bool,
    json: bool,
    dry_run: bool,
    labels: Option<String>,
    model: ModelArgs,
}

fn parse(args: &[String], help: &str) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let f = flag.as_str();
        if a.model.take(f, &mut it)? {
            continue;
        }
        match f {
            "-h" | "--help" => {
                println!("{help}\n{MODEL_HELP}");
                return Ok(None);
            }
            "--prompt" => a.prompt = Some(value(f, &mut it)?),
            "--system" => a.system = Some(value(f, &mut it)?),
            "--raw" => a.raw = true,
            "--schema" => a.schema = Some(value(f, &mut it)?),
            "--grammar" => a.grammar = Some(value(f, &mut it)?),
            "--regex" => a.regex = Some(value(f, &mut it)?),
            "--choices" => a.choices = Some(value(f, &mut it)?),
            "--labels" => a.labels = Some(value(f, &mut it)?),
            "--lenient" => a.lenient = true,
            "--compact" => a.compact = true,
            "--any-order" => a.any_order = true,
            "--temperature" => a.options.sampling.temperature = number(f, &mut it)?,
            "--top-k" => a.options.sampling.top_k = number(f, &mut it)?,
            "--top-p" => a.options.sampling.top_p = number(f, &mut it)?,
            "--seed" => a.options.sampling.seed = number(f, &mut it)?,
            "--max-tokens" => a.options.max_tokens = number(f, &mut it)?,
            "--mask-strategy" => {
                a.options.mask_strategy = match value(f, &mut it)?.as_str() {
                    "mask-first" => MaskStrategy::MaskFirst,
                    "sample-first" => MaskStrategy::SampleFirst,
                    "auto" => MaskStrategy::Auto,
                    other => {
                        return Err(format!("--mask-strategy: `{other}` is not one of mask-first, sample-first, auto"))
                    }
                }
            }
            "--stop" => a.options.stop.push(value(f, &mut it)?),
            "--stream" => a.stream = true,
            "--json" => a.json = true,
            "--dry-run" => a.dry_run = true,
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }
    Ok(Some(a))
}

fn shape(a: &Args) -> Result<Shape, String> {
    let given = [&a.schema, &a.grammar, &a.regex, &a.choices].iter().filter(|s| s.is_some()).count();
    if given > 1 {
        return Err("give at most one of --schema, --grammar, --regex, --choices".to_string());
    }
    if let Some(s) = &a.schema {
        let text = if s.trim_start().starts_with('{') || s.trim() == "true" || s.trim() == "false" {
            s.clone()
        } else {
            std::fs::read_to_string(s).map_err(|e| format!("cannot read schema file `{s}`: {e}"))?
        };
        let schema: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("the schema is not JSON: {e}"))?;
        let options = JsonSchemaOptions {
            mode: if a.lenient { Mode::Lenient } else { Mode::Strict },
            whitespace: if a.compact { Whitespace::Compact } else { Whitespace::default() },
            property_order: if a.any_order { PropertyOrder::Any { max_properties: 8 } } else { PropertyOrder::Schema },
            ..Shape::generation_options()
        };
        return Ok(Shape::JsonSchema { schema, options });
    }
    if let Some(g) = &a.grammar {
        let text = std::fs::read_to_string(g).map_err(|e| format!("cannot read grammar file `{g}`: {e}"))?;
        return match Path::new(g).extension().and_then(|e| e.to_str()) {
            Some("gbnf") => Ok(Shape::Gbnf(text)),
            Some("lark") => Ok(Shape::Lark(text)),
            _ => Err(format!("`{g}`: a grammar file ends in .gbnf or .lark")),
        };
    }
    if let Some(r) = &a.regex {
        return Ok(Shape::Regex(r.clone()));
    }
    if let Some(c) = &a.choices {
        return Ok(Shape::Choices(split_list(c)));
    }
    Ok(Shape::Text)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn prompt(a: &Args) -> Result<Prompt, String> {
    let user = a.prompt.clone().ok_or("missing --prompt TEXT (see --help)")?;
    if a.raw {
        return Ok(Prompt::Text(a.system.as_ref().map_or(user.clone(), |s| format!("{s}\n{user}"))));
    }
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::system(s.clone()));
    }
    messages.push(Message::user(user));
    Ok(Prompt::Chat(messages))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(a) = parse(args, HELP)? else { return Ok(()) };
    let shape = shape(&a)?;
    if a.dry_run {
        return dry_run(&a, &shape);
    }
    let prompt = prompt(&a)?;
    let mut engine = a.model.load()?;
    let stream = a.stream && !a.json;
    let mut stdout = std::io::stdout();
    let g = engine
        .generate_streaming(&prompt, &shape, &a.options, |p| {
            if stream {
                // Output bytes as they come; a broken pipe ends generation.
                if stdout.write_all(p.bytes).and_then(|()| stdout.flush()).is_err() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| e.to_string())?;
    if a.json {
        println!("{}", report(&engine, &g));
    } else {
        if stream {
            println!();
        } else {
            println!("{}", g.text);
        }
        summary(&engine, &g);
    }
    if !g.complete {
        let short = g.tokens_to_close.map_or(String::new(), |n| format!(" by at least {n}"));
        return Err(format!("the answer is incomplete ({:?}): raise --max-tokens{short}", g.finish));
    }
    Ok(())
}

fn summary(engine: &Engine, g: &Generation) {
    eprintln!(
        "-- {:?}, confidence {:.3}; {} tokens ({} sampled, {} forced, {} steered); prompt {} tokens ({} cached)",
        g.finish,
        g.confidence,
        g.tokens.len(),
        g.sampled_tokens,
        g.forced_tokens,
        g.steered_tokens,
        g.prompt_tokens,
        g.cached_prompt_tokens
    );
    for f in g.fields.iter().filter(|f| !f.pointer.is_empty()) {
        eprintln!("   {:<24} confidence {:.3}", f.pointer, f.confidence);
    }
    let t = &g.timings;
    eprintln!(
        "-- load {:.0} ms, prompt {:.1} ms, first token {:.1} ms, decode {:.1} tokens/s, mask {:.2} ms, total {:.1} ms",
        engine.load_time().as_secs_f64() * 1e3,
        t.prefill.as_secs_f64() * 1e3,
        t.first_token.as_secs_f64() * 1e3,
        t.tokens_per_second(g.tokens.len()),
        t.mask.as_secs_f64() * 1e3,
        t.total.as_secs_f64() * 1e3,
    );
}

fn report(engine: &Engine, g: &Generation) -> serde_json::Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    json!({
        "text": g.text,
        "value": g.value,
        "complete": g.complete,
        "finish": format!("{:?}", g.finish),
        "confidence": g.confidence,
        "fields": g.fields.iter().map(|f| json!({"pointer": f.pointer, "confidence": f.confidence, "tokens": f.tokens})).collect::<Vec<_>>(),
        "tokens": g.tokens.len(),
        "sampled_tokens": g.sampled_tokens,
        "forced_tokens": g.forced_tokens,
        "steered_tokens": g.steered_tokens,
        "tokens_to_close": g.tokens_to_close,
        "prompt_tokens": g.prompt_tokens,
        "cached_prompt_tokens": g.cached_prompt_tokens,
        "mask_removed": g.mask_removed,
        "load_ms": ms(engine.load_time()),
        "prefill_ms": ms(g.timings.prefill),
        "ttft_ms": ms(g.timings.first_token),
        "decode_tokens_per_s": g.timings.tokens_per_second(g.tokens.len()),
        "mask_ms": ms(g.timings.mask),
        "compile_ms": ms(g.timings.compile),
        "total_ms": ms(g.timings.total),
    })
}

/// Compiles the shape for the model's vocabulary (read from the GGUF
/// header only) and reports what the grammar allows first.
fn dry_run(a: &Args, shape: &Shape) -> Result<(), String> {
    let path = a.model.path()?;
    let t = std::time::Instant::now();
    let file = formwork::weights::Gguf::open(&path).map_err(|e| e.to_string())?;
    let tokenizer = Tokenizer::from_gguf(file.gguf()).map_err(|e| e.to_string())?;
    let read = t.elapsed();
    let t = std::time::Instant::now();
    let compiled = shape.compile(&tokenizer).map_err(|e| e.to_string())?;
    let compile = t.elapsed();
    let Some(compiled) = compiled else {
        println!("free text: nothing to compile ({} tokens in the vocabulary)", tokenizer.len());
        return Ok(());
    };
    let mut m = compiled.matcher().map_err(|e| e.to_string())?;
    let t = std::time::Instant::now();
    let mask = m.compute_mask_vec().map_err(|e| e.to_string())?;
    let first = t.elapsed();
    let allowed: u32 = mask.iter().map(|w| w.count_ones()).sum();
    let forced = m.forced_bytes().map_err(|e| e.to_string())?;
    println!("ok: the shape compiles for {} ({} tokens)", path.display(), tokenizer.len());
    println!(
        "   {} terminals; compile {:.2} ms, first mask {:.2} ms",
        compiled.num_terminals(),
        ms(compile),
        ms(first)
    );
    println!(
        "   first token: {allowed} of {} allowed; forced start: {:?}",
        tokenizer.len(),
        String::from_utf8_lossy(&forced)
    );
    eprintln!("   (vocabulary read from the GGUF header in {:.0} ms; the model was not loaded)", ms(read));
    Ok(())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn classify(args: &[String]) -> Result<(), String> {
    let Some(a) = parse(args, CLASSIFY_HELP)? else { return Ok(()) };
    let labels = split_list(a.labels.as_deref().ok_or("missing --labels A,B,C (see --help)")?);
    let prompt = prompt(&a)?;
    let mut engine = a.model.load()?;
    let c = engine.classify(&prompt, &labels).map_err(|e| e.to_string())?;
    if a.json {
        let labels: Vec<_> = c.labels.iter().map(|(l, p)| json!({"label": l, "probability": p})).collect();
        println!("{}", json!({"labels": labels, "ms": ms(c.elapsed)}));
    } else {
        for (l, p) in &c.labels {
            println!("{p:.3}  {l}");
        }
        eprintln!("-- {:.1} ms", ms(c.elapsed));
    }
    Ok(())
}
