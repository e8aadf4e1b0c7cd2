import type { FormatTraits } from "./types.js";

/**
 * The "fnuz" FP8 variants (Graphcore/AMD): no Inf, no negative zero, and the code 0x80 (what would
 * be -0) is the only NaN. The bias is one larger than the OCP formats', so the largest E4M3 value is
 * 240. Overflow, Inf and NaN all encode to 0x80; -0.0 encodes to 0x00.
 */
export const float8_e4m3fnuz: FormatTraits = {
  name: "float8_e4m3fnuz",
  bits: 8,
  exponentBits: 4,
  mantissaBits: 3,
  bias: 8,
  signed: true,
  specials: "fnuz",
  quietNaN: 0x80,
  defaultRounding: "rne",
  source: "ml_dtypes float8_e4m3fnuz; torch.float8_e4m3fnuz; safetensors F8_E4M3FNUZ",
};

export const float8_e5m2fnuz: FormatTraits = {
  name: "float8_e5m2fnuz",
  bits: 8,
  exponentBits: 5,
  mantissaBits: 2,
  bias: 16,
  signed: true,
  specials: "fnuz",
  quietNaN: 0x80,
  defaultRounding: "rne",
  source: "ml_dtypes float8_e5m2fnuz; torch.float8_e5m2fnuz; safetensors F8_E5M2FNUZ",
};
