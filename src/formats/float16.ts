import { minifloat } from "./traits.js";

/** IEEE 754 binary16. */
export const float16 = minifloat({
  name: "float16",
  bits: 16,
  exponentBits: 5,
  mantissaBits: 10,
  specials: "ieee",
  quietNaN: 0x7e00,
  source: "IEEE 754 binary16; torch.float16; safetensors F16",
});
