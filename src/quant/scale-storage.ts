import { LITTLE_ENDIAN } from "../formats/endian.js";
import { decode, encode } from "../formats/index.js";
import { valuesOf } from "./element-codes.js";
import { QuantError, where } from "./errors.js";
import { f32Bits, f32Exponent, f32Mantissa } from "./float32.js";
import type { ScaleStorage } from "./scale-encoding.js";

/** Stored scales: float32 values (`f32`), E8M0 or E4M3 bytes (`ue8m0`, `e4m3`), BF16/F16 codes (`bf16`, `f16`). */
export type ScaleArray = Float32Array | Uint8Array | Uint16Array;

/**
 * How to round a scale the target storage cannot hold exactly.
 * - `ceil`: the next representable scale above (magnitudes grow: data never clip; DeepGEMM's choice
 *   for UE8M0);
 * - `floor`: the one below;
 * - `nearest`: ties to even (BF16, E4M3); for UE8M0 ml_dtypes' rule: up when the float32 mantissa is
 *   at least 0x400000 (1.5 * 2^e and above round up).
 */
export type ScaleRounding = "ceil" | "floor" | "nearest";

export interface ScaleConversion {
  readonly scales: ScaleArray;
  /** How many scales changed value. */
  readonly rounded: number;
  /**
   * Largest |new - old| / old over the scales: the relative error this conversion adds to every
   * dequantized element of that block (the data are not re-quantized).
   */
  readonly maxRelError: number;
}

/** The array type each storage uses. */
const ARRAYS = {
  f32: Float32Array,
  ue8m0: Uint8Array,
  e4m3: Uint8Array,
  bf16: Uint16Array,
  f16: Uint16Array,
} as const;

/** The codec format of each non-float32 storage (every one decodes exactly into float32). */
export const SCALE_FORMAT = {
  ue8m0: "float8_e8m0fnu",
  e4m3: "float8_e4m3fn",
  bf16: "bfloat16",
  f16: "float16",
} as const;

function arrayOf(storage: ScaleStorage) {
  const a = ARRAYS[storage];
  if (a === undefined) throw new QuantError("invalid-scheme", `unknown scale storage "${String(storage)}"`);
  return a;
}

/** A zeroed scale array of `n` scales in `storage`. */
export function allocScales(storage: ScaleStorage, n: number): ScaleArray {
  return new (arrayOf(storage))(n);
}

/**
 * The first `n` scales stored in little-endian `bytes` (a safetensors tensor), as the typed array
 * their storage uses: a view when aligned, else a copy.
 */
export function scaleArrayOfBytes(storage: ScaleStorage, bytes: Uint8Array, n: number): ScaleArray {
  const A = arrayOf(storage);
  if (A === Uint8Array) return bytes.subarray(0, n);
  const size = A.BYTES_PER_ELEMENT;
  if (bytes.length < n * size || !LITTLE_ENDIAN) {
    throw new QuantError(
      "invalid-scales",
      `${n} scales stored as "${storage}" need ${n * size} little-endian bytes, got ${bytes.length}`,
    );
  }
  const b = bytes.byteOffset % size === 0 ? bytes : bytes.slice(0, n * size);
  return A === Float32Array
    ? new Float32Array(b.buffer, b.byteOffset, n)
    : new Uint16Array(b.buffer, b.byteOffset, n);
}

/** Checks that a scale array has the type its storage needs. */
export function checkScaleArray(scales: ScaleArray, storage: ScaleStorage, name?: string): void {
  const want = arrayOf(storage).name;
  if (scales?.constructor?.name !== want) {
    throw new QuantError(
      "invalid-scales",
      `${where(name)}scales stored as "${storage}" must be a ${want}, got ${scales?.constructor?.name ?? typeof scales}`,
    );
  }
}

/** Float32 value of an E8M0 byte: 2^(b-127), byte 0 = 2^-127, 0xFF = NaN. */
export function e8m0Value(byte: number): number {
  return byte === 0xff ? Number.NaN : 2 ** (byte - 127);
}

/** E8M0 byte of a power-of-two exponent k in [-127, 127] (scale 2^k), or 0xFF for NaN. */
export function e8m0Byte(k: number): number {
  return Number.isNaN(k) ? 0xff : k + 127;
}

/** Float32 values of stored scales (exact: every storage decodes exactly into float32). */
export function decodeScales(scales: ScaleArray, storage: ScaleStorage): Float32Array {
  checkScaleArray(scales, storage);
  return storage === "f32"
    ? Float32Array.from(scales)
    : decode(SCALE_FORMAT[storage], scales as Uint8Array | Uint16Array);
}

function notRepresentable(to: ScaleStorage, i: number, v: number, why: string): QuantError {
  const code = to === "ue8m0" ? "scale-not-power-of-two" : "scale-not-representable";
  return new QuantError(
    code,
    `scale ${i} = ${v} cannot be stored as "${to}": ${why}; pass { rounding: "ceil" | "floor" | "nearest" } to round it`,
  );
}

/** E8M0 byte for a float32 scale, or -1 when it must be rounded and no rounding was given. */
function toE8m0(v: number, rounding: ScaleRounding | undefined): number {
  if (Number.isNaN(v)) return 0xff;
  if (!(v > 0) || !Number.isFinite(v)) return -1;
  const bits = f32Bits(v);
  let e = f32Exponent(bits);
  const m = f32Mantissa(bits);
  if (e === 0) {
    // float32 subnormal, below 2^-126; byte 0 is 2^-127 (mantissa 0x400000), byte 1 is 2^-126.
    if (m === 0x400000) return 0;
    if (rounding === undefined) return -1;
    if (rounding === "ceil") return m < 0x400000 ? 0 : 1;
    if (rounding === "nearest") return m >= 0x600000 ? 1 : 0;
    return 0; // floor; below 2^-127 it saturates at the smallest E8M0 value
  }
  if (m === 0) return e === 255 ? -1 : e;
  if (rounding === undefined) return -1;
  if (rounding === "ceil" || (rounding === "nearest" && m >= 0x400000)) e += 1;
  return e > 254 ? -1 : e;
}

/**
 * Code of `v` in a 16-bit float storage: exact, or rounded by magnitude as `rounding` says; -1 when
 * `v` needs rounding and none was given, or when the result is not finite. NaN keeps its sign.
 */
function roundFloat16(
  format: "bfloat16" | "float16",
  v: number,
  rounding: ScaleRounding | undefined,
): number {
  const c = (encode(format, new Float32Array([v])) as Uint16Array)[0];
  const cv = decode(format, new Uint16Array([c]))[0];
  if (Number.isNaN(v) || cv === v) return c;
  if (rounding === undefined) return -1;
  let code = c;
  if (rounding === "ceil" && Math.abs(cv) < Math.abs(v)) code++;
  else if (rounding === "floor" && Math.abs(cv) > Math.abs(v)) code--;
  return Number.isFinite(decode(format, new Uint16Array([code]))[0]) ? code : -1;
}

let e4m3Positive: Float32Array | undefined;
function roundE4m3(v: number, rounding: ScaleRounding): number {
  if (rounding === "nearest") return encode("float8_e4m3fn", new Float32Array([v]))[0];
  if (e4m3Positive === undefined) e4m3Positive = valuesOf("float8_e4m3fn").slice(0, 0x7f);
  const t = e4m3Positive;
  if (rounding === "ceil") {
    for (let c = 0; c < t.length; c++) if (t[c] >= v) return c;
    return -1;
  }
  for (let c = t.length - 1; c >= 0; c--) if (t[c] <= v) return c;
  return -1;
}

/** E4M3 code of a float32 scale: exact (NaN as 0x7F), or rounded; -1 when that fails or flushes to zero. */
function toE4m3(v: number, rounding: ScaleRounding | undefined): number {
  if (Number.isNaN(v)) return 0x7f;
  const values = valuesOf("float8_e4m3fn");
  const exact = encode("float8_e4m3fn", new Float32Array([v]))[0];
  if (values[exact] === v) return exact;
  const c = rounding === undefined ? -1 : roundE4m3(v, rounding);
  return c < 0 || Number.isNaN(values[c]) || (v !== 0 && values[c] === 0) ? -1 : c;
}

/** Per target storage: the code of a float32 scale (-1: not storable) and why a scale may not be. */
const TARGETS: Record<
  Exclude<ScaleStorage, "f32">,
  { code: (v: number, rounding: ScaleRounding | undefined) => number; why: string }
> = {
  ue8m0: { code: toE8m0, why: "E8M0 holds only powers of two from 2^-127 to 2^127" },
  bf16: { code: (v, r) => roundFloat16("bfloat16", v, r), why: "BF16 keeps 8 significant bits" },
  f16: {
    code: (v, r) => roundFloat16("float16", v, r),
    why: "F16 holds 2^-24 .. 65504 with 11 significant bits",
  },
  e4m3: { code: toE4m3, why: "E4M3 holds 2^-9 .. 448 with 4 significant bits" },
};

/**
 * Converts stored scales between storages. Exact conversions (every E8M0 value into float32 or BF16,
 * float32 powers of two into E8M0, ...) need no option. A scale the target cannot hold exactly is an
 * error (`scale-not-power-of-two` for E8M0, `scale-not-representable` otherwise) naming the first
 * offending index and value, unless `rounding` is given; then `rounded` and `maxRelError` report
 * what the rounding changed. NaN scales stay NaN (E8M0 0xFF, BF16 0x7FC0, E4M3 0x7F).
 */
export function convertScales(
  scales: ScaleArray,
  from: ScaleStorage,
  to: ScaleStorage,
  options: { rounding?: ScaleRounding } = {},
): ScaleConversion {
  const values = decodeScales(scales, from);
  if (to === "f32") return { scales: values, rounded: 0, maxRelError: 0 };
  const out = allocScales(to, values.length);
  const { code, why } = TARGETS[to];
  for (let i = 0; i < values.length; i++) {
    const c = code(values[i], options.rounding);
    if (c < 0) throw notRepresentable(to, i, values[i], why);
    out[i] = c;
  }
  const roundedValues = decodeScales(out, to);
  let rounded = 0;
  let maxRelError = 0;
  for (let i = 0; i < values.length; i++) {
    const a = values[i];
    const b = roundedValues[i];
    if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) continue;
    rounded++;
    const rel = Math.abs(b - a) / Math.abs(a);
    if (rel > maxRelError) maxRelError = rel;
  }
  return { scales: out, rounded, maxRelError };
}
