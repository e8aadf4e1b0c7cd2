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
  | { kind: "ct-mxfp8" | "ct-mxfp4"; ignore: string[] };

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
    case "ct-mxfp8":
    case "ct-mxfp4": {
      const fp4 = target.kind === "ct-mxfp4";
      const format = fp4 ? "mxfp4-pack-quantized" : "mxfp8-quantized";
      const weights = {
        num_bits: fp4 ? 4 : 8,
        type: "float",
        symmetric: true,
        strategy: "group",
        group_size: 32,
        dynamic: false,
        observer: "minmax",
      };
      // MXFP8 is W8A8 (activations quantized on the fly in groups of 32); MXFP4 here is weight-only.
      const inputActivations = fp4 ? null : { ...weights, dynamic: true, observer: null };
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
        ignore: target.ignore,
        kv_cache_scheme: null,
      };
    }
    default:
      return target satisfies never;
  }
}

/** config.json for the converted checkpoint (a new object; see the file header). */
export function rewriteConfig(
  config: Record<string, unknown>,
  target: ConfigTarget,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  const q = quantizationConfigFor(target);
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

/** Serialise config.json the way transformers writes it (2-space indent, trailing newline). */
export function formatConfigJson(config: Record<string, unknown>): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
