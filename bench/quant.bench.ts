import { dequantize, quantize } from "../src/quant/index.js";

/** Seeded normal BF16 codes (mulberry32 + Box-Muller, RNE to BF16). */
function randomBf16(n: number, seed: number): Uint16Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const f = new Float32Array(1);
  const b = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    f[0] = 0.02 * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
    out[i] = (b[0] + 0x7fff + ((b[0] >>> 16) & 1)) >>> 16;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(runs: number, f: () => unknown): number {
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

/**
 * DeepSeek-V3.1 128x128 quantization of an 8192x8192 BF16 matrix and dequantization back to BF16,
 * one thread, median of 3, beside a same-run baseline (`.slice()` of the same Uint16Array).
 */
export async function run(opts: { quick?: boolean } = {}): Promise<void> {
  const side = opts.quick ? 2048 : 8192;
  const n = side * side;
  const codes = randomBf16(n, 1);
  const input = { dtype: "bfloat16" as const, codes };
  const shape = [side, side];
  // Warm up (JIT, lookup tables).
  const warm = quantize(input, shape, "deepseek-v3.1");
  dequantize(warm, { to: "bfloat16" });

  const copy = time(3, () => codes.slice());
  let q = warm;
  const tq = time(3, () => {
    q = quantize(input, shape, "deepseek-v3.1");
  });
  const td = time(3, () => dequantize(q, { to: "bfloat16" }));
  const rate = (t: number) => n / t / 1e6;
  const rows = [
    ["copy (Uint16Array.slice)", copy, rate(copy), 1],
    ["quantize deepseek-v3.1", tq, rate(tq), tq / copy],
    ["dequantize -> bfloat16", td, rate(td), td / copy],
  ] as const;
  console.log(`quant: ${side}x${side} BF16, 128x128 blocks, median of 3, one thread`);
  console.log("| case | seconds | M elements/s | time / copy |");
  console.log("|---|---:|---:|---:|");
  for (const [name, t, r, ratio] of rows) {
    console.log(`| ${name} | ${t.toFixed(4)} | ${r.toFixed(0)} | ${ratio.toFixed(1)}x |`);
  }
}

const isMain = typeof process !== "undefined" && process.argv[1]?.endsWith("quant.bench.ts");
if (isMain) await run({ quick: process.argv.includes("--quick") });
