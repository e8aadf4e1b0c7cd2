/**
 * Huawei Ascend (msModelSlim's "AscendV1" format, read by vllm-ascend and sglang; ../shared/docs/ASCEND.md):
 * a `quant_model_description.json` names each tensor's quantization type, config.json has no
 * `quantization_config`. Per quantized linear `X`:
 * - W8A8_DYNAMIC: `X.weight` I8 `[out, in]`, `X.weight_scale` F32 `[out, 1]`, `X.weight_offset` F32
 *   zeros `[out, 1]` (vllm-ascend `quantization/methods/w8a8_dynamic.py:51-83`, msModelSlim
 *   `save/ascendv1.py:337-348`; ASCEND.md §2.1);
 * - W4A8_DYNAMIC (MoE experts): `X.weight` I8 `[out / 2, in]` holding two INT4 codes per byte
 *   along the output dimension, `weight_scale` / `weight_offset` F32 `[out, 1]`, and `X.scale_bias`
 *   F32 `[out, 1]` (gate/up) or `[out, 16]` (down) (`methods/w4a8.py:52-66,142-195`, msModelSlim
 *   `save/utils/pack.py:25-90`; ASCEND.md §4.2);
 * - W8A8_MXFP8 (Ascend 950): `X.weight` F8_E4M3 `[out, in]`, `X.weight_scale` U8 E8M0 `[out, in/32]`
 *   (`methods/w8a8_mxfp8.py:42-77`; ASCEND.md §6).
 */
import { WHOLE_ROW } from "../../quant/kernels/types.js";
import type { TensorEntry } from "../types.js";
import { FLOAT_SCALES, hasE8m0Scale, type LayoutContext, mxfp8, recognizer } from "./recognizer.js";

/** The description file's name, as vllm-ascend requires it exactly (`modelslim_config.py:95`). */
export const ASCEND_DESCRIPTION_FILE = "quant_model_description.json";

/** The description's type of a tensor, when the description names it. */
const described = (ctx: LayoutContext, name: string): string | null => {
  const v = ctx.ascend?.[name];
  return typeof v === "string" ? v : null;
};

/** Whether `scale` is one value per row of `weight` (`[..., rows, 1]`; packed INT4 stores half the rows). */
function channelScale(
  scale: TensorEntry | undefined,
  weight: TensorEntry | undefined,
  packed: boolean,
): boolean {
  if (!scale || !weight || scale.shape.length !== weight.shape.length || scale.shape.length < 1) return false;
  const n = scale.shape.length;
  if (scale.shape[n - 1] !== 1) return false;
  if (n < 2) return false;
  return scale.shape[n - 2] === weight.shape[n - 2] * (packed ? 2 : 1);
}

/** Not a compressed-tensors or ModelOpt checkpoint, whose INT8 schemes fp8kit does not read. */
const noOtherStack = (ctx: LayoutContext) => ctx.method === null && ctx.modelopt === null;

/** W4A8_DYNAMIC: packed INT4 rows; claimed by its description entry or its `scale_bias` and scale rows. */
export const ascendW4a8 = recognizer({
  kind: "ascend-w4a8",
  family: "ascend",
  format: "w4a8",
  title: "Ascend W4A8_DYNAMIC (msModelSlim)",
  dataDtypes: ["I8"],
  scaleDtypes: FLOAT_SCALES,
  claims: (ctx, base, scale) =>
    described(ctx, `${base}.weight`) === "W4A8_DYNAMIC" ||
    (noOtherStack(ctx) &&
      ctx.byName.has(`${base}.scale_bias`) &&
      channelScale(scale, ctx.byName.get(`${base}.weight`), true)),
  block: [1, WHOLE_ROW],
  packing: "rows",
  auxiliary: [".weight_offset", ".scale_bias"],
  details: () => "INT4 packed along rows, F32 scale per row, scale_bias",
});

/** W8A8_DYNAMIC: INT8 with a per-row scale; claimed by its description entry or the `[out, 1]` scale. */
export const ascendW8a8 = recognizer({
  kind: "ascend-w8a8",
  family: "ascend",
  format: "w8a8",
  title: "Ascend W8A8_DYNAMIC (msModelSlim)",
  dataDtypes: ["I8"],
  scaleDtypes: FLOAT_SCALES,
  claims: (ctx, base, scale) =>
    described(ctx, `${base}.weight`) === "W8A8_DYNAMIC" ||
    (noOtherStack(ctx) && channelScale(scale, ctx.byName.get(`${base}.weight`), false)),
  block: [1, WHOLE_ROW],
  auxiliary: [".weight_offset"],
  details: () => "INT8, F32 scale per row",
});

/** W8A8_MXFP8 (Ascend 950): MXFP8 tensors, told from ModelOpt's by the description file. */
export const ascendMxfp8 = mxfp8({
  kind: "ascend-mxfp8",
  family: "ascend",
  title: "Ascend W8A8_MXFP8 (msModelSlim)",
  claims: (ctx, _base, scale) => ctx.ascend !== null && hasE8m0Scale(scale),
});

/**
 * Whether msModelSlim's DeepSeek recipes quantize weight `name`: the linears under `self_attn` and
 * `mlp` (dense MLPs, shared and routed experts), except `kv_b_proj` (vllm-ascend asserts it is
 * unquantized, `attention/mla_v1.py:908-909`) and the router `mlp.gate` (excluded as `*gate`,
 * `lab_practice/deepseek_v3/deepseek_w4a8_per_channel.yaml:13-73`). Embeddings, `lm_head` and norms
 * are matched by neither pattern and stay FLOAT (ASCEND.md §2.3).
 */
export function ascendQuantizes(name: string): boolean {
  return (
    /\.(self_attn|mlp)\./.test(name) && !/\.kv_b_proj\./.test(name) && !/\.mlp\.gate\.weight$/.test(name)
  );
}

/** Routed experts, the weights W4A8_DYNAMIC holds (vllm-ascend registers W4A8 for MoE only, ASCEND.md §4.1). */
export function isRoutedExpert(name: string): boolean {
  return /\.mlp\.experts\.(\d+\.)?(gate_proj|up_proj|down_proj|gate_up_proj)(\.weight)?$/.test(name);
}

/**
 * Columns of W4A8's `scale_bias`: 16 chunk sums for down projections, one row sum for the others
 * (msModelSlim `process_scale(prefix, deq, 16)`, ASCEND.md §4.2).
 */
export function scaleBiasChunks(name: string): 1 | 16 {
  return /(down_proj|o_proj|\.w2)(\.weight)?$/.test(name) ? 16 : 1;
}
