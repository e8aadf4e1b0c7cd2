/**
 * config.json handling: strict parsing and the rewrite a conversion needs so the result loads.
 *
 *   parseConfigJson(text, fileName) -> Record<string, unknown>   (throws CheckpointError)
 *   rewriteConfig(config, target) -> Record<string, unknown>      (pure; the input is not modified)
 *   quantizationConfigFor(target) -> Record<string, unknown> | null
 *
 * Targets: `dense` removes `quantization_config` (transformers otherwise fails with "Unknown
 * quantization type" or tries to quantize again) and sets `torch_dtype`; `fp8-block` writes the
 * DeepSeek/HF fine-grained FP8 object (`quant_method: "fp8"`, keys in the order DeepSeek ships
 * them); `ct-mxfp8` / `ct-mxfp4` write the compressed-tensors object vLLM reads.
 */
import { CheckpointError } from "./errors.js";
import type { ScaleFormat } from "./types.js";

export type DenseDtype = "bfloat16" | "float16" | "float32";

export type ConfigTarget =
  | { kind: "dense"; dtype: DenseDtype }
  | {
      kind: "fp8-block";
      block: readonly [number, number];
      scaleFmt: ScaleFormat;
      modulesToNotConvert?: string[];
    }
  | {
      /** compressed-tensors `quantization_config` (vLLM / SGLang / transformers through compressed_tensors). */
      kind: "compressed-tensors";
      format: "fp8" | "mxfp8" | "mxfp4" | "nvfp4";
      /** FP8 block: `block_structure`. */
      block?: readonly [number, number];
      /** No activation quantization (NVFP4A16; MXFP4 as written today): `input_activations: null`. */
      weightOnly: boolean;
      ignore: string[];
    }
  | {
      /** NVIDIA ModelOpt: config.json `quantization_config` and `hf_quant_config.json` (`hfQuantConfigFor`). */
      kind: "modelopt";
      format: "mxfp8" | "nvfp4";
      /** NVFP4 without `input_scale`: `W4A16_NVFP4`. */
      weightOnly: boolean;
      exclude: string[];
    }
  | { kind: "gpt-oss"; modulesToNotConvert: string[] }
  | {
      /**
       * Ascend (msModelSlim's AscendV1): no `quantization_config` (vllm-ascend reads
       * `quant_model_description.json` instead, ASCEND.md §1.4), the `quantize` / `moe_quantize`
       * keys msModelSlim's DeepSeek hook adds, and no MTP layer declared when it was dropped.
       */
      kind: "ascend";
      /** Absent for W8A8_MXFP8, which msModelSlim's DeepSeek hook does not name (vllm-ascend allows none). */
      quantize?: "w8a8_dynamic";
      moeQuantize?: "w8a8_dynamic" | "w4a8_dynamic";
      dropMtp: boolean;
    };

/** Parse config.json text; it must be a JSON object. */
export function parseConfigJson(text: string, fileName = "config.json"): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError("invalid-config", `${fileName}: invalid JSON (${(e as Error).message})`, {
      cause: e,
    });
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new CheckpointError("invalid-config", `${fileName}: must hold a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** The `quantization_config` object of a target (null for dense targets). */
export function quantizationConfigFor(target: ConfigTarget): Record<string, unknown> | null {
  switch (target.kind) {
    case "dense":
      return null;
    case "fp8-block": {
      const q: Record<string, unknown> = {
        activation_scheme: "dynamic",
        fmt: "e4m3",
        quant_method: "fp8",
        scale_fmt: target.scaleFmt,
        weight_block_size: [target.block[0], target.block[1]],
      };
      if (target.modulesToNotConvert && target.modulesToNotConvert.length > 0) {
        q.modules_to_not_convert = target.modulesToNotConvert;
      }
      return q;
    }
    case "compressed-tensors":
      return compressedTensorsConfig(target);
    case "modelopt":
      return { ...modeloptConfig(target), quant_method: "modelopt" };
    case "gpt-oss":
      // transformers `Mxfp4Config.to_dict()` (integrations/mxfp4.py; openai/gpt-oss-* config.json).
      return { modules_to_not_convert: target.modulesToNotConvert, quant_method: "mxfp4" };
    case "ascend":
      return null;
    default:
      return target satisfies never;
  }
}

/**
 * compressed-tensors' `QuantizationArgs` of a scheme, with only the fields a loader reads (older
 * compressed_tensors versions forbid fields they do not know, so fewer is safer): the presets of
 * `quantization/quant_scheme.py` (`FP8_BLOCK`, `MXFP8`, `MXFP4A16`, `NVFP4A16`). MX scales are declared
 * `scale_dtype: "torch.uint8"`, as `str(torch.uint8)` serializes: vLLM's `_is_mxfp8` requires it and
 * ends in "No compressed-tensors compatible scheme was found" without it.
 */
function ctArgs(format: "fp8" | "mxfp8" | "mxfp4" | "nvfp4", block?: readonly [number, number]) {
  const base = { num_bits: format === "fp8" || format === "mxfp8" ? 8 : 4, type: "float", symmetric: true };
  switch (format) {
    case "fp8":
      return {
        ...base,
        strategy: "block",
        block_structure: [block?.[0] ?? 128, block?.[1] ?? 128],
        dynamic: false,
        observer: "minmax",
      };
    case "mxfp8":
    case "mxfp4":
      return {
        ...base,
        strategy: "group",
        group_size: 32,
        dynamic: false,
        scale_dtype: "torch.uint8",
        observer: "minmax",
      };
    case "nvfp4":
      return {
        ...base,
        strategy: "tensor_group",
        group_size: 16,
        dynamic: false,
        scale_dtype: "torch.float8_e4m3fn",
        observer: "minmax",
      };
    default:
      return format satisfies never;
  }
}

/** compressed-tensors `CompressionFormat` of each format. */
const CT_FORMAT = {
  fp8: "float-quantized",
  mxfp8: "mxfp8-quantized",
  mxfp4: "mxfp4-pack-quantized",
  nvfp4: "nvfp4-pack-quantized",
} as const;

/**
 * compressed-tensors `quantization_config` (`ModelCompressor.update_config`): one config group over
 * every `Linear` not in `ignore`. Activations: FP8 block is W8A8 with dynamic per-group-of-128
 * activations (the `FP8_BLOCK` preset, which vLLM's block scheme requires), MXFP8 is W8A8 with
 * dynamic groups of 32 (`MXFP8`), MXFP4 and NVFP4 are weight-only (`MXFP4A16`, `NVFP4A16`: no
 * activation scales are written).
 */
function compressedTensorsConfig(t: Extract<ConfigTarget, { kind: "compressed-tensors" }>) {
  const format = CT_FORMAT[t.format];
  const weights = ctArgs(t.format, t.block);
  let inputActivations: Record<string, unknown> | null = null;
  if (!t.weightOnly && t.format === "fp8") {
    inputActivations = {
      num_bits: 8,
      type: "float",
      symmetric: true,
      strategy: "group",
      group_size: 128,
      dynamic: true,
      observer: null,
    };
  } else if (!t.weightOnly && t.format === "nvfp4") {
    // The `NVFP4` preset: activations in groups of 16 with a calibrated global (`input_global_scale`).
    inputActivations = { ...weights, dynamic: "local", observer: "static_minmax" };
  } else if (!t.weightOnly) {
    inputActivations = { ...weights, dynamic: true, observer: null };
  }
  return {
    quant_method: "compressed-tensors",
    format,
    quantization_status: "compressed",
    config_groups: {
      group_0: {
        targets: ["Linear"],
        weights,
        input_activations: inputActivations,
        output_activations: null,
        format,
      },
    },
    ignore: t.ignore,
    kv_cache_scheme: null,
  };
}

/** ModelOpt's `quant_algo` of a target: NVFP4 (W4A4), W4A16_NVFP4 (weight-only), MXFP8. */
function modeloptAlgo(t: Extract<ConfigTarget, { kind: "modelopt" }>): string {
  if (t.format === "mxfp8") return "MXFP8";
  return t.weightOnly ? "W4A16_NVFP4" : "NVFP4";
}

/**
 * `producer` as ModelOpt writes it: older vLLM versions recognise a ModelOpt export by
 * `producer.name == "modelopt"`; the version is the ModelOpt release whose export format fp8kit
 * follows. `hf_quant_config.json` says in a key of its own that fp8kit wrote it (loaders read only
 * `quantization`).
 */
const MODELOPT_PRODUCER = { name: "modelopt", version: "0.47.0" };

/**
 * ModelOpt's config.json `quantization_config` (`export/convert_hf_config.py`
 * `convert_hf_quant_config_format`): NVFP4 declares one config group (weights, and activations for
 * W4A4); MXFP8 has none. vLLM selects its method from `quant_method` "modelopt" and `quant_algo`.
 */
function modeloptConfig(t: Extract<ConfigTarget, { kind: "modelopt" }>): Record<string, unknown> {
  const algo = modeloptAlgo(t);
  if (t.format === "mxfp8") return { ignore: t.exclude, quant_algo: algo, producer: MODELOPT_PRODUCER };
  const args = { dynamic: false, num_bits: 4, type: "float", group_size: 16 };
  const group: Record<string, unknown> = t.weightOnly
    ? { weights: args, targets: ["Linear"] }
    : { input_activations: args, weights: args, targets: ["Linear"] };
  return {
    config_groups: { group_0: group },
    ignore: t.exclude,
    quant_algo: algo,
    producer: MODELOPT_PRODUCER,
  };
}

/**
 * ModelOpt's `hf_quant_config.json` for a `modelopt` target, null for any other (`export/quant_utils.py`
 * `get_quant_config`). vLLM's ModelOpt configs require the keys `kv_cache_quant_algo` and
 * `exclude_modules` (and `group_size` for NVFP4) to be present.
 */
export function hfQuantConfigFor(target: ConfigTarget): Record<string, unknown> | null {
  if (target.kind !== "modelopt") return null;
  return {
    producer: MODELOPT_PRODUCER,
    written_by: "fp8kit convert (ModelOpt 0.47.0 export format)",
    quantization: {
      quant_algo: modeloptAlgo(target),
      kv_cache_quant_algo: null,
      group_size: target.format === "mxfp8" ? 32 : 16,
      exclude_modules: target.exclude,
    },
  };
}

/** config.json for the converted checkpoint (a new object; see the file header). */
export function rewriteConfig(
  config: Record<string, unknown>,
  target: ConfigTarget,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  const q = quantizationConfigFor(target);
  if (target.kind === "ascend") return ascendConfig(out, target);
  if (q === null) {
    delete out.quantization_config;
    const dtype = (target as { dtype: DenseDtype }).dtype;
    out.torch_dtype = dtype;
    if ("dtype" in out && typeof out.dtype === "string") out.dtype = dtype;
  } else {
    out.quantization_config = q;
    if (typeof out.torch_dtype !== "string" || out.torch_dtype === "float32") out.torch_dtype = "bfloat16";
  }
  return out;
}

/**
 * config.json of an Ascend output: the source's without `quantization_config` (top level and
 * `text_config`, as msModelSlim's saver deletes them, `save/ascendv1.py:69-94`; a remaining FP8
 * one would select vllm-ascend's unimplemented `fp8` method, ASCEND.md §1.4), BF16 as the model
 * dtype, and msModelSlim's DeepSeek keys `quantize` / `moe_quantize`
 * (`example/DeepSeek/quant_deepseek_w8a8.py:77-91`; vllm-ascend `ascend_config.py:427-444` reads
 * them to enable its MegaMoE kernel). A dropped MTP layer sets `num_nextn_predict_layers` to 0.
 */
function ascendConfig(
  out: Record<string, unknown>,
  target: Extract<ConfigTarget, { kind: "ascend" }>,
): Record<string, unknown> {
  delete out.quantization_config;
  const text = out.text_config;
  if (text !== null && typeof text === "object" && !Array.isArray(text) && "quantization_config" in text) {
    const { quantization_config: _, ...rest } = text as Record<string, unknown>;
    out.text_config = rest;
  }
  if (typeof out.torch_dtype !== "string" || out.torch_dtype === "float32") out.torch_dtype = "bfloat16";
  if (target.quantize) out.quantize = target.quantize;
  else delete out.quantize;
  if (target.moeQuantize) out.moe_quantize = target.moeQuantize;
  else delete out.moe_quantize;
  if (target.dropMtp && typeof out.num_nextn_predict_layers === "number") out.num_nextn_predict_layers = 0;
  return out;
}

/** Serialise config.json the way transformers writes it (2-space indent, trailing newline). */
export function formatConfigJson(config: Record<string, unknown>): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
