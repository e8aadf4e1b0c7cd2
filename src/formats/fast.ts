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

/**
 * The 16384-entry encode table of a byte format (see the file comment).
 *
 * Keys run through the float32 magnitudes of one sign in increasing order, 32 keys (4 mantissa
 * bits and the sticky bit) per float32 exponent. Rounding to the nearest code is monotonic, so
 * within one sign the codes are runs: each code is taken by one interval of keys and never comes
 * back (overflow ends in one code, the saturated maximum, infinity or NaN). A row of 32 keys whose
 * first and last key encode alike is therefore one run, and only rows where the code changes, the
 * few exponents inside the format's range, need every key encoded: about 1,500 `encodeScalar` calls
 * instead of 16,384, which is what a cold process's first `encode` waits for. The exponent-255
 * rows (infinity and NaN) are encoded key by key. HiFloat8's codes are not in magnitude order, so
 * its table is built key by key; E8M0 takes a bit rule that costs nothing. `encodeTableKey` is the
 * one-key rule, and the tests compare every table with it key by key.
 */
export function buildEncodeTable(t: FormatTraits, d: Derived, overflow: Overflow): Uint8Array {
  const table = new Uint8Array(1 << 14);
  if (t.specials === "tapered" || t.specials === "e8m0") {
    for (let key = 0; key < table.length; key++) table[key] = encodeTableKey(t, d, overflow, key);
    return table;
  }
  for (let row = 0; row < 512; row++) {
    const k0 = row * 32;
    const first = encodeTableKey(t, d, overflow, k0);
    if ((row & 255) !== 255 && first === encodeTableKey(t, d, overflow, k0 + 31)) {
      table.fill(first, k0, k0 + 32);
      continue;
    }
    table[k0] = first;
    for (let key = k0 + 1; key < k0 + 32; key++) table[key] = encodeTableKey(t, d, overflow, key);
  }
  return table;
}

/** The code of encode-table key `key`: the code of the smallest float32 pattern with that key. */
export function encodeTableKey(t: FormatTraits, d: Derived, overflow: Overflow, key: number): number {
  const b = (((key >>> 1) << 19) | (key & 1)) >>> 0;
  if (t.specials === "e8m0") {
    // ml_dtypes rounds E8M0 from the float32 bits (see encodeE8m0Bits); clamp-then-cast for saturate.
    return overflow === "saturate" && b >= 0x7f000000 && b <= 0x7f800000 ? 0xfe : encodeE8m0Bits(b);
  }
  scratchU[0] = b;
  return encodeScalar(t, d, b >>> 31 === 1, Math.abs(scratchF[0]), t.defaultRounding, overflow, null);
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
  // Built on first use (a few ms in a cold process, see `buildEncodeTable`), which a caller that only decodes, or encodes through the WebAssembly backend, should not pay.
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
