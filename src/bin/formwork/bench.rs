//! `formwork bench`: the numbers an edge deployment is judged by.

use std::time::Instant;

use formwork::generate::{Engine, GenerateOptions, Shape};
use formwork::model::Model;
use formwork::tasks::triage;
use serde_json::json;

use crate::common::{number, ModelArgs, MODEL_HELP};

const HELP: &str = "\
formwork bench: load time, time to first token, prefill and decode speed,
constrained-decoding overhead, peak memory, ticket-triage latency

USAGE:
    formwork bench [OPTIONS]

OPTIONS:
    --prompt-tokens N    prompt length for prefill (default 64)
    --decode-tokens N    tokens to decode (default 128)
    --queries N          ticket-triage queries, warm, system prompt cached (default 50)
    --repeat N           repetitions of the prefill and decode runs; medians reported (default 3)
    --json               print one JSON object instead of the table
";

struct Args {
    prompt_tokens: usize,
    decode_tokens: usize,
    queries: usize,
    repeat: usize,
    json: bool,
    model: ModelArgs,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        prompt_tokens: 64,
        decode_tokens: 128,
        queries: 50,
        repeat: 3,
        json: false,
        model: ModelArgs::default(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let f = flag.as_str();
        if a.model.take(f, &mut it)? {
            continue;
        }
        match f {
            "-h" | "--help" => {
                println!("{HELP}\n{MODEL_HELP}");
                return Ok(None);
            }
            "--prompt-tokens" => a.prompt_tokens = number(f, &mut it)?,
            "--decode-tokens" => a.decode_tokens = number(f, &mut it)?,
            "--queries" => a.queries = number(f, &mut it)?,
            "--repeat" => a.repeat = number::<usize>(f, &mut it)?.max(1),
            "--json" => a.json = true,
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }
    if a.prompt_tokens == 0 || a.decode_tokens == 0 {
        return Err("--prompt-tokens and --decode-tokens must be at least 1".to_string());
    }
    Ok(Some(a))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

/// Peak resident memory of this process in MB (Linux), 0 elsewhere.
fn peak_rss_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0.0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// A prompt of exactly `n` tokens (text cycled until long enough).
fn prompt_ids(engine: &Engine, n: usize) -> Result<Vec<u32>, String> {
    let text = "The quick brown fox jumps over the lazy dog while the committee reviews the quarterly \
                report on regional water usage, energy prices and the new railway timetable. ";
    let mut ids = Vec::new();
    while ids.len() < n {
        ids.extend(engine.tokenizer().encode(text).map_err(|e| e.to_string())?);
    }
    ids.truncate(n);
    Ok(ids)
}

/// (prefill seconds, decode seconds per token) for one run: prefill `prompt`
/// on an empty cache, then `steps` greedy single-token steps.
fn run_plain(model: &Model, prompt: &[u32], steps: usize) -> Result<(f64, f64), String> {
    let mut cache = model.new_cache();
    let mut logits = vec![0f32; model.config().vocab_size];
    let t = Instant::now();
    model.forward(prompt, &mut cache, &mut logits).map_err(|e| e.to_string())?;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..steps {
        let next = formwork::kernels::masked_argmax(&logits, &vec![u32::MAX; logits.len().div_ceil(32)]).unwrap_or(0);
        model.forward(&[next as u32], &mut cache, &mut logits).map_err(|e| e.to_string())?;
    }
    Ok((prefill, t.elapsed().as_secs_f64() / steps as f64))
}

/// What one core streams from memory right now, in GB/s: the best of a
/// few sequential passes over a buffer eight times the L3 of common
/// desktop parts (256 MiB), summed with independent lanes so the loop is
/// bound by loads, not by additions. Measured in the same run as the
/// decode speed, it says how close decoding gets to the physical limit on
/// this machine today (shared machines vary by tens of percent).
fn memory_read_gb_per_s() -> f64 {
    const WORDS: usize = 256 << 17; // 256 MiB of u64
    let buf: Vec<u64> = (0..WORDS as u64).collect();
    let mut best = f64::INFINITY;
    let mut sink = 0u64;
    for _ in 0..5 {
        let t = Instant::now();
        let mut lanes = [0u64; 8];
        for chunk in buf.chunks_exact(8) {
            for (l, &x) in lanes.iter_mut().zip(chunk) {
                *l = l.wrapping_add(x);
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
        sink = sink.wrapping_add(lanes.iter().fold(0, |a, &b| a.wrapping_add(b)));
    }
    std::hint::black_box(sink);
    (WORDS * 8) as f64 / best / 1e9
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(a) = parse(args)? else { return Ok(()) };
    let path = a.model.path()?;
    progress(&format!("loading {}", path.display()));
    let t = Instant::now();
    let mut engine = Engine::load(&path, &a.model.options()).map_err(|e| e.to_string())?;
    let load = t.elapsed();
    let threads = engine.model().threads();
    let prompt = prompt_ids(&engine, a.prompt_tokens)?;

    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for r in 0..a.repeat {
        progress(&format!("prefill {} + decode {} tokens ({}/{})", a.prompt_tokens, a.decode_tokens, r + 1, a.repeat));
        let (p, d) = run_plain(engine.model(), &prompt, a.decode_tokens)?;
        prefill.push(p);
        decode.push(d);
    }
    let prefill_s = median(prefill);
    let step_s = median(decode);

    // Time to first token, cold: a fresh prompt through the engine (no
    // prefix cache), greedy, free text, one token.
    engine.clear_cache();
    let first = GenerateOptions { max_tokens: 1, ..Default::default() };
    let g = engine
        .generate(&formwork::generate::Prompt::Text(engine.tokenizer().decode(&prompt)), &Shape::Text, &first)
        .map_err(|e| e.to_string())?;
    let ttft = g.timings.first_token;

    // Constrained vs unconstrained decode, same prompt, same number of
    // forward steps: a schema whose answer is one long string.
    progress("constrained vs unconstrained decode");
    let long = Shape::json_schema_compact(json!({
        "type": "object",
        "properties": {"story": {"type": "string", "minLength": 400, "maxLength": 600}},
        "required": ["story"]
    }));
    let prompt_text = formwork::generate::Prompt::Chat(vec![formwork::tokenizer::Message::user(
        "Write a long story about a lighthouse keeper, as JSON.",
    )]);
    let opts = GenerateOptions { max_tokens: a.decode_tokens, ..Default::default() };
    let mut constrained = Vec::new();
    let mut unconstrained = Vec::new();
    for _ in 0..a.repeat {
        let c = engine.generate(&prompt_text, &long, &opts).map_err(|e| e.to_string())?;
        let steps = c.sampled_tokens.max(1);
        constrained.push(c.timings.decode.as_secs_f64() / steps as f64);
        let u_opts = GenerateOptions { max_tokens: steps, ..Default::default() };
        let u = engine.generate(&prompt_text, &Shape::Text, &u_opts).map_err(|e| e.to_string())?;
        unconstrained.push(u.timings.decode.as_secs_f64() / u.sampled_tokens.max(1) as f64);
    }
    let c_step = median(constrained);
    let u_step = median(unconstrained);

    // Ticket triage, warm: the system prompt stays in the prefix cache.
    progress(&format!("ticket triage x {}", a.queries));
    let tickets: Vec<&str> =
        triage::CLEAR_TICKETS.iter().map(|t| t.0).chain(triage::MORE_TICKETS.iter().copied()).collect();
    let shape = triage::shape();
    let _ = engine.generate(&triage::prompt(tickets[0]), &shape, &GenerateOptions::default());
    let mut triage_ms = Vec::new();
    let mut steps = Vec::new();
    let mut invalid = 0;
    for q in 0..a.queries {
        let g = engine
            .generate(&triage::prompt(tickets[q % tickets.len()]), &shape, &GenerateOptions::default())
            .map_err(|e| e.to_string())?;
        if !g.complete || g.value.is_none() {
            invalid += 1;
        }
        triage_ms.push(g.timings.total.as_secs_f64() * 1e3);
        steps.push(g.sampled_tokens as f64);
    }
    let rss = peak_rss_mb();
    progress("memory read bandwidth (one core)");
    let stream = memory_read_gb_per_s();
    let bytes = engine.model().weight_bytes() as f64;
    let out = json!({
        "model": path.display().to_string(),
        "threads": threads,
        "load_ms": load.as_secs_f64() * 1e3,
        "ttft_ms": ttft.as_secs_f64() * 1e3,
        "prompt_tokens": a.prompt_tokens,
        "prefill_tokens_per_s": a.prompt_tokens as f64 / prefill_s,
        "decode_tokens_per_s": 1.0 / step_s,
        "decode_gb_per_s": bytes / step_s / 1e9,
        "memory_read_gb_per_s": stream,
        "constrained_step_ms": c_step * 1e3,
        "unconstrained_step_ms": u_step * 1e3,
        "constrained_overhead_pct": (c_step / u_step - 1.0) * 100.0,
        "triage_p50_ms": median(triage_ms.clone()),
        "triage_max_ms": triage_ms.iter().copied().fold(0.0, f64::max),
        "triage_sampled_steps_p50": median(steps),
        "triage_invalid": invalid,
        "peak_rss_mb": rss,
    });
    if a.json {
        println!("{out}");
        return Ok(());
    }
    let f = |k: &str| out[k].as_f64().unwrap_or(f64::NAN);
    println!("formwork bench: {} ({} threads)", path.display(), threads);
    println!("  load                     {:>9.1} ms", f("load_ms"));
    println!("  time to first token      {:>9.1} ms   ({} prompt tokens, cold)", f("ttft_ms"), a.prompt_tokens);
    println!("  prefill                  {:>9.1} tokens/s", f("prefill_tokens_per_s"));
    println!(
        "  decode                   {:>9.1} tokens/s   ({:.1} GB/s of weights; one core reads {:.1} GB/s)",
        f("decode_tokens_per_s"),
        f("decode_gb_per_s"),
        f("memory_read_gb_per_s")
    );
    println!(
        "  constrained decode step  {:>9.2} ms   (unconstrained {:.2} ms: {:+.1}%)",
        f("constrained_step_ms"),
        f("unconstrained_step_ms"),
        f("constrained_overhead_pct")
    );
    println!(
        "  ticket triage p50        {:>9.1} ms   (max {:.1} ms, {} queries, warm; {} invalid)",
        f("triage_p50_ms"),
        f("triage_max_ms"),
        a.queries,
        invalid
    );
    println!("  peak RSS                 {:>9.1} MB", f("peak_rss_mb"));
    Ok(())
}
