/**
 * The one vocabulary for how block scales are stored, used by every layer (quantization schemes,
 * checkpoint layouts, conversion kernels, reports):
 * - `f32`: float32 multipliers (DeepSeek `weight_scale_inv`; powers of two for V3.1);
 * - `bf16`, `f16`: 16-bit float multipliers (compressed-tensors stores scales in the weight's dtype);
 * - `ue8m0`: one E8M0 byte per scale, 2^(b-127), 0xFF = NaN (MX, DeepSeek-V3.1 `F8_E8M0`; safetensors
 *   `U8` or `F8_E8M0`);
 * - `e4m3`: E4M3 codes (NVFP4 block scales, combined with a float32 per-tensor scale).
 */
export type ScaleStorage = "f32" | "bf16" | "f16" | "ue8m0" | "e4m3";

/** Bytes one stored scale takes. */
export const SCALE_BYTES: Readonly<Record<ScaleStorage, number>> = {
  f32: 4,
  bf16: 2,
  f16: 2,
  ue8m0: 1,
  e4m3: 1,
};
