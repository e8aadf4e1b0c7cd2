import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type KernelBackend, setKernelBackend } from "../../src/formats/wasm/kernel-backend.js";

export interface VectorFormat {
  bits: number;
  signed: boolean;
  exponent_bits: number;
  mantissa_bits: number;
  bias: number;
  decode: (number | string)[];
  tricky: { inputs_f32_bits: number[]; kind: string[]; codes: number[] };
  random_codes: number[];
}

export interface Vectors {
  meta: Record<string, unknown>;
  random_inputs_f32_bits: number[];
  formats: Record<string, VectorFormat>;
}

let cached: Vectors | null = null;

/** The vendored ml_dtypes 0.6.0 vectors (see test/fixtures/vectors/README.md). */
export function loadVectors(): Vectors {
  if (cached) return cached;
  const url = new URL("../fixtures/vectors/ml_dtypes-0.6.0-vectors.json", import.meta.url);
  cached = JSON.parse(readFileSync(fileURLToPath(url), "utf8")) as Vectors;
  return cached;
}

/** The value a vector file records for a code ("nan", "inf", "-inf" are strings there). */
export function vectorValue(x: number | string): number {
  if (typeof x === "number") return x;
  if (x === "nan") return Number.NaN;
  if (x === "inf") return Number.POSITIVE_INFINITY;
  if (x === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(x);
}

export function f32FromBits(bits: readonly number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

export function bitsOfF32(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/**
 * A deliberately simple second implementation of round-to-nearest-even used as a reference for
 * formats the vectors do not cover: scan every finite code's value (given as a plain list, computed
 * from the format's closed-form definition in the test) and take the nearest; on a tie take the
 * code with the even last bit. Values beyond max + half an ulp are reported as "overflow".
 */
export function nearestCode(
  values: ReadonlyArray<{ code: number; value: number }>,
  x: number,
): { code: number } | "overflow" {
  let best = -1;
  let bestErr = Number.POSITIVE_INFINITY;
  for (const { code, value } of values) {
    const err = Math.abs(value - x);
    if (err < bestErr || (err === bestErr && (code & 1) === 0 && (best & 1) === 1)) {
      best = code;
      bestErr = err;
    }
  }
  return { code: best };
}

/** A small deterministic generator for test data (xorshift32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Runs `f` with the kernel backend forced to `b`, then restores "auto". */
export function withBackend<T>(b: KernelBackend, f: () => T): T {
  setKernelBackend(b);
  try {
    return f();
  } finally {
    setKernelBackend("auto");
  }
}
