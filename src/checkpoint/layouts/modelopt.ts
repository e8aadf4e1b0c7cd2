/**
 * NVIDIA ModelOpt exports (`hf_quant_config.json` `quantization.quant_algo`, or a config.json
 * `quantization_config` with `quant_method: "modelopt"`; vLLM `model_executor/layers/quantization/modelopt.py`):
 * - FP8: `X.weight` F8_E4M3 + scalar F32 `X.weight_scale` (+ `X.input_scale`);
 * - NVFP4: `X.weight` U8 `[N, K/2]` + `X.weight_scale` F8_E4M3 `[N, K/16]` + scalar F32
 *   `X.weight_scale_2` that multiplies every block scale (+ `X.input_scale`);
 * - MXFP8: `X.weight` F8_E4M3 + `X.weight_scale` U8 E8M0 per 32.
 */
import { hasE8m0Scale, isScalar, mxfp8, nvfp4, perTensor } from "./recognizer.js";

export const modeloptNvfp4 = nvfp4({
  kind: "modelopt-nvfp4",
  family: "modelopt",
  title: "NVIDIA ModelOpt NVFP4",
  data: ".weight",
  dataDtypes: ["U8", "F4"],
  tensorScale: { suffix: ".weight_scale_2", mode: "multiply" },
  auxiliary: [".input_scale"],
  details: () => "E2M1 packed, E4M3 scale per 16, weight_scale_2",
});

export const modeloptFp8 = perTensor({
  kind: "modelopt-fp8",
  family: "modelopt",
  title: "NVIDIA ModelOpt FP8",
  claims: (ctx, _base, scale) => ctx.modelopt !== null && isScalar(scale),
  details: () => "per-tensor scales",
});

export const modeloptMxfp8 = mxfp8({
  kind: "modelopt-mxfp8",
  family: "modelopt",
  title: "NVIDIA ModelOpt MXFP8",
  claims: (ctx, _base, scale) => ctx.modelopt !== null && hasE8m0Scale(scale),
  auxiliary: [".input_scale"],
});
