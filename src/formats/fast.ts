import type { Derived } from "./codec.js";
import { encodeScalar, nanCode, overflowCode } from "./codec.js";
import { encodeE8m0Bits } from "./float8-e8m0.js";
import type { FormatTraits, Overflow } from "./types.js";

/**
 * Float32 -> format kernels working on the float32 bit patterns, for the format's default rounding
 * (RNE; ties away for HiFloat8). They are the fast path of `encode` and must agree bit for bit with
 * `encodeScalar`, the specification path (the tests run both over the reference vectors and over
 * every code).
 *
 * Normal results: add the rounding bias to the float32 bits (a carry ripples into the exponent,
 * which is exactly IEEE rounding), shift away the dropped mantissa bits and rebias the exponent.
 * Subnormal results: the magnitude times 2^-(quantum exponent) is exact in float64; adding and
 * subtracting 1.5*2^52 rounds it to an integer with ties to even.
 *
 * Each loop is a separate top-level function used with one array type only, so V8 keeps its
 * element accesses monomorphic; per-format constants arrive as arguments.
 */
export type Kernel = (src: Uint32Array, srcF: Float32Array, dst: Uint8Array | Uint16Array) => void;

const MAGIC = 6755399441055744; // 1.5 * 2^52
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** Constants of the IEEE-like kernels, derived once per format and overflow policy. */
interface IeeeParams {
  shift: number;
  half: number;
  rebias: number;
  minNormalBits: number;
  subScale: number;
  thresholdBits: number;
  signShift: number;
  signMask: number;
  noNegZero: boolean;
  nanPos: number;
  nanNeg: number;
  ovfPos: number;
  ovfNeg: number;
}

function ieeeParams(t: FormatTraits, d: Derived, overflow: Overflow): IeeeParams {
  const M = t.mantissaBits;
  const shift = 23 - M;
  // Overflow threshold: max + half an ulp of the top binade. At the tie itself, RNE keeps max
  // when max's mantissa is even (float8_e4m3fn: 464 -> 448) and overflows when it is odd.
  const ulpTop = 2 ** (d.emax - M);
  return {
    shift,
    half: (1 << (shift - 1)) - 1,
    rebias: (127 - t.bias) << M,
    minNormalBits: (d.emin + 127) << 23,
    subScale: 2 ** (M - d.emin),
    thresholdBits: f32Bits(d.max + ulpTop / 2) + ((d.maxCode & 1) === 0 ? 1 : 0),
    signShift: 32 - t.bits,
    signMask: d.signBit,
    noNegZero: t.specials === "fnuz",
    nanPos: nanCode(t, d, false),
    nanNeg: nanCode(t, d, true),
    ovfPos: overflow === "saturate" ? d.maxCode : overflowCode(t, d, false),
    ovfNeg: overflow === "saturate" ? d.maxCode | d.signBit : overflowCode(t, d, true),
  };
}

/** One float32 bit pattern -> code (small enough for V8 to inline into the loops below). */
function ieeeCode(p: IeeeParams, b: number, x: number): number {
  const a = b & 0x7fffffff;
  if (a >= p.minNormalBits) {
    if (a < p.thresholdBits) {
      return (
        (((a + p.half + ((a >>> p.shift) & 1)) >>> p.shift) - p.rebias) | ((b >>> p.signShift) & p.signMask)
      );
    }
    if (a > 0x7f800000) return b >>> 31 ? p.nanNeg : p.nanPos;
    return b >>> 31 ? p.ovfNeg : p.ovfPos;
  }
  const code = Math.abs(x) * p.subScale + MAGIC - MAGIC;
  return code === 0 && p.noNegZero ? 0 : code | ((b >>> p.signShift) & p.signMask);
}

function ieeeKernel8(p: IeeeParams, src: Uint32Array, srcF: Float32Array, dst: Uint8Array): void {
  const n = src.length;
  let i = 0;
  // Head up to a 4-byte boundary of dst, then four codes per 32-bit store (little-endian hosts
  // only; every JS engine in use is), then the tail.
  while (i < n && (dst.byteOffset + i) % 4 !== 0) {
    dst[i] = ieeeCode(p, src[i], srcF[i]);
    i++;
  }
  const words = (n - i) >>> 2;
  if (words > 0 && LITTLE_ENDIAN) {
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset + i, words);
    for (let w = 0; w < words; w++, i += 4) {
      d32[w] =
        ieeeCode(p, src[i], srcF[i]) |
        (ieeeCode(p, src[i + 1], srcF[i + 1]) << 8) |
        (ieeeCode(p, src[i + 2], srcF[i + 2]) << 16) |
        (ieeeCode(p, src[i + 3], srcF[i + 3]) << 24);
    }
  }
  for (; i < n; i++) dst[i] = ieeeCode(p, src[i], srcF[i]);
}

function ieeeKernel16(p: IeeeParams, src: Uint32Array, srcF: Float32Array, dst: Uint16Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = ieeeCode(p, src[i], srcF[i]);
}

function e8m0Kernel(saturate: boolean, src: Uint32Array, dst: Uint8Array): void {
  const n = src.length;
  if (saturate) {
    // clamp-then-cast: positive values >= 2^127 (Inf included) clamp to 2^127 = 0xFE.
    for (let i = 0; i < n; i++) {
      const b = src[i];
      dst[i] = b >= 0x7f000000 && b <= 0x7f800000 ? 0xfe : encodeE8m0Bits(b);
    }
    return;
  }
  for (let i = 0; i < n; i++) dst[i] = encodeE8m0Bits(src[i]);
}

/**
 * HiFloat8, ties away from zero: adding half an ulp of the value's own binade to the float32 bits
 * and truncating is round-half-away; a carry lands in the next binade with a zero mantissa, which
 * is correct whatever that binade's mantissa width. `HIF8_BASE[e+15]` and `HIF8_MB[e+15]` give the
 * code of 2^e and its mantissa width; denormals and overflow take the scalar path.
 */
const HIF8_MB = new Int32Array(31);
const HIF8_BASE = new Int32Array(31);

function hif8Kernel(
  t: FormatTraits,
  d: Derived,
  overflow: Overflow,
  src: Uint32Array,
  srcF: Float32Array,
  dst: Uint8Array,
): void {
  if (HIF8_MB[0] === 0) {
    for (let e = -15; e <= 15; e++) {
      const a = Math.abs(e);
      HIF8_MB[e + 15] = a <= 3 ? 3 : a <= 7 ? 2 : 1;
      HIF8_BASE[e + 15] = encodeScalar(t, d, false, 2 ** e, "ties-away", "nonfinite", null);
    }
  }
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const b = src[i];
    const a = b & 0x7fffffff;
    const e = (a >>> 23) - 127;
    if (e >= -15 && e <= 15) {
      const mb = HIF8_MB[e + 15];
      const r = a + (1 << (22 - mb));
      const e2 = (r >>> 23) - 127;
      const mant = (r & 0x7fffff) >>> (23 - mb);
      if (e2 <= 15 && !(e2 === 15 && mant !== 0)) {
        dst[i] = HIF8_BASE[e2 + 15] | mant | ((b >>> 24) & 0x80);
        continue;
      }
    }
    dst[i] = encodeScalar(t, d, b >>> 31 === 1, Math.abs(srcF[i]), "ties-away", overflow, null);
  }
}

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/**
 * A one-value encoder from float32 bits, for loops that fuse encoding with other work (scaling,
 * amax) and so cannot hand a whole array to a kernel. Default rounding of the format; same results
 * as `encode` on a Float32Array.
 */
export function makeBitsEncoder(t: FormatTraits, d: Derived, overflow: Overflow): (bits: number) => number {
  if (t.specials === "e8m0") {
    if (overflow === "nonfinite") return encodeE8m0Bits;
    return (b) => (b >= 0x7f000000 && b <= 0x7f800000 ? 0xfe : encodeE8m0Bits(b));
  }
  if (t.specials === "tapered") {
    return (b) => {
      scratchU[0] = b;
      return encodeScalar(t, d, b >>> 31 === 1, Math.abs(scratchF[0]), "ties-away", overflow, null);
    };
  }
  const p = ieeeParams(t, d, overflow);
  return (b) => {
    scratchU[0] = b;
    return ieeeCode(p, b, scratchF[0]);
  };
}

/** The fast kernel of a format for its default rounding, or null when it has none. */
export function makeKernel(t: FormatTraits, d: Derived, overflow: Overflow): Kernel | null {
  if (t.specials === "e8m0") {
    const saturate = overflow === "saturate";
    return (src, _f, dst) => e8m0Kernel(saturate, src, dst as Uint8Array);
  }
  if (t.specials === "tapered") {
    return (src, f, dst) => hif8Kernel(t, d, overflow, src, f, dst as Uint8Array);
  }
  const p = ieeeParams(t, d, overflow);
  if (t.bits === 16) return (src, f, dst) => ieeeKernel16(p, src, f, dst as Uint16Array);
  return (src, f, dst) => ieeeKernel8(p, src, f, dst as Uint8Array);
}
