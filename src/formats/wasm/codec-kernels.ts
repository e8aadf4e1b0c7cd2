import type { FormatTraits, Overflow } from "../types.js";
import {
  addTo,
  type Bytes,
  f32x4,
  get,
  I32,
  i8x16,
  i16x8,
  i32,
  i32x4,
  ops,
  set,
  tee,
  V128,
  type ValType,
  v128,
  wasmModule,
  whileBelow,
} from "./asm.js";

/**
 * The WebAssembly bodies of the 8-bit codecs, emitted per format from its traits. Every function
 * takes `(src, dst, n)` byte addresses in the shared memory and may run past `n` to the next multiple
 * of 16 elements (the callers' regions are padded), so there is no tail loop.
 *
 * - `decode` for the IEEE-like byte formats (E4M3FN, E5M2 and their FNUZ variants), in SIMD without a
 *   table: the magnitude bits shifted into a float32's exponent/mantissa fields and multiplied by
 *   2^(127 - bias) give every normal and subnormal value exactly (WebAssembly keeps subnormals);
 *   the NaN/Inf codes are then selected over it and the sign ORed in.
 * - `decodeTable` for the others (E8M0, HiFloat8): a scalar lookup in the 256-entry float32 table at
 *   address 0, four codes per load.
 * - `encodeSaturate` / `encodeNonfinite` float32 -> E4M3FN/E5M2 with RNE, in SIMD: normal results
 *   by adding the rounding bias to the float32 bits (the carry into the exponent is the IEEE
 *   rounding), clamped with an unsigned min to the overflow code; subnormal results by scaling to
 *   units of the smallest subnormal and `f32x4.nearest` (ties to even); NaN selected last.
 * They must agree bit for bit with the TypeScript kernels (`fast.ts`, `decode.ts`), the specification.
 */

/** Formats whose decode runs in SIMD arithmetic; the other 8-bit formats use the table loop. */
export const SIMD_DECODE = new Set(["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]);
/** Formats whose default-rounding encode runs in SIMD (both overflow policies). */
export const SIMD_ENCODE = new Set(["float8_e4m3fn", "float8_e5m2"]);

/** Address of the 256-entry decode table used by `decodeTable`. */
export const TABLE = 0;

const QNAN = 0x7fc00000;
const INF = 0x7f800000;
const f32Bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0] | 0;
const splat = (n: number) => v128.i32x4(n);

// Locals shared by every function: params 0 src, 1 dst, 2 n; 3 end (i32); 4, 5, 6 v128; 7 word (i32).
const [SRC, DST, N, END_, X, Y, Z, W] = [0, 1, 2, 3, 4, 5, 6, 7];
const LOCALS: ValType[] = [I32, V128, V128, V128, I32];

/** `for (end = src + n * width; src < end; src += srcStep, dst += dstStep) body` (width: bytes per input). */
const stream = (width: number, srcStep: number, dstStep: number, body: Bytes): Bytes =>
  ops(
    ops(get(SRC), get(N), i32.const(width), i32.mul, i32.add, set(END_)),
    whileBelow(SRC, END_, ops(body, addTo(SRC, srcStep), addTo(DST, dstStep))),
  );

/** Float32 bits of four codes in local X (i32 lanes 0..255); leaves one v128 on the stack. */
function decodeLanes(t: FormatTraits): Bytes {
  const M = t.mantissaBits;
  // Largest finite magnitude code; above it (ieee: the Inf code, then NaNs; fn: the NaN code) is special.
  const maxMag =
    t.specials === "ieee" ? (((1 << t.exponentBits) - 1) << M) - 1 : t.specials === "fn" ? 0x7e : 0x7f;
  const special =
    t.specials === "fnuz" ? ops(get(X), splat(0x80), i32x4.eq) : ops(get(Y), splat(maxMag), i32x4.gt_s);
  const specialValue =
    t.specials === "ieee"
      ? ops(splat(INF), splat(QNAN), get(Y), splat(maxMag + 1), i32x4.eq, v128.bitselect)
      : splat(QNAN);
  return ops(
    ops(get(X), splat(0x7f), v128.and, set(Y)), // Y = magnitude
    specialValue,
    ops(get(Y), i32.const(23 - M), i32x4.shl, v128.i32x4(f32Bits(2 ** (127 - t.bias))), f32x4.mul),
    special,
    v128.bitselect,
    ops(get(X), get(Y), v128.xor, i32.const(24), i32x4.shl), // sign bit to bit 31
    v128.or,
  );
}

function decodeSimd(t: FormatTraits): Bytes {
  const group = (k: number, widen: number[], half: number[]) =>
    ops(get(DST), get(Z), widen, half, set(X), decodeLanes(t), v128.store(k * 16));
  const lo = i16x8.extend_low_i8x16_u;
  const hi = i16x8.extend_high_i8x16_u;
  const lo32 = i32x4.extend_low_i16x8_u;
  const hi32 = i32x4.extend_high_i16x8_u;
  return stream(
    1,
    16,
    64,
    ops(
      get(SRC),
      v128.load(0),
      set(Z),
      group(0, lo, lo32),
      group(1, lo, hi32),
      group(2, hi, lo32),
      group(3, hi, hi32),
    ),
  );
}

function decodeTable(): Bytes {
  const lookup = (k: number) => {
    const code =
      k === 0
        ? ops(get(W), i32.const(255), i32.and)
        : k === 3
          ? ops(get(W), i32.const(24), i32.shr_u)
          : ops(get(W), i32.const(k * 8), i32.shr_u, i32.const(255), i32.and);
    return ops(get(DST), code, i32.const(2), i32.shl, i32.load(TABLE), i32.store(k * 4));
  };
  return stream(1, 4, 16, ops(get(SRC), i32.load(0), set(W), lookup(0), lookup(1), lookup(2), lookup(3)));
}

/** Codes of the four float32s in local X (i32 lanes); leaves one v128 on the stack. */
function encodeLanes(t: FormatTraits, overflow: Overflow): Bytes {
  const M = t.mantissaBits;
  const shift = 23 - M;
  const emin = 1 - t.bias;
  const maxCode = t.specials === "ieee" ? (((1 << t.exponentBits) - 1) << M) - 1 : 0x7e;
  const nanMag = t.quietNaN ?? 0;
  const ovf = overflow === "saturate" ? maxCode : t.specials === "ieee" ? maxCode + 1 : nanMag;
  return ops(
    ops(get(X), splat(0x7fffffff), v128.and, tee(Y)), // Y = |x| bits
    // subnormal results: nearest(|x| * 2^(M - emin))
    ops(v128.i32x4(f32Bits(2 ** (M - emin))), f32x4.mul, f32x4.nearest, i32x4.trunc_sat_f32x4_s),
    // normal results: ((a + half + lsb) >>> shift) - rebias, min overflow code, NaN over it
    splat(nanMag),
    ops(get(Y), splat((1 << (shift - 1)) - 1), i32x4.add),
    ops(get(Y), i32.const(shift), i32x4.shr_u, splat(1), v128.and, i32x4.add),
    ops(i32.const(shift), i32x4.shr_u, splat((127 - t.bias) << M), i32x4.sub, splat(ovf), i32x4.min_u),
    ops(get(Y), splat(INF), i32x4.gt_s, v128.bitselect),
    ops(get(Y), splat((emin + 127) << 23), i32x4.lt_s, v128.bitselect),
    ops(get(X), i32.const(24), i32x4.shr_u, splat(0x80), v128.and, v128.or),
  );
}

function encodeSimd(t: FormatTraits, overflow: Overflow): Bytes {
  const group = (k: number) => ops(get(SRC), v128.load(k * 16), set(X), encodeLanes(t, overflow));
  return stream(
    4,
    64,
    16,
    ops(
      get(DST),
      group(0),
      group(1),
      i16x8.narrow_i32x4_u,
      group(2),
      group(3),
      i16x8.narrow_i32x4_u,
      i8x16.narrow_i16x8_u,
      v128.store(0),
    ),
  );
}

export interface CodecExports {
  decode: (src: number, dst: number, n: number) => void;
  encodeNonfinite?: (src: number, dst: number, n: number) => void;
  encodeSaturate?: (src: number, dst: number, n: number) => void;
}

/** The module of one byte format, importing its memory as `env.mem`. */
export function codecModule(t: FormatTraits): Uint8Array {
  const fn = (body: Bytes, name: string) => ({
    params: [I32, I32, I32] as ValType[],
    locals: LOCALS,
    body,
    export: name,
  });
  const funcs = [fn(SIMD_DECODE.has(t.name) ? decodeSimd(t) : decodeTable(), "decode")];
  if (SIMD_ENCODE.has(t.name)) {
    funcs.push(
      fn(encodeSimd(t, "nonfinite"), "encodeNonfinite"),
      fn(encodeSimd(t, "saturate"), "encodeSaturate"),
    );
  }
  return wasmModule({ memory: { min: 1, import: ["env", "mem"] }, funcs });
}
