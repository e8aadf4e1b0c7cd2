import { minifloat } from "./traits.js";

/**
 * OCP MX FP6 element formats: no Inf, no NaN; stored one per byte in the low 6 bits (0bSEEMMM), as
 * ml_dtypes stores them. Overflow and Inf saturate to +-max (ml_dtypes' `infinity()` of these types
 * is max). NaN has no code: ml_dtypes returns its quiet_NaN(), which is -0 (0x20) for a positive NaN
 * and +0 for a negative one; we reproduce that.
 */
export const float6_e2m3fn = minifloat({
  name: "float6_e2m3fn",
  specials: "none",
  quietNaN: 0x20,
  source: "OCP MX v1.0 FP6 E2M3; ml_dtypes float6_e2m3fn; safetensors F6_E2M3",
});

export const float6_e3m2fn = minifloat({
  name: "float6_e3m2fn",
  specials: "none",
  quietNaN: 0x20,
  source: "OCP MX v1.0 FP6 E3M2; ml_dtypes float6_e3m2fn; safetensors F6_E3M2",
});
