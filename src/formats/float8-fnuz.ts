import { minifloat } from "./traits.js";

/**
 * The "fnuz" FP8 variants (Graphcore/AMD): no Inf, no negative zero, and the code 0x80 (what would
 * be -0) is the only NaN. The bias is one larger than the OCP formats', so the largest E4M3 value is
 * 240. Overflow, Inf and NaN all encode to 0x80; -0.0 encodes to 0x00.
 */
export const float8_e4m3fnuz = minifloat({
  name: "float8_e4m3fnuz",
  specials: "fnuz",
  quietNaN: 0x80,
  source: "ml_dtypes float8_e4m3fnuz; torch.float8_e4m3fnuz; safetensors F8_E4M3FNUZ",
});

export const float8_e5m2fnuz = minifloat({
  name: "float8_e5m2fnuz",
  specials: "fnuz",
  quietNaN: 0x80,
  source: "ml_dtypes float8_e5m2fnuz; torch.float8_e5m2fnuz; safetensors F8_E5M2FNUZ",
});
