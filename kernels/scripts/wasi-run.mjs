// Runs a wasm32-wasip1 binary (a test harness) under Node.js's WASI, so the
// simd128 kernels are tested on wasm too:
//
//   CARGO_TARGET_WASM32_WASIP1_RUNNER="node $PWD/kernels/scripts/wasi-run.mjs" \
//   RUSTFLAGS="-C target-feature=+simd128" \
//   cargo test -p formwork-kernels --target wasm32-wasip1
//
// Node 20's WASI is "experimental" and prints a warning; it is enough for
// libtest (args, env, stdout, exit code).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env: process.env,
  preopens: { '/': '/' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
