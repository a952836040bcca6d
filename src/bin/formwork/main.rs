//! The `formwork` command line.
//!
//! Subcommands:
//!
//! * `maskbench DIR --tokenizer FILE --out OUTDIR`: the grammar-only
//!   benchmark over a directory of MaskBench files (see [`maskbench`]).
//!
//! Arguments are parsed by hand (a few flags); `--help` on any subcommand
//! prints its usage.

mod maskbench;
mod pyjson;

use std::process::ExitCode;

const USAGE: &str = "\
formwork: small language models that answer in the shape you give them

USAGE:
    formwork <COMMAND> [ARGS]

COMMANDS:
    maskbench    grammar-only benchmark over a directory of MaskBench files
    help         print this message

Run `formwork <COMMAND> --help` for a command's options.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
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
