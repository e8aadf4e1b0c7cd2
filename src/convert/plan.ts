/**
 * Planning a conversion: from the tensor list, config.json and options, decide what happens to
 * every tensor (copy, dequantize, quantize, requantize), what the output tensors are, and which
 * output shard holds each. Pure and deterministic: the same input and options always give the same
 * plan, which is what makes `--resume` and `--part i/n` possible (every run recomputes the plan
 * and gets the same shard names and byte layouts).
 *
 *   planConversion(input: PlanInput, options: ConvertOptions) -> ConvertPlan   (throws ConvertError)
 */
import {
  type ConfigTarget,
  conversionRefusal,
  type DetectedLayout,
  detectLayout,
  type QuantizedWeight,
  rewriteConfig,
  type SelectionPreset,
  selectTensors,
  sourceCodecOf,
  type TensorChoice,
  type TensorEntry,
} from "../checkpoint/index.js";
import type { MxRule, SourceCodec, TargetCodec } from "../quant/kernels/types.js";
import {
  type Dtype,
  parseSize,
  planLayout,
  type SafetensorsLayout,
  splitIntoShards,
  type TensorDescriptor,
} from "../safetensors/index.js";
import { ConvertError } from "./errors.js";

export type TargetName = "bf16" | "fp16" | "fp32" | "fp8" | "mxfp8" | "mxfp4";
export const TARGET_NAMES: readonly TargetName[] = ["bf16", "fp16", "fp32", "fp8", "mxfp8", "mxfp4"];

/** Options of a conversion (CLI flags map one to one). */
export interface ConvertOptions {
  target: TargetName;
  /** fp8 target block `[rows, cols]` (default 128x128). */
  block?: [number, number];
  /** fp8 target scale format (default `ue8m0`, the DeepSeek-V3.1 format). */
  scaleFmt?: "ue8m0" | "float";
  /** fp8 target scale storage: F32 powers of two (DeepSeek's layout, default) or F8_E8M0 bytes. */
  scaleDtype?: "f32" | "e8m0";
  /** MX scale rule (default `floor`, compressed-tensors' rule). */
  scaleRule?: MxRule;
  preset?: SelectionPreset | "auto";
  include?: string[];
  exclude?: string[];
  /** Largest output shard in tensor bytes (default "5GB"). */
  maxShardSize?: number | string;
  /**
   * Input scales that are NaN, infinite, zero, negative or overflow float32 (convert/scale-policy.ts):
   * `refuse` (default) fails naming shard, tensor and block; `keep` converts the stored values.
   */
  badScales?: BadScalePolicy;
}

export type BadScalePolicy = "refuse" | "keep";
export const BAD_SCALE_POLICIES: readonly BadScalePolicy[] = ["refuse", "keep"];

/** The options with every default filled in (what the journal records). */
export type ResolvedOptions = Required<ConvertOptions> & { maxShardSize: number };

/** Options only some targets use (with their flags); given for another target they are refused. */
const TARGET_OPTIONS: readonly [keyof ConvertOptions, string, readonly TargetName[]][] = [
  ["block", "--block", ["fp8"]],
  ["scaleFmt", "--scale-fmt", ["fp8"]],
  ["scaleDtype", "--scale-dtype", ["fp8"]],
  ["scaleRule", "--scale-rule", ["mxfp8", "mxfp4"]],
  // Dense targets dequantize every weight and quantize nothing: there is no selection.
  ["preset", "--preset", ["fp8", "mxfp8", "mxfp4"]],
  ["include", "--include", ["fp8", "mxfp8", "mxfp4"]],
  ["exclude", "--exclude", ["fp8", "mxfp8", "mxfp4"]],
];

/** Refuses options given (an empty list is not given) that the target does not use, naming them. */
function refuseUnusedOptions(o: ConvertOptions): void {
  const unused = TARGET_OPTIONS.filter(([key, , targets]) => {
    const v = o[key];
    return v !== undefined && !(Array.isArray(v) && v.length === 0) && !targets.includes(o.target);
  });
  if (unused.length === 0) return;
  const uses = unused.map(([, flag, targets]) => `${flag} is for --to ${targets.join(", ")}`).join("; ");
  throw new ConvertError(
    "invalid-option",
    `${unused.map(([, flag]) => flag).join(", ")} ${unused.length > 1 ? "do" : "does"} not apply to --to ${o.target} (${uses})`,
  );
}

export function resolveOptions(o: ConvertOptions): ResolvedOptions {
  if (!TARGET_NAMES.includes(o.target)) {
    throw new ConvertError(
      "invalid-option",
      `--to must be one of ${TARGET_NAMES.join(", ")}, got ${JSON.stringify(o.target)}`,
    );
  }
  refuseUnusedOptions(o);
  const r: ResolvedOptions = {
    target: o.target,
    block: o.block ?? [128, 128],
    scaleFmt: o.scaleFmt ?? "ue8m0",
    scaleDtype: o.scaleDtype ?? "f32",
    scaleRule: o.scaleRule ?? "floor",
    preset: o.preset ?? "auto",
    include: o.include ?? [],
    exclude: o.exclude ?? [],
    maxShardSize: parseSize(o.maxShardSize ?? "5GB"),
    badScales: o.badScales ?? "refuse",
  };
  if (!BAD_SCALE_POLICIES.includes(r.badScales)) {
    throw new ConvertError(
      "invalid-option",
      `--bad-scales must be one of ${BAD_SCALE_POLICIES.join(", ")}, got ${JSON.stringify(r.badScales)}`,
    );
  }
  if (r.maxShardSize <= 0) throw new ConvertError("invalid-option", "--max-shard-size must be positive");
  if (!r.block.every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new ConvertError("invalid-option", `--block must be two positive integers, got ${r.block}`);
  }
  if (r.scaleDtype === "e8m0" && r.scaleFmt !== "ue8m0") {
    throw new ConvertError(
      "invalid-option",
      "--scale-dtype e8m0 needs --scale-fmt ue8m0 (float scales are not powers of two)",
    );
  }
  return r;
}

/** A tensor in the input, with the shard it lives in (a `CheckpointTensor` fits). */
export interface InputTensor extends TensorEntry {
  shard: string;
  byteLength: number;
}

export interface PlanInput {
  /** config.json parsed, or null when the input has none. */
  config: Record<string, unknown> | null;
  /** ModelOpt's hf_quant_config.json parsed, or null/absent. */
  hfQuantConfig?: Record<string, unknown> | null;
  tensors: readonly InputTensor[];
}

/** What happens to one input weight (or plain tensor). */
export type OpAction = "copy" | "dequantize" | "quantize" | "requantize";

export interface OpTensor extends TensorDescriptor {
  dtype: Dtype;
  shape: number[];
  byteLength: number;
}

/** One unit of work: an input tensor (+ its scale) to one output tensor (+ its scale). */
export interface TensorOp {
  index: number;
  action: OpAction;
  /** Why (`--dry-run` prints it). */
  note: string;
  input: {
    data: string;
    scale: string | null;
    shard: string;
    scaleShard: string | null;
    /** A scalar tensor whose float value the kernels need (`BandSpec.tensorScale`), or null. */
    tensorScale: string | null;
    tensorScaleShard: string | null;
  };
  output: { data: OpTensor; scale: OpTensor | null };
  /** Logical element shape. */
  shape: number[];
  source: SourceCodec | null;
  target: TargetCodec | null;
  bytesIn: number;
  bytesOut: number;
  /** Output shard file name. */
  shard: string;
}

export interface PlannedShard {
  fileName: string;
  /** Op indexes in this shard. */
  ops: number[];
  /** Sum of tensor bytes. */
  bytes: number;
  /** The file's exact layout (header bytes, tensor offsets, file size). */
  layout: SafetensorsLayout;
}

export interface ConvertPlan {
  options: ResolvedOptions;
  layout: Omit<DetectedLayout, "quantized" | "plain">;
  preset: SelectionPreset;
  ops: TensorOp[];
  shards: PlannedShard[];
  /** The rewritten config.json, or null when the input has none. */
  config: Record<string, unknown> | null;
  totalSize: number;
  bytesIn: number;
  bytesOut: number;
  choices: TensorChoice[];
}

/** `__metadata__` of every output shard (transformers reads `format`). */
export const SHARD_METADATA: Readonly<Record<string, string>> = { format: "pt" };

const DENSE: Record<string, { dtype: "BF16" | "F16" | "F32"; name: "bfloat16" | "float16" | "float32" }> = {
  bf16: { dtype: "BF16", name: "bfloat16" },
  fp16: { dtype: "F16", name: "float16" },
  fp32: { dtype: "F32", name: "float32" },
};

const bytesOf = (dtype: Dtype, shape: readonly number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return dtype === "F32" ? n * 4 : dtype === "BF16" || dtype === "F16" ? n * 2 : n;
};

/** Output tensor names of a quantized weight named `base` (`...weight` or a gpt-oss parameter). */
function quantNames(base: string, target: TargetName): { data: string; scale: string } {
  const w = base.endsWith(".weight") ? base : `${base}.weight`;
  if (target === "fp8") return { data: base, scale: `${base}_scale_inv` };
  if (target === "mxfp4") return { data: `${w}_packed`, scale: `${w}_scale` };
  return { data: w, scale: `${w}_scale` };
}

/** What every op builder needs: the options, where input tensors live, the selection. */
interface OpContext {
  opts: ResolvedOptions;
  dense: (typeof DENSE)[string] | undefined;
  shardOf: Map<string, string>;
  byteLen: Map<string, number>;
  selected: ReadonlySet<string>;
  choiceOf: Map<string, TensorChoice>;
  /** Modules left unquantized in a quantized output (the config's ignore list). */
  keptModules: string[];
}

/** Refuses a layout `convert` cannot write `opts.target` from (the rule `inspect` also applies). */
function refuseUnsupported(
  detected: DetectedLayout,
  opts: ResolvedOptions,
  shardOf: Map<string, string>,
): void {
  const why = conversionRefusal(detected, { name: opts.target, dense: opts.target in DENSE });
  if (why === null) return;
  const p = detected.problems[0];
  const tensor = p?.tensor ?? detected.plain.find((t) => why.includes(`"${t.name}"`))?.name;
  const where = tensor && shardOf.has(tensor) ? `${shardOf.get(tensor)}: ` : "";
  throw new ConvertError(p ? "invalid-layout" : "unsupported-layout", `${where}${why}`);
}

/** Which plain tensors get quantized: quantized inputs keep theirs unless `--include` names them. */
function selectPlain(detected: DetectedLayout, opts: ResolvedOptions, config: PlanInput["config"]) {
  const isQuantizedInput = detected.kind !== "unquantized";
  const selection = selectTensors(detected.plain, {
    preset: opts.preset,
    include: opts.include,
    exclude: opts.exclude,
    config,
  });
  const selected = isQuantizedInput
    ? new Set(selection.choices.filter((c) => c.quantize && c.reason === "--include").map((c) => c.name))
    : selection.selected;
  const choices = selection.choices.map((c) =>
    isQuantizedInput && c.quantize && !selected.has(c.name)
      ? { ...c, quantize: false, reason: "kept: input is already quantized (use --include to add tensors)" }
      : c,
  );
  return { preset: selection.preset, selected, choices };
}

/** The block-quantized target codec of the options. */
function blockTarget(opts: ResolvedOptions): TargetCodec {
  if (opts.target === "fp8") {
    const scaleDtype = opts.scaleDtype === "e8m0" ? "F8_E8M0" : "F32";
    return { kind: "fp8-block", block: opts.block, scaleFmt: opts.scaleFmt, scaleDtype };
  }
  const element = opts.target === "mxfp4" ? "float4_e2m1fn" : "float8_e4m3fn";
  return { kind: "mx", element, rule: opts.scaleRule };
}

const tensorOf = (name: string, dtype: Dtype, shape: number[]): OpTensor => ({
  name,
  dtype,
  shape,
  byteLength: bytesOf(dtype, shape),
});

/** Output tensors of a weight quantized to the block target (codes + scales). */
function quantOutput(opts: ResolvedOptions, base: string, shape: number[]): TensorOp["output"] {
  const names = quantNames(base, opts.target);
  const cols = shape[shape.length - 1];
  if (opts.target === "fp8") {
    const [br, bc] = opts.block;
    const sShape = [...shape.slice(0, -2), Math.ceil(shape[shape.length - 2] / br), Math.ceil(cols / bc)];
    const sd: Dtype = opts.scaleDtype === "e8m0" ? "F8_E8M0" : "F32";
    return { data: tensorOf(names.data, "F8_E4M3", shape), scale: tensorOf(names.scale, sd, sShape) };
  }
  const rows = shape.slice(0, -1);
  const scale = tensorOf(names.scale, "U8", [...rows, cols / 32]);
  const data =
    opts.target === "mxfp4"
      ? tensorOf(names.data, "U8", [...rows, cols / 2])
      : tensorOf(names.data, "F8_E4M3", shape);
  return { data, scale };
}

const mxCompatible = (shape: readonly number[]) => shape.length >= 1 && shape[shape.length - 1] % 32 === 0;
const moduleOf = (name: string) => name.replace(/\.weight$/, "");
const targetNote = (opts: ResolvedOptions) => (opts.target === "fp8" ? `fp8 ${opts.scaleFmt}` : opts.target);

/** The op of one quantized input weight: dequantize to a dense dtype, or requantize. */
function weightOp(ctx: OpContext, w: QuantizedWeight, t: InputTensor, index: number): TensorOp {
  const { opts } = ctx;
  if (w.packed && w.shape[w.shape.length - 1] % 2 !== 0) {
    throw new ConvertError(
      "invalid-layout",
      `${t.shard}: packed FP4 weight "${w.data}" has an odd row length`,
    );
  }
  const perTensor = w.granularity === "tensor";
  const tensorScale = perTensor ? w.scale : (w.tensorScale?.name ?? null);
  const scale = perTensor ? null : w.scale;
  const base = {
    index,
    input: {
      data: w.data,
      scale,
      shard: t.shard,
      scaleShard: scale === null ? null : (ctx.shardOf.get(scale) ?? t.shard),
      tensorScale,
      tensorScaleShard: tensorScale === null ? null : (ctx.shardOf.get(tensorScale) ?? t.shard),
    },
    shape: w.shape,
    source: sourceCodecOf(w),
    bytesIn: t.byteLength + (ctx.byteLen.get(w.scale) ?? 0),
    shard: "",
  };
  const toDense = (note: string, d = ctx.dense ?? DENSE.bf16): TensorOp => {
    const out = tensorOf(w.name, d.dtype, w.shape);
    const target: TargetCodec = { kind: "plain", dtype: d.dtype };
    return {
      ...base,
      action: "dequantize",
      note,
      output: { data: out, scale: null },
      target,
      bytesOut: out.byteLength,
    };
  };
  if (ctx.dense) return toDense(`dequantize ${w.element} -> ${ctx.dense.dtype}`);
  if (opts.target !== "fp8" && !mxCompatible(w.shape)) {
    ctx.keptModules.push(moduleOf(w.name));
    return toDense(`dequantize to BF16: row length ${w.shape[w.shape.length - 1]} is not a multiple of 32`);
  }
  const output = quantOutput(opts, w.name, w.shape);
  return {
    ...base,
    action: "requantize",
    note: `requantize ${w.element} -> ${targetNote(opts)}`,
    output,
    target: blockTarget(opts),
    bytesOut: output.data.byteLength + (output.scale?.byteLength ?? 0),
  };
}

/** The op of one plain input tensor: copy it, or quantize it when selected. */
function plainOp(ctx: OpContext, t: InputTensor, index: number): TensorOp {
  const { opts } = ctx;
  const shape = [...t.shape];
  const input = {
    data: t.name,
    scale: null,
    shard: t.shard,
    scaleShard: null,
    tensorScale: null,
    tensorScaleShard: null,
  };
  const copy = (note: string): TensorOp => ({
    index,
    action: "copy",
    note,
    input,
    output: { data: { name: t.name, dtype: t.dtype, shape, byteLength: t.byteLength }, scale: null },
    shape,
    source: null,
    target: null,
    bytesIn: t.byteLength,
    bytesOut: t.byteLength,
    shard: "",
  });
  const wantQuant = !ctx.dense && ctx.selected.has(t.name);
  if (wantQuant && opts.target !== "fp8" && !mxCompatible(shape)) {
    ctx.keptModules.push(moduleOf(t.name));
    return copy(`kept: row length ${shape[shape.length - 1]} is not a multiple of 32`);
  }
  if (!wantQuant) {
    if (!ctx.dense && t.shape.length === 2 && t.name.endsWith(".weight") && !/embed/.test(t.name)) {
      ctx.keptModules.push(moduleOf(t.name));
    }
    return copy(ctx.choiceOf.get(t.name)?.reason ?? "kept");
  }
  const output = quantOutput(opts, t.name, shape);
  return {
    index,
    action: "quantize",
    note: `quantize ${t.dtype} -> ${targetNote(opts)}`,
    input,
    output,
    shape,
    source: { kind: "plain", dtype: t.dtype as "BF16" | "F16" | "F32" },
    target: blockTarget(opts),
    bytesIn: t.byteLength,
    bytesOut: output.data.byteLength + (output.scale?.byteLength ?? 0),
    shard: "",
  };
}

/** The rewritten config.json for the target (null when the input has none). */
function outputConfig(ctx: OpContext, config: PlanInput["config"], preset: SelectionPreset) {
  if (!config) return null;
  const { opts, dense, keptModules } = ctx;
  let target: ConfigTarget;
  if (dense) target = { kind: "dense", dtype: dense.name };
  else if (opts.target === "fp8") {
    const modulesToNotConvert = preset === "generic" ? keptModules : undefined;
    target = { kind: "fp8-block", block: opts.block, scaleFmt: opts.scaleFmt, modulesToNotConvert };
  } else target = { kind: opts.target === "mxfp4" ? "ct-mxfp4" : "ct-mxfp8", ignore: keptModules };
  return rewriteConfig(config, target);
}

/** Make the plan; throws `ConvertError` naming the shard and tensor for a layout it cannot convert. */
export function planConversion(input: PlanInput, options: ConvertOptions): ConvertPlan {
  const opts = resolveOptions(options);
  const { config, tensors } = input;
  const shardOf = new Map(tensors.map((t) => [t.name, t.shard]));
  const detected = detectLayout(config, tensors, input.hfQuantConfig ?? null);
  refuseUnsupported(detected, opts, shardOf);
  const { preset, selected, choices } = selectPlain(detected, opts, config);
  const ctx: OpContext = {
    opts,
    dense: DENSE[opts.target],
    shardOf,
    byteLen: new Map(tensors.map((t) => [t.name, t.byteLength])),
    selected,
    choiceOf: new Map(choices.map((c) => [c.name, c])),
    keptModules: [],
  };
  const quantByData = new Map(detected.quantized.map((w) => [w.data, w]));
  const plainNames = new Set(detected.plain.map((t) => t.name));
  const ops: TensorOp[] = [];
  for (const t of tensors) {
    const w = quantByData.get(t.name);
    if (w) ops.push(weightOp(ctx, w, t, ops.length));
    else if (plainNames.has(t.name)) ops.push(plainOp(ctx, t, ops.length));
    // else: a scale or activation-side tensor, written (or dropped) with its weight
  }
  const shards = assignShards(ops, opts.maxShardSize);
  const { quantized: _q, plain: _p, ...layoutInfo } = detected;
  return {
    options: opts,
    layout: layoutInfo,
    preset,
    ops,
    shards,
    config: outputConfig(ctx, config, preset),
    totalSize: shards.reduce((s, x) => s + x.bytes, 0),
    bytesIn: ops.reduce((s, o) => s + o.bytesIn, 0),
    bytesOut: ops.reduce((s, o) => s + o.bytesOut, 0),
    choices,
  };
}

/** Shards of the ops by the safetensors layer's `splitIntoShards` (an op's weight and scale are one item). */
function assignShards(ops: TensorOp[], max: number): PlannedShard[] {
  return splitIntoShards(
    ops.map((op) => op.bytesOut),
    max,
  ).map(({ fileName, items, bytes }) => {
    const descs: TensorDescriptor[] = [];
    for (const k of items) {
      const op = ops[k];
      op.shard = fileName;
      descs.push({ name: op.output.data.name, dtype: op.output.data.dtype, shape: op.output.data.shape });
      if (op.output.scale)
        descs.push({
          name: op.output.scale.name,
          dtype: op.output.scale.dtype,
          shape: op.output.scale.shape,
        });
    }
    return { fileName, ops: items, bytes, layout: planLayout(descs, SHARD_METADATA, fileName) };
  });
}

/** Shards of part `i` (1-based) of `n`: contiguous, equal counts (`--part i/n`). */
export function shardsOfPart(shards: readonly PlannedShard[], part: number, parts: number): PlannedShard[] {
  return shards.filter((_, k) => Math.floor((k * parts) / shards.length) === part - 1);
}
