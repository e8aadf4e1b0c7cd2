/**
 * A layout family as data: which tensor holds the codes, which holds the scales, in which dtypes,
 * where the block comes from, and what `convert` may do with it. `detect.ts` runs the recognizers
 * in `index.ts`'s order; the first that claims a tensor owns it.
 */
import { WHOLE_ROW } from "../../quant/kernels/types.js";
import type { ScaleStorage } from "../../quant/scale-encoding.js";
import type { Dtype } from "../../safetensors/index.js";
import type { LayoutKind, ScaleFormat, TensorEntry } from "../types.js";

/** What the recognizers may consult besides the tensor itself. */
export interface LayoutContext {
  /** `config.json`'s `quantization_config`, or null. */
  qc: Record<string, unknown> | null;
  /** `quantization_config.quant_method`, or null. */
  method: string | null;
  /** ModelOpt's `quant_algo` (from `hf_quant_config.json` or `quantization_config`), or null. */
  modelopt: string | null;
  byName: ReadonlyMap<string, TensorEntry>;
  /** Ascend's `quant_model_description.json` (tensor name -> quantization type), or null. */
  ascend: Record<string, unknown> | null;
}

/** How the code bytes hold the elements. */
export type Packing =
  /** One code per byte (FP8). */
  | "byte"
  /** Two FP4 codes per U8 byte along the last dimension, element 0 in the low nibble (F4 tensors are already logical). */
  | "nibbles"
  /** gpt-oss: U8 `[..., G, 16]`, 32 FP4 codes per group of 16 bytes. */
  | "gpt-oss"
  /** Ascend W4A8: two INT4 codes per I8 byte along the rows (`[out / 2, in]`), row 2j in the low nibble. */
  | "rows";

/** The stacks whose on-disk dialects fp8kit reads and writes (`convert --layout`). */
export type LayoutFamily = "deepseek" | "compressed-tensors" | "modelopt" | "gpt-oss" | "ascend";

/**
 * What a layout's quantized weights hold, whatever the dialect: block FP8 (`fp8`), FP8 with one
 * scale per tensor (`fp8-tensor`), MXFP8, MXFP4 (E8M0 per 32) or NVFP4 (E4M3 per 16 and a per-tensor
 * scalar), or Ascend's per-channel INT8 (`w8a8`) and INT4 (`w4a8`). Two layouts with the same format
 * hold the same kind of bits.
 */
export type LayoutFormat = "fp8" | "fp8-tensor" | "mxfp8" | "mxfp4" | "nvfp4" | "w8a8" | "w4a8";

export interface Recognizer {
  kind: LayoutKind;
  /** The stack whose dialect this is. */
  family: LayoutFamily;
  /** What its weights hold. */
  format: LayoutFormat;
  /** The family's name in messages ("compressed-tensors NVFP4"). */
  title: string;
  /** Suffix of the tensor holding the codes (`.weight`, `.weight_packed`, `_blocks`). */
  data: string;
  dataDtypes: readonly Dtype[];
  /** Suffix of its scale tensor, replacing `data`. */
  scale: string;
  /** Scale dtypes this layout uses and how each stores scales; another dtype is a `scale-dtype` problem. */
  scaleDtypes: Readonly<Partial<Record<Dtype, ScaleStorage>>>;
  /** Whether this recognizer owns the tensor (declared config, the scale's dtype or count). */
  claims: (ctx: LayoutContext, base: string, scale: TensorEntry | undefined) => boolean;
  /** `block`: one scale per block; `tensor`: one scalar scale for the whole tensor. */
  granularity: "block" | "tensor";
  /** The block one scale covers, fixed or read from the config. */
  block: readonly [number, number] | ((ctx: LayoutContext) => [number, number]);
  packing: Packing;
  /** NVFP4's per-tensor scalar next to the block scales: its suffix and how it combines. */
  tensorScale?: { suffix: string; mode: "multiply" | "divide" };
  /** Activation-side tensors of the same layer, dropped when the weight is rewritten. */
  auxiliary?: readonly string[];
  /** The name the weight has unquantized, from the base (default `${base}.weight`). */
  weightName?: (base: string) => string;
  /** Scale format of the whole layout (DeepSeek reads `scale_fmt`; others follow the storage). */
  scaleFmt?: (ctx: LayoutContext) => ScaleFormat;
  /** What the label says after the title: block, scales (`title (details, N quantized weights)`). */
  details: (d: {
    block: [number, number] | null;
    scaleFmt: ScaleFormat | null;
    scaleDtype: Dtype | null;
    ctx: LayoutContext;
  }) => string;
}

/** A recognizer's description, with the common case left out: FP8 `.weight` codes, one byte each, a `.weight_scale` per block, any target. */
export type RecognizerSpec = Pick<
  Recognizer,
  "kind" | "family" | "format" | "title" | "scaleDtypes" | "block" | "details"
> &
  Partial<Omit<Recognizer, "kind" | "family" | "format" | "title" | "scaleDtypes" | "block" | "details">>;

/** A recognizer from its spec, defaults filled in. */
export function recognizer(spec: RecognizerSpec): Recognizer {
  return {
    data: ".weight",
    dataDtypes: ["F8_E4M3"],
    scale: ".weight_scale",
    claims: () => true,
    granularity: "block",
    packing: "byte",
    ...spec,
  };
}

/** The unit every MX format groups elements in (OCP MX v1.0: 32 elements share one E8M0 scale). */
export const MX_GROUP = 32;
/** NVFP4's group: 16 E2M1 elements share one E4M3 scale (NVIDIA Blackwell NVFP4). */
export const NVFP4_GROUP = 16;
/** DeepSeek-V3's `weight_block_size` and the default of every block-FP8 stack. */
export const DEFAULT_FP8_BLOCK: [number, number] = [128, 128];

/** E8M0 scale bytes: compressed-tensors and gpt-oss write `U8`, DeepSeek-V3.1 and newer tools `F8_E8M0`. */
export const E8M0_SCALES = { U8: "ue8m0", F8_E8M0: "ue8m0" } as const;
/** Float scale dtypes: the multiplier in F32, or in the weight's original dtype (compressed-tensors). */
export const FLOAT_SCALES = { F32: "f32", BF16: "bf16", F16: "f16" } as const;

export function obj(x: unknown): Record<string, unknown> | null {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}

/** `[r, c]` when `x` is two positive integers. */
export function blockFrom(x: unknown): [number, number] | null {
  if (Array.isArray(x) && x.length === 2 && x.every((n) => Number.isSafeInteger(n) && n > 0)) {
    return [x[0] as number, x[1] as number];
  }
  return null;
}

/** A block as people read it: `128x128`, `1x32`, or `1xrow` for one scale per row (Ascend's channels). */
export function blockLabel(block: readonly [number, number]): string {
  return `${block[0]}x${block[1] === WHOLE_ROW ? "row" : block[1]}`;
}

/** Element count of a shape (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when the layer's scale is present and is a single value (per-tensor scaling). */
export const isScalar = (s: TensorEntry | undefined): boolean => s !== undefined && numel(s.shape) === 1;

/** U8 or F8_E8M0 scale bytes (MX). */
export const hasE8m0Scale = (s: TensorEntry | undefined): boolean =>
  s?.dtype === "U8" || s?.dtype === "F8_E8M0";

/**
 * NVFP4 (NVIDIA Blackwell): E2M1 codes two per byte, one E4M3 scale per 16 elements, and a per-tensor
 * F32 scalar combined with every block scale. ModelOpt and compressed-tensors differ only in names
 * and in whether the scalar multiplies or divides.
 */
export function nvfp4(
  spec: Pick<
    Recognizer,
    "kind" | "family" | "title" | "data" | "dataDtypes" | "tensorScale" | "auxiliary" | "details"
  >,
): Recognizer {
  return recognizer({
    ...spec,
    format: "nvfp4",
    scaleDtypes: { F8_E4M3: "e4m3" },
    claims: (_ctx, _base, scale) => scale?.dtype === "F8_E4M3",
    block: [1, NVFP4_GROUP],
    packing: "nibbles",
  });
}

/** MXFP8 (OCP MX): E4M3 codes, one E8M0 byte per 32 elements, as compressed-tensors and ModelOpt write it. */
export function mxfp8(
  spec: Pick<Recognizer, "kind" | "family" | "title"> & Partial<Pick<Recognizer, "claims" | "auxiliary">>,
): Recognizer {
  return recognizer({
    format: "mxfp8",
    claims: (_ctx, _base, scale) => hasE8m0Scale(scale),
    ...spec,
    scaleDtypes: E8M0_SCALES,
    block: [1, MX_GROUP],
    details: () => "E4M3, E8M0 scale per 32",
  });
}

/** FP8 (E4M3 or E5M2) with one scalar scale per tensor: `decode(code) * weight_scale`. */
export function perTensor(
  spec: Pick<Recognizer, "kind" | "family" | "title" | "claims" | "details">,
): Recognizer {
  return recognizer({
    ...spec,
    format: "fp8-tensor",
    dataDtypes: ["F8_E4M3", "F8_E5M2"],
    scaleDtypes: FLOAT_SCALES,
    granularity: "tensor",
    block: [1, 1],
    auxiliary: [".input_scale"],
  });
}
