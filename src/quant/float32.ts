/**
 * Float32 bit access. The scale rules are defined by their sources on the IEEE float32 bit pattern
 * (exponent field, mantissa field), so they are computed here the same way, not with Math.log2.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 bit pattern of `x` (after rounding `x` to float32), as an unsigned 32-bit integer. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The float32 value with bit pattern `bits`. */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** Biased float32 exponent field (0..255). */
export function f32Exponent(bits: number): number {
  return (bits >>> 23) & 0xff;
}

/** Float32 mantissa field (0..0x7fffff). */
export function f32Mantissa(bits: number): number {
  return bits & 0x7fffff;
}

/** True when `x` is a positive float32 power of two (normal or subnormal). */
export function isPowerOfTwoF32(x: number): boolean {
  if (!(x > 0) || !Number.isFinite(x) || Math.fround(x) !== x) return false;
  const bits = f32Bits(x);
  const m = bits & 0x7fffff;
  // Normal: mantissa 0. Subnormal: exactly one mantissa bit set.
  return f32Exponent(bits) !== 0 ? m === 0 : (m & (m - 1)) === 0;
}
