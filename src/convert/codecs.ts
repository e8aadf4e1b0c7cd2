/**
 * The element and scale conversions the conversion kernels use, bound once from the codec and
 * quantization layers (one shared codec: nothing here re-implements a format). Each is a value or
 * a one-value function from float32 bits, so the band loops can fuse it with scaling and error
 * statistics.
 */
import { decodeTable, float32BitsEncoder } from "../formats/index.js";
import { deepseekScaleExponent } from "../quant/index.js";

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

/** The 256 E4M3 values, the 16 E2M1 values and the 65536 float16 values, as float32. */
export const E4M3_TABLE: Float32Array = decodeTable("float8_e4m3fn");
export const E2M1_TABLE: Float32Array = decodeTable("float4_e2m1fn").subarray(0, 16);
export const F16_TABLE: Float32Array = decodeTable("float16");

/**
 * float32 bits -> E4M3 code, RNE, saturating to +-448 (the satfinite cast of Triton/DeepGEMM and of
 * torch for |x| <= 464); NaN stays NaN (0x7F with the sign).
 */
export const e4m3FromBits: (bits: number) => number = float32BitsEncoder("float8_e4m3fn", {
  overflow: "saturate",
});

/** float32 bits -> E2M1 code, RNE, saturating to +-6; NaN as ml_dtypes gives it. */
export const e2m1FromBits: (bits: number) => number = float32BitsEncoder("float4_e2m1fn", {
  overflow: "saturate",
});

/** float32 bits -> bfloat16 bits, RNE (torch `.to(torch.bfloat16)` for finite values). */
export const bf16FromBits: (bits: number) => number = float32BitsEncoder("bfloat16");

/** float32 bits -> float16 bits, RNE, overflow to Inf (IEEE / numpy astype). */
export const f16FromBits: (bits: number) => number = float32BitsEncoder("float16");

/**
 * The DeepSeek-V3.1 / DeepGEMM UE8M0 block scale for a block amax: 2^ceil(log2(max(amax, 1e-4) / 448))
 * with the exponent clamped to [1, 254] (`deepseekScaleExponent` of the quantization layer).
 */
export function deepseekUe8m0Scale(amax: number): number {
  return 2 ** deepseekScaleExponent(amax, "float8_e4m3fn");
}
