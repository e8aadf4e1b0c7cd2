/**
 * The report's view of a checkpoint's layout: the checkpoint layer's detection (`detectLayout`,
 * the one detector), with every layout problem given the finding code lint reports and a one-line
 * fix. The report knows nothing about layouts beyond this mapping.
 */
import {
  type DetectedLayout,
  detectLayout,
  type LayoutKind,
  type LayoutProblemCode,
  type QuantizedWeight,
  type TensorEntry,
} from "../checkpoint/index.js";

/** The layout kinds (the checkpoint layer's). */
export type ReportLayoutKind = LayoutKind;

/** One quantized weight (the checkpoint layer's). */
export type ReportQuantizedWeight = QuantizedWeight;

/** A layout problem as a finding: a stable code, the tensor, what is wrong and how to fix it. */
export interface ReportLayoutProblem {
  code: LayoutProblemCode;
  tensor: string;
  message: string;
  fix: string;
}

/** What detection found, problems with fixes. */
export type ReportLayout = Omit<DetectedLayout, "problems"> & { problems: ReportLayoutProblem[] };

const SCALE_SUFFIXES = [
  ".weight_scale_inv",
  ".weight_scale_2",
  ".weight_scale",
  ".weight_global_scale",
  ".input_global_scale",
  ".input_scale",
  ".k_scale",
  ".v_scale",
  ".q_scale",
  ".weight_zero_point",
  ".input_zero_point",
  // Ascend (msModelSlim): the zero point and W4A8's bias term beside `weight_scale`.
  ".weight_offset",
  ".scale_bias",
];

/** True for tensors that hold scales (not parameters): `weight_scale(_inv)`, `_scales`, F8_E8M0... */
export function isScaleTensor(t: TensorEntry): boolean {
  if (t.dtype === "F8_E8M0") return true;
  if (t.name.endsWith("_scales")) return true;
  return SCALE_SUFFIXES.some((s) => t.name.endsWith(s));
}

const FIXES: Record<LayoutProblemCode, (related?: string) => string> = {
  "missing-scale": (s) =>
    `restore ${s ?? "the scale tensor"} from the source checkpoint, or dequantize the weight`,
  "duplicate-scale": (s) => `keep one scale tensor per weight${s ? ` (delete ${s})` : ""}`,
  "orphan-scale": () => "delete the scale, or restore the quantized weight it belongs to",
  "scale-grid": () =>
    "requantize the weight with the configured block size, or fix weight_block_size in config.json",
  "scale-dtype": () => "store scales as F32 (block FP8), U8/F8_E8M0 (MX) or F8_E4M3 (NVFP4)",
  "weight-shape": () => "restore the weight from the source checkpoint",
  "mixed-layouts": () => "use one quantized layout for the whole checkpoint (or dequantize to BF16)",
  "config-mismatch": () => "make quantization_config describe the tensors (or requantize them)",
};

/**
 * Detects the layout of a checkpoint from its config.json (or null), ModelOpt's
 * hf_quant_config.json (or null), the tensor headers and Ascend's quant_model_description.json
 * (or null), with a fix for every problem.
 */
export function detectReportLayout(
  config: Record<string, unknown> | null,
  hfQuantConfig: Record<string, unknown> | null,
  tensors: readonly TensorEntry[],
  ascendDescription: unknown = null,
): ReportLayout {
  const { problems, ...d } = detectLayout(config, tensors, hfQuantConfig, ascendDescription);
  return {
    ...d,
    problems: problems.map((p) => ({
      code: p.code,
      tensor: p.tensor,
      message: p.message,
      fix: FIXES[p.code](p.related),
    })),
  };
}
