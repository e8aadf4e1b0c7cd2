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
  type AscendQuantType,
  activationScaleTensor,
  ascendDescription,
  ascendQuantizes,
  type ConfigTarget,
  conversionRefusal,
  type DetectedLayout,
  detectLayout,
  fixedBlockOf,
  formatsOf,
  hfQuantConfigFor,
  isRoutedExpert,
  type LayoutFormat,
  matchAny,
  OUTPUT_FAMILIES,
  type OutputFamily,
  outputTensors,
  type QuantizedWeight,
  RECOGNIZER_OF,
  rewriteConfig,
  type SelectionPreset,
  scaleBiasChunks,
  selectTensors,
  sourceCodecOf,
  type TensorChoice,
  type TensorEntry,
  type Writer,
  type WrittenFormat,
  writerOf,
} from "../checkpoint/index.js";
import { relabelRefusal } from "../quant/kernels/relabel-band.js";
import {
  type MxRule,
  type RequantPath,
  type SourceCodec,
  type TargetCodec,
  WHOLE_ROW,
} from "../quant/kernels/types.js";
import {
  type Dtype,
  parseSize,
  planLayout,
  type SafetensorsLayout,
  splitIntoShards,
  type TensorDescriptor,
} from "../safetensors/index.js";
import { ConvertError } from "./errors.js";

export type TargetName = "bf16" | "fp16" | "fp32" | "fp8" | "mxfp8" | "mxfp4" | "nvfp4" | "w8a8" | "w4a8";
export const TARGET_NAMES: readonly TargetName[] = [
  "bf16",
  "fp16",
  "fp32",
  "fp8",
  "mxfp8",
  "mxfp4",
  "nvfp4",
  "w8a8",
  "w4a8",
];

/** Output layouts (`--layout`): a serving stack's dialect, or `dense`. */
export type LayoutName = OutputFamily;
export const LAYOUT_NAMES: readonly LayoutName[] = OUTPUT_FAMILIES;

/** Scale storage of fp8 targets: F32, F8_E8M0 bytes (DeepSeek), or BF16 (compressed-tensors). */
export type ScaleDtypeOption = "f32" | "e8m0" | "bf16";

/** Options of a conversion (CLI flags map one to one). `target` or `layout` (or both) is required. */
export interface ConvertOptions {
  /** Element format (`--to`); default: the source's format when `layout` writes it, else the layout's default. */
  target?: TargetName;
  /** Output dialect (`--layout`); default: the target's default layout (`DEFAULT_LAYOUT`). */
  layout?: LayoutName;
  /** fp8 target block `[rows, cols]` (default 128x128). */
  block?: [number, number];
  /** fp8 target scale format (default `ue8m0`, the DeepSeek-V3.1 format; a relabel keeps the source's). */
  scaleFmt?: "ue8m0" | "float";
  /** fp8 target scale storage (default: the layout's, F32 for DeepSeek, BF16 for compressed-tensors). */
  scaleDtype?: ScaleDtypeOption;
  /** MX scale rule (default: the rule the target layout's own producer uses, `DEFAULT_MX_RULE`). */
  scaleRule?: MxRule;
  /** Whose requantization a fp8 target reproduces from quantized input: `vllm` (default, float32) or `sglang` (through BF16). */
  requant?: RequantPath;
  /** Requantize even where the target could hold the source's codes as they are (no relabel). */
  requantize?: boolean;
  /** Relabel even when a scale must be rounded to the target's storage (float32 scales into BF16, NVFP4 scalars). */
  allowLossy?: boolean;
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
  /**
   * The multi-token-prediction layer of a DeepSeek-style model (layers from `num_hidden_layers` on)
   * in an Ascend output: `float` (default) writes it unquantized and described FLOAT, as
   * vllm-ascend asks; `drop` leaves it out.
   */
  mtp?: MtpPolicy;
}

export type MtpPolicy = "float" | "drop";
export const MTP_POLICIES: readonly MtpPolicy[] = ["float", "drop"];

export type BadScalePolicy = "refuse" | "keep";
export const BAD_SCALE_POLICIES: readonly BadScalePolicy[] = ["refuse", "keep"];

/** The options with every default filled in (what the journal records). */
export type ResolvedOptions = Required<ConvertOptions> & { maxShardSize: number };

const QUANTIZED_TARGETS: readonly TargetName[] = ["fp8", "mxfp8", "mxfp4", "nvfp4", "w8a8", "w4a8"];
const ASCEND_TARGETS: readonly TargetName[] = ["w8a8", "w4a8", "mxfp8"];

/** Options only some targets use (with their flags); given for another target they are refused. */
const TARGET_OPTIONS: readonly [keyof ConvertOptions, string, readonly TargetName[]][] = [
  ["block", "--block", ["fp8"]],
  ["scaleFmt", "--scale-fmt", ["fp8"]],
  ["scaleDtype", "--scale-dtype", ["fp8"]],
  ["requant", "--requant", ["fp8"]],
  ["scaleRule", "--scale-rule", ["mxfp8", "mxfp4"]],
  // Dense targets dequantize every weight and quantize nothing: there is no selection.
  ["preset", "--preset", QUANTIZED_TARGETS],
  ["include", "--include", QUANTIZED_TARGETS],
  ["exclude", "--exclude", QUANTIZED_TARGETS],
  ["requantize", "--requantize", QUANTIZED_TARGETS],
  ["allowLossy", "--allow-lossy", QUANTIZED_TARGETS],
  ["mtp", "--mtp", ASCEND_TARGETS],
];

/** The layout each target is written in when `--layout` is not given (today's commands). */
export const DEFAULT_LAYOUT: Readonly<Record<TargetName, LayoutName>> = {
  bf16: "dense",
  fp16: "dense",
  fp32: "dense",
  fp8: "deepseek",
  mxfp8: "compressed-tensors",
  mxfp4: "compressed-tensors",
  nvfp4: "compressed-tensors",
  w8a8: "ascend",
  w4a8: "ascend",
};

/** The target of a layout given alone, when the source's own format is not one the layout writes. */
export const DEFAULT_TARGET: Readonly<Record<LayoutName, TargetName>> = {
  deepseek: "fp8",
  "compressed-tensors": "fp8",
  modelopt: "nvfp4",
  "gpt-oss": "mxfp4",
  ascend: "w8a8",
  dense: "bf16",
};

/**
 * The MX scale rule of each layout's own producer (docs/LAYOUTS.md): what compressed-tensors /
 * llm-compressor, ModelOpt and gpt-oss store. `--scale-rule` picks another.
 */
export const DEFAULT_MX_RULE: Readonly<Record<LayoutName, MxRule>> = {
  deepseek: "floor",
  "compressed-tensors": "ct",
  modelopt: "modelopt",
  "gpt-oss": "triton",
  ascend: "floor",
  dense: "floor",
};

/** The scale storage each fp8 writer stores by default, as `--scale-dtype` names it. */
const SCALE_DTYPE_OPTION: Readonly<Record<string, ScaleDtypeOption>> = {
  F32: "f32",
  F8_E8M0: "e8m0",
  U8: "e8m0",
  BF16: "bf16",
};

/** Refuses options given (an empty list and `false` are not given) that the target does not use, naming them. */
function refuseUnusedOptions(o: ConvertOptions, target: TargetName): void {
  const unused = TARGET_OPTIONS.filter(([key, , targets]) => {
    const v = o[key];
    return (
      v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0) && !targets.includes(target)
    );
  });
  if (unused.length === 0) return;
  const uses = unused.map(([, flag, targets]) => `${flag} is for --to ${targets.join(", ")}`).join("; ");
  throw new ConvertError(
    "invalid-option",
    `${unused.map(([, flag]) => flag).join(", ")} ${unused.length > 1 ? "do" : "does"} not apply to --to ${target} (${uses})`,
  );
}

/** What a source layout tells option defaults: its format and scale format (null: unquantized or unknown). */
export interface SourceFormat {
  format: LayoutFormat | null;
  scaleFmt: "float" | "ue8m0" | null;
  /** The block-scale storage of every quantized weight, as `--scale-dtype` names it, or null. */
  scaleDtype: ScaleDtypeOption | null;
}

const isDense = (t: TargetName) => t === "bf16" || t === "fp16" || t === "fp32";

/** Target and layout from the options: each defaults from the other (and the source), and the pair must exist. */
function resolveTargetAndLayout(o: ConvertOptions, source: SourceFormat): [TargetName, LayoutName] {
  if (o.target !== undefined && !TARGET_NAMES.includes(o.target)) {
    throw new ConvertError(
      "invalid-option",
      `--to must be one of ${TARGET_NAMES.join(", ")}, got ${JSON.stringify(o.target)}`,
    );
  }
  if (o.layout !== undefined && !LAYOUT_NAMES.includes(o.layout)) {
    throw new ConvertError(
      "invalid-option",
      `--layout must be one of ${LAYOUT_NAMES.join(", ")}, got ${JSON.stringify(o.layout)}`,
    );
  }
  if (o.target === undefined && o.layout === undefined)
    throw new ConvertError("invalid-option", "--to <target> or --layout <layout> is required");
  const layout = o.layout ?? DEFAULT_LAYOUT[o.target!];
  let target = o.target;
  if (target === undefined) {
    const own = source.format;
    const writes = layout === "dense" ? [] : (formatsOf(layout) as string[]);
    target = own !== null && writes.includes(own) ? (own as TargetName) : DEFAULT_TARGET[layout];
  }
  const fits =
    layout === "dense" ? isDense(target) : !isDense(target) && writerOf(layout, target as WrittenFormat);
  if (!fits) {
    const formats = layout === "dense" ? "bf16, fp16, fp32" : formatsOf(layout).join(", ");
    throw new ConvertError(
      "invalid-option",
      `--layout ${layout} does not hold ${target} (it writes ${formats})`,
    );
  }
  return [target, layout];
}

/**
 * Every option with its default filled in. `source` (the detected input layout) sets the defaults
 * that follow the input: with `--layout` alone the target keeps the source's format, and a fp8
 * relabel keeps its scale format.
 */
export function resolveOptions(
  o: ConvertOptions,
  source: SourceFormat = { format: null, scaleFmt: null, scaleDtype: null },
): ResolvedOptions {
  const [target, layout] = resolveTargetAndLayout(o, source);
  refuseUnusedOptions(o, target);
  if (o.mtp !== undefined && layout !== "ascend") {
    throw new ConvertError(
      "invalid-option",
      `--mtp does not apply to --layout ${layout} (it is for --layout ascend)`,
    );
  }
  const writer = isDense(target)
    ? null
    : writerOf(layout as Exclude<LayoutName, "dense">, target as WrittenFormat);
  const keepsFormat = o.target === undefined && source.format === target;
  // Only fp8 targets have a choice of scale storage (MX: U8 E8M0, NVFP4: E4M3).
  const scaleDtypes = (target === "fp8" && writer ? writer.scaleDtypes : ["F32"]).map(
    (d) => SCALE_DTYPE_OPTION[d],
  );
  if (o.scaleDtype !== undefined && target === "fp8" && !scaleDtypes.includes(o.scaleDtype)) {
    throw new ConvertError(
      "invalid-option",
      `--scale-dtype ${o.scaleDtype} is not a ${layout} scale storage (it stores ${scaleDtypes.join(" or ")})`,
    );
  }
  const r: ResolvedOptions = {
    target,
    layout,
    block: o.block ?? [128, 128],
    scaleFmt: o.scaleFmt ?? (keepsFormat && source.scaleFmt !== null ? source.scaleFmt : "ue8m0"),
    // A fp8 source's scale storage, when the target layout stores it too (DeepSeek F32 scales stay
    // F32 in compressed-tensors, as its own FP8 converter writes them); else the layout's default.
    scaleDtype:
      o.scaleDtype ??
      (source.format === "fp8" && source.scaleDtype !== null && scaleDtypes.includes(source.scaleDtype)
        ? source.scaleDtype
        : scaleDtypes[0]),
    scaleRule: o.scaleRule ?? DEFAULT_MX_RULE[layout],
    requant: o.requant ?? "vllm",
    requantize: o.requantize ?? false,
    allowLossy: o.allowLossy ?? false,
    preset: o.preset ?? "auto",
    include: o.include ?? [],
    exclude: o.exclude ?? [],
    maxShardSize: parseSize(o.maxShardSize ?? "5GB"),
    badScales: o.badScales ?? "refuse",
    mtp: o.mtp ?? "float",
  };
  if (!MTP_POLICIES.includes(r.mtp)) {
    throw new ConvertError(
      "invalid-option",
      `--mtp must be one of ${MTP_POLICIES.join(", ")}, got ${JSON.stringify(r.mtp)}`,
    );
  }
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
  /** Ascend's quant_model_description.json parsed, or null/absent. */
  ascendDescription?: Record<string, unknown> | null;
  tensors: readonly InputTensor[];
}

/**
 * What happens to one input weight (or plain tensor). `relabel`: the target holds the source's codes
 * as they are; they are copied and only the scales re-encoded (lossless unless `--allow-lossy` let a
 * scale round to the target's storage).
 */
export type OpAction = "copy" | "dequantize" | "quantize" | "requantize" | "relabel";

/**
 * How a relabel's scales reach the target: `exact` (every value of the source's scale storage fits
 * the target's: E8M0 into F32, BF16 or E8M0, anything into F32) or `check` (whether they fit depends on
 * the values: float32 into BF16, declared-UE8M0 float32 into E8M0, an NVFP4 scalar's reciprocal),
 * checked before anything is written (convert/relabel-check.ts).
 */
export type RelabelMode = "exact" | "check";

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
  output: {
    data: OpTensor;
    scale: OpTensor | null;
    tensorScale: OpTensor | null;
    /** Written as zeros, shaped as the scale (Ascend's `weight_offset`). */
    zeros?: OpTensor | null;
    /** A per-row companion the kernel computes with the codes (Ascend W4A8's `scale_bias`). */
    aux?: OpTensor | null;
  };
  /** For `relabel` ops: whether the scales need a value check before writing. */
  relabel: RelabelMode | null;
  /**
   * A copied F32 scalar written as its float32 reciprocal: an NVFP4 activation scale relabelled
   * between ModelOpt (`input_scale`) and compressed-tensors (`input_global_scale`).
   */
  reciprocal?: boolean;
  /**
   * Round the decoded input to BF16 before encoding (`BandSpec.via`): SGLang's requantization
   * (`--requant sglang`), and compressed-tensors' rules, which are rules of BF16 models (a non-BF16
   * input goes through BF16 first, as dequantizing to BF16 and running llm-compressor would).
   */
  via?: "BF16";
  /**
   * A dequantized matrix written with its last two dimensions swapped (gpt-oss experts, whose BF16
   * parameters are input-major): converted a whole matrix per band, then transposed.
   */
  transpose?: boolean;
  /**
   * The input holds each matrix transposed (`[in, out]`; gpt-oss's BF16 experts): converted a whole
   * matrix per band, read transposed into the logical `shape`.
   */
  transposeInput?: boolean;
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
  /** ModelOpt's `hf_quant_config.json` for a `modelopt` output (written even without a config.json), else null. */
  hfQuantConfig: Record<string, unknown> | null;
  /** Ascend's `quant_model_description.json` for an `ascend` output, else null. */
  ascendDescription: Record<string, unknown> | null;
  totalSize: number;
  bytesIn: number;
  bytesOut: number;
  /** What the same tensors take in BF16 (copied tensors as they are): what a BF16 checkpoint of the model needs. */
  bf16Bytes: number;
  choices: TensorChoice[];
}

/** `__metadata__` of every output shard (transformers reads `format`). */
export const SHARD_METADATA: Readonly<Record<string, string>> = { format: "pt" };

const DENSE: Record<string, { dtype: "BF16" | "F16" | "F32"; name: "bfloat16" | "float16" | "float32" }> = {
  bf16: { dtype: "BF16", name: "bfloat16" },
  fp16: { dtype: "F16", name: "float16" },
  fp32: { dtype: "F32", name: "float32" },
};

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

const bytesOf = (dtype: Dtype, shape: readonly number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return dtype === "F32" ? n * 4 : dtype === "BF16" || dtype === "F16" ? n * 2 : n;
};

/** What every op builder needs: the options, where input tensors live, the selection. */
interface OpContext {
  opts: ResolvedOptions;
  dense: (typeof DENSE)[string] | undefined;
  /** The target codec of quantized outputs (null for dense targets). */
  target: TargetCodec | null;
  /** The source layout's declared scale format (`scale_fmt`), null when it declares none. */
  declaredScaleFmt: "float" | "ue8m0" | null;
  shardOf: Map<string, string>;
  byteLen: Map<string, number>;
  selected: ReadonlySet<string>;
  choiceOf: Map<string, TensorChoice>;
  /** Modules left unquantized in a quantized output (the config's ignore list). */
  keptModules: string[];
  /** NVFP4 outputs without activation scales (set once every op is planned). */
  weightOnly: boolean;
  /** Dense stacked experts the target layout holds are quantized (an unquantized input). */
  quantizesExperts: boolean;
  /** Whether a tensor belongs to the MTP layer an Ascend output writes FLOAT (`--mtp float`). */
  isMtp: (name: string) => boolean;
  /** MTP tensors were left out (`--mtp drop`). */
  droppedMtp: boolean;
  /** W4A8: MoE layers kept W8A8 because one of their experts cannot be INT4 (`int8MoeLayers`). */
  int8Moe: ReadonlySet<string>;
}

/**
 * The multi-token-prediction layers of a DeepSeek-style model: `model.layers.{i}` with i at or
 * beyond config.json's `num_hidden_layers` (DeepSeek-V3's layer 61; vLLM's `deepseek_mtp.py` builds
 * it from `num_nextn_predict_layers`, and the main model skips those weights).
 */
function mtpTest(config: PlanInput["config"]): (name: string) => boolean {
  const n = config?.num_hidden_layers;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) return () => false;
  return (name) => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return m !== null && Number(m[1]) >= n;
  };
}

/** The quantization type vllm-ascend reads for each written tensor of `op` (ASCEND.md §1.3). */
function ascendTypeOf(op: TensorOp): AscendQuantType {
  if (op.target?.kind === "mx") return "W8A8_MXFP8";
  if (op.target?.kind !== "int-channel") return "FLOAT";
  return op.target.bits === 4 ? "W4A8_DYNAMIC" : "W8A8_DYNAMIC";
}

/** `quant_model_description.json` of an Ascend output: every written tensor, in shard order. */
function ascendDescriptionOf(ops: readonly TensorOp[], shards: readonly PlannedShard[]) {
  const entries: { name: string; type: AscendQuantType }[] = [];
  for (const s of shards)
    for (const k of s.ops) {
      const op = ops[k];
      const type = ascendTypeOf(op);
      const o = op.output;
      for (const t of [o.data, o.scale, o.zeros, o.aux, o.tensorScale])
        if (t) entries.push({ name: t.name, type });
    }
  return ascendDescription(entries);
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
  let choices = selection.choices.map((c) =>
    isQuantizedInput && c.quantize && !selected.has(c.name)
      ? { ...c, quantize: false, reason: "kept: input is already quantized (use --include to add tensors)" }
      : c,
  );
  if (opts.layout === "ascend" && !isQuantizedInput)
    choices = ascendChoices(detected, opts, choices, selected);
  return { preset: selection.preset, selected, choices };
}

/**
 * An unquantized input written for Ascend is quantized as msModelSlim's recipes quantize it (the
 * linears under `self_attn` and `mlp`, `ascendQuantizes`), whatever the preset: stacked experts
 * `[E, out, in]` included, so that a BF16 input gives what its FP8 version gives. `--exclude` wins.
 */
function ascendChoices(
  detected: DetectedLayout,
  opts: ResolvedOptions,
  choices: TensorChoice[],
  selected: Set<string>,
): TensorChoice[] {
  const byName = new Map(detected.plain.map((t) => [t.name, t]));
  return choices.map((c) => {
    const t = byName.get(c.name);
    const linear =
      t !== undefined &&
      (t.dtype === "BF16" || t.dtype === "F16" || t.dtype === "F32") &&
      (t.shape.length === 2 || t.shape.length === 3) &&
      c.name.endsWith(".weight") &&
      ascendQuantizes(c.name) &&
      !matchAny(c.name, opts.exclude);
    if (!linear || c.quantize) return c;
    selected.add(c.name);
    return { ...c, quantize: true, reason: "Ascend quantizes the linears under self_attn and mlp" };
  });
}

/** The writer of the options' quantized target (null for dense targets). */
function writerOfOptions(opts: ResolvedOptions) {
  if (opts.layout === "dense") return null;
  return writerOf(opts.layout, opts.target as WrittenFormat);
}

const FP8_SCALE_DTYPE = { f32: "F32", e8m0: "F8_E8M0", bf16: "BF16" } as const;

/** The quantized target codec of the options (null for dense targets). */
function targetCodecOf(opts: ResolvedOptions): TargetCodec | null {
  switch (opts.target) {
    case "fp8":
      return {
        kind: "fp8-block",
        block: opts.block,
        scaleFmt: opts.scaleFmt,
        scaleDtype: FP8_SCALE_DTYPE[opts.scaleDtype],
      };
    case "mxfp8":
    case "mxfp4":
      return {
        kind: "mx",
        element: opts.target === "mxfp4" ? "float4_e2m1fn" : "float8_e4m3fn",
        rule: opts.scaleRule,
      };
    case "nvfp4": {
      const modelopt = opts.layout === "modelopt";
      return {
        kind: "nvfp4",
        tensorScale: modelopt ? "multiply" : "divide",
        rule: modelopt ? "modelopt" : "compressed-tensors",
      };
    }
    case "w8a8":
    case "w4a8":
      // Per weight (targetOf): a W4A8 output stores routed experts as INT4, the rest as INT8.
      return { kind: "int-channel", bits: 8 };
    default:
      return null;
  }
}

const tensorOf = (name: string, dtype: Dtype, shape: number[]): OpTensor => ({
  name,
  dtype,
  shape,
  byteLength: bytesOf(dtype, shape),
});

/**
 * Whether a routed expert weight of `shape` can be packed INT4: rows that pair up (`[out / 2, in]`)
 * and, for down projections, rows that split into the 16 chunks of `scale_bias` (ASCEND.md §4.2).
 */
function int4Fits(name: string, shape: readonly number[]): boolean {
  return (
    shape.length >= 2 &&
    shape[shape.length - 2] % 2 === 0 &&
    shape[shape.length - 1] % scaleBiasChunks(name) === 0
  );
}

/** The MoE a routed expert belongs to (`model.layers.3.mlp` of `model.layers.3.mlp.experts.7.up_proj.weight`). */
const moeOf = (name: string) => name.slice(0, name.indexOf(".experts."));

/**
 * The MoE layers whose experts cannot all be INT4: vllm-ascend takes one type per MoE layer (expert
 * 0's, and every fused weight must agree, `modelslim_config.py:444-467`), so one expert that does not
 * fit keeps the whole layer W8A8.
 */
function int8MoeLayers(names: readonly { name: string; shape: readonly number[] }[]): Set<string> {
  const out = new Set<string>();
  for (const { name, shape } of names)
    if (isRoutedExpert(name) && !int4Fits(name, shape)) out.add(moeOf(name));
  return out;
}

/**
 * Whether an Ascend W4A8 output stores weight `name` of `shape` as packed INT4: routed experts of a
 * MoE layer whose experts all fit (`int4Fits`); the other quantized linears are W8A8 (ASCEND.md §4.1).
 */
function isInt4(ctx: OpContext, name: string, shape: readonly number[]): boolean {
  if (ctx.opts.target !== "w4a8" || !isRoutedExpert(name)) return false;
  return int4Fits(name, shape) && !ctx.int8Moe.has(moeOf(name));
}

/** The writer and target codec of weight `name` (W4A8 outputs mix INT4 experts and INT8 linears). */
function targetOf(ctx: OpContext, name: string, shape: readonly number[]): [Writer, TargetCodec] {
  const { opts } = ctx;
  if (opts.layout !== "ascend" || ctx.target?.kind !== "int-channel")
    return [writerOfOptions(opts)!, ctx.target!];
  if (isInt4(ctx, name, shape))
    return [writerOf("ascend", "w4a8")!, { kind: "int-channel", bits: 4, scaleBias: scaleBiasChunks(name) }];
  return [writerOf("ascend", "w8a8")!, { kind: "int-channel", bits: 8 }];
}

/** Output tensors of a weight written in the target layout (codes, block scales, NVFP4's scalar, Ascend's offsets). */
function quantOutput(ctx: OpContext, weightName: string, shape: number[]): TensorOp["output"] {
  const { opts } = ctx;
  const [writer, target] = targetOf(ctx, weightName, shape);
  const block: [number, number] =
    opts.target === "fp8"
      ? opts.block
      : target.kind === "int-channel"
        ? [1, WHOLE_ROW]
        : fixedBlockOf(writer)!;
  const scaleDtype: Dtype = opts.target === "fp8" ? FP8_SCALE_DTYPE[opts.scaleDtype] : writer.scaleDtypes[0];
  const t = outputTensors(writer, weightName, shape, block, scaleDtype);
  const of = (x: { name: string; dtype: Dtype; shape: number[] }) => tensorOf(x.name, x.dtype, x.shape);
  const out: TensorOp["output"] = {
    data: of(t.data),
    scale: of(t.scale),
    tensorScale: t.tensorScale ? of(t.tensorScale) : null,
  };
  if (t.zeros) out.zeros = of(t.zeros);
  if (t.aux) out.aux = of(t.aux);
  return out;
}

/** Bytes an op's output tensors take. */
const outputBytes = (o: TensorOp["output"]) =>
  o.data.byteLength +
  (o.scale?.byteLength ?? 0) +
  (o.tensorScale?.byteLength ?? 0) +
  (o.zeros?.byteLength ?? 0) +
  (o.aux?.byteLength ?? 0);

/** Whether `target` follows one of compressed-tensors' producer rules (computed on BF16 weights). */
function isCtRule(target: TargetCodec): boolean {
  if (target.kind === "mx") return target.rule === "ct";
  if (target.kind === "nvfp4") return target.rule === "compressed-tensors";
  return target.kind === "fp8-block" && target.scaleDtype === "BF16" && target.scaleFmt === "float";
}

/** The BF16 detour of an op that encodes `source` into `target` (see `TensorOp.via`). */
function viaOf(opts: ResolvedOptions, source: SourceCodec, target: TargetCodec): { via?: "BF16" } {
  if (target.kind === "fp8-block" && source.kind !== "plain" && opts.requant === "sglang")
    return { via: "BF16" };
  // compressed-tensors' rules, and msModelSlim (Ascend), quantize BF16 models: other input goes through BF16.
  const bf16Model = isCtRule(target) || (opts.layout === "ascend" && target.kind === "mx");
  if (bf16Model && !(source.kind === "plain" && source.dtype === "BF16")) return { via: "BF16" };
  return {};
}

/** Groups of 32 (MX) or 16 (NVFP4) need whole groups per row; fp8 blocks may be partial. */
function groupFits(opts: ResolvedOptions, shape: readonly number[]): boolean {
  if (opts.target === "fp8" || opts.target === "w8a8" || opts.target === "w4a8") return true;
  const group = opts.target === "nvfp4" ? 16 : 32;
  return shape.length >= 1 && shape[shape.length - 1] % group === 0;
}
const moduleOf = (name: string) => name.replace(/\.weight$/, "");
const targetNote = (opts: ResolvedOptions, target: TargetCodec) =>
  target.kind === "int-channel"
    ? `ascend ${target.bits === 4 ? "W4A8_DYNAMIC (INT4)" : "W8A8_DYNAMIC (INT8)"} per channel`
    : `${opts.layout} ${opts.target === "fp8" ? `fp8 ${opts.scaleFmt}` : opts.target}`;

/** Scale storages whose every value every other float storage holds exactly (powers of two). */
const POWER_OF_TWO_STORAGE = new Set(["ue8m0"]);

/**
 * Whether weight `w` can be relabelled to `target` (its codes kept), and how its scales get there;
 * null when it must be requantized. Power-of-two targets (E8M0 storage, UE8M0 fp8) take float
 * scales only when the source declares them UE8M0 (DeepSeek-V3.1's `scale_fmt`), and then check
 * every value; a float source otherwise requantizes, as it always has.
 */
function relabelModeOf(ctx: OpContext, w: QuantizedWeight, target: TargetCodec): RelabelMode | null {
  if (ctx.opts.requantize) return null;
  const source = sourceCodecOf(w);
  const cols = w.shape[w.shape.length - 1];
  if (relabelRefusal({ source, target, cols }) !== null) return null;
  if (source.kind === "int-channel") return "exact";
  if (source.kind !== "block") return null;
  if (target.kind === "nvfp4") return target.tensorScale === source.tensorScale ? "exact" : "check";
  const exactPow2 = POWER_OF_TWO_STORAGE.has(source.scaleStorage);
  const powerOfTwoTarget =
    target.kind === "mx" ||
    (target.kind === "fp8-block" && (target.scaleFmt === "ue8m0" || target.scaleDtype === "F8_E8M0"));
  if (powerOfTwoTarget) {
    if (exactPow2) return "exact";
    return ctx.declaredScaleFmt === "ue8m0" ? "check" : null;
  }
  // A float target: F32 holds every stored scale; BF16 holds E8M0 and BF16 exactly.
  if (target.kind !== "fp8-block") return null;
  if (target.scaleDtype === "F32" || exactPow2 || source.scaleStorage === "bf16") return "exact";
  return "check";
}

/** The op of one quantized input weight: dequantize to a dense dtype, relabel, or requantize. */
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
  const tensorScaleBytes = w.tensorScale ? (ctx.byteLen.get(w.tensorScale.name) ?? 0) : 0;
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
    bytesIn: t.byteLength + (ctx.byteLen.get(w.scale) ?? 0) + tensorScaleBytes,
    shard: "",
    relabel: null,
  };
  // gpt-oss stores its experts output-major ([E, 2I, H] blocks) but its BF16 parameters input-major
  // ([E, H, 2I]: transformers `GptOssExperts`, which `convert_moe_packed_tensors` + transpose fills).
  const transpose = w.layout === "gpt-oss-mxfp4" && w.shape.length >= 2;
  const denseShape = transpose
    ? [...w.shape.slice(0, -2), w.shape[w.shape.length - 1], w.shape[w.shape.length - 2]]
    : w.shape;
  const toDense = (note: string, d = ctx.dense ?? DENSE.bf16): TensorOp => {
    const out = tensorOf(w.name, d.dtype, denseShape);
    const target: TargetCodec = { kind: "plain", dtype: d.dtype };
    return {
      ...base,
      action: "dequantize",
      note: transpose ? `${note}, transposed to gpt-oss's [.., in, out] parameter` : note,
      output: { data: out, scale: null, tensorScale: null },
      target,
      bytesOut: out.byteLength,
      ...(transpose ? { transpose: true } : {}),
    };
  };
  if (ctx.dense) return toDense(`dequantize ${w.element} -> ${ctx.dense.dtype}`);
  if (ctx.isMtp(w.name)) return toDense("dequantize to BF16: the MTP layer is written FLOAT (--mtp float)");
  const holds = writerOfOptions(opts)?.holds;
  if (holds && !holds.test(w.name)) {
    ctx.keptModules.push(moduleOf(w.name));
    return toDense(`dequantize to BF16: ${holds.why}`);
  }
  if (!groupFits(opts, w.shape)) {
    ctx.keptModules.push(moduleOf(w.name));
    return toDense(
      `dequantize to BF16: row length ${w.shape[w.shape.length - 1]} is not a multiple of ${opts.target === "nvfp4" ? 16 : 32}`,
    );
  }
  const output = quantOutput(ctx, w.name, w.shape);
  const target = targetOf(ctx, w.name, w.shape)[1];
  const mode = relabelModeOf(ctx, w, target);
  const bytesOut = outputBytes(output);
  if (mode !== null) {
    const note =
      mode === "exact"
        ? "relabel (lossless)"
        : "relabel (lossless once every scale is checked to fit the target's storage)";
    return { ...base, action: "relabel", note, output, target, bytesOut, relabel: mode };
  }
  const via = opts.target === "fp8" && opts.requant === "sglang" ? ", through BF16 as SGLang" : "";
  return {
    ...base,
    action: "requantize",
    note: `requantize ${w.element} -> ${targetNote(opts, target)}${via}`,
    output,
    target,
    bytesOut,
    ...viaOf(opts, base.source, target),
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
    output: {
      data: { name: t.name, dtype: t.dtype, shape, byteLength: t.byteLength },
      scale: null,
      tensorScale: null,
    },
    relabel: null,
    shape,
    source: null,
    target: null,
    bytesIn: t.byteLength,
    bytesOut: t.byteLength,
    shard: "",
  });
  const holds = writerOfOptions(opts)?.holds;
  // gpt-oss's BF16 experts `[E, in, out]`: quantized along `in`, as transformers' quantize_to_mxfp4
  // does (`downcast_to_mxfp_torch(..., axis=1)`), into blocks `[E, out, in/32, 16]`.
  const stackedExperts =
    !ctx.dense &&
    opts.layout === "gpt-oss" &&
    ctx.quantizesExperts &&
    holds?.test(t.name) === true &&
    t.shape.length === 3 &&
    (t.dtype === "BF16" || t.dtype === "F16" || t.dtype === "F32") &&
    !matchAny(t.name, opts.exclude);
  if (stackedExperts) {
    const logical = [shape[0], shape[2], shape[1]];
    if (logical[2] % 32 === 0) return expertsOp(ctx, t, logical, input, index);
  }
  const wantQuant = !ctx.dense && ctx.selected.has(t.name) && !ctx.isMtp(t.name);
  if (wantQuant && holds && !holds.test(t.name)) {
    ctx.keptModules.push(moduleOf(t.name));
    return copy(`kept: ${holds.why}`);
  }
  if (wantQuant && !groupFits(opts, shape)) {
    ctx.keptModules.push(moduleOf(t.name));
    return copy(
      `kept: row length ${shape[shape.length - 1]} is not a multiple of ${opts.target === "nvfp4" ? 16 : 32}`,
    );
  }
  if (!wantQuant) {
    if (!ctx.dense && t.shape.length === 2 && t.name.endsWith(".weight") && !/embed/.test(t.name)) {
      ctx.keptModules.push(moduleOf(t.name));
    }
    return copy(ctx.choiceOf.get(t.name)?.reason ?? "kept");
  }
  const output = quantOutput(ctx, t.name, shape);
  const target = targetOf(ctx, t.name, shape)[1];
  const source: SourceCodec = { kind: "plain", dtype: t.dtype as "BF16" | "F16" | "F32" };
  return {
    index,
    action: "quantize",
    note: `quantize ${t.dtype} -> ${targetNote(opts, target)}`,
    input,
    output,
    relabel: null,
    shape,
    source,
    target,
    ...viaOf(opts, source, target),
    bytesIn: t.byteLength,
    bytesOut: outputBytes(output),
    shard: "",
  };
}

/**
 * The op quantizing a BF16/F16/F32 stacked expert parameter `[E, in, out]` into gpt-oss's blocks:
 * the logical (output-major) shape is `[E, out, in]`, each matrix read transposed
 * (`TensorOp.transposeInput`).
 */
function expertsOp(
  ctx: OpContext,
  t: InputTensor,
  logical: number[],
  input: TensorOp["input"],
  index: number,
): TensorOp {
  const { opts } = ctx;
  const output = quantOutput(ctx, t.name, logical);
  const source: SourceCodec = { kind: "plain", dtype: t.dtype as "BF16" | "F16" | "F32" };
  return {
    index,
    action: "quantize",
    note: `quantize ${t.dtype} -> ${targetNote(opts, ctx.target!)}, each [in, out] matrix read transposed`,
    input,
    output,
    relabel: null,
    shape: logical,
    source,
    target: ctx.target!,
    transposeInput: true,
    bytesIn: t.byteLength,
    bytesOut: output.data.byteLength + (output.scale?.byteLength ?? 0),
    shard: "",
  };
}

/** The config target of the options: what config.json (and hf_quant_config.json) declare. */
function configTargetOf(ctx: OpContext, preset: SelectionPreset): ConfigTarget {
  const { opts, dense, keptModules } = ctx;
  if (dense) return { kind: "dense", dtype: dense.name };
  switch (opts.layout) {
    case "deepseek": {
      const modulesToNotConvert = preset === "generic" ? keptModules : undefined;
      return { kind: "fp8-block", block: opts.block, scaleFmt: opts.scaleFmt, modulesToNotConvert };
    }
    case "compressed-tensors": {
      const format = opts.target as "fp8" | "mxfp8" | "mxfp4" | "nvfp4";
      // MXFP4 and NVFP4 outputs carry no activation scales: weight-only schemes.
      const weightOnly = format === "mxfp4" || (format === "nvfp4" && ctx.weightOnly);
      return { kind: "compressed-tensors", format, block: opts.block, weightOnly, ignore: keptModules };
    }
    case "modelopt":
      return {
        kind: "modelopt",
        format: opts.target as "mxfp8" | "nvfp4",
        weightOnly: ctx.weightOnly,
        exclude: keptModules,
      };
    case "gpt-oss":
      return { kind: "gpt-oss", modulesToNotConvert: keptModules };
    case "ascend":
      if (opts.target === "mxfp8") return { kind: "ascend", dropMtp: ctx.droppedMtp };
      return {
        kind: "ascend",
        quantize: "w8a8_dynamic",
        moeQuantize: opts.target === "w4a8" ? "w4a8_dynamic" : "w8a8_dynamic",
        dropMtp: ctx.droppedMtp,
      };
    default:
      throw new ConvertError("invalid-option", `no config for layout ${opts.layout}`);
  }
}

/**
 * The activation scale of an NVFP4 weight relabelled into an NVFP4 layout, carried over so the
 * output stays W4A4: copied within a dialect, its float32 reciprocal across (ModelOpt's
 * `input_scale` is compressed-tensors' `1 / input_global_scale`, `converters/modelopt_nvfp4.py`).
 * Null when the weight is not relabelled or has no such scale (quantized outputs are weight-only).
 */
function activationOp(
  ctx: OpContext,
  w: QuantizedWeight,
  op: TensorOp,
  byName: ReadonlyMap<string, InputTensor>,
  index: number,
): TensorOp | null {
  const src = w.auxiliary.map((n) => byName.get(n)).find((t) => t !== undefined);
  const out = activationScaleTensor(writerOfOptions(ctx.opts)!, w.name);
  if (op.action !== "relabel" || !src || !out || src.dtype !== "F32" || src.byteLength !== 4) return null;
  const source = op.source;
  const reciprocal =
    source?.kind === "block" && op.target?.kind === "nvfp4" && source.tensorScale !== op.target.tensorScale;
  return {
    index,
    action: "copy",
    note: reciprocal ? "activation scale, as its float32 reciprocal" : "activation scale",
    input: {
      data: src.name,
      scale: null,
      shard: src.shard,
      scaleShard: null,
      tensorScale: null,
      tensorScaleShard: null,
    },
    output: { data: tensorOf(out.name, out.dtype, out.shape), scale: null, tensorScale: null },
    relabel: null,
    reciprocal,
    shape: [...out.shape],
    source: null,
    target: null,
    bytesIn: 4,
    bytesOut: 4,
    shard: "",
  };
}

/** The source's format and declared scale format, for the option defaults that follow the input. */
function sourceFormatOf(detected: DetectedLayout): SourceFormat {
  const formats = new Set(detected.quantized.map((w) => RECOGNIZER_OF.get(w.layout)?.format ?? null));
  // An Ascend W4A8 checkpoint mixes INT4 experts and INT8 linears (detect.ts): its format is w4a8.
  const format = formats.size === 1 ? [...formats][0] : detected.kind === "ascend-w4a8" ? "w4a8" : null;
  const dtypes = new Set(detected.quantized.map((w) => SCALE_DTYPE_OPTION[w.scaleDtype] ?? null));
  const scaleDtype = dtypes.size === 1 ? [...dtypes][0] : null;
  return { format, scaleFmt: detected.scaleFmt, scaleDtype };
}

/** Make the plan; throws `ConvertError` naming the shard and tensor for a layout it cannot convert. */
export function planConversion(input: PlanInput, options: ConvertOptions): ConvertPlan {
  const { config, tensors } = input;
  const detected = detectLayout(
    config,
    tensors,
    input.hfQuantConfig ?? null,
    input.ascendDescription ?? null,
  );
  const opts = resolveOptions(options, sourceFormatOf(detected));
  const shardOf = new Map(tensors.map((t) => [t.name, t.shard]));
  refuseUnsupported(detected, opts, shardOf);
  const { preset, selected, choices } = selectPlain(detected, opts, config);
  const ctx: OpContext = {
    opts,
    dense: DENSE[opts.target],
    target: targetCodecOf(opts),
    declaredScaleFmt: detected.scaleFmt,
    shardOf,
    byteLen: new Map(tensors.map((t) => [t.name, t.byteLength])),
    selected,
    choiceOf: new Map(choices.map((c) => [c.name, c])),
    keptModules: [],
    weightOnly: true,
    quantizesExperts: detected.kind === "unquantized",
    isMtp: opts.layout === "ascend" ? mtpTest(config) : () => false,
    droppedMtp: false,
    int8Moe: opts.target === "w4a8" ? int8MoeLayers([...detected.quantized, ...detected.plain]) : new Set(),
  };
  const dropMtp = opts.layout === "ascend" && opts.mtp === "drop";
  const quantByData = new Map(detected.quantized.map((w) => [w.data, w]));
  const plainNames = new Set(detected.plain.map((t) => t.name));
  const ops: TensorOp[] = [];
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let nvfp4Weights = 0;
  let activationScales = 0;
  for (const t of tensors) {
    const w = quantByData.get(t.name);
    if (dropMtp && ctx.isMtp(w?.name ?? t.name)) {
      ctx.droppedMtp = true;
      continue;
    }
    if (w) {
      const op = weightOp(ctx, w, t, ops.length);
      ops.push(op);
      if (op.target?.kind !== "nvfp4") continue;
      nvfp4Weights++;
      const act = activationOp(ctx, w, op, byName, ops.length);
      if (act) {
        ops.push(act);
        activationScales++;
      }
    } else if (plainNames.has(t.name)) ops.push(plainOp(ctx, t, ops.length));
    // else: a scale or activation-side tensor, written (or dropped) with its weight
  }
  // W4A4 only when every NVFP4 weight kept its activation scale (a relabel of a W4A4 checkpoint).
  ctx.weightOnly = !(nvfp4Weights > 0 && activationScales === nvfp4Weights);
  const shards = assignShards(ops, opts.maxShardSize);
  // Nothing quantized (every row too short for the target's groups): a dense checkpoint, said so.
  const quantizes = ops.some((o) => o.target !== null && o.target.kind !== "plain");
  const configTarget: ConfigTarget =
    quantizes || ctx.dense ? configTargetOf(ctx, preset) : { kind: "dense", dtype: "bfloat16" };
  const { quantized: _q, plain: _p, ...layoutInfo } = detected;
  return {
    options: opts,
    layout: layoutInfo,
    preset,
    ops,
    shards,
    config: config ? rewriteConfig(config, configTarget) : null,
    hfQuantConfig: hfQuantConfigFor(configTarget),
    ascendDescription: opts.layout === "ascend" ? ascendDescriptionOf(ops, shards) : null,
    totalSize: shards.reduce((s, x) => s + x.bytes, 0),
    bytesIn: ops.reduce((s, o) => s + o.bytesIn, 0),
    bytesOut: ops.reduce((s, o) => s + o.bytesOut, 0),
    bf16Bytes: ops.reduce((s, o) => s + (o.action === "copy" ? o.bytesOut : 2 * numel(o.shape)), 0),
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
      for (const extra of [op.output.scale, op.output.zeros, op.output.aux, op.output.tensorScale]) {
        if (extra) descs.push({ name: extra.name, dtype: extra.dtype, shape: extra.shape });
      }
    }
    return { fileName, ops: items, bytes, layout: planLayout(descs, SHARD_METADATA, fileName) };
  });
}

/** Shards of part `i` (1-based) of `n`: contiguous, equal counts (`--part i/n`). */
export function shardsOfPart(shards: readonly PlannedShard[], part: number, parts: number): PlannedShard[] {
  return shards.filter((_, k) => Math.floor((k * parts) / shards.length) === part - 1);
}
