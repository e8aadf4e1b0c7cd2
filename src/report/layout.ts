/**
 * Layout detection for the report layer: `src/checkpoint`'s `detectLayout` for the layouts it
 * knows (DeepSeek/HF block FP8, compressed-tensors FP8 block/MXFP8/MXFP4, gpt-oss MXFP4), with its
 * problems given the finding codes lint reports; and, for what it does not cover (NVIDIA ModelOpt,
 * compressed-tensors NVFP4, per-tensor FP8 scales, F4/E5M2 weights), the report's own pairing of
 * weights with scales (`detectExtended`).
 */

import { scaleStorageOf } from "../checkpoint/detect.js";
import { detectLayout } from "../checkpoint/index.js";
import type {
  DetectedLayout,
  LayoutKind,
  LayoutProblemCode,
  ScaleFormat,
  TensorEntry,
} from "../checkpoint/types.js";
import type { Dtype } from "../safetensors/index.js";

/** The layouts the report knows: `src/checkpoint`'s kinds plus ModelOpt, CT NVFP4, per-tensor FP8. */
export type ReportLayoutKind =
  | LayoutKind
  | "ct-nvfp4"
  | "modelopt-fp8"
  | "modelopt-nvfp4"
  | "modelopt-mxfp8"
  | "fp8-tensor"
  | "unknown";

/** Element formats of quantized weights (ml_dtypes spelling). */
export type WeightElement = "float8_e4m3fn" | "float8_e5m2" | "float4_e2m1fn";

/** How a quantized weight's scales are stored. */
export type WeightScaleStorage = import("../quant/scale-encoding.js").ScaleStorage;

/** One quantized weight (see `QuantizedWeight` in src/checkpoint/types.ts; extended for NVFP4). */
export interface ReportQuantizedWeight {
  /** Name of the weight unquantized (`...proj.weight`; gpt-oss: `...experts.gate_up_proj`). */
  name: string;
  /** Tensor holding the codes. */
  data: string;
  /** Tensor holding the block scales. */
  scale: string;
  element: WeightElement;
  /** Two FP4 codes per byte. */
  packed: boolean;
  /** Logical element shape. */
  shape: number[];
  /** Block `[rows, cols]` one scale covers in the last two dimensions. */
  block: [number, number];
  scaleStorage: WeightScaleStorage;
  scaleDtype: Dtype;
  scaleShape: number[];
  /** NVFP4 per-tensor scale tensor, when there is one. */
  globalScale: string | null;
}

/** Something wrong in how tensors pair up. */
export interface ReportLayoutProblem {
  code:
    | "missing-scale"
    | "duplicate-scale"
    | "orphan-scale"
    | "scale-grid"
    | "scale-dtype"
    | "config-mismatch";
  tensor: string;
  message: string;
  fix: string;
}

/** What detection found. */
export interface ReportLayout {
  kind: ReportLayoutKind;
  label: string;
  scaleFmt: ScaleFormat | null;
  block: [number, number] | null;
  quantized: ReportQuantizedWeight[];
  problems: ReportLayoutProblem[];
  /** `quantization_config.quant_method` (or ModelOpt's `quant_algo`), when declared. */
  declared: string | null;
}

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
];

/** True for tensors that hold scales (not parameters): `weight_scale(_inv)`, `_scales`, F8_E8M0... */
export function isScaleTensor(t: TensorEntry): boolean {
  if (t.dtype === "F8_E8M0") return true;
  if (t.name.endsWith("_scales")) return true;
  return SCALE_SUFFIXES.some((s) => t.name.endsWith(s));
}

function obj(v: unknown): Record<string, unknown> | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** The `quantization_config` of a config.json (or null). */
export function quantizationConfig(config: Record<string, unknown> | null): Record<string, unknown> | null {
  return obj(config?.quantization_config);
}

function blockSizeOf(qc: Record<string, unknown> | null): [number, number] | null {
  const b = qc?.weight_block_size;
  if (Array.isArray(b) && b.length === 2 && b.every((x) => Number.isSafeInteger(x) && (x as number) > 0)) {
    return [b[0] as number, b[1] as number];
  }
  // compressed-tensors: config_groups.*.weights.block_structure
  const groups = obj(qc?.config_groups);
  for (const g of Object.values(groups ?? {})) {
    const bs = obj(obj(g)?.weights)?.block_structure;
    if (
      Array.isArray(bs) &&
      bs.length === 2 &&
      bs.every((x) => Number.isSafeInteger(x) && (x as number) > 0)
    ) {
      return [bs[0] as number, bs[1] as number];
    }
  }
  return null;
}

/** The checkpoint layer's scale storage, plus NVFP4's E4M3 block scales. */
function storageOf(dtype: Dtype): WeightScaleStorage | null {
  return dtype === "F8_E4M3" ? "e4m3" : scaleStorageOf(dtype);
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Expected scale shape for a weight of logical shape `shape` and block `[br, bc]`. */
export function expectedScaleShape(shape: readonly number[], block: readonly [number, number]): number[] {
  if (shape.length < 2) return [Math.ceil((shape[0] ?? 1) / block[1])];
  const lead = shape.slice(0, -2);
  const r = shape[shape.length - 2];
  const c = shape[shape.length - 1];
  return [...lead, Math.ceil(r / block[0]), Math.ceil(c / block[1])];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Detects the quantized layout of a checkpoint from its config.json (or null), ModelOpt's
 * hf_quant_config.json (or null) and the tensor headers: which tensors hold codes, which hold
 * their scales, block size and scale storage, and what does not pair up.
 */
export function detectReportLayout(
  config: Record<string, unknown> | null,
  hfQuantConfig: Record<string, unknown> | null,
  tensors: readonly TensorEntry[],
): ReportLayout {
  if (needsExtended(hfQuantConfig, tensors)) return detectExtended(config, hfQuantConfig, tensors);
  return fromCheckpointLayer(detectLayout(config, tensors), config, tensors);
}

/** Layouts only the report's own detector knows: ModelOpt, NVFP4 (E4M3 scales), per-tensor scales, F4/E5M2. */
function needsExtended(
  hfQuantConfig: Record<string, unknown> | null,
  tensors: readonly TensorEntry[],
): boolean {
  if (obj(hfQuantConfig?.quantization)) return true;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const t of tensors) {
    if (t.name.endsWith(".weight_scale") && (t.dtype === "F8_E4M3" || prod(t.shape) === 1)) {
      const w =
        byName.get(t.name.slice(0, -"_scale".length)) ??
        byName.get(`${t.name.slice(0, -"_scale".length)}_packed`);
      if (w) return true;
    }
    if (t.name.endsWith(".weight") && (t.dtype === "F4" || t.dtype === "F8_E5M2")) return true;
  }
  return false;
}

/** The report's finding code for a layout problem of the checkpoint layer. */
function codeOf(code: LayoutProblemCode): ReportLayoutProblem["code"] {
  switch (code) {
    case "missing-scale":
    case "scale-grid":
    case "orphan-scale":
    case "scale-dtype":
    case "config-mismatch":
      return code;
    case "weight-dtype":
      return "scale-dtype";
    case "weight-shape":
    case "mixed-layouts":
      return "config-mismatch";
    default:
      return code satisfies never;
  }
}

const FIXES: Record<ReportLayoutProblem["code"], string> = {
  "missing-scale": "restore the scale tensor from the source checkpoint, or dequantize the weight",
  "duplicate-scale": "keep one scale tensor per weight",
  "orphan-scale": "delete the scale, or restore the quantized weight it belongs to",
  "scale-grid":
    "requantize the weight with the configured block size, or fix weight_block_size in config.json",
  "scale-dtype": "store scales as F32 (block FP8) or U8/F8_E8M0 (MX)",
  "config-mismatch": "make quantization_config describe the tensors (or requantize them)",
};

/** A `DetectedLayout` from src/checkpoint, in the report's terms, plus duplicate/orphan `weight_scale` checks. */
function fromCheckpointLayer(
  d: DetectedLayout,
  config: Record<string, unknown> | null,
  tensors: readonly TensorEntry[],
): ReportLayout {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const problems: ReportLayoutProblem[] = d.problems.map((p) => {
    const code = codeOf(p.code);
    const scale = code === "missing-scale" ? p.related : undefined;
    const fix = scale ? `restore ${scale} from the source checkpoint, or dequantize the weight` : FIXES[code];
    return { code, tensor: p.tensor, message: p.message, fix };
  });
  const used = new Set<string>();
  for (const q of d.quantized) {
    used.add(q.data);
    used.add(q.scale);
    const other = q.scale.endsWith("_inv") ? q.scale.slice(0, -"_inv".length) : `${q.scale}_inv`;
    if (byName.has(other)) {
      used.add(other);
      problems.push({
        code: "duplicate-scale",
        tensor: q.data,
        message: `has two scale tensors: ${q.scale} and ${other}`,
        fix: `keep ${q.scale} and delete ${other}`,
      });
    }
  }
  for (const p of d.problems) used.add(p.tensor);
  for (const t of tensors) {
    if (used.has(t.name) || !t.name.endsWith(".weight_scale") || prod(t.shape) <= 1) continue;
    if (!byName.has(t.name.slice(0, -"_scale".length))) {
      problems.push({
        code: "orphan-scale",
        tensor: t.name,
        message: "scale tensor without a quantized weight",
        fix: FIXES["orphan-scale"],
      });
    }
  }
  const qc = quantizationConfig(config);
  const method = typeof qc?.quant_method === "string" ? qc.quant_method : null;
  return {
    kind: d.kind,
    label: labelOf(
      d.kind,
      d.block,
      d.scaleFmt,
      d.quantized[0]?.scaleDtype ?? null,
      typeof qc?.format === "string" ? qc.format : null,
    ),
    scaleFmt: d.scaleFmt,
    block: d.block,
    quantized: d.quantized.map((q) => ({ ...q, block: [...q.block] as [number, number], globalScale: null })),
    problems,
    declared: method,
  };
}

/**
 * The report's own detector for what src/checkpoint does not cover; also handles the shared kinds
 * the same way when a checkpoint mixes them with ModelOpt/NVFP4 tensors.
 */
function detectExtended(
  config: Record<string, unknown> | null,
  hfQuantConfig: Record<string, unknown> | null,
  tensors: readonly TensorEntry[],
): ReportLayout {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const qc = quantizationConfig(config);
  const method = typeof qc?.quant_method === "string" ? qc.quant_method : null;
  const modelopt = obj(hfQuantConfig?.quantization);
  const algo = typeof modelopt?.quant_algo === "string" ? modelopt.quant_algo : null;
  const ctFormat = typeof qc?.format === "string" ? qc.format : null;
  const declaredBlock = blockSizeOf(qc);
  const quantized: ReportQuantizedWeight[] = [];
  const problems: ReportLayoutProblem[] = [];
  const usedScales = new Set<string>();
  const kinds = new Map<ReportLayoutKind, number>();
  const bump = (k: ReportLayoutKind) => kinds.set(k, (kinds.get(k) ?? 0) + 1);

  for (const t of tensors) {
    let base: string | null = null;
    let element: WeightElement | null = null;
    let packed = false;
    let shape = [...t.shape];
    let candidates: string[] = [];
    if (t.name.endsWith(".weight") && (t.dtype === "F8_E4M3" || t.dtype === "F8_E5M2")) {
      base = t.name.slice(0, -".weight".length);
      element = t.dtype === "F8_E4M3" ? "float8_e4m3fn" : "float8_e5m2";
      candidates = [`${base}.weight_scale_inv`, `${base}.weight_scale`];
    } else if (t.name.endsWith(".weight_packed") && (t.dtype === "U8" || t.dtype === "I8")) {
      base = t.name.slice(0, -".weight_packed".length);
      element = "float4_e2m1fn";
      packed = true;
      shape = [...shape.slice(0, -1), (shape[shape.length - 1] ?? 0) * 2];
      candidates = [`${base}.weight_scale`];
    } else if (
      t.name.endsWith(".weight") &&
      t.dtype === "U8" &&
      byName.get(`${t.name}_scale`)?.dtype === "F8_E4M3"
    ) {
      base = t.name.slice(0, -".weight".length);
      element = "float4_e2m1fn";
      packed = true;
      shape = [...shape.slice(0, -1), (shape[shape.length - 1] ?? 0) * 2];
      candidates = [`${base}.weight_scale`];
    } else if (t.name.endsWith(".weight") && t.dtype === "F4") {
      base = t.name.slice(0, -".weight".length);
      element = "float4_e2m1fn";
      candidates = [`${base}.weight_scale`, `${base}.weight_scale_inv`];
    } else if (t.name.endsWith("_blocks") && t.dtype === "U8" && t.shape.length >= 2) {
      base = t.name.slice(0, -"_blocks".length);
      element = "float4_e2m1fn";
      packed = true;
      const g = t.shape[t.shape.length - 2];
      const b = t.shape[t.shape.length - 1];
      shape = [...t.shape.slice(0, -2), g * b * 2];
      candidates = [`${base}_scales`];
    }
    if (base === null || element === null) continue;
    const present = candidates.filter((c) => byName.has(c));
    const wname = t.name.endsWith("_blocks") ? base : `${base}.weight`;
    if (present.length === 0) {
      problems.push({
        code: "missing-scale",
        tensor: t.name,
        message: `quantized ${t.dtype} weight has no scale tensor (${candidates.join(" or ")})`,
        fix: `restore ${candidates[0]} or dequantize ${t.name}`,
      });
      continue;
    }
    if (present.length > 1) {
      problems.push({
        code: "duplicate-scale",
        tensor: t.name,
        message: `has two scale tensors: ${present.join(" and ")}`,
        fix: `keep one of ${present.join(", ")}`,
      });
    }
    const sname = present[0];
    usedScales.add(sname);
    const s = byName.get(sname)!;
    const storage = storageOf(s.dtype);
    if (storage === null) {
      problems.push({
        code: "scale-dtype",
        tensor: sname,
        message: `scale dtype ${s.dtype} is not a scale dtype (F32, BF16, F16, U8, F8_E8M0, F8_E4M3)`,
        fix: "store scales as F32 (block FP8) or U8/F8_E8M0 (MX)",
      });
      continue;
    }
    let kind: ReportLayoutKind;
    let block: [number, number];
    const rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
    const cols = shape[shape.length - 1] ?? 1;
    const globalName = byName.has(`${base}.weight_scale_2`)
      ? `${base}.weight_scale_2`
      : byName.has(`${base}.weight_global_scale`)
        ? `${base}.weight_global_scale`
        : null;
    if (globalName) usedScales.add(globalName);
    if (element === "float4_e2m1fn") {
      if (storage === "e4m3") {
        block = [1, 16];
        kind = t.name.endsWith(".weight_packed") ? "ct-nvfp4" : "modelopt-nvfp4";
      } else {
        block = [1, 32];
        kind = t.name.endsWith("_blocks") ? "gpt-oss-mxfp4" : "ct-mxfp4";
      }
    } else if (prod(s.shape) === 1) {
      block = [rows, cols];
      kind = algo ? "modelopt-fp8" : "fp8-tensor";
    } else if (storage === "ue8m0") {
      block = [1, 32];
      kind = algo || method === "modelopt" ? "modelopt-mxfp8" : "ct-mxfp8";
    } else {
      block = declaredBlock ?? [128, 128];
      kind = sname.endsWith("_inv")
        ? "fp8-block"
        : method === "compressed-tensors"
          ? "ct-fp8-block"
          : "fp8-block";
    }
    bump(kind);
    const want =
      kind === "fp8-tensor" || kind === "modelopt-fp8" ? s.shape : expectedScaleShape(shape, block);
    if (t.name.endsWith("_blocks")) {
      // gpt-oss scales drop the trailing 16-byte dimension: [..., G].
      const g = t.shape.slice(0, -1);
      if (!sameShape(s.shape, g)) {
        problems.push({
          code: "scale-grid",
          tensor: sname,
          message: `scale shape [${s.shape}] does not match blocks [${t.shape}] (expected [${g}])`,
          fix: `rewrite ${sname} with shape [${g}]`,
        });
      }
    } else if (!sameShape(s.shape, want)) {
      problems.push({
        code: "scale-grid",
        tensor: sname,
        message: `scale shape [${s.shape}] does not match weight [${shape}] with block ${block[0]}x${block[1]} (expected [${want}])`,
        fix: `requantize ${t.name} with weight_block_size [${block}] or fix weight_block_size in config.json`,
      });
    }
    quantized.push({
      name: wname,
      data: t.name,
      scale: sname,
      element,
      packed,
      shape,
      block,
      scaleStorage: storage,
      scaleDtype: s.dtype,
      scaleShape: [...s.shape],
      globalScale: globalName,
    });
  }

  for (const t of tensors) {
    if (usedScales.has(t.name)) continue;
    const isBlockScale =
      t.name.endsWith(".weight_scale_inv") ||
      (t.name.endsWith(".weight_scale") && t.shape.length > 0 && prod(t.shape) > 1) ||
      (t.name.endsWith("_scales") && byName.has(`${t.name.slice(0, -"_scales".length)}_blocks`) === false);
    if (isBlockScale) {
      problems.push({
        code: "orphan-scale",
        tensor: t.name,
        message: "scale tensor without a quantized weight to go with it",
        fix: "delete it, or restore the quantized weight it belongs to",
      });
    }
  }

  let kind: ReportLayoutKind = "unquantized";
  let best = 0;
  for (const [k, n] of kinds) {
    if (n > best) {
      kind = k;
      best = n;
    }
  }
  if (quantized.length === 0 && (method !== null || algo !== null)) kind = "unknown";
  const block = quantized.length > 0 ? quantized.find((q) => q.block !== null)!.block : null;
  const scaleFmt: ScaleFormat | null =
    quantized.length === 0
      ? null
      : kind === "fp8-block" || kind === "ct-fp8-block"
        ? qc?.scale_fmt === "ue8m0"
          ? "ue8m0"
          : "float"
        : quantized[0].scaleStorage === "ue8m0"
          ? "ue8m0"
          : "float";
  const declared = algo ?? method;
  return {
    kind,
    label: labelOf(kind, block, scaleFmt, quantized[0]?.scaleDtype ?? null, ctFormat),
    scaleFmt,
    block: kind === "fp8-tensor" || kind === "modelopt-fp8" ? null : block,
    quantized,
    problems,
    declared,
  };
}

function labelOf(
  kind: ReportLayoutKind,
  block: [number, number] | null,
  scaleFmt: ScaleFormat | null,
  scaleDtype: Dtype | null,
  ctFormat: string | null,
): string {
  const b = block ? `${block[0]}x${block[1]}` : "";
  switch (kind) {
    case "unquantized":
      return "unquantized";
    case "fp8-block":
      return `DeepSeek/HF block FP8 (${b}, ${scaleFmt === "ue8m0" ? "UE8M0" : "float"} scales, ${scaleDtype})`;
    case "ct-fp8-block":
      return `compressed-tensors FP8 block (${b}, ${scaleDtype} scales${ctFormat ? `, format ${ctFormat}` : ""})`;
    case "ct-mxfp8":
      return "compressed-tensors MXFP8 (E4M3, E8M0 scale per 32)";
    case "ct-mxfp4":
      return "compressed-tensors MXFP4 (E2M1 packed, E8M0 scale per 32)";
    case "ct-nvfp4":
      return "compressed-tensors NVFP4 (E2M1 packed, E4M3 scale per 16, F32 global)";
    case "gpt-oss-mxfp4":
      return "gpt-oss MXFP4 (_blocks/_scales, E8M0 scale per 32)";
    case "modelopt-fp8":
      return "NVIDIA ModelOpt FP8 (per-tensor scales)";
    case "modelopt-nvfp4":
      return "NVIDIA ModelOpt NVFP4 (E4M3 scale per 16, weight_scale_2)";
    case "modelopt-mxfp8":
      return "NVIDIA ModelOpt MXFP8 (E8M0 scale per 32)";
    case "fp8-tensor":
      return "FP8 with per-tensor scales";
    case "unknown":
      return "declared quantized, but no quantized tensors recognised";
    default:
      return kind satisfies never;
  }
}
