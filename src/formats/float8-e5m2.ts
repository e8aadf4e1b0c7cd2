import { minifloat } from "./traits.js";

/**
 * OCP FP8 E5M2: IEEE-like (Inf at S.11111.00, NaN at S.11111.{01,10,11}), largest value 57344.
 * ml_dtypes' quiet NaN is 0x7E; overflow goes to Inf (61440, the tie above 57344, goes to Inf
 * because 57344's mantissa is odd).
 */
export const float8_e5m2 = minifloat({
  name: "float8_e5m2",
  specials: "ieee",
  quietNaN: 0x7e,
  source: "OCP OFP8 E5M2; ml_dtypes float8_e5m2; torch.float8_e5m2; safetensors F8_E5M2",
});
