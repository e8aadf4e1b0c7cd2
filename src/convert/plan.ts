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
  type DetectedLayout,
  detectLayout,
  type QuantizedWeight,
  rewriteConfig,
  type SelectionPreset,
  selectTensors,
  type TensorChoice,
  type TensorEntry,
} from "../checkpoint/index.js";
import {
  type Dtype,
  parseSize,
  planLayout,
  type SafetensorsLayout,
  shardFileName,
  type TensorDescriptor,
} from "../safetensors/index.js";
import { ConvertError } from "./errors.js";
import type { MxRule, SourceCodec, TargetCodec } from "./kernels.js";

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
}

/** The options with every default filled in (what the journal records). */
export type ResolvedOptions = Required<ConvertOptions> & { maxShardSize: number };

export function resolveOptions(o: ConvertOptions): ResolvedOptions {
  if (!TARGET_NAMES.includes(o.target)) {
    throw new ConvertError(
      "invalid-option",
      `--to must be one of ${TARGET_NAMES.join(", ")}, got ${JSON.stringify(o.target)}`,
    );
  }
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
  };
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

function sourceOf(w: QuantizedWeight): SourceCodec {
  return {
    kind: "block",
    element: w.element,
    packed: w.packed,
    block: w.block,
    scaleStorage: w.scaleStorage,
  };
}

/** Output tensor names of a quantized weight named `base` (`...weight` or a gpt-oss parameter). */
function quantNames(base: string, target: TargetName): { data: string; scale: string } {
  const w = base.endsWith(".weight") ? base : `${base}.weight`;
  if (target === "fp8") return { data: base, scale: `${base}_scale_inv` };
  if (target === "mxfp4") return { data: `${w}_packed`, scale: `${w}_scale` };
  return { data: w, scale: `${w}_scale` };
}

/** Make the plan; throws `ConvertError` naming the shard and tensor for a layout problem. */
export function planConversion(input: PlanInput, options: ConvertOptions): ConvertPlan {
  const opts = resolveOptions(options);
  const { config, tensors } = input;
  const shardOf = new Map(tensors.map((t) => [t.name, t.shard]));
  const byteLen = new Map(tensors.map((t) => [t.name, t.byteLength]));
  const detected = detectLayout(config, tensors);
  if (detected.problems.length > 0) {
    const p = detected.problems[0];
    const where = p.tensor && shardOf.has(p.tensor) ? `${shardOf.get(p.tensor)}: ` : "";
    const more = detected.problems.length > 1 ? ` (and ${detected.problems.length - 1} more problems)` : "";
    throw new ConvertError("invalid-layout", `${where}${p.message}${more}`);
  }
  const quantByData = new Map(detected.quantized.map((w) => [w.data, w]));
  const isQuantizedInput = detected.kind !== "unquantized";
  const plainEntries = detected.plain;
  const selection = selectTensors(plainEntries, {
    preset: opts.preset,
    include: opts.include,
    exclude: opts.exclude,
    config,
  });
  // Quantized inputs keep their plain tensors as they are unless --include names them.
  const selected = isQuantizedInput
    ? new Set(selection.choices.filter((c) => c.quantize && c.reason === "--include").map((c) => c.name))
    : selection.selected;
  const choices = selection.choices.map((c) =>
    isQuantizedInput && c.quantize && !selected.has(c.name)
      ? { ...c, quantize: false, reason: "kept: input is already quantized (use --include to add tensors)" }
      : c,
  );
  const choiceOf = new Map(choices.map((c) => [c.name, c]));
  const plainByName = new Map(plainEntries.map((t) => [t.name, t]));
  const dense = DENSE[opts.target];
  const ops: TensorOp[] = [];
  const keptModules: string[] = [];
  const blockTarget = (): TargetCodec =>
    opts.target === "fp8"
      ? {
          kind: "fp8-block",
          block: opts.block,
          scaleFmt: opts.scaleFmt,
          scaleDtype: opts.scaleDtype === "e8m0" ? "F8_E8M0" : "F32",
        }
      : {
          kind: "mx",
          element: opts.target === "mxfp4" ? "float4_e2m1fn" : "float8_e4m3fn",
          rule: opts.scaleRule,
        };

  const quantOutput = (base: string, shape: number[]): TensorOp["output"] => {
    const names = quantNames(base, opts.target);
    const rows = shape.slice(0, -1);
    const cols = shape[shape.length - 1];
    if (opts.target === "fp8") {
      const [br, bc] = opts.block;
      const sShape = [...shape.slice(0, -2), Math.ceil(shape[shape.length - 2] / br), Math.ceil(cols / bc)];
      const sd: Dtype = opts.scaleDtype === "e8m0" ? "F8_E8M0" : "F32";
      return {
        data: { name: names.data, dtype: "F8_E4M3", shape, byteLength: bytesOf("F8_E4M3", shape) },
        scale: { name: names.scale, dtype: sd, shape: sShape, byteLength: bytesOf(sd, sShape) },
      };
    }
    const sShape = [...rows, cols / 32];
    const scale: OpTensor = {
      name: names.scale,
      dtype: "U8",
      shape: sShape,
      byteLength: bytesOf("U8", sShape),
    };
    if (opts.target === "mxfp4") {
      const dShape = [...rows, cols / 2];
      return {
        data: { name: names.data, dtype: "U8", shape: dShape, byteLength: bytesOf("U8", dShape) },
        scale,
      };
    }
    return {
      data: { name: names.data, dtype: "F8_E4M3", shape, byteLength: bytesOf("F8_E4M3", shape) },
      scale,
    };
  };
  const mxCompatible = (shape: number[]) => shape.length >= 1 && shape[shape.length - 1] % 32 === 0;

  for (const t of tensors) {
    const w = quantByData.get(t.name);
    if (w) {
      const bytesIn = t.byteLength + (byteLen.get(w.scale) ?? 0);
      const base = {
        index: ops.length,
        input: {
          data: w.data,
          scale: w.scale,
          shard: t.shard,
          scaleShard: shardOf.get(w.scale) ?? t.shard,
          tensorScale: null,
          tensorScaleShard: null,
        },
        shape: w.shape,
        source: sourceOf(w),
        bytesIn,
        shard: "",
      };
      if (w.packed && w.shape[w.shape.length - 1] % 2 !== 0) {
        throw new ConvertError(
          "invalid-layout",
          `${t.shard}: packed FP4 weight "${w.data}" has an odd row length`,
        );
      }
      const toDense = (why: string, d = dense ?? DENSE.bf16): TensorOp => {
        const out: OpTensor = {
          name: w.name,
          dtype: d.dtype,
          shape: w.shape,
          byteLength: bytesOf(d.dtype, w.shape),
        };
        return {
          ...base,
          action: "dequantize",
          note: why,
          output: { data: out, scale: null },
          target: { kind: "plain", dtype: d.dtype },
          bytesOut: out.byteLength,
        };
      };
      if (dense) {
        ops.push(toDense(`dequantize ${w.element} -> ${dense.dtype}`));
      } else if (opts.target !== "fp8" && !mxCompatible(w.shape)) {
        ops.push(
          toDense(
            `dequantize to BF16: row length ${w.shape[w.shape.length - 1]} is not a multiple of 32`,
            DENSE.bf16,
          ),
        );
        keptModules.push(w.name.replace(/\.weight$/, ""));
      } else {
        const output = quantOutput(w.name, w.shape);
        ops.push({
          ...base,
          action: "requantize",
          note: `requantize ${w.element} -> ${opts.target === "fp8" ? `fp8 ${opts.scaleFmt}` : opts.target}`,
          output,
          target: blockTarget(),
          bytesOut: output.data.byteLength + (output.scale?.byteLength ?? 0),
        });
      }
      continue;
    }
    const p = plainByName.get(t.name);
    if (!p) continue; // a scale tensor, handled with its weight
    const shape = [...t.shape];
    const copyOp = (note: string): TensorOp => ({
      index: ops.length,
      action: "copy",
      note,
      input: {
        data: t.name,
        scale: null,
        shard: t.shard,
        scaleShard: null,
        tensorScale: null,
        tensorScaleShard: null,
      },
      output: { data: { name: t.name, dtype: t.dtype, shape, byteLength: t.byteLength }, scale: null },
      shape,
      source: null,
      target: null,
      bytesIn: t.byteLength,
      bytesOut: t.byteLength,
      shard: "",
    });
    const wantQuant = !dense && selected.has(t.name);
    if (wantQuant && opts.target !== "fp8" && !mxCompatible(shape)) {
      ops.push(copyOp(`kept: row length ${shape[shape.length - 1]} is not a multiple of 32`));
      keptModules.push(t.name.replace(/\.weight$/, ""));
    } else if (wantQuant) {
      const output = quantOutput(t.name, shape);
      ops.push({
        index: ops.length,
        action: "quantize",
        note: `quantize ${t.dtype} -> ${opts.target === "fp8" ? `fp8 ${opts.scaleFmt}` : opts.target}`,
        input: {
          data: t.name,
          scale: null,
          shard: t.shard,
          scaleShard: null,
          tensorScale: null,
          tensorScaleShard: null,
        },
        output,
        shape,
        source: { kind: "plain", dtype: t.dtype as "BF16" | "F16" | "F32" },
        target: blockTarget(),
        bytesIn: t.byteLength,
        bytesOut: output.data.byteLength + (output.scale?.byteLength ?? 0),
        shard: "",
      });
    } else {
      ops.push(copyOp(choiceOf.get(t.name)?.reason ?? "kept"));
      if (!dense && t.shape.length === 2 && t.name.endsWith(".weight") && !/embed/.test(t.name)) {
        keptModules.push(t.name.replace(/\.weight$/, ""));
      }
    }
  }

  const shards = assignShards(ops, opts.maxShardSize);
  let outConfig: Record<string, unknown> | null = null;
  if (config) {
    let target: ConfigTarget;
    if (dense) target = { kind: "dense", dtype: dense.name };
    else if (opts.target === "fp8")
      target = {
        kind: "fp8-block",
        block: opts.block,
        scaleFmt: opts.scaleFmt,
        modulesToNotConvert: selection.preset === "generic" ? keptModules : undefined,
      };
    else target = { kind: opts.target === "mxfp4" ? "ct-mxfp4" : "ct-mxfp8", ignore: keptModules };
    outConfig = rewriteConfig(config, target);
  }
  const { quantized: _q, plain: _p, ...layoutInfo } = detected;
  return {
    options: opts,
    layout: layoutInfo,
    preset: selection.preset,
    ops,
    shards,
    config: outConfig,
    totalSize: shards.reduce((s, x) => s + x.bytes, 0),
    bytesIn: ops.reduce((s, o) => s + o.bytesIn, 0),
    bytesOut: ops.reduce((s, o) => s + o.bytesOut, 0),
    choices,
  };
}

/**
 * huggingface_hub's greedy shard rule over ops (a weight and its scale stay together): a new shard
 * starts when the next op would tip the current one over `max`; an op larger than `max` gets its own.
 */
function assignShards(ops: TensorOp[], max: number): PlannedShard[] {
  const groups: { ops: number[]; bytes: number }[] = [];
  let cur = { ops: [] as number[], bytes: 0 };
  for (const op of ops) {
    const size = op.bytesOut;
    if (size > max) {
      if (cur.ops.length > 0) {
        groups.push(cur);
        cur = { ops: [], bytes: 0 };
      }
      groups.push({ ops: [op.index], bytes: size });
      continue;
    }
    if (cur.bytes + size > max && cur.ops.length > 0) {
      groups.push(cur);
      cur = { ops: [], bytes: 0 };
    }
    cur.ops.push(op.index);
    cur.bytes += size;
  }
  if (cur.ops.length > 0 || groups.length === 0) groups.push(cur);
  return groups.map((g, i) => {
    const fileName = groups.length === 1 ? "model.safetensors" : shardFileName(i, groups.length);
    const descs: TensorDescriptor[] = [];
    for (const k of g.ops) {
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
    return { fileName, ops: g.ops, bytes: g.bytes, layout: planLayout(descs, SHARD_METADATA, fileName) };
  });
}

/** Shards of part `i` (1-based) of `n`: contiguous, equal counts (`--part i/n`). */
export function shardsOfPart(shards: readonly PlannedShard[], part: number, parts: number): PlannedShard[] {
  return shards.filter((_, k) => Math.floor((k * parts) / shards.length) === part - 1);
}
