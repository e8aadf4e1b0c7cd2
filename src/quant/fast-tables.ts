import { encodeInto, type FormatName, type Rounding } from "../formats/index.js";
import { valuesOf } from "./element-codes.js";

/**
 * Quantization of 16-bit input by table lookup. With a power-of-two scale 2^k the element code of a
 * BF16/F16 value x is a function of its 16-bit code and k alone: code(fl32(x * 2^-k)) after the
 * satfinite clamp. So the table is built by running the real encoder over all 65536 codes once per
 * (input dtype, element, k, rounding, saturate), and quantizing a block is one lookup per element.
 * Deterministic roundings only (stochastic rounding needs a fresh random draw per element).
 */
const cache = new Map<string, Uint8Array>();
/** Bound on cached tables (64 KiB each); the cache is cleared when it fills. */
const MAX_TABLES = 96;

/** The 65536-entry code table for scale 2^k (k NaN: the NaN scale, every entry the NaN code). */
export function pow2CodeTable(
  dtype: "bfloat16" | "float16",
  element: FormatName,
  k: number,
  max: number,
  rounding: Rounding,
  saturate: boolean,
): Uint8Array {
  const key = `${dtype}|${element}|${k}|${rounding}|${saturate ? 1 : 0}`;
  let t = cache.get(key);
  if (t !== undefined) return t;
  const src = valuesOf(dtype);
  const factor = 2 ** -k;
  const scaled = new Float32Array(65536);
  // A NaN scale makes every entry NaN (never NaN * NaN, whose sign JavaScript leaves open).
  if (Number.isNaN(k)) scaled.fill(Number.NaN);
  else
    for (let c = 0; c < 65536; c++) {
      let v = Math.fround(src[c] * factor);
      if (saturate) {
        if (v > max) v = max;
        else if (v < -max) v = -max;
      }
      scaled[c] = v;
    }
  t = new Uint8Array(65536);
  encodeInto(element, scaled, t, { rounding, overflow: saturate ? "saturate" : "nonfinite" });
  if (cache.size >= MAX_TABLES) cache.clear();
  cache.set(key, t);
  return t;
}
