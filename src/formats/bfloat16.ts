import { minifloat } from "./traits.js";

/** Brain float16: the top half of a float32 (8 exponent bits, 7 mantissa bits), IEEE specials. */
export const bfloat16 = minifloat({
  name: "bfloat16",
  bits: 16,
  exponentBits: 8,
  mantissaBits: 7,
  specials: "ieee",
  quietNaN: 0x7fc0,
  source: "bfloat16; torch.bfloat16; safetensors BF16",
});
