import { minifloat } from "./traits.js";

/**
 * OCP MX FP4 E2M1 (also NVFP4's element): magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}, code | 0x8 is the
 * negative. No Inf/NaN: overflow and Inf saturate to +-6; NaN follows ml_dtypes (-0 = 0x8 for a
 * positive NaN, +0 for a negative one). One element per byte in the low nibble; `packFp4` packs two.
 */
export const float4_e2m1fn = minifloat({
  name: "float4_e2m1fn",
  specials: "none",
  quietNaN: 0x8,
  source: "OCP MX v1.0 FP4 E2M1; ml_dtypes float4_e2m1fn; safetensors F4 (packed)",
});
