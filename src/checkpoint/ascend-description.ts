/**
 * Ascend's `quant_model_description.json` (msModelSlim's "AscendV1" format, read by vllm-ascend and
 * sglang's NPU backend; ../shared/docs/ASCEND.md §1.3): global keys plus one `"<tensor>": "<TYPE>"`
 * entry per tensor. Building the object a writer saves, summarizing one, and checking one against
 * the tensors the way vllm-ascend will load them. Pure functions, no I/O.
 *
 *   ascendDescription(entries) -> object                  (what the writer saves)
 *   ascendModelQuantType(types) -> AscendQuantType        (msModelSlim's model_quant_type rule)
 *   summarizeAscendDescription(description) -> AscendDescriptionSummary | null
 *   checkAscendDescription(description, tensors, config) -> AscendProblem[]
 *   isDeepSeekStyle(config, tensors) -> boolean           (MLA models the Ascend writer targets)
 *
 * Upstream sources are cited as in ASCEND.md: VA = vllm-project/vllm-ascend@182b75e,
 * MS = Ascend/msmodelslim@3de0a3c, VL = vllm-project/vllm.
 */
import { CheckpointError } from "./errors.js";
import { ASCEND_DESCRIPTION_FILE } from "./layouts/ascend.js";
import { obj } from "./layouts/recognizer.js";
import type { TensorEntry } from "./types.js";

export { ASCEND_DESCRIPTION_FILE };

/**
 * Per-tensor type tags: msModelSlim's enum (MS docs/zh/user_guide/quantization_formats/ascendv1.md:64-82)
 * plus the scheme names vllm-ascend registers besides (VA quantization/methods/*.py, ASCEND.md §4.1).
 */
export const ASCEND_QUANT_TYPES = [
  "FLOAT",
  "W16A16S",
  "W8A16",
  "W8A8",
  "W8A8_DYNAMIC",
  "W8A8_MIX",
  "W4A4_DYNAMIC",
  "W4A8_DYNAMIC",
  "WFP8AFP8_DYNAMIC",
  "W8A8_MXFP8",
  "W4A8_MXFP",
  "W4A4_MXFP4",
  "W4A4_MXFP4_DUALSCALE",
  "C8",
  "FAQuant",
  "W8A8FP8_DYNAMIC",
  "W4A16",
  "W4A16_MXFP4",
  "W4A4_FLATQUANT_DYNAMIC",
  "FAKQuant",
  "INT8_DYNAMIC",
] as const;
export type AscendQuantType = (typeof ASCEND_QUANT_TYPES)[number];

/**
 * msModelSlim's `QUANT_TYPE_PRIORITY`, lowest first; `model_quant_type` is the highest present.
 * W4A8_DYNAMIC is not in it ("hidden": it never becomes model_quant_type) — MS
 * msmodelslim/core/quant_service/modelslim_v1/save/ascendv1.py:164-181 (`update_quant_type`, 758-765).
 */
const PRIORITY: readonly string[] = [
  "FLOAT",
  "W16A16S",
  "W8A16",
  "W8A8_DYNAMIC",
  "W8A8_MIX",
  "W8A8",
  "WFP8AFP8_DYNAMIC",
  "W8A8_MXFP8",
  "W4A8_MXFP",
  "W4A4_DYNAMIC",
  "W4A4_MXFP4",
  "W4A4_MXFP4_DUALSCALE",
];

/**
 * Keys of the description that are not tensors: msModelSlim's v1 and legacy globals (ascendv1.py:198-229,
 * llm_ptq_utils.py:133-158) and the ones vllm-ascend reads (modelslim_config.py:1034-1052).
 */
const GLOBAL_KEYS: ReadonlySet<string> = new Set([
  "version",
  "model_quant_type",
  "group_size",
  "metadata",
  "optional",
  "kv_cache_type",
  "kv_quant_type",
  "fa_quant_type",
  "reduce_quant_type",
  "indexer_quant_type",
]);

/** The description version msModelSlim v1 writes; vllm-ascend v0.11 read packed W4A8 only with it. */
const VERSION = "1.0.0";

/**
 * msModelSlim's `model_quant_type` for a set of per-tensor types: the highest in its priority list
 * (W4A8_DYNAMIC, hidden, and types outside the list do not count), `FLOAT` when none counts.
 */
export function ascendModelQuantType(types: Iterable<string>): AscendQuantType {
  let best = 0;
  for (const t of types) best = Math.max(best, PRIORITY.indexOf(t));
  return PRIORITY[best] as AscendQuantType;
}

/**
 * The `quant_model_description.json` object for the written tensors, in their order: `version`
 * "1.0.0", `model_quant_type` (`ascendModelQuantType`), `group_size` 0 (per-channel; vllm-ascend's
 * W4A8 rejects more, VA quantization/methods/w4a8.py:114-120), or 32 when a W8A8_MXFP8 entry is
 * present (its MX group, which `w8a8_mxfp8.py:65` reads from here), empty `metadata` and `optional`, then
 * one entry per tensor (ASCEND.md §1.3, §7 step 5). Throws a `CheckpointError` on a name given twice
 * or one that is a global key.
 */
export function ascendDescription(
  entries: readonly { name: string; type: AscendQuantType }[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    version: VERSION,
    model_quant_type: ascendModelQuantType(entries.map((e) => e.type)),
    group_size: entries.some((e) => e.type === "W8A8_MXFP8") ? 32 : 0,
    metadata: {},
    optional: {},
  };
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name) || GLOBAL_KEYS.has(e.name)) {
      const why = seen.has(e.name) ? "is described twice" : "is a global key of the file";
      throw new CheckpointError("invalid-config", `${ASCEND_DESCRIPTION_FILE}: tensor "${e.name}" ${why}`);
    }
    seen.add(e.name);
    out[e.name] = e.type;
  }
  return out;
}

/** What a description says, for `inspect`. */
export interface AscendDescriptionSummary {
  modelQuantType: string | null;
  version: string | null;
  groupSize: number | null;
  /** Per-tensor entries. */
  entries: number;
  /** Entries by type, e.g. `{ "W8A8_DYNAMIC": 9, "FLOAT": 4 }`. */
  types: Record<string, number>;
  /** `.weight` entries with a type other than FLOAT: the quantized layers. */
  quantizedWeights: number;
}

/** Summary of a parsed description, or null when it is not an object. */
export function summarizeAscendDescription(description: unknown): AscendDescriptionSummary | null {
  const d = obj(description);
  if (d === null) return null;
  const types: Record<string, number> = {};
  let entries = 0;
  let quantizedWeights = 0;
  for (const [k, v] of Object.entries(d)) {
    if (GLOBAL_KEYS.has(k) || typeof v !== "string") continue;
    entries++;
    types[v] = (types[v] ?? 0) + 1;
    if (k.endsWith(".weight") && v !== "FLOAT") quantizedWeights++;
  }
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    modelQuantType: str(d.model_quant_type),
    version: str(d.version),
    groupSize: typeof d.group_size === "number" ? d.group_size : null,
    entries,
    types,
    quantizedWeights,
  };
}

/**
 * DeepSeek-style MLA model, the kind the Ascend W8A8 writer targets: config `model_type`
 * deepseek_v2 / deepseek_v3 / kimi_k2 (vllm-ascend's packed mappings for them, VA
 * quantization/modelslim_config.py:133-166), or tensors named `*.self_attn.kv_a_proj_with_mqa.weight`.
 */
export function isDeepSeekStyle(config: unknown | null, tensors: readonly TensorEntry[]): boolean {
  const mt = obj(config)?.model_type;
  if (mt === "deepseek_v2" || mt === "deepseek_v3" || mt === "kimi_k2") return true;
  return tensors.some((t) => t.name.endsWith(".self_attn.kv_a_proj_with_mqa.weight"));
}

/** Stable codes of the description checks (lint reports them as finding codes of the same name). */
export type AscendProblemCode =
  | "bad-description"
  | "description-missing-entry"
  | "description-extra-entry"
  | "description-mismatch"
  | "ascend-unsupported"
  | "config-mismatch"
  | "orphan-scale";

/** Something wrong with an Ascend checkpoint's description against its tensors or config. */
export interface AscendProblem {
  severity: "error" | "warning";
  code: AscendProblemCode;
  /** The file it is about (the description or config.json), or null for the shard holding `tensor`. */
  file: string | null;
  tensor: string | null;
  /** What is wrong, one line. */
  message: string;
  /** How to fix it, one line. */
  fix: string;
}

/**
 * Schemes vllm-ascend main registers per layer kind (`@register_scheme`, VA quantization/methods/*.py;
 * ASCEND.md §4.1): another (type, layer) pair raises NotImplementedError at load
 * (modelslim_config.py:505-541).
 */
const REGISTERED: Record<"linear" | "moe", ReadonlySet<string>> = {
  linear: new Set([
    "W8A8_DYNAMIC",
    "W8A8",
    "W8A16",
    "W8A8_MIX",
    "W4A4_DYNAMIC",
    "W4A4_FLATQUANT_DYNAMIC",
    "W8A8_MXFP8",
    "W4A8_MXFP",
    "W4A4_MXFP4",
    "W8A8FP8_DYNAMIC",
  ]),
  moe: new Set([
    "W8A8_DYNAMIC",
    "W4A16",
    "W4A8_DYNAMIC",
    "W8A8_MXFP8",
    "W4A8_MXFP",
    "W4A4_MXFP4",
    "W4A16_MXFP4",
    "W8A8FP8_DYNAMIC",
  ]),
};

/** Dtypes a scale/offset may have: vllm-ascend allocates them in params_dtype and `copy_`s (ASCEND.md §2.1). */
const SCALE_DTYPES: ReadonlySet<string> = new Set(["F32", "BF16", "F16"]);
const FLOAT_DTYPES: ReadonlySet<string> = new Set(["F32", "BF16", "F16", "F64"]);
/** Routed experts (`experts.N.`) and stacked experts (`experts.gate_proj`) go through the MoE schemes. */
const EXPERT = /\.experts\.(\d+\.)?[^.]+$/;
const EMBEDDING = /(^|\.)(embed_tokens|lm_head|head|wte)$/;

/**
 * Checks a parsed description against the tensor headers and config.json, rule by rule as
 * vllm-ascend main loads it (ASCEND.md §1-§4; each rule cites its source below): the file is an
 * object with `model_quant_type`; every `.weight` has an entry; entries name existing tensors; each
 * quantized linear's tensors have the dtypes and shapes its scheme allocates; `kv_b_proj` is FLOAT;
 * fused modules share one type; W4A8 has `group_size` 0; config.json has no `quantization_config`;
 * no FP8 `weight_scale_inv` is left. Returns every problem found (none for a sound checkpoint).
 */
export function checkAscendDescription(
  description: unknown,
  tensors: readonly TensorEntry[],
  config: unknown | null,
): AscendProblem[] {
  const out: AscendProblem[] = [];
  const desc = (
    severity: AscendProblem["severity"],
    code: AscendProblemCode,
    tensor: string | null,
    message: string,
    fix: string,
  ) => out.push({ severity, code, file: ASCEND_DESCRIPTION_FILE, tensor, message, fix });
  const d = obj(description);
  if (d === null) {
    desc(
      "error",
      "bad-description",
      null,
      "not a JSON object",
      `rewrite ${ASCEND_DESCRIPTION_FILE} ("tensor": "TYPE" entries and the global keys)`,
    );
  } else {
    const types = entriesOf(d, desc);
    globals(d, types, desc);
    coverage(tensors, types, desc);
    layers(tensors, types, desc);
    fusedGroups(types, desc);
  }
  leftovers(tensors, config, out);
  return out;
}

type Sink = (
  severity: AscendProblem["severity"],
  code: AscendProblemCode,
  tensor: string | null,
  message: string,
  fix: string,
) => void;

/** The per-tensor entries (string values), reporting any that is not a type name. */
function entriesOf(d: Record<string, unknown>, desc: Sink): Map<string, string> {
  const types = new Map<string, string>();
  for (const [k, v] of Object.entries(d)) {
    if (GLOBAL_KEYS.has(k)) continue;
    if (typeof v === "string") types.set(k, v);
    else
      desc(
        "error",
        "bad-description",
        k,
        `entry is ${JSON.stringify(v)}, not a type name`,
        'give it a type such as "FLOAT" or "W8A8_DYNAMIC"',
      );
  }
  return types;
}

/** `model_quant_type`, `group_size` and `version`. */
function globals(d: Record<string, unknown>, types: ReadonlyMap<string, string>, desc: Sink): void {
  const highest = ascendModelQuantType(types.values());
  if (typeof d.model_quant_type !== "string") {
    desc("error", "bad-description", null, "no model_quant_type", `add "model_quant_type": "${highest}"`);
  } else if (d.model_quant_type !== highest) {
    // Only vllm-ascend's 310P loader reads it (VA _310p/sharded_state_loader_310p.py:63-67).
    const message = `model_quant_type is ${d.model_quant_type}, but by msModelSlim's priority the entries make it ${highest}`;
    desc("warning", "description-mismatch", null, message, `set "model_quant_type": "${highest}"`);
  }
  const w4a8 = [...types.values()].includes("W4A8_DYNAMIC");
  const gs = d.group_size;
  if (gs !== undefined && !(Number.isSafeInteger(gs) && (gs as number) >= 0)) {
    desc(
      "error",
      "bad-description",
      null,
      `group_size ${JSON.stringify(gs)} is not a non-negative integer`,
      'set "group_size": 0',
    );
  } else if (w4a8 && typeof gs === "number" && gs > 0) {
    // VA quantization/methods/w4a8.py:114-120: "Per-Group quantization ... no longer supported".
    const message = `group_size ${gs} with W4A8_DYNAMIC entries: vllm-ascend rejects per-group W4A8`;
    desc("error", "description-mismatch", null, message, 'set "group_size": 0 (per-channel scales)');
  }
  if (w4a8 && d.version !== VERSION) {
    // VA@v0.11.0 quantization/w4a8_dynamic.py:40-45 read packed INT4 only when version is "1.0.0".
    const message = `version is ${JSON.stringify(d.version ?? null)}: vllm-ascend v0.11 reads packed W4A8 only with "1.0.0"`;
    desc("warning", "description-mismatch", null, message, `set "version": "${VERSION}"`);
  }
}

/** Every tensor has an entry, and every entry a tensor. */
function coverage(tensors: readonly TensorEntry[], types: ReadonlyMap<string, string>, desc: Sink): void {
  const names = new Set(tensors.map((t) => t.name));
  const others: string[] = [];
  for (const t of tensors) {
    if (types.has(t.name)) continue;
    if (!t.name.endsWith(".weight")) others.push(t.name);
    else if (t.shape.length >= 2) {
      // VA modelslim_config.py:431-470: `quant_description[prefix + ".weight"]`, a KeyError when absent.
      const message = "no entry: vllm-ascend looks up every layer's .weight and fails with a KeyError";
      desc(
        "error",
        "description-missing-entry",
        t.name,
        message,
        `add "${t.name}": "FLOAT" (or its quantized type)`,
      );
    } else {
      const message = "no entry (msModelSlim describes every tensor; vllm-ascend does not look norms up)";
      desc("warning", "description-missing-entry", t.name, message, `add "${t.name}": "FLOAT"`);
    }
  }
  if (others.length > 0) {
    const message = `${others.length} tensor${others.length > 1 ? "s have" : " has"} no entry (msModelSlim writes one per tensor, ascendv1.py:277-281)`;
    desc(
      "warning",
      "description-missing-entry",
      others[0],
      message,
      "add an entry for each, with its layer's type",
    );
  }
  for (const k of types.keys()) {
    if (names.has(k)) continue;
    desc(
      "warning",
      "description-extra-entry",
      k,
      "entry names a tensor that is not in the checkpoint",
      "remove the entry, or restore the tensor",
    );
  }
}

/** A weight of a quantized type: its dtype, its scale's and offset's shapes (per type), its registry entry. */
function layers(tensors: readonly TensorEntry[], types: ReadonlyMap<string, string>, desc: Sink): void {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const t of tensors) {
    if (!t.name.endsWith(".weight")) continue;
    const type = types.get(t.name);
    if (type === undefined) continue;
    const base = t.name.slice(0, -".weight".length);
    if (type === "FLOAT") {
      floatLayer(t, base, byName, desc);
      continue;
    }
    if (/(^|\.)kv_b_proj$/.test(base)) {
      // VA attention/mla_v1.py:908-909 (sfa_v1.py:597-598): "We currently do not support quant kv_b_proj."
      const message = `described ${type}: vllm-ascend's MLA asserts kv_b_proj is unquantized`;
      desc("error", "ascend-unsupported", t.name, message, "write kv_b_proj in BF16, described FLOAT");
    }
    if (!EMBEDDING.test(base)) {
      const kind = EXPERT.test(base) ? "moe" : "linear";
      if (!REGISTERED[kind].has(type)) {
        const message = `described ${type}: vllm-ascend registers no ${type} scheme for a ${kind === "moe" ? "MoE expert" : "linear"} layer`;
        desc(
          "error",
          "ascend-unsupported",
          t.name,
          message,
          `use a type vllm-ascend registers for ${kind} layers (e.g. W8A8_DYNAMIC)`,
        );
      }
    }
    for (const suffix of [".weight_scale", ".weight_offset", ".scale_bias"]) {
      const tag = types.get(`${base}${suffix}`);
      if (tag !== undefined && tag !== type && byName.has(`${base}${suffix}`)) {
        // "All parameters of the same Linear share the same type tag" (MS ascendv1.md:37,84).
        const message = `described ${tag}, but its weight is ${type}`;
        desc("warning", "description-mismatch", `${base}${suffix}`, message, `describe it "${type}"`);
      }
    }
    if (type === "W8A8_DYNAMIC" || type === "W8A16") intChannel(t, base, type, byName, 1, desc);
    else if (type === "W4A8_DYNAMIC") intChannel(t, base, type, byName, 2, desc);
  }
}

/** A FLOAT layer holds a float weight and no quantization parameters. */
function floatLayer(
  t: TensorEntry,
  base: string,
  byName: ReadonlyMap<string, TensorEntry>,
  desc: Sink,
): void {
  if (!FLOAT_DTYPES.has(t.dtype)) {
    const message = `described FLOAT but stored ${t.dtype}: vllm-ascend loads it as an unquantized weight`;
    desc(
      "error",
      "description-mismatch",
      t.name,
      message,
      "describe it with its quantized type, or write it in BF16",
    );
  }
  for (const suffix of [".weight_scale", ".weight_offset", ".scale_bias"]) {
    if (!byName.has(`${base}${suffix}`)) continue;
    // VL deepseek_v2.py load_weights: `params_dict[name]` for a parameter an unquantized layer lacks (ASCEND.md §2.3).
    const message = `${base}${suffix} exists, but its weight is described FLOAT: vLLM's loader has no such parameter (KeyError)`;
    desc(
      "error",
      "description-mismatch",
      `${base}${suffix}`,
      message,
      "describe the layer with its quantized type, or delete the tensor",
    );
  }
}

/**
 * Per-channel INT8 (`rowsPerByte` 1: W8A8_DYNAMIC, W8A16) or packed INT4 (2: W4A8_DYNAMIC):
 * `weight` I8 `[..., out / rowsPerByte, in]`; `weight_scale`, `weight_offset` `[..., out, 1]`
 * (VA methods/w8a8_dynamic.py:51-83, w8a16.py:39-78, w4a8.py:142-195); W4A8's `scale_bias`
 * `[..., out, 1]` (gate/up) or `[..., out, 16]` (down) (w4a8.py:52-66, 130-131, 194).
 */
function intChannel(
  t: TensorEntry,
  base: string,
  type: string,
  byName: ReadonlyMap<string, TensorEntry>,
  rowsPerByte: 1 | 2,
  desc: Sink,
): void {
  const nd = t.shape.length;
  if (t.dtype !== "I8" || nd < 2 || nd > 3) {
    const what = rowsPerByte === 2 ? "I8 [out/2, in] (two INT4 per byte along the rows)" : "I8 [out, in]";
    const message = `described ${type} but stored ${t.dtype} [${t.shape}]; vllm-ascend allocates ${what}, or [experts, ...] stacked`;
    desc(
      "error",
      "description-mismatch",
      t.name,
      message,
      `write ${what}, or describe the weight with its real type`,
    );
    return;
  }
  const lead = t.shape.slice(0, -2);
  const out = t.shape[nd - 2] * rowsPerByte;
  const want = (suffix: string, cols: readonly number[], required: boolean) => {
    const name = `${base}${suffix}`;
    const s = byName.get(name);
    const shape = cols.map((c) => `[${[...lead, out, c]}]`).join(" or ");
    if (!s) {
      const message = `${type} weight has no ${suffix.slice(1)} ${shape}`;
      const severity = required ? "error" : "warning";
      desc(severity, "description-mismatch", t.name, message, `write ${name} ${shape} in F32`);
      return;
    }
    const okShape =
      s.shape.length === nd &&
      lead.every((v, i) => s.shape[i] === v) &&
      s.shape[nd - 2] === out &&
      cols.includes(s.shape[nd - 1]);
    if (!SCALE_DTYPES.has(s.dtype) || !okShape) {
      const message = `${s.dtype} [${s.shape}] for a ${type} weight [${t.shape}]: vllm-ascend allocates ${shape} (F32/BF16)`;
      desc("error", "description-mismatch", name, message, `write it as F32 ${shape}`);
    }
  };
  want(".weight_scale", [1], true);
  // weight_offset is "computed, not loaded" for dynamic schemes (VA method_adapters.py:124-134), so
  // a missing one loads, but msModelSlim always writes the zeros (ASCEND.md §2.1).
  want(".weight_offset", [1], rowsPerByte === 1 && type === "W8A16");
  if (rowsPerByte === 2) {
    const down = /(down_proj|o_proj|w2)$/.test(base);
    const gateUp = /(gate_proj|up_proj|q_proj|k_proj|v_proj|w1|w3)$/.test(base);
    want(".scale_bias", down ? [16] : gateUp ? [1] : [1, 16], true);
  }
}

/**
 * Fused modules look up each member's `.weight` and need one type (VA modelslim_config.py:444-467,
 * 779-800); DeepSeek's packed mapping (138-142): gate_proj + up_proj, q_a_proj + kv_a_proj_with_mqa,
 * and the experts, whose type expert 0's gate/up/down decide.
 */
function fusedGroups(types: ReadonlyMap<string, string>, desc: Sink): void {
  const groups = new Map<string, { member: string; type: string }[]>();
  const add = (key: string, member: string, type: string) => {
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push({ member, type });
  };
  for (const [name, type] of types) {
    let m = /^(.*\.experts\.)(\d+)\.(gate_proj|up_proj|down_proj|w1|w2|w3)\.weight$/.exec(name);
    if (m) {
      add(`${m[1]}|experts`, name, type);
      continue;
    }
    m = /^(.*)\.(gate_proj|up_proj)\.weight$/.exec(name);
    if (m) {
      add(`${m[1]}|gate_up_proj`, name, type);
      continue;
    }
    m = /^(.*)\.(q_a_proj|kv_a_proj_with_mqa)\.weight$/.exec(name);
    if (m) add(`${m[1]}|fused_qkv_a_proj`, name, type);
  }
  for (const [key, members] of groups) {
    const fused = key.slice(key.indexOf("|") + 1);
    if (fused === "experts") {
      const prefix = key.slice(0, key.indexOf("|"));
      const first = members.filter((x) => x.member.startsWith(`${prefix}0.`));
      const decided = first.find((x) => /\.(gate_proj|w1)\.weight$/.test(x.member)) ?? first[0];
      if (!decided) continue;
      for (const x of members) {
        if (x.type === decided.type) continue;
        const message = `described ${x.type}, but ${decided.member} is ${decided.type}: expert 0 decides the type of all experts of the layer, and its gate/up/down must agree`;
        desc(
          "error",
          "ascend-unsupported",
          x.member,
          message,
          `describe every expert of the layer ${decided.type} (and write it so)`,
        );
      }
    } else {
      const [a, ...rest] = members;
      for (const x of rest) {
        if (x.type === a.type) continue;
        const message = `described ${x.type}, but ${a.member} is ${a.type}: vllm-ascend fuses them into ${fused} and needs one type`;
        desc("error", "ascend-unsupported", x.member, message, "give both the same type (and write both so)");
      }
    }
  }
}

/** config.json's quantization_config, and FP8 scale_inv tensors left over from the source. */
function leftovers(tensors: readonly TensorEntry[], config: unknown | null, out: AscendProblem[]): void {
  const c = obj(config);
  for (const where of [c, obj(c?.text_config)]) {
    if (where?.quantization_config === undefined) continue;
    // ASCEND.md §1.4: vLLM reads config.json's quantization_config before the description (selecting
    // the fp8 method, unimplemented on vllm-ascend main) and msModelSlim deletes it (ascendv1.py:69-94).
    const key = where === c ? "quantization_config" : "text_config.quantization_config";
    out.push({
      severity: "error",
      code: "config-mismatch",
      file: "config.json",
      tensor: null,
      message: `${key} is present beside ${ASCEND_DESCRIPTION_FILE}: vLLM would take it instead of the description`,
      fix: `delete ${key} from config.json (msModelSlim removes it)`,
    });
  }
  for (const t of tensors) {
    if (!t.name.endsWith(".weight_scale_inv")) continue;
    // VL deepseek_v2.py load_weights: an unexpected tensor is a KeyError (ASCEND.md §2.3, last bullet).
    out.push({
      severity: "error",
      code: "orphan-scale",
      file: null,
      tensor: t.name,
      message:
        "FP8 weight_scale_inv left in an Ascend checkpoint: vLLM's loader has no such parameter (KeyError)",
      fix: "delete it (the weight it scaled must be BF16 or quantized to the described type)",
    });
  }
}
