import type { FormatTraits } from "./types.js";

/** IEEE 754 binary16. */
export const float16: FormatTraits = {
  name: "float16",
  bits: 16,
  exponentBits: 5,
  mantissaBits: 10,
  bias: 15,
  signed: true,
  specials: "ieee",
  quietNaN: 0x7e00,
  defaultRounding: "rne",
  source: "IEEE 754 binary16; torch.float16; safetensors F16",
};
