import { decodeInto, encodeInto, type FormatName } from "../src/index.js";
import { median, printTable, rate, timeRuns } from "./harness.js";

/**
 * Codec throughput on one thread: encode (float32 -> codes, RNE, ml_dtypes-exact) and decode
 * (codes -> float32) of N random float32 values, beside a plain Float32Array copy of the same data.
 */
export async function run(opts: { quick?: boolean }): Promise<void> {
  const n = opts.quick ? 1 << 22 : 64 << 20;
  const runs = opts.quick ? 3 : 3;
  const src = new Float32Array(n);
  // Normal-ish values spread over the formats' ranges (a fixed-seed LCG: no Math.random).
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    src[i] = (u - 0.5) * 2 ** ((i & 15) - 4);
  }
  const copy = new Float32Array(n);
  const tCopy = median(timeRuns(() => copy.set(src), runs));
  console.log(`codecs: ${n.toLocaleString("en")} float32 elements, one thread, median of ${runs} runs`);
  const rows: string[][] = [["Float32Array copy (baseline)", rate(n, tCopy), "1.00", "", ""]];
  const formats: FormatName[] = [
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e8m0fnu",
    "float4_e2m1fn",
    "hifloat8",
  ];
  const codes = new Uint8Array(n);
  const out = new Float32Array(n);
  const absSrc = src.map(Math.abs); // e8m0 encodes positive scales; negative input is NaN by definition
  for (const f of formats) {
    const input = f === "float8_e8m0fnu" ? absSrc : src;
    const te = median(timeRuns(() => encodeInto(f, input, codes), runs));
    const td = median(timeRuns(() => decodeInto(f, codes, out), runs));
    rows.push([f, rate(n, te), (tCopy / te).toFixed(2), rate(n, td), (tCopy / td).toFixed(2)]);
  }
  printTable(["format", "encode", "x copy", "decode", "x copy"], rows);
  console.log("targets: float8_e4m3fn encode >= 400 M/s, decode >= 2 G/s (numpy + ml_dtypes cast: ~115 M/s)");
}
