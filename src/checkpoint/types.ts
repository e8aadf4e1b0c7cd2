/**
 * Shared types of the checkpoint layer: what a tensor looks like from its header, and what a
 * detected quantized layout says about each weight. No file I/O here; everything works from a
 * parsed `config.json` (or null) and the tensor list of the shard headers.
 */

import type { SourceElement } from "../quant/kernels/types.js";
import type { ScaleStorage } from "../quant/scale-encoding.js";
import type { Dtype } from "../safetensors/index.js";

export type { ScaleStorage };

/** A tensor as the headers describe it (a `TensorInfo` or `CheckpointTensor` fits). */
export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
}

/**
 * The layouts `detectLayout` recognises (one recognizer file each under `layouts/`):
 * - `unquantized`: no quantized weights;
 * - `fp8-block`: DeepSeek / Hugging Face fine-grained FP8 (`X.weight` F8_E4M3 + `X.weight_scale_inv`);
 * - `ct-fp8-block`, `ct-mxfp8`, `ct-mxfp4`, `ct-nvfp4`: compressed-tensors FP8 block, MXFP8, MXFP4, NVFP4;
 * - `modelopt-fp8`, `modelopt-mxfp8`, `modelopt-nvfp4`: NVIDIA ModelOpt (`hf_quant_config.json`);
 * - `gpt-oss-mxfp4`: OpenAI gpt-oss (`X_blocks` + `X_scales`);
 * - `fp8-tensor`: FP8 weights with one scale per tensor (`X.weight_scale` scalar), no ModelOpt config;
 * - `unknown`: the config declares quantization but no quantized tensor was recognised.
 */
export type LayoutKind =
  | "unquantized"
  | "fp8-block"
  | "ct-fp8-block"
  | "ct-mxfp8"
  | "ct-mxfp4"
  | "ct-nvfp4"
  | "gpt-oss-mxfp4"
  | "modelopt-fp8"
  | "modelopt-mxfp8"
  | "modelopt-nvfp4"
  | "fp8-tensor"
  | "ascend-w8a8"
  | "ascend-w4a8"
  | "ascend-mxfp8"
  | "unknown";

/** Element formats of quantized weights (ml_dtypes spelling). */
export type ElementFormat = SourceElement | "int8" | "int4";

/** Float scales (`float`) or power-of-two scales (`ue8m0`, DeepSeek-V3.1 / MX). */
export type ScaleFormat = "float" | "ue8m0";

/**
 * One quantized weight: the tensor holding element codes, the tensor holding its scales, and how to
 * read them. The dequantized value of element (r, c) of a matrix is `decode(code) * scale[r/br][c/bc]`
 * (every stack stores the multiplier: DeepSeek's `weight_scale_inv` is multiplied too), with the
 * block scale first combined with the per-tensor scalar when there is one (NVFP4).
 */
export interface QuantizedWeight {
  /** The layout this weight belongs to (a checkpoint may mix them; see `mixed-layouts`). */
  layout: LayoutKind;
  /** The name the weight has unquantized (`...proj.weight`; gpt-oss: `...experts.gate_up_proj`). */
  name: string;
  /** Tensor holding the codes. */
  data: string;
  /** Tensor holding the scales (for `granularity: "tensor"`, the scalar). */
  scale: string;
  element: ElementFormat;
  /** Two FP4 codes per byte, element 0 in the low nibble. */
  packed: boolean;
  /** Logical element shape (for packed data: elements, not bytes). */
  shape: number[];
  /** `block`: one scale per `block`; `tensor`: one scale for the whole tensor. */
  granularity: "block" | "tensor";
  /** Block `[rows, cols]` one scale covers in the last two dimensions (MX: `[1, 32]`; per tensor: the matrix). */
  block: [number, number];
  scaleStorage: ScaleStorage;
  scaleDtype: Dtype;
  scaleShape: number[];
  /** NVFP4's per-tensor scalar combined with every block scale (`weight_scale_2` or `weight_global_scale`). */
  tensorScale: { name: string; mode: "multiply" | "divide" } | null;
  /** Activation-side tensors of the same layer (`input_scale`, ...): meaningless once the weight is rewritten. */
  auxiliary: string[];
}

/** What kind of thing is wrong with a layout (stable: reports and lint key their findings on it). */
export type LayoutProblemCode =
  | "missing-scale"
  | "scale-dtype"
  | "scale-grid"
  | "orphan-scale"
  | "weight-shape"
  | "duplicate-scale"
  | "mixed-layouts"
  | "config-mismatch";

/** Something wrong with a layout: the tensor it concerns, what is wrong, and a related tensor. */
export interface LayoutProblem {
  code: LayoutProblemCode;
  tensor: string;
  message: string;
  /** The other tensor involved (the missing scale's name, the weight a scale belongs to). */
  related?: string;
}

/** What `detectLayout` found. */
export interface DetectedLayout {
  kind: LayoutKind;
  /** A one-line human description, e.g. "DeepSeek/HF block FP8 (128x128, ue8m0 scales)". */
  label: string;
  /** Scale format when the layout is quantized (for `fp8-block`: from `quantization_config.scale_fmt`). */
  scaleFmt: ScaleFormat | null;
  /** The block size of the layout (`weight_block_size`, `[1, 32]` for MX), null when unquantized. */
  block: [number, number] | null;
  /** Quantized weights in tensor-list order. */
  quantized: QuantizedWeight[];
  /** Every tensor that is neither codes nor scales of a quantized weight. */
  plain: TensorEntry[];
  /** Inconsistencies (missing scale, scale grid mismatch, ...); empty when the layout is sound. */
  problems: LayoutProblem[];
  /** `quantization_config.quant_method`, or ModelOpt's `quant_algo`, when declared. */
  declared: string | null;
}
