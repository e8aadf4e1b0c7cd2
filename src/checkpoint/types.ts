/**
 * Shared types of the checkpoint layer: what a tensor looks like from its header, and what a
 * detected quantized layout says about each weight. No file I/O here; everything works from a
 * parsed `config.json` (or null) and the tensor list of the shard headers.
 */
import type { Dtype } from "../safetensors/index.js";

/** A tensor as the headers describe it (a `TensorInfo` or `CheckpointTensor` fits). */
export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
}

/**
 * The layouts `detectLayout` recognises:
 * - `unquantized`: BF16/F16/F32 weights only;
 * - `fp8-block`: DeepSeek / Hugging Face fine-grained FP8 (`X.weight` F8_E4M3 + `X.weight_scale_inv`,
 *   `quant_method: "fp8"`, `weight_block_size`, optional `scale_fmt: "ue8m0"`);
 * - `ct-fp8-block`: compressed-tensors FP8 block (`X.weight` F8_E4M3 + `X.weight_scale` in a float dtype);
 * - `ct-mxfp8`: compressed-tensors MXFP8 (`X.weight` F8_E4M3 + `X.weight_scale` U8 E8M0, groups of 32);
 * - `ct-mxfp4`: compressed-tensors MXFP4 (`X.weight_packed` U8 + `X.weight_scale` U8, groups of 32);
 * - `gpt-oss-mxfp4`: OpenAI gpt-oss (`X_blocks` U8 `[..., G, 16]` + `X_scales` U8 `[..., G]`).
 */
export type LayoutKind =
  | "unquantized"
  | "fp8-block"
  | "ct-fp8-block"
  | "ct-mxfp8"
  | "ct-mxfp4"
  | "gpt-oss-mxfp4";

/** Element formats of quantized weights (ml_dtypes spelling). */
export type ElementFormat = "float8_e4m3fn" | "float4_e2m1fn";

import type { ScaleStorage } from "../quant/scale-encoding.js";

export type { ScaleStorage };

/** Float scales (`float`) or power-of-two scales (`ue8m0`, DeepSeek-V3.1 / MX). */
export type ScaleFormat = "float" | "ue8m0";

/**
 * One quantized weight: the tensor holding element codes, the tensor holding its scales, and how to
 * read them. The dequantized value of element (r, c) of a matrix is `decode(code) * scale[r/br][c/bc]`
 * (every stack stores the multiplier: DeepSeek's `weight_scale_inv` is multiplied too).
 */
export interface QuantizedWeight {
  /** The name the weight has unquantized (`...proj.weight`; gpt-oss: `...experts.gate_up_proj`). */
  name: string;
  /** Tensor holding the codes. */
  data: string;
  /** Tensor holding the scales. */
  scale: string;
  element: ElementFormat;
  /** Two FP4 codes per byte, element 0 in the low nibble. */
  packed: boolean;
  /** Logical element shape (for packed data: elements, not bytes). */
  shape: number[];
  /** Block `[rows, cols]` one scale covers in the last two dimensions (MX: `[1, 32]`). */
  block: [number, number];
  scaleStorage: ScaleStorage;
  scaleDtype: Dtype;
  scaleShape: number[];
}

/** What kind of thing is wrong with a layout (stable: reports and lint key their findings on it). */
export type LayoutProblemCode =
  | "missing-scale"
  | "scale-dtype"
  | "scale-grid"
  | "orphan-scale"
  | "weight-dtype"
  | "weight-shape"
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
}
