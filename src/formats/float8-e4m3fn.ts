import { minifloat } from "./traits.js";

/**
 * OCP FP8 E4M3 ("fn": finite). No Inf; only S.1111.111 is NaN, so the top binade keeps seven finite
 * codes and the largest value is 448 (0x7E). ml_dtypes' cast maps overflow and Inf to NaN (0x7F with
 * the input's sign); 464, the tie between 448 and the NaN code, rounds to 448.
 */
export const float8_e4m3fn = minifloat({
  name: "float8_e4m3fn",
  specials: "fn",
  quietNaN: 0x7f,
  source: "OCP OFP8 E4M3; ml_dtypes float8_e4m3fn; torch.float8_e4m3fn; safetensors F8_E4M3",
});
