import type { Derived } from "./codec.js";
import { encodeScalar, nanCode, overflowCode } from "./codec.js";
import { LITTLE_ENDIAN } from "./endian.js";
import { encodeE8m0Bits } from "./float8-e8m0.js";
import type { FormatTraits, Overflow } from "./types.js";

/**
 * Fast float32 -> code paths for a format's default rounding (RNE; ties away for HiFloat8). They
 * must agree bit for bit with `encodeScalar`, the specification path; the tests run both over the
 * reference vectors, every code and random inputs.
 *
 * Byte formats (at most 3 mantissa bits): one table lookup per value. Key = the float32's top 13
 * bits (sign, exponent, 4 mantissa bits) and one "sticky" bit saying whether any of the 19 lower
 * bits is set. Every rounding boundary of these formats (midpoints between neighbours, the
 * overflow threshold, ml_dtypes' E8M0 subnormal rule, HiF8's power-of-two denormals) is a float32
 * whose low 19 bits are zero, so all inputs that share a key round alike, and the 16384-entry table
 * is filled by running `encodeScalar` on one representative per key. The loop is branch-free, which
 * matters on real data where signs and binades change at random.
 *
 * 16-bit formats: add the rounding bias to the float32 bits (a carry ripples into the exponent,
 * which is exactly IEEE rounding), shift and rebias; subnormal results go through float64, where
 * adding and subtracting 1.5*2^52 rounds to an integer with ties to even.
 */
export type Kernel = (src: Uint32Array, srcF: Float32Array, dst: Uint8Array | Uint16Array) => void;

const MAGIC = 6755399441055744; // 1.5 * 2^52
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Key of a float32 bit pattern in a byte format's encode table. */
export function tableKey(b: number): number {
  return ((b >>> 19) << 1) | (((b & 0x7ffff) + 0x7ffff) >>> 19);
}

/** The 16384-entry encode table of a byte format (see the file comment). */
export function buildEncodeTable(t: FormatTraits, d: Derived, overflow: Overflow): Uint8Array {
  const table = new Uint8Array(1 << 14);
  for (let key = 0; key < table.length; key++) {
    const b = (((key >>> 1) << 19) | (key & 1)) >>> 0; // smallest pattern with this key
    if (t.specials === "e8m0") {
      // ml_dtypes rounds E8M0 from the float32 bits (see encodeE8m0Bits); clamp-then-cast for saturate.
      table[key] = overflow === "saturate" && b >= 0x7f000000 && b <= 0x7f800000 ? 0xfe : encodeE8m0Bits(b);
      continue;
    }
    scratchU[0] = b;
    table[key] = encodeScalar(t, d, b >>> 31 === 1, Math.abs(scratchF[0]), t.defaultRounding, overflow, null);
  }
  return table;
}

function tableKernel(table: Uint8Array, src: Uint32Array, dst: Uint8Array): void {
  const n = src.length;
  let i = 0;
  // Head up to a 4-byte boundary of dst, then four codes per 32-bit store, then the tail.
  while (i < n && (dst.byteOffset + i) % 4 !== 0) {
    dst[i] = table[tableKey(src[i])];
    i++;
  }
  const words = (n - i) >>> 2;
  if (words > 0 && LITTLE_ENDIAN) {
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset + i, words);
    for (let w = 0; w < words; w++, i += 4) {
      const b0 = src[i];
      const b1 = src[i + 1];
      const b2 = src[i + 2];
      const b3 = src[i + 3];
      d32[w] =
        table[((b0 >>> 19) << 1) | (((b0 & 0x7ffff) + 0x7ffff) >>> 19)] |
        (table[((b1 >>> 19) << 1) | (((b1 & 0x7ffff) + 0x7ffff) >>> 19)] << 8) |
        (table[((b2 >>> 19) << 1) | (((b2 & 0x7ffff) + 0x7ffff) >>> 19)] << 16) |
        (table[((b3 >>> 19) << 1) | (((b3 & 0x7ffff) + 0x7ffff) >>> 19)] << 24);
    }
  }
  for (; i < n; i++) dst[i] = table[tableKey(src[i])];
}

/** Constants of the 16-bit kernel, derived once per format and overflow policy. */
interface WordParams {
  shift: number;
  half: number;
  rebias: number;
  minNormalBits: number;
  subScale: number;
  thresholdBits: number;
  nanPos: number;
  nanNeg: number;
  ovfPos: number;
  ovfNeg: number;
}

function wordParams(t: FormatTraits, d: Derived, overflow: Overflow): WordParams {
  const M = t.mantissaBits;
  const shift = 23 - M;
  // Overflow threshold: max + half an ulp of the top binade; both 16-bit formats have an odd max
  // mantissa, so the tie itself overflows.
  scratchF[0] = d.max + 2 ** (d.emax - M) / 2;
  return {
    shift,
    half: (1 << (shift - 1)) - 1,
    rebias: (127 - t.bias) << M,
    minNormalBits: (d.emin + 127) << 23,
    subScale: 2 ** (M - d.emin),
    thresholdBits: scratchU[0],
    nanPos: nanCode(t, d, false),
    nanNeg: nanCode(t, d, true),
    ovfPos: overflow === "saturate" ? d.maxCode : overflowCode(t, d, false),
    ovfNeg: overflow === "saturate" ? d.maxCode | d.signBit : overflowCode(t, d, true),
  };
}

function wordCode(p: WordParams, b: number, x: number): number {
  const a = b & 0x7fffffff;
  const sign = (b >>> 16) & 0x8000;
  if (a >= p.minNormalBits) {
    if (a < p.thresholdBits) return (((a + p.half + ((a >>> p.shift) & 1)) >>> p.shift) - p.rebias) | sign;
    if (a > 0x7f800000) return sign ? p.nanNeg : p.nanPos;
    return sign ? p.ovfNeg : p.ovfPos;
  }
  return (Math.abs(x) * p.subScale + MAGIC - MAGIC) | sign;
}

function wordKernel(p: WordParams, src: Uint32Array, srcF: Float32Array, dst: Uint16Array): void {
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = wordCode(p, src[i], srcF[i]);
}

/** The array kernel of a format for its default rounding. */
export function makeKernel(t: FormatTraits, d: Derived, overflow: Overflow): Kernel {
  if (t.bits === 16) {
    const p = wordParams(t, d, overflow);
    return (src, f, dst) => wordKernel(p, src, f, dst as Uint16Array);
  }
  // Built on first use: 16384 `encodeScalar` calls cost tens of ms in a cold process, which a
  // caller that only decodes, or encodes through the WebAssembly backend, should not pay.
  let table: Uint8Array | null = null;
  return (src, _f, dst) => {
    table ??= buildEncodeTable(t, d, overflow);
    tableKernel(table, src, dst as Uint8Array);
  };
}

/**
 * A one-value encoder that takes float32 bits, for loops that fuse encoding with other work
 * (scaling, amax). Same results as the array kernel.
 */
export function makeBitsEncoder(t: FormatTraits, d: Derived, overflow: Overflow): (bits: number) => number {
  if (t.bits === 16) {
    const p = wordParams(t, d, overflow);
    return (b) => {
      scratchU[0] = b;
      return wordCode(p, b, scratchF[0]);
    };
  }
  // Built on the first call, as in `makeKernel`: modules create these encoders at import, and a
  // process (or worker thread) that never calls one should not pay for its table.
  let table: Uint8Array | null = null;
  return (b) => {
    table ??= buildEncodeTable(t, d, overflow);
    return table[tableKey(b)];
  };
}
