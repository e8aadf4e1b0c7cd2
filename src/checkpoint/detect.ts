/**
 * Layout detection: from a parsed `config.json` (or null), ModelOpt's `hf_quant_config.json` (or
 * null) and the tensor list, say which quantized layout a checkpoint uses and pair every quantized
 * weight with its scale tensor. Pure function, no I/O; inconsistencies are returned as `problems`,
 * never thrown, so `lint` can list them all and `convert` can refuse the first.
 *
 *   detectLayout(config, tensors, hfQuantConfig?, ascendDescription?) -> DetectedLayout
 *
 * The families are data (`layouts/*.ts`, tried in `layouts/index.ts`'s order); this file only pairs
 * tensors, checks scale grids and finds what is left over (orphan and duplicate scales).
 */
import { type Dtype, formatOfDtype } from "../safetensors/index.js";
import { RECOGNIZERS } from "./layouts/index.js";
import { type LayoutContext, numel, obj, type Recognizer } from "./layouts/recognizer.js";
import type {
  DetectedLayout,
  LayoutKind,
  LayoutProblem,
  QuantizedWeight,
  ScaleFormat,
  ScaleStorage,
  TensorEntry,
} from "./types.js";

export { MX_GROUP } from "./layouts/recognizer.js";

/** `config.quantization_config` as an object, or null. */
export function quantizationConfig(config: unknown): Record<string, unknown> | null {
  return obj(obj(config)?.quantization_config);
}

/** How a scale tensor of this dtype stores scales in any layout, or null when no layout uses it for scales. */
export function scaleStorageOf(dtype: Dtype): ScaleStorage | null {
  for (const r of RECOGNIZERS) {
    const s = r.scaleDtypes[dtype];
    if (s) return s;
  }
  return null;
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/** Expected scale shape of a weight of logical `shape` with `block` over the last two dims (per matrix). */
export function expectedScaleShape(shape: readonly number[], block: readonly [number, number]): number[] {
  if (shape.length === 1) return [cdiv(shape[0], block[1])];
  const lead = shape.slice(0, -2);
  return [...lead, cdiv(shape[shape.length - 2], block[0]), cdiv(shape[shape.length - 1], block[1])];
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

function contextOf(
  config: unknown,
  hfQuantConfig: unknown,
  tensors: readonly TensorEntry[],
  description: unknown,
): LayoutContext {
  const qc = quantizationConfig(config);
  const method = typeof qc?.quant_method === "string" ? qc.quant_method : null;
  const mo = obj(obj(hfQuantConfig)?.quantization);
  const algo = mo?.quant_algo ?? (method === "modelopt" ? qc?.quant_algo : undefined);
  const modelopt = typeof algo === "string" ? algo : method === "modelopt" ? "modelopt" : null;
  return { qc, method, modelopt, byName: new Map(tensors.map((t) => [t.name, t])), ascend: obj(description) };
}

/** Logical element shape of the codes tensor `t` under `r`'s packing. */
function logicalShape(r: Recognizer, t: TensorEntry): number[] | null {
  const s = [...t.shape];
  if (r.packing === "byte" || t.dtype === "F4") return s.length > 0 ? s : null;
  if (r.packing === "rows") {
    if (s.length < 2) return null;
    s[s.length - 2] *= 2;
    return s;
  }
  if (r.packing === "nibbles") {
    if (s.length < 1) return null;
    s[s.length - 1] *= 2;
    return s;
  }
  if (s.length < 2) return null;
  return [...s.slice(0, -2), s[s.length - 2] * s[s.length - 1] * 2];
}

/** Element format of a codes tensor: its dtype's format; packed FP4 in U8 bytes is E2M1. */
const elementOf = (r: Recognizer, dtype: Dtype): QuantizedWeight["element"] =>
  r.packing === "rows"
    ? "int4"
    : dtype === "I8"
      ? "int8"
      : r.packing === "byte"
        ? (formatOfDtype(dtype) as QuantizedWeight["element"])
        : "float4_e2m1fn";

/** Pairs one codes tensor with its scale under `r`; problems are pushed, null when unusable. */
function pair(
  r: Recognizer,
  ctx: LayoutContext,
  base: string,
  t: TensorEntry,
  problems: LayoutProblem[],
  consumed: Set<string>,
): QuantizedWeight | null {
  const scaleName = `${base}${r.scale}`;
  const scale = ctx.byName.get(scaleName);
  consumed.add(t.name);
  const shape = logicalShape(r, t);
  if (shape === null) {
    const message = `quantized weight "${t.name}" has shape [${t.shape}], too few dimensions for ${r.kind}`;
    problems.push({ code: "weight-shape", tensor: t.name, message });
    return null;
  }
  if (!scale) {
    const message = `quantized weight "${t.name}" has no scale tensor "${scaleName}"`;
    problems.push({ code: "missing-scale", tensor: t.name, related: scaleName, message });
    return null;
  }
  consumed.add(scale.name);
  const storage = r.scaleDtypes[scale.dtype];
  if (storage === undefined) {
    const want = Object.keys(r.scaleDtypes).join(", ");
    const message = `scale "${scale.name}" has dtype ${scale.dtype}; ${r.kind} stores scales as ${want}`;
    problems.push({ code: "scale-dtype", tensor: scale.name, message });
    return null;
  }
  const block: [number, number] =
    r.granularity === "tensor"
      ? [shape.length > 1 ? shape[shape.length - 2] : 1, shape[shape.length - 1]]
      : typeof r.block === "function"
        ? r.block(ctx)
        : [r.block[0], r.block[1]];
  const want = r.granularity === "tensor" ? null : expectedScaleShape(shape, block);
  if (want !== null ? !sameShape(want, scale.shape) : numel(scale.shape) !== 1) {
    const need = want === null ? "a single value" : `[${want}]`;
    const message =
      `scale "${scale.name}" has shape [${scale.shape}] but weight "${t.name}" of shape [${shape}] ` +
      `with ${r.granularity === "tensor" ? "one scale per tensor" : `${block[0]}x${block[1]} blocks`} needs ${need}`;
    problems.push({ code: "scale-grid", tensor: scale.name, related: t.name, message });
    return null;
  }
  return {
    layout: r.kind,
    name: r.weightName ? r.weightName(base) : `${base}.weight`,
    data: t.name,
    scale: scale.name,
    element: elementOf(r, t.dtype),
    packed: r.packing !== "byte",
    shape,
    granularity: r.granularity,
    block,
    scaleStorage: storage,
    scaleDtype: scale.dtype,
    scaleShape: [...scale.shape],
    tensorScale: tensorScaleOf(r, ctx, base, t.name, problems, consumed),
    auxiliary: auxiliaryOf(r, ctx, base, consumed),
  };
}

function tensorScaleOf(
  r: Recognizer,
  ctx: LayoutContext,
  base: string,
  data: string,
  problems: LayoutProblem[],
  consumed: Set<string>,
): QuantizedWeight["tensorScale"] {
  if (!r.tensorScale) return null;
  const name = `${base}${r.tensorScale.suffix}`;
  const t = ctx.byName.get(name);
  if (!t) {
    const message = `${r.kind} weight "${data}" has no per-tensor scale "${name}"`;
    problems.push({ code: "missing-scale", tensor: data, related: name, message });
    return null;
  }
  consumed.add(name);
  return { name, mode: r.tensorScale.mode };
}

function auxiliaryOf(r: Recognizer, ctx: LayoutContext, base: string, consumed: Set<string>): string[] {
  const out = (r.auxiliary ?? []).map((s) => `${base}${s}`).filter((n) => ctx.byName.has(n));
  for (const n of out) consumed.add(n);
  return out;
}

/** Block-scale suffixes a weight may carry; two on one weight is a `duplicate-scale`. */
const WEIGHT_SCALE_SUFFIXES = [".weight_scale_inv", ".weight_scale"];

function duplicateScales(
  quantized: readonly QuantizedWeight[],
  ctx: LayoutContext,
  problems: LayoutProblem[],
  consumed: Set<string>,
): void {
  for (const q of quantized) {
    if (!q.scale.endsWith(".weight_scale_inv") && !q.scale.endsWith(".weight_scale")) continue;
    const base = q.scale.slice(0, q.scale.lastIndexOf(".weight_scale"));
    for (const suffix of WEIGHT_SCALE_SUFFIXES) {
      const other = `${base}${suffix}`;
      if (other === q.scale || !ctx.byName.has(other) || consumed.has(other)) continue;
      consumed.add(other);
      const message = `quantized weight "${q.data}" has two scale tensors: ${q.scale} and ${other}`;
      problems.push({ code: "duplicate-scale", tensor: q.data, related: other, message });
    }
  }
}

/** Scale tensors nothing claimed: `_scale_inv`, a multi-value `weight_scale`, E8M0 `_scales`. */
function orphanScales(
  tensors: readonly TensorEntry[],
  byName: ReadonlyMap<string, TensorEntry>,
  problems: LayoutProblem[],
  consumed: Set<string>,
): void {
  for (const t of tensors) {
    if (consumed.has(t.name)) continue;
    const suffix = [".weight_scale_inv", ".weight_scale", "_scales"].find((s) => t.name.endsWith(s));
    if (suffix === undefined) continue;
    // A per-tensor scale, or the scale of a weight in a scheme no recognizer claims (INT8): not an orphan.
    if (suffix === ".weight_scale" && (numel(t.shape) <= 1 || byName.has(t.name.slice(0, -"_scale".length))))
      continue;
    if (suffix === "_scales" && t.dtype !== "U8" && t.dtype !== "F8_E8M0") continue;
    const w = t.name.slice(0, -suffix.length) + (suffix === "_scales" ? "_blocks" : ".weight");
    consumed.add(t.name);
    const message = `scale "${t.name}" has no quantized weight "${w}" to go with it`;
    problems.push({ code: "orphan-scale", tensor: t.name, related: w, message });
  }
}

/** The layout most weights use (first seen wins a tie). */
function dominantKind(quantized: readonly QuantizedWeight[], ctx: LayoutContext): LayoutKind {
  const counts = new Map<LayoutKind, number>();
  for (const q of quantized) counts.set(q.layout, (counts.get(q.layout) ?? 0) + 1);
  let kind: LayoutKind = ctx.method !== null || ctx.modelopt !== null ? "unknown" : "unquantized";
  let best = 0;
  for (const [k, n] of counts) {
    if (n > best) [kind, best] = [k, n];
  }
  return kind;
}

/** Detect the layout; see the file header. */
export function detectLayout(
  config: unknown | null,
  tensors: readonly TensorEntry[],
  hfQuantConfig: unknown | null = null,
  ascendDescription: unknown | null = null,
): DetectedLayout {
  const ctx = contextOf(config, hfQuantConfig, tensors, ascendDescription);
  const problems: LayoutProblem[] = [];
  const quantized: QuantizedWeight[] = [];
  const consumed = new Set<string>();
  const claimedBy = new Map<LayoutKind, Recognizer>();
  for (const t of tensors) {
    if (consumed.has(t.name)) continue;
    for (const r of RECOGNIZERS) {
      if (!t.name.endsWith(r.data) || !r.dataDtypes.includes(t.dtype)) continue;
      const base = t.name.slice(0, -r.data.length);
      if (!r.claims(ctx, base, ctx.byName.get(`${base}${r.scale}`))) continue;
      claimedBy.set(r.kind, r);
      const w = pair(r, ctx, base, t, problems, consumed);
      if (w) quantized.push(w);
      break;
    }
  }
  duplicateScales(quantized, ctx, problems, consumed);
  orphanScales(tensors, ctx.byName, problems, consumed);
  // Ascend W4A8_DYNAMIC checkpoints hold their non-expert linears W8A8_DYNAMIC (ASCEND.md §4.1): one layout.
  const ascendW4a8 = claimedBy.size === 2 && claimedBy.has("ascend-w4a8") && claimedBy.has("ascend-w8a8");
  const kind = ascendW4a8 ? "ascend-w4a8" : dominantKind(quantized, ctx);
  if (claimedBy.size > 1 && !ascendW4a8) {
    const message = `mixed quantized layouts: ${[...claimedBy.keys()].join(", ")}`;
    problems.push({ code: "mixed-layouts", tensor: quantized[0]?.data ?? "", message });
  }
  if (kind === "fp8-block" && ctx.method !== null && ctx.method !== "fp8") {
    const message = `config.json quant_method is "${ctx.method}" but the tensors are DeepSeek/HF block FP8`;
    problems.push({ code: "config-mismatch", tensor: "", message });
  }
  const r = claimedBy.get(kind);
  const first = quantized.find((q) => q.layout === kind);
  const scaleFmt: ScaleFormat | null = !r
    ? null
    : (r.scaleFmt?.(ctx) ?? (first?.scaleStorage === "ue8m0" ? "ue8m0" : "float"));
  const block = r && r.granularity === "block" && first ? first.block : null;
  const label = labelOf(kind, r, block, scaleFmt, first?.scaleDtype ?? null, ctx, quantized.length);
  return {
    kind,
    label,
    scaleFmt,
    block,
    quantized,
    plain: tensors.filter((t) => !consumed.has(t.name)),
    problems,
    declared: ctx.modelopt ?? ctx.method,
  };
}

function labelOf(
  kind: LayoutKind,
  r: Recognizer | undefined,
  block: [number, number] | null,
  scaleFmt: ScaleFormat | null,
  scaleDtype: Dtype | null,
  ctx: LayoutContext,
  n: number,
): string {
  if (kind === "unquantized") return "unquantized (no quantized weights)";
  if (kind === "unknown" || !r) return "declared quantized, but no quantized tensors recognised";
  return `${r.title} (${r.details({ block, scaleFmt, scaleDtype, ctx })}, ${n} quantized weights)`;
}
