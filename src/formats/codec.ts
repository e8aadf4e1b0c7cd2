import { decodeHif8, encodeHif8Magnitude, HIF8_INF, HIF8_MAX_CODE } from "./hifloat8.js";
import { floorLog2, roundInteger } from "./rounding.js";
import type { FormatTraits, Overflow, Rounding, SpecialKind } from "./types.js";

/**
 * The one shared codec. Every format is an instance of the same sign / exponent / mantissa model,
 * driven by its traits; HiFloat8's tapered exponent supplies only its own magnitude mapping.
 * This is the specification path (exact, any rounding mode, float64 input); `fast.ts` holds the
 * float32 bit kernels that must agree with it.
 */

/** Limits derived from the traits (computed once per format). */
export interface Derived {
  readonly signBit: number;
  readonly emin: number;
  readonly emax: number;
  readonly maxCode: number;
  readonly max: number;
  readonly minNormal: number;
  readonly minSubnormal: number;
}

export function derive(t: FormatTraits): Derived {
  const signBit = t.signed ? 1 << (t.bits - 1) : 0;
  if (t.specials === "tapered") {
    return {
      signBit,
      emin: -15,
      emax: 15,
      maxCode: HIF8_MAX_CODE,
      max: 32768,
      minNormal: 2 ** -15,
      minSubnormal: 2 ** -22,
    };
  }
  const M = t.mantissaBits;
  const magnitudeCodes = t.signed ? 1 << (t.bits - 1) : 1 << t.bits;
  // Largest finite magnitude code: below the Inf/NaN codes of each kind.
  const maxCode = {
    ieee: ((1 << t.exponentBits) - 1) * (1 << M) - 1, // exponent all-ones reserved
    fn: magnitudeCodes - 2, // only S.1..1.1..1 is NaN
    fnuz: magnitudeCodes - 1,
    none: magnitudeCodes - 1,
    e8m0: 0xfe,
  }[t.specials];
  const hasSubnormals = t.specials !== "e8m0";
  const emin = hasSubnormals ? 1 - t.bias : -t.bias;
  const max = decodeFinite(t, maxCode);
  const emax = floorLog2(max);
  const minNormal = 2 ** emin;
  const minSubnormal = hasSubnormals ? 2 ** (emin - M) : minNormal;
  return { signBit, emin, emax, maxCode, max, minNormal, minSubnormal };
}

/** Value of a finite magnitude code of a non-tapered format (no sign, no specials). */
function decodeFinite(t: FormatTraits, c: number): number {
  const M = t.mantissaBits;
  const ef = c >>> M;
  const mant = c & ((1 << M) - 1);
  if (t.specials === "e8m0") return 2 ** (c - t.bias);
  if (ef === 0) return mant * 2 ** (1 - t.bias - M);
  return (1 + mant / 2 ** M) * 2 ** (ef - t.bias);
}

/** The value of one code (NaN and +-Infinity where the format has them). */
export function decodeCode(t: FormatTraits, d: Derived, code: number): number {
  if (t.specials === "tapered") return decodeHif8(code);
  const neg = (code & d.signBit) !== 0;
  const c = code & ~d.signBit & ((1 << t.bits) - 1);
  const s = neg ? -1 : 1;
  const k = t.specials;
  if (k === "ieee" && c >>> t.mantissaBits === (1 << t.exponentBits) - 1) {
    return (c & ((1 << t.mantissaBits) - 1)) === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  }
  if (
    (k === "fn" && c === d.maxCode + 1) ||
    (k === "fnuz" && neg && c === 0) ||
    (k === "e8m0" && c === 0xff)
  ) {
    return Number.NaN;
  }
  return s * decodeFinite(t, c);
}

/** Code for NaN input: ml_dtypes' quiet NaN with the input's sign folded in (fnuz/e8m0: fixed). */
export function nanCode(t: FormatTraits, d: Derived, negative: boolean): number {
  const q = t.quietNaN ?? 0;
  if (t.specials === "fnuz" || t.specials === "e8m0" || t.specials === "tapered") return q;
  return negative ? q ^ d.signBit : q;
}

/** Code for a value beyond max (or Inf) under the `nonfinite` policy. */
export function overflowCode(t: FormatTraits, d: Derived, negative: boolean): number {
  const s = negative ? d.signBit : 0;
  const codes: Record<SpecialKind, number> = {
    ieee: s | (((1 << t.exponentBits) - 1) << t.mantissaBits), // Inf
    fn: s | (d.maxCode + 1), // NaN
    fnuz: t.quietNaN ?? 0,
    e8m0: t.quietNaN ?? 0,
    none: s | d.maxCode, // no Inf/NaN: saturate, as ml_dtypes does
    tapered: s | HIF8_INF,
  };
  return codes[t.specials];
}

/**
 * Encodes one value given as sign and magnitude (the sign is passed separately because a NaN's sign
 * is not observable from a JS number). `a` is |x| as a float64: exact for float32 input, so
 * the only rounding is the format's own (no double rounding for float64 input either).
 */
export function encodeScalar(
  t: FormatTraits,
  d: Derived,
  negative: boolean,
  a: number,
  rounding: Rounding,
  overflow: Overflow,
  uniform: (() => number) | null,
): number {
  if (Number.isNaN(a)) return nanCode(t, d, negative);
  if (t.specials === "e8m0" && (negative || a === 0)) return 0xff; // ml_dtypes: no zero, no negatives
  const s = negative && t.specials !== "e8m0" ? d.signBit : 0;
  const zero = t.specials === "fnuz" || t.specials === "tapered" ? 0 : s;
  if (a === Number.POSITIVE_INFINITY) {
    return overflow === "saturate" ? s | d.maxCode : overflowCode(t, d, negative);
  }
  if (a === 0) return zero;
  if (t.specials === "tapered") {
    // HiF8 codes are not ordered by magnitude, so overflow is signalled explicitly.
    const mag = encodeHif8Magnitude(a, rounding, uniform);
    if (mag === -1) {
      if (rounding === "toward-zero" || overflow === "saturate") return s | d.maxCode;
      return overflowCode(t, d, negative);
    }
    return mag === 0 ? zero : s | mag;
  }
  const M = t.mantissaBits;
  const e = Math.max(floorLog2(a), d.emin);
  let mag = ((e - d.emin) << M) + roundInteger(a / 2 ** (e - M), rounding, uniform);
  if (t.specials === "e8m0") mag = Math.max(mag - 1, 0); // implicit 1, no subnormals: below 2^-127 -> 2^-127
  if (mag > d.maxCode) {
    if (rounding === "toward-zero" || overflow === "saturate") return s | d.maxCode;
    return overflowCode(t, d, negative);
  }
  return mag === 0 ? zero : s | mag;
}
