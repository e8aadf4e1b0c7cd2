import { minifloat } from "./traits.js";

/**
 * E8M0 / UE8M0, the OCP MX scale format: 8 exponent bits, no sign, no mantissa, bias 127. Byte b in
 * 0..254 is 2^(b-127); 0xFF is NaN; there is no zero and no Inf. Encoding follows ml_dtypes 0.6.0
 * bit for bit (see `encodeE8m0Bits`): 0, negatives, Inf and NaN give 0xFF; a tie 1.5*2^e rounds up.
 */
export const float8_e8m0fnu = minifloat({
  name: "float8_e8m0fnu",
  signed: false,
  specials: "e8m0",
  quietNaN: 0xff,
  source: "OCP MX v1.0 E8M0; ml_dtypes float8_e8m0fnu; torch.float8_e8m0fnu; safetensors F8_E8M0",
});

/**
 * ml_dtypes' float32 -> float8_e8m0fnu cast, from the float32 bits. The result is the float32
 * biased exponent, plus one when the mantissa is at least half (the implicit leading 1 is the kept
 * bit, so a tie rounds up to the even exponent... of the code's LSB-free grid: 1.5 -> 2, 3 -> 4).
 * float32 subnormals (exponent field 0) have no implicit bit: they round up to 2^-126 only when the
 * mantissa is above half (x > 2^-127), else to 2^-127. This last rule is where ml_dtypes differs
 * from rounding the value itself (which would send (2^-127, 1.5*2^-127) to 2^-127); the vectors
 * record ml_dtypes' behaviour and we follow it.
 */
export function encodeE8m0Bits(bits: number): number {
  if (bits >>> 31 !== 0) return 0xff; // negative, -0, negative NaN
  const e = bits >>> 23;
  const m = bits & 0x7fffff;
  if (e === 0xff) return 0xff; // Inf, NaN
  if (e === 0) {
    if (m === 0) return 0xff; // zero has no code
    return m > 0x400000 ? 1 : 0;
  }
  const code = e + (m >= 0x400000 ? 1 : 0);
  return code > 0xfe ? 0xff : code;
}
