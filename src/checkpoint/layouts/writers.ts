/**
 * Layouts as writers: the same layout data detection reads (tensor suffixes, dtypes, packing, scale
 * storage) names and shapes the tensors `convert --layout` writes, so what fp8kit writes is what it
 * recognises, and the other way round.
 *
 *   writerOf(family, format) -> Recognizer | null     (the layout written for a family and format)
 *   outputTensors(writer, weightName, shape, scaleDtype) -> codes, block scales, per-tensor scalar
 */
import type { Dtype } from "../../safetensors/index.js";
import { ascendMxfp8, ascendQuantizes, ascendW4a8, ascendW8a8, scaleBiasChunks } from "./ascend.js";
import { ctFp8Block, ctMxfp4, ctMxfp8, ctNvfp4 } from "./compressed-tensors.js";
import { deepseekFp8 } from "./deepseek-fp8.js";
import { gptOssMxfp4 } from "./gpt-oss.js";
import { modeloptMxfp8, modeloptNvfp4 } from "./modelopt.js";
import { type LayoutFamily, type LayoutFormat, NVFP4_GROUP, type Recognizer } from "./recognizer.js";

/** Families `convert --layout` writes: the quantized dialects and `dense` (BF16/F16/F32, no scales). */
export type OutputFamily = LayoutFamily | "dense";
export const OUTPUT_FAMILIES: readonly OutputFamily[] = [
  "deepseek",
  "compressed-tensors",
  "modelopt",
  "gpt-oss",
  "ascend",
  "dense",
];

/** Formats fp8kit writes (per-tensor FP8 is read, not written). */
export type WrittenFormat = Exclude<LayoutFormat, "fp8-tensor">;

export interface Writer {
  layout: Recognizer;
  /** Scale dtypes the writer stores, the default first. */
  scaleDtypes: readonly Dtype[];
  /**
   * Which weights the layout holds quantized (default: all). The rest are written dense and listed
   * in the config as not converted.
   */
  holds?: { test: (weightName: string) => boolean; why: string };
}

/**
 * gpt-oss quantizes only its MoE experts' stacked parameters (transformers `Mxfp4GptOssExperts`
 * reads `experts.gate_up_proj_blocks` / `down_proj_blocks`); its attention, router, embeddings and
 * head stay BF16 (the released config's `modules_to_not_convert`).
 */
const GPT_OSS_EXPERTS = /\.experts\.(gate_up_proj|down_proj)(\.weight)?$/;

/** msModelSlim's DeepSeek recipes quantize the linears under `self_attn` and `mlp` but `kv_b_proj` and the router (ASCEND.md §2.3). */
const ASCEND_HOLDS = {
  test: ascendQuantizes,
  why: "Ascend keeps kv_b_proj, the router gate, embeddings, lm_head and norms unquantized (FLOAT)",
};

/**
 * The layout each family writes for each format. DeepSeek stores F32 multipliers (V3, and powers of
 * two in V3.1) or F8_E8M0 bytes; compressed-tensors stores FP8 block scales in the weight's original
 * dtype (BF16; F32 keeps float scales exact) and E8M0 as U8; ModelOpt and gpt-oss store E8M0 as U8.
 */
const WRITERS: Readonly<Record<LayoutFamily, Partial<Record<WrittenFormat, Writer>>>> = {
  deepseek: { fp8: { layout: deepseekFp8, scaleDtypes: ["F32", "F8_E8M0"] } },
  "compressed-tensors": {
    fp8: { layout: ctFp8Block, scaleDtypes: ["BF16", "F32"] },
    mxfp8: { layout: ctMxfp8, scaleDtypes: ["U8"] },
    mxfp4: { layout: ctMxfp4, scaleDtypes: ["U8"] },
    nvfp4: { layout: ctNvfp4, scaleDtypes: ["F8_E4M3"] },
  },
  modelopt: {
    mxfp8: { layout: modeloptMxfp8, scaleDtypes: ["U8"] },
    nvfp4: { layout: modeloptNvfp4, scaleDtypes: ["F8_E4M3"] },
  },
  "gpt-oss": {
    mxfp4: {
      layout: gptOssMxfp4,
      scaleDtypes: ["U8"],
      holds: {
        test: (name) => GPT_OSS_EXPERTS.test(name),
        why: "gpt-oss keeps everything but its MoE experts (experts.gate_up_proj / down_proj) in BF16",
      },
    },
  },
  // W4A8 is the routed experts' format; the other quantized linears of a W4A8 output are W8A8 (plan.ts).
  // MXFP8 is Ascend 950's W8A8_MXFP8 (vllm-ascend `methods/w8a8_mxfp8.py`, ASCEND.md §6).
  ascend: {
    w8a8: { layout: ascendW8a8, scaleDtypes: ["F32"], holds: ASCEND_HOLDS },
    w4a8: { layout: ascendW4a8, scaleDtypes: ["F32"], holds: ASCEND_HOLDS },
    mxfp8: { layout: ascendMxfp8, scaleDtypes: ["U8"], holds: ASCEND_HOLDS },
  },
};

/** The writer of `format` in `family`, or null when that stack has no such layout. */
export function writerOf(family: LayoutFamily, format: WrittenFormat): Writer | null {
  return WRITERS[family][format] ?? null;
}

/** The formats `family` writes, in the order the table lists them. */
export function formatsOf(family: LayoutFamily): WrittenFormat[] {
  return Object.keys(WRITERS[family]) as WrittenFormat[];
}

/**
 * Shape of the NVFP4 per-tensor scalar as each producer writes it: ModelOpt `.squeeze()`s
 * `weight_scale_2` to 0-dim (`modelopt/torch/export/unified_export_hf.py` `_export_quantized_weight`),
 * compressed-tensors' `generate_gparam` ends in `.reshape([1])` (`quantization/utils/helpers.py`).
 */
const TENSOR_SCALE_SHAPE: Readonly<Record<LayoutFamily, readonly number[]>> = {
  deepseek: [],
  "compressed-tensors": [1],
  modelopt: [],
  "gpt-oss": [],
  ascend: [],
};

/** A tensor to write: name, dtype, stored shape. */
export interface OutputTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
}

/**
 * The base the layout's suffixes attach to for a weight named `weightName`: the name without its
 * `.weight` (gpt-oss names its parameters without one, e.g. `experts.gate_up_proj`; the other
 * layouts read such a weight back as `experts.gate_up_proj.weight`, so a round trip keeps names).
 */
function baseOf(weightName: string): string {
  return weightName.endsWith(".weight") ? weightName.slice(0, -".weight".length) : weightName;
}

/**
 * The tensors `writer` stores for a weight of logical `shape`: the codes (packed two per byte for
 * FP4; gpt-oss as `[..., groups, 16]`), the block scales in `scaleDtype` over the layout's block,
 * and for NVFP4 the F32 per-tensor scalar.
 */
export function outputTensors(
  writer: Writer,
  weightName: string,
  shape: readonly number[],
  block: readonly [number, number],
  scaleDtype: Dtype,
): {
  data: OutputTensor;
  scale: OutputTensor;
  tensorScale: OutputTensor | null;
  /** Ascend's `weight_offset`: F32 zeros shaped as the scale (symmetric quantization). */
  zeros: OutputTensor | null;
  /** Ascend W4A8's `scale_bias`: F32 `[..., out, 1]` or `[..., out, 16]` (down projections). */
  aux: OutputTensor | null;
} {
  const r = writer.layout;
  const base = baseOf(weightName);
  const cols = shape[shape.length - 1];
  const lead = shape.slice(0, -1);
  const dataShape =
    r.packing === "byte"
      ? [...shape]
      : r.packing === "nibbles"
        ? [...lead, cols / 2]
        : r.packing === "rows"
          ? [...shape.slice(0, -2), shape[shape.length - 2] / 2, cols]
          : [...lead, cols / 32, 16];
  const [br, bc] = block;
  const scaleShape =
    shape.length === 1
      ? [Math.ceil(cols / bc)]
      : [...shape.slice(0, -2), Math.ceil(shape[shape.length - 2] / br), Math.ceil(cols / bc)];
  return {
    data: { name: `${base}${r.data}`, dtype: r.dataDtypes[0], shape: dataShape },
    scale: { name: `${base}${r.scale}`, dtype: scaleDtype, shape: scaleShape },
    tensorScale: r.tensorScale
      ? { name: `${base}${r.tensorScale.suffix}`, dtype: "F32", shape: [...TENSOR_SCALE_SHAPE[r.family]] }
      : null,
    zeros: r.auxiliary?.includes(".weight_offset")
      ? { name: `${base}.weight_offset`, dtype: "F32", shape: [...scaleShape] }
      : null,
    aux: r.auxiliary?.includes(".scale_bias")
      ? { name: `${base}.scale_bias`, dtype: "F32", shape: [...lead, scaleBiasChunks(weightName)] }
      : null,
  };
}

/**
 * The activation scale an NVFP4 weight of `writer` carries for W4A4 (ModelOpt `X.input_scale` =
 * amax/2688, compressed-tensors `X.input_global_scale` = its reciprocal,
 * `converters/modelopt_nvfp4.py`), shaped as the per-tensor scalar; null for other layouts.
 */
export function activationScaleTensor(writer: Writer, weightName: string): OutputTensor | null {
  const r = writer.layout;
  const suffix = r.auxiliary?.[0];
  if (r.format !== "nvfp4" || suffix === undefined) return null;
  return { name: `${baseOf(weightName)}${suffix}`, dtype: "F32", shape: [...TENSOR_SCALE_SHAPE[r.family]] };
}

/** The block a writer's scales cover when it does not come from the options (MX: 1x32, NVFP4: 1x16). */
export function fixedBlockOf(writer: Writer): [number, number] | null {
  const b = writer.layout.block;
  return typeof b === "function" ? null : [b[0], b[1]];
}

export { NVFP4_GROUP };
