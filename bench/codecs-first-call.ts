/**
 * First-call codec speed in a fresh process (issue 13's "no warm-up cliff"): each measurement spawns
 * a new Node process that fills its input, touches a preallocated output buffer, and times ONE
 * `decodeInto(float8_e4m3fn)` or `encodeInto(float8_e4m3fn)` of 16M values, with the TypeScript or
 * the WebAssembly backend forced. Medians of 5 processes; the second call in the same process is
 * printed beside it as the warm figure. Run: `npm run bench:first-call`.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { decodeInto, encodeInto } from "../src/formats/index.js";
import { type KernelBackend, setKernelBackend } from "../src/formats/wasm/kernel-backend.js";
import { median, printTable, rate } from "./harness.js";

const N = 16 * 1024 * 1024;
const PROCESSES = 5;
const TARGET = { decode: 4e9, encode: 1.5e9 };
type Op = keyof typeof TARGET;

function child(backend: KernelBackend, op: Op): void {
  // Inputs from a small xorshift, not from the codecs (that would warm them up).
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  setKernelBackend(backend);
  const times: number[] = [];
  if (op === "decode") {
    const codes = new Uint8Array(N);
    for (let i = 0; i < N; i++) codes[i] = next() & 0xff;
    const out = new Float32Array(N).fill(1);
    for (let r = 0; r < 2; r++) {
      const t0 = performance.now();
      decodeInto("float8_e4m3fn", codes, out);
      times.push((performance.now() - t0) / 1e3);
    }
  } else {
    const values = new Float32Array(N);
    // Gaussian-ish weights of a few magnitudes, with the odd overflow, NaN and subnormal.
    for (let i = 0; i < N; i++)
      values[i] = ((next() / 2 ** 32 + next() / 2 ** 32 - 1) * 2 ** ((next() % 24) - 12)) as number;
    const out = new Uint8Array(N).fill(1);
    for (let r = 0; r < 2; r++) {
      const t0 = performance.now();
      encodeInto("float8_e4m3fn", values, out);
      times.push((performance.now() - t0) / 1e3);
    }
  }
  process.stdout.write(JSON.stringify(times));
}

function main(): void {
  const self = fileURLToPath(import.meta.url);
  const rows: string[][] = [];
  for (const op of ["decode", "encode"] as Op[]) {
    for (const backend of ["ts", "wasm"] as KernelBackend[]) {
      const first: number[] = [];
      const second: number[] = [];
      for (let p = 0; p < PROCESSES; p++) {
        const r = spawnSync(process.execPath, [...process.execArgv, self, "--child", backend, op], {
          encoding: "utf8",
        });
        if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
        const [a, b] = JSON.parse(r.stdout) as number[];
        first.push(a);
        second.push(b);
      }
      const f = median(first);
      rows.push([
        `${op} float8_e4m3fn`,
        backend,
        rate(N, f),
        rate(N, median(second)),
        rate(TARGET[op], 1),
        `${((N / f / TARGET[op]) * 100).toFixed(0)}%`,
      ]);
    }
  }
  console.log(
    `16M values, first call in a fresh process, median of ${PROCESSES} processes (Node ${process.version})`,
  );
  printTable(["kernel", "backend", "first call", "second call", "target", "of target"], rows);
}

const at = process.argv.indexOf("--child");
if (at >= 0) child(process.argv[at + 1] as KernelBackend, process.argv[at + 2] as Op);
else main();
