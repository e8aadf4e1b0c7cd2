/**
 * Element and scale conversions used by the conversion kernels, written as tight scalar loops over
 * float32 bits (the hot path of `convert`). Each function states which reference it reproduces; the
 * tests check them against `src/formats` (ml_dtypes vectors) and closed forms.
 *
 * These are local to `convert` on purpose: they are specialised (saturating, fused with scaling)
 * versions of what `src/formats` / `src/quant` provide generically.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits of `x` (rounded to float32 first). */
export function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The float32 whose bits are `b`. */
export function fromBits(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

/** E4M3 (OCP "fn") code -> value, by its closed form: E=0: m*2^-9; else (1+m/8)*2^(E-7); 0x7F/0xFF NaN. */
export function e4m3Value(code: number): number {
  const s = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 0xf;
  const m = code & 7;
  if (e === 15 && m === 7) return Number.NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}

/** The 256 E4M3 values as float32. */
export const E4M3_TABLE: Float32Array = Float32Array.from({ length: 256 }, (_, c) => e4m3Value(c));

const E2M1_MAG = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
/** The 16 E2M1 values (code | 8 = negative). */
export const E2M1_TABLE: Float32Array = Float32Array.from({ length: 16 }, (_, c) =>
  c & 8 ? -E2M1_MAG[c & 7] : E2M1_MAG[c & 7],
);

/** Round-half-to-even of a non-negative number to an integer. */
function rneInt(n: number): number {
  const r = Math.round(n);
  return r - n === 0.5 && (r & 1) === 1 ? r - 1 : r;
}

/**
 * float32 bits -> E4M3 code, round-to-nearest-even, saturating to +-448 (what torch's
 * `.to(float8_e4m3fn)` gives for |x| <= 464 and what Triton/DeepGEMM casts give beyond); NaN -> 0x7F|sign.
 */
export function e4m3FromBits(bits: number): number {
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7f;
  if (a >= 0x43e00000) return sign | 0x7e; // >= 448 (Inf included) saturates
  if (a < 0x3c800000) return sign | rneInt(fromBits(a) * 512); // below 2^-6: multiples of 2^-9
  const t = a - (120 << 23); // re-bias 127 -> 7
  const code = (t + 0x7ffff + ((t >>> 20) & 1)) >>> 20;
  return sign | Math.min(code, 0x7e);
}

/** float32 value -> E2M1 code (RNE, saturating to +-6; NaN -> 0x8 as ml_dtypes gives). */
export function e2m1FromValue(x: number): number {
  if (Number.isNaN(x)) return 8;
  const s = x < 0 || Object.is(x, -0) ? 8 : 0;
  const a = Math.abs(x);
  let c: number;
  if (a <= 0.25) c = 0;
  else if (a < 0.75) c = 1;
  else if (a <= 1.25) c = 2;
  else if (a < 1.75) c = 3;
  else if (a <= 2.5) c = 4;
  else if (a < 3.5) c = 5;
  else if (a <= 5) c = 6;
  else c = 7;
  return s | c;
}

/** float32 bits -> bfloat16 bits, round-to-nearest-even (torch `.to(torch.bfloat16)`); NaN stays NaN (quiet). */
export function bf16FromBits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits -> float16 bits, round-to-nearest-even, overflow to Inf (IEEE / numpy astype). */
export function f16FromBits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to Inf
  if (a < 0x38800000) {
    // below 2^-14: subnormal half, multiples of 2^-24
    return sign | rneInt(fromBits(a) * 2 ** 24);
  }
  const t = a - (112 << 23);
  return sign | ((t + 0xfff + ((t >>> 13) & 1)) >>> 13);
}

function f16Table(): Float32Array {
  const F16_TABLE = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    F16_TABLE[h] =
      e === 0
        ? s * m * 2 ** -24
        : e === 31
          ? m
            ? Number.NaN
            : s * Number.POSITIVE_INFINITY
          : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return F16_TABLE;
}
const F16_TABLE = f16Table();
/** float16 bits -> value. */
export function f16Value(h: number): number {
  return F16_TABLE[h];
}
export { F16_TABLE };

/** E8M0 byte -> 2^(b-127) (0xFF: NaN). */
export function e8m0Value(b: number): number {
  return b === 0xff ? Number.NaN : 2 ** (b - 127);
}

/**
 * DeepGEMM `ceil_to_ue8m0` (deep_gemm/utils/math.py): the power of two at or above |x|, from the
 * float32 bits: exponent field + (mantissa != 0), clamped to [1, 254]. Returns the float32 bits.
 */
export function ceilUe8m0Bits(bits: number): number {
  const a = bits & 0x7fffffff;
  let e = (a >>> 23) + ((a & 0x7fffff) !== 0 ? 1 : 0);
  if (e < 1) e = 1;
  if (e > 254) e = 254;
  return e << 23;
}
