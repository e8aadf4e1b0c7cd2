import { encodeScalar } from "./codec.js";
import { FormatError } from "./errors.js";
import { makeBitsEncoder } from "./fast.js";
import { formatState } from "./format-cache.js";
import { resolveOptions } from "./options.js";
import { seededUniform } from "./prng.js";
import type { ByteFormatName, EncodeOptions, FormatName, Overflow, WordFormatName } from "./types.js";
import { wasmEncode } from "./wasm/backend.js";

export type EncodeInput = Float32Array | Float64Array | readonly number[];

/**
 * Encodes values into a format's codes: a Uint8Array for the 8-bit and narrower formats (4/6-bit
 * codes in the low bits of each byte, as ml_dtypes stores them), a Uint16Array for bfloat16/float16.
 *
 * Float32Array input gives exactly ml_dtypes 0.6.0's `np.ndarray[float32].astype(fmt)` (default
 * options). Float64Array and number[] input are rounded once, directly from the float64 value;
 * numpy instead casts float64 arrays to float32 first (double rounding), so a float64 value just
 * above a float32 tie can round differently here (e.g. 464 + 1e-9 is NaN here, 448 in numpy).
 * HiFloat8 follows Huawei's reference conversion (ties away from zero, Inf from 40960 on).
 */
export function encode(format: WordFormatName, values: EncodeInput, options?: EncodeOptions): Uint16Array;
export function encode(format: ByteFormatName, values: EncodeInput, options?: EncodeOptions): Uint8Array;
export function encode(
  format: FormatName,
  values: EncodeInput,
  options?: EncodeOptions,
): Uint8Array | Uint16Array;
export function encode(
  format: FormatName,
  values: EncodeInput,
  options?: EncodeOptions,
): Uint8Array | Uint16Array {
  const st = formatState(format);
  const n = checkInput(values);
  const dst = st.traits.bits === 16 ? new Uint16Array(n) : new Uint8Array(n);
  encodeIntoUnchecked(format, values, dst, options);
  return dst;
}

/**
 * Like `encode`, into an existing array of the same length (the allocation-free path used by block
 * quantization). `dst` must be a Uint8Array for byte formats and a Uint16Array for 16-bit ones.
 */
export function encodeInto(
  format: FormatName,
  values: EncodeInput,
  dst: Uint8Array | Uint16Array,
  options?: EncodeOptions,
): void {
  const st = formatState(format);
  const n = checkInput(values);
  const want = st.traits.bits === 16 ? Uint16Array : Uint8Array;
  if (!(dst instanceof want)) {
    throw new FormatError(
      "invalid-array",
      `encodeInto(${format}) needs a ${want.name} destination, got ${describe(dst)}`,
    );
  }
  if (dst.length !== n) {
    throw new FormatError(
      "length-mismatch",
      `encodeInto(${format}): ${n} values but destination holds ${dst.length}`,
    );
  }
  encodeIntoUnchecked(format, values, dst, options);
}

function encodeIntoUnchecked(
  format: FormatName,
  values: EncodeInput,
  dst: Uint8Array | Uint16Array,
  options: EncodeOptions | undefined,
): void {
  const st = formatState(format);
  const opts = resolveOptions(st.traits, options);
  const n = dst.length;
  if (values instanceof Float32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    const kernel = opts.rounding === st.traits.defaultRounding ? st.kernels[opts.overflow] : null;
    if (kernel && dst instanceof Uint8Array && wasmEncode(st.traits, opts.overflow, values, dst)) return;
    if (kernel) {
      kernel(bits, values, dst);
      return;
    }
    const uniform = opts.rounding === "stochastic" ? seededUniform(opts.seed) : null;
    for (let i = 0; i < n; i++) {
      dst[i] = encodeScalar(
        st.traits,
        st.derived,
        bits[i] >>> 31 === 1,
        Math.abs(values[i]),
        opts.rounding,
        opts.overflow,
        uniform,
      );
    }
    return;
  }
  const uniform = opts.rounding === "stochastic" ? seededUniform(opts.seed) : null;
  if (values instanceof Float64Array) {
    // The sign bit lives in the high word of each little-endian float64 (it is not observable on NaN).
    const words =
      values.byteOffset % 4 === 0 ? new Uint32Array(values.buffer, values.byteOffset, 2 * n) : null;
    for (let i = 0; i < n; i++) {
      const x = values[i];
      const negative = words ? words[2 * i + 1] >>> 31 === 1 : x < 0 || Object.is(x, -0);
      dst[i] = encodeScalar(
        st.traits,
        st.derived,
        negative,
        Math.abs(x),
        opts.rounding,
        opts.overflow,
        uniform,
      );
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = values[i];
    dst[i] = encodeScalar(
      st.traits,
      st.derived,
      x < 0 || Object.is(x, -0),
      Math.abs(x),
      opts.rounding,
      opts.overflow,
      uniform,
    );
  }
}

function checkInput(values: unknown): number {
  if (values instanceof Float32Array || values instanceof Float64Array) return values.length;
  if (Array.isArray(values)) {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== "number") {
        throw new FormatError(
          "invalid-array",
          `encode: element ${i} is ${typeof values[i]}, expected a number`,
        );
      }
    }
    return values.length;
  }
  throw new FormatError(
    "invalid-array",
    `encode needs a Float32Array, Float64Array or number[], got ${describe(values)}`,
  );
}

export function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "object") return (x as object).constructor?.name ?? "object";
  return typeof x;
}

/**
 * A single-value encoder that takes a float32 *bit pattern* (e.g. from a Uint32Array view) and
 * returns the code, with the format's default rounding (RNE; ties away for hifloat8) and the given
 * overflow policy. For hot loops that fuse encoding with scaling; same results as `encode`.
 */
export function float32BitsEncoder(
  format: FormatName,
  options?: { overflow?: Overflow },
): (bits: number) => number {
  const st = formatState(format);
  const { overflow } = resolveOptions(st.traits, { overflow: options?.overflow });
  return makeBitsEncoder(st.traits, st.derived, overflow);
}
