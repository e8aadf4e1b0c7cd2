import type { Dtype, TensorInfo } from "../safetensors/index.js";
import { isScaleTensor } from "./layout.js";

/** Architecture and sizes read from config.json (null where the config does not say). */
export interface ArchitectureSummary {
  architectures: string[];
  modelType: string | null;
  hiddenSize: number | null;
  intermediateSize: number | null;
  numLayers: number | null;
  numAttentionHeads: number | null;
  numKeyValueHeads: number | null;
  vocabSize: number | null;
  /** MoE: routed experts, experts per token, expert intermediate size. */
  numExperts: number | null;
  numExpertsPerToken: number | null;
  moeIntermediateSize: number | null;
  torchDtype: string | null;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/** Reads the usual Hugging Face keys (and their MoE variants) from a config.json object. */
export function summarizeConfig(config: Record<string, unknown> | null): ArchitectureSummary {
  const c = config ?? {};
  return {
    architectures: Array.isArray(c.architectures) ? c.architectures.filter((a) => typeof a === "string") : [],
    modelType: str(c.model_type),
    hiddenSize: num(c.hidden_size),
    intermediateSize: num(c.intermediate_size),
    numLayers: num(c.num_hidden_layers),
    numAttentionHeads: num(c.num_attention_heads),
    numKeyValueHeads: num(c.num_key_value_heads),
    vocabSize: num(c.vocab_size),
    numExperts: num(c.n_routed_experts) ?? num(c.num_local_experts) ?? num(c.num_experts),
    numExpertsPerToken: num(c.num_experts_per_tok),
    moeIntermediateSize: num(c.moe_intermediate_size),
    torchDtype: str(c.torch_dtype) ?? str(c.dtype),
  };
}

/** Parameters and bytes of a checkpoint. */
export interface SizeSummary {
  /** Parameters: elements of every non-scale tensor, packed FP4 bytes counted as two elements. */
  parameters: number;
  /** Elements of scale tensors (not parameters). */
  scaleElements: number;
  tensors: number;
  /** Sum of tensor bytes (what index `total_size` holds). */
  tensorBytes: number;
  /** Tensor bytes per dtype, largest first. */
  bytesByDtype: { dtype: Dtype; tensors: number; bytes: number }[];
}

/**
 * Counts parameters the way a model card does: scale tensors (`weight_scale(_inv)`, `_scales`,
 * `input_scale`, F8_E8M0...) are not parameters, and a U8 tensor that holds packed FP4 codes
 * (`weight_packed`, gpt-oss `_blocks`, ModelOpt NVFP4 `weight`) holds two per byte; this is what
 * huggingface.js `computeParametersCount` does for Hub repos. `packed` names the packed tensors.
 */
export function summarizeSizes(tensors: readonly TensorInfo[], packed: ReadonlySet<string>): SizeSummary {
  let parameters = 0;
  let scaleElements = 0;
  let tensorBytes = 0;
  const byDtype = new Map<Dtype, { tensors: number; bytes: number }>();
  for (const t of tensors) {
    tensorBytes += t.byteLength;
    const d = byDtype.get(t.dtype) ?? { tensors: 0, bytes: 0 };
    d.tensors++;
    d.bytes += t.byteLength;
    byDtype.set(t.dtype, d);
    if (isScaleTensor(t)) scaleElements += t.numel;
    else parameters += packed.has(t.name) ? t.numel * 2 : t.numel;
  }
  const bytesByDtype = [...byDtype.entries()]
    .map(([dtype, v]) => ({ dtype, ...v }))
    .sort((a, b) => b.bytes - a.bytes || (a.dtype < b.dtype ? -1 : 1));
  return { parameters, scaleElements, tensors: tensors.length, tensorBytes, bytesByDtype };
}
