/**
 * DeepSeek-V3 / Hugging Face fine-grained FP8 (`quant_method: "fp8"`): `X.weight` F8_E4M3 and
 * `X.weight_scale_inv` holding the multiplier per `weight_block_size` block (default 128x128), F32
 * in DeepSeek-V3, F32 powers of two or F8_E8M0 with `scale_fmt: "ue8m0"` in DeepSeek-V3.1
 * (transformers `FineGrainedFP8Config`; DeepSeek-V3 `inference/fp8_cast_bf16.py`).
 */
import { blockFrom, DEFAULT_FP8_BLOCK, E8M0_SCALES, FLOAT_SCALES, recognizer } from "./recognizer.js";

export const deepseekFp8 = recognizer({
  kind: "fp8-block",
  family: "deepseek",
  format: "fp8",
  title: "DeepSeek/HF block FP8",
  dataDtypes: ["F8_E4M3", "F8_E5M2"],
  scale: ".weight_scale_inv",
  scaleDtypes: { ...FLOAT_SCALES, ...E8M0_SCALES },
  // With no scale at all it is DeepSeek's missing `_scale_inv`, unless another stack is declared
  // or the layer has a `weight_scale` (then a later recognizer owns it).
  claims: (ctx, base, scale) =>
    scale !== undefined ||
    (!ctx.byName.has(`${base}.weight_scale`) && ctx.method !== "compressed-tensors" && ctx.modelopt === null),
  block: (ctx) => blockFrom(ctx.qc?.weight_block_size) ?? DEFAULT_FP8_BLOCK,
  scaleFmt: (ctx) => (ctx.qc?.scale_fmt === "ue8m0" ? "ue8m0" : "float"),
  details: ({ block, scaleFmt }) => `${block?.join("x")} blocks, ${scaleFmt} scales`,
});
