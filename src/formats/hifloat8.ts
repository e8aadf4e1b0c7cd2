import { floorLog2, roundInteger } from "./rounding.js";
import type { FormatTraits, Rounding } from "./types.js";

/**
 * Huawei HiFloat8 (HiF8, Ascend): a tapered format. Bit 7 is the sign; bits 6..3 start with a
 * prefix-coded "dot" field D that says how many exponent bits follow; the exponent is stored
 * sign-magnitude with an implicit leading 1 in the magnitude; the mantissa gets what is left:
 *
 * | bits 6..3 | D | exponent E        | mantissa bits |
 * |-----------|---|-------------------|---------------|
 * | 0000      | - | denormal 2^(k-23) | (3 bits = k)  |
 * | 0001      | 0 | 0                 | 3             |
 * | 001x      | 1 | +-1               | 3             |
 * | 01xx      | 2 | +-2..3            | 3             |
 * | 10xx      | 3 | +-4..7            | 2             |
 * | 11xx      | 4 | +-8..15           | 1             |
 *
 * 0x00 is the only zero, 0x80 the only NaN, 0x6F/0xEF (+-1.5*2^15) are +-Inf, 32768 the largest
 * finite value. The reference conversion (CANN GE `hif8_t`) rounds ties away from zero and does not
 * saturate: |x| >= 40960 becomes Inf. Source: arXiv 2409.16626 and the GE unit-test golden values.
 */
export const hifloat8: FormatTraits = {
  name: "hifloat8",
  bits: 8,
  exponentBits: 5,
  mantissaBits: 3,
  bias: 0,
  signed: true,
  specials: "tapered",
  quietNaN: 0x80,
  defaultRounding: "ties-away",
  source: "Huawei HiFloat8 (arXiv 2409.16626); CANN GE hif8_t reference conversion",
};

export const HIF8_NAN = 0x80;
export const HIF8_INF = 0x6f;
export const HIF8_MAX_CODE = 0x6e;
const EMAX = 15;
const EMIN_NORMAL = -15;
const DENORMAL_BASE = -23;

/** Mantissa width of the binade 2^e (|e| <= 15). */
function mantissaBitsFor(e: number): number {
  const a = Math.abs(e);
  return a <= 3 ? 3 : a <= 7 ? 2 : 1;
}

/** The value of a HiF8 code (NaN for 0x80, +-Infinity for 0x6F/0xEF). */
export function decodeHif8(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const c = code & 0x7f;
  if (code === HIF8_NAN) return Number.NaN;
  if (c === HIF8_INF) return sign * Number.POSITIVE_INFINITY;
  if (c === 0) return 0;
  if (c >>> 3 === 0) return sign * 2 ** ((c & 7) + DENORMAL_BASE);
  // Prefix 0001 -> D = 0, 001 -> 1, then 01, 10, 11 -> 2, 3, 4; the mantissa gets what D leaves.
  const d = c >>> 3 === 1 ? 0 : c >>> 4 === 1 ? 1 : (c >>> 5) + 1;
  const mb = d <= 2 ? 3 : 5 - d;
  const expField = (c >>> mb) & ((1 << d) - 1);
  let e = 0;
  if (d > 0) {
    const negative = expField >>> (d - 1) === 1;
    const magnitude = (1 << (d - 1)) | (expField & ((1 << (d - 1)) - 1));
    e = negative ? -magnitude : magnitude;
  }
  const mant = c & ((1 << mb) - 1);
  return sign * 2 ** e * (1 + mant / 2 ** mb);
}

/** Code of the normal value 2^e * (1 + mant / 2^mbits(e)), e in [-15, 15]. */
function normalCode(e: number, mant: number): number {
  const a = Math.abs(e);
  const mb = mantissaBitsFor(e);
  if (a === 0) return 0x08 | mant;
  const d = a === 1 ? 1 : a <= 3 ? 2 : a <= 7 ? 3 : 4;
  const prefix = d === 1 ? 0x10 : d === 2 ? 0x20 : d === 3 ? 0x40 : 0x60;
  const expField = ((e < 0 ? 1 : 0) << (d - 1)) | (a & ((1 << (d - 1)) - 1));
  return prefix | (expField << mb) | mant;
}

/**
 * Encodes a finite magnitude a > 0. Returns the magnitude code, or -1 when the rounded value is
 * beyond the largest finite value (the caller applies the overflow policy).
 */
export function encodeHif8Magnitude(a: number, mode: Rounding, uniform: (() => number) | null): number {
  let e = floorLog2(a);
  if (e > EMAX) return -1;
  if (e < EMIN_NORMAL) {
    // Denormals sit on a power-of-two grid {0, 2^-22, ..., 2^-16}; below 2^-22 the neighbours are
    // 0 and 2^-22 (linear), above it 2^e and 2^(e+1).
    if (e < DENORMAL_BASE + 1) return roundInteger(a / 2 ** (DENORMAL_BASE + 1), mode, uniform); // code 0 or 1 (2^-22)
    const k = roundInteger(a / 2 ** e, mode, uniform); // 1 or 2
    e += k - 1;
    return e < EMIN_NORMAL ? e - DENORMAL_BASE : normalCode(e, 0);
  }
  const mb = mantissaBitsFor(e);
  let k = roundInteger(a / 2 ** (e - mb), mode, uniform);
  if (k === 2 ** (mb + 1)) {
    e += 1;
    k = 2 ** mantissaBitsFor(e); // mantissa 0 in the next binade
    if (e > EMAX) return -1;
  }
  const mant = k - 2 ** mantissaBitsFor(e);
  if (e === EMAX && mant !== 0) return -1; // 1.5*2^15 is the Inf pattern
  return normalCode(e, mant);
}
