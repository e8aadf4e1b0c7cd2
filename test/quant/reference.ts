/**
 * Deliberately simple, independent references for the quantization tests: element values from
 * the format definitions (not the library's decoder), nearest-value search with ties to the even
 * code, BF16 RNE from the float32 bit pattern, a seeded normal generator.
 */

/** Positive values of a minifloat with `m` mantissa bits and exponent bias `bias`, codes 0..count-1. */
export function minifloatValues(m: number, bias: number, count: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < count; c++) {
    const E = c >> m;
    const M = c & ((1 << m) - 1);
    out.push(E === 0 ? (M / 2 ** m) * 2 ** (1 - bias) : (1 + M / 2 ** m) * 2 ** (E - bias));
  }
  return out;
}

/** E4M3 positive finite values, codes 0x00..0x7E (0x7F is NaN). */
export const E4M3_VALUES = minifloatValues(3, 7, 0x7f);
/** E2M1 positive values, codes 0..7. */
export const E2M1_VALUES = minifloatValues(1, 1, 8);

/**
 * Code of the nearest value of `positives` (sorted ascending, index = code) to |x|, ties to the even
 * code, the sign in bit `signBit`. `x` must already be clamped into range.
 */
export function nearestCode(x: number, positives: readonly number[], signBit: number): number {
  const a = Math.abs(x);
  let best = 0;
  for (let c = 1; c < positives.length; c++) {
    const d = Math.abs(positives[c] - a);
    const bd = Math.abs(positives[best] - a);
    if (d < bd || (d === bd && c % 2 === 0)) best = c;
  }
  const negative = x < 0 || Object.is(x, -0);
  return negative ? best | signBit : best;
}

/** BF16 RNE of a float32 value from its bits. */
export function bf16(x: number): number {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0];
  if (Number.isNaN(x)) return 0x7fc0 | ((b >>> 16) & 0x8000);
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** Float32 value of a BF16 code. */
export function bf16Value(code: number): number {
  return new Float32Array(new Uint32Array([code << 16]).buffer)[0];
}

/** Seeded normal values (mulberry32 + Box-Muller), as float32. */
export function randomNormal(n: number, seed: number, sigma = 1): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++)
    out[i] = sigma * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Index of the first difference of two arrays (-1 when equal); faster than deep equality. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
