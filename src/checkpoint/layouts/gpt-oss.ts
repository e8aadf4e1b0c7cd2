/**
 * OpenAI gpt-oss MXFP4 (`quant_method: "mxfp4"`): `X_blocks` U8 `[..., G, 16]` (32 E2M1 codes per
 * group, two per byte, low nibble first) + `X_scales` U8 `[..., G]` E8M0 (transformers
 * `integrations/mxfp4.py`; the experts' `gate_up_proj` and `down_proj`).
 */
import { E8M0_SCALES, MX_GROUP, recognizer } from "./recognizer.js";

export const gptOssMxfp4 = recognizer({
  kind: "gpt-oss-mxfp4",
  family: "gpt-oss",
  format: "mxfp4",
  title: "gpt-oss MXFP4",
  data: "_blocks",
  dataDtypes: ["U8"],
  scale: "_scales",
  scaleDtypes: E8M0_SCALES,
  claims: (_ctx, _base, scale) => scale !== undefined,
  block: [1, MX_GROUP],
  packing: "gpt-oss",
  weightName: (base) => base,
  details: () => "_blocks/_scales, E8M0 scale per 32",
});
