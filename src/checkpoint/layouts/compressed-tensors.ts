/**
 * compressed-tensors (llm-compressor, vLLM, SGLang; `quant_method: "compressed-tensors"`), its
 * `compressors/` and `quantization/` packages:
 * - FP8 block (`float-quantized`, FP8_BLOCK preset): `X.weight` F8_E4M3 + `X.weight_scale` in the
 *   weight's original dtype per `block_structure` block;
 * - MXFP8 (`mxfp8-quantized`): `X.weight` F8_E4M3 + `X.weight_scale` U8 E8M0 per 32;
 * - MXFP4 (`mxfp4-pack-quantized`): `X.weight_packed` U8 (two E2M1 per byte) + `X.weight_scale` U8;
 * - NVFP4 (`nvfp4-pack-quantized`): `X.weight_packed` U8 + `X.weight_scale` F8_E4M3 per 16 +
 *   `X.weight_global_scale` F32, which compressed-tensors divides by (it is ModelOpt's
 *   `weight_scale_2` inverted, `converters/modelopt_nvfp4.py`).
 */
import {
  blockFrom,
  DEFAULT_FP8_BLOCK,
  E8M0_SCALES,
  FLOAT_SCALES,
  type LayoutContext,
  MX_GROUP,
  mxfp8,
  nvfp4,
  obj,
  recognizer,
} from "./recognizer.js";

/** The block of the first config group that declares `weights.block_structure`. */
function ctBlock(ctx: LayoutContext): [number, number] {
  for (const g of Object.values(obj(ctx.qc?.config_groups) ?? {})) {
    const b = blockFrom(obj(obj(g)?.weights)?.block_structure);
    if (b) return b;
  }
  return DEFAULT_FP8_BLOCK;
}

export const ctNvfp4 = nvfp4({
  kind: "ct-nvfp4",
  family: "compressed-tensors",
  title: "compressed-tensors NVFP4",
  data: ".weight_packed",
  dataDtypes: ["U8"],
  tensorScale: { suffix: ".weight_global_scale", mode: "divide" },
  auxiliary: [".input_global_scale"],
  details: () => "E2M1 packed, E4M3 scale per 16, F32 global scale",
});

export const ctMxfp4 = recognizer({
  kind: "ct-mxfp4",
  family: "compressed-tensors",
  format: "mxfp4",
  title: "compressed-tensors MXFP4",
  data: ".weight_packed",
  dataDtypes: ["U8"],
  scaleDtypes: E8M0_SCALES,
  block: [1, MX_GROUP],
  packing: "nibbles",
  details: () => "E2M1 packed, E8M0 scale per 32",
});

export const ctMxfp8 = mxfp8({
  kind: "ct-mxfp8",
  family: "compressed-tensors",
  title: "compressed-tensors MXFP8",
});

/** Last of the `.weight` F8 recognizers: also owns a compressed-tensors FP8 weight whose scale is missing. */
export const ctFp8Block = recognizer({
  kind: "ct-fp8-block",
  family: "compressed-tensors",
  format: "fp8",
  title: "compressed-tensors FP8 block",
  scaleDtypes: FLOAT_SCALES,
  block: ctBlock,
  details: ({ block, scaleDtype, ctx }) =>
    `${block?.join("x")} blocks, ${scaleDtype} scales${typeof ctx.qc?.format === "string" ? `, format ${ctx.qc.format}` : ""}`,
});
