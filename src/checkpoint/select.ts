/**
 * Which tensors a conversion quantizes. Pure functions over names and shapes.
 *
 *   selectTensors(tensors, { preset, include, exclude, config }) -> TensorSelection
 *
 * Presets:
 * - `deepseek-v3` (DeepSeek-V3/R1/V3.1/V3.2, what DeepSeek's own FP8 release quantizes: the
 *   deepseek-ai/DeepSeek-V3 `README_WEIGHTS.md` and `inference/model.py`, and the targets of
 *   compressed-tensors' `deepseek32_fpblock_example.py`): the attention projections `q_a_proj`, `q_b_proj`,
 *   `kv_a_proj_with_mqa`, `kv_b_proj`, `o_proj` (+ V3.2 `indexer.wq_b` / `indexer.wk`), and
 *   `gate_proj`/`up_proj`/`down_proj` of dense MLPs, shared experts and routed experts. Everything
 *   else stays as it is: `embed_tokens`, `lm_head`, norms, the router `mlp.gate`,
 *   `e_score_correction_bias`, and the MTP extras `enorm`, `hnorm`, `eh_proj`, `shared_head`.
 * - `generic` (any other architecture): 2-D floating-point `*.weight` tensors of linear layers, never
 *   embeddings, output heads, norms, routers/gates of MoE, biases or 1-D tensors.
 * `include` globs add tensors (they must still be 2-D floating-point weights); `exclude` globs remove
 * tensors; exclude wins. See `glob.ts` for the glob syntax.
 */
import { quantizationConfig } from "./detect.js";
import { matchAny } from "./glob.js";
import type { TensorEntry } from "./types.js";

export type PresetName = "deepseek-v3" | "generic";
export const PRESET_NAMES: readonly PresetName[] = ["deepseek-v3", "generic"];

export interface SelectOptions {
  preset?: PresetName | "auto";
  include?: readonly string[];
  exclude?: readonly string[];
  /** config.json, used by `auto` to pick `deepseek-v3` for `model_type` deepseek_v3 / deepseek_v32. */
  config?: unknown;
}

/** A tensor selected or not, with the reason (shown by `--dry-run`). */
export interface TensorChoice {
  name: string;
  quantize: boolean;
  reason: string;
}

export interface TensorSelection {
  preset: PresetName;
  choices: TensorChoice[];
  /** Names of the tensors to quantize. */
  selected: Set<string>;
}

const DEEPSEEK_QUANTIZED =
  /\.(self_attn\.(q_a_proj|q_b_proj|q_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj|indexer\.(wq_b|wk))|mlp\.(shared_experts\.|experts\.\d+\.)?(gate_proj|up_proj|down_proj))\.weight$/;
const DEEPSEEK_KEPT_REASON: [RegExp, string][] = [
  [/embed_tokens/, "embedding"],
  [/lm_head|shared_head/, "output head (MTP shared_head included)"],
  [/norm/, "norm"],
  [/\.mlp\.gate\.(weight|e_score_correction_bias)$/, "MoE router"],
  [/\.eh_proj\./, "MTP eh_proj"],
];

const GENERIC_NEVER: [RegExp, string][] = [
  [/embed|wte|wpe|tok_embeddings|word_embeddings/, "embedding"],
  [/lm_head|output\.weight$|shared_head|\.head\./, "output head"],
  [/norm|\.ln_|_ln\./, "norm"],
  [/\.(gate|router)\.weight$|\.mlp\.gate\.|router/, "MoE router"],
  [/bias$/, "bias"],
];

const FLOAT_DTYPES = new Set(["BF16", "F16", "F32"]);

/** `deepseek-v3` for DeepSeek-V3-family configs, else `generic`. */
export function presetFor(config: unknown): PresetName {
  const c = config as Record<string, unknown> | null;
  const mt = typeof c?.model_type === "string" ? c.model_type : "";
  return /^deepseek_v3/.test(mt) || mt === "deepseek_v32" || mt === "kimi_k2" ? "deepseek-v3" : "generic";
}

/** Decide for one tensor under a preset (no globs). */
export function presetChoice(t: TensorEntry, preset: PresetName): TensorChoice {
  const { name } = t;
  const is2dFloat = t.shape.length === 2 && FLOAT_DTYPES.has(t.dtype);
  if (preset === "deepseek-v3") {
    for (const [re, why] of DEEPSEEK_KEPT_REASON) {
      if (re.test(name)) return { name, quantize: false, reason: `kept: ${why}` };
    }
    if (DEEPSEEK_QUANTIZED.test(name)) {
      if (!is2dFloat)
        return { name, quantize: false, reason: `kept: ${t.dtype}[${t.shape}] is not a 2-D float weight` };
      return { name, quantize: true, reason: "deepseek-v3 linear weight" };
    }
    return { name, quantize: false, reason: "kept: not a DeepSeek FP8 target" };
  }
  for (const [re, why] of GENERIC_NEVER) {
    if (re.test(name)) return { name, quantize: false, reason: `kept: ${why}` };
  }
  if (!name.endsWith(".weight")) return { name, quantize: false, reason: "kept: not a .weight" };
  if (!is2dFloat)
    return { name, quantize: false, reason: `kept: ${t.dtype}[${t.shape}] is not a 2-D float weight` };
  return { name, quantize: true, reason: "2-D linear weight" };
}

/** Choose the tensors to quantize among `tensors` (the unquantized ones); see the file header. */
export function selectTensors(tensors: readonly TensorEntry[], options: SelectOptions = {}): TensorSelection {
  const preset = !options.preset || options.preset === "auto" ? presetFor(options.config) : options.preset;
  const include = options.include ?? [];
  const exclude = options.exclude ?? [];
  const choices: TensorChoice[] = [];
  const selected = new Set<string>();
  for (const t of tensors) {
    let c = presetChoice(t, preset);
    if (!c.quantize && include.length > 0 && matchAny(t.name, include)) {
      const ok = t.shape.length === 2 && FLOAT_DTYPES.has(t.dtype);
      c = ok
        ? { name: t.name, quantize: true, reason: "--include" }
        : {
            name: t.name,
            quantize: false,
            reason: `kept: matches --include but ${t.dtype}[${t.shape}] is not a 2-D float weight`,
          };
    }
    if (c.quantize && exclude.length > 0 && matchAny(t.name, exclude)) {
      c = { name: t.name, quantize: false, reason: "kept: --exclude" };
    }
    choices.push(c);
    if (c.quantize) selected.add(t.name);
  }
  return { preset, choices, selected };
}

/** True when config.json says the checkpoint is quantized (any `quantization_config`). */
export function isQuantizedConfig(config: unknown): boolean {
  return quantizationConfig(config) !== null;
}
